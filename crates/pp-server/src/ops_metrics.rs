//! The operator's metrics of a node: build, process, tip, slots, block flow, mempool, peers and
//! sync. They sit beside the older counters of [`crate::metrics`] in the same registry (prefix
//! `pp_`), except the process metrics, which carry the standard unprefixed `process_` names that
//! dashboards and alerts everywhere expect.
//!
//! Names follow the Prometheus conventions: base units (seconds, bytes), `_total` on counters
//! (added by the encoder), a `_info` gauge of 1 carrying the build's labels. The gauges that
//! describe the present (tip age, peers by direction, sync target, readiness, process figures) are
//! set at scrape time from their sources, see [`crate::observe`].

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::metrics::ReasonLabel;

/// The version of this build, as in `pp_build_info` and `/status`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Labels of `pp_build_info`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BuildLabels {
    /// The crate version of this build.
    pub version: String,
}

/// Labels of the per-direction peer gauge.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DirectionLabel {
    /// `inbound` or `outbound`.
    pub direction: String,
}

/// A gauge holding a float (seconds, ratios).
pub type FloatGauge = Gauge<f64, std::sync::atomic::AtomicU64>;
/// A counter holding a float (CPU seconds).
pub type FloatCounter = Counter<f64, std::sync::atomic::AtomicU64>;

/// The operator's metrics (cheap handles: atomics behind `Arc`).
#[derive(Debug)]
pub struct OpsMetrics {
    /// 1, labelled with the build's version.
    pub build_info: Family<BuildLabels, Gauge>,
    /// Seconds from the start of the tip's slot to now (scrape time).
    pub tip_age: FloatGauge,
    /// The slot length of this network, seconds (alerts compare the tip age with it).
    pub slot_duration: FloatGauge,
    /// Slots in which this node was the leader (as seen at its turn for the slot).
    pub slots_led: Counter,
    /// Led slots for which none of this node's blocks was imported (not caught up yet, mining
    /// ran out of the slot, the block lost to another, storage failure).
    pub slots_missed: Counter,
    /// Blocks received from a peer and announced on to the other peers.
    pub blocks_relayed: Counter,
    /// Time to validate and apply one block (stateless and stateful stages), seconds.
    pub block_validation: Histogram,
    /// From the start of a gossiped block's slot to its import here, seconds.
    pub block_propagation: Histogram,
    /// Encoded bytes of the pending transactions.
    pub mempool_bytes: Gauge,
    /// Connected peers by `direction`.
    pub peers_by_direction: Family<DirectionLabel, Gauge>,
    /// 1 when P2P is on.
    pub p2p_enabled: Gauge,
    /// The height the node is catching up to: the highest of its own and every connected
    /// peer's claimed tip.
    pub sync_target: Gauge,
    /// Own height divided by the sync target (1 when caught up).
    pub sync_progress: FloatGauge,
    /// 1 while a connected peer claims a chain more than a few blocks longer.
    pub syncing: Gauge,
    /// 1 when `/health` answers `ready`.
    pub ready: Gauge,
    /// The process metrics (unprefixed registry, Linux only).
    pub process: crate::process_metrics::ProcessMetrics,
}

impl OpsMetrics {
    /// Fresh metrics, not yet registered.
    pub fn new() -> OpsMetrics {
        OpsMetrics {
            build_info: Family::default(),
            tip_age: FloatGauge::default(),
            slot_duration: FloatGauge::default(),
            slots_led: Counter::default(),
            slots_missed: Counter::default(),
            blocks_relayed: Counter::default(),
            // 100 µs .. 3.3 s
            block_validation: Histogram::new(exponential_buckets(0.000_1, 2.0, 16)),
            // 5 ms .. 41 s
            block_propagation: Histogram::new(exponential_buckets(0.005, 2.0, 14)),
            mempool_bytes: Gauge::default(),
            peers_by_direction: Family::default(),
            p2p_enabled: Gauge::default(),
            sync_target: Gauge::default(),
            sync_progress: FloatGauge::default(),
            syncing: Gauge::default(),
            ready: Gauge::default(),
            process: crate::process_metrics::ProcessMetrics::new(),
        }
    }

