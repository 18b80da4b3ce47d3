//! The light client's header chain: the best verified chain, persisted in redb, and the full
//! nodes' fork choice over verified headers (longest valid chain; never roll back more than k
//! blocks, the genesis security parameter).
//!
//! A batch of headers either extends the best chain, or forks from one of its blocks (within
//! k of the tip), or extends a candidate branch kept from an earlier batch of the same fork.
//! A branch replaces the best chain only once it is strictly longer, or as long with a tip in
//! the same slot that the consensus rules prefer (praos: the lower leader value). Everything
//! stored was verified; a restart re-verifies the stored chain from the genesis (so a store
//! edited on disk is refused, not believed).

use std::path::Path;

use pp_ledger::{BlockHeader, ConsensusRules, Decode, Encode, Hash};
use redb::{ReadableDatabase, ReadableTable, TableDefinition};

use crate::verify::{HeaderError, HeaderVerifier, SignedHeader, StakeSource, VerifiedHeader};

/// index → canonical header bytes ‖ 64-byte signature, for the best chain.
const HEADERS: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("headers");
/// block hash → a full node's stake-snapshot answer for that block (JSON), checked again
/// against the block's header whenever it is used.
const STAKE_PROOFS: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new("stake_proofs");
/// "genesis" → the genesis hash the store belongs to.
const META: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("meta");

/// The most blocks a candidate branch may hold before it wins or is dropped: a fork point is
/// at most k below the tip, so an honest branch wins before it is k + this longer than it.
const MAX_CANDIDATE_EXTRA: u64 = 10_000;

/// Why the header chain refused a batch or could not be stored.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    /// A header failed verification.
    #[error(transparent)]
    Header(#[from] HeaderError),
    /// The batch's first header does not hang from the best chain or the candidate branch.
    #[error("header {index} hangs from unknown block {parent}")]
    UnknownParent {
        /// Index of the first new header.
        index: u64,
        /// Its `prev_hash`.
        parent: Hash,
    },
    /// The batch forks from the best chain more than k blocks below its tip.
    #[error("fork at index {fork} is {depth} blocks below the tip, deeper than k = {k}")]
    ForkTooDeep {
        /// Index of the last common block.
        fork: u64,
        /// How many best-chain blocks the switch would roll back.
        depth: u64,
        /// The security parameter.
        k: u64,
    },
    /// A candidate branch grew beyond its bound without winning.
    #[error("candidate branch longer than {0} blocks without winning")]
    CandidateTooLong(u64),
    /// The store failed.
    #[error("header store: {0}")]
    Store(String),
    /// The store belongs to another network, or holds a header that does not decode.
    #[error("header store unusable: {0}")]
    Corrupt(String),
}

fn store_err(e: impl std::fmt::Display) -> ChainError {
    ChainError::Store(e.to_string())
}

/// What a batch did to the best chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// Nothing new (empty batch, or headers the chain already has).
    Nothing,
    /// The best chain grew by this many headers.
    Extended(u64),
    /// The best chain switched to a longer branch, rolling back `rolled_back` headers.
    Switched {
        /// Headers of the old best chain dropped.
        rolled_back: u64,
        /// The new height.
        height: u64,
    },
    /// The headers form a verified branch not (yet) longer than the best chain.
    Candidate {
        /// The branch's tip index.
        tip: u64,
    },
}

/// A verified side branch: the fork point (index and hash) and the headers after it.
#[derive(Debug, Clone)]
struct Candidate {
    fork: u64,
    fork_hash: Hash,
    entries: Vec<VerifiedHeader>,
}

/// The verified best header chain (see the module docs).
#[derive(Debug)]
pub struct HeaderChain {
    verifier: HeaderVerifier,
    best: Vec<VerifiedHeader>,
    candidate: Option<Candidate>,
    db: Option<redb::Database>,
}

impl HeaderChain {
    /// A chain holding only the genesis block, not persisted.
    pub fn in_memory(verifier: HeaderVerifier) -> HeaderChain {
        HeaderChain {
            best: vec![verifier.genesis_entry()],
            verifier,
            candidate: None,
            db: None,
        }
    }

