//! The WASI preview 2 backend: `wasi:sockets/tcp` for the socket, `wasi:io/streams` for the
//! data, one `wasi:io/poll.poll` per wait, and a read-ahead buffer for `peek`, which WASI lacks.
//!
//! Errors are given the errno values of the target's libc (wasi-libc), so
//! `io_error_is_permanent`, `network_error_string` and `io::ErrorKind` agree with native.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Duration;

use wasi::clocks::monotonic_clock;
use wasi::io::poll::{poll as wasi_poll, Pollable};
use wasi::io::streams::{InputStream, OutputStream, StreamError};
use wasi::sockets::instance_network::instance_network;
use wasi::sockets::ip_name_lookup::{resolve_addresses, IpAddress};
use wasi::sockets::network::{
    ErrorCode, IpAddressFamily, IpSocketAddress, Ipv4SocketAddress, Ipv6SocketAddress, Network,
};
use wasi::sockets::tcp::{ShutdownType, TcpSocket};
use wasi::sockets::tcp_create_socket::create_tcp_socket;

use super::PollTarget;
use crate::error::unsupported;
use crate::{SockEvent, SockOpt, SockOptValue};

pub(crate) const TRY_AGAIN_CODES: &[i32] = &[
    libc::EAGAIN,
    libc::EWOULDBLOCK,
    libc::EINTR,
    libc::EINPROGRESS,
];

/// wasmtime hands out at most 64 KiB per stream read.
const READ_CHUNK: usize = 64 * 1024;

/// A `wasi:sockets/tcp` socket with its streams and the state WASI leaves to the guest.
///
/// Drop order matters: wasmtime traps when a resource is dropped before its children (the
/// pollables are children of the streams and of the socket, the streams children of the
/// socket), so the pollables come first and [`Conn`] keeps the rest in order.
pub struct Socket {
    input_ready: OnceLock<Pollable>,
    output_ready: OnceLock<Pollable>,
    socket_ready: OnceLock<Pollable>,
    state: Mutex<State>,
    /// Always `Some` but inside `drop`, which may hand it to the [`graveyard`].
    conn: Option<Conn>,
}

/// A socket and its streams; field order is drop order.
struct Conn {
    streams: OnceLock<(InputStream, OutputStream)>,
    tcp: TcpSocket,
}

impl Conn {
    /// Whether the host still holds unsent bytes, as far as it can tell at once.
    fn write_stuck(&self) -> bool {
        self.streams
            .get()
            .is_some_and(|(_, output)| matches!(output.check_write(), Ok(0)))
    }

    /// Whether dropping the output stream would block: wasmtime's drop waits until the last
    /// write reached the kernel and the socket is writable again, i.e. forever when the peer
    /// never reads. `check-write` answers without waiting, so a readiness the host has not
    /// noticed yet looks the same as a stuck write: a short wait tells them apart.
    fn write_blocks_close(&self) -> bool {
        let Some((_, output)) = self.streams.get() else {
            return false;
        };
        if !self.write_stuck() {
            return false;
        }
        let writable = output.subscribe();
        let timer = monotonic_clock::subscribe_duration(CLOSE_CHECK.as_nanos() as u64);
        !wasi_poll(&[&writable, &timer]).contains(&0)
    }
}

/// How long closing a sock that has written waits for the host to confirm its writes are done
/// before leaving the close to the [`graveyard`].
const CLOSE_CHECK: Duration = Duration::from_millis(10);

impl Drop for Socket {
    fn drop(&mut self) {
        // Children first.
        drop(self.input_ready.take());
        drop(self.output_ready.take());
        drop(self.socket_ready.take());
        let wrote = self
            .state
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .wrote;
        if let Some(conn) = self.conn.take() {
            graveyard::sweep();
            if wrote && conn.write_blocks_close() {
                graveyard::bury(conn);
            }
        }
    }
}

/// Sockets closed while their last write is still stuck in the host. Closing one natively
/// returns at once and the kernel finishes (or abandons) the send; wasmtime instead blocks the
/// guest in the stream's drop until the write completes, which a peer that never reads makes
/// forever. Such sockets wait here and are really closed by a later sweep (every wait and
/// every close sweeps), once the write has gone through or failed.
mod graveyard {
    use std::sync::{Mutex, MutexGuard, PoisonError};

