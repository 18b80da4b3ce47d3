//! [`Server`]: the facade of one node. Its setters configure it; `start*` builds the node
//! ([`crate::builder`]) and launches it ([`crate::launch`]); its queries and operations call the
//! running node's API ([`crate::node`]); `shutdown` (or dropping it) stops it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use pp_ledger::{Chain, Genesis, Hash, KeyPair, PublicKey, Transaction};
use pp_net::{TcpTransport, Transport};
use pp_ouroboros::Ouroboros;
use tokio::sync::watch;

use crate::blocking::{Blocking, TokioBlocking};
use crate::builder::Builder;
use crate::clock::{Clock, SystemClock};
use crate::config::{NetworkConfig, Registration, ServerConfig};
use crate::error::ServerError;
use crate::keys::dev_key;
use crate::launch::Running;
use crate::node::{ConnectError, Core};
use crate::storage::StorageFault;

pub use crate::builder::{DB_FILE, GENESIS_FILE, REGISTERED_BALANCE};

/// How long [`Server::connect_to_peer`] waits for the handshake.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

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
    /// Where CPU-bound work runs; `None`: a [`CpuPool`](crate::CpuPool) of one thread per
    /// core at `config.cpu_priority`, built at each start and owned by the running node.
    cpu: Option<Arc<dyn Blocking>>,
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
            cpu: None,
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

    /// How the node's CPU pool is scheduled (takes effect at the next start; see
    /// [`CpuPriority`](crate::CpuPriority)). Ignored when [`Server::set_blocking`] gave the pools.
    pub fn set_cpu_priority(&mut self, priority: crate::CpuPriority) {
        self.config.cpu_priority = priority;
    }

    /// Serves the HTTP API on a tokio runtime of its own with `threads` workers, or on the
    /// node's runtime with 0, the default (takes effect at the next start; see
    /// [`ServerConfig::http_threads`](crate::ServerConfig::http_threads)). A simulation keeps 0:
    /// another runtime does not run in its virtual time.
    pub fn set_http_threads(&mut self, threads: usize) {
        self.config.http_threads = threads;
    }

    /// Replaces where blocking work runs, both kinds: the jobs that wait (storage commits and
    /// reads; by default tokio's blocking pool) and the CPU-bound ones (signature batches,
    /// block application, large frames; by default a [`CpuPool`](crate::CpuPool) of one
    /// thread per core). A simulation passes [`InlineBlocking`](crate::InlineBlocking), since
    /// neither pool runs in its virtual time.
    pub fn set_blocking(&mut self, blocking: Arc<dyn Blocking>) {
        self.cpu = Some(blocking.clone());
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
        self.core.as_ref()?.storage_failure().map(str::to_string)
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
        let (shutdown, shutdown_rx) = watch::channel(false);
        let cpu: Arc<dyn Blocking> = match &self.cpu {
            Some(cpu) => cpu.clone(),
            None => Arc::new(
                crate::CpuPool::per_core_with_priority("pp-cpu", self.config.cpu_priority)
                    .map_err(|e| ServerError::io(std::path::Path::new("(cpu pool threads)"), e))?,
            ),
        };
        // The storage writer's commits (a few ms of CPU each for a block of 1,000 transfers)
        // run at the CPU pool's priority too, on one thread of their own (the writer commits
        // one group at a time): at `normal` on tokio's blocking pool as before.
        let commit: Arc<dyn Blocking> = match (&self.cpu, self.config.cpu_priority) {
            (None, p) if p != crate::CpuPriority::Normal => Arc::new(
                crate::CpuPool::with_priority(1, "pp-commit", p).map_err(|e| {
                    ServerError::io(std::path::Path::new("(storage commit thread)"), e)
                })?,
            ),
            _ => self.blocking.clone(),
        };
        let built = self.builder(&cpu, &commit).build(&data_dir, shutdown_rx)?;
        let core = built.core.clone();
        let running = crate::launch::launch(
            built,
            &self.config,
            self.clock.now_ms(),
            shutdown,
            &admin_token,
            transport,
        )
        .await?;
        self.core = Some(core);
        self.running = Some(running);
        Ok(())
    }

    fn builder<'a>(
        &'a self,
        cpu: &'a Arc<dyn Blocking>,
        commit: &'a Arc<dyn Blocking>,
    ) -> Builder<'a> {
        Builder {
            config: &self.config,
            clock: &self.clock,
            blocking: &self.blocking,
            cpu,
            commit,
            fault: &self.fault,
        }
    }

    fn data_dir(&mut self) -> PathBuf {
        if let Some(d) = &self.config.data_dir {
            return d.clone();
        }
        let d = self.temp_dir.get_or_insert_with(fresh_temp_dir).clone();
        d
    }

    /// Dials a peer and completes the handshake; it is also remembered and redialed.
    pub async fn connect_to_peer(&self, addr: &str) -> Result<(), ServerError> {
        let core = self.live()?;
        match core.connect(addr, CONNECT_TIMEOUT).await {
            Ok(_) => Ok(()),
            Err(ConnectError::P2pDisabled) => Err(ServerError::P2pDisabled),
            Err(ConnectError::Net(e)) => Err(ServerError::Net(e)),
            Err(ConnectError::Timeout(t)) => {
                Err(ServerError::Net(pp_net::NetError::HandshakeTimeout {
                    ms: u64::try_from(t.as_millis()).unwrap_or(u64::MAX),
                }))
            }
        }
    }

    /// The node, while it runs.
    fn live(&self) -> Result<&Arc<Core>, ServerError> {
        match (&self.core, &self.running) {
            (Some(core), Some(_)) => Ok(core),
            _ => Err(ServerError::NotStarted),
        }
    }

    /// Number of connected peers.
    pub fn peer_count(&self) -> usize {
        self.net_live().peer_count()
    }

    /// Node ids of the connected peers.
    pub fn connected_peers(&self) -> Vec<String> {
        let peers = self.net_live().peers();
        peers.into_iter().map(|p| p.node_id).collect()
    }

    /// The connected peers as the network sees them (address, direction, key, tip), for
    /// harnesses that check who a node is connected to (pp-sim's eclipse scenario).
    pub fn peer_infos(&self) -> Vec<pp_net::PeerInfo> {
        self.net_live().peers()
    }

    /// Sizes of the address book (entries by table, groups); zero without P2P.
    pub fn book_counts(&self) -> pp_net::BookCounts {
        self.net_live().book_counts()
    }

    /// The network's cumulative counters (bytes and messages by type and direction, compact
    /// block outcomes, ...), the numbers behind the `pp_p2p_*` metrics; zero without P2P.
    pub fn net_stats(&self) -> pp_net::NetStatsSnapshot {
        self.net_live().stats()
    }

    /// The network while running; a no-op one without P2P, before start and after shutdown.
    fn net_live(&self) -> &dyn crate::net::PeerNet {
        static STOPPED: crate::net::NoopNet = crate::net::NoopNet;
        match self.live() {
            Ok(c) => c.net().as_ref(),
            Err(_) => &STOPPED,
        }
    }

    /// True if the node is running with P2P enabled.
    pub fn is_p2p_enabled(&self) -> bool {
        self.live().is_ok_and(|c| c.p2p_enabled())
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
        core.submit_tx_now(tx)?;
        Ok(id)
    }

    /// Number of pending transactions.
    pub fn pending_transaction_count(&self) -> usize {
        self.core.as_ref().map_or(0, |c| c.pending_count())
    }

    /// The current slot (0 before start or before genesis time).
    pub fn current_slot(&self) -> u64 {
        self.core.as_ref().map_or(0, |c| c.current_slot())
    }

    /// The current epoch.
    pub fn current_epoch(&self) -> u64 {
        self.core
            .as_ref()
            .map_or(0, |c| c.slots().epoch_of_slot(c.current_slot()))
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
        self.core.as_ref()?.block_at(index).ok().flatten()
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
        Ok(core.pending_nonce(wallet))
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
        match &self.core {
            Some(c) => c.public_key(),
            // A preview builds nothing that runs jobs.
            None => self.builder(&self.blocking, &self.blocking).key_preview(),
        }
    }

    /// The genesis in use; before the first start, the one that would be used if it can be known
    /// without touching the data dir (configured, or built from registrations), else a devnet
    /// genesis for [`Server::public_key`].
    pub fn genesis(&self) -> Genesis {
        match &self.core {
            Some(c) => c.genesis().clone(),
            None => self
                .builder(&self.blocking, &self.blocking)
                .genesis_preview(),
        }
    }

    /// The node's id.
    pub fn node_id(&self) -> String {
        self.core.as_ref().map_or_else(
            || self.config.effective_node_id(),
            |c| c.node_id().to_string(),
        )
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
        if let Some(core) = &self.core {
            run.stop(core).await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let (Some(run), Some(core)) = (self.running.take(), &self.core) {
            // No await in drop: signal the tasks and abort them; the database closes when the
            // last handle on the node state goes away.
            run.abort(core);
        }
        if let Some(dir) = self.temp_dir.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}
