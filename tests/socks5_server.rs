//! The SOCKS5 client against a real SOCKS5 server (microsocks) on loopback: a tunnel to a
//! listener of the test's own, data both ways, username/password accepted and rejected, the
//! server's reply codes. Runs natively and in wasmtime (one thread: the proxy connects to the
//! listener through the kernel's backlog, so the handshake finishes before the test accepts).
//!
//! The servers' addresses come from `BITCOIN_SOCK_SOCKS5` (no authentication) and
//! `BITCOIN_SOCK_SOCKS5_AUTH` (username/password: `BITCOIN_SOCK_SOCKS5_USER`,
//! `BITCOIN_SOCK_SOCKS5_PASSWORD`, defaults below), set by `scripts/test-all.sh`. Natively a
//! test starts its own server with `scripts/socks5-server.sh` when they are unset; in wasm,
//! which cannot start processes, it fails and says how to set them. A missing server is a
//! failure, never a skip.
#![cfg(sockets)]

mod common;

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use bitcoin_sock::socks5::{self, Credentials};
use bitcoin_sock::{Sock, SockError, SockEvent, SockIo, Socks5Error, ThreadInterrupt};

const TIMEOUT: Duration = Duration::from_secs(10);
/// The credentials the authenticating server requires unless the environment says otherwise;
/// `scripts/socks5-server.sh` users pass the same.
const DEFAULT_USER: &str = "bitcoin-sock";
const DEFAULT_PASSWORD: &str = "socks5-test-password";

/// A SOCKS5 server to test against; stops it on drop if this test started it.
struct Proxy {
    addr: SocketAddr,
    credentials: Option<Credentials>,
    started: Option<String>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(pid) = &self.started {
            let _ = std::process::Command::new(SCRIPT)
                .args(["stop", pid])
                .status();
        }
    }
}

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/socks5-server.sh");

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|value| !value.is_empty())
}

/// The server without authentication.
fn open_proxy() -> Proxy {
    proxy("BITCOIN_SOCK_SOCKS5", None)
}

/// The server that requires username/password.
fn auth_proxy() -> Proxy {
    let credentials = Credentials::new(
        env("BITCOIN_SOCK_SOCKS5_USER").unwrap_or_else(|| DEFAULT_USER.to_owned()),
        env("BITCOIN_SOCK_SOCKS5_PASSWORD").unwrap_or_else(|| DEFAULT_PASSWORD.to_owned()),
    );
    proxy("BITCOIN_SOCK_SOCKS5_AUTH", Some(credentials))
}

fn proxy(var: &str, credentials: Option<Credentials>) -> Proxy {
    if let Some(addr) = env(var) {
        let addr = addr
            .parse()
            .unwrap_or_else(|e| panic!("{var}={addr:?} is not an IP:PORT address: {e}"));
        return Proxy {
            addr,
            credentials,
            started: None,
        };
    }
    if cfg!(target_os = "wasi") {
        let message = format!(
            "{var} is not set, and a wasm test cannot start a SOCKS5 server: start one with \
             `scripts/socks5-server.sh start 0{}` and export {var}=127.0.0.1:PORT (the runner \
             passes the environment with `-S inherit-env=y`), or run scripts/test-all.sh",
            if credentials.is_some() {
                format!(" {DEFAULT_USER} {DEFAULT_PASSWORD}")
            } else {
                String::new()
            }
        );
        // A panic aborts the whole wasm test binary before the harness prints the captured
        // message: write it past the capture first.
        let _ = writeln!(std::io::stderr(), "{message}");
        panic!("{message}");
    }
    start_proxy(credentials)
}

