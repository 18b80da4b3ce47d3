//! Equivocation evidence: kept durably, served at `GET /evidence`, counted by
//! `pp_equivocations_total`.
//!
//! The chain detects a producer that signed two blocks for one slot and records both headers
//! (`pp_ledger::Equivocation`). Each import hands the records that are new to its storage
//! commit ([`collect`]), so evidence is on disk with the block that revealed it and survives a
//! restart. Storage keeps at most [`MAX_STORED_EVIDENCE`] records, one per (slot, producer),
//! the first ones: a flood of equivocations by one leader cannot grow the database, and
//! later ones are still counted by the metric.

use pp_ledger::{Equivocation, MAX_EQUIVOCATIONS};
use serde_json::{json, Value};

use super::Core;
use crate::storage::{ChainCommit, StorageError, MAX_STORED_EVIDENCE};

/// Adds to `commit` the equivocations the chain recorded since it had seen `seen_before`, and
/// counts every new detection in `pp_equivocations_total`.
pub(super) fn collect(core: &Core, seen_before: u64, commit: &mut ChainCommit) {
    let c = core.chain();
    let new = c.equivocations_seen().saturating_sub(seen_before);
    if new == 0 {
        return;
    }
    core.metrics.equivocations.inc_by(new);
    // The chain records the first MAX_EQUIVOCATIONS detections only.
    let recorded_before = usize::try_from(seen_before)
        .unwrap_or(usize::MAX)
        .min(MAX_EQUIVOCATIONS);
    commit
        .evidence
        .extend(c.equivocations().iter().skip(recorded_before).cloned());
}

/// One signed block header of an equivocation, as JSON.
fn signed_header(hash: &pp_ledger::Hash, e: &Equivocation, first: bool) -> Value {
    let (header, signature) = if first {
        (&e.first_header, &e.first_signature)
    } else {
        (&e.second_header, &e.second_signature)
    };
    json!({ "hash": hash, "header": header, "signature": signature })
}

impl Core {
    /// The body of `GET /evidence`: every stored equivocation, in (slot, producer) order.
    pub(crate) fn evidence_json(&self) -> Result<Value, StorageError> {
        evidence_json(self)
    }
}

fn evidence_json(core: &Core) -> Result<Value, StorageError> {
    let stored = core.storage.evidence()?;
    let items: Vec<Value> = stored
        .iter()
        .map(|e| {
            json!({
                "slot": e.slot,
                "producer": e.producer,
                "blocks": [signed_header(&e.first, e, true), signed_header(&e.second, e, false)],
            })
        })
        .collect();
    Ok(json!({
        "count": items.len(),
        "max": MAX_STORED_EVIDENCE,
        "equivocations": items,
    }))
}
