//! The HTTP API of a running node: every endpoint, its JSON, and the JSON error form.
#![allow(clippy::unwrap_used)] // Tests: a failed unwrap is a failed test.

mod common;

use std::time::{Duration, Instant};

use common::{single, wait_until};
use pp_ledger::{KeyPair, Transaction};
use pp_server::{NetworkConfig, HEADER_READ_TIMEOUT, MAX_HTTP_CONNECTIONS};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

struct Api {
    base: String,
    client: reqwest::Client,
}

async fn answer(r: reqwest::Response) -> (StatusCode, Value) {
    let status = r.status();
    let text = r.text().await.unwrap();
    let v = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, v)
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

    /// POST `body` with the given headers (no content type unless given).
    async fn post_with(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> reqwest::Response {
        let mut req = self.client.post(format!("{}{path}", self.base));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.body(body.to_string()).send().await.unwrap()
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
    node_with(seed, NetworkConfig::default()).await
}

async fn node_with(
    seed: u8,
    net: NetworkConfig,
) -> (tempfile::TempDir, KeyPair, pp_server::Server, Api) {
    let dir = tempfile::tempdir().unwrap();
    let key = KeyPair::from_seed([seed; 32]);
    let mut s = single(dir.path(), &key);
    s.start_with_network(0, net).await.unwrap();
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
    assert_eq!(
        (v["outbound"].as_u64(), v["inbound"].as_u64()),
        (Some(0), Some(0))
    );
    assert_eq!(v["p2p_enabled"], false);
    assert_eq!(v["pending_transactions"], 0);
    let (st, v) = api.get("/peers/known").await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(
        v,
        serde_json::json!({"new": 0, "tried": 0, "groups": 0, "collisions": 0})
    );

    // Readiness: a lone producing node with a young tip is ready.
    let (st, v) = api.get("/health").await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["status"], "ready");
    assert_eq!(v["syncing"], false);
    assert!(v["tip_age_ms"].as_u64().unwrap() <= v["max_tip_age_ms"].as_u64().unwrap());
    // Liveness.
    let (st, v) = api.get("/health?live").await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v["status"], "ok");
    let (_, v) = api.get("/status").await;
    assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));
    assert!(v["uptime_s"].is_u64() && v["tip_age_ms"].is_u64(), "{v}");
    assert_eq!(v["syncing"], false);
    assert_eq!(v["best_peer_height"], Value::Null);

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
    let auth = format!("Bearer {}", s.admin_token().unwrap());
    let json_ct = ("content-type", "application/json");
    let (st, v) = answer(
        api.post_with(
            "/peers",
            &[json_ct, ("authorization", &auth)],
            &json!({"addr": "127.0.0.1:1"}).to_string(),
        )
        .await,
    )
    .await;
    assert_eq!(st, StatusCode::CONFLICT);
    assert_error(&v, "p2p_disabled");
    let (st, v) = answer(
        api.post_with("/peers", &[json_ct, ("authorization", &auth)], "[]")
            .await,
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert_error(&v, "malformed_json");
    s.shutdown().await;
}

