//! Relay state: what each peer is known to hold, the transaction ids waiting to be announced to
//! it, the transactions and blocks we announced (to answer `get_txs` and `get_block_txs`), and
//! the fetches in flight. One owner ([`Relay`], behind one mutex held only for map updates,
//! never across an `.await`), and every collection is bounded (docs/protocol.md §14):
//! - per peer: [`KNOWN_PER_PEER`] ids known to it, [`PENDING_PER_PEER`] ids waiting to be
//!   announced (more are dropped and counted: the transaction still reaches the peer in a block);
//! - per node: [`RELAY_CACHE`] announced transactions, [`SEEN`] ids fetched or announced
//!   recently, [`MAX_ASKED`] ids being fetched, [`RECENT_BLOCKS`] announced blocks,
//!   [`MAX_REBUILDS`] compact blocks being rebuilt.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use pp_ledger::{Block, Hash, Transaction};

use crate::compact::Partial;
use crate::peer_table::PeerId;

/// Ids remembered per peer as held by it (it announced or sent them, or we did to it).
pub const KNOWN_PER_PEER: usize = 4_096;
/// Ids waiting per peer for the next `inv_txs`.
pub const PENDING_PER_PEER: usize = 4_096;
/// Transactions we announced, kept to answer `get_txs`.
pub const RELAY_CACHE: usize = 16_384;
/// Ids fetched or announced recently: not fetched again.
pub const SEEN: usize = 16_384;
/// Transaction ids being fetched, from any peer.
pub const MAX_ASKED: usize = 4_096;
/// Blocks we announced, kept to answer `get_block_txs`.
pub const RECENT_BLOCKS: usize = 8;
/// Compact blocks being rebuilt at once.
pub const MAX_REBUILDS: usize = 8;
/// How long after an id went to a peer in `inv_txs` a compact block still sends that transaction
/// in full, when the peer's round trip is not known yet (see [`prefill_window`]).
pub const PREFILL_WINDOW_UNKNOWN_RTT: Duration = Duration::from_millis(250);
/// The shortest and longest prefill windows, whatever the measured round trip.
pub const PREFILL_WINDOW_BOUNDS: (Duration, Duration) =
    (Duration::from_millis(20), Duration::from_secs(1));
/// Added to the round trip for the peer's processing and queues.
pub const PREFILL_MARGIN: Duration = Duration::from_millis(25);

/// How long a transaction announced to a peer may still be missing there. Our `inv_txs` sent at
/// t reaches the peer at t + L (L the one-way latency); if it asks us, our answer reaches it at
/// t + 3L. A block we send at b reaches it at b + L, so the transaction is missing there when
/// b − t < 2L, one round trip: the window is the peer's best round trip plus [`PREFILL_MARGIN`],
/// within [`PREFILL_WINDOW_BOUNDS`], and [`PREFILL_WINDOW_UNKNOWN_RTT`] before a keepalive has
/// measured the round trip. A peer that got the transaction from someone else sooner makes the
/// prefill redundant: the window trades those bytes against a `get_block_txs` round trip.
pub fn prefill_window(min_rtt: Option<Duration>) -> Duration {
    match min_rtt {
        None => PREFILL_WINDOW_UNKNOWN_RTT,
        Some(rtt) => (rtt + PREFILL_MARGIN).clamp(PREFILL_WINDOW_BOUNDS.0, PREFILL_WINDOW_BOUNDS.1),
    }
}

/// A set that forgets its oldest member beyond its capacity.
#[derive(Debug)]
pub(crate) struct RollingSet {
    cap: usize,
    set: HashSet<Hash>,
    order: VecDeque<Hash>,
}

impl RollingSet {
    pub(crate) fn new(cap: usize) -> RollingSet {
        RollingSet {
            cap: cap.max(1),
            set: HashSet::new(),
            order: VecDeque::new(),
        }
    }

    pub(crate) fn insert(&mut self, id: Hash) {
        if !self.set.insert(id) {
            return;
        }
        self.order.push_back(id);
        while self.order.len() > self.cap {
            if let Some(old) = self.order.pop_front() {
                self.set.remove(&old);
            }
        }
    }

