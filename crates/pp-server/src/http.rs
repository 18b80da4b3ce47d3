//! The HTTP API (axum). Every endpoint and its JSON is documented with examples in
//! `docs/http-api.md`.
//!
//! Errors are always `{"error":{"code","message"}}` with a 4xx/5xx status, including axum's own
//! rejections, unknown routes, wrong methods, oversized bodies (tower-http body limit) and
//! timeouts: a last middleware rewrites any error response that is not already JSON.
//!
//! Two rules keep strangers (and web pages in the operator's browser) out:
//! * every `POST`/`PUT`/`PATCH` must be `Content-Type: application/json`, checked before anything
//!   else runs (`415 unsupported_media_type`). A page can send a cross-origin request without a
//!   CORS preflight only as `text/plain`, a form or multipart; and this API sends no CORS headers,
//!   so preflighted requests fail;
//! * admin endpoints (`POST /peers`) take the [`AdminAuth`] extractor: they need
//!   `Authorization: Bearer <token>` with the token of `data_dir/admin.token`
//!   (`401 unauthorized` otherwise), from any client address.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{ConnectInfo, FromRequestParts, Path, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use pp_ledger::{Block, Hash, PublicKey, Transaction};
use serde::Deserialize;
use serde_json::{json, Value};
use subtle::ConstantTimeEq as _;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;

#[path = "http_bans.rs"]
mod bans;
#[path = "http_proofs.rs"]
pub(crate) mod proofs;
#[path = "http_sse.rs"]
mod sse;

use crate::node::{ConnectError, Core, TxStatus};

/// Largest request body accepted, bytes.
pub const MAX_BODY_BYTES: usize = 256 * 1024;
/// Time allowed to answer one request.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Most transactions in one `POST /transactions` array (the body limit applies too).
pub const MAX_BATCH_TXS: usize = 1_000;
/// Most blocks returned by `GET /blocks`.
pub const MAX_BLOCKS_PER_PAGE: u64 = 100;
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

/// The admin token in force, attached to the router as an extension for [`AdminAuth`].
#[derive(Clone)]
pub(crate) struct AdminToken(pub(crate) Arc<str>);

/// Proof that a request carried the admin token: `Authorization: Bearer <token>` (scheme
/// case-insensitive), compared in constant time. Take it as a handler argument to make an
/// endpoint admin-only; without the token the handler never runs (`401 unauthorized`, with
/// `WWW-Authenticate: Bearer`). A router without an [`AdminToken`] refuses every admin call.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AdminAuth;

fn unauthorized(message: &str) -> Response {
    let mut res = ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message).into_response();
    res.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"pp-ledger admin\""),
    );
    res
}

/// The token of an `Authorization: Bearer <token>` header value.
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

impl<S: Send + Sync> FromRequestParts<S> for AdminAuth {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Response> {
        let Some(AdminToken(expected)) = parts.extensions.get::<AdminToken>() else {
            return Err(unauthorized("this node has no admin token"));
        };
        let mut values = parts.headers.get_all(header::AUTHORIZATION).iter();
        let (Some(value), None) = (values.next(), values.next()) else {
            return Err(unauthorized(
                "admin endpoint: send the token of the node's data_dir/admin.token as \
                 `Authorization: Bearer <token>` (exactly one Authorization header)",
            ));
        };
        let given = value.to_str().ok().and_then(bearer_token);
        match given {
            Some(t) if bool::from(t.as_bytes().ct_eq(expected.as_bytes())) => Ok(AdminAuth),
            Some(_) => Err(unauthorized(
                "wrong admin token (the node writes a new one to data_dir/admin.token at each start)",
            )),
            None => Err(unauthorized(
                "the Authorization header must be `Bearer <token>`",
            )),
        }
    }
}

/// Whether a Content-Type value is `application/json`, parameters (`; charset=utf-8`) allowed.
fn is_json_media_type(value: &str) -> bool {
    value
        .split(';')
        .next()
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
}

