//! The registry of `SockMan`: the registered sockets, looked at only when something happened
//! to them, and one wait on the reactor's set between.
//!
//! A registered socket keeps a read (a zero-length probe: no buffer per idle socket) in
//! flight in the reactor's set from one wait to the next. Its events, and every call that
//! changes its state, mark it; a wait looks at the marked sockets only, and at those it
//! reported ready last time (a socket stays ready until its state says otherwise, as
//! `poll(2)` reports it), so a wait costs what is ready, not how many are registered.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use super::entry::may_block;
use super::poll::{deadline_after, passed, ready_or_start};
use super::reactor::{self, Batch};
use super::{Shared, Socket, State};
use crate::SockEvent;

/// One registered socket.
struct Entry {
    socket: Arc<Shared>,
    requested: SockEvent,
    /// In [`Entries::marked`].
    marked: bool,
}

#[derive(Default)]
struct Entries {
    by_key: Vec<Option<Entry>>,
    /// Keys to look at in the next wait.
    marked: Vec<usize>,
}

struct Watched {
    entries: Mutex<Entries>,
    /// A [`notify`](Registry::notify) not yet consumed by a wait.
    notified: AtomicBool,
}

/// What a registered socket knows of its registry: where to mark itself.
pub(super) struct Watcher {
    registry: Weak<Watched>,
    key: usize,
}

/// What `SockMan` registers.
pub(crate) struct Registry {
    watched: Arc<Watched>,
}

/// What one [`Registry::wait`] found: reused between waits.
pub(crate) struct Readiness {
    ready: Vec<(usize, SockEvent)>,
    looking: Vec<(usize, Arc<Shared>, SockEvent)>,
}

impl Watched {
    fn lock(&self) -> MutexGuard<'_, Entries> {
        // Nothing panics while holding the lock; a poisoned one still holds consistent state.
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn mark(&self, key: usize) {
        let mut entries = self.lock();
        if let Some(Some(entry)) = entries.by_key.get_mut(key) {
            if !entry.marked {
                entry.marked = true;
                entries.marked.push(key);
            }
        }
    }
}

/// Marks the socket for its registry's next wait (something happened to it).
pub(super) fn touched(state: &State) {
    if let Some(watcher) = &state.watcher {
        if let Some(watched) = watcher.registry.upgrade() {
            watched.mark(watcher.key);
        }
    }
}

impl Registry {
    pub(crate) fn new() -> io::Result<Registry> {
        Ok(Registry {
            watched: Arc::new(Watched {
                entries: Mutex::new(Entries::default()),
                notified: AtomicBool::new(false),
            }),
        })
    }

    /// Watches `socket` for `requested` under `key` from the next wait on.
    ///
    /// # Safety
    /// None here (the registry shares the socket's state), but the contract is the other
    /// backends': `socket` stays alive until it is [`deregister`](Registry::deregister)ed.
    pub(crate) unsafe fn register(
        &self,
        socket: &Socket,
        key: usize,
        requested: SockEvent,
    ) -> io::Result<()> {
        {
            let mut entries = self.watched.lock();
            if entries.by_key.len() <= key {
                entries.by_key.resize_with(key + 1, || None);
            }
            if entries.by_key[key].is_some() {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    "key already registered",
                ));
            }
            entries.by_key[key] = Some(Entry {
                socket: Arc::clone(&socket.shared),
                requested,
                marked: true,
            });
            entries.marked.push(key);
        }
        socket.lock().watcher = Some(Watcher {
            registry: Arc::downgrade(&self.watched),
            key,
        });
        Ok(())
    }

    /// Changes what the socket under `key` is watched for.
    pub(crate) fn reregister(
        &self,
        _socket: &Socket,
        key: usize,
        requested: SockEvent,
    ) -> io::Result<()> {
        let mut entries = self.watched.lock();
        let Some(Some(entry)) = entries.by_key.get_mut(key) else {
            return Err(not_registered());
        };
        entry.requested = requested;
        if !entry.marked {
            entry.marked = true;
            entries.marked.push(key);
        }
        Ok(())
    }

    /// Stops watching the socket under `key`.
    pub(crate) fn deregister(&self, socket: &Socket, key: usize) -> io::Result<()> {
        let entry = self
            .watched
            .lock()
            .by_key
            .get_mut(key)
            .and_then(Option::take);
        if entry.is_none() {
            return Err(not_registered());
        }
        socket.lock().watcher = None;
        Ok(())
    }

    /// Looks at the sockets marked since the last wait (and those ready then); when none is
    /// ready, waits on the reactor's set for something to happen, up to `timeout` (no wait
    /// after a [`notify`](Registry::notify)); fills `ready`.
    pub(crate) fn wait(&self, ready: &mut Readiness, timeout: Duration) -> io::Result<()> {
        ready.ready.clear();
        // Before anything is started that only a wait could finish (or cancel).
        may_block()?;
        let mut deadline = deadline_after(timeout);
        let mut waited = false;
        loop {
            if self.watched.notified.swap(false, Ordering::AcqRel) {
                deadline = deadline_after(Duration::ZERO);
            }
            self.take_marked(&mut ready.looking);
            for (key, socket, requested) in ready.looking.drain(..) {
                let occurred = {
                    let mut state = socket.lock();
                    ready_or_start(&mut state, &socket, requested, true)
                };
                if !occurred.is_empty() {
                    ready.ready.push((key, occurred));
                }
            }
            if !ready.ready.is_empty() {
                // Ready until its state says otherwise: looked at again next time.
                for &(key, _) in &ready.ready {
                    self.watched.mark(key);
                }
                return Ok(());
            }
            if waited && passed(deadline) {
                return Ok(());
            }
            reactor::wait(deadline, Batch::Gather)?;
            waited = true;
        }
    }

    /// The marked keys with their sockets, unmarked.
    fn take_marked(&self, looking: &mut Vec<(usize, Arc<Shared>, SockEvent)>) {
        let mut entries = self.watched.lock();
        let Entries { by_key, marked } = &mut *entries;
        for key in marked.drain(..) {
            if let Some(Some(entry)) = by_key.get_mut(key) {
                entry.marked = false;
                looking.push((key, Arc::clone(&entry.socket), entry.requested));
            }
        }
    }

    /// Makes the next [`wait`](Registry::wait) return at once (WASI has no threads, so no
    /// wait can be running while this is called).
    pub(crate) fn notify(&self) -> io::Result<()> {
        self.watched.notified.store(true, Ordering::Release);
        Ok(())
    }
}

fn not_registered() -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, "socket not registered")
}

impl Readiness {
    pub(crate) fn new() -> Readiness {
        Readiness {
            ready: Vec::new(),
            looking: Vec::new(),
        }
    }

    /// The keys that are ready, with what occurred.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (usize, SockEvent)> + '_ {
        self.ready.iter().copied()
    }
}
