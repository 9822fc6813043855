//! `PartitionLog`: the segments of one `<topic>-<partition>` directory and everything done to
//! them as a whole: append, read, roll, retention, truncation, recovery.
//!
//! All methods are synchronous and do file I/O; the broker calls them from blocking threads
//! (see `LogManager`), never from the async runtime.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use bytes::Bytes;

use super::batch::{self, BatchHeader, LOG_OVERHEAD, MAGIC_OFFSET};
use super::checkpoint::{self, LEADER_EPOCH_FILE};
use super::error::{IoContext, LogError, Result};
use super::producer_state::{ProducerStateManager, SequenceCheck, snapshot};
use super::records;
use super::segment::{
    CLEANED_SUFFIX, EntryInfo, INDEX_SUFFIX, LOG_SUFFIX, LogSegment, SWAP_SUFFIX, SegmentSettings,
    TIME_INDEX_SUFFIX, TXN_INDEX_SUFFIX, now_ms, read_entry_info,
};
use super::txn_index::AbortedTxn;
use super::validator;
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

/// The outcome of an append, what Produce answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendInfo {
    pub base_offset: i64,
    pub last_offset: i64,
    pub max_timestamp: i64,
    /// The broker's time when the topic uses LogAppendTime, else -1.
    pub log_append_time: i64,
    pub log_start_offset: i64,
    pub records: i32,
    pub bytes: usize,
}

/// Bytes for a fetch: whole entries, starting with the one holding the requested offset.
#[derive(Debug, Clone)]
pub struct ReadResult {
    pub records: Bytes,
    /// First offset of the first entry returned (may be below the requested offset).
    pub first_offset: Option<i64>,
    pub log_start_offset: i64,
    pub log_end_offset: i64,
    pub high_watermark: i64,
    /// Where read_committed readers stop (Kafka's last stable offset).
    pub last_stable_offset: i64,
}

