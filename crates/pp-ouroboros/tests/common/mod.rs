//! The praos test network shared by the chain-level praos tests (`praos_chain.rs`,
//! `opcert_chain.rs`): three stakeholders on the real `pp_ledger::Chain`.
#![allow(dead_code, unreachable_pub)] // Each test file uses part of it; `pub` for the test crates.

use pp_ledger::{Chain, Genesis, InitialStakeholder, KeyPair, PublicKey, Ratio, VrfEvidence};
use pp_ouroboros::{Ouroboros, SlotClock, VrfSecretKey};

/// Slots per epoch of the test network (nonce window: the first 6 slots).
pub const E: u64 = 10;
/// A clock far after every slot used, so no block is "in the future".
pub const NOW: u64 = u64::MAX / 2;

/// The network: its genesis, the stakeholders' account (cold) keys and their VRF keys.
pub struct Net {
    pub genesis: Genesis,
    pub keys: Vec<KeyPair>,
    pub vrf: Vec<VrfSecretKey>,
}

/// Three stakeholders with stakes 1000/2000/3000, f = 1/2, 10-slot epochs, difficulty 1.
pub fn network() -> Net {
    let keys: Vec<KeyPair> = (1..=3u8).map(|i| KeyPair::from_seed([i; 32])).collect();
    let vrf: Vec<VrfSecretKey> = (1..=3u8)
        .map(|i| VrfSecretKey::from_seed([100 + i; 32]))
        .collect();
    let mut g = Genesis::devnet("k1", keys[0].public(), 0);
    g.slots_per_epoch = E;
    g.difficulty = 1;
    g.initial_stakeholders[0].stake = 1_000;
    for (i, k) in keys.iter().enumerate().skip(1) {
        g.initial_stakeholders.push(InitialStakeholder {
            id: format!("k{}", i + 1),
            public_key: k.public(),
            stake: 1_000 * (i as u64 + 1),
            vrf_key: None,
        });
    }
    let vrf_keys: Vec<PublicKey> = vrf
        .iter()
        .map(|s| PublicKey(*s.public().as_bytes()))
        .collect();
    let g = g.into_praos(Ratio { num: 1, den: 2 }, &vrf_keys);
    g.validate().expect("test genesis is valid");
    Net {
        genesis: g,
        keys,
        vrf,
    }
}

/// A fresh chain on the network's genesis.
pub fn chain(net: &Net) -> Chain<Ouroboros> {
    Chain::new(
        net.genesis.clone(),
        Ouroboros::new(&net.genesis).expect("praos rules"),
    )
    .expect("valid genesis")
}

/// The network's slot clock.
pub fn clock(net: &Net) -> SlotClock {
    SlotClock::from_genesis(&net.genesis).expect("valid clock")
}

/// The evidence stakeholder `i` proves for `slot` on top of the chain's tip, if it leads.
pub fn prove(chain: &Chain<Ouroboros>, net: &Net, i: usize, slot: u64) -> Option<VrfEvidence> {
    let state = chain.state_for_next(slot);
    chain
        .rules()
        .prove_slot(&state, slot, &net.keys[i].public(), &net.vrf[i])
        .expect("the registered key proves")
}
