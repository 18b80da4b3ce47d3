//! A bounded cache of verified transaction signatures, and the count of verifications done.
//!
//! A transaction's signature is verified when it enters the mempool; the same transaction then
//! comes back in a block (often several: forks, side chains, switches). The cache remembers
//! that the check passed, so block validation skips it. Keys are a hash of (genesis hash,
//! transaction id, signature): the id does not cover the signature, and under ZIP-215 a valid
//! signature can have more than one encoding, so the signature itself must be part of the key.
//! Together the three fix the whole verification input (key = sender, in the id; message =
//! tag ‖ genesis ‖ id), so a hit means exactly "this input verified": cached and uncached
//! verification give the same answer by construction. Only successes are stored.
//!
//! The cache is shared between threads (`&self` methods, one internal mutex held for a lookup
//! or an insert only). Eviction is first-in, first-out: an entry is useful from admission until
//! its block arrives, which is the order entries are made in.

use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use crate::crypto::{signing_message, Domain, Signature, SignatureError};
use crate::hash::Hash;
use crate::sigbatch::SigCheck;
use crate::tx::Transaction;

/// Memory charged per cached signature, in bytes: the 32-byte key in the set (with the hash
/// table's control byte and spare capacity) and again in the eviction queue.
pub const SIGNATURE_CACHE_ENTRY_BYTES: usize = 96;

/// Default bound of a chain's cache: 32 MiB, about 350,000 signatures.
pub const DEFAULT_SIGNATURE_CACHE_BYTES: usize = 32 << 20;

/// Verified transaction signatures (bounded in bytes) and the number of signature
/// verifications performed through it.
#[derive(Debug)]
pub struct SignatureCache {
    inner: Mutex<Inner>,
    max_entries: usize,
    verifications: AtomicU64,
}

#[derive(Debug, Default)]
struct Inner {
    set: HashSet<Hash>,
    order: VecDeque<Hash>,
}

impl Default for SignatureCache {
    fn default() -> Self {
        SignatureCache::new(DEFAULT_SIGNATURE_CACHE_BYTES)
    }
}

impl SignatureCache {
    /// A cache using at most about `max_bytes` (see [`SIGNATURE_CACHE_ENTRY_BYTES`]); 0 keeps
    /// nothing (every check verifies).
    pub fn new(max_bytes: usize) -> SignatureCache {
        SignatureCache {
            inner: Mutex::new(Inner::default()),
            max_entries: max_bytes / SIGNATURE_CACHE_ENTRY_BYTES,
            verifications: AtomicU64::new(0),
        }
    }

