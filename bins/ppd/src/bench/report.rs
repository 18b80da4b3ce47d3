//! The results of a run: the JSON document `--json` writes, and the summary printed at the end.

use std::collections::BTreeMap;

use serde::Serialize;

/// Everything a run measured. Rates are per second of load (`load_seconds`); latencies are from
/// the moment a transaction's request was sent to the first poll of the observer that saw it in
/// a best-chain block.
#[derive(Debug, Serialize)]
pub(crate) struct Report {
    /// Format version of this document.
    pub(crate) version: u32,
    pub(crate) node: String,
    pub(crate) observer: String,
    pub(crate) config: ConfigEcho,
    /// `unused` (--batch 1), `supported`, `unsupported` or `untried`.
    pub(crate) batch_form: &'static str,
    pub(crate) load_seconds: f64,
    pub(crate) submitted: u64,
    pub(crate) accepted: u64,
    pub(crate) accepted_tps: f64,
    pub(crate) rejected_total: u64,
    /// Refusals by the node's error code (or `transport_*` / `http_<status>`).
    pub(crate) rejected: BTreeMap<String, u64>,
    /// Acknowledged transactions included in the observer's best chain by the end.
    pub(crate) included_own: u64,
    /// Transactions (anyone's) in the observer's best-chain blocks of the measured slots, per
    /// second of those slots.
    pub(crate) included_tps: Option<f64>,
    pub(crate) latency_ms: Latency,
    /// The same latencies in slots (of `slots.slot_ms`).
    pub(crate) latency_slots: Option<Latency>,
    pub(crate) slots: SlotFill,
    /// Acknowledged transactions not included by the end of the grace period.
    pub(crate) lost: Lost,
    /// Times the node's pending nonce for an account fell below its last acknowledged nonce.
    pub(crate) nonce_regressions: u64,
    pub(crate) resync_failures: u64,
    pub(crate) observer_blocks_rolled_back: u64,
    pub(crate) observer_poll_errors: u64,
    pub(crate) observer_last_error: Option<String>,
    /// Mempool sizes over time (about one sample a second).
    pub(crate) mempool: Vec<MempoolSample>,
    /// How fast the blocks produced during the load reached the other watched nodes.
    pub(crate) propagation: Propagation,
    /// `GET /status` answer times on the observer, idle and under load.
    pub(crate) status_latency: StatusLatency,
}

/// Block propagation among the watched nodes (`super::propagation`): for each block first
/// announced during the load, the time from its first announcement (by its producer, when
/// watched) to each other watched node's. One sample per (block, other node).
#[derive(Debug, Serialize)]
pub(crate) struct Propagation {
    /// The watched nodes: the submit node, the observer and each `--watch` node.
    pub(crate) nodes: Vec<String>,
    /// `--big-block`: blocks of at least this many transactions are also counted apart.
    pub(crate) big_block_txs: u64,
    /// Blocks first announced during the load.
    pub(crate) blocks: u64,
    /// Those of them with at least `big_block_txs` transactions.
    pub(crate) big_blocks: u64,
    pub(crate) all_ms: Latency,
    /// `all_ms` in slots (of `slots.slot_ms`).
    pub(crate) all_slots: Option<Latency>,
    /// Only the blocks of at least `big_block_txs` transactions.
    pub(crate) big_ms: Latency,
    pub(crate) big_slots: Option<Latency>,
    /// Announcements by a node that had another block at that height on its best chain first:
    /// when it adopted the block by a fork switch (not in the figures above).
    pub(crate) via_fork_switch_ms: Latency,
    /// (block, other node) pairs never announced by the end of the run (the block lost a fork
    /// race there, or that node's stream was down).
    pub(crate) not_reached: u64,
    /// Events the nodes skipped because the generator read their stream too slowly.
    pub(crate) missed_events: u64,
    /// Event streams that failed or ended (each is reconnected after a second).
    pub(crate) stream_errors: u64,
    pub(crate) last_error: Option<String>,
}

/// `GET /status` answer times on the observer (`super::probe`), by when the probe was sent.
#[derive(Debug, Serialize)]
pub(crate) struct StatusLatency {
    pub(crate) node: String,
    /// `--status-every`: one probe per this many milliseconds, on a fixed schedule.
    pub(crate) every_ms: u64,
    /// Length of the idle phase before the load (`--idle`).
    pub(crate) idle_s: f64,
    pub(crate) idle_ms: Latency,
    /// Probes sent during the load.
    pub(crate) load_ms: Latency,
    /// Probes sent within 1 s before the observer announced a block of at least
    /// `big_block_txs` transactions (from the start of the load to the end of the run).
    pub(crate) import_ms: Latency,
    /// How many such blocks the observer announced.
    pub(crate) import_blocks: u64,
    pub(crate) big_block_txs: u64,
    /// `load_ms.p99 / idle_ms.p99`.
    pub(crate) load_p99_vs_idle: Option<f64>,
    /// `import_ms.p99 / idle_ms.p99`.
    pub(crate) import_p99_vs_idle: Option<f64>,
    /// Probes that failed (no answer, a timeout, a non-2xx answer); not in the figures.
    pub(crate) errors: u64,
    /// Ticks skipped because 64 probes were waiting for an answer.
    pub(crate) skipped: u64,
    pub(crate) last_error: Option<String>,
    /// How the prober's thread was scheduled (`super::probe::realtime_prober`).
    pub(crate) prober_scheduling: String,
}

