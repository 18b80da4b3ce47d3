//! The `ppd` command line of issue 11, as a user meets it, with real `ppd` processes on loopback:
//! the built-in devnet and its dev keys, the client commands in text and JSON (`account`, `tx
//! transfer|bond|unbond|status` with `--wait`, `block`, `status`, `peers`, `bans`), their errors
//! (node down, unknown account, bad key file), `purge`, `completions`, `man`, host names,
//! `PPD_*` variables, JSON logs, and start-up errors that name their address and leave no data
//! dir behind.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use pp_integration_tests::{
    free_port_block, get_json, http, ppd, ppd_bin, run_bounded, status, wait_all_up, wait_for,
    CliOutput, Node, CLI_TIMEOUT,
};
use serde_json::Value;

/// `ppd ARGS` with extra environment variables.
fn ppd_env(args: &[&str], env: &[(&str, &str)]) -> CliOutput {
    let mut all = vec![("RUST_LOG", "warn")];
    all.extend_from_slice(env);
    run_bounded(ppd_bin(), args, &all, CLI_TIMEOUT).unwrap()
}

/// `ppd ARGS`, which must succeed; its stdout.
fn ok(args: &[&str]) -> String {
    ppd(args).unwrap().ok().unwrap().stdout
}

/// `ppd ARGS`, which must fail with exit code 1; its output.
fn fails(args: &[&str]) -> CliOutput {
    let out = ppd(args).unwrap();
    assert_eq!(out.status.code(), Some(1), "{args:?} must exit 1: {out:?}");
    out
}

/// Several pretty-printed JSON documents, one after another.
fn json_docs(s: &str) -> Vec<Value> {
    serde_json::Deserializer::from_str(s)
        .into_iter::<Value>()
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("not JSON documents: {e}: {s}"))
}

fn dev_account(name: &str) -> String {
    pp_server::dev_key(name).public().to_hex()
}

/// A `ppd` process with its own environment, killed when dropped (the log tail is printed if the
/// test panics).
struct Daemon {
    child: Option<Child>,
    log: PathBuf,
}

