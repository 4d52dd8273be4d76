//! [`Sock`]: one owned TCP socket (or none), Core's `Sock` class.

use std::fmt;
use std::io::{self, IoSlice};
use std::net::{Shutdown, SocketAddr};
use std::time::{Duration, Instant};

use crate::error::not_connected;
use crate::sys;
use crate::{Events, OpError, SockAddress, SockError, SockEvent};

/// The backend's owned socket, as [`Sock::get`] lends it and [`Sock::release`] returns it:
/// natively a [`socket2::Socket`](https://docs.rs/socket2), on WASI preview 2 the crate's
/// wrapper of a `wasi:sockets/tcp` socket and its streams.
///
/// Natively this type, and every item that takes or gives it, follows `socket2`'s version
/// (0.6): they come with the cargo feature `socket2` (on by default). std's traits are the
/// route that follows no dependency: `From<OwnedFd>`, `TryFrom<Sock> for OwnedFd`,
/// `Sock::borrow_fd` and the raw-descriptor traits (the `OwnedSocket` family on Windows),
/// and `From` std's `TcpStream`, `TcpListener`, `UnixStream`, `UnixListener`.
#[cfg(any(feature = "socket2", target_family = "wasm"))]
pub type OsSocket = sys::Socket;

/// One stream socket (TCP, or natively on Unix a Unix-domain one), owned, or none: Core's `Sock`.
///
/// The socket is closed when the `Sock` is dropped, [`reset`](Sock::reset) or replaced, exactly
/// once. [`Sock::default()`] holds no socket (Core's `INVALID_SOCKET`); every operation on it
/// fails with an [`io::ErrorKind::NotConnected`] error, `"not connected"`.
///
/// Core's move constructor and move assignment are Rust moves: `let b = std::mem::take(&mut a)`
/// leaves `a` invalid, and `*target = source` (or [`std::mem::replace`]) closes the target's old
/// socket.
///
/// Sockets made by this crate ([`connect`](Sock::connect), [`bind`](Sock::bind),
/// [`accept`](Sock::accept)) are non-blocking from birth, like Core's `CreateSock`, and adopted
/// ones are made non-blocking by [`Sock::adopt`] (which reports a refusal) or `Sock::from`
/// (which cannot), so timeouts work.
///
/// The primitives ([`send`](Sock::send), [`recv`](Sock::recv), [`peek`](Sock::peek),
/// [`wait`](Sock::wait)) are inherent methods; the high-level operations come with the
/// [`SockIo`](crate::SockIo) trait.
#[derive(Default)]
pub struct Sock {
    socket: Option<sys::Socket>,
}

