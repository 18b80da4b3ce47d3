//! The running node: its state, private to this module, and the one API that the HTTP handlers,
//! the [`Server`](crate::Server) facade and the node's tasks all call.
//!
//! [`Core`] is built once by [`crate::builder`] (configuration, genesis and keys resolved, storage
//! opened) and shared as `Arc<Core>`. Nothing outside this module reaches its fields: callers use
//! its operations and queries, each in one obvious place:
//!
//! | file          | what it does |
//! |---------------|--------------|
//! | `mod.rs`      | the state, its accessors and the read-only queries (tip, accounts, transaction status) |
//! | `admit.rs`    | transactions in: [`Core::submit_tx`] and friends — admit, journal, then relay (the only place that relays a transaction) |
//! | `import.rs`   | blocks in: [`Core::import_blocks`] (validate, apply, store), [`Core::on_block`] (a peer's block), [`Core::import_own`] (ours), and the announcement of what changed the chain |
//! | `peers.rs`    | peers: [`Core::connect`], [`Core::on_peer_connected`] — connect, then sync if the peer is ahead (the only place that asks for sync) — and bans |
//! | `produce.rs`  | [`Core::produce`]: build, mine and sign a block when this node leads a slot |
//! | `replay.rs`   | start-up: replay of the stored chain, restore of the mempool journal |
//! | `history.rs`  | reading the best chain at any depth (memory window, then storage) |
//! | `evidence.rs` | equivocation evidence: stored with the import that revealed it, served at `GET /evidence` |
//! | `view.rs`     | the chain as peers see it ([`pp_net::ChainView`]) and as the mempool sees it |
//!
//! The network is always there: a node without P2P holds a [`NoopNet`](crate::net::NoopNet)
//! that has no peers and sends nothing, so no operation branches on whether P2P is on (only what
//! is *reported* does: `p2p_enabled` in `/status`, `409 p2p_disabled` for admin calls).
//!
//! Every write to the database goes through the storage writer ([`crate::writer`]): a change is
//! queued while the lock that orders it in memory is held, so the disk sees changes in memory's
//! order, and its durability is awaited after every lock is released.
//!
//! Locks, always taken in this order, never held across an `.await`:
//! 1. `import_lock` (std `Mutex<()>`): serializes block imports; the import's storage change is
//!    queued before it is released (the commit itself is awaited afterwards).
//! 2. `chain` (std `RwLock`): the chain, its tip state and its account state tree. Written
//!    inside an import (for the duration of `add_block`, and to take the tree's writes for the
//!    commit) and by the producer (the state root of its block: applied and undone); readers
//!    (HTTP, the fetch server) are never blocked by disk I/O.
//! 3. `mempool` (std `Mutex`).
//!
//! `tip` (the published tip) and `pending` (the pool's length) are written as the chain's write
//! guard and the mempool's guard are released, and read by `/status` and `/health`, which so
//! never wait for an import or an admission.

mod admit;
mod evidence;
mod history;
mod import;
mod peers;
mod produce;
mod replay;
#[cfg(test)]
pub(crate) mod testing;
#[cfg(test)]
mod tests;
mod view;

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, RwLock, RwLockReadGuard, RwLockWriteGuard};

use pp_ledger::chain::Chain;
use pp_ledger::{Block, Genesis, Hash, KeyPair, PublicKey};
use pp_net::PeerId;
use pp_ouroboros::{Ouroboros, SlotClock};
use tokio::sync::mpsc;

use crate::clock::Clock;
use crate::events::EventBus;
use crate::mempool::{DropReason, Mempool};
use crate::metrics::{gauge_value, Metrics};
use crate::net::{NoopNet, PeerNet};
use crate::storage::{Storage, StorageError};
use crate::writer::{Health, Writer};

pub(crate) use import::block_offence;
pub(crate) use peers::ConnectError;

/// Most blocks a `get_blocks` answer may carry from this node.
pub(crate) const MAX_SERVE_BLOCKS: u32 = 500;
/// Most headers a `get_headers` answer may carry from this node.
pub(crate) const MAX_SERVE_HEADERS: u32 = 2_000;
/// Newest best-chain blocks searched for a transaction that is not (yet) in the index.
const RECENT_BLOCKS_SCANNED: u64 = 4;

/// A request to the sync task: `peer` claims a best chain ending at `tip_index`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SyncRequest {
    pub(crate) peer: PeerId,
    pub(crate) tip_index: u64,
}

