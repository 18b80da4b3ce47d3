//! Submitting the load: workers that each own some accounts, sign transfers with locally kept
//! nonces, and submit at the paced rate.
//!
//! An account is owned by exactly one worker, so at most one request per account is in flight
//! and its nonces reach the node in order; the number of workers bounds the requests in flight.
//! After any refusal the worker resyncs the account's nonce from the node (`pending_nonce`). If
//! the node's pending nonce is then *below* the next nonce after the account's last acknowledged
//! transaction, an acknowledged transaction has left the node without being included (counted as
//! a nonce regression), and the account's later transfers change their amount so that they never
//! reuse the id of the lost one.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pp_ledger::{Hash, KeyPair, PublicKey, Transaction};

use super::api::{Api, BatchAnswer, Outcome};

/// Pause after a refusal that says the node is full or did not answer, so that a saturated node
/// is not hammered by an idle loop.
const BACKOFF: Duration = Duration::from_millis(50);

/// An acknowledged (`202`) transaction.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ack {
    pub(crate) submitted_at: Instant,
    pub(crate) from: PublicKey,
    pub(crate) nonce: u64,
}

/// What the workers did, shared by all of them and read by the reporting code.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    pub(crate) submitted: AtomicU64,
    pub(crate) accepted: AtomicU64,
    pub(crate) rejected_total: AtomicU64,
    pub(crate) nonce_regressions: AtomicU64,
    pub(crate) resync_failures: AtomicU64,
    pub(crate) rejected: Mutex<BTreeMap<String, u64>>,
    pub(crate) acks: Mutex<HashMap<Hash, Ack>>,
}

impl Tally {
    fn reject(&self, code: &str) {
        self.rejected_total.fetch_add(1, Ordering::Relaxed);
        let mut r = self.rejected.lock().unwrap_or_else(|e| e.into_inner());
        *r.entry(code.to_string()).or_default() += 1;
    }

    fn accept(&self, tx: &Transaction, submitted_at: Instant) {
        self.accepted.fetch_add(1, Ordering::Relaxed);
        let ack = Ack {
            submitted_at,
            from: tx.body.from,
            nonce: tx.body.nonce,
        };
        let mut acks = self.acks.lock().unwrap_or_else(|e| e.into_inner());
        acks.insert(tx.id(), ack);
    }
}

/// Whether the node takes `POST /transactions` with a JSON array.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BatchForm {
    /// `--batch 1`: never tried.
    Unused,
    /// Not known yet.
    Untried,
    /// The node answered an array per transaction.
    Supported,
    /// The node refused the array form; one transaction per request.
    Unsupported,
}

impl BatchForm {
    fn from_u8(v: u8) -> BatchForm {
        match v {
            0 => BatchForm::Unused,
            1 => BatchForm::Untried,
            2 => BatchForm::Supported,
            _ => BatchForm::Unsupported,
        }
    }

    /// The name used in the report.
    pub(crate) fn name(self) -> &'static str {
        match self {
            BatchForm::Unused => "unused",
            BatchForm::Untried => "untried",
            BatchForm::Supported => "supported",
            BatchForm::Unsupported => "unsupported",
        }
    }
}

/// When the next request may go: spaced for `rate` transactions per second (0 = no spacing),
/// and never after `end`.
#[derive(Debug)]
pub(crate) struct Pace {
    start: Instant,
    end: Instant,
    rate: u64,
    issued: AtomicU64,
}

impl Pace {
    pub(crate) fn new(start: Instant, end: Instant, rate: u64) -> Pace {
        Pace {
            start,
            end,
            rate,
            issued: AtomicU64::new(0),
        }
    }

    /// Waits for the turn of the next `n` transactions; `false` once the load is over.
    async fn turn(&self, n: u64) -> bool {
        if self.rate > 0 {
            let k = self.issued.fetch_add(n, Ordering::Relaxed);
            let at = self.start + Duration::from_secs_f64(k as f64 / self.rate as f64);
            if at >= self.end {
                return false;
            }
            tokio::time::sleep_until(at.into()).await;
        }
        Instant::now() < self.end
    }
}

/// What every worker shares.
pub(crate) struct LoadCtx {
    pub(crate) api: Api,
    pub(crate) genesis: Hash,
    pub(crate) fee: u64,
    pub(crate) batch: usize,
    pub(crate) pace: Pace,
    pub(crate) tally: Arc<Tally>,
    /// The accounts' public keys: account `i` pays account `i + 1`.
    pub(crate) recipients: Vec<PublicKey>,
    batch_form: AtomicU8,
}

impl LoadCtx {
    pub(crate) fn new(
        api: Api,
        genesis: Hash,
        fee: u64,
        batch: usize,
        pace: Pace,
        tally: Arc<Tally>,
        recipients: Vec<PublicKey>,
    ) -> LoadCtx {
        let form = if batch > 1 {
            BatchForm::Untried
        } else {
            BatchForm::Unused
        };
        LoadCtx {
            api,
            genesis,
            fee,
            batch,
            pace,
            tally,
            recipients,
            batch_form: AtomicU8::new(form as u8),
        }
    }

    /// What was learnt about the array form.
    pub(crate) fn batch_form(&self) -> BatchForm {
        BatchForm::from_u8(self.batch_form.load(Ordering::Relaxed))
    }
}

