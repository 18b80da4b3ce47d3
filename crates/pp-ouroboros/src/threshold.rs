//! The Praos leadership threshold `φ_f(α) = 1 − (1 − f)^α`, in exact integer arithmetic.
//!
//! A stakeholder with relative stake `α` leads a slot when its leader value, read as a fraction
//! `p` of `2^256`, is below `φ_f(α)`. `φ_f(α)` is irrational in general, so it cannot be computed
//! exactly; this module computes a 64-bit fixed-point *lower bound* `Θ` with a proven error
//! bound, using only integer operations (no floating point anywhere), and the rule is
//! `leader ⟺ (first 8 bytes of the leader value, big-endian) < Θ`.
//!
//! Guarantees (proof in docs/leader-election.md §9.3):
//!
//! * **One-sided:** `Θ / 2^64 <= φ_f(α)`, so whoever this rule elects is a leader under the exact
//!   real-number comparison `p < φ_f(α)`.
//! * **Tight:** `φ_f(α) − Θ / 2^64 <= 2^-50` for every admissible `f` and `α`
//!   ([`THRESHOLD_ERROR_BOUND_LOG2`]; the proof gives `469 · 2^-64 < 2^-55`), so the rule differs
//!   from the exact comparison only for leader values in a band of width 2^-50 just below the
//!   threshold: at most a 2^-50 chance per slot and stakeholder.
//!
//! The method follows cardano-ledger's `checkLeaderNatValue`: `1 − (1 − f)^α = 1 − exp(−α·c)`
//! with `c = −ln(1 − f)`, `c` from a series with an error bound and `exp` from its Taylor series
//! with an error bound. Unlike Cardano's per-slot comparison the bound is folded into one
//! threshold per (f, α), computed once per epoch and stakeholder; the per-slot check is one
//! 64-bit comparison.
//!
//! Arithmetic: unsigned fixed point with 64 fractional bits (`ONE = 2^64`) in `u128`; every
//! multiplication and division rounds down, and the only upward rounding is the reciprocal at
//! the end. The exact sequence of operations is the specification (docs/leader-election.md
//! §9.3 has it as a short Python program); a second implementation must follow it to reproduce
//! the same `Θ`.

use crate::error::OuroborosError;

/// `2^64`, the fixed-point one.
const ONE: u128 = 1 << 64;

/// Every admissible `(f, α)` has `φ_f(α) − Θ/2^64 <= 2^THRESHOLD_ERROR_BOUND_LOG2`.
pub const THRESHOLD_ERROR_BOUND_LOG2: i32 = -50;

/// The largest admissible active slot coefficient, `9/10` (the error bound is proven up to it;
/// larger `f` makes the `ln` series converge too slowly and is of no practical use).
pub const MAX_ACTIVE_SLOT_COEFF: (u64, u64) = (9, 10);

/// Iteration cap of both series. Never reached for admissible inputs (the `ln` series needs at
/// most 111 terms at `f = 9/10`, the `exp` series 28); it only bounds the loops by construction.
/// Were it reached, the truncated sums of positive terms would still be lower bounds.
const MAX_TERMS: u32 = 1_000;

/// `floor(a · b / 2^64)` for fixed-point `a`, `b`; `None` on overflow of the result.
fn mul_fp(a: u128, b: u128) -> Option<u128> {
    let (a1, a0) = (a >> 64, a & (ONE - 1));
    let (b1, b0) = (b >> 64, b & (ONE - 1));
    // a·b = a1·b1·2^128 + (a1·b0 + a0·b1)·2^64 + a0·b0, so the floor of a·b / 2^64 is exact:
    let high = a1.checked_mul(b1)?.checked_mul(ONE)?;
    let mid = a1.checked_mul(b0)?.checked_add(a0.checked_mul(b1)?)?;
    let low = a0.checked_mul(b0)? >> 64;
    high.checked_add(mid)?.checked_add(low)
}

/// The active slot coefficient `f = num / den`: the probability that a slot has at least one
/// leader when one stakeholder holds all the stake. Holds the lower bound of `−ln(1 − f)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActiveSlotCoeff {
    num: u64,
    den: u64,
    /// Fixed-point lower bound of `c = −ln(1 − f)`.
    ln_lo: u128,
}

