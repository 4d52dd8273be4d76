//! Corners of the `SockIo` algorithms that mutation testing (`scripts/mutants.sh`) showed no
//! other test pins: limits that only matter when data arrives in pieces, counts a lying
//! primitive could push past the data, the exact wait sequence. Through `MockSock` on a fake
//! clock, so natively and in wasmtime alike, in milliseconds.

#![cfg(sockets)]

mod common;

use std::time::Duration;

use bitcoin_sock::{SockError, SockIo, MAX_WAIT_FOR_IO};
use common::{Drained, MockSock};

const SECOND: Duration = Duration::from_secs(1);

// ---------------------------------------------------------------------------------------------
// recv_until_terminator: max_data when the line arrives in pieces

#[test]
fn recv_until_terminator_counts_max_data_across_pieces() {
    // Core's recv_until_terminator_limit with the second part arriving during a wait: the
    // second peek may only look at max_data minus what was read, so 11 bytes before the
    // terminator are too many for max_data 10.
    let mock = MockSock::new()
        .data(b"1234567")
        .arriving(b"89a\n")
        .terminator(b'\n');
    let err = mock
        .recv_until_terminator(b'\n', 10 * SECOND, &mock.interrupt, 10)
        .expect_err("11 bytes before the terminator");
    assert!(matches!(err, SockError::TooManyBytes { .. }), "{err:?}");
    assert_eq!(err.received(), b"123456789a");
    assert_eq!(mock.peek_requests(), [10, 3, 3]);
    assert_eq!(mock.unread(), b"\n");
}

#[test]
fn recv_until_terminator_accepts_max_data_minus_one_bytes_across_pieces() {
    let mock = MockSock::new()
        .data(b"1234")
        .arriving(b"56789\n")
        .terminator(b'\n');
    let line = mock
        .recv_until_terminator(b'\n', 10 * SECOND, &mock.interrupt, 10)
        .expect("9 bytes and the terminator fit in max_data 10");
    assert_eq!(line, b"123456789");
    assert_eq!(mock.peek_requests(), [10, 6, 6]);
    assert!(mock.unread().is_empty());
}

#[test]
fn recv_until_terminator_peeks_grow_only_after_full_peeks() {
    // A full peek without terminator doubles the next one (512, 1024, ...); a short one keeps
    // the size.
    let mut data = vec![b'x'; 512 + 1024 + 100];
    data.push(b'\n');
    let mock = MockSock::new().data(&data).trickle(2000).terminator(b'\n');
    let line = mock
        .recv_until_terminator(b'\n', 10 * SECOND, &mock.interrupt, 1 << 20)
        .expect("line");
    assert_eq!(line.len(), 512 + 1024 + 100);
    assert_eq!(mock.peek_requests(), [512, 1024, 2048]);
    assert_eq!(mock.recv_requests(), [512, 1024, 101]);

    let short = MockSock::new()
        .data(&[b'y'; 100])
        .arriving(&[b'y'; 600])
        .arriving(b"\n")
        .terminator(b'\n');
    short
        .recv_until_terminator(b'\n', 10 * SECOND, &short.interrupt, 1 << 20)
        .expect("line");
    // 100 of 512 (short: stays 512), 512 of 512 (full: doubles), 88 of 1024, then the wait.
    assert_eq!(short.peek_requests(), [512, 512, 512, 1024, 1024, 1024]);
}

#[test]
fn recv_until_terminator_stops_growing_its_peek_at_the_cap() {
    // 256 KiB is the largest peek: a 600 KiB line takes 512, 1 Ki, ..., 128 Ki, 256 Ki, 256 Ki.
    let mut data = vec![b'z'; 600 << 10];
    data.push(b'\n');
    let mock = MockSock::new().data(&data).terminator(b'\n');
    mock.recv_until_terminator(b'\n', 10 * SECOND, &mock.interrupt, 2 << 20)
        .expect("line");
    let peeks = mock.peek_requests();
    assert_eq!(peeks.iter().max(), Some(&(256 * 1024)), "{peeks:?}");
    assert_eq!(peeks[..4], [512, 1024, 2048, 4096]);
    assert_eq!(
        peeks[peeks.len() - 2..],
        [256 * 1024, 256 * 1024],
        "{peeks:?}"
    );
}

#[test]
fn recv_until_terminator_tries_again_before_waiting_after_progress() {
    // After a read that found no terminator, more may be there already: no wait in between.
    let mock = MockSock::new()
        .data(b"abcdef\n")
        .trickle(2)
        .terminator(b'\n');
    let line = mock
        .recv_until_terminator(b'\n', 10 * SECOND, &mock.interrupt, 100)
        .expect("line");
    assert_eq!(line, b"abcdef");
    assert!(mock.waits().is_empty(), "{:?}", mock.waits());
}

