//! Which seeds a scenario runs, and running them so that a failure names its seed.
//!
//! `PP_SIM_SEED=<n>` runs exactly seed `n` (to replay a failure); otherwise `PP_SIM_SEEDS=<count>`
//! seeds starting at `PP_SIM_SEED_BASE` (default 0), [`DEFAULT_SEEDS`] when unset.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Instant;

/// Seeds per scenario when `PP_SIM_SEEDS` is unset (the CI setting).
pub const DEFAULT_SEEDS: u64 = 20;

/// The seeds to run, from the environment (see the module docs). A malformed variable is
/// reported and the default used, so a typo cannot silently run zero seeds.
pub fn selected_seeds() -> Vec<u64> {
    selected_seeds_or(DEFAULT_SEEDS)
}

/// [`selected_seeds`] with `default` seeds when `PP_SIM_SEEDS` is unset: for a scenario too long
/// to run [`DEFAULT_SEEDS`] seeds in CI (it documents the command for more).
pub fn selected_seeds_or(default: u64) -> Vec<u64> {
    if let Some(one) = env_u64("PP_SIM_SEED") {
        return vec![one];
    }
    let count = env_u64("PP_SIM_SEEDS").unwrap_or(default).max(1);
    let base = env_u64("PP_SIM_SEED_BASE").unwrap_or(0);
    (0..count).map(|i| base.wrapping_add(i)).collect()
}

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    match v.trim().parse() {
        Ok(n) => Some(n),
        Err(_) => {
            eprintln!("pp-sim: ignoring {name}={v:?} (not an unsigned integer)");
            None
        }
    }
}

/// The outcome of one scenario over its seeds.
#[derive(Debug, Clone, Default)]
pub struct SeedReport {
    /// Seeds that passed.
    pub passed: Vec<u64>,
    /// Seeds that failed, with the failure message.
    pub failed: Vec<(u64, String)>,
    /// Wall time of the whole run, in milliseconds.
    pub wall_ms: u128,
}

/// Runs `run(seed)` for every selected seed, catching failures (errors and panics) so that every
/// seed runs, then prints one line per failure with the command that replays it (`scenario`
/// should be the name of the calling test, which the command filters on).
/// Returns the report; [`assert_all_passed`] turns failures into a test failure.
pub fn run_seeds<F>(scenario: &str, run: F) -> SeedReport
where
    F: FnMut(u64) -> Result<String, String>,
{
    run_seeds_or(scenario, DEFAULT_SEEDS, run)
}

/// [`run_seeds`] over [`selected_seeds_or`]`(default)`.
pub fn run_seeds_or<F>(scenario: &str, default: u64, mut run: F) -> SeedReport
where
    F: FnMut(u64) -> Result<String, String>,
{
    let started = Instant::now();
    let mut report = SeedReport::default();
    for seed in selected_seeds_or(default) {
        let t = Instant::now();
        let outcome = catch_unwind(AssertUnwindSafe(|| run(seed)));
        let result = match outcome {
            Ok(r) => r,
            Err(panic) => Err(panic_message(panic.as_ref())),
        };
        match result {
            Ok(summary) => {
                if std::env::var_os("PP_SIM_VERBOSE").is_some() {
                    eprintln!(
                        "pp-sim {scenario} seed {seed}: ok in {} ms: {summary}",
                        t.elapsed().as_millis()
                    );
                }
                report.passed.push(seed);
            }
            Err(msg) => {
                eprintln!(
                    "pp-sim {scenario} FAILED for seed {seed}: {msg}\n  replay: PP_SIM_SEED={seed} cargo test -p pp-sim {scenario} -- --nocapture"
                );
                report.failed.push((seed, msg));
            }
        }
    }
    report.wall_ms = started.elapsed().as_millis();
    eprintln!(
        "pp-sim {scenario}: {} seeds passed, {} failed, {} ms",
        report.passed.len(),
        report.failed.len(),
        report.wall_ms
    );
    report
}

/// Panics (failing the test) if any seed failed, listing every failing seed.
pub fn assert_all_passed(scenario: &str, report: &SeedReport) {
    if !report.failed.is_empty() {
        let seeds: Vec<String> = report.failed.iter().map(|(s, _)| s.to_string()).collect();
        let first = &report.failed[0];
        panic!(
            "{scenario}: {} of {} seeds failed: [{}]; first (seed {}): {}",
            report.failed.len(),
            report.failed.len() + report.passed.len(),
            seeds.join(", "),
            first.0,
            first.1
        );
    }
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        format!("panic: {s}")
    } else if let Some(s) = p.downcast_ref::<String>() {
        format!("panic: {s}")
    } else {
        "panic with a non-string payload".into()
    }
}
