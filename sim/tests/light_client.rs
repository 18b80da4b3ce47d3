//! A light client in a partition/heal run (pp-sim, issue 13).
//!
//! How the light client runs: a turmoil host `light` speaks the real pp-net protocol over the
//! simulation's transport (Noise handshake, `hello`, `get_headers` with its block locator, the
//! signed headers of wire protocol 4) to ONE full node, `node1`, and applies every answer to a
//! real `pp_light::HeaderChain` (the real `HeaderVerifier`: links, PoW, slot, producer
//! signature, leader eligibility; and its k-bounded fork choice). It does not run
//! `pp_light::LightClient`'s own sync task, which is tied to real TCP and the wall clock: the
//! host's loop is that task's loop (ask with the locator, apply, wait half a slot when nothing
//! is new) on the simulated transport. Stake snapshots come from `GenesisStakes`, exact here
//! because the load only transfers (nothing is ever bonded or unbonded).
//!
//! Balances: between steps the harness asks `node1` for the account proof at the light
//! client's verified tip, the same JSON `GET /proofs/accounts/{id}?block=HASH` serves, built
//! from the node's own chain and state tree by the same calls the HTTP handler makes (the sim
//! runs no HTTP server), and believes it only through `pp_light::proofs::check_account`
//! against the light client's own verified header.
//!
//! Two tests: a partition whose minority fork stays within k (the light client reports balances
//! during it, rolls back at the heal and converges), and one whose fork is deeper than k (the
//! minority's full nodes keep their fork, and so does the light client, given a majority node
//! as a second peer).
//!
//! Seeds: seed 0 by default (the CI run), `PP_SIM_SEEDS=N` sweeps seeds 0..N, `PP_SIM_SEED=n`
//! replays one (docs/testing.md, "Light client in a partition").

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use pp_ledger::{Encode, Hash, KeyPair, PublicKey};
use pp_light::proofs::check_account;
use pp_light::{Applied, GenesisStakes, HeaderChain, HeaderVerifier};
use pp_net::{NetConfig, Network};
use pp_sim::{assert_all_passed, node_name, run_seeds_or, Cluster, SimError, SimParams};
use pp_sim::{TurmoilTransport, P2P_PORT};
use serde_json::{json, Value};

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

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The two-node side holds a quarter of the stake: it forks off and is rolled back at the heal.
const STAKES: [u64; 5] = [50, 50, 100, 100, 100];
const MINORITY: [&str; 3] = ["node1", "node2", "light"];
const MAJORITY: [&str; 3] = ["node3", "node4", "node5"];

/// What the light host did with one `headers` answer (or why it could not ask).
#[derive(Debug, Clone)]
enum Event {
    Applied(Applied),
    Refused(String),
}

/// The light client's state, shared between its host and the harness (which reads it only
/// between steps).
#[derive(Default)]
struct Shared {
    chain: Option<HeaderChain>,
    events: Vec<Event>,
    /// Full nodes (host names) the host asks, in turn.
    peers: Vec<String>,
}

