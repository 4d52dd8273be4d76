//! The crate's one rule for its error types (README, "Errors"), for each type and each kind
//! of failure: `kind()`, `raw_os_error()` and `io_error()` agree with each other and with the
//! `io::Error` made `From` the error, which is the OS error itself (kind and code as std would
//! give them) when the OS failed, and otherwise an `io::Error` of the same kind with the typed
//! error inside (downcastable, Core's text as `Display`).
//!
//! Real loopback sockets for what the OS answers (a port in use, a refused connect, a missing
//! Unix path, the resolver), `MockSock` for timeouts, interrupts and scripted OS errors. Runs
//! natively and in wasmtime (WASI 0.2 and 0.3).

#![cfg(sockets)]

mod common;

use std::error::Error;
use std::io::{self, ErrorKind};
use std::time::Duration;

use bitcoin_sock::sockman::{SockMan, SockManError};
use bitcoin_sock::socks5::{self, interruptible_recv};
use bitcoin_sock::{
    os_error_code, resolve, Disconnected, IntrRecvError, OpError, Sock, SockAddress, SockError,
    SockIo, Socks5Error, UnixAddress,
};
use common::{closed_port, code, listener, pair, Drained, MockSock, TIMEOUT, V4};

const SECOND: Duration = Duration::from_secs(1);

/// The three accessors every error type of the crate has.
trait CrateError: Error + Send + Sync + Sized + 'static + Into<io::Error> {
    fn kind(&self) -> ErrorKind;
    fn raw_os_error(&self) -> Option<i32>;
    fn io_error(&self) -> Option<&io::Error>;
    /// Whether the `io::Error` inside is given back as it is only when it carries an OS code
    /// (an [`OpError`]'s resolver failure keeps its context); the other types give back
    /// whatever `io::Error` they hold.
    const KEEPS_CONTEXT_WITHOUT_CODE: bool = false;
}

macro_rules! crate_error {
    ($($ty:ty),*) => {$(
        impl CrateError for $ty {
            fn kind(&self) -> ErrorKind {
                <$ty>::kind(self)
            }
            fn raw_os_error(&self) -> Option<i32> {
                <$ty>::raw_os_error(self)
            }
            fn io_error(&self) -> Option<&io::Error> {
                <$ty>::io_error(self)
            }
        }
    )*};
}
crate_error!(
    SockError,
    SockManError,
    Disconnected,
    IntrRecvError,
    Socks5Error
);

impl CrateError for OpError {
    fn kind(&self) -> ErrorKind {
        OpError::kind(self)
    }
    fn raw_os_error(&self) -> Option<i32> {
        OpError::raw_os_error(self)
    }
    fn io_error(&self) -> Option<&io::Error> {
        Some(OpError::io_error(self))
    }
    const KEEPS_CONTEXT_WITHOUT_CODE: bool = true;
}

/// Asserts the rule for `err`: its kind is `kind` and its OS code `code`, and so are those of
/// the `io::Error` made from it; an OS error comes out as it is, anything else with `err`
/// inside and the same text.
#[track_caller]
fn assert_rule<E: CrateError>(err: E, kind: ErrorKind, code: Option<i32>) {
    let text = err.to_string();
    assert_eq!(err.kind(), kind, "kind() of {err:?}");
    assert_eq!(err.raw_os_error(), code, "raw_os_error() of {err:?}");
    if code.is_some() {
        let io = err.io_error().expect("an OS failure has its io_error()");
        assert_eq!(os_error_code(io), code, "io_error() of {err:?}");
    }
    // What comes out: the io::Error inside as it is, or the typed error wrapped.
    let as_is = match err.io_error() {
        Some(_) if E::KEEPS_CONTEXT_WITHOUT_CODE => code.is_some(),
        Some(_) => true,
        None => false,
    };
    let inner_text = err.io_error().map(ToString::to_string);

    let converted: io::Error = err.into();
    assert_eq!(converted.kind(), kind, "kind of the io::Error from {text}");
    assert_eq!(
        converted.raw_os_error(),
        code,
        "code of the io::Error from {text}"
    );
    assert_eq!(os_error_code(&converted), code);
    if as_is {
        assert_eq!(Some(converted.to_string()), inner_text);
    } else {
        assert_eq!(converted.to_string(), text);
        let inner = converted
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<E>())
            .unwrap_or_else(|| panic!("the typed error is inside the io::Error from {text}"));
        assert_eq!(inner.to_string(), text);
    }
}

