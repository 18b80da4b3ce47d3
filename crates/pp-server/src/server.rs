//! [`Server`]: builds a node from its configuration and data dir, runs its tasks, and answers
//! questions about it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use pp_ledger::{
    Chain, Genesis, Hash, InitialBalance, InitialStakeholder, KeyPair, PublicKey, Transaction,
};
use pp_net::{NetConfig, Network, TcpTransport, Transport};
use pp_ouroboros::{Ouroboros, SlotClock};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::blocking::{Blocking, TokioBlocking};
use crate::clock::{Clock, SystemClock};
use crate::config::{NetworkConfig, Registration, ServerConfig};
use crate::error::ServerError;
use crate::keys::{dev_key, random_key, read_key, write_key};
use crate::mempool::{Inserted, Mempool};
use crate::metrics::Metrics;
use crate::node::{Core, CoreView};
use crate::storage::{Storage, StorageFault};
use crate::writer::{Health, Writer};

/// Name of the genesis file in the data dir.
pub const GENESIS_FILE: &str = "genesis.json";
/// Name of the database file in the data dir.
pub const DB_FILE: &str = "chain.redb";
/// Balance given to each registered stakeholder in a genesis built from registrations.
pub const REGISTERED_BALANCE: u64 = 1_000_000_000;
/// How long [`Server::connect_to_peer`] waits for the handshake.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// How long shutdown waits for each task before aborting it.
const TASK_STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// Handles of the running tasks.
struct Running {
    shutdown: watch::Sender<bool>,
    tasks: Vec<(&'static str, JoinHandle<()>)>,
    http_addr: Option<SocketAddr>,
    p2p_addr: Option<SocketAddr>,
}

/// A pp-ledger node: chain, mempool, storage, consensus loop, P2P and HTTP API.
///
/// Single node (a devnet in a temporary data dir, producing a block per slot):
///
/// ```no_run
/// # async fn demo() -> Result<(), pp_server::ServerError> {
/// use pp_server::Server;
///
/// let mut server = Server::new(2); // PoW difficulty 2
/// server.start(8080).await?; // HTTP on 127.0.0.1:8080, P2P off
/// println!("height {}", server.height());
/// server.shutdown().await;
/// # Ok(()) }
/// ```
///
/// A network: every node registers the same stakeholders and genesis time (so they compute the
/// same genesis); the first listens, the others bootstrap from it. A node whose id is a
/// registered stakeholder signs with its [`dev_key`](crate::dev_key).
///
/// ```no_run
/// # async fn demo() -> Result<(), pp_server::ServerError> {
/// use pp_server::{NetworkConfig, Server};
///
/// let genesis_time = 1_700_000_000_000;
/// let mut nodes = Vec::new();
/// for (i, id) in ["node1", "node2"].iter().enumerate() {
///     let mut s = Server::new(2);
///     s.set_data_dir(format!("/tmp/pp-{id}"));
///     s.set_genesis_time(genesis_time);
///     s.register_stakeholder("node1", 100)?;
///     s.register_stakeholder("node2", 100)?;
///     let mut net = NetworkConfig::p2p(id, 9000 + i as u16);
///     if i > 0 {
///         net.bootstrap_peers = vec!["127.0.0.1:9000".into()];
///     }
///     s.start_with_network(8080 + i as u16, net).await?;
///     nodes.push(s);
/// }
/// // A node that joins later with an empty data dir syncs the whole chain, then follows the tip.
/// let mut joiner = Server::new(2);
/// joiner.set_genesis(nodes[0].genesis());
/// joiner.start_with_network(0, NetworkConfig::p2p("node3", 0)).await?;
/// joiner.connect_to_peer("127.0.0.1:9000").await?;
/// # Ok(()) }
/// ```
pub struct Server {
    config: ServerConfig,
    clock: Arc<dyn Clock>,
    blocking: Arc<dyn Blocking>,
    fault: StorageFault,
    /// A temporary data dir this server created (removed on drop).
    temp_dir: Option<PathBuf>,
    core: Option<Arc<Core>>,
    running: Option<Running>,
    /// The admin token written at the last start, and its file.
    admin_token: Option<(PathBuf, String)>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("node_id", &self.config.effective_node_id())
            .field("data_dir", &self.config.data_dir)
            .field("running", &self.running.is_some())
            .finish_non_exhaustive()
    }
}

