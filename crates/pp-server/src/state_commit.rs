//! Persistence of the account state tree (docs/state-commitment.md §8 and §12). The tree
//! itself belongs to the chain ([`Chain::state_tree`]: pp-ledger computes each block's version
//! and checks the header's `state_root` against it); the node mirrors it in redb:
//!
//! * With logging on ([`Chain::set_tree_logging`]) the chain's tree records every write; after
//!   an import [`chain_ops`] turns them into [`TreeOp`]s, with the block each new version
//!   stands for, which the import puts in its [`crate::storage::ChainCommit`]: the storage
//!   writer applies them in **the same write transaction** as the blocks. The tree on disk
//!   therefore matches the committed best chain, a `kill -9` included.
//! * At startup the replay recomputes every version (full validation: each replayed header's
//!   root is checked against the chain's own tree, with logging off), then [`reconcile`]
//!   compares the stored tree with the chain's (versions, roots, the block of each version,
//!   node count) and rewrites it from the chain's when they differ (a database from before the
//!   tree, a replay stopped early, a record that does not decode, a version written for
//!   another block).

use std::collections::BTreeMap;

use pp_ledger::chain::Chain;
use pp_ledger::state_tree::{Child, MemoryStore, Node, NodeKey, NodeStore, StoreOp};
use pp_ledger::{ConsensusRules, Decode, Encode, Hash};
use redb::{ReadableTable, TableDefinition, TableError};

/// Nodes: `NodeKey::to_bytes()` → the node's stored form.
const NODES: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new("state_nodes");
/// Roots: version → root record (`0x00` empty, or `0x01`/`0x02` internal/leaf ‖ version ‖ hash).
const ROOTS: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("state_roots");
/// Stale lists: version → the node keys it replaced, concatenated.
const STALE: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("state_stale");
/// The block each version stands for.
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

/// The stored tree as read back at startup: its nodes, roots and stale lists, and the block
/// of each version.
#[derive(Debug, Default)]
pub struct RedbNodeStore {
    mem: MemoryStore,
    blocks: BTreeMap<u64, Hash>,
}

impl RedbNodeStore {
    /// Number of stored nodes.
    pub fn node_count(&self) -> usize {
        self.mem.node_count()
    }

    /// The block version `index` was written for.
    pub fn block_at(&self, index: u64) -> Option<Hash> {
        self.blocks.get(&index).copied()
    }
}

/// The [`TreeOp`] of a chain tree write.
fn tree_op(op: StoreOp) -> TreeOp {
    match op {
        StoreOp::PutNode(k, n) => TreeOp::PutNode(k, n.to_canonical_bytes()),
        StoreOp::DeleteNode(k) => TreeOp::DeleteNode(k),
        StoreOp::PutRoot(v, r) => TreeOp::PutRoot(v, r),
        StoreOp::DeleteRoot(v) => TreeOp::DeleteRoot(v),
        StoreOp::PutStale(v, keys) => TreeOp::PutStale(v, keys),
        StoreOp::TakeStale(v) => TreeOp::TakeStale(v),
    }
}

/// What the disk needs after an import: the chain's tree writes since the last call (`ops`,
/// from [`Chain::take_tree_ops`]), then the block of each version the import wrote (`best`:
/// the (index, hash) pairs that joined the best chain, in order) that the chain still keeps.
pub fn chain_ops<C: ConsensusRules>(
    chain: &Chain<C>,
    ops: Vec<StoreOp>,
    best: &[(u64, Hash)],
) -> Vec<TreeOp> {
    let mut out: Vec<TreeOp> = ops.into_iter().map(tree_op).collect();
    let kept = chain.state_tree().versions().ok().flatten();
    out.extend(
        best.iter()
            .filter(|(i, h)| {
                kept.is_some_and(|(lo, hi)| (lo..=hi).contains(i))
                    && chain.best_hash_at(*i) == Some(*h)
            })
            .map(|(i, h)| TreeOp::Block(*i, *h)),
    );
    out
}

