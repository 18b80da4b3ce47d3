//! The wire messages: one serde enum, tagged by its `type` field.
//!
//! Every frame carries exactly one JSON object whose `type` names the variant below in
//! snake_case. Requests (`get_blocks`, `get_headers`, `get_peers`, `ping`, `get_txs`,
//! `get_block_txs`) carry a `request_id` chosen by the sender; the answer (`blocks`, `headers`,
//! `peers`, `pong`, `txs`, `block_txs`, or `error`) echoes it, so many requests can be in flight
//! on one connection. Announcements (`new_block`, `new_tx`, `inv_txs`, `compact_block`,
//! `new_header`), `compact_relay` and `hello` carry no id. Unknown fields are rejected so a typo or a confused peer is caught at the
//! edge rather than silently ignored.

use pp_ledger::{Block, Hash, SignedHeader, Transaction};
use serde::{Deserialize, Serialize};

use crate::compact::CompactBlock;

/// The most blocks a `blocks` answer carries; larger `count`s are capped, not refused.
pub const MAX_BLOCKS_PER_REQUEST: u32 = 500;
/// The most headers a `headers` answer carries.
pub const MAX_HEADERS_PER_REQUEST: u32 = 2_000;
/// The most addresses a `peers` answer carries (random entries of the sender's tried table).
pub const MAX_PEERS_PER_RESPONSE: usize = 100;
/// The most addresses a receiver accepts in one `peers` answer; more is
/// [`Misbehaviour::TooManyAddresses`](crate::Misbehaviour::TooManyAddresses) and the answer is
/// dropped whole.
pub const MAX_PEERS_ACCEPTED: usize = 1_000;
/// The longest block locator accepted in `get_headers`.
pub const MAX_LOCATOR_LEN: usize = 64;
/// The longest node id accepted in `hello`.
pub const MAX_NODE_ID_LEN: usize = 64;
/// The most transaction ids in one `inv_txs`.
pub const MAX_INV_IDS: usize = 1_000;
/// The most transaction ids in one `get_txs`.
pub const MAX_GET_TXS: usize = 1_000;

/// Error codes carried by `error` frames (the `code` field). A table with their meaning is in
/// docs/protocol.md.
pub mod codes {
    /// The first frame was not `hello`, or a `hello` field is invalid.
    pub const BAD_HELLO: &str = "bad_hello";
    /// Genesis hashes differ: the peers are on different networks.
    pub const GENESIS_MISMATCH: &str = "genesis_mismatch";
    /// Protocol versions differ.
    pub const VERSION_MISMATCH: &str = "version_mismatch";
    /// The remote's node id equals ours.
    pub const SELF_CONNECTION: &str = "self_connection";
    /// A connection to this node id already exists.
    pub const ALREADY_CONNECTED: &str = "already_connected";
    /// The receiver has `max_peers` connections.
    pub const TOO_MANY_PEERS: &str = "too_many_peers";
    /// The sender's node id is banned.
    pub const BANNED: &str = "banned";
    /// A frame exceeded the size limit.
    pub const FRAME_TOO_LARGE: &str = "frame_too_large";
    /// A frame was empty, not UTF-8, not JSON, or not a known message.
    pub const BAD_FRAME: &str = "bad_frame";
    /// A well-formed message not allowed in this state (e.g. a second `hello`).
    pub const PROTOCOL_VIOLATION: &str = "protocol_violation";
    /// A request's parameters are out of bounds (e.g. locator too long).
    pub const BAD_REQUEST: &str = "bad_request";
    /// The peer was silent for too long (handshake or idle timeout).
    pub const TIMEOUT: &str = "timeout";
    /// The sender is shutting down.
    pub const SHUTTING_DOWN: &str = "shutting_down";
    /// A `get_block_txs` for a block the answering node does not hold among those it announced
    /// recently.
    pub const NOT_FOUND: &str = "not_found";
    /// The Noise handshake or the identity proof failed. Never sent in an `error` frame (there is
    /// no encrypted channel yet to send it on); it names the failure in logs and metrics.
    pub const HANDSHAKE_FAILED: &str = "handshake_failed";
    /// Anything else.
    pub const INTERNAL: &str = "internal";
}

