//! `Sock` over real loopback sockets: lifecycle, connect, bind/listen/accept, the primitives,
//! `wait`/`wait_many`, socket options and bad input. What needs no socket (`SockEvent`,
//! `ThreadInterrupt`, the error-code helpers) is in tests/no_socket.rs, which every target runs.
//!
//! Single-threaded and built on the crate's API only, so the same tests run natively and in
//! wasmtime on `wasm32-wasip2`.

#![cfg(sockets)]

mod common;

use std::io::ErrorKind;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use bitcoin_sock::{
    io_error_is_permanent, network_error_string, os_error_code, resolve, Events, Sock, SockError,
    SockEvent, SockIo, SockOpt, SockOptValue, ThreadInterrupt,
};
use common::*;

const WASI: bool = cfg!(target_os = "wasi");

// ---------------------------------------------------------------------------------------------
// The invalid sock (Core's INVALID_SOCKET)

#[test]
fn invalid_sock_primitives_fail_not_connected() {
    let sock = Sock::default();
    let mut buf = [0u8; 4];
    assert_not_connected(sock.send(b"a"));
    assert_not_connected(sock.recv(&mut buf));
    assert_not_connected(sock.peek(&mut buf));
    assert_not_connected(sock.wait(Duration::ZERO, SockEvent::RECV));
    let mut entry = [(&sock, Events::new(SockEvent::RECV | SockEvent::SEND))];
    assert_not_connected(Sock::wait_many(Duration::ZERO, &mut entry));
}

#[test]
fn invalid_sock_setup_calls_fail_not_connected() {
    let sock = Sock::default();
    assert_not_connected(sock.accept());
    let err = sock.listen(8).expect_err("the invalid sock cannot listen");
    assert_eq!(err.kind(), ErrorKind::NotConnected);
    assert_eq!(err.io_error().to_string(), "not connected");
    assert_eq!(err.to_string(), "not connected");
    assert_eq!(err.target(), "");
    assert_not_connected(sock.local_addr());
    assert_not_connected(sock.peer_addr());
    assert_not_connected(sock.set_non_blocking());
    assert_not_connected(sock.shutdown_send());
    assert_not_connected(sock.shutdown(std::net::Shutdown::Both));
}

#[test]
fn invalid_sock_options_fail_not_connected() {
    let sock = Sock::default();
    assert_not_connected(sock.get_sock_opt(SockOpt::KeepAlive));
    assert_not_connected(sock.set_sock_opt(SockOpt::KeepAlive, SockOptValue::Bool(true)));
    assert_not_connected(sock.nodelay());
    assert_not_connected(sock.set_nodelay(true));
    assert_not_connected(sock.recv_buffer_size());
    assert_not_connected(sock.take_error());
}

#[test]
fn invalid_sock_is_not_selectable() {
    assert!(!Sock::default().is_selectable());
}

#[test]
fn invalid_sock_is_connected_says_not_connected() {
    assert_eq!(
        Sock::default().is_connected().map_err(|e| e.to_string()),
        Err("not connected".to_owned())
    );
}

#[test]
fn invalid_sock_send_complete_fails_with_send_not_connected() {
    let err = Sock::default()
        .send_complete(b"ping", TIMEOUT, &ThreadInterrupt::new())
        .unwrap_err();
    assert!(matches!(err, SockError::Send(_)), "{err:?}");
    assert_eq!(err.to_string(), "send(): not connected");
    assert_eq!(
        err.io_error().map(|e| e.kind()),
        Some(ErrorKind::NotConnected)
    );
}

#[test]
fn invalid_sock_recv_until_terminator_fails_with_recv_not_connected() {
    let err = Sock::default()
        .recv_until_terminator(b'\n', TIMEOUT, &ThreadInterrupt::new(), 100)
        .unwrap_err();
    assert!(matches!(err, SockError::Recv { .. }), "{err:?}");
    assert_eq!(err.to_string(), "recv(): not connected");
}

#[test]
fn invalid_sock_wait_fails_at_once_instead_of_sleeping() {
    // Core polls fd -1 for the whole timeout, which looks like a timeout.
    let start = Instant::now();
    assert_not_connected(Sock::default().wait(TIMEOUT, SockEvent::RECV));
    assert!(start.elapsed() < PROMPTLY);
}

#[test]
fn wait_many_with_one_invalid_sock_fails_not_connected() {
    let pair = pair();
    let invalid = Sock::default();
    send_all(&pair.client, b"x");
    let mut entries = [
        (&pair.server, Events::new(SockEvent::RECV)),
        (&invalid, Events::new(SockEvent::RECV)),
    ];
    let start = Instant::now();
    assert_not_connected(Sock::wait_many(TIMEOUT, &mut entries));
    assert!(start.elapsed() < PROMPTLY);
}

