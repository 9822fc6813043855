//! The log manager's periodic work, run off the async runtime's worker threads: retention,
//! time-based flushing and checkpoint writes, each at its Kafka interval.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::manager::LogManager;

/// Intervals under Kafka's names.
#[derive(Debug, Clone, Copy)]
pub struct TaskIntervals {
    /// `log.retention.check.interval.ms` (5 minutes).
    pub retention_check: Duration,
    /// `log.flush.scheduler.interval.ms`: how often `flush.ms` is checked.
    pub flush_check: Duration,
    /// `log.flush.offset.checkpoint.interval.ms` (1 minute), also used for the high watermark
    /// and log start offset files.
    pub checkpoint: Duration,
}

impl Default for TaskIntervals {
    fn default() -> Self {
        TaskIntervals {
            retention_check: Duration::from_millis(300_000),
            flush_check: Duration::from_millis(1_000),
            checkpoint: Duration::from_millis(60_000),
        }
    }
}

/// Runs until `shutdown` turns true. Each pass runs on a blocking thread; a failed pass is
/// logged and retried at the next tick, since one bad disk must not stop the others' upkeep.
pub async fn run_periodic_tasks(
    manager: Arc<LogManager>,
    intervals: TaskIntervals,
    mut shutdown: watch::Receiver<bool>,
) {
    // Retention first runs one interval after start-up (Kafka waits 30 s): never before the
    // controller has told this broker which topics it hosts.
    let first_retention = tokio::time::Instant::now()
        .checked_add(intervals.retention_check)
        .unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(365 * 86_400));
    let mut retention = tokio::time::interval_at(first_retention, intervals.retention_check);
    let mut flush = tokio::time::interval(intervals.flush_check);
    let mut checkpoint = tokio::time::interval(intervals.checkpoint);
    for t in [&mut retention, &mut flush, &mut checkpoint] {
        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    }
    loop {
        let m = manager.clone();
        let job: Box<dyn FnOnce() -> super::Result<()> + Send> = tokio::select! {
            _ = retention.tick() => Box::new(move || m.apply_retention().map(|_| ())),
            _ = flush.tick() => Box::new(move || m.flush_due()),
            _ = checkpoint.tick() => Box::new(move || m.write_checkpoints()),
            _ = shutdown.changed() => return,
        };
        match tokio::task::spawn_blocking(job).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "periodic log task failed"),
            Err(e) => tracing::error!(error = %e, "periodic log task panicked"),
        }
        if *shutdown.borrow() {
            return;
        }
    }
}