fn fresh_temp_dir() -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!(
        "pp-ledger-{}-{}-{n}",
        std::process::id(),
        SystemClock.now_ms()
    ))
}

impl Server {
    /// A devnet node with PoW `difficulty`, in a fresh temporary data dir unless
    /// [`Server::set_data_dir`] is called before start.
    pub fn new(difficulty: u32) -> Server {
        Server::with_config(ServerConfig {
            difficulty,
            ..ServerConfig::default()
        })
    }

    /// A node with the given configuration.
    pub fn with_config(config: ServerConfig) -> Server {
        Server {
            config,
            clock: Arc::new(SystemClock),
            blocking: Arc::new(TokioBlocking),
            fault: StorageFault::default(),
            temp_dir: None,
            core: None,
            running: None,
            admin_token: None,
        }
    }

    /// The configuration (as changed by the setters).
    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    /// Where the node keeps its files (takes effect at the next start).
    pub fn set_data_dir(&mut self, dir: impl Into<PathBuf>) {
        self.config.data_dir = Some(dir.into());
    }

    /// Uses exactly this genesis (takes effect at the next start).
    pub fn set_genesis(&mut self, genesis: Genesis) {
        self.config.genesis = Some(genesis);
    }

    /// The genesis time of a genesis built from registrations (unix ms). Nodes that build a
    /// network together from the same registrations must use the same genesis time.
    pub fn set_genesis_time(&mut self, ms: u64) {
        self.config.genesis_time_ms = Some(ms);
    }

    /// The slot duration of a genesis built by this node.
    pub fn set_slot_duration(&mut self, d: Duration) {
        self.config.slot_duration = Some(d);
    }

    /// Uses this node key instead of `data_dir/node.key`.
    pub fn set_key(&mut self, key: KeyPair) {
        self.config.key = Some(key);
    }

    /// Where the HTTP API listens at the next [`Server::start_configured`] /
    /// [`Server::start_with_transport`]; `None` disables it (as in a simulation).
    pub fn set_http_addr(&mut self, addr: Option<SocketAddr>) {
        self.config.http_addr = addr;
    }

    /// The P2P settings for the next [`Server::start_configured`] /
    /// [`Server::start_with_transport`].
    pub fn set_network(&mut self, net: NetworkConfig) {
        self.config.network = net;
    }

    /// The node id (the P2P `node_id`, if set, takes precedence).
    pub fn set_node_id(&mut self, id: &str) {
        self.config.node_id = id.into();
    }

    /// Replaces the clock (a simulation passes a [`TokioClock`](crate::TokioClock)).
    pub fn set_clock(&mut self, clock: Arc<dyn Clock>) {
        self.clock = clock;
    }

    /// Replaces where blocking work (storage commits) runs: a simulation passes
    /// [`InlineBlocking`](crate::InlineBlocking), since tokio's blocking pool runs outside its
    /// virtual time. The default is tokio's blocking pool.
    pub fn set_blocking(&mut self, blocking: Arc<dyn Blocking>) {
        self.blocking = blocking;
    }

    /// Opens the database at the next start with writes failing while `fault` is on, as on a
    /// full disk: a seam for tests of the node's fail-stop.
    pub fn set_storage_fault(&mut self, fault: StorageFault) {
        self.fault = fault;
    }

    /// Why the node stopped, if its storage failed. A failed node produces, imports and admits
    /// nothing more, answers `503 storage_failed` on the HTTP API (`/health` included) and has
    /// closed its network; only a restart (which replays what the disk holds) brings it back.
    pub fn storage_failure(&self) -> Option<String> {
        self.core.as_ref()?.health.failure().map(str::to_string)
    }

    /// Registers a stakeholder with its well-known development key ([`dev_key`]) for the genesis
    /// this node builds. Before start only.
    pub fn register_stakeholder(&mut self, id: &str, stake: u64) -> Result<(), ServerError> {
        self.register_stakeholder_key(id, dev_key(id).public(), stake)
    }

