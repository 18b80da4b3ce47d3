//! `ppd bench` against a real classic devnet (one producer; in the second test with a follower): it funds
//! its accounts, loads the node for a few seconds, and its JSON results say what the node did
//! (accepted and included transactions, latencies, nothing acknowledged and lost, no nonce
//! surprises), how fast blocks reached the follower, and how fast `GET /status` answered.

use std::path::Path;
use std::time::Duration;

use pp_integration_tests::{free_port_block, http, ppd_bin, run_bounded, status, wait_for, Node};
use serde_json::Value;

/// The whole `ppd bench` run: funding (a few slots), load, grace, queries.
const BENCH_TIMEOUT: Duration = Duration::from_secs(120);

/// Starts a devnet node (built-in genesis, its node.key funded) and waits for its first block.
async fn devnet(dir: &Path) -> Node {
    classic_data_dir(dir, "data", &classic_genesis(), true);
    let node = spawn_devnet(dir, "devnet", "data", &[]);
    wait_block(&node).await;
    node
}

/// Writes a classic single-stakeholder devnet (alice holds all stake and a large balance) into
/// `dir/data_dir`, with alice's key as `node.key` when `alice` is set. Classic, not the praos
/// built-in devnet: with f = 1/2 the built-in devnet leaves a slot empty half the time, and as
/// its genesis is fixed, every run at the same wall-clock time has the same empty slots, so a
/// load of a few seconds would now and then see no block at all. In classic mode alice leads
/// every slot, so blocks during the load are certain. Both nodes of a test get the same genesis.
fn classic_data_dir(dir: &Path, data_dir: &str, genesis: &pp_ledger::Genesis, alice: bool) {
    let d = dir.join(data_dir);
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join("genesis.json"), genesis.to_json_pretty()).unwrap();
    if alice {
        pp_server::keys::write_key(&d, &pp_server::dev_key("alice")).unwrap();
    }
}

/// The classic devnet of [`classic_data_dir`], starting now.
fn classic_genesis() -> pp_ledger::Genesis {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    pp_ledger::Genesis::devnet("alice", pp_server::dev_key("alice").public(), now_ms)
}

/// Starts a node with its data in `dir/data_dir` (a classic devnet, see [`classic_data_dir`])
/// and `extra` arguments.
fn spawn_devnet(dir: &Path, name: &str, data_dir: &str, extra: &[String]) -> Node {
    let port = free_port_block(1);
    let mut args: Vec<String> = vec![
        "run".into(),
        "--data-dir".into(),
        dir.join(data_dir).display().to_string(),
        "--http".into(),
        format!("127.0.0.1:{port}"),
    ];
    args.extend_from_slice(extra);
    Node::spawn(name, port, &args, &dir.join(format!("{name}.log"))).unwrap()
}

/// Waits until `node` has block 1.
async fn wait_block(node: &Node) {
    let client = http();
    wait_for(
        &format!("{} to have block 1", node.url),
        Duration::from_secs(30),
        Duration::from_millis(100),
        || async {
            (status(&client, &node.url).await.ok()?["height"].as_u64()? >= 1).then_some(())
        },
    )
    .await
    .unwrap();
}

/// The devnet's producer (alice) with P2P on, and a follower (`dev:bob`, not a stakeholder)
/// peered with it; both have block 1.
async fn devnet_with_follower(dir: &Path) -> (Node, Node) {
    let p2p = free_port_block(2);
    let genesis = classic_genesis();
    classic_data_dir(dir, "data", &genesis, true);
    classic_data_dir(dir, "follower", &genesis, false);
    let alice = spawn_devnet(
        dir,
        "devnet",
        "data",
        &["--p2p".into(), format!("127.0.0.1:{p2p}")],
    );
    let bob = spawn_devnet(
        dir,
        "follower",
        "follower",
        &[
            "--p2p".into(),
            format!("127.0.0.1:{}", p2p + 1),
            "--peer".into(),
            format!("127.0.0.1:{p2p}"),
            "--key".into(),
            "dev:bob".into(),
        ],
    );
    wait_block(&alice).await;
    wait_block(&bob).await;
    (alice, bob)
}

