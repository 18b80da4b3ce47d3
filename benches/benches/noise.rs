//! pp-net Noise transport benchmarks, all on one thread (a current-thread tokio runtime), so the
//! numbers are per core:
//!
//! * `noise_handshake/both_sides`: a full `Noise_XX_25519_ChaChaPoly_BLAKE2b` handshake with
//!   identity proofs between two in-memory endpoints (`tokio::io::duplex`), both sides' work
//!   together; one side costs about half (the two sides do the same number of X25519 operations
//!   and one ed25519 verification each). `snow_only_both_sides` is the bare Noise handshake
//!   (snow, empty payloads, no I/O) for comparison.
//! * `noise_throughput/stream_64KiB_writes`: 1 MiB written as 64 KiB writes through a
//!   `NoiseStream` and read back from the other one: encryption, decryption, buffering and the
//!   in-memory pipe.
//! * `noise_throughput/encrypt_only` and `decrypt_only`: snow's transport cipher on 65,519-byte
//!   chunks (the maximum plaintext of one message), without any I/O.
//!
//! Run: `cargo bench -p pp-benches --bench noise -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use pp_ledger::KeyPair;
use pp_net::noise::{handshake, NoiseIdentity, MAX_PLAINTEXT_CHUNK, NOISE_PARAMS, PROLOGUE};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime")
}

fn identities() -> (NoiseIdentity, NoiseIdentity) {
    (
        NoiseIdentity::new(&KeyPair::from_seed([1; 32])),
        NoiseIdentity::new(&KeyPair::from_seed([2; 32])),
    )
}

fn noise_handshake(c: &mut Criterion) {
    let rt = runtime();
    let (a_id, b_id) = identities();
    let mut g = c.benchmark_group("noise_handshake");
    g.bench_function("both_sides", |b| {
        b.iter(|| {
            rt.block_on(async {
                let (x, y) = tokio::io::duplex(4096);
                let (ra, rb) = tokio::join!(handshake(x, &a_id, true), handshake(y, &b_id, false));
                (ra.expect("initiator").1, rb.expect("responder").1)
            })
        })
    });
    // The same handshake with snow alone (empty payloads, no I/O): the Noise part of the cost.
    let params: snow::params::NoiseParams = NOISE_PARAMS.parse().expect("params");
    let (ki, kr) = ([3u8; 32], [4u8; 32]);
    g.bench_function("snow_only_both_sides", |b| {
        b.iter(|| {
            let (mut m, mut p) = ([0u8; 1024], [0u8; 1024]);
            let mut ini = snow::Builder::new(params.clone())
                .local_private_key(&ki)
                .and_then(|b| b.prologue(PROLOGUE))
                .and_then(|b| b.build_initiator())
                .expect("initiator");
            let mut res = snow::Builder::new(params.clone())
                .local_private_key(&kr)
                .and_then(|b| b.prologue(PROLOGUE))
                .and_then(|b| b.build_responder())
                .expect("responder");
            let n = ini.write_message(&[], &mut m).expect("m1");
            res.read_message(&m[..n], &mut p).expect("m1");
            let n = res.write_message(&[], &mut m).expect("m2");
            ini.read_message(&m[..n], &mut p).expect("m2");
            let n = ini.write_message(&[], &mut m).expect("m3");
            res.read_message(&m[..n], &mut p).expect("m3");
            (
                ini.into_transport_mode().expect("split"),
                res.into_transport_mode().expect("split"),
            )
        })
    });
    g.finish();
}

const TOTAL: usize = 1 << 20;
const WRITE: usize = 64 * 1024;

fn noise_throughput(c: &mut Criterion) {
    let rt = runtime();
    let (a_id, b_id) = identities();
    let (mut a, mut b) = rt.block_on(async {
        let (x, y) = tokio::io::duplex(256 * 1024);
        let (ra, rb) = tokio::join!(handshake(x, &a_id, true), handshake(y, &b_id, false));
        (ra.expect("initiator").0, rb.expect("responder").0)
    });
    let data = vec![0x5au8; WRITE];
    let mut sink = vec![0u8; WRITE];

    let mut g = c.benchmark_group("noise_throughput");
    g.throughput(Throughput::Bytes(TOTAL as u64));
    g.bench_function("stream_64KiB_writes", |bench| {
        bench.iter(|| {
            rt.block_on(async {
                let write = async {
                    for _ in 0..TOTAL / WRITE {
                        a.write_all(&data).await.expect("write");
                    }
                    a.flush().await.expect("flush");
                };
                let read = async {
                    let mut got = 0;
                    while got < TOTAL {
                        got += b.read(&mut sink).await.expect("read");
                    }
                };
                tokio::join!(write, read);
            })
        })
    });

    // The bare cipher: a pair of transport states from a handshake done with snow directly.
    let params: snow::params::NoiseParams = NOISE_PARAMS.parse().expect("params");
    let builder = || snow::Builder::new(params.clone());
    let ki = builder().generate_keypair().expect("key");
    let kr = builder().generate_keypair().expect("key");
    let mut ini = builder()
        .local_private_key(&ki.private)
        .and_then(|b| b.prologue(PROLOGUE))
        .and_then(|b| b.build_initiator())
        .expect("initiator");
    let mut res = builder()
        .local_private_key(&kr.private)
        .and_then(|b| b.prologue(PROLOGUE))
        .and_then(|b| b.build_responder())
        .expect("responder");
    let mut m = vec![0u8; 65_535];
    let mut p = vec![0u8; 65_535];
    let n = ini.write_message(&[], &mut m).expect("m1");
    res.read_message(&m[..n], &mut p).expect("m1");
    let n = res.write_message(&[], &mut m).expect("m2");
    ini.read_message(&m[..n], &mut p).expect("m2");
    let n = ini.write_message(&[], &mut m).expect("m3");
    res.read_message(&m[..n], &mut p).expect("m3");
    let mut ini = ini.into_transport_mode().expect("transport");
    let mut res = res.into_transport_mode().expect("transport");
    let chunk = vec![0x5au8; MAX_PLAINTEXT_CHUNK];
    let chunks = TOTAL.div_ceil(MAX_PLAINTEXT_CHUNK);
    g.throughput(Throughput::Bytes((chunks * MAX_PLAINTEXT_CHUNK) as u64));
    g.bench_function("encrypt_only", |bench| {
        bench.iter(|| {
            for _ in 0..chunks {
                black_box(ini.write_message(&chunk, &mut m).expect("encrypt"));
            }
        })
    });
    // Decryption must follow the nonce sequence: encrypt a batch, then time decrypting it.
    g.bench_function("decrypt_only", |bench| {
        bench.iter_batched(
            || {
                (0..chunks)
                    .map(|_| {
                        let mut out = vec![0u8; 65_535];
                        let n = res.write_message(&chunk, &mut out).expect("encrypt");
                        out.truncate(n);
                        out
                    })
                    .collect::<Vec<_>>()
            },
            |batch| {
                for msg in &batch {
                    black_box(ini.read_message(msg, &mut p).expect("decrypt"));
                }
            },
            criterion::BatchSize::PerIteration,
        )
    });
    g.finish();
}

criterion_group!(benches, noise_handshake, noise_throughput);
criterion_main!(benches);
