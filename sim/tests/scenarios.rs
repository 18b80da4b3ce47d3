//! Whole-network scenarios: real pp-server nodes on turmoil under faults, each run over the
//! selected seeds (`PP_SIM_SEEDS`, default 20; `PP_SIM_SEED=<n>` replays one). Every step of
//! every run checks the invariants of `pp_sim::invariants`; every run ends with all nodes on one
//! tip with one ledger state, every majority-held block kept and every acknowledged transaction
//! included. See docs/testing.md.

use std::collections::BTreeSet;
use std::time::Duration;

use pp_ledger::Hash;
use pp_sim::{assert_all_passed, node_name, run_seeds, run_seeds_or, Cluster, SimError, SimParams};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn expect(ok: bool, what: impl FnOnce() -> String) -> Result<(), SimError> {
    if ok {
        Ok(())
    } else {
        Err(SimError::Expectation(what()))
    }
}

/// A scenario's own RNG (fault timing, victims), independent of turmoil's.
fn scenario_rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0xfa17)
}

/// Hashes of `name`'s best chain from index `from` to its tip.
fn chain_from(c: &Cluster, name: &str, from: u64) -> Vec<Hash> {
    // Through `Server::block_at` (memory or storage): a node keeps only the last k blocks of its
    // best chain in memory.
    c.with_server(name, |s| {
        let height = s.with_chain(|ch| ch.height()).unwrap_or(0);
        (from..=height)
            .map_while(|i| s.block_at(i).map(|b| b.hash()))
            .collect()
    })
    .unwrap_or_default()
}

/// The highest index at which `a` and `b` hold the same block.
fn fork_point(c: &Cluster, a: &str, b: &str) -> u64 {
    let ca = chain_from(c, a, 0);
    let cb = chain_from(c, b, 0);
    let mut i = ca.len().min(cb.len()).saturating_sub(1);
    while i > 0 && ca[i] != cb[i] {
        i -= 1;
    }
    i as u64
}

/// Transaction ids in `name`'s best-chain blocks above index `above`.
fn txs_above(c: &Cluster, name: &str, above: u64) -> BTreeSet<Hash> {
    c.with_server(name, |s| {
        let height = s.with_chain(|ch| ch.height()).unwrap_or(0);
        (above + 1..=height)
            .map_while(|i| s.block_at(i))
            .flat_map(|b| b.transactions.into_iter().map(|t| t.id()))
            .collect()
    })
    .unwrap_or_default()
}

fn all_included(c: &Cluster, txs: &BTreeSet<Hash>) -> bool {
    let final_txs = txs_above(c, "node1", 0);
    txs.iter().all(|t| final_txs.contains(t))
}

/// Runs a scenario over the selected seeds and fails the test if any seed failed. `name` is the
/// test's own name, so the replay command printed for a failing seed selects exactly it.
fn over_seeds(name: &str, f: impl Fn(u64) -> Result<String, SimError>) {
    let r = run_seeds(name, |s| f(s).map_err(|e| e.to_string()));
    assert_all_passed(name, &r);
}

/// [`over_seeds`] with `default` seeds when `PP_SIM_SEEDS` is unset, for a scenario that takes
/// several seconds per seed (the CI slice; docs/testing.md gives the longer runs).
fn over_seeds_or(name: &str, default: u64, f: impl Fn(u64) -> Result<String, SimError>) {
    let r = run_seeds_or(name, default, |s| f(s).map_err(|e| e.to_string()));
    assert_all_passed(name, &r);
}

/// Five nodes under steady transfers for four epochs, then quiet until they agree.
fn steady(seed: u64) -> Result<String, SimError> {
    let params = SimParams::new(seed);
    let epoch = params.epoch();
    let slots = 4 * params.slots_per_epoch;
    let mut c = Cluster::new(params)?;
    c.set_load(true);
    c.run_for(epoch * 4)?;
    // Slots with a leader: every slot in classic mode, about half in praos (f = 1/2).
    let led = c.led_slots();
    c.converge(secs(60))?;
    let out = c.final_check()?;
    // Every node is up: nearly every slot with a leader must have its block.
    expect(
        out.height + 3 >= led && out.txs >= slots as usize / 2,
        || format!("too little happened in {slots} slots ({led} with a leader): {out}"),
    )?;
    Ok(out.to_string())
}

