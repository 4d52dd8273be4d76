//! Sockets closed while their last bytes are still being written, kept (within bounds) until
//! they are.
//!
//! Closing a socket natively returns at once and the kernel sends what it holds; here the
//! bytes `send` accepted are still in the socket's buffer, or in a write in flight that the
//! host must not lose (a stream with a write in flight cannot be dropped, and cancelling
//! discards its bytes). Such a socket stays in the reactor's graveyard, its writes carried on by
//! the events of any later wait; the last one done, its stream ends (the peer's FIN) and the
//! socket is closed. When the program's `main` returns, [`flush`] waits for them a little.
//!
//! Bounded as on WASI 0.2: at most [`MAX_GRAVES`] sockets wait, none longer than
//! [`MAX_AGE`] (a peer that has read nothing for that long is not expected to). Past either,
//! unlike on 0.2 (where the guest can only forget a stuck socket), the socket is really
//! closed: its write cancelled and its unsent bytes discarded, as a reset discards them.

use std::sync::Arc;
use std::time::Duration;

use super::poll::{deadline_after, passed};
use super::{reactor, Shared, State};

/// The most sockets kept writing after their close; past it the oldest is closed, its unsent
/// bytes discarded (a peer that never reads cannot hold the guest's memory).
pub(super) const MAX_GRAVES: usize = 64;

/// The longest a socket is kept writing after its close.
pub(super) const MAX_AGE: Duration = Duration::from_secs(60);

/// Closes a socket (its reads, connect and accepts stopped already): at once when nothing is
/// left to write (or its owner asked to discard it: `reset_on_close`), else once the writes
/// are done.
pub(super) fn close(state: &mut State, shared: &Arc<Shared>) {
    if state.sending() && !state.discard_on_close {
        reactor::bury(Arc::clone(shared));
        return;
    }
    finish(state);
}

/// After an event of a closed socket: closes it if its writes are done (or failed).
pub(super) fn settle(state: &mut State, shared: &Shared) {
    if !state.sending() {
        finish(state);
        reactor::unbury(shared);
    }
}

/// A buried socket past [`MAX_GRAVES`] or [`MAX_AGE`]: closed now, unsent bytes discarded.
pub(super) fn give_up(shared: &Shared) {
    finish(&mut shared.lock());
}

/// The sending side ends (the peer's FIN; a write in flight is cancelled), then the socket
/// goes.
fn finish(state: &mut State) {
    state.stop_sending();
    state.tcp = None;
}

/// Waits up to `limit` for the closed sockets still writing (at the end of the program,
/// whose exit would lose their bytes).
pub(super) fn flush(limit: Duration) {
    let deadline = deadline_after(limit);
    while reactor::graves() > 0 && !passed(deadline) {
        if reactor::wait(deadline, reactor::Batch::First).is_err() {
            return;
        }
    }
}
