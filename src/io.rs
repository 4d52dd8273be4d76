//! [`SockIo`]: Core's high-level socket operations, written once over four primitives.

use std::io;
use std::time::{Duration, Instant};

use crate::error::is_permanent;
use crate::{DeadlineIo, Disconnected, IntrRecvError, Sock, SockError, SockEvent, ThreadInterrupt};

/// The longest single wait inside [`SockIo::send_complete`] and
/// [`SockIo::recv_until_terminator`], so an interrupt is noticed within about this long
/// (Core's `MAX_WAIT_FOR_IO`).
pub const MAX_WAIT_FOR_IO: Duration = Duration::from_secs(1);

/// The first peek of [`SockIo::recv_until_terminator`] is Core's 512 bytes, so short lines cost
/// no more than in Core; every peek that finds no terminator doubles it, up to this.
const MAX_PEEK: usize = 256 * 1024;
const FIRST_PEEK: usize = 512;

/// Core's high-level socket operations, as provided methods over the primitives
/// [`send`](SockIo::send), [`recv`](SockIo::recv), [`peek`](SockIo::peek) and
/// [`wait`](SockIo::wait).
///
/// [`Sock`] implements it; so can a mock whose primitives return scripted results (as Core's
/// tests use `StaticContentsSock` and its fuzzers `FuzzedSock`), to test the algorithms' corner
/// cases. A mock may also override [`now`](SockIo::now) to move time forward without sleeping.
///
/// ```
/// # bitcoin_sock::wasip3_main!(); // WASI 0.3: `main` entered where sockets may wait
/// use bitcoin_sock::{Sock, SockIo, ThreadInterrupt};
/// use std::time::Duration;
///
/// let listener = Sock::bind_listen("127.0.0.1:0".parse()?, 8)?;
/// let client = Sock::connect(listener.local_addr()?, Duration::from_secs(5))?;
/// let interrupt = ThreadInterrupt::new();
/// client.send_complete(b"hello\nworld", Duration::from_secs(5), &interrupt)?;
///
/// listener.wait(Duration::from_secs(5), bitcoin_sock::SockEvent::RECV)?;
/// let (server, _) = listener.accept()?;
/// let line = server.recv_until_terminator(b'\n', Duration::from_secs(5), &interrupt, 1024)?;
/// assert_eq!(line, b"hello");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait SockIo {
    /// Sends what the socket takes now; see [`Sock::send`].
    ///
    /// # Errors
    /// `WouldBlock`/`Interrupted` to try again later; any other error is permanent.
    fn send(&self, data: &[u8]) -> io::Result<usize>;

    /// Receives what has arrived; `Ok(0)` is end of stream. See [`Sock::recv`].
    ///
    /// # Errors
    /// As [`send`](SockIo::send).
    fn recv(&self, buf: &mut [u8]) -> io::Result<usize>;

    /// Like [`recv`](SockIo::recv), but leaves the bytes for the next `recv`.
    ///
    /// # Errors
    /// As [`send`](SockIo::send).
    fn peek(&self, buf: &mut [u8]) -> io::Result<usize>;

    /// Waits up to `timeout` for `requested`; the empty set on timeout. See [`Sock::wait`].
    ///
    /// # Errors
    /// A failed wait.
    fn wait(&self, timeout: Duration, requested: SockEvent) -> io::Result<SockEvent>;

    /// The monotonic clock the deadlines are measured on. Mocks override it to test timeouts
    /// without sleeping.
    fn now(&self) -> Instant {
        Instant::now()
    }

    /// Sends all of `data` within `timeout`, or fails (Core's `SendComplete`).
    ///
    /// Tries to send first, then between tries waits for [`SockEvent::SEND`] at most
    /// `min(time left, MAX_WAIT_FOR_IO)`. The deadline and the interrupt are checked between
    /// tries only, so a payload that fits succeeds even with a zero timeout or the interrupt set.
    /// Empty `data` succeeds at once (Core's loop never ends on it).
    ///
    /// # Errors
    /// [`SockError::Send`] on a permanent error; [`SockError::SendTimeout`] and
    /// [`SockError::SendInterrupted`] with the bytes sent so far; [`SockError::SendWait`],
    /// with them too, when waiting fails.
    fn send_complete(
        &self,
        data: &[u8],
        timeout: Duration,
        interrupt: &ThreadInterrupt,
    ) -> Result<(), SockError> {
        send_at_least(
            self,
            data,
            data.len(),
            &mut Deadline::new(timeout),
            interrupt,
        )
        .map(drop)
    }

    /// Reads up to `terminator` within `timeout` (Core's `RecvUntilTerminator`): returns the
    /// bytes before it, consumes the terminator, and never consumes a byte after it, so the
    /// next [`recv`](SockIo::recv) sees it.
    ///
    /// Peeks, finds the terminator with a SIMD scan, then reads exactly up to it. Peeks start
    /// at Core's 512 bytes and grow while no terminator shows up, so long lines take few system
    /// calls. At most `max_data - 1` bytes are returned. A terminator already waiting is
    /// returned even with a zero timeout or the interrupt set.
    ///
    /// # Errors
    /// Each carries the bytes consumed before it (`received`), so nothing is lost:
    /// [`SockError::TooManyBytes`] once `max_data` bytes arrived without a terminator (at once
    /// for `max_data == 0`); [`SockError::Closed`] on end of stream; [`SockError::Recv`] on a
    /// permanent error (of the peek or of the read after it); [`SockError::RecvTimeout`],
    /// [`SockError::RecvInterrupted`]; [`SockError::ShortRead`] when a read returns less than
    /// its peek promised;
    /// [`SockError::Wait`] when waiting fails.
    fn recv_until_terminator(
        &self,
        terminator: u8,
        timeout: Duration,
        interrupt: &ThreadInterrupt,
        max_data: usize,
    ) -> Result<Vec<u8>, SockError> {
        // The peek grows while no terminator shows up: Core's 512 bytes first, so short lines
        // cost no more than in Core, doubled up to MAX_PEEK, so long ones take few calls.
        let mut peek_size = FIRST_PEEK;
        until_terminator(
            self,
            timeout,
            interrupt,
            max_data,
            |data, received, limit| {
                let want = peek_size.min(limit);
                // The peek goes into the tail of `data` itself and the read then lands on the
                // peeked copy: no buffer of its own, no copy. The tail is zeroed once and kept
                // between tries.
                if data.len() < received + want {
                    data.resize(received + want, 0);
                }
                let peeked = match self.peek(&mut data[received..received + want]) {
                    Ok(0) => return Step::Closed,
                    Ok(peeked) => peeked.min(want),
                    Err(e) => return Step::Failed(e),
                };
                let found = memchr::memchr(terminator, &data[received..received + peeked]);
                let try_len = found.map_or(peeked, |pos| pos + 1);
                match self.recv(&mut data[received..received + try_len]) {
                    Ok(read) if read == try_len => {}
                    Ok(read) => {
                        return Step::ShortRead {
                            read: read.min(try_len),
                            attempted: try_len,
                            peeked,
                        }
                    }
                    // A reset between the peek and the read: the OS error, code and all (Core
                    // reports it as a short read of its -1). A transient one waits and tries
                    // again; the peeked bytes are still there.
                    Err(e) => return Step::Failed(e),
                }
                if found.is_none() && peeked == want {
                    peek_size = (peek_size * 2).min(MAX_PEEK);
                }
                Step::Read {
                    read: try_len,
                    found: found.is_some(),
                }
            },
        )
    }

    /// Blocking [`io::Read`](std::io::Read) and [`io::Write`](std::io::Write) on this sock with
    /// Core's deadline and interrupt: see [`DeadlineIo`].
    fn with_deadline<'a>(
        &'a self,
        timeout: Duration,
        interrupt: &'a ThreadInterrupt,
    ) -> DeadlineIo<'a, Self>
    where
        Self: Sized,
    {
        DeadlineIo::new(self, timeout, interrupt)
    }

    /// Whether the connection is still up (Core's `IsConnected`): peeks one byte; data or
    /// would-block means connected.
    ///
    /// # Errors
    /// Why it is not, as a [`Disconnected`] whose `Display` is Core's `errmsg`:
    /// [`Disconnected::Closed`] (`"closed"`) when the peer closed; [`Disconnected::Error`]
    /// with a permanent error (its [`network_error_string`](crate::network_error_string), e.g.
    /// a reset; `"not connected"` for the invalid sock).
    fn is_connected(&self) -> Result<(), Disconnected> {
        let mut byte = [0u8; 1];
        match self.peek(&mut byte) {
            Ok(0) => Err(Disconnected::Closed),
            Ok(_) => Ok(()),
            Err(e) if !is_permanent(&e) => Ok(()),
            Err(e) => Err(Disconnected::Error(e)),
        }
    }
}