/// What [`Core::new`] is built from: everything the builder resolved once.
pub(crate) struct Parts {
    pub(crate) node_id: String,
    pub(crate) genesis: Genesis,
    /// The node key: its account and its network identity.
    pub(crate) key: KeyPair,
    /// Praos networks: the VRF secret key this node proves leadership with (none in classic
    /// mode, or when the node has none: then it never leads a praos slot).
    pub(crate) vrf: Option<pp_ouroboros::VrfSecretKey>,
    /// Praos networks: the stakeholder this node produces for, its hot key and certificate
    /// (see [`crate::opcert`]).
    pub(crate) producer: Option<crate::opcert::ProducerKeys>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) slots: SlotClock,
    pub(crate) chain: Chain<Ouroboros>,
    pub(crate) mempool: Mempool,
    pub(crate) storage: Arc<Storage>,
    /// The only path for writes once the node runs (see [`crate::writer`]).
    pub(crate) writer: Writer,
    /// Whether storage still works (fail-stop).
    pub(crate) health: Arc<Health>,
    pub(crate) metrics: Metrics,
    /// Blocks asked per `get_blocks` while syncing.
    pub(crate) sync_batch: u32,
    /// Hints to the sync task (`request_sync`).
    pub(crate) sync_tx: mpsc::Sender<SyncRequest>,
    /// Where CPU-heavy stateless work runs (signature batches): tokio's blocking pool, or
    /// inline under a simulation.
    pub(crate) blocking: Arc<dyn crate::blocking::Blocking>,
    /// Where CPU-bound work runs (signature batches, block application): the node's
    /// [`CpuPool`](crate::CpuPool), or inline under a simulation.
    pub(crate) cpu: Arc<dyn crate::blocking::Blocking>,
}

/// The running node's state, shared by its tasks and reached only through its methods.
pub(crate) struct Core {
    node_id: String,
    genesis: Genesis,
    genesis_hash: Hash,
    key: KeyPair,
    vrf: Option<pp_ouroboros::VrfSecretKey>,
    producer: Option<crate::opcert::ProducerKeys>,
    clock: Arc<dyn Clock>,
    slots: SlotClock,
    storage: Arc<Storage>,
    writer: Writer,
    health: Arc<Health>,
    metrics: Metrics,
    /// The P2P network, set once when it has started (it needs this node to serve peers, so it
    /// starts after the node is built). Unset: P2P is off, and [`Core::net`] is `noop`.
    net: OnceLock<Arc<dyn PeerNet>>,
    noop: Arc<dyn PeerNet>,
    sync_batch: u32,
    sync_tx: mpsc::Sender<SyncRequest>,
    blocking: Arc<dyn crate::blocking::Blocking>,
    cpu: Arc<dyn crate::blocking::Blocking>,
    /// The chain's stateless stage (fixed once the chain is built: the genesis and the shared
    /// signature cache), kept here so that getting it takes no lock.
    verifier: pp_ledger::BlockVerifier,
    /// This node itself, for work handed to the blocking seam (which needs an owned handle).
    this: std::sync::Weak<Core>,
    /// Start time and log rate limit, for operators (see [`crate::observe`]).
    observe: crate::observe::Observe,
    /// What happened, for `GET /events` (published once durable).
    events: EventBus,
    /// What the sync engine is doing, for `GET /status` (see [`crate::sync`]).
    sync_status: crate::sync::SyncStatus,
    import_lock: Mutex<()>,
    chain: RwLock<Chain<Ouroboros>>,
    /// The best tip as of the last write to `chain`, for readers that must not wait for an
    /// import (`GET /status`, `/health`): published by [`ChainWrite`]'s drop while the write
    /// lock is still held, so it never goes back in time; its own lock is held only to copy.
    tip: Mutex<TipSnapshot>,
    /// `mempool`'s length as of the last release of its lock (see [`MempoolGuard`]).
    pending: AtomicUsize,
    mempool: Mutex<Mempool>,
    /// Transactions of the blocks a fork switch abandoned, from the switch until the mempool's
    /// rebuild has re-admitted or dropped them: in that window neither the best chain nor the
    /// pool holds them, and [`Core::tx_status`] answers them pending. Filled under the chain's
    /// write lock (so a reader that no longer finds one in the chain finds it here), emptied
    /// under the mempool's lock after the rebuild. The innermost lock: nothing else is locked
    /// while it is held.
    in_transit: Mutex<HashSet<Hash>>,
    /// Tests only: an import that switched to another branch stops here before the mempool's
    /// rebuild: it sends on the first channel, then waits on the second.
    #[cfg(test)]
    pub(crate) pause_before_rebuild: Mutex<Option<PausePoint>>,
}

