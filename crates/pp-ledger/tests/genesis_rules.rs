//! Exact boundaries of the genesis rules (docs/consensus.md §1.5 and `Genesis::validate`): every
//! limit is accepted at its value and refused one past it, and every duplicate or overflow is
//! named. Two nodes that disagree on whether a genesis is valid cannot form a network, so each
//! limit is pinned on both sides. Each test kills mutants that cargo-mutants found surviving the
//! rest of the suite (see docs/testing.md, "Mutation testing").

mod common;

use common::*;
use pp_ledger::genesis::{MAX_GENESIS_ENTRIES, MAX_GENESIS_JSON_BYTES};
use pp_ledger::{Genesis, GenesisError, InitialBalance, InitialStakeholder, PublicKey};

/// The field named by a `BadField` error, or a description of whatever else came back.
fn rejected_field(g: &Genesis) -> Result<&'static str, String> {
    match g.validate() {
        Err(GenesisError::BadField { field, .. }) => Ok(field),
        other => Err(format!("{other:?}")),
    }
}

fn with(f: impl FnOnce(&mut Genesis)) -> Genesis {
    let mut g = genesis();
    f(&mut g);
    g
}

/// A distinct public key for entry `i` (only its bytes matter to validation).
fn nth_key(i: usize) -> PublicKey {
    let mut k = [0u8; 32];
    k[..8].copy_from_slice(&(i as u64).to_be_bytes());
    k[31] = 0xa5;
    PublicKey(k)
}

#[test]
fn network_name_of_64_ascii_characters_is_accepted_65_or_non_ascii_is_not() {
    assert_eq!(with(|g| g.network = "n".repeat(64)).validate(), Ok(()));
    assert_eq!(
        rejected_field(&with(|g| g.network = "n".repeat(65))),
        Ok("network")
    );
    assert_eq!(
        rejected_field(&with(|g| g.network = "pp-t\u{e9}st".into())),
        Ok("network")
    );
}

#[test]
fn difficulty_16_is_accepted_17_is_not() {
    assert_eq!(with(|g| g.difficulty = 16).validate(), Ok(()));
    assert_eq!(
        rejected_field(&with(|g| g.difficulty = 17)),
        Ok("difficulty")
    );
}

#[test]
fn max_block_bytes_bounds_are_1_kib_and_64_mib_inclusive() {
    assert_eq!(with(|g| g.max_block_bytes = 1024).validate(), Ok(()));
    assert_eq!(
        with(|g| g.max_block_bytes = 64 * 1024 * 1024).validate(),
        Ok(())
    );
    for bad in [1023, 64 * 1024 * 1024 + 1] {
        assert_eq!(
            rejected_field(&with(|g| g.max_block_bytes = bad)),
            Ok("max_block_bytes"),
            "{bad}"
        );
    }
}

#[test]
fn clock_skew_of_600_000_ms_is_accepted_and_defaults_to_2_000() {
    assert_eq!(with(|g| g.max_clock_skew_ms = 600_000).validate(), Ok(()));
    assert_eq!(
        rejected_field(&with(|g| g.max_clock_skew_ms = 600_001)),
        Ok("max_clock_skew_ms")
    );
    // A genesis file without the field gets the documented default.
    let mut v = serde_json::to_value(genesis()).unwrap();
    v.as_object_mut().unwrap().remove("max_clock_skew_ms");
    let parsed = Genesis::from_json(v.to_string().as_bytes()).unwrap();
    assert_eq!(parsed.max_clock_skew_ms, 2_000);
}

#[test]
fn genesis_time_of_2_pow_53_is_accepted_one_more_is_not() {
    assert_eq!(with(|g| g.genesis_time = 1 << 53).validate(), Ok(()));
    assert_eq!(
        rejected_field(&with(|g| g.genesis_time = (1 << 53) + 1)),
        Ok("genesis_time")
    );
}

#[test]
fn genesis_json_of_exactly_the_size_limit_parses_one_byte_more_is_too_large() {
    // The limit is part of the spec (docs/consensus.md §1.5).
    assert_eq!(MAX_GENESIS_JSON_BYTES, 4 * 1024 * 1024);
    let json = genesis().to_json_pretty();
    // Trailing whitespace is valid JSON, so the file can be padded to any size.
    let mut exact = json.clone().into_bytes();
    exact.resize(MAX_GENESIS_JSON_BYTES, b' ');
    assert_eq!(Genesis::from_json(&exact), Ok(genesis()));
    exact.push(b' ');
    assert_eq!(
        Genesis::from_json(&exact),
        Err(GenesisError::TooLarge {
            size: MAX_GENESIS_JSON_BYTES + 1,
            max: MAX_GENESIS_JSON_BYTES
        })
    );
}

