//! The per-epoch consensus state and how it moves from one epoch to the next.
//!
//! An [`EpochState`] holds everything needed to elect the leaders of its epoch (the nonce η_e
//! and the stake distribution SD_e) and to build the next epoch's (SD_{e+1}, ρ_{e−1}, and the
//! running ρ_e). Stake snapshots follow Ouroboros: SD_e is the ledger's stake at the end of epoch
//! e − 2, and the genesis stakeholders for epochs 0 and 1. The state is a plain value: the chain
//! keeps one beside each block, and a fork simply carries its own.

use std::collections::BTreeMap;
use std::sync::Arc;

use pp_ledger::{Genesis, Hash, LeaderMode, PublicKey, StakeMap, VrfKeyMap};

use crate::error::OuroborosError;
use crate::nonce::{epoch_nonce_next, fold_block_hash, RHO_EMPTY};
use crate::praos::PRAOS_NONCE_TAG;

/// The most epochs a state may be advanced in one go (about 2^20 nonce hashes, well under a
/// second). A child block further than this from its parent has no leader, so a forged block in
/// a far-future slot costs a validator nothing; a chain that stalls this long (two years at the
/// devnet's 60-second epochs) needs a new genesis anyway.
pub const MAX_EPOCH_GAP: u64 = 1 << 20;

/// The consensus state of one epoch, as left by the last block applied in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EpochState {
    /// The epoch e this state belongs to.
    pub epoch: u64,
    /// η_e, the nonce seeding this epoch's leader draws.
    pub nonce: Hash,
    /// SD_e: who leads this epoch's slots (stakes at the end of epoch e − 2).
    pub distribution: Arc<StakeMap>,
    /// SD_{e+1}: stakes at the end of epoch e − 1, the distribution of the next epoch.
    pub next_distribution: Arc<StakeMap>,
    /// Praos: the VRF keys registered at the end of epoch e − 2 (with SD_e: a stakeholder's key
    /// counts from the same epoch as its stake); the genesis keys for epochs 0 and 1. Empty in
    /// classic mode.
    pub vrf_keys: Arc<VrfKeyMap>,
    /// Praos: the VRF keys registered at the end of epoch e − 1 (with SD_{e+1}).
    pub next_vrf_keys: Arc<VrfKeyMap>,
    /// ρ_{e−1}: the block-hash accumulator of the previous epoch, which feeds η_{e+1}.
    pub rho_prev: Hash,
    /// ρ_e so far: the accumulator of this epoch's blocks applied up to now. In praos mode it
    /// folds the VRF nonce contributions of the blocks in the epoch's first two thirds
    /// ([`EpochState::on_nonce_contribution`]), never block hashes.
    pub rho: Hash,
    /// How the next nonce is derived: classic (`η_{e+1}` from `ρ_{e−1}`) or praos (`η_{e+1}`
    /// from `ρ_e`, see [`crate::praos_next_nonce`]).
    pub mode: LeaderMode,
    /// Praos: the highest operational-certificate counter this chain has carried for each
    /// producer (absent = none yet, which counts as 0). A header's certificate must have a
    /// counter `n` with `m ≤ n ≤ m + 1` for its producer's `m` here. Kept beside each block
    /// like the rest of the state, so a fork carries its own and a restart recomputes it.
    pub ocert_counters: Arc<BTreeMap<PublicKey, u64>>,
}

/// The genesis stake distribution: every initial stakeholder with positive stake. Duplicate keys
/// (which a validated genesis never has) add up, saturating, so the function is total.
pub fn genesis_distribution(genesis: &Genesis) -> StakeMap {
    let mut d = StakeMap::new();
    for s in genesis.initial_stakeholders.iter().filter(|s| s.stake > 0) {
        let e = d.entry(s.public_key).or_insert(0);
        *e = e.saturating_add(s.stake);
    }
    d
}

/// Praos: the genesis stakeholders' VRF keys (the first stakeholder named for a key keeps it, as
/// in the ledger); empty in classic mode.
pub fn genesis_vrf_keys(genesis: &Genesis) -> VrfKeyMap {
    let mut keys = VrfKeyMap::new();
    if genesis.leader_mode != LeaderMode::Praos {
        return keys;
    }
    let mut taken = std::collections::BTreeSet::new();
    for s in &genesis.initial_stakeholders {
        if let Some(v) = s.vrf_key {
            if !keys.contains_key(&s.public_key) && taken.insert(v) {
                keys.insert(s.public_key, v);
            }
        }
    }
    keys
}

