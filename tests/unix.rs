//! Unix-domain sockets (Core's `CreateSock(AF_UNIX, ...)`, Tor behind `-proxy=unix:<path>`).
//!
//! Natively on Unix, over real sockets in a fresh temporary directory per test (removed when
//! the test ends, also when it fails): connect, bind, accept and addresses, the same events,
//! errors and timeouts as TCP, bad paths (missing, not a socket, too long for `sun_path`, no
//! permission), Linux's abstract namespace, and SOCKS5 through a real server behind a path
//! (microsocks, bridged to a path by socat: `scripts/socks5-server.sh`). Elsewhere
//! (`wasm32-wasip2` in wasmtime, Windows) the same calls fail with `Unsupported` and the
//! general address calls give IP addresses. The address type's own behaviour is tested
//! everywhere.
#![cfg(sockets)]

mod common;

use std::net::SocketAddr;
use std::path::PathBuf;

use bitcoin_sock::{SockAddress, UnixAddress};

#[test]
fn addresses_print_as_core_writes_them() {
    let tcp: SocketAddr = "127.0.0.1:9050".parse().unwrap();
    assert_eq!(SockAddress::from(tcp).to_string(), "127.0.0.1:9050");
    assert_eq!(
        SockAddress::from(UnixAddress::path("/run/tor/socks")).to_string(),
        "unix:/run/tor/socks"
    );
    assert_eq!(
        UnixAddress::abstract_name(&b"node\0\x01"[..]).to_string(),
        "unix:@node\\x00\\x01"
    );
    assert_eq!(UnixAddress::Unnamed.to_string(), "unix:(unnamed)");
}

#[test]
fn addresses_convert_and_tell_their_kind() {
    let tcp: SocketAddr = "[::1]:8333".parse().unwrap();
    let ip = SockAddress::from(tcp);
    assert_eq!(ip, SockAddress::Ip(tcp));
    assert_eq!(ip.as_ip(), Some(tcp));
    assert_eq!(ip.as_unix(), None);

    let path = PathBuf::from("/run/tor/socks");
    let unix = SockAddress::from(UnixAddress::from(path.clone()));
    assert_eq!(unix.as_ip(), None);
    assert_eq!(
        unix.as_unix().and_then(UnixAddress::as_path),
        Some(path.as_path())
    );
    assert_eq!(UnixAddress::from(path.as_path()), UnixAddress::Path(path));
    assert_eq!(UnixAddress::abstract_name("x").as_path(), None);
}

#[cfg(unix)]
mod unix_host {
    use std::fs;
    use std::io::ErrorKind;
    use std::mem::{offset_of, size_of};
    use std::os::unix::ffi::OsStringExt;
    use std::os::unix::fs::PermissionsExt;
    use std::path::{Path, PathBuf};
    use std::process::Command;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use bitcoin_sock::socks5::{self, Credentials};
    use bitcoin_sock::{
        Events, Sock, SockAddress, SockError, SockEvent, SockIo, Socks5Error, ThreadInterrupt,
        UnixAddress,
    };

    use super::common::*;

    /// `sun_path`'s size: 108 on Linux, 104 on macOS and the BSDs. A path has one byte less.
    const SUN_PATH_LEN: usize =
        size_of::<libc::sockaddr_un>() - offset_of!(libc::sockaddr_un, sun_path);

