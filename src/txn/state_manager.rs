//! The transaction state manager (Kafka's `TransactionStateManager`): the in-memory metadata of
//! each transactional id, which `__transaction_state` partitions this broker coordinates and at
//! which coordinator epoch, writing state records (and tombstones), loading a partition when
//! this broker becomes its leader, and the timer that aborts timed-out transactions and expires
//! idle transactional ids.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::watch;

use super::records::{self, TxnState, TxnValue};
use super::{TRANSACTION_STATE_TOPIC, TransactionCoordinator, TxnError, now_ms};
use crate::log::records::{BatchBuilder, NewRecord, decode_batch};
use crate::log::{LogError, batch};
use crate::replica::election_tasks::{Election, ElectionHandler};
use crate::replica::{AcksError, ReplicaError};

/// `transaction.state.log.load.buffer.size`.
const LOAD_BUFFER: usize = 5 * 1024 * 1024;

pub(super) struct TxnMetadata {
    pub(super) value: TxnValue,
    /// The `__transaction_state` partition the id lives in.
    pub(super) partition: i32,
    pub(super) last_producer_id: i64,
    pub(super) last_producer_epoch: i16,
    /// A transition being written: requests meanwhile get CONCURRENT_TRANSACTIONS.
    pub(super) pending: Option<TxnState>,
}

/// A transition decided under the lock, to be written and then applied.
pub(super) struct Transit {
    pub(super) partition: i32,
    pub(super) coordinator_epoch: i32,
    pub(super) target: TxnValue,
}

impl TransactionCoordinator {
    pub(super) fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, TxnMetadata>> {
        self.txns.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn state_partitions(&self) -> i32 {
        self.cache
            .topic(TRANSACTION_STATE_TOPIC)
            .map(|t| t.partitions.len() as i32)
            .filter(|&n| n > 0)
            .unwrap_or(self.config.transaction_state_log_num_partitions)
    }

    /// The `__transaction_state` partition of a transactional id (the group formula).
    pub fn partition_for(&self, transactional_id: &str) -> i32 {
        crate::group::records::partition_for(transactional_id, self.state_partitions())
    }

    /// This broker's coordinator epoch for the id's partition, or why it cannot answer.
    pub(super) fn coordinator_epoch(&self, partition: i32) -> Result<i32, TxnError> {
        if self.loading.contains(partition) {
            return Err(TxnError::CoordinatorLoadInProgress);
        }
        self.loaded
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&partition)
            .copied()
            .ok_or(TxnError::NotCoordinator)
    }

    pub(super) fn still_coordinator(&self, partition: i32, epoch: i32) -> bool {
        !self.stopping.load(Ordering::Acquire)
            && self
                .loaded
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(&partition)
                == Some(&epoch)
    }

    /// Writes a transactional id's new state to its partition (Kafka's `appendTransactionToLog`,
    /// with its error mapping).
    async fn write(&self, transactional_id: &str, transit: &Transit) -> Result<(), TxnError> {
        self.write_record(
            transactional_id,
            transit.partition,
            transit.coordinator_epoch,
            Some(records::value(&transit.target)),
        )
        .await
    }

    /// Appends one record for the id, a tombstone when `value` is `None`.
    async fn write_record(
        &self,
        transactional_id: &str,
        state_partition: i32,
        coordinator_epoch: i32,
        value: Option<Vec<u8>>,
    ) -> Result<(), TxnError> {
        let Some(partition) = self
            .replicas
            .leader(TRANSACTION_STATE_TOPIC, state_partition)
        else {
            return Err(TxnError::NotCoordinator);
        };
        if partition.leader_epoch() != coordinator_epoch {
            return Err(TxnError::NotCoordinator);
        }
        let now = now_ms();
        let bytes = BatchBuilder {
            records: vec![NewRecord {
                timestamp: now,
                key: Some(records::key(transactional_id)),
                value,
                headers: Vec::new(),
            }],
            ..BatchBuilder::default()
        }
        .build()
        .map_err(|_| TxnError::UnknownServerError)?;
        // As Kafka (TransactionLog.EnforcedRequiredAcks): acknowledged once the ISR has it, so
        // that a new coordinator after a failover reads every state the clients were told of.
        let written = self
            .replicas
            .append_acked(
                &partition,
                Bytes::from(bytes),
                std::time::Duration::from_millis(self.config.request_timeout_ms),
            )
            .await
            .map(|_| ())
            .inspect_err(|e| {
                tracing::warn!(
                    transactional_id,
                    error = %e,
                    "cannot write transaction state"
                );
            });
        written.map_err(|e| write_failure(&e))
    }

