//! Operational certificates on the real `pp_ledger::Chain` in praos mode (docs/leader-election.md
//! §10.8): the cold key signs `{hot key, counter, valid from}`, the hot key signs the block; a
//! chain accepts a certificate whose counter is at most one above the highest it has carried for
//! the stakeholder and never below it (revocation), from its first epoch on; the highest counter
//! is per chain (a fork switch rolls it back) and a replay from the blocks recomputes it.

mod common;

use common::*;
use pp_ledger::{AddOutcome, Block, BlockError, Chain, ChainError, KeyPair, OpCert, VrfEvidence};
use pp_ouroboros::{Ouroboros, SlotClock};

/// The first slot after `from` where stakeholder `i` leads on top of the tip.
fn led_slot(c: &Chain<Ouroboros>, net: &Net, i: usize, from: u64) -> (u64, VrfEvidence) {
    (from..from + 400)
        .find_map(|s| prove(c, net, i, s).map(|v| (s, v)))
        .expect("led within 400 slots")
}

/// Stakeholder `i`'s block in `slot` on `parent`, carrying `cert` and signed by `hot`.
fn block(
    net: &Net,
    parent: &Block,
    i: usize,
    slot: u64,
    vrf: VrfEvidence,
    cert: OpCert,
    hot: &KeyPair,
) -> Block {
    let clock = SlotClock::from_genesis(&net.genesis).expect("valid clock");
    let producer = net.keys[i].public();
    let (root, st) = pp_ledger::testing::root_on(&net.genesis, &parent.header, &producer, &[])
        .expect("the parent was built here");
    let b = Block::produce_praos(
        &parent.header,
        slot,
        clock.slot_start_ms(slot),
        net.genesis.difficulty,
        Vec::new(),
        root,
        producer,
        vrf,
        cert,
        hot,
        &net.genesis.hash(),
        1 << 24,
    )
    .expect("difficulty 1 is mined quickly");
    pp_ledger::testing::remember_state(b.hash(), st);
    b
}

fn cert(net: &Net, i: usize, hot: &KeyPair, counter: u64, valid_from: u64) -> OpCert {
    OpCert::issue(
        &net.keys[i],
        hot.public(),
        counter,
        valid_from,
        &net.genesis.hash(),
    )
}

fn refused(c: &mut Chain<Ouroboros>, b: Block) -> BlockError {
    match c.verify_and_add(b, NOW) {
        Err(ChainError::Block(e)) => e,
        other => panic!("expected a block error, got {other:?}"),
    }
}

fn counter_at_tip(c: &Chain<Ouroboros>, net: &Net, i: usize) -> u64 {
    c.state_for_next(c.tip().header.slot + 1)
        .ocert_counter(&net.keys[i].public())
}

/// Extends the tip with stakeholder `i`'s next led block after `from` under (`cert`, `hot`).
fn extend(
    c: &mut Chain<Ouroboros>,
    net: &Net,
    i: usize,
    from: u64,
    cert: OpCert,
    hot: &KeyPair,
) -> Block {
    let (slot, vrf) = led_slot(c, net, i, from);
    let b = block(net, c.tip(), i, slot, vrf, cert, hot);
    assert_eq!(c.verify_and_add(b.clone(), NOW), Ok(AddOutcome::Extended));
    b
}

#[test]
fn a_certificate_not_signed_by_the_producers_cold_key_is_refused() {
    let net = network();
    let mut c = chain(&net);
    let hot = KeyPair::from_seed([50; 32]);
    let (slot, vrf) = led_slot(&c, &net, 0, 1);
    // Signed by stakeholder 1's cold key, used in a block of stakeholder 0.
    let foreign = cert(&net, 1, &hot, 0, 0);
    let b = block(&net, c.tip(), 0, slot, vrf, foreign, &hot);
    assert_eq!(
        c.check_detached(&b),
        Err(BlockError::BadOpCertSignature {
            slot,
            producer: net.keys[0].public()
        })
    );
    assert!(matches!(
        refused(&mut c, b),
        BlockError::BadOpCertSignature { .. }
    ));
    // Signed by the right cold key for another network.
    let other = OpCert::issue(&net.keys[0], hot.public(), 0, 0, &pp_ledger::Hash([9; 32]));
    let b = block(&net, c.tip(), 0, slot, vrf, other, &hot);
    assert!(matches!(
        refused(&mut c, b),
        BlockError::BadOpCertSignature { .. }
    ));
    // The same block with the right certificate is accepted.
    let good = cert(&net, 0, &hot, 0, 0);
    let b = block(&net, c.tip(), 0, slot, vrf, good, &hot);
    assert_eq!(c.verify_and_add(b, NOW), Ok(AddOutcome::Extended));
}

