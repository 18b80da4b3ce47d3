//! The validation pipeline: the stateless stage (`BlockVerifier`, batched signatures, the
//! signature cache) and the stateful stage (`Chain::add_block` over `VerifiedBlock`).

mod common;

use std::sync::Arc;

use common::*;
use pp_ledger::{
    AddOutcome, Block, BlockError, Chain, ChainError, Genesis, RoundRobin, SignatureCache,
    Transaction, TxError,
};

fn chain() -> Chain<RoundRobin> {
    Chain::new(genesis(), RoundRobin).expect("valid genesis")
}

/// Slot 1's block on the genesis block carrying `n` transfers from key 3 (nonces 0..n).
fn block_of_transfers(g: &Genesis, n: u64) -> (Block, Vec<Transaction>) {
    let gh = g.hash();
    let txs: Vec<Transaction> = (0..n).map(|i| transfer(3, 4, 1, 1, i, &gh)).collect();
    (block_on(g, &g.block(), 1, txs.clone()), txs)
}

#[test]
fn a_block_of_admitted_transactions_verifies_no_transaction_signature_again() {
    let g = genesis();
    let mut c = chain();
    let (block, txs) = block_of_transfers(&g, 40);
    let verifier = c.verifier().clone();
    for tx in txs {
        verifier.verify_tx(tx).expect("valid signature");
    }
    let admitted = c.signature_cache().verifications();
    assert_eq!(admitted, 40);
    assert_eq!(c.verify_and_add(block, LATE), Ok(AddOutcome::Extended));
    // Only the producer's signature was verified.
    assert_eq!(c.signature_cache().verifications(), admitted + 1);
}

#[test]
fn a_cold_block_verifies_each_signature_once_and_fills_the_cache() {
    let g = genesis();
    let mut c = chain();
    let (block, _) = block_of_transfers(&g, 40);
    let verified = c.verifier().verify_block(block.clone()).expect("valid");
    assert_eq!(verified.hash(), block.hash());
    assert_eq!(verified.tx_ids().len(), 40);
    assert_eq!(c.signature_cache().verifications(), 41);
    assert_eq!(c.signature_cache().len(), 40);
    // Verifying it again costs only the header.
    let again = c.verifier().verify_block(block).expect("valid");
    assert_eq!(c.signature_cache().verifications(), 42);
    assert_eq!(c.add_block(again, LATE), Ok(AddOutcome::Extended));
    assert_eq!(c.add_block(verified, LATE), Ok(AddOutcome::AlreadyKnown));
    assert_eq!(c.signature_cache().verifications(), 42);
}

/// A bad signature is named by its transaction, whatever the chunking, and the lowest index wins
/// when several are bad; nothing of a failed chunk enters the cache.
#[test]
fn a_bad_signature_is_named_by_its_transaction_however_the_block_is_cut() {
    let g = genesis();
    let gh = g.hash();
    let mut txs: Vec<Transaction> = (0..30).map(|i| transfer(3, 4, 1, 1, i, &gh)).collect();
    for bad in [23usize, 11] {
        txs[bad].signature.0[5] ^= 0x40;
    }
    let ids: Vec<_> = txs.iter().map(Transaction::id).collect();
    let block = block_on(&g, &g.block(), 1, txs);
    let expected = BlockError::Tx {
        index: 11,
        id: ids[11],
        error: TxError::BadSignature(pp_ledger::SignatureError::BadSignature(key(3).public())),
    };
    for parts in [1usize, 2, 3, 7, 30, 100] {
        let c = chain();
        let pending = c.verifier().check_block(block.clone()).expect("header ok");
        let proofs: Vec<_> = pending
            .chunks(parts)
            .iter()
            .map(|ch| pending.verify_chunk(ch))
            .collect();
        assert_eq!(
            pending.finish(proofs),
            Err(expected.clone()),
            "{parts} parts"
        );
        // Also when the chunks are handed in reverse, or not at all.
        let pending = c.verifier().check_block(block.clone()).expect("header ok");
        let mut proofs: Vec<_> = pending
            .chunks(parts)
            .iter()
            .map(|ch| pending.verify_chunk(ch))
            .collect();
        proofs.reverse();
        assert_eq!(pending.finish(proofs), Err(expected.clone()));
        let pending = c.verifier().check_block(block.clone()).expect("header ok");
        assert_eq!(pending.finish(Vec::new()), Err(expected.clone()));
    }
    let mut c = chain();
    assert_eq!(
        c.verify_and_add(block, LATE),
        Err(ChainError::Block(expected))
    );
}

/// A proof for part of the block does not stand for the rest: `finish` verifies what no proof
/// covers, so a forgotten chunk cannot hide a bad signature.
#[test]
fn finish_verifies_the_chunks_it_has_no_proof_of() {
    let g = genesis();
    let gh = g.hash();
    let mut txs: Vec<Transaction> = (0..20).map(|i| transfer(3, 4, 1, 1, i, &gh)).collect();
    txs[17].signature.0[9] ^= 1;
    let block = block_on(&g, &g.block(), 1, txs);
    let c = chain();
    let pending = c.verifier().check_block(block).expect("header ok");
    let chunks = pending.chunks(2);
    let first_half = pending.verify_chunk(&chunks[0]).expect("valid half");
    assert!(matches!(
        pending.finish(vec![Ok(first_half)]),
        Err(BlockError::Tx { index: 17, .. })
    ));
}

#[test]
fn a_block_verified_for_another_network_is_refused() {
    let g = genesis();
    let mut other = genesis();
    other.network = "elsewhere".into();
    let (block, _) = block_of_transfers(&g, 2);
    let verified_here = chain().verifier().verify_block(block).expect("valid");
    let mut c = Chain::new(other, RoundRobin).expect("valid genesis");
    assert!(matches!(
        c.add_block(verified_here, LATE),
        Err(ChainError::OtherNetwork { .. })
    ));
}

#[test]
fn a_shared_cache_is_used_by_the_chain_and_its_verifier() {
    let cache = Arc::new(SignatureCache::new(1 << 20));
    let c = chain().with_signature_cache(Arc::clone(&cache));
    let g = genesis();
    let tx = transfer(3, 4, 1, 1, 0, &g.hash());
    c.verifier().verify_tx(tx.clone()).expect("valid");
    assert_eq!(cache.verifications(), 1);
    // Selecting it for a block hits the cache.
    assert_eq!(c.select_transactions([&tx]), vec![tx]);
    assert_eq!(cache.verifications(), 1);
}
