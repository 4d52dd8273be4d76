//! `SockMan` leaks nothing over many connect/close cycles: alone in its test binary, so no
//! other test opens or closes descriptors while it counts them (on Linux, `/proc/self/fd`;
//! elsewhere the cycles run and the manager must end empty and still accept). Native only:
//! 10,000 cycles in an unoptimised wasm build take minutes, and there are no descriptors to
//! count there.

#![cfg(all(sockets, not(target_family = "wasm")))]

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bitcoin_sock::sockman::{Handler, Id, SockMan};
use bitcoin_sock::Sock;
use common::*;

/// Counts what the loop reports.
#[derive(Default)]
struct Counter {
    accepted: Vec<Id>,
    eof: Vec<Id>,
}

impl Handler for Counter {
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
    fn got_data(&mut self, _: &SockMan, _: Id, _: &[u8]) {}
    fn got_eof(&mut self, _: &SockMan, id: Id) {
        self.eof.push(id);
    }
    fn got_permanent_read_error(&mut self, _: &SockMan, id: Id, err: &std::io::Error) {
        panic!("connection {id}: {err}");
    }
}

/// Descriptors open in this process; `None` where there is no `/proc/self/fd` to count.
fn open_fds() -> Option<usize> {
    if !cfg!(target_os = "linux") {
        return None;
    }
    Some(
        std::fs::read_dir("/proc/self/fd")
            .expect("/proc/self/fd")
            .count(),
    )
}

/// The 10,000 where descriptors can be counted; fewer where each cycle is slow (Wine).
const CYCLES: usize = if cfg!(target_os = "linux") {
    10_000
} else {
    1_000
};

#[track_caller]
fn drive(man: &SockMan, handler: &mut Counter, done: impl Fn(&Counter) -> bool) {
    let deadline = Instant::now() + TIMEOUT;
    while !done(handler) {
        assert!(
            Instant::now() < deadline,
            "nothing happened within {TIMEOUT:?}"
        );
        man.run_once(handler, Duration::from_millis(5))
            .expect("run_once");
    }
}

#[test]
fn no_descriptor_left_after_10000_connect_and_close_cycles() {
    let man = SockMan::new().expect("a manager");
    let addr = man.bind_and_listen(SocketAddr::new(V4, 0)).expect("listen");
    let listener = listener(V4);
    let outbound = listener.local_addr().expect("address");
    let mut handler = Counter::default();
    let before = open_fds();
    for cycle in 0..CYCLES {
        if cycle % 2 == 0 {
            // Outbound: we connect, the peer accepts and leaves, we close.
            let id = man.connect(outbound, TIMEOUT).expect("connect");
            let (peer, _) = accept(&listener);
            man.run_once(&mut handler, Duration::ZERO)
                .expect("run_once");
            drop(peer);
            assert!(man.close(id));
        } else {
            // Inbound: the peer connects, we accept, the peer leaves, we close on EOF.
            let client = Sock::connect(addr, TIMEOUT).expect("connect");
            let seen = handler.accepted.len();
            drive(&man, &mut handler, |h| h.accepted.len() > seen);
            let id = handler.accepted[seen];
            drop(client);
            drive(&man, &mut handler, |h| h.eof.last() == Some(&id));
            assert!(man.close(id));
        }
    }
    man.run_once(&mut handler, Duration::ZERO)
        .expect("run_once");
    assert_eq!(man.connection_count(), 0);
    // Still accepting after all that.
    let client = Sock::connect(addr, TIMEOUT).expect("connect after the cycles");
    let seen = handler.accepted.len();
    drive(&man, &mut handler, |h| h.accepted.len() > seen);
    assert!(man.close(handler.accepted[seen]));
    drop(client);
    if let (Some(before), Some(after)) = (before, open_fds()) {
        assert_eq!(after, before, "descriptors left after {CYCLES} cycles");
    }
    drop(man);
    if let (Some(before), Some(after)) = (before, open_fds()) {
        // Dropping the manager closes its listener and the poller's descriptors (epoll and
        // the notification's).
        assert!(after <= before - 2, "the manager's drop closed nothing");
    }
}
