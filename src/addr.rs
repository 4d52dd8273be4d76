//! Socket addresses beyond IP: [`SockAddress`] is an IP address or a Unix-domain one
//! ([`UnixAddress`]): what Core's `CreateSock` connects to since it takes any domain, and what
//! its `-proxy=unix:<path>` names.
//!
//! Plain data on every target; only the native Unix backend can connect to or bind a
//! [`UnixAddress`] (elsewhere those calls fail with `ErrorKind::Unsupported`).

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::{sys, OpError, Sock, SockError};

/// The address of a sock: an IP socket address, or a Unix-domain socket address.
///
/// What [`Sock::local_address`](crate::Sock::local_address),
/// [`Sock::peer_address`](crate::Sock::peer_address) and
/// [`Sock::accept_address`](crate::Sock::accept_address) return, and what
/// [`Sock::connect_to`](crate::Sock::connect_to) and [`Sock::bind_to`](crate::Sock::bind_to)
/// take. Core keeps the two apart (a `CService`, or a proxy's `unix:` path); this type holds
/// either, so code that serves both needs one value.
///
/// `Display` prints an IP address as [`SocketAddr`] does and a Unix one as
/// [`UnixAddress`] does (`unix:/run/tor/socks`).
///
/// ```
/// use bitcoin_sock::{SockAddress, UnixAddress};
///
/// let tcp = SockAddress::from("127.0.0.1:9050".parse::<std::net::SocketAddr>()?);
/// let unix = SockAddress::from(UnixAddress::path("/run/tor/socks"));
/// assert_eq!(tcp.to_string(), "127.0.0.1:9050");
/// assert_eq!(unix.to_string(), "unix:/run/tor/socks");
/// assert_eq!(unix.as_unix(), Some(&UnixAddress::path("/run/tor/socks")));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// `#[non_exhaustive]`: a later version may add an address family (a match needs a `_` arm).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SockAddress {
    /// An IPv4 or IPv6 address and port (Core's `CService`).
    Ip(SocketAddr),
    /// A Unix-domain socket address (`AF_UNIX`).
    Unix(UnixAddress),
}

impl SockAddress {
    /// The IP address, if this is one.
    pub fn as_ip(&self) -> Option<SocketAddr> {
        match self {
            SockAddress::Ip(addr) => Some(*addr),
            SockAddress::Unix(_) => None,
        }
    }

    /// The Unix-domain address, if this is one.
    pub fn as_unix(&self) -> Option<&UnixAddress> {
        match self {
            SockAddress::Ip(_) => None,
            SockAddress::Unix(addr) => Some(addr),
        }
    }
}

impl From<SocketAddr> for SockAddress {
    fn from(addr: SocketAddr) -> SockAddress {
        SockAddress::Ip(addr)
    }
}

impl From<UnixAddress> for SockAddress {
    fn from(addr: UnixAddress) -> SockAddress {
        SockAddress::Unix(addr)
    }
}

impl fmt::Display for SockAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SockAddress::Ip(addr) => addr.fmt(f),
            SockAddress::Unix(addr) => addr.fmt(f),
        }
    }
}

/// A Unix-domain socket address (`sockaddr_un`): a filesystem path, a name in Linux's abstract
/// namespace, or none.
///
/// A path must fit in `sun_path` with its terminating NUL (at most 107 bytes on Linux, 103 on
/// macOS and the BSDs) and contain no NUL byte; the calls that use it check, and fail with
/// `ErrorKind::InvalidInput` instead of truncating (Core's `Proxy::Connect` truncates; its
/// `IsUnixSocketPath` rejects such paths when reading the configuration). An abstract name may
/// hold any bytes, at most 107 of them, and exists on Linux and Android only.
///
/// `Display` prints `unix:<path>` (Core's `-proxy=unix:` form), `unix:@<name>` for an
/// abstract name (its bytes escaped as ASCII) and `unix:(unnamed)`.
///
/// ```
/// use bitcoin_sock::UnixAddress;
///
/// assert_eq!(UnixAddress::path("/run/tor/socks").to_string(), "unix:/run/tor/socks");
/// assert_eq!(UnixAddress::abstract_name("bitcoind").to_string(), "unix:@bitcoind");
/// assert_eq!(UnixAddress::Unnamed.to_string(), "unix:(unnamed)");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum UnixAddress {
    /// A socket file at this path: what Tor's `SocksPort unix:/run/tor/socks` creates.
    Path(PathBuf),
    /// A name in Linux's abstract namespace (`sun_path` starting with a NUL byte; the name is
    /// what follows it). No file exists; the name goes away with the last socket bound to it.
    Abstract(Vec<u8>),
    /// No address: a socket that is not bound, e.g. the client end of a connection, as its
    /// peer sees it.
    Unnamed,
}

impl UnixAddress {
    /// A filesystem path.
    pub fn path(path: impl Into<PathBuf>) -> UnixAddress {
        UnixAddress::Path(path.into())
    }