#[test]
fn five_nodes_under_steady_transfers_agree_on_tip_state_and_transactions() {
    over_seeds(
        "five_nodes_under_steady_transfers_agree_on_tip_state_and_transactions",
        steady,
    );
}

/// Stakes of the partition scenario: the two-node side holds a quarter of the stake.
const PARTITION_STAKES: [u64; 5] = [50, 50, 100, 100, 100];
const MINORITY: [&str; 2] = ["node1", "node2"];
const MAJORITY: [&str; 3] = ["node3", "node4", "node5"];

/// A 2|3 partition lasting three epochs under load, then healed: both sides grow their own
/// chain; after the heal the minority rolls back to the majority chain and the transactions of
/// its rolled-back blocks come back from the mempool into the chain. Returns the heal-to-
/// convergence time with the summary.
fn partition(seed: u64) -> Result<(String, Duration, Duration), SimError> {
    let mut params = SimParams::new(seed);
    params.stakes = PARTITION_STAKES.to_vec();
    let epoch = params.epoch();
    let mut c = Cluster::new(params)?;
    c.set_load(true);
    c.run_for(epoch)?;
    c.partition(&MINORITY, &MAJORITY);
    c.run_for(epoch * 3)?;
    let fork = fork_point(&c, "node1", "node3");
    let minority_blocks = chain_from(&c, "node1", fork + 1);
    let majority_grew = c.height("node3").unwrap_or(0).saturating_sub(fork);
    let minority_txs = txs_above(&c, "node1", fork);
    expect(!minority_blocks.is_empty() && majority_grew > 0, || {
        format!(
            "both sides should have produced blocks: minority {}, majority {majority_grew}",
            minority_blocks.len()
        )
    })?;
    // Transactions only the minority's blocks hold: they must come back through the mempool.
    let majority_txs = txs_above(&c, "node3", 0);
    let returning: BTreeSet<Hash> = minority_txs.difference(&majority_txs).copied().collect();
    expect(!returning.is_empty(), || {
        "no transaction was included only on the minority side".into()
    })?;
    c.repair(&MINORITY, &MAJORITY);
    let one_tip = c
        .run_until(secs(300), Cluster::same_tip)?
        .ok_or_else(|| SimError::Expectation("no common tip within 300 s of the heal".into()))?;
    let took = one_tip + c.converge(secs(300))?;
    let final_chain = chain_from(&c, "node1", 0);
    expect(
        minority_blocks.iter().all(|h| !final_chain.contains(h)),
        || "a minority block survived on the final chain".into(),
    )?;
    expect(all_included(&c, &returning), || {
        "a transaction of a rolled-back minority block is not in the final chain".into()
    })?;
    let out = c.final_check()?;
    Ok((
        format!(
            "{out}; minority rolled back {} blocks, {} of their txs came back and were included; one tip {} ms and converged {} ms after the heal",
            minority_blocks.len(),
            returning.len(),
            one_tip.as_millis(),
            took.as_millis()
        ),
        one_tip,
        took,
    ))
}

#[test]
fn partition_2_3_for_three_epochs_heals_to_the_majority_chain() {
    let times = std::cell::RefCell::new((Vec::new(), Vec::new()));
    over_seeds(
        "partition_2_3_for_three_epochs_heals_to_the_majority_chain",
        |s| {
            let (summary, one_tip, took) = partition(s)?;
            let mut t = times.borrow_mut();
            t.0.push(one_tip.as_millis());
            t.1.push(took.as_millis());
            Ok(summary)
        },
    );
    let (mut tip, mut all) = times.into_inner();
    for (what, t) in [("one tip", &mut tip), ("converged", &mut all)] {
        t.sort_unstable();
        if let (Some(min), Some(max)) = (t.first(), t.last()) {
            eprintln!(
                "pp-sim partition: heal -> {what} over {} seeds: min {min} ms, median {} ms, max {max} ms",
                t.len(),
                t[t.len() / 2]
            );
        }
    }
}

