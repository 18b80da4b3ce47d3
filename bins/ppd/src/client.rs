//! HTTP clients of a running node: `ppd status`, `ppd account`, `ppd tx ...`, `ppd block`,
//! `ppd peers` and `ppd bans`.
//!
//! A node's answers are untrusted too: bodies are size-bounded before they are parsed, and every
//! request has a timeout so the CLI never hangs on a stuck node. With `--output json` a command
//! prints the API's answer exactly (pretty-printed); with `--output text` it prints lines made
//! for people ([`crate::show`]). An error answer of the node is an error either way (exit 1);
//! with `--output json` its JSON body is also printed on stdout, for scripts.

use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _};
use pp_ledger::{Hash, KeyPair, PublicKey, TxBody, TxKind};
use serde::Deserialize;
use serde_json::Value;

use crate::cli::{
    BlockArgs, BlockRef, BondArgs, ClientArgs, KeySpec, Output, PeersAddArgs, SubmitArgs,
    TransferArgs, TxStatusArgs, UnbondArgs,
};
use crate::show;

/// Timeout of one HTTP request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest response body read.
const MAX_RESPONSE_BYTES: usize = 4 * 1024 * 1024;
/// How often `--wait` asks the node about the transaction.
const WAIT_POLL: Duration = Duration::from_millis(250);

/// A small client of one node's HTTP API.
pub(crate) struct NodeClient {
    http: reqwest::Client,
    base: String,
    /// The admin token sent as `Authorization: Bearer` on every request, if set.
    token: Option<String>,
}

/// The node answered with an error status: its message, and its JSON body if it had one.
#[derive(Debug)]
pub(crate) struct ApiError {
    /// The HTTP status.
    pub(crate) status: reqwest::StatusCode,
    /// The API's error code (`unknown_account`, ...), if the body had one.
    pub(crate) code: Option<String>,
    /// The body, if it was JSON.
    pub(crate) body: Option<Value>,
    /// One line for people.
    pub(crate) message: String,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ApiError {}

/// The parts of `GET /status` the CLI needs.
#[derive(Debug, Deserialize)]
struct StatusView {
    genesis_hash: Hash,
}

/// The parts of `GET /accounts/{id}` the CLI needs.
#[derive(Debug, Deserialize)]
struct AccountView {
    pending_nonce: u64,
    #[serde(default)]
    stakeholder_id: Option<String>,
}

/// `POST /transactions` answer.
#[derive(Debug, Deserialize)]
struct SubmittedView {
    id: Hash,
}

/// Normalises a node URL: adds `http://` when no scheme is given and drops trailing slashes.
pub(crate) fn normalise_base(url: &str) -> anyhow::Result<String> {
    let url = url.trim();
    if url.is_empty() {
        bail!("the node URL is empty");
    }
    let with_scheme = if url.contains("://") {
        url.to_string()
    } else {
        format!("http://{url}")
    };
    if !with_scheme.starts_with("http://") {
        bail!("node URL {url:?} must use http:// (TLS is not supported)");
    }
    Ok(with_scheme.trim_end_matches('/').to_string())
}

/// The server's error message from a `{"error":{"code","message"}}` body, or the raw body.
pub(crate) fn error_message(status: reqwest::StatusCode, body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(2048)]).into_owned();
    let parsed = serde_json::from_slice::<Value>(body).ok();
    let err = parsed.as_ref().and_then(|v| v.get("error"));
    match err {
        Some(e) => {
            let code = e.get("code").and_then(Value::as_str).unwrap_or("error");
            let message = e.get("message").and_then(Value::as_str).unwrap_or(&text);
            format!("node answered {status}: {code}: {message}")
        }
        None => format!("node answered {status}: {text}"),
    }
}

/// The innermost cause of an error: for a failed request, the OS's or parser's own words
/// (reqwest's chain repeats the URL at several levels).
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

impl NodeClient {
    /// A client of the node at `url`.
    pub(crate) fn new(url: &str) -> anyhow::Result<NodeClient> {
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .build()
            .context("cannot build the HTTP client")?;
        Ok(NodeClient {
            http,
            base: normalise_base(url)?,
            token: None,
        })
    }

    /// The same client, sending the node's admin token with every request.
    pub(crate) fn with_token(mut self, token: String) -> NodeClient {
        self.token = Some(token);
        self
    }

    /// One clear line for a request that got no answer: the node's URL and the cause, once.
    fn transport_error(&self, method: &str, path: &str, e: &reqwest::Error) -> anyhow::Error {
        if e.is_connect() {
            anyhow!(
                "cannot reach the node at {}: {} (is ppd running there? set --node URL or \
                 PPD_NODE)",
                self.base,
                root_cause(e)
            )
        } else if e.is_timeout() {
            anyhow!(
                "the node at {} did not answer {method} {path} within {} s",
                self.base,
                REQUEST_TIMEOUT.as_secs()
            )
        } else {
            anyhow!("{method} {}{path} failed: {}", self.base, root_cause(e))
        }
    }