#[test]
fn invalid_sock_get_and_release_give_none() {
    let mut sock = Sock::default();
    assert!(!sock.is_valid());
    assert!(sock.get().is_none());
    assert!(sock.release().is_none());
    assert!(!sock.is_valid());
}

#[test]
fn invalid_sock_reset_does_nothing() {
    let mut sock = Sock::default();
    sock.reset();
    sock.reset();
    assert!(!sock.is_valid());
    assert_not_connected(sock.send(b"a"));
}

#[test]
fn invalid_sock_debug_says_invalid() {
    assert_eq!(format!("{:?}", Sock::default()), "Sock(invalid)");
}

// ---------------------------------------------------------------------------------------------
// Lifecycle of a real socket: moves, reset, release, drop

#[test]
fn take_leaves_the_source_invalid_and_the_target_working() {
    let mut pair = pair();
    let server = std::mem::take(&mut pair.server);
    assert!(!pair.server.is_valid());
    assert_not_connected(pair.server.recv(&mut [0; 1]));
    send_all(&pair.client, b"moved");
    assert_eq!(recv_exactly(&server, 5), b"moved");
}

#[test]
fn moved_pair_still_sends_and_receives() {
    // Core's send_and_receive: the pair works, and still works after both socks moved.
    fn send_and_receive(pair: &Pair) {
        send_all(&pair.client, b"abcd");
        assert_eq!(recv_exactly(&pair.server, 4), b"abcd");
        send_all(&pair.server, b"efgh");
        assert_eq!(recv_exactly(&pair.client, 4), b"efgh");
    }
    let pair = pair();
    send_and_receive(&pair);
    let moved = Box::new(pair);
    send_and_receive(&moved);
    let Pair { client, server } = *moved;
    send_and_receive(&Pair {
        client: server,
        server: client,
    });
}

#[test]
fn assigning_over_a_sock_closes_its_old_socket() {
    // Core's move assignment: the target's old socket is closed, the source becomes invalid.
    let mut first = pair();
    let mut second = pair();
    first.server = std::mem::take(&mut second.server);
    expect_eof(&first.client);
    assert!(!second.server.is_valid());
    send_all(&second.client, b"to the new owner");
    assert_eq!(recv_exactly(&first.server, 16), b"to the new owner");
}

#[test]
fn drop_closes_the_socket_and_the_peer_sees_eof() {
    let pair = pair();
    drop(pair.client);
    expect_eof(&pair.server);
}

#[test]
fn reset_closes_the_socket_and_the_peer_sees_eof() {
    let mut pair = pair();
    pair.client.reset();
    assert!(!pair.client.is_valid());
    assert_not_connected(pair.client.send(b"a"));
    expect_eof(&pair.server);
    pair.client.reset();
}

#[test]
fn release_hands_over_an_open_socket_that_from_adopts_again() {
    let mut pair = pair();
    let socket = pair
        .client
        .release()
        .expect("a valid sock releases its socket");
    assert!(!pair.client.is_valid());
    // Not closed: the peer sees no EOF.
    let occurred = pair
        .server
        .wait(Duration::from_millis(50), SockEvent::RECV)
        .expect("wait");
    assert!(occurred.is_empty(), "{occurred:?}");
    let client = Sock::from(socket);
    send_all(&client, b"still here");
    assert_eq!(recv_exactly(&pair.server, 10), b"still here");
}

#[test]
fn adopt_takes_a_released_socket_back_and_reports_success() {
    let mut pair = pair();
    let socket = pair.client.release().expect("a valid sock");
    let client = Sock::adopt(socket).expect("adopted");
    assert_non_blocking(&client);
    send_all(&client, b"adopted");
    assert_eq!(recv_exactly(&pair.server, 7), b"adopted");
}

#[test]
fn get_lends_the_socket_without_giving_it_up() {
    let pair = pair();
    assert!(pair.client.get().is_some());
    assert!(pair.client.is_valid());
    send_all(&pair.client, b"k");
    assert_eq!(recv_exactly(&pair.server, 1), b"k");
}

// ---------------------------------------------------------------------------------------------
// connect

#[test]
fn connect_succeeds_on_every_loopback() {
    for ip in loopbacks() {
        let listener = listener(ip);
        let addr = listener.local_addr().expect("local_addr");
        let client = Sock::connect(addr, TIMEOUT).expect("connect");
        assert!(client.is_valid());
        assert_eq!(client.peer_addr().expect("peer_addr"), addr);
        let (server, from) = accept(&listener);
        assert_eq!(from, client.local_addr().expect("local_addr"));
        send_all(&client, b"hi");
        assert_eq!(recv_exactly(&server, 2), b"hi");
    }
}

