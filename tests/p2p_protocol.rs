//! The examples' per-connection protocol state (examples/common/p2p/protocol.rs, what the node
//! runs per peer on SockMan and the light client's `--clients` mode per client), driven in
//! memory: bytes from one side's outbox into the other's `receive`, the clock passed in. No
//! sockets, so these run natively and in wasmtime alike.

// On WASI 0.3 (feature `wasip3`) the harness's `main` is entered through the async
// `wasi:cli/run@0.3`, where sockets may wait; elsewhere this line is nothing.
bitcoin_sock::wasip3_main!();

// The shared module is compiled here as it is; the tests use most, not all, of it.
#[allow(dead_code)]
#[path = "../examples/common/p2p/mod.rs"]
mod p2p;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bitcoin::block::Version;
use bitcoin::hashes::Hash;
use bitcoin::p2p::message::NetworkMessage;
use bitcoin::p2p::message_blockdata::Inventory;
use bitcoin::p2p::{Magic, ServiceFlags};
use bitcoin::{CompactTarget, TxMerkleNode};
use p2p::chain::{check_proof_of_work, grind, HeaderChain, HeaderError, PowError};
use p2p::framing::{
    encode_message, parse_message, version_message, BlockHeader, FrameError, MessageHeader,
    VersionFields, HEADER_LEN, MAX_HEADERS, MAX_PAYLOAD,
};
use p2p::keepalive::PingTimeout;
use p2p::network::{self, Network};
use p2p::protocol::{
    Identity, Peer, PeerError, PeerEvent, Timeouts, MAX_BLOCKS_TO_ANNOUNCE, MAX_RECEIVE_BUFFER,
    MAX_UNCONNECTING,
};

const TIMEOUTS: Timeouts = Timeouts {
    handshake: Duration::from_secs(10),
    headers: Duration::from_secs(20),
    ping_interval: Duration::from_secs(60),
    pong: Duration::from_secs(30),
    message: Duration::from_secs(15),
};

fn regtest() -> &'static Network {
    network::by_name("regtest").unwrap()
}

fn identity(nonce: u64) -> Identity {
    Identity {
        user_agent: format!("/test:{nonce}/"),
        services: ServiceFlags::NETWORK,
        nonce,
        timestamp: 1_700_000_000,
    }
}

fn addr() -> SocketAddr {
    "127.0.0.1:18444".parse().unwrap()
}

fn mined_chain(count: u32) -> HeaderChain {
    let mut chain = HeaderChain::new(regtest());
    for height in 1..=count {
        let header = BlockHeader {
            version: Version::from_consensus(0x2000_0000),
            prev_blockhash: chain.tip(),
            merkle_root: TxMerkleNode::from_byte_array([height as u8; 32]),
            time: 1_700_000_000 + height,
            bits: CompactTarget::from_consensus(0x207f_ffff),
            nonce: 0,
        };
        chain
            .connect(&[grind(header, regtest().pow_limit()).unwrap()])
            .unwrap();
    }
    chain
}

/// A client syncing from a server, and what each saw.
struct Pair {
    client: Peer,
    client_chain: HeaderChain,
    client_events: Vec<PeerEvent>,
    server: Peer,
    server_chain: HeaderChain,
    server_events: Vec<PeerEvent>,
    now: Instant,
}

impl Pair {
    fn new(server_chain: HeaderChain) -> Pair {
        let now = Instant::now();
        let client_chain = HeaderChain::new(regtest());
        Pair {
            client: Peer::outbound(
                regtest(),
                identity(1),
                TIMEOUTS,
                addr(),
                &client_chain,
                true,
                now,
            ),
            client_chain,
            client_events: Vec::new(),
            server: Peer::inbound(regtest(), identity(2), TIMEOUTS, now),
            server_chain,
            server_events: Vec::new(),
            now,
        }
    }

    /// Bytes for the server, received now.
    fn server_receives(&mut self, bytes: &[u8]) -> Result<(), PeerError> {
        self.server.receive(
            bytes,
            &mut self.server_chain,
            self.now,
            &mut self.server_events,
        )
    }

    /// Bytes for the client, received now.
    fn client_receives(&mut self, bytes: &[u8]) -> Result<(), PeerError> {
        self.client.receive(
            bytes,
            &mut self.client_chain,
            self.now,
            &mut self.client_events,
        )
    }

