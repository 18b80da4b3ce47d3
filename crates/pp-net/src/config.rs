//! Network configuration: identity, limits and timeouts, with the documented defaults.

use std::sync::Arc;
use std::time::Duration;

use pp_ledger::{Hash, KeyPair};

use crate::blocking::{Blocking, TokioBlocking};

/// The wire protocol version announced in `hello`; peers with another version are refused.
/// Version 2: frames run inside a Noise session whose handshake proves each side's identity key.
/// Version 3: transactions relayed by inventory (`inv_txs`, `get_txs`, `txs`) and blocks as
/// compact blocks (`compact_relay`, `compact_block`, `get_block_txs`, `block_txs`).
/// Version 4: a `headers` answer carries each header with its block's signature.
/// Version 5: `hello` may say `headers_only` (a light client): its peer then pushes it no block,
/// compact block or transaction, and it pulls headers with `get_headers`.
/// Version 6: a block is announced to a `headers_only` peer as `new_header` (its signed header).
pub const PROTOCOL_VERSION: u32 = 6;
/// Default maximum frame payload: 8 MiB.
pub const DEFAULT_MAX_FRAME_BYTES: usize = 8 * 1024 * 1024;

/// Everything a [`crate::Network`] needs to know before it starts.
#[derive(Debug, Clone)]
pub struct NetConfig {
    /// This node's human-readable label, announced in `hello` and shown in logs. It decides
    /// nothing: peers are told apart by their identity keys.
    pub node_id: String,
    /// This node's network identity (an ed25519 key pair; a node uses its `node.key`). Peers,
    /// duplicates, self-connections, scores and bans are keyed by identity keys that the Noise
    /// handshake proves (default: a fresh random key).
    pub identity: KeyPair,
    /// The genesis hash that defines the network; peers with another one are refused.
    pub genesis_hash: Hash,
    /// Protocol version announced (default [`PROTOCOL_VERSION`]).
    pub protocol_version: u32,
    /// Where to listen, e.g. `"127.0.0.1:0"` (ephemeral port) or `"0.0.0.0:7000"`.
    pub listen_addr: String,
    /// The p2p port announced in `hello` (default: the port actually bound).
    pub advertised_port: Option<u16>,
    /// Connection slots, split into outbound and inbound by [`NetConfig::max_outbound`] and
    /// [`NetConfig::max_inbound`] (default 32: 8 outbound, 24 inbound).
    pub max_peers: usize,
    /// Most outbound connections (default 8); never counted against inbound. The effective
    /// limit is at most half of `max_peers` (at least 1), see [`NetConfig::max_outbound`].
    pub outbound_slots: usize,
    /// Most inbound connections from one address group (a /16 of a public IPv4 address, a /32
    /// of an IPv6 address, the exact address for loopback and private ranges; default 8).
    pub max_inbound_per_group: usize,
    /// An inbound peer connected for less than this, alone in its address group, is never
    /// evicted to make room for a newcomer (default 10 s): when more nodes want a full node's
    /// slots than it has, a slot changes hands at most once per this period, instead of going
    /// round the contenders as fast as they redial. See
    /// [`crate::admission::select_eviction`].
    pub eviction_min_age: Duration,
    /// Most connections still in the handshake, in total (default 32).
    pub max_handshaking: usize,
    /// Most connections still in the handshake from one IP address (default 4).
    pub max_handshaking_per_ip: usize,
    /// Maximum frame payload in bytes (default [`DEFAULT_MAX_FRAME_BYTES`]).
    pub max_frame_bytes: usize,
    /// Time allowed for connect + `hello` exchange (default 10 s).
    pub handshake_timeout: Duration,
    /// Time allowed for a response to a request (default 10 s).
    pub request_timeout: Duration,
    /// How often a `ping` is sent on a connection (default 10 s).
    pub ping_interval: Duration,
    /// A connection with no frame received for this long is closed (default 30 s). A peer that
    /// does not answer a keepalive `ping` within two ping intervals is closed sooner.
    pub idle_timeout: Duration,
    /// Per-peer send queue, in frames (default 1024); see also `outbound_queue_bytes`.
    pub outbound_queue: usize,
    /// Per-peer send queue, in bytes of frames waiting to be written (default 4 MiB). A full
    /// queue makes answers wait (so we stop reading that peer's requests) and drops broadcasts;
    /// a frame larger than the budget is sent alone.
    pub outbound_queue_bytes: usize,
    /// Most bytes of blocks in one `blocks` answer (default 2 MiB; the first block is always
    /// sent if it fits in a frame). Bounds the memory a `get_blocks` can make us allocate.
    pub max_blocks_answer_bytes: usize,
    /// Most of our own requests in flight on one connection (default 64).
    pub max_requests_in_flight: usize,
    /// Sustained unsolicited inbound bytes per second per peer (requests, announcements and
    /// anything that is not an answer to our request; default 4 MiB/s). The burst is twice the
    /// maximum frame. A peer over its budget is not read until the budget allows it.
    pub inbound_bytes_per_sec: u32,
    /// Messages per second per peer and type (`new_tx`, `get_blocks`, `get_headers`,
    /// `get_peers`); see [`MessageRates`].
    pub message_rates: MessageRates,
    /// Capacity of the event channel to the owner (default 1024).
    pub event_queue: usize,
    /// Misbehaviour score at which a node (or an IP address) is banned (default 100).
    pub ban_threshold: i32,
    /// A misbehaviour score not added to for this long is forgotten (default 1 h).
    pub score_ttl: Duration,
    /// Most identities and addresses whose scores and bans are remembered; the least recently
    /// touched are forgotten first (default 4096 each), so fresh identities cannot grow memory.
    pub max_tracked_offenders: usize,
    /// How long a ban lasts (default 1 h).
    pub ban_duration: Duration,
    /// First redial delay after a failed dial; doubled per failure (default 1 s).
    pub dial_backoff_base: Duration,
    /// Cap on the redial delay (default 5 min).
    pub dial_backoff_max: Duration,
    /// How often the dialer looks for known addresses to dial (default 1 s).
    pub dial_interval: Duration,
    /// Maximum number of configured peer addresses, those given by the operator and dialed
    /// with backoff for as long as the node runs (default 1000). Discovered addresses live in
    /// the address book, whose size is fixed by its tables.
    pub max_known_addrs: usize,
    /// Most automatic dials and feelers in flight at once (default 3). A dial holds an outbound
    /// slot only once its handshake is complete.
    pub max_dials: usize,
    /// Time allowed for an automatic dial or a feeler: TCP connect, Noise handshake and `hello`
    /// exchange together (default 5 s).
    pub dial_timeout: Duration,
    /// How often a feeler dials a new address of the book to promote it to tried (default
    /// 2 min). Addresses seen on inbound connections are felt as they come (one at a time).
    pub feeler_interval: Duration,
    /// How often one outbound peer is asked for addresses (default 5 min); every outbound
    /// peer is also asked once when it connects.
    pub peer_exchange_interval: Duration,
    /// How often the address book is saved to its store (default 5 min; also at shutdown).
    pub book_save_interval: Duration,
    /// Ask peers for inventory and compact-block relay (send `compact_relay`; default true).
    /// A node that does not gets every transaction and block in full (`new_tx`, `new_block`).
    pub compact_relay: bool,
    /// Say `headers_only` in `hello` (default false): peers then push this node no
    /// `new_block`, `compact_block`, `new_tx` or `inv_txs`, only a `new_header` (the signed
    /// header) for each block they relay, delivered as [`crate::NetEvent::NewHeader`]; it asks
    /// `get_headers` for anything else. A light client sets it: it takes headers only, so every
    /// block and transaction pushed to it would be bytes read, decrypted, decoded and dropped.
    /// Such a node sends no `compact_relay` either. A node without it takes a `new_header` as
    /// a protocol violation (no honest peer sends it one).
    pub headers_only: bool,
    /// How often the transaction ids waiting for each peer go out in an `inv_txs` (default
    /// 100 ms): ids announced together share a frame.
    pub inv_interval: Duration,
    /// The unix time (ms) now, from the node's clock; `None`: the system clock. Read once at
    /// start: later timestamps (`PeerInfo::connected_at_ms`, the address book's times, ban
    /// expiries) advance with tokio's `Instant`, so a simulation driving tokio's time replays
    /// them exactly.
    pub unix_time_ms: Option<u64>,
    /// Where the network decodes frames longer than [`OFFLOAD_FRAME_BYTES`] and builds
    /// `blocks` and `headers` answers (default: tokio's blocking pool; a simulation sets
    /// [`InlineBlocking`](crate::InlineBlocking)). A node passes its own pool, so that one
    /// seam carries all of its blocking work.
    pub blocking: Arc<dyn Blocking>,
    /// How many of those jobs may run at once (default: the number of cores, at least 1).
    /// Each holds up to `max_blocks_answer_bytes` of answer, or a frame and its message.
    pub max_offloaded_jobs: usize,
}

