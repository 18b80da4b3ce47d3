//! Network-wide counters for metrics: bytes and messages by type and direction, throttling,
//! drops, penalties and bans by offence, failed handshakes by reason. Atomics only, updated
//! without locks; the owner reads a [`NetStatsSnapshot`] when it is scraped.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

use crate::message::Message;
use crate::misbehaviour::Misbehaviour;

/// Every message type of this protocol version, in a fixed order (the index into the per-type
/// counters; the codec also uses it to tell an unknown type from bad JSON).
pub const MESSAGE_KINDS: [&str; KINDS] = [
    "hello",
    "get_blocks",
    "blocks",
    "new_block",
    "get_headers",
    "headers",
    "new_tx",
    "get_peers",
    "peers",
    "ping",
    "pong",
    "error",
    "compact_relay",
    "inv_txs",
    "get_txs",
    "txs",
    "compact_block",
    "get_block_txs",
    "block_txs",
    "new_header",
];

/// Number of message types.
const KINDS: usize = 20;
/// Index of `error`, where a message of no listed type would be counted.
const ERROR_KIND: usize = 11;

/// Why a handshake failed, for metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HandshakeFailure {
    /// Not Noise, bad Noise, or a bad identity proof.
    Noise,
    /// The deadline passed.
    Timeout,
    /// Another genesis or protocol version.
    WrongNetwork,
    /// The key or the address is banned.
    Banned,
    /// No room (slots, group limit, handshake limit).
    NoRoom,
    /// Self-connection or duplicate.
    Duplicate,
    /// Anything else (I/O errors, a closed socket).
    Other,
}

impl HandshakeFailure {
    /// Every reason, in the order of the counters.
    pub const ALL: [HandshakeFailure; 7] = [
        HandshakeFailure::Noise,
        HandshakeFailure::Timeout,
        HandshakeFailure::WrongNetwork,
        HandshakeFailure::Banned,
        HandshakeFailure::NoRoom,
        HandshakeFailure::Duplicate,
        HandshakeFailure::Other,
    ];

    /// The snake_case name.
    pub fn name(self) -> &'static str {
        match self {
            HandshakeFailure::Noise => "noise",
            HandshakeFailure::Timeout => "timeout",
            HandshakeFailure::WrongNetwork => "wrong_network",
            HandshakeFailure::Banned => "banned",
            HandshakeFailure::NoRoom => "no_room",
            HandshakeFailure::Duplicate => "duplicate",
            HandshakeFailure::Other => "other",
        }
    }

    fn index(self) -> usize {
        HandshakeFailure::ALL
            .iter()
            .position(|r| *r == self)
            .unwrap_or(0)
    }
}

const OFFENCES: usize = Misbehaviour::ALL.len();

/// The counters.
#[derive(Debug, Default)]
pub(crate) struct NetStats {
    bytes_in: [AtomicU64; KINDS],
    bytes_out: [AtomicU64; KINDS],
    messages_in: [AtomicU64; KINDS],
    messages_out: [AtomicU64; KINDS],
    pub(crate) throttled: AtomicU64,
    pub(crate) dropped_broadcasts: AtomicU64,
    pub(crate) dropped_events: AtomicU64,
    pub(crate) refused_banned: AtomicU64,
    pub(crate) refused_handshake_limit: AtomicU64,
    pub(crate) evictions: AtomicU64,
    feelers_reached: AtomicU64,
    feelers_failed: AtomicU64,
    pub(crate) compact_rebuilt: AtomicU64,
    pub(crate) compact_fetched: AtomicU64,
    pub(crate) compact_full: AtomicU64,
    pub(crate) compact_failed: AtomicU64,
    pub(crate) compact_txs_fetched: AtomicU64,
    penalties: [AtomicU64; OFFENCES],
    bans: [AtomicU64; OFFENCES],
    handshakes_failed: [AtomicU64; 7],
}