#[test]
fn recv_until_terminator_waits_at_most_max_wait_for_io_and_exactly_the_time_left() {
    let mock = MockSock::new().data(b"ab");
    let timeout = Duration::from_millis(2500);
    let err = mock
        .recv_until_terminator(b'\n', timeout, &mock.interrupt, 100)
        .expect_err("timeout");
    assert!(matches!(err, SockError::RecvTimeout { .. }), "{err:?}");
    assert_eq!(
        mock.waits(),
        [MAX_WAIT_FOR_IO, MAX_WAIT_FOR_IO, Duration::from_millis(500)]
    );
    assert_eq!(err.received(), b"ab");
}

#[test]
fn recv_until_terminator_reports_a_short_read_with_the_bytes_it_did_read() {
    let mock = MockSock::new().data(b"abcdef\n").recv_at_most(4);
    let err = mock
        .recv_until_terminator(b'\n', 10 * SECOND, &mock.interrupt, 100)
        .expect_err("short read");
    let SockError::ShortRead {
        read,
        attempted,
        peeked,
        ..
    } = err
    else {
        panic!("expected ShortRead, got {err:?}");
    };
    assert_eq!((read, attempted, peeked), (4, 7, 7));
    assert_eq!(err.received(), b"abcd");
}

#[test]
fn recv_until_terminator_treats_a_failed_read_after_a_peek_as_a_short_read_of_zero() {
    let mock = MockSock::new().data(b"abc\n").recv_at_most(0);
    let err = mock
        .recv_until_terminator(b'\n', 10 * SECOND, &mock.interrupt, 100)
        .expect_err("short read");
    assert!(
        matches!(
            err,
            SockError::ShortRead {
                read: 0,
                attempted: 4,
                peeked: 4,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.received().is_empty());
}

#[test]
fn recv_until_terminator_with_eof_after_data_returns_closed_with_the_data() {
    let mock = MockSock::new().data(b"abc").then(Drained::Eof);
    let err = mock
        .recv_until_terminator(b'\n', 10 * SECOND, &mock.interrupt, 100)
        .expect_err("closed");
    assert!(matches!(err, SockError::Closed { .. }), "{err:?}");
    assert_eq!(err.received(), b"abc");
    assert!(mock.waits().is_empty());
}

// ---------------------------------------------------------------------------------------------
// send_complete: a lying send, and the wait sequence

#[test]
fn send_complete_with_a_send_claiming_more_than_it_was_given_stops_at_the_data() {
    // 3 of 10 bytes, then a send that claims 100 for the 7 left: done, with one wait between.
    let mock = MockSock::new().sends([Ok(3), Ok(100)]).overclaiming_sends();
    mock.send_complete(b"0123456789", 10 * SECOND, &mock.interrupt)
        .expect("all sent");
    assert_eq!(mock.sent(), b"0123456789");
    assert_eq!(mock.send_calls(), 2);
    assert_eq!(mock.waits(), [MAX_WAIT_FOR_IO]);
}

#[test]
fn send_complete_with_a_first_send_claiming_past_the_data_succeeds_at_once() {
    let mock = MockSock::new().sends([Ok(3)]).overclaiming_sends();
    mock.send_complete(b"01", Duration::ZERO, &mock.interrupt)
        .expect("everything was taken");
    assert_eq!(mock.sent(), b"01");
    assert_eq!(mock.send_calls(), 1);
    assert!(mock.waits().is_empty());
}

#[test]
fn send_complete_waits_at_most_max_wait_for_io_and_exactly_the_time_left() {
    let mock = MockSock::new().sends([Ok(1)]);
    let timeout = Duration::from_millis(1500);
    let err = mock
        .send_complete(b"abc", timeout, &mock.interrupt)
        .expect_err("timeout");
    let SockError::SendTimeout { sent, total } = err else {
        panic!("expected SendTimeout, got {err:?}");
    };
    assert_eq!((sent, total), (1, 3));
    assert_eq!(mock.waits(), [MAX_WAIT_FOR_IO, Duration::from_millis(500)]);
    assert_eq!(mock.send_calls(), 3);
}

// ---------------------------------------------------------------------------------------------
// interruptible_recv: a lying recv

/// Gives one byte truthfully, then sets the interrupt and claims 100 bytes more than the
/// buffer it was given.
struct OverclaimingRecv {
    recvs: std::cell::Cell<usize>,
    interrupt: bitcoin_sock::ThreadInterrupt,
}

impl SockIo for OverclaimingRecv {
    fn send(&self, data: &[u8]) -> std::io::Result<usize> {
        Ok(data.len())
    }
    fn recv(&self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.recvs.get() + 1;
        self.recvs.set(n);
        assert!(n <= 2, "recv called again after the buffer was full");
        buf.fill(b'r');
        if n == 1 {
            return Ok(1);
        }
        self.interrupt.interrupt();
        Ok(buf.len() + 100)
    }
    fn peek(&self, _buf: &mut [u8]) -> std::io::Result<usize> {
        Err(std::io::ErrorKind::WouldBlock.into())
    }
    fn wait(
        &self,
        _timeout: Duration,
        requested: bitcoin_sock::SockEvent,
    ) -> std::io::Result<bitcoin_sock::SockEvent> {
        Ok(requested)
    }
}

#[test]
fn interruptible_recv_counts_a_claim_past_the_buffer_as_the_rest_of_it() {
    // The read that filled the buffer succeeds although it set the interrupt: the claim counts
    // as exactly the bytes that were missing, so the read is complete, not interrupted.
    let sock = OverclaimingRecv {
        recvs: std::cell::Cell::new(0),
        interrupt: bitcoin_sock::ThreadInterrupt::new(),
    };
    let mut buf = [0u8; 4];
    bitcoin_sock::socks5::interruptible_recv(&sock, &mut buf, 10 * SECOND, &sock.interrupt)
        .expect("the buffer was filled");
    assert_eq!(buf, *b"rrrr");
    assert_eq!(sock.recvs.get(), 2);
}

// ---------------------------------------------------------------------------------------------
// A borrowed sock is the sock: every method of `&T` is `T`'s

/// Runs each operation through `sock`, a borrow of a mock, as generic code sees it.
fn operations_through(sock: impl SockIo, interrupt: &bitcoin_sock::ThreadInterrupt) {
    assert_eq!(sock.send(b"abcdef").expect("send"), 3);
    let mut two = [0u8; 2];
    assert_eq!(sock.peek(&mut two).expect("peek"), 2);
    assert_eq!(&two, b"li");
    assert_eq!(
        sock.wait(SECOND, bitcoin_sock::SockEvent::RECV)
            .expect("wait"),
        bitcoin_sock::SockEvent::RECV
    );
    sock.send_complete(b"ghij", SECOND, interrupt)
        .expect("send_complete");
    assert_eq!(
        sock.recv_until_terminator(b'\n', SECOND, interrupt, 100)
            .expect("line"),
        b"line"
    );
}

#[test]
fn a_borrowed_sock_forwards_every_operation_to_the_sock() {
    let mock = MockSock::new()
        .data(b"line\n")
        .arriving(b"later")
        .sends([Ok(3), Ok(2), Ok(2)]);
    // Data is readable, so wait reports it without taking the arriving chunk; the chunk
    // arrives at a wait for it.
    operations_through(&mock, &mock.interrupt);
    assert_eq!(mock.sent(), b"abcghij");
    // is_connected through the borrow, on a mock at end of stream: the sock's answer.
    let closed = MockSock::new().then(Drained::Eof);
    assert!(matches!(
        SockIo::is_connected(&&closed),
        Err(bitcoin_sock::Disconnected::Closed)
    ));
    assert!(SockIo::is_connected(&&mock).is_ok());
}

// ---------------------------------------------------------------------------------------------
// DeadlineIo over a lying primitive: io::Read and io::Write never claim past the buffer

#[test]
fn deadline_write_over_a_send_claiming_past_the_data_returns_at_most_the_data() {
    use std::io::Write;
    let mock = MockSock::new().sends([Ok(100)]).overclaiming_sends();
    let written = mock
        .with_deadline(SECOND, &mock.interrupt)
        .write(b"ab")
        .expect("write");
    assert_eq!(written, 2);
    assert_eq!(mock.sent(), b"ab");
}

#[test]
fn deadline_read_over_a_recv_claiming_past_the_buffer_returns_at_most_the_buffer() {
    use std::io::Read;
    // Past its truthful first recv: the next claims 100 bytes more than the buffer.
    let sock = OverclaimingRecv {
        recvs: std::cell::Cell::new(1),
        interrupt: bitcoin_sock::ThreadInterrupt::new(),
    };
    let mut buf = [0u8; 4];
    let read = sock
        .with_deadline(SECOND, &sock.interrupt)
        .read(&mut buf)
        .expect("read");
    assert_eq!(read, 4);
    assert_eq!(buf, *b"rrrr");
}
