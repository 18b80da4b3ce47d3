//! The state shared by every task of a running node, and the operations that change it: importing
//! a block (ours or a peer's), admitting a transaction, producing a block.
//!
//! Every write to the database goes through the storage writer ([`crate::writer`]): a change is
//! queued while the lock that orders it in memory is held, so the disk sees changes in memory's
//! order, and its durability is awaited after every lock is released.
//!
//! Locks, always taken in this order, never held across an `.await`:
//! 1. `import_lock` (std `Mutex<()>`): serializes block imports; the import's storage change is
//!    queued before it is released (the commit itself is awaited afterwards).
//! 2. `chain` (std `RwLock`): the chain and tip state. Written only inside an import, for the
//!    duration of `add_block`; readers (HTTP, production, the fetch server) are never blocked by
//!    disk I/O.
//! 3. `mempool` (std `Mutex`).

use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, RwLock, RwLockReadGuard, RwLockWriteGuard};

use pp_ledger::chain::{AddOutcome, Chain, Screened};
use pp_ledger::error::ChainError;
use pp_ledger::{
    Accounts, Block, BlockHeader, Genesis, Hash, KeyPair, LedgerState, PublicKey, Signature,
    SignatureCache, Transaction, VerifiedBlock,
};
use pp_net::{ChainView, PeerId};
use pp_ouroboros::{Ouroboros, SlotClock};
use tokio::sync::mpsc;

use crate::clock::Clock;
use crate::events::{EventBus, NodeEvent};
use crate::mempool::{AccountView, DropReason, Inserted, Mempool, MempoolError};
use crate::metrics::{gauge_value, Metrics};
use crate::net::PeerNet;
use crate::storage::{ChainCommit, Storage, StorageError, WriteOp};
use crate::writer::{Health, Pending, Slot, WriteError, Writer};

/// Hashes tried between two yields to the runtime while mining, so a block search never stalls
/// the tasks sharing the thread for more than a few milliseconds.
const MINE_CHUNK: u64 = 20_000;
/// Most blocks a `get_blocks` answer may carry from this node.
pub(crate) const MAX_SERVE_BLOCKS: u32 = 500;
/// Most headers a `get_headers` answer may carry from this node.
pub(crate) const MAX_SERVE_HEADERS: u32 = 2_000;

/// A request to the sync task: `peer` claims a best chain ending at `tip_index`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SyncRequest {
    pub(crate) peer: PeerId,
    pub(crate) tip_index: u64,
}

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

/// The tip state seen through the mempool's eyes.
pub(crate) struct LedgerView<'a> {
    pub(crate) state: &'a LedgerState,
    pub(crate) genesis_hash: Hash,
    /// The chain's signature cache: the mempool verified the signature through it already.
    pub(crate) sigs: &'a SignatureCache,
}

impl Accounts for LedgerView<'_> {
    fn balance(&self, a: &PublicKey) -> u64 {
        self.state.balance(a)
    }
    fn nonce(&self, a: &PublicKey) -> u64 {
        self.state.nonce(a)
    }
    fn stake(&self, a: &PublicKey) -> u64 {
        self.state.stake(a)
    }
    fn stakeholder_id(&self, a: &PublicKey) -> Option<&str> {
        self.state.stakeholder_id(a)
    }
    fn stakeholder_key(&self, id: &str) -> Option<PublicKey> {
        self.state.stakeholder_key(id)
    }
    fn praos(&self) -> bool {
        Accounts::praos(self.state)
    }
    fn vrf_key(&self, a: &PublicKey) -> Option<PublicKey> {
        self.state.vrf_key(a)
    }
    fn vrf_owner(&self, v: &PublicKey) -> Option<PublicKey> {
        Accounts::vrf_owner(self.state, v)
    }
}

impl AccountView for LedgerView<'_> {
    fn genesis_hash(&self) -> Hash {
        self.genesis_hash
    }
    fn signature_cache(&self) -> &SignatureCache {
        self.sigs
    }
}

/// What an import did, for the caller to announce and log.
#[derive(Debug, Clone)]
pub(crate) struct Imported {
    pub(crate) outcome: AddOutcome,
    pub(crate) height: u64,
    /// The tip right after this block (what was stored with it, when the best chain changed).
    pub(crate) tip: Option<Hash>,
}

/// The answer to one submitted transaction.
pub(crate) type AdmitResult = Result<Inserted, MempoolError>;

/// Transactions inserted into the mempool whose journal change is queued but maybe not durable
/// yet ([`Core::begin_admit`]); [`Admission::finish`] waits for it.
pub(crate) struct Admission {
    results: Vec<AdmitResult>,
    new: Vec<Hash>,
    pending: Option<Pending>,
}

impl Admission {
    /// Waits until the new transactions are durable and returns the results. If they cannot be
    /// stored they leave the mempool again and are refused (`storage_error`): never acknowledged.
    pub(crate) async fn finish(self, core: &Core) -> Vec<AdmitResult> {
        let Some(pending) = self.pending else {
            return self.results;
        };
        match pending.durable().await {
            Ok(()) => {
                core.metrics.txs_accepted.inc_by(self.new.len() as u64);
                core.events
                    .publish(self.new.iter().map(|&id| NodeEvent::Tx { id }));
                self.results
            }
            Err(e) => {
                core.forget(&self.new);
                self.results
                    .into_iter()
                    .map(|r| match r {
                        Ok(Inserted::New) => Err(storage_refusal(&e)),
                        other => other,
                    })
                    .collect()
            }
        }
    }
}

