//! Why the replica manager could not complete an append: the log refused the records, or the
//! ISR did not take them in time (the codes they answer as are in `api/errors.rs`).

use crate::log::LogError;

/// Why a produce with acks=all did not complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AcksError {
    #[error("this broker stopped leading the partition before the ISR had the records")]
    NotLeader,
    #[error("the ISR did not have the records in time")]
    TimedOut,
    #[error("the ISR shrank below min.insync.replicas after the append")]
    NotEnoughReplicasAfterAppend,
}

/// Why an acknowledged append
/// ([`ReplicaManager::append_acked`](super::ReplicaManager::append_acked)) failed: the log
/// refused the records, or the ISR did not take them.
#[derive(Debug, thiserror::Error)]
pub enum ReplicaError {
    #[error(transparent)]
    Log(#[from] LogError),
    #[error(transparent)]
    Acks(#[from] AcksError),
}
