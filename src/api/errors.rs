//! Kafka error codes as the api layer answers them: kafka-protocol's `ResponseError` names
//! every code it knows (`ResponseError::X.code()`), `protocol::errors` holds what it lacks, and this
//! module maps each layer's error enum to the code a client sees ([`KafkaCode`]) and holds the
//! rules that choose between codes. No layer below `api` classifies its own errors by code.

use kafka_protocol::ResponseError;

use crate::controller::{ControllerError, IsrRefusal, PartitionRefusal};
use crate::group::{AppendError, GroupError};
use crate::log::LogError;
use crate::metadata::cache::StaleRequest;
use crate::metadata::delegation_tokens::TokenError;
use crate::replica::{AcksError, ReplicaError};
use crate::txn::TxnError;

pub use crate::protocol::errors::{INELIGIBLE_REPLICA, NONE, UNSUPPORTED_ENDPOINT_TYPE};

/// The Kafka error a layer's error answers as. Every layer's enum is mapped here, and only here.
pub trait KafkaCode {
    fn response_error(&self) -> ResponseError;

    /// The code a response carries for this error.
    fn kafka_error_code(&self) -> i16 {
        self.response_error().code()
    }
}

/// The code of an outcome: NONE, or its error's.
pub fn code_or_none<E: KafkaCode>(error: Option<&E>) -> i16 {
    error.map_or(NONE, KafkaCode::kafka_error_code)
}

impl KafkaCode for LogError {
    fn response_error(&self) -> ResponseError {
        match self {
            LogError::CorruptMessage(_) => ResponseError::CorruptMessage,
            LogError::InvalidRecord(_) => ResponseError::InvalidRecord,
            LogError::MessageTooLarge { .. } => ResponseError::MessageTooLarge,
            LogError::InvalidTimestamp(_) => ResponseError::InvalidTimestamp,
            LogError::NotEnoughReplicas { .. } => ResponseError::NotEnoughReplicas,
            LogError::UnsupportedCompression(_) => ResponseError::UnsupportedCompressionType,
            LogError::OffsetOutOfRange { .. } => ResponseError::OffsetOutOfRange,
            LogError::OutOfOrderSequence(_) => ResponseError::OutOfOrderSequenceNumber,
            LogError::InvalidProducerEpoch(_) => ResponseError::InvalidProducerEpoch,
            LogError::TransactionCoordinatorFenced(_) => {
                ResponseError::TransactionCoordinatorFenced
            }
            // KAFKA_STORAGE_ERROR: the replica's disk failed us, the client may retry elsewhere.
            LogError::BadCheckpoint { .. } | LogError::BadLogDir { .. } | LogError::Io { .. } => {
                ResponseError::KafkaStorageError
            }
        }
    }
}

impl KafkaCode for AcksError {
    fn response_error(&self) -> ResponseError {
        match self {
            AcksError::NotLeader => ResponseError::NotLeaderOrFollower,
            AcksError::TimedOut => ResponseError::RequestTimedOut,
            AcksError::NotEnoughReplicasAfterAppend => ResponseError::NotEnoughReplicasAfterAppend,
        }
    }
}

impl KafkaCode for ReplicaError {
    fn response_error(&self) -> ResponseError {
        match self {
            ReplicaError::Log(e) => e.response_error(),
            ReplicaError::Acks(e) => e.response_error(),
        }
    }
}

impl KafkaCode for StaleRequest {
    fn response_error(&self) -> ResponseError {
        match self {
            StaleRequest::ControllerEpoch { .. } => ResponseError::StaleControllerEpoch,
            StaleRequest::BrokerEpoch { .. } => ResponseError::StaleBrokerEpoch,
        }
    }
}

impl KafkaCode for TokenError {
    fn response_error(&self) -> ResponseError {
        match self {
            TokenError::Disabled => ResponseError::DelegationTokenAuthDisabled,
            TokenError::NotFound => ResponseError::DelegationTokenNotFound,
            TokenError::OwnerMismatch => ResponseError::DelegationTokenOwnerMismatch,
            TokenError::Expired => ResponseError::DelegationTokenExpired,
            TokenError::Store(_) => ResponseError::UnknownServerError,
        }
    }
}

