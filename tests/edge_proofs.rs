//! The edge example's own pieces (examples/edge/): BIP 37's MurmurHash3 and bloom filter
//! against Core's test vectors, the merkle-proof checks that turn `merkleblock` and `tx`
//! answers into payments (a wrong or missing proof is an error, never "no payments"), the
//! JSON, and the handler's answers to bad questions and bad peers over loopback. Natively
//! and in wasmtime alike (the peers here need no thread: a closed port, a listener that never
//! answers).

// On WASI 0.3 (feature `wasip3`) the harness's `main` is entered through the async
// `wasi:cli/run@0.3`, where sockets may wait; elsewhere this line is nothing.
bitcoin_sock::wasip3_main!();

// The example's modules, compiled here as they are; the tests use most, not all, of them.
#[allow(dead_code)]
#[path = "../examples/common/p2p/mod.rs"]
mod p2p;

#[allow(dead_code)]
#[path = "../examples/edge/answer.rs"]
mod answer;

#[allow(dead_code)]
#[path = "../examples/edge/bloom.rs"]
mod bloom;

#[allow(dead_code)]
#[path = "../examples/edge/json.rs"]
mod json;

#[allow(dead_code)]
#[path = "../examples/edge/peer.rs"]
mod peer;

#[allow(dead_code)]
#[path = "../examples/edge/proof.rs"]
mod proof;

use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

use bitcoin::absolute::LockTime;
use bitcoin::block::{Header, Version};
use bitcoin::hashes::Hash;
use bitcoin::merkle_tree::MerkleBlockError;
use bitcoin::p2p::message_bloom::BloomFlags;
use bitcoin::{
    transaction, Address, Amount, Block, BlockHash, CompactTarget, MerkleBlock, Network, OutPoint,
    ScriptBuf, Sequence, Transaction, TxIn, TxMerkleNode, TxOut, Witness,
};
use bitcoin_sock::Sock;

use answer::{answer, Config};
use bloom::{murmur3, BloomFilter};
use json::Value;
use proof::{Collector, Payment, ProofError};

fn hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

/// Core's `hash_tests.cpp` (`murmurhash3`), seeds and inputs as there.
#[test]
fn murmur3_gives_cores_test_vectors() {
    let vectors: [(u32, u32, &str); 9] = [
        (0x0000_0000, 0x0000_0000, ""),
        (0x6a39_6f08, 0xfba4_c795, ""),
        (0x81f1_6f39, 0xffff_ffff, ""),
        (0x514e_28b7, 0x0000_0000, "00"),
        (0xea3f_0b17, 0xfba4_c795, "00"),
        (0xfd6c_f10d, 0x0000_0000, "ff"),
        (0x16c6_b7ab, 0x0000_0000, "0011"),
        (0x8eb5_1c3d, 0x0000_0000, "001122"),
        (0xb447_1bf8, 0x0000_0000, "00112233"),
    ];
    for (expected, seed, data) in vectors {
        assert_eq!(
            murmur3(seed, &hex(data)),
            expected,
            "seed {seed:#x}, {data}"
        );
    }
}

/// Core's `bloom_tests.cpp` (`bloom_create_insert_serialize` and its tweaked twin): the
/// filter's size, hash count and bits, byte for byte.
#[test]
fn bloom_filter_is_cores_byte_for_byte() {
    let items = [
        "99108ad8ed9bb6274d3980bab5a85c048f0950c8",
        "b5a2c786d9ef4658287ced5914b37a1b4aa32eee",
        "b9300670b4c5366e95b2699e8b18bc75e5f729c5",
    ];
    for (tweak, bits) in [(0, "614e9b"), (2_147_483_649, "ce4299")] {
        let mut filter = BloomFilter::new(3, 0.01, tweak, BloomFlags::All);
        filter.insert(&hex(items[0]));
        assert!(filter.contains(&hex(items[0])));
        // One byte changed: not in it (Core's test says so for this vector).
        assert!(!filter.contains(&hex("19108ad8ed9bb6274d3980bab5a85c048f0950c8")));
        filter.insert(&hex(items[1]));
        filter.insert(&hex(items[2]));
        for item in items {
            assert!(filter.contains(&hex(item)), "{item}");
        }
        let load = filter.to_filter_load();
        assert_eq!(load.filter, hex(bits), "tweak {tweak}");
        assert_eq!((load.hash_funcs, load.tweak), (5, tweak));
        assert_eq!(load.flags, BloomFlags::All);
    }
}