    /// Registers a stakeholder with an explicit key. Before start only.
    pub fn register_stakeholder_key(
        &mut self,
        id: &str,
        key: PublicKey,
        stake: u64,
    ) -> Result<(), ServerError> {
        if self.running.is_some() {
            return Err(ServerError::AlreadyStarted);
        }
        let bad = |reason: &str| ServerError::BadStakeholder {
            id: id.into(),
            reason: reason.into(),
        };
        if !pp_ledger::genesis::is_valid_stakeholder_id(id) {
            return Err(bad("the id must be 1..=32 characters of [A-Za-z0-9._-]"));
        }
        if stake == 0 {
            return Err(bad("the stake must be greater than 0"));
        }
        if self
            .config
            .registrations
            .iter()
            .any(|r| r.id == id || r.key == key)
        {
            return Err(bad("the id or the key is already registered"));
        }
        self.config.registrations.push(Registration {
            id: id.into(),
            key,
            stake,
        });
        Ok(())
    }

    /// Starts the node with HTTP on `127.0.0.1:http_port` (0 = a free port) and the configured
    /// P2P settings (P2P is off unless the configuration enables it).
    pub async fn start(&mut self, http_port: u16) -> Result<(), ServerError> {
        let net = self.config.network.clone();
        self.start_with_network(http_port, net).await
    }

    /// Starts the node with HTTP on `127.0.0.1:http_port` and the given P2P settings.
    pub async fn start_with_network(
        &mut self,
        http_port: u16,
        net: NetworkConfig,
    ) -> Result<(), ServerError> {
        self.config.http_addr = Some(SocketAddr::from(([127, 0, 0, 1], http_port)));
        self.config.network = net;
        self.start_with_transport(TcpTransport).await
    }

    /// Starts the node exactly as configured (`config.http_addr`, `config.network`), over real TCP.
    pub async fn start_configured(&mut self) -> Result<(), ServerError> {
        self.start_with_transport(TcpTransport).await
    }

