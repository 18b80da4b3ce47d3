//! The sync engine: one task that owns every piece of sync state (peers' proofs, the target
//! header chain, requests in flight, blocks waiting for their turn) and reacts to hints, answers,
//! pipeline outcomes and a periodic tick. Nothing here holds a lock across an `.await`; every
//! request is bounded in time and every buffer in size.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::stream::{FuturesUnordered, StreamExt as _};
use pp_ledger::{Block, BlockHeader, ChainError, Hash, PublicKey, SignedHeader};
use pp_net::message::MAX_LOCATOR_LEN;
use pp_net::{Misbehaviour, NetError, PeerId};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::headers::{check_headers, Anchor, HeaderError};
use super::pipeline::{self, Batch, Done};
use super::Progress;
use crate::blocking::Blocking;
use crate::net::PeerNet;
use crate::node::block_offence;
use crate::node::{Core, SyncRequest, MAX_SERVE_HEADERS};
use crate::tasks::stopped;

/// Most `get_headers` requests in flight at once (each to a different peer).
pub(crate) const MAX_HEADER_PEERS: usize = 4;
/// A peer that claims more than we hold answers `get_headers` within this, or is scored and
/// rotated out.
pub(crate) const HEADERS_DEADLINE: Duration = Duration::from_secs(5);
/// A peer answers each `get_blocks` within this, or the range goes to another peer and it is
/// scored and rotated out.
pub(crate) const BLOCKS_DEADLINE: Duration = Duration::from_secs(8);
/// `get_blocks` requests in flight per peer.
pub(crate) const WINDOW_PER_PEER: usize = 2;
/// Most blocks requested or waiting beyond the last one handed to the pipeline.
pub(crate) const MAX_AHEAD: u64 = 256;
/// Most blocks per batch handed to the pipeline.
pub(crate) const PIPELINE_BATCH: usize = 32;
/// Most verified headers held beyond our height.
pub(crate) const MAX_TARGET_AHEAD: usize = 2 * MAX_SERVE_HEADERS as usize;
/// The range the pipeline waits on is also asked of another source once its request has been
/// out this long (the first answer wins; the stalled peer still meets its deadline).
pub(crate) const HEDGE_AFTER: Duration = Duration::from_secs(2);
/// How long a peer that stalled or lied stays out of sync the first time; each further offence
/// of the same key (within [`ROTATED_OUT_MAX`] of the end of its last rotation) doubles it, up
/// to [`ROTATED_OUT_MAX`]. Short at first because an honest peer can miss a deadline (our own
/// CPU pool, starved by other work on the machine, decoded its answer late), and a node whose
/// only source is rotated out does not sync at all meanwhile: a 10-minute first rotation once
/// kept a node at height 0 next to a peer 1,000 blocks ahead. A liar is asked again after
/// 30 s, 60 s, 120 s, …: one request each time, every 10 minutes once it has offended 6 times.
pub(crate) const ROTATED_OUT_FIRST: Duration = Duration::from_secs(30);
/// The longest rotation, and how long an offence is remembered after its rotation ended.
pub(crate) const ROTATED_OUT_MAX: Duration = Duration::from_secs(600);
/// A peer is asked for headers again at most this often (unless it announces more).
pub(crate) const ASK_AGAIN_AFTER: Duration = Duration::from_secs(2);
/// How often the engine looks at the peers when nothing else happens.
pub(crate) const TICK: Duration = Duration::from_millis(500);
/// Progress is logged at most this often.
pub(crate) const LOG_EVERY: Duration = Duration::from_secs(5);

/// How many more times a deadline on a peer's answer runs again when it passes while a frame
/// of that peer waits for our own blocking pool to decode it ([`within_deadline`]).
pub(crate) const DEADLINE_EXTENSIONS: u32 = 3;

/// Waits for `answer` from `peer` at most `deadline`, or `Err(())`. A deadline that passes
/// while a frame the peer delivered waits for this node's blocking pool to decode it (a large
/// `headers` or `blocks` answer, with the pool starved by other work on the machine) runs
/// again, up to [`DEADLINE_EXTENSIONS`] times: the delay is ours, and scoring the peer for it
/// rotated honest peers out of sync (docs/testing.md, session 14).
async fn within_deadline<T>(
    net: &dyn PeerNet,
    peer: PeerId,
    deadline: Duration,
    answer: impl std::future::Future<Output = T>,
) -> Result<T, ()> {
    let mut answer = std::pin::pin!(answer);
    for _ in 0..=DEADLINE_EXTENSIONS {
        if let Ok(r) = tokio::time::timeout(deadline, &mut answer).await {
            return Ok(r);
        }
        if !net.decoding_from(peer) {
            break;
        }
    }
    Err(())
}

