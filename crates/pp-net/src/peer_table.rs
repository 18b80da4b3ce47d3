//! The peer table: who we are connected to, what we know about them, whom we refuse, and which
//! addresses to dial when.
//!
//! A plain synchronous data structure; the network keeps it behind a `std::sync::Mutex` held only
//! for a few map operations and never across an `.await`. Time is passed in (tokio's `Instant`,
//! so the simulator and paused-time tests control it), which keeps every rule here unit-testable.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::time::Duration;

use pp_ledger::Hash;
use serde::Serialize;
use tokio::time::Instant;

use crate::error::NetError;

/// Misbehaviour points per offence (a node is banned when its score reaches the threshold,
/// 100 by default). Chosen so that one clear proof of a broken or hostile peer (a malformed frame,
/// a lying announcement) costs half the budget, and a merely odd request far less.
pub mod penalty {
    /// A frame that is too large, empty, not UTF-8, not JSON, or not a known message.
    pub const MALFORMED_FRAME: i32 = 50;
    /// A well-formed message where it is not allowed (a second `hello`).
    pub const PROTOCOL_VIOLATION: i32 = 20;
    /// A `new_block` whose summary fields do not match its block.
    pub const BAD_ANNOUNCEMENT: i32 = 50;
    /// A request outside the limits (e.g. a locator longer than 64 hashes).
    pub const BAD_REQUEST: i32 = 10;
}

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

/// What we know about a connected peer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PeerInfo {
    /// The connection id.
    pub id: PeerId,
    /// The remote socket address of this connection.
    pub addr: SocketAddr,
    /// The node id the remote announced in `hello`.
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
    /// Misbehaviour score of the node (higher is worse; banned at the threshold).
    pub score: i32,
    /// When the connection was established (unix ms).
    pub connected_at_ms: u64,
    /// When a frame was last received from it (unix ms).
    pub last_seen_ms: u64,
}

/// A ban on a node id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ban {
    /// Why.
    pub reason: String,
    /// Until when.
    pub until: Instant,
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
    /// Refuse it.
    Reject(NetError),
}

/// Peers, scores, bans and known addresses.
#[derive(Debug, Default)]
pub struct PeerTable {
    peers: BTreeMap<PeerId, PeerInfo>,
    by_node: HashMap<String, PeerId>,
    scores: HashMap<String, i32>,
    bans: HashMap<String, Ban>,
    known: BTreeMap<String, KnownAddr>,
    /// The address string each outbound connection was dialed as (it may differ from the
    /// listen address the peer announced, e.g. a host name), so its drop re-arms that entry.
    dialed_as: HashMap<PeerId, Vec<String>>,
    next_id: u64,
}

/// Unix time in ms, for display fields only (all decisions use `Instant`).
pub(crate) fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

impl PeerTable {
    /// An empty table.
    pub fn new() -> PeerTable {
        PeerTable::default()
    }

    /// A fresh connection id.
    pub fn next_peer_id(&mut self) -> PeerId {
        self.next_id += 1;
        PeerId(self.next_id)
    }

    /// The ban on `node_id`, if one is in force at `now` (expired bans are forgotten).
    pub fn ban_of(&mut self, node_id: &str, now: Instant) -> Option<Ban> {
        match self.bans.get(node_id) {
            Some(b) if b.until > now => Some(b.clone()),
            Some(_) => {
                self.bans.remove(node_id);
                // A served ban wipes the slate, or the next small slip would re-ban at once.
                self.scores.remove(node_id);
                None
            }
            None => None,
        }
    }

    /// The checks that need only the remote's node id: not ourselves, not banned.
    pub fn precheck(
        &mut self,
        our_node_id: &str,
        node_id: &str,
        now: Instant,
    ) -> Result<(), NetError> {
        if node_id == our_node_id {
            return Err(NetError::SelfConnection {
                node_id: node_id.to_string(),
            });
        }
        if let Some(ban) = self.ban_of(node_id, now) {
            return Err(NetError::Banned {
                node_id: node_id.to_string(),
                reason: ban.reason,
                remaining_ms: millis(ban.until.saturating_duration_since(now)),
            });
        }
        Ok(())
    }

