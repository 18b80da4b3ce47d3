//! The chain: a window of the best chain in memory, side-chain blocks, the tip ledger state, undo
//! data and the consensus state each block left, with full block validation and fork choice.
//!
//! Memory does not grow with history. Fork choice never looks more than `k` blocks below the
//! tip (a parent deeper than that is refused, and so is any switch that rolls back more), so
//! the chain needs the best blocks from index `height - k` up, the side blocks above that, and
//! the tip state. Older best blocks are forgotten once the owner says they are stored
//! ([`Chain::mark_stored`]): a chain whose owner never says so keeps every block, as before.
//! Owners that forget serve older blocks from their own storage (pp-server reads them from its
//! database); [`Chain::window_start`] says where memory begins.
//!
//! Fork choice (DESIGN §6): the longest valid chain wins; on equal length the chain already held
//! is kept; no switch rolls back more than `genesis.k` blocks.
//!
//! Side-chain blocks are validated fully (transactions included) when they arrive, on a copy of
//! the ledger state rolled back to the fork point and rolled forward along the side branch. That
//! copy is only made for blocks that do not extend the tip, which are rare, and only after all
//! the cheap checks and the producer's signature have passed, so an outsider cannot make us do it.
//!
//! Equivocation: when a valid block arrives for a `(slot, producer)` that already has another
//! block, the evidence (both signed headers) is recorded ([`Chain::equivocations`]) and the new
//! block is stored as a side-chain block only, even if it would extend the tip: the first block
//! seen is kept. Children built on that second block are judged like any other fork (longest
//! chain), because honest nodes that saw it first may have built on it, and refusing that
//! branch outright could split the network for good. A third or later block for the same
//! `(slot, producer)` is not stored ([`ChainError::Equivocation`]): one leader signing many
//! blocks for one slot costs at most one side-block slot, so it cannot fill the side store.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use serde::{Deserialize, Serialize};

use crate::block::{Block, BlockHeader};
use crate::consensus::{ConsensusRules, StakeMap, VrfKeyMap};
use crate::crypto::{PublicKey, Signature};
use crate::error::{BlockError, ChainError};
use crate::genesis::{Genesis, GenesisError};
use crate::hash::Hash;
use crate::sigcache::SignatureCache;
use crate::signed_header::SignedHeader;
use crate::state::{BlockRedo, BlockUndo, LedgerState, Sigs};
use crate::state_tree::{
    state_changes, state_entries, LoggedStore, StateTree, StateTreeError, StoreOp,
};
use crate::tx::Transaction;
use crate::verified::{BlockVerifier, VerifiedBlock};

/// Most side-chain blocks held at once; more are refused with [`ChainError::SideChainFull`].
pub const MAX_SIDE_BLOCKS: usize = 1024;
/// Most equivocation records kept (the oldest are kept; later ones are dropped).
pub const MAX_EQUIVOCATIONS: usize = 1024;
/// Consensus states kept for (parent, epoch) pairs, so that a leader check never advances the
/// same parent's state over the same epochs twice.
const EPOCH_STATE_CACHE: usize = 64;

/// Consensus states by (parent hash, epoch), oldest first.
type EpochStates<S> = VecDeque<((Hash, u64), S)>;

/// What [`Chain::screen`] found: the block is known already, or it passed the cheap checks and
/// is worth verifying.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Screened {
    /// The block is held already; [`Chain::add_block`] would answer [`AddOutcome::AlreadyKnown`].
    Known,
    /// The parent is known and recent, the block's index, slot and clock fit it, and its
    /// producer leads the slot.
    Fresh,
}

/// Evidence that a slot leader signed two different blocks for one slot: both headers with the
/// producer's signatures, which anyone can check against the producer's key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Equivocation {
    /// The slot.
    pub slot: u64,
    /// The equivocating producer.
    pub producer: PublicKey,
    /// The block seen first (kept).
    pub first: Hash,
    /// The other block, signed for the same slot.
    pub second: Hash,
    /// The first block's header.
    pub first_header: BlockHeader,
    /// The producer's signature of the first block.
    pub first_signature: Signature,
    /// The second block's header.
    pub second_header: BlockHeader,
    /// The producer's signature of the second block.
    pub second_signature: Signature,
}

/// The blocks held for one (slot, producer): the first seen, and at most one other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct SlotBlocks {
    first: Hash,
    second: Option<Hash>,
}

/// What [`Chain::add_block`] did with a valid block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddOutcome {
    /// The block extends the best chain; it is the new tip.
    Extended,
    /// The block is valid but its branch is not longer than the best chain; it is held.
    SideChain,
    /// The block completed a longer fork, which became the best chain.
    Reorg {
        /// Hashes of the blocks removed from the best chain, in ascending index order (their
        /// transactions may go back to the mempool). Those whose transactions the chain still
        /// held stay held as side blocks ([`Chain::block_by_hash`]); the others were stored by
        /// the owner ([`Chain::mark_stored`]) and are read back from its storage.
        rolled_back: Vec<Hash>,
        /// Hashes of the blocks of the new branch now on the best chain, ascending.
        applied: Vec<Hash>,
    },
    /// The block was already held (best or side chain); nothing was done.
    AlreadyKnown,
}

/// A held block with what its children need.
#[derive(Debug, Clone)]
struct Entry<S> {
    /// The block; its transactions are dropped (and `body` is false) once the owner stored it
    /// and it is on the best chain below the tip.
    block: Block,
    /// True iff `block.transactions` is the block's.
    body: bool,
    /// Consensus state after this block.
    cstate: S,
    /// Undo data; kept for the last `k` blocks of the best chain only.
    undo: Option<BlockUndo>,
    /// Stakes of the ledger after this block, shared with the parent's when unchanged, so that
    /// a child's leader can be checked without rebuilding the ledger state of its branch.
    stakes: Arc<StakeMap>,
    /// Praos: the VRF keys registered in the ledger after this block, shared the same way
    /// (they enter the epoch snapshots with the stakes).
    vrf_keys: Arc<VrfKeyMap>,
}

/// The best chain, side chains and the tip state, for consensus rules `C`.
#[derive(Debug)]
pub struct Chain<C: ConsensusRules> {
    genesis: Genesis,
    genesis_hash: Hash,
    rules: C,
    entries: HashMap<Hash, Entry<C::State>>,
    /// Hashes of the best chain by index, from index `base` up to the tip.
    best: VecDeque<Hash>,
    /// Index of `best[0]`: best blocks below it were forgotten (they are in the owner's storage).
    base: u64,
    /// Hash of the genesis block (index 0), kept when the block itself leaves the window.
    origin: Hash,
    /// The owner stores the best chain up to this index ([`Chain::mark_stored`]); only best
    /// blocks at or below it are ever forgotten (none while it is `None`).
    stored: Option<u64>,
    /// Equivocations detected, including those beyond [`MAX_EQUIVOCATIONS`].
    equivocations_seen: u64,
    /// Hashes of held blocks not on the best chain.
    side: HashSet<Hash>,
    /// First block seen for each (slot, producer), for equivocation detection.
    by_slot: BTreeMap<(u64, PublicKey), SlotBlocks>,
    state: LedgerState,
    equivocations: Vec<Equivocation>,
    /// The stateless stage for this network (and its signature cache).
    verifier: BlockVerifier,
    /// Consensus states by (parent hash, epoch of the slot), most recent last.
    epochs: Mutex<EpochStates<C::State>>,
    /// The account state tree: version `i` is the state after the best block at index `i`,
    /// for the best blocks from `height - k` up (older versions are pruned). Each block's
    /// header commits the root of its version.
    tree: StateTree<LoggedStore>,
}