/// What the engine knows of one connected peer.
#[derive(Debug)]
struct Peer {
    key: PublicKey,
    /// The best block index it claimed (a hint, never trusted).
    claimed: u64,
    /// Highest target index its verified headers cover (it can serve blocks up to there).
    proven: Option<u64>,
    asking_headers: bool,
    asked_at: Option<Instant>,
    /// Its claim when last asked: a higher claim since is worth asking about at once.
    asked_claim: u64,
    blocks_in_flight: usize,
}

/// The best verified header chain past our chain: `base` is a block the node holds, `headers`
/// extend it one by one.
#[derive(Debug, Default)]
struct Target {
    base: Option<Anchor>,
    headers: Vec<BlockHeader>,
    hashes: Vec<Hash>,
}

impl Target {
    fn first(&self) -> u64 {
        self.base.map_or(0, |b| b.index.saturating_add(1))
    }

    fn end(&self) -> Option<u64> {
        self.headers.last().map(|h| h.index)
    }

    fn hash_at(&self, index: u64) -> Option<Hash> {
        let i = usize::try_from(index.checked_sub(self.first())?).ok()?;
        self.hashes.get(i).copied()
    }

    /// The anchor for headers whose parent is `hash`, if it is the base or in the target.
    fn anchor_of(&self, hash: &Hash) -> Option<Anchor> {
        if self.base.is_some_and(|b| b.hash == *hash) {
            return self.base;
        }
        let i = self.hashes.iter().position(|h| h == hash)?;
        Some(Anchor {
            index: self.headers[i].index,
            hash: *hash,
            slot: self.headers[i].slot,
        })
    }

    /// Drops the headers from `index` on.
    fn truncate_from(&mut self, index: u64) {
        let keep = usize::try_from(index.saturating_sub(self.first())).unwrap_or(usize::MAX);
        self.headers.truncate(keep);
        self.hashes.truncate(keep);
    }

    /// Drops the headers up to `index` (now held by the chain); `index` becomes the base.
    fn advance_base(&mut self, index: u64) {
        let Some(i) = index
            .checked_sub(self.first())
            .and_then(|d| usize::try_from(d).ok())
        else {
            return;
        };
        if i >= self.headers.len() {
            return;
        }
        self.base = Some(Anchor {
            index,
            hash: self.hashes[i],
            slot: self.headers[i].slot,
        });
        self.headers.drain(..=i);
        self.hashes.drain(..=i);
    }
}

/// True if `e` says only that the connection ended (closed, reset, replaced by another
/// connection to the same node that the tie-break prefers, or our network shutting down),
/// not that the peer failed to answer. Such a failure is not held against the peer: rotation
/// is by identity key, and the same node is often connected again already (a restarted node
/// and its peers dial each other at once and keep one connection of each pair), so rotating
/// the key out would shut an honest node out of sync for [`ROTATED_OUT_FIRST`] or more. A sync that
/// rotated out every peer that way once stopped for good while they kept announcing blocks.
/// (A peer that stays connected and does not answer still meets [`HEADERS_DEADLINE`].)
fn connection_ended(e: &NetError) -> bool {
    matches!(
        e,
        NetError::PeerGone(_) | NetError::Io(_) | NetError::Shutdown
    )
}

/// A key rotated out of sync: until when, and how many earlier offences it had then.
#[derive(Debug, Clone, Copy)]
struct Rotation {
    until: Instant,
    strikes: u32,
}

/// How long a key with `strikes` remembered earlier offences is rotated out:
/// [`ROTATED_OUT_FIRST`] × 2^strikes, at most [`ROTATED_OUT_MAX`].
fn rotation_for(strikes: u32) -> Duration {
    ROTATED_OUT_FIRST
        .saturating_mul(1u32.checked_shl(strikes).unwrap_or(u32::MAX))
        .min(ROTATED_OUT_MAX)
}

type HeadersAnswer = (PeerId, Result<Result<Vec<SignedHeader>, NetError>, ()>);

/// A `get_blocks` answer: the generation and range it was for, and the result (`Err(())`: the
/// deadline passed).
struct BlocksAnswer {
    peer: PeerId,
    generation: u64,
    from: u64,
    count: u64,
    result: Result<Result<Vec<Block>, NetError>, ()>,
}

