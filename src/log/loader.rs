//! Opening a partition log: what Kafka's `LogLoader` does before the log serves anything.
//! Completing or rolling back an interrupted cleaner swap, dropping leftovers of a crash,
//! recovering the segments after the recovery point, and rebuilding producer state.
//!
//! Separate from `partition` because none of it runs once the log is open (except the
//! producer-state rebuild, which truncation repeats).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use super::aborted_txns::{aborted_txn_of_marker, marker_coordinator_epoch};
use super::checkpoint::{self, LEADER_EPOCH_FILE};
use super::error::{IoContext, LogError, Result};
use super::partition::PartitionLog;
use super::producer_state::{ProducerStateManager, snapshot};
use super::segment::{
    CLEANED_SUFFIX, EntryInfo, INDEX_SUFFIX, LOG_SUFFIX, LogSegment, OpenMode, SWAP_SUFFIX,
    SegmentSettings, TIME_INDEX_SUFFIX, TXN_INDEX_SUFFIX, now_ms, read_entry_info,
};
use crate::config::LogConfig;

/// What the log directory's checkpoint files say about this partition.
#[derive(Debug, Clone, Copy, Default)]
pub struct LoadParams {
    /// `.kafka_cleanshutdown` was present: skip recovery.
    pub clean_shutdown: bool,
    pub recovery_point: i64,
    pub log_start_offset: i64,
    pub high_watermark: i64,
    /// The log cleaner's first dirty offset from `cleaner-offset-checkpoint`, if listed.
    pub cleaner_offset: Option<i64>,
}

/// Splits `orders-0` / `my-topic-12` at the last `-`.
pub fn parse_partition_dir(name: &str) -> Option<(String, i32)> {
    let (topic, partition) = name.rsplit_once('-')?;
    let partition: i32 = partition.parse().ok()?;
    if topic.is_empty() || partition < 0 || name.ends_with("-delete") || name.ends_with("-future") {
        return None;
    }
    Some((topic.to_string(), partition))
}

/// The base offset a segment file's name starts with (`00000000000000000042.index.swap` -> 42).
fn segment_file_base(file_name: &str) -> Option<i64> {
    let prefix = file_name.get(..21)?;
    let digits = prefix.strip_suffix('.')?;
    digits
        .bytes()
        .all(|b| b.is_ascii_digit())
        .then(|| digits.parse().ok())
        .flatten()
}

/// Finishes or rolls back what a crash interrupted in the log cleaner's swap, by Kafka's rules
/// (`LogLoader.removeTempFilesAndCollectSwapFiles` and `load`): `.cleaned` files are incomplete
/// and go, together with any `.swap` at or after the lowest of them (a swap still being
/// prepared); the remaining `.swap` files are complete, so the segments they replace (those
/// whose base offset lies in the swapped offset range) are deleted and the `.swap` suffix drops.
/// `names` is the directory's listing; returns whether anything in the directory changed (so
/// that the listing must be read again).
fn complete_interrupted_swaps(dir: &Path, names: &[String]) -> Result<bool> {
    let mut swaps = Vec::new();
    let mut min_cleaned = i64::MAX;
    let mut changed = false;
    for name in names {
        let path = dir.join(name);
        if name.ends_with(&format!(".{CLEANED_SUFFIX}")) {
            if let Some(base) = segment_file_base(name) {
                min_cleaned = min_cleaned.min(base);
            }
            tracing::info!(path = %path.display(), "deleting incomplete cleaned segment file");
            fs::remove_file(&path).at(&path)?;
            changed = true;
        } else if let Some(real) = name.strip_suffix(&format!(".{SWAP_SUFFIX}")) {
            swaps.push((path, real.to_string()));
        }
    }
    let mut swapped_from = i64::MAX;
    let mut swapped_to = i64::MIN;
    let mut complete = Vec::new();
    for (path, real) in swaps {
        let Some(base) = segment_file_base(&real) else {
            continue;
        };
        if base >= min_cleaned {
            tracing::info!(path = %path.display(), "deleting swap file of an unfinished swap");
            fs::remove_file(&path).at(&path)?;
            changed = true;
            continue;
        }
        if real.ends_with(&format!(".{LOG_SUFFIX}")) {
            let file = fs::File::open(&path).at(&path)?;
            let size = file.metadata().at(&path)?.len();
            let mut pos = 0;
            let mut next = base;
            while let Some(e) = read_entry_info(&file, pos, size)? {
                next = e.last_offset + 1;
                pos += e.size;
            }
            swapped_from = swapped_from.min(base);
            // An empty cleaned segment still replaces the files at its own base.
            swapped_to = swapped_to.max(next.max(base + 1));
        }
        complete.push((path, real));
    }
    if complete.is_empty() {
        return Ok(changed);
    }
    let segment_suffixes = [
        LOG_SUFFIX,
        INDEX_SUFFIX,
        TIME_INDEX_SUFFIX,
        TXN_INDEX_SUFFIX,
    ];
    for entry in fs::read_dir(dir).at(dir)? {
        let entry = entry.at(dir)?;
        let name = entry.file_name().to_string_lossy().to_string();
        let is_segment_file = segment_suffixes
            .iter()
            .any(|suffix| name.ends_with(&format!(".{suffix}")));
        if is_segment_file
            && let Some(base) = segment_file_base(&name)
            && (swapped_from..swapped_to).contains(&base)
        {
            tracing::info!(file = %name, "deleting segment file replaced by an interrupted swap");
            fs::remove_file(entry.path()).at(&entry.path())?;
        }
    }
    for (path, real) in complete {
        tracing::info!(path = %path.display(), "completing interrupted swap of a cleaned segment");
        let to = dir.join(real);
        fs::rename(&path, &to).at(&path)?;
    }
    checkpoint::sync_dir(dir)?;
    Ok(true)
}

