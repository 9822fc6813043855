//! AddPartitionsToTxn and AddOffsetsToTxn (Kafka's
//! `TransactionCoordinator.handleAddPartitionsToTransaction`): a transaction starts or grows by
//! the partitions the producer will write (for AddOffsetsToTxn, the `__consumer_offsets`
//! partition of its group); and the checks of AddPartitionsToTxn v4+ `verify_only` and of a
//! transactional produce on this broker.

use super::TxnError;
use super::records::TxnState;
use super::state_manager::Transit;
use super::{TransactionCoordinator, now_ms};

impl TransactionCoordinator {
    // -------------------------------------------------------------------------------------
    // AddPartitionsToTxn, AddOffsetsToTxn
    // -------------------------------------------------------------------------------------

    /// Adds partitions to the producer's transaction, starting it if none is open.
    pub async fn add_partitions(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        partitions: &[(String, i32)],
    ) -> Result<(), TxnError> {
        if transactional_id.is_empty() {
            return Err(TxnError::InvalidRequest);
        }
        let partition = self.partition_for(transactional_id);
        let coordinator_epoch = self.coordinator_epoch(partition)?;
        let now = now_ms();
        let transit = {
            let mut txns = self.lock();
            let m = txns
                .get_mut(transactional_id)
                .ok_or(TxnError::InvalidProducerIdMapping)?;
            if m.value.producer_id != producer_id {
                return Err(TxnError::InvalidProducerIdMapping);
            }
            if m.value.producer_epoch != producer_epoch {
                return Err(TxnError::ProducerFenced);
            }
            if m.pending.is_some() {
                return Err(TxnError::ConcurrentTransactions);
            }
            match m.value.state {
                TxnState::PrepareCommit | TxnState::PrepareAbort => {
                    return Err(TxnError::ConcurrentTransactions);
                }
                TxnState::Dead | TxnState::PrepareEpochFence => {
                    return Err(TxnError::ConcurrentTransactions);
                }
                TxnState::Ongoing if partitions.iter().all(|p| m.value.partitions.contains(p)) => {
                    return Ok(());
                }
                _ => {}
            }
            let mut target = m.value.clone();
            if target.state != TxnState::Ongoing {
                target.start_timestamp = now;
            }
            target.state = TxnState::Ongoing;
            target.partitions.extend(partitions.iter().cloned());
            target.last_update_timestamp = now;
            m.pending = Some(TxnState::Ongoing);
            Transit {
                partition,
                coordinator_epoch,
                target,
            }
        };
        self.write_and_apply(transactional_id, &transit).await
    }

    /// AddPartitionsToTxn v4+ `verify_only` (and the produce path's check): whether each
    /// partition is in the producer's open transaction.
    pub fn verify_partitions(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        partitions: &[(String, i32)],
    ) -> Result<Vec<Result<(), TxnError>>, TxnError> {
        let partition = self.partition_for(transactional_id);
        self.coordinator_epoch(partition)?;
        let txns = self.lock();
        let m = txns
            .get(transactional_id)
            .ok_or(TxnError::InvalidProducerIdMapping)?;
        if m.value.producer_id != producer_id {
            return Err(TxnError::InvalidProducerIdMapping);
        }
        if m.value.producer_epoch != producer_epoch {
            return Err(TxnError::ProducerFenced);
        }
        Ok(partitions
            .iter()
            .map(|p| {
                if m.value.state == TxnState::Ongoing && m.value.partitions.contains(p) {
                    Ok(())
                } else {
                    Err(TxnError::InvalidTxnState)
                }
            })
            .collect())
    }

    /// Whether a transactional produce to `topic`/`partition` may go ahead: `None` when it
    /// may, or when another broker coordinates the id (then the coordinator checked it when
    /// the partition was added), else the error Kafka's verification gives. On the produce
    /// path: one map lookup, no metadata copied.
    pub fn check_produce(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        topic: &str,
        partition: i32,
    ) -> Option<TxnError> {
        let txns = self.lock();
        let m = txns.get(transactional_id)?;
        if m.value.producer_id != producer_id {
            return Some(TxnError::InvalidTxnState);
        }
        if m.value.producer_epoch != producer_epoch {
            return Some(TxnError::InvalidProducerEpoch);
        }
        let added = m.value.state == TxnState::Ongoing
            && m.value
                .partitions
                .iter()
                .any(|(t, p)| t == topic && *p == partition);
        (!added).then_some(TxnError::InvalidTxnState)
    }
}
