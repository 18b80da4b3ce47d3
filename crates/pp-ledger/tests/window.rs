//! The chain holds a window of the best chain in memory once its owner stores the rest
//! (`Chain::mark_stored`): fork choice works to its full depth `k` from that window alone, and
//! what it forgets never comes back into play.

mod common;

use common::*;
use pp_ledger::{AddOutcome, Block, Chain, ChainError, Genesis, Hash, RoundRobin};

fn add(c: &mut Chain<RoundRobin>, b: &Block) -> Result<AddOutcome, ChainError> {
    c.verify_and_add(b.clone(), LATE)
}

/// Extends the tip with empty blocks in `slots`; every block is then "stored" by the owner.
fn extend_stored(c: &mut Chain<RoundRobin>, slots: impl IntoIterator<Item = u64>) -> Vec<Block> {
    let g = c.genesis().clone();
    let mut out = Vec::new();
    for s in slots {
        let b = block_on(&g, c.tip(), s, vec![]);
        assert_eq!(add(c, &b), Ok(AddOutcome::Extended));
        c.mark_stored(b.header.index, &b.hash());
        out.push(b);
    }
    out
}

fn branch(g: &Genesis, parent: &Block, slots: impl IntoIterator<Item = u64>) -> Vec<Block> {
    let mut out: Vec<Block> = Vec::new();
    for s in slots {
        let p = out.last().unwrap_or(parent).clone();
        out.push(block_on(g, &p, s, vec![]));
    }
    out
}

#[test]
fn without_a_stored_mark_every_block_stays() {
    let g = genesis(); // k = 3
    let mut c = Chain::new(g.clone(), RoundRobin).unwrap();
    for s in 1..=20 {
        let b = block_on(&g, c.tip(), s, vec![]);
        assert_eq!(add(&mut c, &b), Ok(AddOutcome::Extended));
    }
    assert_eq!(c.window_start(), 0);
    assert!(c.block_at(0).is_some() && c.block_at(1).is_some());
}

#[test]
fn stored_blocks_more_than_k_below_the_tip_are_forgotten() {
    let g = genesis(); // k = 3
    let mut c = Chain::new(g.clone(), RoundRobin).unwrap();
    let a = extend_stored(&mut c, 1..=20);
    assert_eq!(c.height(), 20);
    // Exactly the blocks fork choice can still need: indices height - k ..= height.
    assert_eq!(c.window_start(), 17);
    assert!(c.block_at(16).is_none());
    assert!(!c.contains(&a[15].hash()));
    // Stored blocks below the tip keep their headers, not their transactions; the tip keeps all.
    assert_eq!(c.header_at(17), Some(&a[16].header));
    assert_eq!(c.block_at(17), None);
    assert_eq!(c.block_at(20), Some(&a[19]));
    assert_eq!(c.best_hash_at(20), Some(a[19].hash()));
    assert_eq!(c.best_hash_at(16), None);
    // The genesis block's hash is still known (the locator ends with it).
    assert_eq!(c.genesis_block_hash(), g.block().hash());
    // Steps below the window are left out of the locator; the genesis block closes it.
    let want: Vec<Hash> = vec![a[19].hash(), a[18].hash(), a[17].hash(), g.block().hash()];
    assert_eq!(c.locator(), want);
    assert_eq!(c.find_fork_point(&c.locator()), Some(20));
}

#[test]
fn blocks_not_yet_stored_are_kept_whatever_their_depth() {
    let g = genesis(); // k = 3
    let mut c = Chain::new(g.clone(), RoundRobin).unwrap();
    let a = extend_stored(&mut c, 1..=5);
    // Ten more, not stored yet: nothing above the mark (5) is forgotten.
    for s in 6..=15 {
        let b = block_on(&g, c.tip(), s, vec![]);
        assert_eq!(add(&mut c, &b), Ok(AddOutcome::Extended));
    }
    assert_eq!(c.window_start(), 6);
    assert!(c.block_at(6).is_some());
    assert!(!c.contains(&a[4].hash()));
    // Storing them lets them go down to height - k.
    let tip = c.tip().clone();
    c.mark_stored(tip.header.index, &tip.hash());
    assert_eq!(c.window_start(), 12);
    // One mark that jumps ten blocks drops the transactions of every stored block below the
    // tip, not only of the one at the mark; their headers stay readable by hash.
    for i in 12..15 {
        assert_eq!(c.block_at(i), None, "block {i} kept its transactions");
        let h = c.best_hash_at(i).unwrap();
        assert_eq!(c.header_by_hash(&h).map(|h| h.index), Some(i));
    }
    assert_eq!(c.block_at(15), Some(&tip));
    assert_eq!(c.bodies_held(), 1);
}

