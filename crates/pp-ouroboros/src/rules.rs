//! [`Ouroboros`]: the pp-ledger [`ConsensusRules`] built from the slot clock, the epoch state and
//! follow-the-satoshi leader election.
//!
//! The chain keeps, beside each block, the [`EpochState`] that block left behind. To judge a child
//! in slot s it asks [`ConsensusRules::state_for_slot`] (parent's state advanced to s's epoch,
//! using the parent's stakes for every crossed epoch, since no block came between), then
//! [`ConsensusRules::slot_leader`], and after accepting the block, [`ConsensusRules::on_block`].

use pp_ledger::{ConsensusRules, Genesis, Hash, PublicKey, StakeMap};

use crate::clock::SlotClock;
use crate::epoch::EpochState;
use crate::error::OuroborosError;
use crate::leader::{leader, LeaderTable};

/// Ouroboros (classic, public leader schedule) for one network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ouroboros {
    clock: SlotClock,
}

impl Ouroboros {
    /// The rules of the network defined by `genesis` (fails only on a zero slot duration or
    /// epoch length, which a validated genesis never has).
    pub fn new(genesis: &Genesis) -> Result<Ouroboros, OuroborosError> {
        Ok(Ouroboros {
            clock: SlotClock::from_genesis(genesis)?,
        })
    }

    /// The slot clock of this network.
    pub fn clock(&self) -> &SlotClock {
        &self.clock
    }

    /// Like [`ConsensusRules::state_for_slot`], with the reason when there is no such state: the
    /// slot is in an epoch before the parent's, or more than [`crate::MAX_EPOCH_GAP`] epochs after.
    pub fn try_state_for_slot(
        &self,
        parent: &EpochState,
        slot: u64,
        stakes_at_parent: &StakeMap,
    ) -> Result<EpochState, OuroborosError> {
        parent.advance_to(self.clock.epoch_of_slot(slot), stakes_at_parent)
    }

    /// Like [`ConsensusRules::slot_leader`], with the reason when there is no leader: the slot is
    /// not in the state's epoch, or nobody has stake.
    pub fn leader_of(&self, state: &EpochState, slot: u64) -> Result<PublicKey, OuroborosError> {
        let slot_epoch = self.clock.epoch_of_slot(slot);
        if slot_epoch != state.epoch {
            return Err(OuroborosError::SlotNotInEpoch {
                slot,
                slot_epoch,
                state_epoch: state.epoch,
            });
        }
        leader(&state.nonce, &state.distribution, slot)
    }

    /// The slots of `state`'s epoch led by `key`, in order: what a producer looks at to know when
    /// it will be asked to produce.
    pub fn slots_led_by(&self, state: &EpochState, key: &PublicKey) -> Vec<u64> {
        // A table built once makes each of the epoch's draws a binary search, not a walk.
        let Ok(table) = LeaderTable::new(&state.distribution) else {
            return Vec::new();
        };
        let first = self.clock.first_slot_of_epoch(state.epoch);
        (0..self.clock.slots_per_epoch())
            .filter_map(|i| first.checked_add(i))
            .filter(|&s| self.clock.epoch_of_slot(s) == state.epoch)
            .filter(|&s| table.leader(&state.nonce, s).ok().as_ref() == Some(key))
            .collect()
    }
}

impl ConsensusRules for Ouroboros {
    type State = EpochState;

    fn genesis_state(&self, genesis: &Genesis) -> EpochState {
        EpochState::genesis(genesis)
    }

    /// An impossible request (slot in an earlier epoch, or an epoch gap beyond
    /// [`crate::MAX_EPOCH_GAP`]) yields the parent's state unchanged; its epoch then differs from
    /// the slot's, so [`ConsensusRules::slot_leader`] returns `None` and the block is refused.
    fn state_for_slot(
        &self,
        parent: &EpochState,
        slot: u64,
        stakes_at_parent: &StakeMap,
    ) -> EpochState {
        self.try_state_for_slot(parent, slot, stakes_at_parent)
            .unwrap_or_else(|_| parent.clone())
    }

