//! The node's account state tree (docs/state-commitment.md §8 and §12): one version per best
//! block (the block's index), kept in memory for reads and written to redb in the same write
//! transaction as the chain change it follows.
//!
//! * [`RedbNodeStore`] is the [`NodeStore`]: reads come from a [`MemoryStore`] holding every
//!   live node; every write is also recorded as a [`TreeOp`], which the import queues in its
//!   [`crate::storage::ChainCommit`] so that the storage writer applies it in the commit of the
//!   blocks it belongs to. The tree on disk therefore always matches the committed best chain,
//!   a `kill -9` included; [`NodeTree::replayed`] still checks it against the replayed chain at
//!   startup (a database written before the tree existed, or a replay stopped early) and
//!   repairs it: rollback where the stored versions run ahead or off the chain, incremental
//!   catch-up where they lag, a full rebuild from the ledger state where nothing fits.
//! * [`NodeTree::on_best_change`] writes the new tip's version from the accounts its blocks
//!   changed (O(changed × log n)), rolls back on a fork switch, and prunes versions more than
//!   `k` below the tip.

use std::collections::BTreeMap;

use pp_ledger::chain::Chain;
use pp_ledger::state_tree::{
    account_key, AccountLeaf, Child, MemoryStore, Node, NodeKey, NodeStore, StateProof, StateTree,
    StateTreeError, StoreError,
};
use pp_ledger::{ConsensusRules, Decode, Encode, Hash, LedgerState, PublicKey};
use redb::{ReadableTable, TableDefinition, TableError};

/// Nodes: `NodeKey::to_bytes()` → the node's stored form.
const NODES: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new("state_nodes");
/// Roots: version → root record (`0x00` empty, or `0x01`/`0x02` internal/leaf ‖ version ‖ hash).
const ROOTS: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("state_roots");
/// Stale lists: version → the node keys it replaced, concatenated.
const STALE: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("state_stale");
/// The block each version stands for (32 zero bytes: a version whose root was not computed
/// for its own block, see [`NodeTree::on_best_change`]).
const BLOCKS: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("state_blocks");

/// One write of the tree, to replay on disk in order.
#[derive(Debug, Clone)]
pub enum TreeOp {
    /// Store a node (its stored form).
    PutNode(NodeKey, Vec<u8>),
    /// Delete a node.
    DeleteNode(NodeKey),
    /// Record the root of a version.
    PutRoot(u64, Option<Child>),
    /// Forget the root (and block) of a version.
    DeleteRoot(u64),
    /// Add keys to the stale list of a version.
    PutStale(u64, Vec<NodeKey>),
    /// Delete the stale list of a version.
    TakeStale(u64),
    /// The block a version stands for.
    Block(u64, Hash),
    /// Delete the whole tree (before a rebuild).
    Clear,
}

fn root_bytes(root: &Option<Child>) -> Vec<u8> {
    match root {
        None => vec![0],
        Some(c) => {
            let mut b = Vec::with_capacity(41);
            b.push(if c.leaf { 2 } else { 1 });
            b.extend_from_slice(&c.version.to_be_bytes());
            b.extend_from_slice(&c.hash.0);
            b
        }
    }
}

fn root_from(b: &[u8]) -> Option<Option<Child>> {
    match (b.first()?, b.len()) {
        (0, 1) => Some(None),
        (t @ (1 | 2), 41) => Some(Some(Child {
            leaf: *t == 2,
            version: u64::from_be_bytes(b[1..9].try_into().ok()?),
            hash: Hash(b[9..41].try_into().ok()?),
        })),
        _ => None,
    }
}

