//! Header verification: what a client holding only headers (and the genesis) checks of each
//! header before it believes it. Pure: no I/O, no clock (the caller passes `now_ms`).
//!
//! For a header extending a verified parent, in this order (the first failure is the error):
//! 1. version and shape: the network's header version, VRF evidence and an operational
//!    certificate exactly in praos headers;
//! 2. the network's difficulty and the proof of work;
//! 3. index = parent's + 1, `prev_hash` = the parent's hash;
//! 4. slot after the parent's and not in the future (`now_ms` + the genesis clock skew);
//! 5. the producer's signature over the header hash ([`pp_ledger::crypto::Domain::Block`]):
//!    classic, by the producer; praos, the producer's (cold) key signs the certificate and the
//!    certificate's hot key signs the header;
//! 6. leader eligibility, by the full node's own rules ([`Ouroboros::check_producer`]) on the
//!    [`EpochState`] the client walks from the genesis exactly as a full node does: classic,
//!    follow-the-satoshi over SD_e with η_e folded from the header hashes; praos, the VRF proof
//!    against the producer's VRF key and the threshold of its stake in SD_e, η_e from the VRF
//!    outputs, and the certificate counter rule.
//!
//! The only input a header chain does not carry is SD_e (and the praos VRF keys) for e ≥ 2:
//! the stakes at the end of epoch e − 2. The verifier asks a [`StakeSource`] for them at the
//! last block of each epoch (the block after which the epoch changes), and only then.

use pp_ledger::crypto::{signing_message, Domain};
pub use pp_ledger::SignedHeader;
use pp_ledger::{
    BlockError, BlockHeader, ConsensusRules, Genesis, Hash, StakeMap, VrfKeyMap,
    PRAOS_BLOCK_VERSION,
};
use pp_ouroboros::{genesis_distribution, genesis_vrf_keys, EpochState, Ouroboros};

/// A header that passed every check, with the consensus state its chain reached after it.
#[derive(Debug, Clone)]
pub struct VerifiedHeader {
    /// The header and signature.
    pub signed: SignedHeader,
    /// The block hash.
    pub hash: Hash,
    /// The epoch state after this header (what the next header is judged by).
    pub state: EpochState,
}

impl VerifiedHeader {
    /// The header.
    pub fn header(&self) -> &BlockHeader {
        &self.signed.header
    }
}

/// The stake snapshot taken at the end of an epoch: each stakeholder's bonded stake and (praos)
/// its VRF key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StakeSnapshot {
    /// Bonded stake per stakeholder.
    pub stakes: StakeMap,
    /// Praos: the registered VRF keys (empty in classic mode).
    pub vrf_keys: VrfKeyMap,
}

/// Why no stake snapshot could be had for a block.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no stake snapshot for block {hash} (index {index}): {reason}")]
pub struct StakeError {
    /// The block asked about.
    pub hash: Hash,
    /// Its index.
    pub index: u64,
    /// Why.
    pub reason: String,
}

/// Where the verifier gets the stakes at the end of an epoch (after `header`, the epoch's last
/// block on the chain being verified). An implementation must only answer what it has verified
/// against `header` (a proof against its state root), or what holds by construction.
pub trait StakeSource {
    /// The stakes after the block `header` (hash `hash`).
    fn stakes_after(&self, header: &BlockHeader, hash: &Hash) -> Result<StakeSnapshot, StakeError>;
}

/// The genesis stake distribution, for every epoch: exact on a network where no stake was ever
/// bonded or unbonded after the genesis, and an assumption anywhere else. Until headers commit
/// to the state (docs/light-client.md, "What it does not do yet") this is the only source a
/// header-only client has; [`crate::proofs`] replaces it with proven snapshots once they do.
#[derive(Debug, Clone)]
pub struct GenesisStakes(StakeSnapshot);

impl GenesisStakes {
    /// The genesis stakeholders of `genesis`.
    pub fn new(genesis: &Genesis) -> GenesisStakes {
        GenesisStakes(StakeSnapshot {
            stakes: genesis_distribution(genesis),
            vrf_keys: genesis_vrf_keys(genesis),
        })
    }
}

