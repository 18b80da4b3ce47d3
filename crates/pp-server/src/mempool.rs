//! The pool of valid transactions waiting for a block.
//!
//! A transaction enters only if it would apply on top of the tip state *and* the sender's
//! transactions already pending: the signature verifies, the amount is positive, its nonce is the
//! sender's next one counting pending transactions (so a sender may queue consecutive nonces), and
//! the balance (stake for an unbond) covers it after the pending spends. Incoming pending transfers
//! are not counted: a transaction may only spend what the tip state already holds.
//!
//! The pool is bounded in total and per sender, deduplicated by id, and re-validated after every
//! new tip ([`Mempool::revalidate`]): transactions that were included (their nonce is now below the
//! sender's) or became invalid are dropped. Candidates for a block come out round-robin across
//! senders and in nonce order within a sender ([`Mempool::candidates`]).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use pp_ledger::{Hash, PublicKey, SignatureCache, Transaction, TxKind};

/// Default bound on the number of pending transactions.
pub const DEFAULT_MAX_TXS: usize = 10_000;
/// Default bound on pending transactions of one sender.
pub const DEFAULT_MAX_PER_SENDER: usize = 256;

/// What the pool needs to know of the tip state. Implemented for `pp_ledger::LedgerState`.
pub trait AccountView {
    /// Spendable balance of `a` (0 if unknown).
    fn balance_of(&self, a: &PublicKey) -> u64;
    /// Bonded stake of `a` (0 if none).
    fn stake_of(&self, a: &PublicKey) -> u64;
    /// The nonce the next transaction of `a` must carry.
    fn next_nonce(&self, a: &PublicKey) -> u64;
    /// The full ledger rules for `tx` as the sender's very next transaction on this state; the
    /// error is `(code, message)`.
    fn check_next(&self, tx: &Transaction) -> Result<(), (String, String)>;
}

/// Why a transaction was refused. The code (see [`MempoolError::code`]) is what the HTTP API
/// returns.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MempoolError {
    /// The signature does not verify for this network.
    #[error("signature does not verify for sender {from}")]
    BadSignature {
        /// The sender.
        from: PublicKey,
    },
    /// Amount 0.
    #[error("amount must be greater than 0")]
    ZeroAmount,
    /// `amount + fee` overflows.
    #[error("amount {amount} + fee {fee} overflows")]
    Overflow {
        /// Amount.
        amount: u64,
        /// Fee.
        fee: u64,
    },
    /// The nonce is not the sender's next one (counting pending transactions).
    #[error("nonce {got} is not the next nonce {expected} of {from}")]
    BadNonce {
        /// The sender.
        from: PublicKey,
        /// The nonce required.
        expected: u64,
        /// The nonce given.
        got: u64,
    },
    /// The balance (after pending spends) does not cover amount + fee.
    #[error("balance {available} of {from} (after pending spends) does not cover {needed}")]
    InsufficientBalance {
        /// The sender.
        from: PublicKey,
        /// Spendable after pending transactions.
        available: u64,
        /// amount + fee (or fee, for an unbond).
        needed: u64,
    },
    /// The stake (after pending unbonds) does not cover an unbond.
    #[error("stake {available} of {from} (after pending unbonds) does not cover {needed}")]
    InsufficientStake {
        /// The sender.
        from: PublicKey,
        /// Stake left after pending unbonds.
        available: u64,
        /// The amount to unbond.
        needed: u64,
    },
    /// Another ledger rule (from `LedgerState::check_tx`).
    #[error("{message}")]
    Ledger {
        /// Machine-readable rule name.
        code: String,
        /// What was wrong, with values.
        message: String,
    },
    /// The pool is full.
    #[error("mempool is full ({max} transactions)")]
    PoolFull {
        /// The bound.
        max: usize,
    },
    /// The sender has too many pending transactions.
    #[error("sender {from} already has {max} pending transactions")]
    SenderFull {
        /// The sender.
        from: PublicKey,
        /// The bound.
        max: usize,
    },
}

