//! docs/http-api.md's examples are true: every `$ curl …` (and `$ ppd …`) example in it is run
//! against real `ppd` nodes, and the documented answer must have the status, the error code and
//! the shape (the same keys, recursively, with values of the same JSON types) of the real one.
//!
//! Examples may abbreviate: `…` inside strings, `{...}` for an object whose keys are not shown,
//! `,...}` for "more keys". Documented `null` accepts any value (e.g. a transaction's `block`).
//! Requests are run as documented with this network's values put in: the node's address, its
//! admin token, its funded account for the docs' devnet account, a free peer's P2P address for
//! `127.0.0.1:9000`, and transactions re-signed for this network with the documented fields
//! (amount, fee, nonce relative to the sender's next nonce). Examples that need a state a
//! healthy node cannot be put into from outside are listed in [`SKIPPED`] with the test that
//! covers them; any other example the runner does not know fails the test.

use std::collections::BTreeMap;
use std::time::Duration;

use pp_integration_tests::{get_json, http, ppd, wait_all_up, wait_for, Testnet};
use serde_json::{json, Value};

const DOC: &str = include_str!("../../docs/http-api.md");

/// Examples not run here, by a fragment of their command and response, with the reason.
const SKIPPED: [(&str, &str); 5] = [
    (
        "storage_failed",
        "needs a failed disk: crates/pp-server/tests/storage_failure.rs",
    ),
    (
        "evicted_by_fee",
        "needs a full mempool: crates/pp-server/tests/batch_submit.rs and mempool tests",
    ),
    (
        "too_many_event_clients",
        "needs 64 open streams: crates/pp-server/tests/events.rs",
    ),
    (
        "tip_stale",
        "needs a stale tip: crates/pp-server/tests/ops_metrics.rs (and `no_peers` in tests/tests/observability.rs)",
    ),
    (
        "localhost:8080/evidence",
        "needs an equivocating producer: crates/pp-server/tests/evidence.rs",
    ),
];

/// The docs' devnet account (the node key of their examples).
const DOC_ACCOUNT: &str = "8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c";
/// The docs' peer address.
const DOC_PEER: &str = "127.0.0.1:9000";
/// The marker an abbreviated object gets.
const OPEN: &str = "\u{2026}open";

/// One `$ ...` example: the command (continuation lines joined) and the documented answer.
#[derive(Debug)]
struct Example {
    line: usize,
    command: String,
    answer: Vec<String>,
}

fn examples() -> Vec<Example> {
    let lines: Vec<&str> = DOC.lines().collect();
    let mut out = Vec::new();
    let mut in_block = false;
    let mut i = 0;
    while i < lines.len() {
        let l = lines[i];
        if l.starts_with("```") {
            in_block = !in_block;
            i += 1;
            continue;
        }
        if !(in_block && (l.starts_with("$ curl") || l.starts_with("$ ppd"))) {
            i += 1;
            continue;
        }
        let line = i + 1;
        let mut command = l[2..].to_string();
        while command.ends_with('\\') || command.matches('\'').count() % 2 == 1 {
            i += 1;
            command.push('\n');
            command.push_str(lines[i]);
        }
        i += 1;
        let mut answer = Vec::new();
        while i < lines.len()
            && !lines[i].starts_with("```")
            && !lines[i].starts_with("$ ")
            && !is_narration(lines[i])
        {
            answer.push(lines[i].to_string());
            i += 1;
        }
        out.push(Example {
            line,
            command,
            answer,
        });
    }
    out
}

/// A `# a slot later` line between two answers (not `# HELP` and the like of /metrics).
fn is_narration(line: &str) -> bool {
    line.strip_prefix("# ")
        .and_then(|r| r.chars().next())
        .is_some_and(char::is_lowercase)
}

