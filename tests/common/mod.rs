//! Helpers shared by the integration tests: loopback pairs, bounded waits, and [`MockSock`].
//!
//! Everything here compiles natively and on `wasm32-wasip2` (no threads, no `std::net`): the
//! peer of a socket is a second non-blocking [`Sock`] in the same test.

// Each test file uses a different subset of these helpers.
#![allow(dead_code, unused_imports)]
// Without sockets (tests/no_socket.rs on wasip1 and unknown-unknown) `Sock` holds nothing to drop.
#![cfg_attr(not(sockets), allow(clippy::drop_non_drop))]

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use bitcoin_sock::{Events, Sock, SockEvent, SockIo, ThreadInterrupt};

#[cfg(target_os = "linux")]
pub mod thread;

// On WASI 0.3 (feature `wasip3`) the harness's `main` is entered through the async
// `wasi:cli/run@0.3`, where sockets may wait; elsewhere this line is nothing.
bitcoin_sock::wasip3_main!();

/// A timeout that only a broken implementation reaches: every wait for something that is
/// bound to happen on loopback uses it, so slow machines do not make tests flaky.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// An upper bound for "returned promptly": far above what any of these operations needs,
/// far below the timeouts that a broken implementation would sleep out.
pub const PROMPTLY: Duration = Duration::from_secs(5);

pub const V4: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
pub const V6: IpAddr = IpAddr::V6(Ipv6Addr::LOCALHOST);

/// The one switch for hosts without an IPv6 loopback: `BITCOIN_SOCK_NO_IPV6=1` in the
/// environment (wasmtime passes it on with `-S inherit-env=y`). Without it, IPv6 coverage never
/// drops out silently: a failing `bind([::1])` fails the test.
pub const NO_IPV6_VAR: &str = "BITCOIN_SOCK_NO_IPV6";

/// Whether the tests cover [::1]: true unless [`NO_IPV6_VAR`] says the host has no IPv6
/// loopback; then binding [::1] must really fail. Panics when the crate cannot bind [::1] on a
/// host that was not declared IPv6-less.
pub fn has_ipv6() -> bool {
    let declared_absent = std::env::var(NO_IPV6_VAR).is_ok_and(|value| value == "1");
    let bound = Sock::bind(SocketAddr::new(V6, 0));
    match (declared_absent, bound) {
        (false, Ok(_)) => true,
        (false, Err(e)) => panic!(
            "bind([::1]:0) failed: {e}; set {NO_IPV6_VAR}=1 if this host has no IPv6 loopback"
        ),
        (true, Err(_)) => false,
        (true, Ok(_)) => panic!("{NO_IPV6_VAR}=1, but this host binds [::1]: unset it"),
    }
}

/// The loopback addresses the tests cover: 127.0.0.1, and [::1] unless [`has_ipv6`] says the
/// host was declared without one.
pub fn loopbacks() -> Vec<IpAddr> {
    let mut ips = vec![V4];
    if has_ipv6() {
        ips.push(V6);
    }
    ips
}

/// A listening sock on a free port of `ip`.
pub fn listener(ip: IpAddr) -> Sock {
    Sock::bind_listen(SocketAddr::new(ip, 0), 16).expect("listen on a loopback port")
}

/// Accepts the next connection, waiting for it up to [`TIMEOUT`].
pub fn accept(listener: &Sock) -> (Sock, SocketAddr) {
    wait_for(listener, SockEvent::RECV);
    listener.accept().expect("accept a pending connection")
}

/// Two connected socks: `client` made by [`Sock::connect`], `server` by [`Sock::accept`].
pub struct Pair {
    pub client: Sock,
    pub server: Sock,
}

/// A connected pair over `ip`'s loopback.
pub fn pair_on(ip: IpAddr) -> Pair {
    let listener = listener(ip);
    let addr = listener.local_addr().expect("listener address");
    let client = Sock::connect(addr, TIMEOUT).expect("connect to the loopback listener");
    let (server, _) = accept(&listener);
    assert_non_blocking(&client);
    assert_non_blocking(&server);
    Pair { client, server }
}