impl MempoolError {
    /// A short machine-readable code naming the broken rule (`bad_nonce`, ...).
    pub fn code(&self) -> &str {
        match self {
            MempoolError::BadSignature { .. } => "bad_signature",
            MempoolError::ZeroAmount => "zero_amount",
            MempoolError::Overflow { .. } => "overflow",
            MempoolError::BadNonce { .. } => "bad_nonce",
            MempoolError::InsufficientBalance { .. } => "insufficient_balance",
            MempoolError::InsufficientStake { .. } => "insufficient_stake",
            MempoolError::Ledger { code, .. } => code,
            MempoolError::PoolFull { .. } => "mempool_full",
            MempoolError::SenderFull { .. } => "sender_mempool_full",
        }
    }
}

/// What [`Mempool::insert`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inserted {
    /// A new transaction: journal and relay it.
    New,
    /// Already pending: nothing to do.
    Duplicate,
}

#[derive(Debug, Clone)]
struct Entry {
    tx: Transaction,
    seq: u64,
}

/// The transaction pool.
#[derive(Debug, Clone)]
pub struct Mempool {
    genesis_hash: Hash,
    max_txs: usize,
    max_per_sender: usize,
    by_id: HashMap<Hash, Entry>,
    /// Per sender, pending ids by nonce; nonces are consecutive from the sender's state nonce.
    by_sender: BTreeMap<PublicKey, BTreeMap<u64, Hash>>,
    next_seq: u64,
    /// Verified signatures, shared with the chain.
    sigs: Arc<SignatureCache>,
}

/// What one sender's pending transactions spend.
#[derive(Default)]
struct Spend {
    balance: u64,
    stake: u64,
}

fn debit(tx: &Transaction) -> Option<Spend> {
    let b = &tx.body;
    match b.kind {
        TxKind::Transfer { .. } | TxKind::Bond { .. } => Some(Spend {
            balance: b.total_debit()?,
            stake: 0,
        }),
        TxKind::Unbond => Some(Spend {
            balance: b.fee,
            stake: b.amount,
        }),
    }
}

impl Mempool {
    /// An empty pool for the network `genesis_hash`.
    pub fn new(genesis_hash: Hash, max_txs: usize, max_per_sender: usize) -> Mempool {
        Mempool {
            genesis_hash,
            max_txs: max_txs.max(1),
            max_per_sender: max_per_sender.max(1),
            by_id: HashMap::new(),
            by_sender: BTreeMap::new(),
            next_seq: 0,
            sigs: Arc::new(SignatureCache::default()),
        }
    }

    /// Verifies signatures through `cache` (the chain's), so that a block of transactions
    /// admitted here verifies none of them again.
    pub fn with_signature_cache(mut self, cache: Arc<SignatureCache>) -> Mempool {
        self.sigs = cache;
        self
    }

    /// Number of pending transactions.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// True if nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// True if `id` is pending.
    pub fn contains(&self, id: &Hash) -> bool {
        self.by_id.contains_key(id)
    }

    /// A pending transaction by id.
    pub fn get(&self, id: &Hash) -> Option<&Transaction> {
        self.by_id.get(id).map(|e| &e.tx)
    }

    /// The nonce the sender's next transaction must carry, counting pending ones.
    pub fn pending_nonce(&self, state: &impl AccountView, a: &PublicKey) -> u64 {
        let base = state.next_nonce(a);
        match self.by_sender.get(a).and_then(|m| m.keys().next_back()) {
            Some(last) if *last >= base => last.saturating_add(1),
            _ => base,
        }
    }

    fn pending_spend(&self, a: &PublicKey) -> Spend {
        let mut s = Spend::default();
        for id in self.by_sender.get(a).into_iter().flat_map(|m| m.values()) {
            if let Some(d) = self.by_id.get(id).and_then(|e| debit(&e.tx)) {
                s.balance = s.balance.saturating_add(d.balance);
                s.stake = s.stake.saturating_add(d.stake);
            }
        }
        s
    }