impl Daemon {
    fn spawn(args: &[&str], env: &[(&str, &str)], log: &Path) -> Daemon {
        let file = File::create(log).unwrap();
        let child = Command::new(ppd_bin())
            .args(args)
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .unwrap();
        Daemon {
            child: Some(child),
            log: log.to_path_buf(),
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("----- {} -----\n{}", self.log.display(), self.log_text());
        }
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Waits until `url` has produced block `height`.
async fn wait_height(url: &str, height: u64) {
    let client = http();
    wait_for(
        &format!("{url} to reach height {height}"),
        Duration::from_secs(30),
        Duration::from_millis(100),
        || async { (status(&client, url).await.ok()?["height"].as_u64()? >= height).then_some(()) },
    )
    .await
    .unwrap();
}

/// The devnet end to end: `ppd` with no subcommand (only `--data-dir` and `--http`) runs the
/// built-in genesis with dev:alice producing; every client command in text and JSON.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_built_in_devnet_and_every_client_command_in_text_and_json() {
    ppd_bin();
    let test = async {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let port = free_port_block(1);
        let args = vec![
            "--data-dir".to_string(),
            data.display().to_string(),
            "--http".into(),
            format!("localhost:{port}"),
        ];
        let node = Node::spawn("devnet", port, &args, &dir.path().join("ppd.log")).unwrap();
        let url = node.url.clone();
        let client = http();
        wait_all_up(&client, std::slice::from_ref(&url), Duration::from_secs(30))
            .await
            .unwrap();
        wait_height(&url, 1).await;
        let n = ["--node", url.as_str()];

        // status: the node is alice, producing with her dev key; JSON is the API's object.
        let text = ok(&["status", n[0], n[1]]);
        assert!(text.contains("alice"), "{text}");
        assert!(text.contains(&dev_account("alice")), "{text}");
        let st: Value =
            serde_json::from_str(&ok(&["status", "--output", "json", n[0], n[1]])).unwrap();
        assert_eq!(st["public_key"], dev_account("alice"));
        assert_eq!(st["network"], "pp-devnet");
        let block1 = get_json(&client, &format!("{url}/blocks/1")).await.unwrap();
        assert_eq!(block1["header"]["producer"], dev_account("alice"));
        // The node wrote alice's dev key as its node.key (so a restart keeps producing).
        assert_eq!(
            std::fs::read_to_string(data.join("node.key"))
                .unwrap()
                .trim(),
            hex::encode(pp_server::dev_key("alice").secret_bytes())
        );

        // account: text for people, JSON exactly the API's answer. PPD_NODE names the node.
        let bob = dev_account("bob");
        let out = ppd_env(&["account", "dev:bob"], &[("PPD_NODE", &url)])
            .ok()
            .unwrap();
        assert!(out.stdout.contains("balance  1000000000"), "{out:?}");
        assert!(out.stdout.contains(&bob), "{out:?}");
        assert!(out.stdout.contains("pending  0 (next nonce 0)"), "{out:?}");
        let api = get_json(&client, &format!("{url}/accounts/{bob}"))
            .await
            .unwrap();
        let cli: Value =
            serde_json::from_str(&ok(&["account", &bob, "--output", "json", n[0], n[1]])).unwrap();
        assert_eq!(cli, api);

        // An unknown account: exit 1, the node's code and the account on stderr; in JSON mode the
        // API's error body on stdout.
        let nobody = "ab".repeat(32);
        let out = fails(&["account", &nobody, n[0], n[1]]);
        assert!(
            out.stderr.contains("unknown_account") && out.stderr.contains(&nobody),
            "{out:?}"
        );
        assert_eq!(out.stderr.lines().count(), 1, "{out:?}");
        let out = fails(&["account", &nobody, "--output", "json", n[0], n[1]]);
        let body: Value = serde_json::from_str(&out.stdout).unwrap();
        assert_eq!(body["error"]["code"], "unknown_account");

        // tx transfer --wait: submitted, then the block that holds it.
        let out = ok(&[
            "tx",
            "transfer",
            "--key",
            "dev:alice",
            "--to",
            "dev:charlie",
            "--amount",
            "5",
            "--wait",
            n[0],
            n[1],
        ]);
        let id = out
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("submitted transaction "))
            .unwrap_or_else(|| panic!("{out}"))
            .to_string();
        assert!(out.contains("included in block"), "{out}");
        assert!(
            out.contains(&format!(
                "transfer 5 from {} to {}",
                dev_account("alice"),
                dev_account("charlie")
            )),
            "{out}"
        );
        let charlie = get_json(
            &client,
            &format!("{url}/accounts/{}", dev_account("charlie")),
        )
        .await
        .unwrap();
        assert_eq!(
            charlie["balance"], 1_000_000_005u64,
            "--wait returned before inclusion"
        );

        // tx status, text and JSON.
        let text = ok(&["tx", "status", &id, n[0], n[1]]);
        assert!(text.contains("is included in block"), "{text}");
        let api = get_json(&client, &format!("{url}/transactions/{id}"))
            .await
            .unwrap();
        let cli: Value =
            serde_json::from_str(&ok(&["tx", "status", &id, "--output", "json", n[0], n[1]]))
                .unwrap();
        assert_eq!(cli, api);
        let out = fails(&["tx", "status", &"cd".repeat(32), n[0], n[1]]);
        assert!(out.stderr.contains("unknown_transaction"), "{out:?}");

        // block by index and by hash: JSON is the API's answer, text names the transaction.
        let index = api["block"]["index"].as_u64().unwrap().to_string();
        let hash = api["block"]["hash"].as_str().unwrap().to_string();
        let by_index: Value =
            serde_json::from_str(&ok(&["block", &index, "--output", "json", n[0], n[1]])).unwrap();
        assert_eq!(
            by_index,
            get_json(&client, &format!("{url}/blocks/{index}"))
                .await
                .unwrap()
        );
        let text = ok(&["block", &hash, n[0], n[1]]);
        assert!(
            text.contains(&hash) && text.contains("transfer 5 from"),
            "{text}"
        );
        assert!(text.contains(" UTC"), "{text}");
        // A reader that goes away (`ppd block 1 | head -1`) ends the output quietly: exit 0, no
        // panic about a broken pipe.
        let mut child = Command::new(ppd_bin())
            .args(["block", &index, n[0], n[1]])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let done = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&done.stderr);
        assert!(
            done.status.success() && !stderr.contains("panicked"),
            "{stderr}"
        );
        let out = fails(&["block", "999999999", n[0], n[1]]);
        assert!(out.stderr.contains("unknown_block"), "{out:?}");