    pub(crate) fn contains(&self, id: &Hash) -> bool {
        self.set.contains(id)
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.set.len()
    }
}

/// What we know of one peer.
#[derive(Debug)]
struct PeerRelay {
    /// The peer sent `compact_relay`: announce to it by id and compact block.
    compact: bool,
    /// We sent it our `compact_relay`.
    told: bool,
    /// Its `hello` said `headers_only`: of what is relayed only block headers go to it
    /// (`new_header`), no transaction and no block.
    headers_only: bool,
    known: RollingSet,
    pending: VecDeque<Hash>,
    /// Ids sent to the peer in `inv_txs` and not fetched from us since, with when they were
    /// sent (at most [`PENDING_PER_PEER`], the oldest forgotten first): the peer may still be
    /// fetching them, so a compact block prefills them for a while.
    announced: HashMap<Hash, Instant>,
    announced_order: VecDeque<(Instant, Hash)>,
}

impl PeerRelay {
    fn new(headers_only: bool) -> PeerRelay {
        PeerRelay {
            compact: false,
            told: false,
            headers_only,
            known: RollingSet::new(KNOWN_PER_PEER),
            pending: VecDeque::new(),
            announced: HashMap::new(),
            announced_order: VecDeque::new(),
        }
    }

    fn note_announced(&mut self, id: Hash, now: Instant) {
        self.announced.insert(id, now);
        self.announced_order.push_back((now, id));
        while self.announced_order.len() > PENDING_PER_PEER {
            self.forget_oldest_announced();
        }
    }

    fn forget_oldest_announced(&mut self) {
        if let Some((at, old)) = self.announced_order.pop_front() {
            // A newer announcement of the same id keeps its own entry.
            if self.announced.get(&old) == Some(&at) {
                self.announced.remove(&old);
            }
        }
    }

    /// Forget announcements older than `window`.
    fn expire_announced(&mut self, now: Instant, window: Duration) {
        while self
            .announced_order
            .front()
            .is_some_and(|(at, _)| now.saturating_duration_since(*at) >= window)
        {
            self.forget_oldest_announced();
        }
    }
}

/// Where an announced transaction goes.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct TxTargets {
    /// Peers that did not ask for inventory relay: they get the transaction in full.
    pub(crate) full: Vec<PeerId>,
    /// Ids dropped because a peer's pending queue was full.
    pub(crate) dropped: u64,
}

/// The relay state of a node.
#[derive(Debug)]
pub(crate) struct Relay {
    /// Ordered by connection id, so announcements go out in a reproducible order (pp-sim).
    peers: BTreeMap<PeerId, PeerRelay>,
    cache: HashMap<Hash, Transaction>,
    cache_order: VecDeque<Hash>,
    seen: RollingSet,
    asked: HashMap<Hash, PeerId>,
    blocks: VecDeque<(Hash, Arc<Block>)>,
    rebuilding: HashSet<Hash>,
}

impl Relay {
    pub(crate) fn new() -> Relay {
        Relay {
            peers: BTreeMap::new(),
            cache: HashMap::new(),
            cache_order: VecDeque::new(),
            seen: RollingSet::new(SEEN),
            asked: HashMap::new(),
            blocks: VecDeque::new(),
            rebuilding: HashSet::new(),
        }
    }

    /// A connection was admitted; `headers_only`: its `hello` said so.
    pub(crate) fn add_peer(&mut self, peer: PeerId, headers_only: bool) {
        self.peers
            .entry(peer)
            .or_insert_with(|| PeerRelay::new(headers_only));
    }

    /// A connection closed: its state and its fetches in flight go.
    pub(crate) fn remove_peer(&mut self, peer: PeerId) {
        self.peers.remove(&peer);
        self.asked.retain(|_, p| *p != peer);
    }

