//! Prometheus metrics of one node (prometheus-client, OpenMetrics text at `GET /metrics`).
//!
//! Each [`Server`](crate::Server) owns its own [`Registry`], never a global one, so that several
//! nodes in one process (tests, simulations) keep separate numbers.

use prometheus_client::encoding::text::{encode_eof, encode_registry};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// Labels of the per-message-type traffic counters.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TrafficLabels {
    /// `in` or `out`.
    pub direction: String,
    /// The message type (`new_block`, `get_blocks`, ...).
    pub r#type: String,
}

/// A label naming a reason (an offence, a handshake failure, a refusal).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    /// The reason, in snake_case.
    pub reason: String,
}

/// The label of the compact-block counter: how a compact block announced to this node ended.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabel {
    /// `rebuilt`, `fetched`, `full` or `failed` (see [`COMPACT_OUTCOMES`]).
    pub outcome: String,
}

/// The outcomes of `pp_p2p_compact_blocks_total`: rebuilt from this node's own transactions
/// (no round trip), rebuilt after fetching the missing transactions (one round trip), completed
/// by the full fallback (every transaction fetched), given up (the sender did not deliver).
pub const COMPACT_OUTCOMES: [&str; 4] = ["rebuilt", "fetched", "full", "failed"];

/// The node's metrics. Cloning the handles is cheap (atomics behind `Arc`).
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Height of the best chain.
    pub height: Gauge,
    /// Blocks this node produced.
    pub blocks_produced: Counter,
    /// Blocks received from peers and accepted (gossip and sync).
    pub blocks_received: Counter,
    /// Blocks received that failed validation, by `reason` (the broken rule, see
    /// [`Metrics::block_rejected`]).
    pub blocks_rejected: Family<ReasonLabel, Counter>,
    /// Transactions accepted into the mempool.
    pub txs_accepted: Counter,
    /// Transactions refused by the mempool.
    pub txs_rejected: Counter,
    /// Connected peers.
    pub peers: Gauge,
    /// Fork switches.
    pub reorgs: Counter,
    /// Pending transactions.
    pub mempool_size: Gauge,
    /// Durable storage commits (each one fsync; the writer groups many changes per commit).
    pub storage_commits: Counter,
    /// Changes (admissions, block imports, peer and ban lists) committed to storage.
    pub storage_ops: Counter,
    /// 1 once a storage write failed: the node stopped (fail-stop), see `/health`.
    pub storage_failed: Gauge,
    /// P2P frame bytes by direction and message type.
    pub p2p_bytes: Family<TrafficLabels, Counter>,
    /// P2P messages by direction and message type.
    pub p2p_messages: Family<TrafficLabels, Counter>,
    /// Times a peer was not read because it was over a budget.
    pub p2p_throttled: Counter,
    /// Broadcasts dropped (a peer's send queue full) and announcements dropped (the node's
    /// event queue full), by `reason` (`peer_queue_full`, `event_queue_full`).
    pub p2p_dropped: Family<ReasonLabel, Counter>,
    /// Penalties by offence.
    pub p2p_penalties: Family<ReasonLabel, Counter>,
    /// Bans by the offence that caused them.
    pub p2p_bans: Family<ReasonLabel, Counter>,
    /// Bans in force (keys and addresses, automatic and operator).
    pub p2p_bans_active: Gauge,
    /// Failed handshakes by reason.
    pub p2p_handshakes_failed: Family<ReasonLabel, Counter>,
    /// Inbound connections refused at accept, by reason (`banned`, `handshake_limit`), and
    /// inbound peers evicted for a newcomer (`evicted`).
    pub p2p_refused: Family<ReasonLabel, Counter>,
    /// Compact blocks announced to this node, by `outcome` (see [`COMPACT_OUTCOMES`]).
    pub p2p_compact_blocks: Family<OutcomeLabel, Counter>,
    /// Transactions fetched with `get_block_txs` to complete compact blocks.
    pub p2p_compact_txs_fetched: Counter,
    /// The operator's metrics: build, process, tip age, slots, block flow, peers, sync.
    pub ops: crate::ops_metrics::OpsMetrics,
    // Validation pipeline and evidence (issue 9): `verifications ÷ distinct transactions` is
    // `pp_signature_verifications_total ÷ pp_transactions_admitted_total` under load.
    /// Equivocations detected (two blocks signed by one producer for one slot).
    pub equivocations: Counter,
    /// Signature verifications performed (the signature cache's counter, read at scrape time).
    pub signature_verifications: Counter,
}

