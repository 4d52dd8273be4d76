//! The examples' wire format (examples/common/p2p/framing.rs, shared by the light client and
//! the node) and network table (network.rs), tested on their own: no sockets, so these run
//! natively and in wasmtime alike.

// On WASI 0.3 (feature `wasip3`) the harness's `main` is entered through the async
// `wasi:cli/run@0.3`, where sockets may wait; elsewhere this line is nothing.
bitcoin_sock::wasip3_main!();

// The shared module is compiled here as it is; the tests use most, not all, of it.
#[allow(dead_code)]
#[path = "../examples/common/p2p/mod.rs"]
mod p2p;

use std::str::FromStr;

use bitcoin_primitives::block::Version;
use bitcoin_primitives::merkle_tree::TxMerkleNode;
use bitcoin_primitives::{BlockTime, CompactTarget};
use p2p::framing::{
    self, checksum, decode_headers, encode_header, encode_headers, encode_message, parse_message,
    write_compact_size, BlockHash, BlockHeader, FrameError, GetHeaders, MessageHeader, NetAddress,
    Reader, VersionMessage, HEADER_LEN, MAX_HEADERS, MAX_PAYLOAD,
};
use p2p::network::{self, NETWORKS};

const REGTEST_MAGIC: [u8; 4] = [0xfa, 0xbf, 0xb5, 0xda];
const MAINNET_MAGIC: [u8; 4] = [0xf9, 0xbe, 0xb4, 0xd9];

fn compact_size(value: u64) -> Vec<u8> {
    let mut out = Vec::new();
    write_compact_size(&mut out, value);
    out
}

fn read_compact_size(bytes: &[u8]) -> Result<u64, FrameError> {
    let mut reader = Reader::new(bytes);
    let value = reader.compact_size("test value")?;
    reader.finish("test value")?;
    Ok(value)
}

fn header(
    version: i32,
    prev: BlockHash,
    merkle_root: [u8; 32],
    time: u32,
    bits: u32,
    nonce: u32,
) -> BlockHeader {
    BlockHeader {
        version: Version::from_consensus(version),
        prev_blockhash: prev,
        merkle_root: TxMerkleNode::from_byte_array(merkle_root),
        time: BlockTime::from_u32(time),
        bits: CompactTarget::from_consensus(bits),
        nonce,
    }
}

/// Display-order hex (as Core shows hashes) to wire-order bytes.
fn hash_bytes(hex: &str) -> [u8; 32] {
    BlockHash::from_str(hex).unwrap().to_byte_array()
}

fn fake_headers(count: u32) -> Vec<BlockHeader> {
    let mut prev = BlockHash::GENESIS_PREVIOUS_BLOCK_HASH;
    (0..count)
        .map(|height| {
            let header = header(
                0x2000_0000,
                prev,
                [height as u8; 32],
                1_700_000_000 + height * 600,
                0x207f_ffff,
                height,
            );
            prev = header.block_hash();
            header
        })
        .collect()
}

#[test]
fn empty_payload_checksum_is_5df6e0e2() {
    assert_eq!(checksum(&[]), [0x5d, 0xf6, 0xe0, 0xe2]);
}

#[test]
fn message_header_encode_decode_round_trip() {
    let payload = b"some payload";
    let header = MessageHeader::new(REGTEST_MAGIC, "getheaders", payload);
    let bytes = header.encode();
    assert_eq!(&bytes[0..4], &REGTEST_MAGIC);
    assert_eq!(&bytes[4..16], b"getheaders\0\0");
    assert_eq!(&bytes[16..20], &(payload.len() as u32).to_le_bytes());
    assert_eq!(&bytes[20..24], &checksum(payload));

    let decoded = MessageHeader::decode(&bytes, REGTEST_MAGIC).unwrap();
    assert_eq!(decoded, header);
    assert_eq!(decoded.command().unwrap(), "getheaders");
    assert_eq!(decoded.verify(payload), Ok(()));
}

