//! `GET /bans`, `POST /bans` and `DELETE /bans/{target}`: the bans in force, and the
//! operator's own. A ban names an identity key (64 hex digits) or an IP address. Changes are
//! stored at once, so they hold across restarts (automatic bans are stored every few slots and
//! at shutdown).

use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use pp_net::BanTarget;
use serde::Deserialize;
use serde_json::json;

use super::{ok_json, AdminAuth, ApiError, ApiResult};
use crate::node::Core;

/// Longest ban the operator may set: ten years.
const MAX_BAN_SECONDS: u64 = 10 * 365 * 24 * 3600;
/// Longest reason kept, in bytes.
const MAX_REASON_BYTES: usize = 256;

/// The network, for the admin calls that change bans (`409 p2p_disabled` without P2P).
fn net_of(core: &Core) -> Result<&Arc<dyn crate::net::PeerNet>, ApiError> {
    if !core.p2p_enabled() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "p2p_disabled",
            "peer-to-peer networking is disabled on this node",
        ));
    }
    Ok(core.net())
}

fn parse_target(s: &str) -> Result<BanTarget, ApiError> {
    s.parse::<BanTarget>()
        .map_err(|e| ApiError::bad_request("bad_target", e))
}

fn persist(core: &Core) -> Result<(), ApiError> {
    core.save_bans().map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "storage_error",
            e.to_string(),
        )
    })
}

pub(super) async fn bans(State(core): State<Arc<Core>>) -> ApiResult {
    let bans = core.net().bans();
    ok_json(json!({ "bans": bans }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AddBan {
    target: String,
    seconds: u64,
    reason: Option<String>,
}

pub(super) async fn add_ban(
    State(core): State<Arc<Core>>,
    _admin: AdminAuth,
    body: Result<axum::body::Bytes, BytesRejection>,
) -> ApiResult {
    let body = body?;
    let req: AddBan = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request(
            "malformed_json",
            format!(
                "expected {{\"target\":\"<key hex or IP>\",\"seconds\":N,\"reason\":\"...\"}}: {e}"
            ),
        )
    })?;
    let target = parse_target(&req.target)?;
    if !(1..=MAX_BAN_SECONDS).contains(&req.seconds) {
        return Err(ApiError::bad_request(
            "bad_seconds",
            format!("seconds must be 1..={MAX_BAN_SECONDS}, got {}", req.seconds),
        ));
    }
    let reason = req
        .reason
        .unwrap_or_else(|| "banned by the operator".into());
    if reason.len() > MAX_REASON_BYTES || reason.chars().any(char::is_control) {
        return Err(ApiError::bad_request(
            "bad_reason",
            format!("reason must be at most {MAX_REASON_BYTES} bytes without control characters"),
        ));
    }
    let net = net_of(&core)?;
    if !net.ban(target, Duration::from_secs(req.seconds), &reason) {
        return Err(ApiError::new(
            StatusCode::INSUFFICIENT_STORAGE,
            "too_many_bans",
            format!(
                "the operator ban list is full ({} bans)",
                pp_net::reputation::MAX_MANUAL_BANS
            ),
        ));
    }
    persist(&core)?;
    tracing::info!(%target, seconds = req.seconds, %reason, "admin: ban");
    let ban = net.bans().into_iter().find(|b| b.target == target);
    Ok((StatusCode::CREATED, Json(json!({ "ban": ban }))).into_response())
}

pub(super) async fn remove_ban(
    State(core): State<Arc<Core>>,
    _admin: AdminAuth,
    p: Result<Path<String>, PathRejection>,
) -> ApiResult {
    let Path(s) = p?;
    let target = parse_target(&s)?;
    let net = net_of(&core)?;
    if !net.unban(target) {
        return Err(ApiError::not_found(
            "unknown_ban",
            format!("no ban on {target} is in force"),
        ));
    }
    persist(&core)?;
    tracing::info!(%target, "admin: unban");
    ok_json(json!({ "unbanned": target }))
}
