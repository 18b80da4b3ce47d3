//! The ledger state: balances, nonces, stakes and stakeholder ids, and the rules that change them
//! (DESIGN §5, docs/consensus.md "Ledger rules").
//!
//! Every change goes through a journal of previous values, which serves two purposes: a block
//! that fails half-way is undone exactly (blocks apply all or nothing), and the journal of an
//! accepted block is its [`BlockUndo`], which [`LedgerState::rollback`] replays backwards for fork
//! switches. Undo data is proportional to the block, not to the state.

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::block::Block;
use crate::consensus::{StakeMap, VrfKeyMap};
use crate::crypto::PublicKey;
use crate::error::{BlockError, TxError};
use crate::genesis::{is_valid_stakeholder_id, Genesis};
use crate::hash::Hash;
use crate::sigcache::SignatureCache;
use crate::tx::{Transaction, TxKind};
use crate::verified::{VerifiedBlock, VerifiedTx};

/// Balances, next nonces, stakes and stakeholder id bindings after some block.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LedgerState {
    balances: BTreeMap<PublicKey, u64>,
    nonces: BTreeMap<PublicKey, u64>,
    stakes: StakeMap,
    id_of_key: BTreeMap<PublicKey, String>,
    key_of_id: BTreeMap<String, PublicKey>,
    /// Praos: each bound stakeholder's VRF public key, bound with its id (genesis or first
    /// bond) and never changed; and the reverse, which keeps a VRF key to one stakeholder.
    vrf_of_key: VrfKeyMap,
    key_of_vrf: BTreeMap<PublicKey, PublicKey>,
    /// Whether the network elects leaders by praos (every bond carries a VRF key) or classic
    /// (no bond carries one), from the genesis.
    praos: bool,
    minted: u128,
}

/// One previous value, recorded before it was overwritten (the journal of a block being
/// applied, from which a failed block is undone exactly).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Change {
    Balance(PublicKey, Option<u64>),
    Nonce(PublicKey, Option<u64>),
    Stake(PublicKey, Option<u64>),
    /// The key was bound to an id by this change (undo: unbind both directions).
    Bound(PublicKey),
    Minted(u128),
}

/// The map of the state a [`Prior`] value belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
enum Field {
    Balance,
    Nonce,
    Stake,
}

/// The value one key held in one map at some point (absent if `present` is false): 48 bytes,
/// where a journal [`Change`] takes 64.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Prior {
    key: PublicKey,
    value: u64,
    field: Field,
    present: bool,
}

impl Prior {
    fn new(field: Field, key: PublicKey, value: Option<u64>) -> Prior {
        Prior {
            key,
            value: value.unwrap_or(0),
            field,
            present: value.is_some(),
        }
    }
}

/// What [`LedgerState::rollback`] needs to undo one block exactly: the value each key the block
/// changed held before it (once per key and map, however many of the block's transactions
/// touched it), the stakeholder ids it bound, and the minted total before it. Its size follows
/// the number of distinct accounts the block touched, not its number of writes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockUndo {
    block_hash: Hash,
    prior: Vec<Prior>,
    bound: Vec<PublicKey>,
    minted: u128,
}

impl BlockUndo {
    /// Hash of the block this undoes.
    pub fn block_hash(&self) -> Hash {
        self.block_hash
    }

    /// Number of (account, map) values recorded (each account a block touched counts once per
    /// map it changed: balance, nonce, stake).
    pub fn len(&self) -> usize {
        self.prior.len()
    }

    /// True iff the block changed no balance, nonce or stake.
    pub fn is_empty(&self) -> bool {
        self.prior.is_empty()
    }

    /// The accounts the block changed (a balance, nonce or stake, or an id it bound), sorted,
    /// each once: the leaves of the state tree the block can have changed.
    pub fn accounts(&self) -> Vec<PublicKey> {
        let mut a: Vec<PublicKey> = self
            .prior
            .iter()
            .map(|p| p.key)
            .chain(self.bound.iter().copied())
            .collect();
        a.sort_unstable();
        a.dedup();
        a
    }

