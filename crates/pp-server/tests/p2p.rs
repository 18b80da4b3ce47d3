//! Several in-process nodes on loopback P2P: block propagation, sync of a joining node,
//! transaction gossip, and restart + catch-up.
#![allow(clippy::unwrap_used)] // Tests: a failed unwrap is a failed test.

mod common;

use std::time::Duration;

use common::{now_ms, wait_until, SLOT};
use pp_ledger::{KeyPair, Transaction};
use pp_server::{dev_key, NetworkConfig, Server};

const LIMIT: Duration = Duration::from_secs(30);

/// A node of a two-stakeholder network ("node1", "node2") built from registrations.
fn member(dir: &std::path::Path, genesis_time: u64) -> Server {
    let mut s = Server::new(1);
    s.set_data_dir(dir);
    s.set_slot_duration(SLOT);
    s.set_genesis_time(genesis_time);
    s.register_stakeholder("node1", 100).unwrap();
    s.register_stakeholder("node2", 100).unwrap();
    s
}

/// True if both nodes hold the same block at `index`.
fn agree_at(a: &Server, b: &Server, index: u64) -> bool {
    match (a.block_at(index), b.block_at(index)) {
        (Some(x), Some(y)) => x.hash() == y.hash(),
        _ => false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_stakeholder_nodes_connect_produce_and_agree() {
    let d1 = tempfile::tempdir().unwrap();
    let d2 = tempfile::tempdir().unwrap();
    let t = now_ms();
    let mut n1 = member(d1.path(), t);
    n1.start_with_network(0, NetworkConfig::p2p("node1", 0))
        .await
        .unwrap();
    let p2p1 = n1.p2p_addr().unwrap().to_string();
    let mut n2 = member(d2.path(), t);
    n2.start_with_network(0, NetworkConfig::p2p("node2", 0).with_bootstrap(&[&p2p1]))
        .await
        .unwrap();
    assert_eq!(n1.genesis().hash(), n2.genesis().hash());
    assert_eq!(n1.public_key(), dev_key("node1").public());
    assert_eq!(n2.public_key(), dev_key("node2").public());
    assert!(wait_until(LIMIT, || n1.peer_count() == 1 && n2.peer_count() == 1).await);
    assert_eq!(n2.connected_peers(), vec!["node1".to_string()]);
    assert!(n1.is_p2p_enabled());

    // Both produce (each leads about half of the slots) and both see every block.
    assert!(
        wait_until(LIMIT, || n1.height() >= 8 && n2.height() >= 8).await,
        "heights {} {}",
        n1.height(),
        n2.height()
    );
    assert!(wait_until(LIMIT, || agree_at(&n1, &n2, 6)).await);
    let producers: std::collections::BTreeSet<_> = (1..=6)
        .filter_map(|i| n1.block_at(i))
        .map(|b| b.header.producer)
        .collect();
    assert_eq!(producers.len(), 2, "both stakeholders should have produced");

    // A transfer submitted to node1 is relayed, included, and visible on both.
    let gh = n1.genesis().hash();
    let carol = KeyPair::from_seed([31u8; 32]).public();
    let tx = Transaction::transfer(&dev_key("node1"), carol, 4242, 2, 0, &gh);
    n1.submit_transaction(tx).unwrap();
    assert!(
        wait_until(LIMIT, || n1.balance(&carol).ok() == Some(4242)
            && n2.balance(&carol).ok() == Some(4242))
        .await,
        "carol on node1 {:?}, node2 {:?}",
        n1.balance(&carol),
        n2.balance(&carol)
    );
    // A transaction submitted to node2 reaches node1's mempool or chain too.
    let tx2 = Transaction::transfer(&dev_key("node2"), carol, 8, 2, 0, &gh);
    n2.submit_transaction(tx2).unwrap();
    assert!(wait_until(LIMIT, || n1.balance(&carol).ok() == Some(4250)).await);

    n2.shutdown().await;
    n1.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joining_node_with_empty_data_dir_syncs_the_chain_then_follows() {
    let d1 = tempfile::tempdir().unwrap();
    let d3 = tempfile::tempdir().unwrap();
    // A single-producer network; let it build some blocks first.
    let key = KeyPair::from_seed([32u8; 32]);
    let mut n1 = common::single(d1.path(), &key);
    n1.start_with_network(0, NetworkConfig::p2p("node1", 0))
        .await
        .unwrap();
    assert!(wait_until(LIMIT, || n1.height() >= 10).await);
    let p2p1 = n1.p2p_addr().unwrap().to_string();

    let mut n3 = Server::new(1);
    n3.set_data_dir(d3.path());
    n3.set_genesis(n1.genesis());
    // A small batch so the sync takes several get_blocks rounds.
    let mut cfg = n3.config().clone();
    cfg.sync_batch = 3;
    let mut n3 = Server::with_config(cfg);
    n3.start_with_network(0, NetworkConfig::p2p("joiner", 0))
        .await
        .unwrap();
    assert_eq!(n3.height(), 0);
    n3.connect_to_peer(&p2p1).await.unwrap();
    let target = n1.height();
    assert!(
        wait_until(LIMIT, || n3.height() >= target).await,
        "joiner at {} of {target}",
        n3.height()
    );
    assert!(agree_at(&n1, &n3, target));
    // Then it follows new blocks as they are announced.
    let later = target + 3;
    assert!(wait_until(LIMIT, || n3.height() >= later).await);
    assert!(wait_until(LIMIT, || agree_at(&n1, &n3, later)).await);
    // It is not a stakeholder: it produced nothing.
    assert!((1..=later).all(|i| n3.block_at(i).unwrap().header.producer == key.public()));

    n3.shutdown().await;
    n1.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarted_node_keeps_its_blocks_and_catches_up() {
    let d1 = tempfile::tempdir().unwrap();
    let d2 = tempfile::tempdir().unwrap();
    let key = KeyPair::from_seed([33u8; 32]);
    let mut n1 = common::single(d1.path(), &key);
    n1.start_with_network(0, NetworkConfig::p2p("node1", 0))
        .await
        .unwrap();
    let p2p1 = n1.p2p_addr().unwrap().to_string();
    let g = n1.genesis();

    let follower = |dir: &std::path::Path| {
        let mut s = Server::new(1);
        s.set_data_dir(dir);
        s.set_genesis(g.clone());
        s
    };
    let mut n2 = follower(d2.path());
    n2.start_with_network(0, NetworkConfig::p2p("node2", 0).with_bootstrap(&[&p2p1]))
        .await
        .unwrap();
    assert!(wait_until(LIMIT, || n2.height() >= 5).await);
    n2.shutdown().await;
    let had = n2.height();
    drop(n2);

    // While node2 is down, node1 goes on.
    assert!(wait_until(LIMIT, || n1.height() >= had + 3).await);
    let mut n2 = follower(d2.path());
    n2.start_with_network(0, NetworkConfig::p2p("node2", 0).with_bootstrap(&[&p2p1]))
        .await
        .unwrap();
    assert!(
        n2.height() >= had,
        "restart lost blocks: {} < {had}",
        n2.height()
    );
    let target = n1.height();
    assert!(wait_until(LIMIT, || n2.height() >= target).await);
    assert!(agree_at(&n1, &n2, target));
    n2.shutdown().await;
    n1.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitioned_forks_converge_and_rolled_back_transactions_are_included() {
    let d1 = tempfile::tempdir().unwrap();
    let d2 = tempfile::tempdir().unwrap();
    let t = now_ms();
    // Two stakeholders, not connected: each builds its own fork from its own slots.
    let mut n1 = member(d1.path(), t);
    n1.start_with_network(0, NetworkConfig::p2p("node1", 0))
        .await
        .unwrap();
    let mut n2 = member(d2.path(), t);
    n2.start_with_network(0, NetworkConfig::p2p("node2", 0))
        .await
        .unwrap();
    let gh = n1.genesis().hash();
    let carol = KeyPair::from_seed([34u8; 32]).public();
    n1.submit_transaction(Transaction::transfer(
        &dev_key("node1"),
        carol,
        100,
        1,
        0,
        &gh,
    ))
    .unwrap();
    n2.submit_transaction(Transaction::transfer(
        &dev_key("node2"),
        carol,
        10,
        1,
        0,
        &gh,
    ))
    .unwrap();
    assert!(
        wait_until(LIMIT, || n1.balance(&carol).ok() == Some(100)
            && n2.balance(&carol).ok() == Some(10)
            && n1.height() >= 3
            && n2.height() >= 3)
        .await,
        "each fork includes its own transfer"
    );
    assert!(
        !agree_at(&n1, &n2, 1) || !agree_at(&n1, &n2, 2),
        "forks differ"
    );

    // Heal the partition: the shorter fork switches to the longer one, and the transfer that was
    // only on the losing fork goes back to the mempool and into the winning chain.
    n2.connect_to_peer(&n1.p2p_addr().unwrap().to_string())
        .await
        .unwrap();
    assert!(
        wait_until(LIMIT, || n1.balance(&carol).ok() == Some(110)
            && n2.balance(&carol).ok() == Some(110))
        .await,
        "carol on node1 {:?}, node2 {:?}",
        n1.balance(&carol),
        n2.balance(&carol)
    );
    let h = n1.height().min(n2.height()).saturating_sub(1);
    assert!(wait_until(LIMIT, || agree_at(&n1, &n2, h)).await);
    let reorgs = |s: &Server| {
        s.metrics_text()
            .lines()
            .find_map(|l| l.strip_prefix("pp_reorgs_total ").map(str::to_string))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    assert!(reorgs(&n1) + reorgs(&n2) >= 1, "one side switched forks");
    n2.shutdown().await;
    n1.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_peers_connects_two_nodes_over_http() {
    let d1 = tempfile::tempdir().unwrap();
    let d2 = tempfile::tempdir().unwrap();
    let key = KeyPair::from_seed([35u8; 32]);
    let mut n1 = common::single(d1.path(), &key);
    n1.start_with_network(0, NetworkConfig::p2p("node1", 0))
        .await
        .unwrap();
    let mut n2 = Server::new(1);
    n2.set_data_dir(d2.path());
    n2.set_genesis(n1.genesis());
    n2.start_with_network(0, NetworkConfig::p2p("node2", 0))
        .await
        .unwrap();
    let url = format!("http://{}/peers", n2.http_addr().unwrap());
    let client = reqwest::Client::new();
    let token = std::fs::read_to_string(n2.admin_token_path().unwrap()).unwrap();
    let res = client
        .post(&url)
        .bearer_auth(token.trim())
        .header("content-type", "application/json")
        .body(format!("{{\"addr\":\"{}\"}}", n1.p2p_addr().unwrap()))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), reqwest::StatusCode::OK);
    let v: serde_json::Value = res.json().await.unwrap();
    assert_eq!(v["peer"]["node_id"], "node1");
    let v: serde_json::Value = client.get(&url).send().await.unwrap().json().await.unwrap();
    assert_eq!(v["peers"][0]["node_id"], "node1");
    assert!(wait_until(LIMIT, || n2.height() >= 2 && agree_at(&n1, &n2, 2)).await);
    // A node of another network is refused with a clear error.
    let d3 = tempfile::tempdir().unwrap();
    let mut other = common::single(d3.path(), &KeyPair::from_seed([36u8; 32]));
    other
        .start_with_network(0, NetworkConfig::p2p("stranger", 0))
        .await
        .unwrap();
    let res = client
        .post(&url)
        .bearer_auth(token.trim())
        .header("content-type", "application/json")
        .body(format!("{{\"addr\":\"{}\"}}", other.p2p_addr().unwrap()))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), reqwest::StatusCode::BAD_GATEWAY);
    let v: serde_json::Value = res.json().await.unwrap();
    assert_eq!(v["error"]["code"], "connect_failed", "{v}");
    other.shutdown().await;
    n2.shutdown().await;
    n1.shutdown().await;
}
