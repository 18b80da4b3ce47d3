//! The pool of valid transactions waiting for a block.
//!
//! A transaction enters only if it would apply on top of the tip state *and* the sender's
//! transactions already pending. The pool does not mirror the ledger's rules: it runs them
//! (`pp_ledger::check_tx_against`, errors are `pp_ledger::TxError`) on a view of the tip state
//! where the sender's nonce follows its pending transactions (so a sender may queue consecutive
//! nonces) and its balance and stake are what they leave. Incoming pending transfers are not
//! counted: a transaction may only spend what the tip state already holds.
//!
//! The pool is bounded in total and per sender, deduplicated by id, and re-validated after every
//! new tip ([`Mempool::revalidate_after`]): transactions that were included (their nonce is now
//! below the sender's) or became invalid are dropped. Candidates for a block come out round-robin
//! across senders and in nonce order within a sender ([`Mempool::candidates`]).
//!
//! Fee policy (this node's, not a consensus rule: blocks with any fee stay valid):
//! * a transaction paying less than the minimum fee ([`Mempool::set_min_fee`]) is refused;
//! * when the pool is full, a newcomer must pay a higher fee rate (fee per byte of the canonical
//!   encoding) than the cheapest pending transaction that can go: the last pending transaction of
//!   another sender (taking a middle one would leave a nonce gap). That one is evicted; a
//!   newcomer paying no more is refused.
//!
//! No acknowledged transaction leaves the pool silently: every one that goes without being
//! included is recorded with its [`DropReason`] in a bounded log ([`Mempool::dropped`]), which the
//! HTTP API reports at `GET /transactions/{id}`. A fork switch puts the transactions of abandoned
//! blocks back in front of the pending ones ([`Mempool::rebuild_after`]); the pool may then exceed
//! its per-sender bound (those queues drain with the next blocks) and, over the total bound, sheds
//! the lowest fee rates, each one recorded as evicted.

use std::cmp::{Ordering, Reverse};
use std::collections::{BTreeMap, BinaryHeap, HashMap, HashSet, VecDeque};

use pp_ledger::{
    check_tx_against, Accounts, Hash, PublicKey, SignatureCache, Transaction, TxError, TxKind,
};

/// Default bound on the number of pending transactions.
pub const DEFAULT_MAX_TXS: usize = 10_000;
/// Default bound on pending transactions of one sender.
pub const DEFAULT_MAX_PER_SENDER: usize = 256;
/// Default minimum fee of an admitted transaction (node policy).
pub const DEFAULT_MIN_FEE: u64 = 1;
/// Most dropped transaction ids remembered with their reason (the oldest are forgotten first).
pub const MAX_DROPPED_RECORDS: usize = 100_000;

/// What the pool needs of the tip state: its accounts, which network's signatures are valid,
/// and where verified signatures are remembered. Implemented over `pp_ledger::LedgerState`.
/// The pool does not mirror the ledger's rules: it asks them ([`pp_ledger::check_tx_against`])
/// on a view of this state that takes out what the sender's pending transactions spend.
pub trait AccountView: Accounts {
    /// The genesis hash every signature is bound to.
    fn genesis_hash(&self) -> Hash;
    /// The signature cache (the chain's, so that a block of admitted transactions verifies
    /// none of them again).
    fn signature_cache(&self) -> &SignatureCache;
}

/// The tip state as the ledger's rules must see a new transaction of `sender`: its nonce is
/// the one after its pending transactions, and its balance and stake are what those leave.
/// Credits from pending transactions are not counted (a transaction only spends what the tip
/// state holds), and the stakeholder-id rules of a bond are judged on the tip state.
struct AfterPending<'a, V: ?Sized> {
    tip: &'a V,
    sender: PublicKey,
    nonce: u64,
    spent: Spend,
}

impl<V: Accounts + ?Sized> Accounts for AfterPending<'_, V> {
    fn balance(&self, a: &PublicKey) -> u64 {
        let b = self.tip.balance(a);
        if *a == self.sender {
            b.saturating_sub(self.spent.balance)
        } else {
            b
        }
    }
    fn nonce(&self, a: &PublicKey) -> u64 {
        if *a == self.sender {
            self.nonce
        } else {
            self.tip.nonce(a)
        }
    }
    fn stake(&self, a: &PublicKey) -> u64 {
        let s = self.tip.stake(a);
        if *a == self.sender {
            s.saturating_sub(self.spent.stake)
        } else {
            s
        }
    }
    fn stakeholder_id(&self, a: &PublicKey) -> Option<&str> {
        self.tip.stakeholder_id(a)
    }
    fn stakeholder_key(&self, id: &str) -> Option<PublicKey> {
        self.tip.stakeholder_key(id)
    }
    fn praos(&self) -> bool {
        self.tip.praos()
    }
    fn vrf_key(&self, a: &PublicKey) -> Option<PublicKey> {
        self.tip.vrf_key(a)
    }
    fn vrf_owner(&self, vrf_key: &PublicKey) -> Option<PublicKey> {
        self.tip.vrf_owner(vrf_key)
    }
}

