//! The validation pipeline, measured in one run so that its ratios compare like with like:
//!
//! * `validate_1000_transfers`: a block of 1,000 transfers from distinct senders, validated
//!   cold (fresh signature cache: the stateless stage, then `Chain::add_block`) on 1 thread and
//!   on a rayon pool of 2 (the block's signatures cut into 2 chunks), warm (every signature
//!   already in the cache, as after mempool admission), and the raw `ed25519-zebra` batch
//!   verification of the same 1,000 signatures, the ceiling of the cold figure.
//! * `pow_attempts`: one proof-of-work attempt by hashing the whole 136-byte header, and from
//!   the cached midstate of its first 128 bytes.
//! * `old_parent_refusal`: a non-leader's block whose parent is the genesis block, on an
//!   Ouroboros chain whose tip is 2^20 epochs past it (refused before any epoch step), and for
//!   scale the leader check that refusal avoids (advancing the genesis state 2^20 epochs).
//!
//! Run: `nice -n 10 cargo bench -p pp-benches --bench validation -- --warm-up-time 1 --measurement-time 5`

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use ed25519_zebra::{batch, VerificationKeyBytes};
use pp_benches::big_block;
use pp_ledger::crypto::{signing_message, Domain};
use pp_ledger::{
    AddOutcome, Block, BlockHeader, Chain, ChainError, ConsensusRules, Genesis, Hash,
    InitialStakeholder, KeyPair, PowMidstate, RoundRobin, SignatureCache, BLOCK_VERSION,
};
use pp_ouroboros::{Ouroboros, MAX_EPOCH_GAP};
use rayon::prelude::*;

/// Both stages with the block's signatures cut into `parts` chunks, verified in parallel on the
/// current rayon pool.
fn validate(chain: &mut Chain<RoundRobin>, block: Block, parts: usize, now: u64) -> AddOutcome {
    let pending = chain
        .verifier()
        .check_block(block)
        .expect("stateless checks pass");
    let proofs: Vec<_> = pending
        .chunks(parts)
        .par_iter()
        .map(|c| pending.verify_chunk(c))
        .collect();
    let verified = pending.finish(proofs).expect("signatures verify");
    chain.add_block(verified, now).expect("block applies")
}

fn validate_1000_transfers(c: &mut Criterion) {
    let (genesis, block) = big_block();
    let gh = genesis.hash();
    let now = genesis.genesis_time + 10_000;
    let n = block.transactions.len() as u64;
    let pool1 = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("rayon pool");
    let pool2 = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .expect("rayon pool");
    let fresh = || Chain::new(genesis.clone(), RoundRobin).expect("valid genesis");
    // A cache holding every signature of the block, as after mempool admission.
    let warm = Arc::new(SignatureCache::default());
    {
        let chain = fresh().with_signature_cache(Arc::clone(&warm));
        for tx in &block.transactions {
            chain.verifier().verify_tx(tx.clone()).expect("valid");
        }
    }
    let items: Vec<batch::Item> = block
        .transactions
        .iter()
        .map(|tx| {
            let msg = signing_message(Domain::Transaction, &gh, &tx.id());
            let sig = ed25519_zebra::Signature::from_bytes(&tx.signature.0);
            batch::Item::from((VerificationKeyBytes::from(tx.body.from.0), sig, &msg[..]))
        })
        .collect();

    let mut g = c.benchmark_group("validate_1000_transfers");
    g.sample_size(20);
    g.throughput(Throughput::Elements(n));
    // The raw batch draws its coefficients from the thread RNG, as `ed25519-zebra`'s own
    // examples do.
    g.bench_function("zebra_batch_verify_raw", |b| {
        b.iter_batched(
            || items.clone(),
            |items| {
                let mut v = batch::Verifier::new();
                for i in items {
                    v.queue(i);
                }
                black_box(v.verify(rand010::rng()))
            },
            BatchSize::LargeInput,
        )
    });
    g.bench_function("cold_1_thread", |b| {
        b.iter_batched(
            || (fresh(), block.clone()),
            |(mut chain, blk)| pool1.install(|| black_box(validate(&mut chain, blk, 1, now))),
            BatchSize::LargeInput,
        )
    });
    g.bench_function("cold_2_threads", |b| {
        b.iter_batched(
            || (fresh(), block.clone()),
            |(mut chain, blk)| pool2.install(|| black_box(validate(&mut chain, blk, 2, now))),
            BatchSize::LargeInput,
        )
    });
    g.bench_function("warm_1_thread", |b| {
        b.iter_batched(
            || {
                (
                    fresh().with_signature_cache(Arc::clone(&warm)),
                    block.clone(),
                )
            },
            |(mut chain, blk)| pool1.install(|| black_box(validate(&mut chain, blk, 1, now))),
            BatchSize::LargeInput,
        )
    });
    g.finish();

    // The same four, interleaved round by round, so that the ratios are not skewed by the
    // machine's load drifting between criterion's groups (a shared, busy 2-core machine).
    let rounds = 21;
    let mut times: [Vec<f64>; 4] = Default::default();
    for _ in 0..rounds {
        let mut v = batch::Verifier::new();
        let batch_items = items.clone();
        let t = Instant::now();
        for i in batch_items {
            v.queue(i);
        }
        black_box(v.verify(rand010::rng()).is_ok());
        times[0].push(t.elapsed().as_secs_f64());
        for (slot, (pool, parts, cache)) in [
            (&pool1, 1, None),
            (&pool2, 2, None),
            (&pool1, 1, Some(&warm)),
        ]
        .into_iter()
        .enumerate()
        {
            let mut chain = match cache {
                Some(c) => fresh().with_signature_cache(Arc::clone(c)),
                None => fresh(),
            };
            let blk = block.clone();
            let t = Instant::now();
            pool.install(|| black_box(validate(&mut chain, blk, parts, now)));
            times[slot + 1].push(t.elapsed().as_secs_f64());
        }
    }
    let med: Vec<f64> = times
        .iter_mut()
        .map(|t| {
            t.sort_by(f64::total_cmp);
            t[t.len() / 2]
        })
        .collect();
    println!(
        "interleaved medians of {rounds} rounds (ms): raw zebra batch {:.2}, cold 1 thread {:.2}, \
         cold 2 threads {:.2}, warm {:.2}",
        med[0] * 1e3,
        med[1] * 1e3,
        med[2] * 1e3,
        med[3] * 1e3
    );
    println!(
        "  cold 1 thread / raw batch throughput: {:.0} %; 2 threads / 1 thread: {:.2}x; \
         warm speed-up over cold: {:.1}x",
        100.0 * med[0] / med[1],
        med[1] / med[2],
        med[1] / med[3]
    );
}

