//! Admission: address groups, the cap on connections still in the handshake, and which inbound
//! peer to evict when a newcomer finds inbound full.
//!
//! The rules follow Bitcoin Core's: a stranger who controls many connections from one address
//! group must not be able to keep every other group out. Limits are per group, and when inbound
//! is full an authenticated newcomer may take the slot of the youngest connection of the most
//! represented group, after a few groups (by a keyed hash), the fastest peers, the peers that
//! were useful (recently delivered valid blocks or transactions) and the longest-connected half
//! of the rest have been set aside (see [`select_eviction`]).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::{Arc, Mutex};

use crate::peer_table::PeerId;

/// The address group of an IP: the unit of the per-group limits and of eviction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AddrGroup {
    /// A public IPv4 address's /16.
    V4([u8; 2]),
    /// A public IPv6 address's /32.
    V6([u8; 4]),
    /// Loopback and private-range addresses, each its own group (so tests can model distinct
    /// hosts with 127.0.0.x, and hosts of one LAN are told apart).
    Exact(IpAddr),
}

/// The group of `ip`: /16 for public IPv4, /32 for IPv6, the exact address for loopback,
/// private (RFC 1918, shared 100.64/10, link-local) and unique-local IPv6 ranges. IPv4-mapped
/// IPv6 addresses are grouped as IPv4.
pub fn addr_group(ip: IpAddr) -> AddrGroup {
    match ip {
        IpAddr::V4(v4) => v4_group(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4_group(v4),
            None if is_local_v6(&v6) => AddrGroup::Exact(ip),
            None => {
                let o = v6.octets();
                AddrGroup::V6([o[0], o[1], o[2], o[3]])
            }
        },
    }
}

fn v4_group(v4: Ipv4Addr) -> AddrGroup {
    let o = v4.octets();
    let shared = o[0] == 100 && (o[1] & 0xc0) == 64;
    if v4.is_loopback() || v4.is_private() || v4.is_link_local() || v4.is_unspecified() || shared {
        AddrGroup::Exact(IpAddr::V4(v4))
    } else {
        AddrGroup::V4([o[0], o[1]])
    }
}

fn is_local_v6(v6: &Ipv6Addr) -> bool {
    let first = v6.segments()[0];
    v6.is_loopback()
        || v6.is_unspecified()
        || (first & 0xfe00) == 0xfc00
        || (first & 0xffc0) == 0xfe80
}

/// What eviction needs to know about one inbound peer.
#[derive(Clone, Debug)]
pub struct EvictionCandidate {
    /// The connection.
    pub id: PeerId,
    /// Its address group.
    pub group: AddrGroup,
    /// A keyed hash of its group under a secret of this node (see
    /// [`crate::peer_table::PeerTable::set_eviction_key`]): which groups are protected by
    /// [`PROTECT_BY_GROUP`] cannot be chosen by an outsider.
    pub keyed_group: u64,
    /// When it connected (ms, any monotonic origin): larger is younger.
    pub connected_ms: u64,
    /// When it last delivered a valid block or transaction (0: never).
    pub last_useful_ms: u64,
    /// Its best keepalive round trip, in µs (None: not measured yet).
    pub min_rtt_us: Option<u64>,
}

/// Peers protected from eviction for their address group: one each from the groups with the
/// highest keyed hash (Bitcoin Core protects 4 by keyed netgroup). At most a quarter of the
/// inbound peers (see [`select_eviction`]).
pub const PROTECT_BY_GROUP: usize = 4;
/// Peers protected from eviction for the lowest keepalive round trip (Core: 8 of 125 slots; 4
/// of our default 24 inbound slots). At most a quarter of the inbound peers.
pub const PROTECT_BY_RTT: usize = 4;
/// Peers protected from eviction for having most recently delivered a valid block or
/// transaction (Core: 4 for transactions and 4 for blocks). At most a quarter of the inbound
/// peers.
pub const PROTECT_BY_USEFUL: usize = 4;

