//! Blocks: the header (hashed with SHA-256 and mined for proof of work), the producer's
//! signature over the header hash, and the transactions.

use serde::{Deserialize, Serialize};
use sha2::block_api::compress256;

use crate::crypto::{signing_message, Domain, KeyPair, PublicKey, Signature, SignatureError};
use crate::encoding::{Decode, Decoder, Encode, Encoder};
use crate::error::DecodeError;
use crate::hash::Hash;
use crate::merkle::merkle_root;
use crate::tx::{Transaction, MIN_TX_ENCODED_LEN};

/// The header version this code produces and accepts.
pub const BLOCK_VERSION: u32 = 2;

/// Size of the canonical header encoding in bytes.
pub const HEADER_LEN: usize = 4 + 8 + 8 + 32 + 32 + 32 + 8 + 4 + 8;

/// Offset of the nonce in the canonical header: it is the last field, so that a miner hashes
/// everything before it once (two whole SHA-256 blocks) and only the final compression per
/// attempt.
pub const NONCE_OFFSET: usize = HEADER_LEN - 8;
// The midstate covers whole SHA-256 blocks and the nonce fits the final one.
const _: () = assert!(NONCE_OFFSET == 2 * 64 && HEADER_LEN - NONCE_OFFSET + 9 <= 64);

/// The SHA-256 state after the first [`NONCE_OFFSET`] bytes of a header (two whole 64-byte
/// blocks), and the padded final block with the nonce left to fill: hashing a nonce from it is
/// one compression instead of three, and gives exactly [`BlockHeader::hash`].
#[derive(Clone)]
pub struct PowMidstate {
    state: [u32; 8],
    tail: [u8; 64],
}

/// SHA-256's initial hash value (FIPS 180-4 §5.3.3).
const SHA256_IV: [u32; 8] = [
    0x6a09_e667,
    0xbb67_ae85,
    0x3c6e_f372,
    0xa54f_f53a,
    0x510e_527f,
    0x9b05_688c,
    0x1f83_d9ab,
    0x5be0_cd19,
];

impl PowMidstate {
    /// The midstate of `header` (its nonce is ignored).
    pub fn new(header: &BlockHeader) -> PowMidstate {
        let bytes = header.canonical_bytes();
        let mut state = SHA256_IV;
        let mut blocks = [[0u8; 64]; 2];
        blocks[0].copy_from_slice(&bytes[..64]);
        blocks[1].copy_from_slice(&bytes[64..NONCE_OFFSET]);
        compress256(&mut state, &blocks);
        // The final block: nonce (8 bytes), the 0x80 pad byte, zeros, the message length in
        // bits as a big-endian u64 (FIPS 180-4 §5.1.1).
        let mut tail = [0u8; 64];
        tail[8] = 0x80;
        tail[56..].copy_from_slice(&((HEADER_LEN as u64) * 8).to_be_bytes());
        PowMidstate { state, tail }
    }

    /// The hash of the header with `nonce`.
    pub fn hash(&self, nonce: u64) -> Hash {
        let mut state = self.state;
        let mut block = self.tail;
        block[..8].copy_from_slice(&nonce.to_be_bytes());
        compress256(&mut state, &[block]);
        let mut out = [0u8; 32];
        for (o, w) in out.chunks_exact_mut(4).zip(state) {
            o.copy_from_slice(&w.to_be_bytes());
        }
        Hash(out)
    }
}

impl std::fmt::Debug for PowMidstate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PowMidstate")
    }
}

/// A block header. Its canonical encoding is fixed-size ([`HEADER_LEN`] bytes), fields in this order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlockHeader {
    /// Format version ([`BLOCK_VERSION`]).
    pub version: u32,
    /// Height: parent index + 1; the genesis block is 0.
    pub index: u64,
    /// The slot this block was produced in.
    pub slot: u64,
    /// Hash of the parent block.
    pub prev_hash: Hash,
    /// Merkle root of the transaction ids.
    pub tx_root: Hash,
    /// The slot leader that produced and signed the block.
    pub producer: PublicKey,
    /// Producer's wall clock at production, unix milliseconds (informational).
    pub timestamp: u64,
    /// Proof-of-work difficulty: leading zero hex digits required of the hash.
    pub difficulty: u32,
    /// Proof-of-work nonce.
    pub nonce: u64,
}

