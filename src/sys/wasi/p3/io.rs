//! `send`, `recv` and `peek` over the socket's two `stream<u8>`s (`receiver`, `sender`),
//! with the read-ahead buffer that gives WASI a `peek` (`../state.rs`).

use std::io;
use std::sync::Arc;

use super::super::errno::errno_to_io;
use super::super::state::Phase;
use super::canon;
use super::entry::may_block;
use super::receiver::Receiver;
use super::sender::Sender;
use super::{reactor, registry, Shared, Socket, State};

impl State {
    /// A connected socket's streams: `receive`, and a new `stream<u8>` given to `send`.
    pub(super) fn open_streams(&mut self, shared: &Arc<Shared>) {
        let tcp = self.tcp();
        let (stream, result) = tcp.receive();
        let rx = Receiver::new(stream.take_handle(), result.take_handle());
        let (reader, writer) = canon::new_byte_stream();
        let sent = tcp.send(canon::byte_reader(reader));
        let send_buffer_size = tcp.get_send_buffer_size().unwrap_or(0);
        let tx = Sender::new(writer, sent.take_handle(), send_buffer_size);
        reactor::watch(rx.stream, shared);
        reactor::watch(tx.stream, shared);
        self.rx = Some(rx);
        self.tx = Some(tx);
    }
}

/// The socket's streams, or the errno natively returned in this phase.
fn check_connected(state: &State) -> io::Result<()> {
    match state.phase {
        Phase::Connected => Ok(()),
        Phase::Connecting => Err(errno_to_io(libc::EAGAIN)),
        _ => Err(errno_to_io(libc::ENOTCONN)),
    }
}

/// One buffer per call, the first non-empty one (std's default `write_vectored`), as on
/// WASI 0.2: the send stream takes one list of bytes per write.
pub(crate) fn send_vectored(socket: &Socket, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
    send(socket, crate::sys::first_non_empty(bufs))
}

/// Takes what the send buffer has room for; `EAGAIN` when it is full.
pub(crate) fn send(socket: &Socket, data: &[u8]) -> io::Result<usize> {
    may_block()?;
    let mut state = socket.lock();
    if let Some(code) = state.pending_error.take() {
        return Err(errno_to_io(code));
    }
    check_connected(&state)?;
    let taken = state.take_for_sending(&socket.shared, data);
    registry::touched(&state);
    match taken {
        Some(0) if !data.is_empty() => Err(errno_to_io(libc::EAGAIN)),
        Some(n) => Ok(n),
        None => Err(errno_to_io(libc::EPIPE)),
    }
}

/// Receives from the read-ahead buffer first, then what a read brings at once; `Ok(0)` at end
/// of stream, `EAGAIN` when nothing has arrived (the read stays in flight).
pub(crate) fn recv(socket: &Socket, buf: &mut [u8]) -> io::Result<usize> {
    take(socket, buf, true)
}

/// Copies up to `buf.len()` bytes from the read-ahead buffer, leaving them for the next
/// `recv`; reads first when nothing is buffered.
pub(crate) fn peek(socket: &Socket, buf: &mut [u8]) -> io::Result<usize> {
    take(socket, buf, false)
}

fn take(socket: &Socket, buf: &mut [u8], consume: bool) -> io::Result<usize> {
    may_block()?;
    let mut state = socket.lock();
    check_connected(&state)?;
    if buf.is_empty() {
        return Ok(0);
    }
    let short = state.read_ahead.buffered().len() < buf.len();
    if state.read_ahead.is_empty() || (short && !consume) {
        state.cancel_probe(&socket.shared);
        state.start_read(&socket.shared, false);
    }
    let result = state.take_buffered(buf, consume);
    registry::touched(&state);
    result
}

/// Nothing to ask: a write is in flight whenever bytes are unsent, and this backend's
/// `shutdown(Write)` ends the send stream only after the last of them (`sender`), so the
/// peer gets every byte, then end of stream, whenever the shutdown comes.
pub(crate) fn start_flush(socket: &Socket) -> io::Result<()> {
    check_connected(&socket.lock())
}

/// True: see [`start_flush`]. (Were it "the host took every byte", a wait for `SEND`, which
/// here means room in the send buffer, could not tell when that happens.)
pub(crate) fn is_flushed(_socket: &Socket) -> bool {
    true
}
