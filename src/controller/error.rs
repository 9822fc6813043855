//! Why a controller operation failed; `kafka_error_code` is the code the client gets.

use kafka_protocol::ResponseError;

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

impl ControllerError {
    pub fn kafka_error_code(&self) -> i16 {
        match self {
            ControllerError::TopicExists(_) => ResponseError::TopicAlreadyExists.code(),
            ControllerError::UnknownTopic(_) => ResponseError::UnknownTopicOrPartition.code(),
            ControllerError::InvalidTopic(_) => ResponseError::InvalidTopicException.code(),
            ControllerError::InvalidPartitions(_) => ResponseError::InvalidPartitions.code(),
            ControllerError::InvalidReplicationFactor(_) => {
                ResponseError::InvalidReplicationFactor.code()
            }
            ControllerError::InvalidReplicaAssignment(_) => {
                ResponseError::InvalidReplicaAssignment.code()
            }
            ControllerError::InvalidConfig(_) => ResponseError::InvalidConfig.code(),
            ControllerError::DeletionDisabled => ResponseError::TopicDeletionDisabled.code(),
            // Retriable for the client, which looks the controller up again.
            ControllerError::Store(_) => ResponseError::NotController.code(),
            ControllerError::Log(e) => e.kafka_error_code(),
            ControllerError::TimedOut(_) => ResponseError::RequestTimedOut.code(),
            // Kafka's AdminOperationException is no ApiException: UNKNOWN_SERVER_ERROR.
            ControllerError::IncompleteRacks(_) => ResponseError::UnknownServerError.code(),
            ControllerError::NotController => ResponseError::NotController.code(),
            ControllerError::BrokerNotAvailable(_) => ResponseError::BrokerNotAvailable.code(),
            ControllerError::StaleBrokerEpoch { .. } => ResponseError::StaleBrokerEpoch.code(),
        }
    }
}
