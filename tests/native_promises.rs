//! Native promises that need threads, signals or a look at the kernel (Linux `/proc`): a wait
//! that is really blocked is woken by data, also without deadline and with a timeout past
//! `int` milliseconds (capped, not wrapped); `EINTR` inside `wait`/`wait_many` is retried with
//! the time left; failure paths close exactly the descriptors they opened.
//!
//! Each test first sees the waiting thread asleep in `poll(2)` (tests/common/thread.rs)
//! before it acts, so none passes by acting before the wait began. Every test holds
//! [`serial`]: the signal handler and the descriptor counts are process-wide.
#![cfg(target_os = "linux")]

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use bitcoin_sock::{Events, Sock, SockError, SockEvent, Socks5Error};
use common::thread::{poll_syscalls, spawn_blocked, wait_until_blocked};
use common::*;

static PROCESS_WIDE: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    PROCESS_WIDE.lock().unwrap_or_else(PoisonError::into_inner)
}

// ---------------------------------------------------------------------------------------------
// Blocked waits woken by data

#[test]
fn a_blocked_wait_without_deadline_polls_forever_and_wakes_for_data() {
    let _serial = serial();
    let pair = pair();
    thread::scope(|scope| {
        let (waiter, _, blocked) = spawn_blocked(scope, poll_syscalls(), || {
            pair.server.wait(Duration::MAX, SockEvent::RECV)
        });
        if let Some(ms) = blocked.poll_timeout_ms() {
            assert_eq!(ms, -1, "Duration::MAX is poll(2)'s \"forever\"");
        }
        send_all(&pair.client, b"a");
        let occurred = waiter.join().expect("waiter").expect("wait");
        assert_eq!(occurred, SockEvent::RECV);
    });
}

#[test]
fn a_blocked_wait_many_without_deadline_wakes_for_data_on_any_sock() {
    let _serial = serial();
    let pairs = [pair(), pair(), pair()];
    thread::scope(|scope| {
        let (waiter, _, _) = spawn_blocked(scope, poll_syscalls(), || {
            let mut entries: Vec<(&Sock, Events)> = pairs
                .iter()
                .map(|p| (&p.server, Events::new(SockEvent::RECV)))
                .collect();
            let ready = Sock::wait_many(Duration::MAX, &mut entries);
            (
                ready,
                entries.iter().map(|(_, e)| e.occurred).collect::<Vec<_>>(),
            )
        });
        send_all(&pairs[2].client, b"z");
        let (ready, occurred) = waiter.join().expect("waiter");
        assert_eq!(ready.expect("wait_many"), 1);
        assert_eq!(
            occurred,
            [SockEvent::empty(), SockEvent::empty(), SockEvent::RECV]
        );
    });
}

#[test]
fn a_blocked_wait_past_int_milliseconds_is_capped_not_wrapped_and_wakes_for_data() {
    // Core converts the timeout to int milliseconds: u32::MAX + 5 ms would wrap to 4 ms.
    let _serial = serial();
    let pair = pair();
    let huge = Duration::from_millis(u32::MAX as u64 + 5);
    thread::scope(|scope| {
        let (waiter, _, blocked) = spawn_blocked(scope, poll_syscalls(), || {
            pair.server.wait(huge, SockEvent::RECV)
        });
        if let Some(ms) = blocked.poll_timeout_ms() {
            assert_eq!(ms, i32::MAX, "capped at what int holds");
        }
        send_all(&pair.client, b"a");
        let occurred = waiter.join().expect("waiter").expect("wait");
        assert_eq!(occurred, SockEvent::RECV);
    });
}

// ---------------------------------------------------------------------------------------------
// The high-level operations sleep in poll between tries, they do not spin

