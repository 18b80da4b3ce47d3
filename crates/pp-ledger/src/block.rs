//! Blocks: the header (hashed with SHA-256 and mined for proof of work), the producer's
//! signature over the header hash, and the transactions.

use serde::{Deserialize, Serialize};
use sha2::block_api::compress256;

use crate::crypto::{signing_message, Domain, KeyPair, PublicKey, Signature, SignatureError};
use crate::encoding::{Decode, Decoder, Encode, Encoder};
use crate::error::DecodeError;
use crate::hash::Hash;
use crate::merkle::merkle_root;
use crate::opcert::{OpCert, OPCERT_BYTES};
use crate::tx::{Transaction, MIN_TX_ENCODED_LEN};

/// The header version of a `classic` network (genesis `leader_mode`), which carries no VRF
/// evidence. Version 5 added the `state_root` (version 2 had none and is no longer accepted;
/// 3 and 4 were praos versions).
pub const BLOCK_VERSION: u32 = 5;

/// The header version of a `praos` network: the classic fields, then the leader's VRF output and
/// proof ([`VrfEvidence`]), then the operational certificate ([`OpCert`]), then the nonce. The
/// block is signed by the certificate's hot key. Version 6 added the `state_root`; versions 3
/// (no certificate, signed by the stakeholder's own key) and 4 (no state root) are no longer
/// accepted.
pub const PRAOS_BLOCK_VERSION: u32 = 6;

/// Size of the canonical header encoding of a classic ([`BLOCK_VERSION`]) header in bytes.
pub const HEADER_LEN: usize = 4 + 8 + 8 + 32 + 32 + 32 + 32 + 8 + 4 + 8;

/// Length of a VRF output carried in a praos header (RFC 9381 ECVRF-EDWARDS25519-SHA512).
pub const VRF_OUTPUT_BYTES: usize = 64;
/// Length of a VRF proof carried in a praos header: Gamma (32) ‖ c (16) ‖ s (32).
pub const VRF_PROOF_BYTES: usize = 80;

/// Size of the canonical encoding of a praos ([`PRAOS_BLOCK_VERSION`]) header in bytes (424).
pub const PRAOS_HEADER_LEN: usize = HEADER_LEN + VRF_OUTPUT_BYTES + VRF_PROOF_BYTES + OPCERT_BYTES;

/// Offset of the nonce in the canonical classic header (160): it is the last field, so that a
/// miner hashes everything before it once (two whole SHA-256 blocks, then 32 bytes kept for
/// the final block) and only the final compression per attempt. In a praos header the nonce is
/// last as well, at [`PRAOS_HEADER_LEN`] − 8 (416: six whole blocks, then 32 bytes).
pub const NONCE_OFFSET: usize = HEADER_LEN - 8;
// The midstate covers whole SHA-256 blocks; what is left before the nonce, the nonce and the
// padding (1 + 8 bytes) fit one final block, for both header versions: one compression per
// attempt.
const _: () = assert!(HEADER_LEN == 168 && NONCE_OFFSET == 160);
const _: () = assert!(NONCE_OFFSET % 64 + 8 + 9 <= 64);
const _: () = assert!(PRAOS_HEADER_LEN == 424 && (PRAOS_HEADER_LEN - 8) % 64 + 8 + 9 <= 64);

/// The leadership evidence of a praos header: the producer's VRF output `β` and its proof for
/// the slot's VRF input (`η_e ‖ u64be(slot)`, see docs/leader-election.md §10). Checked by the
/// consensus rules against the producer's registered VRF key; here it is only bytes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct VrfEvidence {
    /// `β`, 64 bytes.
    pub output: [u8; VRF_OUTPUT_BYTES],
    /// `π`, 80 bytes.
    pub proof: [u8; VRF_PROOF_BYTES],
}

impl std::fmt::Debug for VrfEvidence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "VrfEvidence {{ output: {}, proof: {} }}",
            hex::encode(self.output),
            hex::encode(self.proof)
        )
    }
}

/// JSON form: `{"output": "<128 hex>", "proof": "<160 hex>"}`.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct VrfEvidenceJson {
    output: String,
    proof: String,
}

