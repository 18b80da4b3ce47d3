//! Signed transactions: transfers and stake changes.
//!
//! JSON form (flat, hex strings):
//! `{"type":"transfer","from":"<hex>","to":"<hex>","amount":5,"fee":1,"nonce":0,"signature":"<hex>"}`,
//! `{"type":"bond","from":..,"stakeholder_id":"alice","amount":..,"fee":..,"nonce":..,"signature":..}`
//! (praos networks: with `"vrf_key":"<hex>"`, the stakeholder's VRF public key),
//! `{"type":"unbond","from":..,"amount":..,"fee":..,"nonce":..,"signature":..}`.
//!
//! The transaction id is Blake2b-256 of the canonical encoding of the unsigned body; the sender
//! signs `signing_message(Transaction, genesis_hash, id)`.

use serde::{Deserialize, Serialize};

use crate::crypto::{signing_message, Domain, KeyPair, PublicKey, Signature, SignatureError};
use crate::encoding::{Decode, Decoder, Encode, Encoder};
use crate::error::DecodeError;
use crate::hash::Hash;

/// Longest stakeholder id, in bytes.
pub const MAX_STAKEHOLDER_ID_LEN: usize = 32;

/// What a transaction does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum TxKind {
    /// Move `amount` from the sender's balance to `to`'s balance.
    Transfer {
        /// The receiving account.
        to: PublicKey,
    },
    /// Move `amount` from the sender's balance into its stake, binding `stakeholder_id` to the
    /// sender's key (first bond binds; later bonds must repeat the same id). On a praos network
    /// the bond also carries the stakeholder's VRF public key, bound with the id by the first
    /// bond and repeated by later ones; on a classic network it carries none.
    Bond {
        /// Human-readable name of the stakeholder (the node id), unique on the chain.
        stakeholder_id: String,
        /// Praos: the stakeholder's VRF public key (32 bytes, unique on the chain). Encoded
        /// under its own tag, so a bond without it keeps the classic encoding byte for byte.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        vrf_key: Option<PublicKey>,
    },
    /// Move `amount` from the sender's stake back to its balance.
    Unbond,
}

/// The signed part of a transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxBody {
    /// What the transaction does.
    #[serde(flatten)]
    pub kind: TxKind,
    /// The sender (pays amount and fee, signs).
    pub from: PublicKey,
    /// Amount moved; must be > 0.
    pub amount: u64,
    /// Fee paid to the block producer.
    pub fee: u64,
    /// The sender's transaction counter; must equal the sender's next nonce.
    pub nonce: u64,
}

/// A transaction with its sender's signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transaction {
    /// The signed fields.
    #[serde(flatten)]
    pub body: TxBody,
    /// Ed25519 signature of the sender over `signing_message(Transaction, genesis_hash, id)`.
    pub signature: Signature,
}

const TAG_TRANSFER: u8 = 0;
const TAG_BOND: u8 = 1;
const TAG_UNBOND: u8 = 2;
/// A bond with a VRF key (praos): tag 1's fields, then the 32-byte key.
const TAG_BOND_VRF: u8 = 3;

impl Encode for TxBody {
    fn encode(&self, e: &mut Encoder) {
        match &self.kind {
            TxKind::Transfer { to } => {
                e.u8(TAG_TRANSFER).key(&self.from).key(to);
            }
            TxKind::Bond {
                stakeholder_id,
                vrf_key: None,
            } => {
                e.u8(TAG_BOND).key(&self.from).str(stakeholder_id);
            }
            TxKind::Bond {
                stakeholder_id,
                vrf_key: Some(vrf),
            } => {
                e.u8(TAG_BOND_VRF)
                    .key(&self.from)
                    .str(stakeholder_id)
                    .key(vrf);
            }
            TxKind::Unbond => {
                e.u8(TAG_UNBOND).key(&self.from);
            }
        }
        e.u64(self.amount).u64(self.fee).u64(self.nonce);
    }
}

impl Decode for TxBody {
    fn decode(d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        let tag = d.u8()?;
        let from = d.key()?;
        let kind = match tag {
            TAG_TRANSFER => TxKind::Transfer { to: d.key()? },
            TAG_BOND => TxKind::Bond {
                stakeholder_id: d.str()?,
                vrf_key: None,
            },
            TAG_BOND_VRF => TxKind::Bond {
                stakeholder_id: d.str()?,
                vrf_key: Some(d.key()?),
            },
            TAG_UNBOND => TxKind::Unbond,
            tag => return Err(DecodeError::UnknownTag { what: "tx", tag }),
        };
        Ok(TxBody {
            kind,
            from,
            amount: d.u64()?,
            fee: d.u64()?,
            nonce: d.u64()?,
        })
    }
}

impl Encode for Transaction {
    fn encode(&self, e: &mut Encoder) {
        self.body.encode(e);
        e.sig(&self.signature);
    }
}

impl Decode for Transaction {
    fn decode(d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        Ok(Transaction {
            body: TxBody::decode(d)?,
            signature: d.sig()?,
        })
    }
}

/// Smallest canonical size of a transaction (an unbond): used to bound counts when decoding.
pub const MIN_TX_ENCODED_LEN: usize = 1 + 32 + 8 * 3 + 64;

impl TxBody {
    /// The transaction id: Blake2b-256 of the canonical body.
    pub fn id(&self) -> Hash {
        Hash::blake2b(&self.to_canonical_bytes())
    }