impl Sock {
    /// Connects to `addr` within `timeout`: Core's `ConnectSocketDirectly`.
    ///
    /// Makes a non-blocking TCP socket (with `TCP_NODELAY` where the host has it, as Core
    /// does), starts the connect, waits for [`SockEvent::SEND`] up to `timeout`, then checks the
    /// socket's pending error.
    ///
    /// # Errors
    /// [`SockError::ConnectTimeout`] when `timeout` passes first; [`SockError::Connect`] when the
    /// attempt fails, its [`io::Error`] saying how (`ConnectionRefused`, `HostUnreachable`,
    /// ...). A WASI host that allows no network answers `PermissionDenied`, and the text says
    /// so and what grants it: `connect() to 127.0.0.1:8333 failed: Permission denied (2); the
    /// WASI host refused network access (wasmtime run grants it with -S inherit-network=y)`.
    ///
    /// ```no_run
    /// use bitcoin_sock::Sock;
    /// use std::time::Duration;
    ///
    /// let sock = Sock::connect("127.0.0.1:8333".parse()?, Duration::from_secs(5))?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn connect(addr: SocketAddr, timeout: Duration) -> Result<Sock, SockError> {
        let fail = |source| SockError::Connect {
            addr: SockAddress::Ip(addr),
            source,
        };
        let sock = Sock::from_os(sys::connect_start(&addr).map_err(fail)?);
        let occurred = sock.wait(timeout, SockEvent::SEND).map_err(fail)?;
        if occurred.is_empty() {
            return Err(SockError::ConnectTimeout {
                addr: SockAddress::Ip(addr),
                timeout,
            });
        }
        sock.try_get().and_then(sys::connect_finish).map_err(fail)?;
        Ok(sock)
    }

    /// A new non-blocking TCP socket bound to `addr` (Core's `Bind`), with Core's listening
    /// options (`SO_REUSEADDR` except on Windows, `IPV6_V6ONLY` for IPv6). Port 0 picks a free
    /// port; [`local_addr`](Sock::local_addr) tells which.
    ///
    /// # Errors
    /// An [`OpError`] that names the operation and `addr` (`bind() to 127.0.0.1:8333 failed:
    /// ...`) around the OS error of creating or binding the socket, whose kind and code it
    /// gives (e.g. `AddrInUse`, or `PermissionDenied` where the host does not allow the
    /// address). On WASI a refusal goes on to say that the WASI host refused network access
    /// and that `wasmtime run -S inherit-network=y` grants it.
    pub fn bind(addr: SocketAddr) -> Result<Sock, OpError> {
        sys::bind(&addr)
            .map(Sock::from_os)
            .map_err(|err| OpError::new("bind", "to", addr.to_string(), err))
    }

    /// Starts listening for connections (Core's `Listen`).
    ///
    /// # Errors
    /// An [`OpError`] that names the operation and the local address (`listen() on
    /// 127.0.0.1:8333 failed: ...`) around the OS error (`PermissionDenied` where the host does
    /// not allow listening there, on WASI with the text of [`bind`](Sock::bind)'s refusal), or
    /// `NotConnected` (`not connected`, as every call's) on the invalid sock.
    pub fn listen(&self, backlog: i32) -> Result<(), OpError> {
        let socket = self
            .try_get()
            .map_err(|_| OpError::on_invalid_sock("listen"))?;
        // Asked first: a host may close the socket when it refuses the listen (wasmtime does).
        let local = sys::local_address(socket);
        sys::listen(socket, backlog).map_err(|err| {
            let target = match local {
                Ok(addr) => addr.to_string(),
                Err(_) => "an unbound socket".to_string(),
            };
            OpError::new("listen", "on", target, err)
        })
    }

    /// [`bind`](Sock::bind) then [`listen`](Sock::listen): a listening sock on `addr`.
    ///
    /// # Errors
    /// The [`OpError`] of either step.
    ///
    /// ```
    /// use bitcoin_sock::Sock;
    ///
    /// let listener = Sock::bind_listen("127.0.0.1:0".parse()?, 128)?;
    /// assert_ne!(listener.local_addr()?.port(), 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn bind_listen(addr: SocketAddr, backlog: i32) -> Result<Sock, OpError> {
        let sock = Sock::bind(addr)?;
        sock.listen(backlog)?;
        Ok(sock)
    }

    /// Accepts a pending connection (Core's `Accept`); the new sock is non-blocking and has
    /// `TCP_NODELAY` where the host has it.
    ///
    /// # Errors
    /// `WouldBlock` when no connection is pending (wait for [`SockEvent::RECV`] first); other OS
    /// errors; `NotConnected` on the invalid sock. On a Unix-domain listener, whose peers have
    /// no IP address, `InvalidInput` before any connection is taken:
    /// [`accept_address`](Sock::accept_address) accepts there.
    pub fn accept(&self) -> io::Result<(Sock, SocketAddr)> {
        let (socket, addr) = sys::accept(self.try_get()?)?;
        Ok((Sock::from_os(socket), addr))
    }

    /// The local address (Core's `GetSockName`).
    ///
    /// # Errors
    /// The OS error; `NotConnected` on the invalid sock; `InvalidInput` on a Unix-domain sock
    /// ([`local_address`](Sock::local_address) gives any address).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        sys::local_addr(self.try_get()?)
    }

    /// The peer's address (`getpeername(2)`).
    ///
    /// # Errors
    /// `NotConnected` when there is no peer or no socket; other OS errors; `InvalidInput` on a
    /// Unix-domain sock ([`peer_address`](Sock::peer_address) gives any address).
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        sys::peer_addr(self.try_get()?)
    }

    /// Puts the socket in non-blocking mode (Core's `SetNonBlocking`). Socks made or adopted
    /// by this crate already are; this exists for sockets whose mode was changed through
    /// [`get`](Sock::get).
    ///
    /// # Errors
    /// The OS error; `NotConnected` on the invalid sock.
    pub fn set_non_blocking(&self) -> io::Result<()> {
        sys::set_non_blocking(self.try_get()?)
    }

    /// Whether [`wait`](Sock::wait) can watch this socket (Core's `IsSelectable`). True for
    /// every valid sock here: there is no `select`, so no `FD_SETSIZE` limit. False for the
    /// invalid sock.
    pub fn is_selectable(&self) -> bool {
        self.socket().is_some_and(sys::is_selectable)
    }

    /// Shuts down the sending half (Core's `ShutdownSend`): the peer reads end of stream.
    ///
    /// # Errors
    /// The OS error; `NotConnected` on the invalid sock.
    pub fn shutdown_send(&self) -> io::Result<()> {
        self.shutdown(Shutdown::Write)
    }

    /// Shuts down one or both halves (`shutdown(2)`).
    ///
    /// # Errors
    /// The OS error; `NotConnected` on the invalid sock.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        sys::shutdown(self.try_get()?, how)
    }

    /// Sends as much of `data` as the socket takes now (Core's `Send`, with `MSG_NOSIGNAL`:
    /// never raises `SIGPIPE`).
    ///
    /// # Errors
    /// `WouldBlock` when the send buffer is full; the OS error otherwise (a closed peer gives
    /// `BrokenPipe` or `ConnectionReset`); `NotConnected` on the invalid sock.
    pub fn send(&self, data: &[u8]) -> io::Result<usize> {
        sys::send(self.try_get()?, data)
    }

    /// Sends as much of `bufs`, in order, as the socket takes now, in one call where the host
    /// has one (`sendmsg(2)`, `WSASend`; Rust's `Write::write_vectored`): a ring buffer's two
    /// halves, or a header and its payload, without copying them together. WASI 0.2 streams
    /// write one buffer per call: there it sends from the first non-empty buffer, as std's
    /// default `write_vectored` does, and a caller loops as for any partial send.
    ///
    /// # Errors
    /// As [`send`](Sock::send). `Ok(0)` only when every buffer is empty.
    ///
    /// ```
    /// # bitcoin_sock::wasip3_main!(); // WASI 0.3: `main` entered where sockets may wait
    /// use bitcoin_sock::{Sock, SockEvent};
    /// use std::io::IoSlice;
    /// use std::time::Duration;
    ///
    /// let listener = Sock::bind_listen("127.0.0.1:0".parse()?, 8)?;
    /// let client = Sock::connect(listener.local_addr()?, Duration::from_secs(5))?;
    /// let sent = client.send_vectored(&[IoSlice::new(b"head"), IoSlice::new(b"payload")])?;
    /// assert!(sent >= 4); // all 11 bytes natively; at least the first buffer everywhere
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn send_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        sys::send_vectored(self.try_get()?, bufs)
    }

    /// Receives into `buf` (Core's `Recv`); `Ok(0)` means the peer closed (or `buf` is empty).
    ///
    /// # Errors
    /// `WouldBlock` when nothing has arrived; the OS error otherwise; `NotConnected` on the
    /// invalid sock.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        sys::recv(self.try_get()?, buf)
    }

    /// Like [`recv`](Sock::recv), but the bytes stay for the next `recv` (Core's
    /// `Recv(MSG_PEEK)`; on WASI a read-ahead buffer inside the sock).
    ///
    /// # Errors
    /// As [`recv`](Sock::recv).
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        sys::peek(self.try_get()?, buf)
    }

    /// Waits up to `timeout` for any of `requested` (Core's `Wait`). Returns the events that
    /// occurred: empty on timeout; [`SockEvent::RECV`] when data or end of stream is ready
    /// (also when the peer hung up: a `recv` returns at once); [`SockEvent::ERR`] whenever the
    /// socket is in error or hung up, requested or not.
    ///
    /// # Errors
    /// `NotConnected` on the invalid sock (Core would sleep out the timeout); the OS error of
    /// the wait. `EINTR` is retried with the time left.
    pub fn wait(&self, timeout: Duration, requested: SockEvent) -> io::Result<SockEvent> {
        let mut entry = [(self, Events::new(requested))];
        Sock::wait_many(timeout, &mut entry)?;
        Ok(entry[0].1.occurred)
    }

    /// Waits up to `timeout` until any of `socks` has any of its requested events (Core's
    /// `WaitMany`), with one system wait (`poll(2)`, `WSAPoll`, or one `wasi:io/poll.poll`).
    /// Fills every entry's `occurred` and returns how many entries have some: zero on timeout.
    /// An empty `socks` sleeps out the timeout (as `poll(2)` does; `WSAPoll` would refuse it);
    /// a sock listed twice gets each entry answered for its own `requested`.
    ///
    /// The socks are borrowed for the call, so none can be closed (and its descriptor reused)
    /// while the wait runs (Core's issue #21744).
    ///
    /// # Errors
    /// `NotConnected` if any sock is invalid (nothing is waited for); the OS error of the wait.
    ///
    /// ```
    /// # bitcoin_sock::wasip3_main!(); // WASI 0.3: `main` entered where sockets may wait
    /// use bitcoin_sock::{Events, Sock, SockEvent};
    /// use std::time::Duration;
    ///
    /// let listener = Sock::bind_listen("127.0.0.1:0".parse()?, 8)?;
    /// let client = Sock::connect(listener.local_addr()?, Duration::from_secs(5))?;
    /// let mut socks = [
    ///     (&listener, Events::new(SockEvent::RECV)),
    ///     (&client, Events::new(SockEvent::RECV)),
    /// ];
    /// assert_eq!(Sock::wait_many(Duration::from_secs(5), &mut socks)?, 1);
    /// assert_eq!(socks[0].1.occurred, SockEvent::RECV); // the connection waits to be accepted
    /// assert!(socks[1].1.occurred.is_empty()); // nothing to read yet
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn wait_many(timeout: Duration, socks: &mut [(&Sock, Events)]) -> io::Result<usize> {
        for (sock, events) in socks.iter_mut() {
            events.occurred = SockEvent::empty();
            if !sock.is_valid() {
                return Err(not_connected());
            }
        }
        if !cfg!(sockets) {
            // No socket backend, so no valid sock: only an empty list gets here, and the
            // backend answers Unsupported before any clock is read (a host may have none:
            // wasm32-unknown-unknown).
            return sys::poll(socks, timeout).map(|()| 0);
        }
        // `None`: a deadline past what Instant can hold, i.e. never.
        let deadline = Instant::now().checked_add(timeout);
        let mut left = timeout;
        loop {
            match sys::poll(socks, left) {
                Ok(()) => {
                    let ready = socks
                        .iter()
                        .filter(|(_, events)| !events.occurred.is_empty())
                        .count();
                    if ready > 0 {
                        return Ok(ready);
                    }
                    // Nothing yet: done unless the backend capped a huge timeout.
                }
                // EINTR: Core gives up here; retry with the time left.
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
            if let Some(deadline) = deadline {
                left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Ok(0);
                }
            }
        }
    }

    /// A second sock for the same socket (`dup(2)`; std's `TcpStream::try_clone`): both send
    /// and receive on the one connection, and it stays open until both are closed. A reset
    /// through either ([`set_linger`](Sock::set_linger) zero) applies to both. Not for sharing a sock
    /// between threads: `Sock` is `Sync`, so lend `&Sock` instead.
    ///
    /// # Errors
    /// The OS error (e.g. out of descriptors); `Unsupported` where the host cannot duplicate
    /// a socket (WASI 0.2); `NotConnected` on the invalid sock.
    pub fn try_clone(&self) -> io::Result<Sock> {
        sys::try_clone(self.try_get()?).map(Sock::from_os)
    }

    /// Whether the sock holds a socket (Core: `Get() != INVALID_SOCKET`).
    pub fn is_valid(&self) -> bool {
        self.socket.is_some()
    }

    /// The socket, lent (Core's `Get`); `None` for the invalid sock. Natively this is a
    /// `socket2::Socket` (feature `socket2`, which follows socket2's version: [`OsSocket`]),
    /// which gives every option socket2 knows; `borrow_fd` (Unix) lends std's
    /// `BorrowedFd` without it.
    #[cfg(any(feature = "socket2", target_family = "wasm"))]
    pub fn get(&self) -> Option<&OsSocket> {
        self.socket()
    }

    /// Gives up the socket without closing it (Core's `Release`); the sock becomes invalid.
    /// Natively a `socket2::Socket` (feature `socket2`: [`OsSocket`]); `OwnedFd::try_from`
    /// gives std's type without it.
    #[cfg(any(feature = "socket2", target_family = "wasm"))]
    pub fn release(&mut self) -> Option<OsSocket> {
        self.take_socket()
    }

    /// Closes the socket now (Core's `Reset`); the sock becomes invalid. Does nothing on the
    /// invalid sock.
    pub fn reset(&mut self) {
        self.socket = None;
    }

    pub(crate) fn from_os(socket: sys::Socket) -> Sock {
        Sock {
            socket: Some(socket),
        }
    }

    /// The backend's socket, lent; `None` for the invalid sock.
    pub(crate) fn socket(&self) -> Option<&sys::Socket> {
        self.socket.as_ref()
    }

    /// The backend's socket, given up; the sock becomes invalid.
    pub(crate) fn take_socket(&mut self) -> Option<sys::Socket> {
        self.socket.take()
    }

    /// [`socket`](Sock::socket), or the `NotConnected` error every operation on the invalid
    /// sock gives.
    pub(crate) fn try_get(&self) -> io::Result<&sys::Socket> {
        self.socket().ok_or_else(not_connected)
    }

    /// Adopts `socket` as [`Sock::adopt`] does, without its error: should the OS refuse to
    /// make the socket non-blocking (in practice only a handle that is no socket, or a closed
    /// one), the sock holds it as it is, and a blocking socket's calls are not bounded by any
    /// timeout.
    #[cfg_attr(not(sockets), allow(dead_code))] // nothing to adopt without sockets
    pub(crate) fn adopt_quietly(socket: sys::Socket) -> Sock {
        let _ = sys::adopt(&socket);
        Sock::from_os(socket)
    }
}