impl Serialize for VrfEvidence {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        VrfEvidenceJson {
            output: hex::encode(self.output),
            proof: hex::encode(self.proof),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for VrfEvidence {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let j = VrfEvidenceJson::deserialize(d)?;
        let output = crate::hash::decode_fixed::<VRF_OUTPUT_BYTES>(&j.output)
            .map_err(serde::de::Error::custom)?;
        let proof = crate::hash::decode_fixed::<VRF_PROOF_BYTES>(&j.proof)
            .map_err(serde::de::Error::custom)?;
        Ok(VrfEvidence { output, proof })
    }
}

/// The canonical bytes of a header, on the stack: [`HEADER_LEN`] or [`PRAOS_HEADER_LEN`] of
/// them, read through `Deref<Target = [u8]>`.
#[derive(Clone, Copy)]
pub struct HeaderBytes {
    buf: [u8; PRAOS_HEADER_LEN],
    len: usize,
}

impl std::ops::Deref for HeaderBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl AsRef<[u8]> for HeaderBytes {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

/// The SHA-256 state after the whole 64-byte blocks before a header's nonce (two for a classic
/// header, six for a praos one), and the padded final block with the bytes left before the
/// nonce and the nonce left to fill: hashing a nonce from it is one compression instead of three
/// (seven), and gives exactly [`BlockHeader::hash`].
#[derive(Clone)]
pub struct PowMidstate {
    state: [u32; 8],
    tail: [u8; 64],
    /// Where the nonce goes in `tail`.
    at: usize,
}

/// SHA-256's initial hash value (FIPS 180-4 §5.3.3).
const SHA256_IV: [u32; 8] = [
    0x6a09_e667,
    0xbb67_ae85,
    0x3c6e_f372,
    0xa54f_f53a,
    0x510e_527f,
    0x9b05_688c,
    0x1f83_d9ab,
    0x5be0_cd19,
];

impl PowMidstate {
    /// The midstate of `header` (its nonce is ignored).
    pub fn new(header: &BlockHeader) -> PowMidstate {
        let bytes = header.canonical_bytes();
        let nonce_offset = bytes.len() - 8;
        let whole = nonce_offset / 64 * 64;
        let mut state = SHA256_IV;
        for chunk in bytes[..whole].chunks_exact(64) {
            let mut block = [0u8; 64];
            block.copy_from_slice(chunk);
            compress256(&mut state, &[block]);
        }
        // The final block: the bytes left before the nonce, the nonce (8 bytes), the 0x80 pad
        // byte, zeros, the message length in bits as a big-endian u64 (FIPS 180-4 §5.1.1). Both
        // header versions fit it (checked at compile time above).
        let at = nonce_offset - whole;
        let mut tail = [0u8; 64];
        tail[..at].copy_from_slice(&bytes[whole..nonce_offset]);
        tail[at + 8] = 0x80;
        tail[56..].copy_from_slice(&((bytes.len() as u64) * 8).to_be_bytes());
        PowMidstate { state, tail, at }
    }

    /// The hash of the header with `nonce`.
    pub fn hash(&self, nonce: u64) -> Hash {
        let mut state = self.state;
        let mut block = self.tail;
        block[self.at..self.at + 8].copy_from_slice(&nonce.to_be_bytes());
        compress256(&mut state, &[block]);
        let mut out = [0u8; 32];
        for (o, w) in out.chunks_exact_mut(4).zip(state) {
            o.copy_from_slice(&w.to_be_bytes());
        }
        Hash(out)
    }
}

impl std::fmt::Debug for PowMidstate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PowMidstate")
    }
}

/// A block header. Its canonical encoding is fixed-size per version ([`HEADER_LEN`] bytes for
/// [`BLOCK_VERSION`], [`PRAOS_HEADER_LEN`] for [`PRAOS_BLOCK_VERSION`]), fields in this order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlockHeader {
    /// Format version ([`BLOCK_VERSION`]).
    pub version: u32,
    /// Height: parent index + 1; the genesis block is 0.
    pub index: u64,
    /// The slot this block was produced in.
    pub slot: u64,
    /// Hash of the parent block.
    pub prev_hash: Hash,
    /// Merkle root of the transaction ids.
    pub tx_root: Hash,
    /// Root of the account state tree after this block (docs/state-commitment.md §1–§6):
    /// every account's balance, nonce, stake, id and VRF key, and the total stake.
    pub state_root: Hash,
    /// The slot leader that produced the block: its stakeholder (account) key. Classic: it
    /// signs the block. Praos: its cold key, which signed the header's [`OpCert`]; the
    /// certificate's hot key signs the block.
    pub producer: PublicKey,
    /// Producer's wall clock at production, unix milliseconds (informational).
    pub timestamp: u64,
    /// Proof-of-work difficulty: leading zero hex digits required of the hash.
    pub difficulty: u32,
    /// The leader's VRF evidence: present exactly in [`PRAOS_BLOCK_VERSION`] headers, encoded
    /// before the nonce (which stays last for the miner's midstate). Boxed: classic headers
    /// stay small.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vrf: Option<Box<VrfEvidence>>,
    /// The producer's operational certificate: present exactly in [`PRAOS_BLOCK_VERSION`]
    /// headers, encoded after the VRF evidence and before the nonce.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ocert: Option<Box<OpCert>>,
    /// Proof-of-work nonce.
    pub nonce: u64,
}