    /// The chain stored at `path` (created if missing), re-verified from the genesis with
    /// `stakes`. A store written for another genesis, or holding a header that no longer
    /// verifies, is an error.
    pub fn open(
        verifier: HeaderVerifier,
        path: &Path,
        now_ms: u64,
        stakes: &dyn StakeSource,
    ) -> Result<HeaderChain, ChainError> {
        let db = redb::Database::create(path).map_err(store_err)?;
        let gh = verifier.genesis_hash();
        let mut stored = Vec::new();
        {
            let w = db.begin_write().map_err(store_err)?;
            {
                let mut meta = w.open_table(META).map_err(store_err)?;
                let existing = meta
                    .get("genesis")
                    .map_err(store_err)?
                    .map(|v| v.value().to_vec());
                match existing {
                    Some(g) if g != gh.0 => {
                        return Err(ChainError::Corrupt(format!(
                            "written for genesis {}, this network's is {gh}",
                            hex::encode(g)
                        )))
                    }
                    Some(_) => {}
                    None => {
                        meta.insert("genesis", &gh.0[..]).map_err(store_err)?;
                    }
                }
                let t = w.open_table(HEADERS).map_err(store_err)?;
                for row in t.iter().map_err(store_err)? {
                    let (k, v) = row.map_err(store_err)?;
                    stored.push((k.value(), decode_signed(v.value())?));
                }
            }
            w.commit().map_err(store_err)?;
        }
        let mut chain = HeaderChain::in_memory(verifier);
        for (i, (index, s)) in stored.into_iter().enumerate() {
            if index != i as u64 + 1 {
                return Err(ChainError::Corrupt(format!("index {index} stored at {i}")));
            }
            let next = chain
                .verifier
                .verify_next(chain.tip(), &s, now_ms, stakes)?;
            chain.best.push(next);
        }
        chain.db = Some(db);
        Ok(chain)
    }

    /// The verifier.
    pub fn verifier(&self) -> &HeaderVerifier {
        &self.verifier
    }

    /// The best chain's tip.
    pub fn tip(&self) -> &VerifiedHeader {
        // Never empty: the genesis entry is always there.
        &self.best[self.best.len() - 1]
    }

    /// The best chain's height (the tip's index).
    pub fn height(&self) -> u64 {
        self.tip().header().index
    }

    /// The best-chain header at `index`.
    pub fn at(&self, index: u64) -> Option<&VerifiedHeader> {
        self.best.get(usize::try_from(index).ok()?)
    }

    /// The best-chain header with hash `hash`, if it is on the best chain.
    pub fn by_hash(&self, hash: &Hash) -> Option<&VerifiedHeader> {
        // Newest first: proofs are asked about recent blocks.
        self.best.iter().rev().find(|v| v.hash == *hash)
    }

    /// A block locator: the candidate's tip (if any), then best-chain hashes newest first, the
    /// last ten consecutive and then at doubling distances, ending with the genesis (at most 64).
    pub fn locator(&self) -> Vec<Hash> {
        let mut out = Vec::new();
        if let Some(c) = &self.candidate {
            if let Some(t) = c.entries.last() {
                out.push(t.hash);
            }
        }
        let mut i = self.best.len() - 1;
        let mut step = 1;
        loop {
            out.push(self.best[i].hash);
            if i == 0 || out.len() >= 63 {
                break;
            }
            if out.len() >= 10 {
                step *= 2;
            }
            i = i.saturating_sub(step);
        }
        if out.last() != Some(&self.best[0].hash) {
            out.push(self.best[0].hash);
        }
        out
    }

