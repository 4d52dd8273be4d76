//! Creating, connecting, binding, listening, accepting and shutting down: the two-phase
//! `start-*`/`finish-*` calls of `wasi:sockets/tcp`.

use std::io;
use std::net::{Shutdown, SocketAddr};

use wasi::sockets::network::{ErrorCode, IpAddressFamily};
use wasi::sockets::tcp::{ShutdownType, TcpSocket};
use wasi::sockets::tcp_create_socket::create_tcp_socket;

use super::super::state::Phase;
use super::addr::{from_wasi_addr, network, to_wasi_addr};
use super::errno::{connection_error_code_to_io, error_code_to_errno, error_code_to_io};
use super::{Socket, State};

fn new_socket(addr: &SocketAddr) -> io::Result<TcpSocket> {
    let family = if addr.is_ipv4() {
        IpAddressFamily::Ipv4
    } else {
        IpAddressFamily::Ipv6
    };
    create_tcp_socket(family).map_err(error_code_to_io)
}

/// Blocks on `socket`'s pollable until a two-phase operation finishes (`finish_bind`,
/// `finish_listen`: immediate in wasmtime, bounded by the host elsewhere).
fn finish(socket: &TcpSocket, mut finish: impl FnMut() -> Result<(), ErrorCode>) -> io::Result<()> {
    loop {
        match finish() {
            Err(ErrorCode::WouldBlock) => socket.subscribe().block(),
            other => return other.map_err(error_code_to_io),
        }
    }
}

/// `create-tcp-socket` + `start-connect`; the socket's pollable tells when it finished.
pub(crate) fn connect_start(addr: &SocketAddr) -> io::Result<Socket> {
    let socket = new_socket(addr)?;
    socket
        .start_connect(network(), to_wasi_addr(addr))
        .map_err(error_code_to_io)?;
    Ok(Socket::new(socket, Phase::Connecting))
}

/// The connect's result, after the socket became writable.
pub(crate) fn connect_finish(socket: &Socket) -> io::Result<()> {
    let mut state = socket.lock();
    socket.connect_finish(&mut state);
    state.connect_result()
}

/// `create-tcp-socket` + `start-bind`/`finish-bind` (`SO_REUSEADDR` is implied on WASI, and
/// IPv6 sockets are always v6-only).
pub(crate) fn bind(addr: &SocketAddr) -> io::Result<Socket> {
    let socket = new_socket(addr)?;
    socket
        .start_bind(network(), to_wasi_addr(addr))
        .map_err(error_code_to_io)?;
    finish(&socket, || socket.finish_bind())?;
    Ok(Socket::new(socket, Phase::Unconnected))
}

/// `set-listen-backlog-size` + `start-listen`/`finish-listen`. WASI rejects a backlog of 0,
/// which natively means "the smallest queue": it becomes 1.
pub(crate) fn listen(socket: &Socket, backlog: i32) -> io::Result<()> {
    let tcp = socket.tcp();
    tcp.set_listen_backlog_size(backlog.max(1) as u64)
        .map_err(error_code_to_io)?;
    tcp.start_listen().map_err(error_code_to_io)?;
    finish(tcp, || tcp.finish_listen())?;
    socket.lock().phase = Phase::Listening;
    Ok(())
}

/// `accept`: the new socket comes with its streams.
pub(crate) fn accept(socket: &Socket) -> io::Result<(Socket, SocketAddr)> {
    let (peer, input, output) = socket.tcp().accept().map_err(error_code_to_io)?;
    let addr = peer.remote_address().map_err(error_code_to_io)?;
    Ok((Socket::connected(peer, input, output), from_wasi_addr(addr)))
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
    let kind = match how {
        Shutdown::Read => ShutdownType::Receive,
        Shutdown::Write => ShutdownType::Send,
        Shutdown::Both => ShutdownType::Both,
    };
    socket
        .tcp()
        .shutdown(kind)
        .map_err(connection_error_code_to_io)?;
    if how != Shutdown::Read {
        socket.lock().send_shut = true;
    }
    Ok(())
}

/// WASI 0.2 has no `SO_LINGER`, so no reset: the close is an ordinary one. The bytes the host
/// took from a write still go to the peer, then its end of stream (wasmtime shuts the socket
/// down after the write in flight; a close that would wait for it goes to the graveyard).
pub(crate) fn reset_on_close(_socket: &Socket) -> io::Result<()> {
    Ok(())
}

impl Socket {
    /// Finishes a connect that the socket's pollable says is done; on failure the error is
    /// kept as the pending socket error, as `SO_ERROR` keeps it natively.
    pub(super) fn connect_finish(&self, state: &mut State) {
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
                state.pending_error = Some(error_code_to_errno(code));
            }
        }
    }
}
