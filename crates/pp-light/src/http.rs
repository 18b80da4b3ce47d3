//! The light client's HTTP API (docs/light-client.md): `GET /status`,
//! `GET /accounts/{id}[?block=HASH]`,
//! `GET /transactions/{id}`. Every value it answers was proven against a header it verified,
//! and says which; a proof that fails is an error naming what failed, never a value.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use pp_ledger::{Hash, PublicKey};
use serde_json::json;

use crate::client::{LightClient, LightError};
use crate::proofs::ProofError;

/// The routes, over `client`.
pub fn router(client: Arc<LightClient>) -> Router {
    Router::new()
        .route("/status", get(status))
        .route("/accounts/{id}", get(account))
        .route("/transactions/{id}", get(transaction))
        .with_state(client)
}

fn error(status: StatusCode, code: &str, message: String) -> Response {
    (
        status,
        Json(json!({ "error": { "code": code, "message": message } })),
    )
        .into_response()
}

/// The status and `error.code` of a refusal: what failed, by name.
fn refusal(e: &LightError) -> Response {
    let (status, code) = match e {
        LightError::Proof(p) => match p {
            ProofError::Unavailable(_) => (StatusCode::BAD_GATEWAY, "full_node_unavailable"),
            ProofError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ProofError::Malformed(_) => (StatusCode::BAD_GATEWAY, "malformed_proof"),
            ProofError::UnknownHeader(_) => (StatusCode::BAD_GATEWAY, "unknown_header"),
            ProofError::OtherBlock { .. } => (StatusCode::BAD_GATEWAY, "other_block"),
            ProofError::HeaderMismatch(_) => (StatusCode::BAD_GATEWAY, "header_mismatch"),
            ProofError::WrongRoot { .. } => (StatusCode::BAD_GATEWAY, "wrong_root"),
            ProofError::BadProof(_) => (StatusCode::BAD_GATEWAY, "bad_proof"),
            ProofError::NoStateRoot { .. } => (StatusCode::NOT_IMPLEMENTED, "no_state_root"),
        },
        LightError::NoFullNode => (StatusCode::SERVICE_UNAVAILABLE, "no_full_node"),
        _ => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
    };
    error(status, code, e.to_string())
}

async fn status(State(c): State<Arc<LightClient>>) -> Response {
    let tip = c.tip();
    Json(json!({
        "light": true,
        "genesis_hash": c.genesis_hash(),
        "height": tip.height,
        "tip": tip,
        "sync": c.sync_status(),
    }))
    .into_response()
}

/// The query of `GET /accounts/{id}`.
#[derive(Debug, serde::Deserialize)]
struct AtBlock {
    /// A block of the verified best chain (hex hash); the tip if absent.
    block: Option<String>,
}

async fn account(
    State(c): State<Arc<LightClient>>,
    Path(id): Path<String>,
    Query(q): Query<AtBlock>,
) -> Response {
    let Ok(account) = PublicKey::from_hex(&id) else {
        return error(
            StatusCode::BAD_REQUEST,
            "bad_account",
            format!("account {id:?} is not a 64-hex-digit public key"),
        );
    };
    let proven = match q.block.as_deref().map(Hash::from_hex) {
        None => c.account(&account).await,
        Some(Ok(block)) => c.account_at(&account, &block).await,
        Some(Err(_)) => {
            return error(
                StatusCode::BAD_REQUEST,
                "bad_block",
                "block is not a 64-hex-digit hash".into(),
            )
        }
    };
    match proven {
        Ok(a) => Json(json!({
            "account": a.account,
            "present": a.leaf.is_some(),
            "balance": a.leaf.as_ref().map_or(0, |l| l.balance),
            "nonce": a.leaf.as_ref().map_or(0, |l| l.nonce),
            "stake": a.leaf.as_ref().map_or(0, |l| l.stake),
            "stakeholder_id": a.leaf.as_ref().and_then(|l| l.stakeholder_id.clone()),
            "state_root": a.state_root,
            "block": a.block,
            "verified": true,
        }))
        .into_response(),
        Err(e) => refusal(&e),
    }
}

async fn transaction(State(c): State<Arc<LightClient>>, Path(id): Path<String>) -> Response {
    let Ok(id) = Hash::from_hex(&id) else {
        return error(
            StatusCode::BAD_REQUEST,
            "bad_id",
            format!("transaction id {id:?} is not a 64-hex-digit hash"),
        );
    };
    match c.transaction(&id).await {
        Ok(t) => Json(json!({
            "id": t.id,
            "included": true,
            "position": t.position,
            "tx_root": t.tx_root,
            "block": t.block,
            "verified": true,
        }))
        .into_response(),
        Err(e) => refusal(&e),
    }
}