#[test]
fn a_block_not_signed_by_the_certificates_hot_key_is_refused() {
    let net = network();
    let mut c = chain(&net);
    let hot = KeyPair::from_seed([50; 32]);
    let (slot, vrf) = led_slot(&c, &net, 0, 1);
    let good = cert(&net, 0, &hot, 0, 0);
    // The cold key itself signs the block: not the key the certificate names.
    let b = block(&net, c.tip(), 0, slot, vrf, good, &net.keys[0]);
    assert_eq!(
        c.check_detached(&b),
        Err(BlockError::BadHotKeySignature {
            slot,
            hot_key: hot.public()
        })
    );
    assert!(matches!(
        refused(&mut c, b),
        BlockError::BadHotKeySignature { .. }
    ));
    // A hot key of a certificate for another producer does not help either.
    let other_hot = KeyPair::from_seed([51; 32]);
    let b = block(&net, c.tip(), 0, slot, vrf, good, &other_hot);
    assert!(matches!(
        refused(&mut c, b),
        BlockError::BadHotKeySignature { .. }
    ));
}

#[test]
fn a_certificate_is_refused_before_its_first_epoch() {
    let net = network();
    let mut c = chain(&net);
    let hot = KeyPair::from_seed([50; 32]);
    let (slot, vrf) = led_slot(&c, &net, 0, 1);
    let epoch = slot / E;
    let later = cert(&net, 0, &hot, 0, epoch + 1);
    let b = block(&net, c.tip(), 0, slot, vrf, later, &hot);
    // Signatures are fine: the stateless stage passes, the chain refuses.
    assert_eq!(c.check_detached(&b), Ok(()));
    assert_eq!(
        refused(&mut c, b),
        BlockError::OpCertNotYetValid {
            slot,
            epoch,
            valid_from: epoch + 1
        }
    );
    // Valid from exactly the slot's epoch: accepted.
    let now = cert(&net, 0, &hot, 0, epoch);
    let b = block(&net, c.tip(), 0, slot, vrf, now, &hot);
    assert_eq!(c.verify_and_add(b, NOW), Ok(AddOutcome::Extended));
}

#[test]
fn counters_may_rise_by_one_and_a_higher_counter_revokes_older_certificates() {
    let net = network();
    let mut c = chain(&net);
    let me = net.keys[0].public();
    let hot0 = KeyPair::from_seed([50; 32]);
    let hot1 = KeyPair::from_seed([51; 32]);
    let hot3 = KeyPair::from_seed([53; 32]);
    // Nothing on the chain yet counts as 0: the first certificate may be 0 or 1, not 2.
    let (slot, vrf) = led_slot(&c, &net, 0, 1);
    let b = block(
        &net,
        c.tip(),
        0,
        slot,
        vrf,
        cert(&net, 0, &hot3, 2, 0),
        &hot3,
    );
    assert_eq!(
        refused(&mut c, b),
        BlockError::OpCertCounterJump {
            producer: me,
            counter: 2,
            highest: 0
        }
    );
    let first = extend(&mut c, &net, 0, 1, cert(&net, 0, &hot0, 0, 0), &hot0);
    assert_eq!(counter_at_tip(&c, &net, 0), 0);
    // The same certificate again is fine; then issue 1 with a new hot key.
    let second = extend(
        &mut c,
        &net,
        0,
        first.header.slot + 1,
        cert(&net, 0, &hot0, 0, 0),
        &hot0,
    );
    let third = extend(
        &mut c,
        &net,
        0,
        second.header.slot + 1,
        cert(&net, 0, &hot1, 1, 0),
        &hot1,
    );
    assert_eq!(counter_at_tip(&c, &net, 0), 1);
    // Now certificate 0 is revoked, whichever hot key signs under it.
    let (slot, vrf) = led_slot(&c, &net, 0, third.header.slot + 1);
    for (old, hot) in [
        (cert(&net, 0, &hot0, 0, 0), &hot0),
        (cert(&net, 0, &hot1, 0, 0), &hot1),
    ] {
        let b = block(&net, c.tip(), 0, slot, vrf, old, hot);
        assert_eq!(c.check_detached(&b), Ok(()), "validly signed");
        assert_eq!(
            refused(&mut c, b),
            BlockError::OpCertRevoked {
                producer: me,
                counter: 0,
                highest: 1
            }
        );
    }
    // 3 skips 2; 2 is the next issue and is accepted.
    let b = block(
        &net,
        c.tip(),
        0,
        slot,
        vrf,
        cert(&net, 0, &hot3, 3, 0),
        &hot3,
    );
    assert!(matches!(
        refused(&mut c, b),
        BlockError::OpCertCounterJump {
            counter: 3,
            highest: 1,
            ..
        }
    ));
    let b = block(
        &net,
        c.tip(),
        0,
        slot,
        vrf,
        cert(&net, 0, &hot3, 2, 0),
        &hot3,
    );
    assert_eq!(c.verify_and_add(b, NOW), Ok(AddOutcome::Extended));
    assert_eq!(counter_at_tip(&c, &net, 0), 2);
    // Counters are per stakeholder: stakeholder 1 still starts from 0.
    assert_eq!(counter_at_tip(&c, &net, 1), 0);
    let (slot1, _) = led_slot(&c, &net, 1, c.tip().header.slot + 1);
    let _ = extend(&mut c, &net, 1, slot1, cert(&net, 1, &hot0, 0, 0), &hot0);
}

