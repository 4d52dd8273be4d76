//! The examples' header checks (examples/common/p2p/chain.rs, shared by the light client and
//! the node): nBits to target, proof of work on known mainnet headers, the chain's link checks,
//! locators and `getheaders` answers. No sockets, so these run natively and in wasmtime alike.

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
use bitcoin::{CompactTarget, Target, TxMerkleNode};
use p2p::chain::{check_proof_of_work, grind, target_to_hex, HeaderChain, HeaderError, PowError};
use p2p::framing::{BlockHash, BlockHeader, MAX_HEADERS, MAX_LOCATOR};
use p2p::network::{self, Network};

fn mainnet() -> &'static Network {
    network::by_name("mainnet").unwrap()
}

fn regtest() -> &'static Network {
    network::by_name("regtest").unwrap()
}

/// A header from its 160 hex digits, as block explorers and Core's `getblockheader false` show.
fn header_from_hex(hex: &str) -> BlockHeader {
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    encode::deserialize(&bytes).unwrap()
}

/// Core's `DeriveTarget` of compact `bits`, through the examples' `derive_target`.
fn derive_target(bits: u32, pow_limit: Target) -> Result<Target, PowError> {
    p2p::chain::derive_target(CompactTarget::from_consensus(bits), pow_limit)
}

// Mainnet headers: genesis, block 1, and block 32256, the first with a harder target than the
// limit (the first difficulty change, nBits 0x1d00d86a).
const GENESIS: &str = "0100000000000000000000000000000000000000000000000000000000000000000000003ba3edfd7a7b12b27ac72c3e67768f617fc81bc3888a51323a9fb8aa4b1e5e4a29ab5f49ffff001d1dac2b7c";
const BLOCK_1: &str = "010000006fe28c0ab6f1b372c1a6a246ae63f74f931e8365e15a089c68d6190000000000982051fd1e4ba744bbbe680e1fee14677ba1a3c3540bf7b1cdb606e857233e0e61bc6649ffff001d01e36299";
const BLOCK_32256: &str = "010000004b0360d834a330ec7833e30e1f523ee05a0793361e29a73421964f980000000027b64a020af294e903feed93768705336a20090612a043f47af462a2f5e5b564f8ee3a4b6ad8001dd3a43707";

/// `count` regtest headers on genesis, each mined.
fn regtest_chain(count: u32) -> Vec<BlockHeader> {
    let mut prev = regtest().genesis();
    (1..=count)
        .map(|height| {
            let header = BlockHeader {
                version: Version::from_consensus(0x2000_0000),
                prev_blockhash: prev,
                merkle_root: TxMerkleNode::from_byte_array([height as u8; 32]),
                time: 1_700_000_000 + height,
                bits: CompactTarget::from_consensus(0x207f_ffff),
                nonce: 0,
            };
            let mined = grind(header, regtest().pow_limit()).unwrap();
            prev = mined.block_hash();
            mined
        })
        .collect()
}

/// A copy of `header` with the first nonce from `header.nonce + 1` whose hash misses the target.
fn without_proof_of_work(mut header: BlockHeader, pow_limit: Target) -> BlockHeader {
    header.nonce = header.nonce.wrapping_add(1);
    while check_proof_of_work(&header, pow_limit).is_ok() {
        header.nonce = header.nonce.wrapping_add(1);
    }
    header
}

#[test]
fn compact_bits_decode_to_the_targets_core_computes() {
    let limit = mainnet().pow_limit();
    let cases = [
        (
            0x1d00ffff,
            "00000000ffff0000000000000000000000000000000000000000000000000000",
        ),
        (
            0x1d00d86a,
            "00000000d86a0000000000000000000000000000000000000000000000000000",
        ),
        (
            0x1b04864c,
            "000000000004864c000000000000000000000000000000000000000000000000",
        ),
    ];
    for (bits, hex) in cases {
        assert_eq!(
            derive_target(bits, limit).map(target_to_hex).as_deref(),
            Ok(hex),
            "{bits:#x}"
        );
    }
    assert_eq!(
        target_to_hex(derive_target(0x207fffff, regtest().pow_limit()).unwrap()),
        "7fffff0000000000000000000000000000000000000000000000000000000000"
    );
    // Small exponents shift the mantissa right (Core's SetCompact).
    assert_eq!(
        derive_target(0x03123456, limit).map(target_to_hex),
        Ok(format!("{:0>64}", "123456"))
    );
    assert_eq!(
        derive_target(0x02123456, limit).map(target_to_hex),
        Ok(format!("{:0>64}", "1234"))
    );
}