// ---------------------------------------------------------------------------------------------
// OpError: bind, listen, resolve

#[test]
fn a_bind_to_a_port_in_use_keeps_addr_in_use_and_its_code() {
    let taken = listener(V4);
    let addr = taken.local_addr().expect("local_addr");
    let err = Sock::bind(addr).expect_err("the port is taken");
    let code = err.io_error().raw_os_error();
    assert!(code.is_some(), "the OS said so: {err}");
    assert_rule(err, ErrorKind::AddrInUse, code);
    // bind_listen and SockMan's bind_and_listen: the same error.
    let err = Sock::bind_listen(addr, 8).expect_err("the port is taken");
    assert_eq!(err.op(), "bind");
    assert_rule(err, ErrorKind::AddrInUse, code);
    let man = SockMan::new().expect("SockMan");
    let err = man.bind_and_listen(addr).expect_err("the port is taken");
    assert_rule(err, ErrorKind::AddrInUse, code);
}

#[test]
fn a_listen_on_the_invalid_sock_is_not_connected_without_a_code() {
    let err = Sock::default().listen(8).expect_err("nothing to listen on");
    assert_rule(err, ErrorKind::NotConnected, None);
}

#[test]
fn an_invalid_host_name_is_invalid_input_with_its_context() {
    let err = resolve("bad name", 8333).expect_err("not a host name");
    assert_rule(err, ErrorKind::InvalidInput, None);
}

#[test]
fn a_name_that_does_not_resolve_has_no_os_code() {
    // `.invalid` never resolves (RFC 2606); the resolver's codes are no OS codes.
    let err = resolve("no-such-host.invalid", 8333).expect_err("never resolves");
    assert_rule(err, ErrorKind::Other, None);
}

// ---------------------------------------------------------------------------------------------
// SockError: connect, send, receive

#[test]
fn a_refused_connect_keeps_connection_refused_and_its_code() {
    let addr = closed_port(V4);
    let err = Sock::connect(addr, TIMEOUT).expect_err("nothing listens there");
    assert!(
        matches!(&err, SockError::Connect { addr: SockAddress::Ip(a), .. } if *a == addr),
        "{err:?}"
    );
    assert_rule(err, ErrorKind::ConnectionRefused, Some(code::ECONNREFUSED));
}

#[test]
fn a_connect_to_a_missing_unix_path_is_the_same_connect_error() {
    let path = UnixAddress::path("/nonexistent/bitcoin-sock-error-kinds");
    let err = Sock::connect_unix(&path, TIMEOUT).expect_err("nothing there");
    assert!(
        matches!(&err, SockError::Connect { addr: SockAddress::Unix(a), .. } if *a == path),
        "{err:?}"
    );
    assert!(err
        .to_string()
        .starts_with("connect() to unix:/nonexistent/bitcoin-sock-error-kinds failed: "));
    #[cfg(unix)]
    assert_rule(err, ErrorKind::NotFound, Some(libc::ENOENT));
    // No Unix-domain sockets on this host: no OS code either.
    #[cfg(not(unix))]
    assert_rule(err, ErrorKind::Unsupported, None);
}

#[test]
fn a_name_that_does_not_resolve_in_a_connect_by_name_keeps_the_resolvers_error() {
    let err =
        Sock::connect_by_name("no-such-host.invalid:8333", TIMEOUT).expect_err("never resolves");
    let SockError::Resolve(inner) = &err else {
        panic!("expected SockError::Resolve, got {err:?}");
    };
    assert!(
        inner.get_ref().is_some_and(|e| e.is::<OpError>()),
        "{inner:?}"
    );
    assert_rule(err, ErrorKind::Other, None);
    let err = Sock::connect_by_name("no port", TIMEOUT).expect_err("no port");
    assert_rule(err, ErrorKind::InvalidInput, None);
}

#[test]
fn a_receive_timeout_is_timed_out_without_a_code() {
    let mock = MockSock::new().data(b"ab");
    let err = mock
        .recv_until_terminator(b'\n', 3 * SECOND, &mock.interrupt, 100)
        .expect_err("no terminator comes");
    assert!(matches!(err, SockError::RecvTimeout { .. }), "{err:?}");
    assert_rule(err, ErrorKind::TimedOut, None);
}

