//! The peer table: who we are connected to (by identity key), what we know about them, whether
//! a new connection may join, and which addresses to dial when.
//!
//! A plain synchronous data structure; the network keeps it behind a `std::sync::Mutex` held only
//! for a few map operations and never across an `.await`. Time is passed in (tokio's `Instant`,
//! so the simulator and paused-time tests control it), which keeps every rule here unit-testable.
//! Identity keys come from the Noise handshake, never from a claim: nothing here is replaced,
//! penalised or banned on an unauthenticated string.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use pp_ledger::{Hash, PublicKey};
use serde::Serialize;
use tokio::time::Instant;

use crate::admission::{addr_group, select_eviction, AddrGroup, EvictionCandidate};
use crate::error::NetError;
use crate::misbehaviour::Misbehaviour;
use crate::reputation::{Ban, BanTarget, Reputation};

/// Identifies one connection (not one node: a node that reconnects gets a new id).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct PeerId(pub u64);

impl std::fmt::Display for PeerId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Who opened the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// The remote dialed us.
    Inbound,
    /// We dialed the remote.
    Outbound,
}

/// Traffic counters of one connection, updated by its tasks without the table lock.
#[derive(Debug, Default)]
pub(crate) struct PeerCounters {
    pub(crate) bytes_in: AtomicU64,
    pub(crate) bytes_out: AtomicU64,
    pub(crate) messages_in: AtomicU64,
    pub(crate) messages_out: AtomicU64,
    pub(crate) throttled: AtomicU64,
    pub(crate) dropped: AtomicU64,
    /// Best keepalive round trip in µs (u64::MAX: none yet).
    pub(crate) min_rtt_us: AtomicU64,
    /// When the peer last delivered a valid block or transaction (table-relative ms; 0: never).
    pub(crate) last_useful_ms: AtomicU64,
    /// Frames of this peer read off the connection and waiting for our blocking pool to
    /// decode them (large frames, [`crate::config::OFFLOAD_FRAME_BYTES`] and over).
    pub(crate) decoding: AtomicU64,
}

impl PeerCounters {
    pub(crate) fn new() -> PeerCounters {
        let c = PeerCounters::default();
        c.min_rtt_us.store(u64::MAX, Ordering::Relaxed);
        c
    }

    fn snapshot(&self) -> PeerStats {
        let rtt = self.min_rtt_us.load(Ordering::Relaxed);
        PeerStats {
            bytes_in: self.bytes_in.load(Ordering::Relaxed),
            bytes_out: self.bytes_out.load(Ordering::Relaxed),
            messages_in: self.messages_in.load(Ordering::Relaxed),
            messages_out: self.messages_out.load(Ordering::Relaxed),
            throttled: self.throttled.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            min_rtt_us: (rtt != u64::MAX).then_some(rtt),
        }
    }
}

/// Traffic of one connection so far.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PeerStats {
    /// Frame bytes received (length prefixes included, Noise overhead not).
    pub bytes_in: u64,
    /// Frame bytes sent.
    pub bytes_out: u64,
    /// Messages received.
    pub messages_in: u64,
    /// Messages sent.
    pub messages_out: u64,
    /// Times the peer was not read because it exceeded a budget (bytes or messages).
    pub throttled: u64,
    /// Broadcasts dropped because its send queue was full.
    pub dropped: u64,
    /// Best keepalive round trip, µs.
    pub min_rtt_us: Option<u64>,
}

/// What we know about a connected peer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PeerInfo {
    /// The connection id.
    pub id: PeerId,
    /// The remote's identity key, proven by the Noise handshake.
    pub key: PublicKey,
    /// The remote socket address of this connection.
    pub addr: SocketAddr,
    /// The label the remote announced in `hello` (display only).
    pub node_id: String,
    /// Who dialed.
    pub direction: Direction,
    /// The remote's p2p address (its IP + announced listen port), for dialing back and peer
    /// exchange; `None` if it announced port 0.
    pub listen_addr: Option<SocketAddr>,
    /// The remote's best block index, from `hello` and later `new_block`s.
    pub tip_index: u64,
    /// The remote's best block hash.
    pub tip_hash: Hash,
    /// Misbehaviour score of the remote's identity (higher is worse; banned at the threshold).
    pub score: i32,
    /// When the connection was established (unix ms).
    pub connected_at_ms: u64,
    /// When a frame was last received from it (unix ms).
    pub last_seen_ms: u64,
    /// Traffic so far (filled in when the table is listed).
    pub stats: PeerStats,
}

/// Where a known address stands in the dial cycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AddrState {
    /// Not connected; may be dialed once `next_attempt` has passed.
    Idle,
    /// A dial is in progress.
    Dialing,
    /// A connection to it is up.
    Connected,
    /// It turned out to be ourselves; never dialed again.
    OwnAddress,
}

/// A remembered address with its dial backoff.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KnownAddr {
    /// Dial state.
    pub state: AddrState,
    /// Consecutive failed dials.
    pub failures: u32,
    /// Earliest time of the next dial.
    pub next_attempt: Instant,
}