/// Starts a server with `scripts/socks5-server.sh` (which installs it when missing).
fn start_proxy(credentials: Option<Credentials>) -> Proxy {
    // One at a time: the first call may run apt-get, which takes a lock.
    static STARTING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one_at_a_time = STARTING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut command = std::process::Command::new(SCRIPT);
    command.args(["start", "0"]);
    if let Some(credentials) = &credentials {
        command.args([&credentials.username, &credentials.password]);
    }
    let output = command
        .stderr(std::process::Stdio::inherit())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {SCRIPT} to start a SOCKS5 server: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{SCRIPT} could not start a SOCKS5 server ({}): {stdout}",
        output.status
    );
    let (pid, port) = stdout
        .trim()
        .split_once(' ')
        .unwrap_or_else(|| panic!("{SCRIPT} printed {stdout:?}, expected \"PID PORT\""));
    let port: u16 = port
        .parse()
        .unwrap_or_else(|e| panic!("{SCRIPT} printed port {port:?}: {e}"));
    Proxy {
        addr: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port),
        credentials,
        started: Some(pid.to_owned()),
    }
}

/// A listener on a free port of `ip`: the destination the proxy connects to.
fn destination(ip: IpAddr) -> (Sock, SocketAddr) {
    let listener = Sock::bind_listen(SocketAddr::new(ip, 0), 16).expect("listen on loopback");
    let addr = listener.local_addr().expect("listener address");
    (listener, addr)
}

/// Accepts the proxy's connection to `listener`.
fn accept(listener: &Sock) -> Sock {
    let occurred = listener.wait(TIMEOUT, SockEvent::RECV).expect("wait");
    assert!(
        occurred.contains(SockEvent::RECV),
        "the proxy did not connect to the destination within {TIMEOUT:?}"
    );
    listener.accept().expect("accept the proxy's connection").0
}

/// Sends `data` from `from` and checks it arrives whole at `to`, in chunks small enough for the
/// socket buffers, so one thread can do both ends.
fn carry(from: &Sock, to: &Sock, data: &[u8]) {
    let interrupt = ThreadInterrupt::new();
    for chunk in data.chunks(16 * 1024) {
        from.send_complete(chunk, TIMEOUT, &interrupt)
            .expect("send through the tunnel");
        let mut received = vec![0u8; chunk.len()];
        socks5::interruptible_recv(to, &mut received, TIMEOUT, &interrupt)
            .expect("receive through the tunnel");
        assert_eq!(received, chunk);
    }
}

/// Checks `client` (through the proxy) and `server` (accepted by the destination) are the two
/// ends of one connection: data both ways, then the close.
fn check_tunnel(client: &Sock, server: Sock) {
    let interrupt = ThreadInterrupt::new();
    client
        .send_complete(b"version\n", TIMEOUT, &interrupt)
        .expect("send");
    let line = server
        .recv_until_terminator(b'\n', TIMEOUT, &interrupt, 1000)
        .expect("the destination receives what the client sent");
    assert_eq!(line, b"version");
    server
        .send_complete(b"verack\n", TIMEOUT, &interrupt)
        .expect("send");
    let line = client
        .recv_until_terminator(b'\n', TIMEOUT, &interrupt, 1000)
        .expect("the client receives what the destination sent");
    assert_eq!(line, b"verack");

    let data: Vec<u8> = (0..256 * 1024).map(|i: u32| (i % 251) as u8).collect();
    carry(client, &server, &data);
    carry(&server, client, &data);

    // The destination closes: the client sees end of stream through the proxy.
    drop(server);
    let mut byte = [0u8; 1];
    let err = socks5::interruptible_recv(client, &mut byte, TIMEOUT, &interrupt)
        .expect_err("end of stream");
    assert!(
        matches!(err, socks5::IntrRecvError::Disconnected { .. }),
        "{err}"
    );
}

#[test]
fn tunnel_through_a_socks5_server_carries_data_both_ways() {
    let proxy = open_proxy();
    let (listener, dest) = destination(IpAddr::V4(Ipv4Addr::LOCALHOST));
    let client = Sock::connect_via_socks5(
        proxy.addr,
        &dest.ip().to_string(),
        dest.port(),
        None,
        TIMEOUT,
    )
    .unwrap_or_else(|e| panic!("SOCKS5 connect through {}: {e}", proxy.addr));
    let server = accept(&listener);
    check_tunnel(&client, server);
}

