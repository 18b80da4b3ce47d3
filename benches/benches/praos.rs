//! Praos costs: VRF prove and verify per second (RFC 9381 ECVRF-EDWARDS25519-SHA512-TAI via
//! `pp_ouroboros::EcVrf`), the per-epoch threshold computation, the per-slot comparison, and
//! the consensus check of one header (hash + leader check) in classic mode against praos mode
//! (VRF verify + threshold), in the same run.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use pp_ledger::{
    Block, ConsensusRules, Genesis, Hash, KeyPair, PublicKey, DEVNET_ACTIVE_SLOT_COEFF,
};
use pp_ouroboros::{
    below_threshold, leader_value, vrf_input, ActiveSlotCoeff, EcVrf, Ouroboros, Vrf, VrfSecretKey,
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

/// One header's consensus check, as `Chain::screen` runs it: the block hash and
/// `ConsensusRules::check_producer` on the slot's epoch state. Classic: a leader draw; praos: a
/// VRF verify and a threshold. Single stakeholder, so every slot is led in classic mode and the
/// praos block is taken in the first slot it leads.
fn bench_header_check(c: &mut Criterion) {
    let key = KeyPair::from_seed([9; 32]);
    let vrf = VrfSecretKey::from_seed([10; 32]);
    let classic = Genesis::devnet("bench", key.public(), 0);
    let praos = classic.clone().into_praos(
        DEVNET_ACTIVE_SLOT_COEFF,
        &[PublicKey(*vrf.public().as_bytes())],
    );
    let mut group = c.benchmark_group("praos_header_check");
    group.throughput(Throughput::Elements(1));
    for (name, g) in [("classic", &classic), ("praos", &praos)] {
        let rules = Ouroboros::new(g).expect("valid genesis");
        let st0 = rules.genesis_state(g);
        let (slot, evidence) = (1..1_000u64)
            .find_map(|s| match rules.prove_slot(&st0, s, &key.public(), &vrf) {
                Ok(Some(e)) => Some((s, Some(e))),
                Ok(None) => None,
                // Classic rules have no VRF: every slot is ours.
                Err(_) => Some((s, None)),
            })
            .expect("a led slot");
        let block = Block::produce_with(
            &g.block().header,
            slot,
            0,
            0,
            Vec::new(),
            pp_ledger::testing::root_on(g, &g.block().header, &key.public(), &[])
                .expect("an empty block applies")
                .0,
            evidence,
            &key,
            &g.hash(),
            1,
        )
        .expect("difficulty 0");
        let state = rules.state_for_slot(&st0, slot, &Default::default());
        rules
            .check_producer(&state, &block.header)
            .expect("the producer leads");
        group.bench_function(name, |b| {
            b.iter(|| {
                black_box(block.header.hash());
                black_box(rules.check_producer(&state, black_box(&block.header)))
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench_vrf, bench_threshold, bench_header_check);
criterion_main!(benches);