/// Why a transaction was refused. The code (see [`MempoolError::code`]) is what the HTTP API
/// returns.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MempoolError {
    /// A ledger rule refuses it on the tip state after the sender's pending transactions.
    #[error(transparent)]
    Tx(#[from] TxError),
    /// It could not be made durable, so it is not acknowledged.
    #[error("not stored: {message}")]
    NotStored {
        /// The storage error.
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
    /// The fee is below this node's minimum (policy, not consensus).
    #[error("fee {fee} is below this node's minimum fee {min}")]
    FeeBelowMinimum {
        /// The fee paid.
        fee: u64,
        /// The node's minimum.
        min: u64,
    },
    /// The pool is full and the fee rate is below that of the cheapest pending transaction
    /// that could make room.
    #[error(
        "mempool is full and fee {fee} for {bytes} bytes pays a lower rate than the cheapest \
         pending transaction ({cheapest_fee} for {cheapest_bytes} bytes): raise the fee"
    )]
    Underpriced {
        /// The fee paid.
        fee: u64,
        /// The transaction's encoded size.
        bytes: usize,
        /// The fee of the cheapest evictable pending transaction.
        cheapest_fee: u64,
        /// Its encoded size.
        cheapest_bytes: usize,
    },
}

impl MempoolError {
    /// A short machine-readable code naming the broken rule (`bad_nonce`, ...).
    pub fn code(&self) -> &str {
        match self {
            MempoolError::Tx(e) => e.code(),
            MempoolError::NotStored { .. } => "storage_error",
            MempoolError::PoolFull { .. } => "mempool_full",
            MempoolError::SenderFull { .. } => "sender_mempool_full",
            MempoolError::FeeBelowMinimum { .. } => "fee_below_minimum",
            MempoolError::Underpriced { .. } => "fee_too_low",
        }
    }
}

/// Why a transaction left the pool without being included.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DropReason {
    /// The pool was full and a transaction paying a higher fee rate took its place.
    EvictedByFee,
    /// Another transaction of the same sender with the same nonce is on the best chain.
    Conflict,
    /// It no longer applies on the new tip (e.g. the balance it spent left with a fork switch).
    Invalid {
        /// The broken rule ([`MempoolError::code`]).
        code: String,
        /// What was wrong, with values.
        message: String,
    },
    /// An earlier transaction of the same sender was dropped: this one's nonce is out of reach.
    NonceGap,
}

impl DropReason {
    /// A short machine-readable name (`evicted_by_fee`, `conflict`, `invalid`, `nonce_gap`).
    pub fn code(&self) -> &'static str {
        match self {
            DropReason::EvictedByFee => "evicted_by_fee",
            DropReason::Conflict => "conflict",
            DropReason::Invalid { .. } => "invalid",
            DropReason::NonceGap => "nonce_gap",
        }
    }

    /// A sentence for people.
    pub fn message(&self) -> String {
        match self {
            DropReason::EvictedByFee => {
                "evicted from a full mempool by a transaction paying a higher fee rate".into()
            }
            DropReason::Conflict => {
                "another transaction of the sender with the same nonce is on the best chain".into()
            }
            DropReason::Invalid { code, message } => {
                format!("no longer valid on the best chain ({code}): {message}")
            }
            DropReason::NonceGap => {
                "an earlier transaction of the sender was dropped, leaving a nonce gap".into()
            }
        }
    }
}

/// A bounded record of dropped transactions: the newest [`MAX_DROPPED_RECORDS`].
#[derive(Debug, Clone, Default)]
struct DropLog {
    reasons: HashMap<Hash, DropReason>,
    order: VecDeque<Hash>,
}

impl DropLog {
    fn record(&mut self, id: Hash, reason: DropReason) {
        if self.reasons.insert(id, reason).is_none() {
            self.order.push_back(id);
        }
        while self.order.len() > MAX_DROPPED_RECORDS {
            if let Some(old) = self.order.pop_front() {
                self.reasons.remove(&old);
            }
        }
    }
}

