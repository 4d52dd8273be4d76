//! A chain of block headers that checks each header as it grows: it must build on the one
//! before it and carry the proof of work its `nBits` claim (Core's `CheckProofOfWork`), and
//! serves `getheaders` from what it holds (Core's locator handling).
//!
//! What is not checked, because a headers-only example does not need it to stay on the right
//! chain against honest-but-buggy or simply wrong peers: the difficulty schedule (that `nBits`
//! is the retarget the previous 2,016 blocks call for), timestamps, versions, and which of two
//! forks has more work (a header that forks off is refused, see [`HeaderError::Fork`]).
//!
//! The headers, their hashes and `validate_pow` are rust-bitcoin's; the chain, the locator and
//! the `getheaders` answer are written here, as rust-bitcoin 0.32 has no header chain (that is
//! a node's job, which it leaves to its users).

use std::collections::HashMap;
use std::fmt;

use bitcoin::{CompactTarget, Target};

use super::framing::{to_hex, BlockHash, BlockHeader, MAX_HEADERS};
use super::network::Network;

/// Why a header's proof of work does not hold (Core's `DeriveTarget` and `CheckProofOfWork`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PowError {
    /// `nBits` decode to a negative number or one past 256 bits.
    InvalidCompact,
    /// `nBits` decode to zero, a target no hash can meet.
    ZeroTarget,
    /// The target is easier than the network allows.
    AboveLimit,
    /// The header's hash, read as a little-endian 256-bit number, is above its target.
    HashAboveTarget,
}

impl fmt::Display for PowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PowError::InvalidCompact => {
                "its nBits are not a valid target (negative or overflowing)"
            }
            PowError::ZeroTarget => "its nBits are a target of zero",
            PowError::AboveLimit => "its target is above the network's proof-of-work limit",
            PowError::HashAboveTarget => "its hash is above its target: no proof of work",
        })
    }
}

/// The 256-bit target that compact `bits` stand for, as Core's `DeriveTarget`: refused when
/// negative, overflowing, zero, or above `pow_limit`.
///
/// The negative and overflow checks are Core's `arith_uint256::SetCompact`, written out here
/// because rust-bitcoin's `Target::from_compact` does not refuse those values: it turns a
/// negative mantissa into zero and masks an overflowing exponent's shift (so
/// `0x2100ffff` would come out as a small target instead of an error).
///
/// # Errors
/// The [`PowError`] that says which.
pub fn derive_target(bits: CompactTarget, pow_limit: Target) -> Result<Target, PowError> {
    let compact = bits.to_consensus();
    let size = compact >> 24;
    let word = compact & 0x007f_ffff;
    let negative = word != 0 && compact & 0x0080_0000 != 0;
    let overflow =
        word != 0 && (size > 34 || (word > 0xff && size > 33) || (word > 0xffff && size > 32));
    if negative || overflow {
        return Err(PowError::InvalidCompact);
    }
    let target = Target::from_compact(bits);
    if target == Target::ZERO {
        return Err(PowError::ZeroTarget);
    }
    if target > pow_limit {
        return Err(PowError::AboveLimit);
    }
    Ok(target)
}

/// Checks `header`'s proof of work (Core's `CheckProofOfWork`): the target of its `nBits`,
/// which must be within `pow_limit`, then rust-bitcoin's `Header::validate_pow`, which hashes
/// the header and compares the hash, as a little-endian 256-bit number, with that target.
/// The header's hash, when it holds.
///
/// # Errors
/// The [`PowError`] that says what is wrong.
pub fn check_proof_of_work(header: &BlockHeader, pow_limit: Target) -> Result<BlockHash, PowError> {
    let target = derive_target(header.bits, pow_limit)?;
    // The target came from the header's own bits, so `BadTarget` cannot be the error.
    header
        .validate_pow(target)
        .map_err(|_| PowError::HashAboveTarget)
}

/// Tries nonces from `header.nonce` on until the header meets its own target; `None` if no
/// nonce does (never on regtest, where every other hash meets the easiest target).
pub fn grind(mut header: BlockHeader, pow_limit: Target) -> Option<BlockHeader> {
    loop {
        match check_proof_of_work(&header, pow_limit) {
            Ok(_) => return Some(header),
            Err(PowError::HashAboveTarget) => header.nonce = header.nonce.checked_add(1)?,
            Err(_) => return None,
        }
    }
}

/// A target as 64 hex digits, most significant first, as Core displays it.
pub fn target_to_hex(target: Target) -> String {
    to_hex(&target.to_be_bytes())
}