/// A known address as shown to operators (e.g. by the server's peers endpoint).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AddrInfo {
    /// The address as given (`ip:port` or `host:port`).
    pub addr: String,
    /// Where it stands in the dial cycle.
    pub state: AddrState,
    /// Consecutive failed dials.
    pub failures: u32,
    /// Time until the next dial may happen, in ms (0: due now, or connected).
    pub retry_in_ms: u64,
}

/// The outcome of asking whether a freshly handshaken connection may join.
#[derive(Debug)]
pub enum Admission {
    /// Add it.
    Accept,
    /// Add it and close the given older connection to the same node (see [`PeerTable::admit`]).
    Replace(PeerId),
    /// Add it and evict the given inbound peer: inbound was full (see
    /// [`crate::admission::select_eviction`]).
    Evict(PeerId),
    /// Refuse it.
    Reject(NetError),
}

/// Connection limits the table enforces at admission.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Most inbound peers.
    pub max_inbound: usize,
    /// Most inbound peers from one address group.
    pub max_inbound_per_group: usize,
    /// An inbound peer younger than this is never evicted for a newcomer (see
    /// [`select_eviction`]).
    pub eviction_min_age: Duration,
}

struct Entry {
    info: PeerInfo,
    counters: Arc<PeerCounters>,
    connected: Instant,
}

/// Peers, reputation and known addresses.
pub struct PeerTable {
    peers: BTreeMap<PeerId, Entry>,
    by_key: HashMap<PublicKey, PeerId>,
    reputation: Reputation,
    known: BTreeMap<String, KnownAddr>,
    /// The address string each outbound connection was dialed as (it may differ from the
    /// listen address the peer announced, e.g. a host name), so its drop re-arms that entry.
    dialed_as: HashMap<PeerId, Vec<String>>,
    next_id: u64,
    origin: Instant,
    wall: WallClock,
    /// Secret key of the group hash eviction protects by (see [`PeerTable::set_eviction_key`]).
    eviction_key: Hash,
}

impl std::fmt::Debug for PeerTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerTable")
            .field("peers", &self.peers.len())
            .field("known", &self.known.len())
            .finish_non_exhaustive()
    }
}

/// Unix time in ms for display fields and saved timestamps (decisions use `Instant`): the
/// wall clock is read once, at start ([`NetConfig::unix_time_ms`](crate::NetConfig), i.e. the
/// node's own clock, or the system clock), and then advances with tokio's `Instant`. A
/// simulation that drives tokio's time (turmoil) therefore sees the same values in every replay
/// of a seed, and the address book's and the bans' timestamps follow the simulated clock.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WallClock {
    origin_ms: u64,
    origin: Instant,
}

impl WallClock {
    /// A clock reading `now_ms` now, or the system clock's time when `None`.
    pub(crate) fn new(now_ms: Option<u64>) -> WallClock {
        let origin_ms = now_ms.unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
                .unwrap_or(0)
        });
        WallClock {
            origin_ms,
            origin: Instant::now(),
        }
    }

    /// Unix time in ms.
    pub(crate) fn now_ms(&self) -> u64 {
        self.origin_ms.saturating_add(millis(self.origin.elapsed()))
    }
}

impl PeerTable {
    /// An empty table whose scores and bans follow `reputation`.
    pub fn new(reputation: Reputation) -> PeerTable {
        PeerTable {
            peers: BTreeMap::new(),
            by_key: HashMap::new(),
            reputation,
            known: BTreeMap::new(),
            dialed_as: HashMap::new(),
            next_id: 0,
            origin: Instant::now(),
            wall: WallClock::new(None),
            eviction_key: Hash::ZERO,
        }
    }

    /// The same table, with its timestamps (`last_seen_ms`) read from `wall`.
    pub(crate) fn with_wall_clock(mut self, wall: WallClock) -> PeerTable {
        self.wall = wall;
        self
    }

    /// Key the group hash by which eviction protects a few groups
    /// ([`crate::admission::PROTECT_BY_GROUP`]) with a secret of this node, so an outsider
    /// cannot tell which groups are protected. A new table uses a zero key until this is called.
    pub fn set_eviction_key(&mut self, key: Hash) {
        self.eviction_key = key;
    }

