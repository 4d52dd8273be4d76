//! `BufSock`'s read-ahead buffer where mutation testing found no other test: a buffer that is
//! refilled while unread bytes sit behind consumed ones moves them to the front and stays at
//! its capacity, whatever the stream's length. Through `MockSock`, natively and in wasmtime.

#![cfg(sockets)]

mod common;

use bitcoin_sock::{BufSock, SockIo};
use common::MockSock;

#[test]
fn refills_behind_consumed_bytes_keep_every_byte_in_order_within_the_capacity() {
    const CAPACITY: usize = 16;
    let stream: Vec<u8> = (0..3000u32).map(|i| (i % 251) as u8).collect();
    let sock = BufSock::with_capacity(CAPACITY, MockSock::new().data(&stream).trickle(5));
    let mut received = Vec::new();
    let mut peeked = [0u8; CAPACITY];
    while received.len() < stream.len() {
        // Peek as much as the buffer holds (a refill behind what is buffered), then take 3.
        let n = sock.peek(&mut peeked).expect("peek");
        assert!(n > 0, "the stream has more");
        let at = received.len();
        assert_eq!(peeked[..n], stream[at..at + n], "peek at {at}");
        let mut three = [0u8; 3];
        let got = sock.recv(&mut three).expect("recv");
        received.extend_from_slice(&three[..got]);
    }
    assert_eq!(received, stream);
    let (_, rest) = sock.into_parts();
    assert!(rest.is_empty());
    assert!(
        rest.capacity() <= CAPACITY,
        "the read-ahead grew to {} bytes for a capacity of {CAPACITY}",
        rest.capacity()
    );
}
