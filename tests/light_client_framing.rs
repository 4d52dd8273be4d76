//! The examples' wire format (examples/common/p2p/framing.rs, shared by the light client, the
//! node and the edge client: rust-bitcoin's messages behind a hand-checked 24-byte header) and
//! network table (network.rs), tested on their own: no sockets, so these run natively and in
//! wasmtime alike.

// On WASI 0.3 (feature `wasip3`) the harness's `main` is entered through the async
// `wasi:cli/run@0.3`, where sockets may wait; elsewhere this line is nothing.
bitcoin_sock::wasip3_main!();

// The shared module is compiled here as it is; the tests use most, not all, of it.
#[allow(dead_code)]
#[path = "../examples/common/p2p/mod.rs"]
mod p2p;

use std::str::FromStr;

use bitcoin::block::Version;
use bitcoin::consensus::encode;
use bitcoin::hashes::Hash;
use bitcoin::p2p::message::NetworkMessage;
use bitcoin::p2p::message_blockdata::Inventory;
use bitcoin::p2p::{Magic, ServiceFlags};
use bitcoin::{CompactTarget, TxMerkleNode};
use p2p::framing::{
    checksum, decode_message, encode_message, get_headers, parse_message, to_hex, version_message,
    BlockHash, BlockHeader, FrameError, MessageHeader, VersionFields, HEADER_LEN, MAX_HEADERS,
    MAX_INV, MAX_LOCATOR, MAX_PAYLOAD,
};
use p2p::network::{self, NETWORKS};

const REGTEST: Magic = Magic::REGTEST;
const MAINNET: Magic = Magic::BITCOIN;

fn header(prev: BlockHash, merkle_root: &str, time: u32, bits: u32, nonce: u32) -> BlockHeader {
    BlockHeader {
        version: Version::ONE,
        prev_blockhash: prev,
        merkle_root: TxMerkleNode::from_str(merkle_root).unwrap(),
        time,
        bits: CompactTarget::from_consensus(bits),
        nonce,
    }
}

fn fake_headers(count: u32) -> Vec<BlockHeader> {
    let mut prev = BlockHash::all_zeros();
    (0..count)
        .map(|height| {
            let header = BlockHeader {
                version: Version::from_consensus(0x2000_0000),
                prev_blockhash: prev,
                merkle_root: TxMerkleNode::from_byte_array([height as u8; 32]),
                time: 1_700_000_000 + height * 600,
                bits: CompactTarget::from_consensus(0x207f_ffff),
                nonce: height,
            };
            prev = header.block_hash();
            header
        })
        .collect()
}

/// Decodes one whole message off `bytes` with the examples' checks.
fn parse(bytes: &[u8]) -> Result<Option<(NetworkMessage, usize)>, FrameError> {
    parse_message(bytes, REGTEST)
}

/// A message with `payload` under `command`, its header made by hand (for payloads
/// rust-bitcoin would not encode).
fn raw_message(command: &[u8; 12], payload: &[u8]) -> Vec<u8> {
    let header = MessageHeader {
        magic: REGTEST,
        command: *command,
        length: payload.len() as u32,
        checksum: checksum(payload),
    };
    let mut bytes = header.encode().to_vec();
    bytes.extend_from_slice(payload);
    bytes
}

#[test]
fn empty_payload_checksum_is_5df6e0e2() {
    assert_eq!(checksum(&[]), [0x5d, 0xf6, 0xe0, 0xe2]);
}

#[test]
fn message_header_fields_are_where_core_puts_them() {
    let message = encode_message(REGTEST, get_headers(vec![NETWORKS[4].genesis()]));
    let payload = &message[HEADER_LEN..];
    let header = MessageHeader::of(&message).unwrap();
    assert_eq!(&message[0..4], &REGTEST.to_bytes());
    assert_eq!(&message[4..16], b"getheaders\0\0");
    assert_eq!(header.length as usize, payload.len());
    assert_eq!(header.checksum, checksum(payload));
    assert_eq!(header.encode(), message[..HEADER_LEN]);

    let decoded = MessageHeader::decode(&header.encode(), REGTEST).unwrap();
    assert_eq!(decoded, header);
    assert_eq!(decoded.command_lossy(), "getheaders");
    assert!(decoded.command_is_valid());
    assert_eq!(
        decode_message(&decoded, &message),
        Ok(get_headers(vec![NETWORKS[4].genesis()]))
    );
}

