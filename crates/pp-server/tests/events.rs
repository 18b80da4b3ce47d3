//! `GET /events` on running nodes, read by a real HTTP client: block, transaction and peer events
//! arrive with the documented JSON, the number of streams is capped, and streams end cleanly when
//! the node stops.
#![allow(clippy::unwrap_used)] // Tests: a failed unwrap is a failed test.

mod common;

use std::time::{Duration, Instant};

use common::single;
use pp_ledger::{KeyPair, Transaction};
use pp_server::{NetworkConfig, Server, MAX_EVENT_CLIENTS};
use reqwest::StatusCode;
use serde_json::Value;

/// Longest wait for any one expected event.
const EVENT_WAIT: Duration = Duration::from_secs(20);

/// One parsed Server-Sent Event.
#[derive(Debug)]
struct Sse {
    event: String,
    data: Value,
}

/// A `GET /events` response read incrementally, as a browser's `EventSource` would.
struct Stream {
    res: reqwest::Response,
    buf: String,
    /// Keep-alive comment lines seen.
    comments: usize,
}

impl Stream {
    async fn open(base: &str) -> Stream {
        let res = reqwest::get(format!("{base}/events")).await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let ct = res.headers()["content-type"].to_str().unwrap().to_string();
        assert_eq!(ct, "text/event-stream");
        Stream {
            res,
            buf: String::new(),
            comments: 0,
        }
    }

    /// The next event, or `None` when the stream ended cleanly; panics after `EVENT_WAIT`.
    async fn next(&mut self) -> Option<Sse> {
        let deadline = Instant::now() + EVENT_WAIT;
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let frame: String = self.buf.drain(..end + 2).collect();
                let (mut event, mut data) = (String::new(), String::new());
                for line in frame.lines() {
                    if let Some(v) = line.strip_prefix("event: ") {
                        event = v.to_string();
                    } else if let Some(v) = line.strip_prefix("data: ") {
                        data.push_str(v);
                    } else if line.starts_with(':') {
                        self.comments += 1;
                    }
                }
                if event.is_empty() {
                    continue; // a keep-alive comment alone
                }
                let data = serde_json::from_str(&data).unwrap();
                return Some(Sse { event, data });
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let chunk = tokio::time::timeout(left, self.res.chunk())
                .await
                .expect("no event within the time limit")
                .expect("the stream broke instead of ending");
            match chunk {
                Some(bytes) => self.buf.push_str(std::str::from_utf8(&bytes).unwrap()),
                None => return None,
            }
        }
    }

    /// Skips events until one named `name` satisfies `pred` (at most 200 events).
    async fn find(&mut self, name: &str, pred: impl Fn(&Value) -> bool) -> Value {
        for _ in 0..200 {
            let ev = self.next().await.expect("stream ended");
            if ev.event == name && pred(&ev.data) {
                return ev.data;
            }
        }
        panic!("no matching {name} event among 200");
    }
}

async fn get(base: &str, path: &str) -> Value {
    reqwest::get(format!("{base}{path}"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_reading_the_stream_sees_new_blocks_and_its_submitted_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let key = KeyPair::from_seed([91u8; 32]);
    let mut node = single(dir.path(), &key);
    node.start(0).await.unwrap();
    let base = format!("http://{}", node.http_addr().unwrap());
    let mut stream = Stream::open(&base).await;

    // A block event: the documented fields, and the block the API serves at that index.
    let b = stream.find("block", |_| true).await;
    let keys: Vec<&str> = b.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys, ["hash", "index", "slot", "tx_count"], "{b}");
    let index = b["index"].as_u64().unwrap();
    let served = get(&base, &format!("/blocks/{index}")).await;
    assert_eq!(served["hash"], b["hash"]);
    assert_eq!(served["header"]["slot"], b["slot"]);

    // A transaction submitted over HTTP: its `tx` event, then the block that includes it.
    let to = KeyPair::from_seed([92u8; 32]).public();
    let gh = node.genesis().hash();
    let nonce = node.next_nonce(&key.public()).unwrap();
    let tx = Transaction::transfer(&key, to, 5, 1, nonce, &gh);
    let res = reqwest::Client::new()
        .post(format!("{base}/transactions"))
        .json(&tx)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let id = tx.id().to_hex();
    let t = stream.find("tx", |d| d["id"] == id.as_str()).await;
    assert_eq!(t.as_object().unwrap().len(), 1, "{t}");
    let b = stream.find("block", |d| d["tx_count"] == 1).await;
    let block = get(
        &base,
        &format!("/blocks/hash/{}", b["hash"].as_str().unwrap()),
    )
    .await;
    assert_eq!(
        Transaction::id(&serde_json::from_value(block["transactions"][0].clone()).unwrap())
            .to_hex(),
        id
    );

    // Shutting the node down ends the stream cleanly (no broken connection).
    node.shutdown().await;
    for _ in 0..1_000 {
        if stream.next().await.is_none() {
            return;
        }
    }
    panic!("the stream did not end");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_beyond_the_limit_are_refused_with_503_until_one_closes() {
    let dir = tempfile::tempdir().unwrap();
    let key = KeyPair::from_seed([93u8; 32]);
    let mut node = single(dir.path(), &key);
    node.start(0).await.unwrap();
    let base = format!("http://{}", node.http_addr().unwrap());
    let mut open = Vec::new();
    for _ in 0..MAX_EVENT_CLIENTS {
        open.push(Stream::open(&base).await);
    }
    let res = reqwest::get(format!("{base}/events")).await.unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["error"]["code"], "too_many_event_clients", "{v}");
    // The other endpoints still answer.
    assert!(get(&base, "/status").await["height"].is_u64());
    // A closed stream frees its place (the server notices the close when it next writes, at
    // the next event or keep-alive).
    drop(open.pop());
    let mut reopened = None;
    for _ in 0..200 {
        let res = reqwest::get(format!("{base}/events")).await.unwrap();
        if res.status() == StatusCode::OK {
            reopened = Some(res);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(reopened.is_some(), "no place freed within 20 s");
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_coming_and_going_are_announced() {
    let dir_a = tempfile::tempdir().unwrap();
    let dir_b = tempfile::tempdir().unwrap();
    let key_a = KeyPair::from_seed([94u8; 32]);
    let key_b = KeyPair::from_seed([95u8; 32]);
    let mut a = single(dir_a.path(), &key_a);
    a.start_with_network(0, NetworkConfig::p2p("a", 0))
        .await
        .unwrap();
    let base = format!("http://{}", a.http_addr().unwrap());
    let mut stream = Stream::open(&base).await;

    let mut b: Server = single(dir_b.path(), &key_b);
    b.set_genesis(a.genesis());
    let boot = a.p2p_addr().unwrap().to_string();
    b.start_with_network(
        0,
        NetworkConfig::p2p("b", 0).with_bootstrap(&[boot.as_str()]),
    )
    .await
    .unwrap();
    let up = stream
        .find("peer_up", |d| d["key"] == key_b.public().to_hex().as_str())
        .await;
    assert_eq!(up["node_id"], "b", "{up}");
    assert_eq!(up["direction"], "inbound", "{up}");
    assert!(
        up["addr"].as_str().unwrap().starts_with("127.0.0.1:"),
        "{up}"
    );
    let id = up["id"].as_u64().unwrap();

    b.shutdown().await;
    let down = stream.find("peer_down", |d| d["id"] == id).await;
    assert!(down["reason"].is_string(), "{down}");
    a.shutdown().await;
}
