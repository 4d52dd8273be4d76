//! What a `SockMan` connection's send queue holds on to, seen through a counting allocator
//! (the reason this is a test binary of its own: one global allocator per binary): a queue
//! that drained keeps an allocation of up to 64 KiB for the next burst, so a connection that
//! sends in bursts allocates nothing per burst; one that grew past that gives it back, so an
//! idle connection holds no more. Natively and in wasmtime.

#![cfg(sockets)]

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bitcoin_sock::sockman::{Handler, Id, SockMan};
use bitcoin_sock::Sock;
use common::{pair, Pair, TIMEOUT};

/// Counts live heap bytes, and allocations of [`BIG`] bytes or more (a queue's buffer; no
/// read or poll result of these tests is that large).
struct Counting;

const BIG: usize = 16 * 1024;
static LIVE: AtomicIsize = AtomicIsize::new(0);
static BIG_ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

fn count(size: usize) {
    if size >= BIG {
        BIG_ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
    }
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged; counting
// touches only atomics.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract, which `System` shares.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: `ptr` came from this allocator, i.e. from `System`, with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size);
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        // SAFETY: `ptr` came from this allocator, i.e. from `System`, with `layout`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Reads and drops what has arrived, a few KiB at a time (no large allocation).
struct Drain;

impl Handler for Drain {
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

/// Runs the loop and reads at the peer until `len` more bytes have arrived there.
fn deliver(man: &SockMan, peer: &Sock, len: usize) {
    let mut buf = [0u8; 4096];
    let mut got = 0;
    let deadline = Instant::now() + TIMEOUT;
    while got < len {
        assert!(
            Instant::now() < deadline,
            "only {got} of {len} bytes arrived"
        );
        man.run_once(&mut Drain, Duration::from_millis(5))
            .expect("run_once");
        loop {
            match peer.recv(&mut buf) {
                Ok(0) => panic!("the manager closed"),
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => panic!("peer recv: {e}"),
            }
        }
    }
    assert_eq!(got, len, "more bytes than were sent");
}

/// One test, so nothing else allocates while it counts.
#[test]
fn a_drained_send_queue_keeps_64_kib_for_the_next_burst_and_gives_back_more() {
    let man = SockMan::new().expect("a manager");
    let Pair { client, server } = pair();
    let id = man.add_connection(server).expect("adopt");
    man.run_once(&mut Drain, Duration::ZERO).expect("run_once");

    // Bursts of exactly 64 KiB, queued (will_send_more) and written by the loop: after the
    // first, the queue's buffer is reused, not given back and taken again.
    let burst = vec![7u8; 64 * 1024];
    for _ in 0..3 {
        man.send(id, &burst, true).expect("queue");
        deliver(&man, &client, burst.len());
    }
    let big_before = BIG_ALLOCATIONS.load(Ordering::Relaxed);
    for _ in 0..20 {
        man.send(id, &burst, true).expect("queue");
        deliver(&man, &client, burst.len());
    }
    let big = BIG_ALLOCATIONS.load(Ordering::Relaxed) - big_before;
    assert_eq!(big, 0, "{big} buffers of {BIG} bytes or more for 20 bursts");

    // A burst of 1 MiB grows the queue past what it keeps; once drained it is given back.
    let live_before = LIVE.load(Ordering::Relaxed);
    let chunk = vec![9u8; 64 * 1024];
    for _ in 0..16 {
        man.send(id, &chunk, true).expect("queue");
    }
    deliver(&man, &client, 16 * chunk.len());
    let held = LIVE.load(Ordering::Relaxed) - live_before;
    assert!(
        held <= 0,
        "the drained queue holds {held} bytes more than before the 1 MiB burst"
    );
    assert_eq!(man.send_queue_len(id).expect("queue"), 0);
}