fn tree_error(e: StateTreeError) -> ChainError {
    ChainError::StateTree {
        reason: e.to_string(),
    }
}

impl<C: ConsensusRules> Chain<C> {
    /// A chain holding only the genesis block.
    pub fn new(genesis: Genesis, rules: C) -> Result<Self, GenesisError> {
        genesis.validate()?;
        let genesis_hash = genesis.hash();
        let block = genesis.block();
        let hash = block.hash();
        let cstate = rules.genesis_state(&genesis);
        let verifier = BlockVerifier::new(&genesis, Arc::new(SignatureCache::default()));
        let state = LedgerState::from_genesis(&genesis);
        // Version 0: the state after the genesis block, whose header commits its root (a
        // memory store cannot fail, and an empty store takes any first version).
        let mut tree = StateTree::new(LoggedStore::default());
        let _ = tree.apply(0, state_entries(&state));
        let stakes = Arc::new(state.stakes().clone());
        let vrf_keys = Arc::new(state.vrf_keys().clone());
        let mut entries = HashMap::new();
        entries.insert(
            hash,
            Entry {
                block,
                body: true,
                cstate,
                undo: None,
                stakes,
                vrf_keys,
            },
        );
        Ok(Chain {
            genesis,
            genesis_hash,
            rules,
            entries,
            best: VecDeque::from([hash]),
            base: 0,
            origin: hash,
            stored: None,
            equivocations_seen: 0,
            side: HashSet::new(),
            by_slot: BTreeMap::new(),
            state,
            equivocations: Vec::new(),
            verifier,
            epochs: Mutex::new(VecDeque::new()),
            tree,
        })
    }

    /// The account state tree (docs/state-commitment.md): version `i` is the state after the
    /// best block at index `i`, kept for the last `k` + 1 best blocks.
    pub fn state_tree(&self) -> &StateTree<LoggedStore> {
        &self.tree
    }

    /// Starts or stops recording the state tree's writes, for an owner that persists the tree
    /// ([`Chain::take_tree_ops`]). Off by default; stopping drops what was recorded.
    pub fn set_tree_logging(&mut self, on: bool) {
        self.tree.store_mut().set_logging(on);
    }

    /// The state tree's writes since the last call (while logging is on), in order: the
    /// versions written for applied blocks, rollbacks of a fork switch, and pruning.
    pub fn take_tree_ops(&mut self) -> Vec<StoreOp> {
        self.tree.store_mut().take_log()
    }

    /// Writes the tree version of the best block at `index` from the accounts its `undo`
    /// changed (and the total-stake leaf if it changed a stake), on the current state.
    fn write_version(&mut self, index: u64, undo: &BlockUndo) -> Result<Hash, ChainError> {
        let changes = state_changes(&self.state, &undo.accounts(), undo.changes_stake());
        self.tree.apply(index, changes).map_err(tree_error)
    }

    /// [`Chain::write_version`] for a block being applied, then the check of its header's
    /// root. On a mismatch or a tree failure the version is not kept and the error returned;
    /// the caller undoes the block's state.
    fn write_checked_version(
        &mut self,
        header: &BlockHeader,
        undo: &BlockUndo,
    ) -> Result<(), ChainError> {
        let index = header.index;
        match self.write_version(index, undo) {
            Ok(root) if root == header.state_root => Ok(()),
            Ok(root) => {
                self.tree
                    .rollback(index.saturating_sub(1))
                    .map_err(tree_error)?;
                Err(BlockError::StateRoot {
                    header: header.state_root,
                    computed: root,
                }
                .into())
            }
            Err(e) => Err(e),
        }
    }

    /// The state root a block with `transactions` by `producer` on the held block `parent`
    /// must carry in its header: the root of the state after it. Nothing about the block is
    /// validated here (signatures, nonces...: a transaction that does not apply is an error).
    /// On the tip this clones the ledger state and updates the tree over an overlay (a
    /// producer holding the chain mutably uses the cheaper [`Chain::state_root_after_tip`]);
    /// on another block it rebuilds that block's state and the whole tree (O(accounts)).
    pub fn state_root_after(
        &self,
        parent: &Hash,
        producer: &PublicKey,
        transactions: &[Transaction],
    ) -> Result<Hash, ChainError> {
        let block = root_probe(producer, transactions);
        let mut st = self.state_after(parent)?;
        let undo = st.apply_block_with(
            &block,
            &Hash::ZERO,
            &self.genesis_hash,
            self.genesis.block_reward,
            Sigs::Verified,
        )?;
        if *parent == self.tip_hash() {
            let changes = state_changes(&st, &undo.accounts(), undo.changes_stake());
            self.tree
                .root_after(self.height().saturating_add(1), changes)
                .map_err(tree_error)
        } else {
            Ok(crate::state_tree::state_root(&st))
        }
    }

    /// [`Chain::state_root_after`] on the tip, without copying the ledger state: the block is
    /// applied to the tip state and undone, the tree is updated over an overlay. The chain is
    /// left exactly as it was.
    pub fn state_root_after_tip(
        &mut self,
        producer: &PublicKey,
        transactions: &[Transaction],
    ) -> Result<Hash, ChainError> {
        let block = root_probe(producer, transactions);
        let undo = self.state.apply_block_with(
            &block,
            &Hash::ZERO,
            &self.genesis_hash,
            self.genesis.block_reward,
            Sigs::Verified,
        )?;
        let changes = state_changes(&self.state, &undo.accounts(), undo.changes_stake());
        self.state.rollback(undo);
        self.tree
            .root_after(self.height().saturating_add(1), changes)
            .map_err(tree_error)
    }

    /// Uses `cache` for the signatures this chain verifies (share it with the mempool, so that
    /// a block of already admitted transactions verifies none of them again).
    pub fn with_signature_cache(mut self, cache: Arc<SignatureCache>) -> Self {
        self.verifier = BlockVerifier::new(&self.genesis, cache);
        self
    }

    /// The stateless stage of this chain's network (cheap to clone; use it off any lock).
    pub fn verifier(&self) -> &BlockVerifier {
        &self.verifier
    }

    /// The signature cache (and its verification counter).
    pub fn signature_cache(&self) -> &Arc<SignatureCache> {
        self.verifier.cache()
    }

    /// The genesis.
    pub fn genesis(&self) -> &Genesis {
        &self.genesis
    }

    /// The genesis hash (network id).
    pub fn genesis_hash(&self) -> Hash {
        self.genesis_hash
    }

    /// The consensus rules.
    pub fn rules(&self) -> &C {
        &self.rules
    }

    /// Index of the tip (the genesis block is 0).
    pub fn height(&self) -> u64 {
        (self.base + self.best.len() as u64).saturating_sub(1)
    }

    fn tip_entry(&self) -> &Entry<C::State> {
        // `best` always holds the genesis block and every hash in it has an entry.
        match self.best.back().and_then(|h| self.entries.get(h)) {
            Some(e) => e,
            None => unreachable!("the best chain always holds the genesis block"),
        }
    }

    /// The tip block.
    pub fn tip(&self) -> &Block {
        &self.tip_entry().block
    }

    /// Hash of the tip block.
    pub fn tip_hash(&self) -> Hash {
        self.best.back().copied().unwrap_or(Hash::ZERO)
    }

