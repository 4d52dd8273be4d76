//! Connecting by name (Core's `ConnectNode`): `"host:port"` / `"[v6]:port"` / `"unix:path"`
//! destinations, each address tried in turn with the last error kept, the resolver's error
//! for a name that does not resolve, `InvalidInput` for malformed text; and addresses as text
//! (`split_host_port`, `SockAddress: FromStr`, its `Display` round trip). Runs natively and in
//! wasmtime.

#![cfg(sockets)]

mod common;

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bitcoin_sock::sockman::{Handler, Id, SockMan};
use bitcoin_sock::{split_host_port, Sock, SockAddress, SockError, SockEvent, UnixAddress};
use common::{accept, closed_port, has_ipv6, listener, TIMEOUT, V4, V6};

/// The error of a destination that did not parse: `SockError::Resolve`, `InvalidInput`.
#[track_caller]
fn assert_malformed(dest: &str, reason: &str) {
    let started = Instant::now();
    let err = Sock::connect_by_name(dest, TIMEOUT).expect_err("malformed");
    let SockError::Resolve(io) = &err else {
        panic!("{dest:?}: expected SockError::Resolve, got {err:?}");
    };
    assert_eq!(io.kind(), ErrorKind::InvalidInput, "{dest:?}: {io}");
    assert_eq!(
        err.to_string(),
        format!("invalid address {dest:?}: {reason}")
    );
    // Refused before any lookup or connect.
    assert!(started.elapsed() < TIMEOUT / 2);
}

#[test]
fn connect_by_name_takes_an_ip_and_port_and_a_bracketed_ipv6_address() {
    let v4 = listener(V4);
    let addr = v4.local_addr().expect("local_addr");
    let sock = Sock::connect_by_name(&addr.to_string(), TIMEOUT).expect("connect");
    assert_eq!(sock.peer_addr().expect("peer"), addr);
    accept(&v4);
    if has_ipv6() {
        let v6 = listener(V6);
        let addr = v6.local_addr().expect("local_addr");
        let dest = format!("[::1]:{}", addr.port());
        let sock = Sock::connect_by_name(&dest, TIMEOUT).expect("connect");
        assert_eq!(sock.peer_addr().expect("peer"), addr);
    }
}

#[test]
fn connect_by_name_looks_up_a_host_name() {
    let listener = listener(V4);
    let port = listener.local_addr().expect("local_addr").port();
    // localhost resolves to 127.0.0.1 (perhaps after ::1, where nothing listens: tried in
    // turn).
    let sock = Sock::connect_by_name(&format!("localhost:{port}"), TIMEOUT).expect("connect");
    assert_eq!(sock.peer_addr().expect("peer"), SocketAddr::new(V4, port));
    let (server, _) = accept(&listener);
    assert_eq!(
        server.peer_addr().expect("peer"),
        sock.local_addr().expect("local")
    );
}

#[test]
fn connect_any_tries_each_address_in_turn() {
    let listener = listener(V4);
    let open = listener.local_addr().expect("local_addr");
    let refused = closed_port(V4);
    let sock = Sock::connect_any(&[refused, open], TIMEOUT).expect("the second accepts");
    assert_eq!(sock.peer_addr().expect("peer"), open);
    wait_until_accepted(&listener);
}

fn wait_until_accepted(listener: &Sock) {
    let occurred = listener.wait(TIMEOUT, SockEvent::RECV).expect("wait");
    assert!(occurred.contains(SockEvent::RECV));
    listener.accept().expect("accept");
}

#[test]
fn connect_any_keeps_the_last_error() {
    let first = closed_port(V4);
    let last = closed_port(V4);
    let err = Sock::connect_any(&[first, last], TIMEOUT).expect_err("nothing listens");
    match &err {
        SockError::Connect { addr, source } => {
            assert_eq!(*addr, last.into());
            assert_eq!(source.kind(), ErrorKind::ConnectionRefused);
        }
        other => panic!("expected the last refusal, got {other:?}"),
    }
    let err = Sock::connect_any(&[], TIMEOUT).expect_err("no address");
    assert_eq!(err.to_string(), "no address to connect to");
    assert_eq!(
        err.io_error().map(|e| e.kind()),
        Some(ErrorKind::InvalidInput)
    );
}

