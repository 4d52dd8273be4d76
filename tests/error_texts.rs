//! What "the same error texts on every host" promises (README, "Error texts"), as a table:
//! `network_error_string` gives glibc's words for every code the backends produce, then the
//! host's own number; the crate's errors put their context before those words; the resolver's
//! failures read the same everywhere, without a number. Runs natively (Linux; Windows under
//! Wine), in wasmtime and under jco.

#![cfg(sockets)]

mod common;

use std::io::ErrorKind;
use std::net::SocketAddr;

use bitcoin_sock::{network_error_string, resolve, Sock, SockError};
use common::{closed_port, listener, TIMEOUT, V4};

/// Each host's code for each condition: errno natively on Unix, wasi-libc's errno on WASI,
/// Winsock's on Windows.
mod codes {
    #[cfg(any(unix, target_os = "wasi"))]
    pub use libc::{
        EACCES, EADDRINUSE, EADDRNOTAVAIL, EAFNOSUPPORT, EALREADY, EBADF, ECONNABORTED,
        ECONNREFUSED, ECONNRESET, EHOSTUNREACH, EINPROGRESS, EINTR, EINVAL, EISCONN, EMFILE,
        EMSGSIZE, ENETDOWN, ENETRESET, ENETUNREACH, ENOBUFS, ENOTCONN, ENOTSOCK, EOPNOTSUPP,
        ETIMEDOUT, EWOULDBLOCK,
    };
    #[cfg(windows)]
    pub use windows_sys::Win32::Networking::WinSock::{
        WSAEACCES as EACCES, WSAEADDRINUSE as EADDRINUSE, WSAEADDRNOTAVAIL as EADDRNOTAVAIL,
        WSAEAFNOSUPPORT as EAFNOSUPPORT, WSAEALREADY as EALREADY, WSAEBADF as EBADF,
        WSAECONNABORTED as ECONNABORTED, WSAECONNREFUSED as ECONNREFUSED,
        WSAECONNRESET as ECONNRESET, WSAEHOSTUNREACH as EHOSTUNREACH,
        WSAEINPROGRESS as EINPROGRESS, WSAEINTR as EINTR, WSAEINVAL as EINVAL,
        WSAEISCONN as EISCONN, WSAEMFILE as EMFILE, WSAEMSGSIZE as EMSGSIZE,
        WSAENETDOWN as ENETDOWN, WSAENETRESET as ENETRESET, WSAENETUNREACH as ENETUNREACH,
        WSAENOBUFS as ENOBUFS, WSAENOTCONN as ENOTCONN, WSAENOTSOCK as ENOTSOCK,
        WSAEOPNOTSUPP as EOPNOTSUPP, WSAETIMEDOUT as ETIMEDOUT, WSAEWOULDBLOCK as EWOULDBLOCK,
    };
}

/// The conditions every host has, with the words every host gives them.
fn table() -> Vec<(i32, &'static str)> {
    use codes::*;
    let mut table = vec![
        (ECONNREFUSED, "Connection refused"),
        (ECONNRESET, "Connection reset by peer"),
        (ECONNABORTED, "Software caused connection abort"),
        (EADDRINUSE, "Address already in use"),
        (EADDRNOTAVAIL, "Cannot assign requested address"),
        (ENETUNREACH, "Network is unreachable"),
        (EHOSTUNREACH, "No route to host"),
        (ETIMEDOUT, "Connection timed out"),
        (EACCES, "Permission denied"),
        (ENOTCONN, "Transport endpoint is not connected"),
        (EISCONN, "Transport endpoint is already connected"),
        (EINVAL, "Invalid argument"),
        (EWOULDBLOCK, "Resource temporarily unavailable"),
        (EINPROGRESS, "Operation now in progress"),
        (EALREADY, "Operation already in progress"),
        (EINTR, "Interrupted system call"),
        (EBADF, "Bad file descriptor"),
        (EMFILE, "Too many open files"),
        (ENOBUFS, "No buffer space available"),
        (EMSGSIZE, "Message too long"),
        (EAFNOSUPPORT, "Address family not supported by protocol"),
        (EOPNOTSUPP, "Operation not supported"),
        (ENETDOWN, "Network is down"),
        (ENETRESET, "Network dropped connection on reset"),
        (ENOTSOCK, "Socket operation on non-socket"),
    ];
    // The conditions only some hosts have a code for.
    #[cfg(any(unix, target_os = "wasi"))]
    table.extend([
        (libc::EPIPE, "Broken pipe"),
        (libc::EPERM, "Operation not permitted"),
        (libc::ENOMEM, "Cannot allocate memory"),
        (libc::ENOENT, "No such file or directory"),
        (libc::EIO, "Input/output error"),
    ]);
    #[cfg(windows)]
    table.push((
        windows_sys::Win32::Networking::WinSock::WSAESHUTDOWN,
        "Cannot send after transport endpoint shutdown",
    ));
    table
}

