#![cfg(not(target_family = "wasm"))]
//! Native-only tests: descriptor ownership checked with `fcntl`, adoption of `std::net` and
//! raw sockets, peer resets (`SO_LINGER` 0 through `get()`), descriptors above `FD_SETSIZE`,
//! `SIGPIPE`, and peers acting from another thread during a call.
//!
//! Every test here holds [`serial`]: the descriptor checks look at fd numbers, which another
//! test's new socket could take the moment one is closed.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use bitcoin_sock::{
    network_error_string, Events, Sock, SockError, SockEvent, SockIo, ThreadInterrupt,
    MAX_WAIT_FOR_IO,
};
use common::*;

static FD_NUMBERS: Mutex<()> = Mutex::new(());

/// Runs the calling test alone among this file's tests.
fn serial() -> MutexGuard<'static, ()> {
    FD_NUMBERS.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Spawns `call` (which waits in `poll(2)`) and returns once it really waits: on Linux once
/// `/proc` shows the thread asleep in `poll` (tests/common/thread.rs), so what the test does
/// next wakes a blocked wait instead of racing ahead of it; elsewhere at once.
fn spawn_waiting<'scope, T: Send + 'scope>(
    scope: &'scope thread::Scope<'scope, '_>,
    call: impl FnOnce() -> T + Send + 'scope,
) -> Waiting<'scope, T> {
    #[cfg(target_os = "linux")]
    {
        let (handle, ids, _) =
            common::thread::spawn_blocked(scope, common::thread::poll_syscalls(), call);
        Waiting {
            handle,
            tid: ids.tid,
        }
    }
    #[cfg(not(target_os = "linux"))]
    Waiting {
        handle: scope.spawn(call),
        tid: 0,
    }
}

/// A thread [`spawn_waiting`] started, with its kernel task id (Linux; 0 elsewhere).
struct Waiting<'scope, T> {
    handle: thread::ScopedJoinHandle<'scope, T>,
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    tid: i32,
}

impl<T> Waiting<'_, T> {
    fn join(self) -> thread::Result<T> {
        self.handle.join()
    }

    /// On Linux, returns once this thread took every byte queued on `sock` and is asleep in
    /// `poll` again, i.e. waits for more; elsewhere at once.
    fn until_drained_and_waiting(&self, sock: &Sock) {
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsRawFd;
            let queued = || {
                let mut bytes: libc::c_int = 0;
                // SAFETY: FIONREAD writes one int into valid memory.
                let ret = unsafe { libc::ioctl(sock.as_raw_fd(), libc::FIONREAD, &mut bytes) };
                assert_eq!(ret, 0, "FIONREAD: {}", std::io::Error::last_os_error());
                bytes
            };
            common::thread::wait_until_blocked(
                self.tid,
                common::thread::poll_syscalls(),
                || self.handle.is_finished(),
                |_| queued() == 0,
            );
        }
        #[cfg(not(target_os = "linux"))]
        let _ = sock;
    }
}

/// Makes the next close of `sock` a reset (RST) instead of an orderly FIN.
fn set_linger_zero(sock: &Sock) {
    sock.get()
        .expect("a valid sock")
        .set_linger(Some(Duration::ZERO))
        .expect("SO_LINGER 0");
}

#[cfg(unix)]
mod fd {
    use std::os::fd::RawFd;

    /// Core's `CreateSocket`: a blocking IPv4 TCP socket, straight from the OS.
    pub fn new_socket() -> RawFd {
        // SAFETY: socket(2) has no memory preconditions.
        let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0) };
        assert!(fd >= 0, "socket(): {}", std::io::Error::last_os_error());
        fd
    }

    /// A fresh socket descriptor and the sock that owns it.
    pub fn adopted() -> (RawFd, bitcoin_sock::Sock) {
        use std::os::fd::FromRawFd;
        let fd = new_socket();
        // SAFETY: `fd` is a fresh socket that nothing else owns.
        (fd, unsafe { bitcoin_sock::Sock::from_raw_fd(fd) })
    }

    pub fn is_open(fd: RawFd) -> bool {
        // SAFETY: F_GETFD only reads the descriptor's flags; a closed fd gives EBADF.
        unsafe { libc::fcntl(fd, libc::F_GETFD) != -1 }
    }

    #[track_caller]
    pub fn assert_closed(fd: RawFd) {
        // SAFETY: as in is_open.
        let ret = unsafe { libc::fcntl(fd, libc::F_GETFD) };
        let errno = std::io::Error::last_os_error().raw_os_error();
        assert_eq!(ret, -1, "fd {fd} is still open");
        assert_eq!(errno, Some(libc::EBADF));
    }

    pub fn is_non_blocking(fd: RawFd) -> bool {
        // SAFETY: F_GETFL only reads the descriptor's status flags.
        let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
        assert_ne!(
            flags,
            -1,
            "fcntl(F_GETFL): {}",
            std::io::Error::last_os_error()
        );
        flags & libc::O_NONBLOCK != 0
    }

    pub fn close(fd: RawFd) {
        // SAFETY: the caller owns `fd` and nothing uses it afterwards.
        assert_eq!(unsafe { libc::close(fd) }, 0, "close({fd})");
    }
}

