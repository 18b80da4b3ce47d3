//! The state commitment: an authenticated map from account to its state (balance, nonce,
//! bonded stake, stakeholder id), a compact binary sparse Merkle tree over Blake2b-256
//! (docs/state-commitment.md, which specifies it byte for byte).
//!
//! * Keys are [`account_key`]: Blake2b-256 of a domain tag and the account's public key, read
//!   as 256 bits, most significant first; bit `d` chooses the child at depth `d` (0 = left).
//! * The tree is the unique shape where an empty subtree hashes to 32 zero bytes, a subtree
//!   with one key is that key's leaf (wherever its path first becomes unique), and a subtree
//!   with two keys or more is an internal node. The root therefore depends on the set of
//!   (key, value) pairs only, never on the order or batching of updates.
//! * Leaves hash as `H(0x00 ‖ key ‖ H(0x02 ‖ value))`, internal nodes as `H(0x01 ‖ left ‖
//!   right)`: the one-byte tags keep the three kinds of preimage apart.
//! * [`StateTree::apply`] writes one version per block from the changed keys only (O(changed
//!   × log n) hashes and node reads); [`StateTree::prune`] drops versions older than a bound,
//!   [`StateTree::rollback`] drops the newest ones (a fork switch).
//! * [`StateTree::prove`] answers a key's value or its absence with a [`StateProof`], which
//!   [`verify`] checks against a root alone.
//!
//! ```
//! use pp_ledger::state_tree::{account_key, verify, AccountLeaf, MemoryStore, StateTree};
//! use pp_ledger::{Encode, KeyPair};
//!
//! let alice = account_key(&KeyPair::from_seed([1; 32]).public());
//! let bob = account_key(&KeyPair::from_seed([2; 32]).public());
//! let leaf = AccountLeaf { balance: 100, nonce: 0, stake: 0, stakeholder_id: None, vrf_key: None };
//! let mut tree = StateTree::new(MemoryStore::new());
//! let root = tree.apply(0, [(alice, Some(leaf.to_canonical_bytes()))]).unwrap();
//! let (value, proof) = tree.prove(0, &alice).unwrap();
//! assert_eq!(value, Some(leaf.to_canonical_bytes()));
//! assert!(verify(&root, &alice, value.as_deref(), &proof).is_ok());
//! let (none, absent) = tree.prove(0, &bob).unwrap();
//! assert!(none.is_none() && verify(&root, &bob, None, &absent).is_ok());
//! ```

mod proof;
mod store;
mod table;

pub use proof::{verify, ProofError, ProofTerminal, StateProof, MAX_PROOF_LEN};
pub use store::{
    Child, LeafValue, LoggedStore, MemoryStore, Node, NodeKey, NodeStore, StoreError, StoreOp,
    LEAF_VALUE_INLINE, NODE_KEY_LEN,
};

use crate::crypto::PublicKey;
use crate::encoding::{Decode, Decoder, Encode, Encoder};
use crate::error::DecodeError;
use crate::genesis::is_valid_stakeholder_id;
use crate::hash::Hash;
use crate::state::LedgerState;

/// Bits in a tree key (and the deepest a path can go).
pub const KEY_BITS: usize = 256;

/// Domain tag of [`account_key`].
pub const ACCOUNT_KEY_TAG: &[u8] = b"pp-ledger/state-key/v1";

/// Tag byte of a leaf hash.
pub const LEAF_TAG: u8 = 0x00;
/// Tag byte of an internal node hash.
pub const NODE_TAG: u8 = 0x01;
/// Tag byte of a value hash.
pub const VALUE_TAG: u8 = 0x02;

/// The tree key of an account: `Blake2b-256(ACCOUNT_KEY_TAG ‖ public key)` (with the tree's
/// Blake2b, `blake2b_simd`: a block's changed accounts are keyed on the update's path).
pub fn account_key(account: &PublicKey) -> Hash {
    let mut state = blake2b_params().to_state();
    state.update(ACCOUNT_KEY_TAG).update(&account.0);
    to_hash(&state.finalize())
}

/// Domain tag of the reserved (non-account) leaves, [`total_stake_key`]: distinct from
/// [`ACCOUNT_KEY_TAG`], so no account key can equal a reserved key unless Blake2b collides.
pub const META_KEY_TAG: &[u8] = b"pp-ledger/state-meta/v1";

/// Name of the total-stake leaf under [`META_KEY_TAG`].
pub const TOTAL_STAKE_NAME: &[u8] = b"total-stake";

/// Length of the total-stake leaf's value: the total as a big-endian u128.
pub const TOTAL_STAKE_VALUE_LEN: usize = 16;

/// The key of the total-stake leaf: `Blake2b-256(META_KEY_TAG ‖ "total-stake")`. Its value
/// ([`total_stake_value`]) is the sum of every bonded stake of the state, the `T` the leader
/// election divides by (docs/leader-election.md §2, "Proving SD_e to a light client").
pub fn total_stake_key() -> Hash {
    Hash::blake2b_parts(&[META_KEY_TAG, TOTAL_STAKE_NAME])
}

/// The total-stake leaf's value: `total` as 16 bytes big-endian.
pub fn total_stake_value(total: u128) -> Vec<u8> {
    total.to_be_bytes().to_vec()
}

/// Reads a total-stake leaf's value (exactly 16 bytes).
pub fn decode_total_stake(value: &[u8]) -> Result<u128, DecodeError> {
    let mut d = Decoder::new(value);
    let mut b = [0u8; TOTAL_STAKE_VALUE_LEN];
    b.copy_from_slice(d.take(TOTAL_STAKE_VALUE_LEN)?);
    d.finish()?;
    Ok(u128::from_be_bytes(b))
}