#[test]
fn verack_message_is_the_known_24_bytes() {
    // A mainnet verack, as every node sends it.
    let expected = [
        0xf9, 0xbe, 0xb4, 0xd9, b'v', b'e', b'r', b'a', b'c', b'k', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0x5d, 0xf6, 0xe0, 0xe2,
    ];
    assert_eq!(encode_message(MAINNET_MAGIC, "verack", &[]), expected);
}

#[test]
fn header_with_bad_magic_is_rejected_with_bad_magic() {
    let bytes = MessageHeader::new(MAINNET_MAGIC, "verack", &[]).encode();
    let err = MessageHeader::decode(&bytes, REGTEST_MAGIC).unwrap_err();
    assert_eq!(
        err,
        FrameError::BadMagic {
            expected: REGTEST_MAGIC,
            found: MAINNET_MAGIC
        }
    );
    assert_eq!(
        err.to_string(),
        "bad magic f9beb4d9 where fabfb5da was expected"
    );
    // Bad magic is reported before anything else is looked at.
    let message = encode_message(MAINNET_MAGIC, "verack", &[]);
    assert!(matches!(
        parse_message(&message, REGTEST_MAGIC),
        Err(FrameError::BadMagic { .. })
    ));
}

#[test]
fn payload_with_bad_checksum_is_rejected_with_bad_checksum() {
    let mut message = encode_message(REGTEST_MAGIC, "ping", &7u64.to_le_bytes());
    let last = message.len() - 1;
    message[last] ^= 1;
    let err = parse_message(&message, REGTEST_MAGIC).unwrap_err();
    let FrameError::BadChecksum {
        command,
        expected,
        computed,
    } = &err
    else {
        panic!("expected BadChecksum, got {err:?}");
    };
    assert_eq!(command, "ping");
    assert_eq!(expected, &checksum(&7u64.to_le_bytes()));
    assert_eq!(computed, &checksum(&message[HEADER_LEN..]));
    assert!(err.to_string().starts_with("bad checksum of \"ping\""));
}

#[test]
fn oversized_length_is_rejected_from_the_header_alone() {
    let mut header = MessageHeader::new(REGTEST_MAGIC, "block", &[]);
    header.length = MAX_PAYLOAD;
    assert!(MessageHeader::decode(&header.encode(), REGTEST_MAGIC).is_ok());

    for length in [MAX_PAYLOAD + 1, u32::MAX] {
        header.length = length;
        let bytes = header.encode();
        let expected = FrameError::Oversized {
            command: "block".to_owned(),
            length,
        };
        assert_eq!(
            MessageHeader::decode(&bytes, REGTEST_MAGIC),
            Err(expected.clone())
        );
        // With only the 24 header bytes buffered, parsing fails at once instead of asking for
        // (and buffering) the announced gigabytes.
        assert_eq!(parse_message(&bytes, REGTEST_MAGIC), Err(expected));
    }
}

#[test]
fn malformed_commands_are_rejected() {
    // A NUL inside the name, a control character, a byte past ASCII.
    for command in [
        *b"ver\0ack\0\0\0\0\0",
        *b"ver\nack\0\0\0\0\0",
        *b"ver\xffack\0\0\0\0\0",
    ] {
        let mut bytes = MessageHeader::new(REGTEST_MAGIC, "", &[]).encode();
        bytes[4..16].copy_from_slice(&command);
        assert_eq!(
            MessageHeader::decode(&bytes, REGTEST_MAGIC),
            Err(FrameError::BadCommand { command })
        );
    }
    // Twelve characters and no padding is fine.
    let header = MessageHeader::new(REGTEST_MAGIC, "abcdefghijkl", &[]);
    assert_eq!(header.command().unwrap(), "abcdefghijkl");
}

#[test]
fn parse_message_waits_for_the_whole_message_and_reports_its_length() {
    let payload = [1u8, 2, 3];
    let mut stream = encode_message(REGTEST_MAGIC, "inv", &payload);
    stream.extend_from_slice(&encode_message(REGTEST_MAGIC, "verack", &[]));
    let first_len = HEADER_LEN + payload.len();
    for cut in 0..first_len {
        assert_eq!(
            parse_message(&stream[..cut], REGTEST_MAGIC),
            Ok(None),
            "cut {cut}"
        );
    }
    let (message, used) = parse_message(&stream, REGTEST_MAGIC).unwrap().unwrap();
    assert_eq!(used, first_len);
    assert_eq!(message.command, "inv");
    assert_eq!(message.payload, payload);
    let (message, used) = parse_message(&stream[first_len..], REGTEST_MAGIC)
        .unwrap()
        .unwrap();
    assert_eq!((message.command.as_str(), used), ("verack", HEADER_LEN));
}

