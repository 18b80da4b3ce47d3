//! A trivial [`ConsensusRules`] for tests, benches and examples that must not depend on
//! `pp-ouroboros`: the leader of slot `s` is the `s mod n`-th genesis stakeholder in key order.
//!
//! Not for production: leadership ignores stake amounts and never changes after genesis.

use crate::block::{Block, BlockHeader};
use crate::consensus::{ConsensusRules, StakeMap};
use crate::crypto::{KeyPair, PublicKey};
use crate::error::BlockError;
use crate::genesis::Genesis;
use crate::hash::Hash;
use crate::state::{LedgerState, Sigs};
use crate::tx::Transaction;

/// The ledger state after a block by `producer` with `transactions` on `state`, under the
/// ledger rules of `genesis` (signatures are not checked): for block builders that track the
/// state of a branch themselves (tests, simulations).
pub fn state_after(
    state: &LedgerState,
    genesis: &Genesis,
    producer: &PublicKey,
    transactions: &[Transaction],
) -> Result<LedgerState, BlockError> {
    let mut st = state.clone();
    st.apply_block_with(
        &crate::chain::root_probe(producer, transactions),
        &Hash::ZERO,
        &genesis.hash(),
        genesis.block_reward,
        Sigs::Verified,
    )?;
    Ok(st)
}

thread_local! {
    /// The ledger state after each block whose state [`root_on`] computed on this thread, by
    /// the block hash [`remember_state`] gave it.
    static STATES: std::cell::RefCell<std::collections::HashMap<Hash, LedgerState>> =
        std::cell::RefCell::new(std::collections::HashMap::new());
}

/// For test block builders on any branch: the `state_root` of a block by `producer` with
/// `transactions` on `parent`, and the state after it. The parent's state is the genesis state
/// for `genesis`'s own block, else the one [`remember_state`] recorded for it on this thread.
/// `None` if it is unknown or the transactions do not apply (the block is invalid anyway).
pub fn root_on(
    genesis: &Genesis,
    parent: &BlockHeader,
    producer: &PublicKey,
    transactions: &[Transaction],
) -> Option<(Hash, LedgerState)> {
    let parent_state = if parent.index == 0 && parent.prev_hash == genesis.hash() {
        Some(LedgerState::from_genesis(genesis))
    } else {
        STATES.with(|m| m.borrow().get(&parent.hash()).cloned())
    }?;
    let st = state_after(&parent_state, genesis, producer, transactions).ok()?;
    Some((crate::state_tree::state_root(&st), st))
}

/// [`Block::produce`] for tests on any branch: the classic block on `parent` carries the
/// `state_root` of [`root_on`] (zero if the parent's state is unknown or the transactions do
/// not apply), and its state is remembered for its children.
#[allow(clippy::too_many_arguments)]
pub fn produce_on(
    genesis: &Genesis,
    parent: &BlockHeader,
    slot: u64,
    timestamp: u64,
    difficulty: u32,
    transactions: Vec<Transaction>,
    key: &KeyPair,
    max_attempts: u64,
) -> Option<Block> {
    let after = root_on(genesis, parent, &key.public(), &transactions);
    let b = Block::produce(
        parent,
        slot,
        timestamp,
        difficulty,
        transactions,
        after.as_ref().map_or(Hash::ZERO, |(r, _)| *r),
        key,
        &genesis.hash(),
        max_attempts,
    )?;
    if let Some((_, st)) = after {
        remember_state(b.hash(), st);
    }
    Some(b)
}

/// Records `state` as the state after block `hash` (on this thread), for [`root_on`] of its
/// children.
pub fn remember_state(hash: Hash, state: LedgerState) {
    STATES.with(|m| {
        m.borrow_mut().insert(hash, state);
    });
}

/// The `state_root` a block by `producer` with `transactions` on `state` must carry: the root
/// of [`state_after`], built from nothing (O(accounts); `Chain::state_root_after` is the
/// incremental form on a chain's tip).
pub fn state_root_after(
    state: &LedgerState,
    genesis: &Genesis,
    producer: &PublicKey,
    transactions: &[Transaction],
) -> Result<Hash, BlockError> {
    state_after(state, genesis, producer, transactions).map(|st| crate::state_tree::state_root(&st))
}

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