// ---------------------------------------------------------------------------------------------
// Descriptor ownership (Core's constructor_and_destructor, move_constructor, move_assignment)

#[cfg(unix)]
#[test]
fn constructor_and_destructor() {
    use std::os::fd::AsRawFd;
    let _serial = serial();
    let (s, sock) = fd::adopted();
    assert_eq!(sock.as_raw_fd(), s);
    assert!(fd::is_open(s));
    drop(sock);
    fd::assert_closed(s);
}

#[cfg(unix)]
#[test]
fn move_constructor() {
    use std::os::fd::{AsRawFd, FromRawFd};
    let _serial = serial();
    let s = fd::new_socket();
    // SAFETY: `s` is a fresh socket that nothing else owns.
    let mut sock1 = Box::new(unsafe { Sock::from_raw_fd(s) });
    let sock2 = std::mem::take(&mut *sock1);
    assert_eq!(sock1.as_raw_fd(), -1);
    drop(sock1);
    assert!(fd::is_open(s));
    assert_eq!(sock2.as_raw_fd(), s);
    drop(sock2);
    fd::assert_closed(s);
}

#[cfg(unix)]
#[test]
fn move_assignment() {
    use std::os::fd::{AsRawFd, FromRawFd};
    let _serial = serial();
    let s1 = fd::new_socket();
    let s2 = fd::new_socket();
    // SAFETY: both are fresh sockets that nothing else owns.
    let (mut sock1, mut sock2) = unsafe {
        (
            Box::new(Sock::from_raw_fd(s1)),
            Box::new(Sock::from_raw_fd(s2)),
        )
    };
    *sock2 = std::mem::take(&mut *sock1);
    assert!(fd::is_open(s1));
    fd::assert_closed(s2);
    assert_eq!(sock2.as_raw_fd(), s1);

    drop(sock1);
    assert!(fd::is_open(s1));
    assert_eq!(sock2.as_raw_fd(), s1);

    drop(sock2);
    fd::assert_closed(s1);
}

#[cfg(unix)]
#[test]
fn reset_closes_the_descriptor_now_and_never_again() {
    use std::os::fd::AsRawFd;
    let _serial = serial();
    let (s, mut sock) = fd::adopted();
    sock.reset();
    fd::assert_closed(s);
    assert_eq!(sock.as_raw_fd(), -1);
    // The lowest free number is reused at once: a second close would hit this new socket.
    let reused = fd::new_socket();
    sock.reset();
    drop(sock);
    assert!(fd::is_open(reused));
    fd::close(reused);
}

#[cfg(unix)]
#[test]
fn take_then_drop_of_the_source_closes_nothing() {
    use std::os::fd::AsRawFd;
    let _serial = serial();
    let (s, mut source) = fd::adopted();
    let target = std::mem::take(&mut source);
    drop(source);
    assert!(fd::is_open(s));
    assert_eq!(target.as_raw_fd(), s);
    drop(target);
    fd::assert_closed(s);
}

#[cfg(unix)]
#[test]
fn release_leaves_the_descriptor_open() {
    use std::os::fd::{AsRawFd, IntoRawFd};
    let _serial = serial();
    let (s, mut sock) = fd::adopted();
    let socket: bitcoin_sock::OsSocket = sock.release().expect("a valid sock releases its socket");
    assert_eq!(sock.as_raw_fd(), -1);
    drop(sock);
    assert!(fd::is_open(s));
    let released = socket.into_raw_fd();
    assert_eq!(released, s);
    assert!(fd::is_open(s));
    fd::close(s);
    fd::assert_closed(s);
}

