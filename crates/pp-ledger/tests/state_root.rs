//! The header's `state_root` (docs/consensus.md §7 rule 14): the chain computes the root of its
//! account state tree for every block that joins the best chain and refuses a block whose header
//! says otherwise, on the tip and in a fork switch, leaving the chain, the ledger state and the
//! tree exactly as before; the tree it keeps is the tree of its ledger state whatever the blocks
//! and forks; the total-stake leaf is the sum of the stakes.
#![allow(clippy::unwrap_used)] // Tests: a failed unwrap is a failed test.

mod common;

use common::*;
use pp_ledger::state_tree::{
    account_key, decode_total_stake, state_root, total_stake_key, verify, MemoryStore, StateTree,
};
use pp_ledger::{AddOutcome, Block, BlockError, Chain, ChainError, Hash, RoundRobin};
use proptest::prelude::*;

/// Everything of the chain's tree that a failed block must leave as it was: the kept versions,
/// the root of each, and the node count.
fn tree_snapshot(c: &Chain<RoundRobin>) -> (Option<(u64, u64)>, Vec<Hash>, usize) {
    let t = c.state_tree();
    let v = t.versions().unwrap();
    let roots = v.map_or(Vec::new(), |(lo, hi)| {
        (lo..=hi).map(|i| t.root(i).unwrap()).collect()
    });
    (v, roots, t.store().memory().node_count())
}

/// `b` with another state root, re-mined and re-signed by `k` (everything else valid).
fn with_root(b: &Block, root: Hash) -> Block {
    let g = genesis();
    let mut b = b.clone();
    b.header.state_root = root;
    let k = keypair_of(&b.header.producer);
    reseal(&g, b, &k)
}

#[test]
fn a_block_with_a_wrong_state_root_is_refused_and_changes_nothing() {
    let g = genesis();
    let gh = g.hash();
    let mut c = Chain::new(g.clone(), RoundRobin).unwrap();
    let b1 = block_on(&g, &g.block(), 1, vec![transfer(1, 3, 10, 1, 0, &gh)]);
    assert_eq!(c.verify_and_add(b1.clone(), LATE), Ok(AddOutcome::Extended));
    // The genesis block's root is version 0's, the block's its own version's.
    assert_eq!(g.block().header.state_root, c.state_tree().root(0).unwrap());
    assert_eq!(b1.header.state_root, c.state_tree().root(1).unwrap());

    let good = block_on(&g, &b1, 2, vec![bond(3, "carol", 500, 1, 0, &gh)]);
    let state_before = c.state().clone();
    let tree_before = tree_snapshot(&c);
    for bad_root in [
        Hash::ZERO,
        b1.header.state_root, // the parent's root: "nothing changed"
        {
            let mut h = good.header.state_root;
            h.0[31] ^= 1;
            h
        },
    ] {
        let bad = with_root(&good, bad_root);
        assert_eq!(
            c.verify_and_add(bad.clone(), LATE),
            Err(ChainError::Block(BlockError::StateRoot {
                header: bad_root,
                computed: good.header.state_root,
            }))
        );
        assert_eq!(c.height(), 1);
        assert_eq!(c.tip_hash(), b1.hash());
        assert!(!c.contains(&bad.hash()));
        assert_eq!(c.state(), &state_before);
        assert_eq!(tree_snapshot(&c), tree_before);
    }
    // The right root is accepted afterwards.
    assert_eq!(
        c.verify_and_add(good.clone(), LATE),
        Ok(AddOutcome::Extended)
    );
    assert_eq!(c.state_tree().root(2).unwrap(), good.header.state_root);
    assert_eq!(state_root(c.state()), good.header.state_root);
}