impl Encode for BlockHeader {
    fn encode(&self, e: &mut Encoder) {
        e.u32(self.version)
            .u64(self.index)
            .u64(self.slot)
            .hash(&self.prev_hash)
            .hash(&self.tx_root)
            .hash(&self.state_root)
            .key(&self.producer)
            .u64(self.timestamp)
            .u32(self.difficulty);
        if let Some(vrf) = &self.vrf {
            e.raw(&vrf.output).raw(&vrf.proof);
        }
        if let Some(cert) = &self.ocert {
            e.raw(&cert.to_bytes());
        }
        e.u64(self.nonce);
    }
}

impl Decode for BlockHeader {
    fn decode(d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        let version = d.u32()?;
        let index = d.u64()?;
        let slot = d.u64()?;
        let prev_hash = d.hash()?;
        let tx_root = d.hash()?;
        let state_root = d.hash()?;
        let producer = d.key()?;
        let timestamp = d.u64()?;
        let difficulty = d.u32()?;
        // The version decides the layout: only a praos header carries VRF evidence and an
        // operational certificate, so every header has exactly one encoding.
        let (vrf, ocert) = if version == PRAOS_BLOCK_VERSION {
            let mut output = [0u8; VRF_OUTPUT_BYTES];
            output.copy_from_slice(d.take(VRF_OUTPUT_BYTES)?);
            let mut proof = [0u8; VRF_PROOF_BYTES];
            proof.copy_from_slice(d.take(VRF_PROOF_BYTES)?);
            let mut cert = [0u8; OPCERT_BYTES];
            cert.copy_from_slice(d.take(OPCERT_BYTES)?);
            (
                Some(Box::new(VrfEvidence { output, proof })),
                Some(Box::new(OpCert::from_bytes(&cert))),
            )
        } else {
            (None, None)
        };
        Ok(BlockHeader {
            version,
            index,
            slot,
            prev_hash,
            tx_root,
            state_root,
            producer,
            timestamp,
            difficulty,
            vrf,
            ocert,
            nonce: d.u64()?,
        })
    }
}

impl BlockHeader {
    /// Size of this header's canonical encoding: [`HEADER_LEN`], plus the VRF evidence and the
    /// certificate when present ([`PRAOS_HEADER_LEN`] with both).
    pub fn encoded_len(&self) -> usize {
        HEADER_LEN
            + self
                .vrf
                .as_ref()
                .map_or(0, |_| VRF_OUTPUT_BYTES + VRF_PROOF_BYTES)
            + self.ocert.as_ref().map_or(0, |_| OPCERT_BYTES)
    }

    /// The key that signs the block: the certificate's hot key in a praos header, the
    /// producer itself in a classic one.
    pub fn signer(&self) -> PublicKey {
        self.ocert.as_ref().map_or(self.producer, |c| c.hot_key)
    }

    /// The canonical header bytes, on the stack (hashing them allocates nothing).
    pub fn canonical_bytes(&self) -> HeaderBytes {
        let mut out = [0u8; PRAOS_HEADER_LEN];
        let mut p = 0;
        let mut put = |b: &[u8]| {
            out[p..p + b.len()].copy_from_slice(b);
            p += b.len();
        };
        put(&self.version.to_be_bytes());
        put(&self.index.to_be_bytes());
        put(&self.slot.to_be_bytes());
        put(&self.prev_hash.0);
        put(&self.tx_root.0);
        put(&self.state_root.0);
        put(&self.producer.0);
        put(&self.timestamp.to_be_bytes());
        put(&self.difficulty.to_be_bytes());
        if let Some(vrf) = &self.vrf {
            put(&vrf.output);
            put(&vrf.proof);
        }
        if let Some(cert) = &self.ocert {
            put(&cert.to_bytes());
        }
        put(&self.nonce.to_be_bytes());
        HeaderBytes { buf: out, len: p }
    }

