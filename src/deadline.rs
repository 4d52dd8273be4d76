//! [`DeadlineIo`]: blocking [`Read`] and [`Write`] over any [`SockIo`], with Core's deadline
//! and interrupt; and the non-blocking [`Read`]/[`Write`] of [`Sock`] itself.

use std::fmt;
use std::io::{self, Read, Write};
use std::time::Duration;

use crate::io::{recv_at_least, send_at_least, Deadline};
use crate::{IntrRecvError, Sock, SockError, SockIo, ThreadInterrupt};

/// Blocking reads and writes over a [`SockIo`] with Core's deadline and interrupt, for any
/// [`io::Read`]/[`io::Write`]-based code: rust-bitcoin's consensus decoding, a
/// [`BufReader`](std::io::BufReader), `read_exact` of a P2P message header. Made by
/// [`SockIo::with_deadline`].
///
/// Each read waits until something has arrived and each write until some of it was sent, as
/// on a blocking socket, but every wait is at most [`MAX_WAIT_FOR_IO`](crate::MAX_WAIT_FOR_IO)
/// (Core's rule, so the interrupt is noticed within about a second) and all the adapter's reads
/// and writes share one deadline: `timeout` after the first of them that had to wait. Make one
/// adapter per message, request or phase. The loops are Core's: reads are `InterruptibleRecv`'s
/// ([`socks5::interruptible_recv`](crate::socks5::interruptible_recv)), writes
/// `SendComplete`'s ([`SockIo::send_complete`]); each tries first, so what is ready succeeds
/// even past the deadline or with the interrupt set.
///
/// Errors are [`io::Error`]s that carry Core's error inside
/// ([`get_ref`](io::Error::get_ref)/[`into_inner`](io::Error::into_inner) give it, downcast to
/// [`IntrRecvError`] for reads, [`SockError`] for writes); `Display` is Core's text:
///
/// | what happened | [`io::ErrorKind`] | inside, `Display` |
/// |---|---|---|
/// | the deadline passed, reading | `TimedOut` | [`IntrRecvError::Timeout`]: `Receive timeout (received X of Y bytes before that)` |
/// | the interrupt was set, reading | `Other` | [`IntrRecvError::Interrupted`]: `Receive interrupted (received X of Y bytes before that)` |
/// | the deadline passed, writing | `TimedOut` | [`SockError::SendTimeout`]: `Send timeout (sent only X of Y bytes before that)` |
/// | the interrupt was set, writing | `Other` | [`SockError::SendInterrupted`]: `Send interrupted (sent only X of Y bytes before that)` |
/// | `read_exact` met end of stream | `UnexpectedEof` | [`IntrRecvError::Disconnected`] |
///
/// `Y` is the length asked for (`buf.len()` of that `read`, `write`, `read_exact` or
/// `write_all`), `X` what that call had done. An interrupt is **not**
/// [`io::ErrorKind::Interrupted`]: `read_exact`, `read_to_end`, `BufReader` and `write_all`
/// retry on that kind, so they would spin instead of stopping. A `read` at end of stream
/// returns `Ok(0)`, as [`io::Read`] says. Permanent socket errors are the sock's own
/// `io::Error` (kind and OS code kept) from `read` and `write`; `read_exact` and `write_all`
/// put them inside, with the byte counts, keeping the kind
/// ([`os_error_code`](crate::os_error_code) reads the code there).
///
/// ```
/// # bitcoin_sock::wasip3_main!(); // WASI 0.3: `main` entered where sockets may wait
/// use bitcoin_sock::{Sock, SockEvent, SockIo, ThreadInterrupt};
/// use std::io::{Read, Write};
/// use std::time::Duration;
///
/// let timeout = Duration::from_secs(5);
/// let interrupt = ThreadInterrupt::new();
/// let listener = Sock::bind_listen("127.0.0.1:0".parse()?, 8)?;
/// let client = Sock::connect(listener.local_addr()?, timeout)?;
/// listener.wait(timeout, SockEvent::RECV)?;
/// let (server, _) = listener.accept()?;
///
/// client.with_deadline(timeout, &interrupt).write_all(b"\xf9\xbe\xb4\xd9version")?;
/// let mut magic = [0u8; 4];
/// let mut reader = server.with_deadline(timeout, &interrupt);
/// reader.read_exact(&mut magic)?;
/// assert_eq!(magic, [0xf9, 0xbe, 0xb4, 0xd9]);
///
/// let mut command = [0u8; 7];
/// reader.read_exact(&mut command)?;
/// assert_eq!(&command, b"version");
///
/// // Nothing more comes: past the deadline the read fails with Core's text.
/// let mut rest = [0u8; 8];
/// let err = server
///     .with_deadline(Duration::from_millis(10), &interrupt)
///     .read(&mut rest)
///     .unwrap_err();
/// assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
/// assert_eq!(err.to_string(), "Receive timeout (received 0 of 8 bytes before that)");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct DeadlineIo<'a, S: SockIo + ?Sized> {
    sock: &'a S,
    interrupt: &'a ThreadInterrupt,
    deadline: Deadline,
}