#[test]
fn connect_to_a_closed_port_is_refused() {
    for ip in loopbacks() {
        let addr = closed_port(ip);
        let err = Sock::connect(addr, TIMEOUT).expect_err("nothing listens there");
        let SockError::Connect {
            addr: failed,
            source,
        } = &err
        else {
            panic!("expected SockError::Connect, got {err:?}");
        };
        assert_eq!(*failed, addr.into());
        assert_eq!(source.kind(), ErrorKind::ConnectionRefused, "{source}");
        if let Some(code) = source.raw_os_error() {
            let expected = format!("connect() to {addr} failed: {}", network_error_string(code));
            assert_eq!(err.to_string(), expected);
        }
        if cfg!(target_os = "linux") {
            assert_eq!(
                err.to_string(),
                format!("connect() to {addr} failed: Connection refused (111)")
            );
        }
        assert!(!err.is_timeout());
    }
}

#[test]
fn connect_times_out_when_the_accept_queue_is_full() {
    // listen(0) keeps (about) one connection in the accept queue; with nobody accepting, the
    // kernel drops later SYNs and those connects can only time out.
    let listener = Sock::bind(SocketAddr::new(V4, 0)).expect("bind");
    listener.listen(0).expect("listen");
    let addr = listener.local_addr().expect("local_addr");
    let timeout = Duration::from_millis(300);
    let mut queued = Vec::new();
    for _ in 0..8 {
        let start = Instant::now();
        match Sock::connect(addr, timeout) {
            Ok(sock) => queued.push(sock),
            Err(err) => {
                let elapsed = start.elapsed();
                let SockError::ConnectTimeout {
                    addr: failed,
                    timeout: waited,
                } = &err
                else {
                    panic!("expected ConnectTimeout, got {err:?}");
                };
                assert_eq!(*failed, addr.into());
                assert_eq!(*waited, timeout);
                assert!(err.is_timeout());
                assert_eq!(
                    err.to_string(),
                    format!("connection attempt to {addr} timed out")
                );
                assert!(elapsed >= timeout, "gave up after {elapsed:?}");
                assert!(elapsed < PROMPTLY, "took {elapsed:?}");
                return;
            }
        }
    }
    panic!(
        "no connect timed out with {} connections queued",
        queued.len()
    );
}

#[test]
fn connect_to_port_zero_fails_with_a_connect_error() {
    let addr = SocketAddr::new(V4, 0);
    let err = Sock::connect(addr, TIMEOUT).expect_err("port 0 cannot be connected to");
    assert!(matches!(err, SockError::Connect { .. }), "{err:?}");
}

// ---------------------------------------------------------------------------------------------
// bind, listen, accept, addresses

#[test]
fn bind_listen_picks_a_free_port_on_the_given_address() {
    for ip in loopbacks() {
        let listener = listener(ip);
        let addr = listener.local_addr().expect("local_addr");
        assert_eq!(addr.ip(), ip);
        assert_ne!(addr.port(), 0);
    }
}

#[test]
fn bind_then_listen_accepts_connections() {
    let sock = Sock::bind(SocketAddr::new(V4, 0)).expect("bind");
    sock.listen(4).expect("listen");
    let client = Sock::connect(sock.local_addr().expect("local_addr"), TIMEOUT).expect("connect");
    let (server, _) = accept(&sock);
    send_all(&server, b"ok");
    assert_eq!(recv_exactly(&client, 2), b"ok");
}

#[test]
fn accept_with_no_pending_connection_would_block() {
    let listener = listener(V4);
    assert_kind(listener.accept(), ErrorKind::WouldBlock);
}

#[test]
fn wait_on_a_listener_reports_recv_for_a_pending_connection() {
    let listener = listener(V4);
    let occurred = listener
        .wait(Duration::from_millis(10), SockEvent::RECV)
        .expect("wait");
    assert!(occurred.is_empty(), "{occurred:?}");
    let _client = Sock::connect(listener.local_addr().expect("addr"), TIMEOUT).expect("connect");
    wait_for(&listener, SockEvent::RECV);
    assert!(listener.accept().is_ok());
}

#[test]
fn local_and_peer_addresses_agree_across_a_pair() {
    for ip in loopbacks() {
        let listener = listener(ip);
        let listen_addr = listener.local_addr().expect("local_addr");
        let client = Sock::connect(listen_addr, TIMEOUT).expect("connect");
        let (server, accepted_from) = accept(&listener);
        let client_addr = client.local_addr().expect("client local_addr");
        assert_eq!(accepted_from, client_addr);
        assert_eq!(server.peer_addr().expect("server peer_addr"), client_addr);
        assert_eq!(client.peer_addr().expect("client peer_addr"), listen_addr);
        assert_eq!(server.local_addr().expect("server local_addr"), listen_addr);
        assert_eq!(client_addr.ip(), ip);
    }
}

