//! [`NodeTable`]: the node map of a [`super::MemoryStore`], built for batched reads of a large
//! tree.
//!
//! A table is two arrays: the entries, `(key, node)` pairs packed one after the other in the
//! order they were written, and an open-addressed index over them (linear probing, a power of
//! two long, at most three quarters full). An index slot is 8 bytes: the low 32 bits of the
//! key's hash (its position and a tag) and the entry's position plus one (0 = empty). So:
//!
//! * a lookup reads one index slot (a block's table of 25,000 nodes has a 512 KiB index, one of
//!   2.4 million a 32 MiB one: cache-resident where the entries are not), then one entry;
//! * a batch of lookups can *load* every slot first, then every entry, before comparing any
//!   key ([`NodeTable::home`], [`NodeTable::touch`]): the loads are independent, so the CPU
//!   keeps many cache misses in flight instead of one per key (the batch is most of a block's
//!   state-root update in a tree of a million accounts);
//! * an insert appends its entry (sequential writes) and fills one index slot;
//! * growing or shrinking rebuilds the index from the hash bits its slots keep, without
//!   reading an entry.
//!
//! A removal marks its entry removed (compacted once half the entries are, in place or, for a
//! caller that removes lazily, into a list it gives: [`NodeTable::compact_into`]) and closes
//! the index gap by backward shifting, so that no tombstone lengthens a probe.

use std::hash::BuildHasher;

use super::store::{Node, NodeKey};

/// An index slot: `hash_low32 << 32 | (entry + 1)`, 0 when empty.
type Slot = u64;

/// Fewest index slots of a table that holds anything.
const MIN_SLOTS: usize = 8;

/// Most entries a table holds: an index slot keeps an entry's position in 32 bits (a table
/// that full would take over 600 GB).
pub(crate) const MAX_ENTRIES: usize = u32::MAX as usize - 1;

/// The table is full ([`MAX_ENTRIES`]).
#[derive(Debug, thiserror::Error)]
#[error("memory store table is full ({MAX_ENTRIES} nodes)")]
pub(crate) struct TableFull;

/// A map from [`NodeKey`] to [`Node`] (see the module documentation).
#[derive(Debug, Clone)]
pub(crate) struct NodeTable<S> {
    index: Vec<Slot>,
    /// Live entries and removed ones ([`DEAD`] keys), compacted when half are removed.
    entries: Vec<(NodeKey, Node)>,
    /// Number of live entries.
    live: usize,
    hasher: S,
}

/// The key of a removed entry: no stored key has a depth above 256, so none equals it.
const DEAD: NodeKey = NodeKey {
    version: 0,
    depth: u16::MAX,
    path: [0; 32],
};

fn is_live(entry: &(NodeKey, Node)) -> bool {
    entry.0.depth != DEAD.depth
}

impl<S: BuildHasher + Default> Default for NodeTable<S> {
    fn default() -> Self {
        NodeTable {
            index: Vec::new(),
            entries: Vec::new(),
            live: 0,
            hasher: S::default(),
        }
    }
}

fn entry_of(slot: Slot) -> usize {
    (slot & 0xffff_ffff) as usize - 1
}

fn hash_of(slot: Slot) -> usize {
    (slot >> 32) as usize
}

impl<S: BuildHasher> NodeTable<S> {
    /// Number of entries.
    pub(crate) fn len(&self) -> usize {
        self.live
    }

    /// How many entries the index takes before it grows.
    pub(crate) fn capacity(&self) -> usize {
        self.index.len() / 4 * 3
    }

    /// The hash [`NodeTable::home`], [`NodeTable::touch`] and [`NodeTable::get_hashed`] take.
    pub(crate) fn hash(&self, key: &NodeKey) -> u64 {
        self.hasher.hash_one(key)
    }

    fn mask(&self) -> usize {
        self.index.len().wrapping_sub(1)
    }

    /// Loads the index slot where the probe for `hash` starts and returns it (a batch calls
    /// this for all its keys first, so that their slots are read in parallel).
    pub(crate) fn home(&self, hash: u64) -> u64 {
        self.index
            .get(hash as usize & self.mask())
            .copied()
            .unwrap_or(0)
    }