        // bond (first bond names the stakeholder), in JSON with --wait: two documents, the
        // submission's answer and the block holding the bond.
        // The devnet is a praos network: a bond registers a VRF key (bob's development one).
        let out = ok(&[
            "tx",
            "bond",
            "--key",
            "dev:bob",
            "--id",
            "bob",
            "--amount",
            "1000",
            "--vrf-key",
            "dev:bob",
            "--wait",
            "--output",
            "json",
            n[0],
            n[1],
        ]);
        let docs = json_docs(&out);
        assert_eq!(docs.len(), 2, "{out}");
        assert!(
            docs[0]["id"].as_str().is_some_and(|s| s.len() == 64),
            "{out}"
        );
        let txs = docs[1]["transactions"].as_array().unwrap();
        assert!(
            txs.iter().any(|t| t["type"] == "bond"
                && t["stakeholder_id"] == "bob"
                && t["amount"] == 1000),
            "{out}"
        );
        // A later bond repeats the id by itself; unbond moves stake back.
        ok(&[
            "tx",
            "bond",
            "--key",
            "dev:bob",
            "--amount",
            "10",
            "--vrf-key",
            "dev:bob",
            "--wait",
            n[0],
            n[1],
        ]);
        // Without a VRF key, or with another one than the first bond registered, the node
        // refuses the bond by name; nothing is bonded.
        let out = fails(&[
            "tx", "bond", "--key", "dev:bob", "--amount", "10", n[0], n[1],
        ]);
        assert!(out.stderr.contains("missing_vrf_key"), "{out:?}");
        let out = fails(&[
            "tx",
            "bond",
            "--key",
            "dev:bob",
            "--amount",
            "10",
            "--vrf-key",
            "dev:carol",
            n[0],
            n[1],
        ]);
        assert!(out.stderr.contains("vrf_key_mismatch"), "{out:?}");
        ok(&[
            "tx", "unbond", "--key", "dev:bob", "--amount", "400", "--wait", n[0], n[1],
        ]);
        let text = ok(&["account", "dev:bob", n[0], n[1]]);
        assert!(text.contains("stake    610 (stakeholder bob)"), "{text}");
        // A first bond without --id says what to do; nothing is submitted.
        let out = fails(&[
            "tx",
            "bond",
            "--key",
            "dev:charlie",
            "--amount",
            "5",
            n[0],
            n[1],
        ]);
        assert!(out.stderr.contains("--id"), "{out:?}");
        // Unbonding more than the stake: the node's refusal.
        let out = fails(&[
            "tx", "unbond", "--key", "dev:bob", "--amount", "100000", n[0], n[1],
        ]);
        assert!(out.stderr.contains("insufficient_stake"), "{out:?}");

        // Bad key files: named once, the cause once.
        let missing = dir.path().join("nonexist.key");
        let m = missing.display().to_string();
        let out = fails(&[
            "tx", "transfer", "--key", &m, "--to", "dev:bob", "--amount", "1", n[0], n[1],
        ]);
        assert_eq!(out.stderr.matches("nonexist.key").count(), 1, "{out:?}");
        assert_eq!(out.stderr.matches("No such file").count(), 1, "{out:?}");
        let garbage = dir.path().join("garbage.key");
        std::fs::write(&garbage, "not a key").unwrap();
        let out = fails(&[
            "tx",
            "transfer",
            "--key",
            &garbage.display().to_string(),
            "--to",
            "dev:bob",
            "--amount",
            "1",
            n[0],
            n[1],
        ]);
        assert!(
            out.stderr.contains("garbage.key") && out.stderr.contains("invalid"),
            "{out:?}"
        );
        // A key with no account on the chain cannot pay.
        let out = fails(&[
            "tx",
            "transfer",
            "--key",
            "dev:nobody",
            "--to",
            "dev:bob",
            "--amount",
            "1",
            n[0],
            n[1],
        ]);
        assert!(out.stderr.contains("no account"), "{out:?}");

        // peers and bans with P2P off.
        assert_eq!(ok(&["peers", n[0], n[1]]).trim(), "no peers");
        assert_eq!(ok(&["peers", "list", n[0], n[1]]).trim(), "no peers");
        let peers: Value =
            serde_json::from_str(&ok(&["peers", "--output", "json", n[0], n[1]])).unwrap();
        assert_eq!(peers, serde_json::json!({"peers": []}));
        assert_eq!(ok(&["bans", n[0], n[1]]).trim(), "no bans");
        let bans: Value =
            serde_json::from_str(&ok(&["bans", "--output", "json", n[0], n[1]])).unwrap();
        assert_eq!(
            bans,
            get_json(&client, &format!("{url}/bans")).await.unwrap()
        );
    };
    tokio::time::timeout(Duration::from_secs(180), test)
        .await
        .expect("test exceeded 180 s");
}

