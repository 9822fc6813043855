//! Kafka's windowed statistics (`SampledStat`, `Rate`, `Avg` of kafka-clients' metrics), which
//! client quotas are measured with: the same samples, purging and window arithmetic, so that a
//! client is throttled by exactly as much as Kafka would throttle it.

/// `quota.window.num` samples of `quota.window.size.seconds` each (Kafka's `MetricConfig`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Window {
    pub samples: usize,
    pub size_ms: u64,
}

#[derive(Debug, Clone, Copy)]
struct Sample {
    value: f64,
    events: u64,
    start_ms: u64,
    last_event_ms: u64,
}

impl Sample {
    fn new(now: u64) -> Sample {
        Sample {
            value: 0.0,
            events: 0,
            start_ms: now,
            last_event_ms: now,
        }
    }

    fn reset(&mut self, now: u64) {
        *self = Sample::new(now);
    }
}

/// The samples of one statistic: values are added to the current sample, which moves on when
/// its window has passed; samples without events for `samples` whole windows are reset.
#[derive(Debug, Clone, Default)]
pub struct Sampled {
    samples: Vec<Sample>,
    current: usize,
}

impl Sampled {
    pub fn record(&mut self, window: Window, value: f64, now: u64) {
        let mut index = self.current_index(now);
        if now.saturating_sub(self.samples[index].start_ms) >= window.size_ms {
            index = self.advance(window, now);
        }
        let sample = &mut self.samples[index];
        sample.value += value;
        sample.events += 1;
        sample.last_event_ms = now;
    }

    fn current_index(&mut self, now: u64) -> usize {
        if self.samples.is_empty() {
            self.samples.push(Sample::new(now));
            self.current = 0;
        }
        self.current
    }

    /// One more sample than the window count is kept: the oldest may overlap the window's start.
    fn advance(&mut self, window: Window, now: u64) -> usize {
        let max = window.samples.max(1) + 1;
        self.current = (self.current + 1) % max;
        if self.current >= self.samples.len() {
            self.samples.push(Sample::new(now));
            self.current = self.samples.len() - 1;
        } else {
            self.samples[self.current].reset(now);
        }
        self.current
    }

    fn purge(&mut self, window: Window, now: u64) {
        let expire = window.samples as u64 * window.size_ms;
        for s in &mut self.samples {
            if now.saturating_sub(s.last_event_ms) >= expire {
                s.reset(now);
            }
        }
    }

    fn oldest_start(&mut self, now: u64) -> u64 {
        self.current_index(now);
        self.samples.iter().map(|s| s.start_ms).min().unwrap_or(now)
    }

    fn sum(&self) -> f64 {
        self.samples.iter().map(|s| s.value).sum()
    }

    fn events(&self) -> u64 {
        self.samples.iter().map(|s| s.events).sum()
    }

    /// `Rate.windowSize`: the time since the oldest sample started, but never less than
    /// `samples - 1` whole windows (so a client's first burst is not measured over an instant),
    /// and at least 1 ms.
    pub fn window_ms(&mut self, window: Window, now: u64) -> u64 {
        self.purge(window, now);
        let mut elapsed = now.saturating_sub(self.oldest_start(now));
        let full = elapsed / window.size_ms.max(1);
        let min_full = window.samples.saturating_sub(1) as u64;
        if full < min_full {
            elapsed += (min_full - full) * window.size_ms;
        }
        elapsed.max(1)
    }

    /// `Rate` with `WindowedSum`: the retained sum per second.
    pub fn rate(&mut self, window: Window, now: u64) -> f64 {
        let window_ms = self.window_ms(window, now);
        self.sum() / (window_ms as f64 / 1000.0)
    }

    /// `Avg`: the retained sum over the retained event count; NaN without events, as Kafka's.
    pub fn avg(&mut self, window: Window, now: u64) -> f64 {
        self.purge(window, now);
        match self.events() {
            0 => f64::NAN,
            n => self.sum() / n as f64,
        }
    }

    /// When the last value was recorded, for expiring idle statistics.
    pub fn last_event_ms(&self) -> Option<u64> {
        self.samples.iter().map(|s| s.last_event_ms).max()
    }
}

/// `QuotaUtils.throttleTime`: how long the client must stay silent for `rate` to fall back to
/// `bound` over the window it was measured in: (rate - bound) / bound * window.
pub fn throttle_ms(rate: f64, bound: f64, window_ms: u64) -> u64 {
    if bound <= 0.0 {
        // A zero quota: Kafka divides by zero and gets infinity, throttling for as long as a
        // Long holds; one window at a time is as good a refusal and keeps the client talking.
        return window_ms;
    }
    let t = (rate - bound) / bound * window_ms as f64;
    if t.is_finite() && t > 0.0 {
        t.round() as u64
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const W: Window = Window {
        samples: 11,
        size_ms: 1000,
    };

    #[test]
    fn a_first_burst_is_measured_over_ten_windows() {
        let mut s = Sampled::default();
        s.record(W, 1000.0, 0);
        // 1000 bytes over (11 - 1) full windows.
        assert_eq!(s.window_ms(W, 0), 10_000);
        assert_eq!(s.rate(W, 0), 100.0);
        s.record(W, 1000.0, 500);
        assert_eq!(s.rate(W, 500), 2000.0 / 10.5);
    }

    #[test]
    fn old_samples_leave_the_window() {
        let mut s = Sampled::default();
        for t in 0..30u64 {
            s.record(W, 100.0, t * 1000);
        }
        // 100 bytes a second for 30 s: the retained samples cover ~11 s at 100/s.
        let r = s.rate(W, 29_999);
        assert!((r - 100.0).abs() < 10.0, "{r}");
        // Nothing for 11 whole windows: everything is purged.
        assert_eq!(s.rate(W, 29_000 + 11_000), 0.0);
    }

    #[test]
    fn throttle_time_is_kafkas() {
        // Observed 2 MB/s against 1 MB/s over 10 s: 10 s of silence halves the rate.
        assert_eq!(throttle_ms(2_000_000.0, 1_000_000.0, 10_000), 10_000);
        assert_eq!(throttle_ms(1_100_000.0, 1_000_000.0, 10_000), 1000);
        assert_eq!(throttle_ms(900.0, 1000.0, 10_000), 0);
    }

    #[test]
    fn avg_is_nan_without_events() {
        let mut s = Sampled::default();
        assert!(s.avg(W, 0).is_nan());
        s.record(W, 10.0, 0);
        s.record(W, 30.0, 1);
        assert_eq!(s.avg(W, 1), 20.0);
    }
}
