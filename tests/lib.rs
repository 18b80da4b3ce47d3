//! Shared helpers for the integration tests: building and locating the `ppd` binary, running its
//! CLI commands with a deadline, spawning `ppd run` nodes that are killed when the test ends
//! (even on panic), picking free loopback ports, and polling nodes' HTTP APIs with bounds.
//!
//! Every wait here is bounded in time and in iterations, so a broken node makes a test fail with
//! a message (and the node's log tail) instead of hanging the suite.

use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _};
use serde_json::Value;

/// How long one CLI command (`ppd keygen`, `ppd tx`, ...) may take.
pub const CLI_TIMEOUT: Duration = Duration::from_secs(30);

/// The freshly built `ppd` binary. The first call in a test process runs
/// `$CARGO build --workspace --bins --tests` (cargo sets `CARGO` for tests; with
/// `PP_TEST_RELEASE=1`, `$CARGO build --release -p ppd --bin ppd`), so the tests never run a
/// stale binary; later calls return the cached path.
///
/// If `PP_PPD_BIN` is set, that file is used as is and nothing is built (e.g. to benchmark an
/// older release with this harness); the call panics if it is not a file.
pub fn ppd_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(p) = std::env::var_os("PP_PPD_BIN") {
            let p = PathBuf::from(p);
            assert!(p.is_file(), "PP_PPD_BIN={} is not a file", p.display());
            return p;
        }
        match build_bin("ppd") {
            Ok(p) => p,
            Err(e) => panic!("cannot build ppd: {e:#}"),
        }
    })
}

/// The freshly built `pp-light` binary (the light client alone, crate pp-light), built like
/// [`ppd_bin`] (`cargo build --workspace --bins --tests` builds it too; with
/// `PP_TEST_RELEASE=1`, `$CARGO build --release -p pp-light --bin pp-light`).
///
/// If `PP_LIGHT_BIN` is set, that file is used as is; else, if `PP_PPD_BIN` is set, the
/// `pp-light` beside that `ppd` (build it with `cargo build -p pp-light --bin pp-light`); the
/// call panics if the file does not exist.
pub fn pp_light_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let given = std::env::var_os("PP_LIGHT_BIN")
            .map(PathBuf::from)
            .or_else(|| {
                std::env::var_os("PP_PPD_BIN").map(|p| PathBuf::from(p).with_file_name("pp-light"))
            });
        if let Some(p) = given {
            assert!(
                p.is_file(),
                "{} is not a file (PP_LIGHT_BIN, or the pp-light beside PP_PPD_BIN: \
                 `cargo build -p pp-light --bin pp-light`)",
                p.display()
            );
            return p;
        }
        match build_bin("pp-light") {
            Ok(p) => p,
            Err(e) => panic!("cannot build pp-light: {e:#}"),
        }
    })
}

/// The freshly built `multi_node_example` binary (built like [`ppd_bin`]).
pub fn multi_node_example_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| match build_bin("multi_node_example") {
        Ok(p) => p,
        Err(e) => panic!("cannot build multi_node_example: {e:#}"),
    })
}

/// The freshly built example `name` of a workspace crate (`cargo build --workspace --examples`:
/// the examples `cargo test --workspace` already compiled, so under the README's test command
/// this reuses them).
pub fn example_bin(name: &str) -> anyhow::Result<PathBuf> {
    let workspace = workspace_dir();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(&cargo)
        .args(["build", "--workspace", "--examples"])
        .current_dir(&workspace)
        .stdin(Stdio::null())
        .status()
        .with_context(|| format!("cannot run {cargo:?}"))?;
    if !status.success() {
        bail!("`cargo build --workspace --examples` failed: {status}");
    }
    let bin = target_dir().join("debug").join("examples").join(name);
    if !bin.is_file() {
        bail!("built the examples but {} does not exist", bin.display());
    }
    Ok(bin)
}

