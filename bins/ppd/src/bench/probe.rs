//! `GET /status` latency on the observer, idle and under load.
//!
//! A probe is sent every `--status-every` milliseconds on a fixed schedule, whether or not the
//! previous ones have been answered (up to [`MAX_PROBES_IN_FLIGHT`]), so a slow answer does not
//! postpone the probes that would have seen the slowness ("coordinated omission"). Each probe
//! records when it was sent and how long the answer took. The report splits them by when they
//! were sent: before the load (idle), during it, and within [`IMPORT_WINDOW`] before the observer
//! announced a block of `--big-block` or more transactions (its import of that block).

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::{watch, Semaphore};

use super::api::Api;
use super::report::{Latency, StatusLatency};

/// Probes waiting for their answer at once; a tick that finds them all busy is skipped (counted).
pub(crate) const MAX_PROBES_IN_FLIGHT: usize = 64;
/// Probes recorded at most (about 5.5 hours at one per 20 ms); the prober stops there.
const MAX_PROBE_SAMPLES: usize = 1_000_000;
/// A probe sent within this time before the observer announced a block counts as sent during the
/// import of that block (the announcement comes once the block is validated and on disk).
pub(crate) const IMPORT_WINDOW: Duration = Duration::from_secs(1);

/// What the probes measured so far.
#[derive(Debug, Default)]
pub(crate) struct Probes {
    /// (sent at, answer time in ms) of each answered probe, in the order answered.
    samples: Vec<(Instant, f64)>,
    /// Probes that failed (no answer, a timeout, a non-2xx answer).
    pub(crate) errors: u64,
    /// Ticks skipped because [`MAX_PROBES_IN_FLIGHT`] probes were waiting.
    pub(crate) skipped: u64,
    /// The last failure, for the report.
    pub(crate) last_error: Option<String>,
    /// How the prober's thread was scheduled ([`realtime_prober`]).
    pub(crate) scheduling: String,
}

/// Puts the calling thread (the prober's) in `SCHED_FIFO` at the lowest real-time priority, so
/// that its own wakeups (the timer of the next probe, the answer's arrival) are not delayed
/// behind the machine's other threads: the probe measures the node's answer, not how long the
/// generator's thread waited for a core. On a 2-core machine shared with 3 nodes and the load,
/// that wait alone put the p99 of an idle node's answers past 1 ms (docs/testing.md, session
/// 16). Returns how the thread is scheduled: `"SCHED_FIFO 1"`, or `"normal (...)"` with the
/// reason (another OS, or no permission: real-time scheduling needs `CAP_SYS_NICE` or an
/// `RLIMIT_RTPRIO` above 0).
pub(crate) fn realtime_prober() -> String {
    #[cfg(target_os = "linux")]
    {
        use thread_priority::unix::{
            set_thread_priority_and_policy, thread_native_id, RealtimeThreadSchedulePolicy,
            ThreadSchedulePolicy,
        };
        let fifo = ThreadSchedulePolicy::Realtime(RealtimeThreadSchedulePolicy::Fifo);
        match set_thread_priority_and_policy(
            thread_native_id(),
            thread_priority::ThreadPriority::Min,
            fifo,
        ) {
            Ok(()) => "SCHED_FIFO 1".to_string(),
            Err(e) => format!("normal (SCHED_FIFO refused: {e:?})"),
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        "normal (real-time scheduling is set on Linux only)".to_string()
    }
}

/// The phases of a run the probes are split by.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Phases {
    /// When probing started (the idle phase began).
    pub(crate) idle_start: Instant,
    /// When the load started (the idle phase ended).
    pub(crate) load_start: Instant,
    /// When the load ended.
    pub(crate) load_end: Instant,
}

impl Probes {
    fn sent_within(&self, from: Instant, to: Instant) -> Vec<f64> {
        self.samples
            .iter()
            .filter(|(at, _)| (from..to).contains(at))
            .map(|(_, ms)| *ms)
            .collect()
    }

    /// The probes of each phase; `imports` are the observer's announcements of the large blocks
    /// (of `big` or more transactions) since the load started. The import probes are those sent
    /// since the load started, up to the end of the run (the grace period too).
    pub(crate) fn summary(
        &self,
        phases: Phases,
        mut imports: Vec<Instant>,
        big: u64,
        every: Duration,
        node: &str,
    ) -> StatusLatency {
        imports.sort();
        let during_import: Vec<f64> = self
            .samples
            .iter()
            .filter(|(sent, _)| *sent >= phases.load_start)
            .filter(|(sent, _)| {
                // The first announcement at or after the probe was sent, if within the window.
                let i = imports.partition_point(|t| t < sent);
                imports
                    .get(i)
                    .is_some_and(|t| t.saturating_duration_since(*sent) <= IMPORT_WINDOW)
            })
            .map(|(_, ms)| *ms)
            .collect();
        let idle_ms = Latency::of(self.sent_within(phases.idle_start, phases.load_start));
        let load_ms = Latency::of(self.sent_within(phases.load_start, phases.load_end));
        let import_ms = Latency::of(during_import);
        let ratio = |l: &Latency| Some(l.p99? / idle_ms.p99.filter(|p| *p > 0.0)?);
        StatusLatency {
            node: node.to_string(),
            every_ms: every.as_millis() as u64,
            idle_s: (phases.load_start - phases.idle_start).as_secs_f64(),
            big_block_txs: big,
            import_blocks: imports.len() as u64,
            load_p99_vs_idle: ratio(&load_ms),
            import_p99_vs_idle: ratio(&import_ms),
            idle_ms,
            load_ms,
            import_ms,
            errors: self.errors,
            skipped: self.skipped,
            last_error: self.last_error.clone(),
            prober_scheduling: self.scheduling.clone(),
        }
    }
}