    /// True iff the block changed a bonded stake (so the state tree's total-stake leaf may
    /// have changed).
    pub fn changes_stake(&self) -> bool {
        self.prior.iter().any(|p| p.field == Field::Stake)
    }
}

/// What re-applies a block that was rolled back, without its transactions: the values the keys
/// of its [`BlockUndo`] held after it (taken by [`LedgerState::redo_of`] just before the
/// rollback), the ids it bound and the minted total after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BlockRedo {
    after: Vec<Prior>,
    bound: Vec<(PublicKey, String, Option<PublicKey>)>,
    minted: u128,
}

/// The values a valid transaction leaves, computed before anything is written.
struct Plan {
    sender_balance: u64,
    sender_nonce: u64,
    credit: Option<PublicKey>,
    new_stake: Option<u64>,
    /// The id (and, praos, the VRF key) a first bond binds to the sender.
    bind: Option<(String, Option<PublicKey>)>,
}

impl LedgerState {
    /// The state after the genesis block: initial balances, stakes and stakeholder ids.
    /// Expects a validated genesis; duplicate entries (which validation rejects) are summed with
    /// saturation rather than panicking.
    pub fn from_genesis(genesis: &Genesis) -> LedgerState {
        let mut s = LedgerState {
            praos: genesis.leader_mode == crate::genesis::LeaderMode::Praos,
            ..LedgerState::default()
        };
        for b in &genesis.initial_balances {
            let e = s.balances.entry(b.account).or_insert(0);
            *e = e.saturating_add(b.amount);
        }
        for h in &genesis.initial_stakeholders {
            if h.stake > 0 {
                let e = s.stakes.entry(h.public_key).or_insert(0);
                *e = e.saturating_add(h.stake);
            }
            if !s.key_of_id.contains_key(&h.id) && !s.id_of_key.contains_key(&h.public_key) {
                let vrf = h
                    .vrf_key
                    .filter(|v| s.praos && !s.key_of_vrf.contains_key(v));
                s.bind(h.public_key, h.id.clone(), vrf);
            }
        }
        s
    }

    /// Spendable balance of `account` (0 if unknown).
    pub fn balance(&self, account: &PublicKey) -> u64 {
        self.balances.get(account).copied().unwrap_or(0)
    }

    /// The next nonce `account` must use (0 for an account that never sent).
    pub fn nonce(&self, account: &PublicKey) -> u64 {
        self.nonces.get(account).copied().unwrap_or(0)
    }

    /// Bonded stake of `account` (0 if none).
    pub fn stake(&self, account: &PublicKey) -> u64 {
        self.stakes.get(account).copied().unwrap_or(0)
    }

    /// All non-zero stakes, in key order (what leader election is computed from).
    pub fn stakes(&self) -> &StakeMap {
        &self.stakes
    }

    /// The stakeholder id bound to `account`, if any.
    pub fn stakeholder_id(&self, account: &PublicKey) -> Option<&str> {
        self.id_of_key.get(account).map(String::as_str)
    }

    /// The key a stakeholder id is bound to, if any.
    pub fn stakeholder_key(&self, id: &str) -> Option<PublicKey> {
        self.key_of_id.get(id).copied()
    }

    /// Praos: the VRF public key registered for stakeholder `account` (genesis or first bond).
    pub fn vrf_key(&self, account: &PublicKey) -> Option<PublicKey> {
        self.vrf_of_key.get(account).copied()
    }

    /// The sum of every bonded stake: `T` of docs/leader-election.md §4 (u128: a sum of u64
    /// stakes), the value of the state tree's total-stake leaf.
    pub fn total_stake(&self) -> u128 {
        self.stakes.values().map(|&s| u128::from(s)).sum()
    }

    /// Praos: every registered VRF key by stakeholder (what the epoch snapshots take).
    pub fn vrf_keys(&self) -> &VrfKeyMap {
        &self.vrf_of_key
    }