/// One load account as its worker sees it.
pub(crate) struct Sender {
    index: usize,
    key: KeyPair,
    /// The nonce of the next transfer.
    next_nonce: u64,
    /// One past the nonce of the last acknowledged transfer.
    acked_until: u64,
    /// Bumped at each nonce regression; part of the amount, so ids are never reused.
    generation: u64,
}

impl Sender {
    /// Account `index`, with nonce 0 (freshly funded).
    pub(crate) fn new(index: usize, key: KeyPair) -> Sender {
        Sender {
            index,
            key,
            next_nonce: 0,
            acked_until: 0,
            generation: 0,
        }
    }

    fn build(&mut self, ctx: &LoadCtx, n: usize) -> Vec<Transaction> {
        let to = ctx.recipients[(self.index + 1) % ctx.recipients.len()];
        (0..n)
            .map(|_| {
                let amount = 1 + self.generation;
                let tx = Transaction::transfer(
                    &self.key,
                    to,
                    amount,
                    ctx.fee,
                    self.next_nonce,
                    &ctx.genesis,
                );
                self.next_nonce += 1;
                tx
            })
            .collect()
    }

    /// Takes the node's pending nonce as the next one.
    async fn resync(&mut self, ctx: &LoadCtx) {
        match ctx.api.account(&self.key.public()).await {
            Ok(a) => {
                if a.pending_nonce < self.acked_until {
                    ctx.tally.nonce_regressions.fetch_add(1, Ordering::Relaxed);
                    self.generation += 1;
                }
                self.next_nonce = a.pending_nonce;
            }
            Err(_) => {
                ctx.tally.resync_failures.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(BACKOFF).await;
            }
        }
    }
}

/// Submits transfers from `senders`, in turn, until the load is over.
pub(crate) async fn worker(ctx: Arc<LoadCtx>, mut senders: Vec<Sender>) {
    let n = ctx.batch;
    // Bounded by the pace's end: `turn` returns false once it has passed.
    for round in 0usize.. {
        if senders.is_empty() || !ctx.pace.turn(n as u64).await {
            return;
        }
        let len = senders.len();
        let sender = &mut senders[round % len];
        let txs = sender.build(&ctx, n);
        let submitted_at = Instant::now();
        let outcomes = submit(&ctx, &txs).await;
        ctx.tally
            .submitted
            .fetch_add(outcomes.len() as u64, Ordering::Relaxed);
        let mut refused: Option<String> = None;
        for (tx, outcome) in txs.iter().zip(&outcomes) {
            match outcome {
                Outcome::Accepted => {
                    ctx.tally.accept(tx, submitted_at);
                    sender.acked_until = sender.acked_until.max(tx.body.nonce + 1);
                }
                // A batch is one sender's consecutive nonces, judged in order: behind a refused
                // one, the later nonces are a gap the node must refuse (`bad_nonce`). That is the
                // consequence of the first refusal, not a nonce the node lost, so it is counted
                // apart (the one-by-one path does not even send them).
                Outcome::Rejected(code) if refused.is_some() && code == "bad_nonce" => {
                    ctx.tally.reject("bad_nonce_behind_refused");
                }
                Outcome::Rejected(code) => {
                    ctx.tally.reject(code);
                    refused.get_or_insert_with(|| code.clone());
                }
            }
        }
        if let Some(code) = refused {
            if code.ends_with("mempool_full")
                || code.starts_with("transport")
                || code.starts_with("http_")
            {
                tokio::time::sleep(BACKOFF).await;
            }
            sender.resync(&ctx).await;
        }
    }
}

/// Submits `txs` as one array if the node takes arrays (or it is not known yet), else one by one
/// up to the first refusal. Returns the outcomes of the transactions sent, in order.
async fn submit(ctx: &LoadCtx, txs: &[Transaction]) -> Vec<Outcome> {
    let form = ctx.batch_form();
    if txs.len() > 1 && matches!(form, BatchForm::Untried | BatchForm::Supported) {
        match ctx.api.submit_batch(txs).await {
            BatchAnswer::PerTransaction(outcomes) => {
                let _ = ctx.batch_form.compare_exchange(
                    BatchForm::Untried as u8,
                    BatchForm::Supported as u8,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                );
                return outcomes;
            }
            BatchAnswer::Unsupported(code) if form == BatchForm::Untried => {
                let was = ctx
                    .batch_form
                    .swap(BatchForm::Unsupported as u8, Ordering::Relaxed);
                if was == BatchForm::Untried as u8 {
                    eprintln!(
                        "bench: {} refused a JSON array ({code}); one transaction per request",
                        ctx.api.base()
                    );
                }
            }
            BatchAnswer::Unsupported(code) => return vec![Outcome::Rejected(code); txs.len()],
        }
    }
    let mut out = Vec::with_capacity(txs.len());
    for tx in txs {
        let o = ctx.api.submit(tx).await;
        let refused = o != Outcome::Accepted;
        out.push(o);
        if refused {
            // The later nonces cannot be admitted after a gap: they are not sent (the caller
            // resyncs the nonce and builds them again).
            break;
        }
    }
    out
}
