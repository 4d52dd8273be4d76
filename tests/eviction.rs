//! Which inbound connection a full node drops for a newcomer (`sockman::select_to_evict`,
//! Core's `SelectNodeToEvict` with unproven peers first). Pure logic, natively and in wasmtime.

// On WASI 0.3 (feature `wasip3`) the harness's `main` is entered through the async
// `wasi:cli/run@0.3`, where sockets may wait; elsewhere this line is nothing.
bitcoin_sock::wasip3_main!();

use std::collections::hash_map::RandomState;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use bitcoin_sock::sockman::{net_group, select_to_evict, EvictionCandidate};

fn candidate(id: u32, connected: Instant) -> EvictionCandidate<u32> {
    let mut candidate = EvictionCandidate::new(id, connected, 1);
    candidate.handshake_done = true;
    candidate
}

/// `count` handshaken peers from one net group, connected a second apart (id 0 first).
fn crowd(count: u32, start: Instant) -> Vec<EvictionCandidate<u32>> {
    (0..count)
        .map(|id| candidate(id, start + Duration::from_secs(u64::from(id))))
        .collect()
}

#[test]
fn a_peer_that_never_finished_the_handshake_goes_first_the_longest_waiting() {
    let start = Instant::now();
    let mut peers = crowd(30, start);
    for id in [7, 3, 12] {
        peers[id].handshake_done = false;
    }
    assert_eq!(select_to_evict(peers), Some(3));
}

#[test]
fn every_slot_held_by_silent_peers_still_frees_one() {
    let start = Instant::now();
    let mut peers = crowd(2, start);
    for peer in &mut peers {
        peer.handshake_done = false;
    }
    assert_eq!(select_to_evict(peers), Some(0));
}

#[test]
fn peers_that_proved_enough_are_all_protected() {
    // 4 by net group, 8 by ping, 4 by blocks: nobody is evicted; the newcomer is refused.
    let start = Instant::now();
    let mut peers = crowd(16, start);
    for (i, peer) in peers.iter_mut().enumerate() {
        peer.min_ping = Some(Duration::from_millis(10 + i as u64));
        peer.last_block = Some(start + Duration::from_secs(i as u64));
    }
    assert_eq!(select_to_evict(peers), None);
    assert_eq!(select_to_evict(crowd(4, start)), None);
    assert_eq!(select_to_evict(Vec::<EvictionCandidate<u32>>::new()), None);
}

#[test]
fn peers_that_only_finished_the_handshake_cannot_hold_every_slot() {
    // 20 peers that shook hands and proved nothing else: 4 kept by net group, half the rest
    // by uptime; the newest of the others goes (Core would protect all 20).
    let peers = crowd(20, Instant::now());
    let chosen = select_to_evict(peers).unwrap();
    assert!(chosen < 16, "{chosen} is among the 4 kept by net group");
}

#[test]
fn among_unprotected_peers_the_newest_of_the_biggest_group_goes() {
    let start = Instant::now();
    let mut peers = crowd(60, start);
    // Ten from another group, connected last: the biggest group is still group 1.
    for peer in peers.iter_mut().skip(50) {
        peer.net_group = 2;
    }
    let chosen = select_to_evict(peers.clone()).unwrap();
    assert_eq!(peers[chosen as usize].net_group, 1);
    // The protected by uptime (the oldest half of what was left) are never chosen.
    assert!(chosen >= 10, "{chosen}");
}

#[test]
fn what_a_peer_proved_protects_it() {
    let start = Instant::now();
    let mut peers = crowd(40, start);
    // The peer eviction picks first; fast pings protect it.
    let first = select_to_evict(peers.clone()).unwrap() as usize;
    peers[first].min_ping = Some(Duration::from_millis(5));
    assert_ne!(select_to_evict(peers.clone()).unwrap() as usize, first);
    // So does having sent us new blocks lately.
    peers[first].min_ping = None;
    peers[first].last_block = Some(start + Duration::from_secs(100));
    assert_ne!(select_to_evict(peers.clone()).unwrap() as usize, first);
    // A discouraged peer goes first among the unprotected (not among the 4 kept by net
    // group, nor the oldest half kept by uptime).
    peers[first].last_block = None;
    peers[20].prefer_evict = true;
    assert_eq!(select_to_evict(peers).unwrap(), 20);
}

#[test]
fn net_groups_are_by_16_for_ipv4_and_32_for_ipv6_and_loopback_is_one() {
    let key = RandomState::new();
    let group = |ip: &str| net_group(ip.parse::<IpAddr>().unwrap(), &key);
    assert_eq!(group("1.2.3.4"), group("1.2.200.9"));
    assert_ne!(group("1.2.3.4"), group("1.3.3.4"));
    assert_eq!(group("::ffff:1.2.3.4"), group("1.2.99.99"));
    assert_eq!(group("2001:db8:1::1"), group("2001:db8:ffff::2"));
    assert_ne!(group("2001:db8::1"), group("2001:db9::1"));
    assert_eq!(group("127.0.0.1"), group("::1"));
    // Another key orders the groups differently (with overwhelming odds).
    let other = RandomState::new();
    assert_ne!(
        net_group("1.2.3.4".parse().unwrap(), &key),
        net_group("1.2.3.4".parse().unwrap(), &other)
    );
}
