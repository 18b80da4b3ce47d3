//! VRF keys registered by bonds (praos mode), on the real `pp_ledger::Chain`: a bond carries the
//! stakeholder's VRF public key, the ledger binds it with the stakeholder id, and the key enters
//! the epoch snapshots with the stake, so the new stakeholder leads from the epoch whose
//! distribution holds its stake (two epochs after the bond's) and not before. A praos bond
//! without a key, or with another stakeholder's key, is refused, as is a key on a classic
//! network.

use pp_ledger::{
    AddOutcome, Block, BlockError, Chain, ChainError, Genesis, InitialBalance, InitialStakeholder,
    KeyPair, LedgerState, PublicKey, Ratio, Transaction, TxBody, TxError, TxKind, VrfEvidence,
};
use pp_ouroboros::{EcVrf, Ouroboros, OuroborosError, SlotClock, VrfSecretKey};

/// Slots per epoch of the test network.
const E: u64 = 10;
/// A clock far after every slot used, so no block is "in the future".
const NOW: u64 = u64::MAX / 2;
/// What dave bonds: more than the three genesis stakeholders together (6,000).
const DAVE_STAKE: u64 = 10_000;

struct Net {
    genesis: Genesis,
    /// k1, k2, k3 (genesis stakeholders), then dave (a wallet that bonds).
    keys: Vec<KeyPair>,
    vrf: Vec<VrfSecretKey>,
}

fn vrf_public(s: &VrfSecretKey) -> PublicKey {
    PublicKey(*s.public().as_bytes())
}

/// Stakeholders k1..k3 with stakes 1000/2000/3000 and their VRF keys, f = 1/2, 10-slot epochs;
/// k2 holds 1,000 coins, dave 100,000 and no stake. Classic if `praos` is false.
fn network(praos: bool) -> Net {
    let keys: Vec<KeyPair> = (1..=4u8).map(|i| KeyPair::from_seed([i; 32])).collect();
    let vrf: Vec<VrfSecretKey> = (1..=4u8)
        .map(|i| VrfSecretKey::from_seed([100 + i; 32]))
        .collect();
    let mut g = Genesis::devnet("k1", keys[0].public(), 0);
    g.slots_per_epoch = E;
    g.difficulty = 1;
    g.initial_stakeholders[0].stake = 1_000;
    for (i, k) in keys.iter().enumerate().take(3).skip(1) {
        g.initial_stakeholders.push(InitialStakeholder {
            id: format!("k{}", i + 1),
            public_key: k.public(),
            stake: 1_000 * (i as u64 + 1),
            vrf_key: None,
        });
    }
    for (k, amount) in [(&keys[1], 1_000), (&keys[3], 100_000)] {
        g.initial_balances.push(InitialBalance {
            account: k.public(),
            amount,
        });
    }
    if praos {
        let vrf_keys: Vec<PublicKey> = vrf.iter().take(3).map(vrf_public).collect();
        g = g.into_praos(Ratio { num: 1, den: 2 }, &vrf_keys);
    }
    g.validate().expect("test genesis is valid");
    Net {
        genesis: g,
        keys,
        vrf,
    }
}

fn chain(net: &Net) -> Chain<Ouroboros> {
    Chain::new(
        net.genesis.clone(),
        Ouroboros::new(&net.genesis).expect("rules"),
    )
    .expect("valid genesis")
}

/// Dave's bond of [`DAVE_STAKE`] as stakeholder "dave", carrying `vrf_key`.
fn dave_bond(net: &Net, vrf_key: Option<PublicKey>) -> Transaction {
    TxBody {
        kind: TxKind::Bond {
            stakeholder_id: "dave".into(),
            vrf_key,
        },
        from: net.keys[3].public(),
        amount: DAVE_STAKE,
        fee: 1,
        nonce: 0,
    }
    .sign(&net.keys[3], &net.genesis.hash())
}