struct Engine {
    core: Arc<Core>,
    net: Arc<dyn PeerNet>,
    peers: BTreeMap<PeerId, Peer>,
    rotated_out: BTreeMap<PublicKey, Rotation>,
    target: Target,
    /// Bumped whenever the target changes below what was requested: older answers are stale.
    generation: u64,
    /// Lowest index never requested in this generation.
    next_fetch: u64,
    /// Ranges to request again (their request stalled or was cut short), as `(from, count)`.
    retry: VecDeque<(u64, u64)>,
    /// `get_blocks` requests out in this generation, by first index: count, peer, sent at,
    /// and whether a second source was asked too.
    outstanding: BTreeMap<u64, (u64, PeerId, Instant, bool)>,
    /// Blocks that arrived, by index, with the peer that sent each.
    received: BTreeMap<u64, (Block, PeerId)>,
    /// Next index to hand to the pipeline.
    next_send: u64,
    headers_in_flight: FuturesUnordered<BoxFuture<'static, HeadersAnswer>>,
    blocks_in_flight: FuturesUnordered<BoxFuture<'static, BlocksAnswer>>,
    to_pipeline: mpsc::Sender<Batch>,
    /// The last block committed by sync, announced once the target is reached.
    last_committed: Option<Block>,
    log: ProgressLog,
}

/// Rate-limited progress lines.
struct ProgressLog {
    start_height: Option<u64>,
    last_at: Instant,
    last_height: u64,
}

/// Runs the sync engine until `shutdown`. `requests` are hints (a peer may have more);
/// verification runs on `pool`.
pub(crate) async fn run(
    core: Arc<Core>,
    mut requests: mpsc::Receiver<SyncRequest>,
    pool: Arc<dyn Blocking>,
    mut shutdown: watch::Receiver<bool>,
) {
    // Without P2P the network is a no-op one: no peer ever claims a longer chain.
    let net = core.net().clone();
    let parallelism = std::thread::available_parallelism().map_or(1, usize::from);
    let (to_pipeline, mut done) = pipeline::start(core.clone(), pool, parallelism);
    let height = core.chain().height();
    let mut e = Engine {
        core,
        net,
        peers: BTreeMap::new(),
        rotated_out: BTreeMap::new(),
        target: Target::default(),
        generation: 0,
        next_fetch: 0,
        retry: VecDeque::new(),
        outstanding: BTreeMap::new(),
        received: BTreeMap::new(),
        next_send: 0,
        headers_in_flight: FuturesUnordered::new(),
        blocks_in_flight: FuturesUnordered::new(),
        to_pipeline,
        last_committed: None,
        log: ProgressLog {
            start_height: None,
            last_at: Instant::now(),
            last_height: height,
        },
    };
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        // `biased`: branches are polled in this order, not from a random start (tokio's
        // per-process RNG), so a simulation replays the same run for the same seed. Pipeline
        // outcomes come first (they free room for more), hints last (they only wake us up).
        tokio::select! {
            biased;
            _ = stopped(&mut shutdown) => break,
            d = done.recv() => match d {
                Some(d) => if !e.on_done(d) { break },
                None => break,
            },
            Some(a) = e.blocks_in_flight.next(), if !e.blocks_in_flight.is_empty() => e.on_blocks(a),
            Some(a) = e.headers_in_flight.next(), if !e.headers_in_flight.is_empty() => e.on_headers(a),
            _ = tick.tick() => e.refresh_peers(),
            r = requests.recv() => match r {
                Some(r) => e.hint(r),
                None => break,
            },
        }
        e.step();
    }
    e.core.sync_status().set(None);
}

impl Engine {
    /// The published height: the engine runs on a runtime worker and must not wait for the
    /// chain lock that the pipeline's imports hold on the CPU pool.
    fn height(&self) -> u64 {
        self.core.height()
    }

    fn is_rotated_out(&self, key: &PublicKey) -> bool {
        self.rotated_out
            .get(key)
            .is_some_and(|r| Instant::now() < r.until)
    }