#[test]
fn compact_bits_that_core_refuses_are_refused() {
    let limit = mainnet().pow_limit();
    // The sign bit with a non-zero mantissa: negative.
    assert_eq!(
        derive_target(0x04923456, limit),
        Err(PowError::InvalidCompact)
    );
    // Past 256 bits.
    assert_eq!(
        derive_target(0xff123456, limit),
        Err(PowError::InvalidCompact)
    );
    assert_eq!(
        derive_target(0x21010000, limit),
        Err(PowError::InvalidCompact)
    );
    // Zero, however it is spelt.
    assert_eq!(derive_target(0x00000000, limit), Err(PowError::ZeroTarget));
    assert_eq!(derive_target(0x01003456, limit), Err(PowError::ZeroTarget));
    assert_eq!(derive_target(0x1d000000, limit), Err(PowError::ZeroTarget));
    // One step easier than mainnet's limit, and regtest's easiest target on mainnet.
    assert_eq!(derive_target(0x1d010000, limit), Err(PowError::AboveLimit));
    assert_eq!(derive_target(0x207fffff, limit), Err(PowError::AboveLimit));
    // Regtest's own limit is 0x7fffff00...00 (as nBits say it): 0x207fffff is within it,
    // 0x20923456 is negative, 0x2100ffff is above it. rust-bitcoin's Target::from_compact
    // alone would take the negative one as zero and a past-256-bit one as a small target.
    let regtest_limit = regtest().pow_limit();
    assert!(derive_target(0x207fffff, regtest_limit).is_ok());
    assert_eq!(
        derive_target(0x20923456, regtest_limit),
        Err(PowError::InvalidCompact)
    );
    assert_eq!(
        derive_target(0x2100ffff, regtest_limit),
        Err(PowError::AboveLimit)
    );
}

#[test]
fn known_mainnet_headers_have_their_proof_of_work() {
    let limit = mainnet().pow_limit();
    let expected = [
        (
            GENESIS,
            "000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f",
        ),
        (
            BLOCK_1,
            "00000000839a8e6886ab5951d76f411475428afc90947ee320161bbf18eb6048",
        ),
        (
            BLOCK_32256,
            "000000004f2886a170adb7204cb0c7a824217dd24d11a74423d564c4e0904967",
        ),
    ];
    for (hex, hash) in expected {
        let header = header_from_hex(hex);
        assert_eq!(header.block_hash().to_string(), hash);
        assert_eq!(
            check_proof_of_work(&header, limit),
            Ok(header.block_hash()),
            "{hash}"
        );
    }
    assert_eq!(header_from_hex(BLOCK_32256).bits.to_consensus(), 0x1d00d86a);
    assert_eq!(header_from_hex(BLOCK_1).prev_blockhash, mainnet().genesis());
}

#[test]
fn a_changed_mainnet_header_loses_its_proof_of_work() {
    let limit = mainnet().pow_limit();
    for hex in [GENESIS, BLOCK_1, BLOCK_32256] {
        let mut header = header_from_hex(hex);
        header.nonce = header.nonce.wrapping_add(1);
        assert_eq!(
            check_proof_of_work(&header, limit),
            Err(PowError::HashAboveTarget)
        );
    }
    // nBits are hashed too: a block 32256 that claims the easier target of its predecessors
    // has another hash, which misses it; one that claims a target easier than the limit is
    // refused before its hash is looked at.
    let mut header = header_from_hex(BLOCK_32256);
    header.bits = CompactTarget::from_consensus(0x1d00ffff);
    assert_eq!(
        check_proof_of_work(&header, limit),
        Err(PowError::HashAboveTarget)
    );
    header.bits = CompactTarget::from_consensus(0x1d01ffff);
    assert_eq!(
        check_proof_of_work(&header, limit),
        Err(PowError::AboveLimit)
    );
}

#[test]
fn regtest_headers_are_refused_on_mainnet() {
    let header = regtest_chain(1)[0];
    assert_eq!(
        check_proof_of_work(&header, regtest().pow_limit()),
        Ok(header.block_hash())
    );
    assert_eq!(
        check_proof_of_work(&header, mainnet().pow_limit()),
        Err(PowError::AboveLimit)
    );
}

#[test]
fn chain_takes_headers_that_link_and_have_proof_of_work() {
    let headers = regtest_chain(30);
    let mut chain = HeaderChain::new(regtest());
    assert_eq!((chain.height(), chain.tip()), (0, regtest().genesis()));
    assert_eq!(chain.connect(&headers[..10]), Ok(10));
    assert_eq!(chain.connect(&headers[10..]), Ok(20));
    assert_eq!(chain.height(), 30);
    assert_eq!(chain.tip(), headers[29].block_hash());
    assert_eq!(chain.header(1), Some(&headers[0]));
    assert_eq!(chain.header(0), None);
    assert_eq!(chain.header(31), None);
    assert_eq!(chain.height_of(&headers[4].block_hash()), Some(5));
    // The same headers again (another peer, an overlapping answer): nothing new, no error.
    assert_eq!(chain.connect(&headers), Ok(0));
    assert_eq!(chain.connect(&[]), Ok(0));
    assert_eq!(chain.height(), 30);
}

