//! The HTTP API of a running node: every endpoint, its JSON, and the JSON error form.
#![allow(clippy::unwrap_used)] // Tests: a failed unwrap is a failed test.

mod common;

use std::time::Duration;

use common::{single, wait_until};
use pp_ledger::{KeyPair, Transaction};
use reqwest::StatusCode;
use serde_json::{json, Value};

struct Api {
    base: String,
    client: reqwest::Client,
}

impl Api {
    async fn get(&self, path: &str) -> (StatusCode, Value) {
        let r = self
            .client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        let status = r.status();
        let text = r.text().await.unwrap();
        let v = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, v)
    }

    async fn post_raw(&self, path: &str, body: String) -> (StatusCode, Value) {
        let r = self
            .client
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = r.status();
        let text = r.text().await.unwrap();
        let v = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, v)
    }
}

fn assert_error(v: &Value, code: &str) {
    assert_eq!(v["error"]["code"], code, "{v}");
    assert!(v["error"]["message"].is_string(), "{v}");
}

async fn node(seed: u8) -> (tempfile::TempDir, KeyPair, pp_server::Server, Api) {
    let dir = tempfile::tempdir().unwrap();
    let key = KeyPair::from_seed([seed; 32]);
    let mut s = single(dir.path(), &key);
    s.start(0).await.unwrap();
    let api = Api {
        base: format!("http://{}", s.http_addr().unwrap()),
        client: reqwest::Client::new(),
    };
    (dir, key, s, api)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_health_and_metrics_describe_the_node() {
    let (_dir, key, mut s, api) = node(11).await;
    assert!(wait_until(Duration::from_secs(15), || s.height() >= 2).await);
    let (st, v) = api.get("/status").await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v["node_id"], "node0");
    assert_eq!(v["network"], "pp-devnet");
    assert_eq!(v["genesis_hash"], s.genesis().hash().to_hex());
    assert_eq!(v["public_key"], key.public().to_hex());
    assert!(v["height"].as_u64().unwrap() >= 2);
    assert_eq!(v["tip_hash"].as_str().unwrap().len(), 64);
    assert!(v["slot"].as_u64().unwrap() >= 2);
    assert_eq!(v["epoch"], 0);
    assert_eq!(v["peers"], 0);
    assert_eq!(v["p2p_enabled"], false);
    assert_eq!(v["pending_transactions"], 0);

    let (st, v) = api.get("/health").await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v["status"], "ok");

    let (st, v) = api.get("/metrics").await;
    assert_eq!(st, StatusCode::OK);
    let text = v.as_str().unwrap();
    assert!(text.contains("pp_chain_height "), "{text}");
    assert!(text.contains("pp_blocks_produced_total "), "{text}");
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocks_by_index_range_and_hash() {
    let (_dir, _key, mut s, api) = node(12).await;
    assert!(wait_until(Duration::from_secs(15), || s.height() >= 3).await);
    let (st, b1) = api.get("/blocks/1").await;
    assert_eq!(st, StatusCode::OK);
    for field in ["hash", "header", "signature", "transactions"] {
        assert!(b1.get(field).is_some(), "{field} missing in {b1}");
    }
    assert_eq!(b1["header"]["index"], 1);
    let hash = b1["hash"].as_str().unwrap().to_string();

    let (st, by_hash) = api.get(&format!("/blocks/hash/{hash}")).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(by_hash["header"], b1["header"]);
    assert_eq!(by_hash["on_best_chain"], true);

    let (st, page) = api.get("/blocks?from=0&count=3").await;
    assert_eq!(st, StatusCode::OK);
    let blocks = page["blocks"].as_array().unwrap();
    assert_eq!(blocks.len(), 3);
    assert_eq!(blocks[1]["hash"], hash.as_str());
    // count is capped at 100.
    let (_, page) = api.get("/blocks?from=0&count=100000").await;
    assert!(page["blocks"].as_array().unwrap().len() <= 100);

    let (st, v) = api.get("/blocks/999999").await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    assert_error(&v, "unknown_block");
    let (st, v) = api.get("/blocks/abc").await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert_error(&v, "bad_index");
    let (st, v) = api.get(&format!("/blocks/hash/{}", "0".repeat(64))).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    assert_error(&v, "unknown_block");
    let (st, v) = api.get("/blocks/hash/xyz").await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert_error(&v, "bad_hash");
    let (st, v) = api.get("/blocks?count=-1").await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert_error(&v, "bad_query");
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transaction_submit_answers_202_422_and_400() {
    let (_dir, key, mut s, api) = node(13).await;
    let gh = s.genesis().hash();
    let bob = KeyPair::from_seed([14u8; 32]).public();
    let tx = Transaction::transfer(&key, bob, 77, 1, 0, &gh);
    let (st, v) = api
        .post_raw("/transactions", serde_json::to_string(&tx).unwrap())
        .await;
    assert_eq!(st, StatusCode::ACCEPTED, "{v}");
    assert_eq!(v["id"], tx.id().to_hex());

    // The status is pending or (a slot later) included, then included with its block.
    let path = format!("/transactions/{}", tx.id());
    let (st, v) = api.get(&path).await;
    assert_eq!(st, StatusCode::OK);
    assert!(v["status"] == "pending" || v["status"] == "included", "{v}");
    let mut included = Value::Null;
    for _ in 0..100 {
        let (_, v) = api.get(&path).await;
        if v["status"] == "included" {
            included = v;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(included["status"], "included", "never included");
    let index = included["block"]["index"].as_u64().unwrap();
    let (_, b) = api.get(&format!("/blocks/{index}")).await;
    assert_eq!(b["hash"], included["block"]["hash"]);
    assert!(b["transactions"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["amount"] == 77));

    // The same nonce again: 422 naming the rule.
    let replay = Transaction::transfer(&key, bob, 5, 1, 0, &gh);
    let (st, v) = api
        .post_raw("/transactions", serde_json::to_string(&replay).unwrap())
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    assert_error(&v, "bad_nonce");
    // A broken signature.
    let mut forged = Transaction::transfer(&key, bob, 5, 1, 1, &gh);
    forged.body.amount = 6;
    let (st, v) = api
        .post_raw("/transactions", serde_json::to_string(&forged).unwrap())
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    assert_error(&v, "bad_signature");
    // More than the balance.
    let broke = KeyPair::from_seed([15u8; 32]);
    let poor = Transaction::transfer(&broke, bob, 5, 1, 0, &gh);
    let (st, v) = api
        .post_raw("/transactions", serde_json::to_string(&poor).unwrap())
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    assert_error(&v, "insufficient_balance");
    // Not JSON, and JSON that is not a transaction.
    let (st, v) = api.post_raw("/transactions", "{not json".into()).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert_error(&v, "malformed_json");
    let (st, v) = api
        .post_raw("/transactions", json!({"type": "transfer"}).to_string())
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert_error(&v, "malformed_json");
    // Too large a body.
    let (st, v) = api.post_raw("/transactions", "x".repeat(300 * 1024)).await;
    assert_eq!(st, StatusCode::PAYLOAD_TOO_LARGE);
    assert_error(&v, "body_too_large");

    let (st, v) = api.get(&format!("/transactions/{}", "ab".repeat(32))).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    assert_error(&v, "unknown_transaction");
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_show_balances_and_unknown_is_a_json_404() {
    let (_dir, key, mut s, api) = node(16).await;
    let (st, v) = api.get(&format!("/accounts/{}", key.public())).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v["account"], key.public().to_hex());
    assert!(v["balance"].as_u64().unwrap() >= 1_000_000_000);
    assert_eq!(v["nonce"], 0);
    assert_eq!(v["stake"], 1_000);
    assert_eq!(v["pending_nonce"], 0);

    let nobody = KeyPair::from_seed([17u8; 32]).public();
    let (st, v) = api.get(&format!("/accounts/{nobody}")).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    assert_error(&v, "unknown_account");
    let (st, v) = api.get("/accounts/nothex").await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert_error(&v, "bad_account");
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_routes_and_methods_get_json_errors() {
    let (_dir, _key, mut s, api) = node(18).await;
    let (st, v) = api.get("/nope").await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    assert_error(&v, "not_found");
    let (st, v) = api.post_raw("/status", "{}".into()).await;
    assert_eq!(st, StatusCode::METHOD_NOT_ALLOWED);
    assert_error(&v, "method_not_allowed");
    // Peers: empty list; adding one needs P2P.
    let (st, v) = api.get("/peers").await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v["peers"], json!([]));
    let (st, v) = api
        .post_raw("/peers", json!({"addr": "127.0.0.1:1"}).to_string())
        .await;
    assert_eq!(st, StatusCode::CONFLICT);
    assert_error(&v, "p2p_disabled");
    let (st, v) = api.post_raw("/peers", "[]".into()).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert_error(&v, "malformed_json");
    s.shutdown().await;
}
