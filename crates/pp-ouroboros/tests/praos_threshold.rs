//! The Praos threshold `Θ` against an independent high-precision computation of
//! `φ_f(α) = 1 − (1 − f)^α`, and the vectors of docs/vectors/praos_threshold.tsv.
//!
//! The reference uses different series than the code (Mercator `−ln(1 − f) = Σ f^k / k` instead
//! of `2·atanh`, the alternating series of `exp(−y)` instead of a reciprocal of `exp(y)`), in
//! 384-bit fixed point with big integers, with every term rounded down and a tail bound added
//! for the upper end: the true `φ` lies in `[lo, hi]` with `hi − lo < 2^-300`. The test asserts
//! `Θ / 2^64 <= φ` (one-sided: never elects beyond the exact rule) and `φ − Θ / 2^64 <= 2^-50`
//! (the proven bound).
//!
//! Regenerate the vector file after a deliberate rule change with
//! `PP_REGENERATE_VECTORS=1 cargo test -p pp-ouroboros --test praos_threshold`.

use num_bigint::{BigInt, BigUint};
use num_rational::BigRational;
use num_traits::{One, Zero};
use pp_ouroboros::{ActiveSlotCoeff, THRESHOLD_ERROR_BOUND_LOG2};
use proptest::prelude::*;

const P: u32 = 384;
const VECTORS: &str = "../../docs/vectors/praos_threshold.tsv";

fn one() -> BigInt {
    BigInt::one() << P
}

/// floor(r · 2^P) for a non-negative rational.
fn fixed(r: &BigRational) -> BigInt {
    (r.numer() << P) / r.denom()
}

/// Bounds [lo, hi] of 2^P · φ_f(α), with f = num/den and α = stake/total.
fn phi_reference(num: u64, den: u64, stake: u64, total: u128) -> (BigInt, BigInt) {
    let f = BigRational::new(BigInt::from(num), BigInt::from(den));
    let alpha = BigRational::new(BigInt::from(stake), BigInt::from(total));
    // L = −ln(1 − f) = Σ_{k>=1} f^k / k, each term floored; the tail after K terms is at most
    // f^(K+1) / (1 − f) <= (ONE·f^(K+1)) / (1 − f), and each floor loses < 1 ulp per term.
    let f_fp = fixed(&f);
    let mut power = f_fp.clone();
    let mut l_lo = BigInt::zero();
    let mut k = 1u32;
    while !power.is_zero() {
        l_lo += &power / k;
        power = (&power * &f_fp) >> P;
        k += 1;
    }
    // Rounding: power_k is below f^k by < k ulps (induction), the division floor loses < 1 ulp:
    // < 2k ulps per term, < 2K^2 in all; the tail once power reached 0 is < (K+1) ulps / (1 − f).
    let kk = BigInt::from(k);
    let one_minus_f = BigRational::one() - &f;
    let tail = (BigRational::from_integer(kk.clone() + 1) / one_minus_f)
        .ceil()
        .to_integer();
    let l_hi = &l_lo + BigInt::from(2u8) * &kk * &kk + tail + 1;
    // y = α·L; exp(−y) by its alternating series at y_lo and y_hi (exp(−y) is decreasing).
    let alpha_fp = fixed(&alpha);
    let y_lo = (&alpha_fp * &l_lo) >> P;
    let y_hi = (((&alpha_fp + 1) * &l_hi) >> P) + 1;
    let (e_lo, _) = exp_neg_bounds(&y_hi);
    let (_, e_hi) = exp_neg_bounds(&y_lo);
    (one() - e_hi, one() - e_lo)
}

/// Bounds of 2^P · exp(−y/2^P) for 0 <= y <= 3·2^P: the terms y^n/n! are computed rounded down
/// (< 2n ulps low each), and summed with alternating signs up to the first zero term; the
/// alternating remainder is at most the first omitted term (< 2n ulps after it vanished).
fn exp_neg_bounds(y: &BigInt) -> (BigInt, BigInt) {
    let mut term = one();
    let mut sum = one();
    let mut n = 1u32;
    loop {
        term = ((&term * y) >> P) / n;
        if term.is_zero() {
            break;
        }
        if n % 2 == 1 {
            sum -= &term;
        } else {
            sum += &term;
        }
        n += 1;
    }
    let slack = BigInt::from(4u32 * n * n + 4);
    (&sum - &slack, &sum + &slack)
}

/// Θ / 2^64 scaled to 2^P.
fn theta_fp(theta: u64) -> BigInt {
    BigInt::from(theta) << (P - 64)
}

fn check(num: u64, den: u64, stake: u64, total: u128) -> (u64, BigInt) {
    let f = ActiveSlotCoeff::new(num, den).expect("valid test input");
    let theta = f.threshold(stake, total).expect("valid test input");
    let (lo, hi) = phi_reference(num, den, stake, total);
    assert!(
        &hi - &lo < BigInt::one() << (P - 300),
        "reference too loose"
    );
    let t = theta_fp(theta);
    assert!(
        t <= hi,
        "Θ above φ for f = {num}/{den}, α = {stake}/{total}"
    );
    let bound = BigInt::one() << (P as i32 + THRESHOLD_ERROR_BOUND_LOG2) as u32;
    assert!(
        &hi - &t <= bound,
        "Θ more than 2^{THRESHOLD_ERROR_BOUND_LOG2} below φ for f = {num}/{den}, α = {stake}/{total}"
    );
    (theta, hi - t)
}