/// The names of the entries in `dir`.
fn list_dir(dir: &Path) -> Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in fs::read_dir(dir).at(dir)? {
        names.push(entry.at(dir)?.file_name().to_string_lossy().into_owned());
    }
    Ok(names)
}

fn parse_base_offset(file_name: &str, suffix: &str) -> Option<i64> {
    let stem = file_name.strip_suffix(suffix)?.strip_suffix('.')?;
    (stem.len() == 20 && stem.bytes().all(|b| b.is_ascii_digit()))
        .then(|| stem.parse().ok())
        .flatten()
}
impl PartitionLog {
    /// Opens (or creates) the log in `dir`, recovering it unless the shutdown was clean.
    pub fn open(dir: &Path, config: LogConfig, params: LoadParams) -> Result<PartitionLog> {
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        let tp = parse_partition_dir(&name).ok_or_else(|| LogError::BadLogDir {
            path: dir.to_path_buf(),
            reason: "not a <topic>-<partition> directory".into(),
        })?;
        Self::open_for(dir, tp, config, params)
    }

    /// [`PartitionLog::open`] for a directory whose name does not say the partition (a log
    /// being moved to another directory is `<topic>-<partition>.<id>-future`).
    pub fn open_for(
        dir: &Path,
        (topic, partition): (String, i32),
        config: LogConfig,
        params: LoadParams,
    ) -> Result<PartitionLog> {
        fs::create_dir_all(dir).at(dir)?;
        // The directory is read once for everything below (swaps, segments, orphans, producer
        // snapshots): reading it three times per log was a good part of loading 10,000 logs.
        // Only a crash's leftovers of a cleaner swap change it before it is used, and then it
        // is read again.
        let mut names = list_dir(dir)?;
        if complete_interrupted_swaps(dir, &names)? {
            names = list_dir(dir)?;
        }
        let settings = SegmentSettings {
            index_interval_bytes: config.index_interval_bytes,
            max_index_bytes: config.segment_index_bytes,
        };
        let mut bases = Vec::new();
        let mut orphans = Vec::new();
        let mut snapshots = Vec::new();
        for file_name in &names {
            let path = dir.join(file_name);
            if file_name.ends_with(".deleted") || file_name.ends_with(".tmp") {
                // Leftovers of a deletion or a checkpoint write that a crash interrupted.
                fs::remove_file(&path).at(&path)?;
            } else if let Some(offset) = snapshot::offset_of(file_name) {
                snapshots.push((offset, path));
            } else if let Some(base) = parse_base_offset(file_name, LOG_SUFFIX) {
                bases.push(base);
            } else if let Some(base) = parse_base_offset(file_name, "index")
                .or_else(|| parse_base_offset(file_name, "timeindex"))
                .or_else(|| parse_base_offset(file_name, "txnindex"))
            {
                orphans.push((base, path));
            }
        }
        bases.sort_unstable();
        bases.dedup();
        for (base, path) in orphans {
            if bases.binary_search(&base).is_err() {
                tracing::info!(path = %path.display(), "deleting index without a log segment");
                fs::remove_file(&path).at(&path)?;
            }
        }

        let epochs_on_disk = match checkpoint::read_leader_epochs(&dir.join(LEADER_EPOCH_FILE)) {
            Ok(epochs) => epochs,
            Err(e) => {
                tracing::warn!(error = %e, "unreadable leader epoch checkpoint, rebuilding it");
                None
            }
        };
        let mut log = PartitionLog {
            dir: dir.to_path_buf(),
            topic,
            partition,
            config,
            segments: BTreeMap::new(),
            log_start_offset: params.log_start_offset.max(0),
            log_end_offset: 0,
            high_watermark: 0,
            recovery_point: params.recovery_point,
            leader_epochs: epochs_on_disk.clone().unwrap_or_default(),
            epochs_on_disk,
            unflushed_messages: 0,
            last_flush_ms: now_ms(),
            pending_deletes: Vec::new(),
            producers: ProducerStateManager::default(),
            cleaner_offset: params.cleaner_offset,
            layout_epoch: 0,
            fully_flushed_at: None,
        };

        let last = bases.last().copied();
        for (i, &base) in bases.iter().enumerate() {
            let mode = match bases.get(i + 1) {
                None => OpenMode::Active,
                // Wholly below the recovery point: not recovered, so its indexes wait until a
                // read needs them.
                Some(&next) if params.clean_shutdown || next <= params.recovery_point => {
                    OpenMode::ClosedLazy { next_base: next }
                }
                Some(_) => OpenMode::Closed,
            };
            debug_assert_eq!(mode == OpenMode::Active, Some(base) == last);
            let (mut seg, needs_rebuild) = LogSegment::open_as(dir, base, settings, mode)?;
            if needs_rebuild {
                let dropped = seg.recover(|_| {})?;
                if dropped > 0 {
                    tracing::warn!(segment = %seg.log_path().display(), dropped, "truncated invalid bytes while rebuilding indexes");
                }
            }
            log.segments.insert(base, seg);
        }
        if !params.clean_shutdown {
            log.recover_from(params.recovery_point)?;
        }
        if log.segments.is_empty() {
            let base = log.log_start_offset;
            let (seg, _) = LogSegment::open(dir, base, settings, true)?;
            log.segments.insert(base, seg);
        }
        log.log_end_offset = log.active().next_offset()?;
        if log.log_end_offset < params.log_start_offset {
            // The checkpointed start is past everything on disk: the files were removed by hand.
            tracing::warn!(dir = %dir.display(), "log end offset below the checkpointed log start offset; starting empty");
            log.truncate_fully_and_start_at(params.log_start_offset)?;
            // It removed every producer snapshot.
            snapshots.clear();
        }
        let first_base = log.segments.keys().next().copied().unwrap_or(0);
        log.log_start_offset = log.log_start_offset.max(first_base);
        log.high_watermark = params
            .high_watermark
            .clamp(log.log_start_offset, log.log_end_offset);
        log.recovery_point = log.recovery_point.min(log.log_end_offset);
        if params.clean_shutdown {
            log.recovery_point = log.log_end_offset;
            log.fully_flushed_at = Some((log.log_end_offset, log.layout_epoch));
        }
        let leo = log.log_end_offset;
        // Epochs starting at or past the log end (a leader's epoch start with nothing written
        // yet: every idle partition has one) are dropped in memory only. Rewriting and fsyncing
        // the checkpoint of each such log made a restart with 10,000 idle partitions take
        // 10,000 fsyncs; Kafka 3.9 defers this flush too (`truncateFromEndAsyncFlush`). The
        // file is rewritten from memory at the next epoch change, and until then each load
        // drops the same entries again, so what it holds beyond memory is never used.
        log.leader_epochs.retain(|&(_, off)| off < leo);
        snapshots.sort_unstable();
        log.rebuild_producer_state_from(snapshots)?;
        Ok(log)
    }

