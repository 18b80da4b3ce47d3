//! Block validity and fork choice on `Chain` (DESIGN §5, §6), with round-robin leadership.

mod common;

use common::*;
use pp_ledger::{
    AddOutcome, Block, BlockError, Chain, ChainError, Genesis, Hash, LedgerState, RoundRobin,
    TxError, BLOCK_VERSION,
};

fn chain_of(g: Genesis) -> Chain<RoundRobin> {
    Chain::new(g, RoundRobin).expect("valid genesis")
}

fn add(c: &mut Chain<RoundRobin>, b: &Block) -> Result<AddOutcome, ChainError> {
    c.verify_and_add(b.clone(), LATE)
}

/// Extends the chain with empty blocks in slots `slots`, returning them.
fn extend(c: &mut Chain<RoundRobin>, slots: impl IntoIterator<Item = u64>) -> Vec<Block> {
    let g = c.genesis().clone();
    let mut out = Vec::new();
    for s in slots {
        let b = block_on(&g, c.tip(), s, vec![]);
        assert_eq!(add(c, &b), Ok(AddOutcome::Extended));
        out.push(b);
    }
    out
}

/// Builds blocks on `parent` in `slots` without adding them.
fn branch(g: &Genesis, parent: &Block, slots: impl IntoIterator<Item = u64>) -> Vec<Block> {
    let mut out: Vec<Block> = Vec::new();
    for s in slots {
        let p = out.last().unwrap_or(parent).clone();
        out.push(block_on(g, &p, s, vec![]));
    }
    out
}

fn block_err(r: Result<AddOutcome, ChainError>) -> BlockError {
    match r {
        Err(ChainError::Block(e)) => e,
        other => panic!("expected a block error, got {other:?}"),
    }
}

#[test]
fn extends_tip_pays_reward_and_fees_to_producer() {
    let g = genesis();
    let gh = g.hash();
    let mut c = chain_of(g.clone());
    assert_eq!(c.height(), 0);
    assert_eq!(c.tip_hash(), g.block().hash());
    let b = block_on(&g, c.tip(), 1, vec![transfer(3, 4, 100, 5, 0, &gh)]);
    let producer = b.header.producer;
    let before = c.state().balance(&producer);
    assert_eq!(add(&mut c, &b), Ok(AddOutcome::Extended));
    assert_eq!(c.height(), 1);
    assert_eq!(c.tip_hash(), b.hash());
    assert_eq!(c.block_at(1), Some(&b));
    assert_eq!(c.block_by_hash(&b.hash()), Some(&b));
    assert!(c.is_on_best_chain(&b.hash()));
    assert_eq!(c.state().balance(&producer), before + 10 + 5);
    assert_eq!(c.state().balance(&key(4).public()), 100);
    assert_eq!(c.total_minted(), 10);
    assert_eq!(
        c.state().total_supply(),
        u128::from(g.initial_supply()) + c.total_minted()
    );
}

#[test]
fn adding_a_known_block_again_is_already_known() {
    let g = genesis();
    let mut c = chain_of(g.clone());
    let b = block_on(&g, c.tip(), 1, vec![]);
    assert_eq!(add(&mut c, &b), Ok(AddOutcome::Extended));
    assert_eq!(add(&mut c, &b), Ok(AddOutcome::AlreadyKnown));
    assert_eq!(c.height(), 1);
    assert_eq!(c.total_minted(), 10);
}

#[test]
fn leader_for_next_follows_the_rules() {
    let g = genesis();
    let c = chain_of(g.clone());
    for slot in 1..6 {
        assert_eq!(c.leader_for_next(slot), RoundRobin::leader(&g, slot));
    }
    assert_ne!(c.leader_for_next(1), c.leader_for_next(2));
}

#[test]
fn rejects_block_from_non_leader() {
    let g = genesis();
    let mut c = chain_of(g.clone());
    let b = block_by(&g, c.tip(), 1, vec![], &non_leader(&g, 1));
    assert_eq!(
        block_err(add(&mut c, &b)),
        BlockError::WrongLeader {
            slot: 1,
            expected: leader(&g, 1).public(),
            got: non_leader(&g, 1).public()
        }
    );
    assert_eq!(c.height(), 0);
}

