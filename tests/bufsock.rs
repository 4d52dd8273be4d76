//! `BufSock`: Core's operations through a read-ahead buffer. Terminators at every buffer edge,
//! nothing lost (`into_parts`), waits that see buffered bytes, a trickling peer, the same
//! errors as the unbuffered algorithm, SOCKS5 through it, and its non-blocking `std::io`
//! traits; over `MockSock` (fake clock, no sleeping) and over loopback. Runs natively and in
//! wasmtime.

#![cfg(sockets)]

mod common;

use std::io::{self, BufRead, Read, Write};
use std::net::Shutdown;
use std::time::{Duration, Instant};

use bitcoin_sock::socks5;
use bitcoin_sock::{
    network_error_string, BufSock, Sock, SockError, SockEvent, SockIo, ThreadInterrupt,
    DEFAULT_BUF_CAPACITY, MAX_WAIT_FOR_IO,
};
use common::{
    assert_send_after_shutdown_fails, code, expect_eof, pair, recv_exactly, send_all, wait_for,
    Drained, MockSock, PROMPTLY, TIMEOUT,
};

const SECOND: Duration = Duration::from_secs(1);

fn line(sock: &impl SockIo, max_data: usize) -> Result<Vec<u8>, SockError> {
    sock.recv_until_terminator(b'\n', TIMEOUT, &ThreadInterrupt::new(), max_data)
}

/// What `BufSock` over `mock` has not consumed: its buffer, then what the mock still holds.
fn unread(sock: BufSock<MockSock>) -> Vec<u8> {
    let (mock, mut buffered) = sock.into_parts();
    buffered.extend(mock.unread());
    buffered
}

#[test]
fn recv_until_terminator_finds_the_terminator_at_every_buffer_edge() {
    // Every capacity around every terminator position: the terminator first, last, just
    // before and just after a refill, and in a later refill than the line's start.
    for pos in 0..12 {
        let mut stream = vec![b'x'; pos];
        stream.push(b'\n');
        stream.extend_from_slice(b"after\nend");
        for capacity in 1..=pos + 4 {
            for trickle in [1, 2, 3, usize::MAX] {
                let what = format!("terminator at {pos}, capacity {capacity}, trickle {trickle}");
                let sock = BufSock::with_capacity(
                    capacity,
                    MockSock::new().data(&stream).trickle(trickle),
                );
                assert_eq!(line(&sock, 100).expect(&what), vec![b'x'; pos], "{what}");
                assert_eq!(line(&sock, 100).expect(&what), b"after", "{what}");
                assert_eq!(unread(sock), b"end", "{what}");
            }
        }
    }
}

#[test]
fn a_buffered_line_longer_than_max_data_minus_one_is_too_many_bytes() {
    // The whole line is in the buffer before the call (a peek filled it): the limit still
    // holds, and exactly `max_data` bytes are consumed, no more.
    let sock = BufSock::with_capacity(64, MockSock::new().data(b"abcdef\nnext\n"));
    let mut peeked = [0u8; 1];
    assert_eq!(sock.peek(&mut peeked).expect("peek"), 1);
    match line(&sock, 6) {
        Err(SockError::TooManyBytes { received }) => assert_eq!(received, b"abcdef"),
        other => panic!("expected TooManyBytes, got {other:?}"),
    }
    assert_eq!(unread(sock), b"\nnext\n");
    // One byte more of room and the same buffered line fits: max_data - 1 bytes at most.
    let sock = BufSock::with_capacity(64, MockSock::new().data(b"abcdef\nnext\n"));
    assert_eq!(sock.peek(&mut peeked).expect("peek"), 1);
    assert_eq!(
        line(&sock, 7).expect("a line of max_data - 1 bytes"),
        b"abcdef"
    );
    assert_eq!(line(&sock, 7).expect("the next line"), b"next");
}

