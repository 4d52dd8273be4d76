//! The registry of `SockMan`: the registered sockets' pollables kept across waits, and one
//! `wasi:io/poll.poll` per wait, planned by `poll`'s `watch` and `settle`.
//!
//! WASI has no kernel-side registration: every `poll` hands the host the whole list, so a wait
//! costs O(registered sockets) on both sides of the component boundary. What this keeps from
//! one wait to the next is everything else: each socket's pollables (subscribed once, cached on
//! the socket), the list the host is given (its allocation reused), and the sockets themselves
//! (no table lookup per wait).

use std::io;
use std::mem;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use wasi::clocks::monotonic_clock;
use wasi::io::poll::Pollable;

use super::graveyard;
use super::poll::{poll_into, push, settle, timer_nanos, watch};
use super::Socket;
use crate::SockEvent;

/// One registered socket.
struct Entry {
    /// Valid while registered: [`Registry::register`]'s contract.
    socket: NonNull<Socket>,
    requested: SockEvent,
    /// Its place in [`Entries::keys`].
    at: usize,
    /// Where its pollables are in this wait's list (set by [`Registry::wait`]).
    recv_at: Option<usize>,
    send_at: Option<usize>,
    known: SockEvent,
}

/// The registered sockets by key, and the buffers every wait reuses.
#[derive(Default)]
struct Entries {
    by_key: Vec<Option<Entry>>,
    /// Keys with an entry, so a wait walks only those.
    keys: Vec<usize>,
    /// The ready flags of one wait's list; kept for its allocation.
    ready: Vec<bool>,
    /// An empty list kept for its allocation, lent to each wait as `Vec<&Pollable>`.
    list: Vec<&'static Pollable>,
}

/// What `SockMan` registers, with the pollables kept across waits.
pub(crate) struct Registry {
    entries: Mutex<Entries>,
    /// A [`notify`](Registry::notify) not yet consumed by a wait.
    notified: AtomicBool,
}

// SAFETY: the pointers in `entries` are only dereferenced while their sockets are registered,
// which `register`'s contract keeps them alive for, and `Socket` is `Sync`; every access to
// the entries goes through the mutex.
unsafe impl Send for Registry {}
// SAFETY: as for `Send`.
unsafe impl Sync for Registry {}

/// What one [`Registry::wait`] found: reused between waits.
pub(crate) struct Readiness {
    ready: Vec<(usize, SockEvent)>,
}