    /// The keyed hash of `group` (first 8 bytes of SHA-256 of the key and the group).
    fn keyed_group(&self, group: AddrGroup) -> u64 {
        let mut data = Vec::with_capacity(64);
        data.extend_from_slice(b"pp-net/eviction/group");
        data.extend_from_slice(&self.eviction_key.0);
        match group {
            AddrGroup::V4(b) => data.extend_from_slice(&[[4u8].as_slice(), &b].concat()),
            AddrGroup::V6(b) => data.extend_from_slice(&[[6u8].as_slice(), &b].concat()),
            AddrGroup::Exact(IpAddr::V4(ip)) => {
                data.extend_from_slice(&[[1u8].as_slice(), &ip.octets()].concat())
            }
            AddrGroup::Exact(IpAddr::V6(ip)) => {
                data.extend_from_slice(&[[2u8].as_slice(), &ip.octets()].concat())
            }
        }
        let h = Hash::sha256(&data).0;
        u64::from_be_bytes([h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7]])
    }

    /// A fresh connection id.
    pub fn next_peer_id(&mut self) -> PeerId {
        self.next_id += 1;
        PeerId(self.next_id)
    }

    /// Milliseconds since the table was made (for the eviction clocks).
    pub(crate) fn elapsed_ms(&self, now: Instant) -> u64 {
        millis(now.saturating_duration_since(self.origin))
    }

    /// Scores and bans.
    pub fn reputation(&mut self) -> &mut Reputation {
        &mut self.reputation
    }

    /// Refuse an IP address that is banned (checked on accept, before any handshake work).
    pub fn check_ip(&mut self, ip: IpAddr, now: Instant) -> Result<(), NetError> {
        match self.reputation.ban_of(BanTarget::Ip(ip), now) {
            Some(ban) => Err(NetError::Banned {
                target: ip.to_string(),
                reason: ban.reason,
                remaining_ms: millis(ban.until.saturating_duration_since(now)),
            }),
            None => Ok(()),
        }
    }

    /// The checks that need only the remote's proven key and address: not ourselves, neither
    /// the key nor the IP banned.
    pub fn precheck(
        &mut self,
        ours: &PublicKey,
        key: &PublicKey,
        ip: IpAddr,
        now: Instant,
    ) -> Result<(), NetError> {
        if key == ours {
            return Err(NetError::SelfConnection { key: key.to_hex() });
        }
        self.check_ip(ip, now)?;
        if let Some(ban) = self.reputation.ban_of(BanTarget::Key(*key), now) {
            return Err(NetError::Banned {
                target: key.to_hex(),
                reason: ban.reason,
                remaining_ms: millis(ban.until.saturating_duration_since(now)),
            });
        }
        Ok(())
    }

    /// Decide whether a connection that completed the handshake may join.
    ///
    /// Duplicates: two nodes that dial each other at the same moment end up with two
    /// connections, and each side sees the other's as the duplicate. To keep exactly one
    /// without a further round trip, both sides keep the connection *initiated by the node with
    /// the smaller identity key* (byte order). Two connections from the same initiator: only the
    /// initiator decides (it keeps the older and closes the newer), because the two sides may see
    /// the two handshakes finish in opposite orders; the accepting side admits both and follows
    /// the initiator's choice. Keys are proven by the handshake, so no one can claim another
    /// node's place.
    ///
    /// Capacity: an inbound connection must fit the per-group limit; when inbound is full, it
    /// may evict another inbound peer (see [`select_eviction`]). Outbound capacity is reserved
    /// before dialing, not here.
    pub fn admit(
        &mut self,
        ours: &PublicKey,
        candidate: &PeerInfo,
        limits: Limits,
        now: Instant,
    ) -> Admission {
        if let Err(e) = self.precheck(ours, &candidate.key, candidate.addr.ip(), now) {
            return Admission::Reject(e);
        }
        if let Some(existing) = self
            .by_key
            .get(&candidate.key)
            .and_then(|id| self.peers.get(id))
        {
            let existing_id = existing.info.id;
            let initiator = |d: Direction| match d {
                Direction::Outbound => *ours,
                Direction::Inbound => candidate.key,
            };
            let old_init = initiator(existing.info.direction);
            let new_init = initiator(candidate.direction);
            let preferred = (*ours).min(candidate.key);
            return if old_init != new_init && new_init == preferred {
                Admission::Replace(existing_id)
            } else if old_init == new_init && new_init != *ours {
                Admission::Accept
            } else {
                Admission::Reject(NetError::AlreadyConnected {
                    key: candidate.key.to_hex(),
                })
            };
        }
        if candidate.direction == Direction::Outbound {
            return Admission::Accept;
        }
        let group = addr_group(candidate.addr.ip());
        let inbound: Vec<&Entry> = self
            .peers
            .values()
            .filter(|e| e.info.direction == Direction::Inbound)
            .collect();
        let in_group = inbound
            .iter()
            .filter(|e| addr_group(e.info.addr.ip()) == group)
            .count();
        if in_group >= limits.max_inbound_per_group {
            return Admission::Reject(NetError::TooManyPeers {
                max: limits.max_inbound_per_group,
            });
        }
        if inbound.len() < limits.max_inbound {
            return Admission::Accept;
        }
        let candidates: Vec<EvictionCandidate> = inbound
            .iter()
            .map(|e| {
                let rtt = e.counters.min_rtt_us.load(Ordering::Relaxed);
                let group = addr_group(e.info.addr.ip());
                EvictionCandidate {
                    id: e.info.id,
                    group,
                    keyed_group: self.keyed_group(group),
                    connected_ms: millis(e.connected.saturating_duration_since(self.origin)),
                    last_useful_ms: e.counters.last_useful_ms.load(Ordering::Relaxed),
                    min_rtt_us: (rtt != u64::MAX).then_some(rtt),
                }
            })
            .collect();
        let now_ms = millis(now.saturating_duration_since(self.origin));
        match select_eviction(&candidates, now_ms, millis(limits.eviction_min_age)) {
            Some(victim) => Admission::Evict(victim),
            None => Admission::Reject(NetError::TooManyPeers {
                max: limits.max_inbound,
            }),
        }
    }

    /// Add a connected peer (after [`PeerTable::admit`]); its score is its identity's standing
    /// score. `dialed_as` is the address string an outbound connection was dialed with.
    pub(crate) fn insert(
        &mut self,
        mut info: PeerInfo,
        counters: Arc<PeerCounters>,
        dialed_as: Option<&str>,
        now: Instant,
    ) {
        info.score = self.reputation.score(BanTarget::Key(info.key), now);
        let keys = info
            .listen_addr
            .map(|a| a.to_string())
            .into_iter()
            .chain(dialed_as.map(str::to_string));
        for key in keys {
            if let Some(k) = self.known.get_mut(&key) {
                k.state = AddrState::Connected;
                k.failures = 0;
            }
        }
        if let Some(d) = dialed_as {
            self.dialed_as
                .entry(info.id)
                .or_default()
                .push(d.to_string());
        }
        self.by_key.insert(info.key, info.id);
        self.peers.insert(
            info.id,
            Entry {
                info,
                counters,
                connected: now,
            },
        );
    }

    /// Remove a peer; its listen address (if known) becomes dialable after the base backoff.
    pub fn remove(&mut self, id: PeerId, now: Instant, base: Duration) -> Option<PeerInfo> {
        let info = self.peers.remove(&id)?.info;
        if self.by_key.get(&info.key) == Some(&id) {
            self.by_key.remove(&info.key);
            // A transient duplicate (see `admit`) takes over as the node's connection.
            if let Some(other) = self.peers.values().find(|e| e.info.key == info.key) {
                self.by_key.insert(info.key, other.info.id);
            }
        }
        let keys = info
            .listen_addr
            .map(|a| a.to_string())
            .into_iter()
            .chain(self.dialed_as.remove(&id).unwrap_or_default());
        for key in keys {
            if let Some(k) = self.known.get_mut(&key) {
                if k.state == AddrState::Connected {
                    k.state = AddrState::Idle;
                    k.next_attempt = now + base;
                }
            }
        }
        Some(info)
    }

    /// Leave the configured addresses of connection `id` (its listen address and the addresses
    /// it was dialed as) undialed until `until`, whatever the backoff would say; returns its
    /// listen address and those it was dialed as. Called before the connection is removed, so
    /// [`PeerTable::remove`] does not re-arm them.
    pub(crate) fn defer_peer(&mut self, id: PeerId, until: Instant) -> Vec<String> {
        let Some(e) = self.peers.get(&id) else {
            return Vec::new();
        };
        let addrs: Vec<String> = e
            .info
            .listen_addr
            .map(|a| a.to_string())
            .into_iter()
            .chain(self.dialed_as.get(&id).cloned().unwrap_or_default())
            .collect();
        for a in &addrs {
            if let Some(k) = self.known.get_mut(a) {
                k.state = AddrState::Idle;
                k.next_attempt = k.next_attempt.max(until);
            }
        }
        addrs
    }

    /// Record that dialing `addr` led to the existing connection `id` (the node was already
    /// connected, e.g. inbound), so that when `id` drops, `addr` is dialed again.
    pub fn link_dialed_addr(&mut self, id: PeerId, addr: &str) {
        if self.peers.contains_key(&id) {
            let v = self.dialed_as.entry(id).or_default();
            if !v.iter().any(|a| a == addr) {
                v.push(addr.to_string());
            }
        }
    }

    /// The peer with this connection id.
    pub fn get(&self, id: PeerId) -> Option<PeerInfo> {
        self.peers.get(&id).map(|e| self.listed(e))
    }

    fn listed(&self, e: &Entry) -> PeerInfo {
        let mut info = e.info.clone();
        info.stats = e.counters.snapshot();
        info
    }

    /// The connection whose announced listen address is `addr`, or that dialing `addr` led to.
    pub fn by_addr(&self, addr: &str) -> Option<PeerInfo> {
        self.peers
            .values()
            .find(|e| {
                e.info.listen_addr.map(|a| a.to_string()).as_deref() == Some(addr)
                    || self
                        .dialed_as
                        .get(&e.info.id)
                        .is_some_and(|v| v.iter().any(|d| d == addr))
            })
            .map(|e| self.listed(e))
    }

    /// The connection to the node with this identity key, if any.
    pub fn by_key(&self, key: &PublicKey) -> Option<PeerInfo> {
        self.by_key
            .get(key)
            .and_then(|id| self.peers.get(id))
            .map(|e| self.listed(e))
    }

    /// Connections from this IP address.
    pub fn ids_from_ip(&self, ip: IpAddr) -> Vec<PeerId> {
        self.peers
            .values()
            .filter(|e| e.info.addr.ip() == ip)
            .map(|e| e.info.id)
            .collect()
    }

    /// All connected peers, by connection id.
    pub fn peers(&self) -> Vec<PeerInfo> {
        self.peers.values().map(|e| self.listed(e)).collect()
    }

    /// Number of connected peers.
    pub fn len(&self) -> usize {
        self.peers.len()
    }

    /// Number of connected peers in one direction.
    pub fn count(&self, direction: Direction) -> usize {
        self.peers
            .values()
            .filter(|e| e.info.direction == direction)
            .count()
    }

    /// True when no peer is connected.
    pub fn is_empty(&self) -> bool {
        self.peers.is_empty()
    }

    /// Record that a frame arrived from the peer.
    pub fn touch(&mut self, id: PeerId) {
        if let Some(e) = self.peers.get_mut(&id) {
            e.info.last_seen_ms = self.wall.now_ms();
        }
    }

    /// Record a peer's new tip (from a `new_block`); only ever moves it forward.
    pub fn update_tip(&mut self, id: PeerId, index: u64, hash: Hash) {
        if let Some(e) = self.peers.get_mut(&id) {
            if index >= e.info.tip_index {
                e.info.tip_index = index;
                e.info.tip_hash = hash;
            }
        }
    }

    /// Record that the peer delivered something valid (protects it from eviction).
    pub fn credit(&mut self, id: PeerId, now: Instant) {
        let ms = self.elapsed_ms(now).max(1);
        if let Some(e) = self.peers.get(&id) {
            e.counters.last_useful_ms.store(ms, Ordering::Relaxed);
        }
    }

    /// Add `offence`'s points to the identity `key` and, for offences that prove a hostile
    /// sender, to its IP. Returns the bans this caused.
    pub fn penalize(
        &mut self,
        key: Option<PublicKey>,
        ip: Option<IpAddr>,
        offence: Misbehaviour,
        reason: &str,
        now: Instant,
    ) -> Vec<(BanTarget, Ban)> {
        let mut bans = Vec::new();
        let points = offence.points();
        let reason = format!("{offence}: {reason}");
        if let Some(k) = key {
            let target = BanTarget::Key(k);
            if let Some(ban) = self.reputation.penalize(target, points, &reason, now) {
                bans.push((target, ban));
            }
            let score = self.reputation.score(target, now);
            for e in self.peers.values_mut().filter(|e| e.info.key == k) {
                e.info.score = score;
            }
        }
        if let Some(ip) = ip.filter(|_| offence.scores_address()) {
            let target = BanTarget::Ip(ip);
            if let Some(ban) = self.reputation.penalize(target, points, &reason, now) {
                bans.push((target, ban));
            }
        }
        bans
    }

    /// Connections a ban on `target` applies to.
    pub fn ids_of(&self, target: BanTarget) -> Vec<PeerId> {
        match target {
            BanTarget::Key(k) => self
                .peers
                .values()
                .filter(|e| e.info.key == k)
                .map(|e| e.info.id)
                .collect(),
            BanTarget::Ip(ip) => self.ids_from_ip(ip),
        }
    }

    /// Remember an address to dial (ignored when `max` addresses are already known).
    pub fn add_known(&mut self, addr: &str, now: Instant, max: usize) {
        if self.known.contains_key(addr) || self.known.len() >= max {
            return;
        }
        let connected = self
            .peers
            .values()
            .any(|e| e.info.listen_addr.map(|a| a.to_string()).as_deref() == Some(addr));
        self.known.insert(
            addr.to_string(),
            KnownAddr {
                state: if connected {
                    AddrState::Connected
                } else {
                    AddrState::Idle
                },
                failures: 0,
                next_attempt: now,
            },
        );
    }

    /// Known addresses (excluding our own), sorted.
    pub fn known_addrs(&self) -> Vec<String> {
        self.known
            .iter()
            .filter(|(_, k)| k.state != AddrState::OwnAddress)
            .map(|(a, _)| a.clone())
            .collect()
    }

    /// Every known address with its dial state, sorted by address.
    pub fn address_book(&self, now: Instant) -> Vec<AddrInfo> {
        self.known
            .iter()
            .map(|(addr, k)| AddrInfo {
                addr: addr.clone(),
                state: k.state,
                failures: k.failures,
                retry_in_ms: millis(k.next_attempt.saturating_duration_since(now)),
            })
            .collect()
    }

    /// The state of a known address.
    pub fn known_addr(&self, addr: &str) -> Option<&KnownAddr> {
        self.known.get(addr)
    }

    /// Addresses due for a dial at `now` (at most `limit`), marked as dialing.
    pub fn take_due(&mut self, now: Instant, limit: usize) -> Vec<String> {
        let connected: Vec<String> = self
            .peers
            .values()
            .filter_map(|e| e.info.listen_addr.map(|a| a.to_string()))
            .collect();
        let mut due = Vec::new();
        for (addr, k) in self.known.iter_mut() {
            if due.len() >= limit {
                break;
            }
            if k.state == AddrState::Idle && k.next_attempt <= now {
                if connected.contains(addr) {
                    k.state = AddrState::Connected;
                    continue;
                }
                k.state = AddrState::Dialing;
                due.push(addr.clone());
            }
        }
        due
    }

    /// Record the outcome of a dial. A failure doubles the delay before the next attempt
    /// (`base`, `2·base`, `4·base`, … up to `max`).
    pub fn dial_result(
        &mut self,
        addr: &str,
        outcome: DialOutcome,
        now: Instant,
        base: Duration,
        max: Duration,
    ) {
        let Some(k) = self.known.get_mut(addr) else {
            return;
        };
        match outcome {
            DialOutcome::Connected => {
                k.state = AddrState::Connected;
                k.failures = 0;
            }
            DialOutcome::OwnAddress => k.state = AddrState::OwnAddress,
            DialOutcome::Failed => {
                k.failures = k.failures.saturating_add(1);
                k.state = AddrState::Idle;
                k.next_attempt = now + backoff(k.failures, base, max);
            }
        }
    }
}

