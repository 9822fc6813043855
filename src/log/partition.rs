//! `PartitionLog`: the segments of one `<topic>-<partition>` directory and everything done to
//! them as a whole: append, read, roll, flush, truncation, the cleaner's segment swap.
//!
//! What happens only at open (`loader`), the leader epoch cache (`leader_epoch`), retention
//! (`retention`), truncation (`truncation`), the full flush and close (`flush`), lookups by
//! timestamp (`timestamp_lookup`), aborted transactions (`aborted_txns`) and the cleaner's
//! segment swap (`cleaner::swap`) live in other files as further `impl PartitionLog` blocks;
//! they share this struct's fields, which are therefore visible to the `log` module.
//!
//! All methods are synchronous and do file I/O; the broker calls them from blocking threads
//! (see `LogManager`), never from the async runtime.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use bytes::Bytes;

use super::aborted_txns::{aborted_txn_of_marker, marker_coordinator_epoch};
use super::batch::{self, BatchHeader, LOG_OVERHEAD, MAGIC_OFFSET};
use super::checkpoint;
use super::error::{LogError, Result};
use super::producer_state::{ProducerStateManager, SequenceCheck, snapshot};
use super::records;
use super::segment::{FileRegion, LogSegment, SegmentSettings, SegmentSnapshot, now_ms};
use super::validator;
use crate::config::LogConfig;

pub use super::loader::{LoadParams, parse_partition_dir};

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

/// Bytes for a fetch: whole entries, starting with the one holding the requested offset. The
/// records are in memory (`Bytes`, what [`ReadSnapshot::read`] returns) or, for a fetch that
/// sends them from the file, where they are (`Option<FileRegion>`, from
/// [`ReadSnapshot::locate`]; `None` when there are none).
#[derive(Debug, Clone)]
pub struct ReadResult<R = Bytes> {
    pub records: R,
    /// First offset of the first entry returned (may be below the requested offset).
    pub first_offset: Option<i64>,
    pub log_start_offset: i64,
    pub log_end_offset: i64,
    pub high_watermark: i64,
    /// Where read_committed readers stop (Kafka's last stable offset).
    pub last_stable_offset: i64,
}

impl<R> ReadResult<R> {
    /// The same offsets with other records.
    pub fn with_records<S>(self, records: S) -> ReadResult<S> {
        ReadResult {
            records,
            first_offset: self.first_offset,
            log_start_offset: self.log_start_offset,
            log_end_offset: self.log_end_offset,
            high_watermark: self.high_watermark,
            last_stable_offset: self.last_stable_offset,
        }
    }
}

pub struct PartitionLog {
    pub(super) dir: PathBuf,
    pub(super) topic: String,
    pub(super) partition: i32,
    pub(super) config: LogConfig,
    pub(super) segments: BTreeMap<i64, LogSegment>,
    pub(super) log_start_offset: i64,
    pub(super) log_end_offset: i64,
    pub(super) high_watermark: i64,
    pub(super) recovery_point: i64,
    pub(super) leader_epochs: Vec<(i32, i64)>,
    /// What `leader-epoch-checkpoint` holds, when known (read at load or last written): a
    /// write that would not change it is skipped. Every idle log's load drops its leader's
    /// epoch start in memory (see `open_for`) and taking the leadership again assigns the same
    /// entry back; rewriting and fsyncing 10,000 identical files made up most of a restart's
    /// LeaderAndIsr.
    pub(super) epochs_on_disk: Option<Vec<(i32, i64)>>,
    pub(super) unflushed_messages: u64,
    pub(super) last_flush_ms: i64,
    /// Segments renamed to `.deleted`, removed for good after `file.delete.delay.ms`.
    pub(super) pending_deletes: Vec<(i64, LogSegment)>,
    pub(super) producers: ProducerStateManager,
    /// Where the log cleaner's dirty section starts (`cleaner-offset-checkpoint`); `None` for a
    /// log never cleaned.
    pub(super) cleaner_offset: Option<i64>,
    /// Bumped whenever segments are truncated or rewritten in place, so the cleaner, which reads
    /// segments without holding the log, can tell that what it read is no longer the log.
    pub(super) layout_epoch: u64,
    /// The log end and `layout_epoch` when everything (logs, indexes) was last made durable:
    /// at the last full flush, or the load after a clean shutdown. `None`: not known durable.
    pub(super) fully_flushed_at: Option<(i64, u64)>,
}