    /// Loads the first words of the entry the home slot of `hash` points to, if its hash bits
    /// match, and returns them (a batch calls this for all its keys after
    /// [`NodeTable::home`], so that the entries are read in parallel).
    pub(crate) fn touch(&self, hash: u64) -> u64 {
        let slot = self.home(hash);
        if slot == 0 || hash_of(slot) != (hash & 0xffff_ffff) as usize {
            return 0;
        }
        match self.entries.get(entry_of(slot)) {
            Some((k, Node::Internal { right, .. })) => {
                k.version ^ right.as_ref().map_or(0, |c| c.version)
            }
            Some((k, Node::Leaf { value, .. })) => {
                k.version ^ value.first().copied().map_or(0, u64::from)
            }
            None => 0,
        }
    }

    /// The index position of `key` (whose hash is `hash`), if present.
    fn find(&self, key: &NodeKey, hash: u64) -> Option<usize> {
        let mask = self.mask();
        if self.index.is_empty() {
            return None;
        }
        let low = (hash & 0xffff_ffff) as usize;
        let mut p = hash as usize & mask;
        // The index is never full (at most three quarters), so an empty slot ends the probe.
        loop {
            let slot = self.index[p];
            if slot == 0 {
                return None;
            }
            if hash_of(slot) == low && self.entries[entry_of(slot)].0 == *key {
                return Some(p);
            }
            p = (p + 1) & mask;
        }
    }

    /// The node under `key`, whose hash is `hash` ([`NodeTable::hash`]).
    pub(crate) fn get_hashed(&self, key: &NodeKey, hash: u64) -> Option<&Node> {
        self.find(key, hash)
            .map(|p| &self.entries[entry_of(self.index[p])].1)
    }

    /// The node under `key`.
    pub(crate) fn get(&self, key: &NodeKey) -> Option<&Node> {
        self.get_hashed(key, self.hash(key))
    }

    /// Makes room for `additional` more entries without growing again.
    pub(crate) fn reserve(&mut self, additional: usize) {
        let want = self.live.saturating_add(additional);
        self.entries.reserve(additional);
        if want > self.capacity() {
            self.rebuild(slots_for(want));
        }
    }

    /// Makes an empty table hold `entries`, which becomes its entry list as it is (no entry
    /// is copied: a block's new nodes arrive as one list, and copying ~25,000 nodes of 144
    /// bytes into a table cost as much as building its index). Of two entries under one key,
    /// the later is kept, as [`NodeTable::insert`] would. All or nothing: when the table is
    /// not empty, `entries` is too long, or `accept` refuses a key, the table is unchanged
    /// and `entries` comes back.
    pub(crate) fn fill(
        &mut self,
        mut entries: Vec<(NodeKey, Node)>,
        accept: impl Fn(&NodeKey) -> bool,
    ) -> Result<(), Vec<(NodeKey, Node)>> {
        // A table without live entries has no entry at all (a removal drops trailing removed
        // entries), so `live` tells whether it is empty.
        if self.live != 0 || entries.len() > MAX_ENTRIES {
            return Err(entries);
        }
        let mut index = vec![0; slots_for(entries.len())];
        let mask = index.len() - 1;
        let mut live = entries.len();
        for i in 0..entries.len() {
            let key = &entries[i].0;
            if !accept(key) {
                return Err(entries);
            }
            let hash = self.hasher.hash_one(key);
            let low = (hash & 0xffff_ffff) as usize;
            let mut p = hash as usize & mask;
            // At most MAX_ENTRIES entries, so the position plus one fits in 32 bits.
            let slot = ((hash & 0xffff_ffff) << 32) | (i as u64 + 1);
            loop {
                let s = index[p];
                if s == 0 {
                    index[p] = slot;
                    break;
                }
                if hash_of(s) == low && entries[entry_of(s)].0 == *key {
                    // The same key earlier in the list: this entry replaces it.
                    entries[entry_of(s)].0 = DEAD;
                    index[p] = slot;
                    live -= 1;
                    break;
                }
                p = (p + 1) & mask;
            }
        }
        self.index = index;
        self.entries = entries;
        self.live = live;
        if self.live * 2 < self.entries.len() {
            self.compact();
        }
        Ok(())
    }