/// What a producer computes before it mines: `state_root_after_tip` (the tip, over an overlay)
/// and `state_root_after` (any held parent: incremental on the tip, from the parent's state
/// below it) give the root the chain then computes for the block, and leave the chain as it
/// was; the signed headers the chain serves are its blocks' headers and signatures.
#[test]
fn the_roots_a_producer_computes_are_the_roots_the_chain_accepts() {
    let g = genesis();
    let gh = g.hash();
    let mut c = Chain::new(g.clone(), RoundRobin).unwrap();
    // a2 moves coins of an account that neither the block below nor its producer touches, so
    // that a root computed over the tip's tree for a fork from a1 would be wrong.
    let producer4 = RoundRobin::leader(&g, 4).unwrap();
    let (sender, nonce) = if key(1).public() == producer4 {
        (2, 0)
    } else {
        (1, 1)
    };
    let a1 = block_on(&g, &g.block(), 1, vec![transfer(1, 3, 10, 1, 0, &gh)]);
    let a2 = block_on(&g, &a1, 2, vec![transfer(sender, 3, 20, 1, nonce, &gh)]);
    for b in [&a1, &a2] {
        assert_eq!(c.verify_and_add(b.clone(), LATE), Ok(AddOutcome::Extended));
    }
    // On the tip: a bond (a stake change, so the total-stake leaf changes too).
    let txs = vec![bond(3, "carol", 500, 1, 0, &gh)];
    let producer = RoundRobin::leader(&g, 3).unwrap();
    let state_before = c.state().clone();
    let tree_before = tree_snapshot(&c);
    let on_tip = c.state_root_after_tip(&producer, &txs).unwrap();
    assert_eq!(c.state(), &state_before);
    assert_eq!(tree_snapshot(&c), tree_before);
    assert_eq!(
        c.state_root_after(&a2.hash(), &producer, &txs).unwrap(),
        on_tip
    );
    let a3 = block_on(&g, &a2, 3, txs.clone());
    assert_eq!(a3.header.state_root, on_tip, "the test builder agrees");
    // Below the tip (a fork from a1): the root of a1's state after the transactions, which
    // differs from the tip's (a2 moved coins).
    let below = c.state_root_after(&a1.hash(), &producer4, &txs).unwrap();
    let fork = block_on(&g, &a1, 4, txs.clone());
    assert_eq!(fork.header.state_root, below);
    assert_ne!(
        below,
        c.state_root_after(&a2.hash(), &producer4, &txs).unwrap()
    );
    assert_eq!(c.verify_and_add(a3.clone(), LATE), Ok(AddOutcome::Extended));
    assert_eq!(c.state_tree().root(3).unwrap(), on_tip);
    // Served signed headers: the blocks' own, none past the tip.
    for b in [&a1, &a2, &a3] {
        let sh = c.signed_header_at(b.header.index).unwrap();
        assert_eq!(sh, pp_ledger::SignedHeader::from(b));
        sh.verify_signature(&gh).unwrap();
    }
    assert_eq!(c.signed_header_at(4), None);
}

#[test]
fn a_fork_with_a_wrong_state_root_fails_at_the_switch_and_restores_everything() {
    let g = genesis();
    let gh = g.hash();
    let mut c = Chain::new(g.clone(), RoundRobin).unwrap();
    // Best chain: a1 a2 (a transfer, a bond).
    let a1 = block_on(&g, &g.block(), 1, vec![transfer(1, 3, 10, 1, 0, &gh)]);
    let a2 = block_on(&g, &a1, 2, vec![bond(3, "carol", 5, 1, 0, &gh)]);
    for b in [&a1, &a2] {
        assert_eq!(c.verify_and_add(b.clone(), LATE), Ok(AddOutcome::Extended));
    }
    // Branch b1 b2 b3 from the genesis block: b2 carries a wrong root, b3 (valid on b2's real
    // state) would make the branch longer.
    let b1 = block_on(&g, &g.block(), 3, vec![transfer(2, 3, 7, 1, 0, &gh)]);
    let b2_good = block_on(&g, &b1, 4, vec![unbond(1, 100, 0, 0, &gh)]);
    let b2 = with_root(&b2_good, Hash([0x55; 32]));
    pp_ledger::testing::remember_state(
        b2.hash(),
        pp_ledger::testing::root_on(&g, &b1.header, &b2.header.producer, &b2.transactions)
            .unwrap()
            .1,
    );
    let b3 = block_on(&g, &b2, 5, vec![]);
    assert_eq!(
        c.verify_and_add(b1.clone(), LATE),
        Ok(AddOutcome::SideChain)
    );
    // Side blocks are held after rules 1-13: their root is checked when they join the best
    // chain.
    assert_eq!(
        c.verify_and_add(b2.clone(), LATE),
        Ok(AddOutcome::SideChain)
    );
    let state_before = c.state().clone();
    let tree_before = tree_snapshot(&c);
    let err = c.verify_and_add(b3.clone(), LATE).unwrap_err();
    assert_eq!(
        err,
        ChainError::Block(BlockError::StateRoot {
            header: Hash([0x55; 32]),
            computed: b2_good.header.state_root,
        })
    );
    // The old best chain, its state and its tree are back exactly; b2 and b3 are gone, b1 is
    // still held.
    assert_eq!(c.height(), 2);
    assert_eq!(c.tip_hash(), a2.hash());
    assert_eq!(c.best_hash_at(1), Some(a1.hash()));
    assert_eq!(c.state(), &state_before);
    assert_eq!(tree_snapshot(&c), tree_before);
    assert!(c.contains(&b1.hash()));
    assert!(!c.contains(&b2.hash()) && !c.contains(&b3.hash()));
    // The restored chain extends, and a valid branch still wins a switch.
    let a3 = block_on(&g, &a2, 6, vec![]);
    assert_eq!(c.verify_and_add(a3.clone(), LATE), Ok(AddOutcome::Extended));
    let b2 = b2_good;
    let b3 = block_on(&g, &b2, 7, vec![]);
    let b4 = block_on(&g, &b3, 8, vec![]);
    for b in [&b2, &b3] {
        assert_eq!(c.verify_and_add(b.clone(), LATE), Ok(AddOutcome::SideChain));
    }
    assert!(matches!(
        c.verify_and_add(b4.clone(), LATE),
        Ok(AddOutcome::Reorg { .. })
    ));
    // Every version of the new branch is its own block's state.
    for b in [&b1, &b2, &b3, &b4] {
        let i = b.header.index;
        assert_eq!(c.state_tree().root(i).unwrap(), b.header.state_root);
    }
    assert_eq!(state_root(c.state()), b4.header.state_root);
}

