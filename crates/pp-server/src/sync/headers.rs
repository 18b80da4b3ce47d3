//! The header-only checks of a header chain a peer offers: what a header alone lets a node
//! verify before it spends bandwidth on the blocks.
//!
//! A `headers` answer carries bare [`BlockHeader`]s (the producer's signature travels with the
//! block, not the header), so the checks are: version, the network's difficulty and the proof of
//! work, consecutive indices, each `prev_hash` the hash of the header before it, slots strictly
//! increasing and none in the future (by the same rule and skew as [`pp_ledger::Chain::screen`]).
//! The leader, the signature, the transactions and the state are checked when the block
//! arrives (the stateless stage, then [`pp_ledger::Chain::add_block`]). So a claimed tip costs a
//! liar nothing, but a header chain costs it proof of work and cannot run ahead of the clock;
//! and a header chain whose blocks then fail is dropped with the peer that offered it.

use pp_ledger::{BlockHeader, Genesis, Hash};

/// Why a header chain was refused. Every variant is something no honest peer sends: the
/// chain it serves passed these checks when it took each block.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum HeaderError {
    #[error("header {index}: version {got}, expected {expected}")]
    BadVersion { index: u64, expected: u32, got: u32 },
    #[error("header {index}: difficulty {got}, the network's is {expected}")]
    WrongDifficulty { index: u64, expected: u32, got: u32 },
    #[error("header {index}: proof of work does not meet difficulty {difficulty}")]
    BadPow { index: u64, difficulty: u32 },
    #[error("header {got} follows header {parent}")]
    BadIndex { parent: u64, got: u64 },
    #[error("header {index} does not link to the header before it")]
    BadLink { index: u64 },
    #[error("header {index}: slot {slot} is not after its parent's slot {parent_slot}")]
    SlotNotAfterParent {
        index: u64,
        slot: u64,
        parent_slot: u64,
    },
    #[error("header {index}: slot {slot} starts in the future")]
    SlotInFuture { index: u64, slot: u64 },
}

/// The block a header chain hangs from: one the node holds, or the last of a header chain it
/// already verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Anchor {
    pub(crate) index: u64,
    pub(crate) hash: Hash,
    pub(crate) slot: u64,
}

/// Checks that `headers` extend `parent` one by one (see the module docs) and returns each
/// header's hash, in order. `now_ms` is the node's clock.
pub(crate) fn check_headers(
    genesis: &Genesis,
    parent: Anchor,
    headers: &[BlockHeader],
    now_ms: u64,
) -> Result<Vec<Hash>, HeaderError> {
    let latest_start = now_ms.saturating_add(genesis.max_clock_skew_ms);
    let mut prev = parent;
    let mut hashes = Vec::with_capacity(headers.len());
    // Classic or praos headers, as the genesis says (a decoded header carries VRF evidence
    // exactly when its version is the praos one).
    let version = genesis.block_version();
    for h in headers {
        let index = h.index;
        if h.version != version {
            return Err(HeaderError::BadVersion {
                index,
                expected: version,
                got: h.version,
            });
        }
        if h.difficulty != genesis.difficulty {
            return Err(HeaderError::WrongDifficulty {
                index,
                expected: genesis.difficulty,
                got: h.difficulty,
            });
        }
        if index != prev.index.saturating_add(1) {
            return Err(HeaderError::BadIndex {
                parent: prev.index,
                got: index,
            });
        }
        if h.prev_hash != prev.hash {
            return Err(HeaderError::BadLink { index });
        }
        if h.slot <= prev.slot {
            return Err(HeaderError::SlotNotAfterParent {
                index,
                slot: h.slot,
                parent_slot: prev.slot,
            });
        }
        let start = h
            .slot
            .saturating_mul(genesis.slot_duration_ms)
            .saturating_add(genesis.genesis_time);
        if start > latest_start {
            return Err(HeaderError::SlotInFuture {
                index,
                slot: h.slot,
            });
        }
        let hash = h.hash();
        if hash.leading_zero_nibbles() < genesis.difficulty {
            return Err(HeaderError::BadPow {
                index,
                difficulty: genesis.difficulty,
            });
        }
        hashes.push(hash);
        prev = Anchor {
            index,
            hash,
            slot: h.slot,
        };
    }
    Ok(hashes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pp_ledger::{Block, KeyPair};

    fn setup() -> (Genesis, KeyPair, Vec<Block>) {
        let key = KeyPair::from_seed([5u8; 32]);
        let mut g = Genesis::devnet("h", key.public(), 0);
        g.difficulty = 1;
        let mut blocks = vec![g.block()];
        for slot in 1..=5u64 {
            let parent = blocks.last().map(|b| b.header.clone()).unwrap();
            let b = pp_ledger::testing::produce_on(
                &g,
                &parent,
                slot * 2,
                0,
                g.difficulty,
                Vec::new(),
                &key,
                1 << 24,
            )
            .unwrap();
            blocks.push(b);
        }
        (g, key, blocks)
    }

    fn anchor(b: &Block) -> Anchor {
        Anchor {
            index: b.header.index,
            hash: b.hash(),
            slot: b.header.slot,
        }
    }

    fn headers(blocks: &[Block]) -> Vec<BlockHeader> {
        blocks.iter().map(|b| b.header.clone()).collect()
    }

    #[test]
    fn an_honest_header_chain_passes_and_yields_its_hashes() {
        let (g, _, blocks) = setup();
        let now = 1_000 * g.slot_duration_ms;
        let hashes = check_headers(&g, anchor(&blocks[0]), &headers(&blocks[1..]), now).unwrap();
        let want: Vec<Hash> = blocks[1..].iter().map(Block::hash).collect();
        assert_eq!(hashes, want);
    }

    #[test]
    fn broken_links_indices_pow_and_future_slots_are_refused() {
        let (g, _, blocks) = setup();
        let now = 1_000 * g.slot_duration_ms;
        let a = anchor(&blocks[0]);
        let mut hs = headers(&blocks[1..]);
        hs.remove(1);
        assert!(matches!(
            check_headers(&g, a, &hs, now),
            Err(HeaderError::BadIndex { .. })
        ));
        let mut hs = headers(&blocks[1..]);
        hs[2].prev_hash = Hash::ZERO;
        assert!(matches!(
            check_headers(&g, a, &hs, now),
            Err(HeaderError::BadLink { index: 3 })
        ));
        // A header whose nonce no longer meets the difficulty (try nonces until one fails).
        let mut hs = headers(&blocks[1..2]);
        while hs[0].meets_pow() {
            hs[0].nonce = hs[0].nonce.wrapping_add(1);
        }
        assert!(matches!(
            check_headers(&g, a, &hs, now),
            Err(HeaderError::BadPow { index: 1, .. })
        ));
        let mut hs = headers(&blocks[1..2]);
        hs[0].difficulty = 0;
        assert!(matches!(
            check_headers(&g, a, &hs, now),
            Err(HeaderError::WrongDifficulty { .. })
        ));
        // Slots ahead of the clock: the chain above was made for slots 2..=10.
        assert!(matches!(
            check_headers(&g, a, &headers(&blocks[1..]), 4 * g.slot_duration_ms),
            Err(HeaderError::SlotInFuture { .. })
        ));
    }
}
