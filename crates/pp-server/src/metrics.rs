//! Prometheus metrics of one node (prometheus-client, OpenMetrics text at `GET /metrics`).
//!
//! Each [`Server`](crate::Server) owns its own [`Registry`], never a global one, so that several
//! nodes in one process (tests, simulations) keep separate numbers.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

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
    /// Blocks received that failed validation.
    pub blocks_rejected: Counter,
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
}

impl Metrics {
    /// A fresh registry with every metric registered under the `pp` prefix.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("pp");
        let m = Metrics {
            height: Gauge::default(),
            blocks_produced: Counter::default(),
            blocks_received: Counter::default(),
            blocks_rejected: Counter::default(),
            txs_accepted: Counter::default(),
            txs_rejected: Counter::default(),
            peers: Gauge::default(),
            reorgs: Counter::default(),
            mempool_size: Gauge::default(),
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
            "Blocks received from peers that failed validation",
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
        Metrics { registry, ..m }
    }

    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
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
}
