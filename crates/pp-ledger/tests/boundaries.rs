//! Exact boundaries of the consensus rules: the cases where `>` and `>=` (or `==` and `!=`)
//! differ. Each test here kills a mutant that cargo-mutants found surviving the rest of the
//! suite (see docs/testing.md, "Mutation testing").

mod common;

use common::*;
use pp_ledger::{
    merkle_proof, merkle_root, AddOutcome, Block, BlockError, Chain, ChainError, Genesis, Hash,
    InitialBalance, InitialStakeholder, KeyPair, LedgerState, MerkleProof, RoundRobin, Transaction,
    TxError, HEADER_LEN, MAX_EQUIVOCATIONS, MAX_SIDE_BLOCKS,
};

fn chain_of(g: Genesis) -> Chain<RoundRobin> {
    Chain::new(g, RoundRobin).expect("valid genesis")
}

fn add(c: &mut Chain<RoundRobin>, b: &Block) -> Result<AddOutcome, ChainError> {
    c.verify_and_add(b.clone(), LATE)
}

/// Bytes of a block with no transactions: header, signature, transaction count.
const EMPTY_BLOCK_LEN: usize = HEADER_LEN + 64 + 4;

/// `n` transfers from key 3 with nonces `0..n` (all the same encoded size).
fn transfers(n: u64, gh: &Hash) -> Vec<Transaction> {
    (0..n).map(|i| transfer(3, 4, 1, 0, i, gh)).collect()
}

#[test]
fn block_of_exactly_max_block_bytes_is_accepted_and_one_byte_less_limit_rejects_it() {
    // Encoded sizes do not depend on the genesis, so measure first, then fix the limit.
    let probe = genesis();
    let n = 7;
    let size = block_on(&probe, &probe.block(), 1, transfers(n, &probe.hash())).encoded_len();
    assert!(size >= 1024, "the genesis minimum is 1 KiB; got {size}");

    let mut g = genesis();
    g.max_block_bytes = size as u64;
    let mut c = chain_of(g.clone());
    let b = block_on(&g, c.tip(), 1, transfers(n, &g.hash()));
    assert_eq!(b.encoded_len(), size);
    assert_eq!(add(&mut c, &b), Ok(AddOutcome::Extended));

    let mut g = genesis();
    g.max_block_bytes = size as u64 - 1;
    let mut c = chain_of(g.clone());
    let b = block_on(&g, c.tip(), 1, transfers(n, &g.hash()));
    assert_eq!(
        add(&mut c, &b),
        Err(ChainError::Block(BlockError::TooLarge {
            size: size as u64,
            max: size as u64 - 1
        }))
    );
    assert_eq!(c.height(), 0);
}

#[test]
fn reorg_of_exactly_k_blocks_is_carried_out() {
    let g = genesis(); // k = 3
    let mut c = chain_of(g.clone());
    let mut best = Vec::new();
    for s in 1..=5u64 {
        let b = block_on(&g, c.tip(), s, vec![]);
        assert_eq!(add(&mut c, &b), Ok(AddOutcome::Extended));
        best.push(b);
    }
    // Fork at index 2 (best[1]): switching rolls back indices 3, 4 and 5, exactly k blocks.
    let f1 = block_on(&g, &best[1], 6, vec![]);
    let f2 = block_on(&g, &f1, 7, vec![]);
    let f3 = block_on(&g, &f2, 8, vec![]);
    let f4 = block_on(&g, &f3, 9, vec![]);
    for f in [&f1, &f2, &f3] {
        assert_eq!(add(&mut c, f), Ok(AddOutcome::SideChain));
    }
    assert_eq!(
        add(&mut c, &f4),
        Ok(AddOutcome::Reorg {
            rolled_back: best[2..].iter().map(Block::hash).collect(),
            applied: vec![f1.hash(), f2.hash(), f3.hash(), f4.hash()],
        })
    );
    assert_eq!(c.tip_hash(), f4.hash());
    assert_eq!(c.height(), 6);
}

#[test]
fn reorg_of_k_plus_one_blocks_is_refused() {
    let g = genesis(); // k = 3
    let mut c = chain_of(g.clone());
    let mut best = Vec::new();
    for s in 1..=5u64 {
        let b = block_on(&g, c.tip(), s, vec![]);
        assert_eq!(add(&mut c, &b), Ok(AddOutcome::Extended));
        best.push(b);
    }
    // Fork at index 1 (best[0]): switching would roll back 4 blocks.
    let f1 = block_on(&g, &best[0], 6, vec![]);
    assert_eq!(
        add(&mut c, &f1),
        Err(ChainError::ForkTooDeep { depth: 4, k: 3 })
    );
    assert_eq!(c.tip_hash(), best[4].hash());
}