fn pow_attempts(c: &mut Criterion) {
    let mut header = BlockHeader {
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
    };
    let mid = PowMidstate::new(&header);
    let mut g = c.benchmark_group("pow_attempts");
    g.throughput(Throughput::Elements(1));
    g.bench_function("plain_header_hash", |b| {
        b.iter(|| {
            header.nonce = header.nonce.wrapping_add(1);
            black_box(header.hash())
        })
    });
    let mut nonce = 0u64;
    g.bench_function("midstate", |b| {
        b.iter(|| {
            nonce = nonce.wrapping_add(1);
            black_box(mid.hash(nonce))
        })
    });
    g.finish();
}

/// An Ouroboros chain (k = 3, 10-slot epochs) whose k + 1 blocks are all in epoch 2^20, and a
/// non-leader's block on the genesis block in that epoch.
fn aged_chain() -> (Chain<Ouroboros>, Block, u64) {
    let keys = [KeyPair::from_seed([1u8; 32]), KeyPair::from_seed([2u8; 32])];
    let mut g = Genesis::devnet("alice", keys[0].public(), 0);
    g.k = 3;
    g.difficulty = 0;
    g.slots_per_epoch = 10;
    g.initial_stakeholders.push(InitialStakeholder {
        id: "bob".into(),
        public_key: keys[1].public(),
        stake: 1_000,
        vrf_key: None,
    });
    let gh = g.hash();
    let rules = Ouroboros::new(&g).expect("valid genesis");
    let mut chain = Chain::new(g.clone(), rules.clone()).expect("valid genesis");
    let first_slot = MAX_EPOCH_GAP * g.slots_per_epoch;
    let now = g.genesis_time + (first_slot + 100) * g.slot_duration_ms;
    for slot in first_slot..first_slot + g.k + 1 {
        let leader = chain.leader_for_next(slot).expect("a leader");
        let key = keys.iter().find(|k| k.public() == leader).expect("ours");
        let root = chain
            .state_root_after(&chain.tip_hash(), &key.public(), &[])
            .expect("an empty block applies");
        let b = Block::produce(&chain.tip().header, slot, 0, 0, vec![], root, key, &gh, 1)
            .expect("difficulty 0");
        assert_eq!(chain.verify_and_add(b, now), Ok(AddOutcome::Extended));
    }
    let slot = first_slot + g.k + 1;
    let leader = rules.slot_leader(
        &rules.state_for_slot(&rules.genesis_state(&g), slot, &Default::default()),
        slot,
    );
    let outsider = keys
        .iter()
        .find(|k| Some(k.public()) != leader)
        .expect("a non-leader");
    let old = Block::produce(
        &g.block().header,
        slot,
        0,
        0,
        vec![],
        Hash::ZERO,
        outsider,
        &gh,
        1,
    )
    .expect("difficulty 0");
    (chain, old, now)
}

fn old_parent_refusal(c: &mut Criterion) {
    let (mut chain, old, now) = aged_chain();
    assert!(matches!(
        chain.verify_and_add(old.clone(), now),
        Err(ChainError::ForkTooDeep { .. })
    ));
    let mut g = c.benchmark_group("old_parent_refusal");
    g.bench_function("refuse_block_on_genesis_2pow20_epochs_back", |b| {
        b.iter(|| black_box(chain.verify_and_add(old.clone(), now)))
    });
    g.sample_size(10);
    let genesis = chain.genesis().clone();
    let rules = chain.rules().clone();
    let stakes = pp_ledger::LedgerState::from_genesis(&genesis)
        .stakes()
        .clone();
    let slot = old.header.slot;
    g.bench_function("leader_check_it_avoids_2pow20_epoch_steps", |b| {
        b.iter(|| black_box(rules.state_for_slot(&rules.genesis_state(&genesis), slot, &stakes)))
    });
    g.finish();
}

criterion_group!(
    benches,
    validate_1000_transfers,
    pow_attempts,
    old_parent_refusal
);
criterion_main!(benches);