impl KafkaCode for ControllerError {
    fn response_error(&self) -> ResponseError {
        match self {
            ControllerError::TopicExists(_) => ResponseError::TopicAlreadyExists,
            ControllerError::UnknownTopic(_) => ResponseError::UnknownTopicOrPartition,
            ControllerError::InvalidTopic(_) => ResponseError::InvalidTopicException,
            ControllerError::InvalidPartitions(_) => ResponseError::InvalidPartitions,
            ControllerError::InvalidReplicationFactor(_) => ResponseError::InvalidReplicationFactor,
            ControllerError::InvalidReplicaAssignment(_) => ResponseError::InvalidReplicaAssignment,
            ControllerError::InvalidConfig(_) => ResponseError::InvalidConfig,
            ControllerError::DeletionDisabled => ResponseError::TopicDeletionDisabled,
            // Retriable for the client, which looks the controller up again.
            ControllerError::Store(_) => ResponseError::NotController,
            ControllerError::Log(e) => e.response_error(),
            ControllerError::TimedOut(_) => ResponseError::RequestTimedOut,
            // Kafka's AdminOperationException is no ApiException: UNKNOWN_SERVER_ERROR.
            ControllerError::IncompleteRacks(_) => ResponseError::UnknownServerError,
            ControllerError::NotController => ResponseError::NotController,
            ControllerError::BrokerNotAvailable(_) => ResponseError::BrokerNotAvailable,
            ControllerError::StaleBrokerEpoch { .. } => ResponseError::StaleBrokerEpoch,
        }
    }
}

impl KafkaCode for PartitionRefusal {
    fn response_error(&self) -> ResponseError {
        match self {
            PartitionRefusal::UnknownTopicOrPartition => ResponseError::UnknownTopicOrPartition,
            PartitionRefusal::TopicBeingDeleted => ResponseError::InvalidTopicException,
            PartitionRefusal::ElectionNotNeeded => ResponseError::ElectionNotNeeded,
            PartitionRefusal::PreferredLeaderNotAvailable => {
                ResponseError::PreferredLeaderNotAvailable
            }
            PartitionRefusal::EligibleLeadersNotAvailable => {
                ResponseError::EligibleLeadersNotAvailable
            }
            PartitionRefusal::InvalidReplicaAssignment => ResponseError::InvalidReplicaAssignment,
            PartitionRefusal::NoReassignmentInProgress => ResponseError::NoReassignmentInProgress,
        }
    }
}

impl KafkaCode for GroupError {
    fn response_error(&self) -> ResponseError {
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
    }
}

impl KafkaCode for TxnError {
    fn response_error(&self) -> ResponseError {
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
    }
}

/// The code AlterPartition answers a refused partition with. INELIGIBLE_REPLICA is new in v2
/// (KIP-841): older leaders get OPERATION_NOT_ATTEMPTED.
pub fn isr_refusal_code(refusal: IsrRefusal, version: i16) -> i16 {
    match refusal {
        IsrRefusal::UnknownTopicId => ResponseError::UnknownTopicId.code(),
        IsrRefusal::UnknownTopicOrPartition => ResponseError::UnknownTopicOrPartition.code(),
        IsrRefusal::NotController => ResponseError::NotController.code(),
        IsrRefusal::FencedLeaderEpoch => ResponseError::FencedLeaderEpoch.code(),
        IsrRefusal::InvalidUpdateVersion => ResponseError::InvalidUpdateVersion.code(),
        IsrRefusal::InvalidRequest => ResponseError::InvalidRequest.code(),
        IsrRefusal::IneligibleReplica if version > 1 => INELIGIBLE_REPLICA,
        IsrRefusal::IneligibleReplica => ResponseError::OperationNotAttempted.code(),
    }
}

/// A failed write to `__consumer_offsets` as the log or the ISR reported it (a refusal by the
/// coordinator itself answers as its own code).
impl KafkaCode for AppendError {
    fn response_error(&self) -> ResponseError {
        match self {
            AppendError::Coordinator(e) => e.response_error(),
            AppendError::Log(e) => e.response_error(),
            AppendError::Replication(e) => e.response_error(),
        }
    }
}