#[test]
fn a_listener_has_no_peer_address() {
    assert_kind(listener(V4).peer_addr(), ErrorKind::NotConnected);
}

#[test]
fn binding_a_port_in_use_fails_addr_in_use() {
    let listener = listener(V4);
    let addr = listener.local_addr().expect("local_addr");
    assert_kind(Sock::bind_listen(addr, 8), ErrorKind::AddrInUse);
}

#[test]
fn a_failed_bind_names_the_operation_and_the_address_and_keeps_the_os_code() {
    let listener = listener(V4);
    let addr = listener.local_addr().expect("local_addr");
    let err = Sock::bind_listen(addr, 8).expect_err("the port is taken");
    assert_eq!(err.kind(), ErrorKind::AddrInUse);
    let code = err.raw_os_error().expect("an OS error");
    assert!(io_error_is_permanent(code));
    assert_eq!(
        err.to_string(),
        format!("bind() to {addr} failed: {}", network_error_string(code))
    );
    assert_eq!((err.op(), err.target()), ("bind", &*addr.to_string()));
    assert_eq!(err.io_error().raw_os_error(), Some(code));
    // `?` into an `io::Result` keeps kind and code, as std's own bind would give them.
    let converted = std::io::Error::from(err);
    assert_eq!(converted.kind(), ErrorKind::AddrInUse);
    assert_eq!(converted.raw_os_error(), Some(code));
    assert_eq!(os_error_code(&converted), Some(code));
}

#[test]
fn binding_an_address_not_on_this_host_fails_addr_not_available() {
    // 192.0.2.1 is TEST-NET-1: never a local address. Binding sends nothing.
    let result = Sock::bind(SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), 0));
    assert_kind(result, ErrorKind::AddrNotAvailable);
}

#[test]
fn accept_on_a_connected_sock_fails_invalid_input() {
    // accept(2) on a socket that is not listening is EINVAL; WASI's invalid-state maps to the
    // same errno (wasi-libc), so the kind is the same on every backend.
    let pair = pair();
    assert_kind(pair.server.accept(), ErrorKind::InvalidInput);
}

#[test]
fn set_non_blocking_succeeds_on_crate_made_socks() {
    let pair = pair();
    pair.client.set_non_blocking().expect("set_non_blocking");
    pair.server.set_non_blocking().expect("set_non_blocking");
    // Still non-blocking: an empty recv does not hang.
    assert_kind(pair.server.recv(&mut [0; 1]), ErrorKind::WouldBlock);
}

#[test]
fn crate_made_socks_are_selectable() {
    let listener = listener(V4);
    let pair = pair();
    assert!(listener.is_selectable());
    assert!(pair.client.is_selectable());
    assert!(pair.server.is_selectable());
}

#[test]
fn resolve_localhost_includes_a_loopback_address() {
    let addrs = resolve("localhost", 8333).expect("localhost resolves");
    assert!(
        addrs
            .iter()
            .any(|a| a.ip().is_loopback() && a.port() == 8333),
        "{addrs:?}"
    );
}

#[test]
fn resolve_an_ip_literal_gives_itself() {
    assert_eq!(
        resolve("127.0.0.1", 1).expect("literal"),
        [SocketAddr::new(V4, 1)]
    );
}

// ---------------------------------------------------------------------------------------------
// send, recv, peek

#[test]
fn send_and_recv_carry_data_both_ways_on_every_loopback() {
    for ip in loopbacks() {
        let pair = pair_on(ip);
        send_all(&pair.client, b"ping");
        assert_eq!(recv_exactly(&pair.server, 4), b"ping");
        send_all(&pair.server, b"pong!");
        assert_eq!(recv_exactly(&pair.client, 5), b"pong!");
    }
}

#[test]
fn peek_leaves_the_bytes_for_recv() {
    let pair = pair();
    send_all(&pair.client, b"abcd");
    wait_for(&pair.server, SockEvent::RECV);
    let mut two = [0u8; 2];
    assert_eq!(pair.server.peek(&mut two).expect("peek"), 2);
    assert_eq!(&two, b"ab");
    assert_eq!(pair.server.peek(&mut two).expect("peek again"), 2);
    assert_eq!(&two, b"ab");
    assert_eq!(recv_exactly(&pair.server, 4), b"abcd");
}

