//! Praos mode driving the real `pp_ledger::Chain`: blocks carry VRF evidence that the chain
//! checks against the producer's registered VRF key, the epoch nonce, the slot and the
//! producer's threshold from the epoch's stake snapshot; the epoch nonce comes from the VRF
//! outputs of the first two thirds of the previous epoch (so grinding header nonces changes
//! nothing); and among blocks of one slot at the tip the lower leader value wins.

mod common;

use common::*;
use pp_ledger::{
    AddOutcome, Block, BlockError, Chain, ChainError, Genesis, Hash, PublicKey, Transaction,
    VrfEvidence,
};
use pp_ouroboros::{
    leader_value, praos_next_nonce, vrf_input, EcVrf, EpochState, Ouroboros, Vrf, VrfSecretKey,
};

/// A block by stakeholder `i` in `slot` on the chain's tip carrying `vrf`, mined from header
/// nonce `start_nonce` on, with `txs`.
fn block_with(
    chain: &Chain<Ouroboros>,
    net: &Net,
    i: usize,
    slot: u64,
    vrf: VrfEvidence,
    txs: Vec<Transaction>,
) -> Block {
    let root = chain
        .state_root_after(&chain.tip_hash(), &net.keys[i].public(), &txs)
        .expect("the transactions apply");
    Block::produce_with(
        &chain.tip().header,
        slot,
        clock(net).slot_start_ms(slot),
        net.genesis.difficulty,
        txs,
        root,
        Some(vrf),
        &net.keys[i],
        &chain.genesis_hash(),
        1 << 24,
    )
    .expect("difficulty 1 is mined quickly")
}

/// Extends `chain` with every slot in `slots`: the first stakeholder that leads produces.
/// Returns the (slot, β) of each block added, in order.
fn extend(
    chain: &mut Chain<Ouroboros>,
    net: &Net,
    slots: impl IntoIterator<Item = u64>,
) -> Vec<(u64, [u8; 64])> {
    let mut out = Vec::new();
    for slot in slots {
        let Some((i, vrf)) = (0..3).find_map(|i| prove(chain, net, i, slot).map(|v| (i, v))) else {
            continue;
        };
        let b = block_with(chain, net, i, slot, vrf, Vec::new());
        assert_eq!(
            chain.verify_and_add(b, NOW).expect("an elected block"),
            AddOutcome::Extended
        );
        out.push((slot, vrf.output));
    }
    out
}

/// The first slot from `from` on where stakeholder `i` leads on top of the tip (`leads`) or
/// does not lead (`!leads`).
fn find_slot(chain: &Chain<Ouroboros>, net: &Net, i: usize, from: u64, leads: bool) -> u64 {
    (from..from + 200)
        .find(|&s| prove(chain, net, i, s).is_some() == leads)
        .expect("found within 200 slots")
}

fn refused(chain: &mut Chain<Ouroboros>, b: Block) -> BlockError {
    match chain.verify_and_add(b, NOW) {
        Err(ChainError::Block(e)) => e,
        other => panic!("expected a block error, got {other:?}"),
    }
}

#[test]
fn elected_blocks_are_accepted_and_the_nonce_is_praos_next_nonce_of_the_vrf_outputs() {
    let net = network();
    let mut c = chain(&net);
    let mut eta = net.genesis.epoch_nonce;
    for epoch in 0..4u64 {
        let first = (epoch * E).max(1);
        let added = extend(&mut c, &net, first..(epoch + 1) * E);
        assert!(
            !added.is_empty(),
            "f = 1/2: some slot of epoch {epoch} has a leader"
        );
        // The state a block of the next epoch is judged by carries η_{e+1}.
        let next = c.state_for_next((epoch + 1) * E);
        let expected =
            praos_next_nonce(&eta, epoch, E, added.iter().map(|(s, b)| (*s, b))).unwrap();
        assert_eq!(next.nonce, expected, "η_{}", epoch + 1);
        eta = expected;
    }
    assert!(c.height() >= 8);
}

