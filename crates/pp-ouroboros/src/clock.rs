//! The slot clock: turns wall-clock milliseconds into slots and epochs and back.
//!
//! slot = ⌊(now − genesis_time) / slot_duration⌋ and epoch = ⌊slot / slots_per_epoch⌋ (DESIGN.md
//! §6). Time is passed in as unix milliseconds; this module never reads a clock, so a simulation
//! can drive it with any time it likes. All arithmetic is checked: results that would overflow a
//! u64 saturate at `u64::MAX` ("never"), which is the safe answer for "when does this slot start".

use pp_ledger::Genesis;

use crate::error::OuroborosError;

/// Slot and epoch arithmetic for one network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotClock {
    /// Start of slot 0, unix milliseconds.
    genesis_time_ms: u64,
    /// Slot length in milliseconds, >= 1.
    slot_duration_ms: u64,
    /// Slots per epoch, >= 1.
    slots_per_epoch: u64,
}

impl SlotClock {
    /// A clock with the given parameters; both lengths must be positive, because they divide.
    pub fn new(
        genesis_time_ms: u64,
        slot_duration_ms: u64,
        slots_per_epoch: u64,
    ) -> Result<SlotClock, OuroborosError> {
        if slot_duration_ms == 0 {
            return Err(OuroborosError::ZeroSlotDuration(slot_duration_ms));
        }
        if slots_per_epoch == 0 {
            return Err(OuroborosError::ZeroSlotsPerEpoch(slots_per_epoch));
        }
        Ok(SlotClock {
            genesis_time_ms,
            slot_duration_ms,
            slots_per_epoch,
        })
    }

    /// The clock of the network defined by `genesis`.
    pub fn from_genesis(genesis: &Genesis) -> Result<SlotClock, OuroborosError> {
        SlotClock::new(
            genesis.genesis_time,
            genesis.slot_duration_ms,
            genesis.slots_per_epoch,
        )
    }

    /// Start of slot 0, unix milliseconds.
    pub fn genesis_time_ms(&self) -> u64 {
        self.genesis_time_ms
    }

    /// Slot length in milliseconds.
    pub fn slot_duration_ms(&self) -> u64 {
        self.slot_duration_ms
    }

    /// Slots per epoch.
    pub fn slots_per_epoch(&self) -> u64 {
        self.slots_per_epoch
    }

    /// The slot in progress at `now_ms`, or `None` before genesis (there is no slot −1).
    pub fn slot_at(&self, now_ms: u64) -> Option<u64> {
        let since = now_ms.checked_sub(self.genesis_time_ms)?;
        Some(since / self.slot_duration_ms)
    }

    /// The epoch in progress at `now_ms`, or `None` before genesis.
    pub fn epoch_at(&self, now_ms: u64) -> Option<u64> {
        self.slot_at(now_ms).map(|s| self.epoch_of_slot(s))
    }

    /// The epoch containing `slot`.
    pub fn epoch_of_slot(&self, slot: u64) -> u64 {
        slot / self.slots_per_epoch
    }

    /// The position of `slot` inside its epoch, `0..slots_per_epoch`.
    pub fn slot_in_epoch(&self, slot: u64) -> u64 {
        slot % self.slots_per_epoch
    }

    /// The first slot of epoch `epoch` (saturates at `u64::MAX` for epochs past the end of time).
    pub fn first_slot_of_epoch(&self, epoch: u64) -> u64 {
        epoch.saturating_mul(self.slots_per_epoch)
    }

    /// When `slot` starts, unix milliseconds (saturates at `u64::MAX`, i.e. "never").
    pub fn slot_start_ms(&self, slot: u64) -> u64 {
        slot.saturating_mul(self.slot_duration_ms)
            .saturating_add(self.genesis_time_ms)
    }

    /// When the slot after the one in progress at `now_ms` starts; before genesis, that is the
    /// start of slot 0.
    pub fn next_slot_start_ms(&self, now_ms: u64) -> u64 {
        match self.slot_at(now_ms) {
            None => self.genesis_time_ms,
            Some(slot) => self.slot_start_ms(slot.saturating_add(1)),
        }
    }

