//! Operational certificates (praos mode, header version 4; docs/leader-election.md §10.8).
//!
//! A stakeholder's **cold key** is its account key: the key in the genesis' stakeholder list
//! and the signer of its `bond` transactions. It stays offline. With it the stakeholder signs an
//! [`OpCert`] `{hot key, counter, valid from epoch}` that delegates block signing to a **hot
//! key**, the only key a running node holds. A praos header names the stakeholder (`producer`,
//! the cold key), carries the certificate, and the block is signed by the certificate's hot key.
//!
//! The certificate's bytes (48, big-endian integers) and the signed message:
//!
//! ```text
//! body = hot_key (32) ‖ u64be(counter) ‖ u64be(valid_from)
//! msg  = "pp-ledger/opcert/v1" ‖ genesis_hash ‖ Blake2b-256(body)
//! ```
//!
//! `msg` has the form of every signed message ([`crate::crypto::signing_message`]), with its own
//! tag, so a certificate signature can never pass for a transaction or a block signature, and is
//! bound to one network. In a header the certificate is `body ‖ cold signature` (112 bytes).
//!
//! This module checks what a certificate proves by itself (the cold signature). The rules that
//! need the chain — valid from its epoch on, and the counter against the highest one seen on
//! the chain for the stakeholder — are in `pp_ouroboros`.

use serde::{Deserialize, Serialize};

use crate::crypto::{signing_message, Domain, KeyPair, PublicKey, Signature, SignatureError};
use crate::hash::Hash;

/// Length of the signed part of a certificate: hot key, counter, valid-from epoch.
pub const OPCERT_BODY_BYTES: usize = 32 + 8 + 8;
/// Length of a certificate in a header: the body and the cold key's signature.
pub const OPCERT_BYTES: usize = OPCERT_BODY_BYTES + 64;

/// An operational certificate: the cold key's delegation of block signing to `hot_key` from
/// epoch `valid_from` on. A certificate with a higher `counter` revokes those with lower ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpCert {
    /// The ed25519 key that signs the blocks (held by the running node).
    pub hot_key: PublicKey,
    /// The issue number: each new certificate of a stakeholder takes the next one.
    pub counter: u64,
    /// The first epoch whose blocks may use this certificate.
    pub valid_from: u64,
    /// The cold key's signature over [`OpCert::signing_message`].
    pub signature: Signature,
}

impl OpCert {
    /// Signs a certificate for `hot_key` with the cold key `cold`, for the network
    /// `genesis_hash`.
    pub fn issue(
        cold: &KeyPair,
        hot_key: PublicKey,
        counter: u64,
        valid_from: u64,
        genesis_hash: &Hash,
    ) -> OpCert {
        let msg = Self::message(&hot_key, counter, valid_from, genesis_hash);
        OpCert {
            hot_key,
            counter,
            valid_from,
            signature: cold.sign(&msg),
        }
    }

    /// The certificate a stakeholder whose key is online gives itself: hot key = cold key,
    /// counter 0, valid from epoch 0. What devnets, simulations and tests use; a certificate
    /// from `ppd opcert issue` (counter ≥ 1) revokes it.
    pub fn self_issued(key: &KeyPair, genesis_hash: &Hash) -> OpCert {
        OpCert::issue(key, key.public(), 0, 0, genesis_hash)
    }

    /// The 48 signed bytes: `hot_key ‖ u64be(counter) ‖ u64be(valid_from)`.
    pub fn body_bytes(&self) -> [u8; OPCERT_BODY_BYTES] {
        body(&self.hot_key, self.counter, self.valid_from)
    }

    /// The certificate as a header carries it: body ‖ signature (112 bytes).
    pub fn to_bytes(&self) -> [u8; OPCERT_BYTES] {
        let mut out = [0u8; OPCERT_BYTES];
        out[..OPCERT_BODY_BYTES].copy_from_slice(&self.body_bytes());
        out[OPCERT_BODY_BYTES..].copy_from_slice(&self.signature.0);
        out
    }