    use super::Conn;

    static GRAVES: Mutex<Vec<Conn>> = Mutex::new(Vec::new());

    pub(super) fn bury(conn: Conn) {
        lock().push(conn);
    }

    /// Closes the buried sockets whose write has finished.
    pub(super) fn sweep() {
        let mut graves = lock();
        if !graves.is_empty() {
            graves.retain(Conn::write_stuck);
        }
    }

    fn lock() -> MutexGuard<'static, Vec<Conn>> {
        GRAVES.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl std::fmt::Debug for Socket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Socket")
            .field("socket", &self.conn().tcp)
            .field("phase", &self.lock().phase)
            .finish()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Made by `bind` (or adopted unconnected).
    Unconnected,
    Listening,
    Connecting,
    Connected,
    /// The connect failed; the socket is closed (WASI cannot reuse it).
    Failed,
}

/// How the input stream ended, once it has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum InputEnd {
    /// End of stream (the peer's FIN).
    Eof,
    /// A failed read, with its errno; reported once, then the stream reads as ended.
    Error(i32),
}

#[derive(Debug)]
struct State {
    phase: Phase,
    /// Bytes read from the input stream but not yet received: `read_ahead[read_pos..]`.
    read_ahead: Vec<u8>,
    read_pos: usize,
    input_end: Option<InputEnd>,
    /// The pending socket error (a failed connect or write), like `SO_ERROR`.
    pending_error: Option<i32>,
    /// Whether anything was written; a socket that never wrote closes at once.
    wrote: bool,
}

impl State {
    fn buffered(&self) -> &[u8] {
        &self.read_ahead[self.read_pos..]
    }

    fn consume(&mut self, n: usize) {
        self.read_pos += n;
        if self.read_pos == self.read_ahead.len() {
            self.read_ahead.clear();
            self.read_pos = 0;
        }
    }

    /// Whether a `recv` would return at once (data, end of stream or an error).
    fn readable(&self) -> bool {
        !self.buffered().is_empty() || self.input_end.is_some()
    }
}

impl Socket {
    fn new(socket: TcpSocket, phase: Phase) -> Socket {
        Socket {
            input_ready: OnceLock::new(),
            output_ready: OnceLock::new(),
            socket_ready: OnceLock::new(),
            state: Mutex::new(State {
                phase,
                read_ahead: Vec::new(),
                read_pos: 0,
                input_end: None,
                pending_error: None,
                wrote: false,
            }),
            conn: Some(Conn {
                streams: OnceLock::new(),
                tcp: socket,
            }),
        }
    }

    fn connected(socket: TcpSocket, input: InputStream, output: OutputStream) -> Socket {
        let sock = Socket::new(socket, Phase::Connected);
        // A fresh OnceLock is empty, so this always stores the streams.
        let _ = sock.conn().streams.set((input, output));
        sock
    }

    fn conn(&self) -> &Conn {
        // Only `drop` takes it.
        self.conn
            .as_ref()
            .expect("a socket has its connection until dropped")
    }

    fn tcp(&self) -> &TcpSocket {
        &self.conn().tcp
    }