#[test]
fn rejects_bad_block_signature() {
    let g = genesis();
    let mut c = chain_of(g.clone());
    let mut b = block_on(&g, c.tip(), 1, vec![]);
    // Signed by someone other than the producer named in the header.
    b.sign(&non_leader(&g, 1), &g.hash());
    assert!(matches!(
        block_err(add(&mut c, &b)),
        BlockError::BadBlockSignature(_)
    ));
    // Signed for another network.
    b.sign(&leader(&g, 1), &Hash::ZERO);
    assert!(matches!(
        block_err(add(&mut c, &b)),
        BlockError::BadBlockSignature(_)
    ));
}

#[test]
fn rejects_bad_pow() {
    let mut g = genesis();
    g.difficulty = 1;
    let mut c = chain_of(g.clone());
    let mut b = block_on(&g, c.tip(), 1, vec![]);
    // Find a nonce whose hash does NOT start with a zero digit, then sign it properly.
    while b.header.meets_pow() {
        b.header.nonce += 1;
    }
    b.sign(&leader(&g, 1), &g.hash());
    assert_eq!(
        block_err(add(&mut c, &b)),
        BlockError::BadPow {
            difficulty: 1,
            hash: b.hash()
        }
    );
}

#[test]
fn rejects_wrong_difficulty() {
    let g = genesis();
    let mut c = chain_of(g.clone());
    let mut b = block_on(&g, c.tip(), 1, vec![]);
    b.header.difficulty = 1;
    let b = reseal(&g, b, &leader(&g, 1));
    assert_eq!(
        block_err(add(&mut c, &b)),
        BlockError::WrongDifficulty {
            expected: 0,
            got: 1
        }
    );
}

#[test]
fn rejects_bad_tx_root() {
    let g = genesis();
    let gh = g.hash();
    let mut c = chain_of(g.clone());
    let b = block_on(&g, c.tip(), 1, vec![transfer(3, 4, 1, 0, 0, &gh)]);
    let mut swapped = b.clone();
    swapped.transactions = vec![transfer(3, 4, 2, 0, 0, &gh)];
    assert_eq!(
        block_err(add(&mut c, &swapped)),
        BlockError::BadTxRoot {
            header: b.header.tx_root,
            computed: swapped.compute_tx_root()
        }
    );
    let mut emptied = b.clone();
    emptied.transactions.clear();
    assert!(matches!(
        block_err(add(&mut c, &emptied)),
        BlockError::BadTxRoot { .. }
    ));
    assert_eq!(add(&mut c, &b), Ok(AddOutcome::Extended));
}

#[test]
fn rejects_slot_in_future() {
    let g = genesis();
    let mut c = chain_of(g.clone());
    let b = block_on(&g, c.tip(), 10, vec![]);
    let start = GENESIS_TIME + 10 * SLOT_MS;
    let now = start - g.max_clock_skew_ms - 1;
    assert_eq!(
        c.verify_and_add(b.clone(), now),
        Err(ChainError::Block(BlockError::SlotInFuture {
            slot: 10,
            slot_start_ms: start,
            now_ms: now,
            max_skew_ms: g.max_clock_skew_ms
        }))
    );
    // Exactly at the skew allowance the block is accepted.
    assert_eq!(
        c.verify_and_add(b, start - g.max_clock_skew_ms),
        Ok(AddOutcome::Extended)
    );
}

#[test]
fn rejects_slot_not_after_parent() {
    let g = genesis();
    let mut c = chain_of(g.clone());
    let a = extend(&mut c, [2]);
    let b = block_on(&g, &a[0], 2, vec![]);
    assert_eq!(
        block_err(add(&mut c, &b)),
        BlockError::SlotNotAfterParent {
            parent_slot: 2,
            slot: 2
        }
    );
}

#[test]
fn rejects_bad_index_and_version() {
    let g = genesis();
    let mut c = chain_of(g.clone());
    let mut b = block_on(&g, c.tip(), 1, vec![]);
    b.header.index = 5;
    let b = reseal(&g, b, &leader(&g, 1));
    assert_eq!(
        block_err(add(&mut c, &b)),
        BlockError::BadIndex {
            expected: 1,
            got: 5
        }
    );
    let mut b = block_on(&g, c.tip(), 1, vec![]);
    b.header.version = BLOCK_VERSION + 1;
    let b = reseal(&g, b, &leader(&g, 1));
    assert_eq!(
        block_err(add(&mut c, &b)),
        BlockError::BadVersion {
            expected: BLOCK_VERSION,
            got: BLOCK_VERSION + 1
        }
    );
}

