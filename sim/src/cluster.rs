//! [`Cluster`]: a network of real pp-server [`Server`]s, each a turmoil host with its own data
//! dir on disk, a simulated clock and simulated TCP, driven step by step with every invariant
//! checked after each step (see [`crate::invariants`]).
//!
//! The test thread owns the simulation. A host's software builds and starts a `Server`, then
//! parks it in a shared slot that the harness reads between steps (hosts and the harness run on
//! the same thread, never at the same time). A crash drops the host's runtime, and with it every
//! task of the node, then the harness drops the `Server`: nothing is flushed that a `kill -9`
//! would not have left on disk, and the data dir survives for the restart.

use std::cell::RefCell;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use pp_ledger::{Genesis, Hash, InitialBalance, InitialStakeholder, KeyPair, LedgerState};
use pp_server::{dev_key, InlineBlocking, NetworkConfig, Server, ServerConfig, TokioClock};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::error::SimError;
use crate::invariants::{Invariants, Stats};
use crate::leaders::{LeaderStats, LeaderWatch};
use crate::transport::TurmoilTransport;
use crate::workload::{Workload, WALLET_BALANCE};

/// The P2P port every simulated node listens on.
pub const P2P_PORT: u16 = 7000;
/// Unix time (ms) at which every simulation starts; the genesis time.
pub const EPOCH_MS: u64 = 1_700_000_000_000;
/// Balance of each stakeholder node's account at genesis.
pub const NODE_BALANCE: u64 = 1_000_000_000;

/// The shape of a simulated network and of its faults.
#[derive(Debug, Clone)]
pub struct SimParams {
    /// Seeds turmoil (latency draws, link failures), the workload and the genesis epoch nonce.
    pub seed: u64,
    /// Stake of each stakeholder node `node1`, `node2`, … (one entry per node).
    pub stakes: Vec<u64>,
    /// Slot duration (simulated ms).
    pub slot_ms: u64,
    /// Slots per epoch.
    pub slots_per_epoch: u64,
    /// Maximum rollback depth.
    pub k: u64,
    /// PoW difficulty (hex digits).
    pub difficulty: u32,
    /// Simulated time per step (ms).
    pub tick_ms: u64,
    /// Smallest one-way message latency (ms).
    pub min_latency_ms: u64,
    /// Largest one-way message latency (ms).
    pub max_latency_ms: u64,
    /// Per-message chance that a link fails (drops segments until repaired).
    pub fail_rate: f64,
    /// Per-message chance that a failed link is repaired.
    pub repair_rate: f64,
    /// Number of wallet accounts sending transfers.
    pub wallets: usize,
    /// Average transfers submitted per slot while a load runs.
    pub tx_per_slot: f64,
    /// `Some(n)`: every stakeholder node is configured with the first `n` nodes only (the
    /// seeds; a seed with the seeds before it) and must find the rest by peer exchange. `None`:
    /// each node is configured with every node before it.
    pub seed_peers: Option<usize>,
    /// `Some((lo, hi))`: every link between two stakeholder nodes gets its own fixed one-way
    /// latency, drawn uniformly from `lo..=hi` ms (by the seed), instead of turmoil's per-message
    /// draw from `min_latency_ms..=max_latency_ms`.
    pub link_latency_ms: Option<(u64, u64)>,
    /// Whether the nodes ask each other for inventory and compact-block relay (pp-server's
    /// `NetworkConfig::compact_relay`); false: every transaction and block travels in full.
    pub compact_relay: bool,
    /// Praos leader election (genesis `leader_mode: praos`, `f` =
    /// [`pp_ledger::DEVNET_ACTIVE_SLOT_COEFF`], each node's development VRF key
    /// [`pp_server::praos::dev_vrf_key`]) instead of classic. [`SimParams::new`] sets it from
    /// `PP_SIM_LEADER_MODE` (see [`crate::leaders`]).
    pub praos: bool,
    /// Whether a node's tip block counts towards the majority invariant (see
    /// [`crate::invariants`]); true unless a scenario makes it untrue. A scenario that holds
    /// links for seconds sets it false: a node cut off from a block by a held link, leading the
    /// next two slots, orphans that block by the longest-chain rule even though a majority held
    /// it as their tip (docs/testing.md, "Majority blocks"). Praos mode never counts tips.
    pub majority_counts_tips: bool,
}

