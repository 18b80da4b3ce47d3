//! Light-client endpoints (docs/http-api.md, "Proofs"): block headers by range, an account's
//! state (or its absence) with its state-tree proof, and a transaction's inclusion proof
//! against its block's `tx_root`.
//!
//! The block header does not carry the state root yet (docs/state-commitment.md §12): an
//! account proof answers the root this node computed for the block, which a client can only
//! check against a node it trusts, or against other nodes, until the header commits to it.

use std::sync::Arc;

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::routing::get;
use axum::Router;
use pp_ledger::merkle::merkle_proof;
use pp_ledger::state_tree::AccountLeaf;
use pp_ledger::{Decode, Hash, PublicKey, Transaction};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{ok_json, parse_hash, storage_error, ApiError, ApiResult};
use crate::node::Core;

/// Most headers one `GET /headers` answers.
pub(crate) const MAX_HEADERS_PER_PAGE: u64 = 500;

/// The routes of this module.
pub(crate) fn router() -> Router<Arc<Core>> {
    Router::new()
        .route("/headers", get(headers))
        .route("/proofs/accounts/{id}", get(account_proof))
        .route("/proofs/transactions/{id}", get(tx_proof))
}

#[derive(Deserialize)]
struct HeaderRange {
    from: Option<u64>,
    count: Option<u64>,
}

/// `GET /headers?from=&count=`: up to `count` (default 100, at most
/// [`MAX_HEADERS_PER_PAGE`]) consecutive best-chain headers from index `from` (default 0),
/// each with its block hash.
async fn headers(
    State(core): State<Arc<Core>>,
    q: Result<Query<HeaderRange>, QueryRejection>,
) -> ApiResult {
    let Query(r) = q?;
    let count = r.count.unwrap_or(100).min(MAX_HEADERS_PER_PAGE);
    let from = r.from.unwrap_or(0);
    let mut out = Vec::new();
    for i in from..from.saturating_add(count) {
        let in_memory = core.chain().header_at(i).cloned();
        let header = match in_memory {
            Some(h) => h,
            None => match crate::history::block_at(&core, i).map_err(storage_error)? {
                Some(b) => b.header,
                None => break,
            },
        };
        out.push(json!({ "hash": header.hash(), "header": header }));
    }
    ok_json(json!({ "headers": out }))
}

#[derive(Deserialize)]
struct AtBlock {
    block: Option<String>,
}

/// `GET /proofs/accounts/{id}?block=HASH`: the account's leaf at the best-chain block `HASH`
/// (default: the tip), or its absence, with the proof, the block's header and the state root.
async fn account_proof(
    State(core): State<Arc<Core>>,
    p: Result<Path<String>, PathRejection>,
    q: Result<Query<AtBlock>, QueryRejection>,
) -> ApiResult {
    let Path(s) = p?;
    let Query(at) = q?;
    let account = PublicKey::from_hex(&s)
        .map_err(|e| ApiError::bad_request("bad_account", format!("account {s:?}: {e}")))?;
    let wanted = at
        .block
        .as_deref()
        .map(|b| parse_hash(b, "block"))
        .transpose()?;
    let chain = core.chain();
    let (index, hash) = match wanted {
        None => (chain.height(), chain.tip_hash()),
        Some(h) => {
            let on_best = chain.is_on_best_chain(&h);
            match chain.header_by_hash(&h) {
                Some(hd) if on_best => (hd.index, h),
                _ => {
                    return Err(ApiError::not_found(
                        "unknown_block",
                        format!("block {h} is not on this node's best chain within its window"),
                    ))
                }
            }
        }
    };
    let header = chain
        .header_at(index)
        .cloned()
        .ok_or_else(|| ApiError::not_found("unknown_block", format!("no header at {index}")))?;
    let tree = core
        .state_tree
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if tree.block_at(index) != Some(hash) {
        let kept = tree.versions();
        return Err(ApiError::not_found(
            "proof_unavailable",
            format!(
                "no state tree for block {hash} at index {index} (kept: {})",
                kept.map_or("none".to_owned(), |(a, b)| format!("{a}..={b}"))
            ),
        ));
    }
    let internal = |e: pp_ledger::state_tree::StateTreeError| {
        ApiError::new(
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            "state_tree_error",
            e.to_string(),
        )
    };
    let root = tree.root(index).map_err(internal)?;
    let (value, proof) = tree.prove(index, &account).map_err(internal)?;
    drop(tree);
    drop(chain);
    let leaf: Option<Value> = match &value {
        None => None,
        Some(v) => {
            let l = AccountLeaf::from_canonical_bytes(v).map_err(|e| {
                ApiError::new(
                    axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                    "state_tree_error",
                    format!("stored leaf does not decode: {e}"),
                )
            })?;
            Some(json!({
                "balance": l.balance,
                "nonce": l.nonce,
                "stake": l.stake,
                "stakeholder_id": l.stakeholder_id,
            }))
        }
    };
    ok_json(json!({
        "account": account,
        "key": pp_ledger::state_tree::account_key(&account),
        "present": value.is_some(),
        "leaf": leaf,
        "value": value.map(hex::encode),
        "proof": hex::encode(proof.to_bytes()),
        "state_root": root,
        "state_root_in_header": false,
        "block": { "index": index, "hash": hash, "header": header },
    }))
}

/// `GET /proofs/transactions/{id}`: the best-chain block including the transaction, with the
/// Merkle path of its id to the header's `tx_root`.
async fn tx_proof(
    State(core): State<Arc<Core>>,
    p: Result<Path<String>, PathRejection>,
) -> ApiResult {
    let Path(s) = p?;
    let id = parse_hash(&s, "id")?;
    let stored = core.storage.tx_block(&id).map_err(storage_error)?;
    let block = match stored {
        Some(h) => match crate::history::block_by_hash(&core, &h).map_err(storage_error)? {
            Some((b, true)) => Some(b),
            _ => None,
        },
        None => None,
    };
    // A block being committed right now is not indexed yet: look at the newest ones.
    let block = block.or_else(|| {
        let c = core.chain();
        let h = c.height();
        (h.saturating_sub(super::RECENT_BLOCKS_SCANNED)..=h)
            .rev()
            .filter_map(|i| c.block_at(i))
            .find(|b| b.transactions.iter().any(|t| t.id() == id))
            .cloned()
    });
    let Some(b) = block else {
        return Err(ApiError::not_found(
            "unknown_transaction",
            format!("transaction {id} is not in a best-chain block"),
        ));
    };
    let ids: Vec<Hash> = b.transactions.iter().map(Transaction::id).collect();
    let Some(index) = ids.iter().position(|t| *t == id) else {
        return Err(ApiError::not_found(
            "unknown_transaction",
            format!("transaction {id} is not in block {}", b.hash()),
        ));
    };
    let proof = merkle_proof(&ids, index)
        .ok_or_else(|| ApiError::not_found("unknown_transaction", format!("no proof for {id}")))?;
    ok_json(json!({
        "id": id,
        "tx_root": b.header.tx_root,
        "proof": proof,
        "block": { "index": b.header.index, "hash": b.hash(), "header": b.header },
    }))
}