#[test]
fn select_transactions_fills_the_block_exactly_to_max_block_bytes() {
    let probe = genesis();
    let tx_len = transfers(1, &probe.hash())[0].encoded_len();
    // The smallest count whose block reaches the 1 KiB genesis minimum.
    let n = (1024 - EMPTY_BLOCK_LEN).div_ceil(tx_len);
    let limit = EMPTY_BLOCK_LEN + n * tx_len;

    let mut g = genesis();
    g.max_block_bytes = limit as u64;
    let gh = g.hash();
    let mut c = chain_of(g.clone());
    let cands = transfers(3 * n as u64, &gh);
    let picked = c.select_transactions(cands.iter());
    assert_eq!(picked, cands[..n].to_vec(), "exactly n transactions fit");
    let b = block_on(&g, c.tip(), 1, picked);
    assert_eq!(b.encoded_len(), limit);
    assert_eq!(add(&mut c, &b), Ok(AddOutcome::Extended));
}

#[test]
fn select_transactions_never_exceeds_max_block_bytes_and_leaves_no_room_for_another() {
    let probe = genesis();
    let tx_len = transfers(1, &probe.hash())[0].encoded_len();
    let n = (1024 - EMPTY_BLOCK_LEN).div_ceil(tx_len);
    // One byte short of room for the (n+1)-th transaction.
    let limit = EMPTY_BLOCK_LEN + (n + 1) * tx_len - 1;

    let mut g = genesis();
    g.max_block_bytes = limit as u64;
    let gh = g.hash();
    let mut c = chain_of(g.clone());
    let cands = transfers(3 * n as u64, &gh);
    let picked = c.select_transactions(cands.iter());
    assert_eq!(picked.len(), n);
    let b = block_on(&g, c.tip(), 1, picked.clone());
    assert!(b.encoded_len() <= limit);
    assert!(
        b.encoded_len() + tx_len > limit,
        "another transaction would have fit"
    );
    assert_eq!(add(&mut c, &b), Ok(AddOutcome::Extended));
}

#[test]
fn transfer_that_overflows_the_recipient_balance_is_rejected_by_check_tx() {
    let mut g = genesis();
    g.initial_balances.push(InitialBalance {
        account: key(4).public(),
        amount: u64::MAX - 5,
    });
    let gh = g.hash();
    let s = LedgerState::from_genesis(&g);
    assert_eq!(
        s.check_tx(&transfer(3, 4, 6, 1, 0, &gh), &gh),
        Err(TxError::Overflow {
            account: key(4).public(),
            what: "balance"
        })
    );
    // Exactly up to u64::MAX is fine.
    assert_eq!(s.check_tx(&transfer(3, 4, 5, 1, 0, &gh), &gh), Ok(()));
}

#[test]
fn self_transfer_of_a_balance_near_u64_max_is_accepted() {
    let mut g = genesis();
    g.initial_balances.push(InitialBalance {
        account: key(4).public(),
        amount: u64::MAX,
    });
    let gh = g.hash();
    let mut s = LedgerState::from_genesis(&g);
    let tx = transfer(4, 4, u64::MAX - 1, 1, 0, &gh);
    assert_eq!(s.check_tx(&tx, &gh), Ok(()));
    s.apply_tx(&tx, &gh, &key(1).public()).expect("applies");
    assert_eq!(s.balance(&key(4).public()), u64::MAX - 1);
}

#[test]
fn merkle_proof_with_index_beyond_the_leaf_count_does_not_verify() {
    let id = Hash::blake2b(b"only tx");
    let root = merkle_root(&[id]);
    let good = merkle_proof(&[id], 0).expect("index 0 exists");
    assert!(good.verify(&id, &root));
    let bad = MerkleProof {
        index: 7,
        leaf_count: 1,
        siblings: vec![],
    };
    assert!(!bad.verify(&id, &root));
    let at_count = MerkleProof {
        index: 1,
        leaf_count: 1,
        siblings: vec![],
    };
    assert!(!at_count.verify(&id, &root));
}

