//! A network partition with real addresses: five `ppd` processes, each in its own Linux network
//! namespace, joined by veth links to two bridges — nodes 0–2 on `br0`, nodes 3–4 on `br1` — and
//! the bridges joined by one more veth link, the "trunk". Cutting the trunk (`ip link set xa
//! down`) splits the network 3|2 with both sides still connected inside; both sides produce
//! blocks; restoring the trunk must make every node converge on one chain, the shorter side
//! rolling its blocks back, and a transfer submitted on each side during the split must end up
//! included everywhere (the losing side's one re-admitted from its rolled-back blocks).
//!
//! Only namespaces and links this test creates are touched (names carry the test's pid, addresses
//! are 10.213.0.0/24 on those veth links only); the host's interfaces and routes are never
//! changed. Every namespace is deleted in a `Drop` guard, even on panic. Namespaces left by an
//! earlier run that was killed (its pid is gone) are deleted at the start, after the processes
//! still running in them are killed.
//!
//! It needs root and `ip netns` (CI runs as root); without them it prints
//! `skipped: <reason>` and passes. HTTP listens on 127.0.0.1 inside each namespace, so the test
//! talks to a node by running a tiny HTTP/1.0 client (bash's `/dev/tcp`) inside that namespace
//! with `ip netns exec`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use pp_integration_tests::{ppd, ppd_bin};
use pp_ledger::{Hash, KeyPair, Transaction};
use serde_json::Value;

/// Prefix of every namespace this test creates: `ppnetns-<pid>-...`.
const PREFIX: &str = "ppnetns";
const NODES: usize = 5;
/// Nodes below this index are on the majority bridge `br0`, the others on `br1`.
const MAJORITY: usize = 3;
const HTTP_PORT: u16 = 8080;
const P2P_PORT: u16 = 9000;
const SLOT_MS: &str = "250";
/// Bound of every "wait until".
const WAIT: Duration = Duration::from_secs(60);
/// Bound of the whole test.
const TOTAL: Duration = Duration::from_secs(200);
/// Bound of the wait for the majority's 3-block lead. The lead is a random walk: on the praos
/// testnet (f = 1/2, equal stakes) a slot has a majority leader with probability
/// 1 − (1/2)^(3/5) ≈ 0.34 and a minority leader with 1 − (1/2)^(2/5) ≈ 0.24, so it drifts by
/// about +0.1 blocks a slot (classic: +0.2) and the minority can keep up for a while (40 s seen
/// in classic mode), so this bound is generous.
const LEAD_WAIT: Duration = Duration::from_secs(120);
const POLL: Duration = Duration::from_millis(150);
/// Bound of one command (`ip ...`, one HTTP request).
const CMD_TIMEOUT: Duration = Duration::from_secs(10);

/// The address of node `i` on its veth link.
fn addr(i: usize) -> String {
    format!("10.213.0.{}", i + 1)
}

/// Runs `program args` to completion, killed after [`CMD_TIMEOUT`].
fn run(program: &str, args: &[&str]) -> std::io::Result<Output> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    // Read the pipes on threads so a large answer cannot block the child while we poll it.
    let mut out = child.stdout.take();
    let mut err = child.stderr.take();
    let out_t = std::thread::spawn(move || {
        let mut v = Vec::new();
        if let Some(o) = out.as_mut() {
            let _ = std::io::Read::read_to_end(o, &mut v);
        }
        v
    });
    let err_t = std::thread::spawn(move || {
        let mut v = Vec::new();
        if let Some(e) = err.as_mut() {
            let _ = std::io::Read::read_to_end(e, &mut v);
        }
        v
    });
    let deadline = Instant::now() + CMD_TIMEOUT;
    let status = loop {
        if let Some(s) = child.try_wait()? {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("{program} {args:?} did not finish within {CMD_TIMEOUT:?}"),
            ));
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    Ok(Output {
        status,
        stdout: out_t.join().unwrap_or_default(),
        stderr: err_t.join().unwrap_or_default(),
    })
}

