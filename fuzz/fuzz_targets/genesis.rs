//! The genesis JSON parser and validator (`Genesis::from_json`): never panics; an accepted
//! genesis validates, and its pretty JSON (as written to genesis.json) parses back to the same
//! genesis with the same hash, canonical bytes and initial ledger state.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pp_ledger::{Encode, Genesis, LedgerState};

fuzz_target!(|data: &[u8]| {
    let Ok(g) = Genesis::from_json(data) else {
        return;
    };
    assert_eq!(g.validate(), Ok(()));
    let text = g.to_json_pretty();
    let back = Genesis::from_json(text.as_bytes()).expect("written genesis parses back");
    assert_eq!(back, g);
    assert_eq!(back.hash(), g.hash());
    assert_eq!(back.to_canonical_bytes(), g.to_canonical_bytes());
    let st = LedgerState::from_genesis(&g);
    // Validation bounds the supply, so the initial state holds exactly the genesis supply.
    assert_eq!(st.total_supply(), u128::from(g.initial_supply()));
    let _ = g.block().hash();
});
