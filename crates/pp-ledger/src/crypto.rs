//! Ed25519 keys and signatures with strict verification.
//!
//! An account is identified by its 32-byte public key, written as 64 lowercase hex characters.
//! Every signature in pp-ledger is over a domain-separated message (see [`signing_message`]) so
//! that a signature made for one purpose (a transaction, a block) can never be replayed as another,
//! and a signature made for one network (genesis hash) is worthless on another.

use std::fmt;
use std::str::FromStr;

use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::HexError;
use crate::hash::{decode_fixed, Hash};

/// A public key: the identity of an account and of a block producer.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct PublicKey(pub [u8; 32]);

/// An ed25519 signature (64 bytes).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Signature(pub [u8; 64]);

impl Default for Signature {
    fn default() -> Self {
        Signature([0u8; 64])
    }
}

/// Why a signature did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The public key bytes are not a valid (or are a weak) curve point.
    #[error("public key {0} is not a valid ed25519 key")]
    BadPublicKey(PublicKey),
    /// The signature does not verify under strict ed25519 rules.
    #[error("signature does not verify for key {0}")]
    BadSignature(PublicKey),
}

impl PublicKey {
    /// Lowercase hex, 64 characters: the account id.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses an account id (64 hex characters).
    pub fn from_hex(s: &str) -> Result<PublicKey, HexError> {
        Ok(PublicKey(decode_fixed::<32>(s)?))
    }

    /// Verifies `sig` over `msg` with strict ed25519 (rejects weak keys and malleable signatures).
    pub fn verify(&self, msg: &[u8], sig: &Signature) -> Result<(), SignatureError> {
        let vk =
            VerifyingKey::from_bytes(&self.0).map_err(|_| SignatureError::BadPublicKey(*self))?;
        if vk.is_weak() {
            return Err(SignatureError::BadPublicKey(*self));
        }
        let sig = ed25519_dalek::Signature::from_bytes(&sig.0);
        vk.verify_strict(msg, &sig)
            .map_err(|_| SignatureError::BadSignature(*self))
    }
}

impl Signature {
    /// Lowercase hex, 128 characters.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses 128 hex characters.
    pub fn from_hex(s: &str) -> Result<Signature, HexError> {
        Ok(Signature(decode_fixed::<64>(s)?))
    }
}

/// What a signature is for: part of every signed message, so that signatures cannot cross purposes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Domain {
    /// A transaction, signed by its sender.
    Transaction,
    /// A block header hash, signed by the slot leader.
    Block,
}

impl Domain {
    fn tag(self) -> &'static [u8] {
        match self {
            Domain::Transaction => b"pp-ledger/tx/v1",
            Domain::Block => b"pp-ledger/block/v1",
        }
    }
}

/// The exact bytes that are signed: `tag ‖ genesis_hash ‖ payload_hash` (tag is ASCII, see
/// docs/consensus.md). Binding the genesis hash makes signatures network-specific.
pub fn signing_message(domain: Domain, genesis_hash: &Hash, payload: &Hash) -> Vec<u8> {
    let tag = domain.tag();
    let mut m = Vec::with_capacity(tag.len() + 64);
    m.extend_from_slice(tag);
    m.extend_from_slice(&genesis_hash.0);
    m.extend_from_slice(&payload.0);
    m
}

/// A signing key pair. The secret never leaves this type except through [`KeyPair::secret_bytes`]
/// (for writing `node.key`).
#[derive(Clone)]
pub struct KeyPair {
    signing: SigningKey,
}

impl KeyPair {
    /// Builds a key pair from a 32-byte secret seed.
    pub fn from_seed(seed: [u8; 32]) -> KeyPair {
        KeyPair {
            signing: SigningKey::from_bytes(&seed),
        }
    }

    /// The 32-byte secret seed.
    pub fn secret_bytes(&self) -> [u8; 32] {
        self.signing.to_bytes()
    }

    /// The public key (account id).
    pub fn public(&self) -> PublicKey {
        PublicKey(self.signing.verifying_key().to_bytes())
    }

    /// Signs raw bytes.
    pub fn sign(&self, msg: &[u8]) -> Signature {
        Signature(self.signing.sign(msg).to_bytes())
    }
}

impl fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyPair({})", self.public())
    }
}

macro_rules! hex_serde {
    ($t:ty) => {
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.to_hex())
            }
        }
        impl fmt::Debug for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($t), self.to_hex())
            }
        }
        impl FromStr for $t {
            type Err = HexError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                <$t>::from_hex(s)
            }
        }
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.to_hex())
            }
        }
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                <$t>::from_hex(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}
hex_serde!(PublicKey);
hex_serde!(Signature);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_then_verify_succeeds_and_tampering_fails() {
        let kp = KeyPair::from_seed([7u8; 32]);
        let g = Hash::sha256(b"genesis");
        let msg = signing_message(Domain::Transaction, &g, &Hash::blake2b(b"tx"));
        let sig = kp.sign(&msg);
        assert_eq!(kp.public().verify(&msg, &sig), Ok(()));
        let other = signing_message(Domain::Block, &g, &Hash::blake2b(b"tx"));
        assert_eq!(
            kp.public().verify(&other, &sig),
            Err(SignatureError::BadSignature(kp.public()))
        );
        let mut bad = sig;
        bad.0[3] ^= 1;
        assert!(kp.public().verify(&msg, &bad).is_err());
    }

    #[test]
    fn invalid_and_weak_public_keys_are_rejected() {
        let sig = Signature([0u8; 64]);
        // The identity point (a weak, small-order key) must never verify anything.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert!(PublicKey(identity).verify(b"m", &sig).is_err());
        assert!(PublicKey([0xff; 32]).verify(b"m", &sig).is_err());
    }

    #[test]
    fn key_hex_round_trip() {
        let kp = KeyPair::from_seed([1u8; 32]);
        let pk = kp.public();
        assert_eq!(PublicKey::from_hex(&pk.to_hex()), Ok(pk));
        let s: PublicKey = serde_json::from_str(&serde_json::to_string(&pk).unwrap()).unwrap();
        assert_eq!(s, pk);
        let sig = kp.sign(b"x");
        assert_eq!(Signature::from_hex(&sig.to_hex()), Ok(sig));
    }
}