#[cfg(unix)]
#[test]
fn into_raw_fd_gives_up_the_descriptor() {
    use std::os::fd::IntoRawFd;
    let _serial = serial();
    let (s, sock) = fd::adopted();
    assert_eq!(sock.into_raw_fd(), s);
    assert!(fd::is_open(s));
    fd::close(s);
}

#[cfg(unix)]
#[test]
fn the_invalid_sock_has_descriptor_minus_one() {
    use std::os::fd::{AsRawFd, IntoRawFd};
    let _serial = serial();
    assert_eq!(Sock::default().as_raw_fd(), -1);
    assert_eq!(Sock::default().into_raw_fd(), -1);
}

#[cfg(target_os = "linux")]
#[test]
fn connects_and_failures_leak_no_descriptor() {
    let _serial = serial();
    let open_fds = || std::fs::read_dir("/proc/self/fd").expect("/proc").count();
    // Warm up anything that opens a descriptor once (e.g. the resolver, thread-locals).
    drop(pair());
    let before = open_fds();
    for _ in 0..20 {
        let pair = pair();
        send_all(&pair.client, b"x");
        assert_eq!(recv_exactly(&pair.server, 1), b"x");
        let err = Sock::connect(closed_port(V4), TIMEOUT).expect_err("refused");
        assert!(matches!(err, SockError::Connect { .. }), "{err:?}");
        assert_kind(listener(V4).accept(), ErrorKind::WouldBlock);
    }
    assert_eq!(open_fds(), before);
}

// ---------------------------------------------------------------------------------------------
// Adopting sockets made elsewhere: non-blocking afterwards

#[cfg(unix)]
#[test]
fn from_raw_fd_adopts_in_non_blocking_mode() {
    use std::os::fd::{AsRawFd, FromRawFd};
    let _serial = serial();
    let s = fd::new_socket();
    assert!(!fd::is_non_blocking(s));
    // SAFETY: `s` is a fresh socket that nothing else owns.
    let sock = unsafe { Sock::from_raw_fd(s) };
    assert!(fd::is_non_blocking(sock.as_raw_fd()));
}

#[cfg(unix)]
#[test]
fn from_tcp_stream_adopts_in_non_blocking_mode() {
    use std::os::fd::AsRawFd;
    let _serial = serial();
    let std_listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let stream = TcpStream::connect(std_listener.local_addr().expect("addr")).expect("connect");
    assert!(!fd::is_non_blocking(stream.as_raw_fd()));
    let sock = Sock::from(stream);
    assert!(fd::is_non_blocking(sock.as_raw_fd()));
    // A blocking socket would hang here.
    assert_kind(sock.recv(&mut [0; 4]), ErrorKind::WouldBlock);

    let (mut peer, _) = std_listener.accept().expect("accept");
    peer.write_all(b"std").expect("write");
    assert_eq!(recv_exactly(&sock, 3), b"std");
}

#[cfg(unix)]
#[test]
fn from_tcp_listener_adopts_in_non_blocking_mode() {
    use std::os::fd::AsRawFd;
    let _serial = serial();
    let std_listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = std_listener.local_addr().expect("addr");
    let listener = Sock::from(std_listener);
    assert!(fd::is_non_blocking(listener.as_raw_fd()));
    assert_kind(listener.accept(), ErrorKind::WouldBlock);

    let client = Sock::connect(addr, TIMEOUT).expect("connect");
    let (server, _) = accept(&listener);
    assert!(fd::is_non_blocking(server.as_raw_fd()));
    send_all(&client, b"hi");
    assert_eq!(recv_exactly(&server, 2), b"hi");
}

#[cfg(unix)]
#[test]
fn from_os_socket_adopts_in_non_blocking_mode() {
    use std::os::fd::{AsRawFd, FromRawFd};
    let _serial = serial();
    // SAFETY: a fresh socket that nothing else owns.
    let socket = unsafe { bitcoin_sock::OsSocket::from_raw_fd(fd::new_socket()) };
    let sock = Sock::from(socket);
    assert!(fd::is_non_blocking(sock.as_raw_fd()));
}

