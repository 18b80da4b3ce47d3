//! Where the nodes of the state tree live: their keys, their stored form, and the small
//! [`NodeStore`] trait a backend implements ([`MemoryStore`] here; pp-server can back it with
//! redb).
//!
//! A node is stored under a [`NodeKey`]: the version (block) that wrote it and its path (the
//! key bits above it). A node is never rewritten under the same key: a version only adds nodes
//! under its own number and lists the keys it replaced as *stale since* that version. This is
//! what makes pruning exact (a node stale since `s` is reachable from versions `< s` only) and
//! rollback exact (the nodes of version `v` are those reachable from its root under version
//! `v`), whatever nodes happen to be equal by hash.

use std::collections::btree_map::Entry;
use std::collections::hash_map::RandomState;
use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasher, Hasher};

use crate::encoding::{Decode, Decoder, Encode, Encoder};
use crate::error::DecodeError;
use crate::hash::Hash;

use super::table::NodeTable;
use super::{leaf_hash, node_hash, value_hash, KEY_BITS};

/// An error of a storage backend (its own error type, boxed: the tree only passes it on).
pub type StoreError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The storage key of a node: the version that wrote it and its path.
///
/// `path` holds the first `depth` bits of every key below the node, the remaining bits zero.
/// The byte form ([`NodeKey::to_bytes`]) starts with the big-endian version, so a backend's
/// key order groups nodes by version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct NodeKey {
    /// The version (block) that wrote the node.
    pub version: u64,
    /// How many key bits the path holds (0 = the root, at most 256).
    pub depth: u16,
    /// The first `depth` bits of the keys below, MSB first, the rest zero.
    pub path: [u8; 32],
}

/// Hashes every field (as `Eq` compares them), as six words: a [`MemoryStore`] hashes a key
/// per lookup, and the derived form's byte-slice path costs more than the lookup's hashing
/// needs (a tenth of the samples of a profile of the bench).
impl std::hash::Hash for NodeKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.version);
        state.write_u16(self.depth);
        for w in self.path.chunks_exact(8) {
            let mut b = [0u8; 8];
            b.copy_from_slice(w);
            state.write_u64(u64::from_le_bytes(b));
        }
    }
}

/// Length of [`NodeKey::to_bytes`].
pub const NODE_KEY_LEN: usize = 8 + 2 + 32;

impl NodeKey {
    /// The key of a root written by `version`.
    pub fn root(version: u64) -> NodeKey {
        NodeKey {
            version,
            depth: 0,
            path: [0u8; 32],
        }
    }

    /// The key of the node at the first `depth` bits of `key`, written by `version`.
    pub fn at(version: u64, key: &Hash, depth: u16) -> NodeKey {
        NodeKey {
            version,
            depth,
            path: prefix(key, depth),
        }
    }

    /// Byte form: version (8, BE) ‖ depth (2, BE) ‖ path (32).
    pub fn to_bytes(&self) -> [u8; NODE_KEY_LEN] {
        let mut b = [0u8; NODE_KEY_LEN];
        b[..8].copy_from_slice(&self.version.to_be_bytes());
        b[8..10].copy_from_slice(&self.depth.to_be_bytes());
        b[10..].copy_from_slice(&self.path);
        b
    }

    /// Reads the byte form, refusing a depth above 256 or path bits set past `depth`.
    pub fn from_bytes(b: &[u8]) -> Result<NodeKey, DecodeError> {
        let mut d = Decoder::new(b);
        let version = d.u64()?;
        let depth = u16::from_be_bytes([d.u8()?, d.u8()?]);
        let path: [u8; 32] = d.hash()?.0;
        d.finish()?;
        if usize::from(depth) > KEY_BITS || prefix(&Hash(path), depth) != path {
            return Err(DecodeError::UnknownTag {
                what: "node key depth/path",
                tag: 0,
            });
        }
        Ok(NodeKey {
            version,
            depth,
            path,
        })
    }
}

/// The first `depth` bits of `key`, the rest zeroed (as four masked 64-bit words: every node
/// key an update reads or writes is one of these).
pub(crate) fn prefix(key: &Hash, depth: u16) -> [u8; 32] {
    let depth = u32::from(depth).min(KEY_BITS as u32);
    let mut p = [0u8; 32];
    for (i, (out, word)) in p.chunks_exact_mut(8).zip(key.0.chunks_exact(8)).enumerate() {
        // The bits of this word within the depth: 0 to 64.
        let bits = depth.saturating_sub(64 * i as u32).min(64);
        let mask = u64::MAX.checked_shl(64 - bits).unwrap_or(0);
        let mut w = [0u8; 8];
        w.copy_from_slice(word);
        out.copy_from_slice(&(u64::from_be_bytes(w) & mask).to_be_bytes());
    }
    p
}

/// A reference from a parent (or a version's root) to a stored node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Child {
    /// The version that wrote the child (its path follows from the parent's).
    pub version: u64,
    /// The child's hash.
    pub hash: Hash,
    /// True iff the child is a leaf (so that a lone leaf can be lifted without reading it
    /// first to learn its kind).
    pub leaf: bool,
}

/// Most value bytes a [`LeafValue`] keeps inline.
pub const LEAF_VALUE_INLINE: usize = 54;

/// A leaf's value bytes: inline up to [`LEAF_VALUE_INLINE`] bytes (every account leaf
/// without a stakeholder id, or with one of up to 24 characters and no VRF key, and the
/// total-stake leaf), on the heap above. Inline, a stored leaf is copied without an
/// allocation and read without a second cache miss, and a [`Node`] keeps its 96 bytes.
#[derive(Clone)]
pub struct LeafValue(Repr);

#[derive(Clone)]
enum Repr {
    /// The first `len` bytes of `bytes`; the rest are zero.
    Inline {
        len: u8,
        bytes: [u8; LEAF_VALUE_INLINE],
    },
    /// More than [`LEAF_VALUE_INLINE`] bytes.
    Heap(Box<[u8]>),
}

impl LeafValue {
    /// A copy of `bytes`.
    pub fn new(bytes: &[u8]) -> LeafValue {
        match u8::try_from(bytes.len()) {
            Ok(len) if bytes.len() <= LEAF_VALUE_INLINE => {
                let mut b = [0u8; LEAF_VALUE_INLINE];
                b[..bytes.len()].copy_from_slice(bytes);
                LeafValue(Repr::Inline { len, bytes: b })
            }
            _ => LeafValue(Repr::Heap(bytes.into())),
        }
    }

    /// The bytes.
    pub fn as_slice(&self) -> &[u8] {
        match &self.0 {
            Repr::Inline { len, bytes } => &bytes[..usize::from(*len)],
            Repr::Heap(b) => b,
        }
    }
}

