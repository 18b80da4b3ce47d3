//! Process-level chaos: five real `ppd` processes on loopback take a load of transfers over HTTP
//! while nodes are SIGKILLed and restarted at random moments. The schedule (who is killed, when,
//! for how long, which sender pays whom through which node) comes from one seed:
//! `PP_CHAOS_SEED=<u64>` replays it (OS timing is not replayed, the decisions are); without it a
//! fresh seed is drawn. The seed is printed at the start and again if the test fails.
//!
//! At every restart, as soon as the node answers HTTP, every transaction it had acknowledged with
//! `202` must be known to it from its own disk (pending in its journal, or included in its
//! chain), whether or not its relay reached anyone. Half of the kills come right on a `202`.
//!
//! What must hold at the end:
//! - every transaction some node acknowledged with `202` is `included`, in the same block, on
//!   every node. No acknowledged transaction may be lost as a "conflict": the client signs
//!   exactly one transaction per (sender, nonce) — a retry re-sends the identical bytes — so no
//!   two different transactions ever compete for a nonce, and the set of allowed conflicts is
//!   empty. The test checks that too: each sender's on-chain nonce equals the number of its
//!   transactions that landed, and the recipients' balances equal the sums the client sent;
//! - every node converges on the same block at a common height above the load's end;
//! - no data dir is corrupted: after a clean stop (SIGTERM) each database opens, its best chain
//!   is complete, decodes, links block to block and matches what the node served; restarted once
//!   more, each node loads exactly that chain from disk and the cluster makes progress again.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pp_integration_tests::{
    block_hash, block_hashes, get_json, height, http, status, wait_all_up, wait_common_block,
    wait_for, wait_height, Testnet,
};
use pp_ledger::{Hash, KeyPair, PublicKey, Transaction};
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
use serde_json::Value;
use tokio::sync::Mutex;

/// Nodes in the cluster.
const NODES: usize = 5;
/// Slot length: short, so a minute holds a few hundred slots.
const SLOT_MS: &str = "250";
/// How long transfers are submitted while nodes are killed and restarted.
const LOAD: Duration = Duration::from_secs(40);
/// Pause between two submissions of the load generator.
const SUBMIT_EVERY: Duration = Duration::from_millis(60);
/// Accounts that only receive (so their balances are exactly what the client sent them).
const RECIPIENTS: u8 = 3;
/// Most nodes down at the same moment (a minority of five).
const MAX_DOWN: usize = 2;
/// Bound of every "wait until" of the test.
const WAIT: Duration = Duration::from_secs(60);
/// Bound of the whole test.
const TOTAL: Duration = Duration::from_secs(210);
const POLL: Duration = Duration::from_millis(100);

/// Prints the seed again when the test fails, so a failure in CI can be replayed.
struct SeedReport(u64);

impl Drop for SeedReport {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "chaos test FAILED with seed {0}; replay with PP_CHAOS_SEED={0} cargo test -p \
                 pp-integration-tests --test chaos",
                self.0
            );
        }
    }
}

fn seed() -> u64 {
    match std::env::var("PP_CHAOS_SEED") {
        Ok(s) => s
            .trim()
            .parse()
            .unwrap_or_else(|e| panic!("PP_CHAOS_SEED={s:?} is not a u64: {e}")),
        Err(_) => rand::random(),
    }
}

/// One scheduled fault: SIGKILL `node` at `at` (from the start of the load), restart it `down`
/// later; with `submit_first`, first submit a transfer to it and kill it right after the `202`,
/// so the acknowledged transaction's only certain copy is that node's journal; with `flap`, the
/// restart is killed again after that long (while the node opens its database, replays its
/// chain or syncs) and restarted once more.
#[derive(Debug, Clone, Copy)]
struct Fault {
    at: Duration,
    node: usize,
    down: Duration,
    submit_first: bool,
    flap: Option<Duration>,
}