#[test]
fn merkle_proof_with_more_than_64_siblings_does_not_verify() {
    // A proof may not claim a tree deeper than 64 levels, however its counts are set.
    let id = Hash::blake2b(b"only tx");
    let root = merkle_root(&[id]);
    let p = MerkleProof {
        index: 0,
        leaf_count: 1,
        siblings: vec![Hash::ZERO; 65],
    };
    assert!(!p.verify(&id, &root));
}

#[test]
fn account_count_counts_balance_entries_and_a_stakeholder_without_balance_exists() {
    let mut g = genesis();
    g.initial_stakeholders.push(InitialStakeholder {
        id: "carol".into(),
        public_key: key(5).public(),
        stake: 300,
        vrf_key: None,
    });
    let s = LedgerState::from_genesis(&g);
    // Keys 1, 2 and 3 have balances; key 5 only a stake.
    assert_eq!(s.account_count(), 3);
    assert_eq!(s.balance(&key(5).public()), 0);
    assert!(s.account_exists(&key(5).public()));
    assert!(!s.account_exists(&key(6).public()));
    // A new recipient adds a balance entry.
    let gh = g.hash();
    let mut s = s;
    s.apply_tx(&transfer(3, 6, 10, 0, 0, &gh), &gh, &key(1).public())
        .expect("applies");
    assert_eq!(s.account_count(), 4);
}

#[test]
fn account_that_only_sent_and_spent_everything_still_exists() {
    let g = genesis();
    let gh = g.hash();
    let mut s = LedgerState::from_genesis(&g);
    s.apply_tx(&transfer(3, 4, 499_990, 10, 0, &gh), &gh, &key(1).public())
        .expect("applies");
    assert_eq!(s.balance(&key(3).public()), 0);
    assert!(s.account_exists(&key(3).public()));
}

#[test]
fn key_pair_rebuilt_from_its_secret_bytes_is_the_same_key() {
    for seed in [[0u8; 32], [1u8; 32], [0xffu8; 32]] {
        let k = KeyPair::from_seed(seed);
        assert_eq!(k.secret_bytes(), seed);
        let again = KeyPair::from_seed(k.secret_bytes());
        assert_eq!(again.public(), k.public());
        assert_eq!(again.sign(b"msg"), k.sign(b"msg"));
    }
    assert_ne!(
        KeyPair::from_seed([1u8; 32]).public(),
        KeyPair::from_seed([2u8; 32]).public()
    );
}

#[test]
fn locator_lists_tip_powers_of_two_back_and_the_genesis_block_exactly_once() {
    let g = genesis();
    let mut c = chain_of(g.clone());
    let mut hashes = vec![g.block().hash()];
    for h in 0..=9u64 {
        if h > 0 {
            let b = block_on(&g, c.tip(), h, vec![]);
            assert_eq!(add(&mut c, &b), Ok(AddOutcome::Extended));
            hashes.push(b.hash());
        }
        // tip, tip-1, tip-2, tip-4, ... while >= 0, then the genesis block if not already last.
        let mut expected = vec![hashes[h as usize]];
        let mut step = 1;
        while step <= h {
            expected.push(hashes[(h - step) as usize]);
            step *= 2;
        }
        if expected.last() != Some(&hashes[0]) {
            expected.push(hashes[0]);
        }
        assert_eq!(c.locator(), expected, "height {h}");
        let genesis_count = c.locator().iter().filter(|x| **x == hashes[0]).count();
        assert_eq!(genesis_count, 1, "height {h}");
    }
}

#[test]
fn side_branch_of_max_side_blocks_blocks_can_still_win() {
    let mut g = genesis();
    g.k = 2 * MAX_SIDE_BLOCKS as u64; // deep enough that only the side-block bound matters
    let mut c = chain_of(g.clone());
    let n = MAX_SIDE_BLOCKS as u64;
    for s in 1..n {
        let b = block_on(&g, c.tip(), s, vec![]);
        assert_eq!(add(&mut c, &b), Ok(AddOutcome::Extended));
    }
    // A branch from the genesis block, one block longer than the best chain: MAX_SIDE_BLOCKS
    // side blocks, the most the chain holds.
    let mut parent = g.block();
    for i in 1..=n {
        let b = block_on(&g, &parent, n + i, vec![]);
        let r = add(&mut c, &b);
        if i < n {
            assert_eq!(r, Ok(AddOutcome::SideChain), "side block {i}");
        } else {
            assert!(matches!(r, Ok(AddOutcome::Reorg { .. })), "{r:?}");
        }
        parent = b;
    }
    assert_eq!(c.tip_hash(), parent.hash());
    assert_eq!(c.height(), n);
}

