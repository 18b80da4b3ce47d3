//! [`Ouroboros`]: the pp-ledger [`ConsensusRules`] built from the slot clock, the epoch state and
//! follow-the-satoshi leader election.
//!
//! The chain keeps, beside each block, the [`EpochState`] that block left behind. To judge a child
//! in slot s it asks [`ConsensusRules::state_for_slot`] (parent's state advanced to s's epoch,
//! using the parent's stakes for every crossed epoch, since no block came between), then
//! [`ConsensusRules::slot_leader`], and after accepting the block, [`ConsensusRules::on_block`].
//!
//! In praos mode (genesis `leader_mode: praos`) there is no public leader: a block proves its
//! producer's election with the VRF evidence in its header, checked by
//! [`ConsensusRules::check_producer`] against the producer's registered VRF key, the epoch's
//! nonce and stake snapshot; [`ConsensusRules::on_header`] folds the VRF nonce contribution of
//! the blocks in the epoch's first two thirds into the next nonce; and
//! [`ConsensusRules::prefer_tip`] breaks ties between blocks of one slot by leader value.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::sync::Arc;

use pp_ledger::{
    BlockError, BlockHeader, ConsensusRules, Genesis, Hash, LeaderMode, OpCert, PublicKey,
    StakeMap, VrfEvidence, VrfKeyMap,
};

use crate::clock::SlotClock;
use crate::epoch::EpochState;
use crate::error::OuroborosError;
use crate::leader::{leader, total_stake, LeaderTable};
use crate::praos::{
    nonce_contribution, nonce_window, prove_leadership, tie_break, verify_leadership, LeaderProof,
};
use crate::threshold::ActiveSlotCoeff;
use crate::vrf::{EcVrf, VrfOutput, VrfProof, VrfPublicKey, VrfSecretKey};

/// The praos parameters of a network: `f` and the registered VRF key of every stakeholder.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Praos {
    f: ActiveSlotCoeff,
    vrf_keys: Arc<BTreeMap<PublicKey, VrfPublicKey>>,
}

/// Ouroboros for one network: classic (public leader schedule) or praos (private VRF leader
/// election), as the genesis says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ouroboros {
    clock: SlotClock,
    praos: Option<Praos>,
}

impl Ouroboros {
    /// The rules of the network defined by `genesis`. Fails on a zero slot duration or epoch
    /// length, and in praos mode on an inadmissible `active_slot_coeff`, a missing VRF key, or
    /// a VRF key that is not a valid point (none of which a validated genesis has, except the
    /// last: [`Genesis::validate`] does not know the curve).
    pub fn new(genesis: &Genesis) -> Result<Ouroboros, OuroborosError> {
        let praos = match genesis.leader_mode {
            LeaderMode::Classic => None,
            LeaderMode::Praos => {
                let ratio = genesis
                    .active_slot_coeff
                    .ok_or(OuroborosError::InvalidActiveSlotCoeff { num: 0, den: 0 })?;
                let f = ActiveSlotCoeff::new(ratio.num, ratio.den)?;
                let mut vrf_keys = BTreeMap::new();
                for s in &genesis.initial_stakeholders {
                    let key = s.vrf_key.ok_or(OuroborosError::InvalidVrfPublicKey)?;
                    vrf_keys.insert(s.public_key, VrfPublicKey::from_bytes(key.0)?);
                }
                Some(Praos {
                    f,
                    vrf_keys: Arc::new(vrf_keys),
                })
            }
        };
        Ok(Ouroboros {
            clock: SlotClock::from_genesis(genesis)?,
            praos,
        })
    }

    /// The leader mode of these rules.
    pub fn mode(&self) -> LeaderMode {
        if self.praos.is_some() {
            LeaderMode::Praos
        } else {
            LeaderMode::Classic
        }
    }

    /// The VRF key of genesis stakeholder `key` (praos mode), if any. Keys registered by bonds
    /// are in the epoch state: see [`Ouroboros::vrf_key_in`].
    pub fn vrf_key_of(&self, key: &PublicKey) -> Option<VrfPublicKey> {
        self.praos.as_ref()?.vrf_keys.get(key).copied()
    }

