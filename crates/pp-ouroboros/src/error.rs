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
    /// The active slot coefficient must satisfy 0 < num/den <= 9/10.
    #[error("active slot coefficient {num}/{den} is outside (0, 9/10]")]
    InvalidActiveSlotCoeff {
        /// Numerator given.
        num: u64,
        /// Denominator given.
        den: u64,
    },
    /// A relative stake above one (or a zero total) has no threshold.
    #[error("stake {stake} is above the total stake {total} (or the total is zero)")]
    StakeAboveTotal {
        /// The stakeholder's stake.
        stake: u64,
        /// The total stake.
        total: u128,
    },
    /// The fixed-point threshold arithmetic overflowed (impossible for admissible inputs; checked
    /// rather than assumed).
    #[error("the leadership threshold arithmetic overflowed")]
    ThresholdOverflow,
    /// 32 bytes that are not a valid VRF public key (non-canonical, off the curve or of small
    /// order).
    #[error("invalid VRF public key")]
    InvalidVrfPublicKey,
    /// The VRF could not be evaluated (try-and-increment found no point; probability ~2^-256).
    #[error("the VRF could not be evaluated")]
    VrfProveFailed,
    /// A VRF proof does not verify for the slot under the stakeholder's VRF key, or does not
    /// prove the output it carries.
    #[error("the VRF proof for slot {slot} does not verify")]
    InvalidVrfProof {
        /// The slot claimed.
        slot: u64,
    },
    /// A valid VRF proof whose leader value is not below the stakeholder's threshold.
    #[error("the VRF output for slot {slot} is not below the leadership threshold")]
    NotSlotLeader {
        /// The slot claimed.
        slot: u64,
    },
    /// Blocks given in chain order must have strictly increasing slots.
    #[error("slot {slot} follows slot {previous}; slots must increase along a chain")]
    SlotsNotIncreasing {
        /// The slot of the block before.
        previous: u64,
        /// The offending slot.
        slot: u64,
    },
}