#[test]
fn entry_limits_accept_exactly_max_genesis_entries() {
    let balances = |n: usize| -> Vec<InitialBalance> {
        (0..n)
            .map(|i| InitialBalance {
                account: nth_key(i),
                amount: 1,
            })
            .collect()
    };
    let stakeholders = |n: usize| -> Vec<InitialStakeholder> {
        (0..n)
            .map(|i| InitialStakeholder {
                id: format!("s{i}"),
                public_key: nth_key(i),
                stake: 1,
                vrf_key: None,
            })
            .collect()
    };
    // The limit is part of the spec (docs/consensus.md §1.5).
    assert_eq!(MAX_GENESIS_ENTRIES, 100_000);
    let n = MAX_GENESIS_ENTRIES;
    assert_eq!(
        with(|g| g.initial_balances = balances(n)).validate(),
        Ok(())
    );
    assert_eq!(
        rejected_field(&with(|g| g.initial_balances = balances(n + 1))),
        Ok("initial_balances")
    );
    assert_eq!(
        with(|g| g.initial_stakeholders = stakeholders(n)).validate(),
        Ok(())
    );
    assert_eq!(
        rejected_field(&with(|g| g.initial_stakeholders = stakeholders(n + 1))),
        Ok("initial_stakeholders")
    );
}

#[test]
fn duplicate_accounts_ids_and_keys_are_each_refused() {
    let dup_account = with(|g| {
        let first = g.initial_balances[0].clone();
        g.initial_balances.push(first);
    });
    assert_eq!(
        dup_account.validate(),
        Err(GenesisError::DuplicateAccount(
            genesis().initial_balances[0].account
        ))
    );
    // Same id, another key.
    let dup_id = with(|g| {
        let mut s = g.initial_stakeholders[0].clone();
        s.public_key = key(9).public();
        g.initial_stakeholders.push(s);
    });
    let id = genesis().initial_stakeholders[0].id.clone();
    assert_eq!(
        dup_id.validate(),
        Err(GenesisError::DuplicateStakeholder(id))
    );
    // Same key, another id.
    let dup_key = with(|g| {
        let mut s = g.initial_stakeholders[0].clone();
        s.id = "other".into();
        g.initial_stakeholders.push(s);
    });
    assert_eq!(
        dup_key.validate(),
        Err(GenesisError::DuplicateStakeholder("other".into()))
    );
}

#[test]
fn supply_overflow_in_balances_or_stakes_is_refused() {
    let big_balance = with(|g| g.initial_balances[0].amount = u64::MAX);
    assert_eq!(big_balance.validate(), Err(GenesisError::SupplyOverflow));
    let big_stake = with(|g| g.initial_stakeholders[0].stake = u64::MAX);
    assert_eq!(big_stake.validate(), Err(GenesisError::SupplyOverflow));
    // Exactly u64::MAX in all is fine, and that is the initial supply.
    let exact = with(|g| {
        let rest: u64 = g.initial_supply() - g.initial_balances[0].amount;
        g.initial_balances[0].amount = u64::MAX - rest;
    });
    assert_eq!(exact.validate(), Ok(()));
    assert_eq!(exact.initial_supply(), u64::MAX);
}

#[test]
fn stakeholder_ids_are_1_to_32_bytes_of_the_allowed_characters() {
    use pp_ledger::genesis::is_valid_stakeholder_id as ok;
    assert!(ok("a"));
    assert!(ok(&"a".repeat(32)));
    assert!(ok("Node-0.b_9"));
    assert!(!ok(""));
    assert!(!ok(&"a".repeat(33)));
    for bad in ["a b", "a/b", "a:b", "\u{e9}", "a\0"] {
        assert!(!ok(bad), "{bad:?}");
    }
}

#[test]
fn devnet_has_the_documented_parameters() {
    let g = Genesis::devnet("node0", key(1).public(), GENESIS_TIME);
    assert_eq!(g.validate(), Ok(()));
    assert_eq!(
        (g.slot_duration_ms, g.slots_per_epoch, g.difficulty, g.k),
        (1_000, 60, 2, 100)
    );
    assert_eq!(
        (g.max_block_bytes, g.max_block_txs),
        (2 * 1024 * 1024, 5_000)
    );
    assert_eq!((g.block_reward, g.max_clock_skew_ms), (50, 2_000));
}
