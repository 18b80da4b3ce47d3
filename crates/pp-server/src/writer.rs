//! The storage writer: the one task that writes the node's database.
//!
//! Admissions (HTTP and relayed transactions), block imports, and the peer and ban lists queue
//! their change ([`WriteOp`]) on a bounded channel. The writer takes whatever is queued, up to
//! [`MAX_GROUP_OPS`] changes or [`MAX_GROUP_TXS`] transactions, and commits it in **one** durable
//! redb transaction (one fsync for all of it), then answers every submitter. A submitter that
//! acknowledges something (a `202`, a relayed block) waits for that answer first, so
//! acknowledged still means durable, while the disk sees one commit per group instead of one per
//! transaction.
//!
//! Changes are committed in the order they were queued. Callers that change memory (the chain,
//! the mempool) queue the matching change while they still hold the lock that orders those
//! changes, so the disk sees them in the same order as memory.
//!
//! The commit itself runs on the [`Blocking`] seam (tokio's blocking pool, or inline under a
//! simulation). A failed commit is fatal: the writer records the failure in [`Health`], answers
//! every waiter with it, and refuses everything afterwards (fail-stop; see [`Health`]).

use std::sync::{Arc, OnceLock};

use tokio::sync::{mpsc, oneshot, watch};

use crate::blocking::{self, Blocking};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;

use crate::metrics::Metrics;
use crate::storage::{Storage, StorageError, WriteOp};

/// Capacity of the writer's queue (changes, not transactions).
pub(crate) const QUEUE: usize = 4_096;
/// Most changes committed together.
pub(crate) const MAX_GROUP_OPS: usize = 1_024;
/// Most mempool transactions committed together (a group stops growing past it).
pub(crate) const MAX_GROUP_TXS: usize = 5_000;

/// Why a queued change is not on disk.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum WriteError {
    /// The storage failed (now or earlier): the node is stopping.
    #[error("storage failed: {0}")]
    Failed(String),
    /// The writer stopped (shutdown).
    #[error("storage is closed")]
    Closed,
}

impl From<WriteError> for StorageError {
    fn from(e: WriteError) -> StorageError {
        match e {
            WriteError::Failed(reason) => StorageError::Failed(reason),
            WriteError::Closed => StorageError::Closed,
        }
    }
}

/// Whether the node's storage still works. Once a write failed, it never works again in this
/// process: memory may hold what the disk does not, so the node stops producing, importing,
/// admitting and serving state, reports the reason on `/health` and in metrics, and `ppd` exits.
#[derive(Debug, Default)]
pub(crate) struct Health {
    failure: OnceLock<String>,
}

impl Health {
    /// The first storage failure, if any.
    pub(crate) fn failure(&self) -> Option<&str> {
        self.failure.get().map(String::as_str)
    }

    /// Records a storage failure (the first one is kept).
    pub(crate) fn fail(&self, reason: String) {
        if self.failure.set(reason.clone()).is_ok() {
            tracing::error!(error = %reason, "storage failed: the node stops (fail-stop)");
        }
    }

    /// `Err` once the storage failed.
    pub(crate) fn check(&self) -> Result<(), WriteError> {
        match self.failure() {
            Some(r) => Err(WriteError::Failed(r.to_string())),
            None => Ok(()),
        }
    }
}

type Reply = oneshot::Sender<Result<(), WriteError>>;

struct Job {
    op: WriteOp,
    reply: Option<Reply>,
}

/// The queue into the writer task.
#[derive(Clone)]
pub(crate) struct Writer {
    queue: mpsc::Sender<Job>,
    health: Arc<Health>,
}

/// A reserved place in the writer's queue: sending on it never waits, so it can be done while
/// holding a std lock.
pub(crate) struct Slot {
    permit: mpsc::OwnedPermit<Job>,
}

/// The answer to a queued change: resolves when it is durable (or failed).
pub(crate) struct Pending(oneshot::Receiver<Result<(), WriteError>>);

impl Pending {
    /// Waits until the change is on disk.
    pub(crate) async fn durable(self) -> Result<(), WriteError> {
        self.0.await.unwrap_or(Err(WriteError::Closed))
    }
}

impl Slot {
    /// Queues `op`; await the returned [`Pending`] for its durability.
    pub(crate) fn send(self, op: WriteOp) -> Pending {
        let (tx, rx) = oneshot::channel();
        // The sender handed back is a clone the slot held; the writer keeps its own.
        drop(self.permit.send(Job {
            op,
            reply: Some(tx),
        }));
        Pending(rx)
    }
}