/// `stakes` without zero entries, shared.
fn snapshot(stakes: &StakeMap) -> Arc<StakeMap> {
    Arc::new(
        stakes
            .iter()
            .filter(|(_, &s)| s > 0)
            .map(|(k, &s)| (*k, s))
            .collect(),
    )
}

impl EpochState {
    /// The state of epoch 0 before any block: η_0 from the genesis, its stakeholders as SD_0 and
    /// SD_1, empty accumulators. The genesis block itself (index 0) is not folded into ρ_0: it is
    /// derived from the genesis, not produced, and carries no randomness.
    pub fn genesis(genesis: &Genesis) -> EpochState {
        let d = Arc::new(genesis_distribution(genesis));
        let keys = Arc::new(genesis_vrf_keys(genesis));
        EpochState {
            epoch: 0,
            nonce: genesis.epoch_nonce,
            distribution: Arc::clone(&d),
            next_distribution: d,
            vrf_keys: Arc::clone(&keys),
            next_vrf_keys: keys,
            rho_prev: RHO_EMPTY,
            rho: RHO_EMPTY,
            mode: genesis.leader_mode,
            ocert_counters: Arc::default(),
        }
    }

    /// Praos: the highest certificate counter this chain has carried for `producer`, 0 if none.
    pub fn ocert_counter(&self, producer: &PublicKey) -> u64 {
        self.ocert_counters.get(producer).copied().unwrap_or(0)
    }

    /// Praos: records that an accepted block of `producer` carried certificate `counter`
    /// (the highest one is kept).
    pub fn on_ocert(&mut self, producer: PublicKey, counter: u64) {
        if counter > self.ocert_counter(&producer) {
            Arc::make_mut(&mut self.ocert_counters).insert(producer, counter);
        }
    }

    /// Records an accepted block of this epoch (classic): ρ_e = Blake2b-256(ρ_e ‖ block_hash).
    pub fn on_block(&mut self, block_hash: &Hash) {
        self.rho = fold_block_hash(&self.rho, block_hash);
    }

    /// Records the nonce contribution `n = Blake2b-256("N" ‖ β)` of an accepted praos block in
    /// the epoch's nonce window: ρ_e = Blake2b-256(ρ_e ‖ n). The caller checks the window.
    pub fn on_nonce_contribution(&mut self, n: &Hash) {
        self.rho = Hash::blake2b_parts(&[self.rho.as_bytes(), n.as_bytes()]);
    }

    /// The state of epoch e + 1, given the ledger's stakes at the end of epoch e:
    /// SD_{e+1} becomes current, those stakes become SD_{e+2}, η_{e+1} is η_e for e + 1 < 2 and
    /// Blake2b-256(tag ‖ η_e ‖ ρ_{e−1}) otherwise, ρ_e becomes the previous accumulator and the
    /// new epoch's starts empty.
    /// The VRF keys move along with the stakes; this form registers no key beyond those of
    /// SD_{e+1} ([`EpochState::advance_with_keys`] takes the ledger's).
    pub fn advance(&self, stakes_at_end: &StakeMap) -> Result<EpochState, OuroborosError> {
        self.step(snapshot(stakes_at_end), Arc::clone(&self.next_vrf_keys))
    }

    /// [`EpochState::advance`] with the ledger's registered VRF keys at the end of epoch e,
    /// which become the keys of SD_{e+2}.
    pub fn advance_with_keys(
        &self,
        stakes_at_end: &StakeMap,
        vrf_keys_at_end: &VrfKeyMap,
    ) -> Result<EpochState, OuroborosError> {
        self.step(snapshot(stakes_at_end), self.keys_snapshot(vrf_keys_at_end))
    }

    /// The keys at an epoch's end, sharing the previous snapshot when nothing changed.
    fn keys_snapshot(&self, keys: &VrfKeyMap) -> Arc<VrfKeyMap> {
        if *self.next_vrf_keys == *keys {
            Arc::clone(&self.next_vrf_keys)
        } else {
            Arc::new(keys.clone())
        }
    }

