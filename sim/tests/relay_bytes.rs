//! Bytes relayed per node per block under a transaction load (pp-sim), compact relay against
//! full-block relay (docs/protocol.md §14): the same seed runs twice, once with every node asking
//! for inventory and compact-block relay and once with none of them asking (every transaction
//! and block in full), and the nodes' own byte counters (pp-net's, the numbers behind
//! `pp_p2p_bytes_total`) are compared.
//!
//! Each run: `PP_SIM_RELAY_NODES` equal-stake nodes (default 4) in a full mesh, 2 s slots, every
//! link with its own one-way latency drawn from 20–200 ms; once every node is connected to every
//! other, transfers from 64 wallets at `PP_SIM_RELAY_TPS` a second (default 150, so a block
//! carries about 300) for `PP_SIM_RELAY_SECS` simulated seconds (default 10; in praos mode until
//! as many slots with a leader have passed), then the nodes must converge (one tip, empty
//! mempools, every acknowledged transfer in the chain). Bytes are counted
//! from the start of the load to convergence and divided by the nodes and by the blocks the chain
//! gained meanwhile.
//!
//! With `PP_SIM_RELAY_SEED_PEERS=s` the nodes are not a full mesh: each is configured with the
//! first `s` nodes' addresses only and finds the rest through peer exchange, as in
//! `tests/scale.rs`; the load starts once every node holds its outbound target (8) or is
//! connected to every other node.
//!
//! In CI: one seed (both modes, a few seconds). The distributions in docs/testing.md:
//!
//! ```sh
//! PP_SIM_SEEDS=20 PP_SIM_RELAY_NODES=6 PP_SIM_RELAY_SECS=20 \\
//!     cargo test -p pp-sim --test relay_bytes -- --nocapture
//! PP_SIM_SEEDS=20 PP_SIM_RELAY_NODES=100 PP_SIM_RELAY_SEED_PEERS=3 \\
//!     cargo test -p pp-sim --test relay_bytes -- --nocapture
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use pp_net::{Direction, NetStatsSnapshot};
use pp_sim::{run_seeds_or, Cluster, SimError, SimParams};

/// pp-net's default outbound target, awaited when the nodes find each other by peer exchange.
const OUTBOUND_TARGET: usize = 8;
/// Seeds when `PP_SIM_SEEDS` is unset (CI).
const DEFAULT_SEEDS: u64 = 1;
/// The messages that carry blocks as they are announced: in full, or compact plus the
/// transactions asked for.
const BLOCK_KINDS: [&str; 4] = ["new_block", "compact_block", "get_block_txs", "block_txs"];
/// The messages that carry transactions.
const TX_KINDS: [&str; 4] = ["new_tx", "inv_txs", "get_txs", "txs"];

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

