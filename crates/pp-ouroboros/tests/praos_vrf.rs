//! The VRF of Praos: RFC 9381 test vectors for ECVRF-EDWARDS25519-SHA512-TAI (appendix B.3),
//! leadership proofs, and privacy (nobody proves leadership without the secret key).

use pp_ledger::Hash;
use pp_ouroboros::{
    leader_value, prove_leadership, verify_leadership, ActiveSlotCoeff, EcVrf, LeaderProof,
    OuroborosError, Vrf, VrfOutput, VrfProof, VrfPublicKey, VrfSecretKey,
};

/// RFC 9381 appendix B.3, examples 16–18: (SK, PK, alpha, pi, beta).
const RFC9381_B3: [(&str, &str, &str, &str, &str); 3] = [
    (
        "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
        "",
        "8657106690b5526245a92b003bb079ccd1a92130477671f6fc01ad16f26f723f\
         26f8a57ccaed74ee1b190bed1f479d9727d2d0f9b005a6e456a35d4fb0daab12\
         68a1b0db10836d9826a528ca76567805",
        "90cf1df3b703cce59e2a35b925d411164068269d7b2d29f3301c03dd757876ff\
         66b71dda49d2de59d03450451af026798e8f81cd2e333de5cdf4f3e140fdd8ae",
    ),
    (
        "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
        "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
        "72",
        "f3141cd382dc42909d19ec5110469e4feae18300e94f304590abdced48aed593\
         3bf0864a62558b3ed7f2fea45c92a465301b3bbf5e3e54ddf2d935be3b67926d\
         a3ef39226bbc355bdc9850112c8f4b02",
        "eb4440665d3891d668e7e0fcaf587f1b4bd7fbfe99d0eb2211ccec90496310eb\
         5e33821bc613efb94db5e5b54c70a848a0bef4553a41befc57663b56373a5031",
    ),
    (
        "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
        "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
        "af82",
        "9bc0f79119cc5604bf02d23b4caede71393cedfbb191434dd016d30177ccbf80\
         96bb474e53895c362d8628ee9f9ea3c0e52c7a5c691b6c18c9979866568add7a\
         2d41b00b05081ed0f58ee5e31b3a970e",
        "645427e5d00c62a23fb703732fa5d892940935942101e456ecca7bb217c61c45\
         2118fec1219202a0edcf038bb6373241578be7217ba85a2687f7a0310b2df19f",
    ),
];

fn unhex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("vector is hex"))
        .collect()
}

fn array<const N: usize>(s: &str) -> [u8; N] {
    unhex(s).try_into().expect("vector has the right length")
}

#[test]
fn rfc9381_appendix_b3_vectors_prove_and_verify() {
    for (sk, pk, alpha, pi, beta) in RFC9381_B3 {
        let secret = VrfSecretKey::from_seed(array(sk));
        let public = VrfPublicKey::from_bytes(array(pk)).expect("vector key is valid");
        assert_eq!(secret.public(), public, "public key of {sk}");
        assert_eq!(public.as_bytes(), &array::<32>(pk));
        let alpha = unhex(alpha);
        let (output, proof) = EcVrf::prove(&secret, &alpha).expect("valid test input");
        assert_eq!(proof, VrfProof(array(pi)), "pi for alpha {alpha:02x?}");
        assert_eq!(
            output,
            VrfOutput(array(beta)),
            "beta for alpha {alpha:02x?}"
        );
        assert_eq!(
            EcVrf::verify(&public, &alpha, &VrfProof(array(pi))),
            Some(output)
        );
    }
}

#[test]
fn rfc9381_vector_proofs_fail_when_anything_changes() {
    let (_, pk, alpha, pi, _) = RFC9381_B3[1];
    let public = VrfPublicKey::from_bytes(array(pk)).expect("valid test input");
    let alpha = unhex(alpha);
    let proof = VrfProof(array(pi));
    assert!(EcVrf::verify(&public, &alpha, &proof).is_some());
    assert_eq!(EcVrf::verify(&public, b"73", &proof), None);
    for byte in [0, 31, 32, 47, 48, 79] {
        let mut bad = proof;
        bad.0[byte] ^= 0x01;
        assert_eq!(
            EcVrf::verify(&public, &alpha, &bad),
            None,
            "flip byte {byte}"
        );
    }
    let other = VrfPublicKey::from_bytes(array(RFC9381_B3[0].1)).expect("valid test input");
    assert_eq!(EcVrf::verify(&other, &alpha, &proof), None);
}