    /// Binds `id` (and `vrf`, if any) to `key`; the caller checked that all three are free.
    fn bind(&mut self, key: PublicKey, id: String, vrf: Option<PublicKey>) {
        self.key_of_id.insert(id.clone(), key);
        self.id_of_key.insert(key, id);
        if let Some(v) = vrf {
            self.vrf_of_key.insert(key, v);
            self.key_of_vrf.insert(v, key);
        }
    }

    /// Undoes [`LedgerState::bind`] of `key`.
    fn unbind(&mut self, key: &PublicKey) {
        if let Some(id) = self.id_of_key.remove(key) {
            self.key_of_id.remove(&id);
        }
        if let Some(v) = self.vrf_of_key.remove(key) {
            self.key_of_vrf.remove(&v);
        }
    }

    /// True iff `account` has a balance, nonce or stake entry (genesis accounts included, and
    /// accounts whose balance was spent down to zero).
    pub fn account_exists(&self, account: &PublicKey) -> bool {
        self.balances.contains_key(account)
            || self.nonces.contains_key(account)
            || self.stakes.contains_key(account)
    }

    /// Every account the state has an entry for (a balance, nonce or stake, or a bound id),
    /// sorted, each once: the accounts with a leaf in the state tree.
    pub fn accounts(&self) -> Vec<PublicKey> {
        let mut a: Vec<PublicKey> = self
            .balances
            .keys()
            .chain(self.nonces.keys())
            .chain(self.stakes.keys())
            .chain(self.id_of_key.keys())
            .copied()
            .collect();
        a.sort_unstable();
        a.dedup();
        a
    }

    /// Number of accounts with a balance entry.
    pub fn account_count(&self) -> usize {
        self.balances.len()
    }

    /// Sum of all balances and stakes. Equals the genesis supply plus [`LedgerState::minted`].
    pub fn total_supply(&self) -> u128 {
        let b: u128 = self.balances.values().map(|&v| u128::from(v)).sum();
        let s: u128 = self.stakes.values().map(|&v| u128::from(v)).sum();
        b + s
    }

    /// Total block rewards minted since genesis.
    pub fn minted(&self) -> u128 {
        self.minted
    }

    /// Checks that `tx` would apply now, changing nothing (the mempool's admission test).
    pub fn check_tx(&self, tx: &Transaction, genesis_hash: &Hash) -> Result<(), TxError> {
        Self::plan(self, tx, genesis_hash, Sigs::Verify).map(|_| ())
    }

    /// [`LedgerState::check_tx`], with the signature checked through `cache` (a hit costs no
    /// verification; a verified signature is remembered).
    pub fn check_tx_cached(
        &self,
        tx: &Transaction,
        genesis_hash: &Hash,
        cache: &SignatureCache,
    ) -> Result<(), TxError> {
        Self::plan(self, tx, genesis_hash, Sigs::Cached(cache)).map(|_| ())
    }

    /// [`LedgerState::check_tx`] for a transaction whose signature is already verified: the
    /// stateful rules only.
    pub fn check_verified_tx(&self, tx: &VerifiedTx) -> Result<(), TxError> {
        // The genesis hash only matters to the signature, which is not checked again.
        Self::plan(self, tx.tx(), &Hash::ZERO, Sigs::Verified).map(|_| ())
    }

    /// Applies `tx` and credits its fee to `fee_to` (the block producer). On error nothing
    /// changes.
    pub fn apply_tx(
        &mut self,
        tx: &Transaction,
        genesis_hash: &Hash,
        fee_to: &PublicKey,
    ) -> Result<(), TxError> {
        let mut journal = Vec::new();
        let r = self.apply_tx_journaled(tx, genesis_hash, Some(fee_to), Sigs::Verify, &mut journal);
        if r.is_err() {
            self.undo(journal);
        }
        r
    }

