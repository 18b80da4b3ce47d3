//! # pp-server
//!
//! The pp-ledger node: [`Server`] ties the chain (`pp-ledger`), the consensus rules
//! (`pp-ouroboros`) and the peer-to-peer network (`pp-net`) to a mempool, durable storage (redb),
//! a consensus loop that produces a block when this node leads the slot, block/transaction gossip,
//! chain sync from peers, and an HTTP API with Prometheus metrics.
//!
//! At start the genesis is chosen in this order:
//! 1. an explicit one ([`Server::set_genesis`], [`ServerConfig::genesis`]);
//! 2. `genesis.json` already in the data dir;
//! 3. one built from [`Server::register_stakeholder`] calls;
//! 4. a devnet genesis with this node as the only stakeholder.
//!
//! It is written to `data_dir/genesis.json`; restarting with a different genesis is refused
//! ([`ServerError::GenesisMismatch`]). The node key is, in order: the configured one,
//! `data_dir/node.key`, the [`dev_key`] of a registered stakeholder named like the node, or a new
//! random key; a key not read from `node.key` is written there (mode 0600). Each start also writes
//! a fresh admin token to `data_dir/admin.token` (mode 0600, see [`admin`]): the HTTP API's admin
//! endpoints require it as `Authorization: Bearer <token>`.
//!
//! Inside, one place for each concern: [`Server`] is the facade; `builder` resolves the
//! configuration, genesis and keys once and replays storage into the running node; `launch`
//! starts and stops its network, tasks and HTTP API; the running node (`node`) keeps its state
//! private behind one API (submit a transaction, import a block, connect a peer, queries) that
//! the HTTP handlers, the facade and the tasks all call. A node without P2P runs over a no-op
//! network.
//!
//! See `docs/architecture.md` for the tasks, locks and storage layout, and `docs/http-api.md`
//! for the HTTP API. An example is on [`Server`].

pub mod admin;
pub mod block_log;
pub mod blocking;
mod builder;
mod clock;
pub mod config;
pub mod error;
mod events;
mod explorer;
mod health;
mod http;
mod http_serve;
pub mod keys;
mod launch;
pub mod mempool;
pub mod metrics;
mod net;
mod node;
pub mod observe;
pub mod opcert;
pub mod ops_metrics;
pub mod praos;
pub mod process_metrics;
mod server;
pub mod state_commit;
pub mod storage;
mod sync;
mod tasks;
mod writer;

pub use admin::ADMIN_TOKEN_FILE;
pub use blocking::{Blocking, CpuPool, CpuPriority, InlineBlocking, TokioBlocking};
pub use clock::{Clock, SystemClock, TokioClock};
pub use config::{NetworkConfig, Registration, ServerConfig};
pub use error::ServerError;
pub use events::{EVENT_BUFFER, MAX_EVENT_CLIENTS};
pub use http::{MAX_BATCH_TXS, MAX_BLOCKS_PER_PAGE, MAX_BODY_BYTES, REQUEST_TIMEOUT};
pub use http_serve::{HEADER_READ_TIMEOUT, HTTP_BLOCKING_THREADS, MAX_HTTP_CONNECTIONS};
pub use keys::dev_key;
pub use mempool::{DropReason, Mempool, MempoolError};
pub use metrics::Metrics;
pub use net::PeerNet;
pub use server::{Server, DB_FILE, GENESIS_FILE, REGISTERED_BALANCE};
pub use storage::{Storage, StorageError, StorageFault};