/// Frames at least this long (64 KiB) are decoded on [`NetConfig::blocking`], not on the
/// connection's task: a runtime worker that parses a 2 MiB `blocks` answer in one poll keeps
/// every task queued behind it waiting for milliseconds. Shorter frames (pings, transactions,
/// compact blocks, announcements) cost less to decode than the hand-off.
pub const OFFLOAD_FRAME_BYTES: usize = 64 * 1024;

impl NetConfig {
    /// A configuration with the documented defaults.
    pub fn new(
        node_id: impl Into<String>,
        genesis_hash: Hash,
        listen_addr: impl Into<String>,
    ) -> NetConfig {
        NetConfig {
            node_id: node_id.into(),
            identity: KeyPair::from_seed(rand::random::<[u8; 32]>()),
            genesis_hash,
            protocol_version: PROTOCOL_VERSION,
            listen_addr: listen_addr.into(),
            advertised_port: None,
            max_peers: 32,
            outbound_slots: 8,
            max_inbound_per_group: 8,
            eviction_min_age: Duration::from_secs(10),
            max_handshaking: 32,
            max_handshaking_per_ip: 4,
            max_frame_bytes: DEFAULT_MAX_FRAME_BYTES,
            handshake_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(10),
            ping_interval: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(30),
            outbound_queue: 1024,
            outbound_queue_bytes: 4 * 1024 * 1024,
            max_blocks_answer_bytes: 2 * 1024 * 1024,
            max_requests_in_flight: 64,
            inbound_bytes_per_sec: 4 * 1024 * 1024,
            message_rates: MessageRates::default(),
            event_queue: 1024,
            ban_threshold: 100,
            score_ttl: Duration::from_secs(3600),
            max_tracked_offenders: 4096,
            ban_duration: Duration::from_secs(3600),
            dial_backoff_base: Duration::from_secs(1),
            dial_backoff_max: Duration::from_secs(300),
            dial_interval: Duration::from_secs(1),
            max_known_addrs: 1000,
            max_dials: 3,
            dial_timeout: Duration::from_secs(5),
            feeler_interval: Duration::from_secs(120),
            peer_exchange_interval: Duration::from_secs(300),
            book_save_interval: Duration::from_secs(300),
            compact_relay: true,
            headers_only: false,
            unix_time_ms: None,
            blocking: Arc::new(TokioBlocking),
            max_offloaded_jobs: std::thread::available_parallelism().map_or(1, |n| n.get()),
            inv_interval: Duration::from_millis(100),
        }
    }
}