    /// Starts the node as configured, with P2P over `transport` (turmoil in simulations; set
    /// `config.http_addr` to `None` there, since the HTTP API listens on tokio TCP).
    pub async fn start_with_transport<T: Transport>(
        &mut self,
        transport: T,
    ) -> Result<(), ServerError> {
        if self.running.is_some() {
            return Err(ServerError::AlreadyStarted);
        }
        let data_dir = self.data_dir();
        std::fs::create_dir_all(&data_dir).map_err(|e| ServerError::io(&data_dir, e))?;
        // A fresh admin token at every start, before the API can answer (see `admin`).
        let admin_token = crate::admin::write_new_token(&data_dir)?;
        self.admin_token = Some((
            data_dir.join(crate::admin::ADMIN_TOKEN_FILE),
            admin_token.clone(),
        ));
        let node_id = self.config.effective_node_id();
        let stored_genesis = read_genesis_file(&data_dir)?;
        let fixed_genesis = match (&self.config.genesis, &stored_genesis) {
            (Some(g), Some(s)) if g.hash() != s.hash() => {
                return Err(ServerError::GenesisMismatch {
                    data_dir,
                    stored: s.hash(),
                    configured: g.hash(),
                })
            }
            (Some(g), _) => Some(g.clone()),
            (None, Some(s)) => Some(s.clone()),
            (None, None) if !self.config.registrations.is_empty() => {
                Some(self.registered_genesis()?)
            }
            (None, None) => None,
        };
        let key = self.resolve_key(&data_dir, &node_id, fixed_genesis.as_ref())?;
        let genesis = match fixed_genesis {
            Some(g) => g,
            None => self.devnet_genesis(&node_id, key.public())?,
        };
        genesis
            .validate()
            .map_err(|error| ServerError::BadGenesis {
                source_name: "configured".into(),
                error,
            })?;
        if stored_genesis.is_none() {
            write_genesis_file(&data_dir, &genesis)?;
        }
        let genesis_hash = genesis.hash();

        let cache_bytes =
            usize::try_from(self.config.db_cache_mb.saturating_mul(1 << 20)).unwrap_or(usize::MAX);
        let storage = Arc::new(Storage::open_with_cache(
            &data_dir.join(DB_FILE),
            &self.fault,
            cache_bytes,
        )?);
        match storage.genesis_hash()? {
            Some(h) if h != genesis_hash => {
                return Err(ServerError::GenesisMismatch {
                    data_dir,
                    stored: h,
                    configured: genesis_hash,
                })
            }
            Some(_) => {}
            None => storage.set_genesis_hash(&genesis_hash)?,
        }
        let bad_genesis = |e: pp_ouroboros::OuroborosError| ServerError::BadGenesis {
            source_name: "consensus".into(),
            error: pp_ledger::GenesisError::BadField {
                field: "consensus",
                reason: e.to_string(),
            },
        };
        let rules = Ouroboros::new(&genesis).map_err(bad_genesis)?;
        let slots = SlotClock::from_genesis(&genesis).map_err(bad_genesis)?;
        let chain =
            Chain::new(genesis.clone(), rules).map_err(|error| ServerError::BadGenesis {
                source_name: "configured".into(),
                error,
            })?;
        let mut mempool = Mempool::new(
            self.config.mempool_max_txs,
            self.config.mempool_max_per_sender,
        );
        mempool.set_min_fee(self.config.mempool_min_fee);
        let (sync_tx, sync_rx) = mpsc::channel(64);
        let (shutdown, shutdown_rx) = watch::channel(false);
        let metrics = Metrics::new();
        let health = Arc::new(Health::default());
        let (writer, writer_task) = Writer::new(
            storage.clone(),
            self.blocking.clone(),
            health.clone(),
            &metrics,
            shutdown_rx.clone(),
        );
        let core = Arc::new(Core::new(
            node_id.clone(),
            genesis,
            key,
            self.clock.clone(),
            slots,
            chain,
            mempool,
            storage,
            (writer, health, metrics),
            self.config.sync_batch,
            sync_tx,
        ));
        if let Some(vrf) =
            crate::praos::resolve_vrf_key(self.config.vrf_seed, &data_dir, &node_id, &core.genesis)?
        {
            // Set once, right after the core is built: nothing else sets it.
            let _ = core.vrf.set(vrf);
        }
        if let Some(p) = crate::opcert::resolve_producer(&data_dir, &core.key, &core.genesis)? {
            tracing::info!(stakeholder = %p.cold, hot_key = %p.hot.public(), counter = p.cert.counter, valid_from = p.cert.valid_from, "operational certificate loaded");
            // Set once, like the VRF key.
            let _ = core.producer.set(p);
        }
        let height = core.replay()?;
        let pending = core.restore_mempool()?;
        tracing::info!(
            node = %node_id,
            genesis = %genesis_hash,
            key = %core.key.public(),
            height,
            pending,
            data_dir = %data_dir.display(),
            "node state loaded"
        );

        // The writer is stopped last (see `stop_tasks`), after the tasks that queue changes.
        let writer_task = tokio::spawn(writer_task);
        let mut tasks = Vec::new();
        let mut p2p_addr = None;
        let net_cfg = self.config.network.clone();
        if net_cfg.enable_p2p {
            // The node's key is its network identity: peers know it by the key it proves in
            // the Noise handshake, never by its label.
            let mut nc = NetConfig::new(node_id.clone(), genesis_hash, net_cfg.listen_socket())
                .with_identity(core.key.clone());
            nc.max_peers = net_cfg.max_peers.max(1);
            nc.compact_relay = net_cfg.compact_relay;
            // pp-net's timestamps start from the node's clock (virtual under pp-sim).
            nc.unix_time_ms = Some(self.clock.now_ms());
            let nc_max_peers = nc.max_outbound();
            let view = Arc::new(CoreView(core.clone()));
            // The address book lives in the node's database (table `addr_book`).
            let store: Arc<dyn pp_net::AddrStore> = Arc::new(crate::net::BookStore(core.clone()));
            let (network, events) =
                match Network::start_with_store(nc, transport, view, Some(store)).await {
                    Ok(x) => x,
                    Err(e) => {
                        core.storage.close();
                        return Err(e.into());
                    }
                };
            p2p_addr = Some(network.local_addr());
            // Bans hold across restarts: put back those that have not expired.
            for b in core.storage.bans().unwrap_or_default() {
                if let Ok(target) = b.target.parse::<pp_net::BanTarget>() {
                    network.restore_ban(target, &b.reason, b.expires_at_ms, b.manual);
                }
            }
            let _ = core.net.set(Arc::new(network.clone()));
            let mut known = net_cfg.bootstrap_peers.clone();
            for a in &known {
                network.add_known_addr(a);
            }
            tasks.push((
                "events",
                tokio::spawn(crate::tasks::event_loop(
                    core.clone(),
                    events,
                    shutdown_rx.clone(),
                )),
            ));
            // Dial the bootstrap peers now rather than at the dialer's next tick (the saved
            // anchors are the dialer's first pick), so that a node is connected (and syncing) as soon as they answer: a restarted
            // node that reached only some of its peers before its slot made blocks the others
            // did not see in time (pp-sim crash/restart scenario).
            known.sort();
            known.dedup();
            for a in known.into_iter().take(nc_max_peers) {
                let network = network.clone();
                let mut stop = shutdown_rx.clone();
                tasks.push((
                    "bootstrap",
                    tokio::spawn(async move {
                        tokio::select! {
                            _ = crate::tasks::stopped(&mut stop) => {}
                            r = tokio::time::timeout(CONNECT_TIMEOUT, network.connect(&a)) => {
                                if let Ok(Err(e)) = r {
                                    tracing::info!(addr = %a, error = %e, "bootstrap peer not reached yet; will retry");
                                }
                            }
                        }
                    }),
                ));
            }
        }
        tasks.push((
            "sync",
            tokio::spawn(crate::sync::run(
                core.clone(),
                sync_rx,
                self.blocking.clone(),
                shutdown_rx.clone(),
            )),
        ));
        tasks.push((
            "consensus",
            tokio::spawn(crate::tasks::consensus_loop(
                core.clone(),
                shutdown_rx.clone(),
            )),
        ));
        let mut http_addr = None;
        if let Some(addr) = self.config.http_addr {
            let listener = match tokio::net::TcpListener::bind(addr).await {
                Ok(l) => l,
                Err(source) => {
                    let _ = shutdown.send(true);
                    stop_tasks(std::mem::take(&mut tasks)).await;
                    if let Some(n) = core.net() {
                        n.shutdown().await;
                    }
                    core.storage.close();
                    return Err(ServerError::HttpBind {
                        addr: addr.to_string(),
                        source,
                    });
                }
            };
            let bound = listener.local_addr().unwrap_or(addr);
            http_addr = Some(bound);
            let app = crate::http::router(
                core.clone(),
                Some(crate::http::AdminToken(Arc::from(admin_token.as_str()))),
            );
            tasks.push((
                "http",
                tokio::spawn(crate::http_serve::serve(listener, app, shutdown_rx.clone())),
            ));
            tracing::info!(addr = %bound, "HTTP API listening");
        }
        if let Some(a) = p2p_addr {
            tracing::info!(addr = %a, "P2P listening");
        }
        tasks.push(("storage", writer_task));
        self.core = Some(core);
        self.running = Some(Running {
            shutdown,
            tasks,
            http_addr,
            p2p_addr,
        });
        Ok(())
    }