/// The handshake message, sent first by both sides.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hello {
    /// Wire protocol version (`PROTOCOL_VERSION`).
    pub protocol_version: u32,
    /// Hash of the genesis that defines the network.
    pub genesis_hash: Hash,
    /// The sender's node id (1..=64 bytes).
    pub node_id: String,
    /// The port the sender accepts p2p connections on (0: does not accept).
    pub listen_port: u16,
    /// Index of the sender's best block.
    pub tip_index: u64,
    /// Hash of the sender's best block.
    pub tip_hash: Hash,
    /// The sender takes headers only (a light client, since protocol version 5): push it no
    /// block, compact block or transaction; announce it blocks as `new_header` (version 6). On
    /// the wire only when true (absent: false), so a full node's `hello` reads as before.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub headers_only: bool,
}

/// One wire message. Serialized as a JSON object with `"type": "<snake_case variant>"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Message {
    /// Handshake; the first frame each way.
    Hello(Hello),
    /// Ask for up to `count` blocks of the best chain starting at `from_index`.
    GetBlocks {
        /// Chosen by the requester, echoed in the answer.
        request_id: u64,
        /// Index of the first block wanted.
        from_index: u64,
        /// How many blocks (the server caps it at `MAX_BLOCKS_PER_REQUEST`).
        count: u32,
    },
    /// Answer to `get_blocks`: consecutive blocks, possibly fewer than asked.
    Blocks {
        /// The id of the request answered.
        request_id: u64,
        /// The blocks, in index order.
        blocks: Vec<Block>,
    },
    /// Announce a new block. The summary fields let a receiver decide cheaply whether it wants
    /// the block; they must match the block (the hash is recomputed, never trusted).
    NewBlock {
        /// `block.header.index`.
        index: u64,
        /// `block.header.slot`.
        slot: u64,
        /// `block.header.prev_hash`.
        prev_hash: Hash,
        /// The block hash (SHA-256 of the canonical header).
        hash: Hash,
        /// The full block.
        block: Block,
    },
    /// Ask for headers after the fork point given by a block locator.
    GetHeaders {
        /// Chosen by the requester, echoed in the answer.
        request_id: u64,
        /// Hashes of the requester's chain, newest first, spaced exponentially (at most 64).
        locator: Vec<Hash>,
        /// How many headers (capped at `MAX_HEADERS_PER_REQUEST`).
        count: u32,
    },
    /// Answer to `get_headers`.
    Headers {
        /// The id of the request answered.
        request_id: u64,
        /// Headers following the first locator hash the server knows, in index order, each with
        /// its block's signature (since protocol version 4).
        headers: Vec<SignedHeader>,
    },
    /// Announce a transaction for the mempool.
    NewTx {
        /// The signed transaction.
        tx: Transaction,
    },
    /// Ask for addresses of other peers.
    GetPeers {
        /// Chosen by the requester, echoed in the answer.
        request_id: u64,
    },
    /// Answer to `get_peers`: `"ip:port"` p2p addresses (at most 100).
    Peers {
        /// The id of the request answered.
        request_id: u64,
        /// The addresses.
        peers: Vec<String>,
    },
    /// Liveness probe; the receiver answers `pong` with the same id.
    Ping {
        /// Chosen by the sender, echoed in the `pong`.
        request_id: u64,
    },
    /// Answer to `ping`.
    Pong {
        /// The id of the `ping` answered.
        request_id: u64,
    },
    /// The sender wants transactions announced by id (`inv_txs`) and blocks as
    /// `compact_block` (docs/protocol.md §14).
    CompactRelay {
        /// The short-id scheme (`COMPACT_VERSION`, 1).
        version: u32,
    },
    /// Announce transactions by id (at most 1,000).
    InvTxs {
        /// Ids (Blake2b-256 of the canonical body) of transactions the sender holds.
        ids: Vec<Hash>,
    },
    /// Ask for transactions by id (at most 1,000).
    GetTxs {
        /// Chosen by the requester, echoed in the answer.
        request_id: u64,
        /// The ids wanted.
        ids: Vec<Hash>,
    },
    /// Answer to `get_txs`: the transactions asked for that the sender holds, in request order.
    Txs {
        /// The id of the request answered.
        request_id: u64,
        /// The transactions.
        txs: Vec<Transaction>,
    },
    /// Announce a block as its signed header and short transaction ids.
    CompactBlock(CompactBlock),
    /// Announce a block to a peer whose `hello` said `headers_only`, as its signed header alone
    /// (since protocol version 6, docs/protocol.md §15): on the wire the `headers` answer's
    /// signed-header object with a `type` tag, `{"type":"new_header","header":…,"signature":…}`.
    NewHeader(SignedHeader),
    /// Ask for transactions of a block announced by `compact_block`, by index.
    GetBlockTxs {
        /// Chosen by the requester, echoed in the answer.
        request_id: u64,
        /// The block hash.
        hash: Hash,
        /// Indexes in the block, strictly increasing.
        indexes: Vec<u32>,
    },
    /// Answer to `get_block_txs`: the transactions at the indexes asked for, in that order.
    BlockTxs {
        /// The id of the request answered.
        request_id: u64,
        /// The block hash.
        hash: Hash,
        /// The transactions.
        txs: Vec<Transaction>,
    },
    /// An error: the answer to a failed request (with its id), or the reason for a close.
    Error {
        /// The request this answers, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        request_id: Option<u64>,
        /// A machine-readable code (see `codes`).
        code: String,
        /// A human-readable explanation.
        message: String,
    },
}

