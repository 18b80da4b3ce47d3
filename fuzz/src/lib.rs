//! Fixtures shared by the fuzz targets: a small fixed chain (genesis and two blocks, built
//! deterministically) for `block_validation`, the "repairs" that let fuzzed blocks get past the
//! signature checks, and an independent re-statement of the block validity rules
//! (docs/consensus.md) that every block the chain accepts must pass.

use std::sync::OnceLock;

use pp_ledger::{
    Block, Chain, Genesis, Hash, InitialBalance, InitialStakeholder, KeyPair, LedgerState,
    PublicKey, RoundRobin, Transaction, TxBody, TxKind, BLOCK_VERSION,
};

/// Genesis time of the fixture network.
pub const GENESIS_TIME: u64 = 1_700_000_000_000;
/// Slot length of the fixture network.
pub const SLOT_MS: u64 = 1_000;
/// The wall clock the fuzzed blocks are judged at: slot 1000 (later slots are "in the future").
pub const NOW_MS: u64 = GENESIS_TIME + 1_000 * SLOT_MS;

/// Key pair `i` of the fixture (seed `[i; 32]`); keys 1..=6 are known to the repairs.
pub fn key(i: u8) -> KeyPair {
    KeyPair::from_seed([i; 32])
}

/// The key pair among the fixture keys whose public key is `pk`.
pub fn keypair_of(pk: &PublicKey) -> Option<KeyPair> {
    (1..=6u8).map(key).find(|k| k.public() == *pk)
}

/// Stakeholders keys 1 and 2 (round robin), balances for keys 1..=3, k = 3, difficulty 0, small
/// block limits so the fuzzer can reach them.
pub fn genesis() -> Genesis {
    Genesis {
        network: "pp-fuzz".into(),
        genesis_time: GENESIS_TIME,
        slot_duration_ms: SLOT_MS,
        slots_per_epoch: 10,
        difficulty: 0,
        k: 3,
        max_block_bytes: 2048,
        max_block_txs: 8,
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
                amount: u64::MAX / 2,
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
        epoch_nonce: Hash::blake2b(b"pp-fuzz nonce"),
        leader_mode: pp_ledger::LeaderMode::Classic,
        active_slot_coeff: None,
    }
}

/// A block on `parent` in `slot` by the slot's round-robin leader.
pub fn produce(g: &Genesis, parent: &Block, slot: u64, txs: Vec<Transaction>) -> Block {
    let leader = RoundRobin::leader(g, slot).and_then(|pk| keypair_of(&pk));
    let leader = leader.expect("a fixture stakeholder leads every slot");
    // The parent's state is known for blocks built by this function on this thread (a block
    // whose transactions do not apply gets a zero root: it is invalid anyway).
    let after = pp_ledger::testing::root_on(g, &parent.header, &leader.public(), &txs);
    let b = Block::produce(
        &parent.header,
        slot,
        g.genesis_time + slot * g.slot_duration_ms,
        g.difficulty,
        txs,
        after.as_ref().map_or(Hash::ZERO, |(r, _)| *r),
        &leader,
        &g.hash(),
        1 << 20,
    )
    .expect("difficulty 0 needs no search");
    if let Some((_, st)) = after {
        pp_ledger::testing::remember_state(b.hash(), st);
    }
    b
}

/// A signed transaction of `kind` from fixture key `from`.
pub fn tx(from: u8, kind: TxKind, amount: u64, fee: u64, nonce: u64, gh: &Hash) -> Transaction {
    TxBody {
        kind,
        from: key(from).public(),
        amount,
        fee,
        nonce,
    }
    .sign(&key(from), gh)
}

/// The fixture: genesis and the best chain's blocks 1 and 2 (a transfer, then a bond).
#[derive(Debug)]
pub struct Fixture {
    /// The genesis.
    pub genesis: Genesis,
    /// Blocks 1 and 2.
    pub blocks: Vec<Block>,
}

/// The fixture, built once.
pub fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let g = genesis();
        let gh = g.hash();
        let to4 = TxKind::Transfer {
            to: key(4).public(),
        };
        let b1 = produce(&g, &g.block(), 1, vec![tx(3, to4, 5_000, 2, 0, &gh)]);
        let bond = TxKind::Bond {
            stakeholder_id: "dave".into(),
            vrf_key: None,
        };
        let b2 = produce(&g, &b1, 2, vec![tx(4, bond, 1_000, 1, 0, &gh)]);
        Fixture {
            genesis: g,
            blocks: vec![b1, b2],
        }
    })
}

/// A fresh chain holding the fixture blocks.
pub fn fixture_chain() -> Chain<RoundRobin> {
    let f = fixture();
    let mut c = Chain::new(f.genesis.clone(), RoundRobin).expect("valid fixture genesis");
    for b in &f.blocks {
        c.verify_and_add(b.clone(), NOW_MS)
            .expect("fixture blocks are valid");
    }
    c
}

