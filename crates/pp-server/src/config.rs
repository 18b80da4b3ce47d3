//! Configuration of a node: [`ServerConfig`] and its peer-to-peer part [`NetworkConfig`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use pp_ledger::{Genesis, KeyPair, PublicKey};

use crate::mempool::{DEFAULT_MAX_PER_SENDER, DEFAULT_MAX_TXS, DEFAULT_MIN_FEE};

/// Default node id when none is given.
pub const DEFAULT_NODE_ID: &str = "node0";
/// Default PoW difficulty of a network created by this node.
pub const DEFAULT_DIFFICULTY: u32 = 2;
/// Default maximum of connected peers.
pub const DEFAULT_MAX_PEERS: usize = 32;

/// The peer-to-peer part of the configuration. The default has P2P off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkConfig {
    /// Whether to listen for and dial peers at all.
    pub enable_p2p: bool,
    /// The human-readable node id announced to peers (and the dev-stakeholder name, see
    /// [`dev_key`](crate::dev_key)). Empty: use [`ServerConfig::node_id`].
    pub node_id: String,
    /// Peers to dial at start (`"host:port"`); they are redialed with backoff while an
    /// outbound slot is free.
    pub bootstrap_peers: Vec<String>,
    /// The address to listen on for peers (IP only; the port is `p2p_port`).
    pub listen_addr: String,
    /// The peer-to-peer port; 0 picks a free one (see [`Server::p2p_addr`](crate::Server::p2p_addr)).
    pub p2p_port: u16,
    /// Connection slots: outbound `min(8, max_peers / 2)` (at least 1), inbound the rest (at
    /// least 1); see `pp_net::NetConfig::max_outbound`.
    pub max_peers: usize,
    /// Ask peers for inventory and compact-block relay (docs/protocol.md §14; default true).
    /// Off, the node gets and sends every transaction and block in full (`new_tx`,
    /// `new_block`); peers that ask for compact relay still get it from this node.
    pub compact_relay: bool,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        NetworkConfig {
            enable_p2p: false,
            node_id: String::new(),
            bootstrap_peers: Vec::new(),
            listen_addr: "127.0.0.1".into(),
            p2p_port: 0,
            max_peers: DEFAULT_MAX_PEERS,
            compact_relay: true,
        }
    }
}

impl NetworkConfig {
    /// P2P on, listening on 127.0.0.1 at `p2p_port` (0 = any free port), with `node_id`.
    pub fn p2p(node_id: &str, p2p_port: u16) -> NetworkConfig {
        NetworkConfig {
            enable_p2p: true,
            node_id: node_id.into(),
            p2p_port,
            ..NetworkConfig::default()
        }
    }

    /// The same, dialing `peers` at start.
    pub fn with_bootstrap(mut self, peers: &[&str]) -> NetworkConfig {
        self.bootstrap_peers = peers.iter().map(|s| s.to_string()).collect();
        self
    }

    /// `listen_addr:p2p_port`, bracketing IPv6 addresses.
    pub fn listen_socket(&self) -> String {
        if self.listen_addr.contains(':') && !self.listen_addr.starts_with('[') {
            format!("[{}]:{}", self.listen_addr, self.p2p_port)
        } else {
            format!("{}:{}", self.listen_addr, self.p2p_port)
        }
    }
}

/// A stakeholder registered with [`Server::register_stakeholder`](crate::Server::register_stakeholder)
/// for the genesis of a network this node creates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    /// The stakeholder id (node id).
    pub id: String,
    /// Its key.
    pub key: PublicKey,
    /// Its stake at genesis.
    pub stake: u64,
}

