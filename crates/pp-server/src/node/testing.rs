//! A node core for unit tests: a devnet in a temporary directory, its storage writer running,
//! no other task. Also the test-only windows on its private state.

use super::*;
use crate::clock::SystemClock;
use crate::storage::Storage;

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
    core_with_blocking(dir, key, g, Arc::new(crate::blocking::TokioBlocking))
}

/// Like [`core_with_genesis`], with `blocking` as the node's blocking seam (the storage writer
/// keeps tokio's pool).
pub(crate) fn core_with_blocking(
    dir: &std::path::Path,
    key: &KeyPair,
    g: Genesis,
    blocking: Arc<dyn crate::blocking::Blocking>,
) -> Arc<Core> {
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
    Core::new(Parts {
        node_id: "test".into(),
        genesis: g,
        key: key.clone(),
        vrf: None,
        producer: None,
        clock: Arc::new(SystemClock),
        slots,
        chain,
        mempool,
        storage,
        writer,
        health,
        metrics,
        sync_batch: 200,
        sync_tx: tx,
        blocking: blocking.clone(),
        cpu: blocking,
    })
}

/// A block by this node's key on `parent` in `slot` (mined at the network's difficulty),
/// carrying `txs`.
pub(crate) fn block_on(
    core: &Core,
    parent: &pp_ledger::BlockHeader,
    slot: u64,
    txs: Vec<pp_ledger::Transaction>,
) -> Block {
    // The state root: from the states of blocks built here (any branch), else from the chain
    // if it holds the parent.
    let after = pp_ledger::testing::root_on(&core.genesis, parent, &core.key.public(), &txs);
    let root = match &after {
        Some((r, _)) => *r,
        None => core
            .chain()
            .state_root_after(&parent.hash(), &core.key.public(), &txs)
            .unwrap_or(pp_ledger::Hash::ZERO),
    };
    let b = Block::produce(
        parent,
        slot,
        core.slots.slot_start_ms(slot),
        core.genesis.difficulty,
        txs,
        root,
        &core.key,
        &core.genesis_hash,
        1 << 24,
    )
    .unwrap();
    if let Some((_, st)) = after {
        pp_ledger::testing::remember_state(b.hash(), st);
    }
    b
}

impl Core {
    /// The database (tests only: the node reads and writes it through its own operations).
    pub(crate) fn storage(&self) -> &Storage {
        &self.storage
    }

    /// The chain (whose account state tree the node persists), read-locked.
    pub(crate) fn state_tree(&self) -> TreeView<'_> {
        TreeView(self.chain())
    }
}

/// The chain's account state tree, as the tests look at it: versions are best-chain indexes.
pub(crate) struct TreeView<'a>(
    std::sync::RwLockReadGuard<'a, pp_ledger::Chain<pp_ouroboros::Ouroboros>>,
);

impl TreeView<'_> {
    /// The oldest and latest kept versions.
    pub(crate) fn versions(&self) -> Option<(u64, u64)> {
        self.0.state_tree().versions().ok().flatten()
    }

    /// The best block whose version `index` is, if kept.
    pub(crate) fn block_at(&self, index: u64) -> Option<pp_ledger::Hash> {
        self.versions()
            .filter(|(lo, hi)| (*lo..=*hi).contains(&index))
            .and_then(|_| self.0.best_hash_at(index))
    }

    /// The root of version `index`.
    pub(crate) fn root(
        &self,
        index: u64,
    ) -> Result<pp_ledger::Hash, pp_ledger::state_tree::StateTreeError> {
        self.0.state_tree().root(index)
    }

    /// `account`'s leaf value at version `index` and its proof.
    pub(crate) fn prove(
        &self,
        index: u64,
        account: &pp_ledger::PublicKey,
    ) -> Result<
        (Option<Vec<u8>>, pp_ledger::state_tree::StateProof),
        pp_ledger::state_tree::StateTreeError,
    > {
        self.0
            .state_tree()
            .prove(index, &pp_ledger::state_tree::account_key(account))
    }

    /// Number of live nodes.
    pub(crate) fn node_count(&self) -> usize {
        self.0.state_tree().store().memory().node_count()
    }
}
