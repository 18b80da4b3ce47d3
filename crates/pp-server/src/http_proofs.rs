//! Light-client endpoints (docs/http-api.md, "Proofs"): block headers by range, an account's
//! state (or its absence) and the total stake, each with its state-tree proof against the
//! `state_root` its block's header commits to, and a transaction's inclusion proof against its
//! block's `tx_root`.

use std::sync::Arc;

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::routing::get;
use axum::Router;
use pp_ledger::chain::Chain;
use pp_ledger::merkle::merkle_proof;
use pp_ledger::state_tree::AccountLeaf;
use pp_ledger::{Decode, Hash, PublicKey, Transaction};
use pp_ouroboros::Ouroboros;
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

impl AtBlock {
    /// The block asked for (`?block=HASH`), if any; a malformed hash is a 400.
    fn hash(&self) -> Result<Option<Hash>, ApiError> {
        self.block
            .as_deref()
            .map(|b| parse_hash(b, "block"))
            .transpose()
    }
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

impl Proved {
    /// The answer to a one-key proof request: `fields` (an object: what the key is and its
    /// decoded value) with the leaf's bytes, the proof, the root and the block it is against.
    fn into_answer(self, mut fields: Value) -> Value {
        if let Some(o) = fields.as_object_mut() {
            o.insert("value".into(), json!(self.value.map(hex::encode)));
            o.insert("proof".into(), json!(hex::encode(self.proof.to_bytes())));
            o.insert("state_root".into(), json!(self.root));
            o.insert("state_root_in_header".into(), json!(true));
            o.insert(
                "block".into(),
                json!({ "index": self.index, "hash": self.hash, "header": self.header }),
            );
        }
        fields
    }
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
    prove_keys_in(&core.chain(), wanted, keys)
}

/// [`prove_keys_at`] on a chain the caller holds.
#[allow(clippy::type_complexity)]
fn prove_keys_in(
    chain: &Chain<Ouroboros>,
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
    let wanted = at.hash()?;
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
    let present = p.value.is_some();
    ok_json(p.into_answer(json!({
        "account": account,
        "key": key,
        "present": present,
        "leaf": leaf,
    })))
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
    let wanted = at.hash()?;
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
    ok_json(p.into_answer(json!({
        "key": key,
        // A u128: a decimal string, so that no JSON reader rounds it.
        "total_stake": total.to_string(),
    })))
}

/// `GET /proofs/stake?block=HASH`: the stake snapshot after the best-chain block `HASH`
/// (default: the tip), provable from its header alone (docs/http-api.md): every account with
/// bonded stake at that block with its leaf and proof, and the total-stake leaf with its proof.
/// A client checks that the listed stakes sum to the proven total, so a stakeholder left out
/// makes the answer refused, never a wrong snapshot. Answered from the live state tree while
/// the block's version is held; after that, for an epoch-boundary block, from the answer the
/// node kept when the boundary became known ([`boundary_stake_proofs`]), served only while the
/// block is on the best chain.
async fn stake_proof(
    State(core): State<Arc<Core>>,
    q: Result<Query<AtBlock>, QueryRejection>,
) -> ApiResult {
    let Query(at) = q?;
    let wanted = at.hash()?;
    let live = stake_answer(&core.chain(), core.genesis(), wanted);
    let refused = match live {
        Ok(v) => return ok_json(v),
        Err(e) => e,
    };
    let Some(h) = wanted else {
        return Err(refused);
    };
    let Some((raw, on_best)) = core.stored_stake_proof(&h).map_err(storage_error)? else {
        return Err(refused);
    };
    // Keyed by hash, the record is the snapshot after that very block; it answers only a
    // question about the best chain, as the live tree does.
    if !on_best {
        return Err(ApiError::not_found(
            "unknown_block",
            format!("block {h} is not on this node's best chain"),
        ));
    }
    let v: Value = serde_json::from_slice(&raw).map_err(|e| {
        ApiError::new(
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            "storage_error",
            format!("stored stake proof of {h} does not decode: {e}"),
        )
    })?;
    ok_json(v)
}

/// The most stakeholders a kept stake-snapshot record lists (pp-light refuses longer answers,
/// `pp_light::proofs::MAX_STAKEHOLDERS`): a larger snapshot is not kept, which bounds a record
/// (each entry is an account, its leaf and its proof, so a record grows linearly with the count).
pub(crate) const MAX_KEPT_STAKEHOLDERS: usize = 10_000;

/// The `GET /proofs/stake` answer for the best-chain block `wanted` (default: the tip) from the
/// chain's live state tree: an error if the block is not on the best chain in the window or its
/// tree version is no longer held.
pub(crate) fn stake_answer(
    chain: &Chain<Ouroboros>,
    genesis: &pp_ledger::Genesis,
    wanted: Option<Hash>,
) -> Result<Value, ApiError> {
    // Who may hold stake at that block: whoever holds some at the tip, the genesis
    // stakeholders, and every account a best block after it changed while the chain still
    // holds what they changed (an account that held stake at the block and has none at the
    // tip was changed by one of them). One missed (its block's undo data already dropped) makes
    // the client refuse the answer, the sum being short, never accept a wrong snapshot.
    let mut candidates: std::collections::BTreeSet<PublicKey> =
        chain.state().stakes().keys().copied().collect();
    candidates.extend(genesis.initial_stakeholders.iter().map(|s| s.public_key));
    if let Some(from) = wanted.and_then(|h| chain.header_by_hash(&h).map(|hd| hd.index)) {
        for i in from.saturating_add(1)..=chain.height() {
            if let Some(accounts) = chain.best_hash_at(i).and_then(|h| chain.block_accounts(&h)) {
                candidates.extend(accounts);
            }
        }
    }
    let candidates: Vec<PublicKey> = candidates.into_iter().collect();
    let total_key = pp_ledger::state_tree::total_stake_key();
    let mut keys: Vec<Hash> = candidates
        .iter()
        .map(pp_ledger::state_tree::account_key)
        .collect();
    keys.push(total_key);
    let (mut proved, index, hash, header, root) = prove_keys_in(chain, wanted, &keys)?;
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
    Ok(json!({
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

/// The stake-snapshot records to keep once the chain holds the blocks `hashes` (best or side
/// chain): for each such block whose parent is a best-chain block of an earlier epoch (the
/// parent is then the last block of its epoch, and of every empty epoch up to the block's, on
/// the chain through the block: the snapshot block of the epochs two later,
/// docs/leader-election.md §2.1), the parent's `GET /proofs/stake` answer, if its tree version
/// is still held and its snapshot is not larger than [`MAX_KEPT_STAKEHOLDERS`].
///
/// Why this is enough under fork switches: a record is keyed by the parent's hash and is the
/// snapshot after that very block, whatever chain later holds it, so none is ever wrong, and
/// only best-chain blocks are served. A block that ends an epoch on the best chain is the
/// parent of the next best block `B`; when `B` was added, either its parent was a best block
/// (then within `k` of the tip, its version held: `B` extended the chain or started a side
/// branch that a later switch adopts), or `B` and its parent joined the best chain together in
/// one switch (then both are among the applied blocks passed here, the parent above the fork
/// point, its version held).
pub(crate) fn boundary_stake_proofs(
    chain: &Chain<Ouroboros>,
    genesis: &pp_ledger::Genesis,
    epoch_of: impl Fn(u64) -> u64,
    hashes: &[Hash],
) -> Vec<(Hash, Vec<u8>)> {
    let mut out: Vec<(Hash, Vec<u8>)> = Vec::new();
    for h in hashes {
        let Some(cur) = chain.header_by_hash(h) else {
            continue;
        };
        let parent_hash = cur.prev_hash;
        if !chain.is_on_best_chain(&parent_hash) || out.iter().any(|(p, _)| *p == parent_hash) {
            continue;
        }
        let Some(parent) = chain.header_by_hash(&parent_hash) else {
            continue;
        };
        if epoch_of(parent.slot) >= epoch_of(cur.slot) {
            continue;
        }
        match stake_answer(chain, genesis, Some(parent_hash)) {
            Ok(v) => {
                let n = v["stakeholders"].as_array().map_or(0, Vec::len);
                if n > MAX_KEPT_STAKEHOLDERS {
                    tracing::warn!(block = %parent_hash, n, "stake snapshot too large to keep");
                    continue;
                }
                match serde_json::to_vec(&v) {
                    Ok(bytes) => out.push((parent_hash, bytes)),
                    Err(e) => {
                        tracing::warn!(block = %parent_hash, error = %e, "stake snapshot not kept")
                    }
                }
            }
            Err(e) => {
                tracing::warn!(block = %parent_hash, error = ?e, "epoch-boundary stake snapshot not provable here; not kept");
            }
        }
    }
    out
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

    /// A devnet core on `dir` with short epochs (4 slots) and `k` = 3, starting two minutes ago
    /// (so that slots up to ~120 are usable at once), its stored chain replayed.
    fn short_epochs(dir: &std::path::Path, key: &KeyPair, start: u64) -> Arc<Core> {
        let mut g = pp_ledger::Genesis::devnet("test", key.public(), start);
        g.k = 3;
        g.slots_per_epoch = 4;
        let core = crate::node::testing::core_with_genesis(dir, key, g);
        core.replay().unwrap();
        core
    }

    /// Extends the tip with a block in each of `slots`; returns their hashes.
    async fn extend(core: &Arc<Core>, slots: impl IntoIterator<Item = u64>) -> Vec<Hash> {
        let mut out = Vec::new();
        for slot in slots {
            let tip = core.chain().tip().header.clone();
            let b = crate::node::testing::block_on(core, &tip, slot, Vec::new());
            out.push(b.hash());
            core.import_block(b).await.unwrap();
        }
        out
    }

    /// `GET /proofs/stake?block=` for `header`'s block, checked as the light client checks it
    /// (`pp_light::proofs::check_stake`: the block asked, every leaf and the total against the
    /// header's `state_root`, the stakes summing to the total).
    async fn checked_stake(
        core: &Arc<Core>,
        header: &pp_ledger::BlockHeader,
    ) -> Result<pp_light::verify::StakeSnapshot, String> {
        let (st, v) = get_json(core, &format!("/proofs/stake?block={}", header.hash())).await;
        if st != StatusCode::OK {
            return Err(format!("{st}: {v}"));
        }
        pp_light::proofs::check_stake(header, &v).map_err(|e| e.to_string())
    }

    /// The stake snapshot of an epoch-boundary block stays provable after its tree version is
    /// pruned (more than `k` blocks later) and after a restart; a record of a boundary block a
    /// fork switch removed is not served for it (and is dropped with the block).
    #[tokio::test]
    async fn epoch_boundary_stake_proofs_outlive_the_tree_window() {
        let dir = tempfile::tempdir().unwrap();
        let key = KeyPair::from_seed([84u8; 32]);
        let start = crate::clock::SystemClock.now_ms() - 120_000;
        let core = short_epochs(dir.path(), &key, start);
        // Slots 1..=3 are epoch 0, 4..=7 epoch 1, ...: the blocks of slots 3, 7 and 11 end
        // epochs 0, 1, 2 (the snapshot blocks of epochs 2, 3, 4). Slot 13 leaves epoch 3's
        // end at slot 13 itself, not yet known (no block of a later epoch).
        let hashes = extend(&core, 1..=13).await;
        let header = |h: &Hash| core.storage().block_header(h).unwrap().unwrap();
        let (lo, _) = core.state_tree().versions().unwrap();
        // The versions of the slot-3 and slot-7 blocks are pruned (the one of slot 11 is not:
        // answered from the live tree).
        assert!(
            lo > 7,
            "the test needs the boundary versions pruned (kept from {lo})"
        );
        let mut snaps = Vec::new();
        for slot in [3u64, 7, 11] {
            let h = hashes[slot as usize - 1];
            let snap = checked_stake(&core, &header(&h)).await.unwrap();
            assert_eq!(snap.stakes.get(&key.public()), Some(&1_000));
            snaps.push(snap);
        }
        // A block that ends no epoch, below the window: the same error as before.
        let (st, v) = get_json(&core, &format!("/proofs/stake?block={}", hashes[4])).await;
        assert_eq!(
            (st, v["error"]["code"].as_str()),
            (StatusCode::NOT_FOUND, Some("unknown_block")),
            "{v}"
        );
        // A record is the answer itself: a light client checks it against another block's
        // header and refuses it.
        assert!(checked_stake(&core, &header(&hashes[4])).await.is_err());

        // Restart: the records are read back from redb.
        core.storage().close();
        drop(core);
        let core = short_epochs(dir.path(), &key, start);
        let header = |h: &Hash| core.storage().block_header(h).unwrap().unwrap();
        for slot in [3u64, 7, 11] {
            let h = hashes[slot as usize - 1];
            checked_stake(&core, &header(&h)).await.unwrap();
        }

        // A fork from the block of slot 13 (index 13): C14 at slot 14 ends nothing known yet;
        // the other branch D14 (slot 16, epoch 4) makes the slot-13 block the end of epoch 3.
        let tip13 = core.chain().tip().header.clone();
        let c = extend(&core, [14, 15]).await;
        // C15 (slot 15, epoch 3) then C16 at slot 16 (epoch 4): C15 ends epoch 3 on this branch.
        let c16 = extend(&core, [16]).await[0];
        let c15 = c[1];
        assert!(core.storage().stake_proof(&c15).unwrap().is_some());
        checked_stake(&core, &header(&c15)).await.unwrap();
        // The other branch from index 13: D14 at slot 17 (epoch 4), then D15..D17: longer, it
        // wins. On it the slot-13 block ends epoch 3.
        let mut parent = tip13;
        let mut d = Vec::new();
        for slot in [17u64, 18, 19, 20] {
            let b = crate::node::testing::block_on(&core, &parent, slot, Vec::new());
            parent = b.header.clone();
            d.push(b.hash());
            core.import_block(b).await.unwrap();
        }
        assert_eq!(core.chain().tip_hash(), d[3]);
        assert!(!core.chain().is_on_best_chain(&c15));
        assert!(!core.chain().is_on_best_chain(&c16));
        // C15's record is still stored, but C15 is off the best chain: not served.
        assert!(core.storage().stake_proof(&c15).unwrap().is_some());
        let (st, v) = get_json(&core, &format!("/proofs/stake?block={c15}")).await;
        assert_eq!(
            (st, v["error"]["code"].as_str()),
            (StatusCode::NOT_FOUND, Some("unknown_block")),
            "{v}"
        );
        // The new chain's boundary (the slot-13 block) has its record.
        let b13 = hashes[12];
        assert!(core.storage().stake_proof(&b13).unwrap().is_some());
        // Far past the fork, the abandoned block and its record are gone, the best chain's
        // boundaries still answered.
        extend(&core, 21..=30).await;
        assert!(core.storage().stake_proof(&c15).unwrap().is_none());
        let (st, _) = get_json(&core, &format!("/proofs/stake?block={c15}")).await;
        assert_eq!(st, StatusCode::NOT_FOUND);
        checked_stake(&core, &header(&b13)).await.unwrap();
        checked_stake(&core, &header(&hashes[2])).await.unwrap();
    }

    /// A data directory without records (written before they were kept): the replay computes
    /// those of the boundaries whose tree versions it holds; older ones cannot be rebuilt and
    /// stay unanswered, the same error as before.
    #[tokio::test]
    async fn replay_fills_the_records_it_can_prove() {
        let dir = tempfile::tempdir().unwrap();
        let key = KeyPair::from_seed([85u8; 32]);
        let start = crate::clock::SystemClock.now_ms() - 120_000;
        let core = short_epochs(dir.path(), &key, start);
        let hashes = extend(&core, 1..=13).await;
        let (lo, _) = core.state_tree().versions().unwrap();
        assert!(lo <= 11 && lo > 7, "kept from {lo}");
        core.storage().forget_stake_proofs().unwrap();
        core.storage().close();
        drop(core);
        let core = short_epochs(dir.path(), &key, start);
        let (b3, b7, b11) = (hashes[2], hashes[6], hashes[10]);
        assert!(core.storage().stake_proof(&b11).unwrap().is_some());
        assert!(core.storage().stake_proof(&b3).unwrap().is_none());
        assert!(core.storage().stake_proof(&b7).unwrap().is_none());
        // Two more blocks: the version of the slot-11 block is pruned, its record answers.
        extend(&core, 14..=16).await;
        let h11 = core.storage().block_header(&b11).unwrap().unwrap();
        checked_stake(&core, &h11).await.unwrap();
        let (st, v) = get_json(&core, &format!("/proofs/stake?block={b3}")).await;
        assert_eq!(
            (st, v["error"]["code"].as_str()),
            (StatusCode::NOT_FOUND, Some("unknown_block")),
            "{v}"
        );
    }
}