/// The code an offset commit answers when writing it failed: Kafka's
/// `GroupMetadataManager.maybeConvertOffsetCommitError`.
pub fn offset_commit_code(error: &AppendError) -> i16 {
    if let AppendError::Coordinator(e) = error {
        return e.kafka_error_code();
    }
    match error.response_error() {
        ResponseError::UnknownTopicOrPartition
        | ResponseError::NotEnoughReplicas
        | ResponseError::NotEnoughReplicasAfterAppend
        | ResponseError::RequestTimedOut => ResponseError::CoordinatorNotAvailable,
        ResponseError::NotLeaderOrFollower | ResponseError::KafkaStorageError => {
            ResponseError::NotCoordinator
        }
        ResponseError::MessageTooLarge
        | ResponseError::RecordListTooLarge
        | ResponseError::InvalidFetchSize => ResponseError::InvalidCommitOffsetSize,
        other => other,
    }
    .code()
}

/// The code SyncGroup answers when writing the group's assignment failed: Kafka's
/// `GroupCoordinator.doSyncGroup` maps the append's error differently from a commit's.
pub fn group_metadata_code(error: &AppendError) -> i16 {
    if let AppendError::Coordinator(e) = error {
        return e.kafka_error_code();
    }
    match error.response_error() {
        ResponseError::UnknownTopicOrPartition
        | ResponseError::NotEnoughReplicas
        | ResponseError::NotEnoughReplicasAfterAppend => ResponseError::CoordinatorNotAvailable,
        ResponseError::NotLeaderOrFollower | ResponseError::KafkaStorageError => {
            ResponseError::NotCoordinator
        }
        ResponseError::RequestTimedOut => ResponseError::RebalanceInProgress,
        _ => ResponseError::UnknownServerError,
    }
    .code()
}

/// KIP-320: a client that names the leader epoch it expects is told when it is behind
/// (fenced) or ahead (unknown) of this leader. -1 means it did not say.
pub fn leader_epoch_check(requested: i32, ours: i32) -> Option<i16> {
    match requested {
        r if r < 0 => None,
        r if r < ours => Some(ResponseError::FencedLeaderEpoch.code()),
        r if r > ours => Some(ResponseError::UnknownLeaderEpoch.code()),
        _ => None,
    }
}

/// Consumers before Fetch v6 do not know KAFKA_STORAGE_ERROR: Kafka tells them
/// NOT_LEADER_OR_FOLLOWER, so they look for the partition elsewhere.
pub fn storage_error_for_old_fetch(version: i16, code: i16) -> i16 {
    if version <= 5 && code == ResponseError::KafkaStorageError.code() {
        ResponseError::NotLeaderOrFollower.code()
    } else {
        code
    }
}

