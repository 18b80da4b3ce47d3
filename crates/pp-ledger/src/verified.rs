//! The stateless stage of validation: everything about a block or a transaction that needs
//! neither the parent nor the ledger state, done once, producing values that say so by type.
//!
//! * [`BlockVerifier::verify_tx`] checks a transaction's signature (through the
//!   [`SignatureCache`]) and yields a [`VerifiedTx`] carrying its id.
//! * [`BlockVerifier::verify_block`] checks a block's version, difficulty and proof of work,
//!   limits, transaction root, producer signature and every transaction signature (batched,
//!   skipping those in the cache) and yields a [`VerifiedBlock`] carrying its hash and
//!   transaction ids. [`crate::Chain::add_block`], the stateful stage, accepts nothing else.
//!
//! The stage is pure and `Sync`: a [`BlockVerifier`] is cheap to clone and may run on any
//! thread, with no lock of the chain held. To spread one block over several threads, split it:
//! [`BlockVerifier::check_block`] does the cheap checks and leaves the transaction signatures
//! as a [`PendingBlock`]; [`PendingBlock::chunks`] cuts them into batches that
//! [`PendingBlock::verify_chunk`] verifies on any thread (it takes `&self`), and
//! [`PendingBlock::finish`] assembles the [`VerifiedBlock`] (verifying any chunk it was not
//! given proof of, so a missing chunk can never be skipped):
//!
//! ```
//! use std::sync::Arc;
//! use pp_ledger::{Block, BlockVerifier, Genesis, Hash, KeyPair, SignatureCache, Transaction};
//!
//! let key = KeyPair::from_seed([1u8; 32]);
//! let genesis = Genesis::devnet("node0", key.public(), 0);
//! let gh = genesis.hash();
//! let txs = (0..10).map(|n| Transaction::transfer(&key, key.public(), 1, 0, n, &gh)).collect();
//! // The state root is not checked by the stateless stage (the chain checks it).
//! let block = Block::produce(&genesis.block().header, 1, 0, genesis.difficulty, txs,
//!                            Hash::ZERO, &key, &gh, 1 << 24).unwrap();
//! let verifier = BlockVerifier::new(&genesis, Arc::new(SignatureCache::default()));
//! let pending = verifier.check_block(block).unwrap();
//! // Each chunk may go to another thread (rayon's par_iter in pp-server and the benches).
//! let proofs: Vec<_> = pending.chunks(2).iter().map(|c| pending.verify_chunk(c)).collect();
//! let verified = pending.finish(proofs).unwrap();
//! assert_eq!(verified.tx_ids().len(), 10);
//! assert_eq!(verifier.cache().verifications(), 1 + 10); // the header, then each transaction
//! ```

use std::ops::Range;
use std::sync::Arc;

use crate::block::{Block, PRAOS_BLOCK_VERSION};
use crate::crypto::SignatureError;
use crate::error::{BlockError, TxError};
use crate::genesis::Genesis;
use crate::hash::Hash;
use crate::merkle::merkle_root;
use crate::sigbatch::{verify_batch, SigCheck};
use crate::sigcache::{tx_sig_check, SignatureCache};
use crate::tx::Transaction;

/// A transaction whose signature verified for one network, with its id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedTx {
    tx: Transaction,
    id: Hash,
}

impl VerifiedTx {
    /// The transaction.
    pub fn tx(&self) -> &Transaction {
        &self.tx
    }

    /// Its id.
    pub fn id(&self) -> Hash {
        self.id
    }

    /// The transaction, dropping the proof.
    pub fn into_tx(self) -> Transaction {
        self.tx
    }
}

/// A block that passed every stateless check for one network, with its hash and its
/// transactions' ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedBlock {
    block: Block,
    hash: Hash,
    tx_ids: Vec<Hash>,
    genesis_hash: Hash,
}

impl VerifiedBlock {
    /// The block.
    pub fn block(&self) -> &Block {
        &self.block
    }