#[test]
fn recv_on_an_empty_sock_would_block() {
    let pair = pair();
    assert_kind(pair.server.recv(&mut [0; 8]), ErrorKind::WouldBlock);
}

#[test]
fn peek_on_an_empty_sock_would_block() {
    let pair = pair();
    assert_kind(pair.server.peek(&mut [0; 8]), ErrorKind::WouldBlock);
}

#[test]
fn recv_returns_zero_after_the_peer_dropped() {
    let pair = pair();
    drop(pair.server);
    expect_eof(&pair.client);
    assert_eq!(pair.client.recv(&mut [0; 8]).expect("recv after EOF"), 0);
    assert_eq!(pair.client.peek(&mut [0; 8]).expect("peek after EOF"), 0);
}

#[test]
fn bytes_sent_before_close_are_read_before_eof() {
    let pair = pair();
    send_all(&pair.client, b"last words");
    drop(pair.client);
    assert_eq!(recv_exactly(&pair.server, 10), b"last words");
    expect_eof(&pair.server);
}

#[test]
fn shutdown_send_gives_the_peer_eof_but_it_can_still_send_back() {
    let pair = pair();
    pair.client.shutdown_send().expect("shutdown_send");
    expect_eof(&pair.server);
    send_all(&pair.server, b"reply");
    assert_eq!(recv_exactly(&pair.client, 5), b"reply");
}

#[test]
fn send_after_own_shutdown_send_fails_broken_pipe() {
    let pair = pair();
    pair.client.shutdown_send().expect("shutdown_send");
    assert_send_after_shutdown_fails(pair.client.send(b"late"));
    expect_eof(&pair.server);
}

#[test]
fn send_of_nothing_returns_zero() {
    let pair = pair();
    assert_eq!(pair.client.send(&[]).expect("empty send"), 0);
}

/// Sends from `sock` until a wait for room times out: the peer's receive buffer, the
/// connection and the sender's buffers (the kernel's, and on WASI the host's) are all full.
/// Returns how many bytes the socket took. Loopback buffers hold a few MiB at most, so this
/// ends long before its bound.
fn fill_send_buffer(sock: &Sock) -> usize {
    let chunk = vec![7u8; 1 << 20];
    let mut total = 0;
    for _ in 0..1000 {
        match sock.send(&chunk) {
            Ok(n) => {
                assert!(n > 0 && n <= chunk.len(), "send took {n}");
                total += n;
            }
            Err(e) => {
                assert_eq!(e.kind(), ErrorKind::WouldBlock, "{e}");
                let room = sock
                    .wait(Duration::from_millis(50), SockEvent::SEND)
                    .expect("wait");
                if room.is_empty() {
                    return total;
                }
            }
        }
    }
    panic!("the socket took {total} bytes and still had room");
}

#[test]
fn send_takes_part_of_a_payload_bigger_than_the_buffers_instead_of_blocking() {
    let pair = pair();
    let payload = vec![7u8; 8 << 20];
    let taken = pair.client.send(&payload).expect("first send");
    assert!(taken > 0 && taken < payload.len(), "took {taken}");
    fill_send_buffer(&pair.client);
    // The reader goes first, so the writer's unsent bytes fail instead of waiting for it
    // (see dropping_a_sock_with_unsent_bytes_returns_at_once).
    drop(pair.server);
}

#[test]
fn dropping_a_sock_with_unsent_bytes_returns_at_once() {
    let pair = pair();
    let total = fill_send_buffer(&pair.client);
    let start = Instant::now();
    drop(pair.client);
    assert!(
        start.elapsed() < PROMPTLY,
        "drop took {:?}",
        start.elapsed()
    );
    // Nothing is lost: the bytes still arrive, then the end of stream.
    assert_eq!(recv_exactly(&pair.server, total).len(), total);
    expect_eof(&pair.server);
}

// ---------------------------------------------------------------------------------------------
// wait and wait_many

#[test]
fn wait_reports_recv_when_data_arrives() {
    let pair = pair();
    send_all(&pair.client, b"a");
    let occurred = wait_for(&pair.server, SockEvent::RECV);
    assert!(!occurred.contains(SockEvent::ERR));
}

#[test]
fn wait_reports_send_on_a_connected_sock() {
    let pair = pair();
    let occurred = wait_for(&pair.client, SockEvent::SEND);
    assert!(!occurred.contains(SockEvent::ERR));
}

#[test]
fn wait_reports_eof_as_recv() {
    // Core's contract: RECV when data *or end of stream* is ready (assert_eof_events: exactly
    // RECV but on Windows, which reports a peer's FIN as POLLHUP).
    let pair = pair();
    drop(pair.client);
    let occurred = pair.server.wait(TIMEOUT, SockEvent::RECV).expect("wait");
    assert_eof_events(occurred);
    assert_eq!(pair.server.recv(&mut [0; 4]).expect("recv at EOF"), 0);
}

