//! Sync against lying peers (pp-sim): a newcomer joins a network 73 blocks in, next to a
//! [`Liar`], and must reach the honest tip about as fast as without the liar, while the liar is
//! scored and rotated out of its sync. Each run is compared with the same seed without the liar.

use std::time::Duration;

use pp_sim::{Cluster, Liar, SimError, SimParams};

const HONEST: [&str; 5] = ["node1", "node2", "node3", "node4", "node5"];
/// Height the network reaches before the newcomer joins.
const JOIN_AT: u64 = 73;

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// Runs the network to [`JOIN_AT`], adds `liar` (if any) and a newcomer that dials it, and
/// returns how long the newcomer took to reach the honest tip, with the cluster.
fn join(seed: u64, liar: Option<Liar>) -> Result<(Duration, Cluster), SimError> {
    let mut params = SimParams::new(seed);
    params.slot_ms = 200;
    params.max_latency_ms = 20;
    let mut c = Cluster::new(params)?;
    c.set_load(true);
    // Within twice as many slots with a leader (every slot in classic mode, about half in praos).
    c.run_until_height("node1", JOIN_AT, JOIN_AT * 2)?
        .ok_or_else(|| SimError::Expectation("the network did not reach the join height".into()))?;
    let extra: &[&str] = if let Some(l) = liar {
        c.add_liar("liar", l);
        &["liar"]
    } else {
        &[]
    };
    c.add_newcomer_dialing("newcomer", extra)?;
    // The newcomer meets the liar first: the honest nodes are out of reach for its first
    // second (its dials to them are retried).
    c.partition(&["newcomer"], &HONEST);
    c.run_for(secs(1))?;
    c.repair(&["newcomer"], &HONEST);
    let took = c
        .run_until(secs(120), |c| {
            c.height("newcomer").unwrap_or(0) >= c.height("node1").unwrap_or(u64::MAX)
        })?
        .ok_or_else(|| {
            SimError::Expectation(format!(
                "newcomer at {:?} did not reach the honest tip {:?}",
                c.height("newcomer"),
                c.height("node1")
            ))
        })?;
    Ok((took + secs(1), c))
}

/// Penalties the newcomer scored for `offence` (from its metrics).
fn penalties(c: &Cluster, offence: &str) -> u64 {
    let text = c
        .with_server("newcomer", |s| s.metrics_text())
        .unwrap_or_default();
    text.lines()
        .filter(|l| l.starts_with("pp_p2p_penalties") && l.contains(&format!("\"{offence}\"")))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

/// The liar's run reaches the tip within twice the honest run plus one block deadline (8 s),
/// and the liar was scored for `offence`.
fn check_liar(seed: u64, liar: Liar, offence: &str) {
    let (honest, _) = join(seed, None).expect("run without the liar");
    let (lied, mut c) = join(seed, Some(liar)).expect("run with the liar");
    // Past every sync deadline (5 s for headers, 8 s for blocks), the liar has been judged.
    c.run_for(secs(10)).expect("run after the sync");
    eprintln!(
        "seed {seed}: newcomer synced in {} ms without the liar, {} ms with it",
        honest.as_millis(),
        lied.as_millis()
    );
    assert!(
        lied <= honest * 2 + secs(10),
        "seed {seed}: the liar slowed the sync from {honest:?} to {lied:?}"
    );
    assert!(
        penalties(&c, offence) >= 1,
        "seed {seed}: the liar was not scored for {offence}"
    );
}

#[test]
fn a_huge_claimed_tip_that_never_shows_headers_does_not_stall_a_newcomer() {
    for seed in [1, 2, 3] {
        check_liar(seed, Liar::HugeTip, "undeliverable_announcement");
    }
}

#[test]
fn a_peer_that_shows_headers_but_never_delivers_blocks_is_rotated_out() {
    for seed in [1, 2, 3] {
        // The honest chain's headers at the join height, taken from a run of the same seed.
        let headers = {
            let mut params = SimParams::new(seed);
            params.slot_ms = 200;
            params.max_latency_ms = 20;
            let mut c = Cluster::new(params).expect("cluster");
            c.set_load(true);
            c.run_until_height("node1", JOIN_AT, JOIN_AT * 2)
                .expect("run");
            // Through `Server::block_at` (memory or storage: only the last k blocks are in memory).
            c.with_server("node1", |s| {
                let height = s.with_chain(|ch| ch.height()).unwrap_or(0);
                (1..=height)
                    .map_while(|i| s.block_at(i).map(|b| pp_ledger::SignedHeader::from(&b)))
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default()
        };
        assert!(headers.len() as u64 >= JOIN_AT);
        check_liar(
            seed,
            Liar::Withholder(headers),
            "undeliverable_announcement",
        );
    }
}