impl ActiveSlotCoeff {
    /// `f = num / den`, admissible when `0 < f <= 9/10`.
    pub fn new(num: u64, den: u64) -> Result<ActiveSlotCoeff, OuroborosError> {
        let (max_num, max_den) = MAX_ACTIVE_SLOT_COEFF;
        // `num > 0` and `num/den <= 9/10` (cross-multiplied, exact in u128); the latter also
        // refuses `den = 0`, since `num > 0`.
        let admissible = num > 0
            && u128::from(num) * u128::from(max_den) <= u128::from(max_num) * u128::from(den);
        if !admissible {
            return Err(OuroborosError::InvalidActiveSlotCoeff { num, den });
        }
        let ln_lo = neg_ln_one_minus_lo(num, den).ok_or(OuroborosError::ThresholdOverflow)?;
        Ok(ActiveSlotCoeff { num, den, ln_lo })
    }

    /// `(num, den)` as given.
    pub fn ratio(&self) -> (u64, u64) {
        (self.num, self.den)
    }

    /// The fixed-point (2^-64) lower bound of `−ln(1 − f)` used by [`Self::threshold`].
    pub fn neg_ln_one_minus_f(&self) -> u128 {
        self.ln_lo
    }

    /// `Θ` for a stakeholder with `stake` out of `total`: leader values whose first 8 bytes
    /// (big-endian) are below `Θ` lead. `Θ / 2^64 <= φ_f(stake / total)`, within 2^-50.
    /// Zero stake gives `Θ = 0` (never leads).
    pub fn threshold(&self, stake: u64, total: u128) -> Result<u64, OuroborosError> {
        if u128::from(stake) > total || total == 0 {
            return Err(OuroborosError::StakeAboveTotal { stake, total });
        }
        let theta =
            threshold_fp(self.ln_lo, stake, total).ok_or(OuroborosError::ThresholdOverflow)?;
        u64::try_from(theta).map_err(|_| OuroborosError::ThresholdOverflow)
    }
}

/// `Θ` of every stakeholder of an epoch's stake distribution (keyed like the distribution).
pub fn epoch_thresholds(
    f: &ActiveSlotCoeff,
    distribution: &pp_ledger::StakeMap,
) -> Result<std::collections::BTreeMap<pp_ledger::PublicKey, u64>, OuroborosError> {
    let total = crate::leader::total_stake(distribution)?;
    distribution
        .iter()
        .map(|(key, &stake)| Ok((*key, f.threshold(stake, total)?)))
        .collect()
}

/// Lower bound of `c = −ln(1 − f) = ln(b / (b − a)) = 2·atanh(z)`, `z = a / (2b − a)`:
/// `c = 2 Σ_{j>=0} z^(2j+1) / (2j+1)`, summed with every term rounded down until the rounded
/// power of `z` reaches zero.
fn neg_ln_one_minus_lo(a: u64, b: u64) -> Option<u128> {
    let denominator = 2 * u128::from(b) - u128::from(a);
    let z = (u128::from(a) << 64) / denominator; // a < 2b, so z < 2^64 and the shift fits
    let z2 = mul_fp(z, z)?;
    let (mut power, mut sum) = (z, 0u128);
    for j in 0..MAX_TERMS {
        if power == 0 {
            break;
        }
        sum = sum.checked_add(power / u128::from(2 * j + 1))?;
        power = mul_fp(power, z2)?;
    }
    sum.checked_mul(2)
}

/// `Θ = 2^64 − ceil(2^128 / E)` where `E <= exp(x)` is the Taylor sum of `exp(x)` with every term
/// rounded down, and `x = floor(α_fp · c_lo)` with `α_fp = floor(stake · 2^64 / total)`; saturates
/// at 0.
fn threshold_fp(ln_lo: u128, stake: u64, total: u128) -> Option<u128> {
    // stake <= total and stake < 2^64, so stake·2^64 fits and alpha <= 2^64.
    let alpha = (u128::from(stake) << 64) / total;
    let x = mul_fp(alpha, ln_lo)?;
    let (mut term, mut exp_lo) = (ONE, ONE);
    for n in 1..MAX_TERMS {
        term = mul_fp(term, x)? / u128::from(n);
        if term == 0 {
            break;
        }
        exp_lo = exp_lo.checked_add(term)?;
    }
    // ceil(2^128 / E) = floor((2^128 − 1) / E) + 1 for E >= 1: an upper bound of exp(−x).
    let exp_neg_hi = u128::MAX / exp_lo + 1;
    Some(ONE.saturating_sub(exp_neg_hi))
}

