//! The ZIP-215 signature rule (docs/consensus.md §4) on its edge cases: small-order keys and
//! `R`, non-canonical point encodings, non-canonical `s`, undecodable points. Single and batch
//! verification must agree on each of them and on random valid and invalid inputs; the edge
//! cases are those `ed25519-zebra` publishes in its own tests (`tests/small_order.rs`,
//! `tests/util/mod.rs`), checked here under pp-ledger's signing messages.

use curve25519_dalek::edwards::CompressedEdwardsY;
use curve25519_dalek::scalar::Scalar;
use pp_ledger::crypto::{signing_message, Domain};
use pp_ledger::{
    verify_batch, BatchFailure, Hash, KeyPair, PublicKey, SigCheck, Signature, SignatureError,
};
use proptest::prelude::*;
use sha2::{Digest, Sha512};

/// The 8 canonical encodings of the points of order dividing 8, then the 6 non-canonical
/// encodings of such points (docs/consensus.md §4.1).
const SMALL_ORDER: [&str; 14] = [
    "0100000000000000000000000000000000000000000000000000000000000000",
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
    "0000000000000000000000000000000000000000000000000000000000000080",
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85",
    "0000000000000000000000000000000000000000000000000000000000000000",
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
    "0100000000000000000000000000000000000000000000000000000000000080",
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
    "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
    "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
];

/// ℓ, the order of the prime-order subgroup, little-endian: the smallest non-canonical `s`.
const ELL: &str = "edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010";
/// Not the y-coordinate of any curve point (y = 2): an undecodable key or `R`.
const NOT_A_POINT: &str = "0200000000000000000000000000000000000000000000000000000000000000";
/// The vector of §4.2: alice's signature over the §10.2 transaction's signing message with `R`
/// the non-canonical encoding `01…80` of the identity and `s = k·a mod ℓ`.
const ODD_R_SIGNATURE: &str = "0100000000000000000000000000000000000000000000000000000000000080\
                               244fbf194224cc3c03f155efa92c98a121f30178d890e86ca12c6cf28e18280b";
/// docs/consensus.md §10's genesis hash and transaction id (the message of §4.2).
const VECTOR_GENESIS_HASH: &str =
    "b2dda3e7a37922206901efbae3861413e253fe99ac8d61e4362e005ba9a1dbd9";
const VECTOR_TX_ID: &str = "cf551e4fe64a2a11a9818844c2ac9007aed285f2248857f4a5de13b1e1a6f6c9";

fn b32(s: &str) -> [u8; 32] {
    hex::decode(s)
        .ok()
        .and_then(|v| v.try_into().ok())
        .expect("32 bytes of hex")
}

fn sig(r: [u8; 32], s: [u8; 32]) -> Signature {
    let mut b = [0u8; 64];
    b[..32].copy_from_slice(&r);
    b[32..].copy_from_slice(&s);
    Signature(b)
}

fn tx_message() -> Vec<u8> {
    signing_message(
        Domain::Transaction,
        &Hash::from_hex(VECTOR_GENESIS_HASH).expect("hash"),
        &Hash::from_hex(VECTOR_TX_ID).expect("hash"),
    )
}

fn check(key: [u8; 32], sig: Signature, msg: &[u8]) -> SigCheck {
    SigCheck {
        key: PublicKey(key),
        msg: msg.to_vec(),
        sig,
    }
}

/// Single verification of each, the batch of each alone, and the whole batch all agree with
/// `expected` (index of the first bad check).
fn assert_agree(checks: &[SigCheck]) -> Result<(), BatchFailure> {
    let singles: Result<(), BatchFailure> = checks.iter().enumerate().try_for_each(|(index, c)| {
        c.verify_single()
            .map_err(|error| BatchFailure { index, error })
    });
    for c in checks {
        assert_eq!(
            verify_batch(std::slice::from_ref(c)).map_err(|f| f.error),
            c.verify_single()
        );
    }
    assert_eq!(verify_batch(checks), singles);
    singles
}

#[test]
fn the_small_order_encodings_are_what_the_document_says() {
    for (i, e) in SMALL_ORDER.iter().enumerate() {
        let bytes = b32(e);
        let p = CompressedEdwardsY(bytes).decompress().expect("decodes");
        assert!(p.is_small_order(), "{e} is of small order");
        let canonical = p.compress().to_bytes() == bytes;
        assert_eq!(canonical, i < 8, "{e}: canonical iff among the first 8");
    }
    assert!(CompressedEdwardsY(b32(NOT_A_POINT)).decompress().is_none());
}

/// Every (A, R) pair of small-order encodings with s = 0 is valid for every message: both sides
/// of `[8][s]B = [8]R + [8][k]A` are the identity. 196 signatures, one batch.
#[test]
fn every_small_order_key_and_r_with_zero_s_verifies_single_and_batched() {
    let msg = tx_message();
    let mut checks = Vec::new();
    for a in SMALL_ORDER {
        for r in SMALL_ORDER {
            checks.push(check(b32(a), sig(b32(r), [0u8; 32]), &msg));
        }
    }
    assert_eq!(checks.len(), 196);
    assert_eq!(assert_agree(&checks), Ok(()));
}

