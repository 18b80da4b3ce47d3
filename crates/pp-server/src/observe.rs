//! What an operator sees of a running node: its readiness (served by `/health` and summed up in
//! `/status`), the metrics read at scrape time, and the counts of led, missed and relayed slots and
//! blocks.
//!
//! # Readiness
//!
//! A load balancer should send clients only to a node whose answers are current. A node is
//! **ready** when all of these hold (checked in this order; the first that fails is the reason):
//! 1. its storage works (otherwise every endpoint answers `503 storage_failed`, see `http.rs`);
//! 2. it is not syncing: no connected peer claims a chain more than [`SYNC_SLACK_BLOCKS`] blocks
//!    longer than its own (`syncing`);
//! 3. it has a peer, if it has any peer address to reach (`no_peers`): a node cut off from the
//!    network it was configured for serves a view nobody else shares, even if it is producing on
//!    it. A node with P2P off, or with P2P on and no address at all (a lone bootstrap node), is
//!    judged by its tip alone;
//! 4. its tip is young (`tip_stale`): the tip's slot started at most
//!    `max(`[`READY_TIP_AGE_SLOTS`]` slots, `[`READY_TIP_AGE_FLOOR_MS`]` ms)` ago, and on a
//!    praos network `max(ceil(10/f) slots, 2 s)` ([`max_tip_age_ms`]). The floor keeps a
//!    fast-slot devnet from flapping on a scheduler hiccup; ten slots make a false alarm from
//!    empty slots (leaders offline) unlikely while a third of the stake is away. In praos a slot
//!    is empty with probability `1 − f` even with every stakeholder online (1/2 on the devnet:
//!    ten empty slots in a row about once per 1,000 slots), so the limit is stretched to the same
//!    expected number of leader slots: `ceil(10/f)` slots (20 at f = 1/2, a run of 20 empty
//!    slots about once per million slots).
//!
//! Before genesis time the tip (the genesis block) has age 0.

use std::time::Duration;

use pp_ledger::Block;
use pp_net::Direction;

use crate::block_log::BlockLog;
use crate::metrics::gauge_value;
use crate::node::Core;

/// A connected peer claiming more than this many blocks beyond our height means we are syncing.
pub const SYNC_SLACK_BLOCKS: u64 = 2;
/// A ready node's tip is at most this many slots old (see the module docs)...
pub const READY_TIP_AGE_SLOTS: u64 = 10;
/// ...or this many milliseconds, whichever is longer.
pub const READY_TIP_AGE_FLOOR_MS: u64 = 2_000;

/// Why a node is not ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NotReady {
    /// A connected peer claims a chain more than [`SYNC_SLACK_BLOCKS`] longer.
    Syncing,
    /// No peer connected although the node has addresses to reach.
    NoPeers,
    /// The tip is older than the limit.
    TipStale,
}

impl NotReady {
    /// The `reason` of the `/health` answer.
    pub(crate) fn code(self) -> &'static str {
        match self {
            NotReady::Syncing => "syncing",
            NotReady::NoPeers => "no_peers",
            NotReady::TipStale => "tip_stale",
        }
    }
}

/// The node's state as `/health`, `/status` and the scrape-time gauges report it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Readiness {
    pub(crate) height: u64,
    /// Milliseconds since the start of the tip's slot (0 before it).
    pub(crate) tip_age_ms: u64,
    /// The tip age above which the node is not ready.
    pub(crate) max_tip_age_ms: u64,
    /// The highest tip a connected peer claims (`None` without peers).
    pub(crate) best_peer_height: Option<u64>,
    pub(crate) inbound: usize,
    pub(crate) outbound: usize,
    pub(crate) p2p: bool,
    /// Whether the node has peer addresses to reach (so it should have peers).
    pub(crate) peers_expected: bool,
    pub(crate) syncing: bool,
    pub(crate) not_ready: Option<NotReady>,
}

impl Readiness {
    /// Connected peers.
    pub(crate) fn peers(&self) -> usize {
        self.inbound + self.outbound
    }

    /// The height this node is catching up to: its own or the best peer's, whichever is higher.
    pub(crate) fn sync_target(&self) -> u64 {
        self.best_peer_height.unwrap_or(0).max(self.height)
    }
}

/// Whether a node at `height` is syncing given the best claim of its peers.
pub(crate) fn is_syncing(height: u64, best_peer_height: Option<u64>) -> bool {
    best_peer_height.is_some_and(|b| b > height.saturating_add(SYNC_SLACK_BLOCKS))
}

