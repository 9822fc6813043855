//! The log cleaner's segment swap (Kafka's `replaceSegments`): a cleaned segment takes the
//! place of the segments it was cleaned from through renames that leave, after a crash at any
//! point, either the old segments or the cleaned one. Separate from the cleaning itself because
//! it runs under the log's lock on the log's own state, as a further `impl PartitionLog`.

use crate::log::checkpoint;
use crate::log::error::Result;
use crate::log::partition::PartitionLog;
use crate::log::segment::{CLEANED_SUFFIX, LogSegment, SWAP_SUFFIX, now_ms};

impl PartitionLog {
    /// Swaps a segment written by the log cleaner in for the segments it was cleaned from, the
    /// way Kafka's `replaceSegments` does, so that a crash at any point leaves either the old
    /// segments or the cleaned one (see `complete_interrupted_swaps`): `.cleaned` -> `.swap`,
    /// the old segments -> `.deleted`, `.swap` -> the segment's own name. Returns false, and
    /// deletes `cleaned`, when `replaced` (base offset and segment id) are no longer all in the
    /// log, or the log was truncated since the cleaner read it (`layout_epoch`). `step` is told
    /// each point reached, for crash tests.
    pub fn replace_with_cleaned(
        &mut self,
        mut cleaned: LogSegment,
        replaced: &[(i64, u64)],
        layout_epoch: u64,
        mut step: impl FnMut(&str),
    ) -> Result<bool> {
        let active_base = self.active().base_offset;
        let unchanged = self.layout_epoch == layout_epoch
            && replaced.iter().all(|(base, id)| {
                *base < active_base && self.segments.get(base).is_some_and(|s| s.id() == *id)
            });
        if !unchanged {
            cleaned.delete_files()?;
            return Ok(false);
        }
        cleaned.change_suffix(Some(CLEANED_SUFFIX), Some(SWAP_SUFFIX))?;
        checkpoint::sync_dir(&self.dir)?;
        step("swap");
        let due = now_ms() + self.config.file_delete_delay_ms;
        let mut result = Ok(());
        for (base, _) in replaced {
            if let Some(mut seg) = self.segments.remove(base) {
                result = result.and(seg.mark_deleted());
                self.pending_deletes.push((due, seg));
            }
        }
        step("deleted");
        // From here the cleaned segment is the log's even if a rename fails: its open files
        // serve reads, and the next start completes the swap from whatever names are on disk.
        let renamed = cleaned
            .change_suffix(Some(SWAP_SUFFIX), None)
            .and_then(|()| checkpoint::sync_dir(&self.dir));
        self.segments.insert(cleaned.base_offset, cleaned);
        result?;
        renamed?;
        self.remove_expired_deletions(now_ms())?;
        Ok(true)
    }
}
