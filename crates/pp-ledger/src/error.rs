//! Error types of pp-ledger, one enum per concern. Each variant names the broken rule and carries
//! the values involved, so that a log line or an HTTP error says exactly what was wrong.

/// A hex string could not be read as a fixed-size value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HexError {
    /// Wrong number of hex characters.
    #[error("expected {expected} hex characters, got {got}")]
    Length {
        /// Characters required.
        expected: usize,
        /// Characters given.
        got: usize,
    },
    /// A character is not a hex digit.
    #[error("not a hex string")]
    NotHex,
}

/// Canonical bytes could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The input ended early.
    #[error("unexpected end of input: needed {needed} bytes, {available} available")]
    UnexpectedEnd {
        /// Bytes needed.
        needed: usize,
        /// Bytes left.
        available: usize,
    },
    /// Bytes were left after the value.
    #[error("{0} trailing bytes after the value")]
    TrailingBytes(usize),
    /// A sequence count that the remaining input cannot hold.
    #[error("count {count} cannot fit in the {remaining} remaining bytes")]
    CountTooLarge {
        /// The count read.
        count: usize,
        /// Bytes left.
        remaining: usize,
    },
    /// A string was not UTF-8.
    #[error("string is not valid UTF-8")]
    BadUtf8,
    /// An enum tag is not known.
    #[error("unknown {what} tag {tag}")]
    UnknownTag {
        /// Which enum.
        what: &'static str,
        /// The tag read.
        tag: u8,
    },
}

use crate::crypto::{PublicKey, SignatureError};
use crate::genesis::GenesisError;
use crate::hash::Hash;

/// A transaction that breaks a ledger rule (DESIGN §5). Nothing was changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxError {
    /// The sender's signature does not verify (strict ed25519, bound to the genesis hash).
    #[error("bad transaction signature: {0}")]
    BadSignature(SignatureError),
    /// `amount` is zero: a transaction must move something.
    #[error("amount must be greater than zero")]
    ZeroAmount,
    /// The nonce is not the sender's next nonce (a replay, a gap, or a reordering).
    #[error("bad nonce for {account}: expected {expected}, got {got}")]
    BadNonce {
        /// The sender.
        account: PublicKey,
        /// The sender's next nonce.
        expected: u64,
        /// The nonce in the transaction.
        got: u64,
    },
    /// The sender's balance cannot pay what the transaction debits.
    #[error("insufficient balance for {account}: needed {needed}, available {available}")]
    InsufficientBalance {
        /// The sender.
        account: PublicKey,
        /// Amount debited from the balance (amount + fee, or fee alone for an unbond).
        needed: u64,
        /// The sender's balance.
        available: u64,
    },
    /// An unbond asks for more than the sender's stake.
    #[error("insufficient stake for {account}: needed {needed}, available {available}")]
    InsufficientStake {
        /// The sender.
        account: PublicKey,
        /// Amount to unbond.
        needed: u64,
        /// The sender's stake.
        available: u64,
    },
    /// A sum would exceed `u64::MAX` (amount + fee, a credited balance, a stake or a nonce).
    #[error("arithmetic overflow: {what} of {account}")]
    Overflow {
        /// The account whose value would overflow.
        account: PublicKey,
        /// Which value (`amount + fee`, `balance`, `stake`, `nonce`).
        what: &'static str,
    },
    /// The stakeholder id in a bond is not 1..=32 characters of `[A-Za-z0-9._-]`.
    #[error("stakeholder id {id:?} must be 1..=32 characters of [A-Za-z0-9._-]")]
    BadStakeholderId {
        /// The id given.
        id: String,
    },
    /// The stakeholder id is already bound to another key.
    #[error("stakeholder id {id:?} is already bound to {owner}")]
    StakeholderIdTaken {
        /// The id given.
        id: String,
        /// The key that holds it.
        owner: PublicKey,
    },
    /// The sender is bound to another id; later bonds must repeat the first id.
    #[error("{account} is bound to stakeholder id {bound:?}, the bond names {got:?}")]
    StakeholderIdMismatch {
        /// The sender.
        account: PublicKey,
        /// The id bound to the sender.
        bound: String,
        /// The id in the transaction.
        got: String,
    },
    /// A praos network's bond carries no VRF key: every stakeholder must register one.
    #[error("a bond on a praos network must carry the VRF key of {account}")]
    MissingVrfKey {
        /// The sender.
        account: PublicKey,
    },
    /// A classic network's bond carries a VRF key (tag 3 is praos only).
    #[error("a bond on a classic network carries no VRF key")]
    VrfKeyOnClassicNetwork,
    /// The VRF key is registered to another stakeholder.
    #[error("VRF key {key} is already registered to {owner}")]
    VrfKeyTaken {
        /// The key given.
        key: PublicKey,
        /// The stakeholder it is registered to.
        owner: PublicKey,
    },
    /// The sender has another VRF key registered; later bonds must repeat it.
    #[error("the sender has VRF key {registered} registered, the bond carries {got}")]
    VrfKeyMismatch {
        /// The registered key.
        registered: PublicKey,
        /// The key in the transaction.
        got: PublicKey,
    },
}

