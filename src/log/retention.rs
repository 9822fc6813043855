//! Retention: how a partition log loses its oldest segments, by `retention.ms`,
//! `retention.bytes` and DeleteRecords, and how the deleted files go after
//! `file.delete.delay.ms`. Separate from `partition` as Kafka's retention is a concern of its
//! own (the log manager's periodic task), working on whole segments only.

use super::error::{IoContext, LogError, Result};
use super::partition::PartitionLog;
use super::producer_state::snapshot;
use super::segment::{LogSegment, now_ms};

impl PartitionLog {
    /// DeleteRecords: moves the log start offset to `offset` (at most the high watermark) and
    /// drops the segments that fall entirely below it. Returns the new log start offset.
    pub fn delete_records(&mut self, offset: i64) -> Result<i64> {
        if offset > self.high_watermark || offset < 0 {
            return Err(LogError::OffsetOutOfRange {
                offset,
                log_start: self.log_start_offset,
                log_end: self.high_watermark,
            });
        }
        if offset > self.log_start_offset {
            self.log_start_offset = offset;
            self.truncate_epochs_from_start(offset)?;
            self.delete_segments_while(|_, _, _| false)?;
        }
        Ok(self.log_start_offset)
    }

    /// Applies retention (`retention.ms`, `retention.bytes`, and the log start offset), deleting
    /// whole segments only, oldest first. Returns how many segments went.
    pub fn delete_old_segments(&mut self, now: i64) -> Result<usize> {
        let deleted = if self.config.cleanup_delete {
            let retention_ms = self.config.retention_ms;
            let by_time = self.delete_segments_while(|seg, _, _| {
                retention_ms >= 0 && now - seg.largest_timestamp() > retention_ms
            })?;
            let retention_bytes = self.config.retention_bytes;
            let mut excess = self.size_bytes() as i64 - retention_bytes;
            let by_size = self.delete_segments_while(|seg, _, _| {
                if retention_bytes < 0 || excess - (seg.size() as i64) < 0 {
                    return false;
                }
                excess -= seg.size() as i64;
                true
            })?;
            by_time + by_size
        } else {
            self.delete_segments_while(|_, _, _| false)?
        };
        self.remove_expired_deletions(now)?;
        Ok(deleted)
    }

    /// Deletes segments from the oldest while `predicate` holds or they lie below the log start
    /// offset, never past the high watermark; rolls first if the active segment would go.
    pub(super) fn delete_segments_while(
        &mut self,
        mut predicate: impl FnMut(&LogSegment, i64, i64) -> bool,
    ) -> Result<usize> {
        let bases: Vec<i64> = self.segments.keys().copied().collect();
        let mut doomed = Vec::new();
        for (i, &base) in bases.iter().enumerate() {
            let upper = bases.get(i + 1).copied().unwrap_or(self.log_end_offset);
            let Some(seg) = self.segments.get(&base) else {
                break;
            };
            let is_last = i + 1 == bases.len();
            if upper > self.high_watermark || (is_last && seg.is_empty()) {
                break;
            }
            if upper <= self.log_start_offset || predicate(seg, base, upper) {
                doomed.push(base);
            } else {
                break;
            }
        }
        if doomed.is_empty() {
            return Ok(0);
        }
        if doomed.len() == self.segments.len() {
            self.roll(None)?;
        }
        let due = now_ms() + self.config.file_delete_delay_ms;
        for base in &doomed {
            if let Some(mut seg) = self.segments.remove(base) {
                seg.mark_deleted()?;
                tracing::info!(topic = %self.topic, partition = self.partition, base_offset = base, "scheduled segment for deletion");
                self.pending_deletes.push((due, seg));
            }
        }
        let first_base = self
            .segments
            .keys()
            .next()
            .copied()
            .unwrap_or(self.log_end_offset);
        if first_base > self.log_start_offset {
            self.log_start_offset = first_base;
            self.truncate_epochs_from_start(first_base)?;
        }
        // Snapshots of state before the remaining log describe data that is gone.
        for (offset, path) in snapshot::list(&self.dir)? {
            if offset < first_base {
                std::fs::remove_file(&path).at(&path)?;
            }
        }
        self.high_watermark = self.high_watermark.max(self.log_start_offset);
        self.remove_expired_deletions(now_ms())?;
        Ok(doomed.len())
    }

    /// Removes `.deleted` files whose `file.delete.delay.ms` has passed.
    pub fn remove_expired_deletions(&mut self, now: i64) -> Result<()> {
        let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.pending_deletes)
            .into_iter()
            .partition(|(at, _)| *at <= now);
        self.pending_deletes = later;
        for (_, seg) in due {
            seg.delete_files()?;
        }
        Ok(())
    }
}