/// Why a header was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderError {
    /// The header builds on a block that is not in the chain.
    NotConnected {
        /// Its hash.
        hash: BlockHash,
        /// The block it says it builds on.
        prev: BlockHash,
        /// The block it had to build on: the chain's tip.
        tip: BlockHash,
        /// The tip's height.
        tip_height: u32,
    },
    /// The header builds on a block of the chain other than the tip: a fork, which this
    /// example does not follow.
    Fork {
        /// Its hash.
        hash: BlockHash,
        /// Height of the block it builds on.
        fork_height: u32,
        /// Height of the chain's tip.
        tip_height: u32,
    },
    /// The header's proof of work does not hold.
    ProofOfWork {
        /// Its height, when it builds on a block of the chain.
        height: Option<u32>,
        /// Its hash.
        hash: BlockHash,
        /// Its `nBits`.
        bits: u32,
        /// What is wrong.
        problem: PowError,
    },
}

impl fmt::Display for HeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeaderError::NotConnected {
                hash,
                prev,
                tip,
                tip_height,
            } => write!(
                f,
                "invalid header {hash}: it builds on {prev}, a block not in our chain (whose \
                 tip is {tip} at height {tip_height})"
            ),
            HeaderError::Fork {
                hash,
                fork_height,
                tip_height,
            } => write!(
                f,
                "header {hash} forks off at height {fork_height}, below the tip at \
                 {tip_height} (this example follows one chain)"
            ),
            HeaderError::ProofOfWork {
                height: Some(height),
                hash,
                bits,
                problem,
            } => write!(
                f,
                "invalid header {hash} at height {height} (nBits {bits:#010x}): {problem}"
            ),
            HeaderError::ProofOfWork {
                height: None,
                hash,
                bits,
                problem,
            } => write!(f, "invalid header {hash} (nBits {bits:#010x}): {problem}"),
        }
    }
}

impl std::error::Error for HeaderError {}

/// Headers from genesis (or a checkpoint) on, each checked before it is added.
#[derive(Debug, Clone)]
pub struct HeaderChain {
    network: &'static Network,
    pow_limit: Target,
    /// Height of `hashes[0]`: 0 for genesis, else a checkpoint's.
    base: u32,
    /// Block hashes by height minus `base`; `hashes[0]` is genesis or the checkpoint.
    hashes: Vec<BlockHash>,
    /// Headers by height minus `base` minus one: the base block's own header is never sent
    /// (a locator always names it, and `headers` answers start after what the locator names).
    headers: Vec<BlockHeader>,
    /// Height of each hash in `hashes`.
    heights: HashMap<BlockHash, u32>,
}

impl HeaderChain {
    /// The chain of `network` that has only its genesis block.
    pub fn new(network: &'static Network) -> HeaderChain {
        HeaderChain::from_checkpoint(network, 0, network.genesis())
    }

    /// A chain that starts at a block the user trusts, `hash` at `height`, as a light client
    /// configured with a checkpoint does: headers are asked for and checked from there on.
    pub fn from_checkpoint(network: &'static Network, height: u32, hash: BlockHash) -> HeaderChain {
        HeaderChain {
            network,
            pow_limit: network.pow_limit(),
            base: height,
            hashes: vec![hash],
            headers: Vec::new(),
            heights: HashMap::from([(hash, height)]),
        }
    }