/// The refusal of a transaction that could not be made durable.
pub(crate) fn storage_refusal(e: &WriteError) -> MempoolError {
    MempoolError::NotStored {
        message: e.to_string(),
    }
}

/// A block to import: as received (both stages run under the import lock), or already through
/// the stateless stage.
enum Incoming {
    Raw(Block),
    Verified(VerifiedBlock),
}

/// Everything a running node shares between its tasks.
pub(crate) struct Core {
    pub(crate) node_id: String,
    pub(crate) genesis: Genesis,
    pub(crate) genesis_hash: Hash,
    pub(crate) key: KeyPair,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) slots: SlotClock,
    pub(crate) storage: Arc<Storage>,
    /// The only path for writes once the node runs (see [`crate::writer`]).
    pub(crate) writer: Writer,
    /// Whether storage still works (fail-stop).
    pub(crate) health: Arc<Health>,
    pub(crate) metrics: Metrics,
    pub(crate) net: OnceLock<Arc<dyn PeerNet>>,
    /// Praos networks: the VRF secret key this node proves leadership with (set once at start;
    /// unset in classic mode or when the node has none, and then it never leads a praos slot).
    pub(crate) vrf: OnceLock<pp_ouroboros::VrfSecretKey>,
    /// Praos networks: the stakeholder this node produces for, its hot key and certificate (set
    /// once at start, see [`crate::opcert`]).
    pub(crate) producer: OnceLock<crate::opcert::ProducerKeys>,
    pub(crate) sync_batch: u32,
    pub(crate) sync_tx: mpsc::Sender<SyncRequest>,
    /// Start time and log rate limit, for operators (see [`crate::observe`]).
    pub(crate) observe: crate::observe::Observe,
    /// What happened, for `GET /events` (published once durable).
    pub(crate) events: EventBus,
    /// What the sync engine is doing, for `GET /status` (see [`crate::sync`]).
    pub(crate) sync_status: crate::sync::SyncStatus,
    import_lock: Mutex<()>,
    chain: RwLock<Chain<Ouroboros>>,
    /// The account state tree (see [`crate::state_commit`]); locked after `chain`.
    pub(crate) state_tree: Mutex<crate::state_commit::NodeTree>,
    mempool: Mutex<Mempool>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding a lock cannot leave these structures half-updated in a way that is
    // worse than stopping the node, and no code path here panics on input; keep serving.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Core {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        node_id: String,
        genesis: Genesis,
        key: KeyPair,
        clock: Arc<dyn Clock>,
        slots: SlotClock,
        chain: Chain<Ouroboros>,
        mempool: Mempool,
        storage: Arc<Storage>,
        store: (Writer, Arc<Health>, Metrics),
        sync_batch: u32,
        sync_tx: mpsc::Sender<SyncRequest>,
    ) -> Core {
        let genesis_hash = genesis.hash();
        let keep_versions = genesis.k;
        let (writer, health, metrics) = store;
        metrics.height.set(gauge_value(chain.height()));
        metrics.mempool_size.set(gauge_value(mempool.len()));
        let observe = crate::observe::Observe::new(clock.now_ms());
        Core {
            observe,
            node_id,
            genesis,
            genesis_hash,
            key,
            clock,
            slots,
            storage,
            writer,
            health,
            metrics,
            net: OnceLock::new(),
            vrf: OnceLock::new(),
            producer: OnceLock::new(),
            sync_batch: sync_batch.clamp(1, MAX_SERVE_BLOCKS),
            sync_tx,
            events: EventBus::default(),
            sync_status: crate::sync::SyncStatus::default(),
            import_lock: Mutex::new(()),
            state_tree: Mutex::new(crate::state_commit::NodeTree::new(
                Default::default(),
                keep_versions,
            )),
            chain: RwLock::new(chain),
            mempool: Mutex::new(mempool),
        }
    }

    /// Read access to the chain. Hold it briefly.
    pub(crate) fn chain(&self) -> RwLockReadGuard<'_, Chain<Ouroboros>> {
        self.chain
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn chain_mut(&self) -> RwLockWriteGuard<'_, Chain<Ouroboros>> {
        self.chain
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The mempool (after the chain lock, if both are needed).
    pub(crate) fn mempool(&self) -> MutexGuard<'_, Mempool> {
        lock(&self.mempool)
    }

    /// The stakeholder key this node produces blocks for: the cold key of its certificate in
    /// praos mode, its own key otherwise.
    pub(crate) fn producer_key(&self) -> PublicKey {
        self.producer
            .get()
            .map_or_else(|| self.key.public(), |p| p.cold)
    }

    pub(crate) fn net(&self) -> Option<&Arc<dyn PeerNet>> {
        self.net.get()
    }

    pub(crate) fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    /// The current slot (0 before genesis time).
    pub(crate) fn current_slot(&self) -> u64 {
        self.slots.slot_at(self.now_ms()).unwrap_or(0)
    }

    /// The cheap checks under the read lock ([`Chain::screen`]), then the stateless stage with no
    /// lock held. `None` if the block is already held.
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
        let (done, refused, stored) = self.apply_blocks(blocks, slot);
        if let Some((pending, readmitted, new_best)) = stored {
            pending.durable().await?;
            self.events.publish(new_best);
            self.release_stored(&done);
            // Re-admitted transactions of abandoned blocks are relayed once they are journaled:
            // peers that were on the winning branch may never have seen them, and without a
            // relay only the nodes that held them could include them.
            if let Some(net) = self.net() {
                for tx in &readmitted {
                    net.broadcast_tx(tx, None);
                }
            }
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
        slot: Slot<'_>,
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
                Some(v) => self.chain_mut().add_block(v, now),
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
                    if let Err(e) = lock(&self.state_tree).on_best_change(&chain, &applied) {
                        tracing::warn!(error = %e, "state tree update failed");
                    }
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
        crate::evidence::collect(self, equivocations_before, &mut commit);
        let rolled_back_txs = self.rolled_back_txs(rolled_back);
        if !best_changed {
            if commit.blocks.is_empty() {
                return (done, refused, None);
            }
            let pending = slot.send(WriteOp::Chain(commit));
            return (done, refused, Some((pending, Vec::new(), Vec::new())));
        }
        let chain = self.chain();
        commit.state_tree = lock(&self.state_tree).take_ops();
        commit.height = Some(chain.height());
        // Side blocks that fell `k` below the tip can never be adopted: off the disk too.
        commit.side_floor = Some(chain.height().saturating_sub(self.genesis.k));
        let view = LedgerView {
            state: chain.state(),
            genesis_hash: self.genesis_hash,
            sigs: chain.signature_cache(),
        };
        // What the new best blocks include: any other pending transaction whose nonce they used
        // up is a conflict, reported as dropped.
        let best: HashSet<Hash> = commit.best.iter().map(|(_, h)| *h).collect();
        let included: HashSet<Hash> = commit
            .blocks
            .iter()
            .filter(|b| best.contains(&b.hash()))
            .flat_map(|b| b.transactions.iter().map(Transaction::id))
            .collect();
        let mut mp = self.mempool();
        if rolled_back_txs.is_empty() {
            commit.mempool_remove = mp.revalidate_after(&view, Some(&included));
        } else {
            // Transactions of abandoned blocks go back to the pool if still valid.
            let (added, dropped) = mp.rebuild_after(&view, rolled_back_txs, Some(&included));
            commit.mempool_add = added;
            commit.mempool_remove = dropped;
        }
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

    /// Validates a transaction against the tip state and the mempool, journals it durably, and
    /// returns whether it is new (to relay) or already pending.
    pub(crate) async fn admit_tx(&self, tx: Transaction) -> Result<Inserted, MempoolError> {
        let mut r = self.admit_txs(vec![tx]).await;
        r.pop().unwrap_or(Err(storage_refusal(&WriteError::Closed)))
    }

    /// Admits `txs` in order (each judged with the earlier ones pending) and journals the new
    /// ones in **one** durable change; returns once they are on disk, one result per transaction.
    pub(crate) async fn admit_txs(&self, txs: Vec<Transaction>) -> Vec<AdmitResult> {
        self.begin_admit(txs).await.finish(self).await
    }

    /// The first half of [`Core::admit_txs`]: inserts into the mempool and queues the journal
    /// change, without waiting for it to be durable (so that a caller can admit the next
    /// transaction meanwhile, in arrival order, and have the writer commit both together).
    pub(crate) async fn begin_admit(&self, txs: Vec<Transaction>) -> Admission {
        match self.writer.reserve().await {
            Ok(slot) => {
                let (results, new, pending) =
                    self.insert_txs(txs, |c| slot.send(WriteOp::Chain(c)));
                Admission {
                    results,
                    new,
                    pending,
                }
            }
            Err(e) => Admission {
                results: txs.iter().map(|_| Err(storage_refusal(&e))).collect(),
                new: Vec::new(),
                pending: None,
            },
        }
    }

    /// Like [`Core::admit_txs`] for one transaction, committing on the calling thread (blocking
    /// it for one fsync): for synchronous callers outside the runtime, such as the simulation
    /// harness.
    pub(crate) fn admit_tx_now(&self, tx: Transaction) -> Result<Inserted, MempoolError> {
        if let Err(e) = self.health.check() {
            return Err(storage_refusal(&e));
        }
        let (mut results, new, written) =
            self.insert_txs(vec![tx], |c| self.storage.commit_chain(&c));
        let result = results
            .pop()
            .unwrap_or(Err(storage_refusal(&WriteError::Closed)));
        match written {
            None | Some(Ok(())) => {
                self.metrics.txs_accepted.inc_by(new.len() as u64);
                self.events
                    .publish(new.iter().map(|&id| NodeEvent::Tx { id }));
                result
            }
            Some(Err(e)) => {
                let e = match e {
                    StorageError::Closed => WriteError::Closed,
                    e => {
                        self.health.fail(e.to_string());
                        self.metrics.storage_failed.set(1);
                        WriteError::Failed(e.to_string())
                    }
                };
                self.forget(&new);
                Err(storage_refusal(&e))
            }
        }
    }

    /// Inserts `txs` into the mempool in order and hands the journal change for the new ones to
    /// `journal` while the mempool lock is still held. Returns one result per transaction, the
    /// ids of the new ones, and what `journal` returned (if there was anything to journal).
    fn insert_txs<R>(
        &self,
        txs: Vec<Transaction>,
        journal: impl FnOnce(ChainCommit) -> R,
    ) -> (Vec<AdmitResult>, Vec<Hash>, Option<R>) {
        let chain = self.chain();
        let view = LedgerView {
            state: chain.state(),
            genesis_hash: self.genesis_hash,
            sigs: chain.signature_cache(),
        };
        let mut mp = self.mempool();
        let mut results = Vec::with_capacity(txs.len());
        let mut commit = ChainCommit::default();
        for tx in txs {
            let r = mp.insert(&view, tx.clone());
            match &r {
                Ok(Inserted::New) => commit.mempool_add.push(tx),
                Ok(Inserted::Duplicate) => {}
                Err(_) => {
                    self.metrics.txs_rejected.inc();
                }
            }
            results.push(r);
        }
        self.metrics.mempool_size.set(gauge_value(mp.len()));
        // Room made for newcomers leaves the journal too (a newcomer evicted by a later one of
        // the same batch is not journaled at all).
        commit.mempool_remove = mp.take_evicted();
        if !commit.mempool_remove.is_empty() {
            let gone: HashSet<Hash> = commit.mempool_remove.iter().copied().collect();
            commit.mempool_add.retain(|t| !gone.contains(&t.id()));
        }
        let new: Vec<Hash> = commit.mempool_add.iter().map(Transaction::id).collect();
        // A duplicate may still be on its way to disk (another request admitted it a moment
        // ago): an empty change queued behind it is durable only after it, so answering after
        // that never acknowledges what the disk does not hold.
        let duplicate = results.iter().any(|r| matches!(r, Ok(Inserted::Duplicate)));
        let written = (!new.is_empty() || duplicate).then(|| journal(commit));
        drop(mp);
        (results, new, written)
    }

    /// Takes transactions that could not be journaled back out of the mempool.
    fn forget(&self, ids: &[Hash]) {
        let mut mp = self.mempool();
        for id in ids {
            mp.remove(id);
        }
        self.metrics.mempool_size.set(gauge_value(mp.len()));
    }

    /// If this node leads `slot` and the tip is from an earlier slot, builds, mines and signs a
    /// block on the tip. Mining yields to the runtime every [`MINE_CHUNK`] hashes and gives up at
    /// the end of the slot.
    pub(crate) async fn produce(&self, slot: u64) -> Option<Block> {
        if self.health.failure().is_some() {
            return None;
        }
        let me = self.producer_key();
        let producer = self.producer.get();
        let (parent, txs, vrf) = {
            let chain = self.chain();
            if chain.tip().header.slot >= slot {
                return None;
            }
            // Classic: the public leader; praos: our VRF proves the slot (evidence for the header).
            let cert = producer.map(|p| &p.cert);
            let vrf = crate::praos::leader_evidence(&chain, slot, &me, self.vrf.get(), cert)?;
            let mp = self.mempool();
            let txs = chain.select_transactions(mp.candidates());
            (chain.tip().header.clone(), txs, vrf)
        };
        let ids: Vec<Hash> = txs.iter().map(Transaction::id).collect();
        let mut header = BlockHeader {
            version: self.genesis.block_version(),
            index: parent.index.checked_add(1)?,
            slot,
            prev_hash: parent.hash(),
            tx_root: pp_ledger::merkle_root(&ids),
            producer: me,
            timestamp: self.now_ms(),
            difficulty: self.genesis.difficulty,
            ocert: vrf.and(producer).map(|p| Box::new(p.cert)),
            vrf: vrf.map(Box::new),
            nonce: 0,
        };
        let deadline = self.slots.slot_start_ms(slot.saturating_add(1));
        // Expected work is 16^difficulty hashes; 64 times that fails with probability e^-64.
        let max_attempts = 16u64
            .checked_pow(header.difficulty)
            .and_then(|w| w.checked_mul(64))
            .unwrap_or(u64::MAX);
        let mut attempts = 0u64;
        loop {
            if header.mine(MINE_CHUNK).is_some() {
                break;
            }
            attempts = attempts.saturating_add(MINE_CHUNK);
            if self.now_ms() >= deadline || attempts >= max_attempts {
                tracing::warn!(
                    slot,
                    difficulty = header.difficulty,
                    "no proof of work found within the slot"
                );
                return None;
            }
            tokio::task::yield_now().await;
        }
        let mut block = Block {
            header,
            signature: Signature::default(),
            transactions: txs,
        };
        // Praos: the certificate's hot key signs; classic: the node's (stakeholder) key.
        block.sign(producer.map_or(&self.key, |p| &p.hot), &self.genesis_hash);
        Some(block)
    }

    /// Replays stored best-chain blocks into the (fresh) chain; stops at the first block that is
    /// missing or invalid and trims the stored best chain there.
    ///
    /// Blocks are read one at a time and the chain is told each is stored, so memory holds the
    /// chain's window, never the whole history.
    pub(crate) fn replay(&self) -> Result<u64, StorageError> {
        let mut applied = 0u64;
        let mut trim = false;
        let mut tree = match self.storage.state_tree()? {
            Ok(store) => crate::state_commit::NodeTree::new(store, self.genesis.k),
            Err(why) => {
                tracing::warn!(%why, "stored state tree is corrupt; rebuilding it");
                crate::state_commit::NodeTree::new(Default::default(), self.genesis.k)
            }
        };
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
                    if let Err(e) = tree.replayed(&chain, applied, *h) {
                        tracing::warn!(error = %e, "state tree replay failed");
                    }
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
        if let Err(e) = tree.finish_replay(&self.chain()) {
            tracing::warn!(error = %e, "state tree replay failed");
        }
        // The tree's repairs go to disk with the trimmed height (or alone).
        let state_tree = tree.take_ops();
        if trim || !state_tree.is_empty() {
            self.storage.commit_chain(&ChainCommit {
                height: trim.then_some(applied),
                state_tree,
                ..ChainCommit::default()
            })?;
        }
        *lock(&self.state_tree) = tree;
        let height = self.chain().height();
        self.metrics.height.set(gauge_value(height));
        Ok(height)
    }

    /// Re-admits journaled mempool transactions (those still valid on the replayed tip).
    pub(crate) fn restore_mempool(&self) -> Result<usize, StorageError> {
        let (txs, _bad) = self.storage.mempool_txs()?;
        let mut sorted = txs;
        sorted.sort_by_key(|t| (t.body.from, t.body.nonce));
        let mut stale = Vec::new();
        let n = {
            let chain = self.chain();
            let view = LedgerView {
                state: chain.state(),
                genesis_hash: self.genesis_hash,
                sigs: chain.signature_cache(),
            };
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

    /// Asks the sync task to catch up with `peer` (dropped if a request is already queued).
    /// The metrics exposition, with the gauges and P2P counters read from their sources now.
    pub(crate) fn metrics_text(&self) -> String {
        if let Some(n) = self.net() {
            self.metrics
                .peers
                .set(crate::metrics::gauge_value(n.peer_count()));
            self.metrics.observe_net(&n.stats(), n.bans().len());
        }
        self.observe_scrape();
        let verifications = self.chain().signature_cache().verifications();
        self.metrics.observe_verifications(verifications);
        self.metrics.encode()
    }

    pub(crate) fn request_sync(&self, peer: PeerId, tip_index: u64) {
        let _ = self.sync_tx.try_send(SyncRequest { peer, tip_index });
    }
}

/// The fetch server's window on the chain (answers `get_blocks` / `get_headers` from peers).
pub(crate) struct CoreView(pub(crate) Arc<Core>);

// A node whose storage failed closes its network (see `tasks::consensus_loop`); until then it
// serves no block or header that its disk may not hold.
impl ChainView for CoreView {
    fn tip(&self) -> (u64, Hash) {
        let c = self.0.chain();
        (c.height(), c.tip_hash())
    }

    fn get_blocks(&self, from_index: u64, count: u32) -> Vec<Block> {
        if self.0.health.failure().is_some() {
            return Vec::new();
        }
        let n = u64::from(count.min(MAX_SERVE_BLOCKS));
        crate::history::blocks_from(&self.0, from_index, n).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "cannot read stored blocks to serve");
            Vec::new()
        })
    }

    fn get_headers(&self, locator: &[Hash], count: u32) -> Vec<BlockHeader> {
        if self.0.health.failure().is_some() {
            return Vec::new();
        }
        let n = u64::from(count.min(MAX_SERVE_HEADERS));
        crate::history::headers_after(&self.0, locator, n).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "cannot read stored headers to serve");
            Vec::new()
        })
    }

    fn has_block(&self, hash: &Hash) -> bool {
        self.0.chain().contains(hash)
    }

    fn has_tx(&self, id: &Hash) -> bool {
        self.0.mempool().contains(id)
    }

    fn get_tx(&self, id: &Hash) -> Option<Transaction> {
        self.0.mempool().get(id).cloned()
    }

    fn pending_txs(&self, want: &mut dyn FnMut(&Hash) -> bool) -> Vec<Transaction> {
        self.0.mempool().matching(want)
    }
}