#[test]
fn non_canonical_s_and_undecodable_points_are_refused_single_and_batched() {
    let msg = tx_message();
    let identity = b32(SMALL_ORDER[0]);
    let s_is_ell = check(identity, sig(identity, b32(ELL)), &msg);
    let bad_key = check(b32(NOT_A_POINT), sig(identity, [0u8; 32]), &msg);
    let bad_r = check(identity, sig(b32(NOT_A_POINT), [0u8; 32]), &msg);
    assert_eq!(
        s_is_ell.verify_single(),
        Err(SignatureError::BadSignature(PublicKey(identity)))
    );
    assert_eq!(
        bad_key.verify_single(),
        Err(SignatureError::BadPublicKey(PublicKey(b32(NOT_A_POINT))))
    );
    assert_eq!(
        bad_r.verify_single(),
        Err(SignatureError::BadSignature(PublicKey(identity)))
    );
    let good = check(identity, sig(identity, [0u8; 32]), &msg);
    for bad in [s_is_ell, bad_key, bad_r] {
        let batch = vec![good.clone(), good.clone(), bad.clone(), good.clone()];
        assert_eq!(
            assert_agree(&batch),
            Err(BatchFailure {
                index: 2,
                error: bad.verify_single().unwrap_err()
            })
        );
    }
}

/// A real key with `R` a non-canonical encoding of a small-order point: valid under ZIP-215
/// (strict RFC 8032 verification, the rule of header version 1, refused it).
#[test]
fn real_key_with_non_canonical_small_order_r_verifies() {
    let alice = KeyPair::from_seed([1u8; 32]);
    let msg = tx_message();
    let r_bytes = b32(SMALL_ORDER[8]);
    // a = clamp(SHA-512(seed)[..32]); k = SHA-512(R ‖ A ‖ M) mod ℓ; s = k·a mod ℓ.
    let h = Sha512::digest(alice.secret_bytes());
    let mut a_bytes: [u8; 32] = h[..32].try_into().unwrap();
    a_bytes[0] &= 248;
    a_bytes[31] &= 127;
    a_bytes[31] |= 64;
    let a = Scalar::from_bytes_mod_order(a_bytes);
    let mut kh = Sha512::new();
    kh.update(r_bytes);
    kh.update(alice.public().0);
    kh.update(&msg);
    let k = Scalar::from_bytes_mod_order_wide(&kh.finalize().into());
    let s = k * a;
    let signature = sig(r_bytes, s.to_bytes());
    assert_eq!(signature.to_hex(), ODD_R_SIGNATURE);
    let c = check(alice.public().0, signature, &msg);
    assert_eq!(assert_agree(&[c.clone(), c]), Ok(()));
    // The same signature does not verify another message.
    let mut other = msg.clone();
    other[20] ^= 1;
    assert!(PublicKey(alice.public().0)
        .verify(&other, &signature)
        .is_err());
}

#[test]
fn docs_consensus_md_lists_the_zip215_vectors() {
    let doc = include_str!("../../../docs/consensus.md");
    let flat: String = doc.split_whitespace().collect();
    for v in SMALL_ORDER.iter().chain(
        [
            ELL,
            NOT_A_POINT,
            ODD_R_SIGNATURE
                .split_whitespace()
                .collect::<String>()
                .as_str(),
        ]
        .iter(),
    ) {
        assert!(flat.contains(v), "docs/consensus.md lacks {v}");
    }
}

/// How a generated signature is damaged (or not).
#[derive(Debug, Clone)]
enum Damage {
    None,
    FlipSigBit(usize),
    FlipKeyBit(usize),
    FlipMsgByte(usize),
    SmallOrderKey(usize, usize),
    SIsEll,
    RNotAPoint,
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        6 => Just(Damage::None),
        2 => (0usize..512).prop_map(Damage::FlipSigBit),
        1 => (0usize..256).prop_map(Damage::FlipKeyBit),
        1 => (0usize..79).prop_map(Damage::FlipMsgByte),
        1 => (0usize..14, 0usize..14).prop_map(|(a, r)| Damage::SmallOrderKey(a, r)),
        1 => Just(Damage::SIsEll),
        1 => Just(Damage::RNotAPoint),
    ]
}

fn damaged(seed: u8, d: &Damage) -> SigCheck {
    let k = KeyPair::from_seed([seed; 32]);
    let msg = signing_message(
        Domain::Transaction,
        &Hash([seed; 32]),
        &Hash::blake2b(&[seed]),
    );
    let mut c = check(k.public().0, k.sign(&msg), &msg);
    match *d {
        Damage::None => {}
        Damage::FlipSigBit(i) => c.sig.0[i / 8] ^= 1 << (i % 8),
        Damage::FlipKeyBit(i) => c.key.0[i / 8] ^= 1 << (i % 8),
        Damage::FlipMsgByte(i) => c.msg[i] ^= 0x5a,
        Damage::SmallOrderKey(a, r) => {
            c.key = PublicKey(b32(SMALL_ORDER[a]));
            c.sig = sig(b32(SMALL_ORDER[r]), [0u8; 32]);
        }
        Damage::SIsEll => c.sig.0[32..].copy_from_slice(&b32(ELL)),
        Damage::RNotAPoint => c.sig.0[..32].copy_from_slice(&b32(NOT_A_POINT)),
    }
    c
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// On random batches of valid and damaged signatures, the batch answer (and the index it
    /// names) is exactly the answer of single verification in order.
    #[test]
    fn batch_and_single_verification_agree_on_random_inputs(
        items in prop::collection::vec((1u8..=200, damage()), 0..24)
    ) {
        let checks: Vec<SigCheck> = items.iter().map(|(s, d)| damaged(*s, d)).collect();
        assert_agree(&checks).ok();
    }
}