/// The workspace root (the parent of `tests/`).
pub fn workspace_dir() -> PathBuf {
    let manifest_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest_dir
        .parent()
        .map_or_else(|| manifest_dir.clone(), Path::to_path_buf)
}

/// Cargo's target directory: `CARGO_TARGET_DIR` (relative to the workspace if relative), else
/// the workspace's `target/`.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(t) => {
            let t = PathBuf::from(t);
            if t.is_relative() {
                workspace_dir().join(t)
            } else {
                t
            }
        }
        None => workspace_dir().join("target"),
    }
}

/// Builds the workspace binaries (see [`ppd_bin`]) and returns the path of binary `NAME`.
fn build_bin(name: &str) -> anyhow::Result<PathBuf> {
    let manifest_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let workspace = manifest_dir
        .parent()
        .context("tests/ has no parent directory")?
        .to_path_buf();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    // PP_TEST_RELEASE=1 runs the processes from an optimised build (for the benchmarks).
    let release = std::env::var_os("PP_TEST_RELEASE").is_some_and(|v| v == "1");
    // Debug: build what `cargo test --workspace` builds (same packages, same dev-dependency
    // features, same profile), so under the README's test command this is a no-op and never a
    // second compilation of the dependency tree. Release (benchmarks only): just the binary.
    let args: Vec<&str> = if release {
        vec!["build", "--release", "-p", name, "--bin", name]
    } else {
        vec!["build", "--workspace", "--bins", "--tests"]
    };
    let status = Command::new(&cargo)
        .args(&args)
        .current_dir(&workspace)
        .stdin(Stdio::null())
        .status()
        .with_context(|| format!("cannot run {cargo:?}"))?;
    if !status.success() {
        bail!("`cargo {}` failed: {status}", args.join(" "));
    }
    let target = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(t) => {
            let t = PathBuf::from(t);
            if t.is_relative() {
                workspace.join(t)
            } else {
                t
            }
        }
        None => workspace.join("target"),
    };
    let bin = target
        .join(if release { "release" } else { "debug" })
        .join(name);
    if !bin.is_file() {
        bail!("built {name} but {} does not exist", bin.display());
    }
    Ok(bin)
}

