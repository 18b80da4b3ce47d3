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
        format!(
            "bench: {:.1} s of load on {} (observer {})\n  \
             accepted  {} of {} submitted: {:.0} tx/s; rejected {} [{}]\n  \
             included  {:} tx/s in slots {}..={} ({} of our acknowledged transactions)\n  \
             latency   submit -> included on the observer: p50 {} ms, p95 {} ms, p99 {} ms, max {} ms ({} samples)\n  \
             slots     {} of {} ended with a block: fill {}\n  \
             lost      {} acknowledged but not included [{}]; nonce regressions {}\n  \
             mempool   peak {} on the node",
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
