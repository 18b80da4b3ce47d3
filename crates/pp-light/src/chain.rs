//! The light client's header chain: the recent part of the best verified chain, persisted in
//! redb, and the full nodes' fork choice over verified headers (longest valid chain; never roll
//! back more than k blocks, the genesis security parameter).
//!
//! A batch of headers either extends the best chain, or forks from one of its blocks (within
//! k of the tip), or extends a candidate branch kept from an earlier batch of the same fork.
//! A branch replaces the best chain only once it is strictly longer, or as long with a tip in
//! the same slot that the consensus rules prefer (praos: the lower leader value).
//!
//! # What is kept
//!
//! Fork choice never looks more than k blocks below the tip, so the chain keeps in full (header,
//! signature, and the epoch state after it) only a *window*: the last k + 1 to k + 1 + s blocks
//! of the best chain (s = [`prune_step`]). Its oldest block is the *checkpoint*. Of every older
//! block it keeps only the 32-byte hash by index (so that a proof against an old block still
//! checks: the full node's answer carries the header, whose hash must be the stored one), and
//! of the last two epoch-boundary blocks at or below the checkpoint (a block after which the
//! epoch changed) the signed header: their state roots prove the stake distributions the
//! checkpoint's epoch state carries (SD_e and SD_{e+1}). Stake-snapshot answers are kept only
//! for those boundaries and for blocks of the window and of the candidate branch.
//!
//! Memory is bounded by k (the window, the candidate branch), not by the chain's length: the
//! hashes of older blocks are on disk only (in memory only for a chain without a store).
//!
//! # A restart
//!
//! The store is the client's own: a restart trusts the checkpoint (its header and the nonce,
//! accumulators and certificate counters of its epoch state) and the hashes below it, and
//! re-verifies everything else from them, exactly as when the headers arrived: each window
//! header above the checkpoint, and the checkpoint's stake distributions, derived again from the
//! stored boundary headers and their stake proofs (checked against the boundary headers' state
//! roots). It also checks what can be checked of the trusted part: the hash list is contiguous
//! and matches its stored digest (a Blake2b chain over it, so an edit that does not also
//! recompute the digest is detected), the checkpoint's hash and parent are the listed ones, and
//! each boundary header's hash is the listed one. A store edited on disk consistently below the
//! checkpoint (hashes and digest together) is not detected: see docs/light-client.md, "What it
//! trusts".

use std::collections::VecDeque;
use std::path::Path;
use std::sync::Arc;

use pp_ledger::{BlockHeader, ConsensusRules, Decode, Encode, Hash, PublicKey, StakeMap};
use pp_ouroboros::EpochState;
use redb::{ReadableDatabase, ReadableTable, TableDefinition};

use crate::verify::{HeaderError, HeaderVerifier, SignedHeader, StakeSource, VerifiedHeader};

/// index → canonical header bytes ‖ 64-byte signature, for the window (checkpoint to tip).
pub(crate) const HEADERS: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("headers");
/// index → block hash, for every best-chain block from 1 to the tip.
pub(crate) const HASHES: TableDefinition<'_, u64, &[u8; 32]> = TableDefinition::new("hashes");
/// index → epoch gap (u64 big-endian) ‖ canonical signed header, for the last two
/// epoch-boundary blocks below the checkpoint.
pub(crate) const BOUNDARIES: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("boundaries");
/// block hash → a full node's stake-snapshot answer for that block (JSON), checked again
/// against the block's header whenever it is used.
pub(crate) const STAKE_PROOFS: TableDefinition<'_, &[u8], &[u8]> =
    TableDefinition::new("stake_proofs");
/// "genesis" → the genesis hash the store belongs to; "checkpoint" → the checkpoint
/// ([`encode_checkpoint`]), absent while the checkpoint is the genesis block.
pub(crate) const META: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("meta");

/// The most blocks a candidate branch may hold before it wins or is dropped: a fork point is
/// at most k below the tip, so an honest branch wins before it is k + this longer than it.
const MAX_CANDIDATE_EXTRA: u64 = 10_000;

/// redb's page cache for the header store. The store is written a batch at a time and read
/// only for the hashes of old blocks (locators, old proofs) and at start: a small cache keeps
/// the client's memory bounded; redb's default (1 GiB) would let it grow with the file.
pub const STORE_CACHE_BYTES: usize = 256 * 1024;

/// The version byte of a stored checkpoint.
const CHECKPOINT_VERSION: u8 = 1;

