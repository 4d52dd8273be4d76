//! [`BufSock`]: a sock with a read-ahead buffer, and [`ReadAhead`], the buffer itself, written
//! once for every backend (the WASI backend keeps one inside each socket for its `peek`).

use std::borrow::Borrow;
use std::cell::RefCell;
use std::fmt;
use std::io::{self, BufRead, Read, Write};
use std::net::Shutdown;
use std::time::{Duration, Instant};

use crate::error::is_permanent;
use crate::io::{until_terminator, Step};
use crate::{Sock, SockError, SockEvent, SockIo, ThreadInterrupt};

/// Bytes read from a stream but not yet consumed: `bytes[pos..end]`, in one allocation that
/// is reused, so a reader that keeps up never copies a byte twice.
#[derive(Debug, Default)]
pub(crate) struct ReadAhead {
    bytes: Vec<u8>,
    pos: usize,
    end: usize,
}

impl ReadAhead {
    /// The bytes read ahead, oldest first.
    pub(crate) fn buffered(&self) -> &[u8] {
        &self.bytes[self.pos..self.end]
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.pos == self.end
    }

    /// Drops the first `n` buffered bytes (at most all of them).
    pub(crate) fn consume(&mut self, n: usize) {
        self.pos = self.end.min(self.pos.saturating_add(n));
        if self.pos == self.end {
            self.pos = 0;
            self.end = 0;
        }
    }

    /// Copies buffered bytes to the start of `dst`, consuming them when `consume`; how many.
    pub(crate) fn copy_to(&mut self, dst: &mut [u8], consume: bool) -> usize {
        let n = self.buffered().len().min(dst.len());
        dst[..n].copy_from_slice(&self.buffered()[..n]);
        if consume {
            self.consume(n);
        }
        n
    }

    /// How many more bytes fit below `capacity`.
    pub(crate) fn room(&self, capacity: usize) -> usize {
        capacity.saturating_sub(self.buffered().len())
    }

    /// One `read` into the room below `capacity` (the unread bytes are moved to the front
    /// first when the room is not at the end already); what `read` returned. Callers check
    /// [`room`](ReadAhead::room) first: with none, `read` gets an empty slice.
    pub(crate) fn fill(
        &mut self,
        capacity: usize,
        read: impl FnOnce(&mut [u8]) -> io::Result<usize>,
    ) -> io::Result<usize> {
        let room = self.room(capacity);
        if self.end + room > self.bytes.len() && self.pos > 0 {
            self.bytes.copy_within(self.pos..self.end, 0);
            self.end -= self.pos;
            self.pos = 0;
        }
        if self.bytes.len() < self.end + room {
            // The first fill allocates the buffer, zeroed once (the reads need initialised
            // bytes); later fills reuse it.
            self.bytes.resize(self.end + room, 0);
        }
        let n = read(&mut self.bytes[self.end..self.end + room])?;
        // A broken `read` may claim more than it was given.
        self.end += n.min(room);
        Ok(n)
    }

    /// Appends bytes the host handed over in a buffer of its own: taken as they are (no copy)
    /// when nothing is buffered, else after the unread bytes, with the consumed ones dropped
    /// first so a stream that is never drained stays bounded by what its reader asks for.
    #[cfg_attr(not(all(sockets, target_family = "wasm")), allow(dead_code))] // WASI host reads
    pub(crate) fn append(&mut self, bytes: Vec<u8>) {
        if bytes.is_empty() {
            return;
        }
        if self.is_empty() {
            self.end = bytes.len();
            self.pos = 0;
            self.bytes = bytes;
        } else {
            self.bytes.truncate(self.end);
            self.bytes.drain(..self.pos);
            self.bytes.extend_from_slice(&bytes);
            self.pos = 0;
            self.end = self.bytes.len();
        }
    }

    /// The buffer's allocation, emptied, when nothing is buffered (else an empty `Vec`): a
    /// host that reads into memory of the guest's reads into it again instead of allocating,
    /// and [`append`](ReadAhead::append) takes it back.
    #[cfg_attr(not(wasi_p3), allow(dead_code))] // WASI 0.3's reads in flight
    pub(crate) fn take_spare(&mut self) -> Vec<u8> {
        if !self.is_empty() {
            return Vec::new();
        }
        self.pos = 0;
        self.end = 0;
        let mut spare = std::mem::take(&mut self.bytes);
        spare.clear();
        spare
    }