    /// Applies `tx` without crediting the fee anywhere (used to select transactions for a block
    /// whose producer is not known yet). On error nothing changes.
    pub(crate) fn apply_tx_without_fee(
        &mut self,
        tx: &Transaction,
        genesis_hash: &Hash,
        sigs: Sigs<'_>,
    ) -> Result<(), TxError> {
        let mut journal = Vec::new();
        let r = self.apply_tx_journaled(tx, genesis_hash, None, sigs, &mut journal);
        if r.is_err() {
            self.undo(journal);
        }
        r
    }

    /// Applies every transaction of `block` in order (fees to the producer as each applies),
    /// then mints `block_reward` to the producer. All or nothing: on error the state is exactly
    /// as before. Header rules (leader, PoW, limits...) are the chain's business, not checked
    /// here.
    pub fn apply_block(
        &mut self,
        block: &Block,
        genesis_hash: &Hash,
        block_reward: u64,
    ) -> Result<BlockUndo, BlockError> {
        self.apply_block_with(
            block,
            &block.hash(),
            genesis_hash,
            block_reward,
            Sigs::Verify,
        )
    }

    /// [`LedgerState::apply_block`] for a block whose signatures were all verified by the
    /// stateless stage: the stateful rules only.
    pub fn apply_verified_block(
        &mut self,
        block: &VerifiedBlock,
        block_reward: u64,
    ) -> Result<BlockUndo, BlockError> {
        self.apply_block_with(
            block.block(),
            &block.hash(),
            &block.genesis_hash(),
            block_reward,
            Sigs::Verified,
        )
    }

    pub(crate) fn apply_block_with(
        &mut self,
        block: &Block,
        block_hash: &Hash,
        genesis_hash: &Hash,
        block_reward: u64,
        sigs: Sigs<'_>,
    ) -> Result<BlockUndo, BlockError> {
        let producer = block.header.producer;
        let minted_before = self.minted;
        let mut journal = Vec::with_capacity(block.transactions.len() * 4 + 2);
        for (index, tx) in block.transactions.iter().enumerate() {
            if let Err(error) =
                self.apply_tx_journaled(tx, genesis_hash, Some(&producer), sigs, &mut journal)
            {
                self.undo(journal);
                return Err(BlockError::Tx {
                    index,
                    id: tx.id(),
                    error,
                });
            }
        }
        if block_reward > 0 {
            let Some(new) = self.balance(&producer).checked_add(block_reward) else {
                self.undo(journal);
                return Err(BlockError::RewardOverflow { producer });
            };
            self.set_balance(producer, new, &mut journal);
            journal.push(Change::Minted(self.minted));
            self.minted += u128::from(block_reward);
        }
        Ok(compact(*block_hash, journal, minted_before))
    }

    /// Undoes the block `undo` was returned for. It must be the last block applied (undo blocks
    /// in reverse order); the state is then equal to the state before that block.
    pub fn rollback(&mut self, undo: BlockUndo) {
        self.rollback_ref(&undo);
    }

    /// [`LedgerState::rollback`] without consuming `undo`.
    pub(crate) fn rollback_ref(&mut self, undo: &BlockUndo) {
        self.write(&undo.prior);
        for k in &undo.bound {
            self.unbind(k);
        }
        self.minted = undo.minted;
    }

    /// The values the keys of `undo` hold now: taken on the state right after the block `undo`
    /// belongs to, [`LedgerState::redo`] of it re-applies that block after its rollback.
    pub(crate) fn redo_of(&self, undo: &BlockUndo) -> BlockRedo {
        let after = undo
            .prior
            .iter()
            .map(|p| {
                let map = match p.field {
                    Field::Balance => &self.balances,
                    Field::Nonce => &self.nonces,
                    Field::Stake => &self.stakes,
                };
                Prior::new(p.field, p.key, map.get(&p.key).copied())
            })
            .collect();
        let bound = undo
            .bound
            .iter()
            .filter_map(|k| {
                self.id_of_key
                    .get(k)
                    .map(|id| (*k, id.clone(), self.vrf_key(k)))
            })
            .collect();
        BlockRedo {
            after,
            bound,
            minted: self.minted,
        }
    }