    fn streams(&self) -> Option<&(InputStream, OutputStream)> {
        self.conn().streams.get()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing panics while holding the lock; a poisoned one still holds consistent state.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn socket_ready(&self) -> &Pollable {
        self.socket_ready.get_or_init(|| self.tcp().subscribe())
    }

    fn input_ready(&self, input: &InputStream) -> &Pollable {
        self.input_ready.get_or_init(|| input.subscribe())
    }

    fn output_ready(&self, output: &OutputStream) -> &Pollable {
        self.output_ready.get_or_init(|| output.subscribe())
    }

    /// The streams, or the errno natively returned in this phase.
    fn connected_streams(&self, state: &State) -> io::Result<&(InputStream, OutputStream)> {
        match (self.streams(), state.phase) {
            (Some(streams), _) => Ok(streams),
            (None, Phase::Connecting) => Err(errno(libc::EAGAIN)),
            (None, _) => Err(errno(libc::ENOTCONN)),
        }
    }

    /// Finishes a connect that the socket's pollable says is done; on failure the error is
    /// kept as the pending socket error, as `SO_ERROR` keeps it natively.
    fn finish_connect(&self, state: &mut State) {
        if state.phase != Phase::Connecting {
            return;
        }
        match self.tcp().finish_connect() {
            Ok(streams) => {
                let _ = self.conn().streams.set(streams);
                state.phase = Phase::Connected;
            }
            Err(ErrorCode::WouldBlock) => {}
            Err(code) => {
                state.phase = Phase::Failed;
                state.pending_error = Some(error_code_errno(code));
            }
        }
    }

    /// One non-blocking read of up to `max` bytes from the input stream, recording how the
    /// stream ended; empty when nothing has arrived.
    fn read_stream(&self, state: &mut State, max: usize) -> Vec<u8> {
        let Some((input, _)) = self.streams() else {
            return Vec::new();
        };
        if state.input_end.is_some() || max == 0 {
            return Vec::new();
        }
        match input.read(max.min(READ_CHUNK) as u64) {
            Ok(bytes) => bytes,
            Err(StreamError::Closed) => {
                state.input_end = Some(InputEnd::Eof);
                Vec::new()
            }
            Err(StreamError::LastOperationFailed(err)) => {
                state.input_end = Some(InputEnd::Error(stream_errno(&err)));
                Vec::new()
            }
        }
    }

    /// Appends what the input stream has now (up to `max` bytes) to the read-ahead buffer.
    fn fill(&self, state: &mut State, max: usize) {
        let bytes = self.read_stream(state, max);
        if bytes.is_empty() {
            return;
        }
        if state.buffered().is_empty() {
            // Adopt the host's buffer: no copy.
            state.read_ahead = bytes;
        } else {
            // Drop the consumed prefix first, so a stream that never drains stays bounded.
            state.read_ahead.drain(..state.read_pos);
            state.read_ahead.extend_from_slice(&bytes);
        }
        state.read_pos = 0;
    }
}

impl Socket {
    /// The `wasi:sockets/tcp` socket, for what this crate does not wrap.
    pub fn tcp_socket(&self) -> &TcpSocket {
        self.tcp()
    }
}

impl From<TcpSocket> for crate::Sock {
    /// Adopts a `wasi:sockets/tcp` socket in any state: unbound or bound, listening, or with a
    /// connect started (finished here if it is done). A socket whose streams someone already
    /// took cannot be read here: adopt it with its streams instead.
    fn from(socket: TcpSocket) -> crate::Sock {
        let adopted = match socket.finish_connect() {
            Ok((input, output)) => Socket::connected(socket, input, output),
            Err(ErrorCode::WouldBlock) => Socket::new(socket, Phase::Connecting),
            Err(_) if socket.is_listening() => Socket::new(socket, Phase::Listening),
            Err(_) => Socket::new(socket, Phase::Unconnected),
        };
        crate::Sock::from(adopted)
    }
}

impl From<(TcpSocket, InputStream, OutputStream)> for crate::Sock {
    /// Adopts a connected socket with its streams, as `accept` and `finish-connect` return them.
    fn from((socket, input, output): (TcpSocket, InputStream, OutputStream)) -> crate::Sock {
        crate::Sock::from(Socket::connected(socket, input, output))
    }
}

fn errno(code: i32) -> io::Error {
    io::Error::from_raw_os_error(code)
}

/// wasi-libc's mapping of `wasi:sockets` error codes to errno.
fn error_code_errno(code: ErrorCode) -> i32 {
    match code {
        ErrorCode::AccessDenied => libc::EACCES,
        ErrorCode::NotSupported => libc::EOPNOTSUPP,
        ErrorCode::InvalidArgument => libc::EINVAL,
        ErrorCode::OutOfMemory => libc::ENOMEM,
        ErrorCode::Timeout => libc::ETIMEDOUT,
        ErrorCode::ConcurrencyConflict => libc::EALREADY,
        ErrorCode::NotInProgress => libc::EINVAL,
        ErrorCode::WouldBlock => libc::EWOULDBLOCK,
        ErrorCode::InvalidState => libc::EINVAL,
        ErrorCode::NewSocketLimit => libc::EMFILE,
        ErrorCode::AddressNotBindable => libc::EADDRNOTAVAIL,
        ErrorCode::AddressInUse => libc::EADDRINUSE,
        ErrorCode::RemoteUnreachable => libc::EHOSTUNREACH,
        ErrorCode::ConnectionRefused => libc::ECONNREFUSED,
        ErrorCode::ConnectionReset => libc::ECONNRESET,
        ErrorCode::ConnectionAborted => libc::ECONNABORTED,
        ErrorCode::DatagramTooLarge => libc::EMSGSIZE,
        _ => libc::EOPNOTSUPP,
    }
}

fn wasi_err(code: ErrorCode) -> io::Error {
    errno(error_code_errno(code))
}

/// The errno of a failed stream operation. WASI 0.2 gives no code for it (the
/// `network-error-code` function is unstable and absent from the bindings), only a debug text;
/// the common causes are recognised there, anything else is `EIO`, as in wasi-libc.
fn stream_errno(err: &wasi::io::error::Error) -> i32 {
    let text = err.to_debug_string();
    let known = [
        ("ConnectionReset", libc::ECONNRESET),
        ("connection-reset", libc::ECONNRESET),
        ("ConnectionAborted", libc::ECONNABORTED),
        ("connection-aborted", libc::ECONNABORTED),
        ("BrokenPipe", libc::EPIPE),
        ("TimedOut", libc::ETIMEDOUT),
        ("timeout", libc::ETIMEDOUT),
    ];
    known
        .iter()
        .find(|(name, _)| text.contains(name))
        .map_or(libc::EIO, |&(_, code)| code)
}

fn network() -> &'static Network {
    static NETWORK: OnceLock<Network> = OnceLock::new();
    NETWORK.get_or_init(instance_network)
}