pub struct PartitionLog {
    dir: PathBuf,
    topic: String,
    partition: i32,
    config: LogConfig,
    segments: BTreeMap<i64, LogSegment>,
    log_start_offset: i64,
    log_end_offset: i64,
    high_watermark: i64,
    recovery_point: i64,
    leader_epochs: Vec<(i32, i64)>,
    unflushed_messages: u64,
    last_flush_ms: i64,
    /// Segments renamed to `.deleted`, removed for good after `file.delete.delay.ms`.
    pending_deletes: Vec<(i64, LogSegment)>,
    producers: ProducerStateManager,
    /// Where the log cleaner's dirty section starts (`cleaner-offset-checkpoint`); `None` for a
    /// log never cleaned.
    cleaner_offset: Option<i64>,
    /// Bumped whenever segments are truncated or rewritten in place, so the cleaner, which reads
    /// segments without holding the log, can tell that what it read is no longer the log.
    layout_epoch: u64,
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
fn complete_interrupted_swaps(dir: &Path) -> Result<()> {
    let mut swaps = Vec::new();
    let mut min_cleaned = i64::MAX;
    for entry in fs::read_dir(dir).at(dir)? {
        let entry = entry.at(dir)?;
        let name = entry.file_name().to_string_lossy().to_string();
        let path = entry.path();
        if name.ends_with(&format!(".{CLEANED_SUFFIX}")) {
            if let Some(base) = segment_file_base(&name) {
                min_cleaned = min_cleaned.min(base);
            }
            tracing::info!(path = %path.display(), "deleting incomplete cleaned segment file");
            fs::remove_file(&path).at(&path)?;
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
        return Ok(());
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
    checkpoint::sync_dir(dir)
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
        let (topic, partition) = parse_partition_dir(&name).ok_or_else(|| LogError::BadLogDir {
            path: dir.to_path_buf(),
            reason: "not a <topic>-<partition> directory".into(),
        })?;
        fs::create_dir_all(dir).at(dir)?;
        complete_interrupted_swaps(dir)?;
        let settings = SegmentSettings {
            index_interval_bytes: config.index_interval_bytes,
            max_index_bytes: config.segment_index_bytes,
        };
        let mut bases = Vec::new();
        let mut orphans = Vec::new();
        for entry in fs::read_dir(dir).at(dir)? {
            let entry = entry.at(dir)?;
            let file_name = entry.file_name().to_string_lossy().to_string();
            let path = entry.path();
            if file_name.ends_with(".deleted") || file_name.ends_with(".tmp") {
                // Leftovers of a deletion or a checkpoint write that a crash interrupted.
                fs::remove_file(&path).at(&path)?;
            } else if let Some(base) = parse_base_offset(&file_name, LOG_SUFFIX) {
                bases.push(base);
            } else if let Some(base) = parse_base_offset(&file_name, "index")
                .or_else(|| parse_base_offset(&file_name, "timeindex"))
                .or_else(|| parse_base_offset(&file_name, "txnindex"))
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
            leader_epochs: checkpoint::read_leader_epochs(&dir.join(LEADER_EPOCH_FILE))
                .unwrap_or_else(|e| {
                    tracing::warn!(error = %e, "unreadable leader epoch checkpoint, rebuilding it");
                    Vec::new()
                }),
            unflushed_messages: 0,
            last_flush_ms: now_ms(),
            pending_deletes: Vec::new(),
            producers: ProducerStateManager::default(),
            cleaner_offset: params.cleaner_offset,
            layout_epoch: 0,
        };

        let last = bases.last().copied();
        for &base in &bases {
            let (mut seg, needs_rebuild) =
                LogSegment::open(dir, base, settings, Some(base) == last)?;
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
        }
        let first_base = log.segments.keys().next().copied().unwrap_or(0);
        log.log_start_offset = log.log_start_offset.max(first_base);
        log.high_watermark = params
            .high_watermark
            .clamp(log.log_start_offset, log.log_end_offset);
        log.recovery_point = log.recovery_point.min(log.log_end_offset);
        if params.clean_shutdown {
            log.recovery_point = log.log_end_offset;
        }
        let leo = log.log_end_offset;
        log.truncate_epochs_from_end(leo)?;
        log.rebuild_producer_state()?;
        Ok(log)
    }

    /// Loads producer state from the newest usable `.snapshot` at or below the log end and
    /// replays the batch headers after it, as Kafka does; without a snapshot the whole log is
    /// replayed. Snapshots past the log end (left by a truncation or a torn tail) are removed.
    fn rebuild_producer_state(&mut self) -> Result<()> {
        let mut from = i64::MIN;
        self.producers.clear();
        for (offset, path) in snapshot::list(&self.dir)?.into_iter().rev() {
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

    /// Writes the producer state as of the log end (at roll and clean shutdown).
    fn take_producer_snapshot(&self) -> Result<()> {
        snapshot::write(&self.dir, self.log_end_offset, &self.producers)
    }

    pub fn producer_state(&self) -> &ProducerStateManager {
        &self.producers
    }

    /// Validates every entry from the segment holding `recovery_point` on, rebuilding indexes
    /// and the leader epoch cache; a bad entry cuts its segment there and drops later segments.
    fn recover_from(&mut self, recovery_point: i64) -> Result<()> {
        let start = self
            .segments
            .range(..=recovery_point)
            .next_back()
            .map_or(i64::MIN, |(b, _)| *b);
        let bases: Vec<i64> = self.segments.range(start..).map(|(b, _)| *b).collect();
        let before = self.leader_epochs.clone();
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
                    }
                }
                break;
            }
        }
        // Later segments may have been deleted; the last remaining one is now the active one.
        if let Some((_, seg)) = self.segments.iter_mut().next_back() {
            seg.reopen_active()?;
        }
        self.leader_epochs = epochs;
        if self.leader_epochs != before {
            self.write_epochs()?;
        }
        Ok(())
    }