    /// The peer sent `compact_relay`. Returns true if we have not told it ours yet (and marks
    /// it told). A `headers_only` peer's is ignored: it stays a peer that is pushed headers only.
    pub(crate) fn peer_wants_compact(&mut self, peer: PeerId) -> bool {
        let Some(p) = self.peers.get_mut(&peer).filter(|p| !p.headers_only) else {
            return false;
        };
        p.compact = true;
        !std::mem::replace(&mut p.told, true)
    }

    /// We sent `peer` our `compact_relay`.
    pub(crate) fn told(&mut self, peer: PeerId) {
        if let Some(p) = self.peers.get_mut(&peer) {
            p.told = true;
        }
    }

    /// True if `peer` said `headers_only` in its `hello`: no block or transaction is pushed to
    /// it, blocks are announced to it as `new_header`.
    pub(crate) fn is_headers_only(&self, peer: PeerId) -> bool {
        self.peers.get(&peer).is_some_and(|p| p.headers_only)
    }

    /// True if `peer` asked for inventory and compact-block relay.
    pub(crate) fn is_compact(&self, peer: PeerId) -> bool {
        self.peers.get(&peer).is_some_and(|p| p.compact)
    }

    /// `peer` holds `id` (it announced or sent it, or we did to it).
    pub(crate) fn mark_known(&mut self, peer: PeerId, id: Hash) {
        if let Some(p) = self.peers.get_mut(&peer) {
            p.known.insert(id);
        }
    }

    /// The ids a compact block to `peer` sends in full: those still waiting to be announced to
    /// it (it cannot have them from us yet), and those we announced less than `window` ago
    /// that it has not fetched from us (it may still be fetching them). Older announcements are
    /// forgotten here.
    pub(crate) fn prefill(
        &mut self,
        peer: PeerId,
        now: Instant,
        window: Duration,
    ) -> HashSet<Hash> {
        let Some(p) = self.peers.get_mut(&peer) else {
            return HashSet::new();
        };
        p.expire_announced(now, window.min(PREFILL_WINDOW_BOUNDS.1));
        p.pending
            .iter()
            .copied()
            .chain(p.announced.keys().copied())
            .collect()
    }

    /// `peer` fetched `ids` from us (`get_txs`): it holds them once our answer arrives, so
    /// compact blocks no longer prefill them.
    pub(crate) fn served(&mut self, peer: PeerId, ids: impl IntoIterator<Item = Hash>) {
        if let Some(p) = self.peers.get_mut(&peer) {
            for id in ids {
                p.known.insert(id);
                p.announced.remove(&id);
            }
        }
    }

    /// Announce `tx` to every peer but `except` and the `headers_only` ones: it enters the relay
    /// cache, its id is queued for the peers that relay by inventory and do not hold it; the
    /// others are returned, to get it in full.
    pub(crate) fn announce_tx(&mut self, tx: &Transaction, except: Option<PeerId>) -> TxTargets {
        let id = tx.id();
        self.remember(id, tx);
        let mut targets = TxTargets::default();
        for (peer, p) in self.peers.iter_mut() {
            if Some(*peer) == except || p.headers_only || p.known.contains(&id) {
                continue;
            }
            p.known.insert(id);
            if !p.compact {
                targets.full.push(*peer);
            } else if p.pending.len() < PENDING_PER_PEER {
                p.pending.push_back(id);
            } else {
                targets.dropped += 1;
            }
        }
        targets
    }

    fn remember(&mut self, id: Hash, tx: &Transaction) {
        self.seen.insert(id);
        if self.cache.insert(id, tx.clone()).is_none() {
            self.cache_order.push_back(id);
        }
        while self.cache_order.len() > RELAY_CACHE {
            if let Some(old) = self.cache_order.pop_front() {
                self.cache.remove(&old);
            }
        }
    }

    /// Take the ids waiting for each peer, at most `max` per peer, to be announced at `now`.
    pub(crate) fn take_pending(&mut self, max: usize, now: Instant) -> Vec<(PeerId, Vec<Hash>)> {
        self.peers
            .iter_mut()
            .filter(|(_, p)| !p.pending.is_empty())
            .map(|(id, p)| {
                let n = p.pending.len().min(max);
                let ids: Vec<Hash> = p.pending.drain(..n).collect();
                for h in &ids {
                    p.note_announced(*h, now);
                }
                (*id, ids)
            })
            .collect()
    }