#[test]
fn verack_message_is_the_known_24_bytes() {
    // A mainnet verack, as every node sends it.
    let expected = [
        0xf9, 0xbe, 0xb4, 0xd9, b'v', b'e', b'r', b'a', b'c', b'k', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0x5d, 0xf6, 0xe0, 0xe2,
    ];
    assert_eq!(encode_message(MAINNET, NetworkMessage::Verack), expected);
}

#[test]
fn header_with_bad_magic_is_rejected_with_cores_text() {
    let message = encode_message(MAINNET, NetworkMessage::Verack);
    let err = MessageHeader::decode(message.first_chunk().unwrap(), REGTEST).unwrap_err();
    assert_eq!(
        err,
        FrameError::BadMagic {
            expected: REGTEST,
            found: MAINNET
        }
    );
    assert_eq!(
        err.to_string(),
        "Header error: Wrong MessageStart f9beb4d9 received"
    );
    // Bad magic is reported before anything else is looked at.
    assert!(matches!(parse(&message), Err(FrameError::BadMagic { .. })));
}

#[test]
fn payload_with_bad_checksum_is_rejected_with_cores_text() {
    let mut message = encode_message(REGTEST, NetworkMessage::Ping(7));
    let last = message.len() - 1;
    message[last] ^= 1;
    let err = parse(&message).unwrap_err();
    let FrameError::BadChecksum {
        command,
        length,
        computed,
        found,
    } = &err
    else {
        panic!("expected BadChecksum, got {err:?}");
    };
    assert_eq!((command.as_str(), *length), ("ping", 8));
    assert_eq!(found, &checksum(&7u64.to_le_bytes()));
    assert_eq!(computed, &checksum(&message[HEADER_LEN..]));
    assert_eq!(
        err.to_string(),
        format!(
            "Header error: Wrong checksum (ping, 8 bytes), expected {} was {}",
            to_hex(computed),
            to_hex(found)
        )
    );
}

#[test]
fn oversized_length_is_rejected_from_the_header_alone() {
    let mut header = MessageHeader::of(&encode_message(REGTEST, NetworkMessage::Verack)).unwrap();
    header.length = MAX_PAYLOAD;
    assert!(MessageHeader::decode(&header.encode(), REGTEST).is_ok());

    for length in [MAX_PAYLOAD + 1, u32::MAX] {
        header.length = length;
        let bytes = header.encode();
        let expected = FrameError::Oversized {
            command: "verack".to_owned(),
            length,
        };
        assert_eq!(
            MessageHeader::decode(&bytes, REGTEST),
            Err(expected.clone())
        );
        // With only the 24 header bytes buffered, parsing fails at once instead of asking for
        // (and buffering) the announced megabytes.
        assert_eq!(parse(&bytes), Err(expected.clone()));
        assert_eq!(
            expected.to_string(),
            format!("Header error: Size too large (verack, {length} bytes)")
        );
    }
}

#[test]
fn malformed_commands_are_rejected_after_the_checksum() {
    // A NUL inside the name, a control character, a byte past ASCII: rust-bitcoin would take
    // the first (ASCII), Core refuses all three.
    for command in [
        *b"ver\0ack\0\0\0\0\0",
        *b"ver\nack\0\0\0\0\0",
        *b"ver\xffack\0\0\0\0\0",
    ] {
        let message = raw_message(&command, &[]);
        assert_eq!(
            parse(&message),
            Err(FrameError::BadCommand {
                command: "verack".to_owned(),
                length: 0
            })
        );
    }
    // Twelve characters and no padding is fine: an unknown message, kept with its payload.
    let (message, used) = parse(&raw_message(b"abcdefghijkl", &[1, 2]))
        .unwrap()
        .unwrap();
    assert_eq!(used, HEADER_LEN + 2);
    let NetworkMessage::Unknown { command, payload } = message else {
        panic!("expected an unknown message, got {message:?}");
    };
    assert_eq!(
        (command.to_string().as_str(), payload),
        ("abcdefghijkl", vec![1, 2])
    );
}