#[test]
fn into_parts_returns_exactly_the_bytes_read_ahead_and_not_consumed() {
    let sock = BufSock::with_capacity(8, MockSock::new().data(b"0123456789abcdef"));
    let mut first = [0u8; 3];
    assert_eq!(SockIo::recv(&sock, &mut first).expect("recv"), 3);
    assert_eq!(&first, b"012");
    let (mock, buffered) = sock.into_parts();
    // One recv of up to the capacity took 8 bytes; 3 were consumed.
    assert_eq!(buffered, b"34567");
    assert_eq!(mock.unread(), b"89abcdef");

    // Before any read, nothing is buffered and nothing was read.
    let (mock, buffered) = BufSock::new(MockSock::new().data(b"abc")).into_parts();
    assert!(buffered.is_empty());
    assert_eq!(mock.unread(), b"abc");
}

#[test]
fn bytes_after_a_terminator_stay_readable_through_the_bufsock() {
    let sock = BufSock::new(MockSock::new().data(b"version\nverack\n\x01\x02"));
    assert_eq!(line(&sock, 100).expect("line"), b"version");
    // The whole stream was read ahead in one recv; the rest is served from memory.
    assert_eq!(line(&sock, 100).expect("line"), b"verack");
    let mut rest = [0u8; 4];
    assert_eq!(SockIo::recv(&sock, &mut rest).expect("recv"), 2);
    assert_eq!(&rest[..2], b"\x01\x02");
    assert_eq!(sock.get_ref().recv_requests(), [DEFAULT_BUF_CAPACITY]);
}

#[test]
fn wait_for_recv_returns_at_once_while_bytes_are_buffered() {
    let sock = BufSock::new(MockSock::new().data(b"a\nb\n"));
    assert_eq!(line(&sock, 10).expect("line"), b"a");
    // "b\n" is buffered, the mock has nothing: the mock's wait would time out.
    assert_eq!(
        sock.wait(TIMEOUT, SockEvent::RECV).expect("wait"),
        SockEvent::RECV
    );
    assert!(sock.get_ref().waits().is_empty(), "waited on the sock");
    assert_eq!(line(&sock, 10).expect("line"), b"b");
    // Now the buffer is empty: the wait is the sock's, which times out on the fake clock.
    assert_eq!(
        sock.wait(SECOND, SockEvent::RECV).expect("wait"),
        SockEvent::empty()
    );
    assert_eq!(sock.get_ref().waits(), [SECOND]);
}

#[test]
fn wait_with_buffered_bytes_reports_the_other_requested_events_without_waiting() {
    let sock = BufSock::new(MockSock::new().data(b"x"));
    let mut byte = [0u8; 1];
    assert_eq!(sock.peek(&mut byte).expect("peek"), 1);
    // The mock's zero wait for SEND finds nothing; RECV comes from the buffer.
    let both = SockEvent::RECV | SockEvent::SEND;
    assert_eq!(sock.wait(TIMEOUT, both).expect("wait"), SockEvent::RECV);
    assert_eq!(sock.get_ref().waits(), [Duration::ZERO]);
}

#[test]
fn buffered_line_returns_at_once_over_loopback_and_wait_sees_it() {
    let p = pair();
    let server = BufSock::new(p.server);
    send_all(&p.client, b"first\nsecond\n");
    assert_eq!(line(&server, 100).expect("line"), b"first");
    // Whatever arrived with the first line is buffered; the second may still be in flight,
    // but once it is read, nothing is left in the socket.
    assert_eq!(line(&server, 100).expect("line"), b"second");
    send_all(&p.client, b"third\nfourth\n");
    wait_for(server.get_ref(), SockEvent::RECV);
    let (third, fourth_buffered) = {
        let third = line(&server, 100).expect("line");
        let mut byte = [0u8; 1];
        (third, server.peek(&mut byte).expect("peek"))
    };
    assert_eq!(third, b"third");
    assert_eq!(fourth_buffered, 1);
    let started = Instant::now();
    assert!(server
        .wait(TIMEOUT, SockEvent::RECV)
        .expect("wait")
        .contains(SockEvent::RECV));
    assert!(started.elapsed() < PROMPTLY);
    assert_eq!(line(&server, 100).expect("line"), b"fourth");
}

