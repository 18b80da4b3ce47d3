//! The transaction Merkle tree (Blake2b-256) and inclusion proofs.
//!
//! Leaves are `H(0x00 ‖ txid)`, inner nodes `H(0x01 ‖ left ‖ right)`: the prefixes keep a leaf
//! from ever being taken for an inner node (second-preimage attacks). A level with an odd number
//! of nodes carries its last node up unchanged (it is never paired with itself, which avoids the
//! duplicate-leaf ambiguity of Bitcoin's tree). The root of no transactions is 32 zero bytes.

use serde::{Deserialize, Serialize};

use crate::hash::Hash;

fn leaf(id: &Hash) -> Hash {
    Hash::blake2b_parts(&[&[0u8], &id.0])
}

fn node(l: &Hash, r: &Hash) -> Hash {
    Hash::blake2b_parts(&[&[1u8], &l.0, &r.0])
}

fn next_level(level: &[Hash]) -> Vec<Hash> {
    level
        .chunks(2)
        .map(|c| match c {
            [l, r] => node(l, r),
            [x] => *x,
            _ => Hash::ZERO,
        })
        .collect()
}

/// The Merkle root over transaction ids in block order.
pub fn merkle_root(ids: &[Hash]) -> Hash {
    if ids.is_empty() {
        return Hash::ZERO;
    }
    let mut level: Vec<Hash> = ids.iter().map(leaf).collect();
    while level.len() > 1 {
        level = next_level(&level);
    }
    level[0]
}

/// Proof that a transaction id is the `index`-th leaf of a tree of `leaf_count` leaves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MerkleProof {
    /// Position of the leaf.
    pub index: u64,
    /// Number of leaves in the tree.
    pub leaf_count: u64,
    /// Sibling hashes from the leaf level upwards (levels where the node was carried have none).
    pub siblings: Vec<Hash>,
}

/// Builds the inclusion proof of leaf `index`, or `None` if out of range.
pub fn merkle_proof(ids: &[Hash], index: usize) -> Option<MerkleProof> {
    if index >= ids.len() {
        return None;
    }
    let mut siblings = Vec::new();
    let mut level: Vec<Hash> = ids.iter().map(leaf).collect();
    let mut i = index;
    while level.len() > 1 {
        let sib = i ^ 1;
        if sib < level.len() {
            siblings.push(level[sib]);
        }
        level = next_level(&level);
        i /= 2;
    }
    Some(MerkleProof {
        index: index as u64,
        leaf_count: ids.len() as u64,
        siblings,
    })
}

impl MerkleProof {
    /// True iff this proof shows `id` under `root`.
    pub fn verify(&self, id: &Hash, root: &Hash) -> bool {
        if self.index >= self.leaf_count || self.siblings.len() > 64 {
            return false;
        }
        let mut h = leaf(id);
        let mut i = self.index;
        let mut n = self.leaf_count;
        let mut sibs = self.siblings.iter();
        while n > 1 {
            let sib = i ^ 1;
            if sib < n {
                let Some(s) = sibs.next() else { return false };
                h = if i % 2 == 0 { node(&h, s) } else { node(s, &h) };
            }
            i /= 2;
            n = n.div_ceil(2);
        }
        sibs.next().is_none() && h == *root
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: usize) -> Vec<Hash> {
        (0..n).map(|i| Hash::blake2b(&i.to_be_bytes())).collect()
    }

    #[test]
    fn every_leaf_of_every_small_tree_has_a_valid_proof() {
        for n in 1..=17 {
            let ids = ids(n);
            let root = merkle_root(&ids);
            for (i, id) in ids.iter().enumerate() {
                let p = merkle_proof(&ids, i).unwrap();
                assert!(p.verify(id, &root), "n={n} i={i}");
                assert!(!p.verify(&Hash::ZERO, &root));
            }
        }
    }

    #[test]
    fn proof_for_wrong_position_fails() {
        let ids = ids(8);
        let root = merkle_root(&ids);
        let mut p = merkle_proof(&ids, 3).unwrap();
        p.index = 2;
        assert!(!p.verify(&ids[3], &root));
    }

    #[test]
    fn odd_tree_is_not_the_duplicated_tree() {
        let a = ids(3);
        let mut b = a.clone();
        b.push(a[2]);
        assert_ne!(merkle_root(&a), merkle_root(&b));
        assert_eq!(merkle_root(&[]), Hash::ZERO);
    }
}