/// Runs `program ARGS` to completion, killed after `timeout`, capturing both streams through
/// temporary files (pipes could fill up and block a child we are not reading from).
pub fn run_bounded(
    program: &Path,
    args: &[&str],
    env: &[(&str, &str)],
    timeout: Duration,
) -> anyhow::Result<CliOutput> {
    let out = tempfile::NamedTempFile::new()?;
    let err = tempfile::NamedTempFile::new()?;
    let mut child = Command::new(program)
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(out.reopen()?)
        .stderr(err.reopen()?)
        .spawn()
        .with_context(|| format!("cannot spawn {}", program.display()))?;
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(s) = child.try_wait()? {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!(
                "{} {args:?} did not finish within {timeout:?}",
                program.display()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Ok(CliOutput {
        status,
        stdout: std::fs::read_to_string(out.path())?,
        stderr: std::fs::read_to_string(err.path())?,
    })
}

/// What a finished CLI command printed.
#[derive(Debug)]
pub struct CliOutput {
    /// Exit status.
    pub status: ExitStatus,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl CliOutput {
    /// The last whitespace-separated word of stdout (ids and accounts are printed there).
    pub fn last_word(&self) -> Option<&str> {
        self.stdout.split_whitespace().last()
    }

    /// Fails with both streams unless the command succeeded.
    pub fn ok(self) -> anyhow::Result<CliOutput> {
        if self.status.success() {
            Ok(self)
        } else {
            Err(anyhow!(
                "ppd exited with {}\nstdout:\n{}\nstderr:\n{}",
                self.status,
                self.stdout,
                self.stderr
            ))
        }
    }
}

/// Runs `ppd ARGS` to completion (killed after [`CLI_TIMEOUT`]).
pub fn ppd(args: &[&str]) -> anyhow::Result<CliOutput> {
    run_bounded(ppd_bin(), args, &[("RUST_LOG", "warn")], CLI_TIMEOUT)
}

/// Ports handed out in this process, so parallel tests never pick the same ones.
static TAKEN: Mutex<Vec<u16>> = Mutex::new(Vec::new());

/// A block of `n` consecutive loopback ports that are free now and not handed out before in this
/// process. The range starts at a random point below the Linux ephemeral range (32768+), so
/// concurrent test processes rarely collide and outgoing connections never take them.
pub fn free_port_block(n: u16) -> u16 {
    let mut taken = TAKEN.lock().unwrap_or_else(|e| e.into_inner());
    for _ in 0..500 {
        let base: u16 = rand::random_range(15_000..(32_000 - n));
        let ok = (base..base + n)
            .all(|p| !taken.contains(&p) && TcpListener::bind(("127.0.0.1", p)).is_ok());
        if ok {
            taken.extend(base..base + n);
            return base;
        }
    }
    panic!("no block of {n} free loopback ports found in 500 attempts");
}

/// A running `ppd run` process, killed (SIGKILL) and reaped when dropped. Its stdout and stderr go
/// to a log file that is printed (its tail) if the test panics.
pub struct Node {
    /// A name for messages (`node0`).
    pub name: String,
    /// Base URL of its HTTP API.
    pub url: String,
    /// Its log file.
    pub log: PathBuf,
    args: Vec<String>,
    bin: PathBuf,
    child: Option<Child>,
}

impl Node {
    /// Starts `ppd ARGS`, appending its output to `log`.
    pub fn spawn(name: &str, http_port: u16, args: &[String], log: &Path) -> anyhow::Result<Node> {
        Node::spawn_bin(ppd_bin(), name, http_port, args, log)
    }

    /// Starts `BIN ARGS` (e.g. [`pp_light_bin`]), appending its output to `log`.
    pub fn spawn_bin(
        bin: &Path,
        name: &str,
        http_port: u16,
        args: &[String],
        log: &Path,
    ) -> anyhow::Result<Node> {
        let mut node = Node {
            name: name.into(),
            url: format!("http://127.0.0.1:{http_port}"),
            log: log.to_path_buf(),
            args: args.to_vec(),
            bin: bin.to_path_buf(),
            child: None,
        };
        node.start()?;
        Ok(node)
    }

    /// Starts `ppd run --config CONFIG` with the HTTP port written in that config.
    pub fn spawn_config(name: &str, http_port: u16, config: &Path) -> anyhow::Result<Node> {
        let log = config.with_file_name("ppd.log");
        let args = vec![
            "run".to_string(),
            "--config".into(),
            config.display().to_string(),
        ];
        Node::spawn(name, http_port, &args, &log)
    }

    /// (Re)starts the process with the same arguments.
    pub fn start(&mut self) -> anyhow::Result<()> {
        if self.child.is_some() {
            bail!("{} is already running", self.name);
        }
        let log = File::options().create(true).append(true).open(&self.log)?;
        let child = Command::new(&self.bin)
            .args(&self.args)
            .env(
                "RUST_LOG",
                std::env::var("PP_TEST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot spawn {} for {}", self.bin.display(), self.name))?;
        self.child = Some(child);
        Ok(())
    }

    /// The process id, if running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// SIGKILL and reap: the node gets no chance to flush or say goodbye.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM, then waits up to `timeout` for a clean exit; returns its status.
    pub fn terminate(&mut self, timeout: Duration) -> anyhow::Result<ExitStatus> {
        let mut c = self.child.take().context("not running")?;
        let pid = c.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status()?;
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(s) = c.try_wait()? {
                return Ok(s);
            }
            if Instant::now() > deadline {
                let _ = c.kill();
                let _ = c.wait();
                bail!("{} did not exit within {timeout:?} of SIGTERM", self.name);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether the process has exited on its own (a crash), without reaping a running one.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// The whole log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The last `n` lines of the log.
    pub fn log_tail(&self, n: usize) -> String {
        let text = self.log_text();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "----- last log lines of {} ({}) -----\n{}\n-----",
                self.name,
                self.log.display(),
                self.log_tail(40)
            );
        }
        self.kill9();
    }
}

/// An HTTP client for node APIs, with a per-request timeout.
pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap_or_else(|e| panic!("cannot build reqwest client: {e}"))
}

/// GET `url` as JSON; non-2xx is an error carrying the body.
pub async fn get_json(client: &reqwest::Client, url: &str) -> anyhow::Result<Value> {
    let resp = client.get(url).send().await?;
    let status = resp.status();
    let body = resp.text().await?;
    if !status.is_success() {
        bail!("GET {url}: {status}: {body}");
    }
    serde_json::from_str(&body).with_context(|| format!("GET {url}: not JSON: {body}"))
}

/// POST JSON to `url`, returning status and JSON body.
pub async fn post_json(
    client: &reqwest::Client,
    url: &str,
    body: &Value,
) -> anyhow::Result<(reqwest::StatusCode, Value)> {
    let resp = client.post(url).json(body).send().await?;
    let status = resp.status();
    let text = resp.text().await?;
    let v = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Ok((status, v))
}

/// Polls `f` every `every` until it yields `Some`, for at most `timeout`; the error names `what`.
pub async fn wait_for<T, F, Fut>(
    what: &str,
    timeout: Duration,
    every: Duration,
    mut f: F,
) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    // The iteration bound backs up the time bound in case `f` itself returns instantly forever.
    let max_iters = (timeout.as_millis() / every.as_millis().max(1)) as usize + 2;
    for _ in 0..max_iters {
        if let Some(v) = f().await {
            return Ok(v);
        }
        if start.elapsed() > timeout {
            break;
        }
        tokio::time::sleep(every).await;
    }
    bail!("timed out after {timeout:?} waiting for {what}")
}

/// `GET /status` of a node.
pub async fn status(client: &reqwest::Client, url: &str) -> anyhow::Result<Value> {
    get_json(client, &format!("{url}/status")).await
}

/// The height a node reports, or `None` if it does not answer.
pub async fn height(client: &reqwest::Client, url: &str) -> Option<u64> {
    status(client, url).await.ok()?.get("height")?.as_u64()
}

/// The hash of the block at `index` on a node, or `None` if it does not have it.
pub async fn block_hash(client: &reqwest::Client, url: &str, index: u64) -> Option<String> {
    let b = get_json(client, &format!("{url}/blocks/{index}"))
        .await
        .ok()?;
    Some(b.get("hash")?.as_str()?.to_string())
}

/// The hashes of blocks `0..=to` on a node, fetched in ranges.
pub async fn block_hashes(
    client: &reqwest::Client,
    url: &str,
    to: u64,
) -> anyhow::Result<Vec<String>> {
    let mut out = Vec::new();
    // Bounded: one request per 100 blocks, and the node must return at least one block each time.
    while (out.len() as u64) <= to {
        let from = out.len() as u64;
        let count = (to + 1 - from).min(100);
        let v = get_json(client, &format!("{url}/blocks?from={from}&count={count}")).await?;
        let blocks = v
            .get("blocks")
            .and_then(Value::as_array)
            .context("no `blocks` array")?;
        if blocks.is_empty() {
            bail!("{url} returned no blocks from {from}");
        }
        for b in blocks {
            let idx = b.pointer("/header/index").and_then(Value::as_u64);
            if idx != Some(out.len() as u64) {
                bail!(
                    "{url} returned block {idx:?} where {} was expected",
                    out.len()
                );
            }
            out.push(
                b.get("hash")
                    .and_then(Value::as_str)
                    .context("block without hash")?
                    .to_string(),
            );
        }
    }
    out.truncate(to as usize + 1);
    Ok(out)
}

/// The balance of `account` on a node (`None` for an unknown account or no answer).
pub async fn balance(client: &reqwest::Client, url: &str, account: &str) -> Option<u64> {
    let v = get_json(client, &format!("{url}/accounts/{account}"))
        .await
        .ok()?;
    v.get("balance")?.as_u64()
}

/// Unix time in milliseconds.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A testnet written by `ppd testnet` into a temporary directory, with its nodes.
pub struct Testnet {
    /// The directory (removed on drop, after the nodes are killed).
    pub dir: tempfile::TempDir,
    /// HTTP port of node0; node I has `http_base + I`.
    pub http_base: u16,
    /// P2P port of node0.
    pub p2p_base: u16,
    /// Running (or stopped) nodes, by index (killed in `Drop` before `dir` is removed).
    pub nodes: Vec<Node>,
    /// The number of nodes written.
    pub size: usize,
}

impl Testnet {
    /// Runs `ppd testnet --nodes N` with free ports and `extra` arguments (e.g. `--slot-ms`).
    pub fn write(n: usize, extra: &[&str]) -> anyhow::Result<Testnet> {
        let dir = tempfile::tempdir()?;
        let http_base = free_port_block(n as u16);
        let p2p_base = free_port_block(n as u16);
        let nodes = n.to_string();
        let http = http_base.to_string();
        let p2p = p2p_base.to_string();
        let root = dir.path().join("net");
        let root_s = root.display().to_string();
        let mut args = vec![
            "testnet",
            "--nodes",
            &nodes,
            "--dir",
            &root_s,
            "--base-http-port",
            &http,
            "--base-p2p-port",
            &p2p,
        ];
        args.extend_from_slice(extra);
        ppd(&args)?.ok()?;
        Ok(Testnet {
            dir,
            http_base,
            p2p_base,
            nodes: Vec::new(),
            size: n,
        })
    }

    /// The testnet root (holding genesis.json).
    pub fn root(&self) -> PathBuf {
        self.dir.path().join("net")
    }

    /// Node `i`'s directory.
    pub fn node_dir(&self, i: usize) -> PathBuf {
        self.root().join(format!("node{i}"))
    }

    /// Node `i`'s account (from its key file, via `ppd`'s own format).
    pub fn account(&self, i: usize) -> anyhow::Result<String> {
        let g: Value = serde_json::from_slice(&std::fs::read(self.root().join("genesis.json"))?)?;
        g.pointer(&format!("/initial_stakeholders/{i}/public_key"))
            .and_then(Value::as_str)
            .map(str::to_string)
            .context("no such stakeholder")
    }

    /// Node `i`'s stakeholder (account) key file: `cold/nodeI.key` in a praos testnet, where
    /// the node holds only a hot key, else the node's `node.key`.
    pub fn account_key(&self, i: usize) -> PathBuf {
        let cold = self.root().join(format!("cold/node{i}.key"));
        if cold.exists() {
            cold
        } else {
            self.node_dir(i).join("node.key")
        }
    }

    /// Sends `amount` from node `from`'s account key to account `to` through the node at `via`
    /// with `ppd tx transfer`; returns the transaction id the node acknowledged.
    pub fn transfer(
        &self,
        from: usize,
        via: &str,
        to: &str,
        amount: u64,
    ) -> anyhow::Result<String> {
        let key = self.account_key(from).display().to_string();
        let amount = amount.to_string();
        let out = ppd(&[
            "tx", "transfer", "--key", &key, "--to", to, "--amount", &amount, "--node", via,
        ])?
        .ok()?;
        let id = out.last_word().context("no transaction id in the output")?;
        anyhow::ensure!(id.len() == 64, "not a transaction id: {id}");
        Ok(id.to_string())
    }

    /// Starts every node, in order.
    pub fn start_all(&mut self) -> anyhow::Result<()> {
        for i in 0..self.size {
            let node = Node::spawn_config(
                &format!("node{i}"),
                self.http_base + i as u16,
                &self.node_dir(i).join("ppd.toml"),
            )?;
            self.nodes.push(node);
        }
        Ok(())
    }

    /// The URLs of all nodes.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.url.clone()).collect()
    }
}