/// What a random block does: transfers between the test keys, a bond or an unbond.
#[derive(Debug, Clone)]
enum Op {
    Transfer { from: u8, to: u8, amount: u64 },
    Bond { from: u8, amount: u64 },
    Unbond { from: u8, amount: u64 },
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    let op = prop_oneof![
        (1u8..=3, 1u8..=6, 1u64..5_000).prop_map(|(from, to, amount)| Op::Transfer {
            from,
            to,
            amount
        }),
        (1u8..=3, 1u64..5_000).prop_map(|(from, amount)| Op::Bond { from, amount }),
        (1u8..=2, 1u64..500).prop_map(|(from, amount)| Op::Unbond { from, amount }),
    ];
    prop::collection::vec(op, 0..4)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Random blocks (transfers, bonds, unbonds; some not applicable, left out) on random
    /// parents among the last few blocks (forks, switches): after each, the chain's tree at the
    /// tip has the root of a tree built from nothing from the ledger state, the header of the
    /// tip commits it, and the total-stake leaf is the sum of the stakes.
    #[test]
    fn the_chains_root_is_the_root_of_its_ledger_state(
        blocks in prop::collection::vec((ops(), 0usize..3), 1..14),
    ) {
        let g = genesis();
        let gh = g.hash();
        let mut c = Chain::new(g.clone(), RoundRobin).unwrap();
        let mut built: Vec<Block> = vec![g.block()];
        let mut slot = 0u64;
        for (ops, back) in blocks {
            let parent = built[built.len().saturating_sub(1 + back)].clone();
            slot = slot.max(parent.header.slot) + 1;
            let leader = pp_ledger::RoundRobin::leader(&g, slot).unwrap();
            let Some((_, mut scratch)) =
                pp_ledger::testing::root_on(&g, &parent.header, &leader, &[])
            else {
                continue;
            };
            // `root_on` gave the state after an empty block (the reward minted): only whether
            // each transaction applies matters here.
            let mut txs = Vec::new();
            for op in ops {
                let from = match op {
                    Op::Transfer { from, .. } | Op::Bond { from, .. } | Op::Unbond { from, .. } => from,
                };
                let n = scratch.nonce(&key(from).public());
                let tx = match op {
                    Op::Transfer { from, to, amount } => transfer(from, to, amount, 1, n, &gh),
                    Op::Bond { from, amount } => {
                        let id = ["", "alice", "bob", "carol"][usize::from(from)];
                        bond(from, id, amount, 1, n, &gh)
                    }
                    Op::Unbond { from, amount } => unbond(from, amount, 0, n, &gh),
                };
                // Only transactions that apply go in (the block must be valid).
                if scratch.apply_tx(&tx, &gh, &leader).is_ok() {
                    txs.push(tx);
                }
            }
            let b = block_on(&g, &parent, slot, txs);
            match c.verify_and_add(b.clone(), LATE) {
                Ok(_) => {}
                // A parent more than k below the tip, or forgotten for it: not a case of this
                // test.
                Err(ChainError::ForkTooDeep { .. } | ChainError::UnknownParent { .. }) => continue,
                Err(e) => prop_assert!(false, "{:?}", e),
            }
            built.push(b);
            let tip = c.height();
            let root = c.state_tree().root(tip).unwrap();
            prop_assert_eq!(root, state_root(c.state()));
            prop_assert_eq!(root, c.tip().header.state_root);
            let (v, proof) = c.state_tree().prove(tip, &total_stake_key()).unwrap();
            let v = v.expect("the total-stake leaf is always present");
            let sum: u128 = c.state().stakes().values().map(|&s| u128::from(s)).sum();
            prop_assert_eq!(decode_total_stake(&v).unwrap(), sum);
            prop_assert!(verify(&root, &total_stake_key(), Some(&v), &proof).is_ok());
            // Every kept version is the root of the block at its index.
            let (lo, hi) = c.state_tree().versions().unwrap().unwrap();
            prop_assert_eq!(hi, tip);
            prop_assert!(tip - lo <= g.k);
            for i in lo..=hi {
                let h = c.best_hash_at(i).unwrap();
                prop_assert_eq!(c.state_tree().root(i).unwrap(), c.header_by_hash(&h).unwrap().state_root);
            }
        }
        // And a tree built from nothing has the same nodes' root for every account proof.
        let mut fresh = StateTree::new(MemoryStore::new());
        let r = fresh.apply(0, pp_ledger::state_tree::state_entries(c.state())).unwrap();
        for a in c.state().accounts() {
            let (v, p) = c.state_tree().prove(c.height(), &account_key(&a)).unwrap();
            prop_assert!(verify(&r, &account_key(&a), v.as_deref(), &p).is_ok());
        }
    }
}
