//! The high-level operations of `SockIo` over real loopback sockets: `send_complete`,
//! `recv_until_terminator` and `is_connected`.
//!
//! Single-threaded (the peer is the other sock of a pair, driven between calls), so the same
//! tests run natively and in wasmtime on `wasm32-wasip2`. Corner cases that need a peer acting
//! *during* a call are in `mock.rs` (scripted) and `native.rs` (threads).

#![cfg(sockets)]

mod common;

use std::time::{Duration, Instant};

use bitcoin_sock::{SockError, SockEvent, SockIo, ThreadInterrupt};
use common::*;

/// A payload no loopback connection buffers whole while its reader is idle.
const BIG: usize = 8 << 20;

/// A pair whose server has `bytes` waiting (all of them arrived).
fn pair_with_waiting(bytes: &[u8]) -> Pair {
    let pair = pair();
    send_all(&pair.client, bytes);
    wait_for(&pair.server, SockEvent::RECV);
    pair
}

fn recv_line(pair: &Pair, max_data: usize) -> Result<Vec<u8>, SockError> {
    pair.server
        .recv_until_terminator(b'\n', TIMEOUT, &ThreadInterrupt::new(), max_data)
}

// ---------------------------------------------------------------------------------------------
// send_complete

#[test]
fn send_complete_sends_one_byte() {
    let pair = pair();
    pair.client
        .send_complete(b"x", TIMEOUT, &ThreadInterrupt::new())
        .expect("send_complete");
    assert_eq!(recv_exactly(&pair.server, 1), b"x");
}

#[test]
fn send_complete_works_on_every_loopback() {
    for ip in loopbacks() {
        let pair = pair_on(ip);
        pair.client
            .send_complete(b"version\n", TIMEOUT, &ThreadInterrupt::new())
            .expect("send_complete");
        assert_eq!(recv_exactly(&pair.server, 8), b"version\n");
    }
}

#[test]
fn send_complete_of_nothing_succeeds_at_once_even_with_zero_timeout() {
    // Core's loop never ends on empty data; here it is an immediate success.
    let pair = pair();
    let interrupt = ThreadInterrupt::new();
    let start = Instant::now();
    pair.client
        .send_complete(&[], Duration::ZERO, &interrupt)
        .expect("empty send_complete");
    interrupt.interrupt();
    pair.client
        .send_complete(&[], Duration::ZERO, &interrupt)
        .expect("empty send_complete with the interrupt set");
    assert!(start.elapsed() < PROMPTLY);
}

#[test]
fn send_complete_delivers_a_payload_that_fits_intact() {
    let pair = pair();
    let payload: Vec<u8> = (0..64 * 1024).map(|i| (i % 251) as u8).collect();
    pair.client
        .send_complete(&payload, TIMEOUT, &ThreadInterrupt::new())
        .expect("send_complete");
    assert_eq!(recv_exactly(&pair.server, payload.len()), payload);
}

#[test]
fn send_complete_times_out_when_the_peer_does_not_read() {
    let pair = pair();
    let payload = vec![1u8; BIG];
    let timeout = Duration::from_millis(300);
    let start = Instant::now();
    let err = pair
        .client
        .send_complete(&payload, timeout, &ThreadInterrupt::new())
        .expect_err("the peer never reads");
    let elapsed = start.elapsed();
    let SockError::SendTimeout { sent, total } = err else {
        panic!("expected SendTimeout, got {err:?}");
    };
    assert_eq!(total, BIG);
    assert!(sent > 0 && sent < total, "sent {sent}");
    assert_eq!(
        err.to_string(),
        format!("Send timeout (sent only {sent} of 8388608 bytes before that)")
    );
    assert!(err.is_timeout());
    assert!(elapsed >= timeout, "gave up after {elapsed:?}");
    assert!(elapsed < PROMPTLY, "took {elapsed:?}");
    // The reader goes first, so the writer's unsent bytes fail instead of waiting for it
    // (see sock.rs, dropping_a_sock_with_unsent_bytes_returns_at_once).
    drop(pair.server);
}

