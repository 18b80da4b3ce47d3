//! The invariants checked after every simulation step, from outside the nodes.
//!
//! For each running node the checker keeps a mirror of its best chain (block hashes by index)
//! and an independent [`Chain`] fed with the same blocks in the same order. Whenever a node's tip
//! changes it checks:
//! - supply: balances + stakes = genesis supply + minted, and minted = height × block reward;
//! - rules: the independent chain accepts every newly adopted block, picks the same tip (so the
//!   fork choice was followed) and computes the same ledger state;
//! - rollback: a node never undoes more than `k` blocks, and its height never goes down;
//! - settled prefix: a node never adopts a block that contradicts a block that was more than `k`
//!   below the common prefix of the running nodes at some earlier step;
//! - majority: a block once held at the same index by a strict majority of the nodes is never
//!   replaced there by another block held by a majority, and is on every chain at the end. In
//!   praos mode a node's tip block does not count as held: a slot may have several leaders, and
//!   the fork choice replaces a tip by a block of the same slot with a lower leader value
//!   (docs/consensus.md §8); once a block has a child on a node it counts as in classic mode.
//!   A scenario that holds links for seconds skips tips too ([`Invariants::skip_tips_for_majority`]):
//!   a node cut off from a block, leading the next two slots, legitimately orphans it.

use std::collections::BTreeMap;

use pp_ledger::{Chain, Genesis, Hash};
use pp_ouroboros::Ouroboros;
use pp_server::Server;

use crate::error::SimError;

/// What the checker remembers of one node.
struct NodeTrack {
    name: String,
    /// Best-chain hashes by index, as last observed.
    best: Vec<Hash>,
    /// The same blocks, judged again by a chain of our own.
    checker: Chain<Ouroboros>,
    /// Set by [`Invariants::restarted`]: the next observation may show a different chain
    /// (checked separately against the pre-crash tip).
    restarted: bool,
}

/// Counters worth reporting.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Tip changes observed, over all nodes.
    pub tip_changes: u64,
    /// Observed switches to another branch (a rollback of at least one block).
    pub reorgs: u64,
    /// Deepest rollback observed on any node.
    pub max_rollback: u64,
    /// Blocks ever held by a strict majority.
    pub majority_blocks: u64,
    /// Height of the settled prefix (common prefix minus k).
    pub settled_height: u64,
}

/// The invariant checker of one simulation run.
pub struct Invariants {
    genesis: Genesis,
    initial_supply: u128,
    reward: u128,
    k: u64,
    nodes: Vec<NodeTrack>,
    /// The settled chain: index → hash, contiguous from genesis.
    settled: Vec<Hash>,
    /// Blocks held by a strict majority at some step: index → hash.
    majority: BTreeMap<u64, Hash>,
    /// How many nodes make a strict majority.
    majority_of: usize,
    /// Tips do not count towards majorities: praos mode, or a scenario that asked for it (see
    /// the module docs).
    skip_tips: bool,
    stats: Stats,
}

fn genesis_chain(genesis: &Genesis) -> Result<Chain<Ouroboros>, SimError> {
    let rules = Ouroboros::new(genesis)
        .map_err(|e| SimError::Setup(format!("genesis refused by pp-ouroboros: {e}")))?;
    Chain::new(genesis.clone(), rules)
        .map_err(|e| SimError::Setup(format!("genesis refused by pp-ledger: {e}")))
}

impl Invariants {
    /// A checker for a network on `genesis` whose node count decides what a majority is.
    pub fn new(genesis: &Genesis, node_count: usize) -> Result<Invariants, SimError> {
        let probe = genesis_chain(genesis)?;
        Ok(Invariants {
            initial_supply: probe.state().total_supply(),
            reward: u128::from(genesis.block_reward),
            k: genesis.k,
            settled: vec![probe.tip_hash()],
            genesis: genesis.clone(),
            nodes: Vec::new(),
            majority: BTreeMap::new(),
            majority_of: node_count / 2 + 1,
            skip_tips: genesis.leader_mode == pp_ledger::LeaderMode::Praos,
            stats: Stats::default(),
        })
    }