/// Applies `ops` in order inside the storage's write transaction `tx`.
pub(crate) fn write_ops(tx: &redb::WriteTransaction, ops: &[TreeOp]) -> Result<(), redb::Error> {
    if ops.is_empty() {
        return Ok(());
    }
    let mut nodes = tx.open_table(NODES)?;
    let mut roots = tx.open_table(ROOTS)?;
    let mut stale = tx.open_table(STALE)?;
    let mut blocks = tx.open_table(BLOCKS)?;
    for op in ops {
        match op {
            TreeOp::PutNode(k, n) => {
                nodes.insert(k.to_bytes().as_slice(), n.as_slice())?;
            }
            TreeOp::DeleteNode(k) => {
                nodes.remove(k.to_bytes().as_slice())?;
            }
            TreeOp::PutRoot(v, r) => {
                roots.insert(*v, root_bytes(r).as_slice())?;
            }
            TreeOp::DeleteRoot(v) => {
                roots.remove(*v)?;
                blocks.remove(*v)?;
            }
            TreeOp::PutStale(v, keys) => {
                let mut b = stale
                    .get(*v)?
                    .map(|g| g.value().to_vec())
                    .unwrap_or_default();
                for k in keys {
                    b.extend_from_slice(&k.to_bytes());
                }
                stale.insert(*v, b.as_slice())?;
            }
            TreeOp::TakeStale(v) => {
                stale.remove(*v)?;
            }
            TreeOp::Block(v, h) => {
                blocks.insert(*v, h.0.as_slice())?;
            }
            TreeOp::Clear => {
                nodes.retain(|_, _| false)?;
                roots.retain(|_, _| false)?;
                stale.retain(|_, _| false)?;
                blocks.retain(|_, _| false)?;
            }
        }
    }
    Ok(())
}

/// Reads the stored tree: `Ok(Err(why))` if a record does not decode (the caller rebuilds).
pub(crate) fn read_all(
    tx: &redb::ReadTransaction,
) -> Result<Result<RedbNodeStore, String>, redb::Error> {
    let mut s = RedbNodeStore::default();
    let nodes = match tx.open_table(NODES) {
        Ok(t) => t,
        // A database from before the tree: nothing stored yet.
        Err(TableError::TableDoesNotExist(_)) => return Ok(Ok(s)),
        Err(e) => return Err(e.into()),
    };
    for r in nodes.iter()? {
        let (k, v) = r?;
        let (Ok(k), Ok(n)) = (
            NodeKey::from_bytes(k.value()),
            Node::from_canonical_bytes(v.value()),
        ) else {
            return Ok(Err("a state tree node does not decode".into()));
        };
        s.mem
            .put_node(k, n)
            .map_err(|e| redb::Error::Corrupted(e.to_string()))?;
    }
    for r in tx.open_table(ROOTS)?.iter()? {
        let (v, b) = r?;
        let Some(root) = root_from(b.value()) else {
            return Ok(Err(format!(
                "the state tree root of version {} does not decode",
                v.value()
            )));
        };
        s.mem
            .put_root(v.value(), root)
            .map_err(|e| redb::Error::Corrupted(e.to_string()))?;
    }
    for r in tx.open_table(STALE)?.iter()? {
        let (v, b) = r?;
        let b = b.value();
        if b.len() % pp_ledger::state_tree::NODE_KEY_LEN != 0 {
            return Ok(Err("a state tree stale list does not decode".into()));
        }
        let mut keys = Vec::with_capacity(b.len() / pp_ledger::state_tree::NODE_KEY_LEN);
        for c in b.chunks(pp_ledger::state_tree::NODE_KEY_LEN) {
            match NodeKey::from_bytes(c) {
                Ok(k) => keys.push(k),
                Err(_) => return Ok(Err("a state tree stale key does not decode".into())),
            }
        }
        s.mem
            .put_stale(v.value(), keys)
            .map_err(|e| redb::Error::Corrupted(e.to_string()))?;
    }
    for r in tx.open_table(BLOCKS)?.iter()? {
        let (v, b) = r?;
        let Ok(h) = <[u8; 32]>::try_from(b.value()) else {
            return Ok(Err("a state tree block hash does not decode".into()));
        };
        s.blocks.insert(v.value(), Hash(h));
    }
    Ok(Ok(s))
}

/// The tree's [`NodeStore`]: every live node in memory, every write recorded for redb.
#[derive(Debug, Default)]
pub struct RedbNodeStore {
    mem: MemoryStore,
    /// The block each stored version stands for (zero: not its own block's root).
    blocks: BTreeMap<u64, Hash>,
    /// Writes not yet handed to storage ([`NodeTree::take_ops`]).
    ops: Vec<TreeOp>,
}

impl RedbNodeStore {
    /// Number of live nodes.
    pub fn node_count(&self) -> usize {
        self.mem.node_count()
    }
}

