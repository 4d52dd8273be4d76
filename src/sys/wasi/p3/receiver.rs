//! The receiving side: the `stream<u8>` the host writes into the read-ahead buffer
//! (`../state.rs`), and the read kept in flight on it.
//!
//! A read is started where bytes are needed (`recv`, `peek`, a wait) and stays in flight when
//! the host has none yet: its event brings them later, into the read-ahead, so the next wait
//! needs no new call. `SockMan`'s idle sockets wait with a zero-length read (a probe), which
//! holds no buffer.

use std::ptr::NonNull;
use std::sync::Arc;

use super::super::state::InputEnd;
use super::canon::{self, ResultArea, Transfer, EVENT_FUTURE_READ, EVENT_STREAM_READ};
use super::errno::error_code_to_errno;
use super::{reactor, Shared, State};

/// The most one read asks for (wasmtime hands out at most 64 KiB per read).
pub(super) const READ_CHUNK: usize = 64 * 1024;

/// The receiving side: the `stream<u8>` the host writes, the `future` that says how it
/// ended, and the read in flight.
pub(super) struct Receiver {
    /// 0 once ended.
    pub(super) stream: u32,
    /// 0 once read.
    result: u32,
    read: Read,
    /// A zero-length read completed: the host has bytes (or the end) for the next read.
    pub(super) ready: bool,
    /// Bytes came before. The host's readiness then stays set until a read finds nothing
    /// (wasmtime's tokio sockets), so a probe would answer "ready" at once, wrongly: such a
    /// socket waits with a read instead.
    active: bool,
}

enum Read {
    Idle,
    /// A zero-length read: the host's "something to read", without a buffer (for the many
    /// idle sockets of a `SockMan`).
    Probe,
    /// A read into this buffer's spare capacity.
    Bytes(Vec<u8>),
    /// The stream ended; reading its `future`.
    Result(Box<ResultArea>),
}

impl Receiver {
    pub(super) fn new(stream: u32, result: u32) -> Receiver {
        Receiver {
            stream,
            result,
            read: Read::Idle,
            ready: false,
            active: false,
        }
    }

    pub(super) fn owns(&self, waitable: u32) -> bool {
        waitable != 0 && (waitable == self.stream || waitable == self.result)
    }

    /// Whether a read (or probe) is in flight.
    pub(super) fn busy(&self) -> bool {
        !matches!(self.read, Read::Idle)
    }
}

impl State {
    pub(super) fn start_read(&mut self, shared: &Arc<Shared>, probe: bool) {
        if self.input_end.is_some() {
            return;
        }
        let Some(rx) = self.rx.as_mut() else {
            return;
        };
        if rx.busy() || rx.stream == 0 {
            return;
        }
        rx.ready = false;
        let probe = probe && !rx.active;
        let transfer = if probe {
            // SAFETY: a zero-length read writes nothing.
            let transfer = unsafe { canon::read_bytes(rx.stream, NonNull::dangling().as_ptr(), 0) };
            if transfer == Transfer::Blocked {
                rx.read = Read::Probe;
            }
            transfer
        } else {
            let mut buf = self.common.read_ahead.take_spare();
            buf.reserve(READ_CHUNK);
            // SAFETY: the buffer's heap block stays where it is (kept in `Read::Bytes`, never
            // grown) until the read's event came or it was cancelled (`stop_reading`).
            let transfer = unsafe { canon::read_bytes(rx.stream, buf.as_mut_ptr(), READ_CHUNK) };
            if transfer == Transfer::Blocked {
                rx.read = Read::Bytes(buf);
            } else {
                self.took(buf, transfer);
            }
            transfer
        };
        if probe && transfer == Transfer::Completed(0) {
            if let Some(rx) = self.rx.as_mut() {
                rx.ready = true;
            }
        }
        if let Transfer::Dropped(_) = transfer {
            self.input_ended(shared);
        }
    }

    /// Keeps what a read brought into `buf`.
    fn took(&mut self, mut buf: Vec<u8>, transfer: Transfer) {
        if let Transfer::Completed(n) | Transfer::Dropped(n) | Transfer::Cancelled(n) = transfer {
            // SAFETY: the host wrote `n` bytes (at most the capacity it was given) to the
            // start of the buffer's spare capacity.
            unsafe { buf.set_len(n.min(buf.capacity())) };
            if n > 0 {
                if let Some(rx) = self.rx.as_mut() {
                    rx.active = true;
                }
            }
            self.read_ahead.append(buf);
        }
    }

    /// The stream ended (the host dropped it): read its `future` for how.
    fn input_ended(&mut self, shared: &Arc<Shared>) {
        let Some(rx) = self.rx.as_mut() else {
            return;
        };
        rx.read = Read::Idle;
        rx.ready = false;
        if rx.stream != 0 {
            reactor::unwatch(rx.stream);
            canon::drop_bytes_reader(rx.stream);
            rx.stream = 0;
        }
        let mut area = ResultArea::new();
        // SAFETY: the area is boxed and kept in `Read::Result` until the read's event came
        // or it was cancelled.
        match unsafe { area.start_read(rx.result) } {
            Transfer::Blocked => {
                reactor::watch(rx.result, shared);
                rx.read = Read::Result(area);
            }
            Transfer::Completed(_) => {
                let result = area.take();
                self.ended_with(result);
            }
            _ => self.ended_with(Ok(())),
        }
    }