#[test]
fn recv_until_terminator_on_a_sock_sleeps_in_poll_while_nothing_arrives() {
    let _serial = serial();
    let pair = pair();
    let interrupt = bitcoin_sock::ThreadInterrupt::new();
    thread::scope(|scope| {
        let (receiver, _, blocked) = spawn_blocked(scope, poll_syscalls(), || {
            bitcoin_sock::SockIo::recv_until_terminator(
                &pair.server,
                b'\n',
                TIMEOUT,
                &interrupt,
                100,
            )
        });
        if let Some(ms) = blocked.poll_timeout_ms() {
            assert!(
                ms > 0 && ms <= 1000,
                "each wait is at most MAX_WAIT_FOR_IO: {ms} ms"
            );
        }
        send_all(&pair.client, b"line\n");
        assert_eq!(receiver.join().expect("receiver").expect("line"), b"line");
    });
}

#[test]
fn send_complete_on_a_sock_sleeps_in_poll_while_the_peer_does_not_read() {
    let _serial = serial();
    let pair = pair();
    let payload = vec![5u8; 8 << 20];
    let interrupt = bitcoin_sock::ThreadInterrupt::new();
    thread::scope(|scope| {
        let (sender, _, blocked) = spawn_blocked(scope, poll_syscalls(), || {
            bitcoin_sock::SockIo::send_complete(&pair.client, &payload, TIMEOUT, &interrupt)
        });
        if let Some(ms) = blocked.poll_timeout_ms() {
            assert!(
                ms > 0 && ms <= 1000,
                "each wait is at most MAX_WAIT_FOR_IO: {ms} ms"
            );
        }
        assert_eq!(
            recv_exactly(&pair.server, payload.len()).len(),
            payload.len()
        );
        sender.join().expect("sender").expect("send_complete");
    });
}

// ---------------------------------------------------------------------------------------------
// An interrupt wakes a blocked sleep_for

#[test]
fn an_interrupt_wakes_a_sleep_for_blocked_on_its_condition_variable_promptly() {
    // A detached thread and a bounded receive: an interrupt that does not wake the sleeper
    // fails this test within PROMPTLY instead of hanging for the sleep's 60 seconds.
    let _serial = serial();
    let interrupt = std::sync::Arc::new(bitcoin_sock::ThreadInterrupt::new());
    let (ids_tx, ids_rx) = std::sync::mpsc::channel();
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let sleeper = {
        let interrupt = interrupt.clone();
        thread::spawn(move || {
            // SAFETY: gettid has no preconditions.
            ids_tx
                .send(unsafe { libc::syscall(libc::SYS_gettid) } as libc::pid_t)
                .expect("the test listens");
            let slept_through = interrupt.sleep_for(Duration::from_secs(60));
            let _ = done_tx.send(slept_through);
        })
    };
    let tid = ids_rx.recv_timeout(TIMEOUT).expect("the sleeper starts");
    wait_until_blocked(
        tid,
        common::thread::futex_syscalls(),
        || sleeper.is_finished(),
        |_| true,
    );
    let start = Instant::now();
    interrupt.interrupt();
    let slept_through = done_rx
        .recv_timeout(PROMPTLY)
        .expect("the interrupt wakes the sleeper");
    assert!(!slept_through, "sleep_for says it slept the whole time");
    assert!(start.elapsed() < PROMPTLY);
    sleeper.join().expect("sleeper");
}

// ---------------------------------------------------------------------------------------------
// EINTR inside a wait

static SIGNALS_HANDLED: AtomicUsize = AtomicUsize::new(0);

extern "C" fn count_signal(_signal: libc::c_int) {
    SIGNALS_HANDLED.fetch_add(1, Ordering::SeqCst);
}

/// A `SIGUSR1` handler that only counts, installed without `SA_RESTART` (not that it matters
/// for `poll(2)`, which the kernel never restarts: it fails with `EINTR`); the old disposition
/// comes back on drop.
struct CountingHandler {
    previous: libc::sigaction,
}

impl CountingHandler {
    fn install() -> CountingHandler {
        // SAFETY: sigaction structs are plain data; all-zero is a valid empty one.
        let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
        action.sa_sigaction = count_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
        action.sa_flags = 0;
        // SAFETY: as above, for the previous disposition.
        let mut previous: libc::sigaction = unsafe { std::mem::zeroed() };
        // SAFETY: sigemptyset initialises the mask in place; sigaction reads `action` and
        // writes `previous`, both valid. The handler only touches an atomic.
        unsafe {
            libc::sigemptyset(&mut action.sa_mask);
            assert_eq!(
                libc::sigaction(libc::SIGUSR1, &action, &mut previous),
                0,
                "sigaction: {}",
                std::io::Error::last_os_error()
            );
        }
        CountingHandler { previous }
    }
}