/// Runs `ip ARGS`; panics with its stderr if it fails (setup must not half-succeed silently).
fn ip(args: &[&str]) {
    let out = run("ip", args).unwrap_or_else(|e| panic!("ip {args:?}: {e}"));
    assert!(
        out.status.success(),
        "ip {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Why this process cannot run the test, if it cannot.
fn cannot_run() -> Option<String> {
    match run("id", &["-u"]) {
        Ok(o) if String::from_utf8_lossy(&o.stdout).trim() == "0" => {}
        Ok(o) => {
            return Some(format!(
                "not root (uid {}); network namespaces need CAP_SYS_ADMIN",
                String::from_utf8_lossy(&o.stdout).trim()
            ))
        }
        Err(e) => return Some(format!("cannot run `id -u`: {e}")),
    }
    match run("bash", &["-c", "exit 0"]) {
        Ok(o) if o.status.success() => {}
        _ => return Some("no bash (the in-namespace HTTP client needs it)".into()),
    }
    let probe = format!("{PREFIX}-{}-probe", std::process::id());
    match run("ip", &["netns", "add", &probe]) {
        Ok(o) if o.status.success() => {
            let _ = run("ip", &["netns", "del", &probe]);
            None
        }
        Ok(o) => Some(format!(
            "`ip netns add` failed: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Err(e) => Some(format!("cannot run `ip`: {e}")),
    }
}

/// Deletes namespaces of earlier runs of this test whose process is gone (killed before its
/// guard ran). Only names with this test's prefix are considered.
fn delete_stale_namespaces() {
    let Ok(out) = run("ip", &["netns", "list"]) else {
        return;
    };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Some(name) = line.split_whitespace().next() else {
            continue;
        };
        let Some(rest) = name.strip_prefix(&format!("{PREFIX}-")) else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
            // A `ppd` that run started may still live in it (its parent was killed, so no guard
            // ran): end exactly those processes, by pid, before deleting the namespace.
            if let Ok(p) = run("ip", &["netns", "pids", name]) {
                for orphan in String::from_utf8_lossy(&p.stdout).split_whitespace() {
                    if orphan.parse::<u32>().is_ok() {
                        eprintln!("killing pid {orphan} left in stale namespace {name}");
                        let _ = run("kill", &["-KILL", orphan]);
                    }
                }
            }
            eprintln!("deleting stale namespace {name} of dead pid {pid}");
            let _ = run("ip", &["netns", "del", name]);
        }
    }
}

/// A `ppd` process inside a namespace.
struct NsNode {
    ns: String,
    log: PathBuf,
    child: Option<Child>,
}

/// Everything the test created: processes and namespaces. Dropping it kills the processes and
/// deletes the namespaces (which removes the veth links and bridges inside them).
struct Lab {
    prefix: String,
    namespaces: Vec<String>,
    nodes: Vec<NsNode>,
}

impl Lab {
    fn ns(&self, name: &str) -> String {
        format!("{}-{name}", self.prefix)
    }

    /// Creates namespace `name` (recorded first, so a failure half-way is still cleaned up).
    fn add_ns(&mut self, name: &str) -> String {
        let ns = self.ns(name);
        self.namespaces.push(ns.clone());
        ip(&["netns", "add", &ns]);
        ip(&["-n", &ns, "link", "set", "lo", "up"]);
        ns
    }

    /// The bridge namespace with `br0`, `br1` and the trunk `xa`—`xb` between them; one
    /// namespace per node with `eth0` (its address) whose other end is a port of its bridge.
    fn build(&mut self) {
        let br = self.add_ns("br");
        for b in ["br0", "br1"] {
            ip(&["-n", &br, "link", "add", b, "type", "bridge"]);
            ip(&["-n", &br, "link", "set", b, "up"]);
        }
        ip(&[
            "-n", &br, "link", "add", "xa", "type", "veth", "peer", "name", "xb",
        ]);
        ip(&["-n", &br, "link", "set", "xa", "master", "br0", "up"]);
        ip(&["-n", &br, "link", "set", "xb", "master", "br1", "up"]);
        for i in 0..NODES {
            let ns = self.add_ns(&format!("n{i}"));
            let port = format!("v{i}");
            ip(&[
                "-n", &ns, "link", "add", "eth0", "type", "veth", "peer", "name", &port, "netns",
                &br,
            ]);
            ip(&[
                "-n",
                &ns,
                "addr",
                "add",
                &format!("{}/24", addr(i)),
                "dev",
                "eth0",
            ]);
            ip(&["-n", &ns, "link", "set", "eth0", "up"]);
            let bridge = if i < MAJORITY { "br0" } else { "br1" };
            ip(&["-n", &br, "link", "set", &port, "master", bridge, "up"]);
        }
    }

    fn set_trunk(&self, up: bool) {
        let br = self.ns("br");
        ip(&[
            "-n",
            &br,
            "link",
            "set",
            "xa",
            if up { "up" } else { "down" },
        ]);
    }

    fn start(&mut self, i: usize, config: &Path) {
        let ns = self.ns(&format!("n{i}"));
        let log = config.with_file_name("ppd.log");
        let file = std::fs::File::create(&log).expect("create log");
        let bin = ppd_bin().display().to_string();
        let cfg = config.display().to_string();
        // `ip netns exec` enters the namespace and execs ppd: the child's pid is ppd's.
        let child = Command::new("ip")
            .args(["netns", "exec", &ns, &bin, "run", "--config", &cfg])
            .env(
                "RUST_LOG",
                std::env::var("PP_TEST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("log handle"))
            .stderr(file)
            .spawn()
            .expect("spawn ppd in its namespace");
        self.nodes.push(NsNode {
            ns,
            log,
            child: Some(child),
        });
    }

    /// GET `path` from node `i`'s API: an HTTP/1.0 request over bash's `/dev/tcp`, run inside
    /// the node's namespace. `None` if it does not answer 200 with JSON.
    fn get(&self, i: usize, path: &str) -> Option<Value> {
        let (code, body) = self.request(i, "GET", path, "")?;
        (code == 200).then(|| serde_json::from_str(&body).ok())?
    }

    /// One HTTP/1.0 request to node `i`; returns status code and body.
    fn request(&self, i: usize, method: &str, path: &str, body: &str) -> Option<(u16, String)> {
        let script = format!(
            "exec 3<>/dev/tcp/127.0.0.1/{HTTP_PORT} || exit 1\n\
             printf '%s %s HTTP/1.0\\r\\nHost: 127.0.0.1\\r\\nContent-Type: application/json\\r\\n\
             Content-Length: %s\\r\\n\\r\\n%s' \"$1\" \"$2\" \"${{#3}}\" \"$3\" >&3\n\
             cat <&3"
        );
        let out = run(
            "ip",
            &[
                "netns",
                "exec",
                &self.nodes[i].ns,
                "bash",
                "-c",
                &script,
                "http",
                method,
                path,
                body,
            ],
        )
        .ok()?;
        if !out.status.success() {
            return None;
        }
        let text = String::from_utf8(out.stdout).ok()?;
        let (head, body) = text.split_once("\r\n\r\n")?;
        let code = head.split_whitespace().nth(1)?.parse().ok()?;
        Some((code, body.to_string()))
    }

    fn status(&self, i: usize) -> Option<Value> {
        self.get(i, "/status")
    }

    fn height(&self, i: usize) -> Option<u64> {
        self.status(i)?["height"].as_u64()
    }

    fn block_hash(&self, i: usize, index: u64) -> Option<String> {
        Some(
            self.get(i, &format!("/blocks/{index}"))?["hash"]
                .as_str()?
                .to_string(),
        )
    }

    /// Whether node `i` holds block `hash` on its best chain (`Some(false)` also when it does
    /// not hold it at all).
    fn on_best_chain(&self, i: usize, hash: &str) -> Option<bool> {
        let (code, body) = self.request(i, "GET", &format!("/blocks/hash/{hash}"), "")?;
        match code {
            404 => Some(false),
            200 => serde_json::from_str::<Value>(&body).ok()?["on_best_chain"].as_bool(),
            _ => None,
        }
    }

    /// Panics if a node exited on its own.
    fn assert_running(&mut self) {
        for (i, n) in self.nodes.iter_mut().enumerate() {
            if let Some(Ok(Some(st))) = n.child.as_mut().map(Child::try_wait) {
                panic!("node{i} exited on its own: {st}");
            }
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let panicking = std::thread::panicking();
        for (i, n) in self.nodes.iter_mut().enumerate() {
            if let Some(mut c) = n.child.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
            if panicking {
                let text = std::fs::read_to_string(&n.log).unwrap_or_default();
                let lines: Vec<&str> = text.lines().collect();
                eprintln!(
                    "----- last log lines of node{i} ({}) -----\n{}\n-----",
                    n.ns,
                    lines[lines.len().saturating_sub(30)..].join("\n")
                );
            }
        }
        // Deleting a namespace removes the veths and bridges in it; the node namespaces go first
        // so no link is left dangling into the bridge namespace.
        for ns in self.namespaces.iter().rev() {
            match run("ip", &["netns", "del", ns]) {
                Ok(o) if o.status.success() => {}
                Ok(o) => eprintln!(
                    "cannot delete namespace {ns}: {}",
                    String::from_utf8_lossy(&o.stderr)
                ),
                Err(e) => eprintln!("cannot delete namespace {ns}: {e}"),
            }
        }
    }
}

/// Polls `f` until it yields `Some`, at most [`WAIT`] and a matching number of rounds.
fn wait_for<T>(what: &str, deadline: Instant, f: impl FnMut() -> Option<T>) -> T {
    wait_within(what, WAIT, deadline, f)
}

/// Polls `f` until it yields `Some`, at most `limit` and a matching number of rounds.
fn wait_within<T>(
    what: &str,
    limit: Duration,
    deadline: Instant,
    mut f: impl FnMut() -> Option<T>,
) -> T {
    let start = Instant::now();
    let rounds = (limit.as_millis() / POLL.as_millis()) as usize + 2;
    for _ in 0..rounds {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "the test exceeded {TOTAL:?} waiting for {what}"
        );
        if start.elapsed() > limit {
            break;
        }
        std::thread::sleep(POLL);
    }
    panic!("timed out after {limit:?} waiting for {what}");
}

/// The hash all of `nodes` hold at `index`, if they all hold the same one.
fn common_hash(lab: &Lab, nodes: &[usize], index: u64) -> Option<String> {
    let first = lab.block_hash(nodes[0], index)?;
    for &i in &nodes[1..] {
        if lab.block_hash(i, index)? != first {
            return None;
        }
    }
    Some(first)
}

/// Submits a transfer of `amount` from node `from`'s key to `to`, through node `via`; returns
/// its id (the node must answer 202 with that id).
fn submit_transfer(
    lab: &Lab,
    dir: &Path,
    from: usize,
    via: usize,
    to: &KeyPair,
    amount: u64,
) -> String {
    // The stakeholder's account key: a praos testnet keeps it in cold/, off the node; a classic
    // one is the node's node.key (as `Testnet::account_key`).
    let cold = dir.join(format!("cold/node{from}.key"));
    let path = if cold.exists() {
        cold
    } else {
        dir.join(format!("node{from}/node.key"))
    };
    let key = pp_server::keys::load_key_file(&path).expect("read the stakeholder key");
    let st = lab.status(via).expect("status");
    let genesis: Hash = st["genesis_hash"]
        .as_str()
        .and_then(|h| h.parse().ok())
        .expect("genesis_hash");
    let acct = lab
        .get(via, &format!("/accounts/{}", key.public()))
        .expect("sender account");
    let nonce = acct["pending_nonce"].as_u64().expect("pending_nonce");
    let tx = Transaction::transfer(&key, to.public(), amount, 1, nonce, &genesis);
    let body = serde_json::to_string(&tx).expect("serialize");
    let (code, answer) = lab
        .request(via, "POST", "/transactions", &body)
        .expect("POST /transactions answered");
    assert_eq!(code, 202, "node{via} refused the transfer: {answer}");
    let id = tx.id().to_hex();
    assert!(
        answer.contains(&id),
        "node{via} acknowledged {answer}, sent {id}"
    );
    id
}

#[test]
fn partitioned_namespaces_diverge_then_converge_when_the_link_is_restored() {
    if let Some(reason) = cannot_run() {
        eprintln!("skipped: {reason}");
        return;
    }
    // Build ppd before the clock starts: a cold build must not eat the test's time bound.
    ppd_bin();
    let started = Instant::now();
    let deadline = started + TOTAL;
    delete_stale_namespaces();

    // Keys and genesis from `ppd testnet`; the configs are rewritten for the namespaces: every
    // node on the same ports (each has its own network stack), P2P on its veth address, HTTP on
    // its namespace's loopback, every other node as a peer (so each side of the split stays
    // connected inside).
    let mut tmp = tempfile::tempdir().expect("tempdir");
    // PP_NETNS_KEEP=1 keeps the data dirs and logs for a look after the run.
    if std::env::var_os("PP_NETNS_KEEP").is_some_and(|v| v == "1") {
        tmp.disable_cleanup(true);
        eprintln!("keeping {}", tmp.path().display());
    }
    let dir = tmp.path().join("net");
    let dir_s = dir.display().to_string();
    ppd(&[
        "testnet",
        "--nodes",
        &NODES.to_string(),
        "--dir",
        &dir_s,
        "--base-http-port",
        "18080",
        "--base-p2p-port",
        "19000",
        "--slot-ms",
        SLOT_MS,
        "--difficulty",
        "1",
        "--start-delay-ms",
        "5000",
    ])
    .and_then(|o| o.ok())
    .expect("ppd testnet");
    let mut configs = Vec::new();
    for i in 0..NODES {
        let peers: Vec<String> = (0..NODES)
            .filter(|&j| j != i)
            .map(|j| format!("\"{}:{P2P_PORT}\"", addr(j)))
            .collect();
        let text = format!(
            "data_dir = \".\"\ngenesis = \"../genesis.json\"\nnode_id = \"node{i}\"\n\
             http = \"127.0.0.1:{HTTP_PORT}\"\np2p = \"{}:{P2P_PORT}\"\npeers = [{}]\n",
            addr(i),
            peers.join(", ")
        );
        let path = dir.join(format!("node{i}")).join("ppd.toml");
        std::fs::write(&path, text).expect("write config");
        configs.push(path);
    }

    let mut lab = Lab {
        prefix: format!("{PREFIX}-{}", std::process::id()),
        namespaces: Vec::new(),
        nodes: Vec::new(),
    };
    lab.build();
    for (i, c) in configs.iter().enumerate() {
        lab.start(i, c);
    }
    let all: Vec<usize> = (0..NODES).collect();
    let majority: Vec<usize> = (0..MAJORITY).collect();
    let minority: Vec<usize> = (MAJORITY..NODES).collect();

    // Connected: every node sees the four others, and they agree on a few blocks.
    wait_for("every node to have 4 peers", deadline, || {
        all.iter()
            .all(|&i| lab.status(i).and_then(|s| s["peers"].as_u64()) >= Some(4))
            .then_some(())
    });
    wait_for("height 3 on every node", deadline, || {
        all.iter()
            .all(|&i| lab.height(i).is_some_and(|h| h >= 3))
            .then_some(())
    });
    let before = wait_for("agreement on block 3", deadline, || {
        common_hash(&lab, &all, 3)
    });
    eprintln!("connected: block 3 is {before} on every node");

    // Split 3|2.
    let cut_height = all
        .iter()
        .filter_map(|&i| lab.height(i))
        .max()
        .expect("heights");
    lab.set_trunk(false);
    let cut_at = Instant::now();
    eprintln!("trunk down at height {cut_height}");
    // One transfer on each side, each to its own fresh account.
    let to_major = KeyPair::from_seed([0x31; 32]);
    let to_minor = KeyPair::from_seed([0x32; 32]);
    let tx_major = submit_transfer(&lab, &dir, 0, 1, &to_major, 111);
    let tx_minor = submit_transfer(&lab, &dir, 3, 4, &to_minor, 222);
    // Both sides produce on their own: each side passes the cut by 4 blocks, and the partition
    // lasts until the majority (3/5 of the stake) leads by 3 blocks, so the longest-chain rule
    // has a clear winner at the heal. (A side's lead is a random walk drifting by about 0.1
    // blocks per slot, see LEAD_WAIT; with equal stakes the minority can lead for a while, which
    // is why this waits rather than cutting for a fixed time.) Each side's tip is one all its nodes agree on, read right
    // before the heal; within the few milliseconds until the trunk is up the minority can gain
    // at most one block, so the majority still leads by two or more.
    let side_tip = |side: &[usize]| -> Option<(u64, String)> {
        let s = lab.status(side[0])?;
        let (h, tip) = (s["height"].as_u64()?, s["tip_hash"].as_str()?.to_string());
        (common_hash(&lab, side, h)? == tip).then_some((h, tip))
    };
    let ((h_major, tip_major), (h_minor, tip_minor)) = wait_within(
        "both sides 4 blocks past the cut, the majority 3 ahead",
        LEAD_WAIT,
        deadline,
        || {
            let major = side_tip(&majority)?;
            let minor = side_tip(&minority)?;
            (minor.0 >= cut_height + 4 && major.0 >= minor.0 + 3).then_some((major, minor))
        },
    );
    // The sides disagree: a real fork (the majority's block at the minority's height is another).
    let major_at_minor = lab
        .block_hash(majority[0], h_minor)
        .expect("majority block");
    assert_ne!(
        major_at_minor, tip_minor,
        "the sides did not fork during the partition (block {h_minor} is the same)"
    );
    lab.assert_running();
    eprintln!(
        "partitioned for {:.1}s: majority at {h_major} ({tip_major}), minority at {h_minor} \
         ({tip_minor})",
        cut_at.elapsed().as_secs_f64()
    );

    // Heal, then every node converges past both sides' tips.
    lab.set_trunk(true);
    let healed_at = Instant::now();
    let target = h_major.max(h_minor) + 2;
    wait_for("every node past both sides' tips", deadline, || {
        all.iter()
            .all(|&i| lab.height(i).is_some_and(|h| h >= target))
            .then_some(())
    });
    let agreed = wait_for("agreement after the heal", deadline, || {
        common_hash(&lab, &all, target)
    });
    eprintln!(
        "converged on block {target} ({agreed}) {:.1}s after the heal (majority tip was \
         {h_major}, minority {h_minor})",
        healed_at.elapsed().as_secs_f64()
    );

    // Exactly one side's blocks survive, the same on every node, and it is the longer side: the
    // minority's blocks are rolled back. (The lead is checked again right before the heal: a
    // side ahead by two or more blocks then wins by the longest-chain rule; a one-block lead
    // could be overtaken in the slot it takes to exchange tips.)
    let on_best = |tip: &str| -> Vec<bool> {
        all.iter()
            .map(|&i| wait_for("a block lookup", deadline, || lab.on_best_chain(i, tip)))
            .collect()
    };
    let major_kept = on_best(&tip_major);
    let minor_kept = on_best(&tip_minor);
    let same = |v: &[bool]| v.iter().all(|&k| k == v[0]);
    assert!(
        same(&major_kept) && same(&minor_kept),
        "nodes disagree on which side's blocks are on the best chain: majority tip {major_kept:?}, \
         minority tip {minor_kept:?}"
    );
    assert_ne!(
        major_kept[0], minor_kept[0],
        "exactly one side's tip must be on the best chain"
    );
    assert!(
        major_kept[0] && !minor_kept[0],
        "the longer (majority) side was rolled back: majority tip {h_major} kept {major_kept:?}, \
         minority tip {h_minor} kept {minor_kept:?}"
    );
    eprintln!("rolled back: the minority's blocks, on every node");

    // Both transfers end up included everywhere, in the same block: the losing side's one was
    // re-admitted from its rolled-back block and included again.
    for (id, to, amount) in [(&tx_major, &to_major, 111u64), (&tx_minor, &to_minor, 222)] {
        wait_for(
            &format!("transfer {id} included on every node"),
            deadline,
            || {
                let mut block: Option<Value> = None;
                for &i in &all {
                    let t = lab.get(i, &format!("/transactions/{id}"))?;
                    if t["status"] != "included" {
                        return None;
                    }
                    if block.as_ref().is_some_and(|b| *b != t["block"]) {
                        return None;
                    }
                    block = Some(t["block"].clone());
                }
                block
            },
        );
        for &i in &all {
            let a = wait_for("the recipient's account", deadline, || {
                lab.get(i, &format!("/accounts/{}", to.public()))
            });
            assert_eq!(a["balance"].as_u64(), Some(amount), "node{i}: {a}");
        }
    }
    lab.assert_running();
    eprintln!("done in {:.1}s", started.elapsed().as_secs_f64());
}