#[test]
fn bloom_filter_sizes_are_capped_as_cores() {
    let huge = BloomFilter::new(1_000_000, 0.000_001, 0, BloomFlags::None).to_filter_load();
    assert_eq!(huge.filter.len(), bloom::MAX_FILTER_BYTES);
    let tiny = BloomFilter::new(1, 1e-30, 0, BloomFlags::None).to_filter_load();
    assert_eq!(tiny.hash_funcs, bloom::MAX_HASH_FUNCS);
    // Zero elements is taken as one, not a division by zero.
    assert!(!BloomFilter::new(0, 0.01, 0, BloomFlags::None)
        .to_filter_load()
        .filter
        .is_empty());
}

fn script(byte: u8) -> ScriptBuf {
    let hash = bitcoin::WPubkeyHash::from_byte_array([byte; 20]);
    ScriptBuf::new_p2wpkh(&hash)
}

fn transaction(seed: u32, outputs: &[(u64, &ScriptBuf)]) -> Transaction {
    Transaction {
        version: transaction::Version::ONE,
        lock_time: LockTime::ZERO,
        input: vec![TxIn {
            previous_output: OutPoint {
                txid: bitcoin::Txid::from_byte_array([seed as u8; 32]),
                vout: seed,
            },
            script_sig: ScriptBuf::new(),
            sequence: Sequence::MAX,
            witness: Witness::new(),
        }],
        output: outputs
            .iter()
            .map(|(sats, script)| TxOut {
                value: Amount::from_sat(*sats),
                script_pubkey: (*script).clone(),
            })
            .collect(),
    }
}

fn block(txdata: Vec<Transaction>) -> Block {
    let mut block = Block {
        header: Header {
            version: Version::from_consensus(0x2000_0000),
            prev_blockhash: BlockHash::all_zeros(),
            merkle_root: TxMerkleNode::all_zeros(),
            time: 1_700_000_000,
            bits: CompactTarget::from_consensus(0x207f_ffff),
            nonce: 0,
        },
        txdata,
    };
    block.header.merkle_root = block.compute_merkle_root().unwrap();
    block
}

/// Two blocks: the first pays `ours` twice (outputs 0 and 2 of its second transaction), the
/// second pays someone else only.
fn two_blocks(ours: &ScriptBuf) -> (Block, Block) {
    let theirs = script(0x22);
    let first = block(vec![
        transaction(1, &[(5_000_000_000, &theirs)]),
        transaction(2, &[(700, ours), (800, &theirs), (900, ours)]),
        transaction(3, &[(1_000, &theirs)]),
    ]);
    let second = block(vec![transaction(4, &[(2_500_000_000, &theirs)])]);
    (first, second)
}

fn matching(block: &Block, script: &ScriptBuf) -> MerkleBlock {
    let wanted: Vec<_> = block
        .txdata
        .iter()
        .filter(|tx| tx.output.iter().any(|out| &out.script_pubkey == script))
        .map(Transaction::compute_txid)
        .collect();
    MerkleBlock::from_block_with_predicate(block, |txid| wanted.contains(txid))
}

#[test]
fn proven_outputs_become_payments_in_block_order() {
    let ours = script(0x11);
    let (first, second) = two_blocks(&ours);
    let mut collector = Collector::new(
        [(7, first.block_hash()), (8, second.block_hash())],
        ours.clone(),
    );
    collector.merkle_block(&matching(&first, &ours)).unwrap();
    collector.transaction(first.txdata[1].clone()).unwrap();
    collector.merkle_block(&matching(&second, &ours)).unwrap();
    let txid = first.txdata[1].compute_txid();
    assert_eq!(
        collector.finish(),
        Ok(vec![
            Payment {
                txid,
                vout: 0,
                amount: Amount::from_sat(700),
                height: 7
            },
            Payment {
                txid,
                vout: 2,
                amount: Amount::from_sat(900),
                height: 7
            },
        ])
    );
}