impl Drop for CountingHandler {
    fn drop(&mut self) {
        // SAFETY: restores the disposition saved by install.
        unsafe { libc::sigaction(libc::SIGUSR1, &self.previous, std::ptr::null_mut()) };
    }
}

fn interrupt_with_a_signal(thread: libc::pthread_t) -> usize {
    let before = SIGNALS_HANDLED.load(Ordering::SeqCst);
    // SAFETY: `thread` is alive (the caller saw it blocked and has not joined it).
    assert_eq!(unsafe { libc::pthread_kill(thread, libc::SIGUSR1) }, 0);
    before
}

#[test]
fn eintr_inside_wait_is_retried_with_the_time_left_and_data_still_wakes_it() {
    let _serial = serial();
    let _handler = CountingHandler::install();
    let pair = pair();
    let timeout = Duration::from_secs(60);
    thread::scope(|scope| {
        let (waiter, ids, first) = spawn_blocked(scope, poll_syscalls(), || {
            pair.server.wait(timeout, SockEvent::RECV)
        });
        // Let some of the wait's time pass, so a retry with the whole timeout would show.
        thread::sleep(Duration::from_millis(50));
        let before = interrupt_with_a_signal(ids.pthread);
        // The handler ran (so poll failed with EINTR) and the thread waits again.
        let again = wait_until_blocked(
            ids.tid,
            poll_syscalls(),
            || waiter.is_finished(),
            |_| SIGNALS_HANDLED.load(Ordering::SeqCst) > before,
        );
        if let (Some(whole), Some(left)) = (first.poll_timeout_ms(), again.poll_timeout_ms()) {
            assert!(
                left > 0 && left <= whole - 40,
                "the retry waits {left} ms, the first wait {whole} ms: not the time left"
            );
        }
        send_all(&pair.client, b"a");
        let occurred = waiter
            .join()
            .expect("waiter")
            .expect("EINTR is not an error of wait");
        assert_eq!(occurred, SockEvent::RECV);
    });
}

#[test]
fn eintr_inside_wait_many_without_deadline_is_retried_forever() {
    let _serial = serial();
    let _handler = CountingHandler::install();
    let first = pair();
    let second = pair();
    thread::scope(|scope| {
        let (waiter, ids, _) = spawn_blocked(scope, poll_syscalls(), || {
            let mut entries = [
                (&first.server, Events::new(SockEvent::RECV)),
                (&second.server, Events::new(SockEvent::RECV)),
            ];
            let ready = Sock::wait_many(Duration::MAX, &mut entries);
            (ready, [entries[0].1.occurred, entries[1].1.occurred])
        });
        for _ in 0..3 {
            let before = interrupt_with_a_signal(ids.pthread);
            let again = wait_until_blocked(
                ids.tid,
                poll_syscalls(),
                || waiter.is_finished(),
                |_| SIGNALS_HANDLED.load(Ordering::SeqCst) > before,
            );
            if let Some(ms) = again.poll_timeout_ms() {
                assert_eq!(ms, -1, "still without deadline after EINTR");
            }
        }
        send_all(&second.client, b"b");
        let (ready, occurred) = waiter.join().expect("waiter");
        assert_eq!(ready.expect("EINTR is not an error of wait_many"), 1);
        assert_eq!(occurred, [SockEvent::empty(), SockEvent::RECV]);
    });
}