impl StakeSource for GenesisStakes {
    fn stakes_after(&self, _: &BlockHeader, _: &Hash) -> Result<StakeSnapshot, StakeError> {
        Ok(self.0.clone())
    }
}

/// Why a header was refused. Every variant names the header (by index) and the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    /// Wrong header version or shape for the network.
    #[error("header {index}: version {got}, the network's is {expected}")]
    BadVersion {
        /// Header index.
        index: u64,
        /// The genesis' header version.
        expected: u32,
        /// The header's.
        got: u32,
    },
    /// Not the network's difficulty.
    #[error("header {index}: difficulty {got}, the network's is {expected}")]
    WrongDifficulty {
        /// Header index.
        index: u64,
        /// The genesis difficulty.
        expected: u32,
        /// The header's.
        got: u32,
    },
    /// The hash does not meet the difficulty.
    #[error("header {index}: proof of work does not meet difficulty {difficulty}")]
    BadPow {
        /// Header index.
        index: u64,
        /// The difficulty.
        difficulty: u32,
    },
    /// The index is not the parent's + 1 (a skipped or repeated header).
    #[error("header {got} follows header {parent}")]
    BadIndex {
        /// The parent's index.
        parent: u64,
        /// The header's.
        got: u64,
    },
    /// `prev_hash` is not the parent's hash.
    #[error("header {index} does not link to the header before it")]
    BadLink {
        /// Header index.
        index: u64,
    },
    /// The slot is not after the parent's.
    #[error("header {index}: slot {slot} is not after its parent's slot {parent_slot}")]
    SlotNotAfterParent {
        /// Header index.
        index: u64,
        /// Its slot.
        slot: u64,
        /// The parent's slot.
        parent_slot: u64,
    },
    /// The slot starts after `now_ms` + the allowed clock skew.
    #[error("header {index}: slot {slot} starts in the future")]
    SlotInFuture {
        /// Header index.
        index: u64,
        /// Its slot.
        slot: u64,
    },
    /// The producer's (or the praos certificate's) signature does not verify.
    #[error("header {index}: bad producer signature: {reason}")]
    BadSignature {
        /// Header index.
        index: u64,
        /// Which signature.
        reason: String,
    },
    /// The producer was not entitled to the slot (classic: not the leader; praos: bad VRF
    /// proof, above the threshold, no stake or key, certificate counter).
    #[error("header {index}: producer not the slot leader: {source}")]
    NotLeader {
        /// Header index.
        index: u64,
        /// The consensus rule that failed.
        source: Box<BlockError>,
    },
    /// The stakes at an epoch boundary could not be had.
    #[error(transparent)]
    Stake(#[from] StakeError),
}

/// Verifies headers for one network (see the module docs).
#[derive(Debug, Clone)]
pub struct HeaderVerifier {
    genesis: Genesis,
    genesis_hash: Hash,
    rules: Ouroboros,
    version: u32,
}

/// Why a verifier could not be built for a genesis.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("genesis unusable for a light client: {0}")]
pub struct GenesisUnusable(pub String);

impl HeaderVerifier {
    /// The verifier of the network `genesis` defines.
    pub fn new(genesis: &Genesis) -> Result<HeaderVerifier, GenesisUnusable> {
        genesis
            .validate()
            .map_err(|e| GenesisUnusable(e.to_string()))?;
        let rules = Ouroboros::new(genesis).map_err(|e| GenesisUnusable(e.to_string()))?;
        Ok(HeaderVerifier {
            genesis: genesis.clone(),
            genesis_hash: genesis.hash(),
            version: genesis.block_version(),
            rules,
        })
    }

    /// The genesis.
    pub fn genesis(&self) -> &Genesis {
        &self.genesis
    }

    /// The genesis hash (the network's id).
    pub fn genesis_hash(&self) -> Hash {
        self.genesis_hash
    }

    /// The consensus rules.
    pub fn rules(&self) -> &Ouroboros {
        &self.rules
    }

    /// The genesis block's header, trusted by construction (it is derived from the genesis), with
    /// the epoch-0 state. The genesis block is not folded into ρ_0 (as in a full node).
    pub fn genesis_entry(&self) -> VerifiedHeader {
        let block = self.genesis.block();
        VerifiedHeader {
            hash: block.hash(),
            signed: SignedHeader {
                header: block.header,
                signature: block.signature,
            },
            state: self.rules.genesis_state(&self.genesis),
        }
    }