impl TxError {
    /// A short machine-readable name of the broken rule (`bad_nonce`, ...): what a node's API
    /// answers, so clients can act on it without parsing the message.
    pub fn code(&self) -> &'static str {
        match self {
            TxError::BadSignature(_) => "bad_signature",
            TxError::ZeroAmount => "zero_amount",
            TxError::BadNonce { .. } => "bad_nonce",
            TxError::InsufficientBalance { .. } => "insufficient_balance",
            TxError::InsufficientStake { .. } => "insufficient_stake",
            TxError::Overflow { .. } => "overflow",
            TxError::BadStakeholderId { .. } => "bad_stakeholder_id",
            TxError::StakeholderIdTaken { .. } => "stakeholder_id_taken",
            TxError::StakeholderIdMismatch { .. } => "stakeholder_id_mismatch",
            TxError::MissingVrfKey { .. } => "missing_vrf_key",
            TxError::VrfKeyOnClassicNetwork => "vrf_key_on_classic_network",
            TxError::VrfKeyTaken { .. } => "vrf_key_taken",
            TxError::VrfKeyMismatch { .. } => "vrf_key_mismatch",
        }
    }
}

/// A block that breaks a validity rule (DESIGN §5).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlockError {
    /// The header version is not [`crate::BLOCK_VERSION`].
    #[error("block version {got} is not the supported version {expected}")]
    BadVersion {
        /// Supported version.
        expected: u32,
        /// Version in the header.
        got: u32,
    },
    /// The index is not parent index + 1.
    #[error("block index {got}, expected {expected} (parent index + 1)")]
    BadIndex {
        /// Parent index + 1.
        expected: u64,
        /// Index in the header.
        got: u64,
    },
    /// The slot is not after the parent's slot.
    #[error("block slot {slot} is not after its parent's slot {parent_slot}")]
    SlotNotAfterParent {
        /// Parent's slot.
        parent_slot: u64,
        /// Block's slot.
        slot: u64,
    },
    /// The slot starts later than now plus the allowed clock skew.
    #[error(
        "slot {slot} starts at {slot_start_ms} ms, after now {now_ms} ms + skew {max_skew_ms} ms"
    )]
    SlotInFuture {
        /// Block's slot.
        slot: u64,
        /// Start of the slot, unix ms (saturated on overflow).
        slot_start_ms: u64,
        /// The time the block was judged at.
        now_ms: u64,
        /// The genesis's clock skew allowance.
        max_skew_ms: u64,
    },
    /// Nobody has stake, so no block can be valid in this slot.
    #[error("slot {slot} has no leader")]
    NoLeader {
        /// The slot.
        slot: u64,
    },
    /// The producer is not the leader of the slot.
    #[error("slot {slot} is led by {expected}, block produced by {got}")]
    WrongLeader {
        /// The slot.
        slot: u64,
        /// The slot leader.
        expected: PublicKey,
        /// The producer in the header.
        got: PublicKey,
    },
    /// Praos: the producer has no registered VRF key in the slot's epoch.
    #[error("slot {slot}: producer {producer} has no registered VRF key")]
    NoVrfKey {
        /// The slot.
        slot: u64,
        /// The producer in the header.
        producer: PublicKey,
    },
    /// Praos: the header's VRF proof does not verify under the producer's VRF key for the
    /// slot's input (epoch nonce ‖ slot), or the output it carries is not the proven one.
    #[error("slot {slot}: the VRF proof of producer {producer} does not verify")]
    BadVrfProof {
        /// The slot.
        slot: u64,
        /// The producer in the header.
        producer: PublicKey,
    },
    /// Praos: the producer's leader value is not below its threshold (or it has no stake in
    /// the epoch's snapshot).
    #[error("slot {slot}: producer {producer} is not elected (leader value above its threshold)")]
    NotElected {
        /// The slot.
        slot: u64,
        /// The producer in the header.
        producer: PublicKey,
    },
    /// The producer's signature over the header hash does not verify.
    #[error("bad block signature: {0}")]
    BadBlockSignature(SignatureError),
    /// Praos: the header's operational certificate is not signed by the producer's cold key
    /// (for this network).
    #[error("slot {slot}: the operational certificate is not signed by producer {producer}")]
    BadOpCertSignature {
        /// The slot.
        slot: u64,
        /// The producer (cold key) in the header.
        producer: PublicKey,
    },
    /// Praos: the block signature does not verify under the hot key of the header's
    /// certificate.
    #[error("slot {slot}: the block is not signed by the certificate's hot key {hot_key}")]
    BadHotKeySignature {
        /// The slot.
        slot: u64,
        /// The certificate's hot key.
        hot_key: PublicKey,
    },
    /// Praos: the certificate is valid only from a later epoch than the block's.
    #[error("slot {slot} is in epoch {epoch}; the operational certificate is valid from epoch {valid_from}")]
    OpCertNotYetValid {
        /// The slot.
        slot: u64,
        /// The slot's epoch.
        epoch: u64,
        /// The certificate's first epoch.
        valid_from: u64,
    },
    /// Praos: the certificate's counter is below the highest one this chain has seen for the
    /// producer: a newer certificate revoked it.
    #[error("producer {producer}: operational certificate {counter} is revoked (this chain has seen {highest})")]
    OpCertRevoked {
        /// The producer (cold key).
        producer: PublicKey,
        /// The header's certificate counter.
        counter: u64,
        /// The highest counter on the chain for the producer (0 if none yet).
        highest: u64,
    },
    /// Praos: the certificate's counter is more than one above the highest one this chain has
    /// seen for the producer.
    #[error("producer {producer}: operational certificate {counter} skips ahead of {highest} (at most +1)")]
    OpCertCounterJump {
        /// The producer (cold key).
        producer: PublicKey,
        /// The header's certificate counter.
        counter: u64,
        /// The highest counter on the chain for the producer (0 if none yet).
        highest: u64,
    },
    /// The header's difficulty is not the genesis difficulty.
    #[error("block difficulty {got}, the network requires {expected}")]
    WrongDifficulty {
        /// Genesis difficulty.
        expected: u32,
        /// Difficulty in the header.
        got: u32,
    },
    /// The hash does not start with `difficulty` zero hex digits.
    #[error("block hash {hash} does not meet difficulty {difficulty}")]
    BadPow {
        /// Required leading zero hex digits.
        difficulty: u32,
        /// The block hash.
        hash: Hash,
    },
    /// The header's transaction root is not the Merkle root of the transactions.
    #[error("tx root in header {header} does not match the computed root {computed}")]
    BadTxRoot {
        /// Root in the header.
        header: Hash,
        /// Root of the block's transactions.
        computed: Hash,
    },
    /// The header's state root is not the root of the state tree after the block
    /// (docs/consensus.md, rule "state root").
    #[error("state root in header {header} does not match the state after the block {computed}")]
    StateRoot {
        /// Root in the header.
        header: Hash,
        /// Root of the state tree after applying the block to its parent's state.
        computed: Hash,
    },
    /// The canonical encoding is larger than `max_block_bytes`.
    #[error("block is {size} bytes, more than the {max} allowed")]
    TooLarge {
        /// Encoded size.
        size: u64,
        /// Genesis limit.
        max: u64,
    },
    /// More transactions than `max_block_txs`.
    #[error("block has {count} transactions, more than the {max} allowed")]
    TooManyTxs {
        /// Transactions in the block.
        count: u64,
        /// Genesis limit.
        max: u64,
    },
    /// A transaction does not apply.
    #[error("transaction {index} ({id}) is invalid: {error}")]
    Tx {
        /// Position in the block.
        index: usize,
        /// Its id.
        id: Hash,
        /// The rule it breaks.
        error: TxError,
    },
    /// Crediting the block reward would overflow the producer's balance.
    #[error("block reward overflows the balance of producer {producer}")]
    RewardOverflow {
        /// The producer.
        producer: PublicKey,
    },
}