/// A borrowed sock is a sock: `BufSock::new(&sock)` and [`DeadlineIo`] over a borrow work, and
/// every method (also an overridden one, such as [`BufSock`](crate::BufSock)'s terminator read)
/// is the borrowed sock's.
impl<T: SockIo + ?Sized> SockIo for &T {
    fn send(&self, data: &[u8]) -> io::Result<usize> {
        (**self).send(data)
    }

    fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        (**self).recv(buf)
    }

    fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        (**self).peek(buf)
    }

    fn wait(&self, timeout: Duration, requested: SockEvent) -> io::Result<SockEvent> {
        (**self).wait(timeout, requested)
    }

    fn now(&self) -> Instant {
        (**self).now()
    }

    fn send_complete(
        &self,
        data: &[u8],
        timeout: Duration,
        interrupt: &ThreadInterrupt,
    ) -> Result<(), SockError> {
        (**self).send_complete(data, timeout, interrupt)
    }

    fn recv_until_terminator(
        &self,
        terminator: u8,
        timeout: Duration,
        interrupt: &ThreadInterrupt,
        max_data: usize,
    ) -> Result<Vec<u8>, SockError> {
        (**self).recv_until_terminator(terminator, timeout, interrupt, max_data)
    }

    fn is_connected(&self) -> Result<(), Disconnected> {
        (**self).is_connected()
    }
}

