//! The HTTP API (axum). Every endpoint and its JSON is documented with examples in
//! `docs/http-api.md`.
//!
//! Errors are always `{"error":{"code","message"}}` with a 4xx/5xx status, including axum's own
//! rejections, unknown routes, wrong methods, oversized bodies (tower-http body limit) and
//! timeouts: a last middleware rewrites any error response that is not already JSON.
//! Endpoints that change the node (`POST /peers`) answer only clients on a loopback address.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use pp_ledger::{Block, Hash, PublicKey, Transaction};
use serde::Deserialize;
use serde_json::{json, Value};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;

use crate::mempool::Inserted;
use crate::node::{Core, LedgerView};

/// Largest request body accepted, bytes.
pub const MAX_BODY_BYTES: usize = 256 * 1024;
/// Time allowed to answer one request.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Most blocks returned by `GET /blocks`.
pub const MAX_BLOCKS_PER_PAGE: u64 = 100;
/// Newest best-chain blocks searched for a transaction that is not (yet) in the index.
const RECENT_BLOCKS_SCANNED: u64 = 4;
/// How long `POST /peers` waits for the dial and handshake (below the request timeout, so the
/// client gets the specific error).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(9);

/// An error answer: status, machine-readable code, human-readable message with the values.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    code: String,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, code: impl Into<String>, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code: code.into(),
            message: message.into(),
        }
    }

    fn not_found(code: &str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, code, message)
    }

    fn bad_request(code: &str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }
}

fn error_body(code: &str, message: &str) -> Value {
    json!({ "error": { "code": code, "message": message } })
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(error_body(&self.code, &self.message))).into_response()
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        ApiError::new(r.status(), "bad_path", r.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        ApiError::new(r.status(), "bad_query", r.body_text())
    }
}

impl From<BytesRejection> for ApiError {
    fn from(r: BytesRejection) -> Self {
        let status = r.status();
        let code = if status == StatusCode::PAYLOAD_TOO_LARGE {
            "body_too_large"
        } else {
            "bad_body"
        };
        ApiError::new(status, code, r.body_text())
    }
}

type ApiResult = Result<Response, ApiError>;

/// The code used when rewriting a non-JSON error response of the given status.
fn code_for_status(s: StatusCode) -> &'static str {
    match s {
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::PAYLOAD_TOO_LARGE => "body_too_large",
        StatusCode::REQUEST_TIMEOUT => "timeout",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        s if s.is_client_error() => "bad_request",
        _ => "internal_error",
    }
}

/// Rewrites error responses that are not JSON (from axum or tower-http) into the JSON error form.
async fn json_errors(res: Response) -> Response {
    let s = res.status();
    if !(s.is_client_error() || s.is_server_error()) {
        return res;
    }
    let is_json = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json {
        return res;
    }
    let message = s.canonical_reason().unwrap_or("error").to_string();
    let mut out = (s, Json(error_body(code_for_status(s), &message))).into_response();
    // Keep `Allow` and the like that tell the client how to fix the request.
    for (k, v) in res.headers() {
        if k != header::CONTENT_TYPE && k != header::CONTENT_LENGTH {
            out.headers_mut().insert(k.clone(), v.clone());
        }
    }
    out
}

async fn not_found() -> ApiError {
    ApiError::not_found("not_found", "no such endpoint")
}

/// The API router for `core`. Serve it with connect info (`into_make_service_with_connect_info
/// ::<SocketAddr>`) so that `POST /peers` can check the client address.
pub(crate) fn router(core: Arc<Core>) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/status", get(status))
        .route("/blocks", get(blocks))
        .route("/blocks/{index}", get(block_by_index))
        .route("/blocks/hash/{hash}", get(block_by_hash))
        .route("/transactions", axum::routing::post(submit_tx))
        .route("/transactions/{id}", get(tx_status))
        .route("/accounts/{id}", get(account))
        .route("/peers", get(peers).post(add_peer))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .with_state(core)
        .layer(RequestBodyLimitLayer::new(MAX_BODY_BYTES))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
        .layer(axum::middleware::map_response(json_errors))
}

fn ok_json(v: Value) -> ApiResult {
    Ok(Json(v).into_response())
}

/// The JSON form of a block: `{"hash","header","signature","transactions"}`.
pub(crate) fn block_json(b: &Block) -> Value {
    json!({
        "hash": b.hash(),
        "header": b.header,
        "signature": b.signature,
        "transactions": b.transactions,
    })
}

async fn health(State(core): State<Arc<Core>>) -> ApiResult {
    let height = core.chain().height();
    ok_json(json!({ "status": "ok", "height": height }))
}

