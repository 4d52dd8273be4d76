//! The end of a WASI 0.3 program with everything still in flight: the program's `main` (here
//! libtest's) returns while sockets it leaked have reads in flight, a listener an accept, a
//! connect its subtask, a `SockMan` its probes, the reactor its timer, and a closed socket its
//! last write (to a peer that never reads). The host must see the component return, not trap
//! (a busy stream dropped, a subtask left running, a resource dropped before its children):
//! `cargo test` fails on the runner's exit status otherwise. Empty elsewhere.
#![cfg(wasi_p3)]

bitcoin_sock::wasip3_main!();

use std::io::ErrorKind;
use std::time::Duration;

use bitcoin_sock::sockman::{Handler, Id, SockMan};
use bitcoin_sock::{Sock, SockEvent};

const TIMEOUT: Duration = Duration::from_secs(10);

struct Nothing;
impl Handler for Nothing {
    fn new_connection_accepted(
        &mut self,
        _: &SockMan,
        _: Id,
        _: std::net::SocketAddr,
        _: std::net::SocketAddr,
    ) -> bool {
        true
    }
    fn got_data(&mut self, _: &SockMan, _: Id, _: &[u8]) {}
    fn got_eof(&mut self, _: &SockMan, _: Id) {}
    fn got_permanent_read_error(&mut self, _: &SockMan, _: Id, _: &std::io::Error) {}
}

/// Fills `sock`'s send side until it takes no more (its peer never reads).
fn fill(sock: &Sock) {
    let chunk = [b'f'; 64 * 1024];
    for _ in 0..10_000 {
        match sock.send(&chunk) {
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                if sock
                    .wait(Duration::from_millis(100), SockEvent::SEND)
                    .unwrap()
                    .is_empty()
                {
                    return;
                }
            }
            Err(e) => panic!("filling: {e}"),
        }
    }
    panic!("the peer took 640 MiB without reading");
}

#[test]
fn a_program_that_ends_with_everything_in_flight_returns_without_a_trap() {
    let listener = Sock::bind_listen("127.0.0.1:0".parse().unwrap(), 64).unwrap();
    let addr = listener.local_addr().unwrap();

    // A client and its accepted side, each with a read in flight (waited for RECV, nothing
    // came), and the listener with an accept in flight.
    let client = Sock::connect(addr, TIMEOUT).unwrap();
    listener.wait(TIMEOUT, SockEvent::RECV).unwrap();
    let (server, _) = listener.accept().unwrap();
    for sock in [&client, &server, &listener] {
        assert!(sock
            .wait(Duration::from_millis(1), SockEvent::RECV)
            .unwrap()
            .is_empty());
    }

    // A closed socket with its last write in flight: its peer never reads, so the write is
    // still in flight when the program ends (after the end's bounded wait for it).
    let stuck = Sock::connect(addr, TIMEOUT).unwrap();
    let (deaf_peer, _) = {
        listener.wait(TIMEOUT, SockEvent::RECV).unwrap();
        listener.accept().unwrap()
    };
    fill(&stuck);
    drop(stuck);

    // A SockMan with a connection probed and its listener accepting; the timer of its last
    // wait still armed (a long timeout that ended early).
    let man = SockMan::new().unwrap();
    let man_addr = man.bind_and_listen("127.0.0.1:0".parse().unwrap()).unwrap();
    let man_client = Sock::connect(man_addr, TIMEOUT).unwrap();
    for _ in 0..100 {
        man.run_once(&mut Nothing, Duration::from_millis(10))
            .unwrap();
        if man.connection_count() == 1 {
            break;
        }
    }
    assert_eq!(man.connection_count(), 1);
    man_client.send(b"x").unwrap();
    man.run_once(&mut Nothing, TIMEOUT).unwrap();

    // A connect still in flight: to a listener whose backlog is full, which the host
    // neither accepts nor refuses at once (or refused: then nothing is in flight, no harm).
    let full = Sock::bind_listen("127.0.0.1:0".parse().unwrap(), 1).unwrap();
    let full_addr = full.local_addr().unwrap();
    let mut queued = Vec::new();
    for _ in 0..8 {
        if let Ok(sock) = Sock::connect(full_addr, Duration::from_millis(50)) {
            queued.push(sock);
        }
    }
    let pending = Sock::connect(full_addr, Duration::ZERO);

    // Kept alive past `main`: nothing here is closed before the component returns.
    Box::leak(Box::new((
        listener, client, server, deaf_peer, man, man_client, full, queued, pending,
    )));
}
