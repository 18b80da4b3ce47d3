//! Reading the best chain at any depth: the newest blocks from the chain's window in memory,
//! older ones from storage.
//!
//! The chain (`pp_ledger::Chain`) keeps the best blocks from `height - k` up, and forgets older
//! ones once the node told it they are durable (`Chain::mark_stored`, after each import's
//! commit, see `import.rs`). Below [`Chain::window_start`](pp_ledger::Chain::window_start) the
//! stored best chain is therefore the chain's own: these functions (and the [`Core`] queries
//! that wrap them) read it there. In the window,
//! stored best blocks below the tip keep only their headers in memory (their transactions are
//! read from the database too). The chain lock is never held across a read of the database.
//!
//! Reads of the database are synchronous (redb, mostly served from its page cache and the OS
//! page cache), as the transaction-index lookup of `GET /transactions/{id}` always was.

use pp_ledger::{Block, Hash, SignedHeader};

use super::Core;
use crate::storage::StorageError;

/// Where a best-chain index is: in memory (with the block), or below the window.
enum Place {
    Memory(Box<Block>),
    Stored,
    Absent,
}

fn place(core: &Core, index: u64) -> Place {
    let c = core.chain();
    if let Some(b) = c.block_at(index) {
        return Place::Memory(Box::new(b.clone()));
    }
    // A header without its block: a stored block whose transactions the chain dropped.
    if index < c.window_start() || c.header_at(index).is_some() {
        Place::Stored
    } else {
        Place::Absent
    }
}

/// The best-chain block at `index`, from memory or from storage.
fn block_at(core: &Core, index: u64) -> Result<Option<Block>, StorageError> {
    match place(core, index) {
        Place::Memory(b) => Ok(Some(*b)),
        Place::Absent => Ok(None),
        // The genesis block is never written to storage.
        Place::Stored if index == 0 => Ok(Some(core.chain().genesis().block())),
        Place::Stored => {
            let in_window = core.chain().best_hash_at(index);
            match in_window.or(core.storage.best_hash(index)?) {
                Some(h) => core.storage.block(&h),
                None => Ok(None),
            }
        }
    }
}

/// Up to `count` consecutive best-chain blocks from index `from` (stops at the tip, or at the
/// first block that cannot be read).
fn blocks_from(core: &Core, from: u64, count: u64) -> Result<Vec<Block>, StorageError> {
    let mut out = Vec::new();
    for i in from..from.saturating_add(count) {
        match block_at(core, i)? {
            Some(b) => out.push(b),
            None => break,
        }
    }
    Ok(out)
}

/// A block by hash (best or side chain, in memory or stored) and whether it is on the best chain.
fn block_by_hash(core: &Core, h: &Hash) -> Result<Option<(Block, bool)>, StorageError> {
    {
        let c = core.chain();
        if let Some(b) = c.block_by_hash(h) {
            return Ok(Some((b.clone(), c.is_on_best_chain(h))));
        }
        if *h == c.genesis_block_hash() {
            return Ok(Some((c.genesis().block(), true)));
        }
    }
    let Some(b) = core.storage.block(h)? else {
        return Ok(None);
    };
    let on_best = is_stored_best(core, b.header.index, h)?;
    Ok(Some((b, on_best)))
}

/// True iff the block `h` at `index` is on the best chain: in the window, the chain knows the
/// best hash at every index; below it, storage does.
fn is_stored_best(core: &Core, index: u64, h: &Hash) -> Result<bool, StorageError> {
    {
        let c = core.chain();
        if index >= c.window_start() {
            return Ok(c.best_hash_at(index) == Some(*h));
        }
    }
    Ok(core.storage.best_hash(index)? == Some(*h))
}

/// The block locator of the whole best chain (tip, tip-1, tip-2, tip-4, ..., genesis): steps in
/// the window from memory, older ones from storage.
fn locator(core: &Core) -> Vec<Hash> {
    let (mut steps, origin) = {
        let c = core.chain();
        let h = c.height();
        let mut steps: Vec<(u64, Option<Hash>)> = vec![(h, Some(c.tip_hash()))];
        let mut step = 1u64;
        while step <= h {
            steps.push((h - step, c.best_hash_at(h - step)));
            step = step.saturating_mul(2);
        }
        (steps, c.genesis_block_hash())
    };
    for (i, hash) in &mut steps {
        if hash.is_none() && *i > 0 {
            // Missing only if the database cannot be read: a shorter locator still works.
            *hash = core.storage.best_hash(*i).ok().flatten();
        }
    }
    let mut out: Vec<Hash> = steps
        .into_iter()
        .filter(|(i, _)| *i > 0)
        .filter_map(|(_, h)| h)
        .collect();
    out.push(origin);
    out
}

