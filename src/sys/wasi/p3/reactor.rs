//! The one waitable-set every operation in flight is joined to, and what its events are for.
//!
//! Each socket's reads, writes and connect stay in flight between calls, joined to this set
//! once; a wait takes the events that came (`waitable-set.wait` blocks for the first, then
//! `waitable-set.poll` takes the others; a wait on many sockets lets the host run again while
//! that brings more, see `gather`) and hands each to its socket. Nothing is re-sent per wait,
//! so a wait costs what happened, not how many sockets exist. A wait with a deadline has
//! one `monotonic-clock.wait-until` subtask in the set, kept across waits while it fires no
//! later than the deadline asked for (a `SockMan` loop's one-second waits share one).
//!
//! Locks: the reactor's lock is never held while a socket's state is locked from here (events
//! are taken first, then handed over), so a socket may start operations (which join the set)
//! while it handles an event.

use std::collections::VecDeque;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError, Weak};
use std::time::Instant;

use wasip3::clocks::monotonic_clock;

use super::canon::{self, Event, EVENT_SUBTASK, STATUS_RETURNED};
use super::entry::may_block;
use super::graveyard::{self, MAX_AGE, MAX_GRAVES};
use super::{Shared, State};

/// Who a waitable's events are for.
#[derive(Clone)]
enum Owner {
    Socket(Weak<Shared>),
    Timer,
}

struct Reactor {
    /// By waitable handle (handles are small table indices, reused as they are freed).
    owners: Vec<Option<Owner>>,
    /// The timer in the set: its subtask and the mark it fires at.
    timer: Option<(u32, u64)>,
    /// Sockets closed with bytes still to write, oldest first, with when (see `graveyard`).
    graves: VecDeque<(Arc<Shared>, Instant)>,
}

static REACTOR: Mutex<Reactor> = Mutex::new(Reactor {
    owners: Vec::new(),
    timer: None,
    graves: VecDeque::new(),
});

fn lock() -> MutexGuard<'static, Reactor> {
    // Nothing panics while holding the lock; a poisoned one still holds consistent state.
    REACTOR.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The set, made on first use.
fn set() -> u32 {
    static SET: OnceLock<u32> = OnceLock::new();
    *SET.get_or_init(canon::new_set)
}

/// Joins `waitable` to the set, its events going to `socket`.
pub(super) fn watch(waitable: u32, socket: &Arc<Shared>) {
    canon::join(waitable, set());
    set_owner(waitable, Some(Owner::Socket(Arc::downgrade(socket))));
}

/// Takes `waitable` out of the set (before a cancel, which the host refuses for a joined
/// waitable, and before it is dropped).
pub(super) fn unwatch(waitable: u32) {
    canon::join(waitable, 0);
    set_owner(waitable, None);
}

fn set_owner(waitable: u32, owner: Option<Owner>) {
    let mut reactor = lock();
    let at = waitable as usize;
    if reactor.owners.len() <= at {
        if owner.is_none() {
            return;
        }
        reactor.owners.resize(at + 1, None);
    }
    reactor.owners[at] = owner;
}

/// How much a [`wait`] takes in once something happened.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Batch {
    /// What came with the first event: for a wait on one socket, where nothing else is due.
    First,
    /// Everything the host finishes while it is let run (see [`gather`]): for a wait on many
    /// sockets, so that one wait sees every socket that is ready.
    Gather,
}

/// Blocks until something happens or `deadline` (a monotonic-clock mark; `None`: no limit)
/// passes, and hands every event that came to its socket (as much as `batch` says). A
/// deadline already past lets the host run once (`thread.yield`), so that looking without
/// waiting still sees what arrived.
///
/// # Errors
/// `Unsupported` where the host forbids blocking (`entry::may_block`).
pub(super) fn wait(deadline: Option<u64>, batch: Batch) -> io::Result<()> {
    may_block()?;
    expire_graves();
    match deadline {
        Some(when) if when <= monotonic_clock::now() => canon::yield_now(),
        Some(when) if !arm_timer(when) => {}
        Some(_) | None => {
            let event = canon::wait(set());
            dispatch(event);
        }
    }
    match batch {
        Batch::Gather => gather(),
        Batch::First => {
            drain();
        }
    }
    Ok(())
}

/// Hands over the events that are already there, without blocking.
pub(super) fn drain() -> bool {
    let set = set();
    let mut any = false;
    while let Some(event) = canon::poll(set) {
        dispatch(event);
        any = true;
    }
    any
}

/// Hands over the events already there and those the host finishes while it is let run,
/// until a turn of the host brings none (at most [`MAX_GATHER`] turns).
///
/// Wasmtime's event loop finishes one host operation (a stream read that got its bytes) per
/// turn, and a wait or `thread.yield` hands back control after one turn: without this, a wait
/// returns one completion however many sockets have bytes waiting, and a `SockMan` with 100
/// busy connections runs an iteration per message. The turn that finds nothing costs one
/// `thread.yield` (about 2 µs), paid only after a wait that brought something.
fn gather() {
    gather_with(drain, canon::yield_now);
}

/// [`gather`] over any host: `take` hands over what is there (and says whether anything
/// was), `turn` lets the host run once. Returns how many turns it took.
fn gather_with(mut take: impl FnMut() -> bool, mut turn: impl FnMut()) -> usize {
    if !take() {
        return 0;
    }
    for turns in 1..=MAX_GATHER {
        turn();
        if !take() {
            return turns;
        }
    }
    MAX_GATHER
}

