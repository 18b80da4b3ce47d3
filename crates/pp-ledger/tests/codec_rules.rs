//! Exact rules of the canonical encoding (docs/consensus.md §1) and of the hex forms, at the
//! points the rest of the suite left open: sizes of every transaction kind, the decoder's count
//! bound at exactly the input's size, trailing bytes, hex length errors, and the `Debug` forms
//! (which must name a key, never print a secret). Each test kills mutants that cargo-mutants
//! found surviving the rest of the suite (see docs/testing.md, "Mutation testing").

mod common;

use common::*;
use pp_ledger::tx::MIN_TX_ENCODED_LEN;
use pp_ledger::{
    Block, Decode, DecodeError, Encode, Encoder, Hash, HexError, PublicKey, Signature, Transaction,
    HEADER_LEN,
};

/// One transaction of each kind, with a bond id of every length that matters.
fn one_of_each(gh: &Hash) -> Vec<Transaction> {
    vec![
        transfer(1, 2, 5, 1, 0, gh),
        bond(1, "a", 5, 1, 1, gh),
        bond(1, &"b".repeat(32), 5, 1, 2, gh),
        unbond(1, 5, 1, 3, gh),
    ]
}

#[test]
fn encoded_len_is_the_canonical_length_for_every_transaction_kind() {
    let gh = genesis().hash();
    for tx in one_of_each(&gh) {
        let bytes = tx.to_canonical_bytes();
        assert_eq!(tx.encoded_len(), bytes.len(), "{tx:?}");
        assert_eq!(Transaction::from_canonical_bytes(&bytes), Ok(tx));
    }
    // The smallest transaction, which bounds decoded counts, is an unbond.
    let unbond = unbond(1, 5, 1, 3, &gh);
    assert_eq!(MIN_TX_ENCODED_LEN, unbond.to_canonical_bytes().len());
    assert_eq!(MIN_TX_ENCODED_LEN, 1 + 32 + 3 * 8 + 64);
}

#[test]
fn block_of_only_minimum_size_transactions_decodes_and_one_more_claimed_is_refused() {
    let g = genesis();
    let gh = g.hash();
    // After the count, exactly count × MIN_TX_ENCODED_LEN bytes remain: the bound is met with
    // equality and must still accept.
    let txs: Vec<Transaction> = (0..3).map(|n| unbond(1, 5, 0, n, &gh)).collect();
    let b = block_on(&g, &g.block(), 1, txs);
    let bytes = b.to_canonical_bytes();
    assert_eq!(bytes.len(), HEADER_LEN + 64 + 4 + 3 * MIN_TX_ENCODED_LEN);
    assert_eq!(b.encoded_len(), bytes.len());
    assert_eq!(Block::from_canonical_bytes(&bytes), Ok(b));
    // Claiming a fourth transaction that the input cannot hold is refused before decoding any.
    let mut lying = bytes.clone();
    lying[HEADER_LEN + 64..HEADER_LEN + 68].copy_from_slice(&4u32.to_be_bytes());
    assert_eq!(
        Block::from_canonical_bytes(&lying),
        Err(DecodeError::CountTooLarge {
            count: 4,
            remaining: 3 * MIN_TX_ENCODED_LEN
        })
    );
}

#[test]
fn trailing_bytes_after_a_canonical_value_are_refused() {
    let gh = genesis().hash();
    let mut bytes = transfer(1, 2, 5, 1, 0, &gh).to_canonical_bytes();
    bytes.push(0);
    assert_eq!(
        Transaction::from_canonical_bytes(&bytes),
        Err(DecodeError::TrailingBytes(1))
    );
}

#[test]
fn encoder_reports_its_length() {
    let mut e = Encoder::with_capacity(16);
    assert!(e.is_empty());
    assert_eq!(e.len(), 0);
    e.u8(7).u32(1);
    assert!(!e.is_empty());
    assert_eq!(e.len(), 5);
    assert_eq!(e.into_bytes(), vec![7, 0, 0, 0, 1]);
}

#[test]
fn hex_forms_parse_back_and_length_errors_name_both_lengths() {
    assert_eq!(
        Hash::from_hex("abc"),
        Err(HexError::Length {
            expected: 64,
            got: 3
        })
    );
    assert_eq!(
        PublicKey::from_hex(&"0".repeat(66)),
        Err(HexError::Length {
            expected: 64,
            got: 66
        })
    );
    assert_eq!(
        Signature::from_hex("00"),
        Err(HexError::Length {
            expected: 128,
            got: 2
        })
    );
    assert!("abc".parse::<Hash>().is_err());
    let h = Hash::blake2b(b"x");
    assert_eq!(h.to_hex().parse::<Hash>(), Ok(h));
    assert_eq!(h.as_bytes(), &h.0);
}

#[test]
fn display_and_debug_forms_name_the_value_and_never_the_secret() {
    let h = Hash::blake2b(b"x");
    assert_eq!(format!("{h:?}"), format!("Hash({})", h.to_hex()));
    assert_eq!(format!("{h}"), h.to_hex());
    let k = key(7);
    let shown = format!("{k:?}");
    assert_eq!(shown, format!("KeyPair({})", k.public().to_hex()));
    assert!(!shown.contains(&hex_of(&k.secret_bytes())));
    let pk = k.public();
    assert_eq!(format!("{pk:?}"), format!("PublicKey({})", pk.to_hex()));
}

fn hex_of(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
