//! The state tree against a naive recomputation of the definition, under random batches;
//! proofs and each way of tampering with one; pruning and rollback.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;

type Map = BTreeMap<Hash, Vec<u8>>;

/// The root straight from the definition: no store, no versions, no update.
fn naive_root(entries: &[(Hash, Vec<u8>)], depth: usize) -> Hash {
    match entries {
        [] => Hash::ZERO,
        [(k, v)] => leaf_hash(k, &value_hash(v)),
        _ => {
            let split = entries.partition_point(|(k, _)| !key_bit(k, depth));
            node_hash(
                &naive_root(&entries[..split], depth + 1),
                &naive_root(&entries[split..], depth + 1),
            )
        }
    }
}

fn naive(map: &Map) -> Hash {
    let v: Vec<(Hash, Vec<u8>)> = map.iter().map(|(k, v)| (*k, v.clone())).collect();
    naive_root(&v, 0)
}

fn key(i: u32) -> Hash {
    Hash::blake2b(&i.to_be_bytes())
}

fn val(i: u32, x: u64) -> Vec<u8> {
    AccountLeaf {
        balance: x,
        nonce: u64::from(i),
        stake: 0,
        stakeholder_id: None,
        vrf_key: None,
    }
    .to_canonical_bytes()
}

fn tree_of(map: &Map) -> (StateTree<MemoryStore>, Hash) {
    let mut t = StateTree::new(MemoryStore::new());
    let root = t
        .apply(0, map.iter().map(|(k, v)| (*k, Some(v.clone()))))
        .expect("memory store");
    (t, root)
}

/// Keys sharing long prefixes, to exercise deep paths and one-sided internal nodes.
fn close_keys() -> Vec<Hash> {
    let base = key(7);
    let mut out = Vec::new();
    for bit in [255usize, 254, 200, 9, 8, 0] {
        let mut k = base;
        set_bit(&mut k, bit, !key_bit(&base, bit));
        out.push(k);
    }
    out.push(base);
    out
}

/// The tree's Blake2b (`blake2b_simd`, one at a time and four lanes at once) is the
/// workspace's Blake2b-256 (`Hash::blake2b`, the `blake2` crate) for every input length the
/// tree uses and around the block boundaries.
#[test]
fn tree_hashes_are_blake2b_256() {
    let data: Vec<u8> = (0..300u32).map(|i| (i * 7 + 3) as u8).collect();
    let lens: Vec<usize> = (0..=300).collect();
    let mut inputs = Vec::new();
    let mut ends = Vec::new();
    for &n in &lens {
        inputs.extend_from_slice(&data[..n]);
        ends.push(inputs.len());
    }
    let mut out = Vec::new();
    super::hash_many(&inputs, &ends, &mut out);
    for (n, h) in lens.iter().zip(&out) {
        assert_eq!(*h, Hash::blake2b(&data[..*n]), "length {n}");
    }
    let (a, b) = (Hash([0xab; 32]), Hash([0x01; 32]));
    let cat = |t: u8| [&[t][..], &a.0, &b.0].concat();
    assert_eq!(
        super::node_hash(&a, &b),
        Hash::blake2b(&cat(super::NODE_TAG))
    );
    assert_eq!(
        super::leaf_hash(&a, &b),
        Hash::blake2b(&cat(super::LEAF_TAG))
    );
    let value = [&[super::VALUE_TAG][..], &data[..29]].concat();
    assert_eq!(super::value_hash(&data[..29]), Hash::blake2b(&value));
    let account = PublicKey([0x5c; 32]);
    assert_eq!(
        account_key(&account),
        Hash::blake2b_parts(&[ACCOUNT_KEY_TAG, &account.0])
    );
}

#[test]
fn empty_tree_has_the_zero_root_and_proves_every_key_absent() {
    let mut t = StateTree::new(MemoryStore::new());
    assert_eq!(t.apply(5, []).expect("apply"), Hash::ZERO);
    let (v, p) = t.prove(5, &key(1)).expect("prove");
    assert_eq!(v, None);
    assert_eq!(p.to_bytes(), vec![0, 0, 0]);
    verify(&Hash::ZERO, &key(1), None, &p).expect("absent");
    assert_eq!(
        verify(&Hash::ZERO, &key(1), Some(&val(1, 1)), &p),
        Err(ProofError::ProvesAbsence { key: key(1) })
    );
}

