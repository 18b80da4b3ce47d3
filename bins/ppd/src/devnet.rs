//! The built-in development network of `ppd` (run with no arguments, or `ppd run` without a
//! genesis): one genesis, the same on every machine, with well-known development keys.
//!
//! * Keys: `dev:NAME` is [`pp_server::dev_key`]`(NAME)`, i.e. the ed25519 key whose 32-byte seed
//!   is `Blake2b-256("pp-ledger/dev-key/v1" ‖ NAME)`. Anyone can compute them: never hold value
//!   under a dev key.
//! * Funded accounts: `dev:alice`, `dev:bob` and `dev:charlie` hold [`DEV_BALANCE`] each;
//!   `dev:alice` is the only stakeholder (id `alice`, stake [`DEV_STAKE`]).
//! * Leader election: Praos, the default of new networks (docs/leader-election.md §10), with
//!   active slot coefficient f = 1/2 ([`pp_ledger::DEVNET_ACTIVE_SLOT_COEFF`]). Alice's VRF key
//!   is her development VRF key ([`pp_server::praos::dev_vrf_key`]`("alice")`), which a node
//!   named `alice` finds without a `vrf.key` file; as the only stakeholder she leads each slot
//!   with probability f, so a block comes about every 2 s. Her node signs with her dev key under
//!   the self-issued certificate (counter 0): nothing on the devnet is secret anyway.
//! * The classic devnet: `ppd` before Praos became the default built [`classic_genesis`] (the
//!   same network in classic mode, in which alice leads every slot). A data dir holding it keeps
//!   running it, as before; `ppd purge` resets it to the praos devnet.
//! * Time: slot 0 starts at [`DEVNET_GENESIS_TIME_MS`] (2025-01-01T00:00:00Z), fixed so that the
//!   genesis hash is a constant. A node started today is far past slot 0: its first block is
//!   at the current slot, whose leader check advances the genesis epoch state over every empty
//!   epoch since genesis (one hash each, once). Epochs are [`DEVNET_SLOTS_PER_EPOCH`] one-second
//!   slots (10 minutes) so that this gap stays far below `pp_ouroboros::MAX_EPOCH_GAP` (2^20
//!   epochs: about 19.9 years of 10-minute epochs, until late 2044), where it costs about
//!   50,000 hashes per year since 2025.
//!
//! Everything else is the devnet's usual parameters. A change to any value here changes the
//! genesis hash, which [`tests::the_built_in_genesis_hash_is_pinned`] pins on purpose.

use pp_ledger::{Genesis, Hash, InitialBalance, InitialStakeholder, KeyPair, LeaderMode};

/// The network name of the built-in devnet.
pub const DEVNET_NETWORK: &str = "pp-devnet";
/// Start of slot 0: 2025-01-01T00:00:00Z, in unix milliseconds.
pub const DEVNET_GENESIS_TIME_MS: u64 = 1_735_689_600_000;
/// Slots per epoch of the built-in devnet (one-second slots: 10-minute epochs).
pub const DEVNET_SLOTS_PER_EPOCH: u64 = 600;
/// The accounts funded at genesis, by dev-key name.
pub const DEV_ACCOUNTS: [&str; 3] = ["alice", "bob", "charlie"];
/// The balance of each funded dev account.
pub const DEV_BALANCE: u64 = 1_000_000_000;
/// The only stakeholder: its id, and its key is `dev:alice`.
pub const DEV_PRODUCER: &str = "alice";
/// The producer's stake.
pub const DEV_STAKE: u64 = 1_000;
/// The prefix naming a development key where a key file is accepted: `dev:alice`.
pub const DEV_KEY_PREFIX: &str = "dev:";

/// The development key `dev:NAME`: see the module docs.
pub fn dev_key(name: &str) -> KeyPair {
    pp_server::dev_key(name)
}

/// The built-in devnet genesis (valid, and the same on every machine and every call): the
/// classic devnet of [`classic_genesis`] switched to Praos with f = 1/2 and alice's development
/// VRF key.
pub fn genesis() -> Genesis {
    classic_genesis().into_praos(
        pp_ledger::DEVNET_ACTIVE_SLOT_COEFF,
        &[pp_server::praos::vrf_public_of(
            pp_server::praos::dev_vrf_seed(DEV_PRODUCER),
        )],
    )
}

/// The built-in devnet of `ppd` before Praos became the default: the same network in classic
/// mode (genesis hash `af3d7d14…`). Only recognised in a data dir that already holds it, which
/// keeps running it; a new data dir gets [`genesis`].
pub fn classic_genesis() -> Genesis {
    let producer = dev_key(DEV_PRODUCER).public();
    Genesis {
        network: DEVNET_NETWORK.into(),
        genesis_time: DEVNET_GENESIS_TIME_MS,
        slot_duration_ms: 1_000,
        slots_per_epoch: DEVNET_SLOTS_PER_EPOCH,
        difficulty: pp_server::config::DEFAULT_DIFFICULTY,
        k: 100,
        max_block_bytes: 2 * 1024 * 1024,
        max_block_txs: 5_000,
        block_reward: 50,
        max_clock_skew_ms: 2_000,
        initial_balances: DEV_ACCOUNTS
            .iter()
            .map(|name| InitialBalance {
                account: dev_key(name).public(),
                amount: DEV_BALANCE,
            })
            .collect(),
        initial_stakeholders: vec![InitialStakeholder {
            id: DEV_PRODUCER.into(),
            public_key: producer,
            stake: DEV_STAKE,
            vrf_key: None,
        }],
        epoch_nonce: Hash::blake2b(b"pp-devnet built-in epoch nonce 0"),
        leader_mode: LeaderMode::Classic,
        active_slot_coeff: None,
    }
}