/// The readiness rule of the module docs, on plain values (storage is checked by the caller).
pub(crate) fn judge(
    height: u64,
    best_peer_height: Option<u64>,
    peers: usize,
    peers_expected: bool,
    tip_age_ms: u64,
    max_tip_age_ms: u64,
) -> Option<NotReady> {
    if is_syncing(height, best_peer_height) {
        Some(NotReady::Syncing)
    } else if peers == 0 && peers_expected {
        Some(NotReady::NoPeers)
    } else if tip_age_ms > max_tip_age_ms {
        Some(NotReady::TipStale)
    } else {
        None
    }
}

/// The operator-facing state a node keeps besides its metrics.
#[derive(Debug)]
pub(crate) struct Observe {
    /// When the node was built, node clock milliseconds (for `uptime_s`).
    pub(crate) started_ms: u64,
    /// The rate limit of per-block log lines.
    pub(crate) block_log: BlockLog,
}

impl Observe {
    pub(crate) fn new(started_ms: u64) -> Observe {
        Observe {
            started_ms,
            block_log: BlockLog::default(),
        }
    }
}

/// The tip age limit of [`judge`] for `genesis` (see the module docs): [`READY_TIP_AGE_SLOTS`]
/// slots, `ceil(READY_TIP_AGE_SLOTS / f)` on a praos network, and at least
/// [`READY_TIP_AGE_FLOOR_MS`].
pub(crate) fn max_tip_age_ms(genesis: &pp_ledger::Genesis) -> u64 {
    let slots = match genesis.active_slot_coeff {
        Some(f) if genesis.leader_mode == pp_ledger::LeaderMode::Praos && f.num > 0 => {
            let n = u128::from(READY_TIP_AGE_SLOTS) * u128::from(f.den);
            u64::try_from(n.div_ceil(u128::from(f.num))).unwrap_or(u64::MAX)
        }
        _ => READY_TIP_AGE_SLOTS,
    };
    genesis
        .slot_duration_ms
        .saturating_mul(slots)
        .max(READY_TIP_AGE_FLOOR_MS)
}

impl Core {
    /// The tip age limit of [`judge`] for this network.
    fn max_tip_age_ms(&self) -> u64 {
        max_tip_age_ms(self.genesis())
    }

    /// Milliseconds since the start of the tip's slot, and the height.
    pub(crate) fn tip_age_ms(&self) -> (u64, u64) {
        // The published tip, not the chain lock: health and status answer during an import.
        let tip = self.tip_snapshot();
        let (height, slot) = (tip.height, tip.slot);
        let age = self
            .now_ms()
            .saturating_sub(self.slots().slot_start_ms(slot));
        (age, height)
    }

    /// Seconds since this node was built.
    pub(crate) fn uptime_s(&self) -> u64 {
        self.now_ms().saturating_sub(self.observe().started_ms) / 1_000
    }

    /// The node's readiness now (see the module docs; storage is not part of it).
    pub(crate) fn readiness(&self) -> Readiness {
        let (tip_age_ms, height) = self.tip_age_ms();
        let net = self.net();
        let (peers, p2p, peers_expected) = (
            net.peers(),
            self.p2p_enabled(),
            !net.known_addrs().is_empty(),
        );
        let outbound = peers
            .iter()
            .filter(|p| p.direction == Direction::Outbound)
            .count();
        let best_peer_height = peers.iter().map(|p| p.tip_index).max();
        let max_tip_age_ms = self.max_tip_age_ms();
        let not_ready = judge(
            height,
            best_peer_height,
            peers.len(),
            peers_expected,
            tip_age_ms,
            max_tip_age_ms,
        );
        Readiness {
            height,
            tip_age_ms,
            max_tip_age_ms,
            best_peer_height,
            inbound: peers.len() - outbound,
            outbound,
            p2p,
            peers_expected,
            syncing: is_syncing(height, best_peer_height),
            not_ready,
        }
    }

    /// Sets the gauges that describe the present, just before a scrape is encoded.
    pub(crate) fn observe_scrape(&self) {
        let ops = &self.metrics().ops;
        let r = self.readiness();
        ops.tip_age.set(r.tip_age_ms as f64 / 1_000.0);
        ops.slot_duration
            .set(self.slots().slot_duration_ms() as f64 / 1_000.0);
        ops.set_peers("inbound", r.inbound);
        ops.set_peers("outbound", r.outbound);
        ops.p2p_enabled.set(i64::from(r.p2p));
        let target = r.sync_target();
        ops.sync_target.set(gauge_value(target));
        // Height 0 of target 0 is caught up, not 0 %.
        let progress = if target == 0 {
            1.0
        } else {
            r.height as f64 / target as f64
        };
        ops.sync_progress.set(progress);
        ops.syncing.set(i64::from(r.syncing));
        let ready = r.not_ready.is_none() && self.storage_failure().is_none();
        ops.ready.set(i64::from(ready));
        ops.mempool_bytes.set(gauge_value(self.mempool_bytes()));
        ops.process.refresh();
    }

