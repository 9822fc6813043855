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
//!
//! This file holds the pass itself (Kafka's `Cleaner`) and the cleaner threads; `manager`
//! picks the log and keeps the checkpoints, `offset_map`, `filter` and `throttler` are the
//! pass's parts.

mod filter;
mod manager;
mod offset_map;
mod swap;
mod throttler;

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use bytes::{Bytes, BytesMut};

use super::batch::{self, BatchHeader, LOG_OVERHEAD, MAGIC_OFFSET};
use super::error::{LogError, Result};
use super::handle::LogHandle;
use super::manager::{LogMap, TopicPartition};
use super::partition::PartitionLog;
use super::records;
use super::segment::{LogSegment, SegmentSettings, now_ms};
use super::txn_index::AbortedTxn;
use crate::config::{CleanerConfig, LogConfig};
use filter::{BatchFilter, TxnTracker, control_type};
use manager::{CleanerState, dirtiness};
use offset_map::{OFFSET_MAP_ENTRY_BYTES, OffsetMap};
use throttler::Throttler;

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

    fn check_done(&self, abort: &AtomicBool) -> std::result::Result<(), CleanError> {
        if abort.load(Ordering::Acquire) || self.shutdown.load(Ordering::Acquire) {
            Err(CleanError::Aborted)
        } else {
            Ok(())
        }
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
                file: s.file()?,
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