    /// The blocks after which `batch` crosses an epoch boundary (the parent of its first
    /// header included), whose stake snapshots verifying it needs, as (header, hash).
    pub fn epoch_boundaries(&self, batch: &[SignedHeader]) -> Vec<(BlockHeader, Hash)> {
        let Some(first) = batch.first() else {
            return Vec::new();
        };
        let candidate_tip = self.candidate.as_ref().and_then(|c| c.entries.last());
        let parent = candidate_tip
            .filter(|t| t.hash == first.header.prev_hash)
            .or_else(|| {
                first
                    .header
                    .index
                    .checked_sub(1)
                    .and_then(|i| self.at(i))
                    .filter(|p| p.hash == first.header.prev_hash)
            });
        let Some(parent) = parent else {
            return Vec::new();
        };
        let rules = self.verifier.rules();
        let mut out = Vec::new();
        let mut prev = (parent.header().clone(), parent.hash);
        for s in batch {
            if rules.epoch_of(s.header.slot) != rules.epoch_of(prev.0.slot) {
                out.push(prev.clone());
            }
            prev = (s.header.clone(), s.header.hash());
        }
        out
    }

    /// Verifies `batch` (consecutive headers, as a `headers` answer carries them) and applies
    /// the fork choice. Headers the best chain already holds at the start of the batch are
    /// skipped. On any error nothing changes but a candidate branch is dropped.
    pub fn apply(
        &mut self,
        batch: &[SignedHeader],
        now_ms: u64,
        stakes: &dyn StakeSource,
    ) -> Result<Applied, ChainError> {
        // Skip what we already have on the best chain.
        let mut start = 0;
        while let Some(s) = batch.get(start) {
            match self.at(s.header.index) {
                Some(v) if v.signed.header == s.header => start += 1,
                _ => break,
            }
        }
        let batch = &batch[start..];
        let Some(first) = batch.first() else {
            return Ok(Applied::Nothing);
        };
        let k = self.verifier.genesis().k;
        let height = self.height();
        // Where it hangs: the candidate's tip, or a best-chain block.
        let on_candidate = self
            .candidate
            .as_ref()
            .and_then(|c| c.entries.last())
            .is_some_and(|t| t.hash == first.header.prev_hash);
        let result = if on_candidate {
            let Some(mut c) = self.candidate.take() else {
                return Ok(Applied::Nothing);
            };
            // The best chain may have switched away from the candidate's fork point since.
            if self.at(c.fork).map(|v| v.hash) != Some(c.fork_hash) {
                return Err(ChainError::UnknownParent {
                    index: first.header.index,
                    parent: first.header.prev_hash,
                });
            }
            let Some(parent) = c.entries.last().cloned() else {
                return Ok(Applied::Nothing);
            };
            let more = self.verifier.verify_chain(&parent, batch, now_ms, stakes)?;
            c.entries.extend(more);
            if c.entries.len() as u64 > k.saturating_add(MAX_CANDIDATE_EXTRA) {
                return Err(ChainError::CandidateTooLong(c.entries.len() as u64));
            }
            self.settle(c)
        } else {
            let parent_index = first.header.index.checked_sub(1);
            let parent = parent_index
                .and_then(|i| self.at(i))
                .filter(|p| p.hash == first.header.prev_hash)
                .cloned();
            let Some(parent) = parent else {
                return Err(ChainError::UnknownParent {
                    index: first.header.index,
                    parent: first.header.prev_hash,
                });
            };
            let fork = parent.header().index;
            let depth = height - fork;
            if depth > k {
                return Err(ChainError::ForkTooDeep { fork, depth, k });
            }
            let entries = self.verifier.verify_chain(&parent, batch, now_ms, stakes)?;
            self.settle(Candidate {
                fork,
                fork_hash: parent.hash,
                entries,
            })
        };
        result
    }

