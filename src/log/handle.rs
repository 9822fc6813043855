//! `LogHandle`: a partition log shared between request handlers, with the flush policy applied
//! as group commit: appends that arrive while one fsync runs are made durable by the next one,
//! so `flush.messages=1` costs one fsync per burst rather than one per batch.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use bytes::Bytes;

use super::error::{IoContext, Result};
use super::partition::{AppendInfo, PartitionLog, ReadResult, ReadSnapshot};
use super::segment::{self, FileRegion, now_ms};

/// Reads planned again when a truncation raced them, before one is done under the lock.
const UNLOCKED_READ_ATTEMPTS: usize = 3;

pub struct LogHandle {
    log: Mutex<PartitionLog>,
    /// Held by the one thread running an fsync; the others wait, then usually find their data
    /// already durable.
    flush_lock: Mutex<()>,
    durable_offset: AtomicI64,
    fsyncs: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves the log as consistent as the last completed call.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl LogHandle {
    pub fn new(log: PartitionLog) -> Self {
        let durable = log.recovery_point();
        LogHandle {
            log: Mutex::new(log),
            flush_lock: Mutex::new(()),
            durable_offset: AtomicI64::new(durable),
            fsyncs: AtomicU64::new(0),
        }
    }

    /// The log if nobody holds it right now (metrics must not wait behind an append).
    pub fn try_lock(&self) -> Option<MutexGuard<'_, PartitionLog>> {
        match self.log.try_lock() {
            Ok(g) => Some(g),
            Err(std::sync::TryLockError::Poisoned(p)) => Some(p.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) => None,
        }
    }