impl SimParams {
    /// Five equal-stake nodes, 500 ms slots, 20-slot epochs, k = 50, difficulty 1, 10 ms ticks,
    /// 1–30 ms latency, no loss, 10 wallets, one transfer per slot, compact relay; classic
    /// leader election unless `PP_SIM_LEADER_MODE=praos` (see [`crate::leaders`]).
    pub fn new(seed: u64) -> SimParams {
        SimParams {
            seed,
            stakes: vec![100; 5],
            slot_ms: 500,
            slots_per_epoch: 20,
            k: 50,
            difficulty: 1,
            tick_ms: 10,
            min_latency_ms: 1,
            max_latency_ms: 30,
            fail_rate: 0.0,
            repair_rate: 0.0,
            wallets: 10,
            tx_per_slot: 1.0,
            seed_peers: None,
            link_latency_ms: None,
            compact_relay: true,
            praos: crate::leaders::praos_from_env(),
            majority_counts_tips: true,
        }
    }

    /// One slot.
    pub fn slot(&self) -> Duration {
        Duration::from_millis(self.slot_ms)
    }

    /// One epoch.
    pub fn epoch(&self) -> Duration {
        Duration::from_millis(self.slot_ms.saturating_mul(self.slots_per_epoch))
    }
}

/// The genesis of a simulated network: stakeholders `node1..` with their dev keys, the wallets,
/// and an epoch nonce derived from the seed (so every seed has its own leader schedule).
pub fn sim_genesis(params: &SimParams, workload: &Workload) -> Genesis {
    let mut g = Genesis::devnet("node1", dev_key("node1").public(), EPOCH_MS);
    g.network = "pp-sim".into();
    g.slot_duration_ms = params.slot_ms;
    g.slots_per_epoch = params.slots_per_epoch;
    g.difficulty = params.difficulty;
    g.k = params.k;
    g.epoch_nonce = Hash::blake2b_parts(&[b"pp-sim/epoch-nonce", &params.seed.to_be_bytes()]);
    g.initial_balances = (0..params.stakes.len())
        .map(|i| InitialBalance {
            account: dev_key(&node_name(i)).public(),
            amount: NODE_BALANCE,
        })
        .chain(workload.wallets.iter().map(|w| InitialBalance {
            account: w.key.public(),
            amount: WALLET_BALANCE,
        }))
        .collect();
    g.initial_stakeholders = params
        .stakes
        .iter()
        .enumerate()
        .map(|(i, &stake)| InitialStakeholder {
            id: node_name(i),
            public_key: dev_key(&node_name(i)).public(),
            stake,
            vrf_key: None,
        })
        .collect();
    if params.praos {
        let vrf_keys: Vec<pp_ledger::PublicKey> = (0..params.stakes.len())
            .map(|i| pp_server::praos::vrf_public_of(pp_server::praos::dev_vrf_seed(&node_name(i))))
            .collect();
        g = g.into_praos(pp_ledger::DEVNET_ACTIVE_SLOT_COEFF, &vrf_keys);
    }
    g
}

/// The name of stakeholder node `i` (0-based): `node1`, `node2`, …
pub fn node_name(i: usize) -> String {
    format!("node{}", i + 1)
}

/// One simulated node.
struct Node {
    name: String,
    /// The running server, parked here by the host software once started.
    slot: Rc<RefCell<Option<Server>>>,
    /// False between a crash and the next bounce.
    live: bool,
    /// Tip (index, hash) at the last crash, checked against the chain after the restart.
    pre_crash: Option<(u64, Hash)>,
}

