//! Discovery state of a running node: the address book, the addresses seen on inbound
//! connections that wait for a feeler, the anchors to dial first, and each peer's budget of
//! addresses it may teach us.
//!
//! Addresses enter the book only from a `peers` answer to our own `get_peers` (source: the
//! answering peer's IP) or from configuration. The listen port an inbound peer claims in its
//! `hello` is only a *candidate*: a short feeler dial to it must reach the same identity key
//! before it enters the book, so a stranger cannot fill the book with ports it does not serve.
//! Candidates are bounded (one per address group, [`MAX_CANDIDATES`] in all) and a group gets a
//! new candidate at most every [`CANDIDATE_COOLDOWN`].
//!
//! Time: the book counts seconds from the unix time at start plus tokio's elapsed time, so that
//! saved entries stay meaningful across restarts while the simulator and paused-time tests drive
//! every interval.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::time::Duration;

use governor::{Quota, RateLimiter};
use pp_ledger::PublicKey;
use tokio::time::Instant;

use crate::addrman::AddrBook;
use crate::admission::{addr_group, AddrGroup};
use crate::connection::{Limiter, TokioClock};
use crate::peer_table::PeerId;

/// Most inbound addresses waiting for a feeler.
pub const MAX_CANDIDATES: usize = 64;
/// One address group gets a new feeler candidate at most this often.
pub const CANDIDATE_COOLDOWN: Duration = Duration::from_secs(120);
/// Outbound peers saved as anchors and dialed first at the next start.
pub const ANCHORS: usize = 2;
/// The one rule of peer exchange. Every `peer_exchange_interval` (default 5 min) a node asks one
/// random outbound peer for addresses. While it holds fewer outbound peers than its target, it
/// asks every `BELOW_TARGET_EXCHANGE_INTERVAL` instead (or every `peer_exchange_interval`, if
/// that is shorter), and then it asks any peer, inbound ones too: the one asked least recently
/// (never asked first). Waiting a whole exchange interval would leave a new node short of
/// peers for minutes while the books of the nodes that joined with it fill; and a node that
/// nobody told of any address (a seed, configured with nobody) has only inbound peers to ask.
///
/// Bounds: one `get_peers` per interval from the whole node, so a peer is asked at most once
/// per interval and, below target, at most once per round over all peers. What any answer holds
/// enters the new table only, bucketed by the answering peer's group and limited by that
/// peer's token bucket; an address counts (tried) only once a dial or feeler reaches it. So a
/// stranger who connects to us and is asked can fill only its own group's share of the new
/// table.
pub const BELOW_TARGET_EXCHANGE_INTERVAL: Duration = Duration::from_secs(5);
/// A node whose outbound connection was closed by the remote to make room for a newcomer
/// (`error too_many_peers` on an established connection: it evicted us) does not dial that
/// address again for this long, configured or not. It dials its other candidates instead, so
/// the contenders for a full node's slots spread over the network rather than queue at that
/// node and evict each other in turn (see `NetConfig::eviction_min_age` for the evicting side).
pub const EVICTED_BACKOFF: Duration = Duration::from_secs(20);
/// Most addresses remembered as having evicted us (one per outbound connection that was
/// evicted within [`EVICTED_BACKOFF`]; older ones are dropped first).
pub const MAX_EVICTED: usize = 64;
/// A book whose tried table changed is saved within this long (and anyway every
/// `book_save_interval`), so a node killed soon after it found its peers restarts knowing them.
pub const TRIED_SAVE_DELAY: Duration = Duration::from_secs(10);
/// A peer may teach us one address per this period on average...
pub const ADDR_TOKEN_PERIOD: Duration = Duration::from_secs(10);
/// ...and a burst of this many (one full answer).
pub const ADDR_TOKEN_BURST: u32 = 1_000;

/// An address seen on an inbound connection, with the key that connection proved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Candidate {
    pub(crate) addr: SocketAddr,
    pub(crate) key: PublicKey,
}

