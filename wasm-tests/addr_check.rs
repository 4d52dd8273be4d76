//! An embedding host that allows only some loopback addresses, as edge platforms run theirs:
//! what the policy allows works as anywhere, what it denies fails with `PermissionDenied`
//! naming the operation and the address.
//!
//! Not part of `cargo test`'s default set (`test = false`): `scripts/test-all.sh` runs it in
//! the wasmtime embedding of `hosts/restricted/` (wasmtime-wasi's `socket_addr_check`) as
//!
//! ```text
//! restricted-host --bind 127.0.0.1 --listen 127.0.0.1 --connect 127.0.0.1 --bind [::1]:0
//! ```
//!
//! that is: 127.0.0.1 fully; on ::1 only binding an ephemeral port, not listening on it or
//! connecting to it; no name lookup. Under a runner with another policy these tests fail.
//!
//! It runs on both WASI backends, with the same policy and the same expectations: WASI 0.2
//! (the default) and WASI 0.3 (`--features wasip3`); the host links both and runs whichever
//! `wasi:cli/run` the test binary exports.
#![cfg(all(target_os = "wasi", any(target_env = "p2", wasi_p3)))]

// On WASI 0.3 (feature `wasip3`) the harness's `main` is entered through the async
// `wasi:cli/run@0.3`, where sockets may wait; elsewhere this line is nothing.
bitcoin_sock::wasip3_main!();

#[path = "denied.rs"]
mod denied;

use denied::{assert_connect_refused, assert_refused_with_eacces};

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::time::Duration;

use bitcoin_sock::{resolve, Sock, SockError, SockEvent, SockIo, ThreadInterrupt};

const TIMEOUT: Duration = Duration::from_secs(10);

fn v4(port: u16) -> SocketAddr {
    SocketAddr::new("127.0.0.1".parse().unwrap(), port)
}

fn v6(port: u16) -> SocketAddr {
    SocketAddr::new("::1".parse().unwrap(), port)
}

#[test]
fn allowed_loopback_binds_listens_and_connects_work() {
    let interrupt = ThreadInterrupt::new();
    let listener = Sock::bind_listen(v4(0), 8).expect("127.0.0.1 is allowed");
    let addr = listener.local_addr().expect("local_addr");
    let client = Sock::connect(addr, TIMEOUT).expect("connect to 127.0.0.1 is allowed");
    listener.wait(TIMEOUT, SockEvent::RECV).expect("wait");
    let (server, peer) = listener.accept().expect("accept on an allowed listener");
    assert_eq!(peer, client.local_addr().expect("client address"));

    client
        .send_complete(b"version\n", TIMEOUT, &interrupt)
        .expect("send");
    let line = server
        .recv_until_terminator(b'\n', TIMEOUT, &interrupt, 1000)
        .expect("recv");
    assert_eq!(line, b"version");
    server
        .send_complete(b"verack\n", TIMEOUT, &interrupt)
        .expect("send back");
    let line = client
        .recv_until_terminator(b'\n', TIMEOUT, &interrupt, 1000)
        .expect("recv back");
    assert_eq!(line, b"verack");
}

#[test]
fn an_allowed_connect_reaches_the_network_and_is_refused_there() {
    // A port nobody listens on any more: the policy lets the connect through, and the answer
    // is the network's (refused), not the host's (denied).
    let port = Sock::bind(v4(0))
        .expect("bind")
        .local_addr()
        .expect("local_addr")
        .port();
    match Sock::connect(v4(port), TIMEOUT) {
        Err(SockError::Connect { source, .. }) => {
            assert_eq!(source.kind(), ErrorKind::ConnectionRefused, "{source}");
        }
        other => panic!("expected a refused connect, got {other:?}"),
    }
}

#[test]
fn a_connect_to_a_denied_address_is_permission_denied() {
    let listener = Sock::bind_listen(v4(0), 8).expect("127.0.0.1 is allowed");
    // The same port on ::1: the policy allows no connect there.
    let addr = v6(listener.local_addr().expect("local_addr").port());
    let err = Sock::connect(addr, TIMEOUT).expect_err("connect to ::1 is denied");
    assert_connect_refused(&err, addr);
}

#[test]
fn a_bind_to_a_denied_address_is_permission_denied() {
    // Only port 0 of ::1 is allowed.
    let addr = v6(18444);
    let err = Sock::bind(addr).expect_err("bind to [::1]:18444 is denied");
    assert_refused_with_eacces(&err, "bind", "to", &addr.to_string());
    let err = Sock::bind_listen(addr, 8).expect_err("bind to [::1]:18444 is denied");
    assert_refused_with_eacces(&err, "bind", "to", &addr.to_string());
}

#[test]
fn listening_on_a_denied_address_is_permission_denied() {
    match Sock::bind(v6(0)) {
        Ok(sock) => {
            let addr = sock.local_addr().expect("local_addr");
            let err = sock.listen(8).expect_err("listening on ::1 is denied");
            assert_refused_with_eacces(&err, "listen", "on", &addr.to_string());
            // The refused listen leaves the sock without a listener, and saying so is an
            // error, not a trap.
            assert!(sock.accept().is_err());
        }
        // A host without IPv6 loopback: the policy let the bind through to the OS, which
        // has no such address (the listen refusal is then not reachable here).
        Err(err) => assert_eq!(err.kind(), ErrorKind::AddrNotAvailable, "{err}"),
    }
}

#[test]
fn name_lookup_is_permission_denied() {
    let err = resolve("localhost", 8333).expect_err("the host allows no name lookup");
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
    assert!(
        err.to_string()
            .starts_with("resolve() of \"localhost\" failed: "),
        "{err}"
    );
}
