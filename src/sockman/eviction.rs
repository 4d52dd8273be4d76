//! Which inbound connection to drop when a newcomer finds every slot taken: Bitcoin Core's
//! `SelectNodeToEvict` (`src/node/eviction.cpp`, called by `AttemptToEvictConnection`), with
//! one rule first: a peer that has not finished the handshake has proven nothing, so it goes
//! before any that has.
//!
//! Without eviction, whoever fills the slots first keeps them: 125 connections that never say
//! a word lock every honest newcomer out until the handshake deadline frees them, and
//! reconnecting every minute keeps them out for good. With it, a newcomer always gets in while
//! some peer is unprotected, and a peer keeps its slot by what it proved, not by when it came.

use std::hash::{BuildHasher, Hash, Hasher};
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// What eviction knows about one inbound connection (Core's `NodeEvictionCandidate`).
/// `K` names the connection, usually the manager's [`Id`](super::Id).
///
/// Made with [`new`](EvictionCandidate::new), then the fields known set: Core's candidate has
/// grown with its releases (network, connection type, relayed services), and this one may
/// too without breaking callers.
///
/// ```
/// use bitcoin_sock::sockman::{select_to_evict, EvictionCandidate};
/// use std::time::Instant;
///
/// let mut silent = EvictionCandidate::new(1, Instant::now(), 7);
/// silent.handshake_done = false;
/// let mut proven = EvictionCandidate::new(2, Instant::now(), 7);
/// proven.handshake_done = true;
/// assert_eq!(select_to_evict(vec![proven, silent]), Some(1));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct EvictionCandidate<K> {
    /// The connection.
    pub id: K,
    /// When it was accepted (Core's `m_connected`).
    pub connected: Instant,
    /// Whether it finished the protocol's handshake (Core's `fSuccessfullyConnected`, which
    /// Core's eviction does not weigh).
    pub handshake_done: bool,
    /// Its best ping round trip, if measured (Core's `m_min_ping_time`).
    pub min_ping: Option<Duration>,
    /// When it last sent a block (or header) new to us (Core's `m_last_block_time`).
    pub last_block: Option<Instant>,
    /// When it last sent a transaction new to us (Core's `m_last_tx_time`).
    pub last_tx: Option<Instant>,
    /// Its net group, keyed ([`net_group`]): peers from one network range share it
    /// (Core's `nKeyedNetGroup`).
    pub net_group: u64,
    /// Evict this one before others (Core's `prefer_evict`: a discouraged peer).
    pub prefer_evict: bool,
}

impl<K> EvictionCandidate<K> {
    /// A connection accepted at `connected` from net group `net_group`, knowing nothing more
    /// yet: no handshake, no ping, no block or transaction, not preferred for eviction.
    pub fn new(id: K, connected: Instant, net_group: u64) -> EvictionCandidate<K> {
        EvictionCandidate {
            id,
            connected,
            handshake_done: false,
            min_ping: None,
            last_block: None,
            last_tx: None,
            net_group,
            prefer_evict: false,
        }
    }
}

