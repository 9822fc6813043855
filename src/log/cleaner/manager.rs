//! Which log a cleaner thread cleans next and the bookkeeping around passes, after Kafka's
//! `LogCleanerManager`: how dirty each compacted log is, which logs are in progress or
//! uncleanable, aborting a pass for topic deletion, and `cleaner-offset-checkpoint`. Separate
//! from the pass itself (`mod.rs`), which cleans one log it is handed.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::{CleanError, CleanStats, LogCleaner, lock};
use crate::log::batch::{self, ATTR_DELETE_HORIZON};
use crate::log::checkpoint::{self, CLEANER_OFFSET_FILE};
use crate::log::error::Result;
use crate::log::handle::LogHandle;
use crate::log::manager::TopicPartition;
use crate::log::partition::PartitionLog;
use crate::log::segment::{LogSegment, read_entry_info};

#[derive(Default)]
pub(super) struct CleanerState {
    /// Logs being cleaned, with the flag that asks their pass to stop.
    pub(super) in_progress: HashMap<TopicPartition, Arc<AtomicBool>>,
    /// Per log, the earliest delete horizon of a tombstone or marker still in its cleaned
    /// section (`None`: there is none). Logs not listed have not been looked at since start-up.
    pub(super) delete_horizons: HashMap<TopicPartition, Option<i64>>,
    /// Logs whose cleaning failed; Kafka leaves them alone until restart, so do we.
    pub(super) uncleanable: HashSet<TopicPartition>,
}

