//! The standard process metrics (`process_cpu_seconds_total`, `process_resident_memory_bytes`,
//! `process_open_fds`), read from `/proc/self` at scrape time. On systems without `/proc` they are
//! not exposed at all rather than exposed as zeros (a zero would read as a real measurement).

use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::ops_metrics::{FloatCounter, FloatGauge};

/// Process metrics in their own, unprefixed registry.
#[derive(Debug)]
pub struct ProcessMetrics {
    registry: Option<Registry>,
    cpu_seconds: FloatCounter,
    resident_bytes: FloatGauge,
    open_fds: Gauge,
}

/// One reading of `/proc/self`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct ProcessSample {
    /// User plus system CPU time, seconds.
    pub(crate) cpu_seconds: f64,
    /// Resident set size, bytes.
    pub(crate) resident_bytes: u64,
    /// Open file descriptors.
    pub(crate) open_fds: u64,
}

impl ProcessMetrics {
    /// The metrics, registered only where `/proc/self/stat` can be read.
    pub fn new() -> ProcessMetrics {
        let mut m = ProcessMetrics {
            registry: None,
            cpu_seconds: FloatCounter::default(),
            resident_bytes: FloatGauge::default(),
            open_fds: Gauge::default(),
        };
        if sample().is_some() {
            let mut r = Registry::default();
            r.register(
                "process_cpu_seconds",
                "Total user and system CPU time spent, seconds",
                m.cpu_seconds.clone(),
            );
            r.register(
                "process_resident_memory_bytes",
                "Resident memory size, bytes",
                m.resident_bytes.clone(),
            );
            r.register(
                "process_open_fds",
                "Open file descriptors",
                m.open_fds.clone(),
            );
            m.registry = Some(r);
        }
        m
    }

    /// Reads `/proc/self` into the metrics (nothing where it cannot be read).
    pub(crate) fn refresh(&self) {
        let Some(s) = sample() else { return };
        // The counter only moves forward: catch it up to the kernel's cumulative figure.
        let behind = s.cpu_seconds - self.cpu_seconds.get();
        if behind > 0.0 {
            self.cpu_seconds.inc_by(behind);
        }
        // Resident sizes stay far below 2^53 bytes, where an f64 stops being exact.
        self.resident_bytes.set(s.resident_bytes as f64);
        self.open_fds.set(crate::metrics::gauge_value(s.open_fds));
    }

    /// The registry to encode after the node's own, if the platform has these metrics.
    pub(crate) fn registry(&self) -> Option<&Registry> {
        self.registry.as_ref()
    }
}

impl Default for ProcessMetrics {
    fn default() -> Self {
        ProcessMetrics::new()
    }
}

/// Clock ticks per second of `/proc/self/stat`'s CPU times. Linux fixes `USER_HZ` at 100 on
/// every architecture it exposes to user space.
const USER_HZ: f64 = 100.0;

/// The resident set size from `VmRSS` of `/proc/self/status` (in kB, so no page size, which only
/// `sysconf` knows, is needed).
fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    parse_vm_rss(&status)
}

/// `VmRSS:   1234 kB` → bytes.
fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kb.checked_mul(1024)
}

/// User + system CPU seconds from the text of `/proc/self/stat`: fields 14 and 15, counted after
/// the command name, which is in parentheses and may itself hold spaces and parentheses.
fn parse_cpu_seconds(stat: &str) -> Option<f64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    // `rest` starts at field 3 (state); utime and stime are fields 14 and 15.
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime + stime) as f64 / USER_HZ)
}

/// Reads the process figures, or `None` where `/proc/self` is not there.
pub(crate) fn sample() -> Option<ProcessSample> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let cpu_seconds = parse_cpu_seconds(&stat)?;
    let resident_bytes = resident_bytes()?;
    let open_fds = std::fs::read_dir("/proc/self/fd").ok()?.count() as u64;
    Some(ProcessSample {
        cpu_seconds,
        resident_bytes,
        open_fds,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cpu_times_after_a_command_name_with_spaces_and_parentheses() {
        let stat = "4242 (pp d) x) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 9 0 1 1 1";
        assert_eq!(parse_cpu_seconds(stat), Some(3.25));
        assert_eq!(parse_cpu_seconds("garbage"), None);
    }

    #[test]
    fn parses_resident_size_in_bytes() {
        let status = "Name:\tppd\nVmPeak:\t 9000 kB\nVmRSS:\t    3072 kB\nThreads:\t4\n";
        assert_eq!(parse_vm_rss(status), Some(3 * 1024 * 1024));
        assert_eq!(parse_vm_rss("Name:\tppd\n"), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn process_metrics_move_with_the_process() {
        let m = ProcessMetrics::new();
        let files: Vec<std::fs::File> = (0..8)
            .map(|_| tempfile::tempfile().expect("temp file"))
            .collect();
        m.refresh();
        // Other tests in this process open and close descriptors too; 8 held here must show.
        assert!(m.open_fds.get() >= 8, "{}", m.open_fds.get());
        assert!(m.resident_bytes.get() > 1_000_000.0);
        // Burn CPU until the counter shows 20 ms more (bounded by 10 s of wall time).
        let cpu0 = m.cpu_seconds.get();
        let mut x = 0u64;
        let t = std::time::Instant::now();
        while m.cpu_seconds.get() < cpu0 + 0.02 && t.elapsed() < std::time::Duration::from_secs(10)
        {
            for _ in 0..100_000 {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
            }
            m.refresh();
        }
        std::hint::black_box(x);
        assert!(
            m.cpu_seconds.get() >= cpu0 + 0.02,
            "CPU seconds did not move"
        );
        drop(files);
        let mut text = String::new();
        prometheus_client::encoding::text::encode_registry(&mut text, m.registry().unwrap())
            .unwrap();
        for name in [
            "process_cpu_seconds_total ",
            "process_resident_memory_bytes ",
            "process_open_fds ",
        ] {
            assert!(text.contains(name), "{name} missing in {text}");
        }
    }
}