#[test]
fn chain_refuses_a_header_that_does_not_build_on_the_tip() {
    let headers = regtest_chain(10);
    let mut chain = HeaderChain::new(regtest());
    // Header 2 without header 1.
    let err = chain.connect(&headers[1..]).unwrap_err();
    assert_eq!(
        err,
        HeaderError::NotConnected {
            hash: headers[1].block_hash(),
            prev: headers[0].block_hash(),
            tip: regtest().genesis(),
            tip_height: 0,
        }
    );
    assert_eq!(
        err.to_string(),
        format!(
            "invalid header {}: it builds on {}, a block not in our chain (whose tip is {} at \
             height 0)",
            headers[1].block_hash(),
            headers[0].block_hash(),
            regtest().genesis()
        )
    );
    assert_eq!(chain.height(), 0);

    // A gap in the middle: the headers before it stay, the rest is refused.
    let mut gapped = headers[..4].to_vec();
    gapped.extend_from_slice(&headers[5..]);
    assert!(matches!(
        chain.connect(&gapped),
        Err(HeaderError::NotConnected { tip_height: 4, .. })
    ));
    assert_eq!(chain.height(), 4);
    assert_eq!(chain.connect(&headers), Ok(6));
}

#[test]
fn chain_refuses_a_header_without_proof_of_work() {
    let mut headers = regtest_chain(3);
    let spoiled = without_proof_of_work(headers[1], regtest().pow_limit());
    headers[1] = spoiled;
    let mut chain = HeaderChain::new(regtest());
    let err = chain.connect(&headers).unwrap_err();
    assert_eq!(
        err,
        HeaderError::ProofOfWork {
            height: Some(2),
            hash: spoiled.block_hash(),
            bits: 0x207fffff,
            problem: PowError::HashAboveTarget,
        }
    );
    assert_eq!(
        err.to_string(),
        format!(
            "invalid header {} at height 2 (nBits 0x207fffff): its hash is above its target: \
             no proof of work",
            spoiled.block_hash()
        )
    );
    assert_eq!(chain.height(), 1);

    // A header whose nBits are easier than regtest allows, however good its hash.
    let mut easy = regtest_chain(1)[0];
    easy.bits = CompactTarget::from_consensus(0x2100ffff);
    let err = HeaderChain::new(regtest()).connect(&[easy]).unwrap_err();
    assert!(matches!(
        err,
        HeaderError::ProofOfWork {
            problem: PowError::AboveLimit,
            ..
        }
    ));
    assert!(err
        .to_string()
        .ends_with("its target is above the network's proof-of-work limit"));
}

#[test]
fn chain_refuses_a_fork_off_its_tip() {
    let headers = regtest_chain(5);
    let mut chain = HeaderChain::new(regtest());
    chain.connect(&headers).unwrap();
    // Another block at height 3, on block 2.
    let mut rival = headers[2];
    rival.time += 1;
    let rival = grind(rival, regtest().pow_limit()).unwrap();
    assert_eq!(
        chain.connect(&[rival]),
        Err(HeaderError::Fork {
            hash: rival.block_hash(),
            fork_height: 2,
            tip_height: 5,
        })
    );
    assert_eq!(chain.height(), 5);
}

#[test]
fn proof_of_work_is_checked_before_the_link() {
    let headers = regtest_chain(5);
    let mut chain = HeaderChain::new(regtest());
    chain.connect(&headers).unwrap();
    let pow_limit = regtest().pow_limit();
    // On a known block below the tip, without proof of work: the proof of work is what is
    // wrong, at the height it would have had.
    let spoiled = without_proof_of_work(headers[2], pow_limit);
    assert!(matches!(
        chain.connect(&[spoiled]),
        Err(HeaderError::ProofOfWork {
            height: Some(3),
            problem: PowError::HashAboveTarget,
            ..
        })
    ));
    // On an unknown block, without proof of work: no height to give.
    let mut orphan = headers[4];
    orphan.prev_blockhash = BlockHash::from_byte_array([7; 32]);
    let orphan = without_proof_of_work(orphan, pow_limit);
    let err = chain.connect(&[orphan]).unwrap_err();
    assert!(matches!(err, HeaderError::ProofOfWork { height: None, .. }));
    assert_eq!(
        err.to_string(),
        format!(
            "invalid header {} (nBits 0x207fffff): its hash is above its target: no proof of work",
            orphan.block_hash()
        )
    );
    assert_eq!(chain.height(), 5);
}

