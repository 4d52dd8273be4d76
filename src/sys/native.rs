//! The native backend: `socket2` for the socket calls, `poll(2)` (`WSAPoll` on Windows) for
//! waiting.

use std::cell::RefCell;
use std::io::{self, IoSlice};
use std::mem::MaybeUninit;
use std::net::{Shutdown, SocketAddr};
use std::time::Duration;

use socket2::{Domain, Protocol, SockAddr, Type};

use super::PollTarget;
use crate::opt::SetSockOpt;
use crate::{SockEvent, SockOpt, SockOptValue};

mod resolve;
pub(crate) use resolve::resolve;

/// A refused permission natively is the OS's to explain (a port below 1024, a firewall);
/// nothing to add.
pub(crate) const NETWORK_REFUSED_HINT: Option<&str> = None;
/// Native resolvers have no permission to refuse.
pub(crate) const LOOKUP_REFUSED_HINT: Option<&str> = None;

// Sockets made elsewhere, adopted as `Sock`, and the sock as std's descriptor types.
mod convert;

// SockMan's registration with the OS, through `polling`.
mod registry;
pub(crate) use registry::{Readiness, Registry};

// Unix-domain sockets, with the calls that give addresses of any family.
#[cfg(unix)]
mod unix_domain;
#[cfg(unix)]
pub(crate) use unix_domain::{
    accept_address, bind_unix, connect_unix, local_address, peer_address,
};

/// The owned OS socket: a [`socket2::Socket`].
pub type Socket = socket2::Socket;

// Unix suppresses SIGPIPE per call, except Apple's, which has no MSG_NOSIGNAL and uses the
// SO_NOSIGPIPE socket option instead (set on every socket this backend makes or adopts);
// Windows has no SIGPIPE.
#[cfg(all(unix, not(target_vendor = "apple")))]
const SEND_FLAGS: i32 = libc::MSG_NOSIGNAL;
#[cfg(any(windows, target_vendor = "apple"))]
const SEND_FLAGS: i32 = 0;

/// Core's `CreateSock`: a non-blocking TCP socket for `addr`'s family.
fn new_stream(addr: &SocketAddr) -> io::Result<Socket> {
    // socket2 sets close-on-exec, and SO_NOSIGPIPE on Apple.
    let socket = Socket::new(
        Domain::for_address(*addr),
        Type::STREAM,
        Some(Protocol::TCP),
    )?;
    socket.set_nonblocking(true)?;
    Ok(socket)
}

/// Makes an adopted socket behave like one this backend made: non-blocking, no SIGPIPE.
/// Both are tried, non-blocking first: a refused `SO_NOSIGPIPE` must not leave the socket
/// blocking (every timeout would stop working). The first error is returned.
pub(crate) fn adopt(socket: &Socket) -> io::Result<()> {
    let non_blocking = socket.set_nonblocking(true);
    #[cfg(target_vendor = "apple")]
    let no_sigpipe = socket.set_nosigpipe(true);
    #[cfg(not(target_vendor = "apple"))]
    let no_sigpipe = Ok(());
    non_blocking.and(no_sigpipe)
}

/// `socket(2)` + `connect(2)` without waiting: the connect may still be in progress.
pub(crate) fn connect_start(addr: &SocketAddr) -> io::Result<Socket> {
    let socket = new_stream(addr)?;
    // Core sets TCP_NODELAY on every TCP socket and goes on without it when that fails.
    let _ = socket.set_tcp_nodelay(true);
    match socket.connect(&SockAddr::from(*addr)) {
        Ok(()) => Ok(socket),
        Err(e) if in_progress(&e) => Ok(socket),
        Err(e) => Err(e),
    }
}

fn in_progress(err: &io::Error) -> bool {
    #[cfg(unix)]
    let code = libc::EINPROGRESS;
    #[cfg(windows)]
    let code = windows_sys::Win32::Networking::WinSock::WSAEINPROGRESS;
    err.kind() == io::ErrorKind::WouldBlock || err.raw_os_error() == Some(code)
}

/// After the socket became writable: the connect's result, from `SO_ERROR`.
pub(crate) fn connect_finish(socket: &Socket) -> io::Result<()> {
    match socket.take_error()? {
        Some(err) => Err(err),
        None => Ok(()),
    }
}