/// Why the chain did not accept a block.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    /// The block itself is invalid.
    #[error("invalid block: {0}")]
    Block(#[from] BlockError),
    /// The chain's state tree failed (a bug or a corrupt store; the chain is left as before
    /// the block).
    #[error("state tree: {reason}")]
    StateTree {
        /// What failed.
        reason: String,
    },
    /// The parent is not known (the caller should sync it first).
    #[error("unknown parent block {hash}")]
    UnknownParent {
        /// The missing parent's hash.
        hash: Hash,
    },
    /// Adopting the block's fork would roll back more than `k` blocks.
    #[error("fork point is {depth} blocks below the tip, more than k = {k}")]
    ForkTooDeep {
        /// Blocks that would be rolled back.
        depth: u64,
        /// The genesis rollback limit.
        k: u64,
    },
    /// Too many side-chain blocks are held; the block is dropped.
    #[error("side-chain store is full ({max} blocks)")]
    SideChainFull {
        /// Capacity of the store.
        max: usize,
    },
    /// The genesis is invalid.
    #[error("invalid genesis: {0}")]
    Genesis(#[from] GenesisError),
    /// The producer already has two blocks held for this slot (the evidence is kept); further
    /// ones are not stored.
    #[error("producer {producer} already has two blocks for slot {slot}; this one is not stored")]
    Equivocation {
        /// The slot.
        slot: u64,
        /// The equivocating producer.
        producer: PublicKey,
    },
    /// The block was verified for another network (a caller's mistake, never a peer's).
    #[error("block was verified for network {got}, this chain is {expected}")]
    OtherNetwork {
        /// This chain's genesis hash.
        expected: Hash,
        /// The genesis hash the block was verified for.
        got: Hash,
    },
}