#[test]
fn compact_size_edges_use_the_shortest_encoding() {
    assert_eq!(compact_size(0), [0x00]);
    assert_eq!(compact_size(0xfc), [0xfc]);
    assert_eq!(compact_size(0xfd), [0xfd, 0xfd, 0x00]);
    assert_eq!(compact_size(0xffff), [0xfd, 0xff, 0xff]);
    assert_eq!(compact_size(0x1_0000), [0xfe, 0x00, 0x00, 0x01, 0x00]);
    assert_eq!(compact_size(0xffff_ffff), [0xfe, 0xff, 0xff, 0xff, 0xff]);
    assert_eq!(
        compact_size(u64::from(u32::MAX) + 1),
        [0xff, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00]
    );
    assert_eq!(compact_size(u64::MAX), [0xff; 9]);
}

#[test]
fn compact_size_round_trips_at_every_edge() {
    for value in [
        0,
        1,
        0xfc,
        0xfd,
        0xfe,
        0xffff,
        0x1_0000,
        0xffff_ffff,
        u64::from(u32::MAX) + 1,
        u64::MAX,
    ] {
        assert_eq!(
            read_compact_size(&compact_size(value)),
            Ok(value),
            "{value:#x}"
        );
    }
}

#[test]
fn non_canonical_compact_sizes_are_rejected() {
    for (bytes, value) in [
        (&[0xfd, 0xfc, 0x00][..], 0xfc),
        (&[0xfe, 0xff, 0xff, 0x00, 0x00][..], 0xffff),
        (&[0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0][..], 0xffff_ffff),
    ] {
        assert_eq!(
            read_compact_size(bytes),
            Err(FrameError::NonCanonicalCompactSize { value })
        );
    }
}

#[test]
fn truncated_compact_size_is_reported() {
    assert!(matches!(
        read_compact_size(&[0xfe, 0x00, 0x00]),
        Err(FrameError::Truncated {
            needed: 4,
            available: 2,
            ..
        })
    ));
    assert!(matches!(
        read_compact_size(&[]),
        Err(FrameError::Truncated { .. })
    ));
}

#[test]
fn version_message_layout_has_the_expected_length_and_fields() {
    let version = VersionMessage {
        version: 70016,
        services: 0,
        timestamp: 1_700_000_000,
        receiver: NetAddress::from_socket_addr("127.0.0.1:18444".parse().unwrap()),
        sender: NetAddress::UNSPECIFIED,
        nonce: 0x0123_4567_89ab_cdef,
        user_agent: "/bitcoin-sock:0.1.0/".to_owned(),
        start_height: 0,
        relay: false,
    };
    let payload = version.encode();
    // 4 version + 8 services + 8 time + 26 + 26 addresses + 8 nonce + 1 + 20 user agent
    // + 4 height + 1 relay.
    assert_eq!(VersionMessage::FIXED_LEN, 85);
    assert_eq!(payload.len(), 106);
    assert_eq!(&payload[0..4], &70016i32.to_le_bytes());
    // The receiver: no services, IPv4-mapped 127.0.0.1, port big-endian.
    assert_eq!(
        &payload[20..46],
        &[
            0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 1, 0x48,
            0x0c
        ]
    );
    assert_eq!(payload[80], 20);
    assert_eq!(&payload[81..101], b"/bitcoin-sock:0.1.0/");
    assert_eq!(&payload[101..105], &[0, 0, 0, 0]);
    assert_eq!(payload[105], 0);
    assert_eq!(VersionMessage::decode(&payload), Ok(version.clone()));

    // Without the relay byte (older peers) it reads as relay = true.
    let mut old = version.clone();
    old.relay = true;
    assert_eq!(VersionMessage::decode(&payload[..105]), Ok(old));
    // Cut inside the start height: truncated.
    assert!(matches!(
        VersionMessage::decode(&payload[..103]),
        Err(FrameError::Truncated {
            what: "start height",
            ..
        })
    ));
}

