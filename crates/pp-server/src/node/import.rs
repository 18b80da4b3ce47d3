//! Blocks in: validated (the stateless stage off the chain lock, the stateful one under it),
//! applied, stored durably in one change per batch, then announced. Peer blocks
//! ([`Core::on_block`]), our own ([`Core::import_own`]) and synced batches
//! ([`Core::import_verified`]) all go through [`Core::import_blocks`]' pipeline; what changed
//! the chain is announced to peers in one place ([`Core::announce`]).

use std::collections::HashSet;

use pp_ledger::chain::{AddOutcome, Screened};
use pp_ledger::error::ChainError;
use pp_ledger::{Block, BlockError, Hash, Transaction, VerifiedBlock};
use pp_net::{Misbehaviour, PeerId};

use super::{lock, Core};
use crate::events::NodeEvent;
use crate::metrics::gauge_value;
use crate::storage::{ChainCommit, StorageError, WriteOp};
use crate::writer::{Pending, Slot};
/// Why a block was not imported.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ImportError {
    /// The chain refused it.
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// It was accepted in memory but could not be stored: it is not acknowledged.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// What an import did, for the caller to announce and log.
#[derive(Debug, Clone)]
pub(crate) struct Imported {
    pub(crate) outcome: AddOutcome,
    pub(crate) height: u64,
    /// The tip right after this block (what was stored with it, when the best chain changed).
    pub(crate) tip: Option<Hash>,
}

/// A block to import: as received (both stages run under the import lock), or already through
/// the stateless stage.
enum Incoming {
    Raw(Block),
    Verified(VerifiedBlock),
}

impl Core {
    /// The cheap checks under the read lock ([`pp_ledger::Chain::screen`]), then the stateless
    /// stage with no lock held. `None` if the block is already held.
    fn verify_block(&self, block: Block, now: u64) -> Result<Option<VerifiedBlock>, ChainError> {
        let verifier = {
            let chain = self.chain();
            if chain.screen(&block, now)? == Screened::Known {
                return Ok(None);
            }
            chain.verifier().clone()
        };
        Ok(Some(verifier.verify_block(block)?))
    }

    /// Validates `block` fully, applies it and stores it durably. Nothing is announced here.
    pub(crate) async fn import_block(&self, block: Block) -> Result<Imported, ImportError> {
        let (mut done, refused) = self.import_blocks(vec![block]).await?;
        match (done.pop(), refused) {
            (Some(imported), _) => Ok(imported),
            (None, Some(e)) => Err(ImportError::Chain(e)),
            // One block in, so one of the two is set; answer "known" rather than panic.
            (None, None) => Ok(Imported {
                outcome: AddOutcome::AlreadyKnown,
                height: self.chain().height(),
                tip: None,
            }),
        }
    }

    /// Validates and applies `blocks` in order, stopping at the first one the chain refuses, then
    /// stores everything applied in **one** durable change (with the mempool changes the new tip
    /// implies), and returns once it is on disk: what each applied block did and the refusal, if
    /// any. Blocks are not announced here (the caller does, after this returns: a relayed block
    /// is on disk first); transactions re-admitted by a fork switch are relayed once durable. If
    /// the commit fails, nothing is acknowledged: the error is returned and the node fails.
    ///
    /// Sync imports a whole `get_blocks` batch this way: one change per batch instead of per block.
    pub(crate) async fn import_blocks(
        &self,
        blocks: Vec<Block>,
    ) -> Result<(Vec<Imported>, Option<ChainError>), StorageError> {
        self.import(blocks.into_iter().map(Incoming::Raw).collect())
            .await
    }

    /// [`Core::import_blocks`] for blocks that already passed the stateless stage (sync verifies
    /// them off the lock and off the runtime, see [`crate::sync`]): only the stateful stage runs
    /// under the import lock.
    pub(crate) async fn import_verified(
        &self,
        blocks: Vec<VerifiedBlock>,
    ) -> Result<(Vec<Imported>, Option<ChainError>), StorageError> {
        self.import(blocks.into_iter().map(Incoming::Verified).collect())
            .await
    }