#[cfg(unix)]
#[test]
fn adopt_makes_a_socket_non_blocking_and_says_so() {
    use std::os::fd::{AsRawFd, FromRawFd};
    let _serial = serial();
    // SAFETY: a fresh socket that nothing else owns.
    let socket = unsafe { bitcoin_sock::OsSocket::from_raw_fd(fd::new_socket()) };
    let sock = Sock::adopt(socket).expect("a socket is adopted");
    assert!(fd::is_non_blocking(sock.as_raw_fd()));
}

/// A descriptor the OS refuses to make non-blocking: an `O_PATH` one (`fcntl(F_SETFL)` answers
/// `EBADF`), which closes like any other.
#[cfg(target_os = "linux")]
fn unadoptable() -> bitcoin_sock::OsSocket {
    use std::os::fd::FromRawFd;
    // SAFETY: a C string literal; open(2) has no other precondition.
    let fd = unsafe { libc::open(c"/".as_ptr(), libc::O_PATH | libc::O_CLOEXEC) };
    assert!(fd >= 0, "open(O_PATH): {}", std::io::Error::last_os_error());
    // SAFETY: `fd` is fresh and owned by nothing else; only close(2) is asked of it here.
    unsafe { bitcoin_sock::OsSocket::from_raw_fd(fd) }
}

#[cfg(target_os = "linux")]
#[test]
fn adopt_reports_a_refusal_and_closes_the_handle() {
    use std::os::fd::AsRawFd;
    let _serial = serial();
    let socket = unadoptable();
    let fd = socket.as_raw_fd();
    let err = Sock::adopt(socket).expect_err("O_PATH cannot be made non-blocking");
    assert_eq!(err.raw_os_error(), Some(libc::EBADF), "{err}");
    fd::assert_closed(fd);
}

#[cfg(target_os = "linux")]
#[test]
fn from_keeps_a_handle_it_cannot_make_non_blocking_as_its_docs_say() {
    use std::os::fd::AsRawFd;
    let _serial = serial();
    let socket = unadoptable();
    let fd = socket.as_raw_fd();
    let sock = Sock::from(socket);
    assert_eq!(sock.as_raw_fd(), fd, "held as it is");
    assert!(!fd::is_non_blocking(fd));
    drop(sock);
    fd::assert_closed(fd);
}

#[cfg(unix)]
#[test]
fn set_non_blocking_undoes_a_mode_change_made_through_get() {
    use std::os::fd::AsRawFd;
    let _serial = serial();
    let pair = pair();
    let socket = pair.client.get().expect("valid");
    socket.set_nonblocking(false).expect("blocking");
    assert!(!fd::is_non_blocking(pair.client.as_raw_fd()));
    pair.client.set_non_blocking().expect("set_non_blocking");
    assert!(fd::is_non_blocking(pair.client.as_raw_fd()));
}

#[cfg(unix)]
#[test]
fn connected_accepted_and_listening_socks_are_non_blocking() {
    use std::os::fd::AsRawFd;
    let _serial = serial();
    let listener = listener(V4);
    let client = Sock::connect(listener.local_addr().expect("addr"), TIMEOUT).expect("connect");
    let (server, _) = accept(&listener);
    for sock in [&listener, &client, &server] {
        assert!(fd::is_non_blocking(sock.as_raw_fd()), "{sock:?}");
    }
}

#[test]
fn sock_connects_to_a_std_listener() {
    let _serial = serial();
    let std_listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let sock = Sock::connect(std_listener.local_addr().expect("addr"), TIMEOUT).expect("connect");
    let (mut stream, _) = std_listener.accept().expect("accept");
    stream.write_all(b"from std").expect("write");
    assert_eq!(recv_exactly(&sock, 8), b"from std");
}

#[test]
fn std_stream_connects_to_a_sock_listener() {
    let _serial = serial();
    let listener = listener(V4);
    let mut stream = TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
    stream
        .set_read_timeout(Some(TIMEOUT))
        .expect("read timeout");
    let (server, _) = accept(&listener);
    send_all(&server, b"from sock");
    let mut buf = [0u8; 9];
    stream.read_exact(&mut buf).expect("read");
    assert_eq!(&buf, b"from sock");
}

// ---------------------------------------------------------------------------------------------
// wait (Core's wait, wait_error_only_peer_close, wait_above_fd_setsize)

