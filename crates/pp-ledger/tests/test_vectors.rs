//! Test vectors (also in docs/consensus.md): a fixed genesis, a fixed signed transaction and a
//! fixed mined block (difficulty 2), with their canonical encodings, hashes and signatures.
//! Another implementation that reproduces these bytes interoperates with this one.
//! Regenerate with `cargo run -p pp-ledger --example test_vectors` (only if the format changes
//! on purpose: these values are consensus).

use pp_ledger::crypto::{signing_message, Domain};
use pp_ledger::{
    Block, Decode, Encode, Genesis, Hash, KeyPair, LedgerState, Transaction, HEADER_LEN,
};

const GENESIS_JSON: &str = r#"{
  "network": "pp-testvector",
  "genesis_time": 1700000000000,
  "slot_duration_ms": 1000,
  "slots_per_epoch": 60,
  "difficulty": 2,
  "k": 10,
  "max_block_bytes": 1048576,
  "max_block_txs": 1000,
  "block_reward": 50,
  "max_clock_skew_ms": 2000,
  "initial_balances": [
    {
      "account": "8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c",
      "amount": 1000000
    },
    {
      "account": "8139770ea87d175f56a35466c34c7ecccb8d8a91b4ee37a25df60f5b8fc9b394",
      "amount": 500000
    }
  ],
  "initial_stakeholders": [
    {
      "id": "alice",
      "public_key": "8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c",
      "stake": 1000
    },
    {
      "id": "bob",
      "public_key": "8139770ea87d175f56a35466c34c7ecccb8d8a91b4ee37a25df60f5b8fc9b394",
      "stake": 3000
    }
  ],
  "epoch_nonce": "908726b6ba07be63b3cba4a17a12959e59b53ac17a6d2032f7d76d6db31f1c48"
}"#;