#[test]
fn a_name_that_does_not_resolve_gives_the_resolvers_error() {
    let err = Sock::connect_by_name("no-such-host.invalid:8333", TIMEOUT).expect_err("no host");
    let SockError::Resolve(io) = &err else {
        panic!("expected SockError::Resolve, got {err:?}");
    };
    assert_eq!(io.kind(), ErrorKind::Other);
    assert_eq!(
        err.to_string(),
        "resolve() of \"no-such-host.invalid\" failed: Name or service not known"
    );
    // As an io::Error (a caller's `?`), the resolver's error itself.
    let io = std::io::Error::from(err);
    assert_eq!(io.kind(), ErrorKind::Other);
    assert!(io.to_string().starts_with("resolve() of "), "{io}");
}

#[test]
fn malformed_destinations_are_invalid_input_and_say_what_is_wrong() {
    let no_port = "no port (host:port, [IPv6]:port)";
    assert_malformed("", "empty");
    assert_malformed("127.0.0.1", no_port);
    assert_malformed("localhost", no_port);
    assert_malformed("[::1]", no_port);
    assert_malformed("[::1", "'[' without ']'");
    assert_malformed("::1]:8333", "']' without '['");
    assert_malformed("[::1]8333", "':' and the port must follow ']'");
    assert_malformed("[localhost]:8333", "only an IPv6 address goes in brackets");
    assert_malformed(
        "::1:8333",
        "an IPv6 address goes in brackets, \"[::1]:8333\"",
    );
    assert_malformed("host]:8333", "']' without '['");
    assert_malformed(":8333", "no host before the port");
    assert_malformed("127.0.0.1:", "no port after ':'");
    assert_malformed("127.0.0.1:65536", "port 65536 is out of range (0 to 65535)");
    assert_malformed(
        "127.0.0.1:99999999999999999999",
        "port 99999999999999999999 is out of range (0 to 65535)",
    );
    assert_malformed("127.0.0.1:-1", "port \"-1\" is not a number");
    assert_malformed("127.0.0.1:port", "port \"port\" is not a number");
    assert_malformed("unix:", "no path after \"unix:\"");
}

#[test]
fn a_malformed_host_name_is_refused_by_the_lookup_on_every_host() {
    let err = Sock::connect_by_name("bad name:8333", TIMEOUT).expect_err("no host name");
    assert_eq!(
        err.io_error().map(|e| e.kind()),
        Some(ErrorKind::InvalidInput)
    );
    assert_eq!(
        err.to_string(),
        "resolve() of \"bad name\" failed: invalid host name"
    );
}

#[test]
fn split_host_port_is_cores_split_with_the_port_required() {
    assert_eq!(
        split_host_port("seed.bitcoin.sipa.be:8333").unwrap(),
        ("seed.bitcoin.sipa.be", 8333)
    );
    assert_eq!(split_host_port("127.0.0.1:0").unwrap(), ("127.0.0.1", 0));
    assert_eq!(split_host_port("[::1]:65535").unwrap(), ("::1", 65535));
    assert_eq!(
        split_host_port("[fe80::1%2]:8333").unwrap(),
        ("fe80::1%2", 8333)
    );
    assert_eq!(split_host_port("x:08333").unwrap(), ("x", 8333));
    let err = split_host_port("[::1]").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
}

#[test]
fn sock_address_parses_what_it_displays() {
    let mut texts = vec![
        "127.0.0.1:8333",
        "0.0.0.0:0",
        "[::1]:18444",
        "[fe80::1%2]:8333",
        "[::ffff:1.2.3.4]:1",
        "unix:/run/tor/socks",
        "unix:relative/node.sock",
        "unix:./@not-abstract",
        "unix:@bitcoind",
        "unix:(unnamed)",
    ];
    let abstract_with_bytes = UnixAddress::abstract_name(*b"a\0b\\c\"\xff\n").to_string();
    texts.push(&abstract_with_bytes);
    for text in texts {
        let addr: SockAddress = text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(addr.to_string(), text);
    }
    assert_eq!(
        abstract_with_bytes.parse::<UnixAddress>().unwrap(),
        UnixAddress::abstract_name(*b"a\0b\\c\"\xff\n")
    );
    assert_eq!(
        "[::1]:1".parse::<SockAddress>().unwrap(),
        SockAddress::Ip("[::1]:1".parse().unwrap())
    );
    assert_eq!(
        "unix:/run/tor/socks".parse::<SockAddress>().unwrap(),
        SockAddress::Unix(UnixAddress::path("/run/tor/socks"))
    );
}

