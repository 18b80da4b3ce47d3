//! Following one node's best chain: which transactions are in which block, which slots hold a
//! block, and when each block was first seen, across fork switches.
//!
//! The follower polls `GET /status` every [`POLL_EVERY`] and fetches new blocks by index. Each
//! fetched block must extend the one recorded below it (its `prev_hash`); if not, the node
//! switched forks, so the recorded block is dropped and the walk steps back until the chains
//! join again. What is recorded is therefore always one chain, the node's best chain as of the
//! last poll. A block's "seen" time is when the poll that fetched it returned, so inclusion
//! times are late by up to one poll interval plus the fetch.

use std::collections::{BTreeMap, HashMap};
use std::ops::RangeInclusive;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::bail;
use pp_ledger::Hash;
use tokio::sync::watch;

use super::api::{Api, BlockView, BLOCKS_PER_REQUEST};

/// Time between two polls of the followed node.
pub(crate) const POLL_EVERY: Duration = Duration::from_millis(100);
/// Most block-range requests made in one poll, so one poll cannot run unbounded.
const MAX_REQUESTS_PER_POLL: usize = 64;

/// A block of the followed chain.
#[derive(Debug)]
struct Seen {
    hash: Hash,
    slot: u64,
    seen_at: Instant,
    tx_ids: Vec<Hash>,
}

/// The followed node's best chain from the start height on, as recorded so far.
#[derive(Debug, Default)]
pub(crate) struct ChainView {
    blocks: BTreeMap<u64, Seen>,
    /// Transaction id → index of the recorded block that holds it.
    txs: HashMap<Hash, u64>,
    /// Recorded blocks dropped because the node switched to another fork.
    pub(crate) blocks_rolled_back: u64,
    /// Polls that failed (the node did not answer, or answered nonsense).
    pub(crate) poll_errors: u64,
    /// The last poll error, for the report.
    pub(crate) last_error: Option<String>,
    /// The first and the latest slot change seen, with when: they time the slot length.
    first_slot_change: Option<(Instant, u64)>,
    last_slot_change: Option<(Instant, u64)>,
    /// The slot of the previous poll.
    last_slot: Option<u64>,
}

/// A [`ChainView`] shared between the follower (the only writer) and the reporting code, which
/// takes the lock briefly and never across an `.await`.
#[derive(Debug, Clone, Default)]
pub(crate) struct SharedView(Arc<Mutex<ChainView>>);

impl SharedView {
    /// Locks the view (a poisoned lock still holds consistent data: writers never panic mid-way).
    pub(crate) fn lock(&self) -> MutexGuard<'_, ChainView> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl ChainView {
    /// When the block holding transaction `id` was first seen, if the chain holds it.
    pub(crate) fn included_at(&self, id: &Hash) -> Option<Instant> {
        let index = self.txs.get(id)?;
        self.blocks.get(index).map(|b| b.seen_at)
    }

    /// How many slots of `slots` hold a block of the recorded chain.
    pub(crate) fn slots_with_block(&self, slots: &RangeInclusive<u64>) -> u64 {
        self.blocks
            .values()
            .filter(|b| slots.contains(&b.slot))
            .count() as u64
    }

    /// How many transactions blocks of `slots` hold.
    pub(crate) fn txs_in_slots(&self, slots: &RangeInclusive<u64>) -> u64 {
        self.blocks
            .values()
            .filter(|b| slots.contains(&b.slot))
            .map(|b| b.tx_ids.len() as u64)
            .sum()
    }

    /// The height of the recorded tip.
    pub(crate) fn tip(&self) -> Option<u64> {
        self.blocks.last_key_value().map(|(i, _)| *i)
    }

    /// The slot the followed node reported at the latest poll.
    pub(crate) fn last_slot(&self) -> Option<u64> {
        self.last_slot
    }

    /// Slot length timed between the first and the latest slot change seen, in milliseconds.
    pub(crate) fn slot_ms(&self) -> Option<f64> {
        let (t0, s0) = self.first_slot_change?;
        let (t1, s1) = self.last_slot_change?;
        (s1 > s0).then(|| (t1 - t0).as_secs_f64() * 1000.0 / (s1 - s0) as f64)
    }

    fn note_slot(&mut self, slot: u64, now: Instant) {
        if self.last_slot.is_some_and(|s| s != slot) {
            if self.first_slot_change.is_none() {
                self.first_slot_change = Some((now, slot));
            }
            self.last_slot_change = Some((now, slot));
        }
        self.last_slot = Some(slot);
    }

    /// Drops every recorded block at `from` and above.
    fn roll_back(&mut self, from: u64) {
        let dropped = self.blocks.split_off(&from);
        for (index, b) in dropped {
            self.blocks_rolled_back += 1;
            for id in b.tx_ids {
                if self.txs.get(&id) == Some(&index) {
                    self.txs.remove(&id);
                }
            }
        }
    }

    fn insert(&mut self, b: BlockView, now: Instant) {
        let index = b.header.index;
        let tx_ids: Vec<Hash> = b.transactions.iter().map(|t| t.id()).collect();
        for id in &tx_ids {
            self.txs.insert(*id, index);
        }
        let seen = Seen {
            hash: b.hash,
            slot: b.header.slot,
            seen_at: now,
            tx_ids,
        };
        self.blocks.insert(index, seen);
    }

