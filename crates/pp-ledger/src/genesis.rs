//! The genesis: the parameters and initial state that define a network.
//!
//! The genesis hash (Blake2b-256 of the canonical encoding, see docs/consensus.md) identifies the
//! network: peers with another genesis hash are refused at the handshake, and every signature is
//! bound to it.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::block::{Block, BlockHeader, BLOCK_VERSION};
use crate::crypto::{PublicKey, Signature};
use crate::encoding::{Encode, Encoder};
use crate::hash::Hash;
use crate::tx::MAX_STAKEHOLDER_ID_LEN;

/// Largest genesis file accepted, in bytes.
pub const MAX_GENESIS_JSON_BYTES: usize = 4 * 1024 * 1024;
/// Most initial balances / stakeholders accepted.
pub const MAX_GENESIS_ENTRIES: usize = 100_000;

/// An initial balance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InitialBalance {
    /// The account.
    pub account: PublicKey,
    /// Its balance at genesis.
    pub amount: u64,
}

/// An initial stakeholder: a named key with stake.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InitialStakeholder {
    /// Human-readable id (the node id), unique.
    pub id: String,
    /// The stakeholder's key (its account).
    pub public_key: PublicKey,
    /// Stake at genesis; > 0.
    pub stake: u64,
    /// The stakeholder's VRF public key (RFC 9381 ECVRF-EDWARDS25519-SHA512, 32 bytes, hex):
    /// required in `praos` mode, absent in `classic` mode. The consensus rules check that it is
    /// a valid point (pp-ouroboros `VrfPublicKey::from_bytes`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vrf_key: Option<PublicKey>,
}

/// How slot leaders are elected (docs/leader-election.md).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LeaderMode {
    /// Ouroboros classic: one public leader per slot, follow-the-satoshi on the epoch nonce.
    #[default]
    Classic,
    /// Ouroboros Praos: private VRF leader election, zero, one or several leaders per slot.
    Praos,
}

impl LeaderMode {
    /// True for [`LeaderMode::Classic`] (the JSON default, left out when serializing).
    pub fn is_classic(&self) -> bool {
        *self == LeaderMode::Classic
    }
}

/// A rational `num / den`: the Praos active slot coefficient `f`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ratio {
    /// Numerator.
    pub num: u64,
    /// Denominator.
    pub den: u64,
}

/// The active slot coefficient of new praos devnets: `f = 1/2`. With 1 s slots on a LAN or
/// loopback (delivery well under a slot), half the slots have a leader, so blocks come about
/// every 2 s, and slots with several leaders are rare enough (a few percent of slots on a
/// 5-node devnet) that the fork they open is resolved by the next block. Cardano's `1/20` is for
/// a WAN with multi-second delays.
pub const DEVNET_ACTIVE_SLOT_COEFF: Ratio = Ratio { num: 1, den: 2 };

/// The genesis of a network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Genesis {
    /// Network name, e.g. `pp-devnet`.
    pub network: String,
    /// Start of slot 0, unix milliseconds.
    pub genesis_time: u64,
    /// Slot length in milliseconds.
    pub slot_duration_ms: u64,
    /// Slots per epoch.
    pub slots_per_epoch: u64,
    /// Proof-of-work difficulty (leading zero hex digits of block hashes).
    pub difficulty: u32,
    /// Maximum rollback depth: no fork switch may undo more than `k` blocks.
    pub k: u64,
    /// Maximum canonical size of a block, bytes.
    pub max_block_bytes: u64,
    /// Maximum transactions per block.
    pub max_block_txs: u32,
    /// Amount minted to the producer of each block (0 for none).
    #[serde(default)]
    pub block_reward: u64,
    /// How far in the future (ms) a block's slot may start and still be accepted.
    #[serde(default = "default_clock_skew_ms")]
    pub max_clock_skew_ms: u64,
    /// Initial balances.
    pub initial_balances: Vec<InitialBalance>,
    /// Initial stakeholders; their stake is the distribution for epochs 0 and 1.
    pub initial_stakeholders: Vec<InitialStakeholder>,
    /// η₀, the initial epoch nonce.
    pub epoch_nonce: Hash,
    /// `classic` (the default, also when the field is absent) or `praos`.
    #[serde(default, skip_serializing_if = "LeaderMode::is_classic")]
    pub leader_mode: LeaderMode,
    /// Praos' active slot coefficient `f`, `0 < f <= 9/10`: required in `praos` mode, absent
    /// in `classic` mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_slot_coeff: Option<Ratio>,
}

