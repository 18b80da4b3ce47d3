//! The address book: which p2p addresses a node knows, and which of them it has reached.
//!
//! Modelled on Bitcoin Core's `addrman`, sized for a network of a few hundred nodes. Addresses
//! live in two tables of buckets:
//!
//! * **new** ([`NEW_BUCKETS`] buckets of [`BUCKET_SIZE`]): addresses heard of (a `peers` answer,
//!   the configuration) but never reached by us. The bucket is a keyed hash of the address's
//!   group *and of the group of the source that told us*, so one source group reaches at most
//!   [`NEW_BUCKETS_PER_SOURCE_GROUP`] buckets: a liar who answers with thousands of addresses
//!   fills at most that share of the table, whatever the addresses.
//! * **tried** ([`TRIED_BUCKETS`] buckets of [`BUCKET_SIZE`]): addresses we completed a
//!   handshake with. The bucket is a keyed hash of the address (spread over
//!   [`TRIED_BUCKETS_PER_GROUP`] buckets per group), so one address group holds at most that
//!   share of tried.
//!
//! The key is a secret of the node (persisted with the book), so an outsider cannot compute
//! which addresses would collide with ours. The position inside a bucket is another keyed hash;
//! an address has exactly one possible slot in each table. When a slot of new is taken, the
//! newcomer replaces the occupant only if the occupant is "terrible" (never reached after
//! several attempts); when a slot of tried is taken, the occupant is first tested by a feeler
//! dial (test-before-evict) and keeps its place if it answers.
//!
//! A plain synchronous structure: time (seconds on any fixed origin, persisted as such) and all
//! randomness come from the caller or from a generator seeded by the secret, so every rule here is
//! deterministic and unit-testable, and a simulation replays exactly.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{IpAddr, SocketAddr};

use pp_ledger::Hash;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::admission::{addr_group, AddrGroup};

/// Buckets of the new table.
pub const NEW_BUCKETS: usize = 64;
/// Buckets of the tried table.
pub const TRIED_BUCKETS: usize = 32;
/// Slots per bucket (both tables).
pub const BUCKET_SIZE: usize = 16;
/// New buckets one source group can place addresses in (of [`NEW_BUCKETS`]).
pub const NEW_BUCKETS_PER_SOURCE_GROUP: u64 = 8;
/// Tried buckets the addresses of one group can land in (of [`TRIED_BUCKETS`]).
pub const TRIED_BUCKETS_PER_GROUP: u64 = 4;
/// Most pending tried collisions waiting for a test-before-evict feeler.
pub const MAX_TRIED_COLLISIONS: usize = 10;
/// An address reached within this long keeps its tried slot against a newcomer (seconds).
pub const REPLACEMENT_S: u64 = 4 * 3600;
/// A tried collision not resolved by a feeler within this long evicts the occupant (seconds).
pub const TEST_WINDOW_S: u64 = 40 * 60;
/// Failed attempts after which a never-reached address is terrible.
pub const RETRIES: u32 = 3;
/// Failed attempts after which an address not reached for [`MIN_FAIL_S`] is terrible.
pub const MAX_FAILURES: u32 = 10;
/// See [`MAX_FAILURES`] (seconds).
pub const MIN_FAIL_S: u64 = 7 * 24 * 3600;

/// Which table an address is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Table {
    /// Heard of, never reached.
    New,
    /// Reached by a completed handshake.
    Tried,
}

/// One address and what we know of it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddrEntry {
    /// The p2p address.
    pub addr: SocketAddr,
    /// The IP of the node that told us (ourselves for configured and feeler-verified ones).
    pub source: IpAddr,
    /// The table it is in.
    pub table: Table,
    /// Failed connection attempts since the last success.
    pub attempts: u32,
    /// Last connection attempt (book seconds; 0: never).
    pub last_try: u64,
    /// Last completed handshake (book seconds; 0: never).
    pub last_success: u64,
    /// When it entered the book (book seconds).
    pub added: u64,
}

impl AddrEntry {
    /// Never reached after [`RETRIES`] attempts, or [`MAX_FAILURES`] attempts with no success
    /// for [`MIN_FAIL_S`]. An address tried in the last minute is never terrible (it may be in
    /// the middle of a reconnection).
    pub fn is_terrible(&self, now: u64) -> bool {
        if self.last_try > 0 && now.saturating_sub(self.last_try) < 60 {
            return false;
        }
        if self.last_success == 0 && self.attempts >= RETRIES {
            return true;
        }
        now.saturating_sub(self.last_success) > MIN_FAIL_S && self.attempts >= MAX_FAILURES
    }

