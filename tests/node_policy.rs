//! The example node's policy against hostile peers (examples/node/), over real loopback sockets
//! and one SockMan in one thread, so natively and in wasmtime alike: nothing kept per closed
//! connection, a newcomer evicting a peer that never finished the handshake when every slot
//! is taken, one message handled per peer per turn.

#![cfg(sockets)]

// On WASI 0.3 (feature `wasip3`) the harness's `main` is entered through the async
// `wasi:cli/run@0.3`, where sockets may wait; elsewhere this line is nothing.
bitcoin_sock::wasip3_main!();

#[allow(dead_code)]
#[path = "../examples/common/p2p/mod.rs"]
mod p2p;

#[allow(dead_code)]
#[path = "../examples/node/node.rs"]
mod node;

#[path = "../examples/node/eviction.rs"]
mod eviction;

#[path = "../examples/node/fair.rs"]
mod fair;

#[path = "../examples/node/log.rs"]
mod log;

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bitcoin::p2p::message::NetworkMessage;
use bitcoin::p2p::ServiceFlags;
use bitcoin_sock::sockman::SockMan;
use bitcoin_sock::{Sock, SockEvent};

use node::{Config, Node, Outcome, OUTCOMES_KEPT};
use p2p::framing::{encode_message, parse_message, version_message, VersionFields};
use p2p::network::{self, Network};
use p2p::protocol::Timeouts;

const TIMEOUT: Duration = Duration::from_secs(30);

fn regtest() -> &'static Network {
    network::by_name("regtest").unwrap()
}

fn node(max_connections: usize) -> Node {
    Node::new(Config {
        network: regtest(),
        timeouts: Timeouts::CORE,
        max_connections,
        user_agent: "/node-policy-test:0.1.0/".to_owned(),
        nonce: 1,
        timestamp: 1_700_000_000,
        show_addresses: false,
        verbose: false,
        name: "node".to_owned(),
    })
}

/// The manager with a listener; its address.
fn listening() -> (SockMan, SocketAddr) {
    let man = SockMan::new().unwrap();
    let addr = man.bind_and_listen("127.0.0.1:0".parse().unwrap()).unwrap();
    (man, addr)
}

/// Runs the loop until `done` holds; fails after [`TIMEOUT`].
fn drive(man: &SockMan, node: &mut Node, done: impl Fn(&Node) -> bool) {
    let deadline = Instant::now() + TIMEOUT;
    while !done(node) {
        assert!(Instant::now() < deadline, "not done within {TIMEOUT:?}");
        man.run_once(node, Duration::from_millis(20)).unwrap();
    }
}

fn send_all(sock: &Sock, mut bytes: &[u8]) {
    let deadline = Instant::now() + TIMEOUT;
    while !bytes.is_empty() {
        assert!(Instant::now() < deadline, "send timed out");
        match sock.send(bytes) {
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                sock.wait(TIMEOUT, SockEvent::SEND).unwrap();
            }
            Err(e) => panic!("send: {e}"),
        }
    }
}

/// Our `version` and `verack`: a peer's half of the handshake.
fn handshake_bytes() -> Vec<u8> {
    let version = version_message(VersionFields {
        services: ServiceFlags::NONE,
        timestamp: 1_700_000_000,
        receiver: None,
        nonce: 99,
        user_agent: "/test-peer:0.1/".to_owned(),
        start_height: 0,
        relay: false,
    });
    let mut bytes = encode_message(regtest().magic(), NetworkMessage::Version(version));
    bytes.extend(encode_message(regtest().magic(), NetworkMessage::Verack));
    bytes
}

/// Reads what has arrived on `sock` into `buffer` without waiting.
fn read_available(sock: &Sock, buffer: &mut Vec<u8>) {
    let mut chunk = [0; 65536];
    loop {
        match sock.recv(&mut chunk) {
            Ok(0) => return,
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
            Err(e) => panic!("recv: {e}"),
        }
    }
}

/// The `pong`s in `buffer` (whole messages only).
fn pongs(buffer: &[u8]) -> usize {
    let mut rest = buffer;
    let mut count = 0;
    while let Ok(Some((message, used))) = parse_message(rest, regtest().magic()) {
        count += usize::from(matches!(message, NetworkMessage::Pong(_)));
        rest = &rest[used..];
    }
    count
}