/// φ as a decimal with 24 digits after the point (rounded down from the reference).
fn decimal(x: &BigInt) -> String {
    let scaled: BigUint = ((x * BigInt::from(10u8).pow(24)) >> P)
        .to_biguint()
        .expect("valid test input");
    let digits = format!("{scaled:0>25}");
    format!(
        "{}.{}",
        &digits[..digits.len() - 24],
        &digits[digits.len() - 24..]
    )
}

const PAIRS: [(u64, u64, u64, u128); 22] = [
    (1, 2, 0, 10_000),
    (1, 2, 1, 10_000),
    (1, 2, 1_000, 10_000),
    (1, 2, 1_500, 10_000),
    (1, 2, 2_500, 10_000),
    (1, 2, 5_000, 10_000),
    (1, 2, 1, 3),
    (1, 2, 10_000, 10_000),
    (1, 20, 1, 10_000),
    (1, 20, 1_000, 10_000),
    (1, 20, 5_000, 10_000),
    (1, 20, 10_000, 10_000),
    (1, 10, 2_500, 10_000),
    (1, 3, 1, 3),
    (9, 10, 1, 1_000_000),
    (9, 10, 1, 2),
    (9, 10, 1, 1),
    (1, 1_000, 1, 2),
    (1, 2, 1, u64::MAX as u128),
    (1, 2, u64::MAX, u64::MAX as u128),
    (1, 2, 1, u128::MAX),
    (3, 7, 123_456_789, 987_654_321),
];

fn vector_lines() -> String {
    let mut out = String::from(
        "# Praos threshold vectors (docs/leader-election.md §9.3), generated by\n\
         # crates/pp-ouroboros/tests/praos_threshold.rs. Columns: f_num f_den stake total\n\
         # theta (Θ, 16 hex digits: leaders have first 8 bytes of the leader value < Θ)\n\
         # phi (φ_f(stake/total) = 1 − (1 − f)^α, 24 decimals, rounded down).\n",
    );
    for (num, den, stake, total) in PAIRS {
        let (theta, _) = check(num, den, stake, total);
        let (_, hi) = phi_reference(num, den, stake, total);
        out.push_str(&format!(
            "{num}\t{den}\t{stake}\t{total}\t{theta:016x}\t{}\n",
            decimal(&hi)
        ));
    }
    out
}

#[test]
fn documented_threshold_vectors_match_the_code_and_the_reference() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(VECTORS);
    let lines = vector_lines();
    if std::env::var_os("PP_REGENERATE_VECTORS").is_some() {
        std::fs::write(&path, &lines).expect("valid test input");
    }
    let stored = std::fs::read_to_string(&path).expect("docs/vectors/praos_threshold.tsv");
    assert_eq!(stored, lines, "docs/vectors/praos_threshold.tsv is stale");
}

#[test]
fn largest_error_over_the_vector_pairs_is_far_below_the_bound() {
    let mut worst = BigInt::zero();
    for (num, den, stake, total) in PAIRS {
        let (_, err) = check(num, den, stake, total);
        worst = worst.max(err);
    }
    // Report in bits below one: log2 of the worst error.
    let bits = worst.bits() as i64 - P as i64;
    eprintln!("largest φ − Θ/2^64 over the vectors < 2^{bits}");
    assert!(bits <= THRESHOLD_ERROR_BOUND_LOG2 as i64);
}

#[test]
fn the_published_error_bound_is_the_documented_one() {
    // docs/leader-election.md §9.3 publishes 2^-50; the checks above use the constant.
    let doc = include_str!("../../../docs/leader-election.md");
    assert_eq!(THRESHOLD_ERROR_BOUND_LOG2, -50);
    assert!(doc.contains("The published contract is 2^-50"));
}

#[test]
fn threshold_grows_with_stake_and_with_f() {
    let half = ActiveSlotCoeff::new(1, 2).expect("valid test input");
    let twentieth = ActiveSlotCoeff::new(1, 20).expect("valid test input");
    let mut previous = 0;
    for stake in (0..=10_000).step_by(250) {
        let theta = half.threshold(stake, 10_000).expect("valid test input");
        assert!(theta >= previous);
        assert!(
            twentieth
                .threshold(stake, 10_000)
                .expect("valid test input")
                <= theta
        );
        previous = theta;
    }
    // Praos' independent aggregation: 1 − φ(α1 + α2) = (1 − φ(α1))(1 − φ(α2)); in fixed point
    // the two sides agree to a few times the error bound.
    let one = 1u128 << 64;
    let a = one - u128::from(half.threshold(1_000, 10_000).expect("valid test input"));
    let b = one - u128::from(half.threshold(1_500, 10_000).expect("valid test input"));
    let ab = one - u128::from(half.threshold(2_500, 10_000).expect("valid test input"));
    assert!(((a * b) >> 64).abs_diff(ab) < 1 << 16);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn threshold_is_a_lower_bound_within_the_proven_error(
        den in 1u64..=1_000_000,
        num_frac in 1u64..=900,
        stake in 0u64..=u64::MAX,
        extra in 0u128..=u128::from(u64::MAX),
    ) {
        let num = (den * num_frac / 1_000).max(1);
        prop_assume!(num * 10 <= den * 9);
        check(num, den, stake, u128::from(stake) + extra.max(1));
    }
}
