//! Scale (pp-sim; ignored in CI, minutes per seed): `PP_SIM_SCALE_NODES` stakeholder nodes
//! (default 100), every one configured with the same 3 seed addresses only, every link with its
//! own one-way latency drawn from 20–200 ms. Measured per seed:
//!
//! * the time until every node holds its outbound target (8), or is connected to every other
//!   node (in a small network the seeds are dialed by everyone and have nobody left to dial);
//! * whether the graph of connections is connected, and its diameter (hops);
//! * for [`BLOCKS`] consecutive new blocks, the time from the first node holding it to 95 % of
//!   the nodes holding it.
//!
//! ```sh
//! PP_SIM_SEEDS=20 PP_SIM_SCALE_NODES=100 cargo test -p pp-sim --test scale -- --ignored --nocapture
//! ```

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use pp_net::Direction;
use pp_sim::{run_seeds_or, Cluster, SimError, SimParams};

/// The outbound target of every node (pp-net's default).
const TARGET: usize = 8;
/// Blocks whose spread is timed per seed.
const BLOCKS: usize = 5;
/// Seeds when `PP_SIM_SEEDS` is unset.
const DEFAULT_SEEDS: u64 = 3;

fn nodes() -> usize {
    std::env::var("PP_SIM_SCALE_NODES")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(100)
}

/// Outbound peers of every node, counted as [`TARGET`] for a node connected to every other node
/// (one connection per pair: in a network of a few dozen, the seeds are dialed by everyone and
/// have nobody left to dial).
fn outbound_counts(c: &Cluster, names: &[String]) -> Vec<usize> {
    names
        .iter()
        .map(|n| {
            c.with_server(n, |s| {
                let peers = s.peer_infos();
                let mut distinct: Vec<&str> = peers.iter().map(|p| p.node_id.as_str()).collect();
                distinct.sort_unstable();
                distinct.dedup();
                let out = peers
                    .iter()
                    .filter(|p| p.direction == Direction::Outbound)
                    .count();
                if distinct.len() + 1 >= names.len() {
                    TARGET.max(out)
                } else {
                    out
                }
            })
            .unwrap_or(0)
        })
        .collect()
}

/// The undirected graph of connections, by node index.
fn graph(c: &Cluster, names: &[String]) -> Vec<Vec<usize>> {
    let index: BTreeMap<&str, usize> = names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.as_str(), i))
        .collect();
    let mut adj = vec![Vec::new(); names.len()];
    for (i, n) in names.iter().enumerate() {
        let peers = c.with_server(n, |s| s.peer_infos()).unwrap_or_default();
        for p in peers {
            if let Some(&j) = index.get(p.node_id.as_str()) {
                if j != i {
                    adj[i].push(j);
                    adj[j].push(i);
                }
            }
        }
    }
    for a in &mut adj {
        a.sort_unstable();
        a.dedup();
    }
    adj
}

/// (connected, diameter in hops).
fn diameter(adj: &[Vec<usize>]) -> (bool, usize) {
    let mut diam = 0;
    for start in 0..adj.len() {
        let mut dist = vec![usize::MAX; adj.len()];
        dist[start] = 0;
        let mut q = VecDeque::from([start]);
        while let Some(u) = q.pop_front() {
            for &v in &adj[u] {
                if dist[v] == usize::MAX {
                    dist[v] = dist[u] + 1;
                    q.push_back(v);
                }
            }
        }
        if dist.contains(&usize::MAX) {
            return (false, usize::MAX);
        }
        diam = diam.max(dist.into_iter().max().unwrap_or(0));
    }
    (true, diam)
}

/// What one seed measured.
#[derive(Debug, Clone)]
struct Scale {
    to_target: Duration,
    diameter: usize,
    /// Time from the first holder to 95 % of the nodes, per block that got there.
    spread: Vec<Duration>,
    /// Blocks that never reached 95 % (orphaned by a competing block).
    lost: usize,
}

