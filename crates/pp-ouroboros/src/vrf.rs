//! Verifiable random functions for Praos leader election, behind the [`Vrf`] trait.
//!
//! [`EcVrf`] is RFC 9381 ECVRF-EDWARDS25519-SHA512-TAI (suite 0x03), computed by the
//! `vrf-rfc9381` crate. This module adds what a consensus rule needs on top of it:
//!
//! * **Strict, unique encodings.** A public key or the Gamma point of a proof must be the
//!   canonical RFC 8032 encoding of a point (decoding then re-encoding gives the same 32 bytes),
//!   and the scalar `s` of a proof must be below the group order `q`. The crate alone reduces `s`
//!   modulo `q` and accepts non-canonical points, so without these checks one proof has several
//!   byte strings that verify, and a relayer could change a block's bytes (and hash) without the
//!   producer. RFC 9381 §5.4.4 (`ECVRF_decode_proof`) requires both checks.
//! * **Key validation.** Public keys of small order are refused (RFC 9381 `validate_key`), so
//!   nobody can register a key whose proofs verify for many outputs.
//! * **No secret in `Debug`.** A [`VrfSecretKey`] prints as `VrfSecretKey(<redacted>)`.

use curve25519_dalek::edwards::CompressedEdwardsY;
use curve25519_dalek::{EdwardsPoint, Scalar};
use sha2::{Digest, Sha512};
use vrf_rfc9381::ec::edwards25519::tai::{
    EdVrfEdwards25519TaiPublicKey, EdVrfEdwards25519TaiSecretKey,
};
use vrf_rfc9381::ec::edwards25519::EdVrfProof;
use vrf_rfc9381::{Ciphersuite, Proof as _, Prover as _, Verifier as _};

use crate::error::OuroborosError;

/// A verifiable random function: the holder of a secret key evaluates it on an input and proves
/// the output; anyone with the public key checks the proof and learns the same output.
///
/// Uniqueness is what leader election relies on: for one public key and one input there is only
/// one output that verifies, so a producer cannot grind its leader value.
pub trait Vrf {
    /// What only the stakeholder holds.
    type SecretKey;
    /// What the stakeholder publishes (registered in a genesis or a bond).
    type PublicKey;
    /// The proof carried in a block header.
    type Proof;
    /// The pseudorandom output (`beta`), a function of the key and the input only.
    type Output: AsRef<[u8]> + Clone + Eq;

    /// The public key of a secret key.
    fn public_key(secret: &Self::SecretKey) -> Self::PublicKey;

    /// Evaluates the VRF on `input` and proves the result.
    fn prove(
        secret: &Self::SecretKey,
        input: &[u8],
    ) -> Result<(Self::Output, Self::Proof), OuroborosError>;

    /// Checks `proof` for `input` under `public`; the output if it verifies, `None` otherwise.
    fn verify(public: &Self::PublicKey, input: &[u8], proof: &Self::Proof) -> Option<Self::Output>;
}

/// RFC 9381 ECVRF-EDWARDS25519-SHA512-TAI with strict encodings (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EcVrf;

/// Length of an [`EcVrf`] proof: Gamma (32) ‖ c (16) ‖ s (32).
pub const VRF_PROOF_LEN: usize = 80;
/// Length of an [`EcVrf`] output (a SHA-512 digest).
pub const VRF_OUTPUT_LEN: usize = 64;

/// An [`EcVrf`] secret key: the 32-byte seed of RFC 8032 §5.1.5 (as for an ed25519 key; use a
/// separate seed for the VRF role). Zeroized on drop by the underlying crate.
pub struct VrfSecretKey {
    inner: EdVrfEdwards25519TaiSecretKey,
    public: VrfPublicKey,
}

impl std::fmt::Debug for VrfSecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("VrfSecretKey(<redacted>)")
    }
}

impl VrfSecretKey {
    /// The secret key of a 32-byte seed.
    pub fn from_seed(seed: [u8; 32]) -> VrfSecretKey {
        let inner = EdVrfEdwards25519TaiSecretKey::from_slice(&seed)
            .expect("a 32-byte slice always has the seed length");
        // RFC 8032 §5.1.5: x = clamp(SHA-512(seed)[0..32]), Y = x·B.
        let digest = Sha512::digest(seed);
        let mut scalar_bytes = [0u8; 32];
        scalar_bytes.copy_from_slice(&digest[..32]);
        let public = VrfPublicKey(EdwardsPoint::mul_base_clamped(scalar_bytes).compress().0);
        VrfSecretKey { inner, public }
    }