fn to_wasi_addr(addr: &SocketAddr) -> IpSocketAddress {
    match addr {
        SocketAddr::V4(v4) => {
            let [a, b, c, d] = v4.ip().octets();
            IpSocketAddress::Ipv4(Ipv4SocketAddress {
                port: v4.port(),
                address: (a, b, c, d),
            })
        }
        SocketAddr::V6(v6) => {
            let [a, b, c, d, e, f, g, h] = v6.ip().segments();
            IpSocketAddress::Ipv6(Ipv6SocketAddress {
                port: v6.port(),
                flow_info: v6.flowinfo(),
                address: (a, b, c, d, e, f, g, h),
                scope_id: v6.scope_id(),
            })
        }
    }
}

fn from_wasi_addr(addr: IpSocketAddress) -> SocketAddr {
    match addr {
        IpSocketAddress::Ipv4(v4) => {
            let (a, b, c, d) = v4.address;
            SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::new(a, b, c, d), v4.port))
        }
        IpSocketAddress::Ipv6(v6) => {
            let (a, b, c, d, e, f, g, h) = v6.address;
            SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::new(a, b, c, d, e, f, g, h),
                v6.port,
                v6.flow_info,
                v6.scope_id,
            ))
        }
    }
}

fn new_socket(addr: &SocketAddr) -> io::Result<TcpSocket> {
    let family = if addr.is_ipv4() {
        IpAddressFamily::Ipv4
    } else {
        IpAddressFamily::Ipv6
    };
    create_tcp_socket(family).map_err(wasi_err)
}

/// Blocks on `socket`'s pollable until a two-phase operation finishes (`finish_bind`,
/// `finish_listen`: immediate in wasmtime, bounded by the host elsewhere).
fn finish(socket: &TcpSocket, mut finish: impl FnMut() -> Result<(), ErrorCode>) -> io::Result<()> {
    loop {
        match finish() {
            Err(ErrorCode::WouldBlock) => socket.subscribe().block(),
            other => return other.map_err(wasi_err),
        }
    }
}