/// The leaf changes that bring a tree to `state` for `accounts` (each account's leaf, or its
/// removal if the state has none), and the total-stake leaf if `with_total`.
pub fn state_changes(
    state: &LedgerState,
    accounts: &[PublicKey],
    with_total: bool,
) -> Vec<(Hash, Option<Vec<u8>>)> {
    let mut out: Vec<(Hash, Option<Vec<u8>>)> = accounts
        .iter()
        .map(|a| {
            let leaf = AccountLeaf::from_state(state, a).map(|l| l.to_canonical_bytes());
            (account_key(a), leaf)
        })
        .collect();
    if with_total {
        out.push((
            total_stake_key(),
            Some(total_stake_value(state.total_stake())),
        ));
    }
    out
}

/// Every leaf of `state`: one per account the state knows ([`LedgerState::accounts`]) and the
/// total-stake leaf (docs/state-commitment.md §2).
pub fn state_entries(state: &LedgerState) -> Vec<(Hash, Option<Vec<u8>>)> {
    state_changes(state, &state.accounts(), true)
}

/// The root of the tree of `state`, built from nothing (O(accounts); the chain updates its
/// tree incrementally instead): what a block header's `state_root` commits to.
pub fn state_root(state: &LedgerState) -> Hash {
    let mut t = StateTree::new(MemoryStore::new());
    t.set_parallel(false);
    // A memory store cannot fail, and version 0 of an empty store is always accepted.
    t.apply(0, state_entries(state)).unwrap_or(Hash::ZERO)
}

/// `Blake2b-256(0x02 ‖ value)`.
pub fn value_hash(value: &[u8]) -> Hash {
    let mut state = blake2b_params().to_state();
    state.update(&[VALUE_TAG]).update(value);
    to_hash(&state.finalize())
}

/// `Blake2b-256(0x00 ‖ key ‖ value_hash)`.
pub fn leaf_hash(key: &Hash, value_hash: &Hash) -> Hash {
    tagged_pair(LEAF_TAG, key, value_hash)
}

/// `Blake2b-256(0x01 ‖ left ‖ right)`, an empty child being 32 zero bytes.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    tagged_pair(NODE_TAG, left, right)
}

/// `Blake2b-256(tag ‖ a ‖ b)`: one 65-byte block, hashed with `blake2b_simd` (its AVX2
/// compression where the CPU has it; the same function as [`Hash::blake2b`]).
fn tagged_pair(tag: u8, a: &Hash, b: &Hash) -> Hash {
    let mut input = [0u8; 65];
    input[0] = tag;
    input[1..33].copy_from_slice(&a.0);
    input[33..].copy_from_slice(&b.0);
    to_hash(&blake2b_params().hash(&input))
}

fn to_hash(h: &blake2b_simd::Hash) -> Hash {
    let mut out = [0u8; 32];
    out.copy_from_slice(h.as_bytes());
    Hash(out)
}

/// Bit `i` of `key`, most significant bit of byte 0 first (`true` = right).
pub fn key_bit(key: &Hash, i: usize) -> bool {
    key.0[i / 8] & (0x80 >> (i % 8)) != 0
}

/// What the tree holds for one account: its leaf value, in the canonical encoding
/// (docs/state-commitment.md §2): balance, nonce, bonded stake as `u64` BE, then `0x00`, or
/// `0x01` and the stakeholder id as a length-prefixed string, then `0x00`, or `0x01` and the
/// registered praos VRF key (32 bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountLeaf {
    /// Spendable balance.
    pub balance: u64,
    /// The next nonce the account must use.
    pub nonce: u64,
    /// Bonded stake.
    pub stake: u64,
    /// The stakeholder id bound to the account, if any.
    pub stakeholder_id: Option<String>,
    /// The praos VRF key registered for the account (bound with its id), if any.
    pub vrf_key: Option<PublicKey>,
}

impl AccountLeaf {
    /// The leaf of `account` in `state`, `None` if the state has no entry for it (no balance,
    /// nonce or stake entry and no id): such an account has no leaf in the tree.
    pub fn from_state(state: &LedgerState, account: &PublicKey) -> Option<AccountLeaf> {
        let id = state.stakeholder_id(account).map(str::to_owned);
        if !state.account_exists(account) && id.is_none() {
            return None;
        }
        Some(AccountLeaf {
            balance: state.balance(account),
            nonce: state.nonce(account),
            stake: state.stake(account),
            stakeholder_id: id,
            vrf_key: state.vrf_key(account),
        })
    }
}

impl Encode for AccountLeaf {
    fn encode(&self, e: &mut Encoder) {
        e.u64(self.balance).u64(self.nonce).u64(self.stake);
        match &self.stakeholder_id {
            None => e.u8(0),
            Some(id) => e.u8(1).str(id),
        };
        match &self.vrf_key {
            None => e.u8(0),
            Some(k) => e.u8(1).key(k),
        };
    }
}

impl Decode for AccountLeaf {
    fn decode(d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        let balance = d.u64()?;
        let nonce = d.u64()?;
        let stake = d.u64()?;
        let stakeholder_id = match d.u8()? {
            0 => None,
            1 => {
                let id = d.str()?;
                if !is_valid_stakeholder_id(&id) {
                    return Err(DecodeError::UnknownTag {
                        what: "stakeholder id (invalid)",
                        tag: 1,
                    });
                }
                Some(id)
            }
            tag => {
                return Err(DecodeError::UnknownTag {
                    what: "stakeholder id option",
                    tag,
                })
            }
        };
        let vrf_key = match d.u8()? {
            0 => None,
            1 => Some(d.key()?),
            tag => {
                return Err(DecodeError::UnknownTag {
                    what: "VRF key option",
                    tag,
                })
            }
        };
        Ok(AccountLeaf {
            balance,
            nonce,
            stake,
            stakeholder_id,
            vrf_key,
        })
    }
}