#[test]
fn wait() {
    // Core's wait: one thread waits, the other sends.
    let _serial = serial();
    let pair = pair();
    thread::scope(|scope| {
        let waiter = spawn_waiting(scope, || pair.server.wait(TIMEOUT, SockEvent::RECV));
        assert_eq!(pair.client.send(b"a").expect("send"), 1);
        let occurred = waiter.join().expect("waiter").expect("wait");
        assert!(occurred.contains(SockEvent::RECV), "{occurred:?}");
    });
}

#[test]
fn wait_without_deadline_returns_when_data_arrives() {
    // Duration::MAX is "forever" (poll(2) with -1), not a timeout that overflows or is cut short.
    let _serial = serial();
    let pair = pair();
    thread::scope(|scope| {
        let waiter = spawn_waiting(scope, || pair.server.wait(Duration::MAX, SockEvent::RECV));
        assert_eq!(pair.client.send(b"a").expect("send"), 1);
        let occurred = waiter.join().expect("waiter").expect("wait");
        assert!(occurred.contains(SockEvent::RECV), "{occurred:?}");
    });
}

#[test]
fn wait_error_only_peer_close() {
    // Core's test uses an AF_UNIX socketpair, whose close is a hang-up (POLLHUP). Over TCP a
    // FIN alone is not one (poll says POLLIN); a reset is (POLLERR | POLLHUP), so the peer
    // closes with SO_LINGER 0.
    let _serial = serial();
    let pair = pair();
    let mut entry = [(&pair.server, Events::new(SockEvent::empty()))];
    entry[0].1.occurred = SockEvent::ERR;
    let ready = Sock::wait_many(Duration::from_millis(2), &mut entry).expect("wait_many");
    assert_eq!(ready, 0);
    assert!(entry[0].1.occurred.is_empty());

    set_linger_zero(&pair.client);
    drop(pair.client);
    let occurred = pair.server.wait(TIMEOUT, SockEvent::empty()).expect("wait");
    assert!(occurred.contains(SockEvent::ERR), "{occurred:?}");
}

#[test]
fn wait_with_nothing_requested_reports_err_once_both_directions_are_shut() {
    // The TCP way to a hang-up without a reset: the peer's FIN, then our own shutdown.
    let _serial = serial();
    let pair = pair();
    drop(pair.client);
    expect_eof(&pair.server);
    pair.server.shutdown_send().expect("shutdown_send");
    let occurred = pair.server.wait(TIMEOUT, SockEvent::empty()).expect("wait");
    assert!(occurred.contains(SockEvent::ERR), "{occurred:?}");
}

#[cfg(unix)]
#[test]
fn wait_above_fd_setsize() {
    use std::os::fd::{AsRawFd, FromRawFd};
    const FD_SETSIZE: libc::c_int = 1024;
    let _serial = serial();

    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit struct into valid memory.
    assert_eq!(
        unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) },
        0
    );
    let needed = FD_SETSIZE as libc::rlim_t + 64;
    if limit.rlim_cur != libc::RLIM_INFINITY && limit.rlim_cur < needed {
        // A host that cannot give a process FD_SETSIZE + 64 descriptors cannot run a node;
        // failing says so, where a skip would leave the promise unchecked.
        assert!(
            limit.rlim_max == libc::RLIM_INFINITY || limit.rlim_max >= needed,
            "RLIMIT_NOFILE hard limit {} is below {needed}: raise it (ulimit -Hn) to run this test",
            limit.rlim_max
        );
        limit.rlim_cur = needed;
        // SAFETY: setrlimit reads one valid rlimit struct.
        let ret = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) };
        assert_eq!(ret, 0, "setrlimit: {}", std::io::Error::last_os_error());
    }

    let pair = pair();
    // SAFETY: duplicates an open descriptor; the copy is owned by the Sock made below.
    let high = unsafe { libc::fcntl(pair.server.as_raw_fd(), libc::F_DUPFD_CLOEXEC, FD_SETSIZE) };
    assert!(
        high >= FD_SETSIZE,
        "Cannot duplicate high socket: {}",
        network_error_string(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
    );
    // SAFETY: `high` is a fresh duplicate that nothing else owns.
    let receiver = unsafe { Sock::from_raw_fd(high) };
    assert!(receiver.is_selectable());
    drop(pair.server);
    check_readiness_and_close(pair.client, receiver);
}

