//! What an operator deploys around `ppd`: the Prometheus alert rules, the Grafana dashboard and
//! the systemd unit in `contrib/`, checked against real tools and a real running `ppd`:
//! * `promtool check rules` accepts the alert rules (in CI a missing promtool is a failure);
//! * every series an alert uses is exposed by a running `ppd`, and every metric a dashboard
//!   panel uses is declared by it;
//! * the metrics move: a two-node testnet produces, receives, relays and validates blocks;
//! * `/health` says `ready` on a synced node and `503 no_peers` once its only peer is gone;
//! * `systemd-analyze verify` accepts the unit (skipped, with a message, where it is missing).

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use pp_integration_tests::{get_json, http, ppd_bin, wait_all_up, wait_for, wait_height, Testnet};
use serde_json::Value;

fn repo_file(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(rel)
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(repo_file(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// Whether `tool` runs at all (`tool --version`).
fn have(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The metric names (`pp_…`, `process_…`) mentioned in `text`.
fn metric_names(text: &str) -> BTreeSet<String> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|t| t.starts_with("pp_") || t.starts_with("process_"))
        .map(str::to_string)
        .collect()
}

/// The `expr` strings of a Grafana dashboard.
fn dashboard_exprs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                match (k.as_str(), x) {
                    ("expr", Value::String(s)) => out.push(s.clone()),
                    _ => dashboard_exprs(x, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| dashboard_exprs(x, out)),
        _ => {}
    }
}

/// Whether the exposition has a sample line of the series `name`.
fn has_sample(exposition: &str, name: &str) -> bool {
    exposition.lines().any(|l| {
        !l.starts_with('#')
            && l.strip_prefix(name)
                .is_some_and(|r| r.starts_with('{') || r.starts_with(' '))
    })
}

/// Whether the exposition declares the metric family of the series `name` (a family with labels
/// has no sample until its first label set is used).
fn has_family(exposition: &str, name: &str) -> bool {
    let base = ["_total", "_bucket", "_sum", "_count"]
        .iter()
        .find_map(|s| name.strip_suffix(s))
        .unwrap_or(name);
    exposition.contains(&format!("# TYPE {base} "))
}

/// The value of the unlabelled series `name`, or the sum over its label sets.
fn value(exposition: &str, name: &str) -> f64 {
    exposition
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let rest = l.strip_prefix(name)?;
            let v = match rest.strip_prefix('{') {
                Some(labelled) => labelled.split_once("} ")?.1,
                None => rest.strip_prefix(' ')?,
            };
            v.trim().parse::<f64>().ok()
        })
        .sum()
}

#[test]
fn alert_rules_pass_promtool() {
    if !have("promtool") {
        assert!(
            std::env::var_os("CI").is_none(),
            "promtool is missing in CI: .ci/run installs it (Debian package `prometheus`)"
        );
        println!("SKIPPED alert_rules_pass_promtool: promtool not installed (apt-get install prometheus)");
        return;
    }
    let out = Command::new("promtool")
        .args(["check", "rules"])
        .arg(repo_file("contrib/prometheus/alerts.yml"))
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool refused the rules: {text}");
    assert!(text.contains("SUCCESS"), "{text}");
}

#[test]
fn alert_rules_name_the_issues_alerts() {
    let rules = read("contrib/prometheus/alerts.yml");
    for alert in [
        "PpdTipStalled",
        "PpdNoPeers",
        "PpdMissedSlots",
        "PpdStorageFailed",
    ] {
        assert!(rules.contains(&format!("alert: {alert}")), "{alert}");
    }
}