/// Whether `g` is one of the built-in devnets: [`genesis`] or the older [`classic_genesis`].
pub fn is_built_in(g: &Genesis) -> bool {
    *g == genesis() || *g == classic_genesis()
}

#[cfg(test)]
mod tests {
    use super::*;
    use pp_ledger::ConsensusRules as _;

    #[test]
    fn the_built_in_genesis_is_valid_and_deterministic() {
        let g = genesis();
        g.validate().unwrap();
        assert_eq!(g, genesis());
        assert_eq!(g.initial_stakeholders.len(), 1);
        assert_eq!(
            g.initial_stakeholders[0].public_key,
            dev_key("alice").public()
        );
        for name in DEV_ACCOUNTS {
            assert!(g
                .initial_balances
                .iter()
                .any(|b| b.account == dev_key(name).public() && b.amount == DEV_BALANCE));
        }
    }

    /// The hash every machine computes. If this fails, the built-in devnet changed: every
    /// existing devnet data dir then belongs to another network (say so in the changelog).
    #[test]
    fn the_built_in_genesis_hash_is_pinned() {
        assert_eq!(
            genesis().hash().to_hex(),
            "a43e77d3f3f37a8227e59e31826128cb32b3cee4d440ead050e3ddb1fb77a5c1"
        );
        assert_eq!(genesis().leader_mode, LeaderMode::Praos);
        // The classic devnet of older ppd versions keeps its hash: its data dirs keep running.
        assert_eq!(
            classic_genesis().hash().to_hex(),
            "af3d7d149fb6ad3cbbd8500047d862afefcc44ee6aaca85bf9f1e95b00003b17"
        );
        classic_genesis().validate().unwrap();
        // Their genesis blocks (whose headers commit the genesis state root, header version 5).
        assert_eq!(
            genesis().block().hash().to_hex(),
            "feff06df6438c00d6d178aca786e07c18611e705ef4593d38b800e69391b5aa8"
        );
        assert_eq!(
            classic_genesis().block().hash().to_hex(),
            "3c8f3db8d1f7cc736996c57db607f02fd4889cdd7254f2a4fc29e0c10c5e7e10"
        );
        assert!(is_built_in(&genesis()) && is_built_in(&classic_genesis()));
        let mut other = genesis();
        other.epoch_nonce = Hash::ZERO;
        assert!(!is_built_in(&other));
    }

    #[test]
    fn dev_keys_are_the_documented_derivation() {
        let seed = Hash::blake2b_parts(&[b"pp-ledger/dev-key/v1", b"alice"]);
        assert_eq!(
            dev_key("alice").public(),
            KeyPair::from_seed(seed.0).public()
        );
        assert_ne!(dev_key("alice").public(), dev_key("bob").public());
    }

    /// A node started now leads soon: the epoch arithmetic from a genesis years in the past is
    /// cheap and stays within the epoch-gap bound for decades, and alice's development VRF key
    /// (the one a node named alice finds by itself) proves leadership of about half the slots.
    #[test]
    fn alice_leads_slots_far_past_genesis_and_the_gap_bound_holds_until_2044() {
        let g = genesis();
        let rules = pp_ouroboros::Ouroboros::new(&g).unwrap();
        let s0 = rules.genesis_state(&g);
        let alice = dev_key("alice").public();
        let stakes: pp_ledger::StakeMap = [(alice, DEV_STAKE)].into_iter().collect();
        let vrf = pp_server::praos::dev_vrf_key(DEV_PRODUCER);
        let vrf_keys: pp_ledger::VrfKeyMap =
            [(alice, pp_ledger::PublicKey(*vrf.public().as_bytes()))]
                .into_iter()
                .collect();
        // 2026-12-06 and 2044-06-01, in slots since genesis.
        for now_ms in [1_796_515_200_000u64, 2_348_352_000_000] {
            let first = (now_ms - DEVNET_GENESIS_TIME_MS) / 1_000;
            // 64 slots at the start of an epoch (the state is per epoch): with f = 1/2 she
            // leads none of them with probability 2^-64.
            let first = first - first % DEVNET_SLOTS_PER_EPOCH;
            let st = rules.state_for_slot_with_keys(&s0, first, &stakes, &vrf_keys);
            assert_eq!(st.epoch, first / DEVNET_SLOTS_PER_EPOCH);
            let led = (first..first + 64)
                .filter(|&slot| rules.prove_slot(&st, slot, &alice, &vrf).unwrap().is_some())
                .count();
            assert!((8..=56).contains(&led), "alice led {led} of 64 slots");
        }
    }
}