/// Three crash/restart cycles of random nodes at random times under load (down for 1–40
/// slots), then a restart of a running node: each comes back with the chain it had acknowledged
/// (checked at the first look after the restart) and catches up.
fn bounce(seed: u64) -> Result<String, SimError> {
    let params = SimParams::new(seed);
    let slot = params.slot();
    let epoch = params.epoch();
    let mut rng = scenario_rng(seed);
    let mut c = Cluster::new(params)?;
    c.set_load(true);
    c.run_for(epoch)?;
    let mut victims = Vec::new();
    for _ in 0..3 {
        let victim = node_name(rng.random_range(0..5));
        c.run_for(
            slot * rng.random_range(0..10) + Duration::from_millis(rng.random_range(0..500)),
        )?;
        c.crash(&victim)?;
        c.run_for(slot * rng.random_range(1..=40))?;
        c.bounce(&victim)?;
        victims.push(victim);
    }
    let victim = node_name(rng.random_range(0..5));
    c.bounce(&victim)?;
    victims.push(victim);
    c.run_for(epoch)?;
    c.converge(secs(120))?;
    let out = c.final_check()?;
    Ok(format!("{out}; bounced {}", victims.join(",")))
}

#[test]
fn crashed_and_restarted_nodes_keep_their_chain_and_catch_up() {
    over_seeds(
        "crashed_and_restarted_nodes_keep_their_chain_and_catch_up",
        bounce,
    );
}

/// Rate at which a link fails (per message); a failed link drops segments until repaired, which
/// kills the TCP streams on it (turmoil does not retransmit), so pp-net must notice and redial.
const LINK_FAIL_RATE: f64 = 0.0005;

/// Six epochs under load with 5–250 ms latency on every link, loss bursts (a random link holds
/// its segments for 0.1–3 s, then delivers them late, as TCP retransmission would) about every
/// two slots, and random link failures; then the failures stop and the nodes must agree.
fn lossy(seed: u64) -> Result<String, SimError> {
    let mut params = SimParams::new(seed);
    params.min_latency_ms = 5;
    params.max_latency_ms = 250;
    params.fail_rate = LINK_FAIL_RATE;
    params.repair_rate = 0.05;
    // Held links cut a node off from a block for up to 3 s (6 slots); if it then leads the next
    // two slots, its two-block fork orphans the block a majority held as their tip, as the
    // longest-chain rule says it must (seed 97 before session 7; docs/testing.md). Tips do not
    // count towards majorities here; a block with a child still does.
    params.majority_counts_tips = false;
    let slot = params.slot();
    let end = params.epoch() * 6;
    let mut rng = scenario_rng(seed);
    let mut c = Cluster::new(params)?;
    c.set_load(true);
    let mut bursts = 0;
    while c.elapsed() < end {
        // Two distinct nodes.
        let ai = rng.random_range(0..5);
        let (a, b) = (node_name(ai), node_name((ai + rng.random_range(1..5)) % 5));
        c.sim().hold(a.as_str(), b.as_str());
        c.run_for(Duration::from_millis(rng.random_range(100..=3_000)))?;
        c.sim().release(a.as_str(), b.as_str());
        bursts += 1;
        c.run_for(slot * rng.random_range(0..4))?;
    }
    c.sim().set_fail_rate(0.0);
    c.converge(secs(180))?;
    let out = c.final_check()?;
    Ok(format!("{out}; {bursts} loss bursts"))
}

#[test]
fn latency_and_link_failures_do_not_break_agreement() {
    over_seeds("latency_and_link_failures_do_not_break_agreement", lossy);
}

