//! Follow-the-satoshi leader election: who may produce the block of a slot.
//!
//! For slot s of epoch e with nonce η_e and stake distribution SD_e:
//!
//! 1. `draw = Blake2b-256("pp-ouroboros/leader/v1" ‖ η_e ‖ s as u64 big-endian)`;
//! 2. `r = draw` read as a big-endian 256-bit integer, reduced modulo `T = total_stake(SD_e)`;
//! 3. walk the stakeholders in ascending public-key byte order, summing their stake; the first
//!    whose running sum exceeds `r` leads the slot.
//!
//! Stakeholder i owns the integers `[sum_{j<i}, sum_{j<=i})` of `[0, T)`, so it leads with
//! probability stake_i / T, up to the modulo bias: `2^256 mod T` residues are hit once more than
//! the others, a relative bias below `T / 2^256` (< 2^-128 for any u128 total), far below anything
//! measurable. Everything is exact integer arithmetic, so every machine computes the same leader.

use pp_ledger::{Hash, PublicKey, StakeMap};

use crate::error::OuroborosError;

/// Domain-separation tag of the leader draw, so the draw can never collide with a nonce or any
/// other Blake2b use in the protocol.
pub const LEADER_TAG: &[u8] = b"pp-ouroboros/leader/v1";

/// The 256-bit draw of `slot` under `nonce`: Blake2b-256(LEADER_TAG ‖ nonce ‖ slot as u64 BE).
pub fn leader_draw(nonce: &Hash, slot: u64) -> Hash {
    Hash::blake2b_parts(&[LEADER_TAG, nonce.as_bytes(), &slot.to_be_bytes()])
}

/// Sum of all stakes in `distribution`, in 128 bits so that no realistic sum can overflow.
pub fn total_stake(distribution: &StakeMap) -> Result<u128, OuroborosError> {
    distribution.values().try_fold(0u128, |acc, &s| {
        acc.checked_add(u128::from(s))
            .ok_or(OuroborosError::StakeOverflow)
    })
}

/// `value mod modulus`, where `value` is a big-endian 256-bit integer. Returns `None` if
/// `modulus` is zero.
///
/// Totals that fit a u64 (every real ledger) take the fast path: four 64-bit limbs, each step
/// `(rem·2^64 + limb) mod m` computed in u128, which cannot overflow because rem < m < 2^64.
/// Larger totals fall back to schoolbook binary long division with an explicit carry bit, which
/// is exact for any u128 modulus.
pub fn reduce_mod_be256(value: &[u8; 32], modulus: u128) -> Option<u128> {
    if modulus == 0 {
        return None;
    }
    if let Ok(m) = u64::try_from(modulus) {
        let m = u128::from(m);
        let mut rem: u128 = 0;
        for limb in value.chunks_exact(8) {
            let mut b = [0u8; 8];
            b.copy_from_slice(limb);
            rem = ((rem << 64) | u128::from(u64::from_be_bytes(b))) % m;
        }
        return Some(rem);
    }
    let mut rem: u128 = 0;
    for byte in value {
        for bit in (0..8).rev() {
            // rem < modulus <= 2^128 − 1; 2·rem + bit may need 129 bits, so keep the carry.
            let carry = rem >> 127 == 1;
            rem = (rem << 1) | u128::from((byte >> bit) & 1);
            if carry || rem >= modulus {
                // With the carry the true value is rem + 2^128 < 2·modulus, so one wrapping
                // subtraction lands exactly on the true remainder.
                rem = rem.wrapping_sub(modulus);
            }
        }
    }
    Some(rem)
}

/// The leader of `slot` under epoch nonce `nonce` and stake distribution `distribution`.
///
/// Pure: the same inputs give the same leader on every machine. A stakeholder with zero stake
/// (which a [`StakeMap`] should not hold anyway) owns an empty interval and never leads.
pub fn leader(
    nonce: &Hash,
    distribution: &StakeMap,
    slot: u64,
) -> Result<PublicKey, OuroborosError> {
    let total = total_stake(distribution)?;
    let draw = leader_draw(nonce, slot);
    let r = reduce_mod_be256(draw.as_bytes(), total)
        .ok_or(OuroborosError::EmptyDistribution { slot })?;
    let mut sum: u128 = 0;
    for (key, &stake) in distribution {
        // Cannot overflow: the same sum was already computed, checked, in total_stake.
        sum += u128::from(stake);
        if sum > r {
            return Ok(*key);
        }
    }
    // Unreachable: r < total and the walk ends with sum == total. Reported rather than panicking.
    Err(OuroborosError::EmptyDistribution { slot })
}

