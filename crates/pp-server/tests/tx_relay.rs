//! Relay that saves bandwidth, between real in-process nodes on loopback (docs/protocol.md
//! §14): transactions travel by inventory (`inv_txs`, then `get_txs` for what a node lacks),
//! never as a body to a node that already holds it.
#![allow(clippy::unwrap_used)] // Tests: a failed unwrap is a failed test.

mod common;

use std::time::Duration;

use common::{now_ms, wait_until};
use pp_ledger::{KeyPair, PublicKey, Transaction};
use pp_server::{NetworkConfig, Server};

const LIMIT: Duration = Duration::from_secs(30);

/// `pp_p2p_messages_total{direction, type}` of a node, from its metrics.
fn messages(n: &Server, direction: &str, kind: &str) -> u64 {
    let key = format!("pp_p2p_messages_total{{direction=\"{direction}\",type=\"{kind}\"}} ");
    n.metrics_text()
        .lines()
        .find_map(|l| l.strip_prefix(&key))
        .map_or(0, |v| v.trim().parse().unwrap())
}

/// `pp_p2p_compact_blocks_total{outcome}` of a node, from its metrics.
fn compact_blocks(n: &Server, outcome: &str) -> u64 {
    let key = format!("pp_p2p_compact_blocks_total{{outcome=\"{outcome}\"}} ");
    n.metrics_text()
        .lines()
        .find_map(|l| l.strip_prefix(&key))
        .map(|v| v.trim().parse().unwrap())
        .unwrap_or_else(|| panic!("no {key}in the metrics"))
}

/// A node of the network of `genesis_of`, with P2P, dialing `peers`.
async fn joiner(dir: &std::path::Path, genesis_of: &Server, name: &str, peers: &[&str]) -> Server {
    let mut n = Server::new(1);
    n.set_data_dir(dir);
    n.set_genesis(genesis_of.genesis());
    n.start_with_network(0, NetworkConfig::p2p(name, 0).with_bootstrap(peers))
        .await
        .unwrap();
    n
}

