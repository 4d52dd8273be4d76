//! `send`, `recv` and `peek` over `wasi:io/streams`, with the read-ahead buffer that gives
//! WASI a `peek`: the front end's `ReadAhead`, the same code as `BufSock`'s buffer.

use std::io::{self, IoSlice};

use wasi::clocks::monotonic_clock;
use wasi::io::poll::poll as wasi_poll;
use wasi::io::streams::{InputStream, OutputStream, StreamError};

use super::super::errno::errno_to_io;
use super::super::state::{InputEnd, Phase};
use super::errno::stream_error_to_errno;
use super::{Socket, State};

/// wasmtime hands out at most 64 KiB per stream read.
pub(super) const READ_CHUNK: usize = 64 * 1024;

impl Socket {
    /// The streams, or the errno natively returned in this phase.
    pub(super) fn connected_streams(
        &self,
        state: &State,
    ) -> io::Result<&(InputStream, OutputStream)> {
        match (self.streams(), state.phase) {
            (Some(streams), _) => Ok(streams),
            (None, Phase::Connecting) => Err(errno_to_io(libc::EAGAIN)),
            (None, _) => Err(errno_to_io(libc::ENOTCONN)),
        }
    }

    /// One non-blocking read of up to `max` bytes from the input stream, recording how the
    /// stream ended; empty when nothing has arrived.
    pub(super) fn read_stream(&self, state: &mut State, max: usize) -> Vec<u8> {
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
                state.input_end = Some(InputEnd::Error(stream_error_to_errno(&err)));
                Vec::new()
            }
        }
    }

    /// Appends what the input stream has now (up to `max` bytes) to the read-ahead buffer,
    /// which adopts the host's buffer when it is empty (no copy).
    pub(super) fn fill(&self, state: &mut State, max: usize) {
        let bytes = self.read_stream(state, max);
        state.read_ahead.append(bytes);
    }
}

/// Writes what the output stream's budget (`check-write`) allows now; `EAGAIN` when it
/// allows nothing.
pub(crate) fn send(socket: &Socket, data: &[u8]) -> io::Result<usize> {
    let mut state = socket.lock();
    if let Some(code) = state.pending_error.take() {
        return Err(errno_to_io(code));
    }
    let (_, output) = socket.connected_streams(&state)?;
    let known = std::mem::take(&mut state.write_budget);
    let budget = if known > 0 {
        Ok(known as u64)
    } else {
        check_write(socket, output)
    };
    let result = budget.and_then(|budget| {
        let n = data
            .len()
            .min(usize::try_from(budget).unwrap_or(usize::MAX));
        if n > 0 {
            output.write(&data[..n])?;
        } else {
            // Unused: keep it for the next send.
            state.write_budget = known;
        }
        Ok(n)
    });
    state.wrote |= matches!(result, Ok(n) if n > 0);
    match result {
        Ok(0) if !data.is_empty() => Err(errno_to_io(libc::EAGAIN)),
        Ok(n) => Ok(n),
        Err(StreamError::Closed) => Err(errno_to_io(libc::EPIPE)),
        Err(StreamError::LastOperationFailed(err)) => Err(errno_to_io(stream_error_to_errno(&err))),
    }
}

/// WASI streams write one buffer per call: the first non-empty one, as std's default
/// `write_vectored` (a caller with more loops, as `SockMan`'s queue does).
pub(crate) fn send_vectored(socket: &Socket, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
    send(socket, crate::sys::first_non_empty(bufs))
}

/// `flush`: the host is to hand every byte written so far to its socket, which
/// [`is_flushed`] then tells. (wasmtime's writes need it not, jco's shim does: its `shutdown`
/// destroys the Node.js socket, dropping what Node.js has not written yet.)
pub(crate) fn start_flush(socket: &Socket) -> io::Result<()> {
    let mut state = socket.lock();
    let (_, output) = socket.connected_streams(&state)?;
    // What a wait found the stream would take does not hold while it flushes.
    state.write_budget = 0;
    match output.flush() {
        Ok(()) => Ok(()),
        Err(StreamError::Closed) => Err(errno_to_io(libc::EPIPE)),
        Err(StreamError::LastOperationFailed(err)) => Err(errno_to_io(stream_error_to_errno(&err))),
    }
}

/// Whether the flush [`start_flush`] asked for is done: the output stream's pollable is ready
/// again (wasmtime: its write task finished; jco: Node.js wrote everything). A wait for
/// `SEND` ends when it is.
pub(crate) fn is_flushed(socket: &Socket) -> bool {
    let state = socket.lock();
    match socket.connected_streams(&state) {
        Ok((_, output)) => socket.output_ready(output).ready(),
        Err(_) => true,
    }
}

/// `check-write`, asked again after one yield to the host when it first says 0, so that 0
/// means the stream's buffer is full, as `EAGAIN` does natively.
///
/// wasmtime answers 0 also when its tokio task has spent its cooperative budget (128 ready
/// I/O operations per turn), however empty the socket's buffer. A `poll` on the stream's
/// pollable and a zero timer yields once (the timer's doing), which renews the budget; the
/// pollable is ready after it only if the stream can take bytes.
pub(super) fn check_write(socket: &Socket, output: &OutputStream) -> Result<u64, StreamError> {
    let budget = output.check_write()?;
    if budget > 0 {
        return Ok(budget);
    }
    let timer = monotonic_clock::subscribe_duration(0);
    let ready = wasi_poll(&[socket.output_ready(output), &timer]);
    drop(timer);
    if ready.contains(&0) {
        output.check_write()
    } else {
        Ok(0)
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
    if state.read_ahead.is_empty() {
        let bytes = socket.read_stream(&mut state, buf.len());
        if !bytes.is_empty() {
            let n = bytes.len().min(buf.len());
            buf[..n].copy_from_slice(&bytes[..n]);
            if n < bytes.len() {
                // More than asked for (a host's liberty): keep the rest for the next read.
                state.read_ahead.append(bytes);
                state.read_ahead.consume(n);
            }
            return Ok(n);
        }
    }
    state.take_buffered(buf, true)
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
    let missing = buf.len().saturating_sub(state.read_ahead.buffered().len());
    if missing > 0 {
        socket.fill(&mut state, missing.max(READ_CHUNK));
    }
    state.take_buffered(buf, false)
}