    /// Writes `node` under `key`; returns the node it replaced.
    pub(crate) fn insert(&mut self, key: NodeKey, node: Node) -> Result<Option<Node>, TableFull> {
        let hash = self.hash(&key);
        if let Some(p) = self.find(&key, hash) {
            let e = entry_of(self.index[p]);
            return Ok(Some(std::mem::replace(&mut self.entries[e].1, node)));
        }
        if self.entries.len() >= MAX_ENTRIES {
            self.compact();
            if self.entries.len() >= MAX_ENTRIES {
                return Err(TableFull);
            }
        }
        if self.live + 1 > self.capacity() {
            self.rebuild(slots_for(self.live + 1).max(self.index.len() * 2));
        }
        let mask = self.mask();
        let mut p = hash as usize & mask;
        while self.index[p] != 0 {
            p = (p + 1) & mask;
        }
        // Below MAX_ENTRIES, so the position plus one fits in 32 bits.
        self.index[p] = ((hash & 0xffff_ffff) << 32) | (self.entries.len() as u64 + 1);
        self.entries.push((key, node));
        self.live += 1;
        Ok(None)
    }

    /// Removes `key`; returns its node. Its entry is marked removed ([`DEAD`]); when half the
    /// entries are, they are compacted ([`NodeTable::compact`]): a removal reads the key's slot
    /// and entry only, as a lookup does.
    pub(crate) fn remove(&mut self, key: &NodeKey) -> Option<Node> {
        let node = self.remove_lazily(key);
        if self.is_sparse() {
            self.compact();
        }
        node
    }

    /// Removes `key` as [`NodeTable::remove`] does, but leaves the compaction to the caller
    /// ([`NodeTable::is_sparse`], [`NodeTable::compact_into`]), who may have room for it.
    pub(crate) fn remove_lazily(&mut self, key: &NodeKey) -> Option<Node> {
        let p = self.find(key, self.hash(key))?;
        let e = entry_of(self.index[p]);
        self.unlink(p);
        let (_, node) = std::mem::replace(
            &mut self.entries[e],
            (
                DEAD,
                Node::Internal {
                    left: None,
                    right: None,
                },
            ),
        );
        self.live -= 1;
        while self.entries.last().is_some_and(|e| !is_live(e)) {
            self.entries.pop();
        }
        Some(node)
    }

    /// Whether removed entries outnumber live ones (a table compacts then).
    pub(crate) fn is_sparse(&self) -> bool {
        self.live * 2 < self.entries.len()
    }

    /// Whether the index is more than eight times what the live entries need (a table that
    /// lost most of its entries gives the room back then).
    pub(crate) fn is_oversized(&self) -> bool {
        self.live * 8 < self.capacity()
    }

    /// Moves the live entries, in order, into `into` (emptied first; it grows if it is too
    /// small) and rebuilds the index over them, shrunk to their size if it
    /// [is oversized](NodeTable::is_oversized). Returns the old entry list, empty, its room
    /// kept: a store reuses it for a later batch instead of writing fresh memory.
    pub(crate) fn compact_into(&mut self, mut into: Vec<(NodeKey, Node)>) -> Vec<(NodeKey, Node)> {
        into.clear();
        into.extend(self.entries.drain(..).filter(is_live));
        let old = std::mem::replace(&mut self.entries, into);
        if self.is_oversized() {
            let slots = if self.live == 0 {
                0
            } else {
                slots_for(self.live)
            };
            self.index = vec![0; slots.min(self.index.len())];
        }
        self.reindex();
        old
    }

    /// Drops the removed entries and rebuilds the index (of the same length) over the live
    /// ones: an entry's position changes, so each live key is hashed again (once per removed
    /// half, reading the entries in order).
    fn compact(&mut self) {
        self.entries.retain(is_live);
        self.reindex();
    }

    /// Rebuilds the index (of its current length) over the entries, all live.
    fn reindex(&mut self) {
        self.index.iter_mut().for_each(|s| *s = 0);
        let mask = self.mask();
        for (i, (k, _)) in self.entries.iter().enumerate() {
            let hash = self.hasher.hash_one(k);
            let mut p = hash as usize & mask;
            while self.index[p] != 0 {
                p = (p + 1) & mask;
            }
            self.index[p] = ((hash & 0xffff_ffff) << 32) | (i as u64 + 1);
        }
    }

    /// Empties index slot `p`, shifting back the slots of the probe run after it that may
    /// move (those whose home is not between `p` and themselves), so that every probe still
    /// reaches its key before an empty slot.
    fn unlink(&mut self, mut hole: usize) {
        let mask = self.mask();
        let mut j = (hole + 1) & mask;
        loop {
            let slot = self.index[j];
            if slot == 0 {
                break;
            }
            let home = hash_of(slot) & mask;
            // Distance from its home to j, against the distance from the hole to j.
            if (j.wrapping_sub(home) & mask) >= (j.wrapping_sub(hole) & mask) {
                self.index[hole] = slot;
                hole = j;
            }
            j = (j + 1) & mask;
        }
        self.index[hole] = 0;
    }

