//! InitProducerId with a transactional id (Kafka's `TransactionCoordinator.handleInitProducerId`
//! and `prepareInitProducerIdTransit`): the producer id and its epoch bumps, a new producer id
//! once the epoch is exhausted, and the fencing of an earlier producer with the same id.

use std::collections::BTreeSet;
use std::sync::Arc;

use super::TxnError;
use super::producer_ids::ProducerIdManager;
use super::records::{TxnState, TxnValue};
use super::state_manager::{Transit, TxnMetadata};
use super::{TransactionCoordinator, now_ms};

/// Kafka's `TransactionMetadata.isEpochExhausted`: the last epoch is kept for fencing.
fn epoch_exhausted(epoch: i16) -> bool {
    epoch >= i16::MAX - 1
}

impl TransactionCoordinator {
    // -------------------------------------------------------------------------------------
    // InitProducerId
    // -------------------------------------------------------------------------------------

    /// InitProducerId with a transactional id: the producer id and its new epoch. `expected`
    /// is the id and epoch the producer had (v3+, KIP-360), when it says.
    pub async fn init_producer_id(
        self: &Arc<Self>,
        transactional_id: &str,
        timeout_ms: i32,
        expected: Option<(i64, i16)>,
        producer_ids: &ProducerIdManager,
    ) -> Result<(i64, i16), TxnError> {
        if transactional_id.is_empty() {
            return Err(TxnError::InvalidRequest);
        }
        if timeout_ms <= 0 || timeout_ms > self.config.transaction_max_timeout_ms {
            return Err(TxnError::InvalidTransactionTimeout);
        }
        let partition = self.partition_for(transactional_id);
        let coordinator_epoch = self.coordinator_epoch(partition)?;
        let exists = self.lock().contains_key(transactional_id);
        if !exists {
            let id = producer_ids.next_id().await.map_err(|e| {
                tracing::warn!(error = %e, "could not allocate a producer id");
                TxnError::CoordinatorNotAvailable
            })?;
            self.lock()
                .entry(transactional_id.to_string())
                .or_insert_with(|| TxnMetadata {
                    value: TxnValue {
                        producer_id: id,
                        producer_epoch: -1,
                        timeout_ms,
                        state: TxnState::Empty,
                        partitions: BTreeSet::new(),
                        last_update_timestamp: now_ms(),
                        start_timestamp: -1,
                    },
                    partition,
                    last_producer_id: -1,
                    last_producer_epoch: -1,
                    pending: None,
                });
        }
        // An exhausted epoch needs a new producer id, which is allocated without the lock.
        let rotate_to = {
            let txns = self.lock();
            match txns.get(transactional_id) {
                Some(m) if epoch_exhausted(m.value.producer_epoch) => Some(()),
                _ => None,
            }
        };
        let new_id = match rotate_to {
            Some(()) => Some(producer_ids.next_id().await.map_err(|e| {
                tracing::warn!(error = %e, "could not allocate a producer id");
                TxnError::CoordinatorNotAvailable
            })?),
            None => None,
        };
        let now = now_ms();
        let transit = match self.init_transit(
            transactional_id,
            timeout_ms,
            expected,
            new_id,
            partition,
            coordinator_epoch,
            now,
        )? {
            Some(t) => t,
            None => {
                // Abort the open transaction under a bumped epoch (fencing its producer); the
                // client retries and gets a second bump once the abort completes.
                self.fence_and_abort(transactional_id).await?;
                return Err(TxnError::ConcurrentTransactions);
            }
        };
        self.write_and_apply(transactional_id, &transit).await?;
        tracing::info!(
            transactional_id,
            producer_id = transit.target.producer_id,
            producer_epoch = transit.target.producer_epoch,
            "initialized transactional producer"
        );
        Ok((transit.target.producer_id, transit.target.producer_epoch))
    }