    async fn import(
        &self,
        blocks: Vec<Incoming>,
    ) -> Result<(Vec<Imported>, Option<ChainError>), StorageError> {
        let slot = self.writer.reserve().await?;
        // The stateful stage is CPU work under the node's locks (for a 1,000-transfer block:
        // applying it, the state-tree update, the mempool's rebuild): on the blocking seam, so
        // that no runtime worker waits for it and `/status`, admissions and the network are
        // served meanwhile; on the CPU pool, beside the signature checks, not on tokio's
        // blocking pool with the disk jobs. Dropped unrun only when the runtime shuts down.
        let (done, refused, stored) = self
            .offload_cpu(move |core| core.apply_blocks(blocks, slot))
            .await
            .ok_or(StorageError::Closed)?;
        if let Some((pending, readmitted, new_best)) = stored {
            pending.durable().await?;
            self.events.publish(new_best);
            self.release_stored(&done);
            self.relay_readmitted(&readmitted);
        }
        Ok((done, refused))
    }

    /// Tells the chain that the best chain ending at the last block of `done` that changed it is
    /// on disk, so that it may forget blocks more than `k` below the tip (see `history.rs`).
    fn release_stored(&self, done: &[Imported]) {
        let tip = done.iter().rev().find_map(|d| match &d.outcome {
            AddOutcome::Extended | AddOutcome::Reorg { .. } => d.tip,
            _ => None,
        });
        if let Some(hash) = tip {
            let mut c = self.chain_mut();
            if let Some(index) = c.header_by_hash(&hash).map(|h| h.index) {
                c.mark_stored(index, &hash);
            }
        }
    }