    /// Hash of the best-chain block at `index`, if it is in the window held in memory (at or
    /// above [`Chain::window_start`]).
    pub fn best_hash_at(&self, index: u64) -> Option<Hash> {
        let offset = usize::try_from(index.checked_sub(self.base)?).ok()?;
        self.best.get(offset).copied()
    }

    /// The lowest index of a best-chain block held in memory. Blocks below it were forgotten
    /// after the owner stored them ([`Chain::mark_stored`]); it is 0 until then.
    pub fn window_start(&self) -> u64 {
        self.base
    }

    /// Hash of the genesis block (index 0), known even once the block left the window.
    pub fn genesis_block_hash(&self) -> Hash {
        self.origin
    }

    /// The best-chain block at `index`, if held in memory with its transactions: at or above
    /// [`Chain::window_start`], and not yet stored by the owner or the tip (see
    /// [`Chain::mark_stored`]; [`Chain::header_at`] has every header of the window).
    pub fn block_at(&self, index: u64) -> Option<&Block> {
        self.best_hash_at(index)
            .and_then(|h| self.entries.get(&h))
            .filter(|e| e.body)
            .map(|e| &e.block)
    }

    /// A held block (best or side chain) by hash, if its transactions are held (see
    /// [`Chain::block_at`]).
    pub fn block_by_hash(&self, hash: &Hash) -> Option<&Block> {
        self.entries.get(hash).filter(|e| e.body).map(|e| &e.block)
    }

    /// The header of the best-chain block at `index`, if it is in the window
    /// ([`Chain::window_start`] and up).
    pub fn header_at(&self, index: u64) -> Option<&BlockHeader> {
        self.best_hash_at(index)
            .and_then(|h| self.entries.get(&h))
            .map(|e| &e.block.header)
    }

    /// The header and signature of the best-chain block at `index`, if it is in the window
    /// (like [`Chain::header_at`]): what a `headers` answer carries.
    pub fn signed_header_at(&self, index: u64) -> Option<SignedHeader> {
        self.best_hash_at(index)
            .and_then(|h| self.entries.get(&h))
            .map(|e| SignedHeader::from(&e.block))
    }

    /// The header of a held block (best or side chain), with or without its transactions.
    pub fn header_by_hash(&self, hash: &Hash) -> Option<&BlockHeader> {
        self.entries.get(hash).map(|e| &e.block.header)
    }

    /// The accounts block `hash` changed (see [`BlockUndo::accounts`]), if the chain still
    /// holds its undo data: the blocks of the best chain's last `k`, and those a fork switch
    /// just applied.
    pub fn block_accounts(&self, hash: &Hash) -> Option<Vec<PublicKey>> {
        self.entries
            .get(hash)
            .and_then(|e| e.undo.as_ref())
            .map(BlockUndo::accounts)
    }

    /// Number of held blocks whose transactions are held (side blocks, and best blocks the
    /// owner has not stored yet or the tip): what the chain's memory follows.
    pub fn bodies_held(&self) -> usize {
        self.entries.values().filter(|e| e.body).count()
    }

    /// True iff `hash` is on the best chain.
    pub fn is_on_best_chain(&self, hash: &Hash) -> bool {
        self.entries
            .get(hash)
            .is_some_and(|e| self.best_hash_at(e.block.header.index) == Some(*hash))
    }

    /// True iff the block is held (best or side chain).
    pub fn contains(&self, hash: &Hash) -> bool {
        self.entries.contains_key(hash)
    }

    /// The ledger state at the tip.
    pub fn state(&self) -> &LedgerState {
        &self.state
    }

    /// Number of side-chain blocks held.
    pub fn side_chain_len(&self) -> usize {
        self.side.len()
    }

    /// The leader of `slot` for a block that would extend the tip.
    pub fn leader_for_next(&self, slot: u64) -> Option<PublicKey> {
        let st = self.state_for_next(slot);
        self.rules.slot_leader(&st, slot)
    }

    /// The consensus state a block in `slot` extending the tip is judged by: what a praos
    /// producer evaluates its VRF against.
    pub fn state_for_next(&self, slot: u64) -> C::State {
        let tip = self.tip_entry();
        self.slot_state(&self.tip_hash(), tip, slot)
    }

    fn epochs(&self) -> MutexGuard<'_, EpochStates<C::State>> {
        // The cache is only ever pushed to or popped from whole; a panic elsewhere cannot
        // leave it inconsistent.
        self.epochs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The consensus state a child of `parent` in `slot` is judged by, advanced at most once
    /// per (parent, epoch): [`ConsensusRules::state_for_slot`] depends on the slot only through
    /// [`ConsensusRules::epoch_of`].
    fn slot_state(&self, parent: &Hash, parent_entry: &Entry<C::State>, slot: u64) -> C::State {
        let key = (*parent, self.rules.epoch_of(slot));
        if let Some((_, st)) = self.epochs().iter().find(|(k, _)| *k == key) {
            return st.clone();
        }
        let st = self.rules.state_for_slot_with_keys(
            &parent_entry.cstate,
            slot,
            &parent_entry.stakes,
            &parent_entry.vrf_keys,
        );
        let mut cache = self.epochs();
        if cache.len() >= EPOCH_STATE_CACHE {
            cache.pop_front();
        }
        cache.push_back((key, st.clone()));
        st
    }

    /// Recorded equivocations, in the order they were detected (at most [`MAX_EQUIVOCATIONS`]).
    pub fn equivocations(&self) -> &[Equivocation] {
        &self.equivocations
    }

    /// How many equivocations this chain detected, including those not recorded because
    /// [`MAX_EQUIVOCATIONS`] were recorded already.
    pub fn equivocations_seen(&self) -> u64 {
        self.equivocations_seen
    }

    /// The owner says the best chain up to `index`, ending in block `hash`, is durably stored
    /// (it can read those blocks back). If `hash` is still the best block at `index`, the
    /// whole best chain up to it is the stored one (each block commits to its parent): best
    /// blocks at or below `index` that are more than `k` below the tip are forgotten, and the
    /// others below the tip keep their header, consensus state and undo data but not their
    /// transactions (rolling them back needs only the undo data). A fork switch lowers the mark
    /// to the fork point: the owner has not stored the new branch yet.
    pub fn mark_stored(&mut self, index: u64, hash: &Hash) {
        if self.stored.is_none_or(|s| index > s) && self.best_hash_at(index) == Some(*hash) {
            self.stored = Some(index);
            self.prune();
        }
    }

    /// Block rewards minted on the best chain.
    pub fn total_minted(&self) -> u128 {
        self.state.minted()
    }

    /// Block locator: hashes of the tip, tip-1, tip-2, tip-4, tip-8, ... and the genesis block,
    /// so that a peer can find our fork point in O(log n) hashes. Steps below
    /// [`Chain::window_start`] are left out (the owner adds them from its storage).
    pub fn locator(&self) -> Vec<Hash> {
        let h = self.height();
        let mut out = vec![self.tip_hash()];
        let mut step = 1u64;
        while step <= h {
            out.extend(self.best_hash_at(h - step));
            step = step.saturating_mul(2);
        }
        if h > 0 && out.last() != Some(&self.origin) {
            out.push(self.origin);
        }
        out
    }

