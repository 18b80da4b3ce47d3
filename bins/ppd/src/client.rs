//! HTTP clients of a running node: `ppd status`, `ppd tx transfer` and `ppd peers`.
//!
//! A node's answers are untrusted too: bodies are size-bounded before they are parsed, and every
//! request has a timeout so the CLI never hangs on a stuck node.

use std::time::Duration;

use anyhow::{anyhow, bail, Context as _};
use pp_ledger::{Hash, Transaction};
use serde::Deserialize;
use serde_json::Value;

use crate::cli::{PeersAddArgs, TransferArgs};

/// Timeout of one HTTP request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest response body read.
const MAX_RESPONSE_BYTES: usize = 4 * 1024 * 1024;

/// A small client of one node's HTTP API.
pub(crate) struct NodeClient {
    http: reqwest::Client,
    base: String,
    /// The admin token sent as `Authorization: Bearer` on every request, if set.
    token: Option<String>,
}

/// The parts of `GET /status` the CLI needs.
#[derive(Debug, Deserialize)]
struct StatusView {
    genesis_hash: Hash,
}

/// The parts of `GET /accounts/{id}` the CLI needs.
#[derive(Debug, Deserialize)]
struct AccountView {
    pending_nonce: u64,
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

    async fn read(&self, resp: reqwest::Response) -> anyhow::Result<Value> {
        let status = resp.status();
        let body = read_bounded(resp, MAX_RESPONSE_BYTES).await?;
        if !status.is_success() {
            return Err(anyhow!(error_message(status, &body)));
        }
        serde_json::from_slice(&body).context("the node's answer is not JSON")
    }

    /// GET `path` as JSON; non-2xx becomes the server's error message.
    pub(crate) async fn get(&self, path: &str) -> anyhow::Result<Value> {
        let url = format!("{}{path}", self.base);
        let resp = self
            .http
            .get(&url)
            .send()
            .await
            .with_context(|| format!("GET {url} failed"))?;
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
            .with_context(|| format!("POST {url} failed"))?;
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

/// `ppd status`: prints /status pretty.
pub(crate) async fn status(node: &str) -> anyhow::Result<()> {
    let v = NodeClient::new(node)?.get("/status").await?;
    println!("{}", serde_json::to_string_pretty(&v)?);
    Ok(())
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

/// `ppd peers list`: one line per connected peer.
pub(crate) async fn peers_list(node: &str) -> anyhow::Result<()> {
    let v = NodeClient::new(node)?.get("/peers").await?;
    let peers = v
        .get("peers")
        .and_then(Value::as_array)
        .context("the node's /peers answer has no `peers` list")?;
    if peers.is_empty() {
        println!("no peers");
    }
    for p in peers {
        println!("{}", peer_line(p));
    }
    Ok(())
}

/// `node_id addr direction listen=.. tip=..` for a peer of `/peers`.
fn peer_line(p: &Value) -> String {
    let field = |k: &str| match p.get(k) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => "-".to_string(),
        Some(other) => other.to_string(),
    };
    format!(
        "{} {} {} listen={} tip={}",
        field("node_id"),
        field("addr"),
        field("direction"),
        field("listen_addr"),
        field("tip_index")
    )
}

/// `ppd peers add`: makes the node dial `addr` (POST /peers with the admin token).
pub(crate) async fn peers_add(args: &PeersAddArgs) -> anyhow::Result<()> {
    let token = read_admin_token(&args.token.path())?;
    let client = NodeClient::new(&args.node)?.with_token(token);
    let v = client
        .post("/peers", &serde_json::json!({ "addr": args.addr }))
        .await?;
    let peer = v.get("peer").context("the node's answer has no `peer`")?;
    println!("connected: {}", peer_line(peer));
    Ok(())
}

/// `ppd tx transfer`: builds, signs and submits a transfer; returns its id.
pub(crate) async fn transfer(args: &TransferArgs) -> anyhow::Result<Hash> {
    if args.amount == 0 {
        bail!("--amount must be greater than 0");
    }
    let key = pp_server::keys::load_key_file(&args.key)?;
    let client = NodeClient::new(&args.node)?;
    let status: StatusView = serde_json::from_value(client.get("/status").await?)
        .context("the node's /status has no valid genesis_hash")?;
    let from = key.public();
    let account: AccountView =
        serde_json::from_value(client.get(&format!("/accounts/{from}")).await?)
            .context("the node's /accounts answer has no valid pending_nonce")?;
    let tx = Transaction::transfer(
        &key,
        args.to,
        args.amount,
        args.fee,
        account.pending_nonce,
        &status.genesis_hash,
    );
    let expected = tx.id();
    let answer: SubmittedView = serde_json::from_value(
        client
            .post("/transactions", &serde_json::to_value(&tx)?)
            .await?,
    )
    .context("the node's /transactions answer has no valid id")?;
    if answer.id != expected {
        bail!(
            "the node acknowledged transaction {} but we sent {expected}",
            answer.id
        );
    }
    Ok(expected)
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
    fn peer_lines_name_the_peer() {
        let p = serde_json::json!({"node_id":"node1","addr":"127.0.0.1:5","direction":"outbound",
            "listen_addr":null,"tip_index":7});
        assert_eq!(peer_line(&p), "node1 127.0.0.1:5 outbound listen=- tip=7");
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
}
