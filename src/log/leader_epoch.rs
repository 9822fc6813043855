//! The leader epoch cache of a partition log (Kafka's `LeaderEpochFileCache`): which leader
//! epoch starts at which offset, kept in `leader-epoch-checkpoint`. Followers use it to find
//! where their log diverges from the leader's; it is separate from `partition` because it is
//! its own small state machine with its own file.

use super::checkpoint::{self, LEADER_EPOCH_FILE};
use super::error::Result;
use super::partition::PartitionLog;

impl PartitionLog {
    /// The latest leader epoch of the log's epoch cache (a follower's `last_fetched_epoch`).
    pub fn latest_epoch(&self) -> Option<i32> {
        self.leader_epochs.last().map(|&(e, _)| e)
    }

    /// Kafka's `LeaderEpochFileCache.endOffsetFor`: for `requested`, the largest epoch at or
    /// below it and the offset where the next epoch starts (the log end offset for the latest
    /// epoch). `(-1, -1)` when the epoch is undefined or later than any known one.
    pub fn end_offset_for_epoch(&self, requested: i32) -> (i32, i64) {
        const UNDEFINED: (i32, i64) = (-1, -1);
        if requested < 0 {
            return UNDEFINED;
        }
        if self.latest_epoch() == Some(requested) {
            return (requested, self.log_end_offset);
        }
        let Some(&(_, higher_start)) = self.leader_epochs.iter().find(|&&(e, _)| e > requested)
        else {
            return UNDEFINED;
        };
        match self
            .leader_epochs
            .iter()
            .rev()
            .find(|&&(e, _)| e <= requested)
        {
            Some(&(floor, _)) => (floor, higher_start),
            None => (requested, higher_start),
        }
    }

    /// A new leader records where its epoch starts (its log end offset) before any batch of
    /// that epoch exists, so that followers holding later data from an older epoch learn where
    /// their log diverges (Kafka's `maybeAssignEpochStartOffset`).
    pub fn assign_leader_epoch_start(&mut self, epoch: i32) -> Result<()> {
        let leo = self.log_end_offset;
        self.assign_epoch(epoch, leo)
    }

    pub(super) fn assign_epoch(&mut self, epoch: i32, start_offset: i64) -> Result<()> {
        if epoch >= 0 && self.leader_epochs.last().is_none_or(|&(e, _)| epoch > e) {
            // An epoch that ended before any batch of it was written is superseded (Kafka drops
            // entries that would no longer be monotonic).
            self.leader_epochs.retain(|&(_, off)| off < start_offset);
            self.leader_epochs.push((epoch, start_offset));
            self.write_epochs()?;
        }
        Ok(())
    }

    pub(super) fn truncate_epochs_from_end(&mut self, end: i64) -> Result<()> {
        let before = self.leader_epochs.len();
        self.leader_epochs.retain(|&(_, off)| off < end);
        if self.leader_epochs.len() != before {
            self.write_epochs()?;
        }
        Ok(())
    }

    /// Drops epochs that end before `start`; the one spanning it now starts at `start`.
    pub(super) fn truncate_epochs_from_start(&mut self, start: i64) -> Result<()> {
        let keep_from = self
            .leader_epochs
            .iter()
            .rposition(|&(_, off)| off <= start);
        if let Some(i) = keep_from {
            self.leader_epochs.drain(..i);
            if let Some(first) = self.leader_epochs.first_mut() {
                first.1 = start;
            }
            self.write_epochs()?;
        }
        Ok(())
    }

    pub(super) fn write_epochs(&mut self) -> Result<()> {
        if self.epochs_on_disk.as_ref() == Some(&self.leader_epochs) {
            return Ok(());
        }
        // Unknown until the write succeeds: a failed one may have left either content.
        self.epochs_on_disk = None;
        checkpoint::write_leader_epochs(&self.dir.join(LEADER_EPOCH_FILE), &self.leader_epochs)?;
        self.epochs_on_disk = Some(self.leader_epochs.clone());
        Ok(())
    }
}