#[test]
fn single_leaf_is_the_root_and_deep_pairs_match_the_definition() {
    let mut map = Map::new();
    map.insert(key(1), val(1, 10));
    let (_, root) = tree_of(&map);
    assert_eq!(root, leaf_hash(&key(1), &value_hash(&val(1, 10))));
    for k in close_keys() {
        map.insert(k, val(2, 20));
    }
    let (t, root) = tree_of(&map);
    assert_eq!(root, naive(&map));
    for k in map.keys() {
        let (v, p) = t.prove(0, k).expect("prove");
        verify(&root, k, v.as_deref(), &p).expect("inclusion");
        assert_eq!(StateProof::from_bytes(&p.to_bytes()), Ok(p));
    }
    // The two keys that differ in the last bit sit 256 levels down.
    let (_, p) = t.prove(0, &close_keys()[0]).expect("prove");
    assert_eq!(p.depth(), 256);
}

#[test]
fn removing_keys_collapses_back_to_the_same_roots() {
    let keys = close_keys();
    let mut t = StateTree::new(MemoryStore::new());
    let mut map = Map::new();
    let mut roots = vec![t.apply(0, []).expect("apply")];
    for (i, k) in keys.iter().enumerate() {
        map.insert(*k, val(0, i as u64));
        let r = t
            .apply(i as u64 + 1, [(*k, Some(val(0, i as u64)))])
            .expect("apply");
        assert_eq!(r, naive(&map));
        roots.push(r);
    }
    let n = keys.len() as u64;
    for (j, k) in keys.iter().enumerate().rev() {
        let r = t
            .apply(n + (keys.len() - j) as u64, [(*k, None)])
            .expect("apply");
        assert_eq!(r, roots[j], "removing key {j} restores the root before it");
    }
}

#[test]
fn a_corrupt_store_is_an_error_not_a_panic() {
    let keys = close_keys();
    let mut t = StateTree::new(MemoryStore::new());
    t.apply(0, [(keys[0], Some(val(0, 0))), (keys[6], Some(val(0, 1)))])
        .expect("apply");
    // The two keys differ in their last bit only: their leaves are 256 levels down. An
    // internal node there, or a missing node, is a corrupt store.
    let deep = NodeKey::at(0, &keys[0], 256);
    let mut store = t.into_store();
    let child = Child {
        version: 0,
        hash: Hash([9; 32]),
        leaf: true,
    };
    store
        .put_node(
            deep,
            Node::Internal {
                left: Some(child),
                right: Some(child),
            },
        )
        .expect("put");
    let mut t = StateTree::new(store);
    assert!(matches!(t.prove(0, &keys[0]), Err(StateTreeError::Corrupt(k)) if k == deep));
    assert!(matches!(
        t.apply(1, [(keys[0], None)]),
        Err(StateTreeError::Corrupt(k)) if k == deep
    ));
    assert!(matches!(t.get(0, &keys[6]), Ok(Some(_))));
    let mut store = t.into_store();
    store.delete_node(&deep).expect("delete");
    let t = StateTree::new(store);
    assert!(matches!(t.prove(0, &keys[0]), Err(StateTreeError::MissingNode(k)) if k == deep));
}

#[test]
fn versions_must_be_consecutive() {
    let mut t = StateTree::new(MemoryStore::new());
    t.apply(10, [(key(1), Some(val(1, 1)))]).expect("apply");
    assert!(matches!(
        t.apply(10, []),
        Err(StateTreeError::VersionNotNext {
            version: 10,
            latest: 10
        })
    ));
    assert!(matches!(
        t.apply(12, []),
        Err(StateTreeError::VersionNotNext {
            version: 12,
            latest: 10
        })
    ));
    assert!(matches!(t.root(9), Err(StateTreeError::UnknownVersion(9))));
}

/// A tree of 40 keys with an inclusion proof of one and an exclusion proof of another.
fn sample() -> (StateTree<MemoryStore>, Hash, Hash, Hash) {
    let map: Map = (0..40)
        .map(|i| (key(i), val(i, u64::from(i) * 3)))
        .collect();
    let (t, root) = tree_of(&map);
    (t, root, key(3), key(1000))
}