/// Natively, checks that `sock` is in non-blocking mode, so that a broken mode makes the tests
/// fail here instead of hanging in a `recv`. (WASI sockets have no blocking mode.)
pub fn assert_non_blocking(sock: &Sock) {
    #[cfg(unix)]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: F_GETFL only reads the descriptor's status flags.
        let flags = unsafe { libc::fcntl(sock.as_raw_fd(), libc::F_GETFL) };
        assert_ne!(flags, -1, "fcntl: {}", io::Error::last_os_error());
        assert!(
            flags & libc::O_NONBLOCK != 0,
            "{sock:?} is in blocking mode"
        );
    }
    #[cfg(not(unix))]
    let _ = sock;
}

/// A connected pair over 127.0.0.1.
pub fn pair() -> Pair {
    pair_on(V4)
}

/// An address of `ip` where nothing listens: a port that was free a moment ago.
pub fn closed_port(ip: IpAddr) -> SocketAddr {
    let sock = Sock::bind(SocketAddr::new(ip, 0)).expect("bind a free port");
    let addr = sock.local_addr().expect("bound address");
    drop(sock);
    addr
}

/// Waits up to [`TIMEOUT`] for `event` and returns what occurred; fails the test if it
/// does not come.
pub fn wait_for(sock: &Sock, event: SockEvent) -> SockEvent {
    let occurred = sock.wait(TIMEOUT, event).expect("wait");
    assert!(
        occurred.contains(event),
        "waited {TIMEOUT:?} for {event:?}, got {occurred:?}"
    );
    occurred
}

/// Sends all of `data` with the primitives only (no `send_complete`), waiting for room.
pub fn send_all(sock: &Sock, data: &[u8]) {
    let deadline = Instant::now() + TIMEOUT;
    let mut sent = 0;
    while sent < data.len() {
        assert!(
            Instant::now() < deadline,
            "sent only {sent} of {} bytes",
            data.len()
        );
        match sock.send(&data[sent..]) {
            Ok(n) => sent += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                sock.wait(TIMEOUT, SockEvent::SEND).expect("wait for SEND");
            }
            Err(e) => panic!("send failed after {sent} bytes: {e}"),
        }
    }
}

/// Receives exactly `len` bytes with the primitives only, waiting for them.
pub fn recv_exactly(sock: &Sock, len: usize) -> Vec<u8> {
    let deadline = Instant::now() + TIMEOUT;
    let mut data = vec![0; len];
    let mut received = 0;
    while received < len {
        assert!(
            Instant::now() < deadline,
            "received only {received} of {len} bytes"
        );
        match sock.recv(&mut data[received..]) {
            Ok(0) => panic!("peer closed after {received} of {len} bytes"),
            Ok(n) => received += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                sock.wait(TIMEOUT, SockEvent::RECV).expect("wait for RECV");
            }
            Err(e) => panic!("recv failed after {received} bytes: {e}"),
        }
    }
    data
}

/// Checks what `wait(RECV)` reported for the peer's end of stream (a FIN, this sock's sending
/// half still open). RECV on every backend (SPEC: data *or end of stream*), never `ERR` alone.
/// Exactly `RECV` on Linux and WASI; Windows reports the FIN as `POLLHUP`, which the native
/// backend turns into `RECV | ERR` there: the one host where end of stream also says `ERR`
/// (a known divergence, TESTING.md).
#[track_caller]
pub fn assert_eof_events(occurred: SockEvent) {
    if cfg!(windows) {
        assert!(
            occurred.contains(SockEvent::RECV),
            "end of stream must make RECV ready: {occurred:?}"
        );
    } else {
        assert_eq!(
            occurred,
            SockEvent::RECV,
            "end of stream must make exactly RECV ready"
        );
    }
}

/// Waits until `sock` reads end of stream, failing the test on data or on [`TIMEOUT`]; see
/// [`assert_eof_events`] for the events.
pub fn expect_eof(sock: &Sock) {
    let occurred = sock.wait(TIMEOUT, SockEvent::RECV).expect("wait for EOF");
    assert_eof_events(occurred);
    assert_eq!(sock.recv(&mut [0; 16]).expect("recv at EOF"), 0);
}

/// Asserts that `result` is the error of a send after this side shut its sending half:
/// `BrokenPipe` (`EPIPE`) on Linux and WASI. Windows says `WSAESHUTDOWN`, which has no
/// `io::ErrorKind` of its own (`Uncategorized`): there the code is checked instead (a known
/// divergence, TESTING.md).
#[track_caller]
pub fn assert_send_after_shutdown_fails<T: std::fmt::Debug>(result: io::Result<T>) {
    if cfg!(windows) {
        match result {
            Err(e) => assert_eq!(e.raw_os_error(), Some(code::EPIPE), "wrong error: {e}"),
            Ok(value) => panic!("expected WSAESHUTDOWN, got Ok({value:?})"),
        }
    } else {
        assert_kind(result, io::ErrorKind::BrokenPipe);
    }
}

