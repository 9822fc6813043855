//! The cleaner's I/O throttle (`log.cleaner.io.max.bytes.per.second`), after Kafka's
//! `Throttler`. Separate because it is plain rate limiting, shared by every cleaner thread.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::lock;

/// Kafka's `Throttler` re-measures the rate this often.
const THROTTLE_CHECK_INTERVAL: Duration = Duration::from_millis(300);

/// Kafka's `Throttler`: keeps the cleaners' combined I/O under `io.max.bytes.per.second` by
/// sleeping (all threads share it, and it sleeps with its lock held, as Kafka's does).
pub(super) struct Throttler {
    bytes_per_second: f64,
    period: Mutex<(Instant, f64)>,
}

impl Throttler {
    pub(super) fn new(bytes_per_second: f64) -> Self {
        Throttler {
            bytes_per_second,
            period: Mutex::new((Instant::now(), 0.0)),
        }
    }

    pub(super) fn maybe_throttle(&self, bytes: u64, shutdown: &AtomicBool) {
        if !self.bytes_per_second.is_finite() || self.bytes_per_second >= f64::MAX {
            return;
        }
        let mut period = lock(&self.period);
        period.1 += bytes as f64;
        let elapsed = period.0.elapsed();
        if elapsed < THROTTLE_CHECK_INTERVAL {
            return;
        }
        let rate = period.1 / elapsed.as_secs_f64();
        if rate > self.bytes_per_second {
            let wanted = Duration::from_secs_f64(period.1 / self.bytes_per_second);
            let sleep_until = Instant::now() + wanted.saturating_sub(elapsed);
            // In short steps, so a shutdown is not held up by a long sleep.
            while Instant::now() < sleep_until && !shutdown.load(Ordering::Acquire) {
                std::thread::sleep(
                    sleep_until
                        .saturating_duration_since(Instant::now())
                        .min(Duration::from_millis(50)),
                );
            }
        }
        *period = (Instant::now(), 0.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttler_holds_the_rate() {
        // 1 MB in 100 steps of 5 ms of "work" takes 0.5 s unthrottled; at 500 kB/s the first
        // 0.6 MB must take 1.2 s (the last, partial check interval is not waited for).
        let t = Throttler::new(500_000.0);
        let stop = AtomicBool::new(false);
        let started = Instant::now();
        for _ in 0..100 {
            std::thread::sleep(Duration::from_millis(5));
            t.maybe_throttle(10_000, &stop);
        }
        let took = started.elapsed();
        assert!(took >= Duration::from_millis(1150), "{took:?}");
    }
}