/// Runs `ppd bench` against `node` with `extra` options; returns its JSON results and stderr.
fn bench(node: &Node, dir: &Path, extra: &[&str]) -> (Value, String) {
    let key = dir.join("data/node.key").display().to_string();
    let json = dir.join("bench.json");
    let json_s = json.display().to_string();
    let mut args = vec![
        "bench",
        "--node",
        &node.url,
        "--key",
        &key,
        "--accounts",
        "8",
        "--concurrency",
        "4",
        "--grace",
        "30",
        "--progress",
        "1",
        // One second of idle /status probing (the default is 10), and every block with a
        // transaction counts as "big", so that a short run has samples of every kind.
        "--idle",
        "1",
        "--big-block",
        "1",
        "--json",
        &json_s,
    ];
    args.extend_from_slice(extra);
    let out = run_bounded(ppd_bin(), &args, &[("RUST_LOG", "warn")], BENCH_TIMEOUT)
        .unwrap()
        .ok()
        .unwrap();
    assert!(
        out.stdout.contains("accepted") && out.stdout.contains("propagation"),
        "summary on stdout: {out:?}"
    );
    let v: Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    (v, out.stderr)
}

/// What every run must show on a healthy single node.
fn assert_healthy(v: &Value) {
    let num = |p: &str| v.pointer(p).and_then(Value::as_f64);
    assert!(num("/accepted").unwrap() > 0.0, "{v:#}");
    assert!(num("/accepted_tps").unwrap() > 0.0, "{v:#}");
    assert!(num("/included_own").unwrap() > 0.0, "{v:#}");
    assert_eq!(
        num("/included_own"),
        num("/accepted"),
        "every acknowledged transaction is included on one node: {v:#}"
    );
    for p in ["p50", "p95", "p99", "max"] {
        let ms = num(&format!("/latency_ms/{p}"));
        assert!(ms.is_some_and(|ms| ms > 0.0), "latency {p}: {v:#}");
    }
    assert_eq!(num("/lost/count"), Some(0.0), "{v:#}");
    assert_eq!(num("/nonce_regressions"), Some(0.0), "{v:#}");
    assert!(
        v.pointer("/rejected/bad_nonce").is_none(),
        "nonces are managed locally; no fork, so never a bad_nonce: {v:#}"
    );
    assert!(v.pointer("/slots/fill").is_some(), "{v:#}");
    assert!(
        v.get("mempool")
            .and_then(Value::as_array)
            .is_some_and(|m| !m.is_empty()),
        "{v:#}"
    );
}

/// The percentiles of the latency object at `p`: all null when it is empty, else ordered
/// (0 <= p50 <= p95 <= p99 <= max). Returns its count.
fn ordered(v: &Value, p: &str) -> u64 {
    let l = v
        .pointer(p)
        .unwrap_or_else(|| panic!("{p} is missing: {v:#}"));
    let count = l["count"].as_u64().unwrap_or_else(|| panic!("{p}: {v:#}"));
    let keys = ["p50", "p95", "p99", "max"];
    if count == 0 {
        assert!(keys.iter().all(|k| l[k].is_null()), "{p}: {l}");
        return 0;
    }
    let q: Vec<f64> = keys
        .iter()
        .map(|k| l[k].as_f64().unwrap_or_else(|| panic!("{p}/{k}: {l}")))
        .collect();
    assert!(
        q[0] >= 0.0 && q.windows(2).all(|w| w[0] <= w[1]),
        "{p} not ordered: {l}"
    );
    count
}