/// Where a test holds an import ([`Core::pause_before_rebuild`]).
#[cfg(test)]
pub(crate) type PausePoint = (std::sync::mpsc::Sender<()>, std::sync::mpsc::Receiver<()>);

/// The best tip at one moment: what `GET /status` and `/health` report without taking the chain
/// lock.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TipSnapshot {
    /// Its index (the height).
    pub(crate) height: u64,
    /// Its hash.
    pub(crate) hash: Hash,
    /// Its slot.
    pub(crate) slot: u64,
}

impl TipSnapshot {
    fn of(chain: &Chain<Ouroboros>) -> TipSnapshot {
        TipSnapshot {
            height: chain.height(),
            hash: chain.tip_hash(),
            slot: chain.tip().header.slot,
        }
    }
}

/// Write access to the chain; on release it publishes the tip to [`Core::tip_snapshot`] (while
/// still holding the write lock, so snapshots follow the chain's order).
pub(crate) struct ChainWrite<'a> {
    guard: RwLockWriteGuard<'a, Chain<Ouroboros>>,
    tip: &'a Mutex<TipSnapshot>,
}

impl std::ops::Deref for ChainWrite<'_> {
    type Target = Chain<Ouroboros>;
    fn deref(&self) -> &Self::Target {
        &self.guard
    }
}

impl std::ops::DerefMut for ChainWrite<'_> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.guard
    }
}

impl Drop for ChainWrite<'_> {
    fn drop(&mut self) {
        *lock(self.tip) = TipSnapshot::of(&self.guard);
    }
}

/// The mempool's lock; on release it publishes the pool's length to [`Core::pending_count`].
pub(crate) struct MempoolGuard<'a> {
    guard: MutexGuard<'a, Mempool>,
    len: &'a AtomicUsize,
}

impl std::ops::Deref for MempoolGuard<'_> {
    type Target = Mempool;
    fn deref(&self) -> &Self::Target {
        &self.guard
    }
}

impl std::ops::DerefMut for MempoolGuard<'_> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.guard
    }
}