#[test]
fn tampered_proofs_are_refused_by_name() {
    let (t, root, present, absent) = sample();
    let (v, inc) = t.prove(0, &present).expect("prove");
    let v = v.expect("present");
    let (none, exc) = t.prove(0, &absent).expect("prove");
    assert_eq!(none, None);
    verify(&root, &present, Some(&v), &inc).expect("inclusion");
    verify(&root, &absent, None, &exc).expect("exclusion");

    // A wrong value.
    let other = val(3, 1);
    assert_eq!(
        verify(&root, &present, Some(&other), &inc),
        Err(ProofError::ValueMismatch {
            claimed: value_hash(&other),
            proven: value_hash(&v)
        })
    );
    // Claiming absence of a present key, presence of an absent one.
    assert_eq!(
        verify(&root, &present, None, &inc),
        Err(ProofError::ProvesPresence { key: present })
    );
    assert!(matches!(
        verify(&root, &absent, Some(&v), &exc),
        Err(ProofError::ProvesAbsence { .. })
    ));
    // The proof of one key offered for another.
    assert!(matches!(
        verify(&root, &key(4), Some(&v), &inc),
        Err(ProofError::PathMismatch { leaf, .. }) if leaf == present
    ));
    // A forged sibling, or the proof checked against another root.
    let mut forged = inc.clone();
    forged.siblings[0].0[5] ^= 1;
    assert!(matches!(
        verify(&root, &present, Some(&v), &forged),
        Err(ProofError::RootMismatch { .. })
    ));
    let other_root = Hash::blake2b(b"another root");
    assert_eq!(
        verify(&other_root, &present, Some(&v), &inc),
        Err(ProofError::RootMismatch {
            expected: other_root,
            computed: root
        })
    );
    // A path cut short or made longer.
    let mut short = inc.clone();
    short.siblings.pop();
    assert!(verify(&root, &present, Some(&v), &short).is_err());
    let mut long = inc.clone();
    long.siblings.push(Hash::ZERO);
    assert_eq!(
        verify(&root, &present, Some(&v), &long),
        Err(ProofError::EmptyLastSibling {
            depth: long.depth()
        })
    );
}

#[test]
fn a_proof_of_an_older_version_fails_against_the_newer_root() {
    let (mut t, root0, present, _) = sample();
    let root1 = t.apply(1, [(present, Some(val(3, 999)))]).expect("apply");
    let (v0, p0) = t.prove(0, &present).expect("old version readable");
    verify(&root0, &present, v0.as_deref(), &p0).expect("valid for its own root");
    assert!(matches!(
        verify(&root1, &present, v0.as_deref(), &p0),
        Err(ProofError::RootMismatch { .. })
    ));
    let (v1, p1) = t.prove(1, &present).expect("prove");
    assert_eq!(v1, Some(val(3, 999)));
    verify(&root1, &present, v1.as_deref(), &p1).expect("new proof");
}

#[test]
fn proof_bytes_that_were_cut_extended_or_flipped_are_refused() {
    let (t, _, present, absent) = sample();
    let (_, inc) = t.prove(0, &present).expect("prove");
    let (_, exc) = t.prove(0, &absent).expect("prove");
    for p in [inc, exc] {
        let b = p.to_bytes();
        assert_eq!(StateProof::from_bytes(&b).as_ref(), Ok(&p));
        let expected = b.len();
        for cut in 3..3 + p.depth().div_ceil(8) {
            assert!(matches!(
                StateProof::from_bytes(&b[..cut]),
                Err(ProofError::LengthMismatch { actual, .. }) if actual == cut
            ));
        }
        for cut in 3 + p.depth().div_ceil(8)..b.len() {
            assert_eq!(
                StateProof::from_bytes(&b[..cut]),
                Err(ProofError::LengthMismatch {
                    expected,
                    actual: cut
                }),
                "cut at {cut}"
            );
        }
        for cut in 0..3 {
            assert!(matches!(
                StateProof::from_bytes(&b[..cut]),
                Err(ProofError::TooShort { .. })
            ));
        }
        let mut ext = b.clone();
        ext.push(0);
        assert!(matches!(
            StateProof::from_bytes(&ext),
            Err(ProofError::LengthMismatch { .. })
        ));
        // Each bitmap bit flipped changes the implied length by 32 bytes.
        for bit in 0..p.depth() {
            let mut f = b.clone();
            f[3 + bit / 8] ^= 0x80 >> (bit % 8);
            assert!(
                matches!(
                    StateProof::from_bytes(&f),
                    Err(ProofError::LengthMismatch { expected: e, .. }) if e.abs_diff(expected) == 32
                ),
                "bit {bit}"
            );
        }
        let mut k = b.clone();
        k[0] = 2;
        assert_eq!(StateProof::from_bytes(&k), Err(ProofError::UnknownKind(2)));
    }
}