    /// Signs the body for the network identified by `genesis_hash`.
    pub fn sign(self, key: &KeyPair, genesis_hash: &Hash) -> Transaction {
        let msg = signing_message(Domain::Transaction, genesis_hash, &self.id());
        Transaction {
            signature: key.sign(&msg),
            body: self,
        }
    }

    /// `amount + fee`, or `None` on overflow.
    pub fn total_debit(&self) -> Option<u64> {
        self.amount.checked_add(self.fee)
    }
}

impl Transaction {
    /// The transaction id (see [`TxBody::id`]).
    pub fn id(&self) -> Hash {
        self.body.id()
    }

    /// Checks the sender's signature (strict ed25519) for the network `genesis_hash`.
    pub fn verify_signature(&self, genesis_hash: &Hash) -> Result<(), SignatureError> {
        let msg = signing_message(Domain::Transaction, genesis_hash, &self.id());
        self.body.from.verify(&msg, &self.signature)
    }

    /// Size of the canonical encoding in bytes.
    pub fn encoded_len(&self) -> usize {
        let kind = match &self.body.kind {
            TxKind::Transfer { .. } => 32,
            TxKind::Bond {
                stakeholder_id,
                vrf_key,
            } => 4 + stakeholder_id.len() + if vrf_key.is_some() { 32 } else { 0 },
            TxKind::Unbond => 0,
        };
        1 + 32 + kind + 24 + 64
    }

    /// Convenience: a signed transfer.
    pub fn transfer(
        key: &KeyPair,
        to: PublicKey,
        amount: u64,
        fee: u64,
        nonce: u64,
        genesis_hash: &Hash,
    ) -> Transaction {
        TxBody {
            kind: TxKind::Transfer { to },
            from: key.public(),
            amount,
            fee,
            nonce,
        }
        .sign(key, genesis_hash)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Transaction {
        let k = KeyPair::from_seed([3u8; 32]);
        Transaction::transfer(&k, PublicKey([9u8; 32]), 10, 1, 0, &Hash::ZERO)
    }

    #[test]
    fn json_form_is_flat_with_type_tag() {
        let tx = sample();
        let v: serde_json::Value = serde_json::to_value(&tx).unwrap();
        assert_eq!(v["type"], "transfer");
        assert_eq!(v["amount"], 10);
        assert_eq!(v["to"], PublicKey([9u8; 32]).to_hex());
        let back: Transaction = serde_json::from_value(v).unwrap();
        assert_eq!(back, tx);
    }

    #[test]
    fn canonical_round_trip_and_encoded_len_agree() {
        let tx = sample();
        let bytes = tx.to_canonical_bytes();
        assert_eq!(bytes.len(), tx.encoded_len());
        assert_eq!(Transaction::from_canonical_bytes(&bytes), Ok(tx));
    }

    fn bond(vrf_key: Option<PublicKey>) -> Transaction {
        let k = KeyPair::from_seed([4u8; 32]);
        TxBody {
            kind: TxKind::Bond {
                stakeholder_id: "carol".into(),
                vrf_key,
            },
            from: k.public(),
            amount: 500,
            fee: 1,
            nonce: 0,
        }
        .sign(&k, &Hash::ZERO)
    }

    /// A bond without a VRF key keeps the classic encoding (tag 1, no key); with one it takes
    /// tag 3 and the key after the id; both round-trip, in binary and JSON.
    #[test]
    fn bond_with_a_vrf_key_has_its_own_tag_and_a_bond_without_keeps_the_classic_bytes() {
        let classic = bond(None);
        let bytes = classic.to_canonical_bytes();
        let from = KeyPair::from_seed([4u8; 32]).public();
        let mut expected = vec![1u8];
        expected.extend_from_slice(&from.0);
        expected.extend_from_slice(&5u32.to_be_bytes());
        expected.extend_from_slice(b"carol");
        expected.extend_from_slice(&500u64.to_be_bytes());
        expected.extend_from_slice(&1u64.to_be_bytes());
        expected.extend_from_slice(&0u64.to_be_bytes());
        assert_eq!(&bytes[..bytes.len() - 64], &expected[..]);
        assert_eq!(bytes.len(), classic.encoded_len());
        let v: serde_json::Value = serde_json::to_value(&classic).unwrap();
        assert!(v.get("vrf_key").is_none(), "{v}");

        let praos = bond(Some(PublicKey([7u8; 32])));
        let bytes = praos.to_canonical_bytes();
        assert_eq!(bytes[0], 3);
        assert_eq!(&bytes[1 + 32 + 4 + 5..1 + 32 + 4 + 5 + 32], &[7u8; 32]);
        assert_eq!(bytes.len(), praos.encoded_len());
        assert_eq!(Transaction::from_canonical_bytes(&bytes), Ok(praos.clone()));
        assert_ne!(praos.id(), classic.id());
        let v: serde_json::Value = serde_json::to_value(&praos).unwrap();
        assert_eq!(v["vrf_key"], PublicKey([7u8; 32]).to_hex());
        let back: Transaction = serde_json::from_value(v).unwrap();
        assert_eq!(back, praos);
    }

    #[test]
    fn signature_binds_the_network() {
        let tx = sample();
        assert!(tx.verify_signature(&Hash::ZERO).is_ok());
        assert!(tx.verify_signature(&Hash([1u8; 32])).is_err());
    }
}