    /// Passes bytes both ways until neither side has any to send.
    fn exchange(&mut self) -> Result<(), PeerError> {
        loop {
            let to_server = self.client.take_outbox();
            let to_client = self.server.take_outbox();
            if to_server.is_empty() && to_client.is_empty() {
                return Ok(());
            }
            self.server_receives(&to_server)?;
            self.client_receives(&to_client)?;
        }
    }
}

/// What the client gets before any message of its own: the server's `version` and `verack`.
fn handshake(pair: &mut Pair) {
    let to_server = pair.client.take_outbox();
    pair.server_receives(&to_server).unwrap();
    // The server's answer: version and verack; the client's verack back.
    let to_client = pair.server.take_outbox();
    pair.client_receives(&to_client).unwrap();
}

#[test]
fn outbound_peer_syncs_4500_headers_from_an_inbound_peer_in_three_rounds() {
    let server_chain = mined_chain(4_500);
    let tip = server_chain.tip();
    let mut pair = Pair::new(server_chain);
    pair.exchange().unwrap();
    assert!(pair.client.handshake_done() && pair.server.handshake_done());
    assert!(pair.client.synced());
    assert_eq!(
        (pair.client_chain.height(), pair.client_chain.tip()),
        (4_500, tip)
    );
    assert_eq!(
        pair.client_events.first(),
        Some(&PeerEvent::HandshakeDone {
            user_agent: "/test:2/".to_owned(),
            start_height: 4_500
        })
    );
    assert_eq!(
        pair.client_events.last(),
        Some(&PeerEvent::Synced {
            height: 4_500,
            tip,
            rounds: 3
        })
    );
    let served: Vec<(usize, u32)> = pair
        .server_events
        .iter()
        .filter_map(|event| match event {
            PeerEvent::ServedHeaders {
                count,
                after_height,
            } => Some((*count, *after_height)),
            _ => None,
        })
        .collect();
    assert_eq!(served, [(2_000, 0), (2_000, 2_000), (500, 4_000)]);
    // Whole messages were taken off the buffers.
    assert_eq!((pair.client.buffered(), pair.server.buffered()), (0, 0));
}

#[test]
fn messages_split_at_every_byte_are_handled_the_same() {
    let mut pair = Pair::new(mined_chain(3));
    let to_server = pair.client.take_outbox();
    for byte in &to_server {
        pair.server_receives(std::slice::from_ref(byte)).unwrap();
    }
    let to_client = pair.server.take_outbox();
    for byte in &to_client {
        pair.client_receives(std::slice::from_ref(byte)).unwrap();
    }
    pair.exchange().unwrap();
    assert!(pair.client.synced());
    assert_eq!(pair.client_chain.height(), 3);
}

#[test]
fn wrong_magic_is_refused_from_the_first_header() {
    let mut pair = Pair::new(mined_chain(1));
    let mainnet = network::NETWORKS[0].magic();
    let bytes = encode_message(mainnet, NetworkMessage::Verack);
    let err = pair.client_receives(&bytes).unwrap_err();
    assert_eq!(
        err,
        PeerError::Frame(FrameError::BadMagic {
            expected: Magic::REGTEST,
            found: mainnet
        })
    );
    assert_eq!(
        err.to_string(),
        "Header error: Wrong MessageStart f9beb4d9 received"
    );
}

#[test]
fn bad_checksum_is_refused() {
    let mut pair = Pair::new(mined_chain(1));
    let mut bytes = encode_message(regtest().magic(), NetworkMessage::Ping(7));
    bytes[HEADER_LEN] ^= 1;
    let err = pair.server_receives(&bytes).unwrap_err();
    assert!(matches!(
        err,
        PeerError::Frame(FrameError::BadChecksum { .. })
    ));
    assert!(err
        .to_string()
        .starts_with("Header error: Wrong checksum (ping, 8 bytes)"));
}

