//! Where CPU-heavy or blocking work runs, behind a trait: the decoding of large frames, the
//! building of `blocks` and `headers` answers (a storage read and megabytes of JSON) here, and
//! in pp-server the signature batches, durable commits and stateful imports.
//!
//! A runtime worker that decodes a 2 MiB frame in one poll holds up every other task queued on
//! it (a node's `/status`, pings, other peers) for milliseconds. [`TokioBlocking`] (the
//! default) hands each job to tokio's blocking pool instead. A simulation cannot use that
//! pool: its jobs would finish on real threads at real times, outside turmoil's virtual time
//! and deterministic schedule. [`InlineBlocking`] runs each job on the calling task instead,
//! which is what a single-threaded simulation wants. The transport seam works the same way.

use std::sync::Arc;

/// A job to run off the async tasks.
pub type BlockingJob = Box<dyn FnOnce() + Send + 'static>;

/// Runs blocking jobs.
pub trait Blocking: Send + Sync + 'static {
    /// Runs `job`, now or on another thread. It must run exactly once unless the runtime is
    /// shutting down.
    fn spawn(&self, job: BlockingJob);
}

impl std::fmt::Debug for dyn Blocking {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("dyn Blocking")
    }
}

/// tokio's blocking thread pool (production).
#[derive(Debug, Clone, Copy, Default)]
pub struct TokioBlocking;

impl Blocking for TokioBlocking {
    fn spawn(&self, job: BlockingJob) {
        drop(tokio::task::spawn_blocking(job));
    }
}

/// Runs each job at once on the calling task (simulations, where a single thread drives the
/// whole network on virtual time).
#[derive(Debug, Clone, Copy, Default)]
pub struct InlineBlocking;

impl Blocking for InlineBlocking {
    fn spawn(&self, job: BlockingJob) {
        job();
    }
}

/// Runs `f` on `pool` and waits for its result; `None` if the job was dropped unrun (the
/// runtime is shutting down).
pub async fn run<R: Send + 'static>(
    pool: &Arc<dyn Blocking>,
    f: impl FnOnce() -> R + Send + 'static,
) -> Option<R> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    pool.spawn(Box::new(move || {
        let _ = tx.send(f());
    }));
    rx.await.ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn both_pools_run_the_job_and_return_its_result() {
        let inline: Arc<dyn Blocking> = Arc::new(InlineBlocking);
        let pool: Arc<dyn Blocking> = Arc::new(TokioBlocking);
        assert_eq!(run(&inline, || 2 + 2).await, Some(4));
        let on = run(&pool, || std::thread::current().id()).await;
        assert_ne!(on, Some(std::thread::current().id()));
    }
}