/// Why a tree operation failed. A failed [`StateTree::apply`] or [`StateTree::prove`] wrote
/// nothing; [`StateTree::prune`] and [`StateTree::rollback`] write as they go, so a disk
/// backend runs each in one transaction.
#[derive(Debug, thiserror::Error)]
pub enum StateTreeError {
    /// The backend failed.
    #[error("state tree store failed")]
    Store(#[source] StoreError),
    /// A node a stored version points to is missing (a corrupt store).
    #[error("state tree node missing at version {}, depth {}", .0.version, .0.depth)]
    MissingNode(NodeKey),
    /// A stored node cannot be where it is (an internal node 256 levels down, a leaf where a
    /// lone leaf's parent pointed): a corrupt store.
    #[error("state tree node at version {}, depth {} is corrupt", .0.version, .0.depth)]
    Corrupt(NodeKey),
    /// The version is not stored (pruned, rolled back, or never written).
    #[error("state tree version {0} is not stored")]
    UnknownVersion(u64),
    /// A new version must follow the latest stored one by exactly one.
    #[error("state tree version {version} does not follow the latest stored version {latest}")]
    VersionNotNext {
        /// The version asked for.
        version: u64,
        /// The latest stored version.
        latest: u64,
    },
}

impl From<StoreError> for StateTreeError {
    fn from(e: StoreError) -> Self {
        StateTreeError::Store(e)
    }
}

/// A subtree as an update leaves it.
enum Sub {
    /// No key.
    Empty,
    /// A node already stored at its final key (untouched, or written by this update).
    Stored(Child),
    /// A single key whose leaf is not written yet: where it lands depends on its siblings.
    Pending { key: Hash, value: LeafValue },
    /// An internal node written by this update (at index `at` of its `new` list) whose hash
    /// is not computed yet ([`Update::resolve`]); `height` is its [`Deferred::height`].
    New { at: u32, height: u16 },
}

/// A node written by an update whose hash is computed after the tree walk, batched with the
/// other nodes of its height ([`Update::resolve`]).
struct Deferred {
    /// Its index in the update's `new` list.
    at: u32,
    /// The indexes in `new` of its children whose hashes are deferred too ([`NO_NODE`]: the
    /// child is empty or stored with its hash).
    kids: [u32; 2],
    /// 0 for a leaf; for an internal node, one more than its highest deferred child (its
    /// children's hashes are all known once the lower heights are done).
    height: u16,
}

/// Fewest changes on each side of the root for the two halves to be updated on two threads
/// ([`StateTree::apply`]): below it (every devnet block, every simulation) the update stays on
/// the calling thread, where a thread spawn would cost more than it saves.
const PARALLEL_MIN_CHANGES: usize = 256;

/// No [`Touched`] node (an index past any batch: a block changes far fewer than 2^32 nodes).
const NO_NODE: u32 = u32::MAX;

/// A stored node an update rewrites, read before any hashing ([`touched_below`]).
struct Touched {
    /// The node as stored.
    node: Node,
    /// Indexes in the [`touched_below`] list of its left and right children when they are
    /// rewritten too ([`NO_NODE`] otherwise).
    children: [u32; 2],
}

/// A node [`touched_below`] reads at the next level: its pointer, the range of changes below
/// it, its parent's index and side (none for the root).
type ToRead = (Child, std::ops::Range<usize>, Option<(u32, usize)>);

/// Reads every stored node that applying `changes` (sorted by key, unique) to the subtree
/// `base` at `depth` (every key of `changes` shares its first `depth` bits) rewrites: the
/// nodes on the changed keys' paths, down to where each path leaves the stored tree (a leaf,
/// or an empty side). The reads go level by level, each level's keys in one
/// [`NodeStore::nodes`] call, so that a store can overlap them (a read of a large in-memory
/// map is a cache miss; one after the other, on a path, they would wait on each other).
/// Returns the nodes in breadth-first order, `base`'s first, each node's children after it
/// (indexes in the returned list), and their keys, every one of which the new version
/// replaces (its stale list). Both lists start with room for `expect` nodes (a guess: the
/// last update's count), so that they are not copied as they grow.
fn touched_below<S: NodeStore>(
    store: &S,
    base: Option<Child>,
    mut depth: u16,
    changes: &[(Hash, Option<Vec<u8>>)],
    expect: usize,
) -> Result<(Vec<Touched>, Vec<NodeKey>), StateTreeError> {
    let mut touched: Vec<Touched> = Vec::with_capacity(expect);
    let mut keys: Vec<NodeKey> = Vec::with_capacity(expect);
    // The nodes to read at the next level.
    let mut level: Vec<ToRead> = Vec::new();
    if let (Some(c), false) = (base, changes.is_empty()) {
        level.push((c, 0..changes.len(), None));
    }
    let mut next = Vec::new();
    while !level.is_empty() {
        let first = keys.len();
        keys.extend(
            level
                .iter()
                .map(|(c, r, _)| NodeKey::at(c.version, &changes[r.start].0, depth)),
        );
        let nodes = store.nodes(&keys[first..])?;
        next.clear();
        for (i, ((_, range, parent), node)) in level.drain(..).zip(nodes).enumerate() {
            let nk = keys[first + i];
            let node = node.ok_or(StateTreeError::MissingNode(nk))?;
            let at = u32::try_from(touched.len()).map_err(|_| StateTreeError::Corrupt(nk))?;
            if let Some((p, side)) = parent {
                touched[p as usize].children[side] = at;
            }
            if let Node::Internal { left, right } = &node {
                if usize::from(depth) >= KEY_BITS {
                    return Err(StateTreeError::Corrupt(nk));
                }
                let d = usize::from(depth);
                let split =
                    range.start + changes[range.clone()].partition_point(|(k, _)| !key_bit(k, d));
                for (side, child, r) in
                    [(0, left, range.start..split), (1, right, split..range.end)]
                {
                    if let (Some(c), false) = (child, r.is_empty()) {
                        next.push((*c, r, Some((at, side))));
                    }
                }
            }
            touched.push(Touched {
                node,
                children: [NO_NODE; 2],
            });
        }
        std::mem::swap(&mut level, &mut next);
        depth += 1;
    }
    Ok((touched, keys))
}

/// One version being computed: the nodes it rewrites are read first ([`touched_below`]),
/// writes are collected and applied at the end, so a failed read leaves the store untouched.
struct Update<'a, S> {
    store: &'a S,
    version: u64,
    /// The stored nodes this version rewrites, read beforehand.
    touched: &'a [Touched],
    new: &'a mut Vec<(NodeKey, Node)>,
    /// The nodes of `new` whose hashes are not computed yet.
    deferred: Vec<Deferred>,
    /// The hash of each node of `new` once [`Update::resolve`] computed it (by index).
    hashes: Vec<Hash>,
    /// Nodes read during the update itself (a leaf lifted up): stale too.
    stale: Vec<NodeKey>,
}