#[test]
fn non_canonical_proof_bytes_are_refused() {
    // Depth 3, bitmap with a padding bit set.
    assert_eq!(
        StateProof::from_bytes(&[0, 0, 3, 0x01]),
        Err(ProofError::BitmapPadding)
    );
    // Depth 257.
    assert_eq!(
        StateProof::from_bytes(&[0, 1, 1]),
        Err(ProofError::TooDeep { depth: 257 })
    );
    // A sibling marked present that is zero.
    let mut b = vec![0, 0, 1, 0x80];
    b.extend_from_slice(&[0u8; 32]);
    assert_eq!(
        StateProof::from_bytes(&b),
        Err(ProofError::ZeroSibling { index: 0 })
    );
    assert!(matches!(
        StateProof::from_bytes(&vec![0u8; MAX_PROOF_LEN + 1]),
        Err(ProofError::TooLong { .. })
    ));
    // The longest proof decodes.
    let p = StateProof {
        siblings: vec![Hash([1; 32]); KEY_BITS],
        terminal: ProofTerminal::Leaf {
            key: Hash([2; 32]),
            value_hash: Hash([3; 32]),
        },
    };
    assert_eq!(p.to_bytes().len(), MAX_PROOF_LEN);
    assert_eq!(StateProof::from_bytes(&p.to_bytes()), Ok(p));
}

#[test]
fn prune_keeps_recent_versions_readable_and_frees_the_rest() {
    let mut t = StateTree::new(MemoryStore::new());
    let mut map = Map::new();
    let mut roots = Vec::new();
    for v in 0..20u64 {
        let changes: Vec<(Hash, Option<Vec<u8>>)> = (0..30u32)
            .map(|i| (key(i), Some(val(i, v * 100 + u64::from(i)))))
            .chain([(key(100 + v as u32), Some(val(0, v)))])
            .collect();
        for (k, x) in &changes {
            map.insert(*k, x.clone().expect("set"));
        }
        roots.push(t.apply(v, changes).expect("apply"));
    }
    let before = t.store().node_count();
    t.prune(15).expect("prune");
    assert_eq!(t.versions().expect("versions"), Some((15, 19)));
    assert!(t.store().node_count() < before / 2, "old nodes are freed");
    for v in 15..20u64 {
        assert_eq!(t.root(v).expect("kept"), roots[v as usize]);
        for i in [0u32, 29, 115, 119] {
            let (x, p) = t.prove(v, &key(i)).expect("every kept node is there");
            verify(&roots[v as usize], &key(i), x.as_deref(), &p).expect("proof");
        }
    }
    assert!(matches!(
        t.prove(14, &key(0)),
        Err(StateTreeError::UnknownVersion(14))
    ));
    // A full rebuild of the latest state needs no more nodes than what is left plus the
    // versions 15..18 still reachable.
    let (fresh, root) = tree_of(&map);
    assert_eq!(root, roots[19]);
    assert!(t.store().node_count() >= fresh.store().node_count());
    t.prune(19).expect("prune");
    assert_eq!(t.store().node_count(), fresh.store().node_count());
    assert_eq!(t.store().stale_count(), 0);
}