/// Sockets are always non-blocking here: nothing to do.
pub(crate) fn adopt(_socket: &Socket) -> io::Result<()> {
    Ok(())
}

/// `create-tcp-socket` + `start-connect`; the socket's pollable tells when it finished.
pub(crate) fn connect_start(addr: &SocketAddr) -> io::Result<Socket> {
    let socket = new_socket(addr)?;
    socket
        .start_connect(network(), to_wasi_addr(addr))
        .map_err(wasi_err)?;
    Ok(Socket::new(socket, Phase::Connecting))
}

/// The connect's result, after the socket became writable.
pub(crate) fn connect_finish(socket: &Socket) -> io::Result<()> {
    let mut state = socket.lock();
    socket.finish_connect(&mut state);
    match state.phase {
        Phase::Connected => Ok(()),
        Phase::Connecting => Err(errno(libc::EINPROGRESS)),
        _ => Err(errno(
            state.pending_error.take().unwrap_or(libc::ECONNREFUSED),
        )),
    }
}

/// `create-tcp-socket` + `start-bind`/`finish-bind` (`SO_REUSEADDR` is implied on WASI, and
/// IPv6 sockets are always v6-only).
pub(crate) fn bind(addr: &SocketAddr) -> io::Result<Socket> {
    let socket = new_socket(addr)?;
    socket
        .start_bind(network(), to_wasi_addr(addr))
        .map_err(wasi_err)?;
    finish(&socket, || socket.finish_bind())?;
    Ok(Socket::new(socket, Phase::Unconnected))
}

/// `set-listen-backlog-size` + `start-listen`/`finish-listen`. WASI rejects a backlog of 0,
/// which natively means "the smallest queue": it becomes 1.
pub(crate) fn listen(socket: &Socket, backlog: i32) -> io::Result<()> {
    let tcp = socket.tcp();
    tcp.set_listen_backlog_size(backlog.max(1) as u64)
        .map_err(wasi_err)?;
    tcp.start_listen().map_err(wasi_err)?;
    finish(tcp, || tcp.finish_listen())?;
    socket.lock().phase = Phase::Listening;
    Ok(())
}

/// `accept`: the new socket comes with its streams.
pub(crate) fn accept(socket: &Socket) -> io::Result<(Socket, SocketAddr)> {
    let (peer, input, output) = socket.tcp().accept().map_err(wasi_err)?;
    let addr = peer.remote_address().map_err(wasi_err)?;
    Ok((Socket::connected(peer, input, output), from_wasi_addr(addr)))
}

/// `local-address`.
pub(crate) fn local_addr(socket: &Socket) -> io::Result<SocketAddr> {
    socket
        .tcp()
        .local_address()
        .map(from_wasi_addr)
        .map_err(wasi_err)
}

/// `remote-address`; `ENOTCONN` when not connected, as natively.
pub(crate) fn peer_addr(socket: &Socket) -> io::Result<SocketAddr> {
    socket
        .tcp()
        .remote_address()
        .map(from_wasi_addr)
        .map_err(|code| match code {
            ErrorCode::InvalidState => errno(libc::ENOTCONN),
            other => wasi_err(other),
        })
}

/// WASI sockets are always non-blocking.
pub(crate) fn set_non_blocking(_socket: &Socket) -> io::Result<()> {
    Ok(())
}

/// Every WASI socket has pollables.
pub(crate) fn is_selectable(_socket: &Socket) -> bool {
    true
}

/// `shutdown`; `ENOTCONN` when not connected, as natively.
pub(crate) fn shutdown(socket: &Socket, how: Shutdown) -> io::Result<()> {
    let how = match how {
        Shutdown::Read => ShutdownType::Receive,
        Shutdown::Write => ShutdownType::Send,
        Shutdown::Both => ShutdownType::Both,
    };
    socket.tcp().shutdown(how).map_err(|code| match code {
        ErrorCode::InvalidState => errno(libc::ENOTCONN),
        other => wasi_err(other),
    })
}