impl Encode for BlockHeader {
    fn encode(&self, e: &mut Encoder) {
        e.u32(self.version)
            .u64(self.index)
            .u64(self.slot)
            .hash(&self.prev_hash)
            .hash(&self.tx_root)
            .key(&self.producer)
            .u64(self.timestamp)
            .u32(self.difficulty)
            .u64(self.nonce);
    }
}

impl Decode for BlockHeader {
    fn decode(d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        Ok(BlockHeader {
            version: d.u32()?,
            index: d.u64()?,
            slot: d.u64()?,
            prev_hash: d.hash()?,
            tx_root: d.hash()?,
            producer: d.key()?,
            timestamp: d.u64()?,
            difficulty: d.u32()?,
            nonce: d.u64()?,
        })
    }
}

impl BlockHeader {
    /// The canonical header bytes, on the stack (hashing them allocates nothing).
    pub fn canonical_bytes(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        let mut p = 0;
        let mut put = |b: &[u8]| {
            out[p..p + b.len()].copy_from_slice(b);
            p += b.len();
        };
        put(&self.version.to_be_bytes());
        put(&self.index.to_be_bytes());
        put(&self.slot.to_be_bytes());
        put(&self.prev_hash.0);
        put(&self.tx_root.0);
        put(&self.producer.0);
        put(&self.timestamp.to_be_bytes());
        put(&self.difficulty.to_be_bytes());
        put(&self.nonce.to_be_bytes());
        out
    }

    /// The block hash: SHA-256 of the canonical header.
    pub fn hash(&self) -> Hash {
        Hash::sha256(&self.canonical_bytes())
    }

    /// True iff the hash has at least `difficulty` leading zero hex digits.
    pub fn meets_pow(&self) -> bool {
        self.hash().leading_zero_nibbles() >= self.difficulty
    }

    /// Searches nonces from the current one until the proof of work holds or `max_attempts`
    /// hashes were tried. Returns the hash found, or `None` (the nonce is then left advanced, so
    /// the search can be resumed).
    pub fn mine(&mut self, max_attempts: u64) -> Option<Hash> {
        let midstate = PowMidstate::new(self);
        for _ in 0..max_attempts {
            let h = midstate.hash(self.nonce);
            if h.leading_zero_nibbles() >= self.difficulty {
                return Some(h);
            }
            self.nonce = self.nonce.wrapping_add(1);
        }
        None
    }
}

/// A full block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Block {
    /// The header.
    pub header: BlockHeader,
    /// The producer's signature over `signing_message(Block, genesis_hash, hash)`.
    pub signature: Signature,
    /// The transactions, applied in order.
    pub transactions: Vec<Transaction>,
}

impl Encode for Block {
    fn encode(&self, e: &mut Encoder) {
        self.header.encode(e);
        e.sig(&self.signature);
        e.u32(u32::try_from(self.transactions.len()).unwrap_or(u32::MAX));
        for tx in &self.transactions {
            tx.encode(e);
        }
    }
}

impl Decode for Block {
    fn decode(d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        let header = BlockHeader::decode(d)?;
        let signature = d.sig()?;
        let n = d.count(MIN_TX_ENCODED_LEN)?;
        let mut transactions = Vec::with_capacity(n);
        for _ in 0..n {
            transactions.push(Transaction::decode(d)?);
        }
        Ok(Block {
            header,
            signature,
            transactions,
        })
    }
}

impl Block {
    /// The block hash (of the header).
    pub fn hash(&self) -> Hash {
        self.header.hash()
    }

    /// Merkle root of this block's transaction ids, as computed (compare with `header.tx_root`).
    pub fn compute_tx_root(&self) -> Hash {
        let ids: Vec<Hash> = self.transactions.iter().map(Transaction::id).collect();
        merkle_root(&ids)
    }

    /// Size of the canonical encoding in bytes (what `max_block_bytes` limits).
    pub fn encoded_len(&self) -> usize {
        HEADER_LEN
            + 64
            + 4
            + self
                .transactions
                .iter()
                .map(Transaction::encoded_len)
                .sum::<usize>()
    }

    /// Signs the (already mined) header as `key` for the network `genesis_hash`.
    pub fn sign(&mut self, key: &KeyPair, genesis_hash: &Hash) {
        let msg = signing_message(Domain::Block, genesis_hash, &self.hash());
        self.signature = key.sign(&msg);
    }