/// The propagation and `/status` latency results are present and consistent, with `watched`
/// nodes watched (the follower, if any, is not a producer: no fork).
fn assert_measured(v: &Value, watched: usize) {
    let num = |p: &str| {
        v.pointer(p)
            .and_then(Value::as_f64)
            .unwrap_or_else(|| panic!("{p}: {v:#}"))
    };
    assert_eq!(v["version"], 2, "{v:#}");
    // /status on the observer: probed idle, under load, and before each announced block with a
    // transaction (--big-block 1).
    assert!(ordered(v, "/status_latency/idle_ms") > 0, "{v:#}");
    assert!(ordered(v, "/status_latency/load_ms") > 0, "{v:#}");
    assert!(ordered(v, "/status_latency/import_ms") > 0, "{v:#}");
    assert!(num("/status_latency/import_blocks") > 0.0, "{v:#}");
    assert!(num("/status_latency/load_p99_vs_idle") > 0.0, "{v:#}");
    assert!(num("/status_latency/import_p99_vs_idle") > 0.0, "{v:#}");
    // Block propagation: the blocks produced during the load, with transactions among them.
    let nodes = v.pointer("/propagation/nodes").and_then(Value::as_array);
    assert_eq!(nodes.map(Vec::len), Some(watched), "{v:#}");
    let (blocks, big) = (num("/propagation/blocks"), num("/propagation/big_blocks"));
    assert!(blocks > 0.0 && big > 0.0 && big <= blocks, "{v:#}");
    let all = ordered(v, "/propagation/all_ms");
    let large = ordered(v, "/propagation/big_ms");
    assert_eq!(
        ordered(v, "/propagation/via_fork_switch_ms"),
        0,
        "one producer: {v:#}"
    );
    if watched == 1 {
        assert_eq!(all, 0, "one node: nothing to propagate to: {v:#}");
        return;
    }
    assert!(all > 0 && large > 0 && large <= all, "{v:#}");
    assert_eq!(ordered(v, "/propagation/all_slots"), all, "{v:#}");
    assert_eq!(ordered(v, "/propagation/big_slots"), large, "{v:#}");
    let slot_ms = num("/slots/slot_ms");
    let in_slots = num("/propagation/all_slots/max") * slot_ms;
    assert!(
        (in_slots - num("/propagation/all_ms/max")).abs() < 1e-6 * slot_ms.max(1.0),
        "{v:#}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_loads_a_devnet_and_reports_accepted_included_latency_and_no_loss() {
    ppd_bin();
    let dir = tempfile::tempdir().unwrap();
    let node = devnet(dir.path()).await;
    let (v, stderr) =
        tokio::task::block_in_place(|| bench(&node, dir.path(), &["--duration", "4"]));
    assert_healthy(&v);
    assert_eq!(v["batch_form"], "unused", "{v:#}");
    assert!(
        v.pointer("/included_tps")
            .and_then(Value::as_f64)
            .is_some_and(|t| t > 0.0),
        "{v:#}"
    );
    assert!(stderr.contains("] accepted "), "progress lines: {stderr}");
    assert!(
        stderr.contains("propagation p50") && stderr.contains("/status p99 idle"),
        "progress lines: {stderr}"
    );
    assert_measured(&v, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_batches_when_the_node_takes_arrays_and_times_blocks_reaching_a_follower() {
    ppd_bin();
    let dir = tempfile::tempdir().unwrap();
    let (node, follower) = devnet_with_follower(dir.path()).await;
    let (v, _) = tokio::task::block_in_place(|| {
        let extra = ["--duration", "3", "--batch", "4", "--watch", &follower.url];
        bench(&node, dir.path(), &extra)
    });
    // The follower's blocks come from the producer: their propagation is timed.
    assert_measured(&v, 2);
    assert_healthy(&v);
    let form = v["batch_form"].as_str().unwrap();
    assert!(
        form == "supported" || form == "unsupported",
        "the array form was tried: {v:#}"
    );
}
