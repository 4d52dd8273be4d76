//! What only the WASI backends (0.2, and 0.3 with the `wasip3` feature) have to get right:
//! errno values as wasi-libc's, options WASI has or lacks, name lookup through
//! `wasi:sockets/ip-name-lookup`, connect failures kept like `SO_ERROR`, sockets made with the
//! raw WASI calls adopted. The shared behaviour tests in `tests/` run here too.
#![cfg(all(target_os = "wasi", target_env = "p2"))]

bitcoin_sock::wasip3_main!();

use std::io::ErrorKind;
use std::time::Duration;

use bitcoin_sock::{
    io_error_is_permanent, network_error_string, resolve, Sock, SockError, SockEvent, SockOpt,
    SockOptValue,
};

const TIMEOUT: Duration = Duration::from_secs(10);

fn pair() -> (Sock, Sock) {
    let listener = Sock::bind_listen("127.0.0.1:0".parse().unwrap(), 8).unwrap();
    let client = Sock::connect(listener.local_addr().unwrap(), TIMEOUT).unwrap();
    listener.wait(TIMEOUT, SockEvent::RECV).unwrap();
    let (server, _) = listener.accept().unwrap();
    (client, server)
}

#[test]
fn try_again_codes_are_wasi_libc_values() {
    // wasi-libc: EAGAIN = EWOULDBLOCK = 6, EINPROGRESS = 26, EINTR = 27.
    for code in [6, 26, 27] {
        assert!(!io_error_is_permanent(code), "{code}");
    }
    // ECONNREFUSED = 14, ECONNRESET = 15, EPIPE = 64.
    for code in [14, 15, 64] {
        assert!(io_error_is_permanent(code), "{code}");
    }
}

#[test]
fn network_error_string_has_wasi_libc_numbers_and_the_words_of_every_host() {
    assert_eq!(network_error_string(14), "Connection refused (14)");
    assert_eq!(network_error_string(15), "Connection reset by peer (15)");
    // wasi-libc's own text is "Address in use".
    assert_eq!(network_error_string(3), "Address already in use (3)");
}

#[test]
fn refused_connect_has_the_native_kind_and_wasi_errno() {
    let port = Sock::bind("127.0.0.1:0".parse().unwrap())
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}").parse().unwrap();
    match Sock::connect(addr, TIMEOUT) {
        Err(SockError::Connect { source, .. }) => {
            assert_eq!(source.kind(), ErrorKind::ConnectionRefused);
            assert_eq!(source.raw_os_error(), Some(14));
        }
        other => panic!("expected a refused connect, got {other:?}"),
    }
}

#[test]
fn options_wasi_lacks_are_unsupported() {
    let (client, _server) = pair();
    for opt in [SockOpt::NoDelay, SockOpt::ReuseAddress] {
        assert_eq!(
            client.get_sock_opt(opt).unwrap_err().kind(),
            ErrorKind::Unsupported
        );
        assert_eq!(
            client
                .set_sock_opt(opt, SockOptValue::Bool(true))
                .unwrap_err()
                .kind(),
            ErrorKind::Unsupported
        );
    }
    assert_eq!(
        client.set_nodelay(true).unwrap_err().kind(),
        ErrorKind::Unsupported
    );
}

#[test]
fn options_wasi_has_work() {
    let (client, _server) = pair();
    client.set_keepalive(true).unwrap();
    assert!(client.keepalive().unwrap());
    client.set_keepalive(false).unwrap();
    assert!(!client.keepalive().unwrap());
    client.set_recv_buffer_size(65536).unwrap();
    assert!(client.recv_buffer_size().unwrap() > 0);
    client.set_send_buffer_size(65536).unwrap();
    assert!(client.send_buffer_size().unwrap() > 0);
    client
        .set_sock_opt(SockOpt::Ttl, SockOptValue::Size(33))
        .unwrap();
    assert_eq!(
        client.get_sock_opt(SockOpt::Ttl).unwrap(),
        SockOptValue::Size(33)
    );
    assert!(client.take_error().unwrap().is_none());
}

/// Literals are parsed here, never sent to `ip-name-lookup` (which wasmtime refuses even for
/// literals without `allow-ip-name-lookup`); names are resolved in tests/sock.rs.
#[test]
fn resolve_takes_an_ipv6_literal_without_lookup() {
    assert_eq!(
        resolve("::1", 8333).unwrap(),
        vec!["[::1]:8333".parse().unwrap()]
    );
}

#[test]
fn recv_on_a_listener_is_not_connected() {
    let listener = Sock::bind_listen("127.0.0.1:0".parse().unwrap(), 8).unwrap();
    let mut buf = [0u8; 4];
    let err = listener.recv(&mut buf).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotConnected);
    assert_eq!(listener.accept().unwrap_err().kind(), ErrorKind::WouldBlock);
}