/// Batches large enough for the two-thread update (both halves of the root over
/// `PARALLEL_MIN_CHANGES`), with removals, values set back and keys given twice: every version
/// has the root of the definition and of a one-shot build (which never runs in parallel), and
/// rollback and pruning leave exactly the nodes of a one-shot build. A memory store takes each
/// half's batch whole.
#[test]
fn large_batches_updated_on_two_threads_match_the_definition() {
    let mut map = Map::new();
    let mut t = StateTree::new(MemoryStore::new());
    let mut roots = Vec::new();
    for v in 0..4u32 {
        let mut changes = Vec::new();
        for i in 0..3_000u32 {
            let k = (i * 7 + v * 1_001) % 5_000;
            let change = if (i + v) % 5 == 0 {
                None
            } else {
                Some(val(k, u64::from(v)))
            };
            changes.push((key(k), change));
        }
        // A key given twice keeps its last change.
        changes.push((key(1), Some(val(1, 99))));
        for (k, c) in &changes {
            match c {
                Some(x) => map.insert(*k, x.clone()),
                None => map.remove(k),
            };
        }
        let root = t.apply(u64::from(v), changes).expect("apply");
        assert_eq!(root, naive(&map));
        assert_eq!(root, tree_of(&map).1);
        if v > 0 {
            // Each half's nodes (the root with the left ones) became a table as they were.
            assert_eq!(
                (t.scratch.capacity(), t.scratch_left.capacity()),
                (0, 0),
                "version {v}: both batches taken whole"
            );
        }
        roots.push((root, map.clone()));
    }
    t.rollback(2).expect("rollback");
    t.prune(2).expect("prune");
    let (one_shot, root) = tree_of(&roots[2].1);
    assert_eq!(t.root(2).expect("root"), root);
    assert_eq!(t.store().node_count(), one_shot.store().node_count());
    for i in (0..5_000u32).step_by(97) {
        let (v, p) = t.prove(2, &key(i)).expect("prove");
        verify(&root, &key(i), v.as_deref(), &p).expect("verifies");
        assert_eq!(v.as_ref(), roots[2].1.get(&key(i)));
    }
}

/// Once pruning has compacted tables, an update takes its buffers from the lists the store
/// kept: one per half on two threads, one on a thread alone, and none while its own buffer
/// still has room (a store that did not take the last batch).
#[test]
fn updates_write_into_the_lists_pruning_gave_back() {
    let mut t = StateTree::new(MemoryStore::new());
    t.apply(0, (0..4_000u32).map(|i| (key(i), Some(val(i, 0)))))
        .expect("build");
    let batch = |v: u32| {
        (0..1_200u32).map(move |i| (key((i * 13 + v * 7) % 4_000), Some(val(i, u64::from(v)))))
    };
    let mut v = 1;
    while t.store().spare_count() < 3 {
        assert!(v < 200, "pruning never gave a list back");
        t.apply(u64::from(v), batch(v)).expect("apply");
        t.prune(u64::from(v).saturating_sub(2)).expect("prune");
        v += 1;
    }
    let kept = t.store().spare_count();
    t.apply(u64::from(v), batch(v)).expect("apply");
    assert_eq!(
        t.store().spare_count(),
        kept - 2,
        "two halves, two kept lists"
    );
    t.set_parallel(false);
    let kept = t.store().spare_count();
    t.apply(u64::from(v + 1), batch(v + 1)).expect("apply");
    assert_eq!(
        t.store().spare_count(),
        kept.saturating_sub(1),
        "one thread, one list"
    );
    // A buffer with room is used as it is.
    t.scratch = Vec::with_capacity(10);
    let kept = t.store().spare_count();
    t.apply(u64::from(v + 2), batch(v + 2)).expect("apply");
    assert_eq!(t.store().spare_count(), kept);
}