#[test]
fn equivocations_are_recorded_up_to_max_equivocations_keeping_the_oldest() {
    let g = genesis(); // k = 3: twins fall out of the side set, the records stay
    let gh = g.hash();
    let mut c = chain_of(g.clone());
    let total = MAX_EQUIVOCATIONS as u64 + 2;
    for s in 1..=total {
        let parent = c.tip().clone();
        let b = block_on(&g, &parent, s, vec![]);
        assert_eq!(add(&mut c, &b), Ok(AddOutcome::Extended));
        // The same leader signs a different block for the same slot.
        let twin = block_on(&g, &parent, s, vec![transfer(3, 4, 1, 0, 0, &gh)]);
        assert_eq!(add(&mut c, &twin), Ok(AddOutcome::SideChain), "slot {s}");
    }
    let e = c.equivocations();
    assert_eq!(e.len(), MAX_EQUIVOCATIONS);
    assert_eq!(e.first().map(|e| e.slot), Some(1));
    assert_eq!(e.last().map(|e| e.slot), Some(MAX_EQUIVOCATIONS as u64));
}

#[test]
fn merkle_proof_with_exactly_64_siblings_verifies() {
    // A tree of u64::MAX leaves is 64 levels deep: the proof of leaf 0 has 64 siblings, the
    // most any proof can have. Leaves are H(0x00 ‖ id), inner nodes H(0x01 ‖ left ‖ right).
    let id = Hash::blake2b(b"first of very many");
    let siblings: Vec<Hash> = (0..64u8).map(|i| Hash::blake2b(&[i])).collect();
    let mut root = Hash::blake2b_parts(&[&[0u8], &id.0]);
    for s in &siblings {
        root = Hash::blake2b_parts(&[&[1u8], &root.0, &s.0]);
    }
    let p = MerkleProof {
        index: 0,
        leaf_count: u64::MAX,
        siblings: siblings.clone(),
    };
    assert!(p.verify(&id, &root));
    // One sibling fewer or more no longer fits the tree.
    let short = MerkleProof {
        siblings: siblings[..63].to_vec(),
        ..p.clone()
    };
    assert!(!short.verify(&id, &root));
    let mut long = p;
    long.siblings.push(Hash::ZERO);
    assert!(!long.verify(&id, &root));
}

#[test]
fn zero_stake_zero_reward_and_zero_fee_create_no_entries() {
    let mut g = genesis();
    g.block_reward = 0;
    g.initial_stakeholders.push(InitialStakeholder {
        id: "zero".into(),
        public_key: key(6).public(),
        stake: 0,
        vrf_key: None,
    });
    let gh = g.hash();
    let mut s = LedgerState::from_genesis(&g);
    // A zero stake is no stake entry (leader election reads the map).
    assert!(!s.stakes().contains_key(&key(6).public()));
    assert!(!s.account_exists(&key(6).public()));
    // Producer key 5 has no account: a zero fee and a zero reward must not create one.
    let producer = key(5).public();
    let b = Block {
        header: genesis().block().header,
        signature: Default::default(),
        transactions: vec![transfer(3, 4, 10, 0, 0, &gh)],
    };
    let before = s.account_count();
    let mut b = b;
    b.header.producer = producer;
    s.apply_block(&b, &gh, g.block_reward).expect("applies");
    assert!(!s.account_exists(&producer));
    assert_eq!(s.account_count(), before + 1); // only the recipient, key 4
    assert_eq!(s.minted(), 0);
}

#[test]
fn round_robin_leaves_out_zero_stakes_and_an_empty_schedule_has_no_leader() {
    use pp_ledger::ConsensusRules;
    // Neither case occurs with a validated genesis; both functions are total anyway.
    let mut g = genesis();
    g.initial_stakeholders.push(InitialStakeholder {
        id: "zero".into(),
        public_key: key(9).public(),
        stake: 0,
        vrf_key: None,
    });
    let state = RoundRobin.genesis_state(&g);
    let mut expected = vec![key(1).public(), key(2).public()];
    expected.sort();
    assert_eq!(state, expected);
    assert_eq!(RoundRobin.slot_leader(&Vec::new(), 3), None);
}