#[test]
fn oversized_message_is_refused_before_its_payload_is_buffered() {
    let mut pair = Pair::new(mined_chain(1));
    let empty = encode_message(regtest().magic(), NetworkMessage::Headers(Vec::new()));
    let mut header = MessageHeader::of(&empty).unwrap();
    header.length = MAX_PAYLOAD + 1;
    let mut bytes = header.encode().to_vec();
    // Payload bytes after it: never buffered, the header alone is refused.
    bytes.extend_from_slice(&[0; 1000]);
    let err = pair.client_receives(&bytes).unwrap_err();
    assert_eq!(
        err,
        PeerError::Frame(FrameError::Oversized {
            command: "headers".to_owned(),
            length: MAX_PAYLOAD + 1
        })
    );
    assert!(pair.client.buffered() <= HEADER_LEN);
}

#[test]
fn receive_buffer_holds_at_most_one_message() {
    let mut pair = Pair::new(mined_chain(1));
    handshake(&mut pair);
    // An ignored message of about 1 MB (an inv of 29,000 blocks), then a ping, arriving in
    // 64 KiB reads.
    let magic = regtest().magic();
    let inv = vec![Inventory::Block(regtest().genesis()); 29_000];
    let mut stream = encode_message(magic, NetworkMessage::Inv(inv));
    let inv_len = stream.len();
    stream.extend_from_slice(&encode_message(magic, NetworkMessage::Ping(9)));
    for chunk in stream.chunks(64 * 1024) {
        pair.client_receives(chunk).unwrap();
        assert!(pair.client.buffered() <= inv_len);
        assert!(pair.client.buffered() <= MAX_RECEIVE_BUFFER);
    }
    assert_eq!(pair.client.buffered(), 0);
    // The ping was answered with its nonce, after the getheaders of the sync.
    let outbox = pair.client.take_outbox();
    let pong = encode_message(magic, NetworkMessage::Pong(9));
    assert!(outbox.ends_with(&pong));
}

#[test]
fn invalid_header_is_refused_with_the_reason() {
    let mut pair = Pair::new(HeaderChain::new(regtest()));
    handshake(&mut pair);
    let mut headers: Vec<BlockHeader> = (1..=3)
        .filter_map(|height| mined_chain(3).header(height).copied())
        .collect();
    let pow_limit = regtest().pow_limit();
    headers[2].nonce = headers[2].nonce.wrapping_add(1);
    while check_proof_of_work(&headers[2], pow_limit).is_ok() {
        headers[2].nonce = headers[2].nonce.wrapping_add(1);
    }
    let bytes = encode_message(regtest().magic(), NetworkMessage::Headers(headers.clone()));
    let err = pair.client_receives(&bytes).unwrap_err();
    assert_eq!(
        err,
        PeerError::InvalidHeader(HeaderError::ProofOfWork {
            height: Some(3),
            hash: headers[2].block_hash(),
            bits: 0x207fffff,
            problem: PowError::HashAboveTarget
        })
    );
    // The two good headers before it stay.
    assert_eq!(pair.client_chain.height(), 2);
}

#[test]
fn full_answers_that_get_nowhere_are_refused() {
    let chain = mined_chain(MAX_HEADERS as u32);
    let headers: Vec<BlockHeader> = (1..=MAX_HEADERS as u32)
        .filter_map(|height| chain.header(height).copied())
        .collect();
    let mut pair = Pair::new(HeaderChain::new(regtest()));
    handshake(&mut pair);
    let bytes = encode_message(regtest().magic(), NetworkMessage::Headers(headers.clone()));
    pair.client_receives(&bytes).unwrap();
    assert_eq!(pair.client_chain.height(), 2_000);
    // The same 2,000 again, as if our locator were ignored.
    let err = pair.client_receives(&bytes).unwrap_err();
    assert!(matches!(err, PeerError::Protocol(_)));
    assert!(err.to_string().contains("no higher than the one before"));
}

#[test]
fn a_version_with_our_own_nonce_is_ourselves() {
    let chain = HeaderChain::new(regtest());
    let mut peer = Peer::inbound(regtest(), identity(5), TIMEOUTS, Instant::now());
    let version = version_message(VersionFields {
        services: ServiceFlags::NONE,
        timestamp: 0,
        receiver: None,
        nonce: 5,
        user_agent: String::new(),
        start_height: 0,
        relay: false,
    });
    let bytes = encode_message(regtest().magic(), NetworkMessage::Version(version));
    let mut chain = chain;
    let err = peer
        .receive(&bytes, &mut chain, Instant::now(), &mut Vec::new())
        .unwrap_err();
    assert_eq!(
        err,
        PeerError::Protocol("connected to ourselves".to_owned())
    );
}