#[cfg(test)]
pub(crate) mod testing {
    use super::*;
    use crate::clock::SystemClock;

    /// A node core over a fresh devnet (sole stakeholder `key`) stored in `dir`, no tasks running.
    pub(crate) fn core(dir: &std::path::Path, key: &KeyPair) -> Arc<Core> {
        core_with_genesis_time(dir, key, SystemClock.now_ms())
    }

    /// Like [`core`], with the devnet starting at `genesis_time` (in the past: lower slots are
    /// usable at once, e.g. to build forks).
    pub(crate) fn core_with_genesis_time(
        dir: &std::path::Path,
        key: &KeyPair,
        genesis_time: u64,
    ) -> Arc<Core> {
        core_with_genesis(
            dir,
            key,
            Genesis::devnet("test", key.public(), genesis_time),
        )
    }

    /// Like [`core`], on genesis `g` (whose stakeholder should be `key`).
    pub(crate) fn core_with_genesis(dir: &std::path::Path, key: &KeyPair, g: Genesis) -> Arc<Core> {
        let rules = Ouroboros::new(&g).unwrap();
        let slots = SlotClock::from_genesis(&g).unwrap();
        let chain = Chain::new(g.clone(), rules).unwrap();
        let mempool = Mempool::new(100, 10);
        let storage = Arc::new(Storage::open(&dir.join("chain.redb")).unwrap());
        let (tx, _rx) = mpsc::channel(1);
        let metrics = Metrics::new();
        let health = Arc::new(Health::default());
        let (stop, stop_rx) = tokio::sync::watch::channel(false);
        let (writer, task) = Writer::new(
            storage.clone(),
            Arc::new(crate::blocking::TokioBlocking),
            health.clone(),
            &metrics,
            stop_rx,
        );
        // The writer runs until the test's runtime ends.
        tokio::spawn(async move {
            let _keep_running = stop;
            task.await;
        });
        Arc::new(Core::new(
            "test".into(),
            g,
            key.clone(),
            Arc::new(SystemClock),
            slots,
            chain,
            mempool,
            storage,
            (writer, health, metrics),
            200,
            tx,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn next_block(core: &Core, txs: Vec<Transaction>) -> Block {
        let tip = core.chain().tip().header.clone();
        block_on(core, &tip, tip.slot + 1, txs)
    }

    #[tokio::test]
    async fn imported_block_is_stored_and_its_transactions_leave_the_mempool() {
        let dir = tempfile::tempdir().unwrap();
        let key = KeyPair::from_seed([61u8; 32]);
        let core = testing::core(dir.path(), &key);
        let to = KeyPair::from_seed([62u8; 32]).public();
        let t0 = Transaction::transfer(&key, to, 5, 1, 0, &core.genesis_hash);
        let t1 = Transaction::transfer(&key, to, 5, 1, 1, &core.genesis_hash);
        assert_eq!(core.admit_tx(t0.clone()).await, Ok(Inserted::New));
        assert_eq!(core.admit_tx(t1.clone()).await, Ok(Inserted::New));
        assert_eq!(core.admit_tx(t1.clone()).await, Ok(Inserted::Duplicate));
        assert_eq!(core.storage.mempool_txs().unwrap().0.len(), 2);

        // A block including only t0: t1 stays pending, t0 leaves the pool and the journal.
        let b = next_block(&core, vec![t0.clone()]);
        let imported = core.import_block(b.clone()).await.unwrap();
        assert_eq!(imported.outcome, AddOutcome::Extended);
        assert_eq!(imported.height, 1);
        assert_eq!(core.storage.best_chain().unwrap(), vec![b.hash()]);
        assert_eq!(core.storage.tx_block(&t0.id()).unwrap(), Some(b.hash()));
        assert!(!core.mempool().contains(&t0.id()));
        assert!(core.mempool().contains(&t1.id()));
        assert_eq!(core.storage.mempool_txs().unwrap().0, vec![t1]);
        // The same block again is known, and nothing changes.
        assert_eq!(
            core.import_block(b).await.unwrap().outcome,
            AddOutcome::AlreadyKnown
        );
        assert_eq!(core.metrics.height.get(), 1);
    }

    /// Records what the node announces; every request fails (no peers).
    #[derive(Default)]
    struct RecordingNet {
        txs: Mutex<Vec<Hash>>,
    }

    impl crate::net::PeerNet for RecordingNet {
        fn local_addr(&self) -> std::net::SocketAddr {
            std::net::SocketAddr::from(([127, 0, 0, 1], 0))
        }
        fn peers(&self) -> Vec<pp_net::PeerInfo> {
            Vec::new()
        }
        fn peer_count(&self) -> usize {
            0
        }
        fn known_addrs(&self) -> Vec<String> {
            Vec::new()
        }
        fn add_known_addr(&self, _addr: &str) {}
        fn broadcast_block(&self, _block: &Block, _except: Option<pp_net::PeerId>) {}
        fn broadcast_tx(&self, tx: &Transaction, _except: Option<pp_net::PeerId>) {
            lock(&self.txs).push(tx.id());
        }
        fn update_tip(&self, _index: u64, _hash: Hash) {}
        fn penalize(&self, _peer: pp_net::PeerId, _offence: pp_net::Misbehaviour, _reason: &str) {}
        fn connect<'a>(
            &'a self,
            _addr: &'a str,
        ) -> futures::future::BoxFuture<'a, Result<pp_net::PeerInfo, pp_net::NetError>> {
            Box::pin(async { Err(pp_net::NetError::Shutdown) })
        }
        fn get_blocks(
            &self,
            _peer: pp_net::PeerId,
            _from_index: u64,
            _count: u32,
        ) -> futures::future::BoxFuture<'_, Result<Vec<Block>, pp_net::NetError>> {
            Box::pin(async { Err(pp_net::NetError::Shutdown) })
        }
        fn get_headers(
            &self,
            _peer: pp_net::PeerId,
            _locator: Vec<Hash>,
            _count: u32,
        ) -> futures::future::BoxFuture<'_, Result<Vec<BlockHeader>, pp_net::NetError>> {
            Box::pin(async { Err(pp_net::NetError::Shutdown) })
        }
        fn shutdown(&self) -> futures::future::BoxFuture<'_, ()> {
            Box::pin(async {})
        }
    }

    fn block_on(core: &Core, parent: &BlockHeader, slot: u64, txs: Vec<Transaction>) -> Block {
        Block::produce(
            parent,
            slot,
            core.slots.slot_start_ms(slot),
            core.genesis.difficulty,
            txs,
            &core.key,
            &core.genesis_hash,
            1 << 24,
        )
        .unwrap()
    }

    #[tokio::test]
    async fn fork_switch_relays_the_transactions_it_puts_back_in_the_mempool() {
        let dir = tempfile::tempdir().unwrap();
        let key = KeyPair::from_seed([66u8; 32]);
        let start = crate::clock::SystemClock.now_ms() - 60_000;
        let core = testing::core_with_genesis_time(dir.path(), &key, start);
        let net = Arc::new(RecordingNet::default());
        assert!(core.net.set(net.clone()).is_ok());
        let genesis = core.chain().tip().header.clone();
        let to = KeyPair::from_seed([67u8; 32]).public();
        let t0 = Transaction::transfer(&key, to, 5, 1, 0, &core.genesis_hash);

        // Our branch: one block (slot 5) holding t0.
        let ours = block_on(&core, &genesis, 5, vec![t0.clone()]);
        assert_eq!(
            core.import_block(ours).await.unwrap().outcome,
            AddOutcome::Extended
        );
        // A longer branch from genesis (slots 3, 4) without t0 wins.
        let c1 = block_on(&core, &genesis, 3, vec![]);
        let c2 = block_on(&core, &c1.header, 4, vec![]);
        assert_eq!(
            core.import_block(c1).await.unwrap().outcome,
            AddOutcome::SideChain
        );
        assert!(matches!(
            core.import_block(c2).await.unwrap().outcome,
            AddOutcome::Reorg { .. }
        ));

        // t0 is pending again, journaled, and announced so that other nodes can include it.
        assert!(core.mempool().contains(&t0.id()));
        assert_eq!(core.storage.mempool_txs().unwrap().0, vec![t0.clone()]);
        assert_eq!(*lock(&net.txs), vec![t0.id()]);
    }

    #[tokio::test]
    async fn refused_block_is_neither_applied_nor_stored() {
        let dir = tempfile::tempdir().unwrap();
        let key = KeyPair::from_seed([63u8; 32]);
        let core = testing::core(dir.path(), &key);
        let mut b = next_block(&core, vec![]);
        b.header.nonce = b.header.nonce.wrapping_add(1); // breaks the signature (and maybe PoW)
        assert!(matches!(
            core.import_block(b).await,
            Err(ImportError::Chain(ChainError::Block(_)))
        ));
        assert_eq!(core.chain().height(), 0);
        assert!(core.storage.best_chain().unwrap().is_empty());
    }

    #[tokio::test]
    async fn batch_import_stops_at_the_first_refused_block_and_keeps_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let key = KeyPair::from_seed([64u8; 32]);
        let core = testing::core(dir.path(), &key);
        // Build two valid blocks on a scratch copy of the chain, then a broken third.
        let b1 = next_block(&core, vec![]);
        let b2 = {
            let slot = b1.header.slot + 1;
            Block::produce(
                &b1.header,
                slot,
                core.slots.slot_start_ms(slot),
                core.genesis.difficulty,
                vec![],
                &key,
                &core.genesis_hash,
                1 << 24,
            )
            .unwrap()
        };
        let mut b3 = b2.clone();
        b3.header.index += 1;
        let (done, refused) = core
            .import_blocks(vec![b1.clone(), b2.clone(), b3])
            .await
            .unwrap();
        assert_eq!(done.len(), 2);
        assert!(refused.is_some());
        assert_eq!(
            core.storage.best_chain().unwrap(),
            vec![b1.hash(), b2.hash()]
        );
    }

    #[tokio::test]
    async fn chain_view_serves_blocks_and_headers_after_the_fork_point() {
        let dir = tempfile::tempdir().unwrap();
        let key = KeyPair::from_seed([65u8; 32]);
        let core = testing::core(dir.path(), &key);
        let b1 = next_block(&core, vec![]);
        core.import_block(b1.clone()).await.unwrap();
        let view = CoreView(core.clone());
        assert_eq!(view.tip(), (1, b1.hash()));
        let blocks = view.get_blocks(0, 10);
        assert_eq!(blocks.len(), 2);
        let genesis_hash = blocks[0].hash();
        let headers = view.get_headers(&[genesis_hash], 10);
        assert_eq!(headers, vec![b1.header.clone()]);
        assert!(view.get_headers(&[b1.hash()], 10).is_empty());
    }

    #[tokio::test]
    async fn produce_only_when_leader_and_block_is_valid() {
        let dir = tempfile::tempdir().unwrap();
        let key = KeyPair::from_seed([66u8; 32]);
        let core = testing::core(dir.path(), &key);
        let b = core.produce(1).await.unwrap();
        assert_eq!(b.header.producer, key.public());
        assert!(b.header.meets_pow());
        core.import_block(b).await.unwrap();
        // Not again for a slot at or before the tip's.
        assert!(core.produce(1).await.is_none());
    }

    /// What `GET /transactions/{id}` answers: (HTTP status, `status` field).
    async fn tx_status(core: &Arc<Core>, id: &Hash) -> (u16, String) {
        use tower::ServiceExt as _;
        let app = crate::http::router(core.clone(), None);
        let req = axum::http::Request::get(format!("/transactions/{id}"))
            .body(axum::body::Body::empty())
            .unwrap();
        let res = app.oneshot(req).await.unwrap();
        let status = res.status().as_u16();
        let body = axum::body::to_bytes(res.into_body(), 1 << 20)
            .await
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        (status, v["status"].as_str().unwrap_or("").to_string())
    }

    #[tokio::test]
    async fn no_acknowledged_transaction_is_silently_lost_in_a_fork_switch() {
        let dir = tempfile::tempdir().unwrap();
        let key = KeyPair::from_seed([68u8; 32]);
        let start = crate::clock::SystemClock.now_ms() - 60_000;
        // The test pool holds at most 10 transactions per sender.
        let core = testing::core_with_genesis_time(dir.path(), &key, start);
        let genesis = core.chain().tip().header.clone();
        let to = KeyPair::from_seed([69u8; 32]).public();
        let txs: Vec<Transaction> = (0..12)
            .map(|n| Transaction::transfer(&key, to, 5, 1, n, &core.genesis_hash))
            .collect();
        // Our branch: a block (slot 5) with t0, t1; then t2..t11 acknowledged on top of it.
        let ours = block_on(&core, &genesis, 5, txs[..2].to_vec());
        core.import_block(ours).await.unwrap();
        for t in &txs[2..] {
            assert_eq!(core.admit_tx(t.clone()).await, Ok(Inserted::New));
        }
        // A longer branch without them wins: t0, t1 come back in front of t2..t11.
        let c1 = block_on(&core, &genesis, 3, vec![]);
        let c2 = block_on(&core, &c1.header, 4, vec![]);
        core.import_block(c1).await.unwrap();
        assert!(matches!(
            core.import_block(c2).await.unwrap().outcome,
            AddOutcome::Reorg { .. }
        ));
        // Every acknowledged transaction is still known: pending here.
        for t in &txs {
            assert_eq!(tx_status(&core, &t.id()).await, (200, "pending".into()));
        }
        // The sender's next nonce counts all of them: no `bad_nonce` surprise.
        let next = {
            let c = core.chain();
            let view = LedgerView {
                state: c.state(),
                genesis_hash: core.genesis_hash,
                sigs: c.signature_cache(),
            };
            core.mempool().pending_nonce(&view, &key.public())
        };
        assert_eq!(next, 12);
        // And they are journaled: a restart brings them back.
        assert_eq!(core.storage.mempool_txs().unwrap().0.len(), 12);
    }

    #[tokio::test]
    async fn a_pending_transaction_beaten_by_a_conflicting_block_is_reported_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let key = KeyPair::from_seed([70u8; 32]);
        let core = testing::core(dir.path(), &key);
        let to = KeyPair::from_seed([71u8; 32]).public();
        let mine = Transaction::transfer(&key, to, 5, 1, 0, &core.genesis_hash);
        let other = Transaction::transfer(&key, to, 6, 1, 0, &core.genesis_hash);
        core.admit_tx(mine.clone()).await.unwrap();
        let b = next_block(&core, vec![other.clone()]);
        core.import_block(b).await.unwrap();
        assert_eq!(
            tx_status(&core, &other.id()).await,
            (200, "included".into())
        );
        assert_eq!(tx_status(&core, &mine.id()).await, (200, "dropped".into()));
        assert_eq!(
            core.mempool().dropped(&mine.id()),
            Some(&crate::mempool::DropReason::Conflict)
        );
    }

    #[tokio::test]
    async fn transactions_admitted_together_share_one_durable_commit() {
        let dir = tempfile::tempdir().unwrap();
        let key = KeyPair::from_seed([72u8; 32]);
        let core = testing::core(dir.path(), &key);
        let to = KeyPair::from_seed([73u8; 32]).public();
        let txs: Vec<Transaction> = (0..8)
            .map(|n| Transaction::transfer(&key, to, 5, 1, n, &core.genesis_hash))
            .collect();
        let before = core.metrics.storage_commits.get();
        let results = core.admit_txs(txs.clone()).await;
        assert!(results.iter().all(|r| *r == Ok(Inserted::New)));
        assert_eq!(core.metrics.storage_commits.get() - before, 1);
        assert_eq!(core.storage.mempool_txs().unwrap().0.len(), 8);
        // Admissions queued one after another before any commit are committed together too.
        let more: Vec<Transaction> = (8..10)
            .map(|n| Transaction::transfer(&key, to, 5, 1, n, &core.genesis_hash))
            .collect();
        let before = core.metrics.storage_commits.get();
        let a = core.begin_admit(vec![more[0].clone()]).await;
        let b = core.begin_admit(vec![more[1].clone()]).await;
        assert_eq!(b.finish(&core).await, vec![Ok(Inserted::New)]);
        assert_eq!(a.finish(&core).await, vec![Ok(Inserted::New)]);
        assert!(core.metrics.storage_commits.get() - before <= 2);
        assert_eq!(core.storage.mempool_txs().unwrap().0.len(), 10);
    }
}