/// What one attempt of [`until_terminator`] did.
pub(crate) enum Step {
    /// `read` bytes were consumed into `data[received..received + read]`; with `found`, the
    /// last of them is the terminator.
    Read { read: usize, found: bool },
    /// End of stream.
    Closed,
    /// The attempt failed: a permanent error ends the operation, any other means wait.
    Failed(io::Error),
    /// A read returned `read` bytes (consumed into `data` as for `Read`) where a peek had
    /// promised `peeked` and `attempted` were asked for.
    ShortRead {
        read: usize,
        attempted: usize,
        peeked: usize,
    },
}

/// Core's `RecvUntilTerminator` loop, once for every reader: `attempt(data, received, limit)`
/// consumes at most `limit` (> 0) more bytes, up to and including the terminator, into
/// `data[received..]` (what `data` holds past `received` is scratch, kept between attempts and
/// cut off before returning); the limit, the deadline, the interrupt, the waits and every error
/// text live here. [`SockIo::recv_until_terminator`] attempts with a peek and a read;
/// [`BufSock`](crate::BufSock) with its read-ahead buffer.
pub(crate) fn until_terminator<S: SockIo + ?Sized>(
    sock: &S,
    timeout: Duration,
    interrupt: &ThreadInterrupt,
    max_data: usize,
    mut attempt: impl FnMut(&mut Vec<u8>, usize, usize) -> Step,
) -> Result<Vec<u8>, SockError> {
    let mut deadline = Deadline::new(timeout);
    let mut data = Vec::new();
    let mut received = 0;
    let consumed = |mut data: Vec<u8>, len: usize| {
        data.truncate(len);
        data
    };
    loop {
        if received >= max_data {
            return Err(SockError::TooManyBytes {
                received: consumed(data, received),
            });
        }
        let progressed = match attempt(&mut data, received, max_data - received) {
            Step::Read { read, found: true } => {
                // `read` counts the terminator, so it is at least 1.
                return Ok(consumed(data, received + read.saturating_sub(1)));
            }
            Step::Read { read, found: false } => {
                received += read;
                true
            }
            Step::Closed => {
                return Err(SockError::Closed {
                    received: consumed(data, received),
                })
            }
            Step::ShortRead {
                read,
                attempted,
                peeked,
            } => {
                return Err(SockError::ShortRead {
                    read,
                    attempted,
                    peeked,
                    received: consumed(data, received + read),
                })
            }
            Step::Failed(e) if is_permanent(&e) => {
                return Err(SockError::Recv {
                    source: e,
                    received: consumed(data, received),
                })
            }
            Step::Failed(_) => false,
        };
        let left = deadline.left(sock.now());
        if left.is_zero() {
            return Err(SockError::RecvTimeout {
                received: consumed(data, received),
            });
        }
        if interrupt.is_interrupted() {
            return Err(SockError::RecvInterrupted {
                received: consumed(data, received),
            });
        }
        // After progress more may be waiting already: try again before waiting (Core
        // always waits, one system call more per chunk).
        if !progressed {
            if let Err(source) = sock.wait(left.min(MAX_WAIT_FOR_IO), SockEvent::RECV) {
                return Err(SockError::Wait {
                    source,
                    received: consumed(data, received),
                });
            }
        }
    }
}