    /// The block hash: SHA-256 of the canonical header.
    pub fn hash(&self) -> Hash {
        Hash::sha256(&self.canonical_bytes())
    }

    /// True iff the hash has at least `difficulty` leading zero hex digits.
    pub fn meets_pow(&self) -> bool {
        self.hash().leading_zero_nibbles() >= self.difficulty
    }

    /// Searches nonces from the current one until the proof of work holds or `max_attempts`
    /// hashes were tried. Returns the hash found, or `None` (the nonce is then left advanced, so
    /// the search can be resumed).
    pub fn mine(&mut self, max_attempts: u64) -> Option<Hash> {
        let midstate = PowMidstate::new(self);
        for _ in 0..max_attempts {
            let h = midstate.hash(self.nonce);
            if h.leading_zero_nibbles() >= self.difficulty {
                return Some(h);
            }
            self.nonce = self.nonce.wrapping_add(1);
        }
        None
    }
}

/// A full block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Block {
    /// The header.
    pub header: BlockHeader,
    /// The signature of [`BlockHeader::signer`] (the producer, or in praos the certificate's hot
    /// key) over `signing_message(Block, genesis_hash, hash)`.
    pub signature: Signature,
    /// The transactions, applied in order.
    pub transactions: Vec<Transaction>,
}

impl Encode for Block {
    fn encode(&self, e: &mut Encoder) {
        self.header.encode(e);
        e.sig(&self.signature);
        e.u32(u32::try_from(self.transactions.len()).unwrap_or(u32::MAX));
        for tx in &self.transactions {
            tx.encode(e);
        }
    }
}

impl Decode for Block {
    fn decode(d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        let header = BlockHeader::decode(d)?;
        let signature = d.sig()?;
        let n = d.count(MIN_TX_ENCODED_LEN)?;
        let mut transactions = Vec::with_capacity(n);
        for _ in 0..n {
            transactions.push(Transaction::decode(d)?);
        }
        Ok(Block {
            header,
            signature,
            transactions,
        })
    }
}

impl Block {
    /// The block hash (of the header).
    pub fn hash(&self) -> Hash {
        self.header.hash()
    }

    /// Merkle root of this block's transaction ids, as computed (compare with `header.tx_root`).
    pub fn compute_tx_root(&self) -> Hash {
        let ids: Vec<Hash> = self.transactions.iter().map(Transaction::id).collect();
        merkle_root(&ids)
    }

    /// Size of the canonical encoding in bytes (what `max_block_bytes` limits).
    pub fn encoded_len(&self) -> usize {
        self.header.encoded_len()
            + 64
            + 4
            + self
                .transactions
                .iter()
                .map(Transaction::encoded_len)
                .sum::<usize>()
    }

    /// Signs the (already mined) header as `key` for the network `genesis_hash`.
    pub fn sign(&mut self, key: &KeyPair, genesis_hash: &Hash) {
        let msg = signing_message(Domain::Block, genesis_hash, &self.hash());
        self.signature = key.sign(&msg);
    }

    /// Checks the signature over the header hash by [`BlockHeader::signer`] (and nothing about
    /// the certificate: see [`OpCert::verify`]).
    pub fn verify_signature(&self, genesis_hash: &Hash) -> Result<(), SignatureError> {
        let msg = signing_message(Domain::Block, genesis_hash, &self.hash());
        self.header.signer().verify(&msg, &self.signature)
    }

    /// Builds, mines and signs a classic ([`BLOCK_VERSION`]) block on top of `parent`
    /// (convenience for producers and tests) whose header commits `state_root`, the root of
    /// the state after it (`Chain::state_root_after` computes it). Returns `None` if no proof
    /// of work was found within `max_attempts` hashes.
    #[allow(clippy::too_many_arguments)]
    pub fn produce(
        parent: &BlockHeader,
        slot: u64,
        timestamp: u64,
        difficulty: u32,
        transactions: Vec<Transaction>,
        state_root: Hash,
        key: &KeyPair,
        genesis_hash: &Hash,
        max_attempts: u64,
    ) -> Option<Block> {
        Block::build(
            parent,
            slot,
            timestamp,
            difficulty,
            (transactions, state_root),
            (key.public(), None),
            key,
            genesis_hash,
            max_attempts,
        )
    }

