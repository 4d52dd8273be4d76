//! A host that allows no network, as an edge platform may: every operation fails with
//! `PermissionDenied` and a message that names the operation and the address, says that the
//! WASI host refused and what grants access in wasmtime, and nothing traps, panics or leaks.
//!
//! Not part of `cargo test`'s default set (`test = false`): it needs a runner that denies the
//! network, and `scripts/test-all.sh` runs it under three of them, with the runner overridden
//! for that one invocation (`CARGO_TARGET_WASM32_WASIP2_RUNNER`):
//!
//! * `wasmtime run` with neither `-S inherit-network` nor `-S allow-ip-name-lookup`: every
//!   address fails wasmtime's socket address check;
//! * the same with `-S tcp=n`: creating a TCP socket is refused already;
//! * jco with `--jco-import scripts/jco/deny-network.mjs`: the shim's network is denied.
//!
//! Under a runner that allows the network these tests fail, loudly.
#![cfg(all(target_os = "wasi", target_env = "p2"))]

// On WASI 0.3 (feature `wasip3`) the harness's `main` is entered through the async
// `wasi:cli/run@0.3`, where sockets may wait; elsewhere this line is nothing.
bitcoin_sock::wasip3_main!();

#[path = "denied.rs"]
mod denied;

use denied::{assert_connect_refused, assert_refused, assert_refused_with_eacces};

use std::io::{self, ErrorKind};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bitcoin_sock::socks5::{Credentials, Socks5Error};
use bitcoin_sock::{resolve, Sock, SockError, SockEvent};

const TIMEOUT: Duration = Duration::from_secs(10);

/// Loopback and other addresses, every one refused by the host.
fn addresses() -> Vec<SocketAddr> {
    ["127.0.0.1:0", "127.0.0.1:8333", "[::1]:0", "[::1]:18444"]
        .iter()
        .map(|text| text.parse().unwrap())
        .collect()
}

#[test]
fn bind_is_permission_denied_and_names_the_address() {
    for addr in addresses() {
        let err = Sock::bind(addr).expect_err("the host allows no bind");
        assert_refused_with_eacces(&err, "bind", "to", &addr.to_string());
    }
}

#[test]
fn bind_listen_is_permission_denied_at_the_bind() {
    for addr in addresses() {
        let err = Sock::bind_listen(addr, 8).expect_err("the host allows no listener");
        assert_refused(&err, "bind", "to", &addr.to_string());
    }
}

#[test]
fn connect_is_permission_denied_and_names_the_address() {
    for addr in addresses().into_iter().filter(|addr| addr.port() != 0) {
        let start = Instant::now();
        let err = Sock::connect(addr, TIMEOUT).expect_err("the host allows no connect");
        // Refused at once, not after the timeout.
        assert!(start.elapsed() < TIMEOUT / 2, "took {:?}", start.elapsed());
        assert_connect_refused(&err, addr);
        // As an io::Error (the `?` of a caller returning io::Result) it stays the OS error.
        let io_err = io::Error::from(err);
        assert_eq!(io_err.kind(), ErrorKind::PermissionDenied);
        assert_eq!(io_err.raw_os_error(), Some(libc::EACCES));
    }
}

#[test]
fn a_socks5_proxy_connect_is_permission_denied() {
    let proxy: SocketAddr = "127.0.0.1:9050".parse().unwrap();
    let auth = Credentials::new("user", "password");
    let err = Sock::connect_via_socks5(proxy, "example.com", 8333, Some(&auth), TIMEOUT)
        .expect_err("the host allows no connect to the proxy");
    let Socks5Error::ProxyConnect(SockError::Connect { addr, source }) = &err else {
        panic!("expected a refused proxy connect, got {err:?}");
    };
    assert_eq!(*addr, proxy.into());
    assert_eq!(source.kind(), ErrorKind::PermissionDenied, "{source}");
}

#[test]
fn name_lookup_is_permission_denied_and_names_the_host() {
    for host in ["localhost", "seed.bitcoin.sipa.be"] {
        let err = resolve(host, 8333).expect_err("the host allows no name lookup");
        assert_refused(&err, "resolve", "of", &format!("{host:?}"));
        assert_eq!(
            err.to_string(),
            format!(
                "resolve() of {host:?} failed: Permission denied; the WASI host refused name \
                 lookup (wasmtime run grants it with -S allow-ip-name-lookup=y)"
            )
        );
    }
}

#[test]
fn literal_addresses_need_no_lookup_and_still_resolve() {
    let addrs = resolve("127.0.0.1", 8333).expect("a literal is not looked up");
    assert_eq!(addrs, vec!["127.0.0.1:8333".parse().unwrap()]);
    let addrs = resolve("::1", 8333).expect("a literal is not looked up");
    assert_eq!(addrs, vec!["[::1]:8333".parse().unwrap()]);
}

#[test]
fn the_refusals_leave_nothing_behind() {
    // Many refusals in a row: no socket is kept open by a failed call (a leak would hit the
    // host's socket limit and change the error), and the invalid sock still answers.
    let addr: SocketAddr = "127.0.0.1:8333".parse().unwrap();
    for _ in 0..2000 {
        assert_eq!(
            Sock::bind(addr).unwrap_err().kind(),
            ErrorKind::PermissionDenied
        );
        assert!(Sock::connect(addr, TIMEOUT).is_err());
    }
    let sock = Sock::default();
    assert_eq!(
        sock.wait(Duration::ZERO, SockEvent::RECV)
            .unwrap_err()
            .kind(),
        ErrorKind::NotConnected
    );
}