#[test]
fn parse_message_waits_for_the_whole_message_and_reports_its_length() {
    let inv = NetworkMessage::Inv(vec![Inventory::Block(NETWORKS[4].genesis())]);
    let mut stream = encode_message(REGTEST, inv.clone());
    let first_len = stream.len();
    stream.extend_from_slice(&encode_message(REGTEST, NetworkMessage::Verack));
    for cut in 0..first_len {
        assert_eq!(parse(&stream[..cut]), Ok(None), "cut {cut}");
    }
    assert_eq!(parse(&stream), Ok(Some((inv, first_len))));
    assert_eq!(
        parse(&stream[first_len..]),
        Ok(Some((NetworkMessage::Verack, HEADER_LEN)))
    );
}

#[test]
fn version_message_has_the_expected_layout() {
    let version = version_message(VersionFields {
        services: ServiceFlags::NONE,
        timestamp: 1_700_000_000,
        receiver: Some("127.0.0.1:18444".parse().unwrap()),
        nonce: 0x0123_4567_89ab_cdef,
        user_agent: "/bitcoin-sock:0.1.0/".to_owned(),
        start_height: 0,
        relay: false,
    });
    let message = encode_message(REGTEST, NetworkMessage::Version(version.clone()));
    let payload = &message[HEADER_LEN..];
    // 4 version + 8 services + 8 time + 26 + 26 addresses + 8 nonce + 1 + 20 user agent
    // + 4 height + 1 relay.
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
    assert_eq!(
        parse(&message),
        Ok(Some((
            NetworkMessage::Version(version.clone()),
            message.len()
        )))
    );

    // Without the relay byte: Core reads relay = true, rust-bitcoin 0.32 refuses the message
    // (every peer since protocol 70001, Core 0.8, sends the byte). The examples take
    // rust-bitcoin's answer: a clear error, not a guess.
    let old = raw_message(b"version\0\0\0\0\0", &payload[..105]);
    assert!(matches!(parse(&old), Err(FrameError::Malformed { .. })));
    // Cut inside the start height: malformed, never a shorter message.
    let cut = raw_message(b"version\0\0\0\0\0", &payload[..103]);
    assert!(matches!(parse(&cut), Err(FrameError::Malformed { .. })));
}

#[test]
fn version_message_with_oversized_user_agent_is_rejected() {
    let version = version_message(VersionFields {
        services: ServiceFlags::NONE,
        timestamp: 0,
        receiver: None,
        nonce: 0,
        user_agent: "x".repeat(257),
        start_height: 0,
        relay: true,
    });
    let err = parse(&encode_message(REGTEST, NetworkMessage::Version(version))).unwrap_err();
    assert_eq!(
        err,
        FrameError::TooMany {
            command: "version",
            what: "bytes of user agent",
            count: 257,
            max: 256
        }
    );
    assert_eq!(
        err.to_string(),
        "version message with 257 bytes of user agent, more than 256"
    );
}

#[test]
fn getheaders_from_genesis_has_the_expected_layout() {
    let genesis = NETWORKS[0].genesis();
    let message = encode_message(REGTEST, get_headers(vec![genesis]));
    let payload = &message[HEADER_LEN..];
    assert_eq!(payload.len(), 4 + 1 + 32 + 32);
    assert_eq!(payload[4], 1);
    // Wire order: the displayed hash reversed, so the leading zeros come last.
    assert_eq!(&payload[5..9], &[0x6f, 0xe2, 0x8c, 0x0a]);
    assert_eq!(&payload[33..37], &[0x00, 0x00, 0x00, 0x00]);
    assert_eq!(&payload[37..], &[0u8; 32]);
}