    fn data_dir(&mut self) -> PathBuf {
        if let Some(d) = &self.config.data_dir {
            return d.clone();
        }
        let d = self.temp_dir.get_or_insert_with(fresh_temp_dir).clone();
        d
    }

    /// A genesis from the registered stakeholders: each gets [`REGISTERED_BALANCE`] and its stake;
    /// stakeholders in id order, so every node that registers the same set computes the same hash.
    fn registered_genesis(&self) -> Result<Genesis, ServerError> {
        let time = self
            .config
            .genesis_time_ms
            .unwrap_or_else(|| self.clock.now_ms());
        let first =
            self.config
                .registrations
                .first()
                .ok_or_else(|| ServerError::BadStakeholder {
                    id: String::new(),
                    reason: "no stakeholder registered".into(),
                })?;
        let mut g = self.apply_params(Genesis::devnet(&first.id, first.key, time));
        let mut regs = self.config.registrations.clone();
        regs.sort_by(|a, b| a.id.cmp(&b.id));
        g.initial_balances = regs
            .iter()
            .map(|r| InitialBalance {
                account: r.key,
                amount: REGISTERED_BALANCE,
            })
            .collect();
        g.initial_stakeholders = regs
            .iter()
            .map(|r| InitialStakeholder {
                id: r.id.clone(),
                public_key: r.key,
                stake: r.stake,
                vrf_key: None,
            })
            .collect();
        Ok(self.apply_leader_mode(g))
    }

    fn apply_params(&self, mut g: Genesis) -> Genesis {
        g.difficulty = self.config.difficulty;
        if let Some(d) = self.config.slot_duration {
            g.slot_duration_ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        }
        g
    }

