//! `SockMan` out of descriptors (issue #24's finding 3): a listener whose accepts fail with
//! `EMFILE` is reported to the handler and paused, so `run_once` does not spin on it, and it
//! accepts again once a connection of the manager closes (or its back-off passes).
//!
//! A test binary of its own with a single test: the descriptor limit (`RLIMIT_NOFILE`) is the
//! whole process's. Linux: the descriptors are counted in `/proc/self/fd`.

#![cfg(target_os = "linux")]

mod common;

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use bitcoin_sock::sockman::{Handler, Id, SockMan, ACCEPT_BACKOFF};
use bitcoin_sock::Sock;
use common::*;

#[derive(Default)]
struct Counting {
    accepted: Vec<Id>,
    /// The listener's address and the raw OS error of each failed accept.
    accept_errors: Vec<(SocketAddr, Option<i32>)>,
}

impl Handler for Counting {
    fn new_connection_accepted(
        &mut self,
        _: &SockMan,
        id: Id,
        _: SocketAddr,
        _: SocketAddr,
    ) -> bool {
        self.accepted.push(id);
        true
    }

    fn got_accept_error(&mut self, _: &SockMan, listen_addr: SocketAddr, err: &io::Error) {
        self.accept_errors.push((listen_addr, err.raw_os_error()));
    }

    fn got_data(&mut self, _: &SockMan, _: Id, _: &[u8]) {}
    fn got_eof(&mut self, _: &SockMan, _: Id) {}
    fn got_permanent_read_error(&mut self, _: &SockMan, _: Id, _: &io::Error) {}
}

#[track_caller]
fn drive(man: &SockMan, handler: &mut Counting, done: impl Fn(&Counting) -> bool) {
    let deadline = Instant::now() + TIMEOUT;
    while !done(handler) {
        assert!(Instant::now() < deadline, "not done within {TIMEOUT:?}");
        man.run_once(handler, Duration::from_millis(50))
            .expect("run_once");
    }
}

/// The process's descriptor limit, lowered to its open descriptors with every free number
/// below it held, so that no new descriptor can be made; restored (and the held ones closed)
/// when dropped.
struct NoFreeDescriptor {
    saved: libc::rlimit,
    held: Vec<OwnedFd>,
    /// What `held` duplicates, held too.
    _devnull: std::fs::File,
}

impl NoFreeDescriptor {
    fn new() -> NoFreeDescriptor {
        let mut saved = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: `saved` is a valid rlimit for getrlimit to fill.
        assert_eq!(
            unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut saved) },
            0
        );
        let highest = std::fs::read_dir("/proc/self/fd")
            .expect("/proc/self/fd")
            .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u64>().ok())
            .max()
            .expect("some descriptor is open");
        let devnull = std::fs::File::open("/dev/null").expect("/dev/null");
        let lowered = libc::rlimit {
            rlim_cur: highest + 2,
            rlim_max: saved.rlim_max,
        };
        // SAFETY: a valid rlimit; lowering the soft limit needs no privilege.
        assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lowered) }, 0);
        let mut held = Vec::new();
        loop {
            // SAFETY: dup(2) of an open descriptor; the new one is owned by `held`.
            let fd = unsafe { libc::dup(devnull.as_raw_fd()) };
            if fd < 0 {
                let err = io::Error::last_os_error();
                assert_eq!(err.raw_os_error(), Some(libc::EMFILE), "{err}");
                break;
            }
            // SAFETY: `fd` was just made and nothing else owns it.
            held.push(unsafe { OwnedFd::from_raw_fd(fd) });
            assert!(held.len() < 1_000_000, "dup never ran out");
        }
        NoFreeDescriptor {
            saved,
            held,
            _devnull: devnull,
        }
    }
}

impl Drop for NoFreeDescriptor {
    fn drop(&mut self) {
        self.held.clear();
        // SAFETY: the limits read at the start.
        unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &self.saved) };
    }
}

#[test]
fn accepts_failing_for_want_of_descriptors_are_reported_paused_and_resumed() {
    let man = SockMan::new().expect("a manager");
    let addr = man.bind_and_listen(SocketAddr::new(V4, 0)).expect("listen");
    let mut handler = Counting::default();
    let _first = Sock::connect(addr, TIMEOUT).expect("connect");
    drive(&man, &mut handler, |h| h.accepted.len() == 1);
    let first_id = handler.accepted[0];
    // Two more peers wait in the backlog; then no descriptor is left for accepting them.
    let waiting: Vec<Sock> = (0..2)
        .map(|_| Sock::connect(addr, TIMEOUT).expect("connect"))
        .collect();
    let no_free = NoFreeDescriptor::new();

    // A flood of peers is how a node gets here. The handler hears of it, and the loop does
    // not spin: every failure after the first waits for a back-off, so failures are bounded by
    // the time that passed (a slow machine only loosens the bound), and an iteration that
    // found nothing ready waited.
    let start = Instant::now();
    let mut ready = 0;
    const ITERATIONS: usize = 8;
    for _ in 0..ITERATIONS {
        ready += man
            .run_once(&mut handler, Duration::from_millis(300))
            .expect("run_once");
    }
    let elapsed = start.elapsed();
    let failures = handler.accept_errors.len();
    assert!(failures >= 1, "the handler heard of no failed accept");
    assert!(
        handler
            .accept_errors
            .iter()
            .all(|&(at, code)| at == addr && code == Some(libc::EMFILE)),
        "{:?}",
        handler.accept_errors
    );
    let bound = 1 + elapsed.as_millis() / ACCEPT_BACKOFF.as_millis();
    assert!(
        failures as u128 <= bound,
        "{failures} failed accepts in {elapsed:?}: the loop spins on the listener"
    );
    assert_eq!(ready, failures, "only the failing listener was ever ready");
    assert!(
        failures < ITERATIONS,
        "no iteration waited out its back-off"
    );
    assert_eq!(handler.accepted.len(), 1);

    // A connection of the manager closes: its descriptor is free, and the next iteration
    // accepts with it at once (no back-off to wait out).
    assert!(man.close(first_id));
    man.run_once(&mut handler, Duration::ZERO)
        .expect("run_once");
    assert_eq!(
        handler.accepted.len(),
        2,
        "no accept after a close freed a descriptor"
    );

    // Descriptors free again: after its back-off the listener accepts the last one.
    drop(no_free);
    drive(&man, &mut handler, |h| h.accepted.len() == 3);
    assert_eq!(man.connection_count(), 2);
    drop(waiting);
}