/// Asserts that `result` failed with `kind` (an `io::Error`, or one of the crate's errors:
/// their conversion keeps the kind).
#[track_caller]
pub fn assert_kind<T: std::fmt::Debug, E: Into<io::Error>>(
    result: Result<T, E>,
    kind: io::ErrorKind,
) {
    match result.map_err(Into::into) {
        Err(e) => assert_eq!(e.kind(), kind, "wrong error: {e}"),
        Ok(value) => panic!("expected a {kind:?} error, got Ok({value:?})"),
    }
}

/// Asserts that `result` is the invalid sock's error: `NotConnected`, "not connected".
#[track_caller]
pub fn assert_not_connected<T: std::fmt::Debug>(result: io::Result<T>) {
    match result {
        Err(e) => {
            assert_eq!(e.kind(), io::ErrorKind::NotConnected, "wrong error: {e}");
            assert_eq!(e.to_string(), "not connected");
        }
        Ok(value) => panic!("expected \"not connected\", got Ok({value:?})"),
    }
}

/// Core's `CheckReadinessAndClose` (sock_tests.cpp): timeout, SEND, RECV, RECV|SEND together,
/// then EOF once `sender` is closed.
pub fn check_readiness_and_close(mut sender: Sock, receiver: Sock) {
    sender.set_non_blocking().expect("set_non_blocking");
    receiver.set_non_blocking().expect("set_non_blocking");
    assert!(sender.is_selectable());
    assert!(receiver.is_selectable());

    // A timeout gives the empty set, overwriting what was there.
    let mut entry = [(&receiver, Events::new(SockEvent::RECV))];
    entry[0].1.occurred = SockEvent::ERR;
    let ready = Sock::wait_many(Duration::from_millis(2), &mut entry).expect("wait_many");
    assert_eq!(ready, 0);
    assert_eq!(entry[0].1.occurred, SockEvent::empty());

    let occurred = sender.wait(TIMEOUT, SockEvent::SEND).expect("wait");
    assert!(occurred.contains(SockEvent::SEND));
    assert!(!occurred.contains(SockEvent::ERR));

    assert_eq!(sender.send(b"a").expect("send"), 1);
    wait_for(&receiver, SockEvent::RECV);
    let both = SockEvent::RECV | SockEvent::SEND;
    let occurred = receiver.wait(TIMEOUT, both).expect("wait");
    assert_eq!(occurred & both, both);

    let mut byte = [0u8; 1];
    assert_eq!(receiver.recv(&mut byte).expect("recv"), 1);
    assert_eq!(&byte, b"a");

    sender.reset();
    // EOF is RECV on every backend (Core's test accepts a hang-up too; the SPEC does not).
    // Over a Unix-domain socket (no IP address) the peer's close is a real hang-up, POLLHUP,
    // as in Core's socketpair test: RECV | ERR on Linux.
    let occurred = receiver.wait(TIMEOUT, SockEvent::RECV).expect("wait");
    if receiver.local_addr().is_ok() {
        assert_eof_events(occurred);
    } else if cfg!(target_os = "linux") {
        assert_eq!(
            occurred,
            SockEvent::RECV | SockEvent::ERR,
            "Unix-domain hang-up"
        );
    } else {
        assert!(occurred.contains(SockEvent::RECV), "{occurred:?}");
    }
    assert_eq!(receiver.recv(&mut byte).expect("recv at EOF"), 0);
}