    /// Checks `tx` against the tip state and the pending transactions, without inserting it.
    pub fn check(&self, state: &impl AccountView, tx: &Transaction) -> Result<(), MempoolError> {
        let b = &tx.body;
        if b.amount == 0 {
            return Err(MempoolError::ZeroAmount);
        }
        let d = debit(tx).ok_or(MempoolError::Overflow {
            amount: b.amount,
            fee: b.fee,
        })?;
        let expected = self.pending_nonce(state, &b.from);
        if b.nonce != expected {
            return Err(MempoolError::BadNonce {
                from: b.from,
                expected,
                got: b.nonce,
            });
        }
        let pending = self.pending_spend(&b.from);
        let available = state.balance_of(&b.from).saturating_sub(pending.balance);
        if available < d.balance {
            return Err(MempoolError::InsufficientBalance {
                from: b.from,
                available,
                needed: d.balance,
            });
        }
        let stake = state.stake_of(&b.from).saturating_sub(pending.stake);
        if stake < d.stake {
            return Err(MempoolError::InsufficientStake {
                from: b.from,
                available: stake,
                needed: d.stake,
            });
        }
        // The signature last: it is the expensive check, and everything above is cheap to refute.
        self.sigs
            .verify_tx(tx, &tx.id(), &self.genesis_hash)
            .map_err(|_| MempoolError::BadSignature { from: b.from })?;
        if b.nonce == state.next_nonce(&b.from) {
            // The sender's very next transaction: the ledger's own rules (e.g. stakeholder id
            // binding of a bond) apply exactly.
            state
                .check_next(tx)
                .map_err(|(code, message)| MempoolError::Ledger { code, message })?;
        }
        Ok(())
    }

    /// Validates and inserts `tx`.
    pub fn insert(
        &mut self,
        state: &impl AccountView,
        tx: Transaction,
    ) -> Result<Inserted, MempoolError> {
        let id = tx.id();
        if self.by_id.contains_key(&id) {
            return Ok(Inserted::Duplicate);
        }
        self.check(state, &tx)?;
        if self.by_id.len() >= self.max_txs {
            return Err(MempoolError::PoolFull { max: self.max_txs });
        }
        let from = tx.body.from;
        let per = self.by_sender.get(&from).map_or(0, BTreeMap::len);
        if per >= self.max_per_sender {
            return Err(MempoolError::SenderFull {
                from,
                max: self.max_per_sender,
            });
        }
        self.by_sender
            .entry(from)
            .or_default()
            .insert(tx.body.nonce, id);
        self.by_id.insert(
            id,
            Entry {
                tx,
                seq: self.next_seq,
            },
        );
        self.next_seq += 1;
        Ok(Inserted::New)
    }

    /// Removes one transaction (and every later one of its sender, whose nonces would now have a
    /// gap). Returns the removed ids.
    pub fn remove(&mut self, id: &Hash) -> Vec<Hash> {
        let Some(e) = self.by_id.get(id) else {
            return Vec::new();
        };
        let (from, nonce) = (e.tx.body.from, e.tx.body.nonce);
        let mut removed = Vec::new();
        if let Some(m) = self.by_sender.get_mut(&from) {
            let later = m.split_off(&nonce);
            for (_, id) in later {
                self.by_id.remove(&id);
                removed.push(id);
            }
            if m.is_empty() {
                self.by_sender.remove(&from);
            }
        }
        removed
    }

