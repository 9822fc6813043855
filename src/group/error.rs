//! Why the group coordinator refused or could not complete a request. Each variant is one of
//! the conditions Kafka's `GroupCoordinator` reports; `kafka_error_code` is the code the client
//! sees for it.

use kafka_protocol::ResponseError;

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

impl GroupError {
    /// The Kafka protocol error code a client should see for this failure.
    pub fn kafka_error_code(self) -> i16 {
        match self {
            GroupError::InvalidGroupId => ResponseError::InvalidGroupId,
            GroupError::CoordinatorNotAvailable => ResponseError::CoordinatorNotAvailable,
            GroupError::NotCoordinator => ResponseError::NotCoordinator,
            GroupError::CoordinatorLoadInProgress => ResponseError::CoordinatorLoadInProgress,
            GroupError::InvalidSessionTimeout => ResponseError::InvalidSessionTimeout,
            GroupError::UnknownMemberId => ResponseError::UnknownMemberId,
            GroupError::MemberIdRequired => ResponseError::MemberIdRequired,
            GroupError::IllegalGeneration => ResponseError::IllegalGeneration,
            GroupError::RebalanceInProgress => ResponseError::RebalanceInProgress,
            GroupError::GroupMaxSizeReached => ResponseError::GroupMaxSizeReached,
            GroupError::InconsistentGroupProtocol => ResponseError::InconsistentGroupProtocol,
            GroupError::FencedInstanceId => ResponseError::FencedInstanceId,
            GroupError::GroupIdNotFound => ResponseError::GroupIdNotFound,
            GroupError::NonEmptyGroup => ResponseError::NonEmptyGroup,
            GroupError::GroupSubscribedToTopic => ResponseError::GroupSubscribedToTopic,
            GroupError::OffsetMetadataTooLarge => ResponseError::OffsetMetadataTooLarge,
            GroupError::UnknownServerError => ResponseError::UnknownServerError,
        }
        .code()
    }
}

/// Why an append to `__consumer_offsets` failed.
#[derive(Debug, thiserror::Error)]
pub(super) enum AppendError {
    #[error(transparent)]
    Coordinator(#[from] GroupError),
    #[error(transparent)]
    Log(#[from] LogError),
    /// The leader refused the append, or its ISR did not take the records
    /// (NOT_LEADER_OR_FOLLOWER, REQUEST_TIMED_OUT, NOT_ENOUGH_REPLICAS_AFTER_APPEND, ...).
    #[error(transparent)]
    Replication(#[from] ReplicaError),
}

impl AppendError {
    fn log_code(&self) -> i16 {
        match self {
            AppendError::Coordinator(e) => e.kafka_error_code(),
            AppendError::Replication(e) => e.kafka_error_code(),
            AppendError::Log(e) => e.kafka_error_code(),
        }
    }

    /// Kafka's `maybeConvertOffsetCommitError`.
    pub(super) fn offset_commit_code(&self) -> i16 {
        match self {
            AppendError::Coordinator(e) => e.kafka_error_code(),
            AppendError::Log(_) | AppendError::Replication(_) => {
                let code = self.log_code();
                match ResponseError::try_from_code(code) {
                    Some(
                        ResponseError::UnknownTopicOrPartition
                        | ResponseError::NotEnoughReplicas
                        | ResponseError::NotEnoughReplicasAfterAppend
                        | ResponseError::RequestTimedOut,
                    ) => ResponseError::CoordinatorNotAvailable.code(),
                    Some(ResponseError::NotLeaderOrFollower | ResponseError::KafkaStorageError) => {
                        ResponseError::NotCoordinator.code()
                    }
                    Some(
                        ResponseError::MessageTooLarge
                        | ResponseError::RecordListTooLarge
                        | ResponseError::InvalidFetchSize,
                    ) => ResponseError::InvalidCommitOffsetSize.code(),
                    _ => code,
                }
            }
        }
    }

    /// The group metadata append in SyncGroup maps differently (GroupCoordinator.doSyncGroup).
    pub(super) fn group_metadata_code(&self) -> i16 {
        match self {
            AppendError::Coordinator(e) => e.kafka_error_code(),
            AppendError::Log(_) | AppendError::Replication(_) => {
                match ResponseError::try_from_code(self.log_code()) {
                    Some(
                        ResponseError::UnknownTopicOrPartition
                        | ResponseError::NotEnoughReplicas
                        | ResponseError::NotEnoughReplicasAfterAppend,
                    ) => ResponseError::CoordinatorNotAvailable.code(),
                    Some(ResponseError::NotLeaderOrFollower | ResponseError::KafkaStorageError) => {
                        ResponseError::NotCoordinator.code()
                    }
                    Some(ResponseError::RequestTimedOut) => {
                        ResponseError::RebalanceInProgress.code()
                    }
                    _ => ResponseError::UnknownServerError.code(),
                }
            }
        }
    }
}