impl<'a, S: NodeStore> Update<'a, S> {
    fn new(
        store: &'a S,
        version: u64,
        touched: &'a [Touched],
        new: &'a mut Vec<(NodeKey, Node)>,
    ) -> Update<'a, S> {
        Update {
            store,
            version,
            touched,
            new,
            deferred: Vec::new(),
            hashes: Vec::new(),
            stale: Vec::new(),
        }
    }

    fn load(&mut self, child: &Child, key: &Hash, depth: u16) -> Result<Node, StateTreeError> {
        let nk = NodeKey::at(child.version, key, depth);
        let node = self
            .store
            .node(&nk)?
            .ok_or(StateTreeError::MissingNode(nk))?;
        self.stale.push(nk);
        Ok(node)
    }

    /// The subtree at the first `depth` bits of `changes[0].0` (all changes share them), after
    /// applying `changes` (sorted by key, unique) to `node`.
    /// `item` is the index in `touched` of the stored node `node` points to when `changes` is
    /// not empty ([`touched_below`] read exactly those).
    fn update(
        &mut self,
        node: Option<Child>,
        depth: u16,
        changes: &[(Hash, Option<Vec<u8>>)],
        item: u32,
    ) -> Result<Sub, StateTreeError> {
        let (Some(child), Some((first, _))) = (node, changes.first()) else {
            return match node {
                Some(c) => Ok(Sub::Stored(c)),
                None => self.build(depth, &inserts(changes)),
            };
        };
        let touched = self.touched;
        let t = touched
            .get(item as usize)
            .ok_or(StateTreeError::MissingNode(NodeKey::at(
                child.version,
                first,
                depth,
            )))?;
        match &t.node {
            Node::Leaf { key, value } => {
                if let [(k, v)] = changes {
                    if k == key {
                        // The common case, the leaf's own key changed alone: what `build` makes
                        // of it, without the list.
                        return Ok(match v {
                            Some(v) => Sub::Pending {
                                key: *k,
                                value: LeafValue::new(v),
                            },
                            None => Sub::Empty,
                        });
                    }
                }
                let mut entries = inserts(changes);
                if changes.binary_search_by(|(k, _)| k.cmp(key)).is_err() {
                    let at = entries.partition_point(|(k, _)| k < key);
                    entries.insert(at, (*key, value.as_slice()));
                }
                self.build(depth, &entries)
            }
            Node::Internal { .. } if usize::from(depth) >= KEY_BITS => Err(
                StateTreeError::Corrupt(NodeKey::at(child.version, first, depth)),
            ),
            Node::Internal { left, right } => {
                let (left, right) = (*left, *right);
                let [li, ri] = t.children;
                let d = usize::from(depth);
                let split = changes.partition_point(|(k, _)| !key_bit(k, d));
                let (lc, rc) = changes.split_at(split);
                let l = self.update(left, depth + 1, lc, li)?;
                let r = self.update(right, depth + 1, rc, ri)?;
                self.join(depth, first, l, r)
            }
        }
    }

    /// The root of the tree whose top is `sub`: a lone pending leaf is written as the root,
    /// a new node gets its hash ([`Update::finish`]); `None` for an empty tree.
    fn root(&mut self, sub: Sub) -> Option<Child> {
        match sub {
            p @ Sub::Pending { .. } => {
                let (child, at, _) = self.place(p, &Hash::ZERO, 0, 0, false);
                self.resolve();
                child.map(|c| Child {
                    hash: self.hashes[at as usize],
                    ..c
                })
            }
            sub => match self.finish(sub) {
                Sub::Stored(c) => Some(c),
                _ => None,
            },
        }
    }

    /// Computes every deferred hash ([`Update::resolve`]) and turns `sub` into a stored
    /// child if it was a new node.
    fn finish(&mut self, sub: Sub) -> Sub {
        self.resolve();
        match sub {
            Sub::New { at, .. } => Sub::Stored(Child {
                version: self.version,
                hash: self.hashes[at as usize],
                leaf: false,
            }),
            other => other,
        }
    }

    /// Computes the hashes of the deferred nodes, height by height, each height in one
    /// batch ([`hash_many`]: four Blake2b lanes at once where the CPU has them), and writes
    /// each internal node's children hashes into it. A node's deferred children were all
    /// written before it (the walk writes a node after both its subtrees), so they have a
    /// lower height and are hashed first.
    fn resolve(&mut self) {
        self.hashes.resize(self.new.len(), Hash::ZERO);
        let mut deferred = std::mem::take(&mut self.deferred);
        deferred.sort_by_key(|d| d.height);
        let mut inputs: Vec<u8> = Vec::new();
        let mut ends: Vec<usize> = Vec::new();
        let mut out: Vec<Hash> = Vec::new();
        for group in deferred.chunk_by(|a, b| a.height == b.height) {
            if group[0].height == 0 {
                // Leaves: their value hashes, then their leaf hashes.
                batch_inputs(
                    &mut inputs,
                    &mut ends,
                    group.iter().map(|d| match &self.new[d.at as usize].1 {
                        Node::Leaf { value, .. } => [&[VALUE_TAG][..], value.as_slice(), &[], &[]],
                        Node::Internal { .. } => [&[][..]; 4],
                    }),
                );
                hash_many(&inputs, &ends, &mut out);
                let values = std::mem::take(&mut out);
                batch_inputs(
                    &mut inputs,
                    &mut ends,
                    group
                        .iter()
                        .zip(&values)
                        .map(|(d, vh)| match &self.new[d.at as usize].1 {
                            Node::Leaf { key, .. } => [&[LEAF_TAG][..], &key.0, &vh.0, &[]],
                            Node::Internal { .. } => [&[][..]; 4],
                        }),
                );
            } else {
                for d in group {
                    if let Node::Internal { left, right } = &mut self.new[d.at as usize].1 {
                        for (child, kid) in [(left, d.kids[0]), (right, d.kids[1])] {
                            if let (Some(c), Some(h)) = (child, self.hashes.get(kid as usize)) {
                                c.hash = *h;
                            }
                        }
                    }
                }
                batch_inputs(
                    &mut inputs,
                    &mut ends,
                    group.iter().map(|d| match &self.new[d.at as usize].1 {
                        Node::Internal { left, right } => [
                            &[NODE_TAG][..],
                            left.as_ref().map_or(&Hash::ZERO.0, |c| &c.hash.0),
                            right.as_ref().map_or(&Hash::ZERO.0, |c| &c.hash.0),
                            &[],
                        ],
                        Node::Leaf { .. } => [&[][..]; 4],
                    }),
                );
            }
            hash_many(&inputs, &ends, &mut out);
            for (d, h) in group.iter().zip(&out) {
                self.hashes[d.at as usize] = *h;
            }
        }
        deferred.clear();
        self.deferred = deferred;
    }

    /// The subtree holding exactly `entries` (sorted by key, unique), built from nothing.
    /// Never reads the store (nothing below is stored), so it cannot fail in practice; it
    /// returns a `Result` to share [`Update::join`].
    fn build(&mut self, depth: u16, entries: &[(Hash, &[u8])]) -> Result<Sub, StateTreeError> {
        match entries {
            [] => Ok(Sub::Empty),
            [(key, value)] => Ok(Sub::Pending {
                key: *key,
                value: LeafValue::new(value),
            }),
            [(first, _), ..] => {
                let d = usize::from(depth);
                let split = entries.partition_point(|(k, _)| !key_bit(k, d));
                let l = self.build(depth + 1, &entries[..split])?;
                let r = self.build(depth + 1, &entries[split..])?;
                let first = *first;
                self.join(depth, &first, l, r)
            }
        }
    }

    /// The node at the first `depth` bits of `path_key` from its two subtrees: nothing, a lone
    /// leaf lifted up, or an internal node written under this version.
    fn join(&mut self, depth: u16, path_key: &Hash, l: Sub, r: Sub) -> Result<Sub, StateTreeError> {
        match (l, r) {
            (Sub::Empty, Sub::Empty) => Ok(Sub::Empty),
            (Sub::Empty, p @ Sub::Pending { .. }) | (p @ Sub::Pending { .. }, Sub::Empty) => Ok(p),
            (Sub::Empty, Sub::Stored(c)) if c.leaf => self.lift(depth, path_key, c, true),
            (Sub::Stored(c), Sub::Empty) if c.leaf => self.lift(depth, path_key, c, false),
            (l, r) => {
                let d = usize::from(depth);
                let (left, lk, lh) = self.place(l, path_key, depth + 1, d, false);
                let (right, rk, rh) = self.place(r, path_key, depth + 1, d, true);
                let at = self.push(
                    NodeKey::at(self.version, path_key, depth),
                    Node::Internal { left, right },
                );
                let height = 1 + lh.max(rh);
                self.deferred.push(Deferred {
                    at,
                    kids: [lk, rk],
                    height,
                });
                Ok(Sub::New { at, height })
            }
        }
    }

    /// A stored leaf whose sibling subtree became empty: it moves up (it is read, listed
    /// stale, and written again where its path is now unique).
    /// `c` is an untouched leaf of an older version, hanging on `side` of the node at the first
    /// `depth` bits of `path_key`.
    fn lift(
        &mut self,
        depth: u16,
        path_key: &Hash,
        c: Child,
        side: bool,
    ) -> Result<Sub, StateTreeError> {
        let mut p = *path_key;
        set_bit(&mut p, usize::from(depth), side);
        match self.load(&c, &p, depth + 1)? {
            Node::Leaf { key, value } => Ok(Sub::Pending { key, value }),
            Node::Internal { .. } => Err(StateTreeError::Corrupt(NodeKey::at(
                c.version,
                &p,
                depth + 1,
            ))),
        }
    }

    /// Adds a node to this version's writes; returns its index.
    fn push(&mut self, key: NodeKey, node: Node) -> u32 {
        // A version writes a few nodes per changed key: far fewer than 2^32.
        let at = u32::try_from(self.new.len()).unwrap_or(NO_NODE);
        self.new.push((key, node));
        at
    }

    /// The child pointer of one side of a new internal node at depth `d`, writing a pending
    /// leaf at its final key; with the child's index in `new` and height when its hash is
    /// deferred ([`NO_NODE`] and 0 otherwise). A deferred child's pointer holds a zero hash
    /// until [`Update::resolve`] fills it in.
    fn place(
        &mut self,
        s: Sub,
        path_key: &Hash,
        depth: u16,
        d: usize,
        side: bool,
    ) -> (Option<Child>, u32, u16) {
        let version = self.version;
        let deferred = move |leaf| Child {
            version,
            hash: Hash::ZERO,
            leaf,
        };
        match s {
            Sub::Empty => (None, NO_NODE, 0),
            Sub::Stored(c) => (Some(c), NO_NODE, 0),
            Sub::New { at, height } => (Some(deferred(false)), at, height),
            Sub::Pending { key, value } => {
                let child = deferred(true);
                let mut p = *path_key;
                set_bit(&mut p, d, side);
                let at = self.push(
                    NodeKey::at(self.version, &p, depth),
                    Node::Leaf { key, value },
                );
                self.deferred.push(Deferred {
                    at,
                    kids: [NO_NODE; 2],
                    height: 0,
                });
                (Some(child), at, 0)
            }
        }
    }
}

