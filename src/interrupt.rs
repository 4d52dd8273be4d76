//! [`ThreadInterrupt`]: Core's `CThreadInterrupt`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// A flag that asks long operations to stop: Core's `CThreadInterrupt`.
///
/// [`SockIo::send_complete`](crate::SockIo::send_complete) and
/// [`SockIo::recv_until_terminator`](crate::SockIo::recv_until_terminator) check it between
/// attempts, so they stop within about [`MAX_WAIT_FOR_IO`](crate::MAX_WAIT_FOR_IO) of
/// [`interrupt`](ThreadInterrupt::interrupt). Share it by reference or in an `Arc`.
///
/// ```
/// use bitcoin_sock::ThreadInterrupt;
/// use std::time::Duration;
///
/// let interrupt = ThreadInterrupt::new();
/// assert!(interrupt.sleep_for(Duration::from_millis(1))); // slept the whole time
/// interrupt.interrupt();
/// assert!(interrupt.is_interrupted());
/// assert!(!interrupt.sleep_for(Duration::from_secs(60))); // returns at once
/// interrupt.reset();
/// assert!(!interrupt.is_interrupted());
/// ```
#[derive(Debug, Default)]
pub struct ThreadInterrupt {
    flag: AtomicBool,
    // Guards nothing but the condition variable's wake-ups, as in Core.
    lock: Mutex<()>,
    wake: Condvar,
}

impl ThreadInterrupt {
    /// A flag that is not set.
    pub fn new() -> ThreadInterrupt {
        ThreadInterrupt::default()
    }

    /// Sets the flag and wakes every [`sleep_for`](ThreadInterrupt::sleep_for).
    pub fn interrupt(&self) {
        {
            // Taking the lock orders the store before a sleeper's check-then-wait.
            let _guard = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
            self.flag.store(true, Ordering::Release);
        }
        self.wake.notify_all();
    }

    /// Whether the flag is set (Core's `operator bool`).
    pub fn is_interrupted(&self) -> bool {
        self.flag.load(Ordering::Acquire)
    }

    /// Clears the flag.
    pub fn reset(&self) {
        self.flag.store(false, Ordering::Release);
    }

    /// Sleeps for `duration` unless interrupted first. Returns `true` when the whole duration
    /// passed, `false` when the flag is (or becomes) set.
    pub fn sleep_for(&self, duration: Duration) -> bool {
        // Checked before the clock is read: a flag already set needs no clock (and a host may
        // have none: wasm32-unknown-unknown).
        if self.is_interrupted() {
            return false;
        }
        let deadline = Instant::now().checked_add(duration);
        let mut guard = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if self.is_interrupted() {
                return false;
            }
            let left = match deadline {
                Some(deadline) => deadline.saturating_duration_since(Instant::now()),
                // Past what Instant can hold: sleep in long steps, forever for practical purposes.
                None => Duration::from_secs(u32::MAX.into()),
            };
            if left.is_zero() {
                return true;
            }
            guard = self
                .wake
                .wait_timeout(guard, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}
