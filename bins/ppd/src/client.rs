//! HTTP clients of a running node: `ppd status` and `ppd tx transfer`.
//!
//! A node's answers are untrusted too: bodies are size-bounded before they are parsed, and every
//! request has a timeout so the CLI never hangs on a stuck node.

use std::time::Duration;

use anyhow::{anyhow, bail, Context as _};
use pp_ledger::{Hash, Transaction};
use serde::Deserialize;
use serde_json::Value;

use crate::cli::TransferArgs;

/// Timeout of one HTTP request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest response body read.
const MAX_RESPONSE_BYTES: usize = 4 * 1024 * 1024;

/// A small client of one node's HTTP API.
pub(crate) struct NodeClient {
    http: reqwest::Client,
    base: String,
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
        })
    }

    async fn read(&self, resp: reqwest::Response) -> anyhow::Result<Value> {
        let status = resp.status();
        let body = read_bounded(resp).await?;
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
        let resp = self
            .http
            .post(&url)
            .json(body)
            .send()
            .await
            .with_context(|| format!("POST {url} failed"))?;
        self.read(resp).await
    }
}

/// Reads a response body, refusing more than [`MAX_RESPONSE_BYTES`].
async fn read_bounded(mut resp: reqwest::Response) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    while let Some(chunk) = resp.chunk().await.context("reading the node's answer")? {
        if out.len() + chunk.len() > MAX_RESPONSE_BYTES {
            bail!("the node's answer is larger than {MAX_RESPONSE_BYTES} bytes");
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
    fn server_error_bodies_yield_their_message() {
        let body = br#"{"error":{"code":"bad_nonce","message":"nonce 3 is not the next nonce 2"}}"#;
        let m = error_message(reqwest::StatusCode::BAD_REQUEST, body);
        assert!(m.contains("bad_nonce"), "{m}");
        assert!(m.contains("nonce 3 is not the next nonce 2"), "{m}");
        let m = error_message(reqwest::StatusCode::BAD_GATEWAY, b"plain text");
        assert!(m.contains("502") && m.contains("plain text"), "{m}");
    }
}
