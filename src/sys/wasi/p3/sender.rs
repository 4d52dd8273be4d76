//! The sending side: the `stream<u8>` the guest writes (handed to `send` once), the bytes
//! `send` accepted, and the write in flight.
//!
//! A write copies the bytes into a buffer of the socket's and stays in flight until the host
//! took them; `send` takes bytes while that buffer has room, as a kernel's send buffer does.
//! Ending the stream is the peer's FIN (`shutdown(Write)`, or the close).

use std::sync::Arc;

use super::canon::{self, ResultArea, Transfer, EVENT_FUTURE_READ, EVENT_STREAM_WRITE};
use super::errno::error_code_to_errno;
use super::{reactor, Shared, State};

/// The most bytes `send` takes ahead of the host (the guest's part of the socket's send
/// buffer): the host socket's `send-buffer-size` (`SO_SNDBUF`), within these bounds.
const SEND_BUFFER_MIN: usize = 4 * 1024;
const SEND_BUFFER_MAX: usize = 256 * 1024;

/// The largest written buffer kept for the next bytes; a bigger one (after a burst) is given
/// back.
const SPARE_MAX: usize = 64 * 1024;

/// The sending side: the `stream<u8>` the guest writes (given to `send`), the `future` of
/// `send`, the write in flight and the bytes accepted after it.
pub(super) struct Sender {
    /// 0 once ended (shut, or failed).
    pub(super) stream: u32,
    /// 0 once read or dropped.
    result: u32,
    /// The write in flight: its buffer, and how much of it the host has taken.
    writing: Option<(Vec<u8>, usize)>,
    queued: Vec<u8>,
    /// A written buffer kept for the next bytes (no allocation per write).
    spare: Vec<u8>,
    /// How many bytes `send` takes ahead of the host.
    capacity: usize,
    /// `shutdown(Write)` asked: end the stream once everything is written.
    shut: bool,
    result_read: Option<Box<ResultArea>>,
}

impl Sender {
    pub(super) fn new(stream: u32, result: u32, send_buffer_size: u64) -> Sender {
        let mut sender = Sender {
            stream,
            result,
            writing: None,
            queued: Vec::new(),
            spare: Vec::new(),
            capacity: SEND_BUFFER_MIN,
            shut: false,
            result_read: None,
        };
        sender.set_capacity(send_buffer_size);
        sender
    }

    pub(super) fn owns(&self, waitable: u32) -> bool {
        waitable != 0 && (waitable == self.stream || waitable == self.result)
    }

    /// Bytes accepted and not yet taken by the host.
    pub(super) fn unsent(&self) -> usize {
        self.writing
            .as_ref()
            .map_or(0, |(buf, done)| buf.len() - done)
            + self.queued.len()
    }

    /// Whether `send` would take a byte (or fail at once: an ended stream).
    pub(super) fn writable(&self) -> bool {
        self.stream == 0 || self.unsent() < self.capacity
    }

    /// Follows the host socket's send buffer size (`bytes`, as the host reports it).
    pub(super) fn set_capacity(&mut self, bytes: u64) {
        self.capacity = usize::try_from(bytes)
            .unwrap_or(usize::MAX)
            .clamp(SEND_BUFFER_MIN, SEND_BUFFER_MAX);
    }
}

impl State {
    /// Takes what of `data` the send buffer has room for (the write starts at once when none
    /// is in flight): how many bytes; `None` when the stream ended (shut, or failed).
    pub(super) fn take_for_sending(&mut self, shared: &Arc<Shared>, data: &[u8]) -> Option<usize> {
        let tx = self.tx.as_mut()?;
        if tx.stream == 0 {
            return None;
        }
        let n = data.len().min(tx.capacity.saturating_sub(tx.unsent()));
        if n > 0 {
            tx.queued.extend_from_slice(&data[..n]);
            if tx.writing.is_none() {
                self.write_more(shared);
            }
        }
        Some(n)
    }

