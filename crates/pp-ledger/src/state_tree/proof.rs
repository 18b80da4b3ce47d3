//! Inclusion and exclusion proofs of the state tree, their byte format, and [`verify`]
//! (docs/state-commitment.md §5).
//!
//! A proof is the path from the root towards a key: the sibling hash at each level, then what
//! the path ends at: nothing (an empty subtree: the key is absent) or a leaf (the key's own
//! leaf: present; another key's leaf sharing the path: absent). Decoding from untrusted bytes
//! is bounded by [`MAX_PROOF_LEN`] and checks the exact length from the header before reading
//! a sibling, so it never allocates more than the input holds and never panics.

use crate::hash::Hash;

use super::{key_bit, leaf_hash, node_hash, value_hash, KEY_BITS};

/// The longest encoded proof: kind, depth, a full bitmap, 256 siblings, a leaf.
pub const MAX_PROOF_LEN: usize = 1 + 2 + KEY_BITS / 8 + KEY_BITS * 32 + 64;

/// What a proof's path ends at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProofTerminal {
    /// An empty subtree: no key has this path.
    Empty,
    /// The only leaf with this path.
    Leaf {
        /// Its tree key (the queried key: present; another key: the queried key is absent).
        key: Hash,
        /// The hash of its value ([`value_hash`]).
        value_hash: Hash,
    },
}

/// A proof that a key holds a value, or that it is absent, in the tree of one root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateProof {
    /// Sibling hashes from the root down: `siblings[i]` is the other child of the node at
    /// depth `i` on the key's path; [`Hash::ZERO`] for an empty subtree.
    pub siblings: Vec<Hash>,
    /// What the path ends at.
    pub terminal: ProofTerminal,
}

/// Why a proof was refused: every check has its own variant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// The input is longer than any proof can be.
    #[error("proof of {len} bytes exceeds the maximum of {MAX_PROOF_LEN}")]
    TooLong {
        /// Input length.
        len: usize,
    },
    /// The input ends before the proof header (kind and depth).
    #[error("proof of {len} bytes is shorter than its 3-byte header")]
    TooShort {
        /// Input length.
        len: usize,
    },
    /// The kind byte is neither 0 (empty) nor 1 (leaf).
    #[error("unknown proof terminal kind {0}")]
    UnknownKind(u8),
    /// The path is longer than a key.
    #[error("proof depth {depth} exceeds the key length of {KEY_BITS} bits")]
    TooDeep {
        /// The depth claimed.
        depth: usize,
    },
    /// The input length disagrees with its header and bitmap (truncated, extended, or a
    /// bitmap bit flipped).
    #[error("proof is {actual} bytes where its header and bitmap say {expected}")]
    LengthMismatch {
        /// Length implied by the header and the bitmap.
        expected: usize,
        /// Input length.
        actual: usize,
    },
    /// A bitmap bit past the depth is set (the encoding would not be unique).
    #[error("proof bitmap has a bit set past its depth")]
    BitmapPadding,
    /// A sibling marked non-empty is all zeros (it must be left out and its bit cleared).
    #[error("sibling {index} is marked non-empty but is zero")]
    ZeroSibling {
        /// Its depth.
        index: usize,
    },
    /// The last sibling is empty: the node above the end of the path would have a single key
    /// below it, which the tree never stores (its leaf sits higher).
    #[error("the last sibling of a proof of depth {depth} is empty")]
    EmptyLastSibling {
        /// The proof's depth.
        depth: usize,
    },
    /// The leaf the proof ends at does not share the path of the queried key.
    #[error("the proof's leaf {leaf} leaves the path of key {key} at bit {bit}")]
    PathMismatch {
        /// The queried key.
        key: Hash,
        /// The leaf's key.
        leaf: Hash,
        /// The first differing bit.
        bit: usize,
    },
    /// A value was claimed, but the proof shows the key absent.
    #[error("the proof shows key {key} absent, a value was claimed")]
    ProvesAbsence {
        /// The queried key.
        key: Hash,
    },
    /// Absence was claimed, but the proof shows the key's leaf.
    #[error("the proof shows key {key} present, absence was claimed")]
    ProvesPresence {
        /// The queried key.
        key: Hash,
    },
    /// The key's leaf holds another value than the one claimed.
    #[error("the claimed value hashes to {claimed}, the proof's leaf holds {proven}")]
    ValueMismatch {
        /// Hash of the claimed value.
        claimed: Hash,
        /// Value hash in the proof.
        proven: Hash,
    },
    /// The path hashes to another root (a proof for another version, or a forged sibling).
    #[error("the proof hashes to root {computed}, expected {expected}")]
    RootMismatch {
        /// The trusted root.
        expected: Hash,
        /// The root the proof leads to.
        computed: Hash,
    },
}

fn bitmap_len(depth: usize) -> usize {
    depth.div_ceil(8)
}

impl StateProof {
    /// Number of levels on the path.
    pub fn depth(&self) -> usize {
        self.siblings.len()
    }

