//! The back half of sync: blocks that arrived in order are verified (the stateless stage) and
//! committed (the stateful stage, then one durable change per batch), each stage its own task,
//! joined by bounded channels so that fetching, verifying and committing overlap.
//!
//! Verification runs on the [`Blocking`] seam (tokio's blocking pool in production, inline in
//! pp-sim), never on a runtime worker and with no lock held: each block's cheap checks are one
//! job ([`BlockVerifier::check_block`]), its transaction signatures are cut into chunks
//! ([`PendingBlock::chunks`]) verified as separate jobs, and at most `parallelism` jobs run at
//! once. Only [`Core::import_verified`] (the stateful stage) runs under the node's import lock.

use std::sync::Arc;

use futures::future::join_all;
use futures::stream::{self, StreamExt as _};
use pp_ledger::{Block, BlockError, BlockVerifier, ChainError, VerifiedBlock};
use pp_net::PeerId;
use tokio::sync::{mpsc, Semaphore};

use crate::blocking::{self, Blocking};
use crate::node::Core;
use crate::storage::StorageError;

/// Blocks waiting between two stages, in batches (each stage works on one more).
const STAGE_QUEUE: usize = 2;

/// Consecutive blocks of the sync target, each with the peer that delivered it.
#[derive(Debug)]
pub(crate) struct Batch {
    /// The download generation they belong to (a new target starts a new one).
    pub(crate) generation: u64,
    pub(crate) blocks: Vec<(Block, PeerId)>,
}

/// What became of a batch.
#[derive(Debug)]
pub(crate) enum Done {
    /// The batch was applied (or already held) and is durable; `last` is its last block.
    Committed { last: Option<Block> },
    /// The block at `index`, from `peer`, was refused (the blocks before it were committed).
    Refused {
        generation: u64,
        index: u64,
        peer: PeerId,
        error: ChainError,
    },
    /// Storage failed: the node is failing (fail-stop); sync stops.
    Storage(StorageError),
}

/// A verified batch on its way to the commit stage.
struct Checked {
    generation: u64,
    ok: Vec<(VerifiedBlock, PeerId)>,
    /// The first block that failed the stateless stage, if any (nothing after it is kept).
    failed: Option<(u64, PeerId, BlockError)>,
}

/// Starts both stages; returns the sender of batches (bounded) and the receiver of outcomes.
pub(crate) fn start(
    core: Arc<Core>,
    pool: Arc<dyn Blocking>,
    parallelism: usize,
) -> (mpsc::Sender<Batch>, mpsc::Receiver<Done>) {
    let (batch_tx, batch_rx) = mpsc::channel(STAGE_QUEUE);
    let (checked_tx, checked_rx) = mpsc::channel(STAGE_QUEUE);
    let (done_tx, done_rx) = mpsc::channel(STAGE_QUEUE * 4);
    let permits = Arc::new(Semaphore::new(parallelism.max(1)));
    tokio::spawn(verify_stage(
        core.clone(),
        pool,
        permits,
        parallelism.max(1),
        batch_rx,
        checked_tx,
    ));
    tokio::spawn(commit_stage(core, checked_rx, done_tx));
    (batch_tx, done_rx)
}

/// Runs `f` on the pool once a permit is free (bounding the jobs in flight).
async fn job<R: Send + 'static>(
    pool: &Arc<dyn Blocking>,
    permits: &Semaphore,
    f: impl FnOnce() -> R + Send + 'static,
) -> Option<R> {
    let _permit = permits.acquire().await.ok()?;
    blocking::run(pool, f).await
}

/// The stateless stage for one block, spread over the pool. `None` if the runtime is
/// shutting down (a job was dropped unrun).
pub(crate) async fn verify_one(
    pool: &Arc<dyn Blocking>,
    permits: &Semaphore,
    parts: usize,
    verifier: BlockVerifier,
    block: Block,
) -> Option<Result<VerifiedBlock, BlockError>> {
    let pending = match job(pool, permits, move || verifier.check_block(block)).await? {
        Ok(p) => Arc::new(p),
        Err(e) => return Some(Err(e)),
    };
    let proofs = join_all(pending.chunks(parts).into_iter().map(|chunk| {
        let p = pending.clone();
        job(pool, permits, move || p.verify_chunk(&chunk))
    }))
    .await;
    // Every job has returned, so this is the last handle; a chunk that did not run is simply
    // not proven, and `finish` verifies it itself.
    let pending = Arc::into_inner(pending)?;
    Some(pending.finish(proofs.into_iter().flatten()))
}

async fn verify_stage(
    core: Arc<Core>,
    pool: Arc<dyn Blocking>,
    permits: Arc<Semaphore>,
    parallelism: usize,
    mut batches: mpsc::Receiver<Batch>,
    out: mpsc::Sender<Checked>,
) {
    while let Some(batch) = batches.recv().await {
        // Without the chain lock: an import of the previous batch may hold it.
        let verifier = core.verifier().clone();
        // Blocks of a batch are verified concurrently (`parallelism` at a time, their chunks
        // sharing the same permits) and their results kept in order.
        let results: Vec<_> = stream::iter(batch.blocks)
            .map(|(block, peer)| {
                let (pool, permits, verifier) = (pool.clone(), permits.clone(), verifier.clone());
                async move {
                    let index = block.header.index;
                    let r = verify_one(&pool, &permits, parallelism, verifier, block).await;
                    (index, peer, r)
                }
            })
            .buffered(parallelism)
            .collect()
            .await;
        let mut checked = Checked {
            generation: batch.generation,
            ok: Vec::with_capacity(results.len()),
            failed: None,
        };
        for (index, peer, r) in results {
            match r {
                Some(Ok(v)) => checked.ok.push((v, peer)),
                Some(Err(e)) => {
                    checked.failed = Some((index, peer, e));
                    break;
                }
                // Shutting down.
                None => return,
            }
        }
        if out.send(checked).await.is_err() {
            return;
        }
    }
}

async fn commit_stage(
    core: Arc<Core>,
    mut checked: mpsc::Receiver<Checked>,
    done: mpsc::Sender<Done>,
) {
    while let Some(c) = checked.recv().await {
        let generation = c.generation;
        let peers: Vec<PeerId> = c.ok.iter().map(|(_, p)| *p).collect();
        let last = c.ok.last().map(|(v, _)| v.block().clone());
        let first_index = c.ok.first().map(|(v, _)| v.block().header.index);
        let blocks: Vec<VerifiedBlock> = c.ok.into_iter().map(|(v, _)| v).collect();
        let outcome = match core.import_verified(blocks).await {
            Err(e) => Done::Storage(e),
            Ok((applied, Some(error))) => {
                let i = applied.len();
                Done::Refused {
                    generation,
                    index: first_index.unwrap_or(0).saturating_add(i as u64),
                    peer: peers.get(i).copied().unwrap_or(PeerId(0)),
                    error,
                }
            }
            Ok((applied, None)) => {
                let fresh = applied
                    .iter()
                    .filter(|d| !matches!(d.outcome, pp_ledger::AddOutcome::AlreadyKnown))
                    .count();
                core.metrics().blocks_received.inc_by(fresh as u64);
                match c.failed {
                    Some((index, peer, e)) => Done::Refused {
                        generation,
                        index,
                        peer,
                        error: ChainError::Block(e),
                    },
                    None => Done::Committed { last },
                }
            }
        };
        let stop = matches!(outcome, Done::Storage(_));
        if done.send(outcome).await.is_err() || stop {
            return;
        }
    }
}