#[test]
fn a_peer_that_sends_one_byte_per_wait_is_read_whole() {
    let mut mock = MockSock::new().trickle(1);
    for &byte in b"hello\nworld\n" {
        mock = mock.arriving(&[byte]);
    }
    let sock = BufSock::with_capacity(4, mock);
    assert_eq!(line(&sock, 100).expect("line"), b"hello");
    assert_eq!(line(&sock, 100).expect("line"), b"world");
    // One byte per wait: twelve waits, none past the end.
    assert_eq!(sock.get_ref().waits().len(), 12);
}

#[test]
fn a_trickling_loopback_peer_is_read_whole() {
    let p = pair();
    let server = BufSock::with_capacity(3, p.server);
    let interrupt = ThreadInterrupt::new();
    for &byte in b"abc\n" {
        send_all(&p.client, &[byte]);
        wait_for(server.get_ref(), SockEvent::RECV);
    }
    assert_eq!(
        server
            .recv_until_terminator(b'\n', TIMEOUT, &interrupt, 10)
            .expect("line"),
        b"abc"
    );
}

#[test]
fn the_buffer_never_holds_more_than_its_capacity() {
    let flood = vec![b'a'; 100_000];
    let sock = BufSock::with_capacity(1024, MockSock::new().data(&flood));
    let mut seen = [0u8; 4096];
    assert_eq!(sock.peek(&mut seen).expect("peek"), 1024);
    let mut sock = sock;
    assert_eq!(sock.buffer().len(), 1024);
    match line(&sock, 5000) {
        Err(SockError::TooManyBytes { received }) => assert_eq!(received.len(), 5000),
        other => panic!("expected TooManyBytes, got {other:?}"),
    }
    let requests = sock.get_ref().recv_requests();
    assert!(requests.iter().all(|&len| len <= 1024), "{requests:?}");
    // Nothing past max_data was lost: the rest is in the buffer or the sock.
    assert_eq!(unread(sock).len(), 100_000 - 5000);
}

/// Runs `script` through the provided algorithm on a bare mock and through `BufSock`s of
/// several capacities: the same result, the same bytes, the same text, the same time taken.
#[track_caller]
fn same_as_unbuffered(script: impl Fn() -> MockSock, timeout: Duration, max_data: usize) {
    same_as_unbuffered_with(&[1, 2, 5, 64], script, timeout, max_data);
}

#[track_caller]
fn same_as_unbuffered_with(
    capacities: &[usize],
    script: impl Fn() -> MockSock,
    timeout: Duration,
    max_data: usize,
) {
    let bare = script();
    let expected = bare.recv_until_terminator(b'\n', timeout, &bare.interrupt, max_data);
    for &capacity in capacities {
        let sock = BufSock::with_capacity(capacity, script());
        let interrupt = &sock.get_ref().interrupt;
        let got = sock.recv_until_terminator(b'\n', timeout, interrupt, max_data);
        match (&expected, &got) {
            (Ok(a), Ok(b)) => assert_eq!(a, b, "capacity {capacity}"),
            (Err(a), Err(b)) => {
                assert_eq!(a.to_string(), b.to_string(), "capacity {capacity}");
                assert_eq!(a.received(), b.received(), "capacity {capacity}");
                assert_eq!(
                    std::mem::discriminant(a),
                    std::mem::discriminant(b),
                    "capacity {capacity}"
                );
            }
            _ => panic!("capacity {capacity}: unbuffered {expected:?}, buffered {got:?}"),
        }
        assert_eq!(
            bare.elapsed(),
            sock.get_ref().elapsed(),
            "capacity {capacity}"
        );
    }
}