/// A fee rate, fee per encoded byte, compared exactly (by cross-multiplication).
#[derive(Debug, Clone, Copy)]
struct FeeRate {
    fee: u64,
    bytes: u64,
}

impl FeeRate {
    fn of(tx: &Transaction) -> FeeRate {
        FeeRate {
            fee: tx.body.fee,
            bytes: tx.encoded_len().max(1) as u64,
        }
    }
}

impl Ord for FeeRate {
    fn cmp(&self, other: &Self) -> Ordering {
        (u128::from(self.fee) * u128::from(other.bytes))
            .cmp(&(u128::from(other.fee) * u128::from(self.bytes)))
    }
}

impl PartialOrd for FeeRate {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for FeeRate {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for FeeRate {}

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
    max_txs: usize,
    max_per_sender: usize,
    min_fee: u64,
    by_id: HashMap<Hash, Entry>,
    /// Per sender, pending ids by nonce; nonces are consecutive from the sender's state nonce.
    by_sender: BTreeMap<PublicKey, BTreeMap<u64, Hash>>,
    next_seq: u64,
    dropped: DropLog,
    /// Ids evicted by admissions since the last [`Mempool::take_evicted`].
    evicted: Vec<Hash>,
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
    /// An empty pool holding at most `max_txs` transactions, `max_per_sender` of one sender.
    /// Which network's signatures it accepts is the [`AccountView`]'s business.
    pub fn new(max_txs: usize, max_per_sender: usize) -> Mempool {
        Mempool {
            max_txs: max_txs.max(1),
            max_per_sender: max_per_sender.max(1),
            min_fee: 0,
            by_id: HashMap::new(),
            by_sender: BTreeMap::new(),
            next_seq: 0,
            dropped: DropLog::default(),
            evicted: Vec::new(),
        }
    }

    /// Sets the minimum fee a new transaction must pay (0: none).
    pub fn set_min_fee(&mut self, fee: u64) {
        self.min_fee = fee;
    }

    /// The minimum fee a new transaction must pay.
    pub fn min_fee(&self) -> u64 {
        self.min_fee
    }

    /// Why `id` was dropped without being included, if it was (among the newest
    /// [`MAX_DROPPED_RECORDS`] drops).
    pub fn dropped(&self, id: &Hash) -> Option<&DropReason> {
        self.dropped.reasons.get(id)
    }

    /// Records that `id` left (or never re-entered) the pool for `reason`.
    pub fn record_drop(&mut self, id: Hash, reason: DropReason) {
        self.dropped.record(id, reason);
    }

