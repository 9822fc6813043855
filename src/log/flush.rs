//! Making a whole log durable and ending it: the full flush (checkpoints, shutdown), the clean
//! close that leaves a log that loads without recovery, and deleting a partition's directory.
//! The per-append flush policy (`needs_flush`, `unflushed_files`, `mark_flushed`) stays beside
//! the append path in `partition`, which it serves.

use std::fs;

use super::error::{IoContext, Result};
use super::partition::PartitionLog;
use super::producer_state::snapshot;
use super::segment::now_ms;

impl PartitionLog {
    /// fsyncs everything not yet durable and moves the recovery point to the log end.
    pub fn flush(&mut self) -> Result<()> {
        // Nothing appended or truncated since the files were last made durable: syncing them
        // again changes nothing. A clean shutdown flushes every log twice (before the
        // checkpoints and at close); with 10,000 idle partitions those fsyncs took longer than
        // a supervisor's stop timeout, and a broker killed there restarts with full recovery.
        if self.unflushed_messages == 0
            && self.fully_flushed_at == Some((self.log_end_offset, self.layout_epoch))
        {
            self.recovery_point = self.log_end_offset;
            return Ok(());
        }
        let from = self
            .segments
            .range(..=self.recovery_point)
            .next_back()
            .map_or(i64::MIN, |(b, _)| *b);
        for seg in self.segments.range(from..).map(|(_, s)| s) {
            seg.flush()?;
        }
        self.recovery_point = self.log_end_offset;
        self.unflushed_messages = 0;
        self.last_flush_ms = now_ms();
        self.fully_flushed_at = Some((self.log_end_offset, self.layout_epoch));
        Ok(())
    }

    /// Flushes and trims the active segment's indexes, as a clean shutdown leaves them.
    pub fn close(mut self) -> Result<()> {
        self.flush()?;
        // As Kafka's `ProducerStateManager.takeSnapshot`, an offset already snapshotted is not
        // written again (an idle log has one from its last close), and an empty log (its end at
        // its start) gets none: Kafka's last snapshot offset starts at the log start. Writing
        // and fsyncing one for each of 10,000 new partitions made their first clean shutdown
        // take seconds.
        if self.log_end_offset > self.log_start_offset
            && !snapshot::path(&self.dir, self.log_end_offset).exists()
        {
            self.take_producer_snapshot()?;
        }
        self.active_mut().close_active()?;
        self.remove_expired_deletions(i64::MAX)
    }

    /// Deletes the whole partition directory (topic deletion).
    pub fn delete(self) -> Result<()> {
        let dir = self.dir.clone();
        drop(self);
        fs::remove_dir_all(&dir).at(&dir)
    }
}
