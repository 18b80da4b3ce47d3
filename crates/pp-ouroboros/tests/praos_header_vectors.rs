//! Test vectors of praos mode (docs/leader-election.md §10.7): a fixed praos genesis (the
//! docs/consensus.md test-vector genesis switched to praos with f = 1/2 and VRF keys from fixed
//! seeds), its hash, and the first block its stakeholder "bob" produces: the VRF input, output,
//! proof and leader value, bob's operational certificate (hot key, body, signed message, cold
//! signature), the v6 header's canonical bytes and hash, the hot key's block signature, and η_1
//! after that block.
//! A second implementation that reproduces these bytes agrees with this one on praos headers.
//!
//! Print them with
//! `cargo test -p pp-ouroboros --test praos_header_vectors -- --ignored --nocapture`
//! (regenerate only when the format changes on purpose: these values are consensus).

use pp_ledger::{
    Block, ConsensusRules, Encode, Genesis, Hash, InitialBalance, InitialStakeholder, KeyPair,
    LeaderMode, OpCert, PublicKey, Ratio,
};
use pp_ouroboros::{leader_value, vrf_input, Ouroboros, VrfSecretKey};

const PRAOS_GENESIS_HASH: &str = "d91bfef9398d090ca03ab2e7ac8c36faa95bbdb90e76d3fab5c68acb12c07dba";
const VRF_PUBLIC_ALICE: &str = "94004ce3ca7c886076f5a961967c88a3beea352f9ba2cc13b56d477bb88acd4a";
const VRF_PUBLIC_BOB: &str = "14ce7361ec71866546327bd0b63cd5325acf7d5f8880763a3b4f1fb0e376fb01";
const BLOCK_SLOT: u64 = 1;
const THETA_BOB: u64 = 7478244423164712583;
const VRF_INPUT: &str =
    "908726b6ba07be63b3cba4a17a12959e59b53ac17a6d2032f7d76d6db31f1c480000000000000001";
const VRF_OUTPUT: &str = "a3652f3b20ac9c1eb101317cea49750d5a3ee9b78fec7009a2ef2059e74b0288cd21226b37e45a313c6d4bf8ac50b4c48f2800e3252b1e3d207029706412e1ab";
const VRF_PROOF: &str = "7b06a411e40d5e3fe3969c8432cc7036bff44fa44ddedaf0505f043759aa810fb07dc7571e1254059f750ed15c222e22aedf13c61c269359e5fe57ea487278c4faa45721660a7aa0a1790fb76724e20e";
const LEADER_VALUE: &str = "032cb822b9a287e35be5f105a0264e136d84b14f33a1a38642a7540e9fb87466";
const HEADER_CANONICAL: &str = "0000000600000000000000010000000000000001f7101e043a7d2c7a395468f7f208cf4b9e96d0c7d81296f9e9f70eb33e6c5b50000000000000000000000000000000000000000000000000000000000000000055d217c54356928f054572f1e1b5f8ecbd60c80f6de03656db3365f4384ba2048139770ea87d175f56a35466c34c7ecccb8d8a91b4ee37a25df60f5b8fc9b3940000018bcfe56be800000002a3652f3b20ac9c1eb101317cea49750d5a3ee9b78fec7009a2ef2059e74b0288cd21226b37e45a313c6d4bf8ac50b4c48f2800e3252b1e3d207029706412e1ab7b06a411e40d5e3fe3969c8432cc7036bff44fa44ddedaf0505f043759aa810fb07dc7571e1254059f750ed15c222e22aedf13c61c269359e5fe57ea487278c4faa45721660a7aa0a1790fb76724e20ec161567aecaca2c7b480b2aac3a4c96b6420aad0952b6ee5c6e20505bdfb0983000000000000000100000000000000002588403bc6dbae71e61beab8bd49f00a8cc008de91e60587fd6c12afd1a897d64266059cb838155d6ff6fb183850bb1fe73390b16c619054314f7d059878270700000000000002e4";
const BLOCK_HASH: &str = "00320d05a9382389270879dbcdead980cf0657ec09e73c3316f9ab6bc07e7774";
const HOT_PUBLIC_BOB: &str = "c161567aecaca2c7b480b2aac3a4c96b6420aad0952b6ee5c6e20505bdfb0983";
const OPCERT_COUNTER: u64 = 1;
const OPCERT_VALID_FROM: u64 = 0;
const OPCERT_BODY: &str = "c161567aecaca2c7b480b2aac3a4c96b6420aad0952b6ee5c6e20505bdfb098300000000000000010000000000000000";
const OPCERT_SIGNING_MESSAGE: &str = "70702d6c65646765722f6f70636572742f7631d91bfef9398d090ca03ab2e7ac8c36faa95bbdb90e76d3fab5c68acb12c07dbabe430112b78a34b3aa588706dcccbe29c3b5018a3fd5b59fd41f6724bf0febf1";
const OPCERT_SIGNATURE: &str = "2588403bc6dbae71e61beab8bd49f00a8cc008de91e60587fd6c12afd1a897d64266059cb838155d6ff6fb183850bb1fe73390b16c619054314f7d0598782707";
const BLOCK_SIGNATURE: &str = "365e65f37eda4735c0f78c255809de3d3dda2c835b073603e7932a09f0ed03354144c31173d343ff2f88098e8e14e5ed40ab71b0914e6f90128c3ac3622a6c02";
const ETA_1: &str = "755d27784aff41ac9b31e514617f6abcfeb60cf241cf62c029e5476f14609c7a";