    /// Re-applies a rolled-back block from what [`LedgerState::redo_of`] took before the
    /// rollback. The state must be the one the rollback left.
    pub(crate) fn redo(&mut self, redo: &BlockRedo) {
        self.write(&redo.after);
        for (k, id, vrf) in &redo.bound {
            self.bind(*k, id.clone(), *vrf);
        }
        self.minted = redo.minted;
    }

    fn write(&mut self, values: &[Prior]) {
        for p in values {
            let map = match p.field {
                Field::Balance => &mut self.balances,
                Field::Nonce => &mut self.nonces,
                Field::Stake => &mut self.stakes,
            };
            restore(map, p.key, p.present.then_some(p.value));
        }
    }

    fn undo(&mut self, journal: Vec<Change>) {
        for c in journal.into_iter().rev() {
            match c {
                Change::Balance(k, v) => restore(&mut self.balances, k, v),
                Change::Nonce(k, v) => restore(&mut self.nonces, k, v),
                Change::Stake(k, v) => restore(&mut self.stakes, k, v),
                Change::Bound(k) => self.unbind(&k),
                Change::Minted(m) => self.minted = m,
            }
        }
    }

    fn set_balance(&mut self, k: PublicKey, v: u64, j: &mut Vec<Change>) {
        j.push(Change::Balance(k, self.balances.insert(k, v)));
    }

    /// Validates `tx` against `acc` (this state, or a view of it) and computes what it leaves:
    /// every transaction rule in one place. Cheap stateless checks first, the signature (the
    /// expensive part) last.
    fn plan<A: Accounts + ?Sized>(
        acc: &A,
        tx: &Transaction,
        genesis_hash: &Hash,
        sigs: Sigs<'_>,
    ) -> Result<Plan, TxError> {
        let b = &tx.body;
        let from = b.from;
        if b.amount == 0 {
            return Err(TxError::ZeroAmount);
        }
        let expected = acc.nonce(&from);
        if b.nonce != expected {
            return Err(TxError::BadNonce {
                account: from,
                expected,
                got: b.nonce,
            });
        }
        let sender_nonce = expected.checked_add(1).ok_or(TxError::Overflow {
            account: from,
            what: "nonce",
        })?;
        let available = acc.balance(&from);
        // An unbond pays only its fee from the balance; the amount comes out of the stake.
        let debit = match b.kind {
            TxKind::Unbond => b.fee,
            _ => b.total_debit().ok_or(TxError::Overflow {
                account: from,
                what: "amount + fee",
            })?,
        };
        let Some(mut sender_balance) = available.checked_sub(debit) else {
            return Err(TxError::InsufficientBalance {
                account: from,
                needed: debit,
                available,
            });
        };
        let mut plan = Plan {
            sender_balance,
            sender_nonce,
            credit: None,
            new_stake: None,
            bind: None,
        };
        match &b.kind {
            TxKind::Transfer { to } => {
                // A transfer to oneself credits the already-debited balance.
                let before = if *to == from {
                    sender_balance
                } else {
                    acc.balance(to)
                };
                before.checked_add(b.amount).ok_or(TxError::Overflow {
                    account: *to,
                    what: "balance",
                })?;
                plan.credit = Some(*to);
            }
            TxKind::Bond {
                stakeholder_id,
                vrf_key,
            } => {
                if !is_valid_stakeholder_id(stakeholder_id) {
                    return Err(TxError::BadStakeholderId {
                        id: stakeholder_id.clone(),
                    });
                }
                check_bond_vrf_key(acc, &from, *vrf_key)?;
                match acc.stakeholder_id(&from) {
                    Some(bound) if bound != stakeholder_id.as_str() => {
                        return Err(TxError::StakeholderIdMismatch {
                            account: from,
                            bound: bound.to_string(),
                            got: stakeholder_id.clone(),
                        })
                    }
                    Some(_) => {}
                    None => {
                        if let Some(owner) = acc.stakeholder_key(stakeholder_id) {
                            return Err(TxError::StakeholderIdTaken {
                                id: stakeholder_id.clone(),
                                owner,
                            });
                        }
                        plan.bind = Some((stakeholder_id.clone(), *vrf_key));
                    }
                }
                plan.new_stake = Some(acc.stake(&from).checked_add(b.amount).ok_or(
                    TxError::Overflow {
                        account: from,
                        what: "stake",
                    },
                )?);
            }
            TxKind::Unbond => {
                let stake = acc.stake(&from);
                let Some(left) = stake.checked_sub(b.amount) else {
                    return Err(TxError::InsufficientStake {
                        account: from,
                        needed: b.amount,
                        available: stake,
                    });
                };
                sender_balance = sender_balance
                    .checked_add(b.amount)
                    .ok_or(TxError::Overflow {
                        account: from,
                        what: "balance",
                    })?;
                plan.sender_balance = sender_balance;
                plan.new_stake = Some(left);
            }
        }
        match sigs {
            Sigs::Verify => tx.verify_signature(genesis_hash),
            Sigs::Cached(cache) => cache.verify_tx(tx, &tx.id(), genesis_hash),
            Sigs::Verified => Ok(()),
        }
        .map_err(TxError::BadSignature)?;
        Ok(plan)
    }

