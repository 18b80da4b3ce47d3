//! `ppd bench` against a real single-node devnet: it funds its accounts, loads the node for a few
//! seconds, and its JSON results say what the node did (accepted and included transactions,
//! latencies, nothing acknowledged and lost, no nonce surprises).

use std::path::Path;
use std::time::Duration;

use pp_integration_tests::{free_port_block, http, ppd_bin, run_bounded, status, wait_for, Node};
use serde_json::Value;

/// The whole `ppd bench` run: funding (a few slots), load, grace, queries.
const BENCH_TIMEOUT: Duration = Duration::from_secs(120);

/// Starts a devnet node (built-in genesis, its node.key funded) and waits for its first block.
async fn devnet(dir: &Path) -> Node {
    let port = free_port_block(1);
    let args: Vec<String> = vec![
        "run".into(),
        "--data-dir".into(),
        dir.join("data").display().to_string(),
        "--http".into(),
        format!("127.0.0.1:{port}"),
    ];
    let node = Node::spawn("devnet", port, &args, &dir.join("ppd.log")).unwrap();
    let client = http();
    wait_for(
        "the devnet to produce block 1",
        Duration::from_secs(30),
        Duration::from_millis(100),
        || async {
            (status(&client, &node.url).await.ok()?["height"].as_u64()? >= 1).then_some(())
        },
    )
    .await
    .unwrap();
    node
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
        "--json",
        &json_s,
    ];
    args.extend_from_slice(extra);
    let out = run_bounded(ppd_bin(), &args, &[("RUST_LOG", "warn")], BENCH_TIMEOUT)
        .unwrap()
        .ok()
        .unwrap();
    assert!(
        out.stdout.contains("accepted"),
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
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_batches_when_the_node_takes_arrays_and_falls_back_when_not() {
    ppd_bin();
    let dir = tempfile::tempdir().unwrap();
    let node = devnet(dir.path()).await;
    let (v, _) = tokio::task::block_in_place(|| {
        bench(&node, dir.path(), &["--duration", "3", "--batch", "4"])
    });
    assert_healthy(&v);
    let form = v["batch_form"].as_str().unwrap();
    assert!(
        form == "supported" || form == "unsupported",
        "the array form was tried: {v:#}"
    );
}