impl LogCleaner {
    /// Stops any pass on `tp` and waits (bounded) until it has let go of the log's directory;
    /// forgets what it knew of the log. For topic deletion.
    pub fn abort_and_wait(&self, tp: &TopicPartition) {
        let mut state = lock(&self.state);
        state.delete_horizons.remove(tp);
        state.uncleanable.remove(tp);
        let deadline = Instant::now() + Duration::from_secs(60);
        while let Some(flag) = state.in_progress.get(tp) {
            flag.store(true, Ordering::Release);
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                tracing::warn!(topic = %tp.0, partition = tp.1, "log cleaner did not stop within 60 s");
                return;
            }
            state = self
                .changed
                .wait_timeout(state, left)
                .map(|(g, _)| g)
                .unwrap_or_else(|p| p.into_inner().0);
        }
    }

    /// One round of one cleaner thread: cleans the dirtiest eligible log, if any, as of `now`
    /// (tests pass a later `now` to get past `delete.retention.ms` without waiting).
    pub fn clean_filthiest(&self, now: i64) -> Result<Option<CleanStats>> {
        let logs: Vec<(TopicPartition, usize, Arc<LogHandle>)> = {
            let logs = self.logs.read().unwrap_or_else(|p| p.into_inner());
            logs.iter()
                .map(|(tp, (d, h))| (tp.clone(), *d, h.clone()))
                .collect()
        };
        let (busy, horizons) = {
            let state = lock(&self.state);
            let busy: HashSet<TopicPartition> = state
                .in_progress
                .keys()
                .chain(state.uncleanable.iter())
                .cloned()
                .collect();
            (busy, state.delete_horizons.clone())
        };
        let mut best: Option<(f64, TopicPartition, usize, Arc<LogHandle>)> = None;
        for (tp, dir, handle) in logs {
            if busy.contains(&tp) {
                continue;
            }
            let Some(d) = dirtiness(&handle.lock(), now) else {
                continue;
            };
            let horizon = match horizons.get(&tp) {
                Some(h) => *h,
                None => match self.scan_delete_horizons(&handle, d.first_dirty) {
                    Ok(h) => {
                        lock(&self.state).delete_horizons.insert(tp.clone(), h);
                        h
                    }
                    Err(e) => {
                        tracing::warn!(topic = %tp.0, partition = tp.1, error = %e, "cannot read the log's delete horizons");
                        continue;
                    }
                },
            };
            let tombstones_due = horizon.is_some_and(|h| h <= now);
            let eligible = d.total_bytes() > 0
                && ((d.overdue && d.cleanable_bytes > 0)
                    || d.ratio() > d.min_ratio
                    || tombstones_due);
            if eligible && best.as_ref().is_none_or(|(r, ..)| d.ratio() > *r) {
                best = Some((d.ratio(), tp, dir, handle));
            }
        }
        let Some((_, tp, dir, handle)) = best else {
            return Ok(None);
        };
        let abort = {
            let mut state = lock(&self.state);
            if state.in_progress.contains_key(&tp) {
                // Another thread took it meanwhile.
                return Ok(None);
            }
            let flag = Arc::new(AtomicBool::new(self.shutdown.load(Ordering::Acquire)));
            state.in_progress.insert(tp.clone(), flag.clone());
            flag
        };
        let result = self.clean_log(&tp, dir, &handle, now, &abort);
        let outcome = {
            let mut state = lock(&self.state);
            state.in_progress.remove(&tp);
            match result {
                Ok((stats, horizon)) => {
                    if stats.swapped {
                        state.delete_horizons.insert(tp.clone(), horizon);
                    }
                    Ok(Some(stats))
                }
                Err(CleanError::Aborted) => Ok(None),
                Err(CleanError::Log(e)) => {
                    tracing::warn!(topic = %tp.0, partition = tp.1, error = %e, "marking partition uncleanable");
                    state.uncleanable.insert(tp.clone());
                    Err(e)
                }
            }
        };
        self.changed.notify_all();
        if let Ok(Some(stats)) = &outcome {
            tracing::info!(
                topic = %stats.topic,
                partition = stats.partition,
                dirty_from = stats.first_dirty,
                dirty_to = stats.end_offset,
                bytes_read = stats.bytes_read,
                bytes_written = stats.bytes_written,
                records_read = stats.records_read,
                records_written = stats.records_written,
                swapped = stats.swapped,
                "log cleaner pass"
            );
        }
        outcome
    }

    /// The earliest delete horizon among the batches below `first_dirty`: what an earlier run
    /// of the broker stamped on tombstones and markers it has not removed yet.
    fn scan_delete_horizons(&self, handle: &LogHandle, first_dirty: i64) -> Result<Option<i64>> {
        let files: Vec<(Arc<File>, u64)> = {
            let log = handle.lock();
            let active = log.segments().last().map(|s| s.base_offset);
            log.segments()
                .filter(|s| Some(s.base_offset) != active && s.base_offset < first_dirty)
                .map(|s| Ok((s.file()?, s.size())))
                .collect::<Result<_>>()?
        };
        let mut earliest: Option<i64> = None;
        for (file, size) in files {
            let mut pos = 0;
            while let Some(e) = read_entry_info(&file, pos, size)? {
                self.throttler
                    .maybe_throttle(batch::BATCH_HEADER_LEN as u64, &self.shutdown);
                if let Some(h) = e.header
                    && h.attributes & ATTR_DELETE_HORIZON != 0
                {
                    earliest = Some(earliest.map_or(h.base_timestamp, |t| t.min(h.base_timestamp)));
                }
                pos += e.size;
            }
        }
        Ok(earliest)
    }

    /// Rewrites every directory's `cleaner-offset-checkpoint` (also from the log manager's
    /// periodic checkpoint, so that an offset lowered by a truncation reaches the file).
    pub fn write_checkpoints(&self) -> Result<()> {
        (0..self.dirs.len()).try_for_each(|d| self.write_checkpoint(d))
    }

    /// Rewrites `cleaner-offset-checkpoint` of one directory from its logs' cleaner offsets.
    pub(super) fn write_checkpoint(&self, dir_index: usize) -> Result<()> {
        let Some(dir) = self.dirs.get(dir_index) else {
            return Ok(());
        };
        let _writing = lock(&self.checkpoint_write);
        let handles: Vec<(TopicPartition, Arc<LogHandle>)> = {
            let logs = self.logs.read().unwrap_or_else(|p| p.into_inner());
            logs.iter()
                .filter(|(_, (d, _))| *d == dir_index)
                .map(|(tp, (_, h))| (tp.clone(), h.clone()))
                .collect()
        };
        let offsets = handles
            .into_iter()
            .filter_map(|(tp, h)| h.lock().cleaner_offset().map(|o| (tp, o)))
            .collect();
        checkpoint::write_offsets(&dir.join(CLEANER_OFFSET_FILE), &offsets)
    }
}

