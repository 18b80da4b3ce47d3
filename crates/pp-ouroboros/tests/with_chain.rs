//! Ouroboros driving the real `pp_ledger::Chain`: the chain accepts a block only from the slot
//! leader that an independent recomputation of the rules (nonces from the chain's own block
//! hashes, genesis stake) predicts, across epochs with and without blocks.

use std::collections::BTreeMap;

use pp_ledger::{
    AddOutcome, Block, BlockError, Chain, ChainError, Genesis, Hash, InitialStakeholder, KeyPair,
    PublicKey,
};
use pp_ouroboros::{epoch_nonce_next, genesis_distribution, leader, rho_of, Ouroboros, SlotClock};

fn network() -> (Genesis, Vec<KeyPair>) {
    let keys: Vec<KeyPair> = (1..=3u8).map(|i| KeyPair::from_seed([i; 32])).collect();
    let mut g = Genesis::devnet("k1", keys[0].public(), 1_700_000_000_000);
    g.slots_per_epoch = 5;
    g.difficulty = 1;
    for (i, k) in keys.iter().enumerate().skip(1) {
        g.initial_stakeholders.push(InitialStakeholder {
            id: format!("k{}", i + 1),
            public_key: k.public(),
            stake: 1_000 * (i as u64 + 1),
            vrf_key: None,
        });
    }
    g.validate().expect("test genesis is valid");
    (g, keys)
}

fn produce(chain: &Chain<Ouroboros>, slot: u64, key: &KeyPair, clock: &SlotClock) -> Block {
    let g = chain.genesis();
    Block::produce(
        &chain.tip().header,
        slot,
        clock.slot_start_ms(slot),
        g.difficulty,
        Vec::new(),
        chain
            .state_root_after(&chain.tip_hash(), &key.public(), &[])
            .expect("an empty block applies"),
        key,
        &chain.genesis_hash(),
        1 << 24,
    )
    .expect("difficulty 1 is mined quickly")
}

#[test]
fn chain_accepts_only_the_leader_predicted_from_its_own_block_hashes() {
    let (g, keys) = network();
    let rules = Ouroboros::new(&g).unwrap();
    let clock = *rules.clock();
    let by_key: BTreeMap<PublicKey, &KeyPair> = keys.iter().map(|k| (k.public(), k)).collect();
    let mut chain = Chain::new(g.clone(), rules).unwrap();
    let distribution = genesis_distribution(&g);

    // Epochs 3 and 5 have no blocks; epoch 1 only some.
    let slots: Vec<u64> = (1..=9)
        .chain([12, 13])
        .chain(21..=24)
        .chain(30..=33)
        .collect();
    let mut hashes_by_epoch: BTreeMap<u64, Vec<Hash>> = BTreeMap::new();
    let mut producers = std::collections::BTreeSet::new();
    for slot in slots {
        let epoch = clock.epoch_of_slot(slot);
        // η_e recomputed from scratch: η_0 = η_1 = genesis nonce, then one step per epoch with
        // the accumulator of the chain's blocks two epochs back.
        let mut eta = g.epoch_nonce;
        for e in 2..=epoch {
            let hashes = hashes_by_epoch.get(&(e - 2)).cloned().unwrap_or_default();
            eta = epoch_nonce_next(&eta, &rho_of(&hashes));
        }
        let expected = leader(&eta, &distribution, slot).unwrap();
        assert_eq!(chain.leader_for_next(slot), Some(expected), "slot {slot}");

        let now = clock.slot_start_ms(slot) + 10;
        let impostor = keys.iter().find(|k| k.public() != expected).unwrap();
        let forged = produce(&chain, slot, impostor, &clock);
        assert!(
            matches!(
                chain.verify_and_add(forged, now),
                Err(ChainError::Block(BlockError::WrongLeader { .. }))
            ),
            "slot {slot}: a non-leader's block must be refused"
        );
        let block = produce(&chain, slot, by_key[&expected], &clock);
        let hash = block.hash();
        assert_eq!(
            chain.verify_and_add(block, now).unwrap(),
            AddOutcome::Extended
        );
        hashes_by_epoch.entry(epoch).or_default().push(hash);
        producers.insert(expected);
    }
    assert!(
        producers.len() > 1,
        "stake is spread: more than one key leads"
    );
    // No bonding happened, so every snapshot was the genesis stake, as assumed above.
    assert_eq!(*chain.state().stakes(), distribution);
}