#[test]
fn a_receive_error_keeps_its_code() {
    let mock = MockSock::new().then(Drained::Error(code::ECONNRESET));
    let err = mock
        .recv_until_terminator(b'\n', 3 * SECOND, &mock.interrupt, 100)
        .expect_err("reset");
    assert!(matches!(err, SockError::Recv { .. }), "{err:?}");
    assert_rule(err, ErrorKind::ConnectionReset, Some(code::ECONNRESET));
}

#[test]
fn the_other_receive_failures_have_their_kinds() {
    let mock = MockSock::new().data(b"abc").then(Drained::Eof);
    let err = mock
        .recv_until_terminator(b'\n', 3 * SECOND, &mock.interrupt, 100)
        .expect_err("closed first");
    assert_rule(err, ErrorKind::UnexpectedEof, None);
    let mock = MockSock::new().data(b"abcdef");
    let err = mock
        .recv_until_terminator(b'\n', 3 * SECOND, &mock.interrupt, 4)
        .expect_err("too long");
    assert_rule(err, ErrorKind::InvalidData, None);
}

#[test]
fn an_interrupt_is_other_never_interrupted() {
    let mock = MockSock::new().interrupt_on_wait(1);
    let err = mock
        .send_complete(b"data", 3 * SECOND, &mock.interrupt)
        .expect_err("interrupted");
    assert!(err.is_interrupted(), "{err:?}");
    assert_rule(err, ErrorKind::Other, None);
}

#[test]
fn a_send_error_keeps_its_code() {
    let mock = MockSock::new().sends([Err(io::Error::from_raw_os_error(code::EPIPE))]);
    let err = mock
        .send_complete(b"data", 3 * SECOND, &mock.interrupt)
        .expect_err("broken pipe");
    assert!(matches!(err, SockError::Send(_)), "{err:?}");
    let kind = io::Error::from_raw_os_error(code::EPIPE).kind();
    assert_rule(err, kind, Some(code::EPIPE));
}

// ---------------------------------------------------------------------------------------------
// Disconnected, IntrRecvError

#[test]
fn is_connected_tells_closed_and_reset_apart_by_kind_and_code() {
    let err = MockSock::new()
        .then(Drained::Eof)
        .is_connected()
        .expect_err("closed");
    assert_rule(err, ErrorKind::UnexpectedEof, None);
    let err = MockSock::new()
        .then(Drained::Error(code::ECONNRESET))
        .is_connected()
        .expect_err("reset");
    assert_rule(err, ErrorKind::ConnectionReset, Some(code::ECONNRESET));
    let err = Sock::default().is_connected().expect_err("invalid");
    assert_rule(err, ErrorKind::NotConnected, None);
}

#[test]
fn interruptible_recv_failures_have_their_kinds_and_codes() {
    let mut buf = [0u8; 4];
    let mock = MockSock::new().data(b"ab");
    let err = interruptible_recv(&mock, &mut buf, 3 * SECOND, &mock.interrupt).unwrap_err();
    assert_rule(err, ErrorKind::TimedOut, None);
    let mock = MockSock::new().then(Drained::Eof);
    let err = interruptible_recv(&mock, &mut buf, 3 * SECOND, &mock.interrupt).unwrap_err();
    assert_rule(err, ErrorKind::UnexpectedEof, None);
    let mock = MockSock::new().then(Drained::Error(code::ECONNRESET));
    let err = interruptible_recv(&mock, &mut buf, 3 * SECOND, &mock.interrupt).unwrap_err();
    assert_rule(err, ErrorKind::ConnectionReset, Some(code::ECONNRESET));
    let mock = MockSock::new().interrupt_on_wait(1);
    let err = interruptible_recv(&mock, &mut buf, 3 * SECOND, &mock.interrupt).unwrap_err();
    assert_rule(err, ErrorKind::Other, None);
}

// ---------------------------------------------------------------------------------------------
// Socks5Error

/// The handshake of `socks5::connect` against a proxy scripted by `replies`.
fn socks5_over(mock: MockSock) -> Socks5Error {
    let mock = mock.sends([Ok(usize::MAX), Ok(usize::MAX)]);
    socks5::connect(
        &mock,
        "example.com",
        8333,
        None,
        3 * SECOND,
        &mock.interrupt,
    )
    .expect_err("the proxy refuses")
}

