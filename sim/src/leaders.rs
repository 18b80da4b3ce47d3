//! Which leader mode the scenarios run in, and what leadership looked like during a run.
//!
//! `PP_SIM_LEADER_MODE=praos` makes [`crate::SimParams::new`] build praos networks (classic
//! when unset), so every scenario built on it runs in either mode with one command.
//!
//! [`LeaderWatch`] follows the slots of a praos run: how many stakeholders lead each slot (the
//! harness holds every node's development VRF key, so it can ask the chain's own rules), and,
//! for each slot with several leaders, whether the nodes held different blocks for it at some
//! step and how long until every running node held the same one. In classic mode every slot
//! has exactly one leader and nothing is computed. With `PP_SIM_LEADER_STATS=<file>` each
//! cluster appends its numbers to `<file>` when dropped (see [`LeaderStats::line`]), so a
//! sweep over all scenarios can be summed up afterwards (docs/testing.md).

use std::collections::BTreeMap;
use std::io::Write;

use pp_ledger::{Hash, PublicKey};
use pp_ouroboros::VrfSecretKey;
use pp_server::Server;

/// The environment variable that selects the leader mode of [`crate::SimParams::new`].
pub const LEADER_MODE_VAR: &str = "PP_SIM_LEADER_MODE";
/// The environment variable naming the file [`LeaderStats`] lines are appended to.
pub const LEADER_STATS_VAR: &str = "PP_SIM_LEADER_STATS";

/// Whether `PP_SIM_LEADER_MODE` asks for praos. `classic` or unset: false. Any other value
/// panics, so a typo cannot silently run the classic sweep under the praos name.
pub fn praos_from_env() -> bool {
    match std::env::var(LEADER_MODE_VAR) {
        Err(_) => false,
        Ok(v) => match v.trim().to_ascii_lowercase().as_str() {
            "" | "classic" => false,
            "praos" => true,
            other => panic!("{LEADER_MODE_VAR}={other:?}: expected classic or praos"),
        },
    }
}

/// What a run's leadership looked like (see the module docs).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeaderStats {
    /// Slots started since genesis (slot 0 is the genesis block's).
    pub slots: u64,
    /// Slots with at least one leader (every slot in classic mode).
    pub led: u64,
    /// Slots with two or more leaders.
    pub multi_leader: u64,
    /// Multi-leader slots for which two running nodes held different blocks at some step (both
    /// leaders produced before seeing the other's block).
    pub multi_block: u64,
    /// For each multi-block slot that resolved: ms from the slot's start until every running
    /// node held the same block for it (or none) with its tip at or past the slot.
    pub resolve_ms: Vec<u64>,
    /// Multi-leader slots not yet resolved when the numbers were taken (those with two blocks
    /// seen are counted in `multi_block` too).
    pub unresolved: u64,
}

impl LeaderStats {
    /// One tab-separated line: test (the thread's name), seed, slots, led, multi-leader,
    /// multi-block, unresolved, then the resolution times (ms, comma-separated, `-` if none).
    pub fn line(&self, test: &str, seed: u64) -> String {
        let ms: Vec<String> = self.resolve_ms.iter().map(u64::to_string).collect();
        format!(
            "{test}\t{seed}\t{}\t{}\t{}\t{}\t{}\t{}\n",
            self.slots,
            self.led,
            self.multi_leader,
            self.multi_block,
            self.unresolved,
            if ms.is_empty() {
                "-".into()
            } else {
                ms.join(",")
            }
        )
    }
}

/// A multi-leader slot being watched.
#[derive(Debug, Default)]
struct Open {
    /// Distinct blocks seen for the slot on the nodes' best chains.
    seen: Vec<Hash>,
}

/// Follows leadership slot by slot (see the module docs).
#[derive(Debug)]
pub struct LeaderWatch {
    praos: bool,
    /// Stakeholders: id and public key.
    ids: Vec<(String, PublicKey)>,
    /// Stakeholders' public keys with their development VRF keys (praos only).
    keys: Vec<(PublicKey, VrfSecretKey)>,
    slot_ms: u64,
    genesis_ms: u64,
    /// The last slot counted.
    last_slot: u64,
    open: BTreeMap<u64, Open>,
    stats: LeaderStats,
}

impl LeaderWatch {
    /// A watch for a network whose stakeholders are `(id, public key)` (praos: each with its
    /// development VRF key).
    pub fn new(
        praos: bool,
        stakeholders: &[(String, PublicKey)],
        genesis_ms: u64,
        slot_ms: u64,
    ) -> Self {
        LeaderWatch {
            praos,
            ids: stakeholders.to_vec(),
            keys: if praos {
                stakeholders
                    .iter()
                    .map(|(id, pk)| (*pk, pp_server::praos::dev_vrf_key(id)))
                    .collect()
            } else {
                Vec::new()
            },
            slot_ms: slot_ms.max(1),
            genesis_ms,
            last_slot: 0,
            open: BTreeMap::new(),
            stats: LeaderStats::default(),
        }
    }