    /// The network.
    pub fn network(&self) -> &'static Network {
        self.network
    }

    /// Height of the genesis block or checkpoint the chain starts at.
    pub fn base(&self) -> u32 {
        self.base
    }

    /// Height of the tip (the base's when no header was added).
    pub fn height(&self) -> u32 {
        // At most u32::MAX - base headers can be added: `connect` stops there.
        self.base
            .saturating_add(u32::try_from(self.headers.len()).unwrap_or(u32::MAX))
    }

    /// Hash of the tip.
    pub fn tip(&self) -> BlockHash {
        // `hashes` starts with the base block and never shrinks.
        self.hashes[self.hashes.len() - 1]
    }

    /// The header at `height` (above the base).
    pub fn header(&self, height: u32) -> Option<&BlockHeader> {
        let index = usize::try_from(height.checked_sub(self.base)?).ok()?;
        self.headers.get(index.checked_sub(1)?)
    }

    /// The hash of the block at `height` (the base's included).
    pub fn hash_at(&self, height: u32) -> Option<BlockHash> {
        let index = usize::try_from(height.checked_sub(self.base)?).ok()?;
        self.hashes.get(index).copied()
    }

    /// The height of `hash`, if it is in the chain.
    pub fn height_of(&self, hash: &BlockHash) -> Option<u32> {
        self.heights.get(hash).copied()
    }

    /// A block locator for `getheaders` (Core's `LocatorEntries`): the tip and the ten blocks
    /// below it, then steps back that double each time, and the base block last; about
    /// 11 + log2(height) hashes.
    pub fn locator(&self) -> Vec<BlockHash> {
        let mut locator = Vec::new();
        // Indexes into `hashes` (heights minus the base).
        let mut index = self.hashes.len() - 1;
        let mut step = 1usize;
        loop {
            locator.push(self.hashes[index]);
            if index == 0 {
                return locator;
            }
            index = index.saturating_sub(step);
            if locator.len() > 10 {
                step = step.saturating_mul(2);
            }
        }
    }

    /// Adds `headers`, which must continue the chain: each builds on the one before it, the
    /// first on a block the chain has. Headers the chain already has are skipped (an answer
    /// may start below the tip, or two peers may send the same). Each new header's proof of
    /// work is checked first (it needs no context, as in Core's `CheckBlockHeader`), then its
    /// link to the tip. On the first header that fails, the ones before it stay added.
    /// Returns how many were new.
    ///
    /// # Errors
    /// The [`HeaderError`] of the first header refused.
    pub fn connect(&mut self, headers: &[BlockHeader]) -> Result<usize, HeaderError> {
        let mut added = 0;
        for header in headers {
            let tip = self.tip();
            let tip_height = self.height();
            let parent_height = self.heights.get(&header.prev_blockhash).copied();
            let hash = match check_proof_of_work(header, self.pow_limit) {
                Ok(hash) => hash,
                Err(problem) => {
                    return Err(HeaderError::ProofOfWork {
                        height: parent_height.map(|height| height.saturating_add(1)),
                        hash: header.block_hash(),
                        bits: header.bits.to_consensus(),
                        problem,
                    })
                }
            };
            if self.heights.contains_key(&hash) {
                continue;
            }
            match parent_height {
                Some(_) if header.prev_blockhash == tip => {}
                Some(fork_height) => {
                    return Err(HeaderError::Fork {
                        hash,
                        fork_height,
                        tip_height,
                    })
                }
                None => {
                    return Err(HeaderError::NotConnected {
                        hash,
                        prev: header.prev_blockhash,
                        tip,
                        tip_height,
                    })
                }
            }
            let Some(height) = tip_height.checked_add(1) else {
                break;
            };
            self.hashes.push(hash);
            self.headers.push(*header);
            self.heights.insert(hash, height);
            added += 1;
        }
        Ok(added)
    }

    /// The answer to `getheaders` (Core's `ProcessGetHeaders`): the headers after the first
    /// `locator` hash the chain has (after the base block when it has none), at most
    /// [`MAX_HEADERS`], ending early at `stop` if it comes up.
    pub fn headers_after(&self, locator: &[BlockHash], stop: &BlockHash) -> &[BlockHeader] {
        let fork = locator
            .iter()
            .find_map(|hash| self.heights.get(hash))
            .copied()
            .unwrap_or(self.base);
        // Heights in `heights` are at least `base` and index `hashes`, so `start` is at most
        // `headers.len()`.
        let start = (fork - self.base) as usize;
        let mut end = start.saturating_add(MAX_HEADERS).min(self.headers.len());
        if let Some(&stop_height) = self.heights.get(stop) {
            let stop_index = (stop_height - self.base) as usize;
            if stop_index > start {
                end = end.min(stop_index);
            }
        }
        &self.headers[start..end]
    }
}

/// A chain of `count` headers on `network`'s genesis at its easiest target, each mined (its
/// nonce ground until its hash meets the target: about two tries on regtest). Fixed times and
/// merkle roots, so the same chain, hash for hash, on every run and host: what the embedded
/// peers serve.
///
/// # Errors
/// When the network's easiest target cannot be met by grinding (not regtest), or a made-up
/// header does not connect (a bug).
pub fn mine_chain(network: &'static Network, count: u32) -> Result<HeaderChain, String> {
    use bitcoin::block::Version;
    use bitcoin::hashes::{sha256d, Hash};
    use bitcoin::TxMerkleNode;

    let mut chain = HeaderChain::new(network);
    let pow_limit = network.pow_limit();
    for height in 1..=count {
        let header = BlockHeader {
            version: Version::from_consensus(0x2000_0000),
            prev_blockhash: chain.tip(),
            // u32 heights: the same bytes (and so the same hashes) on 32- and 64-bit hosts.
            merkle_root: TxMerkleNode::from_byte_array(
                sha256d::Hash::hash(&height.to_le_bytes()).to_byte_array(),
            ),
            time: 1_700_000_000_u32.saturating_add(height.saturating_mul(600)),
            bits: pow_limit.to_compact_lossy(),
            nonce: 0,
        };
        let mined = grind(header, pow_limit)
            .ok_or_else(|| format!("cannot mine a {} header here", network.name))?;
        chain.connect(&[mined]).map_err(|err| err.to_string())?;
    }
    Ok(chain)
}