#[test]
fn silence_past_each_deadline_is_refused() {
    // No handshake.
    let start = Instant::now();
    let mut peer = Peer::inbound(regtest(), identity(1), TIMEOUTS, start);
    assert_eq!(peer.next_deadline(), Some(start + TIMEOUTS.handshake));
    assert_eq!(
        peer.check_deadline(start + TIMEOUTS.handshake - Duration::from_millis(1)),
        Ok(())
    );
    let err = peer.check_deadline(start + TIMEOUTS.handshake).unwrap_err();
    assert_eq!(
        err,
        PeerError::Silent {
            waiting_for: "the version handshake",
            timeout: TIMEOUTS.handshake
        }
    );
    assert_eq!(err.to_string(), "no version handshake within 10 s");

    // No headers after getheaders.
    let mut pair = Pair::new(mined_chain(1));
    handshake(&mut pair);
    assert_eq!(
        pair.client.next_deadline(),
        Some(pair.now + TIMEOUTS.headers)
    );
    assert_eq!(
        pair.client.check_deadline(pair.now + TIMEOUTS.headers),
        Err(PeerError::Silent {
            waiting_for: "headers",
            timeout: TIMEOUTS.headers
        })
    );
}

#[test]
fn a_message_must_complete_within_its_deadline_from_its_first_byte() {
    let mut pair = Pair::new(mined_chain(1));
    pair.exchange().unwrap();
    let message = encode_message(regtest().magic(), NetworkMessage::Ping(9));
    let first = pair.now + Duration::from_secs(1);
    let mut chain = mined_chain(1);
    let mut events = Vec::new();
    // A byte at a time, a second apart: each byte resets nothing.
    for (i, byte) in message[..message.len() - 1].iter().enumerate() {
        let at = first + Duration::from_secs(i as u64 % 5);
        pair.server
            .receive(&[*byte], &mut chain, at, &mut events)
            .unwrap();
    }
    assert_eq!(
        pair.server.next_deadline(),
        Some(first + TIMEOUTS.message),
        "the deadline runs from the first byte"
    );
    assert_eq!(
        pair.server
            .check_deadline(first + TIMEOUTS.message - Duration::from_millis(1)),
        Ok(())
    );
    let err = pair
        .server
        .check_deadline(first + TIMEOUTS.message)
        .unwrap_err();
    assert_eq!(
        err,
        PeerError::Incomplete {
            timeout: TIMEOUTS.message,
            received: message.len() - 1,
            length: Some(message.len()),
        }
    );
    assert_eq!(
        err.to_string(),
        "a message not completed within 15 s of its first byte (31 of 32 bytes)"
    );
}

#[test]
fn a_completed_message_ends_its_deadline() {
    let mut pair = Pair::new(mined_chain(1));
    pair.exchange().unwrap();
    let message = encode_message(regtest().magic(), NetworkMessage::Ping(9));
    let mut chain = mined_chain(1);
    let start = pair.now;
    pair.server
        .receive(&message[..10], &mut chain, start, &mut Vec::new())
        .unwrap();
    let err = pair
        .server
        .check_deadline(start + TIMEOUTS.message)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "a message not completed within 15 s of its first byte (10 of its 24-byte header)"
    );
    pair.server
        .receive(&message[10..], &mut chain, start, &mut Vec::new())
        .unwrap();
    assert_eq!(pair.server.check_deadline(start + TIMEOUTS.message), Ok(()));
}