/// Writes what the output stream's budget (`check-write`) allows now; `EAGAIN` when it
/// allows nothing.
pub(crate) fn send(socket: &Socket, data: &[u8]) -> io::Result<usize> {
    let mut state = socket.lock();
    if let Some(code) = state.pending_error.take() {
        return Err(errno(code));
    }
    let (_, output) = socket.connected_streams(&state)?;
    let result = output.check_write().and_then(|budget| {
        let n = data
            .len()
            .min(usize::try_from(budget).unwrap_or(usize::MAX));
        if n > 0 {
            output.write(&data[..n])?;
        }
        Ok(n)
    });
    state.wrote |= matches!(result, Ok(n) if n > 0);
    match result {
        Ok(0) if !data.is_empty() => Err(errno(libc::EAGAIN)),
        Ok(n) => Ok(n),
        Err(StreamError::Closed) => Err(errno(libc::EPIPE)),
        Err(StreamError::LastOperationFailed(err)) => Err(errno(stream_errno(&err))),
    }
}

/// Receives from the read-ahead buffer first, then straight from the input stream; `Ok(0)` at
/// end of stream, `EAGAIN` when nothing has arrived.
pub(crate) fn recv(socket: &Socket, buf: &mut [u8]) -> io::Result<usize> {
    let mut state = socket.lock();
    socket.connected_streams(&state)?;
    if buf.is_empty() {
        return Ok(0);
    }
    if state.buffered().is_empty() {
        let bytes = socket.read_stream(&mut state, buf.len());
        if !bytes.is_empty() {
            let n = bytes.len().min(buf.len());
            buf[..n].copy_from_slice(&bytes[..n]);
            if n < bytes.len() {
                // More than asked for (a host's liberty): keep the rest for the next read.
                state.read_ahead = bytes;
                state.read_pos = n;
            }
            return Ok(n);
        }
    }
    take_buffered(&mut state, buf, true)
}

/// Copies up to `buf.len()` bytes from the read-ahead buffer, leaving them for the next
/// `recv`. When fewer are buffered it first reads what the stream has, a whole chunk at a
/// time, so that peeking line by line costs one host call per chunk, not per line.
pub(crate) fn peek(socket: &Socket, buf: &mut [u8]) -> io::Result<usize> {
    let mut state = socket.lock();
    socket.connected_streams(&state)?;
    if buf.is_empty() {
        return Ok(0);
    }
    let missing = buf.len().saturating_sub(state.buffered().len());
    if missing > 0 {
        socket.fill(&mut state, missing.max(READ_CHUNK));
    }
    take_buffered(&mut state, buf, false)
}

/// Copies buffered bytes into `buf` (consuming them when `consume`), or reports how the stream
/// ended, or `EAGAIN`.
fn take_buffered(state: &mut State, buf: &mut [u8], consume: bool) -> io::Result<usize> {
    let buffered = state.buffered();
    if !buffered.is_empty() {
        let n = buffered.len().min(buf.len());
        buf[..n].copy_from_slice(&buffered[..n]);
        if consume {
            state.consume(n);
        }
        return Ok(n);
    }
    match state.input_end {
        None => Err(errno(libc::EAGAIN)),
        Some(InputEnd::Eof) => Ok(0),
        Some(InputEnd::Error(code)) => {
            // Reported once; afterwards the stream reads as ended, as natively after a reset.
            if consume {
                state.input_end = Some(InputEnd::Eof);
            }
            Err(errno(code))
        }
    }
}

/// What a socket waits on in one `poll`, and what is already known without waiting.
struct Watch<'a> {
    recv: Option<&'a Pollable>,
    send: Option<&'a Pollable>,
    occurred: SockEvent,
}