impl Metrics {
    /// A fresh registry with every metric registered under the `pp` prefix.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("pp");
        let m = Metrics {
            height: Gauge::default(),
            blocks_produced: Counter::default(),
            blocks_received: Counter::default(),
            blocks_rejected: Family::default(),
            txs_accepted: Counter::default(),
            txs_rejected: Counter::default(),
            peers: Gauge::default(),
            reorgs: Counter::default(),
            mempool_size: Gauge::default(),
            storage_commits: Counter::default(),
            storage_ops: Counter::default(),
            storage_failed: Gauge::default(),
            p2p_bytes: Family::default(),
            p2p_messages: Family::default(),
            p2p_throttled: Counter::default(),
            p2p_dropped: Family::default(),
            p2p_penalties: Family::default(),
            p2p_bans: Family::default(),
            p2p_bans_active: Gauge::default(),
            p2p_handshakes_failed: Family::default(),
            p2p_refused: Family::default(),
            p2p_compact_blocks: Family::default(),
            p2p_compact_txs_fetched: Counter::default(),
            ops: crate::ops_metrics::OpsMetrics::new(),
            equivocations: Counter::default(),
            signature_verifications: Counter::default(),
            registry: Registry::default(),
        };
        registry.register("chain_height", "Height of the best chain", m.height.clone());
        registry.register(
            "blocks_produced",
            "Blocks produced by this node",
            m.blocks_produced.clone(),
        );
        registry.register(
            "blocks_received",
            "Blocks received from peers and accepted",
            m.blocks_received.clone(),
        );
        registry.register(
            "blocks_rejected",
            "Blocks received from peers that failed validation, by reason",
            m.blocks_rejected.clone(),
        );
        registry.register(
            "txs_accepted",
            "Transactions accepted into the mempool",
            m.txs_accepted.clone(),
        );
        registry.register(
            "txs_rejected",
            "Transactions refused by the mempool",
            m.txs_rejected.clone(),
        );
        registry.register("peers", "Connected peers", m.peers.clone());
        registry.register("reorgs", "Fork switches", m.reorgs.clone());
        registry.register(
            "mempool_size",
            "Pending transactions",
            m.mempool_size.clone(),
        );
        registry.register(
            "storage_commits",
            "Durable storage commits (one fsync each)",
            m.storage_commits.clone(),
        );
        registry.register(
            "storage_ops",
            "Changes committed to storage (many per commit)",
            m.storage_ops.clone(),
        );
        registry.register(
            "storage_failed",
            "1 once a storage write failed and the node stopped (fail-stop)",
            m.storage_failed.clone(),
        );
        registry.register(
            "p2p_bytes",
            "P2P frame bytes by direction and message type",
            m.p2p_bytes.clone(),
        );
        registry.register(
            "p2p_messages",
            "P2P messages by direction and message type",
            m.p2p_messages.clone(),
        );
        registry.register(
            "p2p_throttled",
            "Times a peer was not read because it was over its budget",
            m.p2p_throttled.clone(),
        );
        registry.register(
            "p2p_dropped",
            "P2P broadcasts and announcements dropped, by reason",
            m.p2p_dropped.clone(),
        );
        registry.register(
            "p2p_penalties",
            "Misbehaviour penalties by offence",
            m.p2p_penalties.clone(),
        );
        registry.register(
            "p2p_bans",
            "Bans by the offence that caused them",
            m.p2p_bans.clone(),
        );
        registry.register(
            "p2p_bans_active",
            "Bans in force",
            m.p2p_bans_active.clone(),
        );
        registry.register(
            "p2p_handshakes_failed",
            "Failed P2P handshakes by reason",
            m.p2p_handshakes_failed.clone(),
        );
        registry.register(
            "p2p_refused",
            "Inbound connections refused at accept or evicted, by reason",
            m.p2p_refused.clone(),
        );
        registry.register(
            "p2p_compact_blocks",
            "Compact blocks announced to this node, by outcome: rebuilt from its own \
             transactions, fetched (missing transactions asked for), full (every transaction \
             asked for), failed",
            m.p2p_compact_blocks.clone(),
        );
        registry.register(
            "p2p_compact_txs_fetched",
            "Transactions fetched with get_block_txs to complete compact blocks",
            m.p2p_compact_txs_fetched.clone(),
        );
        for outcome in COMPACT_OUTCOMES {
            let _ = m.p2p_compact_blocks.get_or_create(&OutcomeLabel {
                outcome: outcome.to_string(),
            });
        }
        m.ops.register(&mut registry);
        for reason in crate::ops_metrics::REJECTION_REASONS {
            let _ = m.blocks_rejected.get_or_create(&ReasonLabel {
                reason: reason.to_string(),
            });
        }
        // Validation pipeline and evidence (issue 9).
        registry.register(
            "equivocations",
            "Equivocations detected (one producer, two blocks, one slot); see GET /evidence",
            m.equivocations.clone(),
        );
        registry.register(
            "signature_verifications",
            "Ed25519 signature verifications performed (cache hits are not verifications)",
            m.signature_verifications.clone(),
        );
        // The same counter as `pp_txs_accepted_total`, under the name the pipeline's ratio uses.
        registry.register(
            "transactions_admitted",
            "Transactions admitted into the mempool",
            m.txs_accepted.clone(),
        );
        Metrics { registry, ..m }
    }

    /// Brings `pp_signature_verifications_total` up to the signature cache's count (called at
    /// scrape time; the counter only moves forward).
    pub fn observe_verifications(&self, total: u64) {
        let now = self.signature_verifications.get();
        if total > now {
            self.signature_verifications.inc_by(total - now);
        }
    }

    /// Bring the P2P counters up to the network's cumulative numbers (called at scrape time;
    /// counters only ever move forward).
    pub fn observe_net(&self, s: &pp_net::NetStatsSnapshot, bans_active: usize) {
        fn catch_up(c: &Counter, total: u64) {
            let now = c.get();
            if total > now {
                c.inc_by(total - now);
            }
        }
        let traffic = |family: &Family<TrafficLabels, Counter>, dir: &str, v: &[(&str, u64)]| {
            for (kind, n) in v {
                let labels = TrafficLabels {
                    direction: dir.to_string(),
                    r#type: (*kind).to_string(),
                };
                catch_up(&family.get_or_create(&labels), *n);
            }
        };
        traffic(&self.p2p_bytes, "in", &s.bytes_in);
        traffic(&self.p2p_bytes, "out", &s.bytes_out);
        traffic(&self.p2p_messages, "in", &s.messages_in);
        traffic(&self.p2p_messages, "out", &s.messages_out);
        let reasons = |family: &Family<ReasonLabel, Counter>, v: &[(&str, u64)]| {
            for (reason, n) in v {
                let label = ReasonLabel {
                    reason: (*reason).to_string(),
                };
                catch_up(&family.get_or_create(&label), *n);
            }
        };
        reasons(&self.p2p_penalties, &s.penalties);
        reasons(&self.p2p_bans, &s.bans);
        reasons(&self.p2p_handshakes_failed, &s.handshakes_failed);
        reasons(
            &self.p2p_dropped,
            &[
                ("peer_queue_full", s.dropped_broadcasts),
                ("event_queue_full", s.dropped_events),
            ],
        );
        reasons(
            &self.p2p_refused,
            &[
                ("banned", s.refused_banned),
                ("handshake_limit", s.refused_handshake_limit),
                ("evicted", s.evictions),
            ],
        );
        catch_up(&self.p2p_throttled, s.throttled);
        let outcomes = [
            s.compact_rebuilt,
            s.compact_fetched,
            s.compact_full,
            s.compact_failed,
        ];
        for (outcome, n) in COMPACT_OUTCOMES.iter().zip(outcomes) {
            let label = OutcomeLabel {
                outcome: (*outcome).to_string(),
            };
            catch_up(&self.p2p_compact_blocks.get_or_create(&label), n);
        }
        catch_up(&self.p2p_compact_txs_fetched, s.compact_txs_fetched);
        self.p2p_bans_active.set(gauge_value(bans_active));
    }

    /// Counts a block refused for `e`, labelled with the broken rule.
    pub fn block_rejected(&self, e: &pp_ledger::BlockError) {
        self.blocks_rejected
            .get_or_create(&crate::ops_metrics::reason_label(e))
            .inc();
    }

    /// The OpenMetrics text exposition (the node's metrics, then the process metrics).
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode_registry(&mut out, &self.registry);
        if let Some(process) = self.ops.process.registry() {
            let _ = encode_registry(&mut out, process);
        }
        let _ = encode_eof(&mut out);
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