    /// The public key of this secret key.
    pub fn public(&self) -> VrfPublicKey {
        self.public
    }
}

/// An [`EcVrf`] public key: a canonical encoding of a point that is not of small order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct VrfPublicKey([u8; 32]);

impl VrfPublicKey {
    /// Validates 32 bytes as a public key: canonical encoding, on the curve, not of small order.
    pub fn from_bytes(bytes: [u8; 32]) -> Result<VrfPublicKey, OuroborosError> {
        match decode_point_strict(&bytes) {
            Some(point) if !point.is_small_order() => Ok(VrfPublicKey(bytes)),
            _ => Err(OuroborosError::InvalidVrfPublicKey),
        }
    }

    /// The 32 bytes of the key.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

/// An [`EcVrf`] proof as carried on the wire (80 bytes). Any 80 bytes can be held; validity is
/// only decided by [`Vrf::verify`].
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct VrfProof(pub [u8; VRF_PROOF_LEN]);

impl std::fmt::Debug for VrfProof {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "VrfProof({})", hex(&self.0))
    }
}

/// An [`EcVrf`] output (`beta_string`, 64 bytes).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct VrfOutput(pub [u8; VRF_OUTPUT_LEN]);

impl std::fmt::Debug for VrfOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "VrfOutput({})", hex(&self.0))
    }
}

impl AsRef<[u8]> for VrfOutput {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// RFC 8032 §5.1.3 decoding, strict: the bytes must re-encode to themselves, which refuses
/// y >= p and the encoding of x = 0 with the sign bit set (both accepted by a plain decompress).
fn decode_point_strict(bytes: &[u8; 32]) -> Option<EdwardsPoint> {
    let point = CompressedEdwardsY(*bytes).decompress()?;
    (point.compress().0 == *bytes).then_some(point)
}

/// The strict checks of RFC 9381 `ECVRF_decode_proof` that the crate leaves out: Gamma encoded
/// canonically, `s < q`.
fn proof_is_canonical(proof: &[u8; VRF_PROOF_LEN]) -> bool {
    let mut gamma = [0u8; 32];
    gamma.copy_from_slice(&proof[..32]);
    let mut s = [0u8; 32];
    s.copy_from_slice(&proof[48..]);
    decode_point_strict(&gamma).is_some() && bool::from(Scalar::from_canonical_bytes(s).is_some())
}

fn output_of(hash: &[u8]) -> VrfOutput {
    let mut out = [0u8; VRF_OUTPUT_LEN];
    out.copy_from_slice(hash);
    VrfOutput(out)
}

impl Vrf for EcVrf {
    type SecretKey = VrfSecretKey;
    type PublicKey = VrfPublicKey;
    type Proof = VrfProof;
    type Output = VrfOutput;

    fn public_key(secret: &VrfSecretKey) -> VrfPublicKey {
        secret.public
    }

    fn prove(secret: &VrfSecretKey, input: &[u8]) -> Result<(VrfOutput, VrfProof), OuroborosError> {
        // Fails only if try-and-increment finds no point in 256 attempts (probability ~2^-256).
        let proof = secret
            .inner
            .prove(input)
            .map_err(|_| OuroborosError::VrfProveFailed)?;
        let hash = proof
            .proof_to_hash(Ciphersuite::ECVRF_EDWARDS25519_SHA512_TAI)
            .map_err(|_| OuroborosError::VrfProveFailed)?;
        let pi = proof.encode_to_pi();
        let mut bytes = [0u8; VRF_PROOF_LEN];
        bytes.copy_from_slice(&pi);
        Ok((output_of(&hash), VrfProof(bytes)))
    }

