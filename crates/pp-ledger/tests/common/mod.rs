//! Shared fixtures for the pp-ledger integration tests: a small two-stakeholder genesis with
//! round-robin leadership, and helpers to build valid (or deliberately broken) blocks.
#![allow(dead_code, unreachable_pub)]

use pp_ledger::{
    Block, Genesis, Hash, InitialBalance, InitialStakeholder, KeyPair, PublicKey, RoundRobin,
    Transaction, TxBody, TxKind,
};

pub use pp_ledger::testing::root_on;

pub const GENESIS_TIME: u64 = 1_700_000_000_000;
pub const SLOT_MS: u64 = 1_000;
/// A "now" far after every slot used in the tests.
pub const LATE: u64 = GENESIS_TIME + 1_000_000_000;

pub fn key(i: u8) -> KeyPair {
    KeyPair::from_seed([i; 32])
}

/// Stakeholders: keys 1 and 2. Balances: keys 1, 2, 3. Reward 10, k = 3, difficulty 0.
pub fn genesis() -> Genesis {
    Genesis {
        network: "pp-test".into(),
        genesis_time: GENESIS_TIME,
        slot_duration_ms: SLOT_MS,
        slots_per_epoch: 10,
        difficulty: 0,
        k: 3,
        max_block_bytes: 64 * 1024,
        max_block_txs: 50,
        block_reward: 10,
        max_clock_skew_ms: 2_000,
        initial_balances: vec![
            InitialBalance {
                account: key(1).public(),
                amount: 1_000_000,
            },
            InitialBalance {
                account: key(2).public(),
                amount: 1_000_000,
            },
            InitialBalance {
                account: key(3).public(),
                amount: 500_000,
            },
        ],
        initial_stakeholders: vec![
            InitialStakeholder {
                id: "alice".into(),
                public_key: key(1).public(),
                stake: 1_000,
                vrf_key: None,
            },
            InitialStakeholder {
                id: "bob".into(),
                public_key: key(2).public(),
                stake: 2_000,
                vrf_key: None,
            },
        ],
        epoch_nonce: Hash::blake2b(b"test nonce"),
        leader_mode: pp_ledger::LeaderMode::Classic,
        active_slot_coeff: None,
    }
}

/// The key pair (among seeds 1..=9) whose public key is `pk`.
pub fn keypair_of(pk: &PublicKey) -> KeyPair {
    (1..=9u8)
        .map(key)
        .find(|k| k.public() == *pk)
        .expect("a test key")
}

/// The key pair leading `slot` under round-robin.
pub fn leader(g: &Genesis, slot: u64) -> KeyPair {
    keypair_of(&RoundRobin::leader(g, slot).expect("a leader"))
}

/// A key pair that does NOT lead `slot`.
pub fn non_leader(g: &Genesis, slot: u64) -> KeyPair {
    let l = RoundRobin::leader(g, slot).expect("a leader");
    [key(1), key(2)]
        .into_iter()
        .find(|k| k.public() != l)
        .expect("two stakeholders")
}

/// A valid block on `parent` in `slot`, produced by the slot's leader.
pub fn block_on(g: &Genesis, parent: &Block, slot: u64, txs: Vec<Transaction>) -> Block {
    block_by(g, parent, slot, txs, &leader(g, slot))
}

/// A block on `parent` in `slot` produced (mined and signed) by `k`.
pub fn block_by(
    g: &Genesis,
    parent: &Block,
    slot: u64,
    txs: Vec<Transaction>,
    k: &KeyPair,
) -> Block {
    let after = root_on(g, &parent.header, &k.public(), &txs);
    let root = after.as_ref().map_or(Hash::ZERO, |(r, _)| *r);
    let b = Block::produce(
        &parent.header,
        slot,
        g.genesis_time + slot * g.slot_duration_ms,
        g.difficulty,
        txs,
        root,
        k,
        &g.hash(),
        1 << 24,
    )
    .expect("proof of work found");
    if let Some((_, st)) = after {
        pp_ledger::testing::remember_state(b.hash(), st);
    }
    b
}

/// Re-mines and re-signs `b` after its header was edited, so only the edit is wrong.
pub fn reseal(g: &Genesis, mut b: Block, k: &KeyPair) -> Block {
    b.header.nonce = 0;
    b.header.mine(1 << 24).expect("proof of work found");
    b.sign(k, &g.hash());
    b
}

pub fn transfer(from: u8, to: u8, amount: u64, fee: u64, nonce: u64, gh: &Hash) -> Transaction {
    Transaction::transfer(&key(from), key(to).public(), amount, fee, nonce, gh)
}

pub fn bond(from: u8, id: &str, amount: u64, fee: u64, nonce: u64, gh: &Hash) -> Transaction {
    TxBody {
        kind: TxKind::Bond {
            stakeholder_id: id.into(),
            vrf_key: None,
        },
        from: key(from).public(),
        amount,
        fee,
        nonce,
    }
    .sign(&key(from), gh)
}

pub fn unbond(from: u8, amount: u64, fee: u64, nonce: u64, gh: &Hash) -> Transaction {
    TxBody {
        kind: TxKind::Unbond,
        from: key(from).public(),
        amount,
        fee,
        nonce,
    }
    .sign(&key(from), gh)
}