/// The evidence stakeholder `i` proves for `slot` on top of the tip: `Ok(None)` if it does not
/// lead, an error if its VRF key is not registered in the slot's epoch snapshot.
fn prove(
    c: &Chain<Ouroboros>,
    net: &Net,
    i: usize,
    slot: u64,
) -> Result<Option<VrfEvidence>, OuroborosError> {
    let state = c.state_for_next(slot);
    c.rules()
        .prove_slot(&state, slot, &net.keys[i].public(), &net.vrf[i])
}

fn block(c: &Chain<Ouroboros>, net: &Net, i: usize, slot: u64, vrf: VrfEvidence) -> Block {
    block_with(c, net, i, slot, vrf, Vec::new())
}

fn block_with(
    c: &Chain<Ouroboros>,
    net: &Net,
    i: usize,
    slot: u64,
    vrf: VrfEvidence,
    txs: Vec<Transaction>,
) -> Block {
    let clock = SlotClock::from_genesis(&net.genesis).expect("clock");
    // A block whose transactions do not apply (a test of their refusal) gets a zero root: it
    // is refused for the transactions first.
    let root = c
        .state_root_after(&c.tip_hash(), &net.keys[i].public(), &txs)
        .unwrap_or(pp_ledger::Hash::ZERO);
    Block::produce_with(
        &c.tip().header,
        slot,
        clock.slot_start_ms(slot),
        net.genesis.difficulty,
        txs,
        root,
        Some(vrf),
        &net.keys[i],
        &c.genesis_hash(),
        1 << 24,
    )
    .expect("difficulty 1 is mined quickly")
}

/// The first slot in `slots` that a genesis stakeholder leads, with its block carrying `txs`.
fn genesis_leader_block(
    c: &Chain<Ouroboros>,
    net: &Net,
    slots: std::ops::Range<u64>,
    txs: Vec<Transaction>,
) -> Block {
    for slot in slots {
        for i in 0..3 {
            if let Ok(Some(vrf)) = prove(c, net, i, slot) {
                return block_with(c, net, i, slot, vrf, txs);
            }
        }
    }
    panic!("f = 1/2: a genesis stakeholder leads some slot");
}

/// A VRF proof for `slot` under dave's key with dave's would-be threshold, made outside the
/// rules (which refuse to prove for a key they do not know): what a block by dave would carry.
fn dave_evidence(c: &Chain<Ouroboros>, net: &Net, slot: u64) -> Option<VrfEvidence> {
    let state = c.state_for_next(slot);
    let theta = pp_ouroboros::ActiveSlotCoeff::new(1, 2)
        .expect("f = 1/2 is admissible")
        .threshold(DAVE_STAKE, u128::from(DAVE_STAKE + 6_000))
        .expect("stake <= total");
    pp_ouroboros::prove_leadership::<EcVrf>(&net.vrf[3], &state.nonce, slot, theta)
        .expect("a valid key proves")
        .map(|p| VrfEvidence {
            output: p.output.0,
            proof: p.proof.0,
        })
}

#[test]
fn a_stakeholder_bonding_with_a_vrf_key_leads_from_the_snapshot_that_holds_its_stake() {
    let net = network(true);
    let mut c = chain(&net);
    // The bond, in epoch 0.
    let b = genesis_leader_block(
        &c,
        &net,
        1..E,
        vec![dave_bond(&net, Some(vrf_public(&net.vrf[3])))],
    );
    assert_eq!(c.verify_and_add(b, NOW).unwrap(), AddOutcome::Extended);
    assert_eq!(c.state().stake(&net.keys[3].public()), DAVE_STAKE);
    assert_eq!(
        c.state().vrf_key(&net.keys[3].public()),
        Some(vrf_public(&net.vrf[3]))
    );

    // Epoch 1 (SD_1 and its keys are the genesis'): dave cannot prove, and a block with a
    // proof its key would make under its future threshold is refused for want of a key.
    for slot in E..2 * E {
        assert_eq!(
            prove(&c, &net, 3, slot),
            Err(OuroborosError::InvalidVrfPublicKey)
        );
    }
    let slot = (E..2 * E)
        .find(|&s| dave_evidence(&c, &net, s).is_some())
        .expect("a 0.8 chance per slot over 10 slots");
    let early = block(&c, &net, 3, slot, dave_evidence(&c, &net, slot).unwrap());
    match c.verify_and_add(early, NOW) {
        Err(ChainError::Block(BlockError::NoVrfKey { producer, .. })) => {
            assert_eq!(producer, net.keys[3].public())
        }
        other => panic!("dave's block before its snapshot: {other:?}"),
    }

    // Epoch 2 (SD_2 = stakes and keys at the end of epoch 0): dave leads, and its block is
    // accepted.
    let state = c.state_for_next(2 * E);
    assert_eq!(
        state.vrf_keys.get(&net.keys[3].public()),
        Some(&vrf_public(&net.vrf[3]))
    );
    let (slot, vrf) = (2 * E..3 * E)
        .find_map(|s| prove(&c, &net, 3, s).unwrap().map(|v| (s, v)))
        .expect("dave (62.5 % of the stake) leads a slot of epoch 2");
    let b = block(&c, &net, 3, slot, vrf);
    assert_eq!(c.verify_and_add(b, NOW).unwrap(), AddOutcome::Extended);
    assert_eq!(c.tip().header.producer, net.keys[3].public());
}

