//! Whether the machine's CPUs are saturated, for shedding log- and then
//! metric-class ingest (`limits.shed_at_cpu`, [`super::shed`]).
//!
//! A thread reads `/proc/stat` every [`SAMPLE`]: the share of all CPUs'
//! time spent busy (not idle, not waiting for I/O) since the last sample,
//! the whole machine's and not only the gateway's, since what delays an
//! acknowledgement is a CPU taken by anything. The CPUs are saturated
//! from the first sample at or above the threshold until one below it.
//! The busy share is the gauge `logway_cpu_busy_permille`. Not on systems
//! without `/proc/stat` (the thread then ends and nothing is shed).

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use crate::telemetry::Metrics;

/// How often the load is sampled.
pub const SAMPLE: Duration = Duration::from_millis(500);

pub struct CpuLoad {
    /// Unix ms of the first saturated sample of the current run; 0: not
    /// saturated.
    saturated_since_ms: AtomicI64,
}

impl CpuLoad {
    /// Starts sampling when `threshold` (a share of all CPUs, 0 < t ≤ 1)
    /// is set; the thread ends with the returned value.
    pub fn start(threshold: f64, metrics: Arc<Metrics>) -> Option<Arc<CpuLoad>> {
        if threshold <= 0.0 {
            return None;
        }
        let load = Arc::new(CpuLoad {
            saturated_since_ms: AtomicI64::new(0),
        });
        let weak = Arc::downgrade(&load);
        let spawned = std::thread::Builder::new()
            .name("cpu-load".into())
            .spawn(move || sample(weak, threshold, &metrics));
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start the CPU load sampler; nothing is shed for CPU");
        }
        Some(load)
    }

    /// How long the CPUs have been saturated (`None`: they are not).
    pub fn saturated_for(&self) -> Option<Duration> {
        let since = self.saturated_since_ms.load(Ordering::Relaxed);
        (since > 0).then(|| Duration::from_millis((crate::now_ms() - since).max(0) as u64))
    }
}

fn sample(load: Weak<CpuLoad>, threshold: f64, metrics: &Metrics) {
    let Some(mut last) = read_proc_stat() else {
        tracing::warn!("no /proc/stat: limits.shed_at_cpu has no effect");
        return;
    };
    loop {
        std::thread::sleep(SAMPLE);
        let Some(load) = load.upgrade() else { return };
        let Some(now) = read_proc_stat() else { return };
        let (busy, total) = (now.0 - last.0, now.1 - last.1);
        last = now;
        if total == 0 {
            continue;
        }
        let ratio = busy as f64 / total as f64;
        metrics
            .cpu_busy_permille
            .set((ratio * 1000.0).round() as i64);
        let since = &load.saturated_since_ms;
        if ratio >= threshold {
            let _ =
                since.compare_exchange(0, crate::now_ms(), Ordering::Relaxed, Ordering::Relaxed);
        } else {
            since.store(0, Ordering::Relaxed);
        }
    }
}

/// The machine's busy and total CPU time so far, in clock ticks: the
/// `cpu` line of `/proc/stat` (user nice system idle iowait irq softirq
/// steal …).
fn read_proc_stat() -> Option<(u64, u64)> {
    let text = std::fs::read_to_string("/proc/stat").ok()?;
    parse_cpu_line(text.lines().next()?)
}

fn parse_cpu_line(line: &str) -> Option<(u64, u64)> {
    let mut parts = line.split_ascii_whitespace();
    if parts.next()? != "cpu" {
        return None;
    }
    // guest and guest_nice are already counted in user and nice.
    let ticks: Vec<u64> = parts
        .take(8)
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    let total: u64 = ticks.iter().sum();
    let idle = ticks.get(3)? + ticks.get(4).unwrap_or(&0);
    Some((total - idle, total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_is_all_but_idle_and_iowait() {
        assert_eq!(
            parse_cpu_line("cpu  100 5 50 800 40 3 2 0 0 0"),
            Some((160, 1000))
        );
        assert_eq!(parse_cpu_line("cpu0 1 2 3 4 5 6 7 8"), None);
        assert!(read_proc_stat().is_some_and(|(b, t)| b <= t && t > 0));
    }
}