    async fn read(&self, resp: reqwest::Response) -> anyhow::Result<Value> {
        let status = resp.status();
        let body = read_bounded(resp, MAX_RESPONSE_BYTES).await?;
        if !status.is_success() {
            let parsed = serde_json::from_slice::<Value>(&body).ok();
            let code = parsed
                .as_ref()
                .and_then(|v| v.pointer("/error/code"))
                .and_then(Value::as_str)
                .map(str::to_string);
            return Err(ApiError {
                status,
                code,
                body: parsed,
                message: error_message(status, &body),
            }
            .into());
        }
        serde_json::from_slice(&body).context("the node's answer is not JSON")
    }

    /// GET `path` as JSON; non-2xx becomes an [`ApiError`].
    pub(crate) async fn get(&self, path: &str) -> anyhow::Result<Value> {
        let url = format!("{}{path}", self.base);
        let resp = self
            .http
            .get(&url)
            .send()
            .await
            .map_err(|e| self.transport_error("GET", path, &e))?;
        self.read(resp).await
    }

    /// POST `body` as JSON to `path`.
    pub(crate) async fn post(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        let url = format!("{}{path}", self.base);
        let mut req = self.http.post(&url).json(body);
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| self.transport_error("POST", path, &e))?;
        self.read(resp).await
    }
}

/// Reads a response body, refusing more than `max` bytes.
pub(crate) async fn read_bounded(
    mut resp: reqwest::Response,
    max: usize,
) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    while let Some(chunk) = resp.chunk().await.context("reading the node's answer")? {
        if out.len() + chunk.len() > max {
            bail!("the node's answer is larger than {max} bytes");
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// Writes `line` and a newline to stdout. A reader that went away (`ppd block 1 | head -3`) is
/// not an error: the rest of the output is simply not wanted.
fn emit(line: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{line}").and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(anyhow!("cannot write to stdout: {e}"))
        }
        _ => Ok(()),
    }
}

/// Prints an answer: pretty JSON, or the text `show` makes of it.
fn print(output: Output, v: &Value, text: impl FnOnce(&Value) -> String) -> anyhow::Result<()> {
    match output {
        Output::Json => emit(&serde_json::to_string_pretty(v)?),
        Output::Text => emit(&text(v)),
    }
}

/// Runs a client command; with `--output json`, an error answer's JSON body is printed on
/// stdout before the error goes up (to stderr, exit 1).
pub(crate) async fn with_output<F>(output: Output, fut: F) -> anyhow::Result<()>
where
    F: std::future::Future<Output = anyhow::Result<()>>,
{
    let r = fut.await;
    if let (Output::Json, Err(e)) = (output, &r) {
        if let Some(body) = e.downcast_ref::<ApiError>().and_then(|a| a.body.as_ref()) {
            emit(&serde_json::to_string_pretty(body)?)?;
        }
    }
    r
}

/// `ppd status`.
pub(crate) async fn status(c: &ClientArgs) -> anyhow::Result<()> {
    let v = NodeClient::new(&c.node)?.get("/status").await?;
    print(c.output, &v, show::status)
}

/// `ppd account`.
pub(crate) async fn account(account: &PublicKey, c: &ClientArgs) -> anyhow::Result<()> {
    let client = NodeClient::new(&c.node)?;
    let v = client
        .get(&format!("/accounts/{account}"))
        .await
        .map_err(unknown_account_hint)?;
    print(c.output, &v, show::account)
}

/// Adds what an unknown account means to the node's `unknown_account` answer.
fn unknown_account_hint(e: anyhow::Error) -> anyhow::Error {
    match e.downcast_ref::<ApiError>() {
        Some(a) if a.code.as_deref() == Some("unknown_account") => {
            e.context("no such account: an account exists once it has received coins")
        }
        _ => e,
    }
}

/// `ppd block`.
pub(crate) async fn block(args: &BlockArgs) -> anyhow::Result<()> {
    let client = NodeClient::new(&args.client.node)?;
    let path = match &args.block {
        BlockRef::Index(i) => format!("/blocks/{i}"),
        BlockRef::Hash(h) => format!("/blocks/hash/{h}"),
    };
    let v = client.get(&path).await?;
    print(args.client.output, &v, show::block)
}

/// `ppd bans`.
pub(crate) async fn bans(c: &ClientArgs) -> anyhow::Result<()> {
    let v = NodeClient::new(&c.node)?.get("/bans").await?;
    print(c.output, &v, show::bans)
}

