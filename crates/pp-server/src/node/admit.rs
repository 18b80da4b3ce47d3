//! Transactions in: admitted to the mempool, journaled durably, then relayed — in that order,
//! and only here. Every path that takes a transaction (`POST /transactions`, a batch, the
//! [`Server`](crate::Server) facade, a peer's gossip) goes through [`Core::begin_admit`] and
//! [`Admission::finish`], which relays each new transaction once it is on disk (to every peer
//! but the one it came from, which is credited) and blames a peer that sent a bad signature.

use std::collections::HashSet;
use std::sync::Arc;

use pp_ledger::{Hash, Transaction, TxError};
use pp_net::{Misbehaviour, PeerId};

use super::Core;
use crate::blocking;
use crate::events::NodeEvent;
use crate::mempool::{Inserted, MempoolError};
use crate::metrics::gauge_value;
use crate::storage::{ChainCommit, StorageError, WriteOp};
use crate::writer::{Pending, WriteError};

/// The answer to one submitted transaction.
pub(crate) type AdmitResult = Result<Inserted, MempoolError>;

/// Transactions inserted into the mempool whose journal change is queued but maybe not durable
/// yet ([`Core::begin_admit`]); [`Admission::finish`] waits for it.
pub(crate) struct Admission {
    txs: Vec<Transaction>,
    /// The peer that sent them (none: submitted to this node).
    from: Option<PeerId>,
    results: Vec<AdmitResult>,
    new: Vec<Hash>,
    pending: Option<Pending>,
}

impl Admission {
    /// Waits until the new transactions are durable, relays them, and returns the results. If
    /// they cannot be stored they leave the mempool again and are refused (`storage_error`):
    /// never acknowledged, never relayed.
    pub(crate) async fn finish(self, core: &Core) -> Vec<AdmitResult> {
        let results = match self.pending {
            None => self.results,
            Some(pending) => match pending.durable().await {
                Ok(()) => {
                    core.metrics.txs_accepted.inc_by(self.new.len() as u64);
                    core.events
                        .publish(self.new.iter().map(|&id| NodeEvent::Tx { id }));
                    self.results
                }
                Err(e) => {
                    core.forget(&self.new);
                    self.results
                        .into_iter()
                        .map(|r| match r {
                            Ok(Inserted::New) => Err(storage_refusal(&e)),
                            other => other,
                        })
                        .collect()
                }
            },
        };
        core.relay_admitted(&self.txs, &results, self.from);
        results
    }
}

/// The refusal of a transaction that could not be made durable.
pub(crate) fn storage_refusal(e: &WriteError) -> MempoolError {
    MempoolError::NotStored {
        message: e.to_string(),
    }
}

impl Core {
    /// Submits a transaction: validates it against the tip state and the mempool, journals it
    /// durably, relays it if it is new, and returns whether it was new or already pending.
    pub(crate) async fn submit_tx(&self, tx: Transaction) -> AdmitResult {
        let mut r = self.submit_txs(vec![tx]).await;
        r.pop().unwrap_or(Err(storage_refusal(&WriteError::Closed)))
    }

    /// Submits `txs` in order (each judged with the earlier ones pending), journals the new ones
    /// in **one** durable change and relays them; returns once they are on disk, one result per
    /// transaction.
    pub(crate) async fn submit_txs(&self, txs: Vec<Transaction>) -> Vec<AdmitResult> {
        self.begin_admit(txs, None).await.finish(self).await
    }

    /// The first half of [`Core::submit_txs`] for transactions from `from` (none: submitted
    /// here): inserts into the mempool and queues the journal change, without waiting for it to
    /// be durable (so that a caller can admit the next transaction meanwhile, in arrival order,
    /// and have the writer commit both together). [`Admission::finish`] completes it.
    pub(crate) async fn begin_admit(
        &self,
        txs: Vec<Transaction>,
        from: Option<PeerId>,
    ) -> Admission {
        let txs = self.preverify(txs).await;
        match self.writer.reserve().await {
            Ok(slot) => {
                let (results, new, pending) =
                    self.insert_txs(&txs, |c| slot.send(WriteOp::Chain(c)));
                Admission {
                    txs,
                    from,
                    results,
                    new,
                    pending,
                }
            }
            Err(e) => Admission {
                results: txs.iter().map(|_| Err(storage_refusal(&e))).collect(),
                txs,
                from,
                new: Vec::new(),
                pending: None,
            },
        }
    }

    /// The stateless stage of admission: the signatures of `txs` are checked as one batch on the
    /// node's CPU pool (never on a runtime worker, never under the mempool or chain lock) and
    /// remembered in the chain's signature cache, where the mempool's rules find them
    /// ([`pp_ledger::SignatureCache::preverify_txs`]). It changes no answer: a transaction whose
    /// batch failed is checked alone by the rules, as before.
    async fn preverify(&self, txs: Vec<Transaction>) -> Vec<Transaction> {
        let cache = Arc::clone(self.verifier().cache());
        let genesis_hash = self.genesis_hash;
        let txs = Arc::new(txs);
        let shared = Arc::clone(&txs);
        // `None` (the runtime is shutting down) only means the cache was not filled.
        let _ = blocking::run(&self.cpu, move || {
            cache.preverify_txs(&shared, &genesis_hash)
        })
        .await;
        // The job has run or been dropped, and its handle with it.
        Arc::try_unwrap(txs).unwrap_or_else(|txs| (*txs).clone())
    }