/// `socket(2)` + `bind(2)`, with Core's listening options: `SO_REUSEADDR` (not on Windows,
/// where it lets another process steal the port) and `IPV6_V6ONLY`.
pub(crate) fn bind(addr: &SocketAddr) -> io::Result<Socket> {
    let socket = new_stream(addr)?;
    #[cfg(not(windows))]
    socket.set_reuse_address(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.bind(&SockAddr::from(*addr))?;
    Ok(socket)
}

/// `listen(2)`.
pub(crate) fn listen(socket: &Socket, backlog: i32) -> io::Result<()> {
    socket.listen(backlog)
}

/// `accept(2)` (`accept4` with `SOCK_CLOEXEC` where there is one); the new socket is made
/// non-blocking and gets `TCP_NODELAY`, which not every OS carries over from the listener.
pub(crate) fn accept(socket: &Socket) -> io::Result<(Socket, SocketAddr)> {
    // Refused before a connection is taken that could not be returned with its address.
    #[cfg(unix)]
    unix_domain::refuse_non_ip(socket)?;
    let (peer, addr) = socket.accept()?;
    adopt(&peer)?;
    let _ = peer.set_tcp_nodelay(true);
    let addr = addr
        .as_socket()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "accepted a non-IP peer"))?;
    Ok((peer, addr))
}

fn ip_addr(addr: SockAddr) -> io::Result<SocketAddr> {
    addr.as_socket().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "not an IP socket (local_address() and peer_address() give any address)",
        )
    })
}

/// `getsockname(2)`.
pub(crate) fn local_addr(socket: &Socket) -> io::Result<SocketAddr> {
    ip_addr(socket.local_addr()?)
}

/// `getpeername(2)`.
pub(crate) fn peer_addr(socket: &Socket) -> io::Result<SocketAddr> {
    ip_addr(socket.peer_addr()?)
}

/// `fcntl(O_NONBLOCK)` / `ioctlsocket(FIONBIO)`.
pub(crate) fn set_non_blocking(socket: &Socket) -> io::Result<()> {
    socket.set_nonblocking(true)
}

/// Always true: `poll(2)`/`WSAPoll` have no `FD_SETSIZE` limit.
pub(crate) fn is_selectable(_socket: &Socket) -> bool {
    true
}

/// `shutdown(2)`.
pub(crate) fn shutdown(socket: &Socket, how: Shutdown) -> io::Result<()> {
    socket.shutdown(how)
}

/// Natively a `send` hands its bytes to the kernel: nothing to flush.
pub(crate) fn start_flush(_socket: &Socket) -> io::Result<()> {
    Ok(())
}

/// See [`start_flush`].
pub(crate) fn is_flushed(_socket: &Socket) -> bool {
    true
}

/// `SO_LINGER` with a zero timeout: the close that follows resets the connection (the peer
/// reads `ECONNRESET`) and drops what the kernel still holds to send, at once.
pub(crate) fn reset_on_close(socket: &Socket) -> io::Result<()> {
    socket.set_linger(Some(Duration::ZERO))
}

/// `send(2)` with `MSG_NOSIGNAL` where the OS has it.
pub(crate) fn send(socket: &Socket, data: &[u8]) -> io::Result<usize> {
    socket.send_with_flags(data, SEND_FLAGS)
}

/// `sendmsg(2)` (`WSASend` on Windows) of every buffer in order, with the flags of [`send`].
pub(crate) fn send_vectored(socket: &Socket, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
    socket.send_vectored_with_flags(bufs, SEND_FLAGS)
}

/// A second descriptor for the same socket (`fcntl(F_DUPFD_CLOEXEC)`, `WSADuplicateSocketW`).
pub(crate) fn try_clone(socket: &Socket) -> io::Result<Socket> {
    socket.try_clone()
}

fn as_uninit(buf: &mut [u8]) -> &mut [MaybeUninit<u8>] {
    // SAFETY: `u8` and `MaybeUninit<u8>` have the same layout, and recv(2) only ever writes
    // initialised bytes, so the slice stays initialised when the borrow ends.
    unsafe { &mut *(buf as *mut [u8] as *mut [MaybeUninit<u8>]) }
}