    /// The VRF key stakeholder `key` proves leadership with in `state`'s epoch (praos mode):
    /// the one registered (genesis or bond) with the stake of its snapshot, if it is a valid
    /// point (a bond's key is checked against the curve only here, where it is used).
    pub fn vrf_key_in(&self, state: &EpochState, key: &PublicKey) -> Option<VrfPublicKey> {
        self.praos.as_ref()?;
        let bytes = state.vrf_keys.get(key)?;
        VrfPublicKey::from_bytes(bytes.0).ok()
    }

    /// Praos: the threshold `Θ` of `producer` in `state`'s epoch (its stake in the snapshot),
    /// 0 if it has none.
    pub fn threshold_of(
        &self,
        state: &EpochState,
        producer: &PublicKey,
    ) -> Result<u64, OuroborosError> {
        let Some(p) = &self.praos else {
            return Ok(0);
        };
        let Some(&stake) = state.distribution.get(producer) else {
            return Ok(0);
        };
        p.f.threshold(stake, total_stake(&state.distribution)?)
    }

    /// Praos production: whether the holder of `secret`, stakeholder `producer`, leads `slot`
    /// under `state` (as [`pp_ledger::Chain::state_for_next`] gives it), and the header evidence
    /// if it does. Only the secret key can answer this (the schedule is private). Fails if
    /// the rules are classic, the slot is outside the state's epoch, or `secret` is not the
    /// key registered for `producer`.
    pub fn prove_slot(
        &self,
        state: &EpochState,
        slot: u64,
        producer: &PublicKey,
        secret: &VrfSecretKey,
    ) -> Result<Option<VrfEvidence>, OuroborosError> {
        if self.praos.is_none() {
            return Err(OuroborosError::InvalidVrfPublicKey);
        }
        self.check_epoch(state, slot)?;
        if self.vrf_key_in(state, producer) != Some(secret.public()) {
            return Err(OuroborosError::InvalidVrfPublicKey);
        }
        let theta = self.threshold_of(state, producer)?;
        if theta == 0 {
            return Ok(None);
        }
        Ok(
            prove_leadership::<EcVrf>(secret, &state.nonce, slot, theta)?.map(|p| VrfEvidence {
                output: p.output.0,
                proof: p.proof.0,
            }),
        )
    }

    fn check_epoch(&self, state: &EpochState, slot: u64) -> Result<(), OuroborosError> {
        let slot_epoch = self.clock.epoch_of_slot(slot);
        if slot_epoch != state.epoch {
            return Err(OuroborosError::SlotNotInEpoch {
                slot,
                slot_epoch,
                state_epoch: state.epoch,
            });
        }
        Ok(())
    }

    /// The praos check of a header (see [`ConsensusRules::check_producer`]).
    fn check_praos(&self, state: &EpochState, header: &BlockHeader) -> Result<(), BlockError> {
        let slot = header.slot;
        let producer = header.producer;
        if self.check_epoch(state, slot).is_err() {
            return Err(BlockError::NoLeader { slot });
        }
        let Some(vrf) = &header.vrf else {
            return Err(BlockError::BadVrfProof { slot, producer });
        };
        let Some(cert) = &header.ocert else {
            return Err(BlockError::BadOpCertSignature { slot, producer });
        };
        self.check_ocert(state, slot, &producer, cert)?;
        let Some(key) = self.vrf_key_in(state, &producer) else {
            return Err(BlockError::NoVrfKey { slot, producer });
        };
        let theta = self
            .threshold_of(state, &producer)
            .map_err(|_| BlockError::NoLeader { slot })?;
        if theta == 0 {
            return Err(BlockError::NotElected { slot, producer });
        }
        let evidence = LeaderProof::<EcVrf> {
            output: VrfOutput(vrf.output),
            proof: VrfProof(vrf.proof),
        };
        match verify_leadership::<EcVrf>(&key, &state.nonce, slot, theta, &evidence) {
            Ok(_) => Ok(()),
            Err(OuroborosError::NotSlotLeader { .. }) => {
                Err(BlockError::NotElected { slot, producer })
            }
            Err(_) => Err(BlockError::BadVrfProof { slot, producer }),
        }
    }