    /// Reads the 112 bytes of [`OpCert::to_bytes`] (any bytes decode; the signature is checked
    /// by [`OpCert::verify`]).
    pub fn from_bytes(b: &[u8; OPCERT_BYTES]) -> OpCert {
        let mut hot = [0u8; 32];
        hot.copy_from_slice(&b[..32]);
        let mut counter = [0u8; 8];
        counter.copy_from_slice(&b[32..40]);
        let mut valid_from = [0u8; 8];
        valid_from.copy_from_slice(&b[40..48]);
        let mut sig = [0u8; 64];
        sig.copy_from_slice(&b[48..]);
        OpCert {
            hot_key: PublicKey(hot),
            counter: u64::from_be_bytes(counter),
            valid_from: u64::from_be_bytes(valid_from),
            signature: Signature(sig),
        }
    }

    /// The message the cold key signs:
    /// `"pp-ledger/opcert/v1" ‖ genesis_hash ‖ Blake2b-256(body)`.
    pub fn signing_message(&self, genesis_hash: &Hash) -> Vec<u8> {
        Self::message(&self.hot_key, self.counter, self.valid_from, genesis_hash)
    }

    fn message(hot_key: &PublicKey, counter: u64, valid_from: u64, genesis_hash: &Hash) -> Vec<u8> {
        let digest = Hash::blake2b(&body(hot_key, counter, valid_from));
        signing_message(Domain::OpCert, genesis_hash, &digest)
    }

    /// Checks that `cold` (the stakeholder named in the header) signed this certificate for the
    /// network `genesis_hash` (ZIP-215, like every signature).
    pub fn verify(&self, cold: &PublicKey, genesis_hash: &Hash) -> Result<(), SignatureError> {
        cold.verify(&self.signing_message(genesis_hash), &self.signature)
    }
}

fn body(hot_key: &PublicKey, counter: u64, valid_from: u64) -> [u8; OPCERT_BODY_BYTES] {
    let mut out = [0u8; OPCERT_BODY_BYTES];
    out[..32].copy_from_slice(&hot_key.0);
    out[32..40].copy_from_slice(&counter.to_be_bytes());
    out[40..].copy_from_slice(&valid_from.to_be_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_certificate_verifies_under_its_cold_key_and_network_only() {
        let cold = KeyPair::from_seed([1; 32]);
        let hot = KeyPair::from_seed([2; 32]).public();
        let g = Hash([7; 32]);
        let c = OpCert::issue(&cold, hot, 3, 5, &g);
        assert_eq!(c.verify(&cold.public(), &g), Ok(()));
        assert!(c.verify(&hot, &g).is_err(), "not the cold key");
        assert!(c.verify(&cold.public(), &Hash([8; 32])).is_err());
        // Every field is signed.
        for tampered in [
            OpCert { counter: 4, ..c },
            OpCert { valid_from: 4, ..c },
            OpCert {
                hot_key: cold.public(),
                ..c
            },
        ] {
            assert!(tampered.verify(&cold.public(), &g).is_err());
        }
        // A certificate signature is no block signature over the same digest.
        let digest = Hash::blake2b(&c.body_bytes());
        let as_block = signing_message(Domain::Block, &g, &digest);
        assert!(cold.public().verify(&as_block, &c.signature).is_err());
    }

    #[test]
    fn bytes_and_json_round_trip() {
        let c = OpCert::issue(
            &KeyPair::from_seed([1; 32]),
            PublicKey([9; 32]),
            1,
            2,
            &Hash::ZERO,
        );
        let b = c.to_bytes();
        assert_eq!(&b[..32], &[9; 32]);
        assert_eq!(&b[32..40], &1u64.to_be_bytes());
        assert_eq!(&b[40..48], &2u64.to_be_bytes());
        assert_eq!(OpCert::from_bytes(&b), c);
        let json = serde_json::to_string(&c).unwrap();
        assert_eq!(serde_json::from_str::<OpCert>(&json).unwrap(), c);
        assert!(serde_json::from_str::<OpCert>(&json.replace("\"counter\"", "\"x\"")).is_err());
    }
}