    /// A fresh directory under the system's temporary directory, removed on drop (also when
    /// the test panics). Short, so the socket paths in it fit in `sun_path`.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new() -> TempDir {
            static NEXT: AtomicUsize = AtomicUsize::new(0);
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let path =
                std::env::temp_dir().join(format!("bitcoin-sock-{}-{n}", std::process::id()));
            // A leftover of a killed run with a reused pid goes first.
            let _ = fs::remove_dir_all(&path);
            fs::create_dir(&path).unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
            TempDir(path)
        }

        fn path(&self, name: &str) -> PathBuf {
            self.0.join(name)
        }

        fn unix(&self, name: &str) -> UnixAddress {
            UnixAddress::Path(self.path(name))
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            // A test may have taken permissions away.
            let _ = fs::set_permissions(&self.0, fs::Permissions::from_mode(0o700));
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    /// A unique abstract name (no file, so nothing to remove).
    fn abstract_name() -> UnixAddress {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        UnixAddress::abstract_name(format!("bitcoin-sock-test-{}-{n}", std::process::id()))
    }

    /// A connected Unix-domain pair over `addr`, with the listener.
    fn unix_pair(addr: &UnixAddress) -> (Sock, Pair) {
        let listener = Sock::bind_listen_unix(addr, 16).expect("listen on a Unix-domain socket");
        let client = Sock::connect_unix(addr, TIMEOUT).expect("connect to the listener");
        wait_for(&listener, SockEvent::RECV);
        let (server, peer) = listener.accept_address().expect("accept the connection");
        assert_eq!(peer, SockAddress::Unix(UnixAddress::Unnamed));
        assert_non_blocking(&client);
        assert_non_blocking(&server);
        (listener, Pair { client, server })
    }

    #[track_caller]
    fn connect_error(result: Result<Sock, SockError>) -> std::io::Error {
        match result {
            Err(SockError::Connect {
                addr: SockAddress::Unix(_),
                source,
            }) => source,
            Err(other) => panic!("expected SockError::Connect to a Unix address, got {other:?}"),
            Ok(sock) => panic!("expected SockError::Connect, connected: {sock:?}"),
        }
    }

    // -----------------------------------------------------------------------------------------
    // Connecting, accepting, addresses

    #[test]
    fn unix_connection_carries_data_both_ways() {
        let dir = TempDir::new();
        let (_listener, Pair { client, server }) = unix_pair(&dir.unix("node.sock"));
        let interrupt = ThreadInterrupt::new();
        client
            .send_complete(b"version\nverack\n", TIMEOUT, &interrupt)
            .expect("send_complete");
        let line = server
            .recv_until_terminator(b'\n', TIMEOUT, &interrupt, 1000)
            .expect("first line");
        assert_eq!(line, b"version");
        let line = server
            .recv_until_terminator(b'\n', TIMEOUT, &interrupt, 1000)
            .expect("second line");
        assert_eq!(line, b"verack");

        // More than a socket buffer, each way, through the primitives.
        let data: Vec<u8> = (0..1024 * 1024).map(|i: u32| (i % 251) as u8).collect();
        for (from, to) in [(&client, &server), (&server, &client)] {
            for chunk in data.chunks(32 * 1024) {
                send_all(from, chunk);
                assert_eq!(recv_exactly(to, chunk.len()), chunk);
            }
        }
        assert!(client.is_connected().map_err(|e| e.to_string()).is_ok());
        assert!(server.is_connected().map_err(|e| e.to_string()).is_ok());
    }

    #[test]
    fn unix_addresses_name_the_path_and_the_unnamed_client() {
        let dir = TempDir::new();
        let addr = dir.unix("node.sock");
        let (listener, Pair { client, server }) = unix_pair(&addr);
        let path = SockAddress::Unix(addr.clone());
        let unnamed = SockAddress::Unix(UnixAddress::Unnamed);
        assert_eq!(listener.local_address().expect("listener"), path);
        assert_eq!(client.peer_address().expect("client's peer"), path);
        assert_eq!(client.local_address().expect("client"), unnamed);
        assert_eq!(server.local_address().expect("server"), path);
        assert_eq!(server.peer_address().expect("server's peer"), unnamed);
        // The listener has no peer, as over TCP.
        assert_kind(listener.peer_address(), ErrorKind::NotConnected);
        assert!(dir.path("node.sock").exists());
    }

    #[test]
    fn ip_only_address_calls_refuse_unix_socks_with_a_clear_error() {
        let dir = TempDir::new();
        let (listener, Pair { client, .. }) = unix_pair(&dir.unix("node.sock"));
        for result in [
            listener.local_addr(),
            client.local_addr(),
            client.peer_addr(),
        ] {
            let err = result.expect_err("a Unix-domain sock has no IP address");
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
            assert!(err.to_string().contains("local_address()"), "{err}");
        }
    }

    #[test]
    fn general_address_calls_give_ip_addresses_of_tcp_socks() {
        let listener = listener(V4);
        let addr = listener.local_addr().expect("listener address");
        assert_eq!(listener.local_address().expect("address"), addr.into());
        let client = Sock::connect_to(&addr.into(), TIMEOUT).expect("connect_to an IP");
        wait_for(&listener, SockEvent::RECV);
        let (server, peer) = listener.accept_address().expect("accept_address on TCP");
        assert_eq!(peer, client.local_address().expect("client address"));
        assert_eq!(server.peer_address().expect("peer"), peer);
        assert_eq!(client.peer_address().expect("peer"), addr.into());
        // A TCP sock accepted this way gets TCP_NODELAY as with accept().
        assert!(server.nodelay().expect("nodelay"));
    }

    #[test]
    fn accept_on_a_unix_listener_fails_before_taking_the_connection() {
        let dir = TempDir::new();
        let addr = dir.unix("node.sock");
        let listener = Sock::bind_listen_unix(&addr, 16).expect("listen");
        let client = Sock::connect_unix(&addr, TIMEOUT).expect("connect");
        wait_for(&listener, SockEvent::RECV);
        let err = listener.accept().expect_err("no IP address to return");
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
        assert!(err.to_string().contains("accept_address()"), "{err}");
        // The connection is still there.
        let (server, _) = listener.accept_address().expect("accept_address");
        client.send(b"x").expect("send");
        assert_eq!(recv_exactly(&server, 1), b"x");
    }

    #[test]
    fn accept_address_without_a_pending_connection_would_block() {
        let dir = TempDir::new();
        let listener = Sock::bind_listen_unix(&dir.unix("node.sock"), 16).expect("listen");
        assert_kind(listener.accept_address(), ErrorKind::WouldBlock);
        assert!(listener
            .wait(Duration::from_millis(1), SockEvent::RECV)
            .expect("wait")
            .is_empty());
    }

    #[test]
    fn connect_to_and_bind_to_take_unix_addresses() {
        let dir = TempDir::new();
        let addr = SockAddress::Unix(dir.unix("node.sock"));
        let listener = Sock::bind_to(&addr).expect("bind_to");
        listener.listen(4).expect("listen");
        let client = Sock::connect_to(&addr, TIMEOUT).expect("connect_to");
        assert_eq!(client.peer_address().expect("peer"), addr);
    }

    #[test]
    fn the_socket_file_stays_until_the_caller_removes_it() {
        let dir = TempDir::new();
        let addr = dir.unix("node.sock");
        drop(Sock::bind_listen_unix(&addr, 4).expect("listen"));
        assert!(dir.path("node.sock").exists());
        // A stale socket file: binding again is refused, connecting to it too.
        assert_kind(Sock::bind_unix(&addr), ErrorKind::AddrInUse);
        let err = connect_error(Sock::connect_unix(&addr, TIMEOUT));
        assert_eq!(err.kind(), ErrorKind::ConnectionRefused, "{err}");
        fs::remove_file(dir.path("node.sock")).expect("remove the stale file");
        Sock::bind_listen_unix(&addr, 4).expect("listen again");
    }

    #[test]
    fn std_unix_streams_and_listeners_are_adopted_non_blocking() {
        let (left, right) = std::os::unix::net::UnixStream::pair().expect("a std pair");
        let (left, right) = (Sock::from(left), Sock::from(right));
        assert_non_blocking(&left);
        assert_non_blocking(&right);
        assert_kind(right.recv(&mut [0u8; 1]), ErrorKind::WouldBlock);
        left.send(b"x").expect("send");
        assert_eq!(recv_exactly(&right, 1), b"x");
        assert_eq!(
            left.local_address().expect("address"),
            SockAddress::Unix(UnixAddress::Unnamed)
        );

        let dir = TempDir::new();
        let listener =
            std::os::unix::net::UnixListener::bind(dir.path("std.sock")).expect("a std listener");
        let listener = Sock::from(listener);
        assert_non_blocking(&listener);
        assert_kind(listener.accept_address(), ErrorKind::WouldBlock);
        let _client = Sock::connect_unix(&dir.unix("std.sock"), TIMEOUT).expect("connect");
        wait_for(&listener, SockEvent::RECV);
        let (server, _) = listener.accept_address().expect("accept");
        assert_non_blocking(&server);
    }

    #[test]
    fn socket_options_work_on_unix_socks_and_tcp_ones_fail_clearly() {
        let dir = TempDir::new();
        let (_listener, Pair { client, .. }) = unix_pair(&dir.unix("node.sock"));
        client.set_send_buffer_size(64 * 1024).expect("SO_SNDBUF");
        assert!(client.send_buffer_size().expect("SO_SNDBUF") > 0);
        assert!(client.recv_buffer_size().expect("SO_RCVBUF") > 0);
        assert!(client.take_error().expect("SO_ERROR").is_none());
        // TCP_NODELAY and the TTL are TCP's and IP's: an error, not a silent no-op.
        assert!(client.nodelay().is_err());
        assert!(client.set_nodelay(true).is_err());
        assert!(client.get_sock_opt(bitcoin_sock::SockOpt::Ttl).is_err());
    }

    // -----------------------------------------------------------------------------------------
    // The same events as TCP

    #[test]
    fn unix_sock_readiness_and_close_are_those_of_tcp() {
        let dir = TempDir::new();
        let (_listener, Pair { client, server }) = unix_pair(&dir.unix("node.sock"));
        check_readiness_and_close(client, server);
    }

    #[test]
    fn unix_peer_shutdown_send_is_end_of_stream_and_peek_keeps_bytes() {
        let dir = TempDir::new();
        let (_listener, Pair { client, server }) = unix_pair(&dir.unix("node.sock"));
        client.send(b"ab").expect("send");
        client.shutdown_send().expect("shutdown_send");
        wait_for(&server, SockEvent::RECV);
        let mut buf = [0u8; 8];
        assert_eq!(server.peek(&mut buf).expect("peek"), 2);
        assert_eq!(server.recv(&mut buf).expect("recv"), 2);
        assert_eq!(&buf[..2], b"ab");
        expect_eof(&server);
        // The other direction still works.
        server.send(b"c").expect("send back");
        assert_eq!(recv_exactly(&client, 1), b"c");
    }

    #[test]
    fn send_to_a_closed_unix_peer_is_broken_pipe_without_sigpipe() {
        let dir = TempDir::new();
        let (_listener, Pair { client, server }) = unix_pair(&dir.unix("node.sock"));
        drop(server);
        // SIGPIPE would end this test process here.
        let err = client.send(b"x").expect_err("the peer is gone");
        assert_eq!(err.kind(), ErrorKind::BrokenPipe, "{err}");
        assert_eq!(
            client.is_connected().map_err(|e| e.to_string()),
            Err("closed".to_owned())
        );
        let err = client
            .send_complete(b"x", TIMEOUT, &ThreadInterrupt::new())
            .expect_err("the peer is gone");
        assert!(err.to_string().starts_with("send(): Broken pipe"), "{err}");
    }

    #[test]
    fn wait_many_watches_unix_and_tcp_socks_together() {
        let dir = TempDir::new();
        let (listener, unix) = unix_pair(&dir.unix("node.sock"));
        let tcp = pair();
        unix.client.send(b"u").expect("send");
        wait_for(&unix.server, SockEvent::RECV);
        let mut socks = [
            (&listener, Events::new(SockEvent::RECV)),
            (&unix.server, Events::new(SockEvent::RECV)),
            (&tcp.server, Events::new(SockEvent::RECV)),
        ];
        assert_eq!(Sock::wait_many(TIMEOUT, &mut socks).expect("wait_many"), 1);
        assert!(socks[0].1.occurred.is_empty());
        assert_eq!(socks[1].1.occurred, SockEvent::RECV);
        assert!(socks[2].1.occurred.is_empty());

        let _second = Sock::connect_unix(&dir.unix("node.sock"), TIMEOUT).expect("connect");
        tcp.client.send(b"t").expect("send");
        wait_for(&tcp.server, SockEvent::RECV);
        assert_eq!(Sock::wait_many(TIMEOUT, &mut socks).expect("wait_many"), 3);
        for (_, events) in &socks {
            assert_eq!(events.occurred, SockEvent::RECV);
        }
    }

    // -----------------------------------------------------------------------------------------
    // Connect timeouts: only Linux waits, for room in a full backlog

    /// A listener whose backlog is full: Linux takes one pending connection past a backlog of
    /// 0 and then answers a non-blocking connect with EAGAIN.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    fn full_listener(addr: &UnixAddress) -> (Sock, Sock) {
        let listener = Sock::bind_listen_unix(addr, 0).expect("listen");
        let pending = Sock::connect_unix(addr, TIMEOUT).expect("the one pending connection");
        (listener, pending)
    }

    #[cfg(any(target_os = "linux", target_os = "android"))]
    #[track_caller]
    fn assert_connect_timeout(
        result: Result<Sock, SockError>,
        addr: &UnixAddress,
        timeout: Duration,
    ) {
        match result {
            Err(err @ SockError::ConnectTimeout { .. }) => {
                assert!(err.is_timeout());
                assert_eq!(
                    err.to_string(),
                    format!("connection attempt to {addr} timed out")
                );
                let SockError::ConnectTimeout {
                    addr: got,
                    timeout: after,
                } = err
                else {
                    unreachable!()
                };
                assert_eq!((got, after), (addr.clone().into(), timeout));
            }
            other => panic!("expected SockError::ConnectTimeout, got {other:?}"),
        }
    }

    #[test]
    #[cfg(any(target_os = "linux", target_os = "android"))]
    fn connect_unix_to_a_full_backlog_times_out_after_the_timeout() {
        let dir = TempDir::new();
        let addr = dir.unix("node.sock");
        let (listener, _pending) = full_listener(&addr);
        let timeout = Duration::from_millis(200);
        let start = std::time::Instant::now();
        let result = Sock::connect_unix(&addr, timeout);
        let elapsed = start.elapsed();
        assert_connect_timeout(result, &addr, timeout);
        assert!(elapsed >= timeout, "gave up after {elapsed:?}");
        assert!(elapsed < timeout + PROMPTLY, "took {elapsed:?}");

        // Once the listener accepts, there is room again.
        listener.accept_address().expect("accept the pending one");
        Sock::connect_unix(&addr, TIMEOUT).expect("room in the backlog");
    }

    #[test]
    #[cfg(any(target_os = "linux", target_os = "android"))]
    fn connect_unix_with_zero_or_tiny_timeouts_tries_once_and_never_waits_forever() {
        let dir = TempDir::new();
        let addr = dir.unix("node.sock");
        let (_listener, _pending) = full_listener(&addr);
        // SO_SNDTIMEO's zero means forever: neither of these may become it.
        for timeout in [Duration::ZERO, Duration::from_nanos(1)] {
            let start = std::time::Instant::now();
            assert_connect_timeout(Sock::connect_unix(&addr, timeout), &addr, timeout);
            assert!(
                start.elapsed() < PROMPTLY,
                "{timeout:?} took {:?}",
                start.elapsed()
            );
        }
    }

    #[test]
    fn connect_unix_with_zero_or_huge_timeouts_connects_to_a_listener_with_room() {
        let dir = TempDir::new();
        let addr = dir.unix("node.sock");
        let listener = Sock::bind_listen_unix(&addr, 16).expect("listen");
        for timeout in [Duration::ZERO, Duration::from_nanos(1), Duration::MAX] {
            let client = Sock::connect_unix(&addr, timeout)
                .unwrap_or_else(|e| panic!("connect with {timeout:?}: {e}"));
            assert_non_blocking(&client);
            wait_for(&listener, SockEvent::RECV);
            listener.accept_address().expect("accept");
        }
    }

    // -----------------------------------------------------------------------------------------
    // Bad paths: a clear error each

    #[test]
    fn connect_unix_to_a_missing_path_is_not_found() {
        let dir = TempDir::new();
        let addr = dir.unix("missing.sock");
        let result = Sock::connect_unix(&addr, TIMEOUT);
        let message = match &result {
            Err(err) => err.to_string(),
            Ok(_) => String::new(),
        };
        let err = connect_error(result);
        assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
        assert_eq!(err.raw_os_error(), Some(libc::ENOENT));
        assert_eq!(
            message,
            format!(
                "connect() to {addr} failed: {}",
                bitcoin_sock::network_error_string(libc::ENOENT)
            )
        );
        // A directory above it that is missing too.
        let err = connect_error(Sock::connect_unix(&dir.unix("no/such/dir.sock"), TIMEOUT));
        assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    }

    #[test]
    fn connect_unix_to_a_file_that_is_not_a_socket_fails() {
        let dir = TempDir::new();
        fs::write(dir.path("file"), b"not a socket").expect("write a file");
        for addr in [dir.unix("file"), UnixAddress::Path(dir.0.clone())] {
            let err = connect_error(Sock::connect_unix(&addr, TIMEOUT));
            // Linux says ECONNREFUSED; macOS and the BSDs ENOTSOCK.
            if cfg!(any(target_os = "linux", target_os = "android")) {
                assert_eq!(err.kind(), ErrorKind::ConnectionRefused, "{addr}: {err}");
            } else {
                assert_eq!(err.raw_os_error(), Some(libc::ENOTSOCK), "{addr}: {err}");
            }
        }
    }

    #[test]
    fn connect_unix_to_a_socket_that_does_not_listen_is_refused() {
        let dir = TempDir::new();
        let addr = dir.unix("bound.sock");
        let _bound = Sock::bind_unix(&addr).expect("bind without listening");
        let err = connect_error(Sock::connect_unix(&addr, TIMEOUT));
        assert_eq!(err.kind(), ErrorKind::ConnectionRefused, "{err}");
    }

    /// A path of exactly `len` bytes in `dir`.
    fn path_of_len(dir: &TempDir, len: usize) -> PathBuf {
        let prefix = dir.0.as_os_str().len() + 1;
        assert!(
            len > prefix,
            "the temporary directory's path is too long for this test"
        );
        dir.0.join("s".repeat(len - prefix))
    }

    #[test]
    fn a_path_too_long_for_sun_path_is_invalid_input_never_truncated() {
        let dir = TempDir::new();
        // The longest path that fits, and one byte more that would be it, cut.
        let longest = path_of_len(&dir, SUN_PATH_LEN - 1);
        let mut too_long = longest.clone().into_os_string();
        too_long.push("s");
        let too_long = UnixAddress::Path(PathBuf::from(too_long));
        let longest = UnixAddress::Path(longest);

        let listener = Sock::bind_listen_unix(&longest, 4).expect("the longest path binds");
        let client = Sock::connect_unix(&longest, TIMEOUT).expect("and connects");
        wait_for(&listener, SockEvent::RECV);
        listener.accept_address().expect("accept");
        drop(client);

        let err = connect_error(Sock::connect_unix(&too_long, TIMEOUT));
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
        assert!(
            err.to_string().contains(&format!(
                "is {} bytes long; at most {} fit in sun_path",
                SUN_PATH_LEN,
                SUN_PATH_LEN - 1
            )),
            "{err}"
        );
        // Not connected to the path it would be cut to (a Unix-domain connect is queued at
        // once, so a wrong one would be pending now).
        assert!(listener
            .wait(Duration::ZERO, SockEvent::RECV)
            .expect("wait")
            .is_empty());

        // Nor bound there.
        drop(listener);
        fs::remove_file(longest.as_path().unwrap()).expect("remove the longest path");
        assert_kind(Sock::bind_unix(&too_long), ErrorKind::InvalidInput);
        assert!(!longest.as_path().unwrap().exists());
        assert_eq!(fs::read_dir(&dir.0).expect("read the directory").count(), 0);
    }

    #[test]
    fn empty_nul_holding_and_unnamed_addresses_are_invalid_input() {
        let dir = TempDir::new();
        let listener = Sock::bind_listen_unix(&dir.unix("a"), 4).expect("listen");
        let nul = {
            let mut bytes = dir.path("a").into_os_string().into_vec();
            bytes.extend_from_slice(b"\0b");
            UnixAddress::Path(PathBuf::from(std::ffi::OsString::from_vec(bytes)))
        };
        for addr in [UnixAddress::path(""), nul, UnixAddress::Unnamed] {
            let err = connect_error(Sock::connect_unix(&addr, TIMEOUT));
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "{addr}: {err}");
            assert_kind(Sock::bind_unix(&addr), ErrorKind::InvalidInput);
        }
        // The path before the NUL byte was not connected to.
        assert!(listener
            .wait(Duration::ZERO, SockEvent::RECV)
            .expect("wait")
            .is_empty());
    }

    /// Runs `connect` in a thread of its own with the permissions of `nobody` when this test
    /// runs as root, whom no file mode stops (`CAP_DAC_OVERRIDE`). Linux keeps credentials per
    /// thread; the raw system calls change only that thread's (glibc's wrappers would change
    /// every thread's), and the thread ends with the test.
    fn without_root<T: Send>(connect: impl FnOnce() -> T + Send) -> T {
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    // SAFETY: geteuid has no preconditions.
                    if unsafe { libc::geteuid() } == 0 {
                        drop_root_in_this_thread();
                    }
                    connect()
                })
                .join()
                .expect("the unprivileged thread")
        })
    }

    #[cfg(any(target_os = "linux", target_os = "android"))]
    fn drop_root_in_this_thread() {
        const NOBODY: libc::c_long = 65534;
        // SAFETY: setgroups with an empty list, then setresgid/setresuid: they change this
        // thread's credentials only, and read no memory of ours.
        unsafe {
            assert_eq!(
                libc::syscall(libc::SYS_setgroups, 0, std::ptr::null::<libc::gid_t>()),
                0,
                "setgroups: {}",
                std::io::Error::last_os_error()
            );
            assert_eq!(
                libc::syscall(libc::SYS_setresgid, NOBODY, NOBODY, NOBODY),
                0,
                "setresgid: {}",
                std::io::Error::last_os_error()
            );
            assert_eq!(
                libc::syscall(libc::SYS_setresuid, NOBODY, NOBODY, NOBODY),
                0,
                "setresuid: {}",
                std::io::Error::last_os_error()
            );
        }
        // SAFETY: geteuid has no preconditions.
        assert_eq!(unsafe { libc::geteuid() }, NOBODY as libc::uid_t);
    }

    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    fn drop_root_in_this_thread() {
        panic!(
            "this test checks file permissions, which root bypasses; only Linux lets one \
             thread drop root: run it as another user"
        );
    }

    #[test]
    fn connect_unix_without_permission_is_permission_denied() {
        let dir = TempDir::new();
        let addr = dir.unix("node.sock");
        let listener = Sock::bind_listen_unix(&addr, 16).expect("listen");
        let socket_file = dir.path("node.sock");
        let set_mode = |path: &Path, mode| {
            fs::set_permissions(path, fs::Permissions::from_mode(mode)).expect("chmod");
        };
        let connect = || without_root(|| Sock::connect_unix(&addr, TIMEOUT));

        // Connecting needs write permission on the socket file (read-only here, also for its
        // owner, so the test means the same when it does not run as root).
        set_mode(&socket_file, 0o444);
        let err = connect_error(connect());
        assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
        assert_eq!(err.raw_os_error(), Some(libc::EACCES));
        // And search permission on the directory.
        set_mode(&socket_file, 0o666);
        set_mode(&dir.0, 0o666);
        let err = connect_error(connect());
        assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
        assert!(listener
            .wait(Duration::ZERO, SockEvent::RECV)
            .expect("wait")
            .is_empty());

        // With both, the same unprivileged connect succeeds: the modes made the difference.
        set_mode(&dir.0, 0o755);
        connect().expect("connect with permission");
        wait_for(&listener, SockEvent::RECV);
    }

    // -----------------------------------------------------------------------------------------
    // Linux's abstract namespace

    #[test]
    #[cfg(any(target_os = "linux", target_os = "android"))]
    fn abstract_names_bind_and_connect_without_a_file() {
        let addr = abstract_name();
        let (listener, Pair { client, server }) = unix_pair(&addr);
        assert_eq!(
            listener.local_address().expect("address"),
            addr.clone().into()
        );
        assert_eq!(client.peer_address().expect("peer"), addr.clone().into());
        client.send(b"x").expect("send");
        assert_eq!(recv_exactly(&server, 1), b"x");
        // One listener per name; the name goes with its last socket.
        assert_kind(Sock::bind_unix(&addr), ErrorKind::AddrInUse);
        drop((listener, server));
        Sock::bind_unix(&addr).expect("the name is free again");
    }

    #[test]
    #[cfg(any(target_os = "linux", target_os = "android"))]
    fn abstract_names_hold_any_bytes_up_to_sun_path() {
        // NUL bytes too: the length, not a terminator, ends an abstract name.
        let mut name = b"bitcoin-sock\0".to_vec();
        name.extend_from_slice(format!("{}", std::process::id()).as_bytes());
        name.resize(SUN_PATH_LEN - 1, b'x');
        let addr = UnixAddress::Abstract(name.clone());
        let listener = Sock::bind_listen_unix(&addr, 4).expect("the longest name binds");
        assert_eq!(
            listener.local_address().expect("address"),
            addr.clone().into()
        );
        Sock::connect_unix(&addr, TIMEOUT).expect("and connects");
        // The same name without its bytes after the NUL is another name.
        let cut = UnixAddress::abstract_name(&b"bitcoin-sock"[..]);
        let err = connect_error(Sock::connect_unix(&cut, TIMEOUT));
        assert_eq!(err.kind(), ErrorKind::ConnectionRefused, "{err}");

        name.push(b'x');
        let err = connect_error(Sock::connect_unix(&UnixAddress::Abstract(name), TIMEOUT));
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    }

    #[test]
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    fn abstract_names_are_unsupported_off_linux() {
        let err = connect_error(Sock::connect_unix(&abstract_name(), TIMEOUT));
        assert_eq!(err.kind(), ErrorKind::Unsupported, "{err}");
        assert_kind(Sock::bind_unix(&abstract_name()), ErrorKind::Unsupported);
    }

    // -----------------------------------------------------------------------------------------
    // SOCKS5 through a proxy on a path: microsocks behind socat, as Tor's SocksPort unix:

    const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/socks5-server.sh");
    const DEFAULT_USER: &str = "bitcoin-sock";
    const DEFAULT_PASSWORD: &str = "socks5-test-password";

    /// A process this test started with [`SCRIPT`], stopped on drop.
    struct Started(String);

    impl Drop for Started {
        fn drop(&mut self) {
            let _ = Command::new(SCRIPT).args(["stop", &self.0]).status();
        }
    }

    fn run_script(args: &[&str]) -> String {
        // One at a time: the first call may run apt-get, which takes a lock.
        static SCRIPT_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let _one_at_a_time = SCRIPT_LOCK
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let output = Command::new(SCRIPT)
            .args(args)
            .stderr(std::process::Stdio::inherit())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {SCRIPT}: {e}"));
        let stdout = String::from_utf8_lossy(&output.stdout).trim().to_owned();
        assert!(
            output.status.success(),
            "{SCRIPT} {args:?} failed ({}): {stdout}",
            output.status
        );
        stdout
    }

    fn env(name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|value| !value.is_empty())
    }

    /// A SOCKS5 proxy on the path `dir/socks`: socat in front of the microsocks server that
    /// `var` names (scripts/test-all.sh starts them), or of one started here.
    struct UnixProxy {
        addr: UnixAddress,
        credentials: Option<Credentials>,
        // Field order is drop order: the bridge before the server behind it.
        _bridge: Started,
        _server: Option<Started>,
    }

    fn unix_proxy(dir: &TempDir, authenticating: bool) -> UnixProxy {
        let (var, credentials) = if authenticating {
            let credentials = Credentials::new(
                env("BITCOIN_SOCK_SOCKS5_USER").unwrap_or_else(|| DEFAULT_USER.to_owned()),
                env("BITCOIN_SOCK_SOCKS5_PASSWORD").unwrap_or_else(|| DEFAULT_PASSWORD.to_owned()),
            );
            ("BITCOIN_SOCK_SOCKS5_AUTH", Some(credentials))
        } else {
            ("BITCOIN_SOCK_SOCKS5", None)
        };
        let (server, port) = match env(var) {
            Some(addr) => {
                let addr: std::net::SocketAddr = addr
                    .parse()
                    .unwrap_or_else(|e| panic!("{var}={addr:?} is not an IP:PORT address: {e}"));
                (None, addr.port())
            }
            None => {
                let mut args = vec!["start", "0"];
                if let Some(credentials) = &credentials {
                    args.extend([credentials.username.as_str(), credentials.password.as_str()]);
                }
                let started = run_script(&args);
                let (pid, port) = started
                    .split_once(' ')
                    .unwrap_or_else(|| panic!("{SCRIPT} printed {started:?}, expected PID PORT"));
                let port = port.parse().expect("the server's port");
                (Some(Started(pid.to_owned())), port)
            }
        };
        let path = dir.path("socks");
        let path_arg = path.to_str().expect("a UTF-8 temporary path");
        let bridge = run_script(&["bridge", path_arg, &port.to_string()]);
        UnixProxy {
            addr: UnixAddress::Path(path),
            credentials,
            _bridge: Started(bridge),
            _server: server,
        }
    }

    /// Checks `client` (through the proxy) and the destination's end are one connection.
    fn check_tunnel(client: &Sock, destination: &Sock) {
        wait_for(destination, SockEvent::RECV);
        let (server, _) = destination.accept().expect("the proxy's connection");
        let interrupt = ThreadInterrupt::new();
        client
            .send_complete(b"version\n", TIMEOUT, &interrupt)
            .expect("send");
        let line = server
            .recv_until_terminator(b'\n', TIMEOUT, &interrupt, 1000)
            .expect("the destination receives what the client sent");
        assert_eq!(line, b"version");
        let data: Vec<u8> = (0..128 * 1024).map(|i: u32| (i % 251) as u8).collect();
        for chunk in data.chunks(16 * 1024) {
            send_all(&server, chunk);
            let mut received = vec![0u8; chunk.len()];
            socks5::interruptible_recv(client, &mut received, TIMEOUT, &interrupt)
                .expect("receive through the tunnel");
            assert_eq!(received, chunk);
        }
        drop(server);
        expect_eof(client);
    }

    #[test]
    fn socks5_through_a_proxy_on_a_unix_socket_carries_data() {
        let dir = TempDir::new();
        let proxy = unix_proxy(&dir, false);
        let destination = listener(V4);
        let port = destination.local_addr().expect("address").port();
        let client = Sock::connect_via_socks5_unix(&proxy.addr, "127.0.0.1", port, None, TIMEOUT)
            .unwrap_or_else(|e| panic!("SOCKS5 through {}: {e}", proxy.addr));
        assert_eq!(
            client.peer_address().expect("peer"),
            proxy.addr.clone().into()
        );
        check_tunnel(&client, &destination);
    }

    #[test]
    fn socks5_through_a_unix_proxy_with_stream_isolation_credentials() {
        let dir = TempDir::new();
        let proxy = unix_proxy(&dir, true);
        let destination = listener(V4);
        let port = destination.local_addr().expect("address").port();
        let right = proxy.credentials.clone().expect("credentials");
        let client =
            Sock::connect_via_socks5_unix(&proxy.addr, "127.0.0.1", port, Some(&right), TIMEOUT)
                .unwrap_or_else(|e| panic!("SOCKS5 with credentials through {}: {e}", proxy.addr));
        check_tunnel(&client, &destination);

        let wrong = Credentials::new(right.username.clone(), format!("{}-1", right.password));
        let err =
            Sock::connect_via_socks5_unix(&proxy.addr, "127.0.0.1", port, Some(&wrong), TIMEOUT)
                .expect_err("wrong credentials");
        assert!(matches!(err, Socks5Error::AuthFailed { .. }), "{err:?}");
        let err = Sock::connect_via_socks5_unix(&proxy.addr, "127.0.0.1", port, None, TIMEOUT)
            .expect_err("no credentials");
        assert!(
            matches!(err, Socks5Error::WrongAuthMethod { method: 0xff }),
            "{err:?}"
        );
        // The proxy connected to the destination only for the right credentials.
        assert!(destination
            .wait(Duration::ZERO, SockEvent::RECV)
            .expect("wait")
            .is_empty());
    }

    #[test]
    fn socks5_handshake_over_a_unix_sock_connected_by_hand() {
        let dir = TempDir::new();
        let proxy = unix_proxy(&dir, false);
        let destination = listener(V4);
        let port = destination.local_addr().expect("address").port();
        let sock = Sock::connect_to(&proxy.addr.clone().into(), TIMEOUT).expect("connect");
        socks5::connect(
            &sock,
            "127.0.0.1",
            port,
            None,
            TIMEOUT,
            &ThreadInterrupt::new(),
        )
        .unwrap_or_else(|e| panic!("SOCKS5 handshake: {e}"));
        check_tunnel(&sock, &destination);
    }

    #[test]
    fn socks5_through_a_missing_unix_proxy_fails_to_connect() {
        let dir = TempDir::new();
        let missing = dir.unix("socks");
        let err = Sock::connect_via_socks5_unix(&missing, "127.0.0.1", 8333, None, TIMEOUT)
            .expect_err("no proxy there");
        match err {
            Socks5Error::ProxyConnect(SockError::Connect { addr, source }) => {
                assert_eq!(addr, missing.into());
                assert_eq!(source.kind(), ErrorKind::NotFound);
            }
            other => panic!("expected ProxyConnect(Connect), got {other:?}"),
        }
    }
}