#[test]
fn a_proof_that_does_not_hash_to_the_merkle_root_is_an_error() {
    let ours = script(0x11);
    let (first, second) = two_blocks(&ours);
    let mut collector = Collector::new([(7, first.block_hash())], ours.clone());
    // The first block's header with the second block's tree: the header is one we asked for,
    // the tree hashes to another root.
    let lying = MerkleBlock {
        header: first.header,
        txn: matching(&second, &ours).txn,
    };
    assert_eq!(
        collector.merkle_block(&lying),
        Err(ProofError::BadProof {
            height: 7,
            error: MerkleBlockError::MerkleRootMismatch
        })
    );
    // A header nobody asked for.
    assert_eq!(
        collector.merkle_block(&matching(&second, &ours)),
        Err(ProofError::UnexpectedBlock(second.block_hash()))
    );
}

#[test]
fn a_transaction_the_proof_does_not_name_is_an_error() {
    let ours = script(0x11);
    let (first, _) = two_blocks(&ours);
    let mut collector = Collector::new([(7, first.block_hash())], ours.clone());
    // Before any merkleblock.
    let paying = first.txdata[1].clone();
    assert_eq!(
        collector.transaction(paying.clone()),
        Err(ProofError::Unproven(paying.compute_txid()))
    );
    collector.merkle_block(&matching(&first, &ours)).unwrap();
    // In the block, but not in the proof.
    let other = first.txdata[2].clone();
    assert_eq!(
        collector.transaction(other.clone()),
        Err(ProofError::Unproven(other.compute_txid()))
    );
    // A made-up transaction paying us: not in the proof either.
    let forged = transaction(9, &[(1_000_000, &ours)]);
    assert_eq!(
        collector.transaction(forged.clone()),
        Err(ProofError::Unproven(forged.compute_txid()))
    );
}

#[test]
fn a_missing_block_or_transaction_is_an_error_not_no_payments() {
    let ours = script(0x11);
    let (first, second) = two_blocks(&ours);
    let blocks = [(7, first.block_hash()), (8, second.block_hash())];
    // The proven transaction never came.
    let mut collector = Collector::new(blocks, ours.clone());
    collector.merkle_block(&matching(&first, &ours)).unwrap();
    collector.merkle_block(&matching(&second, &ours)).unwrap();
    assert_eq!(
        collector.finish(),
        Err(ProofError::MissingTransaction {
            txid: first.txdata[1].compute_txid(),
            height: 7
        })
    );
    // A block never came.
    let mut collector = Collector::new(blocks, ours.clone());
    collector.merkle_block(&matching(&second, &ours)).unwrap();
    assert_eq!(collector.finish(), Err(ProofError::MissingBlock(7)));
    // The same block twice.
    let mut collector = Collector::new(blocks, ours.clone());
    collector.merkle_block(&matching(&second, &ours)).unwrap();
    assert_eq!(
        collector.merkle_block(&matching(&second, &ours)),
        Err(ProofError::DuplicateBlock(8))
    );
}

#[test]
fn json_escapes_what_it_must() {
    let value = Value::Object(vec![
        (
            "text",
            Value::Str("a \"quote\", a \\ and a\nline\u{1}".to_owned()),
        ),
        ("n", Value::Num(u64::MAX)),
        (
            "list",
            Value::Array(vec![Value::Num(1), Value::Object(vec![])]),
        ),
    ]);
    assert_eq!(
        value.to_json(),
        r#"{"text":"a \"quote\", a \\ and a\nline\u0001","n":18446744073709551615,"list":[1,{}]}"#
    );
}

fn config(peer: &str) -> Config {
    let vars = HashMap::from([
        ("EDGE_PEER", peer.to_owned()),
        ("EDGE_NETWORK", "regtest".to_owned()),
        ("EDGE_DEADLINE_MS", "500".to_owned()),
    ]);
    Config::from_vars(|name| vars.get(name).cloned()).unwrap()
}

const REGTEST_ADDRESS: &str = "bcrt1qzyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3lgth6c";

#[test]
fn the_regtest_address_of_the_tests_is_a_p2wpkh_of_0x11_bytes() {
    let address = Address::from_str(REGTEST_ADDRESS)
        .unwrap()
        .require_network(Network::Regtest)
        .unwrap();
    assert_eq!(address.script_pubkey(), script(0x11));
}