/// Index of the first hash of `locator` on our best chain, at any depth (`None`: another
/// network). Each hash not in memory costs one lookup in storage; the caller bounds the
/// locator's length.
fn fork_point(core: &Core, locator: &[Hash]) -> Result<Option<u64>, StorageError> {
    for h in locator {
        {
            let c = core.chain();
            if c.is_on_best_chain(h) {
                return Ok(c.header_by_hash(h).map(|b| b.index));
            }
            if *h == c.genesis_block_hash() {
                return Ok(Some(0));
            }
            if c.contains(h) {
                continue;
            }
        }
        if let Some(header) = core.storage.block_header(h)? {
            if is_stored_best(core, header.index, h)? {
                return Ok(Some(header.index));
            }
        }
    }
    Ok(None)
}

/// Up to `count` best-chain headers, each with its block's signature, after the fork point with
/// `locator`.
fn headers_after(
    core: &Core,
    locator: &[Hash],
    count: u64,
) -> Result<Vec<SignedHeader>, StorageError> {
    let Some(fork) = fork_point(core, locator)? else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for i in fork.saturating_add(1)..fork.saturating_add(1).saturating_add(count) {
        let in_memory = {
            let c = core.chain();
            match c.signed_header_at(i) {
                Some(header) => Some(Some(header)),
                None if i < c.window_start() => None,
                None => Some(None),
            }
        };
        let header = match in_memory {
            Some(Some(header)) => header,
            Some(None) => break,
            None => match core.storage.best_hash(i)? {
                Some(h) => match core.storage.signed_header(&h)? {
                    Some(header) => header,
                    None => break,
                },
                None => break,
            },
        };
        out.push(header);
    }
    Ok(out)
}

impl Core {
    /// The best-chain block at `index`, from memory or from storage.
    pub(crate) fn block_at(&self, index: u64) -> Result<Option<Block>, StorageError> {
        block_at(self, index)
    }

    /// Up to `count` consecutive best-chain blocks from index `from`.
    pub(crate) fn blocks_from(&self, from: u64, count: u64) -> Result<Vec<Block>, StorageError> {
        blocks_from(self, from, count)
    }

    /// A block by hash (best or side chain, in memory or stored) and whether it is on the best
    /// chain.
    pub(crate) fn block_by_hash(&self, h: &Hash) -> Result<Option<(Block, bool)>, StorageError> {
        block_by_hash(self, h)
    }

    /// The kept stake-snapshot record of block `h` (the JSON bytes of its `GET /proofs/stake`
    /// answer, see [`crate::storage::ChainCommit::stake_proofs`]) with whether `h` is on the
    /// best chain now, or `None` if none was kept.
    pub(crate) fn stored_stake_proof(
        &self,
        h: &Hash,
    ) -> Result<Option<(Vec<u8>, bool)>, StorageError> {
        let Some(raw) = self.storage.stake_proof(h)? else {
            return Ok(None);
        };
        let on_best = match self.storage.block_header(h)? {
            _ if *h == self.chain().genesis_block_hash() => true,
            Some(hd) => is_stored_best(self, hd.index, h)?,
            None => false,
        };
        Ok(Some((raw, on_best)))
    }

    /// The block locator of the whole best chain.
    pub(crate) fn locator(&self) -> Vec<Hash> {
        locator(self)
    }