    /// Like [`Core::submit_tx`], committing on the calling thread (blocking it for one fsync):
    /// for synchronous callers outside the runtime, such as the simulation harness.
    pub(crate) fn submit_tx_now(&self, tx: Transaction) -> AdmitResult {
        if let Err(e) = self.health.check() {
            return Err(storage_refusal(&e));
        }
        let txs = [tx];
        let (mut results, new, written) = self.insert_txs(&txs, |c| self.storage.commit_chain(&c));
        let result = results
            .pop()
            .unwrap_or(Err(storage_refusal(&WriteError::Closed)));
        match written {
            None | Some(Ok(())) => {
                self.metrics.txs_accepted.inc_by(new.len() as u64);
                self.events
                    .publish(new.iter().map(|&id| NodeEvent::Tx { id }));
                self.relay_admitted(&txs, std::slice::from_ref(&result), None);
                result
            }
            Some(Err(e)) => {
                let e = match e {
                    StorageError::Closed => WriteError::Closed,
                    e => {
                        self.health.fail(e.to_string());
                        self.metrics.storage_failed.set(1);
                        WriteError::Failed(e.to_string())
                    }
                };
                self.forget(&new);
                Err(storage_refusal(&e))
            }
        }
    }

    /// Inserts `txs` into the mempool in order and hands the journal change for the new ones to
    /// `journal` while the mempool lock is still held. Returns one result per transaction, the
    /// ids of the new ones, and what `journal` returned (if there was anything to journal).
    fn insert_txs<R>(
        &self,
        txs: &[Transaction],
        journal: impl FnOnce(ChainCommit) -> R,
    ) -> (Vec<AdmitResult>, Vec<Hash>, Option<R>) {
        let chain = self.chain();
        let view = self.ledger_view(&chain);
        let mut mp = self.mempool();
        let mut results = Vec::with_capacity(txs.len());
        let mut commit = ChainCommit::default();
        for tx in txs {
            let r = mp.insert(&view, tx.clone());
            match &r {
                Ok(Inserted::New) => commit.mempool_add.push(tx.clone()),
                Ok(Inserted::Duplicate) => {}
                Err(_) => {
                    self.metrics.txs_rejected.inc();
                }
            }
            results.push(r);
        }
        self.metrics.mempool_size.set(gauge_value(mp.len()));
        // Room made for newcomers leaves the journal too (a newcomer evicted by a later one of
        // the same batch is not journaled at all).
        commit.mempool_remove = mp.take_evicted();
        if !commit.mempool_remove.is_empty() {
            let gone: HashSet<Hash> = commit.mempool_remove.iter().copied().collect();
            commit.mempool_add.retain(|t| !gone.contains(&t.id()));
        }
        let new: Vec<Hash> = commit.mempool_add.iter().map(Transaction::id).collect();
        // A duplicate may still be on its way to disk (another request admitted it a moment
        // ago): an empty change queued behind it is durable only after it, so answering after
        // that never acknowledges what the disk does not hold.
        let duplicate = results.iter().any(|r| matches!(r, Ok(Inserted::Duplicate)));
        let written = (!new.is_empty() || duplicate).then(|| journal(commit));
        drop(mp);
        (results, new, written)
    }

    /// Takes transactions that could not be journaled back out of the mempool.
    fn forget(&self, ids: &[Hash]) {
        let mut mp = self.mempool();
        for id in ids {
            mp.remove(id);
        }
        self.metrics.mempool_size.set(gauge_value(mp.len()));
    }

    /// Relays what was admitted (and is durable): each new transaction goes to every peer but
    /// `from`, which is credited for it; a peer that sent a bad signature is blamed.
    fn relay_admitted(&self, txs: &[Transaction], results: &[AdmitResult], from: Option<PeerId>) {
        let net = self.net();
        for (tx, r) in txs.iter().zip(results) {
            match (r, from) {
                (Ok(Inserted::New), _) => {
                    if let Some(peer) = from {
                        net.credit(peer);
                    }
                    net.broadcast_tx(tx, from);
                }
                (Ok(Inserted::Duplicate), _) | (Err(_), None) => {}
                (Err(e), Some(peer)) => {
                    tracing::debug!(%peer, id = %tx.id(), error = %e, "transaction from peer refused");
                    if matches!(e, MempoolError::Tx(TxError::BadSignature(_))) {
                        net.penalize(
                            peer,
                            Misbehaviour::InvalidTransaction,
                            "transaction with a bad signature",
                        );
                    }
                }
            }
        }
    }

    /// Relays transactions a fork switch put back in the mempool (once journaled): peers that
    /// were on the winning branch may never have seen them, and without a relay only the nodes
    /// that held them could include them.
    pub(super) fn relay_readmitted(&self, txs: &[Transaction]) {
        for tx in txs {
            self.net().broadcast_tx(tx, None);
        }
    }
}
