//! What `SockMan` promises its handler about ids: once the handler closes an id, inside any
//! event, no event and no question about that id follows, in that iteration or later. The
//! handler here keeps its ids as a node keeps its peers, and panics on an event for an id it
//! does not hold (the review's finding 4 of issue #24).
//!
//! One thread, driven by `run_once`, so the same tests run natively and in wasmtime.

#![cfg(sockets)]

mod common;

use std::cell::RefCell;
use std::collections::HashSet;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bitcoin_sock::sockman::{Handler, Id, Options, SockMan};
use bitcoin_sock::{Sock, SockEvent};
use common::*;

/// Where [`Strict`] closes a connection.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum CloseIn {
    GotData,
    GotEndOrError,
    ReadyToSend,
    CompletedForOne,
}

/// A handler that holds its ids in a set, as a node holds its peers in a map, and panics on
/// any event or question about an id it does not hold.
struct Strict {
    ids: RefCell<HashSet<Id>>,
    close_in: CloseIn,
    /// Closed by the handler, with the event that closed it.
    closed: Vec<(Id, CloseIn)>,
    /// Another connection to close, together with the one the event is about.
    also_close: Option<Id>,
    /// How many events and questions it answered.
    calls: usize,
}

impl Strict {
    fn new(close_in: CloseIn) -> Strict {
        Strict {
            ids: RefCell::default(),
            close_in,
            closed: Vec::new(),
            also_close: None,
            calls: 0,
        }
    }

    #[track_caller]
    fn check(&self, id: Id, event: &str) {
        assert!(
            self.ids.borrow().contains(&id),
            "{event} for {id}, which the handler closed or never had"
        );
    }

    fn close_if(&mut self, man: &SockMan, id: Id, here: CloseIn) {
        if self.close_in == here {
            assert!(man.close(id), "{id} was open");
            self.ids.borrow_mut().remove(&id);
            self.closed.push((id, here));
            if let Some(other) = self.also_close.take() {
                assert!(man.close(other), "{other} was open");
                self.ids.borrow_mut().remove(&other);
                self.closed.push((other, here));
            }
        }
    }
}

impl Handler for Strict {
    fn new_connection_accepted(
        &mut self,
        _: &SockMan,
        id: Id,
        _: SocketAddr,
        _: SocketAddr,
    ) -> bool {
        self.calls += 1;
        assert!(self.ids.borrow_mut().insert(id), "{id} accepted twice");
        true
    }

    fn ready_to_send(&mut self, man: &SockMan, id: Id) -> bool {
        self.calls += 1;
        self.check(id, "ready_to_send");
        self.close_if(man, id, CloseIn::ReadyToSend);
        false
    }

    fn got_data(&mut self, man: &SockMan, id: Id, _: &[u8]) {
        self.calls += 1;
        self.check(id, "got_data");
        self.close_if(man, id, CloseIn::GotData);
    }

    fn got_eof(&mut self, man: &SockMan, id: Id) {
        self.calls += 1;
        self.check(id, "got_eof");
        self.close_if(man, id, CloseIn::GotEndOrError);
    }

    fn got_permanent_read_error(&mut self, man: &SockMan, id: Id, _: &io::Error) {
        self.calls += 1;
        self.check(id, "got_permanent_read_error");
        self.close_if(man, id, CloseIn::GotEndOrError);
    }

    fn got_permanent_send_error(&mut self, man: &SockMan, id: Id, _: &io::Error) {
        self.calls += 1;
        self.check(id, "got_permanent_send_error");
        self.close_if(man, id, CloseIn::GotEndOrError);
    }

    fn should_try_to_send(&self, id: Id) -> bool {
        self.check(id, "should_try_to_send");
        true
    }

    fn should_try_to_recv(&self, id: Id) -> bool {
        self.check(id, "should_try_to_recv");
        true
    }

