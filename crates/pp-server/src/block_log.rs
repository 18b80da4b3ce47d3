//! The rate limit of per-block INFO log lines.
//!
//! A node following a 1 s slot network logs one line per block, as an operator expects. A node
//! that is syncing, or following a fast-slot devnet, would log hundreds of lines a second, which
//! drowns everything else. So:
//! * while the node is syncing, no block gets an INFO line of its own;
//! * otherwise at most one per-block INFO line per [`MIN_GAP_MS`];
//! * blocks that did not get their own line are counted, and at most every [`SUMMARY_EVERY_MS`]
//!   one INFO summary says how many were imported meanwhile (they are at DEBUG one by one).
//!
//! Fork switches always get their line: they are rare and an operator needs each one.

use std::sync::Mutex;

/// The shortest time between two per-block INFO lines while not syncing.
pub const MIN_GAP_MS: u64 = 250;
/// The longest time quiet blocks go without a summary line (once another block arrives).
pub const SUMMARY_EVERY_MS: u64 = 5_000;

/// What to log for an imported block (or a batch of them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Verdict {
    /// Log this block (or batch) at INFO on its own line; otherwise at DEBUG.
    pub(crate) own_line: bool,
    /// Also log a summary of `blocks` quiet blocks over `over_ms` milliseconds.
    pub(crate) summary: Option<Summary>,
}

/// Blocks imported without their own INFO line since the last summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Summary {
    pub(crate) blocks: u64,
    pub(crate) over_ms: u64,
}

#[derive(Debug, Default)]
struct State {
    last_line_ms: Option<u64>,
    quiet: u64,
    quiet_since_ms: u64,
}

/// The limiter (one per node; cheap: one uncontended lock per imported block or batch).
#[derive(Debug, Default)]
pub(crate) struct BlockLog {
    state: Mutex<State>,
}

impl BlockLog {
    /// Decides how to log `blocks` imported at `now_ms` (node clock), while `syncing` or not.
    pub(crate) fn imported(&self, blocks: u64, now_ms: u64, syncing: bool) -> Verdict {
        let mut s = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let gap_ok = s
            .last_line_ms
            .is_none_or(|t| now_ms.saturating_sub(t) >= MIN_GAP_MS);
        if !syncing && gap_ok {
            s.last_line_ms = Some(now_ms);
            return Verdict {
                own_line: true,
                summary: None,
            };
        }
        if s.quiet == 0 {
            s.quiet_since_ms = now_ms;
        }
        s.quiet = s.quiet.saturating_add(blocks);
        let over_ms = now_ms.saturating_sub(s.quiet_since_ms);
        let summary = (over_ms >= SUMMARY_EVERY_MS).then(|| {
            let sum = Summary {
                blocks: s.quiet,
                over_ms,
            };
            s.quiet = 0;
            sum
        });
        Verdict {
            own_line: false,
            summary,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The INFO lines (own lines plus summaries) for `n` blocks spread evenly over `ms`.
    fn info_lines(n: u64, ms: u64, syncing: bool) -> (u64, u64) {
        let log = BlockLog::default();
        let (mut lines, mut summarized) = (0, 0);
        for i in 0..n {
            let v = log.imported(1, i * ms / n, syncing);
            lines += u64::from(v.own_line);
            if let Some(s) = v.summary {
                lines += 1;
                summarized += s.blocks;
            }
        }
        (lines, summarized)
    }

    #[test]
    fn a_syncing_node_logs_a_summary_every_few_seconds_not_a_line_per_block() {
        // 369 blocks in 9 s (a node syncing a 10 ms-slot devnet) were 369 INFO lines.
        let (lines, summarized) = info_lines(369, 9_000, true);
        assert_eq!(lines, 1, "one summary at 5 s");
        assert!(summarized >= 200, "{summarized}");
        let (lines, _) = info_lines(10_000, 60_000, true);
        assert!(lines <= 60_000 / SUMMARY_EVERY_MS, "{lines}");
    }

    #[test]
    fn a_following_node_at_one_second_slots_logs_every_block() {
        let (lines, summarized) = info_lines(60, 60_000, false);
        assert_eq!((lines, summarized), (60, 0));
    }

    #[test]
    fn a_following_node_at_fast_slots_is_limited_and_summarized() {
        // 10 ms slots for 10 s: 1,000 blocks.
        let (lines, summarized) = info_lines(1_000, 10_000, false);
        let own = 10_000 / MIN_GAP_MS;
        assert!(lines <= own + 2, "{lines}");
        assert!(summarized > 0);
    }

    #[test]
    fn a_batch_counts_all_its_blocks() {
        let log = BlockLog::default();
        assert!(!log.imported(500, 0, true).own_line);
        let v = log.imported(500, SUMMARY_EVERY_MS, true);
        assert_eq!(
            v.summary,
            Some(Summary {
                blocks: 1_000,
                over_ms: SUMMARY_EVERY_MS
            })
        );
    }
}
