//! Leader election throughput: slots per second for 4 and 1,000 stakeholders.
//!
//! Each element is one slot's election: a Blake2b-256 draw, the 256-bit reduction modulo the
//! total stake, then either `walk` (`pp_ouroboros::leader`, the reference rule: a pass over the
//! distribution, linear in the number of stakeholders) or `table` (`LeaderTable`, prefix sums and a
//! binary search, built once per epoch). Also measured: the epoch-state advance over empty epochs
//! (one nonce hash each), the cost a node pays after a long gap.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use pp_ledger::{Genesis, Hash, KeyPair, PublicKey, StakeMap};
use pp_ouroboros::{leader, EpochState, LeaderTable};

/// Slots elected per benchmark iteration.
const SLOTS_PER_ITER: u64 = 1_000;

fn distribution(n: u32) -> StakeMap {
    (0..n)
        .map(|i| {
            let mut seed = [0u8; 32];
            seed[..4].copy_from_slice(&i.to_be_bytes());
            // Varied stakes so the walk stops at different depths.
            (
                KeyPair::from_seed(seed).public(),
                1_000 + u64::from(i % 17) * 250,
            )
        })
        .collect()
}

fn bench_leader(c: &mut Criterion) {
    let nonce = Hash::blake2b(b"pp-ouroboros bench nonce");
    let mut group = c.benchmark_group("leader_election");
    group.throughput(Throughput::Elements(SLOTS_PER_ITER));
    for n in [4u32, 1_000] {
        let d = distribution(n);
        group.bench_with_input(BenchmarkId::new("walk", n), &d, |b, d| {
            let mut base = 0u64;
            b.iter(|| {
                for slot in base..base + SLOTS_PER_ITER {
                    black_box(leader(&nonce, d, black_box(slot)).ok());
                }
                base += SLOTS_PER_ITER;
            });
        });
        let table = LeaderTable::new(&d).expect("bench stakes fit u128");
        group.bench_with_input(BenchmarkId::new("table", n), &table, |b, t| {
            let mut base = 0u64;
            b.iter(|| {
                for slot in base..base + SLOTS_PER_ITER {
                    black_box(t.leader(&nonce, black_box(slot)).ok());
                }
                base += SLOTS_PER_ITER;
            });
        });
    }
    group.finish();
}

fn bench_empty_epochs(c: &mut Criterion) {
    const GAP: u64 = 1_000;
    let genesis = Genesis::devnet("bench", PublicKey([1; 32]), 1_700_000_000_000);
    let state = EpochState::genesis(&genesis);
    let stakes = distribution(4);
    let mut group = c.benchmark_group("epoch_advance");
    group.throughput(Throughput::Elements(GAP));
    group.bench_function("empty_epochs", |b| {
        b.iter(|| black_box(state.advance_to(black_box(GAP), &stakes).ok()));
    });
    group.finish();
}

criterion_group!(benches, bench_leader, bench_empty_epochs);
criterion_main!(benches);
