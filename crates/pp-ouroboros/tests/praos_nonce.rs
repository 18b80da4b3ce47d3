//! The Praos epoch nonce: only the VRF outputs of the blocks in the first two thirds of an
//! epoch feed the next nonce. Grinding tests: a producer varying anything else about its block
//! (header nonce, transactions, hence the block hash) cannot move the next nonce, and blocks
//! after the cut cannot either. Vectors in docs/leader-election.md §9.5.

use pp_ledger::Hash;
use pp_ouroboros::{
    epoch_nonce_next, nonce_contribution, nonce_window, praos_next_nonce, rho_of, tie_break,
    vrf_input, EcVrf, OuroborosError, Vrf, VrfOutput, VrfSecretKey,
};
use proptest::prelude::*;

const DOC: &str = include_str!("../../../docs/leader-election.md");
const E: u64 = 60;

/// A stand-in for a block: what a producer controls (header nonce, body) and what it does not
/// (its VRF output for the slot).
#[derive(Clone)]
struct Block {
    slot: u64,
    output: VrfOutput,
    header_nonce: u64,
    body: Vec<u8>,
}

impl Block {
    fn hash(&self) -> Hash {
        Hash::blake2b_parts(&[
            &self.slot.to_be_bytes(),
            &self.output.0,
            &self.header_nonce.to_be_bytes(),
            &self.body,
        ])
    }
}

fn eta0() -> Hash {
    Hash::blake2b(b"pp-ouroboros test vector")
}

fn key() -> VrfSecretKey {
    // RFC 9381 B.3 example 16's secret key.
    let mut seed = [0u8; 32];
    for (i, b) in seed.iter_mut().enumerate() {
        let hex = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
        *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).expect("valid test input");
    }
    VrfSecretKey::from_seed(seed)
}

fn output(slot: u64) -> VrfOutput {
    EcVrf::prove(&key(), &vrf_input(&eta0(), slot))
        .expect("valid test input")
        .0
}

fn blocks(slots: &[u64]) -> Vec<Block> {
    slots
        .iter()
        .map(|&slot| Block {
            slot,
            output: output(slot),
            header_nonce: 0,
            body: Vec::new(),
        })
        .collect()
}

fn next(epoch: u64, blocks: &[Block]) -> Hash {
    praos_next_nonce(&eta0(), epoch, E, blocks.iter().map(|b| (b.slot, b.output)))
        .expect("valid test input")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn window_is_the_first_two_thirds() {
    assert_eq!(nonce_window(60), 40);
    assert_eq!(nonce_window(1), 0);
    assert_eq!(nonce_window(3), 2);
    assert_eq!(nonce_window(u64::MAX), u64::MAX / 3 * 2);
}

#[test]
fn documented_nonce_vectors_match_the_code() {
    let bs = blocks(&[3, 39, 40]);
    let mut rho = Hash::ZERO;
    let mut values = Vec::new();
    for b in &bs {
        let n = nonce_contribution(&b.output.0);
        println!("slot {} beta {} n {}", b.slot, hex(&b.output.0), n.to_hex());
        values.push(hex(&b.output.0));
        if b.slot < 40 {
            rho = Hash::blake2b_parts(&[rho.as_bytes(), n.as_bytes()]);
            values.push(n.to_hex());
        }
    }
    let eta1 = next(0, &bs);
    let empty = praos_next_nonce::<VrfOutput>(&eta0(), 0, E, []).expect("valid test input");
    println!(
        "rho {}\neta1 {}\nempty {}",
        rho.to_hex(),
        eta1.to_hex(),
        empty.to_hex()
    );
    values.extend([rho.to_hex(), eta1.to_hex(), empty.to_hex()]);
    for value in values {
        assert!(
            DOC.contains(&value),
            "docs/leader-election.md lacks {value}"
        );
    }
}

#[test]
fn blocks_after_the_cut_do_not_affect_the_next_nonce() {
    let base = next(0, &blocks(&[3, 39]));
    assert_eq!(next(0, &blocks(&[3, 39, 40])), base);
    assert_eq!(next(0, &blocks(&[3, 39, 41, 50, 59])), base);
    // A block inside the window does.
    assert_ne!(next(0, &blocks(&[3, 38, 39])), base);
    assert_ne!(next(0, &blocks(&[3])), base);
}

#[test]
fn the_old_hash_based_rule_is_grindable_and_the_praos_rule_is_not() {
    let honest = blocks(&[1, 2, 3]);
    let mut ground = honest.clone();
    ground[2].header_nonce = 12_345;
    ground[2].body = b"another transaction order".to_vec();
    assert_ne!(honest[2].hash(), ground[2].hash());
    // The classic rule folds block hashes: the producer moves the nonce at will.
    let classic = |bs: &[Block]| {
        let hashes: Vec<Hash> = bs.iter().map(Block::hash).collect();
        epoch_nonce_next(&eta0(), &rho_of(&hashes))
    };
    assert_ne!(classic(&honest), classic(&ground));
    // The Praos rule does not move.
    assert_eq!(next(0, &honest), next(0, &ground));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn varying_everything_but_vrf_outputs_cannot_change_the_next_nonce(
        nonces in proptest::collection::vec(any::<u64>(), 4),
        bodies in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..16), 4),
        late in proptest::collection::vec((40u64..60, any::<[u8; 32]>()), 0..4),
    ) {
        let honest = blocks(&[0, 10, 20, 39]);
        let expected = next(0, &honest);
        let mut varied = honest.clone();
        for (i, b) in varied.iter_mut().enumerate() {
            b.header_nonce = nonces[i];
            b.body = bodies[i].clone();
        }
        // Any blocks after the cut, with any outputs.
        let mut late: Vec<(u64, [u8; 32])> = late;
        late.sort_by_key(|(slot, _)| *slot);
        late.dedup_by_key(|(slot, _)| *slot);
        for (slot, seed) in late {
            let mut out = [0u8; 64];
            out[..32].copy_from_slice(&seed);
            varied.push(Block { slot, output: VrfOutput(out), header_nonce: 0, body: Vec::new() });
        }
        prop_assert_eq!(next(0, &varied), expected);
    }
}