impl Registry {
    pub(crate) fn new() -> io::Result<Registry> {
        Ok(Registry {
            entries: Mutex::new(Entries::default()),
            notified: AtomicBool::new(false),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Entries> {
        // Nothing panics while holding the lock; a poisoned one still holds consistent state.
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Watches `socket` for `requested` under `key` from the next wait on.
    ///
    /// # Safety
    /// `socket` must stay where it is, and alive, until it is
    /// [`deregister`](Registry::deregister)ed: the registry reads it at every wait.
    pub(crate) unsafe fn register(
        &self,
        socket: &Socket,
        key: usize,
        requested: SockEvent,
    ) -> io::Result<()> {
        let mut entries = self.lock();
        if entries.by_key.len() <= key {
            entries.by_key.resize_with(key + 1, || None);
        }
        if entries.by_key[key].is_some() {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "key already registered",
            ));
        }
        let at = entries.keys.len();
        entries.by_key[key] = Some(Entry {
            socket: NonNull::from(socket),
            requested,
            at,
            recv_at: None,
            send_at: None,
            known: SockEvent::empty(),
        });
        entries.keys.push(key);
        Ok(())
    }

    /// Changes what the socket under `key` is watched for.
    pub(crate) fn reregister(
        &self,
        _socket: &Socket,
        key: usize,
        requested: SockEvent,
    ) -> io::Result<()> {
        match self.lock().by_key.get_mut(key) {
            Some(Some(entry)) => {
                entry.requested = requested;
                Ok(())
            }
            _ => Err(not_registered()),
        }
    }

    /// Stops watching the socket under `key`; the registry no longer reads it.
    pub(crate) fn deregister(&self, _socket: &Socket, key: usize) -> io::Result<()> {
        let mut entries = self.lock();
        let Some(entry) = entries.by_key.get_mut(key).and_then(Option::take) else {
            return Err(not_registered());
        };
        entries.keys.swap_remove(entry.at);
        // The last key moved into the freed place.
        if let Some(&moved) = entries.keys.get(entry.at) {
            if let Some(Some(moved)) = entries.by_key.get_mut(moved) {
                moved.at = entry.at;
            }
        }
        Ok(())
    }

    /// One `wasi:io/poll.poll` over the registered sockets' pollables and a timer of
    /// `timeout` (zero when some socket is ready without waiting, e.g. bytes read ahead, or
    /// after a [`notify`](Registry::notify)); fills `ready`.
    pub(crate) fn wait(&self, ready: &mut Readiness, timeout: Duration) -> io::Result<()> {
        ready.ready.clear();
        let graves = graveyard::watched();
        let mut guard = self.lock();
        let Entries {
            by_key,
            keys,
            ready: flags,
            list,
        } = &mut *guard;
        // The kept allocation, lent as a list of this wait's borrows.
        let mut pollables: Vec<&Pollable> = mem::take(list);
        let mut known_now = self.notified.swap(false, Ordering::AcqRel);
        for key in keys.iter() {
            let Some(entry) = by_key[*key].as_mut() else {
                continue;
            };
            // SAFETY: registered, so alive and in place (`register`'s contract).
            let socket = unsafe { entry.socket.as_ref() };
            let plan = watch(socket, entry.requested);
            entry.known = plan.occurred;
            entry.recv_at = push(&mut pollables, plan.recv);
            entry.send_at = push(&mut pollables, plan.send);
            known_now |= !entry.known.is_empty();
        }
        let graves_at = graves.push_into(&mut pollables);
        let timer = monotonic_clock::subscribe_duration(timer_nanos(known_now, timeout));
        pollables.push(&timer);
        poll_into(&pollables, flags);
        pollables.clear();
        // Back to the kept allocation: an empty `Vec` collected in place keeps its buffer.
        *list = pollables
            .into_iter()
            .map(|_| unreachable_pollable())
            .collect();
        drop(timer);
        // A buried socket whose write is done ended the wait: close it now.
        graves.sweep_if_ready(graves_at, flags);

        for key in keys.iter() {
            let Some(entry) = by_key[*key].as_mut() else {
                continue;
            };
            let is_ready = |at: Option<usize>| at.is_some_and(|i| flags[i]);
            let (recv, send) = (is_ready(entry.recv_at), is_ready(entry.send_at));
            let mut occurred = entry.known;
            if recv || send {
                // SAFETY: registered, so alive and in place (`register`'s contract).
                let socket = unsafe { entry.socket.as_ref() };
                occurred |= settle(socket, entry.requested, recv, send);
            }
            if !occurred.is_empty() {
                ready.ready.push((*key, occurred));
            }
        }
        Ok(())
    }

    /// Makes the next [`wait`](Registry::wait) return at once (WASI has no threads, so no
    /// wait can be running while this is called).
    pub(crate) fn notify(&self) -> io::Result<()> {
        self.notified.store(true, Ordering::Release);
        Ok(())
    }
}

/// Never called: the list is empty when it is turned back into the kept allocation.
fn unreachable_pollable() -> &'static Pollable {
    unreachable!("the poll list is cleared before it is kept")
}

fn not_registered() -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, "socket not registered")
}

impl Readiness {
    pub(crate) fn new() -> Readiness {
        Readiness { ready: Vec::new() }
    }

    /// The keys that are ready, with what occurred.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (usize, SockEvent)> + '_ {
        self.ready.iter().copied()
    }
}