/// Repairs a fuzzed block as `flags` asks, so that the fuzzer can get past the checks it cannot
/// forge: bit 0 re-signs every transaction whose sender is a fixture key, bit 1 recomputes the
/// transaction root, bit 2 makes the slot leader the producer and re-signs the block.
pub fn repair(block: &mut Block, flags: u8, g: &Genesis) {
    let gh = g.hash();
    if flags & 1 != 0 {
        for t in &mut block.transactions {
            if let Some(k) = keypair_of(&t.body.from) {
                *t = t.body.clone().sign(&k, &gh);
            }
        }
    }
    if flags & 2 != 0 {
        block.header.tx_root = block.compute_tx_root();
    }
    if flags & 4 != 0 {
        if let Some(k) = RoundRobin::leader(g, block.header.slot).and_then(|pk| keypair_of(&pk)) {
            block.header.producer = k.public();
            block.sign(&k, &gh);
        }
    }
}

/// The ledger state after the held block `hash`, replayed from the genesis along its ancestors
/// (independent of the chain's undo data and fork switching).
pub fn replay_state(c: &Chain<RoundRobin>, hash: &Hash) -> Option<LedgerState> {
    let g = c.genesis();
    let mut path = Vec::new();
    let mut cur = *hash;
    let genesis_hash = g.block().hash();
    while cur != genesis_hash {
        let b = c.block_by_hash(&cur)?;
        cur = b.header.prev_hash;
        path.push(b.clone());
    }
    let mut st = LedgerState::from_genesis(g);
    for b in path.iter().rev() {
        st.apply_block(b, &g.hash(), g.block_reward).ok()?;
    }
    Some(st)
}

/// The block rules of docs/consensus.md stated once more, independently of `Chain`: `Err` names
/// the first rule `block` breaks on top of its (held) parent.
pub fn spec_check(c: &Chain<RoundRobin>, block: &Block, now_ms: u64) -> Result<(), String> {
    let g = c.genesis();
    let h = &block.header;
    let parent = c
        .block_by_hash(&h.prev_hash)
        .ok_or("parent not held")?
        .clone();
    if h.version != BLOCK_VERSION {
        return Err("version".into());
    }
    if h.index != parent.header.index + 1 {
        return Err("index".into());
    }
    if h.slot <= parent.header.slot {
        return Err("slot order".into());
    }
    let start = u128::from(h.slot) * u128::from(g.slot_duration_ms) + u128::from(g.genesis_time);
    if start > u128::from(now_ms) + u128::from(g.max_clock_skew_ms) {
        return Err("slot in the future".into());
    }
    if h.difficulty != g.difficulty || h.hash().leading_zero_nibbles() < g.difficulty {
        return Err("difficulty / pow".into());
    }
    if block.transactions.len() as u64 > u64::from(g.max_block_txs) {
        return Err("tx count".into());
    }
    if block.encoded_len() as u64 > g.max_block_bytes {
        return Err("size".into());
    }
    if h.tx_root != block.compute_tx_root() {
        return Err("tx root".into());
    }
    if RoundRobin::leader(g, h.slot) != Some(h.producer) {
        return Err("leader".into());
    }
    if block.verify_signature(&g.hash()).is_err() {
        return Err("block signature".into());
    }
    let mut st = replay_state(c, &h.prev_hash).ok_or("parent state")?;
    st.apply_block(block, &g.hash(), g.block_reward)
        .map_err(|e| format!("ledger: {e}"))?;
    if pp_ledger::state_tree::state_root(&st) != h.state_root {
        return Err("state root".into());
    }
    Ok(())
}

/// Seed inputs for `block_validation`: `flags ‖ canonical block`, valid and almost valid blocks.
pub fn block_validation_seeds() -> Vec<Vec<u8>> {
    use pp_ledger::Encode as _;
    let f = fixture();
    let g = &f.genesis;
    let gh = g.hash();
    let tip = &f.blocks[1];
    let to5 = TxKind::Transfer {
        to: key(5).public(),
    };
    let valid = produce(
        g,
        tip,
        3,
        vec![
            tx(3, to5.clone(), 7, 1, 1, &gh),
            tx(4, TxKind::Unbond, 10, 0, 1, &gh),
            tx(1, to5.clone(), 1, 0, 0, &gh),
        ],
    );
    let side = produce(g, &f.blocks[0], 4, vec![tx(3, to5.clone(), 9, 0, 1, &gh)]);
    let empty = produce(g, tip, 5, vec![]);
    let overdraft = produce(g, tip, 6, vec![tx(4, to5, 10_000, 0, 1, &gh)]);
    let mut out = Vec::new();
    for (flags, b) in [
        (0u8, &valid),
        (7, &valid),
        (0, &side),
        (0, &empty),
        (7, &overdraft),
    ] {
        let mut v = vec![flags];
        v.extend(b.to_canonical_bytes());
        out.push(v);
    }
    out
}

/// Writes [`block_validation_seeds`] as `seed-N` files into `dir`.
pub fn write_block_validation_seeds(dir: &std::path::Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    for (i, seed) in block_validation_seeds().iter().enumerate() {
        std::fs::write(dir.join(format!("seed-{i}")), seed)?;
    }
    Ok(())
}