    /// Scores `offence` against `peer` and keeps its key out of sync for
    /// [`ROTATED_OUT_FIRST`], doubled for each earlier offence still remembered.
    fn rotate_out(&mut self, peer: PeerId, offence: Option<Misbehaviour>, reason: &str) {
        if let Some(offence) = offence {
            self.net.penalize(peer, offence, reason);
        }
        if let Some(p) = self.peers.get_mut(&peer) {
            p.proven = None;
            let now = Instant::now();
            let strikes = self
                .rotated_out
                .get(&p.key)
                .filter(|r| now < r.until + ROTATED_OUT_MAX)
                .map_or(0, |r| r.strikes.saturating_add(1));
            let for_ = rotation_for(strikes);
            tracing::info!(%peer, %reason, out_for_s = for_.as_secs(), "peer rotated out of sync");
            self.rotated_out.insert(
                p.key,
                Rotation {
                    until: now + for_,
                    strikes,
                },
            );
        }
    }

    fn hint(&mut self, r: SyncRequest) {
        if !self.peers.contains_key(&r.peer) {
            self.refresh_peers();
        }
        if let Some(p) = self.peers.get_mut(&r.peer) {
            p.claimed = p.claimed.max(r.tip_index);
        }
    }

    /// Takes the connected peers and their claims from the network; forgets those gone.
    fn refresh_peers(&mut self) {
        let now = Instant::now();
        // Offences are remembered for ROTATED_OUT_MAX after their rotation ends.
        self.rotated_out
            .retain(|_, r| now < r.until + ROTATED_OUT_MAX);
        let infos = self.net.peers();
        let live: BTreeSet<PeerId> = infos.iter().map(|i| i.id).collect();
        self.peers.retain(|id, _| live.contains(id));
        for i in infos {
            let p = self.peers.entry(i.id).or_insert(Peer {
                key: i.key,
                claimed: 0,
                proven: None,
                asking_headers: false,
                asked_at: None,
                asked_claim: 0,
                blocks_in_flight: 0,
            });
            p.claimed = p.claimed.max(i.tip_index);
        }
    }

    /// The highest index we hold or have verified headers for.
    fn best_known(&self) -> u64 {
        self.height().max(self.target.end().unwrap_or(0))
    }

    /// After every event: ask for headers, request blocks, feed the pipeline, report.
    fn step(&mut self) {
        self.trim_held();
        self.ask_headers();
        self.request_blocks();
        self.hedge();
        self.feed_pipeline();
        self.report();
    }

    fn ask_headers(&mut self) {
        let best = self.best_known();
        let now = Instant::now();
        let target_room = self.target.headers.len() < MAX_TARGET_AHEAD;
        let target_end = self.target.end();
        let height = self.height();
        let asking = self.peers.values().filter(|p| p.asking_headers).count();
        // Peers claiming the most first; ties by connection id (deterministic).
        let mut order: Vec<(u64, PeerId, bool)> = self
            .peers
            .iter()
            .filter(|(_, p)| !p.asking_headers && !self.is_rotated_out(&p.key))
            .filter_map(|(id, p)| {
                // Worth asking: it claims past what we know (a longer chain), or its proof ends
                // at our target's end while it claims more (the next header batch), or it
                // claims more than we hold and has not shown it holds the target (a source).
                let extends = target_end.is_some_and(|e| p.proven == Some(e) && p.claimed > e);
                let longer = p.claimed > best && target_room;
                let unproven = p.proven.is_none()
                    && p.claimed > height
                    && target_end.is_some_and(|e| e > height);
                let fresh_claim = p.claimed > p.asked_claim;
                let due = p
                    .asked_at
                    .is_none_or(|t| now.duration_since(t) >= ASK_AGAIN_AFTER);
                ((longer || (extends && target_room) || unproven) && (fresh_claim || due))
                    .then_some((p.claimed, *id, extends))
            })
            .collect();
        order.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        let room = MAX_HEADER_PEERS.saturating_sub(asking);
        for (_, id, extends) in order.into_iter().take(room) {
            // From the target's end for the next batch; otherwise from the fork point with our
            // chain, so that the answer shows how much of the target the peer holds.
            let mut locator = Vec::with_capacity(MAX_LOCATOR_LEN);
            if extends {
                locator.extend(self.target.hashes.last().copied());
            }
            locator.extend(self.core.locator());
            locator.truncate(MAX_LOCATOR_LEN);
            if let Some(p) = self.peers.get_mut(&id) {
                p.asking_headers = true;
                p.asked_at = Some(now);
                p.asked_claim = p.claimed;
            }
            let net = self.net.clone();
            self.headers_in_flight.push(Box::pin(async move {
                let answer = net.get_headers(id, locator, MAX_SERVE_HEADERS);
                let r = within_deadline(&*net, id, HEADERS_DEADLINE, answer).await;
                (id, r)
            }));
        }
    }