/// Refuses a request with a body (`POST`, `PUT`, `PATCH`) unless it is declared JSON, before the
/// body is read or any handler runs.
async fn require_json(req: Request, next: Next) -> Response {
    let method = req.method();
    if method == Method::POST || method == Method::PUT || method == Method::PATCH {
        let mut values = req.headers().get_all(header::CONTENT_TYPE).iter();
        let (first, second) = (values.next(), values.next());
        let ok = second.is_none()
            && first
                .and_then(|v| v.to_str().ok())
                .is_some_and(is_json_media_type);
        if !ok {
            let given = match (first, second) {
                (None, _) => "none".to_string(),
                (Some(_), Some(_)) => "several".to_string(),
                (Some(v), None) => format!("{:?}", String::from_utf8_lossy(v.as_bytes())),
            };
            return ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                format!("{method} needs Content-Type: application/json; got {given}"),
            )
            .into_response();
        }
    }
    next.run(req).await
}

/// The API router for `core`; admin endpoints accept `admin_token` (none: they refuse every
/// call). Serve it with `ConnectInfo<SocketAddr>` in the request extensions (see `http_serve`).
pub(crate) fn router(core: Arc<Core>, admin_token: Option<AdminToken>) -> Router {
    let router = Router::new()
        .route("/health", get(crate::health::health))
        .route("/status", get(status))
        .route("/blocks", get(blocks))
        .route("/blocks/{index}", get(block_by_index))
        .route("/blocks/hash/{hash}", get(block_by_hash))
        .route("/transactions", axum::routing::post(submit_tx))
        .route("/transactions/{id}", get(tx_status))
        .route("/accounts/{id}", get(account))
        .route("/peers", get(peers).post(add_peer))
        .route("/peers/known", get(known_peers))
        .route("/bans", get(bans::bans).post(bans::add_ban))
        .route("/bans/{target}", axum::routing::delete(bans::remove_ban))
        .route("/metrics", get(metrics))
        .route("/events", get(sse::events))
        .merge(crate::explorer::router())
        .merge(proofs::router())
        .route("/evidence", get(evidence))
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            core.clone(),
            fail_stop,
        ))
        .with_state::<()>(core);
    let router = match admin_token {
        Some(t) => router.layer(Extension(t)),
        None => router,
    };
    router
        .layer(axum::middleware::from_fn(require_json))
        .layer(RequestBodyLimitLayer::new(MAX_BODY_BYTES))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
        .layer(axum::middleware::map_response(json_errors))
        .layer(axum::middleware::from_fn(crate::health::access_log))
}

/// `router` for a runtime other than the node's (see [`crate::http_serve::serve_on_own_runtime`]):
/// reads (`GET`, `HEAD`) are answered where they arrive; every other request (a submission, a
/// dial, a ban) runs on the node's runtime `node`, so that what it starts (a peer connection
/// and its tasks, relays) lives with the node and not on the API's threads.
pub(crate) fn writes_on_node_runtime(router: Router, node: tokio::runtime::Handle) -> Router {
    router.layer(axum::middleware::from_fn_with_state(node, run_writes_on))
}

async fn run_writes_on(
    State(node): State<tokio::runtime::Handle>,
    req: Request,
    next: Next,
) -> Response {
    if matches!(*req.method(), Method::GET | Method::HEAD) {
        return next.run(req).await;
    }
    match node.spawn(next.run(req)).await {
        Ok(response) => response,
        // The node's runtime is shutting down (or the handler panicked, which it must not).
        Err(e) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting_down",
            format!("the node could not run the request: {e}"),
        )
        .into_response(),
    }
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

/// Once the storage failed, every endpoint but `/metrics` answers `503 storage_failed` with the
/// reason: memory may hold blocks and transactions the disk does not, and the node must not
/// serve them (`/health` included, so that a supervisor sees the failure).
async fn fail_stop(State(core): State<Arc<Core>>, req: Request, next: Next) -> Response {
    match core.storage_failure() {
        Some(reason) if req.uri().path() != "/metrics" => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "storage_failed",
            format!("the node stopped after a storage failure: {reason}"),
        )
        .into_response(),
        _ => next.run(req).await,
    }
}

