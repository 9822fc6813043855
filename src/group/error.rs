//! Why the group coordinator refused or could not complete a request. Each variant is one of
//! the conditions Kafka's `GroupCoordinator` reports; `api::errors` maps each to the code the
//! client sees.

use std::sync::Arc;

use crate::log::LogError;
use crate::replica::ReplicaError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum GroupError {
    #[error("invalid group id")]
    InvalidGroupId,
    #[error("the group coordinator is not available")]
    CoordinatorNotAvailable,
    #[error("this broker is not the group's coordinator")]
    NotCoordinator,
    #[error("the group coordinator is still loading")]
    CoordinatorLoadInProgress,
    #[error("session timeout out of the broker's range")]
    InvalidSessionTimeout,
    #[error("unknown member id")]
    UnknownMemberId,
    #[error("the member must rejoin with the member id it was given")]
    MemberIdRequired,
    #[error("illegal generation")]
    IllegalGeneration,
    #[error("the group is rebalancing")]
    RebalanceInProgress,
    #[error("the group has reached group.max.size")]
    GroupMaxSizeReached,
    #[error("the member's protocols match none of the group's")]
    InconsistentGroupProtocol,
    #[error("another member uses this group.instance.id")]
    FencedInstanceId,
    #[error("the group does not exist")]
    GroupIdNotFound,
    #[error("the group has members")]
    NonEmptyGroup,
    #[error("the group's members subscribe to the topic")]
    GroupSubscribedToTopic,
    #[error("offset metadata exceeds offset.metadata.max.bytes")]
    OffsetMetadataTooLarge,
    #[error("unexpected failure in the group coordinator")]
    UnknownServerError,
}

/// Why a write of the group's (an offset commit, the group's metadata) failed: the coordinator
/// refused it, or the append to `__consumer_offsets` failed. The api layer answers the latter as
/// Kafka's coordinator converts it, which differs between commits and SyncGroup. Shared (`Arc`)
/// because one failed append is every offset's answer and every waiting member's.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AppendError {
    #[error(transparent)]
    Coordinator(#[from] GroupError),
    #[error(transparent)]
    Log(Arc<LogError>),
    /// The leader refused the append, or its ISR did not take the records
    /// (NOT_LEADER_OR_FOLLOWER, REQUEST_TIMED_OUT, NOT_ENOUGH_REPLICAS_AFTER_APPEND, ...).
    #[error(transparent)]
    Replication(Arc<ReplicaError>),
}

impl From<LogError> for AppendError {
    fn from(e: LogError) -> Self {
        AppendError::Log(Arc::new(e))
    }
}

impl From<ReplicaError> for AppendError {
    fn from(e: ReplicaError) -> Self {
        AppendError::Replication(Arc::new(e))
    }
}
