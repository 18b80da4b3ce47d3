//! Batch verification of ed25519 signatures under ZIP-215, falling back to single checks to
//! name the first bad signature.
//!
//! A batch checks one random linear combination of the signatures' verification equations
//! (`ed25519-zebra`'s batch verifier). Under ZIP-215 every signature that verifies alone
//! satisfies its cofactored equation, so a batch of valid signatures always passes; a batch
//! holding an invalid one fails except with probability about 2^-128. When a batch fails, each
//! signature is checked alone and the first that fails is reported, so the answer (which
//! signature, which error) is exactly the one single verification gives.
//!
//! The random coefficients are derived from a SHA-512 hash of everything in the batch (keys,
//! signatures, messages), not drawn from the operating system: verification stays a pure
//! function of its input, and a signer cannot predict the coefficients of a batch without
//! fixing the batch first, which fixes the coefficients (the argument of deterministic batch
//! verification in ed25519-dalek, there with a Merlin transcript).

use std::convert::Infallible;

use ed25519_zebra::{batch, VerificationKeyBytes};
use rand_core::{TryCryptoRng, TryRng};
use sha2::{Digest, Sha512};

use crate::crypto::{PublicKey, Signature, SignatureError};

/// Domain tag of the coefficient seed.
const SEED_TAG: &[u8] = b"pp-ledger/batch-coefficients/v1";

/// One signature to check: the signer's key, the exact signed bytes and the signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigCheck {
    /// The signer.
    pub key: PublicKey,
    /// The signed message (see [`crate::crypto::signing_message`]).
    pub msg: Vec<u8>,
    /// The signature.
    pub sig: Signature,
}

impl SigCheck {
    /// Verifies this signature alone (ZIP-215).
    pub fn verify_single(&self) -> Result<(), SignatureError> {
        self.key.verify(&self.msg, &self.sig)
    }
}

/// The first signature of a batch that does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("signature {index} of the batch: {error}")]
pub struct BatchFailure {
    /// Its position in the batch.
    pub index: usize,
    /// Why it fails when checked alone.
    pub error: SignatureError,
}

/// Verifies every signature of `checks`; the answer equals checking each alone, in order, and
/// stopping at the first failure. Costs one batch verification when all are valid.
pub fn verify_batch(checks: &[SigCheck]) -> Result<(), BatchFailure> {
    if checks.len() > 1 && batch_holds(checks) {
        return Ok(());
    }
    // One signature is checked alone. For a batch that failed, single verification is the
    // reference; a batch of signatures that each verify alone cannot fail (ZIP-215), so this
    // finds the culprit.
    verify_each(checks)
}

/// True iff the batch equation of `checks` holds: then every signature of `checks` verifies
/// alone (except with probability about 2^-128); false if any does not. No single check is
/// made, so a false answer does not say which one fails. An empty batch holds.
pub(crate) fn batch_holds(checks: &[SigCheck]) -> bool {
    let mut seed = Sha512::new();
    seed.update(SEED_TAG);
    let mut verifier = batch::Verifier::new();
    for c in checks {
        seed.update(c.key.0);
        seed.update(c.sig.0);
        seed.update((c.msg.len() as u64).to_be_bytes());
        seed.update(&c.msg);
        let sig = ed25519_zebra::Signature::from_bytes(&c.sig.0);
        verifier.queue((VerificationKeyBytes::from(c.key.0), sig, &c.msg[..]));
    }
    let coefficients = Coefficients::new(seed.finalize().into());
    verifier.verify(coefficients).is_ok()
}

fn verify_each(checks: &[SigCheck]) -> Result<(), BatchFailure> {
    for (index, c) in checks.iter().enumerate() {
        c.verify_single()
            .map_err(|error| BatchFailure { index, error })?;
    }
    Ok(())
}

/// The batch coefficients: SHA-512 in counter mode over a seed that commits to the whole batch.
struct Coefficients {
    seed: [u8; 64],
    counter: u64,
    block: [u8; 64],
    used: usize,
}

impl Coefficients {
    fn new(seed: [u8; 64]) -> Coefficients {
        Coefficients {
            seed,
            counter: 0,
            block: [0u8; 64],
            used: 64,
        }
    }

    fn refill(&mut self) {
        let mut h = Sha512::new();
        h.update(self.seed);
        h.update(self.counter.to_be_bytes());
        self.block = h.finalize().into();
        self.counter = self.counter.wrapping_add(1);
        self.used = 0;
    }
}

impl TryRng for Coefficients {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        let mut b = [0u8; 4];
        self.try_fill_bytes(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        let mut b = [0u8; 8];
        self.try_fill_bytes(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        let mut filled = 0;
        while filled < dst.len() {
            if self.used == self.block.len() {
                self.refill();
            }
            let n = (dst.len() - filled).min(self.block.len() - self.used);
            dst[filled..filled + n].copy_from_slice(&self.block[self.used..self.used + n]);
            filled += n;
            self.used += n;
        }
        Ok(())
    }
}

/// The output is unpredictable to anyone who cannot choose the batch after seeing it: the seed
/// is a hash of the batch itself.
impl TryCryptoRng for Coefficients {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::KeyPair;

    fn checks(n: u8) -> Vec<SigCheck> {
        (0..n)
            .map(|i| {
                let k = KeyPair::from_seed([i + 1; 32]);
                let msg = vec![i; 40];
                SigCheck {
                    key: k.public(),
                    sig: k.sign(&msg),
                    msg,
                }
            })
            .collect()
    }

    #[test]
    fn valid_batch_passes_and_a_bad_signature_is_named() {
        let mut c = checks(9);
        assert_eq!(verify_batch(&c), Ok(()));
        c[6].sig.0[40] ^= 1;
        c[7].msg.push(0);
        let key = c[6].key;
        assert_eq!(
            verify_batch(&c),
            Err(BatchFailure {
                index: 6,
                error: SignatureError::BadSignature(key)
            })
        );
    }

    #[test]
    fn coefficients_are_a_function_of_the_seed() {
        let mut a = Coefficients::new([7u8; 64]);
        let mut b = Coefficients::new([7u8; 64]);
        let mut x = [0u8; 100];
        let mut y = [0u8; 100];
        a.try_fill_bytes(&mut x).unwrap();
        b.try_fill_bytes(&mut y[..30]).unwrap();
        b.try_fill_bytes(&mut y[30..]).unwrap();
        assert_eq!(x, y);
        assert_ne!(x[..64], x[64..].repeat(2)[..64]);
    }
}
