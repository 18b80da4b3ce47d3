//! Ledger rules (DESIGN §5) on `LedgerState`: each rule accepts what it should and rejects what it
//! should with the exact error, and blocks apply all or nothing and roll back exactly.

mod common;

use common::*;
use pp_ledger::{Block, BlockError, Hash, LedgerState, PublicKey, TxError};

fn setup() -> (LedgerState, Hash) {
    let g = genesis();
    (LedgerState::from_genesis(&g), g.hash())
}

#[test]
fn genesis_state_holds_balances_stakes_and_ids() {
    let g = genesis();
    let s = LedgerState::from_genesis(&g);
    assert_eq!(s.balance(&key(1).public()), 1_000_000);
    assert_eq!(s.stake(&key(2).public()), 2_000);
    assert_eq!(s.stakeholder_id(&key(1).public()), Some("alice"));
    assert_eq!(s.stakeholder_key("bob"), Some(key(2).public()));
    assert_eq!(s.nonce(&key(1).public()), 0);
    assert!(s.account_exists(&key(3).public()));
    assert!(!s.account_exists(&key(4).public()));
    assert_eq!(s.total_supply(), u128::from(g.initial_supply()));
    assert_eq!(s.stakes().len(), 2);
}

#[test]
fn transfer_moves_amount_and_pays_fee_to_producer() {
    let (mut s, gh) = setup();
    let tx = transfer(1, 4, 100, 7, 0, &gh);
    s.apply_tx(&tx, &gh, &key(2).public()).unwrap();
    assert_eq!(s.balance(&key(1).public()), 1_000_000 - 107);
    assert_eq!(s.balance(&key(4).public()), 100);
    assert_eq!(s.balance(&key(2).public()), 1_000_007);
    assert_eq!(s.nonce(&key(1).public()), 1);
    assert!(s.account_exists(&key(4).public()));
}

#[test]
fn transfer_to_self_costs_only_the_fee() {
    let (mut s, gh) = setup();
    s.apply_tx(&transfer(3, 3, 400_000, 5, 0, &gh), &gh, &key(1).public())
        .unwrap();
    assert_eq!(s.balance(&key(3).public()), 500_000 - 5);
}

#[test]
fn rejects_zero_amount() {
    let (s, gh) = setup();
    assert_eq!(
        s.check_tx(&transfer(1, 4, 0, 1, 0, &gh), &gh),
        Err(TxError::ZeroAmount)
    );
}

#[test]
fn rejects_replayed_transaction_with_bad_nonce() {
    let (mut s, gh) = setup();
    let tx = transfer(1, 4, 10, 1, 0, &gh);
    s.apply_tx(&tx, &gh, &key(2).public()).unwrap();
    let before = s.clone();
    assert_eq!(
        s.apply_tx(&tx, &gh, &key(2).public()),
        Err(TxError::BadNonce {
            account: key(1).public(),
            expected: 1,
            got: 0
        })
    );
    assert_eq!(s, before);
}

#[test]
fn rejects_nonce_gap() {
    let (s, gh) = setup();
    assert!(matches!(
        s.check_tx(&transfer(1, 4, 10, 1, 5, &gh), &gh),
        Err(TxError::BadNonce {
            expected: 0,
            got: 5,
            ..
        })
    ));
}

#[test]
fn rejects_insufficient_balance_with_values() {
    let (s, gh) = setup();
    assert_eq!(
        s.check_tx(&transfer(3, 4, 500_000, 1, 0, &gh), &gh),
        Err(TxError::InsufficientBalance {
            account: key(3).public(),
            needed: 500_001,
            available: 500_000
        })
    );
    // An account that never received anything has nothing to spend.
    assert!(matches!(
        s.check_tx(&transfer(5, 4, 1, 0, 0, &gh), &gh),
        Err(TxError::InsufficientBalance { available: 0, .. })
    ));
}

#[test]
fn rejects_amount_plus_fee_overflow() {
    let (s, gh) = setup();
    assert_eq!(
        s.check_tx(&transfer(1, 4, u64::MAX, 1, 0, &gh), &gh),
        Err(TxError::Overflow {
            account: key(1).public(),
            what: "amount + fee"
        })
    );
}

#[test]
fn rejects_signature_from_another_network_or_tampered() {
    let (s, gh) = setup();
    let other = transfer(1, 4, 10, 1, 0, &Hash::ZERO);
    assert!(matches!(
        s.check_tx(&other, &gh),
        Err(TxError::BadSignature(_))
    ));
    let mut t = transfer(1, 4, 10, 1, 0, &gh);
    t.body.amount = 11;
    assert!(matches!(s.check_tx(&t, &gh), Err(TxError::BadSignature(_))));
}