#[test]
fn an_announced_payload_is_not_reserved_and_a_big_buffer_is_given_back() {
    let mut pair = Pair::new(mined_chain(1));
    pair.exchange().unwrap();
    let mut chain = mined_chain(1);
    let header = MessageHeader {
        magic: regtest().magic(),
        command: *b"headers\0\0\0\0\0",
        length: MAX_PAYLOAD,
        checksum: [0; 4],
    }
    .encode();
    pair.server
        .receive(&header, &mut chain, pair.now, &mut Vec::new())
        .unwrap();
    pair.server
        .receive(&[0; 10], &mut chain, pair.now, &mut Vec::new())
        .unwrap();
    assert_eq!(pair.server.buffered(), HEADER_LEN + 10);
    assert!(
        pair.server.buffered_capacity() < 2 * p2p::partial::PIECE,
        "{} bytes reserved for a payload announced, not sent",
        pair.server.buffered_capacity()
    );

    // A big message handled: its buffer does not stay.
    let big = encode_message(
        regtest().magic(),
        NetworkMessage::Unknown {
            command: bitcoin::p2p::message::CommandString::try_from_static("big").unwrap(),
            payload: vec![0; 1_000_000],
        },
    );
    let mut fresh = Pair::new(mined_chain(1));
    fresh.exchange().unwrap();
    fresh
        .server
        .receive(&big, &mut chain, fresh.now, &mut Vec::new())
        .unwrap();
    assert_eq!(fresh.server.buffered(), 0);
    assert_eq!(fresh.server.buffered_capacity(), 0);
}

#[test]
fn every_peer_is_pinged_each_interval_and_dropped_when_the_pong_is_late() {
    let mut pair = Pair::new(mined_chain(1));
    pair.exchange().unwrap();
    assert!(pair.client.synced());
    // Core's MaybeSendPing: one interval after the handshake, whatever the peer sent since.
    let due = pair.now + TIMEOUTS.ping_interval;
    assert_eq!(pair.client.next_deadline(), Some(due));
    pair.client
        .check_deadline(due - Duration::from_millis(1))
        .unwrap();
    assert!(pair.client.take_outbox().is_empty());
    pair.client.check_deadline(due).unwrap();
    assert!(pair.client.ping_outstanding());
    let ping = pair.client.take_outbox();
    assert_eq!(&ping[4..8], b"ping");
    // The pong deadline runs (Core's TIMEOUT_INTERVAL); past it, Core's text.
    assert_eq!(pair.client.next_deadline(), Some(due + TIMEOUTS.pong));
    assert_eq!(
        pair.client
            .check_deadline(due + TIMEOUTS.pong - Duration::from_millis(1)),
        Ok(())
    );
    let err = pair.client.check_deadline(due + TIMEOUTS.pong).unwrap_err();
    assert_eq!(
        err,
        PeerError::PingTimeout(PingTimeout {
            waited: TIMEOUTS.pong
        })
    );
    assert_eq!(err.to_string(), "ping timeout: 30.000000s");
    // Answered 250 ms later, the next ping is one interval after the last one went out, and
    // the round trip is the best one (Core's m_min_ping_time, which eviction weighs).
    assert_eq!(pair.client.min_ping(), None);
    pair.now = due + Duration::from_millis(250);
    pair.server_receives(&ping).unwrap();
    pair.exchange().unwrap();
    assert!(!pair.client.ping_outstanding());
    assert_eq!(pair.client.min_ping(), Some(Duration::from_millis(250)));
    assert_eq!(pair.client.check_deadline(due + TIMEOUTS.pong), Ok(()));
    assert_eq!(
        pair.client.next_deadline(),
        Some(due + TIMEOUTS.ping_interval)
    );
    // The server (inbound) pings too, on its own clock.
    assert!(pair.server.next_deadline().is_some());
}

#[test]
fn a_pong_with_another_nonce_does_not_end_the_wait() {
    let mut pair = Pair::new(mined_chain(1));
    pair.exchange().unwrap();
    let due = pair.now + TIMEOUTS.ping_interval;
    pair.client.check_deadline(due).unwrap();
    pair.client.take_outbox();
    let wrong = encode_message(regtest().magic(), NetworkMessage::Pong(12_345));
    pair.client_receives(&wrong).unwrap();
    assert!(pair.client.ping_outstanding());
    assert_eq!(
        pair.client.min_ping(),
        None,
        "no round trip from a stranger's nonce"
    );
    assert!(matches!(
        pair.client.check_deadline(due + TIMEOUTS.pong),
        Err(PeerError::PingTimeout(_))
    ));
}