    /// The byte form: kind (`0x00` empty, `0x01` leaf) ‖ depth (u16 BE) ‖ bitmap (⌈depth/8⌉
    /// bytes, bit `i` MSB-first set iff sibling `i` is non-empty) ‖ the non-empty siblings,
    /// root first ‖ for a leaf: key ‖ value hash.
    pub fn to_bytes(&self) -> Vec<u8> {
        let depth = self.depth();
        let present = self.siblings.iter().filter(|s| **s != Hash::ZERO).count();
        let mut out = Vec::with_capacity(3 + bitmap_len(depth) + 32 * present + 64);
        out.push(match self.terminal {
            ProofTerminal::Empty => 0,
            ProofTerminal::Leaf { .. } => 1,
        });
        // A proof built by the tree never exceeds 256 levels; a longer one is refused by
        // `verify` and saturates here, which no decoder accepts.
        out.extend_from_slice(&u16::try_from(depth).unwrap_or(u16::MAX).to_be_bytes());
        let mut bitmap = vec![0u8; bitmap_len(depth)];
        for (i, s) in self.siblings.iter().enumerate() {
            if *s != Hash::ZERO {
                bitmap[i / 8] |= 0x80 >> (i % 8);
            }
        }
        out.extend_from_slice(&bitmap);
        for s in self.siblings.iter().filter(|s| **s != Hash::ZERO) {
            out.extend_from_slice(&s.0);
        }
        if let ProofTerminal::Leaf { key, value_hash } = &self.terminal {
            out.extend_from_slice(&key.0);
            out.extend_from_slice(&value_hash.0);
        }
        out
    }

    /// Reads a proof from untrusted bytes: bounded, exact (one byte form per proof), never
    /// panicking. The shape checks of [`verify`] still apply.
    pub fn from_bytes(b: &[u8]) -> Result<StateProof, ProofError> {
        if b.len() > MAX_PROOF_LEN {
            return Err(ProofError::TooLong { len: b.len() });
        }
        let (&kind, rest) = b.split_first().ok_or(ProofError::TooShort { len: 0 })?;
        let tail = match kind {
            0 => 0,
            1 => 64,
            k => return Err(ProofError::UnknownKind(k)),
        };
        let (depth, rest) = match rest {
            [a, b, rest @ ..] => (usize::from(u16::from_be_bytes([*a, *b])), rest),
            _ => return Err(ProofError::TooShort { len: b.len() }),
        };
        if depth > KEY_BITS {
            return Err(ProofError::TooDeep { depth });
        }
        let bm_len = bitmap_len(depth);
        let bitmap = rest.get(..bm_len).ok_or(ProofError::LengthMismatch {
            expected: 3 + bm_len + tail,
            actual: b.len(),
        })?;
        if depth % 8 != 0 && bitmap[bm_len - 1] & (0xff >> (depth % 8)) != 0 {
            return Err(ProofError::BitmapPadding);
        }
        let ones: usize = bitmap.iter().map(|x| x.count_ones() as usize).sum();
        let expected = 3 + bm_len + 32 * ones + tail;
        if b.len() != expected {
            return Err(ProofError::LengthMismatch {
                expected,
                actual: b.len(),
            });
        }
        let mut hashes = rest[bm_len..].chunks_exact(32).map(|c| {
            let mut h = [0u8; 32];
            h.copy_from_slice(c);
            Hash(h)
        });
        let mut siblings = Vec::with_capacity(depth);
        for i in 0..depth {
            if bitmap[i / 8] & (0x80 >> (i % 8)) == 0 {
                siblings.push(Hash::ZERO);
                continue;
            }
            // The length check above guarantees a hash per set bit.
            let h = hashes.next().unwrap_or(Hash::ZERO);
            if h == Hash::ZERO {
                return Err(ProofError::ZeroSibling { index: i });
            }
            siblings.push(h);
        }
        let terminal = match tail {
            0 => ProofTerminal::Empty,
            _ => ProofTerminal::Leaf {
                key: hashes.next().unwrap_or(Hash::ZERO),
                value_hash: hashes.next().unwrap_or(Hash::ZERO),
            },
        };
        Ok(StateProof { siblings, terminal })
    }
}

/// Checks that in the tree of `root`, `key` holds `value` (`Some`: its leaf encoding) or is
/// absent (`None`). Each refusal names the check that failed; `Ok` means the statement holds
/// unless Blake2b-256 has a collision.
pub fn verify(
    root: &Hash,
    key: &Hash,
    value: Option<&[u8]>,
    proof: &StateProof,
) -> Result<(), ProofError> {
    let depth = proof.depth();
    if depth > KEY_BITS {
        return Err(ProofError::TooDeep { depth });
    }
    if depth > 0 && proof.siblings[depth - 1] == Hash::ZERO {
        return Err(ProofError::EmptyLastSibling { depth });
    }
    let start = match proof.terminal {
        ProofTerminal::Empty => {
            if value.is_some() {
                return Err(ProofError::ProvesAbsence { key: *key });
            }
            Hash::ZERO
        }
        ProofTerminal::Leaf {
            key: leaf,
            value_hash: proven,
        } => {
            if let Some(bit) = (0..depth).find(|&i| key_bit(&leaf, i) != key_bit(key, i)) {
                return Err(ProofError::PathMismatch {
                    key: *key,
                    leaf,
                    bit,
                });
            }
            match (leaf == *key, value) {
                (true, None) => return Err(ProofError::ProvesPresence { key: *key }),
                (false, Some(_)) => return Err(ProofError::ProvesAbsence { key: *key }),
                (true, Some(v)) => {
                    let claimed = value_hash(v);
                    if claimed != proven {
                        return Err(ProofError::ValueMismatch { claimed, proven });
                    }
                }
                (false, None) => {}
            }
            leaf_hash(&leaf, &proven)
        }
    };
    let computed = proof
        .siblings
        .iter()
        .enumerate()
        .rev()
        .fold(start, |h, (i, s)| {
            if key_bit(key, i) {
                node_hash(s, &h)
            } else {
                node_hash(&h, s)
            }
        });
    if computed != *root {
        return Err(ProofError::RootMismatch {
            expected: *root,
            computed,
        });
    }
    Ok(())
}
