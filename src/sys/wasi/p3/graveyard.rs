//! Sockets closed while their last bytes are still being written, kept until they are.
//!
//! Closing a socket natively returns at once and the kernel sends what it holds; here the
//! bytes `send` accepted are still in the socket's buffer, or in a write in flight that the
//! host must not lose (a stream with a write in flight cannot be dropped, and cancelling
//! discards its bytes). Such a socket stays in the reactor's graveyard, its writes carried on by
//! the events of any later wait; the last one done, its stream ends (the peer's FIN) and the
//! socket is closed. When the program's `main` returns, [`flush`] waits for them a little.

use std::sync::Arc;
use std::time::Duration;

use super::poll::{deadline_after, passed};
use super::{reactor, Shared, State};

/// The most sockets kept writing after their close; past it a closed socket's unsent bytes
/// are discarded (a peer that never reads cannot grow the guest without bound).
const MAX_GRAVES: usize = 4096;

/// Closes a socket (its reads, connect and accepts stopped already): at once when nothing is
/// left to write, else once the writes are done.
pub(super) fn close(state: &mut State, shared: &Arc<Shared>) {
    if state.sending() && reactor::graves() < MAX_GRAVES {
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

/// The sending side ends (the peer's FIN), then the socket goes.
fn finish(state: &mut State) {
    state.stop_sending();
    state.tcp = None;
}

/// Waits up to `limit` for the closed sockets still writing (at the end of the program,
/// whose exit would lose their bytes).
pub(super) fn flush(limit: Duration) {
    let deadline = deadline_after(limit);
    while reactor::graves() > 0 && !passed(deadline) {
        if reactor::wait(deadline).is_err() {
            return;
        }
    }
}