/// `recv(2)`.
pub(crate) fn recv(socket: &Socket, buf: &mut [u8]) -> io::Result<usize> {
    socket.recv(as_uninit(buf))
}

/// `recv(2)` with `MSG_PEEK`.
pub(crate) fn peek(socket: &Socket, buf: &mut [u8]) -> io::Result<usize> {
    socket.peek(as_uninit(buf))
}

#[cfg(unix)]
mod os_poll {
    use std::io;

    pub(super) use libc::{pollfd as PollFd, POLLERR, POLLHUP, POLLIN, POLLNVAL, POLLOUT};

    pub(super) fn handle(socket: &super::Socket) -> i32 {
        std::os::fd::AsRawFd::as_raw_fd(socket)
    }

    /// A pollfd that `poll(2)` skips (a negative fd).
    pub(super) const SKIP: i32 = -1;

    pub(super) fn new_fd(fd: i32, events: i16) -> PollFd {
        PollFd {
            fd,
            events,
            revents: 0,
        }
    }

    pub(super) fn poll(fds: &mut [PollFd], timeout_ms: i32) -> io::Result<usize> {
        // SAFETY: `fds` is a valid, exclusively borrowed array of `fds.len()` pollfd structs.
        let ret = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) };
        if ret < 0 {
            return Err(io::Error::last_os_error());
        }
        for fd in fds.iter_mut() {
            fd.revents = super::hang_up_reads(fd.events, fd.revents);
        }
        Ok(ret as usize)
    }
}

#[cfg(windows)]
mod os_poll {
    use std::cell::RefCell;
    use std::io;
    use std::time::Duration;

    use windows_sys::Win32::Networking::WinSock::{
        WSAGetLastError, WSAPoll, INVALID_SOCKET, SOCKET, SOCKET_ERROR, WSAPOLLFD,
    };
    // WSAPoll fails with WSAEINVAL on POLLPRI, which POLLIN includes there; the *NORM bits are
    // the portable spelling.
    pub(super) use windows_sys::Win32::Networking::WinSock::{
        POLLERR, POLLHUP, POLLNVAL, POLLRDNORM as POLLIN, POLLWRNORM as POLLOUT,
    };

    pub(super) type PollFd = WSAPOLLFD;
    /// A pollfd that `WSAPoll` skips.
    pub(super) const SKIP: SOCKET = INVALID_SOCKET;

    pub(super) fn handle(socket: &super::Socket) -> SOCKET {
        std::os::windows::io::AsRawSocket::as_raw_socket(socket) as SOCKET
    }

    pub(super) fn new_fd(fd: SOCKET, events: i16) -> PollFd {
        PollFd {
            fd,
            events,
            revents: 0,
        }
    }

    /// `WSAPoll`, made to answer as `poll(2)` does where Windows (or Wine) differs: a set
    /// without a socket sleeps out the timeout, a socket listed twice is polled once and
    /// every entry gets its own answer, and a hang-up makes RECV ready.
    pub(super) fn poll(fds: &mut [PollFd], timeout_ms: i32) -> io::Result<usize> {
        // WSAPoll refuses a set with no valid socket (WSAEINVAL, as its documentation says:
        // "the array must contain at least one structure with a valid socket"); poll(2)
        // sleeps, and an idle node with no peers yet waits exactly like that.
        if fds.iter().all(|fd| fd.fd == SKIP) {
            fds.iter_mut().for_each(|fd| fd.revents = 0);
            std::thread::sleep(match u64::try_from(timeout_ms) {
                Ok(ms) => Duration::from_millis(ms),
                Err(_) => Duration::MAX, // negative: forever
            });
            return Ok(0);
        }
        DISTINCT.with(|cell| match cell.try_borrow_mut() {
            Ok(mut distinct) => poll_distinct(fds, &mut distinct, timeout_ms),
            Err(_) => poll_distinct(fds, &mut Distinct::default(), timeout_ms),
        })?;
        let mut ready = 0;
        for fd in fds.iter_mut() {
            fd.revents = super::hang_up_reads(fd.events, fd.revents);
            ready += usize::from(fd.revents != 0);
        }
        Ok(ready)
    }

