//! A chain of block headers that checks each header as it grows: it must build on the one
//! before it and carry the proof of work its `nBits` claim (Core's `CheckProofOfWork`), and
//! serves `getheaders` from what it holds (Core's locator handling).
//!
//! What is not checked, because a headers-only example does not need it to stay on the right
//! chain against honest-but-buggy or simply wrong peers: the difficulty schedule (that `nBits`
//! is the retarget the previous 2,016 blocks call for), timestamps, versions, and which of two
//! forks has more work (a header that forks off is refused, see [`HeaderError::Fork`]).

use std::collections::HashMap;
use std::fmt;

use bitcoin_primitives::Target;

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
/// # Errors
/// The [`PowError`] that says which.
pub fn derive_target(bits: u32, pow_limit: Target) -> Result<Target, PowError> {
    let target = Target::from_compact(bitcoin_primitives::CompactTarget::from_consensus(bits))
        .map_err(|_| PowError::InvalidCompact)?;
    if target == Target::ZERO {
        return Err(PowError::ZeroTarget);
    }
    if target > pow_limit {
        return Err(PowError::AboveLimit);
    }
    Ok(target)
}

/// Checks `header`'s proof of work: its hash, as a little-endian 256-bit number, is at most the
/// target of its `nBits`, which must be within `pow_limit` (Core's `CheckProofOfWork`).
///
/// # Errors
/// The [`PowError`] that says what is wrong.
pub fn check_proof_of_work(header: &BlockHeader, pow_limit: Target) -> Result<(), PowError> {
    check_hash_meets_bits(
        &header.block_hash(),
        header.bits.to_consensus_u32(),
        pow_limit,
    )
}

/// [`check_proof_of_work`] for a header whose `hash` is already known.
///
/// # Errors
/// The [`PowError`] that says what is wrong.
pub fn check_hash_meets_bits(
    hash: &BlockHash,
    bits: u32,
    pow_limit: Target,
) -> Result<(), PowError> {
    let target = derive_target(bits, pow_limit)?;
    if Target::from_le_bytes(hash.to_byte_array()) > target {
        return Err(PowError::HashAboveTarget);
    }
    Ok(())
}

/// Tries nonces from `header.nonce` on until the header meets its own target; `None` if no
/// nonce does (never on regtest, where every other hash meets the easiest target).
pub fn grind(mut header: BlockHeader, pow_limit: Target) -> Option<BlockHeader> {
    loop {
        match check_proof_of_work(&header, pow_limit) {
            Ok(()) => return Some(header),
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

/// Headers from genesis on, each checked before it is added.
#[derive(Debug, Clone)]
pub struct HeaderChain {
    network: &'static Network,
    pow_limit: Target,
    /// Block hashes by height; `hashes[0]` is genesis.
    hashes: Vec<BlockHash>,
    /// Headers by height minus one: genesis's own header is never sent (a locator always
    /// names it, and `headers` answers start after what the locator names).
    headers: Vec<BlockHeader>,
    /// Height of each hash in `hashes`.
    heights: HashMap<BlockHash, u32>,
}

impl HeaderChain {
    /// The chain of `network` that has only its genesis block.
    pub fn new(network: &'static Network) -> HeaderChain {
        let genesis = network.genesis();
        HeaderChain {
            network,
            pow_limit: network.pow_limit(),
            hashes: vec![genesis],
            headers: Vec::new(),
            heights: HashMap::from([(genesis, 0)]),
        }
    }

    /// The network.
    pub fn network(&self) -> &'static Network {
        self.network
    }

    /// Height of the tip (0: only genesis).
    pub fn height(&self) -> u32 {
        // At most u32::MAX headers can be added: `connect` stops there.
        u32::try_from(self.headers.len()).unwrap_or(u32::MAX)
    }

    /// Hash of the tip.
    pub fn tip(&self) -> BlockHash {
        // `hashes` starts with genesis and never shrinks.
        self.hashes[self.hashes.len() - 1]
    }

    /// The header at `height` (1 and up).
    pub fn header(&self, height: u32) -> Option<&BlockHeader> {
        self.headers
            .get(usize::try_from(height).ok()?.checked_sub(1)?)
    }

    /// The height of `hash`, if it is in the chain.
    pub fn height_of(&self, hash: &BlockHash) -> Option<u32> {
        self.heights.get(hash).copied()
    }

    /// A block locator for `getheaders` (Core's `LocatorEntries`): the tip and the ten blocks
    /// below it, then steps back that double each time, and genesis last; about
    /// 11 + log2(height) hashes.
    pub fn locator(&self) -> Vec<BlockHash> {
        let mut locator = Vec::new();
        let mut height = u64::from(self.height());
        let mut step = 1u64;
        loop {
            // `height` is at most the tip's height, an index into `hashes`.
            locator.push(self.hashes[height as usize]);
            if height == 0 {
                return locator;
            }
            height = height.saturating_sub(step);
            if locator.len() > 10 {
                step *= 2;
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
            let hash = header.block_hash();
            if self.heights.contains_key(&hash) {
                continue;
            }
            let tip = self.tip();
            let tip_height = self.height();
            let parent_height = self.heights.get(&header.prev_blockhash).copied();
            let bits = header.bits.to_consensus_u32();
            check_hash_meets_bits(&hash, bits, self.pow_limit).map_err(|problem| {
                HeaderError::ProofOfWork {
                    height: parent_height.map(|height| height.saturating_add(1)),
                    hash,
                    bits,
                    problem,
                }
            })?;
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
    /// `locator` hash the chain has (after genesis when it has none), at most
    /// [`MAX_HEADERS`], ending early at `stop` if it comes up.
    pub fn headers_after(&self, locator: &[BlockHash], stop: &BlockHash) -> &[BlockHeader] {
        let fork = locator
            .iter()
            .find_map(|hash| self.heights.get(hash))
            .copied()
            .unwrap_or(0);
        // Heights are indexes into `hashes`, so `fork` is at most `headers.len()`.
        let start = fork as usize;
        let mut end = start.saturating_add(MAX_HEADERS).min(self.headers.len());
        if let Some(&stop_height) = self.heights.get(stop) {
            if stop_height as usize > start {
                end = end.min(stop_height as usize);
            }
        }
        &self.headers[start..end]
    }
}