#[cfg(unix)]
#[test]
fn wait_reports_err_for_a_descriptor_closed_behind_its_back() {
    // Core ignores POLLNVAL, so this looks like a timeout there.
    use std::os::fd::{AsRawFd, IntoRawFd};
    let _serial = serial();
    let pair = pair();
    let server = pair.server;
    fd::close(server.as_raw_fd());
    let start = Instant::now();
    let occurred = server.wait(TIMEOUT, SockEvent::RECV).expect("wait");
    assert!(occurred.contains(SockEvent::ERR), "{occurred:?}");
    assert!(start.elapsed() < PROMPTLY);
    // Already closed: keep the sock from closing the number again.
    let _ = server.into_raw_fd();
}

// ---------------------------------------------------------------------------------------------
// A peer that resets the connection

#[test]
fn wait_and_recv_report_a_peer_reset() {
    let _serial = serial();
    let pair = pair();
    set_linger_zero(&pair.server);
    drop(pair.server);
    let occurred = pair.client.wait(TIMEOUT, SockEvent::RECV).expect("wait");
    // RECV: the recv below returns at once (with the reset); and ERR, the reset itself.
    if cfg!(windows) {
        assert!(occurred.contains(SockEvent::RECV), "{occurred:?}");
    } else {
        assert_eq!(occurred, SockEvent::RECV | SockEvent::ERR);
    }
    assert_kind(pair.client.recv(&mut [0; 4]), ErrorKind::ConnectionReset);
}

#[test]
fn is_connected_after_a_peer_reset_gives_the_reset_text() {
    let _serial = serial();
    let pair = pair();
    set_linger_zero(&pair.server);
    drop(pair.server);
    wait_for(&pair.client, SockEvent::RECV);
    assert_eq!(
        pair.client.is_connected().map_err(|e| e.to_string()),
        Err(network_error_string(code::ECONNRESET))
    );
}