/// Shell words of `cmd` (quotes removed, `\`-newline joined, a trailing `# comment` dropped).
fn words(cmd: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut has = false;
    let mut chars = cmd.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                has = true;
                for q in chars.by_ref() {
                    if q == '\'' {
                        break;
                    }
                    cur.push(q);
                }
            }
            '"' => {
                has = true;
                for q in chars.by_ref() {
                    if q == '"' {
                        break;
                    }
                    cur.push(q);
                }
            }
            '\\' if chars.peek() == Some(&'\n') => {
                chars.next();
            }
            '#' if !has => break,
            c if c.is_whitespace() => {
                if has {
                    out.push(std::mem::take(&mut cur));
                    has = false;
                }
            }
            c => {
                has = true;
                cur.push(c);
            }
        }
    }
    if has {
        out.push(cur);
    }
    out
}

/// A curl command: method, URL path, headers, body.
#[derive(Debug, Default)]
struct Curl {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Option<String>,
}

fn parse_curl(words: &[String]) -> Curl {
    let mut c = Curl {
        method: "GET".into(),
        ..Curl::default()
    };
    let mut it = words.iter().skip(1);
    while let Some(w) = it.next() {
        match w.as_str() {
            "-X" => c.method = it.next().cloned().unwrap_or_default(),
            "-H" => {
                let h = it.next().cloned().unwrap_or_default();
                let (k, v) = h.split_once(':').unwrap_or((&h, ""));
                c.headers
                    .push((k.trim().to_lowercase(), v.trim().to_string()));
            }
            "-d" => {
                c.body = it.next().cloned();
                if c.method == "GET" {
                    c.method = "POST".into();
                }
            }
            w if w.starts_with('-') => {}
            w => {
                let rest = w
                    .trim_start_matches("http://")
                    .trim_start_matches("localhost:8080")
                    .trim_start_matches("127.0.0.1:8080");
                c.path = rest.to_string();
            }
        }
    }
    // curl's default for -d.
    if c.body.is_some() && !c.headers.iter().any(|(k, _)| k == "content-type") {
        c.headers.push((
            "content-type".into(),
            "application/x-www-form-urlencoded".into(),
        ));
    }
    c
}

/// The documented answer: status (if an `HTTP/1.1` line is shown) and body text.
fn documented(answer: &[String]) -> (Option<u16>, String) {
    let mut status = None;
    let mut body = Vec::new();
    for l in answer {
        if let Some(rest) = l.strip_prefix("HTTP/1.1 ") {
            status = rest.split_whitespace().next().and_then(|s| s.parse().ok());
        } else {
            body.push(l.trim());
        }
    }
    (status, body.join("\n"))
}

/// Parses documented JSON, marking abbreviated objects.
fn doc_json(text: &str) -> Result<Value, String> {
    let t = text
        .replace("{...}", &format!("{{\"{OPEN}\":true}}"))
        .replace(",...}", &format!(",\"{OPEN}\":true}}"))
        .replace(",...,", &format!(",\"{OPEN}\":true,"));
    serde_json::from_str(&t).map_err(|e| format!("documented answer is not JSON ({e}): {text}"))
}

/// Whether `actual` has the shape of `doc` (see the module docs).
fn same_shape(doc: &Value, actual: &Value, at: &str) -> Result<(), String> {
    match (doc, actual) {
        // Documented null: the value may be absent for now (e.g. a pending transaction's
        // block); an answered null: a value not known yet (e.g. a peer's round trip).
        (Value::Null, _) | (Value::String(_) | Value::Number(_) | Value::Bool(_), Value::Null) => {
            Ok(())
        }
        (Value::Object(d), Value::Object(a)) => {
            let open = d.contains_key(OPEN);
            for (k, dv) in d.iter().filter(|(k, _)| *k != OPEN) {
                let av = a
                    .get(k)
                    .ok_or_else(|| format!("{at}.{k}: documented, not answered"))?;
                same_shape(dv, av, &format!("{at}.{k}"))?;
            }
            if !open {
                if let Some(k) = a.keys().find(|k| !d.contains_key(*k)) {
                    return Err(format!("{at}.{k}: answered, not documented"));
                }
            }
            Ok(())
        }
        (Value::Array(d), Value::Array(a)) => {
            for (i, (dv, av)) in d.iter().zip(a).enumerate() {
                same_shape(dv, av, &format!("{at}[{i}]"))?;
            }
            Ok(())
        }
        (Value::String(_), Value::String(_))
        | (Value::Number(_), Value::Number(_))
        | (Value::Bool(_), Value::Bool(_)) => Ok(()),
        _ => Err(format!("{at}: documented {doc}, answered {actual}")),
    }
}