    fn epoch_of(&self, slot: u64) -> u64 {
        self.clock.epoch_of_slot(slot)
    }

    fn slot_leader(&self, state: &EpochState, slot: u64) -> Option<PublicKey> {
        self.leader_of(state, slot).ok()
    }

    fn on_block(&self, state: &mut EpochState, block_hash: &Hash) {
        state.on_block(block_hash);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pp_ledger::{InitialStakeholder, KeyPair};

    fn two_party_genesis() -> (Genesis, PublicKey, PublicKey) {
        let a = KeyPair::from_seed([1; 32]).public();
        let b = KeyPair::from_seed([2; 32]).public();
        let mut g = Genesis::devnet("a", a, 1_700_000_000_000);
        g.slots_per_epoch = 10;
        g.initial_stakeholders.push(InitialStakeholder {
            id: "b".into(),
            public_key: b,
            stake: 1_000,
        });
        g.validate().unwrap();
        (g, a, b)
    }

    #[test]
    fn stake_moved_in_epoch_0_changes_leaders_from_epoch_2_only() {
        let (g, a, b) = two_party_genesis();
        let rules = Ouroboros::new(&g).unwrap();
        let s0 = rules.genesis_state(&g);
        // During epoch 0, b bonds everything away: only a holds stake afterwards.
        let only_a: StakeMap = [(a, 2_000)].into_iter().collect();
        let s1 = rules.state_for_slot(&s0, 15, &only_a);
        assert_eq!(s1.epoch, 1);
        let leaders1: Vec<_> = (10..20).filter_map(|s| rules.slot_leader(&s1, s)).collect();
        assert_eq!(leaders1.len(), 10);
        assert!(leaders1.contains(&b), "epoch 1 still uses genesis stake");
        let s2 = rules.state_for_slot(&s1, 25, &only_a);
        assert_eq!(s2.epoch, 2);
        assert!((20..30).all(|s| rules.slot_leader(&s2, s) == Some(a)));
    }

    #[test]
    fn state_for_slot_in_same_epoch_keeps_the_accumulator() {
        let (g, _, _) = two_party_genesis();
        let rules = Ouroboros::new(&g).unwrap();
        let mut s = rules.genesis_state(&g);
        let h = Hash::blake2b(b"block 1");
        rules.on_block(&mut s, &h);
        let same = rules.state_for_slot(&s, 9, &StakeMap::new());
        assert_eq!(same, s);
        assert_eq!(same.rho, crate::nonce::rho_of([&h]));
    }

    #[test]
    fn slot_leader_refuses_slots_outside_the_state_epoch_and_impossible_gaps() {
        let (g, a, _) = two_party_genesis();
        let rules = Ouroboros::new(&g).unwrap();
        let s0 = rules.genesis_state(&g);
        assert_eq!(rules.slot_leader(&s0, 10), None);
        assert_eq!(
            rules.leader_of(&s0, 10),
            Err(OuroborosError::SlotNotInEpoch {
                slot: 10,
                slot_epoch: 1,
                state_epoch: 0
            })
        );
        let stakes: StakeMap = [(a, 1)].into_iter().collect();
        let far = rules.state_for_slot(&s0, u64::MAX, &stakes);
        assert_eq!(far, s0);
        assert_eq!(rules.slot_leader(&far, u64::MAX), None);
        assert!(matches!(
            rules.try_state_for_slot(&s0, u64::MAX, &stakes),
            Err(OuroborosError::EpochGapTooLarge { .. })
        ));
    }

    #[test]
    fn slots_led_by_partitions_the_epoch_between_stakeholders() {
        let (g, a, b) = two_party_genesis();
        let rules = Ouroboros::new(&g).unwrap();
        let s0 = rules.genesis_state(&g);
        let mut all: Vec<u64> = rules.slots_led_by(&s0, &a);
        all.extend(rules.slots_led_by(&s0, &b));
        all.sort_unstable();
        assert_eq!(all, (0..10).collect::<Vec<_>>());
    }
}