#[cfg(any(feature = "socket2", target_family = "wasm"))]
impl From<OsSocket> for Sock {
    /// Adopts `socket` as [`Sock::adopt`] does, without its error: should the OS refuse to
    /// make the socket non-blocking (in practice only a handle that is no socket, or a closed
    /// one), the sock holds it as it is, and a blocking socket's calls are not bounded by any
    /// timeout. Use [`Sock::adopt`] where that must not pass silently.
    fn from(socket: OsSocket) -> Sock {
        Sock::adopt_quietly(socket)
    }
}

#[cfg(any(feature = "socket2", target_family = "wasm"))]
impl Sock {
    /// Adopts a socket made elsewhere (Core's `Sock(SOCKET)` constructor) and makes it behave
    /// like one this crate made: non-blocking (Core's timeouts silently stop working on
    /// blocking sockets; `fcntl(2)` / `ioctlsocket(FIONBIO)`), and on Apple without
    /// `SIGPIPE` (`SO_NOSIGPIPE`). On WASI every socket is non-blocking already.
    ///
    /// `socket` is the backend's socket ([`OsSocket`]): natively a `socket2::Socket` (feature
    /// `socket2`), which std's `TcpStream`, `TcpListener` and owned descriptors convert into.
    /// Without socket2: `Sock::from(owned_fd)`, then [`set_non_blocking`](Sock::set_non_blocking)
    /// reports what this reports.
    ///
    /// # Errors
    /// The OS error of either step (both are tried); the socket is closed then.
    ///
    /// ```
    /// # #[cfg(not(target_family = "wasm"))] {
    /// use bitcoin_sock::Sock;
    ///
    /// let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    /// let sock = Sock::adopt(socket2::Socket::from(listener))?;
    /// // Non-blocking: nothing is pending, so accept says so instead of blocking.
    /// let err = sock.accept().unwrap_err();
    /// assert_eq!(err.kind(), std::io::ErrorKind::WouldBlock);
    /// # }
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn adopt(socket: OsSocket) -> io::Result<Sock> {
        sys::adopt(&socket)?;
        Ok(Sock::from_os(socket))
    }
}

impl fmt::Debug for Sock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.socket {
            Some(socket) => f.debug_tuple("Sock").field(socket).finish(),
            None => f.write_str("Sock(invalid)"),
        }
    }
}