/// The leader of the coming slot is cut off from every other node for one epoch (40 slots) and
/// keeps running: the others keep producing, it builds a fork of its own; back online it rolls
/// its fork back and follows the network.
fn leader_offline(seed: u64) -> Result<String, SimError> {
    let mut params = SimParams::new(seed);
    params.slots_per_epoch = 40;
    let epoch = params.epoch();
    let mut rng = scenario_rng(seed);
    let mut c = Cluster::new(params)?;
    c.set_load(true);
    c.run_for(epoch + Duration::from_millis(rng.random_range(0..epoch.as_millis() as u64)))?;
    // Who leads the next slot with a leader, by the chain's own rules (classic: the next slot;
    // praos: the first coming slot some stakeholder's VRF elects it in).
    let next_slot = c.current_slot() + 1;
    let leader = (next_slot..next_slot + 40)
        .find_map(|s| c.leader_names(s).into_iter().next())
        .ok_or_else(|| SimError::Expectation("no leader in the next 40 slots".into()))?;
    let names = c.names();
    let others: Vec<&str> = names
        .iter()
        .map(String::as_str)
        .filter(|n| *n != leader)
        .collect();
    let before = c.height(others[0]).unwrap_or(0);
    c.partition(&[leader.as_str()], &others);
    c.run_for(epoch)?;
    let during = c.height(others[0]).unwrap_or(0) - before;
    expect(during > 0, || {
        "the network stalled while the leader was offline".into()
    })?;
    c.repair(&[leader.as_str()], &others);
    let took = c.converge(secs(180))?;
    let out = c.final_check()?;
    Ok(format!(
        "{out}; {leader} offline for an epoch, {during} blocks made without it, rejoined in {} ms",
        took.as_millis()
    ))
}

#[test]
fn leader_offline_for_an_epoch_rejoins_the_network_chain() {
    over_seeds(
        "leader_offline_for_an_epoch_rejoins_the_network_chain",
        leader_offline,
    );
}

/// Five nodes make 1,000 blocks under load (100 ms slots), then a node with no stake and an
/// empty data dir joins, syncs the whole chain and follows the tip.
fn newcomer(seed: u64) -> Result<String, SimError> {
    let mut params = SimParams::new(seed);
    params.slot_ms = 100;
    params.max_latency_ms = 20;
    params.k = 100;
    let slot = params.slot();
    let mut c = Cluster::new(params)?;
    c.set_load(true);
    // Within 1,100 slots with a leader (1,100 slots in classic mode, about 2,200 in praos).
    let reached = c.run_until_height("node1", 1_000, 1_100)?;
    expect(reached.is_some(), || {
        format!(
            "1,000 blocks not reached in {} slots with a leader: height {:?}",
            c.led_slots(),
            c.height("node1")
        )
    })?;
    c.add_newcomer("newcomer")?;
    let synced = c
        .run_until(secs(60), |c| {
            c.height("newcomer").unwrap_or(0) >= c.height("node1").unwrap_or(u64::MAX)
        })?
        .ok_or_else(|| {
            SimError::Expectation(format!(
                "newcomer at {:?} did not catch up with {:?}",
                c.height("newcomer"),
                c.height("node1")
            ))
        })?;
    c.run_for(slot * 20)?;
    c.converge(secs(60))?;
    let out = c.final_check()?;
    Ok(format!(
        "{out}; newcomer synced in {} ms",
        synced.as_millis()
    ))
}

#[test]
fn newcomer_joining_after_1000_blocks_syncs_and_follows() {
    // About 6 s per seed: 8 seeds in CI; `PP_SIM_SEEDS=20` (or more) for the full run.
    over_seeds_or(
        "newcomer_joining_after_1000_blocks_syncs_and_follows",
        8,
        newcomer,
    );
}

/// Replaying a seed gives exactly the same run: same final tip, same counters, same simulated
/// time, so a failing seed printed by CI can be replayed and debugged.
#[test]
fn same_seed_replays_the_same_run() {
    for seed in [3, 11] {
        let first = lossy(seed).map_err(|e| e.to_string());
        let second = lossy(seed).map_err(|e| e.to_string());
        assert_eq!(first, second, "seed {seed} did not replay identically");
        let first = partition(seed).map(|r| r.0).map_err(|e| e.to_string());
        let second = partition(seed).map(|r| r.0).map_err(|e| e.to_string());
        assert_eq!(first, second, "seed {seed} did not replay identically");
    }
}