/// How many blocks the window may exceed k + 1 by before its oldest ones are pruned (and the
/// checkpoint rewritten): k clamped to 1..=64.
pub fn prune_step(k: u64) -> u64 {
    k.clamp(1, 64)
}

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
    /// The store belongs to another network, holds something that does not decode, or is
    /// inconsistent with itself.
    #[error("header store unusable: {0}")]
    Corrupt(String),
}

fn store_err(e: impl std::fmt::Display) -> ChainError {
    ChainError::Store(e.to_string())
}

fn corrupt(m: impl Into<String>) -> ChainError {
    ChainError::Corrupt(m.into())
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

/// A block of the best chain below the checkpoint after which the epoch changed: the epoch
/// state of its successor is `gap` epochs after its own, and its stake snapshot became the
/// successor's SD_{e+1} (and SD_e too if `gap` ≥ 2).
#[derive(Debug, Clone)]
struct Boundary {
    gap: u64,
    signed: SignedHeader,
    hash: Hash,
}

/// The verified best header chain (see the module docs).
#[derive(Debug)]
pub struct HeaderChain {
    verifier: HeaderVerifier,
    genesis_hash: Hash,
    /// The best chain from the checkpoint (`window[0]`) to the tip; never empty.
    window: VecDeque<VerifiedHeader>,
    candidate: Option<Candidate>,
    /// The hash chain over the hashes of blocks 1..=checkpoint ([`fold_digest`]).
    digest: Hash,
    /// The last (at most two) epoch-boundary blocks below the checkpoint, oldest first.
    boundaries: Vec<Boundary>,
    /// Without a store: the hashes of blocks 0..checkpoint (with one, they are on disk).
    old_hashes: Vec<Hash>,
    db: Option<redb::Database>,
}

/// The next digest of the hash list: Blake2b-256(digest ‖ hash). The digest of the empty list
/// is the genesis block's hash.
fn fold_digest(digest: &Hash, hash: &Hash) -> Hash {
    Hash::blake2b_parts(&[digest.as_bytes(), hash.as_bytes()])
}

fn open_db(path: &Path) -> Result<redb::Database, ChainError> {
    redb::Builder::new()
        .set_cache_size(STORE_CACHE_BYTES)
        .create(path)
        .map_err(store_err)
}

impl HeaderChain {
    /// A chain holding only the genesis block, not persisted.
    pub fn in_memory(verifier: HeaderVerifier) -> HeaderChain {
        let g = verifier.genesis_entry();
        HeaderChain {
            genesis_hash: g.hash,
            digest: g.hash,
            window: VecDeque::from([g]),
            verifier,
            candidate: None,
            boundaries: Vec::new(),
            old_hashes: Vec::new(),
            db: None,
        }
    }

    /// The chain stored at `path` (created if missing), re-verified from its checkpoint with
    /// `stakes` (module docs, "A restart"). A store written for another genesis, or holding a
    /// header that no longer verifies, or inconsistent with itself, is an error.
    pub fn open(
        verifier: HeaderVerifier,
        path: &Path,
        now_ms: u64,
        stakes: &dyn StakeSource,
    ) -> Result<HeaderChain, ChainError> {
        let db = open_db(path)?;
        let gh = verifier.genesis_hash();
        let checkpoint_bytes;
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
                        return Err(corrupt(format!(
                            "written for genesis {}, this network's is {gh}",
                            hex::encode(g)
                        )))
                    }
                    Some(_) => {}
                    None => {
                        meta.insert("genesis", &gh.0[..]).map_err(store_err)?;
                    }
                }
                checkpoint_bytes = meta
                    .get("checkpoint")
                    .map_err(store_err)?
                    .map(|v| v.value().to_vec());
                // Created here so that later reads find them.
                w.open_table(HEADERS).map_err(store_err)?;
                w.open_table(HASHES).map_err(store_err)?;
                w.open_table(BOUNDARIES).map_err(store_err)?;
                w.open_table(STAKE_PROOFS).map_err(store_err)?;
            }
            w.commit().map_err(store_err)?;
        }
        let mut chain = HeaderChain::in_memory(verifier);
        let genesis_block = chain.genesis_hash;
        // The checkpoint and what the restart trusts of it.
        let (digest, checkpoint) = match checkpoint_bytes {
            Some(b) => {
                let (digest, signed, scalars) = decode_checkpoint(&b)?;
                (digest, Some((signed, scalars)))
            }
            None => (genesis_block, None),
        };
        let base = checkpoint.as_ref().map_or(0, |(s, _)| s.header.index);
        let r = db.begin_read().map_err(store_err)?;
        let mut boundaries = Vec::new();
        for row in r
            .open_table(BOUNDARIES)
            .map_err(store_err)?
            .iter()
            .map_err(store_err)?
        {
            let (k, v) = row.map_err(store_err)?;
            let (gap, signed) = decode_boundary(v.value())?;
            if signed.header.index != k.value() || k.value() >= base || gap == 0 {
                return Err(corrupt(format!("boundary record {} is not one", k.value())));
            }
            boundaries.push(Boundary {
                gap,
                hash: signed.header.hash(),
                signed,
            });
        }
        // The hash list: contiguous from 1, its part up to the checkpoint matching the digest.
        // Only the hashes the checks below need are held (memory stays bounded).
        let needed =
            |i: u64| i + 1 >= base || boundaries.iter().any(|b| b.signed.header.index == i);
        let mut folded = genesis_block;
        let mut count = 0u64;
        let mut listed = std::collections::BTreeMap::from([(0u64, genesis_block)]);
        let mut above: Vec<(u64, Hash)> = Vec::new();
        for row in r
            .open_table(HASHES)
            .map_err(store_err)?
            .iter()
            .map_err(store_err)?
        {
            let (k, v) = row.map_err(store_err)?;
            let (i, h) = (k.value(), Hash(*v.value()));
            if i <= base {
                if i != count + 1 {
                    return Err(corrupt(format!("block hash {i} stored out of sequence")));
                }
                count = i;
                folded = fold_digest(&folded, &h);
                if needed(i) {
                    listed.insert(i, h);
                }
            } else {
                above.push((i, h));
            }
        }
        if count != base {
            return Err(corrupt(format!(
                "{count} block hashes stored below checkpoint {base}"
            )));
        }
        if folded != digest {
            return Err(corrupt(
                "the stored block hashes do not match their digest (edited or damaged)",
            ));
        }
        let listed_at = |i: u64| listed.get(&i).copied().unwrap_or(Hash::ZERO);
        for b in &boundaries {
            if listed_at(b.signed.header.index) != b.hash {
                return Err(corrupt(format!(
                    "boundary header {} is not the listed block",
                    b.signed.header.index
                )));
            }
        }
        let mut stored = Vec::new();
        for row in r
            .open_table(HEADERS)
            .map_err(store_err)?
            .iter()
            .map_err(store_err)?
        {
            let (k, v) = row.map_err(store_err)?;
            stored.push((k.value(), decode_signed(v.value())?));
        }
        drop(r);
        if let Some((signed, scalars)) = checkpoint {
            let hash = signed.header.hash();
            if base == 0
                || listed_at(base) != hash
                || listed_at(base - 1) != signed.header.prev_hash
            {
                return Err(corrupt(format!(
                    "checkpoint {base} is not the listed block or does not link to its parent"
                )));
            }
            let state = chain.checkpoint_state(scalars, &boundaries, stakes)?;
            if state.epoch != chain.verifier.rules().epoch_of(signed.header.slot) {
                return Err(corrupt(format!(
                    "checkpoint {base}: epoch state of another epoch"
                )));
            }
            chain.window = VecDeque::from([VerifiedHeader {
                signed,
                hash,
                state,
            }]);
            chain.digest = digest;
            chain.boundaries = boundaries;
        }
        // The window above the checkpoint, verified again header by header.
        for (index, s) in stored {
            // The checkpoint's own row (kept with the window's) is the checkpoint's header.
            if index == base && base > 0 && s == chain.window[0].signed {
                continue;
            }
            if index <= base {
                return Err(corrupt(format!(
                    "header {index} stored at or below checkpoint {base}"
                )));
            }
            if index != chain.height() + 1 {
                return Err(corrupt(format!(
                    "header {index} stored after {}",
                    chain.height()
                )));
            }
            let next = chain
                .verifier
                .verify_next(chain.tip(), &s, now_ms, stakes)?;
            chain.window.push_back(next);
        }
        // Hashes above the checkpoint: the window's, or none (a store written before the hash
        // list, which kept every header: they are listed now).
        let mut missing = Vec::new();
        if above.is_empty() {
            missing.extend(
                chain
                    .window
                    .iter()
                    .skip(1)
                    .map(|v| (v.header().index, v.hash)),
            );
        } else {
            if above.len() as u64 != chain.height() - base {
                return Err(corrupt("block hashes of the window out of sequence"));
            }
            for (i, h) in &above {
                if chain.at(*i).map(|v| v.hash) != Some(*h) {
                    return Err(corrupt(format!(
                        "block hash {i} is not the stored header's"
                    )));
                }
            }
        }
        chain.db = Some(db);
        if !missing.is_empty() {
            chain.write_hashes(&missing)?;
        }
        // Prunes a window left longer than it may be (a store written before pruning).
        let h = chain.height();
        chain.commit(h, Vec::new(), h)?;
        Ok(chain)
    }

    /// The epoch state of the checkpoint: the stored `scalars` (trusted) with the stake
    /// distributions derived from the boundary blocks and `stakes` (verified).
    fn checkpoint_state(
        &self,
        scalars: CheckpointScalars,
        boundaries: &[Boundary],
        stakes: &dyn StakeSource,
    ) -> Result<EpochState, ChainError> {
        let g = self.verifier.genesis_entry().state;
        let (mut d, mut nd, mut vk, mut nvk) = (
            g.distribution,
            g.next_distribution,
            g.vrf_keys,
            g.next_vrf_keys,
        );
        // The same rotation as `EpochState::advance_to_with_keys`: SD_{e+1} becomes SD_e and
        // the boundary's stakes SD_{e+1}; a gap of two epochs or more leaves both the
        // boundary's. The first boundary kept fixes SD_{e+1} whatever came before it.
        for b in boundaries {
            let snap = stakes
                .stakes_after(&b.signed.header, &b.hash)
                .map_err(HeaderError::from)?;
            let s: Arc<StakeMap> = Arc::new(
                snap.stakes
                    .iter()
                    .filter(|(_, &v)| v > 0)
                    .map(|(k, &v)| (*k, v))
                    .collect(),
            );
            let keys = Arc::new(snap.vrf_keys);
            if b.gap == 1 {
                d = nd;
                vk = nvk;
            } else {
                d = Arc::clone(&s);
                vk = Arc::clone(&keys);
            }
            nd = s;
            nvk = keys;
        }
        Ok(EpochState {
            epoch: scalars.epoch,
            nonce: scalars.nonce,
            distribution: d,
            next_distribution: nd,
            vrf_keys: vk,
            next_vrf_keys: nvk,
            rho_prev: scalars.rho_prev,
            rho: scalars.rho,
            mode: self.verifier.genesis().leader_mode,
            ocert_counters: Arc::new(scalars.ocert_counters),
        })
    }

    /// The verifier.
    pub fn verifier(&self) -> &HeaderVerifier {
        &self.verifier
    }

    /// The best chain's tip.
    pub fn tip(&self) -> &VerifiedHeader {
        // Never empty: the checkpoint is always there.
        &self.window[self.window.len() - 1]
    }

    /// The best chain's height (the tip's index).
    pub fn height(&self) -> u64 {
        self.tip().header().index
    }

    /// The index of the checkpoint, the oldest block kept in full: blocks below it are known
    /// by hash only ([`HeaderChain::hash_at`]).
    pub fn checkpoint(&self) -> u64 {
        self.window[0].header().index
    }

    /// The best-chain header at `index`, if it is in the window (the checkpoint to the tip).
    pub fn at(&self, index: u64) -> Option<&VerifiedHeader> {
        let i = index.checked_sub(self.checkpoint())?;
        self.window.get(usize::try_from(i).ok()?)
    }

    /// The hash of the best-chain block at `index`, at any depth (below the checkpoint, read
    /// from the store's hash list). `None` above the tip, or if the store cannot be read.
    pub fn hash_at(&self, index: u64) -> Option<Hash> {
        if index > self.height() {
            return None;
        }
        if let Some(v) = self.at(index) {
            return Some(v.hash);
        }
        if index == 0 {
            return Some(self.genesis_hash);
        }
        let Some(db) = &self.db else {
            return self.old_hashes.get(usize::try_from(index).ok()?).copied();
        };
        let read = || -> Result<Option<Hash>, ChainError> {
            let r = db.begin_read().map_err(store_err)?;
            let t = r.open_table(HASHES).map_err(store_err)?;
            Ok(t.get(index).map_err(store_err)?.map(|v| Hash(*v.value())))
        };
        read().unwrap_or_else(|e| {
            tracing::warn!(error = %e, index, "cannot read a stored block hash");
            None
        })
    }

    /// The window header with hash `hash`, if it is there.
    pub fn by_hash(&self, hash: &Hash) -> Option<&VerifiedHeader> {
        // Newest first: proofs are asked about recent blocks.
        self.window.iter().rev().find(|v| v.hash == *hash)
    }

    /// The indices of the epoch-boundary blocks kept below the checkpoint, oldest first.
    pub fn boundary_indices(&self) -> Vec<u64> {
        self.boundaries
            .iter()
            .map(|b| b.signed.header.index)
            .collect()
    }

    /// Whether a stake-snapshot answer for block `hash` is still needed: the block is in the
    /// window, on the candidate branch, or a boundary kept below the checkpoint.
    pub fn keeps_stake_proof(&self, hash: &Hash) -> bool {
        self.window.iter().any(|v| v.hash == *hash)
            || self.boundaries.iter().any(|b| b.hash == *hash)
            || self
                .candidate
                .as_ref()
                .is_some_and(|c| c.entries.iter().any(|v| v.hash == *hash))
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
        let mut i = self.height();
        let mut step = 1;
        loop {
            // Below the checkpoint from the store; an unreadable one is left out.
            if let Some(h) = self.hash_at(i) {
                out.push(h);
            }
            if i == 0 || out.len() >= 63 {
                break;
            }
            if out.len() >= 10 {
                step *= 2;
            }
            i = i.saturating_sub(step);
        }
        if out.last() != Some(&self.genesis_hash) {
            out.push(self.genesis_hash);
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

    /// Whether the best chain holds `s` (in the window: the same header; below it: the same
    /// hash at its index).
    fn holds(&self, s: &SignedHeader) -> bool {
        let index = s.header.index;
        if index >= self.checkpoint() {
            return self.at(index).is_some_and(|v| v.signed.header == s.header);
        }
        self.hash_at(index) == Some(s.header.hash())
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
        while batch.get(start).is_some_and(|s| self.holds(s)) {
            start += 1;
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
            // The best chain may have grown past the candidate's fork point, or switched away
            // from it, since.
            if c.fork < self.checkpoint() {
                return Err(ChainError::ForkTooDeep {
                    fork: c.fork,
                    depth: height - c.fork,
                    k,
                });
            }
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
            let unknown = ChainError::UnknownParent {
                index: first.header.index,
                parent: first.header.prev_hash,
            };
            let Some(fork) = first.header.index.checked_sub(1) else {
                return Err(unknown);
            };
            let depth = height.saturating_sub(fork);
            // Below the checkpoint only the hash is known, and the fork is deeper than k.
            if fork < self.checkpoint() {
                if depth > k && self.hash_at(fork) == Some(first.header.prev_hash) {
                    return Err(ChainError::ForkTooDeep { fork, depth, k });
                }
                return Err(unknown);
            }
            let parent = self
                .at(fork)
                .filter(|p| p.hash == first.header.prev_hash)
                .cloned();
            let Some(parent) = parent else {
                return Err(unknown);
            };
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
        self.commit(c.fork, c.entries, height)?;
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

    /// Makes the best chain the window up to `fork` followed by `entries` (`fork` ≥ the
    /// checkpoint; `old_height` the tip before), prunes the window if it got longer than
    /// k + 1 + [`prune_step`] (to k + 1), and stores all of it in one transaction; the chain in
    /// memory changes only once the transaction committed.
    fn commit(
        &mut self,
        fork: u64,
        entries: Vec<VerifiedHeader>,
        old_height: u64,
    ) -> Result<(), ChainError> {
        let base = self.checkpoint();
        let k = self.verifier.genesis().k;
        // The new window is window[..kept] ++ entries.
        let kept = usize::try_from(fork - base + 1).unwrap_or(usize::MAX);
        let view = |i: usize| -> &VerifiedHeader {
            if i < kept {
                &self.window[i]
            } else {
                &entries[i - kept]
            }
        };
        let len = kept + entries.len();
        let keep = usize::try_from(k.saturating_add(1)).unwrap_or(usize::MAX);
        let limit = keep.saturating_add(usize::try_from(prune_step(k)).unwrap_or(usize::MAX));
        let pruned = if len > limit { len - keep } else { 0 };
        // What pruning changes: the digest, the boundaries below the new checkpoint.
        let mut digest = self.digest;
        let mut boundaries = self.boundaries.clone();
        for i in 0..pruned {
            let (p, s) = (view(i), view(i + 1));
            digest = fold_digest(&digest, &s.hash);
            if s.state.epoch > p.state.epoch {
                boundaries.push(Boundary {
                    gap: s.state.epoch - p.state.epoch,
                    signed: p.signed.clone(),
                    hash: p.hash,
                });
            }
        }
        let drop_boundaries = boundaries.len().saturating_sub(2);
        boundaries.drain(..drop_boundaries);
        if let Some(db) = &self.db {
            let new_tip = fork + entries.len() as u64;
            let w = db.begin_write().map_err(store_err)?;
            {
                let mut headers = w.open_table(HEADERS).map_err(store_err)?;
                let mut hashes = w.open_table(HASHES).map_err(store_err)?;
                for i in new_tip + 1..=old_height {
                    headers.remove(i).map_err(store_err)?;
                    hashes.remove(i).map_err(store_err)?;
                }
                for e in &entries {
                    let i = e.header().index;
                    headers
                        .insert(i, encode_signed(&e.signed).as_slice())
                        .map_err(store_err)?;
                    hashes.insert(i, &e.hash.0).map_err(store_err)?;
                }
                if pruned > 0 {
                    for i in 0..pruned {
                        headers.remove(view(i).header().index).map_err(store_err)?;
                    }
                    let mut bt = w.open_table(BOUNDARIES).map_err(store_err)?;
                    let old: Vec<u64> = bt
                        .iter()
                        .map_err(store_err)?
                        .map(|r| r.map(|(k, _)| k.value()))
                        .collect::<Result<_, _>>()
                        .map_err(store_err)?;
                    for i in old {
                        bt.remove(i).map_err(store_err)?;
                    }
                    for b in &boundaries {
                        bt.insert(b.signed.header.index, encode_boundary(b).as_slice())
                            .map_err(store_err)?;
                    }
                    let cp = view(pruned);
                    let mut meta = w.open_table(META).map_err(store_err)?;
                    meta.insert("checkpoint", encode_checkpoint(&digest, cp).as_slice())
                        .map_err(store_err)?;
                    // Stake proofs no block kept needs any more.
                    let mut sp = w.open_table(STAKE_PROOFS).map_err(store_err)?;
                    let window_hashes: Vec<Hash> = (pruned..len).map(|i| view(i).hash).collect();
                    let candidate = self.candidate.as_ref();
                    let needed = |h: &Hash| {
                        window_hashes.contains(h)
                            || boundaries.iter().any(|b| b.hash == *h)
                            || candidate.is_some_and(|c| c.entries.iter().any(|v| v.hash == *h))
                    };
                    let stale: Vec<Vec<u8>> = sp
                        .iter()
                        .map_err(store_err)?
                        .filter_map(|r| match r {
                            Ok((key, _)) => {
                                let key = key.value();
                                let h = <[u8; 32]>::try_from(key).ok().map(Hash);
                                (!h.is_some_and(|h| needed(&h))).then(|| Ok(key.to_vec()))
                            }
                            Err(e) => Some(Err(e)),
                        })
                        .collect::<Result<_, _>>()
                        .map_err(store_err)?;
                    for key in stale {
                        sp.remove(key.as_slice()).map_err(store_err)?;
                    }
                }
            }
            w.commit().map_err(store_err)?;
        }
        self.window.truncate(kept);
        self.window.extend(entries);
        for _ in 0..pruned {
            if let Some(v) = self.window.pop_front() {
                if self.db.is_none() {
                    self.old_hashes.push(v.hash);
                }
            }
        }
        self.digest = digest;
        self.boundaries = boundaries;
        Ok(())
    }

    /// Adds `(index, hash)` rows to the hash list (a store written before it had one).
    fn write_hashes(&self, rows: &[(u64, Hash)]) -> Result<(), ChainError> {
        let Some(db) = &self.db else {
            return Ok(());
        };
        let w = db.begin_write().map_err(store_err)?;
        {
            let mut t = w.open_table(HASHES).map_err(store_err)?;
            for (i, h) in rows {
                t.insert(*i, &h.0).map_err(store_err)?;
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
    let db = open_db(path)?;
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
            .map_err(|_| corrupt("stake proof key is not a hash"))?;
        out.push((Hash(key), v.value().to_vec()));
    }
    Ok(out)
}

fn encode_signed(s: &SignedHeader) -> Vec<u8> {
    s.to_canonical_bytes()
}

fn decode_signed(bytes: &[u8]) -> Result<SignedHeader, ChainError> {
    SignedHeader::from_canonical_bytes(bytes).map_err(|e| corrupt(format!("stored header: {e}")))
}

fn encode_boundary(b: &Boundary) -> Vec<u8> {
    let mut out = b.gap.to_be_bytes().to_vec();
    out.extend(encode_signed(&b.signed));
    out
}

fn decode_boundary(bytes: &[u8]) -> Result<(u64, SignedHeader), ChainError> {
    let (gap, rest) = bytes
        .split_first_chunk::<8>()
        .ok_or_else(|| corrupt("boundary record too short"))?;
    Ok((u64::from_be_bytes(*gap), decode_signed(rest)?))
}

/// What a restart takes from the stored checkpoint's epoch state (the stake distributions are
/// derived again, [`HeaderChain::open`]).
struct CheckpointScalars {
    epoch: u64,
    nonce: Hash,
    rho_prev: Hash,
    rho: Hash,
    ocert_counters: std::collections::BTreeMap<PublicKey, u64>,
}

/// version (1 byte) ‖ digest of the hash list up to the checkpoint (32) ‖ epoch (u64 BE) ‖
/// nonce ‖ ρ_prev ‖ ρ (32 each) ‖ n (u32 BE) ‖ n × (producer (32) ‖ counter (u64 BE)) ‖ the
/// canonical signed header.
fn encode_checkpoint(digest: &Hash, v: &VerifiedHeader) -> Vec<u8> {
    let s = &v.state;
    let mut out = vec![CHECKPOINT_VERSION];
    out.extend_from_slice(digest.as_bytes());
    out.extend_from_slice(&s.epoch.to_be_bytes());
    out.extend_from_slice(s.nonce.as_bytes());
    out.extend_from_slice(s.rho_prev.as_bytes());
    out.extend_from_slice(s.rho.as_bytes());
    let n = u32::try_from(s.ocert_counters.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&n.to_be_bytes());
    for (p, c) in s.ocert_counters.iter().take(n as usize) {
        out.extend_from_slice(&p.0);
        out.extend_from_slice(&c.to_be_bytes());
    }
    out.extend(encode_signed(&v.signed));
    out
}

/// The first `n` bytes of `rest`, which moves past them.
fn take<'a>(rest: &mut &'a [u8], n: usize) -> Result<&'a [u8], ChainError> {
    if rest.len() < n {
        return Err(corrupt("stored checkpoint does not decode"));
    }
    let (a, r) = rest.split_at(n);
    *rest = r;
    Ok(a)
}

fn take_hash(rest: &mut &[u8]) -> Result<Hash, ChainError> {
    let mut h = [0u8; 32];
    h.copy_from_slice(take(rest, 32)?);
    Ok(Hash(h))
}

fn take_u64(rest: &mut &[u8]) -> Result<u64, ChainError> {
    let mut b = [0u8; 8];
    b.copy_from_slice(take(rest, 8)?);
    Ok(u64::from_be_bytes(b))
}

fn decode_checkpoint(b: &[u8]) -> Result<(Hash, SignedHeader, CheckpointScalars), ChainError> {
    let mut rest = b;
    if take(&mut rest, 1)? != [CHECKPOINT_VERSION] {
        return Err(corrupt("stored checkpoint of an unknown version"));
    }
    let digest = take_hash(&mut rest)?;
    let epoch = take_u64(&mut rest)?;
    let nonce = take_hash(&mut rest)?;
    let rho_prev = take_hash(&mut rest)?;
    let rho = take_hash(&mut rest)?;
    let mut n = [0u8; 4];
    n.copy_from_slice(take(&mut rest, 4)?);
    let mut ocert_counters = std::collections::BTreeMap::new();
    for _ in 0..u32::from_be_bytes(n) {
        // Bounded by the bytes present: each entry takes 40 of them.
        let p = PublicKey(take_hash(&mut rest)?.0);
        ocert_counters.insert(p, take_u64(&mut rest)?);
    }
    let signed = decode_signed(rest)?;
    Ok((
        digest,
        signed,
        CheckpointScalars {
            epoch,
            nonce,
            rho_prev,
            rho,
            ocert_counters,
        },
    ))
}