/// A stake distribution prepared for many draws: keys in ascending order with the running sums
/// of their stakes, so that each election is a binary search (O(log n)) instead of a walk. It
/// elects exactly the same leaders as [`leader`]: "the first key whose running sum exceeds r" is
/// the first entry of the (non-decreasing) prefix-sum array that is greater than r.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaderTable {
    /// Stakeholders with positive stake, ascending key order.
    keys: Vec<PublicKey>,
    /// `cumulative[i]` = sum of the stakes of `keys[..=i]`; strictly increasing.
    cumulative: Vec<u128>,
}

impl LeaderTable {
    /// Prepares `distribution` (zero stakes are left out: they own empty intervals anyway).
    pub fn new(distribution: &StakeMap) -> Result<LeaderTable, OuroborosError> {
        let mut keys = Vec::with_capacity(distribution.len());
        let mut cumulative = Vec::with_capacity(distribution.len());
        let mut sum: u128 = 0;
        for (key, &stake) in distribution.iter().filter(|(_, &s)| s > 0) {
            sum = sum
                .checked_add(u128::from(stake))
                .ok_or(OuroborosError::StakeOverflow)?;
            keys.push(*key);
            cumulative.push(sum);
        }
        Ok(LeaderTable { keys, cumulative })
    }

    /// The total stake T.
    pub fn total_stake(&self) -> u128 {
        self.cumulative.last().copied().unwrap_or(0)
    }