/// The inbound peer to evict for a newcomer, or `None` when every peer is protected. This is
/// Bitcoin Core's `SelectNodeToEvict` (net.cpp), scaled to our slot counts, with one rule
/// added against churn.
///
/// Protected, in this order, each step from the peers the earlier steps left:
/// 0. every peer connected for less than `min_age_ms` (at `now_ms`, on the clock of
///    `connected_ms`) that is alone in its address group among the inbound peers: a newcomer
///    never evicts such a newcomer, so when more nodes want a slot than there are, a slot
///    changes hands at most once per `min_age_ms` instead of the last slot going round the
///    contenders as fast as they redial. Young peers of a group with several inbound
///    connections get no such protection: one address (or /16) that keeps reconnecting its
///    many connections cannot use their youth to keep newcomers out;
/// 1. one peer from each of the [`PROTECT_BY_GROUP`] groups with the highest keyed hash (an
///    attacker cannot choose which groups these are);
/// 2. the [`PROTECT_BY_RTT`] peers with the lowest round trip;
/// 3. the [`PROTECT_BY_USEFUL`] peers that most recently delivered something valid;
/// 4. half of the rest: those connected longest (an attacker would have to hold connections
///    longer than honest peers have, from before the attack).
///
/// Steps 1-3 each protect at most a quarter of all the inbound peers (Core's fixed counts are
/// for 115 inbound slots; with 4 or 5, fixed counts of 4 would protect everybody and a full
/// node would never admit anyone again). So 4 aged inbound peers leave one to evict, 24 leave
/// six.
///
/// Of the peers left, the group with the most of them loses its youngest (ties: the group whose
/// youngest is youngest). A group of one can lose its peer: on a network where every peer is
/// its own group (loopback, a LAN) a full node still frees a slot for a newcomer. No group can
/// take every slot this way: a newcomer from the group with the most evictable peers evicts
/// one of its own, and admission caps each group at `max_inbound_per_group`, below
/// `max_inbound`.
pub fn select_eviction(
    peers: &[EvictionCandidate],
    now_ms: u64,
    min_age_ms: u64,
) -> Option<PeerId> {
    let quarter = peers.len() / 4;
    let mut group_size: HashMap<AddrGroup, usize> = HashMap::new();
    for p in peers {
        *group_size.entry(p.group).or_default() += 1;
    }
    // 0. By age: the young alone in their group are not candidates.
    let mut left: Vec<&EvictionCandidate> = peers
        .iter()
        .filter(|p| {
            now_ms.saturating_sub(p.connected_ms) >= min_age_ms
                || group_size.get(&p.group).copied().unwrap_or(0) > 1
        })
        .collect();

    // 1. By keyed group: one per group, the highest hashes (ties within a group: the oldest).
    let mut by_group = left.clone();
    by_group.sort_by(|a, b| {
        b.keyed_group
            .cmp(&a.keyed_group)
            .then(a.group.cmp(&b.group))
            .then(a.connected_ms.cmp(&b.connected_ms))
            .then(a.id.cmp(&b.id))
    });
    let mut protected: Vec<PeerId> = Vec::new();
    let mut seen: Vec<AddrGroup> = Vec::new();
    for p in by_group {
        if protected.len() >= PROTECT_BY_GROUP.min(quarter) {
            break;
        }
        if !seen.contains(&p.group) {
            seen.push(p.group);
            protected.push(p.id);
        }
    }
    left.retain(|p| !protected.contains(&p.id));

    // 2. By round trip.
    let mut fast: Vec<&EvictionCandidate> = left
        .iter()
        .copied()
        .filter(|p| p.min_rtt_us.is_some())
        .collect();
    fast.sort_by(|a, b| a.min_rtt_us.cmp(&b.min_rtt_us).then(a.id.cmp(&b.id)));
    let protected: Vec<PeerId> = fast
        .iter()
        .take(PROTECT_BY_RTT.min(quarter))
        .map(|p| p.id)
        .collect();
    left.retain(|p| !protected.contains(&p.id));

    // 3. By recent usefulness.
    let mut useful: Vec<&EvictionCandidate> = left
        .iter()
        .copied()
        .filter(|p| p.last_useful_ms > 0)
        .collect();
    useful.sort_by(|a, b| {
        b.last_useful_ms
            .cmp(&a.last_useful_ms)
            .then(a.id.cmp(&b.id))
    });
    let protected: Vec<PeerId> = useful
        .iter()
        .take(PROTECT_BY_USEFUL.min(quarter))
        .map(|p| p.id)
        .collect();
    left.retain(|p| !protected.contains(&p.id));

    // 4. Half of the rest by time connected.
    left.sort_by(|a, b| a.connected_ms.cmp(&b.connected_ms).then(a.id.cmp(&b.id)));
    let keep = left.len() / 2;
    left.drain(..keep);

    let mut groups: HashMap<AddrGroup, Vec<&EvictionCandidate>> = HashMap::new();
    for p in left {
        groups.entry(p.group).or_default().push(p);
    }
    let youngest = |v: &[&EvictionCandidate]| -> Option<(u64, PeerId)> {
        v.iter().map(|p| (p.connected_ms, p.id)).max()
    };
    groups
        .values()
        .max_by_key(|v| (v.len(), youngest(v)))
        .and_then(|v| youngest(v))
        .map(|(_, id)| id)
}

/// Counts connections still in the handshake, in total and per IP. A [`HandshakeSlot`] holds
/// one count until it is dropped, however the handshake ends.
#[derive(Debug, Clone)]
pub struct HandshakeLimiter {
    inner: Arc<Mutex<HandshakeCounts>>,
    max_total: usize,
    max_per_ip: usize,
}

