//! Proofs from a full node's HTTP API (docs/http-api.md, "Proofs"), checked against the light
//! client's own verified headers: the full node is trusted for nothing but answering.
//!
//! An answer names the block it is against; that block must be on the client's verified best
//! chain (else [`ProofError::UnknownHeader`]; below the checkpoint, where the client keeps only
//! the hash of each block, the hash stored at the header's index), be the block asked for
//! ([`ProofError::OtherBlock`]), carry the header with that hash ([`ProofError::HeaderMismatch`]),
//! and the proof must
//! lead from the value to the root committed in that header ([`ProofError::BadProof`]); a root
//! the answer states that is not the header's is [`ProofError::WrongRoot`].

use pp_ledger::merkle::MerkleProof;
use pp_ledger::state_tree::{
    account_key, decode_total_stake, total_stake_key, verify, AccountLeaf, StateProof,
};
use pp_ledger::{BlockHeader, Decode, Hash, PublicKey};
use serde::Serialize;
use serde_json::Value;

use crate::chain::HeaderChain;
use crate::verify::{StakeError, StakeSnapshot, StakeSource};

/// The largest proof answer read (a state proof is at most 256 siblings, a tx proof 64).
pub const MAX_ANSWER_BYTES: usize = 64 * 1024;
/// The largest stake-snapshot answer read (a leaf and a proof per stakeholder).
pub const MAX_STAKE_ANSWER_BYTES: usize = 16 * 1024 * 1024;

/// Why a proof was not accepted. Never a value: a failed check is always one of these.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// The full node could not be asked, or answered with an error.
    #[error("full node unavailable: {0}")]
    Unavailable(String),
    /// The full node does not have what was asked (404).
    #[error("full node has no answer: {0}")]
    NotFound(String),
    /// The answer is not the documented JSON.
    #[error("malformed proof answer: {0}")]
    Malformed(String),
    /// The answer is against a block that is not on the light client's verified best chain.
    #[error("unknown header: block {0} is not on the verified chain")]
    UnknownHeader(Hash),
    /// The answer is against another block than the one asked for.
    #[error("proof for another block: asked {asked}, answered {answered}")]
    OtherBlock {
        /// The block asked for.
        asked: Hash,
        /// The block the answer is against.
        answered: Hash,
    },
    /// The answer's header is not the verified header with that hash.
    #[error("header mismatch: the answer's header for block {0} is not the verified one")]
    HeaderMismatch(Hash),
    /// The answer states a root that is not the one committed in the verified header.
    #[error("wrong root: the answer's {what} {got} is not the header's {expected}")]
    WrongRoot {
        /// Which root (state_root, tx_root).
        what: &'static str,
        /// The header's.
        expected: Hash,
        /// The answer's.
        got: Hash,
    },
    /// The proof does not lead from the value to the header's root.
    #[error("bad proof: {0}")]
    BadProof(String),
    /// The verified header commits to no state (its version predates the state root).
    #[error("no state root: header {index} (version {version}) commits to no account state")]
    NoStateRoot {
        /// The header's index.
        index: u64,
        /// Its version.
        version: u32,
    },
}

/// The account state root a header commits to (`state_root`, header versions classic 5 and
/// praos 6, docs/state-commitment.md): the root of the state after the block. `None` would mean
/// a header that commits to no state; every header of the current versions does.
pub fn header_state_root(header: &BlockHeader) -> Option<Hash> {
    Some(header.state_root)
}

/// Which verified block an answer was checked against.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckedAgainst {
    /// Its index.
    pub index: u64,
    /// Its hash.
    pub hash: Hash,
    /// Its slot.
    pub slot: u64,
}

/// An account's state proven against a verified header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvenAccount {
    /// The account.
    pub account: PublicKey,
    /// Its leaf, `None` if the state has no entry for it (proven absent).
    pub leaf: Option<AccountLeaf>,
    /// The header's state root the proof leads to.
    pub state_root: Hash,
    /// The header.
    pub block: CheckedAgainst,
}

/// A transaction's inclusion proven against a verified header's `tx_root`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProvenInclusion {
    /// The transaction id.
    pub id: Hash,
    /// The header's `tx_root`.
    pub tx_root: Hash,
    /// Position of the id among the block's transactions.
    pub position: u64,
    /// The header.
    pub block: CheckedAgainst,
}

