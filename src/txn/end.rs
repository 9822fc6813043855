//! EndTxn (Kafka's `TransactionCoordinator.handleEndTransaction`): the checks, and the move of
//! an ongoing transaction to PrepareCommit/PrepareAbort, after which `markers` writes the
//! markers and the CompleteCommit/CompleteAbort state.

use std::sync::Arc;

use super::TxnError;
use super::records::TxnState;
use super::state_manager::Transit;
use super::{TransactionCoordinator, now_ms};

impl TransactionCoordinator {
    // -------------------------------------------------------------------------------------
    // EndTxn
    // -------------------------------------------------------------------------------------

    /// EndTxn from a client (`from_client`), or the coordinator's own abort (fencing, timeout).
    pub async fn end_transaction(
        self: &Arc<Self>,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        commit: bool,
        from_client: bool,
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
            if (from_client && producer_epoch != m.value.producer_epoch)
                || producer_epoch < m.value.producer_epoch
            {
                return Err(TxnError::ProducerFenced);
            }
            if m.pending.is_some() {
                return Err(TxnError::ConcurrentTransactions);
            }
            let invalid = || {
                tracing::debug!(
                    transactional_id,
                    state = m.value.state.name(),
                    commit,
                    "EndTxn in a state that does not allow it"
                );
                TxnError::InvalidTxnState
            };
            match (m.value.state, commit) {
                (TxnState::Ongoing, _) => {}
                (TxnState::CompleteCommit, true) | (TxnState::CompleteAbort, false) => {
                    return Ok(());
                }
                (TxnState::PrepareCommit, true) | (TxnState::PrepareAbort, false) => {
                    return Err(TxnError::ConcurrentTransactions);
                }
                _ => return Err(invalid()),
            }
            let mut target = m.value.clone();
            target.state = if commit {
                TxnState::PrepareCommit
            } else {
                TxnState::PrepareAbort
            };
            target.last_update_timestamp = now;
            m.pending = Some(target.state);
            Transit {
                partition,
                coordinator_epoch,
                target,
            }
        };
        self.write_and_apply(transactional_id, &transit).await?;
        tracing::debug!(
            transactional_id,
            commit,
            partitions = transit.target.partitions.len(),
            "transaction prepared; writing markers"
        );
        let me = self.clone();
        let id = transactional_id.to_string();
        tokio::spawn(async move { me.complete_transaction(id, transit).await });
        Ok(())
    }
}
