//! pp-ledger benchmarks: SHA-256 header hashing (hashes/s), the proof-of-work search at
//! difficulties 2, 3 and 4, ed25519 verification (single, ZIP-215; ed25519-dalek batches of 64/256), and
//! validating + applying a block of 1,000 signed transfers (`LedgerState::apply_block`, and the
//! full `Chain::add_block` path).
//!
//! Run: `cargo bench -p pp-benches --bench ledger -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use ed25519_dalek::{Signature as DalekSignature, VerifyingKey};
use pp_benches::{big_block, seed};
use pp_ledger::crypto::{signing_message, Domain};
use pp_ledger::{
    BlockHeader, Chain, Hash, KeyPair, LedgerState, PublicKey, RoundRobin, Transaction,
    BLOCK_VERSION,
};

fn header() -> BlockHeader {
    BlockHeader {
        version: BLOCK_VERSION,
        index: 42,
        slot: 4242,
        prev_hash: Hash::sha256(b"parent"),
        tx_root: Hash::blake2b(b"txs"),
        state_root: Hash::ZERO,
        producer: KeyPair::from_seed([9u8; 32]).public(),
        timestamp: 1_700_000_000_000,
        difficulty: 0,
        vrf: None,
        ocert: None,
        nonce: 0,
    }
}

fn header_hashing(c: &mut Criterion) {
    let mut g = c.benchmark_group("header_sha256");
    g.throughput(Throughput::Elements(1));
    let mut h = header();
    g.bench_function("hash_136_byte_header", |b| {
        b.iter(|| {
            h.nonce = h.nonce.wrapping_add(1);
            black_box(h.hash())
        })
    });
    g.finish();
}

fn pow_search(c: &mut Criterion) {
    let mut g = c.benchmark_group("pow_search");
    for difficulty in [2u32, 3, 4] {
        g.sample_size(10);
        let mut round = 0u64;
        g.bench_with_input(
            BenchmarkId::from_parameter(difficulty),
            &difficulty,
            |b, &d| {
                b.iter(|| {
                    // A different header each time, so every search is a fresh one.
                    round += 1;
                    let mut h = header();
                    h.difficulty = d;
                    h.timestamp += round;
                    black_box(h.mine(u64::MAX))
                })
            },
        );
    }
    g.finish();
}

fn signed_messages(n: u32) -> (Vec<Vec<u8>>, Vec<DalekSignature>, Vec<VerifyingKey>) {
    let gh = Hash::blake2b(b"bench genesis");
    let mut msgs = Vec::new();
    let mut sigs = Vec::new();
    let mut keys = Vec::new();
    for i in 0..n {
        let k = KeyPair::from_seed(seed(i));
        let msg = signing_message(Domain::Transaction, &gh, &Hash::blake2b(&i.to_be_bytes()));
        sigs.push(DalekSignature::from_bytes(&k.sign(&msg).0));
        keys.push(VerifyingKey::from_bytes(&k.public().0).expect("valid key"));
        msgs.push(msg);
    }
    (msgs, sigs, keys)
}

fn signatures(c: &mut Criterion) {
    let mut g = c.benchmark_group("ed25519_verify");
    g.throughput(Throughput::Elements(1));
    let k = KeyPair::from_seed([1u8; 32]);
    let gh = Hash::blake2b(b"bench genesis");
    let tx = Transaction::transfer(&k, PublicKey([2u8; 32]), 1, 1, 0, &gh);
    g.bench_function("single_strict_tx", |b| {
        b.iter(|| black_box(tx.verify_signature(&gh)))
    });
    for n in [64u32, 256] {
        let (msgs, sigs, keys) = signed_messages(n);
        let refs: Vec<&[u8]> = msgs.iter().map(Vec::as_slice).collect();
        g.throughput(Throughput::Elements(u64::from(n)));
        g.bench_with_input(BenchmarkId::new("batch", n), &n, |b, _| {
            b.iter(|| black_box(ed25519_dalek::verify_batch(&refs, &sigs, &keys)))
        });
    }
    g.finish();
}

fn block_application(c: &mut Criterion) {
    let (genesis, block) = big_block();
    let gh = genesis.hash();
    let state = LedgerState::from_genesis(&genesis);
    // Measure the success path: the block must be valid.
    assert!(state
        .clone()
        .apply_block(&block, &gh, genesis.block_reward)
        .is_ok());
    let mut g = c.benchmark_group("block_1000_transfers");
    g.sample_size(10);
    g.throughput(Throughput::Elements(block.transactions.len() as u64));
    g.bench_function("ledger_apply_block", |b| {
        b.iter_batched(
            || state.clone(),
            |mut s| black_box(s.apply_block(&block, &gh, genesis.block_reward)),
            BatchSize::LargeInput,
        )
    });
    let now = genesis.genesis_time + 10_000;
    let mut check = Chain::new(genesis.clone(), RoundRobin).expect("valid genesis");
    assert_eq!(
        check.verify_and_add(block.clone(), now),
        Ok(pp_ledger::AddOutcome::Extended)
    );
    g.bench_function("chain_add_block_full_validation", |b| {
        b.iter_batched(
            || Chain::new(genesis.clone(), RoundRobin).expect("valid genesis"),
            |mut chain| black_box(chain.verify_and_add(block.clone(), now)),
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

criterion_group!(
    benches,
    header_hashing,
    pow_search,
    signatures,
    block_application
);
criterion_main!(benches);