    fn verify(public: &VrfPublicKey, input: &[u8], proof: &VrfProof) -> Option<VrfOutput> {
        if !proof_is_canonical(&proof.0) {
            return None;
        }
        let key = EdVrfEdwards25519TaiPublicKey::from_slice(&public.0).ok()?;
        let decoded = EdVrfProof::decode_pi(&proof.0).ok()?;
        let hash = key.verify(input, decoded).ok()?;
        Some(output_of(&hash))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prove_then_verify_roundtrips_and_is_deterministic() {
        let sk = VrfSecretKey::from_seed([7; 32]);
        let (out, proof) = EcVrf::prove(&sk, b"input").expect("valid test input");
        assert_eq!(EcVrf::verify(&sk.public(), b"input", &proof), Some(out));
        assert_eq!(
            EcVrf::prove(&sk, b"input").expect("valid test input"),
            (out, proof)
        );
        assert_eq!(EcVrf::verify(&sk.public(), b"other", &proof), None);
        assert_eq!(format!("{sk:?}"), "VrfSecretKey(<redacted>)");
        assert_eq!(
            format!("{:?}", VrfOutput([0xab; 64])),
            format!("VrfOutput({})", "ab".repeat(64))
        );
        assert_eq!(
            format!("{:?}", VrfProof([0x01; 80])),
            format!("VrfProof({})", "01".repeat(80))
        );
        assert_eq!(EcVrf::public_key(&sk), sk.public());
    }

    #[test]
    fn small_order_and_noncanonical_keys_are_refused() {
        // The identity (y = 1) has small order.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert!(VrfPublicKey::from_bytes(identity).is_err());
        // y = p + 1 ≡ 1 is a non-canonical encoding of the identity: refused as non-canonical.
        let mut y_plus_p = [0xffu8; 32];
        y_plus_p[0] = 0xee;
        y_plus_p[31] = 0x7f;
        assert!(VrfPublicKey::from_bytes(y_plus_p).is_err());
        let good = VrfSecretKey::from_seed([1; 32]).public();
        assert_eq!(VrfPublicKey::from_bytes(good.0), Ok(good));
    }

    /// Points with a small canonical `y` also have a second encoding `y + p` (< 2^255).
    fn noncanonical_encodings() -> Vec<([u8; 32], [u8; 32])> {
        let mut pairs = Vec::new();
        for y in 2u8..19 {
            let mut canonical = [0u8; 32];
            canonical[0] = y;
            let Some(point) = CompressedEdwardsY(canonical).decompress() else {
                continue;
            };
            if point.is_small_order() {
                continue;
            }
            // p = 2^255 − 19 = ed ff … ff 7f (little-endian); y + p has no carry for y < 19.
            let mut alias = [0xffu8; 32];
            alias[0] = 0xed + y;
            alias[31] = 0x7f;
            assert_eq!(CompressedEdwardsY(alias).decompress(), Some(point));
            pairs.push((canonical, alias));
        }
        assert!(!pairs.is_empty());
        pairs
    }

    #[test]
    fn noncanonical_encodings_of_large_order_points_are_refused() {
        for (canonical, alias) in noncanonical_encodings() {
            assert!(VrfPublicKey::from_bytes(canonical).is_ok());
            assert_eq!(
                VrfPublicKey::from_bytes(alias),
                Err(OuroborosError::InvalidVrfPublicKey)
            );
            let sk = VrfSecretKey::from_seed([2; 32]);
            let (_, proof) = EcVrf::prove(&sk, b"x").expect("valid test input");
            let mut with_gamma = proof.0;
            with_gamma[..32].copy_from_slice(&canonical);
            assert!(proof_is_canonical(&with_gamma));
            with_gamma[..32].copy_from_slice(&alias);
            assert!(!proof_is_canonical(&with_gamma));
        }
    }

    #[test]
    fn proof_with_s_plus_q_is_refused_although_the_crate_alone_accepts_it() {
        let sk = VrfSecretKey::from_seed([9; 32]);
        let (out, proof) = EcVrf::prove(&sk, b"slot").expect("valid test input");
        // s + q (little-endian) is another encoding of the same scalar, below 2^256 because s < q.
        const Q: [u8; 32] = [
            0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9,
            0xde, 0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
        ];
        let mut forged = proof;
        let mut carry = 0u16;
        for (byte, q) in forged.0[48..].iter_mut().zip(Q) {
            let sum = u16::from(*byte) + u16::from(q) + carry;
            *byte = sum as u8;
            carry = sum >> 8;
        }
        assert_eq!(carry, 0);
        assert_ne!(forged, proof);
        // The underlying crate reduces s mod q and would accept the second encoding.
        let key =
            EdVrfEdwards25519TaiPublicKey::from_slice(&sk.public().0).expect("valid test input");
        let crate_only = key.verify(
            b"slot",
            EdVrfProof::decode_pi(&forged.0).expect("valid test input"),
        );
        assert_eq!(crate_only.map(|h| output_of(&h)).ok(), Some(out));
        // Ours refuses it.
        assert_eq!(EcVrf::verify(&sk.public(), b"slot", &forged), None);
        assert_eq!(EcVrf::verify(&sk.public(), b"slot", &proof), Some(out));
    }
}