    /// Starts tracking a node; returns its index in the checker.
    pub fn add_node(&mut self, name: &str) -> Result<usize, SimError> {
        let checker = genesis_chain(&self.genesis)?;
        self.nodes.push(NodeTrack {
            name: name.to_string(),
            best: vec![checker.tip_hash()],
            checker,
            restarted: false,
        });
        Ok(self.nodes.len() - 1)
    }

    /// A node's tip block no longer counts towards majorities (as in praos mode): for scenarios
    /// in which a node can miss a block for seconds and then, leading the next two slots,
    /// orphan it by the longest-chain rule. A block with a child on a node still counts.
    pub fn skip_tips_for_majority(&mut self) {
        self.skip_tips = true;
    }

    /// Sets the number of nodes a majority is counted against (a newcomer raises it).
    pub fn set_node_count(&mut self, count: usize) {
        self.majority_of = count / 2 + 1;
    }

    /// The node restarted from its disk: its next observation is allowed to differ (the caller
    /// checks it against the pre-crash tip).
    pub fn restarted(&mut self, node: usize) {
        if let Some(t) = self.nodes.get_mut(node) {
            t.restarted = true;
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// The last observed best chain of a node (hashes by index).
    pub fn best_chain(&self, node: usize) -> &[Hash] {
        self.nodes.get(node).map_or(&[], |t| t.best.as_slice())
    }

    /// Checks `server` (node `node`) if its tip changed since the last look. Returns the lowest
    /// index whose block changed, if anything changed.
    pub fn observe(
        &mut self,
        node: usize,
        server: &Server,
        now_ms: u64,
    ) -> Result<Option<u64>, SimError> {
        let Some(track) = self.nodes.get_mut(node) else {
            return Ok(None);
        };
        if track.best.last() == Some(&server.tip_hash()) && !track.restarted {
            return Ok(None);
        }
        let initial = self.initial_supply;
        let reward = self.reward;
        let k = self.k;
        let settled = &self.settled;
        let stats = &mut self.stats;
        // Blocks are read through `Server::block_at` (memory or storage: a node keeps only the
        // newest blocks in memory), before the chain is locked for the state checks. Nothing runs
        // between two simulation steps, so both see the same chain.
        let old_height = (track.best.len() - 1) as u64;
        // The fork point: the highest index where the node still holds what we saw.
        let mut fork = server.height().min(old_height);
        while fork > 0 {
            let same =
                server.block_at(fork).map(|b| b.hash()) == track.best.get(fork as usize).copied();
            if same {
                break;
            }
            fork -= 1;
        }
        let new_blocks: Vec<_> = (fork + 1..=server.height())
            .map_while(|i| server.block_at(i))
            .collect();
        let outcome = server.with_chain(|c| -> Result<Option<u64>, SimError> {
            let height = c.height();
            let name = &track.name;
            let st = c.state();
            let minted = st.minted();
            if st.total_supply() != initial + minted {
                return Err(SimError::SupplyNotConserved {
                    node: name.clone(),
                    height,
                    total: st.total_supply(),
                    initial,
                    minted,
                });
            }
            let expected = reward * u128::from(height);
            if minted != expected {
                return Err(SimError::MintedMismatch {
                    node: name.clone(),
                    height,
                    minted,
                    expected,
                });
            }
            if height < old_height && !track.restarted {
                return Err(SimError::HeightDecreased {
                    node: name.clone(),
                    from: old_height,
                    to: height,
                });
            }
            let depth = old_height - fork;
            if depth > k && !track.restarted {
                return Err(SimError::RollbackTooDeep {
                    node: name.clone(),
                    depth,
                    k,
                    from: old_height,
                });
            }
            if depth > 0 {
                stats.reorgs += 1;
                stats.max_rollback = stats.max_rollback.max(depth);
            }
            stats.tip_changes += 1;
            track.best.truncate(fork as usize + 1);
            for index in fork + 1..=height {
                let Some(block) = new_blocks.get((index - fork - 1) as usize) else {
                    return Err(SimError::RuleViolation {
                        node: name.clone(),
                        index,
                        hash: Hash::ZERO,
                        error: "the best chain has a gap".into(),
                    });
                };
                let hash = block.hash();
                if let Some(s) = settled.get(index as usize) {
                    if *s != hash {
                        return Err(SimError::SettledRolledBack {
                            node: name.clone(),
                            index,
                            settled: *s,
                            held: hash,
                            k,
                        });
                    }
                }
                if let Err(e) = track.checker.verify_and_add(block.clone(), now_ms) {
                    return Err(SimError::RuleViolation {
                        node: name.clone(),
                        index,
                        hash,
                        error: e.to_string(),
                    });
                }
                track.best.push(hash);
            }
            if track.checker.tip_hash() != c.tip_hash() {
                return Err(SimError::ForkChoiceMismatch {
                    node: name.clone(),
                    height,
                    node_tip: c.tip_hash(),
                    checker_tip: track.checker.tip_hash(),
                });
            }
            if track.checker.state() != c.state() {
                return Err(SimError::StateMismatch {
                    node: name.clone(),
                    height,
                });
            }
            Ok(Some(fork + 1))
        });
        track.restarted = false;
        match outcome {
            Some(r) => r,
            None => Ok(None),
        }
    }

    /// After every node was observed: extends the settled prefix and records majority blocks.
    /// `live` are the nodes running now; `changed_from` the lowest index that changed on any.
    pub fn after_step(
        &mut self,
        live: &[usize],
        changed_from: Option<u64>,
    ) -> Result<(), SimError> {
        let Some(lo) = changed_from else {
            return Ok(());
        };
        let chains: Vec<&NodeTrack> = live.iter().filter_map(|&i| self.nodes.get(i)).collect();
        if chains.is_empty() {
            return Ok(());
        }
        // Majority blocks: only indices at or above the lowest change can have new holders.
        let top = chains.iter().map(|t| t.best.len()).max().unwrap_or(0);
        for index in lo as usize..top {
            let mut counts: Vec<(Hash, usize)> = Vec::new();
            for t in &chains {
                if self.skip_tips && index + 1 >= t.best.len() {
                    continue;
                }
                if let Some(h) = t.best.get(index) {
                    match counts.iter_mut().find(|(x, _)| x == h) {
                        Some((_, n)) => *n += 1,
                        None => counts.push((*h, 1)),
                    }
                }
            }
            for (h, n) in counts {
                if n < self.majority_of {
                    continue;
                }
                match self.majority.get(&(index as u64)) {
                    Some(old) if *old != h => {
                        let loser = chains
                            .iter()
                            .find(|t| t.best.get(index) == Some(&h))
                            .map_or_else(String::new, |t| t.name.clone());
                        return Err(SimError::MajorityBlockLost {
                            index: index as u64,
                            hash: *old,
                            node: loser,
                            held: Some(h),
                        });
                    }
                    Some(_) => {}
                    None => {
                        self.majority.insert(index as u64, h);
                        self.stats.majority_blocks += 1;
                    }
                }
            }
        }
        // The common prefix of the running nodes, and what it settles (k below it).
        let min_len = chains.iter().map(|t| t.best.len()).min().unwrap_or(1);
        let mut cp = min_len - 1;
        while cp > 0 {
            let h = chains[0].best[cp];
            if chains.iter().all(|t| t.best[cp] == h) {
                break;
            }
            cp -= 1;
        }
        let k = usize::try_from(self.k).unwrap_or(usize::MAX);
        if cp >= k {
            let target = cp - k;
            while self.settled.len() <= target {
                let i = self.settled.len();
                self.settled.push(chains[0].best[i]);
            }
            self.stats.settled_height = (self.settled.len() - 1) as u64;
        }
        Ok(())
    }

    /// Final check: every block ever held by a majority is on the best chain of every node in
    /// `live`.
    pub fn check_majority_kept(&self, live: &[usize]) -> Result<(), SimError> {
        for &i in live {
            let Some(t) = self.nodes.get(i) else { continue };
            for (&index, &hash) in &self.majority {
                let held = t.best.get(index as usize).copied();
                if held != Some(hash) {
                    return Err(SimError::MajorityBlockLost {
                        index,
                        hash,
                        node: t.name.clone(),
                        held,
                    });
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pp_ledger::KeyPair;

    fn genesis() -> Genesis {
        let mut g = Genesis::devnet("node1", KeyPair::from_seed([7; 32]).public(), 1_000);
        g.k = 2;
        g
    }

    fn h(n: u8) -> Hash {
        Hash::blake2b(&[n])
    }

    /// A checker over three nodes whose observed chains are set directly.
    fn with_chains(chains: [&[u8]; 3]) -> Invariants {
        let mut inv = Invariants::new(&genesis(), 3).expect("genesis");
        let g = inv.settled[0];
        for (i, c) in chains.iter().enumerate() {
            inv.add_node(&format!("n{i}")).expect("node");
            inv.nodes[i].best = std::iter::once(g).chain(c.iter().map(|&b| h(b))).collect();
        }
        inv
    }

    fn set(inv: &mut Invariants, node: usize, chain: &[u8]) {
        let g = inv.settled[0];
        inv.nodes[node].best = std::iter::once(g)
            .chain(chain.iter().map(|&b| h(b)))
            .collect();
    }

    #[test]
    fn block_held_by_a_majority_then_replaced_by_another_majority_block_is_reported() {
        let mut inv = with_chains([&[1, 2], &[1, 2], &[1, 3]]);
        inv.after_step(&[0, 1, 2], Some(1)).expect("first look");
        assert_eq!(inv.majority.get(&2), Some(&h(2)));
        set(&mut inv, 0, &[1, 3, 4]);
        set(&mut inv, 1, &[1, 3, 4]);
        let err = inv
            .after_step(&[0, 1, 2], Some(2))
            .expect_err("block 2 was lost");
        assert!(
            matches!(err, SimError::MajorityBlockLost { index: 2, .. }),
            "{err}"
        );
    }

    #[test]
    fn majority_block_missing_from_a_final_chain_is_reported() {
        let mut inv = with_chains([&[1, 2], &[1, 2], &[1]]);
        inv.after_step(&[0, 1, 2], Some(1)).expect("look");
        inv.check_majority_kept(&[0, 1]).expect("both hold block 2");
        let err = inv
            .check_majority_kept(&[0, 1, 2])
            .expect_err("n2 lacks block 2");
        assert!(
            matches!(err, SimError::MajorityBlockLost { index: 2, held: None, ref node, .. } if node == "n2"),
            "{err}"
        );
    }

    #[test]
    fn minority_blocks_are_not_counted_as_majority_blocks() {
        let mut inv = with_chains([&[1, 2], &[1, 3], &[1, 4]]);
        inv.after_step(&[0, 1, 2], Some(1)).expect("look");
        assert_eq!(inv.majority.get(&1), Some(&h(1)));
        assert_eq!(inv.majority.get(&2), None);
        // A node that is down does not count towards the majority.
        let mut inv = with_chains([&[1, 2], &[1, 2], &[1, 3]]);
        inv.after_step(&[0, 2], Some(1)).expect("look");
        assert_eq!(inv.majority.get(&2), None);
    }

    #[test]
    fn settled_prefix_is_k_below_the_common_prefix_of_live_nodes() {
        // k = 2; common prefix of the three chains is index 4 (block 4), so index 2 is settled.
        let mut inv = with_chains([&[1, 2, 3, 4, 5], &[1, 2, 3, 4], &[1, 2, 3, 4, 6]]);
        inv.after_step(&[0, 1, 2], Some(1)).expect("look");
        assert_eq!(inv.settled.len(), 3);
        assert_eq!(inv.settled[2], h(2));
        assert_eq!(inv.stats().settled_height, 2);
        // A node that is down does not hold the prefix back.
        let mut inv = with_chains([&[1, 2, 3, 4, 5], &[1], &[1, 2, 3, 4, 5]]);
        inv.after_step(&[0, 2], Some(1)).expect("look");
        assert_eq!(inv.stats().settled_height, 3);
    }
}
