//! Misbehaviour: every offence a peer can commit, and the one table of points it costs.
//!
//! A node (its identity key) is banned when its score reaches the ban threshold (100 by
//! default). Offences that prove a broken or hostile *sender* and that no honest node commits by
//! racing the network (malformed bytes, lies about a block, floods) also score the connection's
//! IP address, so that minting fresh identity keys does not reset the count. Offences that an
//! honest node can commit by being on another fork or behind (an invalid block, a bad sync
//! answer) score only the identity: they must not punish every node behind one address.

use serde::Serialize;

/// One kind of offence.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Misbehaviour {
    /// A frame that is too large, empty, not UTF-8, not JSON, or not a known message.
    MalformedFrame,
    /// A well-formed message where it is not allowed (a second `hello`, a bad `hello` field, a
    /// `new_header` to a node that did not say `headers_only`).
    ProtocolViolation,
    /// A `new_block` whose summary fields do not match its block, or a `compact_block` that
    /// cannot be laid out.
    BadAnnouncement,
    /// A request or announcement outside the limits (a locator longer than 64 hashes, more than
    /// 1,000 ids in `inv_txs` or `get_txs`, bad `get_block_txs` indexes).
    BadRequest,
    /// An answer (`blocks`, `headers`, `peers`, `pong`, `error`) to no request of ours.
    UnsolicitedResponse,
    /// A `new_block` larger than the network's block size limit.
    OversizedBlock,
    /// A block that breaks the stateless rules (structure, proof of work, Merkle root,
    /// signatures), which no fork or delay can excuse.
    InvalidBlock,
    /// An announced block whose ancestors the announcer then could not deliver.
    UndeliverableAnnouncement,
    /// A sync answer that does not fit the request (out of order, not connecting), or a
    /// `block_txs` answer that does not fit the compact block it completes.
    BadSyncAnswer,
    /// A block that fails the stateful rules on the chain it extends.
    RejectedBlock,
    /// Sending far beyond the per-peer budgets for a sustained time.
    Flooding,
    /// A transaction whose signature does not verify (no honest node relays one).
    InvalidTransaction,
    /// A Noise handshake that was not Noise, failed to decrypt, or carried a bad identity
    /// proof; or a transport message that failed to decrypt.
    BadHandshake,
    /// A `peers` answer with more than 1,000 addresses.
    TooManyAddresses,
}

impl Misbehaviour {
    /// Points added to the score (the default ban threshold is 100). One unambiguous proof of
    /// a hostile sender costs half the budget; what an honest peer might trip over rarely
    /// costs far less.
    pub fn points(self) -> i32 {
        match self {
            Misbehaviour::MalformedFrame => 50,
            Misbehaviour::ProtocolViolation => 20,
            Misbehaviour::BadAnnouncement => 50,
            Misbehaviour::BadRequest => 10,
            Misbehaviour::UnsolicitedResponse => 25,
            Misbehaviour::OversizedBlock => 50,
            Misbehaviour::InvalidBlock => 50,
            Misbehaviour::UndeliverableAnnouncement => 20,
            Misbehaviour::BadSyncAnswer => 20,
            Misbehaviour::RejectedBlock => 10,
            Misbehaviour::Flooding => 10,
            Misbehaviour::InvalidTransaction => 10,
            Misbehaviour::BadHandshake => 20,
            Misbehaviour::TooManyAddresses => 20,
        }
    }

    /// True when the offence also scores the sender's IP address (see the module docs).
    pub fn scores_address(self) -> bool {
        !matches!(
            self,
            Misbehaviour::UndeliverableAnnouncement
                | Misbehaviour::BadSyncAnswer
                | Misbehaviour::RejectedBlock
        )
    }

    /// The snake_case name, for logs and metrics.
    pub fn name(self) -> &'static str {
        match self {
            Misbehaviour::MalformedFrame => "malformed_frame",
            Misbehaviour::ProtocolViolation => "protocol_violation",
            Misbehaviour::BadAnnouncement => "bad_announcement",
            Misbehaviour::BadRequest => "bad_request",
            Misbehaviour::UnsolicitedResponse => "unsolicited_response",
            Misbehaviour::OversizedBlock => "oversized_block",
            Misbehaviour::InvalidBlock => "invalid_block",
            Misbehaviour::UndeliverableAnnouncement => "undeliverable_announcement",
            Misbehaviour::BadSyncAnswer => "bad_sync_answer",
            Misbehaviour::RejectedBlock => "rejected_block",
            Misbehaviour::Flooding => "flooding",
            Misbehaviour::InvalidTransaction => "invalid_transaction",
            Misbehaviour::BadHandshake => "bad_handshake",
            Misbehaviour::TooManyAddresses => "too_many_addresses",
        }
    }

    /// Every offence, for documentation and metrics.
    pub const ALL: [Misbehaviour; 14] = [
        Misbehaviour::MalformedFrame,
        Misbehaviour::ProtocolViolation,
        Misbehaviour::BadAnnouncement,
        Misbehaviour::BadRequest,
        Misbehaviour::UnsolicitedResponse,
        Misbehaviour::OversizedBlock,
        Misbehaviour::InvalidBlock,
        Misbehaviour::UndeliverableAnnouncement,
        Misbehaviour::BadSyncAnswer,
        Misbehaviour::RejectedBlock,
        Misbehaviour::Flooding,
        Misbehaviour::InvalidTransaction,
        Misbehaviour::BadHandshake,
        Misbehaviour::TooManyAddresses,
    ];
}

impl std::fmt::Display for Misbehaviour {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_hostile_proof_costs_half_the_budget_and_honest_slips_spare_the_address() {
        assert_eq!(Misbehaviour::MalformedFrame.points(), 50);
        assert!(Misbehaviour::ALL.iter().all(|m| m.points() > 0));
        assert!(!Misbehaviour::RejectedBlock.scores_address());
        assert!(Misbehaviour::MalformedFrame.scores_address());
        let names: std::collections::HashSet<_> =
            Misbehaviour::ALL.iter().map(|m| m.name()).collect();
        assert_eq!(names.len(), Misbehaviour::ALL.len());
    }
}
