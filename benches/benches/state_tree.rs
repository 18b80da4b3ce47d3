//! The state tree (pp-ledger `state_tree`, docs/state-commitment.md) at 1,000,000 accounts:
//!
//! * `state_tree_update`: one block's root update, a 1,000-transfer block's changes (1,000
//!   senders with a new balance and nonce, 1,000 receivers with a new balance, the producer's
//!   fees: 2,001 leaves, encoded inside the timed part), written as the next version of a tree
//!   of 1M accounts; the versions older than 10 are pruned between blocks, outside the timing.
//! * `state_tree_prove`: proof generation for a random present key (from the in-memory store).
//! * `state_tree_verify`: verification of inclusion proofs.
//! * Interleaved rounds (as in `validation.rs`): the cold 1-thread validation of a 1,000-transfer
//!   block against the root update (two threads for a batch this large), and the same update
//!   kept on one thread, round by round, and the ratios of their medians; and the median time
//!   of the pruning that precedes each update (not in the update's time).
//! * Proof sizes at 1M accounts (printed): inclusion and exclusion, mean and maximum.
//!
//! Run: `nice -n 10 cargo bench -p pp-benches --bench state_tree -- --warm-up-time 1 --measurement-time 5`
//! (`PP_BENCH_ACCOUNTS=n` changes the tree size; building 1M accounts takes a few seconds;
//! `PP_BENCH_ROUNDS=n` the number of interleaved rounds, 21 by default.)

use std::hint::black_box;
use std::time::Instant;

use criterion::{BatchSize, Criterion, Throughput};
use pp_benches::big_block;
use pp_ledger::state_tree::{verify, AccountLeaf, MemoryStore, StateProof, StateTree};
use pp_ledger::{account_key, Chain, Encode, Hash, PublicKey, RoundRobin};

/// A synthetic account key: the tree only hashes its bytes.
fn account(i: u64) -> PublicKey {
    let mut k = [0u8; 32];
    k[..8].copy_from_slice(&i.to_be_bytes());
    k[8] = 0x5a;
    PublicKey(k)
}

fn leaf(balance: u64, nonce: u64) -> Vec<u8> {
    AccountLeaf {
        balance,
        nonce,
        stake: 0,
        stakeholder_id: None,
        vrf_key: None,
    }
    .to_canonical_bytes()
}

/// A cheap deterministic spread of indexes (splitmix64).
fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The changes of block `b`: 1,000 distinct senders, 1,000 distinct receivers, a producer.
fn block_changes(b: u64, n: u64) -> Vec<(PublicKey, u64, u64)> {
    let mut out = Vec::with_capacity(2_001);
    for t in 0..1_000u64 {
        let s = mix(b * 4_000 + t) % n;
        let r = mix(b * 4_000 + 2_000 + t) % n;
        out.push((account(s), 1_000_000 - b, b + 1));
        out.push((account(r), 1_000_000 + b, 0));
    }
    out.push((account(0), 5_000_000 + b, 0));
    out
}