impl std::ops::Deref for LeafValue {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl From<&[u8]> for LeafValue {
    fn from(bytes: &[u8]) -> LeafValue {
        LeafValue::new(bytes)
    }
}

impl From<Vec<u8>> for LeafValue {
    fn from(bytes: Vec<u8>) -> LeafValue {
        if bytes.len() <= LEAF_VALUE_INLINE {
            LeafValue::new(&bytes)
        } else {
            LeafValue(Repr::Heap(bytes.into_boxed_slice()))
        }
    }
}

/// Equal bytes, wherever they are kept.
impl PartialEq for LeafValue {
    fn eq(&self, other: &LeafValue) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for LeafValue {}

impl std::fmt::Debug for LeafValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.as_slice().fmt(f)
    }
}

/// A stored node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// Two subtrees, at most one of them empty (an internal node always has two keys or more
    /// below it).
    Internal {
        /// The subtree of keys whose next bit is 0.
        left: Option<Child>,
        /// The subtree of keys whose next bit is 1.
        right: Option<Child>,
    },
    /// The only key of its subtree, with its value (the leaf encoding of an account).
    Leaf {
        /// The tree key ([`super::account_key`]).
        key: Hash,
        /// The value bytes.
        value: LeafValue,
    },
}

impl Node {
    /// The node's hash (docs/state-commitment.md §3).
    pub fn hash(&self) -> Hash {
        match self {
            Node::Internal { left, right } => node_hash(&child_hash(left), &child_hash(right)),
            Node::Leaf { key, value } => leaf_hash(key, &value_hash(value)),
        }
    }
}

fn child_hash(c: &Option<Child>) -> Hash {
    c.map_or(Hash::ZERO, |c| c.hash)
}

fn encode_child(e: &mut Encoder, c: &Option<Child>) {
    match c {
        None => {
            e.u8(0);
        }
        Some(c) => {
            e.u8(if c.leaf { 2 } else { 1 })
                .u64(c.version)
                .hash(&c.hash);
        }
    }
}

fn decode_child(d: &mut Decoder<'_>) -> Result<Option<Child>, DecodeError> {
    let tag = d.u8()?;
    let leaf = match tag {
        0 => return Ok(None),
        1 => false,
        2 => true,
        tag => return Err(DecodeError::UnknownTag { what: "child", tag }),
    };
    Ok(Some(Child {
        version: d.u64()?,
        hash: d.hash()?,
        leaf,
    }))
}

/// Stored form (for a backend; not part of any hash): internal = `0x00`, then per child `0x00`
/// (empty) or `0x01`/`0x02` (internal/leaf) ‖ version (8) ‖ hash (32); leaf = `0x01` ‖ key ‖
/// length-prefixed value.
impl Encode for Node {
    fn encode(&self, e: &mut Encoder) {
        match self {
            Node::Internal { left, right } => {
                e.u8(0);
                encode_child(e, left);
                encode_child(e, right);
            }
            Node::Leaf { key, value } => {
                e.u8(1).hash(key).bytes(value);
            }
        }
    }
}

impl Decode for Node {
    fn decode(d: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        match d.u8()? {
            0 => Ok(Node::Internal {
                left: decode_child(d)?,
                right: decode_child(d)?,
            }),
            1 => Ok(Node::Leaf {
                key: d.hash()?,
                value: LeafValue::new(d.bytes()?),
            }),
            tag => Err(DecodeError::UnknownTag { what: "node", tag }),
        }
    }
}

/// The storage a [`super::StateTree`] runs on. Every method is a plain read or write; the
/// tree's rules (what to write, what is stale, what pruning deletes) live in the tree, so a
/// backend cannot get them wrong. A backend that writes to disk should apply one
/// [`super::StateTree::apply`] (or prune, or rollback) in one transaction.
pub trait NodeStore {
    /// The node stored under `key`, if any.
    fn node(&self, key: &NodeKey) -> Result<Option<Node>, StoreError>;
    /// Stores `node` under `key` (never called twice for one key without a delete between).
    fn put_node(&mut self, key: NodeKey, node: Node) -> Result<(), StoreError>;
    /// The nodes stored under `keys`, in order: [`NodeStore::node`] of each. The tree reads a
    /// level of a path batch at once through it, so that a backend may overlap the reads
    /// (the default reads them one after the other).
    fn nodes(&self, keys: &[NodeKey]) -> Result<Vec<Option<Node>>, StoreError> {
        keys.iter().map(|k| self.node(k)).collect()
    }
    /// Stores every node of `nodes` ([`NodeStore::put_node`] of each, in any order), leaving
    /// `nodes` empty (a backend may keep its buffer, so that its capacity is not kept).
    fn put_nodes(&mut self, nodes: &mut Vec<(NodeKey, Node)>) -> Result<(), StoreError> {
        for (k, n) in nodes.drain(..) {
            self.put_node(k, n)?;
        }
        Ok(())
    }
    /// Deletes the node under `key` (absent: nothing to do).
    fn delete_node(&mut self, key: &NodeKey) -> Result<(), StoreError>;
    /// An empty buffer for the tree's next batch of new nodes ([`NodeStore::put_nodes`]). A
    /// store that keeps batches as they are (`MemoryStore`) hands back the room of lists it no
    /// longer needs, so that a block's nodes are written to memory the process already has
    /// rather than to fresh pages (a page fault every 4 KiB, a large part of an update's
    /// time). The default: a new, empty list.
    fn spare_buffer(&mut self) -> Vec<(NodeKey, Node)> {
        Vec::new()
    }
    /// Deletes the nodes under `keys` ([`NodeStore::delete_node`] of each, in order). Pruning
    /// and rollback delete through it, so that a backend may overlap the lookups (the
    /// default deletes them one after the other).
    fn delete_nodes(&mut self, keys: &[NodeKey]) -> Result<(), StoreError> {
        for k in keys {
            self.delete_node(k)?;
        }
        Ok(())
    }
    /// The root of `version`: `None` if the version is not stored, `Some(None)` if its tree is
    /// empty.
    fn root(&self, version: u64) -> Result<Option<Option<Child>>, StoreError>;
    /// Records the root of `version`.
    fn put_root(&mut self, version: u64, root: Option<Child>) -> Result<(), StoreError>;
    /// Forgets the root of `version`.
    fn delete_root(&mut self, version: u64) -> Result<(), StoreError>;
    /// The oldest and the latest stored version, `None` if none is.
    fn version_range(&self) -> Result<Option<(u64, u64)>, StoreError>;
    /// Records the keys `version` replaced (stale since `version`).
    fn put_stale(&mut self, version: u64, keys: Vec<NodeKey>) -> Result<(), StoreError>;
    /// Removes and returns the keys recorded stale since `version` (empty if none).
    fn take_stale(&mut self, version: u64) -> Result<Vec<NodeKey>, StoreError>;
}