const DOC: &str = include_str!("../../../docs/leader-election.md");

#[test]
fn docs_leader_election_md_lists_the_praos_header_vectors() {
    let slot = BLOCK_SLOT.to_string();
    let theta = THETA_BOB.to_string();
    for value in [
        PRAOS_GENESIS_HASH,
        VRF_PUBLIC_ALICE,
        VRF_PUBLIC_BOB,
        slot.as_str(),
        theta.as_str(),
        VRF_INPUT,
        VRF_OUTPUT,
        VRF_PROOF,
        LEADER_VALUE,
        HEADER_CANONICAL,
        BLOCK_HASH,
        HOT_PUBLIC_BOB,
        OPCERT_BODY,
        OPCERT_SIGNING_MESSAGE,
        OPCERT_SIGNATURE,
        BLOCK_SIGNATURE,
        ETA_1,
    ] {
        assert!(DOC.contains(value), "docs/leader-election.md lacks {value}");
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

struct Vectors {
    genesis: Genesis,
    vrf_alice: VrfSecretKey,
    vrf_bob: VrfSecretKey,
    slot: u64,
    theta: u64,
    eta0: Hash,
    block: Block,
    hot: KeyPair,
    cert: OpCert,
    eta1: Hash,
}

fn compute() -> Vectors {
    let alice = KeyPair::from_seed([1u8; 32]);
    let bob = KeyPair::from_seed([2u8; 32]);
    // VRF seeds: Blake2b-256("pp-testvector vrf " ‖ name).
    let vrf_alice = VrfSecretKey::from_seed(Hash::blake2b(b"pp-testvector vrf alice").0);
    let vrf_bob = VrfSecretKey::from_seed(Hash::blake2b(b"pp-testvector vrf bob").0);
    let genesis = Genesis {
        network: "pp-testvector".into(),
        genesis_time: 1_700_000_000_000,
        slot_duration_ms: 1_000,
        slots_per_epoch: 60,
        difficulty: 2,
        k: 10,
        max_block_bytes: 1 << 20,
        max_block_txs: 1_000,
        block_reward: 50,
        max_clock_skew_ms: 2_000,
        initial_balances: vec![
            InitialBalance {
                account: alice.public(),
                amount: 1_000_000,
            },
            InitialBalance {
                account: bob.public(),
                amount: 500_000,
            },
        ],
        initial_stakeholders: vec![
            InitialStakeholder {
                id: "alice".into(),
                public_key: alice.public(),
                stake: 1_000,
                vrf_key: Some(PublicKey(*vrf_alice.public().as_bytes())),
            },
            InitialStakeholder {
                id: "bob".into(),
                public_key: bob.public(),
                stake: 3_000,
                vrf_key: Some(PublicKey(*vrf_bob.public().as_bytes())),
            },
        ],
        epoch_nonce: Hash::blake2b(b"pp-testvector epoch nonce"),
        leader_mode: LeaderMode::Praos,
        active_slot_coeff: Some(Ratio { num: 1, den: 2 }),
    };
    genesis.validate().expect("valid praos genesis");
    let rules = Ouroboros::new(&genesis).expect("praos rules");
    let state0 = rules.genesis_state(&genesis);
    let no_stakes = Default::default();
    // Bob's first led slot from slot 1 on.
    let (slot, evidence) = (1..1_000)
        .find_map(|s| {
            let st = rules.state_for_slot(&state0, s, &no_stakes);
            rules
                .prove_slot(&st, s, &bob.public(), &vrf_bob)
                .expect("bob's registered key")
                .map(|e| (s, e))
        })
        .expect("bob (3/4 of the stake) leads within 1000 slots");
    let st = rules.state_for_slot(&state0, slot, &no_stakes);
    let theta = rules.threshold_of(&st, &bob.public()).expect("threshold");
    let gh = genesis.hash();
    // Bob's hot key: seed Blake2b-256("pp-testvector hot bob"); his cold key (the account key)
    // certifies it with counter 1, valid from epoch 0.
    let hot = KeyPair::from_seed(Hash::blake2b(b"pp-testvector hot bob").0);
    let cert = OpCert::issue(&bob, hot.public(), OPCERT_COUNTER, OPCERT_VALID_FROM, &gh);
    let block = Block::produce_praos(
        &genesis.block().header,
        slot,
        genesis.genesis_time + slot * 1_000,
        genesis.difficulty,
        Vec::new(),
        pp_ledger::testing::root_on(&genesis, &genesis.block().header, &bob.public(), &[])
            .expect("an empty block applies")
            .0,
        bob.public(),
        evidence,
        cert,
        &hot,
        &gh,
        1 << 24,
    )
    .expect("difficulty 2 is mined quickly");
    let mut after = st.clone();
    rules.on_header(&mut after, &block.header, &block.hash());
    let eta1 = rules
        .state_for_slot(&after, genesis.slots_per_epoch, &no_stakes)
        .nonce;
    Vectors {
        eta0: st.nonce,
        genesis,
        vrf_alice,
        vrf_bob,
        slot,
        theta,
        block,
        hot,
        cert,
        eta1,
    }
}

#[test]
#[ignore = "prints the vectors"]
fn print_praos_header_vectors() {
    let v = compute();
    let vrf = v
        .block
        .header
        .vrf
        .as_deref()
        .copied()
        .expect("praos header");
    println!("genesis json\n{}", v.genesis.to_json_pretty());
    println!("genesis canonical {}", hex(&v.genesis.to_canonical_bytes()));
    println!("const PRAOS_GENESIS_HASH: &str = \"{}\";", v.genesis.hash());
    println!(
        "const VRF_PUBLIC_ALICE: &str = \"{}\";",
        hex(v.vrf_alice.public().as_bytes())
    );
    println!(
        "const VRF_PUBLIC_BOB: &str = \"{}\";",
        hex(v.vrf_bob.public().as_bytes())
    );
    println!("const BLOCK_SLOT: u64 = {};", v.slot);
    println!("const THETA_BOB: u64 = {};", v.theta);
    println!(
        "const VRF_INPUT: &str = \"{}\";",
        hex(&vrf_input(&v.eta0, v.slot))
    );
    println!("const VRF_OUTPUT: &str = \"{}\";", hex(&vrf.output));
    println!("const VRF_PROOF: &str = \"{}\";", hex(&vrf.proof));
    println!(
        "const LEADER_VALUE: &str = \"{}\";",
        leader_value(&vrf.output)
    );
    println!(
        "const HEADER_CANONICAL: &str = \"{}\";",
        hex(&v.block.header.canonical_bytes())
    );
    println!("const BLOCK_HASH: &str = \"{}\";", v.block.hash());
    println!("const HOT_PUBLIC_BOB: &str = \"{}\";", v.hot.public());
    println!(
        "const OPCERT_BODY: &str = \"{}\";",
        hex(&v.cert.body_bytes())
    );
    println!(
        "const OPCERT_SIGNING_MESSAGE: &str = \"{}\";",
        hex(&v.cert.signing_message(&v.genesis.hash()))
    );
    println!("const OPCERT_SIGNATURE: &str = \"{}\";", v.cert.signature);
    println!("const BLOCK_SIGNATURE: &str = \"{}\";", v.block.signature);
    println!("const ETA_1: &str = \"{}\";", v.eta1);
    println!(
        "block json {}",
        serde_json::to_string_pretty(&v.block).unwrap_or_default()
    );
}

#[test]
fn praos_header_vectors_match_the_code() {
    let v = compute();
    let vrf = v
        .block
        .header
        .vrf
        .as_deref()
        .copied()
        .expect("praos header");
    assert_eq!(v.genesis.hash().to_hex(), PRAOS_GENESIS_HASH);
    assert_eq!(hex(v.vrf_alice.public().as_bytes()), VRF_PUBLIC_ALICE);
    assert_eq!(hex(v.vrf_bob.public().as_bytes()), VRF_PUBLIC_BOB);
    assert_eq!(v.slot, BLOCK_SLOT);
    assert_eq!(v.theta, THETA_BOB);
    assert_eq!(hex(&vrf_input(&v.eta0, v.slot)), VRF_INPUT);
    assert_eq!(hex(&vrf.output), VRF_OUTPUT);
    assert_eq!(hex(&vrf.proof), VRF_PROOF);
    assert_eq!(leader_value(&vrf.output).to_hex(), LEADER_VALUE);
    assert_eq!(hex(&v.block.header.canonical_bytes()), HEADER_CANONICAL);
    assert_eq!(HEADER_CANONICAL.len(), 2 * pp_ledger::PRAOS_HEADER_LEN);
    assert_eq!(v.block.hash().to_hex(), BLOCK_HASH);
    assert_eq!(v.hot.public().to_hex(), HOT_PUBLIC_BOB);
    assert_eq!(hex(&v.cert.body_bytes()), OPCERT_BODY);
    assert_eq!(
        hex(&v.cert.signing_message(&v.genesis.hash())),
        OPCERT_SIGNING_MESSAGE
    );
    assert_eq!(v.cert.signature.to_hex(), OPCERT_SIGNATURE);
    assert_eq!(v.block.signature.to_hex(), BLOCK_SIGNATURE);
    // The certificate sits between the VRF proof and the nonce; the hot key signed the block,
    // the cold key (the producer) the certificate, and a chain accepts the block.
    assert_eq!(
        &HEADER_CANONICAL[2 * 304..2 * 416],
        format!("{OPCERT_BODY}{OPCERT_SIGNATURE}")
    );
    assert_eq!(v.block.header.signer(), v.hot.public());
    assert_eq!(
        v.cert.verify(&v.block.header.producer, &v.genesis.hash()),
        Ok(())
    );
    let mut chain = pp_ledger::Chain::new(
        v.genesis.clone(),
        Ouroboros::new(&v.genesis).expect("praos rules"),
    )
    .expect("valid genesis");
    assert_eq!(
        chain.verify_and_add(v.block.clone(), u64::MAX / 2),
        Ok(pp_ledger::AddOutcome::Extended)
    );
    assert_eq!(v.eta1.to_hex(), ETA_1);
    // The header bytes alone decode to the header, and the classic genesis (same fields,
    // classic mode) keeps its docs/consensus.md hash: the praos fields are appended only in
    // praos mode.
    let bytes = v.block.header.to_canonical_bytes();
    assert_eq!(
        <pp_ledger::BlockHeader as pp_ledger::Decode>::from_canonical_bytes(&bytes),
        Ok(v.block.header.clone())
    );
    let mut classic = v.genesis.clone();
    classic.leader_mode = LeaderMode::Classic;
    classic.active_slot_coeff = None;
    for s in &mut classic.initial_stakeholders {
        s.vrf_key = None;
    }
    assert_eq!(
        classic.hash().to_hex(),
        "b2dda3e7a37922206901efbae3861413e253fe99ac8d61e4362e005ba9a1dbd9"
    );
}