    fn on_headers(&mut self, (peer, r): HeadersAnswer) {
        let Some(p) = self.peers.get_mut(&peer) else {
            return;
        };
        p.asking_headers = false;
        let claimed = p.claimed;
        let headers = match r {
            Err(()) => {
                let reason = format!(
                    "claimed height {claimed} and sent no headers within {} s",
                    HEADERS_DEADLINE.as_secs()
                );
                self.rotate_out(peer, Some(Misbehaviour::UndeliverableAnnouncement), &reason);
                return;
            }
            Ok(Err(e)) => {
                tracing::debug!(%peer, error = %e, "get_headers failed");
                if connection_ended(&e) {
                    // Nothing to hold against the node behind it: see [`connection_ended`].
                    return;
                }
                if claimed > self.best_known() {
                    self.rotate_out(
                        peer,
                        None,
                        &format!("claimed height {claimed}, get_headers failed: {e}"),
                    );
                }
                return;
            }
            // The signatures are checked with the blocks (the stateless stage), as for a block
            // announced alone; the header chain is judged on what a header alone proves.
            Ok(Ok(h)) => h.into_iter().map(|s| s.header).collect::<Vec<_>>(),
        };
        let Some(first) = headers.first() else {
            if claimed > self.height() && self.target.end().is_none_or(|e| claimed > e) {
                let reason = format!("claimed height {claimed} but sent no headers");
                self.rotate_out(peer, Some(Misbehaviour::UndeliverableAnnouncement), &reason);
            }
            return;
        };
        let parent = first.prev_hash;
        let in_target = self.target.anchor_of(&parent);
        let anchor = in_target.or_else(|| {
            let c = self.core.chain();
            c.header_by_hash(&parent).map(|h| Anchor {
                index: h.index,
                hash: parent,
                slot: h.slot,
            })
        });
        let Some(anchor) = anchor else {
            let reason = "headers that start from a block of neither chain";
            self.rotate_out(peer, Some(Misbehaviour::BadSyncAnswer), reason);
            return;
        };
        let hashes = match check_headers(self.core.genesis(), anchor, &headers, self.core.now_ms())
        {
            Ok(h) => h,
            Err(e) => {
                let offence = match e {
                    HeaderError::BadPow { .. }
                    | HeaderError::WrongDifficulty { .. }
                    | HeaderError::BadVersion { .. } => Misbehaviour::InvalidBlock,
                    _ => Misbehaviour::BadSyncAnswer,
                };
                self.rotate_out(peer, Some(offence), &format!("invalid headers: {e}"));
                return;
            }
        };
        self.adopt(peer, anchor, in_target.is_some(), headers, hashes);
    }

    /// Takes verified `headers` (from `anchor`) into the target if they make it longer, and
    /// records how far `peer` proved it holds the target.
    fn adopt(
        &mut self,
        peer: PeerId,
        anchor: Anchor,
        anchor_in_target: bool,
        headers: Vec<BlockHeader>,
        hashes: Vec<Hash>,
    ) {
        let end = headers.last().map_or(anchor.index, |h| h.index);
        let best = self.best_known();
        if anchor_in_target {
            // Headers hanging from the target: the part that agrees with it is proven.
            let mut agree = anchor.index;
            for (h, hash) in headers.iter().zip(&hashes) {
                if self.target.hash_at(h.index) == Some(*hash) {
                    agree = h.index;
                } else {
                    break;
                }
            }
            if end > best {
                if agree < self.target.end().unwrap_or(0) {
                    self.reset_from(agree.saturating_add(1));
                }
                let skip = usize::try_from(agree - anchor.index).unwrap_or(usize::MAX);
                self.target.headers.extend(headers.into_iter().skip(skip));
                self.target.hashes.extend(hashes.into_iter().skip(skip));
                agree = end;
            }
            self.set_proven(peer, agree);
            return;
        }
        if end <= best {
            // A chain from a fork point with ours that is not longer than what we follow.
            return;
        }
        // A longer chain from a block we hold: it becomes the target, and what was fetched
        // for the old one is dropped.
        self.generation += 1;
        self.received.clear();
        self.retry.clear();
        self.outstanding.clear();
        for p in self.peers.values_mut() {
            p.proven = None;
        }
        let first = anchor.index.saturating_add(1);
        self.target = Target {
            base: Some(anchor),
            headers,
            hashes,
        };
        self.next_fetch = first;
        self.next_send = first;
        self.set_proven(peer, end);
    }

    fn set_proven(&mut self, peer: PeerId, index: u64) {
        if let Some(p) = self.peers.get_mut(&peer) {
            p.proven = Some(index);
        }
    }