const GENESIS_CANONICAL: &str = "0000000d70702d74657374766563746f720000018bcfe5680000000000000003e8000000000000003c00000002000000000000000a0000000000100000000003e8000000000000003200000000000007d0000000028a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c00000000000f42408139770ea87d175f56a35466c34c7ecccb8d8a91b4ee37a25df60f5b8fc9b394000000000007a1200000000200000005616c6963658a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c00000000000003e800000003626f628139770ea87d175f56a35466c34c7ecccb8d8a91b4ee37a25df60f5b8fc9b3940000000000000bb8908726b6ba07be63b3cba4a17a12959e59b53ac17a6d2032f7d76d6db31f1c48";
const GENESIS_HASH: &str = "b2dda3e7a37922206901efbae3861413e253fe99ac8d61e4362e005ba9a1dbd9";
const GENESIS_BLOCK_HASH: &str = "a020afdca89127ff9f290fec7ac6b65bba7dc8b7ea24f5cae768f1ac086af2c6";
const TX_BODY_CANONICAL: &str = "008a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5ced4928c628d1c2c6eae90338905995612959273a5c63f93636c14614ac8737d100000000000004d200000000000000050000000000000000";
const TX_ID: &str = "cf551e4fe64a2a11a9818844c2ac9007aed285f2248857f4a5de13b1e1a6f6c9";
const TX_SIGNING_MESSAGE: &str = "70702d6c65646765722f74782f7631b2dda3e7a37922206901efbae3861413e253fe99ac8d61e4362e005ba9a1dbd9cf551e4fe64a2a11a9818844c2ac9007aed285f2248857f4a5de13b1e1a6f6c9";
const TX_SIGNATURE: &str = "339c17258b2476e72f533997e38ef52453ebc6446ccd740c7ccb28cd1f5a2220f1beb7bdf34ed9304b2ef4558f4565318a79edd28f6fd13d89ae0e3784051402";
const TX_CANONICAL: &str = "008a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5ced4928c628d1c2c6eae90338905995612959273a5c63f93636c14614ac8737d100000000000004d200000000000000050000000000000000339c17258b2476e72f533997e38ef52453ebc6446ccd740c7ccb28cd1f5a2220f1beb7bdf34ed9304b2ef4558f4565318a79edd28f6fd13d89ae0e3784051402";
/// Praos bond (tag 3): bob bonds 500 more as "bob", fee 2, nonce 0, registering the VRF key
/// [`BOND_VRF_KEY`] (alice's VRF key of docs/leader-election.md §10.7), signed for the genesis
/// above (the encoding does not depend on the leader mode).
const BOND_VRF_KEY: &str = "94004ce3ca7c886076f5a961967c88a3beea352f9ba2cc13b56d477bb88acd4a";
const BOND_BODY_CANONICAL: &str = "038139770ea87d175f56a35466c34c7ecccb8d8a91b4ee37a25df60f5b8fc9b39400000003626f6294004ce3ca7c886076f5a961967c88a3beea352f9ba2cc13b56d477bb88acd4a00000000000001f400000000000000020000000000000000";
const BOND_ID: &str = "b44f45537e8e77a592a0f4d8fe45b325c79d1a69a45ff0399150c8f4c5514b3c";
const BOND_CANONICAL: &str = "038139770ea87d175f56a35466c34c7ecccb8d8a91b4ee37a25df60f5b8fc9b39400000003626f6294004ce3ca7c886076f5a961967c88a3beea352f9ba2cc13b56d477bb88acd4a00000000000001f400000000000000020000000000000000289c6b568340abe8c1e41b9523d0d3355e734ee5b09c94cd437eed82431b0b6b422f82742d3fbb3a69ec0f5f1ab8ded3800c3e37e4bc447850fb8e8db87cf400";
const BLOCK_HEADER_CANONICAL: &str = "0000000500000000000000010000000000000001a020afdca89127ff9f290fec7ac6b65bba7dc8b7ea24f5cae768f1ac086af2c6352cab7642a55dd50697fe3c66f1c0709f07c1801928af59f89fb27037480706d0de68d60ff2a49fd690ae30b1bcdf0b5f06923c9d56f227cd2ae4a344ae90718a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c0000018bcfe56be800000002000000000000002e";
const BLOCK_TX_ROOT: &str = "352cab7642a55dd50697fe3c66f1c0709f07c1801928af59f89fb27037480706";
const BLOCK_STATE_ROOT: &str = "d0de68d60ff2a49fd690ae30b1bcdf0b5f06923c9d56f227cd2ae4a344ae9071";
const GENESIS_STATE_ROOT: &str = "ed9f7cf6a3c542a1161f0970b39a2a8b453d060e3dc59b30f9184492746ff82f";
const BLOCK_HASH: &str = "001c09a564e4405a9cef72a3cb4db89963ff4d8baabe6881d96d13375d589fd0";
const BLOCK_SIGNING_MESSAGE: &str = "70702d6c65646765722f626c6f636b2f7631b2dda3e7a37922206901efbae3861413e253fe99ac8d61e4362e005ba9a1dbd9001c09a564e4405a9cef72a3cb4db89963ff4d8baabe6881d96d13375d589fd0";
const BLOCK_SIGNATURE: &str = "821571439e75b3468f95a3d2d78fc52d1017a4e26eaf5d93973946ef4122c41b2684c39b8b5eb3b1f9328d76bd4814a2b717b74fdd88270cec5f93f5befd4b04";
const BLOCK_CANONICAL: &str = "0000000500000000000000010000000000000001a020afdca89127ff9f290fec7ac6b65bba7dc8b7ea24f5cae768f1ac086af2c6352cab7642a55dd50697fe3c66f1c0709f07c1801928af59f89fb27037480706d0de68d60ff2a49fd690ae30b1bcdf0b5f06923c9d56f227cd2ae4a344ae90718a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c0000018bcfe56be800000002000000000000002e821571439e75b3468f95a3d2d78fc52d1017a4e26eaf5d93973946ef4122c41b2684c39b8b5eb3b1f9328d76bd4814a2b717b74fdd88270cec5f93f5befd4b0400000001008a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5ced4928c628d1c2c6eae90338905995612959273a5c63f93636c14614ac8737d100000000000004d200000000000000050000000000000000339c17258b2476e72f533997e38ef52453ebc6446ccd740c7ccb28cd1f5a2220f1beb7bdf34ed9304b2ef4558f4565318a79edd28f6fd13d89ae0e3784051402";

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

fn genesis() -> Genesis {
    Genesis::from_json(GENESIS_JSON.as_bytes()).expect("the vector genesis is valid")
}

#[test]
fn keys_from_fixed_seeds_match_the_genesis() {
    let g = genesis();
    assert_eq!(
        g.initial_stakeholders[0].public_key,
        KeyPair::from_seed([1u8; 32]).public()
    );
    assert_eq!(
        g.initial_stakeholders[1].public_key,
        KeyPair::from_seed([2u8; 32]).public()
    );
}