fn sim_now_ms() -> u64 {
    turmoil::since_epoch().map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Registers the light host (see the module docs): it asks each of `shared.peers` in turn for
/// the headers after its locator and applies them.
fn add_light(c: &mut Cluster, shared: Arc<Mutex<Shared>>) -> Result<(), SimError> {
    let genesis = c.genesis().clone();
    let verifier = HeaderVerifier::new(&genesis).map_err(|e| SimError::Setup(e.to_string()))?;
    lock(&shared).chain = Some(HeaderChain::in_memory(verifier));
    let poll = Duration::from_millis((genesis.slot_duration_ms / 2).max(50));
    let stakes = Arc::new(GenesisStakes::new(&genesis));
    let gh = genesis.hash();
    c.sim().host("light", move || {
        let (shared, stakes) = (shared.clone(), stakes.clone());
        async move {
            let mut config = NetConfig::new("light", gh, format!("0.0.0.0:{P2P_PORT}"));
            config.identity = KeyPair::from_seed(Hash::blake2b_parts(&[b"pp-sim/light"]).0);
            // Accepts no connections; it asks only `shared.peers`, but its dialer may connect
            // to nodes learned by peer exchange too: room for all five outbound.
            config.max_peers = 32;
            config.unix_time_ms = Some(sim_now_ms());
            config.advertised_port = Some(0);
            let (net, mut events) = Network::start(
                config,
                TurmoilTransport,
                Arc::new(pp_light::ServesNothing(gh)),
            )
            .await?;
            tokio::spawn(async move { while events.recv().await.is_some() {} });
            let mut turn = 0usize;
            loop {
                let peers = lock(&shared).peers.clone();
                let Some(name) = peers.get(turn % peers.len().max(1)).cloned() else {
                    tokio::time::sleep(poll).await;
                    continue;
                };
                turn += 1;
                let addr = format!("{}:{P2P_PORT}", turmoil::lookup(name.as_str()));
                let peer = match net.peers().iter().find(|p| p.addr.to_string() == addr) {
                    Some(p) => p.id,
                    None => match net.connect(&addr).await {
                        Ok(info) => info.id,
                        Err(e) => {
                            lock(&shared)
                                .events
                                .push(Event::Refused(format!("connect {name}: {e}")));
                            tokio::time::sleep(secs(1)).await;
                            continue;
                        }
                    },
                };
                let locator = lock(&shared).chain.as_ref().map(|c| c.locator());
                let headers = match net
                    .get_headers(peer, locator.unwrap_or_default(), 500)
                    .await
                {
                    Ok(h) => h,
                    Err(e) => {
                        lock(&shared)
                            .events
                            .push(Event::Refused(format!("get_headers {name}: {e}")));
                        net.disconnect(peer, "no answer");
                        tokio::time::sleep(secs(1)).await;
                        continue;
                    }
                };
                let now = sim_now_ms();
                // The lock is taken and released within this block, never across an await.
                let idle = {
                    let mut s = lock(&shared);
                    let applied = match s.chain.as_mut() {
                        Some(ch) => ch.apply(&headers, now, stakes.as_ref()),
                        None => Ok(Applied::Nothing),
                    };
                    let idle = matches!(applied, Ok(Applied::Nothing) | Err(_));
                    s.events.push(match applied {
                        Ok(a) => Event::Applied(a),
                        Err(e) => Event::Refused(format!("{name}: {e}")),
                    });
                    idle
                };
                if idle {
                    tokio::time::sleep(poll).await;
                }
            }
        }
    });
    Ok(())
}

/// `node`'s answer to `GET /proofs/accounts/{account}?block=asked` (pp-server's http_proofs:
/// the same checks and calls; `None` where it answers 404).
fn account_answer(c: &Cluster, node: &str, account: &PublicKey, asked: Hash) -> Option<Value> {
    c.with_server(node, |s| {
        s.with_chain(|chain| {
            if !chain.is_on_best_chain(&asked) {
                return None;
            }
            let index = chain.header_by_hash(&asked)?.index;
            let header = chain.header_at(index)?.clone();
            let tree = chain.state_tree();
            let (lo, hi) = tree.versions().ok().flatten()?;
            if !(lo..=hi).contains(&index) {
                return None;
            }
            let key = pp_ledger::state_tree::account_key(account);
            let root = tree.root(index).ok()?;
            let (value, proof) = tree.prove(index, &key).ok()?;
            Some(json!({
                "account": account,
                "key": key,
                "present": value.is_some(),
                "value": value.map(hex::encode),
                "proof": hex::encode(proof.to_bytes()),
                "state_root": root,
                "state_root_in_header": true,
                "block": { "index": index, "hash": asked, "header": header },
            }))
        })
        .flatten()
    })
    .flatten()
}

/// One balance the light client reported.
#[derive(Debug, Clone)]
struct Report {
    account: PublicKey,
    balance: u64,
    block: Hash,
    index: u64,
    /// The light client's tip index when it reported.
    tip: u64,
    /// The light client's best chain (hashes by index) when it reported.
    chain: Vec<Hash>,
}

fn light_tip(shared: &Mutex<Shared>) -> (u64, Hash) {
    let s = lock(shared);
    s.chain
        .as_ref()
        .map_or((0, Hash::ZERO), |c| (c.height(), c.tip().hash))
}

/// The light client's balance of `account` at its tip (or one of the three blocks below, as
/// `LightClient::account` asks), proven by `node`'s answer against its verified header.
/// `Ok(None)`: the node had no answer for any of them (it is behind the light client).
fn light_balance(
    c: &Cluster,
    shared: &Mutex<Shared>,
    node: &str,
    account: &PublicKey,
) -> Result<Option<Report>, SimError> {
    let s = lock(shared);
    let Some(ch) = s.chain.as_ref() else {
        return Ok(None);
    };
    let h = ch.height();
    for back in 0..4 {
        let Some(v) = h.checked_sub(back).and_then(|i| ch.at(i)) else {
            break;
        };
        let Some(answer) = account_answer(c, node, account, v.hash) else {
            continue;
        };
        let proven = check_account(ch, account, Some(v.hash), &answer)
            .map_err(|e| SimError::Expectation(format!("{node}'s proof refused: {e}")))?;
        // The same answer with the balance raised by one (a node lying about a balance, with
        // the real proof): never believed.
        if let Some(mut leaf) = proven.leaf.clone() {
            leaf.balance += 1;
            let mut lie = answer.clone();
            lie["value"] = json!(hex::encode(leaf.to_canonical_bytes()));
            let refused = check_account(ch, account, Some(v.hash), &lie);
            expect(refused.is_err(), || {
                format!("a balance raised by one was believed: {refused:?}")
            })?;
        }
        // (a): proven against a header on the light client's verified best chain, now.
        expect(
            ch.hash_at(proven.block.index) == Some(proven.block.hash),
            || {
                format!(
                    "balance proven against block {} off the verified chain",
                    proven.block.hash
                )
            },
        )?;
        let chain = (0..=h).filter_map(|i| ch.hash_at(i)).collect();
        return Ok(Some(Report {
            account: *account,
            balance: proven.leaf.map_or(0, |l| l.balance),
            block: proven.block.hash,
            index: proven.block.index,
            tip: h,
            chain,
        }));
    }
    Ok(None)
}

/// The best chain of `node` (hashes by index).
fn node_chain(c: &Cluster, node: &str) -> Vec<Hash> {
    c.with_server(node, |s| {
        (0..=s.height())
            .map_while(|i| s.block_at(i).map(|b| b.hash()))
            .collect()
    })
    .unwrap_or_default()
}

/// Accounts the load touches: the wallets (senders and recipients) and the stakeholders
/// (fees).
fn touched(c: &Cluster) -> Vec<PublicKey> {
    c.workload()
        .wallets
        .iter()
        .map(|w| w.key.public())
        .chain((0..STAKES.len()).map(|i| pp_server::dev_key(&node_name(i)).public()))
        .collect()
}

/// The light client's rollbacks (from its fork choice's answers) and refusals.
fn rollbacks(shared: &Mutex<Shared>) -> (Vec<u64>, Vec<String>) {
    let s = lock(shared);
    let mut back = Vec::new();
    let mut refused = Vec::new();
    for e in &s.events {
        match e {
            Event::Applied(Applied::Switched { rolled_back, .. }) => back.push(*rolled_back),
            Event::Refused(r) => refused.push(r.clone()),
            Event::Applied(_) => {}
        }
    }
    (back, refused)
}

fn params(seed: u64, k: u64) -> SimParams {
    let mut p = SimParams::new(seed);
    p.stakes = STAKES.to_vec();
    p.k = k;
    p
}

/// The scenario: one epoch together, two epochs in a 2|3 partition with the light client
/// following `node1` on the minority side and reporting every touched account's balance each
/// slot, then the heal (see the assertions (a)–(d) inline).
fn partition_heal(seed: u64) -> Result<String, SimError> {
    let p = params(seed, 50);
    let (k, epoch, slot) = (p.k, p.epoch(), p.slot());
    let mut c = Cluster::new(p)?;
    let shared = Arc::new(Mutex::new(Shared {
        peers: vec!["node1".into()],
        ..Shared::default()
    }));
    add_light(&mut c, shared.clone())?;
    c.set_load(true);
    c.run_for(epoch)?;
    c.partition(&MINORITY, &MAJORITY);
    let accounts = touched(&c);
    let mut reports = Vec::new();
    let slots = 2 * c.params().slots_per_epoch;
    for _ in 0..slots {
        c.run_for(slot)?;
        for a in &accounts {
            if let Some(r) = light_balance(&c, &shared, "node1", a)? {
                reports.push(r);
            }
        }
    }
    let fork = {
        let (a, b) = (node_chain(&c, "node1"), node_chain(&c, "node3"));
        a.iter().zip(&b).take_while(|(x, y)| x == y).count() as u64 - 1
    };
    let minority_height = c.height("node1").unwrap_or(0);
    expect(
        minority_height > fork && c.height("node3").unwrap_or(0) > minority_height,
        || {
            format!(
            "the minority should fork off and the majority grow longer: fork {fork}, node1 {minority_height}, node3 {:?}",
            c.height("node3")
        )
        },
    )?;
    let on_fork = reports.iter().filter(|r| r.index > fork).count();
    expect(on_fork > 0, || {
        "no balance reported from the minority's fork".into()
    })?;
    c.repair(&MINORITY, &MAJORITY);
    // (c): the full nodes agree and the light client's tip is theirs, within 300 s.
    let healed = c
        .run_until(secs(300), |c| {
            c.same_tip() && c.height("node1").is_some_and(|_| {
                light_tip(&shared).1 == c.with_server("node1", |s| s.tip_hash()).unwrap_or(Hash::ZERO)
            })
        })?
        .ok_or_else(|| {
            SimError::Expectation(format!(
                "no common tip with the light client within 300 s of the heal: light {:?}, node1 {:?}, node3 {:?}",
                light_tip(&shared).0,
                c.height("node1"),
                c.height("node3")
            ))
        })?;
    let converged = c.converge(secs(300))?;
    // Stepping stopped with every node agreeing; the light client catches up on the last blocks.
    let caught_up = c
        .run_until(secs(30), |c| {
            c.agreed()
                && light_tip(&shared).1
                    == c.with_server("node1", |s| s.tip_hash())
                        .unwrap_or(Hash::ZERO)
        })?
        .ok_or_else(|| SimError::Expectation("the light client lost the converged tip".into()))?;
    let final_chain = node_chain(&c, "node3");
    // (b): a reported balance from a block the final chain dropped was at most k below the
    // light client's tip when reported: its rollback never exceeded k.
    let mut rolled_reports = 0;
    for r in &reports {
        if final_chain.get(r.index as usize) == Some(&r.block) {
            continue;
        }
        rolled_reports += 1;
        let common = r
            .chain
            .iter()
            .zip(&final_chain)
            .take_while(|(x, y)| x == y)
            .count() as u64
            - 1;
        expect(r.tip - common <= k, || {
            format!(
                "balance of {} reported at block {} (index {}, light tip {}) from a chain the full nodes rolled back {} blocks, past k = {k}",
                r.account, r.block, r.index, r.tip, r.tip - common
            )
        })?;
    }
    expect(rolled_reports > 0, || {
        "no reported balance was from a block the heal rolled back: the scenario tested nothing"
            .into()
    })?;
    let (back, refused) = rollbacks(&shared);
    expect(back.iter().all(|&b| b <= k) && !back.is_empty(), || {
        format!("light client rollbacks {back:?} (k = {k})")
    })?;
    // (d): after convergence, its proven balances are the full nodes' ledger balances.
    let tip = light_tip(&shared);
    for a in &accounts {
        let r = light_balance(&c, &shared, "node1", a)?
            .ok_or_else(|| SimError::Expectation(format!("no proof for {a} at the tip")))?;
        expect(r.block == tip.1, || {
            format!("{a} proven at {} not at the tip", r.block)
        })?;
        for n in ["node1", "node3", "node5"] {
            let ledger = c.with_server(n, |s| s.balance(a).ok()).flatten();
            expect(ledger == Some(r.balance), || {
                format!(
                    "light client's proven balance of {a} is {}, {n}'s ledger says {ledger:?}",
                    r.balance
                )
            })?;
        }
    }
    let out = c.final_check()?;
    Ok(format!(
        "{out}; fork at {fork}, minority reached {minority_height}; {} balances reported ({on_fork} from the fork, {rolled_reports} later rolled back), light rollbacks {back:?}, {} refusals; light on the common tip {} ms after the heal (+{} ms converge, +{} ms catch-up)",
        reports.len(),
        refused.len(),
        healed.as_millis(),
        converged.as_millis(),
        caught_up.as_millis()
    ))
}

#[test]
fn light_client_on_the_minority_side_never_reports_past_k_and_converges_after_the_heal() {
    let name =
        "light_client_on_the_minority_side_never_reports_past_k_and_converges_after_the_heal";
    let r = run_seeds_or(name, 1, |s| partition_heal(s).map_err(|e| e.to_string()));
    assert_all_passed(name, &r);
}

/// The same partition with k = 3 and three epochs apart: the minority's fork grows deeper than
/// k, so after the heal its full nodes refuse the majority's longer chain and stay on their
/// own (pp_ledger's fork choice never rolls back more than k). The light client, given a
/// majority node as a second peer at the heal, must refuse it too (`ForkTooDeep`) and keep
/// following node1's chain, never rolling back past k.
fn deep_fork(seed: u64) -> Result<String, SimError> {
    let p = params(seed, 3);
    let (k, epoch) = (p.k, p.epoch());
    let mut c = Cluster::new(p)?;
    let shared = Arc::new(Mutex::new(Shared {
        peers: vec!["node1".into()],
        ..Shared::default()
    }));
    add_light(&mut c, shared.clone())?;
    c.set_load(true);
    c.run_for(epoch)?;
    c.partition(&MINORITY, &MAJORITY);
    c.run_for(epoch * 3)?;
    let (a, b) = (node_chain(&c, "node1"), node_chain(&c, "node3"));
    let fork = a.iter().zip(&b).take_while(|(x, y)| x == y).count() as u64 - 1;
    let depth = c.height("node1").unwrap_or(0) - fork;
    expect(depth > k && b.len() > a.len(), || {
        format!("the minority's fork should be deeper than k = {k} and shorter than the majority's: {depth} blocks, node1 {} node3 {}", a.len() - 1, b.len() - 1)
    })?;
    c.repair(&MINORITY, &MAJORITY);
    lock(&shared).peers = vec!["node1".into(), "node3".into()];
    c.run_for(epoch)?;
    // What the full nodes do: the minority keeps its fork (a switch would roll back > k).
    let (a, b) = (node_chain(&c, "node1"), node_chain(&c, "node3"));
    let kept = a
        .get(fork as usize + 1)
        .is_some_and(|h| Some(h) != b.get(fork as usize + 1));
    expect(kept, || {
        format!(
            "node1 left its fork {depth} blocks deep (k = {k}): node1 {} node3 {}",
            a.len() - 1,
            b.len() - 1
        )
    })?;
    // The light client refused the majority's chain as they did, and follows node1.
    let (back, refused) = rollbacks(&shared);
    expect(back.iter().all(|&r| r <= k), || {
        format!("the light client rolled back {back:?} blocks, past k = {k}")
    })?;
    let too_deep = refused
        .iter()
        .filter(|r| r.contains("deeper than k"))
        .count();
    expect(too_deep > 0, || {
        format!("no fork refused as deeper than k: {refused:?}")
    })?;
    let light = lock(&shared).chain.as_ref().map(|ch| {
        (0..=ch.height())
            .filter_map(|i| ch.hash_at(i))
            .collect::<Vec<_>>()
    });
    let light = light.unwrap_or_default();
    expect(
        a.starts_with(&light) && light.len() > fork as usize + 1,
        || {
            format!(
                "the light client (height {}) is not on node1's chain (height {})",
                light.len() - 1,
                a.len() - 1
            )
        },
    )?;
    Ok(format!(
        "fork at {fork}, {depth} blocks deep (k = {k}); node1 at {}, node3 at {}, light at {}; {too_deep} answers of node3 refused as too deep",
        a.len() - 1,
        b.len() - 1,
        light.len() - 1
    ))
}

#[test]
fn a_light_client_refuses_a_fork_deeper_than_k_as_the_full_nodes_do() {
    let name = "a_light_client_refuses_a_fork_deeper_than_k_as_the_full_nodes_do";
    let r = run_seeds_or(name, 1, |s| deep_fork(s).map_err(|e| e.to_string()));
    assert_all_passed(name, &r);
}
