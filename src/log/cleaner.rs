//! The log cleaner: compaction of `cleanup.policy=compact` logs, after Kafka's `LogCleaner`,
//! `Cleaner` and `LogCleanerManager` (3.9).
//!
//! Each of `log.cleaner.threads` threads repeatedly picks the compacted log with the highest
//! dirty ratio (bytes not yet cleaned / all bytes) above `min.cleanable.dirty.ratio`, or one
//! whose dirty data is older than `max.compaction.lag.ms`, or one whose tombstones are due. The
//! dirty section runs from the `cleaner-offset-checkpoint` offset up to the first segment that
//! may not be cleaned: the active one, the one holding the last stable offset, or the first one
//! younger than `min.compaction.lag.ms`. A pass builds a map from key (a 128-bit hash of it) to
//! its last offset over the dirty section, then rewrites every segment below the dirty
//! section's end, in groups of at most `segment.bytes`, keeping a record only if no later record
//! has its key. Records keep their offsets; a batch that loses records is rebuilt with its base
//! offset, last offset delta and producer fields unchanged.
//!
//! Transactions: records of aborted transactions go, and so does an ABORT marker once nothing of
//! its transaction is left; COMMIT and ABORT markers, like tombstones, are stamped with a delete
//! horizon (now + `delete.retention.ms`) the first time they are eligible and removed by a pass
//! that runs after it. The last batch of every producer the log knows survives, if need be
//! emptied of records, so idempotence and fencing survive cleaning.
//!
//! Locking: a pass holds the partition's lock only to look at the log (sizes, offsets, open file
//! handles) and for the swap, which is a handful of renames. Reading, filtering and writing the
//! new segment happen without it, through duplicated file handles of segments that no longer
//! change (only the active segment is appended to). At the swap, the log checks that the
//! segments read are still its own (segment ids, `layout_epoch`); if retention, a truncation or
//! a deletion got there first, the cleaned files are discarded and the log is cleaned later.
//!
//! Crash safety is Kafka's: the new segment is written as `<base>.log.cleaned` (and indexes),
//! fsynced, renamed to `.swap`, the old segments renamed to `.deleted`, then `.swap` renamed into
//! place; `PartitionLog::open` completes or discards whatever step a crash interrupted.
//!
//! Deliberate differences from Kafka: keys are hashed with two keyed SipHash functions instead
//! of MD5 (same 128 bits, no new dependency); a log whose oldest tombstone's delete horizon has
//! passed is cleaned even when it has no new dirty data (Kafka waits for the dirty ratio, so its
//! tombstones can outlive `delete.retention.ms` indefinitely on a quiet log); legacy (magic 0/1)
//! entries are copied unchanged rather than deduplicated.

use std::cmp::Reverse;
use std::collections::hash_map::RandomState;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::fs::File;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use bytes::{Bytes, BytesMut};

use super::batch::{self, ATTR_DELETE_HORIZON, BatchHeader, LOG_OVERHEAD, MAGIC_OFFSET};
use super::checkpoint::{self, CLEANER_OFFSET_FILE};
use super::error::{LogError, Result};
use super::handle::LogHandle;
use super::manager::{LogMap, TopicPartition};
use super::partition::PartitionLog;
use super::records::{self, Record};
use super::segment::{LogSegment, SegmentSettings, now_ms, read_entry_info};
use super::txn_index::AbortedTxn;
use crate::config::{CleanerConfig, LogConfig};

/// Bytes one entry of Kafka's `SkimpyOffsetMap` takes (16-byte hash, 8-byte offset): the unit
/// `log.cleaner.dedupe.buffer.size` is divided into.
const OFFSET_MAP_ENTRY_BYTES: u64 = 24;
/// Kafka's `Throttler` re-measures the rate this often.
const THROTTLE_CHECK_INTERVAL: Duration = Duration::from_millis(300);
/// Control record types (`ControlRecordType`).
const CONTROL_ABORT: i16 = 0;
const CONTROL_COMMIT: i16 = 1;
/// Crash tests set this to stop the process at one step of a swap; see [`failpoint`].
const FAILPOINT_ENV: &str = "ODRADEK_CLEANER_FAILPOINT";

pub struct LogCleaner {
    config: CleanerConfig,
    logs: LogMap,
    dirs: Vec<PathBuf>,
    state: Mutex<CleanerState>,
    /// Wakes sleeping threads at shutdown and `abort_and_wait` callers when a pass ends.
    changed: Condvar,
    throttler: Throttler,
    shutdown: AtomicBool,
    threads: Mutex<Vec<JoinHandle<()>>>,
    /// One writer at a time per `cleaner-offset-checkpoint`.
    checkpoint_write: Mutex<()>,
}

