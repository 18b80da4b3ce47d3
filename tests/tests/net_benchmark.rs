//! Measurements on real `ppd` processes (ignored by default; they print numbers, they do not
//! judge them). Run with:
//!
//! ```sh
//! cargo test -p pp-integration-tests --test net_benchmark -- --ignored --nocapture --test-threads 1
//! # the nodes from an optimised build:
//! PP_TEST_RELEASE=1 cargo test -p pp-integration-tests --test net_benchmark -- --ignored --nocapture --test-threads 1
//! # a prebuilt ppd instead (nothing is built), e.g. an older commit's, to compare versions:
//! PP_PPD_BIN=/path/to/ppd cargo test -p pp-integration-tests --test net_benchmark -- --ignored --nocapture --test-threads 1
//! ```
//!
//! - `block_propagation_on_a_5_node_testnet`: for 20 consecutive blocks, the time from the block's
//!   production (its header timestamp, the producer's clock — same machine) until the last of the
//!   5 nodes serves it over HTTP. Polling every 5 ms adds up to ~5 ms plus one HTTP round.
//! - `sync_speed_of_a_fresh_node_over_2000_blocks`: a fresh node with an empty data dir downloads
//!   2,000+ blocks from one peer; blocks/s measured from its first synced block to the target
//!   (excluding process start-up), and from process start.

use std::time::{Duration, Instant};