impl NodeStore for RedbNodeStore {
    fn node(&self, key: &NodeKey) -> Result<Option<Node>, StoreError> {
        self.mem.node(key)
    }

    fn put_node(&mut self, key: NodeKey, node: Node) -> Result<(), StoreError> {
        self.ops
            .push(TreeOp::PutNode(key, node.to_canonical_bytes()));
        self.mem.put_node(key, node)
    }

    fn nodes(&self, keys: &[NodeKey]) -> Result<Vec<Option<Node>>, StoreError> {
        self.mem.nodes(keys)
    }

    fn put_nodes(&mut self, nodes: &mut Vec<(NodeKey, Node)>) -> Result<(), StoreError> {
        self.ops.extend(
            nodes
                .iter()
                .map(|(k, n)| TreeOp::PutNode(*k, n.to_canonical_bytes())),
        );
        self.mem.put_nodes(nodes)
    }

    fn delete_node(&mut self, key: &NodeKey) -> Result<(), StoreError> {
        self.ops.push(TreeOp::DeleteNode(*key));
        self.mem.delete_node(key)
    }

    fn root(&self, version: u64) -> Result<Option<Option<Child>>, StoreError> {
        self.mem.root(version)
    }

    fn put_root(&mut self, version: u64, root: Option<Child>) -> Result<(), StoreError> {
        self.ops.push(TreeOp::PutRoot(version, root));
        self.mem.put_root(version, root)
    }

    fn delete_root(&mut self, version: u64) -> Result<(), StoreError> {
        self.ops.push(TreeOp::DeleteRoot(version));
        self.blocks.remove(&version);
        self.mem.delete_root(version)
    }

    fn version_range(&self) -> Result<Option<(u64, u64)>, StoreError> {
        self.mem.version_range()
    }

    fn put_stale(&mut self, version: u64, keys: Vec<NodeKey>) -> Result<(), StoreError> {
        if !keys.is_empty() {
            self.ops.push(TreeOp::PutStale(version, keys.clone()));
        }
        self.mem.put_stale(version, keys)
    }

    fn take_stale(&mut self, version: u64) -> Result<Vec<NodeKey>, StoreError> {
        self.ops.push(TreeOp::TakeStale(version));
        self.mem.take_stale(version)
    }
}

/// The leaf changes that bring the tree to `state` for `accounts`.
fn leaves(state: &LedgerState, accounts: &[PublicKey]) -> Vec<(Hash, Option<Vec<u8>>)> {
    accounts
        .iter()
        .map(|a| {
            let leaf = AccountLeaf::from_state(state, a).map(|l| l.to_canonical_bytes());
            (account_key(a), leaf)
        })
        .collect()
}

/// The node's tree: versions = best-chain block indexes, the last `keep` + 1 kept.
#[derive(Debug)]
pub struct NodeTree {
    tree: StateTree<RedbNodeStore>,
    keep: u64,
}

impl NodeTree {
    /// A tree over `store`, keeping versions down to `keep` below the tip (the chain's `k`: a
    /// fork switch never rolls back further).
    pub fn new(store: RedbNodeStore, keep: u64) -> NodeTree {
        NodeTree {
            tree: StateTree::new(store),
            keep,
        }
    }

    /// The oldest and latest stored versions.
    pub fn versions(&self) -> Option<(u64, u64)> {
        self.tree.versions().ok().flatten()
    }

    /// The block version `index` was computed for (`None`: not stored, or not computed for a
    /// block of its own).
    pub fn block_at(&self, index: u64) -> Option<Hash> {
        self.tree
            .store()
            .blocks
            .get(&index)
            .copied()
            .filter(|h| *h != Hash::ZERO)
    }

    /// The root of version `index`.
    pub fn root(&self, index: u64) -> Result<Hash, StateTreeError> {
        self.tree.root(index)
    }

    /// The value of `account`'s leaf at version `index`, and its proof.
    pub fn prove(
        &self,
        index: u64,
        account: &PublicKey,
    ) -> Result<(Option<Vec<u8>>, StateProof), StateTreeError> {
        self.tree.prove(index, &account_key(account))
    }

    /// Number of live nodes.
    pub fn node_count(&self) -> usize {
        self.tree.store().node_count()
    }