/// OS error codes as the crate sees them: errno values (wasi-libc's on WASI), Winsock's on
/// Windows; on a host without a libc (wasm32-unknown-unknown), Linux's numbers stand in.
pub mod code {
    #[cfg(any(unix, target_os = "wasi"))]
    pub use libc::{
        EAGAIN, EBADF, ECONNREFUSED, ECONNRESET, EINPROGRESS, EINTR, EINVAL, ENOTCONN, EPIPE,
        EWOULDBLOCK,
    };
    #[cfg(windows)]
    pub use windows_sys::Win32::Networking::WinSock::{
        WSAEBADF as EBADF, WSAECONNREFUSED as ECONNREFUSED, WSAECONNRESET as ECONNRESET,
        WSAEINPROGRESS as EINPROGRESS, WSAEINTR as EINTR, WSAEINVAL as EINVAL,
        WSAENOTCONN as ENOTCONN, WSAESHUTDOWN as EPIPE, WSAEWOULDBLOCK as EAGAIN,
        WSAEWOULDBLOCK as EWOULDBLOCK,
    };
    #[cfg(not(any(unix, windows, target_os = "wasi")))]
    mod linux_numbers {
        pub const EAGAIN: i32 = 11;
        pub const EBADF: i32 = 9;
        pub const ECONNREFUSED: i32 = 111;
        pub const ECONNRESET: i32 = 104;
        pub const EINPROGRESS: i32 = 115;
        pub const EINTR: i32 = 4;
        pub const EINVAL: i32 = 22;
        pub const ENOTCONN: i32 = 107;
        pub const EPIPE: i32 = 32;
        pub const EWOULDBLOCK: i32 = EAGAIN;
    }
    #[cfg(not(any(unix, windows, target_os = "wasi")))]
    pub use linux_numbers::*;
}

/// What reads of a [`MockSock`] give once its readable bytes are used up.
#[derive(Clone, Copy, Debug)]
pub enum Drained {
    /// Nothing more yet: `WouldBlock`.
    Open,
    /// The peer closed: `Ok(0)`.
    Eof,
    /// A permanent error with this raw OS code.
    Error(i32),
}

/// A scripted socket for the algorithms of [`SockIo`], like Core's `StaticContentsSock` and
/// `FuzzedSock`, with a fake clock: a `wait` that times out moves the clock forward by its
/// timeout instead of sleeping.
///
/// Receiving: `peek`/`recv` see the bytes given with [`data`](MockSock::data), at most
/// [`trickle`](MockSock::trickle) bytes per call; once they are used up, reads give what
/// [`then`](MockSock::then) says. A `wait` for `RECV` makes the next of the
/// [`arriving`](MockSock::arriving) chunks readable and returns `RECV`; without one it times
/// out.
///
/// Sending: each `send` takes the next of the [`sends`](MockSock::sends) results (`Ok(n)`:
/// takes up to `n` bytes); once they are used up every send would block, as with a peer that
/// stopped reading.
///
/// Bounded: a mock answers at most [`MOCK_CALL_LIMIT`] primitive calls and then panics, so an
/// algorithm that loops without waiting (or waits zero on the fake clock) fails its test at
/// once instead of spinning until a harness timeout (this is what makes mutation testing of
/// the loops fast).
pub struct MockSock {
    // The script.
    readable: RefCell<VecDeque<u8>>,
    drained: Drained,
    trickle: usize,
    recv_at_most: Option<usize>,
    arriving: RefCell<VecDeque<Vec<u8>>>,
    peek_errors: RefCell<VecDeque<io::Error>>,
    recv_error: Option<(usize, i32)>,
    sends: RefCell<VecDeque<io::Result<usize>>>,
    overclaims: bool,
    wait_error: Option<i32>,
    interrupt_on_wait: Option<usize>,
    terminator: Option<u8>,
    /// The interrupt to pass to the algorithms; the mock sets it during the wait given to
    /// [`interrupt_on_wait`](MockSock::interrupt_on_wait).
    pub interrupt: ThreadInterrupt,
    // What happened.
    sent: RefCell<Vec<u8>>,
    send_calls: Cell<usize>,
    peek_requests: RefCell<Vec<usize>>,
    recv_requests: RefCell<Vec<usize>>,
    waits: RefCell<Vec<Duration>>,
    calls: Cell<usize>,
    start: Instant,
    elapsed: Cell<Duration>,
}

/// How many calls (`send`, `recv`, `peek`, `wait`, and `now`) a [`MockSock`] answers before it
/// declares the operation endless. Far above what any scripted test needs (the longest make a
/// few hundred calls).
pub const MOCK_CALL_LIMIT: usize = 10_000;