/// The hasher of [`MemoryStore`]'s node map: a multiply-rotate fold of the key's words under a
/// per-process random seed, then a full avalanche. A node key is a version, a depth and a path
/// of Blake2b output bits, so the standard map's SipHash (a tenth of the samples in a profile of
/// the state-tree bench) buys little: nobody chooses paths without grinding Blake2b, and the
/// seed keeps bucket placement unpredictable.
#[derive(Debug, Clone, Copy)]
struct NodeKeyHasher(u64);

impl Hasher for NodeKeyHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut w = [0u8; 8];
            w[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(w));
        }
    }

    fn write_u64(&mut self, x: u64) {
        self.0 = (self.0 ^ x)
            .wrapping_mul(0x9e37_79b9_7f4a_7c15)
            .rotate_left(29);
    }

    fn write_u16(&mut self, x: u16) {
        self.write_u64(u64::from(x));
    }

    fn write_usize(&mut self, x: usize) {
        self.write_u64(x as u64);
    }

    fn finish(&self) -> u64 {
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// Builds [`NodeKeyHasher`]s from one random seed per map.
#[derive(Debug, Clone, Copy)]
struct NodeKeyHashBuilder(u64);

impl Default for NodeKeyHashBuilder {
    fn default() -> Self {
        NodeKeyHashBuilder(RandomState::new().hash_one(0x5eed_u64))
    }
}

impl BuildHasher for NodeKeyHashBuilder {
    type Hasher = NodeKeyHasher;

    fn build_hasher(&self) -> NodeKeyHasher {
        NodeKeyHasher(self.0)
    }
}

/// How many keys [`MemoryStore`]'s batched reads and writes look up ahead of copying: enough
/// to keep the CPU's outstanding misses busy, few enough that what they bring stays cached.
const BATCH: usize = 64;

/// A version's own table with fewer nodes than this is merged into [`MemoryStore`]'s shared
/// one.
const MERGE_BELOW: usize = 64;

/// Most emptied entry lists [`MemoryStore`] keeps for reuse ([`NodeStore::spare_buffer`],
/// compactions): a block's two tables give one back each when pruning has emptied half of
/// them, and a block's update takes two.
const SPARE_LISTS: usize = 8;

/// Largest entry list [`MemoryStore`] keeps for reuse, in entries (about 75 MB): far above a
/// block's batch; the lists of a tree's first build are not worth keeping.
const SPARE_MAX_ENTRIES: usize = 1 << 19;

/// An entry list of a table.
type Entries = Vec<(NodeKey, Node)>;

/// Keeps `list` (emptied) for reuse if it has room worth keeping, dropping the smallest kept
/// list when there are more than [`SPARE_LISTS`].
fn keep_spare(spare: &mut Vec<Entries>, mut list: Entries) {
    list.clear();
    if list.capacity() == 0 || list.capacity() > SPARE_MAX_ENTRIES {
        return;
    }
    spare.push(list);
    if spare.len() > SPARE_LISTS {
        if let Some(i) = (0..spare.len()).min_by_key(|&i| spare[i].capacity()) {
            spare.swap_remove(i);
        }
    }
}

/// A kept list with room for `n` entries and at most twice that (the smallest such), or a
/// new one with room for exactly `n`.
fn spare_for(spare: &mut Vec<Entries>, n: usize) -> Entries {
    let fit = (0..spare.len())
        .filter(|&i| (n..=n.saturating_mul(2)).contains(&spare[i].capacity()))
        .min_by_key(|&i| spare[i].capacity());
    match fit {
        Some(i) => spare.swap_remove(i),
        None => Vec::with_capacity(n),
    }
}

/// The nodes one version wrote on one side of the root.
type VersionNodes = NodeTable<NodeKeyHashBuilder>;

/// Which of a version's two tables holds the node under `key`: the first bit of its path (the
/// side of the root it is on; the root itself, whose path is empty, is on side 0). An update
/// of a large batch computes each side on its own thread ([`super::StateTree::apply`]), so each
/// side's new nodes arrive as a batch of their own and become their own table, not copied into
/// one.
fn side(key: &NodeKey) -> u8 {
    key.path[0] >> 7
}

/// A table's identity: the version that wrote its nodes and their [`side`].
type TableId = (u64, u8);

fn table_id(key: &NodeKey) -> TableId {
    (key.version, side(key))
}

/// A [`NodeStore`] in memory (tests, benches, and a node that keeps the tree on the heap).
///
/// Nodes are grouped by the version that wrote them and the side of the root they are on
/// (the first bit of their path), one table per version and side: a block's new nodes fill fresh tables (not
/// random buckets of one table holding the whole tree, a cache miss each), the nodes every
/// block rewrites (the top levels) are read from the last version's small tables, and a table
/// is compacted as pruning empties it, into a list that fits, its old list kept for the next
/// batch ([`NodeStore::spare_buffer`]). A table left with fewer
/// than [`MERGE_BELOW`] nodes moves them to one shared table, so that a long chain does not
/// keep a table per block for the few nodes each old block still has live. A table is a
/// [`NodeTable`]: its entries packed in write order behind a small index, so that a batch of
/// reads ([`NodeStore::nodes`]) loads every key's index slot, then every entry, before it
/// compares any key.
#[derive(Debug, Default, Clone)]
pub struct MemoryStore {
    nodes: HashMap<TableId, VersionNodes, NodeKeyHashBuilder>,
    /// The live nodes of versions whose own table became small.
    merged: VersionNodes,
    /// Number of nodes in all tables.
    count: usize,
    roots: BTreeMap<u64, Option<Child>>,
    stale: BTreeMap<u64, Vec<NodeKey>>,
    /// Emptied entry lists of compacted and merged tables, reused for new batches and
    /// compactions ([`NodeStore::spare_buffer`]): once pruning frees as much as blocks add, a
    /// block's nodes go to memory already in use, not to fresh pages.
    spare: Vec<Entries>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    /// Number of stored nodes (what pruning and rollback are checked against).
    pub fn node_count(&self) -> usize {
        self.count
    }

    /// The table the node under `key` is in if it is stored: its version and side's own, or
    /// the shared one once that is gone. Never both: a table moves to the shared one only when
    /// pruning or rollback deletes from it, after the version was written, and a version is
    /// written again only after a rollback deleted every node it had (wherever they were).
    fn table(&self, key: &NodeKey) -> &VersionNodes {
        self.nodes.get(&table_id(key)).unwrap_or(&self.merged)
    }

    fn get(&self, key: &NodeKey) -> Option<&Node> {
        self.table(key).get(key)
    }

    fn insert(&mut self, key: NodeKey, node: Node) -> Result<(), StoreError> {
        // A key is in at most one table: `merged` holds a version's nodes only after its
        // own table is gone, and a node is never written twice without a delete between.
        if self
            .nodes
            .entry(table_id(&key))
            .or_default()
            .insert(key, node)?
            .is_none()
        {
            self.count += 1;
        }
        Ok(())
    }

    /// [`NodeStore::put_nodes`] of a batch that is not split: it becomes its first node's
    /// table if that table does not exist and every node belongs in it, else its nodes are
    /// inserted one by one.
    fn put_batch(&mut self, nodes: &mut Vec<(NodeKey, Node)>) -> Result<(), StoreError> {
        let Some(id) = nodes.first().map(|(k, _)| table_id(k)) else {
            return Ok(());
        };
        if !self.nodes.contains_key(&id) {
            let mut table = VersionNodes::default();
            match table.fill(std::mem::take(nodes), |k| table_id(k) == id) {
                Ok(()) => {
                    self.count += table.len();
                    self.nodes.insert(id, table);
                    return Ok(());
                }
                Err(back) => *nodes = back,
            }
        }
        self.nodes.entry(id).or_default().reserve(nodes.len());
        for (k, n) in nodes.drain(..) {
            self.insert(k, n)?;
        }
        Ok(())
    }

    /// Number of emptied entry lists kept for reuse.
    #[cfg(test)]
    pub(crate) fn spare_count(&self) -> usize {
        self.spare.len()
    }

    /// Number of stale keys waiting for pruning.
    pub fn stale_count(&self) -> usize {
        self.stale.values().map(Vec::len).sum()
    }
}

impl NodeStore for MemoryStore {
    fn node(&self, key: &NodeKey) -> Result<Option<Node>, StoreError> {
        Ok(self.get(key).cloned())
    }

    fn put_node(&mut self, key: NodeKey, node: Node) -> Result<(), StoreError> {
        self.insert(key, node)
    }

    /// Three passes per chunk of [`BATCH`] keys: the first loads each key's index slot, the
    /// second the entry that slot points to, the third compares the keys and copies the nodes
    /// out of now cached memory. The loads of one pass are independent, so the CPU overlaps
    /// their cache misses (in a large tree nearly every read is one); a lookup done whole, key
    /// after key, would wait for each miss in turn.
    fn nodes(&self, keys: &[NodeKey]) -> Result<Vec<Option<Node>>, StoreError> {
        let mut out = Vec::with_capacity(keys.len());
        let mut found: Vec<(&VersionNodes, u64)> = Vec::with_capacity(BATCH);
        let mut current: Option<(TableId, &VersionNodes)> = None;
        for chunk in keys.chunks(BATCH) {
            found.clear();
            let mut loaded = 0u64;
            for k in chunk {
                let id = table_id(k);
                let t = match current {
                    Some((c, t)) if c == id => t,
                    _ => {
                        let t = self.table(k);
                        current = Some((id, t));
                        t
                    }
                };
                found.push((t, t.hash(k)));
            }
            // The loads alone, so that many are in flight at once.
            for (t, h) in &found {
                loaded ^= t.home(*h);
            }
            for (t, h) in &found {
                loaded ^= t.touch(*h);
            }
            std::hint::black_box(loaded);
            out.extend(
                chunk
                    .iter()
                    .zip(&found)
                    .map(|(k, (t, h))| t.get_hashed(k, *h).cloned()),
            );
        }
        Ok(out)
    }

    /// A batch of one version and one side of the root that has no table yet (what each half of a
    /// large update writes) becomes that table as it is ([`NodeTable::fill`]): `nodes` is
    /// taken, not copied, and left empty without capacity. A batch of one version on both
    /// sides (a one-thread update's) is split first (one side keeps the buffer, the other's
    /// nodes are moved to a new one). Any other batch is inserted node by node, after
    /// reserving room in its first node's table (one growth at most).
    fn put_nodes(&mut self, nodes: &mut Vec<(NodeKey, Node)>) -> Result<(), StoreError> {
        let Some(id) = nodes.first().map(|(k, _)| table_id(k)) else {
            return Ok(());
        };
        let (one_version, both_sides) = nodes.iter().fold((true, false), |(v, b), (k, _)| {
            (v && k.version == id.0, b || side(k) != id.1)
        });
        if one_version && both_sides {
            let mut others: Vec<(NodeKey, Node)> = Vec::new();
            nodes.retain_mut(|e| {
                let keep = side(&e.0) == id.1;
                if !keep {
                    let empty = Node::Internal {
                        left: None,
                        right: None,
                    };
                    others.push((e.0, std::mem::replace(&mut e.1, empty)));
                }
                keep
            });
            self.put_batch(nodes)?;
            return self.put_batch(&mut others);
        }
        self.put_batch(nodes)
    }

    /// Compacts a table that pruning left half empty into a kept list that fits it (or a new
    /// one), shrinking its index if it lost most of its entries, and keeps its old list for
    /// reuse ([`NodeStore::spare_buffer`]); moves what is left of one below [`MERGE_BELOW`]
    /// nodes to the shared table: old versions keeping a few live nodes do not keep their
    /// block's room.
    fn delete_node(&mut self, key: &NodeKey) -> Result<(), StoreError> {
        let id = table_id(key);
        let Some(t) = self.nodes.get_mut(&id) else {
            if self.merged.remove(key).is_some() {
                self.count -= 1;
            }
            return Ok(());
        };
        if t.remove_lazily(key).is_some() {
            self.count -= 1;
        }
        if t.len() < MERGE_BELOW {
            if let Some(mut t) = self.nodes.remove(&id) {
                let mut entries = t.take_entries();
                for (k, n) in entries.drain(..) {
                    self.merged.insert(k, n)?;
                }
                keep_spare(&mut self.spare, entries);
            }
        } else if t.is_sparse() || t.is_oversized() {
            let old = t.compact_into(spare_for(&mut self.spare, t.len()));
            keep_spare(&mut self.spare, old);
        }
        Ok(())
    }

    /// The largest kept list ([`MemoryStore`]'s spare lists), or a new one.
    fn spare_buffer(&mut self) -> Vec<(NodeKey, Node)> {
        let largest = (0..self.spare.len()).max_by_key(|&i| self.spare[i].capacity());
        largest.map_or_else(Vec::new, |i| self.spare.swap_remove(i))
    }

    /// Per chunk of [`BATCH`] keys, the keys' index slots and entries are loaded first, as in
    /// [`NodeStore::nodes`] (pruning deletes nodes of old versions, mostly cache misses in
    /// large tables; these overlap), then the deletes work on cached memory.
    fn delete_nodes(&mut self, keys: &[NodeKey]) -> Result<(), StoreError> {
        for chunk in keys.chunks(BATCH) {
            let mut loaded = 0u64;
            let hashes: Vec<(&VersionNodes, u64)> = chunk
                .iter()
                .map(|k| {
                    let t = self.table(k);
                    let h = t.hash(k);
                    loaded ^= t.home(h);
                    (t, h)
                })
                .collect();
            for (t, h) in &hashes {
                loaded ^= t.touch(*h);
            }
            std::hint::black_box(loaded);
            for k in chunk {
                self.delete_node(k)?;
            }
        }
        Ok(())
    }

    fn root(&self, version: u64) -> Result<Option<Option<Child>>, StoreError> {
        Ok(self.roots.get(&version).copied())
    }

    fn put_root(&mut self, version: u64, root: Option<Child>) -> Result<(), StoreError> {
        self.roots.insert(version, root);
        Ok(())
    }

    fn delete_root(&mut self, version: u64) -> Result<(), StoreError> {
        self.roots.remove(&version);
        Ok(())
    }

    fn version_range(&self) -> Result<Option<(u64, u64)>, StoreError> {
        Ok(self
            .roots
            .first_key_value()
            .zip(self.roots.last_key_value())
            .map(|((a, _), (b, _))| (*a, *b)))
    }

    /// A version's first list is kept as it is (not copied); a later one is appended to it.
    fn put_stale(&mut self, version: u64, keys: Vec<NodeKey>) -> Result<(), StoreError> {
        if !keys.is_empty() {
            match self.stale.entry(version) {
                Entry::Vacant(e) => {
                    e.insert(keys);
                }
                Entry::Occupied(mut e) => e.get_mut().extend(keys),
            }
        }
        Ok(())
    }

    fn take_stale(&mut self, version: u64) -> Result<Vec<NodeKey>, StoreError> {
        Ok(self.stale.remove(&version).unwrap_or_default())
    }
}

impl MemoryStore {
    /// Everything the store holds, as the writes that rebuild it in an empty store: every
    /// node, every root and every stale list (a backend copies a whole tree with it).
    pub fn dump(&self) -> Vec<StoreOp> {
        let mut out: Vec<StoreOp> = self
            .nodes
            .values()
            .flat_map(|t| t.iter())
            .chain(self.merged.iter())
            .map(|(k, n)| StoreOp::PutNode(*k, n.clone()))
            .collect();
        out.extend(self.roots.iter().map(|(v, r)| StoreOp::PutRoot(*v, *r)));
        out.extend(
            self.stale
                .iter()
                .map(|(v, keys)| StoreOp::PutStale(*v, keys.clone())),
        );
        out
    }
}

/// One write a [`LoggedStore`] recorded, to replay on another backend in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreOp {
    /// [`NodeStore::put_node`].
    PutNode(NodeKey, Node),
    /// [`NodeStore::delete_node`].
    DeleteNode(NodeKey),
    /// [`NodeStore::put_root`].
    PutRoot(u64, Option<Child>),
    /// [`NodeStore::delete_root`].
    DeleteRoot(u64),
    /// [`NodeStore::put_stale`] (never with an empty list).
    PutStale(u64, Vec<NodeKey>),
    /// [`NodeStore::take_stale`].
    TakeStale(u64),
}