pub(crate) fn status_json(core: &Core) -> Value {
    let (height, tip) = {
        let c = core.chain();
        (c.height(), c.tip_hash())
    };
    let slot = core.current_slot();
    let pending = core.mempool().len();
    let (peers, p2p) = match core.net() {
        Some(n) => (n.peer_count(), true),
        None => (0, false),
    };
    json!({
        "node_id": core.node_id,
        "network": core.genesis.network,
        "genesis_hash": core.genesis_hash,
        "public_key": core.key.public(),
        "height": height,
        "tip_hash": tip,
        "slot": slot,
        "epoch": core.slots.epoch_of_slot(slot),
        "peers": peers,
        "p2p_enabled": p2p,
        "pending_transactions": pending,
    })
}

async fn status(State(core): State<Arc<Core>>) -> ApiResult {
    ok_json(status_json(&core))
}

#[derive(Deserialize)]
struct Range {
    from: Option<u64>,
    count: Option<u64>,
}

async fn blocks(
    State(core): State<Arc<Core>>,
    q: Result<Query<Range>, QueryRejection>,
) -> ApiResult {
    let Query(r) = q?;
    let count = r.count.unwrap_or(10).min(MAX_BLOCKS_PER_PAGE);
    let from = r.from.unwrap_or(0);
    let c = core.chain();
    let out: Vec<Value> = (from..from.saturating_add(count))
        .map_while(|i| c.block_at(i).map(block_json))
        .collect();
    ok_json(json!({ "blocks": out }))
}

async fn block_by_index(
    State(core): State<Arc<Core>>,
    p: Result<Path<String>, PathRejection>,
) -> ApiResult {
    let Path(s) = p?;
    let index: u64 = s.parse().map_err(|_| {
        ApiError::bad_request("bad_index", format!("{s:?} is not a block index (u64)"))
    })?;
    let c = core.chain();
    match c.block_at(index) {
        Some(b) => ok_json(block_json(b)),
        None => Err(ApiError::not_found(
            "unknown_block",
            format!("no block at index {index}; the height is {}", c.height()),
        )),
    }
}

fn parse_hash(s: &str, what: &str) -> Result<Hash, ApiError> {
    Hash::from_hex(s)
        .map_err(|e| ApiError::bad_request(&format!("bad_{what}"), format!("{what} {s:?}: {e}")))
}

async fn block_by_hash(
    State(core): State<Arc<Core>>,
    p: Result<Path<String>, PathRejection>,
) -> ApiResult {
    let Path(s) = p?;
    let h = parse_hash(&s, "hash")?;
    let c = core.chain();
    match c.block_by_hash(&h) {
        Some(b) => {
            let mut v = block_json(b);
            v["on_best_chain"] = json!(c.is_on_best_chain(&h));
            ok_json(v)
        }
        None => Err(ApiError::not_found(
            "unknown_block",
            format!("no block with hash {h}"),
        )),
    }
}

async fn submit_tx(
    State(core): State<Arc<Core>>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let body = body?;
    let tx: Transaction = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request("malformed_json", format!("not a transaction: {e}")))?;
    let id = tx.id();
    match core.admit_tx(tx.clone()) {
        Ok(inserted) => {
            if inserted == Inserted::New {
                if let Some(n) = core.net() {
                    n.broadcast_tx(&tx, None);
                }
            }
            Ok((StatusCode::ACCEPTED, Json(json!({ "id": id }))).into_response())
        }
        Err(e) => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            e.code(),
            e.to_string(),
        )),
    }
}

async fn tx_status(
    State(core): State<Arc<Core>>,
    p: Result<Path<String>, PathRejection>,
) -> ApiResult {
    let Path(s) = p?;
    let id = parse_hash(&s, "id")?;
    if core.mempool().contains(&id) {
        return ok_json(json!({ "id": id, "status": "pending", "block": null }));
    }
    let stored = core.storage.tx_block(&id).map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "storage_error",
            e.to_string(),
        )
    })?;
    let c = core.chain();
    let found = stored
        .filter(|h| c.is_on_best_chain(h))
        .and_then(|h| c.block_by_hash(&h))
        .or_else(|| {
            // A block being committed right now has left the mempool but is not indexed yet:
            // look at the newest blocks in memory.
            let h = c.height();
            (h.saturating_sub(RECENT_BLOCKS_SCANNED)..=h)
                .rev()
                .filter_map(|i| c.block_at(i))
                .find(|b| b.transactions.iter().any(|t| t.id() == id))
        });
    if let Some(b) = found {
        return ok_json(json!({
            "id": id,
            "status": "included",
            "block": { "index": b.header.index, "hash": b.hash() },
        }));
    }
    Err(ApiError::not_found(
        "unknown_transaction",
        format!("transaction {id} is neither pending nor on the best chain"),
    ))
}