/// How a dial ended, for [`PeerTable::dial_result`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DialOutcome {
    /// Connected (or already connected to that node).
    Connected,
    /// The address is this node itself.
    OwnAddress,
    /// Failed; back off.
    Failed,
}

/// Delay after `failures` consecutive failures: `base · 2^(failures-1)`, capped at `max`.
pub fn backoff(failures: u32, base: Duration, max: Duration) -> Duration {
    let exp = failures.saturating_sub(1).min(30);
    base.checked_mul(1u32 << exp).unwrap_or(max).min(max)
}

pub(crate) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> PublicKey {
        PublicKey([n; 32])
    }

    fn table() -> PeerTable {
        PeerTable::new(Reputation::new(
            64,
            100,
            Duration::from_secs(60),
            Duration::from_secs(600),
        ))
    }

    fn limits() -> Limits {
        Limits {
            max_inbound: 4,
            max_inbound_per_group: 4,
            eviction_min_age: Duration::ZERO,
        }
    }

    fn info_from(id: u64, k: u8, dir: Direction, ip: [u8; 4]) -> PeerInfo {
        PeerInfo {
            id: PeerId(id),
            key: key(k),
            addr: SocketAddr::from((ip, 40000 + id as u16)),
            node_id: format!("node{k}"),
            direction: dir,
            listen_addr: Some(SocketAddr::from((ip, 7000))),
            tip_index: 0,
            tip_hash: Hash::ZERO,
            score: 0,
            connected_at_ms: 0,
            last_seen_ms: 0,
            stats: PeerStats::default(),
        }
    }

    fn info(id: u64, k: u8, dir: Direction) -> PeerInfo {
        info_from(id, k, dir, [127, 0, 0, 1])
    }

    fn insert(t: &mut PeerTable, i: PeerInfo, now: Instant) {
        t.insert(i, Arc::new(PeerCounters::new()), None, now);
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let b = Duration::from_secs(1);
        let m = Duration::from_secs(60);
        assert_eq!(backoff(1, b, m), Duration::from_secs(1));
        assert_eq!(backoff(2, b, m), Duration::from_secs(2));
        assert_eq!(backoff(4, b, m), Duration::from_secs(8));
        assert_eq!(backoff(7, b, m), Duration::from_secs(60));
        assert_eq!(backoff(u32::MAX, b, m), Duration::from_secs(60));
    }

    #[test]
    fn failed_dials_back_off_exponentially_and_success_resets() {
        let mut t = table();
        let now = Instant::now();
        let (b, m) = (Duration::from_secs(1), Duration::from_secs(100));
        t.add_known("127.0.0.1:7000", now, 10);
        assert_eq!(t.take_due(now, 10), vec!["127.0.0.1:7000".to_string()]);
        assert!(
            t.take_due(now, 10).is_empty(),
            "a dialing address is not due"
        );
        t.dial_result("127.0.0.1:7000", DialOutcome::Failed, now, b, m);
        assert!(t.take_due(now, 10).is_empty());
        assert_eq!(t.take_due(now + b, 10).len(), 1);
        t.dial_result("127.0.0.1:7000", DialOutcome::Failed, now, b, m);
        assert!(
            t.take_due(now + b, 10).is_empty(),
            "second failure waits 2 s"
        );
        assert_eq!(t.take_due(now + 2 * b, 10).len(), 1);
        t.dial_result("127.0.0.1:7000", DialOutcome::Connected, now, b, m);
        assert_eq!(t.known_addr("127.0.0.1:7000").map(|k| k.failures), Some(0));
    }

    #[test]
    fn an_address_linked_to_an_existing_connection_is_redialed_when_it_drops() {
        let mut t = table();
        let now = Instant::now();
        let d = Duration::from_secs(1);
        t.add_known("hub:7000", now, 10);
        assert_eq!(t.take_due(now, 10).len(), 1);
        // The dial found the node already connected inbound (listen addr is an IP, not "hub").
        insert(&mut t, info(1, 9, Direction::Inbound), now);
        t.link_dialed_addr(PeerId(1), "hub:7000");
        t.dial_result("hub:7000", DialOutcome::Connected, now, d, d);
        assert!(
            t.take_due(now + d * 10, 10).is_empty(),
            "connected: not due"
        );
        t.remove(PeerId(1), now, d);
        assert_eq!(t.take_due(now + d, 10), vec!["hub:7000".to_string()]);
    }

    #[test]
    fn own_address_is_never_dialed_again() {
        let mut t = table();
        let now = Instant::now();
        t.add_known("127.0.0.1:1", now, 10);
        assert_eq!(t.take_due(now, 10).len(), 1);
        let d = Duration::from_secs(1);
        t.dial_result("127.0.0.1:1", DialOutcome::OwnAddress, now, d, d);
        assert!(t.take_due(now + Duration::from_secs(1000), 10).is_empty());
        assert!(t.known_addrs().is_empty());
    }

    #[test]
    fn admit_rejects_self_banned_keys_and_banned_ips() {
        let mut t = table();
        let now = Instant::now();
        let l = limits();
        assert!(matches!(
            t.admit(&key(1), &info(1, 1, Direction::Inbound), l, now),
            Admission::Reject(NetError::SelfConnection { .. })
        ));
        t.reputation().ban(
            BanTarget::Key(key(2)),
            "spam",
            now + Duration::from_secs(10),
            false,
        );
        assert!(matches!(
            t.admit(&key(1), &info(1, 2, Direction::Inbound), l, now),
            Admission::Reject(NetError::Banned { .. })
        ));
        assert!(matches!(
            t.admit(
                &key(1),
                &info(1, 2, Direction::Inbound),
                l,
                now + Duration::from_secs(11)
            ),
            Admission::Accept
        ));
        let ip = [127, 0, 0, 9];
        t.reputation().ban(
            BanTarget::Ip(ip.into()),
            "garbage",
            now + Duration::from_secs(10),
            false,
        );
        assert!(matches!(
            t.admit(&key(1), &info_from(2, 3, Direction::Inbound, ip), l, now),
            Admission::Reject(NetError::Banned { .. })
        ));
    }

    #[test]
    fn duplicate_connections_keep_the_one_dialed_by_the_smaller_key() {
        // Key 1 < key 2. On 1's side: 1's outbound must win over 2's inbound, whatever order.
        let now = Instant::now();
        let l = limits();
        let mut t = table();
        insert(&mut t, info(1, 2, Direction::Inbound), now);
        assert!(matches!(
            t.admit(&key(1), &info(2, 2, Direction::Outbound), l, now),
            Admission::Replace(PeerId(1))
        ));
        let mut t = table();
        insert(&mut t, info(1, 2, Direction::Outbound), now);
        assert!(matches!(
            t.admit(&key(1), &info(2, 2, Direction::Inbound), l, now),
            Admission::Reject(NetError::AlreadyConnected { .. })
        ));
        // On 2's side the same connection (initiated by 1 = inbound for 2) wins.
        let mut t = table();
        insert(&mut t, info(1, 1, Direction::Outbound), now);
        assert!(matches!(
            t.admit(&key(2), &info(2, 1, Direction::Inbound), l, now),
            Admission::Replace(PeerId(1))
        ));
        // We dialed twice: keep the older.
        let mut t = table();
        insert(&mut t, info(1, 2, Direction::Outbound), now);
        assert!(matches!(
            t.admit(&key(1), &info(2, 2, Direction::Outbound), l, now),
            Admission::Reject(NetError::AlreadyConnected { .. })
        ));
        // The remote dialed twice: admit both, the remote closes one; the survivor stays mapped.
        let mut t = table();
        insert(&mut t, info(1, 1, Direction::Inbound), now);
        assert!(matches!(
            t.admit(&key(2), &info(2, 1, Direction::Inbound), l, now),
            Admission::Accept
        ));
        insert(&mut t, info(2, 1, Direction::Inbound), now);
        t.remove(PeerId(2), now, Duration::from_secs(1));
        assert_eq!(t.by_key(&key(1)).map(|p| p.id), Some(PeerId(1)));
    }

    #[test]
    fn a_full_inbound_evicts_from_the_largest_group_and_the_group_cap_refuses() {
        let now = Instant::now();
        let mut t = table();
        for i in 1..=4u8 {
            insert(
                &mut t,
                info_from(u64::from(i), 10 + i, Direction::Inbound, [127, 0, 0, 2]),
                now + Duration::from_millis(u64::from(i)),
            );
        }
        // Inbound full, all from one address: a newcomer from another evicts the youngest.
        let newcomer = info_from(9, 30, Direction::Inbound, [127, 0, 0, 3]);
        assert!(matches!(
            t.admit(&key(1), &newcomer, limits(), now),
            Admission::Evict(PeerId(4))
        ));
        // With a group cap of 4, a fifth connection from the same address is refused.
        let same = info_from(10, 31, Direction::Inbound, [127, 0, 0, 2]);
        assert!(matches!(
            t.admit(
                &key(1),
                &same,
                Limits {
                    max_inbound: 8,
                    max_inbound_per_group: 4,
                    eviction_min_age: Duration::ZERO
                },
                now
            ),
            Admission::Reject(NetError::TooManyPeers { .. })
        ));
    }

    #[test]
    fn a_full_inbound_of_lone_groups_admits_newcomers_and_one_group_never_takes_every_slot() {
        // Default slots: 24 inbound, at most 8 from one group. Every honest peer is alone in
        // its group (distinct loopback addresses); the attacker holds one public /16.
        let l = Limits {
            max_inbound: 24,
            max_inbound_per_group: 8,
            // Connections here are a millisecond apart; the minimum age is tested in
            // admission.rs.
            eviction_min_age: Duration::ZERO,
        };
        let mut t = table();
        t.set_eviction_key(Hash::sha256(b"test eviction key"));
        let start = Instant::now();
        let mut next = 1u64;
        let mut admit = |t: &mut PeerTable, ip: [u8; 4], at: Instant| -> bool {
            let id = next;
            next += 1;
            let i = info_from(id, (id % 250) as u8, Direction::Inbound, ip);
            // Distinct keys: the table refuses a second connection of one key.
            let i = PeerInfo {
                key: PublicKey(Hash::sha256(&id.to_be_bytes()).0),
                ..i
            };
            match t.admit(&key(0), &i, l, at) {
                Admission::Accept => {}
                Admission::Evict(v) => {
                    t.remove(v, at, Duration::from_secs(1));
                }
                _ => return false,
            }
            insert(t, i, at);
            true
        };
        for h in 0..24u8 {
            let at = start + Duration::from_millis(u64::from(h));
            assert!(admit(&mut t, [127, 0, 1, h + 1], at));
        }
        assert_eq!(t.count(Direction::Inbound), 24);
        let is_attacker = |p: &PeerInfo| p.addr.ip() == IpAddr::from([44, 7, 0, 1]);
        let mut honest_admitted = 0;
        for round in 0..400u64 {
            let at = start + Duration::from_millis(1_000 + round);
            // Three attacker connections for each honest newcomer.
            if round % 4 == 3 {
                let h = 2 + (round / 4) as u8;
                honest_admitted += usize::from(admit(&mut t, [127, 0, 2, h], at));
            } else {
                admit(&mut t, [44, 7, 0, 1], at);
            }
            let attackers = t.peers().iter().filter(|p| is_attacker(p)).count();
            assert!(
                attackers <= l.max_inbound_per_group,
                "round {round}: the attacker holds {attackers} inbound slots"
            );
            assert_eq!(t.count(Direction::Inbound), 24);
        }
        // A full node of lone groups still admits honest newcomers (before: all refused).
        assert_eq!(honest_admitted, 100, "every honest newcomer found a slot");
    }

    #[test]
    fn penalties_ban_the_key_and_for_hostile_offences_the_ip() {
        let mut t = table();
        let now = Instant::now();
        let ip: IpAddr = [127, 0, 0, 5].into();
        insert(
            &mut t,
            info_from(1, 2, Direction::Inbound, [127, 0, 0, 5]),
            now,
        );
        let bans = t.penalize(
            Some(key(2)),
            Some(ip),
            Misbehaviour::MalformedFrame,
            "x",
            now,
        );
        assert!(bans.is_empty());
        assert_eq!(t.get(PeerId(1)).map(|p| p.score), Some(50));
        // A fresh key from the same IP: the IP's score keeps counting.
        let bans = t.penalize(
            Some(key(3)),
            Some(ip),
            Misbehaviour::MalformedFrame,
            "y",
            now,
        );
        assert_eq!(bans.len(), 1);
        assert_eq!(bans[0].0, BanTarget::Ip(ip));
        assert!(t.check_ip(ip, now).is_err());
        // Offences an honest node can commit never score the address.
        let other: IpAddr = [127, 0, 0, 6].into();
        for _ in 0..20 {
            t.penalize(
                Some(key(4)),
                Some(other),
                Misbehaviour::RejectedBlock,
                "z",
                now,
            );
        }
        assert!(t.check_ip(other, now).is_ok());
        assert!(t.reputation().ban_of(BanTarget::Key(key(4)), now).is_some());
    }

    #[test]
    fn tip_only_moves_forward() {
        let mut t = table();
        let now = Instant::now();
        insert(&mut t, info(1, 2, Direction::Inbound), now);
        t.update_tip(PeerId(1), 5, Hash([5; 32]));
        t.update_tip(PeerId(1), 3, Hash([3; 32]));
        assert_eq!(t.get(PeerId(1)).map(|p| p.tip_index), Some(5));
    }
}