/// Two-thread batches after which one half of the root is empty, or holds a single key
/// (which moves up to the root's level, or becomes the root): each root is the definition's,
/// on two threads and on one.
#[test]
fn two_thread_batches_that_empty_a_half_match_the_definition() {
    let left: Vec<u32> = (0..2_000).filter(|i| !key_bit(&key(*i), 0)).collect();
    let right: Vec<u32> = (0..2_000).filter(|i| key_bit(&key(*i), 0)).collect();
    assert!(left.len().min(right.len()) > 2 * PARALLEL_MIN_CHANGES);
    let set = |ks: &[u32], x: u64| -> Vec<(Hash, Option<Vec<u8>>)> {
        ks.iter().map(|i| (key(*i), Some(val(*i, x)))).collect()
    };
    let remove = |ks: &[u32]| -> Vec<(Hash, Option<Vec<u8>>)> {
        ks.iter().map(|i| (key(*i), None)).collect()
    };
    let batches: Vec<Vec<(Hash, Option<Vec<u8>>)>> = vec![
        set(&(0..2_000).collect::<Vec<_>>(), 1),
        // The left half emptied, the right one changed.
        [remove(&left), set(&right, 2)].concat(),
        // The left half back, the right one down to one key: it moves up beside the left.
        [set(&left, 3), remove(&right[1..])].concat(),
        // Every left key but one removed, the right one's last key too (with removals of
        // absent keys, so that both halves have enough changes): one key is the tree.
        [remove(&left[1..]), remove(&right), set(&left[..1], 4)].concat(),
    ];
    for parallel in [true, false] {
        let mut map = Map::new();
        let mut t = StateTree::new(MemoryStore::new());
        t.set_parallel(parallel);
        for (v, batch) in batches.iter().enumerate() {
            for (k, c) in batch {
                match c {
                    Some(x) => map.insert(*k, x.clone()),
                    None => map.remove(k),
                };
            }
            let root = t.apply(v as u64, batch.clone()).expect("apply");
            assert_eq!(root, naive(&map), "version {v}, parallel {parallel}");
        }
        assert_eq!(map.len(), 1);
        let (one_shot, _) = tree_of(&map);
        t.prune(3).expect("prune");
        assert_eq!(t.store().node_count(), one_shot.store().node_count());
    }
}

/// A batch goes to two threads when each side of the root has at least
/// `PARALLEL_MIN_CHANGES` changes and the tree may use them; then the halves are the stored
/// root's children, split where the changes' first bit turns to 1.
#[test]
fn batches_split_at_the_root_only_when_both_sides_are_large() {
    let mut map = Map::new();
    for i in 0..2_000u32 {
        map.insert(key(i), val(i, 1));
    }
    let (mut t, _) = tree_of(&map);
    let base = t.root_child(0).expect("root");
    let (mut left, mut right): (Vec<Hash>, Vec<Hash>) = map.keys().partition(|k| !key_bit(k, 0));
    left.sort();
    right.sort();
    let batch = |l: usize, r: usize| -> Vec<(Hash, Option<Vec<u8>>)> {
        left[..l]
            .iter()
            .chain(&right[..r])
            .map(|k| (*k, Some(val(0, 2))))
            .collect()
    };
    let n = PARALLEL_MIN_CHANGES;
    let h = t
        .halves(base, &batch(n, n + 7))
        .expect("read")
        .expect("both sides large");
    assert_eq!(h.split, n);
    assert_eq!(h.key, NodeKey::root(0));
    let Some(Node::Internal { left: l, right: r }) = t.store().node(&h.key).expect("read") else {
        panic!("the root is internal");
    };
    assert_eq!((h.left, h.right), (l, r));
    for (a, b) in [(n - 1, n), (n, n - 1), (0, 2 * n)] {
        assert!(
            t.halves(base, &batch(a, b)).expect("read").is_none(),
            "{a} + {b}"
        );
    }
    assert!(t.halves(None, &batch(n, n)).expect("read").is_none());
    t.set_parallel(false);
    assert!(t.halves(base, &batch(n, n)).expect("read").is_none());
}

/// The room reserved for a batch's nodes: its reads and two per change.
#[test]
fn a_batch_reserves_room_for_its_reads_and_two_per_change() {
    assert_eq!(batch_room(100, 10), 120);
    assert_eq!(batch_room(0, 0), 0);
    assert_eq!(batch_room(7, 3), 13);
    assert_eq!(batch_room(usize::MAX, 3), usize::MAX);
}

#[test]
fn rollback_restores_the_older_version_exactly() {
    let (mut t, root0, _, _) = sample();
    let nodes0 = t.store().node_count();
    let r1 = t.apply(1, (0..10).map(|i| (key(i), None))).expect("apply");
    t.apply(2, (50..60).map(|i| (key(i), Some(val(i, 1)))))
        .expect("apply");
    t.rollback(0).expect("rollback");
    assert_eq!(t.versions().expect("versions"), Some((0, 0)));
    assert_eq!(t.store().node_count(), nodes0);
    assert_eq!(t.store().stale_count(), 0);
    assert_eq!(t.root(0).expect("root"), root0);
    // The same block applied again after the rollback gives the same root.
    assert_eq!(
        t.apply(1, (0..10).map(|i| (key(i), None))).expect("apply"),
        r1
    );
    t.prune(1).expect("prune");
    let (_, p) = t.prove(1, &key(20)).expect("prove");
    verify(&r1, &key(20), Some(&val(20, 60)), &p).expect("proof after prune");
    assert!(matches!(
        t.rollback(0),
        Err(StateTreeError::UnknownVersion(0))
    ));
}