/// Hosts without Unix-domain sockets here (WASI preview 2, Windows): the same calls compile
/// and answer `Unsupported`; the general address calls give IP addresses.
#[cfg(not(unix))]
mod without_unix_domain {
    use std::io::ErrorKind;

    use bitcoin_sock::{Sock, SockAddress, SockError, SockEvent, Socks5Error, UnixAddress};

    use super::common::*;

    fn addresses() -> [UnixAddress; 3] {
        [
            UnixAddress::path("/run/tor/socks"),
            UnixAddress::abstract_name("bitcoind"),
            UnixAddress::Unnamed,
        ]
    }

    #[track_caller]
    fn assert_unsupported_connect(result: Result<Sock, SockError>, addr: &UnixAddress) {
        match result {
            Err(
                err @ SockError::Connect {
                    addr: SockAddress::Unix(_),
                    ..
                },
            ) => {
                assert_eq!(
                    err.io_error().map(std::io::Error::kind),
                    Some(ErrorKind::Unsupported),
                    "{err}"
                );
                assert!(
                    err.to_string()
                        .starts_with(&format!("connect() to {addr} failed: ")),
                    "{err}"
                );
            }
            other => panic!("expected SockError::Connect to a Unix address, got {other:?}"),
        }
    }

    #[test]
    fn unix_domain_connects_are_unsupported() {
        for addr in addresses() {
            assert_unsupported_connect(Sock::connect_unix(&addr, TIMEOUT), &addr);
            assert_unsupported_connect(Sock::connect_to(&addr.clone().into(), TIMEOUT), &addr);
        }
    }