impl PartitionLog {
    /// Writes the producer state as of the log end (at roll and clean shutdown).
    pub(super) fn take_producer_snapshot(&self) -> Result<()> {
        snapshot::write(&self.dir, self.log_end_offset, &self.producers)
    }

    pub fn producer_state(&self) -> &ProducerStateManager {
        &self.producers
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

    /// Moves the high watermark (replication decides where); clamped to the log.
    pub fn set_high_watermark(&mut self, hw: i64) {
        self.high_watermark = hw.clamp(self.log_start_offset, self.log_end_offset);
    }

    pub(super) fn active(&self) -> &LogSegment {
        self.segments
            .values()
            .next_back()
            .expect("a partition log always has an active segment")
    }

    pub(super) fn settings(&self) -> SegmentSettings {
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

    pub(super) fn active_mut(&mut self) -> &mut LogSegment {
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
    pub fn unflushed_files(&self) -> Result<Vec<(PathBuf, std::sync::Arc<fs::File>)>> {
        let from = self
            .segments
            .range(..=self.recovery_point)
            .next_back()
            .map_or(i64::MIN, |(b, _)| *b);
        self.segments
            .range(from..)
            .map(|(_, s)| Ok((s.log_path().to_path_buf(), s.file()?)))
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
    ///
    /// This reads with `self` borrowed, i.e. under the log's lock when called through
    /// `LogHandle::lock`; the broker's fetches use `LogHandle::read_with`, which does the same
    /// read from a [`ReadSnapshot`] without holding the lock across the file I/O.
    pub fn read(
        &self,
        offset: i64,
        max_bytes: usize,
        upper_bound: i64,
        min_one: bool,
    ) -> Result<ReadResult> {
        self.read_snapshot(offset, max_bytes, upper_bound, min_one)?
            .read()
    }

    /// Takes, without any file I/O, what [`PartitionLog::read`] needs: the offsets that bound
    /// the read, and for each segment it may touch the shared data file, its size now and the
    /// offset index's start positions (the index is a memory map that appends, rolls and
    /// truncation resize, so it is looked up here, while the caller holds the log). Fails with
    /// `OffsetOutOfRange` as `read` does.
    pub fn read_snapshot(
        &self,
        offset: i64,
        max_bytes: usize,
        upper_bound: i64,
        min_one: bool,
    ) -> Result<ReadSnapshot> {
        if offset < self.log_start_offset || offset > self.log_end_offset {
            return Err(LogError::OffsetOutOfRange {
                offset,
                log_start: self.log_start_offset,
                log_end: self.log_end_offset,
            });
        }
        let mut snap = self.no_read();
        let upper_bound = upper_bound.min(self.log_end_offset);
        snap.offset = offset;
        snap.max_bytes = max_bytes;
        snap.min_one = min_one;
        snap.upper_bound = upper_bound;
        snap.to_log_end = upper_bound >= self.log_end_offset;
        if offset >= upper_bound {
            return Ok(snap);
        }
        let start_base = self
            .segments
            .range(..=offset)
            .next_back()
            .map_or(i64::MIN, |(b, _)| *b);
        for seg in self.segments.range(start_base..).map(|(_, s)| s) {
            snap.segments.push(SnapshotSegment {
                start_hint: seg.offset_index.lookup(offset) as u64,
                bound_hint: seg.offset_index.lookup(upper_bound) as u64,
                data: seg.snapshot(),
            });
            // The read moves past a segment only when it holds no entry ending at or after
            // `offset`. A non-empty segment based after `offset` holds only such entries, so
            // the read ends in it at the latest: later segments are not needed.
            if seg.base_offset > offset && !seg.is_empty() {
                break;
            }
        }
        Ok(snap)
    }

    /// A snapshot that reads nothing, with the log's current offsets (a fetch answered without
    /// data, such as a diverging follower's).
    pub fn no_read(&self) -> ReadSnapshot {
        ReadSnapshot {
            offset: self.log_end_offset,
            max_bytes: 0,
            min_one: false,
            upper_bound: self.log_end_offset,
            to_log_end: true,
            segments: Vec::new(),
            result: ReadResult {
                records: Bytes::new(),
                first_offset: None,
                log_start_offset: self.log_start_offset,
                log_end_offset: self.log_end_offset,
                high_watermark: self.high_watermark,
                last_stable_offset: self.last_stable_offset(),
            },
            layout_epoch: self.layout_epoch,
        }
    }
}

/// One segment of a [`ReadSnapshot`].
#[derive(Clone)]
struct SnapshotSegment {
    data: SegmentSnapshot,
    /// The offset index's scan start for the read's offset and for its upper bound.
    start_hint: u64,
    bound_hint: u64,
}

/// A read of the log planned under its lock ([`PartitionLog::read_snapshot`]) and done without
/// it ([`ReadSnapshot::read`]), as Kafka's `LogSegment.read` reads up to a `maxPosition` taken
/// from the log without holding the log's lock.
///
/// What the log may do between the two, and why the read stays correct:
/// - appends write only past the sizes taken, which the read never passes, and a roll adds a
///   segment the snapshot does not list: the read sees the log as of the snapshot;
/// - retention, DeleteRecords and a cleaner swap rename or unlink segment files but never
///   change their bytes; the snapshot holds the files open, so it still reads the old,
///   complete data (what the snapshot's offsets describe), as an open Kafka `FileRecords` does;
/// - a follower's truncation cuts the active segment in place (and may then append other data
///   at the same positions), so the bytes read may belong to no consistent log. It bumps the
///   log's `layout_epoch`; `LogHandle::read_with` compares it, under the lock, after the I/O
///   and throws such a read away. The result also only ever holds whole entries, the prefix
///   `whole_entries_len` accepts, so a short read never passes a torn batch on.
#[derive(Clone)]
pub struct ReadSnapshot {
    offset: i64,
    max_bytes: usize,
    min_one: bool,
    /// Already clamped to the log end offset of the snapshot.
    upper_bound: i64,
    /// Whether `upper_bound` is the log end: then every entry below a segment's size is wanted.
    to_log_end: bool,
    segments: Vec<SnapshotSegment>,
    /// The offsets of the log at the snapshot, with no records yet.
    result: ReadResult,
    layout_epoch: u64,
}

impl ReadSnapshot {
    /// The log's `layout_epoch` when the snapshot was taken.
    pub fn layout_epoch(&self) -> u64 {
        self.layout_epoch
    }

    /// Whether the read certainly returns no records (nothing to read below its bound).
    pub fn reads_nothing(&self) -> bool {
        self.segments.is_empty()
    }

    /// The read itself: index scans and `pread`s on the snapshot's files, no lock needed.
    pub fn read(&self) -> Result<ReadResult> {
        let located = self.locate()?;
        let Some(region) = &located.records else {
            return Ok(located.with_records(Bytes::new()));
        };
        let bytes = region.read().map_err(|e| LogError::io("<segment>", e))?;
        // Whole entries only, should the file have changed under the read (see above).
        let whole = whole_entries_len(&bytes);
        let first_offset = located.first_offset.filter(|_| whole > 0);
        let mut result = located.with_records(bytes.slice(..whole));
        result.first_offset = first_offset;
        Ok(result)
    }

    /// Where the read's bytes are, without reading them: index scans and the entry headers
    /// read to find the first entry (and, when `max_bytes` cuts the read, the last whole one),
    /// no lock needed. The region holds only whole entries.
    pub fn locate(&self) -> Result<ReadResult<Option<FileRegion>>> {
        let result = self.result.clone().with_records(None);
        let upper_bound = self.upper_bound;
        for s in &self.segments {
            let seg = &s.data;
            let Some(first) = seg.find_entry(self.offset, s.start_hint)? else {
                continue;
            };
            if first.base_offset >= upper_bound {
                return Ok(result);
            }
            let bound_pos = if self.to_log_end {
                seg.size()
            } else {
                seg.find_entry(upper_bound, s.bound_hint.max(first.position))?
                    .map_or(seg.size(), |e| {
                        if e.base_offset >= upper_bound {
                            e.position
                        } else {
                            e.position + e.size
                        }
                    })
            };
            let want = if self.min_one {
                self.max_bytes.max(first.size as usize)
            } else {
                self.max_bytes
            };
            let mut end = bound_pos.min(first.position.saturating_add(want as u64));
            if end < bound_pos {
                // Cut by `max_bytes`: end at the last entry that fits whole. (`bound_pos` is an
                // entry boundary: a snapshot's size, or where an entry starts or ends.)
                let mut pos = first.position;
                while let Some(e) = seg.entry_at(pos)? {
                    if pos + e.size > end {
                        break;
                    }
                    pos += e.size;
                }
                end = pos;
            }
            if end <= first.position {
                return Ok(result);
            }
            let region = seg.region(first.position, (end - first.position) as usize)?;
            return Ok(ReadResult {
                records: Some(region),
                first_offset: Some(first.base_offset),
                ..result
            });
        }
        Ok(result)
    }
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