    /// Rebuilds the index with `slots` slots (a power of two holding every entry, or 0 for
    /// an empty table) from the hash bits the slots keep.
    fn rebuild(&mut self, slots: usize) {
        let old = std::mem::replace(&mut self.index, vec![0; slots]);
        let mask = self.mask();
        for slot in old.into_iter().filter(|s| *s != 0) {
            let mut p = hash_of(slot) & mask;
            while self.index[p] != 0 {
                p = (p + 1) & mask;
            }
            self.index[p] = slot;
        }
    }

    /// The entries, in no particular order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&NodeKey, &Node)> {
        self.entries
            .iter()
            .filter(|e| is_live(e))
            .map(|(k, n)| (k, n))
    }

    /// Takes every entry out, leaving the table empty.
    pub(crate) fn take_entries(&mut self) -> Vec<(NodeKey, Node)> {
        self.index = Vec::new();
        self.live = 0;
        let mut entries = std::mem::take(&mut self.entries);
        entries.retain(is_live);
        entries
    }
}

/// The smallest index (a power of two, at least [`MIN_SLOTS`]) that holds `entries` at most
/// three quarters full.
fn slots_for(entries: usize) -> usize {
    entries
        .saturating_mul(4)
        .div_ceil(3)
        .max(MIN_SLOTS)
        .next_power_of_two()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::Hash;
    use crate::state_tree::store::{Child, LeafValue};
    use proptest::prelude::*;
    use std::collections::hash_map::RandomState;
    use std::collections::HashMap;

    fn key(i: u32) -> NodeKey {
        let mut path = [0u8; 32];
        path[..4].copy_from_slice(&i.to_be_bytes());
        NodeKey {
            version: u64::from(i % 7),
            depth: 32,
            path,
        }
    }

    fn node(i: u32) -> Node {
        if i % 3 == 0 {
            Node::Leaf {
                key: Hash([i as u8; 32]),
                value: LeafValue::new(&i.to_be_bytes()),
            }
        } else {
            Node::Internal {
                left: None,
                right: Some(Child {
                    version: u64::from(i),
                    hash: Hash([1; 32]),
                    leaf: false,
                }),
            }
        }
    }

    /// A hasher whose values collide a lot: every probe run and backward shift gets exercised.
    #[derive(Default, Clone)]
    struct Crowded;
    impl BuildHasher for Crowded {
        type Hasher = CrowdedHasher;
        fn build_hasher(&self) -> CrowdedHasher {
            CrowdedHasher(0)
        }
    }
    struct CrowdedHasher(u64);
    impl std::hash::Hasher for CrowdedHasher {
        fn write(&mut self, bytes: &[u8]) {
            for b in bytes {
                self.0 = self.0.wrapping_mul(31).wrapping_add(u64::from(*b));
            }
        }
        fn finish(&self) -> u64 {
            self.0 % 13
        }
    }

    #[derive(Debug, Clone)]
    enum Op {
        Insert(u32),
        Remove(u32),
        /// A lazy removal, then a compaction into a list of that room if one is due, as
        /// `MemoryStore` does.
        RemoveLazily(u32, u8),
        /// A compaction into a new list, due or not.
        Compact,
        Reserve(u8),
    }

    fn ops() -> impl Strategy<Value = Vec<Op>> {
        prop::collection::vec(
            prop_oneof![
                6 => (0u32..300).prop_map(Op::Insert),
                2 => (0u32..300).prop_map(Op::Remove),
                2 => (0u32..300, any::<u8>()).prop_map(|(i, n)| Op::RemoveLazily(i, n)),
                1 => Just(Op::Compact),
                1 => any::<u8>().prop_map(Op::Reserve),
            ],
            0..600,
        )
    }

    /// `fill`: the keys of a list the empty table is filled with first ([`NodeTable::fill`]),
    /// repeats included; then `ops`.
    fn check<S: BuildHasher + Default>(fill: &[u32], ops: &[Op]) {
        let mut t: NodeTable<S> = NodeTable::default();
        let mut model: HashMap<NodeKey, Node> = HashMap::new();
        let entries: Vec<_> = fill.iter().map(|i| (key(*i), node(*i + 2000))).collect();
        t.fill(entries.clone(), |_| true)
            .expect("an empty table takes any list");
        model.extend(entries);
        assert_eq!(t.len(), model.len());
        assert_eq!(t.index.len(), slots_for(fill.len()));
        // Repeats replaced beyond half the list are compacted at once, as removals are.
        assert!(t.entries.len() <= 2 * t.len());
        for op in ops {
            match op {
                Op::Insert(i) => {
                    let old = t.insert(key(*i), node(*i + 1000)).unwrap();
                    assert_eq!(old, model.insert(key(*i), node(*i + 1000)));
                }
                Op::Remove(i) => assert_eq!(t.remove(&key(*i)), model.remove(&key(*i))),
                Op::RemoveLazily(i, n) => {
                    assert_eq!(t.remove_lazily(&key(*i)), model.remove(&key(*i)));
                    if t.is_sparse() || t.is_oversized() {
                        let room = usize::from(*n);
                        let old = t.compact_into(Vec::with_capacity(room));
                        assert!(old.is_empty());
                        assert!(t.entries.capacity() >= room.max(t.len()));
                    }
                }
                Op::Compact => {
                    let had = t.entries.capacity();
                    let old = t.compact_into(Vec::new());
                    assert!(
                        old.is_empty() && old.capacity() == had,
                        "the old list comes back"
                    );
                    assert_eq!(t.entries.len(), t.len());
                }
                Op::Reserve(n) => t.reserve(usize::from(*n)),
            }
            assert_eq!(t.len(), model.len());
            assert!(t.len() <= t.capacity());
            // Removed entries never outnumber live ones: they are compacted first.
            assert!(
                t.entries.len() <= 2 * t.len(),
                "{} entries, {} live",
                t.entries.len(),
                t.len()
            );
        }
        for i in 0..300 {
            let h = t.hash(&key(i));
            assert_eq!(t.get_hashed(&key(i), h), model.get(&key(i)), "key {i}");
            t.home(h);
            t.touch(h);
        }
        let mut all: Vec<_> = t.iter().map(|(k, n)| (*k, n.clone())).collect();
        all.sort_by_key(|(k, _)| *k);
        let mut want: Vec<_> = model.into_iter().collect();
        want.sort_by_key(|(k, _)| *k);
        assert_eq!(all, want);
    }

    proptest! {
        /// A fill with repeated keys, then inserts, removals (lazy or not), compactions and
        /// reservations in any order give what a map gives, with a well-spread hash and with
        /// one that piles every key onto 13 slots.
        #[test]
        fn a_table_behaves_as_a_map(
            fill in prop::collection::vec(0u32..300, 0..900),
            ops in ops(),
        ) {
            check::<RandomState>(&fill, &ops);
            check::<Crowded>(&fill, &ops);
        }
    }

    /// The index is always the smallest that holds the live entries at most three quarters
    /// full (a power of two, at least 8): growing one insert at a time, after a reservation,
    /// and after a compaction of a table that lost most of its entries.
    #[test]
    fn the_index_is_sized_for_its_entries() {
        let mut t: NodeTable<RandomState> = NodeTable::default();
        for i in 0..2_000 {
            t.insert(key(i), node(i)).unwrap();
            assert_eq!(t.index.len(), slots_for(t.len()), "{} entries", t.len());
        }
        let mut r: NodeTable<RandomState> = NodeTable::default();
        r.reserve(1_000);
        assert_eq!(r.index.len(), slots_for(1_000));
        assert!(r.entries.capacity() >= 1_000);
        for i in 0..1_000 {
            r.insert(key(i), node(i)).unwrap();
        }
        assert_eq!(
            r.index.len(),
            slots_for(1_000),
            "no growth after the reservation"
        );
        r.reserve(0);
        assert_eq!(
            r.index.len(),
            slots_for(1_000),
            "a reservation never shrinks"
        );
        for i in 0..900 {
            r.remove(&key(i));
        }
        r.compact_into(Vec::new());
        assert_eq!(r.index.len(), slots_for(100));
        assert_eq!((slots_for(0), slots_for(6), slots_for(7)), (8, 8, 16));
    }

    /// A fill is all or nothing: a table that holds anything, or a list with a key `accept`
    /// refuses, leaves the table as it was and gives the list back.
    #[test]
    fn a_refused_fill_changes_nothing() {
        let list: Vec<_> = (0..100).map(|i| (key(i), node(i))).collect();
        let mut t: NodeTable<RandomState> = NodeTable::default();
        let back = t.fill(list.clone(), |k| k.version != 3).unwrap_err();
        assert_eq!(back, list);
        assert_eq!((t.len(), t.index.len(), t.entries.len()), (0, 0, 0));
        t.insert(key(500), node(500)).unwrap();
        assert_eq!(t.fill(list.clone(), |_| true).unwrap_err(), list);
        assert_eq!(t.len(), 1);
        assert_eq!(t.get(&key(0)), None);
        assert_eq!(t.get(&key(500)), Some(&node(500)));
        t.remove(&key(500));
        t.fill(list.clone(), |_| true).expect("empty again");
        assert_eq!(t.len(), 100);
        assert_eq!(t.get(&key(500)), None);
        assert!(list.iter().all(|(k, n)| t.get(k) == Some(n)));
    }

    /// `compact_into` gives back an index larger than the live entries need, and drops
    /// removed entries, each alone: an oversized index without removed entries, and removed
    /// entries under an index of the right size. The entries move to the given list; the old
    /// one comes back empty with its room.
    #[test]
    fn compacting_gives_back_the_index_the_removed_entries_and_the_old_list() {
        let mut t: NodeTable<RandomState> = NodeTable::default();
        t.reserve(5_000);
        for i in 0..100 {
            t.insert(key(i), node(i)).unwrap();
        }
        assert_eq!((t.index.len(), t.entries.len()), (slots_for(5_000), 100));
        assert!(t.is_oversized() && !t.is_sparse());
        let old = t.compact_into(Vec::with_capacity(150));
        assert!(old.is_empty() && old.capacity() >= 5_000);
        assert_eq!((t.index.len(), t.entries.len()), (slots_for(100), 100));
        assert_eq!(t.entries.capacity(), 150);
        assert!(!t.is_oversized());
        assert!((0..100).all(|i| t.get(&key(i)) == Some(&node(i))));

        let mut t: NodeTable<RandomState> = NodeTable::default();
        for i in 0..200 {
            t.insert(key(i), node(i)).unwrap();
        }
        for i in 10..15 {
            t.remove_lazily(&key(i)).unwrap();
        }
        // Five removed entries, too few to be due, and the index already the live size's.
        assert_eq!((t.len(), t.entries.len()), (195, 200));
        assert!(!t.is_sparse() && !t.is_oversized());
        assert_eq!(t.index.len(), slots_for(195));
        t.compact_into(Vec::new());
        assert_eq!((t.len(), t.entries.len()), (195, 195));
        assert_eq!(t.index.len(), slots_for(195));
        assert!((0..200).all(|i| t.get(&key(i)).is_some() != (10..15).contains(&i)));
    }

    /// A lazy removal leaves its entry until the caller compacts: sparse once removed entries
    /// outnumber live ones, and not before.
    #[test]
    fn a_lazy_removal_leaves_the_compaction_to_the_caller() {
        let mut t: NodeTable<RandomState> = NodeTable::default();
        for i in 0..100 {
            t.insert(key(i), node(i)).unwrap();
        }
        // The last entries' removal drops them at once; the others stay until compacted.
        for i in 0..50 {
            assert_eq!(t.remove_lazily(&key(i)), Some(node(i)));
            assert!(!t.is_sparse(), "{i}");
        }
        assert_eq!((t.len(), t.entries.len()), (50, 100));
        t.remove_lazily(&key(50)).unwrap();
        assert!(t.is_sparse());
        assert_eq!(t.remove_lazily(&key(50)), None);
        t.compact_into(Vec::new());
        assert_eq!((t.len(), t.entries.len()), (49, 49));
        assert!((0..100).all(|i| t.get(&key(i)).is_some() == (i > 50)));
    }

    #[test]
    fn a_table_grows_shrinks_and_empties() {
        let mut t: NodeTable<RandomState> = NodeTable::default();
        for i in 0..10_000 {
            assert!(t.insert(key(i), node(i)).unwrap().is_none());
        }
        assert_eq!(t.len(), 10_000);
        for i in (0..10_000).filter(|i| i % 10 != 0) {
            assert_eq!(t.remove(&key(i)), Some(node(i)));
            assert!(
                t.entries.len() <= 2 * t.len(),
                "removed entries not compacted"
            );
        }
        t.compact_into(Vec::new());
        assert_eq!(t.len(), 1_000);
        assert!(t.capacity() < 2_000, "capacity {}", t.capacity());
        for i in 0..10_000 {
            assert_eq!(t.get(&key(i)).is_some(), i % 10 == 0);
        }
        let taken = t.take_entries();
        assert_eq!((taken.len(), t.len(), t.get(&key(0))), (1_000, 0, None));
    }
}