/// Three nodes in a triangle; nobody produces (genesis is in the future), so the transaction
/// stays pending and travels only by relay.
async fn triangle(dirs: &[tempfile::TempDir; 3], key: &KeyPair) -> [Server; 3] {
    let mut n1 = common::single(dirs[0].path(), key);
    n1.set_genesis_time(now_ms() + 600_000);
    n1.start_with_network(0, NetworkConfig::p2p("node1", 0))
        .await
        .unwrap();
    let a1 = n1.p2p_addr().unwrap().to_string();
    let n2 = joiner(dirs[1].path(), &n1, "node2", &[&a1]).await;
    let a2 = n2.p2p_addr().unwrap().to_string();
    let n3 = joiner(dirs[2].path(), &n1, "node3", &[&a1, &a2]).await;
    let nodes = [n1, n2, n3];
    assert!(
        wait_until(LIMIT, || nodes.iter().all(|n| n.peer_count() == 2)).await,
        "peers {:?}",
        nodes.iter().map(Server::peer_count).collect::<Vec<_>>()
    );
    // Each connection asked for inventory relay both ways.
    assert!(
        wait_until(LIMIT, || nodes.iter().all(|n| messages(
            n,
            "in",
            "compact_relay"
        ) == 2))
        .await
    );
    nodes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_travels_by_inventory_and_no_node_receives_a_body_it_holds() {
    let dirs = [(); 3].map(|_| tempfile::tempdir().unwrap());
    let key = KeyPair::from_seed([41u8; 32]);
    let [n1, n2, n3] = triangle(&dirs, &key).await;

    let gh = n1.genesis().hash();
    let tx = Transaction::transfer(&key, PublicKey([9; 32]), 77, 2, 0, &gh);
    n1.submit_transaction(tx).unwrap();
    assert!(
        wait_until(LIMIT, || n2.pending_transaction_count() == 1
            && n3.pending_transaction_count() == 1)
        .await,
        "pending {} {}",
        n2.pending_transaction_count(),
        n3.pending_transaction_count()
    );
    // node2 and node3 each relay what they admitted; at least one of them announces it to the
    // other, which already holds it (or is fetching it): that announcement must not be fetched.
    let invs = || messages(&n2, "in", "inv_txs") + messages(&n3, "in", "inv_txs");
    assert!(
        wait_until(LIMIT, || invs() >= 3).await,
        "inv_txs {}",
        invs()
    );

    for n in [&n1, &n2, &n3] {
        assert_eq!(
            messages(n, "in", "new_tx"),
            0,
            "no transaction is pushed in full"
        );
        assert_eq!(messages(n, "out", "new_tx"), 0);
    }
    assert!(messages(&n1, "out", "inv_txs") >= 1);
    // Each body crossed the network exactly once per node that lacked it.
    assert_eq!(messages(&n2, "in", "txs"), 1);
    assert_eq!(messages(&n3, "in", "txs"), 1);
    assert_eq!(
        messages(&n2, "out", "get_txs") + messages(&n3, "out", "get_txs"),
        2
    );
    // The origin is never asked back for what it announced, nor sent it.
    assert_eq!(messages(&n1, "in", "txs"), 0);
    assert_eq!(messages(&n1, "out", "get_txs"), 0);

    for mut n in [n3, n2, n1] {
        n.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocks_arrive_compact_and_are_rebuilt_from_the_mempool_without_a_round_trip() {
    let d1 = tempfile::tempdir().unwrap();
    let d2 = tempfile::tempdir().unwrap();
    let key = KeyPair::from_seed([43u8; 32]);
    let mut n1 = common::single(d1.path(), &key);
    n1.start_with_network(0, NetworkConfig::p2p("node1", 0))
        .await
        .unwrap();
    let a1 = n1.p2p_addr().unwrap().to_string();
    let mut n2 = joiner(d2.path(), &n1, "node2", &[&a1]).await;
    assert!(
        wait_until(LIMIT, || n2.height() >= 2).await,
        "node2 at {}",
        n2.height()
    );

    // Every transaction enters at node2 (which produces nothing) and reaches the producer by
    // inventory: node2 holds each transaction of every block it is then announced.
    let gh = n1.genesis().hash();
    let carol = PublicKey([7; 32]);
    for nonce in 0..20 {
        let tx = Transaction::transfer(&key, carol, 10, 2, nonce, &gh);
        n2.submit_transaction(tx).unwrap();
    }
    assert!(
        wait_until(LIMIT, || n1.balance(&carol).ok() == Some(200)
            && n2.balance(&carol).ok() == Some(200))
        .await,
        "carol {:?} {:?}",
        n1.balance(&carol),
        n2.balance(&carol)
    );
    assert!(messages(&n2, "in", "compact_block") >= 1);
    assert_eq!(messages(&n2, "in", "new_block"), 0, "no block in full");
    assert_eq!(
        messages(&n2, "out", "get_block_txs"),
        0,
        "nothing was missing"
    );
    assert_eq!(messages(&n1, "in", "get_block_txs"), 0);
    // Every compact block node2 received was rebuilt without a round trip, and /metrics says so.
    let rebuilt = compact_blocks(&n2, "rebuilt");
    assert!(
        rebuilt >= 1,
        "pp_p2p_compact_blocks_total{{outcome=\"rebuilt\"}} {rebuilt}"
    );
    assert!(rebuilt <= messages(&n2, "in", "compact_block"));
    for outcome in ["fetched", "full", "failed"] {
        assert_eq!(compact_blocks(&n2, outcome), 0, "{outcome}");
    }
    assert_eq!(messages(&n1, "in", "txs"), messages(&n1, "out", "get_txs"));
    assert_eq!(
        messages(&n2, "in", "get_txs"),
        messages(&n1, "out", "get_txs")
    );

    n2.shutdown().await;
    n1.shutdown().await;
}