    /// In praos mode: every stakeholder registers its development VRF key (by id).
    fn apply_leader_mode(&self, g: Genesis) -> Genesis {
        if self.config.leader_mode != pp_ledger::LeaderMode::Praos {
            return g;
        }
        let vrf_keys: Vec<PublicKey> = g
            .initial_stakeholders
            .iter()
            .map(|s| crate::praos::vrf_public_of(crate::praos::dev_vrf_seed(&s.id)))
            .collect();
        g.into_praos(pp_ledger::DEVNET_ACTIVE_SLOT_COEFF, &vrf_keys)
    }

    fn devnet_genesis(&self, node_id: &str, key: PublicKey) -> Result<Genesis, ServerError> {
        let time = self
            .config
            .genesis_time_ms
            .unwrap_or_else(|| self.clock.now_ms());
        Ok(self.apply_leader_mode(self.apply_params(Genesis::devnet(node_id, key, time))))
    }

    /// Config key > `node.key` > the dev key of a registered/genesis dev stakeholder named like
    /// this node > a new random key. A key that was not read from the file is written to it.
    fn resolve_key(
        &self,
        dir: &Path,
        node_id: &str,
        genesis: Option<&Genesis>,
    ) -> Result<KeyPair, ServerError> {
        if let Some(k) = &self.config.key {
            return Ok(k.clone());
        }
        if let Some(k) = read_key(dir)? {
            return Ok(k);
        }
        let dev = dev_key(node_id);
        let is_dev_stakeholder = self
            .config
            .registrations
            .iter()
            .any(|r| r.id == node_id && r.key == dev.public())
            || genesis.is_some_and(|g| {
                g.initial_stakeholders
                    .iter()
                    .any(|s| s.id == node_id && s.public_key == dev.public())
            });
        let key = if is_dev_stakeholder {
            dev
        } else {
            random_key()
        };
        write_key(dir, &key)?;
        Ok(key)
    }

    /// Dials a peer and completes the handshake; it is also remembered and redialed.
    pub async fn connect_to_peer(&self, addr: &str) -> Result<(), ServerError> {
        let core = self.core.as_ref().ok_or(ServerError::NotStarted)?;
        if self.running.is_none() {
            return Err(ServerError::NotStarted);
        }
        let net = core.net().cloned().ok_or(ServerError::P2pDisabled)?;
        net.add_known_addr(addr);
        let info = tokio::time::timeout(CONNECT_TIMEOUT, net.connect(addr))
            .await
            .map_err(|_| {
                ServerError::Net(pp_net::NetError::HandshakeTimeout {
                    ms: u64::try_from(CONNECT_TIMEOUT.as_millis()).unwrap_or(u64::MAX),
                })
            })??;
        if info.tip_index > core.chain().height() {
            core.request_sync(info.id, info.tip_index);
        }
        Ok(())
    }

    /// Number of connected peers.
    pub fn peer_count(&self) -> usize {
        self.net_live().map_or(0, |n| n.peer_count())
    }

    /// Node ids of the connected peers.
    pub fn connected_peers(&self) -> Vec<String> {
        self.net_live()
            .map(|n| n.peers().into_iter().map(|p| p.node_id).collect())
            .unwrap_or_default()
    }

    /// The connected peers as the network sees them (address, direction, key, tip), for
    /// harnesses that check who a node is connected to (pp-sim's eclipse scenario).
    pub fn peer_infos(&self) -> Vec<pp_net::PeerInfo> {
        self.net_live().map(|n| n.peers()).unwrap_or_default()
    }

    /// Sizes of the address book (entries by table, groups); zero without P2P.
    pub fn book_counts(&self) -> pp_net::BookCounts {
        self.net_live().map(|n| n.book_counts()).unwrap_or_default()
    }

    /// The network's cumulative counters (bytes and messages by type and direction, compact
    /// block outcomes, ...), the numbers behind the `pp_p2p_*` metrics; zero without P2P.
    pub fn net_stats(&self) -> pp_net::NetStatsSnapshot {
        self.net_live().map(|n| n.stats()).unwrap_or_default()
    }

    fn net_live(&self) -> Option<&Arc<dyn crate::net::PeerNet>> {
        self.running.as_ref()?;
        self.core.as_ref()?.net()
    }

    /// True if the node is running with P2P enabled.
    pub fn is_p2p_enabled(&self) -> bool {
        self.net_live().is_some()
    }

