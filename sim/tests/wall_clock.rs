//! pp-net's wall-clock timestamps (`PeerInfo::connected_at_ms`, `last_seen_ms`; the address
//! book's times and ban expiries come from the same source) follow the node's clock, which under
//! pp-sim is the simulated one: they lie between the simulation's epoch and its present, and two
//! runs of one seed read exactly the same values.

use std::time::Duration;

use pp_sim::{Cluster, SimParams, EPOCH_MS};

/// (node, peer, connected_at_ms, last_seen_ms) of every connection, after a few seconds.
fn timestamps(seed: u64) -> Vec<(String, String, u64, u64)> {
    let mut c = Cluster::new(SimParams::new(seed)).expect("cluster");
    c.run_for(Duration::from_secs(3)).expect("run");
    let now = c.now_ms();
    let mut out = Vec::new();
    for name in c.names() {
        let peers = c.with_server(&name, |s| s.peer_infos()).unwrap_or_default();
        for p in peers {
            // A tick of slack: a host's runtime may trail the simulation's clock by one step.
            assert!(
                EPOCH_MS <= p.connected_at_ms
                    && p.connected_at_ms <= p.last_seen_ms
                    && p.last_seen_ms <= now + 100,
                "{name} -> {}: connected at {}, last seen {}, simulated time {EPOCH_MS}..{now}",
                p.node_id,
                p.connected_at_ms,
                p.last_seen_ms
            );
            out.push((name.clone(), p.node_id, p.connected_at_ms, p.last_seen_ms));
        }
    }
    out.sort();
    out
}

#[test]
fn peer_timestamps_follow_the_simulated_clock_and_replay_identically() {
    for seed in [1, 7] {
        let first = timestamps(seed);
        assert!(
            first.len() >= 8,
            "seed {seed}: too few connections: {first:?}"
        );
        assert_eq!(
            first,
            timestamps(seed),
            "seed {seed}: timestamps differ between two runs"
        );
    }
}
