//! Why the transaction coordinator refused or could not complete a request. Each variant is one
//! of the conditions Kafka's `TransactionCoordinator` reports; `kafka_error_code` is the code the
//! client sees for it (the api layer may still translate, e.g. PRODUCER_FENCED for old clients).

use kafka_protocol::ResponseError;

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

impl TxnError {
    /// The Kafka protocol error code a client should see for this failure.
    pub fn kafka_error_code(self) -> i16 {
        match self {
            TxnError::InvalidRequest => ResponseError::InvalidRequest,
            TxnError::InvalidTransactionTimeout => ResponseError::InvalidTransactionTimeout,
            TxnError::CoordinatorNotAvailable => ResponseError::CoordinatorNotAvailable,
            TxnError::NotCoordinator => ResponseError::NotCoordinator,
            TxnError::CoordinatorLoadInProgress => ResponseError::CoordinatorLoadInProgress,
            TxnError::InvalidProducerIdMapping => ResponseError::InvalidProducerIdMapping,
            TxnError::ProducerFenced => ResponseError::ProducerFenced,
            TxnError::InvalidProducerEpoch => ResponseError::InvalidProducerEpoch,
            TxnError::ConcurrentTransactions => ResponseError::ConcurrentTransactions,
            TxnError::InvalidTxnState => ResponseError::InvalidTxnState,
            TxnError::TransactionalIdNotFound => ResponseError::TransactionalIdNotFound,
            TxnError::UnknownServerError => ResponseError::UnknownServerError,
        }
        .code()
    }
}