#[test]
fn tunnel_to_an_ipv6_destination() {
    let ip = IpAddr::V6(Ipv6Addr::LOCALHOST);
    if !common::has_ipv6() {
        // Declared IPv6-less (BITCOIN_SOCK_NO_IPV6=1, checked by has_ipv6): the IPv4 tests
        // cover the handshake.
        return;
    }
    let proxy = open_proxy();
    let (listener, dest) = destination(ip);
    let client = Sock::connect_via_socks5(proxy.addr, "::1", dest.port(), None, TIMEOUT)
        .unwrap_or_else(|e| panic!("SOCKS5 connect to [::1] through {}: {e}", proxy.addr));
    check_tunnel(&client, accept(&listener));
}

#[test]
fn credentials_offered_to_a_server_without_authentication_are_not_needed() {
    let proxy = open_proxy();
    let (listener, dest) = destination(IpAddr::V4(Ipv4Addr::LOCALHOST));
    let unused = Credentials::new("nobody", "nothing");
    let client =
        Sock::connect_via_socks5(proxy.addr, "127.0.0.1", dest.port(), Some(&unused), TIMEOUT)
            .unwrap_or_else(|e| panic!("SOCKS5 connect through {}: {e}", proxy.addr));
    check_tunnel(&client, accept(&listener));
}

#[test]
fn username_password_authentication_succeeds_with_the_right_credentials() {
    let proxy = auth_proxy();
    let (listener, dest) = destination(IpAddr::V4(Ipv4Addr::LOCALHOST));
    let client = Sock::connect_via_socks5(
        proxy.addr,
        "127.0.0.1",
        dest.port(),
        proxy.credentials.as_ref(),
        TIMEOUT,
    )
    .unwrap_or_else(|e| {
        panic!(
            "SOCKS5 connect with credentials through {}: {e}",
            proxy.addr
        )
    });
    check_tunnel(&client, accept(&listener));
}

#[test]
fn wrong_credentials_are_rejected() {
    let proxy = auth_proxy();
    let (listener, dest) = destination(IpAddr::V4(Ipv4Addr::LOCALHOST));
    let right = proxy.credentials.clone().expect("credentials");
    for wrong in [
        Credentials::new(right.username.clone(), format!("{}-wrong", right.password)),
        Credentials::new(format!("{}-wrong", right.username), right.password.clone()),
    ] {
        let err =
            Sock::connect_via_socks5(proxy.addr, "127.0.0.1", dest.port(), Some(&wrong), TIMEOUT)
                .expect_err("wrong credentials");
        assert!(matches!(err, Socks5Error::AuthFailed { .. }), "{err:?}");
        assert_eq!(err.to_string(), "Proxy authentication unsuccessful");
    }
    // The proxy never connected to the destination.
    let occurred = listener
        .wait(Duration::from_millis(50), SockEvent::RECV)
        .expect("wait");
    assert!(occurred.is_empty(), "{occurred:?}");
}

#[test]
fn server_requiring_a_password_rejects_a_client_without_credentials() {
    let proxy = auth_proxy();
    let err = Sock::connect_via_socks5(proxy.addr, "127.0.0.1", 8333, None, TIMEOUT)
        .expect_err("no credentials");
    assert!(
        matches!(err, Socks5Error::WrongAuthMethod { method: 0xff }),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "Proxy requested wrong authentication method ff"
    );
}

#[test]
fn closed_destination_port_is_connection_refused() {
    let proxy = open_proxy();
    // A port that was free a moment ago: nothing listens there.
    let closed = {
        let sock = Sock::bind("127.0.0.1:0".parse().unwrap()).expect("bind");
        sock.local_addr().expect("address").port()
    };
    let err = Sock::connect_via_socks5(proxy.addr, "127.0.0.1", closed, None, TIMEOUT)
        .expect_err("nothing listens there");
    assert_eq!(err.reply_code(), Some(0x05), "{err:?}");
    assert_eq!(err.to_string(), "connection refused");
}