#[derive(Debug, Default)]
struct HandshakeCounts {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
}

/// One connection's place in the handshake count.
#[derive(Debug)]
pub struct HandshakeSlot {
    inner: Arc<Mutex<HandshakeCounts>>,
    ip: IpAddr,
}

impl HandshakeLimiter {
    /// At most `max_total` handshakes at once, `max_per_ip` from one IP.
    pub fn new(max_total: usize, max_per_ip: usize) -> HandshakeLimiter {
        HandshakeLimiter {
            inner: Arc::new(Mutex::new(HandshakeCounts::default())),
            max_total: max_total.max(1),
            max_per_ip: max_per_ip.max(1),
        }
    }

    /// A slot for a handshake from `ip`, or `None` if a limit is reached.
    pub fn try_acquire(&self, ip: IpAddr) -> Option<HandshakeSlot> {
        let mut c = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let here = c.per_ip.get(&ip).copied().unwrap_or(0);
        if c.total >= self.max_total || here >= self.max_per_ip {
            return None;
        }
        c.total += 1;
        c.per_ip.insert(ip, here + 1);
        Some(HandshakeSlot {
            inner: self.inner.clone(),
            ip,
        })
    }

    /// Handshakes in progress.
    pub fn in_progress(&self) -> usize {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).total
    }
}