impl Message {
    /// The wire name of this message (its `type` field).
    pub fn kind(&self) -> &'static str {
        match self {
            Message::Hello(_) => "hello",
            Message::GetBlocks { .. } => "get_blocks",
            Message::Blocks { .. } => "blocks",
            Message::NewBlock { .. } => "new_block",
            Message::GetHeaders { .. } => "get_headers",
            Message::Headers { .. } => "headers",
            Message::NewTx { .. } => "new_tx",
            Message::GetPeers { .. } => "get_peers",
            Message::Peers { .. } => "peers",
            Message::Ping { .. } => "ping",
            Message::Pong { .. } => "pong",
            Message::Error { .. } => "error",
            Message::CompactRelay { .. } => "compact_relay",
            Message::InvTxs { .. } => "inv_txs",
            Message::GetTxs { .. } => "get_txs",
            Message::Txs { .. } => "txs",
            Message::CompactBlock(_) => "compact_block",
            Message::NewHeader(_) => "new_header",
            Message::GetBlockTxs { .. } => "get_block_txs",
            Message::BlockTxs { .. } => "block_txs",
        }
    }

    /// The id of the request this message answers, if it is a response.
    pub fn response_id(&self) -> Option<u64> {
        match self {
            Message::Blocks { request_id, .. }
            | Message::Headers { request_id, .. }
            | Message::Peers { request_id, .. }
            | Message::Pong { request_id }
            | Message::Txs { request_id, .. }
            | Message::BlockTxs { request_id, .. } => Some(*request_id),
            Message::Error { request_id, .. } => *request_id,
            _ => None,
        }
    }

    /// A `new_block` announcement for `block`, with summary fields computed from it.
    pub fn new_block(block: &Block) -> Message {
        Message::NewBlock {
            index: block.header.index,
            slot: block.header.slot,
            prev_hash: block.header.prev_hash,
            hash: block.hash(),
            block: block.clone(),
        }
    }

    /// An `error` frame.
    pub fn error(request_id: Option<u64>, code: &str, message: impl Into<String>) -> Message {
        Message::Error {
            request_id,
            code: code.to_string(),
            message: message.into(),
        }
    }
}

/// Why a `new_block`'s summary does not describe its block.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("new_block field {field} says {claimed} but the block has {actual}")]
pub struct SummaryMismatch {
    /// The summary field that disagrees.
    pub field: &'static str,
    /// What the summary claimed.
    pub claimed: String,
    /// What the block actually has.
    pub actual: String,
}