/// Counts one primitive call of a scripted mock and panics past [`MOCK_CALL_LIMIT`]: the
/// script ran out and the operation under test kept calling instead of finishing.
#[track_caller]
pub fn count_mock_call(calls: &Cell<usize>, what: &str) {
    let n = calls.get() + 1;
    calls.set(n);
    assert!(
        n <= MOCK_CALL_LIMIT,
        "mock script exhausted: {what} is call {n}, past the limit of {MOCK_CALL_LIMIT}; \
         the operation loops without end"
    );
}

impl MockSock {
    /// A mock with nothing to read (reads would block) and a peer that takes no data.
    pub fn new() -> MockSock {
        MockSock {
            readable: RefCell::default(),
            drained: Drained::Open,
            trickle: usize::MAX,
            recv_at_most: None,
            arriving: RefCell::default(),
            peek_errors: RefCell::default(),
            recv_error: None,
            sends: RefCell::default(),
            overclaims: false,
            wait_error: None,
            interrupt_on_wait: None,
            terminator: None,
            interrupt: ThreadInterrupt::new(),
            sent: RefCell::default(),
            send_calls: Cell::new(0),
            peek_requests: RefCell::default(),
            recv_requests: RefCell::default(),
            waits: RefCell::default(),
            calls: Cell::new(0),
            start: Instant::now(),
            elapsed: Cell::new(Duration::ZERO),
        }
    }

    /// Bytes readable from the start.
    pub fn data(self, bytes: &[u8]) -> MockSock {
        self.readable.borrow_mut().extend(bytes);
        self
    }

    /// What reads give once the readable bytes are used up.
    pub fn then(mut self, drained: Drained) -> MockSock {
        self.drained = drained;
        self
    }

    /// Each `peek` and `recv` returns at most `bytes` bytes.
    pub fn trickle(mut self, bytes: usize) -> MockSock {
        self.trickle = bytes;
        self
    }

    /// `recv` returns at most `bytes` bytes, whatever the peek before it said.
    pub fn recv_at_most(mut self, bytes: usize) -> MockSock {
        self.recv_at_most = Some(bytes);
        self
    }

    /// `bytes` become readable during the next `wait` for `RECV` that finds nothing queued
    /// before them.
    pub fn arriving(self, bytes: &[u8]) -> MockSock {
        self.arriving.borrow_mut().push_back(bytes.to_vec());
        self
    }

    /// The next peek fails with the raw OS error `code` (one peek per call of this).
    pub fn peek_error(self, code: i32) -> MockSock {
        self.peek_errors
            .borrow_mut()
            .push_back(io::Error::from_raw_os_error(code));
        self
    }

    /// The `nth` `recv` (counting from 1) fails with the raw OS error `code`, even where the
    /// peek before it found bytes: a reset between the two.
    pub fn recv_fails_on(mut self, nth: usize, code: i32) -> MockSock {
        self.recv_error = Some((nth, code));
        self
    }

    /// The results of the next sends, in order.
    pub fn sends(self, results: impl IntoIterator<Item = io::Result<usize>>) -> MockSock {
        self.sends.borrow_mut().extend(results);
        self
    }

    /// A scripted `Ok(n)` send returns `n` even when it was given fewer bytes (a broken
    /// `send`); it still takes only what it was given.
    pub fn overclaiming_sends(mut self) -> MockSock {
        self.overclaims = true;
        self
    }

    /// Every `wait` fails with the raw OS error `code`.
    pub fn wait_error(mut self, code: i32) -> MockSock {
        self.wait_error = Some(code);
        self
    }

    /// The mock sets [`interrupt`](MockSock::interrupt) during its `nth` wait (counting from 1).
    pub fn interrupt_on_wait(mut self, nth: usize) -> MockSock {
        self.interrupt_on_wait = Some(nth);
        self
    }

    /// `recv` asserts that it is never asked for a byte after the first `terminator`.
    pub fn terminator(mut self, terminator: u8) -> MockSock {
        self.terminator = Some(terminator);
        self
    }

    /// The bytes `send` took, in order.
    pub fn sent(&self) -> Vec<u8> {
        self.sent.borrow().clone()
    }

    /// How many times `send` was called.
    pub fn send_calls(&self) -> usize {
        self.send_calls.get()
    }

    /// The buffer lengths `peek` was called with.
    pub fn peek_requests(&self) -> Vec<usize> {
        self.peek_requests.borrow().clone()
    }

    /// The buffer lengths `recv` was called with.
    pub fn recv_requests(&self) -> Vec<usize> {
        self.recv_requests.borrow().clone()
    }