#[test]
fn systemd_unit_passes_systemd_analyze_verify() {
    if !have("systemd-analyze") {
        println!(
            "SKIPPED systemd_unit_passes_systemd_analyze_verify: systemd-analyze not installed"
        );
        return;
    }
    // `verify` checks that ExecStart's binary exists: point it at the real, freshly built ppd.
    let unit = read("contrib/systemd/ppd.service");
    assert!(unit.contains("ExecStart=/usr/local/bin/ppd run"), "{unit}");
    for needed in [
        "DynamicUser=yes",
        "StateDirectory=ppd",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "Restart=on-failure",
    ] {
        assert!(unit.contains(needed), "{needed} missing");
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ppd.service");
    let bin = ppd_bin().display().to_string();
    std::fs::write(&path, unit.replace("/usr/local/bin/ppd", &bin)).unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "systemd-analyze verify: {stderr}");
    // Warnings about this unit (not about the host's other units) are failures too.
    let ours: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("ppd.service"))
        .collect();
    assert!(ours.is_empty(), "{ours:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_ppd_exposes_every_series_the_alerts_and_dashboard_use() {
    ppd_bin();
    let mut net = Testnet::write(2, &["--slot-ms", "250", "--start-delay-ms", "1500"]).unwrap();
    net.start_all().unwrap();
    let client = http();
    let urls = net.urls();
    wait_all_up(&client, &urls, Duration::from_secs(60))
        .await
        .unwrap();
    wait_height(&client, &urls, 6, Duration::from_secs(90))
        .await
        .unwrap();

    // Node 1 has produced, received (and relayed) blocks; wait until each counter shows it.
    let metrics_url = format!("{}/metrics", urls[1]);
    let text = wait_for(
        "node1's block counters to move",
        Duration::from_secs(60),
        Duration::from_millis(200),
        || async {
            let t = client
                .get(&metrics_url)
                .send()
                .await
                .ok()?
                .text()
                .await
                .ok()?;
            let moved = [
                "pp_blocks_produced_total",
                "pp_blocks_received_total",
                "pp_blocks_relayed_total",
                "pp_slots_led_total",
                "pp_block_validation_seconds_count",
                "pp_block_propagation_seconds_count",
            ]
            .iter()
            .all(|n| value(&t, n) >= 1.0);
            moved.then_some(t)
        },
    )
    .await
    .unwrap();

    let rules = read("contrib/prometheus/alerts.yml");
    let alert_names = metric_names(&rules);
    assert!(alert_names.len() >= 6, "{alert_names:?}");
    let missing: Vec<&String> = alert_names
        .iter()
        .filter(|n| !has_sample(&text, n))
        .collect();
    assert!(
        missing.is_empty(),
        "series used by alerts.yml missing from /metrics: {missing:?}\n{text}"
    );

    let dash: Value = serde_json::from_str(&read("contrib/grafana/ppd.json")).unwrap();
    let mut exprs = Vec::new();
    dashboard_exprs(&dash, &mut exprs);
    assert!(exprs.len() >= 15, "{exprs:?}");
    let dash_names = metric_names(&exprs.join("\n"));
    let missing: Vec<&String> = dash_names
        .iter()
        .filter(|n| !has_sample(&text, n) && !has_family(&text, n))
        .collect();
    assert!(
        missing.is_empty(),
        "metrics used by ppd.json missing from /metrics: {missing:?}\n{text}"
    );

    // The values are the node's.
    let status = get_json(&client, &format!("{}/status", urls[1]))
        .await
        .unwrap();
    assert!(value(&text, "pp_build_info") == 1.0, "{text}");
    assert!(
        text.contains(&format!(
            "pp_build_info{{version=\"{}\"}} 1",
            status["version"].as_str().unwrap()
        )),
        "{text}"
    );
    assert_eq!(value(&text, "pp_slot_duration_seconds"), 0.25);
    assert_eq!(value(&text, "pp_p2p_enabled"), 1.0);
    assert_eq!(value(&text, "pp_peers_connected"), 1.0, "{text}");
    assert!(
        value(&text, "process_resident_memory_bytes") > 1e6,
        "{text}"
    );
    assert!(value(&text, "process_open_fds") >= 3.0, "{text}");
    // A nearly idle node may not have used one clock tick (10 ms) yet: the counter's movement is
    // checked in pp-server's `process_metrics` unit test.
    assert!(has_sample(&text, "process_cpu_seconds_total"), "{text}");
    assert!(value(&text, "pp_sync_target_height") >= 6.0, "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_is_ready_when_synced_and_names_the_reason_when_not() {
    ppd_bin();
    let mut net = Testnet::write(2, &["--slot-ms", "250", "--start-delay-ms", "1500"]).unwrap();
    net.start_all().unwrap();
    let client = http();
    let urls = net.urls();
    wait_all_up(&client, &urls, Duration::from_secs(60))
        .await
        .unwrap();
    wait_height(&client, &urls, 4, Duration::from_secs(90))
        .await
        .unwrap();
    for url in &urls {
        let ready = wait_for(
            &format!("{url}/health to say ready"),
            Duration::from_secs(30),
            Duration::from_millis(100),
            || async {
                let r = client.get(format!("{url}/health")).send().await.ok()?;
                let ok = r.status() == 200;
                let v: Value = r.json().await.ok()?;
                (ok && v["status"] == "ready").then_some(v)
            },
        )
        .await
        .unwrap();
        assert_eq!(ready["peers"], 1, "{ready}");
        assert_eq!(ready["syncing"], false, "{ready}");
        let s = get_json(&client, &format!("{url}/status")).await.unwrap();
        assert_eq!(s["version"], env!("CARGO_PKG_VERSION"), "{s}");
        assert!(s["uptime_s"].as_u64().is_some(), "{s}");
        assert!(s["tip_age_ms"].as_u64().unwrap() < 10_000, "{s}");
        assert_eq!(s["syncing"], false, "{s}");
        assert!(s["best_peer_height"].as_u64().is_some(), "{s}");
    }

    // Node 0 goes away: node 1 still has its address, so without a peer it is not ready.
    net.nodes[0].kill9();
    let v = wait_for(
        "node1's /health to say no_peers",
        Duration::from_secs(30),
        Duration::from_millis(100),
        || async {
            let r = client
                .get(format!("{}/health", urls[1]))
                .send()
                .await
                .ok()?;
            let code = r.status();
            let v: Value = r.json().await.ok()?;
            (code == 503 && v["reason"] == "no_peers").then_some(v)
        },
    )
    .await
    .unwrap();
    assert_eq!(v["status"], "not_ready", "{v}");
    assert_eq!(v["error"]["code"], "not_ready", "{v}");
    assert_eq!(v["peers"], 0, "{v}");
    // Liveness is unaffected: the process serves.
    let live = client
        .get(format!("{}/health?live", urls[1]))
        .send()
        .await
        .unwrap();
    assert_eq!(live.status(), 200);
    let live: Value = live.json().await.unwrap();
    assert_eq!(live["status"], "ok", "{live}");
    let s = get_json(&client, &format!("{}/status", urls[1]))
        .await
        .unwrap();
    assert_eq!(s["best_peer_height"], Value::Null, "{s}");
}