#[test]
fn handshake_over_a_sock_connected_by_hand() {
    // socks5::connect on a Sock the caller connected, with the caller's interrupt.
    let proxy = open_proxy();
    let (listener, dest) = destination(IpAddr::V4(Ipv4Addr::LOCALHOST));
    let sock = Sock::connect(proxy.addr, TIMEOUT).expect("connect to the proxy");
    let interrupt = ThreadInterrupt::new();
    socks5::connect(&sock, "127.0.0.1", dest.port(), None, TIMEOUT, &interrupt)
        .unwrap_or_else(|e| panic!("SOCKS5 handshake: {e}"));
    check_tunnel(&sock, accept(&listener));
}

#[test]
fn refused_proxy_fails_to_connect_with_connection_refused() {
    let closed = {
        let sock = Sock::bind("127.0.0.1:0".parse().unwrap()).expect("bind");
        sock.local_addr().expect("address")
    };
    let err = Sock::connect_via_socks5(closed, "127.0.0.1", 8333, None, TIMEOUT)
        .expect_err("no proxy there");
    let Socks5Error::ProxyConnect(SockError::Connect { addr, source }) = &err else {
        panic!("expected ProxyConnect(Connect), got {err:?}");
    };
    assert_eq!(*addr, closed.into());
    assert_eq!(
        source.kind(),
        std::io::ErrorKind::ConnectionRefused,
        "{source}"
    );
    assert!(!err.is_timeout());
}

/// A recorder of what `SockMan`'s loop delivers.
#[derive(Default)]
struct Received(Vec<u8>);

impl bitcoin_sock::sockman::Handler for Received {
    fn new_connection_accepted(
        &mut self,
        _: &bitcoin_sock::sockman::SockMan,
        _: bitcoin_sock::sockman::Id,
        _: SocketAddr,
        _: SocketAddr,
    ) -> bool {
        false
    }
    fn got_data(
        &mut self,
        _: &bitcoin_sock::sockman::SockMan,
        _: bitcoin_sock::sockman::Id,
        data: &[u8],
    ) {
        self.0.extend_from_slice(data);
    }
    fn got_eof(&mut self, _: &bitcoin_sock::sockman::SockMan, _: bitcoin_sock::sockman::Id) {}
    fn got_permanent_read_error(
        &mut self,
        _: &bitcoin_sock::sockman::SockMan,
        id: bitcoin_sock::sockman::Id,
        err: &std::io::Error,
    ) {
        panic!("connection {id}: {err}");
    }
}

#[test]
fn sockman_connects_through_a_socks5_server_and_carries_data_both_ways() {
    use bitcoin_sock::sockman::SockMan;
    let proxy = open_proxy();
    let (listener, dest) = destination(IpAddr::V4(Ipv4Addr::LOCALHOST));
    let man = SockMan::new().expect("a manager");
    let id = man
        .connect_via_socks5(
            proxy.addr,
            &dest.ip().to_string(),
            dest.port(),
            None,
            TIMEOUT,
        )
        .unwrap_or_else(|e| panic!("SOCKS5 connect through {}: {e}", proxy.addr));
    let server = accept(&listener);
    let interrupt = ThreadInterrupt::new();

    man.send(id, b"version\n", false).expect("send");
    let line = server
        .recv_until_terminator(b'\n', TIMEOUT, &interrupt, 1000)
        .expect("the destination receives what the manager sent");
    assert_eq!(line, b"version");

    server
        .send_complete(b"verack\n", TIMEOUT, &interrupt)
        .expect("send");
    let mut handler = Received::default();
    let deadline = std::time::Instant::now() + TIMEOUT;
    while handler.0 != b"verack\n" {
        assert!(std::time::Instant::now() < deadline, "got {:?}", handler.0);
        man.run_once(&mut handler, Duration::from_millis(10))
            .expect("run_once");
    }

    let err = man
        .connect_via_socks5(proxy.addr, &dest.ip().to_string(), 0, None, TIMEOUT)
        .expect_err("port 0 does not connect");
    assert!(err.reply_code().is_some(), "{err}");
    assert_eq!(man.connection_count(), 1);
}
