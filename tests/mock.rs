//! The algorithms of `SockIo` (`send_complete`, `recv_until_terminator`, `is_connected`)
//! driven through `MockSock`: partial sends, trickling and lying peers, transient and
//! permanent errors, and every timeout path on a fake clock (no sleeping).
//!
//! No sockets at all, so these run natively and in wasmtime alike. Expected error texts are
//! built with `network_error_string`, so they hold on every host.

#![cfg(sockets)]

mod common;

use std::io;
use std::time::Duration;

use bitcoin_sock::{network_error_string, Disconnected, SockError, SockIo, MAX_WAIT_FOR_IO};
use common::{code, Drained, MockSock};

const DATA: &[u8] = b"0123456789";
const SECOND: Duration = Duration::from_secs(1);

fn would_block() -> io::Result<usize> {
    Err(io::ErrorKind::WouldBlock.into())
}

fn os_error(code: i32) -> io::Result<usize> {
    Err(io::Error::from_raw_os_error(code))
}

/// Asserts that the waits respected MAX_WAIT_FOR_IO and added up to `timeout`.
#[track_caller]
fn assert_waits_add_up_to(mock: &MockSock, timeout: Duration) {
    let waits = mock.waits();
    assert!(
        waits.iter().all(|&w| w <= MAX_WAIT_FOR_IO),
        "a wait was longer than MAX_WAIT_FOR_IO: {waits:?}"
    );
    assert_eq!(waits.iter().sum::<Duration>(), timeout, "{waits:?}");
    assert_eq!(mock.elapsed(), timeout);
}

#[test]
fn max_wait_for_io_is_cores_one_second() {
    assert_eq!(MAX_WAIT_FOR_IO, SECOND);
}

// ---------------------------------------------------------------------------------------------
// send_complete

#[test]
fn send_complete_keeps_sending_after_partial_sends() {
    let mock = MockSock::new().sends([Ok(3), Ok(2), Ok(100)]);
    mock.send_complete(DATA, 10 * SECOND, &mock.interrupt)
        .expect("all sent");
    assert_eq!(mock.sent(), DATA);
    assert_eq!(mock.send_calls(), 3);
    assert_eq!(mock.waits().len(), 2);
}

#[test]
fn send_complete_retries_after_would_block() {
    let mock = MockSock::new().sends([would_block(), Ok(10)]);
    mock.send_complete(DATA, 10 * SECOND, &mock.interrupt)
        .expect("all sent");
    assert_eq!(mock.sent(), DATA);
    assert_eq!(mock.waits(), [SECOND]);
}

#[test]
fn send_complete_retries_after_eintr() {
    let mock = MockSock::new().sends([os_error(code::EINTR), Ok(4), os_error(code::EAGAIN), Ok(6)]);
    mock.send_complete(DATA, 10 * SECOND, &mock.interrupt)
        .expect("EINTR and EAGAIN are not permanent");
    assert_eq!(mock.sent(), DATA);
    assert_eq!(mock.send_calls(), 4);
}

#[test]
fn send_complete_retries_after_a_send_of_zero_bytes() {
    let mock = MockSock::new().sends([Ok(0), Ok(10)]);
    mock.send_complete(DATA, 10 * SECOND, &mock.interrupt)
        .expect("all sent");
    assert_eq!(mock.sent(), DATA);
}

#[test]
fn send_complete_fails_at_once_on_a_permanent_error() {
    let mock = MockSock::new().sends([Ok(3), os_error(code::ECONNRESET)]);
    let err = mock
        .send_complete(DATA, 10 * SECOND, &mock.interrupt)
        .expect_err("ECONNRESET is permanent");
    assert!(matches!(err, SockError::Send(_)), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!("send(): {}", network_error_string(code::ECONNRESET))
    );
    if cfg!(target_os = "linux") {
        assert_eq!(err.to_string(), "send(): Connection reset by peer (104)");
    }
    assert_eq!(
        err.io_error().and_then(io::Error::raw_os_error),
        Some(code::ECONNRESET)
    );
    assert_eq!(mock.send_calls(), 2);
    assert_eq!(mock.waits().len(), 1);
}