use pp_integration_tests::{
    block_hash, block_hashes, free_port_block, get_json, height, http, now_ms, wait_all_up,
    wait_for, wait_height, wait_peers, write_follower_config, Node, Testnet,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run explicitly, see the module docs"]
async fn block_propagation_on_a_5_node_testnet() {
    // Build ppd before the clock starts: a cold build must not eat the test's time bound.
    pp_integration_tests::ppd_bin();
    const SLOT_MS: u64 = 500;
    let mut net = Testnet::write(
        5,
        &[
            "--slot-ms",
            &SLOT_MS.to_string(),
            "--start-delay-ms",
            "4000",
        ],
    )
    .unwrap();
    net.start_all().unwrap();
    let urls = net.urls();
    let client = http();
    wait_all_up(&client, &urls, Duration::from_secs(60))
        .await
        .unwrap();
    wait_peers(&client, &urls, 1, Duration::from_secs(60))
        .await
        .unwrap();
    wait_height(&client, &urls, 2, Duration::from_secs(60))
        .await
        .unwrap();
    let mut h = 0;
    for u in &urls {
        h = h.max(height(&client, u).await.unwrap_or(0));
    }
    let mut delays = Vec::new();
    for index in h + 1..=h + 20 {
        let hash = wait_for(
            &format!("block {index} everywhere"),
            Duration::from_secs(30),
            Duration::from_millis(5),
            || async {
                let mut first: Option<String> = None;
                for u in &urls {
                    let x = block_hash(&client, u, index).await?;
                    if first.as_ref().is_some_and(|f| *f != x) {
                        return None;
                    }
                    first = Some(x);
                }
                first
            },
        )
        .await
        .unwrap();
        let at = now_ms();
        let b = get_json(&client, &format!("{}/blocks/{index}", urls[0]))
            .await
            .unwrap();
        assert_eq!(b["hash"], hash.as_str());
        let ts = b["header"]["timestamp"].as_u64().unwrap();
        delays.push(at.saturating_sub(ts));
    }
    delays.sort_unstable();
    let mean = delays.iter().sum::<u64>() as f64 / delays.len() as f64;
    println!(
        "propagation (HTTP view), 5 nodes, slot {SLOT_MS} ms, {} blocks: mean {mean:.1} ms, p50 {} ms, p90 {} ms, max {} ms",
        delays.len(),
        delays[delays.len() / 2],
        delays[delays.len() * 9 / 10],
        delays[delays.len() - 1]
    );

    // The same from the nodes' own logs, to the microsecond: `block produced` on the producer to
    // the last `block received` (imported from gossip) among the other nodes.
    let logs: Vec<String> = net.nodes.iter().map(|n| n.log_text()).collect();
    let mut produced = std::collections::BTreeMap::new();
    let mut received: std::collections::BTreeMap<String, Vec<i64>> = Default::default();
    for log in &logs {
        for line in log.lines() {
            let (Some(t), Some(hash)) = (log_time_us(line), field(line, "hash=")) else {
                continue;
            };
            if line.contains("block produced") {
                produced.insert(hash.to_string(), t);
            } else if line.contains("block received") {
                received.entry(hash.to_string()).or_default().push(t);
            }
        }
    }
    let mut gossip_us: Vec<i64> = Vec::new();
    let mut partly_synced = 0;
    for (hash, t0) in &produced {
        match received.get(hash) {
            Some(ts) if ts.len() == urls.len() - 1 => {
                gossip_us.push(ts.iter().max().copied().unwrap_or(*t0) - t0)
            }
            _ => partly_synced += 1,
        }
    }
    gossip_us.sort_unstable();
    if !gossip_us.is_empty() {
        let n = gossip_us.len();
        let mean = gossip_us.iter().sum::<i64>() as f64 / n as f64 / 1000.0;
        println!(
            "propagation (node logs), {n} blocks gossiped to all 4 others: mean {mean:.2} ms, p50 {:.2} ms, p90 {:.2} ms, max {:.2} ms; {partly_synced} blocks reached some node by sync instead",
            gossip_us[n / 2] as f64 / 1000.0,
            gossip_us[n * 9 / 10] as f64 / 1000.0,
            gossip_us[n - 1] as f64 / 1000.0
        );
    }
}

/// Microseconds since midnight of a log line's `YYYY-MM-DDTHH:MM:SS.ffffffZ` timestamp.
fn log_time_us(line: &str) -> Option<i64> {
    let t = line.get(11..26)?;
    let h: i64 = t.get(0..2)?.parse().ok()?;
    let m: i64 = t.get(3..5)?.parse().ok()?;
    let s: i64 = t.get(6..8)?.parse().ok()?;
    let us: i64 = t.get(9..15)?.parse().ok()?;
    Some(((h * 60 + m) * 60 + s) * 1_000_000 + us)
}

/// The value of `key` (e.g. `hash=`) in a log line.
fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let rest = &line[line.find(key)? + key.len()..];
    rest.split_whitespace().next()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run explicitly, see the module docs"]
async fn sync_speed_of_a_fresh_node_over_2000_blocks() {
    // Build ppd before the clock starts: a cold build must not eat the test's time bound.
    pp_integration_tests::ppd_bin();
    const TARGET: u64 = 2_000;
    let mut net = Testnet::write(1, &["--slot-ms", "10", "--start-delay-ms", "500"]).unwrap();
    net.start_all().unwrap();
    let source = net.urls()[0].clone();
    let client = http();
    wait_all_up(
        &client,
        std::slice::from_ref(&source),
        Duration::from_secs(60),
    )
    .await
    .unwrap();
    let built = Instant::now();
    wait_for(
        "the source to build the chain",
        Duration::from_secs(300),
        Duration::from_millis(200),
        || async { (height(&client, &source).await? >= TARGET).then_some(()) },
    )
    .await
    .unwrap();
    println!("source built {TARGET} blocks in {:?}", built.elapsed());

    let ports = free_port_block(2);
    let cfg = write_follower_config(
        &net.dir.path().join("fresh"),
        "fresh",
        &net.root().join("genesis.json"),
        ports,
        ports + 1,
        &[format!("127.0.0.1:{}", net.p2p_base)],
    )
    .unwrap();
    let spawned = Instant::now();
    let fresh = Node::spawn_config("fresh", ports, &cfg).unwrap();
    let first = wait_for(
        "the first synced block",
        Duration::from_secs(60),
        Duration::from_millis(2),
        || async { (height(&client, &fresh.url).await? >= 1).then(Instant::now) },
    )
    .await
    .unwrap();
    let h_first = height(&client, &fresh.url).await.unwrap();
    let done = wait_for(
        "the fresh node to reach the target",
        Duration::from_secs(300),
        Duration::from_millis(10),
        || async { (height(&client, &fresh.url).await? >= TARGET).then(Instant::now) },
    )
    .await
    .unwrap();
    let steady = done - first;
    let total = done - spawned;
    println!(
        "sync: {} blocks in {steady:?} from the first synced block ({:.0} blocks/s); {TARGET} blocks in {total:?} from process start ({:.0} blocks/s)",
        TARGET - h_first,
        (TARGET - h_first) as f64 / steady.as_secs_f64(),
        TARGET as f64 / total.as_secs_f64()
    );
    let mine = block_hashes(&client, &fresh.url, TARGET).await.unwrap();
    let theirs = block_hashes(&client, &source, TARGET).await.unwrap();
    assert_eq!(mine, theirs);
}