    fn step(
        &self,
        stakes_at_end: Arc<StakeMap>,
        vrf_keys_at_end: Arc<VrfKeyMap>,
    ) -> Result<EpochState, OuroborosError> {
        let epoch = self
            .epoch
            .checked_add(1)
            .ok_or(OuroborosError::EpochOverflow(self.epoch))?;
        let nonce = match self.mode {
            // Praos: η_{e+1} = Blake2b-256(tag ‖ η_e ‖ ρ_e), ρ_e over the VRF outputs of the
            // first two thirds of epoch e (settled a third of an epoch before it is used).
            LeaderMode::Praos => {
                Hash::blake2b_parts(&[PRAOS_NONCE_TAG, self.nonce.as_bytes(), self.rho.as_bytes()])
            }
            // η_1 = η_0: there is no settled epoch yet whose blocks could contribute.
            LeaderMode::Classic if epoch < 2 => self.nonce,
            LeaderMode::Classic => epoch_nonce_next(&self.nonce, &self.rho_prev),
        };
        Ok(EpochState {
            epoch,
            nonce,
            distribution: Arc::clone(&self.next_distribution),
            next_distribution: stakes_at_end,
            vrf_keys: Arc::clone(&self.next_vrf_keys),
            next_vrf_keys: vrf_keys_at_end,
            rho_prev: self.rho,
            rho: RHO_EMPTY,
            mode: self.mode,
            ocert_counters: Arc::clone(&self.ocert_counters),
        })
    }

    /// The state of epoch `target` when no block was applied between this state and `target`:
    /// every crossed epoch ends with the same stakes, `stakes_at_end`. After two steps the
    /// distributions and accumulators no longer change, only the nonce does, one hash per epoch;
    /// the loop is bounded by [`MAX_EPOCH_GAP`].
    pub fn advance_to(
        &self,
        target: u64,
        stakes_at_end: &StakeMap,
    ) -> Result<EpochState, OuroborosError> {
        let keys = Arc::clone(&self.next_vrf_keys);
        self.advance_to_with_keys(target, stakes_at_end, &keys)
    }

