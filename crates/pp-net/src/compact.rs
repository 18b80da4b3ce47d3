//! Compact blocks, in the manner of BIP152: a block announced as its signed header, a nonce and
//! a 6-byte short id per transaction. The receiver rebuilds the block from transactions it
//! already holds and asks the sender only for the rest.
//!
//! Everything here is pure (no I/O, no clock): [`CompactBlock::build`] on the sending side,
//! [`Partial`] on the receiving side. The scheme is specified in docs/protocol.md §14, with test
//! vectors in docs/vectors/short_ids.tsv.
//!
//! Short ids are keyed per block *and* per sender (the nonce), so a transaction crafted to
//! collide with another under one announcement does not collide under the next. A collision can
//! still happen by chance (48 bits); it is detected and never trusted:
//! - two transactions of the announcement with the same short id: the block cannot be rebuilt,
//!   the receiver asks for every transaction ([`lay_out`] says [`Rebuild::Ambiguous`]);
//! - two candidate transactions of the receiver matching one short id: that slot is asked for;
//! - a wrong match that nothing above caught: the rebuilt block's transaction root differs from
//!   its header's ([`Partial::finish`] fails), and the receiver asks for every transaction.

use std::collections::HashMap;
use std::hash::Hasher;

use pp_ledger::{merkle_root, Block, BlockHeader, Hash, Signature, Transaction};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use siphasher::sip::SipHasher24;

/// The most transactions a compact block (short ids and prefilled together) may describe, and
/// the most indexes a `get_block_txs` may ask for (the genesis limit `max_block_txs` is at most
/// 100,000).
pub const MAX_COMPACT_TXS: usize = 100_000;
/// The short-id scheme of this protocol version (the `version` of `compact_relay`).
pub const COMPACT_VERSION: u32 = 1;
/// Short ids are the low 48 bits of the SipHash output.
const SHORT_ID_MASK: u64 = 0xffff_ffff_ffff;

/// A 6-byte short transaction id; on the wire 12 lowercase hex characters (big-endian).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ShortId(pub u64);

impl Serialize for ShortId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{:012x}", self.0 & SHORT_ID_MASK))
    }
}

impl<'de> Deserialize<'de> for ShortId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        let ok = s.len() == 12 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if !ok {
            return Err(serde::de::Error::custom(
                "short id must be 12 lowercase hex characters",
            ));
        }
        u64::from_str_radix(&s, 16)
            .map(ShortId)
            .map_err(serde::de::Error::custom)
    }
}

/// The SipHash-2-4 key of one compact block: `SHA-256(block hash ‖ nonce as 8 bytes
/// big-endian)`, whose bytes 0..8 and 8..16, read little-endian, are `k0` and `k1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShortIdKey {
    k0: u64,
    k1: u64,
}

impl ShortIdKey {
    /// The key for the block with hash `block_hash`, announced with `nonce`.
    pub fn new(block_hash: &Hash, nonce: u64) -> ShortIdKey {
        let mut input = [0u8; 40];
        input[..32].copy_from_slice(&block_hash.0);
        input[32..].copy_from_slice(&nonce.to_be_bytes());
        let h = Hash::sha256(&input).0;
        let word = |i: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&h[i..i + 8]);
            u64::from_le_bytes(b)
        };
        ShortIdKey {
            k0: word(0),
            k1: word(8),
        }
    }

    /// The two SipHash key words `(k0, k1)`.
    pub fn words(&self) -> (u64, u64) {
        (self.k0, self.k1)
    }

    /// `SipHash-2-4(k0, k1, txid)` (the 32 raw bytes of the transaction id), low 48 bits.
    pub fn short_id(&self, txid: &Hash) -> ShortId {
        let mut h = SipHasher24::new_with_keys(self.k0, self.k1);
        h.write(&txid.0);
        ShortId(h.finish() & SHORT_ID_MASK)
    }
}

/// A transaction sent in full inside a compact block, at its index in the block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrefilledTx {
    /// Index of the transaction in the block.
    pub index: u32,
    /// The transaction.
    pub tx: Transaction,
}

/// A block as its signed header, a nonce, the short ids of the transactions the receiver is
/// expected to hold, and the others in full.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompactBlock {
    /// The block header.
    pub header: BlockHeader,
    /// The producer's signature over the block (as in `Block`).
    pub signature: Signature,
    /// Chosen by the sender; keys the short ids with the block hash.
    pub nonce: u64,
    /// Short ids of the transactions not prefilled, in block order.
    pub short_ids: Vec<ShortId>,
    /// Transactions sent in full, by strictly increasing index.
    pub prefilled: Vec<PrefilledTx>,
}