/// See the module documentation.
pub(crate) struct Discovery {
    pub(crate) book: AddrBook,
    candidates: VecDeque<Candidate>,
    cooldown: HashMap<AddrGroup, Instant>,
    pub(crate) anchors: Vec<SocketAddr>,
    tokens: HashMap<PeerId, Limiter>,
    /// Addresses that evicted us, and until when we leave them alone.
    evicted: HashMap<SocketAddr, Instant>,
    /// When we last asked each connected peer for addresses.
    asked: HashMap<PeerId, Instant>,
    unix_origin: u64,
    origin: Instant,
}

impl Discovery {
    pub(crate) fn new(book: AddrBook, anchors: Vec<SocketAddr>, unix_now_s: u64) -> Discovery {
        Discovery {
            book,
            candidates: VecDeque::new(),
            cooldown: HashMap::new(),
            anchors: anchors.into_iter().take(ANCHORS).collect(),
            tokens: HashMap::new(),
            evicted: HashMap::new(),
            asked: HashMap::new(),
            unix_origin: unix_now_s,
            origin: Instant::now(),
        }
    }

    /// Book time: seconds.
    pub(crate) fn now(&self) -> u64 {
        self.unix_origin
            .saturating_add(self.origin.elapsed().as_secs())
    }

    /// An inbound peer with key `key` says it listens at `addr`: queue a feeler unless the
    /// address is already tried, already queued, or its group is cooling down.
    pub(crate) fn note_inbound(&mut self, addr: SocketAddr, key: PublicKey, now: Instant) {
        if !crate::addrman::is_dialable(&addr)
            || self
                .book
                .get(&addr)
                .is_some_and(|e| e.table == crate::addrman::Table::Tried)
        {
            return;
        }
        let group = addr_group(addr.ip());
        if self
            .cooldown
            .get(&group)
            .is_some_and(|t| now.saturating_duration_since(*t) < CANDIDATE_COOLDOWN)
        {
            return;
        }
        self.cooldown
            .retain(|_, t| now.saturating_duration_since(*t) < CANDIDATE_COOLDOWN);
        if self.candidates.len() >= MAX_CANDIDATES {
            return;
        }
        self.cooldown.insert(group, now);
        self.candidates.push_back(Candidate { addr, key });
    }

    /// The next candidate to feel.
    pub(crate) fn next_candidate(&mut self) -> Option<Candidate> {
        self.candidates.pop_front()
    }

    /// Feeler candidates waiting.
    #[cfg(test)]
    pub(crate) fn candidates(&self) -> usize {
        self.candidates.len()
    }

    /// Take the addresses `peer` (at `source`) taught us into the book, as far as its token
    /// bucket allows. Returns how many were new to the book.
    pub(crate) fn learn(&mut self, peer: PeerId, source: IpAddr, addrs: &[SocketAddr]) -> usize {
        let limiter = self.tokens.entry(peer).or_insert_with(|| {
            let burst = NonZeroU32::new(ADDR_TOKEN_BURST).unwrap_or(NonZeroU32::MIN);
            let quota = Quota::with_period(ADDR_TOKEN_PERIOD)
                .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
                .allow_burst(burst);
            RateLimiter::direct_with_clock(quota, TokioClock::new())
        });
        let now = self
            .unix_origin
            .saturating_add(self.origin.elapsed().as_secs());
        let mut added = 0;
        for a in addrs {
            if limiter.check().is_err() {
                break;
            }
            added += usize::from(self.book.add(*a, source, now));
        }
        added
    }

    /// The node at `addr` evicted our outbound connection at `now`: leave it alone for
    /// [`EVICTED_BACKOFF`].
    pub(crate) fn note_evicted(&mut self, addr: SocketAddr, now: Instant) {
        self.evicted.retain(|_, until| *until > now);
        if self.evicted.len() >= MAX_EVICTED {
            if let Some(first) = self.evicted.iter().min_by_key(|(a, t)| (**t, **a)) {
                let first = *first.0;
                self.evicted.remove(&first);
            }
        }
        self.evicted.insert(addr, now + EVICTED_BACKOFF);
    }

    /// True while `addr` is left alone after evicting us.
    pub(crate) fn evicted_us(&self, addr: &SocketAddr, now: Instant) -> bool {
        self.evicted.get(addr).is_some_and(|until| *until > now)
    }