fn encode_changes(c: &[(PublicKey, u64, u64)]) -> Vec<(Hash, Option<Vec<u8>>)> {
    c.iter()
        .map(|(k, bal, nonce)| (account_key(k), Some(leaf(*bal, *nonce))))
        .collect()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

const KEEP_VERSIONS: u64 = 10;

/// Applies block `v`'s changes as version `v`, pruning beyond `KEEP_VERSIONS` first (timed
/// apart); returns the seconds the update took and those the pruning took.
fn timed_update(tree: &mut StateTree<MemoryStore>, v: u64, n: u64) -> (f64, f64) {
    let t = Instant::now();
    tree.prune(v.saturating_sub(KEEP_VERSIONS)).expect("prune");
    let pruned = t.elapsed().as_secs_f64();
    let changes = block_changes(v, n);
    let t = Instant::now();
    black_box(tree.apply(v, encode_changes(&changes)).expect("apply"));
    (t.elapsed().as_secs_f64(), pruned)
}

fn main() {
    let n: u64 = std::env::var("PP_BENCH_ACCOUNTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let t = Instant::now();
    let mut tree = StateTree::new(MemoryStore::new());
    let root0 = tree
        .apply(
            0,
            (0..n).map(|i| (account_key(&account(i)), Some(leaf(1_000_000, 0)))),
        )
        .expect("build");
    eprintln!(
        "built {n} accounts in {:.1} s: {} nodes, root {root0}",
        t.elapsed().as_secs_f64(),
        tree.store().node_count()
    );

    // Proof sizes.
    let (mut inc, mut exc) = (Vec::new(), Vec::new());
    for i in 0..10_000u64 {
        let (_, p) = tree
            .prove(0, &account_key(&account(mix(i) % n)))
            .expect("prove");
        inc.push(p.to_bytes().len());
        let (_, p) = tree.prove(0, &account_key(&account(n + i))).expect("prove");
        exc.push(p.to_bytes().len());
    }
    for (what, s) in [("inclusion", &inc), ("exclusion", &exc)] {
        eprintln!(
            "{what} proof bytes at {n} accounts over 10,000 keys: mean {:.0}, max {}",
            s.iter().sum::<usize>() as f64 / s.len() as f64,
            s.iter().max().copied().unwrap_or(0)
        );
    }

    let mut c = Criterion::default().configure_from_args();
    let mut version = 0u64;
    {
        let mut g = c.benchmark_group("state_tree_update");
        g.sample_size(20);
        g.throughput(Throughput::Elements(2_001));
        g.bench_function("block_of_1000_transfers_1M_accounts", |b| {
            b.iter_custom(|iters| {
                let mut total = 0.0;
                for _ in 0..iters {
                    version += 1;
                    total += timed_update(&mut tree, version, n).0;
                }
                std::time::Duration::from_secs_f64(total)
            })
        });
        g.finish();
    }
    let latest = version;
    let keys: Vec<Hash> = (0..4_096u64)
        .map(|i| account_key(&account(mix(i ^ 0xabcdef) % n)))
        .collect();
    {
        let mut g = c.benchmark_group("state_tree_prove");
        g.throughput(Throughput::Elements(1));
        let mut i = 0usize;
        g.bench_function("inclusion_1M_accounts", |b| {
            b.iter(|| {
                i = (i + 1) % keys.len();
                black_box(tree.prove(latest, &keys[i]).expect("prove"))
            })
        });
        g.finish();
    }
    let root = tree.root(latest).expect("root");
    let proofs: Vec<(Hash, Vec<u8>, StateProof)> = keys
        .iter()
        .map(|k| {
            let (v, p) = tree.prove(latest, k).expect("prove");
            (*k, v.expect("present"), p)
        })
        .collect();
    {
        let mut g = c.benchmark_group("state_tree_verify");
        g.throughput(Throughput::Elements(1));
        let mut i = 0usize;
        g.bench_function("inclusion_1M_accounts", |b| {
            b.iter(|| {
                i = (i + 1) % proofs.len();
                let (k, v, p) = &proofs[i];
                black_box(verify(&root, k, Some(v), p)).expect("valid")
            })
        });
        g.bench_function("decode_and_verify_1M_accounts", |b| {
            let bytes: Vec<Vec<u8>> = proofs.iter().map(|(_, _, p)| p.to_bytes()).collect();
            b.iter_batched(
                || {
                    i = (i + 1) % proofs.len();
                    i
                },
                |i| {
                    let p = StateProof::from_bytes(&bytes[i]).expect("decodes");
                    black_box(verify(&root, &proofs[i].0, Some(&proofs[i].1), &p)).expect("valid")
                },
                BatchSize::SmallInput,
            )
        });
        g.finish();
    }

    // Interleaved: the cold 1-thread validation of a 1,000-transfer block, then one root
    // update, round by round, so that the ratio is not skewed by load drifting between groups.
    let (genesis, block) = big_block();
    let now = genesis.genesis_time + 10_000;
    let rounds: usize = std::env::var("PP_BENCH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .filter(|r| *r > 0)
        .unwrap_or(21);
    // Each round also times one update on the calling thread only, to compare the two-thread
    // update with it under the same load.
    let (mut val, mut upd, mut seq, mut prn) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        let mut chain = Chain::new(genesis.clone(), RoundRobin).expect("valid genesis");
        let blk = block.clone();
        let t = Instant::now();
        black_box(chain.verify_and_add(blk, now).expect("block applies"));
        val.push(t.elapsed().as_secs_f64());
        version += 1;
        let (u, p) = timed_update(&mut tree, version, n);
        upd.push(u);
        prn.push(p);
        tree.set_parallel(false);
        version += 1;
        seq.push(timed_update(&mut tree, version, n).0);
        tree.set_parallel(true);
    }
    let (v, u, s1, p) = (median(val), median(upd), median(seq), median(prn));
    eprintln!(
        "interleaved medians over {rounds} rounds: validate 1,000 transfers (cold, 1 thread) \
         {:.2} ms, state-root update of its 2,001 changes at {n} accounts {:.2} ms: {:.1} % \
         (on one thread: {:.2} ms, {:.1} %)",
        v * 1e3,
        u * 1e3,
        100.0 * u / v,
        s1 * 1e3,
        100.0 * s1 / v
    );
    eprintln!(
        "interleaved median of the pruning before each update (untimed above, {KEEP_VERSIONS} \
         versions kept): {:.2} ms, {:.1} % of the update",
        p * 1e3,
        100.0 * p / u
    );
    c.final_summary();
}
