//! docs/vectors/short_ids.tsv holds the short-id test vectors of docs/protocol.md §14.2: this
//! implementation must reproduce every key and short id (an independent one does too:
//! docs/vectors/short_id_check.py). `cargo test -p pp-net --test short_id_vectors -- --ignored
//! --nocapture` prints the table from its inputs.

use pp_ledger::Hash;
use pp_net::compact::ShortIdKey;

fn path() -> String {
    concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/vectors/short_ids.tsv"
    )
    .to_string()
}

/// The inputs: (block hash, nonce, transaction id).
fn inputs() -> Vec<(Hash, u64, Hash)> {
    let h = |s: &str| Hash::sha256(s.as_bytes());
    vec![
        (Hash::ZERO, 0, Hash::ZERO),
        (Hash::ZERO, 1, Hash([0xff; 32])),
        (h("block 1"), 0x0123_4567_89ab_cdef, h("tx 1")),
        (h("block 1"), 0x0123_4567_89ab_cdef, h("tx 2")),
        (h("block 1"), u64::MAX, h("tx 1")),
        (h("block 2"), 42, Hash::blake2b(b"tx 3")),
    ]
}

fn row(block: &Hash, nonce: u64, txid: &Hash) -> String {
    let key = ShortIdKey::new(block, nonce);
    let (k0, k1) = key.words();
    format!(
        "{}\t{nonce}\t{k0:016x}\t{k1:016x}\t{}\t{:012x}",
        block.to_hex(),
        txid.to_hex(),
        key.short_id(txid).0
    )
}

const HEADER: &str = "block_hash\tnonce\tk0\tk1\ttxid\tshort_id";

#[test]
fn short_id_vectors_match() {
    let text = std::fs::read_to_string(path()).expect("docs/vectors/short_ids.tsv exists");
    let mut lines = text.lines().filter(|l| !l.starts_with('#'));
    assert_eq!(lines.next(), Some(HEADER));
    let rows: Vec<&str> = lines.filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(rows.len(), inputs().len());
    for (line, (block, nonce, txid)) in rows.iter().zip(inputs()) {
        assert_eq!(*line, row(&block, nonce, &txid));
    }
}

#[test]
#[ignore = "prints the vector table"]
fn print_short_id_vectors() {
    println!("{HEADER}");
    for (block, nonce, txid) in inputs() {
        println!("{}", row(&block, nonce, &txid));
    }
}