#[test]
fn a_node_keeps_no_outcome_per_closed_connection_beyond_a_bound() {
    // Every connection is refused (no slot, no peer to evict): one outcome each.
    let (man, addr) = listening();
    let mut node = node(0);
    let connections = 2 * OUTCOMES_KEPT + 100;
    for seen in 1..=connections {
        let sock = Sock::connect(addr, TIMEOUT).unwrap();
        drive(&man, &mut node, |node| node.outcomes_seen == seen as u64);
        drop(sock);
    }
    assert!(
        node.outcomes.len() <= 2 * OUTCOMES_KEPT,
        "{} outcomes kept",
        node.outcomes.len()
    );
    let last = node.outcomes.last().unwrap();
    assert!(
        matches!(last, Outcome::Gone { label, .. } if *label == format!("inbound peer {connections}")),
        "the latest is kept: {last:?}"
    );
}

#[test]
fn a_newcomer_evicts_the_peer_that_waited_longest_without_a_handshake() {
    let (man, addr) = listening();
    let mut node = node(2);
    let silent_first = Sock::connect(addr, TIMEOUT).unwrap();
    drive(&man, &mut node, |node| node.connection_count() == 1);
    let silent_second = Sock::connect(addr, TIMEOUT).unwrap();
    drive(&man, &mut node, |node| node.connection_count() == 2);

    // Every slot is taken; an honest newcomer still gets in and gets its handshake answered.
    let honest = Sock::connect(addr, TIMEOUT).unwrap();
    send_all(&honest, &handshake_bytes());
    drive(&man, &mut node, |node| node.outcomes_seen == 1);
    assert_eq!(
        node.outcomes,
        [Outcome::Gone {
            label: "inbound peer 1".to_owned(),
            reason: "evicted for inbound peer 3: every slot taken, and it never finished the \
                     version handshake"
                .to_owned()
        }]
    );
    let mut answer = Vec::new();
    let deadline = Instant::now() + TIMEOUT;
    while parse_message(&answer, regtest().magic())
        .ok()
        .flatten()
        .is_none()
    {
        assert!(Instant::now() < deadline, "no answer to the newcomer");
        man.run_once(&mut node, Duration::from_millis(20)).unwrap();
        read_available(&honest, &mut answer);
    }
    assert_eq!(node.connection_count(), 2);
    drop((silent_first, silent_second));
}

#[test]
fn one_message_of_a_burst_is_handled_per_turn() {
    let (man, addr) = listening();
    let mut node = node(10);
    let spammer = Sock::connect(addr, TIMEOUT).unwrap();
    let pings = 200;
    let mut burst = handshake_bytes();
    for nonce in 0..pings {
        burst.extend(encode_message(
            regtest().magic(),
            NetworkMessage::Ping(nonce),
        ));
    }
    send_all(&spammer, &burst);

    let mut received = Vec::new();
    let mut turns = 0;
    let deadline = Instant::now() + TIMEOUT;
    while pongs(&received) < pings as usize {
        assert!(Instant::now() < deadline, "{} pongs", pongs(&received));
        man.run_once(&mut node, Duration::from_millis(20)).unwrap();
        turns += 1;
        read_available(&spammer, &mut received);
        // A turn handles one message as it is read and one of the backlog after the
        // connections' turns: never the whole burst.
        assert!(
            pongs(&received) <= 2 * turns,
            "{} pongs after {turns} turns",
            pongs(&received)
        );
    }
}

#[test]
fn a_peers_load_halves_every_second_so_the_lightest_are_served_first() {
    let start = Instant::now();
    let mut spammer = fair::Load::new(start);
    let mut honest = fair::Load::new(start);
    spammer.add(1_000_000, start);
    honest.add(100, start);
    assert_eq!(spammer.at(start + Duration::from_secs(1)), 500_000.0);
    assert_eq!(spammer.at(start + Duration::from_secs(2)), 250_000.0);
    // Lately asking a lot weighs more than having asked a little just now.
    honest.add(100, start + Duration::from_secs(2));
    assert!(honest.at(start + Duration::from_secs(2)) < spammer.at(start + Duration::from_secs(2)));
}

#[test]
fn lines_past_the_log_rate_are_counted_not_printed() {
    let start = Instant::now();
    let mut limit = log::LogLimit::new(20);
    // A burst: the first 20 lines go out, the rest are held back.
    let admitted = (0..100).filter(|_| limit.admit(start).is_some()).count();
    assert_eq!(admitted, 20);
    // A second later, 20 more may go; the first says how many were held back.
    assert_eq!(limit.admit(start + Duration::from_secs(1)), Some(80));
    assert_eq!(limit.admit(start + Duration::from_secs(1)), Some(0));
    // No limit: everything goes out.
    let mut unlimited = log::LogLimit::new(0);
    assert!((0..1000).all(|_| unlimited.admit(start) == Some(0)));
}