    /// Applies (or, on failure, forgets) a transition written with `write`.
    fn finish(&self, transactional_id: &str, transit: &Transit, ok: bool) {
        let mut txns = self.lock();
        if let Some(m) = txns.get_mut(transactional_id) {
            m.pending = None;
            if ok {
                m.value = transit.target.clone();
            }
        }
    }

    pub(super) async fn write_and_apply(
        &self,
        transactional_id: &str,
        transit: &Transit,
    ) -> Result<(), TxnError> {
        let written = self.write(transactional_id, transit).await;
        // The coordinator may have moved while the append ran.
        let ok =
            written.is_ok() && self.still_coordinator(transit.partition, transit.coordinator_epoch);
        self.finish(transactional_id, transit, ok);
        match written {
            Ok(()) if !ok => Err(TxnError::NotCoordinator),
            other => other,
        }
    }

    // -------------------------------------------------------------------------------------
    // Loading, timeouts
    // -------------------------------------------------------------------------------------

    /// Kafka's `onElection`: this broker leads `__transaction_state` partition `index` at a
    /// new leader epoch. Its ids answer COORDINATOR_LOAD_IN_PROGRESS from now until the
    /// partition, read in the background, is loaded.
    pub fn elected(self: &Arc<Self>, index: i32) {
        self.loading.begin(index);
        self.elections.schedule(self, Election::Elected(index));
    }

    /// Kafka's `onResignation`: this broker no longer leads partition `index`; its ids go
    /// once the loads queued before have run.
    pub fn resigned(self: &Arc<Self>, index: i32) {
        self.elections.schedule(self, Election::Resigned(index));
    }

    /// Replays `__transaction_state` partition `index` (which `elected` marked loading) and
    /// finishes the transactions it finds prepared. Ongoing ones are left to their timeout.
    async fn load_partition(self: &Arc<Self>, index: i32) -> Result<(), LogError> {
        let outcome = self.read_partition(index).await;
        self.loading.end(index);
        outcome
    }

