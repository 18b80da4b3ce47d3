//! # pp-sim
//!
//! Deterministic simulation of whole pp-ledger networks: the real pp-server [`Server`]s run as
//! turmoil hosts, with simulated time (their slot clocks follow it), simulated TCP (through
//! [`TurmoilTransport`], pp-net's transport seam) and data dirs on disk, so a crashed host
//! restarts from its own storage. [`Cluster`] drives such a network step by step, injects
//! partitions, crashes, latency and loss, submits transfers, and after every step checks the
//! invariants of [`invariants`]: supply conserved, every chain valid under an independent replay
//! of the rules, no rollback deeper than `k`, no block once held by a majority lost.
//!
//! Scenarios live in `sim/tests/scenarios.rs` and run over many seeds ([`seeds`]): `PP_SIM_SEEDS`
//! sets how many (default 20), `PP_SIM_SEED` replays one; `PP_SIM_LEADER_MODE=praos` runs them
//! all with praos leader election ([`leaders`]). See `docs/testing.md`.
//!
//! ```no_run
//! use std::time::Duration;
//! use pp_sim::{Cluster, SimParams};
//!
//! # fn demo() -> Result<(), pp_sim::SimError> {
//! let mut c = Cluster::new(SimParams::new(7))?;
//! c.set_load(true);
//! c.run_for(Duration::from_secs(30))?;
//! c.partition(&["node1", "node2"], &["node3", "node4", "node5"]);
//! c.run_for(Duration::from_secs(20))?;
//! c.repair(&["node1", "node2"], &["node3", "node4", "node5"]);
//! let took = c.converge(Duration::from_secs(120))?;
//! println!("converged {took:?} after the heal: {}", c.final_check()?);
//! # Ok(()) }
//! ```
//!
//! [`Server`]: pp_server::Server

pub mod attacker;
pub mod cluster;
pub mod error;
pub mod invariants;
pub mod leaders;
pub mod liar;
pub mod seeds;
pub mod transport;
pub mod workload;

pub use attacker::{AttackStats, Attacker};
pub use cluster::{node_name, sim_genesis, Cluster, Outcome, SimParams, EPOCH_MS, P2P_PORT};
pub use error::SimError;
pub use invariants::{Invariants, Stats};
pub use leaders::{LeaderStats, LeaderWatch};
pub use liar::Liar;
pub use seeds::{
    assert_all_passed, run_seeds, run_seeds_or, selected_seeds, selected_seeds_or, SeedReport,
    DEFAULT_SEEDS,
};
pub use transport::TurmoilTransport;
pub use workload::{Acknowledged, Wallet, Workload, WALLET_BALANCE};
