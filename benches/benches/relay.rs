//! Compact-block relay (docs/protocol.md §14): the time to rebuild a 1,000-transaction compact
//! block from a mempool of 5,000 pending transactions (the block's 1,000 among them), and the
//! bytes a block and a transaction cost on the wire, compact against full (printed).
//!
//! Run: `cargo bench -p pp-benches --bench relay -- --warm-up-time 1 --measurement-time 3`

use std::collections::HashMap;
use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use pp_ledger::{Block, BlockHeader, Hash, KeyPair, PublicKey, Transaction, BLOCK_VERSION};
use pp_net::compact::{lay_out, CompactBlock, Rebuild};
use pp_net::{encode_message, Message, DEFAULT_MAX_FRAME_BYTES};

fn genesis_hash() -> Hash {
    Hash::sha256(b"pp-net relay bench")
}

/// `n` signed transfers from the key of `seed`.
fn transfers(seed: u8, n: u64) -> Vec<Transaction> {
    let g = genesis_hash();
    let k = KeyPair::from_seed([seed; 32]);
    (0..n)
        .map(|i| Transaction::transfer(&k, PublicKey([2; 32]), 1 + i, 1, i, &g))
        .collect()
}

fn block_of(txs: Vec<Transaction>) -> Block {
    let k = KeyPair::from_seed([1; 32]);
    let parent = BlockHeader {
        version: BLOCK_VERSION,
        index: 0,
        slot: 0,
        prev_hash: genesis_hash(),
        tx_root: Hash::ZERO,
        state_root: Hash::ZERO,
        producer: k.public(),
        timestamp: 0,
        difficulty: 0,
        vrf: None,
        ocert: None,
        nonce: 0,
    };
    Block::produce(
        &parent,
        1,
        1_000,
        0,
        txs,
        Hash::ZERO,
        &k,
        &genesis_hash(),
        1,
    )
    .expect("difficulty 0")
}

/// Frame size on the wire: 4-byte length prefix + JSON payload.
fn frame_len(m: &Message) -> usize {
    encode_message(m, DEFAULT_MAX_FRAME_BYTES)
        .expect("encodes")
        .len()
        + 4
}

/// Rebuild `cb` from `mempool` as a receiving node does (lay out, match candidates, check the
/// transaction root).
fn rebuild(cb: &CompactBlock, mempool: &HashMap<Hash, Transaction>) -> Block {
    let Rebuild::Partial(mut p) = lay_out(cb).expect("well formed") else {
        panic!("ambiguous short ids")
    };
    let candidates: Vec<(&Hash, &Transaction)> =
        mempool.iter().filter(|(id, _)| p.matches(id)).collect();
    for (id, tx) in candidates {
        p.offer(id, tx);
    }
    p.finish().expect("every transaction in the mempool")
}

fn compact_block(c: &mut Criterion) {
    let block = block_of(transfers(1, 1_000));
    let mut mempool: HashMap<Hash, Transaction> = block
        .transactions
        .iter()
        .map(|t| (t.id(), t.clone()))
        .collect();
    for seed in 2..6 {
        mempool.extend(transfers(seed, 1_000).into_iter().map(|t| (t.id(), t)));
    }
    let cb = CompactBlock::build(&block, 0x0123_4567_89ab_cdef, |_, _| false);
    assert_eq!(rebuild(&cb, &mempool), block);

    let full = frame_len(&Message::new_block(&block));
    let compact = frame_len(&Message::CompactBlock(cb.clone()));
    let tx = &block.transactions[0];
    let new_tx = frame_len(&Message::NewTx { tx: tx.clone() });
    let inv_1000 = frame_len(&Message::InvTxs {
        ids: block.transactions.iter().map(Transaction::id).collect(),
    });
    eprintln!("block of 1,000 transfers: new_block {full} B, compact_block {compact} B ({:.1}x smaller, {:.1} B per transaction)",
        full as f64 / compact as f64, compact as f64 / 1_000.0);
    eprintln!(
        "one transfer: new_tx {new_tx} B; its id in an inv_txs of 1,000 ids {:.1} B",
        inv_1000 as f64 / 1_000.0
    );

    let mut g = c.benchmark_group("compact_block_1000tx");
    g.bench_function("build", |b| {
        b.iter(|| CompactBlock::build(black_box(&block), 7, |_, _| false))
    });
    g.bench_function("rebuild_from_mempool_5000", |b| {
        b.iter(|| rebuild(black_box(&cb), &mempool))
    });
    g.finish();
}

criterion_group!(benches, compact_block);
criterion_main!(benches);