/// After the startup replay: `None` if the stored tree is the chain's (the same versions, each
/// with the same root and the block the chain has at its index, and the same number of
/// nodes), else the writes that replace it by the chain's. `stored` is `None` when the stored
/// tree did not decode.
pub fn reconcile<C: ConsensusRules>(
    chain: &Chain<C>,
    stored: Option<&RedbNodeStore>,
) -> Option<Vec<TreeOp>> {
    let tree = chain.state_tree();
    let mem = tree.store().memory();
    let range = tree.versions().ok().flatten();
    let same = stored.is_some_and(|s| {
        s.mem.version_range().ok().flatten() == range
            && s.mem.node_count() == mem.node_count()
            && range.is_some_and(|(lo, hi)| {
                (lo..=hi).all(|v| {
                    s.mem.root(v).ok().flatten() == mem.root(v).ok().flatten()
                        && s.blocks.get(&v).copied() == chain.best_hash_at(v)
                })
            })
    });
    if same {
        return None;
    }
    let mut ops = vec![TreeOp::Clear];
    ops.extend(mem.dump().into_iter().map(tree_op));
    if let Some((lo, hi)) = range {
        ops.extend((lo..=hi).filter_map(|v| chain.best_hash_at(v).map(|h| TreeOp::Block(v, h))));
    }
    Some(ops)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use pp_ledger::chain::AddOutcome;
    use pp_ledger::state_tree::{account_key, verify, AccountLeaf};
    use pp_ledger::{KeyPair, Transaction};

    use super::*;
    use crate::clock::Clock;
    use crate::node::testing::{block_on, core_with_genesis_time};
    use crate::node::Core;
    use crate::storage::ChainCommit;

    /// The root of the whole ledger state, built from nothing.
    fn one_shot_root(core: &Core) -> Hash {
        pp_ledger::state_tree::state_root(core.chain().state())
    }

    /// True iff the tree stored in redb is the chain's (versions, roots, blocks, nodes).
    fn stored_is_the_chains(core: &Core) -> bool {
        match core.storage().state_tree().unwrap() {
            Ok(stored) => reconcile(&core.chain(), Some(&stored)).is_none(),
            Err(_) => false,
        }
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
            assert_eq!(root, core.chain().tip().header.state_root);
            // What the import committed is the chain's tree.
            assert!(stored_is_the_chains(&core));
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

        // Restart: the replay recomputes the same versions, root and nodes, and the stored
        // tree is found equal (not rewritten).
        let core = reopen(dir.path(), &key, start);
        assert_eq!(
            tree_tip(&core),
            (versions, Some(core.chain().tip_hash()), root4, nodes4)
        );
        assert!(stored_is_the_chains(&core));

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
        assert!(stored_is_the_chains(&core));

        // A stored version that claims another block: rewritten at replay.
        core.storage()
            .commit_chain(&ChainCommit {
                state_tree: vec![TreeOp::Block(2, Hash([9; 32]))],
                ..ChainCommit::default()
            })
            .unwrap();
        assert!(!stored_is_the_chains(&core));
        core.storage().close();
        drop(core);
        let core = reopen(dir.path(), &key, start);
        assert!(stored_is_the_chains(&core));
        let two = core.chain().best_hash_at(2).unwrap();
        assert_eq!(core.state_tree().block_at(2), Some(two));
        assert_eq!(tree_tip(&core).2, root3);
        assert_eq!(tree_tip(&core).0.map(|v| v.1), Some(3));
    }

    /// A fork switch rolls the tree back to the fork point and writes a version for each block
    /// of the new branch (each checked against its header); the abandoned block's version is
    /// gone, on disk too.
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
        core.import_block(c1.clone()).await.unwrap();
        assert!(matches!(
            core.import_block(c2.clone()).await.unwrap().outcome,
            AddOutcome::Reorg { .. }
        ));
        let (versions, block, root, _) = tree_tip(&core);
        assert_eq!(versions.map(|v| v.1), Some(2));
        assert_eq!(block, Some(c2.hash()));
        assert_eq!(root, one_shot_root(&core));
        assert_ne!(root, with_t0); // one more block's fees
        assert_eq!(core.state_tree().block_at(1), Some(c1.hash()));
        assert_eq!(core.state_tree().root(1).unwrap(), c1.header.state_root);
        assert!(stored_is_the_chains(&core));
        core.storage().close();
        drop(core);
        let core = reopen(dir.path(), &key, start);
        let one = core.chain().best_hash_at(1).unwrap();
        assert_eq!(core.state_tree().block_at(1), Some(one));
        assert_eq!(tree_tip(&core).2, root);
        assert!(stored_is_the_chains(&core));
    }

    /// A stored tree whose records do not decode, or whose nodes were lost, is rewritten from
    /// the chain's at startup.
    #[tokio::test]
    async fn a_corrupt_stored_tree_is_rewritten_at_startup() {
        let dir = tempfile::tempdir().unwrap();
        let key = KeyPair::from_seed([68u8; 32]);
        let start = crate::clock::SystemClock.now_ms() - 60_000;
        let mut core = reopen(dir.path(), &key, start);
        let to = KeyPair::from_seed([69u8; 32]).public();
        let tx = Transaction::transfer(&key, to, 5, 1, 0, &core.genesis_hash());
        let tip = core.chain().tip().header.clone();
        core.import_block(block_on(&core, &tip, tip.slot + 1, vec![tx]))
            .await
            .unwrap();
        let nodes = tree_tip(&core).3;
        let some_node = core
            .chain()
            .state_tree()
            .store()
            .memory()
            .dump()
            .into_iter()
            .find_map(|op| match op {
                StoreOp::PutNode(k, _) => Some(k),
                _ => None,
            })
            .unwrap();
        // A lost node, then a node that does not decode.
        for op in [
            TreeOp::DeleteNode(some_node),
            TreeOp::PutNode(some_node, vec![0xff]),
        ] {
            core.storage()
                .commit_chain(&ChainCommit {
                    state_tree: vec![op],
                    ..ChainCommit::default()
                })
                .unwrap();
            assert!(!stored_is_the_chains(&core));
            core.storage().close();
            drop(core);
            core = reopen(dir.path(), &key, start);
            assert!(stored_is_the_chains(&core));
            assert_eq!(tree_tip(&core).3, nodes);
        }
    }
}
