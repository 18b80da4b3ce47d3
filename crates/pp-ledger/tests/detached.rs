//! `Chain::check_detached`: the rules a block can be judged by before its parent is known, so a
//! node refuses (and blames the sender of) a block that is invalid on every chain without
//! fetching anything for it.

mod common;

use common::*;
use pp_ledger::{Block, BlockError, Chain, ChainError, Hash, RoundRobin};

fn chain() -> Chain<RoundRobin> {
    Chain::new(genesis(), RoundRobin).expect("valid genesis")
}

/// A valid block whose parent the chain does not have.
fn orphan() -> (Chain<RoundRobin>, Block) {
    let g = genesis();
    let c = chain();
    let b1 = block_on(&g, c.tip(), 1, vec![]);
    let b2 = block_on(&g, &b1, 2, vec![transfer(3, 4, 10, 1, 0, &g.hash())]);
    (c, b2)
}

#[test]
fn a_valid_block_with_an_unknown_parent_passes_the_detached_checks() {
    let (mut c, b2) = orphan();
    assert_eq!(c.check_detached(&b2), Ok(()));
    assert!(matches!(
        c.verify_and_add(b2, LATE),
        Err(ChainError::UnknownParent { .. })
    ));
}

#[test]
fn a_block_invalid_on_every_chain_fails_the_detached_checks_without_its_parent() {
    let (c, b2) = orphan();
    let g = genesis();
    let k = leader(&g, 2);

    let mut bad_root = b2.clone();
    bad_root.header.tx_root = Hash([7; 32]);
    let bad_root = reseal(&g, bad_root, &k);
    assert!(matches!(
        c.check_detached(&bad_root),
        Err(BlockError::BadTxRoot { .. })
    ));

    let mut bad_sig = b2.clone();
    bad_sig.signature.0[0] ^= 1;
    assert!(matches!(
        c.check_detached(&bad_sig),
        Err(BlockError::BadBlockSignature(_))
    ));

    let mut bad_version = b2.clone();
    bad_version.header.version += 1;
    let bad_version = reseal(&g, bad_version, &k);
    assert!(matches!(
        c.check_detached(&bad_version),
        Err(BlockError::BadVersion { .. })
    ));

    let mut bad_difficulty = b2.clone();
    bad_difficulty.header.difficulty += 1;
    let bad_difficulty = reseal(&g, bad_difficulty, &k);
    assert!(matches!(
        c.check_detached(&bad_difficulty),
        Err(BlockError::WrongDifficulty { .. })
    ));

    let mut too_many = b2.clone();
    let tx = too_many.transactions[0].clone();
    too_many.transactions = vec![tx; g.max_block_txs as usize + 1];
    too_many.header.tx_root = too_many.compute_tx_root();
    let too_many = reseal(&g, too_many, &k);
    assert!(matches!(
        c.check_detached(&too_many),
        Err(BlockError::TooManyTxs { .. })
    ));
}

#[test]
fn a_block_the_chain_accepts_passes_the_detached_checks() {
    let g = genesis();
    let mut c = chain();
    for slot in 1..=5 {
        let b = block_on(&g, c.tip(), slot, vec![]);
        assert_eq!(c.check_detached(&b), Ok(()));
        c.verify_and_add(b, LATE).expect("valid block");
    }
}