    /// Validates a transaction against the tip and the mempool, journals it durably, and relays
    /// it to peers. Returns its id (also for a transaction already pending).
    ///
    /// The journal commit runs on the calling thread (one fsync per call, no group commit), so
    /// that a synchronous caller such as the simulation harness needs no runtime; the HTTP API
    /// commits concurrent submissions together.
    pub fn submit_transaction(&self, tx: Transaction) -> Result<Hash, ServerError> {
        let core = self.core.as_ref().ok_or(ServerError::NotStarted)?;
        let id = tx.id();
        if core.admit_tx_now(tx.clone())? == Inserted::New {
            if let Some(n) = self.net_live() {
                n.broadcast_tx(&tx, None);
            }
        }
        Ok(id)
    }

    /// Number of pending transactions.
    pub fn pending_transaction_count(&self) -> usize {
        self.core.as_ref().map_or(0, |c| c.mempool().len())
    }

    /// The current slot (0 before start or before genesis time).
    pub fn current_slot(&self) -> u64 {
        self.core.as_ref().map_or(0, |c| c.current_slot())
    }

    /// The current epoch.
    pub fn current_epoch(&self) -> u64 {
        self.core
            .as_ref()
            .map_or(0, |c| c.slots.epoch_of_slot(c.current_slot()))
    }

    /// Blocks on the best chain, the genesis block included (height + 1); 0 before start.
    pub fn block_count(&self) -> u64 {
        self.core
            .as_ref()
            .map_or(0, |c| c.chain().height().saturating_add(1))
    }

    /// Index of the best block (0 before start).
    pub fn height(&self) -> u64 {
        self.core.as_ref().map_or(0, |c| c.chain().height())
    }

    /// Hash of the best block (zero before start).
    pub fn tip_hash(&self) -> Hash {
        self.core
            .as_ref()
            .map_or(Hash::ZERO, |c| c.chain().tip_hash())
    }

    /// A block of the best chain by index.
    pub fn block_at(&self, index: u64) -> Option<pp_ledger::Block> {
        crate::history::block_at(self.core.as_ref()?, index)
            .ok()
            .flatten()
    }

    /// Runs `f` with read access to the node's chain (best chain, side chains and the tip ledger
    /// state); `None` before the first start. The chain lock is held while `f` runs, so keep it
    /// short. Used by the deterministic simulator (`pp-sim`) to check invariants without HTTP.
    pub fn with_chain<R>(&self, f: impl FnOnce(&Chain<Ouroboros>) -> R) -> Option<R> {
        let core = self.core.as_ref()?;
        let chain = core.chain();
        Some(f(&chain))
    }

    /// Balance of an account on the best chain.
    pub fn balance(&self, wallet: &PublicKey) -> Result<u64, ServerError> {
        let core = self.core.as_ref().ok_or(ServerError::NotStarted)?;
        let c = core.chain();
        if !c.state().account_exists(wallet) {
            return Err(ServerError::UnknownAccount(*wallet));
        }
        Ok(c.state().balance(wallet))
    }

    /// The next nonce `wallet` should use, counting its pending transactions.
    pub fn next_nonce(&self, wallet: &PublicKey) -> Result<u64, ServerError> {
        let core = self.core.as_ref().ok_or(ServerError::NotStarted)?;
        let c = core.chain();
        let view = crate::node::LedgerView {
            state: c.state(),
            genesis_hash: core.genesis_hash,
            sigs: c.signature_cache(),
        };
        Ok(core.mempool().pending_nonce(&view, wallet))
    }