impl NetConfig {
    /// Use `identity` as this node's network identity.
    pub fn with_identity(mut self, identity: KeyPair) -> NetConfig {
        self.identity = identity;
        self
    }

    /// The outbound limit: `outbound_slots`, but at most half of `max_peers` and at least 1.
    pub fn max_outbound(&self) -> usize {
        self.outbound_slots.min(self.max_peers / 2).max(1)
    }

    /// The inbound limit: the slots of `max_peers` that outbound does not take (at least 1).
    pub fn max_inbound(&self) -> usize {
        self.max_peers.saturating_sub(self.max_outbound()).max(1)
    }

    /// The outbound queue budget in bytes (`outbound_queue_bytes`, at least 1). A frame larger
    /// than the whole budget is still sent, alone, when the queue is empty.
    pub fn queue_bytes(&self) -> usize {
        self.outbound_queue_bytes.max(1)
    }
}

/// Per-peer message budgets, in messages per second; the burst allowed is twice the rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageRates {
    /// `new_tx` announcements (default 10,000/s: twice what the rules let the chain include).
    pub new_tx: u32,
    /// `get_blocks` requests (default 20/s).
    pub get_blocks: u32,
    /// `get_headers` requests (default 20/s).
    pub get_headers: u32,
    /// `get_peers` requests (default 1/s).
    pub get_peers: u32,
    /// `inv_txs` announcements (default 100/s, up to 1,000 ids each).
    pub inv_txs: u32,
    /// `get_txs` requests (default 20/s, up to 1,000 ids each).
    pub get_txs: u32,
    /// `get_block_txs` requests (default 20/s).
    pub get_block_txs: u32,
}

impl Default for MessageRates {
    fn default() -> Self {
        MessageRates {
            new_tx: 10_000,
            get_blocks: 20,
            get_headers: 20,
            get_peers: 1,
            inv_txs: 100,
            get_txs: 20,
            get_block_txs: 20,
        }
    }
}