/// What a finished run reports.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// Final height of the common tip.
    pub height: u64,
    /// The common tip.
    pub tip: Hash,
    /// Transactions acknowledged by the nodes (all of them in the final chain).
    pub txs: usize,
    /// Invariant counters.
    pub stats: Stats,
    /// Simulated time of the whole run (ms).
    pub sim_ms: u64,
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "height {} tip {}, {} txs, {} reorgs (deepest {}), {} majority blocks, settled {}, {} ms simulated",
            self.height,
            &self.tip.to_string()[..16],
            self.txs,
            self.stats.reorgs,
            self.stats.max_rollback,
            self.stats.majority_blocks,
            self.stats.settled_height,
            self.sim_ms
        )
    }
}

/// A simulated pp-ledger network (see the module docs).
pub struct Cluster {
    sim: turmoil::Sim<'static>,
    params: SimParams,
    genesis: Genesis,
    root: PathBuf,
    nodes: Vec<Node>,
    inv: Invariants,
    rng: StdRng,
    workload: Workload,
    /// Whether transfers are being submitted while stepping.
    load: bool,
    /// Leadership slot by slot (praos: leaders per slot, multi-leader forks).
    leaders: LeaderWatch,
}

/// Turns on `tracing` output when `PP_SIM_LOG` holds a filter (e.g. `info`, `pp_server=debug`).
fn init_logging() {
    if let Ok(filter) = std::env::var("PP_SIM_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_test_writer()
            .try_init();
    }
}

/// A fresh directory for one run's data dirs: under /dev/shm when it exists, so that fsync is
/// a memory operation and many seeds stay fast.
fn fresh_root(seed: u64) -> Result<PathBuf, SimError> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let base = if std::path::Path::new("/dev/shm").is_dir() {
        PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let dir = base.join(format!("pp-sim-{}-{seed}-{n}", std::process::id()));
    if dir.exists() {
        std::fs::remove_dir_all(&dir)
            .map_err(|e| SimError::Setup(format!("cannot clear {}: {e}", dir.display())))?;
    }
    std::fs::create_dir_all(&dir)
        .map_err(|e| SimError::Setup(format!("cannot create {}: {e}", dir.display())))?;
    Ok(dir)
}

impl Cluster {
    /// Builds the simulation and registers one host per stakeholder; nothing runs until the
    /// first step.
    pub fn new(params: SimParams) -> Result<Cluster, SimError> {
        init_logging();
        if params.stakes.is_empty() || params.tick_ms == 0 {
            return Err(SimError::Setup(
                "need at least one node and a tick > 0".into(),
            ));
        }
        let workload = Workload::new(params.seed, params.wallets, params.stakes.len());
        let genesis = sim_genesis(&params, &workload);
        genesis
            .validate()
            .map_err(|e| SimError::Setup(format!("invalid genesis: {e}")))?;
        let mut builder = turmoil::Builder::new();
        builder
            .rng_seed(params.seed)
            .epoch(UNIX_EPOCH + Duration::from_millis(EPOCH_MS))
            .tick_duration(Duration::from_millis(params.tick_ms))
            .simulation_duration(Duration::from_secs(365 * 24 * 3600))
            .min_message_latency(Duration::from_millis(params.min_latency_ms))
            .max_message_latency(Duration::from_millis(
                params.max_latency_ms.max(params.min_latency_ms),
            ))
            .fail_rate(params.fail_rate)
            .repair_rate(params.repair_rate)
            .tcp_capacity(4096);
        let mut inv = Invariants::new(&genesis, params.stakes.len())?;
        if !params.majority_counts_tips {
            inv.skip_tips_for_majority();
        }
        let stakeholders: Vec<(String, pp_ledger::PublicKey)> = genesis
            .initial_stakeholders
            .iter()
            .map(|s| (s.id.clone(), s.public_key))
            .collect();
        let leaders = LeaderWatch::new(
            params.praos,
            &stakeholders,
            genesis.genesis_time,
            genesis.slot_duration_ms,
        );
        let mut c = Cluster {
            sim: builder.build(),
            root: fresh_root(params.seed)?,
            rng: StdRng::seed_from_u64(params.seed ^ 0x5eed_5eed_5eed_5eed),
            genesis,
            nodes: Vec::new(),
            inv,
            workload,
            load: false,
            leaders,
            params,
        };
        for i in 0..c.params.stakes.len() {
            let name = node_name(i);
            // Each node dials only the nodes before it (node1 dials nobody): the rest of the
            // mesh comes from inbound connections, whose addresses the nodes must learn to
            // redial them after a restart.
            let configured = c.params.seed_peers.map_or(i, |n| n.min(i));
            let peers: Vec<String> = (0..configured).map(node_name).collect();
            c.add_host(&name, dev_key(&name), peers)?;
        }
        if let Some((lo, hi)) = c.params.link_latency_ms {
            let n = c.params.stakes.len();
            for a in 0..n {
                for b in a + 1..n {
                    let ms = c.rng.random_range(lo..=hi.max(lo));
                    c.sim
                        .set_link_latency(node_name(a), node_name(b), Duration::from_millis(ms));
                }
            }
        }
        Ok(c)
    }

