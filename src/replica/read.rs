//! The read path (Kafka's `ReplicaManager.fetchMessages` read side): consumers' reads up to the
//! high watermark or the last stable offset, and followers' fetches, which move the follower's
//! state, the ISR and the high watermark.

use std::sync::Arc;

use super::{FollowerFetch, FollowerRead, Partition, ReplicaManager, blocking, now_ms};
use crate::log::txn_index::AbortedTxn;
use crate::log::{FileRegion, LogError, PartitionLog, ReadResult};

impl ReplicaManager {
    /// A read_committed read: up to the last stable offset, with the aborted transactions the
    /// consumer must skip.
    pub async fn read_committed(
        &self,
        p: &Arc<Partition>,
        offset: i64,
        max_bytes: usize,
        min_one: bool,
    ) -> Result<(ReadResult<Option<FileRegion>>, Vec<AbortedTxn>), LogError> {
        let plan = move |log: &PartitionLog| {
            let lso = log.last_stable_offset();
            let snapshot = log.read_snapshot(offset, max_bytes, lso, min_one)?;
            // The `.txnindex` entries are kept in memory: this is no file I/O.
            let aborted = if snapshot.reads_nothing() {
                Vec::new()
            } else {
                log.aborted_transactions(offset, lso)
            };
            Ok((snapshot, aborted))
        };
        let (read, aborted) = match p.log.try_locate_now(plan) {
            Some(located) => located?,
            None => {
                let part = p.clone();
                // The log is held only to plan the read; its file I/O runs without it.
                blocking(move || part.log.locate_with(plan)).await?
            }
        };
        let aborted = if read.records.is_none() {
            Vec::new()
        } else {
            aborted
        };
        Ok((read, aborted))
    }

    pub async fn read(
        &self,
        p: &Arc<Partition>,
        offset: i64,
        max_bytes: usize,
        min_one: bool,
    ) -> Result<ReadResult, LogError> {
        let part = p.clone();
        blocking(move || {
            // The log is held only to plan the read; its file I/O runs without it.
            part.log
                .read_with(|log| {
                    let hw = log.high_watermark();
                    Ok((log.read_snapshot(offset, max_bytes, hw, min_one)?, ()))
                })
                .map(|(read, ())| read)
        })
        .await
    }

    /// A consumer's read (up to the high watermark) that locates the records in the segment
    /// file for the fetch to send from there, instead of reading them.
    pub async fn locate(
        &self,
        p: &Arc<Partition>,
        offset: i64,
        max_bytes: usize,
        min_one: bool,
    ) -> Result<ReadResult<Option<FileRegion>>, LogError> {
        let plan = move |log: &PartitionLog| {
            let hw = log.high_watermark();
            Ok((log.read_snapshot(offset, max_bytes, hw, min_one)?, ()))
        };
        // Hot data is located here, on the runtime thread; only what may wait for the disk
        // or the log's lock pays the hop to the blocking pool.
        let (read, ()) = match p.log.try_locate_now(plan) {
            Some(located) => located?,
            None => {
                let part = p.clone();
                blocking(move || part.log.locate_with(plan)).await?
            }
        };
        Ok(read)
    }

    /// A follower's fetch at the leader: checks `last_fetched_epoch` against our epochs (a
    /// diverging follower gets where to truncate and no data), locates up to the log end for
    /// the fetch to send from the segment file, and records the follower's position, which may
    /// move the high watermark or let it rejoin the ISR (the proposal is written by
    /// [`ReplicaManager::propose_isr`]). As in Kafka's ZooKeeper mode, only a broker the
    /// controller counts as live may join the ISR: one whose session expired while it was
    /// paused must register again first.
    ///
    /// As a consumer's [`ReplicaManager::locate`], hot data and free locks are handled here on
    /// the runtime thread; only what would wait for the disk or for a lock an append holds
    /// across its write goes to the blocking pool.
    #[allow(clippy::too_many_arguments)]
    pub async fn read_for_follower(
        &self,
        p: &Arc<Partition>,
        replica_id: i32,
        replica_live: bool,
        fetch_offset: i64,
        last_fetched_epoch: i32,
        follower_log_start: i64,
        max_bytes: usize,
        min_one: bool,
    ) -> Result<FollowerRead, LogError> {
        let plan = move |log: &PartitionLog| {
            let leo = log.log_end_offset();
            if last_fetched_epoch >= 0 {
                let (epoch, end) = log.end_offset_for_epoch(last_fetched_epoch);
                if end < fetch_offset || epoch < last_fetched_epoch {
                    return Ok((log.no_read(), (leo, Some((epoch, end)))));
                }
            }
            let snapshot = log.read_snapshot(fetch_offset, max_bytes, leo, min_one)?;
            Ok((snapshot, (leo, None)))
        };
        let (read, (leader_leo, diverging)) = match p.log.try_locate_now(plan) {
            Some(located) => located?,
            None => {
                let part = p.clone();
                // The log is held only to plan the read (and check the epoch); its file I/O
                // runs without it.
                blocking(move || part.log.locate_with(plan)).await?
            }
        };
        let fetch = FollowerFetch {
            replica_id,
            replica_live,
            fetch_offset,
            log_start_offset: follower_log_start,
            leader_leo,
            diverging: diverging.is_some(),
            now: now_ms(),
            lag_max_ms: self.lag_max_ms(),
        };
        // Recorded here when both locks are free (lock order: the replication state, then
        // the log), else on the blocking pool.
        let recorded_here = p.try_replication().and_then(|mut r| {
            Some(p.record_follower_fetch(&mut r, &mut *p.log.try_lock()?, &fetch))
        });
        let recorded = match recorded_here {
            Some(recorded) => recorded,
            None => {
                let part = p.clone();
                blocking(move || {
                    let mut r = part.replication();
                    let mut log = part.log.lock();
                    Ok(part.record_follower_fetch(&mut r, &mut log, &fetch))
                })
                .await?
            }
        };
        if let Some(hw) = recorded.moved_hw {
            p.publish_hw(hw);
        }
        Ok(FollowerRead {
            records: read.records,
            high_watermark: recorded.high_watermark,
            log_start_offset: recorded.log_start_offset,
            diverging,
            isr_proposal: recorded.isr_proposal,
        })
    }
}