    /// Index of the first hash of `locator` that is on our best chain (the fork point with the
    /// peer that sent it), or `None` if none is (another network). Only the window held in
    /// memory is searched (see [`Chain::window_start`]).
    pub fn find_fork_point(&self, locator: &[Hash]) -> Option<u64> {
        locator
            .iter()
            .find(|h| self.is_on_best_chain(h))
            .and_then(|h| self.entries.get(h))
            .map(|e| e.block.header.index)
    }

    /// Picks, in order, the candidates that apply on the tip state one after another, within the
    /// genesis limits on transaction count and block bytes. Candidates that do not apply (or do
    /// not fit) are skipped. Fees are not credited during selection, so a producer's own
    /// transactions cannot spend fees of the same block.
    pub fn select_transactions<'a>(
        &self,
        candidates: impl IntoIterator<Item = &'a Transaction>,
    ) -> Vec<Transaction> {
        let max_txs = self.genesis.max_block_txs as usize;
        let max_bytes = usize::try_from(self.genesis.max_block_bytes).unwrap_or(usize::MAX);
        let mut bytes = self.genesis.header_len() + 64 + 4;
        let mut scratch = self.state.clone();
        let mut out = Vec::new();
        for tx in candidates {
            if out.len() >= max_txs {
                break;
            }
            let len = tx.encoded_len();
            if bytes.saturating_add(len) > max_bytes {
                continue;
            }
            let sigs = Sigs::Cached(self.verifier.cache());
            if scratch
                .apply_tx_without_fee(tx, &self.genesis_hash, sigs)
                .is_ok()
            {
                bytes += len;
                out.push(tx.clone());
            }
        }
        out
    }

    /// For a block whose parent is not held: a parent at the index the block claims would be
    /// more than `k` below the tip, so the block can never be adopted (whether the parent is an
    /// old best block that left the window, or unknown). Refused like a block on a known old
    /// parent, rather than reported as an unknown parent (which would make the owner sync).
    fn check_claimed_depth(&self, block: &Block) -> Result<(), ChainError> {
        let depth = self
            .height()
            .saturating_sub(block.header.index.saturating_sub(1));
        if depth > self.genesis.k {
            return Err(ChainError::ForkTooDeep {
                depth,
                k: self.genesis.k,
            });
        }
        Ok(())
    }

    /// The checks against the parent: it is at most `k` below the tip (a block on an older
    /// parent could only start a fork deeper than `k`, which is never adopted: refused before
    /// any consensus work), then index, slot order and clock.
    fn check_parent(&self, block: &Block, parent: &Block, now_ms: u64) -> Result<(), ChainError> {
        let depth = self.height().saturating_sub(parent.header.index);
        if depth > self.genesis.k {
            return Err(ChainError::ForkTooDeep {
                depth,
                k: self.genesis.k,
            });
        }
        let h = &block.header;
        let g = &self.genesis;
        let expected = parent.header.index.saturating_add(1);
        if h.index != expected {
            return Err(BlockError::BadIndex {
                expected,
                got: h.index,
            }
            .into());
        }
        if h.slot <= parent.header.slot {
            return Err(BlockError::SlotNotAfterParent {
                parent_slot: parent.header.slot,
                slot: h.slot,
            }
            .into());
        }
        let slot_start_ms = h
            .slot
            .saturating_mul(g.slot_duration_ms)
            .saturating_add(g.genesis_time);
        if slot_start_ms > now_ms.saturating_add(g.max_clock_skew_ms) {
            return Err(BlockError::SlotInFuture {
                slot: h.slot,
                slot_start_ms,
                now_ms,
                max_skew_ms: g.max_clock_skew_ms,
            }
            .into());
        }
        Ok(())
    }

    /// The checks that need neither the parent nor the state: version, difficulty and proof of
    /// work, the transaction count and size limits, the transaction root, and the producer's
    /// signature. A block that fails one of them is invalid on every chain, so a node can refuse
    /// it (and blame its sender) before it knows the block's parent. Every block that
    /// [`Chain::add_block`] accepts passes these checks.
    pub fn check_detached(&self, block: &Block) -> Result<(), BlockError> {
        self.verifier.check_detached(block)
    }

    /// The cheap stateful checks, to run before the stateless stage spends time on a block:
    /// known already, parent known and at most `k` below the tip, index, slot, clock, and the
    /// producer leads the slot. [`Chain::add_block`] checks them again (the chain may have
    /// moved in between).
    pub fn screen(&self, block: &Block, now_ms: u64) -> Result<Screened, ChainError> {
        let hash = block.hash();
        if self.entries.contains_key(&hash) {
            return Ok(Screened::Known);
        }
        let parent_hash = block.header.prev_hash;
        let Some(parent) = self.entries.get(&parent_hash) else {
            self.check_claimed_depth(block)?;
            return Err(ChainError::UnknownParent { hash: parent_hash });
        };
        self.check_parent(block, &parent.block, now_ms)?;
        self.check_leader(block, &parent_hash, parent)?;
        self.check_not_third_in_slot(block)?;
        Ok(Screened::Fresh)
    }

    /// Both stages on this thread: [`Chain::screen`], the stateless stage
    /// ([`BlockVerifier::verify_block`]), then [`Chain::add_block`].
    pub fn verify_and_add(&mut self, block: Block, now_ms: u64) -> Result<AddOutcome, ChainError> {
        if self.screen(&block, now_ms)? == Screened::Known {
            return Ok(AddOutcome::AlreadyKnown);
        }
        let verified = self.verifier.verify_block(block)?;
        self.add_block(verified, now_ms)
    }

    /// The consensus state `block` is judged by, after checking its producer leads the slot.
    fn check_leader(
        &self,
        block: &Block,
        parent_hash: &Hash,
        parent: &Entry<C::State>,
    ) -> Result<C::State, BlockError> {
        let slot = block.header.slot;
        let st = self.slot_state(parent_hash, parent, slot);
        self.rules.check_producer(&st, &block.header)?;
        Ok(st)
    }

    /// Walks from `hash` back to the best chain. Returns the fork point's index and the side
    /// branch from the fork point's child up to `hash`, ascending (empty if `hash` is on the best
    /// chain).
    fn branch_to(&self, hash: &Hash) -> Option<(u64, Vec<Hash>)> {
        let mut branch = Vec::new();
        let mut cur = *hash;
        // Bounded: every step goes one index down, and side blocks are at most MAX_SIDE_BLOCKS.
        for _ in 0..=MAX_SIDE_BLOCKS + 1 {
            let e = self.entries.get(&cur)?;
            if self.is_on_best_chain(&cur) {
                branch.reverse();
                return Some((e.block.header.index, branch));
            }
            branch.push(cur);
            cur = e.block.header.prev_hash;
        }
        None
    }

    /// The ledger state after the held block `hash`: the tip state rolled back to the fork
    /// point, then rolled forward along the side branch.
    fn state_after(&self, hash: &Hash) -> Result<LedgerState, ChainError> {
        if *hash == self.tip_hash() {
            return Ok(self.state.clone());
        }
        let (fork, branch) = self
            .branch_to(hash)
            .ok_or(ChainError::UnknownParent { hash: *hash })?;
        let depth = self.height() - fork;
        let mut st = self.state.clone();
        for i in (fork + 1..=self.height()).rev() {
            let undo = self
                .best_hash_at(i)
                .and_then(|h| self.entries.get(&h))
                .and_then(|e| e.undo.as_ref())
                .ok_or(ChainError::ForkTooDeep {
                    depth,
                    k: self.genesis.k,
                })?;
            st.rollback_ref(undo);
        }
        for h in &branch {
            // Side blocks always hold their transactions (only best blocks drop them).
            let e = self
                .entries
                .get(h)
                .filter(|e| e.body)
                .ok_or(ChainError::UnknownParent { hash: *h })?;
            st.apply_block_with(
                &e.block,
                h,
                &self.genesis_hash,
                self.genesis.block_reward,
                Sigs::Verified,
            )?;
        }
        Ok(st)
    }

    /// The stateful stage: adds a block that passed the stateless stage (DESIGN §5). It extends
    /// the tip, is held as a side chain, or completes a longer fork that becomes the best chain
    /// (never rolling back more than `k` blocks; on equal length the current chain is kept).
    /// Checks the parent (known, at most `k` below the tip), index, slot, clock (`now_ms` is
    /// the wall clock for "slot not in the future"), the leader, and applies the transactions;
    /// no signature is verified here.
    pub fn add_block(
        &mut self,
        block: VerifiedBlock,
        now_ms: u64,
    ) -> Result<AddOutcome, ChainError> {
        if block.genesis_hash() != self.genesis_hash {
            return Err(ChainError::OtherNetwork {
                expected: self.genesis_hash,
                got: block.genesis_hash(),
            });
        }
        let hash = block.hash();
        if self.entries.contains_key(&hash) {
            return Ok(AddOutcome::AlreadyKnown);
        }
        let parent_hash = block.block().header.prev_hash;
        let Some(parent) = self.entries.get(&parent_hash) else {
            self.check_claimed_depth(block.block())?;
            return Err(ChainError::UnknownParent { hash: parent_hash });
        };
        self.check_parent(block.block(), &parent.block, now_ms)?;
        let mut cstate = self.check_leader(block.block(), &parent_hash, parent)?;
        self.check_not_third_in_slot(block.block())?;
        let parent_stakes = Arc::clone(&parent.stakes);
        let parent_keys = Arc::clone(&parent.vrf_keys);
        let extends_tip = parent_hash == self.tip_hash();
        let slot_key = (block.block().header.slot, block.block().header.producer);
        let first_in_slot = self.by_slot.get(&slot_key).map(|s| s.first);

        if extends_tip && first_in_slot.is_none() {
            let undo = self
                .state
                .apply_verified_block(&block, self.genesis.block_reward)?;
            if let Err(e) = self.write_checked_version(&block.block().header, &undo) {
                self.state.rollback(undo);
                return Err(e);
            }
            self.rules
                .on_header(&mut cstate, &block.block().header, &hash);
            let stakes = shared_stakes(parent_stakes, self.state.stakes());
            let vrf_keys = shared_stakes(parent_keys, self.state.vrf_keys());
            self.by_slot.insert(
                slot_key,
                SlotBlocks {
                    first: hash,
                    second: None,
                },
            );
            self.entries.insert(
                hash,
                Entry {
                    block: block.into_block(),
                    body: true,
                    cstate,
                    undo: Some(undo),
                    stakes,
                    vrf_keys,
                },
            );
            self.best.push_back(hash);
            self.prune();
            return Ok(AddOutcome::Extended);
        }

        // Not a plain extension: a side-chain block, or an equivocating one.
        let (fork, _) = self
            .branch_to(&parent_hash)
            .ok_or(ChainError::UnknownParent { hash: parent_hash })?;
        let depth = self.height() - fork;
        if depth > self.genesis.k {
            return Err(ChainError::ForkTooDeep {
                depth,
                k: self.genesis.k,
            });
        }
        if self.side.len() >= MAX_SIDE_BLOCKS {
            return Err(ChainError::SideChainFull {
                max: MAX_SIDE_BLOCKS,
            });
        }
        // Only a signed block from the slot leader gets this far, so outsiders cannot make us
        // rebuild branch states.
        let mut scratch = self.state_after(&parent_hash)?;
        scratch.apply_verified_block(&block, self.genesis.block_reward)?;
        let block = block.into_block();
        self.rules.on_header(&mut cstate, &block.header, &hash);
        let stakes = shared_stakes(parent_stakes, scratch.stakes());
        let vrf_keys = shared_stakes(parent_keys, scratch.vrf_keys());

        let equivocating = match first_in_slot {
            Some(first) => {
                self.record_equivocation(first, &block, hash);
                if let Some(held) = self.by_slot.get_mut(&slot_key) {
                    held.second = Some(hash);
                }
                true
            }
            None => {
                self.by_slot.insert(
                    slot_key,
                    SlotBlocks {
                        first: hash,
                        second: None,
                    },
                );
                false
            }
        };
        let index = block.header.index;
        self.entries.insert(
            hash,
            Entry {
                block,
                body: true,
                cstate,
                undo: None,
                stakes,
                vrf_keys,
            },
        );
        self.side.insert(hash);
        if equivocating || index < self.height() {
            return Ok(AddOutcome::SideChain);
        }
        if index == self.height() {
            // Equal length: keep ours, unless the rules prefer the candidate among blocks for
            // the same slot at the tip (praos: the lower leader VRF value), so that every node
            // converges on the same tip whichever block it saw first.
            let tip = &self.tip().header;
            let same_slot = tip.slot == self.entries[&hash].block.header.slot;
            if !(same_slot
                && self
                    .rules
                    .prefer_tip(&self.entries[&hash].block.header, tip)
                    .is_lt())
            {
                return Ok(AddOutcome::SideChain);
            }
        }
        self.switch_to(&hash)
    }

    /// Refuses a block for a (slot, producer) that has two blocks held already: the evidence
    /// of the first two is kept, and storing more would let one leader fill the side store.
    fn check_not_third_in_slot(&self, block: &Block) -> Result<(), ChainError> {
        let h = &block.header;
        match self.by_slot.get(&(h.slot, h.producer)) {
            Some(SlotBlocks {
                second: Some(_), ..
            }) => Err(ChainError::Equivocation {
                slot: h.slot,
                producer: h.producer,
            }),
            _ => Ok(()),
        }
    }

    /// Keeps the evidence that the producer of `second` (hash `second_hash`) also signed the
    /// held block `first` for the same slot.
    fn record_equivocation(&mut self, first: Hash, second: &Block, second_hash: Hash) {
        let Some(first_block) = self.entries.get(&first).map(|e| &e.block) else {
            return;
        };
        self.equivocations_seen = self.equivocations_seen.saturating_add(1);
        if self.equivocations.len() < MAX_EQUIVOCATIONS {
            self.equivocations.push(Equivocation {
                slot: second.header.slot,
                producer: second.header.producer,
                first,
                second: second_hash,
                first_header: first_block.header.clone(),
                first_signature: first_block.signature,
                second_header: second.header.clone(),
                second_signature: second.signature,
            });
        }
    }

    /// Makes the held side block `hash` the tip: rolls back to the fork point, applies the
    /// branch. If a branch block fails (it was validated on arrival, so this means a bug or a
    /// corrupted store), the original chain is restored and the bad block dropped.
    fn switch_to(&mut self, hash: &Hash) -> Result<AddOutcome, ChainError> {
        let (fork, branch) = self
            .branch_to(hash)
            .ok_or(ChainError::UnknownParent { hash: *hash })?;
        let depth = self.height() - fork;
        if depth > self.genesis.k {
            return Err(ChainError::ForkTooDeep {
                depth,
                k: self.genesis.k,
            });
        }
        // Every block to roll back must be held and still have undo data; check before changing
        // anything. (The window holds every best block from `height - k` up, so this holds.)
        if fork < self.base {
            return Err(ChainError::ForkTooDeep {
                depth,
                k: self.genesis.k,
            });
        }
        let old: Vec<Hash> = (fork + 1..=self.height())
            .filter_map(|i| self.best_hash_at(i))
            .collect();
        if old
            .iter()
            .any(|h| self.entries.get(h).is_none_or(|e| e.undo.is_none()))
        {
            return Err(ChainError::ForkTooDeep {
                depth,
                k: self.genesis.k,
            });
        }
        // The new branch is not in the owner's storage yet.
        self.stored = self.stored.map(|s| s.min(fork));
        // What re-applies each old block if the branch fails, without its transactions (the
        // chain may not hold them any more), newest first.
        let mut redo: Vec<BlockRedo> = Vec::with_capacity(old.len());
        for h in old.iter().rev() {
            if let Some(e) = self.entries.get(h) {
                if let Some(undo) = &e.undo {
                    redo.push(self.state.redo_of(undo));
                    self.state.rollback_ref(undo);
                }
            }
            self.best.pop_back();
            self.side.insert(*h);
        }
        redo.reverse();
        if let Err(e) = self.tree.rollback(fork) {
            // Nothing of the tree changed but what its rollback wrote: bring the old versions
            // back with the old blocks.
            self.restore_best(&[], &old, &redo);
            return Err(tree_error(e));
        }
        let mut applied = Vec::with_capacity(branch.len());
        for h in &branch {
            let r = match self.entries.get(h).filter(|e| e.body) {
                Some(e) => self
                    .state
                    .apply_block_with(
                        &e.block,
                        h,
                        &self.genesis_hash,
                        self.genesis.block_reward,
                        Sigs::Verified,
                    )
                    .map_err(ChainError::from),
                None => Err(ChainError::UnknownParent { hash: *h }),
            };
            // The branch block's header must commit the state after it.
            let r = match r {
                Ok(undo) => {
                    let checked = match self.entries.get(h) {
                        Some(e) => {
                            let header = e.block.header.clone();
                            self.write_checked_version(&header, &undo)
                        }
                        None => Err(ChainError::UnknownParent { hash: *h }),
                    };
                    match checked {
                        Ok(()) => Ok(undo),
                        Err(e) => {
                            self.state.rollback(undo);
                            Err(e)
                        }
                    }
                }
                Err(e) => Err(e),
            };
            match r {
                Ok(undo) => {
                    if let Some(e) = self.entries.get_mut(h) {
                        e.undo = Some(undo);
                    }
                    self.best.push_back(*h);
                    self.side.remove(h);
                    applied.push(*h);
                }
                Err(err) => {
                    self.restore_best(&applied, &old, &redo);
                    self.remove_with_descendants(h);
                    return Err(err);
                }
            }
        }
        // Old blocks without their transactions cannot be judged again as side blocks: they
        // leave the chain (the owner stored them; a branch built on them is synced again).
        for h in &old {
            if let Some(e) = self.entries.get_mut(h) {
                e.undo = None;
                if !e.body {
                    self.forget_side(h);
                }
            }
        }
        let rolled_back = old;
        self.prune();
        Ok(AddOutcome::Reorg {
            rolled_back,
            applied,
        })
    }

    /// Undoes the partly applied branch `applied` and re-applies the previous best blocks `old`
    /// from `redo` (one per old block, ascending; their undo data was kept), with their state
    /// tree versions (recomputed from their undo data: the same roots, the same nodes).
    fn restore_best(&mut self, applied: &[Hash], old: &[Hash], redo: &[BlockRedo]) {
        for h in applied.iter().rev() {
            if let Some(e) = self.entries.get_mut(h) {
                if let Some(undo) = e.undo.take() {
                    self.state.rollback(undo);
                }
            }
            self.best.pop_back();
            self.side.insert(*h);
        }
        let fork = self.height();
        // A memory store cannot fail; a rollback to the fork point only deletes.
        let _ = self.tree.rollback(fork);
        // The state is back at the fork point, where these were taken in reverse.
        for (h, r) in old.iter().zip(redo) {
            self.state.redo(r);
            self.best.push_back(*h);
            self.side.remove(h);
            let index = self.height();
            if let Some(undo) = self.entries.get(h).and_then(|e| e.undo.clone()) {
                let _ = self.write_version(index, &undo);
            }
        }
    }

    /// Drops the side block `hash` and every held block built on it.
    fn remove_with_descendants(&mut self, hash: &Hash) {
        let mut doomed = vec![*hash];
        let mut i = 0;
        while i < doomed.len() {
            let h = doomed[i];
            doomed.extend(
                self.side
                    .iter()
                    .filter(|s| {
                        self.entries
                            .get(s)
                            .is_some_and(|e| e.block.header.prev_hash == h)
                    })
                    .copied(),
            );
            i += 1;
        }
        for h in doomed {
            self.forget_side(&h);
        }
    }

    fn forget_side(&mut self, hash: &Hash) {
        if self.side.remove(hash) {
            if let Some(e) = self.entries.remove(hash) {
                let key = (e.block.header.slot, e.block.header.producer);
                if let Some(held) = self.by_slot.get_mut(&key) {
                    if held.second == Some(*hash) {
                        held.second = None;
                    } else if held.first == *hash {
                        match held.second.take() {
                            Some(second) => held.first = second,
                            None => {
                                self.by_slot.remove(&key);
                            }
                        }
                    }
                }
            }
        }
    }

    /// Bounds memory: side blocks at index <= height - k can never be adopted (their fork point
    /// is deeper than k), and undo data is needed only for the last k best blocks. Best blocks
    /// below `height - k` that the owner stored are forgotten, with their (slot, producer)
    /// records: every block the chain can still accept has a slot after the block at
    /// `height - k` (its parent is at or above it), so no equivocation with them can arrive.
    fn prune(&mut self) {
        let floor = self.height().saturating_sub(self.genesis.k);
        // No fork switch rolls back below `floor`: older tree versions are never needed. A
        // memory store cannot fail.
        let _ = self.tree.prune(floor);
        let stale: Vec<Hash> = self
            .side
            .iter()
            .filter(|h| {
                self.entries
                    .get(h)
                    .is_none_or(|e| e.block.header.index <= floor)
            })
            .copied()
            .collect();
        for h in stale {
            self.forget_side(&h);
        }
        if let Some(h) = self.best_hash_at(floor) {
            if let Some(e) = self.entries.get_mut(&h) {
                e.undo = None;
            }
        }
        self.drop_stored_bodies();
        let mut forgot = false;
        while self.base < floor && self.stored.is_some_and(|s| self.base <= s) {
            if let Some(h) = self.best.pop_front() {
                self.entries.remove(&h);
            }
            self.base += 1;
            forgot = true;
        }
        if forgot {
            if let Some(floor_slot) = self
                .best_hash_at(floor)
                .and_then(|h| self.entries.get(&h))
                .map(|e| e.block.header.slot)
            {
                self.by_slot.retain(|(slot, _), _| *slot > floor_slot);
            }
        }
    }
}

