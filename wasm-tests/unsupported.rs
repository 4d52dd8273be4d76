//! On targets without sockets (`wasm32-wasip1`, `wasm32-unknown-unknown`) the crate compiles
//! and every socket operation fails with `ErrorKind::Unsupported`; what needs no socket works.
//! Run by `scripts/test-all.sh` on `wasm32-wasip1` in wasmtime (libtest), and on
//! `wasm32-unknown-unknown` in Node.js (`wasm-bindgen-test`, through `wasm-bindgen-test-runner`).
#![cfg(all(
    target_family = "wasm",
    not(all(target_os = "wasi", target_env = "p2"))
))]

// wasm32-unknown-unknown has no libtest runner: there every `#[test]` below is a
// `#[wasm_bindgen_test]`, run in Node.js (the default without `run_in_browser`).
#[cfg(target_os = "unknown")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use std::io::ErrorKind;
use std::time::Duration;

use bitcoin_sock::{
    network_error_string, resolve, Events, Sock, SockAddress, SockError, SockEvent, SockIo,
    Socks5Error, ThreadInterrupt, UnixAddress,
};

#[test]
fn connect_is_unsupported() {
    let err = Sock::connect("127.0.0.1:8333".parse().unwrap(), Duration::from_secs(1))
        .expect_err("no sockets on this target");
    match err {
        SockError::Connect { source, .. } => assert_eq!(source.kind(), ErrorKind::Unsupported),
        other => panic!("expected SockError::Connect, got {other:?}"),
    }
}

#[test]
fn bind_and_listen_are_unsupported() {
    let addr = "127.0.0.1:0".parse().unwrap();
    assert_eq!(Sock::bind(addr).unwrap_err().kind(), ErrorKind::Unsupported);
    assert_eq!(
        Sock::bind_listen(addr, 1).unwrap_err().kind(),
        ErrorKind::Unsupported
    );
}

#[test]
fn unix_domain_and_general_address_calls_are_unsupported() {
    let unix = UnixAddress::path("/run/tor/socks");
    let timeout = Duration::from_secs(1);
    for result in [
        Sock::connect_unix(&unix, timeout),
        Sock::connect_to(&SockAddress::Unix(unix.clone()), timeout),
    ] {
        match result {
            Err(SockError::Connect { addr, source }) => {
                assert_eq!(addr, unix.clone().into());
                assert_eq!(source.kind(), ErrorKind::Unsupported);
            }
            other => panic!("expected SockError::Connect, got {other:?}"),
        }
    }
    let ip = SockAddress::Ip("127.0.0.1:8333".parse().unwrap());
    match Sock::connect_to(&ip, timeout) {
        Err(SockError::Connect { source, .. }) => assert_eq!(source.kind(), ErrorKind::Unsupported),
        other => panic!("expected SockError::Connect, got {other:?}"),
    }
    assert_eq!(
        Sock::bind_unix(&unix).unwrap_err().kind(),
        ErrorKind::Unsupported
    );
    assert_eq!(
        Sock::bind_listen_unix(&unix, 1).unwrap_err().kind(),
        ErrorKind::Unsupported
    );
    assert_eq!(
        Sock::bind_to(&ip).unwrap_err().kind(),
        ErrorKind::Unsupported
    );
    match Sock::connect_via_socks5_unix(&unix, "example.onion", 8333, None, timeout) {
        Err(Socks5Error::ProxyConnect(SockError::Connect { source, .. })) => {
            assert_eq!(source.kind(), ErrorKind::Unsupported)
        }
        other => panic!("expected Socks5Error::ProxyConnect, got {other:?}"),
    }
    let invalid = Sock::default();
    assert_eq!(
        invalid.local_address().unwrap_err().kind(),
        ErrorKind::NotConnected
    );
    assert_eq!(
        invalid.accept_address().unwrap_err().kind(),
        ErrorKind::NotConnected
    );
}

#[test]
fn resolve_is_unsupported() {
    assert_eq!(
        resolve("localhost", 8333).unwrap_err().kind(),
        ErrorKind::Unsupported
    );
}

#[test]
fn waiting_on_nothing_is_unsupported() {
    let mut none: [(&Sock, Events); 0] = [];
    let err = Sock::wait_many(Duration::ZERO, &mut none).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported);
    // Also with a timeout: no clock is read first (wasm32-unknown-unknown has none).
    let err = Sock::wait_many(Duration::from_secs(1), &mut none).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported);
}

#[test]
fn invalid_sock_reports_not_connected() {
    let sock = Sock::default();
    assert_eq!(sock.send(b"x").unwrap_err().kind(), ErrorKind::NotConnected);
    assert_eq!(
        sock.wait(Duration::ZERO, SockEvent::RECV)
            .unwrap_err()
            .kind(),
        ErrorKind::NotConnected
    );
    assert_eq!(
        sock.is_connected().map_err(|e| e.to_string()),
        Err("not connected".to_owned())
    );
    let err = sock
        .send_complete(b"x", Duration::ZERO, &ThreadInterrupt::new())
        .unwrap_err();
    assert_eq!(err.to_string(), "send(): not connected");
}

#[test]
fn what_needs_no_socket_works() {
    let interrupt = ThreadInterrupt::new();
    interrupt.interrupt();
    assert!(!interrupt.sleep_for(Duration::from_secs(60)));
    assert!(network_error_string(12345).ends_with(" (12345)"));
    assert_eq!(
        format!("{:?}", SockEvent::RECV | SockEvent::ERR),
        "RECV | ERR"
    );
    assert_eq!(
        SockAddress::from(UnixAddress::path("/run/tor/socks")).to_string(),
        "unix:/run/tor/socks"
    );
}