    /// Forgets everything about the target from `index` on: a new generation (answers to older
    /// requests are dropped), no block at or above it kept, and no peer proven beyond it.
    fn reset_from(&mut self, index: u64) {
        self.generation += 1;
        self.target.truncate_from(index);
        self.received.split_off(&index);
        self.retry.clear();
        self.outstanding.clear();
        // What was requested and not yet received is requested again (old answers are stale).
        self.next_send = self.next_send.min(index);
        self.next_fetch = self.next_send;
        for p in self.peers.values_mut() {
            if p.proven.is_some_and(|x| x >= index) {
                p.proven = Some(index.saturating_sub(1));
            }
        }
    }

    /// Drops the target's blocks the best chain already holds (gossip or an earlier batch may
    /// have brought them).
    fn trim_held(&mut self) {
        let Some(end) = self.target.end() else {
            return;
        };
        let at = end.min(self.height());
        let Some(hash) = self.target.hash_at(at) else {
            return;
        };
        if self.core.chain().is_on_best_chain(&hash) {
            self.held_up_to(at);
        }
    }

    /// The chain holds the target's block at `index` (and so every one before it): it becomes
    /// the base, and nothing at or below it is fetched or handed to the pipeline again. Every
    /// path that advances the base goes through here, so `next_fetch >= next_send >
    /// base` always holds (a base moved without the cursors once left sync asking, forever,
    /// for blocks below the target that no answer could match).
    fn held_up_to(&mut self, index: u64) {
        self.target.advance_base(index);
        let first = self.target.first();
        self.next_send = self.next_send.max(first);
        self.next_fetch = self.next_fetch.max(self.next_send);
        self.received = self.received.split_off(&self.next_send);
    }

    /// Hands out block ranges to peers with room in their window, lowest ranges first.
    fn request_blocks(&mut self) {
        let Some(end) = self.target.end() else {
            return;
        };
        let batch = u64::from(self.core.sync_batch().max(1));
        for _ in 0..64 {
            while self.received.contains_key(&self.next_fetch) {
                self.next_fetch += 1;
            }
            // Drop what already arrived from the front of the retry queue.
            if let Some(r) = self.retry.front_mut() {
                while r.1 > 0 && (r.0 < self.next_send || self.received.contains_key(&r.0)) {
                    *r = (r.0 + 1, r.1 - 1);
                }
                if r.1 == 0 {
                    self.retry.pop_front();
                    continue;
                }
            }
            let (from, max) = match self.retry.front() {
                Some(&(from, count)) => (from, count),
                None if self.next_fetch <= end => (self.next_fetch, end - self.next_fetch + 1),
                None => return,
            };
            let ahead_room = (self.next_send + MAX_AHEAD).saturating_sub(from);
            if ahead_room == 0 {
                return;
            }
            let Some(peer) = self.pick_source(from) else {
                return;
            };
            let proven = self.peers.get(&peer).and_then(|p| p.proven).unwrap_or(from);
            let count = max.min(batch).min(ahead_room).min(proven - from + 1);
            match self.retry.front_mut() {
                Some(r) if r.0 == from => {
                    if count >= r.1 {
                        self.retry.pop_front();
                    } else {
                        *r = (from + count, r.1 - count);
                    }
                }
                _ => self.next_fetch = from + count,
            }
            self.send_blocks_request(peer, from, count);
        }
    }

    /// The peer to ask for blocks from `from`: proven to hold it, not rotated out, with room in
    /// its window; the least busy first, then the lowest connection id.
    fn pick_source(&self, from: u64) -> Option<PeerId> {
        self.peers
            .iter()
            .filter(|(_, p)| {
                p.proven.is_some_and(|x| x >= from)
                    && p.blocks_in_flight < WINDOW_PER_PEER
                    && !self.is_rotated_out(&p.key)
            })
            .min_by_key(|(id, p)| (p.blocks_in_flight, **id))
            .map(|(id, _)| *id)
    }

    fn send_blocks_request(&mut self, peer: PeerId, from: u64, count: u64) {
        self.outstanding
            .insert(from, (count, peer, Instant::now(), false));
        self.send_blocks_request_untracked(peer, from, count);
    }