#[test]
fn socks5_failures_have_their_kinds_and_keep_os_codes() {
    // "No acceptable method": the proxy wants credentials.
    let err = socks5_over(MockSock::new().data(&[0x05, 0xff]));
    assert_rule(err, ErrorKind::PermissionDenied, None);
    // Reply 05, connection refused by the destination.
    let err = socks5_over(MockSock::new().data(&[0x05, 0x00, 0x05, 0x05, 0x00, 0x01]));
    assert_eq!(err.reply_code(), Some(0x05));
    assert_rule(err, ErrorKind::ConnectionRefused, None);
    // Not SOCKS5 at all.
    let err = socks5_over(MockSock::new().data(&[0x04, 0x00]));
    assert_rule(err, ErrorKind::InvalidData, None);
    // The proxy reset the connection during the greeting: its OS error, code and all.
    let err = socks5_over(MockSock::new().then(Drained::Error(code::ECONNRESET)));
    assert_rule(err, ErrorKind::ConnectionReset, Some(code::ECONNRESET));
    // Silent proxy: a timeout.
    let err = socks5_over(MockSock::new());
    assert!(err.is_timeout(), "{err:?}");
    assert_rule(err, ErrorKind::TimedOut, None);
    let long = "a".repeat(256);
    let mock = MockSock::new();
    let err = socks5::connect(&mock, &long, 8333, None, SECOND, &mock.interrupt).unwrap_err();
    assert_rule(err, ErrorKind::InvalidInput, None);
}

#[test]
fn socks5_reply_codes_and_handshake_failures_have_their_kinds() {
    for (code, kind) in [
        (0x01, ErrorKind::Other),
        (0x02, ErrorKind::PermissionDenied),
        (0x03, ErrorKind::Other),
        (0x04, ErrorKind::Other),
        (0x05, ErrorKind::ConnectionRefused),
        (0x06, ErrorKind::TimedOut),
        (0x07, ErrorKind::Other),
        (0x08, ErrorKind::Unsupported),
        (0xf0, ErrorKind::Other),
        (0xf7, ErrorKind::TimedOut),
    ] {
        assert_rule(Socks5Error::Reply { code }, kind, None);
    }
    for (err, kind) in [
        (Socks5Error::HostnameTooLong, ErrorKind::InvalidInput),
        (Socks5Error::CredentialsTooLong, ErrorKind::InvalidInput),
        (
            Socks5Error::InitFailed { version: 4 },
            ErrorKind::InvalidData,
        ),
        (
            Socks5Error::RequestNotAccepted { version: 4 },
            ErrorKind::InvalidData,
        ),
        (
            Socks5Error::MalformedResponse {
                header: [5, 0, 1, 9],
            },
            ErrorKind::InvalidData,
        ),
        (
            Socks5Error::WrongAuthMethod { method: 0xff },
            ErrorKind::PermissionDenied,
        ),
        (
            Socks5Error::AuthFailed { response: [1, 1] },
            ErrorKind::PermissionDenied,
        ),
        (
            Socks5Error::Send(SockError::SendTimeout { sent: 0, total: 3 }),
            ErrorKind::TimedOut,
        ),
    ] {
        assert_rule(err, kind, None);
    }
    let err = Socks5Error::AuthReply(IntrRecvError::NetworkError {
        source: io::Error::from_raw_os_error(code::ECONNRESET),
        received: 0,
        expected: 2,
    });
    assert_rule(err, ErrorKind::ConnectionReset, Some(code::ECONNRESET));
}

#[test]
fn a_refused_socks5_proxy_keeps_connection_refused_and_its_code() {
    let proxy = closed_port(V4);
    let err = Sock::connect_via_socks5(proxy, "example.com", 8333, None, TIMEOUT)
        .expect_err("no proxy there");
    assert!(matches!(err, Socks5Error::ProxyConnect(_)), "{err:?}");
    assert_rule(err, ErrorKind::ConnectionRefused, Some(code::ECONNREFUSED));
}

// ---------------------------------------------------------------------------------------------
// SockManError

#[test]
fn sockman_unknown_connection_is_not_found_without_a_code() {
    let man = SockMan::new().expect("SockMan");
    let pair = pair();
    let id = man.add_connection(pair.client).expect("add_connection");
    assert!(man.close(id));
    let err = man.send(id, b"x", false).expect_err("closed");
    assert!(matches!(err, SockManError::UnknownConnection(_)), "{err:?}");
    assert_rule(err, ErrorKind::NotFound, None);
    let err = man.local_addr(id).expect_err("closed");
    assert_rule(err, ErrorKind::NotFound, None);
}