/// Two devnet nodes on loopback, addressed by host name: the second joins the first's built-in
/// chain with `--peer localhost:PORT` and `--key dev:bob`; peers, bans, an HTTP port given as a
/// peer, and a peer's clean shutdown that is not logged as a failure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_devnet_node_joins_by_host_name_and_peers_bans_and_http_confusion_are_clear() {
    ppd_bin();
    let test = async {
        let dir = tempfile::tempdir().unwrap();
        let base = free_port_block(4);
        let (http_a, http_b, p2p_a, p2p_b) = (base, base + 1, base + 2, base + 3);
        let a_data = dir.path().join("a").display().to_string();
        let b_data = dir.path().join("b").display().to_string();
        let mut a = Daemon::spawn(
            &[
                "--data-dir",
                &a_data,
                "--http",
                &format!("127.0.0.1:{http_a}"),
                "--p2p",
                &format!("localhost:{p2p_a}"),
            ],
            &[],
            &dir.path().join("a.log"),
        );
        let b = Daemon::spawn(
            &[
                "run",
                "--data-dir",
                &b_data,
                "--http",
                &format!("localhost:{http_b}"),
                "--p2p",
                &format!("127.0.0.1:{p2p_b}"),
                "--peer",
                &format!("localhost:{p2p_a}"),
                "--key",
                "dev:bob",
            ],
            &[],
            &dir.path().join("b.log"),
        );
        let (url_a, url_b) = (
            format!("http://127.0.0.1:{http_a}"),
            format!("http://127.0.0.1:{http_b}"),
        );
        let client = http();
        wait_all_up(
            &client,
            &[url_a.clone(), url_b.clone()],
            Duration::from_secs(30),
        )
        .await
        .unwrap();
        // b follows a's chain: the same genesis, built in, on both.
        wait_height(&url_b, 2).await;
        let (sa, sb) = (
            status(&client, &url_a).await.unwrap(),
            status(&client, &url_b).await.unwrap(),
        );
        assert_eq!(sa["genesis_hash"], sb["genesis_hash"]);
        assert_eq!(sb["node_id"], "bob");
        assert_eq!(sb["public_key"], dev_account("bob"));

        // peers: text names alice; JSON is the API's answer (minus the counters that move).
        let nb = ["--node", url_b.as_str()];
        let text = ok(&["peers", nb[0], nb[1]]);
        assert!(
            text.contains("alice") && text.contains("outbound"),
            "{text}"
        );
        let cli: Value =
            serde_json::from_str(&ok(&["peers", "list", "--output", "json", nb[0], nb[1]]))
                .unwrap();
        assert_eq!(cli["peers"][0]["key"], dev_account("alice"));

        // bans: none, then one set through the admin API.
        assert_eq!(ok(&["bans", nb[0], nb[1]]).trim(), "no bans");
        let token = std::fs::read_to_string(dir.path().join("b/admin.token")).unwrap();
        let r = client
            .post(format!("{url_b}/bans"))
            .bearer_auth(token.trim())
            .json(&serde_json::json!({"target":"127.0.0.77","seconds":3600,"reason":"scanner"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        let text = ok(&["bans", nb[0], nb[1]]);
        assert!(
            text.starts_with("127.0.0.77 manual expires in 59m")
                || text.starts_with("127.0.0.77 manual expires in 1h"),
            "{text}"
        );
        assert!(text.trim_end().ends_with("scanner"), "{text}");
        let cli: Value =
            serde_json::from_str(&ok(&["bans", "--output", "json", nb[0], nb[1]])).unwrap();
        assert_eq!(cli["bans"][0]["target"], "127.0.0.77");

        // Dialing a's HTTP port as a peer: a clear error, not a frame-size complaint.
        let out = fails(&[
            "peers",
            "add",
            &format!("localhost:{http_a}"),
            nb[0],
            nb[1],
            "--data-dir",
            &b_data,
        ]);
        assert!(out.stderr.contains("spoke HTTP"), "{out:?}");
        assert!(!out.stderr.contains("exceeds the maximum"), "{out:?}");

        // a stops cleanly: b notes the disconnect but logs no warning or error about it.
        let pid = a.child.as_ref().unwrap().id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let status_a = a.child.as_mut().unwrap().wait().unwrap();
        assert!(status_a.success());
        wait_for(
            "b to see a leave",
            Duration::from_secs(15),
            Duration::from_millis(100),
            || async {
                (status(&client, &url_b).await.ok()?["peers"].as_u64()? == 0).then_some(())
            },
        )
        .await
        .unwrap();
        let log = b.log_text();
        let gone: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("peer disconnected"))
            .collect();
        assert!(
            !gone.is_empty()
                && gone
                    .iter()
                    .all(|l| l.contains("peer shut down") && !l.contains("error")),
            "a peer's clean shutdown must read as one: {gone:#?}"
        );
        let bad: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("WARN") || l.contains("ERROR"))
            .collect();
        assert!(
            bad.is_empty(),
            "a peer's clean shutdown logged as a failure: {bad:#?}"
        );
    };
    tokio::time::timeout(Duration::from_secs(180), test)
        .await
        .expect("test exceeded 180 s");
}

