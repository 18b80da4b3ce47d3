//! The crate's error type: every way a frame, a handshake, a request or a peer can fail.
//!
//! Variants name the broken rule and carry the values involved, so a log line or a test can say
//! exactly what went wrong without a second lookup.

use std::io;

use pp_ledger::Hash;

/// Everything that can go wrong in pp-net.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// The socket failed (refused, reset, closed mid-frame, ...).
    #[error("i/o error: {0}")]
    Io(#[from] io::Error),
    /// A frame's length prefix (or an outgoing payload) exceeds the configured maximum.
    #[error("frame of {len} bytes exceeds the maximum of {max} bytes")]
    FrameTooLarge {
        /// The announced (or actual) payload length.
        len: usize,
        /// The configured maximum.
        max: usize,
    },
    /// A frame announced a zero-length payload, which can never hold a JSON object.
    #[error("zero-length frame")]
    EmptyFrame,
    /// The payload is not valid UTF-8.
    #[error("frame payload is not valid UTF-8 (first bad byte at offset {valid_up_to})")]
    BadUtf8 {
        /// Number of leading bytes that were valid UTF-8.
        valid_up_to: usize,
    },
    /// The payload is not JSON, or JSON that does not fit the message it claims to be.
    #[error("frame payload is not a valid message: {0}")]
    BadJson(String),
    /// The payload is a JSON object whose `type` is not a message this version knows.
    #[error("unknown message type {0:?}")]
    UnknownMessage(String),
    /// A message arrived in a state where it is not allowed (e.g. a second `hello`).
    #[error("protocol violation: {0}")]
    ProtocolViolation(String),
    /// The Noise handshake failed before any encrypted channel existed: a handshake message of
    /// length 0, one that is not valid for `Noise_XX_25519_ChaChaPoly_BLAKE2b` with our prologue
    /// (garbage, a plaintext or old-version peer, a tampered message), or a payload in
    /// message 1. (A connection closing mid-handshake is [`NetError::Io`]: it proves nothing
    /// against the peer.)
    #[error("noise handshake failed: {reason}")]
    HandshakeFailed {
        /// What went wrong, for logs.
        reason: String,
    },
    /// The peer's identity proof (handshake message 2 or 3) is not 96 bytes, or its signature
    /// does not verify for the Noise static key the handshake authenticated.
    #[error("bad identity proof: {reason}")]
    BadIdentityProof {
        /// Why the proof was rejected.
        reason: String,
    },
    /// The peer did not complete the `hello` exchange in time.
    #[error("handshake not completed within {ms} ms")]
    HandshakeTimeout {
        /// The timeout that expired, in milliseconds.
        ms: u64,
    },
    /// The peer belongs to another network.
    #[error("genesis mismatch: ours {ours}, theirs {theirs}")]
    GenesisMismatch {
        /// Our genesis hash.
        ours: Hash,
        /// The genesis hash the peer announced.
        theirs: Hash,
    },
    /// The peer speaks another protocol version.
    #[error("protocol version mismatch: ours {ours}, theirs {theirs}")]
    VersionMismatch {
        /// Our protocol version.
        ours: u32,
        /// The version the peer announced.
        theirs: u32,
    },
    /// The remote node is this node (it proved our own identity key).
    #[error("connection to self (identity key {key})")]
    SelfConnection {
        /// Our identity key (hex).
        key: String,
    },
    /// A connection to this node already exists and is kept instead of this one.
    #[error("already connected to node {key}")]
    AlreadyConnected {
        /// The remote's identity key (hex).
        key: String,
    },
    /// No room for another peer (`max_peers` reached, here or on the remote side).
    #[error("too many peers (max {max})")]
    TooManyPeers {
        /// The limit that was hit (0 when the remote refused and did not say).
        max: usize,
    },
    /// No response arrived within the request timeout.
    #[error("request {request_id} timed out after {ms} ms")]
    RequestTimeout {
        /// The id of the request.
        request_id: u64,
        /// The timeout that expired, in milliseconds.
        ms: u64,
    },
    /// The peer is not (or no longer) connected.
    #[error("peer {0} is not connected")]
    PeerGone(u64),
    /// The peer (its identity key or its IP address) is banned.
    #[error("{target} is banned for {remaining_ms} more ms: {reason}")]
    Banned {
        /// The banned identity key (hex) or IP address.
        target: String,
        /// Why it was banned.
        reason: String,
        /// Time left on the ban.
        remaining_ms: u64,
    },
    /// Too many of our requests are already waiting for this peer's answers.
    #[error("{in_flight} requests already in flight to this peer")]
    TooManyRequests {
        /// The limit reached.
        in_flight: usize,
    },
    /// The network is shutting down.
    #[error("network is shutting down")]
    Shutdown,
    /// The remote answered with an `error` frame.
    #[error("remote error {code}: {message}")]
    RemoteError {
        /// The error code (see `codes`).
        code: String,
        /// Human-readable explanation from the remote.
        message: String,
    },
    /// The remote answered a request with a message of the wrong kind.
    #[error("unexpected response to {request}: got {got}")]
    UnexpectedResponse {
        /// The request type sent.
        request: &'static str,
        /// The message type received.
        got: String,
    },
    /// An address string could not be used.
    #[error("bad address {addr:?}: {reason}")]
    BadAddress {
        /// The address given.
        addr: String,
        /// Why it is not usable.
        reason: String,
    },
}

impl NetError {
    /// The wire error code (see docs/protocol.md) that tells a peer about this error.
    pub fn code(&self) -> &'static str {
        use crate::message::codes;
        match self {
            NetError::FrameTooLarge { .. } => codes::FRAME_TOO_LARGE,
            NetError::EmptyFrame
            | NetError::BadUtf8 { .. }
            | NetError::BadJson(_)
            | NetError::UnknownMessage(_) => codes::BAD_FRAME,
            NetError::ProtocolViolation(_) => codes::PROTOCOL_VIOLATION,
            NetError::HandshakeTimeout { .. } => codes::TIMEOUT,
            NetError::HandshakeFailed { .. } | NetError::BadIdentityProof { .. } => {
                codes::HANDSHAKE_FAILED
            }
            NetError::GenesisMismatch { .. } => codes::GENESIS_MISMATCH,
            NetError::VersionMismatch { .. } => codes::VERSION_MISMATCH,
            NetError::SelfConnection { .. } => codes::SELF_CONNECTION,
            NetError::AlreadyConnected { .. } => codes::ALREADY_CONNECTED,
            NetError::TooManyPeers { .. } => codes::TOO_MANY_PEERS,
            NetError::Banned { .. } => codes::BANNED,
            NetError::Shutdown => codes::SHUTTING_DOWN,
            _ => codes::INTERNAL,
        }
    }

    /// True for errors that prove the peer sent malformed data (and so deserves a penalty).
    ///
    /// Noise handshake failures (`HandshakeFailed`, `BadIdentityProof`) are not counted: they
    /// happen before any node id is known (nobody to penalize) and before an encrypted channel
    /// exists (no `error` frame can be sent); the connection is simply closed.
    pub fn is_malformed_input(&self) -> bool {
        matches!(
            self,
            NetError::FrameTooLarge { .. }
                | NetError::EmptyFrame
                | NetError::BadUtf8 { .. }
                | NetError::BadJson(_)
                | NetError::UnknownMessage(_)
                | NetError::ProtocolViolation(_)
        )
    }
}