impl Drop for Testnet {
    fn drop(&mut self) {
        // Kill the processes before the temporary directory under them is removed.
        self.nodes.clear();
    }
}

/// Waits until every node answers /status.
pub async fn wait_all_up(
    client: &reqwest::Client,
    urls: &[String],
    timeout: Duration,
) -> anyhow::Result<()> {
    for url in urls {
        wait_for(
            &format!("{url} to answer /status"),
            timeout,
            Duration::from_millis(100),
            || async { status(client, url).await.ok() },
        )
        .await?;
    }
    Ok(())
}

/// Waits until every node has a block at `index` and all hold the same hash there; returns it.
pub async fn wait_common_block(
    client: &reqwest::Client,
    urls: &[String],
    index: u64,
    timeout: Duration,
) -> anyhow::Result<String> {
    wait_for(
        &format!("all nodes to agree on block {index}"),
        timeout,
        Duration::from_millis(100),
        || async {
            let mut first: Option<String> = None;
            for url in urls {
                let h = block_hash(client, url, index).await?;
                match &first {
                    None => first = Some(h),
                    Some(f) if *f == h => {}
                    Some(_) => return None,
                }
            }
            first
        },
    )
    .await
}

/// Waits until every node has at least `n` peers.
pub async fn wait_peers(
    client: &reqwest::Client,
    urls: &[String],
    n: u64,
    timeout: Duration,
) -> anyhow::Result<()> {
    wait_for(
        &format!("every node to have {n}+ peers"),
        timeout,
        Duration::from_millis(100),
        || async {
            for u in urls {
                if peer_count(client, u).await? < n {
                    return None;
                }
            }
            Some(())
        },
    )
    .await
}

