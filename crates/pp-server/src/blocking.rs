//! Where blocking work (a durable redb commit) runs, behind a trait.
//!
//! A node must not block tokio's worker threads on disk I/O: [`TokioBlocking`] (the default)
//! hands each job to tokio's blocking pool. A simulation cannot use that pool: its jobs would
//! finish on real threads at real times, outside turmoil's virtual time and deterministic
//! schedule. [`InlineBlocking`] runs each job on the calling task instead, which is what a
//! single-threaded simulation wants. The [`Clock`](crate::Clock) seam works the same way.

use std::sync::Arc;

/// A job to run off the async tasks.
pub type BlockingJob = Box<dyn FnOnce() + Send + 'static>;

/// Runs blocking jobs.
pub trait Blocking: Send + Sync + 'static {
    /// Runs `job`, now or on another thread. It must run exactly once unless the runtime is
    /// shutting down.
    fn spawn(&self, job: BlockingJob);
}

/// How much lower than the node's other threads the threads running its blocking jobs are
/// scheduled (a `nice` increment; Linux only, where niceness is per thread).
///
/// Those jobs are the node's bulk CPU work: batch signature checks, block imports, block reads
/// for HTTP, durable commits. The runtime workers that they would otherwise compete with for a
/// core answer peers and HTTP clients (`/status`, `/health`) and run the slot timer; a few
/// milliseconds of their time matter, a few milliseconds more for an import do not. The
/// increment only lowers a share when the cores are contended: on an idle core the job runs
/// at full speed, and at +5 it still gets about a quarter of a core contended by one thread
/// of normal priority, so it is never starved.
pub const BLOCKING_NICE_INCREMENT: i32 = 5;

/// tokio's blocking thread pool (production). Each pool thread that runs a node job is lowered
/// by [`BLOCKING_NICE_INCREMENT`] the first time, and stays so.
#[derive(Debug, Clone, Copy, Default)]
pub struct TokioBlocking;

impl Blocking for TokioBlocking {
    fn spawn(&self, job: BlockingJob) {
        drop(tokio::task::spawn_blocking(move || {
            lower_this_thread_once();
            job()
        }));
    }
}

/// Lowers the calling thread's priority by [`BLOCKING_NICE_INCREMENT`], once per thread. A
/// failure (a sandbox refusing the call) leaves the thread as it was: priority is an
/// optimisation, never a condition for running the job.
fn lower_this_thread_once() {
    thread_local! {
        static LOWERED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }
    if LOWERED.with(|l| l.replace(true)) {
        return;
    }
    #[cfg(target_os = "linux")]
    {
        use rustix::process::{getpriority_process, setpriority_process};
        let tid = Some(rustix::thread::gettid());
        if let Ok(now) = getpriority_process(tid) {
            let lower = (now + BLOCKING_NICE_INCREMENT).min(19);
            if let Err(e) = setpriority_process(tid, lower) {
                tracing::debug!(error = %e, "cannot lower a blocking thread's priority");
            }
        }
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
pub(crate) async fn run<R: Send + 'static>(
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

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn the_pool_runs_node_jobs_below_the_runtime_threads_priority() {
        use rustix::process::getpriority_process;
        let here = getpriority_process(Some(rustix::thread::gettid())).unwrap();
        let pool: Arc<dyn Blocking> = Arc::new(TokioBlocking);
        let there = run(&pool, || {
            getpriority_process(Some(rustix::thread::gettid())).unwrap()
        })
        .await
        .unwrap();
        assert_eq!(there, (here + BLOCKING_NICE_INCREMENT).min(19));
        // Once per thread: a second job on the same thread is not lowered again.
        let again = run(&pool, || {
            getpriority_process(Some(rustix::thread::gettid())).unwrap()
        })
        .await
        .unwrap();
        assert_eq!(again, there);
    }
}