    /// The writes since the last call, for the storage commit they belong to.
    pub fn take_ops(&mut self) -> Vec<TreeOp> {
        std::mem::take(&mut self.tree.store_mut().ops)
    }

    fn set_block(&mut self, index: u64, hash: Hash) {
        let s = self.tree.store_mut();
        s.blocks.insert(index, hash);
        s.ops.push(TreeOp::Block(index, hash));
    }

    /// Deletes everything and writes version `index` from the whole of `state`.
    fn rebuild(
        &mut self,
        index: u64,
        hash: Hash,
        state: &LedgerState,
    ) -> Result<(), StateTreeError> {
        let s = self.tree.store_mut();
        s.mem = MemoryStore::new();
        s.blocks.clear();
        s.ops.push(TreeOp::Clear);
        self.tree.apply(index, leaves(state, &state.accounts()))?;
        self.set_block(index, hash);
        Ok(())
    }

    /// Writes version `index` (block `hash`) on top of the latest one from the accounts that
    /// changed, or rebuilds it if they are not known or the latest is not `index - 1`.
    fn extend(
        &mut self,
        index: u64,
        hash: Hash,
        state: &LedgerState,
        changed: Option<Vec<PublicKey>>,
    ) -> Result<(), StateTreeError> {
        match (self.versions(), changed) {
            (Some((_, latest)), Some(accounts)) if latest.checked_add(1) == Some(index) => {
                self.tree.apply(index, leaves(state, &accounts))?;
                self.set_block(index, hash);
                Ok(())
            }
            _ => self.rebuild(index, hash, state),
        }
    }