    /// Praos: whether a block of `producer` in `slot` may carry `cert` on the chain whose state
    /// is `state` (as [`ConsensusRules::state_for_slot`] gives it): the certificate is valid from
    /// its epoch on, and its counter `n` satisfies `m ≤ n ≤ m + 1` for the highest counter `m`
    /// the chain has carried for the producer (0 if none). Below `m` it is revoked by a newer
    /// certificate; above `m + 1` it skips an issue number (as Cardano's OCERT rule).
    ///
    /// The cold key's signature over the certificate and the hot key's over the header are
    /// checked in the stateless stage ([`pp_ledger::BlockVerifier`]); a producer checks its own
    /// certificate here before it spends a slot on a block every peer would refuse.
    pub fn check_ocert(
        &self,
        state: &EpochState,
        slot: u64,
        producer: &PublicKey,
        cert: &OpCert,
    ) -> Result<(), BlockError> {
        let epoch = self.clock.epoch_of_slot(slot);
        if epoch < cert.valid_from {
            return Err(BlockError::OpCertNotYetValid {
                slot,
                epoch,
                valid_from: cert.valid_from,
            });
        }
        let highest = state.ocert_counter(producer);
        if cert.counter < highest {
            return Err(BlockError::OpCertRevoked {
                producer: *producer,
                counter: cert.counter,
                highest,
            });
        }
        if cert.counter - highest > 1 {
            return Err(BlockError::OpCertCounterJump {
                producer: *producer,
                counter: cert.counter,
                highest,
            });
        }
        Ok(())
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

    /// [`ConsensusRules::state_for_slot`] that snapshots the ledger's registered VRF keys with
    /// its stakes (the same epoch boundary).
    fn state_for_slot_with_keys(
        &self,
        parent: &EpochState,
        slot: u64,
        stakes_at_parent: &StakeMap,
        vrf_keys_at_parent: &VrfKeyMap,
    ) -> EpochState {
        parent
            .advance_to_with_keys(
                self.clock.epoch_of_slot(slot),
                stakes_at_parent,
                vrf_keys_at_parent,
            )
            .unwrap_or_else(|_| parent.clone())
    }

    fn epoch_of(&self, slot: u64) -> u64 {
        self.clock.epoch_of_slot(slot)
    }

    /// Classic: the slot's leader. Praos: always `None` (leaders are private; a block proves
    /// its own election).
    fn slot_leader(&self, state: &EpochState, slot: u64) -> Option<PublicKey> {
        if self.praos.is_some() {
            return None;
        }
        self.leader_of(state, slot).ok()
    }

    fn on_block(&self, state: &mut EpochState, block_hash: &Hash) {
        state.on_block(block_hash);
    }

    fn check_producer(&self, state: &EpochState, header: &BlockHeader) -> Result<(), BlockError> {
        if self.praos.is_some() {
            return self.check_praos(state, header);
        }
        let slot = header.slot;
        match self.slot_leader(state, slot) {
            None => Err(BlockError::NoLeader { slot }),
            Some(leader) if leader != header.producer => Err(BlockError::WrongLeader {
                slot,
                expected: leader,
                got: header.producer,
            }),
            Some(_) => Ok(()),
        }
    }

    /// Classic: folds the block hash into ρ_e. Praos: folds the VRF nonce contribution of a
    /// block in the first `floor(2E/3)` slots of its epoch, nothing for later blocks; the block
    /// hash (header nonce, transactions) never enters. Praos also records the certificate's
    /// counter as the producer's highest (it passed [`Ouroboros::check_ocert`]: at most +1).
    fn on_header(&self, state: &mut EpochState, header: &BlockHeader, block_hash: &Hash) {
        if self.praos.is_none() {
            state.on_block(block_hash);
            return;
        }
        if let Some(cert) = &header.ocert {
            state.on_ocert(header.producer, cert.counter);
        }
        let e = self.clock.slots_per_epoch();
        if let Some(vrf) = &header.vrf {
            if header.slot % e < nonce_window(e) {
                state.on_nonce_contribution(&nonce_contribution(&vrf.output));
            }
        }
    }

    fn prefer_tip(&self, candidate: &BlockHeader, ours: &BlockHeader) -> Ordering {
        match (&self.praos, &candidate.vrf, &ours.vrf) {
            (Some(_), Some(a), Some(b)) => tie_break(&a.output, &b.output),
            _ => Ordering::Equal,
        }
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
            vrf_key: None,
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