#[test]
fn network_error_string_gives_the_same_words_on_every_host_and_the_hosts_number() {
    for (code, words) in table() {
        assert_eq!(network_error_string(code), format!("{words} ({code})"));
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[test]
fn the_words_are_glibcs_as_core_prints_them_on_linux() {
    for (code, words) in table() {
        let os = std::io::Error::from_raw_os_error(code).to_string();
        assert_eq!(os, format!("{words} (os error {code})"));
    }
}

#[test]
fn a_refused_connect_reads_the_same_on_every_host() {
    let addr = closed_port(V4);
    let err = Sock::connect(addr, TIMEOUT).expect_err("nothing listens there");
    assert!(matches!(err, SockError::Connect { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!(
            "connect() to {addr} failed: Connection refused ({})",
            codes::ECONNREFUSED
        )
    );
}

#[test]
fn a_bind_to_a_port_in_use_reads_the_same_on_every_host() {
    let listener = listener(V4);
    let addr = listener.local_addr().expect("local_addr");
    let err = Sock::bind(addr).expect_err("the port is taken");
    assert_eq!(err.raw_os_error(), Some(codes::EADDRINUSE));
    assert_eq!(
        err.to_string(),
        format!(
            "bind() to {addr} failed: Address already in use ({})",
            codes::EADDRINUSE
        )
    );
}

#[test]
fn a_name_that_does_not_exist_reads_the_same_on_every_host_without_a_number() {
    // `.invalid` never resolves (RFC 2606).
    let err = resolve("no-such-host.invalid", 8333).expect_err("never resolves");
    assert_eq!(err.kind(), ErrorKind::Other);
    assert_eq!(err.raw_os_error(), None);
    assert_eq!(
        err.to_string(),
        "resolve() of \"no-such-host.invalid\" failed: Name or service not known"
    );
}

#[test]
fn what_is_no_host_name_is_refused_before_any_lookup_on_every_host() {
    let too_long = "a".repeat(254);
    for host in [
        "",
        "a b",
        "host:8333",
        "[::1]",
        "bücher.example",
        "x\0y",
        &too_long,
    ] {
        let err = resolve(host, 8333).expect_err("not a host name");
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{host:?}");
        assert_eq!(
            err.to_string(),
            format!("resolve() of {host:?} failed: invalid host name")
        );
    }
    // At the limits: 253 bytes, and every character a name may have.
    let longest = format!(
        "{}.{}.{}.{}.invalid",
        "a".repeat(63),
        "b".repeat(63),
        "c".repeat(63),
        "d".repeat(53)
    );
    assert_eq!(longest.len(), 253);
    for host in [longest.as_str(), "a-b_c.0.invalid"] {
        let err = resolve(host, 8333).expect_err("never resolves");
        assert_eq!(err.kind(), ErrorKind::Other, "{host:?}: {err}");
    }
}

#[test]
fn an_ip_literal_needs_no_lookup() {
    let addrs = resolve("::1", 8333).expect("a literal");
    assert_eq!(addrs, ["[::1]:8333".parse::<SocketAddr>().unwrap()]);
}