    /// Rolls back to `index` if it is stored (`false` if not: the caller rebuilds).
    fn rollback_to(&mut self, index: u64) -> Result<bool, StateTreeError> {
        match self.versions() {
            Some((oldest, latest)) if oldest <= index => {
                if latest > index {
                    self.tree.rollback(index)?;
                }
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    fn prune(&mut self, tip: u64) -> Result<(), StateTreeError> {
        self.tree.prune(tip.saturating_sub(self.keep))
    }

    /// After the best chain changed to `chain`'s tip, the blocks `applied` (ascending) being
    /// the new ones on it: rolls back what a fork switch abandoned, writes the tip's version
    /// from the accounts the new blocks changed, and prunes. A fork switch applying several
    /// blocks has the ledger state of its tip only: the versions of the blocks below the tip
    /// repeat the fork point's tree and are marked as not their own block's (no proof is served
    /// at them); the tip's version is exact.
    pub fn on_best_change<C: ConsensusRules>(
        &mut self,
        chain: &Chain<C>,
        applied: &[Hash],
    ) -> Result<(), StateTreeError> {
        let (tip, tip_hash, state) = (chain.height(), chain.tip_hash(), chain.state());
        let Some(first) = (tip + 1)
            .checked_sub(applied.len() as u64)
            .filter(|f| *f > 0)
        else {
            return self.rebuild(tip, tip_hash, state);
        };
        let fork = first - 1;
        if !self.rollback_to(fork)? || self.versions().map(|v| v.1) != Some(fork) {
            self.rebuild(tip, tip_hash, state)?;
            return self.prune(tip);
        }
        let mut changed = Some(Vec::new());
        for h in applied {
            match (chain.block_accounts(h), changed.as_mut()) {
                (Some(a), Some(all)) => all.extend(a),
                _ => changed = None,
            }
        }
        for index in first..tip {
            self.tree.apply(index, [])?;
            self.set_block(index, Hash::ZERO);
        }
        if let Some(all) = changed.as_mut() {
            all.sort_unstable();
            all.dedup();
        }
        self.extend(tip, tip_hash, state, changed)?;
        self.prune(tip)
    }

    /// During the startup replay, after block `hash` became the tip at `index`: keeps the
    /// stored version if it was computed for this block, otherwise rolls back to `index - 1`
    /// and writes it (or rebuilds it from the whole state). Versions below the oldest stored
    /// one are not looked at (they were pruned).
    pub fn replayed<C: ConsensusRules>(
        &mut self,
        chain: &Chain<C>,
        index: u64,
        hash: Hash,
    ) -> Result<(), StateTreeError> {
        let state = chain.state();
        match self.versions() {
            Some((oldest, _)) if index < oldest => Ok(()),
            Some((_, latest)) if index <= latest && self.block_at(index) == Some(hash) => Ok(()),
            Some(_) => {
                let prev = index.checked_sub(1);
                if prev.is_some_and(|p| self.rollback_to(p).unwrap_or(false)) {
                    self.extend(index, hash, state, chain.block_accounts(&hash))
                } else {
                    self.rebuild(index, hash, state)
                }
            }
            None => self.rebuild(index, hash, state),
        }
    }

    /// After the startup replay ended at `chain`'s tip: drops stored versions above it (written
    /// for blocks the replay did not reach) and makes sure the tip's version is this block's.
    pub fn finish_replay<C: ConsensusRules>(
        &mut self,
        chain: &Chain<C>,
    ) -> Result<(), StateTreeError> {
        let (tip, hash) = (chain.height(), chain.tip_hash());
        if !self.rollback_to(tip)? || self.block_at(tip) != Some(hash) {
            self.rebuild(tip, hash, chain.state())?;
        }
        self.prune(tip)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use pp_ledger::chain::AddOutcome;
    use pp_ledger::state_tree::{verify, MemoryStore};
    use pp_ledger::{Block, BlockHeader, KeyPair, Transaction};

    use super::*;
    use crate::clock::Clock;
    use crate::node::testing::core_with_genesis_time;
    use crate::node::Core;
    use crate::storage::ChainCommit;

    fn block_on(core: &Core, parent: &BlockHeader, slot: u64, txs: Vec<Transaction>) -> Block {
        Block::produce(
            parent,
            slot,
            core.slots().slot_start_ms(slot),
            core.genesis().difficulty,
            txs,
            core.key(),
            &core.genesis_hash(),
            1 << 24,
        )
        .unwrap()
    }

    /// The root of the whole ledger state, built from nothing.
    fn one_shot_root(core: &Core) -> Hash {
        let c = core.chain();
        let st = c.state();
        let mut t = StateTree::new(MemoryStore::new());
        t.apply(0, leaves(st, &st.accounts())).unwrap()
    }

    fn tree_tip(core: &Core) -> (Option<(u64, u64)>, Option<Hash>, Hash, usize) {
        let tip = core.chain().height();
        let t = core.state_tree();
        (
            t.versions(),
            t.block_at(tip),
            t.root(tip).unwrap(),
            t.node_count(),
        )
    }

    fn reopen(dir: &std::path::Path, key: &KeyPair, start: u64) -> Arc<Core> {
        let core = core_with_genesis_time(dir, key, start);
        core.replay().unwrap();
        core
    }

    /// Each imported block writes its version from the accounts it changed, with the same root
    /// as a tree built from the whole state, and its proofs verify; the tree comes back from
    /// redb after a restart unchanged; a stored tree ahead of the stored chain (a chain cut
    /// back, or a version written for another block) is repaired at replay, not trusted.
    #[tokio::test]
    async fn tree_follows_imports_survives_restart_and_is_repaired_at_replay() {
        let dir = tempfile::tempdir().unwrap();
        let key = KeyPair::from_seed([41u8; 32]);
        let start = crate::clock::SystemClock.now_ms() - 60_000;
        let core = reopen(dir.path(), &key, start);
        assert_eq!(tree_tip(&core).0, Some((0, 0)));
        let mut to = Vec::new();
        for i in 0..4u64 {
            let r = KeyPair::from_seed([50 + i as u8; 32]).public();
            to.push(r);
            let tx = Transaction::transfer(&key, r, 10 + i, 1, i, &core.genesis_hash());
            let tip = core.chain().tip().header.clone();
            let b = block_on(&core, &tip, tip.slot + 1, vec![tx]);
            let out = core.import_block(b).await.unwrap();
            assert_eq!(out.outcome, AddOutcome::Extended);
            let (versions, block, root, _) = tree_tip(&core);
            assert_eq!(versions.map(|v| v.1), Some(i + 1));
            assert_eq!(block, Some(core.chain().tip_hash()));
            assert_eq!(root, one_shot_root(&core));
        }
        let (versions, _, root4, nodes4) = tree_tip(&core);
        {
            let t = core.state_tree();
            let (v, p) = t.prove(4, &to[3]).unwrap();
            let leaf = AccountLeaf::from_canonical_bytes(v.as_deref().unwrap()).unwrap();
            assert_eq!(leaf.balance, 13);
            verify(&root4, &account_key(&to[3]), v.as_deref(), &p).unwrap();
            // The proof of an older version does not verify against the tip's root.
            let (v3, p3) = t.prove(3, &to[3]).unwrap();
            assert!(v3.is_none());
            assert!(verify(&root4, &account_key(&to[3]), None, &p3).is_err());
        }
        core.storage().close();
        drop(core);

        // Restart: the tree is read back, not rebuilt: same versions, root and nodes.
        let core = reopen(dir.path(), &key, start);
        assert_eq!(
            tree_tip(&core),
            (versions, Some(core.chain().tip_hash()), root4, nodes4)
        );

        // The stored chain cut back to 3 while the tree keeps 4 (the tree ahead of the chain):
        // replay rolls the tree back to the chain's tip.
        core.storage()
            .commit_chain(&ChainCommit {
                height: Some(3),
                ..ChainCommit::default()
            })
            .unwrap();
        core.storage().close();
        drop(core);
        let core = reopen(dir.path(), &key, start);
        assert_eq!(core.chain().height(), 3);
        let (versions, block, root3, _) = tree_tip(&core);
        assert_eq!(versions.map(|v| v.1), Some(3));
        assert_eq!(block, Some(core.chain().tip_hash()));
        assert_eq!(root3, one_shot_root(&core));
        assert_ne!(root3, root4);

        // A stored version that claims another block: recomputed at replay.
        core.storage()
            .commit_chain(&ChainCommit {
                state_tree: vec![TreeOp::Block(2, Hash([9; 32]))],
                ..ChainCommit::default()
            })
            .unwrap();
        core.storage().close();
        drop(core);
        let core = reopen(dir.path(), &key, start);
        let two = core.chain().best_hash_at(2).unwrap();
        assert_eq!(core.state_tree().block_at(2), Some(two));
        assert_eq!(tree_tip(&core).2, root3);
        assert_eq!(tree_tip(&core).0.map(|v| v.1), Some(3));
    }

    /// A fork switch rolls the tree back to the fork point and writes the new tip from the
    /// accounts its blocks changed; the block below the new tip is not served (its state was
    /// not computed), the abandoned block's version is gone.
    #[tokio::test]
    async fn fork_switch_rolls_the_tree_back_and_writes_the_new_tip() {
        let dir = tempfile::tempdir().unwrap();
        let key = KeyPair::from_seed([66u8; 32]);
        let start = crate::clock::SystemClock.now_ms() - 60_000;
        let core = reopen(dir.path(), &key, start);
        let genesis = core.chain().tip().header.clone();
        let to = KeyPair::from_seed([67u8; 32]).public();
        let t0 = Transaction::transfer(&key, to, 5, 1, 0, &core.genesis_hash());
        let ours = block_on(&core, &genesis, 5, vec![t0.clone()]);
        let ours_hash = ours.hash();
        core.import_block(ours).await.unwrap();
        assert_eq!(core.state_tree().block_at(1), Some(ours_hash));
        let with_t0 = tree_tip(&core).2;
        let c1 = block_on(&core, &genesis, 3, vec![]);
        let c2 = block_on(&core, &c1.header, 4, vec![t0]);
        core.import_block(c1).await.unwrap();
        assert!(matches!(
            core.import_block(c2.clone()).await.unwrap().outcome,
            AddOutcome::Reorg { .. }
        ));
        let (versions, block, root, _) = tree_tip(&core);
        assert_eq!(versions.map(|v| v.1), Some(2));
        assert_eq!(block, Some(c2.hash()));
        assert_eq!(root, one_shot_root(&core));
        assert_ne!(root, with_t0); // one more block's fees
        assert_eq!(core.state_tree().block_at(1), None);
        // After a restart the replay computes the block below the tip too.
        core.storage().close();
        drop(core);
        let core = reopen(dir.path(), &key, start);
        let one = core.chain().best_hash_at(1).unwrap();
        assert_eq!(core.state_tree().block_at(1), Some(one));
        assert_eq!(tree_tip(&core).2, root);
    }
}
