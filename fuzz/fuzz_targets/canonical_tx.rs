//! pp-ledger's canonical transaction decoder: never panics; whatever it accepts re-encodes to
//! exactly the input bytes (the encoding is canonical: one byte string per transaction), its
//! `encoded_len` is the input length, and the JSON form round-trips to the same transaction.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pp_ledger::{Decode, Encode, Hash, Transaction};

fuzz_target!(|data: &[u8]| {
    let Ok(tx) = Transaction::from_canonical_bytes(data) else {
        return;
    };
    assert_eq!(
        tx.to_canonical_bytes(),
        data,
        "canonical re-encoding differs"
    );
    assert_eq!(tx.encoded_len(), data.len(), "encoded_len disagrees");
    let json = serde_json::to_vec(&tx).expect("a decoded transaction serializes");
    let back: Transaction = serde_json::from_slice(&json).expect("its JSON parses back");
    assert_eq!(back, tx, "JSON round trip differs");
    assert_eq!(back.id(), tx.id());
    // Never panics, whatever the key and signature bytes.
    let _ = tx.verify_signature(&Hash::ZERO);
});