    /// Checks the producer's signature over the header hash.
    pub fn verify_signature(&self, genesis_hash: &Hash) -> Result<(), SignatureError> {
        let msg = signing_message(Domain::Block, genesis_hash, &self.hash());
        self.header.producer.verify(&msg, &self.signature)
    }

    /// Builds, mines and signs a block on top of `parent` (convenience for producers and tests).
    /// Returns `None` if no proof of work was found within `max_attempts` hashes.
    #[allow(clippy::too_many_arguments)]
    pub fn produce(
        parent: &BlockHeader,
        slot: u64,
        timestamp: u64,
        difficulty: u32,
        transactions: Vec<Transaction>,
        key: &KeyPair,
        genesis_hash: &Hash,
        max_attempts: u64,
    ) -> Option<Block> {
        let ids: Vec<Hash> = transactions.iter().map(Transaction::id).collect();
        let mut header = BlockHeader {
            version: BLOCK_VERSION,
            index: parent.index.checked_add(1)?,
            slot,
            prev_hash: parent.hash(),
            tx_root: merkle_root(&ids),
            producer: key.public(),
            timestamp,
            difficulty,
            nonce: 0,
        };
        header.mine(max_attempts)?;
        let mut block = Block {
            header,
            signature: Signature::default(),
            transactions,
        };
        block.sign(key, genesis_hash);
        Some(block)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parent() -> BlockHeader {
        BlockHeader {
            version: BLOCK_VERSION,
            index: 0,
            slot: 0,
            prev_hash: Hash::ZERO,
            tx_root: Hash::ZERO,
            producer: PublicKey::default(),
            timestamp: 0,
            difficulty: 0,
            nonce: 0,
        }
    }

    #[test]
    fn header_canonical_bytes_match_encoder_and_round_trip() {
        let h = parent();
        let via_encoder = h.to_canonical_bytes();
        assert_eq!(via_encoder.len(), HEADER_LEN);
        assert_eq!(&via_encoder[..], &h.canonical_bytes()[..]);
        assert_eq!(BlockHeader::from_canonical_bytes(&via_encoder), Ok(h));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        /// The midstate hash is the plain header hash, for any header and nonce.
        #[test]
        fn midstate_hash_equals_the_plain_header_hash(
            fields in proptest::prelude::any::<(u32, u64, u64, [u8; 32], [u8; 32], [u8; 32], u64, u32)>(),
            nonces in proptest::collection::vec(proptest::prelude::any::<u64>(), 1..8),
        ) {
            let (version, index, slot, prev, root, producer, timestamp, difficulty) = fields;
            let mut h = BlockHeader {
                version, index, slot, prev_hash: Hash(prev), tx_root: Hash(root),
                producer: PublicKey(producer), timestamp, difficulty, nonce: 0,
            };
            let mid = PowMidstate::new(&h);
            for n in nonces {
                h.nonce = n;
                proptest::prop_assert_eq!(mid.hash(n), h.hash());
                proptest::prop_assert_eq!(mid.hash(n), Hash::sha256(&h.canonical_bytes()));
            }
        }
    }

    #[test]
    fn mining_finds_the_first_nonce_that_meets_the_difficulty() {
        let mut h = parent();
        h.difficulty = 2;
        let found = h.mine(1 << 24).unwrap();
        assert_eq!(found, h.hash());
        assert!(found.leading_zero_nibbles() >= 2);
        let first = (0..h.nonce).find(|&n| {
            let mut t = h.clone();
            t.nonce = n;
            t.hash().leading_zero_nibbles() >= 2
        });
        assert_eq!(first, None);
    }

    #[test]
    fn produced_block_meets_pow_and_verifies() {
        let k = KeyPair::from_seed([5u8; 32]);
        let g = Hash([2u8; 32]);
        let tx = Transaction::transfer(&k, PublicKey([1u8; 32]), 5, 1, 0, &g);
        let b = Block::produce(&parent(), 3, 1000, 2, vec![tx], &k, &g, 1 << 24).unwrap();
        assert!(b.hash().to_hex().starts_with("00"));
        assert!(b.header.meets_pow());
        assert_eq!(b.compute_tx_root(), b.header.tx_root);
        assert!(b.verify_signature(&g).is_ok());
        assert!(b.verify_signature(&Hash::ZERO).is_err());
        let bytes = b.to_canonical_bytes();
        assert_eq!(bytes.len(), b.encoded_len());
        assert_eq!(Block::from_canonical_bytes(&bytes), Ok(b));
    }
}
