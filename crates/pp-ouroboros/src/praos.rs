//! Praos leader election (pure foundations, not yet wired into headers or the chain).
//!
//! In slot `s` of epoch `e` a stakeholder evaluates its VRF on `η_e ‖ u64be(s)` (40 bytes,
//! [`vrf_input`]). From the output `β` two independent values are derived, as in Cardano's range
//! extension: the leader value `ℓ = Blake2b-256("L" ‖ β)` ([`leader_value`]) and the nonce
//! contribution `n = Blake2b-256("N" ‖ β)` ([`nonce_contribution`]). The stakeholder leads when
//! `ℓ` is below its threshold `Θ` (see [`crate::threshold`]), and a block proves it by carrying
//! the VRF proof, which anyone checks with the stakeholder's VRF public key.
//!
//! Privacy: [`prove_leadership`] needs the secret key; [`verify_leadership`] needs a proof made
//! with it. Nothing here answers "does key K lead slot s" from a public key alone, so the
//! schedule is private until each leader reveals its own slot.
//!
//! The next epoch's nonce comes from the nonce contributions of the blocks in the first two
//! thirds of the epoch ([`praos_next_nonce`]) and never from block hashes, which a producer can
//! vary freely (header nonce, transaction choice) to grind the next epoch's randomness.
//!
//! ```
//! use pp_ledger::Hash;
//! use pp_ouroboros::{prove_leadership, verify_leadership, ActiveSlotCoeff, EcVrf, VrfSecretKey};
//!
//! let f = ActiveSlotCoeff::new(1, 2)?; // active slot coefficient 1/2
//! let theta = f.threshold(2_500, 10_000)?; // relative stake 1/4: once per epoch
//! let secret = VrfSecretKey::from_seed([7; 32]);
//! let eta = Hash::blake2b(b"epoch nonce");
//! let mut led = 0;
//! for slot in 0..100 {
//!     if let Some(evidence) = prove_leadership::<EcVrf>(&secret, &eta, slot, theta)? {
//!         // Whoever holds the public key checks the evidence a block carries.
//!         verify_leadership::<EcVrf>(&secret.public(), &eta, slot, theta, &evidence)?;
//!         led += 1;
//!     }
//! }
//! assert!(led > 0 && led < 50); // φ(1/4) ≈ 0.159
//! # Ok::<(), pp_ouroboros::OuroborosError>(())
//! ```

use std::cmp::Ordering;

use pp_ledger::Hash;

use crate::error::OuroborosError;
use crate::threshold::below_threshold;
use crate::vrf::Vrf;

/// Length of the VRF input: `η_e` (32) ‖ `u64be(slot)` (8).
pub const VRF_INPUT_LEN: usize = 40;
/// Prefix of the leader value derivation.
pub const LEADER_VALUE_TAG: &[u8] = b"L";
/// Prefix of the nonce contribution derivation.
pub const NONCE_VALUE_TAG: &[u8] = b"N";
/// Domain-separation tag of the Praos nonce evolution (27 ASCII bytes).
pub const PRAOS_NONCE_TAG: &[u8] = b"pp-ouroboros/praos-nonce/v1";

/// The VRF input of slot `slot` in an epoch with nonce `eta`: `η ‖ u64be(slot)`.
pub fn vrf_input(eta: &Hash, slot: u64) -> [u8; VRF_INPUT_LEN] {
    let mut input = [0u8; VRF_INPUT_LEN];
    input[..32].copy_from_slice(eta.as_bytes());
    input[32..].copy_from_slice(&slot.to_be_bytes());
    input
}

/// The leader value of a VRF output: `Blake2b-256("L" ‖ β)`. Compared with the threshold, and
/// the tie-break between blocks of the same slot.
pub fn leader_value(output: &[u8]) -> Hash {
    Hash::blake2b_parts(&[LEADER_VALUE_TAG, output])
}

/// The nonce contribution of a VRF output: `Blake2b-256("N" ‖ β)`.
pub fn nonce_contribution(output: &[u8]) -> Hash {
    Hash::blake2b_parts(&[NONCE_VALUE_TAG, output])
}