    /// The unread bytes.
    pub(crate) fn into_vec(mut self) -> Vec<u8> {
        self.bytes.truncate(self.end);
        self.bytes.drain(..self.pos);
        self.bytes
    }
}

/// The default capacity of a [`BufSock`]: 64 KiB, the chunk Core's `SocketHandler` receives
/// into and the most wasmtime hands out per stream read.
pub const DEFAULT_BUF_CAPACITY: usize = 64 * 1024;

/// A sock with a read-ahead buffer: reads take as much as the socket has (one `recv` of up to
/// the capacity) and serve later reads from memory, so line and message parsers cost one system
/// call per buffer instead of two per line. Rust's [`BufReader`](std::io::BufReader) for a
/// [`Sock`], with Core's operations on top.
///
/// It implements [`SockIo`] over the buffer: [`recv`](SockIo::recv) and [`peek`](SockIo::peek)
/// serve buffered bytes first, and [`wait`](SockIo::wait) reports [`SockEvent::RECV`] at once
/// while any are buffered, so [`recv_until_terminator`](SockIo::recv_until_terminator),
/// [`is_connected`](SockIo::is_connected), [`socks5::connect`](crate::socks5::connect) and
/// [`DeadlineIo`](crate::DeadlineIo) work through it, and bytes after a terminator stay readable
/// through it. Reading a line finds the terminator in the buffer and copies the line out once,
/// with no system call while the buffer holds one.
///
/// The buffer never holds more than its capacity, whatever the peer sends.
/// [`into_parts`](BufSock::into_parts) gives back the sock and the bytes read ahead but not
/// consumed, so nothing is lost.
///
/// [`Read`], [`BufRead`] and [`Write`] are non-blocking, as on the sock itself: an empty
/// buffer and an empty socket give [`io::ErrorKind::WouldBlock`]. For blocking reads with
/// Core's timeout and interrupt, wrap it: [`SockIo::with_deadline`].
///
/// `S` is the sock underneath: a [`Sock`], or any [`SockIo`] (a mock in tests). The buffer
/// lives in a `RefCell`, as [`SockIo`]'s methods take `&self`: a `BufSock` may move between
/// threads but is not shared by them (send from another thread through
/// [`get_ref`](BufSock::get_ref)).
///
/// ```
/// # bitcoin_sock::wasip3_main!(); // WASI 0.3: `main` entered where sockets may wait
/// use bitcoin_sock::{BufSock, Sock, SockEvent, SockIo, ThreadInterrupt};
/// use std::time::Duration;
///
/// let timeout = Duration::from_secs(5);
/// let interrupt = ThreadInterrupt::new();
/// let listener = Sock::bind_listen("127.0.0.1:0".parse()?, 8)?;
/// let client = Sock::connect(listener.local_addr()?, timeout)?;
/// listener.wait(timeout, SockEvent::RECV)?;
/// let server = BufSock::new(listener.accept()?.0);
///
/// client.send_complete(b"version\nverack\nrest", timeout, &interrupt)?;
/// assert_eq!(server.recv_until_terminator(b'\n', timeout, &interrupt, 1000)?, b"version");
/// // The first line's read took everything that had arrived; the second line needs no
/// // system call.
/// assert_eq!(server.recv_until_terminator(b'\n', timeout, &interrupt, 1000)?, b"verack");
/// let (sock, unread) = server.into_parts();
/// assert_eq!(unread, b"rest");
/// # drop(sock);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct BufSock<S: SockIo = Sock> {
    inner: S,
    capacity: usize,
    state: RefCell<State>,
}

#[derive(Debug, Default)]
struct State {
    read_ahead: ReadAhead,
    /// A permanent error a top-up `peek` met behind buffered bytes: reported once they are
    /// consumed, where the sock would have reported it.
    deferred_error: Option<io::Error>,
}

impl State {
    /// Whether a `recv` would return at once.
    fn readable(&self) -> bool {
        !self.read_ahead.is_empty() || self.deferred_error.is_some()
    }
}

impl<S: SockIo> BufSock<S> {
    /// Wraps `inner` with a buffer of [`DEFAULT_BUF_CAPACITY`] bytes, allocated at the first
    /// read.
    pub fn new(inner: S) -> BufSock<S> {
        BufSock::with_capacity(DEFAULT_BUF_CAPACITY, inner)
    }