fn field<'a>(v: &'a Value, path: &[&str]) -> Result<&'a Value, ProofError> {
    let mut cur = v;
    for p in path {
        cur = cur
            .get(p)
            .ok_or_else(|| ProofError::Malformed(format!("missing {}", path.join("."))))?;
    }
    Ok(cur)
}

fn hash_field(v: &Value, path: &[&str]) -> Result<Hash, ProofError> {
    let s = field(v, path)?
        .as_str()
        .ok_or_else(|| ProofError::Malformed(format!("{} is not a string", path.join("."))))?;
    Hash::from_hex(s).map_err(|e| ProofError::Malformed(format!("{}: {e}", path.join("."))))
}

/// The verified block an answer is against, as (header, hash): the one asked for (if any),
/// and on the verified best chain at any depth: the answer's header is the block's (its hash is
/// the answered one) and the chain's block at the header's index has that hash. Within the
/// window that is the header the client verified; below the checkpoint, the header whose hash
/// the client stored when it verified it (docs/light-client.md, "What it trusts").
fn against(
    chain: &HeaderChain,
    answer: &Value,
    asked: Option<Hash>,
) -> Result<(BlockHeader, Hash), ProofError> {
    let answered = hash_field(answer, &["block", "hash"])?;
    if let Some(asked) = asked {
        if asked != answered {
            return Err(ProofError::OtherBlock { asked, answered });
        }
    }
    let header: BlockHeader = serde_json::from_value(field(answer, &["block", "header"])?.clone())
        .map_err(|e| ProofError::Malformed(format!("block.header: {e}")))?;
    if chain.hash_at(header.index) != Some(answered) {
        return Err(ProofError::UnknownHeader(answered));
    }
    if header.hash() != answered {
        return Err(ProofError::HeaderMismatch(answered));
    }
    Ok((header, answered))
}

fn checked(header: &BlockHeader, hash: Hash) -> CheckedAgainst {
    CheckedAgainst {
        index: header.index,
        hash,
        slot: header.slot,
    }
}

/// Checks a `GET /proofs/accounts/{account}?block=asked` answer against `chain`.
pub fn check_account(
    chain: &HeaderChain,
    account: &PublicKey,
    asked: Option<Hash>,
    answer: &Value,
) -> Result<ProvenAccount, ProofError> {
    let (h, hash) = against(chain, answer, asked)?;
    let root = header_state_root(&h).ok_or(ProofError::NoStateRoot {
        index: h.index,
        version: h.version,
    })?;
    let stated = hash_field(answer, &["state_root"])?;
    if stated != root {
        return Err(ProofError::WrongRoot {
            what: "state_root",
            expected: root,
            got: stated,
        });
    }
    let value = match field(answer, &["value"])? {
        Value::Null => None,
        Value::String(s) => {
            Some(hex::decode(s).map_err(|e| ProofError::Malformed(format!("value: {e}")))?)
        }
        _ => return Err(ProofError::Malformed("value is not hex or null".into())),
    };
    let proof_hex = field(answer, &["proof"])?
        .as_str()
        .ok_or_else(|| ProofError::Malformed("proof is not a string".into()))?;
    let proof_bytes =
        hex::decode(proof_hex).map_err(|e| ProofError::Malformed(format!("proof: {e}")))?;
    let proof = StateProof::from_bytes(&proof_bytes)
        .map_err(|e| ProofError::Malformed(format!("proof: {e}")))?;
    verify(&root, &account_key(account), value.as_deref(), &proof)
        .map_err(|e| ProofError::BadProof(format!("account {account}: {e}")))?;
    let leaf = value
        .map(|b| AccountLeaf::from_canonical_bytes(&b))
        .transpose()
        .map_err(|e| ProofError::BadProof(format!("proven leaf does not decode: {e}")))?;
    Ok(ProvenAccount {
        account: *account,
        leaf,
        state_root: root,
        block: checked(&h, hash),
    })
}

