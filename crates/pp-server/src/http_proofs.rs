//! Light-client endpoints (docs/http-api.md, "Proofs"): block headers by range, an account's
//! state (or its absence) and the total stake, each with its state-tree proof against the
//! `state_root` its block's header commits to, and a transaction's inclusion proof against its
//! block's `tx_root`.

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
        .route("/proofs/total-stake", get(total_stake_proof))
        .route("/proofs/stake", get(stake_proof))
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
            None => match core.block_at(i).map_err(storage_error)? {
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

/// A state-tree leaf proven at a best-chain block.
struct Proved {
    index: u64,
    hash: Hash,
    header: pp_ledger::BlockHeader,
    root: Hash,
    value: Option<Vec<u8>>,
    proof: pp_ledger::state_tree::StateProof,
}

/// The value of tree key `key` at the best-chain block `wanted` (default: the tip), with its
/// proof against that block's header `state_root`.
fn prove_at(core: &Core, wanted: Option<Hash>, key: &Hash) -> Result<Proved, ApiError> {
    let (mut all, index, hash, header, root) =
        prove_keys_at(core, wanted, std::slice::from_ref(key))?;
    let (value, proof) = all.pop().ok_or_else(|| {
        ApiError::new(
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            "state_tree_error",
            "no proof",
        )
    })?;
    Ok(Proved {
        index,
        hash,
        header,
        root,
        value,
        proof,
    })
}

/// Values and proofs of several tree keys at one best-chain block (one chain lock): what
/// [`prove_at`] does for one.
#[allow(clippy::type_complexity)]
fn prove_keys_at(
    core: &Core,
    wanted: Option<Hash>,
    keys: &[Hash],
) -> Result<
    (
        Vec<(Option<Vec<u8>>, pp_ledger::state_tree::StateProof)>,
        u64,
        Hash,
        pp_ledger::BlockHeader,
        Hash,
    ),
    ApiError,
> {
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
    // The chain's own tree: version `index` is the state after the best block at `index`, the
    // one its header's `state_root` commits to.
    let tree = chain.state_tree();
    let kept = tree.versions().ok().flatten();
    if !kept.is_some_and(|(lo, hi)| (lo..=hi).contains(&index)) {
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
    let proved = keys
        .iter()
        .map(|k| tree.prove(index, k))
        .collect::<Result<Vec<_>, _>>()
        .map_err(internal)?;
    Ok((proved, index, hash, header, root))
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
    let key = pp_ledger::state_tree::account_key(&account);
    let p = prove_at(&core, wanted, &key)?;
    let leaf: Option<Value> = match &p.value {
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
                "vrf_key": l.vrf_key,
            }))
        }
    };
    ok_json(json!({
        "account": account,
        "key": key,
        "present": p.value.is_some(),
        "leaf": leaf,
        "value": p.value.map(hex::encode),
        "proof": hex::encode(p.proof.to_bytes()),
        "state_root": p.root,
        "state_root_in_header": true,
        "block": { "index": p.index, "hash": p.hash, "header": p.header },
    }))
}

/// `GET /proofs/total-stake?block=HASH`: the total-stake leaf (the sum of every bonded stake,
/// docs/state-commitment.md §2) at the best-chain block `HASH` (default: the tip), with its
/// proof against the block's header `state_root`: with the stakeholders' account proofs, the
/// stake snapshot of an epoch (docs/leader-election.md §2.1).
async fn total_stake_proof(
    State(core): State<Arc<Core>>,
    q: Result<Query<AtBlock>, QueryRejection>,
) -> ApiResult {
    let Query(at) = q?;
    let wanted = at
        .block
        .as_deref()
        .map(|b| parse_hash(b, "block"))
        .transpose()?;
    let key = pp_ledger::state_tree::total_stake_key();
    let p = prove_at(&core, wanted, &key)?;
    let total = p
        .value
        .as_deref()
        .map(pp_ledger::state_tree::decode_total_stake)
        .transpose()
        .ok()
        .flatten()
        .ok_or_else(|| {
            ApiError::new(
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                "state_tree_error",
                "the total-stake leaf is missing or does not decode",
            )
        })?;
    ok_json(json!({
        "key": key,
        // A u128: a decimal string, so that no JSON reader rounds it.
        "total_stake": total.to_string(),
        "value": p.value.map(hex::encode),
        "proof": hex::encode(p.proof.to_bytes()),
        "state_root": p.root,
        "state_root_in_header": true,
        "block": { "index": p.index, "hash": p.hash, "header": p.header },
    }))
}

