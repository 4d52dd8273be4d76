//! Connection ids, and the table of listeners and connections by registry key.

use std::collections::HashMap;
use std::fmt;
use std::mem;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::conn::Conn;
use crate::Sock;

/// A connection's identifier (Core's `SockMan::Id`). Unique for the manager's life: ids are
/// never reused, so a stale id names no connection rather than the wrong one.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct Id(pub(super) u64);

impl Id {
    /// The number, as Core's `int64_t` would show it.
    pub fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A listening socket.
pub(super) struct Listener {
    pub(super) sock: Sock,
    pub(super) addr: SocketAddr,
    /// The registry key: the listener's slot in the table.
    pub(super) key: usize,
    /// Held across each accept, so none starts after `stop_listening` returns.
    pub(super) state: Mutex<ListenState>,
}

/// What changes about a listener.
pub(super) struct ListenState {
    /// Cleared by [`stop_listening`](super::SockMan::stop_listening).
    pub(super) open: bool,
    /// Not watched until then (or until a connection closes), after an accept failed.
    pub(super) paused_until: Option<Instant>,
    /// The last pause; doubled by each failure in a row, zero after an accept.
    pub(super) backoff: Duration,
    /// Paused by [`pause_listening`](super::SockMan::pause_listening): not watched, and no
    /// back-off ending resumes it, until
    /// [`resume_listening`](super::SockMan::resume_listening).
    pub(super) held: bool,
}

pub(super) enum Slot {
    Free,
    Listener(Arc<Listener>),
    Conn(Arc<Conn>),
}

/// Connections and listeners by registry key (their slot), and connections by id.
#[derive(Default)]
pub(super) struct Table {
    pub(super) slots: Vec<Slot>,
    pub(super) free: Vec<usize>,
    pub(super) by_id: HashMap<Id, usize>,
    pub(super) next_id: u64,
}

impl Table {
    pub(super) fn take_slot(&mut self) -> usize {
        match self.free.pop() {
            Some(key) => key,
            None => {
                self.slots.push(Slot::Free);
                self.slots.len() - 1
            }
        }
    }

    pub(super) fn release_slot(&mut self, key: usize) -> Slot {
        let slot = mem::replace(&mut self.slots[key], Slot::Free);
        self.free.push(key);
        slot
    }

    /// Every open connection, taken out of the table so the caller can work on them without
    /// holding its lock.
    pub(super) fn conns(&self) -> Vec<Arc<Conn>> {
        self.slots
            .iter()
            .filter_map(|slot| match slot {
                Slot::Conn(conn) => Some(Arc::clone(conn)),
                _ => None,
            })
            .collect()
    }

    pub(super) fn conn(&self, id: Id) -> Option<Arc<Conn>> {
        match self.slots.get(*self.by_id.get(&id)?)? {
            Slot::Conn(conn) => Some(Arc::clone(conn)),
            _ => None,
        }
    }
}
