//! The node's `--connect` peers, kept: Core's `ThreadOpenConnections` for `-connect`. Each
//! target is connected at start; when its connection fails or goes away, it is tried again
//! after a bounded backoff, for as long as the node runs (Core never gives up on `-connect`).
//! A node that only syncs (no `--listen`) gives a target up after
//! [`ONE_SHOT_ATTEMPTS`] failed attempts in a row, so that it ends.
//!
//! Core's cadence: it tries every `-connect` address, then sleeps 500 ms times the pass number
//! (at most 10) after each and 500 ms more per pass: the first retry half a second after a
//! failure, then one more half-second per failure, up to 5.5 s, and never back down. Here the
//! delay is [`Backoff::base`] times the failures in a row, capped at [`Backoff::max`] (0.5 s,
//! then 1 s, 1.5 s, ... 5 s by default), and it falls back to the base once a connection ends
//! a sync: a peer that was useful is wanted back at once, one that keeps failing is not
//! hammered.
//!
//! No I/O here: the caller connects (`SockMan::connect_by_name`) and says what became of each
//! connection; this decides when to try. `I` is the connection's id (`sockman::Id`).

use std::time::{Duration, Instant};

/// Failed attempts in a row after which a node without `--listen` gives a target up.
pub const ONE_SHOT_ATTEMPTS: u32 = 10;

/// How long to wait before the next attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The delay after one failure, and the step it grows by.
    pub base: Duration,
    /// The longest delay.
    pub max: Duration,
}

impl Backoff {
    /// Core's `-connect` cadence: half a second, growing by half a second, capped (Core's
    /// cap is 5.5 s; 5 s here).
    pub const CORE: Backoff = Backoff {
        base: Duration::from_millis(500),
        max: Duration::from_secs(5),
    };

    /// The delay before the next attempt after `failures` failures in a row (at least one).
    pub fn delay(&self, failures: u32) -> Duration {
        self.base.saturating_mul(failures.max(1)).min(self.max)
    }
}

/// What became of a target's connection, as the node sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Closed: dropped by the node or by the peer.
    Gone,
    /// Open, the handshake not done.
    Connecting,
    /// The handshake is done, the first sync not.
    Handshaken,
    /// Its first sync ended.
    Synced,
}

/// Where one target is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State<I> {
    /// To be connected at this time.
    Due(Instant),
    /// Connected as this id.
    Connected(I),
    /// Given up (only without `--listen`).
    GivenUp,
}

/// One `--connect` target.
#[derive(Debug, Clone)]
struct Target<I> {
    dest: String,
    state: State<I>,
    /// Failed attempts (connects refused, connections gone before a sync ended) in a row.
    failures: u32,
    /// Whether a connection to it ever ended a sync.
    synced: bool,
    attempts: u64,
}

/// What [`Outbound::update`] found: a target whose connection went away.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lost {
    /// The target, as given to `--connect` (with its port).
    pub dest: String,
    /// When it will be tried again, or `None`: given up.
    pub retry_in: Option<Duration>,
    /// Connect attempts made to it so far.
    pub attempts: u64,
}

/// The `--connect` targets and when each is next tried.
#[derive(Debug, Clone)]
pub struct Outbound<I> {
    targets: Vec<Target<I>>,
    backoff: Backoff,
    /// Failures in a row after which a target is given up; `None`: never.
    give_up_after: Option<u32>,
}

impl<I: Copy + Eq> Outbound<I> {
    /// Every target due at `now`.
    pub fn new(
        dests: Vec<String>,
        backoff: Backoff,
        give_up_after: Option<u32>,
        now: Instant,
    ) -> Outbound<I> {
        let targets = dests
            .into_iter()
            .map(|dest| Target {
                dest,
                state: State::Due(now),
                failures: 0,
                synced: false,
                attempts: 0,
            })
            .collect();
        Outbound {
            targets,
            backoff,
            give_up_after,
        }
    }

    /// The targets to connect now, by index.
    pub fn due(&self, now: Instant) -> Vec<usize> {
        self.targets
            .iter()
            .enumerate()
            .filter(|(_, target)| matches!(target.state, State::Due(at) if at <= now))
            .map(|(index, _)| index)
            .collect()
    }

    /// Target `index`'s destination.
    pub fn dest(&self, index: usize) -> &str {
        &self.targets[index].dest
    }

    /// Connect attempts made to target `index`.
    pub fn attempts(&self, index: usize) -> u64 {
        self.targets[index].attempts
    }

    /// Target `index` is connected as `id`.
    pub fn connected(&mut self, index: usize, id: I) {
        let target = &mut self.targets[index];
        target.attempts += 1;
        target.state = State::Connected(id);
    }

    /// Connecting to target `index` failed at `now`: when it is tried again (`None`: given
    /// up).
    pub fn failed(&mut self, index: usize, now: Instant) -> Option<Duration> {
        self.targets[index].attempts += 1;
        self.schedule(index, now)
    }

    fn schedule(&mut self, index: usize, now: Instant) -> Option<Duration> {
        let target = &mut self.targets[index];
        target.failures = target.failures.saturating_add(1);
        if self
            .give_up_after
            .is_some_and(|limit| target.failures >= limit)
        {
            target.state = State::GivenUp;
            return None;
        }
        let delay = self.backoff.delay(target.failures);
        // A delay past what Instant holds: try at once rather than never.
        target.state = State::Due(now.checked_add(delay).unwrap_or(now));
        Some(delay)
    }

    /// Asks `status` about each connected target's connection: a sync that ended resets the
    /// target's failures; a connection gone schedules the next attempt. Returns the targets
    /// lost.
    pub fn update(&mut self, now: Instant, status: impl Fn(I) -> Status) -> Vec<Lost> {
        let mut lost = Vec::new();
        for index in 0..self.targets.len() {
            let State::Connected(id) = self.targets[index].state else {
                continue;
            };
            match status(id) {
                Status::Connecting | Status::Handshaken => {}
                Status::Synced => {
                    let target = &mut self.targets[index];
                    target.synced = true;
                    target.failures = 0;
                }
                Status::Gone => {
                    let retry_in = self.schedule(index, now);
                    let target = &self.targets[index];
                    lost.push(Lost {
                        dest: target.dest.clone(),
                        retry_in,
                        attempts: target.attempts,
                    });
                }
            }
        }
        lost
    }

    /// The earliest time a target is due: how long the caller may wait at most.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.targets
            .iter()
            .filter_map(|target| match target.state {
                State::Due(at) => Some(at),
                _ => None,
            })
            .min()
    }

    /// Whether every target ended a sync once or was given up: a node without `--listen`
    /// is done.
    pub fn done(&self) -> bool {
        self.targets
            .iter()
            .all(|target| target.synced || target.state == State::GivenUp)
    }

    /// Targets that ended a sync once.
    pub fn synced_count(&self) -> usize {
        self.targets.iter().filter(|target| target.synced).count()
    }

    /// Targets.
    pub fn len(&self) -> usize {
        self.targets.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.targets.is_empty()
    }
}