impl Writer {
    /// A writer over `storage`, and the task to spawn that drains its queue.
    pub(crate) fn new(
        storage: Arc<Storage>,
        pool: Arc<dyn Blocking>,
        health: Arc<Health>,
        metrics: &Metrics,
        shutdown: watch::Receiver<bool>,
    ) -> (
        Writer,
        impl std::future::Future<Output = ()> + Send + 'static,
    ) {
        let (tx, rx) = mpsc::channel(QUEUE);
        let counters = Counters {
            commits: metrics.storage_commits.clone(),
            ops: metrics.storage_ops.clone(),
            failed: metrics.storage_failed.clone(),
        };
        let task = run(storage, pool, health.clone(), counters, rx, shutdown);
        (Writer { queue: tx, health }, task)
    }

    /// Reserves a place in the queue (waits while it is full: backpressure on every producer).
    pub(crate) async fn reserve(&self) -> Result<Slot, WriteError> {
        self.health.check()?;
        // Owned, so that a slot can go with work to another thread (see `Core::import`).
        let permit = self
            .queue
            .clone()
            .reserve_owned()
            .await
            .map_err(|_| WriteError::Closed)?;
        Ok(Slot { permit })
    }

    /// Queues `op` and waits until it is durable.
    pub(crate) async fn write(&self, op: WriteOp) -> Result<(), WriteError> {
        self.reserve().await?.send(op).durable().await
    }
}

fn txs_of(op: &WriteOp) -> usize {
    match op {
        WriteOp::Chain(c) => c.mempool_add.len() + c.blocks.len(),
        _ => 1,
    }
}

/// The writer's metric handles.
struct Counters {
    commits: Counter,
    ops: Counter,
    failed: Gauge,
}

async fn run(
    storage: Arc<Storage>,
    pool: Arc<dyn Blocking>,
    health: Arc<Health>,
    metrics: Counters,
    mut queue: mpsc::Receiver<Job>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let first = tokio::select! {
            biased;
            j = queue.recv() => match j { Some(j) => j, None => break },
            _ = crate::tasks::stopped(&mut shutdown) => {
                // Commit what is already queued, then stop taking more.
                queue.close();
                match queue.recv().await { Some(j) => j, None => break }
            }
        };
        let mut weight = txs_of(&first.op);
        let mut group = vec![first];
        while group.len() < MAX_GROUP_OPS && weight < MAX_GROUP_TXS {
            match queue.try_recv() {
                Ok(j) => {
                    weight += txs_of(&j.op);
                    group.push(j);
                }
                Err(_) => break,
            }
        }
        let (ops, replies): (Vec<WriteOp>, Vec<Option<Reply>>) =
            group.into_iter().map(|j| (j.op, j.reply)).unzip();
        let result = match health.check() {
            Err(e) => Err(e),
            Ok(()) => {
                let storage = storage.clone();
                let n = ops.len();
                match blocking::run(&pool, move || storage.apply(&ops)).await {
                    Some(Ok(())) => {
                        metrics.commits.inc();
                        metrics.ops.inc_by(n as u64);
                        Ok(())
                    }
                    Some(Err(StorageError::Closed)) | None => Err(WriteError::Closed),
                    Some(Err(e)) => {
                        health.fail(e.to_string());
                        metrics.failed.set(1);
                        Err(WriteError::Failed(e.to_string()))
                    }
                }
            }
        };
        for r in replies.into_iter().flatten() {
            let _ = r.send(result.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blocking::TokioBlocking;
    use crate::storage::ChainCommit;
    use pp_ledger::{Hash, KeyPair, Transaction};

    #[tokio::test]
    async fn queued_changes_are_committed_together_and_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Arc::new(Storage::open(&dir.path().join("c.redb")).unwrap());
        let metrics = Metrics::new();
        let (_stop, stop_rx) = watch::channel(false);
        let (w, task) = Writer::new(
            storage.clone(),
            Arc::new(TokioBlocking),
            Arc::default(),
            &metrics,
            stop_rx,
        );
        let key = KeyPair::from_seed([3u8; 32]);
        let txs: Vec<Transaction> = (0..50)
            .map(|n| Transaction::transfer(&key, key.public(), 1, 1, n, &Hash::ZERO))
            .collect();
        // Queue everything before the writer runs: one group.
        let mut pending = Vec::new();
        for t in &txs {
            let op = WriteOp::Chain(ChainCommit {
                mempool_add: vec![t.clone()],
                ..ChainCommit::default()
            });
            pending.push(w.reserve().await.unwrap().send(op));
        }
        // The last change removes the first transaction again: order is kept.
        pending.push(w.reserve().await.unwrap().send(WriteOp::Chain(ChainCommit {
            mempool_remove: vec![txs[0].id()],
            ..ChainCommit::default()
        })));
        let task = tokio::spawn(task);
        for p in pending {
            p.durable().await.unwrap();
        }
        assert_eq!(metrics.storage_commits.get(), 1);
        assert_eq!(storage.mempool_txs().unwrap().0.len(), 49);
        task.abort();
    }
}