#[test]
fn account_leaf_from_state_has_every_field_and_none_for_unknown_accounts() {
    use crate::{Genesis, KeyPair};
    let producer = KeyPair::from_seed([1; 32]).public();
    let state = LedgerState::from_genesis(&Genesis::devnet("node0", producer, 1_700_000_000_000));
    assert_eq!(
        AccountLeaf::from_state(&state, &producer),
        Some(AccountLeaf {
            balance: 1_000_000_000,
            nonce: 0,
            stake: 1_000,
            stakeholder_id: Some("node0".into()),
            vrf_key: None,
        })
    );
    let stranger = KeyPair::from_seed([2; 32]).public();
    assert_eq!(AccountLeaf::from_state(&state, &stranger), None);
}

#[test]
fn account_leaf_round_trips_and_refuses_bad_ids() {
    let l = AccountLeaf {
        balance: 1,
        nonce: 2,
        stake: 3,
        stakeholder_id: Some("pool-1".into()),
        vrf_key: None,
    };
    let b = l.to_canonical_bytes();
    assert_eq!(b.len(), 8 * 3 + 1 + 4 + 6 + 1);
    assert_eq!(AccountLeaf::from_canonical_bytes(&b), Ok(l.clone()));
    let mut bad = b.clone();
    bad[24] = 2;
    assert!(AccountLeaf::from_canonical_bytes(&bad).is_err());
    // The VRF key: 0x01 and 32 bytes after the id.
    let with_vrf = AccountLeaf {
        vrf_key: Some(crate::PublicKey([0xab; 32])),
        ..l
    };
    let v = with_vrf.to_canonical_bytes();
    assert_eq!(v.len(), 8 * 3 + 1 + 4 + 6 + 1 + 32);
    assert_eq!(v[8 * 3 + 1 + 4 + 6], 1);
    assert_eq!(&v[v.len() - 32..], &[0xab; 32][..]);
    assert_eq!(AccountLeaf::from_canonical_bytes(&v), Ok(with_vrf));
    // An unknown option tag, a cut key, a trailing byte: refused.
    let mut bad_tag = v.clone();
    bad_tag[8 * 3 + 1 + 4 + 6] = 2;
    assert!(AccountLeaf::from_canonical_bytes(&bad_tag).is_err());
    assert!(AccountLeaf::from_canonical_bytes(&v[..v.len() - 1]).is_err());
    let mut trailing = v.clone();
    trailing.push(0);
    assert!(AccountLeaf::from_canonical_bytes(&trailing).is_err());
    // Without the VRF option byte (the version 1 leaf): refused.
    assert!(AccountLeaf::from_canonical_bytes(&b[..b.len() - 1]).is_err());
    let bad_id = AccountLeaf {
        balance: 0,
        nonce: 0,
        stake: 0,
        stakeholder_id: Some("no spaces".into()),
        vrf_key: None,
    };
    assert!(AccountLeaf::from_canonical_bytes(&bad_id.to_canonical_bytes()).is_err());
}

