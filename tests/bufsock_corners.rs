//! `BufSock` where mutation testing found no other test: a buffer that is refilled while
//! unread bytes sit behind consumed ones moves them to the front and stays at its capacity,
//! whatever the stream's length; the capacity itself; what `peek` asks of the sock when the
//! buffer is full or the stream ended behind buffered bytes. Through `MockSock`, natively and
//! in wasmtime.

#![cfg(sockets)]

mod common;

use std::time::Duration;

use bitcoin_sock::{BufSock, Sock, SockEvent, SockIo, DEFAULT_BUF_CAPACITY};
use common::{Drained, MockSock};

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

#[test]
fn a_refill_with_room_for_one_byte_moves_the_unread_bytes_instead_of_growing() {
    // A full buffer of 16 with one byte consumed: the next refill has room for exactly one
    // byte, which the unread fifteen must make by moving to the front, not by growing the
    // buffer past its capacity.
    const CAPACITY: usize = 16;
    let stream: Vec<u8> = (0..32u8).collect();
    let sock = BufSock::with_capacity(CAPACITY, MockSock::new().data(&stream));
    let mut peeked = [0u8; CAPACITY];
    assert_eq!(sock.peek(&mut peeked).expect("peek"), CAPACITY);
    let mut one = [0u8; 1];
    assert_eq!(sock.recv(&mut one).expect("recv"), 1);
    assert_eq!(sock.peek(&mut peeked).expect("peek"), CAPACITY);
    assert_eq!(peeked, stream[1..=CAPACITY]);
    let (_, rest) = sock.into_parts();
    assert_eq!(rest, stream[1..=CAPACITY]);
    assert!(
        rest.capacity() <= CAPACITY,
        "the read-ahead grew to {} bytes for a capacity of {CAPACITY}",
        rest.capacity()
    );
}

#[test]
fn the_capacity_is_the_one_asked_for_and_64_kib_by_default() {
    assert_eq!(DEFAULT_BUF_CAPACITY, 65_536);
    assert_eq!(BufSock::new(MockSock::new()).capacity(), 65_536);
    assert_eq!(BufSock::with_capacity(100, MockSock::new()).capacity(), 100);
}

#[test]
fn a_peek_past_a_full_buffer_asks_the_sock_for_nothing() {
    let stream: Vec<u8> = (0..8u8).collect();
    let sock = BufSock::with_capacity(4, MockSock::new().data(&stream));
    let mut four = [0u8; 4];
    assert_eq!(sock.peek(&mut four).expect("peek"), 4);
    // Short of eight, but the buffer has no room: what it holds is the answer.
    let mut eight = [0u8; 8];
    assert_eq!(sock.peek(&mut eight).expect("peek"), 4);
    assert_eq!(eight[..4], stream[..4]);
    assert_eq!(sock.get_ref().recv_requests(), [4]);
}

#[test]
fn a_peek_past_the_buffered_bytes_at_end_of_stream_returns_them_and_eof_follows() {
    let sock = BufSock::with_capacity(16, MockSock::new().data(b"abc").then(Drained::Eof));
    let mut two = [0u8; 2];
    assert_eq!(sock.peek(&mut two).expect("peek"), 2);
    // The top-up finds the end of stream behind the three bytes: they are still the answer.
    let mut ten = [0u8; 10];
    assert_eq!(sock.peek(&mut ten).expect("peek"), 3);
    assert_eq!(&ten[..3], b"abc");
    assert_eq!(sock.recv(&mut ten).expect("recv"), 3);
    assert_eq!(sock.recv(&mut ten).expect("recv at end of stream"), 0);
    assert_eq!(sock.peek(&mut ten).expect("peek at end of stream"), 0);
}

#[test]
fn a_peek_that_finds_nothing_more_behind_buffered_bytes_defers_no_error() {
    let sock = BufSock::with_capacity(16, MockSock::new().data(b"ab"));
    let mut two = [0u8; 2];
    assert_eq!(sock.peek(&mut two).expect("peek"), 2);
    // The top-up's recv would block: not an error to keep for later.
    let mut ten = [0u8; 10];
    assert_eq!(sock.peek(&mut ten).expect("peek"), 2);
    assert_eq!(sock.recv(&mut ten).expect("recv"), 2);
    let occurred = sock
        .wait(Duration::from_secs(1), SockEvent::RECV)
        .expect("wait");
    assert_eq!(
        occurred,
        SockEvent::empty(),
        "nothing arrived, nothing failed"
    );
    let err = sock.recv(&mut ten).expect_err("nothing to read");
    assert_eq!(err.kind(), std::io::ErrorKind::WouldBlock);
}

#[test]
fn wait_for_recv_with_bytes_buffered_asks_the_sock_nothing() {
    let sock = BufSock::with_capacity(16, MockSock::new().data(b"abc"));
    let mut one = [0u8; 1];
    assert_eq!(sock.peek(&mut one).expect("peek"), 1);
    let occurred = sock
        .wait(Duration::from_secs(1), SockEvent::RECV)
        .expect("wait");
    assert_eq!(occurred, SockEvent::RECV);
    assert!(
        sock.get_ref().waits().is_empty(),
        "{:?}",
        sock.get_ref().waits()
    );
}

#[test]
fn debug_shows_the_sock_the_bytes_buffered_and_the_capacity() {
    let sock: BufSock<Sock> = BufSock::default();
    let text = format!("{sock:?}");
    assert_eq!(
        text,
        format!(
            "BufSock {{ inner: {:?}, buffered: Some(0), capacity: 65536 }}",
            sock.get_ref()
        )
    );
}

#[test]
fn a_deferred_error_makes_wait_report_err_and_only_the_requested_recv() {
    let sock = BufSock::with_capacity(
        16,
        MockSock::new()
            .data(b"ab")
            .then(Drained::Error(common::code::ECONNRESET)),
    );
    let mut two = [0u8; 2];
    assert_eq!(sock.peek(&mut two).expect("peek"), 2);
    // The top-up meets the reset behind the two bytes: kept for after them.
    let mut ten = [0u8; 10];
    assert_eq!(sock.peek(&mut ten).expect("peek"), 2);
    let second = Duration::from_secs(1);
    assert_eq!(
        sock.wait(second, SockEvent::SEND).expect("wait"),
        SockEvent::ERR
    );
    assert_eq!(
        sock.wait(second, SockEvent::RECV | SockEvent::SEND)
            .expect("wait"),
        SockEvent::RECV | SockEvent::ERR
    );
    assert!(sock.get_ref().waits().is_empty());
}