    /// The in-memory part of [`Core::import_blocks`], under the import lock: applies the blocks,
    /// updates the mempool and queues the storage change on `slot` (under the mempool lock, so
    /// that admissions and imports reach the disk in memory's order). Returns the outcomes, the
    /// refusal, and the queued change with the transactions it re-admitted and the events of the
    /// blocks that joined the best chain, if anything changed.
    #[allow(clippy::type_complexity)]
    fn apply_blocks(
        &self,
        blocks: Vec<Incoming>,
        slot: Slot,
    ) -> (
        Vec<Imported>,
        Option<ChainError>,
        Option<(Pending, Vec<Transaction>, Vec<NodeEvent>)>,
    ) {
        let _import = lock(&self.import_lock);
        let mut commit = ChainCommit::default();
        let mut done = Vec::with_capacity(blocks.len());
        let mut refused = None;
        let mut best_changed = false;
        let mut reorgs = 0u64;
        // Blocks a fork switch abandoned, in order, with their transactions if the chain still
        // held them (those it stored and dropped are read back from storage below).
        let mut rolled_back: Vec<(Hash, Option<Vec<Transaction>>)> = Vec::new();
        let mut new_best: Vec<NodeEvent> = Vec::new();
        let equivocations_before = self.chain().equivocations_seen();
        for block in blocks {
            let now = self.now_ms();
            let validating = std::time::Instant::now();
            let (hash, verified) = match block {
                Incoming::Raw(b) => (b.hash(), self.verify_block(b, now)),
                Incoming::Verified(v) => (v.hash(), Ok(Some(v))),
            };
            let result = verified.and_then(|v| match v {
                Some(v) => {
                    let mut chain = self.chain_mut();
                    let r = chain.add_block(v, now);
                    if let Ok(AddOutcome::Reorg {
                        rolled_back: abandoned,
                        ..
                    }) = &r
                    {
                        // Before the chain's lock is released: a reader that no longer finds
                        // these transactions in the chain finds them here (`Core::tx_status`).
                        // Blocks whose transactions the chain no longer holds (stored, deeper
                        // than it keeps them) are not listed.
                        let mut moving = lock(&self.in_transit);
                        for h in abandoned {
                            if let Some(b) = chain.block_by_hash(h) {
                                moving.extend(b.transactions.iter().map(Transaction::id));
                            }
                        }
                    }
                    r
                }
                None => Ok(AddOutcome::AlreadyKnown),
            });
            if !matches!(result, Ok(AddOutcome::AlreadyKnown)) {
                self.metrics.ops.observe_validation(validating.elapsed());
            }
            let outcome = match result {
                Ok(o) => o,
                Err(e) => {
                    refused = Some(e);
                    break;
                }
            };
            let chain = self.chain();
            match &outcome {
                AddOutcome::AlreadyKnown => {}
                AddOutcome::SideChain => {
                    // Not needed for replay (which follows the best chain), but cheap, and it
                    // keeps every block this node accepted on disk.
                    commit.blocks.extend(chain.block_by_hash(&hash).cloned());
                    // A branch forking off the best chain at an epoch boundary: the fork
                    // point's snapshot is kept now, while its version is surely held (a switch
                    // to this branch may come when it no longer is).
                    commit
                        .stake_proofs
                        .extend(crate::http::proofs::boundary_stake_proofs(
                            &chain,
                            &self.genesis,
                            |s| self.slots.epoch_of_slot(s),
                            &[hash],
                        ));
                }
                AddOutcome::Extended | AddOutcome::Reorg { .. } => {
                    best_changed = true;
                    let applied: Vec<Hash> = match &outcome {
                        AddOutcome::Reorg {
                            applied,
                            rolled_back: old,
                        } => {
                            reorgs += 1;
                            rolled_back.extend(old.iter().map(|h| {
                                (*h, chain.block_by_hash(h).map(|b| b.transactions.clone()))
                            }));
                            applied.clone()
                        }
                        _ => vec![hash],
                    };
                    // The epoch boundaries these blocks reveal: their snapshots are kept now,
                    // while the boundary blocks' tree versions are held (see
                    // `boundary_stake_proofs`).
                    commit
                        .stake_proofs
                        .extend(crate::http::proofs::boundary_stake_proofs(
                            &chain,
                            &self.genesis,
                            |s| self.slots.epoch_of_slot(s),
                            &applied,
                        ));
                    for h in &applied {
                        if let Some(b) = chain.block_by_hash(h) {
                            commit.best.push((b.header.index, *h));
                            commit.blocks.push(b.clone());
                            new_best.push(NodeEvent::Block {
                                index: b.header.index,
                                hash: *h,
                                slot: b.header.slot,
                                tx_count: b.transactions.len(),
                            });
                        }
                    }
                }
            }
            done.push(Imported {
                outcome,
                height: chain.height(),
                tip: Some(chain.tip_hash()),
            });
        }
        self.metrics.height.set(gauge_value(self.chain().height()));
        self.metrics.reorgs.inc_by(reorgs);
        super::evidence::collect(self, equivocations_before, &mut commit);
        let rolled_back_txs = self.rolled_back_txs(rolled_back);
        if !best_changed {
            if commit.blocks.is_empty() {
                return (done, refused, None);
            }
            let pending = slot.send(WriteOp::Chain(commit));
            return (done, refused, Some((pending, Vec::new(), Vec::new())));
        }
        // The chain's tree writes (the versions of the new best blocks, rollbacks, pruning) go
        // to disk in the same transaction as the blocks.
        let tree_ops = self.chain_mut().take_tree_ops();
        let chain = self.chain();
        commit.state_tree = crate::state_commit::chain_ops(&chain, tree_ops, &commit.best);
        commit.height = Some(chain.height());
        // Side blocks that fell `k` below the tip can never be adopted: off the disk too.
        commit.side_floor = Some(chain.height().saturating_sub(self.genesis.k));
        let view = self.ledger_view(&chain);
        // What the new best blocks include: any other pending transaction whose nonce they used
        // up is a conflict, reported as dropped.
        let best: HashSet<Hash> = commit.best.iter().map(|(_, h)| *h).collect();
        let included: HashSet<Hash> = commit
            .blocks
            .iter()
            .filter(|b| best.contains(&b.hash()))
            .flat_map(|b| b.transactions.iter().map(Transaction::id))
            .collect();
        #[cfg(test)]
        if reorgs > 0 {
            if let Some((paused, resume)) = lock(&self.pause_before_rebuild).take() {
                let _ = paused.send(());
                let _ = resume.recv_timeout(std::time::Duration::from_secs(30));
            }
        }
        let mut mp = self.mempool();
        if rolled_back_txs.is_empty() {
            commit.mempool_remove = mp.revalidate_after(&view, Some(&included));
        } else {
            // Transactions of abandoned blocks go back to the pool if still valid.
            let (added, dropped) = mp.rebuild_after(&view, rolled_back_txs, Some(&included));
            commit.mempool_add = added;
            commit.mempool_remove = dropped;
        }
        // Re-admitted or dropped: the pool answers for them now.
        lock(&self.in_transit).clear();
        self.metrics.mempool_size.set(gauge_value(mp.len()));
        let readmitted = commit.mempool_add.clone();
        let pending = slot.send(WriteOp::Chain(commit));
        drop(mp);
        (done, refused, Some((pending, readmitted, new_best)))
    }

