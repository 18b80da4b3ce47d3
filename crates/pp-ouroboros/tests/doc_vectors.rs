//! The test vectors of docs/leader-election.md, recomputed from the code; the test also checks
//! that the document still contains every value, so the two cannot drift apart.

use pp_ledger::{ConsensusRules, Genesis, Hash, PublicKey, StakeMap};
use pp_ouroboros::{
    epoch_nonce_next, fold_block_hash, leader, leader_draw, reduce_mod_be256, rho_of, EpochState,
    Ouroboros, RHO_EMPTY,
};

const DOC: &str = include_str!("../../../docs/leader-election.md");

fn distribution() -> StakeMap {
    [
        (PublicKey([0x0d; 32]), 5_000),
        (PublicKey([0x0a; 32]), 1_000),
        (PublicKey([0x0c; 32]), 2_500),
        (PublicKey([0x0b; 32]), 1_500),
    ]
    .into_iter()
    .collect()
}

fn eta0() -> Hash {
    Hash::blake2b(b"pp-ouroboros test vector")
}

fn h(hex: &str) -> Hash {
    Hash::from_hex(hex).expect("vector is valid hex")
}

fn assert_documented(value: &str) {
    assert!(DOC.contains(value), "docs/leader-election.md lacks {value}");
}

#[test]
fn documented_leader_vectors_match_the_code() {
    let d = distribution();
    let eta = eta0();
    assert_eq!(
        eta,
        h("b4b7208e901d2cf8bd2fc016343570cb6ebec9612e9d9d2a102fc590c9b78d89")
    );
    assert_documented(&eta.to_hex());
    let vectors: [(u64, &str, u128, u8); 5] = [
        (
            0,
            "7e0afcc4a05330c2fc914202dd26299e0e6137433473ec2c5f89761587b46b94",
            708,
            0x0a,
        ),
        (
            1,
            "f9f845d726ea0d9902ceaf31e8aaf8297fcf3c07ff64234a3c2540d0fbb827a9",
            4009,
            0x0c,
        ),
        (
            2,
            "623a546b3de679d5ce53e422640986a47052b221fa96f369d68e5f9b9ac35e5d",
            4205,
            0x0c,
        ),
        (
            3,
            "600f550d0e5753452f8eed47da08b699a03774f5d66d43c52386ce4caba8222b",
            1915,
            0x0b,
        ),
        (
            42,
            "839928ca2c121a022f643300e6ec39569373980d9d9ebb776c871ac50d271747",
            7303,
            0x0d,
        ),
    ];
    for (slot, draw_hex, r, leader_byte) in vectors {
        let draw = leader_draw(&eta, slot);
        assert_eq!(draw, h(draw_hex), "draw of slot {slot}");
        assert_eq!(reduce_mod_be256(draw.as_bytes(), 10_000), Some(r));
        assert_eq!(leader(&eta, &d, slot), Ok(PublicKey([leader_byte; 32])));
        assert_documented(&format!(
            "| {slot:<4} | `{draw_hex}` | {r:<4} | `{leader_byte:02x}` × 32 |"
        ));
    }
}

#[test]
fn documented_nonce_evolution_matches_the_code_and_the_epoch_state() {
    let eta0 = eta0();
    let h1 = Hash::blake2b(b"block 1");
    let h2 = Hash::blake2b(b"block 2");
    let rho_h1 = fold_block_hash(&RHO_EMPTY, &h1);
    let rho0 = rho_of([&h1, &h2]);
    let eta2 = epoch_nonce_next(&eta0, &rho0);
    let eta3 = epoch_nonce_next(&eta2, &RHO_EMPTY);
    let expected = [
        (
            h1,
            "2fe7172a3b91bb8a5eeee2c8a89f0d4233af05be94213959cf61da0e063d6c76",
        ),
        (
            h2,
            "80216b26be6bd91436bd21d30d97534c6d5f42a428b91830e7adea8ddac77568",
        ),
        (
            rho_h1,
            "15d6141cf7e9222ce984e56199092bface6ebe6c46a22d26d595e802a3ea79fb",
        ),
        (
            rho0,
            "fe8fcfaea84f0d4d782046aebd2af9afe81a4814882b3ed0b12c399b3a266cd7",
        ),
        (
            eta2,
            "5d51aa9002d34344a3fe4726c86e053ccdb2a0862018386c7d0fb32b10436fe1",
        ),
        (
            eta3,
            "6eb3886774fdc909481350f2f6e266e0b4df6e4f971fd57c204626953cc9280c",
        ),
    ];
    for (got, hex) in expected {
        assert_eq!(got, h(hex));
        assert_documented(hex);
    }

    // The same evolution through the chain's view: a genesis with η_0 and the documented
    // distribution, blocks h1, h2 in epoch 0 (slots 1, 2), nothing in epoch 1.
    let mut g = Genesis::devnet("v", PublicKey([0x0a; 32]), 1_700_000_000_000);
    g.epoch_nonce = eta0;
    g.slots_per_epoch = 100;
    let rules = Ouroboros::new(&g).unwrap();
    let d = distribution();
    let mut s = rules.genesis_state(&g);
    for (slot, hash) in [(1, h1), (2, h2)] {
        s = rules.state_for_slot(&s, slot, &d);
        rules.on_block(&mut s, &hash);
    }
    let s2 = rules.state_for_slot(&s, 200, &d);
    assert_eq!((s2.epoch, s2.nonce), (2, eta2));
    assert_eq!(
        *s2.distribution, d,
        "epoch 2 uses the stakes at the end of epoch 0"
    );
    assert_eq!(rules.slot_leader(&s2, 200), Some(PublicKey([0x0c; 32])));
    assert_documented("d1093455aa521f2e51d02c050c7a50eed3a6870708825cab1a0d3c7f40509087");
    assert_eq!(
        leader_draw(&eta2, 200),
        h("d1093455aa521f2e51d02c050c7a50eed3a6870708825cab1a0d3c7f40509087")
    );
    let s3: EpochState = rules.state_for_slot(&s2, 300, &d);
    assert_eq!(s3.nonce, eta3);
}