#[test]
fn recv_until_terminator_fails_as_the_unbuffered_algorithm_does() {
    // End of stream, a permanent error, a timeout, an interrupt, too many bytes, max_data 0,
    // a wait that fails, and the successes next to them.
    same_as_unbuffered(
        || MockSock::new().data(b"abc").then(Drained::Eof),
        TIMEOUT,
        100,
    );
    same_as_unbuffered(
        || {
            MockSock::new()
                .data(b"abc")
                .then(Drained::Error(code::ECONNRESET))
        },
        TIMEOUT,
        100,
    );
    same_as_unbuffered(|| MockSock::new().data(b"abc"), 5 * SECOND, 100);
    same_as_unbuffered(
        || {
            MockSock::new()
                .data(b"ab")
                .arriving(b"c")
                .interrupt_on_wait(2)
        },
        TIMEOUT,
        100,
    );
    same_as_unbuffered(|| MockSock::new().data(b"abcdefgh\n"), TIMEOUT, 5);
    same_as_unbuffered(|| MockSock::new().data(b"abcd\n"), TIMEOUT, 5);
    same_as_unbuffered(|| MockSock::new().data(b"abc\n"), TIMEOUT, 0);
    same_as_unbuffered(|| MockSock::new().wait_error(code::EINVAL), TIMEOUT, 10);
    same_as_unbuffered(
        || MockSock::new().arriving(b"ab").arriving(b"c\nd"),
        TIMEOUT,
        10,
    );
    // With a zero timeout the deadline has passed after the first attempt, as in Core: a
    // line longer than one attempt sees (Core's peek; here the buffer) times out, so compare
    // where one attempt sees the line.
    same_as_unbuffered_with(
        &[2, 64],
        || MockSock::new().data(b"x\n"),
        Duration::ZERO,
        10,
    );
    same_as_unbuffered_with(&[2, 64], || MockSock::new().data(b"x"), Duration::ZERO, 10);
}

#[test]
fn recv_until_terminator_error_texts_are_cores() {
    let sock = BufSock::new(MockSock::new().data(b"abc").then(Drained::Eof));
    let err = line(&sock, 100).unwrap_err();
    assert_eq!(err.to_string(), "Connection unexpectedly closed by peer");
    assert_eq!(err.received(), b"abc");

    let sock = BufSock::new(MockSock::new().data(b"abc"));
    let err = sock
        .recv_until_terminator(b'\n', 3 * SECOND, &ThreadInterrupt::new(), 100)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "Receive timeout (received 3 bytes without terminator before that)"
    );
    let waits = sock.get_ref().waits();
    assert!(waits.iter().all(|&w| w <= MAX_WAIT_FOR_IO), "{waits:?}");
    assert_eq!(sock.get_ref().elapsed(), 3 * SECOND);

    let sock = BufSock::new(MockSock::new().data(b"ab").interrupt_on_wait(1));
    let err = sock
        .recv_until_terminator(b'\n', TIMEOUT, &sock.get_ref().interrupt, 100)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "Receive interrupted (received 2 bytes without terminator before that)"
    );

    let sock = BufSock::new(MockSock::new().data(b"abcdef"));
    let err = line(&sock, 4).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Received too many bytes without a terminator (4)"
    );

    let sock = BufSock::new(MockSock::new().then(Drained::Error(code::ECONNRESET)));
    let err = line(&sock, 4).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("recv(): {}", network_error_string(code::ECONNRESET))
    );
}

#[test]
fn a_terminator_already_buffered_is_returned_with_zero_timeout_and_the_interrupt_set() {
    let interrupt = ThreadInterrupt::new();
    interrupt.interrupt();
    let sock = BufSock::new(MockSock::new().data(b"one\ntwo\n"));
    for expected in [b"one", b"two"] {
        assert_eq!(
            sock.recv_until_terminator(b'\n', Duration::ZERO, &interrupt, 10)
                .expect("line"),
            expected
        );
    }
    assert!(sock.get_ref().waits().is_empty());
}

