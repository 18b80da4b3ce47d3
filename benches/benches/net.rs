//! pp-net benchmarks: encoding and decoding the frame of a block holding 1,000 signed transfers
//! (length prefix + JSON, through `MessageCodec`), and request/response round trips between two
//! `Network`s over loopback TCP (`ping`, `get_blocks` of one small block, and of one
//! 1,000-transaction block).
//!
//! Run: `cargo bench -p pp-benches --bench net -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;
use std::sync::Arc;

use bytes::BytesMut;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use pp_ledger::{Block, BlockHeader, Hash, KeyPair, PublicKey, Transaction, BLOCK_VERSION};
use pp_net::{ChainView, Message, MessageCodec, NetConfig, Network, TcpTransport};
use tokio_util::codec::{Decoder, Encoder};

fn genesis_hash() -> Hash {
    Hash::sha256(b"pp-net bench")
}

fn parent() -> BlockHeader {
    BlockHeader {
        version: BLOCK_VERSION,
        index: 0,
        slot: 0,
        prev_hash: genesis_hash(),
        tx_root: Hash::ZERO,
        state_root: Hash::ZERO,
        producer: KeyPair::from_seed([1; 32]).public(),
        timestamp: 0,
        difficulty: 0,
        vrf: None,
        ocert: None,
        nonce: 0,
    }
}

/// A block of `n` signed transfers (difficulty 0: the bench measures the network, not PoW).
fn block_with(n: u64, parent: &BlockHeader) -> Block {
    let g = genesis_hash();
    let k = KeyPair::from_seed([1; 32]);
    let txs = (0..n)
        .map(|i| Transaction::transfer(&k, PublicKey([2; 32]), 1 + i, 1, i, &g))
        .collect();
    Block::produce(
        parent,
        parent.index + 1,
        1_000,
        0,
        txs,
        Hash::ZERO,
        &k,
        &g,
        1,
    )
    .expect("difficulty 0")
}

fn frame_codec(c: &mut Criterion) {
    let block = block_with(1_000, &parent());
    let msg = Message::new_block(&block);
    let mut codec = MessageCodec::new(pp_net::DEFAULT_MAX_FRAME_BYTES);
    let mut frame = BytesMut::new();
    codec.encode(&msg, &mut frame).expect("encodes");
    let frame = frame.freeze();
    eprintln!(
        "new_block frame with 1,000 transactions: {} bytes",
        frame.len()
    );

    let mut g = c.benchmark_group("frame_1000tx_block");
    g.throughput(Throughput::Bytes(frame.len() as u64));
    g.bench_function("encode", |b| {
        b.iter(|| {
            let mut dst = BytesMut::with_capacity(frame.len());
            codec.encode(black_box(&msg), &mut dst).expect("encodes");
            dst
        })
    });
    g.bench_function("decode", |b| {
        b.iter(|| {
            let mut src = BytesMut::from(&frame[..]);
            codec
                .decode(&mut src)
                .expect("decodes")
                .expect("whole frame")
        })
    });
    g.finish();
}

struct Fixed(Vec<Block>);

impl ChainView for Fixed {
    fn tip(&self) -> (u64, Hash) {
        self.0
            .last()
            .map(|b| (b.header.index, b.hash()))
            .unwrap_or((0, genesis_hash()))
    }
    fn get_blocks(&self, from_index: u64, count: u32) -> Vec<Block> {
        self.0
            .iter()
            .filter(|b| b.header.index >= from_index)
            .take(count as usize)
            .cloned()
            .collect()
    }
    fn get_headers(&self, _: &[Hash], _: u32) -> Vec<pp_ledger::SignedHeader> {
        Vec::new()
    }
}

fn loopback_round_trip(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let small = block_with(1, &parent());
    let big = block_with(1_000, &small.header);
    let (server, client, peer) = rt.block_on(async {
        let g = genesis_hash();
        let view = Arc::new(Fixed(vec![small.clone(), big.clone()]));
        let (server, _se) = Network::start(
            NetConfig::new("server", g, "127.0.0.1:0"),
            TcpTransport,
            view,
        )
        .await
        .expect("server starts");
        let (client, _ce) = Network::start(
            NetConfig::new("client", g, "127.0.0.1:0"),
            TcpTransport,
            Arc::new(Fixed(vec![])),
        )
        .await
        .expect("client starts");
        let peer = client
            .connect(&server.local_addr().to_string())
            .await
            .expect("connects");
        (server, client, peer.id)
    });

    let mut g = c.benchmark_group("loopback_round_trip");
    g.bench_function("ping", |b| {
        b.iter(|| rt.block_on(client.ping(peer)).expect("pong"))
    });
    g.bench_function("get_blocks_1_small_block", |b| {
        b.iter(|| {
            let blocks = rt.block_on(client.get_blocks(peer, 1, 1)).expect("blocks");
            assert_eq!(blocks.len(), 1);
            blocks
        })
    });
    g.bench_function("get_blocks_1_block_of_1000_txs", |b| {
        b.iter(|| {
            let blocks = rt.block_on(client.get_blocks(peer, 2, 1)).expect("blocks");
            assert_eq!(blocks[0].transactions.len(), 1_000);
            blocks
        })
    });
    g.finish();
    rt.block_on(async {
        client.shutdown().await;
        server.shutdown().await;
    });
}

criterion_group!(benches, frame_codec, loopback_round_trip);
criterion_main!(benches);