    /// Kafka's `prepareInitProducerIdTransit`: the Empty state with the bumped epoch (or a
    /// new producer id), or `None` when an ongoing transaction must be aborted first.
    #[allow(clippy::too_many_arguments)]
    fn init_transit(
        &self,
        transactional_id: &str,
        timeout_ms: i32,
        expected: Option<(i64, i16)>,
        new_id: Option<i64>,
        partition: i32,
        coordinator_epoch: i32,
        now: i64,
    ) -> Result<Option<Transit>, TxnError> {
        {
            let mut txns = self.lock();
            let m = txns
                .get_mut(transactional_id)
                .ok_or(TxnError::NotCoordinator)?;
            if m.pending.is_some() {
                return Err(TxnError::ConcurrentTransactions);
            }
            if let Some((pid, epoch)) = expected {
                let valid = m.value.producer_epoch == -1
                    || pid == m.value.producer_id
                    || (pid == m.last_producer_id && epoch_exhausted(epoch));
                if !valid {
                    return Err(TxnError::ProducerFenced);
                }
            }
            match m.value.state {
                TxnState::PrepareAbort | TxnState::PrepareCommit => {
                    return Err(TxnError::ConcurrentTransactions);
                }
                TxnState::Ongoing => return Ok(None),
                TxnState::Dead | TxnState::PrepareEpochFence => {
                    return Err(TxnError::ConcurrentTransactions);
                }
                TxnState::Empty | TxnState::CompleteAbort | TxnState::CompleteCommit => {}
            }
            let mut target = m.value.clone();
            target.state = TxnState::Empty;
            target.partitions.clear();
            target.start_timestamp = -1;
            target.last_update_timestamp = now;
            target.timeout_ms = timeout_ms;
            let exhausted = epoch_exhausted(m.value.producer_epoch);
            match (exhausted, new_id) {
                (true, Some(id)) if expected.is_none_or(|(_, e)| e == m.value.producer_epoch) => {
                    m.last_producer_id = m.value.producer_id;
                    target.producer_id = id;
                    target.producer_epoch = 0;
                    m.last_producer_epoch = -1;
                }
                (true, _) => return Err(TxnError::ConcurrentTransactions),
                (false, _) => {
                    let bumped = m.value.producer_epoch + 1;
                    match expected {
                        None => {
                            target.producer_epoch = bumped;
                            m.last_producer_epoch = -1;
                        }
                        Some((_, e))
                            if m.value.producer_epoch == -1 || e == m.value.producer_epoch =>
                        {
                            target.producer_epoch = bumped;
                            m.last_producer_epoch = m.value.producer_epoch;
                        }
                        // A retry after a bump whose answer was lost.
                        Some((_, e)) if e == m.last_producer_epoch => {}
                        Some(_) => return Err(TxnError::ProducerFenced),
                    }
                }
            }
            m.pending = Some(TxnState::Empty);
            Ok(Some(Transit {
                partition,
                coordinator_epoch,
                target,
            }))
        }
    }

    /// Bumps the epoch of an ongoing transaction (its producer is fenced from now on) and
    /// aborts it: a second producer with the same id, or the transaction's timeout.
    pub(super) async fn fence_and_abort(
        self: &Arc<Self>,
        transactional_id: &str,
    ) -> Result<(), TxnError> {
        let (pid, epoch) = {
            let mut txns = self.lock();
            let m = txns
                .get_mut(transactional_id)
                .ok_or(TxnError::NotCoordinator)?;
            if m.pending.is_some() {
                return Err(TxnError::ConcurrentTransactions);
            }
            if m.value.state != TxnState::Ongoing {
                return Err(TxnError::ConcurrentTransactions);
            }
            // Kafka keeps the last epoch value for exactly this bump. As in Kafka, the bump
            // stays even if the abort cannot be written: the old producer is fenced either way.
            if m.value.producer_epoch < i16::MAX {
                m.value.producer_epoch += 1;
                m.last_producer_epoch = -1;
            }
            (m.value.producer_id, m.value.producer_epoch)
        };
        self.end_transaction(transactional_id, pid, epoch, false, false)
            .await
    }
}
