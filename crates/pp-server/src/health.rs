//! `GET /health` (readiness, and liveness with `?live`), the operator fields of `GET /status`, and
//! the HTTP access log. The rules are in [`crate::observe`]; the answers in `docs/http-api.md`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{ConnectInfo, RawQuery, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use crate::node::Core;
use crate::observe::Readiness;
use crate::ops_metrics::VERSION;

/// Whether the query string asks for the liveness probe (`?live`, `?live=1`, `?x&live`).
fn wants_live(query: Option<&str>) -> bool {
    query.is_some_and(|q| {
        q.split('&')
            .any(|kv| kv == "live" || kv.starts_with("live="))
    })
}

/// `GET /health`: `200 ready` or `503 not_ready` with the reason; `GET /health?live`: `200` while
/// the process serves. A node whose storage failed never gets here: every endpoint, both forms
/// of this one included, answers `503 storage_failed` (see `http.rs`), and a supervisor should
/// restart it.
pub(crate) async fn health(State(core): State<Arc<Core>>, RawQuery(q): RawQuery) -> Response {
    if wants_live(q.as_deref()) {
        let height = core.height();
        return Json(json!({ "status": "ok", "height": height })).into_response();
    }
    let r = core.readiness();
    let (status, body) = health_answer(&r);
    (status, Json(body)).into_response()
}

/// The status code and body of a readiness answer.
fn health_answer(r: &Readiness) -> (StatusCode, Value) {
    let mut body = json!({
        "status": "ready",
        "height": r.height,
        "tip_age_ms": r.tip_age_ms,
        "max_tip_age_ms": r.max_tip_age_ms,
        "syncing": r.syncing,
        "best_peer_height": r.best_peer_height,
        "peers": r.peers(),
    });
    let Some(reason) = r.not_ready else {
        return (StatusCode::OK, body);
    };
    let message = match reason {
        crate::observe::NotReady::Syncing => format!(
            "syncing: a peer claims height {}, this node is at {}",
            r.best_peer_height.unwrap_or(0),
            r.height
        ),
        crate::observe::NotReady::NoPeers => {
            "no peer connected, although the node has peer addresses to reach".to_string()
        }
        crate::observe::NotReady::TipStale => format!(
            "the tip's slot started {} ms ago (the limit is {} ms)",
            r.tip_age_ms, r.max_tip_age_ms
        ),
    };
    body["status"] = json!("not_ready");
    body["reason"] = json!(reason.code());
    // Also in the API-wide error shape, for clients that read only `error.code`.
    body["error"] = json!({ "code": "not_ready", "message": message });
    (StatusCode::SERVICE_UNAVAILABLE, body)
}

/// Adds the operator fields to a `/status` answer: `version`, `uptime_s`, `tip_age_ms`,
/// `syncing`, `best_peer_height`.
pub(crate) fn add_status_fields(core: &Core, v: &mut Value) {
    let r = core.readiness();
    v["version"] = json!(VERSION);
    v["uptime_s"] = json!(core.uptime_s());
    v["tip_age_ms"] = json!(r.tip_age_ms);
    v["syncing"] = json!(r.syncing);
    v["best_peer_height"] = json!(r.best_peer_height);
}

/// Logs every request at DEBUG (target `pp_server::access`): client, method, path, status and
/// time taken. Headers and bodies are not logged (the admin token travels in a header).
pub(crate) async fn access_log(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let client = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let resp = next.run(req).await;
    tracing::debug!(
        target: "pp_server::access",
        client = ?client,
        %method,
        %path,
        status = resp.status().as_u16(),
        micros = started.elapsed().as_micros() as u64,
        "http"
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::NotReady;

    fn readiness(not_ready: Option<NotReady>) -> Readiness {
        Readiness {
            height: 7,
            tip_age_ms: 30_000,
            max_tip_age_ms: 10_000,
            best_peer_height: Some(7),
            inbound: 1,
            outbound: 2,
            p2p: true,
            peers_expected: true,
            syncing: false,
            not_ready,
        }
    }

    #[test]
    fn live_is_recognized_in_any_position() {
        for q in ["live", "live=1", "a=b&live", "live&x=y"] {
            assert!(wants_live(Some(q)), "{q}");
        }
        for q in ["", "lively", "x=live"] {
            assert!(!wants_live(Some(q)), "{q}");
        }
        assert!(!wants_live(None));
    }

    #[test]
    fn a_ready_node_answers_200_with_its_figures() {
        let (st, v) = health_answer(&readiness(None));
        assert_eq!(st, StatusCode::OK);
        assert_eq!(v["status"], "ready");
        assert_eq!(v["peers"], 3);
        assert!(v.get("reason").is_none() && v.get("error").is_none(), "{v}");
    }

    #[test]
    fn a_stale_node_answers_503_with_the_reason_in_both_shapes() {
        let (st, v) = health_answer(&readiness(Some(NotReady::TipStale)));
        assert_eq!(st, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(v["status"], "not_ready");
        assert_eq!(v["reason"], "tip_stale");
        assert_eq!(v["tip_age_ms"], 30_000);
        assert_eq!(v["error"]["code"], "not_ready");
        assert!(v["error"]["message"].as_str().unwrap().contains("30000 ms"));
    }
}
