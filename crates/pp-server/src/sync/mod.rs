//! Sync: catching up with the network, headers first, blocks from every peer that has them.
//!
//! A peer's claimed tip (its `hello`, its announcements) is only a hint that it may have more.
//! The engine ([`engine`]) asks several peers at once for the headers past our chain, checks
//! them ([`headers`]), and follows the longest header chain that passed, its *target*. Blocks
//! of the target are fetched in parallel from every peer whose headers proved it holds them, a
//! few requests per peer at a time; a request that stalls past its deadline goes to another
//! peer, and the peer that promised it is scored and rotated out of sync for a while. A peer
//! that claims a tip and never shows headers for it is scored and rotated out the same way, so
//! a liar costs one deadline each time its rotation ends (30 s, then doubling up to 10 minutes),
//! never the sync. Blocks that arrived in order go through the
//! [`pipeline`]: stateless verification on the blocking pool, then the stateful stage and one
//! durable commit per batch, overlapping with the fetches.
//!
//! Progress is logged at most every [`engine::LOG_EVERY`] and shown in `GET /status` as
//! `sync: {target, progress}` ([`SyncStatus`]).

pub(crate) mod engine;
pub(crate) mod headers;
pub(crate) mod pipeline;

use std::sync::Mutex;

use serde_json::{json, Value};

pub(crate) use engine::run;

/// Where a sync in progress stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Progress {
    /// Height when this sync started.
    pub(crate) start: u64,
    /// Index of the last block of the best verified header chain.
    pub(crate) target: u64,
    /// Our height now.
    pub(crate) height: u64,
}

/// The sync engine's progress, shared with the HTTP API (one short lock per update or read).
#[derive(Debug, Default)]
pub(crate) struct SyncStatus(Mutex<Option<Progress>>);

impl SyncStatus {
    /// Records the progress (`None`: not syncing).
    pub(crate) fn set(&self, p: Option<Progress>) {
        if let Ok(mut g) = self.0.lock() {
            *g = p;
        }
    }

    /// The progress, if syncing.
    pub(crate) fn get(&self) -> Option<Progress> {
        self.0.lock().ok().and_then(|g| *g)
    }

    /// `{"target": <index>, "progress": <0..=1>}` while syncing, `null` otherwise. `progress`
    /// is the fraction of the blocks from the sync's start to `target` now held.
    pub(crate) fn json(&self) -> Value {
        match self.get() {
            None => Value::Null,
            Some(p) => {
                let span = p.target.saturating_sub(p.start).max(1);
                let done = p.height.saturating_sub(p.start).min(span);
                let fraction = (done as f64 / span as f64 * 10_000.0).round() / 10_000.0;
                json!({ "target": p.target, "progress": fraction })
            }
        }
    }
}