impl CompactBlock {
    /// The compact form of `block` under `nonce`; the transactions for which `prefill(index,
    /// tx)` is true are sent in full.
    pub fn build(
        block: &Block,
        nonce: u64,
        mut prefill: impl FnMut(usize, &Transaction) -> bool,
    ) -> CompactBlock {
        let key = ShortIdKey::new(&block.hash(), nonce);
        let mut short_ids = Vec::with_capacity(block.transactions.len());
        let mut prefilled = Vec::new();
        for (i, tx) in block.transactions.iter().enumerate() {
            match u32::try_from(i) {
                Ok(index) if prefill(i, tx) => prefilled.push(PrefilledTx {
                    index,
                    tx: tx.clone(),
                }),
                _ => short_ids.push(key.short_id(&tx.id())),
            }
        }
        CompactBlock {
            header: block.header.clone(),
            signature: block.signature,
            nonce,
            short_ids,
            prefilled,
        }
    }

    /// Number of transactions of the block.
    pub fn tx_count(&self) -> usize {
        self.short_ids.len() + self.prefilled.len()
    }
}

/// Why a compact block or an answer to `get_block_txs` cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CompactError {
    /// More transactions than [`MAX_COMPACT_TXS`].
    #[error("compact block describes {count} transactions, at most {max}")]
    TooManyTxs {
        /// Transactions described.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// Prefilled indexes must increase strictly and stay below the transaction count.
    #[error("prefilled index {index} out of order or out of range ({count} transactions)")]
    BadPrefilledIndex {
        /// The offending index.
        index: u32,
        /// Transactions of the block.
        count: usize,
    },
    /// An answer carried another number of transactions than asked for.
    #[error("answer has {got} transactions, {wanted} were asked for")]
    WrongCount {
        /// Transactions asked for.
        wanted: usize,
        /// Transactions received.
        got: usize,
    },
    /// A transaction of an answer does not have the short id of its slot.
    #[error("transaction at index {index} does not match its short id")]
    WrongTransaction {
        /// Its index in the block.
        index: usize,
    },
}

/// What a receiver can do with a compact block before looking at its own transactions.
#[derive(Debug)]
pub enum Rebuild {
    /// Rebuild it: offer candidate transactions, then fill what is missing.
    Partial(Box<Partial>),
    /// Two of its short ids are equal: ask for every transaction.
    Ambiguous,
}

/// A block being rebuilt from a compact block.
#[derive(Debug)]
pub struct Partial {
    header: BlockHeader,
    signature: Signature,
    key: ShortIdKey,
    slots: Vec<Option<Transaction>>,
    /// The id of each filled slot's transaction (computed once, for the Merkle root).
    ids: Vec<Option<Hash>>,
    /// Expected short id per slot (`None` for prefilled slots).
    expected: Vec<Option<ShortId>>,
    /// Short id → slot, for the slots not prefilled.
    by_short: HashMap<ShortId, usize>,
    /// Slots two different candidates matched: asked for, never guessed.
    collided: Vec<bool>,
}

/// Check a compact block's structure and lay out its slots (prefilled ones filled).
pub fn lay_out(cb: &CompactBlock) -> Result<Rebuild, CompactError> {
    let count = cb.tx_count();
    if count > MAX_COMPACT_TXS {
        return Err(CompactError::TooManyTxs {
            count,
            max: MAX_COMPACT_TXS,
        });
    }
    let mut slots: Vec<Option<Transaction>> = vec![None; count];
    let mut expected = vec![None; count];
    let mut ids = vec![None; count];
    let mut last: Option<u32> = None;
    for p in &cb.prefilled {
        let i = p.index as usize;
        if last.is_some_and(|l| p.index <= l) || i >= count {
            return Err(CompactError::BadPrefilledIndex {
                index: p.index,
                count,
            });
        }
        last = Some(p.index);
        slots[i] = Some(p.tx.clone());
        ids[i] = Some(p.tx.id());
    }
    let key = ShortIdKey::new(&cb.header.hash(), cb.nonce);
    let mut by_short = HashMap::with_capacity(cb.short_ids.len());
    let free = (0..count).filter(|i| slots[*i].is_none());
    for (slot, sid) in free.zip(cb.short_ids.iter()) {
        if by_short.insert(*sid, slot).is_some() {
            return Ok(Rebuild::Ambiguous);
        }
        expected[slot] = Some(*sid);
    }
    Ok(Rebuild::Partial(Box::new(Partial {
        header: cb.header.clone(),
        signature: cb.signature,
        key,
        slots,
        ids,
        expected,
        by_short,
        collided: vec![false; count],
    })))
}

impl Partial {
    /// The block hash (of the header).
    pub fn hash(&self) -> Hash {
        self.header.hash()
    }