    /// Asks a second source for the range the pipeline has waited on for [`HEDGE_AFTER`].
    fn hedge(&mut self) {
        let at = self.next_send;
        let Some((&from, &(count, peer, since, hedged))) =
            self.outstanding.range(..=at).next_back()
        else {
            return;
        };
        if hedged || from + count <= at || since.elapsed() < HEDGE_AFTER {
            return;
        }
        let other = self
            .peers
            .iter()
            .filter(|(id, p)| {
                **id != peer
                    && p.proven.is_some_and(|x| x >= at)
                    && p.blocks_in_flight < WINDOW_PER_PEER
                    && !self.is_rotated_out(&p.key)
            })
            .min_by_key(|(id, p)| (p.blocks_in_flight, **id))
            .map(|(id, _)| *id);
        if let Some(other) = other {
            if let Some(o) = self.outstanding.get_mut(&from) {
                o.3 = true;
            }
            let proven = self.peers.get(&other).and_then(|p| p.proven).unwrap_or(at);
            let n = (from + count - at).min(proven - at + 1);
            self.send_blocks_request_untracked(other, at, n);
        }
    }

    fn send_blocks_request_untracked(&mut self, peer: PeerId, from: u64, count: u64) {
        if let Some(p) = self.peers.get_mut(&peer) {
            p.blocks_in_flight += 1;
        }
        let net = self.net.clone();
        let generation = self.generation;
        let n = u32::try_from(count).unwrap_or(u32::MAX);
        self.blocks_in_flight.push(Box::pin(async move {
            let answer = net.get_blocks(peer, from, n);
            let result = within_deadline(&*net, peer, BLOCKS_DEADLINE, answer).await;
            BlocksAnswer {
                peer,
                generation,
                from,
                count,
                result,
            }
        }));
    }

    fn on_blocks(&mut self, a: BlocksAnswer) {
        if let Some(p) = self.peers.get_mut(&a.peer) {
            p.blocks_in_flight = p.blocks_in_flight.saturating_sub(1);
        }
        if a.generation != self.generation {
            return;
        }
        if self.outstanding.get(&a.from).is_some_and(|o| o.1 == a.peer) {
            self.outstanding.remove(&a.from);
        }
        let blocks = match a.result {
            Err(()) => {
                self.retry_range(a.from, a.count);
                let reason = format!(
                    "promised blocks {}..{} and did not deliver them within {} s",
                    a.from,
                    a.from + a.count,
                    BLOCKS_DEADLINE.as_secs()
                );
                self.rotate_out(
                    a.peer,
                    Some(Misbehaviour::UndeliverableAnnouncement),
                    &reason,
                );
                return;
            }
            Ok(Err(e)) => {
                tracing::debug!(peer = %a.peer, error = %e, "get_blocks failed");
                self.retry_range(a.from, a.count);
                if let Some(p) = self.peers.get_mut(&a.peer) {
                    p.proven = None;
                }
                return;
            }
            Ok(Ok(b)) => b,
        };
        let mut got = 0u64;
        let mut useful = 0u64;
        for (i, block) in blocks.into_iter().enumerate() {
            let index = a.from + i as u64;
            if i as u64 >= a.count {
                break;
            }
            if block.header.index != index {
                self.net.penalize(
                    a.peer,
                    Misbehaviour::BadSyncAnswer,
                    "get_blocks answer out of order",
                );
                break;
            }
            if index < self.next_send {
                // Already handed to the pipeline or held (the base moved while the request
                // was out): nothing to check or keep, and nothing to credit the peer for.
                got += 1;
                continue;
            }
            // The block must be the one its header promised (the hash covers the header, whose
            // tx_root covers the transactions, checked in the stateless stage).
            if self.target.hash_at(index) != Some(block.hash()) {
                break;
            }
            self.received.insert(index, (block, a.peer));
            got += 1;
            useful += 1;
        }
        if useful > 0 {
            self.net.credit(a.peer);
        }
        if got < a.count {
            // Cut short (answer size limit) or no longer on the target chain: the rest goes
            // to whoever can serve it; a peer that served nothing is no longer a source.
            self.retry_range(a.from + got, a.count - got);
            if got == 0 {
                if let Some(p) = self.peers.get_mut(&a.peer) {
                    p.proven = None;
                }
            }
        }
    }

    fn retry_range(&mut self, from: u64, count: u64) {
        if count == 0 {
            return;
        }
        // Lowest ranges are fetched first: the pipeline waits for them.
        let at = self
            .retry
            .iter()
            .position(|r| r.0 > from)
            .unwrap_or(self.retry.len());
        self.retry.insert(at, (from, count));
    }