    /// The addresses left alone at `now` after evicting us (at most [`MAX_EVICTED`]).
    pub(crate) fn evicted_addrs(&self, now: Instant) -> Vec<SocketAddr> {
        self.evicted
            .iter()
            .filter(|(_, until)| **until > now)
            .map(|(a, _)| *a)
            .collect()
    }

    /// Record that we asked `peer` for addresses at `now`.
    pub(crate) fn note_asked(&mut self, peer: PeerId, now: Instant) {
        self.asked.insert(peer, now);
    }

    /// Of `peers`, the one asked for addresses least recently (never asked first; ties: the
    /// oldest connection, i.e. the lowest id).
    pub(crate) fn least_recently_asked(&self, peers: &[PeerId]) -> Option<PeerId> {
        peers
            .iter()
            .copied()
            .min_by_key(|p| (self.asked.get(p).copied(), *p))
    }

    /// Forget a closed connection's token bucket and when we last asked it.
    pub(crate) fn forget(&mut self, peer: PeerId) {
        self.tokens.remove(&peer);
        self.asked.remove(&peer);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pp_ledger::Hash;

    fn disc() -> Discovery {
        Discovery::new(AddrBook::new(Hash([1; 32])), vec![], 1_000_000)
    }

    #[tokio::test(start_paused = true)]
    async fn one_group_gets_one_candidate_per_cooldown_and_candidates_are_bounded() {
        let mut d = disc();
        let k = PublicKey([5; 32]);
        for port in 1000..2000u16 {
            d.note_inbound(SocketAddr::from(([127, 0, 0, 9], port)), k, Instant::now());
        }
        assert_eq!(d.candidates(), 1, "one IP, a thousand ports: one candidate");
        tokio::time::advance(CANDIDATE_COOLDOWN).await;
        d.note_inbound(SocketAddr::from(([127, 0, 0, 9], 3000)), k, Instant::now());
        assert_eq!(d.candidates(), 2);
        for i in 0..200u8 {
            d.note_inbound(SocketAddr::from(([10, 1, i, 1], 7000)), k, Instant::now());
        }
        assert_eq!(d.candidates(), MAX_CANDIDATES);
    }

    #[tokio::test(start_paused = true)]
    async fn a_peer_teaches_a_burst_then_one_address_per_period() {
        let mut d = disc();
        let src: IpAddr = [44, 1, 1, 1].into();
        let many: Vec<SocketAddr> = (0..3000u32)
            .map(|i| {
                let o = i.to_be_bytes();
                SocketAddr::from(([50, o[2], o[3], 1], 7000))
            })
            .collect();
        d.learn(PeerId(1), src, &many);
        let before = d.book.len();
        assert!(before <= ADDR_TOKEN_BURST as usize);
        // The bucket is empty: nothing more until it refills.
        let more: Vec<SocketAddr> = (0..100u8)
            .map(|i| SocketAddr::from(([60, i, 1, 1], 7000)))
            .collect();
        assert_eq!(d.learn(PeerId(1), [45, 1, 1, 1].into(), &more), 0);
        tokio::time::advance(ADDR_TOKEN_PERIOD * 5).await;
        assert!(d.learn(PeerId(1), [45, 1, 1, 1].into(), &more) <= 5);
        // Another peer has its own bucket.
        assert!(d.learn(PeerId(2), [46, 1, 1, 1].into(), &more) > 50);
    }

    #[tokio::test]
    async fn below_target_every_peer_is_asked_in_turn_the_least_recently_asked_first() {
        let mut d = disc();
        let peers = [PeerId(3), PeerId(1), PeerId(2)];
        // Never asked first, oldest connection first.
        let mut order = Vec::new();
        for i in 0..6u64 {
            let p = d.least_recently_asked(&peers).unwrap();
            order.push(p.0);
            d.note_asked(p, Instant::now() + Duration::from_secs(i));
        }
        assert_eq!(order, vec![1, 2, 3, 1, 2, 3]);
        d.forget(PeerId(2));
        assert_eq!(d.least_recently_asked(&peers), Some(PeerId(2)));
        assert_eq!(d.least_recently_asked(&[]), None);
    }
}
