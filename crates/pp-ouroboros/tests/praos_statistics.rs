//! Praos leadership frequencies: stakes 1000/1500/2500/5000, f = 1/2.
//!
//! Each stakeholder leads each slot independently with probability `φ_f(α_i)`; a slot is empty
//! with probability `∏(1 − φ_f(α_i)) = (1 − f)^(Σα) = 1/2`. Over `N` slots the count `L_i` of
//! each stakeholder is Binomial(N, φ_i), independent across stakeholders, so
//! `Σ_i (L_i − Nφ_i)² / (Nφ_i(1 − φ_i))` follows χ²(4); it must stay below 18.47 (99.9 %). The
//! count of empty slots is Binomial(N, p_0); its statistic `(E − Np_0)² / (Np_0(1 − p_0))`
//! follows χ²(1) and must stay below 10.83 (99.9 %). Expectations use the real-number `φ`
//! (from the threshold, which is within 2^-50 of it).
//!
//! * Bulk, always on: 100,000 slots with leader values from hashed inputs
//!   (`β_i(s) = Blake2b-256(seed_i ‖ η ‖ u64be(s))` stands in for the VRF output): exercises the
//!   threshold and the leader-value derivation at full size in well under a second.
//! * Real VRF, always on: 2,000 slots with real ECVRF proofs, each verified.
//! * Real VRF, 100,000 slots: `#[ignore]`d (minutes in debug builds); run it with
//!   `cargo test -p pp-ouroboros --release --test praos_statistics -- --ignored`.
//! * Companion: the same check rejects a linear threshold `α·f`, so it has teeth.
//!
//! Deterministic: fixed seeds and nonce.

use pp_ledger::Hash;
use pp_ouroboros::{
    below_threshold, leader_value, prove_leadership, verify_leadership, ActiveSlotCoeff, EcVrf,
    VrfSecretKey,
};

const STAKES: [u64; 4] = [1_000, 1_500, 2_500, 5_000];
const TOTAL: u128 = 10_000;
/// χ²(4) critical value at 99.9 %.
const CHI2_4DF_999: f64 = 18.47;
/// χ²(1) critical value at 99.9 %.
const CHI2_1DF_999: f64 = 10.83;

fn eta() -> Hash {
    Hash::blake2b(b"praos statistics nonce")
}

fn f_half() -> ActiveSlotCoeff {
    ActiveSlotCoeff::new(1, 2).expect("valid test input")
}

fn thresholds() -> [u64; 4] {
    STAKES.map(|s| f_half().threshold(s, TOTAL).expect("valid test input"))
}

/// The real-number φ_{1/2}(α) the test expects (test-side floating point only).
fn phi(stake: u64) -> f64 {
    1.0 - 0.5f64.powf(stake as f64 / TOTAL as f64)
}

#[derive(Debug, Default)]
struct Counts {
    slots: u64,
    led: [u64; 4],
    empty: u64,
}

impl Counts {
    fn add(&mut self, leads: [bool; 4]) {
        self.slots += 1;
        for (i, lead) in leads.iter().enumerate() {
            self.led[i] += u64::from(*lead);
        }
        self.empty += u64::from(!leads.iter().any(|l| *l));
    }

    /// (χ² of the four leader counts, χ² of the empty count) against the real-number φ.
    fn chi2(&self) -> (f64, f64) {
        let n = self.slots as f64;
        let mut leaders = 0.0;
        let mut p_empty = 1.0;
        for (i, &stake) in STAKES.iter().enumerate() {
            let p = phi(stake);
            let diff = self.led[i] as f64 - n * p;
            leaders += diff * diff / (n * p * (1.0 - p));
            p_empty *= 1.0 - p;
        }
        let diff = self.empty as f64 - n * p_empty;
        (leaders, diff * diff / (n * p_empty * (1.0 - p_empty)))
    }

    fn passes(&self) -> bool {
        let (leaders, empty) = self.chi2();
        eprintln!(
            "{} slots: led {:?} (shares {:?}), empty {} ({:.4}), χ²(4) = {leaders:.3}, χ²(1) = {empty:.3}",
            self.slots,
            self.led,
            self.led.map(|l| format!("{:.4}", l as f64 / self.slots as f64)),
            self.empty,
            self.empty as f64 / self.slots as f64
        );
        leaders < CHI2_4DF_999 && empty < CHI2_1DF_999
    }
}

/// Leader counts with hashed stand-ins for the VRF outputs.
fn hashed_counts(slots: u64, thetas: [u64; 4]) -> Counts {
    let mut counts = Counts::default();
    for slot in 0..slots {
        let leads = std::array::from_fn(|i| {
            let beta = Hash::blake2b_parts(&[&[i as u8], eta().as_bytes(), &slot.to_be_bytes()]);
            below_threshold(leader_value(beta.as_bytes()).as_bytes(), thetas[i])
        });
        counts.add(leads);
    }
    counts
}

/// Leader counts with real VRF proofs, each leadership proof verified.
fn vrf_counts(slots: u64) -> Counts {
    let thetas = thresholds();
    let keys: Vec<VrfSecretKey> = (0..4u8)
        .map(|i| VrfSecretKey::from_seed([i + 1; 32]))
        .collect();
    let mut counts = Counts::default();
    for slot in 0..slots {
        let leads = std::array::from_fn(|i| {
            match prove_leadership::<EcVrf>(&keys[i], &eta(), slot, thetas[i])
                .expect("valid test input")
            {
                Some(evidence) => {
                    verify_leadership::<EcVrf>(
                        &keys[i].public(),
                        &eta(),
                        slot,
                        thetas[i],
                        &evidence,
                    )
                    .expect("a proved leadership verifies");
                    true
                }
                None => false,
            }
        });
        counts.add(leads);
    }
    counts
}

#[test]
fn hashed_bulk_of_100k_slots_matches_phi_and_the_empty_share() {
    assert!(hashed_counts(100_000, thresholds()).passes());
}

#[test]
fn real_vrf_2000_slots_match_phi_and_the_empty_share() {
    let start = std::time::Instant::now();
    let counts = vrf_counts(2_000);
    eprintln!(
        "8,000 VRF evaluations + verifications of the leaders in {:?}",
        start.elapsed()
    );
    assert!(counts.passes());
}

#[test]
#[ignore = "100,000 slots of real VRF proofs: run with --release -- --ignored"]
fn real_vrf_100k_slots_match_phi_and_the_empty_share() {
    assert!(vrf_counts(100_000).passes());
}

#[test]
fn a_linear_threshold_fails_the_same_check() {
    // α·f instead of 1 − (1 − f)^α: Θ = 2^64 · stake / (2 · total).
    let linear = STAKES.map(|s| ((u128::from(s) << 64) / (2 * TOTAL)) as u64);
    assert!(!hashed_counts(100_000, linear).passes());
    // Even the smaller real-VRF sample size detects it.
    assert!(!hashed_counts(2_000, linear).passes());
}
