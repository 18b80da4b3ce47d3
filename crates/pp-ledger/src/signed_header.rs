//! A block header with the producer's signature: what a `headers` answer carries (wire protocol
//! version 4, docs/protocol.md §4.6), so that a node or a light client checks who produced a
//! header before it fetches, or without ever fetching, the block.

use serde::{Deserialize, Serialize};

use crate::block::{Block, BlockHeader};
use crate::crypto::{signing_message, Domain, Signature, SignatureError};
use crate::encoding::{Decode, Decoder, Encode, Encoder};
use crate::error::DecodeError;
use crate::hash::Hash;

/// A header and the signature of its [`BlockHeader::signer`] over
/// `signing_message(Block, genesis_hash, header hash)`: the same signature a [`Block`] carries,
/// so a signed header is exactly the first part of the block's canonical encoding (header, then
/// signature) and is checked by the same rule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedHeader {
    /// The header.
    pub header: BlockHeader,
    /// The block's signature.
    pub signature: Signature,
}

impl SignedHeader {
    /// The header hash (SHA-256 of the canonical header), which the signature covers.
    pub fn hash(&self) -> Hash {
        self.header.hash()
    }

    /// Checks the signature by [`BlockHeader::signer`] for the network `genesis_hash`: the
    /// producer in classic, the operational certificate's hot key in praos. It says nothing
    /// about the certificate itself (see [`crate::OpCert::verify`]) nor about leadership; those
    /// are the consensus rules' checks.
    pub fn verify_signature(&self, genesis_hash: &Hash) -> Result<(), SignatureError> {
        let msg = signing_message(Domain::Block, genesis_hash, &self.hash());
        self.header.signer().verify(&msg, &self.signature)
    }
}

impl From<&Block> for SignedHeader {
    fn from(block: &Block) -> SignedHeader {
        SignedHeader {
            header: block.header.clone(),
            signature: block.signature,
        }
    }
}

impl Encode for SignedHeader {
    fn encode(&self, e: &mut Encoder) {
        self.header.encode(e);
        e.sig(&self.signature);
    }
}

impl Decode for SignedHeader {
    /// Decodes a header and its signature: also the prefix of a stored [`Block`]'s encoding.
    fn decode(d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        let header = BlockHeader::decode(d)?;
        let signature = d.sig()?;
        Ok(SignedHeader { header, signature })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::KeyPair;

    fn block(key: &KeyPair, genesis_hash: &Hash) -> Block {
        let parent = crate::Genesis::devnet("alice", key.public(), 0).block();
        Block::produce(
            &parent.header,
            1,
            1_000,
            0,
            Vec::new(),
            Hash([5; 32]), // any state root: only the signature over the header is checked here
            key,
            genesis_hash,
            1,
        )
        .expect("difficulty 0 mines at once")
    }

    #[test]
    fn a_signed_header_is_the_prefix_of_its_block_and_verifies_like_it() {
        let key = KeyPair::from_seed([3; 32]);
        let g = Hash([9; 32]);
        let b = block(&key, &g);
        let sh = SignedHeader::from(&b);
        assert_eq!(sh.hash(), b.hash());
        sh.verify_signature(&g)
            .expect("the producer's signature verifies");
        let bytes = sh.to_canonical_bytes();
        let block_bytes = b.to_canonical_bytes();
        assert_eq!(bytes.len(), b.header.to_canonical_bytes().len() + 64);
        assert_eq!(bytes[..], block_bytes[..bytes.len()]);
        let back = SignedHeader::decode(&mut Decoder::new(&block_bytes)).expect("prefix decodes");
        assert_eq!(back, sh);
        let json = serde_json::to_string(&sh).expect("serializes");
        assert_eq!(
            serde_json::from_str::<SignedHeader>(&json).expect("parses"),
            sh
        );
    }

    #[test]
    fn another_network_a_changed_header_or_another_signer_fails() {
        let key = KeyPair::from_seed([3; 32]);
        let g = Hash([9; 32]);
        let sh = SignedHeader::from(&block(&key, &g));
        assert!(
            sh.verify_signature(&Hash([8; 32])).is_err(),
            "another genesis"
        );
        let mut changed = sh.clone();
        changed.header.timestamp += 1;
        assert!(changed.verify_signature(&g).is_err(), "a changed header");
        let mut other = sh.clone();
        other.signature =
            KeyPair::from_seed([4; 32]).sign(&signing_message(Domain::Block, &g, &sh.hash()));
        assert!(
            other.verify_signature(&g).is_err(),
            "another key's signature"
        );
    }
}