    /// Whether `blocks` just imported get their own INFO line (see [`crate::block_log`]); logs the
    /// summary of the quiet ones when one is due.
    pub(crate) fn block_log_line(&self, blocks: u64) -> bool {
        let height = self.height();
        let best_peer = self.net().peers().iter().map(|p| p.tip_index).max();
        let syncing = is_syncing(height, best_peer);
        let v = self
            .observe()
            .block_log
            .imported(blocks, self.now_ms(), syncing);
        if let Some(s) = v.summary {
            let secs = s.over_ms as f64 / 1_000.0;
            tracing::info!(
                blocks = s.blocks,
                height,
                best_peer_height = best_peer,
                syncing,
                "imported {} blocks in {secs:.1} s ({:.0}/s), not logged one by one",
                s.blocks,
                s.blocks as f64 / secs.max(0.001),
            );
        }
        v.own_line
    }

    /// Starts the count of a slot turn: whether this node leads `slot` on its current tip
    /// (counted in `pp_slots_led_total` now, so that a scrape never sees more blocks produced than
    /// slots led).
    pub(crate) fn slot_started(&self, slot: u64) -> bool {
        let led = self.leads(slot);
        if led {
            self.metrics().ops.slots_led.inc();
        }
        led
    }

    /// Ends the count of a slot turn: a `led` slot for which no block of ours was `produced`
    /// (imported) is missed.
    pub(crate) fn slot_ended(&self, led: bool, produced: bool) {
        if led && !produced {
            self.metrics().ops.slots_missed.inc();
        }
    }

    /// Records a gossiped block's propagation time: from the start of its slot to now.
    pub(crate) fn observe_propagation(&self, block: &Block) {
        let start = self.slots().slot_start_ms(block.header.slot);
        let ms = self.now_ms().saturating_sub(start);
        self.metrics()
            .ops
            .block_propagation
            .observe(Duration::from_millis(ms).as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: u64 = 10_000;

    #[test]
    fn a_lone_producer_with_a_young_tip_is_ready() {
        assert_eq!(judge(5, None, 0, false, 900, MAX), None);
    }

    #[test]
    fn a_stale_tip_is_not_ready_even_alone() {
        assert_eq!(
            judge(5, None, 0, false, MAX + 1, MAX),
            Some(NotReady::TipStale)
        );
        assert_eq!(judge(5, None, 0, false, MAX, MAX), None);
    }

    #[test]
    fn a_node_with_addresses_but_no_peer_is_not_ready() {
        assert_eq!(judge(5, None, 0, true, 0, MAX), Some(NotReady::NoPeers));
        assert_eq!(judge(5, Some(5), 1, true, 0, MAX), None);
    }

    #[test]
    fn the_tip_age_limit_is_ten_slots_or_ten_leader_slots_in_praos_and_at_least_2_s() {
        let g = pp_ledger::Genesis::devnet("n", pp_ledger::PublicKey([4; 32]), 0);
        assert_eq!(g.slot_duration_ms, 1_000);
        assert_eq!(max_tip_age_ms(&g), 10_000);
        let half = pp_ledger::Ratio { num: 1, den: 2 };
        let mut p = g.clone().into_praos(half, &[pp_ledger::PublicKey([9; 32])]);
        assert_eq!(max_tip_age_ms(&p), 20_000);
        p.active_slot_coeff = Some(pp_ledger::Ratio { num: 3, den: 7 });
        assert_eq!(max_tip_age_ms(&p), 24_000, "ceil(70/3) = 24 slots");
        p.active_slot_coeff = Some(pp_ledger::Ratio { num: 9, den: 10 });
        assert_eq!(max_tip_age_ms(&p), 12_000, "ceil(100/9) = 12 slots");
        // The floor: 100 ms slots.
        p.slot_duration_ms = 100;
        p.active_slot_coeff = Some(half);
        assert_eq!(max_tip_age_ms(&p), 2_000);
        let mut fast = g;
        fast.slot_duration_ms = 250;
        assert_eq!(max_tip_age_ms(&fast), 2_500);
    }

    #[test]
    fn a_peer_more_than_the_slack_ahead_means_syncing() {
        let h = 100;
        assert_eq!(judge(h, Some(h + SYNC_SLACK_BLOCKS), 1, true, 0, MAX), None);
        assert_eq!(
            judge(h, Some(h + SYNC_SLACK_BLOCKS + 1), 1, true, 0, MAX),
            Some(NotReady::Syncing)
        );
        // Syncing is reported before a stale tip: it says why the tip is old.
        assert_eq!(
            judge(h, Some(h + 50), 1, true, MAX * 9, MAX),
            Some(NotReady::Syncing)
        );
    }
}