/// Core's `SendComplete` loop, stopping once `min` bytes of `data` are sent (all of them for
/// [`SockIo::send_complete`], one or more for a [`DeadlineIo`](crate::DeadlineIo) write);
/// how many were. Makes one attempt before any check, so what fits succeeds whatever the
/// deadline and the interrupt; `min == 0` sends nothing.
pub(crate) fn send_at_least<S: SockIo + ?Sized>(
    sock: &S,
    data: &[u8],
    min: usize,
    deadline: &mut Deadline,
    interrupt: &ThreadInterrupt,
) -> Result<usize, SockError> {
    let mut sent = 0;
    while sent < min {
        match sock.send(&data[sent..]) {
            // A broken `send` may claim more than it was given.
            Ok(n) => sent += n.min(data.len() - sent),
            Err(e) if is_permanent(&e) => return Err(SockError::Send(e)),
            Err(_) => {}
        }
        if sent >= min {
            break;
        }
        let left = deadline.left(sock.now());
        if left.is_zero() {
            return Err(SockError::SendTimeout {
                sent,
                total: data.len(),
            });
        }
        if interrupt.is_interrupted() {
            return Err(SockError::SendInterrupted {
                sent,
                total: data.len(),
            });
        }
        sock.wait(left.min(MAX_WAIT_FOR_IO), SockEvent::SEND)
            .map_err(|source| SockError::SendWait {
                source,
                sent,
                total: data.len(),
            })?;
    }
    Ok(sent)
}

/// Core's `InterruptibleRecv` loop, stopping once `min` bytes are in `buf` (all of it for
/// [`interruptible_recv`](crate::socks5::interruptible_recv), one or more for a
/// [`DeadlineIo`](crate::DeadlineIo) read); how many are. Reads first, so what has arrived is
/// returned whatever the deadline and the interrupt.
pub(crate) fn recv_at_least<S: SockIo + ?Sized>(
    sock: &S,
    buf: &mut [u8],
    min: usize,
    deadline: &mut Deadline,
    interrupt: &ThreadInterrupt,
) -> Result<usize, IntrRecvError> {
    let expected = buf.len();
    let mut received = 0;
    while received < min {
        let must_wait = match sock.recv(&mut buf[received..]) {
            Ok(0) => return Err(IntrRecvError::Disconnected { received, expected }),
            Ok(n) => {
                // A broken `recv` may claim more than the buffer held.
                received += n.min(expected - received);
                false
            }
            Err(source) if is_permanent(&source) => {
                return Err(IntrRecvError::NetworkError {
                    source,
                    received,
                    expected,
                })
            }
            Err(_) => true,
        };
        if received >= min {
            break;
        }
        if interrupt.is_interrupted() {
            return Err(IntrRecvError::Interrupted { received, expected });
        }
        let left = deadline.left(sock.now());
        if left.is_zero() {
            return Err(IntrRecvError::Timeout { received, expected });
        }
        // After progress more may be there already: try again before waiting.
        if must_wait {
            sock.wait(left.min(MAX_WAIT_FOR_IO), SockEvent::RECV)
                .map_err(|source| IntrRecvError::NetworkError {
                    source,
                    received,
                    expected,
                })?;
        }
    }
    Ok(received)
}

/// A deadline `timeout` after the first attempt of an operation, on a monotonic clock.
///
/// It starts when first asked for the time left, i.e. once the first attempt did not finish the
/// operation: an operation that succeeds or fails at once never reads the clock (a host may
/// have none, e.g. `wasm32-unknown-unknown`), and the first attempt never waits, so the
/// deadline is the same as one started at the call.
pub(crate) struct Deadline {
    timeout: Duration,
    /// Set at the first question; `Some(None)` when `now + timeout` does not fit, i.e. never.
    at: Option<Option<Instant>>,
}

impl Deadline {
    pub(crate) fn new(timeout: Duration) -> Deadline {
        Deadline { timeout, at: None }
    }

    /// The time left, zero once passed; effectively forever for a deadline that never comes.
    pub(crate) fn left(&mut self, now: Instant) -> Duration {
        let timeout = self.timeout;
        match *self.at.get_or_insert_with(|| now.checked_add(timeout)) {
            Some(deadline) => deadline.saturating_duration_since(now),
            None => Duration::MAX,
        }
    }
}

impl SockIo for Sock {
    fn send(&self, data: &[u8]) -> io::Result<usize> {
        Sock::send(self, data)
    }

    fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        Sock::recv(self, buf)
    }

    fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        Sock::peek(self, buf)
    }

    fn wait(&self, timeout: Duration, requested: SockEvent) -> io::Result<SockEvent> {
        Sock::wait(self, timeout, requested)
    }
}