#[test]
fn the_highest_counter_is_chain_state_rolled_back_by_a_fork_switch_and_recomputed_by_replay() {
    let net = network();
    let mut c = chain(&net);
    let hot0 = KeyPair::from_seed([50; 32]);
    let hot1 = KeyPair::from_seed([51; 32]);
    let base = extend(&mut c, &net, 0, 1, cert(&net, 0, &hot0, 0, 0), &hot0);
    let fork_parent = c.tip().clone();
    let other = KeyPair::from_seed([60; 32]);
    // Branch A (best for now): stakeholder 0 moves to certificate 1.
    let a1 = extend(
        &mut c,
        &net,
        0,
        base.header.slot + 1,
        cert(&net, 0, &hot1, 1, 0),
        &hot1,
    );
    assert_eq!(counter_at_tip(&c, &net, 0), 1);
    // Branch B, built on a separate chain from the same blocks: two blocks of stakeholders 1
    // and 2 (longer than A), then stakeholder 0 under the old certificate 0, valid there.
    let mut b_chain = chain(&net);
    assert_eq!(
        b_chain.verify_and_add(base.clone(), NOW),
        Ok(AddOutcome::Extended)
    );
    assert_eq!(b_chain.tip_hash(), fork_parent.hash());
    let b1 = extend(
        &mut b_chain,
        &net,
        1,
        base.header.slot + 1,
        cert(&net, 1, &other, 0, 0),
        &other,
    );
    let b2 = extend(
        &mut b_chain,
        &net,
        2,
        b1.header.slot + 1,
        cert(&net, 2, &other, 0, 0),
        &other,
    );
    let b3 = extend(
        &mut b_chain,
        &net,
        0,
        b2.header.slot + 1,
        cert(&net, 0, &hot0, 0, 0),
        &hot0,
    );
    // On chain A, b3's certificate is revoked, but b3 extends branch B, where it is not.
    // b1 ties with a1 (equal length; praos may prefer either if they share a slot), b2 makes
    // branch B the longer one.
    c.verify_and_add(b1.clone(), NOW).expect("b1 is valid");
    c.verify_and_add(b2.clone(), NOW).expect("b2 is valid");
    assert_eq!(c.tip_hash(), b2.hash());
    assert!(!c.is_on_best_chain(&a1.hash()));
    assert_eq!(counter_at_tip(&c, &net, 0), 0, "rolled back with branch A");
    assert_eq!(c.verify_and_add(b3.clone(), NOW), Ok(AddOutcome::Extended));
    assert!(!c.is_on_best_chain(&a1.hash()));
    // A replay of the best chain's blocks (what a restart does) recomputes the same counters.
    let mut replay = chain(&net);
    for b in [&base, &b1, &b2, &b3] {
        assert_eq!(
            replay.verify_and_add((*b).clone(), NOW),
            Ok(AddOutcome::Extended)
        );
    }
    let at = c.tip().header.slot + 1;
    assert_eq!(
        replay.state_for_next(at).ocert_counters,
        c.state_for_next(at).ocert_counters
    );
    // And certificate 1, on top of this chain, is accepted again as the next issue.
    let _ = extend(
        &mut c,
        &net,
        0,
        b3.header.slot + 1,
        cert(&net, 0, &hot1, 1, 0),
        &hot1,
    );
    assert_eq!(counter_at_tip(&c, &net, 0), 1);
}
