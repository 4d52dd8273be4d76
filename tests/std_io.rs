//! `std::io` on socks: the non-blocking `Read`/`Write` of `Sock` and `&Sock`, and `DeadlineIo`,
//! the blocking adapter with Core's deadline and interrupt: exact texts and kinds on a fake
//! clock (`MockSock`, no sleeping), and real reads and writes over loopback. Runs natively and
//! in wasmtime.

#![cfg(sockets)]

mod common;

use std::error::Error as _;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::time::Duration;

use bitcoin_sock::IntrRecvError;
use bitcoin_sock::{
    BufSock, DeadlineIo, Sock, SockError, SockEvent, SockIo, ThreadInterrupt, MAX_WAIT_FOR_IO,
};
use common::{code, pair, recv_exactly, send_all, wait_for, Drained, MockSock, TIMEOUT};

const SECOND: Duration = Duration::from_secs(1);

#[track_caller]
fn assert_waits_add_up_to(mock: &MockSock, timeout: Duration) {
    let waits = mock.waits();
    assert!(
        waits.iter().all(|&w| w <= MAX_WAIT_FOR_IO),
        "a wait was longer than MAX_WAIT_FOR_IO: {waits:?}"
    );
    assert_eq!(mock.elapsed(), timeout, "{waits:?}");
}

#[track_caller]
fn inner<T: std::error::Error + 'static>(err: &io::Error) -> &T {
    err.get_ref()
        .and_then(|inner| inner.downcast_ref::<T>())
        .unwrap_or_else(|| panic!("{err:?} does not carry a {}", std::any::type_name::<T>()))
}

// ---- Sock's own Read and Write: non-blocking ----

#[test]
fn sock_read_and_write_are_non_blocking() {
    let p = pair();
    let mut buf = [0u8; 8];
    // Nothing has arrived: WouldBlock passes through, by reference and by value.
    assert_eq!(
        (&p.server).read(&mut buf).unwrap_err().kind(),
        io::ErrorKind::WouldBlock
    );
    let mut server = p.server;
    assert_eq!(
        server.read(&mut buf).unwrap_err().kind(),
        io::ErrorKind::WouldBlock
    );
    assert_eq!((&p.client).write(b"abc").expect("write"), 3);
    (&p.client).flush().expect("flush");
    wait_for(&server, SockEvent::RECV);
    assert_eq!(server.read(&mut buf).expect("read"), 3);
    assert_eq!(&buf[..3], b"abc");

    let mut client = p.client;
    assert_eq!(client.write(b"de").expect("write"), 2);
    client.flush().expect("flush");
    assert_eq!(recv_exactly(&server, 2), b"de");
    drop(client);
    wait_for(&server, SockEvent::RECV);
    assert_eq!(server.read(&mut buf).expect("read at EOF"), 0);
}

#[test]
fn sock_write_would_block_when_the_peer_does_not_read() {
    let p = pair();
    let chunk = vec![0u8; 64 * 1024];
    let mut writer = &p.client;
    let mut would_block = false;
    // The send buffers of both ends fill up within a few megabytes; far below this bound.
    for _ in 0..100_000 {
        match writer.write(&chunk) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                would_block = true;
                break;
            }
            Err(e) => panic!("write failed: {e}"),
        }
    }
    assert!(would_block, "a peer that never reads took everything");
}

#[test]
fn sock_read_on_the_invalid_sock_is_not_connected() {
    let mut sock = Sock::default();
    common::assert_not_connected(sock.read(&mut [0u8; 4]));
    common::assert_not_connected(sock.write(b"x"));
}

// ---- DeadlineIo: reads ----

#[test]
fn deadline_read_exact_times_out_with_cores_text_on_the_fake_clock() {
    let mock = MockSock::new().data(b"abc");
    let mut reader = mock.with_deadline(5 * SECOND, &mock.interrupt);
    let mut buf = [0u8; 10];
    let err = reader.read_exact(&mut buf).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    assert_eq!(
        err.to_string(),
        "Receive timeout (received 3 of 10 bytes before that)"
    );
    assert!(matches!(
        inner::<IntrRecvError>(&err),
        IntrRecvError::Timeout {
            received: 3,
            expected: 10
        }
    ));
    assert_eq!(&buf[..3], b"abc");
    assert_waits_add_up_to(&mock, 5 * SECOND);
}

