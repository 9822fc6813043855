//! The leader's append path (Kafka's `ReplicaManager.appendRecords`, `DelayedProduce`): a
//! producer's or coordinator's batch into the leader's log, the acks=all wait for the ISR, and
//! transaction markers.

use std::sync::Arc;

use bytes::Bytes;

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
        let part = p.clone();
        let lag = self.lag_max_ms();
        let appended = blocking(move || {
            if acks_all {
                let min = part.log.lock().config().min_insync_replicas;
                part.replication().check_min_isr(min)?;
            }
            let info = part.log.append_as_leader(&records, part.leader_epoch())?;
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
        let waited = tokio::time::timeout(
            timeout,
            rx.wait_for(|v| v.high_watermark > last_offset || lost(v)),
        )
        .await;
        let view = match waited {
            Err(_) => return Err(AcksError::TimedOut),
            Ok(Err(_)) => return Err(AcksError::NotLeader),
            Ok(Ok(v)) => *v,
        };
        if lost(&view) {
            return Err(AcksError::NotLeader);
        }
        let min = p.log.lock().config().min_insync_replicas;
        let r = p.replication();
        if r.maximal_isr_len() < r.effective_min_isr(min) {
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
            part.replication().check_min_isr(min)?;
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