/// The evidence a slot leader puts in its block: the VRF output and its proof.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaderProof<V: Vrf> {
    /// `β`, from which the leader value and the nonce contribution derive.
    pub output: V::Output,
    /// The proof of `β` for the slot's VRF input.
    pub proof: V::Proof,
}

/// Whether the holder of `secret` leads slot `slot` of the epoch with nonce `eta`, given its
/// threshold `theta` ([`crate::ActiveSlotCoeff::threshold`] of its stake). `Some(evidence)` when
/// it leads, `None` when not. Only the secret key can answer this.
pub fn prove_leadership<V: Vrf>(
    secret: &V::SecretKey,
    eta: &Hash,
    slot: u64,
    theta: u64,
) -> Result<Option<LeaderProof<V>>, OuroborosError> {
    let (output, proof) = V::prove(secret, &vrf_input(eta, slot))?;
    let leads = below_threshold(leader_value(output.as_ref()).as_bytes(), theta);
    Ok(leads.then_some(LeaderProof { output, proof }))
}

/// Checks a block's leadership evidence: the proof must verify under `public` for the slot's
/// VRF input, carry exactly the output it proves, and that output's leader value must be below
/// `theta`. Returns the verified output (for the nonce and the tie-break).
pub fn verify_leadership<V: Vrf>(
    public: &V::PublicKey,
    eta: &Hash,
    slot: u64,
    theta: u64,
    evidence: &LeaderProof<V>,
) -> Result<V::Output, OuroborosError> {
    let output = V::verify(public, &vrf_input(eta, slot), &evidence.proof)
        .ok_or(OuroborosError::InvalidVrfProof { slot })?;
    if output != evidence.output {
        return Err(OuroborosError::InvalidVrfProof { slot });
    }
    if !below_threshold(leader_value(output.as_ref()).as_bytes(), theta) {
        return Err(OuroborosError::NotSlotLeader { slot });
    }
    Ok(output)
}

/// Chain-selection tie-break between two candidate blocks for the same slot at the tip (equal
/// chain length): the block whose VRF output has the **lower leader value** is preferred.
/// `Ordering::Less` means `a` is preferred, `Greater` that `b` is; `Equal` only for equal leader
/// values (the same output), where the caller keeps the block it already has.
///
/// Every node ranks the two blocks the same way whichever arrived first, and a producer cannot
/// improve its rank without a different VRF output, which uniqueness forbids.
pub fn tie_break(a_output: &[u8], b_output: &[u8]) -> Ordering {
    leader_value(a_output).cmp(&leader_value(b_output))
}

/// The number of leading slots of an epoch whose blocks feed the next nonce: `floor(2E/3)` for
/// `E` slots per epoch (40 of 60). Blocks later in the epoch do not count, so the nonce is
/// settled a third of an epoch before it is used.
pub fn nonce_window(slots_per_epoch: u64) -> u64 {
    // 2E/3 <= E fits u64; u128 avoids the overflow of 2E.
    (2 * u128::from(slots_per_epoch) / 3) as u64
}

/// `η_{e+1}` from `η_e` and the blocks of epoch `e`, given as `(slot, β)` in chain order:
///
/// ```text
/// ρ := 32 zero bytes
/// for each block (s, β) with s − e·E < floor(2E/3):  ρ := Blake2b-256(ρ ‖ Blake2b-256("N" ‖ β))
/// η_{e+1} = Blake2b-256("pp-ouroboros/praos-nonce/v1" ‖ η_e ‖ ρ)
/// ```
///
/// Only VRF outputs enter, never block hashes. Every slot must lie in epoch `e`, and slots must
/// strictly increase (chain order); otherwise the input is refused.
pub fn praos_next_nonce<O: AsRef<[u8]>>(
    eta: &Hash,
    epoch: u64,
    slots_per_epoch: u64,
    blocks: impl IntoIterator<Item = (u64, O)>,
) -> Result<Hash, OuroborosError> {
    if slots_per_epoch == 0 {
        return Err(OuroborosError::ZeroSlotsPerEpoch(0));
    }
    let window = nonce_window(slots_per_epoch);
    let mut rho = Hash::ZERO;
    let mut previous: Option<u64> = None;
    for (slot, output) in blocks {
        let slot_epoch = slot / slots_per_epoch;
        if slot_epoch != epoch {
            return Err(OuroborosError::SlotNotInEpoch {
                slot,
                slot_epoch,
                state_epoch: epoch,
            });
        }
        if let Some(prev) = previous.filter(|&prev| prev >= slot) {
            return Err(OuroborosError::SlotsNotIncreasing {
                previous: prev,
                slot,
            });
        }
        previous = Some(slot);
        if slot % slots_per_epoch < window {
            let n = nonce_contribution(output.as_ref());
            rho = Hash::blake2b_parts(&[rho.as_bytes(), n.as_bytes()]);
        }
    }
    Ok(Hash::blake2b_parts(&[
        PRAOS_NONCE_TAG,
        eta.as_bytes(),
        rho.as_bytes(),
    ]))
}