    /// Its hash.
    pub fn hash(&self) -> Hash {
        self.hash
    }

    /// The ids of its transactions, in block order.
    pub fn tx_ids(&self) -> &[Hash] {
        &self.tx_ids
    }

    /// The network it was verified for.
    pub fn genesis_hash(&self) -> Hash {
        self.genesis_hash
    }

    /// The block, dropping the proof.
    pub fn into_block(self) -> Block {
        self.block
    }
}

/// The stateless stage for one network: the genesis parameters it needs and the shared
/// signature cache. Cheap to clone (an `Arc` and a few integers).
#[derive(Debug, Clone)]
pub struct BlockVerifier {
    genesis_hash: Hash,
    version: u32,
    difficulty: u32,
    max_block_txs: u32,
    max_block_bytes: u64,
    cache: Arc<SignatureCache>,
}

impl BlockVerifier {
    /// A verifier for the network of `genesis`, remembering verified signatures in `cache`.
    pub fn new(genesis: &Genesis, cache: Arc<SignatureCache>) -> BlockVerifier {
        BlockVerifier {
            genesis_hash: genesis.hash(),
            version: genesis.block_version(),
            difficulty: genesis.difficulty,
            max_block_txs: genesis.max_block_txs,
            max_block_bytes: genesis.max_block_bytes,
            cache,
        }
    }

    /// The network's genesis hash.
    pub fn genesis_hash(&self) -> Hash {
        self.genesis_hash
    }

    /// The signature cache (and verification counter) this verifier uses.
    pub fn cache(&self) -> &Arc<SignatureCache> {
        &self.cache
    }

    /// Checks `tx`'s signature (a cache hit, or a verification that fills the cache).
    pub fn verify_tx(&self, tx: Transaction) -> Result<VerifiedTx, TxError> {
        let id = tx.id();
        self.check_tx_signature(&tx, &id)
            .map_err(TxError::BadSignature)?;
        Ok(VerifiedTx { tx, id })
    }

    /// Checks the signature of `tx`, whose id is `id`, through the cache.
    pub fn check_tx_signature(&self, tx: &Transaction, id: &Hash) -> Result<(), SignatureError> {
        self.cache.verify_tx(tx, id, &self.genesis_hash)
    }

    /// Every stateless check of `block` on this thread: [`BlockVerifier::check_block`], then
    /// all its transaction signatures as one batch.
    pub fn verify_block(&self, block: Block) -> Result<VerifiedBlock, BlockError> {
        self.check_block(block)?.finish(std::iter::empty())
    }

    /// The checks that need neither parent nor state, except the transaction signatures:
    /// version, difficulty and proof of work, transaction count and size, transaction root,
    /// the producer's signature. Cheapest first. A block that fails one is invalid on every
    /// chain.
    pub fn check_detached(&self, block: &Block) -> Result<(), BlockError> {
        let hash = self.check_header(block)?;
        self.check_contents(block, &tx_ids(block))?;
        self.check_producer_signature(block, &hash)
    }

    /// The checks of [`BlockVerifier::check_detached`]; the transaction signatures not in the
    /// cache are left to verify, as a [`PendingBlock`].
    pub fn check_block(&self, block: Block) -> Result<PendingBlock, BlockError> {
        let hash = self.check_header(&block)?;
        let ids = tx_ids(&block);
        self.check_contents(&block, &ids)?;
        self.check_producer_signature(&block, &hash)?;
        let todo = block
            .transactions
            .iter()
            .zip(&ids)
            .enumerate()
            .filter_map(|(i, (tx, id))| {
                let key = SignatureCache::key(&self.genesis_hash, id, &tx.signature);
                (!self.cache.contains(&key)).then_some((i, key))
            })
            .collect();
        Ok(PendingBlock {
            verified: VerifiedBlock {
                block,
                hash,
                tx_ids: ids,
                genesis_hash: self.genesis_hash,
            },
            todo,
            cache: Arc::clone(&self.cache),
        })
    }