/// The options of the run.
#[derive(Debug, Serialize)]
pub(crate) struct ConfigEcho {
    pub(crate) accounts: usize,
    pub(crate) fund: u64,
    pub(crate) rate: u64,
    pub(crate) duration_s: u64,
    pub(crate) grace_s: u64,
    pub(crate) concurrency: usize,
    pub(crate) batch: usize,
    pub(crate) fee: u64,
}

/// Percentiles (nearest rank) of a set of latencies; all `null` when it is empty.
#[derive(Debug, Default, Serialize, PartialEq)]
pub(crate) struct Latency {
    pub(crate) count: u64,
    pub(crate) p50: Option<f64>,
    pub(crate) p95: Option<f64>,
    pub(crate) p99: Option<f64>,
    pub(crate) max: Option<f64>,
    pub(crate) mean: Option<f64>,
}

impl Latency {
    /// The percentiles of `values` (sorted here).
    pub(crate) fn of(mut values: Vec<f64>) -> Latency {
        values.sort_by(f64::total_cmp);
        let n = values.len();
        if n == 0 {
            return Latency::default();
        }
        let rank = |p: f64| values[((p / 100.0 * n as f64).ceil() as usize).clamp(1, n) - 1];
        Latency {
            count: n as u64,
            p50: Some(rank(50.0)),
            p95: Some(rank(95.0)),
            p99: Some(rank(99.0)),
            max: values.last().copied(),
            mean: Some(values.iter().sum::<f64>() / n as f64),
        }
    }

    /// The same latencies divided by `unit`.
    pub(crate) fn scaled(&self, unit: f64) -> Latency {
        let d = |v: Option<f64>| v.map(|x| x / unit);
        Latency {
            count: self.count,
            p50: d(self.p50),
            p95: d(self.p95),
            p99: d(self.p99),
            max: d(self.max),
            mean: d(self.mean),
        }
    }
}

/// Which slots of the load ended with a block on the observer's best chain. The measured slots
/// are those that began after the load started and ended before it stopped.
#[derive(Debug, Serialize)]
pub(crate) struct SlotFill {
    pub(crate) first: u64,
    pub(crate) last: u64,
    pub(crate) total: u64,
    pub(crate) with_block: u64,
    pub(crate) fill: Option<f64>,
    /// Slot length timed on the observer's clock (slot changes seen by the follower).
    pub(crate) slot_ms: Option<f64>,
}

/// Acknowledged transactions that were not included.
#[derive(Debug, Default, Serialize)]
pub(crate) struct Lost {
    pub(crate) count: u64,
    /// What `GET /transactions/{id}` on the submit node said about them (for the first
    /// [`super::MAX_LOST_QUERIED`]).
    pub(crate) by_reason: BTreeMap<String, u64>,
    pub(crate) examples: Vec<LostTx>,
}

/// One lost transaction.
#[derive(Debug, Serialize)]
pub(crate) struct LostTx {
    pub(crate) id: String,
    pub(crate) from: String,
    pub(crate) nonce: u64,
    pub(crate) reason: String,
}

/// One sample of the mempool sizes.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct MempoolSample {
    /// Seconds since the load started (negative: before it).
    pub(crate) t_s: f64,
    pub(crate) node: Option<u64>,
    pub(crate) observer: Option<u64>,
    pub(crate) observer_height: Option<u64>,
}

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "-".to_string(), |x| format!("{x:.digits$}"))
}

/// `p50 120 ms (0.12 slot), p95 …, max …` of latencies in ms and the same in slots.
fn ms_and_slots(ms: &Latency, slots: Option<&Latency>) -> String {
    let one = |name: &str, m: Option<f64>, s: Option<f64>| {
        format!("{name} {} ms ({} slot)", opt(m, 0), opt(s, 2))
    };
    let s = |f: fn(&Latency) -> Option<f64>| slots.and_then(f);
    format!(
        "{}, {}, {}",
        one("p50", ms.p50, s(|l| l.p50)),
        one("p95", ms.p95, s(|l| l.p95)),
        one("max", ms.max, s(|l| l.max)),
    )
}

