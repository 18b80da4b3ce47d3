//! The server's error type. Each variant names what went wrong and carries the values involved.

use std::path::{Path, PathBuf};

use pp_ledger::{GenesisError, Hash, PublicKey};

use crate::mempool::MempoolError;
use crate::storage::StorageError;

/// Why a server operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// `node.key` is not a 64-hex-character seed.
    #[error("key file {path} is invalid: {reason}")]
    BadKeyFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A key file is in the way of a new key: keys are never overwritten.
    #[error("key file {path} already exists; refusing to overwrite it")]
    KeyFileExists {
        /// The file.
        path: PathBuf,
    },
    /// An admin token file is not one printable word.
    #[error("admin token file {path} is invalid: {reason}")]
    BadTokenFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The genesis (given, or read from `genesis.json`) breaks a rule.
    #[error("genesis {source_name} is invalid: {error}")]
    BadGenesis {
        /// Where the genesis came from (a path, or "configured").
        source_name: String,
        /// The broken rule.
        error: GenesisError,
    },
    /// The data dir belongs to another network than the configured genesis.
    #[error(
        "data dir {data_dir} holds the chain of genesis {stored}, but genesis {configured} was \
         configured: use another data dir, or drop the genesis setting"
    )]
    GenesisMismatch {
        /// The data dir.
        data_dir: PathBuf,
        /// Genesis hash found in the data dir.
        stored: Hash,
        /// Genesis hash configured.
        configured: Hash,
    },
    /// The data dir holds blocks with a header version this release does not accept (written
    /// under older consensus rules).
    #[error(
        "{} holds blocks with header version {found}, but this release's network rules use version {expected} (the header now commits the account state root); this data cannot be used: reset it with `ppd purge --data-dir {}` and sync again",
        data_dir.display(),
        data_dir.display()
    )]
    OldHeaderVersion {
        /// The data dir.
        data_dir: PathBuf,
        /// Version of the stored block at index 1.
        found: u32,
        /// Version the genesis's leader mode requires.
        expected: u32,
    },
    /// A stakeholder registration is invalid.
    #[error("stakeholder {id:?} cannot be registered: {reason}")]
    BadStakeholder {
        /// The id.
        id: String,
        /// What is wrong.
        reason: String,
    },
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The operation needs a running server.
    #[error("the server is not running")]
    NotStarted,
    /// The operation is only allowed before start.
    #[error("the server is already running")]
    AlreadyStarted,
    /// P2P is off on this node.
    #[error("peer-to-peer networking is disabled on this node")]
    P2pDisabled,
    /// The network layer failed.
    #[error("network: {0}")]
    Net(#[from] pp_net::NetError),
    /// The HTTP listener could not be bound.
    #[error("cannot listen for HTTP on {addr}: {source}")]
    HttpBind {
        /// The address.
        addr: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The HTTP API's own runtime or its thread could not be started
    /// ([`ServerConfig::http_threads`](crate::ServerConfig::http_threads)).
    #[error("cannot start the HTTP API's runtime: {source}")]
    HttpRuntime {
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// No account with this key exists on the chain.
    #[error("unknown account {0}")]
    UnknownAccount(PublicKey),
    /// A transaction was refused.
    #[error("transaction rejected: {0}")]
    Rejected(#[from] MempoolError),
    /// An operational certificate file is unreadable, or not signed by the cold key it names
    /// for this network (see [`crate::opcert`]).
    #[error("operational certificate {path} is invalid: {reason}")]
    BadOpCert {
        /// The certificate file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The operational certificate delegates to another key than the node's hot key.
    #[error("operational certificate {path} is for hot key {certified}, but this node's hot key is {held}")]
    OpCertHotKeyMismatch {
        /// The certificate file.
        path: PathBuf,
        /// The hot key the certificate names.
        certified: PublicKey,
        /// The hot key the node holds.
        held: PublicKey,
    },
}

impl ServerError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> ServerError {
        ServerError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}