    /// Version, difficulty, proof of work; returns the block hash.
    fn check_header(&self, block: &Block) -> Result<Hash, BlockError> {
        let h = &block.header;
        // The network's version (classic or praos), and VRF evidence and a certificate exactly
        // in praos headers (decoding guarantees it; a header built in memory might not).
        let praos = h.version == PRAOS_BLOCK_VERSION;
        if h.version != self.version || h.vrf.is_some() != praos || h.ocert.is_some() != praos {
            return Err(BlockError::BadVersion {
                expected: self.version,
                got: h.version,
            });
        }
        if h.difficulty != self.difficulty {
            return Err(BlockError::WrongDifficulty {
                expected: self.difficulty,
                got: h.difficulty,
            });
        }
        let hash = h.hash();
        if hash.leading_zero_nibbles() < h.difficulty {
            return Err(BlockError::BadPow {
                difficulty: h.difficulty,
                hash,
            });
        }
        Ok(hash)
    }

    /// Transaction count and size limits, and the transaction root over `ids`.
    fn check_contents(&self, block: &Block, ids: &[Hash]) -> Result<(), BlockError> {
        let count = block.transactions.len() as u64;
        if count > u64::from(self.max_block_txs) {
            return Err(BlockError::TooManyTxs {
                count,
                max: u64::from(self.max_block_txs),
            });
        }
        let size = block.encoded_len() as u64;
        if size > self.max_block_bytes {
            return Err(BlockError::TooLarge {
                size,
                max: self.max_block_bytes,
            });
        }
        let computed = merkle_root(ids);
        if computed != block.header.tx_root {
            return Err(BlockError::BadTxRoot {
                header: block.header.tx_root,
                computed,
            });
        }
        Ok(())
    }

    /// Classic: the producer signed the header hash. Praos: the producer's (cold) key signed the
    /// header's certificate, then the certificate's hot key signed the header hash. What the
    /// certificate must satisfy on a chain (its epoch, its counter) is checked by the consensus
    /// rules.
    fn check_producer_signature(&self, block: &Block, hash: &Hash) -> Result<(), BlockError> {
        let h = &block.header;
        if let Some(cert) = &h.ocert {
            self.cache.count(1);
            cert.verify(&h.producer, &self.genesis_hash).map_err(|_| {
                BlockError::BadOpCertSignature {
                    slot: h.slot,
                    producer: h.producer,
                }
            })?;
        }
        self.cache.count(1);
        let msg =
            crate::crypto::signing_message(crate::crypto::Domain::Block, &self.genesis_hash, hash);
        let signer = h.signer();
        signer
            .verify(&msg, &block.signature)
            .map_err(|e| match h.ocert {
                Some(_) => BlockError::BadHotKeySignature {
                    slot: h.slot,
                    hot_key: signer,
                },
                None => BlockError::BadBlockSignature(e),
            })
    }
}

fn tx_ids(block: &Block) -> Vec<Hash> {
    block.transactions.iter().map(Transaction::id).collect()
}

/// A block that passed every stateless check but its transaction signatures, which are
/// verified in chunks (possibly on several threads), then [`PendingBlock::finish`]ed.
#[derive(Debug)]
pub struct PendingBlock {
    verified: VerifiedBlock,
    /// (transaction index, cache key) of each signature not found in the cache.
    todo: Vec<(usize, Hash)>,
    cache: Arc<SignatureCache>,
}

/// A part of a [`PendingBlock`]'s signatures to verify as one batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigChunk {
    range: Range<usize>,
}

impl SigChunk {
    /// Number of signatures in the chunk.
    pub fn len(&self) -> usize {
        self.range.len()
    }

    /// True iff the chunk holds no signature.
    pub fn is_empty(&self) -> bool {
        self.range.is_empty()
    }
}

/// Proof that one chunk of one block's signatures verified (made only by
/// [`PendingBlock::verify_chunk`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkVerified {
    block: Hash,
    range: Range<usize>,
}