#[test]
fn a_chatty_peer_that_does_not_answer_pings_is_still_dropped() {
    let mut pair = Pair::new(mined_chain(1));
    pair.exchange().unwrap();
    let due = pair.now + TIMEOUTS.ping_interval;
    pair.client.check_deadline(due).unwrap();
    pair.client.take_outbox();
    // Pings of its own right up to the deadline: traffic, but no pong.
    let chatter = encode_message(regtest().magic(), NetworkMessage::Ping(1));
    pair.now = due + TIMEOUTS.pong - Duration::from_millis(1);
    pair.client_receives(&chatter).unwrap();
    assert!(matches!(
        pair.client.check_deadline(due + TIMEOUTS.pong),
        Err(PeerError::PingTimeout(_))
    ));
}

#[test]
fn sync_asks_for_header_announcements_first() {
    let mut pair = Pair::new(mined_chain(1));
    handshake(&mut pair);
    let sent = messages(&pair.client.take_outbox());
    // verack, then sendheaders (BIP 130), then the getheaders.
    let commands: Vec<&str> = sent.iter().map(|message| message.cmd()).collect();
    assert_eq!(commands, ["verack", "sendheaders", "getheaders"]);
}

/// The messages in `bytes`, in order.
fn messages(bytes: &[u8]) -> Vec<NetworkMessage> {
    let mut rest = bytes;
    let mut found = Vec::new();
    while let Some((message, used)) = parse_message(rest, regtest().magic()).unwrap() {
        found.push(message);
        rest = &rest[used..];
    }
    assert!(rest.is_empty());
    found
}

/// The server's chain grows by `count` blocks; the headers that grew it.
fn mine_more(pair: &mut Pair, count: u32) -> Vec<BlockHeader> {
    let start = pair.server_chain.height() + 1;
    for height in start..start + count {
        let header = BlockHeader {
            version: Version::from_consensus(0x2000_0000),
            prev_blockhash: pair.server_chain.tip(),
            merkle_root: TxMerkleNode::from_byte_array([height as u8; 32]),
            time: 1_800_000_000 + height,
            bits: CompactTarget::from_consensus(0x207f_ffff),
            nonce: 0,
        };
        pair.server_chain
            .connect(&[grind(header, regtest().pow_limit()).unwrap()])
            .unwrap();
    }
    (start..start + count)
        .filter_map(|height| pair.server_chain.header(height).copied())
        .collect()
}

#[test]
fn a_block_announced_by_inv_is_fetched_as_headers() {
    let mut pair = Pair::new(mined_chain(5));
    pair.exchange().unwrap();
    assert_eq!(pair.client_chain.height(), 5);
    let new = mine_more(&mut pair, 2);
    let inv = NetworkMessage::Inv(vec![Inventory::Block(new[1].block_hash())]);
    pair.client_receives(&encode_message(regtest().magic(), inv))
        .unwrap();
    // A getheaders from our tip went out, with its deadline.
    let outbox = pair.client.take_outbox();
    assert_eq!(&outbox[4..14], b"getheaders");
    assert_eq!(
        pair.client.next_deadline(),
        Some(pair.now + TIMEOUTS.headers)
    );
    pair.server_receives(&outbox).unwrap();
    pair.exchange().unwrap();
    assert_eq!(
        (pair.client_chain.height(), pair.client_chain.tip()),
        (7, pair.server_chain.tip())
    );
    // Announced again, a block we have asks for nothing.
    let inv = NetworkMessage::Inv(vec![Inventory::Block(new[1].block_hash())]);
    pair.client_receives(&encode_message(regtest().magic(), inv))
        .unwrap();
    assert!(pair.client.take_outbox().is_empty());
}

#[test]
fn a_headers_announcement_on_our_tip_is_added_at_once() {
    let mut pair = Pair::new(mined_chain(5));
    pair.exchange().unwrap();
    let new = mine_more(&mut pair, 1);
    let announcement = NetworkMessage::Headers(new.clone());
    pair.client_receives(&encode_message(regtest().magic(), announcement))
        .unwrap();
    assert_eq!(pair.client_chain.tip(), pair.server_chain.tip());
    // Nothing asked: it connected.
    assert!(pair.client.take_outbox().is_empty());
    assert_eq!(
        pair.client_events.last(),
        Some(&PeerEvent::HeadersAdded {
            received: 1,
            added: 1,
            height: 6
        })
    );
}