#[test]
fn version_message_with_oversized_user_agent_is_rejected() {
    let version = VersionMessage {
        version: 70016,
        services: 0,
        timestamp: 0,
        receiver: NetAddress::UNSPECIFIED,
        sender: NetAddress::UNSPECIFIED,
        nonce: 0,
        user_agent: "x".repeat(257),
        start_height: 0,
        relay: true,
    };
    assert_eq!(
        VersionMessage::decode(&version.encode()),
        Err(FrameError::TooMany {
            what: "user agent bytes",
            count: 257,
            max: 256
        })
    );
}

#[test]
fn getheaders_from_genesis_has_the_expected_layout() {
    let genesis = NETWORKS[0].genesis();
    let getheaders = GetHeaders {
        version: 70016,
        locator: vec![genesis],
        stop: BlockHash::GENESIS_PREVIOUS_BLOCK_HASH,
    };
    let payload = getheaders.encode();
    assert_eq!(payload.len(), 4 + 1 + 32 + 32);
    assert_eq!(payload[4], 1);
    // Wire order: the displayed hash reversed, so the leading zeros come last.
    assert_eq!(&payload[5..9], &[0x6f, 0xe2, 0x8c, 0x0a]);
    assert_eq!(&payload[33..37], &[0x00, 0x00, 0x00, 0x00]);
    assert_eq!(GetHeaders::decode(&payload), Ok(getheaders));
}

#[test]
fn headers_message_round_trips_and_chains() {
    let headers = fake_headers(MAX_HEADERS as u32);
    let payload = encode_headers(&headers);
    assert_eq!(payload.len(), 3 + MAX_HEADERS * 81);
    let decoded = decode_headers(&payload).unwrap();
    assert_eq!(decoded, headers);
    for pair in decoded.windows(2) {
        assert_eq!(pair[1].prev_blockhash, pair[0].block_hash());
    }
    assert_eq!(decode_headers(&[0]), Ok(Vec::new()));
}

#[test]
fn headers_message_with_truncated_payload_is_rejected() {
    let payload = encode_headers(&fake_headers(3));
    // Every cut short of the whole payload is an error, never a panic or a shorter list.
    for cut in 0..payload.len() {
        assert!(
            matches!(
                decode_headers(&payload[..cut]),
                Err(FrameError::Truncated { .. })
            ),
            "cut {cut}"
        );
    }
    // Cut in the middle of the second header.
    assert_eq!(
        decode_headers(&payload[..1 + 81 + 50]),
        Err(FrameError::Truncated {
            what: "block header",
            needed: 80,
            available: 50
        })
    );
}

#[test]
fn headers_message_rejects_bad_counts_before_allocating() {
    // 2,001 headers announced in a 3-byte payload.
    let mut payload = Vec::new();
    write_compact_size(&mut payload, MAX_HEADERS as u64 + 1);
    assert_eq!(
        decode_headers(&payload),
        Err(FrameError::TooMany {
            what: "headers",
            count: 2001,
            max: 2000
        })
    );
    // u64::MAX headers: the same, no attempt to reserve room for them.
    let mut payload = Vec::new();
    write_compact_size(&mut payload, u64::MAX);
    assert!(matches!(
        decode_headers(&payload),
        Err(FrameError::TooMany { .. })
    ));
    // A header that claims a transaction.
    let mut payload = encode_headers(&fake_headers(1));
    let last = payload.len() - 1;
    payload[last] = 1;
    assert_eq!(
        decode_headers(&payload),
        Err(FrameError::HeaderWithTransactions { index: 0, count: 1 })
    );
    // Bytes after the last header.
    let mut payload = encode_headers(&fake_headers(1));
    payload.push(0);
    assert!(matches!(
        decode_headers(&payload),
        Err(FrameError::TrailingBytes { count: 1, .. })
    ));
}