#[test]
fn deadline_read_times_out_when_nothing_arrives() {
    let mock = MockSock::new();
    let mut reader = DeadlineIo::new(&mock, 3 * SECOND, &mock.interrupt);
    let err = reader.read(&mut [0u8; 8]).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    assert_eq!(
        err.to_string(),
        "Receive timeout (received 0 of 8 bytes before that)"
    );
    assert_waits_add_up_to(&mock, 3 * SECOND);
}

#[test]
fn deadline_reads_share_one_deadline() {
    // Each read waits for its byte; the deadline runs from the first wait, so the third read,
    // which finds nothing, has only what is left of the five seconds.
    let mock = MockSock::new().arriving(b"a").arriving(b"b");
    let mut reader = mock.with_deadline(5 * SECOND, &mock.interrupt);
    let mut byte = [0u8; 1];
    assert_eq!(reader.read(&mut byte).expect("read"), 1);
    assert_eq!(reader.read(&mut byte).expect("read"), 1);
    assert_eq!(
        reader.read(&mut byte).unwrap_err().kind(),
        io::ErrorKind::TimedOut
    );
    assert_eq!(mock.elapsed(), 5 * SECOND);
}

#[test]
fn deadline_read_interrupted_is_not_the_kind_io_retries() {
    let mock = MockSock::new().data(b"ab").interrupt_on_wait(2);
    let mut reader = mock.with_deadline(TIMEOUT, &mock.interrupt);
    let mut buf = [0u8; 5];
    let err = reader.read_exact(&mut buf).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Receive interrupted (received 2 of 5 bytes before that)"
    );
    // `Interrupted` would make read_exact, read_to_end and BufReader retry forever.
    assert_eq!(err.kind(), io::ErrorKind::Other);
    assert!(matches!(
        inner::<IntrRecvError>(&err),
        IntrRecvError::Interrupted { .. }
    ));
    assert_eq!(mock.waits().len(), 2);

    // So std's own loops stop at once on an interrupt that is set.
    let mock = MockSock::new();
    mock.interrupt.interrupt();
    let mut all = Vec::new();
    // Bounded by `take`, as reads from a peer should be: a read that never ends fails here.
    let err = mock
        .with_deadline(TIMEOUT, &mock.interrupt)
        .take(1000)
        .read_to_end(&mut all)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "Receive interrupted (received 0 of 32 bytes before that)"
    );
    assert!(mock.waits().is_empty());
}

#[test]
fn deadline_read_returns_what_is_there_despite_deadline_and_interrupt() {
    let mock = MockSock::new().data(b"ready");
    mock.interrupt.interrupt();
    let mut reader = mock.with_deadline(Duration::ZERO, &mock.interrupt);
    let mut buf = [0u8; 5];
    reader.read_exact(&mut buf).expect("read_exact");
    assert_eq!(&buf, b"ready");
    assert!(mock.waits().is_empty());
}

#[test]
fn deadline_read_at_end_of_stream() {
    let mock = MockSock::new().data(b"abc").then(Drained::Eof);
    let mut reader = mock.with_deadline(TIMEOUT, &mock.interrupt);
    let mut buf = [0u8; 8];
    // read: the bytes, then Ok(0), as io::Read says.
    assert_eq!(reader.read(&mut buf).expect("read"), 3);
    assert_eq!(reader.read(&mut buf).expect("read at EOF"), 0);

    let mock = MockSock::new().data(b"abc").then(Drained::Eof);
    let err = mock
        .with_deadline(TIMEOUT, &mock.interrupt)
        .read_exact(&mut buf)
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    assert_eq!(
        err.to_string(),
        "Connection unexpectedly closed by peer (received 3 of 8 bytes before that)"
    );
}

#[test]
fn deadline_read_passes_permanent_errors_through() {
    let mock = MockSock::new().then(Drained::Error(code::ECONNRESET));
    let mut reader = mock.with_deadline(TIMEOUT, &mock.interrupt);
    let err = reader.read(&mut [0u8; 4]).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(code::ECONNRESET));

    let mock = MockSock::new()
        .data(b"a")
        .then(Drained::Error(code::ECONNRESET));
    let err = mock
        .with_deadline(TIMEOUT, &mock.interrupt)
        .read_exact(&mut [0u8; 4])
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::ConnectionReset);
    assert!(
        err.to_string()
            .ends_with("(received 1 of 4 bytes before that)"),
        "{err}"
    );
    let source = inner::<IntrRecvError>(&err).source().expect("source");
    let source = source.downcast_ref::<io::Error>().expect("an io::Error");
    assert_eq!(source.raw_os_error(), Some(code::ECONNRESET));
}