    /// The bound HTTP address, while running.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.running.as_ref()?.http_addr
    }

    /// The file holding the admin token (`data_dir/admin.token`), once started. Its content is
    /// the capability for the HTTP API's admin endpoints (`Authorization: Bearer <token>`).
    pub fn admin_token_path(&self) -> Option<&Path> {
        self.admin_token.as_ref().map(|(p, _)| p.as_path())
    }

    /// The admin token written at the last start (a new one at each start), once started.
    pub fn admin_token(&self) -> Option<&str> {
        self.admin_token.as_ref().map(|(_, t)| t.as_str())
    }

    /// The bound P2P address, while running with P2P.
    pub fn p2p_addr(&self) -> Option<SocketAddr> {
        self.running.as_ref()?.p2p_addr
    }

    /// The node's public key (its account); before the first start, the configured key or
    /// the dev key of a registered stakeholder named like the node, else the zero key.
    pub fn public_key(&self) -> PublicKey {
        if let Some(c) = &self.core {
            return c.key.public();
        }
        if let Some(k) = &self.config.key {
            return k.public();
        }
        let id = self.config.effective_node_id();
        let dev = dev_key(&id).public();
        if self
            .config
            .registrations
            .iter()
            .any(|r| r.id == id && r.key == dev)
        {
            return dev;
        }
        PublicKey::default()
    }

    /// The genesis in use; before the first start, the one that would be used if it can be known
    /// without touching the data dir (configured, or built from registrations), else a devnet
    /// genesis for [`Server::public_key`].
    pub fn genesis(&self) -> Genesis {
        if let Some(c) = &self.core {
            return c.genesis.clone();
        }
        if let Some(g) = &self.config.genesis {
            return g.clone();
        }
        if !self.config.registrations.is_empty() {
            if let Ok(g) = self.registered_genesis() {
                return g;
            }
        }
        self.apply_params(Genesis::devnet(
            &self.config.effective_node_id(),
            self.public_key(),
            self.config
                .genesis_time_ms
                .unwrap_or_else(|| self.clock.now_ms()),
        ))
    }

    /// The node's id.
    pub fn node_id(&self) -> String {
        self.core
            .as_ref()
            .map_or_else(|| self.config.effective_node_id(), |c| c.node_id.clone())
    }

    /// The Prometheus text exposition of this node's metrics.
    pub fn metrics_text(&self) -> String {
        self.core
            .as_ref()
            .map(|c| c.metrics_text())
            .unwrap_or_default()
    }

    /// True while running.
    pub fn is_running(&self) -> bool {
        self.running.is_some()
    }

    /// Graceful stop: ends the consensus loop and the other tasks, closes every peer connection,
    /// saves known peers and closes the database. Idempotent. The chain stays readable in memory.
    pub async fn shutdown(&mut self) {
        let Some(run) = self.running.take() else {
            return;
        };
        let _ = run.shutdown.send(true);
        if let Some(core) = &self.core {
            // Open `GET /events` streams end now, so the HTTP server drains at once.
            core.events.close();
        }
        stop_tasks(run.tasks).await;
        if let Some(core) = &self.core {
            if let Some(net) = core.net() {
                if let Err(e) = crate::tasks::save_bans(core, net.as_ref()) {
                    tracing::warn!(error = %e, "cannot save bans");
                }
                net.shutdown().await;
            }
            core.storage.close();
            tracing::info!(node = %core.node_id, height = core.chain().height(), "node stopped");
        }
    }
}

async fn stop_tasks(tasks: Vec<(&'static str, JoinHandle<()>)>) {
    for (name, mut h) in tasks {
        if tokio::time::timeout(TASK_STOP_TIMEOUT, &mut h)
            .await
            .is_err()
        {
            tracing::warn!(task = name, "task did not stop in time; aborting it");
            h.abort();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(run) = self.running.take() {
            // No await in drop: signal the tasks and abort them; the database closes when the
            // last handle on the node state goes away.
            let _ = run.shutdown.send(true);
            for (_, h) in run.tasks {
                h.abort();
            }
            if let Some(core) = &self.core {
                core.storage.close();
                // pp-net's tasks hold the listener; ask them to stop if a runtime is at hand.
                if let (Some(net), Ok(rt)) =
                    (core.net().cloned(), tokio::runtime::Handle::try_current())
                {
                    rt.spawn(async move { net.shutdown().await });
                }
            }
        }
        if let Some(dir) = self.temp_dir.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

fn read_genesis_file(dir: &Path) -> Result<Option<Genesis>, ServerError> {
    let path = dir.join(GENESIS_FILE);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(ServerError::io(&path, e)),
    };
    Genesis::from_json(&bytes)
        .map(Some)
        .map_err(|error| ServerError::BadGenesis {
            source_name: path.display().to_string(),
            error,
        })
}

/// Writes `genesis.json` atomically (temporary file, fsync, rename).
fn write_genesis_file(dir: &Path, g: &Genesis) -> Result<(), ServerError> {
    use std::io::Write as _;
    let path = dir.join(GENESIS_FILE);
    let tmp = dir.join(format!("{GENESIS_FILE}.tmp"));
    let mut f = std::fs::File::create(&tmp).map_err(|e| ServerError::io(&tmp, e))?;
    f.write_all(g.to_json_pretty().as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(|e| ServerError::io(&tmp, e))?;
    std::fs::rename(&tmp, &path).map_err(|e| ServerError::io(&path, e))
}
