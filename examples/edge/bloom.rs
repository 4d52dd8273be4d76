//! BIP 37 bloom filters: MurmurHash3 (x86, 32-bit) and the filter a light client loads into
//! its peer with `filterload`.
//!
//! Hand-written because rust-bitcoin 0.32 has the messages (`FilterLoad`, `BloomFlags`) but
//! no filter builder and no MurmurHash3 (its `bip158` module is the other kind of filter,
//! Golomb-coded sets). This is Core's `CBloomFilter` (`src/common/bloom.cpp`) for what a
//! client needs: size from the element count and false-positive rate, insert, contains.

use bitcoin::p2p::message_bloom::{BloomFlags, FilterLoad};

/// Most filter bytes (Core's `MAX_BLOOM_FILTER_SIZE`).
pub const MAX_FILTER_BYTES: usize = 36_000;

/// Most hash functions (Core's `MAX_HASH_FUNCS`).
pub const MAX_HASH_FUNCS: u32 = 50;

/// The seed step between hash functions (BIP 37).
const SEED_STEP: u32 = 0xfba4_c795;

/// MurmurHash3 (x86, 32-bit) of `data` with `seed`, as Core's `MurmurHash3`.
pub fn murmur3(seed: u32, data: &[u8]) -> u32 {
    const C1: u32 = 0xcc9e_2d51;
    const C2: u32 = 0x1b87_3593;
    let mut h1 = seed;
    let mut blocks = data.chunks_exact(4);
    for block in &mut blocks {
        let mut k1 = u32::from_le_bytes([block[0], block[1], block[2], block[3]]);
        k1 = k1.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2);
        h1 ^= k1;
        h1 = h1.rotate_left(13).wrapping_mul(5).wrapping_add(0xe654_6b64);
    }
    let tail = blocks.remainder();
    if !tail.is_empty() {
        let mut k1 = 0u32;
        for (index, byte) in tail.iter().enumerate() {
            k1 ^= u32::from(*byte) << (8 * index);
        }
        k1 = k1.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2);
        h1 ^= k1;
    }
    // The length goes in modulo 2^32, as Core's `uint32_t` does.
    h1 ^= data.len() as u32;
    h1 ^= h1 >> 16;
    h1 = h1.wrapping_mul(0x85eb_ca6b);
    h1 ^= h1 >> 13;
    h1 = h1.wrapping_mul(0xc2b2_ae35);
    h1 ^ (h1 >> 16)
}

/// A BIP 37 filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BloomFilter {
    bits: Vec<u8>,
    hash_funcs: u32,
    tweak: u32,
    flags: BloomFlags,
}

impl BloomFilter {
    /// A filter for `elements` items with a false-positive rate of `fp_rate`, sized as Core's
    /// constructor does, integer steps included: `-1 / ln(2)^2 * n * ln(p)` bits (at most
    /// [`MAX_FILTER_BYTES`] bytes, at least one here), and `bytes * 8 / n * ln(2)` hash
    /// functions (at most [`MAX_HASH_FUNCS`]).
    pub fn new(elements: u32, fp_rate: f64, tweak: u32, flags: BloomFlags) -> BloomFilter {
        let ln2 = std::f64::consts::LN_2;
        let elements = elements.max(1);
        let bits = (-1.0 / (ln2 * ln2) * f64::from(elements) * fp_rate.ln()) as u64;
        let bytes = (bits.min(MAX_FILTER_BYTES as u64 * 8) / 8).max(1) as usize;
        let hash_funcs = ((((bytes * 8) as u64 / u64::from(elements)) as f64 * ln2) as u32)
            .clamp(1, MAX_HASH_FUNCS);
        BloomFilter {
            bits: vec![0; bytes],
            hash_funcs,
            tweak,
            flags,
        }
    }

    fn bit_index(&self, hash_num: u32, data: &[u8]) -> usize {
        let seed = hash_num.wrapping_mul(SEED_STEP).wrapping_add(self.tweak);
        // `bits` is 1 to 36,000 bytes, so the modulus fits u32 and is not zero.
        (murmur3(seed, data) % (self.bits.len() as u32 * 8)) as usize
    }

    /// Adds `data`.
    pub fn insert(&mut self, data: &[u8]) {
        for hash_num in 0..self.hash_funcs {
            let index = self.bit_index(hash_num, data);
            self.bits[index >> 3] |= 1 << (7 & index);
        }
    }

    /// Whether `data` may be in the filter (false positives at the rate asked for); what the
    /// peer asks of it (the tests check the filter with it).
    #[allow(dead_code)]
    pub fn contains(&self, data: &[u8]) -> bool {
        (0..self.hash_funcs).all(|hash_num| {
            let index = self.bit_index(hash_num, data);
            self.bits[index >> 3] & (1 << (7 & index)) != 0
        })
    }

    /// The `filterload` message that loads this filter into a peer.
    pub fn to_filter_load(&self) -> FilterLoad {
        FilterLoad {
            filter: self.bits.clone(),
            hash_funcs: self.hash_funcs,
            tweak: self.tweak,
            flags: self.flags,
        }
    }
}