#[test]
fn deadline_read_trickled_one_byte_per_wait() {
    let mut mock = MockSock::new().trickle(1);
    for &byte in b"header" {
        mock = mock.arriving(&[byte]);
    }
    let mut buf = [0u8; 6];
    mock.with_deadline(TIMEOUT, &mock.interrupt)
        .read_exact(&mut buf)
        .expect("read_exact");
    assert_eq!(&buf, b"header");
    assert_eq!(mock.waits().len(), 6);
}

// ---- DeadlineIo: writes ----

#[test]
fn deadline_write_all_times_out_with_cores_text() {
    let mock = MockSock::new().sends([Ok(4)]);
    let mut writer = mock.with_deadline(5 * SECOND, &mock.interrupt);
    let err = writer.write_all(b"0123456789").unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    assert_eq!(
        err.to_string(),
        "Send timeout (sent only 4 of 10 bytes before that)"
    );
    assert!(matches!(
        inner::<SockError>(&err),
        SockError::SendTimeout { sent: 4, total: 10 }
    ));
    assert_eq!(mock.sent(), b"0123");
    assert_waits_add_up_to(&mock, 5 * SECOND);
}

#[test]
fn deadline_write_interrupted_is_not_the_kind_io_retries() {
    let mock = MockSock::new().sends([Ok(3)]).interrupt_on_wait(1);
    let mut writer = mock.with_deadline(TIMEOUT, &mock.interrupt);
    let err = writer.write_all(b"abcdef").unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::Other);
    assert_eq!(
        err.to_string(),
        "Send interrupted (sent only 3 of 6 bytes before that)"
    );
}

#[test]
fn deadline_write_waits_for_room_and_returns_what_was_taken() {
    let mock =
        MockSock::new().sends([Err(io::ErrorKind::WouldBlock.into()), Ok(2), Ok(usize::MAX)]);
    let mut writer = mock.with_deadline(TIMEOUT, &mock.interrupt);
    assert_eq!(writer.write(b"abcd").expect("write"), 2);
    assert_eq!(mock.waits().len(), 1);
    writer.write_all(b"cd").expect("write_all");
    writer.flush().expect("flush");
    assert_eq!(mock.sent(), b"abcd");
    assert_eq!(writer.write(b"").expect("empty write"), 0);
}

#[test]
fn deadline_write_passes_permanent_errors_through() {
    let mock = MockSock::new().sends([Err(io::Error::from_raw_os_error(code::EPIPE))]);
    let err = mock
        .with_deadline(TIMEOUT, &mock.interrupt)
        .write(b"x")
        .unwrap_err();
    assert_eq!(err.raw_os_error(), Some(code::EPIPE));
}

#[test]
fn deadline_write_all_wraps_a_permanent_error_with_the_counts() {
    // write keeps the OS error as it is (above); write_all, Core's SendComplete, says how far
    // it got: the SockError inside, the OS code still reachable through it.
    let mock = MockSock::new().sends([Ok(3), Err(io::Error::from_raw_os_error(code::EPIPE))]);
    let err = mock
        .with_deadline(TIMEOUT, &mock.interrupt)
        .write_all(b"abcdef")
        .unwrap_err();
    // The kind of the OS error (BrokenPipe for EPIPE; Windows' WSAESHUTDOWN has none of its own).
    let kind = io::Error::from_raw_os_error(code::EPIPE).kind();
    assert_eq!(err.kind(), kind);
    assert_eq!(err.raw_os_error(), None, "{err:?} is the bare OS error");
    match inner::<SockError>(&err) {
        SockError::Send(source) => assert_eq!(source.raw_os_error(), Some(code::EPIPE)),
        other => panic!("expected SockError::Send, got {other:?}"),
    }
    assert_eq!(mock.sent(), b"abc");
}