#[test]
fn genesis_encoding_and_hash_match_the_vector() {
    let g = genesis();
    assert_eq!(hex(&g.to_canonical_bytes()), GENESIS_CANONICAL);
    assert_eq!(g.hash().to_hex(), GENESIS_HASH);
    assert_eq!(
        Hash::blake2b(&unhex(GENESIS_CANONICAL)).to_hex(),
        GENESIS_HASH
    );
    assert_eq!(g.block().hash().to_hex(), GENESIS_BLOCK_HASH);
    // The genesis block commits the state after it: the genesis balances, stakes and ids.
    assert_eq!(g.block().header.state_root.to_hex(), GENESIS_STATE_ROOT);
    assert_eq!(
        pp_ledger::state_tree::state_root(&LedgerState::from_genesis(&g)).to_hex(),
        GENESIS_STATE_ROOT
    );
}

#[test]
fn transaction_id_signature_and_encoding_match_the_vector() {
    let g = genesis();
    let gh = g.hash();
    let alice = KeyPair::from_seed([1u8; 32]);
    let carol = KeyPair::from_seed([3u8; 32]).public();
    let tx = Transaction::transfer(&alice, carol, 1_234, 5, 0, &gh);
    assert_eq!(hex(&tx.body.to_canonical_bytes()), TX_BODY_CANONICAL);
    assert_eq!(tx.id().to_hex(), TX_ID);
    assert_eq!(Hash::blake2b(&unhex(TX_BODY_CANONICAL)).to_hex(), TX_ID);
    assert_eq!(
        hex(&signing_message(Domain::Transaction, &gh, &tx.id())),
        TX_SIGNING_MESSAGE
    );
    // Ed25519 signatures are deterministic, so the signature is a vector too.
    assert_eq!(tx.signature.to_hex(), TX_SIGNATURE);
    assert_eq!(hex(&tx.to_canonical_bytes()), TX_CANONICAL);
    let decoded = Transaction::from_canonical_bytes(&unhex(TX_CANONICAL)).unwrap();
    assert_eq!(decoded, tx);
    assert!(decoded.verify_signature(&gh).is_ok());
}

#[test]
fn praos_bond_with_a_vrf_key_matches_the_vector() {
    let g = genesis();
    let gh = g.hash();
    let bob = KeyPair::from_seed([2u8; 32]);
    let vrf = pp_ledger::PublicKey(unhex(BOND_VRF_KEY).try_into().unwrap());
    let tx = pp_ledger::TxBody {
        kind: pp_ledger::TxKind::Bond {
            stakeholder_id: "bob".into(),
            vrf_key: Some(vrf),
        },
        from: bob.public(),
        amount: 500,
        fee: 2,
        nonce: 0,
    }
    .sign(&bob, &gh);
    let body = hex(&tx.body.to_canonical_bytes());
    let all = hex(&tx.to_canonical_bytes());
    assert_eq!(body, BOND_BODY_CANONICAL);
    assert_eq!(tx.id().to_hex(), BOND_ID);
    assert_eq!(all, BOND_CANONICAL);
    assert_eq!(tx.to_canonical_bytes().len(), tx.encoded_len());
    assert_eq!(
        Transaction::from_canonical_bytes(&unhex(BOND_CANONICAL)).unwrap(),
        tx
    );
}

#[test]
fn block_hash_pow_signature_and_encoding_match_the_vector() {
    let g = genesis();
    let gh = g.hash();
    let block = Block::from_canonical_bytes(&unhex(BLOCK_CANONICAL)).unwrap();
    assert_eq!(hex(&block.header.canonical_bytes()), BLOCK_HEADER_CANONICAL);
    assert_eq!(BLOCK_HEADER_CANONICAL.len(), 2 * HEADER_LEN);
    assert_eq!(block.hash().to_hex(), BLOCK_HASH);
    assert_eq!(
        Hash::sha256(&unhex(BLOCK_HEADER_CANONICAL)).to_hex(),
        BLOCK_HASH
    );
    assert!(BLOCK_HASH.starts_with("00"));
    assert!(block.header.meets_pow());
    assert_eq!(block.header.prev_hash, g.block().hash());
    assert_eq!(block.header.tx_root.to_hex(), BLOCK_TX_ROOT);
    assert_eq!(block.compute_tx_root().to_hex(), BLOCK_TX_ROOT);
    assert_eq!(block.header.state_root.to_hex(), BLOCK_STATE_ROOT);
    // One leaf: the root is H(0x00 || txid).
    let id = Hash::from_hex(TX_ID).unwrap();
    assert_eq!(
        Hash::blake2b_parts(&[&[0u8], &id.0]).to_hex(),
        BLOCK_TX_ROOT
    );
    assert_eq!(
        hex(&signing_message(Domain::Block, &gh, &block.hash())),
        BLOCK_SIGNING_MESSAGE
    );
    assert_eq!(block.signature.to_hex(), BLOCK_SIGNATURE);
    assert!(block.verify_signature(&gh).is_ok());
    assert_eq!(block.transactions[0].id().to_hex(), TX_ID);
}