#[test]
fn check_tx_changes_nothing() {
    let (s, gh) = setup();
    let before = s.clone();
    s.check_tx(&transfer(1, 4, 10, 1, 0, &gh), &gh).unwrap();
    assert_eq!(s, before);
}

#[test]
fn bond_moves_balance_to_stake_and_binds_id() {
    let (mut s, gh) = setup();
    let p = key(9).public();
    s.apply_tx(&bond(3, "carol", 1_000, 2, 0, &gh), &gh, &p)
        .unwrap();
    let c = key(3).public();
    assert_eq!(s.stake(&c), 1_000);
    assert_eq!(s.balance(&c), 500_000 - 1_002);
    assert_eq!(s.stakeholder_id(&c), Some("carol"));
    assert_eq!(s.stakeholder_key("carol"), Some(c));
    // A later bond repeats the id.
    s.apply_tx(&bond(3, "carol", 10, 0, 1, &gh), &gh, &p)
        .unwrap();
    assert_eq!(s.stake(&c), 1_010);
}

#[test]
fn bond_rejects_taken_mismatched_and_malformed_ids() {
    let (s, gh) = setup();
    assert_eq!(
        s.check_tx(&bond(3, "alice", 10, 0, 0, &gh), &gh),
        Err(TxError::StakeholderIdTaken {
            id: "alice".into(),
            owner: key(1).public()
        })
    );
    assert_eq!(
        s.check_tx(&bond(1, "alice2", 10, 0, 0, &gh), &gh),
        Err(TxError::StakeholderIdMismatch {
            account: key(1).public(),
            bound: "alice".into(),
            got: "alice2".into()
        })
    );
    assert_eq!(
        s.check_tx(&bond(3, "no spaces", 10, 0, 0, &gh), &gh),
        Err(TxError::BadStakeholderId {
            id: "no spaces".into()
        })
    );
    assert!(s.check_tx(&bond(1, "alice", 10, 0, 0, &gh), &gh).is_ok());
}

#[test]
fn unbond_moves_stake_back_and_removes_zero_stake() {
    let (mut s, gh) = setup();
    let a = key(1).public();
    s.apply_tx(&unbond(1, 400, 1, 0, &gh), &gh, &key(2).public())
        .unwrap();
    assert_eq!(s.stake(&a), 600);
    assert_eq!(s.balance(&a), 1_000_000 + 400 - 1);
    s.apply_tx(&unbond(1, 600, 0, 1, &gh), &gh, &key(2).public())
        .unwrap();
    assert_eq!(s.stake(&a), 0);
    assert!(!s.stakes().contains_key(&a));
    // The id stays bound to its key.
    assert_eq!(s.stakeholder_id(&a), Some("alice"));
}

#[test]
fn unbond_rejects_more_than_the_stake() {
    let (s, gh) = setup();
    assert_eq!(
        s.check_tx(&unbond(1, 1_001, 0, 0, &gh), &gh),
        Err(TxError::InsufficientStake {
            account: key(1).public(),
            needed: 1_001,
            available: 1_000
        })
    );
}

fn block_with(txs: Vec<pp_ledger::Transaction>, producer: PublicKey) -> Block {
    let g = genesis();
    let mut b = block_on(&g, &g.block(), 1, txs);
    b.header.producer = producer;
    b
}

#[test]
fn apply_block_is_all_or_nothing() {
    let (mut s, gh) = setup();
    let before = s.clone();
    let txs = vec![
        transfer(1, 4, 10, 1, 0, &gh),
        transfer(2, 4, 10, 1, 0, &gh),
        transfer(1, 4, 10, 1, 0, &gh), // replay of the first: fails
    ];
    let b = block_with(txs, key(2).public());
    match s.apply_block(&b, &gh, 10) {
        Err(BlockError::Tx {
            index: 2, error, ..
        }) => {
            assert!(matches!(error, TxError::BadNonce { .. }))
        }
        other => panic!("expected a Tx error at index 2, got {other:?}"),
    }
    assert_eq!(s, before);
}

#[test]
fn apply_block_mints_reward_and_rollback_restores_exact_state() {
    let (mut s, gh) = setup();
    let before = s.clone();
    let txs = vec![
        transfer(1, 4, 10, 3, 0, &gh),
        bond(3, "carol", 50, 1, 0, &gh),
        unbond(2, 100, 2, 0, &gh),
        transfer(4, 5, 5, 1, 0, &gh), // spends what the first transfer created
    ];
    let b = block_with(txs, key(6).public());
    let undo = s.apply_block(&b, &gh, 10).unwrap();
    assert_eq!(undo.block_hash(), b.hash());
    assert_eq!(s.balance(&key(6).public()), 10 + 3 + 1 + 2 + 1);
    assert_eq!(s.minted(), 10);
    assert_eq!(s.total_supply(), before.total_supply() + 10);
    s.rollback(undo);
    assert_eq!(s, before);
    assert!(!s.account_exists(&key(6).public()));
    assert_eq!(s.stakeholder_key("carol"), None);
}