/// The per-slot rule: a leader value leads under threshold `theta` when its first 8 bytes, read
/// big-endian, are below `theta`.
pub fn below_threshold(leader_value: &[u8; 32], theta: u64) -> bool {
    let mut top = [0u8; 8];
    top.copy_from_slice(&leader_value[..8]);
    u64::from_be_bytes(top) < theta
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mul_fp_is_the_exact_floor() {
        assert_eq!(mul_fp(ONE, ONE), Some(ONE));
        assert_eq!(mul_fp(3 * ONE / 2, 3 * ONE / 2), Some(9 * ONE / 4));
        assert_eq!(mul_fp(1, 1), Some(0));
        assert_eq!(mul_fp(u128::MAX, 2), Some((1 << 65) - 1));
        assert_eq!(mul_fp(u128::MAX, u128::MAX), None);
        let (a, b) = (
            0x1234_5678_9abc_def0_1111_2222_3333u128,
            0x9_8765_4321_0fed_cba9u128,
        );
        // Compare with a 256-bit schoolbook product.
        let full = num_bigint::BigUint::from(a) * num_bigint::BigUint::from(b);
        let expect: u128 = (full >> 64u32).try_into().expect("valid test input");
        assert_eq!(mul_fp(a, b), Some(expect));
    }

    #[test]
    fn inadmissible_coefficients_are_refused() {
        for (num, den) in [(0, 1), (1, 0), (10, 10), (91, 100), (u64::MAX, 1)] {
            assert_eq!(
                ActiveSlotCoeff::new(num, den),
                Err(OuroborosError::InvalidActiveSlotCoeff { num, den })
            );
        }
        assert!(ActiveSlotCoeff::new(9, 10).is_ok());
        let half = ActiveSlotCoeff::new(1, 2).expect("valid test input");
        assert_eq!(half.ratio(), (1, 2));
        // ln 2 · 2^64 = 12786308645202655659.6…: a lower bound within the proven 400 ulps.
        let ln2 = 12_786_308_645_202_655_659u128;
        let c = half.neg_ln_one_minus_f();
        assert!(c <= ln2 && ln2 - c < 400, "{c}");
        assert!(ActiveSlotCoeff::new(1, u64::MAX).is_ok());
    }

    #[test]
    fn epoch_thresholds_use_the_distribution_total() {
        use pp_ledger::PublicKey;
        let f = ActiveSlotCoeff::new(1, 2).expect("valid test input");
        let d: pp_ledger::StakeMap = [(PublicKey([1; 32]), 1_000), (PublicKey([2; 32]), 3_000)]
            .into_iter()
            .collect();
        let t = epoch_thresholds(&f, &d).expect("valid test input");
        assert_eq!(
            t[&PublicKey([1; 32])],
            f.threshold(1_000, 4_000).expect("valid")
        );
        assert_eq!(
            t[&PublicKey([2; 32])],
            f.threshold(3_000, 4_000).expect("valid")
        );
        assert_eq!(
            epoch_thresholds(&f, &Default::default()),
            Ok(Default::default())
        );
    }

    #[test]
    fn zero_stake_never_leads_and_full_stake_is_just_below_f() {
        let f = ActiveSlotCoeff::new(1, 2).expect("valid test input");
        assert_eq!(f.threshold(0, 10), Ok(0));
        let full = f.threshold(10, 10).expect("valid test input");
        assert!(
            full <= 1 << 63 && (1u64 << 63) - full < 1 << 14,
            "{full:#x}"
        );
        assert_eq!(
            f.threshold(11, 10),
            Err(OuroborosError::StakeAboveTotal {
                stake: 11,
                total: 10
            })
        );
        assert!(!below_threshold(&[0; 32], 0));
        assert!(below_threshold(&[0; 32], 1));
        let mut value = [0xff; 32];
        value[..8].copy_from_slice(&(full - 1).to_be_bytes());
        assert!(below_threshold(&value, full));
        value[..8].copy_from_slice(&full.to_be_bytes());
        assert!(!below_threshold(&value, full));
    }
}