    /// Hands the consecutive blocks from `next_send` to the pipeline, while it has room.
    fn feed_pipeline(&mut self) {
        loop {
            let mut blocks = Vec::new();
            let mut i = self.next_send;
            while blocks.len() < PIPELINE_BATCH {
                match self.received.get(&i) {
                    Some(_) => {
                        blocks.push(i);
                        i += 1;
                    }
                    None => break,
                }
            }
            if blocks.is_empty() {
                return;
            }
            let permit = match self.to_pipeline.try_reserve() {
                Ok(p) => p,
                Err(_) => return,
            };
            let batch: Vec<(Block, PeerId)> = blocks
                .iter()
                .filter_map(|i| self.received.remove(i))
                .collect();
            self.next_send = i;
            permit.send(Batch {
                generation: self.generation,
                blocks: batch,
            });
        }
    }

    /// A pipeline outcome; false if sync must stop (storage failed).
    fn on_done(&mut self, d: Done) -> bool {
        match d {
            Done::Storage(e) => {
                tracing::error!(error = %e, "sync stopped: storage failed");
                false
            }
            Done::Committed { last, .. } => {
                if let Some(b) = last {
                    let tip = self.core.tip_snapshot();
                    self.net.update_tip(tip.height, tip.hash);
                    if self.target.hash_at(b.header.index) == Some(b.hash()) {
                        self.held_up_to(b.header.index);
                    }
                    self.last_committed = Some(b);
                }
                true
            }
            Done::Refused {
                generation,
                index,
                peer,
                error,
            } => {
                if generation == self.generation {
                    tracing::info!(%peer, index, %error, "synced block refused");
                    let offence = match &error {
                        ChainError::Block(be) => {
                            self.core.metrics().block_rejected(be);
                            Some(block_offence(be))
                        }
                        _ => None,
                    };
                    self.rotate_out(peer, offence, &format!("invalid block in sync: {error}"));
                    self.reset_from(index);
                }
                true
            }
        }
    }

    /// Logs progress at most every [`LOG_EVERY`], keeps `/status` current, and announces the
    /// new tip once the target is reached.
    fn report(&mut self) {
        let height = self.height();
        let syncing = self.target.end().is_some_and(|e| e > height);
        if !syncing {
            if self.log.start_height.take().is_some() {
                tracing::info!(height, "synced");
                if let Some(b) = self.last_committed.take() {
                    if self.core.tip_snapshot().hash == b.hash() {
                        self.net.broadcast_block(&b, None);
                    }
                }
            }
            self.core.sync_status().set(None);
            return;
        }
        let target = self.target.end().unwrap_or(height);
        let now = Instant::now();
        let start = *self.log.start_height.get_or_insert_with(|| {
            self.log.last_at = now;
            self.log.last_height = height;
            height
        });
        self.core.sync_status().set(Some(Progress {
            start,
            target,
            height,
        }));
        let elapsed = now.duration_since(self.log.last_at);
        if elapsed >= LOG_EVERY {
            let rate = height.saturating_sub(self.log.last_height) as f64 / elapsed.as_secs_f64();
            let eta = if rate > 0.0 {
                format!("{:.0} s", (target - height) as f64 / rate)
            } else {
                "unknown".to_string()
            };
            tracing::info!(height, target, blocks_per_s = format!("{rate:.1}"), %eta, "syncing");
            tracing::debug!(
                next_send = self.next_send,
                next_fetch = self.next_fetch,
                received = ?self.received.keys().take(5).collect::<Vec<_>>(),
                outstanding = ?self.outstanding.iter().map(|(f, o)| (*f, o.0, o.1, o.3)).collect::<Vec<_>>(),
                retry = ?self.retry,
                peers = ?self.peers.iter().map(|(id, p)| (*id, p.claimed, p.proven, p.blocks_in_flight, self.is_rotated_out(&p.key))).collect::<Vec<_>>(),
                base = ?self.target.base.map(|b| b.index),
                generation = self.generation,
                pipeline_room = self.to_pipeline.capacity(),
                "sync state"
            );
            self.log.last_at = now;
            self.log.last_height = height;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotations_double_from_the_first_up_to_the_longest() {
        let secs = |s| Duration::from_secs(s);
        assert_eq!(rotation_for(0), secs(30));
        assert_eq!(rotation_for(1), secs(60));
        assert_eq!(rotation_for(4), secs(480));
        assert_eq!(rotation_for(5), secs(600));
        assert_eq!(rotation_for(31), secs(600));
        assert_eq!(rotation_for(u32::MAX), secs(600));
    }
}
