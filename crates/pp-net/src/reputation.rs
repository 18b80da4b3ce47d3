//! Scores and bans, keyed by identity key or by IP address, bounded and expiring.
//!
//! Every map here is bounded: scores and automatic bans live in LRU caches of
//! `max_tracked_offenders` entries each, so a stranger who mints a fresh identity key per
//! connection moves old entries out instead of growing memory. Operator bans (made through the
//! API) are kept apart, never evicted, and bounded by [`MAX_MANUAL_BANS`]. A score not added to
//! for `score_ttl` is forgotten; a ban ends at its expiry, and a served ban wipes the score.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::num::NonZeroUsize;
use std::str::FromStr;
use std::time::Duration;

use lru::LruCache;
use pp_ledger::PublicKey;
use serde::Serialize;
use tokio::time::Instant;

/// Most operator bans kept at once.
pub const MAX_MANUAL_BANS: usize = 10_000;

/// Who a score or a ban applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BanTarget {
    /// A node's identity key.
    Key(PublicKey),
    /// Every connection from this IP address.
    Ip(IpAddr),
}

impl fmt::Display for BanTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BanTarget::Key(k) => write!(f, "{}", k.to_hex()),
            BanTarget::Ip(ip) => write!(f, "{ip}"),
        }
    }
}

impl Serialize for BanTarget {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl FromStr for BanTarget {
    type Err = String;

    /// An IP address (`127.0.0.5`, `::1`) or a 64-hex-digit identity key.
    fn from_str(s: &str) -> Result<BanTarget, String> {
        if let Ok(ip) = s.parse::<IpAddr>() {
            return Ok(BanTarget::Ip(ip));
        }
        PublicKey::from_hex(s)
            .map(BanTarget::Key)
            .map_err(|_| format!("{s:?} is neither an IP address nor a 64-hex-digit identity key"))
    }
}

/// A ban in force.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ban {
    /// Why.
    pub reason: String,
    /// Until when.
    pub until: Instant,
    /// Made by the operator (kept apart from automatic bans and never evicted).
    pub manual: bool,
}

#[derive(Clone, Copy, Debug)]
struct Score {
    points: i32,
    touched: Instant,
}

/// Scores and bans. A plain synchronous structure: time is passed in.
#[derive(Debug)]
pub struct Reputation {
    scores: LruCache<BanTarget, Score>,
    bans: LruCache<BanTarget, Ban>,
    manual: BTreeMap<BanTarget, Ban>,
    threshold: i32,
    ban_duration: Duration,
    score_ttl: Duration,
}

impl Reputation {
    /// Remember at most `capacity` scores and `capacity` automatic bans. A score reaching
    /// `threshold` bans for `ban_duration`; a score untouched for `score_ttl` is forgotten.
    pub fn new(
        capacity: usize,
        threshold: i32,
        ban_duration: Duration,
        score_ttl: Duration,
    ) -> Reputation {
        let cap = NonZeroUsize::new(capacity.max(1)).unwrap_or(NonZeroUsize::MIN);
        Reputation {
            scores: LruCache::new(cap),
            bans: LruCache::new(cap),
            manual: BTreeMap::new(),
            threshold,
            ban_duration,
            score_ttl,
        }
    }

    /// Add `points` to `target`'s score. Returns the new ban if the score reached the
    /// threshold.
    pub fn penalize(
        &mut self,
        target: BanTarget,
        points: i32,
        reason: &str,
        now: Instant,
    ) -> Option<Ban> {
        let current = self.score(target, now);
        let points = current.saturating_add(points);
        self.scores.put(
            target,
            Score {
                points,
                touched: now,
            },
        );
        if points < self.threshold {
            return None;
        }
        let ban = Ban {
            reason: reason.to_string(),
            until: now + self.ban_duration,
            manual: false,
        };
        self.bans.put(target, ban.clone());
        Some(ban)
    }

    /// `target`'s score at `now` (0 if never scored or forgotten).
    pub fn score(&mut self, target: BanTarget, now: Instant) -> i32 {
        match self.scores.peek(&target) {
            Some(s) if now.saturating_duration_since(s.touched) < self.score_ttl => s.points,
            Some(_) => {
                self.scores.pop(&target);
                0
            }
            None => 0,
        }
    }

    /// The ban on `target` in force at `now`, if any (an expired one is forgotten, with the
    /// score).
    pub fn ban_of(&mut self, target: BanTarget, now: Instant) -> Option<Ban> {
        if let Some(b) = self.manual.get(&target) {
            if b.until > now {
                return Some(b.clone());
            }
            self.manual.remove(&target);
        }
        match self.bans.peek(&target) {
            Some(b) if b.until > now => Some(b.clone()),
            Some(_) => {
                self.bans.pop(&target);
                self.scores.pop(&target);
                None
            }
            None => None,
        }
    }