#[test]
fn send_complete_of_empty_data_never_calls_send() {
    let mock = MockSock::new();
    mock.send_complete(&[], Duration::ZERO, &mock.interrupt)
        .expect("nothing to send");
    assert_eq!(mock.send_calls(), 0);
    assert!(mock.waits().is_empty());
}

#[test]
fn send_complete_times_out_after_waiting_in_max_wait_steps() {
    let mock = MockSock::new().sends([Ok(3)]);
    let timeout = 10 * SECOND;
    let err = mock
        .send_complete(DATA, timeout, &mock.interrupt)
        .expect_err("the peer stopped reading");
    assert!(
        matches!(err, SockError::SendTimeout { sent: 3, total: 10 }),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "Send timeout (sent only 3 of 10 bytes before that)"
    );
    assert_waits_add_up_to(&mock, timeout);
    assert!(
        (10..=11).contains(&mock.waits().len()),
        "{:?}",
        mock.waits()
    );
}

#[test]
fn send_complete_waits_only_the_time_left_at_the_end() {
    let mock = MockSock::new();
    let timeout = Duration::from_millis(2500);
    let err = mock
        .send_complete(DATA, timeout, &mock.interrupt)
        .expect_err("nothing is ever taken");
    assert!(
        matches!(err, SockError::SendTimeout { sent: 0, total: 10 }),
        "{err:?}"
    );
    assert_eq!(mock.waits(), [SECOND, SECOND, Duration::from_millis(500)]);
}

#[test]
fn send_complete_notices_an_interrupt_set_during_a_wait() {
    let mock = MockSock::new().sends([Ok(4)]).interrupt_on_wait(3);
    let err = mock
        .send_complete(DATA, 60 * SECOND, &mock.interrupt)
        .expect_err("interrupted");
    assert!(
        matches!(err, SockError::SendInterrupted { sent: 4, total: 10 }),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "Send interrupted (sent only 4 of 10 bytes before that)"
    );
    // Noticed right after the wait during which it was set.
    assert_eq!(mock.waits().len(), 3);
    assert_eq!(mock.send_calls(), 4);
}

#[test]
fn send_complete_with_zero_timeout_makes_exactly_one_attempt() {
    let mock = MockSock::new().sends([Ok(3)]);
    let err = mock
        .send_complete(DATA, Duration::ZERO, &mock.interrupt)
        .expect_err("no time to retry");
    assert!(
        matches!(err, SockError::SendTimeout { sent: 3, total: 10 }),
        "{err:?}"
    );
    assert_eq!(mock.send_calls(), 1);
    assert!(mock.waits().is_empty());
}

#[test]
fn send_complete_checks_the_deadline_before_the_interrupt() {
    // Core's order: with both passed, the timeout is reported.
    let mock = MockSock::new();
    mock.interrupt.interrupt();
    let err = mock
        .send_complete(DATA, Duration::ZERO, &mock.interrupt)
        .expect_err("nothing is taken");
    assert!(matches!(err, SockError::SendTimeout { .. }), "{err:?}");
}

#[test]
fn send_complete_with_the_interrupt_set_succeeds_when_one_attempt_is_enough() {
    let mock = MockSock::new().sends([Ok(10)]);
    mock.interrupt.interrupt();
    mock.send_complete(DATA, Duration::ZERO, &mock.interrupt)
        .expect("one attempt comes first");
    assert_eq!(mock.sent(), DATA);
}

#[test]
fn send_complete_with_a_huge_timeout_still_waits_in_max_wait_steps() {
    let mock = MockSock::new().interrupt_on_wait(5);
    let err = mock
        .send_complete(DATA, Duration::MAX, &mock.interrupt)
        .expect_err("interrupted");
    assert!(matches!(err, SockError::SendInterrupted { .. }), "{err:?}");
    assert_eq!(mock.waits(), [SECOND; 5]);
}

