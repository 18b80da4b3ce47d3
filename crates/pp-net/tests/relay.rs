//! Relay that saves bandwidth between real networks on loopback (docs/protocol.md §14):
//! transactions by inventory, compact blocks rebuilt from a mempool with and without a round
//! trip, and the full fallbacks (a peer that did not ask for compact relay; ambiguous short ids).
#![allow(clippy::unwrap_used)] // Tests: a failed unwrap is a failed test.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use common::*;
use futures::SinkExt;
use pp_ledger::{Block, Hash, Transaction};
use pp_net::compact::CompactBlock;
use pp_net::{ChainView, Message, NetEvent, Network, TcpTransport};
use tokio::sync::mpsc;

/// A chain view with a mempool that the test fills.
#[derive(Default)]
struct Pool {
    txs: Mutex<HashMap<Hash, Transaction>>,
}

impl Pool {
    fn add(&self, txs: &[Transaction]) {
        let mut m = self.txs.lock().unwrap();
        for tx in txs {
            m.insert(tx.id(), tx.clone());
        }
    }
}

impl ChainView for Pool {
    fn tip(&self) -> (u64, Hash) {
        (0, genesis_hash())
    }
    fn get_blocks(&self, _: u64, _: u32) -> Vec<Block> {
        Vec::new()
    }
    fn get_headers(&self, _: &[Hash], _: u32) -> Vec<pp_ledger::SignedHeader> {
        Vec::new()
    }
    fn has_tx(&self, id: &Hash) -> bool {
        self.txs.lock().unwrap().contains_key(id)
    }
    fn get_tx(&self, id: &Hash) -> Option<Transaction> {
        self.txs.lock().unwrap().get(id).cloned()
    }
    fn pending_txs(&self, want: &mut dyn FnMut(&Hash) -> bool) -> Vec<Transaction> {
        let m = self.txs.lock().unwrap();
        m.iter()
            .filter(|(id, _)| want(id))
            .map(|(_, tx)| tx.clone())
            .collect()
    }
}

async fn start_pool(
    name: &str,
    compact: bool,
) -> (Network<TcpTransport>, mpsc::Receiver<NetEvent>, Arc<Pool>) {
    let pool = Arc::new(Pool::default());
    let mut cfg = config(name);
    cfg.compact_relay = compact;
    let (n, ev) = Network::start(cfg, TcpTransport, pool.clone())
        .await
        .unwrap();
    (n, ev, pool)
}

