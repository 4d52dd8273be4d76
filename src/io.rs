//! [`SockIo`]: Core's high-level socket operations, written once over four primitives.

use std::io;
use std::time::{Duration, Instant};

use crate::error::{describe, is_permanent};
use crate::{Sock, SockError, SockEvent, ThreadInterrupt};

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
    /// [`SockError::SendInterrupted`] with the bytes sent so far; [`SockError::Wait`] when
    /// waiting fails.
    fn send_complete(
        &self,
        data: &[u8],
        timeout: Duration,
        interrupt: &ThreadInterrupt,
    ) -> Result<(), SockError> {
        let mut deadline = Deadline::new(timeout);
        let mut sent = 0;
        while sent < data.len() {
            match self.send(&data[sent..]) {
                // A broken `send` may claim more than it was given.
                Ok(n) => sent += n.min(data.len() - sent),
                Err(e) if is_permanent(&e) => return Err(SockError::Send(e)),
                Err(_) => {}
            }
            if sent == data.len() {
                break;
            }
            let left = deadline.left(self.now());
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
            self.wait(left.min(MAX_WAIT_FOR_IO), SockEvent::SEND)
                .map_err(|source| SockError::Wait {
                    source,
                    received: Vec::new(),
                })?;
        }
        Ok(())
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
    /// permanent error; [`SockError::RecvTimeout`], [`SockError::RecvInterrupted`];
    /// [`SockError::ShortRead`] when a read returns less than its peek promised;
    /// [`SockError::Wait`] when waiting fails.
    fn recv_until_terminator(
        &self,
        terminator: u8,
        timeout: Duration,
        interrupt: &ThreadInterrupt,
        max_data: usize,
    ) -> Result<Vec<u8>, SockError> {
        let mut deadline = Deadline::new(timeout);
        // `data[..received]` holds the bytes consumed so far. Each peek goes into the tail of
        // `data` itself and the read then lands on the peeked copy: no buffer of its own, no
        // copy. The tail is zeroed once and kept between tries, and cut off before returning.
        let mut data = Vec::new();
        let mut received = 0;
        let mut peek_size = FIRST_PEEK;
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
            let want = peek_size.min(max_data - received);
            if data.len() < received + want {
                data.resize(received + want, 0);
            }
            let progressed = match self.peek(&mut data[received..received + want]) {
                Ok(0) => {
                    return Err(SockError::Closed {
                        received: consumed(data, received),
                    })
                }
                Ok(peeked) => {
                    let peeked = peeked.min(want);
                    let window = &data[received..received + peeked];
                    let found = memchr::memchr(terminator, window);
                    let try_len = found.map_or(peeked, |pos| pos + 1);
                    match self.recv(&mut data[received..received + try_len]) {
                        Ok(read) if read == try_len => {}
                        other => {
                            let read = other.unwrap_or(0).min(try_len);
                            return Err(SockError::ShortRead {
                                read,
                                attempted: try_len,
                                peeked,
                                received: consumed(data, received + read),
                            });
                        }
                    }
                    if let Some(pos) = found {
                        return Ok(consumed(data, received + pos));
                    }
                    received += try_len;
                    if peeked == want {
                        peek_size = (peek_size * 2).min(MAX_PEEK);
                    }
                    true
                }
                Err(e) if is_permanent(&e) => {
                    return Err(SockError::Recv {
                        source: e,
                        received: consumed(data, received),
                    })
                }
                Err(_) => false,
            };
            let left = deadline.left(self.now());
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
                if let Err(source) = self.wait(left.min(MAX_WAIT_FOR_IO), SockEvent::RECV) {
                    return Err(SockError::Wait {
                        source,
                        received: consumed(data, received),
                    });
                }
            }
        }
    }

    /// Whether the connection is still up (Core's `IsConnected`): peeks one byte; data or
    /// would-block means connected.
    ///
    /// # Errors
    /// The reason it is not, as Core's `errmsg`: `"closed"` when the peer closed; the
    /// [`network_error_string`](crate::network_error_string) of a permanent error; `"not
    /// connected"` for the invalid sock.
    fn is_connected(&self) -> Result<(), String> {
        let mut byte = [0u8; 1];
        match self.peek(&mut byte) {
            Ok(0) => Err("closed".to_owned()),
            Ok(_) => Ok(()),
            Err(e) if !is_permanent(&e) => Ok(()),
            Err(e) => Err(describe(&e)),
        }
    }
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
