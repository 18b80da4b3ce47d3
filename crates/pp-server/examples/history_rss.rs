//! Measures a node's memory against the length of its history: the resident set (VmRSS) of a
//! node idle on a long chain, and the peak (VmHWM) of a fresh node syncing that chain.
//!
//! ```text
//! cargo run -p pp-server --example history_rss -- [blocks] [txs_per_block]
//! ```
//!
//! 1. Builds a valid devnet chain of `blocks` full blocks (default 200 × 5,000 transfers from
//!    1,000 funded wallets to 1,000 others) directly through `pp_ledger::Chain` (signatures
//!    verified, as a node would) and writes it into a data dir through `pp_server::storage`.
//! 2. Starts a node on that data dir in a child process (P2P on, a key without stake, so it
//!    never produces), waits until it has loaded the chain, lets it idle, and reads
//!    `/proc/PID/status`.
//! 3. Starts a second child on an empty data dir with the first as its peer, waits until it
//!    reaches the same height, and reads its `/proc/PID/status` (VmHWM: the peak while syncing).
//!
//! Children run with `MALLOC_ARENA_MAX=2` (as `contrib/systemd/ppd.service` runs `ppd`) unless
//! the variable is set, e.g. `MALLOC_ARENA_MAX=16` for glibc's default on 2 cores.
//!
//! With `PP_RSS_DIR=path` the chain is built into `path` and kept; a later run with the same
//! `PP_RSS_DIR` reuses it (the arguments must then describe it) instead of building it again.
//!
//! Children are this program run as `history_rss serve DIR P2P_PORT [PEER]`; they print one
//! `READY <http addr>` line and stop when their stdin closes.

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use pp_ledger::{Block, Chain, Genesis, InitialBalance, KeyPair, Transaction};
use pp_ouroboros::Ouroboros;
use pp_server::storage::{ChainCommit, Storage};
use pp_server::{Clock as _, NetworkConfig, Server, ServerConfig, SystemClock};

const WALLETS: u64 = 1_000;

fn wallet(i: u64) -> KeyPair {
    let mut seed = [0u8; 32];
    seed[..8].copy_from_slice(&(i + 10_000).to_be_bytes());
    KeyPair::from_seed(seed)
}

fn producer() -> KeyPair {
    KeyPair::from_seed([7u8; 32])
}

/// Builds the chain into `dir` (`chain.redb` and `genesis.json`); returns the genesis.
fn build(dir: &Path, blocks: u64, per_block: u64) -> Genesis {
    let key = producer();
    let senders: Vec<KeyPair> = (0..WALLETS).map(wallet).collect();
    let receivers: Vec<_> = (WALLETS..2 * WALLETS).map(|i| wallet(i).public()).collect();
    // Slots of 1 s: start far enough in the past that every block's slot has begun.
    let start = SystemClock.now_ms() - (blocks * 4 + 3_600) * 1_000;
    let mut g = Genesis::devnet("rss", key.public(), start);
    g.difficulty = 1;
    g.initial_balances
        .extend(senders.iter().map(|w| InitialBalance {
            account: w.public(),
            amount: 1 << 50,
        }));
    let gh = g.hash();
    std::fs::create_dir_all(dir).expect("data dir");
    std::fs::write(dir.join(pp_server::GENESIS_FILE), g.to_json_pretty()).expect("genesis");
    let storage = Storage::open(&dir.join(pp_server::DB_FILE)).expect("storage");
    storage.set_genesis_hash(&gh).expect("genesis hash");
    let mut chain = Chain::new(g.clone(), Ouroboros::new(&g).expect("rules")).expect("chain");
    let now = SystemClock.now_ms();
    let mut nonce = 0u64;
    let mut slot = 0u64;
    let t0 = Instant::now();
    while chain.height() < blocks {
        slot += 1;
        if chain.leader_for_next(slot) != Some(key.public()) {
            continue;
        }
        // Sign on two threads (ed25519 signing dominates the build).
        let n = per_block as usize;
        let first = nonce;
        let sign = |range: std::ops::Range<usize>| -> Vec<Transaction> {
            range
                .map(|j| {
                    let i = first * per_block + j as u64;
                    let s = (i % WALLETS) as usize;
                    let to = receivers[((i / WALLETS) % WALLETS) as usize];
                    Transaction::transfer(&senders[s], to, 1, 1, i / WALLETS, &gh)
                })
                .collect()
        };
        let (a, b) = std::thread::scope(|sc| {
            let h = sc.spawn(|| sign(0..n / 2));
            let b = sign(n / 2..n);
            (h.join().expect("signer"), b)
        });
        let txs: Vec<Transaction> = a.into_iter().chain(b).collect();
        nonce += 1;
        let parent = chain.tip().header.clone();
        let root = chain
            .state_root_after(&chain.tip_hash(), &key.public(), &txs)
            .expect("the transfers apply");
        let block = Block::produce(
            &parent,
            slot,
            g.genesis_time + slot * g.slot_duration_ms,
            g.difficulty,
            txs,
            root,
            &key,
            &gh,
            1 << 24,
        )
        .expect("mined");
        let hash = block.hash();
        let index = block.header.index;
        chain
            .verify_and_add(block.clone(), now)
            .expect("a valid block");
        storage
            .commit_chain(&ChainCommit {
                blocks: vec![block],
                best: vec![(index, hash)],
                height: Some(index),
                ..ChainCommit::default()
            })
            .expect("commit");
        chain.mark_stored(index, &hash);
        if index % 20 == 0 {
            eprintln!("built {index} blocks in {:.0?}", t0.elapsed());
        }
    }
    g
}

