//! The HTTP `POST /transactions` body parse, exactly as pp-server's `submit_tx` does it
//! (`serde_json::from_slice::<Transaction>`), then `id()` and the admission check
//! (`LedgerState::check_tx`, signature included) on a fixed state. Never panics; an accepted
//! body round-trips through JSON and canonical bytes; `check_tx` never accepts a transaction
//! whose signature does not verify, and agrees with `apply_tx`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pp_ledger::{Decode, Encode, LedgerState, Transaction};

fuzz_target!(|data: &[u8]| {
    let Ok(tx) = serde_json::from_slice::<Transaction>(data) else {
        return;
    };
    let id = tx.id();
    let json = serde_json::to_vec(&tx).expect("serializes");
    let back: Transaction = serde_json::from_slice(&json).expect("parses back");
    assert_eq!(back, tx);
    assert_eq!(back.id(), id);
    let canonical = tx.to_canonical_bytes();
    assert_eq!(canonical.len(), tx.encoded_len());
    assert_eq!(
        Transaction::from_canonical_bytes(&canonical).ok(),
        Some(tx.clone())
    );

    let f = pp_fuzz::fixture();
    let gh = f.genesis.hash();
    let state = LedgerState::from_genesis(&f.genesis);
    let checked = state.check_tx(&tx, &gh);
    if checked.is_ok() {
        assert!(
            tx.verify_signature(&gh).is_ok(),
            "check_tx accepted a bad signature"
        );
        assert!(tx.body.amount > 0);
    }
    let mut applied = state.clone();
    let producer = pp_fuzz::key(1).public();
    let r = applied.apply_tx(&tx, &gh, &producer);
    assert_eq!(r.is_ok(), checked.is_ok(), "check_tx and apply_tx disagree");
    if r.is_err() {
        assert_eq!(applied, state, "a rejected transaction changed the state");
    } else {
        assert_eq!(applied.total_supply(), state.total_supply());
    }
});