#[test]
fn getheaders_with_more_locator_hashes_than_core_allows_is_rejected() {
    let locator = vec![NETWORKS[0].genesis(); MAX_LOCATOR];
    let message = encode_message(REGTEST, get_headers(locator.clone()));
    assert!(parse(&message).is_ok());
    let mut locator = locator;
    locator.push(NETWORKS[0].genesis());
    let message = encode_message(REGTEST, get_headers(locator));
    assert!(matches!(
        parse(&message),
        Err(FrameError::TooMany {
            command: "getheaders",
            count: 102,
            max: 101,
            ..
        })
    ));
}

#[test]
fn headers_message_round_trips_and_chains() {
    let headers = fake_headers(MAX_HEADERS as u32);
    let message = encode_message(REGTEST, NetworkMessage::Headers(headers.clone()));
    assert_eq!(message.len(), HEADER_LEN + 3 + MAX_HEADERS * 81);
    let Ok(Some((NetworkMessage::Headers(decoded), _))) = parse(&message) else {
        panic!("2,000 headers were refused");
    };
    assert_eq!(decoded, headers);
    for pair in decoded.windows(2) {
        assert_eq!(pair[1].prev_blockhash, pair[0].block_hash());
    }
}

#[test]
fn headers_message_with_truncated_payload_is_rejected() {
    let message = encode_message(REGTEST, NetworkMessage::Headers(fake_headers(3)));
    let payload = &message[HEADER_LEN..];
    // Every cut short of the whole payload is an error, never a panic or a shorter list.
    for cut in 0..payload.len() {
        let cut_message = raw_message(b"headers\0\0\0\0\0", &payload[..cut]);
        assert!(
            matches!(parse(&cut_message), Err(FrameError::Malformed { .. })),
            "cut {cut}"
        );
    }
}

#[test]
fn headers_message_rejects_bad_counts_and_transactions() {
    // 2,001 headers: over Core's limit, refused.
    let message = encode_message(
        REGTEST,
        NetworkMessage::Headers(fake_headers(MAX_HEADERS as u32 + 1)),
    );
    assert_eq!(
        parse(&message),
        Err(FrameError::TooMany {
            command: "headers",
            what: "headers",
            count: 2001,
            max: 2000
        })
    );
    // u64::MAX headers announced in a 9-byte payload: refused, no attempt to reserve room.
    let message = raw_message(b"headers\0\0\0\0\0", &[0xff; 9]);
    assert!(matches!(parse(&message), Err(FrameError::Malformed { .. })));
    // A count not in its shortest form (1 as 0xfd 0x01 0x00), as Core refuses.
    let mut payload = vec![0xfd, 0x01, 0x00];
    payload.extend_from_slice(&encode::serialize(&fake_headers(1)[0]));
    payload.push(0);
    let message = raw_message(b"headers\0\0\0\0\0", &payload);
    assert!(matches!(parse(&message), Err(FrameError::Malformed { .. })));
    // A header that claims a transaction.
    let mut message = encode_message(REGTEST, NetworkMessage::Headers(fake_headers(1)));
    let last = message.len() - 1;
    message[last] = 1;
    let message = raw_message(b"headers\0\0\0\0\0", &message[HEADER_LEN..]);
    let err = parse(&message).unwrap_err();
    assert!(
        err.to_string().contains("should not contain transactions"),
        "{err}"
    );
    // Bytes after the last header.
    let mut payload =
        encode_message(REGTEST, NetworkMessage::Headers(fake_headers(1)))[HEADER_LEN..].to_vec();
    payload.push(0);
    let message = raw_message(b"headers\0\0\0\0\0", &payload);
    assert!(matches!(parse(&message), Err(FrameError::Malformed { .. })));
}