    /// The transactions of the blocks a fork switch abandoned, in order: from memory, or read
    /// back from storage for those the chain no longer held (they are stored: the chain drops
    /// transactions of stored blocks only). A block that cannot be read loses its transactions
    /// to the mempool only (their senders can submit them again); the failure is logged.
    fn rolled_back_txs(&self, blocks: Vec<(Hash, Option<Vec<Transaction>>)>) -> Vec<Transaction> {
        let mut out = Vec::new();
        for (h, txs) in blocks {
            match txs {
                Some(txs) => out.extend(txs),
                None => match self.storage.block(&h) {
                    Ok(Some(b)) => out.extend(b.transactions),
                    Ok(None) => {
                        tracing::warn!(hash = %h, "rolled-back block missing from storage")
                    }
                    Err(e) => {
                        tracing::warn!(hash = %h, error = %e, "rolled-back block unreadable")
                    }
                },
            }
        }
        out
    }
}

fn short(h: &Hash) -> String {
    h.to_hex()[..12].to_string()
}

/// Logs at INFO if the first argument is true, else at DEBUG (see [`crate::block_log`]).
macro_rules! block_line {
    ($own_line:expr, $($arg:tt)+) => {
        if $own_line {
            tracing::info!($($arg)+)
        } else {
            tracing::debug!($($arg)+)
        }
    };
}

impl Core {
    /// A block a peer announced: imported, then relayed to the other peers if it changed our
    /// chain (the sender is credited). A block whose parent we lack is checked as far as it can
    /// be without it, then fetched by sync; an invalid block gets its sender penalized.
    pub(crate) async fn on_block(&self, peer: PeerId, block: Block) {
        let hash = block.hash();
        if self.chain().contains(&hash) {
            return;
        }
        let net = self.net();
        let index = block.header.index;
        match self.import_block(block.clone()).await {
            Ok(imported) => {
                if !matches!(imported.outcome, AddOutcome::AlreadyKnown) {
                    self.metrics.blocks_received.inc();
                    self.observe_propagation(&block);
                    net.credit(peer);
                }
                self.announce(&block, &imported, Some(peer), false);
            }
            Err(ImportError::Chain(ChainError::UnknownParent { hash: parent })) => {
                // What can be checked without the parent is checked before anything is fetched
                // for it: an invalid block is refused, and its sender blamed, at once.
                let detached = self.chain().check_detached(&block);
                if let Err(e) = detached {
                    self.metrics.block_rejected(&e);
                    tracing::debug!(%peer, index, hash = %short(&hash), error = %e, "invalid block with unknown parent");
                    net.penalize(peer, block_offence(&e), &format!("invalid block: {e}"));
                    return;
                }
                tracing::debug!(%peer, index, parent = %short(&parent), "block with unknown parent: syncing");
                self.request_sync(peer, index);
            }
            Err(ImportError::Chain(ChainError::Block(e))) => {
                self.metrics.block_rejected(&e);
                tracing::debug!(%peer, index, hash = %short(&hash), error = %e, "invalid block from peer");
                net.penalize(peer, block_offence(&e), &format!("invalid block: {e}"));
            }
            Err(e) => {
                tracing::warn!(%peer, index, hash = %short(&hash), error = %e, "block not imported")
            }
        }
    }