    /// The ids that admissions evicted since the last call (to remove from the journal).
    pub fn take_evicted(&mut self) -> Vec<Hash> {
        std::mem::take(&mut self.evicted)
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

    /// The pending transactions whose id `want` accepts, in no particular order (the candidates
    /// of a compact block's rebuild).
    pub fn matching(&self, want: &mut dyn FnMut(&Hash) -> bool) -> Vec<Transaction> {
        self.by_id
            .iter()
            .filter(|(id, _)| want(id))
            .map(|(_, e)| e.tx.clone())
            .collect()
    }

    /// The nonce the sender's next transaction must carry, counting pending ones.
    pub fn pending_nonce(&self, state: &impl AccountView, a: &PublicKey) -> u64 {
        let base = state.nonce(a);
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

    /// Checks `tx` against the tip state and the pending transactions, without inserting it:
    /// the ledger's own rules on the tip state after the sender's pending transactions
    /// ([`AfterPending`]), cheap ones first and the signature last.
    pub fn check(&self, state: &impl AccountView, tx: &Transaction) -> Result<(), MempoolError> {
        let sender = tx.body.from;
        let view = AfterPending {
            tip: state,
            sender,
            nonce: self.pending_nonce(state, &sender),
            spent: self.pending_spend(&sender),
        };
        check_tx_against(&view, tx, &state.genesis_hash(), state.signature_cache())?;
        Ok(())
    }

    /// Validates and inserts a new `tx` under this node's policy: the minimum fee, the
    /// per-sender bound, and, when the pool is full, the fee-rate rule (see the module docs).
    /// Transactions it evicts are recorded and returned by [`Mempool::take_evicted`].
    pub fn insert(
        &mut self,
        state: &impl AccountView,
        tx: Transaction,
    ) -> Result<Inserted, MempoolError> {
        let id = tx.id();
        if self.by_id.contains_key(&id) {
            return Ok(Inserted::Duplicate);
        }
        if tx.body.fee < self.min_fee {
            return Err(MempoolError::FeeBelowMinimum {
                fee: tx.body.fee,
                min: self.min_fee,
            });
        }
        self.check(state, &tx)?;
        let from = tx.body.from;
        let per = self.by_sender.get(&from).map_or(0, BTreeMap::len);
        if per >= self.max_per_sender {
            return Err(MempoolError::SenderFull {
                from,
                max: self.max_per_sender,
            });
        }
        if self.by_id.len() >= self.max_txs {
            self.make_room(&tx)?;
        }
        self.insert_entry(id, tx);
        Ok(Inserted::New)
    }

    fn insert_entry(&mut self, id: Hash, tx: Transaction) {
        self.by_sender
            .entry(tx.body.from)
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
    }

    /// The cheapest transaction that can leave without a nonce gap (the last pending one of a
    /// sender other than `except`): lowest fee rate, then newest.
    fn cheapest_tail(&self, except: Option<&PublicKey>) -> Option<(FeeRate, Hash)> {
        self.by_sender
            .iter()
            .filter(|(from, _)| Some(*from) != except)
            .filter_map(|(_, m)| m.values().next_back())
            .filter_map(|id| self.by_id.get(id).map(|e| (id, e)))
            .min_by_key(|(_, e)| (FeeRate::of(&e.tx), Reverse(e.seq)))
            .map(|(id, e)| (FeeRate::of(&e.tx), *id))
    }

    /// Evicts the cheapest evictable transaction if `tx` pays a higher fee rate, else refuses.
    fn make_room(&mut self, tx: &Transaction) -> Result<(), MempoolError> {
        let Some((cheapest, victim)) = self.cheapest_tail(Some(&tx.body.from)) else {
            return Err(MempoolError::PoolFull { max: self.max_txs });
        };
        let rate = FeeRate::of(tx);
        match rate.cmp(&cheapest) {
            Ordering::Greater => {
                self.evict(&victim);
                Ok(())
            }
            Ordering::Equal => Err(MempoolError::PoolFull { max: self.max_txs }),
            Ordering::Less => Err(MempoolError::Underpriced {
                fee: rate.fee,
                bytes: rate.bytes as usize,
                cheapest_fee: cheapest.fee,
                cheapest_bytes: cheapest.bytes as usize,
            }),
        }
    }

    /// Removes a sender's last pending transaction, recording it as evicted.
    fn evict(&mut self, id: &Hash) {
        for gone in self.remove(id) {
            self.dropped.record(gone, DropReason::EvictedByFee);
            self.evicted.push(gone);
        }
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

    /// [`Mempool::revalidate_after`] with no block's transactions known (every pending
    /// transaction whose nonce is used up is taken as included).
    pub fn revalidate(&mut self, state: &impl AccountView) -> Vec<Hash> {
        self.revalidate_after(state, None)
    }

    /// Re-checks every pending transaction against a new tip state; drops those included (nonce
    /// below the sender's) or no longer valid. `included` holds the ids of the transactions of
    /// the blocks that made this tip: a used-up nonce of any other transaction is a conflict
    /// (with `None`, every used-up nonce counts as included). Each drop that is not an inclusion
    /// is recorded with its reason. Returns the dropped ids (to remove from the journal).
    pub fn revalidate_after(
        &mut self,
        state: &impl AccountView,
        included: Option<&HashSet<Hash>>,
    ) -> Vec<Hash> {
        let mut dropped = Vec::new();
        let senders: Vec<PublicKey> = self.by_sender.keys().copied().collect();
        for from in senders {
            let Some(nonces) = self.by_sender.remove(&from) else {
                continue;
            };
            let mut gap = false;
            for (_, id) in nonces {
                let Some(entry) = self.by_id.remove(&id) else {
                    continue;
                };
                if !gap {
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
                        Err(e) => {
                            // Used-up nonces are skipped; anything else breaks the run: later
                            // nonces would have a gap.
                            if let Some(reason) = classify(state, &entry.tx, &e, included) {
                                gap = !matches!(reason, DropReason::Conflict);
                                self.dropped.record(id, reason);
                            }
                        }
                    }
                } else {
                    self.dropped.record(id, DropReason::NonceGap);
                }
                dropped.push(id);
            }
        }
        dropped
    }

    /// [`Mempool::rebuild_after`] with no block's transactions known.
    pub fn rebuild(
        &mut self,
        state: &impl AccountView,
        back: Vec<Transaction>,
    ) -> (Vec<Transaction>, Vec<Hash>) {
        self.rebuild_after(state, back, None)
    }

    /// After a fork switch: re-admits the transactions of the rolled-back blocks (`back`, those
    /// still valid on the new tip) together with the pending ones, each sender's in nonce order.
    /// Neither the minimum fee nor the per-sender bound applies (these transactions were
    /// acknowledged or in a block already); over the total bound, the lowest fee rates are
    /// evicted. Every pending transaction that does not come back is recorded with its reason
    /// (`included` as in [`Mempool::revalidate_after`]). Returns the re-admitted transactions of
    /// `back` (to journal) and the previously pending ids that are gone (to remove from the
    /// journal).
    pub fn rebuild_after(
        &mut self,
        state: &impl AccountView,
        back: Vec<Transaction>,
        included: Option<&HashSet<Hash>>,
    ) -> (Vec<Transaction>, Vec<Hash>) {
        let old: Vec<Entry> = self.by_id.drain().map(|(_, e)| e).collect();
        self.by_sender.clear();
        let old_ids: Vec<Hash> = old.iter().map(|e| e.tx.id()).collect();
        let mut all: Vec<(Transaction, bool)> = back.into_iter().map(|t| (t, true)).collect();
        all.extend(old.into_iter().map(|e| (e.tx, false)));
        // Arrival order within a sender does not matter: its nonces must be consecutive.
        all.sort_by_key(|(t, _)| (t.body.from, t.body.nonce));
        let mut back_ids = Vec::new();
        let mut gap_of: Option<PublicKey> = None;
        for (t, from_block) in all {
            let id = t.id();
            if self.by_id.contains_key(&id) {
                continue;
            }
            if gap_of == Some(t.body.from) {
                if !from_block {
                    self.dropped.record(id, DropReason::NonceGap);
                }
                continue;
            }
            match self.check(state, &t) {
                Ok(()) => {
                    if from_block {
                        back_ids.push(id);
                    }
                    self.insert_entry(id, t);
                }
                Err(e) => {
                    let reason = classify(state, &t, &e, included);
                    if reason
                        .as_ref()
                        .is_some_and(|r| !matches!(r, DropReason::Conflict))
                    {
                        gap_of = Some(t.body.from);
                    }
                    if let (false, Some(r)) = (from_block, reason) {
                        self.dropped.record(id, r);
                    }
                }
            }
        }
        self.trim();
        let added = back_ids
            .iter()
            .filter_map(|id| self.by_id.get(id).map(|e| e.tx.clone()))
            .collect();
        let dropped = old_ids
            .into_iter()
            .filter(|id| !self.by_id.contains_key(id))
            .collect();
        (added, dropped)
    }

    /// Evicts the lowest fee rates (a sender's last pending transaction each time, so no nonce
    /// gap opens) until the pool is within its total bound.
    fn trim(&mut self) {
        if self.by_id.len() <= self.max_txs {
            return;
        }
        let tail = |m: &Mempool, from: &PublicKey| {
            let id = *m.by_sender.get(from)?.values().next_back()?;
            let e = m.by_id.get(&id)?;
            Some(Reverse((FeeRate::of(&e.tx), Reverse(e.seq), *from, id)))
        };
        let mut heap: BinaryHeap<_> = self
            .by_sender
            .keys()
            .filter_map(|from| tail(self, from))
            .collect();
        while self.by_id.len() > self.max_txs {
            let Some(Reverse((_, _, from, id))) = heap.pop() else {
                break;
            };
            self.evict(&id);
            heap.extend(tail(self, &from));
        }
        // Evictions here are reported by the caller's `dropped` list, not by `take_evicted`.
        self.evicted.clear();
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

    /// Encoded bytes of the pending transactions (summed on each call: for metrics scrapes).
    pub fn bytes(&self) -> u64 {
        self.by_id.values().map(|e| e.tx.encoded_len() as u64).sum()
    }

    /// Number of pending transactions of `a`.
    pub fn pending_of(&self, a: &PublicKey) -> usize {
        self.by_sender.get(a).map_or(0, BTreeMap::len)
    }
}

/// Why `tx`, which failed `e` on `state`, leaves the pool; `None` if it was included (its nonce
/// is used up and it is in `included`, or `included` is unknown).
fn classify(
    state: &impl AccountView,
    tx: &Transaction,
    e: &MempoolError,
    included: Option<&HashSet<Hash>>,
) -> Option<DropReason> {
    if tx.body.nonce < state.nonce(&tx.body.from) {
        return match included {
            Some(ids) if !ids.contains(&tx.id()) => Some(DropReason::Conflict),
            _ => None,
        };
    }
    Some(match e {
        MempoolError::Tx(TxError::BadNonce { expected, got, .. }) if got > expected => {
            DropReason::NonceGap
        }
        e => DropReason::Invalid {
            code: e.code().to_string(),
            message: e.to_string(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use pp_ledger::{KeyPair, TxBody};

    /// Accounts set by hand; the rules, signatures included, are the ledger's.
    #[derive(Default)]
    struct View {
        balance: HashMap<PublicKey, u64>,
        stake: HashMap<PublicKey, u64>,
        nonce: HashMap<PublicKey, u64>,
        ids: HashMap<String, PublicKey>,
        sigs: SignatureCache,
    }

    impl Accounts for View {
        fn balance(&self, a: &PublicKey) -> u64 {
            self.balance.get(a).copied().unwrap_or(0)
        }
        fn nonce(&self, a: &PublicKey) -> u64 {
            self.nonce.get(a).copied().unwrap_or(0)
        }
        fn stake(&self, a: &PublicKey) -> u64 {
            self.stake.get(a).copied().unwrap_or(0)
        }
        fn stakeholder_id(&self, a: &PublicKey) -> Option<&str> {
            self.ids
                .iter()
                .find(|(_, k)| *k == a)
                .map(|(id, _)| id.as_str())
        }
        fn stakeholder_key(&self, id: &str) -> Option<PublicKey> {
            self.ids.get(id).copied()
        }
        fn praos(&self) -> bool {
            false
        }
        fn vrf_key(&self, _: &PublicKey) -> Option<PublicKey> {
            None
        }
        fn vrf_owner(&self, _: &PublicKey) -> Option<PublicKey> {
            None
        }
    }

    impl AccountView for View {
        fn genesis_hash(&self) -> Hash {
            G
        }
        fn signature_cache(&self) -> &SignatureCache {
            &self.sigs
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
        let mut m = Mempool::new(100, 10);
        assert_eq!(m.insert(&v, pay(&a, 10, 0)), Ok(Inserted::New));
        assert_eq!(m.insert(&v, pay(&a, 10, 1)), Ok(Inserted::New));
        assert_eq!(
            m.insert(&v, pay(&a, 10, 3)),
            Err(MempoolError::Tx(TxError::BadNonce {
                account: a.public(),
                expected: 2,
                got: 3
            }))
        );
        assert_eq!(m.pending_nonce(&v, &a.public()), 2);
        assert_eq!(m.insert(&v, pay(&a, 10, 1)), Ok(Inserted::Duplicate));
    }

    #[test]
    fn balance_counts_pending_spends() {
        let a = key(1);
        let v = view_with(&a, 25);
        let mut m = Mempool::new(100, 10);
        m.insert(&v, pay(&a, 10, 0)).unwrap();
        m.insert(&v, pay(&a, 10, 1)).unwrap();
        let err = m.insert(&v, pay(&a, 10, 2)).unwrap_err();
        assert_eq!(
            err,
            MempoolError::Tx(TxError::InsufficientBalance {
                account: a.public(),
                available: 3,
                needed: 11
            })
        );
        assert_eq!(err.code(), "insufficient_balance");
    }

    #[test]
    fn rejects_bad_signature_and_zero_amount() {
        let a = key(1);
        let v = view_with(&a, 100);
        let mut m = Mempool::new(100, 10);
        let mut t = pay(&a, 10, 0);
        t.signature.0[0] ^= 1;
        assert!(matches!(
            m.insert(&v, t),
            Err(MempoolError::Tx(TxError::BadSignature(_)))
        ));
        let other_net = Transaction::transfer(&a, key(2).public(), 1, 0, 0, &Hash::ZERO);
        assert!(matches!(
            m.insert(&v, other_net),
            Err(MempoolError::Tx(TxError::BadSignature(_)))
        ));
        assert_eq!(
            m.insert(&v, pay(&a, 0, 0)),
            Err(MempoolError::Tx(TxError::ZeroAmount))
        );
    }

    #[test]
    fn unbond_needs_stake_after_pending_unbonds() {
        let a = key(1);
        let mut v = view_with(&a, 10);
        v.stake.insert(a.public(), 5);
        let mut m = Mempool::new(100, 10);
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
            Err(MempoolError::Tx(TxError::InsufficientStake {
                available: 1,
                needed: 2,
                ..
            }))
        ));
    }

    #[test]
    fn every_ledger_rule_applies_behind_pending_transactions() {
        // The pool once checked the ledger's own rules only for a sender's very next
        // transaction: a bond queued behind a transfer could name a taken stakeholder id and
        // be acknowledged, then fail in every block.
        let (a, b) = (key(1), key(2));
        let mut v = view_with(&a, 100);
        v.ids.insert("bob".into(), b.public());
        let mut m = Mempool::new(100, 10);
        m.insert(&v, pay(&a, 10, 0)).unwrap();
        let bond = |id: &str| {
            TxBody {
                kind: TxKind::Bond {
                    stakeholder_id: id.into(),
                    vrf_key: None,
                },
                from: a.public(),
                amount: 5,
                fee: 1,
                nonce: 1,
            }
            .sign(&a, &G)
        };
        let err = m.insert(&v, bond("bob")).unwrap_err();
        assert_eq!(
            err,
            MempoolError::Tx(TxError::StakeholderIdTaken {
                id: "bob".into(),
                owner: b.public()
            })
        );
        assert_eq!(err.code(), "stakeholder_id_taken");
        assert_eq!(m.insert(&v, bond("alice")), Ok(Inserted::New));
        // And behind two pending transactions the balance they leave is what counts.
        let err = m.insert(&v, pay(&a, 83, 2)).unwrap_err();
        assert_eq!(
            err,
            MempoolError::Tx(TxError::InsufficientBalance {
                account: a.public(),
                needed: 84,
                available: 100 - 11 - 6
            })
        );
    }

    #[test]
    fn enforces_total_and_per_sender_bounds() {
        let a = key(1);
        let b = key(2);
        let mut v = view_with(&a, 100);
        v.balance.insert(b.public(), 100);
        let mut m = Mempool::new(3, 2);
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
        let mut m = Mempool::new(100, 10);
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
        let mut m = Mempool::new(100, 10);
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
        let mut m = Mempool::new(100, 10);
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
        let mut m = Mempool::new(100, 10);
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
        let mut m = Mempool::new(100, 10);
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

    fn pay_fee(from: &KeyPair, fee: u64, nonce: u64) -> Transaction {
        Transaction::transfer(from, key(99).public(), 1, fee, nonce, &G)
    }

    #[test]
    fn fork_switch_over_the_per_sender_bound_keeps_every_acknowledged_transaction() {
        let a = key(1);
        let mut v = view_with(&a, 1_000);
        let mut m = Mempool::new(100, 3);
        let t: Vec<_> = (0..5).map(|n| pay(&a, 10, n)).collect();
        // t0, t1 are in our best block; t2..t4 were acknowledged on top (the sender's bound).
        v.nonce.insert(a.public(), 2);
        for x in &t[2..] {
            assert_eq!(m.insert(&v, x.clone()), Ok(Inserted::New));
        }
        // A fork switch abandons that block: t0, t1 come back in front of t2..t4.
        v.nonce.insert(a.public(), 0);
        let (added, dropped) = m.rebuild_after(&v, t[..2].to_vec(), Some(&HashSet::new()));
        assert_eq!(added, t[..2].to_vec());
        assert_eq!(
            dropped,
            Vec::<Hash>::new(),
            "acknowledged transactions were dropped"
        );
        assert_eq!(m.len(), 5);
        // The sender's queue is over its bound until it drains: no newcomer meanwhile.
        assert!(matches!(
            m.insert(&v, pay(&a, 10, 5)),
            Err(MempoolError::SenderFull { .. })
        ));
    }

    #[test]
    fn fork_switch_over_the_total_bound_evicts_the_lowest_fee_rates_and_says_so() {
        let (a, b) = (key(1), key(2));
        let mut v = view_with(&a, 1_000);
        v.balance.insert(b.public(), 1_000);
        let mut m = Mempool::new(3, 10);
        // Pending: b's two cheap ones and a's nonce 1 (nonce 0 is in our block).
        v.nonce.insert(a.public(), 1);
        let a1 = pay_fee(&a, 9, 1);
        let (b0, b1) = (pay_fee(&b, 2, 0), pay_fee(&b, 1, 1));
        for x in [&a1, &b0, &b1] {
            m.insert(&v, x.clone()).unwrap();
        }
        v.nonce.insert(a.public(), 0);
        let a0 = pay_fee(&a, 9, 0);
        let (added, dropped) = m.rebuild_after(&v, vec![a0.clone()], Some(&HashSet::new()));
        assert_eq!(added, vec![a0]);
        // Four for three places: b's last (lowest fee rate) goes, recorded as evicted.
        assert_eq!(dropped, vec![b1.id()]);
        assert_eq!(m.dropped(&b1.id()), Some(&DropReason::EvictedByFee));
        assert!(m.contains(&a1.id()) && m.contains(&b0.id()));
    }

    #[test]
    fn a_pending_transaction_whose_nonce_another_one_used_is_reported_as_a_conflict() {
        let a = key(1);
        let mut v = view_with(&a, 1_000);
        let mut m = Mempool::new(100, 10);
        let mine = pay(&a, 10, 0);
        let later = pay(&a, 10, 1);
        m.insert(&v, mine.clone()).unwrap();
        m.insert(&v, later.clone()).unwrap();
        // A block holds another transaction with nonce 0 (and, say, nonce 1 is now unaffordable).
        let other = pay(&a, 11, 0);
        v.nonce.insert(a.public(), 1);
        v.balance.insert(a.public(), 5);
        let included: HashSet<Hash> = [other.id()].into();
        let dropped = m.revalidate_after(&v, Some(&included));
        assert_eq!(dropped, vec![mine.id(), later.id()]);
        assert_eq!(m.dropped(&mine.id()), Some(&DropReason::Conflict));
        assert_eq!(
            m.dropped(&later.id()).map(DropReason::code),
            Some("invalid")
        );
        // An included one is not a drop.
        let mut m = Mempool::new(100, 10);
        v.nonce.insert(a.public(), 0);
        v.balance.insert(a.public(), 1_000);
        m.insert(&v, mine.clone()).unwrap();
        v.nonce.insert(a.public(), 1);
        let included: HashSet<Hash> = [mine.id()].into();
        assert_eq!(m.revalidate_after(&v, Some(&included)), vec![mine.id()]);
        assert_eq!(m.dropped(&mine.id()), None);
    }

    #[test]
    fn zero_fee_spam_is_refused_below_the_minimum_fee() {
        let a = key(1);
        let v = view_with(&a, 1_000);
        let mut m = Mempool::new(100, 10);
        m.set_min_fee(1);
        let err = m.insert(&v, pay_fee(&a, 0, 0)).unwrap_err();
        assert_eq!(err, MempoolError::FeeBelowMinimum { fee: 0, min: 1 });
        assert_eq!(err.code(), "fee_below_minimum");
        assert_eq!(m.insert(&v, pay_fee(&a, 1, 0)), Ok(Inserted::New));
    }

    #[test]
    fn a_full_pool_evicts_the_cheapest_for_a_better_fee_rate_and_refuses_a_cheaper_one() {
        let keys: Vec<KeyPair> = (1..=5).map(key).collect();
        let mut v = View::default();
        for k in &keys {
            v.balance.insert(k.public(), 1_000);
        }
        let mut m = Mempool::new(3, 10);
        // Zero-fee spam fills the pool (a node with no minimum fee).
        for k in &keys[..3] {
            m.insert(&v, pay_fee(k, 0, 0)).unwrap();
        }
        let spam_ids: Vec<Hash> = keys[..3].iter().map(|k| pay_fee(k, 0, 0).id()).collect();
        // Equal fee rate: nothing to gain, refused.
        assert_eq!(
            m.insert(&v, pay_fee(&keys[3], 0, 0)),
            Err(MempoolError::PoolFull { max: 3 })
        );
        // A paying transaction takes the place of the newest spam.
        let honest = pay_fee(&keys[3], 5, 0);
        assert_eq!(m.insert(&v, honest.clone()), Ok(Inserted::New));
        assert_eq!(m.take_evicted(), vec![spam_ids[2]]);
        assert_eq!(m.dropped(&spam_ids[2]), Some(&DropReason::EvictedByFee));
        assert!(m.contains(&honest.id()));
        assert_eq!(m.len(), 3);
        // Once only paying transactions are left, a cheaper one is refused with the reason.
        m.insert(&v, pay_fee(&keys[2], 6, 0)).unwrap();
        m.insert(&v, pay_fee(&keys[4], 7, 0)).unwrap();
        assert!(m.dropped(&spam_ids[0]).is_some() && m.dropped(&spam_ids[1]).is_some());
        let err = m.insert(&v, pay_fee(&keys[0], 4, 0)).unwrap_err();
        assert!(
            matches!(
                err,
                MempoolError::Underpriced {
                    fee: 4,
                    cheapest_fee: 5,
                    ..
                }
            ),
            "{err}"
        );
        assert_eq!(err.code(), "fee_too_low");
    }
}
