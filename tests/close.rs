//! What the peer of a closed sock sees, when the closed side's sends were stuck (its peer
//! stopped reading): natively the OS closes at once, so a socket closed with unread bytes
//! resets its peer at once (RFC 2525), and one closed without ends in end of stream after its
//! last byte. wasmtime 48 keeps a host socket open while a write is in flight; the WASI
//! backend lets that write finish (src/sys/wasi/graveyard.rs), so the peer sees the same
//! within `MAX_WAIT_FOR_IO` (issues #21 and #24). A `Sock` dropped, and a `SockMan`
//! connection closed.
//!
//! One thread: the peer is a second sock in the same test, so these run natively and in
//! wasmtime alike.

#![cfg(sockets)]

mod common;

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bitcoin_sock::sockman::{Handler, Id, SockMan};
use bitcoin_sock::{Sock, SockEvent, MAX_WAIT_FOR_IO};
use common::*;

/// Sends until `sock` takes no more (its peer does not read); how many bytes it took. A
/// would-block counts once a wait for room finds none: in wasmtime a stream is not writable
/// while the host still writes its last bytes, and not yet when it is new.
fn fill(sock: &Sock) -> usize {
    const SETTLED: Duration = Duration::from_millis(100);
    let chunk = [b'f'; 64 * 1024];
    let mut sent = 0;
    loop {
        match sock.send(&chunk) {
            Ok(n) => sent += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                let room = sock.wait(SETTLED, SockEvent::SEND).expect("wait");
                if !room.contains(SockEvent::SEND) {
                    return sent;
                }
            }
            Err(e) => panic!("filling: {e}"),
        }
        assert!(sent < 256 << 20, "no send buffer holds 256 MiB");
    }
}

/// How the peer's reading ended.
#[derive(Debug, PartialEq, Eq)]
enum End {
    Eof,
    Reset,
}

/// The peer reads what arrives, each wait at most `MAX_WAIT_FOR_IO` (none may pass without
/// news: Core's bound on a wait for I/O), until end of stream or a reset; how many bytes it
/// read and how it ended.
#[track_caller]
fn read_until_the_end(peer: &Sock) -> (usize, End) {
    let mut buf = vec![0; 256 * 1024];
    let mut read = 0;
    loop {
        match peer.recv(&mut buf) {
            Ok(0) => return (read, End::Eof),
            Ok(n) => read += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                let occurred = peer.wait(MAX_WAIT_FOR_IO, SockEvent::RECV).expect("wait");
                assert!(
                    !occurred.is_empty(),
                    "after {read} bytes, {MAX_WAIT_FOR_IO:?} passed with neither data, nor end \
                     of stream, nor a reset"
                );
            }
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return (read, End::Reset),
            Err(e) => panic!("after {read} bytes: {e}"),
        }
    }
}

/// What closing with bytes in flight must tell a peer, checked from the peer's side: `sent`
/// bytes were taken by the closed side, whose own peer had sent bytes it never read when
/// `unread` is set.
#[track_caller]
fn assert_told(peer: &Sock, sent: usize, unread: bool) {
    let (read, end) = read_until_the_end(peer);
    if unread {
        // The reset comes at once, before the closed side's unsent bytes: the peer does not
        // have to read everything first (wasmtime without the backend's help: it did, and
        // only then saw the reset).
        assert_eq!(end, End::Reset, "after {read} of {sent} bytes");
        assert!(
            read < sent,
            "the peer read all {sent} bytes before the reset: the close waited for them \
             (in wasmtime: the host's send buffer could not grow; see net.core.wmem_max)"
        );
    } else {
        assert_eq!(end, End::Eof);
        assert_eq!(read, sent, "bytes lost");
    }
}

#[test]
fn a_sock_dropped_with_unread_bytes_and_its_sends_stuck_resets_its_peer_at_once() {
    let Pair {
        client: peer,
        server,
    } = pair();
    // Sent, and not waited for on the server: a wait there would read it ahead on WASI (out
    // of the kernel, so the close would not reset). The peer is writable again once its
    // write is done, and loopback delivers it long before the fill below has ended.
    send_all(&peer, b"never read");
    wait_for(&peer, SockEvent::SEND);
    let sent = fill(&server);
    drop(server);
    assert_told(&peer, sent, true);
}

#[test]
fn a_sock_dropped_with_its_sends_stuck_ends_in_eof_after_its_last_byte() {
    let Pair {
        client: peer,
        server,
    } = pair();
    let sent = fill(&server);
    drop(server);
    assert_told(&peer, sent, false);
}

#[test]
fn a_sock_dropped_with_its_sends_stuck_and_no_room_to_grow_ends_in_eof_after_its_last_byte() {
    // The send buffer already as large as the host allows: on WASI the close cannot let the
    // kernel take the stuck write, so the sock waits for it (the backend's graveyard), and
    // the peer's waits, which watch it, close it once the peer has read enough.
    let Pair {
        client: peer,
        server,
    } = pair();
    server
        .set_send_buffer_size(i32::MAX as usize)
        .expect("SO_SNDBUF, clamped by the host");
    let sent = fill(&server);
    drop(server);
    assert_told(&peer, sent, false);
}

/// Reads nothing (the peer's bytes stay unread), hears nothing else.
struct Deaf;

impl Handler for Deaf {
    fn new_connection_accepted(
        &mut self,
        _: &SockMan,
        _: Id,
        _: SocketAddr,
        _: SocketAddr,
    ) -> bool {
        true
    }
    fn got_data(&mut self, _: &SockMan, _: Id, _: &[u8]) {}
    fn got_eof(&mut self, _: &SockMan, _: Id) {}
    fn got_permanent_read_error(&mut self, _: &SockMan, _: Id, _: &io::Error) {}
    fn should_try_to_recv(&self, _: Id) -> bool {
        false
    }
}

/// Fills the manager's connection `id` (its peer does not read) until the socket has taken
/// bytes and its queue holds more it does not take; how many bytes the socket took.
fn stuck_connection(man: &SockMan, id: Id) -> usize {
    let chunk = [b'q'; 64 * 1024];
    let mut taken = 0;
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let queued = man.send_queue_len(id).expect("queue");
        // (In wasmtime a fresh stream may queue a first send whole.)
        if queued > 0 && taken > queued {
            return taken - queued;
        }
        assert!(Instant::now() < deadline, "the socket never filled");
        if queued == 0 {
            man.send(id, &chunk, false).expect("send");
            taken += chunk.len();
        }
        man.run_once(&mut Deaf, Duration::from_millis(5))
            .expect("run_once");
    }
}

#[test]
fn a_sockman_connection_closed_with_unread_bytes_and_its_queue_stuck_resets_its_peer_at_once() {
    let man = SockMan::new().expect("a manager");
    let Pair {
        client: peer,
        server,
    } = pair();
    let id = man.add_connection(server).expect("adopt");
    man.run_once(&mut Deaf, Duration::ZERO).expect("run_once");
    send_all(&peer, b"never read");
    wait_for(&peer, SockEvent::SEND);
    let sent = stuck_connection(&man, id);
    assert!(man.close(id));
    assert_told(&peer, sent, true);
}

#[test]
fn a_sockman_connection_closed_with_its_queue_stuck_ends_in_eof_after_the_last_byte_sent() {
    let man = SockMan::new().expect("a manager");
    let Pair {
        client: peer,
        server,
    } = pair();
    let id = man.add_connection(server).expect("adopt");
    let sent = stuck_connection(&man, id);
    // close drops what is queued.
    assert!(man.close(id));
    assert_told(&peer, sent, false);
}