/// Every client command against a node that is down: exit 1, one line naming the URL and the
/// cause once.
#[test]
fn client_commands_against_a_node_that_is_down_say_so_once() {
    let port = free_port_block(1);
    let url = format!("http://127.0.0.1:{port}");
    let id = "ab".repeat(32);
    let commands: Vec<Vec<&str>> = vec![
        vec!["status"],
        vec!["account", "dev:alice"],
        vec![
            "tx",
            "transfer",
            "--key",
            "dev:alice",
            "--to",
            "dev:bob",
            "--amount",
            "1",
        ],
        vec!["tx", "bond", "--key", "dev:alice", "--amount", "1"],
        vec!["tx", "unbond", "--key", "dev:alice", "--amount", "1"],
        vec!["tx", "status", &id],
        vec!["block", "1"],
        vec!["peers"],
        vec!["bans"],
    ];
    for mut c in commands {
        for output in ["text", "json"] {
            c.extend_from_slice(&["--node", &url, "--output", output]);
            let out = fails(&c);
            assert_eq!(out.stderr.lines().count(), 1, "{c:?}: {out:?}");
            assert_eq!(out.stderr.matches(&url).count(), 1, "{c:?}: {out:?}");
            assert_eq!(out.stderr.matches("refused").count(), 1, "{c:?}: {out:?}");
            assert!(out.stdout.is_empty(), "{c:?}: {out:?}");
            c.truncate(c.len() - 4);
        }
    }
}

/// A taken port is named, printed once, and leaves no data dir behind (HTTP and P2P).
#[test]
fn a_port_in_use_is_named_once_and_leaves_no_data_dir() {
    ppd_bin();
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let free = free_port_block(1);
    let data = dir.path().join("data");
    let d = data.display().to_string();
    for args in [
        vec!["run", "--data-dir", &d, "--http", &addr],
        vec![
            "--data-dir",
            &d,
            "--http",
            &format!("127.0.0.1:{free}"),
            "--p2p",
            &addr,
        ],
    ] {
        let out = fails(&args);
        assert!(out.stderr.contains(&addr), "{out:?}");
        assert_eq!(out.stderr.matches("in use").count(), 1, "{out:?}");
        assert_eq!(out.stderr.lines().count(), 1, "{out:?}");
        assert!(
            !data.exists(),
            "a port clash must leave no data dir: {args:?}"
        );
    }
}

/// Start-up and file errors print each cause once.
#[test]
fn file_errors_print_each_cause_once_and_keygen_says_why_it_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let g = dir.path().join("genesis.json");
    std::fs::write(&g, "{\"network\": 1}").unwrap();
    let d = dir.path().join("data").display().to_string();
    let out = fails(&[
        "run",
        "--data-dir",
        &d,
        "--genesis",
        &g.display().to_string(),
    ]);
    assert_eq!(out.stderr.matches("genesis.json").count(), 1, "{out:?}");
    assert_eq!(out.stderr.matches("invalid type").count(), 1, "{out:?}");
    assert!(!dir.path().join("data").exists());
    let out = fails(&["run", "--data-dir", &d, "--key", "nonexist.key"]);
    assert_eq!(out.stderr.matches("No such file").count(), 1, "{out:?}");
    assert!(!dir.path().join("data").exists());

    let key = dir.path().join("k.key").display().to_string();
    ok(&["keygen", "--out", &key]);
    let out = fails(&["keygen", "--out", &key]);
    assert!(out.stderr.contains("already exists"), "{out:?}");
    assert!(!out.stderr.contains("invalid"), "{out:?}");
}

