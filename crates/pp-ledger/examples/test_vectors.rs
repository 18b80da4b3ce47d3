//! Prints the pp-ledger test vectors (inputs as JSON, canonical encodings and expected hashes in
//! hex) that docs/consensus.md lists and tests/test_vectors.rs asserts.
//!
//! Run: `cargo run -p pp-ledger --example test_vectors`

use pp_ledger::{
    Block, Encode, Genesis, Hash, InitialBalance, InitialStakeholder, KeyPair, Transaction,
};

fn main() {
    let alice = KeyPair::from_seed([1u8; 32]);
    let bob = KeyPair::from_seed([2u8; 32]);
    let carol = KeyPair::from_seed([3u8; 32]);
    let genesis = Genesis {
        network: "pp-testvector".into(),
        genesis_time: 1_700_000_000_000,
        slot_duration_ms: 1_000,
        slots_per_epoch: 60,
        difficulty: 2,
        k: 10,
        max_block_bytes: 1 << 20,
        max_block_txs: 1_000,
        block_reward: 50,
        max_clock_skew_ms: 2_000,
        initial_balances: vec![
            InitialBalance {
                account: alice.public(),
                amount: 1_000_000,
            },
            InitialBalance {
                account: bob.public(),
                amount: 500_000,
            },
        ],
        initial_stakeholders: vec![
            InitialStakeholder {
                id: "alice".into(),
                public_key: alice.public(),
                stake: 1_000,
                vrf_key: None,
            },
            InitialStakeholder {
                id: "bob".into(),
                public_key: bob.public(),
                stake: 3_000,
                vrf_key: None,
            },
        ],
        epoch_nonce: Hash::blake2b(b"pp-testvector epoch nonce"),
        leader_mode: pp_ledger::LeaderMode::Classic,
        active_slot_coeff: None,
    };
    let gh = genesis.hash();
    let tx = Transaction::transfer(&alice, carol.public(), 1_234, 5, 0, &gh);
    let state_root = match pp_ledger::testing::state_root_after(
        &pp_ledger::LedgerState::from_genesis(&genesis),
        &genesis,
        &alice.public(),
        std::slice::from_ref(&tx),
    ) {
        Ok(root) => root,
        Err(e) => {
            eprintln!("the vector transaction does not apply: {e}");
            return;
        }
    };
    let block = Block::produce(
        &genesis.block().header,
        1,
        1_700_000_001_000,
        2,
        vec![tx.clone()],
        state_root,
        &alice,
        &gh,
        1 << 24,
    );
    let Some(block) = block else {
        eprintln!("no proof of work found");
        return;
    };
    println!("alice public {}", alice.public());
    println!("bob public {}", bob.public());
    println!("carol public {}", carol.public());
    println!("genesis json\n{}", genesis.to_json_pretty());
    println!("genesis canonical {}", hex(&genesis.to_canonical_bytes()));
    println!("genesis hash {gh}");
    println!("genesis block hash {}", genesis.block().hash());
    println!(
        "genesis block header {}",
        hex(&genesis.block().header.canonical_bytes())
    );
    println!(
        "tx json {}",
        serde_json::to_string_pretty(&tx).unwrap_or_default()
    );
    println!("tx body canonical {}", hex(&tx.body.to_canonical_bytes()));
    println!("tx id {}", tx.id());
    println!(
        "tx signing message {}",
        hex(&pp_ledger::crypto::signing_message(
            pp_ledger::crypto::Domain::Transaction,
            &gh,
            &tx.id()
        ))
    );
    println!("tx signature {}", tx.signature);
    println!("tx canonical {}", hex(&tx.to_canonical_bytes()));
    println!(
        "block json {}",
        serde_json::to_string_pretty(&block).unwrap_or_default()
    );
    println!(
        "block header canonical {}",
        hex(&block.header.canonical_bytes())
    );
    println!("block tx_root {}", block.header.tx_root);
    println!("block state_root {}", block.header.state_root);
    println!(
        "genesis block state_root {}",
        genesis.block().header.state_root
    );
    println!("block nonce {}", block.header.nonce);
    println!("block hash {}", block.hash());
    println!(
        "block signing message {}",
        hex(&pp_ledger::crypto::signing_message(
            pp_ledger::crypto::Domain::Block,
            &gh,
            &block.hash()
        ))
    );
    println!("block signature {}", block.signature);
    println!("block canonical {}", hex(&block.to_canonical_bytes()));
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
