//! Network configuration: identity, limits and timeouts, with the documented defaults.

use std::time::Duration;

use pp_ledger::Hash;

/// The wire protocol version announced in `hello`; peers with another version are refused.
pub const PROTOCOL_VERSION: u32 = 1;
/// Default maximum frame payload: 8 MiB.
pub const DEFAULT_MAX_FRAME_BYTES: usize = 8 * 1024 * 1024;

/// Everything a [`crate::Network`] needs to know before it starts.
#[derive(Debug, Clone)]
pub struct NetConfig {
    /// This node's id, announced in `hello`; also used to detect self-connections.
    pub node_id: String,
    /// The genesis hash that defines the network; peers with another one are refused.
    pub genesis_hash: Hash,
    /// Protocol version announced (default [`PROTOCOL_VERSION`]).
    pub protocol_version: u32,
    /// Where to listen, e.g. `"127.0.0.1:0"` (ephemeral port) or `"0.0.0.0:7000"`.
    pub listen_addr: String,
    /// The p2p port announced in `hello` (default: the port actually bound).
    pub advertised_port: Option<u16>,
    /// Maximum simultaneous connections, inbound and outbound together (default 32).
    pub max_peers: usize,
    /// Maximum frame payload in bytes (default [`DEFAULT_MAX_FRAME_BYTES`]).
    pub max_frame_bytes: usize,
    /// Time allowed for connect + `hello` exchange (default 10 s).
    pub handshake_timeout: Duration,
    /// Time allowed for a response to a request (default 10 s).
    pub request_timeout: Duration,
    /// How often a `ping` is sent on a connection (default 10 s).
    pub ping_interval: Duration,
    /// A connection with no frame received for this long is closed (default 30 s).
    pub idle_timeout: Duration,
    /// Per-peer bounded send queue, in frames (default 256).
    pub outbound_queue: usize,
    /// Capacity of the event channel to the owner (default 1024).
    pub event_queue: usize,
    /// Misbehaviour score at which a node is banned (default 100).
    pub ban_threshold: i32,
    /// How long a ban lasts (default 1 h).
    pub ban_duration: Duration,
    /// First redial delay after a failed dial; doubled per failure (default 1 s).
    pub dial_backoff_base: Duration,
    /// Cap on the redial delay (default 5 min).
    pub dial_backoff_max: Duration,
    /// How often the dialer looks for known addresses to dial (default 1 s).
    pub dial_interval: Duration,
    /// Maximum number of remembered peer addresses (default 1000).
    pub max_known_addrs: usize,
}

impl NetConfig {
    /// A configuration with the documented defaults.
    pub fn new(
        node_id: impl Into<String>,
        genesis_hash: Hash,
        listen_addr: impl Into<String>,
    ) -> NetConfig {
        NetConfig {
            node_id: node_id.into(),
            genesis_hash,
            protocol_version: PROTOCOL_VERSION,
            listen_addr: listen_addr.into(),
            advertised_port: None,
            max_peers: 32,
            max_frame_bytes: DEFAULT_MAX_FRAME_BYTES,
            handshake_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(10),
            ping_interval: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(30),
            outbound_queue: 256,
            event_queue: 1024,
            ban_threshold: 100,
            ban_duration: Duration::from_secs(3600),
            dial_backoff_base: Duration::from_secs(1),
            dial_backoff_max: Duration::from_secs(300),
            dial_interval: Duration::from_secs(1),
            max_known_addrs: 1000,
        }
    }
}