#[test]
fn a_proof_under_an_unregistered_vrf_key_is_refused() {
    let net = network();
    let mut c = chain(&net);
    let state = c.state_for_next(1);
    // Stakeholder 0 signs, but the proof is made with a VRF key nobody registered; the slot is
    // one where that key's leader value is below stakeholder 0's threshold, so only the key
    // check can refuse it.
    let theta = c
        .rules()
        .threshold_of(&state, &net.keys[0].public())
        .unwrap();
    let (wrong, slot, proof) = (0..64u8)
        .find_map(|seed| {
            let wrong = VrfSecretKey::from_seed([seed; 32]);
            (1..E).find_map(|s| {
                pp_ouroboros::prove_leadership::<EcVrf>(&wrong, &state.nonce, s, theta)
                    .unwrap()
                    .map(|p| (VrfSecretKey::from_seed([seed; 32]), s, p))
            })
        })
        .expect("some unregistered key leads a slot of epoch 0");
    let vrf = VrfEvidence {
        output: proof.output.0,
        proof: proof.proof.0,
    };
    let b = block_with(&c, &net, 0, slot, vrf, Vec::new());
    assert!(matches!(refused(&mut c, b), BlockError::BadVrfProof { .. }));
    // The registered key is refused for production too: only the registered secret proves.
    assert!(c
        .rules()
        .prove_slot(&state, slot, &net.keys[0].public(), &wrong)
        .is_err());
}

#[test]
fn a_proof_for_another_slot_is_refused() {
    let net = network();
    let mut c = chain(&net);
    let led = find_slot(&c, &net, 2, 1, true);
    let vrf = prove(&c, &net, 2, led).unwrap();
    // The same valid evidence moved to the next slot (same epoch, same nonce).
    let other = led + 1;
    assert_eq!(other / E, led / E);
    let b = block_with(&c, &net, 2, other, vrf, Vec::new());
    assert!(matches!(
        refused(&mut c, b),
        BlockError::BadVrfProof { slot, .. } if slot == other
    ));
    // In its own slot it is accepted.
    let b = block_with(&c, &net, 2, led, vrf, Vec::new());
    assert_eq!(c.verify_and_add(b, NOW).unwrap(), AddOutcome::Extended);
}

#[test]
fn a_valid_proof_with_a_leader_value_above_the_threshold_is_refused() {
    let net = network();
    let mut c = chain(&net);
    // Stakeholder 0 (1/6 of the stake) does not lead this slot: its VRF output is genuine, but
    // the leader value is above its threshold.
    let slot = find_slot(&c, &net, 0, 1, false);
    let state = c.state_for_next(slot);
    let (output, proof) = EcVrf::prove(&net.vrf[0], &vrf_input(&state.nonce, slot)).unwrap();
    let theta = c
        .rules()
        .threshold_of(&state, &net.keys[0].public())
        .unwrap();
    assert!(!pp_ouroboros::below_threshold(
        leader_value(&output.0).as_bytes(),
        theta
    ));
    let vrf = VrfEvidence {
        output: output.0,
        proof: proof.0,
    };
    let b = block_with(&c, &net, 0, slot, vrf, Vec::new());
    assert!(matches!(refused(&mut c, b), BlockError::NotElected { .. }));
}

#[test]
fn a_classic_header_or_another_output_is_refused_in_praos_mode() {
    let net = network();
    let mut c = chain(&net);
    let slot = find_slot(&c, &net, 1, 1, true);
    let classic = Block::produce(
        &c.tip().header,
        slot,
        0,
        net.genesis.difficulty,
        Vec::new(),
        c.state_root_after(&c.tip_hash(), &net.keys[1].public(), &[])
            .unwrap(),
        &net.keys[1],
        &c.genesis_hash(),
        1 << 24,
    )
    .unwrap();
    assert_eq!(
        c.check_detached(&classic),
        Err(BlockError::BadVersion {
            expected: 6,
            got: 5
        })
    );
    // The cheap stateful screen already finds no VRF evidence to check.
    assert!(matches!(
        refused(&mut c, classic),
        BlockError::BadVrfProof { .. }
    ));
    // The right proof with an output it does not prove.
    let mut vrf = prove(&c, &net, 1, slot).unwrap();
    vrf.output[0] ^= 1;
    let b = block_with(&c, &net, 1, slot, vrf, Vec::new());
    assert!(matches!(refused(&mut c, b), BlockError::BadVrfProof { .. }));
}