    fn write_more(&mut self, shared: &Arc<Shared>) {
        loop {
            let Some(tx) = self.tx.as_mut() else {
                return;
            };
            if tx.stream == 0 {
                return;
            }
            let (buf, done) = match tx.writing.take() {
                Some((buf, done)) if done < buf.len() => (buf, done),
                written => {
                    if let Some((mut buf, _)) = written {
                        buf.clear();
                        if buf.capacity() <= SPARE_MAX {
                            tx.spare = buf;
                        }
                    }
                    if tx.queued.is_empty() {
                        if tx.shut {
                            end_sending(tx);
                        }
                        return;
                    }
                    let next = std::mem::take(&mut tx.spare);
                    (std::mem::replace(&mut tx.queued, next), 0)
                }
            };
            // SAFETY: the buffer's heap block stays where it is and unchanged (kept in
            // `writing`, never touched) until the write's event came or it was cancelled.
            let transfer =
                unsafe { canon::write_bytes(tx.stream, buf[done..].as_ptr(), buf.len() - done) };
            match transfer {
                Transfer::Blocked => {
                    tx.writing = Some((buf, done));
                    return;
                }
                Transfer::Completed(n) | Transfer::Cancelled(n) => {
                    tx.writing = Some((buf, done + n));
                }
                Transfer::Dropped(_) => {
                    self.send_failed(shared);
                    return;
                }
            }
        }
    }

    /// The host stopped taking bytes: `send`'s `future` says why; it becomes the pending
    /// error (`EPIPE` until it is known).
    fn send_failed(&mut self, shared: &Arc<Shared>) {
        let Some(tx) = self.tx.as_mut() else {
            return;
        };
        tx.writing = None;
        tx.queued = Vec::new();
        end_sending(tx);
        if tx.result == 0 {
            return;
        }
        let mut area = ResultArea::new();
        // SAFETY: the area is boxed and kept in `result_read` until the read's event came or
        // it was cancelled.
        match unsafe { area.start_read(tx.result) } {
            Transfer::Blocked => {
                reactor::watch(tx.result, shared);
                tx.result_read = Some(area);
                self.pending_error = Some(libc::EPIPE);
            }
            Transfer::Completed(_) => {
                let result = area.take();
                self.sent_with(result);
            }
            _ => self.sent_with(Ok(())),
        }
    }

    fn sent_with(&mut self, result: Result<(), wasip3::sockets::types::ErrorCode>) {
        if let Some(tx) = self.tx.as_mut() {
            if tx.result != 0 {
                reactor::unwatch(tx.result);
                canon::drop_result_reader(tx.result);
                tx.result = 0;
            }
            tx.result_read = None;
        }
        self.pending_error = Some(match result {
            Err(code) => error_code_to_errno(&code),
            Ok(()) => libc::EPIPE,
        });
    }

    pub(super) fn on_send_event(&mut self, shared: &Arc<Shared>, code: u32, payload: u32) {
        let Some(tx) = self.tx.as_mut() else {
            return;
        };
        let transfer = Transfer::from_code(payload);
        match code {
            EVENT_STREAM_WRITE => match transfer {
                Transfer::Dropped(_) => self.send_failed(shared),
                Transfer::Completed(n) | Transfer::Cancelled(n) => {
                    if let Some((_, done)) = tx.writing.as_mut() {
                        *done += n;
                    }
                    self.write_more(shared);
                }
                Transfer::Blocked => {}
            },
            EVENT_FUTURE_READ => {
                let result = match (tx.result_read.as_mut(), transfer) {
                    (Some(area), Transfer::Completed(_)) => area.take(),
                    _ => Ok(()),
                };
                self.sent_with(result);
            }
            _ => {}
        }
    }

    /// `shutdown(Write)`: the stream ends once the bytes accepted so far are written.
    pub(super) fn shut_sending(&mut self) {
        self.send_shut = true;
        if let Some(tx) = self.tx.as_mut() {
            tx.shut = true;
            if tx.unsent() == 0 {
                end_sending(tx);
            }
        }
    }

    /// Whether bytes accepted by `send` are still to be written.
    pub(super) fn sending(&self) -> bool {
        self.tx
            .as_ref()
            .is_some_and(|tx| tx.stream != 0 && tx.unsent() > 0)
    }

    /// Drops the sending side (nothing left to write, or the socket is closed for good): the
    /// stream's end is the peer's FIN.
    pub(super) fn stop_sending(&mut self) {
        if let Some(mut tx) = self.tx.take() {
            if tx.stream != 0 && tx.writing.is_some() {
                reactor::unwatch(tx.stream);
                canon::cancel_bytes_write(tx.stream);
            }
            tx.writing = None;
            end_sending(&mut tx);
            if tx.result != 0 {
                reactor::unwatch(tx.result);
                if tx.result_read.is_some() {
                    canon::cancel_result_read(tx.result);
                }
                canon::drop_result_reader(tx.result);
                tx.result = 0;
            }
        }
    }
}

/// Ends the send stream (the peer sees FIN once the host wrote what it took).
fn end_sending(tx: &mut Sender) {
    if tx.stream != 0 {
        reactor::unwatch(tx.stream);
        canon::drop_bytes_writer(tx.stream);
        tx.stream = 0;
    }
}