    /// The numbers so far.
    pub fn stats(&self) -> &LeaderStats {
        &self.stats
    }

    /// How many stakeholders lead `slot` by `server`'s chain (its tip's view of the epoch).
    pub fn leaders_of(&self, server: &Server, slot: u64) -> u64 {
        if !self.praos {
            return 1;
        }
        self.leader_keys(server, slot).len() as u64
    }

    /// The ids of the stakeholders that lead `slot` by `server`'s chain: the classic leader, or
    /// every praos stakeholder whose development VRF key proves leadership.
    pub fn leader_names(&self, server: &Server, slot: u64) -> Vec<String> {
        let keys = if self.praos {
            self.leader_keys(server, slot)
        } else {
            server
                .with_chain(|ch| ch.leader_for_next(slot))
                .flatten()
                .into_iter()
                .collect()
        };
        self.ids
            .iter()
            .filter(|(_, pk)| keys.contains(pk))
            .map(|(id, _)| id.clone())
            .collect()
    }

    fn leader_keys(&self, server: &Server, slot: u64) -> Vec<PublicKey> {
        server
            .with_chain(|ch| {
                let state = ch.state_for_next(slot);
                self.keys
                    .iter()
                    .filter(|(pk, vrf)| {
                        matches!(ch.rules().prove_slot(&state, slot, pk, vrf), Ok(Some(_)))
                    })
                    .map(|(pk, _)| *pk)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Called after every step with the simulated time and the running nodes (the first one's
    /// chain judges who leads a new slot).
    pub fn after_step(&mut self, now_ms: u64, live: &[&Server]) {
        let slot = now_ms.saturating_sub(self.genesis_ms) / self.slot_ms;
        while self.last_slot < slot {
            self.last_slot += 1;
            let s = self.last_slot;
            self.stats.slots += 1;
            let n = live.first().map_or(0, |srv| self.leaders_of(srv, s));
            if !self.praos {
                self.stats.led += 1;
                continue;
            }
            self.stats.led += u64::from(n > 0);
            if n >= 2 {
                self.stats.multi_leader += 1;
                self.open.insert(s, Open::default());
            }
        }
        if self.open.is_empty() || live.is_empty() {
            return;
        }
        let mut resolved = Vec::new();
        for (&s, open) in self.open.iter_mut() {
            let mut at = Vec::with_capacity(live.len());
            let mut past = true;
            for srv in live {
                let (tip_slot, held) = block_in_slot(srv, s);
                past &= tip_slot >= s;
                at.push(held);
            }
            for h in at.iter().flatten() {
                if !open.seen.contains(h) {
                    open.seen.push(*h);
                }
            }
            if past && at.windows(2).all(|w| w[0] == w[1]) {
                resolved.push(s);
                if open.seen.len() >= 2 {
                    self.stats.multi_block += 1;
                    let start = self.genesis_ms + s * self.slot_ms;
                    self.stats.resolve_ms.push(now_ms.saturating_sub(start));
                }
            }
        }
        for s in resolved {
            self.open.remove(&s);
        }
    }

    /// The numbers so far, with every multi-leader slot still open counted as unresolved (and
    /// as multi-block if two blocks were seen for it).
    pub fn finish(&self) -> LeaderStats {
        let mut st = self.stats.clone();
        for open in self.open.values() {
            st.unresolved += 1;
            st.multi_block += u64::from(open.seen.len() >= 2);
        }
        st
    }

    /// Appends [`LeaderStats::line`] to the file named by `PP_SIM_LEADER_STATS`, if set (praos
    /// runs only). Errors are reported, never fatal: the numbers are a by-product of the run.
    pub fn record(&self, seed: u64) {
        let Some(path) = std::env::var_os(LEADER_STATS_VAR) else {
            return;
        };
        if !self.praos {
            return;
        }
        let thread = std::thread::current();
        let test = thread.name().unwrap_or("unnamed");
        let line = self.finish().line(test, seed);
        let written = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut f| f.write_all(line.as_bytes()));
        if let Err(e) = written {
            eprintln!("pp-sim: cannot append to {path:?}: {e}");
        }
    }
}

/// `server`'s tip slot and the hash of its best-chain block in `slot`, if any (looked up among
/// the blocks it keeps in memory, the last k).
fn block_in_slot(server: &Server, slot: u64) -> (u64, Option<Hash>) {
    server
        .with_chain(|ch| {
            let tip_slot = ch.tip().header.slot;
            let mut i = ch.height();
            while i >= ch.window_start() {
                let Some(h) = ch.header_at(i) else { break };
                if h.slot < slot {
                    break;
                }
                if h.slot == slot {
                    return (tip_slot, ch.best_hash_at(i));
                }
                if i == 0 {
                    break;
                }
                i -= 1;
            }
            (tip_slot, None)
        })
        .unwrap_or((0, None))
}