/// The most extra host turns one wait takes to gather completions, so that a wait returns
/// even while events keep coming (each turn brings one or more).
const MAX_GATHER: usize = 1024;

/// Makes sure a timer fires at `when` or before; false when `when` has come already.
fn arm_timer(when: u64) -> bool {
    let stale = {
        let mut reactor = lock();
        match reactor.timer {
            Some((_, at)) if at <= when => return true,
            other => {
                reactor.timer = None;
                other
            }
        }
    };
    if let Some((subtask, _)) = stale {
        cancel_timer(subtask);
    }
    match canon::start_timer(when) {
        Some(subtask) => {
            canon::join(subtask, set());
            set_owner(subtask, Some(Owner::Timer));
            lock().timer = Some((subtask, when));
            true
        }
        None => false,
    }
}

/// Stops a timer that has not fired (or whose event was not taken yet).
fn cancel_timer(subtask: u32) {
    unwatch(subtask);
    canon::cancel_subtask(subtask);
    canon::drop_subtask(subtask);
}

/// Stops the timer, if one is in the set: at the end of the program, so that no subtask is
/// left running.
pub(super) fn stop_timer() {
    let timer = lock().timer.take();
    if let Some((subtask, _)) = timer {
        cancel_timer(subtask);
    }
}

fn dispatch((code, waitable, payload): Event) {
    let owner = lock().owners.get(waitable as usize).cloned().flatten();
    match owner {
        Some(Owner::Timer) if code == EVENT_SUBTASK && payload == STATUS_RETURNED => {
            let mut reactor = lock();
            if matches!(reactor.timer, Some((subtask, _)) if subtask == waitable) {
                reactor.timer = None;
            }
            if let Some(slot) = reactor.owners.get_mut(waitable as usize) {
                *slot = None;
            }
            drop(reactor);
            canon::join(waitable, 0);
            canon::drop_subtask(waitable);
        }
        Some(Owner::Socket(socket)) => {
            if let Some(socket) = socket.upgrade() {
                let mut state = socket.lock();
                state.on_event(&socket, code, waitable, payload);
            }
        }
        // A timer's progress short of firing, or taken out of the set since the event came.
        Some(Owner::Timer) | None => {}
    }
}

/// Keeps `socket` alive until its writes are done (`graveyard`); gives up the oldest past
/// [`MAX_GRAVES`]. Called with `socket`'s state locked, so the oldest is given up with the
/// reactor unlocked, and is never `socket` itself.
pub(super) fn bury(socket: Arc<Shared>) {
    let oldest = {
        let mut reactor = lock();
        reactor.graves.push_back((socket, Instant::now()));
        if reactor.graves.len() > MAX_GRAVES {
            reactor.graves.pop_front()
        } else {
            None
        }
    };
    if let Some((oldest, _)) = oldest {
        graveyard::give_up(&oldest);
    }
}

/// Gives up the buried sockets past [`MAX_AGE`] (the oldest come first, so this looks at
/// one socket when none is).
fn expire_graves() {
    loop {
        let expired = {
            let mut reactor = lock();
            match reactor.graves.front() {
                Some((_, buried)) if buried.elapsed() > MAX_AGE => reactor.graves.pop_front(),
                _ => None,
            }
        };
        match expired {
            Some((socket, _)) => graveyard::give_up(&socket),
            None => return,
        }
    }
}

/// Lets go of a buried socket whose writes are done.
pub(super) fn unbury(socket: &Shared) {
    lock()
        .graves
        .retain(|(grave, _)| !std::ptr::eq(Arc::as_ptr(grave), socket));
}

/// How many sockets are still writing after their close.
pub(super) fn graves() -> usize {
    lock().graves.len()
}

impl Shared {
    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing panics while holding the lock; a poisoned one still holds consistent state.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::{gather_with, MAX_GATHER};
    use std::cell::Cell;

    /// A host like wasmtime's: `pending` completions, one finished per turn.
    fn gather_from(ready: usize, pending: usize) -> (usize, usize) {
        let there = Cell::new(ready);
        let left = Cell::new(pending);
        let taken = Cell::new(0);
        let turns = gather_with(
            || {
                let n = there.replace(0);
                taken.set(taken.get() + n);
                n > 0
            },
            || {
                if left.get() > 0 {
                    left.set(left.get() - 1);
                    there.set(there.get() + 1);
                }
            },
        );
        (taken.get(), turns)
    }

    #[test]
    fn gather_takes_every_completion_the_host_finishes_one_per_turn() {
        // One came with the wait, 99 more finish one per turn: all 100 in one wait, and one
        // turn that brings nothing ends it.
        assert_eq!(gather_from(1, 99), (100, 100));
    }

    #[test]
    fn gather_lets_the_host_run_only_after_a_wait_that_brought_something() {
        assert_eq!(gather_from(0, 5), (0, 0));
        assert_eq!(gather_from(1, 0), (1, 1));
    }

    #[test]
    fn gather_returns_while_completions_keep_coming() {
        assert_eq!(gather_from(1, usize::MAX).1, MAX_GATHER);
    }
}