#[test]
fn out_of_epoch_and_unordered_blocks_are_refused() {
    let out = output(1);
    assert_eq!(
        praos_next_nonce(&eta0(), 1, E, [(59, out)]),
        Err(OuroborosError::SlotNotInEpoch {
            slot: 59,
            slot_epoch: 0,
            state_epoch: 1
        })
    );
    assert_eq!(
        praos_next_nonce(&eta0(), 0, E, [(5, out), (5, out)]),
        Err(OuroborosError::SlotsNotIncreasing {
            previous: 5,
            slot: 5
        })
    );
    assert_eq!(
        praos_next_nonce(&eta0(), 0, 0, [(5, out)]),
        Err(OuroborosError::ZeroSlotsPerEpoch(0))
    );
    // Epoch 1 uses its own window: slots 60..100.
    assert_ne!(
        praos_next_nonce(&eta0(), 1, E, [(99, out)]).expect("valid test input"),
        praos_next_nonce::<VrfOutput>(&eta0(), 1, E, []).expect("valid test input")
    );
    assert_eq!(
        praos_next_nonce(&eta0(), 1, E, [(100, out)]).expect("valid test input"),
        praos_next_nonce::<VrfOutput>(&eta0(), 1, E, []).expect("valid test input")
    );
}

#[test]
fn tie_break_prefers_the_lower_leader_value_whatever_the_order() {
    let a = output(7);
    let b = output(8);
    let (la, lb) = (
        pp_ouroboros::leader_value(&a.0),
        pp_ouroboros::leader_value(&b.0),
    );
    assert_ne!(la, lb);
    let expected = la.cmp(&lb);
    assert_eq!(tie_break(&a.0, &b.0), expected);
    assert_eq!(tie_break(&b.0, &a.0), expected.reverse());
    assert_eq!(tie_break(&a.0, &a.0), std::cmp::Ordering::Equal);
    // Over many pairs the preferred one is always the one with the smaller leader value, read
    // as a big-endian 256-bit number.
    for slot in 0..32 {
        let (x, y) = (output(slot), output(slot + 100));
        let (lx, ly) = (
            pp_ouroboros::leader_value(&x.0),
            pp_ouroboros::leader_value(&y.0),
        );
        let preferred = if tie_break(&x.0, &y.0).is_lt() {
            lx
        } else {
            ly
        };
        assert_eq!(preferred, lx.min(ly));
        assert!(preferred.as_bytes() <= lx.as_bytes() && preferred.as_bytes() <= ly.as_bytes());
    }
}