    /// Loads producer state from the newest usable `.snapshot` at or below the log end and
    /// replays the batch headers after it, as Kafka does; without a snapshot the whole log is
    /// replayed. Snapshots past the log end (left by a truncation or a torn tail) are removed.
    pub(super) fn rebuild_producer_state(&mut self) -> Result<()> {
        let snapshots = snapshot::list(&self.dir)?;
        self.rebuild_producer_state_from(snapshots)
    }

    /// [`Self::rebuild_producer_state`] with the directory's snapshot files given, oldest
    /// first.
    fn rebuild_producer_state_from(&mut self, snapshots: Vec<(i64, PathBuf)>) -> Result<()> {
        let mut from = i64::MIN;
        self.producers.clear();
        for (offset, path) in snapshots.into_iter().rev() {
            if offset > self.log_end_offset {
                std::fs::remove_file(&path).at(&path)?;
                continue;
            }
            if from != i64::MIN {
                continue;
            }
            match snapshot::read(&path) {
                Ok(state) => {
                    self.producers = state;
                    from = offset;
                }
                Err(e) => tracing::warn!(error = %e, "ignoring unreadable producer snapshot"),
            }
        }
        let start_base = self
            .segments
            .range(..=from.max(0))
            .next_back()
            .map_or(i64::MIN, |(b, _)| *b);
        for seg in self.segments.range_mut(start_base..).map(|(_, s)| s) {
            let mut pos = if from > seg.base_offset {
                seg.offset_index.lookup(from) as u64
            } else {
                0
            };
            while let Some(e) = seg.entry_at(pos)? {
                if let Some(h) = e.header
                    && h.producer_id >= 0
                    && h.base_offset >= from
                {
                    // A crash between a marker's append and its `.txnindex` entry leaves the
                    // ABORT unlisted; it is listed again here, as Kafka's recovery does, or
                    // read_committed readers would take the aborted records as committed.
                    if h.is_control() {
                        let marker = seg.read_bytes(e.position, e.size as usize)?;
                        if let Some(epoch) = marker_coordinator_epoch(&marker) {
                            self.producers.set_coordinator_epoch(h.producer_id, epoch);
                        }
                        let listed = seg
                            .txn_index
                            .entries()
                            .iter()
                            .any(|t| t.last_offset == h.last_offset());
                        if !listed
                            && let Some(txn) = aborted_txn_of_marker(&self.producers, &h, &marker)?
                        {
                            tracing::info!(topic = %self.topic, partition = self.partition, marker = h.base_offset, "listing an aborted transaction the index lacked");
                            seg.txn_index.append(txn)?;
                        }
                    }
                    self.producers.update(&h);
                }
                pos += e.size;
            }
        }
        Ok(())
    }