    async fn read_partition(self: &Arc<Self>, index: i32) -> Result<(), LogError> {
        let Some(partition) = self.replicas.leader(TRANSACTION_STATE_TOPIC, index) else {
            return Ok(());
        };
        let coordinator_epoch = partition.leader_epoch();
        if self
            .loaded
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&index)
            == Some(&coordinator_epoch)
        {
            return Ok(());
        }
        let mut found: HashMap<String, Option<TxnValue>> = HashMap::new();
        self.replay(&partition, &mut found).await?;
        let mut prepared = Vec::new();
        {
            let mut txns = self.lock();
            txns.retain(|_, m| m.partition != index);
            for (id, value) in found {
                let Some(value) = value else { continue };
                if matches!(
                    value.state,
                    TxnState::PrepareCommit | TxnState::PrepareAbort
                ) {
                    prepared.push((id.clone(), value.clone()));
                }
                txns.insert(
                    id,
                    TxnMetadata {
                        value,
                        partition: index,
                        last_producer_id: -1,
                        last_producer_epoch: -1,
                        pending: None,
                    },
                );
            }
        }
        self.loaded
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(index, coordinator_epoch);
        tracing::info!(
            partition = index,
            coordinator_epoch,
            prepared = prepared.len(),
            "loaded transactions from {TRANSACTION_STATE_TOPIC}"
        );
        for (id, value) in prepared {
            let me = self.clone();
            let transit = Transit {
                partition: index,
                coordinator_epoch,
                target: value,
            };
            tokio::spawn(async move { me.complete_transaction(id, transit).await });
        }
        Ok(())
    }

    /// Reads a partition from its start to its end; the last record per id wins.
    async fn replay(
        &self,
        partition: &Arc<crate::replica::Partition>,
        found: &mut HashMap<String, Option<TxnValue>>,
    ) -> Result<(), LogError> {
        let mut offset = partition.log.lock().log_start_offset();
        loop {
            let read = self
                .replicas
                .read(partition, offset, LOAD_BUFFER, true)
                .await?;
            if read.records.is_empty() {
                return Ok(());
            }
            let before = offset;
            let buf = &read.records;
            let mut pos = 0;
            while pos < buf.len() {
                let Some(size) = batch::entry_size(&buf[pos..]).map(|s| s as usize) else {
                    break;
                };
                if size == 0 || pos + size > buf.len() {
                    break;
                }
                let (header, recs) = decode_batch(&buf[pos..pos + size])?;
                pos += size;
                offset = offset.max(header.next_offset());
                if header.is_control() {
                    continue;
                }
                for r in recs {
                    let Some(key) = r.key else { continue };
                    let id = match records::decode_key(&key) {
                        Ok(Some(id)) => id,
                        Ok(None) => continue,
                        Err(e) => {
                            tracing::warn!(error = %e, "skipping transaction state record");
                            continue;
                        }
                    };
                    match r.value.as_deref().map(records::decode_value) {
                        None => {
                            found.insert(id, None);
                        }
                        Some(Ok(v)) => {
                            found.insert(id, Some(v));
                        }
                        Some(Err(e)) => {
                            tracing::warn!(transactional_id = id, error = %e, "skipping transaction state record")
                        }
                    }
                }
            }
            if offset <= before {
                return Ok(());
            }
        }
    }

    /// This broker no longer leads `__transaction_state` partition `index`.
    pub fn unload_partition(&self, index: i32) {
        let was_loaded = self
            .loaded
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&index)
            .is_some();
        self.lock().retain(|_, m| m.partition != index);
        if was_loaded {
            tracing::info!(partition = index, "unloaded transactions");
        }
    }

    /// Forgets transactional ids idle longer than `transactional.id.expiration.ms` with no
    /// transaction open (Kafka's `removeExpiredTransactionalIds`): each gets a tombstone, so
    /// compaction drops its records and a reload does not bring it back.
    async fn expire_transactional_ids(&self) {
        let now = now_ms();
        let expiration =
            i64::try_from(self.config.transactional_id_expiration_ms).unwrap_or(i64::MAX);
        let expired: Vec<(String, i32, TxnValue)> = {
            let mut txns = self.lock();
            txns.iter_mut()
                .filter(|(_, m)| {
                    m.pending.is_none()
                        && matches!(
                            m.value.state,
                            TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort
                        )
                        && now.saturating_sub(m.value.last_update_timestamp) >= expiration
                })
                .map(|(id, m)| {
                    m.pending = Some(TxnState::Dead);
                    (id.clone(), m.partition, m.value.clone())
                })
                .collect()
        };
        for (id, partition, value) in expired {
            let written = match self.coordinator_epoch(partition) {
                Ok(epoch) => self.write_record(&id, partition, epoch, None).await,
                Err(code) => Err(code),
            };
            let mut txns = self.lock();
            match written {
                Ok(()) if txns.get(&id).is_some_and(|m| m.value == value) => {
                    txns.remove(&id);
                    tracing::info!(transactional_id = id, "expired transactional id");
                }
                _ => {
                    if let Some(m) = txns.get_mut(&id) {
                        m.pending = None;
                    }
                }
            }
        }
    }

    /// Aborts ongoing transactions past their timeout, every
    /// `transaction.abort.timed.out.transaction.cleanup.interval.ms`, and expires idle
    /// transactional ids every `transaction.remove.expired.transaction.cleanup.interval.ms`,
    /// until shutdown.
    pub async fn run_timer(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let interval = Duration::from_millis(
            self.config
                .transaction_abort_timed_out_transaction_cleanup_interval_ms,
        );
        let expire_every = Duration::from_millis(
            self.config
                .transaction_remove_expired_transaction_cleanup_interval_ms,
        );
        let mut next_expiry = tokio::time::Instant::now() + expire_every;
        loop {
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = shutdown.changed() => {
                    self.stopping.store(true, Ordering::Release);
                    return;
                }
            }
            if *shutdown.borrow() {
                self.stopping.store(true, Ordering::Release);
                return;
            }
            let now = now_ms();
            let expired: Vec<String> = self
                .lock()
                .iter()
                .filter(|(_, m)| {
                    m.pending.is_none()
                        && m.value.state == TxnState::Ongoing
                        && m.value.start_timestamp + i64::from(m.value.timeout_ms) < now
                })
                .map(|(id, _)| id.clone())
                .collect();
            for id in expired {
                tracing::info!(
                    transactional_id = id,
                    "aborting transaction past its timeout"
                );
                if let Err(code) = self.fence_and_abort(&id).await {
                    tracing::warn!(
                        transactional_id = id,
                        error = %code,
                        "cannot abort timed-out transaction"
                    );
                }
            }
            if tokio::time::Instant::now() >= next_expiry {
                self.expire_transactional_ids().await;
                next_expiry = tokio::time::Instant::now() + expire_every;
            }
        }
    }
}