    fn io_loop_completed_for_one(&mut self, man: &SockMan, id: Id) {
        self.calls += 1;
        self.check(id, "io_loop_completed_for_one");
        self.close_if(man, id, CloseIn::CompletedForOne);
    }
}

/// Runs the loop until `done`, failing the test after [`TIMEOUT`].
#[track_caller]
fn drive(man: &SockMan, handler: &mut Strict, done: impl Fn(&Strict) -> bool) {
    let deadline = Instant::now() + TIMEOUT;
    while !done(handler) {
        assert!(Instant::now() < deadline, "not done within {TIMEOUT:?}");
        man.run_once(handler, Duration::from_millis(5))
            .expect("run_once");
    }
}

/// A manager listening on 127.0.0.1 and a client it accepted, known to `handler`.
fn accepted(handler: &mut Strict) -> (SockMan, Sock, Id) {
    let man = SockMan::with_options(Options::default()).expect("a manager");
    let addr = man.bind_and_listen(SocketAddr::new(V4, 0)).expect("listen");
    let client = Sock::connect(addr, TIMEOUT).expect("connect");
    drive(&man, handler, |h| !h.ids.borrow().is_empty());
    let id = *handler.ids.borrow().iter().next().expect("one id");
    (man, client, id)
}

/// A few more iterations after the close: no event may come for the closed id (the handler
/// panics on one), and the peer (if still there) sees the close.
fn then_nothing_more(man: &SockMan, handler: &mut Strict, client: Option<&Sock>) {
    for _ in 0..3 {
        man.run_once(handler, Duration::ZERO).expect("run_once");
    }
    assert_eq!(man.connection_count(), 0);
    if let Some(client) = client {
        let occurred = client.wait(TIMEOUT, SockEvent::RECV).expect("wait");
        assert!(occurred.contains(SockEvent::RECV), "{occurred:?}");
    }
}

#[test]
fn close_in_got_data_is_followed_by_no_event_for_that_id() {
    let mut handler = Strict::new(CloseIn::GotData);
    let (man, client, id) = accepted(&mut handler);
    send_all(&client, b"version");
    drive(&man, &mut handler, |h| !h.closed.is_empty());
    assert_eq!(handler.closed, [(id, CloseIn::GotData)]);
    then_nothing_more(&man, &mut handler, Some(&client));
}

#[test]
fn close_in_got_eof_or_a_read_error_is_followed_by_no_event_for_that_id() {
    let mut handler = Strict::new(CloseIn::GotEndOrError);
    let (man, client, id) = accepted(&mut handler);
    // The peer goes: end of stream (or a reset) for the manager.
    drop(client);
    drive(&man, &mut handler, |h| !h.closed.is_empty());
    assert_eq!(handler.closed, [(id, CloseIn::GotEndOrError)]);
    then_nothing_more(&man, &mut handler, None);
}

#[test]
fn close_in_ready_to_send_is_followed_by_no_event_for_that_id() {
    // The socket's buffer is full before the manager adopts it, and more is queued than the
    // kernel holds: the queue drains only in a step after a wait, whose rest (the receive,
    // io_loop_completed_for_one, the questions) the close in ready_to_send must cancel.
    let Pair { client, server } = pair();
    let filled = fill_send_buffer(&server);
    let man = SockMan::new().expect("a manager");
    let mut handler = Strict::new(CloseIn::ReadyToSend);
    let id = man.add_connection(server).expect("adopt");
    handler.ids.borrow_mut().insert(id);
    let queued = vec![b'q'; 4 << 20];
    man.send(id, &queued, false).expect("queued");
    let mut got = Vec::new();
    let deadline = Instant::now() + TIMEOUT;
    while handler.closed.is_empty() {
        assert!(Instant::now() < deadline, "not closed within {TIMEOUT:?}");
        // The loop first, so that its first step finds the socket full.
        man.run_once(&mut handler, Duration::from_millis(5))
            .expect("run_once");
        drain(&client, &mut got);
    }
    assert_eq!(handler.closed, [(id, CloseIn::ReadyToSend)]);
    for _ in 0..3 {
        man.run_once(&mut handler, Duration::ZERO)
            .expect("run_once");
    }
    let mut sent = filled;
    sent.extend_from_slice(&queued);
    let (rest, reset) = read_to_end(&client);
    got.extend_from_slice(&rest);
    assert!(!reset, "nothing was left unread");
    assert!(got == sent, "bytes lost or reordered");
}