fn count(v: &[(&'static str, u64)], kind: &str) -> u64 {
    v.iter().find(|(k, _)| *k == kind).map_or(0, |(_, n)| *n)
}

fn sum(v: &[(&'static str, u64)], kinds: &[&str]) -> u64 {
    kinds.iter().map(|k| count(v, k)).sum()
}

/// What one node sent during the measured window.
#[derive(Debug, Clone, Copy, Default)]
struct Sent {
    block: u64,
    tx: u64,
    total: u64,
}

/// One run (one seed, one mode).
#[derive(Debug, Clone, Default)]
struct Run {
    /// Blocks the chain gained during the window.
    blocks: u64,
    /// Transactions in those blocks.
    txs: u64,
    /// Per node.
    sent: Vec<Sent>,
    /// Messages sent by all nodes, by type.
    messages_out: BTreeMap<&'static str, u64>,
    /// Compact blocks by outcome, all nodes: rebuilt, fetched, full, failed.
    outcomes: [u64; 4],
    /// Transactions fetched to complete compact blocks, all nodes.
    txs_fetched: u64,
}

impl Run {
    fn per_node_block(&self, f: impl Fn(&Sent) -> u64) -> Vec<f64> {
        let b = self.blocks.max(1) as f64;
        self.sent.iter().map(|s| f(s) as f64 / b).collect()
    }

    /// Bytes per node per block, averaged over the nodes.
    fn mean(&self, f: impl Fn(&Sent) -> u64) -> f64 {
        let v = self.per_node_block(f);
        v.iter().sum::<f64>() / v.len().max(1) as f64
    }

    fn rebuilt_share(&self) -> f64 {
        let all: u64 = self.outcomes.iter().sum();
        self.outcomes[0] as f64 / all.max(1) as f64
    }
}

fn snapshots(c: &Cluster, names: &[String]) -> Vec<NetStatsSnapshot> {
    names
        .iter()
        .map(|n| c.with_server(n, |s| s.net_stats()).unwrap_or_default())
        .collect()
}

fn run(seed: u64, compact: bool) -> Result<Run, SimError> {
    let n = env_or("PP_SIM_RELAY_NODES", 4).max(2) as usize;
    let secs = env_or("PP_SIM_RELAY_SECS", 10);
    let tps = env_or("PP_SIM_RELAY_TPS", 150) as f64;
    let mut params = SimParams::new(seed);
    params.stakes = vec![100; n];
    params.slot_ms = 2_000;
    let slot_ms = params.slot_ms;
    params.link_latency_ms = Some((20, 200));
    params.wallets = 64;
    params.compact_relay = compact;
    let seed_peers = env_or("PP_SIM_RELAY_SEED_PEERS", 0) as usize;
    if seed_peers > 0 {
        params.seed_peers = Some(seed_peers);
    }
    let tick_s = params.tick_ms as f64 / 1000.0;
    let mut c = Cluster::new(params)?;
    let names = c.names();
    // Ready: connected to every other node, or (peer exchange) holding the outbound target.
    let meshed = |c: &Cluster| {
        names.iter().all(|m| {
            c.with_server(m, |s| {
                s.peer_count() + 1 >= n
                    || (seed_peers > 0
                        && s.peer_infos()
                            .iter()
                            .filter(|p| p.direction == Direction::Outbound)
                            .count()
                            >= OUTBOUND_TARGET)
            }) == Some(true)
        })
    };
    let settle = Duration::from_secs(if seed_peers > 0 { 600 } else { 60 });
    if c.run_until(settle, meshed)?.is_none() {
        return Err(SimError::Expectation(format!(
            "not connected after {settle:?}: peers {:?}",
            names
                .iter()
                .map(|m| c.with_server(m, |s| s.peer_count()))
                .collect::<Vec<_>>()
        )));
    }
    // A connection asks for compact relay as it opens; until the peer's `compact_relay` has
    // crossed the link (up to 200 ms), that peer is sent everything in full. One slot later every
    // link of the mesh is settled.
    c.run_for(Duration::from_secs(2))?;
    let start_height = names.iter().filter_map(|m| c.height(m)).max().unwrap_or(0);
    let before = snapshots(&c, &names);
    // A steady load, submitted through each wallet's home node between steps, for `secs`
    // seconds and at least as many slots with a leader as `secs` holds slots (the same: every
    // slot has one in classic mode; in praos, about half do, so the load runs about twice as
    // long and the window still holds about `secs / slot` blocks). Bounded: 64 times `secs`.
    let mut owed = 0.0;
    let steps = (secs as f64 / tick_s).ceil() as u64;
    let led_target = c.led_slots() + secs * 1000 / slot_ms;
    let mut step = 0;
    while step < steps || (c.led_slots() < led_target && step < steps * 64) {
        step += 1;
        c.step()?;
        owed += tps * tick_s;
        while owed >= 1.0 {
            c.submit_transfer();
            owed -= 1.0;
        }
    }
    c.converge(Duration::from_secs(60))?;
    let outcome = c.final_check()?;
    let after = snapshots(&c, &names);

    let first = &names[0];
    let blocks = outcome.height.saturating_sub(start_height);
    let txs = c
        .with_server(first, |s| {
            (start_height + 1..=outcome.height)
                .filter_map(|h| s.block_at(h))
                .map(|b| b.transactions.len() as u64)
                .sum()
        })
        .unwrap_or(0);
    let mut r = Run {
        blocks,
        txs,
        ..Run::default()
    };
    for (b, a) in before.iter().zip(&after) {
        let d = |kinds: &[&str]| sum(&a.bytes_out, kinds) - sum(&b.bytes_out, kinds);
        let all: Vec<&str> = a.bytes_out.iter().map(|(k, _)| *k).collect();
        r.sent.push(Sent {
            block: d(&BLOCK_KINDS),
            tx: d(&TX_KINDS),
            total: d(&all),
        });
        for (k, v) in &a.messages_out {
            *r.messages_out.entry(*k).or_default() += *v - count(&b.messages_out, k);
        }
        let outcomes = [
            a.compact_rebuilt - b.compact_rebuilt,
            a.compact_fetched - b.compact_fetched,
            a.compact_full - b.compact_full,
            a.compact_failed - b.compact_failed,
        ];
        for (t, o) in r.outcomes.iter_mut().zip(outcomes) {
            *t += o;
        }
        r.txs_fetched += a.compact_txs_fetched - b.compact_txs_fetched;
    }
    Ok(r)
}

/// The checks of one seed: both modes converged (inside [`run`]), under a real load, each mode
/// relaying only its own messages, and compact relay sending far fewer block bytes.
fn compare(seed: u64) -> Result<(Run, Run), String> {
    let compact = run(seed, true).map_err(|e| format!("compact: {e}"))?;
    let full = run(seed, false).map_err(|e| format!("full: {e}"))?;
    for (mode, r) in [("compact", &compact), ("full", &full)] {
        if r.blocks < 3 || r.txs < 100 * r.blocks {
            return Err(format!(
                "{mode}: {} blocks with {} transactions: not a load of hundreds per block",
                r.blocks, r.txs
            ));
        }
    }
    let out = |r: &Run, k: &str| r.messages_out.get(k).copied().unwrap_or(0);
    // In a full mesh every connection has asked for compact relay before the load starts, so
    // compact mode sends nothing in full. With peer exchange, connections keep opening during
    // the load (feelers, a replaced outbound peer), and a peer is sent blocks and transactions
    // in full until its `compact_relay` has crossed the link (the fallback): allowed there, for
    // at most one in 20 of the announcements.
    let churn = env_or("PP_SIM_RELAY_SEED_PEERS", 0) > 0;
    for (k, compact_kind) in [("new_block", "compact_block"), ("new_tx", "inv_txs")] {
        let (full_sent, compact_sent) = (out(&compact, k), out(&compact, compact_kind));
        if full_sent != 0 && (!churn || full_sent * 20 > compact_sent) {
            return Err(format!(
                "compact mode sent {full_sent} {k} (and {compact_sent} {compact_kind})"
            ));
        }
    }
    for k in ["compact_block", "inv_txs", "compact_relay"] {
        if out(&full, k) != 0 {
            return Err(format!("full mode sent {} {k}", out(&full, k)));
        }
    }
    if out(&compact, "compact_block") == 0 || out(&full, "new_block") == 0 {
        return Err("a mode announced no block".into());
    }
    let (cb, fb) = (compact.mean(|s| s.block), full.mean(|s| s.block));
    if cb * 4.0 >= fb {
        return Err(format!(
            "compact relay sent {cb:.0} block bytes per node per block, full relay {fb:.0}: \
             expected under a quarter"
        ));
    }
    let (ct, ft) = (compact.mean(|s| s.total), full.mean(|s| s.total));
    if ct >= ft {
        return Err(format!(
            "compact relay sent {ct:.0} bytes in all per node per block, full relay {ft:.0}"
        ));
    }
    Ok((compact, full))
}

/// min/median/max.
fn q(mut v: Vec<f64>) -> String {
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return "-".into();
    }
    format!(
        "{:.0} / {:.0} / {:.0}",
        v[0],
        v[v.len() / 2],
        v[v.len() - 1]
    )
}

#[test]
fn compact_relay_sends_a_fraction_of_the_block_bytes_of_full_relay_under_load() {
    let name = "compact_relay_sends_a_fraction_of_the_block_bytes_of_full_relay_under_load";
    let mut runs = Vec::new();
    let report = run_seeds_or(name, DEFAULT_SEEDS, |seed| {
        let (c, f) = compare(seed)?;
        let line = format!(
            "compact: {} blocks, {} txs, block {:.0} B, total {:.0} B per node per block, \
             rebuilt {}/{} ({} txs fetched, {} new_block sent); full: {} blocks, {} txs, block {:.0} B, total {:.0} B",
            c.blocks,
            c.txs,
            c.mean(|s| s.block),
            c.mean(|s| s.total),
            c.outcomes[0],
            c.outcomes.iter().sum::<u64>(),
            c.txs_fetched,
            c.messages_out.get("new_block").copied().unwrap_or(0),
            f.blocks,
            f.txs,
            f.mean(|s| s.block),
            f.mean(|s| s.total),
        );
        eprintln!("seed {seed}: {line}");
        runs.push((c, f));
        Ok(line)
    });
    if !runs.is_empty() {
        let all = |full: bool, f: fn(&Sent) -> u64| -> Vec<f64> {
            runs.iter()
                .flat_map(|(c, fr)| if full { fr } else { c }.per_node_block(f))
                .collect()
        };
        let txs_per_block: Vec<f64> = runs
            .iter()
            .flat_map(|(c, f)| [c, f])
            .map(|r| r.txs as f64 / r.blocks.max(1) as f64)
            .collect();
        eprintln!(
            "relay bytes over {} seeds, per node per block (min / median / max over nodes and \
             seeds), transactions per block {}:\n\
             \x20 block bytes sent: compact {}, full {}\n\
             \x20 transaction bytes sent: compact {}, full {}\n\
             \x20 all bytes sent: compact {}, full {}\n\
             \x20 compact blocks rebuilt without a round trip, per seed (%): {}\n\
             \x20 ratio full / compact of the mean block bytes per seed: {}",
            runs.len(),
            q(txs_per_block),
            q(all(false, |s| s.block)),
            q(all(true, |s| s.block)),
            q(all(false, |s| s.tx)),
            q(all(true, |s| s.tx)),
            q(all(false, |s| s.total)),
            q(all(true, |s| s.total)),
            q(runs
                .iter()
                .map(|(c, _)| 100.0 * c.rebuilt_share())
                .collect()),
            runs.iter()
                .map(|(c, f)| format!("{:.1}", f.mean(|s| s.block) / c.mean(|s| s.block).max(1.0)))
                .collect::<Vec<_>>()
                .join(", "),
        );
    }
    pp_sim::assert_all_passed(name, &report);
}