/// `PPD_*` variables override the config file and flags override them; `log_format = "json"`
/// (here from PPD_LOG_FORMAT) writes one JSON object per log line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn env_overrides_the_file_flags_override_env_and_logs_can_be_json() {
    ppd_bin();
    let dir = tempfile::tempdir().unwrap();
    let base = free_port_block(3);
    let cfg = dir.path().join("ppd.toml");
    std::fs::write(
        &cfg,
        format!("data_dir = \"data\"\nhttp = \"127.0.0.1:{base}\"\n"),
    )
    .unwrap();
    let cfg_s = cfg.display().to_string();
    let env_http = format!("127.0.0.1:{}", base + 1);
    let env: [(&str, &str); 3] = [
        ("PPD_CONFIG", &cfg_s),
        ("PPD_HTTP", &env_http),
        ("PPD_LOG_FORMAT", "json"),
    ];
    let client = http();
    let url_env = format!("http://{env_http}");
    {
        let d = Daemon::spawn(&["run"], &env, &dir.path().join("env.log"));
        wait_all_up(
            &client,
            std::slice::from_ref(&url_env),
            Duration::from_secs(30),
        )
        .await
        .unwrap();
        assert!(
            get_json(&client, &format!("http://127.0.0.1:{base}/status"))
                .await
                .is_err()
        );
        wait_for(
            "a JSON log line",
            Duration::from_secs(15),
            Duration::from_millis(100),
            || async { d.log_text().contains("ppd started").then_some(()) },
        )
        .await
        .unwrap();
        for line in d.log_text().lines().filter(|l| !l.trim().is_empty()) {
            let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
            assert!(
                v.get("level").is_some() && v.get("message").is_some(),
                "{line}"
            );
        }
        // The relative data_dir of the file resolved against the file's directory.
        assert!(dir.path().join("data/genesis.json").exists());
    }
    let flag_http = format!("127.0.0.1:{}", base + 2);
    let _d = Daemon::spawn(
        &["run", "--http", &flag_http],
        &env,
        &dir.path().join("flag.log"),
    );
    wait_all_up(
        &client,
        &[format!("http://{flag_http}")],
        Duration::from_secs(30),
    )
    .await
    .unwrap();
}