fn default_clock_skew_ms() -> u64 {
    2_000
}

/// A genesis field that breaks a rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GenesisError {
    /// The JSON could not be parsed.
    #[error("genesis JSON is invalid: {0}")]
    Json(String),
    /// The file is too large.
    #[error("genesis file is {size} bytes, more than the {max} allowed")]
    TooLarge {
        /// Size given.
        size: usize,
        /// Limit.
        max: usize,
    },
    /// A field has a value outside its allowed range.
    #[error("genesis field `{field}` is invalid: {reason}")]
    BadField {
        /// Field name.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The same stakeholder id or key appears twice.
    #[error("genesis stakeholder {0} appears more than once")]
    DuplicateStakeholder(String),
    /// The same account has two initial balances.
    #[error("genesis account {0} has more than one initial balance")]
    DuplicateAccount(PublicKey),
    /// Sum of balances and stakes overflows u64.
    #[error("genesis total supply overflows u64")]
    SupplyOverflow,
}

/// True iff `id` is a valid stakeholder id: 1..=32 bytes of `[A-Za-z0-9._-]`.
pub fn is_valid_stakeholder_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_STAKEHOLDER_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

fn bad(field: &'static str, reason: impl Into<String>) -> GenesisError {
    GenesisError::BadField {
        field,
        reason: reason.into(),
    }
}

impl Genesis {
    /// Parses and validates a genesis from JSON bytes.
    pub fn from_json(bytes: &[u8]) -> Result<Genesis, GenesisError> {
        if bytes.len() > MAX_GENESIS_JSON_BYTES {
            return Err(GenesisError::TooLarge {
                size: bytes.len(),
                max: MAX_GENESIS_JSON_BYTES,
            });
        }
        let g: Genesis =
            serde_json::from_slice(bytes).map_err(|e| GenesisError::Json(e.to_string()))?;
        g.validate()?;
        Ok(g)
    }