    /// Ban `target` until `until`. `manual` bans are the operator's: kept apart and never
    /// evicted; refused (false) when [`MAX_MANUAL_BANS`] are already in force.
    pub fn ban(&mut self, target: BanTarget, reason: &str, until: Instant, manual: bool) -> bool {
        let ban = Ban {
            reason: reason.to_string(),
            until,
            manual,
        };
        if !manual {
            self.bans.put(target, ban);
            return true;
        }
        if self.manual.len() >= MAX_MANUAL_BANS && !self.manual.contains_key(&target) {
            return false;
        }
        self.manual.insert(target, ban);
        true
    }

    /// Lift every ban on `target` and forget its score. True if a ban was in force.
    pub fn unban(&mut self, target: BanTarget, now: Instant) -> bool {
        let was = self.ban_of(target, now).is_some();
        self.manual.remove(&target);
        self.bans.pop(&target);
        self.scores.pop(&target);
        was
    }

    /// Bans in force at `now`, sorted by target.
    pub fn bans(&self, now: Instant) -> Vec<(BanTarget, Ban)> {
        let mut out: BTreeMap<BanTarget, Ban> = self
            .bans
            .iter()
            .filter(|(_, b)| b.until > now)
            .map(|(t, b)| (*t, b.clone()))
            .collect();
        for (t, b) in &self.manual {
            if b.until > now {
                out.insert(*t, b.clone());
            }
        }
        out.into_iter().collect()
    }

    /// Number of scores remembered (for tests and metrics).
    pub fn tracked_scores(&self) -> usize {
        self.scores.len()
    }

    /// Number of bans remembered, expired or not (for tests and metrics).
    pub fn tracked_bans(&self) -> usize {
        self.bans.len() + self.manual.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rep(cap: usize) -> Reputation {
        Reputation::new(cap, 100, Duration::from_secs(60), Duration::from_secs(600))
    }

    fn key(n: u32) -> BanTarget {
        let mut k = [0u8; 32];
        k[..4].copy_from_slice(&n.to_be_bytes());
        BanTarget::Key(PublicKey(k))
    }

    #[test]
    fn scores_accumulate_to_a_ban_that_expires_and_wipes_the_score() {
        let mut r = rep(16);
        let now = Instant::now();
        assert!(r.penalize(key(1), 50, "x", now).is_none());
        let ban = r.penalize(key(1), 50, "bad frames", now);
        assert_eq!(ban.map(|b| b.reason), Some("bad frames".to_string()));
        assert!(r.ban_of(key(1), now + Duration::from_secs(59)).is_some());
        assert!(r.ban_of(key(1), now + Duration::from_secs(61)).is_none());
        assert_eq!(r.score(key(1), now + Duration::from_secs(61)), 0);
    }

    #[test]
    fn an_untouched_score_is_forgotten_after_its_ttl() {
        let mut r = rep(16);
        let now = Instant::now();
        r.penalize(key(1), 60, "x", now);
        assert_eq!(r.score(key(1), now + Duration::from_secs(599)), 60);
        assert_eq!(r.score(key(1), now + Duration::from_secs(601)), 0);
        assert!(r
            .penalize(key(1), 60, "x", now + Duration::from_secs(601))
            .is_none());
    }

    #[test]
    fn a_hundred_thousand_fresh_identities_do_not_grow_memory() {
        let mut r = rep(4096);
        let now = Instant::now();
        for n in 0..100_000 {
            r.penalize(key(n), 100, "garbage", now);
        }
        assert_eq!(r.tracked_scores(), 4096);
        assert_eq!(r.tracked_bans(), 4096);
        // The newest offenders are the ones remembered.
        assert!(r.ban_of(key(99_999), now).is_some());
        assert!(r.ban_of(key(0), now).is_none());
    }

    #[test]
    fn manual_bans_survive_eviction_and_unban_lifts_them() {
        let mut r = rep(2);
        let now = Instant::now();
        let ip = BanTarget::Ip("127.0.0.9".parse().unwrap());
        assert!(r.ban(ip, "operator", now + Duration::from_secs(30), true));
        for n in 0..10 {
            r.penalize(key(n), 100, "x", now);
        }
        assert_eq!(r.ban_of(ip, now).map(|b| b.manual), Some(true));
        assert_eq!(r.bans(now).len(), 3);
        assert!(r.unban(ip, now));
        assert!(!r.unban(ip, now));
        assert!(r.ban_of(ip, now).is_none());
    }

    #[test]
    fn targets_parse_from_ips_and_hex_keys() {
        assert_eq!(
            "10.1.2.3".parse::<BanTarget>(),
            Ok(BanTarget::Ip("10.1.2.3".parse().unwrap()))
        );
        let k = key(7);
        assert_eq!(k.to_string().parse::<BanTarget>(), Ok(k));
        assert!("node1".parse::<BanTarget>().is_err());
    }
}
