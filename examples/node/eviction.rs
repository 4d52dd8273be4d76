//! The node's side of eviction: what it knows of each inbound peer, handed to
//! `bitcoin_sock::sockman::select_to_evict` (Core's `SelectNodeToEvict`, unproven peers
//! first) when a newcomer finds every slot taken (Core's `AttemptToEvictConnection`).

use std::collections::hash_map::RandomState;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bitcoin_sock::sockman::{net_group, select_to_evict, EvictionCandidate, Id};

/// What a peer has proven, for eviction.
#[derive(Debug, Clone, Copy)]
pub struct Standing {
    /// When it connected.
    pub connected: Instant,
    /// Its address's net group, keyed with the node's [`GroupKey`].
    pub net_group: u64,
    /// When it last sent headers new to us.
    pub last_block: Option<Instant>,
}

/// The node's secret for net groups (Core's `nKeyedNetGroup` salt): made once at start.
#[derive(Debug, Default)]
pub struct GroupKey(RandomState);

impl Standing {
    /// A peer that connected from `them` now.
    pub fn new(them: SocketAddr, key: &GroupKey, now: Instant) -> Standing {
        Standing {
            connected: now,
            net_group: net_group(them.ip(), &key.0),
            last_block: None,
        }
    }
}

/// The inbound peer to drop for a newcomer, from `(id, handshake done, best ping, standing)`
/// of every inbound peer; `None` when all are protected.
pub fn choose<'a>(
    inbound: impl Iterator<Item = (Id, bool, Option<Duration>, &'a Standing)>,
) -> Option<Id> {
    let candidates = inbound
        .map(|(id, handshake_done, min_ping, standing)| {
            let mut candidate = EvictionCandidate::new(id, standing.connected, standing.net_group);
            candidate.handshake_done = handshake_done;
            candidate.min_ping = min_ping;
            candidate.last_block = standing.last_block;
            // A headers-only node relays no transactions: last_tx stays None.
            candidate
        })
        .collect();
    select_to_evict(candidates)
}