    /// [`EpochState::advance_to`] with the ledger's registered VRF keys, which end every
    /// crossed epoch too.
    pub fn advance_to_with_keys(
        &self,
        target: u64,
        stakes_at_end: &StakeMap,
        vrf_keys_at_end: &VrfKeyMap,
    ) -> Result<EpochState, OuroborosError> {
        if target < self.epoch {
            return Err(OuroborosError::EpochBackwards {
                from: self.epoch,
                to: target,
            });
        }
        let gap = target - self.epoch;
        if gap > MAX_EPOCH_GAP {
            return Err(OuroborosError::EpochGapTooLarge {
                from: self.epoch,
                to: target,
                max: MAX_EPOCH_GAP,
            });
        }
        if gap == 0 {
            return Ok(self.clone());
        }
        // One shared snapshot for all crossed epochs: they all end with the same stakes.
        let snap = snapshot(stakes_at_end);
        let keys = self.keys_snapshot(vrf_keys_at_end);
        let mut state = self.step(Arc::clone(&snap), Arc::clone(&keys))?;
        for _ in 1..gap {
            state = state.step(Arc::clone(&snap), Arc::clone(&keys))?;
        }
        Ok(state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pp_ledger::PublicKey;

    fn key(b: u8) -> PublicKey {
        PublicKey([b; 32])
    }

    fn genesis() -> Genesis {
        Genesis::devnet("node0", key(1), 1_700_000_000_000)
    }

    #[test]
    fn genesis_state_uses_genesis_nonce_and_stakeholders_for_epochs_0_and_1() {
        let g = genesis();
        let s0 = EpochState::genesis(&g);
        assert_eq!(s0.epoch, 0);
        assert_eq!(s0.nonce, g.epoch_nonce);
        assert_eq!(*s0.distribution, genesis_distribution(&g));
        assert_eq!(s0.distribution.get(&key(1)), Some(&1_000));
        // Whatever happened in epoch 0, epoch 1 still uses the genesis stake and η_1 = η_0.
        let changed: StakeMap = [(key(2), 5)].into_iter().collect();
        let s1 = s0.advance(&changed).unwrap();
        assert_eq!(s1.epoch, 1);
        assert_eq!(s1.nonce, g.epoch_nonce);
        assert_eq!(*s1.distribution, genesis_distribution(&g));
        assert_eq!(*s1.next_distribution, changed);
    }

    #[test]
    fn genesis_distribution_leaves_out_zero_stakes_and_adds_duplicate_keys() {
        // Neither occurs in a validated genesis; the function is total anyway, and a zero entry
        // must not appear in SD_0 (snapshots never hold zero stakes either).
        let mut g = genesis();
        g.initial_stakeholders.push(pp_ledger::InitialStakeholder {
            id: "zero".into(),
            public_key: key(2),
            stake: 0,
            vrf_key: None,
        });
        g.initial_stakeholders.push(pp_ledger::InitialStakeholder {
            id: "again".into(),
            public_key: key(1),
            stake: u64::MAX,
            vrf_key: None,
        });
        let d = genesis_distribution(&g);
        assert_eq!(d, [(key(1), u64::MAX)].into_iter().collect());
        assert!(!d.contains_key(&key(2)));
    }

    #[test]
    fn stake_changed_in_epoch_0_is_used_from_epoch_2_not_epoch_1() {
        let s0 = EpochState::genesis(&genesis());
        let end_of_0: StakeMap = [(key(2), 7), (key(3), 0)].into_iter().collect();
        let end_of_1: StakeMap = [(key(4), 9)].into_iter().collect();
        let s1 = s0.advance(&end_of_0).unwrap();
        let s2 = s1.advance(&end_of_1).unwrap();
        let s3 = s2.advance(&StakeMap::new()).unwrap();
        assert_eq!(*s1.distribution, genesis_distribution(&genesis()));
        // Zero stakes are dropped from snapshots.
        assert_eq!(*s2.distribution, [(key(2), 7)].into_iter().collect());
        assert_eq!(*s3.distribution, end_of_1);
    }

    #[test]
    fn nonce_chain_mixes_the_accumulator_of_epoch_e_minus_2() {
        let g = genesis();
        let stakes = genesis_distribution(&g);
        let (h_a, h_b, h_c) = (
            Hash::blake2b(b"a"),
            Hash::blake2b(b"b"),
            Hash::blake2b(b"c"),
        );
        let mut s0 = EpochState::genesis(&g);
        s0.on_block(&h_a);
        s0.on_block(&h_b);
        let rho0 = crate::nonce::rho_of([&h_a, &h_b]);
        assert_eq!(s0.rho, rho0);
        let mut s1 = s0.advance(&stakes).unwrap();
        assert_eq!((s1.rho_prev, s1.rho), (rho0, RHO_EMPTY));
        s1.on_block(&h_c);
        let s2 = s1.advance(&stakes).unwrap();
        let eta2 = epoch_nonce_next(&g.epoch_nonce, &rho0);
        assert_eq!(s2.nonce, eta2);
        let s3 = s2.advance(&stakes).unwrap();
        assert_eq!(
            s3.nonce,
            epoch_nonce_next(&eta2, &crate::nonce::rho_of([&h_c]))
        );
        // An epoch without blocks contributes ρ = zero.
        let s4 = s3.advance(&stakes).unwrap();
        assert_eq!(s4.nonce, epoch_nonce_next(&s3.nonce, &RHO_EMPTY));
    }

    #[test]
    fn advance_over_many_empty_epochs_equals_stepwise_advance() {
        let g = genesis();
        let mut start = EpochState::genesis(&g);
        start.on_block(&Hash::blake2b(b"x"));
        let stakes: StakeMap = [(key(5), 50), (key(6), 60)].into_iter().collect();
        for gap in [0u64, 1, 2, 3, 1_000] {
            let mut stepwise = start.clone();
            for _ in 0..gap {
                stepwise = stepwise.advance(&stakes).unwrap();
            }
            let jumped = start.advance_to(gap, &stakes).unwrap();
            assert_eq!(jumped, stepwise, "gap {gap}");
            assert_eq!(jumped.epoch, gap);
        }
    }

    #[test]
    fn advance_refuses_to_go_back_or_jump_too_far() {
        let s = EpochState::genesis(&genesis())
            .advance_to(5, &StakeMap::new())
            .unwrap();
        assert_eq!(
            s.advance_to(4, &StakeMap::new()),
            Err(OuroborosError::EpochBackwards { from: 5, to: 4 })
        );
        assert_eq!(
            s.advance_to(u64::MAX, &StakeMap::new()),
            Err(OuroborosError::EpochGapTooLarge {
                from: 5,
                to: u64::MAX,
                max: MAX_EPOCH_GAP
            })
        );
        // The largest gap allowed is exactly MAX_EPOCH_GAP epochs.
        let far = s.advance_to(5 + MAX_EPOCH_GAP, &StakeMap::new()).unwrap();
        assert_eq!(far.epoch, 5 + MAX_EPOCH_GAP);
        assert_eq!(
            s.advance_to(5 + MAX_EPOCH_GAP + 1, &StakeMap::new()),
            Err(OuroborosError::EpochGapTooLarge {
                from: 5,
                to: 5 + MAX_EPOCH_GAP + 1,
                max: MAX_EPOCH_GAP
            })
        );
        let last = EpochState {
            epoch: u64::MAX,
            ..s
        };
        assert_eq!(
            last.advance(&StakeMap::new()),
            Err(OuroborosError::EpochOverflow(u64::MAX))
        );
    }
}
