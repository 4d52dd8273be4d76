//! Sockets whose close would block the guest, kept (within bounds) until their last write is
//! done.
//!
//! wasmtime 48 (`wasmtime-wasi`'s p2 `TcpWriter`) hands every write to a host task and, when
//! the guest drops the output stream, waits for that task: the drop blocks the guest until
//! the peer has read enough for the write to reach the kernel, i.e. forever when the peer
//! never reads. Nothing the guest can call aborts the write: `shutdown(send)` only schedules
//! the shutdown after it, `shutdown(receive)` touches the read half, and the socket cannot be
//! dropped before its streams. Until the write is done the host socket stays open, so the
//! peer sees no end of stream, nor the reset that closing with unread bytes sends natively.
//!
//! So a socket closed with a write in flight first gets the largest send buffer the host
//! allows (`SO_SNDBUF`): where `net.core.wmem_max` leaves room above the buffer the kernel
//! chose, the kernel takes what the host holds and the close waits for that (at most
//! [`ROOM_WAIT`]), then closes for real, as natively. Else the socket waits here, closed for
//! real by a sweep once its write is done or failed: every close sweeps, and every wait
//! sweeps before it polls and watches the buried sockets, so it ends and sweeps when one is
//! done.
//! Bounded: at most [`MAX_GRAVES`] wait, none longer than [`MAX_AGE`]; past either, a socket
//! is abandoned to the host (its handles forgotten, so the guest stops paying for it; the host
//! keeps that socket, and at most one write of unsent bytes, until the component exits).

use std::collections::VecDeque;
use std::mem;
use std::ops::Range;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use wasi::clocks::monotonic_clock;
use wasi::io::poll::{poll as wasi_poll, Pollable};

use super::io::READ_CHUNK;
use super::Conn;

/// The most sockets waiting for their writes; past it the oldest is abandoned. A sweep asks
/// each of them once (one `check-write`), so this bounds what every wait pays for them.
pub(super) const MAX_GRAVES: usize = 64;

/// The longest a socket waits for its write; a peer that has read nothing for this long is
/// not expected to.
pub(super) const MAX_AGE: Duration = Duration::from_secs(60);

impl Conn {
    /// Whether the host still holds unsent bytes, as far as it can tell at once.
    fn write_stuck(&self) -> bool {
        self.streams
            .get()
            .is_some_and(|(_, output)| matches!(output.check_write(), Ok(0)))
    }

    /// Whether dropping the output stream would block the guest: the host still holds a
    /// write. `check-write` also answers 0 when wasmtime's task has spent its I/O budget
    /// (see `io::check_write`); one yield to the host (a zero timer) renews it, and a
    /// pollable ready after it means the stream is free.
    fn write_blocks_close(&self) -> bool {
        let Some((_, output)) = self.streams.get() else {
            return false;
        };
        if !self.write_stuck() {
            return false;
        }
        let writable = output.subscribe();
        let timer = monotonic_clock::subscribe_duration(0);
        !wasi_poll(&[&writable, &timer]).contains(&0)
    }

    /// Lets the kernel take what the host still holds: the largest send buffer the host
    /// allows (it clamps to `net.core.wmem_max`; a smaller buffer than the kernel's own only
    /// slows a socket being closed anyway). Whether the buffer grew by a host write's worth,
    /// so that the write can finish.
    fn make_room(&self) -> bool {
        let before = self.tcp.send_buffer_size().unwrap_or(u64::MAX);
        let _ = self.tcp.set_send_buffer_size(i32::MAX as u64);
        let after = self.tcp.send_buffer_size().unwrap_or(0);
        after >= before.saturating_add(READ_CHUNK as u64)
    }
}