    /// `peer` announced `ids`: each is now known to it. Returns the ids to fetch from it: not
    /// seen, not in the cache, not being fetched, and not held (`have`); at most `max`.
    pub(crate) fn on_inv(
        &mut self,
        peer: PeerId,
        ids: &[Hash],
        max: usize,
        have: impl Fn(&Hash) -> bool,
    ) -> Vec<Hash> {
        let mut want = Vec::new();
        for id in ids {
            self.mark_known(peer, *id);
            if want.len() >= max
                || self.asked.len() >= MAX_ASKED
                || self.seen.contains(id)
                || self.cache.contains_key(id)
                || self.asked.contains_key(id)
                || have(id)
            {
                continue;
            }
            self.asked.insert(*id, peer);
            want.push(*id);
        }
        want
    }

    /// A fetch of `ids` ended; `got` are the ids that arrived (now seen).
    pub(crate) fn fetched(&mut self, ids: &[Hash], got: &[Hash]) {
        for id in ids {
            self.asked.remove(id);
        }
        for id in got {
            self.seen.insert(*id);
        }
    }

    /// A transaction we announced (for `get_txs`).
    pub(crate) fn cached_tx(&self, id: &Hash) -> Option<Transaction> {
        self.cache.get(id).cloned()
    }

    /// Offer every cached transaction whose short id the block has to `partial`.
    pub(crate) fn offer_cached(&self, partial: &mut Partial) {
        for (id, tx) in &self.cache {
            if partial.matches(id) {
                partial.offer(id, tx);
            }
        }
    }

    /// Keep a block we announce (for `get_block_txs`).
    pub(crate) fn note_block(&mut self, hash: Hash, block: Arc<Block>) {
        if self.blocks.iter().any(|(h, _)| *h == hash) {
            return;
        }
        self.blocks.push_back((hash, block));
        while self.blocks.len() > RECENT_BLOCKS {
            self.blocks.pop_front();
        }
    }

    /// A block we announced recently.
    pub(crate) fn block(&self, hash: &Hash) -> Option<Arc<Block>> {
        self.blocks
            .iter()
            .find(|(h, _)| h == hash)
            .map(|(_, b)| b.clone())
    }

    /// Start rebuilding the block `hash`: false if it is being rebuilt already, or too many are.
    pub(crate) fn start_rebuild(&mut self, hash: Hash) -> bool {
        self.rebuilding.len() < MAX_REBUILDS && self.rebuilding.insert(hash)
    }

    /// The rebuild of `hash` ended (whatever its outcome).
    pub(crate) fn end_rebuild(&mut self, hash: &Hash) {
        self.rebuilding.remove(hash);
    }