async fn account(
    State(core): State<Arc<Core>>,
    p: Result<Path<String>, PathRejection>,
) -> ApiResult {
    let Path(s) = p?;
    let pk = PublicKey::from_hex(&s)
        .map_err(|e| ApiError::bad_request("bad_account", format!("account {s:?}: {e}")))?;
    let c = core.chain();
    let st = c.state();
    if !st.account_exists(&pk) {
        return Err(ApiError::not_found(
            "unknown_account",
            format!("account {pk} does not exist on the chain"),
        ));
    }
    let view = LedgerView {
        state: st,
        genesis_hash: core.genesis_hash,
    };
    let pending_nonce = core.mempool().pending_nonce(&view, &pk);
    ok_json(json!({
        "account": pk,
        "balance": st.balance(&pk),
        "nonce": st.nonce(&pk),
        "stake": st.stake(&pk),
        "stakeholder_id": st.stakeholder_id(&pk),
        "pending_nonce": pending_nonce,
    }))
}

async fn peers(State(core): State<Arc<Core>>) -> ApiResult {
    let peers = core.net().map(|n| n.peers()).unwrap_or_default();
    ok_json(json!({ "peers": peers }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AddPeer {
    addr: String,
}

async fn add_peer(
    State(core): State<Arc<Core>>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult {
    if !client.ip().is_loopback() {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!(
                "POST /peers is only allowed from loopback, not {}",
                client.ip()
            ),
        ));
    }
    let body = body?;
    let req: AddPeer = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request(
            "malformed_json",
            format!("expected {{\"addr\":\"host:port\"}}: {e}"),
        )
    })?;
    let Some(net) = core.net().cloned() else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "p2p_disabled",
            "peer-to-peer networking is disabled on this node",
        ));
    };
    net.add_known_addr(&req.addr);
    match tokio::time::timeout(CONNECT_TIMEOUT, net.connect(&req.addr)).await {
        Ok(Ok(info)) => {
            if info.tip_index > core.chain().height() {
                core.request_sync(info.id, info.tip_index);
            }
            ok_json(json!({ "peer": info }))
        }
        Ok(Err(e)) => Err(ApiError::new(
            StatusCode::BAD_GATEWAY,
            "connect_failed",
            format!("cannot connect to {}: {e}", req.addr),
        )),
        Err(_) => Err(ApiError::new(
            StatusCode::GATEWAY_TIMEOUT,
            "connect_timeout",
            format!(
                "no handshake with {} within {:?}",
                req.addr, CONNECT_TIMEOUT
            ),
        )),
    }
}

async fn metrics(State(core): State<Arc<Core>>) -> Response {
    if let Some(n) = core.net() {
        core.metrics
            .peers
            .set(crate::metrics::gauge_value(n.peer_count()));
    }
    let mut res = Response::new(Body::from(core.metrics.encode()));
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    res
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Request;
    use pp_ledger::KeyPair;
    use tower::ServiceExt as _;

    async fn call(app: Router, req: Request<Body>) -> (StatusCode, Value) {
        let res = app.oneshot(req).await.unwrap();
        let status = res.status();
        let bytes = axum::body::to_bytes(res.into_body(), 1 << 20)
            .await
            .unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    fn post_peers(from: [u8; 4]) -> Request<Body> {
        let mut req = Request::post("/peers")
            .header("content-type", "application/json")
            .body(Body::from(r#"{"addr":"127.0.0.1:9"}"#))
            .unwrap();
        req.extensions_mut()
            .insert(ConnectInfo(SocketAddr::from((from, 5555))));
        req
    }

    #[tokio::test]
    async fn add_peer_is_forbidden_to_non_loopback_clients() {
        let dir = tempfile::tempdir().unwrap();
        let core = crate::node::testing::core(dir.path(), &KeyPair::from_seed([71u8; 32]));
        let (st, v) = call(router(core.clone()), post_peers([10, 0, 0, 7])).await;
        assert_eq!(st, StatusCode::FORBIDDEN);
        assert_eq!(v["error"]["code"], "forbidden");
        // From loopback it gets past the check (and fails later: P2P is off here).
        let (st, v) = call(router(core), post_peers([127, 0, 0, 1])).await;
        assert_eq!(st, StatusCode::CONFLICT);
        assert_eq!(v["error"]["code"], "p2p_disabled");
    }

    #[tokio::test]
    async fn non_json_errors_are_rewritten_to_the_json_error_form() {
        let res =
            json_errors((StatusCode::PAYLOAD_TOO_LARGE, "length limit exceeded").into_response())
                .await;
        assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
        let bytes = axum::body::to_bytes(res.into_body(), 1 << 20)
            .await
            .unwrap();
        let v: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(v["error"]["code"], "body_too_large");
        // Successful answers pass untouched.
        let ok = json_errors("fine".into_response()).await;
        assert_eq!(ok.status(), StatusCode::OK);
    }
}