/// A loopback listener that records every connection made to it (standing in for a peer the
/// node must not dial).
async fn recording_listener() -> (std::net::SocketAddr, tokio::sync::watch::Receiver<usize>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let (tx, rx) = tokio::sync::watch::channel(0usize);
    tokio::spawn(async move {
        let mut held = Vec::new();
        // Bounded: a handful of connections at most; the task ends with the test's runtime.
        for n in 1..=16 {
            let Ok((sock, _)) = l.accept().await else {
                return;
            };
            held.push(sock);
            let _ = tx.send(n);
        }
    });
    (addr, rx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_origin_text_plain_post_peers_is_refused_and_nothing_is_dialed() {
    let (_dir, _key, mut s, api) = node_with(21, NetworkConfig::p2p("node0", 0)).await;
    let (target, dialed) = recording_listener().await;
    let body = json!({ "addr": target.to_string() }).to_string();
    let auth = format!("Bearer {}", s.admin_token().unwrap());
    // What a web page in the operator's browser can send without a CORS preflight: text/plain,
    // a form or multipart, from a foreign Origin. Even with the token (a page cannot have it, but
    // the content type alone must stop it before anything runs).
    for (ct, with_token) in [
        ("text/plain", false),
        ("text/plain;charset=UTF-8", true),
        ("application/x-www-form-urlencoded", false),
        ("multipart/form-data; boundary=x", true),
    ] {
        let mut headers = vec![("content-type", ct), ("origin", "http://evil.example")];
        if with_token {
            headers.push(("authorization", &auth));
        }
        let r = api.post_with("/peers", &headers, &body).await;
        assert!(
            r.headers().get("access-control-allow-origin").is_none(),
            "no CORS headers, ever"
        );
        let (st, v) = answer(r).await;
        assert_eq!(st, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{ct}: {v}");
        assert_error(&v, "unsupported_media_type");
    }
    // Without the token, JSON does not help either.
    let r = api
        .post_with(
            "/peers",
            &[
                ("content-type", "application/json"),
                ("origin", "http://evil.example"),
            ],
            &body,
        )
        .await;
    let (st, v) = answer(r).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED, "{v}");
    assert_error(&v, "unauthorized");
    // The node dialed nothing and learned no address.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        *dialed.borrow(),
        0,
        "the node dialed the attacker's address"
    );
    assert_eq!(s.peer_count(), 0);
    let (_, v) = api.get("/peers").await;
    assert_eq!(v["peers"], json!([]));
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_peers_needs_the_token_from_the_data_dir() {
    let (_dir, _key, mut s, api) = node_with(22, NetworkConfig::p2p("node0", 0)).await;
    let json_ct = ("content-type", "application/json");
    // A dead address: bound, then closed.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let body = json!({ "addr": dead.to_string() }).to_string();
    for auth in [
        None,
        Some("Bearer nope".to_string()),
        Some(format!("Bearer {}", "0".repeat(64))),
        Some(format!("Basic {}", s.admin_token().unwrap())),
    ] {
        let mut headers = vec![json_ct];
        if let Some(a) = &auth {
            headers.push(("authorization", a));
        }
        let (st, v) = answer(api.post_with("/peers", &headers, &body).await).await;
        assert_eq!(st, StatusCode::UNAUTHORIZED, "{auth:?}: {v}");
        assert_error(&v, "unauthorized");
    }
    // The token is what the node wrote to its data dir.
    let path = s.admin_token_path().unwrap().to_path_buf();
    assert_eq!(path.file_name().unwrap(), pp_server::ADMIN_TOKEN_FILE);
    let token = std::fs::read_to_string(&path).unwrap();
    let auth = format!("Bearer {}", token.trim());
    let (st, v) = answer(
        api.post_with("/peers", &[json_ct, ("authorization", &auth)], &body)
            .await,
    )
    .await;
    assert_eq!(st, StatusCode::BAD_GATEWAY, "{v}");
    assert_error(&v, "connect_failed");
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_token_file_is_private_and_new_at_each_start() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let key = KeyPair::from_seed([23u8; 32]);
    let mut tokens = Vec::new();
    for _ in 0..2 {
        let mut s = single(dir.path(), &key);
        s.start(0).await.unwrap();
        let path = dir.path().join(pp_server::ADMIN_TOKEN_FILE);
        assert_eq!(s.admin_token_path(), Some(path.as_path()));
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        let text = std::fs::read_to_string(&path).unwrap();
        let token = text.trim().to_string();
        assert_eq!(text, format!("{token}\n"));
        assert_eq!(token.len(), 64, "32 random bytes as hex");
        assert!(token.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(s.admin_token(), Some(token.as_str()));
        // The previous start's token no longer works.
        if let Some(old) = tokens.last() {
            let api = reqwest::Client::new();
            let r = api
                .post(format!("http://{}/peers", s.http_addr().unwrap()))
                .header("content-type", "application/json")
                .bearer_auth(old)
                .body(r#"{"addr":"127.0.0.1:1"}"#)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        }
        tokens.push(token);
        s.shutdown().await;
    }
    assert_ne!(tokens[0], tokens[1], "a fresh token at each start");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_post_must_be_json() {
    let (_dir, key, mut s, api) = node(24).await;
    let gh = s.genesis().hash();
    let bob = KeyPair::from_seed([25u8; 32]).public();
    let tx = serde_json::to_string(&Transaction::transfer(&key, bob, 5, 1, 0, &gh)).unwrap();
    for headers in [
        vec![],
        vec![("content-type", "text/plain")],
        vec![("content-type", "application/x-www-form-urlencoded")],
        vec![
            ("content-type", "application/json"),
            ("content-type", "text/plain"),
        ],
    ] {
        let (st, v) = answer(api.post_with("/transactions", &headers, &tx).await).await;
        assert_eq!(st, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{headers:?}");
        assert_error(&v, "unsupported_media_type");
    }
    assert_eq!(s.pending_transaction_count(), 0, "nothing was executed");
    let (st, v) = answer(
        api.post_with(
            "/transactions",
            &[("content-type", "application/json; charset=utf-8")],
            &tx,
        )
        .await,
    )
    .await;
    assert_eq!(st, StatusCode::ACCEPTED, "{v}");
    s.shutdown().await;
}

/// Waits (bounded) for the server to close `sock`; returns when it did, or `None`.
async fn closed_within(sock: &mut TcpStream, limit: Duration) -> Option<Instant> {
    let deadline = Instant::now() + limit;
    let mut buf = [0u8; 4096];
    // Bounded in time; each read either makes progress, ends the stream or errors.
    for _ in 0..64 {
        let left = deadline.checked_duration_since(Instant::now())?;
        match tokio::time::timeout(left, sock.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(Instant::now()),
            Ok(Ok(_)) => {} // a response (e.g. 408); the close follows
        }
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_headers_are_cut_off_by_the_header_read_timeout() {
    let (_dir, _key, mut s, _api) = node(26).await;
    let addr = s.http_addr().unwrap();
    let mut sock = TcpStream::connect(addr).await.unwrap();
    let start = Instant::now();
    sock.write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .await
        .unwrap();
    let limit = HEADER_READ_TIMEOUT + Duration::from_secs(3);
    let mut closed_at = None;
    // A header line every 2 s, for at most 10 lines (20 s): a live connection would take them all.
    for i in 0..10 {
        if let Some(t) = closed_within(&mut sock, Duration::from_secs(2)).await {
            closed_at = Some(t);
            break;
        }
        if sock
            .write_all(format!("X-Slow-{i}: 1\r\n").as_bytes())
            .await
            .is_err()
        {
            closed_at = Some(Instant::now());
            break;
        }
    }
    let closed_at = closed_at.expect("the slowloris connection was never closed");
    let took = closed_at - start;
    assert!(
        took <= limit && took + Duration::from_millis(500) >= HEADER_READ_TIMEOUT,
        "closed after {took:?}; the header-read timeout is {HEADER_READ_TIMEOUT:?}"
    );
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_kept_alive_connections_are_closed() {
    let (_dir, _key, mut s, _api) = node(27).await;
    let addr = s.http_addr().unwrap();
    let mut silent = TcpStream::connect(addr).await.unwrap();
    let mut kept = TcpStream::connect(addr).await.unwrap();
    // Liveness (`?live`): this test is about connections, not about the chain being current.
    kept.write_all(b"GET /health?live HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 1024];
    let n = tokio::time::timeout(Duration::from_secs(5), kept.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert!(
        buf[..n].starts_with(b"HTTP/1.1 200"),
        "{:?}",
        String::from_utf8_lossy(&buf[..n])
    );
    let start = Instant::now();
    let limit = HEADER_READ_TIMEOUT + Duration::from_secs(3);
    assert!(
        closed_within(&mut silent, limit).await.is_some(),
        "a silent connection stays open"
    );
    assert!(
        closed_within(&mut kept, limit.saturating_sub(start.elapsed()))
            .await
            .is_some(),
        "an idle kept-alive connection stays open"
    );
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_above_the_limit_are_closed_at_once() {
    let (_dir, _key, mut s, api) = node(28).await;
    let addr = s.http_addr().unwrap();
    let extra = 40;
    let started = Instant::now();
    // Each connection is watched from the moment it is made: an over-limit one is closed at once,
    // a held one only by the header-read timeout (5 s), well after the 1.5 s watch.
    let mut checks = Vec::new();
    for _ in 0..MAX_HTTP_CONNECTIONS + extra {
        let mut sock = TcpStream::connect(addr).await.unwrap();
        checks.push(tokio::spawn(async move {
            let closed = closed_within(&mut sock, Duration::from_millis(1500))
                .await
                .is_some();
            (closed, sock)
        }));
    }
    let connecting = started.elapsed();
    let mut closed = 0;
    let mut held = Vec::new();
    for c in checks {
        let (was_closed, sock) = c.await.unwrap();
        closed += usize::from(was_closed);
        held.push(sock);
    }
    if connecting + Duration::from_secs(1) < HEADER_READ_TIMEOUT {
        assert_eq!(
            closed, extra,
            "connections over {MAX_HTTP_CONNECTIONS} are closed at once"
        );
    } else {
        // So slow a machine that early connections timed out and freed slots meanwhile.
        assert!(closed > 0, "no connection over the limit was closed");
    }
    // Once the held ones time out, the API answers again.
    let start = Instant::now();
    let mut ok = false;
    while start.elapsed() < HEADER_READ_TIMEOUT + Duration::from_secs(5) {
        if let Ok(r) = api
            .client
            .get(format!("{}/health?live", api.base))
            .send()
            .await
        {
            if r.status() == StatusCode::OK {
                ok = true;
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        ok,
        "/health never answered after the idle connections timed out"
    );
    drop(held);
    s.shutdown().await;
}

/// `GET {path}` over a plain socket from a thread of its own (not the test's runtime, whose
/// workers the caller may have wedged): the status line and the time to the whole answer.
fn blocking_get(
    addr: std::net::SocketAddr,
    path: &str,
) -> std::thread::JoinHandle<(String, Duration)> {
    let path = path.to_string();
    std::thread::spawn(move || {
        use std::io::{Read as _, Write as _};
        let t = Instant::now();
        let mut sock = std::net::TcpStream::connect(addr).unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        write!(
            sock,
            "GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"
        )
        .unwrap();
        let mut out = String::new();
        let _ = sock.read_to_string(&mut out);
        let line = out.lines().next().unwrap_or_default().to_string();
        (line, t.elapsed())
    })
}

/// Holds every worker of the current (2-worker) runtime for `d`: each runs a task that sleeps
/// the thread, as a task stuck in CPU-bound work would.
fn wedge_workers(d: Duration) -> Vec<tokio::task::JoinHandle<()>> {
    (0..2)
        .map(|_| tokio::spawn(async move { std::thread::sleep(d) }))
        .collect()
}

/// `ServerConfig::http_threads`: on a runtime of its own the API answers reads while every
/// worker of the node's runtime is busy, and writes (here a transaction) still run on the node.
/// On the node's runtime (0, the control) the same read waits for a worker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_on_its_own_runtime_answers_while_the_node_runtime_is_busy() {
    let wedge = Duration::from_secs(3);
    for threads in [0, 1] {
        let dir = tempfile::tempdir().unwrap();
        let key = KeyPair::from_seed([40 + threads as u8; 32]);
        let mut s = single(dir.path(), &key);
        s.set_http_threads(threads);
        s.start(0).await.unwrap();
        let addr = s.http_addr().unwrap();
        let base = format!("http://{addr}");
        assert!(wait_until(Duration::from_secs(15), || s.height() >= 1).await);
        // The workers are taken before the request is sent.
        let wedged = wedge_workers(wedge);
        tokio::task::spawn_blocking(|| std::thread::sleep(Duration::from_millis(200)))
            .await
            .unwrap_or(());
        let (line, took) = blocking_get(addr, "/status").join().unwrap();
        for w in wedged {
            w.await.unwrap();
        }
        assert!(line.contains("200"), "http_threads {threads}: {line:?}");
        if threads == 0 {
            assert!(
                took >= Duration::from_secs(2),
                "the control answered in {took:?} though the node's workers were busy: the \
                 wedge does not wedge"
            );
        } else {
            assert!(
                took < Duration::from_secs(1),
                "the API on a runtime of its own took {took:?} while the node's workers were busy"
            );
            // A write goes through the node's runtime and is answered as before.
            let gh = s.genesis().hash();
            let bob = KeyPair::from_seed([14u8; 32]).public();
            let tx = Transaction::transfer(&key, bob, 5, 1, 0, &gh);
            let r = reqwest::Client::new()
                .post(format!("{base}/transactions"))
                .header("content-type", "application/json")
                .body(serde_json::to_string(&tx).unwrap())
                .send()
                .await
                .unwrap();
            let (st, v) = answer(r).await;
            assert_eq!(st, StatusCode::ACCEPTED, "{v}");
            assert_eq!(v["id"], tx.id().to_hex());
        }
        s.shutdown().await;
        // Stopped with the node: nothing listens any more.
        assert!(
            std::net::TcpStream::connect(addr).is_err(),
            "http_threads {threads}"
        );
    }
}
