//! Keep-alive as Core does it (`PeerManagerImpl::MaybeSendPing`): once the handshake is done, a
//! `ping` every [`PING_INTERVAL`] counted from the last one sent (whatever else the peer sends:
//! a chatty peer that stopped answering pings is as dead as a silent one), and a peer whose
//! `pong` is [`TIMEOUT_INTERVAL`] late is dropped with Core's text, `ping timeout: 1200.000000s`.
//!
//! Sans-IO like the rest of `p2p/`: the caller passes the clock in, sends the `ping`s this
//! asks for and hands over the `pong`s that come back. One outstanding `ping` at a time, so
//! nothing here grows.

use std::fmt;
use std::time::{Duration, Instant};

/// Core's `PING_INTERVAL`: time between `ping`s.
pub const PING_INTERVAL: Duration = Duration::from_secs(2 * 60);

/// Core's `TIMEOUT_INTERVAL`: how long a `pong` may take.
pub const TIMEOUT_INTERVAL: Duration = Duration::from_secs(20 * 60);

/// A `pong` that did not come in time: Core's `ping timeout: %fs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PingTimeout {
    /// From the `ping` to when the timeout was noticed.
    pub waited: Duration,
}

impl fmt::Display for PingTimeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ping timeout: {:.6}s", self.waited.as_secs_f64())
    }
}

/// One peer's pings.
#[derive(Debug, Clone)]
pub struct Keepalive {
    interval: Duration,
    timeout: Duration,
    /// When the last `ping` went out (the handshake's end before the first one).
    last_ping: Instant,
    /// The outstanding `ping`: its nonce and when it went out.
    outstanding: Option<(u64, Instant)>,
    /// Pings sent, for the nonces.
    sent: u64,
    /// Our base nonce: each `ping` carries `nonce + n`.
    nonce: u64,
    /// The shortest round trip a `pong` answered in (Core's `m_min_ping_time`).
    min_ping: Option<Duration>,
}

impl Keepalive {
    /// Starts at `now` (the handshake's end): the first `ping` is due one `interval` later.
    pub fn new(interval: Duration, timeout: Duration, nonce: u64, now: Instant) -> Keepalive {
        Keepalive {
            interval,
            timeout,
            last_ping: now,
            outstanding: None,
            sent: 0,
            nonce,
            min_ping: None,
        }
    }

    /// When [`poll`](Self::poll) next has something to do: the outstanding `ping`'s deadline,
    /// else when the next `ping` is due. `None`: past what [`Instant`] holds, i.e. never.
    pub fn next_deadline(&self) -> Option<Instant> {
        match self.outstanding {
            Some((_, sent)) => sent.checked_add(self.timeout),
            None => self.last_ping.checked_add(self.interval),
        }
    }

    /// The nonce of a `ping` to send now, if one is due.
    ///
    /// # Errors
    /// [`PingTimeout`] once the outstanding `ping` went unanswered for the timeout.
    pub fn poll(&mut self, now: Instant) -> Result<Option<u64>, PingTimeout> {
        let Some(deadline) = self.next_deadline() else {
            return Ok(None);
        };
        if now < deadline {
            return Ok(None);
        }
        if let Some((_, sent)) = self.outstanding {
            return Err(PingTimeout {
                waited: now.saturating_duration_since(sent),
            });
        }
        self.sent = self.sent.wrapping_add(1);
        let nonce = self.nonce.wrapping_add(self.sent);
        self.outstanding = Some((nonce, now));
        self.last_ping = now;
        Ok(Some(nonce))
    }

    /// A `pong` arrived at `now`; true when it answers the outstanding `ping` (which it ends,
    /// its round trip counted in [`min_ping`](Self::min_ping)). One with another nonce is
    /// ignored, as Core does ("Nonce mismatch"), and the deadline keeps running.
    pub fn pong(&mut self, nonce: u64, now: Instant) -> bool {
        match self.outstanding {
            Some((expected, sent)) if expected == nonce => {
                self.outstanding = None;
                let rtt = now.saturating_duration_since(sent);
                self.min_ping = Some(self.min_ping.map_or(rtt, |min| min.min(rtt)));
                true
            }
            _ => false,
        }
    }

    /// The shortest round trip of an answered `ping` (Core's `m_min_ping_time`, which
    /// eviction protects the fastest peers by); `None` before the first answer.
    pub fn min_ping(&self) -> Option<Duration> {
        self.min_ping
    }

    /// Whether a `ping` waits for its `pong`.
    pub fn waiting(&self) -> bool {
        self.outstanding.is_some()
    }
}