/// Closes `conn`, which wrote: at once when its last write is done; else, when the host's
/// send buffer can grow, once the kernel has taken the write (within [`ROOM_WAIT`]);
/// else (or past that) it waits here for its write.
pub(super) fn close(conn: Conn) {
    sweep();
    if !conn.write_blocks_close() {
        return drop(conn);
    }
    let Some((_, output)) = conn.streams.get() else {
        return drop(conn);
    };
    let writable = output.subscribe();
    if conn.make_room() {
        let timer = monotonic_clock::subscribe_duration(ROOM_WAIT.as_nanos() as u64);
        if wasi_poll(&[&writable, &timer]).contains(&0) {
            drop(writable);
            return drop(conn);
        }
    }
    bury(Grave {
        writable,
        conn,
        buried: Instant::now(),
    });
}

/// The longest a close waits for the kernel to take a stuck write once its send buffer grew
/// (typically well under a millisecond natively, a few in wasmtime on a busy machine).
pub(super) const ROOM_WAIT: Duration = Duration::from_millis(10);

/// A buried socket; field order is drop order (the pollable is the stream's child).
struct Grave {
    /// Ready once the write is done (or failed) and the socket takes bytes again: then the
    /// stream's drop returns at once. Every wait watches it, so a wait ends, and its sweep
    /// closes the socket, as soon as that happens.
    writable: Pollable,
    conn: Conn,
    buried: Instant,
}

static GRAVES: Mutex<VecDeque<Grave>> = Mutex::new(VecDeque::new());

/// Keeps `grave` until its write is done; abandons the oldest past [`MAX_GRAVES`].
fn bury(grave: Grave) {
    let mut graves = lock();
    graves.push_back(grave);
    while graves.len() > MAX_GRAVES {
        if let Some(oldest) = graves.pop_front() {
            abandon(oldest);
        }
    }
}

/// Closes the buried sockets whose write has finished; abandons those past [`MAX_AGE`].
pub(super) fn sweep() {
    let mut graves = lock();
    if graves.is_empty() {
        return;
    }
    let now = Instant::now();
    for grave in mem::take(&mut *graves) {
        if !grave.conn.write_stuck() {
            // Dropped here: the write is done, so the stream's drop returns at once.
            drop(grave);
        } else if now.saturating_duration_since(grave.buried) > MAX_AGE {
            abandon(grave);
        } else {
            graves.push_back(grave);
        }
    }
}

/// Forgets `grave`'s handles: dropping them would block the guest until the peer reads.
fn abandon(grave: Grave) {
    let Grave { writable, conn, .. } = grave;
    drop(writable);
    mem::forget(conn);
}

/// The buried sockets' pollables, lent to one wait (which holds this while it polls).
pub(super) struct Watched(MutexGuard<'static, VecDeque<Grave>>);

/// The graves, for a wait to watch: after a [`sweep`], so only those still waiting.
pub(super) fn watched() -> Watched {
    sweep();
    Watched(lock())
}

impl Watched {
    /// Appends the graves' pollables to `pollables`; where they are in it.
    pub(super) fn push_into<'a>(&'a self, pollables: &mut Vec<&'a Pollable>) -> Range<usize> {
        let start = pollables.len();
        pollables.extend(self.0.iter().map(|grave| &grave.writable));
        start..pollables.len()
    }

    /// After the wait: closes the sockets whose pollable the wait found ready (`ready` as
    /// `poll_into` fills it, the graves at `at`): their write is done and the stream takes
    /// bytes again, so its drop returns at once. (The host said so itself: no `check-write`,
    /// which a spent I/O budget would answer with 0.)
    pub(super) fn sweep_if_ready(mut self, at: Range<usize>, ready: &[bool]) {
        let Some(flags) = ready.get(at) else {
            return;
        };
        if !flags.contains(&true) {
            return;
        }
        let mut index = 0;
        self.0.retain(|_| {
            let keep = !flags.get(index).copied().unwrap_or(false);
            index += 1;
            keep
        });
    }
}

fn lock() -> MutexGuard<'static, VecDeque<Grave>> {
    GRAVES.lock().unwrap_or_else(PoisonError::into_inner)
}