/// Everything a [`Server`](crate::Server) needs. `ServerConfig::default()` is a single-node devnet
/// in a fresh temporary data dir, HTTP on an ephemeral loopback port, P2P off.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Where `chain.redb`, `genesis.json` and `node.key` live. `None`: a fresh temporary directory,
    /// removed when the server is dropped.
    pub data_dir: Option<PathBuf>,
    /// Use exactly this genesis (highest priority, see the crate docs for the resolution order).
    pub genesis: Option<Genesis>,
    /// Use this node key instead of `data_dir/node.key`.
    pub key: Option<KeyPair>,
    /// Where to serve the HTTP API; `None` disables it.
    pub http_addr: Option<SocketAddr>,
    /// Peer-to-peer settings.
    pub network: NetworkConfig,
    /// The node's human-readable id (overridden by a non-empty `network.node_id`).
    pub node_id: String,
    /// PoW difficulty of a genesis built by this node.
    pub difficulty: u32,
    /// Slot duration of a genesis built by this node (default 1 s).
    pub slot_duration: Option<Duration>,
    /// Genesis time of a genesis built from registrations (default: now).
    pub genesis_time_ms: Option<u64>,
    /// Stakeholders of a genesis built by this node.
    pub registrations: Vec<Registration>,
    /// Bound on pending transactions.
    pub mempool_max_txs: usize,
    /// Bound on pending transactions per sender.
    pub mempool_max_per_sender: usize,
    /// Minimum fee of a transaction this node admits to its mempool: node policy, not a
    /// consensus rule (blocks holding cheaper transactions stay valid).
    pub mempool_min_fee: u64,
    /// Most blocks requested per `get_blocks` during sync.
    pub sync_batch: u32,
    /// Size of the database's page cache in MiB (default
    /// [`DEFAULT_DB_CACHE_BYTES`](crate::storage::DEFAULT_DB_CACHE_BYTES), see `storage.rs`).
    pub db_cache_mb: u64,
    /// Praos networks: use this VRF secret seed instead of `data_dir/vrf.key` (see
    /// [`crate::praos`]).
    pub vrf_seed: Option<[u8; 32]>,
    /// Leader mode of a genesis built by this node (from registrations or as a single-node
    /// devnet): in praos mode every registered stakeholder gets its development VRF key
    /// ([`crate::praos::dev_vrf_key`]) and `f` = [`pp_ledger::DEVNET_ACTIVE_SLOT_COEFF`].
    pub leader_mode: pp_ledger::LeaderMode,
    /// How the node's CPU pool (signature batches, block application, large frames) is
    /// scheduled against its runtime workers and the machine: see [`crate::CpuPriority`]
    /// (default `Normal`).
    pub cpu_priority: crate::CpuPriority,
    /// Worker threads of a tokio runtime of the HTTP API's own, started with the node and
    /// stopped with it; 0 (the default) serves the API on the runtime that runs the node. On a
    /// runtime of its own the API answers while the node's workers are busy (a request never
    /// waits behind a block import or a large frame on a worker), and at most this many cores
    /// (plus [`HTTP_BLOCKING_THREADS`](crate::HTTP_BLOCKING_THREADS) for storage reads) serve
    /// it, whatever the request load.
    pub http_threads: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            data_dir: None,
            genesis: None,
            key: None,
            http_addr: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
            network: NetworkConfig::default(),
            node_id: DEFAULT_NODE_ID.into(),
            difficulty: DEFAULT_DIFFICULTY,
            slot_duration: None,
            genesis_time_ms: None,
            registrations: Vec::new(),
            mempool_max_txs: DEFAULT_MAX_TXS,
            mempool_max_per_sender: DEFAULT_MAX_PER_SENDER,
            mempool_min_fee: DEFAULT_MIN_FEE,
            sync_batch: 200,
            db_cache_mb: (crate::storage::DEFAULT_DB_CACHE_BYTES >> 20) as u64,
            vrf_seed: None,
            leader_mode: pp_ledger::LeaderMode::Classic,
            cpu_priority: crate::CpuPriority::Normal,
            http_threads: 0,
        }
    }
}

impl ServerConfig {
    /// A devnet configuration storing its data in `data_dir`.
    pub fn new(data_dir: impl Into<PathBuf>) -> ServerConfig {
        ServerConfig {
            data_dir: Some(data_dir.into()),
            ..ServerConfig::default()
        }
    }

    /// The node id in effect: `network.node_id` if set, else `node_id`, else `node0`.
    pub fn effective_node_id(&self) -> String {
        if !self.network.node_id.is_empty() {
            self.network.node_id.clone()
        } else if !self.node_id.is_empty() {
            self.node_id.clone()
        } else {
            DEFAULT_NODE_ID.into()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_network_config_has_p2p_off_on_loopback() {
        let n = NetworkConfig::default();
        assert!(!n.enable_p2p);
        assert!(n.compact_relay, "compact relay is on by default");
        assert_eq!(n.listen_socket(), "127.0.0.1:0");
        let v6 = NetworkConfig {
            listen_addr: "::1".into(),
            p2p_port: 9,
            ..n
        };
        assert_eq!(v6.listen_socket(), "[::1]:9");
    }

    #[test]
    fn network_node_id_overrides_server_node_id() {
        let mut c = ServerConfig::default();
        assert_eq!(c.effective_node_id(), "node0");
        c.node_id = "a".into();
        assert_eq!(c.effective_node_id(), "a");
        c.network.node_id = "b".into();
        assert_eq!(c.effective_node_id(), "b");
    }
}