/// `ppd purge` refuses without a terminal or --yes, then resets a devnet data dir; the devnet
/// that starts again has the same (built-in) genesis. An old random devnet keeps running.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purge_resets_the_devnet_and_an_old_random_devnet_keeps_working() {
    ppd_bin();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let d = data.display().to_string();
    let port = free_port_block(1);
    let url = format!("http://127.0.0.1:{port}");
    let client = http();
    let args = vec![
        "--data-dir".to_string(),
        d.clone(),
        "--http".into(),
        format!("127.0.0.1:{port}"),
    ];
    let genesis = {
        let mut node = Node::spawn("devnet", port, &args, &dir.path().join("1.log")).unwrap();
        wait_height(&url, 1).await;
        let g = status(&client, &url).await.unwrap()["genesis_hash"].clone();
        assert!(node.terminate(Duration::from_secs(15)).unwrap().success());
        // The praos devnet's short epochs leave a nonce tail below the stability window: said
        // once at start (docs/leader-election.md §10.4).
        let log = node.log_text();
        assert_eq!(
            log.matches("praos nonce window").count(),
            1,
            "settled_tail_slots=200 stability_window_slots=600 expected once: {log}"
        );
        assert!(log.contains("settled_tail_slots=200 stability_window_slots=600"));
        g
    };
    // stdin is not a terminal here: without --yes nothing is deleted.
    let out = fails(&["purge", "--data-dir", &d]);
    assert!(out.stderr.contains("--yes"), "{out:?}");
    assert!(data.join("chain.redb").exists());
    let out = ok(&["purge", "--data-dir", &d, "--yes"]);
    assert!(
        out.contains("chain.redb") && out.contains("node.key"),
        "{out}"
    );
    assert!(!data.exists());
    let out = fails(&["purge", "--data-dir", &d, "--yes"]);
    assert!(out.stderr.contains("not a directory"), "{out:?}");
    {
        let _node = Node::spawn("devnet", port, &args, &dir.path().join("2.log")).unwrap();
        wait_height(&url, 1).await;
        assert_eq!(
            status(&client, &url).await.unwrap()["genesis_hash"],
            genesis,
            "the devnet is built in"
        );
    }

    // A data dir of the old random devnet (its own key, genesis time at creation).
    let old = dir.path().join("old");
    std::fs::create_dir(&old).unwrap();
    let key = pp_ledger::KeyPair::from_seed(rand::random());
    let g = pp_ledger::Genesis::devnet("node0", key.public(), pp_integration_tests::now_ms());
    std::fs::write(old.join("genesis.json"), g.to_json_pretty()).unwrap();
    pp_server::keys::write_key(&old, &key).unwrap();
    let args = vec![
        "--data-dir".to_string(),
        old.display().to_string(),
        "--http".into(),
        format!("127.0.0.1:{port}"),
    ];
    let node = Node::spawn("old", port, &args, &dir.path().join("3.log")).unwrap();
    wait_height(&url, 1).await;
    let st = status(&client, &url).await.unwrap();
    assert_eq!(st["genesis_hash"], g.hash().to_hex());
    assert_eq!(st["public_key"], key.public().to_hex());
    let log = node.log_text();
    assert!(
        log.contains("older ppd") && log.contains("ppd purge"),
        "{log}"
    );
    drop(node);

    // A data dir of the classic built-in devnet (what ppd wrote before Praos became the
    // default: the classic genesis and alice's key as node.key) without blocks keeps running
    // that network with alice producing (its headers now carry the state root), and says how
    // to switch. Its stored blocks from before the state root cannot: see the end.
    let classic = dir.path().join("classic");
    std::fs::create_dir(&classic).unwrap();
    // It is the built-in genesis (as the praos devnet above stored it) in classic mode.
    let mut g =
        pp_ledger::Genesis::from_json(&std::fs::read(data.join("genesis.json")).unwrap()).unwrap();
    assert_eq!(g.leader_mode, pp_ledger::LeaderMode::Praos);
    g.leader_mode = pp_ledger::LeaderMode::Classic;
    g.active_slot_coeff = None;
    g.initial_stakeholders[0].vrf_key = None;
    assert_eq!(
        g.hash().to_hex(),
        "af3d7d149fb6ad3cbbd8500047d862afefcc44ee6aaca85bf9f1e95b00003b17"
    );
    std::fs::write(classic.join("genesis.json"), g.to_json_pretty()).unwrap();
    pp_server::keys::write_key(&classic, &pp_server::dev_key("alice")).unwrap();
    let args = vec![
        "--data-dir".to_string(),
        classic.display().to_string(),
        "--http".into(),
        format!("127.0.0.1:{port}"),
    ];
    let node = Node::spawn("classic", port, &args, &dir.path().join("4.log")).unwrap();
    wait_height(&url, 2).await;
    let st = status(&client, &url).await.unwrap();
    assert_eq!(st["genesis_hash"], g.hash().to_hex());
    assert_eq!(st["node_id"], "alice");
    let block: Value = get_json(&client, &format!("{url}/blocks/2")).await.unwrap();
    assert_eq!(block["header"]["producer"], dev_account("alice"));
    assert_eq!(
        block["header"]["version"],
        pp_ledger::BLOCK_VERSION,
        "a classic header: {block}"
    );
    assert!(block["header"].get("vrf").is_none(), "{block}");
    let log = node.log_text();
    assert!(
        log.contains("classic built-in devnet") && log.contains("ppd purge"),
        "{log}"
    );
    assert!(!log.contains("praos nonce window"), "classic: {log}");
    drop(node);

    // Blocks stored under the old header rules (classic version 2, before the header carried
    // the state root): the node refuses to start and names `ppd purge`, rather than replaying
    // nothing over them. (Until the state root, such a data dir kept running.)
    let storage = pp_server::Storage::open(&classic.join(pp_server::DB_FILE)).unwrap();
    let b1 = storage
        .block(&storage.best_hash(1).unwrap().unwrap())
        .unwrap()
        .unwrap();
    let mut old_block = b1.clone();
    old_block.header.version = 2;
    storage
        .commit_chain(&pp_server::storage::ChainCommit {
            blocks: vec![old_block.clone()],
            best: vec![(1, old_block.hash())],
            ..pp_server::storage::ChainCommit::default()
        })
        .unwrap();
    assert_eq!(storage.stored_header_version(1).unwrap(), Some(2));
    storage.close();
    drop(storage);
    let addr = format!("127.0.0.1:{port}");
    let out = fails(&[
        "--data-dir",
        &classic.display().to_string(),
        "--http",
        &addr,
    ]);
    assert!(
        out.stderr.contains("header version 2")
            && out.stderr.contains("version 5")
            && out.stderr.contains("ppd purge"),
        "{out:?}"
    );
}

/// Shell completions and man pages are generated by commands.
#[test]
fn completions_and_man_pages_are_generated() {
    let bash = ok(&["completions", "bash"]);
    assert!(
        bash.contains("_ppd") && bash.contains("purge") && bash.contains("completions"),
        "{bash}"
    );
    let zsh = ok(&["completions", "zsh"]);
    assert!(zsh.contains("#compdef ppd"), "{zsh}");
    let out = ppd(&["completions", "cmd.exe"]).unwrap();
    assert!(
        !out.status.success() && out.stderr.contains("invalid value"),
        "{out:?}"
    );
    let man = ok(&["man"]);
    assert!(man.contains(".TH ppd"), "{man}");
    assert!(man.contains("purge") && man.contains("account"), "{man}");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("man");
    ok(&["man", "--dir", &d.display().to_string()]);
    let page = std::fs::read_to_string(d.join("ppd-tx-transfer.1")).unwrap();
    assert!(page.contains("wait"), "{page}");
    assert!(d.join("ppd.1").exists() && d.join("ppd-purge.1").exists());
}

