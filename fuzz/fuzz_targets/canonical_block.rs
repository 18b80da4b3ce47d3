//! pp-ledger's canonical block (and header) decoder: never panics; an accepted block re-encodes
//! to exactly the input bytes, `encoded_len` is the input length, the header's fixed-size form
//! is its encoding's prefix, and the JSON form round-trips.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pp_ledger::{Block, BlockHeader, Decode, Encode, Hash};

fuzz_target!(|data: &[u8]| {
    if let Ok(h) = BlockHeader::from_canonical_bytes(data) {
        assert_eq!(h.to_canonical_bytes(), data);
        assert_eq!(&h.canonical_bytes()[..], data);
    }
    let Ok(block) = Block::from_canonical_bytes(data) else {
        return;
    };
    assert_eq!(
        block.to_canonical_bytes(),
        data,
        "canonical re-encoding differs"
    );
    assert_eq!(block.encoded_len(), data.len(), "encoded_len disagrees");
    // 136 bytes for a classic (version 2) header, 280 for a praos (version 3) one.
    let header_len = block.header.encoded_len();
    assert_eq!(&block.header.canonical_bytes()[..], &data[..header_len]);
    let json = serde_json::to_vec(&block).expect("a decoded block serializes");
    let back: Block = serde_json::from_slice(&json).expect("its JSON parses back");
    assert_eq!(back, block, "JSON round trip differs");
    let _ = block.compute_tx_root();
    let _ = block.verify_signature(&Hash::ZERO);
    let _ = block.header.meets_pow();
});