#[test]
fn producing_the_vector_block_again_gives_the_same_bytes() {
    let g = genesis();
    let gh = g.hash();
    let alice = KeyPair::from_seed([1u8; 32]);
    let carol = KeyPair::from_seed([3u8; 32]).public();
    let tx = Transaction::transfer(&alice, carol, 1_234, 5, 0, &gh);
    let state_root = pp_ledger::testing::state_root_after(
        &pp_ledger::LedgerState::from_genesis(&g),
        &g,
        &alice.public(),
        std::slice::from_ref(&tx),
    )
    .unwrap();
    let block = Block::produce(
        &g.block().header,
        1,
        1_700_000_001_000,
        2,
        vec![tx],
        state_root,
        &alice,
        &gh,
        1 << 24,
    )
    .unwrap();
    assert_eq!(hex(&block.to_canonical_bytes()), BLOCK_CANONICAL);
}

#[test]
fn applying_the_vector_block_gives_the_documented_balances() {
    let g = genesis();
    let gh = g.hash();
    let block = Block::from_canonical_bytes(&unhex(BLOCK_CANONICAL)).unwrap();
    let mut s = LedgerState::from_genesis(&g);
    s.apply_block(&block, &gh, g.block_reward).unwrap();
    let alice = KeyPair::from_seed([1u8; 32]).public();
    let carol = KeyPair::from_seed([3u8; 32]).public();
    // Alice (the producer) pays 1234 + 5, gets the fee 5 back and the reward 50.
    assert_eq!(s.balance(&alice), 1_000_000 - 1_234 - 5 + 5 + 50);
    assert_eq!(s.balance(&carol), 1_234);
    assert_eq!(s.nonce(&alice), 1);
    assert_eq!(s.total_supply(), 1_504_000 + 50);
    assert_eq!(
        pp_ledger::state_tree::state_root(&s).to_hex(),
        BLOCK_STATE_ROOT
    );
}

#[test]
fn docs_consensus_md_lists_every_vector() {
    let doc = include_str!("../../../docs/consensus.md");
    // Long encodings are wrapped in the document; compare with line breaks removed.
    let flat: String = doc.split_whitespace().collect();
    for (name, v) in [
        ("genesis canonical", GENESIS_CANONICAL),
        ("genesis hash", GENESIS_HASH),
        ("genesis block hash", GENESIS_BLOCK_HASH),
        ("tx body", TX_BODY_CANONICAL),
        ("tx id", TX_ID),
        ("tx signing message", TX_SIGNING_MESSAGE),
        ("tx signature", TX_SIGNATURE),
        ("block header", BLOCK_HEADER_CANONICAL),
        ("tx root", BLOCK_TX_ROOT),
        ("block state root", BLOCK_STATE_ROOT),
        ("genesis state root", GENESIS_STATE_ROOT),
        ("block hash", BLOCK_HASH),
        ("block signing message", BLOCK_SIGNING_MESSAGE),
        ("block signature", BLOCK_SIGNATURE),
        ("block canonical", BLOCK_CANONICAL),
        ("praos bond body", BOND_BODY_CANONICAL),
        ("praos bond id", BOND_ID),
        ("praos bond canonical", BOND_CANONICAL),
    ] {
        assert!(
            flat.contains(v),
            "docs/consensus.md lacks the {name} vector"
        );
    }
    let json: String = GENESIS_JSON.split_whitespace().collect();
    assert!(
        flat.contains(&json),
        "docs/consensus.md lacks the genesis JSON"
    );
}