    /// Re-checks every pending transaction against a new tip state; drops those included (nonce
    /// below the sender's) or no longer valid. Returns the dropped ids (to remove from the journal).
    pub fn revalidate(&mut self, state: &impl AccountView) -> Vec<Hash> {
        let mut dropped = Vec::new();
        let senders: Vec<PublicKey> = self.by_sender.keys().copied().collect();
        for from in senders {
            let Some(nonces) = self.by_sender.remove(&from) else {
                continue;
            };
            let mut ok = true;
            for (_, id) in nonces {
                let Some(entry) = self.by_id.remove(&id) else {
                    continue;
                };
                if ok {
                    // Re-insert one by one so that each is judged with its predecessors pending.
                    match self.check(state, &entry.tx) {
                        Ok(()) => {
                            self.by_sender
                                .entry(from)
                                .or_default()
                                .insert(entry.tx.body.nonce, id);
                            self.by_id.insert(id, entry);
                            continue;
                        }
                        Err(_) => {
                            // Stale nonces (included) are simply skipped; anything else breaks
                            // the run: later nonces would have a gap.
                            if entry.tx.body.nonce >= state.next_nonce(&from) {
                                ok = false;
                            }
                        }
                    }
                }
                dropped.push(id);
            }
        }
        dropped
    }

    /// After a fork switch: re-admits the transactions of the rolled-back blocks (`back`, those
    /// still valid on the new tip) together with the pending ones, each sender's in nonce order.
    /// Returns the re-admitted transactions of `back` (to journal) and the previously pending ids
    /// that were dropped (to remove from the journal).
    pub fn rebuild(
        &mut self,
        state: &impl AccountView,
        back: Vec<Transaction>,
    ) -> (Vec<Transaction>, Vec<Hash>) {
        let old: Vec<Entry> = self.by_id.drain().map(|(_, e)| e).collect();
        self.by_sender.clear();
        let mut all: Vec<(Transaction, bool)> = back.into_iter().map(|t| (t, true)).collect();
        all.extend(old.into_iter().map(|e| (e.tx, false)));
        all.sort_by_key(|(t, _)| (t.body.from, t.body.nonce));
        let mut added = Vec::new();
        let mut dropped = Vec::new();
        for (t, from_block) in all {
            let id = t.id();
            let ok = !self.by_id.contains_key(&id)
                && matches!(self.insert(state, t.clone()), Ok(Inserted::New));
            match (ok, from_block) {
                (true, true) => added.push(t),
                (false, false) => dropped.push(id),
                _ => {}
            }
        }
        (added, dropped)
    }

    /// Pending transactions in the order a block should consider them: round-robin across senders
    /// (by depth in the sender's queue, then arrival), nonce order within a sender.
    pub fn candidates(&self) -> Vec<&Transaction> {
        let mut v: Vec<(usize, u64, &Transaction)> = Vec::with_capacity(self.by_id.len());
        for m in self.by_sender.values() {
            for (depth, id) in m.values().enumerate() {
                if let Some(e) = self.by_id.get(id) {
                    v.push((depth, e.seq, &e.tx));
                }
            }
        }
        v.sort_by_key(|(d, s, _)| (*d, *s));
        v.into_iter().map(|(_, _, t)| t).collect()
    }