    /// Registers every metric in `registry` (the node's, prefixed `pp`) and sets the constant
    /// ones.
    pub(crate) fn register(&self, registry: &mut Registry) {
        self.build_info
            .get_or_create(&BuildLabels {
                version: VERSION.to_string(),
            })
            .set(1);
        for d in ["inbound", "outbound"] {
            self.set_peers(d, 0);
        }
        registry.register(
            "build_info",
            "Build of this node (1, labelled with the version)",
            self.build_info.clone(),
        );
        registry.register(
            "tip_age_seconds",
            "Seconds from the start of the tip's slot to now",
            self.tip_age.clone(),
        );
        registry.register(
            "slot_duration_seconds",
            "Slot length of the network, seconds",
            self.slot_duration.clone(),
        );
        registry.register(
            "slots_led",
            "Slots in which this node was the leader",
            self.slots_led.clone(),
        );
        registry.register(
            "slots_missed",
            "Led slots for which no block of this node was imported",
            self.slots_missed.clone(),
        );
        registry.register(
            "blocks_relayed",
            "Blocks received from a peer and announced on",
            self.blocks_relayed.clone(),
        );
        registry.register(
            "block_validation_seconds",
            "Time to validate and apply one block",
            self.block_validation.clone(),
        );
        registry.register(
            "block_propagation_seconds",
            "From the start of a gossiped block's slot to its import here",
            self.block_propagation.clone(),
        );
        registry.register(
            "mempool_bytes",
            "Encoded bytes of the pending transactions",
            self.mempool_bytes.clone(),
        );
        registry.register(
            "peers_connected",
            "Connected peers by direction",
            self.peers_by_direction.clone(),
        );
        registry.register(
            "p2p_enabled",
            "1 when peer-to-peer is on",
            self.p2p_enabled.clone(),
        );
        registry.register(
            "sync_target_height",
            "Highest tip claimed by this node or a connected peer",
            self.sync_target.clone(),
        );
        registry.register(
            "sync_progress_ratio",
            "Own height divided by the sync target (1 when caught up)",
            self.sync_progress.clone(),
        );
        registry.register(
            "syncing",
            "1 while a connected peer claims a chain more than a few blocks longer",
            self.syncing.clone(),
        );
        registry.register("ready", "1 when /health answers ready", self.ready.clone());
    }

    /// Records one block's validation time.
    pub(crate) fn observe_validation(&self, took: Duration) {
        self.block_validation.observe(took.as_secs_f64());
    }

    /// Sets the gauge of peers in `direction` (`inbound` or `outbound`).
    pub(crate) fn set_peers(&self, direction: &str, n: usize) {
        self.peers_by_direction
            .get_or_create(&DirectionLabel {
                direction: direction.to_string(),
            })
            .set(crate::metrics::gauge_value(n));
    }
}

impl Default for OpsMetrics {
    fn default() -> Self {
        OpsMetrics::new()
    }
}

/// Every `reason` of `pp_blocks_rejected_total`, created at 0 at start so that the series exist
/// (and `rate()` works) before the first refusal.
pub const REJECTION_REASONS: [&str; 18] = [
    "bad_version",
    "bad_index",
    "slot_not_after_parent",
    "slot_in_future",
    "no_leader",
    "wrong_leader",
    "bad_signature",
    "wrong_difficulty",
    "bad_pow",
    "bad_tx_root",
    "too_large",
    "too_many_txs",
    "bad_transaction",
    "invalid_block",
    "bad_opcert",
    "opcert_not_yet_valid",
    "opcert_revoked",
    "opcert_counter_jump",
];

/// The `reason` label of a refused block: the broken rule in snake_case (one of
/// [`REJECTION_REASONS`]).
pub(crate) fn rejection_reason(e: &pp_ledger::BlockError) -> &'static str {
    use pp_ledger::BlockError as B;
    match e {
        B::BadVersion { .. } => "bad_version",
        B::BadIndex { .. } => "bad_index",
        B::SlotNotAfterParent { .. } => "slot_not_after_parent",
        B::SlotInFuture { .. } => "slot_in_future",
        B::NoLeader { .. } => "no_leader",
        B::WrongLeader { .. } => "wrong_leader",
        B::BadBlockSignature(_) | B::BadHotKeySignature { .. } => "bad_signature",
        B::BadOpCertSignature { .. } => "bad_opcert",
        B::OpCertNotYetValid { .. } => "opcert_not_yet_valid",
        B::OpCertRevoked { .. } => "opcert_revoked",
        B::OpCertCounterJump { .. } => "opcert_counter_jump",
        B::WrongDifficulty { .. } => "wrong_difficulty",
        B::BadPow { .. } => "bad_pow",
        B::BadTxRoot { .. } => "bad_tx_root",
        B::StateRoot { .. } => "bad_state_root",
        B::TooLarge { .. } => "too_large",
        B::TooManyTxs { .. } => "too_many_txs",
        B::Tx { .. } => "bad_transaction",
        #[allow(unreachable_patterns)]
        _ => "invalid_block",
    }
}

/// The label set of a refused block's counter.
pub(crate) fn reason_label(e: &pp_ledger::BlockError) -> ReasonLabel {
    ReasonLabel {
        reason: rejection_reason(e).to_string(),
    }
}