/// Core's `SelectNodeToEvict` with the handshake rule first: the connection to close so a
/// newcomer can take its slot, or `None` when every candidate is protected (then refuse the
/// newcomer, as Core does).
///
/// The policy, in order (Core's, except the first step):
/// 1. If any candidate has not finished the handshake, the one that has waited longest is
///    evicted (an honest peer finishes in a round trip; one still silent or trickling after
///    the others came is the least likely to be honest).
/// 2. Protect 4 by net group ([`EvictionCandidate::net_group`], keyed so an attacker cannot
///    choose which groups win), 8 by lowest ping time, 4 that most recently sent new
///    transactions, 4 that most recently sent new blocks (headers, for a headers node), then
///    half of those left by longest uptime. Protection by ping, transactions and blocks is
///    earned: a peer without the measurement is not protected by it (Core protects the
///    last in its sort order even then, so peers that merely handshook and sat could hold
///    every slot of a small node).
/// 3. Of the rest (only those with [`prefer_evict`](EvictionCandidate::prefer_evict) set, if
///    any are), take the net group with the most connections (on a tie, the one with the
///    newest connection) and evict its newest connection.
///
/// Core's extra protections for onion, I2P, CJDNS and localhost peers (a share of the
/// uptime half) are not here: loopback would then be protected, and the tests and the attack
/// suite connect from loopback.
pub fn select_to_evict<K: Copy>(mut candidates: Vec<EvictionCandidate<K>>) -> Option<K> {
    if let Some(unproven) = candidates
        .iter()
        .filter(|candidate| !candidate.handshake_done)
        .min_by_key(|candidate| candidate.connected)
    {
        return Some(unproven.id);
    }
    // Each step sorts so that the protected come last, then drops them (Core's
    // EraseLastKElements).
    protect(&mut candidates, 4, |c| Some((c.net_group, c.connected)));
    // Lowest ping last.
    protect(&mut candidates, 8, |c| c.min_ping.map(std::cmp::Reverse));
    protect(&mut candidates, 4, |c| c.last_tx);
    protect(&mut candidates, 4, |c| c.last_block);
    // Longest uptime last.
    let half = candidates.len() / 2;
    protect(&mut candidates, half, |c| {
        Some(std::cmp::Reverse(c.connected))
    });
    if candidates.iter().any(|c| c.prefer_evict) {
        candidates.retain(|c| c.prefer_evict);
    }
    // The net group with the most connections; on a tie, the one with the newest.
    let mut groups: Vec<(u64, usize, Instant)> = Vec::new();
    for candidate in &candidates {
        match groups
            .iter_mut()
            .find(|(group, ..)| *group == candidate.net_group)
        {
            Some((_, count, newest)) => {
                *count += 1;
                *newest = (*newest).max(candidate.connected);
            }
            None => groups.push((candidate.net_group, 1, candidate.connected)),
        }
    }
    let (group, ..) = groups
        .into_iter()
        .max_by_key(|&(_, count, newest)| (count, newest))?;
    candidates
        .into_iter()
        .filter(|c| c.net_group == group)
        .max_by_key(|c| c.connected)
        .map(|c| c.id)
}

/// Sorts by `key` (stably: ties keep the order of the step before) and drops the last
/// `count`, the protected. Only a candidate with a key can be protected: a ping never
/// measured, a block never sent, protects nobody (Core sorts those first but still protects
/// them when too few others have one; here protection is earned).
fn protect<K, T: Ord>(
    candidates: &mut Vec<EvictionCandidate<K>>,
    count: usize,
    key: impl Fn(&EvictionCandidate<K>) -> Option<T>,
) {
    candidates.sort_by_key(|c| key(c));
    let earned = candidates.iter().filter(|c| key(c).is_some()).count();
    let keep = candidates.len().saturating_sub(count.min(earned));
    candidates.truncate(keep);
}

/// The net group of `ip`, keyed with `key` (Core's `GetGroup` hashed with `nKeyedNetGroup`'s
/// salt): IPv4 by /16, IPv6 by /32 (an IPv4-mapped address as IPv4), loopback and other
/// local addresses all in one group. Give every call of one node the same `key` (e.g. a
/// `RandomState` made at start), so outsiders cannot tell which groups eviction protects.
pub fn net_group(ip: IpAddr, key: &impl BuildHasher) -> u64 {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    };
    let mut hasher = key.build_hasher();
    match ip {
        _ if ip.is_loopback() || ip.is_unspecified() => 0u8.hash(&mut hasher),
        IpAddr::V4(v4) => (4u8, &v4.octets()[..2]).hash(&mut hasher),
        IpAddr::V6(v6) => (6u8, &v6.octets()[..4]).hash(&mut hasher),
    }
    hasher.finish()
}