impl Drop for MempoolGuard<'_> {
    fn drop(&mut self) {
        self.len.store(self.guard.len(), Ordering::Relaxed);
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding a lock cannot leave these structures half-updated in a way that is
    // worse than stopping the node, and no code path here panics on input; keep serving.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Where a transaction stands, for `GET /transactions/{id}`.
pub(crate) enum TxStatus {
    /// In the mempool.
    Pending,
    /// In this best-chain block (boxed: a block is much larger than the other variants).
    Included(Box<Block>),
    /// Acknowledged once, then dropped for this reason.
    Dropped(DropReason),
    /// Neither pending nor on the best chain.
    Unknown,
}

impl Core {
    pub(crate) fn new(p: Parts) -> Arc<Core> {
        let genesis_hash = p.genesis.hash();
        p.metrics.height.set(gauge_value(p.chain.height()));
        p.metrics.mempool_size.set(gauge_value(p.mempool.len()));
        let observe = crate::observe::Observe::new(p.clock.now_ms());
        Arc::new_cyclic(|this| Core {
            this: this.clone(),
            observe,
            node_id: p.node_id,
            genesis: p.genesis,
            genesis_hash,
            key: p.key,
            vrf: p.vrf,
            producer: p.producer,
            clock: p.clock,
            slots: p.slots,
            storage: p.storage,
            writer: p.writer,
            health: p.health,
            metrics: p.metrics,
            net: OnceLock::new(),
            noop: Arc::new(NoopNet),
            sync_batch: p.sync_batch.clamp(1, MAX_SERVE_BLOCKS),
            sync_tx: p.sync_tx,
            blocking: p.blocking,
            cpu: p.cpu,
            events: EventBus::default(),
            sync_status: crate::sync::SyncStatus::default(),
            import_lock: Mutex::new(()),
            tip: Mutex::new(TipSnapshot::of(&p.chain)),
            verifier: p.chain.verifier().clone(),
            pending: AtomicUsize::new(p.mempool.len()),
            chain: RwLock::new(p.chain),
            mempool: Mutex::new(p.mempool),
            in_transit: Mutex::new(HashSet::new()),
            #[cfg(test)]
            pause_before_rebuild: Mutex::new(None),
        })
    }

    /// This node's CPU pool, which its network and its sync share (pp-net decodes large
    /// frames and builds large answers on it; sync checks signatures on it).
    pub(crate) fn cpu_pool(&self) -> Arc<dyn crate::blocking::Blocking> {
        self.cpu.clone()
    }

    /// Runs `f` on this node's CPU pool and returns its result, like [`Core::offload`]: for
    /// CPU-bound work (a block's application, a signature batch) that must not hold a runtime
    /// worker nor crowd the blocking pool's disk jobs. `None` if the job was dropped unrun.
    pub(crate) async fn offload_cpu<R: Send + 'static>(
        &self,
        f: impl FnOnce(&Core) -> R + Send + 'static,
    ) -> Option<R> {
        let core = self.this.upgrade()?;
        crate::blocking::run(&self.cpu, move || f(&core)).await
    }

    /// Runs `f` on this node's blocking seam (tokio's blocking pool; inline under a simulation)
    /// and returns its result: for CPU-heavy or storage-reading work that must not hold a
    /// runtime worker. `None` if the runtime is shutting down (the job was dropped unrun).
    pub(crate) async fn offload<R: Send + 'static>(
        &self,
        f: impl FnOnce(&Core) -> R + Send + 'static,
    ) -> Option<R> {
        let core = self.this.upgrade()?;
        crate::blocking::run(&self.blocking, move || f(&core)).await
    }

    /// The best tip as of the last change to the chain, without waiting for an import in
    /// progress (it may be one block behind a `chain()` read taken after that import).
    pub(crate) fn tip_snapshot(&self) -> TipSnapshot {
        *lock(&self.tip)
    }

    /// The chain's stateless stage ([`pp_ledger::Chain::verifier`]), without the chain lock.
    pub(crate) fn verifier(&self) -> &pp_ledger::BlockVerifier {
        &self.verifier
    }

    /// Read access to the chain. Hold it briefly.
    pub(crate) fn chain(&self) -> RwLockReadGuard<'_, Chain<Ouroboros>> {
        self.chain
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn chain_mut(&self) -> ChainWrite<'_> {
        ChainWrite {
            guard: self
                .chain
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
            tip: &self.tip,
        }
    }

    /// The mempool (after the chain lock, if both are needed).
    fn mempool(&self) -> MempoolGuard<'_> {
        MempoolGuard {
            guard: lock(&self.mempool),
            len: &self.pending,
        }
    }

    /// The node's id (its label in logs and in `hello`).
    pub(crate) fn node_id(&self) -> &str {
        &self.node_id
    }

    /// The genesis this node runs.
    pub(crate) fn genesis(&self) -> &Genesis {
        &self.genesis
    }

    /// The hash of [`Core::genesis`].
    pub(crate) fn genesis_hash(&self) -> Hash {
        self.genesis_hash
    }

    /// The node's public key (its account and network identity).
    pub(crate) fn public_key(&self) -> PublicKey {
        self.key.public()
    }

    /// The network's slot clock.
    pub(crate) fn slots(&self) -> &SlotClock {
        &self.slots
    }

    /// The node's metrics registry.
    pub(crate) fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The event bus of `GET /events`.
    pub(crate) fn events(&self) -> &EventBus {
        &self.events
    }

    /// What the sync engine is doing (set by it, read by `/status`).
    pub(crate) fn sync_status(&self) -> &crate::sync::SyncStatus {
        &self.sync_status
    }

    /// Blocks asked per `get_blocks` while syncing.
    pub(crate) fn sync_batch(&self) -> u32 {
        self.sync_batch
    }

    /// Start time and log rate limit (see [`crate::observe`]).
    pub(crate) fn observe(&self) -> &crate::observe::Observe {
        &self.observe
    }

    /// Why the storage failed, if it did (then the node is stopped: fail-stop).
    pub(crate) fn storage_failure(&self) -> Option<&str> {
        self.health.failure()
    }

    /// The peer-to-peer network; a [`NoopNet`] when P2P is off.
    pub(crate) fn net(&self) -> &Arc<dyn PeerNet> {
        self.net.get().unwrap_or(&self.noop)
    }

    /// Whether P2P is on (reported in `/status`; admin calls that need peers refuse otherwise).
    pub(crate) fn p2p_enabled(&self) -> bool {
        self.net.get().is_some()
    }

    /// Attaches the started network (once; later calls are ignored).
    pub(crate) fn set_network(&self, net: Arc<dyn PeerNet>) {
        let _ = self.net.set(net);
    }

    /// The stakeholder key this node produces blocks for: the cold key of its certificate in
    /// praos mode, its own key otherwise.
    pub(crate) fn producer_key(&self) -> PublicKey {
        self.producer
            .as_ref()
            .map_or_else(|| self.key.public(), |p| p.cold)
    }

    pub(crate) fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    /// The current slot (0 before genesis time).
    pub(crate) fn current_slot(&self) -> u64 {
        self.slots.slot_at(self.now_ms()).unwrap_or(0)
    }

    /// Index of the best block, as last published ([`Core::tip_snapshot`]): never waits for
    /// the chain lock, which an import holds on the CPU pool while a block is applied, so a
    /// runtime worker asking for the height is never parked behind it.
    pub(crate) fn height(&self) -> u64 {
        self.tip_snapshot().height
    }

    /// Number of pending transactions.
    pub(crate) fn pending_count(&self) -> usize {
        self.pending.load(Ordering::Relaxed)
    }

    /// Bytes held by pending transactions.
    pub(crate) fn mempool_bytes(&self) -> u64 {
        self.mempool().bytes()
    }

    /// The next nonce `account` should use, counting its pending transactions.
    pub(crate) fn pending_nonce(&self, account: &PublicKey) -> u64 {
        let c = self.chain();
        let view = self.ledger_view(&c);
        self.mempool().pending_nonce(&view, account)
    }

    /// The best-chain block that includes transaction `id`, if any.
    pub(crate) fn included_in(&self, id: &Hash) -> Result<Option<Block>, StorageError> {
        // The indexed block, if it is still on the best chain (from memory or from storage).
        if let Some(h) = self.storage.tx_block(id)? {
            if let Some((b, true)) = self.block_by_hash(&h)? {
                return Ok(Some(b));
            }
        }
        // A block being committed right now has left the mempool but is not indexed yet: look
        // at the newest blocks in memory.
        let c = self.chain();
        let h = c.height();
        let found = (h.saturating_sub(RECENT_BLOCKS_SCANNED)..=h)
            .rev()
            .filter_map(|i| c.block_at(i))
            .find(|b| b.transactions.iter().any(|t| t.id() == *id));
        Ok(found.cloned())
    }

    /// Where transaction `id` stands: pending, included in a best-chain block, dropped (with the
    /// reason) or unknown.
    ///
    /// The order of the looks is what makes a transaction on the move never unknown. Included:
    /// an import extends the chain before it removes the block's transactions from the pool,
    /// so one not in the pool any more is in the chain. Rolled back: a fork switch takes it out
    /// of the chain and puts it in `in_transit` under the chain's write lock, the rebuild puts
    /// it back in the pool (or drops it, with a reason) before emptying `in_transit`, so one
    /// not in the chain any more is in `in_transit` or, after, in the pool: hence the pool is
    /// looked at again last.
    pub(crate) fn tx_status(&self, id: &Hash) -> Result<TxStatus, StorageError> {
        if self.mempool().contains(id) {
            return Ok(TxStatus::Pending);
        }
        if let Some(b) = self.included_in(id)? {
            return Ok(TxStatus::Included(Box::new(b)));
        }
        if lock(&self.in_transit).contains(id) {
            return Ok(TxStatus::Pending);
        }
        let mp = self.mempool();
        if mp.contains(id) {
            return Ok(TxStatus::Pending);
        }
        Ok(match mp.dropped(id) {
            Some(reason) => TxStatus::Dropped(reason.clone()),
            None => TxStatus::Unknown,
        })
    }

    /// Asks the sync task to catch up with `peer` (dropped if the queue is full: it is a hint).
    fn request_sync(&self, peer: PeerId, tip_index: u64) {
        let _ = self.sync_tx.try_send(SyncRequest { peer, tip_index });
    }

    /// The metrics exposition, with the gauges and P2P counters read from their sources now.
    pub(crate) fn metrics_text(&self) -> String {
        if self.p2p_enabled() {
            let n = self.net();
            self.metrics
                .peers
                .set(crate::metrics::gauge_value(n.peer_count()));
            self.metrics.observe_net(&n.stats(), n.bans().len());
        }
        self.observe_scrape();
        // The verifier copy shares the chain's cache: no chain lock on the HTTP thread.
        let verifications = self.verifier().cache().verifications();
        self.metrics.observe_verifications(verifications);
        self.metrics.encode()
    }

    /// Closes the database (at shutdown, so that the same process can reopen it).
    pub(crate) fn close_storage(&self) {
        self.storage.close();
    }
}
