//! The leader's append path (Kafka's `ReplicaManager.appendRecords`, `DelayedProduce`): a
//! producer's or coordinator's batch into the leader's log, the acks=all wait for the ISR, and
//! transaction markers.

use std::sync::Arc;

use bytes::Bytes;

use super::acks_stall::AcksStall;
use super::{AcksError, HwView, Partition, ReplicaError, ReplicaManager, blocking, now_ms};
use crate::log::{AppendInfo, LogError};

impl ReplicaManager {
    /// Appends a batch as leader without waiting for followers (acks=1, internal topics).
    pub async fn append(&self, p: &Arc<Partition>, records: Bytes) -> Result<AppendInfo, LogError> {
        self.append_as_producer(p, records, false).await
    }

    /// Appends a producer's batch as leader. With `acks_all`, as in Kafka, the append is
    /// refused while the ISR is smaller than the topic's `min.insync.replicas`; the caller then
    /// waits with [`ReplicaManager::wait_for_acks`].
    pub async fn append_as_producer(
        &self,
        p: &Arc<Partition>,
        records: Bytes,
        acks_all: bool,
    ) -> Result<AppendInfo, LogError> {
        // The write may wait for the disk, so it runs on the blocking pool; but one hop per
        // batch is most of the broker's cost at high rates (two thread wake-ups per produce
        // request). Batches are queued instead, and one writer drains the queue: requests
        // that arrive while it writes (pipelined on a connection, or from other producers)
        // ride along without a hop of their own. The queue keeps their order, which is the
        // order their first poll reached this point.
        let (done, appended) = tokio::sync::oneshot::channel();
        let start_writer = {
            let mut q = p.appends.lock().unwrap_or_else(|e| e.into_inner());
            q.jobs.push_back(AppendJob {
                records,
                acks_all,
                done,
            });
            !std::mem::replace(&mut q.writing, true)
        };
        if start_writer {
            let writer = QueueWriter {
                partition: p.clone(),
                lag_max_ms: self.lag_max_ms(),
                finished: false,
            };
            tokio::task::spawn_blocking(move || writer.run());
        }
        let appended = appended.await.unwrap_or_else(|_| {
            Err(LogError::io(
                "<append queue>",
                std::io::Error::other("the partition's writer stopped"),
            ))
        });
        self.check_storage(p, appended).await
    }

    /// The broker's own acks=all write (a coordinator's state): appended as
    /// [`ReplicaManager::append_as_producer`] does, then acknowledged once the ISR has it, or
    /// not within `timeout`. Fails with whichever step failed.
    pub async fn append_acked(
        &self,
        p: &Arc<Partition>,
        records: Bytes,
        timeout: std::time::Duration,
    ) -> Result<AppendInfo, ReplicaError> {
        let info = self.append_as_producer(p, records, true).await?;
        self.wait_for_acks(p, info.last_offset, timeout).await?;
        Ok(info)
    }

    /// acks=all: waits until the high watermark passes `last_offset` (woken by the follower
    /// fetches that move it, never by polling), or `timeout`.
    pub async fn wait_for_acks(
        &self,
        p: &Arc<Partition>,
        last_offset: i64,
        timeout: std::time::Duration,
    ) -> Result<(), AcksError> {
        let mut rx = p.hw.subscribe();
        // Kafka's DelayedProduce fails a waiting produce only when this broker no longer leads
        // (`Partition.checkEnoughReplicasReachOffset`): a leader epoch bump that keeps it the
        // leader (an ISR change, a new controller's LeaderAndIsr) leaves the record in the log
        // and the wait goes on. Failing it would make a producer without idempotence retry and
        // write the record twice.
        let terms = rx.borrow().leader_terms;
        let lost = |v: &HwView| !v.leading || v.leader_terms != terms;
        let view = match tokio::time::timeout(
            timeout,
            rx.wait_for(|v| v.high_watermark > last_offset || lost(v)),
        )
        .await
        {
            Err(_) => {
                p.report_acks_stall(&p.replication(), AcksStall::TimedOut, None);
                return Err(AcksError::TimedOut);
            }
            Ok(Err(_)) => return Err(AcksError::NotLeader),
            Ok(Ok(v)) => *v, // a copy: the channel's read guard must not live across an await
        };
        if lost(&view) {
            return Err(AcksError::NotLeader);
        }
        // Not `p.log.lock()`: this runs on a runtime thread, and the partition's writer holds
        // the log across its appends.
        let Ok(min) = p.inspect_log(|log| log.config().min_insync_replicas).await else {
            return Err(AcksError::TimedOut); // the blocking pool is gone: shutting down
        };
        let r = p.replication();
        if r.maximal_isr_len() < r.effective_min_isr(min) {
            p.report_acks_stall(&r, AcksStall::ShrankAfterAppend, Some(min));
            return Err(AcksError::NotEnoughReplicasAfterAppend);
        }
        Ok(())
    }

