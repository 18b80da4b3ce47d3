//! A trivial [`ConsensusRules`] for tests, benches and examples that must not depend on
//! `pp-ouroboros`: the leader of slot `s` is the `s mod n`-th genesis stakeholder in key order.
//!
//! Not for production: leadership ignores stake amounts and never changes after genesis.

use crate::consensus::{ConsensusRules, StakeMap};
use crate::crypto::PublicKey;
use crate::genesis::Genesis;
use crate::hash::Hash;

/// Round-robin leadership over the genesis stakeholders, sorted by key.
#[derive(Debug, Clone, Copy, Default)]
pub struct RoundRobin;

impl RoundRobin {
    /// The leader of `slot` for `genesis`, without building a chain.
    pub fn leader(genesis: &Genesis, slot: u64) -> Option<PublicKey> {
        RoundRobin.slot_leader(&RoundRobin.genesis_state(genesis), slot)
    }
}

impl ConsensusRules for RoundRobin {
    /// The stakeholder keys in key order.
    type State = Vec<PublicKey>;

    fn genesis_state(&self, genesis: &Genesis) -> Self::State {
        let mut keys: Vec<PublicKey> = genesis
            .initial_stakeholders
            .iter()
            .filter(|s| s.stake > 0)
            .map(|s| s.public_key)
            .collect();
        keys.sort();
        keys.dedup();
        keys
    }

    fn state_for_slot(
        &self,
        parent: &Self::State,
        _slot: u64,
        _stakes_at_parent: &StakeMap,
    ) -> Self::State {
        parent.clone()
    }

    fn slot_leader(&self, state: &Self::State, slot: u64) -> Option<PublicKey> {
        let n = u64::try_from(state.len()).ok().filter(|&n| n > 0)?;
        let i = usize::try_from(slot % n).ok()?;
        state.get(i).copied()
    }

    fn on_block(&self, _state: &mut Self::State, _block_hash: &Hash) {}
}
