//! `SockMan` leaks no descriptor: alone in its test binary, so no other test opens or closes
//! descriptors while it counts them (Linux: `/proc/self/fd`).

#![cfg(target_os = "linux")]

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

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .count()
}

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
    for cycle in 0..10_000 {
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
    assert_eq!(open_fds(), before, "descriptors left after 10,000 cycles");
    drop(man);
    // Dropping the manager closes its listener and the poller's descriptors (epoll and the
    // notification's, natively on Linux).
    assert!(
        open_fds() <= before - 2,
        "the manager's drop closed nothing"
    );
}