    /// Decide whether a connection that completed the handshake may join.
    ///
    /// Two nodes that dial each other at the same moment end up with two connections, and each
    /// side sees the other's as the duplicate. To keep exactly one without a further round trip,
    /// both sides apply the same rule: keep the connection *initiated by the node with the smaller
    /// node id*. Two connections from the same initiator: only the initiator decides (it keeps
    /// the older and closes the newer), because the two sides may see the two handshakes finish
    /// in opposite orders; the accepting side admits both and follows the initiator's choice.
    pub fn admit(&mut self, our_node_id: &str, candidate: &PeerInfo, now: Instant) -> Admission {
        if let Err(e) = self.precheck(our_node_id, &candidate.node_id, now) {
            return Admission::Reject(e);
        }
        let Some(existing_id) = self.by_node.get(&candidate.node_id).copied() else {
            return Admission::Accept;
        };
        let Some(existing) = self.peers.get(&existing_id) else {
            return Admission::Accept;
        };
        let initiator = |d: Direction| match d {
            Direction::Outbound => our_node_id,
            Direction::Inbound => candidate.node_id.as_str(),
        };
        let old_init = initiator(existing.direction);
        let new_init = initiator(candidate.direction);
        let preferred = our_node_id.min(candidate.node_id.as_str());
        if old_init != new_init && new_init == preferred {
            Admission::Replace(existing_id)
        } else if old_init == new_init && new_init != our_node_id {
            Admission::Accept
        } else {
            Admission::Reject(NetError::AlreadyConnected {
                node_id: candidate.node_id.clone(),
            })
        }
    }

    /// Add a connected peer (after [`PeerTable::admit`]); its score is the node's standing score.
    /// `dialed_as` is the address string an outbound connection was dialed with.
    pub fn insert(&mut self, mut info: PeerInfo, dialed_as: Option<&str>) {
        info.score = self.scores.get(&info.node_id).copied().unwrap_or(0);
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
        self.by_node.insert(info.node_id.clone(), info.id);
        self.peers.insert(info.id, info);
    }