    /// Scratch space of [`poll_distinct`], reused between calls.
    #[derive(Default)]
    struct Distinct {
        /// Indices into the caller's set, sorted by socket.
        order: Vec<usize>,
        /// One entry per distinct socket, asking for everything its entries ask for.
        fds: Vec<PollFd>,
        /// For each entry of the caller's set, its socket's index in `fds`.
        slot: Vec<usize>,
    }

    thread_local! {
        static DISTINCT: RefCell<Distinct> = RefCell::new(Distinct::default());
    }

    /// Polls each distinct socket of `fds` once and gives every entry the events it asked
    /// for (and the errors). WSAPoll's documentation says nothing of a socket listed twice,
    /// and Wine answers only the last of its entries; `poll(2)` answers each.
    fn poll_distinct(
        fds: &mut [PollFd],
        scratch: &mut Distinct,
        timeout_ms: i32,
    ) -> io::Result<()> {
        let Distinct {
            order,
            fds: distinct,
            slot,
        } = scratch;
        order.clear();
        order.extend(0..fds.len());
        order.sort_unstable_by_key(|&i| fds[i].fd);
        if order
            .windows(2)
            .all(|pair| fds[pair[0]].fd != fds[pair[1]].fd)
        {
            return wsa_poll(fds, timeout_ms);
        }
        distinct.clear();
        slot.clear();
        slot.resize(fds.len(), 0);
        for &i in order.iter() {
            match distinct.last_mut() {
                Some(last) if last.fd == fds[i].fd => last.events |= fds[i].events,
                _ => distinct.push(new_fd(fds[i].fd, fds[i].events)),
            }
            slot[i] = distinct.len() - 1;
        }
        wsa_poll(distinct, timeout_ms)?;
        for (fd, &slot) in fds.iter_mut().zip(slot.iter()) {
            fd.revents = distinct[slot].revents & (fd.events | POLLERR | POLLHUP | POLLNVAL);
        }
        Ok(())
    }

    fn wsa_poll(fds: &mut [PollFd], timeout_ms: i32) -> io::Result<()> {
        // SAFETY: `fds` is a valid, exclusively borrowed array of `fds.len()` WSAPOLLFD structs.
        let ret = unsafe { WSAPoll(fds.as_mut_ptr(), fds.len() as u32, timeout_ms) };
        if ret == SOCKET_ERROR {
            // SAFETY: no preconditions; reads the calling thread's last WinSock error.
            Err(io::Error::from_raw_os_error(unsafe { WSAGetLastError() }))
        } else {
            Ok(())
        }
    }
}

/// A hang-up makes RECV ready when RECV was asked for: a `recv` then returns at once (end of
/// stream, or the error), which is what RECV promises (Core: data *or EOF*). Linux sets POLLIN
/// beside POLLHUP anyway; Windows reports a peer's orderly close as POLLHUP without
/// POLLRDNORM, so without this `wait(RECV)` would never see end of stream there.
fn hang_up_reads(events: i16, revents: i16) -> i16 {
    if revents & os_poll::POLLHUP != 0 {
        revents | (events & os_poll::POLLIN)
    } else {
        revents
    }
}

thread_local! {
    // Reused between calls, so a wait allocates only when a thread waits on more sockets than
    // ever before.
    static POLL_FDS: RefCell<Vec<os_poll::PollFd>> = const { RefCell::new(Vec::new()) };
}

/// `poll(2)`'s timeout: milliseconds rounded up (a timeout below one millisecond must not
/// become zero), capped at what `int` holds (the front end waits again while time is left);
/// `Duration::MAX`, "forever", is -1, which spares the kernel a timer.
fn timeout_ms(timeout: Duration) -> i32 {
    if timeout == Duration::MAX {
        return -1;
    }
    let ms = timeout.as_nanos().div_ceil(1_000_000);
    i32::try_from(ms).unwrap_or(i32::MAX)
}