/// Child mode: a node on `dir`, P2P on `p2p_port`, dialing `peer` if given.
async fn serve(dir: PathBuf, p2p_port: u16, peer: Option<String>) {
    let mut net = NetworkConfig::p2p("rss", p2p_port);
    net.listen_addr = "127.0.0.1".into();
    if let Some(p) = &peer {
        net = net.with_bootstrap(&[p.as_str()]);
    }
    let config = ServerConfig {
        data_dir: Some(dir),
        // A key without stake, distinct per node (a peer with our own key is refused as self).
        key: Some(KeyPair::from_seed([(p2p_port % 200) as u8 + 50; 32])),
        network: net,
        ..ServerConfig::default()
    };
    let mut server = Server::with_config(config);
    server.start_configured().await.expect("start");
    println!("READY {}", server.http_addr().expect("http"));
    std::io::stdout().flush().ok();
    // Until the parent closes our stdin.
    let _ = tokio::task::spawn_blocking(|| {
        let mut line = String::new();
        let _ = std::io::stdin().read_line(&mut line);
    })
    .await;
    server.shutdown().await;
}

fn status_kb(pid: u32, field: &str) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn spawn(dir: &Path, p2p_port: u16, peer: Option<&str>) -> (Child, String) {
    let mut cmd = Command::new(std::env::current_exe().expect("exe"));
    cmd.arg("serve").arg(dir).arg(p2p_port.to_string());
    if let Some(p) = peer {
        cmd.arg(p);
    }
    // glibc's malloc gives each thread that contends an arena of its own (up to 8 per core),
    // and blocks decoded on one thread and freed on another leave most of them half empty: a
    // syncing node peaked at 451 MB with the default and 294 MB with 2 arenas (1M
    // transactions). Nodes run with 2 (contrib/systemd/ppd.service); an explicit
    // MALLOC_ARENA_MAX in our environment is passed on instead.
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        cmd.env("MALLOC_ARENA_MAX", "2");
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .env("RUST_LOG", "warn")
        .spawn()
        .expect("spawn node");
    let out = child.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(out)
        .read_line(&mut line)
        .expect("ready line");
    let addr = line
        .trim()
        .strip_prefix("READY ")
        .expect("READY line")
        .to_string();
    (child, addr)
}

async fn height(http: &reqwest::Client, addr: &str) -> u64 {
    let v: serde_json::Value = match http.get(format!("http://{addr}/status")).send().await {
        Ok(r) => r.json().await.unwrap_or_default(),
        Err(_) => return 0,
    };
    v["height"].as_u64().unwrap_or(0)
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("serve") {
        let dir = PathBuf::from(&args[2]);
        let port: u16 = args[3].parse().expect("port");
        serve(dir, port, args.get(4).cloned()).await;
        return;
    }
    println!(
        "nodes run with MALLOC_ARENA_MAX={}",
        std::env::var("MALLOC_ARENA_MAX").unwrap_or_else(|_| "2".into())
    );
    let blocks: u64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(200);
    let per_block: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(5_000);
    let tmp = tempfile::tempdir().expect("tempdir");
    // `PP_RSS_DIR=path`: build the chain there (kept), or reuse a chain built there before.
    let full = match std::env::var_os("PP_RSS_DIR") {
        Some(d) => PathBuf::from(d),
        None => tmp.path().join("full"),
    };
    let t = Instant::now();
    if !full.join(pp_server::DB_FILE).exists() {
        build(&full, blocks, per_block);
    }
    let bytes = std::fs::metadata(full.join(pp_server::DB_FILE))
        .map(|m| m.len())
        .unwrap_or(0);
    println!(
        "built {blocks} blocks x {per_block} transfers = {} transactions in {:.0?} ({} MB on disk)",
        blocks * per_block,
        t.elapsed(),
        bytes >> 20
    );

    let http = reqwest::Client::new();
    let t = Instant::now();
    let (mut a, a_http) = spawn(&full, 19_711, None);
    println!(
        "node on the full history loaded height {} in {:.0?}",
        height(&http, &a_http).await,
        t.elapsed()
    );
    tokio::time::sleep(Duration::from_secs(10)).await;
    let (rss, hwm) = (status_kb(a.id(), "VmRSS:"), status_kb(a.id(), "VmHWM:"));
    println!(
        "idle node, {} transactions of history: VmRSS {} MB (peak while loading {} MB)",
        blocks * per_block,
        rss >> 10,
        hwm >> 10
    );

    let fresh = tmp.path().join("fresh");
    std::fs::create_dir_all(&fresh).expect("fresh dir");
    std::fs::copy(
        full.join(pp_server::GENESIS_FILE),
        fresh.join(pp_server::GENESIS_FILE),
    )
    .expect("genesis copy");
    let t = Instant::now();
    let (mut b, b_http) = spawn(&fresh, 19_712, Some("127.0.0.1:19711"));
    let deadline = Instant::now() + Duration::from_secs(1_800);
    let mut synced = 0;
    while Instant::now() < deadline {
        synced = height(&http, &b_http).await;
        if synced >= blocks {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let (rss_b, hwm_b) = (status_kb(b.id(), "VmRSS:"), status_kb(b.id(), "VmHWM:"));
    println!(
        "fresh node synced to height {synced} in {:.0?}: peak VmHWM {} MB, VmRSS after {} MB",
        t.elapsed(),
        hwm_b >> 10,
        rss_b >> 10
    );
    for c in [&mut a, &mut b] {
        drop(c.stdin.take());
    }
    for c in [&mut a, &mut b] {
        let _ = c.wait();
    }
}
