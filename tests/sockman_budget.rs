//! What hostile peers can make a `SockMan` hold: the memory budget over all connections
//! (send queues and what the handler declares with `set_held`), the connection holding the
//! most closed past it; and Core's `fPauseSend` (a connection whose replies pile up is not
//! read from until they drain). Over loopback, natively and in wasmtime.

#![cfg(sockets)]

mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use bitcoin_sock::sockman::{Handler, Id, Options, SockMan};
use common::{expect_eof, pair, send_all, TIMEOUT};

/// Records what the loop tells it; sends nothing unless told.
#[derive(Default)]
struct Recorder {
    data: Vec<(Id, Vec<u8>)>,
    over_budget: Vec<(Id, usize, usize)>,
    /// Connections whose queue the loop may not write ([`Handler::should_try_to_send`]).
    hold_sends: HashSet<Id>,
    /// A reply queued (not written: `will_send_more`) for each receive.
    reply: Vec<u8>,
}

impl Handler for Recorder {
    fn new_connection_accepted(
        &mut self,
        _: &SockMan,
        _: Id,
        _: std::net::SocketAddr,
        _: std::net::SocketAddr,
    ) -> bool {
        true
    }
    fn got_data(&mut self, man: &SockMan, id: Id, data: &[u8]) {
        self.data.push((id, data.to_vec()));
        if !self.reply.is_empty() {
            man.send(id, &self.reply, true).expect("queue the reply");
        }
    }
    fn got_eof(&mut self, man: &SockMan, id: Id) {
        man.close(id);
    }
    fn got_permanent_read_error(&mut self, man: &SockMan, id: Id, _: &std::io::Error) {
        man.close(id);
    }
    fn memory_budget_exceeded(&mut self, _: &SockMan, id: Id, held: usize, used: usize) {
        self.over_budget.push((id, held, used));
    }
    fn should_try_to_send(&self, id: Id) -> bool {
        !self.hold_sends.contains(&id)
    }
}

/// Runs the loop until `done` holds; fails after [`TIMEOUT`].
fn run_until(man: &SockMan, handler: &mut Recorder, done: impl Fn(&Recorder) -> bool) {
    let deadline = Instant::now() + TIMEOUT;
    while !done(handler) {
        assert!(Instant::now() < deadline, "not done within {TIMEOUT:?}");
        man.run_once(handler, Duration::from_millis(50))
            .expect("run_once");
    }
}

#[test]
fn past_the_memory_budget_the_connection_holding_the_most_is_closed() {
    let man = SockMan::with_options(Options::default().with_memory_budget(100_000)).unwrap();
    let (small, large) = (pair(), pair());
    let small_id = man.add_connection(small.server).unwrap();
    let large_id = man.add_connection(large.server).unwrap();
    man.set_held(small_id, 30_000).unwrap();
    man.set_held(large_id, 60_000).unwrap();
    assert_eq!(man.memory_used(), 90_000);
    let mut handler = Recorder::default();
    man.run_once(&mut handler, Duration::ZERO).unwrap();
    assert!(handler.over_budget.is_empty(), "within the budget");

    man.set_held(large_id, 80_000).unwrap();
    assert_eq!(man.memory_held(large_id).unwrap(), 80_000);
    man.run_once(&mut handler, Duration::ZERO).unwrap();
    assert_eq!(handler.over_budget, [(large_id, 80_000, 110_000)]);
    assert!(!man.contains(large_id) && man.contains(small_id));
    assert_eq!(man.memory_used(), 30_000);
    expect_eof(&large.client);

    // A closed connection counts for nothing.
    man.close(small_id);
    assert_eq!(man.memory_used(), 0);
}

#[test]
fn send_queues_count_against_the_memory_budget() {
    let budget = 1 << 20;
    let man = SockMan::with_options(Options::default().with_memory_budget(budget)).unwrap();
    let reader = pair();
    let reading = man.add_connection(reader.server).unwrap();
    let never_reads = pair();
    let id = man.add_connection(never_reads.server).unwrap();
    // Taken whole onto an empty queue; the peer reads none, so most of it stays queued
    // (more than any loopback's socket buffers take).
    man.send(id, &vec![7; 16 << 20], false).unwrap();
    assert!(man.send_queue_len(id).unwrap() > budget);
    assert!(man.memory_used() > budget);
    let mut handler = Recorder::default();
    run_until(&man, &mut handler, |handler| {
        !handler.over_budget.is_empty()
    });
    let (closed, held, _) = handler.over_budget[0];
    assert_eq!(closed, id);
    assert!(held > budget, "{held}");
    assert!(!man.contains(id) && man.contains(reading));
    assert_eq!(man.memory_used(), 0);
}

#[test]
fn a_connection_whose_replies_pile_up_is_not_read_until_they_drain() {
    let man = SockMan::with_options(Options::default().with_pause_recv_above(1000)).unwrap();
    let peer = pair();
    let id = man.add_connection(peer.server).unwrap();
    let mut handler = Recorder {
        reply: vec![1; 2000],
        ..Recorder::default()
    };
    handler.hold_sends.insert(id);
    send_all(&peer.client, b"first");
    run_until(&man, &mut handler, |handler| !handler.data.is_empty());
    assert_eq!(man.send_queue_len(id).unwrap(), 2000);

    // 2,000 bytes wait to be sent, past the 1,000 allowed: what the peer sends next is not
    // read, however many times the loop turns (each turn would have read it at once).
    send_all(&peer.client, b"second");
    for _ in 0..10 {
        man.run_once(&mut handler, Duration::from_millis(20))
            .unwrap();
    }
    assert_eq!(handler.data.len(), 1, "read while its replies piled up");

    // The replies may go: once they drained, reading resumes.
    handler.hold_sends.clear();
    handler.reply.clear();
    man.recheck(id).unwrap();
    run_until(&man, &mut handler, |handler| handler.data.len() == 2);
    assert_eq!(handler.data[1], (id, b"second".to_vec()));
    assert_eq!(man.send_queue_len(id).unwrap(), 0);
}
