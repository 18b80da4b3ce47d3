//! Praos costs: VRF prove and verify per second (RFC 9381 ECVRF-EDWARDS25519-SHA512-TAI via
//! `pp_ouroboros::EcVrf`), the per-epoch threshold computation, and the per-slot comparison.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use pp_ledger::Hash;
use pp_ouroboros::{
    below_threshold, leader_value, vrf_input, ActiveSlotCoeff, EcVrf, Vrf, VrfSecretKey,
};

fn bench_vrf(c: &mut Criterion) {
    let secret = VrfSecretKey::from_seed([42; 32]);
    let public = secret.public();
    let eta = Hash::blake2b(b"pp-ouroboros praos bench nonce");
    let mut group = c.benchmark_group("praos_vrf");
    group.throughput(Throughput::Elements(1));
    let mut slot = 0u64;
    group.bench_function("prove", |b| {
        b.iter(|| {
            slot += 1;
            black_box(EcVrf::prove(&secret, &vrf_input(&eta, slot)).ok())
        })
    });
    let proofs: Vec<_> = (0..64u64)
        .map(|s| {
            (
                s,
                EcVrf::prove(&secret, &vrf_input(&eta, s)).expect("prove").1,
            )
        })
        .collect();
    let mut i = 0usize;
    group.bench_function("verify", |b| {
        b.iter(|| {
            i = (i + 1) % proofs.len();
            let (s, proof) = &proofs[i];
            black_box(EcVrf::verify(&public, &vrf_input(&eta, *s), proof))
        })
    });
    group.finish();
}

fn bench_threshold(c: &mut Criterion) {
    let mut group = c.benchmark_group("praos_threshold");
    group.throughput(Throughput::Elements(1));
    let half = ActiveSlotCoeff::new(1, 2).expect("1/2 is admissible");
    group.bench_function("threshold_f_1_2", |b| {
        b.iter(|| black_box(half.threshold(black_box(2_500), 10_000)))
    });
    let theta = half.threshold(2_500, 10_000).expect("stake <= total");
    let output = [7u8; 64];
    group.bench_function("leader_value_and_compare", |b| {
        b.iter(|| {
            black_box(below_threshold(
                leader_value(black_box(&output)).as_bytes(),
                theta,
            ))
        })
    });
    group.finish();
}

criterion_group!(benches, bench_vrf, bench_threshold);
criterion_main!(benches);