/// The two halves of a batch updated on two threads ([`StateTree::halves`]).
struct Halves {
    /// The key of the stored root.
    key: NodeKey,
    /// The root's left and right subtrees.
    left: Option<Child>,
    right: Option<Child>,
    /// The number of changes in the left half.
    split: usize,
}

/// Reads ([`touched_below`]), walks and hashes the subtree `base` at `depth` with `changes`
/// (sorted, unique, all sharing their first `depth` bits) applied, writing its new nodes into
/// `new`: the subtree as it ends ([`Update::finish`]: a node, a lone pending leaf, or
/// nothing), and the keys it makes stale. `reads` is the number of nodes the last update of
/// this part read: room is reserved for as many (and an eighth more), and it is set to this
/// update's.
fn update_below<S: NodeStore>(
    store: &S,
    version: u64,
    (base, depth): (Option<Child>, u16),
    changes: &[(Hash, Option<Vec<u8>>)],
    new: &mut Vec<(NodeKey, Node)>,
    reads: &mut usize,
) -> Result<(Sub, Vec<NodeKey>), StateTreeError> {
    let expect = reads.saturating_add(*reads / 8);
    let (touched, mut stale) = touched_below(store, base, depth, changes, expect)?;
    *reads = touched.len();
    let room = batch_room(touched.len(), changes.len());
    new.reserve(room);
    let mut up = Update::new(store, version, &touched, new);
    up.deferred.reserve(room);
    let sub = up.update(base, depth, changes, 0)?;
    let sub = up.finish(sub);
    stale.append(&mut up.stale);
    Ok((sub, stale))
}