#[test]
fn wait_reports_eof_after_the_last_bytes_as_recv() {
    let pair = pair();
    send_all(&pair.client, b"last");
    drop(pair.client);
    assert_eq!(recv_exactly(&pair.server, 4), b"last");
    let occurred = pair.server.wait(TIMEOUT, SockEvent::RECV).expect("wait");
    assert_eof_events(occurred);
}

#[test]
fn wait_times_out_with_the_empty_set() {
    let pair = pair();
    let timeout = Duration::from_millis(50);
    let start = Instant::now();
    let occurred = pair.server.wait(timeout, SockEvent::RECV).expect("wait");
    let elapsed = start.elapsed();
    assert!(occurred.is_empty(), "{occurred:?}");
    assert!(elapsed >= timeout, "returned after {elapsed:?}");
    assert!(elapsed < PROMPTLY, "took {elapsed:?}");
}

#[test]
fn wait_with_zero_timeout_returns_at_once() {
    let pair = pair();
    let start = Instant::now();
    let occurred = pair
        .server
        .wait(Duration::ZERO, SockEvent::RECV)
        .expect("wait");
    assert!(occurred.is_empty(), "{occurred:?}");
    assert!(start.elapsed() < PROMPTLY);
}

#[test]
fn wait_with_zero_timeout_reports_data_already_there() {
    let pair = pair();
    send_all(&pair.client, b"a");
    wait_for(&pair.server, SockEvent::RECV);
    let occurred = pair
        .server
        .wait(Duration::ZERO, SockEvent::RECV)
        .expect("wait");
    assert!(occurred.contains(SockEvent::RECV), "{occurred:?}");
}

