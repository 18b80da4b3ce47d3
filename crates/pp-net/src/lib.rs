//! # pp-net
//!
//! The pp-ledger peer-to-peer layer: length-prefixed JSON framing, the wire messages, the
//! `hello` handshake, FetchClient (requests with ids and timeouts over persistent connections),
//! FetchServer (accept loop bounded by `max_peers`), the peer table with scores, bans and dial
//! backoff, and a transport seam so the deterministic simulator can drive it. The wire format is
//! specified in `docs/protocol.md`.
//!
//! ```no_run
//! use std::sync::Arc;
//! use pp_ledger::{Block, Hash, SignedHeader};
//! use pp_net::{ChainView, NetConfig, Network, TcpTransport};
//!
//! struct Empty;
//! impl ChainView for Empty {
//!     fn tip(&self) -> (u64, Hash) { (0, Hash::ZERO) }
//!     fn get_blocks(&self, _: u64, _: u32) -> Vec<Block> { Vec::new() }
//!     fn get_headers(&self, _: &[Hash], _: u32) -> Vec<SignedHeader> { Vec::new() }
//! }
//!
//! # async fn demo() -> Result<(), pp_net::NetError> {
//! let genesis = Hash::sha256(b"my network");
//! let (a, _events_a) = Network::start(NetConfig::new("a", genesis, "127.0.0.1:0"), TcpTransport, Arc::new(Empty)).await?;
//! let (b, _events_b) = Network::start(NetConfig::new("b", genesis, "127.0.0.1:0"), TcpTransport, Arc::new(Empty)).await?;
//! let peer = b.connect(&a.local_addr().to_string()).await?;
//! let blocks = b.get_blocks(peer.id, 0, 10).await?;
//! assert!(blocks.is_empty());
//! a.shutdown().await;
//! b.shutdown().await;
//! # Ok(()) }
//! ```

pub mod addrman;
pub mod admission;
pub mod blocking;
mod chain_view;
mod client;
pub mod codec;
pub mod compact;
mod config;
mod connection;
pub mod discovery;
mod error;
pub mod loglimit;
pub mod message;
pub mod misbehaviour;
mod network;
pub mod noise;
pub mod peer_table;
pub mod relay;
mod relay_tasks;
pub mod reputation;
mod server;
pub mod stats;
mod transport;

pub use addrman::{AddrBook, AddrStore, BookCounts, BookSnapshot, StoreError};
pub use blocking::{Blocking, CpuPool, CpuPriority, InlineBlocking, TokioBlocking};
pub use chain_view::ChainView;
pub use codec::{decode_message, encode_message, FrameCodec, MessageCodec};
pub use config::{
    MessageRates, NetConfig, DEFAULT_MAX_FRAME_BYTES, OFFLOAD_FRAME_BYTES, PROTOCOL_VERSION,
};
pub use error::NetError;
pub use message::{codes, Hello, Message};
pub use misbehaviour::Misbehaviour;
pub use network::{BanInfo, NetEvent, Network};
pub use noise::NoiseIdentity;
pub use peer_table::{AddrInfo, AddrState, Direction, PeerId, PeerInfo, PeerStats};
pub use reputation::BanTarget;
pub use stats::NetStatsSnapshot;
pub use transport::{TcpTransport, Transport};
