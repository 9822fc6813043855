//! The read path (Kafka's `ReplicaManager.fetchMessages` read side): consumers' reads up to the
//! high watermark or the last stable offset, and followers' fetches, which move the follower's
//! state, the ISR and the high watermark.

use std::sync::Arc;

use super::{FollowerRead, Partition, ReplicaManager, blocking, now_ms};
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
    /// diverging follower gets where to truncate and no data), reads up to the log end, and
    /// records the follower's position, which may move the high watermark or let it rejoin
    /// the ISR (the proposal is written by [`ReplicaManager::propose_isr`]). As in Kafka's
    /// ZooKeeper mode, only a broker the controller counts as live may join the ISR: one whose
    /// session expired while it was paused must register again first.
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
        let part = p.clone();
        let lag = self.lag_max_ms();
        let read = blocking(move || {
            // The log is held only to plan the read (and check the epoch); its file I/O runs
            // without it.
            let (read, (leader_leo, diverging)) = part.log.locate_with(|log| {
                let leo = log.log_end_offset();
                if last_fetched_epoch >= 0 {
                    let (epoch, end) = log.end_offset_for_epoch(last_fetched_epoch);
                    if end < fetch_offset || epoch < last_fetched_epoch {
                        return Ok((log.no_read(), (leo, Some((epoch, end)))));
                    }
                }
                let snapshot = log.read_snapshot(fetch_offset, max_bytes, leo, min_one)?;
                Ok((snapshot, (leo, None)))
            })?;
            let records = read.records;
            let now = now_ms();
            let mut r = part.replication();
            let mut proposal = None;
            let mut moved = None;
            if diverging.is_none()
                && let Some(f) = r.followers.get_mut(&replica_id)
            {
                let caught_up_at = if fetch_offset >= leader_leo {
                    Some(now)
                } else if fetch_offset >= f.last_fetch_leader_leo {
                    Some(f.last_fetch_ms)
                } else {
                    None
                };
                if let Some(t) = caught_up_at {
                    f.last_caught_up_ms = f.last_caught_up_ms.max(t);
                }
                let advanced = f.log_end_offset != fetch_offset;
                f.log_end_offset = fetch_offset;
                f.log_start_offset = follower_log_start;
                f.last_fetch_leader_leo = f.last_fetch_leader_leo.max(leader_leo);
                f.last_fetch_ms = now;
                let mut log = part.log.lock();
                // Kafka's maybeExpandIsr: caught up with the HW and with this epoch's data.
                if part.is_leader()
                    && replica_live
                    && r.pending_isr.is_none()
                    && !r.stale
                    && !r.isr.contains(&replica_id)
                    && fetch_offset >= log.high_watermark()
                    && fetch_offset >= r.epoch_start_offset
                {
                    let mut isr = r.isr.clone();
                    isr.push(replica_id);
                    proposal = Some(r.propose(isr.clone(), isr, part.leader_epoch()));
                }
                if advanced || proposal.is_some() {
                    moved = part.maybe_increment_hw(&r, &mut log, now, lag);
                }
            }
            drop(r);
            let log = part.log.lock();
            Ok((
                FollowerRead {
                    records,
                    high_watermark: log.high_watermark(),
                    log_start_offset: log.log_start_offset(),
                    diverging,
                    isr_proposal: proposal,
                },
                moved,
            ))
        })
        .await;
        let (read, moved) = read?;
        if let Some(hw) = moved {
            p.publish_hw(hw);
        }
        Ok(read)
    }
}