#[test]
fn an_announcement_that_does_not_connect_asks_from_our_tip() {
    let mut pair = Pair::new(mined_chain(5));
    pair.exchange().unwrap();
    let new = mine_more(&mut pair, 3);
    // Only the last of three new headers: its parent is unknown to the client.
    let announcement = NetworkMessage::Headers(vec![new[2]]);
    pair.client_receives(&encode_message(regtest().magic(), announcement))
        .unwrap();
    assert_eq!(pair.client_chain.height(), 5);
    let outbox = pair.client.take_outbox();
    assert_eq!(&outbox[4..14], b"getheaders");
    pair.server_receives(&outbox).unwrap();
    pair.exchange().unwrap();
    assert_eq!(
        (pair.client_chain.height(), pair.client_chain.tip()),
        (8, pair.server_chain.tip())
    );
}

#[test]
fn a_block_announced_while_a_getheaders_is_out_is_asked_for_after_its_answer() {
    let mut pair = Pair::new(mined_chain(5));
    handshake(&mut pair);
    // The client's getheaders is out; the server answers it before the new block exists.
    let ask = pair.client.take_outbox();
    pair.server_receives(&ask).unwrap();
    let stale_answer = pair.server.take_outbox();
    let new = mine_more(&mut pair, 1);
    let inv = NetworkMessage::Inv(vec![Inventory::Block(new[0].block_hash())]);
    pair.client_receives(&encode_message(regtest().magic(), inv))
        .unwrap();
    // Nothing more asked while the getheaders is out.
    assert!(pair.client.take_outbox().is_empty());
    pair.client_receives(&stale_answer).unwrap();
    assert_eq!(pair.client_chain.height(), 5);
    // The short answer did not end it: asked once more.
    let again = pair.client.take_outbox();
    assert_eq!(&again[4..14], b"getheaders");
    pair.server_receives(&again).unwrap();
    pair.exchange().unwrap();
    assert_eq!(pair.client_chain.tip(), pair.server_chain.tip());
    // One Synced event, for the first sync only.
    let synced = pair
        .client_events
        .iter()
        .filter(|event| matches!(event, PeerEvent::Synced { .. }))
        .count();
    assert_eq!(synced, 1);
}

#[test]
fn a_new_connection_resumes_the_sync_from_the_chain_it_has() {
    // A node that synced 2,000 headers and lost its peer: the next connection's first
    // getheaders names the block at height 2,000 first.
    let server_chain = mined_chain(2_100);
    let mut client_chain = HeaderChain::new(regtest());
    let first: Vec<BlockHeader> = (1..=2_000)
        .filter_map(|height| server_chain.header(height).copied())
        .collect();
    client_chain.connect(&first).unwrap();
    let mut pair = Pair::new(server_chain);
    pair.client = Peer::outbound(
        regtest(),
        identity(1),
        TIMEOUTS,
        addr(),
        &client_chain,
        true,
        pair.now,
    );
    pair.client_chain = client_chain;
    handshake(&mut pair);
    let outbox = pair.client.take_outbox();
    let Some(NetworkMessage::GetHeaders(request)) = messages(&outbox).pop() else {
        panic!("no getheaders last");
    };
    assert_eq!(
        request.locator_hashes.first(),
        pair.client_chain.hash_at(2_000).as_ref()
    );
    pair.server_receives(&outbox).unwrap();
    pair.exchange().unwrap();
    assert_eq!(pair.client_chain.height(), 2_100);
    // One round: resumed, not started over.
    assert_eq!(
        pair.client_events.last(),
        Some(&PeerEvent::Synced {
            height: 2_100,
            tip: pair.server_chain.tip(),
            rounds: 1
        })
    );
}

#[test]
fn a_peer_at_our_tip_gets_new_blocks_announced_as_headers_when_it_asked() {
    let mut pair = Pair::new(mined_chain(5));
    pair.exchange().unwrap();
    // The client sent sendheaders and was served up to height 5.
    let old = pair.server_chain.height();
    let new = mine_more(&mut pair, 2);
    let mut events = Vec::new();
    assert!(pair.server.announce(&pair.server_chain, old, &mut events));
    assert_eq!(events, [PeerEvent::Announced { height: 7 }]);
    let sent = messages(&pair.server.take_outbox());
    assert!(matches!(&sent[..], [NetworkMessage::Headers(headers)] if *headers == new));
    pair.client_receives(&encode_message(regtest().magic(), sent[0].clone()))
        .unwrap();
    assert_eq!(pair.client_chain.tip(), pair.server_chain.tip());
    // Announced once: the peer is at the new tip now, not the old one.
    assert!(!pair.server.announce(&pair.server_chain, old, &mut events));
}