impl<C: ConsensusRules> Chain<C> {
    /// Drops the transactions of best blocks the owner stored, except the tip's: the bodies the
    /// window holds are those of blocks not yet durable (and the tip), not `k` blocks' worth.
    /// Best blocks hold their transactions on a suffix of the best chain (bodies are dropped
    /// from the bottom up, and a fork switch replaces the blocks above its fork point with
    /// blocks that hold theirs), so the walk down stops at the first block without them.
    fn drop_stored_bodies(&mut self) {
        let Some(stored) = self.stored else { return };
        let top = stored.min(self.height().saturating_sub(1));
        let mut i = top;
        while i >= self.base && i > 0 {
            let Some(h) = self.best_hash_at(i) else { break };
            match self.entries.get_mut(&h) {
                Some(e) if e.body => {
                    e.block.transactions = Vec::new();
                    e.body = false;
                }
                _ => break,
            }
            i -= 1;
        }
    }
}

/// A block with the only header field the ledger state reads (the producer, credited the fees
/// and the reward) and `transactions`, to compute the state after a block not built yet.
pub(crate) fn root_probe(producer: &PublicKey, transactions: &[Transaction]) -> Block {
    Block {
        header: BlockHeader {
            version: 0,
            index: 0,
            slot: 0,
            prev_hash: Hash::ZERO,
            tx_root: Hash::ZERO,
            state_root: Hash::ZERO,
            producer: *producer,
            timestamp: 0,
            difficulty: 0,
            vrf: None,
            ocert: None,
            nonce: 0,
        },
        signature: Signature::default(),
        transactions: transactions.to_vec(),
    }
}