    /// Number of stakeholders with positive stake.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// True if nobody has stake (no slot has a leader).
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The leader of `slot` under `nonce`; the same answer as [`leader`] on the same distribution.
    pub fn leader(&self, nonce: &Hash, slot: u64) -> Result<PublicKey, OuroborosError> {
        let draw = leader_draw(nonce, slot);
        let r = reduce_mod_be256(draw.as_bytes(), self.total_stake())
            .ok_or(OuroborosError::EmptyDistribution { slot })?;
        let i = self.cumulative.partition_point(|&c| c <= r);
        self.keys
            .get(i)
            .copied()
            .ok_or(OuroborosError::EmptyDistribution { slot })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key(b: u8) -> PublicKey {
        PublicKey([b; 32])
    }

    /// Reference reduction: one byte at a time, valid while modulus < 2^120.
    fn reduce_bytewise(value: &[u8; 32], modulus: u128) -> u128 {
        value
            .iter()
            .fold(0u128, |rem, &b| ((rem << 8) | u128::from(b)) % modulus)
    }

    #[test]
    fn single_stakeholder_leads_every_slot() {
        let d: StakeMap = [(key(7), 1)].into_iter().collect();
        let nonce = Hash::blake2b(b"n");
        for slot in 0..1_000 {
            assert_eq!(leader(&nonce, &d, slot), Ok(key(7)));
        }
    }

    #[test]
    fn empty_or_all_zero_distribution_has_no_leader() {
        let nonce = Hash::ZERO;
        assert_eq!(
            leader(&nonce, &StakeMap::new(), 5),
            Err(OuroborosError::EmptyDistribution { slot: 5 })
        );
        let zeros: StakeMap = [(key(1), 0), (key(2), 0)].into_iter().collect();
        assert_eq!(
            leader(&nonce, &zeros, 6),
            Err(OuroborosError::EmptyDistribution { slot: 6 })
        );
    }

    #[test]
    fn leader_table_elects_the_same_leaders_as_the_walk() {
        let d: StakeMap = (0..300u32)
            .map(|i| {
                let mut k = [0u8; 32];
                k[..4].copy_from_slice(&i.wrapping_mul(2_654_435_761).to_be_bytes());
                (PublicKey(k), u64::from(i % 7) * 1_000)
            })
            .collect();
        let table = LeaderTable::new(&d).unwrap();
        assert_eq!(table.len(), d.values().filter(|&&s| s > 0).count());
        assert_eq!(table.total_stake(), total_stake(&d).unwrap());
        let nonce = Hash::blake2b(b"table");
        for slot in 0..5_000 {
            assert_eq!(table.leader(&nonce, slot), leader(&nonce, &d, slot));
        }
        let empty = LeaderTable::new(&StakeMap::new()).unwrap();
        assert!(empty.is_empty());
        assert_eq!(
            empty.leader(&nonce, 9),
            Err(OuroborosError::EmptyDistribution { slot: 9 })
        );
    }

    #[test]
    fn zero_stake_never_leads() {
        let d: StakeMap = [(key(1), 0), (key(2), 3), (key(3), 0), (key(4), 1)]
            .into_iter()
            .collect();
        let nonce = Hash::blake2b(b"zero");
        for slot in 0..2_000 {
            let l = leader(&nonce, &d, slot).unwrap();
            assert!(l == key(2) || l == key(4), "slot {slot} led by {l}");
        }
    }

    #[test]
    fn leader_is_a_pure_function_of_nonce_distribution_and_slot() {
        let d: StakeMap = (1..=20u8).map(|i| (key(i), u64::from(i) * 10)).collect();
        let nonce = Hash::blake2b(b"pure");
        let first: Vec<_> = (0..500).map(|s| leader(&nonce, &d, s).unwrap()).collect();
        let second: Vec<_> = (0..500)
            .map(|s| leader(&nonce, &d.clone(), s).unwrap())
            .collect();
        assert_eq!(first, second);
        // And it does depend on the nonce: another nonce gives another schedule.
        let other: Vec<_> = (0..500)
            .map(|s| leader(&Hash::blake2b(b"other"), &d, s).unwrap())
            .collect();
        assert_ne!(first, other);
    }

    #[test]
    fn walk_follows_ascending_key_order_on_known_draws() {
        // Total 4: key(1) owns r = 0, key(2) owns r = 1..=3. Check against the draw directly.
        let d: StakeMap = [(key(2), 3), (key(1), 1)].into_iter().collect();
        let nonce = Hash::blake2b(b"order");
        for slot in 0..200 {
            let r = reduce_mod_be256(leader_draw(&nonce, slot).as_bytes(), 4).unwrap();
            let expected = if r == 0 { key(1) } else { key(2) };
            assert_eq!(leader(&nonce, &d, slot), Ok(expected));
        }
    }

    #[test]
    fn reduction_handles_extreme_moduli() {
        let max = [0xffu8; 32];
        assert_eq!(reduce_mod_be256(&max, 0), None);
        assert_eq!(reduce_mod_be256(&max, 1), Some(0));
        // 2^256 − 1 mod (2^64 − 1) = 0 since 2^64 ≡ 1.
        assert_eq!(reduce_mod_be256(&max, u128::from(u64::MAX)), Some(0));
        // Modulo 2^128 − 1, 2^128 ≡ 1, so 2^256 − 1 ≡ 1·1 − 1 = 0 (exercises the carry path).
        assert_eq!(reduce_mod_be256(&max, u128::MAX), Some(0));
        // 2^256 − 1 mod 2^127 = 2^127 − 1.
        assert_eq!(
            reduce_mod_be256(&max, 1u128 << 127),
            Some((1u128 << 127) - 1)
        );
        let mut small = [0u8; 32];
        small[31] = 200;
        assert_eq!(reduce_mod_be256(&small, u128::MAX), Some(200));
    }

    proptest! {
        #[test]
        fn leader_is_always_a_stakeholder_with_positive_stake(
            stakes in proptest::collection::btree_map(any::<[u8; 32]>(), 0u64..=u64::MAX, 1..40),
            nonce in any::<[u8; 32]>(),
            slot in any::<u64>(),
        ) {
            let d: StakeMap = stakes.into_iter().map(|(k, s)| (PublicKey(k), s)).collect();
            let nonce = Hash(nonce);
            let table = LeaderTable::new(&d).unwrap();
            prop_assert_eq!(table.leader(&nonce, slot), leader(&nonce, &d, slot));
            match leader(&nonce, &d, slot) {
                Ok(l) => prop_assert!(d.get(&l).copied().unwrap_or(0) > 0),
                Err(e) => {
                    prop_assert_eq!(e, OuroborosError::EmptyDistribution { slot });
                    prop_assert!(d.values().all(|&s| s == 0));
                }
            }
        }

        #[test]
        fn fast_and_long_division_agree_with_bytewise_reference(
            value in any::<[u8; 32]>(),
            m64 in 1u64..=u64::MAX,
            m_big in (1u128 << 64)..(1u128 << 120),
        ) {
            prop_assert_eq!(reduce_mod_be256(&value, u128::from(m64)), Some(reduce_bytewise(&value, u128::from(m64))));
            prop_assert_eq!(reduce_mod_be256(&value, m_big), Some(reduce_bytewise(&value, m_big)));
        }
    }
}