    /// Like [`Block::produce`], for either header version: with `vrf` the header is a
    /// [`PRAOS_BLOCK_VERSION`] header carrying that evidence and the certificate `key` gives
    /// itself ([`OpCert::self_issued`]: `key` is cold and hot key at once), without it a
    /// classic one. [`Block::produce_praos`] takes a certificate and its hot key.
    #[allow(clippy::too_many_arguments)]
    pub fn produce_with(
        parent: &BlockHeader,
        slot: u64,
        timestamp: u64,
        difficulty: u32,
        transactions: Vec<Transaction>,
        state_root: Hash,
        vrf: Option<VrfEvidence>,
        key: &KeyPair,
        genesis_hash: &Hash,
        max_attempts: u64,
    ) -> Option<Block> {
        let praos = vrf.map(|v| (v, OpCert::self_issued(key, genesis_hash)));
        Block::build(
            parent,
            slot,
            timestamp,
            difficulty,
            (transactions, state_root),
            (key.public(), praos),
            key,
            genesis_hash,
            max_attempts,
        )
    }

    /// Builds, mines and signs a [`PRAOS_BLOCK_VERSION`] block of stakeholder `cold` (the
    /// header's producer) carrying `vrf` and `cert`, signed by `hot`, the certificate's hot key.
    /// Returns `None` if no proof of work was found within `max_attempts` hashes.
    #[allow(clippy::too_many_arguments)]
    pub fn produce_praos(
        parent: &BlockHeader,
        slot: u64,
        timestamp: u64,
        difficulty: u32,
        transactions: Vec<Transaction>,
        state_root: Hash,
        cold: PublicKey,
        vrf: VrfEvidence,
        cert: OpCert,
        hot: &KeyPair,
        genesis_hash: &Hash,
        max_attempts: u64,
    ) -> Option<Block> {
        Block::build(
            parent,
            slot,
            timestamp,
            difficulty,
            (transactions, state_root),
            (cold, Some((vrf, cert))),
            hot,
            genesis_hash,
            max_attempts,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn build(
        parent: &BlockHeader,
        slot: u64,
        timestamp: u64,
        difficulty: u32,
        (transactions, state_root): (Vec<Transaction>, Hash),
        (producer, praos): (PublicKey, Option<(VrfEvidence, OpCert)>),
        key: &KeyPair,
        genesis_hash: &Hash,
        max_attempts: u64,
    ) -> Option<Block> {
        let ids: Vec<Hash> = transactions.iter().map(Transaction::id).collect();
        let (vrf, ocert) = praos.map_or((None, None), |(v, c)| {
            (Some(Box::new(v)), Some(Box::new(c)))
        });
        let mut header = BlockHeader {
            version: if vrf.is_some() {
                PRAOS_BLOCK_VERSION
            } else {
                BLOCK_VERSION
            },
            index: parent.index.checked_add(1)?,
            slot,
            prev_hash: parent.hash(),
            tx_root: merkle_root(&ids),
            state_root,
            producer,
            timestamp,
            difficulty,
            vrf,
            ocert,
            nonce: 0,
        };
        header.mine(max_attempts)?;
        let mut block = Block {
            header,
            signature: Signature::default(),
            transactions,
        };
        block.sign(key, genesis_hash);
        Some(block)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parent() -> BlockHeader {
        BlockHeader {
            version: BLOCK_VERSION,
            index: 0,
            slot: 0,
            prev_hash: Hash::ZERO,
            tx_root: Hash::ZERO,
            state_root: Hash([0x77; 32]),
            producer: PublicKey::default(),
            timestamp: 0,
            difficulty: 0,
            vrf: None,
            ocert: None,
            nonce: 0,
        }
    }

    fn evidence() -> VrfEvidence {
        VrfEvidence {
            output: [0xa5; VRF_OUTPUT_BYTES],
            proof: [0x5a; VRF_PROOF_BYTES],
        }
    }

    #[test]
    fn header_canonical_bytes_match_encoder_and_round_trip() {
        let h = parent();
        let via_encoder = h.to_canonical_bytes();
        assert_eq!(via_encoder.len(), HEADER_LEN);
        assert_eq!(HEADER_LEN, 168);
        assert_eq!(&via_encoder[..], &h.canonical_bytes()[..]);
        // version, index, slot, prev_hash, tx_root, then the state root at 84..116.
        assert_eq!(&via_encoder[..4], &5u32.to_be_bytes());
        assert_eq!(&via_encoder[84..116], &[0x77; 32][..]);
        assert_eq!(&via_encoder[NONCE_OFFSET..], &h.nonce.to_be_bytes()[..]);
        assert_eq!(
            BlockHeader::from_canonical_bytes(&via_encoder),
            Ok(h.clone())
        );
        // Cut or extended by a byte: refused.
        assert!(BlockHeader::from_canonical_bytes(&via_encoder[..HEADER_LEN - 1]).is_err());
        let mut longer = via_encoder.clone();
        longer.push(0);
        assert!(BlockHeader::from_canonical_bytes(&longer).is_err());
        // JSON carries it as hex, like tx_root.
        let json = serde_json::to_value(&h).unwrap();
        assert_eq!(json["state_root"], serde_json::json!("77".repeat(32)));
        assert_eq!(serde_json::from_value::<BlockHeader>(json).unwrap(), h);
    }

    fn cert() -> OpCert {
        OpCert::issue(
            &KeyPair::from_seed([4; 32]),
            PublicKey([0x3c; 32]),
            7,
            9,
            &Hash::ZERO,
        )
    }

    fn praos_header() -> BlockHeader {
        let mut h = parent();
        h.version = PRAOS_BLOCK_VERSION;
        h.vrf = Some(Box::new(evidence()));
        h.ocert = Some(Box::new(cert()));
        h
    }

    #[test]
    fn praos_header_carries_vrf_then_certificate_before_the_nonce_and_round_trips() {
        let mut h = praos_header();
        h.nonce = 0x0102_0304_0506_0708;
        let bytes = h.to_canonical_bytes();
        assert_eq!(bytes.len(), PRAOS_HEADER_LEN);
        assert_eq!(&bytes[..], &h.canonical_bytes()[..]);
        assert_eq!(&bytes[..4], &6u32.to_be_bytes());
        assert_eq!(&bytes[84..116], &[0x77; 32][..]);
        assert_eq!(&bytes[NONCE_OFFSET..NONCE_OFFSET + 64], &[0xa5; 64][..]);
        assert_eq!(
            &bytes[NONCE_OFFSET + 64..NONCE_OFFSET + 144],
            &[0x5a; 80][..]
        );
        assert_eq!(&bytes[304..416], &cert().to_bytes()[..]);
        assert_eq!(&bytes[304..336], &[0x3c; 32][..]);
        assert_eq!(&bytes[PRAOS_HEADER_LEN - 8..], &h.nonce.to_be_bytes()[..]);
        assert_eq!(BlockHeader::from_canonical_bytes(&bytes), Ok(h.clone()));
        assert_eq!(h.encoded_len(), PRAOS_HEADER_LEN);
        // A praos version with the certificate cut off is refused, not read as shorter.
        assert!(BlockHeader::from_canonical_bytes(&bytes[..PRAOS_HEADER_LEN - 8]).is_err());
        assert!(BlockHeader::from_canonical_bytes(&bytes[..HEADER_LEN]).is_err());
        // JSON carries the evidence and the certificate, and only when present.
        let json = serde_json::to_string(&h).unwrap();
        assert_eq!(serde_json::from_str::<BlockHeader>(&json).unwrap(), h);
        let classic = serde_json::to_string(&parent()).unwrap();
        assert!(!classic.contains("vrf") && !classic.contains("ocert"));
        // The hot key signs a praos block, the producer a classic one.
        assert_eq!(h.signer(), PublicKey([0x3c; 32]));
        assert_eq!(parent().signer(), parent().producer);
    }

    /// One compression per attempt: the midstate keeps the whole 64-byte blocks before the
    /// nonce (two classic, six praos), and the 32 bytes left, the nonce and the padding fill a
    /// single final block, for both header versions.
    #[test]
    fn the_midstate_leaves_one_block_for_the_nonce() {
        for (h, whole) in [(parent(), 2), (praos_header(), 6)] {
            let mid = PowMidstate::new(&h);
            let len = h.canonical_bytes().len();
            assert_eq!((len - 8) / 64, whole);
            assert_eq!(mid.at, 32);
            assert!(mid.at + 8 + 9 <= 64);
            // The final block holds the padding and the bit length.
            assert_eq!(mid.tail[mid.at + 8], 0x80);
            assert_eq!(&mid.tail[56..], &((len as u64) * 8).to_be_bytes()[..]);
        }
    }

    #[test]
    fn praos_midstate_hash_equals_the_plain_header_hash() {
        let mut h = praos_header();
        let mid = PowMidstate::new(&h);
        for n in [0, 1, u64::MAX, 0xdead_beef] {
            h.nonce = n;
            assert_eq!(mid.hash(n), h.hash());
            assert_eq!(mid.hash(n), Hash::sha256(&h.to_canonical_bytes()));
        }
        h.difficulty = 2;
        h.nonce = 0;
        let found = h.mine(1 << 24).unwrap();
        assert_eq!(found, h.hash());
    }

    #[test]
    fn a_praos_block_is_signed_by_the_hot_key_not_the_cold_key() {
        let cold = KeyPair::from_seed([4; 32]);
        let hot = KeyPair::from_seed([6; 32]);
        let g = Hash([2; 32]);
        let cert = OpCert::issue(&cold, hot.public(), 1, 0, &g);
        let b = Block::produce_praos(
            &parent(),
            3,
            1000,
            1,
            vec![],
            Hash([1; 32]),
            cold.public(),
            evidence(),
            cert,
            &hot,
            &g,
            1 << 20,
        )
        .unwrap();
        assert_eq!(b.header.producer, cold.public());
        assert!(b.verify_signature(&g).is_ok());
        let mut by_cold = b.clone();
        by_cold.sign(&cold, &g);
        assert!(by_cold.verify_signature(&g).is_err());
        let bytes = b.to_canonical_bytes();
        assert_eq!(bytes.len(), b.encoded_len());
        assert_eq!(Block::from_canonical_bytes(&bytes), Ok(b));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        /// The midstate hash is the plain header hash, for any header and nonce.
        #[test]
        fn midstate_hash_equals_the_plain_header_hash(
            fields in proptest::prelude::any::<(u32, u64, u64, [u8; 32], [u8; 32], [u8; 32], u64, u32)>(),
            state_root in proptest::prelude::any::<[u8; 32]>(),
            nonces in proptest::collection::vec(proptest::prelude::any::<u64>(), 1..8),
        ) {
            let (version, index, slot, prev, root, producer, timestamp, difficulty) = fields;
            let mut h = BlockHeader {
                version, index, slot, prev_hash: Hash(prev), tx_root: Hash(root),
                state_root: Hash(state_root), producer: PublicKey(producer), timestamp,
                difficulty, vrf: None, ocert: None, nonce: 0,
            };
            let mid = PowMidstate::new(&h);
            for n in nonces {
                h.nonce = n;
                proptest::prop_assert_eq!(mid.hash(n), h.hash());
                proptest::prop_assert_eq!(mid.hash(n), Hash::sha256(&h.canonical_bytes()));
            }
        }
    }

    #[test]
    fn mining_finds_the_first_nonce_that_meets_the_difficulty() {
        let mut h = parent();
        h.difficulty = 2;
        let found = h.mine(1 << 24).unwrap();
        assert_eq!(found, h.hash());
        assert!(found.leading_zero_nibbles() >= 2);
        let first = (0..h.nonce).find(|&n| {
            let mut t = h.clone();
            t.nonce = n;
            t.hash().leading_zero_nibbles() >= 2
        });
        assert_eq!(first, None);
    }

    #[test]
    fn produced_block_meets_pow_and_verifies() {
        let k = KeyPair::from_seed([5u8; 32]);
        let g = Hash([2u8; 32]);
        let tx = Transaction::transfer(&k, PublicKey([1u8; 32]), 5, 1, 0, &g);
        let b = Block::produce(
            &parent(),
            3,
            1000,
            2,
            vec![tx],
            Hash([3; 32]),
            &k,
            &g,
            1 << 24,
        )
        .unwrap();
        assert_eq!(b.header.state_root, Hash([3; 32]));
        assert!(b.hash().to_hex().starts_with("00"));
        assert!(b.header.meets_pow());
        assert_eq!(b.compute_tx_root(), b.header.tx_root);
        assert!(b.verify_signature(&g).is_ok());
        assert!(b.verify_signature(&Hash::ZERO).is_err());
        let bytes = b.to_canonical_bytes();
        assert_eq!(bytes.len(), b.encoded_len());
        assert_eq!(Block::from_canonical_bytes(&bytes), Ok(b));
    }
}
