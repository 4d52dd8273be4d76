//! Fair service: which peers' waiting messages the node handles first in a turn, and how long
//! a turn may spend on them.
//!
//! Core handles one message per peer per turn, round the peers in order: a turn then costs one
//! message of every busy peer, so an honest client waits behind as many expensive requests as
//! there are spammers (100 `getheaders` from genesis, 2,000 headers each, is a second in a
//! debug wasm build). Here each peer's [`Load`] (what its messages made the node do lately:
//! bytes received and answered, decaying by half every second) orders the turn, lightest
//! first, and a turn stops handling messages after [`TURN_BUDGET`]; the peers left wait for
//! the next turn, which comes at once. So a client that asks little is served within a turn's
//! budget and one message, however many peers spam.

use std::time::{Duration, Instant};

/// The most a turn spends handling waiting messages (at least one is handled).
pub const TURN_BUDGET: Duration = Duration::from_millis(20);

/// What a peer's messages made the node do lately, in bytes (received and answered), halving
/// every second.
#[derive(Debug, Clone, Copy)]
pub struct Load {
    bytes: f64,
    at: Instant,
}

impl Load {
    /// No load yet.
    pub fn new(now: Instant) -> Load {
        Load {
            bytes: 0.0,
            at: now,
        }
    }

    /// The load at `now`.
    pub fn at(&self, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.bytes * 0.5f64.powf(elapsed)
    }

    /// Adds `bytes` of work at `now`.
    pub fn add(&mut self, bytes: usize, now: Instant) {
        // A count of bytes is exact in f64 up to 2^53.
        self.bytes = self.at(now) + bytes as f64;
        self.at = now;
    }
}