    #[test]
    fn unix_domain_binds_are_unsupported() {
        for addr in addresses() {
            assert_kind(Sock::bind_unix(&addr), ErrorKind::Unsupported);
            assert_kind(Sock::bind_listen_unix(&addr, 4), ErrorKind::Unsupported);
            assert_kind(Sock::bind_to(&addr.into()), ErrorKind::Unsupported);
        }
    }

    #[test]
    fn socks5_through_a_unix_proxy_is_unsupported() {
        let proxy = UnixAddress::path("/run/tor/socks");
        let err = Sock::connect_via_socks5_unix(&proxy, "127.0.0.1", 8333, None, TIMEOUT)
            .expect_err("no Unix-domain sockets");
        match err {
            Socks5Error::ProxyConnect(err) => assert_unsupported_connect(Err(err), &proxy),
            other => panic!("expected Socks5Error::ProxyConnect, got {other:?}"),
        }
    }

    #[test]
    fn general_address_calls_give_ip_addresses() {
        let listener = listener(V4);
        let addr = listener.local_addr().expect("listener address");
        assert_eq!(listener.local_address().expect("address"), addr.into());
        let bound =
            Sock::bind_to(&SockAddress::Ip("127.0.0.1:0".parse().unwrap())).expect("bind_to an IP");
        assert!(bound.local_address().expect("address").as_ip().is_some());
        let client = Sock::connect_to(&addr.into(), TIMEOUT).expect("connect_to an IP");
        wait_for(&listener, SockEvent::RECV);
        let (server, peer) = listener.accept_address().expect("accept_address");
        assert_eq!(peer, client.local_address().expect("client address"));
        assert_eq!(server.peer_address().expect("peer"), peer);
        assert_eq!(client.peer_address().expect("peer"), addr.into());
    }
}
