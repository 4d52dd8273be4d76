//! From BIP 37 answers to proven payments, without I/O: each `merkleblock` must be for a
//! block we asked for (a header of our checked chain) and its partial merkle tree must hash to
//! that header's merkle root (rust-bitcoin's `MerkleBlock::extract_matches`); each `tx` that
//! follows must be one the tree proves; at the end every block asked for came and every
//! proven transaction arrived. Anything else is an error: a wrong or missing proof never
//! reads as "no payments".

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use bitcoin::merkle_tree::MerkleBlockError;
use bitcoin::{Amount, BlockHash, MerkleBlock, ScriptBuf, Transaction, Txid};

/// One output paying the script asked about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payment {
    /// The transaction.
    pub txid: Txid,
    /// The output's index.
    pub vout: u32,
    /// Its amount.
    pub amount: Amount,
    /// The height of the block that has it.
    pub height: u32,
}

/// Why the peer's answers do not prove what it claims.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProofError {
    /// A `merkleblock` for a block we did not ask for.
    UnexpectedBlock(BlockHash),
    /// A second `merkleblock` for the same block.
    DuplicateBlock(u32),
    /// The partial merkle tree does not hash to the header's merkle root, or is malformed.
    BadProof {
        /// The block's height.
        height: u32,
        /// What rust-bitcoin found wrong.
        error: MerkleBlockError,
    },
    /// A `tx` the preceding `merkleblock` does not prove (or none preceded it).
    Unproven(Txid),
    /// A block asked for that never came.
    MissingBlock(u32),
    /// A transaction a `merkleblock` proved that never came.
    MissingTransaction {
        /// The transaction.
        txid: Txid,
        /// The block's height.
        height: u32,
    },
}

impl fmt::Display for ProofError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProofError::UnexpectedBlock(hash) => {
                write!(f, "merkleblock for block {hash}, which was not asked for")
            }
            ProofError::DuplicateBlock(height) => {
                write!(f, "a second merkleblock for the block at height {height}")
            }
            ProofError::BadProof { height, error } => write!(
                f,
                "the merkleblock of the block at height {height} does not prove its \
                 transactions: {error}"
            ),
            ProofError::Unproven(txid) => write!(
                f,
                "transaction {txid} is not in the merkle proof of the block before it"
            ),
            ProofError::MissingBlock(height) => {
                write!(f, "no merkleblock came for the block at height {height}")
            }
            ProofError::MissingTransaction { txid, height } => write!(
                f,
                "transaction {txid}, proven in the block at height {height}, never came"
            ),
        }
    }
}

impl std::error::Error for ProofError {}

#[derive(Debug)]
struct Proven {
    /// The txids the tree proves, in block order.
    matched: Vec<Txid>,
    /// The transactions that came, by txid.
    received: HashMap<Txid, Transaction>,
}

/// Collects the answers to `getdata` (filtered blocks) for the blocks of `expected`.
#[derive(Debug)]
pub struct Collector {
    /// Height of each block asked for, by hash.
    expected: HashMap<BlockHash, u32>,
    blocks: BTreeMap<u32, Proven>,
    /// The height of the latest `merkleblock`: the block the next `tx`s belong to.
    current: Option<u32>,
    script: ScriptBuf,
}

impl Collector {
    /// Expects a `merkleblock` for each of `blocks` (height, hash: from the checked chain)
    /// and looks for outputs paying `script`.
    pub fn new(blocks: impl IntoIterator<Item = (u32, BlockHash)>, script: ScriptBuf) -> Collector {
        Collector {
            expected: blocks
                .into_iter()
                .map(|(height, hash)| (hash, height))
                .collect(),
            blocks: BTreeMap::new(),
            current: None,
            script,
        }
    }

    /// Takes a `merkleblock`.
    ///
    /// # Errors
    /// [`ProofError::UnexpectedBlock`], [`ProofError::DuplicateBlock`],
    /// [`ProofError::BadProof`].
    pub fn merkle_block(&mut self, block: &MerkleBlock) -> Result<(), ProofError> {
        let hash = block.header.block_hash();
        let height = *self
            .expected
            .get(&hash)
            .ok_or(ProofError::UnexpectedBlock(hash))?;
        // The header's hash is one of our chain's, so its merkle root is the one our checked
        // chain committed to; extract_matches hashes the partial tree up to it.
        let mut matched = Vec::new();
        let mut indexes = Vec::new();
        block
            .extract_matches(&mut matched, &mut indexes)
            .map_err(|error| ProofError::BadProof { height, error })?;
        if self.blocks.contains_key(&height) {
            return Err(ProofError::DuplicateBlock(height));
        }
        self.blocks.insert(
            height,
            Proven {
                matched,
                received: HashMap::new(),
            },
        );
        self.current = Some(height);
        Ok(())
    }

    /// Takes a `tx`, which must be one the latest `merkleblock` proves.
    ///
    /// # Errors
    /// [`ProofError::Unproven`].
    pub fn transaction(&mut self, tx: Transaction) -> Result<(), ProofError> {
        let txid = tx.compute_txid();
        let block = self
            .current
            .and_then(|height| self.blocks.get_mut(&height))
            .filter(|block| block.matched.contains(&txid))
            .ok_or(ProofError::Unproven(txid))?;
        block.received.insert(txid, tx);
        Ok(())
    }

    /// The payments, once every block and every proven transaction came, in block order and
    /// within a block in transaction order.
    ///
    /// # Errors
    /// [`ProofError::MissingBlock`], [`ProofError::MissingTransaction`].
    pub fn finish(self) -> Result<Vec<Payment>, ProofError> {
        let mut heights: Vec<u32> = self.expected.values().copied().collect();
        heights.sort_unstable();
        let mut payments = Vec::new();
        for height in heights {
            let block = self
                .blocks
                .get(&height)
                .ok_or(ProofError::MissingBlock(height))?;
            for txid in &block.matched {
                let tx = block
                    .received
                    .get(txid)
                    .ok_or(ProofError::MissingTransaction {
                        txid: *txid,
                        height,
                    })?;
                for (vout, output) in tx.output.iter().enumerate() {
                    if output.script_pubkey == self.script {
                        payments.push(Payment {
                            txid: *txid,
                            // A transaction has far fewer than 2^32 outputs (a block is at
                            // most 4 MB).
                            vout: u32::try_from(vout).unwrap_or(u32::MAX),
                            amount: output.value,
                            height,
                        });
                    }
                }
            }
        }
        Ok(payments)
    }
}