    /// How the input ended: the peer's FIN, or an error.
    fn ended_with(&mut self, result: Result<(), wasip3::sockets::types::ErrorCode>) {
        if let Some(rx) = self.rx.as_mut() {
            if rx.result != 0 {
                reactor::unwatch(rx.result);
                canon::drop_result_reader(rx.result);
                rx.result = 0;
            }
            rx.read = Read::Idle;
        }
        if self.input_end.is_none() {
            self.input_end = Some(match result {
                Ok(()) => InputEnd::Eof,
                Err(code) => InputEnd::Error(error_code_to_errno(&code)),
            });
        }
    }

    pub(super) fn on_receive_event(&mut self, shared: &Arc<Shared>, code: u32, payload: u32) {
        let Some(rx) = self.rx.as_mut() else {
            return;
        };
        let transfer = Transfer::from_code(payload);
        match (std::mem::replace(&mut rx.read, Read::Idle), code) {
            (Read::Probe, EVENT_STREAM_READ) => {
                rx.ready = transfer == Transfer::Completed(0);
                if let Transfer::Dropped(_) = transfer {
                    self.input_ended(shared);
                }
            }
            (Read::Bytes(buf), EVENT_STREAM_READ) => {
                self.took(buf, transfer);
                if let Transfer::Dropped(_) = transfer {
                    self.input_ended(shared);
                }
            }
            (Read::Result(mut area), EVENT_FUTURE_READ) => {
                let result = match transfer {
                    Transfer::Completed(_) => area.take(),
                    _ => Ok(()),
                };
                self.ended_with(result);
            }
            (other, _) => rx.read = other,
        }
    }

    /// Stops receiving (`shutdown(Read)`, or the socket is closed): the read in flight is
    /// cancelled and the stream dropped; what the host held unread is discarded, as a close
    /// discards it natively. The socket reads as ended.
    pub(super) fn stop_reading(&mut self) {
        let Some(mut rx) = self.rx.take() else {
            return;
        };
        if rx.stream != 0 {
            reactor::unwatch(rx.stream);
            if matches!(rx.read, Read::Probe | Read::Bytes(_)) {
                canon::cancel_bytes_read(rx.stream);
            }
            canon::drop_bytes_reader(rx.stream);
        }
        if rx.result != 0 {
            reactor::unwatch(rx.result);
            if matches!(rx.read, Read::Result(_)) {
                canon::cancel_result_read(rx.result);
            }
            canon::drop_result_reader(rx.result);
        }
        // The buffer of a cancelled read is freed only now, after the cancel.
        rx.read = Read::Idle;
        if self.input_end.is_none() {
            self.input_end = Some(InputEnd::Eof);
        }
    }

    /// Whether bytes came that the owner never read, as far as the host tells without
    /// waiting: read ahead, or waiting in the host (a zero-length read completes; one in
    /// flight is cancelled to ask). Natively, closing such a socket resets the connection
    /// (RFC 2525). Leaves no read in flight.
    pub(super) fn unread(&mut self) -> bool {
        if !self.read_ahead.is_empty() {
            return true;
        }
        if self.input_end.is_some() {
            return false;
        }
        let Some(rx) = self.rx.as_mut() else {
            return false;
        };
        if rx.stream == 0 {
            return false;
        }
        if rx.ready {
            return true;
        }
        let transfer = match std::mem::replace(&mut rx.read, Read::Idle) {
            Read::Idle => {
                // SAFETY: a zero-length read writes nothing.
                match unsafe { canon::read_bytes(rx.stream, NonNull::dangling().as_ptr(), 0) } {
                    Transfer::Blocked => {
                        reactor::unwatch(rx.stream);
                        canon::cancel_bytes_read(rx.stream)
                    }
                    done => done,
                }
            }
            Read::Probe => {
                reactor::unwatch(rx.stream);
                canon::cancel_bytes_read(rx.stream)
            }
            Read::Bytes(buf) => {
                reactor::unwatch(rx.stream);
                let transfer = canon::cancel_bytes_read(rx.stream);
                // The buffer of a cancelled read is freed only now, after the cancel.
                drop(buf);
                return matches!(
                    transfer,
                    Transfer::Completed(n) | Transfer::Cancelled(n) | Transfer::Dropped(n) if n > 0
                );
            }
            Read::Result(area) => {
                rx.read = Read::Result(area);
                return false;
            }
        };
        matches!(transfer, Transfer::Completed(0))
    }

    /// A probe in flight is given up for a real read (cancelled: what it saw stays with the
    /// host for the read).
    pub(super) fn cancel_probe(&mut self, shared: &Arc<Shared>) {
        if let Some(rx) = self.rx.as_mut() {
            if matches!(rx.read, Read::Probe) && rx.stream != 0 {
                reactor::unwatch(rx.stream);
                canon::cancel_bytes_read(rx.stream);
                rx.read = Read::Idle;
                reactor::watch(rx.stream, shared);
            }
        }
    }
}