#[test]
fn block_header_is_the_known_80_bytes_and_hash() {
    // Mainnet block 1.
    let block_1 = header(
        1,
        NETWORKS[0].genesis(),
        hash_bytes("0e3e2357e806b6cdb1f70b54c3a3a17b6714ee1f0e68bebb44a74b1efd512098"),
        1231469665,
        0x1d00ffff,
        2573394689,
    );
    let bytes = encode_header(&block_1);
    assert_eq!(
        framing::to_hex(&bytes),
        "010000006fe28c0ab6f1b372c1a6a246ae63f74f931e8365e15a089c68d6190000000000982051fd1e4\
         ba744bbbe680e1fee14677ba1a3c3540bf7b1cdb606e857233e0e61bc6649ffff001d01e36299"
    );
    assert_eq!(
        block_1.block_hash().to_string(),
        "00000000839a8e6886ab5951d76f411475428afc90947ee320161bbf18eb6048"
    );
    let mut payload = vec![1];
    payload.extend_from_slice(&bytes);
    payload.push(0);
    assert_eq!(decode_headers(&payload), Ok(vec![block_1]));
}

/// Each network's genesis hash is the hash of its genesis header (Core's `CreateGenesisBlock`
/// arguments), so a mistyped hash cannot hide in the table.
#[test]
fn genesis_hashes_are_the_hashes_of_the_genesis_headers() {
    // The coinbase shared by mainnet, testnet3, signet and regtest ("The Times 03/Jan/2009 ...").
    let merkle_root =
        hash_bytes("4a5e1e4baab89f3a32518a88c31bc87f618f76673e2cc77ab2127b7afdeda33b");
    // testnet4's own coinbase message.
    let testnet4_merkle_root =
        hash_bytes("7aa0a7ae1e223414cb807e40cd57e667b718e42aaf9306db9102fe28912b7b4e");
    let genesis = |merkle_root, time, bits, nonce| {
        header(
            1,
            BlockHash::GENESIS_PREVIOUS_BLOCK_HASH,
            merkle_root,
            time,
            bits,
            nonce,
        )
    };
    let headers = [
        (
            "mainnet",
            genesis(merkle_root, 1231006505, 0x1d00ffff, 2083236893),
        ),
        (
            "testnet",
            genesis(merkle_root, 1296688602, 0x1d00ffff, 414098458),
        ),
        (
            "testnet4",
            genesis(testnet4_merkle_root, 1714777860, 0x1d00ffff, 393743547),
        ),
        (
            "signet",
            genesis(merkle_root, 1598918400, 0x1e0377ae, 52613770),
        ),
        ("regtest", genesis(merkle_root, 1296688602, 0x207fffff, 2)),
    ];
    assert_eq!(headers.len(), NETWORKS.len());
    for (name, header) in headers {
        let network = network::by_name(name).unwrap();
        assert_eq!(
            header.block_hash().to_string(),
            network.genesis_hash,
            "{name}"
        );
        assert_eq!(network.genesis(), header.block_hash(), "{name}");
    }
}

#[test]
fn networks_have_distinct_magics_and_ports_and_known_names() {
    // The pow limits as the compact nBits of each genesis block (its easiest target).
    let expected = [
        ("mainnet", "f9beb4d9", 8333, 0x1d00ffff),
        ("testnet", "0b110907", 18333, 0x1d00ffff),
        ("testnet4", "1c163f28", 48333, 0x1d00ffff),
        ("signet", "0a03cf40", 38333, 0x1e0377ae),
        ("regtest", "fabfb5da", 18444, 0x207fffff),
    ];
    for (network, (name, magic, port, limit_bits)) in NETWORKS.iter().zip(expected) {
        assert_eq!(network.name, name);
        assert_eq!(framing::to_hex(&network.magic), magic);
        assert_eq!(network.default_port, port);
        assert_eq!(network::by_magic(network.magic).unwrap().name, name);
        assert_eq!(
            network.pow_limit().to_compact_lossy().to_consensus_u32(),
            limit_bits,
            "{name}"
        );
    }
    assert_eq!(network::by_name("testnet3").unwrap().name, "testnet");
    assert_eq!(network::by_name("MAIN").unwrap().name, "mainnet");
    assert!(network::by_name("litecoin").is_none());
}