    /// Adopts `c` if it is longer than the best chain; keeps it as the candidate otherwise.
    fn settle(&mut self, c: Candidate) -> Result<Applied, ChainError> {
        let height = self.height();
        // Again here: the best chain may have grown since a candidate's first batch.
        let k = self.verifier.genesis().k;
        let depth = height.saturating_sub(c.fork);
        if depth > k {
            return Err(ChainError::ForkTooDeep {
                fork: c.fork,
                depth,
                k,
            });
        }
        let tip = c.fork + c.entries.len() as u64;
        // Equal length: keep ours, unless the rules prefer the candidate's tip among blocks of
        // the same slot (praos: the lower leader VRF value), as a full node does, so that the
        // client converges on the full nodes' tip whichever block it saw first.
        let preferred = tip == height
            && c.entries.last().is_some_and(|t| {
                let ours = self.tip().header();
                t.header().slot == ours.slot
                    && self.verifier.rules().prefer_tip(t.header(), ours).is_lt()
            });
        if tip < height || (tip == height && !preferred) {
            self.candidate = Some(c);
            return Ok(Applied::Candidate { tip });
        }
        let rolled_back = height - c.fork;
        self.persist(c.fork, &c.entries, height)?;
        self.best.truncate(c.fork as usize + 1);
        self.best.extend(c.entries);
        // A candidate of another fork stays: whether it still hangs from the best chain is
        // checked when it grows.
        Ok(if rolled_back == 0 {
            Applied::Extended(tip - height)
        } else {
            Applied::Switched {
                rolled_back,
                height: tip,
            }
        })
    }

    /// Writes `entries` after `fork` and removes stored headers above the new tip, in one
    /// transaction.
    fn persist(
        &self,
        fork: u64,
        entries: &[VerifiedHeader],
        old_height: u64,
    ) -> Result<(), ChainError> {
        let Some(db) = &self.db else {
            return Ok(());
        };
        let w = db.begin_write().map_err(store_err)?;
        {
            let mut t = w.open_table(HEADERS).map_err(store_err)?;
            let new_tip = fork + entries.len() as u64;
            for i in new_tip + 1..=old_height {
                t.remove(i).map_err(store_err)?;
            }
            for e in entries {
                t.insert(e.header().index, encode_signed(&e.signed).as_slice())
                    .map_err(store_err)?;
            }
        }
        w.commit().map_err(store_err)
    }

    /// Stores a stake-snapshot answer for block `hash` (kept for restarts: full nodes prune
    /// old tree versions, so an old snapshot may not be servable again).
    pub fn store_stake_proof(&self, hash: &Hash, answer: &[u8]) -> Result<(), ChainError> {
        let Some(db) = &self.db else {
            return Ok(());
        };
        let w = db.begin_write().map_err(store_err)?;
        {
            let mut t = w.open_table(STAKE_PROOFS).map_err(store_err)?;
            t.insert(&hash.0[..], answer).map_err(store_err)?;
        }
        w.commit().map_err(store_err)
    }

    /// The index of the highest stored header (0 if none): for tests and `ppd light` status.
    pub fn stored_height(&self) -> Result<u64, ChainError> {
        let Some(db) = &self.db else {
            return Ok(self.height());
        };
        let r = db.begin_read().map_err(store_err)?;
        let t = match r.open_table(HEADERS) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(0),
            Err(e) => return Err(store_err(e)),
        };
        let last = t.last().map_err(store_err)?.map(|(k, _)| k.value());
        Ok(last.unwrap_or(0))
    }
}

/// The stake-snapshot answers stored at `path` (none if there is no store yet), to be checked
/// against their headers when used. Opens and closes the store: call it before
/// [`HeaderChain::open`].
pub fn read_stake_proofs(path: &Path) -> Result<Vec<(Hash, Vec<u8>)>, ChainError> {
    if !path.exists() {
        return Ok(Vec::new());
    }
    let db = redb::Database::create(path).map_err(store_err)?;
    let r = db.begin_read().map_err(store_err)?;
    let t = match r.open_table(STAKE_PROOFS) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
        Err(e) => return Err(store_err(e)),
    };
    let mut out = Vec::new();
    for row in t.iter().map_err(store_err)? {
        let (k, v) = row.map_err(store_err)?;
        let key: [u8; 32] = k
            .value()
            .try_into()
            .map_err(|_| ChainError::Corrupt("stake proof key is not a hash".into()))?;
        out.push((Hash(key), v.value().to_vec()));
    }
    Ok(out)
}

fn encode_signed(s: &SignedHeader) -> Vec<u8> {
    s.to_canonical_bytes()
}

fn decode_signed(bytes: &[u8]) -> Result<SignedHeader, ChainError> {
    SignedHeader::from_canonical_bytes(bytes)
        .map_err(|e| ChainError::Corrupt(format!("stored header: {e}")))
}