    /// A block this node produced: imported and announced. True if it joined the best chain.
    pub(crate) async fn import_own(&self, block: Block) -> bool {
        let slot = block.header.slot;
        match self.import_block(block.clone()).await {
            Ok(imported) => {
                let produced = matches!(
                    imported.outcome,
                    AddOutcome::Extended | AddOutcome::Reorg { .. }
                );
                if produced {
                    self.metrics.blocks_produced.inc();
                }
                self.announce(&block, &imported, None, true);
                produced
            }
            // A block arrived for this slot while we mined, or storage failed: nothing stored,
            // nothing announced.
            Err(e) => {
                tracing::warn!(slot, error = %e, "own block not imported");
                false
            }
        }
    }

    /// Announces an import that changed the chain (to every peer but `from`, with our new tip)
    /// and logs it.
    fn announce(&self, block: &Block, imported: &Imported, from: Option<PeerId>, produced: bool) {
        let h = block.hash();
        match &imported.outcome {
            AddOutcome::Extended | AddOutcome::Reorg { .. } | AddOutcome::SideChain => {
                let net = self.net();
                net.broadcast_block(block, from);
                if from.is_some() {
                    self.metrics.ops.blocks_relayed.inc();
                }
                let tip = self.chain().tip_hash();
                net.update_tip(imported.height, tip);
            }
            AddOutcome::AlreadyKnown => return,
        }
        let what = if produced { "produced" } else { "received" };
        // Fork switches always get their own line; other blocks are rate-limited.
        let own_line =
            matches!(imported.outcome, AddOutcome::Reorg { .. }) || self.block_log_line(1);
        match &imported.outcome {
            AddOutcome::Reorg {
                rolled_back,
                applied,
            } => tracing::info!(
                index = block.header.index,
                slot = block.header.slot,
                hash = %short(&h),
                txs = block.transactions.len(),
                rolled_back = rolled_back.len(),
                applied = applied.len(),
                "block {what}: fork switch"
            ),
            AddOutcome::SideChain => block_line!(
                own_line,
                index = block.header.index,
                slot = block.header.slot,
                hash = %short(&h),
                "block {what}: side chain"
            ),
            _ => block_line!(
                own_line,
                index = block.header.index,
                slot = block.header.slot,
                hash = %short(&h),
                txs = block.transactions.len(),
                "block {what}"
            ),
        }
    }
}

/// The offence of sending a block that breaks `e`: rules no fork or delay can excuse (the
/// block is invalid on every chain) are [`Misbehaviour::InvalidBlock`] or, for a block over the
/// size limit, [`Misbehaviour::OversizedBlock`]; the rest (leader, slot, clock, transactions on
/// this chain) can be an honest node's view of another fork: [`Misbehaviour::RejectedBlock`].
pub(crate) fn block_offence(e: &BlockError) -> Misbehaviour {
    match e {
        BlockError::TooLarge { .. } | BlockError::TooManyTxs { .. } => Misbehaviour::OversizedBlock,
        BlockError::BadVersion { .. }
        | BlockError::WrongDifficulty { .. }
        | BlockError::BadPow { .. }
        | BlockError::BadTxRoot { .. }
        | BlockError::StateRoot { .. }
        | BlockError::BadBlockSignature(_)
        | BlockError::BadOpCertSignature { .. }
        | BlockError::BadHotKeySignature { .. } => Misbehaviour::InvalidBlock,
        _ => Misbehaviour::RejectedBlock,
    }
}
