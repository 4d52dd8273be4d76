//! The memory budget: one bound on what all connections together can make the node hold —
//! their send queues and what the handler says it holds for them — and Core's `fPauseSend`
//! (a connection whose replies pile up is not read from until they drain).
//!
//! Core bounds each peer (`-maxsendbuffer`, `-maxreceivebuffer`) but not their sum, so 125
//! peers may make it hold 125 times each bound. Here the sum has a bound too:
//! [`Options::memory_budget`](super::Options::memory_budget). Past it, the connection that
//! holds the most is closed ([`Handler::memory_budget_exceeded`] says which first), until the
//! sum is back within the budget: the peer that made the node hold the most pays, the others
//! go on. In wasm a peak is the cost for the life of the instance (its memory never
//! shrinks), so the bound is what matters there.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::conn::{Conn, ConnState};
use super::{lock, Handler, Id, SockMan, SockManError};

impl SockMan {
    /// Tells the manager how many bytes the handler holds for connection `id` (its
    /// unfinished message, messages received and not yet processed: Core's partial message
    /// and `m_msg_process_queue_size`), counted with the connection's send queue against
    /// [`Options::memory_budget`](super::Options::memory_budget). Call it whenever the
    /// amount changes (e.g. at the end of [`got_data`](Handler::got_data)); the loop checks
    /// the budget after each event.
    ///
    /// # Errors
    /// [`SockManError::UnknownConnection`].
    pub fn set_held(&self, id: Id, bytes: usize) -> Result<(), SockManError> {
        let conn = self.conn(id)?;
        let mut state = conn.lock();
        if state.closed {
            return Err(SockManError::UnknownConnection(id));
        }
        state.held = bytes;
        self.account(&mut state);
        Ok(())
    }

    /// What all connections hold now: the capacity of their send queues and what the handler
    /// declared with [`set_held`](SockMan::set_held), as counted against
    /// [`Options::memory_budget`](super::Options::memory_budget).
    pub fn memory_used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    /// What connection `id` holds, as [`memory_used`](SockMan::memory_used) counts it.
    ///
    /// # Errors
    /// [`SockManError::UnknownConnection`].
    pub fn memory_held(&self, id: Id) -> Result<usize, SockManError> {
        Ok(self.conn(id)?.lock().counted)
    }

    /// Brings the connection's share of [`memory_used`](SockMan::memory_used) up to date;
    /// call after anything that changes its queue or `held`.
    pub(super) fn account(&self, state: &mut ConnState) {
        let now = if state.closed {
            0
        } else {
            state.queue.capacity().saturating_add(state.held)
        };
        let before = std::mem::replace(&mut state.counted, now);
        if now > before {
            self.used.fetch_add(now - before, Ordering::Relaxed);
        } else {
            self.used.fetch_sub(before - now, Ordering::Relaxed);
        }
    }

    /// While the connections together hold more than the budget, closes the one that holds
    /// the most (after [`Handler::memory_budget_exceeded`]). O(1) within the budget; a scan
    /// of the connections for each one closed past it.
    pub(super) fn enforce_budget<H: Handler + ?Sized>(&self, handler: &mut H) {
        let budget = self.options.memory_budget;
        // Each pass closes a connection or stops: bounded by the connections there are.
        while self.used.load(Ordering::Relaxed) > budget {
            let Some((conn, held)) = self.largest_holder() else {
                return;
            };
            let used = self.memory_used();
            handler.memory_budget_exceeded(self, conn.id, held, used);
            self.close(conn.id);
        }
    }

    /// The open connection that holds the most, and how much.
    fn largest_holder(&self) -> Option<(Arc<Conn>, usize)> {
        let conns = lock(&self.table).conns();
        conns
            .into_iter()
            .filter_map(|conn| {
                {
                    let state = conn.lock();
                    // A graceful close's queue is on its way out, under its own deadline.
                    (!state.gone() && state.counted > 0).then_some(state.counted)
                }
                .map(|held| (conn, held))
            })
            .max_by_key(|(_, held)| *held)
    }
}
