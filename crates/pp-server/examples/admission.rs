//! Measures transaction admission over HTTP: how many transfers per second a node acknowledges
//! (`202`, durable) and how many storage commits it makes for them.
//!
//! ```text
//! cargo run --release -p pp-server --example admission -- [clients] [txs_per_client] [batch]
//! ```
//!
//! A single-node devnet (fresh temporary data dir, real redb file, P2P off) funds `clients`
//! wallets at genesis. Each client owns one wallet and submits `txs_per_client` signed transfers
//! with consecutive nonces, one request at a time (`batch` = 1, the default) or `batch`
//! transfers per request as a JSON array; the clients run concurrently. The node keeps producing
//! blocks meanwhile. The commit count is read from `pp_storage_commits_total` in `/metrics`.

use std::time::{Duration, Instant};

use pp_ledger::{Genesis, InitialBalance, KeyPair, Transaction};
use pp_server::{Clock as _, Server, ServerConfig};

fn arg(n: usize, default: usize) -> usize {
    std::env::args()
        .nth(n)
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

fn commits(metrics: &str) -> Option<u64> {
    metrics
        .lines()
        .find(|l| l.starts_with("pp_storage_commits_total "))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

#[tokio::main]
async fn main() {
    let clients = arg(1, 64);
    let per_client = arg(2, 200);
    let batch = arg(3, 1).max(1);
    let node_key = KeyPair::from_seed([1u8; 32]);
    let wallets: Vec<KeyPair> = (0..clients)
        .map(|i| {
            let mut seed = [0u8; 32];
            seed[..8].copy_from_slice(&(i as u64 + 1000).to_be_bytes());
            KeyPair::from_seed(seed)
        })
        .collect();
    let mut genesis = Genesis::devnet("bench", node_key.public(), pp_server::SystemClock.now_ms());
    genesis.difficulty = 1;
    genesis
        .initial_balances
        .extend(wallets.iter().map(|w| InitialBalance {
            account: w.public(),
            amount: 1_000_000_000,
        }));
    let gh = genesis.hash();
    let config = ServerConfig {
        genesis: Some(genesis),
        key: Some(node_key),
        mempool_max_txs: 1_000_000,
        mempool_max_per_sender: 1_000_000,
        ..ServerConfig::default()
    };
    let mut server = Server::with_config(config);
    server.start_configured().await.expect("start");
    let base = format!("http://{}", server.http_addr().expect("http"));
    let to = KeyPair::from_seed([2u8; 32]).public();
    let txs: Vec<Vec<Transaction>> = wallets
        .iter()
        .map(|w| {
            (0..per_client as u64)
                .map(|n| Transaction::transfer(w, to, 1, 1, n, &gh))
                .collect()
        })
        .collect();
    let http = reqwest::Client::new();
    let before = commits(&server.metrics_text());
    let start = Instant::now();
    let mut tasks = Vec::new();
    for mine in txs {
        let http = http.clone();
        let url = format!("{base}/transactions");
        tasks.push(tokio::spawn(async move {
            let mut accepted = 0usize;
            for chunk in mine.chunks(batch) {
                let body = if batch == 1 {
                    serde_json::to_string(&chunk[0]).expect("json")
                } else {
                    serde_json::to_string(chunk).expect("json")
                };
                let res = http
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(body)
                    .timeout(Duration::from_secs(30))
                    .send()
                    .await
                    .expect("request");
                let status = res.status().as_u16();
                let text = res.text().await.unwrap_or_default();
                match (batch, status) {
                    (1, 202) => accepted += 1,
                    (1, _) => panic!("refused: {status} {text}"),
                    (_, 200) => accepted += text.matches("\"accepted\"").count(),
                    _ => panic!("batch refused: {status} {text}"),
                }
            }
            accepted
        }));
    }
    let mut accepted = 0;
    for t in tasks {
        accepted += t.await.expect("client");
    }
    let secs = start.elapsed().as_secs_f64();
    let after = commits(&server.metrics_text());
    let commits = match (before, after) {
        (Some(b), Some(a)) => format!("{}", a - b),
        _ => "n/a (no pp_storage_commits_total: one commit per transaction)".into(),
    };
    println!(
        "clients {clients} x {per_client} txs, batch {batch}: {accepted} accepted in {secs:.2} s = \
         {:.0} tx/s; storage commits {commits}",
        accepted as f64 / secs
    );
    server.shutdown().await;
}