#[test]
fn reward_overflow_is_an_error_not_a_panic() {
    let mut g = genesis();
    g.initial_balances[0].amount = u64::MAX - 10_000;
    g.initial_balances.truncate(1);
    let gh = g.hash();
    let mut s = LedgerState::from_genesis(&g);
    let before = s.clone();
    let b = block_with(vec![], key(1).public());
    assert_eq!(
        s.apply_block(&b, &gh, u64::MAX),
        Err(BlockError::RewardOverflow {
            producer: key(1).public()
        })
    );
    assert_eq!(s, before);
}

#[test]
fn undo_records_one_value_per_account_and_map_a_block_changed() {
    let (mut s, gh) = setup();
    // No transaction and no reward: nothing changed, nothing to undo.
    let empty = block_with(vec![], key(6).public());
    let undo = s.apply_block(&empty, &gh, 0).unwrap();
    assert!(undo.is_empty());
    assert_eq!(undo.len(), 0);

    // Two transfers from key 1 (its balance and nonce, once each however often they change),
    // a new account 4 and the producer's balance (fees and reward): four values.
    let (mut s, gh) = setup();
    let txs = vec![transfer(1, 4, 10, 3, 0, &gh), transfer(1, 4, 7, 1, 1, &gh)];
    let b = block_with(txs, key(6).public());
    let undo = s.apply_block(&b, &gh, 10).unwrap();
    assert!(!undo.is_empty());
    assert_eq!(undo.len(), 4);
}

/// A view of a state in which key 1 already spent `spent` and used one nonce (as a mempool sees
/// it behind a pending transaction).
struct Behind<'a> {
    state: &'a LedgerState,
    spent: u64,
}

impl pp_ledger::Accounts for Behind<'_> {
    fn balance(&self, a: &PublicKey) -> u64 {
        let b = self.state.balance(a);
        if *a == key(1).public() {
            b - self.spent
        } else {
            b
        }
    }
    fn nonce(&self, a: &PublicKey) -> u64 {
        self.state.nonce(a) + u64::from(*a == key(1).public())
    }
    fn stake(&self, a: &PublicKey) -> u64 {
        self.state.stake(a)
    }
    fn stakeholder_id(&self, a: &PublicKey) -> Option<&str> {
        self.state.stakeholder_id(a)
    }
    fn stakeholder_key(&self, id: &str) -> Option<PublicKey> {
        self.state.stakeholder_key(id)
    }
    fn praos(&self) -> bool {
        pp_ledger::Accounts::praos(self.state)
    }
    fn vrf_key(&self, a: &PublicKey) -> Option<PublicKey> {
        self.state.vrf_key(a)
    }
    fn vrf_owner(&self, v: &PublicKey) -> Option<PublicKey> {
        pp_ledger::Accounts::vrf_owner(self.state, v)
    }
}

#[test]
fn the_rules_judge_any_view_of_the_accounts() {
    let (s, gh) = setup();
    let cache = pp_ledger::SignatureCache::default();
    let view = Behind {
        state: &s,
        spent: 999_990,
    };
    // On the state, nonce 0 is next and 1,000,000 covers anything here; on the view, nonce 1 is
    // next and 10 is left.
    let next = transfer(1, 4, 5, 1, 1, &gh);
    assert_eq!(
        pp_ledger::check_tx_against(&view, &next, &gh, &cache),
        Ok(())
    );
    assert!(matches!(
        s.check_tx(&next, &gh),
        Err(TxError::BadNonce { expected: 0, .. })
    ));
    assert_eq!(
        pp_ledger::check_tx_against(&view, &transfer(1, 4, 10, 1, 1, &gh), &gh, &cache),
        Err(TxError::InsufficientBalance {
            account: key(1).public(),
            needed: 11,
            available: 10
        })
    );
    assert_eq!(
        pp_ledger::check_tx_against(&view, &bond(1, "bob", 1, 1, 1, &gh), &gh, &cache),
        Err(TxError::StakeholderIdMismatch {
            account: key(1).public(),
            bound: "alice".into(),
            got: "bob".into()
        })
    );
    let mut forged = transfer(1, 4, 5, 1, 1, &gh);
    forged.body.amount = 6;
    assert!(matches!(
        pp_ledger::check_tx_against(&view, &forged, &gh, &cache),
        Err(TxError::BadSignature(_))
    ));
    assert_eq!(TxError::ZeroAmount.code(), "zero_amount");
}