#[test]
fn many_new_blocks_or_a_peer_without_sendheaders_get_an_inv_of_the_tip() {
    let mut pair = Pair::new(mined_chain(5));
    pair.exchange().unwrap();
    let old = pair.server_chain.height();
    mine_more(&mut pair, MAX_BLOCKS_TO_ANNOUNCE + 1);
    assert!(pair
        .server
        .announce(&pair.server_chain, old, &mut Vec::new()));
    let sent = messages(&pair.server.take_outbox());
    let tip = pair.server_chain.tip();
    assert!(matches!(&sent[..], [NetworkMessage::Inv(inv)] if *inv == [Inventory::Block(tip)]));
    // The client asks, and ends at the tip.
    pair.client_receives(&encode_message(regtest().magic(), sent[0].clone()))
        .unwrap();
    pair.exchange().unwrap();
    assert_eq!(pair.client_chain.tip(), tip);

    // A peer that never sent sendheaders: an inv even for one block.
    let mut server = Peer::inbound(regtest(), identity(2), TIMEOUTS, pair.now);
    let mut chain = mined_chain(3);
    let version = version_message(VersionFields {
        services: ServiceFlags::NONE,
        timestamp: 0,
        receiver: None,
        nonce: 9,
        user_agent: String::new(),
        start_height: 0,
        relay: false,
    });
    let magic = regtest().magic();
    let mut hello = encode_message(magic, NetworkMessage::Version(version));
    hello.extend(encode_message(magic, NetworkMessage::Verack));
    hello.extend(encode_message(
        magic,
        NetworkMessage::GetHeaders(bitcoin::p2p::message_blockdata::GetHeadersMessage {
            version: 70016,
            locator_hashes: vec![regtest().genesis()],
            stop_hash: bitcoin::BlockHash::all_zeros(),
        }),
    ));
    server
        .receive(&hello, &mut chain, pair.now, &mut Vec::new())
        .unwrap();
    server.take_outbox();
    let grown = {
        let mut bigger = mined_chain(4);
        std::mem::swap(&mut chain, &mut bigger);
        chain
    };
    assert!(server.announce(&grown, 3, &mut Vec::new()));
    let sent = messages(&server.take_outbox());
    assert!(matches!(&sent[..], [NetworkMessage::Inv(_)]));
}

#[test]
fn a_peer_not_at_our_tip_is_not_announced_to() {
    let mut pair = Pair::new(mined_chain(2_100));
    handshake(&mut pair);
    // One full answer served (up to 2,000), the rest not asked yet.
    let ask = pair.client.take_outbox();
    pair.server_receives(&ask).unwrap();
    pair.server.take_outbox();
    mine_more(&mut pair, 1);
    assert!(!pair
        .server
        .announce(&pair.server_chain, 2_100, &mut Vec::new()));
    assert!(pair.server.take_outbox().is_empty());
}

#[test]
fn headers_that_never_connect_are_asked_about_nine_times_then_refused() {
    let mut pair = Pair::new(mined_chain(5));
    pair.exchange().unwrap();
    let stranger = mined_chain(8);
    let orphan = *stranger.header(8).unwrap();
    let bytes = encode_message(regtest().magic(), NetworkMessage::Headers(vec![orphan]));
    for round in 1..MAX_UNCONNECTING {
        pair.client_receives(&bytes).unwrap();
        let sent = messages(&pair.client.take_outbox());
        assert!(
            matches!(&sent[..], [NetworkMessage::GetHeaders(_)]),
            "round {round}: {sent:?}"
        );
        // Answered (nothing new), so the next announcement is not an answer.
        pair.client_receives(&encode_message(
            regtest().magic(),
            NetworkMessage::Headers(Vec::new()),
        ))
        .unwrap();
    }
    let err = pair.client_receives(&bytes).unwrap_err();
    assert!(matches!(
        err,
        PeerError::InvalidHeader(HeaderError::NotConnected { .. })
    ));
}
