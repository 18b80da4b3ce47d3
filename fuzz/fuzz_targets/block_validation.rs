//! Block validation on a small fixed chain (genesis + 2 blocks, `pp_fuzz::fixture`). The input
//! is `flags ‖ canonical block`; `flags` may repair the signatures and the transaction root
//! (`pp_fuzz::repair`) so the fuzzer reaches the ledger and fork-choice rules. Then
//! `Chain::verify_and_add` (the stateless stage, then `Chain::add_block`):
//! - rejected: the tip and the ledger state are unchanged;
//! - accepted: the block passes an independent statement of the rules (`pp_fuzz::spec_check`),
//!   supply is conserved (balances + stakes = genesis supply + height × reward), the tip state
//!   equals a replay of the best chain from genesis on a fresh chain, and adding it again is
//!   `AlreadyKnown`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pp_fuzz::{fixture, fixture_chain, repair, spec_check, NOW_MS};
use pp_ledger::{AddOutcome, Block, Chain, Decode, RoundRobin};

fuzz_target!(
    init: {
        // `PP_FUZZ_WRITE_SEEDS=corpus/block_validation` writes the generated seeds (they need
        // signatures, so they cannot come from the documents) and exits.
        if let Some(dir) = std::env::var_os("PP_FUZZ_WRITE_SEEDS") {
            pp_fuzz::write_block_validation_seeds(std::path::Path::new(&dir))
                .expect("seed directory is writable");
            std::process::exit(0);
        }
    },
    |data: &[u8]| {
        let Some((&flags, rest)) = data.split_first() else {
            return;
        };
        let Ok(mut block) = Block::from_canonical_bytes(rest) else {
            return;
        };
        let g = &fixture().genesis;
        repair(&mut block, flags, g);
        let mut c = fixture_chain();
        let before_state = c.state().clone();
        let before_tip = c.tip_hash();
        let spec = spec_check(&c, &block, NOW_MS);
        match c.verify_and_add(block.clone(), NOW_MS) {
            Err(_) => {
                assert_eq!(c.tip_hash(), before_tip, "a rejected block moved the tip");
                assert_eq!(c.state(), &before_state, "a rejected block changed the state");
                assert!(!c.contains(&block.hash()) || fixture().blocks.contains(&block));
            }
            Ok(AddOutcome::AlreadyKnown) => {
                assert!(fixture().blocks.iter().any(|b| b.hash() == block.hash()));
            }
            Ok(outcome) => {
                if let Err(rule) = spec {
                    panic!("the chain accepted ({outcome:?}) a block that breaks `{rule}`");
                }
                let supply = u128::from(g.initial_supply());
                assert_eq!(c.total_minted(), u128::from(c.height()) * u128::from(g.block_reward));
                assert_eq!(c.state().total_supply(), supply + c.total_minted());
                let mut fresh = Chain::new(g.clone(), RoundRobin).expect("valid genesis");
                for i in 1..=c.height() {
                    let b = c.block_at(i).expect("best chain block").clone();
                    assert_eq!(fresh.verify_and_add(b, NOW_MS), Ok(AddOutcome::Extended));
                }
                assert_eq!(fresh.tip_hash(), c.tip_hash());
                assert_eq!(fresh.state(), c.state(), "tip state is not the replay");
                assert_eq!(c.verify_and_add(block, NOW_MS), Ok(AddOutcome::AlreadyKnown));
            }
        }
    }
);