    /// Registers a host running a `Server` named `name` that dials `peers` (host names) at start.
    fn add_host(
        &mut self,
        name: &str,
        key: KeyPair,
        peers: Vec<String>,
    ) -> Result<usize, SimError> {
        let data_dir = self.root.join(name);
        std::fs::create_dir_all(&data_dir)
            .map_err(|e| SimError::Setup(format!("cannot create {}: {e}", data_dir.display())))?;
        let config = ServerConfig {
            data_dir: Some(data_dir),
            genesis: Some(self.genesis.clone()),
            key: Some(key),
            http_addr: None,
            network: NetworkConfig {
                enable_p2p: true,
                node_id: name.to_string(),
                bootstrap_peers: Vec::new(),
                listen_addr: "0.0.0.0".into(),
                p2p_port: P2P_PORT,
                max_peers: 32,
                compact_relay: self.params.compact_relay,
            },
            node_id: name.to_string(),
            difficulty: self.params.difficulty,
            ..ServerConfig::default()
        };
        let slot: Rc<RefCell<Option<Server>>> = Rc::new(RefCell::new(None));
        let host_slot = slot.clone();
        self.sim.host(name, move || {
            let slot = host_slot.clone();
            let mut config = config.clone();
            let peers = peers.clone();
            async move {
                // Peers are dialed by IP, as a real node would be configured, so that the peer
                // table sees one address per node.
                config.network.bootstrap_peers = peers
                    .iter()
                    .map(|p| format!("{}:{P2P_PORT}", turmoil::lookup(p.as_str())))
                    .collect();
                let now_ms = turmoil::since_epoch().map_or(EPOCH_MS, |d| {
                    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
                });
                let mut server = Server::with_config(config);
                server.set_clock(Arc::new(TokioClock::new(now_ms)));
                // Storage commits run inline: tokio's blocking pool is outside virtual time.
                server.set_blocking(Arc::new(InlineBlocking));
                server.start_with_transport(TurmoilTransport).await?;
                *slot.borrow_mut() = Some(server);
                std::future::pending::<()>().await;
                Ok(())
            }
        });
        self.nodes.push(Node {
            name: name.to_string(),
            slot,
            live: true,
            pre_crash: None,
        });
        let idx = self.inv.add_node(name)?;
        debug_assert_eq!(idx, self.nodes.len() - 1);
        Ok(self.nodes.len() - 1)
    }

    /// Adds a node that holds no stake and starts from an empty data dir, dialing every
    /// stakeholder node. Majorities are counted over all nodes from now on.
    pub fn add_newcomer(&mut self, name: &str) -> Result<(), SimError> {
        self.add_newcomer_dialing(name, &[])
    }

    /// [`Cluster::add_newcomer`] that also dials the hosts `extra` (e.g. a [`crate::Liar`]),
    /// before the stakeholder nodes.
    pub fn add_newcomer_dialing(&mut self, name: &str, extra: &[&str]) -> Result<(), SimError> {
        let peers: Vec<String> = extra
            .iter()
            .map(|e| e.to_string())
            .chain((0..self.params.stakes.len()).map(node_name))
            .collect();
        self.add_newcomer_with_peers(name, peers)
    }