impl ElectionHandler for TransactionCoordinator {
    async fn elected(self: Arc<Self>, index: i32) {
        if let Err(e) = self.load_partition(index).await {
            tracing::error!(partition = index, error = %e, "cannot load transactions");
        }
    }

    fn resigned(&self, index: i32) {
        self.unload_partition(index);
    }
}

/// Kafka's `appendTransactionToLog` callback: a state write the ISR did not take (too few
/// replicas, timed out) answers COORDINATOR_NOT_AVAILABLE, one this broker could not make as
/// leader (no longer leading, its disk failed) NOT_COORDINATOR, anything else
/// UNKNOWN_SERVER_ERROR.
fn write_failure(e: &ReplicaError) -> TxnError {
    match e {
        ReplicaError::Log(LogError::NotEnoughReplicas { .. })
        | ReplicaError::Acks(AcksError::NotEnoughReplicasAfterAppend | AcksError::TimedOut) => {
            TxnError::CoordinatorNotAvailable
        }
        ReplicaError::Acks(AcksError::NotLeader) => TxnError::NotCoordinator,
        ReplicaError::Log(e) if e.is_storage() => TxnError::NotCoordinator,
        ReplicaError::Log(_) => TxnError::UnknownServerError,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_state_write_answers_as_kafkas_coordinator_does() {
        let log = |e: LogError| ReplicaError::Log(e);
        let table = [
            (
                log(LogError::NotEnoughReplicas { in_sync: 1, min: 2 }),
                TxnError::CoordinatorNotAvailable,
            ),
            (
                ReplicaError::Acks(AcksError::NotEnoughReplicasAfterAppend),
                TxnError::CoordinatorNotAvailable,
            ),
            (
                ReplicaError::Acks(AcksError::TimedOut),
                TxnError::CoordinatorNotAvailable,
            ),
            (
                ReplicaError::Acks(AcksError::NotLeader),
                TxnError::NotCoordinator,
            ),
            (
                log(LogError::io("/x", std::io::Error::other("disk"))),
                TxnError::NotCoordinator,
            ),
            (
                log(LogError::MessageTooLarge { size: 2, max: 1 }),
                TxnError::UnknownServerError,
            ),
            (
                log(LogError::CorruptMessage("x".into())),
                TxnError::UnknownServerError,
            ),
        ];
        for (error, expected) in table {
            assert_eq!(write_failure(&error), expected, "{error:?}");
        }
    }
}
