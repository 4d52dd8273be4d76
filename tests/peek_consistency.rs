//! `peek`, `recv`, `wait` and the high-level operations share one view of the incoming bytes:
//! natively the kernel's buffer, on WASI the sock's read-ahead buffer. Every byte arrives once,
//! in order, whichever mix of calls reads it. Runs natively and in wasmtime.
#![cfg(sockets)]

// On WASI 0.3 (feature `wasip3`) the harness's `main` is entered through the async
// `wasi:cli/run@0.3`, where sockets may wait; elsewhere this line is nothing.
bitcoin_sock::wasip3_main!();

use std::time::Duration;

use bitcoin_sock::{Sock, SockEvent, SockIo, ThreadInterrupt};

const TIMEOUT: Duration = Duration::from_secs(10);

/// A connected pair over IPv4 loopback, made in one thread (wasm has no others).
fn pair() -> (Sock, Sock) {
    let listener = Sock::bind_listen("127.0.0.1:0".parse().unwrap(), 8).unwrap();
    let client = Sock::connect(listener.local_addr().unwrap(), TIMEOUT).unwrap();
    assert!(listener
        .wait(TIMEOUT, SockEvent::RECV)
        .unwrap()
        .contains(SockEvent::RECV));
    let (server, _) = listener.accept().unwrap();
    (client, server)
}

/// Waits until `sock` has at least `n` bytes to read (bounded by TIMEOUT per wait).
fn await_bytes(sock: &Sock, n: usize) {
    let mut buf = vec![0u8; n];
    for _ in 0..1000 {
        if sock.peek(&mut buf).unwrap_or(0) >= n {
            return;
        }
        sock.wait(TIMEOUT, SockEvent::RECV).unwrap();
    }
    panic!("{n} bytes did not arrive");
}

#[test]
fn peek_then_recv_in_small_pieces_sees_every_byte_once_in_order() {
    let (client, server) = pair();
    let data: Vec<u8> = (0..=255u8).cycle().take(3000).collect();
    client
        .send_complete(&data, TIMEOUT, &ThreadInterrupt::new())
        .unwrap();
    await_bytes(&server, data.len());

    let mut peeked = vec![0u8; 100];
    assert_eq!(server.peek(&mut peeked).unwrap(), 100);
    assert_eq!(peeked, data[..100]);

    let mut received = Vec::new();
    let mut piece = [0u8; 7];
    while received.len() < data.len() {
        // Interleave peeks of different sizes with the reads; they must not consume anything.
        let mut look = [0u8; 13];
        let n = server.peek(&mut look).unwrap();
        assert_eq!(look[..n], data[received.len()..received.len() + n]);
        let n = server.recv(&mut piece).unwrap();
        received.extend_from_slice(&piece[..n]);
    }
    assert_eq!(received, data);
    assert_eq!(
        server.recv(&mut piece).unwrap_err().kind(),
        std::io::ErrorKind::WouldBlock
    );
}

#[test]
fn peeked_bytes_make_wait_report_recv_at_once() {
    let (client, server) = pair();
    client.send(b"x").unwrap();
    await_bytes(&server, 1);
    let occurred = server.wait(Duration::ZERO, SockEvent::RECV).unwrap();
    assert_eq!(occurred, SockEvent::RECV);
    let mut byte = [0u8; 1];
    assert_eq!(server.recv(&mut byte).unwrap(), 1);
    assert_eq!(&byte, b"x");
    assert!(server
        .wait(Duration::ZERO, SockEvent::RECV)
        .unwrap()
        .is_empty());
}

#[test]
fn is_connected_does_not_consume_the_byte_it_looks_at() {
    let (client, server) = pair();
    client.send(b"ab").unwrap();
    await_bytes(&server, 2);
    assert_eq!(server.is_connected().map_err(|e| e.to_string()), Ok(()));
    assert_eq!(server.is_connected().map_err(|e| e.to_string()), Ok(()));
    let mut buf = [0u8; 4];
    assert_eq!(server.recv(&mut buf).unwrap(), 2);
    assert_eq!(&buf[..2], b"ab");
}

#[test]
fn buffered_bytes_are_received_before_the_end_of_stream() {
    let (client, server) = pair();
    client.send(b"last words").unwrap();
    drop(client);
    let mut seen = Vec::new();
    let mut buf = [0u8; 3];
    for _ in 0..1000 {
        server.wait(TIMEOUT, SockEvent::RECV).unwrap();
        match server.recv(&mut buf) {
            Ok(0) => break,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => panic!("unexpected error {e}"),
        }
    }
    assert_eq!(seen, b"last words");
    assert_eq!(server.recv(&mut buf).unwrap(), 0, "end of stream stays");
}

#[test]
fn many_lines_in_one_burst_come_out_one_by_one_with_nothing_lost() {
    let (client, server) = pair();
    let interrupt = ThreadInterrupt::new();
    let mut burst = Vec::new();
    for i in 0..500 {
        burst.extend_from_slice(format!("line {i}\n").as_bytes());
    }
    burst.extend_from_slice(b"tail without terminator");
    client.send_complete(&burst, TIMEOUT, &interrupt).unwrap();
    for i in 0..500 {
        let line = server
            .recv_until_terminator(b'\n', TIMEOUT, &interrupt, 100)
            .unwrap();
        assert_eq!(line, format!("line {i}").as_bytes());
    }
    // The unterminated tail is still there, whole, for a plain recv.
    await_bytes(&server, 23);
    let mut tail = [0u8; 64];
    assert_eq!(server.recv(&mut tail).unwrap(), 23);
    assert_eq!(&tail[..23], b"tail without terminator");
}