    fn apply_tx_journaled(
        &mut self,
        tx: &Transaction,
        genesis_hash: &Hash,
        fee_to: Option<&PublicKey>,
        sigs: Sigs<'_>,
        j: &mut Vec<Change>,
    ) -> Result<(), TxError> {
        let plan = Self::plan(self, tx, genesis_hash, sigs)?;
        let from = tx.body.from;
        self.set_balance(from, plan.sender_balance, j);
        j.push(Change::Nonce(
            from,
            self.nonces.insert(from, plan.sender_nonce),
        ));
        if let Some(to) = plan.credit {
            // Checked in `plan`; re-checked here because it reads the post-debit balance.
            let new = self
                .balance(&to)
                .checked_add(tx.body.amount)
                .ok_or(TxError::Overflow {
                    account: to,
                    what: "balance",
                })?;
            self.set_balance(to, new, j);
        }
        if let Some(stake) = plan.new_stake {
            // Zero stakes are absent from the map (StakeMap's invariant).
            let old = if stake == 0 {
                self.stakes.remove(&from)
            } else {
                self.stakes.insert(from, stake)
            };
            j.push(Change::Stake(from, old));
        }
        if let Some((id, vrf)) = plan.bind {
            self.bind(from, id, vrf);
            j.push(Change::Bound(from));
        }
        if let Some(producer) = fee_to {
            if tx.body.fee > 0 {
                let new =
                    self.balance(producer)
                        .checked_add(tx.body.fee)
                        .ok_or(TxError::Overflow {
                            account: *producer,
                            what: "balance",
                        })?;
                self.set_balance(*producer, new, j);
            }
        }
        Ok(())
    }
}

/// How a transaction's signature is checked while its rules are.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Sigs<'a> {
    /// Verified now.
    Verify,
    /// Through the cache: a hit costs nothing, a verification is remembered.
    Cached(&'a SignatureCache),
    /// Already verified by the stateless stage ([`VerifiedTx`], [`VerifiedBlock`]).
    Verified,
}