fn count(stats: &[(&'static str, u64)], kind: &str) -> u64 {
    stats
        .iter()
        .find(|(k, _)| *k == kind)
        .map_or(0, |(_, v)| *v)
}

/// `b` dials `a`; both asked for compact relay once the exchange is seen on both sides.
async fn linked(a: &Network<TcpTransport>, b: &Network<TcpTransport>) {
    b.connect(&a.local_addr().to_string()).await.unwrap();
    assert!(
        eventually(5, || count(&a.stats().messages_in, "compact_relay") >= 1
            && count(&b.stats().messages_in, "compact_relay") >= 1)
        .await
    );
}

#[tokio::test]
async fn a_transaction_is_announced_by_id_and_fetched_once() {
    let (a, _ea, _pa) = start_pool("a", true).await;
    let (b, mut eb, pb) = start_pool("b", true).await;
    linked(&a, &b).await;
    let chain = make_chain(1, 3);
    let txs = &chain[0].transactions;
    // b holds the first one already: only the two others are fetched.
    pb.add(&txs[..1]);
    for tx in txs {
        a.broadcast_tx(tx, None);
    }
    let mut got = Vec::new();
    while got.len() < 2 {
        match wait_event(&mut eb, 5, |e| matches!(e, NetEvent::NewTx { .. })).await {
            Some(NetEvent::NewTx { tx, .. }) => got.push(tx),
            other => panic!("no transaction: {other:?}"),
        }
    }
    assert_eq!(got, txs[1..].to_vec());
    let (sa, sb) = (a.stats(), b.stats());
    assert_eq!(
        count(&sa.messages_out, "new_tx"),
        0,
        "nothing pushed in full"
    );
    assert_eq!(
        count(&sa.messages_out, "inv_txs"),
        1,
        "three ids in one frame"
    );
    assert_eq!(count(&sb.messages_out, "get_txs"), 1);
    assert_eq!(count(&sb.messages_in, "txs"), 1);
    // Announced again (e.g. relayed back by a third node): known, nothing moves.
    for tx in txs {
        a.broadcast_tx(tx, None);
    }
    b.broadcast_tx(&txs[1], None);
    assert!(
        wait_event(&mut eb, 1, |e| matches!(e, NetEvent::NewTx { .. }))
            .await
            .is_none()
    );
    assert_eq!(count(&a.stats().messages_out, "inv_txs"), 1);
    assert_eq!(count(&b.stats().messages_out, "inv_txs"), 0);
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn a_compact_block_is_rebuilt_from_the_mempool_without_a_round_trip() {
    let (a, _ea, _pa) = start_pool("a", true).await;
    let (b, mut eb, pb) = start_pool("b", true).await;
    linked(&a, &b).await;
    let block = make_chain(1, 40).remove(0);
    pb.add(&block.transactions);
    a.broadcast_block(&block, None);
    match wait_event(&mut eb, 5, |e| matches!(e, NetEvent::NewBlock { .. })).await {
        Some(NetEvent::NewBlock { block: got, .. }) => assert_eq!(got, block),
        other => panic!("no block: {other:?}"),
    }
    let (sa, sb) = (a.stats(), b.stats());
    assert_eq!(count(&sa.messages_out, "compact_block"), 1);
    assert_eq!(count(&sa.messages_out, "new_block"), 0);
    assert_eq!(count(&sb.messages_out, "get_block_txs"), 0, "no round trip");
    assert_eq!(sb.compact_rebuilt, 1);
    assert_eq!(sb.compact_txs_fetched, 0);
    // The compact block is a fraction of the block.
    let full = count(&sb.bytes_in, "compact_block");
    let block_bytes = pp_net::encode_message(&Message::new_block(&block), 1 << 23)
        .unwrap()
        .len() as u64;
    assert!(
        full * 5 < block_bytes,
        "compact {full} B, full {block_bytes} B"
    );
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn missing_transactions_are_fetched_and_a_peer_that_cannot_rebuild_gets_the_block() {
    let (a, _ea, _pa) = start_pool("a", true).await;
    let (b, mut eb, pb) = start_pool("b", true).await;
    let (c, mut ec, _pc) = start_pool("c", false).await;
    linked(&a, &b).await;
    c.connect(&a.local_addr().to_string()).await.unwrap();
    assert!(eventually(5, || a.peer_count() == 2).await);
    let block = make_chain(1, 30).remove(0);
    pb.add(&block.transactions[..20]);
    a.broadcast_block(&block, None);
    for rx in [&mut eb, &mut ec] {
        match wait_event(rx, 5, |e| matches!(e, NetEvent::NewBlock { .. })).await {
            Some(NetEvent::NewBlock { block: got, .. }) => assert_eq!(got, block),
            other => panic!("no block: {other:?}"),
        }
    }
    let (sa, sb) = (a.stats(), b.stats());
    assert_eq!(count(&sa.messages_out, "compact_block"), 1, "to b");
    assert_eq!(
        count(&sa.messages_out, "new_block"),
        1,
        "to c, which did not ask"
    );
    assert_eq!(count(&sb.messages_out, "get_block_txs"), 1);
    assert_eq!(sb.compact_fetched, 1);
    assert_eq!(sb.compact_txs_fetched, 10, "only the missing ones");
    assert_eq!(
        (sb.compact_rebuilt, sb.compact_full, sb.compact_failed),
        (0, 0, 0)
    );
    assert_eq!(count(&c.stats().messages_out, "compact_relay"), 0);
    for n in [&a, &b, &c] {
        n.shutdown().await;
    }
}

#[tokio::test]
async fn ambiguous_short_ids_fall_back_to_every_transaction() {
    let (b, mut eb, pb) = start_pool("b", true).await;
    let mut raw = raw_handshaken(&b, "raw").await;
    let block = make_chain(1, 3).remove(0);
    pb.add(&block.transactions);
    let mut cb = CompactBlock::build(&block, 5, |_, _| false);
    cb.short_ids[1] = cb.short_ids[0];
    raw.send(Message::CompactBlock(cb)).await.unwrap();
    let (request_id, indexes) = match next_non_ping(&mut raw, 5).await {
        Some(Ok(Message::GetBlockTxs {
            request_id,
            hash,
            indexes,
        })) => {
            assert_eq!(hash, block.hash());
            (request_id, indexes)
        }
        other => panic!("expected get_block_txs, got {other:?}"),
    };
    assert_eq!(indexes, vec![0, 1, 2], "every transaction");
    raw.send(Message::BlockTxs {
        request_id,
        hash: block.hash(),
        txs: block.transactions.clone(),
    })
    .await
    .unwrap();
    match wait_event(&mut eb, 5, |e| matches!(e, NetEvent::NewBlock { .. })).await {
        Some(NetEvent::NewBlock { block: got, .. }) => assert_eq!(got, block),
        other => panic!("no block: {other:?}"),
    }
    let sb = b.stats();
    assert_eq!(sb.compact_full, 1);
    assert_eq!(sb.compact_txs_fetched, 3, "every transaction");
    b.shutdown().await;
}

#[tokio::test]
async fn a_compact_block_whose_sender_cannot_deliver_is_counted_as_failed() {
    let (b, mut eb, _pb) = start_pool("b", true).await;
    let mut raw = raw_handshaken(&b, "raw").await;
    let block = make_chain(1, 3).remove(0);
    let cb = CompactBlock::build(&block, 7, |_, _| false);
    raw.send(Message::CompactBlock(cb)).await.unwrap();
    let request_id = match next_non_ping(&mut raw, 5).await {
        Some(Ok(Message::GetBlockTxs {
            request_id,
            indexes,
            ..
        })) => {
            assert_eq!(indexes, vec![0, 1, 2], "b holds none of them");
            request_id
        }
        other => panic!("expected get_block_txs, got {other:?}"),
    };
    raw.send(Message::error(
        Some(request_id),
        pp_net::codes::NOT_FOUND,
        "gone",
    ))
    .await
    .unwrap();
    assert!(
        eventually(5, || b.stats().compact_failed == 1).await,
        "{:?}",
        b.stats()
    );
    let sb = b.stats();
    assert_eq!(
        (sb.compact_rebuilt, sb.compact_fetched, sb.compact_full),
        (0, 0, 0)
    );
    assert_eq!(sb.compact_txs_fetched, 0);
    assert!(
        wait_event(&mut eb, 1, |e| matches!(e, NetEvent::NewBlock { .. }))
            .await
            .is_none(),
        "no block was rebuilt"
    );
    b.shutdown().await;
}

#[tokio::test]
async fn oversized_and_malformed_relay_messages_are_refused_and_scored() {
    let (b, _eb, _pb) = start_pool("b", true).await;
    let mut raw = raw_handshaken(&b, "raw").await;
    let ids: Vec<Hash> = (0..1001u32)
        .map(|i| Hash::sha256(&i.to_be_bytes()))
        .collect();
    raw.send(Message::GetTxs {
        request_id: 1,
        ids: ids.clone(),
    })
    .await
    .unwrap();
    match next_non_ping(&mut raw, 5).await {
        Some(Ok(Message::Error {
            request_id: Some(1),
            code,
            ..
        })) => assert_eq!(code, pp_net::codes::BAD_REQUEST),
        other => panic!("expected bad_request, got {other:?}"),
    }
    raw.send(Message::GetBlockTxs {
        request_id: 2,
        hash: Hash([1; 32]),
        indexes: vec![0],
    })
    .await
    .unwrap();
    match next_non_ping(&mut raw, 5).await {
        Some(Ok(Message::Error {
            request_id: Some(2),
            code,
            ..
        })) => assert_eq!(code, pp_net::codes::NOT_FOUND),
        other => panic!("expected not_found, got {other:?}"),
    }
    raw.send(Message::InvTxs { ids }).await.unwrap();
    let block = make_chain(1, 2).remove(0);
    let mut cb = CompactBlock::build(&block, 5, |i, _| i < 2);
    cb.prefilled.swap(0, 1);
    raw.send(Message::CompactBlock(cb)).await.unwrap();
    // 10 (get_txs) + 10 (inv_txs) + 50 (compact block out of order).
    assert!(
        eventually(5, || score_of(&b, "raw") == 70).await,
        "score {}",
        score_of(&b, "raw")
    );
    assert_eq!(
        count(&b.stats().messages_out, "get_txs"),
        0,
        "an oversized inv is not fetched"
    );
    b.shutdown().await;
}

/// A peer that was just announced some transactions by id may still be fetching them when the
/// block that holds them is announced: the compact block carries those in full (no round trip),
/// and the ones the peer already fetched from us as short ids.
#[tokio::test]
async fn a_compact_block_prefills_what_the_peer_was_announced_but_has_not_fetched() {
    let (b, _eb, _pb) = start_pool("b", true).await;
    let mut raw = raw_handshaken(&b, "raw").await;
    raw.send(Message::CompactRelay { version: 1 })
        .await
        .unwrap();
    assert!(eventually(5, || count(&b.stats().messages_in, "compact_relay") >= 1).await);
    let block = make_chain(1, 4).remove(0);
    let txs = &block.transactions;
    for tx in txs {
        b.broadcast_tx(tx, None);
    }
    // The four ids arrive in one or more `inv_txs`; the peer fetches only the first.
    let mut announced = Vec::new();
    while announced.len() < txs.len() {
        match next_non_ping(&mut raw, 5).await {
            Some(Ok(Message::InvTxs { ids })) => announced.extend(ids),
            Some(Ok(Message::CompactRelay { .. })) => {}
            other => panic!("expected inv_txs, got {other:?}"),
        }
    }
    raw.send(Message::GetTxs {
        request_id: 1,
        ids: vec![txs[0].id()],
    })
    .await
    .unwrap();
    match next_non_ping(&mut raw, 5).await {
        Some(Ok(Message::Txs { txs: got, .. })) => assert_eq!(got, vec![txs[0].clone()]),
        other => panic!("expected txs, got {other:?}"),
    }
    b.broadcast_block(&block, None);
    let cb = match next_non_ping(&mut raw, 5).await {
        Some(Ok(Message::CompactBlock(cb))) => cb,
        other => panic!("expected compact_block, got {other:?}"),
    };
    let prefilled: Vec<u32> = cb.prefilled.iter().map(|p| p.index).collect();
    assert_eq!(
        prefilled,
        vec![1, 2, 3],
        "announced, not fetched: sent in full"
    );
    assert_eq!(cb.short_ids.len(), 1, "fetched from us: a short id");
    b.shutdown().await;
}

/// A peer whose `hello` said `headers_only` (a light client, protocol versions 5 and 6) is
/// pushed no block and no transaction, only the block's signed header: of three transactions
/// and a block that a compact-relay peer and a full-fallback peer of the same node both get, it
/// is sent one `new_header` (delivered as `NetEvent::NewHeader`, the header and signature of
/// the block) and no `new_block`, `compact_block`, `new_tx` or `inv_txs`. It sends no
/// `compact_relay` either, although its configuration leaves `compact_relay` on.
#[tokio::test]
async fn a_headers_only_peer_is_announced_the_header_and_pushed_no_block_and_no_transaction() {
    let (a, _ea, _pa) = start_pool("a", true).await;
    let (b, mut eb, _pb) = start_pool("b", true).await;
    let (c, mut ec, _pc) = start_pool("c", false).await;
    let mut cfg = config("light");
    cfg.headers_only = true;
    let (l, mut el) = Network::start(cfg, TcpTransport, Arc::new(Pool::default()))
        .await
        .unwrap();
    linked(&a, &b).await;
    c.connect(&a.local_addr().to_string()).await.unwrap();
    l.connect(&a.local_addr().to_string()).await.unwrap();
    assert!(eventually(5, || a.peer_count() == 3).await);
    let block = make_chain(1, 3).remove(0);
    for tx in &block.transactions {
        a.broadcast_tx(tx, None);
    }
    a.broadcast_block(&block, None);
    for rx in [&mut eb, &mut ec] {
        match wait_event(rx, 5, |e| matches!(e, NetEvent::NewBlock { .. })).await {
            Some(NetEvent::NewBlock { block: got, .. }) => assert_eq!(got, block),
            other => panic!("no block: {other:?}"),
        }
    }
    match wait_event(&mut el, 5, |e| matches!(e, NetEvent::NewHeader { .. })).await {
        Some(NetEvent::NewHeader { header, .. }) => {
            assert_eq!(header, pp_ledger::SignedHeader::from(&block));
        }
        other => panic!("no header announced to l: {other:?}"),
    }
    // The ids went to b in an `inv_txs` (flushed every 100 ms); anything for l would have gone
    // out with it. Its frames are given time to arrive.
    assert!(eventually(5, || count(&a.stats().messages_out, "inv_txs") >= 1).await);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let sa = a.stats();
    assert_eq!(count(&sa.messages_out, "compact_block"), 1, "to b only");
    assert_eq!(count(&sa.messages_out, "new_block"), 1, "to c only");
    assert_eq!(count(&sa.messages_out, "new_tx"), 3, "to c only");
    assert_eq!(count(&sa.messages_out, "inv_txs"), 1, "to b only");
    assert_eq!(count(&sa.messages_out, "new_header"), 1, "to l only");
    let sl = l.stats();
    assert_eq!(count(&sl.messages_in, "new_header"), 1);
    for kind in [
        "new_block",
        "compact_block",
        "new_tx",
        "inv_txs",
        "compact_relay",
    ] {
        assert_eq!(count(&sl.messages_in, kind), 0, "{kind} pushed to l");
    }
    assert_eq!(count(&sl.messages_out, "compact_relay"), 0);
    for (n, stats) in [(&b, b.stats()), (&c, c.stats())] {
        assert_eq!(
            count(&stats.messages_in, "new_header"),
            0,
            "{}: a full node is not sent headers",
            n.local_addr()
        );
    }
    for n in [&a, &b, &c, &l] {
        n.shutdown().await;
    }
}

/// `new_header` goes only to nodes that said `headers_only`: a full node that is sent one
/// scores the sender `protocol_violation` (20 points), drops the header (no event, the sender's
/// tip is not recorded from it) and keeps the connection.
#[tokio::test]
async fn a_new_header_to_a_full_node_is_a_protocol_violation() {
    let (b, mut eb, _pb) = start_pool("b", true).await;
    let mut raw = raw_handshaken(&b, "raw").await;
    let block = make_chain(1, 0).remove(0);
    raw.send(Message::NewHeader(pp_ledger::SignedHeader::from(&block)))
        .await
        .unwrap();
    assert!(eventually(5, || score_of(&b, "raw") == 20).await);
    assert!(
        wait_event(&mut eb, 1, |e| matches!(e, NetEvent::NewHeader { .. }))
            .await
            .is_none(),
        "the header is dropped"
    );
    assert!(b
        .peers()
        .iter()
        .all(|p| p.tip_index != block.header.index || p.tip_hash != block.hash()));
    assert_eq!(b.peer_count(), 1, "the connection stays open");
    b.shutdown().await;
}