fn scale(seed: u64, n: usize) -> Result<Scale, SimError> {
    let mut params = SimParams::new(seed);
    params.stakes = vec![100; n];
    params.slot_ms = 2_000;
    params.seed_peers = Some(3);
    params.link_latency_ms = Some((20, 200));
    params.wallets = 1;
    let mut c = Cluster::new(params)?;
    let names = c.names();
    let step = Duration::from_millis(100);
    let mut waited = Duration::ZERO;
    let limit = Duration::from_secs(600);
    while outbound_counts(&c, &names).iter().any(|&o| o < TARGET) {
        if waited >= limit {
            let counts = outbound_counts(&c, &names);
            let short: Vec<String> = names
                .iter()
                .zip(&counts)
                .filter(|(_, &o)| o < TARGET)
                .map(|(m, o)| {
                    let peers = c.with_server(m, |s| s.peer_count()).unwrap_or(0);
                    format!("{m} ({o} outbound, {peers} peers)")
                })
                .collect();
            return Err(SimError::Expectation(format!(
                "{} of {n} nodes below the outbound target after {limit:?}: {}",
                short.len(),
                short.join(", ")
            )));
        }
        c.run_for(step)?;
        waited += step;
    }
    let to_target = waited;
    let (connected, diameter) = diameter(&graph(&c, &names));
    if !connected {
        return Err(SimError::Expectation(
            "the graph of connections is not connected".into(),
        ));
    }
    let need = (n * 95).div_ceil(100);
    let mut spread = Vec::new();
    let mut lost = 0;
    for _ in 0..BLOCKS {
        let heights =
            |c: &Cluster| -> Vec<u64> { names.iter().map(|m| c.height(m).unwrap_or(0)).collect() };
        let top = heights(&c).into_iter().max().unwrap_or(0);
        // The next block: the first node to hold a block above `top`.
        let mut block = None;
        c.run_until(Duration::from_secs(120), |c| {
            block = names.iter().find_map(|m| {
                c.with_server(m, |s| s.block_at(top + 1).map(|b| b.hash()))
                    .flatten()
            });
            block.is_some()
        })?;
        let Some(hash) = block else {
            return Err(SimError::Expectation(format!(
                "no block above {top} in 120 s"
            )));
        };
        let holders = |c: &Cluster| {
            names
                .iter()
                .filter(|m| {
                    c.with_server(m, |s| s.block_at(top + 1).map(|b| b.hash()))
                        .flatten()
                        == Some(hash)
                })
                .count()
        };
        match c.run_until(Duration::from_secs(20), |c| holders(c) >= need)? {
            Some(t) => spread.push(t),
            None => lost += 1,
        }
    }
    Ok(Scale {
        to_target,
        diameter,
        spread,
        lost,
    })
}

fn q(mut v: Vec<f64>) -> String {
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return "-".into();
    }
    format!("{:.2}/{:.2}/{:.2}", v[0], v[v.len() / 2], v[v.len() - 1])
}

#[test]
#[ignore = "scale run, minutes per seed: see docs/testing.md"]
fn a_network_started_from_three_seeds_fills_its_outbound_and_spreads_blocks() {
    let name = "a_network_started_from_three_seeds_fills_its_outbound_and_spreads_blocks";
    let n = nodes();
    let mut runs = Vec::new();
    let report = run_seeds_or(name, DEFAULT_SEEDS, |seed| {
        let t = std::time::Instant::now();
        let r = scale(seed, n).map_err(|e| e.to_string())?;
        let line = format!(
            "{n} nodes: outbound target for all after {:.1} s, diameter {}, 95 % spread {:?} ms, {} lost, {:.0} s wall",
            r.to_target.as_secs_f64(),
            r.diameter,
            r.spread.iter().map(|d| d.as_millis()).collect::<Vec<_>>(),
            r.lost,
            t.elapsed().as_secs_f64()
        );
        eprintln!("seed {seed}: {line}");
        runs.push(r);
        Ok(line)
    });
    if !runs.is_empty() {
        eprintln!(
            "scale, {n} nodes over {} seeds (min/median/max): time to every outbound target {} s; \
             diameter {}; time to 95 % of nodes per block {} s; blocks that never reached 95 %: {}",
            runs.len(),
            q(runs.iter().map(|r| r.to_target.as_secs_f64()).collect()),
            q(runs.iter().map(|r| r.diameter as f64).collect()),
            q(runs
                .iter()
                .flat_map(|r| r.spread.iter().map(|d| d.as_secs_f64()))
                .collect()),
            runs.iter().map(|r| r.lost).sum::<usize>(),
        );
    }
    pp_sim::assert_all_passed(name, &report);
}