/// The chain's nonces of epochs 1..=3 after the given chain of blocks.
fn nonces(c: &Chain<Ouroboros>) -> Vec<Hash> {
    (1..=3)
        .map(|e| {
            let st: EpochState = c.state_for_next(e * E);
            st.nonce
        })
        .collect()
}

#[test]
fn grinding_header_nonces_at_the_end_of_an_epoch_cannot_change_a_later_epoch_nonce() {
    let net = network();
    // Every chain agrees up to the last block of epoch 0; its producer then tries many
    // versions of that block (other header nonces, other transactions: other block hashes).
    // Leadership in epoch 0 depends only on η_0, the slot and the genesis stake, so the
    // genesis chain finds the last led slot of the epoch.
    let probe = chain(&net);
    let (slot, i, vrf) = (1..E)
        .rev()
        .find_map(|s| (0..3).find_map(|i| prove(&probe, &net, i, s).map(|v| (s, i, v))))
        .expect("f = 1/2: epoch 0 has a led slot");
    let g = net.genesis.hash();
    let payee = PublicKey([7; 32]);
    let mut seen_hashes = std::collections::BTreeSet::new();
    let mut seen_nonces = std::collections::BTreeSet::new();
    for attempt in 0..20u64 {
        let mut c = chain(&net);
        extend(&mut c, &net, 1..slot);
        let tx = Transaction::transfer(&net.keys[i], payee, 1 + attempt, 1, 0, &g);
        let mut b = block_with(&c, &net, i, slot, vrf, vec![tx]);
        // Another header nonce: mine again from a different start.
        b.header.nonce = attempt << 40;
        b.header.mine(1 << 24).unwrap();
        b.sign(&net.keys[i], &g);
        seen_hashes.insert(b.hash());
        assert_eq!(c.verify_and_add(b, NOW).unwrap(), AddOutcome::Extended);
        extend(&mut c, &net, E..4 * E);
        seen_nonces.insert(nonces(&c));
    }
    assert_eq!(seen_hashes.len(), 20, "every attempt is another block");
    assert_eq!(
        seen_nonces.len(),
        1,
        "η_1..η_3 are the same whatever the grinder tried"
    );

    // The companion: the classic rule folds block hashes, so the same grinding moves η_2.
    let state = EpochState::genesis(&Genesis::devnet("a", PublicKey([1; 32]), 0));
    let eta2 = |h: &Hash| {
        let mut s = state.clone();
        s.on_block(h);
        let s1 = s.advance(&Default::default()).unwrap();
        s1.advance(&Default::default()).unwrap().nonce
    };
    let classic: std::collections::BTreeSet<Hash> = seen_hashes.iter().map(eta2).collect();
    assert_eq!(
        classic.len(),
        20,
        "classic η_2 follows the ground block hash"
    );
}

#[test]
fn among_blocks_of_one_slot_at_the_tip_every_node_keeps_the_lower_leader_value() {
    let net = network();
    let base = chain(&net);
    // A slot with two leaders on top of the genesis block.
    let (slot, a, b) = (1..400)
        .find_map(|s| {
            let leaders: Vec<usize> = (0..3)
                .filter(|&i| prove(&base, &net, i, s).is_some())
                .collect();
            (leaders.len() >= 2).then(|| (s, leaders[0], leaders[1]))
        })
        .expect("f = 1/2 with three stakeholders: a slot with two leaders within 400");
    let va = prove(&base, &net, a, slot).unwrap();
    let vb = prove(&base, &net, b, slot).unwrap();
    let ba = block_with(&base, &net, a, slot, va, Vec::new());
    let bb = block_with(&base, &net, b, slot, vb, Vec::new());
    let winner = if leader_value(&va.output) < leader_value(&vb.output) {
        ba.hash()
    } else {
        bb.hash()
    };
    // One node sees a first, the other b first: both end on the winner.
    let mut x = chain(&net);
    x.verify_and_add(ba.clone(), NOW).unwrap();
    x.verify_and_add(bb.clone(), NOW).unwrap();
    let mut y = chain(&net);
    y.verify_and_add(bb, NOW).unwrap();
    y.verify_and_add(ba, NOW).unwrap();
    assert_eq!(x.tip_hash(), winner);
    assert_eq!(y.tip_hash(), winner);
    assert_eq!(x.height(), 1);
}