/// Converts a count to a gauge value, saturating.
pub(crate) fn gauge_value(n: impl TryInto<i64>) -> i64 {
    n.try_into().unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_names_every_metric_with_its_value() {
        let m = Metrics::new();
        m.height.set(7);
        m.blocks_produced.inc();
        let text = m.encode();
        assert!(text.contains("pp_chain_height 7"), "{text}");
        assert!(text.contains("pp_blocks_produced_total 1"), "{text}");
        for name in [
            "pp_peers",
            "pp_reorgs_total",
            "pp_mempool_size",
            "pp_txs_accepted_total",
        ] {
            assert!(text.contains(name), "{name} missing in {text}");
        }
        assert!(text.ends_with("# EOF\n"));
    }

    #[test]
    fn compact_block_outcomes_follow_the_network_counters() {
        let m = Metrics::new();
        let text = m.encode();
        for outcome in COMPACT_OUTCOMES {
            let line = format!("pp_p2p_compact_blocks_total{{outcome=\"{outcome}\"}} 0");
            assert!(text.contains(&line), "{line} missing in {text}");
        }
        let s = pp_net::NetStatsSnapshot {
            compact_rebuilt: 5,
            compact_fetched: 2,
            compact_full: 1,
            compact_failed: 3,
            compact_txs_fetched: 40,
            ..Default::default()
        };
        m.observe_net(&s, 0);
        // A second scrape with the same numbers adds nothing.
        m.observe_net(&s, 0);
        let text = m.encode();
        for (outcome, n) in [("rebuilt", 5), ("fetched", 2), ("full", 1), ("failed", 3)] {
            let line = format!("pp_p2p_compact_blocks_total{{outcome=\"{outcome}\"}} {n}");
            assert!(text.contains(&line), "{line} missing in {text}");
        }
        assert!(
            text.contains("pp_p2p_compact_txs_fetched_total 40"),
            "{text}"
        );
    }
}