    /// Milliseconds from `now_ms` until the next slot starts (always >= 1 unless time has run
    /// out at `u64::MAX`), for a node that sleeps between slots.
    pub fn ms_until_next_slot(&self, now_ms: u64) -> u64 {
        self.next_slot_start_ms(now_ms).saturating_sub(now_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clock() -> SlotClock {
        SlotClock::new(1_000_000, 1_000, 10).unwrap()
    }

    #[test]
    fn no_slot_before_genesis_and_slot_zero_at_genesis() {
        let c = clock();
        assert_eq!(c.slot_at(0), None);
        assert_eq!(c.slot_at(999_999), None);
        assert_eq!(c.epoch_at(999_999), None);
        assert_eq!(c.slot_at(1_000_000), Some(0));
        assert_eq!(c.slot_at(1_000_999), Some(0));
        assert_eq!(c.slot_at(1_001_000), Some(1));
        // Before genesis, the next slot to start is slot 0.
        assert_eq!(c.next_slot_start_ms(500), 1_000_000);
        assert_eq!(c.ms_until_next_slot(999_000), 1_000);
    }

    #[test]
    fn slot_boundaries_are_half_open_and_next_slot_is_exact() {
        let c = clock();
        for slot in [0u64, 1, 9, 10, 12_345] {
            let start = c.slot_start_ms(slot);
            assert_eq!(c.slot_at(start), Some(slot));
            assert_eq!(c.slot_at(start + 999), Some(slot));
            assert_eq!(c.slot_at(start + 1_000), Some(slot + 1));
            assert_eq!(c.next_slot_start_ms(start), start + 1_000);
            assert_eq!(c.next_slot_start_ms(start + 999), start + 1_000);
            assert_eq!(c.ms_until_next_slot(start), 1_000);
            assert_eq!(c.ms_until_next_slot(start + 999), 1);
        }
    }

    #[test]
    fn epoch_boundaries_follow_slots_per_epoch() {
        let c = clock();
        assert_eq!(c.epoch_of_slot(0), 0);
        assert_eq!(c.epoch_of_slot(9), 0);
        assert_eq!(c.epoch_of_slot(10), 1);
        assert_eq!(c.epoch_of_slot(19), 1);
        assert_eq!(c.epoch_of_slot(20), 2);
        assert_eq!(c.first_slot_of_epoch(0), 0);
        assert_eq!(c.first_slot_of_epoch(3), 30);
        assert_eq!(c.slot_in_epoch(37), 7);
        assert_eq!(
            c.epoch_at(c.slot_start_ms(c.first_slot_of_epoch(5))),
            Some(5)
        );
        assert_eq!(
            c.epoch_at(c.slot_start_ms(c.first_slot_of_epoch(5)) - 1),
            Some(4)
        );
    }

    #[test]
    fn arithmetic_saturates_instead_of_overflowing() {
        let c = SlotClock::new(u64::MAX - 10, 3_600_000, 1_000_000).unwrap();
        assert_eq!(c.slot_at(u64::MAX), Some(0));
        assert_eq!(c.slot_start_ms(u64::MAX), u64::MAX);
        assert_eq!(c.next_slot_start_ms(u64::MAX), u64::MAX);
        assert_eq!(c.ms_until_next_slot(u64::MAX), 0);
        assert_eq!(c.first_slot_of_epoch(u64::MAX), u64::MAX);
        assert_eq!(c.epoch_of_slot(u64::MAX), u64::MAX / 1_000_000);
    }

    #[test]
    fn rejects_zero_slot_duration_and_zero_epoch_length() {
        assert_eq!(
            SlotClock::new(0, 0, 10),
            Err(OuroborosError::ZeroSlotDuration(0))
        );
        assert_eq!(
            SlotClock::new(0, 10, 0),
            Err(OuroborosError::ZeroSlotsPerEpoch(0))
        );
    }

    #[test]
    fn accessors_return_the_parameters_the_clock_was_built_with() {
        let c = SlotClock::new(1_234_567, 750, 42).unwrap();
        assert_eq!(c.genesis_time_ms(), 1_234_567);
        assert_eq!(c.slot_duration_ms(), 750);
        assert_eq!(c.slots_per_epoch(), 42);
    }

    #[test]
    fn clock_from_devnet_genesis_uses_its_parameters() {
        let g = Genesis::devnet("n", pp_ledger::PublicKey([1; 32]), 1_700_000_000_000);
        let c = SlotClock::from_genesis(&g).unwrap();
        assert_eq!(c.slot_at(1_700_000_000_000 + 61_500), Some(61));
        assert_eq!(c.epoch_at(1_700_000_000_000 + 61_500), Some(1));
    }
}