#[test]
fn fork_choice_works_to_depth_k_from_the_window_and_refuses_deeper() {
    let g = genesis(); // k = 3
    let mut c = Chain::new(g.clone(), RoundRobin).unwrap();
    let a = extend_stored(&mut c, 1..=20);
    assert_eq!(c.window_start(), 17);
    // A fork from the block at height - k (the oldest one held) can still win.
    let fork = branch(&g, &a[16], 30..=33);
    for b in &fork[..3] {
        assert_eq!(add(&mut c, b), Ok(AddOutcome::SideChain));
    }
    match add(&mut c, &fork[3]) {
        Ok(AddOutcome::Reorg {
            rolled_back,
            applied,
        }) => {
            assert_eq!(
                rolled_back,
                a[17..].iter().map(Block::hash).collect::<Vec<_>>()
            );
            assert_eq!(applied, fork.iter().map(Block::hash).collect::<Vec<_>>());
        }
        other => panic!("expected a reorg, got {other:?}"),
    }
    assert_eq!(c.tip_hash(), fork[3].hash());
    // The state is the one the new branch leaves (rollback used the window's undo data).
    let mut fresh = pp_ledger::LedgerState::from_genesis(&g);
    for b in a[..17].iter().chain(&fork) {
        fresh.apply_block(b, &g.hash(), g.block_reward).unwrap();
    }
    assert_eq!(c.state(), &fresh);
    // A block on a forgotten best block (k + 1 deep) is refused as too deep, not as unknown.
    let too_deep = block_on(&g, &a[15], 40, vec![]);
    assert_eq!(
        add(&mut c, &too_deep),
        Err(ChainError::ForkTooDeep { depth: 5, k: 3 })
    );
    assert_eq!(
        c.screen(&too_deep, LATE),
        Err(ChainError::ForkTooDeep { depth: 5, k: 3 })
    );
}

#[test]
fn a_fork_switch_lowers_the_stored_mark_to_the_fork_point() {
    let g = genesis(); // k = 3
    let mut c = Chain::new(g.clone(), RoundRobin).unwrap();
    let a = extend_stored(&mut c, 1..=10);
    let fork = branch(&g, &a[7], 20..=23);
    for b in &fork[..2] {
        assert_eq!(add(&mut c, b), Ok(AddOutcome::SideChain));
    }
    assert!(matches!(
        add(&mut c, &fork[2]),
        Ok(AddOutcome::Reorg { .. })
    ));
    // The owner's note for the abandoned tip is stale: ignored.
    c.mark_stored(10, &a[9].hash());
    // Twenty blocks on the new branch, none stored: the fork point (8) bounds what goes.
    let mut last = fork[2].clone();
    for s in 30..50 {
        last = block_on(&g, &last, s, vec![]);
        assert_eq!(add(&mut c, &last), Ok(AddOutcome::Extended));
    }
    assert_eq!(c.window_start(), 9);
    assert_eq!(c.best_hash_at(9), Some(fork[0].hash()));
    c.mark_stored(last.header.index, &last.hash());
    assert_eq!(c.window_start(), c.height() - 3);
}

#[test]
fn equivocations_are_still_detected_after_blocks_are_forgotten() {
    let g = genesis(); // k = 3
    let gh = g.hash();
    let mut c = Chain::new(g.clone(), RoundRobin).unwrap();
    let a = extend_stored(&mut c, 1..=30);
    // The leader of slot 30 signs a second block for it, on the same parent.
    let twin = block_on(&g, &a[28], 30, vec![transfer(3, 4, 1, 0, 0, &gh)]);
    assert_eq!(add(&mut c, &twin), Ok(AddOutcome::SideChain));
    assert_eq!(c.equivocations().len(), 1);
    assert_eq!(c.equivocations_seen(), 1);
    assert_eq!(c.equivocations()[0].first, a[29].hash());
    // A third block for the slot is refused.
    let third = block_on(&g, &a[28], 30, vec![transfer(3, 4, 2, 0, 0, &gh)]);
    assert!(matches!(
        add(&mut c, &third),
        Err(ChainError::Equivocation { slot: 30, .. })
    ));
    // Another slot's leader equivocates too: both are counted.
    let twin29 = block_on(&g, &a[27], 29, vec![transfer(3, 4, 3, 0, 0, &gh)]);
    assert_eq!(add(&mut c, &twin29), Ok(AddOutcome::SideChain));
    assert_eq!(c.equivocations().len(), 2);
    assert_eq!(c.equivocations_seen(), 2);
}

#[test]
fn a_block_on_an_unknown_parent_is_too_deep_only_past_k() {
    let g = genesis(); // k = 3
    let mut c = Chain::new(g.clone(), RoundRobin).unwrap();
    let a = extend_stored(&mut c, 1..=20);
    assert_eq!(c.height(), 20);
    // Its parent would be at index 17 = height - k: deep enough to matter, not too deep, so the
    // parent is reported missing (the owner syncs it).
    let at_k = branch(&g, &a[15], 40..=41);
    assert_eq!(at_k[1].header.index, 18);
    let unknown = Some(ChainError::UnknownParent {
        hash: at_k[0].hash(),
    });
    assert_eq!(add(&mut c, &at_k[1]).err(), unknown);
    assert_eq!(c.screen(&at_k[1], LATE).err(), unknown);
    // One deeper (parent at index 16 = height - k - 1): refused as too deep, nothing to sync.
    let past_k = branch(&g, &a[14], 40..=41);
    assert_eq!(past_k[1].header.index, 17);
    let deep = Some(ChainError::ForkTooDeep { depth: 4, k: 3 });
    assert_eq!(add(&mut c, &past_k[1]).err(), deep);
    assert_eq!(c.screen(&past_k[1], LATE).err(), deep);
}

#[test]
fn memory_is_bounded_over_a_long_chain() {
    let g = genesis(); // k = 3
    let mut c = Chain::new(g.clone(), RoundRobin).unwrap();
    let a = extend_stored(&mut c, 1..=500);
    assert_eq!(c.window_start(), 497);
    for (i, b) in a.iter().enumerate().take(496) {
        assert!(!c.contains(&b.hash()), "block {} still held", i + 1);
    }
}