#[test]
fn deadline_write_all_over_a_failed_wait_says_how_much_was_sent() {
    let mock = MockSock::new().sends([Ok(3)]).wait_error(code::EBADF);
    let err = mock
        .with_deadline(TIMEOUT, &mock.interrupt)
        .write_all(b"abcdef")
        .unwrap_err();
    assert_eq!(err.kind(), io::Error::from_raw_os_error(code::EBADF).kind());
    match inner::<SockError>(&err) {
        SockError::SendWait {
            source,
            sent: 3,
            total: 6,
        } => assert_eq!(source.raw_os_error(), Some(code::EBADF)),
        other => panic!("expected SockError::SendWait with the counts, got {other:?}"),
    }
    // write returns the OS error itself, as for a failed send.
    let mock = MockSock::new().wait_error(code::EBADF);
    let err = mock
        .with_deadline(TIMEOUT, &mock.interrupt)
        .write(b"x")
        .unwrap_err();
    assert_eq!(err.raw_os_error(), Some(code::EBADF));
}

#[test]
fn deadline_io_debug_says_whether_it_is_interrupted() {
    let mock = MockSock::new();
    let io = mock.with_deadline(TIMEOUT, &mock.interrupt);
    assert_eq!(format!("{io:?}"), "DeadlineIo { interrupted: false, .. }");
    mock.interrupt.interrupt();
    assert_eq!(format!("{io:?}"), "DeadlineIo { interrupted: true, .. }");
}

// ---- DeadlineIo over real sockets ----

#[test]
fn deadline_io_reads_p2p_messages_over_loopback_through_a_bufsock() {
    let p = pair();
    let interrupt = ThreadInterrupt::new();
    let mut stream = Vec::new();
    for len in [50u32, 4000, 0, 1] {
        stream.extend_from_slice(&len.to_le_bytes());
        stream.extend(std::iter::repeat_n(len as u8, len as usize));
    }
    p.client
        .with_deadline(TIMEOUT, &interrupt)
        .write_all(&stream)
        .expect("write_all");
    let server = BufSock::new(p.server);
    for len in [50usize, 4000, 0, 1] {
        let mut reader = server.with_deadline(TIMEOUT, &interrupt);
        let mut header = [0u8; 4];
        reader.read_exact(&mut header).expect("header");
        assert_eq!(u32::from_le_bytes(header) as usize, len);
        let mut payload = vec![0u8; len];
        reader.read_exact(&mut payload).expect("payload");
        assert!(payload.iter().all(|&b| b == len as u8));
    }
}

#[test]
fn bufreader_over_deadline_io_reads_lines_over_loopback() {
    let p = pair();
    let interrupt = ThreadInterrupt::new();
    send_all(&p.client, b"one\ntwo\n");
    // Lines from a peer are read with a bound (`take`), as Core bounds its own.
    const MAX_LINE: u64 = 100;
    let mut reader = BufReader::new(p.server.with_deadline(TIMEOUT, &interrupt));
    let mut text = String::new();
    (&mut reader)
        .take(MAX_LINE)
        .read_line(&mut text)
        .expect("line");
    (&mut reader)
        .take(MAX_LINE)
        .read_line(&mut text)
        .expect("line");
    assert_eq!(text, "one\ntwo\n");
    // The peer sends nothing more: a short deadline ends the next line with TimedOut.
    let mut reader = BufReader::new(
        p.server
            .with_deadline(Duration::from_millis(20), &interrupt),
    );
    let err = (&mut reader)
        .take(MAX_LINE)
        .read_line(&mut text)
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    assert!(
        err.to_string()
            .starts_with("Receive timeout (received 0 of "),
        "{err}"
    );
}

#[test]
fn deadline_write_all_to_a_peer_that_never_reads_times_out() {
    let p = pair();
    let interrupt = ThreadInterrupt::new();
    let data = vec![0u8; 64 * 1024 * 1024];
    let err = p
        .client
        .with_deadline(Duration::from_millis(50), &interrupt)
        .write_all(&data)
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    match inner::<SockError>(&err) {
        SockError::SendTimeout { sent, total } => {
            assert!(*sent < *total);
            assert_eq!(*total, data.len());
        }
        other => panic!("expected SendTimeout, got {other:?}"),
    }
    drop(p.server);
}