#[test]
fn inventories_past_cores_limit_are_rejected() {
    let entry = Inventory::Block(NETWORKS[0].genesis());
    let message = encode_message(REGTEST, NetworkMessage::GetData(vec![entry; MAX_INV + 1]));
    assert!(matches!(
        parse(&message),
        Err(FrameError::TooMany {
            command: "getdata",
            count: 50_001,
            ..
        })
    ));
}

#[test]
fn block_header_is_the_known_80_bytes_and_hash() {
    // Mainnet block 1.
    let block_1 = header(
        NETWORKS[0].genesis(),
        "0e3e2357e806b6cdb1f70b54c3a3a17b6714ee1f0e68bebb44a74b1efd512098",
        1231469665,
        0x1d00ffff,
        2573394689,
    );
    assert_eq!(
        to_hex(&encode::serialize(&block_1)),
        "010000006fe28c0ab6f1b372c1a6a246ae63f74f931e8365e15a089c68d6190000000000982051fd1e4\
         ba744bbbe680e1fee14677ba1a3c3540bf7b1cdb606e857233e0e61bc6649ffff001d01e36299"
    );
    assert_eq!(
        block_1.block_hash().to_string(),
        "00000000839a8e6886ab5951d76f411475428afc90947ee320161bbf18eb6048"
    );
}

/// Each network's genesis hash, from rust-bitcoin's genesis blocks, is the one Core shows
/// (`chainparams.cpp`), so the table maps each name to the right network.
#[test]
fn genesis_hashes_are_cores() {
    let expected = [
        (
            "mainnet",
            "000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f",
        ),
        (
            "testnet",
            "000000000933ea01ad0ee984209779baaec3ced90fa3f408719526f8d77f4943",
        ),
        (
            "testnet4",
            "00000000da84f2bafbbc53dee25a72ae507ff4914b867c565be350b0da8bf043",
        ),
        (
            "signet",
            "00000008819873e925422c1ff0f99f7cc9bbb232af63a077a480a3633bee1ef6",
        ),
        (
            "regtest",
            "0f9188f13cb7b2c71f2a335e3a4fc328bf5beb436012afca590b1a11466e2206",
        ),
    ];
    assert_eq!(expected.len(), NETWORKS.len());
    for (name, hash) in expected {
        let network = network::by_name(name).unwrap();
        assert_eq!(network.genesis().to_string(), hash, "{name}");
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
        assert_eq!(network.magic().to_string(), magic);
        assert_eq!(network.default_port, port);
        assert_eq!(network::by_magic(network.magic()).unwrap().name, name);
        assert_eq!(
            network.pow_limit().to_compact_lossy().to_consensus(),
            limit_bits,
            "{name}"
        );
    }
    assert_eq!(network::by_name("testnet3").unwrap().name, "testnet");
    assert_eq!(network::by_name("MAIN").unwrap().name, "mainnet");
    assert!(network::by_name("litecoin").is_none());
}

#[test]
fn the_default_port_is_added_only_where_none_is_given() {
    let with = network::with_default_port;
    assert_eq!(with("127.0.0.1:18444", 8333), "127.0.0.1:18444");
    assert_eq!(with("node.example", 8333), "node.example:8333");
    assert_eq!(with("127.0.0.1", 8333), "127.0.0.1:8333");
    assert_eq!(with("[::1]:18444", 8333), "[::1]:18444");
    assert_eq!(with("::1", 8333), "[::1]:8333");
    assert_eq!(with("[::1]", 8333), "[::1]:8333");
    // The crate's split then takes each, or says why not.
    let split = bitcoin_sock::split_host_port;
    assert_eq!(split(&with("::1", 8333)).unwrap(), ("::1", 8333));
    assert_eq!(
        split(&with("node.example", 18444)).unwrap(),
        ("node.example", 18444)
    );
    assert!(split(&with("127.0.0.1:port", 8333)).is_err());
    assert!(split(&with("[::1", 8333)).is_err());
}