#[test]
fn send_complete_with_the_interrupt_set_stops_after_the_first_attempt() {
    let pair = pair();
    let payload = vec![2u8; BIG];
    let interrupt = ThreadInterrupt::new();
    interrupt.interrupt();
    let start = Instant::now();
    let err = pair
        .client
        .send_complete(&payload, TIMEOUT, &interrupt)
        .expect_err("interrupted");
    let SockError::SendInterrupted { sent, total } = err else {
        panic!("expected SendInterrupted, got {err:?}");
    };
    assert_eq!(total, BIG);
    assert!(sent > 0 && sent < total, "the first attempt sent {sent}");
    assert_eq!(
        err.to_string(),
        format!("Send interrupted (sent only {sent} of 8388608 bytes before that)")
    );
    assert!(err.is_interrupted());
    assert!(start.elapsed() < PROMPTLY);
    // As above: the reader goes first.
    drop(pair.server);
}

#[test]
fn send_complete_of_a_small_payload_succeeds_with_the_interrupt_set() {
    let pair = pair();
    let interrupt = ThreadInterrupt::new();
    interrupt.interrupt();
    pair.client
        .send_complete(b"fits", TIMEOUT, &interrupt)
        .expect("one attempt comes first");
    assert_eq!(recv_exactly(&pair.server, 4), b"fits");
}

#[test]
fn send_complete_of_a_small_payload_succeeds_with_zero_timeout() {
    let pair = pair();
    pair.client
        .send_complete(b"fits", Duration::ZERO, &ThreadInterrupt::new())
        .expect("one attempt comes first");
    assert_eq!(recv_exactly(&pair.server, 4), b"fits");
}

#[test]
fn send_complete_after_own_shutdown_send_fails_with_a_send_error() {
    let pair = pair();
    pair.client.shutdown_send().expect("shutdown_send");
    let err = pair
        .client
        .send_complete(b"late", TIMEOUT, &ThreadInterrupt::new())
        .expect_err("sending half is shut");
    assert!(matches!(err, SockError::Send(_)), "{err:?}");
    let io = err.io_error().expect("an OS error inside");
    if cfg!(windows) {
        // WSAESHUTDOWN, which has no ErrorKind (assert_send_after_shutdown_fails).
        assert_eq!(io.raw_os_error(), Some(code::EPIPE), "{io}");
    } else {
        assert_eq!(io.kind(), std::io::ErrorKind::BrokenPipe, "{io}");
    }
    assert!(err.to_string().starts_with("send(): "), "{err}");
    if let Some(code) = io.raw_os_error() {
        assert_eq!(
            err.to_string(),
            format!("send(): {}", bitcoin_sock::network_error_string(code))
        );
    }
}

// ---------------------------------------------------------------------------------------------
// recv_until_terminator

#[test]
fn recv_until_terminator_returns_the_bytes_before_the_terminator() {
    let pair = pair_with_waiting(b"version\n");
    assert_eq!(recv_line(&pair, 100).expect("line"), b"version");
}

#[test]
fn recv_until_terminator_consumes_the_terminator() {
    let pair = pair_with_waiting(b"ab\n");
    assert_eq!(recv_line(&pair, 100).expect("line"), b"ab");
    assert_kind(
        pair.server.recv(&mut [0; 8]),
        std::io::ErrorKind::WouldBlock,
    );
}

#[test]
fn recv_until_terminator_leaves_bytes_after_terminator() {
    let pair = pair_with_waiting(b"ab\ncd");
    assert_eq!(recv_line(&pair, 100).expect("line"), b"ab");
    assert_eq!(recv_exactly(&pair.server, 2), b"cd");
}

#[test]
fn recv_until_terminator_finds_a_line_split_across_two_sends() {
    let pair = pair();
    send_all(&pair.client, b"hel");
    send_all(&pair.client, b"lo\nworld");
    assert_eq!(recv_line(&pair, 100).expect("line"), b"hello");
    assert_eq!(recv_exactly(&pair.server, 5), b"world");
}

#[test]
fn recv_until_terminator_reads_two_messages_sent_back_to_back() {
    let pair = pair_with_waiting(b"version\nverack\n");
    assert_eq!(recv_line(&pair, 100).expect("first"), b"version");
    assert_eq!(recv_line(&pair, 100).expect("second"), b"verack");
}

