//! Each admitted transaction's signature is verified once: admitting N transfers over HTTP and
//! including them in blocks performs N transaction signature verifications (plus one per block,
//! for the producer's signature), not 2N (the block reuses the
//! mempool's checks through the shared signature cache). Read from `/metrics`, as an operator
//! would read the ratio under load.
#![allow(clippy::unwrap_used)] // Tests: a failed unwrap is a failed test.

mod common;

use std::time::Duration;

use common::wait_until;
use pp_ledger::{KeyPair, Transaction};

fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admitted_then_included_transactions_are_verified_once() {
    const N: u64 = 40;
    let dir = tempfile::tempdir().unwrap();
    let key = KeyPair::from_seed([91u8; 32]);
    let mut s = common::single(dir.path(), &key);
    s.start(0).await.unwrap();
    let gh = s.genesis().hash();
    let to = KeyPair::from_seed([92u8; 32]).public();
    let txs: Vec<Transaction> = (0..N)
        .map(|n| Transaction::transfer(&key, to, 1, 1, n, &gh))
        .collect();
    let url = format!("http://{}/transactions", s.http_addr().unwrap());
    let res = reqwest::Client::new()
        .post(&url)
        .json(&txs)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let results: serde_json::Value = res.json().await.unwrap();
    assert!(
        results
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["status"] == "accepted"),
        "{results}"
    );
    // The node's own blocks include them all.
    assert!(
        wait_until(Duration::from_secs(30), || s
            .with_chain(|c| c.state().nonce(&key.public()))
            == Some(N))
        .await
    );
    let m = s.metrics_text();
    assert_eq!(metric(&m, "pp_transactions_admitted_total"), N, "{m}");
    // One verification per transaction, plus one per block for its producer's signature.
    let blocks = metric(&m, "pp_chain_height");
    assert!(blocks >= 1, "{m}");
    assert_eq!(
        metric(&m, "pp_signature_verifications_total"),
        N + blocks,
        "{m}"
    );
    s.shutdown().await;
}