    /// Sizes, for tests: (peers, cached transactions, seen, asked).
    #[cfg(test)]
    fn sizes(&self) -> (usize, usize, usize, usize) {
        (
            self.peers.len(),
            self.cache.len(),
            self.seen.len(),
            self.asked.len(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pp_ledger::{KeyPair, PublicKey};

    fn tx(n: u64) -> Transaction {
        let k = KeyPair::from_seed([5; 32]);
        Transaction::transfer(&k, PublicKey([1; 32]), 1, 1, n, &Hash([2; 32]))
    }

    #[test]
    fn a_headers_only_peer_gets_no_announcement_even_if_it_asks_for_compact_relay() {
        let mut r = Relay::new();
        r.add_peer(PeerId(1), true);
        r.add_peer(PeerId(2), false);
        assert!(
            !r.peer_wants_compact(PeerId(1)),
            "its compact_relay is not answered"
        );
        assert!(!r.is_compact(PeerId(1)));
        assert!(r.is_headers_only(PeerId(1)));
        assert!(!r.is_headers_only(PeerId(2)));
        let tx = tx(1);
        let targets = r.announce_tx(&tx, None);
        assert_eq!(
            targets.full,
            vec![PeerId(2)],
            "not to the headers-only peer"
        );
        let pending = r.take_pending(100, Instant::now());
        assert!(pending
            .iter()
            .all(|(p, ids)| *p != PeerId(1) || ids.is_empty()));
    }

    #[test]
    fn announcements_go_by_id_to_compact_peers_and_in_full_to_the_others() {
        let mut r = Relay::new();
        for p in 1..=3 {
            r.add_peer(PeerId(p), false);
        }
        assert!(r.peer_wants_compact(PeerId(1)));
        assert!(!r.peer_wants_compact(PeerId(1)), "told once");
        r.peer_wants_compact(PeerId(2));
        let t = tx(0);
        let targets = r.announce_tx(&t, Some(PeerId(2)));
        assert_eq!(targets.full, vec![PeerId(3)]);
        assert_eq!(
            r.prefill(PeerId(1), Instant::now(), Duration::ZERO),
            HashSet::from([t.id()])
        );
        assert_eq!(
            r.take_pending(1000, Instant::now()),
            vec![(PeerId(1), vec![t.id()])]
        );
        assert!(r
            .prefill(PeerId(1), Instant::now(), Duration::ZERO)
            .is_empty());
        // Known now to 1 and 3: not announced to them again.
        let again = r.announce_tx(&t, None);
        assert!(again.full.is_empty());
        assert_eq!(
            r.take_pending(1000, Instant::now()),
            vec![(PeerId(2), vec![t.id()])]
        );
        assert_eq!(r.cached_tx(&t.id()), Some(t));
    }

    #[test]
    fn compact_blocks_prefill_what_a_peer_may_still_be_fetching() {
        let mut r = Relay::new();
        r.add_peer(PeerId(1), false);
        r.peer_wants_compact(PeerId(1));
        let (a, b, c) = (tx(1), tx(2), tx(3));
        let t0 = Instant::now();
        let window = Duration::from_millis(300);
        r.announce_tx(&a, None);
        r.announce_tx(&b, None);
        assert_eq!(r.take_pending(1000, t0).len(), 1);
        r.announce_tx(&c, None);
        // `c` waits for the next `inv_txs`; `a` and `b` went out at t0 and may be in flight.
        let ids = |v: &[&Transaction]| v.iter().map(|t| t.id()).collect::<HashSet<Hash>>();
        assert_eq!(r.prefill(PeerId(1), t0, window), ids(&[&a, &b, &c]));
        // The peer fetched `a` from us: it holds it.
        r.served(PeerId(1), [a.id()]);
        let later = t0 + Duration::from_millis(299);
        assert_eq!(r.prefill(PeerId(1), later, window), ids(&[&b, &c]));
        // A window after the announcement the peer has had time to fetch `b` from anyone.
        assert_eq!(r.prefill(PeerId(1), t0 + window, window), ids(&[&c]));
        // Announcements are bounded per peer.
        for i in 0..(PENDING_PER_PEER + 10) as u64 {
            r.announce_tx(&tx(100 + i), None);
            r.take_pending(1000, t0 + window);
        }
        assert_eq!(r.peers[&PeerId(1)].announced.len(), PENDING_PER_PEER);
        assert_eq!(r.peers[&PeerId(1)].announced_order.len(), PENDING_PER_PEER);
    }

    #[test]
    fn the_prefill_window_follows_the_round_trip_within_bounds() {
        assert_eq!(prefill_window(None), PREFILL_WINDOW_UNKNOWN_RTT);
        assert_eq!(
            prefill_window(Some(Duration::from_millis(150))),
            Duration::from_millis(175)
        );
        assert_eq!(
            prefill_window(Some(Duration::from_micros(40))),
            Duration::from_micros(25_040)
        );
        assert_eq!(
            prefill_window(Some(Duration::from_secs(5))),
            PREFILL_WINDOW_BOUNDS.1
        );
    }

    #[test]
    fn a_peer_is_not_announced_what_it_announced_to_us() {
        let mut r = Relay::new();
        r.add_peer(PeerId(1), false);
        r.peer_wants_compact(PeerId(1));
        let t = tx(1);
        let want = r.on_inv(PeerId(1), &[t.id()], 1000, |_| false);
        assert_eq!(want, vec![t.id()]);
        r.fetched(&want, &want);
        r.announce_tx(&t, None);
        assert!(r.take_pending(1000, Instant::now()).is_empty());
    }

    #[test]
    fn ids_held_seen_or_in_flight_are_not_fetched_again() {
        let mut r = Relay::new();
        r.add_peer(PeerId(1), false);
        r.add_peer(PeerId(2), false);
        let (a, b, c) = (tx(1).id(), tx(2).id(), tx(3).id());
        assert_eq!(
            r.on_inv(PeerId(1), &[a, b, c], 1000, |id| *id == c),
            vec![a, b]
        );
        // In flight from peer 1: peer 2's announcement does not ask again.
        assert!(r.on_inv(PeerId(2), &[a, b], 1000, |_| false).is_empty());
        // Peer 1 delivered only `a`: `b` may be asked from another peer; `a` is seen.
        r.fetched(&[a, b], &[a]);
        assert_eq!(r.on_inv(PeerId(2), &[a, b], 1000, |_| false), vec![b]);
        // A closed connection releases its fetches.
        r.remove_peer(PeerId(2));
        assert_eq!(r.sizes().3, 0);
        assert_eq!(r.on_inv(PeerId(1), &[b], 1000, |_| false), vec![b]);
    }

    #[test]
    fn every_collection_is_bounded() {
        let mut r = Relay::new();
        r.add_peer(PeerId(1), false);
        r.peer_wants_compact(PeerId(1));
        let mut dropped = 0;
        let n = RELAY_CACHE + 10;
        for i in 0..n as u64 {
            dropped += r.announce_tx(&tx(i), None).dropped;
        }
        let (_, cache, seen, _) = r.sizes();
        assert_eq!(cache, RELAY_CACHE);
        assert_eq!(seen, SEEN);
        assert_eq!(dropped as usize, n - PENDING_PER_PEER);
        assert_eq!(r.peers[&PeerId(1)].known.len(), KNOWN_PER_PEER);
        let first = r.take_pending(1000, Instant::now());
        assert_eq!(first[0].1.len(), 1000);
        let ids: Vec<Hash> = (0..(MAX_ASKED + 5) as u64)
            .map(|i| Hash::sha256(&i.to_be_bytes()))
            .collect();
        let mut asked = 0;
        for chunk in ids.chunks(1000) {
            asked += r.on_inv(PeerId(1), chunk, 1000, |_| false).len();
        }
        assert_eq!(asked, MAX_ASKED);
        for i in 0..(RECENT_BLOCKS + 3) {
            r.note_block(Hash([i as u8; 32]), Arc::new(test_block()));
        }
        assert_eq!(r.blocks.len(), RECENT_BLOCKS);
        assert!(r.block(&Hash([0; 32])).is_none());
        for i in 0..MAX_REBUILDS {
            assert!(r.start_rebuild(Hash([i as u8; 32])));
        }
        assert!(!r.start_rebuild(Hash([200; 32])));
        r.end_rebuild(&Hash([0; 32]));
        assert!(r.start_rebuild(Hash([200; 32])));
        assert!(!r.start_rebuild(Hash([200; 32])), "one rebuild per block");
    }

    fn test_block() -> Block {
        Block {
            header: pp_ledger::BlockHeader {
                version: pp_ledger::BLOCK_VERSION,
                index: 1,
                slot: 1,
                prev_hash: Hash::ZERO,
                tx_root: Hash::ZERO,
                state_root: Hash::ZERO,
                producer: PublicKey([0; 32]),
                timestamp: 0,
                difficulty: 0,
                vrf: None,
                ocert: None,
                nonce: 0,
            },
            signature: pp_ledger::Signature([0; 64]),
            transactions: Vec::new(),
        }
    }
}