/// The parent's map (stakes, VRF keys) if the block left it unchanged (most blocks), else a
/// new one.
fn shared_stakes<T: PartialEq + Clone>(parent: Arc<T>, after: &T) -> Arc<T> {
    if *parent == *after {
        parent
    } else {
        Arc::new(after.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::KeyPair;
    use crate::testing::RoundRobin;

    #[test]
    fn undo_data_is_kept_only_for_the_last_k_blocks() {
        let key = KeyPair::from_seed([1u8; 32]);
        let mut g = Genesis::devnet("solo", key.public(), 1_000_000);
        g.k = 2;
        g.difficulty = 1;
        let gh = g.hash();
        let mut c = Chain::new(g.clone(), RoundRobin).unwrap();
        for slot in 1..=5u64 {
            let root = c
                .state_root_after(&c.tip_hash(), &key.public(), &[])
                .unwrap();
            let b = Block::produce(
                &c.tip().header,
                slot,
                0,
                1,
                vec![],
                root,
                &key,
                &gh,
                1 << 20,
            )
            .unwrap();
            assert_eq!(c.verify_and_add(b, u64::MAX), Ok(AddOutcome::Extended));
        }
        let with_undo: Vec<u64> = c
            .best
            .iter()
            .filter_map(|h| c.entries.get(h))
            .filter(|e| e.undo.is_some())
            .map(|e| e.block.header.index)
            .collect();
        assert_eq!(with_undo, vec![4, 5]);
        // Stakes never changed, so every entry shares the genesis stake map.
        let first = &c.entries[&c.best[0]].stakes;
        assert!(c
            .best
            .iter()
            .all(|h| Arc::ptr_eq(&c.entries[h].stakes, first)));
    }

    /// A two-stakeholder genesis (keys from seeds 1 and 2, round robin) for the tests below.
    fn two_stakeholders() -> (Genesis, [KeyPair; 2]) {
        let keys = [KeyPair::from_seed([1u8; 32]), KeyPair::from_seed([2u8; 32])];
        let mut g = Genesis::devnet("alice", keys[0].public(), 0);
        g.k = 5;
        g.difficulty = 0;
        g.initial_stakeholders
            .push(crate::genesis::InitialStakeholder {
                id: "bob".into(),
                public_key: keys[1].public(),
                stake: 1_000,
                vrf_key: None,
            });
        (g, keys)
    }

    fn produce(
        g: &Genesis,
        keys: &[KeyPair; 2],
        parent: &Block,
        slot: u64,
        txs: Vec<Transaction>,
    ) -> Block {
        let leader = RoundRobin::leader(g, slot).unwrap();
        let key = keys.iter().find(|k| k.public() == leader).unwrap();
        let (root, st) = crate::testing::root_on(g, &parent.header, &leader, &txs).unwrap();
        let b = Block::produce(
            &parent.header,
            slot,
            0,
            g.difficulty,
            txs,
            root,
            key,
            &g.hash(),
            1 << 20,
        )
        .unwrap();
        crate::testing::remember_state(b.hash(), st);
        b
    }

    /// A branch block that fails when the switch applies it makes the chain restore the old
    /// best chain and state exactly, and drop the bad block with its descendants.
    ///
    /// Through `add_block` this cannot happen with intact entries: the new block's parent state
    /// is rebuilt along the same branch (`state_after`) before the switch, so a held block that
    /// no longer applies fails there first. It takes a bug or a corrupted entry between arrival
    /// and switch; simulated here by replacing a held block's transactions, then calling
    /// `switch_to` as `add_block` would.
    #[test]
    fn failed_fork_switch_restores_the_old_best_chain_and_drops_the_bad_branch_tail() {
        let (g, keys) = two_stakeholders();
        let gh = g.hash();
        let mut c = Chain::new(g.clone(), RoundRobin).unwrap();
        let pay = |nonce| Transaction::transfer(&keys[0], keys[1].public(), 5, 1, nonce, &gh);
        let a1 = produce(&g, &keys, &g.block(), 1, vec![pay(0)]);
        let a2 = produce(&g, &keys, &a1, 2, vec![pay(1)]);
        let a3 = produce(&g, &keys, &a2, 3, vec![]);
        for b in [&a1, &a2, &a3] {
            assert_eq!(
                c.verify_and_add(b.clone(), u64::MAX),
                Ok(AddOutcome::Extended)
            );
        }
        let b1 = produce(&g, &keys, &g.block(), 4, vec![pay(0)]);
        let b2 = produce(&g, &keys, &b1, 5, vec![]);
        let b3 = produce(&g, &keys, &b2, 6, vec![]);
        for b in [&b1, &b2, &b3] {
            assert_eq!(
                c.verify_and_add(b.clone(), u64::MAX),
                Ok(AddOutcome::SideChain)
            );
        }
        let state_before = c.state.clone();
        let best_before = c.best.clone();
        let by_slot_before = c.by_slot.clone();
        // Corrupt the held b2: a replay of nonce 0 fails once b1 is applied.
        c.entries.get_mut(&b2.hash()).unwrap().block.transactions = vec![pay(0)];

        let err = c.switch_to(&b3.hash()).unwrap_err();
        assert!(
            matches!(
                err,
                ChainError::Block(BlockError::Tx {
                    index: 0,
                    error: crate::error::TxError::BadNonce { .. },
                    ..
                })
            ),
            "{err:?}"
        );
        // The old best chain and its exact state are back, with undo data to roll back again.
        assert_eq!(c.best, best_before);
        assert_eq!(c.tip_hash(), a3.hash());
        assert_eq!(c.state, state_before);
        for a in [&a1, &a2, &a3] {
            assert!(c.entries[&a.hash()].undo.is_some());
        }
        // b1 (valid) is still a side block; b2 and its child b3 are gone everywhere.
        assert_eq!(c.side, HashSet::from([b1.hash()]));
        assert!(c.contains(&b1.hash()));
        assert!(!c.contains(&b2.hash()));
        assert!(!c.contains(&b3.hash()));
        let mut expected_by_slot = by_slot_before;
        expected_by_slot.retain(|_, h| h.first != b2.hash() && h.first != b3.hash());
        assert_eq!(c.by_slot, expected_by_slot);
        // The restored chain works: it extends, and the rolled-back undo data is usable.
        let a4 = produce(&g, &keys, &a3, 7, vec![pay(2)]);
        assert_eq!(c.verify_and_add(a4, u64::MAX), Ok(AddOutcome::Extended));
        let b2 = produce(&g, &keys, &b1, 8, vec![]);
        let b3 = produce(&g, &keys, &b2, 9, vec![]);
        let b4 = produce(&g, &keys, &b3, 10, vec![]);
        let b5 = produce(&g, &keys, &b4, 11, vec![]);
        for b in [b2, b3, b4] {
            assert_eq!(c.verify_and_add(b, u64::MAX), Ok(AddOutcome::SideChain));
        }
        assert!(matches!(
            c.verify_and_add(b5.clone(), u64::MAX),
            Ok(AddOutcome::Reorg { .. })
        ));
        let mut fresh = LedgerState::from_genesis(&g);
        for h in c.best.iter().skip(1) {
            fresh
                .apply_block(&c.entries[h].block, &gh, g.block_reward)
                .unwrap();
        }
        assert_eq!(c.state, fresh);
        assert_eq!(c.tip_hash(), b5.hash());
    }

    /// Best blocks the owner stored keep no transactions (the tip excepted), yet a fork switch
    /// that rolls them back, fails, and restores them gives back the exact old chain and state
    /// (from undo and redo data), and a later switch rolls them back for good: those without
    /// transactions leave the chain, and their hashes are reported for the owner to read.
    #[test]
    fn stored_best_blocks_drop_their_transactions_and_still_roll_back_and_restore() {
        let (g, keys) = two_stakeholders();
        let gh = g.hash();
        let mut c = Chain::new(g.clone(), RoundRobin).unwrap();
        let pay = |nonce| Transaction::transfer(&keys[0], keys[1].public(), 5, 1, nonce, &gh);
        let a1 = produce(&g, &keys, &g.block(), 1, vec![pay(0)]);
        let a2 = produce(&g, &keys, &a1, 2, vec![pay(1)]);
        let a3 = produce(&g, &keys, &a2, 3, vec![pay(2)]);
        for b in [&a1, &a2, &a3] {
            assert_eq!(
                c.verify_and_add(b.clone(), u64::MAX),
                Ok(AddOutcome::Extended)
            );
            c.mark_stored(b.header.index, &b.hash());
        }
        // Only the tip (and the genesis block, which has none) keeps its transactions.
        assert_eq!(c.block_by_hash(&a1.hash()), None);
        assert_eq!(c.block_at(2), None);
        assert_eq!(c.header_at(2), Some(&a2.header));
        assert_eq!(c.block_at(3), Some(&a3));
        assert_eq!(c.bodies_held(), 2);
        assert!(c.entries[&a1.hash()].block.transactions.is_empty());

        let b1 = produce(&g, &keys, &g.block(), 4, vec![pay(0)]);
        let b2 = produce(&g, &keys, &b1, 5, vec![]);
        let b3 = produce(&g, &keys, &b2, 6, vec![]);
        let b4 = produce(&g, &keys, &b3, 7, vec![]);
        for b in [&b1, &b2, &b3] {
            assert_eq!(
                c.verify_and_add(b.clone(), u64::MAX),
                Ok(AddOutcome::SideChain)
            );
        }
        c.entries.insert(b4.hash(), {
            let mut e = c.entries[&b3.hash()].clone();
            e.block = b4.clone();
            e
        });
        c.side.insert(b4.hash());
        let state_before = c.state.clone();
        let best_before = c.best.clone();
        // A corrupted b2 (replays nonce 0 after b1) makes the switch to b4 fail half-way.
        let good_b2 = c.entries[&b2.hash()].block.clone();
        c.entries.get_mut(&b2.hash()).unwrap().block.transactions = vec![pay(0)];
        assert!(c.switch_to(&b4.hash()).is_err());
        assert_eq!(c.best, best_before);
        assert_eq!(c.state, state_before);
        for a in [&a1, &a2, &a3] {
            assert!(c.entries[&a.hash()].undo.is_some());
        }
        // The same branch, intact, wins: the old blocks roll back from their undo data alone.
        c.entries.get_mut(&b1.hash()).unwrap(); // b1 survived the failure
        let b2 = good_b2;
        let b3 = produce(&g, &keys, &b2, 8, vec![]);
        let b4 = produce(&g, &keys, &b3, 9, vec![]);
        assert_eq!(
            c.verify_and_add(b2.clone(), u64::MAX),
            Ok(AddOutcome::SideChain)
        );
        assert_eq!(
            c.verify_and_add(b3.clone(), u64::MAX),
            Ok(AddOutcome::SideChain)
        );
        assert_eq!(
            c.verify_and_add(b4.clone(), u64::MAX),
            Ok(AddOutcome::Reorg {
                rolled_back: vec![a1.hash(), a2.hash(), a3.hash()],
                applied: vec![b1.hash(), b2.hash(), b3.hash(), b4.hash()],
            })
        );
        let mut fresh = LedgerState::from_genesis(&g);
        for b in [&b1, &b2, &b3, &b4] {
            fresh.apply_block(b, &gh, g.block_reward).unwrap();
        }
        assert_eq!(c.state, fresh);
        // Without their transactions a1 and a2 cannot be judged again: gone. a3 (the old tip)
        // kept them and is held as a side block.
        assert!(!c.contains(&a1.hash()) && !c.contains(&a2.hash()));
        assert_eq!(c.block_by_hash(&a3.hash()), Some(&a3));
        assert!(c.by_slot.keys().all(|(slot, _)| *slot != 1 && *slot != 2));
    }

    /// The same when the very first branch block fails: nothing of the branch was applied.
    #[test]
    fn failed_fork_switch_at_the_first_branch_block_drops_the_whole_branch() {
        let (g, keys) = two_stakeholders();
        let gh = g.hash();
        let mut c = Chain::new(g.clone(), RoundRobin).unwrap();
        let pay = |nonce| Transaction::transfer(&keys[0], keys[1].public(), 5, 1, nonce, &gh);
        let a1 = produce(&g, &keys, &g.block(), 1, vec![pay(0)]);
        assert_eq!(
            c.verify_and_add(a1.clone(), u64::MAX),
            Ok(AddOutcome::Extended)
        );
        let b1 = produce(&g, &keys, &g.block(), 2, vec![]);
        let b2 = produce(&g, &keys, &b1, 3, vec![]);
        assert_eq!(
            c.verify_and_add(b1.clone(), u64::MAX),
            Ok(AddOutcome::SideChain)
        );
        let state_before = c.state.clone();
        // Insert b2 as held without switching (as `add_block` does just before `switch_to`).
        let mut e = c.entries[&b1.hash()].clone();
        e.block = b2.clone();
        c.entries.insert(b2.hash(), e);
        c.side.insert(b2.hash());
        c.entries.get_mut(&b1.hash()).unwrap().block.transactions = vec![pay(1)];
        assert!(matches!(
            c.switch_to(&b2.hash()),
            Err(ChainError::Block(BlockError::Tx { .. }))
        ));
        assert_eq!(c.best, vec![g.block().hash(), a1.hash()]);
        assert_eq!(c.state, state_before);
        assert!(c.entries[&a1.hash()].undo.is_some());
        assert!(c.side.is_empty());
        assert!(!c.contains(&b1.hash()) && !c.contains(&b2.hash()));
        assert!(c.by_slot.values().all(|h| h.first == a1.hash()));
    }
}