/// A [`MemoryStore`] that can also record its writes ([`StoreOp`]s), for an owner that mirrors
/// the tree on disk: the chain's tree writes here, a node persists the log with the blocks.
/// Recording is off until [`LoggedStore::set_logging`] turns it on.
#[derive(Debug, Default, Clone)]
pub struct LoggedStore {
    mem: MemoryStore,
    log: Option<Vec<StoreOp>>,
}

impl LoggedStore {
    /// A store over `mem`, not recording.
    pub fn new(mem: MemoryStore) -> LoggedStore {
        LoggedStore { mem, log: None }
    }

    /// The nodes, roots and stale lists.
    pub fn memory(&self) -> &MemoryStore {
        &self.mem
    }

    /// Starts (dropping nothing) or stops (dropping what was recorded) recording writes.
    pub fn set_logging(&mut self, on: bool) {
        match (on, self.log.is_some()) {
            (true, false) => self.log = Some(Vec::new()),
            (false, true) => self.log = None,
            _ => {}
        }
    }

    /// The writes recorded since the last call (empty when not recording).
    pub fn take_log(&mut self) -> Vec<StoreOp> {
        self.log.as_mut().map(std::mem::take).unwrap_or_default()
    }

    fn record(&mut self, op: impl FnOnce() -> StoreOp) {
        if let Some(log) = self.log.as_mut() {
            log.push(op());
        }
    }
}