    /// Up to `count` best-chain signed headers after the fork point with `locator`.
    pub(crate) fn headers_after(
        &self,
        locator: &[Hash],
        count: u64,
    ) -> Result<Vec<SignedHeader>, StorageError> {
        headers_after(self, locator, count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Clock as _;
    use pp_ledger::chain::AddOutcome;
    use pp_ledger::{Genesis, KeyPair, Transaction};
    use std::sync::Arc;

    /// A genesis time 10 minutes ago (so hundreds of slots are open).
    fn start() -> u64 {
        crate::clock::SystemClock.now_ms() - 600_000
    }

    /// A node on a devnet with `k = 3` starting at `start`, stored in `dir`.
    fn node(dir: &std::path::Path, start: u64) -> (Arc<Core>, KeyPair) {
        let key = KeyPair::from_seed([71u8; 32]);
        let mut g = Genesis::devnet("test", key.public(), start);
        g.k = 3;
        g.difficulty = 1;
        (crate::node::testing::core_with_genesis(dir, &key, g), key)
    }

    fn child(core: &Core, parent: &Block, slot: u64, txs: Vec<Transaction>) -> Block {
        crate::node::testing::block_on(core, &parent.header, slot, txs)
    }

    /// Imports `n` blocks on the tip, one import (and one commit) each; returns them.
    async fn extend(core: &Core, n: u64, key: &KeyPair) -> Vec<Block> {
        let mut out = Vec::new();
        for _ in 0..n {
            let tip = core.chain().tip().clone();
            let nonce = core.chain().state().nonce(&key.public());
            let to = KeyPair::from_seed([72u8; 32]).public();
            let tx = Transaction::transfer(key, to, 1, 1, nonce, &core.genesis_hash);
            let b = child(core, &tip, tip.header.slot + 1, vec![tx]);
            let imported = core.import_block(b.clone()).await.unwrap();
            assert_eq!(imported.outcome, AddOutcome::Extended);
            out.push(b);
        }
        out
    }

    #[tokio::test]
    async fn blocks_deeper_than_k_leave_memory_and_are_read_from_storage() {
        let dir = tempfile::tempdir().unwrap();
        let t0 = start();
        let (core, key) = node(dir.path(), t0);
        let blocks = extend(&core, 30, &key).await;
        {
            let c = core.chain();
            assert_eq!(c.height(), 30);
            // Memory holds the best blocks from height - k up only.
            assert_eq!(c.window_start(), 27);
            assert!(!c.contains(&blocks[0].hash()));
            assert!(c.block_at(5).is_none());
        }
        // Every block is still served, from memory or from storage.
        assert_eq!(block_at(&core, 0).unwrap(), Some(core.genesis.block()));
        for b in &blocks {
            assert_eq!(block_at(&core, b.header.index).unwrap().as_ref(), Some(b));
            assert_eq!(
                block_by_hash(&core, &b.hash()).unwrap(),
                Some((b.clone(), true))
            );
        }
        assert_eq!(block_at(&core, 31).unwrap(), None);
        assert_eq!(blocks_from(&core, 25, 10).unwrap(), blocks[24..].to_vec());
        // The locator reaches below the window, and a peer's locator is found at any depth.
        let h = |i: usize| blocks[i - 1].hash();
        let want = vec![
            h(30),
            h(29),
            h(28),
            h(26),
            h(22),
            h(14),
            core.genesis.block().hash(),
        ];
        assert_eq!(locator(&core), want);
        let stranger = [pp_ledger::Hash([9; 32]), h(6), h(3)];
        assert_eq!(fork_point(&core, &stranger).unwrap(), Some(6));
        let headers = headers_after(&core, &stranger, 3).unwrap();
        let want: Vec<_> = blocks[6..9].iter().map(SignedHeader::from).collect();
        assert_eq!(headers, want);
        assert_eq!(
            fork_point(&core, &[core.genesis.block().hash()]).unwrap(),
            Some(0)
        );
        assert_eq!(
            fork_point(&core, &[pp_ledger::Hash([9; 32])]).unwrap(),
            None
        );
    }

    /// In the window, stored best blocks below the tip keep their headers only: memory holds
    /// the transactions of the tip (and of blocks not yet stored), whatever `k`. Every block is
    /// still served whole, and a fork switch that abandons stored blocks puts their
    /// transactions back in the mempool, read from storage.
    #[tokio::test]
    async fn stored_blocks_in_the_window_keep_headers_and_their_transactions_come_from_disk() {
        let dir = tempfile::tempdir().unwrap();
        let t0 = start();
        let key = KeyPair::from_seed([71u8; 32]);
        let mut g = Genesis::devnet("test", key.public(), t0);
        g.k = 50;
        g.difficulty = 1;
        let core = crate::node::testing::core_with_genesis(dir.path(), &key, g);
        let blocks = extend(&core, 12, &key).await;
        {
            let c = core.chain();
            assert_eq!(c.window_start(), 0);
            // The genesis block (no transactions) and the tip.
            assert_eq!(c.bodies_held(), 2);
            assert_eq!(c.block_at(11), None);
            assert_eq!(c.header_at(11), Some(&blocks[10].header));
            assert_eq!(c.block_at(12), Some(&blocks[11]));
        }
        for b in &blocks {
            assert_eq!(block_at(&core, b.header.index).unwrap().as_ref(), Some(b));
            assert_eq!(
                block_by_hash(&core, &b.hash()).unwrap(),
                Some((b.clone(), true))
            );
        }
        // A longer branch of empty blocks from block 9: blocks 10, 11 (stored, headers only)
        // and 12 (the tip) are abandoned; their transfers (nonces 9, 10, 11) are valid again.
        let mut parent = blocks[8].clone();
        let mut slot = blocks[11].header.slot;
        for _ in 0..4 {
            slot += 1;
            let b = child(&core, &parent, slot, vec![]);
            core.import_block(b.clone()).await.unwrap();
            parent = b;
        }
        assert_eq!(core.chain().tip_hash(), parent.hash());
        let mp = core.mempool();
        for b in &blocks[9..] {
            let id = b.transactions[0].id();
            assert!(
                mp.contains(&id),
                "tx of block {} not re-admitted",
                b.header.index
            );
        }
        drop(mp);
        for b in &blocks[9..] {
            assert_eq!(
                block_by_hash(&core, &b.hash()).unwrap(),
                Some((b.clone(), false))
            );
        }
    }

    #[tokio::test]
    async fn restart_streams_the_stored_chain_and_keeps_only_the_window() {
        let dir = tempfile::tempdir().unwrap();
        let t0 = start();
        let (core, key) = node(dir.path(), t0);
        let blocks = extend(&core, 20, &key).await;
        let state = core.chain().state().clone();
        core.storage.close();
        drop(core);
        let (core, _) = node(dir.path(), t0);
        assert_eq!(core.replay().unwrap(), 20);
        let c = core.chain();
        assert_eq!(c.tip_hash(), blocks[19].hash());
        assert_eq!(c.state(), &state);
        assert_eq!(c.window_start(), 17);
        // Replay verified every signature without remembering one: the cache is for
        // transactions still to come, and would otherwise fill with the whole history's.
        assert!(c.signature_cache().is_empty());
        drop(c);
        assert_eq!(block_at(&core, 3).unwrap().as_ref(), Some(&blocks[2]));
    }

    #[tokio::test]
    async fn side_blocks_leave_the_disk_k_blocks_below_the_tip_and_stay_gone_after_restart() {
        let dir = tempfile::tempdir().unwrap();
        let t0 = start();
        let (core, key) = node(dir.path(), t0);
        let blocks = extend(&core, 5, &key).await;
        // A side block on block 4 (index 5 competes with the tip at equal length: held aside).
        let side = child(&core, &blocks[3], blocks[4].header.slot + 100, vec![]);
        let imported = core.import_block(side.clone()).await.unwrap();
        assert_eq!(imported.outcome, AddOutcome::SideChain);
        assert_eq!(core.storage.side_blocks().unwrap(), vec![side.hash()]);
        assert!(core.storage.block(&side.hash()).unwrap().is_some());
        // Two more blocks: the side block (index 5) is still within k = 3 of the tip (7).
        extend(&core, 2, &key).await;
        assert!(core.storage.block(&side.hash()).unwrap().is_some());
        // One more: height 8, index 5 <= 8 - 3: gone from memory and from disk.
        extend(&core, 1, &key).await;
        assert!(!core.chain().contains(&side.hash()));
        assert_eq!(core.storage.block(&side.hash()).unwrap(), None);
        assert!(core.storage.side_blocks().unwrap().is_empty());
        assert_eq!(block_by_hash(&core, &side.hash()).unwrap(), None);
        // A restart does not bring it back.
        core.storage.close();
        drop(core);
        let (core, _) = node(dir.path(), t0);
        assert_eq!(core.replay().unwrap(), 8);
        assert_eq!(core.storage.block(&side.hash()).unwrap(), None);
        assert_eq!(block_by_hash(&core, &side.hash()).unwrap(), None);
    }

    #[tokio::test]
    async fn best_blocks_abandoned_by_a_fork_switch_become_side_blocks_and_are_pruned() {
        let dir = tempfile::tempdir().unwrap();
        let t0 = start();
        let (core, key) = node(dir.path(), t0);
        let a = extend(&core, 4, &key).await;
        // A longer branch from block 2: blocks 3 and 4 of `a` leave the best chain.
        let mut parent = a[1].clone();
        let mut slot = a[3].header.slot;
        let mut fork = Vec::new();
        for _ in 0..3 {
            slot += 1;
            let b = child(&core, &parent, slot, vec![]);
            core.import_block(b.clone()).await.unwrap();
            parent = b.clone();
            fork.push(b);
        }
        assert_eq!(core.chain().tip_hash(), fork[2].hash());
        let mut abandoned = core.storage.side_blocks().unwrap();
        abandoned.sort();
        let mut want = vec![a[2].hash(), a[3].hash()];
        want.sort();
        assert_eq!(abandoned, want);
        assert_eq!(
            block_by_hash(&core, &a[2].hash()).unwrap(),
            Some((a[2].clone(), false))
        );
        // Height 5 -> 7: index 4 <= 7 - 3, so both abandoned blocks (3 and 4) are gone.
        let tip = core.chain().tip().clone();
        let b = child(&core, &tip, slot + 1, vec![]);
        core.import_block(b.clone()).await.unwrap();
        let b2 = child(&core, &b, slot + 2, vec![]);
        core.import_block(b2).await.unwrap();
        assert!(core.storage.side_blocks().unwrap().is_empty());
        assert_eq!(core.storage.block(&a[2].hash()).unwrap(), None);
        assert_eq!(core.storage.block(&a[3].hash()).unwrap(), None);
    }
}