/// The network the examples run on, and what they need from it.
struct Net {
    net: Testnet,
    client: reqwest::Client,
    base: String,
    token: String,
    key: pp_ledger::KeyPair,
    genesis_hash: pp_ledger::Hash,
    free_peer: String,
    /// The last transaction submitted by a single-transaction example.
    last_tx: Option<pp_ledger::Transaction>,
}

impl Net {
    async fn next_nonce(&self) -> u64 {
        let me = self.key.public().to_hex();
        get_json(&self.client, &format!("{}/accounts/{me}", self.base))
            .await
            .unwrap()["pending_nonce"]
            .as_u64()
            .unwrap()
    }

    /// A documented transaction object re-signed for this network (others left as they are).
    fn resign(&self, v: &Value, base_nonce: u64) -> Value {
        if v.get("signature").is_none() {
            return v.clone();
        }
        let to = v["to"]
            .as_str()
            .and_then(|s| pp_ledger::PublicKey::from_hex(s).ok())
            .unwrap_or(pp_ledger::PublicKey([7u8; 32]));
        let tx = pp_ledger::Transaction::transfer(
            &self.key,
            to,
            v["amount"].as_u64().unwrap(),
            v["fee"].as_u64().unwrap(),
            base_nonce + v["nonce"].as_u64().unwrap(),
            &self.genesis_hash,
        );
        serde_json::to_value(&tx).unwrap()
    }

    /// The request body, with this network's values.
    async fn body(&mut self, body: &str) -> String {
        if body == "@same-tx-again.json" {
            let tx = self
                .last_tx
                .clone()
                .expect("no transaction submitted before");
            let id = tx.id().to_hex();
            // "after it was included"
            wait_for(
                "the transaction to be included",
                Duration::from_secs(30),
                Duration::from_millis(100),
                || async {
                    let v = get_json(&self.client, &format!("{}/transactions/{id}", self.base))
                        .await
                        .ok()?;
                    (v["status"] == "included").then_some(())
                },
            )
            .await
            .unwrap();
            return serde_json::to_string(&tx).unwrap();
        }
        let body = body
            .replace(DOC_PEER, &self.free_peer)
            .replace(DOC_ACCOUNT, &self.key.public().to_hex());
        let Ok(v) = serde_json::from_str::<Value>(&body) else {
            return body;
        };
        let base = self.next_nonce().await;
        match &v {
            Value::Array(items) => {
                Value::Array(items.iter().map(|t| self.resign(t, base)).collect()).to_string()
            }
            Value::Object(_) if v.get("signature").is_some() => {
                let t = self.resign(&v, base);
                self.last_tx = Some(serde_json::from_value(t.clone()).unwrap());
                t.to_string()
            }
            _ => body,
        }
    }

    fn path(&self, path: &str) -> String {
        let mut p = path.replace(DOC_ACCOUNT, &self.key.public().to_hex());
        if let Some(tx) = &self.last_tx {
            p = p.replace(
                "92ed29171915eb8a4c0ba7affda67eb15a37404c9e589eb676b3d10199cf9c34",
                &tx.id().to_hex(),
            );
        }
        p
    }
}