/// Checks a `GET /proofs/transactions/{id}` answer against `chain`.
pub fn check_transaction(
    chain: &HeaderChain,
    id: &Hash,
    answer: &Value,
) -> Result<ProvenInclusion, ProofError> {
    let (h, hash) = against(chain, answer, None)?;
    let root = h.tx_root;
    let stated = hash_field(answer, &["tx_root"])?;
    if stated != root {
        return Err(ProofError::WrongRoot {
            what: "tx_root",
            expected: root,
            got: stated,
        });
    }
    let proof: MerkleProof = serde_json::from_value(field(answer, &["proof"])?.clone())
        .map_err(|e| ProofError::Malformed(format!("proof: {e}")))?;
    if !proof.verify(id, &root) {
        return Err(ProofError::BadProof(format!(
            "transaction {id} does not lead to tx_root {root}"
        )));
    }
    Ok(ProvenInclusion {
        id: *id,
        tx_root: root,
        position: proof.index,
        block: checked(&h, hash),
    })
}

/// A full node's HTTP API, as a source of answers (none of which is believed unchecked).
#[derive(Debug, Clone)]
pub struct FullNode {
    http: reqwest::Client,
    base: String,
}

impl FullNode {
    /// The API at `base` (e.g. `http://127.0.0.1:8080`).
    pub fn new(base: &str) -> Result<FullNode, ProofError> {
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(10))
            .build()
            .map_err(|e| ProofError::Unavailable(e.to_string()))?;
        Ok(FullNode {
            http,
            base: base.trim_end_matches('/').to_owned(),
        })
    }

    /// GETs `path` and returns the JSON body (at most [`MAX_ANSWER_BYTES`]).
    pub async fn get(&self, path: &str) -> Result<Value, ProofError> {
        self.get_limited(path, MAX_ANSWER_BYTES).await
    }

    /// GETs `path` and returns the JSON body (at most `max` bytes).
    pub async fn get_limited(&self, path: &str, max: usize) -> Result<Value, ProofError> {
        let url = format!("{}{path}", self.base);
        let mut res = self
            .http
            .get(&url)
            .send()
            .await
            .map_err(|e| ProofError::Unavailable(format!("{url}: {e}")))?;
        let status = res.status();
        let mut body = Vec::new();
        while let Some(chunk) = res
            .chunk()
            .await
            .map_err(|e| ProofError::Unavailable(format!("{url}: {e}")))?
        {
            body.extend_from_slice(&chunk);
            if body.len() > max {
                return Err(ProofError::Malformed(format!(
                    "{url}: answer larger than {max} bytes"
                )));
            }
        }
        if status == reqwest::StatusCode::NOT_FOUND {
            return Err(ProofError::NotFound(format!(
                "{url}: {}",
                String::from_utf8_lossy(&body)
            )));
        }
        if !status.is_success() {
            return Err(ProofError::Unavailable(format!("{url}: HTTP {status}")));
        }
        serde_json::from_slice(&body).map_err(|e| ProofError::Malformed(format!("{url}: {e}")))
    }
}

/// The most stakeholders a stake-snapshot answer may list.
pub const MAX_STAKEHOLDERS: usize = 10_000;

