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

/// A fixed set of threads for CPU-bound jobs (signature batches, block application, the
/// decoding of large frames), owned by whoever builds it: one thread per core by default.
///
/// tokio's blocking pool grows a thread for each job that finds none idle (up to 512), and
/// its threads and runtime workers share one mutex to hand jobs over. With CPU-bound jobs on
/// it, a node syncing full blocks ran 9 busy threads on 2 cores, preempting the runtime
/// workers (which answer `/status` and peers) and contending with them on that mutex
/// (docs/testing.md, session 12). This pool runs at most `threads` jobs at once, queues the
/// rest in rayon's lock-free injector, and leaves tokio's blocking pool to jobs that wait
/// (disk I/O). Dropping it lets the queued jobs finish and then ends its threads.
pub struct CpuPool {
    pool: rayon::ThreadPool,
}

impl std::fmt::Debug for CpuPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CpuPool")
            .field("threads", &self.pool.current_num_threads())
            .finish()
    }
}

/// How a [`CpuPool`]'s threads are scheduled against the node's other threads (the runtime
/// workers that answer HTTP and peers) and the rest of the machine.
///
/// Measured on 2 cores with the `/status` probe (docs/testing.md, session 13): at `Normal` a
/// `/status` waits p95 ≈ 3.7 ms while full blocks are imported back to back, at `Idle`
/// p95 ≈ 0.5 ms (idle: 0.3 ms). The price of the lower settings is that any other busy
/// process on the machine takes the cores first: at `Idle` a node sharing its cores with a
/// compile can fall behind the chain. `Normal` is the default for that reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CpuPriority {
    /// Scheduled as every other thread of the process.
    #[default]
    Normal,
    /// The threads' nice value raised by 10 (Linux; elsewhere as `Normal`, with a warning):
    /// they get about a tenth of a core that a nice-0 thread also wants.
    Low,
    /// `SCHED_IDLE` (Linux; elsewhere as `Normal`, with a warning): the threads run only when
    /// no other thread wants the core, and any waking thread preempts them at once.
    Idle,
}

impl CpuPriority {
    /// The name used in configuration: `normal`, `low` or `idle`.
    pub fn as_str(self) -> &'static str {
        match self {
            CpuPriority::Normal => "normal",
            CpuPriority::Low => "low",
            CpuPriority::Idle => "idle",
        }
    }
}

impl std::str::FromStr for CpuPriority {
    type Err = String;
    fn from_str(s: &str) -> Result<CpuPriority, String> {
        match s {
            "normal" => Ok(CpuPriority::Normal),
            "low" => Ok(CpuPriority::Low),
            "idle" => Ok(CpuPriority::Idle),
            other => Err(format!("{other:?} is not one of normal, low, idle")),
        }
    }
}