pub(crate) fn status_json(core: &Core) -> Value {
    // Never the chain or mempool lock: `/status` answers while a block is being imported.
    let tip = core.tip_snapshot();
    let (height, tip) = (tip.height, tip.hash);
    let slot = core.current_slot();
    let pending = core.pending_count();
    let list = core.net().peers();
    let outbound = list
        .iter()
        .filter(|p| p.direction == pp_net::Direction::Outbound)
        .count();
    let (peers, inbound, p2p) = (list.len(), list.len() - outbound, core.p2p_enabled());
    json!({
        "node_id": core.node_id(),
        "network": core.genesis().network,
        "genesis_hash": core.genesis_hash(),
        "public_key": core.public_key(),
        "height": height,
        "tip_hash": tip,
        "slot": slot,
        "epoch": core.slots().epoch_of_slot(slot),
        "peers": peers,
        "outbound": outbound,
        "inbound": inbound,
        "p2p_enabled": p2p,
        "pending_transactions": pending,
        "sync": core.sync_status().json(),
    })
}

async fn status(State(core): State<Arc<Core>>) -> ApiResult {
    let mut v = status_json(&core);
    crate::health::add_status_fields(&core, &mut v);
    ok_json(v)
}

#[derive(Deserialize)]
struct Range {
    from: Option<u64>,
    count: Option<u64>,
}

/// Runs a heavy read (blocks from storage, their JSON, its serialization: about 10 ms for a
/// block of 1,000 transfers) on the node's blocking seam, so that no runtime worker waits for
/// it and cheap requests such as `/status` are answered meanwhile.
async fn offloaded(core: &Core, f: impl FnOnce(&Core) -> ApiResult + Send + 'static) -> ApiResult {
    core.offload(f).await.unwrap_or_else(|| {
        Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting_down",
            "the node is shutting down",
        ))
    })
}

async fn blocks(
    State(core): State<Arc<Core>>,
    q: Result<Query<Range>, QueryRejection>,
) -> ApiResult {
    let Query(r) = q?;
    let count = r.count.unwrap_or(10).min(MAX_BLOCKS_PER_PAGE);
    let from = r.from.unwrap_or(0);
    offloaded(&core, move |core| {
        let out: Vec<Value> = core
            .blocks_from(from, count)
            .map_err(storage_error)?
            .iter()
            .map(block_json)
            .collect();
        ok_json(json!({ "blocks": out }))
    })
    .await
}

async fn block_by_index(
    State(core): State<Arc<Core>>,
    p: Result<Path<String>, PathRejection>,
) -> ApiResult {
    let Path(s) = p?;
    let index: u64 = s.parse().map_err(|_| {
        ApiError::bad_request("bad_index", format!("{s:?} is not a block index (u64)"))
    })?;
    offloaded(&core, move |core| {
        match core.block_at(index).map_err(storage_error)? {
            Some(b) => ok_json(block_json(&b)),
            None => Err(ApiError::not_found(
                "unknown_block",
                format!("no block at index {index}; the height is {}", core.height()),
            )),
        }
    })
    .await
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
    offloaded(&core, move |core| {
        match core.block_by_hash(&h).map_err(storage_error)? {
            Some((b, on_best_chain)) => {
                let mut v = block_json(&b);
                v["on_best_chain"] = json!(on_best_chain);
                ok_json(v)
            }
            None => Err(ApiError::not_found(
                "unknown_block",
                format!("no block with hash {h}"),
            )),
        }
    })
    .await
}

async fn submit_tx(
    State(core): State<Arc<Core>>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let body = body?;
    if body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
        return submit_batch(&core, &body).await;
    }
    let tx: Transaction = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request("malformed_json", format!("not a transaction: {e}")))?;
    let id = tx.id();
    match core.submit_tx(tx).await {
        Ok(_) => Ok((StatusCode::ACCEPTED, Json(json!({ "id": id }))).into_response()),
        Err(e) => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            e.code(),
            e.to_string(),
        )),
    }
}

