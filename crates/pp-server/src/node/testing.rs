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
    Arc::new(Core::new(Parts {
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
    }))
}

/// A block by this node's key on `parent` in `slot` (mined at the network's difficulty),
/// carrying `txs`.
pub(crate) fn block_on(
    core: &Core,
    parent: &pp_ledger::BlockHeader,
    slot: u64,
    txs: Vec<pp_ledger::Transaction>,
) -> Block {
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

impl Core {
    /// The database (tests only: the node reads and writes it through its own operations).
    pub(crate) fn storage(&self) -> &Storage {
        &self.storage
    }

    /// The node key (tests sign blocks and transactions with it).
    pub(crate) fn key(&self) -> &KeyPair {
        &self.key
    }

    /// The account state tree.
    pub(crate) fn state_tree(&self) -> MutexGuard<'_, crate::state_commit::NodeTree> {
        lock(&self.state_tree)
    }
}