    /// The timeouts `wait` was called with.
    pub fn waits(&self) -> Vec<Duration> {
        self.waits.borrow().clone()
    }

    /// The bytes still readable (not consumed by `recv`).
    pub fn unread(&self) -> Vec<u8> {
        self.readable.borrow().iter().copied().collect()
    }

    /// How far the fake clock has moved.
    pub fn elapsed(&self) -> Duration {
        self.elapsed.get()
    }

    /// The bytes a read of `len` would return now (`None` when drained).
    fn readable_now(&self, len: usize) -> Option<Vec<u8>> {
        let readable = self.readable.borrow();
        if readable.is_empty() {
            return None;
        }
        Some(
            readable
                .iter()
                .copied()
                .take(len.min(self.trickle))
                .collect(),
        )
    }

    fn drained_result(&self) -> io::Result<usize> {
        match self.drained {
            Drained::Open => Err(io::ErrorKind::WouldBlock.into()),
            Drained::Eof => Ok(0),
            Drained::Error(code) => Err(io::Error::from_raw_os_error(code)),
        }
    }
}

impl Default for MockSock {
    fn default() -> MockSock {
        MockSock::new()
    }
}

impl SockIo for MockSock {
    fn send(&self, data: &[u8]) -> io::Result<usize> {
        count_mock_call(&self.calls, "send");
        self.send_calls.set(self.send_calls.get() + 1);
        match self.sends.borrow_mut().pop_front() {
            Some(Ok(n)) => {
                let taken = n.min(data.len());
                self.sent.borrow_mut().extend_from_slice(&data[..taken]);
                Ok(if self.overclaims { n } else { taken })
            }
            Some(Err(e)) => Err(e),
            None => Err(io::ErrorKind::WouldBlock.into()),
        }
    }

    fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        count_mock_call(&self.calls, "recv");
        self.recv_requests.borrow_mut().push(buf.len());
        if let Some(terminator) = self.terminator {
            if let Some(pos) = self.readable.borrow().iter().position(|&b| b == terminator) {
                assert!(
                    buf.len() <= pos + 1,
                    "recv asked for {} bytes, past the terminator at offset {pos}",
                    buf.len()
                );
            }
        }
        if let Some((nth, code)) = self.recv_error {
            if self.recv_requests.borrow().len() == nth {
                return Err(io::Error::from_raw_os_error(code));
            }
        }
        let limit = buf.len().min(self.recv_at_most.unwrap_or(usize::MAX));
        let Some(bytes) = self.readable_now(limit) else {
            return self.drained_result();
        };
        buf[..bytes.len()].copy_from_slice(&bytes);
        self.readable.borrow_mut().drain(..bytes.len());
        Ok(bytes.len())
    }

    fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        count_mock_call(&self.calls, "peek");
        self.peek_requests.borrow_mut().push(buf.len());
        if let Some(error) = self.peek_errors.borrow_mut().pop_front() {
            return Err(error);
        }
        let Some(bytes) = self.readable_now(buf.len()) else {
            return self.drained_result();
        };
        buf[..bytes.len()].copy_from_slice(&bytes);
        Ok(bytes.len())
    }

    fn wait(&self, timeout: Duration, requested: SockEvent) -> io::Result<SockEvent> {
        count_mock_call(&self.calls, "wait");
        self.waits.borrow_mut().push(timeout);
        if self.interrupt_on_wait == Some(self.waits.borrow().len()) {
            self.interrupt.interrupt();
        }
        if let Some(code) = self.wait_error {
            return Err(io::Error::from_raw_os_error(code));
        }
        if requested.contains(SockEvent::RECV) {
            if let Some(bytes) = self.arriving.borrow_mut().pop_front() {
                self.readable.borrow_mut().extend(bytes);
                return Ok(SockEvent::RECV);
            }
        }
        self.elapsed.set(self.elapsed.get().saturating_add(timeout));
        Ok(SockEvent::empty())
    }

    fn now(&self) -> Instant {
        // Counted too: a loop that checks its deadline without ever waiting (a layer above
        // that answers `wait` itself, say) sees this clock stand still, and would spin for ever.
        count_mock_call(&self.calls, "now");
        // A fake clock far from overflow: tests move it at most a few hours.
        self.start + self.elapsed.get()
    }
}