#[test]
fn wait_of_one_millisecond_really_waits() {
    let pair = pair();
    let start = Instant::now();
    let occurred = pair
        .server
        .wait(Duration::from_millis(1), SockEvent::RECV)
        .expect("wait");
    assert!(occurred.is_empty());
    assert!(
        start.elapsed() >= Duration::from_millis(1),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn wait_below_one_millisecond_is_not_rounded_to_zero() {
    let pair = pair();
    let timeout = Duration::from_micros(300);
    let start = Instant::now();
    let occurred = pair.server.wait(timeout, SockEvent::RECV).expect("wait");
    assert!(occurred.is_empty());
    assert!(start.elapsed() >= timeout, "{:?}", start.elapsed());
}

#[test]
fn wait_with_nothing_requested_ignores_ready_data() {
    let pair = pair();
    send_all(&pair.client, b"a");
    wait_for(&pair.server, SockEvent::RECV);
    let occurred = pair
        .server
        .wait(Duration::from_millis(20), SockEvent::empty())
        .expect("wait");
    // ERR is always reported, but nothing is wrong here; RECV and SEND were not asked for.
    assert!(occurred.is_empty(), "{occurred:?}");
}

#[test]
fn wait_readiness_timeout_and_peer_close() {
    let pair = pair();
    check_readiness_and_close(pair.client, pair.server);
}

#[test]
fn wait_readiness_timeout_and_peer_close_over_ipv6() {
    if !has_ipv6() {
        // Declared IPv6-less (BITCOIN_SOCK_NO_IPV6=1, checked by has_ipv6): nothing to cover.
        return;
    }
    let pair = pair_on(V6);
    check_readiness_and_close(pair.client, pair.server);
}

#[test]
fn wait_many_readiness_and_timeout() {
    // Core's wait_many_readiness_and_timeout.
    let first = pair();
    let second = pair();
    let mut entries = [
        (&first.server, Events::new(SockEvent::RECV)),
        (&second.server, Events::new(SockEvent::RECV)),
    ];
    let ready = Sock::wait_many(Duration::from_millis(2), &mut entries).expect("wait_many");
    assert_eq!(ready, 0);
    assert!(entries.iter().all(|(_, e)| e.occurred.is_empty()));

    send_all(&first.client, b"a");
    send_all(&second.client, b"b");
    wait_for(&first.server, SockEvent::RECV);
    wait_for(&second.server, SockEvent::RECV);

    let both = SockEvent::RECV | SockEvent::SEND;
    for (_, events) in entries.iter_mut() {
        events.requested = both;
    }
    let ready = Sock::wait_many(TIMEOUT, &mut entries).expect("wait_many");
    assert_eq!(ready, 2);
    for (_, events) in &entries {
        assert_eq!(events.occurred & both, both, "{events:?}");
    }
}

#[test]
fn wait_many_reports_only_the_sock_with_data() {
    let pairs = [pair(), pair(), pair()];
    send_all(&pairs[1].client, b"only me");
    let mut entries: Vec<(&Sock, Events)> = pairs
        .iter()
        .map(|p| (&p.server, Events::new(SockEvent::RECV)))
        .collect();
    let ready = Sock::wait_many(TIMEOUT, &mut entries).expect("wait_many");
    assert_eq!(ready, 1);
    assert!(entries[0].1.occurred.is_empty(), "{:?}", entries[0].1);
    assert_eq!(entries[1].1.occurred, SockEvent::RECV);
    assert!(entries[2].1.occurred.is_empty(), "{:?}", entries[2].1);
    assert_eq!(entries[1].1.requested, SockEvent::RECV);
}

#[test]
fn wait_many_overwrites_stale_occurred_events() {
    let pair = pair();
    let mut entries = [(&pair.server, Events::new(SockEvent::RECV))];
    entries[0].1.occurred = SockEvent::RECV | SockEvent::SEND | SockEvent::ERR;
    let ready = Sock::wait_many(Duration::from_millis(2), &mut entries).expect("wait_many");
    assert_eq!(ready, 0);
    assert!(entries[0].1.occurred.is_empty());
}

#[test]
fn wait_many_on_an_empty_slice_with_zero_timeout_returns_zero() {
    assert_eq!(
        Sock::wait_many(Duration::ZERO, &mut []).expect("wait_many"),
        0
    );
}

#[test]
fn wait_many_on_an_empty_slice_waits_out_its_timeout() {
    let timeout = Duration::from_millis(20);
    let start = Instant::now();
    assert_eq!(Sock::wait_many(timeout, &mut []).expect("wait_many"), 0);
    let elapsed = start.elapsed();
    assert!(elapsed >= timeout, "returned after {elapsed:?}");
    assert!(elapsed < PROMPTLY, "took {elapsed:?}");
}

#[test]
fn wait_many_can_watch_the_same_sock_twice() {
    let pair = pair();
    send_all(&pair.client, b"a");
    wait_for(&pair.server, SockEvent::RECV);
    let mut entries = [
        (&pair.server, Events::new(SockEvent::RECV)),
        (&pair.server, Events::new(SockEvent::SEND)),
    ];
    assert_eq!(
        Sock::wait_many(TIMEOUT, &mut entries).expect("wait_many"),
        2
    );
    assert_eq!(entries[0].1.occurred, SockEvent::RECV);
    assert_eq!(entries[1].1.occurred, SockEvent::SEND);
}

#[test]
fn wait_many_reports_every_entry_of_a_sock_listed_twice_for_the_same_event() {
    // Another sock between the two entries: each entry gets its own answer, wherever it is.
    let pair = pair();
    send_all(&pair.client, b"a");
    wait_for(&pair.server, SockEvent::RECV);
    let mut entries = [
        (&pair.server, Events::new(SockEvent::RECV)),
        (&pair.client, Events::new(SockEvent::RECV)),
        (&pair.server, Events::new(SockEvent::RECV)),
    ];
    assert_eq!(
        Sock::wait_many(TIMEOUT, &mut entries).expect("wait_many"),
        2
    );
    assert_eq!(entries[0].1.occurred, SockEvent::RECV);
    assert!(entries[1].1.occurred.is_empty(), "{:?}", entries[1].1);
    assert_eq!(entries[2].1.occurred, SockEvent::RECV);
}

#[test]
fn wait_many_reports_eof_only_to_the_entries_that_asked_for_recv() {
    let pair = pair();
    drop(pair.client);
    expect_eof(&pair.server);
    let mut entries = [
        (&pair.server, Events::new(SockEvent::empty())),
        (&pair.server, Events::new(SockEvent::RECV)),
    ];
    Sock::wait_many(TIMEOUT, &mut entries).expect("wait_many");
    assert!(
        !entries[0].1.occurred.contains(SockEvent::RECV),
        "{:?}",
        entries[0].1
    );
    assert!(
        entries[1].1.occurred.contains(SockEvent::RECV),
        "{:?}",
        entries[1].1
    );
}

// ---------------------------------------------------------------------------------------------
// Socket options (WASI 0.2 has no TCP_NODELAY or SO_REUSEADDR: Unsupported there)

#[test]
fn nodelay_can_be_set_and_read() {
    let pair = pair();
    if WASI {
        assert_kind(pair.client.set_nodelay(false), ErrorKind::Unsupported);
        assert_kind(pair.client.nodelay(), ErrorKind::Unsupported);
        return;
    }
    pair.client.set_nodelay(false).expect("set_nodelay(false)");
    assert!(!pair.client.nodelay().expect("nodelay"));
    pair.client.set_nodelay(true).expect("set_nodelay(true)");
    assert!(pair.client.nodelay().expect("nodelay"));
    assert_eq!(
        pair.client.get_sock_opt(SockOpt::NoDelay).expect("get"),
        SockOptValue::Bool(true)
    );
}

#[test]
fn connected_and_accepted_socks_have_nodelay() {
    // Core sets TCP_NODELAY on every TCP socket it creates.
    let pair = pair();
    if WASI {
        assert_kind(pair.server.nodelay(), ErrorKind::Unsupported);
        return;
    }
    assert!(pair.client.nodelay().expect("client nodelay"));
    assert!(pair.server.nodelay().expect("server nodelay"));
}

#[test]
fn keepalive_can_be_set_and_read() {
    let pair = pair();
    pair.client
        .set_keepalive(true)
        .expect("set_keepalive(true)");
    assert!(pair.client.keepalive().expect("keepalive"));
    pair.client
        .set_keepalive(false)
        .expect("set_keepalive(false)");
    assert!(!pair.client.keepalive().expect("keepalive"));
    pair.client
        .set_sock_opt(SockOpt::KeepAlive, SockOptValue::Bool(true))
        .expect("set_sock_opt");
    assert_eq!(
        pair.client.get_sock_opt(SockOpt::KeepAlive).expect("get"),
        SockOptValue::Bool(true)
    );
}

#[test]
fn buffer_sizes_can_be_set_and_read() {
    let pair = pair();
    let size = 64 * 1024;
    pair.client
        .set_recv_buffer_size(size)
        .expect("set recv buffer");
    pair.client
        .set_send_buffer_size(size)
        .expect("set send buffer");
    let recv = pair.client.recv_buffer_size().expect("recv buffer");
    let send = pair.client.send_buffer_size().expect("send buffer");
    assert!(recv > 0 && send > 0, "recv {recv}, send {send}");
    if !WASI {
        // Linux doubles the value for its bookkeeping; no OS gives less than asked here.
        assert!(recv >= size, "asked {size}, got {recv}");
        assert!(send >= size, "asked {size}, got {send}");
    }
}

#[test]
fn ttl_can_be_set_and_read_on_every_loopback() {
    for ip in loopbacks() {
        let pair = pair_on(ip);
        pair.client
            .set_sock_opt(SockOpt::Ttl, SockOptValue::Size(42))
            .expect("set ttl");
        assert_eq!(
            pair.client.get_sock_opt(SockOpt::Ttl).expect("get ttl"),
            SockOptValue::Size(42)
        );
    }
}

#[test]
fn listeners_reuse_addresses_where_the_host_can_say() {
    let listener = listener(V4);
    let result = listener.get_sock_opt(SockOpt::ReuseAddress);
    if WASI {
        assert_kind(result, ErrorKind::Unsupported);
    } else if cfg!(windows) {
        // Core leaves SO_REUSEADDR off on Windows, where it lets others steal the port.
        assert_eq!(result.expect("get"), SockOptValue::Bool(false));
    } else {
        assert_eq!(result.expect("get"), SockOptValue::Bool(true));
    }
}

#[test]
fn take_error_is_none_on_a_healthy_sock() {
    let pair = pair();
    assert!(pair.client.take_error().expect("take_error").is_none());
    assert_eq!(
        pair.server.get_sock_opt(SockOpt::Error).expect("get"),
        SockOptValue::Error(None)
    );
}

#[test]
fn setting_the_error_option_is_invalid_input() {
    let pair = pair();
    assert_kind(
        pair.client
            .set_sock_opt(SockOpt::Error, SockOptValue::Error(None)),
        ErrorKind::InvalidInput,
    );
}

#[test]
fn an_option_value_of_the_wrong_type_is_invalid_input() {
    let pair = pair();
    assert_kind(
        pair.client
            .set_sock_opt(SockOpt::KeepAlive, SockOptValue::Size(1)),
        ErrorKind::InvalidInput,
    );
    assert_kind(
        pair.client
            .set_sock_opt(SockOpt::RecvBufferSize, SockOptValue::Bool(true)),
        ErrorKind::InvalidInput,
    );
    assert_kind(
        pair.client
            .set_sock_opt(SockOpt::Ttl, SockOptValue::Error(Some(1))),
        ErrorKind::InvalidInput,
    );
}

#[test]
fn an_out_of_range_ttl_is_invalid_input() {
    let pair = pair();
    assert_kind(
        pair.client
            .set_sock_opt(SockOpt::Ttl, SockOptValue::Size(usize::MAX)),
        ErrorKind::InvalidInput,
    );
}