    /// The header.
    pub fn header(&self) -> &BlockHeader {
        &self.header
    }

    /// True if a transaction with id `txid` has the short id of one of the block's slots.
    pub fn matches(&self, txid: &Hash) -> bool {
        self.by_short.contains_key(&self.key.short_id(txid))
    }

    /// Offer a candidate (from the mempool or a relay cache; `txid` must be `tx.id()`, as the
    /// caller computed it): it fills the slot of its short id. A second, different candidate for
    /// a filled slot empties it for good (asked for instead).
    pub fn offer(&mut self, txid: &Hash, tx: &Transaction) {
        let Some(&slot) = self.by_short.get(&self.key.short_id(txid)) else {
            return;
        };
        if self.collided[slot] {
            return;
        }
        match self.ids[slot] {
            None => {
                self.slots[slot] = Some(tx.clone());
                self.ids[slot] = Some(*txid);
            }
            Some(held) if held == *txid => {}
            Some(_) => {
                self.slots[slot] = None;
                self.ids[slot] = None;
                self.collided[slot] = true;
            }
        }
    }

    /// Indexes of the slots still empty, increasing.
    pub fn missing(&self) -> Vec<u32> {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.is_none())
            .filter_map(|(i, _)| u32::try_from(i).ok())
            .collect()
    }

    /// Fill the missing slots, in the order of [`Partial::missing`], with an answer's
    /// transactions; each must have its slot's short id.
    pub fn fill(&mut self, txs: Vec<Transaction>) -> Result<(), CompactError> {
        let missing = self.missing();
        if txs.len() != missing.len() {
            return Err(CompactError::WrongCount {
                wanted: missing.len(),
                got: txs.len(),
            });
        }
        let mut ids = Vec::with_capacity(txs.len());
        for (i, tx) in missing.iter().zip(txs.iter()) {
            let i = *i as usize;
            let id = tx.id();
            if self.expected[i] != Some(self.key.short_id(&id)) {
                return Err(CompactError::WrongTransaction { index: i });
            }
            ids.push(id);
        }
        for ((i, tx), id) in missing.into_iter().zip(txs).zip(ids) {
            self.slots[i as usize] = Some(tx);
            self.ids[i as usize] = Some(id);
        }
        Ok(())
    }

    /// The rebuilt block, if every slot is filled and the transaction root is the header's;
    /// `None` otherwise (a wrong match: ask for every transaction).
    pub fn finish(&self) -> Option<Block> {
        let ids: Vec<Hash> = self.ids.iter().copied().collect::<Option<_>>()?;
        if merkle_root(&ids) != self.header.tx_root {
            return None;
        }
        Some(Block {
            header: self.header.clone(),
            signature: self.signature,
            transactions: self.slots.iter().cloned().collect::<Option<_>>()?,
        })
    }
}

