//! Sockets whose close would block the guest, kept until their last write is done.

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use wasi::clocks::monotonic_clock;
use wasi::io::poll::poll as wasi_poll;

use super::Conn;

impl Conn {
    /// Whether the host still holds unsent bytes, as far as it can tell at once.
    pub(super) fn write_stuck(&self) -> bool {
        self.streams
            .get()
            .is_some_and(|(_, output)| matches!(output.check_write(), Ok(0)))
    }

    /// Whether dropping the output stream would block: wasmtime's drop waits until the last
    /// write reached the kernel and the socket is writable again, i.e. forever when the peer
    /// never reads. `check-write` answers without waiting, so a readiness the host has not
    /// noticed yet looks the same as a stuck write: a short wait tells them apart.
    pub(super) fn write_blocks_close(&self) -> bool {
        let Some((_, output)) = self.streams.get() else {
            return false;
        };
        if !self.write_stuck() {
            return false;
        }
        let writable = output.subscribe();
        let timer = monotonic_clock::subscribe_duration(CLOSE_CHECK.as_nanos() as u64);
        !wasi_poll(&[&writable, &timer]).contains(&0)
    }
}

/// How long closing a sock that has written waits for the host to confirm its writes are done
/// before leaving the close to the graveyard.
const CLOSE_CHECK: Duration = Duration::from_millis(10);

/// Sockets closed while their last write is still stuck in the host. Closing one natively
/// returns at once and the kernel finishes (or abandons) the send; wasmtime instead blocks the
/// guest in the stream's drop until the write completes, which a peer that never reads makes
/// forever. Such sockets wait here and are really closed by a later sweep (every wait and
/// every close sweeps), once the write has gone through or failed.
static GRAVES: Mutex<Vec<Conn>> = Mutex::new(Vec::new());

pub(super) fn bury(conn: Conn) {
    lock().push(conn);
}

/// Closes the buried sockets whose write has finished.
pub(super) fn sweep() {
    let mut graves = lock();
    if !graves.is_empty() {
        graves.retain(Conn::write_stuck);
    }
}

fn lock() -> MutexGuard<'static, Vec<Conn>> {
    GRAVES.lock().unwrap_or_else(PoisonError::into_inner)
}
