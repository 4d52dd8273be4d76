//! The node example (examples/node/: the node's SockMan handler and its embedded default) run
//! as a test over real loopback sockets, one SockMan in one thread, so natively and in
//! wasmtime alike: it must sync from its seed, serve a light client, and disconnect each
//! misbehaving peer for the right reason.

// On WASI 0.3 (feature `wasip3`) the harness's `main` is entered through the async
// `wasi:cli/run@0.3`, where sockets may wait; elsewhere this line is nothing.
bitcoin_sock::wasip3_main!();

// The example's modules, compiled here as they are; the test uses most, not all, of them.
#[allow(dead_code)]
#[path = "../examples/common/p2p/mod.rs"]
mod p2p;

#[allow(dead_code)]
#[path = "../examples/node/demo.rs"]
mod demo;

#[allow(dead_code)]
#[path = "../examples/node/node.rs"]
mod node;

#[path = "../examples/node/eviction.rs"]
mod eviction;

#[path = "../examples/node/fair.rs"]
mod fair;

#[allow(dead_code)]
#[path = "../examples/node/log.rs"]
mod log;

/// What the demo's node calls itself (the example's main.rs defines it there).
const USER_AGENT: &str = "/node-demo-test:0.1.0/";

use node::Outcome;

#[test]
fn node_syncs_serves_and_drops_every_misbehaving_peer_for_its_reason() {
    let outcomes = demo::run().expect("the embedded default ends on the seed's tip");
    let synced: Vec<_> = outcomes
        .iter()
        .filter_map(|outcome| match outcome {
            Outcome::Synced {
                label,
                height,
                rounds,
                ..
            } => Some((label.as_str(), *height, *rounds)),
            Outcome::Gone { .. } => None,
        })
        .collect();
    assert_eq!(synced, [("the seed", 4_500, 3)]);
    let gone: Vec<(&str, &str)> = outcomes
        .iter()
        .filter_map(|outcome| match outcome {
            Outcome::Gone { label, reason } => Some((label.as_str(), reason.as_str())),
            Outcome::Synced { .. } => None,
        })
        .collect();
    let expected: [(&str, &str); 13] = [
        ("inbound peer 1", "the peer closed the connection"),
        (
            "a peer on another network",
            "Header error: Wrong MessageStart f9beb4d9 received",
        ),
        (
            "a peer sending a corrupted message",
            "Header error: Wrong checksum (version, 105 bytes)",
        ),
        (
            "a peer announcing an oversized message",
            "Header error: Size too large (version, 4000001 bytes)",
        ),
        (
            "a peer that never answers",
            "no version handshake within 500 ms",
        ),
        (
            "a peer that never answers getheaders",
            "no headers within 500 ms",
        ),
        (
            "a peer serving a header without proof of work",
            "its hash is above its target: no proof of work",
        ),
        (
            "a peer serving a header that does not build on its parent",
            "a block not in our chain",
        ),
        (
            "inbound peer 2",
            "Header error: Wrong MessageStart f9beb4d9 received",
        ),
        (
            "inbound peer 3",
            "Header error: Wrong checksum (ping, 8 bytes)",
        ),
        (
            "inbound peer 4",
            "Header error: Size too large (version, 4294967295 bytes)",
        ),
        ("inbound peer 5", "no version handshake within 500 ms"),
        (
            "inbound peer 6",
            "evicted for inbound peer 7: every slot taken, and it never finished the version \
             handshake",
        ),
    ];
    assert_eq!(gone.len(), expected.len() + 1, "{gone:#?}");
    for ((label, reason), (want_label, want_reason)) in gone.iter().zip(expected) {
        assert_eq!(*label, want_label);
        assert!(
            reason.contains(want_reason),
            "{label}: {reason:?} does not say {want_reason:?}"
        );
    }
    assert_eq!(
        gone.last(),
        Some(&("inbound peer 7", "the peer closed the connection"))
    );
}
