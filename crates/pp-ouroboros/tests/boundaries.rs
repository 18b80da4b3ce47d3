//! Cases the rest of the suite left open, each found by a mutant that survived it (see
//! docs/testing.md, "Mutation testing"): the carry of the 256-bit reduction for totals above
//! 2^127, the emptiness of a leader table, and a producer's own schedule with three
//! stakeholders (with two, "the slots I lead" and "the slots the other leads" are mirror images,
//! so swapping them went unnoticed).

use pp_ledger::{ConsensusRules, Genesis, InitialStakeholder, KeyPair, PublicKey, StakeMap};
use pp_ouroboros::{leader, reduce_mod_be256, LeaderTable, Ouroboros};

#[test]
fn reduction_carries_the_bit_shifted_out_of_128_bits() {
    // m = 2^127 + 1, so 2^127 ≡ −1, 2^128 ≡ −2 and 2^254 ≡ 1 (mod m). Reducing 2^255 shifts a
    // remainder of exactly 2^127 left once: the carry is what keeps the 129th bit.
    let m = (1u128 << 127) + 1;
    let mut two_pow_255 = [0u8; 32];
    two_pow_255[0] = 0x80;
    assert_eq!(reduce_mod_be256(&two_pow_255, m), Some(2));
    // 2^256 − 1 ≡ (−2)^2 − 1 = 3.
    assert_eq!(reduce_mod_be256(&[0xff; 32], m), Some(3));
    // 2^128 + 5 (byte 15 holds bit 128) ≡ −2 + 5 = 3.
    let mut v = [0u8; 32];
    v[15] = 1;
    v[31] = 5;
    assert_eq!(reduce_mod_be256(&v, m), Some(3));
}

#[test]
fn leader_table_size_and_emptiness() {
    let k = |b: u8| PublicKey([b; 32]);
    let d: StakeMap = [(k(1), 5), (k(2), 0), (k(3), 7)].into_iter().collect();
    let t = LeaderTable::new(&d).unwrap();
    assert_eq!(t.len(), 2, "zero stakes are left out");
    assert!(!t.is_empty());
    assert_eq!(t.total_stake(), 12);
    let empty = LeaderTable::new(&[(k(4), 0)].into_iter().collect()).unwrap();
    assert_eq!(empty.len(), 0);
    assert!(empty.is_empty());
    assert_eq!(empty.total_stake(), 0);
}

#[test]
fn slots_led_by_lists_exactly_the_slots_each_stakeholder_leads() {
    let keys: Vec<KeyPair> = (1..=3u8).map(|i| KeyPair::from_seed([i; 32])).collect();
    let mut g = Genesis::devnet("k1", keys[0].public(), 1_700_000_000_000);
    g.slots_per_epoch = 30;
    for (i, key) in keys.iter().enumerate().skip(1) {
        g.initial_stakeholders.push(InitialStakeholder {
            id: format!("k{}", i + 1),
            public_key: key.public(),
            stake: 1_000,
            vrf_key: None,
        });
    }
    g.validate().unwrap();
    let rules = Ouroboros::new(&g).unwrap();
    let state = rules.genesis_state(&g);
    let mut seen = 0;
    for key in &keys {
        let pk = key.public();
        let expected: Vec<u64> = (0..30)
            .filter(|&s| leader(&state.nonce, &state.distribution, s) == Ok(pk))
            .collect();
        assert_eq!(rules.slots_led_by(&state, &pk), expected);
        seen += expected.len();
    }
    assert_eq!(seen, 30);
    // Somebody without stake leads nothing.
    let outsider = KeyPair::from_seed([9; 32]).public();
    assert_eq!(rules.slots_led_by(&state, &outsider), Vec::<u64>::new());
    // The schedule of a later epoch lists only that epoch's slots.
    let s1 = rules.state_for_slot(&state, 30, &state.distribution);
    let led: Vec<u64> = keys
        .iter()
        .flat_map(|k| rules.slots_led_by(&s1, &k.public()))
        .collect();
    assert_eq!(led.len(), 30);
    assert!(led.iter().all(|s| (30..60).contains(s)));
}