/// The block from a compact block's header and the full list of its transactions (the fallback
/// when the compact block cannot be laid out).
pub fn block_with(cb: &CompactBlock, transactions: Vec<Transaction>) -> Block {
    Block {
        header: cb.header.clone(),
        signature: cb.signature,
        transactions,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pp_ledger::{KeyPair, PublicKey, BLOCK_VERSION};

    fn block(n: u64) -> Block {
        let k = KeyPair::from_seed([7; 32]);
        let g = Hash([1; 32]);
        let txs = (0..n)
            .map(|i| Transaction::transfer(&k, PublicKey([2; 32]), 10, 1, i, &g))
            .collect();
        let parent = BlockHeader {
            version: BLOCK_VERSION,
            index: 0,
            slot: 0,
            prev_hash: Hash::ZERO,
            tx_root: Hash::ZERO,
            state_root: Hash::ZERO,
            producer: k.public(),
            timestamp: 0,
            difficulty: 0,
            vrf: None,
            ocert: None,
            nonce: 0,
        };
        Block::produce(&parent, 1, 1000, 0, txs, Hash::ZERO, &k, &g, 1).unwrap()
    }

    #[test]
    fn siphash_is_the_reference_siphash_2_4() {
        // The SipHash paper's test vector: key 00..0f, message 00..0e.
        let k0 = u64::from_le_bytes([0, 1, 2, 3, 4, 5, 6, 7]);
        let k1 = u64::from_le_bytes([8, 9, 10, 11, 12, 13, 14, 15]);
        let mut h = SipHasher24::new_with_keys(k0, k1);
        h.write(&(0u8..15).collect::<Vec<_>>());
        assert_eq!(h.finish(), 0xa129ca6149be45e5);
    }

    #[test]
    fn short_ids_serialize_as_12_hex_characters() {
        let s = serde_json::to_string(&ShortId(0x0102_0304_0506)).unwrap();
        assert_eq!(s, "\"010203040506\"");
        assert_eq!(
            serde_json::from_str::<ShortId>(&s).unwrap(),
            ShortId(0x0102_0304_0506)
        );
        for bad in [
            "\"01020304050\"",
            "\"0102030405060\"",
            "\"01020304050G\"",
            "\"ABCDEF012345\"",
        ] {
            assert!(serde_json::from_str::<ShortId>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_block_rebuilds_from_a_mempool_without_a_round_trip() {
        let b = block(50);
        let cb = CompactBlock::build(&b, 42, |i, _| i == 3);
        assert_eq!(cb.prefilled.len(), 1);
        let Rebuild::Partial(mut p) = lay_out(&cb).unwrap() else {
            panic!("ambiguous")
        };
        assert_eq!(p.missing().len(), 49);
        for tx in &b.transactions {
            if p.matches(&tx.id()) {
                p.offer(&tx.id(), tx);
            }
        }
        assert!(p.missing().is_empty());
        assert_eq!(p.finish().unwrap(), b);
    }

    #[test]
    fn missing_transactions_are_filled_from_an_answer_and_checked() {
        let b = block(10);
        let cb = CompactBlock::build(&b, 7, |_, _| false);
        let Rebuild::Partial(mut p) = lay_out(&cb).unwrap() else {
            panic!()
        };
        for tx in &b.transactions[..6] {
            p.offer(&tx.id(), tx);
        }
        assert_eq!(p.missing(), vec![6, 7, 8, 9]);
        assert!(p.finish().is_none());
        // A wrong transaction, or a wrong count, is refused.
        let mut wrong = b.transactions[6..].to_vec();
        wrong[1] = b.transactions[0].clone();
        assert_eq!(
            p.fill(wrong),
            Err(CompactError::WrongTransaction { index: 7 })
        );
        assert!(matches!(
            p.fill(b.transactions[7..].to_vec()),
            Err(CompactError::WrongCount { .. })
        ));
        p.fill(b.transactions[6..].to_vec()).unwrap();
        assert_eq!(p.finish().unwrap(), b);
    }

    #[test]
    fn equal_short_ids_in_an_announcement_make_it_ambiguous() {
        let b = block(3);
        let mut cb = CompactBlock::build(&b, 1, |_, _| false);
        cb.short_ids[2] = cb.short_ids[0];
        assert!(matches!(lay_out(&cb).unwrap(), Rebuild::Ambiguous));
    }

    #[test]
    fn two_candidates_for_one_slot_leave_it_to_be_asked_for() {
        let b = block(3);
        let other = block(4).transactions[3].clone();
        let cb = CompactBlock::build(&b, 1, |_, _| false);
        let Rebuild::Partial(mut p) = lay_out(&cb).unwrap() else {
            panic!()
        };
        let slot0 = *p.by_short.get(&cb.short_ids[0]).unwrap();
        // Pretend `other` collides with transaction 0 (force the short id table).
        let sid_other = p.key.short_id(&other.id());
        p.by_short.insert(sid_other, slot0);
        p.offer(&b.transactions[0].id(), &b.transactions[0]);
        p.offer(&other.id(), &other);
        p.offer(&b.transactions[0].id(), &b.transactions[0]);
        assert_eq!(p.missing(), vec![0, 1, 2]);
    }

    #[test]
    fn a_wrong_match_is_caught_by_the_transaction_root() {
        let b = block(2);
        let cb = CompactBlock::build(&b, 1, |_, _| false);
        let Rebuild::Partial(mut p) = lay_out(&cb).unwrap() else {
            panic!()
        };
        let other = block(3).transactions[2].clone();
        p.offer(&b.transactions[1].id(), &b.transactions[1]);
        p.ids[0] = Some(other.id());
        p.slots[0] = Some(other);
        assert!(p.finish().is_none());
    }

    #[test]
    fn bad_prefilled_indexes_and_oversized_blocks_are_refused() {
        let b = block(3);
        let mut cb = CompactBlock::build(&b, 1, |i, _| i < 2);
        cb.prefilled.swap(0, 1);
        assert!(matches!(
            lay_out(&cb),
            Err(CompactError::BadPrefilledIndex { .. })
        ));
        let mut cb = CompactBlock::build(&b, 1, |i, _| i == 0);
        cb.prefilled[0].index = 3;
        assert!(matches!(
            lay_out(&cb),
            Err(CompactError::BadPrefilledIndex { index: 3, .. })
        ));
        let mut cb = CompactBlock::build(&b, 1, |_, _| false);
        cb.short_ids = vec![ShortId(1); MAX_COMPACT_TXS + 1];
        assert!(matches!(lay_out(&cb), Err(CompactError::TooManyTxs { .. })));
    }
}
