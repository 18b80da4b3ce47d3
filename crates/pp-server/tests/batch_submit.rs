//! `POST /transactions` with a JSON array: one result per transaction, in order, all accepted
//! ones durable before the answer.
#![allow(clippy::unwrap_used)] // Tests: a failed unwrap is a failed test.

mod common;

use std::time::Duration;

use common::{single, wait_until};
use pp_ledger::{KeyPair, Transaction};
use serde_json::{json, Value};

async fn post(base: &str, body: String) -> (u16, Value) {
    let res = reqwest::Client::new()
        .post(format!("{base}/transactions"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_batch_answers_each_transaction_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let key = KeyPair::from_seed([91u8; 32]);
    let mut s = single(dir.path(), &key);
    s.start(0).await.unwrap();
    let base = format!("http://{}", s.http_addr().unwrap());
    let gh = s.genesis().hash();
    let to = KeyPair::from_seed([92u8; 32]).public();
    let tx = |nonce, fee| Transaction::transfer(&key, to, 3, fee, nonce, &gh);
    let (t0, t1, gap, cheap) = (tx(0, 1), tx(1, 1), tx(5, 1), tx(2, 0));
    let batch = json!([t0, t1, {"type": "transfer"}, gap, cheap, t1]);
    let (status, v) = post(&base, batch.to_string()).await;
    assert_eq!(status, 200, "{v}");
    let r = v.as_array().unwrap();
    assert_eq!(r.len(), 6);
    assert_eq!(r[0], json!({"status": "accepted", "id": t0.id()}));
    assert_eq!(r[1], json!({"status": "accepted", "id": t1.id()}));
    assert_eq!(r[2]["status"], "rejected");
    assert_eq!(r[2]["error"]["code"], "malformed_transaction");
    assert_eq!(r[3]["error"]["code"], "bad_nonce", "{}", r[3]);
    assert_eq!(r[3]["id"], json!(gap.id()));
    assert_eq!(r[4]["error"]["code"], "fee_below_minimum", "{}", r[4]);
    // The same transaction again in one batch is accepted once, answered twice.
    assert_eq!(r[5], json!({"status": "accepted", "id": t1.id()}));
    // Both accepted ones are known (pending or already included).
    for id in [t0.id(), t1.id()] {
        let v: Value = reqwest::get(format!("{base}/transactions/{id}"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(v["status"] == "pending" || v["status"] == "included", "{v}");
    }
    assert!(
        wait_until(Duration::from_secs(20), || s.next_nonce(&key.public()).ok()
            == Some(2))
        .await
    );

    // Bounds: an empty batch and one over the cap are refused whole.
    let (status, v) = post(&base, "[]".into()).await;
    assert_eq!(
        (status, &v["error"]["code"]),
        (400, &json!("bad_batch_size"))
    );
    let many = format!("[{}]", vec!["{}"; pp_server::MAX_BATCH_TXS + 1].join(","));
    let (status, v) = post(&base, many).await;
    assert_eq!(
        (status, &v["error"]["code"]),
        (400, &json!("bad_batch_size"))
    );
    let (status, v) = post(&base, "[1, 2".into()).await;
    assert_eq!(
        (status, &v["error"]["code"]),
        (400, &json!("malformed_json"))
    );
    s.shutdown().await;
}