/// Checks a `GET /proofs/stake?block=HASH` answer against `header` (the block `HASH`, whose
/// state root commits to the stakes after it) and returns the proven stake snapshot: every
/// listed leaf and the total-stake leaf must be proven against the header's root, and the
/// listed stakes must sum to the proven total (so no stakeholder can be left out).
pub fn check_stake(header: &BlockHeader, answer: &Value) -> Result<StakeSnapshot, ProofError> {
    let root = header_state_root(header).ok_or(ProofError::NoStateRoot {
        index: header.index,
        version: header.version,
    })?;
    let hash = header.hash();
    let answered = hash_field(answer, &["block", "hash"])?;
    if answered != hash {
        return Err(ProofError::OtherBlock {
            asked: hash,
            answered,
        });
    }
    let stated = hash_field(answer, &["state_root"])?;
    if stated != root {
        return Err(ProofError::WrongRoot {
            what: "state_root",
            expected: root,
            got: stated,
        });
    }
    let proof_of = |v: &Value, what: &str| -> Result<StateProof, ProofError> {
        let s = v
            .as_str()
            .ok_or_else(|| ProofError::Malformed(format!("{what}: proof is not a string")))?;
        let b = hex::decode(s).map_err(|e| ProofError::Malformed(format!("{what}: {e}")))?;
        StateProof::from_bytes(&b).map_err(|e| ProofError::Malformed(format!("{what}: {e}")))
    };
    let bytes_of = |v: &Value, what: &str| -> Result<Vec<u8>, ProofError> {
        let s = v
            .as_str()
            .ok_or_else(|| ProofError::Malformed(format!("{what}: value is not a string")))?;
        hex::decode(s).map_err(|e| ProofError::Malformed(format!("{what}: {e}")))
    };
    let total_value = bytes_of(field(answer, &["total", "value"])?, "total")?;
    let total_proof = proof_of(field(answer, &["total", "proof"])?, "total")?;
    verify(&root, &total_stake_key(), Some(&total_value), &total_proof)
        .map_err(|e| ProofError::BadProof(format!("total stake: {e}")))?;
    let total = decode_total_stake(&total_value)
        .map_err(|e| ProofError::BadProof(format!("total stake value: {e}")))?;
    let list = field(answer, &["stakeholders"])?
        .as_array()
        .ok_or_else(|| ProofError::Malformed("stakeholders is not an array".into()))?;
    if list.len() > MAX_STAKEHOLDERS {
        return Err(ProofError::Malformed(format!(
            "{} stakeholders, at most {MAX_STAKEHOLDERS}",
            list.len()
        )));
    }
    let mut snapshot = StakeSnapshot::default();
    let mut sum: u128 = 0;
    for e in list {
        let account: PublicKey = serde_json::from_value(field(e, &["account"])?.clone())
            .map_err(|e| ProofError::Malformed(format!("stakeholder account: {e}")))?;
        let value = bytes_of(field(e, &["value"])?, "stakeholder")?;
        let proof = proof_of(field(e, &["proof"])?, "stakeholder")?;
        verify(&root, &account_key(&account), Some(&value), &proof)
            .map_err(|e| ProofError::BadProof(format!("stakeholder {account}: {e}")))?;
        let leaf = AccountLeaf::from_canonical_bytes(&value)
            .map_err(|e| ProofError::BadProof(format!("stakeholder {account} leaf: {e}")))?;
        if leaf.stake == 0 {
            continue;
        }
        if snapshot.stakes.insert(account, leaf.stake).is_some() {
            return Err(ProofError::Malformed(format!(
                "stakeholder {account} listed twice"
            )));
        }
        sum += u128::from(leaf.stake);
        if let Some(k) = leaf.vrf_key {
            snapshot.vrf_keys.insert(account, k);
        }
    }
    if sum != total {
        return Err(ProofError::BadProof(format!(
            "the listed stakes sum to {sum}, the proven total is {total}: a stakeholder is \
             missing"
        )));
    }
    Ok(snapshot)
}

/// Stake snapshots proven against headers' state roots: full nodes' answers by block hash,
/// checked against the header each time one is used (so an answer stored on disk is never
/// believed unchecked). Filled by whoever fetched them (the sync loop, before it verifies a
/// batch crossing an epoch boundary).
#[derive(Debug, Default)]
pub struct ProvenStakes {
    answers: std::sync::Mutex<std::collections::HashMap<Hash, Value>>,
}

impl ProvenStakes {
    /// Keeps `answer` for block `hash`.
    pub fn insert(&self, hash: Hash, answer: Value) {
        self.lock().insert(hash, answer);
    }

    /// Keeps only the answers for the blocks `keep` says are still needed.
    pub fn retain(&self, keep: impl Fn(&Hash) -> bool) {
        self.lock().retain(|h, _| keep(h));
    }

    /// How many answers are held.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no answer is held.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// Whether an answer for block `hash` is held.
    pub fn contains(&self, hash: &Hash) -> bool {
        self.lock().contains_key(hash)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<Hash, Value>> {
        self.answers.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl StakeSource for ProvenStakes {
    fn stakes_after(&self, header: &BlockHeader, hash: &Hash) -> Result<StakeSnapshot, StakeError> {
        let answer = self.lock().get(hash).cloned();
        let err = |reason: String| StakeError {
            hash: *hash,
            index: header.index,
            reason,
        };
        let answer = answer.ok_or_else(|| err("no stake proof fetched for it".into()))?;
        check_stake(header, &answer).map_err(|e| err(e.to_string()))
    }
}