#[cfg(not(wasi_p3))]
#[test]
fn raw_wasi_sockets_are_adopted_in_their_state() {
    use wasi::sockets::instance_network::instance_network;
    use wasi::sockets::network::{IpAddressFamily, IpSocketAddress, Ipv4SocketAddress};
    use wasi::sockets::tcp_create_socket::create_tcp_socket;

    // A listener made with the raw WASI API, adopted: it accepts like one of ours.
    let network = instance_network();
    let raw = create_tcp_socket(IpAddressFamily::Ipv4).unwrap();
    let any_port = IpSocketAddress::Ipv4(Ipv4SocketAddress {
        port: 0,
        address: (127, 0, 0, 1),
    });
    raw.start_bind(&network, any_port).unwrap();
    raw.finish_bind().unwrap();
    raw.start_listen().unwrap();
    raw.finish_listen().unwrap();
    let listener = Sock::from(raw);
    // SAFETY: a query, no resource made from the socket.
    assert!(unsafe { listener.get().unwrap().tcp_socket() }.is_listening());

    let client = Sock::connect(listener.local_addr().unwrap(), TIMEOUT).unwrap();
    listener.wait(TIMEOUT, SockEvent::RECV).unwrap();

    // An accepted socket with its streams, taken with the raw API, adopted as connected.
    // SAFETY: the accepted socket and its streams are adopted at once, so none outlives the
    // listener's `Sock`; a listener's state does not change by accepting.
    let raw_listener = unsafe { listener.get().unwrap().tcp_socket() };
    let server = Sock::from(raw_listener.accept().unwrap());
    client.send(b"hello").unwrap();
    let mut buf = [0u8; 5];
    let mut got = 0;
    for _ in 0..100 {
        server.wait(TIMEOUT, SockEvent::RECV).unwrap();
        match server.recv(&mut buf[got..]) {
            Ok(n) => got += n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(e) => panic!("{e}"),
        }
        if got == buf.len() {
            break;
        }
    }
    assert_eq!(&buf, b"hello");
}

#[cfg(wasi_p3)]
#[test]
fn raw_wasi_sockets_are_adopted_in_their_state() {
    use wasip3::sockets::types::{IpAddressFamily, IpSocketAddress, Ipv4SocketAddress, TcpSocket};

    // A listener made with the raw WASI 0.3 API, adopted with its stream of accepted sockets:
    // it accepts like one of ours.
    let raw = TcpSocket::create(IpAddressFamily::Ipv4).unwrap();
    let any_port = IpSocketAddress::Ipv4(Ipv4SocketAddress {
        port: 0,
        address: (127, 0, 0, 1),
    });
    raw.bind(any_port).unwrap();
    let accepted = raw.listen().unwrap();
    let listener = Sock::from((raw, accepted));
    let addr = listener.local_addr().unwrap();

    // A socket connected with the raw API (its async connect run to the end here), adopted
    // as connected: its streams are opened by the adoption.
    let raw_client = TcpSocket::create(IpAddressFamily::Ipv4).unwrap();
    let std::net::SocketAddr::V4(v4) = addr else {
        panic!("an IPv4 listener: {addr}");
    };
    let remote = IpSocketAddress::Ipv4(Ipv4SocketAddress {
        port: v4.port(),
        address: (127, 0, 0, 1),
    });
    wasip3::wit_bindgen::block_on(raw_client.connect(remote)).unwrap();
    let client = Sock::from(raw_client);
    assert_eq!(client.peer_addr().unwrap(), addr);

    listener.wait(TIMEOUT, SockEvent::RECV).unwrap();
    let (server, _) = listener.accept().unwrap();
    client.send(b"hello").unwrap();
    let mut buf = [0u8; 5];
    let mut got = 0;
    for _ in 0..100 {
        server.wait(TIMEOUT, SockEvent::RECV).unwrap();
        match server.recv(&mut buf[got..]) {
            Ok(n) => got += n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(e) => panic!("{e}"),
        }
        if got == buf.len() {
            break;
        }
    }
    assert_eq!(&buf, b"hello");
}

/// What the safe API lends on WASI cannot trap the component: `get` gives a socket with no
/// raw resource (its `wasi:sockets/tcp` socket only through an `unsafe` call), and a socket
/// whose pollables the backend made (by waits) drops in any order: released and dropped,
/// adopted again and dropped, reset, or dropped while listening.
#[test]
fn sockets_from_the_safe_api_drop_without_trapping_in_any_state() {
    let listener = Sock::bind_listen("127.0.0.1:0".parse().unwrap(), 8).unwrap();
    let (mut client, mut server) = pair();
    // Every pollable subscribed: the socket's (connect), the streams' (RECV and SEND).
    for sock in [&listener, &client, &server] {
        sock.wait(Duration::ZERO, SockEvent::RECV | SockEvent::SEND)
            .unwrap();
    }
    let _ = format!("{:?}", client.get().unwrap());
    drop(client.release().unwrap());
    client = Sock::from(server.release().unwrap());
    client.wait(Duration::ZERO, SockEvent::RECV).unwrap();
    client.reset();
    drop(listener);
    server = Sock::default();
    assert!(!server.is_valid() && !client.is_valid());
}
