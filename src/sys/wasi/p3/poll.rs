//! What a socket's state says is ready, and what to start so that a wait can tell the rest:
//! `poll` (`Sock::wait`, `Sock::wait_many`) looks at every socket until one is ready or the
//! deadline passes, waiting on the reactor's one set in between.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use wasip3::clocks::monotonic_clock;

use super::super::state::Phase;
use super::entry::may_block;
use super::reactor::{self, Batch};
use super::{Shared, State};
use crate::sys::PollTarget;
use crate::SockEvent;

/// The events that occurred for `requested`, as far as the socket's state tells; when none,
/// starts what makes the host tell (a read, a probe, an accept) and looks again (the host
/// may answer at once). `probe`: wait for bytes with a zero-length read rather than a read
/// with its buffer (`SockMan`'s many sockets, of which few are ready).
pub(super) fn ready_or_start(
    state: &mut State,
    shared: &Arc<Shared>,
    requested: SockEvent,
    probe: bool,
) -> SockEvent {
    let occurred = ready(state, requested);
    if !occurred.is_empty() {
        return occurred;
    }
    start(state, shared, requested, probe);
    ready(state, requested)
}

fn ready(state: &State, requested: SockEvent) -> SockEvent {
    let mut occurred = state.known_events(requested);
    match state.phase {
        Phase::Listening if !state.accepted.is_empty() => occurred |= SockEvent::RECV,
        Phase::Connected => {
            if state.rx.as_ref().is_some_and(|rx| rx.ready) {
                occurred |= SockEvent::RECV;
            }
            // After a failed or shut send stream too: the next send fails at once, as
            // natively.
            if state.tx.as_ref().is_some_and(|tx| tx.writable()) {
                occurred |= SockEvent::SEND;
            }
        }
        _ => {}
    }
    occurred & (requested | SockEvent::ERR)
}

fn start(state: &mut State, shared: &Arc<Shared>, requested: SockEvent, probe: bool) {
    match state.phase {
        Phase::Listening if requested.contains(SockEvent::RECV) => state.start_accept(),
        Phase::Connected => {
            // After our own shutdown of the sending half, the peer's end of stream makes a
            // hang-up, reported whatever was requested: read for it. Only with nothing read
            // ahead, so this never reads more than one chunk nobody asked for.
            let hang_up_watch = state.send_shut && state.read_ahead.is_empty();
            if requested.contains(SockEvent::RECV) || hang_up_watch {
                state.start_read(shared, probe);
            }
        }
        // A connect's subtask is in flight already; the rest is known without waiting.
        _ => {}
    }
}

/// The monotonic-clock mark `timeout` from now; `None` past what the clock can hold (never).
pub(super) fn deadline_after(timeout: Duration) -> Option<u64> {
    let nanos = u64::try_from(timeout.as_nanos()).ok()?;
    monotonic_clock::now().checked_add(nanos)
}

/// Whether `deadline` has passed.
pub(super) fn passed(deadline: Option<u64>) -> bool {
    deadline.is_some_and(|deadline| monotonic_clock::now() >= deadline)
}

/// Looks at every socket, and waits on the reactor's set until one is ready or `timeout`
/// passed (a zero timeout lets the host run once, so that what arrived is seen).
pub(crate) fn poll<T: PollTarget>(targets: &mut [T], timeout: Duration) -> io::Result<()> {
    may_block()?;
    let deadline = deadline_after(timeout);
    let mut waited = false;
    loop {
        let mut any = false;
        for target in targets.iter_mut() {
            let occurred = match target.socket() {
                Some(socket) => {
                    let mut state = socket.lock();
                    ready_or_start(&mut state, &socket.shared, target.requested(), false)
                }
                None => SockEvent::empty(),
            };
            any |= !occurred.is_empty();
            target.set_occurred(occurred);
        }
        // A deadline that passed still lets the host run once, so that a zero timeout looks
        // at what arrived.
        if any || (waited && passed(deadline)) {
            return Ok(());
        }
        // One socket: nothing else is due, and the extra turn would only cost.
        let batch = if targets.len() > 1 {
            Batch::Gather
        } else {
            Batch::First
        };
        reactor::wait(deadline, batch)?;
        waited = true;
    }
}