#[test]
fn rejects_unknown_parent() {
    let g = genesis();
    let mut c = chain_of(g.clone());
    let orphan_parent = block_on(&g, &g.block(), 1, vec![]);
    let b = block_on(&g, &orphan_parent, 2, vec![]);
    assert_eq!(
        add(&mut c, &b),
        Err(ChainError::UnknownParent {
            hash: orphan_parent.hash()
        })
    );
}

#[test]
fn rejects_too_many_txs_and_too_large_blocks() {
    let mut g = genesis();
    g.max_block_txs = 2;
    let gh = g.hash();
    let mut c = chain_of(g.clone());
    let txs: Vec<_> = (0..3).map(|n| transfer(3, 4, 1, 0, n, &gh)).collect();
    let b = block_on(&g, c.tip(), 1, txs.clone());
    assert_eq!(
        block_err(add(&mut c, &b)),
        BlockError::TooManyTxs { count: 3, max: 2 }
    );

    let mut g = genesis();
    g.max_block_bytes = 1024;
    let gh = g.hash();
    let mut c = chain_of(g.clone());
    let txs: Vec<_> = (0..7).map(|n| transfer(3, 4, 1, 0, n, &gh)).collect();
    let b = block_on(&g, c.tip(), 1, txs);
    assert_eq!(
        block_err(add(&mut c, &b)),
        BlockError::TooLarge {
            size: b.encoded_len() as u64,
            max: 1024
        }
    );
}

