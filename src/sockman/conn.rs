//! One connection of a [`SockMan`](super::SockMan): its sock, its send queue and what it is
//! registered for. Written once for every backend.

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::sync::{Mutex, MutexGuard, PoisonError};

use super::closing::Closing;
use super::Id;
use crate::error::is_permanent;
use crate::{Sock, SockEvent};

/// A send queue that drained keeps its memory for the next burst, unless it grew past this:
/// then it is given back, so an idle connection holds no more than this in its queue.
const KEEP_QUEUE_CAPACITY: usize = 64 * 1024;

/// A connection. Shared (`Arc`) between the table and an iteration of the loop, so a
/// [`close`](super::SockMan::close) from another thread cannot close the socket while the loop
/// uses it (Core's issue #21744, which Core fixed with `shared_ptr<Sock>`).
pub(super) struct Conn {
    pub(super) id: Id,
    /// The registry key: the connection's slot in the table.
    pub(super) key: usize,
    pub(super) sock: Sock,
    pub(super) state: Mutex<ConnState>,
}

/// What changes. Locked briefly, never while the handler runs.
#[derive(Default)]
pub(super) struct ConnState {
    /// Bytes accepted by [`send`](super::SockMan::send) and not yet written to the socket.
    pub(super) queue: VecDeque<u8>,
    /// What the registry watches the socket for; `None`: not registered.
    pub(super) registered: Option<SockEvent>,
    /// In the manager's list of connections to look at before the next wait.
    pub(super) pending: bool,
    /// Closed by [`close`](super::SockMan::close): nothing may register it again.
    pub(super) closed: bool,
    /// End of stream or a permanent read error: there is nothing more to read.
    pub(super) recv_done: bool,
    /// A permanent send error: the kind and OS code, to report again to later sends.
    pub(super) send_error: Option<(io::ErrorKind, Option<i32>)>,
    /// Closing gracefully ([`close_after_send`](super::SockMan::close_after_send)): the id is
    /// gone, the loop finishes the close.
    pub(super) closing: Option<Closing>,
    /// Bytes the handler holds for the connection ([`set_held`](super::SockMan::set_held)).
    pub(super) held: usize,
    /// This connection's share of the manager's memory count (queue capacity and `held` when
    /// last accounted).
    pub(super) counted: usize,
}

impl Conn {
    pub(super) fn new(id: Id, key: usize, sock: Sock) -> Conn {
        Conn {
            id,
            key,
            sock,
            state: Mutex::new(ConnState::default()),
        }
    }