    /// A node without stake that starts from an empty data dir and is configured with exactly
    /// `peers` (host names or IPs; each dialed at [`P2P_PORT`]): everything else it must learn
    /// by peer exchange. Majorities are counted over all nodes from now on.
    pub fn add_newcomer_with_peers(
        &mut self,
        name: &str,
        peers: Vec<String>,
    ) -> Result<(), SimError> {
        let key = self.newcomer_key(name);
        self.add_host(name, key, peers)?;
        self.inv.set_node_count(self.nodes.len());
        Ok(())
    }

    /// The signing key of newcomer `name` (derived from the name and the seed).
    pub fn newcomer_key(&self, name: &str) -> KeyPair {
        KeyPair::from_seed(
            Hash::blake2b_parts(&[
                b"pp-sim/newcomer",
                name.as_bytes(),
                &self.params.seed.to_be_bytes(),
            ])
            .0,
        )
    }

    /// The parameters.
    pub fn params(&self) -> &SimParams {
        &self.params
    }

    /// The genesis every node runs.
    pub fn genesis(&self) -> &Genesis {
        &self.genesis
    }

    /// The workload (wallets, acknowledged transactions).
    pub fn workload(&self) -> &Workload {
        &self.workload
    }

    /// Invariant counters so far.
    pub fn stats(&self) -> Stats {
        self.inv.stats()
    }

    /// Leadership so far (see [`crate::leaders`]); open multi-leader forks count as unresolved.
    pub fn leader_stats(&self) -> LeaderStats {
        self.leaders.finish()
    }

    /// Slots with at least one leader since genesis (every slot in classic mode): waits for
    /// blocks are expressed in these, since a praos slot may be empty.
    pub fn led_slots(&self) -> u64 {
        self.leaders.stats().led
    }

    /// How many stakeholders lead `slot` by the first running node's chain (1 in classic mode;
    /// praos: each stakeholder's development VRF key asked through the chain's rules).
    pub fn leaders_of(&self, slot: u64) -> u64 {
        let live = self.live();
        let Some(&i) = live.first() else { return 0 };
        let guard = self.nodes[i].slot.borrow();
        guard
            .as_ref()
            .map_or(0, |s| self.leaders.leaders_of(s, slot))
    }

    /// The stakeholders (node names) that lead `slot` by the first running node's chain: the
    /// chain's classic leader, or in praos every stakeholder whose development VRF key proves it.
    pub fn leader_names(&self, slot: u64) -> Vec<String> {
        let live = self.live();
        let Some(&i) = live.first() else {
            return Vec::new();
        };
        let guard = self.nodes[i].slot.borrow();
        let Some(server) = guard.as_ref() else {
            return Vec::new();
        };
        self.leaders.leader_names(server, slot)
    }

    /// Steps until `name` is at height `height` or more, or `led` more slots with a leader have
    /// started (the budget: in classic mode every slot has one, in praos about half do with
    /// f = 1/2). Returns the simulated time waited, `None` if the budget ran out first.
    pub fn run_until_height(
        &mut self,
        name: &str,
        height: u64,
        led: u64,
    ) -> Result<Option<Duration>, SimError> {
        let until = self.led_slots() + led;
        // A bound in time too, for a network that stopped electing anyone: 64 slots per led
        // slot is more than any stake distribution of the scenarios needs at f = 1/2.
        let max = self.params.slot() * u32::try_from(led.saturating_mul(64)).unwrap_or(u32::MAX);
        let waited = self.run_until(max, |c| {
            c.height(name).unwrap_or(0) >= height || c.led_slots() >= until
        })?;
        Ok(waited.filter(|_| self.height(name).unwrap_or(0) >= height))
    }

