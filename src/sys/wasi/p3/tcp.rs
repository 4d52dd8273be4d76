//! Creating, connecting, binding, listening, accepting and shutting down. WASI 0.3's `connect`
//! is an async call (kept in flight as a subtask in the reactor's set) and `listen` returns a
//! `stream<tcp-socket>` of accepted sockets, read one at a time.

use std::io;
use std::net::{Shutdown, SocketAddr};
use std::sync::Arc;

use wasip3::sockets::types::{ErrorCode, IpAddressFamily, TcpSocket};

use super::super::errno::errno_to_io;
use super::super::state::Phase;
use super::addr::{from_wasi_addr, to_wasi_addr};
use super::canon::{self, ConnectArea, Transfer, EVENT_STREAM_READ, STATUS_RETURNED};
use super::entry::may_block;
use super::errno::{connection_error_code_to_io, error_code_to_errno, error_code_to_io};
use super::{reactor, registry, Shared, Socket, State};

/// A connect in flight: its subtask and the area its parameters and result live in.
pub(super) struct Connecting {
    pub(super) subtask: u32,
    area: Box<ConnectArea>,
}

/// A listener's stream of accepted sockets, and the read in flight on it.
pub(super) struct Accepts {
    pub(super) stream: u32,
    /// Where a read in flight puts the accepted socket's handle.
    slot: Box<u32>,
    reading: bool,
}

fn new_socket(addr: &SocketAddr) -> io::Result<TcpSocket> {
    let family = if addr.is_ipv4() {
        IpAddressFamily::Ipv4
    } else {
        IpAddressFamily::Ipv6
    };
    TcpSocket::create(family).map_err(error_code_to_io)
}

/// `create` + `connect`, the connect left in flight; the reactor tells when it finished.
pub(crate) fn connect_start(addr: &SocketAddr) -> io::Result<Socket> {
    may_block()?;
    let tcp = new_socket(addr)?;
    let mut area = ConnectArea::new(&tcp, &to_wasi_addr(addr));
    let socket = Socket::new(tcp, Phase::Connecting);
    let mut state = socket.lock();
    match area.start() {
        Ok(subtask) => {
            reactor::watch(subtask, &socket.shared);
            state.connect = Some(Connecting { subtask, area });
        }
        Err(result) => state.connect_done(&socket.shared, result),
    }
    drop(state);
    Ok(socket)
}

/// The connect's result, after the socket became writable.
pub(crate) fn connect_finish(socket: &Socket) -> io::Result<()> {
    let mut state = socket.lock();
    state.connect_result()
}

/// `create` + `bind` (`SO_REUSEADDR` is implied on WASI, and IPv6 sockets are always
/// v6-only).
pub(crate) fn bind(addr: &SocketAddr) -> io::Result<Socket> {
    let socket = new_socket(addr)?;
    socket.bind(to_wasi_addr(addr)).map_err(error_code_to_io)?;
    Ok(Socket::new(socket, Phase::Unconnected))
}

/// `set-listen-backlog-size` + `listen`. WASI rejects a backlog of 0, which natively means
/// "the smallest queue": it becomes 1.
pub(crate) fn listen(socket: &Socket, backlog: i32) -> io::Result<()> {
    let mut state = socket.lock();
    let tcp = state.tcp();
    tcp.set_listen_backlog_size(backlog.max(1) as u64)
        .map_err(error_code_to_io)?;
    let stream = tcp.listen().map_err(error_code_to_io)?.take_handle();
    state.listening(&socket.shared, stream);
    Ok(())
}

/// The next accepted socket, with its streams; `WouldBlock` while none has come.
pub(crate) fn accept(socket: &Socket) -> io::Result<(Socket, SocketAddr)> {
    may_block()?;
    let mut state = socket.lock();
    if state.accepts.is_none() {
        return Err(errno_to_io(libc::EINVAL));
    }
    if state.accepted.is_empty() {
        state.start_accept();
    }
    let Some(peer) = state.accepted.pop_front() else {
        return Err(errno_to_io(libc::EAGAIN));
    };
    registry::touched(&state);
    drop(state);
    let addr = peer.get_remote_address().map_err(error_code_to_io)?;
    Ok((Socket::connected(peer), from_wasi_addr(addr)))
}

/// WASI sockets are always non-blocking.
pub(crate) fn set_non_blocking(_socket: &Socket) -> io::Result<()> {
    Ok(())
}

/// Every WASI socket can be waited on.
pub(crate) fn is_selectable(_socket: &Socket) -> bool {
    true
}

