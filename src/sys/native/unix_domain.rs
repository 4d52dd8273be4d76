//! Unix-domain sockets (`AF_UNIX`) natively on Unix: socket2's `Domain::UNIX`, with the
//! `sockaddr_un` checked here, so a path that does not fit is an error instead of being cut.

use std::io;
use std::mem::{offset_of, size_of};
use std::os::unix::ffi::OsStrExt;
use std::time::Duration;

use socket2::{Domain, SockAddr, Type};

use super::{adopt, Socket};
use crate::{SockAddress, UnixAddress};

/// The size of `sun_path`: 108 bytes on Linux, 104 on macOS and the BSDs. A path needs one
/// more byte than its length (the terminating NUL); an abstract name one for its leading NUL.
const SUN_PATH_LEN: usize =
    size_of::<libc::sockaddr_un>() - offset_of!(libc::sockaddr_un, sun_path);

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message)
}

/// The `sockaddr_un` for `addr`, or `InvalidInput` when it cannot be one exactly.
fn sockaddr(addr: &UnixAddress) -> io::Result<SockAddr> {
    match addr {
        UnixAddress::Path(path) => {
            let bytes = path.as_os_str().as_bytes();
            if bytes.is_empty() {
                return Err(invalid("empty Unix-domain socket path".to_owned()));
            }
            // The kernel reads a path up to its first NUL: a later part would be dropped.
            if bytes.contains(&0) {
                return Err(invalid(format!(
                    "Unix-domain socket path {} contains a NUL byte",
                    path.display()
                )));
            }
            if bytes.len() >= SUN_PATH_LEN {
                return Err(invalid(format!(
                    "Unix-domain socket path {} is {} bytes long; at most {} fit in sun_path",
                    path.display(),
                    bytes.len(),
                    SUN_PATH_LEN - 1
                )));
            }
            SockAddr::unix(path)
        }
        UnixAddress::Abstract(name) => abstract_sockaddr(name),
        UnixAddress::Unnamed => Err(invalid(
            "an unnamed Unix-domain address cannot be connected to or bound".to_owned(),
        )),
    }
}

/// Linux's abstract namespace: `sun_path` is a NUL byte followed by the name (which may hold
/// any bytes, NUL too), and the address length says where the name ends.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn abstract_sockaddr(name: &[u8]) -> io::Result<SockAddr> {
    if name.len() >= SUN_PATH_LEN {
        return Err(invalid(format!(
            "abstract Unix-domain socket name is {} bytes long; at most {} fit in sun_path",
            name.len(),
            SUN_PATH_LEN - 1
        )));
    }
    let mut path = Vec::with_capacity(1 + name.len());
    path.push(0);
    path.extend_from_slice(name);
    SockAddr::unix(std::ffi::OsStr::from_bytes(&path))
}

/// Only Linux and Android have the abstract namespace; elsewhere a leading NUL byte would be
/// an empty path.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn abstract_sockaddr(_name: &[u8]) -> io::Result<SockAddr> {
    Err(crate::error::unsupported(
        "the abstract Unix-domain socket namespace",
    ))
}

/// What socket2 read from `getsockname(2)`, `getpeername(2)` or `accept(2)`.
fn sock_address(addr: &SockAddr) -> io::Result<SockAddress> {
    if let Some(ip) = addr.as_socket() {
        return Ok(SockAddress::Ip(ip));
    }
    if !addr.is_unix() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "address family {} is neither IP nor Unix-domain",
                addr.family()
            ),
        ));
    }
    let unix = if let Some(path) = addr.as_pathname() {
        UnixAddress::Path(path.to_owned())
    } else if let Some(name) = addr.as_abstract_namespace() {
        UnixAddress::Abstract(name.to_owned())
    } else {
        UnixAddress::Unnamed
    };
    Ok(SockAddress::Unix(unix))
}

/// `socket(AF_UNIX, SOCK_STREAM)` + `connect(2)`, waiting at most `timeout` for room in the
/// listener's backlog where the OS waits at all. `WouldBlock` when there was none in time,
/// `Interrupted` when a signal cut the wait short; the socket is returned non-blocking.
pub(crate) fn connect_unix(addr: &UnixAddress, timeout: Duration) -> io::Result<Socket> {
    let addr = sockaddr(addr)?;
    // socket2 sets close-on-exec, and SO_NOSIGPIPE on Apple.
    let socket = Socket::new(Domain::UNIX, Type::STREAM, None)?;
    connect_within(&socket, &addr, timeout)?;
    socket.set_nonblocking(true)?;
    Ok(socket)
}

