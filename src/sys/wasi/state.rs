//! A socket's state that WASI leaves to the guest, the same on 0.2 and 0.3: its phase, the
//! read-ahead that gives WASI a `peek`, how the input ended, the pending error (`SO_ERROR`),
//! and the events that follow from these without asking the host.

use std::io;

use super::errno::errno_to_io;
use crate::buf::ReadAhead;
use crate::SockEvent;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
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
pub(super) enum InputEnd {
    /// End of stream (the peer's FIN).
    Eof,
    /// A failed read, with its errno; reported once, then the stream reads as ended.
    Error(i32),
}

/// The state both versions keep per socket (each version's `State` adds its own and derefs
/// to this).
#[derive(Debug)]
pub(super) struct Common {
    pub(super) phase: Phase,
    /// Bytes read from the input stream but not yet received (the front end's read-ahead
    /// buffer, the same as `BufSock`'s).
    pub(super) read_ahead: ReadAhead,
    pub(super) input_end: Option<InputEnd>,
    /// The pending socket error (a failed connect or write), like `SO_ERROR`.
    pub(super) pending_error: Option<i32>,
    /// Whether this side shut its sending half (`shutdown(Write | Both)`): once the input has
    /// ended too, the socket is hung up (`ERR`, natively `POLLHUP`).
    pub(super) send_shut: bool,
}

impl Common {
    pub(super) fn new(phase: Phase) -> Common {
        Common {
            phase,
            read_ahead: ReadAhead::default(),
            input_end: None,
            pending_error: None,
            send_shut: false,
        }
    }

    /// A started connect's outcome as `connect_finish` reports it: `EINPROGRESS` while it
    /// runs, the pending error (taken, as reading `SO_ERROR` does) once it failed.
    pub(super) fn connect_result(&mut self) -> io::Result<()> {
        match self.phase {
            Phase::Connected => Ok(()),
            Phase::Connecting => Err(errno_to_io(libc::EINPROGRESS)),
            _ => Err(errno_to_io(
                self.pending_error.take().unwrap_or(libc::ECONNREFUSED),
            )),
        }
    }

    /// Whether a `recv` would return at once (data, end of stream or an error).
    pub(super) fn readable(&self) -> bool {
        !self.read_ahead.is_empty() || self.input_end.is_some()
    }

    /// Both directions are shut: the input ended and this side shut its sending half.
    pub(super) fn hung_up(&self) -> bool {
        self.send_shut && self.input_end == Some(InputEnd::Eof)
    }

    /// Whether the socket is in error or hung up: `ERR`, whatever was requested.
    pub(super) fn in_error(&self) -> bool {
        matches!(self.input_end, Some(InputEnd::Error(_)))
            || self.pending_error.is_some()
            || self.hung_up()
    }

    /// The events that hold without waiting, as `poll(2)` reports them natively: an
    /// unconnected socket is hung up (`ERR`); a failed connect leaves both halves shut, so
    /// whatever was asked is ready (and fails at once) with `ERR`; bytes read ahead or an
    /// ended input make `RECV` ready; an error or hang-up is `ERR`.
    pub(super) fn known_events(&self, requested: SockEvent) -> SockEvent {
        let mut occurred = match self.phase {
            Phase::Unconnected => SockEvent::ERR,
            Phase::Failed => requested | SockEvent::ERR,
            Phase::Connected if requested.contains(SockEvent::RECV) && self.readable() => {
                SockEvent::RECV
            }
            _ => SockEvent::empty(),
        };
        if self.in_error() {
            occurred |= SockEvent::ERR;
        }
        occurred
    }

    /// Copies buffered bytes into `buf` (consuming them when `consume`), or reports how the
    /// stream ended, or `EAGAIN`.
    pub(super) fn take_buffered(&mut self, buf: &mut [u8], consume: bool) -> io::Result<usize> {
        if !self.read_ahead.is_empty() {
            return Ok(self.read_ahead.copy_to(buf, consume));
        }
        match self.input_end {
            None => Err(errno_to_io(libc::EAGAIN)),
            Some(InputEnd::Eof) => Ok(0),
            Some(InputEnd::Error(code)) => {
                // Reported once; afterwards the stream reads as ended, as natively after a
                // reset.
                if consume {
                    self.input_end = Some(InputEnd::Eof);
                }
                Err(errno_to_io(code))
            }
        }
    }
}