async fn start() -> Net {
    pp_integration_tests::ppd_bin();
    let mut net = Testnet::write(3, &["--slot-ms", "500", "--start-delay-ms", "500"]).unwrap();
    // Nodes 1 and 2 dial nobody: the examples connect them through the API.
    for i in 1..3 {
        let cfg = net.node_dir(i).join("ppd.toml");
        let text = std::fs::read_to_string(&cfg).unwrap();
        let kept: Vec<&str> = text.lines().filter(|l| !l.starts_with("peers")).collect();
        std::fs::write(&cfg, kept.join("\n") + "\n").unwrap();
    }
    net.start_all().unwrap();
    let client = http();
    wait_all_up(&client, &net.urls(), Duration::from_secs(30))
        .await
        .unwrap();
    let base = net.nodes[0].url.clone();
    let token = std::fs::read_to_string(net.node_dir(0).join("admin.token"))
        .unwrap()
        .trim()
        .to_string();
    // node0's funded stakeholder key (a praos testnet's cold key; on the devnet of the docs,
    // the node key is that key).
    let key = pp_server::keys::load_key_file(&net.account_key(0)).unwrap();
    let st = get_json(&client, &format!("{base}/status")).await.unwrap();
    let genesis_hash = pp_ledger::Hash::from_hex(st["genesis_hash"].as_str().unwrap()).unwrap();
    // One connected peer (node1) so that /peers lists one; node2 is left for `POST /peers`.
    let p2p = |i: u16| format!("127.0.0.1:{}", net.p2p_base + i);
    let res = client
        .post(format!("{base}/peers"))
        .bearer_auth(&token)
        .json(&json!({ "addr": p2p(1) }))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{:?}", res.text().await);
    // Blocks 1 and 2 exist (the examples read them).
    wait_for(
        "height 2",
        Duration::from_secs(30),
        Duration::from_millis(100),
        || async {
            let h = get_json(&client, &format!("{base}/status")).await.ok()?["height"].as_u64()?;
            (h >= 2).then_some(())
        },
    )
    .await
    .unwrap();
    let free_peer = p2p(2);
    Net {
        net,
        client,
        base,
        token,
        key,
        genesis_hash,
        free_peer,
        last_tx: None,
    }
}

/// Runs a `curl` example; `Err` says what differs.
async fn run_curl(n: &mut Net, ex: &Example, words: &[String]) -> Result<(), String> {
    let c = parse_curl(words);
    let (doc_status, doc_body) = documented(&ex.answer);
    let url = format!("{}{}", n.base, n.path(&c.path));
    // The stream itself; `/events?types=...` examples are plain error answers.
    if c.path == "/events" {
        return check_events(n, &doc_body).await;
    }
    let mut req = n
        .client
        .request(c.method.parse().map_err(|e| format!("{e}"))?, &url);
    for (k, v) in &c.headers {
        let v = v.replace("$(cat ppd-data/admin.token)", &n.token);
        req = req.header(k, v);
    }
    if let Some(b) = &c.body {
        req = req.body(n.body(b).await);
    }
    let res = req.send().await.map_err(|e| e.to_string())?;
    let status = res.status().as_u16();
    let text = res.text().await.map_err(|e| e.to_string())?;
    if c.path == "/metrics" {
        for l in doc_body
            .lines()
            .filter(|l| !l.starts_with('#') && *l != "...")
        {
            let name = l.split_whitespace().next().unwrap_or("");
            if !text
                .lines()
                .any(|a| a.split_whitespace().next() == Some(name))
            {
                return Err(format!("metric {name} not in /metrics"));
            }
        }
        return Ok(());
    }
    let actual: Value = serde_json::from_str(&text).map_err(|_| format!("not JSON: {text}"))?;
    let doc = doc_json(&doc_body)?;
    let doc_code = doc.pointer("/error/code");
    match (doc_status, doc_code) {
        (Some(s), _) if s != status => return Err(format!("status {status}, documented {s}")),
        (None, None) if !(200..300).contains(&status) => {
            return Err(format!("status {status}: {text}"))
        }
        _ => {}
    }
    if let Some(code) = doc_code {
        if actual.pointer("/error/code") != Some(code) {
            return Err(format!("answered {text}, documented code {code}"));
        }
        return Ok(());
    }
    same_shape(&doc, &actual, "$").map_err(|e| format!("{e}\nanswered: {text}"))
}