    /// Validates every entry from the segment holding `recovery_point` on, rebuilding indexes
    /// and the leader epoch cache; a bad entry cuts its segment there and drops later segments.
    pub(super) fn recover_from(&mut self, recovery_point: i64) -> Result<()> {
        let start = self
            .segments
            .range(..=recovery_point)
            .next_back()
            .map_or(i64::MIN, |(b, _)| *b);
        let bases: Vec<i64> = self.segments.range(start..).map(|(b, _)| *b).collect();
        let before = self.leader_epochs.clone();
        let mut dropped_segments = false;
        let mut epochs = std::mem::take(&mut self.leader_epochs);
        epochs.retain(|&(_, off)| off < start.max(0));
        for (i, base) in bases.iter().enumerate() {
            let Some(seg) = self.segments.get_mut(base) else {
                continue;
            };
            let dropped = seg.recover(|e: &EntryInfo| {
                if e.partition_leader_epoch >= 0
                    && epochs
                        .last()
                        .is_none_or(|&(ep, _)| e.partition_leader_epoch > ep)
                {
                    epochs.push((e.partition_leader_epoch, e.base_offset));
                }
            })?;
            if dropped > 0 {
                tracing::warn!(segment = %seg.log_path().display(), dropped_bytes = dropped, "recovery truncated a corrupt or torn tail");
                for later in &bases[i + 1..] {
                    if let Some(s) = self.segments.remove(later) {
                        tracing::warn!(segment = %s.log_path().display(), "deleting segment after a truncated one");
                        s.delete_files()?;
                        dropped_segments = true;
                    }
                }
                break;
            }
        }
        // Later segments were deleted: the last remaining one is now the active one. (Without
        // that the last one was opened active already.)
        if dropped_segments && let Some((_, seg)) = self.segments.iter_mut().next_back() {
            seg.reopen_active()?;
        }
        // Entries at or past the log end (an idle leader's epoch start, in every idle log) are
        // not rebuilt from batches; they are dropped in memory only, as a clean load drops them
        // (see `open_for`). Comparing with them would rewrite and fsync the checkpoint of every
        // idle log a crash left behind: with 10,000 logs, minutes of recovery. Kafka's recovery
        // only ever adds epochs and flushes its truncation asynchronously.
        let leo = match self.segments.values().next_back() {
            Some(seg) => seg.next_offset()?,
            None => 0,
        };
        self.leader_epochs = epochs;
        if self
            .leader_epochs
            .iter()
            .ne(before.iter().filter(|&&(_, off)| off < leo))
        {
            self.write_epochs()?;
        }
        Ok(())
    }
}