/// Decides, for one socket, which pollables to wait on and which events hold already.
fn watch<'a>(socket: &'a Socket, requested: SockEvent) -> Watch<'a> {
    let state = socket.lock();
    let mut watch = Watch {
        recv: None,
        send: None,
        occurred: SockEvent::empty(),
    };
    match state.phase {
        Phase::Connecting => watch.send = Some(socket.socket_ready()),
        Phase::Listening if requested.contains(SockEvent::RECV) => {
            watch.recv = Some(socket.socket_ready());
        }
        Phase::Listening => {}
        Phase::Connected => {
            if let Some((input, output)) = socket.streams() {
                if requested.contains(SockEvent::RECV) {
                    if state.readable() {
                        watch.occurred |= SockEvent::RECV;
                    } else {
                        watch.recv = Some(socket.input_ready(input));
                    }
                }
                if requested.contains(SockEvent::SEND) {
                    watch.send = Some(socket.output_ready(output));
                }
            }
        }
        Phase::Unconnected | Phase::Failed => {
            // Natively an unconnected or failed socket polls as hung up.
            watch.occurred |= SockEvent::ERR;
        }
    }
    if matches!(state.input_end, Some(InputEnd::Error(_))) || state.pending_error.is_some() {
        watch.occurred |= SockEvent::ERR;
    }
    drop(state);
    watch
}

/// After `poll`: turns ready pollables into events, finishing connects and reading ahead so
/// that a failed stream shows as `ERR`, as natively.
fn settle(socket: &Socket, requested: SockEvent, recv_ready: bool, send_ready: bool) -> SockEvent {
    let mut state = socket.lock();
    let mut occurred = SockEvent::empty();
    match state.phase {
        Phase::Connecting if send_ready => {
            socket.finish_connect(&mut state);
            match state.phase {
                Phase::Connected => occurred |= SockEvent::SEND,
                Phase::Failed => occurred |= requested | SockEvent::ERR,
                _ => {}
            }
        }
        Phase::Listening if recv_ready => occurred |= SockEvent::RECV,
        Phase::Connected => {
            if recv_ready {
                socket.fill(&mut state, READ_CHUNK);
                if state.readable() {
                    occurred |= SockEvent::RECV;
                }
            }
            if send_ready {
                if let Some((_, output)) = socket.streams() {
                    match output.check_write() {
                        Ok(0) => {}
                        Ok(_) | Err(StreamError::Closed) => occurred |= SockEvent::SEND,
                        Err(StreamError::LastOperationFailed(err)) => {
                            state.pending_error = Some(stream_errno(&err));
                            occurred |= SockEvent::SEND;
                        }
                    }
                }
            }
        }
        _ => {}
    }
    if matches!(state.input_end, Some(InputEnd::Error(_))) || state.pending_error.is_some() {
        occurred |= SockEvent::ERR;
    }
    occurred & (requested | SockEvent::ERR)
}

/// One `wasi:io/poll.poll` over every socket's pollables and a monotonic-clock timer.
/// Socks whose events hold already (buffered data, a failed connect) make the timer zero, so
/// the others are still reported in the same call.
pub(crate) fn poll<T: PollTarget>(targets: &mut [T], timeout: Duration) -> io::Result<usize> {
    graveyard::sweep();
    // Per target: the events known without waiting, and the indices of its recv and send
    // pollables in the one list given to `poll`.
    let mut plans = Vec::with_capacity(targets.len());
    let ready = {
        let mut pollables: Vec<&Pollable> = Vec::with_capacity(targets.len() * 2 + 1);
        for target in targets.iter() {
            let plan = match target.socket() {
                Some(socket) => {
                    let watch = watch(socket, target.requested());
                    let recv = push(&mut pollables, watch.recv);
                    let send = push(&mut pollables, watch.send);
                    (watch.occurred, recv, send)
                }
                None => (SockEvent::ERR, None, None),
            };
            plans.push(plan);
        }
        let known_now = plans.iter().any(|(occurred, ..)| !occurred.is_empty());
        let nanos = if known_now {
            0
        } else {
            u64::try_from(timeout.as_nanos()).unwrap_or(u64::MAX)
        };
        let timer = monotonic_clock::subscribe_duration(nanos);
        pollables.push(&timer);
        let mut ready = vec![false; pollables.len()];
        for index in wasi_poll(&pollables) {
            if let Some(flag) = ready.get_mut(index as usize) {
                *flag = true;
            }
        }
        ready
    };

    let mut count = 0;
    for (target, (known, recv, send)) in targets.iter_mut().zip(plans) {
        let is_ready = |slot: Option<usize>| slot.is_some_and(|i| ready[i]);
        let occurred = match target.socket() {
            Some(socket) => {
                known | settle(socket, target.requested(), is_ready(recv), is_ready(send))
            }
            None => SockEvent::ERR,
        };
        target.set_occurred(occurred);
        count += usize::from(!occurred.is_empty());
    }
    Ok(count)
}