    /// Checks `next` against its parent `parent` (see the module docs) and returns it verified.
    pub fn verify_next(
        &self,
        parent: &VerifiedHeader,
        next: &SignedHeader,
        now_ms: u64,
        stakes: &dyn StakeSource,
    ) -> Result<VerifiedHeader, HeaderError> {
        let h = &next.header;
        let index = h.index;
        let praos = h.version == PRAOS_BLOCK_VERSION;
        if h.version != self.version || h.vrf.is_some() != praos || h.ocert.is_some() != praos {
            return Err(HeaderError::BadVersion {
                index,
                expected: self.version,
                got: h.version,
            });
        }
        if h.difficulty != self.genesis.difficulty {
            return Err(HeaderError::WrongDifficulty {
                index,
                expected: self.genesis.difficulty,
                got: h.difficulty,
            });
        }
        let hash = h.hash();
        if hash.leading_zero_nibbles() < self.genesis.difficulty {
            return Err(HeaderError::BadPow {
                index,
                difficulty: self.genesis.difficulty,
            });
        }
        let p = parent.header();
        if Some(index) != p.index.checked_add(1) {
            return Err(HeaderError::BadIndex {
                parent: p.index,
                got: index,
            });
        }
        if h.prev_hash != parent.hash {
            return Err(HeaderError::BadLink { index });
        }
        if h.slot <= p.slot {
            return Err(HeaderError::SlotNotAfterParent {
                index,
                slot: h.slot,
                parent_slot: p.slot,
            });
        }
        let start = h
            .slot
            .saturating_mul(self.genesis.slot_duration_ms)
            .saturating_add(self.genesis.genesis_time);
        if start > now_ms.saturating_add(self.genesis.max_clock_skew_ms) {
            return Err(HeaderError::SlotInFuture {
                index,
                slot: h.slot,
            });
        }
        self.check_signature(next, &hash)?;
        // The epoch state the header is judged by: the parent's, advanced to the header's epoch
        // with the stakes after the parent when an epoch boundary is crossed.
        let crossing = self.rules.epoch_of(h.slot) != parent.state.epoch;
        let snapshot = if crossing {
            stakes.stakes_after(p, &parent.hash)?
        } else {
            StakeSnapshot::default()
        };
        let mut state = self.rules.state_for_slot_with_keys(
            &parent.state,
            h.slot,
            &snapshot.stakes,
            &snapshot.vrf_keys,
        );
        self.rules
            .check_producer(&state, h)
            .map_err(|e| HeaderError::NotLeader {
                index,
                source: Box::new(e),
            })?;
        self.rules.on_header(&mut state, h, &hash);
        Ok(VerifiedHeader {
            signed: next.clone(),
            hash,
            state,
        })
    }

    /// The producer's signature (classic) or the certificate's and the hot key's (praos).
    fn check_signature(&self, s: &SignedHeader, hash: &Hash) -> Result<(), HeaderError> {
        let h = &s.header;
        if let Some(cert) = &h.ocert {
            cert.verify(&h.producer, &self.genesis_hash).map_err(|e| {
                HeaderError::BadSignature {
                    index: h.index,
                    reason: format!("operational certificate: {e}"),
                }
            })?;
        }
        let msg = signing_message(Domain::Block, &self.genesis_hash, hash);
        h.signer()
            .verify(&msg, &s.signature)
            .map_err(|e| HeaderError::BadSignature {
                index: h.index,
                reason: format!("header signature: {e}"),
            })
    }

    /// Verifies `headers` one by one from `parent`; returns them verified, or the first error.
    pub fn verify_chain(
        &self,
        parent: &VerifiedHeader,
        headers: &[SignedHeader],
        now_ms: u64,
        stakes: &dyn StakeSource,
    ) -> Result<Vec<VerifiedHeader>, HeaderError> {
        let mut out: Vec<VerifiedHeader> = Vec::with_capacity(headers.len());
        for h in headers {
            let v = self.verify_next(out.last().unwrap_or(parent), h, now_ms, stakes)?;
            out.push(v);
        }
        Ok(out)
    }
}