#[test]
fn recv_until_terminator_returns_an_empty_line() {
    let pair = pair_with_waiting(b"\nabc");
    assert_eq!(recv_line(&pair, 100).expect("line"), b"");
    assert_eq!(recv_exactly(&pair.server, 3), b"abc");
}

#[test]
fn recv_until_terminator_reads_a_line_longer_than_the_first_peek() {
    // Core peeks 512 bytes at a time; this crate grows its peeks. Either way, all bytes.
    let line: Vec<u8> = (0..3000).map(|i| b'a' + (i % 26) as u8).collect();
    let mut sent = line.clone();
    sent.extend_from_slice(b"\ntail");
    let pair = pair_with_waiting(&sent);
    assert_eq!(recv_line(&pair, 10_000).expect("line"), line);
    assert_eq!(recv_exactly(&pair.server, 4), b"tail");
}

#[test]
fn recv_until_terminator_takes_any_byte_as_terminator() {
    let pair = pair_with_waiting(&[0xff, b'\n', 0x80, 0x00, 0x01]);
    let line = pair
        .server
        .recv_until_terminator(0x00, TIMEOUT, &ThreadInterrupt::new(), 100)
        .expect("line");
    assert_eq!(line, [0xff, b'\n', 0x80]);
    assert_eq!(recv_exactly(&pair.server, 1), [0x01]);
}

#[test]
fn recv_until_terminator_accepts_a_line_of_max_data_minus_one_bytes() {
    let pair = pair_with_waiting(b"hello\n");
    assert_eq!(recv_line(&pair, 6).expect("line"), b"hello");
}