    /// The relative chance of being picked: lower after recent attempts and failures.
    fn chance(&self, now: u64) -> f64 {
        let mut c = 1.0;
        if now.saturating_sub(self.last_try) < 600 {
            c *= 0.01;
        }
        c * 0.66f64.powi(self.attempts.min(8) as i32)
    }
}

/// The book as saved: its secret, its entries and the anchors (outbound peers to dial first at
/// the next start).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BookSnapshot {
    /// The bucket key, hex; absent: a fresh one is made.
    pub secret: Option<Hash>,
    /// Every entry, tried ones first.
    pub entries: Vec<AddrEntry>,
    /// Outbound peers at the time of the save.
    pub anchors: Vec<SocketAddr>,
}

/// A failure of an [`AddrStore`] (the store's own error, boxed across the crate boundary).
pub type StoreError = Box<dyn std::error::Error + Send + Sync>;

/// Where a node keeps its address book between runs (pp-server implements it on redb). The
/// network loads it once at start, saves it every few minutes and at shutdown. Saving is a short
/// synchronous write; it runs on the network's task, like the node's other storage writes.
pub trait AddrStore: Send + Sync + 'static {
    /// The saved book, if any.
    fn load(&self) -> Result<Option<BookSnapshot>, StoreError>;
    /// Replace the saved book.
    fn save(&self, snapshot: &BookSnapshot) -> Result<(), StoreError>;
}

/// Sizes of the book, for operators.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct BookCounts {
    /// Entries in new.
    pub new: usize,
    /// Entries in tried.
    pub tried: usize,
    /// Distinct address groups among all entries.
    pub groups: usize,
    /// Tried collisions waiting for a test-before-evict feeler.
    pub collisions: usize,
}

/// What [`AddrBook::good`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Good {
    /// The address is (now) in tried.
    Tried,
    /// Its tried slot is taken: the occupant will be tested first; it stays in new meanwhile.
    Collision,
    /// It could not be placed anywhere (not a dialable address).
    Ignored,
}

type Slot = Option<u32>;

/// The address book. See the module documentation.
pub struct AddrBook {
    secret: Hash,
    entries: HashMap<u32, AddrEntry>,
    by_addr: HashMap<SocketAddr, u32>,
    new: Vec<Slot>,
    tried: Vec<Slot>,
    collisions: BTreeSet<u32>,
    next_id: u32,
    rng: ChaCha8Rng,
}

impl std::fmt::Debug for AddrBook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AddrBook")
            .field("counts", &self.counts())
            .finish_non_exhaustive()
    }
}

/// Whether `addr` can be a peer's p2p address at all (a port, an IP one can dial).
pub fn is_dialable(addr: &SocketAddr) -> bool {
    let ip = match addr.ip() {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        ip => ip,
    };
    let bad_ip = match ip {
        IpAddr::V4(v4) => v4.is_unspecified() || v4.is_broadcast() || v4.is_multicast(),
        IpAddr::V6(v6) => v6.is_unspecified() || v6.is_multicast(),
    };
    addr.port() != 0 && !bad_ip
}

fn group_bytes(g: AddrGroup) -> Vec<u8> {
    match g {
        AddrGroup::V4(b) => [&[1u8][..], &b].concat(),
        AddrGroup::V6(b) => [&[2u8][..], &b].concat(),
        AddrGroup::Exact(IpAddr::V4(ip)) => [&[3u8][..], &ip.octets()].concat(),
        AddrGroup::Exact(IpAddr::V6(ip)) => [&[4u8][..], &ip.octets()].concat(),
    }
}

fn addr_bytes(a: &SocketAddr) -> Vec<u8> {
    let ip = match a.ip() {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    };
    [&ip.octets()[..], &a.port().to_be_bytes()].concat()
}

impl AddrBook {
    /// An empty book whose buckets are keyed by `secret`.
    pub fn new(secret: Hash) -> AddrBook {
        AddrBook {
            secret,
            entries: HashMap::new(),
            by_addr: HashMap::new(),
            new: vec![None; NEW_BUCKETS * BUCKET_SIZE],
            tried: vec![None; TRIED_BUCKETS * BUCKET_SIZE],
            collisions: BTreeSet::new(),
            next_id: 0,
            rng: ChaCha8Rng::from_seed(
                Hash::sha256(&[b"pp-net/addrman/rng".as_slice(), &secret.0].concat()).0,
            ),
        }
    }