/// Appends `pollable` (if any) to the poll list; its index there.
fn push<'a>(pollables: &mut Vec<&'a Pollable>, pollable: Option<&'a Pollable>) -> Option<usize> {
    pollable.map(|pollable| {
        pollables.push(pollable);
        pollables.len() - 1
    })
}

/// Literal addresses resolve to themselves; names go through `wasi:sockets/ip-name-lookup`.
pub(crate) fn resolve(host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let lookup_failed = |code: ErrorCode| {
        io::Error::other(format!(
            "failed to look up address information for {host:?}: {}",
            code.message()
        ))
    };
    let stream = resolve_addresses(network(), host).map_err(lookup_failed)?;
    let mut addrs = Vec::new();
    loop {
        match stream.resolve_next_address() {
            Ok(Some(IpAddress::Ipv4((a, b, c, d)))) => {
                addrs.push(SocketAddr::new(Ipv4Addr::new(a, b, c, d).into(), port));
            }
            Ok(Some(IpAddress::Ipv6((a, b, c, d, e, f, g, h)))) => {
                addrs.push(SocketAddr::new(
                    Ipv6Addr::new(a, b, c, d, e, f, g, h).into(),
                    port,
                ));
            }
            Ok(None) => return Ok(addrs),
            Err(ErrorCode::WouldBlock) => stream.subscribe().block(),
            Err(code) => return Err(lookup_failed(code)),
        }
    }
}

/// Reads an option WASI 0.2 has; `SockOpt::Error` reads the pending error this backend keeps.
pub(crate) fn get_sock_opt(socket: &Socket, opt: SockOpt) -> io::Result<SockOptValue> {
    let tcp = socket.tcp();
    Ok(match opt {
        SockOpt::KeepAlive => SockOptValue::Bool(tcp.keep_alive_enabled().map_err(wasi_err)?),
        SockOpt::RecvBufferSize => {
            SockOptValue::Size(size(tcp.receive_buffer_size().map_err(wasi_err)?))
        }
        SockOpt::SendBufferSize => {
            SockOptValue::Size(size(tcp.send_buffer_size().map_err(wasi_err)?))
        }
        SockOpt::Ttl => SockOptValue::Size(tcp.hop_limit().map_err(wasi_err)?.into()),
        SockOpt::Error => SockOptValue::Error(socket.lock().pending_error.take()),
        SockOpt::NoDelay => return Err(unsupported("TCP_NODELAY")),
        SockOpt::ReuseAddress => return Err(unsupported("SO_REUSEADDR")),
    })
}

fn size(bytes: u64) -> usize {
    usize::try_from(bytes).unwrap_or(usize::MAX)
}

/// Writes an option WASI 0.2 has.
pub(crate) fn set_sock_opt(socket: &Socket, opt: SockOpt, value: SockOptValue) -> io::Result<()> {
    let tcp = socket.tcp();
    match (opt, value) {
        (SockOpt::KeepAlive, SockOptValue::Bool(on)) => tcp.set_keep_alive_enabled(on),
        (SockOpt::RecvBufferSize, SockOptValue::Size(bytes)) => {
            tcp.set_receive_buffer_size(bytes as u64)
        }
        (SockOpt::SendBufferSize, SockOptValue::Size(bytes)) => {
            tcp.set_send_buffer_size(bytes as u64)
        }
        (SockOpt::Ttl, SockOptValue::Size(hops)) => {
            let hops = u8::try_from(hops)
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "TTL out of range"))?;
            tcp.set_hop_limit(hops)
        }
        (SockOpt::NoDelay, SockOptValue::Bool(_)) => return Err(unsupported("TCP_NODELAY")),
        (SockOpt::ReuseAddress, SockOptValue::Bool(_)) => return Err(unsupported("SO_REUSEADDR")),
        (opt, value) => return Err(crate::opt::mismatch(opt, value)),
    }
    .map_err(wasi_err)
}