/// The undo data of a block from its journal: the first value recorded for each (map, key) is
/// the one before the block (later ones are values the block itself wrote).
/// Read access to the account state the transaction rules judge against: a [`LedgerState`], or
/// a view of one that takes out what a mempool's pending transactions already spend.
pub trait Accounts {
    /// Spendable balance of `account` (0 if unknown).
    fn balance(&self, account: &PublicKey) -> u64;
    /// The nonce the next transaction of `account` must carry.
    fn nonce(&self, account: &PublicKey) -> u64;
    /// Bonded stake of `account` (0 if none).
    fn stake(&self, account: &PublicKey) -> u64;
    /// The stakeholder id bound to `account`, if any.
    fn stakeholder_id(&self, account: &PublicKey) -> Option<&str>;
    /// The key a stakeholder id is bound to, if any.
    fn stakeholder_key(&self, id: &str) -> Option<PublicKey>;
    /// Whether the network is praos (bonds carry VRF keys) or classic (they carry none).
    fn praos(&self) -> bool;
    /// Praos: the VRF key registered for stakeholder `account`, if any.
    fn vrf_key(&self, account: &PublicKey) -> Option<PublicKey>;
    /// Praos: the stakeholder a VRF key is registered to, if any.
    fn vrf_owner(&self, vrf_key: &PublicKey) -> Option<PublicKey>;
}

/// The VRF-key rules of a bond by `from` (see docs/consensus.md): on a classic network a bond
/// carries no VRF key; on a praos network it carries one, which must be the key already
/// registered for `from` if there is one, and otherwise a key no other stakeholder holds.
fn check_bond_vrf_key<A: Accounts + ?Sized>(
    acc: &A,
    from: &PublicKey,
    vrf_key: Option<PublicKey>,
) -> Result<(), TxError> {
    match (acc.praos(), vrf_key) {
        (false, None) => Ok(()),
        (false, Some(_)) => Err(TxError::VrfKeyOnClassicNetwork),
        (true, None) => Err(TxError::MissingVrfKey { account: *from }),
        (true, Some(got)) => match acc.vrf_key(from) {
            Some(registered) if registered != got => {
                Err(TxError::VrfKeyMismatch { registered, got })
            }
            Some(_) => Ok(()),
            None => match acc.vrf_owner(&got) {
                Some(owner) => Err(TxError::VrfKeyTaken { key: got, owner }),
                None => Ok(()),
            },
        },
    }
}

impl Accounts for LedgerState {
    fn balance(&self, account: &PublicKey) -> u64 {
        LedgerState::balance(self, account)
    }
    fn nonce(&self, account: &PublicKey) -> u64 {
        LedgerState::nonce(self, account)
    }
    fn stake(&self, account: &PublicKey) -> u64 {
        LedgerState::stake(self, account)
    }
    fn stakeholder_id(&self, account: &PublicKey) -> Option<&str> {
        LedgerState::stakeholder_id(self, account)
    }
    fn stakeholder_key(&self, id: &str) -> Option<PublicKey> {
        LedgerState::stakeholder_key(self, id)
    }
    fn praos(&self) -> bool {
        self.praos
    }
    fn vrf_key(&self, account: &PublicKey) -> Option<PublicKey> {
        LedgerState::vrf_key(self, account)
    }
    fn vrf_owner(&self, vrf_key: &PublicKey) -> Option<PublicKey> {
        self.key_of_vrf.get(vrf_key).copied()
    }
}

/// Checks that `tx` would apply on `accounts`, changing nothing: the ledger's transaction rules
/// (what [`LedgerState::check_tx_cached`] checks) on any view of the accounts. A mempool calls
/// it with a view that takes out what the sender's pending transactions spend, so that it asks
/// the ledger's rules instead of mirroring them. The signature is checked through `cache`.
pub fn check_tx_against<A: Accounts + ?Sized>(
    accounts: &A,
    tx: &Transaction,
    genesis_hash: &Hash,
    cache: &SignatureCache,
) -> Result<(), TxError> {
    LedgerState::plan(accounts, tx, genesis_hash, Sigs::Cached(cache)).map(|_| ())
}

fn compact(block_hash: Hash, journal: Vec<Change>, minted: u128) -> BlockUndo {
    let mut seen: HashSet<(Field, PublicKey)> = HashSet::with_capacity(journal.len());
    let mut prior = Vec::new();
    let mut bound = Vec::new();
    for c in journal {
        let (field, key, value) = match c {
            Change::Balance(k, v) => (Field::Balance, k, v),
            Change::Nonce(k, v) => (Field::Nonce, k, v),
            Change::Stake(k, v) => (Field::Stake, k, v),
            Change::Bound(k) => {
                bound.push(k);
                continue;
            }
            Change::Minted(_) => continue,
        };
        if seen.insert((field, key)) {
            prior.push(Prior::new(field, key, value));
        }
    }
    prior.shrink_to_fit();
    BlockUndo {
        block_hash,
        prior,
        bound,
        minted,
    }
}