/// The seeded fault schedule: a kill every 1.5–4.5 s, each node down 1–6 s, never more than
/// [`MAX_DOWN`] down at once, everyone back up before the load ends; a third of the restarts
/// are killed again within 0–600 ms. (The flaps are drawn from `flap_rng`, so adding them left
/// the schedules of earlier seeds unchanged.)
fn schedule(rng: &mut StdRng, flap_rng: &mut StdRng) -> Vec<Fault> {
    let mut faults: Vec<Fault> = Vec::new();
    let mut t = Duration::from_millis(rng.random_range(2_000..4_000));
    let last = LOAD.saturating_sub(Duration::from_secs(3));
    while t < last {
        let down_now = |n: usize| {
            faults
                .iter()
                .any(|f| f.node == n && f.at <= t && t < f.at + f.down)
        };
        let up: Vec<usize> = (0..NODES).filter(|&n| !down_now(n)).collect();
        if NODES - up.len() < MAX_DOWN {
            let node = up[rng.random_range(0..up.len())];
            let down = Duration::from_millis(rng.random_range(1_000..6_000)).min(last - t);
            faults.push(Fault {
                at: t,
                node,
                down,
                submit_first: rng.random_bool(0.5),
                flap: flap_rng
                    .random_bool(1.0 / 3.0)
                    .then(|| Duration::from_millis(flap_rng.random_range(0..600))),
            });
        }
        t += Duration::from_millis(rng.random_range(1_500..4_500));
    }
    faults
}

/// The transfer a sender signs for `nonce`: a pure function of (sender, nonce), so a retry after
/// an unknown outcome re-sends the very same transaction (same id) and never a conflicting one.
fn transfer_for(
    key: &KeyPair,
    sender: usize,
    nonce: u64,
    recipients: &[PublicKey],
    genesis: &Hash,
) -> Transaction {
    let to = recipients[(sender + nonce as usize) % recipients.len()];
    Transaction::transfer(key, to, 1 + nonce % 5, 1, nonce, genesis)
}

/// A sender's client-side state.
struct Sender {
    key: KeyPair,
    account: String,
    /// The nonce of the next transaction to sign: all below are acknowledged or known to have
    /// landed.
    next: u64,
    /// Whether a POST of the transaction for `next` got no answer (it may have been accepted).
    unknown_outcome: bool,
}

/// An acknowledged (or known-landed) transaction.
#[derive(Debug, Clone)]
struct Acked {
    sender: usize,
    nonce: u64,
    id: String,
    /// The node that answered.
    via: usize,
    /// `true`: answered `202`. `false`: its POST got no answer, and a node later showed it
    /// pending or included (a retry found the nonce taken by this very transaction).
    got_202: bool,
}

#[derive(Debug, Default)]
struct Stats {
    posted: u64,
    accepted: u64,
    bad_nonce: u64,
    unreachable: u64,
    busy: u64,
}

/// The client: senders, what was acknowledged, counters. Shared by the load generator and the
/// fault injector (which submits right before some kills).
struct Load {
    client: reqwest::Client,
    urls: Vec<String>,
    genesis: Hash,
    recipients: Vec<PublicKey>,
    senders: Vec<Sender>,
    acked: Vec<Acked>,
    stats: Stats,
}

/// What one submission came to.
#[derive(Debug, PartialEq)]
enum Outcome {
    Accepted,
    Refused,
    Unreachable,
}