    /// Whether [`close`](super::SockMan::close) or
    /// [`close_after_send`](super::SockMan::close_after_send) ended its events (none may
    /// follow then; a graceful close's own service is pending).
    pub(super) fn is_closed(&self) -> bool {
        self.lock().gone()
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, ConnState> {
        // The state stays consistent at every await-free step, so a panic elsewhere while it
        // was held leaves nothing half done.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl ConnState {
    /// Closed, or closing gracefully: the handler hears no more of it.
    pub(super) fn gone(&self) -> bool {
        self.closed || self.closing.is_some()
    }

    /// Writes as much of the queue as the socket takes now, both halves of a wrapped queue in
    /// one call ([`Sock::send_vectored`]). A permanent error drops the queue (nothing more can
    /// be sent) and is remembered.
    ///
    /// # Errors
    /// The permanent send error.
    pub(super) fn flush(&mut self, sock: &Sock) -> io::Result<()> {
        self.flush_with(|bufs| sock.send_vectored(bufs))
    }

    /// [`flush`](ConnState::flush) through `send`.
    fn flush_with(
        &mut self,
        mut send: impl FnMut(&[IoSlice<'_>]) -> io::Result<usize>,
    ) -> io::Result<()> {
        while !self.queue.is_empty() {
            let (front, back) = self.queue.as_slices();
            match send(&[IoSlice::new(front), IoSlice::new(back)]) {
                // A send that takes nothing from a non-empty buffer would loop forever.
                Ok(0) => break,
                Ok(sent) => {
                    let sent = sent.min(self.queue.len());
                    self.queue.drain(..sent);
                }
                Err(e) if !is_permanent(&e) => break,
                Err(e) => {
                    self.fail_send(&e);
                    return Err(e);
                }
            }
        }
        self.release_drained_queue();
        Ok(())
    }

    /// Remembers a permanent send error and drops what can no longer be sent.
    pub(super) fn fail_send(&mut self, err: &io::Error) {
        self.send_error = Some((err.kind(), err.raw_os_error()));
        self.queue = VecDeque::new();
    }

    /// The remembered send error, again.
    pub(super) fn send_error(&self) -> Option<io::Error> {
        self.send_error.map(|(kind, code)| match code {
            Some(code) => io::Error::from_raw_os_error(code),
            None => io::Error::from(kind),
        })
    }

    pub(super) fn release_drained_queue(&mut self) {
        if self.queue.is_empty() && self.queue.capacity() > KEEP_QUEUE_CAPACITY {
            self.queue = VecDeque::new();
        }
    }

    /// What the socket should be watched for: RECV while the handler wants to read, there
    /// is something left to read and at most `pause_recv_above` bytes wait to be sent (Core's
    /// `fPauseSend`; a graceful close reads regardless, to see the peer's end), SEND while
    /// bytes wait in the queue and the handler lets them go.
    pub(super) fn wanted(
        &self,
        recv_ok: bool,
        send_ok: bool,
        pause_recv_above: usize,
    ) -> SockEvent {
        let mut wanted = SockEvent::empty();
        let replies_pile_up = self.closing.is_none() && self.queue.len() > pause_recv_above;
        if recv_ok && !self.recv_done && !replies_pile_up {
            wanted |= SockEvent::RECV;
        }
        let flushing = self.closing.is_some_and(|closing| closing.awaits_flush());
        if send_ok && (!self.queue.is_empty() || flushing) && self.send_error.is_none() {
            wanted |= SockEvent::SEND;
        }
        wanted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A queue whose bytes wrap around the end of its ring buffer.
    fn wrapped_queue() -> ConnState {
        let mut state = ConnState::default();
        // Pushed in front of an empty ring, `a` goes to its last slot; the rest wraps.
        state.queue.push_front(b'a');
        state.queue.extend(b"bcdef");
        let (front, back) = state.queue.as_slices();
        assert!(!front.is_empty() && !back.is_empty(), "the queue wraps");
        state
    }

    #[test]
    fn a_wrapped_queue_is_written_in_one_call_with_both_halves() {
        let mut state = wrapped_queue();
        let mut calls = Vec::new();
        state
            .flush_with(|bufs| {
                calls.push(bufs.iter().map(|buf| buf.to_vec()).collect::<Vec<_>>());
                Ok(bufs.iter().map(|buf| buf.len()).sum())
            })
            .expect("flush");
        assert_eq!(calls.len(), 1, "{calls:?}");
        assert_eq!(calls[0].concat(), b"abcdef");
        assert!(state.queue.is_empty());
    }

    #[test]
    fn a_partial_vectored_write_drains_across_the_wrap() {
        let mut state = wrapped_queue();
        let front_len = state.queue.as_slices().0.len();
        let mut written = Vec::new();
        state
            .flush_with(|bufs| {
                let all: Vec<u8> = bufs.iter().flat_map(|buf| buf.to_vec()).collect();
                if written.is_empty() {
                    // Past the front half, then the socket is full.
                    written.extend_from_slice(&all[..front_len + 1]);
                    Ok(front_len + 1)
                } else {
                    Err(io::Error::from(io::ErrorKind::WouldBlock))
                }
            })
            .expect("flush");
        assert_eq!(written, &b"abcdef"[..front_len + 1]);
        assert_eq!(
            state.queue.iter().copied().collect::<Vec<u8>>(),
            &b"abcdef"[front_len + 1..]
        );
    }
}