#[test]
fn locator_steps_back_like_cores_and_ends_on_genesis() {
    let headers = regtest_chain(100);
    let mut chain = HeaderChain::new(regtest());
    assert_eq!(chain.locator(), [regtest().genesis()]);
    chain.connect(&headers).unwrap();
    let heights: Vec<u32> = chain
        .locator()
        .iter()
        .map(|hash| chain.height_of(hash).unwrap())
        .collect();
    // The tip and ten one-block steps, then doubling steps, then genesis.
    assert_eq!(
        heights,
        [100, 99, 98, 97, 96, 95, 94, 93, 92, 91, 90, 89, 87, 83, 75, 59, 27, 0]
    );
    assert!(heights.len() <= MAX_LOCATOR);
}

#[test]
fn getheaders_is_answered_from_the_first_known_locator_hash() {
    let headers = regtest_chain(2_500);
    let mut server = HeaderChain::new(regtest());
    server.connect(&headers).unwrap();
    let genesis = regtest().genesis();
    let zero = BlockHash::all_zeros();

    // From genesis: a full answer of 2,000.
    let answer = server.headers_after(&[genesis], &zero);
    assert_eq!(answer, &headers[..MAX_HEADERS]);
    // From a hash the server has, after unknown ones.
    let unknown = BlockHash::from_str(&"11".repeat(32)).unwrap();
    let answer = server.headers_after(&[unknown, headers[2_099].block_hash(), genesis], &zero);
    assert_eq!(answer, &headers[2_100..]);
    // No hash known: from genesis, as Core.
    assert_eq!(server.headers_after(&[unknown], &zero).len(), MAX_HEADERS);
    assert_eq!(server.headers_after(&[], &zero).len(), MAX_HEADERS);
    // The tip: nothing after it.
    assert!(server
        .headers_after(&[headers[2_499].block_hash()], &zero)
        .is_empty());
    // A stop hash ends the answer there, included.
    let answer = server.headers_after(&[genesis], &headers[9].block_hash());
    assert_eq!(answer, &headers[..10]);
    // A stop hash below the start is ignored.
    let answer = server.headers_after(&[headers[19].block_hash()], &headers[9].block_hash());
    assert_eq!(answer, &headers[20..2_020]);
}

#[test]
fn a_client_syncs_4500_headers_in_three_rounds() {
    let mut server = HeaderChain::new(regtest());
    server.connect(&regtest_chain(4_500)).unwrap();
    let mut client = HeaderChain::new(regtest());
    let mut rounds = 0;
    loop {
        rounds += 1;
        let answer = server.headers_after(&client.locator(), &BlockHash::all_zeros());
        client.connect(answer).unwrap();
        if answer.len() < MAX_HEADERS {
            break;
        }
    }
    assert_eq!(rounds, 3);
    assert_eq!((client.height(), client.tip()), (4_500, server.tip()));
}

#[test]
fn a_chain_from_a_checkpoint_syncs_the_rest_and_locates_from_there() {
    let headers = regtest_chain(3_000);
    let mut server = HeaderChain::new(regtest());
    server.connect(&headers).unwrap();
    // A client that trusts block 1,000 (as the edge client's EDGE_CHECKPOINT says).
    let checkpoint = headers[999].block_hash();
    let mut client = HeaderChain::from_checkpoint(regtest(), 1_000, checkpoint);
    assert_eq!(
        (client.base(), client.height(), client.tip()),
        (1_000, 1_000, checkpoint)
    );
    assert_eq!(client.locator(), [checkpoint]);
    assert_eq!(client.header(1_000), None);
    assert_eq!(client.hash_at(1_000), Some(checkpoint));
    assert_eq!(client.hash_at(999), None);
    // Headers below the checkpoint do not connect: nothing to build them on.
    assert!(matches!(
        client.connect(&headers[..5]),
        Err(HeaderError::NotConnected {
            tip_height: 1_000,
            ..
        })
    ));
    let mut rounds = 0;
    loop {
        rounds += 1;
        let answer = server.headers_after(&client.locator(), &BlockHash::all_zeros());
        client.connect(answer).unwrap();
        if answer.len() < MAX_HEADERS {
            break;
        }
    }
    assert_eq!(rounds, 2);
    assert_eq!((client.height(), client.tip()), (3_000, server.tip()));
    assert_eq!(client.header(1_001), Some(&headers[1_000]));
    assert_eq!(client.hash_at(3_000), Some(server.tip()));
    assert_eq!(*client.locator().last().unwrap(), checkpoint);
    // Served from the checkpoint on: a locator it does not know starts after the checkpoint.
    let unknown = BlockHash::from_byte_array([7; 32]);
    assert_eq!(
        client.headers_after(&[unknown], &BlockHash::all_zeros()),
        &headers[1_000..3_000]
    );
}