    /// A name in Linux's abstract namespace.
    pub fn abstract_name(name: impl Into<Vec<u8>>) -> UnixAddress {
        UnixAddress::Abstract(name.into())
    }

    /// The path, if this is one.
    pub fn as_path(&self) -> Option<&Path> {
        match self {
            UnixAddress::Path(path) => Some(path),
            _ => None,
        }
    }
}

impl From<PathBuf> for UnixAddress {
    fn from(path: PathBuf) -> UnixAddress {
        UnixAddress::Path(path)
    }
}

impl From<&Path> for UnixAddress {
    fn from(path: &Path) -> UnixAddress {
        UnixAddress::Path(path.to_owned())
    }
}

impl fmt::Display for UnixAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UnixAddress::Path(path) => write!(f, "unix:{}", path.display()),
            UnixAddress::Abstract(name) => write!(f, "unix:@{}", name.escape_ascii()),
            UnixAddress::Unnamed => f.write_str("unix:(unnamed)"),
        }
    }
}

/// The calls that take or give addresses beyond IP. Unix-domain sockets are native Unix only:
/// on Windows, WASI and targets without sockets [`connect_unix`](Sock::connect_unix) and
/// [`bind_unix`](Sock::bind_unix) fail with [`io::ErrorKind::Unsupported`], and the address
/// calls give [`SockAddress::Ip`].
///
/// A Unix-domain sock is the same `Sock`: the same primitives, events, errors and
/// high-level operations as a TCP one (a peer's end of stream is [`SockEvent::RECV`] and a
/// `recv` of 0, a send to a closed peer is `BrokenPipe` without `SIGPIPE`). TCP's options
/// (`TCP_NODELAY`, the TTL) fail on it with the OS error.
///
/// [`SockEvent::RECV`]: crate::SockEvent::RECV
impl Sock {
    /// Connects to the Unix-domain socket at `addr` within `timeout` (Core's `Proxy::Connect`
    /// for a `unix:` proxy, `CreateSock(AF_UNIX, SOCK_STREAM, 0)` + `ConnectToSocket`):
    /// `socket(AF_UNIX, SOCK_STREAM)` + `connect(2)`. The sock is non-blocking.
    ///
    /// A connect to a listening socket is immediate, unless (on Linux) its backlog is full:
    /// then it waits up to `timeout` for the listener to accept (Linux gives no event for
    /// that, so this waits in the kernel, `SO_SNDTIMEO` bounding a blocking `connect(2)`;
    /// a zero `timeout` makes one non-blocking attempt). A path that does not fit in
    /// `sun_path` is rejected, never truncated.
    ///
    /// # Errors
    /// [`SockError::ConnectTimeout`] when `timeout` passes first (only Linux waits for room in a
    /// full backlog; elsewhere that is refused); [`SockError::Connect`] when the attempt fails,
    /// its [`io::Error`] saying how:
    /// `NotFound` (no such path), `ConnectionRefused` (nothing listens there, or it is not a
    /// socket), `PermissionDenied` (no write permission on the socket file, or no search
    /// permission on a directory above it), `InvalidInput` (an empty path, a NUL byte in it,
    /// too long for `sun_path`, or [`UnixAddress::Unnamed`]), `Unsupported` (no Unix-domain
    /// sockets on this host, or an abstract name off Linux).
    ///
    /// ```no_run
    /// use bitcoin_sock::{Sock, UnixAddress};
    /// use std::time::Duration;
    ///
    /// let sock = Sock::connect_unix(&UnixAddress::path("/run/tor/socks"), Duration::from_secs(5))?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn connect_unix(addr: &UnixAddress, timeout: Duration) -> Result<Sock, SockError> {
        // A host without sockets answers before any clock is read (wasm32-unknown-unknown has
        // none); elsewhere the connect may wait, so the deadline starts now.
        let deadline = cfg!(sockets)
            .then(|| Instant::now().checked_add(timeout))
            .flatten();
        let mut left = timeout;
        loop {
            match sys::connect_unix(addr, left) {
                Ok(socket) => return Ok(Sock::from_os(socket)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                // A signal cut the wait short: Core would give up; wait for the time left.
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                    if let Some(deadline) = deadline {
                        left = deadline.saturating_duration_since(Instant::now());
                        if left.is_zero() {
                            break;
                        }
                    }
                }
                Err(source) => {
                    return Err(SockError::Connect {
                        addr: SockAddress::Unix(addr.clone()),
                        source,
                    })
                }
            }
        }
        Err(SockError::ConnectTimeout {
            addr: SockAddress::Unix(addr.clone()),
            timeout,
        })
    }

    /// Connects to `addr`, IP ([`Sock::connect`]) or Unix-domain ([`Sock::connect_unix`]),
    /// within `timeout`: Core's `ConnectDirectly` or `Proxy::Connect`, whichever `addr` is.
    ///
    /// # Errors
    /// Those of [`Sock::connect`] or [`Sock::connect_unix`].
    pub fn connect_to(addr: &SockAddress, timeout: Duration) -> Result<Sock, SockError> {
        match addr {
            SockAddress::Ip(addr) => Sock::connect(*addr, timeout),
            SockAddress::Unix(addr) => Sock::connect_unix(addr, timeout),
        }
    }

    /// A new non-blocking Unix-domain stream socket bound to `addr`: `socket(AF_UNIX,
    /// SOCK_STREAM)` + `bind(2)`, which creates the socket file (a file mode of `0777`
    /// less the umask). Dropping the sock does not remove the file; remove it when done, as
    /// users of `std::os::unix::net::UnixListener` do.
    ///
    /// # Errors
    /// An [`OpError`] naming `addr` (`bind() to unix:/run/node.sock failed: ...`), as
    /// [`bind`](Sock::bind) gives, around the OS error: `AddrInUse` when the path exists
    /// (also a stale socket file: removing it is the caller's decision); `NotFound` /
    /// `PermissionDenied` for the directory; `InvalidInput` as for
    /// [`connect_unix`](Sock::connect_unix); `Unsupported` off native Unix.
    ///
    /// ```
    /// # #[cfg(unix)] {
    /// use bitcoin_sock::{Sock, SockAddress, SockEvent, UnixAddress};
    /// use std::time::Duration;
    ///
    /// let dir = std::env::temp_dir().join(format!("bitcoin-sock-doc-{}", std::process::id()));
    /// std::fs::create_dir_all(&dir)?;
    /// let path = UnixAddress::path(dir.join("node.sock"));
    /// let listener = Sock::bind_listen_unix(&path, 8)?;
    /// let client = Sock::connect_unix(&path, Duration::from_secs(5))?;
    /// listener.wait(Duration::from_secs(5), SockEvent::RECV)?;
    /// let (server, peer) = listener.accept_address()?;
    /// assert_eq!(peer, SockAddress::Unix(UnixAddress::Unnamed)); // the client did not bind
    /// assert_eq!(client.peer_address()?, SockAddress::Unix(path));
    /// # drop((listener, client, server));
    /// std::fs::remove_dir_all(&dir)?;
    /// # }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn bind_unix(addr: &UnixAddress) -> Result<Sock, OpError> {
        sys::bind_unix(addr)
            .map(Sock::from_os)
            .map_err(|err| OpError::new("bind", "to", addr.to_string(), err))
    }

    /// [`bind_unix`](Sock::bind_unix) then [`listen`](Sock::listen).
    ///
    /// # Errors
    /// The [`OpError`] of either step.
    pub fn bind_listen_unix(addr: &UnixAddress, backlog: i32) -> Result<Sock, OpError> {
        let sock = Sock::bind_unix(addr)?;
        sock.listen(backlog)?;
        Ok(sock)
    }

    /// Binds a new sock to `addr`, IP ([`Sock::bind`]) or Unix-domain
    /// ([`Sock::bind_unix`]).
    ///
    /// # Errors
    /// Those of [`Sock::bind`] or [`Sock::bind_unix`].
    pub fn bind_to(addr: &SockAddress) -> Result<Sock, OpError> {
        match addr {
            SockAddress::Ip(addr) => Sock::bind(*addr),
            SockAddress::Unix(addr) => Sock::bind_unix(addr),
        }
    }

    /// Accepts a pending connection on a listener of any family (Core's `Accept`, whose
    /// `sockaddr` may be any): like [`accept`](Sock::accept), with the peer's address as a
    /// [`SockAddress`]. A Unix-domain peer is usually [`UnixAddress::Unnamed`] (clients
    /// rarely bind).
    ///
    /// [`accept`](Sock::accept), whose address is a [`SocketAddr`], fails on a Unix-domain
    /// listener with `InvalidInput` before taking a connection, so none is lost.
    ///
    /// # Errors
    /// As [`accept`](Sock::accept): `WouldBlock` when no connection is pending.
    pub fn accept_address(&self) -> io::Result<(Sock, SockAddress)> {
        let (socket, addr) = sys::accept_address(self.try_get()?)?;
        Ok((Sock::from_os(socket), addr))
    }

    /// The local address of any family (`getsockname(2)`, Core's `GetSockName`): the path a
    /// Unix-domain listener is bound to, [`UnixAddress::Unnamed`] for a client that did not
    /// bind. [`local_addr`](Sock::local_addr) gives the IP address only, and `InvalidInput`
    /// on a Unix-domain sock.
    ///
    /// # Errors
    /// The OS error; `NotConnected` on the invalid sock.
    pub fn local_address(&self) -> io::Result<SockAddress> {
        sys::local_address(self.try_get()?)
    }

    /// The peer's address of any family (`getpeername(2)`); see
    /// [`local_address`](Sock::local_address).
    ///
    /// # Errors
    /// `NotConnected` when there is no peer or no socket; other OS errors.
    pub fn peer_address(&self) -> io::Result<SockAddress> {
        sys::peer_address(self.try_get()?)
    }
}