/// Room for the nodes of a batch of `changes` changes that read `read` nodes: the nodes read
/// are rewritten, the changed leaves written (and, for a new key, the node where its path
/// parts from another). Reserved in one allocation, since a store may keep the batch's
/// buffer (`MemoryStore` makes it a table).
fn batch_room(read: usize, changes: usize) -> usize {
    read.saturating_add(changes.saturating_mul(2))
}

/// Writes the concatenations of `parts` (one input per item) into `inputs`, their end
/// offsets into `ends`.
fn batch_inputs<'p>(
    inputs: &mut Vec<u8>,
    ends: &mut Vec<usize>,
    parts: impl Iterator<Item = [&'p [u8]; 4]>,
) {
    inputs.clear();
    ends.clear();
    for p in parts {
        for x in p {
            inputs.extend_from_slice(x);
        }
        ends.push(inputs.len());
    }
}

/// Blake2b-256 of each input of `inputs` (ending at the offsets `ends`) into `out`, four
/// at a time on CPUs with AVX2 (`blake2b_simd::many`), one at a time elsewhere: the same
/// hash as [`Hash::blake2b`].
fn hash_many(inputs: &[u8], ends: &[usize], out: &mut Vec<Hash>) {
    let params = blake2b_params();
    out.clear();
    let mut start = 0;
    let mut jobs: Vec<blake2b_simd::many::HashManyJob<'_>> = ends
        .iter()
        .map(|&end| {
            let job = blake2b_simd::many::HashManyJob::new(&params, &inputs[start..end]);
            start = end;
            job
        })
        .collect();
    blake2b_simd::many::hash_many(jobs.iter_mut());
    out.extend(jobs.iter().map(|j| to_hash(&j.to_hash())));
}

/// Blake2b with a 32-byte output, no key, salt or personalization: Blake2b-256.
fn blake2b_params() -> blake2b_simd::Params {
    let mut p = blake2b_simd::Params::new();
    p.hash_length(32);
    p
}

fn set_bit(key: &mut Hash, i: usize, v: bool) {
    let m = 0x80 >> (i % 8);
    if v {
        key.0[i / 8] |= m;
    } else {
        key.0[i / 8] &= !m;
    }
}

/// The changes that set a value, as (key, value) pairs.
fn inserts(changes: &[(Hash, Option<Vec<u8>>)]) -> Vec<(Hash, &[u8])> {
    changes
        .iter()
        .filter_map(|(k, v)| v.as_deref().map(|v| (*k, v)))
        .collect()
}

/// The versioned state tree over a [`NodeStore`].
#[derive(Debug, Clone)]
pub struct StateTree<S> {
    store: S,
    /// The buffer an update writes its nodes into (the right half's, when the halves of a
    /// large batch are updated on two threads), kept between updates when the store does not
    /// keep it ([`NodeStore::put_nodes`]; `MemoryStore` makes it a table).
    scratch: Vec<(NodeKey, Node)>,
    /// The buffer the second thread writes the left half's nodes into, kept likewise.
    scratch_left: Vec<(NodeKey, Node)>,
    /// Whether [`StateTree::apply`] may update the two halves of a large batch on two threads.
    parallel: bool,
    /// How many nodes the last update read: on one thread, then in the left and the right
    /// half on two (room reserved for the next one's lists).
    reads: [usize; 3],
}