#[test]
fn a_praos_bond_without_a_vrf_key_or_with_a_taken_or_changed_key_is_refused() {
    let net = network(true);
    let mut c = chain(&net);
    let st = LedgerState::from_genesis(&net.genesis);
    let gh = net.genesis.hash();
    // No key: refused, so a stakeholder without a VRF key never gets stake to lead with.
    assert_eq!(
        st.check_tx(&dave_bond(&net, None), &gh),
        Err(TxError::MissingVrfKey {
            account: net.keys[3].public()
        })
    );
    // k1's key: refused.
    assert_eq!(
        st.check_tx(&dave_bond(&net, Some(vrf_public(&net.vrf[0]))), &gh),
        Err(TxError::VrfKeyTaken {
            key: vrf_public(&net.vrf[0]),
            owner: net.keys[0].public()
        })
    );
    // In a block too: the block is refused with the transaction's typed error.
    let bad = genesis_leader_block(&c, &net, 1..E, vec![dave_bond(&net, None)]);
    match c.verify_and_add(bad, NOW) {
        Err(ChainError::Block(BlockError::Tx { error, .. })) => assert_eq!(
            error,
            TxError::MissingVrfKey {
                account: net.keys[3].public()
            }
        ),
        other => panic!("a block with a keyless praos bond: {other:?}"),
    }
    // A genesis stakeholder's later bond must repeat its registered key.
    let k2_bond = |vrf: PublicKey| {
        TxBody {
            kind: TxKind::Bond {
                stakeholder_id: "k2".into(),
                vrf_key: Some(vrf),
            },
            from: net.keys[1].public(),
            amount: 10,
            fee: 1,
            nonce: 0,
        }
        .sign(&net.keys[1], &gh)
    };
    assert_eq!(
        st.check_tx(&k2_bond(vrf_public(&net.vrf[3])), &gh),
        Err(TxError::VrfKeyMismatch {
            registered: vrf_public(&net.vrf[1]),
            got: vrf_public(&net.vrf[3])
        })
    );
    // With its own key it is valid.
    assert_eq!(st.check_tx(&k2_bond(vrf_public(&net.vrf[1])), &gh), Ok(()));
    // Dave's bond with its own key is valid.
    assert_eq!(
        st.check_tx(&dave_bond(&net, Some(vrf_public(&net.vrf[3]))), &gh),
        Ok(())
    );
}

#[test]
fn a_classic_bond_carrying_a_vrf_key_is_refused_and_one_without_is_valid() {
    let net = network(false);
    let st = LedgerState::from_genesis(&net.genesis);
    let gh = net.genesis.hash();
    assert_eq!(
        st.check_tx(&dave_bond(&net, Some(vrf_public(&net.vrf[3]))), &gh),
        Err(TxError::VrfKeyOnClassicNetwork)
    );
    assert_eq!(st.check_tx(&dave_bond(&net, None), &gh), Ok(()));
}