impl Load {
    /// Submits sender `s`'s next transaction to node `via`.
    async fn submit(&mut self, s: usize, via: usize) -> Outcome {
        let nonce = self.senders[s].next;
        let tx = transfer_for(
            &self.senders[s].key,
            s,
            nonce,
            &self.recipients,
            &self.genesis,
        );
        let id = tx.id().to_hex();
        let url = format!("{}/transactions", self.urls[via]);
        self.stats.posted += 1;
        let body = serde_json::to_value(&tx).expect("a transaction serializes");
        let resp = match self.client.post(&url).json(&body).send().await {
            Ok(r) => r,
            Err(_) => {
                // Down, or killed mid-request: the outcome is unknown, so the same transaction is
                // re-sent next time (never another one with this nonce).
                self.stats.unreachable += 1;
                self.senders[s].unknown_outcome = true;
                return Outcome::Unreachable;
            }
        };
        let code = resp.status().as_u16();
        let answer: Value = match resp.json().await {
            Ok(v) => v,
            Err(_) => {
                self.stats.unreachable += 1;
                self.senders[s].unknown_outcome = true;
                return Outcome::Unreachable;
            }
        };
        if code == 408 || code == 503 {
            // The node did not finish in time: it may still have accepted the transaction.
            self.stats.busy += 1;
            self.senders[s].unknown_outcome = true;
            return Outcome::Unreachable;
        }
        if code == 202 {
            assert_eq!(
                answer["id"].as_str(),
                Some(id.as_str()),
                "node{via} acknowledged another id than the transaction's"
            );
            self.stats.accepted += 1;
            self.acked.push(Acked {
                sender: s,
                nonce,
                id,
                via,
                got_202: true,
            });
            self.senders[s].next += 1;
            self.senders[s].unknown_outcome = false;
            return Outcome::Accepted;
        }
        let err = answer.pointer("/error/code").and_then(Value::as_str);
        if code == 422 && err == Some("bad_nonce") {
            self.stats.bad_nonce += 1;
            self.on_bad_nonce(s, via, nonce, &id).await;
            return Outcome::Refused;
        }
        // Anything else refused a transaction the client believes valid: a node bug.
        panic!("node{via} answered {code} {answer} to sender {s} nonce {nonce} ({id})");
    }

    /// A `bad_nonce`: usually the node has not yet seen the sender's previous transactions (they
    /// are in flight, or journaled on a node that is down) — wait. If the node is *ahead* of the
    /// client, a POST whose answer was lost did land: it must be this very transaction.
    async fn on_bad_nonce(&mut self, s: usize, via: usize, nonce: u64, id: &str) {
        let url = &self.urls[via];
        let account = &self.senders[s].account;
        let Ok(a) = get_json(&self.client, &format!("{url}/accounts/{account}")).await else {
            return;
        };
        let Some(pending) = a["pending_nonce"].as_u64() else {
            return;
        };
        if pending <= nonce {
            return;
        }
        let found = match tx_known(&self.client, url, id).await {
            Some(found) => found,
            // The node went away meanwhile: decide another time.
            None => return,
        };
        assert!(
            found,
            "node{via} expects nonce {pending} of sender {s}, but the only transaction the client \
             signed for nonce {nonce} ({id}) is neither pending nor included there"
        );
        assert!(
            self.senders[s].unknown_outcome,
            "node{via} expects nonce {pending} of sender {s} though the client never sent nonce \
             {nonce} before"
        );
        self.landed(s, nonce, id, via);
    }

    /// Records that the transaction of an unanswered POST was accepted after all.
    fn landed(&mut self, s: usize, nonce: u64, id: &str, via: usize) {
        self.acked.push(Acked {
            sender: s,
            nonce,
            id: id.to_string(),
            via,
            got_202: false,
        });
        self.senders[s].next += 1;
        self.senders[s].unknown_outcome = false;
    }

    /// After the load: a last POST whose answer was lost may have been accepted (journaled on
    /// some node). Every node is up and has restored its journal by now, so asking all of them
    /// decides it; a landed one joins the acknowledged set (and must be included like them).
    async fn resolve_unknown_outcomes(&mut self) {
        for s in 0..self.senders.len() {
            if !self.senders[s].unknown_outcome {
                continue;
            }
            let nonce = self.senders[s].next;
            let tx = transfer_for(
                &self.senders[s].key,
                s,
                nonce,
                &self.recipients,
                &self.genesis,
            );
            let id = tx.id().to_hex();
            for via in 0..self.urls.len() {
                let known = tx_known(&self.client, &self.urls[via], &id).await;
                if known == Some(true) {
                    eprintln!("sender {s} nonce {nonce}: unanswered POST landed ({id})");
                    self.landed(s, nonce, &id, via);
                    break;
                }
            }
            self.senders[s].unknown_outcome = false;
        }
    }
}