    /// Pretty JSON, as written to `genesis.json`.
    pub fn to_json_pretty(&self) -> String {
        // Serializing plain structs with string keys cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Checks every field; the error names the first broken rule.
    pub fn validate(&self) -> Result<(), GenesisError> {
        if self.network.is_empty() || self.network.len() > 64 || !self.network.is_ascii() {
            return Err(bad("network", "must be 1..=64 ASCII characters"));
        }
        if !(10..=3_600_000).contains(&self.slot_duration_ms) {
            return Err(bad("slot_duration_ms", "must be between 10 and 3600000"));
        }
        if !(1..=1_000_000).contains(&self.slots_per_epoch) {
            return Err(bad("slots_per_epoch", "must be between 1 and 1000000"));
        }
        if self.difficulty > 16 {
            return Err(bad("difficulty", "must be at most 16 hex digits"));
        }
        if !(1..=100_000).contains(&self.k) {
            return Err(bad("k", "must be between 1 and 100000"));
        }
        if !(1024..=64 * 1024 * 1024).contains(&self.max_block_bytes) {
            return Err(bad("max_block_bytes", "must be between 1 KiB and 64 MiB"));
        }
        if !(1..=100_000).contains(&self.max_block_txs) {
            return Err(bad("max_block_txs", "must be between 1 and 100000"));
        }
        if self.max_clock_skew_ms > 600_000 {
            return Err(bad("max_clock_skew_ms", "must be at most 600000"));
        }
        if self.genesis_time > 1 << 53 {
            return Err(bad("genesis_time", "must be unix milliseconds below 2^53"));
        }
        if self.initial_balances.len() > MAX_GENESIS_ENTRIES {
            return Err(bad("initial_balances", "too many entries"));
        }
        if self.initial_stakeholders.is_empty() {
            return Err(bad(
                "initial_stakeholders",
                "at least one stakeholder is required",
            ));
        }
        if self.initial_stakeholders.len() > MAX_GENESIS_ENTRIES {
            return Err(bad("initial_stakeholders", "too many entries"));
        }
        let mut accounts = BTreeSet::new();
        let mut supply: u64 = 0;
        for b in &self.initial_balances {
            if !accounts.insert(b.account) {
                return Err(GenesisError::DuplicateAccount(b.account));
            }
            supply = supply
                .checked_add(b.amount)
                .ok_or(GenesisError::SupplyOverflow)?;
        }
        let mut ids = BTreeSet::new();
        let mut keys = BTreeSet::new();
        for s in &self.initial_stakeholders {
            if !is_valid_stakeholder_id(&s.id) {
                return Err(bad(
                    "initial_stakeholders.id",
                    format!("{:?} must be 1..=32 characters of [A-Za-z0-9._-]", s.id),
                ));
            }
            if s.stake == 0 {
                return Err(bad(
                    "initial_stakeholders.stake",
                    format!("stakeholder {} has zero stake", s.id),
                ));
            }
            if !ids.insert(s.id.clone()) || !keys.insert(s.public_key) {
                return Err(GenesisError::DuplicateStakeholder(s.id.clone()));
            }
            supply = supply
                .checked_add(s.stake)
                .ok_or(GenesisError::SupplyOverflow)?;
        }
        self.validate_leader_mode()
    }

    /// The praos fields are present exactly in praos mode: `f` admissible, one distinct VRF key
    /// per stakeholder.
    fn validate_leader_mode(&self) -> Result<(), GenesisError> {
        match self.leader_mode {
            LeaderMode::Classic => {
                if self.active_slot_coeff.is_some() {
                    return Err(bad("active_slot_coeff", "only allowed in praos mode"));
                }
                if self
                    .initial_stakeholders
                    .iter()
                    .any(|s| s.vrf_key.is_some())
                {
                    return Err(bad(
                        "initial_stakeholders.vrf_key",
                        "only allowed in praos mode",
                    ));
                }
            }
            LeaderMode::Praos => {
                let Some(f) = self.active_slot_coeff else {
                    return Err(bad("active_slot_coeff", "required in praos mode"));
                };
                // 0 < num/den <= 9/10, cross-multiplied (exact in u128; refuses den = 0).
                let admissible = f.num > 0 && u128::from(f.num) * 10 <= u128::from(f.den) * 9;
                if !admissible {
                    return Err(bad("active_slot_coeff", "must be a fraction in (0, 9/10]"));
                }
                let mut vrf_keys = BTreeSet::new();
                for s in &self.initial_stakeholders {
                    let Some(key) = s.vrf_key else {
                        return Err(bad(
                            "initial_stakeholders.vrf_key",
                            format!("stakeholder {} has no VRF key (praos mode)", s.id),
                        ));
                    };
                    if !vrf_keys.insert(key) {
                        return Err(bad(
                            "initial_stakeholders.vrf_key",
                            format!("stakeholder {} repeats another's VRF key", s.id),
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// The header version of this network's blocks: [`BLOCK_VERSION`] in classic mode,
    /// [`crate::block::PRAOS_BLOCK_VERSION`] in praos mode.
    pub fn block_version(&self) -> u32 {
        match self.leader_mode {
            LeaderMode::Classic => BLOCK_VERSION,
            LeaderMode::Praos => crate::block::PRAOS_BLOCK_VERSION,
        }
    }

    /// The canonical size of this network's headers.
    pub fn header_len(&self) -> usize {
        match self.leader_mode {
            LeaderMode::Classic => crate::block::HEADER_LEN,
            LeaderMode::Praos => crate::block::PRAOS_HEADER_LEN,
        }
    }

    /// Switches this genesis to praos mode with active slot coefficient `f`, registering
    /// `vrf_keys[i]` for the i-th stakeholder (keys beyond the stakeholders are ignored; a
    /// missing one fails [`Genesis::validate`]).
    pub fn into_praos(mut self, f: Ratio, vrf_keys: &[PublicKey]) -> Genesis {
        self.leader_mode = LeaderMode::Praos;
        self.active_slot_coeff = Some(f);
        for (s, k) in self.initial_stakeholders.iter_mut().zip(vrf_keys) {
            s.vrf_key = Some(*k);
        }
        self
    }

    /// Sum of initial balances and stakes (validated not to overflow; saturates otherwise).
    pub fn initial_supply(&self) -> u64 {
        let b = self.initial_balances.iter().map(|b| b.amount);
        let s = self.initial_stakeholders.iter().map(|s| s.stake);
        b.chain(s).fold(0u64, u64::saturating_add)
    }

    /// The genesis hash: Blake2b-256 of the canonical encoding.
    pub fn hash(&self) -> Hash {
        Hash::blake2b(&self.to_canonical_bytes())
    }

    /// The block at index 0: not produced by anyone, derived from the genesis so that every node
    /// holds the same one. Its `prev_hash` is the genesis hash, which chains every block to the
    /// network definition; its `state_root` is the root of the state after it (the genesis
    /// balances, stakes, ids and VRF keys: version 0 of the state tree).
    pub fn block(&self) -> Block {
        Block {
            header: BlockHeader {
                version: BLOCK_VERSION,
                index: 0,
                slot: 0,
                prev_hash: self.hash(),
                tx_root: Hash::ZERO,
                state_root: crate::state_tree::state_root(
                    &crate::state::LedgerState::from_genesis(self),
                ),
                producer: PublicKey::default(),
                timestamp: self.genesis_time,
                difficulty: 0,
                vrf: None,
                ocert: None,
                nonce: 0,
            },
            signature: Signature::default(),
            transactions: Vec::new(),
        }
    }

    /// A single-stakeholder development network: `producer` holds all the stake and a large
    /// balance. Slot 1 s, 60 slots per epoch, difficulty 2, k = 100, blocks of at most 2 MiB and
    /// 5 000 transactions, reward 50. Classic leader election: a praos genesis (the default of
    /// the networks `ppd` creates) needs a VRF key per stakeholder, which this building block
    /// does not take; [`Genesis::into_praos`] switches it.
    pub fn devnet(stakeholder_id: &str, producer: PublicKey, genesis_time: u64) -> Genesis {
        Genesis {
            network: "pp-devnet".into(),
            genesis_time,
            slot_duration_ms: 1000,
            slots_per_epoch: 60,
            difficulty: 2,
            k: 100,
            max_block_bytes: 2 * 1024 * 1024,
            max_block_txs: 5_000,
            block_reward: 50,
            max_clock_skew_ms: default_clock_skew_ms(),
            initial_balances: vec![InitialBalance {
                account: producer,
                amount: 1_000_000_000,
            }],
            initial_stakeholders: vec![InitialStakeholder {
                id: stakeholder_id.into(),
                public_key: producer,
                stake: 1_000,
                vrf_key: None,
            }],
            epoch_nonce: Hash::blake2b(b"pp-devnet epoch nonce 0"),
            leader_mode: LeaderMode::Classic,
            active_slot_coeff: None,
        }
    }
}

impl Encode for Genesis {
    fn encode(&self, e: &mut Encoder) {
        e.str(&self.network)
            .u64(self.genesis_time)
            .u64(self.slot_duration_ms)
            .u64(self.slots_per_epoch)
            .u32(self.difficulty)
            .u64(self.k)
            .u64(self.max_block_bytes)
            .u32(self.max_block_txs)
            .u64(self.block_reward)
            .u64(self.max_clock_skew_ms);
        e.u32(self.initial_balances.len() as u32);
        for b in &self.initial_balances {
            e.key(&b.account).u64(b.amount);
        }
        e.u32(self.initial_stakeholders.len() as u32);
        for s in &self.initial_stakeholders {
            e.str(&s.id).key(&s.public_key).u64(s.stake);
        }
        e.hash(&self.epoch_nonce);
        // Classic mode adds nothing, so every classic genesis keeps its hash. Praos mode
        // appends the mode byte 1, f and the stakeholders' VRF keys in stakeholder order.
        if self.leader_mode == LeaderMode::Praos {
            let f = self.active_slot_coeff.unwrap_or(Ratio { num: 0, den: 0 });
            e.u8(1).u64(f.num).u64(f.den);
            for s in &self.initial_stakeholders {
                e.key(&s.vrf_key.unwrap_or_default());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g() -> Genesis {
        Genesis::devnet("node0", PublicKey([4u8; 32]), 1_700_000_000_000)
    }

    #[test]
    fn devnet_is_valid_and_round_trips_through_json() {
        let g = g();
        g.validate().unwrap();
        let back = Genesis::from_json(g.to_json_pretty().as_bytes()).unwrap();
        assert_eq!(back, g);
        assert_eq!(back.hash(), g.hash());
        assert_eq!(g.initial_supply(), 1_000_001_000);
    }

    #[test]
    fn every_bad_field_is_named() {
        type Case = (fn(&mut Genesis), &'static str);
        let cases: Vec<Case> = vec![
            (|g| g.slot_duration_ms = 0, "slot_duration_ms"),
            (|g| g.slots_per_epoch = 0, "slots_per_epoch"),
            (|g| g.k = 0, "k"),
            (|g| g.difficulty = 65, "difficulty"),
            (|g| g.max_block_txs = 0, "max_block_txs"),
            (|g| g.initial_stakeholders.clear(), "initial_stakeholders"),
            (
                |g| g.initial_stakeholders[0].stake = 0,
                "initial_stakeholders.stake",
            ),
            (
                |g| g.initial_stakeholders[0].id = "bad id!".into(),
                "initial_stakeholders.id",
            ),
            (|g| g.network.clear(), "network"),
        ];
        for (f, field) in cases {
            let mut x = g();
            f(&mut x);
            match x.validate() {
                Err(GenesisError::BadField { field: got, .. }) => assert_eq!(got, field),
                other => panic!("{field}: {other:?}"),
            }
        }
    }

    #[test]
    fn unknown_fields_and_garbage_are_rejected() {
        assert!(matches!(
            Genesis::from_json(b"{"),
            Err(GenesisError::Json(_))
        ));
        let mut v = serde_json::to_value(g()).unwrap();
        v["surprise"] = 1.into();
        assert!(matches!(
            Genesis::from_json(v.to_string().as_bytes()),
            Err(GenesisError::Json(_))
        ));
    }

    fn praos() -> Genesis {
        g().into_praos(DEVNET_ACTIVE_SLOT_COEFF, &[PublicKey([9u8; 32])])
    }

    #[test]
    fn praos_fields_are_required_in_praos_mode_and_refused_in_classic_mode() {
        praos().validate().unwrap();
        let back = Genesis::from_json(praos().to_json_pretty().as_bytes()).unwrap();
        assert_eq!(back, praos());
        assert_eq!(praos().block_version(), crate::block::PRAOS_BLOCK_VERSION);
        assert_eq!(g().block_version(), BLOCK_VERSION);
        type Case = (fn(&mut Genesis), &'static str);
        let cases: Vec<Case> = vec![
            (|g| g.active_slot_coeff = None, "active_slot_coeff"),
            (
                |g| g.active_slot_coeff = Some(Ratio { num: 0, den: 2 }),
                "active_slot_coeff",
            ),
            (
                |g| g.active_slot_coeff = Some(Ratio { num: 1, den: 0 }),
                "active_slot_coeff",
            ),
            (
                |g| g.active_slot_coeff = Some(Ratio { num: 10, den: 11 }),
                "active_slot_coeff",
            ),
            (
                |g| g.initial_stakeholders[0].vrf_key = None,
                "initial_stakeholders.vrf_key",
            ),
            (
                |g| {
                    g.leader_mode = LeaderMode::Classic;
                    g.initial_stakeholders[0].vrf_key = None;
                },
                "active_slot_coeff",
            ),
            (
                |g| {
                    g.leader_mode = LeaderMode::Classic;
                    g.active_slot_coeff = None;
                },
                "initial_stakeholders.vrf_key",
            ),
        ];
        for (f, field) in cases {
            let mut x = praos();
            f(&mut x);
            match x.validate() {
                Err(GenesisError::BadField { field: got, .. }) => assert_eq!(got, field),
                other => panic!("{field}: {other:?}"),
            }
        }
        // Two stakeholders may not share a VRF key.
        let mut two = praos();
        two.initial_stakeholders.push(InitialStakeholder {
            id: "other".into(),
            public_key: PublicKey([5u8; 32]),
            stake: 1,
            vrf_key: Some(PublicKey([9u8; 32])),
        });
        assert!(matches!(
            two.validate(),
            Err(GenesisError::BadField {
                field: "initial_stakeholders.vrf_key",
                ..
            })
        ));
    }

    #[test]
    fn praos_mode_changes_the_hash_and_classic_json_has_no_praos_fields() {
        assert_ne!(praos().hash(), g().hash());
        let mut other_f = praos();
        other_f.active_slot_coeff = Some(Ratio { num: 1, den: 3 });
        assert_ne!(other_f.hash(), praos().hash());
        let json = g().to_json_pretty();
        assert!(!json.contains("leader_mode") && !json.contains("vrf_key"));
    }

    #[test]
    fn hash_changes_with_any_parameter() {
        let a = g();
        let mut b = g();
        b.k += 1;
        assert_ne!(a.hash(), b.hash());
        assert_eq!(a.block().header.prev_hash, a.hash());
    }
}