/// WASI 0.3 has no `shutdown`: ending the send stream is `SHUT_WR` (after the bytes accepted
/// so far), dropping the receive stream `SHUT_RD`. `ENOTCONN` when not connected, as natively.
pub(crate) fn shutdown(socket: &Socket, how: Shutdown) -> io::Result<()> {
    may_block()?;
    let mut state = socket.lock();
    if state.phase != Phase::Connected {
        return Err(connection_error_code_to_io(ErrorCode::InvalidState));
    }
    if how != Shutdown::Write {
        state.stop_reading();
    }
    if how != Shutdown::Read {
        state.shut_sending();
    }
    registry::touched(&state);
    Ok(())
}

/// WASI 0.3 has no `SO_LINGER`, so no reset; the next close discards what is not written
/// yet (the write in flight cancelled), as a reset drops what the kernel holds, and the peer
/// reads end of stream at once instead of after bytes it may never take.
pub(crate) fn reset_on_close(socket: &Socket) -> io::Result<()> {
    socket.lock().discard_on_close = true;
    Ok(())
}

impl State {
    /// The connect finished: connected with its streams, or failed with its error kept as the
    /// pending socket error (as `SO_ERROR` keeps it natively).
    pub(super) fn connect_done(&mut self, shared: &Arc<Shared>, result: Result<(), ErrorCode>) {
        match result {
            Ok(()) => {
                self.phase = Phase::Connected;
                self.open_streams(shared);
            }
            Err(code) => {
                self.phase = Phase::Failed;
                self.pending_error = Some(error_code_to_errno(&code));
            }
        }
    }

    pub(super) fn on_connect_event(&mut self, shared: &Arc<Shared>, status: u32) {
        if status != STATUS_RETURNED {
            return;
        }
        if let Some(mut connecting) = self.connect.take() {
            reactor::unwatch(connecting.subtask);
            canon::drop_subtask(connecting.subtask);
            let result = connecting.area.result();
            self.connect_done(shared, result);
        }
    }

    /// Stops a connect in flight (the socket is being closed).
    pub(super) fn stop_connecting(&mut self) {
        if let Some(connecting) = self.connect.take() {
            reactor::unwatch(connecting.subtask);
            canon::cancel_subtask(connecting.subtask);
            canon::drop_subtask(connecting.subtask);
        }
    }

    /// Now listening, with the stream of accepted sockets `stream`.
    pub(super) fn listening(&mut self, shared: &Arc<Shared>, stream: u32) {
        reactor::watch(stream, shared);
        self.accepts = Some(Accepts {
            stream,
            slot: Box::new(0),
            reading: false,
        });
        self.phase = Phase::Listening;
    }

    /// Reads the next accepted socket, unless a read is in flight already; one that comes at
    /// once joins `accepted`.
    pub(super) fn start_accept(&mut self) {
        let Some(accepts) = self.accepts.as_mut() else {
            return;
        };
        if accepts.reading || accepts.stream == 0 {
            return;
        }
        let slot: *mut u32 = &mut *accepts.slot;
        // SAFETY: the slot is boxed and kept with the stream until the read's event came or
        // it was cancelled (`stop_accepting`).
        let transfer = unsafe { canon::read_socket(accepts.stream, slot) };
        self.accept_done(transfer);
    }

    fn accept_done(&mut self, transfer: Transfer) {
        let Some(accepts) = self.accepts.as_mut() else {
            return;
        };
        accepts.reading = false;
        match transfer {
            Transfer::Blocked => accepts.reading = true,
            Transfer::Completed(1) | Transfer::Dropped(1) | Transfer::Cancelled(1) => {
                let peer = canon::take_socket(*accepts.slot);
                self.accepted.push_back(peer);
            }
            _ => {}
        }
        if matches!(transfer, Transfer::Dropped(_)) {
            // The host ended the listener's stream (it should not: only on fatal errors).
            self.stop_accepting();
            self.pending_error = Some(libc::ECONNABORTED);
        }
    }

    pub(super) fn on_accept_event(&mut self, code: u32, payload: u32) {
        if code == EVENT_STREAM_READ {
            self.accept_done(Transfer::from_code(payload));
        }
    }

    /// Stops accepting: cancels the read in flight (a socket it brought is closed) and drops
    /// the stream, and the sockets accepted but not taken.
    pub(super) fn stop_accepting(&mut self) {
        if let Some(accepts) = self.accepts.take() {
            reactor::unwatch(accepts.stream);
            if accepts.reading {
                if let Transfer::Completed(1) | Transfer::Cancelled(1) =
                    canon::cancel_socket_read(accepts.stream)
                {
                    drop(canon::take_socket(*accepts.slot));
                }
            }
            canon::drop_socket_reader(accepts.stream);
        }
        self.accepted.clear();
    }
}