    /// Remove a peer; its listen address (if known) becomes dialable after the base backoff.
    pub fn remove(&mut self, id: PeerId, now: Instant, base: Duration) -> Option<PeerInfo> {
        let info = self.peers.remove(&id)?;
        if self.by_node.get(&info.node_id) == Some(&id) {
            self.by_node.remove(&info.node_id);
            // A transient duplicate (see `admit`) takes over as the node's connection.
            if let Some(other) = self.peers.values().find(|p| p.node_id == info.node_id) {
                self.by_node.insert(info.node_id.clone(), other.id);
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
    pub fn get(&self, id: PeerId) -> Option<&PeerInfo> {
        self.peers.get(&id)
    }

    /// The connection whose announced listen address is `addr`, or that dialing `addr` led to.
    pub fn by_addr(&self, addr: &str) -> Option<&PeerInfo> {
        self.peers.values().find(|p| {
            p.listen_addr.map(|a| a.to_string()).as_deref() == Some(addr)
                || self
                    .dialed_as
                    .get(&p.id)
                    .is_some_and(|v| v.iter().any(|d| d == addr))
        })
    }

    /// The connection to this node id, if any.
    pub fn by_node_id(&self, node_id: &str) -> Option<&PeerInfo> {
        self.by_node.get(node_id).and_then(|id| self.peers.get(id))
    }

    /// All connected peers, by connection id.
    pub fn peers(&self) -> Vec<PeerInfo> {
        self.peers.values().cloned().collect()
    }

    /// Number of connected peers.
    pub fn len(&self) -> usize {
        self.peers.len()
    }

    /// True when no peer is connected.
    pub fn is_empty(&self) -> bool {
        self.peers.is_empty()
    }

    /// Record that a frame arrived from the peer.
    pub fn touch(&mut self, id: PeerId) {
        if let Some(p) = self.peers.get_mut(&id) {
            p.last_seen_ms = unix_ms();
        }
    }

    /// Record a peer's new tip (from a `new_block`); only ever moves it forward.
    pub fn update_tip(&mut self, id: PeerId, index: u64, hash: Hash) {
        if let Some(p) = self.peers.get_mut(&id) {
            if index >= p.tip_index {
                p.tip_index = index;
                p.tip_hash = hash;
            }
        }
    }

    /// Add `points` to the node's misbehaviour score. Returns the ban if the score reached
    /// `threshold` (the node is then banned until `now + duration`).
    pub fn penalize(
        &mut self,
        node_id: &str,
        points: i32,
        reason: &str,
        threshold: i32,
        duration: Duration,
        now: Instant,
    ) -> Option<Ban> {
        let score = self.scores.entry(node_id.to_string()).or_insert(0);
        *score = score.saturating_add(points);
        let score = *score;
        if let Some(id) = self.by_node.get(node_id) {
            if let Some(p) = self.peers.get_mut(id) {
                p.score = score;
            }
        }
        if score >= threshold {
            let ban = Ban {
                reason: reason.to_string(),
                until: now + duration,
            };
            self.bans.insert(node_id.to_string(), ban.clone());
            Some(ban)
        } else {
            None
        }
    }

    /// The node's misbehaviour score (0 if never penalised).
    pub fn score(&self, node_id: &str) -> i32 {
        self.scores.get(node_id).copied().unwrap_or(0)
    }

    /// Bans in force at `now`: (node id, ban).
    pub fn bans(&self, now: Instant) -> Vec<(String, Ban)> {
        let mut v: Vec<_> = self
            .bans
            .iter()
            .filter(|(_, b)| b.until > now)
            .map(|(n, b)| (n.clone(), b.clone()))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    /// Ban a node outright.
    pub fn ban(&mut self, node_id: &str, reason: &str, until: Instant) {
        self.bans.insert(
            node_id.to_string(),
            Ban {
                reason: reason.to_string(),
                until,
            },
        );
    }

    /// Remember an address to dial (ignored when `max` addresses are already known).
    pub fn add_known(&mut self, addr: &str, now: Instant, max: usize) {
        if self.known.contains_key(addr) || self.known.len() >= max {
            return;
        }
        let connected = self
            .peers
            .values()
            .any(|p| p.listen_addr.map(|a| a.to_string()).as_deref() == Some(addr));
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
            .filter_map(|p| p.listen_addr.map(|a| a.to_string()))
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

    fn info(id: u64, node: &str, dir: Direction) -> PeerInfo {
        PeerInfo {
            id: PeerId(id),
            addr: SocketAddr::from(([127, 0, 0, 1], 40000 + id as u16)),
            node_id: node.to_string(),
            direction: dir,
            listen_addr: Some(SocketAddr::from(([127, 0, 0, 1], 7000))),
            tip_index: 0,
            tip_hash: Hash::ZERO,
            score: 0,
            connected_at_ms: 0,
            last_seen_ms: 0,
        }
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
        let mut t = PeerTable::new();
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
        let mut t = PeerTable::new();
        let now = Instant::now();
        let d = Duration::from_secs(1);
        t.add_known("hub:7000", now, 10);
        assert_eq!(t.take_due(now, 10).len(), 1);
        // The dial found the node already connected inbound (listen addr is an IP, not "hub").
        t.insert(info(1, "hub", Direction::Inbound), None);
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
        let mut t = PeerTable::new();
        let now = Instant::now();
        t.add_known("127.0.0.1:1", now, 10);
        assert_eq!(t.take_due(now, 10).len(), 1);
        let d = Duration::from_secs(1);
        t.dial_result("127.0.0.1:1", DialOutcome::OwnAddress, now, d, d);
        assert!(t.take_due(now + Duration::from_secs(1000), 10).is_empty());
        assert!(t.known_addrs().is_empty());
    }

    #[test]
    fn admit_rejects_self_and_banned_nodes() {
        let mut t = PeerTable::new();
        let now = Instant::now();
        assert!(matches!(
            t.admit("a", &info(1, "a", Direction::Inbound), now),
            Admission::Reject(NetError::SelfConnection { .. })
        ));
        t.ban("b", "spam", now + Duration::from_secs(10));
        assert!(matches!(
            t.admit("a", &info(1, "b", Direction::Inbound), now),
            Admission::Reject(NetError::Banned { .. })
        ));
        assert!(matches!(
            t.admit(
                "a",
                &info(1, "b", Direction::Inbound),
                now + Duration::from_secs(11)
            ),
            Admission::Accept
        ));
    }

    #[test]
    fn duplicate_connections_keep_the_one_dialed_by_the_smaller_node_id() {
        // Node "a" < "b". On a's side: a's outbound must win over b's inbound, whatever order.
        let now = Instant::now();
        let mut t = PeerTable::new();
        t.insert(info(1, "b", Direction::Inbound), None);
        assert!(matches!(
            t.admit("a", &info(2, "b", Direction::Outbound), now),
            Admission::Replace(PeerId(1))
        ));
        let mut t = PeerTable::new();
        t.insert(info(1, "b", Direction::Outbound), None);
        assert!(matches!(
            t.admit("a", &info(2, "b", Direction::Inbound), now),
            Admission::Reject(NetError::AlreadyConnected { .. })
        ));
        // On b's side the same connection (initiated by a = inbound for b) wins.
        let mut t = PeerTable::new();
        t.insert(info(1, "a", Direction::Outbound), None);
        assert!(matches!(
            t.admit("b", &info(2, "a", Direction::Inbound), now),
            Admission::Replace(PeerId(1))
        ));
        // We dialed twice: keep the older.
        let mut t = PeerTable::new();
        t.insert(info(1, "b", Direction::Outbound), None);
        assert!(matches!(
            t.admit("a", &info(2, "b", Direction::Outbound), now),
            Admission::Reject(NetError::AlreadyConnected { .. })
        ));
        // The remote dialed twice: admit both, the remote closes one; the survivor stays mapped.
        let mut t = PeerTable::new();
        t.insert(info(1, "a", Direction::Inbound), None);
        assert!(matches!(
            t.admit("b", &info(2, "a", Direction::Inbound), now),
            Admission::Accept
        ));
        t.insert(info(2, "a", Direction::Inbound), None);
        t.remove(PeerId(2), now, Duration::from_secs(1));
        assert_eq!(t.by_node_id("a").map(|p| p.id), Some(PeerId(1)));
    }

    #[test]
    fn penalties_accumulate_to_a_ban_that_expires() {
        let mut t = PeerTable::new();
        let now = Instant::now();
        let d = Duration::from_secs(60);
        t.insert(info(1, "b", Direction::Inbound), None);
        assert!(t.penalize("b", 40, "x", 100, d, now).is_none());
        assert_eq!(t.get(PeerId(1)).map(|p| p.score), Some(40));
        assert!(t.penalize("b", 40, "x", 100, d, now).is_none());
        let ban = t.penalize("b", 40, "bad frames", 100, d, now);
        assert_eq!(ban.map(|b| b.reason), Some("bad frames".to_string()));
        assert!(t.ban_of("b", now + Duration::from_secs(59)).is_some());
        assert!(t.ban_of("b", now + Duration::from_secs(61)).is_none());
    }

    #[test]
    fn tip_only_moves_forward() {
        let mut t = PeerTable::new();
        t.insert(info(1, "b", Direction::Inbound), None);
        t.update_tip(PeerId(1), 5, Hash([5; 32]));
        t.update_tip(PeerId(1), 3, Hash([3; 32]));
        assert_eq!(t.get(PeerId(1)).map(|p| p.tip_index), Some(5));
    }
}
