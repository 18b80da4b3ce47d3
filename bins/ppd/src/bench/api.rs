//! The node API as the load generator uses it: submissions whose refusals stay typed (the node's
//! error code, counted by reason), and the few reads the generator needs (status, accounts,
//! blocks, transaction status). Every answer is size-bounded and every request has a timeout.

use std::time::Duration;

use anyhow::Context as _;
use pp_ledger::{Hash, PublicKey, Transaction};
use serde::Deserialize;
use serde_json::Value;

use crate::client::{normalise_base, read_bounded};

/// Timeout of one request. The node answers `408` after 10 s itself; this is a little longer so
/// that its answer, not ours, is what gets counted.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(12);
/// Largest answer to a small request (status, account, submission).
const MAX_SMALL_ANSWER: usize = 1024 * 1024;
/// Largest answer to a block range: [`BLOCKS_PER_REQUEST`] blocks of up to 2 MiB canonical
/// (5,000 transfers), which JSON roughly doubles.
const MAX_BLOCKS_ANSWER: usize = 64 * 1024 * 1024;
/// Blocks asked for per `GET /blocks` request.
pub(crate) const BLOCKS_PER_REQUEST: u64 = 8;

/// What became of one submitted transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// `202`: the node acknowledged it.
    Accepted,
    /// Refused; the node's error code (`bad_nonce`, `mempool_full`, …) or `http_<status>` when
    /// the answer carries none, or `transport_timeout` / `transport_error` when no answer came.
    Rejected(String),
}

/// The answer to a batch (JSON array) submission.
#[derive(Debug)]
pub(crate) enum BatchAnswer {
    /// One outcome per transaction, in order.
    PerTransaction(Vec<Outcome>),
    /// The node refused the array form as a whole (it predates it): nothing was admitted.
    Unsupported(String),
}

/// `GET /status`, the fields used here.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Status {
    pub(crate) genesis_hash: Hash,
    pub(crate) height: u64,
    pub(crate) tip_hash: Hash,
    pub(crate) slot: u64,
    pub(crate) pending_transactions: u64,
}

/// `GET /accounts/{id}`, the fields used here.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Account {
    pub(crate) balance: u64,
    pub(crate) nonce: u64,
    pub(crate) pending_nonce: u64,
}

/// A best-chain block as `GET /blocks` serves it (the signature is not needed here).
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct BlockView {
    pub(crate) hash: Hash,
    pub(crate) header: HeaderView,
    pub(crate) transactions: Vec<Transaction>,
}

/// The header fields the generator follows a chain by. Only these are read, so the generator
/// also measures nodes whose headers carry other fields (older or newer header versions: the
/// comparison of two commits' nodes with one generator, `scripts/bench-e2e.sh`).
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct HeaderView {
    pub(crate) index: u64,
    pub(crate) slot: u64,
    pub(crate) prev_hash: Hash,
}

#[derive(Debug, Deserialize)]
struct BlocksView {
    blocks: Vec<BlockView>,
}

/// A client of one node.
#[derive(Clone)]
pub(crate) struct Api {
    http: reqwest::Client,
    base: String,
}

impl Api {
    /// A client of the node at `url`, keeping up to `connections` idle connections.
    pub(crate) fn new(url: &str, connections: usize) -> anyhow::Result<Api> {
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .pool_max_idle_per_host(connections)
            .build()
            .context("cannot build the HTTP client")?;
        Ok(Api {
            http,
            base: normalise_base(url)?,
        })
    }

    /// The node's base URL.
    pub(crate) fn base(&self) -> &str {
        &self.base
    }

    /// GET `path`: the status and the bounded body, or a transport error.
    async fn get_raw(
        &self,
        path: &str,
        max: usize,
    ) -> anyhow::Result<(reqwest::StatusCode, Vec<u8>)> {
        let url = format!("{}{path}", self.base);
        let resp = self
            .http
            .get(&url)
            .send()
            .await
            .with_context(|| format!("GET {url} failed"))?;
        let status = resp.status();
        Ok((status, read_bounded(resp, max).await?))
    }