    /// Wraps `inner` with a buffer of `capacity` bytes (at least 1), allocated at the first
    /// read; the argument order of [`BufReader::with_capacity`](std::io::BufReader::with_capacity).
    pub fn with_capacity(capacity: usize, inner: S) -> BufSock<S> {
        BufSock {
            inner,
            capacity: capacity.max(1),
            state: RefCell::new(State::default()),
        }
    }

    /// The sock underneath. Reading from it directly skips the buffered bytes.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The sock underneath, mutably. Reading from it directly skips the buffered bytes.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The bytes read ahead and not yet consumed.
    pub fn buffer(&mut self) -> &[u8] {
        self.state.get_mut().read_ahead.buffered()
    }

    /// The most bytes the buffer holds.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The sock, and the bytes read ahead but not consumed (they came before anything the
    /// sock reads next).
    pub fn into_parts(self) -> (S, Vec<u8>) {
        (self.inner, self.state.into_inner().read_ahead.into_vec())
    }

    /// One `recv` of the inner sock into the buffer's room (or the deferred error, once the
    /// buffer is empty); what it returned.
    fn fill(inner: &S, capacity: usize, state: &mut State) -> io::Result<usize> {
        if state.read_ahead.is_empty() {
            if let Some(error) = state.deferred_error.take() {
                return Err(error);
            }
        }
        state.read_ahead.fill(capacity, |room| inner.recv(room))
    }
}

/// Closing one side of a `BufSock` over a [`Sock`] (owned or borrowed) without reaching for
/// [`get_ref`](BufSock::get_ref).
impl<S: SockIo + Borrow<Sock>> BufSock<S> {
    /// Shuts down the sending half (Core's `ShutdownSend`, [`Sock::shutdown_send`]): the peer
    /// reads end of stream after what was sent. Writes are not buffered, so nothing is held
    /// back; reading goes on.
    ///
    /// # Errors
    /// As [`Sock::shutdown_send`].
    pub fn shutdown_send(&self) -> io::Result<()> {
        self.inner.borrow().shutdown_send()
    }

    /// Shuts down one or both halves ([`Sock::shutdown`], `shutdown(2)`). Bytes already read
    /// ahead stay readable through the buffer after [`Shutdown::Read`].
    ///
    /// # Errors
    /// As [`Sock::shutdown`].
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.inner.borrow().shutdown(how)
    }
}

impl<S: SockIo> SockIo for BufSock<S> {
    /// The inner sock's `send`: writes are not buffered.
    fn send(&self, data: &[u8]) -> io::Result<usize> {
        self.inner.send(data)
    }