/// `ppd tx status`.
pub(crate) async fn tx_status(args: &TxStatusArgs) -> anyhow::Result<()> {
    let v = NodeClient::new(&args.client.node)?
        .get(&format!("/transactions/{}", args.id))
        .await?;
    print(args.client.output, &v, show::tx_status)
}

/// Reads the admin token from `path`; the error says where it looked and how to point elsewhere.
pub(crate) fn read_admin_token(path: &std::path::Path) -> anyhow::Result<String> {
    // ServerError's message already names the file and the OS error: keep it as one message so
    // that `{:#}` prints each cause once.
    pp_server::admin::read_token_file(path).map_err(|e| {
        anyhow!(
            "cannot read the node's admin token: {e} (the node writes it to its data dir at \
             start; pass --data-dir DIR or --token-file FILE)"
        )
    })
}

/// `ppd peers` / `ppd peers list`: one line per connected peer.
pub(crate) async fn peers_list(c: &ClientArgs) -> anyhow::Result<()> {
    let v = NodeClient::new(&c.node)?.get("/peers").await?;
    if c.output == Output::Text && v.get("peers").and_then(Value::as_array).is_none() {
        bail!("the node's /peers answer has no `peers` list");
    }
    print(c.output, &v, show::peers)
}

/// `ppd peers add`: makes the node dial `addr` (POST /peers with the admin token).
pub(crate) async fn peers_add(args: &PeersAddArgs) -> anyhow::Result<()> {
    let token = read_admin_token(&args.token.path())?;
    let client = NodeClient::new(&args.client.node)?.with_token(token);
    let v = client
        .post("/peers", &serde_json::json!({ "addr": args.addr }))
        .await?;
    print(args.client.output, &v, |v| match v.get("peer") {
        Some(peer) => format!("connected: {}", show::peer_line(peer)),
        None => "connected".to_string(),
    })
}

/// Builds, signs and submits one transaction of `kind` for `s.key`; returns the id and the
/// node's answer. The nonce is the account's pending nonce, so several in a row queue up.
async fn submit(
    client: &NodeClient,
    key: &KeyPair,
    s: &SubmitArgs,
    kind: impl FnOnce(&AccountView) -> anyhow::Result<TxKind>,
) -> anyhow::Result<(Hash, Value)> {
    if s.amount == 0 {
        bail!("--amount must be greater than 0");
    }
    let status: StatusView = serde_json::from_value(client.get("/status").await?)
        .context("the node's /status has no valid genesis_hash")?;
    let from = key.public();
    let account = client
        .get(&format!("/accounts/{from}"))
        .await
        .map_err(|e| match e.downcast_ref::<ApiError>() {
            Some(a) if a.code.as_deref() == Some("unknown_account") => e.context(format!(
                "the sender {from} (key {}) has no account on this chain: it must receive coins \
                 before it can pay a fee",
                s.key
            )),
            _ => e,
        })?;
    let account: AccountView = serde_json::from_value(account)
        .context("the node's /accounts answer has no valid pending_nonce")?;
    let body = TxBody {
        kind: kind(&account)?,
        from,
        amount: s.amount,
        fee: s.fee,
        nonce: account.pending_nonce,
    };
    let tx = body.sign(key, &status.genesis_hash);
    let expected = tx.id();
    let answer = client
        .post("/transactions", &serde_json::to_value(&tx)?)
        .await?;
    let submitted: SubmittedView = serde_json::from_value(answer.clone())
        .context("the node's /transactions answer has no valid id")?;
    if submitted.id != expected {
        bail!(
            "the node acknowledged transaction {} but we sent {expected}",
            submitted.id
        );
    }
    Ok((expected, answer))
}

/// Prints a submission, and with `--wait` waits for its block and prints that too.
async fn report_submission(
    client: &NodeClient,
    s: &SubmitArgs,
    id: Hash,
    answer: &Value,
) -> anyhow::Result<()> {
    print(s.client.output, answer, |_| {
        format!("submitted transaction {id}")
    })?;
    if !s.wait {
        return Ok(());
    }
    let (index, hash) = wait_included(client, id, Duration::from_secs(s.wait_timeout)).await?;
    let block = client.get(&format!("/blocks/hash/{hash}")).await?;
    print(s.client.output, &block, |b| {
        format!("included in block {index} {hash}\n{}", show::block(b))
    })
}