impl PendingBlock {
    /// The block.
    pub fn block(&self) -> &Block {
        &self.verified.block
    }

    /// Its hash.
    pub fn hash(&self) -> Hash {
        self.verified.hash
    }

    /// Transaction signatures left to verify (those not in the cache).
    pub fn pending_signatures(&self) -> usize {
        self.todo.len()
    }

    /// The signatures left, cut into at most `parts` chunks of nearly equal size (none if no
    /// signature is left).
    pub fn chunks(&self, parts: usize) -> Vec<SigChunk> {
        let n = self.todo.len();
        let parts = parts.clamp(1, n.max(1));
        (0..parts)
            .map(|p| SigChunk {
                range: (n * p / parts)..(n * (p + 1) / parts),
            })
            .filter(|c| !c.is_empty())
            .collect()
    }

    /// Verifies one chunk as a batch (on any thread). On success its signatures enter the
    /// cache; on failure the error names the first bad transaction of the chunk, exactly as
    /// checking it alone would.
    pub fn verify_chunk(&self, chunk: &SigChunk) -> Result<ChunkVerified, BlockError> {
        let todo = self.todo.get(chunk.range.clone()).unwrap_or(&[]);
        let txs = &self.verified.block.transactions;
        let ids = &self.verified.tx_ids;
        let gh = &self.verified.genesis_hash;
        let checks: Vec<SigCheck> = todo
            .iter()
            .map(|&(i, _)| tx_sig_check(&txs[i], &ids[i], gh))
            .collect();
        self.cache.count(checks.len());
        if let Err(failure) = verify_batch(&checks) {
            self.cache.count(checks.len());
            let index = todo[failure.index].0;
            return Err(BlockError::Tx {
                index,
                id: ids[index],
                error: TxError::BadSignature(failure.error),
            });
        }
        for (_, key) in todo {
            self.cache.insert(*key);
        }
        Ok(ChunkVerified {
            block: self.verified.hash,
            range: chunk.range.clone(),
        })
    }

    /// The verified block, given the results of [`PendingBlock::verify_chunk`]. If any chunk
    /// failed, the error of the lowest transaction index is returned (the answer does not
    /// depend on how the block was cut). Signatures that no proof covers are verified here.
    pub fn finish(
        self,
        results: impl IntoIterator<Item = Result<ChunkVerified, BlockError>>,
    ) -> Result<VerifiedBlock, BlockError> {
        let mut covered = vec![false; self.todo.len()];
        let mut first_error: Option<BlockError> = None;
        for r in results {
            match r {
                Ok(proof) if proof.block == self.verified.hash => {
                    for c in covered.get_mut(proof.range).into_iter().flatten() {
                        *c = true;
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    if first_error
                        .as_ref()
                        .is_none_or(|f| tx_index(&e) < tx_index(f))
                    {
                        first_error = Some(e);
                    }
                }
            }
        }
        // Whatever no proof covers, in runs of consecutive uncovered signatures (below the
        // first failure only: a failure above it cannot change the answer).
        let limit = first_error.as_ref().map_or(usize::MAX, tx_index);
        let mut start = 0;
        while start < covered.len() && self.todo[start].0 < limit {
            if covered[start] {
                start += 1;
                continue;
            }
            let end = (start..covered.len())
                .find(|&i| covered[i])
                .unwrap_or(covered.len());
            if let Err(e) = self.verify_chunk(&SigChunk { range: start..end }) {
                return Err(match first_error {
                    Some(f) if tx_index(&f) < tx_index(&e) => f,
                    _ => e,
                });
            }
            start = end;
        }
        if let Some(e) = first_error {
            return Err(e);
        }
        Ok(self.verified)
    }
}

fn tx_index(e: &BlockError) -> usize {
    match e {
        BlockError::Tx { index, .. } => *index,
        _ => usize::MAX,
    }
}