/// Linux queues a connect only while the listener's backlog has room, and a non-blocking
/// connect to a full one fails with `EAGAIN` without being in progress: no event would say
/// when to try again (the unconnected socket polls writable at once with no `SO_ERROR`, so
/// Core's wait-for-SEND takes it for connected, and its first send fails with `ENOTCONN`). A blocking connect sleeps until there is room, at most `SO_SNDTIMEO`:
/// that sleep is the connect timeout. Otherwise the connect is immediate, as on loopback TCP.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn connect_within(socket: &Socket, addr: &SockAddr, timeout: Duration) -> io::Result<()> {
    if timeout.is_zero() {
        socket.set_nonblocking(true)?;
        return socket.connect(addr);
    }
    // SO_SNDTIMEO's zero means "forever": a timeout below its microsecond must not become it.
    // The kernel saturates a huge one to forever.
    socket.set_write_timeout(Some(timeout.max(Duration::from_micros(1))))?;
    let connected = socket.connect(addr);
    // Leave no timeout behind for a caller who makes the socket blocking again.
    socket.set_write_timeout(None)?;
    connected
}

/// macOS and the BSDs answer a connect to a Unix-domain listener at once (`ECONNREFUSED`
/// when its backlog is full), so there is nothing to wait for.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn connect_within(socket: &Socket, addr: &SockAddr, _timeout: Duration) -> io::Result<()> {
    socket.set_nonblocking(true)?;
    socket.connect(addr)
}

/// `socket(AF_UNIX, SOCK_STREAM)` + `bind(2)`: creates the socket file (or the abstract name).
/// `AddrInUse` when the path exists, even as a stale socket file: removing that is the
/// caller's decision.
pub(crate) fn bind_unix(addr: &UnixAddress) -> io::Result<Socket> {
    let addr = sockaddr(addr)?;
    let socket = Socket::new(Domain::UNIX, Type::STREAM, None)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr)?;
    Ok(socket)
}

/// `getsockname(2)`, any family.
pub(crate) fn local_address(socket: &Socket) -> io::Result<SockAddress> {
    sock_address(&socket.local_addr()?)
}

/// `getpeername(2)`, any family.
pub(crate) fn peer_address(socket: &Socket) -> io::Result<SockAddress> {
    sock_address(&socket.peer_addr()?)
}

/// `accept(2)` on a listener of any family; the new socket is set up as `accept` sets up an
/// IP one (non-blocking, `TCP_NODELAY` when it is TCP).
pub(crate) fn accept_address(socket: &Socket) -> io::Result<(Socket, SockAddress)> {
    let (peer, addr) = socket.accept()?;
    adopt(&peer)?;
    let addr = sock_address(&addr)?;
    if let SockAddress::Ip(_) = addr {
        let _ = peer.set_tcp_nodelay(true);
    }
    Ok((peer, addr))
}

/// `InvalidInput` when `socket` is a Unix-domain socket, checked before `accept(2)` takes a
/// connection whose peer address [`accept`](super::accept) could not return.
pub(super) fn refuse_non_ip(socket: &Socket) -> io::Result<()> {
    if socket.local_addr()?.is_unix() {
        return Err(invalid(
            "a Unix-domain listener's peers have no IP address: use accept_address()".to_owned(),
        ));
    }
    Ok(())
}

impl From<std::os::unix::net::UnixStream> for crate::Sock {
    /// Adopts a connected Unix-domain stream, in non-blocking mode.
    fn from(stream: std::os::unix::net::UnixStream) -> crate::Sock {
        crate::Sock::adopt_quietly(Socket::from(stream))
    }
}

impl From<std::os::unix::net::UnixListener> for crate::Sock {
    /// Adopts a Unix-domain listener (e.g. one handed over by systemd), in non-blocking mode
    /// (so `accept_address` never blocks).
    fn from(listener: std::os::unix::net::UnixListener) -> crate::Sock {
        crate::Sock::adopt_quietly(Socket::from(listener))
    }
}