impl NodeStore for LoggedStore {
    fn node(&self, key: &NodeKey) -> Result<Option<Node>, StoreError> {
        self.mem.node(key)
    }

    fn put_node(&mut self, key: NodeKey, node: Node) -> Result<(), StoreError> {
        self.record(|| StoreOp::PutNode(key, node.clone()));
        self.mem.put_node(key, node)
    }

    fn nodes(&self, keys: &[NodeKey]) -> Result<Vec<Option<Node>>, StoreError> {
        self.mem.nodes(keys)
    }

    fn put_nodes(&mut self, nodes: &mut Vec<(NodeKey, Node)>) -> Result<(), StoreError> {
        if let Some(log) = self.log.as_mut() {
            log.extend(nodes.iter().map(|(k, n)| StoreOp::PutNode(*k, n.clone())));
        }
        self.mem.put_nodes(nodes)
    }

    fn delete_node(&mut self, key: &NodeKey) -> Result<(), StoreError> {
        self.record(|| StoreOp::DeleteNode(*key));
        self.mem.delete_node(key)
    }

    fn spare_buffer(&mut self) -> Vec<(NodeKey, Node)> {
        self.mem.spare_buffer()
    }

    fn delete_nodes(&mut self, keys: &[NodeKey]) -> Result<(), StoreError> {
        if let Some(log) = self.log.as_mut() {
            log.extend(keys.iter().map(|k| StoreOp::DeleteNode(*k)));
        }
        self.mem.delete_nodes(keys)
    }

    fn root(&self, version: u64) -> Result<Option<Option<Child>>, StoreError> {
        self.mem.root(version)
    }

    fn put_root(&mut self, version: u64, root: Option<Child>) -> Result<(), StoreError> {
        self.record(|| StoreOp::PutRoot(version, root));
        self.mem.put_root(version, root)
    }

    fn delete_root(&mut self, version: u64) -> Result<(), StoreError> {
        self.record(|| StoreOp::DeleteRoot(version));
        self.mem.delete_root(version)
    }

    fn version_range(&self) -> Result<Option<(u64, u64)>, StoreError> {
        self.mem.version_range()
    }

    fn put_stale(&mut self, version: u64, keys: Vec<NodeKey>) -> Result<(), StoreError> {
        if !keys.is_empty() {
            self.record(|| StoreOp::PutStale(version, keys.clone()));
        }
        self.mem.put_stale(version, keys)
    }

    fn take_stale(&mut self, version: u64) -> Result<Vec<NodeKey>, StoreError> {
        self.record(|| StoreOp::TakeStale(version));
        self.mem.take_stale(version)
    }
}

/// A store that reads through to `base` and keeps its own writes apart: an update run over it
/// computes a root without changing `base` ([`super::StateTree::root_after`]).
pub(crate) struct Overlay<'a, S> {
    base: &'a S,
    top: MemoryStore,
}