fn batches() -> impl Strategy<Value = Vec<Vec<(u8, Option<u8>)>>> {
    // Keys from a small space (so that batches overwrite and delete each other's keys),
    // values from a small space (so that a value can be set back to what it was).
    prop::collection::vec(
        prop::collection::vec((any::<u8>(), prop::option::weighted(0.8, 0u8..4)), 0..24),
        1..6,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Random batches applied one version at a time give, at every version, the root of the
    /// definition, the root of a one-shot build, and proofs that verify; a shuffled order
    /// inside each batch changes nothing.
    #[test]
    fn roots_match_the_definition_whatever_the_batching(bs in batches(), seed in any::<u64>()) {
        let mut t = StateTree::new(MemoryStore::new());
        let mut shuffled = StateTree::new(MemoryStore::new());
        let mut map = Map::new();
        for (v, batch) in bs.iter().enumerate() {
            let changes: Vec<(Hash, Option<Vec<u8>>)> = batch
                .iter()
                .map(|(k, x)| (key(u32::from(*k)), x.map(|x| val(0, u64::from(x)))))
                .collect();
            // The last change of a key wins, in `map` as in `apply`.
            let mut last: BTreeMap<Hash, Option<Vec<u8>>> = BTreeMap::new();
            for (k, x) in &changes {
                last.insert(*k, x.clone());
            }
            for (k, x) in &last {
                match x {
                    Some(x) => { map.insert(*k, x.clone()); }
                    None => { map.remove(k); }
                }
            }
            let mut order: Vec<(Hash, Option<Vec<u8>>)> = last.into_iter().collect();
            let n = order.len().max(1);
            order.rotate_left((seed as usize + v) % n);
            order.reverse();
            let root = t.apply(v as u64, changes).expect("apply");
            prop_assert_eq!(shuffled.apply(v as u64, order).expect("apply"), root);
            prop_assert_eq!(root, naive(&map));
            prop_assert_eq!(tree_of(&map).1, root);
            for k in (0..=255u8).step_by(17).map(|k| key(u32::from(k))) {
                let (x, p) = t.prove(v as u64, &k).expect("prove");
                prop_assert_eq!(x.as_ref(), map.get(&k));
                prop_assert_eq!(verify(&root, &k, x.as_deref(), &p), Ok(()));
                prop_assert_eq!(StateProof::from_bytes(&p.to_bytes()), Ok(p));
            }
        }
        // Pruning all but the latest leaves exactly the nodes of a one-shot build.
        let last = bs.len() as u64 - 1;
        t.prune(last).expect("prune");
        prop_assert_eq!(t.store().node_count(), tree_of(&map).0.store().node_count());
    }

    /// Decoding arbitrary bytes never panics, and what decodes re-encodes to the same bytes.
    #[test]
    fn proof_decoding_is_total_and_exact(b in prop::collection::vec(any::<u8>(), 0..200)) {
        if let Ok(p) = StateProof::from_bytes(&b) {
            prop_assert_eq!(p.to_bytes(), b);
        }
    }
}

/// The total-stake leaf: its key is domain-separated from every account key (another tag, the
/// same hash), its value is the u128 sum of the stakes, 16 bytes big-endian; it is in every
/// state's tree and changes with the stakes only.
#[test]
fn total_stake_leaf_is_the_sum_of_the_stakes_under_its_own_key() {
    use crate::{Genesis, KeyPair};
    let key = super::total_stake_key();
    assert_eq!(
        key,
        Hash::blake2b(b"pp-ledger/state-meta/v1total-stake"),
        "H(tag || name), no separator"
    );
    let producer = KeyPair::from_seed([1; 32]).public();
    assert_ne!(key, account_key(&producer));
    let mut g = Genesis::devnet("node0", producer, 1_700_000_000_000);
    g.initial_stakeholders
        .push(crate::genesis::InitialStakeholder {
            id: "big".into(),
            public_key: KeyPair::from_seed([2; 32]).public(),
            stake: u64::MAX,
            vrf_key: None,
        });
    let state = LedgerState::from_genesis(&g);
    let total = state.total_stake();
    assert_eq!(total, 1_000 + u128::from(u64::MAX), "no u64 overflow");
    assert_eq!(
        total,
        state
            .stakes()
            .values()
            .map(|&s| u128::from(s))
            .sum::<u128>()
    );
    let entries = super::state_entries(&state);
    let (_, v) = entries.iter().find(|(k, _)| *k == key).expect("total leaf");
    let v = v.as_deref().expect("present");
    assert_eq!(v.len(), 16);
    assert_eq!(super::decode_total_stake(v), Ok(total));
    assert!(super::decode_total_stake(&v[..15]).is_err());
    assert!(super::decode_total_stake(&[v, &[0]].concat()).is_err());
    // The tree of the state proves it against the state's root.
    let mut t = StateTree::new(MemoryStore::new());
    let root = t.apply(0, entries.clone()).unwrap();
    assert_eq!(root, super::state_root(&state));
    let (got, proof) = t.prove(0, &key).unwrap();
    assert_eq!(got.as_deref(), Some(v));
    verify(&root, &key, Some(v), &proof).unwrap();
    // One more leaf than accounts.
    assert_eq!(entries.len(), state.accounts().len() + 1);
}