#[test]
fn eintr_inside_a_wait_that_times_out_does_not_end_it_early() {
    let _serial = serial();
    let _handler = CountingHandler::install();
    let pair = pair();
    let timeout = Duration::from_millis(300);
    thread::scope(|scope| {
        let (waiter, ids, _) = spawn_blocked(scope, poll_syscalls(), || {
            let start = Instant::now();
            let occurred = pair.server.wait(timeout, SockEvent::RECV);
            (occurred, start.elapsed())
        });
        interrupt_with_a_signal(ids.pthread);
        let (occurred, elapsed) = waiter.join().expect("waiter");
        assert!(occurred.expect("wait").is_empty());
        assert!(elapsed >= timeout, "returned after {elapsed:?}");
        assert!(elapsed < PROMPTLY, "took {elapsed:?}");
    });
}

// ---------------------------------------------------------------------------------------------
// Failure paths close exactly what they opened

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .count()
}

/// Runs `failure` a few times and checks the process has exactly the descriptors it had.
#[track_caller]
fn assert_closes_what_it_opened(mut failure: impl FnMut()) {
    // What the first run opens once (the resolver, thread-locals) is not a leak.
    failure();
    let before = open_fds();
    for _ in 0..5 {
        failure();
    }
    assert_eq!(open_fds(), before, "the failure path leaks descriptors");
}

#[test]
fn a_connect_that_times_out_closes_its_socket() {
    let _serial = serial();
    let full = Sock::bind("127.0.0.1:0".parse().unwrap()).expect("bind");
    full.listen(0).expect("listen");
    let addr = full.local_addr().expect("addr");
    let timeout = Duration::from_millis(50);
    let mut queued = Vec::new();
    while let Ok(sock) = Sock::connect(addr, timeout) {
        queued.push(sock);
        assert!(queued.len() < 64, "the accept queue never filled");
    }
    assert_closes_what_it_opened(|| {
        let err = Sock::connect(addr, timeout).expect_err("the queue is full");
        assert!(matches!(err, SockError::ConnectTimeout { .. }), "{err:?}");
    });
}

#[test]
fn a_bind_to_an_address_in_use_closes_its_socket() {
    let _serial = serial();
    let taken = listener(V4);
    let addr = taken.local_addr().expect("addr");
    assert_closes_what_it_opened(|| {
        assert_kind(Sock::bind_listen(addr, 8), std::io::ErrorKind::AddrInUse);
    });
}

#[test]
fn socks5_failures_close_their_socket() {
    let _serial = serial();
    let refused = closed_port(V4);
    // A proxy on another thread that answers the greeting with "no acceptable method", closes
    // its end and says so, so the count below sees both ends closed.
    let proxy = listener(V4);
    let proxy_addr = proxy.local_addr().expect("addr");
    let (closed_tx, closed_rx) = std::sync::mpsc::channel();
    let stop = std::sync::atomic::AtomicBool::new(false);
    // Stops the proxy thread also when an assertion below fails, so the scope can end.
    struct StopOnDrop<'a>(&'a std::sync::atomic::AtomicBool);
    impl Drop for StopOnDrop<'_> {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }
    thread::scope(|scope| {
        let _stop = StopOnDrop(&stop);
        let answering = scope.spawn(|| {
            while !stop.load(Ordering::SeqCst) {
                if proxy
                    .wait(Duration::from_millis(20), SockEvent::RECV)
                    .expect("wait")
                    .is_empty()
                {
                    continue;
                }
                let (conn, _) = proxy.accept().expect("accept");
                assert_eq!(recv_exactly(&conn, 3), [0x05, 0x01, 0x00]);
                send_all(&conn, &[0x05, 0xff]);
                drop(conn);
                let _ = closed_tx.send(());
            }
        });
        assert_closes_what_it_opened(|| {
            let err = Sock::connect_via_socks5(refused, "example.com", 8333, None, TIMEOUT)
                .expect_err("no proxy there");
            assert!(matches!(err, Socks5Error::ProxyConnect(_)), "{err:?}");
            let err = Sock::connect_via_socks5(proxy_addr, "example.com", 8333, None, TIMEOUT)
                .expect_err("the proxy refuses every method");
            assert!(
                matches!(err, Socks5Error::WrongAuthMethod { method: 0xff }),
                "{err:?}"
            );
            closed_rx
                .recv_timeout(TIMEOUT)
                .expect("the proxy closes its end");
        });
        drop(_stop);
        answering.join().expect("proxy thread");
    });
}