/// Polls `GET /transactions/{id}` until it is included (its block's index and hash), dropped
/// (an error with the node's reason) or `timeout` passes. Bounded in time and in requests.
async fn wait_included(
    client: &NodeClient,
    id: Hash,
    timeout: Duration,
) -> anyhow::Result<(u64, Hash)> {
    let start = Instant::now();
    let max_polls = timeout.as_millis() / WAIT_POLL.as_millis() + 2;
    for _ in 0..max_polls {
        match client.get(&format!("/transactions/{id}")).await {
            Ok(v) => match v.get("status").and_then(Value::as_str) {
                Some("included") => {
                    let index = v.pointer("/block/index").and_then(Value::as_u64);
                    let hash = v
                        .pointer("/block/hash")
                        .and_then(Value::as_str)
                        .and_then(|h| Hash::from_hex(h).ok());
                    if let (Some(index), Some(hash)) = (index, hash) {
                        return Ok((index, hash));
                    }
                    bail!("the node says transaction {id} is included but names no block: {v}");
                }
                Some("dropped") => bail!(
                    "transaction {id} was dropped by the node: {}",
                    show::drop_reason(&v)
                ),
                _ => {}
            },
            // Right after a fork switch the node may not know it for a moment: keep asking.
            Err(e)
                if e.downcast_ref::<ApiError>()
                    .is_some_and(|a| a.status == 404) => {}
            Err(e) => return Err(e),
        }
        if start.elapsed() >= timeout {
            break;
        }
        tokio::time::sleep(WAIT_POLL).await;
    }
    bail!(
        "transaction {id} was not included within {} s (see `ppd tx status {id}`)",
        timeout.as_secs()
    )
}

/// `ppd tx transfer`.
pub(crate) async fn transfer(args: &TransferArgs) -> anyhow::Result<()> {
    let s = &args.submit;
    let key = s.key.load()?;
    let client = NodeClient::new(&s.client.node)?;
    let (id, answer) = submit(&client, &key, s, |_| Ok(TxKind::Transfer { to: args.to })).await?;
    report_submission(&client, s, id, &answer).await
}

/// `ppd tx bond`: the stakeholder id is `--id`, else the one the account already has.
pub(crate) async fn bond(args: &BondArgs) -> anyhow::Result<()> {
    let s = &args.submit;
    let key = s.key.load()?;
    let vrf_key = args
        .vrf_key
        .as_ref()
        .map(KeySpec::load_vrf_public)
        .transpose()?;
    let client = NodeClient::new(&s.client.node)?;
    let (id, answer) = submit(&client, &key, s, |account| {
        let stakeholder_id = match (&args.id, &account.stakeholder_id) {
            (Some(id), _) => id.clone(),
            (None, Some(id)) => id.clone(),
            (None, None) => bail!(
                "the first bond of an account binds its stakeholder id: pass --id NAME \
                 (1..=32 characters of [A-Za-z0-9._-], unique on the chain)"
            ),
        };
        Ok(TxKind::Bond {
            stakeholder_id,
            vrf_key,
        })
    })
    .await?;
    report_submission(&client, s, id, &answer).await
}

/// `ppd tx unbond`.
pub(crate) async fn unbond(args: &UnbondArgs) -> anyhow::Result<()> {
    let s = &args.submit;
    let key = s.key.load()?;
    let client = NodeClient::new(&s.client.node)?;
    let (id, answer) = submit(&client, &key, s, |_| Ok(TxKind::Unbond)).await?;
    report_submission(&client, s, id, &answer).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_urls_are_normalised() {
        assert_eq!(
            normalise_base("127.0.0.1:8080").unwrap(),
            "http://127.0.0.1:8080"
        );
        assert_eq!(normalise_base("http://h:1/").unwrap(), "http://h:1");
        assert!(normalise_base("https://h:1").is_err());
        assert!(normalise_base("  ").is_err());
    }

    #[test]
    fn a_missing_token_file_says_where_it_looked_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("admin.token");
        let m = format!("{:#}", read_admin_token(&path).unwrap_err());
        assert_eq!(m.matches("admin.token").count(), 1, "{m}");
        assert_eq!(m.matches("No such file").count(), 1, "{m}");
        assert!(m.contains("--data-dir"), "{m}");
    }

    #[test]
    fn server_error_bodies_yield_their_message() {
        let body = br#"{"error":{"code":"bad_nonce","message":"nonce 3 is not the next nonce 2"}}"#;
        let m = error_message(reqwest::StatusCode::BAD_REQUEST, body);
        assert!(m.contains("bad_nonce"), "{m}");
        assert!(m.contains("nonce 3 is not the next nonce 2"), "{m}");
        let m = error_message(reqwest::StatusCode::BAD_GATEWAY, b"plain text");
        assert!(m.contains("502") && m.contains("plain text"), "{m}");
    }

    #[tokio::test]
    async fn an_unreachable_node_is_one_line_naming_its_url_and_the_cause_once() {
        // A port that was free a moment ago: nothing listens there.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("http://127.0.0.1:{port}");
        let e = NodeClient::new(&url)
            .unwrap()
            .get("/status")
            .await
            .unwrap_err();
        let m = format!("{e:#}");
        assert_eq!(m.matches(&url).count(), 1, "{m}");
        assert_eq!(m.matches("refused").count(), 1, "{m}");
        assert!(m.contains("PPD_NODE"), "{m}");
    }
}
