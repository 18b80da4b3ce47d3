//! Benchmark helpers shared by the criterion benches.

use pp_ledger::{Block, Genesis, InitialBalance, InitialStakeholder, KeyPair, Transaction};

/// A key seed for account `i`: distinct per `i`, the same in every bench run.
pub fn seed(i: u32) -> [u8; 32] {
    let mut s = [7u8; 32];
    s[..4].copy_from_slice(&i.to_be_bytes());
    s
}

/// A devnet genesis (difficulty 0) with one producer (key seed `[1; 32]`, id `bench`) and 1,000
/// funded senders ([`seed`] 0..1,000), and a block at slot 1 of 1,000 transfers, sender `i` to
/// sender `i + 1`: the block every validation figure in README is measured on.
pub fn big_block() -> (Genesis, Block) {
    let producer = KeyPair::from_seed([1u8; 32]);
    let senders: Vec<KeyPair> = (0..1_000).map(|i| KeyPair::from_seed(seed(i))).collect();
    let mut genesis = Genesis::devnet("bench", producer.public(), 1_700_000_000_000);
    genesis.difficulty = 0;
    genesis.initial_balances = senders
        .iter()
        .map(|k| InitialBalance {
            account: k.public(),
            amount: 1_000_000,
        })
        .collect();
    genesis.initial_stakeholders = vec![InitialStakeholder {
        id: "bench".into(),
        public_key: producer.public(),
        stake: 1_000,
        vrf_key: None,
    }];
    let gh = genesis.hash();
    let txs: Vec<Transaction> = senders
        .iter()
        .enumerate()
        .map(|(i, k)| {
            let to = senders[(i + 1) % senders.len()].public();
            Transaction::transfer(k, to, 100, 1, 0, &gh)
        })
        .collect();
    let root = pp_ledger::testing::state_root_after(
        &pp_ledger::LedgerState::from_genesis(&genesis),
        &genesis,
        &producer.public(),
        &txs,
    )
    .expect("the transfers apply");
    let block = Block::produce(
        &genesis.block().header,
        1,
        genesis.genesis_time + 1_000,
        0,
        txs,
        root,
        &producer,
        &gh,
        1,
    )
    .expect("difficulty 0 needs one hash");
    (genesis, block)
}