fn restore(map: &mut BTreeMap<PublicKey, u64>, k: PublicKey, v: Option<u64>) {
    match v {
        Some(v) => {
            map.insert(k, v);
        }
        None => {
            map.remove(&k);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::KeyPair;

    /// Undo data holds one value per (account, map) a block touched, not one per write: a
    /// block of many transfers between the same two accounts undoes from four values, and
    /// rollback, redo and rollback again give the exact states.
    #[test]
    fn undo_data_follows_distinct_accounts_not_transactions() {
        let alice = KeyPair::from_seed([1u8; 32]);
        let bob = KeyPair::from_seed([2u8; 32]).public();
        let producer = KeyPair::from_seed([3u8; 32]);
        let mut g = Genesis::devnet("undo", producer.public(), 0);
        g.initial_balances.push(crate::genesis::InitialBalance {
            account: alice.public(),
            amount: 1_000_000,
        });
        let gh = g.hash();
        let before = LedgerState::from_genesis(&g);
        let mut st = before.clone();
        let undo_of = |st: &mut LedgerState, n: u64, first: u64| {
            let txs = (first..first + n)
                .map(|i| Transaction::transfer(&alice, bob, 3, 1, i, &gh))
                .collect();
            let b = Block::produce(
                &g.block().header,
                1,
                0,
                0,
                txs,
                Hash::ZERO,
                &producer,
                &gh,
                1 << 20,
            )
            .unwrap();
            st.apply_block(&b, &gh, 50).unwrap()
        };
        let small = undo_of(&mut st.clone(), 1, 0);
        let undo = undo_of(&mut st, 200, 0);
        // Alice's balance and nonce, Bob's balance, the producer's balance.
        assert_eq!(small.len(), 4);
        assert_eq!(undo.len(), 4);
        assert!(undo.prior.capacity() == undo.prior.len());
        let after = st.clone();
        assert_eq!(after.nonce(&alice.public()), 200);
        let redo = st.redo_of(&undo);
        st.rollback_ref(&undo);
        assert_eq!(st, before);
        st.redo(&redo);
        assert_eq!(st, after);
        st.rollback(undo);
        assert_eq!(st, before);
    }

    /// A block that binds a stakeholder id is undone and redone with the binding.
    #[test]
    fn undo_and_redo_cover_stakeholder_bindings() {
        let carol = KeyPair::from_seed([4u8; 32]);
        let producer = KeyPair::from_seed([3u8; 32]);
        let mut g = Genesis::devnet("undo", producer.public(), 0);
        g.initial_balances.push(crate::genesis::InitialBalance {
            account: carol.public(),
            amount: 1_000_000,
        });
        let gh = g.hash();
        let before = LedgerState::from_genesis(&g);
        let mut st = before.clone();
        let tx = crate::tx::TxBody {
            kind: TxKind::Bond {
                stakeholder_id: "carol".into(),
                vrf_key: None,
            },
            from: carol.public(),
            amount: 500,
            fee: 1,
            nonce: 0,
        }
        .sign(&carol, &gh);
        let b = Block::produce(
            &g.block().header,
            1,
            0,
            0,
            vec![tx],
            Hash::ZERO,
            &producer,
            &gh,
            1 << 20,
        )
        .unwrap();
        let undo = st.apply_block(&b, &gh, 50).unwrap();
        let after = st.clone();
        assert_eq!(after.stakeholder_key("carol"), Some(carol.public()));
        let redo = st.redo_of(&undo);
        st.rollback_ref(&undo);
        assert_eq!(st, before);
        st.redo(&redo);
        assert_eq!(st, after);
    }
}
