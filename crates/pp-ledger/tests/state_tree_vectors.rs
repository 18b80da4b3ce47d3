//! docs/vectors/state_tree.tsv holds the vectors of docs/state-commitment.md §7: a small state
//! of four accounts from fixed seeds, its root, an inclusion proof and two exclusion proofs
//! (one ending at an empty subtree, one at another account's leaf). This implementation must
//! reproduce every line; an independent one does too (docs/vectors/state_tree_check.py, Python
//! standard library only). `cargo test -p pp-ledger --test state_tree_vectors -- --ignored
//! --nocapture` prints the file from its inputs.

use pp_ledger::state_tree::{verify, ProofTerminal};
use pp_ledger::{account_key, AccountLeaf, Encode, KeyPair, MemoryStore, StateTree};

const PATH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../docs/vectors/state_tree.tsv"
);

/// The accounts: (seed byte, balance, nonce, stake, stakeholder id, VRF key: the public key of
/// seed 0x11 for account 1; account 4 is a stakeholder without one).
fn accounts() -> Vec<(u8, AccountLeaf)> {
    let leaf = |balance, nonce, stake, id: Option<&str>, vrf: Option<u8>| AccountLeaf {
        balance,
        nonce,
        stake,
        stakeholder_id: id.map(str::to_owned),
        vrf_key: vrf.map(public),
    };
    vec![
        (1, leaf(1_000_000, 3, 50_000, Some("pool-a"), Some(0x11))),
        (2, leaf(250, 0, 0, None, None)),
        (3, leaf(0, 7, 0, None, None)),
        (4, leaf(u64::MAX, 1, 1, Some("b"), None)),
    ]
}

/// The total stake of the accounts (the total-stake leaf's value).
fn total_stake() -> u128 {
    accounts().iter().map(|(_, l)| u128::from(l.stake)).sum()
}

fn public(seed: u8) -> pp_ledger::PublicKey {
    KeyPair::from_seed([seed; 32]).public()
}

fn text() -> String {
    let mut out = String::new();
    out.push_str(
        "# State-tree vectors of docs/state-commitment.md §7 (tab-separated, hex). An account\n\
         # line: the ed25519 seed byte (the secret seed is 32 such bytes), the public key, the\n\
         # tree key, the leaf value. A total line: the total-stake key, its value (the sum of the\n\
         # stakes, u128). The tree holds exactly these leaves. A proof line: the\n\
         # queried tree key, the claimed value (- for absence), the proof bytes. Checked by\n\
         # crates/pp-ledger/tests/state_tree_vectors.rs and docs/vectors/state_tree_check.py.\n",
    );
    let mut tree = StateTree::new(MemoryStore::new());
    let mut changes = Vec::new();
    for (seed, leaf) in accounts() {
        let pk = public(seed);
        let key = account_key(&pk);
        let value = leaf.to_canonical_bytes();
        out.push_str(&format!(
            "account\t{seed}\t{}\t{}\t{}\n",
            hex(&pk.0),
            key.to_hex(),
            hex(&value)
        ));
        changes.push((key, Some(value)));
    }
    let total_key = pp_ledger::state_tree::total_stake_key();
    let total = pp_ledger::state_tree::total_stake_value(total_stake());
    out.push_str(&format!("total\t{}\t{}\n", total_key.to_hex(), hex(&total)));
    changes.push((total_key, Some(total.clone())));
    let root = tree.apply(0, changes).expect("memory store");
    out.push_str(&format!("root\t{}\n", root.to_hex()));

    let present = account_key(&public(accounts()[1].0));
    let (value, proof) = tree.prove(0, &present).expect("prove");
    let value = value.expect("present");
    verify(&root, &present, Some(&value), &proof).expect("valid");
    out.push_str(&format!(
        "inclusion\t{}\t{}\t{}\n",
        present.to_hex(),
        hex(&value),
        hex(&proof.to_bytes())
    ));
    // The total stake, proven.
    let (value, proof) = tree.prove(0, &total_key).expect("prove");
    assert_eq!(value.as_deref(), Some(&total[..]));
    verify(&root, &total_key, Some(&total), &proof).expect("valid");
    out.push_str(&format!(
        "inclusion\t{}\t{}\t{}\n",
        total_key.to_hex(),
        hex(&total),
        hex(&proof.to_bytes())
    ));
    // The first absent accounts (seeds 100, 101, …) whose paths end at an empty subtree and
    // at another account's leaf.
    for want_leaf in [false, true] {
        let (key, proof) = (100u8..=255)
            .map(|s| account_key(&public(s)))
            .map(|k| (k, tree.prove(0, &k).expect("prove").1))
            .find(|(_, p)| matches!(p.terminal, ProofTerminal::Leaf { .. }) == want_leaf)
            .expect("both kinds occur among 156 keys");
        verify(&root, &key, None, &proof).expect("valid");
        out.push_str(&format!(
            "exclusion\t{}\t-\t{}\n",
            key.to_hex(),
            hex(&proof.to_bytes())
        ));
    }
    out
}

fn hex(b: &[u8]) -> String {
    hex::encode(b)
}

#[test]
fn state_tree_vectors_match() {
    let stored = std::fs::read_to_string(PATH).expect("docs/vectors/state_tree.tsv exists");
    assert_eq!(stored, text(), "docs/vectors/state_tree.tsv is stale");
}

#[test]
#[ignore = "prints the vector file"]
fn print_state_tree_vectors() {
    print!("{}", text());
}
