//! A raw pp-net peer that sends an invalid block and a forged transaction: the server refuses
//! both, counts them, penalises the peer, and keeps its own chain.
#![allow(clippy::unwrap_used)] // Tests: a failed unwrap is a failed test.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{wait_until, Empty};
use pp_ledger::{Block, Hash, KeyPair, Transaction};
use pp_net::{NetConfig, NetEvent, Network, TcpTransport};
use pp_server::{NetworkConfig, Server};

/// The value of the metric `name`, summed over its label sets (0 if absent).
fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .filter_map(|l| {
            let rest = l.strip_prefix(name)?;
            let value = match rest.strip_prefix('{') {
                Some(labelled) => labelled.split_once("} ")?.1,
                None => rest.strip_prefix(' ')?,
            };
            value.trim().parse::<u64>().ok()
        })
        .sum()
}

/// An honest single-node devnet with P2P (key from `seed`, data in `dir`), and "mallory", a raw
/// pp-net peer connected to it.
async fn honest_node_and_mallory(
    dir: &std::path::Path,
    seed: u8,
) -> (
    Server,
    KeyPair,
    Network<TcpTransport>,
    tokio::sync::mpsc::Receiver<NetEvent>,
) {
    let key = KeyPair::from_seed([seed; 32]);
    let mut s = common::single(dir, &key);
    s.start_with_network(0, NetworkConfig::p2p("honest", 0))
        .await
        .unwrap();
    let cfg = NetConfig::new("mallory", s.genesis().hash(), "127.0.0.1:0");
    let (mallory, events) = Network::start(cfg, TcpTransport, Arc::new(Empty))
        .await
        .unwrap();
    let info = mallory
        .connect(&s.p2p_addr().unwrap().to_string())
        .await
        .unwrap();
    assert_eq!(info.node_id, "honest");
    assert!(wait_until(Duration::from_secs(10), || s.peer_count() == 1).await);
    (s, key, mallory, events)
}

/// Waits (at most 10 s) until the node has rejected `n` blocks.
async fn rejected_blocks_reach(s: &Server, n: u64) -> bool {
    wait_until(Duration::from_secs(10), || {
        metric(&s.metrics_text(), "pp_blocks_rejected_total") == n
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejects_block_from_non_leader_and_penalizes_the_sender() {
    let dir = tempfile::tempdir().unwrap();
    let (mut s, key, mallory, _events) = honest_node_and_mallory(dir.path(), 41).await;
    let g = s.genesis();
    let gh = g.hash();

    // A well-formed block at slot 1, but mallory is not the slot leader.
    let evil = KeyPair::from_seed([42u8; 32]);
    let bad = Block::produce(
        &g.block().header,
        1,
        g.genesis_time + 1,
        g.difficulty,
        vec![],
        Hash::ZERO,
        &evil,
        &gh,
        1 << 20,
    )
    .unwrap();
    mallory.broadcast_block(&bad, None);
    assert!(rejected_blocks_reach(&s, 1).await);
    // A transaction whose signature does not verify.
    let mut forged = Transaction::transfer(&key, evil.public(), 1, 1, 0, &gh);
    forged.body.amount = 1_000;
    mallory.broadcast_tx(&forged, None);
    assert!(
        wait_until(Duration::from_secs(10), || metric(
            &s.metrics_text(),
            "pp_txs_rejected_total"
        ) == 1)
        .await
    );
    assert_eq!(s.pending_transaction_count(), 0);

    // The penalties show in the peer table: 10 for a block another fork's leader could have
    // made (`rejected_block`), 10 for a transaction whose signature does not verify.
    let api = format!("http://{}/peers", s.http_addr().unwrap());
    let peers: serde_json::Value = reqwest::get(&api).await.unwrap().json().await.unwrap();
    let p = &peers["peers"][0];
    assert_eq!(p["node_id"], "mallory");
    assert_eq!(p["score"], 20, "{peers}");
    assert_eq!(p["key"], mallory.identity().to_hex());
    // The honest chain goes on without the bad block.
    let bad_hash = bad.hash();
    assert!(wait_until(Duration::from_secs(10), || s.height() >= 2).await);
    assert_ne!(s.block_at(1).unwrap().hash(), bad_hash);
    assert_eq!(s.block_at(1).unwrap().header.producer, key.public());

    mallory.shutdown().await;
    s.shutdown().await;
}

/// Blocks that are invalid on every chain (over the size limit, a wrong transaction root) and
/// whose parent is unknown are refused before anything is fetched for them, and their sender
/// is penalised (50 each): two get it banned and disconnected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_blocks_with_unknown_parents_are_penalised_until_a_ban() {
    let dir = tempfile::tempdir().unwrap();
    let (mut s, key, mallory, mut events) = honest_node_and_mallory(dir.path(), 43).await;
    let g = s.genesis();
    let gh = g.hash();

    let evil = KeyPair::from_seed([44u8; 32]);
    let mut orphan_parent = g.block().header.clone();
    orphan_parent.index = 7;
    orphan_parent.slot = 7;
    orphan_parent.prev_hash = Hash([9; 32]);
    // Over the transaction-count limit (frame ~1.7 MB, under the 8 MiB frame limit).
    let txs: Vec<Transaction> = (0..u64::from(g.max_block_txs) + 1)
        .map(|n| Transaction::transfer(&evil, key.public(), 1, 1, n, &gh))
        .collect();
    let oversized = Block::produce(
        &orphan_parent,
        8,
        g.genesis_time + 8,
        g.difficulty,
        txs,
        Hash::ZERO,
        &evil,
        &gh,
        1 << 20,
    )
    .unwrap();
    mallory.broadcast_block(&oversized, None);
    assert!(rejected_blocks_reach(&s, 1).await);
    // A wrong transaction root.
    let mut bad_root = Block::produce(
        &orphan_parent,
        9,
        g.genesis_time + 9,
        g.difficulty,
        vec![],
        Hash::ZERO,
        &evil,
        &gh,
        1 << 20,
    )
    .unwrap();
    bad_root.header.tx_root = Hash([1; 32]);
    bad_root.header.mine(1 << 20).unwrap();
    bad_root.sign(&evil, &gh);
    mallory.broadcast_block(&bad_root, None);
    let disconnected = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(ev) = events.recv().await {
            if let NetEvent::PeerDisconnected { reason, .. } = ev {
                return reason;
            }
        }
        String::new()
    })
    .await
    .unwrap();
    assert!(disconnected.contains("banned"), "{disconnected}");
    let text = s.metrics_text();
    assert_eq!(metric(&text, "pp_blocks_rejected_total"), 2);
    for reason in ["too_many_txs", "bad_tx_root"] {
        assert!(
            text.contains(&format!(
                "pp_blocks_rejected_total{{reason=\"{reason}\"}} 1"
            )),
            "{text}"
        );
    }
    assert!(
        text.contains("pp_p2p_bans_total{reason=\"invalid_block\"}"),
        "{text}"
    );
    let api = format!("http://{}/bans", s.http_addr().unwrap());
    let bans: serde_json::Value = reqwest::get(&api).await.unwrap().json().await.unwrap();
    let targets: Vec<&str> = bans["bans"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|b| b["target"].as_str())
        .collect();
    assert!(
        targets.contains(&mallory.identity().to_hex().as_str()),
        "{bans}"
    );
    assert!(
        wait_until(Duration::from_secs(10), || s.height() >= 2).await,
        "the node keeps producing"
    );
    mallory.shutdown().await;
    s.shutdown().await;
}