    pub fn topic(&self) -> &str {
        &self.topic
    }
    pub fn partition(&self) -> i32 {
        self.partition
    }
    pub fn dir(&self) -> &Path {
        &self.dir
    }
    pub fn config(&self) -> &LogConfig {
        &self.config
    }
    pub fn set_config(&mut self, config: LogConfig) {
        self.config = config;
    }
    pub fn log_start_offset(&self) -> i64 {
        self.log_start_offset
    }
    pub fn log_end_offset(&self) -> i64 {
        self.log_end_offset
    }
    pub fn high_watermark(&self) -> i64 {
        self.high_watermark
    }
    pub fn recovery_point(&self) -> i64 {
        self.recovery_point
    }
    pub fn leader_epochs(&self) -> &[(i32, i64)] {
        &self.leader_epochs
    }
    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }
    pub fn segments(&self) -> impl Iterator<Item = &LogSegment> {
        self.segments.values()
    }
    pub fn size_bytes(&self) -> u64 {
        self.segments.values().map(|s| s.size()).sum()
    }

    /// The log cleaner's first dirty offset, if this log was ever cleaned.
    pub fn cleaner_offset(&self) -> Option<i64> {
        self.cleaner_offset
    }
    pub fn set_cleaner_offset(&mut self, offset: i64) {
        self.cleaner_offset = Some(offset);
    }
    pub fn layout_epoch(&self) -> u64 {
        self.layout_epoch
    }

    /// Below this offset no transaction is open and every offset is committed (Kafka's
    /// `lastStableOffset`): the high watermark or the first open transaction, if earlier.
    pub fn last_stable_offset(&self) -> i64 {
        self.producers
            .first_unstable_offset()
            .map_or(self.high_watermark, |o| o.min(self.high_watermark))
    }

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

    /// Moves the high watermark (replication decides where); clamped to the log.
    pub fn set_high_watermark(&mut self, hw: i64) {
        self.high_watermark = hw.clamp(self.log_start_offset, self.log_end_offset);
    }

    fn active(&self) -> &LogSegment {
        self.segments
            .values()
            .next_back()
            .expect("a partition log always has an active segment")
    }

    fn settings(&self) -> SegmentSettings {
        SegmentSettings {
            index_interval_bytes: self.config.index_interval_bytes,
            max_index_bytes: self.config.segment_index_bytes,
        }
    }

    /// Appends one producer batch as the partition leader: validates it as Kafka's
    /// `LogValidator` does, assigns offsets from the log end, stamps `leader_epoch` (and
    /// LogAppendTime if configured). Legacy magic 0/1 message sets are converted to one
    /// magic-2 batch first. Nothing is written unless the whole input is valid.
    pub fn append_as_leader(&mut self, records: &Bytes, leader_epoch: i32) -> Result<AppendInfo> {
        let converted;
        let records: &[u8] = match records.get(MAGIC_OFFSET) {
            Some(0) | Some(1) => {
                converted = records::upconvert_legacy(records)?;
                &converted
            }
            Some(2) => records,
            Some(m) => {
                return Err(LogError::CorruptMessage(format!(
                    "unknown magic {}",
                    *m as i8
                )));
            }
            None => {
                return Err(LogError::CorruptMessage(format!(
                    "{} bytes are not a record batch",
                    records.len()
                )));
            }
        };
        let header = BatchHeader::parse(records)?;
        if header.batch_length < 0 || records.len() < header.size() {
            return Err(LogError::CorruptMessage(format!(
                "batch length {} exceeds the {} bytes sent",
                header.batch_length,
                records.len()
            )));
        }
        if records.len() > header.size() {
            return Err(LogError::InvalidRecord(
                "a produce request may carry only one magic-2 batch per partition".into(),
            ));
        }
        if header.size() > self.config.max_message_bytes {
            return Err(LogError::MessageTooLarge {
                size: header.size(),
                max: self.config.max_message_bytes,
            });
        }
        let header = batch::validate_stored(records)?;
        if header.records_count < 1 || header.last_offset_delta + 1 != header.records_count {
            return Err(LogError::InvalidRecord(format!(
                "record count {} does not match lastOffsetDelta {}",
                header.records_count, header.last_offset_delta
            )));
        }
        if header.is_control() {
            return Err(LogError::InvalidRecord(
                "clients may not write control batches".into(),
            ));
        }
        if header.compression() > 4 {
            return Err(LogError::UnsupportedCompression(header.compression()));
        }
        if header.compression() == 0 {
            batch::validate_uncompressed_records(records, &header)?;
        }
        if self.config.cleanup_compact && records::has_keyless_record(records, &header)? {
            // Compaction keeps the last record per key; a record without one could never be.
            return Err(LogError::InvalidRecord(format!(
                "Compacted topic cannot accept message without key in topic partition {}-{}",
                self.topic, self.partition
            )));
        }
        let now = now_ms();
        let rebuilt = validator::validate_records(records, &header, &self.config, now)?;
        let (records, header) = match &rebuilt {
            Some(b) => {
                // Kafka checks the size again when the broker changed the batch.
                if b.len() > self.config.max_message_bytes {
                    return Err(LogError::MessageTooLarge {
                        size: b.len(),
                        max: self.config.max_message_bytes,
                    });
                }
                (&b[..], batch::validate_stored(b)?)
            }
            None => (records, header),
        };

        if let SequenceCheck::Duplicate(dup) = self.producers.check(&header)? {
            // A retry of a batch already in the log: acknowledge it where it went.
            return Ok(AppendInfo {
                base_offset: dup.first_offset,
                last_offset: dup.last_offset,
                max_timestamp: dup.timestamp,
                log_append_time: -1,
                log_start_offset: self.log_start_offset,
                records: 0,
                bytes: 0,
            });
        }

        let base_offset = self.log_end_offset;
        let append_time = self.config.log_append_time.then_some(now);
        let stamped = batch::stamp_header(records, base_offset, leader_epoch, append_time);
        let max_timestamp = append_time.unwrap_or(header.max_timestamp);
        let last_offset = base_offset + header.last_offset_delta as i64;
        self.append_parts(
            &[&stamped, &records[batch::BATCH_HEADER_LEN..]],
            base_offset,
            last_offset,
            max_timestamp,
            now,
        )?;
        self.assign_epoch(leader_epoch, base_offset)?;
        self.producers.update(&BatchHeader {
            base_offset,
            max_timestamp,
            ..header
        });
        self.after_append(header.records_count as u64, now)?;
        Ok(AppendInfo {
            base_offset,
            last_offset,
            max_timestamp,
            log_append_time: append_time.unwrap_or(-1),
            log_start_offset: self.log_start_offset,
            records: header.records_count,
            bytes: records.len(),
        })
    }

    /// Writes a transaction marker (COMMIT or ABORT, as the transaction coordinator asks with
    /// WriteTxnMarkers) as the leader: a control batch of one record, key (version 0, type) and
    /// value (version 0, coordinator epoch), as Kafka's `EndTransactionMarker` writes it. A
    /// marker from an epoch older than the producer's current one is refused, as Kafka does.
    pub fn append_marker_as_leader(
        &mut self,
        producer_id: i64,
        producer_epoch: i16,
        commit: bool,
        coordinator_epoch: i32,
        leader_epoch: i32,
    ) -> Result<AppendInfo> {
        if let Some(e) = self.producers.get(producer_id) {
            if producer_epoch < e.epoch {
                return Err(LogError::InvalidProducerEpoch(format!(
                    "marker for producer {producer_id} with epoch {producer_epoch}, older than the current epoch {}",
                    e.epoch
                )));
            }
            if let Some(known) = e.coordinator_epoch
                && coordinator_epoch < known
            {
                return Err(LogError::TransactionCoordinatorFenced(format!(
                    "marker for producer {producer_id} from coordinator epoch {coordinator_epoch}, older than {known}"
                )));
            }
        }
        let now = now_ms();
        let base_offset = self.log_end_offset;
        let mut value = vec![0u8, 0];
        value.extend_from_slice(&coordinator_epoch.to_be_bytes());
        let marker = records::BatchBuilder {
            base_offset,
            partition_leader_epoch: leader_epoch,
            producer_id,
            producer_epoch,
            transactional: true,
            control: true,
            records: vec![records::NewRecord {
                timestamp: now,
                key: Some(vec![0, 0, 0, u8::from(commit)]),
                value: Some(value),
                headers: Vec::new(),
            }],
            ..records::BatchBuilder::default()
        }
        .build()?;
        let header = batch::validate_stored(&marker)?;
        self.append_parts(&[&marker], base_offset, base_offset, now, now)?;
        self.assign_epoch(leader_epoch, base_offset)?;
        self.complete_transaction(&header, &marker)?;
        self.producers.update(&header);
        self.after_append(1, now)?;
        Ok(AppendInfo {
            base_offset,
            last_offset: base_offset,
            max_timestamp: now,
            log_append_time: -1,
            log_start_offset: self.log_start_offset,
            records: 1,
            bytes: marker.len(),
        })
    }

    /// The aborted transactions a read_committed fetch from `from` up to `to` must be told of
    /// (Kafka's `collectAbortedTransactions`): those listed in the `.txnindex` of the segments
    /// from the one holding `from` on, that end at or after `from` and began before `to`.
    pub fn aborted_transactions(&self, from: i64, to: i64) -> Vec<AbortedTxn> {
        let start_base = self
            .segments
            .range(..=from)
            .next_back()
            .map_or(i64::MIN, |(b, _)| *b);
        self.segments
            .range(start_base..)
            .flat_map(|(_, s)| s.txn_index.entries().iter())
            .filter(|t| t.last_offset >= from && t.first_offset < to)
            .copied()
            .collect()
    }

    /// Appends batches that already carry their offsets (a follower copying its leader): each is
    /// checked, and must start at or after the log end offset.
    pub fn append_as_follower(&mut self, records: &Bytes) -> Result<Option<AppendInfo>> {
        let mut pos = 0usize;
        let mut headers = Vec::new();
        let mut expected = self.log_end_offset;
        while pos < records.len() {
            let size = batch::entry_size(&records[pos..])
                .filter(|&s| {
                    s >= batch::BATCH_HEADER_LEN as i64 && pos as i64 + s <= records.len() as i64
                })
                .ok_or_else(|| {
                    LogError::CorruptMessage("truncated batch in replicated data".into())
                })?;
            let b = &records[pos..pos + size as usize];
            let h = batch::validate_stored(b)?;
            if h.base_offset < expected {
                return Err(LogError::InvalidRecord(format!(
                    "replicated batch at offset {} is below the expected offset {expected}",
                    h.base_offset
                )));
            }
            expected = h.next_offset();
            headers.push((pos, h));
            pos += size as usize;
        }
        let Some(first) = headers.first().map(|(_, h)| *h) else {
            return Ok(None);
        };
        let now = now_ms();
        let mut count = 0u64;
        let mut max_ts = -1;
        for (pos, h) in &headers {
            let b = &records[*pos..*pos + h.size()];
            self.append_parts(&[b], h.base_offset, h.last_offset(), h.max_timestamp, now)?;
            self.assign_epoch(h.partition_leader_epoch, h.base_offset)?;
            if h.is_control() {
                self.complete_transaction(h, b)?;
            }
            self.producers.update(h);
            count += h.records_count.max(0) as u64;
            max_ts = max_ts.max(h.max_timestamp);
        }
        self.after_append(count, now)?;
        let last = headers.last().map_or(first, |(_, h)| *h);
        Ok(Some(AppendInfo {
            base_offset: first.base_offset,
            last_offset: last.last_offset(),
            max_timestamp: max_ts,
            log_append_time: -1,
            log_start_offset: self.log_start_offset,
            records: count as i32,
            bytes: records.len(),
        }))
    }

    /// A transaction marker was appended: an ABORT is listed in the active segment's
    /// `.txnindex` with the transaction's first offset and the last stable offset after it, as
    /// Kafka's `completeTxn` does (read_committed fetches and the cleaner read it there).
    fn complete_transaction(&mut self, h: &BatchHeader, marker: &[u8]) -> Result<()> {
        if let Some(epoch) = marker_coordinator_epoch(marker) {
            self.producers.set_coordinator_epoch(h.producer_id, epoch);
        }
        match aborted_txn_of_marker(&self.producers, h, marker)? {
            Some(txn) => self.active_mut().txn_index.append(txn),
            None => Ok(()),
        }
    }

    fn append_parts(
        &mut self,
        parts: &[&[u8]],
        base_offset: i64,
        last_offset: i64,
        max_timestamp: i64,
        now: i64,
    ) -> Result<()> {
        let size: usize = parts.iter().map(|p| p.len()).sum();
        self.maybe_roll(size, base_offset, last_offset, max_timestamp, now)?;
        let seg = self.active_mut();
        seg.append(parts, last_offset, max_timestamp, last_offset)?;
        self.log_end_offset = last_offset + 1;
        Ok(())
    }

    fn active_mut(&mut self) -> &mut LogSegment {
        self.segments
            .values_mut()
            .next_back()
            .expect("a partition log always has an active segment")
    }

    fn after_append(&mut self, messages: u64, _now: i64) -> Result<()> {
        // The flush policy is applied by `LogHandle`, which can share one fsync among appends.
        self.unflushed_messages += messages;
        Ok(())
    }

    /// Duplicated handles of the segment files that may hold unflushed data, so that an fsync
    /// can run without holding the log.
    pub fn unflushed_files(&self) -> Result<Vec<(PathBuf, fs::File)>> {
        let from = self
            .segments
            .range(..=self.recovery_point)
            .next_back()
            .map_or(i64::MIN, |(b, _)| *b);
        self.segments
            .range(from..)
            .map(|(_, s)| {
                Ok((
                    s.log_path().to_path_buf(),
                    s.file().try_clone().at(s.log_path())?,
                ))
            })
            .collect()
    }

    /// Records that everything below `offset` is durable (after an fsync of `unflushed_files`).
    pub fn mark_flushed(&mut self, offset: i64, messages: u64, now: i64) {
        self.recovery_point = self.recovery_point.max(offset.min(self.log_end_offset));
        self.unflushed_messages = self.unflushed_messages.saturating_sub(messages);
        self.last_flush_ms = now;
    }

    pub fn unflushed_messages(&self) -> u64 {
        self.unflushed_messages
    }

    /// Whether `flush.messages` / `flush.ms` want an fsync now; the caller may batch several
    /// appends into one flush (group commit).
    pub fn needs_flush(&self, now: i64) -> bool {
        self.unflushed_messages > 0
            && (self.unflushed_messages >= self.config.flush_interval_messages
                || now - self.last_flush_ms >= self.config.flush_interval_ms)
    }

    fn maybe_roll(
        &mut self,
        incoming: usize,
        base_offset: i64,
        last_offset: i64,
        max_ts: i64,
        now: i64,
    ) -> Result<()> {
        let segment_bytes = self.config.segment_bytes;
        let segment_ms = self.config.segment_ms;
        let seg = self.active_mut();
        let full = seg.is_full_for(incoming, last_offset, segment_bytes);
        let old = !seg.is_empty() && seg.time_waited_for_roll(now, max_ts) > segment_ms;
        let must_move =
            base_offset - seg.base_offset > i32::MAX as i64 || base_offset < seg.base_offset;
        if (full && !seg.is_empty()) || old || must_move {
            self.roll(Some(base_offset))?;
        }
        Ok(())
    }

    /// Starts a new segment at `base` (default: the log end offset). The old active segment is
    /// finished (final time index entry, trimmed indexes) and fsynced.
    pub fn roll(&mut self, base: Option<i64>) -> Result<()> {
        let base = base.unwrap_or(self.log_end_offset);
        let settings = self.settings();
        let active = self.active_mut();
        if active.base_offset == base && active.is_empty() {
            return Ok(());
        }
        active.close_active()?;
        active.flush()?;
        if base == self.log_end_offset {
            // Named after the new segment: the state as of its first offset.
            self.take_producer_snapshot()?;
        }
        if let Some(stale) = self.segments.remove(&base) {
            // An empty segment left at the same base (e.g. after a truncation) is replaced.
            stale.delete_files()?;
        }
        let (seg, _) = LogSegment::open(&self.dir, base, settings, true)?;
        tracing::info!(topic = %self.topic, partition = self.partition, base_offset = base, "rolled new log segment");
        self.segments.insert(base, seg);
        self.recovery_point = self.recovery_point.max(base.min(self.log_end_offset));
        checkpoint::sync_dir(&self.dir)?;
        Ok(())
    }

    /// Reads whole entries starting with the one that contains `offset`, up to `max_bytes`
    /// (the first entry is returned whole even if larger, when `min_one`), and never entries at
    /// or past `upper_bound` (the high watermark for consumers, the log end for replicas).
    pub fn read(
        &self,
        offset: i64,
        max_bytes: usize,
        upper_bound: i64,
        min_one: bool,
    ) -> Result<ReadResult> {
        let mut result = ReadResult {
            records: Bytes::new(),
            first_offset: None,
            log_start_offset: self.log_start_offset,
            log_end_offset: self.log_end_offset,
            high_watermark: self.high_watermark,
            last_stable_offset: self.last_stable_offset(),
        };
        if offset < self.log_start_offset || offset > self.log_end_offset {
            return Err(LogError::OffsetOutOfRange {
                offset,
                log_start: self.log_start_offset,
                log_end: self.log_end_offset,
            });
        }
        let upper_bound = upper_bound.min(self.log_end_offset);
        if offset >= upper_bound {
            return Ok(result);
        }
        let start_base = self
            .segments
            .range(..=offset)
            .next_back()
            .map_or(i64::MIN, |(b, _)| *b);
        for seg in self.segments.range(start_base..).map(|(_, s)| s) {
            let Some(first) = seg.find_entry(offset, 0)? else {
                continue;
            };
            if first.base_offset >= upper_bound {
                return Ok(result);
            }
            let bound_pos = if upper_bound >= self.log_end_offset {
                seg.size()
            } else {
                seg.find_entry(upper_bound, first.position)?
                    .map_or(seg.size(), |e| {
                        if e.base_offset >= upper_bound {
                            e.position
                        } else {
                            e.position + e.size
                        }
                    })
            };
            let want = if min_one {
                max_bytes.max(first.size as usize)
            } else {
                max_bytes
            };
            let end = bound_pos.min(first.position + want as u64);
            if end <= first.position {
                return Ok(result);
            }
            let bytes = seg.read_bytes(first.position, (end - first.position) as usize)?;
            let whole = whole_entries_len(&bytes);
            result.records = bytes.slice(..whole);
            result.first_offset = (whole > 0).then_some(first.base_offset);
            return Ok(result);
        }
        Ok(result)
    }

    /// The first offset whose record timestamp is >= `timestamp`, with that timestamp, as
    /// ListOffsets answers; `None` when no record is that recent.
    pub fn offset_for_timestamp(&self, timestamp: i64) -> Result<Option<(i64, i64)>> {
        for seg in self.segments.values() {
            if seg.largest_timestamp() < timestamp || seg.is_empty() {
                continue;
            }
            let from = seg
                .time_index
                .lookup(timestamp)
                .map_or(seg.base_offset, |(_, off)| off);
            let mut pos = seg.offset_index.lookup(from) as u64;
            while let Some(e) = seg.entry_at(pos)? {
                if e.max_timestamp >= timestamp && e.last_offset >= self.log_start_offset {
                    if e.magic == 2 {
                        let bytes = seg.read_bytes(e.position, e.size as usize)?;
                        let (_, recs) = records::decode_batch(&bytes)?;
                        if let Some(r) = recs
                            .iter()
                            .find(|r| r.timestamp >= timestamp && r.offset >= self.log_start_offset)
                        {
                            return Ok(Some((r.offset, r.timestamp)));
                        }
                    } else {
                        return Ok(Some((e.last_offset, e.max_timestamp)));
                    }
                }
                pos += e.size;
            }
        }
        Ok(None)
    }

    /// The first record carrying the log's largest timestamp, with that timestamp (ListOffsets
    /// MAX_TIMESTAMP); `None` for an empty log.
    pub fn offset_of_max_timestamp(&self) -> Result<Option<(i64, i64)>> {
        let max = self
            .segments
            .values()
            .filter(|s| !s.is_empty())
            .map(|s| s.largest_timestamp())
            .max();
        match max {
            Some(ts) => self.offset_for_timestamp(ts),
            None => Ok(None),
        }
    }

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
    fn delete_segments_while(
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

    /// fsyncs everything not yet durable and moves the recovery point to the log end.
    pub fn flush(&mut self) -> Result<()> {
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
        Ok(())
    }

    /// Flushes and trims the active segment's indexes, as a clean shutdown leaves them.
    pub fn close(mut self) -> Result<()> {
        self.flush()?;
        self.take_producer_snapshot()?;
        self.active_mut().close_active()?;
        self.remove_expired_deletions(i64::MAX)
    }

    /// Deletes the whole partition directory (topic deletion).
    pub fn delete(self) -> Result<()> {
        let dir = self.dir.clone();
        drop(self);
        fs::remove_dir_all(&dir).at(&dir)
    }

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

    fn assign_epoch(&mut self, epoch: i32, start_offset: i64) -> Result<()> {
        if epoch >= 0 && self.leader_epochs.last().is_none_or(|&(e, _)| epoch > e) {
            // An epoch that ended before any batch of it was written is superseded (Kafka drops
            // entries that would no longer be monotonic).
            self.leader_epochs.retain(|&(_, off)| off < start_offset);
            self.leader_epochs.push((epoch, start_offset));
            self.write_epochs()?;
        }
        Ok(())
    }

    fn truncate_epochs_from_end(&mut self, end: i64) -> Result<()> {
        let before = self.leader_epochs.len();
        self.leader_epochs.retain(|&(_, off)| off < end);
        if self.leader_epochs.len() != before {
            self.write_epochs()?;
        }
        Ok(())
    }

    /// Drops epochs that end before `start`; the one spanning it now starts at `start`.
    fn truncate_epochs_from_start(&mut self, start: i64) -> Result<()> {
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

    fn write_epochs(&self) -> Result<()> {
        checkpoint::write_leader_epochs(&self.dir.join(LEADER_EPOCH_FILE), &self.leader_epochs)
    }
}

/// The coordinator epoch a COMMIT/ABORT marker carries (its value: version, epoch).
fn marker_coordinator_epoch(marker: &[u8]) -> Option<i32> {
    let (_, recs) = records::decode_batch(marker).ok()?;
    let value = recs.first()?.value.as_ref()?;
    let epoch: [u8; 4] = value.get(2..6)?.try_into().ok()?;
    Some(i32::from_be_bytes(epoch))
}

/// The `.txnindex` entry for a marker about to be applied to `producers`: `None` for a COMMIT.
/// The last stable offset after an ABORT is the first offset of the oldest other open
/// transaction, or the offset after the marker.
fn aborted_txn_of_marker(
    producers: &ProducerStateManager,
    h: &BatchHeader,
    marker: &[u8],
) -> Result<Option<AbortedTxn>> {
    let (_, recs) = records::decode_batch(marker)?;
    let is_abort = recs
        .first()
        .and_then(|r| r.key.as_ref())
        .is_some_and(|k| k.len() >= 4 && k[2..4] == [0, 0]);
    if !is_abort {
        return Ok(None);
    }
    let first_offset = producers
        .get(h.producer_id)
        .and_then(|e| e.current_txn_first_offset)
        .unwrap_or(h.base_offset);
    let others_first = producers
        .iter_open_transactions()
        .filter(|(pid, _)| *pid != h.producer_id)
        .map(|(_, first)| first)
        .min();
    Ok(Some(AbortedTxn {
        producer_id: h.producer_id,
        first_offset,
        last_offset: h.last_offset(),
        last_stable_offset: others_first.unwrap_or(h.next_offset()),
    }))
}

/// Length of the prefix of `buf` that holds only complete entries.
fn whole_entries_len(buf: &[u8]) -> usize {
    let mut pos = 0usize;
    while let Some(size) = batch::entry_size(&buf[pos..]) {
        if size < LOG_OVERHEAD as i64 || pos as i64 + size > buf.len() as i64 {
            break;
        }
        pos += size as usize;
    }
    pos
}
