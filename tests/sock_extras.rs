//! What socket2, mio and std users reach for on a `Sock` (issue #25): `send_vectored`,
//! `try_clone`, `SO_LINGER` and `IPV6_V6ONLY`, over real loopback sockets. The same tests run
//! natively and in wasmtime, where WASI 0.2 writes one buffer per call and has no way to
//! duplicate a socket, no `SO_LINGER` and no `IPV6_V6ONLY` (`Unsupported`).

#![cfg(sockets)]

mod common;

use std::io::{ErrorKind, IoSlice};
use std::net::SocketAddr;
use std::time::Duration;

use bitcoin_sock::{Sock, SockOpt, SockOptValue};
use common::*;

const WASI: bool = cfg!(target_os = "wasi");

// ---------------------------------------------------------------------------------------------
// send_vectored

#[test]
fn send_vectored_sends_the_buffers_in_order_in_one_call_where_the_host_can() {
    let pair = pair();
    let bufs = [
        IoSlice::new(b""),
        IoSlice::new(b"head"),
        IoSlice::new(b""),
        IoSlice::new(b"payload"),
    ];
    let sent = pair.client.send_vectored(&bufs).expect("send_vectored");
    // An empty socket takes 11 bytes at once; WASI writes the first non-empty buffer only.
    assert_eq!(sent, if WASI { 4 } else { 11 });
    if sent < 11 {
        send_all(&pair.client, &b"headpayload"[sent..]);
    }
    assert_eq!(recv_exactly(&pair.server, 11), b"headpayload");
}

#[test]
fn send_vectored_of_no_bytes_sends_nothing() {
    let pair = pair();
    assert_eq!(pair.client.send_vectored(&[]).expect("no buffers"), 0);
    let empty = [IoSlice::new(b""), IoSlice::new(b"")];
    assert_eq!(pair.client.send_vectored(&empty).expect("empty buffers"), 0);
    send_all(&pair.client, b"x");
    assert_eq!(recv_exactly(&pair.server, 1), b"x");
}

#[test]
fn send_vectored_on_the_invalid_sock_is_not_connected() {
    assert_not_connected(Sock::default().send_vectored(&[IoSlice::new(b"a")]));
}

#[test]
fn send_vectored_after_shutdown_fails_as_send_does() {
    let pair = pair();
    pair.client.shutdown_send().expect("shutdown_send");
    assert_send_after_shutdown_fails(pair.client.send_vectored(&[IoSlice::new(b"a")]));
}

// ---------------------------------------------------------------------------------------------
// try_clone

#[test]
fn try_clone_gives_a_second_sock_on_the_same_connection_where_the_host_can() {
    let mut pair = pair();
    let clone = pair.client.try_clone();
    if WASI {
        assert_kind(clone, ErrorKind::Unsupported);
        return;
    }
    let clone = clone.expect("try_clone");
    assert_non_blocking(&clone);
    send_all(&clone, b"from the clone ");
    send_all(&pair.client, b"and the original");
    assert_eq!(
        recv_exactly(&pair.server, 31),
        b"from the clone and the original"
    );
    send_all(&pair.server, b"back");
    assert_eq!(recv_exactly(&clone, 4), b"back");
    // Closing one leaves the connection open for the other; closing both ends it.
    pair.client.reset();
    send_all(&clone, b"still open");
    assert_eq!(recv_exactly(&pair.server, 10), b"still open");
    drop(clone);
    expect_eof(&pair.server);
}

#[test]
fn try_clone_of_the_invalid_sock_is_not_connected() {
    assert_not_connected(Sock::default().try_clone());
}

// ---------------------------------------------------------------------------------------------
// SO_LINGER

#[test]
fn linger_can_be_set_and_read_where_the_host_has_it() {
    let pair = pair();
    if WASI {
        assert_kind(pair.client.linger(), ErrorKind::Unsupported);
        assert_kind(
            pair.client.set_linger(Some(Duration::from_secs(3))),
            ErrorKind::Unsupported,
        );
        return;
    }
    assert_eq!(pair.client.linger().expect("linger"), None);
    pair.client
        .set_linger(Some(Duration::from_secs(3)))
        .expect("set_linger");
    assert_eq!(
        pair.client.get_sock_opt(SockOpt::Linger).expect("get"),
        SockOptValue::Linger(Some(Duration::from_secs(3)))
    );
    pair.client
        .set_sock_opt(SockOpt::Linger, SockOptValue::Linger(None))
        .expect("set_sock_opt");
    assert_eq!(pair.client.linger().expect("linger"), None);
}

#[test]
fn linger_zero_makes_the_close_reset_the_connection() {
    let pair = pair();
    if WASI {
        return assert_kind(
            pair.client.set_linger(Some(Duration::ZERO)),
            ErrorKind::Unsupported,
        );
    }
    pair.client
        .set_linger(Some(Duration::ZERO))
        .expect("set_linger");
    drop(pair.client);
    wait_for(&pair.server, bitcoin_sock::SockEvent::RECV);
    assert_kind(pair.server.recv(&mut [0; 4]), ErrorKind::ConnectionReset);
}

#[test]
fn linger_takes_only_a_linger_value() {
    // Checked before the host is asked, so the same on every host.
    let pair = pair();
    for value in [SockOptValue::Bool(true), SockOptValue::Size(1)] {
        assert_kind(
            pair.client.set_sock_opt(SockOpt::Linger, value),
            ErrorKind::InvalidInput,
        );
    }
    assert_kind(
        pair.client
            .set_sock_opt(SockOpt::Ipv6V6Only, SockOptValue::Linger(None)),
        ErrorKind::InvalidInput,
    );
}

// ---------------------------------------------------------------------------------------------
// IPV6_V6ONLY

#[test]
fn ipv6_listeners_are_v6_only_where_the_host_can_say() {
    if !has_ipv6() {
        return;
    }
    let listener = Sock::bind(SocketAddr::new(V6, 0)).expect("bind [::1]");
    if WASI {
        assert_kind(listener.only_v6(), ErrorKind::Unsupported);
        assert_kind(listener.set_only_v6(true), ErrorKind::Unsupported);
        return;
    }
    // Core's Bind sets it on every IPv6 socket, and so does this crate.
    assert!(listener.only_v6().expect("only_v6"));
    assert_eq!(
        listener.get_sock_opt(SockOpt::Ipv6V6Only).expect("get"),
        SockOptValue::Bool(true)
    );
}

#[test]
fn ipv6_v6_only_on_an_ipv4_socket_is_an_os_error_or_unsupported() {
    let pair = pair();
    let err = pair
        .client
        .only_v6()
        .expect_err("an IPv4 socket has no IPV6_V6ONLY");
    if WASI {
        assert_eq!(err.kind(), ErrorKind::Unsupported, "{err}");
    } else {
        assert!(err.raw_os_error().is_some(), "not the OS's error: {err}");
    }
}
