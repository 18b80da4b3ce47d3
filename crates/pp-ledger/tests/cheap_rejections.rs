//! Cheap rejections first: a block whose parent is more than `k` below the tip is refused
//! before any consensus work, and the leader check advances a parent's consensus state over an
//! epoch at most once.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use common::*;
use pp_ledger::{
    AddOutcome, Block, Chain, ChainError, ConsensusRules, Genesis, Hash, PublicKey, RoundRobin,
    StakeMap,
};

/// Round-robin leadership with epochs of 10 slots, counting how often a state is advanced
/// (what costs one epoch step per elapsed epoch in `pp_ouroboros`).
#[derive(Debug, Clone, Default)]
struct Counting {
    advances: Arc<AtomicU64>,
}

impl Counting {
    fn advances(&self) -> u64 {
        self.advances.load(Ordering::SeqCst)
    }
}

impl ConsensusRules for Counting {
    type State = Vec<PublicKey>;

    fn genesis_state(&self, genesis: &Genesis) -> Self::State {
        RoundRobin.genesis_state(genesis)
    }

    fn state_for_slot(&self, parent: &Self::State, slot: u64, stakes: &StakeMap) -> Self::State {
        self.advances.fetch_add(1, Ordering::SeqCst);
        RoundRobin.state_for_slot(parent, slot, stakes)
    }

    fn epoch_of(&self, slot: u64) -> u64 {
        slot / 10
    }

    fn slot_leader(&self, state: &Self::State, slot: u64) -> Option<PublicKey> {
        RoundRobin.slot_leader(state, slot)
    }

    fn on_block(&self, _state: &mut Self::State, _block_hash: &Hash) {}
}

fn chain(rules: &Counting) -> Chain<Counting> {
    Chain::new(genesis(), rules.clone()).expect("valid genesis")
}

fn extend(c: &mut Chain<Counting>, slots: impl IntoIterator<Item = u64>) {
    let g = c.genesis().clone();
    for s in slots {
        let b = block_on(&g, c.tip(), s, vec![]);
        assert_eq!(c.verify_and_add(b, LATE), Ok(AddOutcome::Extended));
    }
}

/// A non-leader's block on the genesis block, long after: refused as a fork deeper than `k`
/// before its leader is looked up (on a real chain, looking it up steps the epoch state once
/// per epoch since the genesis block, up to 2^20 steps).
#[test]
fn an_old_parent_block_is_refused_before_the_leader_check() {
    let g = genesis();
    let rules = Counting::default();
    let mut c = chain(&rules);
    extend(&mut c, 1..=g.k + 1);
    let slot = 500;
    let old = block_by(&g, &g.block(), slot, vec![], &non_leader(&g, slot));
    let before = rules.advances();
    let expected = ChainError::ForkTooDeep {
        depth: g.k + 1,
        k: g.k,
    };
    assert_eq!(c.screen(&old, LATE), Err(expected.clone()));
    assert_eq!(c.verify_and_add(old.clone(), LATE), Err(expected.clone()));
    let verified = c.verifier().verify_block(old).expect("statelessly valid");
    assert_eq!(c.add_block(verified, LATE), Err(expected));
    assert_eq!(rules.advances(), before, "no consensus state was advanced");
    // A parent exactly k below the tip is still judged (and here refused as a non-leader's).
    let at_k = block_by(
        &g,
        c.block_at(1).expect("held"),
        slot,
        vec![],
        &non_leader(&g, slot),
    );
    assert!(matches!(
        c.verify_and_add(at_k, LATE),
        Err(ChainError::Block(pp_ledger::BlockError::WrongLeader { .. }))
    ));
}

/// Screening a block, adding it, and asking for the next leaders advance the tip's state over
/// an epoch once, not once per question.
#[test]
fn the_leader_check_advances_a_parent_state_once_per_epoch() {
    let g = genesis();
    let rules = Counting::default();
    let mut c = chain(&rules);
    assert_eq!(rules.advances(), 0);
    for slot in [21, 22, 25, 29] {
        c.leader_for_next(slot);
    }
    assert_eq!(rules.advances(), 1, "one epoch (2) of one parent (genesis)");
    let b: Block = block_on(&g, c.tip(), 23, vec![]);
    assert_eq!(c.screen(&b, LATE), Ok(pp_ledger::chain::Screened::Fresh));
    assert_eq!(c.verify_and_add(b, LATE), Ok(AddOutcome::Extended));
    assert_eq!(rules.advances(), 1, "screen and add_block reuse it");
    c.leader_for_next(24);
    c.leader_for_next(31);
    assert_eq!(rules.advances(), 3, "a new parent, and another epoch");
}