/// `POST /transactions` with an array: admits the transactions in order (each judged with the
/// earlier ones pending), journals every accepted one in one group commit, and answers `200`
/// with one result per transaction, in order, once they are durable.
async fn submit_batch(core: &Core, body: &[u8]) -> ApiResult {
    let items: Vec<Value> = serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(
            "malformed_json",
            format!("not an array of transactions: {e}"),
        )
    })?;
    if items.is_empty() || items.len() > MAX_BATCH_TXS {
        return Err(ApiError::bad_request(
            "bad_batch_size",
            format!(
                "a batch holds 1 to {MAX_BATCH_TXS} transactions; this one has {}",
                items.len()
            ),
        ));
    }
    let mut out: Vec<Value> = Vec::with_capacity(items.len());
    let mut txs = Vec::with_capacity(items.len());
    for item in items {
        match serde_json::from_value::<Transaction>(item) {
            Ok(tx) => {
                out.push(Value::Null);
                txs.push((out.len() - 1, tx));
            }
            Err(e) => out.push(json!({
                "status": "rejected",
                "id": null,
                "error": { "code": "malformed_transaction", "message": format!("not a transaction: {e}") },
            })),
        }
    }
    let (slots, txs): (Vec<usize>, Vec<Transaction>) = txs.into_iter().unzip();
    let ids: Vec<Hash> = txs.iter().map(Transaction::id).collect();
    let results = core.submit_txs(txs).await;
    for ((slot, id), r) in slots.into_iter().zip(ids).zip(results) {
        out[slot] = match r {
            Ok(_) => json!({ "status": "accepted", "id": id }),
            Err(e) => json!({
                "status": "rejected",
                "id": id,
                "error": { "code": e.code(), "message": e.to_string() },
            }),
        };
    }
    ok_json(Value::Array(out))
}

async fn tx_status(
    State(core): State<Arc<Core>>,
    p: Result<Path<String>, PathRejection>,
) -> ApiResult {
    let Path(s) = p?;
    let id = parse_hash(&s, "id")?;
    match core.tx_status(&id).map_err(storage_error)? {
        TxStatus::Pending => ok_json(json!({ "id": id, "status": "pending", "block": null })),
        TxStatus::Included(b) => ok_json(json!({
            "id": id,
            "status": "included",
            "block": { "index": b.header.index, "hash": b.hash() },
        })),
        TxStatus::Dropped(reason) => ok_json(json!({
            "id": id,
            "status": "dropped",
            "reason": reason.code(),
            "message": reason.message(),
            "block": null,
        })),
        TxStatus::Unknown => Err(ApiError::not_found(
            "unknown_transaction",
            format!("transaction {id} is neither pending nor on the best chain"),
        )),
    }
}

async fn account(
    State(core): State<Arc<Core>>,
    p: Result<Path<String>, PathRejection>,
) -> ApiResult {
    let Path(s) = p?;
    let pk = PublicKey::from_hex(&s)
        .map_err(|e| ApiError::bad_request("bad_account", format!("account {s:?}: {e}")))?;
    let pending_nonce = core.pending_nonce(&pk);
    let c = core.chain();
    let st = c.state();
    if !st.account_exists(&pk) {
        return Err(ApiError::not_found(
            "unknown_account",
            format!("account {pk} does not exist on the chain"),
        ));
    }
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
    let peers = core.net().peers();
    ok_json(json!({ "peers": peers }))
}

/// The address book's size: entries in new and tried, distinct address groups, and tried
/// collisions waiting for a feeler.
async fn known_peers(State(core): State<Arc<Core>>) -> ApiResult {
    let counts = core.net().book_counts();
    ok_json(json!({
        "new": counts.new,
        "tried": counts.tried,
        "groups": counts.groups,
        "collisions": counts.collisions,
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AddPeer {
    addr: String,
}

async fn add_peer(
    State(core): State<Arc<Core>>,
    _admin: AdminAuth,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let body = body?;
    let req: AddPeer = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request(
            "malformed_json",
            format!("expected {{\"addr\":\"host:port\"}}: {e}"),
        )
    })?;
    tracing::info!(%client, addr = %req.addr, "admin: POST /peers");
    match core.connect(&req.addr, CONNECT_TIMEOUT).await {
        Ok(info) => ok_json(json!({ "peer": info })),
        Err(ConnectError::P2pDisabled) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "p2p_disabled",
            "peer-to-peer networking is disabled on this node",
        )),
        Err(ConnectError::Net(e)) => Err(ApiError::new(
            StatusCode::BAD_GATEWAY,
            "connect_failed",
            format!("cannot connect to {}: {e}", req.addr),
        )),
        Err(ConnectError::Timeout(t)) => Err(ApiError::new(
            StatusCode::GATEWAY_TIMEOUT,
            "connect_timeout",
            format!("no handshake with {} within {t:?}", req.addr),
        )),
    }
}

