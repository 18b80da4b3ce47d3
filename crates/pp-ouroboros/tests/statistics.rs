//! The statistical bar: over 100,000 slots, leadership frequency follows stake.
//!
//! Stakes 1000/1500/2500/5000 (shares 10/15/25/50 %), keys from a seeded ChaCha RNG, a fixed
//! nonce. Each stakeholder's share of slots must be within 1 percentage point of its stake share,
//! and Pearson's chi-squared statistic against the stake-proportional expectation must stay below
//! 16.27, the 99.9 % critical value for 3 degrees of freedom. Deterministic: same seed, same run.

use std::collections::BTreeMap;

use pp_ledger::{Hash, KeyPair, PublicKey, StakeMap};
use pp_ouroboros::leader;
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;

const SLOTS: u64 = 100_000;
const STAKES: [u64; 4] = [1_000, 1_500, 2_500, 5_000];
/// χ²(3) critical value at the 99.9 % level.
const CHI2_CRITICAL_3DF_999: f64 = 16.27;

fn seeded_distribution(seed: u64) -> StakeMap {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    STAKES
        .iter()
        .map(|&stake| {
            let mut secret = [0u8; 32];
            rng.fill_bytes(&mut secret);
            (KeyPair::from_seed(secret).public(), stake)
        })
        .collect()
}

fn count_leaders(nonce: &Hash, d: &StakeMap) -> BTreeMap<PublicKey, u64> {
    let mut counts: BTreeMap<PublicKey, u64> = d.keys().map(|k| (*k, 0)).collect();
    for slot in 0..SLOTS {
        let l = leader(nonce, d, slot).expect("distribution has stake");
        *counts.get_mut(&l).expect("leader is a stakeholder") += 1;
    }
    counts
}

/// (largest |share − stake share| in percentage points, chi-squared statistic).
fn deviation_and_chi2(d: &StakeMap, counts: &BTreeMap<PublicKey, u64>) -> (f64, f64) {
    let total: u64 = d.values().sum();
    let mut max_dev = 0.0f64;
    let mut chi2 = 0.0f64;
    for (k, &stake) in d {
        let observed = counts[k] as f64;
        let p = stake as f64 / total as f64;
        let expected = p * SLOTS as f64;
        max_dev = max_dev.max((observed / SLOTS as f64 - p).abs() * 100.0);
        chi2 += (observed - expected).powi(2) / expected;
    }
    (max_dev, chi2)
}

#[test]
fn leadership_share_matches_stake_share_over_100k_slots() {
    let d = seeded_distribution(0x5eed);
    let nonce = Hash::blake2b(b"pp-ouroboros statistical test nonce");
    let counts = count_leaders(&nonce, &d);
    assert_eq!(counts.values().sum::<u64>(), SLOTS);
    let (max_dev, chi2) = deviation_and_chi2(&d, &counts);
    for (k, &stake) in &d {
        eprintln!("stake {stake:>5}: led {:>6} slots", counts[k]);
    }
    eprintln!("max deviation {max_dev:.3} pp, chi-squared {chi2:.3}");
    assert!(
        max_dev < 1.0,
        "a share deviates {max_dev:.3} pp from its stake share"
    );
    assert!(
        chi2 < CHI2_CRITICAL_3DF_999,
        "chi-squared {chi2:.3} >= {CHI2_CRITICAL_3DF_999}"
    );
}

#[test]
fn statistical_check_detects_a_skewed_schedule() {
    // The same measure must fail for a schedule that ignores stake, or the test above proves
    // nothing: count as if every stakeholder had equal stake, and judge against real stake.
    let d = seeded_distribution(0x5eed);
    let flat: StakeMap = d.keys().map(|k| (*k, 1)).collect();
    let nonce = Hash::blake2b(b"pp-ouroboros statistical test nonce");
    let counts = count_leaders(&nonce, &flat);
    let (max_dev, chi2) = deviation_and_chi2(&d, &counts);
    assert!(max_dev > 1.0 && chi2 > CHI2_CRITICAL_3DF_999);
}