impl Drop for HandshakeSlot {
    fn drop(&mut self) {
        let mut c = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        c.total = c.total.saturating_sub(1);
        if let Some(n) = c.per_ip.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                c.per_ip.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn groups_are_slash16_for_public_v4_and_exact_for_local_ranges() {
        assert_eq!(addr_group(ip("8.8.4.4")), addr_group(ip("8.8.200.1")));
        assert_ne!(addr_group(ip("8.8.4.4")), addr_group(ip("8.9.4.4")));
        assert_ne!(addr_group(ip("127.0.0.2")), addr_group(ip("127.0.0.3")));
        assert_ne!(addr_group(ip("10.0.0.1")), addr_group(ip("10.0.0.2")));
        assert_ne!(addr_group(ip("192.168.1.1")), addr_group(ip("192.168.1.2")));
        assert_ne!(addr_group(ip("100.64.0.1")), addr_group(ip("100.64.0.2")));
        assert_eq!(
            addr_group(ip("2001:db8:1::1")),
            addr_group(ip("2001:db8:ffff::2"))
        );
        assert_ne!(addr_group(ip("fd00::1")), addr_group(ip("fd00::2")));
        assert_eq!(addr_group(ip("::ffff:8.8.4.4")), addr_group(ip("8.8.1.1")));
    }

    fn cand(
        id: u64,
        group: &str,
        connected: u64,
        useful: u64,
        rtt: Option<u64>,
    ) -> EvictionCandidate {
        let g = addr_group(ip(group));
        EvictionCandidate {
            id: PeerId(id),
            group: g,
            // Any fixed hash of the group: here the last octet.
            keyed_group: match g {
                AddrGroup::Exact(IpAddr::V4(v4)) => u64::from(v4.octets()[3]),
                _ => 0,
            },
            connected_ms: connected,
            last_useful_ms: useful,
            min_rtt_us: rtt,
        }
    }

    #[test]
    fn evicts_the_youngest_of_the_largest_group() {
        let peers = vec![
            cand(1, "127.0.0.2", 10, 0, None),
            cand(2, "127.0.0.3", 11, 0, None),
            cand(3, "127.0.0.3", 12, 0, None),
            cand(4, "127.0.0.3", 13, 0, None),
            cand(5, "127.0.0.4", 14, 0, None),
        ];
        assert_eq!(select_eviction(&peers, 1_000, 0), Some(PeerId(4)));
    }

    #[test]
    fn useful_and_fast_peers_are_protected() {
        // One IP holds every slot; one of its peers delivered blocks, one is the fastest.
        let mut peers: Vec<_> = (1..=8)
            .map(|i| cand(i, "127.0.0.2", i * 10, 0, Some(1000 + i)))
            .collect();
        peers[7].last_useful_ms = 5; // the youngest delivered a block
        peers[6].min_rtt_us = Some(1); // the next youngest is the fastest
        let victim = select_eviction(&peers, 1_000, 0);
        assert_eq!(victim, Some(PeerId(6)));
    }

    #[test]
    fn nothing_is_evicted_when_all_are_protected() {
        assert_eq!(select_eviction(&[], 1_000, 0), None);
        // Three aged peers of distinct groups, each protected by one rule (a quarter of 4 slots
        // each): the top keyed group, the fastest of the rest, the most recently useful.
        let three = vec![
            cand(1, "127.0.0.9", 10, 0, None),
            cand(2, "127.0.0.3", 11, 0, Some(500)),
            cand(3, "127.0.0.4", 12, 7, None),
            // A fourth, connected 100 ms ago: too young to evict.
            cand(4, "127.0.0.5", 900, 0, None),
        ];
        assert_eq!(select_eviction(&three, 1_000, 500), None);
        // Once it has aged it is the one left.
        assert_eq!(select_eviction(&three, 1_400, 500), Some(PeerId(4)));
    }

    #[test]
    fn a_newcomer_never_evicts_a_newcomer() {
        // Eight peers connected within the last second, each its own group: with a minimum
        // age of 10 s nobody is evicted (before: the youngest, so the last slot went round the
        // nodes that kept redialing a full seed).
        let young: Vec<_> = (1..=8u64)
            .map(|i| cand(i, &format!("127.0.2.{i}"), 60_000 + i * 100, 0, None))
            .collect();
        assert_eq!(select_eviction(&young, 61_000, 10_000), None);
        // The same peers 10 s later: one of them may go.
        assert!(select_eviction(&young, 71_000, 10_000).is_some());
        // Youth does not protect a crowded group: four young connections from one address
        // (reconnecting as fast as they like) still lose one to a newcomer.
        let crowd: Vec<_> = (1..=4u64)
            .map(|i| cand(i, "127.0.2.99", 60_000 + i * 100, 0, None))
            .collect();
        assert_eq!(select_eviction(&crowd, 61_000, 10_000), Some(PeerId(4)));
    }

    #[test]
    fn a_full_node_with_four_inbound_peers_of_lone_groups_evicts_one() {
        // The 10-process discovery test after node0 dies: a node with 4 inbound slots, each
        // peer alone in its loopback group, all of them fast and useful (they relay blocks).
        // Before: every lone group was protected (main), or the 4 keyed groups protected all 4
        // (session 6), so a node below its outbound target whose other candidates were full
        // had no way in. Now each protection takes a quarter (one peer) and one is left.
        let peers: Vec<_> = (1..=4u64)
            .map(|i| cand(i, &format!("127.0.3.{i}"), i * 10, 100 + i, Some(1_000 + i)))
            .collect();
        // Protected: group .4 (highest keyed hash), the fastest of the rest (1), the most
        // recently useful of the rest (3). Left: 2.
        assert_eq!(select_eviction(&peers, 60_000, 10_000), Some(PeerId(2)));
    }

    #[test]
    fn a_full_node_whose_peers_are_each_alone_in_their_group_still_evicts_one() {
        // 24 inbound peers, each its own group (loopback, a LAN, turmoil's private addresses):
        // Bitcoin Core still evicts, and so do we (before: every lone peer was protected and a
        // full seed refused every newcomer).
        let peers: Vec<_> = (1..=24u64)
            .map(|i| {
                let rtt = Some(1_000 + i);
                let useful = if i % 3 == 0 { i } else { 0 };
                cand(i, &format!("127.0.1.{i}"), i * 10, useful, rtt)
            })
            .collect();
        let victim = select_eviction(&peers, 100_000, 10_000).expect("a full node frees a slot");
        let v = peers.iter().find(|p| p.id == victim).unwrap();
        // Not one of the protected: top keyed groups (the highest last octets, 21..=24), the
        // fastest four of the rest (1..=4), the four most recently useful of the rest (18, 15,
        // 12, 9), the oldest half of the rest (5, 6, 7, 8, 10, 11).
        for protected in [
            24, 23, 22, 21, 1, 2, 3, 4, 18, 15, 12, 9, 5, 6, 7, 8, 10, 11,
        ] {
            assert_ne!(victim, PeerId(protected));
        }
        // Of the rest (13, 14, 16, 17, 19, 20; all groups of one), the youngest.
        assert_eq!(v.id, PeerId(20));
    }

    #[test]
    fn handshake_slots_are_capped_per_ip_and_in_total_and_released_on_drop() {
        let l = HandshakeLimiter::new(3, 2);
        let a1 = l.try_acquire(ip("127.0.0.2"));
        let a2 = l.try_acquire(ip("127.0.0.2"));
        assert!(a1.is_some() && a2.is_some());
        assert!(l.try_acquire(ip("127.0.0.2")).is_none(), "per-IP cap");
        let b = l.try_acquire(ip("127.0.0.3"));
        assert!(b.is_some());
        assert!(l.try_acquire(ip("127.0.0.4")).is_none(), "total cap");
        drop(a1);
        assert!(l.try_acquire(ip("127.0.0.4")).is_some());
        drop((a2, b));
        assert_eq!(l.in_progress(), 0);
    }
}