    /// Number of pending transactions of `a`.
    pub fn pending_of(&self, a: &PublicKey) -> usize {
        self.by_sender.get(a).map_or(0, BTreeMap::len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pp_ledger::{KeyPair, TxBody};

    #[derive(Default)]
    struct View {
        balance: HashMap<PublicKey, u64>,
        stake: HashMap<PublicKey, u64>,
        nonce: HashMap<PublicKey, u64>,
    }

    impl AccountView for View {
        fn balance_of(&self, a: &PublicKey) -> u64 {
            self.balance.get(a).copied().unwrap_or(0)
        }
        fn stake_of(&self, a: &PublicKey) -> u64 {
            self.stake.get(a).copied().unwrap_or(0)
        }
        fn next_nonce(&self, a: &PublicKey) -> u64 {
            self.nonce.get(a).copied().unwrap_or(0)
        }
        fn check_next(&self, _tx: &Transaction) -> Result<(), (String, String)> {
            Ok(())
        }
    }

    const G: Hash = Hash([7u8; 32]);

    fn key(n: u8) -> KeyPair {
        KeyPair::from_seed([n; 32])
    }

    fn pay(from: &KeyPair, amount: u64, nonce: u64) -> Transaction {
        Transaction::transfer(from, key(99).public(), amount, 1, nonce, &G)
    }

    fn view_with(k: &KeyPair, balance: u64) -> View {
        let mut v = View::default();
        v.balance.insert(k.public(), balance);
        v
    }

    #[test]
    fn accepts_consecutive_nonces_and_rejects_gaps() {
        let a = key(1);
        let v = view_with(&a, 100);
        let mut m = Mempool::new(G, 100, 10);
        assert_eq!(m.insert(&v, pay(&a, 10, 0)), Ok(Inserted::New));
        assert_eq!(m.insert(&v, pay(&a, 10, 1)), Ok(Inserted::New));
        assert_eq!(
            m.insert(&v, pay(&a, 10, 3)),
            Err(MempoolError::BadNonce {
                from: a.public(),
                expected: 2,
                got: 3
            })
        );
        assert_eq!(m.pending_nonce(&v, &a.public()), 2);
        assert_eq!(m.insert(&v, pay(&a, 10, 1)), Ok(Inserted::Duplicate));
    }

    #[test]
    fn balance_counts_pending_spends() {
        let a = key(1);
        let v = view_with(&a, 25);
        let mut m = Mempool::new(G, 100, 10);
        m.insert(&v, pay(&a, 10, 0)).unwrap();
        m.insert(&v, pay(&a, 10, 1)).unwrap();
        let err = m.insert(&v, pay(&a, 10, 2)).unwrap_err();
        assert_eq!(
            err,
            MempoolError::InsufficientBalance {
                from: a.public(),
                available: 3,
                needed: 11
            }
        );
        assert_eq!(err.code(), "insufficient_balance");
    }

    #[test]
    fn rejects_bad_signature_and_zero_amount() {
        let a = key(1);
        let v = view_with(&a, 100);
        let mut m = Mempool::new(G, 100, 10);
        let mut t = pay(&a, 10, 0);
        t.signature.0[0] ^= 1;
        assert_eq!(
            m.insert(&v, t),
            Err(MempoolError::BadSignature { from: a.public() })
        );
        let other_net = Transaction::transfer(&a, key(2).public(), 1, 0, 0, &Hash::ZERO);
        assert!(matches!(
            m.insert(&v, other_net),
            Err(MempoolError::BadSignature { .. })
        ));
        assert_eq!(m.insert(&v, pay(&a, 0, 0)), Err(MempoolError::ZeroAmount));
    }

    #[test]
    fn unbond_needs_stake_after_pending_unbonds() {
        let a = key(1);
        let mut v = view_with(&a, 10);
        v.stake.insert(a.public(), 5);
        let mut m = Mempool::new(G, 100, 10);
        let unbond = |amount, nonce| {
            TxBody {
                kind: TxKind::Unbond,
                from: a.public(),
                amount,
                fee: 1,
                nonce,
            }
            .sign(&a, &G)
        };
        m.insert(&v, unbond(4, 0)).unwrap();
        assert!(matches!(
            m.insert(&v, unbond(2, 1)),
            Err(MempoolError::InsufficientStake {
                available: 1,
                needed: 2,
                ..
            })
        ));
    }

    #[test]
    fn enforces_total_and_per_sender_bounds() {
        let a = key(1);
        let b = key(2);
        let mut v = view_with(&a, 100);
        v.balance.insert(b.public(), 100);
        let mut m = Mempool::new(G, 3, 2);
        m.insert(&v, pay(&a, 1, 0)).unwrap();
        m.insert(&v, pay(&a, 1, 1)).unwrap();
        assert!(matches!(
            m.insert(&v, pay(&a, 1, 2)),
            Err(MempoolError::SenderFull { max: 2, .. })
        ));
        m.insert(&v, pay(&b, 1, 0)).unwrap();
        assert_eq!(
            m.insert(&v, pay(&b, 1, 1)),
            Err(MempoolError::PoolFull { max: 3 })
        );
    }

    #[test]
    fn revalidate_drops_included_and_keeps_the_rest() {
        let a = key(1);
        let mut v = view_with(&a, 100);
        let mut m = Mempool::new(G, 100, 10);
        let t0 = pay(&a, 10, 0);
        let t1 = pay(&a, 10, 1);
        m.insert(&v, t0.clone()).unwrap();
        m.insert(&v, t1.clone()).unwrap();
        // t0 was included in a block.
        v.nonce.insert(a.public(), 1);
        v.balance.insert(a.public(), 89);
        assert_eq!(m.revalidate(&v), vec![t0.id()]);
        assert!(m.contains(&t1.id()));
        // The balance vanished (spent elsewhere): t1 is dropped too.
        v.balance.insert(a.public(), 0);
        assert_eq!(m.revalidate(&v), vec![t1.id()]);
        assert!(m.is_empty());
    }

    #[test]
    fn revalidate_drops_everything_after_a_broken_nonce() {
        let a = key(1);
        let mut v = view_with(&a, 100);
        let mut m = Mempool::new(G, 100, 10);
        let txs: Vec<_> = (0..3).map(|n| pay(&a, 30, n)).collect();
        for t in &txs {
            m.insert(&v, t.clone()).unwrap();
        }
        v.balance.insert(a.public(), 40);
        let dropped = m.revalidate(&v);
        assert_eq!(dropped, vec![txs[1].id(), txs[2].id()]);
        assert_eq!(m.len(), 1);
    }

    #[test]
    fn candidates_round_robin_senders_in_nonce_order() {
        let a = key(1);
        let b = key(2);
        let mut v = view_with(&a, 100);
        v.balance.insert(b.public(), 100);
        let mut m = Mempool::new(G, 100, 10);
        let a0 = pay(&a, 1, 0);
        let a1 = pay(&a, 1, 1);
        let b0 = pay(&b, 1, 0);
        m.insert(&v, a0.clone()).unwrap();
        m.insert(&v, a1.clone()).unwrap();
        m.insert(&v, b0.clone()).unwrap();
        let c: Vec<Transaction> = m.candidates().into_iter().cloned().collect();
        assert_eq!(c, vec![a0, b0, a1]);
    }

    #[test]
    fn remove_takes_later_nonces_with_it() {
        let a = key(1);
        let v = view_with(&a, 100);
        let mut m = Mempool::new(G, 100, 10);
        let t: Vec<_> = (0..3).map(|n| pay(&a, 1, n)).collect();
        for x in &t {
            m.insert(&v, x.clone()).unwrap();
        }
        assert_eq!(m.remove(&t[1].id()), vec![t[1].id(), t[2].id()]);
        assert_eq!(m.len(), 1);
    }

    #[test]
    fn rebuild_readmits_rolled_back_txs_before_pending_ones() {
        let a = key(1);
        let mut v = view_with(&a, 100);
        let mut m = Mempool::new(G, 100, 10);
        let t0 = pay(&a, 10, 0);
        let t1 = pay(&a, 10, 1);
        // t0 was in a block; t1 pending on top of it.
        v.nonce.insert(a.public(), 1);
        m.insert(&v, t1.clone()).unwrap();
        // The block is rolled back: nonce 0 again.
        v.nonce.insert(a.public(), 0);
        let (added, dropped) = m.rebuild(&v, vec![t0.clone()]);
        assert_eq!(added, vec![t0.clone()]);
        assert!(dropped.is_empty());
        assert_eq!(m.len(), 2);
        let c: Vec<Transaction> = m.candidates().into_iter().cloned().collect();
        assert_eq!(c, vec![t0, t1]);
    }
}