/// The environment of process `pid`, from `/proc/PID/environ` (NUL-separated `KEY=VALUE`).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn proc_environ(pid: u32) -> Vec<String> {
    let raw = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
    raw.split(|b| *b == 0)
        .filter(|kv| !kv.is_empty())
        .map(|kv| String::from_utf8_lossy(kv).into_owned())
        .collect()
}

/// A node started by hand runs with 2 glibc malloc arenas, the setting its syncing memory was
/// measured with (docs/testing.md, "Memory against history"): `ppd` re-executes itself, same pid
/// and arguments, with `MALLOC_ARENA_MAX=2` when the variable is unset, while an operator's own
/// value stands. `ppd light` takes 1 (next test); the other client commands are left alone.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_caps_its_malloc_arenas_unless_the_operator_chose() {
    ppd_bin();
    let dir = tempfile::tempdir().unwrap();
    let base = free_port_block(2);
    let mut nodes = Vec::new();
    for (i, arenas) in [None, Some("8")].into_iter().enumerate() {
        let http_addr = format!("127.0.0.1:{}", base + i as u16);
        let data = dir.path().join(format!("data{i}"));
        let mut cmd = Command::new(ppd_bin());
        cmd.args([
            "--data-dir",
            &data.display().to_string(),
            "--http",
            &http_addr,
        ])
        .env_remove("MALLOC_ARENA_MAX")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(File::create(dir.path().join(format!("node{i}.log"))).unwrap());
        if let Some(n) = arenas {
            cmd.env("MALLOC_ARENA_MAX", n);
        }
        let child = cmd.spawn().unwrap();
        nodes.push((child, http_addr, arenas.unwrap_or("2")));
    }
    let client = http();
    for (child, http_addr, want) in &mut nodes {
        let url = format!("http://{http_addr}");
        let up = wait_for(
            &format!("{url} to answer"),
            Duration::from_secs(30),
            Duration::from_millis(100),
            || async { status(&client, &url).await.ok().map(|_| ()) },
        )
        .await;
        let env = proc_environ(child.id());
        let cmdline = std::fs::read(format!("/proc/{}/cmdline", child.id())).unwrap();
        let _ = child.kill();
        let _ = child.wait();
        up.unwrap();
        let set: Vec<&String> = env
            .iter()
            .filter(|kv| kv.starts_with("MALLOC_ARENA_MAX="))
            .collect();
        assert_eq!(set, [&format!("MALLOC_ARENA_MAX={want}")], "{url}");
        let args: Vec<&[u8]> = cmdline
            .split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .collect();
        assert_eq!(args.len(), 5, "same arguments after the re-exec: {args:?}");
        assert_eq!(args[1], b"--data-dir");
    }
}

/// `ppd light` runs with one glibc malloc arena unless the operator chose (its anonymous memory
/// was measured with 1 and with glibc's default, docs/testing.md "Light client sizes"): same
/// re-execution as a node's, same pid and arguments.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_light_client_runs_with_one_malloc_arena() {
    let dir = tempfile::tempdir().unwrap();
    let http_addr = format!("127.0.0.1:{}", free_port_block(1));
    // No full node listens at the peer's address: the client starts, serves /status, retries.
    let mut child = Command::new(ppd_bin())
        .args(["light", "--peer", "127.0.0.1:9", "--http", &http_addr])
        .env_remove("MALLOC_ARENA_MAX")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(File::create(dir.path().join("light.log")).unwrap())
        .spawn()
        .unwrap();
    let client = http();
    let url = format!("http://{http_addr}");
    let up = wait_for(
        &format!("{url} to answer"),
        Duration::from_secs(30),
        Duration::from_millis(100),
        || async { status(&client, &url).await.ok().map(|_| ()) },
    )
    .await;
    let env = proc_environ(child.id());
    let _ = child.kill();
    let _ = child.wait();
    up.unwrap();
    let set: Vec<&String> = env
        .iter()
        .filter(|kv| kv.starts_with("MALLOC_ARENA_MAX="))
        .collect();
    assert_eq!(set, [&"MALLOC_ARENA_MAX=1".to_string()]);
}