/// Praos' stability window for rollback bound `k` and active slot coefficient `f = num/den`:
/// `ceil(3k/f) = ceil(3k·den/num)` slots, the span in which the chain grows by at least `k`
/// blocks except with negligible probability, so a block that old is final. Saturates at
/// `u64::MAX` (and for `num = 0`, which no valid genesis has).
pub fn stability_window(k: u64, f: pp_ledger::Ratio) -> u64 {
    if f.num == 0 {
        return u64::MAX;
    }
    let n = 3 * u128::from(k) * u128::from(f.den);
    let w = n.div_ceil(u128::from(f.num));
    u64::try_from(w).unwrap_or(u64::MAX)
}

/// The nonce window's settled tail, when it is shorter than Praos asks: `Some((tail,
/// stability))` if the `E − floor(2E/3)` slots after the nonce window ([`nonce_window`]) are
/// fewer than the [`stability_window`] `ceil(3k/f)` of a praos genesis; `None` when the tail is
/// long enough or the genesis is classic. docs/leader-election.md §10.4 says what a network with
/// a short tail risks.
pub fn short_nonce_tail(genesis: &pp_ledger::Genesis) -> Option<(u64, u64)> {
    if genesis.leader_mode != pp_ledger::LeaderMode::Praos {
        return None;
    }
    let f = genesis.active_slot_coeff?;
    let tail = genesis.slots_per_epoch - nonce_window(genesis.slots_per_epoch);
    let stability = stability_window(genesis.k, f);
    (tail < stability).then_some((tail, stability))
}

#[cfg(test)]
mod tests {
    use super::*;
    use pp_ledger::{Genesis, PublicKey, Ratio};

    #[test]
    fn stability_window_is_3k_over_f_rounded_up() {
        let half = Ratio { num: 1, den: 2 };
        assert_eq!(stability_window(100, half), 600);
        assert_eq!(stability_window(2160, Ratio { num: 1, den: 20 }), 129_600);
        assert_eq!(stability_window(1, Ratio { num: 2, den: 3 }), 5); // 4.5 -> 5
        assert_eq!(stability_window(0, half), 0);
        assert_eq!(stability_window(u64::MAX, half), u64::MAX);
        assert_eq!(stability_window(1, Ratio { num: 0, den: 1 }), u64::MAX);
    }

    #[test]
    fn a_short_tail_is_named_and_a_long_one_or_classic_is_not() {
        let classic = Genesis::devnet("n", PublicKey([4; 32]), 0);
        assert_eq!(short_nonce_tail(&classic), None);
        let half = Ratio { num: 1, den: 2 };
        // E = 60, k = 100, f = 1/2: a tail of 20 slots against 600.
        let mut g = classic.into_praos(half, &[PublicKey([9; 32])]);
        assert_eq!(short_nonce_tail(&g), Some((20, 600)));
        // E >= 9k/f: E = 1800 leaves exactly 600.
        g.slots_per_epoch = 1800;
        assert_eq!(short_nonce_tail(&g), None);
        // E = 1797: floor(2E/3) = 1198 leaves 599.
        g.slots_per_epoch = 1797;
        assert_eq!(short_nonce_tail(&g), Some((599, 600)));
        g.k = 99;
        assert_eq!(short_nonce_tail(&g), None);
    }
}