    /// Direct access for operations that are not on the hot path.
    pub fn lock(&self) -> MutexGuard<'_, PartitionLog> {
        lock(&self.log)
    }

    pub fn append_as_leader(&self, records: &Bytes, leader_epoch: i32) -> Result<AppendInfo> {
        let (info, flush) = {
            let mut log = self.lock();
            let info = log.append_as_leader(records, leader_epoch)?;
            (info, log.needs_flush(now_ms()))
        };
        if flush {
            self.flush_up_to(info.last_offset + 1)?;
        }
        Ok(info)
    }

    pub fn append_as_follower(&self, records: &Bytes) -> Result<Option<AppendInfo>> {
        let (info, flush) = {
            let mut log = self.lock();
            let info = log.append_as_follower(records)?;
            (info, log.needs_flush(now_ms()))
        };
        if let (Some(info), true) = (info, flush) {
            self.flush_up_to(info.last_offset + 1)?;
        }
        Ok(info)
    }

    /// [`PartitionLog::read`] without holding the log across the file I/O (see `read_with`).
    pub fn read(
        &self,
        offset: i64,
        max_bytes: usize,
        upper_bound: i64,
        min_one: bool,
    ) -> Result<ReadResult> {
        self.read_with(|log| {
            Ok((
                log.read_snapshot(offset, max_bytes, upper_bound, min_one)?,
                (),
            ))
        })
        .map(|(r, ())| r)
    }

    /// A read that holds the log only for bookkeeping: `plan` runs under the lock and returns
    /// a [`ReadSnapshot`] (with whatever else the caller wants read at the same moment); the
    /// index scans and `pread`s then run without the lock, so appends, flushes and the runtime
    /// threads' brief accessors never wait behind a read's disk I/O.
    ///
    /// Afterwards the lock is taken once more, briefly, to compare the log's `layout_epoch`:
    /// only a truncation changes bytes a snapshot may read (see [`ReadSnapshot`]), it bumps the
    /// epoch under the lock, and the reads are done before that check, so an unchanged epoch
    /// means every byte read was the snapshot's log. A changed one discards the read (and any
    /// error it ran into, e.g. reading past a cut) and plans again; should the log keep
    /// changing, the last attempt reads under the lock, which is always consistent.
    pub fn read_with<T>(
        &self,
        plan: impl FnMut(&PartitionLog) -> Result<(ReadSnapshot, T)>,
    ) -> Result<(ReadResult, T)> {
        self.read_planned(plan, ReadSnapshot::read)
    }

    /// [`LogHandle::read_with`] that only locates the bytes ([`ReadSnapshot::locate`]), for a
    /// fetch that sends them from the file. The region is checked against truncation as a read
    /// is, but only up to the check: what may change a file's bytes later (a follower's
    /// truncation, which cuts above the high watermark consumers read below) is checked again
    /// by the sender, which fails if the file no longer holds the region, as Kafka's
    /// `FileRecords.writeTo` does.
    pub fn locate_with<T>(
        &self,
        plan: impl FnMut(&PartitionLog) -> Result<(ReadSnapshot, T)>,
    ) -> Result<(ReadResult<Option<FileRegion>>, T)> {
        self.read_planned(plan, ReadSnapshot::locate)
    }

    /// [`LogHandle::locate_with`] for an async runtime thread, which must not wait: the log's
    /// lock only if it is free, the entry headers only if they are in the page cache
    /// (`segment::cached_only`). `None` when it would have had to wait: the caller then runs
    /// `locate_with` on the blocking pool.
    pub fn try_locate_now<T>(
        &self,
        mut plan: impl FnMut(&PartitionLog) -> Result<(ReadSnapshot, T)>,
    ) -> Option<Result<(ReadResult<Option<FileRegion>>, T)>> {
        let (snapshot, extra) = match plan(&*self.try_lock()?) {
            Ok(planned) => planned,
            Err(e) => return Some(Err(e)),
        };
        if snapshot.reads_nothing() {
            return Some(snapshot.locate().map(|r| (r, extra)));
        }
        // Any failure goes the slow way, which plans again and reports what it meets.
        let located = segment::cached_only(|| snapshot.locate()).ok()?;
        (self.try_lock()?.layout_epoch() == snapshot.layout_epoch()).then_some(Ok((located, extra)))
    }

    fn read_planned<T, R>(
        &self,
        mut plan: impl FnMut(&PartitionLog) -> Result<(ReadSnapshot, T)>,
        read: impl Fn(&ReadSnapshot) -> Result<R>,
    ) -> Result<(R, T)> {
        for _ in 0..UNLOCKED_READ_ATTEMPTS {
            let (snapshot, extra) = plan(&self.lock())?;
            if snapshot.reads_nothing() {
                return Ok((read(&snapshot)?, extra));
            }
            let result = read(&snapshot);
            // A failed read is planned again too: a cold segment's file may have been closed
            // and the segment deleted (retention) since the plan.
            if result.is_ok() && self.lock().layout_epoch() == snapshot.layout_epoch() {
                return Ok((result?, extra));
            }
        }
        let log = self.lock();
        let (snapshot, extra) = plan(&log)?;
        Ok((read(&snapshot)?, extra))
    }

    /// Makes every offset below `offset` durable, sharing the fsync with concurrent appenders.
    pub fn flush_up_to(&self, offset: i64) -> Result<()> {
        let _flushing = lock(&self.flush_lock);
        if self.durable_offset.load(Ordering::Acquire) >= offset {
            return Ok(());
        }
        let (files, end, messages) = {
            let log = self.lock();
            (
                log.unflushed_files()?,
                log.log_end_offset(),
                log.unflushed_messages(),
            )
        };
        for (path, f) in &files {
            f.sync_data().at(path)?;
        }
        self.fsyncs.fetch_add(1, Ordering::Relaxed);
        self.lock().mark_flushed(end, messages, now_ms());
        self.durable_offset.fetch_max(end, Ordering::AcqRel);
        Ok(())
    }

    /// How many flushes this log has run (each one fsync per unflushed segment).
    pub fn flush_count(&self) -> u64 {
        self.fsyncs.load(Ordering::Relaxed)
    }

    pub fn durable_offset(&self) -> i64 {
        self.durable_offset.load(Ordering::Acquire)
    }

    /// Unwraps the log for closing; only possible once nobody else holds the handle.
    pub fn into_log(self) -> PartitionLog {
        self.log.into_inner().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::LogConfig;
    use crate::log::compression;
    use crate::log::partition::LoadParams;
    use crate::log::records::{self, BatchWriter};

    /// A client batch of `n` records whose values are `value_len` bytes of `fill`.
    fn batch(n: usize, value_len: usize, fill: u8) -> Bytes {
        let value = vec![fill; value_len];
        let mut w = BatchWriter::new(compression::NONE, n * (value_len + 4));
        for i in 0..n {
            w.append(now_ms(), Some(format!("k{i}").as_bytes()), Some(&value));
        }
        Bytes::from(w.finish().unwrap())
    }

    fn open(dir: &std::path::Path) -> PartitionLog {
        let config = LogConfig {
            segment_bytes: 2_000,
            ..LogConfig::default()
        };
        PartitionLog::open(&dir.join("t-0"), config, LoadParams::default()).unwrap()
    }

    /// Every entry is a whole, CRC-valid batch, the offsets run on from `first` without a gap,
    /// and each record's value is filled with one of `fills`. Returns the offset after them.
    fn check_batches(bytes: &[u8], first: i64, fills: &[u8]) -> i64 {
        let mut pos = 0;
        let mut next = first;
        while pos < bytes.len() {
            let size = crate::log::batch::entry_size(&bytes[pos..]).expect("an entry header");
            let entry = bytes.get(pos..pos + size as usize).expect("a whole entry");
            let (h, recs) = records::decode_batch(entry).expect("a valid batch");
            assert_eq!(h.base_offset, next, "offsets run on");
            for r in &recs {
                let v = r.value.as_deref().unwrap();
                assert!(fills.contains(&v[0]) && v.iter().all(|b| *b == v[0]));
            }
            next = h.last_offset() + 1;
            pos += h.size();
        }
        next
    }

    #[test]
    fn hot_reads_are_located_without_waiting_and_contended_ones_are_left_to_the_pool() {
        let tmp = tempfile::tempdir().unwrap();
        let mut log = open(tmp.path());
        for i in 0..12 {
            log.append_as_leader(&batch(5, 100, b'a' + i), 0).unwrap();
        }
        let leo = log.log_end_offset();
        let handle = LogHandle::new(log);
        let plan = |log: &PartitionLog| Ok((log.read_snapshot(7, 1_500, leo, true)?, ()));
        let (slow, ()) = handle.locate_with(plan).unwrap();
        // Just written, so in the page cache: located on this thread, the same region.
        let (hot, ()) = handle
            .try_locate_now(plan)
            .expect("page-cache data located without waiting")
            .unwrap();
        let (slow, hot) = (slow.records.unwrap(), hot.records.unwrap());
        assert_eq!((hot.position, hot.len), (slow.position, slow.len));
        assert_eq!(
            hot.read().unwrap(),
            handle.read(7, 1_500, leo, true).unwrap().records
        );
        // Cut at whole batches by max_bytes (each batch is over 500 bytes).
        assert!(hot.len <= 1_500 && check_batches(&hot.read().unwrap(), 5, b"abc") == 15);
        // While an append holds the log, the runtime thread does not wait for it.
        let held = handle.lock();
        assert!(handle.try_locate_now(plan).is_none());
        drop(held);
    }

    #[test]
    fn a_snapshot_reads_the_log_as_it_was_whatever_happens_meanwhile() {
        let tmp = tempfile::tempdir().unwrap();
        let mut log = open(tmp.path());
        for _ in 0..3 {
            log.append_as_leader(&batch(5, 100, b'a'), 0).unwrap();
        }
        let leo = log.log_end_offset();
        let expected = log.read(0, 1 << 20, leo, true).unwrap();
        let snap = log.read_snapshot(0, 1 << 20, leo, true).unwrap();
        let to_hw = log.read_snapshot(5, 1 << 20, 10, true).unwrap();

        // Appends past the snapshot and rolls: the snapshot reads exactly what it saw.
        for _ in 0..10 {
            log.append_as_leader(&batch(5, 100, b'b'), 0).unwrap();
        }
        assert!(log.segment_count() > 1, "the appends rolled the log");
        let r = snap.read().unwrap();
        assert_eq!(r.records, expected.records);
        assert_eq!(r.log_end_offset, leo);
        assert_eq!(check_batches(&r.records, 0, b"a"), leo);
        let r = to_hw.read().unwrap();
        assert_eq!(r.first_offset, Some(5));
        assert_eq!(
            check_batches(&r.records, 5, b"a"),
            10,
            "no entry at the bound"
        );

        // The files unlinked (a full truncation, as retention deletes whole segments): the open
        // files still read the old, complete data, as in Kafka.
        let later = log
            .read_snapshot(leo, 1 << 20, log.log_end_offset(), true)
            .unwrap();
        let later_leo = log.log_end_offset();
        log.truncate_fully_and_start_at(1_000).unwrap();
        assert_eq!(snap.read().unwrap().records, expected.records);
        let r = later.read().unwrap();
        assert_eq!(r.first_offset, Some(leo));
        assert!(check_batches(&r.records, leo, b"b") <= later_leo);
        assert_eq!(r.log_end_offset, later_leo);
        assert_ne!(later.layout_epoch(), log.layout_epoch());
    }

    #[test]
    fn a_truncation_under_a_snapshot_is_detected_and_the_read_planned_again() {
        let tmp = tempfile::tempdir().unwrap();
        let mut log = open(tmp.path());
        for _ in 0..3 {
            log.append_as_leader(&batch(5, 100, b'a'), 0).unwrap();
        }
        let snap = log
            .read_snapshot(5, 1 << 20, log.log_end_offset(), true)
            .unwrap();
        // A follower's truncation, then other data written where the old was.
        log.truncate_to(5).unwrap();
        log.append_as_leader(&batch(2, 10, b'c'), 0).unwrap();
        log.append_as_leader(&batch(7, 300, b'd'), 0).unwrap();
        assert_ne!(snap.layout_epoch(), log.layout_epoch(), "the change shows");
        // What the stale snapshot reads now may mix old and new bytes (which is why
        // `read_with` throws such a read away); still it fails or is cut at entry boundaries,
        // never past the size it saw.
        if let Ok(r) = snap.read() {
            assert_eq!(r.records.len(), sized_len(&r.records));
            assert!(r.log_end_offset == 15 && r.records.len() <= 3 * 1_000);
        }
        let handle = LogHandle::new(log);
        // A read stops at its segment's end; the 300-byte records rolled a new one.
        let r = handle.read(5, 1 << 20, i64::MAX, true).unwrap();
        assert_eq!(check_batches(&r.records, 5, b"c"), 7);
        let r = handle.read(7, 1 << 20, i64::MAX, true).unwrap();
        assert_eq!(check_batches(&r.records, 7, b"d"), 14);
    }

    /// Length of the prefix of `bytes` whose entry sizes chain to whole entries.
    fn sized_len(bytes: &[u8]) -> usize {
        let mut pos = 0;
        while let Some(size) = crate::log::batch::entry_size(&bytes[pos..])
            .filter(|&size| size > 0 && pos + size as usize <= bytes.len())
        {
            pos += size as usize;
        }
        pos
    }

    /// Reads race appends, rolls and truncations: each returns whole, valid batches of one
    /// consistent log, with offsets within the offsets it reports.
    #[test]
    fn reads_racing_appends_and_truncations_return_only_whole_batches() {
        let tmp = tempfile::tempdir().unwrap();
        let handle = LogHandle::new(open(tmp.path()));
        handle.append_as_leader(&batch(5, 100, b'a'), 0).unwrap();
        let stop = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|s| {
            s.spawn(|| {
                for round in 0..200u32 {
                    let fill = b'a' + (round % 20) as u8;
                    handle
                        .append_as_leader(
                            &batch(1 + round as usize % 7, 50 + round as usize, fill),
                            0,
                        )
                        .unwrap();
                    if round % 10 == 9 {
                        let mut log = handle.lock();
                        let to = log.log_end_offset() / 2;
                        log.truncate_to(to.max(5)).unwrap();
                    }
                }
                stop.store(true, Ordering::Release);
            });
            let mut reads = 0;
            while !stop.load(Ordering::Acquire) || reads == 0 {
                let (r, ()) = handle
                    .read_with(|log| {
                        Ok((
                            log.read_snapshot(0, 1 << 16, log.log_end_offset(), true)?,
                            (),
                        ))
                    })
                    .unwrap();
                let fills: Vec<u8> = (b'a'..b'a' + 20).collect();
                let end = check_batches(&r.records, 0, &fills);
                assert!(end <= r.log_end_offset, "offsets within the snapshot");
                reads += 1;
            }
        });
    }
}