#[test]
fn send_complete_reports_a_failed_wait_with_how_much_was_sent() {
    let mock = MockSock::new().sends([Ok(3)]).wait_error(code::EBADF);
    let err = mock
        .send_complete(DATA, 10 * SECOND, &mock.interrupt)
        .expect_err("the wait fails");
    assert!(
        matches!(
            err,
            SockError::SendWait {
                sent: 3,
                total: 10,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        err.io_error().and_then(io::Error::raw_os_error),
        Some(code::EBADF)
    );
    assert_eq!(
        err.to_string(),
        format!(
            "wait(): {} (sent only 3 of 10 bytes before that)",
            network_error_string(code::EBADF)
        )
    );
    assert!(err.received().is_empty());
}

// ---------------------------------------------------------------------------------------------
// recv_until_terminator

#[test]
fn recv_until_terminator_reading_one_byte_at_a_time_finds_the_terminator() {
    let mock = MockSock::new()
        .data(b"version\nverack")
        .trickle(1)
        .terminator(b'\n');
    let line = mock
        .recv_until_terminator(b'\n', 10 * SECOND, &mock.interrupt, 100)
        .expect("line");
    assert_eq!(line, b"version");
    assert_eq!(mock.unread(), b"verack");
    assert!(mock.recv_requests().iter().all(|&len| len == 1));
}

#[test]
fn recv_until_terminator_never_asks_recv_for_bytes_after_the_terminator() {
    let mock = MockSock::new().data(b"ab\ncdef\n").terminator(b'\n');
    let line = mock
        .recv_until_terminator(b'\n', 10 * SECOND, &mock.interrupt, 100)
        .expect("line");
    assert_eq!(line, b"ab");
    assert_eq!(mock.recv_requests(), [3]);
    assert_eq!(mock.unread(), b"cdef\n");
}

#[test]
fn recv_until_terminator_finds_a_terminator_that_arrives_during_a_wait() {
    let mock = MockSock::new()
        .data(b"hel")
        .arriving(b"lo\nworld")
        .terminator(b'\n');
    let line = mock
        .recv_until_terminator(b'\n', 10 * SECOND, &mock.interrupt, 100)
        .expect("line");
    assert_eq!(line, b"hello");
    assert_eq!(mock.unread(), b"world");
    assert_eq!(mock.waits().len(), 1);
}

#[test]
fn recv_until_terminator_reports_a_read_shorter_than_its_peek() {
    let mock = MockSock::new().data(b"hello").recv_at_most(2);
    let err = mock
        .recv_until_terminator(b'\n', 10 * SECOND, &mock.interrupt, 100)
        .expect_err("the peek lied");
    assert!(
        matches!(
            err,
            SockError::ShortRead {
                read: 2,
                attempted: 5,
                peeked: 5,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "recv() returned 2 bytes on attempt to read 5 bytes but previous peek claimed 5 bytes \
         are available"
    );
    // The two bytes that were read are not lost.
    assert_eq!(err.received(), b"he");
}

#[test]
fn recv_until_terminator_keeps_the_os_error_of_a_recv_that_fails_after_its_peek() {
    // Two bytes a peek: the first two are read; a reset between the second peek and its
    // read. The error is the OS's, code and all, with the two bytes read before it (Core's
    // text would call it a read of 0 bytes, and the code would be lost).
    let mock = MockSock::new()
        .data(b"abcd\n")
        .trickle(2)
        .recv_fails_on(2, code::ECONNRESET);
    let err = mock
        .recv_until_terminator(b'\n', 10 * SECOND, &mock.interrupt, 100)
        .expect_err("the read fails");
    assert!(matches!(err, SockError::Recv { .. }), "{err:?}");
    assert_eq!(
        err.io_error().and_then(io::Error::raw_os_error),
        Some(code::ECONNRESET)
    );
    assert_eq!(
        err.to_string(),
        format!("recv(): {}", network_error_string(code::ECONNRESET))
    );
    assert_eq!(err.received(), b"ab");
    assert_eq!(mock.unread(), b"cd\n", "the failed read consumed nothing");
}

#[test]
fn recv_until_terminator_retries_a_read_that_would_block_after_its_peek() {
    // A transient error between the peek and the read loses nothing and is no short read:
    // the loop waits and reads the line.
    let mock = MockSock::new()
        .data(b"ab\n")
        .recv_fails_on(1, code::EAGAIN)
        .arriving(b"");
    let line = mock
        .recv_until_terminator(b'\n', 10 * SECOND, &mock.interrupt, 100)
        .expect("the line, after a wait");
    assert_eq!(line, b"ab");
    assert_eq!(mock.waits().len(), 1);
}

#[test]
fn recv_until_terminator_reports_the_peer_closing_mid_line() {
    let mock = MockSock::new().data(b"abc").then(Drained::Eof);
    let err = mock
        .recv_until_terminator(b'\n', 10 * SECOND, &mock.interrupt, 100)
        .expect_err("EOF before the terminator");
    assert!(matches!(err, SockError::Closed { .. }), "{err:?}");
    assert_eq!(err.to_string(), "Connection unexpectedly closed by peer");
    assert_eq!(err.received(), b"abc");
}

#[test]
fn recv_until_terminator_fails_at_once_on_a_permanent_error() {
    let mock = MockSock::new()
        .data(b"ab")
        .then(Drained::Error(code::ECONNRESET));
    let err = mock
        .recv_until_terminator(b'\n', 10 * SECOND, &mock.interrupt, 100)
        .expect_err("ECONNRESET is permanent");
    assert!(matches!(err, SockError::Recv { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!("recv(): {}", network_error_string(code::ECONNRESET))
    );
    if cfg!(target_os = "linux") {
        assert_eq!(err.to_string(), "recv(): Connection reset by peer (104)");
    }
    assert_eq!(err.received(), b"ab");
    assert!(mock.waits().is_empty());
}

#[test]
fn recv_until_terminator_retries_after_eintr() {
    let mock = MockSock::new().peek_error(code::EINTR).data(b"ok\n");
    let line = mock
        .recv_until_terminator(b'\n', 10 * SECOND, &mock.interrupt, 100)
        .expect("EINTR is not permanent");
    assert_eq!(line, b"ok");
    assert_eq!(mock.peek_requests().len(), 2);
}

#[test]
fn recv_until_terminator_waits_for_data_that_is_not_there_yet() {
    let mock = MockSock::new().arriving(b"late\n");
    let line = mock
        .recv_until_terminator(b'\n', 10 * SECOND, &mock.interrupt, 100)
        .expect("line");
    assert_eq!(line, b"late");
    assert_eq!(mock.waits().len(), 1);
}

#[test]
fn recv_until_terminator_times_out_after_waiting_in_max_wait_steps() {
    let mock = MockSock::new().data(b"ab");
    let timeout = 10 * SECOND;
    let err = mock
        .recv_until_terminator(b'\n', timeout, &mock.interrupt, 100)
        .expect_err("no terminator comes");
    assert!(matches!(err, SockError::RecvTimeout { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "Receive timeout (received 2 bytes without terminator before that)"
    );
    assert_eq!(err.received(), b"ab");
    assert_waits_add_up_to(&mock, timeout);
    assert!(
        (10..=11).contains(&mock.waits().len()),
        "{:?}",
        mock.waits()
    );
}

#[test]
fn recv_until_terminator_waits_only_the_time_left_at_the_end() {
    let mock = MockSock::new();
    let err = mock
        .recv_until_terminator(b'\n', Duration::from_millis(2500), &mock.interrupt, 100)
        .expect_err("nothing comes");
    assert!(matches!(err, SockError::RecvTimeout { .. }), "{err:?}");
    assert_eq!(mock.waits(), [SECOND, SECOND, Duration::from_millis(500)]);
}

#[test]
fn recv_until_terminator_notices_an_interrupt_set_during_a_wait() {
    let mock = MockSock::new().data(b"abc").interrupt_on_wait(3);
    let err = mock
        .recv_until_terminator(b'\n', 60 * SECOND, &mock.interrupt, 100)
        .expect_err("interrupted");
    assert!(matches!(err, SockError::RecvInterrupted { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "Receive interrupted (received 3 bytes without terminator before that)"
    );
    assert_eq!(err.received(), b"abc");
    assert_eq!(mock.waits().len(), 3);
}

#[test]
fn recv_until_terminator_with_a_huge_timeout_still_waits_in_max_wait_steps() {
    let mock = MockSock::new().interrupt_on_wait(4);
    let err = mock
        .recv_until_terminator(b'\n', Duration::MAX, &mock.interrupt, 100)
        .expect_err("interrupted");
    assert!(matches!(err, SockError::RecvInterrupted { .. }), "{err:?}");
    assert_eq!(mock.waits(), [SECOND; 4]);
}

#[test]
fn recv_until_terminator_returns_a_waiting_line_with_zero_timeout_and_the_interrupt_set() {
    let mock = MockSock::new().data(b"ready\n");
    mock.interrupt.interrupt();
    let line = mock
        .recv_until_terminator(b'\n', Duration::ZERO, &mock.interrupt, 100)
        .expect("a waiting terminator wins");
    assert_eq!(line, b"ready");
    assert!(mock.waits().is_empty());
}

#[test]
fn recv_until_terminator_never_peeks_past_max_data() {
    let mock = MockSock::new().data(&[b'x'; 100]);
    let err = mock
        .recv_until_terminator(b'\n', 10 * SECOND, &mock.interrupt, 10)
        .expect_err("no terminator in 10 bytes");
    assert!(matches!(err, SockError::TooManyBytes { .. }), "{err:?}");
    assert_eq!(err.received(), [b'x'; 10]);
    assert!(
        mock.peek_requests().iter().sum::<usize>() <= 10,
        "{:?}",
        mock.peek_requests()
    );
    assert_eq!(mock.unread().len(), 90);
}

#[test]
fn recv_until_terminator_one_byte_at_a_time_stops_at_max_data() {
    let fits = MockSock::new().data(b"abc\n").trickle(1).terminator(b'\n');
    let line = fits
        .recv_until_terminator(b'\n', 10 * SECOND, &fits.interrupt, 4)
        .expect("3 bytes and the terminator fit in max_data 4");
    assert_eq!(line, b"abc");

    let too_long = MockSock::new().data(b"abc\n").trickle(1).terminator(b'\n');
    let err = too_long
        .recv_until_terminator(b'\n', 10 * SECOND, &too_long.interrupt, 3)
        .expect_err("3 bytes without a terminator");
    assert_eq!(
        err.to_string(),
        "Received too many bytes without a terminator (3)"
    );
    assert_eq!(err.received(), b"abc");
    assert_eq!(too_long.unread(), b"\n");
}

#[test]
fn recv_until_terminator_with_zero_max_data_does_not_touch_the_socket() {
    let mock = MockSock::new().data(b"a\n");
    let err = mock
        .recv_until_terminator(b'\n', 10 * SECOND, &mock.interrupt, 0)
        .expect_err("max_data 0");
    assert!(matches!(err, SockError::TooManyBytes { .. }), "{err:?}");
    assert!(mock.peek_requests().is_empty());
    assert!(mock.recv_requests().is_empty());
    assert_eq!(mock.unread(), b"a\n");
}

#[test]
fn recv_until_terminator_reports_a_failed_wait_with_the_bytes_read() {
    let mock = MockSock::new().data(b"ab").wait_error(code::EBADF);
    let err = mock
        .recv_until_terminator(b'\n', 10 * SECOND, &mock.interrupt, 100)
        .expect_err("the wait fails");
    assert!(matches!(err, SockError::Wait { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!("wait(): {}", network_error_string(code::EBADF))
    );
    assert_eq!(err.received(), b"ab");
}

#[test]
fn recv_until_terminator_peeks_long_lines_in_few_calls() {
    // Core peeks 512 bytes at a time (about 400 peeks here); the crate must do better.
    let mut data = vec![b'x'; 200_000];
    data.push(b'\n');
    let mock = MockSock::new().data(&data).terminator(b'\n');
    let line = mock
        .recv_until_terminator(b'\n', 10 * SECOND, &mock.interrupt, 1 << 20)
        .expect("line");
    assert_eq!(line.len(), 200_000);
    assert!(
        mock.peek_requests().len() < 40,
        "{:?}",
        mock.peek_requests()
    );
    assert!(mock.unread().is_empty());
}

// ---------------------------------------------------------------------------------------------
// is_connected

#[test]
fn is_connected_peeks_one_byte_and_consumes_nothing() {
    let mock = MockSock::new().data(b"abc");
    assert_eq!(mock.is_connected().map_err(|e| e.to_string()), Ok(()));
    assert_eq!(mock.peek_requests(), [1]);
    assert!(mock.recv_requests().is_empty());
    assert_eq!(mock.unread(), b"abc");
}

#[test]
fn is_connected_treats_would_block_and_eintr_as_connected() {
    assert_eq!(
        MockSock::new().is_connected().map_err(|e| e.to_string()),
        Ok(())
    );
    assert_eq!(
        MockSock::new()
            .peek_error(code::EINTR)
            .is_connected()
            .map_err(|e| e.to_string()),
        Ok(())
    );
}

#[test]
fn is_connected_reports_eof_as_closed() {
    let mock = MockSock::new().then(Drained::Eof);
    assert_eq!(
        mock.is_connected().map_err(|e| e.to_string()),
        Err("closed".to_owned())
    );
}

#[test]
fn is_connected_reports_a_permanent_error_as_its_network_error_string() {
    let mock = MockSock::new().then(Drained::Error(code::ECONNRESET));
    assert_eq!(
        mock.is_connected().map_err(|e| e.to_string()),
        Err(network_error_string(code::ECONNRESET))
    );
}

#[test]
fn is_connected_tells_closed_from_an_error_by_type() {
    // Core's errmsg is a string; here code can tell the two apart, and the error keeps its
    // kind and code through io::Error.
    let closed = MockSock::new().then(Drained::Eof).is_connected();
    let Err(Disconnected::Closed) = closed else {
        panic!("expected Closed, got {closed:?}");
    };
    let closed = io::Error::from(Disconnected::Closed);
    assert_eq!(closed.kind(), io::ErrorKind::UnexpectedEof);
    assert_eq!(closed.to_string(), "closed");

    let reset = MockSock::new()
        .then(Drained::Error(code::ECONNRESET))
        .is_connected()
        .expect_err("reset");
    let Disconnected::Error(inner) = &reset else {
        panic!("expected Error, got {reset:?}");
    };
    assert_eq!(inner.raw_os_error(), Some(code::ECONNRESET));
    assert_eq!(
        reset.io_error().map(io::Error::kind),
        Some(io::ErrorKind::ConnectionReset)
    );
    let reset = io::Error::from(reset);
    assert_eq!(reset.raw_os_error(), Some(code::ECONNRESET));
    assert_eq!(reset.kind(), io::ErrorKind::ConnectionReset);
}

// ---------------------------------------------------------------------------------------------
// SockError as io::Error

#[test]
fn sock_errors_convert_to_io_errors_of_the_closest_kind() {
    let timeout = MockSock::new();
    let err = timeout
        .recv_until_terminator(b'\n', Duration::ZERO, &timeout.interrupt, 100)
        .expect_err("timeout");
    assert_eq!(io::Error::from(err).kind(), io::ErrorKind::TimedOut);

    let interrupted = MockSock::new();
    interrupted.interrupt.interrupt();
    let err = interrupted
        .recv_until_terminator(b'\n', 10 * SECOND, &interrupted.interrupt, 100)
        .expect_err("interrupted");
    // Other, as DeadlineIo's: std's loops retry `Interrupted` at once, forever.
    let converted = io::Error::from(err);
    assert_eq!(converted.kind(), io::ErrorKind::Other);
    assert_eq!(
        converted.to_string(),
        "Receive interrupted (received 0 bytes without terminator before that)"
    );

    let closed = MockSock::new().then(Drained::Eof);
    let err = closed
        .recv_until_terminator(b'\n', 10 * SECOND, &closed.interrupt, 100)
        .expect_err("closed");
    assert_eq!(io::Error::from(err).kind(), io::ErrorKind::UnexpectedEof);

    let too_long = MockSock::new().data(b"abc");
    let err = too_long
        .recv_until_terminator(b'\n', 10 * SECOND, &too_long.interrupt, 2)
        .expect_err("too many bytes");
    assert_eq!(io::Error::from(err).kind(), io::ErrorKind::InvalidData);

    let reset = MockSock::new().sends([os_error(code::ECONNRESET)]);
    let err = reset
        .send_complete(DATA, 10 * SECOND, &reset.interrupt)
        .expect_err("reset");
    // The OS error itself, code and all.
    assert_eq!(io::Error::from(err).raw_os_error(), Some(code::ECONNRESET));
}

/// A `Write` that sends each buffer with `send_complete(..)?`, as a user would write one, and
/// a `Read` that reads a line with `recv_until_terminator(..)?`; each counts its calls and
/// fails the test past a bound, so a std loop that retries them without end fails here at
/// once instead of spinning.
struct CoreAdapter<'a> {
    mock: &'a MockSock,
    calls: usize,
}

impl CoreAdapter<'_> {
    const MAX_CALLS: usize = 3;

    fn count(&mut self) {
        self.calls += 1;
        assert!(
            self.calls <= Self::MAX_CALLS,
            "std retried an interrupted operation {} times",
            self.calls
        );
    }
}

impl io::Write for CoreAdapter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.count();
        self.mock
            .send_complete(buf, 10 * SECOND, &self.mock.interrupt)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl io::Read for CoreAdapter<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.count();
        let line =
            self.mock
                .recv_until_terminator(b'\n', 10 * SECOND, &self.mock.interrupt, buf.len())?;
        buf[..line.len()].copy_from_slice(&line);
        Ok(line.len())
    }
}

#[test]
fn std_loops_over_send_complete_and_recv_until_terminator_stop_at_an_interrupt() {
    use std::io::{Read, Write};

    // A peer that takes nothing, the interrupt set: write_all gets the interrupt as an error
    // after one call, instead of retrying it.
    let mock = MockSock::new();
    mock.interrupt.interrupt();
    let mut writer = CoreAdapter {
        mock: &mock,
        calls: 0,
    };
    let err = writer.write_all(DATA).expect_err("interrupted");
    assert_eq!(writer.calls, 1);
    assert_eq!(err.kind(), io::ErrorKind::Other);
    assert_eq!(
        err.to_string(),
        "Send interrupted (sent only 0 of 10 bytes before that)"
    );
    let inner = err.get_ref().and_then(|e| e.downcast_ref::<SockError>());
    assert!(inner.is_some_and(SockError::is_interrupted), "{err:?}");

    // Nothing arrives, the interrupt set: read_exact and read_to_end stop the same way.
    let mock = MockSock::new();
    mock.interrupt.interrupt();
    let mut reader = CoreAdapter {
        mock: &mock,
        calls: 0,
    };
    let err = reader.read_exact(&mut [0; 4]).expect_err("interrupted");
    assert_eq!((err.kind(), reader.calls), (io::ErrorKind::Other, 1));
    reader.calls = 0;
    let err = reader
        .read_to_end(&mut Vec::new())
        .expect_err("interrupted");
    assert_eq!((err.kind(), reader.calls), (io::ErrorKind::Other, 1));
}