/// `curl -N /events`: the first `block` event has the documented keys.
async fn check_events(n: &Net, doc_body: &str) -> Result<(), String> {
    let documented: BTreeMap<String, Value> = doc_body
        .lines()
        .zip(doc_body.lines().skip(1))
        .filter(|(e, _)| e.starts_with("event: "))
        .map(|(e, d)| {
            let data = d.strip_prefix("data: ").unwrap_or("null");
            (
                e[7..].to_string(),
                serde_json::from_str(data).unwrap_or(Value::Null),
            )
        })
        .collect();
    let doc_block = documented.get("block").ok_or("no documented block event")?;
    let mut res = n
        .client
        .get(format!("{}/events", n.base))
        .timeout(Duration::from_secs(20))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let mut buf = String::new();
    for _ in 0..1_000 {
        let chunk = res.chunk().await.map_err(|e| e.to_string())?;
        buf.push_str(&String::from_utf8_lossy(&chunk.ok_or("stream ended")?));
        if let Some(at) = buf.find("event: block\ndata: ") {
            let rest = &buf[at + 19..];
            if let Some(end) = rest.find('\n') {
                let actual: Value =
                    serde_json::from_str(&rest[..end]).map_err(|e| e.to_string())?;
                return same_shape(doc_block, &actual, "block");
            }
        }
    }
    Err("no block event".into())
}

/// Runs a `ppd` example: it succeeds, and prints what is documented (hex values aside).
fn run_ppd(n: &Net, ex: &Example, words: &[String]) -> Result<(), String> {
    // The docs' `ppd-data/node.key` is the devnet's funded producer key: here node0's
    // stakeholder key.
    let key = n.net.account_key(0).display().to_string();
    let args: Vec<String> = words[1..]
        .iter()
        .map(|w| match w.as_str() {
            "ppd-data/node.key" => key.clone(),
            "http://127.0.0.1:8080" => n.base.clone(),
            w => w.to_string(),
        })
        .collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = ppd(&args).map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!("{out:?}"));
    }
    let mask = |s: &str| -> String {
        s.split_whitespace()
            .map(|w| if w.len() == 64 { "<hex>" } else { w })
            .collect::<Vec<_>>()
            .join(" ")
    };
    let (_, doc) = documented(&ex.answer);
    if mask(&out.stdout) != mask(&doc) {
        return Err(format!("printed {:?}, documented {doc:?}", out.stdout));
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_example_in_http_api_md_matches_a_running_node() {
    let test = async {
        let mut n = start().await;
        let mut failures = Vec::new();
        let mut ran = 0;
        for ex in examples() {
            let text = format!("{}\n{}", ex.command, ex.answer.join("\n"));
            if SKIPPED.iter().any(|(frag, _)| text.contains(frag)) {
                continue;
            }
            let w = words(&ex.command);
            let r = match w.first().map(String::as_str) {
                Some("curl") => run_curl(&mut n, &ex, &w).await,
                Some("ppd") => run_ppd(&n, &ex, &w),
                _ => Err("neither curl nor ppd".into()),
            };
            ran += 1;
            if let Err(e) = r {
                failures.push(format!(
                    "docs/http-api.md:{}: {}\n  {e}",
                    ex.line,
                    ex.command.lines().next().unwrap_or("")
                ));
            }
        }
        assert!(ran >= 20, "only {ran} examples found");
        assert!(failures.is_empty(), "{}", failures.join("\n"));
        eprintln!("{ran} examples checked");
    };
    tokio::time::timeout(Duration::from_secs(240), test)
        .await
        .expect("test exceeded 240 s");
}

#[test]
fn the_shape_check_catches_missing_extra_and_mistyped_keys() {
    let doc = doc_json(r#"{"a":1,"b":{"c":"x"},"d":null}"#).unwrap();
    assert!(same_shape(&doc, &json!({"a":2,"b":{"c":"y"},"d":[1]}), "$").is_ok());
    assert!(same_shape(&doc, &json!({"a":2,"b":{"c":"y"}}), "$").is_err());
    assert!(same_shape(&doc, &json!({"a":2,"b":{"c":"y"},"d":1,"e":0}), "$").is_err());
    assert!(same_shape(&doc, &json!({"a":"2","b":{"c":"y"},"d":1}), "$").is_err());
    let open = doc_json(r#"{"a":1,"b":{...},...}"#).unwrap();
    assert!(same_shape(&open, &json!({"a":2,"b":{"z":1},"e":0}), "$").is_ok());
    assert_eq!(
        words("curl -s -X POST x -H 'A: b' -d '{\n \"k\": 1\n}'  # note"),
        [
            "curl",
            "-s",
            "-X",
            "POST",
            "x",
            "-H",
            "A: b",
            "-d",
            "{\n \"k\": 1\n}"
        ]
    );
}