impl<'a, S: NodeStore> Overlay<'a, S> {
    pub(crate) fn new(base: &'a S) -> Self {
        Overlay {
            base,
            top: MemoryStore::new(),
        }
    }
}

impl<S: NodeStore> NodeStore for Overlay<'_, S> {
    fn node(&self, key: &NodeKey) -> Result<Option<Node>, StoreError> {
        match self.top.get(key) {
            Some(n) => Ok(Some(n.clone())),
            None => self.base.node(key),
        }
    }

    fn put_node(&mut self, key: NodeKey, node: Node) -> Result<(), StoreError> {
        self.top.put_node(key, node)
    }

    fn nodes(&self, keys: &[NodeKey]) -> Result<Vec<Option<Node>>, StoreError> {
        if self.top.node_count() == 0 {
            return self.base.nodes(keys);
        }
        keys.iter().map(|k| self.node(k)).collect()
    }

    fn put_nodes(&mut self, nodes: &mut Vec<(NodeKey, Node)>) -> Result<(), StoreError> {
        self.top.put_nodes(nodes)
    }

    fn delete_node(&mut self, key: &NodeKey) -> Result<(), StoreError> {
        self.top.delete_node(key)
    }

    fn root(&self, version: u64) -> Result<Option<Option<Child>>, StoreError> {
        match self.top.root(version)? {
            Some(r) => Ok(Some(r)),
            None => self.base.root(version),
        }
    }

    fn put_root(&mut self, version: u64, root: Option<Child>) -> Result<(), StoreError> {
        self.top.put_root(version, root)
    }

    fn delete_root(&mut self, version: u64) -> Result<(), StoreError> {
        self.top.delete_root(version)
    }

    fn version_range(&self) -> Result<Option<(u64, u64)>, StoreError> {
        let (a, b) = (self.base.version_range()?, self.top.version_range()?);
        Ok(match (a, b) {
            (Some((lo, hi)), Some((lo2, hi2))) => Some((lo.min(lo2), hi.max(hi2))),
            (x, None) | (None, x) => x,
        })
    }

    fn put_stale(&mut self, version: u64, keys: Vec<NodeKey>) -> Result<(), StoreError> {
        self.top.put_stale(version, keys)
    }

    fn take_stale(&mut self, version: u64) -> Result<Vec<NodeKey>, StoreError> {
        self.top.take_stale(version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The prefix keeps exactly the first `depth` bits, at every depth (against a bit-by-bit
    /// reference).
    #[test]
    fn a_prefix_keeps_exactly_its_bits() {
        let key = Hash::blake2b(b"prefix");
        for depth in 0..=300u16 {
            let mut want = [0u8; 32];
            for i in 0..usize::from(depth).min(KEY_BITS) {
                if super::super::key_bit(&key, i) {
                    want[i / 8] |= 0x80 >> (i % 8);
                }
            }
            assert_eq!(prefix(&key, depth), want, "depth {depth}");
        }
    }

    #[test]
    fn node_key_bytes_round_trip_and_refuse_stray_bits() {
        let k = NodeKey::at(7, &Hash([0xff; 32]), 13);
        assert_eq!(k.path[0], 0xff);
        assert_eq!(k.path[1], 0xf8);
        assert_eq!(k.path[2], 0);
        assert_eq!(NodeKey::from_bytes(&k.to_bytes()), Ok(k));
        let mut b = k.to_bytes();
        b[10 + 2] = 1; // a bit past the depth
        assert!(NodeKey::from_bytes(&b).is_err());
        let mut b = k.to_bytes();
        b[8..10].copy_from_slice(&257u16.to_be_bytes());
        assert!(NodeKey::from_bytes(&b).is_err());
    }

    /// A leaf for the store tests.
    fn node(i: u32) -> Node {
        Node::Leaf {
            key: Hash([i as u8; 32]),
            value: LeafValue::new(&i.to_be_bytes()),
        }
    }

    /// The key of node `i` of version `v`, for the store tests.
    fn key(v: u64, i: u32) -> NodeKey {
        let mut p = [0u8; 32];
        p[..4].copy_from_slice(&i.to_be_bytes());
        NodeKey::at(v, &Hash(p), 32)
    }

    /// Nodes stay readable, and counted once, through a version table's shrinking and its
    /// merge into the shared table; deletes reach them wherever they are.
    #[test]
    fn memory_store_tables_shrink_and_merge_without_losing_nodes() {
        let mut s = MemoryStore::new();
        let mut batch: Vec<(NodeKey, Node)> = (0..1_000).map(|i| (key(1, i), node(i))).collect();
        s.put_nodes(&mut batch).expect("put");
        assert!(batch.is_empty());
        for i in 0..10 {
            s.put_node(key(2, i), node(i)).expect("put");
        }
        assert_eq!(s.node_count(), 1_010);
        // Down to 960 (a shrink somewhere on the way), then 50: merged.
        for i in 0..950 {
            s.delete_node(&key(1, i)).expect("delete");
            assert_eq!(s.node_count(), 1_010 - 1 - i as usize);
            // Its own table while it keeps MERGE_BELOW nodes or more, merged below that.
            let left = 1_000 - 1 - i as usize;
            assert_eq!(
                s.nodes.contains_key(&(1, 0)),
                left >= MERGE_BELOW,
                "{left} left"
            );
        }
        assert!(
            !s.nodes.contains_key(&(1, 0)),
            "a table under 64 nodes is merged"
        );
        let keys: Vec<NodeKey> = (0..1_000).map(|i| key(1, i)).collect();
        let got = s.nodes(&keys).expect("read");
        for (i, n) in got.iter().enumerate() {
            assert_eq!(n.is_some(), i >= 950, "node {i}");
        }
        assert_eq!(s.node(&key(1, 999)).expect("read"), Some(node(999)));
        assert_eq!(s.node(&key(2, 3)).expect("read"), Some(node(3)));
        for i in 950..1_000 {
            s.delete_node(&key(1, i)).expect("delete");
        }
        s.delete_node(&key(1, 5))
            .expect("deleting an absent node is nothing");
        assert_eq!(s.node_count(), 10);
        assert_eq!(s.node(&key(1, 999)).expect("read"), None);
    }

    /// A batch of a new version becomes its table whole; a batch for a version that has a
    /// table, or one mixing versions, is inserted node by node; every node is readable after,
    /// and the count is right either way.
    #[test]
    fn put_nodes_takes_a_new_version_whole_and_inserts_the_rest() {
        let mut s = MemoryStore::new();
        let mut batch: Vec<(NodeKey, Node)> = (0..300).map(|i| (key(1, i), node(i))).collect();
        s.put_nodes(&mut batch).expect("put");
        assert_eq!((batch.len(), batch.capacity()), (0, 0), "taken whole");
        // More for version 1: inserted into its table; the buffer keeps its room.
        let mut batch: Vec<(NodeKey, Node)> = (300..400).map(|i| (key(1, i), node(i))).collect();
        s.put_nodes(&mut batch).expect("put");
        assert!(batch.is_empty() && batch.capacity() >= 100);
        // Versions 2 and 3 mixed: inserted, each node into its own version's table.
        let mut batch: Vec<(NodeKey, Node)> = (0..200)
            .map(|i| (key(2 + u64::from(i % 2), i), node(i)))
            .collect();
        s.put_nodes(&mut batch).expect("put");
        assert!(batch.is_empty());
        assert_eq!(s.node_count(), 600);
        assert_eq!(
            (
                s.nodes[&(1, 0)].len(),
                s.nodes[&(2, 0)].len(),
                s.nodes[&(3, 0)].len()
            ),
            (400, 100, 100)
        );
        for i in 0..400 {
            assert_eq!(s.node(&key(1, i)).expect("read"), Some(node(i)));
        }
        for i in 0..200 {
            let v = 2 + u64::from(i % 2);
            assert_eq!(s.node(&key(v, i)).expect("read"), Some(node(i)));
            assert_eq!(s.node(&key(5 - v, i)).expect("read"), None);
        }
        s.put_nodes(&mut Vec::new()).expect("an empty batch");
        assert_eq!(s.node_count(), 600);
    }

    /// A table that pruning leaves half empty is compacted, and its old list (with its room,
    /// the same memory) is what the store hands to the next batch; a merged table's list too.
    #[test]
    fn a_compacted_tables_list_is_reused_for_the_next_batch() {
        let mut s = MemoryStore::new();
        let mut batch: Vec<(NodeKey, Node)> = Vec::with_capacity(1_200);
        batch.extend((0..1_000).map(|i| (key(1, i), node(i))));
        let first = batch.as_ptr();
        s.put_nodes(&mut batch).expect("put");
        assert!(s.spare_buffer().capacity() == 0, "nothing kept yet");
        for i in 0..500 {
            s.delete_node(&key(1, i)).expect("delete");
        }
        assert!(s.spare.is_empty(), "half removed: not compacted yet");
        s.delete_node(&key(1, 500)).expect("delete");
        assert_eq!(s.spare.len(), 1);
        let reused = s.spare_buffer();
        assert_eq!(
            (reused.as_ptr(), reused.capacity(), reused.len()),
            (first, 1_200, 0)
        );
        assert!((0..1_000).all(|i| s.node(&key(1, i)).expect("read").is_some() == (i > 500)));
        // The table now in its compacted list, emptied down to a merge: that list is kept.
        for i in 501..990 {
            s.delete_node(&key(1, i)).expect("delete");
        }
        assert!(!s.nodes.contains_key(&(1, 0)), "merged");
        assert!(!s.spare.is_empty());
        assert_eq!(s.node_count(), 10);
        assert!((990..1_000).all(|i| s.node(&key(1, i)).expect("read").is_some()));
    }

    /// A logged store hands out its memory store's kept lists.
    #[test]
    fn a_logged_store_reuses_the_lists_of_its_memory_store() {
        let mut s = LoggedStore::new(MemoryStore::new());
        let mut batch: Vec<(NodeKey, Node)> = (0..200).map(|i| (key(1, i), node(i))).collect();
        s.put_nodes(&mut batch).expect("put");
        assert_eq!(s.spare_buffer().capacity(), 0);
        s.delete_nodes(&(0..101).map(|i| key(1, i)).collect::<Vec<_>>())
            .expect("delete");
        assert_eq!(s.spare_buffer().capacity(), 200);
    }

    /// The kept lists: at most `SPARE_LISTS`, the smallest dropped first; none without room or
    /// above `SPARE_MAX_ENTRIES`; a compaction takes the smallest with room for it and at
    /// most twice that, or a new list.
    #[test]
    fn kept_lists_are_bounded_and_fitted() {
        let mut spare = Vec::new();
        for i in 1..=10 {
            keep_spare(&mut spare, Vec::with_capacity(i * 100));
        }
        keep_spare(&mut spare, Vec::new());
        keep_spare(&mut spare, Vec::with_capacity(SPARE_MAX_ENTRIES + 1));
        let mut kept: Vec<usize> = spare.iter().map(Vec::capacity).collect();
        kept.sort_unstable();
        assert_eq!(kept, (3..=10).map(|i| i * 100).collect::<Vec<_>>());
        keep_spare(&mut spare, Vec::with_capacity(SPARE_MAX_ENTRIES));
        assert_eq!(spare.len(), SPARE_LISTS);
        assert!(spare.iter().any(|l| l.capacity() == SPARE_MAX_ENTRIES));
        assert_eq!(spare_for(&mut spare, 350).capacity(), 400);
        assert_eq!(spare_for(&mut spare, 350).capacity(), 500);
        assert_eq!(spare_for(&mut spare, 350).capacity(), 600);
        assert_eq!(spare_for(&mut spare, 350).capacity(), 700);
        // Nothing left between 350 and 700: a new list of exactly 350.
        assert_eq!(spare_for(&mut spare, 350).capacity(), 350);
        assert_eq!(spare.len(), SPARE_LISTS - 4);
        assert_eq!(spare_for(&mut spare, 0).capacity(), 0);
    }

    /// A version's first stale list is kept as it is (the same memory), a second one appended
    /// to it; an empty list records nothing; taking a list empties it.
    #[test]
    fn stale_lists_are_kept_whole_then_appended() {
        let mut s = MemoryStore::new();
        let first: Vec<NodeKey> = (0..100).map(|i| key(3, i)).collect();
        let at = first.as_ptr();
        s.put_stale(5, first).expect("put");
        s.put_stale(5, Vec::new()).expect("put");
        s.put_stale(6, Vec::new()).expect("put");
        assert_eq!(s.stale[&5].as_ptr(), at, "kept, not copied");
        assert!(!s.stale.contains_key(&6));
        s.put_stale(5, (100..150).map(|i| key(3, i)).collect())
            .expect("put");
        assert_eq!(
            s.take_stale(5).expect("take"),
            (0..150).map(|i| key(3, i)).collect::<Vec<_>>()
        );
        assert!(s.take_stale(5).expect("take").is_empty());
        assert_eq!(s.stale_count(), 0);
    }

    /// A key on side 1 of the root: the first path bit set.
    fn right(v: u64, i: u32) -> NodeKey {
        key(v, i | 0x8000_0000)
    }

    /// A new version's nodes are kept in one table per side of the root: a batch of one side
    /// becomes its table whole, a batch of both is split (the first node's side keeps the
    /// buffer), and a later batch for an existing table is inserted; the root (empty path) is
    /// on side 0. Every node is readable from its table, and deletes find it there.
    #[test]
    fn each_side_of_the_root_has_its_own_table() {
        let mut s = MemoryStore::new();
        // Version 1 from two one-sided batches: each taken whole.
        let mut ones: Vec<(NodeKey, Node)> = (0..150).map(|i| (right(1, i), node(i))).collect();
        s.put_nodes(&mut ones).expect("put");
        assert_eq!(ones.capacity(), 0, "taken whole");
        let mut zeros: Vec<(NodeKey, Node)> = (0..100).map(|i| (key(1, i), node(i))).collect();
        zeros.push((NodeKey::at(1, &Hash([0xff; 32]), 0), node(7)));
        s.put_nodes(&mut zeros).expect("put");
        assert_eq!(zeros.capacity(), 0, "taken whole");
        assert_eq!((s.nodes[&(1, 0)].len(), s.nodes[&(1, 1)].len()), (101, 150));
        // Version 2 from one batch of both sides, starting with a side-1 node: split.
        let mut both: Vec<(NodeKey, Node)> = (0..300)
            .map(|i| {
                let k = if i % 3 == 0 { key(2, i) } else { right(2, i) };
                (k, node(i))
            })
            .collect();
        both.swap(0, 1);
        s.put_nodes(&mut both).expect("put");
        assert_eq!(both.capacity(), 0, "one side took the list");
        assert_eq!((s.nodes[&(2, 0)].len(), s.nodes[&(2, 1)].len()), (100, 200));
        // More for version 2, side 0: inserted into its table.
        let mut more = vec![(key(2, 1_000), node(1))];
        s.put_nodes(&mut more).expect("put");
        assert_eq!((s.nodes[&(2, 0)].len(), s.nodes[&(2, 1)].len()), (101, 200));
        assert_eq!(s.node_count(), 101 + 150 + 301);
        for i in 0..300 {
            let (k, other) = if i % 3 == 0 {
                (key(2, i), right(2, i))
            } else {
                (right(2, i), key(2, i))
            };
            assert_eq!(s.node(&k).expect("read"), Some(node(i)), "node {i}");
            assert_eq!(s.node(&other).expect("read"), None, "node {i}");
        }
        let all: Vec<NodeKey> = (0..150).flat_map(|i| [right(1, i), key(1, i)]).collect();
        let got = s.nodes(&all).expect("read");
        for (i, n) in got.iter().enumerate() {
            let present = i % 2 == 0 || i / 2 < 100;
            assert_eq!(
                n.as_ref(),
                present.then(|| node(i as u32 / 2)).as_ref(),
                "key {i}"
            );
        }
        assert_eq!(
            s.node(&NodeKey::at(1, &Hash::ZERO, 0)).expect("read"),
            Some(node(7)),
            "the root is on side 0"
        );
        s.delete_nodes(&(0..150).map(|i| right(1, i)).collect::<Vec<_>>())
            .expect("delete");
        assert!(!s.nodes.contains_key(&(1, 1)), "emptied");
        assert_eq!(s.node_count(), 101 + 301);
        assert_eq!(s.node(&key(1, 5)).expect("read"), Some(node(5)));
    }

    /// A value keeps its bytes whatever its length, inline up to the limit and on the heap
    /// above; both constructors give the same value, and a node's stored form round-trips.
    #[test]
    fn leaf_values_keep_their_bytes_inline_or_not() {
        for len in [
            0,
            1,
            26,
            LEAF_VALUE_INLINE - 1,
            LEAF_VALUE_INLINE,
            LEAF_VALUE_INLINE + 1,
            94,
            300,
        ] {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 7 + 1) as u8).collect();
            let v = LeafValue::new(&bytes);
            assert_eq!(v.as_slice(), &bytes[..], "{len} bytes");
            assert_eq!(&*v, &bytes[..]);
            assert_eq!(LeafValue::from(bytes.clone()), v);
            assert_eq!(LeafValue::from(&bytes[..]), v);
            for (how, v) in [
                ("new", &v),
                ("from a vector", &LeafValue::from(bytes.clone())),
            ] {
                assert_eq!(
                    matches!(v.0, Repr::Inline { .. }),
                    len <= LEAF_VALUE_INLINE,
                    "{len} bytes, {how}"
                );
            }
            assert_eq!(format!("{v:?}"), format!("{bytes:?}"));
            let mut other = bytes.clone();
            other.push(0);
            assert_ne!(LeafValue::new(&other), v, "a trailing zero is a byte");
            let node = Node::Leaf {
                key: Hash([9; 32]),
                value: v,
            };
            let back = Node::from_canonical_bytes(&node.to_canonical_bytes()).expect("decodes");
            assert_eq!(back, node);
        }
        assert_eq!(
            std::mem::size_of::<Node>(),
            96,
            "a leaf is no larger than a node"
        );
    }

    #[test]
    fn nodes_round_trip_through_their_stored_form() {
        let c = Child {
            version: 3,
            hash: Hash([5; 32]),
            leaf: true,
        };
        for n in [
            Node::Internal {
                left: Some(c),
                right: None,
            },
            Node::Leaf {
                key: Hash([1; 32]),
                value: LeafValue::new(&[1, 2, 3]),
            },
        ] {
            assert_eq!(Node::from_canonical_bytes(&n.to_canonical_bytes()), Ok(n));
        }
        assert!(Node::from_canonical_bytes(&[0, 3]).is_err());
    }
    /// A batch delete is the deletes of its keys one by one, whatever the chunking: keys of
    /// several versions, absent and repeated keys, more than two chunks and a partial one;
    /// the logged store records one delete per key, in order.
    #[test]
    fn delete_nodes_is_delete_node_of_each_key() {
        let mut one = LoggedStore::new(MemoryStore::new());
        for v in 0..3u64 {
            for i in 0..200 {
                one.put_node(key(v, i), node(i)).expect("put");
            }
        }
        let mut batch = one.clone();
        batch.set_logging(true);
        // 3 × 70 present keys, 20 absent ones, 10 repeated: 240 keys, not a multiple of 64.
        let mut doomed: Vec<NodeKey> = (0..3u64)
            .flat_map(|v| (0..70).map(move |i| key(v, i * 2 + (v as u32 % 2))))
            .collect();
        doomed.extend((500..520).map(|i| key(1, i)));
        doomed.extend((0..10).map(|i| key(2, i * 2)));
        assert_eq!(doomed.len(), 240);
        for k in &doomed {
            one.delete_node(k).expect("delete");
        }
        batch.delete_nodes(&doomed).expect("delete");
        assert_eq!(one.memory().node_count(), 600 - 210);
        assert_eq!(batch.memory().node_count(), one.memory().node_count());
        for v in 0..3u64 {
            for i in 0..200 {
                let k = key(v, i);
                assert_eq!(batch.node(&k).expect("read"), one.node(&k).expect("read"));
            }
        }
        let logged: Vec<StoreOp> = doomed.iter().map(|k| StoreOp::DeleteNode(*k)).collect();
        assert_eq!(batch.take_log(), logged);
    }
}