/// The code a transaction coordinator's refusal answers as. Clients older than KIP-588 know
/// INVALID_PRODUCER_EPOCH, not PRODUCER_FENCED.
pub fn txn_code(version: i16, first_with_fenced: i16, error: TxnError) -> i16 {
    if error == TxnError::ProducerFenced && version < first_with_fenced {
        ResponseError::InvalidProducerEpoch.code()
    } else {
        error.kafka_error_code()
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::config::ConfigError;
    use crate::controller::assignment::IncompleteRacks;
    use crate::metadata::store::StoreError;

    fn check<E: KafkaCode + std::fmt::Debug>(table: &[(E, ResponseError)]) {
        for (error, expected) in table {
            assert_eq!(error.response_error(), *expected, "{error:?}");
            assert_eq!(error.kafka_error_code(), expected.code(), "{error:?}");
        }
    }

    fn io() -> LogError {
        LogError::io("/x", std::io::Error::other("disk"))
    }

    fn log_table() -> Vec<(LogError, ResponseError)> {
        let s = || "x".to_string();
        let path = || PathBuf::from("/x");
        vec![
            (LogError::CorruptMessage(s()), ResponseError::CorruptMessage),
            (LogError::InvalidRecord(s()), ResponseError::InvalidRecord),
            (
                LogError::MessageTooLarge { size: 2, max: 1 },
                ResponseError::MessageTooLarge,
            ),
            (
                LogError::NotEnoughReplicas { in_sync: 1, min: 2 },
                ResponseError::NotEnoughReplicas,
            ),
            (
                LogError::InvalidTimestamp(s()),
                ResponseError::InvalidTimestamp,
            ),
            (
                LogError::UnsupportedCompression(9),
                ResponseError::UnsupportedCompressionType,
            ),
            (
                LogError::OffsetOutOfRange {
                    offset: 9,
                    log_start: 0,
                    log_end: 1,
                },
                ResponseError::OffsetOutOfRange,
            ),
            (
                LogError::OutOfOrderSequence(s()),
                ResponseError::OutOfOrderSequenceNumber,
            ),
            (
                LogError::InvalidProducerEpoch(s()),
                ResponseError::InvalidProducerEpoch,
            ),
            (
                LogError::TransactionCoordinatorFenced(s()),
                ResponseError::TransactionCoordinatorFenced,
            ),
            (
                LogError::BadCheckpoint {
                    path: path(),
                    reason: s(),
                },
                ResponseError::KafkaStorageError,
            ),
            (
                LogError::BadLogDir {
                    path: path(),
                    reason: s(),
                },
                ResponseError::KafkaStorageError,
            ),
            (io(), ResponseError::KafkaStorageError),
        ]
    }

    fn acks_table() -> Vec<(AcksError, ResponseError)> {
        vec![
            (AcksError::NotLeader, ResponseError::NotLeaderOrFollower),
            (AcksError::TimedOut, ResponseError::RequestTimedOut),
            (
                AcksError::NotEnoughReplicasAfterAppend,
                ResponseError::NotEnoughReplicasAfterAppend,
            ),
        ]
    }

    #[test]
    fn log_and_replica_errors() {
        check(&log_table());
        // `LogError::is_storage`, which coordinators convert by, says the same.
        for (e, code) in log_table() {
            assert_eq!(
                e.is_storage(),
                code == ResponseError::KafkaStorageError,
                "{e:?}"
            );
        }
        check(&acks_table());
        let wrapped: Vec<_> = log_table()
            .into_iter()
            .map(|(e, c)| (ReplicaError::Log(e), c))
            .chain(
                acks_table()
                    .into_iter()
                    .map(|(e, c)| (ReplicaError::Acks(e), c)),
            )
            .collect();
        check(&wrapped);
    }

    #[test]
    fn metadata_errors() {
        check(&[
            (
                StaleRequest::ControllerEpoch {
                    request: 1,
                    current: 2,
                },
                ResponseError::StaleControllerEpoch,
            ),
            (
                StaleRequest::BrokerEpoch {
                    request: 1,
                    current: 2,
                },
                ResponseError::StaleBrokerEpoch,
            ),
        ]);
        check(&[
            (
                TokenError::Disabled,
                ResponseError::DelegationTokenAuthDisabled,
            ),
            (TokenError::NotFound, ResponseError::DelegationTokenNotFound),
            (
                TokenError::OwnerMismatch,
                ResponseError::DelegationTokenOwnerMismatch,
            ),
            (TokenError::Expired, ResponseError::DelegationTokenExpired),
            (
                TokenError::Store(StoreError::Unavailable("x".into())),
                ResponseError::UnknownServerError,
            ),
        ]);
    }

    #[test]
    fn controller_errors() {
        let s = || "x".to_string();
        check(&[
            (
                ControllerError::TopicExists(s()),
                ResponseError::TopicAlreadyExists,
            ),
            (
                ControllerError::UnknownTopic(s()),
                ResponseError::UnknownTopicOrPartition,
            ),
            (
                ControllerError::InvalidTopic(s()),
                ResponseError::InvalidTopicException,
            ),
            (
                ControllerError::InvalidPartitions(s()),
                ResponseError::InvalidPartitions,
            ),
            (
                ControllerError::InvalidReplicationFactor(s()),
                ResponseError::InvalidReplicationFactor,
            ),
            (
                ControllerError::InvalidReplicaAssignment(s()),
                ResponseError::InvalidReplicaAssignment,
            ),
            (
                ControllerError::InvalidConfig(ConfigError {
                    key: s(),
                    value: s(),
                    reason: s(),
                }),
                ResponseError::InvalidConfig,
            ),
            (
                ControllerError::DeletionDisabled,
                ResponseError::TopicDeletionDisabled,
            ),
            (
                ControllerError::Store(StoreError::Unavailable(s())),
                ResponseError::NotController,
            ),
            (
                ControllerError::Log(LogError::InvalidRecord(s())),
                ResponseError::InvalidRecord,
            ),
            (ControllerError::Log(io()), ResponseError::KafkaStorageError),
            (
                ControllerError::TimedOut(s()),
                ResponseError::RequestTimedOut,
            ),
            (
                ControllerError::IncompleteRacks(IncompleteRacks { without: vec![1] }),
                ResponseError::UnknownServerError,
            ),
            (ControllerError::NotController, ResponseError::NotController),
            (
                ControllerError::BrokerNotAvailable(1),
                ResponseError::BrokerNotAvailable,
            ),
            (
                ControllerError::StaleBrokerEpoch {
                    broker: 1,
                    request: 1,
                    current: 2,
                },
                ResponseError::StaleBrokerEpoch,
            ),
        ]);
    }

    #[test]
    fn controller_partition_refusals() {
        use PartitionRefusal as P;
        use ResponseError as R;
        check(&[
            (P::UnknownTopicOrPartition, R::UnknownTopicOrPartition),
            (P::TopicBeingDeleted, R::InvalidTopicException),
            (P::ElectionNotNeeded, R::ElectionNotNeeded),
            (
                P::PreferredLeaderNotAvailable,
                R::PreferredLeaderNotAvailable,
            ),
            (
                P::EligibleLeadersNotAvailable,
                R::EligibleLeadersNotAvailable,
            ),
            (P::InvalidReplicaAssignment, R::InvalidReplicaAssignment),
            (P::NoReassignmentInProgress, R::NoReassignmentInProgress),
        ]);
    }

    #[test]
    fn alter_partition_refusals() {
        use IsrRefusal as I;
        use ResponseError as R;
        let table = [
            (I::UnknownTopicId, R::UnknownTopicId),
            (I::UnknownTopicOrPartition, R::UnknownTopicOrPartition),
            (I::NotController, R::NotController),
            (I::FencedLeaderEpoch, R::FencedLeaderEpoch),
            (I::InvalidUpdateVersion, R::InvalidUpdateVersion),
            (I::InvalidRequest, R::InvalidRequest),
        ];
        for version in 0..=3 {
            for (refusal, expected) in table {
                assert_eq!(isr_refusal_code(refusal, version), expected.code());
            }
        }
        assert_eq!(
            isr_refusal_code(I::IneligibleReplica, 1),
            R::OperationNotAttempted.code()
        );
        assert_eq!(
            isr_refusal_code(I::IneligibleReplica, 2),
            INELIGIBLE_REPLICA
        );
    }

    #[test]
    fn group_errors() {
        use GroupError as G;
        use ResponseError as R;
        check(&[
            (G::InvalidGroupId, R::InvalidGroupId),
            (G::CoordinatorNotAvailable, R::CoordinatorNotAvailable),
            (G::NotCoordinator, R::NotCoordinator),
            (G::CoordinatorLoadInProgress, R::CoordinatorLoadInProgress),
            (G::InvalidSessionTimeout, R::InvalidSessionTimeout),
            (G::UnknownMemberId, R::UnknownMemberId),
            (G::MemberIdRequired, R::MemberIdRequired),
            (G::IllegalGeneration, R::IllegalGeneration),
            (G::RebalanceInProgress, R::RebalanceInProgress),
            (G::GroupMaxSizeReached, R::GroupMaxSizeReached),
            (G::InconsistentGroupProtocol, R::InconsistentGroupProtocol),
            (G::FencedInstanceId, R::FencedInstanceId),
            (G::GroupIdNotFound, R::GroupIdNotFound),
            (G::NonEmptyGroup, R::NonEmptyGroup),
            (G::GroupSubscribedToTopic, R::GroupSubscribedToTopic),
            (G::OffsetMetadataTooLarge, R::OffsetMetadataTooLarge),
            (G::UnknownServerError, R::UnknownServerError),
        ]);
    }

    #[test]
    fn txn_errors() {
        use ResponseError as R;
        use TxnError as T;
        check(&[
            (T::InvalidRequest, R::InvalidRequest),
            (T::InvalidTransactionTimeout, R::InvalidTransactionTimeout),
            (T::CoordinatorNotAvailable, R::CoordinatorNotAvailable),
            (T::NotCoordinator, R::NotCoordinator),
            (T::CoordinatorLoadInProgress, R::CoordinatorLoadInProgress),
            (T::InvalidProducerIdMapping, R::InvalidProducerIdMapping),
            (T::ProducerFenced, R::ProducerFenced),
            (T::InvalidProducerEpoch, R::InvalidProducerEpoch),
            (T::ConcurrentTransactions, R::ConcurrentTransactions),
            (T::InvalidTxnState, R::InvalidTxnState),
            (T::TransactionalIdNotFound, R::TransactionalIdNotFound),
            (T::UnknownServerError, R::UnknownServerError),
        ]);
        // KIP-588: PRODUCER_FENCED only for clients that know it.
        assert_eq!(
            txn_code(2, 3, T::ProducerFenced),
            R::InvalidProducerEpoch.code()
        );
        assert_eq!(txn_code(3, 3, T::ProducerFenced), R::ProducerFenced.code());
        assert_eq!(
            txn_code(0, 3, T::ConcurrentTransactions),
            R::ConcurrentTransactions.code()
        );
    }

    #[test]
    fn failed_coordinator_appends() {
        use ResponseError as R;
        let log = |e: LogError| AppendError::from(e);
        let acks = |e: AcksError| AppendError::from(ReplicaError::Acks(e));
        let group = |e: GroupError| AppendError::from(e);
        // (error, as an offset commit answers it, as SyncGroup answers it)
        let table = [
            (
                log(LogError::NotEnoughReplicas { in_sync: 1, min: 2 }),
                R::CoordinatorNotAvailable,
                R::CoordinatorNotAvailable,
            ),
            (
                acks(AcksError::NotEnoughReplicasAfterAppend),
                R::CoordinatorNotAvailable,
                R::CoordinatorNotAvailable,
            ),
            (
                acks(AcksError::TimedOut),
                R::CoordinatorNotAvailable,
                R::RebalanceInProgress,
            ),
            (
                acks(AcksError::NotLeader),
                R::NotCoordinator,
                R::NotCoordinator,
            ),
            (log(io()), R::NotCoordinator, R::NotCoordinator),
            (
                log(LogError::MessageTooLarge { size: 2, max: 1 }),
                R::InvalidCommitOffsetSize,
                R::UnknownServerError,
            ),
            (
                log(LogError::CorruptMessage("x".into())),
                R::CorruptMessage,
                R::UnknownServerError,
            ),
            (
                group(GroupError::NotCoordinator),
                R::NotCoordinator,
                R::NotCoordinator,
            ),
            (
                group(GroupError::CoordinatorLoadInProgress),
                R::CoordinatorLoadInProgress,
                R::CoordinatorLoadInProgress,
            ),
        ];
        for (error, commit, sync) in &table {
            assert_eq!(offset_commit_code(error), commit.code(), "{error:?}");
            assert_eq!(group_metadata_code(error), sync.code(), "{error:?}");
        }
    }

    #[test]
    fn codes_kafka_protocol_lacks_are_still_unknown_to_it() {
        // When kafka-protocol learns this code, its variant replaces the constant here.
        assert_eq!(
            ResponseError::try_from_code(UNSUPPORTED_ENDPOINT_TYPE),
            Some(ResponseError::Unknown(UNSUPPORTED_ENDPOINT_TYPE))
        );
        assert_eq!(ResponseError::try_from_code(NONE), None);
    }
}