/// [`Probes`] shared between the probes (writers) and the reporting code; the lock is taken
/// briefly and never across an `.await`.
#[derive(Debug, Clone, Default)]
pub(crate) struct SharedProbes(Arc<Mutex<Probes>>);

impl SharedProbes {
    /// Locks the probes (a poisoned lock still holds consistent data: writers never panic
    /// mid-way).
    pub(crate) fn lock(&self) -> MutexGuard<'_, Probes> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Probes `GET /status` on `api` every `every` into `probes` until `stop` changes.
pub(crate) async fn probe(
    api: Api,
    every: Duration,
    probes: SharedProbes,
    mut stop: watch::Receiver<bool>,
) {
    let permits = Arc::new(Semaphore::new(MAX_PROBES_IN_FLIGHT));
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while !*stop.borrow() {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        if probes.lock().samples.len() >= MAX_PROBE_SAMPLES {
            return;
        }
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            probes.lock().skipped += 1;
            continue;
        };
        let (api, probes) = (api.clone(), probes.clone());
        tokio::spawn(async move {
            let _permit = permit;
            let sent = Instant::now();
            let result = api.status().await;
            let ms = sent.elapsed().as_secs_f64() * 1000.0;
            let mut p = probes.lock();
            match result {
                Ok(_) => p.samples.push((sent, ms)),
                Err(e) => {
                    p.errors += 1;
                    p.last_error = Some(format!("{e:#}"));
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes_are_split_by_phase_and_by_import_window() {
        let t = Instant::now();
        let at = |ms: u64| t + Duration::from_millis(ms);
        let mut p = Probes::default();
        // Idle 0..1000 ms: 1 ms each. Load from 1000 ms: 2 ms, and 10 ms just before an import
        // announced at 3000 ms.
        for i in 0..10 {
            p.samples.push((at(i * 100), 1.0));
        }
        for i in 10..40 {
            let ms = if (2000..=3000).contains(&(i * 100)) {
                10.0
            } else {
                2.0
            };
            p.samples.push((at(i * 100), ms));
        }
        let phases = Phases {
            idle_start: t,
            load_start: at(1000),
            load_end: at(4000),
        };
        let every = Duration::from_millis(100);
        let s = p.summary(phases, vec![at(3000)], 1000, every, "n");
        assert_eq!((s.idle_ms.count, s.load_ms.count), (10, 30));
        assert_eq!(s.idle_ms.p99, Some(1.0));
        assert_eq!((s.import_ms.count, s.import_ms.p50), (11, Some(10.0)));
        assert_eq!(s.import_p99_vs_idle, Some(10.0));
        assert_eq!((s.import_blocks, s.every_ms, s.idle_s), (1, 100, 1.0));
        // No idle probe: no ratio.
        let phases = Phases {
            idle_start: at(1000),
            ..phases
        };
        let s = p.summary(phases, Vec::new(), 1000, every, "n");
        assert_eq!((s.import_ms.count, s.load_p99_vs_idle), (0, None));
    }

    /// The prober's thread is in `SCHED_FIFO` when the call says so (the kernel's view:
    /// `/proc/thread-self/stat` field 41 is the policy, 1 = `SCHED_FIFO`), and the report
    /// carries the reason when it is not.
    #[test]
    #[cfg(target_os = "linux")]
    fn the_prober_thread_is_real_time_when_it_says_so() {
        let (said, policy) = std::thread::spawn(|| {
            let said = realtime_prober();
            let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
            // Fields after the command name, which ends at the last ')': field 3 is first.
            let rest = &stat[stat.rfind(')').unwrap() + 2..];
            let policy: u32 = rest.split(' ').nth(41 - 3).unwrap().parse().unwrap();
            (said, policy)
        })
        .join()
        .unwrap();
        if said == "SCHED_FIFO 1" {
            assert_eq!(policy, 1, "said {said}");
        } else {
            assert!(said.starts_with("normal (SCHED_FIFO refused"), "{said}");
            assert_eq!(policy, 0, "said {said}");
        }
    }
}