    /// Buffered bytes first, without a system call; with none, one `recv` of up to the
    /// capacity into the buffer (or, for a `buf` at least as big, straight into `buf`).
    /// `Ok(0)` at end of stream and for an empty `buf`, as on the sock.
    fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let state = &mut *self.state.borrow_mut();
        if !state.readable() && buf.len() >= self.capacity {
            return self.inner.recv(buf);
        }
        if state.read_ahead.is_empty() && Self::fill(&self.inner, self.capacity, state)? == 0 {
            return Ok(0);
        }
        Ok(state.read_ahead.copy_to(buf, true))
    }

    /// Buffered bytes, topped up with one `recv` when fewer than `buf.len()` are buffered
    /// and the buffer has room (so a peek sees new data, as on the sock); they stay for the
    /// next `recv`. At most the capacity is ever seen.
    fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        let state = &mut *self.state.borrow_mut();
        let short = state.read_ahead.buffered().len() < buf.len();
        if short && state.deferred_error.is_none() && state.read_ahead.room(self.capacity) > 0 {
            match Self::fill(&self.inner, self.capacity, state) {
                Err(e) if state.read_ahead.is_empty() => return Err(e),
                // Behind buffered bytes, end of stream shows again once they are consumed;
                // a permanent error is kept for then. (With none buffered, end of stream is
                // the empty copy below.)
                Err(e) if is_permanent(&e) => state.deferred_error = Some(e),
                Ok(_) | Err(_) => {}
            }
        }
        if state.read_ahead.is_empty() {
            if let Some(error) = state.deferred_error.take() {
                return Err(error);
            }
        }
        Ok(state.read_ahead.copy_to(buf, false))
    }

    /// [`SockEvent::RECV`] at once while bytes are buffered (with the inner sock's other
    /// requested events at this moment); else the inner sock's `wait`.
    fn wait(&self, timeout: Duration, requested: SockEvent) -> io::Result<SockEvent> {
        let (buffered, failed) = {
            let state = self.state.borrow();
            (!state.read_ahead.is_empty(), state.deferred_error.is_some())
        };
        if failed {
            return Ok((requested & SockEvent::RECV) | SockEvent::ERR);
        }
        if requested.contains(SockEvent::RECV) && buffered {
            let others = requested.difference(SockEvent::RECV);
            let occurred = if others.is_empty() {
                SockEvent::empty()
            } else {
                self.inner.wait(Duration::ZERO, others)?
            };
            return Ok(occurred | SockEvent::RECV);
        }
        self.inner.wait(timeout, requested)
    }

    /// The inner sock's clock (a mock's fake clock goes through).
    fn now(&self) -> Instant {
        self.inner.now()
    }

    /// As the provided method (the same loop, limits and error texts), but each attempt takes
    /// the line from the buffer: a scan of the buffered bytes, one copy out, no system call;
    /// only when the buffer holds no terminator does it refill it, with one `recv` of up to
    /// the capacity. Bytes after the terminator stay buffered for the next read.
    ///
    /// As in Core, the deadline and the interrupt are checked after every attempt that did
    /// not end the line, so with a zero timeout a line is returned only if one attempt sees
    /// it whole: here, if it fits in the buffer (Core: in its peek).
    ///
    /// # Errors
    /// Those of [`SockIo::recv_until_terminator`], with the same texts.
    fn recv_until_terminator(
        &self,
        terminator: u8,
        timeout: Duration,
        interrupt: &ThreadInterrupt,
        max_data: usize,
    ) -> Result<Vec<u8>, SockError> {
        // A whole line already buffered (the common case): one scan and one copy of exactly
        // the line, without setting up the loop. Anything else takes the loop below, whose
        // first attempt is this same scan.
        {
            let state = &mut *self.state.borrow_mut();
            let buffered = state.read_ahead.buffered();
            let window = &buffered[..buffered.len().min(max_data)];
            if let Some(pos) = memchr::memchr(terminator, window) {
                let line = window[..pos].to_vec();
                state.read_ahead.consume(pos + 1);
                return Ok(line);
            }
        }
        until_terminator(
            self,
            timeout,
            interrupt,
            max_data,
            |data, received, limit| {
                let state = &mut *self.state.borrow_mut();
                if state.read_ahead.is_empty() {
                    match Self::fill(&self.inner, self.capacity, state) {
                        Ok(0) => return Step::Closed,
                        Ok(_) => {}
                        Err(e) => return Step::Failed(e),
                    }
                }
                let read_ahead = &mut state.read_ahead;
                let buffered = read_ahead.buffered();
                let window = &buffered[..buffered.len().min(limit)];
                let found = memchr::memchr(terminator, window);
                let read = found.map_or(window.len(), |pos| pos + 1);
                data.truncate(received);
                data.extend_from_slice(&window[..read]);
                read_ahead.consume(read);
                Step::Read {
                    read,
                    found: found.is_some(),
                }
            },
        )
    }
}

impl<S: SockIo> Read for BufSock<S> {
    /// [`SockIo::recv`] through the buffer: non-blocking, `WouldBlock` when nothing is
    /// buffered or has arrived; `Ok(0)` at end of stream.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        SockIo::recv(self, buf)
    }
}

impl<S: SockIo> BufRead for BufSock<S> {
    /// The buffered bytes; when there are none, one `recv` of up to the capacity first.
    /// Non-blocking: `WouldBlock` when nothing has arrived; empty at end of stream.
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        let state = self.state.get_mut();
        if state.read_ahead.is_empty() {
            Self::fill(&self.inner, self.capacity, state)?;
        }
        Ok(state.read_ahead.buffered())
    }

    fn consume(&mut self, amt: usize) {
        self.state.get_mut().read_ahead.consume(amt);
    }
}

impl<S: SockIo> Write for BufSock<S> {
    /// The inner sock's `send`: non-blocking, `WouldBlock` when the send buffer is full.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.send(buf)
    }

    /// Nothing to do: writes are not buffered.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<S: SockIo + fmt::Debug> fmt::Debug for BufSock<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let buffered = self
            .state
            .try_borrow()
            .map(|s| s.read_ahead.buffered().len());
        f.debug_struct("BufSock")
            .field("inner", &self.inner)
            .field("buffered", &buffered.ok())
            .field("capacity", &self.capacity)
            .finish()
    }
}

impl<S: SockIo + Default> Default for BufSock<S> {
    fn default() -> BufSock<S> {
        BufSock::new(S::default())
    }
}