#[derive(Default)]
struct CleanerState {
    /// Logs being cleaned, with the flag that asks their pass to stop.
    in_progress: HashMap<TopicPartition, Arc<AtomicBool>>,
    /// Per log, the earliest delete horizon of a tombstone or marker still in its cleaned
    /// section (`None`: there is none). Logs not listed have not been looked at since start-up.
    delete_horizons: HashMap<TopicPartition, Option<i64>>,
    /// Logs whose cleaning failed; Kafka leaves them alone until restart, so do we.
    uncleanable: HashSet<TopicPartition>,
}

/// What one pass did, for the log line and for tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CleanStats {
    pub topic: String,
    pub partition: i32,
    /// The dirty section cleaned: `[first_dirty, end_offset)`; `end_offset` is the new
    /// checkpoint.
    pub first_dirty: i64,
    pub end_offset: i64,
    pub bytes_read: u64,
    pub bytes_written: u64,
    pub records_read: u64,
    pub records_written: u64,
    /// False when the log changed under the pass (truncation, retention) and the cleaned
    /// segments were thrown away.
    pub swapped: bool,
}

enum CleanError {
    /// Shutdown, or the log is being deleted.
    Aborted,
    Log(LogError),
}

impl From<LogError> for CleanError {
    fn from(e: LogError) -> Self {
        CleanError::Log(e)
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl LogCleaner {
    pub(crate) fn new(config: CleanerConfig, logs: LogMap, dirs: Vec<PathBuf>) -> Arc<LogCleaner> {
        Arc::new(LogCleaner {
            throttler: Throttler::new(config.io_max_bytes_per_second),
            config,
            logs,
            dirs,
            state: Mutex::new(CleanerState::default()),
            changed: Condvar::new(),
            shutdown: AtomicBool::new(false),
            threads: Mutex::new(Vec::new()),
            checkpoint_write: Mutex::new(()),
        })
    }

    /// Starts `log.cleaner.threads` threads (`kafka-log-cleaner-thread-<n>` in Kafka).
    pub fn start(self: &Arc<Self>) {
        let mut threads = lock(&self.threads);
        for id in 0..self.config.threads {
            let me = self.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("log-cleaner-{id}"))
                .spawn(move || me.run());
            match spawned {
                Ok(t) => threads.push(t),
                Err(e) => tracing::error!(error = %e, "cannot start a log cleaner thread"),
            }
        }
    }

    /// Stops the threads, interrupting passes in progress, and waits for them.
    pub fn stop(&self) {
        self.shutdown.store(true, Ordering::Release);
        {
            let state = lock(&self.state);
            for flag in state.in_progress.values() {
                flag.store(true, Ordering::Release);
            }
        }
        self.changed.notify_all();
        let threads = std::mem::take(&mut *lock(&self.threads));
        for t in threads {
            let _ = t.join();
        }
    }

    fn run(self: Arc<Self>) {
        while !self.shutdown.load(Ordering::Acquire) {
            let cleaned = match self.clean_filthiest(now_ms()) {
                Ok(stats) => stats.is_some(),
                Err(e) => {
                    tracing::error!(error = %e, "log cleaning failed");
                    false
                }
            };
            if !cleaned {
                let state = lock(&self.state);
                let backoff = Duration::from_millis(self.config.backoff_ms.max(1));
                let _ = self
                    .changed
                    .wait_timeout_while(state, backoff, |_| !self.shutdown.load(Ordering::Acquire))
                    .map(|(g, _)| drop(g));
            }
        }
    }

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

    fn check_done(&self, abort: &AtomicBool) -> std::result::Result<(), CleanError> {
        if abort.load(Ordering::Acquire) || self.shutdown.load(Ordering::Acquire) {
            Err(CleanError::Aborted)
        } else {
            Ok(())
        }
    }

    /// The earliest delete horizon among the batches below `first_dirty`: what an earlier run
    /// of the broker stamped on tombstones and markers it has not removed yet.
    fn scan_delete_horizons(&self, handle: &LogHandle, first_dirty: i64) -> Result<Option<i64>> {
        let files: Vec<(Arc<File>, u64)> = {
            let log = handle.lock();
            let active = log.segments().last().map(|s| s.base_offset);
            log.segments()
                .filter(|s| Some(s.base_offset) != active && s.base_offset < first_dirty)
                .map(|s| (s.shared_file(), s.size()))
                .collect()
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

    fn offset_map_capacity(&self) -> usize {
        let per_thread = (self.config.dedupe_buffer_size / self.config.threads.max(1) as u64)
            .min(i32::MAX as u64);
        let slots = (per_thread / OFFSET_MAP_ENTRY_BYTES) as f64;
        ((slots * self.config.dedupe_buffer_load_factor) as usize).max(1)
    }

    /// Cleans one log: Kafka's `Cleaner.doClean`. Returns the pass's figures and the earliest
    /// delete horizon left in the log.
    fn clean_log(
        &self,
        tp: &TopicPartition,
        dir_index: usize,
        handle: &LogHandle,
        now: i64,
        abort: &AtomicBool,
    ) -> std::result::Result<(CleanStats, Option<i64>), CleanError> {
        let Some(view) = LogView::take(&handle.lock(), now)? else {
            return Err(CleanError::Aborted);
        };
        let mut stats = CleanStats {
            topic: tp.0.clone(),
            partition: tp.1,
            first_dirty: view.first_dirty,
            ..CleanStats::default()
        };
        let mut map = OffsetMap::new(self.offset_map_capacity(), view.first_dirty - 1);
        self.build_offset_map(&view, &mut map, &mut stats, abort)?;
        let end_offset = map.latest_offset + 1;
        stats.end_offset = end_offset;

        let to_clean: Vec<&SegmentView> = view
            .segments
            .iter()
            .filter(|s| s.base < end_offset)
            .collect();
        let groups = group_by_size(
            &to_clean,
            view.config.segment_bytes,
            view.config.segment_index_bytes,
        );
        let mut filter = BatchFilter {
            now,
            delete_retention_ms: view.config.delete_retention_ms,
            map: &map,
            producers: &view.producers,
            txns: TxnTracker::default(),
            earliest_horizon: None,
        };
        for group in groups {
            self.check_done(abort)?;
            let swapped =
                self.clean_group(handle, &view, &group, &mut filter, &mut stats, abort)?;
            if !swapped {
                tracing::info!(topic = %tp.0, partition = tp.1, "log changed during cleaning; discarded the cleaned segment");
                return Ok((stats, None));
            }
        }
        stats.swapped = true;
        handle.lock().set_cleaner_offset(end_offset);
        self.write_checkpoint(dir_index)?;
        Ok((stats, filter.earliest_horizon))
    }

    /// Kafka's `buildOffsetMap`: key -> last offset over the dirty section, stopping early when
    /// the map is full (the pass then cleans only up to where the map reaches).
    fn build_offset_map(
        &self,
        view: &LogView,
        map: &mut OffsetMap,
        stats: &mut CleanStats,
        abort: &AtomicBool,
    ) -> std::result::Result<(), CleanError> {
        let (start, end) = (view.first_dirty, view.first_uncleanable);
        let mut txns = TxnTracker::default();
        txns.add_aborted(view.aborted_between(start, end));
        for seg in view
            .segments
            .iter()
            .filter(|s| s.next_base > start && s.base < end)
        {
            let mut reader = SegmentReader::new(seg, seg.dirty_start_position, self);
            while let Some(entry) = reader.next()? {
                self.check_done(abort)?;
                stats.bytes_read += entry.len() as u64;
                if entry[MAGIC_OFFSET] != 2 {
                    // Legacy entries are copied as they are (see the module comment).
                    if let Some(size) = batch::entry_size(&entry)
                        && size > 0
                    {
                        let offset = i64::from_be_bytes(entry[..8].try_into().unwrap_or([0; 8]));
                        if offset >= start {
                            map.latest_offset = map.latest_offset.max(offset);
                        }
                    }
                    continue;
                }
                let (h, recs) = records::decode_batch(&entry)?;
                stats.records_read += recs.len() as u64;
                if h.is_control() {
                    txns.on_control_batch(&h, control_type(&recs));
                } else if !txns.on_batch(&h) {
                    for r in &recs {
                        if let Some(key) = &r.key
                            && r.offset >= start
                            && !map.put(key, r.offset)
                        {
                            return Ok(());
                        }
                    }
                }
                if h.last_offset() >= start {
                    map.latest_offset = map.latest_offset.max(h.last_offset());
                }
            }
            // Offsets may have gaps (an earlier clean); the map covers the whole segment.
            map.latest_offset = map.latest_offset.max(seg.next_base - 1);
        }
        Ok(())
    }

    /// Cleans `group` into one new segment and swaps it in (Kafka's `cleanSegments`). Returns
    /// false when the log changed meanwhile and the new segment was discarded.
    fn clean_group(
        &self,
        handle: &LogHandle,
        view: &LogView,
        group: &[&SegmentView],
        filter: &mut BatchFilter<'_>,
        stats: &mut CleanStats,
        abort: &AtomicBool,
    ) -> std::result::Result<bool, CleanError> {
        let first = group[0];
        let mut dest = LogSegment::create_cleaned(&view.dir, first.base, view.settings)?;
        let written = self.write_group(view, group, filter, &mut dest, stats, abort);
        let finished = written.and_then(|()| {
            dest.close_active()?;
            dest.flush()?;
            let last_modified = group.last().map_or(SystemTime::now(), |s| s.last_modified);
            dest.set_last_modified(last_modified)?;
            Ok(())
        });
        if let Err(e) = finished {
            if let Err(del) = dest.delete_files() {
                tracing::warn!(error = %del, "cannot delete an unfinished cleaned segment");
            }
            return Err(e);
        }
        failpoint("cleaned");
        let replaced: Vec<(i64, u64)> = group.iter().map(|s| (s.base, s.id)).collect();
        let swapped =
            handle
                .lock()
                .replace_with_cleaned(dest, &replaced, view.layout_epoch, failpoint)?;
        Ok(swapped)
    }

    fn write_group(
        &self,
        view: &LogView,
        group: &[&SegmentView],
        filter: &mut BatchFilter<'_>,
        dest: &mut LogSegment,
        stats: &mut CleanStats,
        abort: &AtomicBool,
    ) -> std::result::Result<(), CleanError> {
        for seg in group {
            filter
                .txns
                .add_aborted(view.aborted_between(seg.base, seg.next_base));
            let mut reader = SegmentReader::new(seg, 0, self);
            while let Some(entry) = reader.next()? {
                self.check_done(abort)?;
                stats.bytes_read += entry.len() as u64;
                let kept = if entry[MAGIC_OFFSET] == 2 {
                    let kept = filter.filter(&entry)?;
                    stats.records_read += kept.records_read;
                    stats.records_written += kept.records_kept;
                    if let Some(txn) = kept.index_aborted {
                        dest.txn_index.append(txn)?;
                    }
                    kept.bytes
                } else {
                    Some(entry.clone())
                };
                let Some(bytes) = kept else {
                    continue;
                };
                let (last_offset, max_ts) = match BatchHeader::parse(&bytes) {
                    Ok(h) => (h.last_offset(), h.max_timestamp),
                    // A legacy entry's offset is its last (a compressed wrapper's is its last
                    // inner message's).
                    Err(_) => (
                        i64::from_be_bytes(bytes[..8].try_into().unwrap_or([0; 8])),
                        legacy_max_timestamp(&bytes),
                    ),
                };
                dest.append(&[&bytes], last_offset, max_ts, last_offset)?;
                stats.bytes_written += bytes.len() as u64;
                self.throttler
                    .maybe_throttle(bytes.len() as u64, &self.shutdown);
            }
        }
        Ok(())
    }

    /// Rewrites every directory's `cleaner-offset-checkpoint` (also from the log manager's
    /// periodic checkpoint, so that an offset lowered by a truncation reaches the file).
    pub fn write_checkpoints(&self) -> Result<()> {
        (0..self.dirs.len()).try_for_each(|d| self.write_checkpoint(d))
    }

    /// Rewrites `cleaner-offset-checkpoint` of one directory from its logs' cleaner offsets.
    fn write_checkpoint(&self, dir_index: usize) -> Result<()> {
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

/// The timestamp of a legacy entry (magic 1 carries one; magic 0 none).
fn legacy_max_timestamp(bytes: &[u8]) -> i64 {
    if bytes.get(MAGIC_OFFSET) == Some(&1) && bytes.len() >= 26 {
        i64::from_be_bytes(bytes[18..26].try_into().unwrap_or([0; 8]))
    } else {
        -1
    }
}

/// Stops the process at one step of a cleaned segment's swap, for crash tests:
/// `ODRADEK_CLEANER_FAILPOINT=<step>` aborts the process there (as abruptly as `kill -9`),
/// `<step>:pause` logs and waits there (bounded, ten minutes) for the test to kill it. Steps:
/// `cleaned` (the `.cleaned` files are written and fsynced), `swap` (renamed to `.swap`),
/// `deleted` (the old segments renamed to `.deleted`, the `.swap` files not yet renamed).
fn failpoint(step: &str) {
    let Some(spec) = std::env::var_os(FAILPOINT_ENV) else {
        return;
    };
    let spec = spec.to_string_lossy();
    let (at, action) = spec.split_once(':').unwrap_or((&spec, "abort"));
    if at != step {
        return;
    }
    tracing::warn!(step, action, "log cleaner failpoint reached");
    eprintln!("log cleaner failpoint {step} reached");
    if action == "pause" {
        let until = Instant::now() + Duration::from_secs(600);
        while Instant::now() < until {
            std::thread::sleep(Duration::from_millis(100));
        }
    } else {
        std::process::abort();
    }
}

/// How dirty a compacted log is: Kafka's `cleanableOffsets` and `LogToClean`.
struct Dirtiness {
    first_dirty: i64,
    /// Base offset of the first segment that must not be cleaned.
    first_uncleanable: i64,
    clean_bytes: u64,
    cleanable_bytes: u64,
    /// Dirty data older than `max.compaction.lag.ms`.
    overdue: bool,
    min_ratio: f64,
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
fn dirtiness(log: &PartitionLog, now: i64) -> Option<Dirtiness> {
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
                read_entry_info(s.file(), 0, s.size())
                    .ok()
                    .flatten()
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

/// What a pass needs of one non-active segment, taken under the log's lock.
struct SegmentView {
    base: i64,
    id: u64,
    /// Base offset of the next segment (the active one, for the last).
    next_base: i64,
    file: Arc<File>,
    size: u64,
    last_modified: SystemTime,
    offset_index_bytes: u64,
    time_index_bytes: u64,
    /// Where the dirty section starts in this segment (through the offset index), or 0.
    dirty_start_position: u64,
}

/// What a pass needs of a log, taken under its lock; everything after works on this.
struct LogView {
    dir: PathBuf,
    config: LogConfig,
    settings: SegmentSettings,
    segments: Vec<SegmentView>,
    /// Aborted transactions from every segment's `.txnindex`, the active one's included.
    aborted: Vec<AbortedTxn>,
    first_dirty: i64,
    first_uncleanable: i64,
    layout_epoch: u64,
    producers: HashMap<i64, (Option<i64>, i16)>,
}

impl LogView {
    fn take(log: &PartitionLog, now: i64) -> Result<Option<LogView>> {
        let Some(d) = dirtiness(log, now) else {
            return Ok(None);
        };
        let all: Vec<&LogSegment> = log.segments().collect();
        let Some((active, closed)) = all.split_last() else {
            return Ok(None);
        };
        let mut segments = Vec::with_capacity(closed.len());
        for (i, s) in closed.iter().enumerate() {
            let next_base = closed
                .get(i + 1)
                .map_or(active.base_offset, |n| n.base_offset);
            segments.push(SegmentView {
                base: s.base_offset,
                id: s.id(),
                next_base,
                file: s.shared_file(),
                size: s.size(),
                last_modified: s.last_modified(),
                offset_index_bytes: (s.offset_index.file.len() * super::index::OFFSET_ENTRY) as u64,
                time_index_bytes: (s.time_index.file.len() * super::index::TIME_ENTRY) as u64,
                dirty_start_position: if d.first_dirty > s.base_offset {
                    s.offset_index.lookup(d.first_dirty) as u64
                } else {
                    0
                },
            });
        }
        let config = log.config().clone();
        Ok(Some(LogView {
            dir: log.dir().to_path_buf(),
            settings: SegmentSettings {
                index_interval_bytes: config.index_interval_bytes,
                max_index_bytes: config.segment_index_bytes,
            },
            config,
            segments,
            aborted: all
                .iter()
                .flat_map(|s| s.txn_index.entries().iter().copied())
                .collect(),
            first_dirty: d.first_dirty,
            first_uncleanable: d.first_uncleanable,
            layout_epoch: log.layout_epoch(),
            producers: log.producer_state().last_records(),
        }))
    }

    /// Kafka's `collectAbortedTransactions(start, upper)`.
    fn aborted_between(&self, start: i64, upper: i64) -> Vec<AbortedTxn> {
        self.aborted
            .iter()
            .filter(|t| t.last_offset >= start && t.first_offset < upper)
            .copied()
            .collect()
    }
}

/// Kafka's `groupSegmentsBySize`: consecutive segments whose data and indexes together fit one
/// segment, and whose offsets fit the relative offsets of one index.
fn group_by_size<'a>(
    segments: &[&'a SegmentView],
    max_size: u64,
    max_index_bytes: usize,
) -> Vec<Vec<&'a SegmentView>> {
    let mut groups = Vec::new();
    let mut i = 0;
    while i < segments.len() {
        let first = segments[i];
        let mut group = vec![first];
        let (mut size, mut index, mut time) =
            (first.size, first.offset_index_bytes, first.time_index_bytes);
        i += 1;
        while let Some(next) = segments.get(i) {
            let fits = size + next.size <= max_size
                && index + next.offset_index_bytes <= max_index_bytes as u64
                && time + next.time_index_bytes <= max_index_bytes as u64
                && (next.size == 0 || next.next_base - 1 - first.base <= i32::MAX as i64);
            if !fits {
                break;
            }
            size += next.size;
            index += next.offset_index_bytes;
            time += next.time_index_bytes;
            group.push(next);
            i += 1;
        }
        groups.push(group);
    }
    groups
}

/// Reads a segment entry by entry in chunks of the I/O buffer size (bigger when one entry is),
/// throttled.
struct SegmentReader<'a> {
    file: &'a File,
    end: u64,
    chunk: Bytes,
    /// File position of `chunk[0]`.
    chunk_start: u64,
    used: usize,
    io_size: usize,
    cleaner: &'a LogCleaner,
}

impl<'a> SegmentReader<'a> {
    fn new(seg: &'a SegmentView, from: u64, cleaner: &'a LogCleaner) -> Self {
        SegmentReader {
            file: &seg.file,
            end: seg.size,
            chunk: Bytes::new(),
            chunk_start: from,
            used: 0,
            io_size: (cleaner.config.io_buffer_size / cleaner.config.threads.max(1) / 2)
                .max(64 * 1024),
            cleaner,
        }
    }

    fn next(&mut self) -> Result<Option<Bytes>> {
        loop {
            let rest = &self.chunk[self.used..];
            let size = batch::entry_size(rest);
            if let Some(size) = size {
                if size < (LOG_OVERHEAD + 5) as i64 {
                    return Err(self.corrupt(format!("entry size {size}")));
                }
                if rest.len() as i64 >= size {
                    let entry = self.chunk.slice(self.used..self.used + size as usize);
                    self.used += size as usize;
                    return Ok(Some(entry));
                }
            }
            let pos = self.chunk_start + self.used as u64;
            if pos >= self.end {
                return Ok(None);
            }
            let left = self.end - pos;
            let needed = size.map_or(0, |s| s as u64);
            if needed > left {
                return Err(self.corrupt(format!("entry of {needed} bytes, {left} left")));
            }
            let len = (self.io_size as u64).max(needed).min(left) as usize;
            let mut buf = BytesMut::zeroed(len);
            self.file
                .read_exact_at(&mut buf, pos)
                .map_err(|e| LogError::io("<segment being cleaned>", e))?;
            self.cleaner
                .throttler
                .maybe_throttle(len as u64, &self.cleaner.shutdown);
            self.chunk = buf.freeze();
            self.chunk_start = pos;
            self.used = 0;
            if len < LOG_OVERHEAD {
                return Err(self.corrupt(format!("{len} trailing bytes")));
            }
        }
    }

    fn corrupt(&self, what: String) -> LogError {
        LogError::CorruptMessage(format!(
            "segment being cleaned, position {}: {what}",
            self.chunk_start + self.used as u64
        ))
    }
}

/// Key -> last offset over the dirty section, keyed by 128 bits of hash (Kafka's
/// `SkimpyOffsetMap`, which uses MD5), with room for a fixed number of keys.
struct OffsetMap {
    entries: HashMap<(u64, u64), i64, BuildHasherDefault<PassThrough>>,
    capacity: usize,
    /// The last offset the map covers: records after it are kept whatever their key.
    latest_offset: i64,
    hash_a: RandomState,
    hash_b: RandomState,
}

impl OffsetMap {
    fn new(capacity: usize, latest_offset: i64) -> Self {
        OffsetMap {
            entries: HashMap::default(),
            capacity,
            latest_offset,
            hash_a: RandomState::new(),
            hash_b: RandomState::new(),
        }
    }

    fn hash(&self, key: &[u8]) -> (u64, u64) {
        (self.hash_a.hash_one(key), self.hash_b.hash_one(key))
    }

    /// False, without storing, when the map is full.
    fn put(&mut self, key: &[u8], offset: i64) -> bool {
        if self.entries.len() >= self.capacity {
            return false;
        }
        let h = self.hash(key);
        self.entries.insert(h, offset);
        true
    }

    fn get(&self, key: &[u8]) -> Option<i64> {
        self.entries.get(&self.hash(key)).copied()
    }
}

/// The keys are already uniform hashes: the map needs no second hashing.
#[derive(Default)]
struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = self.0.rotate_left(31) ^ v;
    }
}

/// Kafka's `CleanedTransactionMetadata`: which transactions the cleaner is inside of, so it
/// can drop aborted records and tell when a marker may go.
#[derive(Default)]
struct TxnTracker {
    ongoing_committed: HashSet<i64>,
    /// Producer id -> the aborted transaction, and the last offset of a batch of it still kept
    /// in the log (`None`: none seen in this pass, so its ABORT marker may go).
    ongoing_aborted: HashMap<i64, (AbortedTxn, Option<i64>)>,
    /// Aborted transactions not yet reached, earliest first.
    upcoming: BinaryHeap<Reverse<(i64, i64, i64, i64)>>,
    known: HashSet<(i64, i64)>,
}

impl TxnTracker {
    fn add_aborted(&mut self, txns: Vec<AbortedTxn>) {
        for t in txns {
            // A transaction spanning segments is listed once per segment.
            if self.known.insert((t.producer_id, t.first_offset)) {
                self.upcoming.push(Reverse((
                    t.first_offset,
                    t.producer_id,
                    t.last_offset,
                    t.last_stable_offset,
                )));
            }
        }
    }

    fn consume_up_to(&mut self, offset: i64) {
        while let Some(Reverse((first, pid, last, lso))) = self.upcoming.peek().copied() {
            if first > offset {
                break;
            }
            self.upcoming.pop();
            self.ongoing_aborted.entry(pid).or_insert((
                AbortedTxn {
                    producer_id: pid,
                    first_offset: first,
                    last_offset: last,
                    last_stable_offset: lso,
                },
                None,
            ));
        }
    }

    /// A control batch: whether it may be discarded, and the aborted transaction the cleaned
    /// segment's `.txnindex` must list when the marker stays.
    fn on_control_batch(
        &mut self,
        h: &BatchHeader,
        control: Option<i16>,
    ) -> (bool, Option<AbortedTxn>) {
        self.consume_up_to(h.last_offset());
        match control {
            // An empty control batch was cleaned before: nothing to keep.
            None => (true, None),
            Some(CONTROL_ABORT) => match self.ongoing_aborted.remove(&h.producer_id) {
                // Batches of the transaction remain: the marker must stay, and be indexed.
                Some((txn, Some(_))) => (false, Some(txn)),
                _ => (true, None),
            },
            Some(CONTROL_COMMIT) => (!self.ongoing_committed.remove(&h.producer_id), None),
            Some(_) => (false, None),
        }
    }

    /// A data batch: true when it belongs to an aborted transaction.
    fn on_batch(&mut self, h: &BatchHeader) -> bool {
        self.consume_up_to(h.last_offset());
        if !h.is_transactional() {
            return false;
        }
        match self.ongoing_aborted.get_mut(&h.producer_id) {
            Some((_, last)) => {
                *last = Some(h.last_offset());
                true
            }
            None => {
                self.ongoing_committed.insert(h.producer_id);
                false
            }
        }
    }
}

/// The type of a control batch's record (its key is version int16, type int16).
fn control_type(records: &[Record]) -> Option<i16> {
    let key = records.first()?.key.as_ref()?;
    (key.len() >= 4).then(|| i16::from_be_bytes([key[2], key[3]]))
}

/// What the filter made of one batch.
struct Kept {
    bytes: Option<Bytes>,
    records_read: u64,
    records_kept: u64,
    index_aborted: Option<AbortedTxn>,
}

/// Kafka's `RecordFilter` as the cleaner sets it up, with `MemoryRecords.filterTo`.
struct BatchFilter<'a> {
    now: i64,
    delete_retention_ms: i64,
    map: &'a OffsetMap,
    producers: &'a HashMap<i64, (Option<i64>, i16)>,
    txns: TxnTracker,
    /// The earliest delete horizon among the tombstones and markers kept so far.
    earliest_horizon: Option<i64>,
}

#[derive(PartialEq)]
enum BatchRetention {
    Delete,
    DeleteEmpty,
    RetainEmpty,
}

impl BatchFilter<'_> {
    fn filter(&mut self, entry: &Bytes) -> Result<Kept> {
        let (h, recs) = records::decode_batch(entry)?;
        let control = h.is_control().then(|| control_type(&recs)).flatten();
        let (can_discard, index_aborted) = if h.is_control() {
            self.txns.on_control_batch(&h, control)
        } else {
            (self.txns.on_batch(&h), None)
        };
        let horizon = (h.attributes & ATTR_DELETE_HORIZON != 0).then_some(h.base_timestamp);
        let discard_records = if h.is_control() {
            can_discard && horizon.is_some_and(|t| t <= self.now)
        } else {
            can_discard
        };
        let last_of_producer = h.producer_id >= 0
            && self.producers.get(&h.producer_id).is_some_and(
                |&(last_data, epoch)| match last_data {
                    Some(offset) => h.last_offset() == offset,
                    None => h.is_control() && h.producer_epoch == epoch,
                },
            );
        let retention = if last_of_producer {
            BatchRetention::RetainEmpty
        } else if discard_records {
            BatchRetention::Delete
        } else {
            BatchRetention::DeleteEmpty
        };
        let marker_for_empty_txn = can_discard && h.is_control();
        let mut kept = Kept {
            bytes: None,
            records_read: recs.len() as u64,
            records_kept: 0,
            index_aborted,
        };
        if retention == BatchRetention::Delete {
            kept.index_aborted = None;
            return Ok(kept);
        }
        let total = recs.len();
        let retained: Vec<Record> = recs
            .into_iter()
            .filter(|r| !discard_records && (h.is_control() || self.keep_record(horizon, r)))
            .collect();
        kept.records_kept = retained.len() as u64;
        if !retained.is_empty() {
            let tombstones = retained.iter().any(|r| r.value.is_none());
            let needs_horizon = (tombstones || marker_for_empty_txn) && horizon.is_none();
            let new_horizon = if needs_horizon {
                Some(self.now.saturating_add(self.delete_retention_ms))
            } else {
                horizon
            };
            if (tombstones || marker_for_empty_txn)
                && let Some(t) = new_horizon
            {
                self.earliest_horizon = Some(self.earliest_horizon.map_or(t, |e| e.min(t)));
            }
            kept.bytes = Some(if retained.len() == total && !needs_horizon {
                entry.clone()
            } else {
                Bytes::from(records::build_cleaned_batch(&h, &retained, new_horizon)?)
            });
        } else if retention == BatchRetention::RetainEmpty {
            kept.bytes = Some(Bytes::from(records::empty_batch(&h)));
        }
        Ok(kept)
    }

    /// Kafka's `Cleaner.shouldRetainRecord`.
    fn keep_record(&self, horizon: Option<i64>, r: &Record) -> bool {
        if r.offset > self.map.latest_offset {
            return true;
        }
        let Some(key) = &r.key else {
            // A keyless record in a compacted log (written before the topic was compacted).
            return false;
        };
        let latest_for_key = r.offset >= self.map.get(key).unwrap_or(-1);
        let keep_tombstone = horizon.is_none_or(|t| self.now < t);
        latest_for_key && (r.value.is_some() || keep_tombstone)
    }
}

/// Kafka's `Throttler`: keeps the cleaners' combined I/O under `io.max.bytes.per.second` by
/// sleeping (all threads share it, and it sleeps with its lock held, as Kafka's does).
struct Throttler {
    bytes_per_second: f64,
    period: Mutex<(Instant, f64)>,
}

impl Throttler {
    fn new(bytes_per_second: f64) -> Self {
        Throttler {
            bytes_per_second,
            period: Mutex::new((Instant::now(), 0.0)),
        }
    }

    fn maybe_throttle(&self, bytes: u64, shutdown: &AtomicBool) {
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
    fn offset_map_keeps_the_last_offset_and_refuses_when_full() {
        let mut m = OffsetMap::new(2, -1);
        assert!(m.put(b"a", 1));
        assert!(m.put(b"a", 5));
        assert!(m.put(b"b", 2));
        assert!(!m.put(b"c", 3), "full");
        assert_eq!(m.get(b"a"), Some(5));
        assert_eq!(m.get(b"b"), Some(2));
        assert_eq!(m.get(b"c"), None);
    }

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