/// Check that a `new_block`'s summary fields match the block; the hash is recomputed.
pub fn check_new_block_summary(
    index: u64,
    slot: u64,
    prev_hash: &Hash,
    hash: &Hash,
    block: &Block,
) -> Result<(), SummaryMismatch> {
    let mismatch = |field, claimed: String, actual: String| SummaryMismatch {
        field,
        claimed,
        actual,
    };
    if index != block.header.index {
        return Err(mismatch(
            "index",
            index.to_string(),
            block.header.index.to_string(),
        ));
    }
    if slot != block.header.slot {
        return Err(mismatch(
            "slot",
            slot.to_string(),
            block.header.slot.to_string(),
        ));
    }
    if *prev_hash != block.header.prev_hash {
        return Err(mismatch(
            "prev_hash",
            prev_hash.to_hex(),
            block.header.prev_hash.to_hex(),
        ));
    }
    let actual = block.hash();
    if *hash != actual {
        return Err(mismatch("hash", hash.to_hex(), actual.to_hex()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use pp_ledger::{BlockHeader, KeyPair, PublicKey, BLOCK_VERSION};
    use serde_json::json;

    fn block() -> Block {
        let k = KeyPair::from_seed([7; 32]);
        let g = Hash([1; 32]);
        let tx = Transaction::transfer(&k, PublicKey([2; 32]), 10, 1, 0, &g);
        let parent = BlockHeader {
            version: BLOCK_VERSION,
            index: 0,
            slot: 0,
            prev_hash: Hash::ZERO,
            tx_root: Hash::ZERO,
            state_root: Hash::ZERO,
            producer: k.public(),
            timestamp: 0,
            difficulty: 0,
            vrf: None,
            ocert: None,
            nonce: 0,
        };
        Block::produce(&parent, 1, 1000, 0, vec![tx], Hash::ZERO, &k, &g, 1).unwrap()
    }

    pub(crate) fn one_of_each() -> Vec<Message> {
        let b = block();
        vec![
            Message::Hello(Hello {
                protocol_version: 1,
                genesis_hash: Hash([1; 32]),
                node_id: "node0".into(),
                listen_port: 7000,
                tip_index: 3,
                tip_hash: Hash([3; 32]),
                headers_only: false,
            }),
            Message::GetBlocks {
                request_id: 1,
                from_index: 0,
                count: 10,
            },
            Message::Blocks {
                request_id: 1,
                blocks: vec![b.clone()],
            },
            Message::new_block(&b),
            Message::GetHeaders {
                request_id: 2,
                locator: vec![b.hash(), Hash::ZERO],
                count: 100,
            },
            Message::Headers {
                request_id: 2,
                headers: vec![SignedHeader::from(&b)],
            },
            Message::NewTx {
                tx: b.transactions[0].clone(),
            },
            Message::GetPeers { request_id: 3 },
            Message::Peers {
                request_id: 3,
                peers: vec!["127.0.0.1:7001".into()],
            },
            Message::Ping { request_id: 4 },
            Message::Pong { request_id: 4 },
            Message::error(Some(5), codes::BAD_REQUEST, "locator too long"),
            Message::error(None, codes::GENESIS_MISMATCH, "other network"),
        ]
    }

    #[test]
    fn every_message_round_trips_through_json_with_its_type_tag() {
        for m in one_of_each() {
            let v = serde_json::to_value(&m).unwrap();
            assert_eq!(v["type"], m.kind(), "{v}");
            let back: Message = serde_json::from_value(v).unwrap();
            assert_eq!(back, m);
        }
    }

    pub(crate) fn relay_messages() -> Vec<Message> {
        let b = block();
        let tx = b.transactions[0].clone();
        vec![
            Message::CompactRelay { version: 1 },
            Message::InvTxs { ids: vec![tx.id()] },
            Message::GetTxs {
                request_id: 6,
                ids: vec![tx.id()],
            },
            Message::Txs {
                request_id: 6,
                txs: vec![tx],
            },
            Message::CompactBlock(crate::compact::CompactBlock::build(&b, 9, |_, _| false)),
            Message::GetBlockTxs {
                request_id: 7,
                hash: b.hash(),
                indexes: vec![0],
            },
            Message::BlockTxs {
                request_id: 7,
                hash: b.hash(),
                txs: b.transactions.clone(),
            },
            Message::NewHeader(SignedHeader::from(&b)),
        ]
    }

    #[test]
    fn relay_messages_round_trip_and_answers_carry_their_request_id() {
        for m in relay_messages() {
            let v = serde_json::to_value(&m).unwrap();
            assert_eq!(v["type"], m.kind(), "{v}");
            let back: Message = serde_json::from_value(v).unwrap();
            assert_eq!(back, m);
            let expected = match m.kind() {
                "txs" => Some(6),
                "block_txs" => Some(7),
                _ => None,
            };
            assert_eq!(m.response_id(), expected, "{}", m.kind());
        }
        let cb = serde_json::to_value(&relay_messages()[4]).unwrap();
        let mut keys: Vec<_> = cb.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "header",
                "nonce",
                "prefilled",
                "short_ids",
                "signature",
                "type"
            ]
        );
        let bad = json!({"type": "inv_txs", "ids": [], "extra": 1});
        assert!(serde_json::from_value::<Message>(bad).is_err());
        // `new_header` is a signed header of a `headers` answer with its type tag, nothing more.
        let b = block();
        let nh = serde_json::to_value(Message::NewHeader(SignedHeader::from(&b))).unwrap();
        let mut expected = serde_json::to_value(SignedHeader::from(&b)).unwrap();
        expected["type"] = json!("new_header");
        assert_eq!(nh, expected);
        let mut bad = nh;
        bad["index"] = json!(1);
        assert!(
            serde_json::from_value::<Message>(bad).is_err(),
            "unknown field"
        );
    }

    #[test]
    fn headers_only_is_on_the_wire_only_when_true_and_absent_means_false() {
        let Message::Hello(mut h) = one_of_each()[0].clone() else {
            panic!("the first message is a hello");
        };
        let plain = serde_json::to_value(Message::Hello(h.clone())).unwrap();
        assert!(plain.get("headers_only").is_none(), "omitted when false");
        let back: Message = serde_json::from_value(plain).unwrap();
        assert_eq!(back, Message::Hello(h.clone()), "absent reads as false");
        h.headers_only = true;
        let light = serde_json::to_value(Message::Hello(h.clone())).unwrap();
        assert_eq!(light["headers_only"], true);
        let back: Message = serde_json::from_value(light).unwrap();
        assert_eq!(back, Message::Hello(h));
        let mut bad = serde_json::to_value(&one_of_each()[0]).unwrap();
        bad["headers_only"] = json!("yes");
        assert!(
            serde_json::from_value::<Message>(bad).is_err(),
            "a bool or nothing"
        );
    }

    #[test]
    fn wire_field_names_are_the_documented_ones() {
        let m = Message::GetBlocks {
            request_id: 9,
            from_index: 5,
            count: 2,
        };
        assert_eq!(
            serde_json::to_value(&m).unwrap(),
            json!({"type": "get_blocks", "request_id": 9, "from_index": 5, "count": 2})
        );
        let b = block();
        let v = serde_json::to_value(Message::new_block(&b)).unwrap();
        for f in ["type", "index", "slot", "prev_hash", "hash", "block"] {
            assert!(v.get(f).is_some(), "new_block lacks {f}");
        }
        assert_eq!(v["hash"], b.hash().to_hex());
        let e = serde_json::to_value(Message::error(None, "banned", "x")).unwrap();
        assert_eq!(
            e,
            json!({"type": "error", "code": "banned", "message": "x"})
        );
        let h = serde_json::to_value(&one_of_each()[0]).unwrap();
        let mut keys: Vec<_> = h.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "genesis_hash",
                "listen_port",
                "node_id",
                "protocol_version",
                "tip_hash",
                "tip_index",
                "type"
            ]
        );
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let bad = json!({"type": "get_peers", "request_id": 1, "sneaky": 1});
        assert!(serde_json::from_value::<Message>(bad).is_err());
        let bad_hello = json!({"type": "hello", "protocol_version": 1,
            "genesis_hash": Hash::ZERO, "node_id": "a", "listen_port": 1,
            "tip_index": 0, "tip_hash": Hash::ZERO, "extra": 0});
        assert!(serde_json::from_value::<Message>(bad_hello).is_err());
    }

    #[test]
    fn responses_carry_the_request_id() {
        for m in one_of_each() {
            let expected = match m.kind() {
                "blocks" | "headers" => Some(if m.kind() == "blocks" { 1 } else { 2 }),
                "peers" => Some(3),
                "pong" => Some(4),
                "error" => match &m {
                    Message::Error { request_id, .. } => *request_id,
                    _ => None,
                },
                _ => None,
            };
            assert_eq!(m.response_id(), expected, "{}", m.kind());
        }
    }

    #[test]
    fn new_block_summary_must_match_the_block() {
        let b = block();
        let h = b.hash();
        let hd = &b.header;
        assert!(check_new_block_summary(hd.index, hd.slot, &hd.prev_hash, &h, &b).is_ok());
        let e = check_new_block_summary(hd.index + 1, hd.slot, &hd.prev_hash, &h, &b).unwrap_err();
        assert_eq!(e.field, "index");
        let e = check_new_block_summary(hd.index, hd.slot + 1, &hd.prev_hash, &h, &b).unwrap_err();
        assert_eq!(e.field, "slot");
        let e = check_new_block_summary(hd.index, hd.slot, &Hash([9; 32]), &h, &b).unwrap_err();
        assert_eq!(e.field, "prev_hash");
        let e = check_new_block_summary(hd.index, hd.slot, &hd.prev_hash, &Hash([9; 32]), &b)
            .unwrap_err();
        assert_eq!(e.field, "hash");
        assert_eq!(e.actual, h.to_hex());
    }
}