/// `GET /proofs/stake?block=HASH`: the stake snapshot after the best-chain block `HASH`
/// (default: the tip), provable from its header alone (docs/http-api.md): every account with
/// bonded stake at that block with its leaf and proof, and the total-stake leaf with its proof.
/// A client checks that the listed stakes sum to the proven total, so a stakeholder left out
/// makes the answer refused, never a wrong snapshot.
async fn stake_proof(
    State(core): State<Arc<Core>>,
    q: Result<Query<AtBlock>, QueryRejection>,
) -> ApiResult {
    let Query(at) = q?;
    let wanted = at
        .block
        .as_deref()
        .map(|b| parse_hash(b, "block"))
        .transpose()?;
    // Who may hold stake at that block: whoever holds some at the tip, and the genesis
    // stakeholders (one who bonded later and unbonded everything since is missed: the client
    // then refuses the answer, the sum being short).
    let mut candidates: std::collections::BTreeSet<PublicKey> =
        core.chain().state().stakes().keys().copied().collect();
    candidates.extend(
        core.genesis()
            .initial_stakeholders
            .iter()
            .map(|s| s.public_key),
    );
    let candidates: Vec<PublicKey> = candidates.into_iter().collect();
    let total_key = pp_ledger::state_tree::total_stake_key();
    let mut keys: Vec<Hash> = candidates
        .iter()
        .map(pp_ledger::state_tree::account_key)
        .collect();
    keys.push(total_key);
    let (mut proved, index, hash, header, root) = prove_keys_at(&core, wanted, &keys)?;
    let (total_value, total_proof) = proved.pop().ok_or_else(|| {
        ApiError::new(
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            "state_tree_error",
            "no total-stake proof",
        )
    })?;
    let mut stakeholders = Vec::new();
    for (account, (value, proof)) in candidates.iter().zip(proved) {
        let Some(value) = value else { continue };
        let stake = AccountLeaf::from_canonical_bytes(&value).map_or(0, |l| l.stake);
        if stake == 0 {
            continue;
        }
        stakeholders.push(json!({
            "account": account,
            "stake": stake,
            "value": hex::encode(&value),
            "proof": hex::encode(proof.to_bytes()),
        }));
    }
    ok_json(json!({
        "state_root": root,
        "total": {
            "key": total_key,
            "value": total_value.map(hex::encode),
            "proof": hex::encode(total_proof.to_bytes()),
        },
        "stakeholders": stakeholders,
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
    let block = core.included_in(&id).map_err(storage_error)?;
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

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use axum::body::Body;
    use axum::extract::ConnectInfo;
    use axum::http::{Request, StatusCode};
    use pp_ledger::merkle::MerkleProof;
    use pp_ledger::state_tree::{account_key, verify, StateProof};
    use pp_ledger::KeyPair;
    use tower::ServiceExt as _;

    use super::*;
    use crate::clock::Clock;

    async fn get_json(core: &Arc<Core>, uri: &str) -> (StatusCode, Value) {
        let mut req = Request::get(uri).body(Body::empty()).unwrap();
        req.extensions_mut()
            .insert(ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 5555))));
        let res = crate::http::router(core.clone(), None)
            .oneshot(req)
            .await
            .unwrap();
        let status = res.status();
        let bytes = axum::body::to_bytes(res.into_body(), 1 << 22)
            .await
            .unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    fn hash_of(v: &Value) -> Hash {
        Hash::from_hex(v.as_str().unwrap()).unwrap()
    }

    /// What a light client does with the answers: headers chain by hash, an account proof
    /// (present, absent, at an older block) verifies against the state root returned, a
    /// transaction proof against the header's `tx_root`; bad or unknown input is a clear error.
    #[tokio::test]
    async fn proofs_verify_against_the_roots_they_come_with() {
        let dir = tempfile::tempdir().unwrap();
        let key = KeyPair::from_seed([81u8; 32]);
        let start = crate::clock::SystemClock.now_ms() - 60_000;
        let core = crate::node::testing::core_with_genesis_time(dir.path(), &key, start);
        core.replay().unwrap();
        let to = KeyPair::from_seed([82u8; 32]).public();
        let mut txs = Vec::new();
        let mut hashes = vec![core.chain().tip_hash()];
        for nonce in 0..2u64 {
            let tx = Transaction::transfer(&key, to, 7, 1, 2 * nonce, &core.genesis_hash());
            let other = Transaction::transfer(
                &key,
                KeyPair::from_seed([90 + nonce as u8; 32]).public(),
                3,
                1,
                2 * nonce + 1,
                &core.genesis_hash(),
            );
            let tip = core.chain().tip().header.clone();
            let b =
                crate::node::testing::block_on(&core, &tip, tip.slot + 1, vec![tx.clone(), other]);
            hashes.push(b.hash());
            core.import_block(b).await.unwrap();
            txs.push(tx);
        }

        let (st, v) = get_json(&core, "/headers?from=0&count=100000").await;
        assert_eq!(st, StatusCode::OK);
        let hs = v["headers"].as_array().unwrap();
        assert_eq!(hs.len(), 3);
        for (i, h) in hs.iter().enumerate() {
            assert_eq!(hash_of(&h["hash"]), hashes[i]);
            assert_eq!(h["header"]["index"], i as u64);
        }
        let (_, v) = get_json(&core, "/headers?from=2&count=5").await;
        assert_eq!(v["headers"].as_array().unwrap().len(), 1);

        // Present at the tip.
        let (st, v) = get_json(&core, &format!("/proofs/accounts/{to}")).await;
        assert_eq!(st, StatusCode::OK, "{v}");
        assert_eq!(hash_of(&v["block"]["hash"]), hashes[2]);
        assert_eq!(v["leaf"]["balance"], 14);
        let root = hash_of(&v["state_root"]);
        let proof =
            StateProof::from_bytes(&hex::decode(v["proof"].as_str().unwrap()).unwrap()).unwrap();
        let value = hex::decode(v["value"].as_str().unwrap()).unwrap();
        verify(&root, &account_key(&to), Some(&value), &proof).unwrap();
        // At block 1, with its own root.
        let (_, v1) = get_json(&core, &format!("/proofs/accounts/{to}?block={}", hashes[1])).await;
        assert_eq!(v1["leaf"]["balance"], 7);
        let root1 = hash_of(&v1["state_root"]);
        assert_ne!(root1, root);
        let p1 =
            StateProof::from_bytes(&hex::decode(v1["proof"].as_str().unwrap()).unwrap()).unwrap();
        let val1 = hex::decode(v1["value"].as_str().unwrap()).unwrap();
        verify(&root1, &account_key(&to), Some(&val1), &p1).unwrap();
        assert!(verify(&root, &account_key(&to), Some(&val1), &p1).is_err());
        // Absent.
        let nobody = KeyPair::from_seed([83u8; 32]).public();
        let (_, v) = get_json(&core, &format!("/proofs/accounts/{nobody}")).await;
        assert_eq!(v["present"], false);
        let p =
            StateProof::from_bytes(&hex::decode(v["proof"].as_str().unwrap()).unwrap()).unwrap();
        verify(&root, &account_key(&nobody), None, &p).unwrap();
        // The account proof is against the header's root.
        let (_, v) = get_json(&core, &format!("/proofs/accounts/{to}")).await;
        assert_eq!(v["state_root_in_header"], true);
        assert_eq!(hash_of(&v["block"]["header"]["state_root"]), root);
        // The total stake, proven against the same header root (and at block 1 too).
        let (st, v) = get_json(&core, "/proofs/total-stake").await;
        assert_eq!(st, StatusCode::OK, "{v}");
        assert_eq!(hash_of(&v["state_root"]), root);
        let total: u128 = v["total_stake"].as_str().unwrap().parse().unwrap();
        let stakes: u128 = core
            .chain()
            .state()
            .stakes()
            .values()
            .map(|&s| u128::from(s))
            .sum();
        assert_eq!(total, stakes);
        let tkey = pp_ledger::state_tree::total_stake_key();
        assert_eq!(hash_of(&v["key"]), tkey);
        let tval = hex::decode(v["value"].as_str().unwrap()).unwrap();
        let tproof =
            StateProof::from_bytes(&hex::decode(v["proof"].as_str().unwrap()).unwrap()).unwrap();
        verify(&root, &tkey, Some(&tval), &tproof).unwrap();
        assert!(verify(&root1, &tkey, Some(&tval), &tproof).is_err());
        // The stake snapshot: every stakeholder's leaf and the total leaf, all against the
        // header's root, the stakes summing to the total.
        let (st, v) = get_json(&core, "/proofs/stake").await;
        assert_eq!(st, StatusCode::OK, "{v}");
        assert_eq!(hash_of(&v["state_root"]), root);
        let sval = hex::decode(v["total"]["value"].as_str().unwrap()).unwrap();
        let sproof =
            StateProof::from_bytes(&hex::decode(v["total"]["proof"].as_str().unwrap()).unwrap())
                .unwrap();
        verify(&root, &tkey, Some(&sval), &sproof).unwrap();
        let listed = v["stakeholders"].as_array().unwrap();
        assert!(!listed.is_empty());
        let mut sum = 0u128;
        for e in listed {
            let a = PublicKey::from_hex(e["account"].as_str().unwrap()).unwrap();
            let val = hex::decode(e["value"].as_str().unwrap()).unwrap();
            let pr = StateProof::from_bytes(&hex::decode(e["proof"].as_str().unwrap()).unwrap())
                .unwrap();
            verify(&root, &account_key(&a), Some(&val), &pr).unwrap();
            sum += u128::from(AccountLeaf::from_canonical_bytes(&val).unwrap().stake);
        }
        assert_eq!(sum, total);
        let (st, v) = get_json(&core, &format!("/proofs/total-stake?block={}", hashes[1])).await;
        assert_eq!(st, StatusCode::OK, "{v}");
        assert_eq!(hash_of(&v["state_root"]), root1);
        let (st, v) = get_json(
            &core,
            &format!("/proofs/total-stake?block={}", Hash([7; 32])),
        )
        .await;
        assert_eq!(
            (st, v["error"]["code"].as_str()),
            (StatusCode::NOT_FOUND, Some("unknown_block"))
        );
        // Bad input.
        let (st, v) = get_json(&core, "/proofs/accounts/zz").await;
        assert_eq!(
            (st, v["error"]["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("bad_account"))
        );
        let (st, v) = get_json(
            &core,
            &format!("/proofs/accounts/{to}?block={}", Hash([7; 32])),
        )
        .await;
        assert_eq!(
            (st, v["error"]["code"].as_str()),
            (StatusCode::NOT_FOUND, Some("unknown_block"))
        );
        let (st, _) = get_json(&core, &format!("/proofs/accounts/{to}?block=xyz")).await;
        assert_eq!(st, StatusCode::BAD_REQUEST);

        // Transactions.
        for (i, tx) in txs.iter().enumerate() {
            let (st, v) = get_json(&core, &format!("/proofs/transactions/{}", tx.id())).await;
            assert_eq!(st, StatusCode::OK, "{v}");
            assert_eq!(hash_of(&v["block"]["hash"]), hashes[i + 1]);
            let tx_root = hash_of(&v["block"]["header"]["tx_root"]);
            assert_eq!(tx_root, hash_of(&v["tx_root"]));
            let proof: MerkleProof = serde_json::from_value(v["proof"].clone()).unwrap();
            assert!(proof.verify(&tx.id(), &tx_root));
            assert!(!proof.verify(&Hash([1; 32]), &tx_root));
        }
        let (st, v) = get_json(&core, &format!("/proofs/transactions/{}", Hash([3; 32]))).await;
        assert_eq!(
            (st, v["error"]["code"].as_str()),
            (StatusCode::NOT_FOUND, Some("unknown_transaction"))
        );
    }
}