impl<'a, S: SockIo + ?Sized> DeadlineIo<'a, S> {
    /// Blocking reads and writes on `sock` until `timeout` after the first that has to wait,
    /// or until `interrupt` is set (the same as [`SockIo::with_deadline`]).
    pub fn new(sock: &'a S, timeout: Duration, interrupt: &'a ThreadInterrupt) -> Self {
        DeadlineIo {
            sock,
            interrupt,
            deadline: Deadline::new(timeout),
        }
    }

    /// The sock underneath.
    pub fn get_ref(&self) -> &'a S {
        self.sock
    }
}

impl<S: SockIo + ?Sized> fmt::Debug for DeadlineIo<'_, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeadlineIo")
            .field("interrupted", &self.interrupt.is_interrupted())
            .finish_non_exhaustive()
    }
}

/// A read's failure as an `io::Error` of the kind `io::Read` users act on: an OS error as it
/// is (the crate's rule, `From`) when `keep_os_error`, else always Core's text with the byte
/// counts inside ([`os_error_code`](crate::os_error_code) finds the code there).
fn read_error(err: IntrRecvError, keep_os_error: bool) -> io::Error {
    if keep_os_error {
        io::Error::from(err)
    } else {
        io::Error::new(err.kind(), err)
    }
}

/// A write's failure, as [`read_error`] does it.
fn write_error(err: SockError, keep_os_error: bool) -> io::Error {
    if keep_os_error {
        io::Error::from(err)
    } else {
        io::Error::new(err.kind(), err)
    }
}

impl<S: SockIo + ?Sized> Read for DeadlineIo<'_, S> {
    /// Waits until something has arrived, then returns it; `Ok(0)` at end of stream (or for
    /// an empty `buf`).
    ///
    /// # Errors
    /// Past the deadline or once interrupted (see [`DeadlineIo`]); the sock's permanent error.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let min = usize::from(!buf.is_empty());
        match recv_at_least(self.sock, buf, min, &mut self.deadline, self.interrupt) {
            Ok(n) => Ok(n),
            Err(IntrRecvError::Disconnected { .. }) => Ok(0),
            Err(err) => Err(read_error(err, true)),
        }
    }

    /// Core's `InterruptibleRecv`: all of `buf`, with the counts in the error.
    ///
    /// # Errors
    /// As [`read`](DeadlineIo::read), and `UnexpectedEof` when the stream ends first.
    fn read_exact(&mut self, buf: &mut [u8]) -> io::Result<()> {
        let len = buf.len();
        recv_at_least(self.sock, buf, len, &mut self.deadline, self.interrupt)
            .map(drop)
            .map_err(|err| read_error(err, false))
    }
}

impl<S: SockIo + ?Sized> Write for DeadlineIo<'_, S> {
    /// Waits until the socket takes some of `buf`; how much it took.
    ///
    /// # Errors
    /// Past the deadline or once interrupted (see [`DeadlineIo`]); the sock's permanent error.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let min = usize::from(!buf.is_empty());
        send_at_least(self.sock, buf, min, &mut self.deadline, self.interrupt)
            .map_err(|err| write_error(err, true))
    }

    /// Core's `SendComplete`: all of `buf`, with the counts in the error.
    ///
    /// # Errors
    /// As [`write`](DeadlineIo::write).
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        send_at_least(
            self.sock,
            buf,
            buf.len(),
            &mut self.deadline,
            self.interrupt,
        )
        .map(drop)
        .map_err(|err| write_error(err, false))
    }

    /// Nothing to do: nothing is buffered here.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Read for &Sock {
    /// [`Sock::recv`]: non-blocking, like socket2's `Read`: `WouldBlock` passes through when
    /// nothing has arrived, `Ok(0)` is end of stream. For blocking reads with a deadline use
    /// [`SockIo::with_deadline`].
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        Sock::recv(self, buf)
    }
}

impl Read for Sock {
    /// As for `&Sock`: [`Sock::recv`], non-blocking.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        Sock::recv(self, buf)
    }
}

impl Write for &Sock {
    /// [`Sock::send`]: non-blocking, like socket2's `Write`: `WouldBlock` passes through when
    /// the send buffer is full. For blocking writes with a deadline use
    /// [`SockIo::with_deadline`].
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Sock::send(self, buf)
    }

    /// Nothing to do: a sock buffers nothing (the kernel sends on its own).
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Write for Sock {
    /// As for `&Sock`: [`Sock::send`], non-blocking.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Sock::send(self, buf)
    }

    /// Nothing to do.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
