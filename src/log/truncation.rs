//! Truncation (Kafka's `truncateTo` and `truncateFullyAndStartAt`): a follower cutting its log
//! back to where it agrees with its leader, or starting over at an offset. Separate from
//! `partition` because it undoes appends across segments, the epoch cache and producer state.

use super::error::{IoContext, Result};
use super::partition::PartitionLog;
use super::producer_state::snapshot;
use super::segment::LogSegment;

impl PartitionLog {
    /// Removes everything at or after `offset` (replication's truncation on a leader change).
    /// A batch that contains `offset` is removed whole.
    pub fn truncate_to(&mut self, offset: i64) -> Result<()> {
        if offset >= self.log_end_offset {
            return Ok(());
        }
        let first_base = self.segments.keys().next().copied().unwrap_or(0);
        if offset < first_base {
            return self.truncate_fully_and_start_at(offset);
        }
        let later: Vec<i64> = self.segments.range(offset + 1..).map(|(b, _)| *b).collect();
        for base in later {
            if let Some(seg) = self.segments.remove(&base) {
                seg.delete_files()?;
            }
        }
        self.layout_epoch += 1;
        self.cleaner_offset = self.cleaner_offset.map(|c| c.min(offset));
        let active = self.active_mut();
        active.truncate_to(offset)?;
        active.reopen_active()?;
        self.log_end_offset = self.active().next_offset()?;
        self.high_watermark = self.high_watermark.min(self.log_end_offset);
        self.recovery_point = self.recovery_point.min(self.log_end_offset);
        let leo = self.log_end_offset;
        self.truncate_epochs_from_end(leo)?;
        self.rebuild_producer_state()?;
        tracing::info!(topic = %self.topic, partition = self.partition, offset, log_end_offset = leo, "truncated log");
        Ok(())
    }

    /// Deletes every segment and starts an empty log at `offset`.
    pub fn truncate_fully_and_start_at(&mut self, offset: i64) -> Result<()> {
        self.layout_epoch += 1;
        self.cleaner_offset = self.cleaner_offset.map(|c| c.min(offset));
        let segments = std::mem::take(&mut self.segments);
        for seg in segments.into_values() {
            seg.delete_files()?;
        }
        let (seg, _) = LogSegment::open(&self.dir, offset, self.settings(), true)?;
        self.segments.insert(offset, seg);
        self.log_start_offset = offset;
        self.log_end_offset = offset;
        self.high_watermark = offset;
        self.recovery_point = offset;
        self.leader_epochs.clear();
        self.producers.clear();
        for (_, path) in snapshot::list(&self.dir)? {
            std::fs::remove_file(&path).at(&path)?;
        }
        self.write_epochs()
    }
}
