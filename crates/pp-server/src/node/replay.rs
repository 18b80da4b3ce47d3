//! Start-up: the stored best chain is replayed into a fresh chain (full validation, each block
//! judged at its own slot), then the mempool journal is re-admitted.

use std::sync::Arc;

use pp_ledger::chain::AddOutcome;
use pp_ledger::error::ChainError;

use super::Core;
use crate::mempool::DropReason;
use crate::metrics::gauge_value;
use crate::storage::{ChainCommit, StorageError};

impl Core {
    /// Replays stored best-chain blocks into the (fresh) chain; stops at the first block that is
    /// missing or invalid and trims the stored best chain there.
    ///
    /// Blocks are read one at a time and the chain is told each is stored, so memory holds the
    /// chain's window, never the whole history.
    pub(crate) fn replay(&self) -> Result<u64, StorageError> {
        let mut applied = 0u64;
        let mut trim = false;
        // The chain recomputes every version of the state tree (each replayed header's root is
        // checked); the stored tree is compared with it afterwards, not read into it.
        let stored_tree = match self.storage.state_tree()? {
            Ok(store) => Some(store),
            Err(why) => {
                tracing::warn!(%why, "stored state tree is corrupt; rewriting it");
                None
            }
        };
        self.chain_mut().set_tree_logging(false);
        // Signatures are verified (full validation on every restart) but not remembered: the
        // transactions of applied best blocks never need a check again, and filling the shared
        // cache with them would hold its whole bound (tens of MB) for nothing.
        let verifier = pp_ledger::BlockVerifier::new(
            &self.genesis,
            Arc::new(pp_ledger::SignatureCache::new(0)),
        );
        while let Some(h) = self.storage.best_hash(applied.saturating_add(1))? {
            let h = &h;
            trim = true;
            let Some(block) = self.storage.block(h)? else {
                tracing::warn!(hash = %h, "stored best chain refers to a missing block; stopping replay");
                break;
            };
            // Judge each block by the time of its own slot, as when it was first accepted.
            let now = self
                .slots
                .slot_start_ms(block.header.slot)
                .max(block.header.timestamp);
            let verified = verifier.verify_block(block).map_err(ChainError::from);
            let mut chain = self.chain_mut();
            match verified.and_then(|v| chain.add_block(v, now)) {
                Ok(AddOutcome::Extended) => {
                    applied += 1;
                    chain.mark_stored(applied, h);
                    trim = false;
                }
                Ok(other) => {
                    tracing::warn!(hash = %h, ?other, "stored block did not extend the replayed chain; stopping");
                    break;
                }
                Err(e) => {
                    tracing::warn!(hash = %h, error = %e, "stored block is invalid; stopping replay");
                    break;
                }
            }
        }
        // The stored tree is rewritten if it is not the chain's, with the trimmed height (or
        // alone); from now on the chain records its tree writes for the imports to persist.
        let state_tree = {
            let mut chain = self.chain_mut();
            chain.set_tree_logging(true);
            crate::state_commit::reconcile(&chain, stored_tree.as_ref()).unwrap_or_default()
        };
        if !state_tree.is_empty() {
            tracing::info!("stored state tree rewritten from the replayed chain");
        }
        drop(stored_tree);
        let stake_proofs = self.missing_stake_proofs()?;
        if trim || !state_tree.is_empty() || !stake_proofs.is_empty() {
            self.storage.commit_chain(&ChainCommit {
                height: trim.then_some(applied),
                state_tree,
                stake_proofs,
                ..ChainCommit::default()
            })?;
        }
        let height = self.chain().height();
        self.metrics.height.set(gauge_value(height));
        Ok(height)
    }

    /// The stake-snapshot records of the epoch boundaries whose tree versions the replayed
    /// chain holds and that storage lacks (a crash between the import and its commit cannot
    /// lose one, the record being in the block's commit; this fills those of a data directory
    /// written before records were kept, for the boundaries still within `k` blocks: older ones
    /// cannot be proven any more and stay missing).
    fn missing_stake_proofs(&self) -> Result<Vec<(pp_ledger::Hash, Vec<u8>)>, StorageError> {
        let chain = self.chain();
        let Some((lo, hi)) = chain.state_tree().versions().ok().flatten() else {
            return Ok(Vec::new());
        };
        let mut wanted = Vec::new();
        for i in lo.saturating_add(1)..=hi {
            let (Some(parent), Some(h)) = (chain.best_hash_at(i - 1), chain.best_hash_at(i)) else {
                continue;
            };
            if self.storage.stake_proof(&parent)?.is_none() {
                wanted.push(h);
            }
        }
        Ok(crate::http::proofs::boundary_stake_proofs(
            &chain,
            &self.genesis,
            |s| self.slots.epoch_of_slot(s),
            &wanted,
        ))
    }

    /// Re-admits journaled mempool transactions (those still valid on the replayed tip).
    pub(crate) fn restore_mempool(&self) -> Result<usize, StorageError> {
        let (txs, _bad) = self.storage.mempool_txs()?;
        let mut sorted = txs;
        sorted.sort_by_key(|t| (t.body.from, t.body.nonce));
        let mut stale = Vec::new();
        let n = {
            let chain = self.chain();
            let view = self.ledger_view(&chain);
            let mut mp = self.mempool();
            for t in sorted {
                let id = t.id();
                if let Err(e) = mp.insert(&view, t) {
                    // Acknowledged before the restart, so reported unless it was included.
                    if self.storage.tx_block(&id).ok().flatten().is_none() {
                        mp.record_drop(
                            id,
                            DropReason::Invalid {
                                code: e.code().to_string(),
                                message: e.to_string(),
                            },
                        );
                    }
                    stale.push(id);
                }
            }
            self.metrics.mempool_size.set(gauge_value(mp.len()));
            mp.len()
        };
        if !stale.is_empty() {
            self.storage.commit_chain(&ChainCommit {
                mempool_remove: stale,
                ..ChainCommit::default()
            })?;
        }
        Ok(n)
    }
}
