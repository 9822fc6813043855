//! `LogHandle`: a partition log shared between request handlers, with the flush policy applied
//! as group commit: appends that arrive while one fsync runs are made durable by the next one,
//! so `flush.messages=1` costs one fsync per burst rather than one per batch.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use bytes::Bytes;

use super::error::{IoContext, Result};
use super::partition::{AppendInfo, PartitionLog, ReadResult};
use super::segment::now_ms;

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

    pub fn read(
        &self,
        offset: i64,
        max_bytes: usize,
        upper_bound: i64,
        min_one: bool,
    ) -> Result<ReadResult> {
        self.lock().read(offset, max_bytes, upper_bound, min_one)
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