/// Whether node `url` has transaction `id` pending or included; `None` if it does not answer.
async fn tx_known(client: &reqwest::Client, url: &str, id: &str) -> Option<bool> {
    let resp = client
        .get(format!("{url}/transactions/{id}"))
        .send()
        .await
        .ok()?;
    match resp.status().as_u16() {
        404 => Some(false),
        200 => {
            let t: Value = resp.json().await.ok()?;
            let st = t["status"].as_str().unwrap_or_default();
            assert!(
                st == "pending" || st == "included",
                "{url}: transaction {id} has status {t}"
            );
            Some(true)
        }
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_nodes_killed_and_restarted_under_load_include_every_acknowledged_transfer() {
    // Build ppd before the clock starts: a cold build must not eat the test's time bound.
    pp_integration_tests::ppd_bin();
    let seed = seed();
    eprintln!("chaos seed {seed} (replay: PP_CHAOS_SEED={seed})");
    let _report = SeedReport(seed);
    tokio::time::timeout(TOTAL, run(seed))
        .await
        .unwrap_or_else(|_| panic!("chaos test exceeded {TOTAL:?}"));
}

async fn run(seed: u64) {
    let started = Instant::now();
    let mut sched_rng = StdRng::seed_from_u64(seed);
    let mut load_rng = StdRng::seed_from_u64(seed ^ 0x9e37_79b9_7f4a_7c15);
    let mut flap_rng = StdRng::seed_from_u64(seed ^ 0x5851_f42d_4c95_7f2d);
    let faults = schedule(&mut sched_rng, &mut flap_rng);
    eprintln!("fault schedule: {faults:?}");

    let mut net = Testnet::write(
        NODES,
        &[
            "--slot-ms",
            SLOT_MS,
            "--start-delay-ms",
            "4000",
            "--difficulty",
            "1",
        ],
    )
    .expect("ppd testnet");
    net.start_all().expect("start nodes");
    let urls = net.urls();
    let client = http();
    wait_all_up(&client, &urls, WAIT).await.expect("nodes up");
    wait_height(&client, &urls, 2, WAIT)
        .await
        .expect("first blocks");
    let genesis: Hash = status(&client, &urls[0]).await.expect("status")["genesis_hash"]
        .as_str()
        .and_then(|h| h.parse().ok())
        .expect("genesis_hash");

    let senders = (0..NODES)
        .map(|i| {
            // The stakeholder's account key (a praos testnet's cold key, off the node).
            let key = pp_server::keys::load_key_file(&net.account_key(i))
                .expect("read the stakeholder key");
            Sender {
                account: key.public().to_hex(),
                key,
                next: 0,
                unknown_outcome: false,
            }
        })
        .collect();
    // Fresh receive-only accounts, distinct per seed.
    let recipients: Vec<PublicKey> = (0..RECIPIENTS)
        .map(|r| {
            let k = Hash::blake2b_parts(&[b"chaos recipient", &seed.to_be_bytes(), &[r]]);
            KeyPair::from_seed(k.0).public()
        })
        .collect();
    let load = Arc::new(Mutex::new(Load {
        client: client.clone(),
        urls: urls.clone(),
        genesis,
        recipients: recipients.clone(),
        senders,
        acked: Vec::new(),
        stats: Stats::default(),
    }));

    // The load generator: a seeded choice of sender and node every SUBMIT_EVERY, for LOAD.
    let load_start = Instant::now();
    let generator = {
        let load = load.clone();
        tokio::spawn(async move {
            let max_iters = (LOAD.as_millis() / SUBMIT_EVERY.as_millis()) as usize + 1;
            for _ in 0..max_iters {
                if load_start.elapsed() >= LOAD {
                    break;
                }
                let s = load_rng.random_range(0..NODES);
                let via = load_rng.random_range(0..NODES);
                load.lock().await.submit(s, via).await;
                tokio::time::sleep(SUBMIT_EVERY).await;
            }
        })
    };

    // The fault injector, on this task: kills and restarts as scheduled.
    // (time, node, the fault for a kill / the flap delay for a restart)
    let mut events: Vec<(Duration, usize, Result<Fault, Option<Duration>>)> = Vec::new();
    for f in &faults {
        events.push((f.at, f.node, Ok(*f)));
        events.push((f.at + f.down, f.node, Err(f.flap)));
    }
    // At equal times restarts go first, so a node is never killed twice in a row.
    events.sort_by_key(|e| (e.0, e.2.is_ok()));
    let mut kills_after_202 = 0;
    let mut durable_checks = 0;
    let mut flaps = 0;
    for (at, node, fault) in events {
        if let Some(wait) = at.checked_sub(load_start.elapsed()) {
            tokio::time::sleep(wait).await;
        }
        match fault {
            Ok(f) => {
                if let Some(st) = net.nodes[node].exited() {
                    panic!("node{node} exited on its own ({st}) before its scheduled kill");
                }
                if f.submit_first {
                    // Pick a sender this node can take now; hold the client so the generator
                    // does not submit in between, and kill right on the 202.
                    let mut l = load.lock().await;
                    for s in 0..NODES {
                        let s = (node + s) % NODES;
                        if l.submit(s, node).await == Outcome::Accepted {
                            net.nodes[node].kill9();
                            kills_after_202 += 1;
                            break;
                        }
                    }
                }
                net.nodes[node].kill9();
                eprintln!(
                    "{:>6.1}s kill -9 node{node}",
                    load_start.elapsed().as_secs_f64()
                );
            }
            Err(flap) => {
                net.nodes[node].start().expect("restart node");
                eprintln!(
                    "{:>6.1}s restart node{node}",
                    load_start.elapsed().as_secs_f64()
                );
                if let Some(after) = flap {
                    tokio::time::sleep(after).await;
                    if let Some(st) = net.nodes[node].exited() {
                        panic!("node{node} exited on its own ({st}) right after its restart");
                    }
                    net.nodes[node].kill9();
                    net.nodes[node]
                        .start()
                        .expect("restart node after the flap");
                    eprintln!(
                        "{:>6.1}s kill -9 node{node} {} ms into its restart, restart again",
                        load_start.elapsed().as_secs_f64(),
                        after.as_millis()
                    );
                    flaps += 1;
                }
                // `202` means journaled durably: as soon as the node answers again (its state and
                // journal are loaded before HTTP starts), every transaction it acknowledged
                // before the kill is known to it from its own disk — pending (journal) or
                // included (its chain) — whether or not the relay reached anyone.
                wait_all_up(&client, std::slice::from_ref(&urls[node]), WAIT)
                    .await
                    .expect("restarted node answers");
                let mine: Vec<String> = load
                    .lock()
                    .await
                    .acked
                    .iter()
                    .filter(|a| a.via == node && a.got_202)
                    .map(|a| a.id.clone())
                    .collect();
                for id in &mine {
                    match tx_known(&client, &urls[node], id).await {
                        Some(true) => durable_checks += 1,
                        Some(false) => panic!(
                            "node{node} acknowledged {id} with 202 before it was killed, and \
                             after the restart it neither has it pending nor in its chain"
                        ),
                        None => panic!("node{node} does not answer right after its restart"),
                    }
                }
            }
        }
    }
    generator.await.expect("load generator panicked");
    let load_end_height = {
        let mut h = 0;
        for u in &urls {
            h = h.max(height(&client, u).await.unwrap_or(0));
        }
        h
    };
    {
        let l = load.lock().await;
        eprintln!(
            "load done after {:.1}s: {:?}, {} acknowledged ({} via 202), {kills_after_202} kills \
             right after a 202, {flaps} kills during a restart, {durable_checks} acknowledged transactions found on their node \
             right after its restart, height {load_end_height}",
            load_start.elapsed().as_secs_f64(),
            l.stats,
            l.acked.len(),
            l.acked.iter().filter(|a| a.got_202).count()
        );
        assert!(
            l.stats.accepted >= 50,
            "too little load to prove anything: {:?}",
            l.stats
        );
    }

    // Everyone is up again (the schedule restarts every node before the load ends).
    for (i, n) in net.nodes.iter_mut().enumerate() {
        if let Some(st) = n.exited() {
            panic!("node{i} exited on its own: {st}");
        }
    }
    wait_all_up(&client, &urls, WAIT).await.expect("all up");

    // Convergence: a common block above the load's end on every node.
    let target = load_end_height + 4;
    wait_height(&client, &urls, target, WAIT)
        .await
        .expect("every node passes the load's end");
    let common = wait_common_block(&client, &urls, target, WAIT)
        .await
        .expect("nodes converge");
    eprintln!(
        "converged on block {target} ({common}) at {:.1}s",
        started.elapsed().as_secs_f64()
    );

    // Every acknowledged transaction is included, in the same block, on every node.
    load.lock().await.resolve_unknown_outcomes().await;
    let acked = load.lock().await.acked.clone();
    let converge_start = Instant::now();
    for a in &acked {
        wait_for(
            &format!(
                "transaction {} (sender {} nonce {}, acknowledged by node{}) included in one block \
                 on every node",
                a.id, a.sender, a.nonce, a.via
            ),
            WAIT,
            POLL,
            || async {
                let mut block: Option<Value> = None;
                for u in &urls {
                    let t = get_json(&client, &format!("{u}/transactions/{}", a.id))
                        .await
                        .ok()?;
                    if t["status"] != "included" {
                        return None;
                    }
                    match &block {
                        None => block = Some(t["block"].clone()),
                        Some(b) if *b == t["block"] => {}
                        Some(_) => return None,
                    }
                }
                block
            },
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    }
    eprintln!(
        "all {} acknowledged transactions included on every node ({:.1}s after convergence)",
        acked.len(),
        converge_start.elapsed().as_secs_f64()
    );

    // Nothing else spent the senders' nonces, and nothing landed twice: each sender's chain nonce
    // is exactly the number of its transactions that landed, and the receive-only accounts hold
    // exactly what was sent to them — on every node, read at one unchanging tip.
    let l = load.lock().await;
    let mut expected: BTreeMap<String, u64> = BTreeMap::new();
    for a in &acked {
        let tx = transfer_for(
            &l.senders[a.sender].key,
            a.sender,
            a.nonce,
            &recipients,
            &genesis,
        );
        if let pp_ledger::TxKind::Transfer { to } = tx.body.kind {
            *expected.entry(to.to_hex()).or_default() += tx.body.amount;
        }
    }
    let nonces: Vec<u64> = l.senders.iter().map(|s| s.next).collect();
    let accounts: Vec<String> = l.senders.iter().map(|s| s.account.clone()).collect();
    drop(l);
    let ledger_check = wait_for(
        "a stable tip with the expected nonces and balances on every node",
        WAIT,
        POLL,
        || async {
            let tip = status(&client, &urls[0]).await.ok()?["tip_hash"].clone();
            for u in &urls {
                if status(&client, u).await.ok()?["tip_hash"] != tip {
                    return None;
                }
                for (s, account) in accounts.iter().enumerate() {
                    let a = get_json(&client, &format!("{u}/accounts/{account}"))
                        .await
                        .ok()?;
                    if a["nonce"].as_u64()? != nonces[s] {
                        return Some(Err(format!(
                            "{u}: sender {s}: {a}, expected nonce {}",
                            nonces[s]
                        )));
                    }
                }
                for (r, amount) in &expected {
                    let a = get_json(&client, &format!("{u}/accounts/{r}")).await.ok()?;
                    if a["balance"].as_u64()? != *amount {
                        return Some(Err(format!("{u}: recipient {a}, expected {amount}")));
                    }
                }
            }
            // The tip did not move while we read.
            (status(&client, &urls[0]).await.ok()?["tip_hash"] == tip).then_some(Ok(()))
        },
    )
    .await
    .expect("consistent snapshot");
    if let Err(e) = ledger_check {
        panic!("ledger disagrees with the client: {e}");
    }

    // Clean stop, then check every data dir directly and by restarting on it.
    let served: Vec<Vec<String>> = {
        let mut v = Vec::new();
        for u in &urls {
            v.push(block_hashes(&client, u, target).await.expect("hashes"));
        }
        v
    };
    for (i, n) in net.nodes.iter_mut().enumerate() {
        let st = n
            .terminate(Duration::from_secs(20))
            .expect("SIGTERM stops the node");
        assert!(st.success(), "node{i} exited with {st} after SIGTERM");
    }
    let mut stored_heights = Vec::new();
    for (i, hashes) in served.iter().enumerate() {
        let stored = check_data_dir(&net.node_dir(i), &hashes[0]);
        assert!(
            stored.len() > target as usize,
            "node{i} stored {} blocks but served block {target}",
            stored.len()
        );
        assert_eq!(
            &stored[..=target as usize],
            &hashes[..],
            "node{i}'s database differs from what it served"
        );
        stored_heights.push(stored.len() as u64 - 1);
    }
    let log_lens: Vec<usize> = net.nodes.iter().map(|n| n.log_text().len()).collect();
    for n in &mut net.nodes {
        n.start().expect("final restart");
    }
    wait_all_up(&client, &urls, WAIT).await.expect("up again");
    for (i, n) in net.nodes.iter().enumerate() {
        let log = n.log_text();
        let loaded = loaded_height(log.get(log_lens[i]..).unwrap_or_default());
        assert_eq!(
            loaded,
            Some(stored_heights[i]),
            "node{i} must load the height its database holds"
        );
        let again = block_hashes(&client, &urls[i], target)
            .await
            .expect("hashes");
        assert_eq!(
            again, served[i],
            "node{i} serves other blocks after restart"
        );
    }
    let top = stored_heights.iter().copied().max().unwrap_or(0);
    wait_height(&client, &urls, top + 2, WAIT)
        .await
        .expect("the cluster makes progress after the restart");
    wait_common_block(&client, &urls, top + 2, WAIT)
        .await
        .expect("and agrees");
    for (i, h) in served.iter().enumerate() {
        let i_hash = block_hash(&client, &urls[i], target).await;
        assert_eq!(i_hash.as_deref(), Some(h[target as usize].as_str()));
    }
    eprintln!(
        "seed {seed}: passed in {:.1}s",
        started.elapsed().as_secs_f64()
    );
}

/// Opens a stopped node's database and checks its best chain: complete from block 1 up, every
/// block present, decodable, stored under its own hash, at its index, linked to its predecessor
/// (block 1 to `genesis_block`). Returns the hashes from index 0.
fn check_data_dir(dir: &std::path::Path, genesis_block: &str) -> Vec<String> {
    let path = dir.join(pp_server::DB_FILE);
    let storage = pp_server::Storage::open(&path)
        .unwrap_or_else(|e| panic!("{} does not open: {e}", path.display()));
    let best = storage.best_chain().expect("best chain reads");
    let mut prev: Hash = genesis_block.parse().expect("genesis block hash");
    let mut out = vec![genesis_block.to_string()];
    for (i, h) in best.iter().enumerate() {
        let block = storage
            .block(h)
            .unwrap_or_else(|e| panic!("{}: block {h} unreadable: {e}", path.display()))
            .unwrap_or_else(|| panic!("{}: best-chain block {h} missing", path.display()));
        assert_eq!(block.hash(), *h, "block stored under another hash");
        assert_eq!(
            block.header.index,
            i as u64 + 1,
            "block {h} at the wrong index"
        );
        assert_eq!(block.header.prev_hash, prev, "block {h} does not link");
        prev = *h;
        out.push(h.to_hex());
    }
    storage.close();
    out
}

/// The `height=N` of the first `node state loaded` line in `log` (the Server's start-up line).
fn loaded_height(log: &str) -> Option<u64> {
    let line = log.lines().find(|l| l.contains("node state loaded"))?;
    let rest = &line[line.find(" height=")? + " height=".len()..];
    rest.split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}