/// One `poll(2)` over `targets`; fills each target's occurred events. The time may be capped
/// below `timeout` (at `i32::MAX` ms).
///
/// # Errors
/// The OS error of `poll(2)`, including `Interrupted` for `EINTR`.
pub(crate) fn poll<T: PollTarget>(targets: &mut [T], timeout: Duration) -> io::Result<()> {
    use os_poll::*;

    POLL_FDS.with(|cell| {
        // Re-entrance is impossible (nothing below calls back into poll), but fall back to a
        // fresh buffer rather than panic if that ever changes.
        let mut fresh = Vec::new();
        let mut borrowed = cell.try_borrow_mut();
        let fds = match borrowed.as_mut() {
            Ok(fds) => &mut **fds,
            Err(_) => &mut fresh,
        };
        fds.clear();
        fds.extend(targets.iter().map(|target| {
            let requested = target.requested();
            let mut events = 0;
            if requested.contains(SockEvent::RECV) {
                events |= POLLIN;
            }
            if requested.contains(SockEvent::SEND) {
                events |= POLLOUT;
            }
            match target.socket() {
                Some(socket) => new_fd(handle(socket), events),
                None => new_fd(SKIP, 0),
            }
        }));
        poll(fds, timeout_ms(timeout))?;
        for (target, fd) in targets.iter_mut().zip(fds.iter()) {
            let mut occurred = SockEvent::empty();
            if fd.revents & POLLIN != 0 {
                occurred |= SockEvent::RECV;
            }
            if fd.revents & POLLOUT != 0 {
                occurred |= SockEvent::SEND;
            }
            // Core ignores POLLNVAL; a closed descriptor is an error, not a quiet timeout.
            if fd.revents & (POLLERR | POLLHUP | POLLNVAL) != 0 {
                occurred |= SockEvent::ERR;
            }
            target.set_occurred(occurred);
        }
        Ok(())
    })
}

/// Reads a socket option.
pub(crate) fn get_sock_opt(socket: &Socket, opt: SockOpt) -> io::Result<SockOptValue> {
    Ok(match opt {
        SockOpt::NoDelay => SockOptValue::Bool(socket.tcp_nodelay()?),
        SockOpt::KeepAlive => SockOptValue::Bool(socket.keepalive()?),
        SockOpt::RecvBufferSize => SockOptValue::Size(socket.recv_buffer_size()?),
        SockOpt::SendBufferSize => SockOptValue::Size(socket.send_buffer_size()?),
        SockOpt::ReuseAddress => SockOptValue::Bool(socket.reuse_address()?),
        SockOpt::Ttl => SockOptValue::Size(ttl(socket)? as usize),
        SockOpt::Error => SockOptValue::Error(socket.take_error()?.map(|e| {
            // SO_ERROR always holds an OS code; keep the kind's errno-less form out of the API.
            e.raw_os_error().unwrap_or(0)
        })),
        SockOpt::Linger => SockOptValue::Linger(socket.linger()?),
        SockOpt::Ipv6V6Only => SockOptValue::Bool(socket.only_v6()?),
    })
}

fn ttl(socket: &Socket) -> io::Result<u32> {
    if ip_addr(socket.local_addr()?)?.is_ipv6() {
        socket.unicast_hops_v6()
    } else {
        socket.ttl_v4()
    }
}

/// Writes a socket option.
pub(crate) fn set_sock_opt(socket: &Socket, opt: SetSockOpt) -> io::Result<()> {
    match opt {
        SetSockOpt::NoDelay(on) => socket.set_tcp_nodelay(on),
        SetSockOpt::KeepAlive(on) => socket.set_keepalive(on),
        SetSockOpt::RecvBufferSize(size) => socket.set_recv_buffer_size(size),
        SetSockOpt::SendBufferSize(size) => socket.set_send_buffer_size(size),
        SetSockOpt::ReuseAddress(on) => socket.set_reuse_address(on),
        SetSockOpt::Ttl(ttl) => {
            if ip_addr(socket.local_addr()?)?.is_ipv6() {
                socket.set_unicast_hops_v6(ttl.into())
            } else {
                socket.set_ttl_v4(ttl.into())
            }
        }
        SetSockOpt::Linger(linger) => socket.set_linger(linger),
        SetSockOpt::Ipv6V6Only(on) => socket.set_only_v6(on),
    }
}