async fn metrics(State(core): State<Arc<Core>>) -> Response {
    let mut res = Response::new(Body::from(core.metrics_text()));
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    res
}

/// A storage read failed: `500 storage_error`.
fn storage_error(e: crate::storage::StorageError) -> ApiError {
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "storage_error",
        e.to_string(),
    )
}

/// `GET /evidence`: the stored equivocation evidence (see `evidence.rs`).
async fn evidence(State(core): State<Arc<Core>>) -> ApiResult {
    ok_json(core.evidence_json().map_err(storage_error)?)
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

    fn post_peers(from: [u8; 4], auth: Option<&str>, content_type: &str) -> Request<Body> {
        let mut b = Request::post("/peers").header("content-type", content_type);
        if let Some(a) = auth {
            b = b.header("authorization", a);
        }
        let mut req = b.body(Body::from(r#"{"addr":"127.0.0.1:9"}"#)).unwrap();
        req.extensions_mut()
            .insert(ConnectInfo(SocketAddr::from((from, 5555))));
        req
    }

    const TOKEN: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn app(core: &Arc<Core>, token: Option<&str>) -> Router {
        router(core.clone(), token.map(|t| AdminToken(Arc::from(t))))
    }

    #[tokio::test]
    async fn add_peer_needs_the_admin_token_from_every_address() {
        let dir = tempfile::tempdir().unwrap();
        let core = crate::node::testing::core(dir.path(), &KeyPair::from_seed([71u8; 32]));
        let json = "application/json";
        let good = format!("Bearer {TOKEN}");
        for from in [[127, 0, 0, 1], [10, 0, 0, 7]] {
            for auth in [
                None,
                Some("Bearer wrong"),
                Some(&good[..good.len() - 1]),
                Some(TOKEN),
                Some("Basic dXNlcjpwYXNz"),
                Some("Bearer "),
            ] {
                let (st, v) = call(app(&core, Some(TOKEN)), post_peers(from, auth, json)).await;
                assert_eq!(st, StatusCode::UNAUTHORIZED, "{from:?} {auth:?}");
                assert_eq!(v["error"]["code"], "unauthorized");
            }
            // With the token it gets past the check (and fails later: P2P is off here).
            for auth in [good.as_str(), &format!("bearer  {TOKEN} ")] {
                let req = post_peers(from, Some(auth), "application/json; charset=utf-8");
                let (st, v) = call(app(&core, Some(TOKEN)), req).await;
                assert_eq!(st, StatusCode::CONFLICT, "{from:?} {auth:?}");
                assert_eq!(v["error"]["code"], "p2p_disabled");
            }
        }
        // No token configured: nobody is admin.
        let (st, _) = call(
            app(&core, None),
            post_peers([127, 0, 0, 1], Some(&good), json),
        )
        .await;
        assert_eq!(st, StatusCode::UNAUTHORIZED);
    }

    #[tokio::test]
    async fn posts_that_are_not_json_are_refused_before_anything_runs() {
        let dir = tempfile::tempdir().unwrap();
        let core = crate::node::testing::core(dir.path(), &KeyPair::from_seed([72u8; 32]));
        let good = format!("Bearer {TOKEN}");
        for ct in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "application/jsonp",
            "",
        ] {
            let (st, v) = call(
                app(&core, Some(TOKEN)),
                post_peers([127, 0, 0, 1], Some(&good), ct),
            )
            .await;
            assert_eq!(st, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{ct:?}");
            assert_eq!(v["error"]["code"], "unsupported_media_type");
            let req = Request::post("/transactions")
                .header("content-type", ct)
                .body(Body::from("{}"))
                .unwrap();
            let (st, _) = call(app(&core, Some(TOKEN)), req).await;
            assert_eq!(st, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{ct:?}");
        }
        let req = Request::post("/transactions")
            .body(Body::from("{}"))
            .unwrap();
        let (st, _) = call(app(&core, Some(TOKEN)), req).await;
        assert_eq!(st, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        // GETs need no content type.
        let req = Request::get("/health").body(Body::empty()).unwrap();
        let (st, _) = call(app(&core, Some(TOKEN)), req).await;
        assert_eq!(st, StatusCode::OK);
        assert!(is_json_media_type("Application/JSON ; charset=utf-8"));
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