fn eta() -> Hash {
    Hash::blake2b(b"praos test nonce")
}

#[test]
fn a_leader_proves_and_anyone_verifies_with_the_public_key() {
    let f = ActiveSlotCoeff::new(1, 2).expect("valid test input");
    let theta = f.threshold(1, 1).expect("valid test input"); // all the stake: leads half the slots
    let secret = VrfSecretKey::from_seed([3; 32]);
    let mut led = 0;
    for slot in 0..64 {
        match prove_leadership::<EcVrf>(&secret, &eta(), slot, theta).expect("valid test input") {
            Some(evidence) => {
                led += 1;
                let output =
                    verify_leadership::<EcVrf>(&secret.public(), &eta(), slot, theta, &evidence)
                        .expect("valid test input");
                assert_eq!(output, evidence.output);
                // The same evidence does not serve another slot or another epoch nonce.
                assert_eq!(
                    verify_leadership::<EcVrf>(
                        &secret.public(),
                        &eta(),
                        slot + 1,
                        theta,
                        &evidence
                    ),
                    Err(OuroborosError::InvalidVrfProof { slot: slot + 1 })
                );
                // Nor a stakeholder with a lower threshold than the value reached.
                let value = leader_value(&evidence.output.0);
                let top =
                    u64::from_be_bytes(value.as_bytes()[..8].try_into().expect("valid test input"));
                assert_eq!(
                    verify_leadership::<EcVrf>(&secret.public(), &eta(), slot, top, &evidence),
                    Err(OuroborosError::NotSlotLeader { slot })
                );
            }
            None => {
                // A non-leader's honest proof is refused as leadership evidence.
                let (output, proof) = EcVrf::prove(&secret, &pp_ouroboros::vrf_input(&eta(), slot))
                    .expect("valid test input");
                assert_eq!(
                    verify_leadership::<EcVrf>(
                        &secret.public(),
                        &eta(),
                        slot,
                        theta,
                        &LeaderProof { output, proof }
                    ),
                    Err(OuroborosError::NotSlotLeader { slot })
                );
            }
        }
    }
    assert!((16..=48).contains(&led), "led {led} of 64 slots at φ ≈ 1/2");
}

#[test]
fn a_wrong_secret_key_never_proves_leadership() {
    // Privacy: leadership of `victim` can only be shown with the victim's secret key. An
    // attacker who knows the victim's public key and uses its own secret key gets proofs that
    // never verify under the victim's key, even in slots where the attacker "leads" with
    // threshold 2^64 − 1 (every value below it).
    let victim = VrfSecretKey::from_seed([5; 32]).public();
    let attacker = VrfSecretKey::from_seed([6; 32]);
    let theta = u64::MAX;
    for slot in 0..200 {
        let evidence = prove_leadership::<EcVrf>(&attacker, &eta(), slot, theta)
            .expect("valid test input")
            .expect("threshold 2^64 − 1 admits nearly every value");
        assert_eq!(
            verify_leadership::<EcVrf>(&victim, &eta(), slot, theta, &evidence),
            Err(OuroborosError::InvalidVrfProof { slot })
        );
    }
}

#[test]
fn evidence_claiming_another_output_is_refused() {
    let secret = VrfSecretKey::from_seed([8; 32]);
    let evidence = prove_leadership::<EcVrf>(&secret, &eta(), 1, u64::MAX)
        .expect("valid test input")
        .expect("valid test input");
    let mut forged = evidence.clone();
    forged.output.0[0] ^= 1;
    assert_eq!(
        verify_leadership::<EcVrf>(&secret.public(), &eta(), 1, u64::MAX, &forged),
        Err(OuroborosError::InvalidVrfProof { slot: 1 })
    );
}
