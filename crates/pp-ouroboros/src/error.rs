//! The one error type of pp-ouroboros: every variant names the rule that was broken and carries
//! the values involved, so a caller (or a log line) can tell exactly why a slot has no leader or a
//! genesis cannot drive a clock.

/// Why a consensus computation could not be done.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OuroborosError {
    /// A slot clock needs slots of positive length.
    #[error("slot duration must be at least 1 ms, got {0} ms")]
    ZeroSlotDuration(u64),
    /// A slot clock needs epochs of at least one slot.
    #[error("slots per epoch must be at least 1, got {0}")]
    ZeroSlotsPerEpoch(u64),
    /// Leader election needs somebody with stake.
    #[error(
        "the stake distribution is empty or has zero total stake; nobody can lead slot {slot}"
    )]
    EmptyDistribution {
        /// The slot whose leader was asked for.
        slot: u64,
    },
    /// The total stake does not fit the 128-bit accumulator (impossible for real ledgers, whose
    /// total supply fits a u64, but checked rather than assumed).
    #[error("total stake overflows u128")]
    StakeOverflow,
    /// Advancing the epoch state backwards is not a thing: epochs only move forward.
    #[error("cannot move the epoch state from epoch {from} back to epoch {to}")]
    EpochBackwards {
        /// The epoch of the state.
        from: u64,
        /// The epoch asked for.
        to: u64,
    },
    /// A child block may not be more than [`crate::MAX_EPOCH_GAP`] epochs after its parent: each
    /// crossed epoch costs one hash to evolve the nonce, and an unbounded gap (a forged block in
    /// slot 2^64 − 1) would stall the node.
    #[error("epoch gap from {from} to {to} exceeds the maximum of {max} epochs")]
    EpochGapTooLarge {
        /// The epoch of the state.
        from: u64,
        /// The epoch asked for.
        to: u64,
        /// The limit, [`crate::MAX_EPOCH_GAP`].
        max: u64,
    },
    /// The epoch number would pass `u64::MAX` (only reachable with forged states).
    #[error("epoch {0} is the last one; there is no next epoch")]
    EpochOverflow(u64),
    /// A leader was asked for a slot outside the epoch of the state given.
    #[error("slot {slot} is in epoch {slot_epoch}, but the state is for epoch {state_epoch}")]
    SlotNotInEpoch {
        /// The slot asked for.
        slot: u64,
        /// The epoch of that slot.
        slot_epoch: u64,
        /// The epoch of the state.
        state_epoch: u64,
    },
}