    /// Records `blocks`, fetched from index `next` on. Returns the next index to fetch: past
    /// them, or one lower when a block does not extend the recorded one below it (a fork
    /// switch: that recorded block is dropped and fetched again).
    fn extend(
        &mut self,
        mut next: u64,
        blocks: Vec<BlockView>,
        now: Instant,
    ) -> anyhow::Result<u64> {
        for b in blocks {
            if b.header.index != next {
                bail!("asked for block {next}, got {}", b.header.index);
            }
            let parent = next.checked_sub(1).and_then(|p| self.blocks.get(&p));
            if parent.is_some_and(|p| p.hash != b.header.prev_hash) {
                let back = next - 1;
                self.roll_back(back);
                return Ok(back);
            }
            self.insert(b, now);
            next += 1;
        }
        Ok(next)
    }
}

/// Follows `api`'s best chain into `view` from block `start` on, until `stop` turns true.
pub(crate) async fn follow(
    api: Api,
    view: SharedView,
    start: u64,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        if let Err(e) = poll_once(&api, &view, start).await {
            let mut v = view.lock();
            v.poll_errors += 1;
            v.last_error = Some(format!("{e:#}"));
        }
        tokio::select! {
            _ = tokio::time::sleep(POLL_EVERY) => {}
            _ = stop.changed() => {}
        }
        if *stop.borrow() {
            return;
        }
    }
}

/// One poll: the node's tip, then the blocks the view lacks.
async fn poll_once(api: &Api, view: &SharedView, start: u64) -> anyhow::Result<()> {
    let status = api.status().await?;
    let mut next = {
        let mut v = view.lock();
        v.note_slot(status.slot, Instant::now());
        let tip_matches = v
            .blocks
            .get(&status.height)
            .is_some_and(|b| b.hash == status.tip_hash);
        if tip_matches {
            return Ok(());
        }
        // Whatever is recorded at or above the node's tip height is no longer its best chain.
        v.roll_back(status.height);
        v.tip().map_or(start, |t| t + 1)
    };
    for _ in 0..MAX_REQUESTS_PER_POLL {
        if next > status.height {
            break;
        }
        let count = (status.height - next + 1).min(BLOCKS_PER_REQUEST);
        let blocks = api.blocks(next, count).await?;
        if blocks.is_empty() {
            break;
        }
        next = view.lock().extend(next, blocks, Instant::now())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use pp_ledger::{BlockHeader, KeyPair, PublicKey, Transaction};

    fn block(index: u64, slot: u64, prev: Hash, txs: Vec<Transaction>) -> BlockView {
        let header = BlockHeader {
            version: 1,
            index,
            slot,
            prev_hash: prev,
            tx_root: Hash::ZERO,
            state_root: Hash::ZERO,
            producer: PublicKey([1; 32]),
            timestamp: 0,
            difficulty: 0,
            vrf: None,
            ocert: None,
            nonce: slot,
        };
        BlockView {
            hash: header.hash(),
            header: super::super::api::HeaderView {
                index: header.index,
                slot: header.slot,
                prev_hash: header.prev_hash,
            },
            transactions: txs,
        }
    }

    fn tx(nonce: u64) -> Transaction {
        let k = KeyPair::from_seed([7; 32]);
        Transaction::transfer(&k, PublicKey([2; 32]), 1, 1, nonce, &Hash::ZERO)
    }

    #[test]
    fn a_fork_switch_drops_the_replaced_blocks_and_their_transactions() {
        let now = Instant::now();
        let mut v = ChainView::default();
        let b0 = block(10, 10, Hash::ZERO, vec![]);
        let a1 = block(11, 11, b0.hash, vec![tx(0)]);
        let a2 = block(12, 12, a1.hash, vec![tx(1)]);
        let next = v.extend(10, vec![b0.clone(), a1, a2], now).unwrap();
        assert_eq!(next, 13);
        assert!(v.included_at(&tx(1).id()).is_some());
        assert_eq!(v.slots_with_block(&(11..=12)), 2);
        // The node switched to a fork that replaces block 12: its block 13 does not extend a2.
        let c2 = block(12, 13, v.blocks[&11].hash, vec![]);
        let c3 = block(13, 14, c2.hash, vec![]);
        assert_eq!(v.extend(13, vec![c3.clone()], now).unwrap(), 12);
        assert!(
            v.included_at(&tx(1).id()).is_none(),
            "rolled back with its block"
        );
        assert!(v.included_at(&tx(0).id()).is_some());
        assert_eq!(v.extend(12, vec![c2, c3], now).unwrap(), 14);
        assert_eq!(v.blocks_rolled_back, 1);
        assert_eq!(v.slots_with_block(&(11..=14)), 3);
        assert_eq!(v.txs_in_slots(&(0..=100)), 1);
    }

    #[test]
    fn the_slot_length_is_timed_between_slot_changes() {
        let t = Instant::now();
        let mut v = ChainView::default();
        v.note_slot(5, t);
        v.note_slot(5, t + Duration::from_millis(300));
        assert_eq!(v.slot_ms(), None);
        v.note_slot(6, t + Duration::from_millis(500));
        v.note_slot(9, t + Duration::from_millis(3500));
        assert_eq!(v.slot_ms(), Some(1000.0));
    }
}
