//! Why the transaction coordinator refused or could not complete a request. Each variant is one
//! of the conditions Kafka's `TransactionCoordinator` reports; `api::errors` maps each to the code
//! the client sees (and translates for old clients, e.g. PRODUCER_FENCED).

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TxnError {
    #[error("invalid request (empty transactional id)")]
    InvalidRequest,
    #[error("transaction timeout out of range")]
    InvalidTransactionTimeout,
    #[error("the transaction coordinator is not available")]
    CoordinatorNotAvailable,
    #[error("this broker is not the transaction coordinator")]
    NotCoordinator,
    #[error("the transaction coordinator is still loading")]
    CoordinatorLoadInProgress,
    #[error("the producer id does not belong to this transactional id")]
    InvalidProducerIdMapping,
    #[error("the producer has been fenced by a newer epoch")]
    ProducerFenced,
    #[error("the producer epoch is not the current one")]
    InvalidProducerEpoch,
    #[error("another operation on this transactional id is in progress")]
    ConcurrentTransactions,
    #[error("the transaction's state does not allow this")]
    InvalidTxnState,
    #[error("unknown transactional id")]
    TransactionalIdNotFound,
    #[error("unexpected failure writing transaction state")]
    UnknownServerError,
}