/// The index of a frame's message type, read from its first bytes (every frame we encode
/// starts with `{"type":"`); `None` for anything else.
fn kind_index_of_frame(frame: &[u8]) -> Option<usize> {
    let rest = frame.strip_prefix(br#"{"type":""#)?;
    let end = rest.iter().take(16).position(|b| *b == b'"')?;
    let kind = rest.get(..end)?;
    MESSAGE_KINDS.iter().position(|k| k.as_bytes() == kind)
}

fn kind_index(msg: &Message) -> usize {
    MESSAGE_KINDS
        .iter()
        .position(|k| *k == msg.kind())
        .unwrap_or(ERROR_KIND)
}

fn offence_index(m: Misbehaviour) -> usize {
    Misbehaviour::ALL.iter().position(|o| *o == m).unwrap_or(0)
}

fn add(a: &AtomicU64, n: u64) {
    a.fetch_add(n, Ordering::Relaxed);
}

impl NetStats {
    pub(crate) fn received(&self, msg: &Message, size: usize) {
        let i = kind_index(msg);
        add(&self.bytes_in[i], size as u64);
        add(&self.messages_in[i], 1);
    }

    pub(crate) fn sent(&self, frame: &[u8], size: usize) {
        if let Some(i) = kind_index_of_frame(frame) {
            add(&self.bytes_out[i], size as u64);
            add(&self.messages_out[i], 1);
        }
    }

    pub(crate) fn penalty(&self, m: Misbehaviour) {
        add(&self.penalties[offence_index(m)], 1);
    }

    pub(crate) fn ban(&self, m: Misbehaviour) {
        add(&self.bans[offence_index(m)], 1);
    }

    pub(crate) fn feeler(&self, reached: bool) {
        add(
            if reached {
                &self.feelers_reached
            } else {
                &self.feelers_failed
            },
            1,
        );
    }

    pub(crate) fn handshake_failed(&self, r: HandshakeFailure) {
        add(&self.handshakes_failed[r.index()], 1);
    }

    pub(crate) fn snapshot(&self) -> NetStatsSnapshot {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let per_kind = |v: &[AtomicU64; KINDS]| {
            MESSAGE_KINDS
                .iter()
                .zip(v.iter())
                .map(|(k, a)| (*k, load(a)))
                .collect()
        };
        let per_offence = |v: &[AtomicU64; OFFENCES]| {
            Misbehaviour::ALL
                .iter()
                .zip(v.iter())
                .map(|(m, a)| (m.name(), load(a)))
                .collect()
        };
        NetStatsSnapshot {
            bytes_in: per_kind(&self.bytes_in),
            bytes_out: per_kind(&self.bytes_out),
            messages_in: per_kind(&self.messages_in),
            messages_out: per_kind(&self.messages_out),
            throttled: load(&self.throttled),
            dropped_broadcasts: load(&self.dropped_broadcasts),
            dropped_events: load(&self.dropped_events),
            refused_banned: load(&self.refused_banned),
            refused_handshake_limit: load(&self.refused_handshake_limit),
            evictions: load(&self.evictions),
            feelers_reached: load(&self.feelers_reached),
            feelers_failed: load(&self.feelers_failed),
            compact_rebuilt: load(&self.compact_rebuilt),
            compact_fetched: load(&self.compact_fetched),
            compact_full: load(&self.compact_full),
            compact_failed: load(&self.compact_failed),
            compact_txs_fetched: load(&self.compact_txs_fetched),
            penalties: per_offence(&self.penalties),
            bans: per_offence(&self.bans),
            handshakes_failed: HandshakeFailure::ALL
                .iter()
                .zip(self.handshakes_failed.iter())
                .map(|(r, a)| (r.name(), load(a)))
                .collect(),
        }
    }
}

/// The counters at one moment. Per-type and per-reason lists are `(name, value)` pairs in a
/// fixed order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct NetStatsSnapshot {
    /// Frame bytes received, by message type.
    pub bytes_in: Vec<(&'static str, u64)>,
    /// Frame bytes sent, by message type.
    pub bytes_out: Vec<(&'static str, u64)>,
    /// Messages received, by type.
    pub messages_in: Vec<(&'static str, u64)>,
    /// Messages sent, by type.
    pub messages_out: Vec<(&'static str, u64)>,
    /// Times a peer was not read because it was over a budget.
    pub throttled: u64,
    /// Broadcast frames dropped because a peer's send queue was full.
    pub dropped_broadcasts: u64,
    /// Announcements dropped because the owner's event queue was full.
    pub dropped_events: u64,
    /// Inbound connections closed at accept because their address is banned.
    pub refused_banned: u64,
    /// Inbound connections closed at accept because of the handshake limits.
    pub refused_handshake_limit: u64,
    /// Inbound peers evicted for a newcomer.
    pub evictions: u64,
    /// Feeler dials that reached a node of our network.
    pub feelers_reached: u64,
    /// Feeler dials that did not.
    pub feelers_failed: u64,
    /// Compact blocks rebuilt from our own transactions alone (no round trip).
    pub compact_rebuilt: u64,
    /// Compact blocks rebuilt after fetching the missing transactions.
    pub compact_fetched: u64,
    /// Compact blocks completed by the full fallback (every transaction fetched).
    pub compact_full: u64,
    /// Compact blocks given up: the sender did not deliver the transactions asked for, or
    /// answered wrongly (the block is then fetched by sync from whoever has it).
    pub compact_failed: u64,
    /// Transactions fetched with `get_block_txs` to complete compact blocks (the missing ones,
    /// or every one on the full fallback).
    pub compact_txs_fetched: u64,
    /// Penalties, by offence.
    pub penalties: Vec<(&'static str, u64)>,
    /// Bans, by the offence that triggered them.
    pub bans: Vec<(&'static str, u64)>,
    /// Failed handshakes, by reason.
    pub handshakes_failed: Vec<(&'static str, u64)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_kinds_are_read_from_the_type_field() {
        assert_eq!(
            kind_index_of_frame(br#"{"type":"new_tx","tx":{}}"#),
            Some(6)
        );
        assert_eq!(kind_index_of_frame(br#"{"type":"nope"}"#), None);
        assert_eq!(kind_index_of_frame(b"xx"), None);
        let s = NetStats::default();
        s.sent(br#"{"type":"pong","request_id":1}"#, 40);
        let snap = s.snapshot();
        assert_eq!(snap.bytes_out[10], ("pong", 40));
    }
}