    /// Writes a transaction marker as leader (WriteTxnMarkers), refused while the ISR is
    /// smaller than `min.insync.replicas`; the high watermark moves as for any other append,
    /// once the ISR has the marker.
    pub async fn append_marker(
        &self,
        p: &Arc<Partition>,
        producer_id: i64,
        producer_epoch: i16,
        commit: bool,
        coordinator_epoch: i32,
    ) -> Result<AppendInfo, LogError> {
        let part = p.clone();
        let lag = self.lag_max_ms();
        let appended = blocking(move || {
            // Kafka appends markers with acks=-1, so min.insync.replicas applies; the
            // coordinator retries until the ISR is back. Checked as a producer's append is,
            // without holding the replication state across the write: follower fetches on the
            // runtime threads take it.
            let min = part.log.lock().config().min_insync_replicas;
            part.check_min_isr(min)?;
            let info = part.log.lock().append_marker_as_leader(
                producer_id,
                producer_epoch,
                commit,
                coordinator_epoch,
                part.leader_epoch(),
            )?;
            // The replication state before the log, as every other path takes them.
            let r = part.replication();
            let mut log = part.log.lock();
            let hw = part.maybe_increment_hw(&r, &mut log, now_ms(), lag);
            Ok((info, hw))
        })
        .await;
        let (info, hw) = self.check_storage(p, appended).await?;
        match hw {
            Some(hw) => p.publish_hw(hw),
            None => p.appended.notify_waiters(),
        }
        Ok(info)
    }
}

/// Producer appends of one partition, in the order they were asked for, and whether a writer
/// on the blocking pool is draining them.
#[derive(Default)]
pub(super) struct AppendQueue {
    jobs: std::collections::VecDeque<AppendJob>,
    writing: bool,
}

struct AppendJob {
    records: Bytes,
    acks_all: bool,
    done: tokio::sync::oneshot::Sender<Result<AppendInfo, LogError>>,
}

/// The writer of one partition's queued appends, running on the blocking pool. Should it never
/// run (the runtime shutting down) or stop in a panic, dropping it fails what is queued and
/// lets the next producer start a new writer, so no append waits forever.
struct QueueWriter {
    partition: Arc<Partition>,
    lag_max_ms: i64,
    finished: bool,
}

impl QueueWriter {
    /// Appends what is queued, batch after batch in queue order, until the queue is empty.
    fn run(mut self) {
        let p = self.partition.clone();
        loop {
            let jobs = {
                let mut q = p.appends.lock().unwrap_or_else(|e| e.into_inner());
                if q.jobs.is_empty() {
                    q.writing = false;
                    self.finished = true;
                    return;
                }
                std::mem::take(&mut q.jobs)
            };
            for job in jobs {
                let appended = p.append_now(&job.records, job.acks_all, self.lag_max_ms);
                // A producer that gave up waiting is no reason to stop the others.
                let _ = job.done.send(appended);
            }
        }
    }
}

impl Drop for QueueWriter {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        let mut q = self
            .partition
            .appends
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        q.writing = false;
        q.jobs.clear();
    }
}

impl Partition {
    /// An acks=all append (a producer's or a transaction marker) is refused before it is
    /// written while the ISR is smaller than `min.insync.replicas`; the refusal is logged.
    fn check_min_isr(&self, min_insync: i32) -> Result<(), LogError> {
        let r = self.replication();
        r.check_min_isr(min_insync).inspect_err(|_| {
            self.report_acks_stall(&r, AcksStall::Refused, Some(min_insync));
        })
    }

    /// One producer batch appended as leader, on the blocking pool: refused while the ISR is
    /// below `min.insync.replicas` for acks=all, then the high watermark moved (or fetches
    /// woken) at once, in append order.
    pub(super) fn append_now(
        &self,
        records: &Bytes,
        acks_all: bool,
        lag_max_ms: i64,
    ) -> Result<AppendInfo, LogError> {
        if acks_all {
            let min = self.log.lock().config().min_insync_replicas;
            self.check_min_isr(min)?;
        }
        let info = self.log.append_as_leader(records, self.leader_epoch())?;
        let hw = {
            let r = self.replication();
            let mut log = self.log.lock();
            self.maybe_increment_hw(&r, &mut log, now_ms(), lag_max_ms)
        };
        match hw {
            Some(hw) => self.publish_hw(hw),
            None => self.appended.notify_waiters(),
        }
        Ok(info)
    }
}