impl std::fmt::Display for CpuPriority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Applies `priority` to the calling thread. Errors are reported, not fatal: the thread then
/// runs at the priority it had.
#[cfg(target_os = "linux")]
fn apply_priority(priority: CpuPriority) -> Result<(), String> {
    match priority {
        CpuPriority::Normal => Ok(()),
        CpuPriority::Low => {
            // On Linux a thread id names one thread for getpriority/setpriority.
            let tid = rustix::thread::gettid();
            let nice =
                rustix::process::getpriority_process(Some(tid)).map_err(|e| e.to_string())?;
            rustix::process::setpriority_process(Some(tid), (nice + 10).min(19))
                .map_err(|e| e.to_string())
        }
        CpuPriority::Idle => {
            use thread_priority::unix::{
                set_thread_priority_and_policy, thread_native_id, NormalThreadSchedulePolicy,
                ThreadSchedulePolicy,
            };
            let idle = ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Idle);
            let set = set_thread_priority_and_policy(
                thread_native_id(),
                thread_priority::ThreadPriority::Min,
                idle,
            );
            // The crate sets the policy, then the nice value to 0, which a process already
            // niced above 0 may not do: what matters is the policy, so read it back.
            match (set, thread_priority::unix::thread_schedule_policy()) {
                (_, Ok(policy)) if policy == idle => Ok(()),
                (Err(e), _) => Err(format!("{e:?}")),
                (Ok(()), other) => Err(format!("policy after setting SCHED_IDLE: {other:?}")),
            }
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn apply_priority(priority: CpuPriority) -> Result<(), String> {
    match priority {
        CpuPriority::Normal => Ok(()),
        other => Err(format!("cpu priority {other} is supported on Linux only")),
    }
}

impl CpuPool {
    /// A pool of `threads` threads (at least 1) named `{name}-{i}`, at [`CpuPriority::Normal`].
    pub fn new(threads: usize, name: &str) -> std::io::Result<CpuPool> {
        CpuPool::with_priority(threads, name, CpuPriority::Normal)
    }

    /// A pool of `threads` threads (at least 1) named `{name}-{i}`, each of which sets its own
    /// scheduling to `priority` when it starts (a failure is logged once per thread and the
    /// thread runs as it was).
    pub fn with_priority(
        threads: usize,
        name: &str,
        priority: CpuPriority,
    ) -> std::io::Result<CpuPool> {
        let name = name.to_string();
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads.max(1))
            .thread_name(move |i| format!("{name}-{i}"))
            .start_handler(move |_| {
                if let Err(e) = apply_priority(priority) {
                    tracing::warn!(%priority, error = %e, "could not set the CPU pool's priority");
                }
            })
            // rayon aborts the process on a panicking job unless a handler is set. A job that
            // panics is logged and dropped: its caller's `run` then answers `None`, as with
            // tokio's blocking pool.
            .panic_handler(|_| tracing::error!("a job on the CPU pool panicked; dropped"))
            .build()
            .map(|pool| CpuPool { pool })
            .map_err(std::io::Error::other)
    }

    /// One thread per core (as the OS reports them; 1 if it cannot tell).
    pub fn per_core(name: &str) -> std::io::Result<CpuPool> {
        CpuPool::per_core_with_priority(name, CpuPriority::Normal)
    }

    /// One thread per core, at `priority`.
    pub fn per_core_with_priority(name: &str, priority: CpuPriority) -> std::io::Result<CpuPool> {
        CpuPool::with_priority(
            std::thread::available_parallelism().map_or(1, |n| n.get()),
            name,
            priority,
        )
    }

    /// The number of threads.
    pub fn threads(&self) -> usize {
        self.pool.current_num_threads()
    }
}

impl Blocking for CpuPool {
    fn spawn(&self, job: BlockingJob) {
        self.pool.spawn(job);
    }
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

    /// The CPU pool runs every job, on its own named threads, never more than its size at
    /// once (the bound that keeps CPU-bound jobs from outnumbering the cores).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_cpu_pool_runs_every_job_on_its_threads_at_most_its_size_at_once() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let pool: Arc<dyn Blocking> = Arc::new(CpuPool::new(2, "test-cpu").unwrap());
        let (running, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let jobs = (0..16).map(|_| {
            let (running, most) = (running.clone(), most.clone());
            let pool = pool.clone();
            async move {
                run(&pool, move || {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(std::time::Duration::from_millis(5));
                    running.fetch_sub(1, Ordering::SeqCst);
                    std::thread::current().name().map(str::to_string)
                })
                .await
            }
        });
        let names = futures::future::join_all(jobs).await;
        assert_eq!(names.len(), 16);
        for name in names {
            let name = name.expect("every job ran").expect("a named thread");
            assert!(name.starts_with("test-cpu-"), "{name}");
        }
        assert_eq!(most.load(Ordering::SeqCst), 2, "two at once, never more");
    }

    /// A job that panics is dropped (its caller gets `None`) and the pool, and the process,
    /// go on: rayon's default would abort.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_panicking_job_on_the_cpu_pool_answers_none_and_the_pool_goes_on() {
        let pool: Arc<dyn Blocking> = Arc::new(CpuPool::new(1, "test-panic").unwrap());
        let failed: Option<()> = run(&pool, || panic!("a bug in a job")).await;
        assert_eq!(failed, None);
        assert_eq!(run(&pool, || 7).await, Some(7));
    }

    /// Each priority takes effect on the pool's threads (read back from the kernel), and the
    /// names parse back to the same values.
    #[cfg(target_os = "linux")]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_cpu_pool_threads_run_at_the_priority_asked() {
        use thread_priority::unix::{
            thread_schedule_policy, NormalThreadSchedulePolicy, ThreadSchedulePolicy,
        };
        let nice = || rustix::process::getpriority_process(Some(rustix::thread::gettid())).unwrap();
        let base = nice();
        for (priority, want_nice, want_idle) in [
            (CpuPriority::Normal, base, false),
            (CpuPriority::Low, (base + 10).min(19), false),
            (CpuPriority::Idle, base, true),
        ] {
            assert_eq!(priority.as_str().parse::<CpuPriority>(), Ok(priority));
            let pool: Arc<dyn Blocking> =
                Arc::new(CpuPool::with_priority(1, "test-prio", priority).unwrap());
            let (n, policy) = run(&pool, move || (nice(), thread_schedule_policy().unwrap()))
                .await
                .unwrap();
            let idle = policy == ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Idle);
            assert_eq!(idle, want_idle, "{priority}: policy {policy:?}");
            if !want_idle {
                assert_eq!(n, want_nice, "{priority}: nice");
            }
        }
        assert!("fast".parse::<CpuPriority>().is_err());
    }
}