    /// The bucket key.
    pub fn secret(&self) -> Hash {
        self.secret
    }

    /// `H(secret ‖ tag ‖ parts…)` as a number: the keyed hash every placement uses (SHA-256,
    /// first 8 bytes big-endian).
    fn keyed(&self, tag: u8, parts: &[&[u8]]) -> u64 {
        let mut data = Vec::with_capacity(64);
        data.extend_from_slice(&self.secret.0);
        data.push(tag);
        for p in parts {
            data.extend_from_slice(p);
        }
        let h = Hash::sha256(&data).0;
        u64::from_be_bytes([h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7]])
    }

    /// The new bucket of `addr` told by `source`: one source group reaches at most
    /// [`NEW_BUCKETS_PER_SOURCE_GROUP`] buckets.
    pub fn new_bucket(&self, addr: &SocketAddr, source: IpAddr) -> usize {
        let g = group_bytes(addr_group(addr.ip()));
        let s = group_bytes(addr_group(source));
        let h1 = self.keyed(b'n', &[&g, &s]) % NEW_BUCKETS_PER_SOURCE_GROUP;
        (self.keyed(b'N', &[&s, &h1.to_be_bytes()]) % NEW_BUCKETS as u64) as usize
    }

    /// The tried bucket of `addr`: one address group reaches at most
    /// [`TRIED_BUCKETS_PER_GROUP`] buckets.
    pub fn tried_bucket(&self, addr: &SocketAddr) -> usize {
        let g = group_bytes(addr_group(addr.ip()));
        let h1 = self.keyed(b't', &[&addr_bytes(addr)]) % TRIED_BUCKETS_PER_GROUP;
        (self.keyed(b'T', &[&g, &h1.to_be_bytes()]) % TRIED_BUCKETS as u64) as usize
    }

    /// The slot of `addr` inside `bucket` of `table`.
    pub fn position(&self, table: Table, bucket: usize, addr: &SocketAddr) -> usize {
        let tag = match table {
            Table::New => b'p',
            Table::Tried => b'q',
        };
        let b = (bucket as u64).to_be_bytes();
        (self.keyed(tag, &[&b, &addr_bytes(addr)]) % BUCKET_SIZE as u64) as usize
    }

    fn new_slot(&self, addr: &SocketAddr, source: IpAddr) -> usize {
        let b = self.new_bucket(addr, source);
        b * BUCKET_SIZE + self.position(Table::New, b, addr)
    }

    fn tried_slot(&self, addr: &SocketAddr) -> usize {
        let b = self.tried_bucket(addr);
        b * BUCKET_SIZE + self.position(Table::Tried, b, addr)
    }

    /// The entry of `addr`, if known.
    pub fn get(&self, addr: &SocketAddr) -> Option<&AddrEntry> {
        self.by_addr.get(addr).and_then(|id| self.entries.get(id))
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when the book is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Sizes by table and distinct groups.
    pub fn counts(&self) -> BookCounts {
        let groups: BTreeSet<AddrGroup> = self
            .entries
            .values()
            .map(|e| addr_group(e.addr.ip()))
            .collect();
        let tried = self
            .entries
            .values()
            .filter(|e| e.table == Table::Tried)
            .count();
        BookCounts {
            new: self.entries.len() - tried,
            tried,
            groups: groups.len(),
            collisions: self.collisions.len(),
        }
    }

    fn remove_id(&mut self, id: u32) -> Option<AddrEntry> {
        let e = self.entries.remove(&id)?;
        self.by_addr.remove(&e.addr);
        self.collisions.remove(&id);
        for slot in self.new.iter_mut().chain(self.tried.iter_mut()) {
            if *slot == Some(id) {
                *slot = None;
            }
        }
        Some(e)
    }

    /// Forget `addr` (e.g. it turned out to be ourselves).
    pub fn remove(&mut self, addr: &SocketAddr) -> bool {
        match self.by_addr.get(addr).copied() {
            Some(id) => self.remove_id(id).is_some(),
            None => false,
        }
    }

    fn insert_entry(&mut self, e: AddrEntry, slot_in: Table, slot: usize) -> u32 {
        self.next_id = self.next_id.wrapping_add(1);
        while self.entries.contains_key(&self.next_id) {
            self.next_id = self.next_id.wrapping_add(1);
        }
        let id = self.next_id;
        self.by_addr.insert(e.addr, id);
        self.entries.insert(id, e);
        match slot_in {
            Table::New => self.new[slot] = Some(id),
            Table::Tried => self.tried[slot] = Some(id),
        }
        id
    }

    /// Put `entry` into its new slot: an empty slot takes it, a terrible occupant is replaced,
    /// any other occupant stays (and the newcomer is dropped). True if placed.
    fn place_new(&mut self, mut entry: AddrEntry, now: u64) -> bool {
        let slot = self.new_slot(&entry.addr, entry.source);
        if let Some(occupant) = self.new[slot] {
            let terrible = self
                .entries
                .get(&occupant)
                .is_none_or(|o| o.is_terrible(now));
            if !terrible {
                return false;
            }
            self.remove_id(occupant);
        }
        entry.table = Table::New;
        self.insert_entry(entry, Table::New, slot);
        true
    }

    /// Learn of `addr` from `source` (the IP of the node that told us, or our own for the
    /// configuration). A known address is left as it is. True if it was added.
    pub fn add(&mut self, addr: SocketAddr, source: IpAddr, now: u64) -> bool {
        if !is_dialable(&addr) || self.by_addr.contains_key(&addr) {
            return false;
        }
        self.place_new(
            AddrEntry {
                addr,
                source,
                table: Table::New,
                attempts: 0,
                last_try: 0,
                last_success: 0,
                added: now,
            },
            now,
        )
    }

    /// Record a connection attempt to `addr` (its outcome comes later, by [`AddrBook::good`]
    /// for a success; a failure leaves the attempt counted).
    pub fn attempt(&mut self, addr: &SocketAddr, now: u64) {
        if let Some(e) = self
            .by_addr
            .get(addr)
            .and_then(|id| self.entries.get_mut(id))
        {
            e.attempts = e.attempts.saturating_add(1);
            e.last_try = now;
        }
    }

    /// Record a completed handshake with `addr`: it moves to tried (an unknown address is first
    /// added with ourselves, `own`, as its source). If its tried slot is taken, the occupant is
    /// not evicted now: the collision waits for a feeler to test the occupant (see
    /// [`AddrBook::resolve_collisions`]).
    pub fn good(&mut self, addr: SocketAddr, own: IpAddr, now: u64) -> Good {
        if !is_dialable(&addr) {
            return Good::Ignored;
        }
        if !self.by_addr.contains_key(&addr) && !self.add(addr, own, now) {
            // Its new slot is held by a live entry: give it the slot of nobody, straight to tried.
            let slot = self.tried_slot(&addr);
            if self.tried[slot].is_some() {
                return Good::Ignored;
            }
            let e = AddrEntry {
                addr,
                source: own,
                table: Table::Tried,
                attempts: 0,
                last_try: now,
                last_success: now,
                added: now,
            };
            self.insert_entry(e, Table::Tried, slot);
            return Good::Tried;
        }
        let Some(&id) = self.by_addr.get(&addr) else {
            return Good::Ignored;
        };
        if let Some(e) = self.entries.get_mut(&id) {
            e.attempts = 0;
            e.last_try = now;
            e.last_success = now;
            if e.table == Table::Tried {
                return Good::Tried;
            }
        }
        let slot = self.tried_slot(&addr);
        match self.tried[slot] {
            Some(occupant) if occupant != id => {
                if self.collisions.len() < MAX_TRIED_COLLISIONS {
                    self.collisions.insert(id);
                }
                Good::Collision
            }
            _ => {
                self.move_to_tried(id, slot, now);
                Good::Tried
            }
        }
    }

    /// Move new entry `id` into tried `slot`; an occupant goes back to new (or is dropped if its
    /// new slot is held by a live entry).
    fn move_to_tried(&mut self, id: u32, slot: usize, now: u64) {
        for s in self.new.iter_mut() {
            if *s == Some(id) {
                *s = None;
            }
        }
        self.collisions.remove(&id);
        if let Some(old) = self.tried[slot].take() {
            if let Some(e) = self.entries.remove(&old) {
                self.by_addr.remove(&e.addr);
                self.place_new(e, now);
            }
        }
        self.tried[slot] = Some(id);
        if let Some(e) = self.entries.get_mut(&id) {
            e.table = Table::Tried;
        }
    }

    /// A tried entry blocking a newcomer, to test with a feeler (test-before-evict).
    pub fn collision_to_test(&self) -> Option<SocketAddr> {
        let id = *self.collisions.iter().next()?;
        let addr = self.entries.get(&id)?.addr;
        let occupant = self.tried[self.tried_slot(&addr)]?;
        self.entries.get(&occupant).map(|e| e.addr)
    }

    /// Settle tried collisions: the occupant keeps its slot if it was reached in the last
    /// [`REPLACEMENT_S`]; it is evicted (moved back to new) if a test after the collision failed
    /// or no test settled it within [`TEST_WINDOW_S`].
    pub fn resolve_collisions(&mut self, now: u64) {
        let ids: Vec<u32> = self.collisions.iter().copied().collect();
        for id in ids {
            let Some(newcomer) = self.entries.get(&id).cloned() else {
                self.collisions.remove(&id);
                continue;
            };
            let slot = self.tried_slot(&newcomer.addr);
            let Some(old_id) = self.tried[slot] else {
                self.move_to_tried(id, slot, now);
                continue;
            };
            let Some(old) = self.entries.get(&old_id) else {
                self.collisions.remove(&id);
                continue;
            };
            if now.saturating_sub(old.last_success) < REPLACEMENT_S {
                // The occupant answers: it stays, the newcomer stays in new.
                self.collisions.remove(&id);
            } else if now.saturating_sub(old.last_try) < REPLACEMENT_S {
                // Tested recently and not reached: evict, once the test had a minute to end.
                if now.saturating_sub(old.last_try) > 60 {
                    self.move_to_tried(id, slot, now);
                }
            } else if now.saturating_sub(newcomer.last_success) > TEST_WINDOW_S {
                self.move_to_tried(id, slot, now);
            }
        }
    }

    fn pick(
        &mut self,
        table: Table,
        now: u64,
        accept: impl Fn(&AddrEntry) -> bool,
    ) -> Option<SocketAddr> {
        let slots = match table {
            Table::New => &self.new,
            Table::Tried => &self.tried,
        };
        let filled: Vec<u32> = slots
            .iter()
            .flatten()
            .copied()
            .filter(|id| self.entries.get(id).is_some_and(&accept))
            .collect();
        if filled.is_empty() {
            return None;
        }
        // Bitcoin Core's rejection sampling: a random entry is taken with its chance, and the
        // bar is lowered after every refusal, so bad entries are picked rarely but still picked.
        let mut factor = 1.0f64;
        for _ in 0..1000 {
            let id = filled[self.rng.random_range(0..filled.len())];
            let e = &self.entries[&id];
            if self.rng.random::<f64>() < factor * e.chance(now) {
                return Some(e.addr);
            }
            factor *= 1.2;
        }
        filled.first().map(|id| self.entries[id].addr)
    }

    /// A random address to dial, among those `accept` allows: from tried or new with even odds
    /// (or only new when `new_only`, as feelers do), favouring addresses not tried recently and
    /// that failed less.
    pub fn select(
        &mut self,
        new_only: bool,
        now: u64,
        accept: impl Fn(&AddrEntry) -> bool,
    ) -> Option<SocketAddr> {
        if new_only {
            return self.pick(Table::New, now, accept);
        }
        let first = if self.rng.random_bool(0.5) {
            Table::Tried
        } else {
            Table::New
        };
        let second = match first {
            Table::Tried => Table::New,
            Table::New => Table::Tried,
        };
        self.pick(first, now, &accept)
            .or_else(|| self.pick(second, now, &accept))
    }

    /// A random index below `n`, from the book's generator (seeded by its secret, so a
    /// simulation replays exactly).
    pub fn random_index(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            self.rng.random_range(0..n)
        }
    }

    /// Up to `max` random tried addresses (the answer to `get_peers`), leaving out `except`.
    pub fn sample_tried(
        &mut self,
        max: usize,
        except: &dyn Fn(&SocketAddr) -> bool,
    ) -> Vec<SocketAddr> {
        let mut all: Vec<SocketAddr> = self
            .tried
            .iter()
            .flatten()
            .filter_map(|id| self.entries.get(id))
            .map(|e| e.addr)
            .filter(|a| !except(a))
            .collect();
        // Partial Fisher-Yates: the first `max` are a uniform sample.
        let n = all.len().min(max);
        for i in 0..n {
            let j = self.rng.random_range(i..all.len());
            all.swap(i, j);
        }
        all.truncate(n);
        all
    }

    /// Every entry, tried first, then by address (for saving and display).
    pub fn entries(&self) -> Vec<AddrEntry> {
        let mut v: Vec<AddrEntry> = self.entries.values().cloned().collect();
        v.sort_by_key(|e| (e.table != Table::Tried, e.addr));
        v
    }

    /// The book as saved, with `anchors`.
    pub fn snapshot(&self, anchors: Vec<SocketAddr>) -> BookSnapshot {
        BookSnapshot {
            secret: Some(self.secret),
            entries: self.entries(),
            anchors,
        }
    }

    /// A book rebuilt from a snapshot: its secret (or `fallback_secret`), its entries placed
    /// again by the same rules (a tried entry whose slot is taken goes to new; entries that fit
    /// nowhere are dropped, so a snapshot, whatever its size, yields a bounded book).
    pub fn restore(snapshot: &BookSnapshot, fallback_secret: Hash, now: u64) -> AddrBook {
        let mut book = AddrBook::new(snapshot.secret.unwrap_or(fallback_secret));
        let by_addr: BTreeMap<SocketAddr, &AddrEntry> = snapshot
            .entries
            .iter()
            .filter(|e| is_dialable(&e.addr))
            .map(|e| (e.addr, e))
            .collect();
        for e in by_addr.values().filter(|e| e.table == Table::Tried) {
            let slot = book.tried_slot(&e.addr);
            if book.tried[slot].is_none() {
                book.insert_entry((*e).clone(), Table::Tried, slot);
            } else {
                book.place_new((*e).clone(), now);
            }
        }
        for e in by_addr.values().filter(|e| e.table == Table::New) {
            book.place_new((*e).clone(), now);
        }
        book
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use Table::Tried;

    fn book() -> AddrBook {
        AddrBook::new(Hash([7; 32]))
    }

    fn a(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn undialable_addresses_never_enter() {
        let mut b = book();
        for bad in [
            "0.0.0.0:7000",
            "1.2.3.4:0",
            "255.255.255.255:1",
            "224.0.0.1:7",
            "[::]:7",
        ] {
            assert!(!b.add(a(bad), ip("8.8.8.8"), 1), "{bad}");
        }
        assert!(b.add(a("1.2.3.4:7000"), ip("8.8.8.8"), 1));
        assert!(
            !b.add(a("1.2.3.4:7000"), ip("9.9.9.9"), 1),
            "known stays as it is"
        );
        assert_eq!(b.len(), 1);
    }

    #[test]
    fn one_source_group_fills_at_most_its_share_of_new() {
        let mut b = book();
        let src = ip("6.6.6.6");
        // Thousands of addresses from one liar, in thousands of groups.
        for i in 0..5000u32 {
            let o = i.to_be_bytes();
            let addr = SocketAddr::from(([o[1].wrapping_add(11), o[2], o[3], 1], 7000));
            b.add(addr, src, 1);
        }
        let cap = NEW_BUCKETS_PER_SOURCE_GROUP as usize * BUCKET_SIZE;
        assert!(b.counts().new <= cap, "{} > {cap}", b.counts().new);
        // Honest nodes of other groups still place theirs (a few lose a slot to a collision).
        let mut placed = 0;
        for i in 0..50u8 {
            placed += usize::from(b.add(
                a(&format!("20.{i}.0.1:7000")),
                ip(&format!("30.{i}.1.1")),
                1,
            ));
        }
        assert!(placed >= 40, "{placed}");
    }

    #[test]
    fn one_ip_with_a_thousand_ports_holds_a_bounded_share() {
        let mut b = book();
        let attacker = ip("127.0.0.66");
        for port in 1000..2000u16 {
            b.add(SocketAddr::new(attacker, port), attacker, 1);
        }
        assert!(b.len() <= NEW_BUCKETS_PER_SOURCE_GROUP as usize * BUCKET_SIZE);
    }

    #[test]
    fn good_moves_to_tried_and_collisions_test_before_evict() {
        let mut b = book();
        let own = ip("127.0.0.1");
        let x = a("1.1.1.1:7000");
        assert!(b.add(x, ip("2.2.2.2"), 10));
        assert_eq!(b.good(x, own, 20), Good::Tried);
        assert_eq!(b.get(&x).unwrap().table, Table::Tried);
        // Find an address of the same tried slot.
        let slot = b.tried_slot(&x);
        let y = (1..60000u16)
            .map(|p| SocketAddr::from(([1, 1, 1, 1], p)))
            .find(|c| *c != x && b.tried_slot(c) == slot)
            .expect("a colliding port");
        assert!(b.add(y, ip("2.2.2.2"), 30));
        assert_eq!(b.good(y, own, 40), Good::Collision);
        assert_eq!(b.get(&y).unwrap().table, Table::New);
        assert_eq!(b.collision_to_test(), Some(x));
        // The occupant answered recently: it stays.
        b.resolve_collisions(50);
        assert_eq!(b.get(&x).unwrap().table, Tried);
        assert_eq!(b.counts().collisions, 0);
        // Much later the occupant was tried and failed: the newcomer takes the slot.
        let later = 40 + REPLACEMENT_S + 1000;
        assert_eq!(b.good(y, own, later), Good::Collision);
        b.attempt(&x, later + 1);
        b.resolve_collisions(later + 100);
        assert_eq!(b.get(&y).unwrap().table, Tried);
        assert_eq!(
            b.get(&x).map(|e| e.table),
            Some(Table::New),
            "evicted to new"
        );
    }

    #[test]
    fn an_unresolved_collision_evicts_after_the_test_window() {
        let mut b = book();
        let own = ip("127.0.0.1");
        let x = a("1.1.1.1:7000");
        b.good(x, own, 1);
        let slot = b.tried_slot(&x);
        let y = (1..60000u16)
            .map(|p| SocketAddr::from(([1, 1, 1, 1], p)))
            .find(|c| *c != x && b.tried_slot(c) == slot)
            .unwrap();
        let t = REPLACEMENT_S + 10;
        b.add(y, own, t);
        assert_eq!(b.good(y, own, t), Good::Collision);
        b.resolve_collisions(t + 10);
        assert_eq!(b.get(&y).unwrap().table, Table::New, "waits for a test");
        b.resolve_collisions(t + TEST_WINDOW_S + 1);
        assert_eq!(b.get(&y).unwrap().table, Tried);
    }

    #[test]
    fn terrible_entries_give_way_in_new() {
        let mut b = book();
        let src = ip("2.2.2.2");
        let x = a("1.1.1.1:7000");
        b.add(x, src, 1);
        let slot = b.new_slot(&x, src);
        let y = (1..60000u16)
            .map(|p| SocketAddr::from(([1, 1, 1, 1], p)))
            .find(|c| *c != x && b.new_slot(c, src) == slot)
            .unwrap();
        assert!(!b.add(y, src, 2), "a live occupant keeps its slot");
        for t in 0..RETRIES {
            b.attempt(&x, 100 + u64::from(t));
        }
        assert!(b.add(y, src, 1000), "a terrible occupant gives way");
        assert!(b.get(&x).is_none());
    }

    #[test]
    fn select_prefers_entries_allowed_and_sample_returns_only_tried() {
        let mut b = book();
        let own = ip("127.0.0.1");
        for i in 0..20u8 {
            b.add(a(&format!("10.0.0.{i}:7000")), own, 1);
        }
        for i in 0..5u8 {
            b.good(a(&format!("10.0.0.{i}:7000")), own, 2);
        }
        let s = b.sample_tried(100, &|_| false);
        assert_eq!(s.len(), 5);
        assert!(s.iter().all(|x| b.get(x).unwrap().table == Tried));
        assert_eq!(b.sample_tried(3, &|_| false).len(), 3);
        let only = a("10.0.0.7:7000");
        for _ in 0..20 {
            assert_eq!(b.select(false, 1000, |e| e.addr == only), Some(only));
        }
        assert_eq!(b.select(true, 1000, |e| e.table == Tried), None);
    }

    #[test]
    fn restore_rebuilds_the_same_book_and_bounds_a_huge_snapshot() {
        let mut b = book();
        let own = ip("127.0.0.1");
        for i in 0..200u16 {
            let x = SocketAddr::from(([20, (i % 50) as u8, 1, 1], 7000 + i));
            b.add(x, ip("3.3.3.3"), 1);
            if i % 3 == 0 {
                b.good(x, own, 2);
            }
        }
        let snap = b.snapshot(vec![a("20.1.1.1:7001")]);
        let r = AddrBook::restore(&snap, Hash([0; 32]), 3);
        assert_eq!(r.secret(), b.secret());
        assert_eq!(r.entries(), b.entries());
        // A forged snapshot of 100,000 entries yields at most the tables' capacity.
        let forged = BookSnapshot {
            secret: None,
            entries: (0..100_000u32)
                .map(|i| {
                    let o = i.to_be_bytes();
                    AddrEntry {
                        addr: SocketAddr::from(([30, o[1], o[2], o[3]], 7000)),
                        source: ip("4.4.4.4"),
                        table: if i % 2 == 0 { Tried } else { Table::New },
                        attempts: 0,
                        last_try: 0,
                        last_success: 0,
                        added: 0,
                    }
                })
                .collect(),
            anchors: vec![],
        };
        let r = AddrBook::restore(&forged, Hash([1; 32]), 3);
        assert!(r.len() <= (NEW_BUCKETS + TRIED_BUCKETS) * BUCKET_SIZE);
        assert!(r.counts().tried <= TRIED_BUCKETS * BUCKET_SIZE);
    }

    #[test]
    fn another_secret_places_differently() {
        let x = a("5.6.7.8:7000");
        let buckets: BTreeSet<usize> = (0..32u8)
            .map(|k| AddrBook::new(Hash([k; 32])).new_bucket(&x, ip("9.9.9.9")))
            .collect();
        assert!(buckets.len() > 8, "{buckets:?}");
    }

    fn arb_addr() -> impl Strategy<Value = SocketAddr> {
        (any::<[u8; 4]>(), 1..=u16::MAX).prop_map(|(o, p)| SocketAddr::from((o, p)))
    }

    proptest! {
        #[test]
        fn buckets_and_positions_are_in_range_and_stable(x in arb_addr(), src in any::<[u8; 4]>(), key in any::<[u8; 32]>()) {
            let b = AddrBook::new(Hash(key));
            let src = IpAddr::from(src);
            let nb = b.new_bucket(&x, src);
            let tb = b.tried_bucket(&x);
            prop_assert!(nb < NEW_BUCKETS && tb < TRIED_BUCKETS);
            prop_assert!(b.position(Table::New, nb, &x) < BUCKET_SIZE);
            prop_assert!(b.position(Table::Tried, tb, &x) < BUCKET_SIZE);
            prop_assert_eq!(nb, AddrBook::new(Hash(key)).new_bucket(&x, src));
        }

        #[test]
        fn one_source_group_never_spans_more_than_its_buckets(
            addrs in proptest::collection::vec(arb_addr(), 1..400),
            key in any::<[u8; 32]>(),
        ) {
            let b = AddrBook::new(Hash(key));
            let src = ip("44.44.1.1");
            let buckets: BTreeSet<usize> = addrs.iter().map(|x| b.new_bucket(x, src)).collect();
            prop_assert!(buckets.len() as u64 <= NEW_BUCKETS_PER_SOURCE_GROUP);
        }

        #[test]
        fn one_group_never_spans_more_than_its_tried_buckets(
            tails in proptest::collection::vec((any::<[u8; 2]>(), 1..=u16::MAX), 1..400),
            key in any::<[u8; 32]>(),
        ) {
            let b = AddrBook::new(Hash(key));
            let buckets: BTreeSet<usize> = tails
                .iter()
                .map(|(t, p)| b.tried_bucket(&SocketAddr::from(([44, 44, t[0], t[1]], *p))))
                .collect();
            prop_assert!(buckets.len() as u64 <= TRIED_BUCKETS_PER_GROUP);
        }

        #[test]
        fn any_sequence_of_operations_keeps_the_book_bounded_and_consistent(
            ops in proptest::collection::vec((0u8..4, arb_addr(), any::<[u8; 4]>()), 1..600),
        ) {
            let mut b = book();
            let own = ip("127.0.0.1");
            for (t, (op, x, src)) in ops.into_iter().enumerate() {
                let now = t as u64 * 37;
                match op {
                    0 => { b.add(x, IpAddr::from(src), now); }
                    1 => { b.good(x, own, now); }
                    2 => { b.attempt(&x, now); }
                    _ => { b.resolve_collisions(now); }
                }
            }
            let c = b.counts();
            prop_assert!(c.new <= NEW_BUCKETS * BUCKET_SIZE);
            prop_assert!(c.tried <= TRIED_BUCKETS * BUCKET_SIZE);
            prop_assert!(c.collisions <= MAX_TRIED_COLLISIONS);
            // Every entry sits in exactly one slot, the slot its table and hash say.
            let in_new = b.new.iter().flatten().count();
            let in_tried = b.tried.iter().flatten().count();
            prop_assert_eq!(in_new + in_tried, b.len());
            for (i, s) in b.tried.iter().enumerate() {
                if let Some(id) = s {
                    let e = &b.entries[id];
                    prop_assert_eq!(e.table, Tried);
                    prop_assert_eq!(b.tried_slot(&e.addr), i);
                }
            }
            for (i, s) in b.new.iter().enumerate() {
                if let Some(id) = s {
                    let e = &b.entries[id];
                    prop_assert_eq!(e.table, Table::New);
                    prop_assert_eq!(b.new_slot(&e.addr, e.source), i);
                }
            }
        }
    }
}
