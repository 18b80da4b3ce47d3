//! Rate-limited logging: a stranger must not be able to fill the operator's disk with log lines
//! by repeating an offence. Each kind of line gets [`LINES_PER_WINDOW`] lines per
//! [`WINDOW`]; past that, lines are counted and the count is reported with the next line allowed.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;
use tracing::info;

/// Lines of one kind allowed per window.
pub const LINES_PER_WINDOW: u32 = 10;
/// The window.
pub const WINDOW: Duration = Duration::from_secs(60);

#[derive(Debug)]
struct Gate {
    start: Instant,
    lines: u32,
    suppressed: u64,
}

/// Per-kind line budgets.
#[derive(Debug, Default)]
pub struct LogLimiter {
    gates: Mutex<HashMap<&'static str, Gate>>,
}

impl LogLimiter {
    /// A limiter with nothing logged yet.
    pub fn new() -> LogLimiter {
        LogLimiter::default()
    }

    /// True if a line of `kind` may be logged now. When a new window opens after lines were
    /// suppressed, says how many.
    pub fn allow(&self, kind: &'static str) -> bool {
        let now = Instant::now();
        let mut gates = self.gates.lock().unwrap_or_else(|p| p.into_inner());
        let g = gates.entry(kind).or_insert(Gate {
            start: now,
            lines: 0,
            suppressed: 0,
        });
        if now.saturating_duration_since(g.start) >= WINDOW {
            if g.suppressed > 0 {
                info!(
                    kind,
                    suppressed = g.suppressed,
                    "log lines suppressed in the last window"
                );
            }
            *g = Gate {
                start: now,
                lines: 0,
                suppressed: 0,
            };
        }
        if g.lines < LINES_PER_WINDOW {
            g.lines += 1;
            true
        } else {
            g.suppressed += 1;
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn repeated_lines_are_capped_per_window() {
        let l = LogLimiter::new();
        let allowed = (0..1000).filter(|_| l.allow("x")).count();
        assert_eq!(allowed, LINES_PER_WINDOW as usize);
        assert!(l.allow("y"), "other kinds have their own budget");
        tokio::time::advance(WINDOW).await;
        assert!(l.allow("x"));
    }
}