#[test]
fn bad_questions_are_answered_before_the_peer_is_asked() {
    // A peer that does not exist: none of these get that far.
    let config = config("127.0.0.1:1");
    let cases = [
        ("GET", "/", 404, "no such path"),
        ("GET", "/tips", 404, "no such path"),
        ("POST", "/tip", 405, "method POST not allowed"),
        ("GET", "/payments/nonsense", 400, "bad address"),
        (
            "GET",
            "/payments/bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4",
            400,
            "is not a regtest address",
        ),
        (
            "GET",
            &format!("/payments/{REGTEST_ADDRESS}?from=x"),
            400,
            "from wants a block height",
        ),
        (
            "GET",
            &format!("/payments/{REGTEST_ADDRESS}?to=5"),
            400,
            "unknown query parameter",
        ),
    ];
    for (method, target, status, text) in cases {
        let response = answer(Ok(&config), method, target);
        assert_eq!(response.status, status, "{method} {target}: {response:?}");
        assert!(response.body.contains(text), "{target}: {}", response.body);
        assert!(response
            .body
            .starts_with(&format!("{{\"status\":{status},\"error\":")));
    }
    let response = answer(Err("EDGE_PEER is not set"), "GET", "/tip");
    assert_eq!(response.status, 500);
}

#[test]
fn configuration_errors_name_the_variable() {
    let from = |pairs: &[(&'static str, &str)]| {
        let vars: HashMap<&str, String> =
            pairs.iter().map(|(k, v)| (*k, (*v).to_owned())).collect();
        Config::from_vars(|name| vars.get(name).cloned())
    };
    assert!(from(&[]).unwrap_err().contains("EDGE_PEER"));
    let peer = ("EDGE_PEER", "127.0.0.1:18444");
    assert!(from(&[peer, ("EDGE_NETWORK", "litecoin")])
        .unwrap_err()
        .contains("EDGE_NETWORK"));
    assert!(from(&[peer, ("EDGE_CHECKPOINT", "12")])
        .unwrap_err()
        .contains("EDGE_CHECKPOINT"));
    assert!(from(&[peer, ("EDGE_DEADLINE_MS", "soon")])
        .unwrap_err()
        .contains("EDGE_DEADLINE_MS"));
    let config = from(&[
        peer,
        (
            "EDGE_CHECKPOINT",
            "100:0f9188f13cb7b2c71f2a335e3a4fc328bf5beb436012afca590b1a11466e2206",
        ),
    ])
    .unwrap();
    assert_eq!(config.checkpoint.map(|(height, _)| height), Some(100));
    assert_eq!(config.network.name, "mainnet");
    // With a checkpoint at 100, blocks below it are not known: asking for them is a 400.
    let response = answer(
        Ok(&config),
        "GET",
        "/payments/bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4?from=99",
    );
    assert_eq!(response.status, 400, "{response:?}");
    assert!(response.body.contains("below the checkpoint"));
}

#[test]
fn a_closed_port_is_a_502_with_cores_connect_text() {
    let listener = Sock::bind_listen("127.0.0.1:0".parse().unwrap(), 1).unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let response = answer(Ok(&config(&addr.to_string())), "GET", "/tip");
    assert_eq!(response.status, 502, "{response:?}");
    // Core's text; the OS's description after it differs (Windows words it its own way).
    assert!(
        response
            .body
            .contains(&format!("\"error\":\"connect() to {addr} failed: ")),
        "{}",
        response.body
    );
}

#[test]
fn a_peer_that_never_answers_is_a_504_within_the_deadline() {
    // Connects complete through the backlog; nobody accepts, so nothing is ever sent.
    let listener = Sock::bind_listen("127.0.0.1:0".parse().unwrap(), 4).unwrap();
    let addr = listener.local_addr().unwrap();
    let started = std::time::Instant::now();
    let response = answer(Ok(&config(&addr.to_string())), "GET", "/tip");
    assert_eq!(response.status, 504, "{response:?}");
    assert!(
        response.body.contains(
            "waiting for the version handshake: Receive timeout (received 0 of 24 bytes before \
             that)"
        ),
        "{}",
        response.body
    );
    // The deadline is 500 ms; the bound only catches a hang.
    assert!(started.elapsed() < Duration::from_secs(30));
}