/// The durability check can fail: a node restarted without its database (as if its disk had
/// lost what it acknowledged) is reported, not silently resynced.
#[test]
fn restart_without_its_database_is_reported_as_lost_blocks() {
    let params = SimParams::new(5);
    let epoch = params.epoch();
    let mut c = Cluster::new(params).expect("cluster");
    c.set_load(true);
    c.run_for(epoch).expect("first epoch");
    c.crash("node2").expect("crash");
    std::fs::remove_file(c.data_dir("node2").join(pp_server::DB_FILE)).expect("remove db");
    c.bounce("node2").expect("bounce");
    let err = (0..100)
        .find_map(|_| c.step().err())
        .expect("the lost chain must be reported");
    assert!(
        matches!(err, SimError::LostOnRestart { ref node, .. } if node == "node2"),
        "unexpected error: {err}"
    );
}

/// Praos mode: five nodes (stakes 50/50/100/100/100, f = 1/2) under steady transfers for one
/// epoch, watched every tick (10 ms: slots with several leaders, and how long until every
/// node holds the same block for such a slot), then a 2|3 partition for an epoch under load,
/// healed: the minority (a quarter of the stake, so its chain grows more slowly) rolls back to
/// the majority chain, and everything ends on one tip with one state.
fn praos(seed: u64) -> Result<(String, pp_sim::LeaderStats), SimError> {
    let mut params = SimParams::new(seed);
    params.praos = true;
    params.stakes = PARTITION_STAKES.to_vec();
    let epoch = params.epoch();
    let mut c = Cluster::new(params)?;
    c.set_load(true);
    c.run_for(epoch)?;
    // The cluster watched every step (10 ms): leaders per slot, and for each slot with several
    // leaders whether the nodes held different blocks and when they came to hold the same one.
    let f = c.leader_stats();
    expect(f.led > 0 && f.led < f.slots, || {
        format!("f = 1/2 leaves some slots empty and fills others: {f:?}")
    })?;
    expect(f.unresolved == 0 || c.converge(secs(60)).is_ok(), || {
        "a multi-leader slot never resolved".into()
    })?;
    c.partition(&MINORITY, &MAJORITY);
    c.run_for(epoch)?;
    let fork = fork_point(&c, "node1", "node3");
    let minority_blocks = chain_from(&c, "node1", fork + 1);
    c.repair(&MINORITY, &MAJORITY);
    c.run_until(secs(300), Cluster::same_tip)?
        .ok_or_else(|| SimError::Expectation("no common tip within 300 s of the heal".into()))?;
    c.converge(secs(300))?;
    let final_chain = chain_from(&c, "node3", 0);
    let kept = minority_blocks
        .iter()
        .filter(|h| final_chain.contains(h))
        .count();
    let out = c.final_check()?;
    Ok((
        format!(
            "{out}; {} slots: {} led, {} with several leaders, {} forked (resolved in {:?} ms); partition: minority rolled back {} of {} blocks",
            f.slots,
            f.led,
            f.multi_leader,
            f.multi_block,
            f.resolve_ms,
            minority_blocks.len() - kept,
            minority_blocks.len()
        ),
        f,
    ))
}

#[test]
fn praos_mode_steady_transfers_and_a_partition_heal_agree() {
    let all = std::cell::RefCell::new(Vec::new());
    over_seeds(
        "praos_mode_steady_transfers_and_a_partition_heal_agree",
        |s| {
            let (summary, f) = praos(s)?;
            all.borrow_mut().push(f);
            Ok(summary)
        },
    );
    let all = all.into_inner();
    let slots: u64 = all.iter().map(|f| f.slots).sum();
    let led: u64 = all.iter().map(|f| f.led).sum();
    let multi: u64 = all.iter().map(|f| f.multi_leader).sum();
    let forked: u64 = all.iter().map(|f| f.multi_block).sum();
    let mut ms: Vec<u64> = all
        .iter()
        .flat_map(|f| f.resolve_ms.iter().copied())
        .collect();
    ms.sort_unstable();
    eprintln!(
        "pp-sim praos over {} seeds: {slots} slots, {led} led ({:.1} %), {multi} with several leaders ({:.2} %), {forked} of them forked; resolution ms min {:?} median {:?} max {:?}",
        all.len(),
        100.0 * led as f64 / slots.max(1) as f64,
        100.0 * multi as f64 / slots.max(1) as f64,
        ms.first(),
        ms.get(ms.len() / 2),
        ms.last()
    );
}