#[test]
fn recv_until_terminator_after_a_peer_reset_fails_with_a_recv_error() {
    let _serial = serial();
    let pair = pair();
    set_linger_zero(&pair.server);
    drop(pair.server);
    wait_for(&pair.client, SockEvent::RECV);
    let err = pair
        .client
        .recv_until_terminator(b'\n', TIMEOUT, &ThreadInterrupt::new(), 100)
        .expect_err("reset");
    assert!(matches!(err, SockError::Recv { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!("recv(): {}", network_error_string(code::ECONNRESET))
    );
}

#[test]
fn send_complete_after_a_peer_reset_fails_with_a_send_error() {
    let _serial = serial();
    let pair = pair();
    set_linger_zero(&pair.server);
    drop(pair.server);
    wait_for(&pair.client, SockEvent::RECV);
    let err = pair
        .client
        .send_complete(b"anyone?", TIMEOUT, &ThreadInterrupt::new())
        .expect_err("reset");
    assert!(matches!(err, SockError::Send(_)), "{err:?}");
    let errno = err.io_error().and_then(|e| e.raw_os_error());
    assert!(
        errno == Some(code::ECONNRESET) || errno == Some(code::EPIPE),
        "{err}"
    );
}

#[cfg(unix)]
#[test]
fn send_to_a_shut_down_socket_fails_without_raising_sigpipe() {
    let _serial = serial();
    let pair = pair();
    pair.client.shutdown_send().expect("shutdown_send");
    // Rust binaries ignore SIGPIPE; restore the default (end the process) around the send, so
    // a send without MSG_NOSIGNAL / SO_NOSIGPIPE kills the test run.
    // SAFETY: swaps a signal disposition; the tests of this file run one at a time.
    let previous = unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    let result = pair.client.send(b"x");
    // SAFETY: as above, restoring what was there.
    unsafe { libc::signal(libc::SIGPIPE, previous) };
    assert_kind(result, ErrorKind::BrokenPipe);
}

// ---------------------------------------------------------------------------------------------
// Peers and interrupts acting from another thread during a call

#[test]
fn recv_until_terminator_limit() {
    // Core's recv_until_terminator_limit: the receiver runs while the sender sends.
    let _serial = serial();
    let pair = pair();
    let interrupt = ThreadInterrupt::new();
    thread::scope(|scope| {
        let receiver = spawn_waiting(scope, || {
            pair.server
                .recv_until_terminator(b'\n', Duration::from_secs(60), &interrupt, 10)
        });
        pair.client
            .send_complete(b"1234567", TIMEOUT, &interrupt)
            .expect("first part");
        // The receiver takes the first part, then waits for more before the second comes.
        receiver.until_drained_and_waiting(&pair.server);
        pair.client
            .send_complete(b"89a\n", TIMEOUT, &interrupt)
            .expect("second part");
        let err = receiver.join().expect("receiver").expect_err("11 bytes");
        assert!(
            err.to_string()
                .contains("too many bytes without a terminator"),
            "{err}"
        );
        assert_eq!(err.received(), b"123456789a");
    });
}

#[test]
fn recv_until_terminator_reads_a_long_line_sent_by_another_thread() {
    let _serial = serial();
    let pair = pair();
    let line: Vec<u8> = (0..(1 << 20)).map(|i| b'a' + (i % 26) as u8).collect();
    let mut message = line.clone();
    message.extend_from_slice(b"\nrest");
    thread::scope(|scope| {
        scope.spawn(|| {
            pair.client
                .send_complete(&message, TIMEOUT, &ThreadInterrupt::new())
                .expect("send_complete");
        });
        let received = pair
            .server
            .recv_until_terminator(b'\n', TIMEOUT, &ThreadInterrupt::new(), 2 << 20)
            .expect("line");
        assert!(received == line, "got {} bytes", received.len());
    });
    assert_eq!(recv_exactly(&pair.server, 4), b"rest");
}

#[test]
fn recv_until_terminator_reads_a_line_trickled_one_byte_per_send() {
    let _serial = serial();
    let pair = pair();
    thread::scope(|scope| {
        scope.spawn(|| {
            for byte in b"hello\nX" {
                send_all(&pair.client, &[*byte]);
            }
        });
        let line = pair
            .server
            .recv_until_terminator(b'\n', TIMEOUT, &ThreadInterrupt::new(), 100)
            .expect("line");
        assert_eq!(line, b"hello");
    });
    assert_eq!(recv_exactly(&pair.server, 1), b"X");
}

#[test]
fn send_complete_of_a_big_payload_arrives_intact_while_the_peer_reads() {
    let _serial = serial();
    let pair = pair();
    let payload: Vec<u8> = (0..(8 << 20)).map(|i| (i % 251) as u8).collect();
    thread::scope(|scope| {
        let reader = scope.spawn(|| recv_exactly(&pair.server, payload.len()));
        pair.client
            .send_complete(&payload, TIMEOUT, &ThreadInterrupt::new())
            .expect("send_complete");
        assert!(reader.join().expect("reader") == payload, "payload differs");
    });
}

#[test]
fn an_interrupt_from_another_thread_stops_recv_until_terminator_within_about_max_wait() {
    let _serial = serial();
    let pair = pair();
    let interrupt = ThreadInterrupt::new();
    thread::scope(|scope| {
        let receiver = spawn_waiting(scope, || {
            pair.server
                .recv_until_terminator(b'\n', Duration::from_secs(60), &interrupt, 100)
        });
        let start = Instant::now();
        interrupt.interrupt();
        let err = receiver.join().expect("receiver").expect_err("interrupted");
        assert!(matches!(err, SockError::RecvInterrupted { .. }), "{err:?}");
        assert!(
            start.elapsed() < MAX_WAIT_FOR_IO + PROMPTLY,
            "{:?}",
            start.elapsed()
        );
    });
}

#[test]
fn an_interrupt_from_another_thread_stops_send_complete_within_about_max_wait() {
    let _serial = serial();
    let pair = pair();
    let payload = vec![0u8; 8 << 20];
    let interrupt = ThreadInterrupt::new();
    thread::scope(|scope| {
        // Blocked in poll: the payload filled the buffers and nobody reads.
        let sender = spawn_waiting(scope, || {
            pair.client
                .send_complete(&payload, Duration::from_secs(60), &interrupt)
        });
        let start = Instant::now();
        interrupt.interrupt();
        let err = sender.join().expect("sender").expect_err("interrupted");
        let SockError::SendInterrupted { sent, total } = err else {
            panic!("expected SendInterrupted, got {err:?}");
        };
        assert!(sent > 0 && sent < total, "sent {sent}");
        assert!(
            start.elapsed() < MAX_WAIT_FOR_IO + PROMPTLY,
            "{:?}",
            start.elapsed()
        );
    });
}

#[test]
fn an_interrupt_from_another_thread_wakes_a_long_sleep_for() {
    let _serial = serial();
    let interrupt = ThreadInterrupt::new();
    thread::scope(|scope| {
        // On Linux, once the sleeper is asleep on its condition variable (a futex).
        #[cfg(target_os = "linux")]
        let sleeper =
            common::thread::spawn_blocked(scope, common::thread::futex_syscalls(), || {
                interrupt.sleep_for(Duration::from_secs(60))
            })
            .0;
        #[cfg(not(target_os = "linux"))]
        let sleeper = scope.spawn(|| interrupt.sleep_for(Duration::from_secs(60)));
        let start = Instant::now();
        interrupt.interrupt();
        assert!(!sleeper.join().expect("sleeper"));
        assert!(start.elapsed() < PROMPTLY, "{:?}", start.elapsed());
    });
}

#[test]
fn only_v6_can_be_changed_before_bind_on_an_adopted_socket() {
    let _serial = serial();
    if !has_ipv6() {
        return;
    }
    // The OS takes IPV6_V6ONLY only before bind: a socket made elsewhere, not bound yet.
    let socket = socket2::Socket::new(socket2::Domain::IPV6, socket2::Type::STREAM, None)
        .expect("an IPv6 socket");
    let sock = Sock::adopt(socket).expect("adopt");
    sock.set_only_v6(false).expect("IPV6_V6ONLY off");
    assert!(!sock.only_v6().expect("only_v6"));
    sock.set_only_v6(true).expect("IPV6_V6ONLY on");
    assert!(sock.only_v6().expect("only_v6"));
}

/// std's own types, the route that follows no dependency's version (issue #25).
#[cfg(unix)]
#[test]
fn owned_fd_converts_into_a_non_blocking_sock_and_back() {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    let _serial = serial();
    let s = fd::new_socket();
    assert!(!fd::is_non_blocking(s));
    // SAFETY: `s` is a fresh socket that nothing else owns.
    let sock = Sock::from(unsafe { OwnedFd::from_raw_fd(s) });
    assert!(fd::is_non_blocking(s), "adopted as a blocking socket");
    assert_eq!(sock.as_raw_fd(), s);
    assert_eq!(sock.borrow_fd().expect("a valid sock").as_raw_fd(), s);
    let owned = OwnedFd::try_from(sock).expect("a valid sock gives its descriptor");
    assert_eq!(owned.as_raw_fd(), s);
    assert!(fd::is_open(s), "released, not closed");
    drop(owned);
    fd::assert_closed(s);
}

#[cfg(unix)]
#[test]
fn the_invalid_sock_has_no_descriptor_to_lend_or_give() {
    use std::os::fd::OwnedFd;
    let _serial = serial();
    assert!(Sock::default().borrow_fd().is_none());
    let err = OwnedFd::try_from(Sock::default()).expect_err("no descriptor");
    assert_eq!(err.kind(), ErrorKind::NotConnected);
    assert_eq!(err.to_string(), "not connected");
}

/// std's own types on Windows, the route that follows no dependency's version (issue #25).
#[cfg(windows)]
#[test]
fn owned_socket_converts_into_a_sock_and_back() {
    use std::os::windows::io::{AsRawSocket, OwnedSocket};
    let _serial = serial();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let raw = listener.as_raw_socket();
    let sock = Sock::from(OwnedSocket::from(listener));
    assert_eq!(sock.as_raw_socket(), raw);
    assert_eq!(
        sock.borrow_socket().expect("a valid sock").as_raw_socket(),
        raw
    );
    // Non-blocking: nothing is pending, so accept says so instead of blocking.
    assert_eq!(
        sock.accept().expect_err("nothing pending").kind(),
        ErrorKind::WouldBlock
    );
    let owned = OwnedSocket::try_from(sock).expect("a valid sock gives its socket");
    assert_eq!(owned.as_raw_socket(), raw);
    assert!(Sock::default().borrow_socket().is_none());
    let err = OwnedSocket::try_from(Sock::default()).expect_err("no socket");
    assert_eq!(err.kind(), ErrorKind::NotConnected);
}