    /// GET `path` as `T`; a non-2xx answer is an error with the node's message.
    async fn get<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        max: usize,
    ) -> anyhow::Result<T> {
        let (status, body) = self.get_raw(path, max).await?;
        if !status.is_success() {
            anyhow::bail!("{}", crate::client::error_message(status, &body));
        }
        serde_json::from_slice(&body)
            .with_context(|| format!("the node's answer to GET {path} is not what was expected"))
    }

    /// `GET /status`.
    pub(crate) async fn status(&self) -> anyhow::Result<Status> {
        self.get("/status", MAX_SMALL_ANSWER).await
    }

    /// `GET /accounts/{account}`.
    pub(crate) async fn account(&self, account: &PublicKey) -> anyhow::Result<Account> {
        self.get(&format!("/accounts/{account}"), MAX_SMALL_ANSWER)
            .await
    }

    /// `GET /blocks?from=&count=`: consecutive best-chain blocks (fewer at the tip).
    pub(crate) async fn blocks(&self, from: u64, count: u64) -> anyhow::Result<Vec<BlockView>> {
        let v: BlocksView = self
            .get(
                &format!("/blocks?from={from}&count={count}"),
                MAX_BLOCKS_ANSWER,
            )
            .await?;
        Ok(v.blocks)
    }

    /// `GET /transactions/{id}` summarised as one word: its `status` (plus a `reason` if the node
    /// gives one), or the error code of a refusal (`unknown_transaction`).
    pub(crate) async fn tx_status(&self, id: &Hash) -> String {
        match self
            .get_raw(&format!("/transactions/{id}"), MAX_SMALL_ANSWER)
            .await
        {
            Err(e) => format!("query_failed: {e:#}"),
            Ok((status, body)) => {
                let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                if status.is_success() {
                    let word = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
                    match (word("status"), word("reason")) {
                        (Some(s), Some(r)) => format!("{s}: {r}"),
                        (Some(s), None) => s,
                        (None, _) => format!("http_{}", status.as_u16()),
                    }
                } else {
                    error_code(status, &v)
                }
            }
        }
    }

    /// `POST /transactions` of one transaction.
    pub(crate) async fn submit(&self, tx: &Transaction) -> Outcome {
        match self.post_transactions(&serde_json::to_value(tx)).await {
            Err(code) => Outcome::Rejected(code),
            Ok((status, _)) if status == reqwest::StatusCode::ACCEPTED => Outcome::Accepted,
            Ok((status, v)) => Outcome::Rejected(error_code(status, &v)),
        }
    }

    /// `POST /transactions` of a JSON array. An answer that is not one outcome per transaction
    /// while the request was refused as a whole means the node does not know the array form.
    pub(crate) async fn submit_batch(&self, txs: &[Transaction]) -> BatchAnswer {
        let body = serde_json::to_value(txs);
        let (status, v) = match self.post_transactions(&body).await {
            Err(code) => {
                return BatchAnswer::PerTransaction(vec![Outcome::Rejected(code); txs.len()])
            }
            Ok(x) => x,
        };
        if let Some(items) = batch_items(&v).filter(|i| i.len() == txs.len()) {
            return BatchAnswer::PerTransaction(items.iter().map(item_outcome).collect());
        }
        if status.is_client_error() {
            return BatchAnswer::Unsupported(error_code(status, &v));
        }
        let code = error_code(status, &v);
        BatchAnswer::PerTransaction(vec![Outcome::Rejected(code); txs.len()])
    }

    /// POSTs `body` to `/transactions`; `Err` is a transport failure as a reason code.
    async fn post_transactions(
        &self,
        body: &serde_json::Result<Value>,
    ) -> Result<(reqwest::StatusCode, Value), String> {
        let body = body.as_ref().map_err(|e| format!("encode_error: {e}"))?;
        let url = format!("{}/transactions", self.base);
        let resp = self
            .http
            .post(&url)
            .json(body)
            .send()
            .await
            .map_err(|e| transport_code(&e))?;
        let status = resp.status();
        let body = read_bounded(resp, MAX_SMALL_ANSWER)
            .await
            .map_err(|_| "transport_error".to_string())?;
        Ok((status, serde_json::from_slice(&body).unwrap_or(Value::Null)))
    }
}

/// The reason code of a failed request that got no answer.
fn transport_code(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "transport_timeout".into()
    } else if e.is_connect() {
        "transport_connect".into()
    } else {
        "transport_error".into()
    }
}

/// The `error.code` of an error body, or `http_<status>`.
fn error_code(status: reqwest::StatusCode, v: &Value) -> String {
    v.pointer("/error/code")
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| format!("http_{}", status.as_u16()))
}

/// The per-transaction items of a batch answer: a top-level array, or the array under
/// `results` (or `transactions`) of an object.
fn batch_items(v: &Value) -> Option<&Vec<Value>> {
    v.as_array()
        .or_else(|| v.get("results").and_then(Value::as_array))
        .or_else(|| v.get("transactions").and_then(Value::as_array))
}

/// One item of a batch answer: accepted when it carries an `id` and no `error`.
fn item_outcome(item: &Value) -> Outcome {
    let code = item
        .pointer("/error/code")
        .or_else(|| item.get("error"))
        .and_then(Value::as_str);
    match (code, item.get("id")) {
        (None, Some(_)) if item.get("error").is_none() => Outcome::Accepted,
        (Some(c), _) => Outcome::Rejected(c.to_string()),
        _ => Outcome::Rejected("unreadable_batch_item".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn error_codes_come_from_the_body_or_the_status() {
        let v = json!({"error":{"code":"bad_nonce","message":"x"}});
        assert_eq!(
            error_code(reqwest::StatusCode::UNPROCESSABLE_ENTITY, &v),
            "bad_nonce"
        );
        assert_eq!(
            error_code(reqwest::StatusCode::BAD_GATEWAY, &Value::Null),
            "http_502"
        );
    }

    #[test]
    fn batch_items_are_read_per_transaction() {
        let v = json!([{"id":"ab"},{"error":{"code":"bad_nonce","message":"m"}},{"x":1}]);
        let items = batch_items(&v).unwrap();
        let got: Vec<Outcome> = items.iter().map(item_outcome).collect();
        assert_eq!(
            got,
            vec![
                Outcome::Accepted,
                Outcome::Rejected("bad_nonce".into()),
                Outcome::Rejected("unreadable_batch_item".into())
            ]
        );
        let v = json!({"results":[{"id":"ab","status":"accepted"}]});
        assert_eq!(batch_items(&v).map(Vec::len), Some(1));
        assert!(batch_items(&json!({"error":{"code":"malformed_json"}})).is_none());
    }
}