impl Propagation {
    /// `all p50 … | 1000+ tx p50 …`, for the progress line.
    pub(crate) fn short(&self) -> String {
        format!(
            "propagation p50 {} p95 {} max {} ms ({}) | {}+ tx p50 {} p95 {} max {} ms ({})",
            opt(self.all_ms.p50, 0),
            opt(self.all_ms.p95, 0),
            opt(self.all_ms.max, 0),
            self.all_ms.count,
            self.big_block_txs,
            opt(self.big_ms.p50, 0),
            opt(self.big_ms.p95, 0),
            opt(self.big_ms.max, 0),
            self.big_ms.count,
        )
    }
}

impl StatusLatency {
    /// `/status p99 … ms (idle …, import …)`, for the progress line.
    pub(crate) fn short(&self) -> String {
        format!(
            "/status p99 idle {} load {} import {} ms",
            opt(self.idle_ms.p99, 1),
            opt(self.load_ms.p99, 1),
            opt(self.import_ms.p99, 1),
        )
    }
}

impl Report {
    /// The human summary printed at the end of a run.
    pub(crate) fn summary(&self) -> String {
        let l = &self.latency_ms;
        let rejected: Vec<String> = self
            .rejected
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let lost: Vec<String> = self
            .lost
            .by_reason
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let peak = self.mempool.iter().filter_map(|s| s.node).max();
        let (p, st) = (&self.propagation, &self.status_latency);
        format!(
            "bench: {:.1} s of load on {} (observer {})\n  \
             accepted  {} of {} submitted: {:.0} tx/s; rejected {} [{}]\n  \
             included  {:} tx/s in slots {}..={} ({} of our acknowledged transactions)\n  \
             latency   submit -> included on the observer: p50 {} ms, p95 {} ms, p99 {} ms, max {} ms ({} samples)\n  \
             slots     {} of {} ended with a block: fill {}\n  \
             lost      {} acknowledged but not included [{}]; nonce regressions {}\n  \
             mempool   peak {} on the node\n  \
             propagation  first announcement -> each other watched node ({} nodes), {} blocks: \
             {} ({} samples)\n  \
             propagation  blocks of {}+ tx ({}): {} ({} samples); \
             by fork switch {}, never reached {}\n  \
             /status   on the observer every {} ms: idle p50 {} p99 {} ms ({}); load p50 {} p99 \
             {} ms ({}, {}x idle); during {}+ tx imports p50 {} p99 {} ms ({} probes, {} blocks, \
             {}x idle); {} failed; prober {}",
            self.load_seconds,
            self.node,
            self.observer,
            self.accepted,
            self.submitted,
            self.accepted_tps,
            self.rejected_total,
            rejected.join(" "),
            opt(self.included_tps, 0),
            self.slots.first,
            self.slots.last,
            self.included_own,
            opt(l.p50, 0),
            opt(l.p95, 0),
            opt(l.p99, 0),
            opt(l.max, 0),
            l.count,
            self.slots.with_block,
            self.slots.total,
            opt(self.slots.fill, 3),
            self.lost.count,
            lost.join(" "),
            self.nonce_regressions,
            peak.map_or_else(|| "-".to_string(), |p| p.to_string()),
            self.propagation.nodes.len(),
            self.propagation.blocks,
            ms_and_slots(&p.all_ms, p.all_slots.as_ref()),
            p.all_ms.count,
            p.big_block_txs,
            p.big_blocks,
            ms_and_slots(&p.big_ms, p.big_slots.as_ref()),
            p.big_ms.count,
            p.via_fork_switch_ms.count,
            p.not_reached,
            st.every_ms,
            opt(st.idle_ms.p50, 1),
            opt(st.idle_ms.p99, 1),
            st.idle_ms.count,
            opt(st.load_ms.p50, 1),
            opt(st.load_ms.p99, 1),
            st.load_ms.count,
            opt(st.load_p99_vs_idle, 2),
            st.big_block_txs,
            opt(st.import_ms.p50, 1),
            opt(st.import_ms.p99, 1),
            st.import_ms.count,
            st.import_blocks,
            opt(st.import_p99_vs_idle, 2),
            st.errors,
            st.prober_scheduling,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let l = Latency::of((1..=100).rev().map(f64::from).collect());
        assert_eq!(l.count, 100);
        assert_eq!(
            (l.p50, l.p95, l.p99, l.max),
            (Some(50.0), Some(95.0), Some(99.0), Some(100.0))
        );
        assert_eq!(l.mean, Some(50.5));
        let one = Latency::of(vec![7.0]);
        assert_eq!((one.p50, one.p99), (Some(7.0), Some(7.0)));
        assert_eq!(Latency::of(vec![]), Latency::default());
        assert_eq!(
            Latency::of(vec![1000.0, 2000.0]).scaled(1000.0).max,
            Some(2.0)
        );
    }
}