    /// The turmoil simulation, for faults the harness has no helper for.
    pub fn sim(&mut self) -> &mut turmoil::Sim<'static> {
        &mut self.sim
    }

    /// Simulated time since the start.
    pub fn elapsed(&self) -> Duration {
        self.sim.elapsed()
    }

    /// The simulated wall clock (unix ms).
    pub fn now_ms(&self) -> u64 {
        u64::try_from(self.sim.since_epoch().as_millis()).unwrap_or(u64::MAX)
    }

    /// The current slot by the simulated clock. (A node's own `current_slot` must not be read
    /// from outside its host: its clock follows that host's paused runtime.)
    pub fn current_slot(&self) -> u64 {
        self.now_ms().saturating_sub(self.genesis.genesis_time)
            / self.genesis.slot_duration_ms.max(1)
    }

    /// Names of all nodes, stakeholders first.
    pub fn names(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.name.clone()).collect()
    }

    fn index(&self, name: &str) -> Result<usize, SimError> {
        self.nodes
            .iter()
            .position(|n| n.name == name)
            .ok_or_else(|| SimError::UnknownNode(name.to_string()))
    }

    /// The data dir of a node (it outlives crashes; removed when the cluster is dropped).
    pub fn data_dir(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// Runs `f` on a node's running server; `None` if it is down or still starting.
    pub fn with_server<R>(&self, name: &str, f: impl FnOnce(&Server) -> R) -> Option<R> {
        let n = self.nodes.iter().find(|n| n.name == name)?;
        if !n.live {
            return None;
        }
        let guard = n.slot.borrow();
        guard.as_ref().map(f)
    }

    /// Height of a node (`None` while down or starting).
    pub fn height(&self, name: &str) -> Option<u64> {
        self.with_server(name, Server::height)
    }

    /// Indices of nodes that are up and started.
    fn live(&self) -> Vec<usize> {
        self.nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| n.live && n.slot.borrow().is_some())
            .map(|(i, _)| i)
            .collect()
    }

    /// Starts (or stops) submitting transfers while stepping, at `params.tx_per_slot`.
    pub fn set_load(&mut self, on: bool) {
        self.load = on;
    }

    /// One simulation step, a transfer maybe, then every invariant check.
    pub fn step(&mut self) -> Result<(), SimError> {
        self.sim.step().map_err(|e| SimError::Host(e.to_string()))?;
        if self.load {
            let p =
                self.params.tx_per_slot * self.params.tick_ms as f64 / self.params.slot_ms as f64;
            if p > 0.0 && self.rng.random_bool(p.min(1.0)) {
                self.submit_transfer();
            }
        }
        self.check()
    }

    /// Submits one transfer from a wallet whose home node is up. Returns whether it was
    /// acknowledged.
    pub fn submit_transfer(&mut self) -> bool {
        let live = self.live();
        let gh = self.genesis.hash();
        let nodes = &self.nodes;
        let picked = self
            .workload
            .next_transfer(&mut self.rng, &live, &gh, |home, pk| {
                nodes.get(home)?.slot.borrow().as_ref()?.next_nonce(pk).ok()
            });
        let Some((home, tx)) = picked else {
            return false;
        };
        let result = self.nodes[home]
            .slot
            .borrow()
            .as_ref()
            .map(|s| s.submit_transaction(tx.clone()));
        match result {
            Some(Ok(_)) => {
                self.workload.acknowledge(home, &tx);
                true
            }
            Some(Err(e)) => {
                self.workload.refused.push(e.to_string());
                false
            }
            None => false,
        }
    }

    fn check(&mut self) -> Result<(), SimError> {
        let now = self.now_ms();
        let mut changed: Option<u64> = None;
        let mut live = Vec::new();
        for (i, node) in self.nodes.iter_mut().enumerate() {
            if !node.live {
                continue;
            }
            let guard = node.slot.borrow();
            let Some(server) = guard.as_ref() else {
                continue;
            };
            live.push(i);
            if let Some((index, hash)) = node.pre_crash.take() {
                // The restarted node must hold what it had acknowledged before the crash (it
                // may have produced a block on top already, never anything else).
                let held = server.block_at(index).map(|b| b.hash());
                if held != Some(hash) {
                    return Err(SimError::LostOnRestart {
                        node: node.name.clone(),
                        before_height: index,
                        before: hash,
                        after_height: server.height(),
                        after: server.tip_hash(),
                    });
                }
            }
            if let Some(from) = self.inv.observe(i, server, now)? {
                changed = Some(changed.map_or(from, |c| c.min(from)));
            }
        }
        self.inv.after_step(&live, changed)?;
        let guards: Vec<_> = live.iter().map(|&i| self.nodes[i].slot.borrow()).collect();
        let servers: Vec<&Server> = guards.iter().filter_map(|g| g.as_ref()).collect();
        self.leaders.after_step(now, &servers);
        Ok(())
    }

    /// Steps for `d` of simulated time.
    pub fn run_for(&mut self, d: Duration) -> Result<(), SimError> {
        let steps = d.as_millis().div_ceil(u128::from(self.params.tick_ms));
        for _ in 0..steps {
            self.step()?;
        }
        Ok(())
    }

    /// Steps until `done` holds (checked after each step) or `max` of simulated time passed.
    /// Returns the simulated time waited, or `None` on timeout.
    pub fn run_until(
        &mut self,
        max: Duration,
        mut done: impl FnMut(&Cluster) -> bool,
    ) -> Result<Option<Duration>, SimError> {
        let start = self.sim.elapsed();
        loop {
            if done(self) {
                return Ok(Some(self.sim.elapsed() - start));
            }
            if self.sim.elapsed() - start >= max {
                return Ok(None);
            }
            self.step()?;
        }
    }

    /// Cuts every link between a node of `a` and a node of `b` (segments are dropped).
    pub fn partition(&mut self, a: &[&str], b: &[&str]) {
        for x in a {
            for y in b {
                self.sim.partition(*x, *y);
            }
        }
    }

    /// Repairs every link between a node of `a` and a node of `b`.
    pub fn repair(&mut self, a: &[&str], b: &[&str]) {
        for x in a {
            for y in b {
                self.sim.repair(*x, *y);
            }
        }
    }

    /// Kills a node's software at once, as a power loss would (its sockets send nothing more);
    /// its data dir stays. Its links are healthy afterwards, whatever they were before.
    pub fn crash(&mut self, name: &str) -> Result<(), SimError> {
        let i = self.index(name)?;
        let tip = self.nodes[i]
            .slot
            .borrow()
            .as_ref()
            .map(|s| (s.height(), s.tip_hash()));
        // Cut the victim off for the instant of the crash: the FIN/RST segments its dying
        // sockets send come out in the order tokio drops its tasks, which depends on
        // process-wide task ids and so is not reproducible; lost, they cannot make replays
        // diverge. Peers see what a power loss looks like: silence, then the node's reconnection.
        let others: Vec<String> = self
            .nodes
            .iter()
            .filter(|n| n.name != name)
            .map(|n| n.name.clone())
            .collect();
        for o in &others {
            self.sim.partition(name, o.as_str());
        }
        self.sim.crash(name);
        for o in &others {
            self.sim.repair(name, o.as_str());
        }
        // The runtime and every task are gone; dropping the server now closes its files.
        let server = self.nodes[i].slot.borrow_mut().take();
        drop(server);
        let node = &mut self.nodes[i];
        node.live = false;
        if tip.is_some() {
            node.pre_crash = tip;
        }
        Ok(())
    }

    /// Restarts a crashed node's software from its data dir.
    pub fn bounce(&mut self, name: &str) -> Result<(), SimError> {
        let i = self.index(name)?;
        if self.nodes[i].slot.borrow().is_some() {
            // Still running: a bounce is a crash then a restart.
            self.crash(name)?;
        }
        self.sim.bounce(name);
        self.nodes[i].live = true;
        self.inv.restarted(i);
        Ok(())
    }

    /// True if every node is up and all hold the same tip.
    pub fn same_tip(&self) -> bool {
        let mut tip = None;
        for n in &self.nodes {
            let guard = n.slot.borrow();
            let Some(s) = guard.as_ref().filter(|_| n.live) else {
                return false;
            };
            let t = s.tip_hash();
            if *tip.get_or_insert(t) != t {
                return false;
            }
        }
        tip.is_some()
    }

    /// True if every running node has the same tip and an empty mempool.
    pub fn agreed(&self) -> bool {
        let live = self.live();
        let mut tip = None;
        for &i in &live {
            let guard = self.nodes[i].slot.borrow();
            let Some(s) = guard.as_ref() else {
                return false;
            };
            if s.pending_transaction_count() != 0 {
                return false;
            }
            let t = s.tip_hash();
            if *tip.get_or_insert(t) != t {
                return false;
            }
        }
        !live.is_empty()
    }

    fn describe(&self) -> String {
        let mut parts = Vec::new();
        for n in &self.nodes {
            let guard = n.slot.borrow();
            match (n.live, guard.as_ref()) {
                (true, Some(s)) => parts.push(format!(
                    "{} h={} tip={} pending={} peers={}",
                    n.name,
                    s.height(),
                    &s.tip_hash().to_string()[..12],
                    s.pending_transaction_count(),
                    s.peer_count()
                )),
                (true, None) => parts.push(format!("{} starting", n.name)),
                (false, _) => parts.push(format!("{} down", n.name)),
            }
        }
        parts.join("; ")
    }

    /// Stops the load, steps until every node is up and they agree (same tip, empty mempools),
    /// then runs the final checks: same ledger state everywhere, every majority block kept,
    /// every acknowledged transaction in the chain. Returns the simulated time it took.
    pub fn converge(&mut self, max: Duration) -> Result<Duration, SimError> {
        self.load = false;
        let all_up = |c: &Cluster| c.nodes.iter().all(|n| n.live && n.slot.borrow().is_some());
        match self.run_until(max, |c| all_up(c) && c.agreed())? {
            Some(waited) => {
                self.final_check()?;
                Ok(waited)
            }
            None => Err(SimError::NotConverged {
                waited_ms: u64::try_from(max.as_millis()).unwrap_or(u64::MAX),
                detail: self.describe(),
            }),
        }
    }

    /// The end-of-run checks (see [`Cluster::converge`]); the nodes must agree already.
    pub fn final_check(&self) -> Result<Outcome, SimError> {
        let live = self.live();
        let Some(&first) = live.first() else {
            return Err(SimError::Expectation("no node is running".into()));
        };
        let read_state = |i: usize| -> Option<(Hash, LedgerState)> {
            self.nodes[i]
                .slot
                .borrow()
                .as_ref()?
                .with_chain(|c| (c.tip_hash(), c.state().clone()))
        };
        let Some((tip, state)) = read_state(first) else {
            return Err(SimError::Expectation("first node has no chain".into()));
        };
        for &i in &live[1..] {
            match read_state(i) {
                Some((t, s)) if t == tip && s == state => {}
                Some((t, _)) if t != tip => {
                    return Err(SimError::NotConverged {
                        waited_ms: 0,
                        detail: self.describe(),
                    })
                }
                _ => {
                    return Err(SimError::DivergentState {
                        a: self.nodes[first].name.clone(),
                        b: self.nodes[i].name.clone(),
                        tip,
                    })
                }
            }
        }
        self.inv.check_majority_kept(&live)?;
        let included: std::collections::HashSet<Hash> = self.nodes[first]
            .slot
            .borrow()
            .as_ref()
            .map(|s| {
                // Through `Server::block_at`: old blocks are read from storage.
                (1..=s.height())
                    .filter_map(|h| s.block_at(h))
                    .flat_map(|b| b.transactions.into_iter().map(|t| t.id()))
                    .collect()
            })
            .unwrap_or_default();
        for (id, ack) in &self.workload.acknowledged {
            if !included.contains(id) {
                return Err(SimError::TxLost {
                    id: *id,
                    node: self.nodes[ack.node].name.clone(),
                    nonce: ack.nonce,
                });
            }
        }
        Ok(Outcome {
            height: self.height(&self.nodes[first].name).unwrap_or(0),
            tip,
            txs: self.workload.acknowledged.len(),
            stats: self.inv.stats(),
            sim_ms: u64::try_from(self.sim.elapsed().as_millis()).unwrap_or(u64::MAX),
        })
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.leaders.record(self.params.seed);
        // Servers first (they close their databases), then the runtimes and their tasks, then
        // the files.
        for n in &self.nodes {
            let server = n.slot.borrow_mut().take();
            drop(server);
        }
        let sim = std::mem::replace(&mut self.sim, turmoil::Builder::new().build());
        drop(sim);
        let _ = std::fs::remove_dir_all(&self.root);
    }
}