impl<S: NodeStore + Sync> StateTree<S> {
    /// A tree over `store` (empty, or holding versions written before).
    pub fn new(store: S) -> StateTree<S> {
        StateTree {
            store,
            scratch: Vec::new(),
            scratch_left: Vec::new(),
            parallel: true,
            reads: [0; 3],
        }
    }

    /// Lets [`StateTree::apply`] use a second thread for large batches (the default), or not:
    /// the root is the same either way; a bench compares the two.
    pub fn set_parallel(&mut self, on: bool) {
        self.parallel = on;
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The store, to write what the tree does not (a backend's own metadata). Writing nodes,
    /// roots or stale lists through it corrupts the tree.
    pub fn store_mut(&mut self) -> &mut S {
        &mut self.store
    }

    /// Gives the store back.
    pub fn into_store(self) -> S {
        self.store
    }

    /// The oldest and latest stored versions.
    pub fn versions(&self) -> Result<Option<(u64, u64)>, StateTreeError> {
        Ok(self.store.version_range()?)
    }

    fn root_child(&self, version: u64) -> Result<Option<Child>, StateTreeError> {
        self.store
            .root(version)?
            .ok_or(StateTreeError::UnknownVersion(version))
    }

    /// The root hash of `version` (32 zero bytes for an empty tree).
    pub fn root(&self, version: u64) -> Result<Hash, StateTreeError> {
        Ok(self.root_child(version)?.map_or(Hash::ZERO, |c| c.hash))
    }

    /// Writes `version` as the latest version with `changes` applied: a key set to `Some`
    /// holds that value, a key set to `None` is removed (absent: nothing to do). A key given
    /// twice keeps its last value. Returns the new root. The first version of an empty store
    /// may be any number (the block height it stands for); each next one is the latest plus
    /// one, as block heights are (after a [`StateTree::rollback`] to `h`, the next is `h + 1`).
    pub fn apply(
        &mut self,
        version: u64,
        changes: impl IntoIterator<Item = (Hash, Option<Vec<u8>>)>,
    ) -> Result<Hash, StateTreeError> {
        let base = match self.store.version_range()? {
            None => None,
            Some((_, latest)) if Some(version) != latest.checked_add(1) => {
                return Err(StateTreeError::VersionNotNext { version, latest })
            }
            Some((_, latest)) => self.root_child(latest)?,
        };
        // Sorted by key, the last change of a key kept (a stable sort keeps equal keys in
        // input order; `dedup_by` keeps the first of a run, so the run is reversed first).
        let mut changes: Vec<(Hash, Option<Vec<u8>>)> = changes.into_iter().collect();
        changes.reverse();
        changes.sort_by_key(|c| c.0);
        changes.dedup_by(|later, kept| later.0 == kept.0);
        self.scratch.clear();
        self.scratch_left.clear();
        if self.scratch.capacity() == 0 {
            self.scratch = self.store.spare_buffer();
        }
        let (root, stale) = match self.halves(base, &changes)? {
            Some(halves) => self.update_halves(version, &changes, halves)?,
            None => {
                let store = &self.store;
                let (sub, stale) = update_below(
                    store,
                    version,
                    (base, 0),
                    &changes,
                    &mut self.scratch,
                    &mut self.reads[0],
                )?;
                let root = Update::new(store, version, &[], &mut self.scratch).root(sub);
                (root, stale)
            }
        };
        self.store.put_nodes(&mut self.scratch)?;
        self.store.put_nodes(&mut self.scratch_left)?;
        self.store.put_stale(version, stale)?;
        self.store.put_root(version, root)?;
        Ok(root.map_or(Hash::ZERO, |c| c.hash))
    }

    /// Whether `changes` (sorted, unique) are applied to `base` as two halves on two threads:
    /// when the batch may use them ([`StateTree::set_parallel`]), the root is an internal
    /// node, and each side of it has at least [`PARALLEL_MIN_CHANGES`] changes. Then the root
    /// (read here), its key, and where the changes split.
    fn halves(
        &self,
        base: Option<Child>,
        changes: &[(Hash, Option<Vec<u8>>)],
    ) -> Result<Option<Halves>, StateTreeError> {
        let (Some(c), Some((first, _)), true) = (base, changes.first(), self.parallel) else {
            return Ok(None);
        };
        let split = changes.partition_point(|(k, _)| !key_bit(k, 0));
        if split.min(changes.len() - split) < PARALLEL_MIN_CHANGES {
            return Ok(None);
        }
        let key = NodeKey::at(c.version, first, 0);
        match self.store.node(&key)? {
            Some(Node::Internal { left, right }) => Ok(Some(Halves {
                key,
                left,
                right,
                split,
            })),
            Some(Node::Leaf { .. }) => Ok(None),
            None => Err(StateTreeError::MissingNode(key)),
        }
    }

    /// Applies `changes` as two halves: the left one on a scoped thread of its own, the right
    /// one on the caller, each reading ([`touched_below`]), walking and hashing its own half
    /// (they share no node), then the root joined from the two on the caller. The left half's
    /// nodes are written into `scratch_left`, the right half's into `scratch`, and the few
    /// the root's join writes (the root, a leaf placed beside it) after the left half's: two
    /// batches, not copied into one (a store may keep each as it is: `MemoryStore` keeps a
    /// table per version and side of the root). Returns the new root and the stale keys (the
    /// right half's, the root's, then the left half's: their order does not matter). `apply`
    /// has emptied both buffers.
    fn update_halves(
        &mut self,
        version: u64,
        changes: &[(Hash, Option<Vec<u8>>)],
        h: Halves,
    ) -> Result<(Option<Child>, Vec<NodeKey>), StateTreeError> {
        let (lc, rc) = changes.split_at(h.split);
        if self.scratch_left.capacity() == 0 {
            self.scratch_left = self.store.spare_buffer();
        }
        let store = &self.store;
        let scratch = &mut self.scratch;
        let left_new = &mut self.scratch_left;
        let [_, left_reads, right_reads] = &mut self.reads;
        let (l, r) = std::thread::scope(|s| {
            let other = s
                .spawn(move || update_below(store, version, (h.left, 1), lc, left_new, left_reads));
            let r = update_below(store, version, (h.right, 1), rc, scratch, right_reads);
            let l = other
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            (l, r)
        });
        // The right half's list gets the rest: one half copied, not both.
        let ((l, l_stale), (r, mut stale)) = (l?, r?);
        stale.reserve(1 + l_stale.len());
        stale.push(h.key);
        stale.extend(l_stale);
        let mut top = Vec::new();
        let mut up = Update::new(&self.store, version, &[], &mut top);
        let first = changes.first().map_or(Hash::ZERO, |c| c.0);
        let sub = up.join(0, &first, l, r)?;
        let root = up.root(sub);
        stale.append(&mut up.stale);
        // The root is on the left side. A leaf the join places on the right means the right
        // half was left with that one key and wrote nothing: the left batch then has both
        // sides, and a store splits it (`MemoryStore::put_nodes`).
        self.scratch_left.append(&mut top);
        Ok((root, stale))
    }

    /// The root [`StateTree::apply`] would return for `version` with `changes`, without
    /// writing anything: the update runs over an overlay that reads this tree's store and
    /// keeps its writes apart (a producer's root for a block it has not made yet).
    pub fn root_after(
        &self,
        version: u64,
        changes: impl IntoIterator<Item = (Hash, Option<Vec<u8>>)>,
    ) -> Result<Hash, StateTreeError> {
        let mut t = StateTree {
            store: store::Overlay::new(&self.store),
            scratch: Vec::new(),
            scratch_left: Vec::new(),
            parallel: self.parallel,
            reads: self.reads,
        };
        t.apply(version, changes)
    }

    /// The value of `key` at `version`, and the proof of it (or of its absence).
    pub fn prove(
        &self,
        version: u64,
        key: &Hash,
    ) -> Result<(Option<Vec<u8>>, StateProof), StateTreeError> {
        let mut cur = self.root_child(version)?;
        let mut siblings = Vec::new();
        let mut depth: u16 = 0;
        while let Some(c) = cur {
            let nk = NodeKey::at(c.version, key, depth);
            match self
                .store
                .node(&nk)?
                .ok_or(StateTreeError::MissingNode(nk))?
            {
                Node::Leaf { key: k, value } => {
                    let terminal = ProofTerminal::Leaf {
                        key: k,
                        value_hash: value_hash(&value),
                    };
                    let value = (k == *key).then(|| value.to_vec());
                    return Ok((value, StateProof { siblings, terminal }));
                }
                Node::Internal { .. } if usize::from(depth) >= KEY_BITS => {
                    return Err(StateTreeError::Corrupt(nk));
                }
                Node::Internal { left, right } => {
                    let (next, sib) = if key_bit(key, usize::from(depth)) {
                        (right, left)
                    } else {
                        (left, right)
                    };
                    siblings.push(sib.map_or(Hash::ZERO, |s| s.hash));
                    cur = next;
                    depth += 1;
                }
            }
        }
        let terminal = ProofTerminal::Empty;
        Ok((None, StateProof { siblings, terminal }))
    }

    /// The value of `key` at `version`.
    pub fn get(&self, version: u64, key: &Hash) -> Result<Option<Vec<u8>>, StateTreeError> {
        Ok(self.prove(version, key)?.0)
    }

    /// Keeps versions `keep_from` and above: deletes older roots and every node no kept
    /// version reaches (those stale since `keep_from` or earlier). Work is proportional to
    /// what is deleted.
    pub fn prune(&mut self, keep_from: u64) -> Result<(), StateTreeError> {
        let Some((oldest, latest)) = self.store.version_range()? else {
            return Ok(());
        };
        let keep_from = keep_from.min(latest);
        for v in oldest..keep_from {
            self.store.delete_root(v)?;
        }
        // Stale lists exist for versions in (oldest, latest] only.
        for s in oldest.saturating_add(1)..=keep_from {
            let stale = self.store.take_stale(s)?;
            self.store.delete_nodes(&stale)?;
        }
        Ok(())
    }

    /// Drops every version above `to` (a fork switch back to block `to`): their nodes are
    /// deleted and the nodes they replaced are live again.
    pub fn rollback(&mut self, to: u64) -> Result<(), StateTreeError> {
        let Some((oldest, latest)) = self.store.version_range()? else {
            return Ok(());
        };
        if to < oldest {
            return Err(StateTreeError::UnknownVersion(to));
        }
        for v in (to.saturating_add(1)..=latest).rev() {
            let Some(root) = self.store.root(v)? else {
                continue;
            };
            let mut todo: Vec<(Child, Hash, u16)> =
                root.into_iter().map(|c| (c, Hash::ZERO, 0)).collect();
            // The nodes written by `v` are those reachable from its root through children
            // written by `v`: a child of an older version was not touched.
            // All reads first, so that a corrupt version is refused before anything is deleted.
            let mut written = Vec::new();
            while let Some((c, path, depth)) = todo.pop() {
                if c.version != v {
                    continue;
                }
                let nk = NodeKey::at(v, &path, depth);
                if let Some(Node::Internal { left, right }) = self.store.node(&nk)? {
                    if usize::from(depth) >= KEY_BITS {
                        return Err(StateTreeError::Corrupt(nk));
                    }
                    let d = usize::from(depth);
                    for (side, child) in [(false, left), (true, right)] {
                        if let Some(child) = child {
                            let mut p = path;
                            set_bit(&mut p, d, side);
                            todo.push((child, p, depth + 1));
                        }
                    }
                }
                written.push(nk);
            }
            self.store.delete_nodes(&written)?;
            self.store.take_stale(v)?;
            self.store.delete_root(v)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