/// How dirty a compacted log is: Kafka's `cleanableOffsets` and `LogToClean`.
pub(super) struct Dirtiness {
    pub(super) first_dirty: i64,
    /// Base offset of the first segment that must not be cleaned.
    pub(super) first_uncleanable: i64,
    pub(super) clean_bytes: u64,
    pub(super) cleanable_bytes: u64,
    /// Dirty data older than `max.compaction.lag.ms`.
    pub(super) overdue: bool,
    pub(super) min_ratio: f64,
}

impl Dirtiness {
    fn total_bytes(&self) -> u64 {
        self.clean_bytes + self.cleanable_bytes
    }
    fn ratio(&self) -> f64 {
        if self.total_bytes() == 0 {
            0.0
        } else {
            self.cleanable_bytes as f64 / self.total_bytes() as f64
        }
    }
}

/// `None` for a log that is not compacted.
pub(super) fn dirtiness(log: &PartitionLog, now: i64) -> Option<Dirtiness> {
    let config = log.config();
    if !config.cleanup_compact {
        return None;
    }
    let segments: Vec<&LogSegment> = log.segments().collect();
    let (active, closed) = segments.split_last()?;
    let log_start = log.log_start_offset();
    let checkpoint = log.cleaner_offset().unwrap_or(log_start);
    let first_dirty = if checkpoint < log_start || checkpoint > log.log_end_offset() {
        if checkpoint > log.log_end_offset() {
            tracing::warn!(
                topic = log.topic(),
                partition = log.partition(),
                checkpoint,
                "cleaner checkpoint is past the log end; cleaning the whole log"
            );
        }
        log_start
    } else {
        checkpoint
    };
    // Segments from the one holding `from` on (Kafka's `nonActiveLogSegmentsFrom`).
    let from_floor = |from: i64| {
        let i = closed.partition_point(|s| s.base_offset <= from);
        &closed[i.saturating_sub(1)..]
    };
    let min_lag = config.min_compaction_lag_ms.max(0);
    let lag_bound = (min_lag > 0)
        .then(|| {
            from_floor(first_dirty)
                .iter()
                .find(|s| s.largest_timestamp() > now - min_lag)
                .map(|s| s.base_offset)
        })
        .flatten();
    let uncleanable = [
        Some(log.last_stable_offset()),
        Some(active.base_offset),
        lag_bound,
    ]
    .into_iter()
    .flatten()
    .min()
    .unwrap_or(active.base_offset)
    .max(first_dirty);
    // Cleaning stops at a segment boundary: the start of the segment holding `uncleanable`.
    let first_uncleanable = if uncleanable >= active.base_offset {
        active.base_offset
    } else {
        from_floor(uncleanable)
            .first()
            .map_or(active.base_offset, |s| s.base_offset)
    };
    // Kafka's `logSegments(from, to)`: the segment holding `from` and all up to `to`.
    let bytes_between = |from: i64, to: i64| -> u64 {
        from_floor(from)
            .iter()
            .chain(std::iter::once(active))
            .filter(|s| s.base_offset < to)
            .map(|s| s.size())
            .sum()
    };
    let clean_bytes = bytes_between(-1, first_dirty);
    let cleanable_bytes = bytes_between(first_dirty.min(first_uncleanable), first_uncleanable);
    let max_lag = config.max_compaction_lag_ms.max(0);
    let overdue = max_lag < i64::MAX && {
        let clean_until = now.saturating_sub(max_lag);
        from_floor(first_dirty)
            .iter()
            .filter_map(|s| {
                s.file()
                    .ok()
                    .and_then(|f| read_entry_info(&f, 0, s.size()).ok().flatten())
                    .map(|e| e.max_timestamp)
            })
            .filter(|&ts| ts > 0)
            .min()
            .is_some_and(|earliest| earliest < clean_until)
    };
    Some(Dirtiness {
        first_dirty,
        first_uncleanable,
        clean_bytes,
        cleanable_bytes,
        overdue,
        min_ratio: config.min_cleanable_dirty_ratio,
    })
}