/// A rollback of the bonding block takes the key back (and the redo restores it): the key is
/// free for another stakeholder again on the fork without the bond.
#[test]
fn rolling_back_the_bond_unregisters_its_vrf_key() {
    let net = network(true);
    let gh = net.genesis.hash();
    let mut st = LedgerState::from_genesis(&net.genesis);
    let before = st.clone();
    let c = chain(&net);
    let b = genesis_leader_block(
        &c,
        &net,
        1..E,
        vec![dave_bond(&net, Some(vrf_public(&net.vrf[3])))],
    );
    let undo = st.apply_block(&b, &gh, net.genesis.block_reward).unwrap();
    assert_eq!(
        st.vrf_key(&net.keys[3].public()),
        Some(vrf_public(&net.vrf[3]))
    );
    st.rollback(undo);
    assert_eq!(st, before);
    assert_eq!(st.vrf_key(&net.keys[3].public()), None);
}

/// The stake snapshot of an epoch is provable from one header (docs/leader-election.md §2.1):
/// at the snapshot block (the genesis block for epochs 0 and 1, the last block of epoch e − 2
/// after), every stakeholder's leaf (stake and VRF key) and the total-stake leaf verify against
/// its header's `state_root`, give exactly the `SD_e` and VRF keys the rules elect with, and the
/// proven stakes add up to the proven total (so none was left out).
#[test]
fn the_stake_snapshot_of_an_epoch_is_proven_against_its_snapshot_header() {
    use pp_ledger::state_tree::{
        account_key, decode_total_stake, total_stake_key, verify, AccountLeaf,
    };
    use pp_ledger::Decode;
    let net = network(true);
    let mut c = chain(&net);
    // The bond, in epoch 0, then a block in epoch 1 (which does not count for SD_2).
    let b1 = genesis_leader_block(
        &c,
        &net,
        1..E,
        vec![dave_bond(&net, Some(vrf_public(&net.vrf[3])))],
    );
    assert_eq!(
        c.verify_and_add(b1.clone(), NOW).unwrap(),
        AddOutcome::Extended
    );
    let b2 = genesis_leader_block(&c, &net, E..2 * E, vec![]);
    assert_eq!(c.verify_and_add(b2, NOW).unwrap(), AddOutcome::Extended);

    // (epoch, snapshot block index): SD_1 from the genesis block, SD_2 from b1.
    for (epoch, snapshot) in [(1u64, 0u64), (2, 1)] {
        let header = c.header_at(snapshot).expect("held").clone();
        let root = header.state_root;
        let st = c.state_for_next(epoch * E);
        let tree = c.state_tree();
        // Every stakeholder of SD_e: its leaf, proven, holds its stake and VRF key.
        let mut sum = 0u128;
        for (pk, stake) in st.distribution.iter() {
            let key = account_key(pk);
            let (value, proof) = tree.prove(snapshot, &key).unwrap();
            let value = value.expect("a stakeholder has a leaf");
            verify(&root, &key, Some(&value), &proof).expect("proof against the header");
            let leaf = AccountLeaf::from_canonical_bytes(&value).unwrap();
            assert_eq!(leaf.stake, *stake, "epoch {epoch}");
            assert_eq!(leaf.vrf_key.as_ref(), st.vrf_keys.get(pk), "epoch {epoch}");
            sum += u128::from(leaf.stake);
        }
        // The total leaf, proven: the sum of the proven stakes is all of it.
        let (total, proof) = tree.prove(snapshot, &total_stake_key()).unwrap();
        let total = total.expect("always present");
        verify(&root, &total_stake_key(), Some(&total), &proof).unwrap();
        assert_eq!(decode_total_stake(&total).unwrap(), sum, "epoch {epoch}");
        // Leaving dave out (SD_2) would fall short of the total.
        let dave = net.keys[3].public();
        assert_eq!(st.distribution.contains_key(&dave), epoch == 2);
        // A proof for another block's state does not verify against this header.
        let other = c.header_at(snapshot + 1).unwrap().state_root;
        assert!(verify(&other, &total_stake_key(), Some(&total), &proof).is_err());
    }
}
