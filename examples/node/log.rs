//! The node's lines, rate-limited: under attack (thousands of peers dropped a second) the
//! log must not become the attack. At most N lines a second are printed; the rest are
//! counted and said in one line when printing resumes.

use std::time::{Duration, Instant};

/// A token bucket of lines: `rate` a second, up to `rate` at once.
#[derive(Debug)]
pub struct LogLimit {
    rate: u32,
    tokens: f64,
    last: Option<Instant>,
    suppressed: u64,
}

impl LogLimit {
    /// At most `rate` lines a second; 0: no limit.
    pub fn new(rate: u32) -> LogLimit {
        LogLimit {
            rate,
            tokens: f64::from(rate),
            last: None,
            suppressed: 0,
        }
    }

    /// Whether a line may be printed now; when lines were held back before it, how many
    /// (to say so first).
    pub fn admit(&mut self, now: Instant) -> Option<u64> {
        if self.rate == 0 {
            return Some(0);
        }
        let rate = f64::from(self.rate);
        let elapsed = self
            .last
            .map_or(Duration::ZERO, |last| now.saturating_duration_since(last));
        self.last = Some(now);
        self.tokens = (self.tokens + elapsed.as_secs_f64() * rate).min(rate);
        if self.tokens < 1.0 {
            self.suppressed += 1;
            return None;
        }
        self.tokens -= 1.0;
        Some(std::mem::take(&mut self.suppressed))
    }
}