#[test]
fn sock_address_refuses_names_and_malformed_text() {
    for (text, reason) in [
        ("", "empty"),
        ("1.2.3.4", "no port (host:port, [IPv6]:port)"),
        ("1.2.3.4:65536", "port 65536 is out of range (0 to 65535)"),
        (
            "localhost:8333",
            "\"localhost\" is no IP address (a name is looked up: connect_by_name, resolve)",
        ),
        ("unix:", "no path after \"unix:\""),
        ("unix:@bad\\q", "a malformed escape in the abstract name"),
        ("unix:@bad\\x4", "a malformed escape in the abstract name"),
    ] {
        let err = text.parse::<SockAddress>().expect_err(text);
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert_eq!(
            err.to_string(),
            format!("invalid address {text:?}: {reason}")
        );
    }
    let err = "/run/tor/socks".parse::<UnixAddress>().unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid address \"/run/tor/socks\": a Unix-domain address starts with \"unix:\""
    );
}

#[test]
fn connect_by_name_to_a_unix_path_is_connect_unix() {
    // Natively on Unix a path where nothing listens; elsewhere no Unix-domain sockets at all.
    let err = Sock::connect_by_name("unix:/nonexistent/bitcoin-sock-test", TIMEOUT)
        .expect_err("nothing there");
    let SockError::Connect { addr, source } = &err else {
        panic!("expected SockError::Connect, got {err:?}");
    };
    assert_eq!(
        *addr,
        UnixAddress::path("/nonexistent/bitcoin-sock-test").into()
    );
    let expected = if cfg!(unix) {
        ErrorKind::NotFound
    } else {
        ErrorKind::Unsupported
    };
    assert_eq!(source.kind(), expected, "{source}");
}

/// Accepts every connection and records it.
#[derive(Default)]
struct Accepting {
    accepted: Vec<(Id, SocketAddr)>,
}

impl Handler for Accepting {
    fn new_connection_accepted(
        &mut self,
        _: &SockMan,
        id: Id,
        _: SocketAddr,
        them: SocketAddr,
    ) -> bool {
        self.accepted.push((id, them));
        true
    }
    fn got_data(&mut self, _: &SockMan, _: Id, _: &[u8]) {}
    fn got_eof(&mut self, _: &SockMan, _: Id) {}
    fn got_permanent_read_error(&mut self, _: &SockMan, _: Id, _: &std::io::Error) {}
}

#[test]
fn sockman_connects_by_name_and_keeps_the_errors() {
    let man = SockMan::new().expect("a manager");
    let addr = man.bind_and_listen(SocketAddr::new(V4, 0)).expect("listen");
    let id = man
        .connect_by_name(&format!("localhost:{}", addr.port()), TIMEOUT)
        .expect("connect");
    assert_eq!(man.peer_addr(id).expect("peer"), addr);
    let mut handler = Accepting::default();
    let deadline = Instant::now() + TIMEOUT;
    while handler.accepted.is_empty() {
        assert!(Instant::now() < deadline, "the connection was not accepted");
        man.run_once(&mut handler, Duration::from_millis(10))
            .expect("run_once");
    }
    assert_eq!(handler.accepted[0].1, man.local_addr(id).expect("local"));
    assert_eq!(man.connection_count(), 2);

    let err = man
        .connect_by_name("127.0.0.1", TIMEOUT)
        .expect_err("no port");
    assert_eq!(
        err.io_error().map(|e| e.kind()),
        Some(ErrorKind::InvalidInput)
    );
    let refused = closed_port(V4);
    let err = man
        .connect_by_name(&refused.to_string(), TIMEOUT)
        .expect_err("refused");
    assert!(
        matches!(&err, SockError::Connect { addr, .. } if *addr == refused.into()),
        "{err:?}"
    );
    assert_eq!(man.connection_count(), 2);
}