#[test]
fn recv_until_terminator_fails_when_a_line_reaches_max_data() {
    let pair = pair_with_waiting(b"hello\n");
    let err = recv_line(&pair, 5).expect_err("5 bytes without a terminator");
    assert!(matches!(err, SockError::TooManyBytes { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "Received too many bytes without a terminator (5)"
    );
    assert_eq!(err.received(), b"hello");
    // The terminator was not consumed.
    assert_eq!(recv_exactly(&pair.server, 1), b"\n");
}

#[test]
fn recv_until_terminator_with_zero_max_data_fails_without_reading() {
    let pair = pair_with_waiting(b"a\n");
    let err = recv_line(&pair, 0).expect_err("max_data 0");
    assert!(matches!(err, SockError::TooManyBytes { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "Received too many bytes without a terminator (0)"
    );
    assert!(err.received().is_empty());
    assert_eq!(recv_exactly(&pair.server, 2), b"a\n");
}

#[test]
fn recv_until_terminator_limit() {
    // Core's recv_until_terminator_limit, with the peer's sends done before the call.
    let pair = pair();
    let interrupt = ThreadInterrupt::new();
    pair.client
        .send_complete(b"1234567", TIMEOUT, &interrupt)
        .expect("first part");
    pair.client
        .send_complete(b"89a\n", TIMEOUT, &interrupt)
        .expect("second part");
    let err = pair
        .server
        .recv_until_terminator(b'\n', Duration::from_secs(60), &interrupt, 10)
        .expect_err("11 bytes before the terminator");
    assert!(
        err.to_string()
            .contains("too many bytes without a terminator"),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "Received too many bytes without a terminator (10)"
    );
    assert_eq!(err.received(), b"123456789a");
    assert_eq!(recv_exactly(&pair.server, 1), b"\n");
}

#[test]
fn recv_until_terminator_times_out_carrying_the_partial_line() {
    let pair = pair_with_waiting(b"12345");
    let timeout = Duration::from_millis(200);
    let start = Instant::now();
    let err = pair
        .server
        .recv_until_terminator(b'\n', timeout, &ThreadInterrupt::new(), 100)
        .expect_err("no terminator comes");
    let elapsed = start.elapsed();
    assert!(matches!(err, SockError::RecvTimeout { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "Receive timeout (received 5 bytes without terminator before that)"
    );
    assert_eq!(err.received(), b"12345");
    assert!(err.is_timeout());
    assert!(elapsed >= timeout, "gave up after {elapsed:?}");
    assert!(elapsed < PROMPTLY, "took {elapsed:?}");
}

#[test]
fn recv_until_terminator_with_the_interrupt_set_and_no_terminator_is_interrupted() {
    let pair = pair_with_waiting(b"abc");
    let interrupt = ThreadInterrupt::new();
    interrupt.interrupt();
    let start = Instant::now();
    let err = pair
        .server
        .recv_until_terminator(b'\n', TIMEOUT, &interrupt, 100)
        .expect_err("interrupted");
    assert!(matches!(err, SockError::RecvInterrupted { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "Receive interrupted (received 3 bytes without terminator before that)"
    );
    assert_eq!(err.received(), b"abc");
    assert!(err.is_interrupted());
    assert!(start.elapsed() < PROMPTLY);
    // As above: the reader goes first.
    drop(pair.server);
}

#[test]
fn recv_until_terminator_with_the_interrupt_set_and_nothing_waiting_is_interrupted() {
    let pair = pair();
    let interrupt = ThreadInterrupt::new();
    interrupt.interrupt();
    let err = pair
        .server
        .recv_until_terminator(b'\n', TIMEOUT, &interrupt, 100)
        .expect_err("interrupted");
    assert_eq!(
        err.to_string(),
        "Receive interrupted (received 0 bytes without terminator before that)"
    );
}

#[test]
fn recv_until_terminator_returns_a_waiting_line_even_with_the_interrupt_set() {
    let pair = pair_with_waiting(b"ready\n");
    let interrupt = ThreadInterrupt::new();
    interrupt.interrupt();
    let line = pair
        .server
        .recv_until_terminator(b'\n', TIMEOUT, &interrupt, 100)
        .expect("a waiting terminator wins");
    assert_eq!(line, b"ready");
}

#[test]
fn recv_until_terminator_returns_a_waiting_line_even_with_zero_timeout() {
    let pair = pair_with_waiting(b"ready\n");
    let line = pair
        .server
        .recv_until_terminator(b'\n', Duration::ZERO, &ThreadInterrupt::new(), 100)
        .expect("a waiting terminator wins");
    assert_eq!(line, b"ready");
}

#[test]
fn recv_until_terminator_with_a_huge_timeout_and_a_waiting_line_does_not_overflow() {
    let pair = pair_with_waiting(b"ready\n");
    let line = pair
        .server
        .recv_until_terminator(b'\n', Duration::MAX, &ThreadInterrupt::new(), usize::MAX)
        .expect("line");
    assert_eq!(line, b"ready");
}

#[test]
fn recv_until_terminator_reports_the_peer_closing_mid_line() {
    let pair = pair();
    send_all(&pair.client, b"partial");
    drop(pair.client);
    let err = pair
        .server
        .recv_until_terminator(b'\n', TIMEOUT, &ThreadInterrupt::new(), 100)
        .expect_err("closed before the terminator");
    assert!(matches!(err, SockError::Closed { .. }), "{err:?}");
    assert_eq!(err.to_string(), "Connection unexpectedly closed by peer");
    assert_eq!(err.received(), b"partial");
}

// ---------------------------------------------------------------------------------------------
// is_connected

#[test]
fn is_connected_on_a_live_pair() {
    let pair = pair();
    assert_eq!(
        pair.client.is_connected().map_err(|e| e.to_string()),
        Ok(())
    );
    assert_eq!(
        pair.server.is_connected().map_err(|e| e.to_string()),
        Ok(())
    );
}

#[test]
fn is_connected_with_data_waiting_does_not_consume_it() {
    let pair = pair_with_waiting(b"z");
    assert_eq!(
        pair.server.is_connected().map_err(|e| e.to_string()),
        Ok(())
    );
    assert_eq!(recv_exactly(&pair.server, 1), b"z");
}

#[test]
fn is_connected_after_the_peer_closed_says_closed_once_data_is_drained() {
    let pair = pair();
    send_all(&pair.client, b"bye");
    drop(pair.client);
    wait_for(&pair.server, SockEvent::RECV);
    // Data still waiting: connected as far as a peek can tell.
    assert_eq!(
        pair.server.is_connected().map_err(|e| e.to_string()),
        Ok(())
    );
    assert_eq!(recv_exactly(&pair.server, 3), b"bye");
    expect_eof(&pair.server);
    assert_eq!(
        pair.server.is_connected().map_err(|e| e.to_string()),
        Err("closed".to_owned())
    );
}
