//! Why a controller operation failed; `api::errors` maps each to the code the client gets.

use crate::config::ConfigError;
use crate::metadata::store::StoreError;

use super::assignment;

/// Why a topic operation failed, as the Kafka error the client gets.
#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    #[error("topic {0} already exists")]
    TopicExists(String),
    #[error("topic {0} does not exist")]
    UnknownTopic(String),
    #[error("{0}")]
    InvalidTopic(String),
    #[error("{0}")]
    InvalidPartitions(String),
    #[error("{0}")]
    InvalidReplicationFactor(String),
    #[error("{0}")]
    InvalidReplicaAssignment(String),
    #[error(transparent)]
    InvalidConfig(#[from] ConfigError),
    #[error("topic deletion is disabled (delete.topic.enable=false)")]
    DeletionDisabled,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Log(#[from] crate::log::LogError),
    #[error("{0}")]
    TimedOut(String),
    #[error(transparent)]
    IncompleteRacks(#[from] assignment::IncompleteRacks),
    /// This broker is not the active controller, or stopped being it while a request waited.
    #[error("This is not the controller.")]
    NotController,
    #[error("broker {0} is not registered")]
    BrokerNotAvailable(i32),
    #[error("broker epoch {request} is older than broker {broker}'s registration ({current})")]
    StaleBrokerEpoch {
        broker: i32,
        request: i64,
        current: i64,
    },
}

/// Why one partition of an ElectLeaders or AlterPartitionReassignments request was not done
/// (the request as a whole goes on: each partition answers for itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartitionRefusal {
    UnknownTopicOrPartition,
    /// The topic is being deleted.
    TopicBeingDeleted,
    ElectionNotNeeded,
    PreferredLeaderNotAvailable,
    EligibleLeadersNotAvailable,
    InvalidReplicaAssignment,
    NoReassignmentInProgress,
}

/// Why the controller refused one partition's ISR change in AlterPartition (Kafka's
/// `KafkaController.processAlterPartition` checks); the leader retries or gives up on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IsrRefusal {
    UnknownTopicId,
    UnknownTopicOrPartition,
    /// The leader knows a newer state than this controller: it may have been replaced.
    NotController,
    FencedLeaderEpoch,
    /// Stale partition epoch, or another write got there first.
    InvalidUpdateVersion,
    InvalidRequest,
    /// A proposed member is offline or shutting down (KIP-841).
    IneligibleReplica,
}