/// Writes until `sock`'s send buffer is full; what it wrote.
fn fill_send_buffer(sock: &Sock) -> Vec<u8> {
    let chunk = [b'f'; 64 * 1024];
    let mut filled = Vec::new();
    loop {
        match sock.send(&chunk) {
            Ok(n) => filled.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return filled,
            Err(e) => panic!("filling the buffer: {e}"),
        }
        assert!(filled.len() < 256 << 20, "no send buffer holds 256 MiB");
    }
}

/// What `sock` has to read now, without waiting.
fn drain(sock: &Sock, into: &mut Vec<u8>) {
    let mut buf = vec![0; 64 * 1024];
    loop {
        match sock.recv(&mut buf) {
            Ok(0) => return,
            Ok(n) => into.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
            Err(e) => panic!("recv: {e}"),
        }
    }
}

#[test]
fn close_in_io_loop_completed_for_one_is_followed_by_no_question_for_that_id() {
    let mut handler = Strict::new(CloseIn::CompletedForOne);
    let (man, client, id) = accepted(&mut handler);
    send_all(&client, b"x");
    drive(&man, &mut handler, |h| !h.closed.is_empty());
    assert_eq!(handler.closed, [(id, CloseIn::CompletedForOne)]);
    then_nothing_more(&man, &mut handler, Some(&client));
}

#[test]
fn a_connection_closed_by_another_ones_event_hears_nothing_more() {
    // Two connections with bytes queued for the loop's first step. The first one's queue
    // drains there (ready_to_send), and the handler closes both: the second, still on that
    // step's list, must not be asked about.
    let man = SockMan::new().expect("a manager");
    let mut handler = Strict::new(CloseIn::ReadyToSend);
    let (first, second) = (pair(), pair());
    let a = man.add_connection(first.server).expect("adopt");
    let b = man.add_connection(second.server).expect("adopt");
    handler.ids.borrow_mut().extend([a, b]);
    man.run_once(&mut handler, Duration::ZERO)
        .expect("run_once");
    man.send(a, b"to a", true).expect("queue");
    man.send(b, b"to b", true).expect("queue");
    handler.also_close = Some(b);
    drive(&man, &mut handler, |h| !h.closed.is_empty());
    assert_eq!(
        handler.closed,
        [(a, CloseIn::ReadyToSend), (b, CloseIn::ReadyToSend)]
    );
    for _ in 0..3 {
        man.run_once(&mut handler, Duration::ZERO)
            .expect("run_once");
    }
    assert_eq!(man.connection_count(), 0);
    assert_eq!(read_to_end(&second.client), (Vec::new(), false));
}

/// Reads what `sock` still has until end of stream or a reset, failing the test after
/// [`TIMEOUT`]; the bytes, and whether it ended in a reset.
fn read_to_end(sock: &Sock) -> (Vec<u8>, bool) {
    let mut got = Vec::new();
    let deadline = Instant::now() + TIMEOUT;
    loop {
        assert!(
            Instant::now() < deadline,
            "no end of stream within {TIMEOUT:?}"
        );
        let mut buf = [0; 64 * 1024];
        match sock.recv(&mut buf) {
            Ok(0) => return (got, false),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                sock.wait(TIMEOUT, SockEvent::RECV).expect("wait");
            }
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return (got, true),
            Err(e) => panic!("recv: {e}"),
        }
    }
}
