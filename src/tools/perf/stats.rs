//! What the producer and consumer loads report, in the Java perf tools' wording: records and
//! bytes counted overall and per reporting window, latencies sampled for percentiles. Separate
//! because both loads share it and it does no I/O.

use std::time::{Duration, Instant};

/// The fewest milliseconds between progress lines, however small the interval asked for.
pub(super) const MIN_REPORT_INTERVAL: Duration = Duration::from_millis(100);
/// Latency samples kept for the percentiles, as the Java tool keeps at most 500,000.
const MAX_LATENCY_SAMPLES: u64 = 500_000;

pub(super) const MB: f64 = 1024.0 * 1024.0;

/// Latency and rate accounting, overall and for the current reporting window.
pub(super) struct Stats {
    pub(super) start: Instant,
    pub(super) count: u64,
    pub(super) bytes: u64,
    latency_sum_ms: f64,
    latency_max_ms: f64,
    samples: Vec<f32>,
    sampling: u64,
    window_start: Instant,
    window_count: u64,
    window_bytes: u64,
    window_latency_sum_ms: f64,
    window_latency_max_ms: f64,
}

impl Stats {
    pub(super) fn new(expected: u64) -> Stats {
        let now = Instant::now();
        Stats {
            start: now,
            count: 0,
            bytes: 0,
            latency_sum_ms: 0.0,
            latency_max_ms: 0.0,
            samples: Vec::new(),
            sampling: (expected / expected.clamp(1, MAX_LATENCY_SAMPLES)).max(1),
            window_start: now,
            window_count: 0,
            window_bytes: 0,
            window_latency_sum_ms: 0.0,
            window_latency_max_ms: 0.0,
        }
    }

    pub(super) fn record(&mut self, bytes: u64, latency_ms: Option<f64>) {
        if let Some(l) = latency_ms {
            if self.count.is_multiple_of(self.sampling) {
                self.samples.push(l as f32);
            }
            self.latency_sum_ms += l;
            self.latency_max_ms = self.latency_max_ms.max(l);
            self.window_latency_sum_ms += l;
            self.window_latency_max_ms = self.window_latency_max_ms.max(l);
        }
        self.count += 1;
        self.bytes += bytes;
        self.window_count += 1;
        self.window_bytes += bytes;
    }

    /// `n` records of `bytes` in all, without latencies (a consumer's).
    pub(super) fn record_many(&mut self, n: u64, bytes: u64) {
        self.count += n;
        self.bytes += bytes;
        self.window_count += n;
        self.window_bytes += bytes;
    }

    /// The window's line, then a new window.
    pub(super) fn window_line(&mut self, verb: &str, latencies: bool) -> String {
        let secs = self.window_start.elapsed().as_secs_f64().max(1e-9);
        let n = self.window_count;
        let mut line = format!(
            "{n} records {verb}, {:.1} records/sec ({:.2} MB/sec)",
            n as f64 / secs,
            self.window_bytes as f64 / MB / secs
        );
        if latencies {
            line += &format!(
                ", {:.1} ms avg latency, {:.1} ms max latency",
                self.window_latency_sum_ms / n.max(1) as f64,
                self.window_latency_max_ms
            );
        }
        line.push('.');
        self.window_start = Instant::now();
        self.window_count = 0;
        self.window_bytes = 0;
        self.window_latency_sum_ms = 0.0;
        self.window_latency_max_ms = 0.0;
        line
    }

    pub(super) fn rate(&self) -> (f64, f64, f64) {
        let secs = self.start.elapsed().as_secs_f64().max(1e-9);
        (
            self.count as f64 / secs,
            self.bytes as f64 / MB / secs,
            secs,
        )
    }

    pub(super) fn percentile(&self, p: f64) -> f64 {
        if self.samples.is_empty() {
            return 0.0;
        }
        let i = ((p * self.samples.len() as f64) as usize).min(self.samples.len() - 1);
        self.samples[i] as f64
    }

    pub(super) fn producer_summary(&mut self) -> String {
        let (rps, mbs, _) = self.rate();
        self.samples.sort_unstable_by(f32::total_cmp);
        format!(
            "{} records sent, {rps:.1} records/sec ({mbs:.2} MB/sec), {:.2} ms avg latency, {:.2} ms max latency, {:.2} ms 50th, {:.2} ms 95th, {:.2} ms 99th, {:.2} ms 99.9th.",
            self.count,
            self.latency_sum_ms / self.count.max(1) as f64,
            self.latency_max_ms,
            self.percentile(0.5),
            self.percentile(0.95),
            self.percentile(0.99),
            self.percentile(0.999),
        )
    }
}