#[test]
fn rejects_block_with_invalid_tx_and_keeps_state() {
    let g = genesis();
    let gh = g.hash();
    let mut c = chain_of(g.clone());
    let before = c.state().clone();
    let txs = vec![
        transfer(3, 4, 1, 0, 0, &gh),
        transfer(3, 4, 1_000_000, 0, 1, &gh),
    ];
    let b = block_on(&g, c.tip(), 1, txs);
    match block_err(add(&mut c, &b)) {
        BlockError::Tx {
            index: 1,
            error: TxError::InsufficientBalance { .. },
            ..
        } => {}
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(c.state(), &before);
    assert_eq!(c.height(), 0);
    assert!(!c.contains(&b.hash()));
}

#[test]
fn keeps_current_on_equal_length() {
    let g = genesis();
    let mut c = chain_of(g.clone());
    let a = extend(&mut c, [1, 2]);
    let fork = branch(&g, &g.block(), [3, 4]);
    assert_eq!(add(&mut c, &fork[0]), Ok(AddOutcome::SideChain));
    assert_eq!(add(&mut c, &fork[1]), Ok(AddOutcome::SideChain));
    assert_eq!(c.tip_hash(), a[1].hash());
    assert!(c.contains(&fork[1].hash()));
    assert!(!c.is_on_best_chain(&fork[1].hash()));
    assert_eq!(c.side_chain_len(), 2);
}

#[test]
fn switches_to_longer_fork() {
    let g = genesis();
    let mut c = chain_of(g.clone());
    let a = extend(&mut c, [1, 2]);
    let fork = branch(&g, &a[0], [3, 4]);
    assert_eq!(add(&mut c, &fork[0]), Ok(AddOutcome::SideChain));
    assert_eq!(
        add(&mut c, &fork[1]),
        Ok(AddOutcome::Reorg {
            rolled_back: vec![a[1].hash()],
            applied: vec![fork[0].hash(), fork[1].hash()]
        })
    );
    assert_eq!(c.height(), 3);
    assert_eq!(c.tip_hash(), fork[1].hash());
    assert!(!c.is_on_best_chain(&a[1].hash()));
    assert!(c.is_on_best_chain(&a[0].hash()));
    assert_eq!(c.block_at(2), Some(&fork[0]));
    // The old branch stays held and can win back.
    let back = branch(&g, &a[1], [5, 6]);
    assert_eq!(add(&mut c, &back[0]), Ok(AddOutcome::SideChain));
    assert!(matches!(
        add(&mut c, &back[1]),
        Ok(AddOutcome::Reorg { .. })
    ));
    assert_eq!(c.tip_hash(), back[1].hash());
    assert_eq!(c.total_minted(), 40);
}

#[test]
fn reorg_returns_rolled_back_blocks_and_state_matches_the_new_branch() {
    let g = genesis();
    let gh = g.hash();
    let mut c = chain_of(g.clone());
    let a1 = block_on(&g, c.tip(), 1, vec![transfer(3, 4, 1_000, 1, 0, &gh)]);
    add(&mut c, &a1).unwrap();
    let a2 = block_on(&g, &a1, 2, vec![bond(4, "dave", 500, 0, 0, &gh)]);
    add(&mut c, &a2).unwrap();
    // The fork spends key 3's nonce 0 differently.
    let b1 = block_on(&g, &g.block(), 3, vec![transfer(3, 5, 7, 0, 0, &gh)]);
    let b2 = block_on(&g, &b1, 4, vec![]);
    let b3 = block_on(&g, &b2, 5, vec![unbond(2, 5, 0, 0, &gh)]);
    for b in [&b1, &b2] {
        assert_eq!(add(&mut c, b), Ok(AddOutcome::SideChain));
    }
    match add(&mut c, &b3) {
        Ok(AddOutcome::Reorg {
            rolled_back,
            applied,
        }) => {
            assert_eq!(rolled_back, vec![a1.hash(), a2.hash()]);
            // Never stored, so they keep their transactions as side blocks.
            assert_eq!(c.block_by_hash(&a1.hash()), Some(&a1));
            assert_eq!(c.block_by_hash(&a2.hash()), Some(&a2));
            assert_eq!(applied, vec![b1.hash(), b2.hash(), b3.hash()]);
        }
        other => panic!("expected a reorg, got {other:?}"),
    }
    // The state equals a fresh application of the new branch.
    let mut fresh = LedgerState::from_genesis(&g);
    for b in [&b1, &b2, &b3] {
        fresh.apply_block(b, &gh, g.block_reward).unwrap();
    }
    assert_eq!(c.state(), &fresh);
    assert_eq!(c.state().balance(&key(4).public()), 0);
    assert_eq!(c.state().stakeholder_key("dave"), None);
    assert_eq!(c.state().balance(&key(5).public()), 7);
}

#[test]
fn refuses_fork_deeper_than_k() {
    let g = genesis(); // k = 3
    let mut c = chain_of(g.clone());
    let a = extend(&mut c, 1..=5);
    let from_genesis = block_on(&g, &g.block(), 6, vec![]);
    assert_eq!(
        add(&mut c, &from_genesis),
        Err(ChainError::ForkTooDeep { depth: 5, k: 3 })
    );
    let from_a1 = block_on(&g, &a[0], 7, vec![]);
    assert_eq!(
        add(&mut c, &from_a1),
        Err(ChainError::ForkTooDeep { depth: 4, k: 3 })
    );
    // Exactly k deep is allowed.
    let from_a2 = block_on(&g, &a[1], 8, vec![]);
    assert_eq!(add(&mut c, &from_a2), Ok(AddOutcome::SideChain));
}

#[test]
fn side_chain_that_falls_k_behind_is_pruned_and_cannot_win() {
    let g = genesis(); // k = 3
    let mut c = chain_of(g.clone());
    let a = extend(&mut c, 1..=2);
    let side = block_on(&g, &a[0], 9, vec![]);
    assert_eq!(add(&mut c, &side), Ok(AddOutcome::SideChain));
    extend(&mut c, 10..=12);
    // height 5, side block at index 2 <= 5 - 3: dropped.
    assert!(!c.contains(&side.hash()));
    assert_eq!(c.side_chain_len(), 0);
}

#[test]
fn side_chain_blocks_are_fully_validated() {
    let g = genesis();
    let gh = g.hash();
    let mut c = chain_of(g.clone());
    let a = extend(&mut c, [1, 2]);
    // On the fork, key 3 already spent everything in its first block.
    let b1 = block_on(&g, &a[0], 3, vec![transfer(3, 4, 499_000, 0, 0, &gh)]);
    assert_eq!(add(&mut c, &b1), Ok(AddOutcome::SideChain));
    let b2 = block_on(&g, &b1, 4, vec![transfer(3, 4, 2_000, 0, 1, &gh)]);
    assert!(matches!(
        block_err(add(&mut c, &b2)),
        BlockError::Tx {
            index: 0,
            error: TxError::InsufficientBalance {
                available: 1_000,
                ..
            },
            ..
        }
    ));
    let b2 = block_by(&g, &b1, 5, vec![], &non_leader(&g, 5));
    assert!(matches!(
        block_err(add(&mut c, &b2)),
        BlockError::WrongLeader { slot: 5, .. }
    ));
    assert_eq!(c.tip_hash(), a[1].hash());
}

#[test]
fn records_equivocation() {
    let g = genesis();
    let gh = g.hash();
    let mut c = chain_of(g.clone());
    let a = extend(&mut c, [1]);
    // The same leader signs a different block for slot 1.
    let twin = block_on(&g, &g.block(), 1, vec![transfer(3, 4, 1, 0, 0, &gh)]);
    assert_ne!(twin.hash(), a[0].hash());
    assert_eq!(add(&mut c, &twin), Ok(AddOutcome::SideChain));
    assert_eq!(c.equivocations().len(), 1);
    let e = &c.equivocations()[0];
    assert_eq!(
        (e.slot, e.producer, e.first, e.second),
        (1, leader(&g, 1).public(), a[0].hash(), twin.hash())
    );
    assert_eq!(c.tip_hash(), a[0].hash());
}

#[test]
fn equivocating_block_that_extends_the_tip_is_held_aside() {
    let g = genesis();
    let mut c = chain_of(g.clone());
    let a = extend(&mut c, [1]);
    // First block seen for slot 2 is on a side branch...
    let side = block_on(&g, &g.block(), 2, vec![]);
    assert_eq!(add(&mut c, &side), Ok(AddOutcome::SideChain));
    // ...so the leader's second slot-2 block does not become the tip, though it extends it.
    let second = block_on(&g, &a[0], 2, vec![]);
    assert_eq!(add(&mut c, &second), Ok(AddOutcome::SideChain));
    assert_eq!(c.tip_hash(), a[0].hash());
    assert_eq!(c.equivocations().len(), 1);
    assert_eq!(c.equivocations()[0].first, side.hash());
    // A child built on it by the next leader is an ordinary longer fork.
    let child = block_on(&g, &second, 3, vec![]);
    assert!(matches!(add(&mut c, &child), Ok(AddOutcome::Reorg { .. })));
    assert_eq!(c.height(), 3);
}

#[test]
fn locator_and_find_fork_point() {
    let g = genesis();
    let mut c = chain_of(g.clone());
    assert_eq!(c.locator(), vec![g.block().hash()]);
    extend(&mut c, 1..=10);
    let want: Vec<Hash> = [10u64, 9, 8, 6, 2, 0]
        .iter()
        .map(|&i| c.block_at(i).unwrap().hash())
        .collect();
    assert_eq!(c.locator(), want);
    assert_eq!(c.find_fork_point(&c.locator()), Some(10));
    let stranger = vec![Hash([7u8; 32]), c.block_at(6).unwrap().hash()];
    assert_eq!(c.find_fork_point(&stranger), Some(6));
    assert_eq!(c.find_fork_point(&[Hash([7u8; 32])]), None);
}

#[test]
fn select_transactions_skips_invalid_and_respects_limits() {
    let mut g = genesis();
    g.max_block_txs = 3;
    let gh = g.hash();
    let c = chain_of(g.clone());
    let cands = [
        transfer(3, 4, 10, 1, 1, &gh), // nonce gap: skipped
        transfer(3, 4, 10, 1, 0, &gh),
        transfer(3, 4, 10, 1, 1, &gh), // now valid after the previous one
        transfer(5, 4, 10, 1, 0, &gh), // no funds
        transfer(1, 4, 10, 1, 0, &gh),
        transfer(2, 4, 10, 1, 0, &gh), // over the count limit
    ];
    let picked = c.select_transactions(cands.iter());
    assert_eq!(
        picked,
        vec![cands[1].clone(), cands[2].clone(), cands[4].clone()]
    );
    // The selection forms a valid block.
    let mut c = c;
    let b = block_on(&g, c.tip(), 1, picked);
    assert_eq!(add(&mut c, &b), Ok(AddOutcome::Extended));
}

/// Rules where the richest stakeholder (after the parent) leads every slot: makes the leader
/// depend on the parent's stakes, which `RoundRobin` ignores.
#[derive(Debug)]
struct RichestLeads;

impl pp_ledger::ConsensusRules for RichestLeads {
    type State = pp_ledger::StakeMap;
    fn genesis_state(&self, _g: &Genesis) -> Self::State {
        Default::default()
    }
    fn state_for_slot(
        &self,
        _parent: &Self::State,
        _slot: u64,
        stakes: &pp_ledger::StakeMap,
    ) -> Self::State {
        stakes.clone()
    }
    fn slot_leader(&self, state: &Self::State, _slot: u64) -> Option<pp_ledger::PublicKey> {
        state.iter().max_by_key(|(_, &s)| s).map(|(k, _)| *k)
    }
    fn on_block(&self, _state: &mut Self::State, _hash: &Hash) {}
}

#[test]
fn leader_check_uses_the_stakes_after_the_parent_on_every_branch() {
    let g = genesis(); // alice (key 1) 1000, bob (key 2) 2000: bob leads.
    let gh = g.hash();
    let mut c = Chain::new(g.clone(), RichestLeads).expect("valid genesis");
    assert_eq!(c.leader_for_next(1), Some(key(2).public()));
    let grow = bond(1, "alice", 5_000, 0, 0, &gh);
    let a1 = block_by(&g, &g.block(), 1, vec![grow.clone()], &key(2));
    assert_eq!(c.verify_and_add(a1.clone(), LATE), Ok(AddOutcome::Extended));
    // Alice now has 6000: she leads the next slot, bob no longer does.
    assert_eq!(c.leader_for_next(2), Some(key(1).public()));
    let by_bob = block_by(&g, &a1, 2, vec![], &key(2));
    assert!(matches!(
        c.verify_and_add(by_bob, LATE),
        Err(ChainError::Block(BlockError::WrongLeader { .. }))
    ));
    // The same on a side branch whose state differs from the tip's.
    let s1 = block_by(&g, &g.block(), 3, vec![grow], &key(2));
    assert_eq!(
        c.verify_and_add(s1.clone(), LATE),
        Ok(AddOutcome::SideChain)
    );
    let by_bob = block_by(&g, &s1, 4, vec![], &key(2));
    assert_eq!(
        c.verify_and_add(by_bob, LATE),
        Err(ChainError::Block(BlockError::WrongLeader {
            slot: 4,
            expected: key(1).public(),
            got: key(2).public()
        }))
    );
    let by_alice = block_by(&g, &s1, 4, vec![], &key(1));
    assert!(matches!(
        c.verify_and_add(by_alice, LATE),
        Ok(AddOutcome::Reorg { .. })
    ));
}

/// A leader that signs 1,100 blocks for one slot: the first is kept, one more is held aside as
/// evidence, the rest are refused without being stored, so the side store (1,024 blocks) stays
/// free for honest forks.
#[test]
fn a_leader_signing_1100_blocks_for_one_slot_does_not_fill_the_side_store() {
    let g = genesis();
    let gh = g.hash();
    let mut c = chain_of(g.clone());
    let a = extend(&mut c, [1]);
    let flooder = leader(&g, 2);
    let mut outcomes = Vec::new();
    for i in 0..1_100u64 {
        let b = Block::produce(
            &a[0].header,
            2,
            GENESIS_TIME + i,
            g.difficulty,
            vec![],
            root_on(&g, &a[0].header, &flooder.public(), &[]).unwrap().0,
            &flooder,
            &gh,
            1 << 24,
        )
        .expect("proof of work found");
        outcomes.push(add(&mut c, &b));
    }
    assert_eq!(outcomes[0], Ok(AddOutcome::Extended));
    assert_eq!(outcomes[1], Ok(AddOutcome::SideChain));
    let refused = ChainError::Equivocation {
        slot: 2,
        producer: flooder.public(),
    };
    assert!(outcomes[2..].iter().all(|o| *o == Err(refused.clone())));
    assert_eq!(c.side_chain_len(), 1);
    // One record, with both signed headers, checkable by anyone.
    assert_eq!(c.equivocations().len(), 1);
    let e = &c.equivocations()[0];
    assert_eq!((e.slot, e.producer), (2, flooder.public()));
    assert_ne!(e.first_header, e.second_header);
    for (header, sig) in [
        (&e.first_header, &e.first_signature),
        (&e.second_header, &e.second_signature),
    ] {
        let msg = pp_ledger::crypto::signing_message(
            pp_ledger::crypto::Domain::Block,
            &gh,
            &header.hash(),
        );
        assert_eq!(e.producer.verify(&msg, sig), Ok(()));
    }
    assert_eq!(e.first, e.first_header.hash());
    assert_eq!(e.second, e.second_header.hash());
    // Honest forks are still held.
    let fork = block_on(&g, &g.block(), 3, vec![]);
    assert_eq!(add(&mut c, &fork), Ok(AddOutcome::SideChain));
    assert_eq!(c.side_chain_len(), 2);
}
