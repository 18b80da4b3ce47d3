//! # pp-ouroboros
//!
//! The consensus rules of pp-ledger, after Ouroboros (classic): a [`SlotClock`] that cuts time
//! into slots and epochs, per-epoch stake snapshots (the distribution of epoch e is the ledger's
//! stake at the end of epoch e − 2), epoch nonces evolved from the block hashes of settled epochs,
//! and follow-the-satoshi leader election: exactly one public leader per slot, chosen with
//! probability proportional to stake. [`Ouroboros`] implements [`pp_ledger::ConsensusRules`]
//! for the chain. The exact rules, with test vectors, are in `docs/leader-election.md`.
//!
//! Praos foundations, not yet used by the chain (docs/leader-election.md §9): a [`Vrf`] trait
//! with RFC 9381 ECVRF ([`EcVrf`]), the exact leadership threshold `1 − (1 − f)^α`
//! ([`ActiveSlotCoeff`]), private leadership proofs ([`prove_leadership`],
//! [`verify_leadership`]), the VRF-only epoch nonce ([`praos_next_nonce`]) and the tie-break
//! between blocks of one slot ([`tie_break`]).
//!
//! Pure and deterministic: no I/O, no clock reads (time is passed in as unix milliseconds), no
//! async, no floating point.
//!
//! ```
//! use pp_ledger::{ConsensusRules, Genesis, KeyPair};
//! use pp_ouroboros::{leader, Ouroboros, SlotClock};
//!
//! let key = KeyPair::from_seed([1u8; 32]).public();
//! let genesis = Genesis::devnet("node0", key, 1_700_000_000_000);
//!
//! // 1 s slots, 60 slots per epoch: 61.5 s after genesis is slot 61, epoch 1.
//! let clock = SlotClock::from_genesis(&genesis)?;
//! let now = genesis.genesis_time + 61_500;
//! let slot = clock.slot_at(now).expect("after genesis");
//! assert_eq!((slot, clock.epoch_of_slot(slot)), (61, 1));
//! assert_eq!(clock.ms_until_next_slot(now), 500);
//!
//! // The chain's view: advance the genesis state to the slot's epoch and ask who leads.
//! let rules = Ouroboros::new(&genesis)?;
//! let state = rules.state_for_slot(&rules.genesis_state(&genesis), slot, &Default::default());
//! assert_eq!(rules.slot_leader(&state, slot), Some(key)); // the only stakeholder leads
//! // The same answer from the pure helper.
//! assert_eq!(leader(&state.nonce, &state.distribution, slot)?, key);
//! # Ok::<(), pp_ouroboros::OuroborosError>(())
//! ```

pub mod clock;
pub mod epoch;
pub mod error;
pub mod leader;
pub mod nonce;
pub mod praos;
pub mod rules;
pub mod threshold;
pub mod vrf;

pub use clock::SlotClock;
pub use epoch::{genesis_distribution, genesis_vrf_keys, EpochState, MAX_EPOCH_GAP};
pub use error::OuroborosError;
pub use leader::{leader, leader_draw, reduce_mod_be256, total_stake, LeaderTable, LEADER_TAG};
pub use nonce::{epoch_nonce_next, fold_block_hash, rho_of, NONCE_TAG, RHO_EMPTY};
pub use praos::{
    leader_value, nonce_contribution, nonce_window, praos_next_nonce, prove_leadership,
    short_nonce_tail, stability_window, tie_break, verify_leadership, vrf_input, LeaderProof,
    PRAOS_NONCE_TAG,
};
pub use rules::Ouroboros;
pub use threshold::{
    below_threshold, epoch_thresholds, ActiveSlotCoeff, THRESHOLD_ERROR_BOUND_LOG2,
};
pub use vrf::{EcVrf, Vrf, VrfOutput, VrfProof, VrfPublicKey, VrfSecretKey};
