//! Ed25519 keys and signatures, verified under the ZIP-215 rules.
//!
//! Signing is standard RFC 8032 ed25519. Verification follows ZIP-215 (docs/consensus.md §4),
//! as implemented by `ed25519-zebra`: a rule precise enough that single verification, batch
//! verification ([`crate::sigbatch`]) and the verification cache ([`crate::SignatureCache`]) give
//! the same answer on every input, which a consensus rule needs and RFC 8032 does not promise.
//!
//! An account is identified by its 32-byte public key, written as 64 lowercase hex characters.
//! Every signature in pp-ledger is over a domain-separated message (see [`signing_message`]) so
//! that a signature made for one purpose (a transaction, a block) can never be replayed as another,
//! and a signature made for one network (genesis hash) is worthless on another.

use std::fmt;
use std::str::FromStr;

use ed25519_zebra::{SigningKey, VerificationKey};
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
    /// The public key bytes do not decode to a curve point.
    #[error("public key {0} is not a valid ed25519 key")]
    BadPublicKey(PublicKey),
    /// The signature does not verify under the ZIP-215 rules.
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

    /// Verifies `sig` over `msg` under ZIP-215 (docs/consensus.md §4): the key and `R` must
    /// decode to curve points (non-canonical encodings and small-order points accepted), `s`
    /// must be canonical (`s < l`), and `[8][s]B = [8]R + [8][k]A` must hold.
    pub fn verify(&self, msg: &[u8], sig: &Signature) -> Result<(), SignatureError> {
        let vk =
            VerificationKey::try_from(self.0).map_err(|_| SignatureError::BadPublicKey(*self))?;
        vk.verify(&ed25519_zebra::Signature::from_bytes(&sig.0), msg)
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
    /// An operational certificate, signed by a stakeholder's cold key (see [`crate::OpCert`]).
    OpCert,
}

impl Domain {
    fn tag(self) -> &'static [u8] {
        match self {
            Domain::Transaction => b"pp-ledger/tx/v1",
            Domain::Block => b"pp-ledger/block/v1",
            Domain::OpCert => b"pp-ledger/opcert/v1",
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
            signing: SigningKey::from(seed),
        }
    }

    /// The 32-byte secret seed.
    pub fn secret_bytes(&self) -> [u8; 32] {
        self.signing.to_bytes()
    }

    /// The public key (account id).
    pub fn public(&self) -> PublicKey {
        PublicKey(VerificationKey::from(&self.signing).into())
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
    fn undecodable_public_keys_are_rejected() {
        let sig = Signature([0u8; 64]);
        // y = 2 is not the y-coordinate of a curve point.
        let mut not_a_point = [0u8; 32];
        not_a_point[0] = 2;
        assert_eq!(
            PublicKey(not_a_point).verify(b"m", &sig),
            Err(SignatureError::BadPublicKey(PublicKey(not_a_point)))
        );
    }

    /// ZIP-215 accepts small-order keys: with a small-order `A` and `R` and `s = 0` both sides
    /// of the cofactored equation are the identity, for every message. Such a key is an account
    /// anyone can sign for (docs/consensus.md §4).
    #[test]
    fn small_order_key_with_small_order_r_and_zero_s_verifies_any_message() {
        let mut identity = [0u8; 32];
        identity[0] = 1;
        let mut sig = [0u8; 64];
        sig[0] = 1; // R = identity, s = 0
        assert_eq!(PublicKey(identity).verify(b"m", &Signature(sig)), Ok(()));
        assert_eq!(
            PublicKey(identity).verify(b"other", &Signature(sig)),
            Ok(())
        );
    }

    /// RFC 8032 §7.1, test 1: keys and signatures are standard ed25519.
    #[test]
    fn signing_matches_rfc8032_test_1() {
        let seed: [u8; 32] =
            decode_fixed("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
                .unwrap();
        let kp = KeyPair::from_seed(seed);
        assert_eq!(
            kp.public().to_hex(),
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
        );
        let sig = kp.sign(b"");
        assert_eq!(
            sig.to_hex(),
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155\
             5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
        );
        assert_eq!(kp.public().verify(b"", &sig), Ok(()));
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