#[test]
fn a_read_error_behind_buffered_bytes_is_reported_after_them() {
    let mock = MockSock::new()
        .data(b"ab")
        .then(Drained::Error(code::ECONNRESET));
    let sock = BufSock::with_capacity(8, mock);
    let mut buf = [0u8; 8];
    assert_eq!(sock.peek(&mut buf).expect("peek"), 2);
    // This peek's top-up meets the reset: the buffered bytes come first.
    assert_eq!(sock.peek(&mut buf).expect("peek"), 2);
    assert_eq!(sock.get_ref().recv_requests().len(), 2);
    let occurred = sock.wait(TIMEOUT, SockEvent::RECV).expect("wait");
    assert!(occurred.contains(SockEvent::RECV), "{occurred:?}");
    assert_eq!(SockIo::recv(&sock, &mut buf).expect("recv"), 2);
    assert_eq!(&buf[..2], b"ab");
    // Then the error that was met, without asking the sock again.
    let err = SockIo::recv(&sock, &mut buf).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(code::ECONNRESET));
    assert_eq!(sock.get_ref().recv_requests().len(), 2);
}

#[test]
fn is_connected_through_a_bufsock() {
    // Buffered bytes: connected, even though the peer closed behind them.
    let sock = BufSock::new(MockSock::new().data(b"x").then(Drained::Eof));
    assert_eq!(sock.is_connected().map_err(|e| e.to_string()), Ok(()));
    let mut byte = [0u8; 1];
    assert_eq!(SockIo::recv(&sock, &mut byte).expect("recv"), 1);
    assert_eq!(
        sock.is_connected().map_err(|e| e.to_string()),
        Err("closed".to_owned())
    );
    // Nothing yet: connected.
    assert_eq!(
        BufSock::new(MockSock::new())
            .is_connected()
            .map_err(|e| e.to_string()),
        Ok(())
    );
    // The invalid sock.
    assert_eq!(
        BufSock::new(Sock::default())
            .is_connected()
            .map_err(|e| e.to_string()),
        Err("not connected".to_owned())
    );
}

#[test]
fn socks5_handshake_through_a_bufsock_keeps_the_tunnel_bytes() {
    let success_v4 = [0x05, 0x00, 0x00, 0x01, 127, 0, 0, 1, 0x20, 0x8d];
    let script = [[0x05, 0x00].as_slice(), &success_v4, b"tunnel data"].concat();
    let mock = MockSock::new()
        .data(&script)
        .sends([Ok(usize::MAX), Ok(usize::MAX)]);
    let sock = BufSock::new(mock);
    socks5::connect(
        &sock,
        "example.onion",
        8333,
        None,
        TIMEOUT,
        &ThreadInterrupt::new(),
    )
    .expect("handshake");
    let mut expected = vec![0x05, 0x01, 0x00, 0x05, 0x01, 0x00, 0x03, 13];
    expected.extend(b"example.onion");
    expected.extend(8333u16.to_be_bytes());
    assert_eq!(sock.get_ref().sent(), expected);
    // The handshake's reads took the tunnel's first bytes into the buffer; they are there.
    let mut tunnel = [0u8; 32];
    let n = SockIo::recv(&sock, &mut tunnel).expect("recv");
    assert_eq!(&tunnel[..n], b"tunnel data");
}

#[test]
fn read_and_bufread_are_non_blocking() {
    let p = pair();
    let mut server = BufSock::new(p.server);
    let mut buf = [0u8; 16];
    assert_eq!(
        server.read(&mut buf).unwrap_err().kind(),
        io::ErrorKind::WouldBlock
    );
    assert_eq!(
        server.fill_buf().unwrap_err().kind(),
        io::ErrorKind::WouldBlock
    );
    let mut client = BufSock::new(p.client);
    assert_eq!(client.write(b"one\ntwo\n").expect("write"), 8);
    client.flush().expect("flush");
    wait_for(server.get_ref(), SockEvent::RECV);
    let mut text = String::new();
    server.read_line(&mut text).expect("read_line");
    assert_eq!(text, "one\n");
    // The rest arrived with it and is buffered.
    assert_eq!(server.buffer(), b"two\n");
    assert_eq!(server.fill_buf().expect("fill_buf"), b"two\n");
    server.consume(2);
    assert_eq!(server.read(&mut buf).expect("read"), 2);
    assert_eq!(&buf[..2], b"o\n");
    drop(client);
    let occurred = server.wait(TIMEOUT, SockEvent::RECV).expect("wait");
    assert!(occurred.intersects(SockEvent::RECV | SockEvent::ERR));
    assert_eq!(server.read(&mut buf).expect("read at EOF"), 0);
}