/// Waits until every node's height is at least `h`.
pub async fn wait_height(
    client: &reqwest::Client,
    urls: &[String],
    h: u64,
    timeout: Duration,
) -> anyhow::Result<()> {
    wait_for(
        &format!("all nodes to reach height {h}"),
        timeout,
        Duration::from_millis(100),
        || async {
            for url in urls {
                if height(client, url).await? < h {
                    return None;
                }
            }
            Some(())
        },
    )
    .await
}

/// Writes `dir/ppd.toml` for a node that is not in any genesis' stakeholder list: it follows the
/// chain of `genesis` from `peers`, with its own fresh data dir (`dir` itself). Returns the path.
pub fn write_follower_config(
    dir: &Path,
    node_id: &str,
    genesis: &Path,
    http_port: u16,
    p2p_port: u16,
    peers: &[String],
) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let peers: Vec<String> = peers.iter().map(|p| format!("{p:?}")).collect();
    let text = format!(
        "data_dir = \".\"\ngenesis = {:?}\nnode_id = {node_id:?}\nhttp = \"127.0.0.1:{http_port}\"\n\
         p2p = \"127.0.0.1:{p2p_port}\"\npeers = [{}]\n",
        genesis.display().to_string(),
        peers.join(", ")
    );
    let path = dir.join("ppd.toml");
    std::fs::write(&path, text)?;
    Ok(path)
}

/// The peer count a node reports in /status (`peers`, a number), or `None` if it does not answer.
pub async fn peer_count(client: &reqwest::Client, url: &str) -> Option<u64> {
    let s = status(client, url).await.ok()?;
    match s.get("peers")? {
        Value::Number(n) => n.as_u64(),
        Value::Array(a) => Some(a.len() as u64),
        _ => None,
    }
}