    /// The cache key of a transaction signature on the network `genesis_hash`:
    /// `Blake2b-256(genesis_hash ‖ txid ‖ signature)`, 128 bytes, one Blake2b compression. The
    /// key never leaves the node, so it needs no domain tag; it must be collision resistant,
    /// since a colliding key would skip a verification.
    pub fn key(genesis_hash: &Hash, txid: &Hash, signature: &Signature) -> Hash {
        Hash::blake2b_parts(&[&genesis_hash.0, &txid.0, &signature.0])
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Every update leaves `Inner` consistent between statements, so a panic elsewhere
        // while the lock was held cannot have broken it.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// True iff the signature under `key` verified before (and is still remembered).
    pub fn contains(&self, key: &Hash) -> bool {
        self.lock().set.contains(key)
    }

    /// Remembers that the signature under `key` verified.
    pub fn insert(&self, key: Hash) {
        if self.max_entries == 0 {
            return;
        }
        let mut inner = self.lock();
        if !inner.set.insert(key) {
            return;
        }
        inner.order.push_back(key);
        while inner.order.len() > self.max_entries {
            if let Some(old) = inner.order.pop_front() {
                inner.set.remove(&old);
            }
        }
    }

    /// Number of signatures remembered.
    pub fn len(&self) -> usize {
        self.lock().order.len()
    }

    /// True iff nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The most signatures remembered at once.
    pub fn capacity(&self) -> usize {
        self.max_entries
    }

    /// Signature verifications performed through this cache (and the verifiers that use it):
    /// each signature checked counts one; a batch that fails and is re-checked one by one
    /// counts its signatures twice. Hits count nothing.
    pub fn verifications(&self) -> u64 {
        self.verifications.load(Ordering::Relaxed)
    }

    pub(crate) fn count(&self, n: usize) {
        self.verifications.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// Checks the signature of `tx` (whose id is `txid`) for the network `genesis_hash`: a hit
    /// answers at once, otherwise the signature is verified (ZIP-215) and, if valid, remembered.
    pub fn verify_tx(
        &self,
        tx: &Transaction,
        txid: &Hash,
        genesis_hash: &Hash,
    ) -> Result<(), SignatureError> {
        let key = SignatureCache::key(genesis_hash, txid, &tx.signature);
        if self.contains(&key) {
            return Ok(());
        }
        self.count(1);
        tx.body.from.verify(
            &signing_message(Domain::Transaction, genesis_hash, txid),
            &tx.signature,
        )?;
        self.insert(key);
        Ok(())
    }
}

impl SignatureCache {
    /// Verifies the signatures of `txs` not yet remembered as **one batch** (ZIP-215, see
    /// [`crate::sigbatch`]) and, if the batch passes, remembers them all; returns how many were
    /// verified. A batch that fails remembers nothing: each of its transactions is then left to
    /// [`SignatureCache::verify_tx`], which checks it alone and names the bad one.
    ///
    /// A pre-check, run before the stateful rules (and off any lock): it changes no answer, only
    /// when and how the verification work is done. A batch costs about half as much per
    /// signature as single checks, so transactions that arrive together (a gossip burst, a
    /// `POST /transactions` array) are admitted for about half the curve arithmetic; a failed
    /// batch costs its signatures once more (counted twice in [`SignatureCache::verifications`]).
    pub fn preverify_txs(&self, txs: &[Transaction], genesis_hash: &Hash) -> usize {
        let mut keys = Vec::with_capacity(txs.len());
        let mut seen = HashSet::with_capacity(txs.len());
        let mut checks = Vec::with_capacity(txs.len());
        for tx in txs {
            let id = tx.id();
            let key = SignatureCache::key(genesis_hash, &id, &tx.signature);
            // A transaction given twice in `txs` is checked once.
            if self.contains(&key) || !seen.insert(key) {
                continue;
            }
            keys.push(key);
            checks.push(tx_sig_check(tx, &id, genesis_hash));
        }
        if checks.is_empty() {
            return 0;
        }
        self.count(checks.len());
        let valid = match &checks[..] {
            [one] => one.verify_single().is_ok(),
            many => crate::sigbatch::batch_holds(many),
        };
        if valid {
            for key in keys {
                self.insert(key);
            }
        }
        checks.len()
    }
}

/// The signature check of `tx` (id `txid`) on the network `genesis_hash`, for a batch.
pub(crate) fn tx_sig_check(tx: &Transaction, txid: &Hash, genesis_hash: &Hash) -> SigCheck {
    SigCheck {
        key: tx.body.from,
        msg: signing_message(Domain::Transaction, genesis_hash, txid),
        sig: tx.signature,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::{KeyPair, PublicKey};

    #[test]
    fn verifies_once_then_hits_and_never_caches_a_failure() {
        let g = Hash([4u8; 32]);
        let k = KeyPair::from_seed([1u8; 32]);
        let tx = Transaction::transfer(&k, PublicKey([2u8; 32]), 5, 1, 0, &g);
        let id = tx.id();
        let c = SignatureCache::new(1 << 20);
        assert_eq!(c.verify_tx(&tx, &id, &g), Ok(()));
        assert_eq!(c.verify_tx(&tx, &id, &g), Ok(()));
        assert_eq!(c.verifications(), 1);
        // Another network: another key, verified (and refused) again.
        assert!(c.verify_tx(&tx, &id, &Hash::ZERO).is_err());
        assert!(c.verify_tx(&tx, &id, &Hash::ZERO).is_err());
        assert_eq!(c.verifications(), 3);
        let mut bad = tx.clone();
        bad.signature.0[0] ^= 1;
        assert!(c.verify_tx(&bad, &id, &g).is_err());
        assert_eq!(c.len(), 1);
    }

    #[test]
    fn a_preverified_batch_is_remembered_whole_or_not_at_all() {
        let g = Hash([4u8; 32]);
        let txs: Vec<Transaction> = (1..=5u8)
            .map(|i| {
                let k = KeyPair::from_seed([i; 32]);
                Transaction::transfer(&k, PublicKey([9u8; 32]), 5, 1, 0, &g)
            })
            .collect();
        // All valid: one batch, each remembered; a repeat in the input is checked once.
        let c = SignatureCache::new(1 << 20);
        let mut twice = txs.clone();
        twice.push(txs[0].clone());
        assert_eq!(c.preverify_txs(&twice, &g), 5);
        assert_eq!((c.len(), c.verifications()), (5, 5));
        for tx in &txs {
            assert_eq!(c.verify_tx(tx, &tx.id(), &g), Ok(()));
        }
        assert_eq!(c.verifications(), 5, "every later check is a hit");
        // What is remembered is not checked again.
        assert_eq!(c.preverify_txs(&txs, &g), 0);
        // Another network: nothing of it is remembered, and its batch fails.
        assert_eq!(c.preverify_txs(&txs, &Hash::ZERO), 5);
        assert_eq!(c.len(), 5);

        // One bad signature: nothing of the batch is remembered, and single checks still tell
        // the good ones from the bad one.
        let mut bad = txs.clone();
        bad[2].signature.0[0] ^= 1;
        let c = SignatureCache::new(1 << 20);
        assert_eq!(c.preverify_txs(&bad, &g), 5);
        assert!(c.is_empty());
        for (i, tx) in bad.iter().enumerate() {
            assert_eq!(c.verify_tx(tx, &tx.id(), &g).is_ok(), i != 2);
        }
        assert_eq!(
            c.verifications(),
            10,
            "a failed batch costs its signatures twice"
        );

        // A single transaction is checked alone, and remembered only if valid.
        let c = SignatureCache::new(1 << 20);
        assert_eq!(c.preverify_txs(&bad[2..3], &g), 1);
        assert!(c.is_empty());
        assert_eq!(c.preverify_txs(&bad[..1], &g), 1);
        assert_eq!(c.len(), 1);
    }

    #[test]
    fn is_bounded_and_evicts_the_oldest_first() {
        let c = SignatureCache::new(3 * SIGNATURE_CACHE_ENTRY_BYTES);
        let keys: Vec<Hash> = (0..5u8).map(|i| Hash([i; 32])).collect();
        for k in &keys {
            c.insert(*k);
        }
        assert_eq!(c.len(), 3);
        assert!(!c.contains(&keys[0]) && !c.contains(&keys[1]));
        assert!(keys[2..].iter().all(|k| c.contains(k)));
        let none = SignatureCache::new(0);
        none.insert(keys[0]);
        assert!(none.is_empty());
    }
}