#[test]
fn recv_into_a_buffer_as_big_as_the_capacity_bypasses_the_buffer() {
    let sock = BufSock::with_capacity(4, MockSock::new().data(b"0123456789"));
    let mut big = [0u8; 8];
    assert_eq!(SockIo::recv(&sock, &mut big).expect("recv"), 8);
    assert_eq!(&big, b"01234567");
    assert_eq!(sock.get_ref().recv_requests(), [8]);
}

#[test]
fn bufsock_with_capacity_zero_holds_one_byte() {
    let sock = BufSock::with_capacity(0, MockSock::new().data(b"a\n"));
    assert_eq!(sock.capacity(), 1);
    assert_eq!(line(&sock, 10).expect("line"), b"a");
}

#[test]
fn the_invalid_sock_fails_through_a_bufsock() {
    let sock = BufSock::new(Sock::default());
    let err = line(&sock, 10).unwrap_err();
    assert_eq!(err.to_string(), "recv(): not connected");
    assert_eq!(
        sock.wait(SECOND, SockEvent::RECV).unwrap_err().kind(),
        io::ErrorKind::NotConnected
    );
}

#[test]
fn recv_and_peek_into_an_empty_buffer_read_nothing() {
    let sock = BufSock::new(MockSock::new().data(b"abc"));
    assert_eq!(SockIo::recv(&sock, &mut []).expect("recv"), 0);
    assert_eq!(sock.peek(&mut []).expect("peek"), 0);
    assert!(sock.get_ref().recv_requests().is_empty());
    assert_eq!(unread(sock), b"abc");
}

#[test]
fn a_borrowed_sock_can_be_buffered() {
    let mock = MockSock::new().data(b"one\ntwo");
    {
        let sock = BufSock::with_capacity(4, &mock);
        assert_eq!(line(&sock, 10).expect("line"), b"one");
        let (_, buffered) = sock.into_parts();
        assert_eq!(buffered, b"");
    }
    assert_eq!(mock.unread(), b"two");
}

#[test]
fn bufsock_shutdown_send_gives_the_peer_end_of_stream_and_keeps_what_was_read_ahead() {
    let pair = pair();
    send_all(&pair.client, b"ahead\nrest");
    let mut server = BufSock::new(pair.server);
    assert_eq!(line(&server, 100).expect("a line"), b"ahead");
    // The rest read ahead (usually with the line already), so no read of the sock follows.
    let deadline = Instant::now() + TIMEOUT;
    while server.buffer().len() < 4 {
        assert!(Instant::now() < deadline, "the rest did not arrive");
        server.wait(TIMEOUT, SockEvent::RECV).expect("wait");
        let _ = server.peek(&mut [0; 4]);
    }
    server
        .send_complete(b"bye", TIMEOUT, &ThreadInterrupt::new())
        .expect("send");
    server.shutdown_send().expect("shutdown_send");
    assert_eq!(recv_exactly(&pair.client, 3), b"bye");
    expect_eof(&pair.client);
    // What the buffer holds is still there to read.
    let mut rest = [0; 8];
    assert_eq!(server.recv(&mut rest).expect("buffered bytes"), 4);
    assert_eq!(&rest[..4], b"rest");
    assert_send_after_shutdown_fails(server.send(b"more"));
}

#[test]
fn bufsock_over_a_borrowed_sock_shuts_down_both_halves() {
    let pair = pair();
    let server = BufSock::new(&pair.server);
    server.shutdown(Shutdown::Both).expect("shutdown(Both)");
    expect_eof(&pair.client);
    assert_send_after_shutdown_fails(server.send(b"more"));
    let invalid = Sock::default();
    let err = BufSock::new(&invalid).shutdown_send().unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::NotConnected);
}
