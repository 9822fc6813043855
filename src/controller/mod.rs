//! The controller, as in Kafka's ZooKeeper mode. Every broker runs an elector that competes
//! for the ephemeral `/controller`; the winner becomes the active controller (`active`), which
//! owns partition leadership and tells brokers what to do over the Kafka protocol (`channel`).
//! Topic administration (`Controller::create_topic` and friends) runs on whichever broker a
//! client asked: like Kafka's AdminZkClient it only writes znodes, then waits for the active
//! controller's decisions to reach this broker's metadata cache.

pub mod active;
pub mod assignment;
pub mod channel;
mod elector;
mod error;
mod topics;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::config::{BrokerConfig, LogConfig};
use crate::log::TopicPartition;
use crate::metadata::{MetadataCache, MetadataStore};
use channel::LocalDelivery;

pub use error::{ControllerError, IsrRefusal, PartitionRefusal};
pub use topics::{is_topic_config, validate_topic_name};

/// One partition's outcome of a controller operation: a Kafka error code and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionResult {
    pub error: Option<PartitionRefusal>,
    pub message: Option<String>,
}

impl PartitionResult {
    pub fn ok() -> Self {
        PartitionResult {
            error: None,
            message: None,
        }
    }
    pub fn error(error: PartitionRefusal, message: impl Into<String>) -> Self {
        PartitionResult {
            error: Some(error),
            message: Some(message.into()),
        }
    }
}

/// A reassignment in progress, as ListPartitionReassignments reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reassignment {
    pub partition: TopicPartition,
    pub replicas: Vec<i32>,
    pub adding: Vec<i32>,
    pub removing: Vec<i32>,
}

/// Requests that only the active controller answers (Kafka sends them to the controller
/// broker), handed from this broker's API to its active controller's event loop.
pub enum Command {
    /// ControlledShutdown: the partitions the broker still leads afterwards, or an error code.
    ControlledShutdown {
        broker: i32,
        broker_epoch: i64,
        reply: oneshot::Sender<Result<Vec<TopicPartition>, ControllerError>>,
    },
    /// AlterPartition: a leader's ISR changes.
    AlterPartition {
        request: active::alter_partition::AlterPartition,
        reply: oneshot::Sender<active::alter_partition::AlterPartitionAnswer>,
    },
    /// AlterPartitionReassignments: a target replica list, or `None` to cancel.
    AlterReassignments {
        partitions: Vec<(TopicPartition, Option<Vec<i32>>)>,
        reply: oneshot::Sender<Vec<(TopicPartition, PartitionResult)>>,
    },
    /// ListPartitionReassignments: the given partitions, or all in progress.
    ListReassignments {
        partitions: Option<Vec<TopicPartition>>,
        reply: oneshot::Sender<Vec<Reassignment>>,
    },
    /// ElectLeaders: preferred (or, with `unclean`, offline-with-unclean) election of the given
    /// partitions, or all.
    ElectLeaders {
        unclean: bool,
        partitions: Option<Vec<TopicPartition>>,
        reply: oneshot::Sender<Vec<(TopicPartition, PartitionResult)>>,
    },
}
/// The controller's face on every broker: the elector, and topic administration.
pub struct Controller {
    store: Arc<dyn MetadataStore>,
    config: Arc<BrokerConfig>,
    cache: Arc<MetadataCache>,
    /// This broker's own request handlers, for the controller's requests to itself; set once
    /// the API exists (it holds the controller, so it comes second).
    local: OnceLock<LocalDelivery>,
    /// The active controller's command queue while this broker is controller.
    commands: std::sync::Mutex<Option<mpsc::UnboundedSender<Command>>>,
}
impl Controller {
    pub fn new(
        store: Arc<dyn MetadataStore>,
        config: Arc<BrokerConfig>,
        cache: Arc<MetadataCache>,
    ) -> Self {
        Controller {
            store,
            config,
            cache,
            local: OnceLock::new(),
            commands: std::sync::Mutex::new(None),
        }
    }

    fn set_commands(&self, tx: Option<mpsc::UnboundedSender<Command>>) {
        *self.commands.lock().unwrap_or_else(|p| p.into_inner()) = tx;
    }

    /// Whether this broker is the active controller now (Kafka's `KafkaController.isActive`),
    /// for the requests only the controller answers but that do not run in its event loop
    /// (AlterUserScramCredentials).
    pub fn is_active(&self) -> bool {
        self.commands
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some()
    }

    /// Hands a request to the active controller and waits for its answer; NOT_CONTROLLER
    /// when this broker is not the controller or stops being it meanwhile, REQUEST_TIMED_OUT
    /// when the controller is busy (ZooKeeper unreachable, say) for longer than
    /// `controller.socket.timeout.ms`.
    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, ControllerError> {
        let tx = self
            .commands
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .ok_or(ControllerError::NotController)?;
        let (reply, rx) = oneshot::channel();
        tx.send(make(reply))
            .map_err(|_| ControllerError::NotController)?;
        let wait = Duration::from_millis(self.config.controller_socket_timeout_ms);
        match tokio::time::timeout(wait, rx).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(_)) => Err(ControllerError::NotController),
            Err(_) => Err(ControllerError::TimedOut(format!(
                "the controller did not answer within {} ms",
                wait.as_millis()
            ))),
        }
    }

    /// ControlledShutdown from broker `broker`: moves its leaderships away; the partitions it
    /// still leads (nothing else could take them).
    pub async fn controlled_shutdown(
        &self,
        broker: i32,
        broker_epoch: i64,
    ) -> Result<Vec<TopicPartition>, ControllerError> {
        self.ask(|reply| Command::ControlledShutdown {
            broker,
            broker_epoch,
            reply,
        })
        .await?
    }

    /// AlterPartition from a partition leader: each partition's committed state or error, or
    /// a top-level error code.
    pub async fn alter_partition(
        &self,
        request: active::alter_partition::AlterPartition,
    ) -> active::alter_partition::AlterPartitionAnswer {
        // Not being controller (or no answer in time) is a top-level error of the request.
        self.ask(|reply| Command::AlterPartition { request, reply })
            .await
            .unwrap_or_else(Err)
    }

    pub async fn alter_reassignments(
        &self,
        partitions: Vec<(TopicPartition, Option<Vec<i32>>)>,
    ) -> Result<Vec<(TopicPartition, PartitionResult)>, ControllerError> {
        self.ask(|reply| Command::AlterReassignments { partitions, reply })
            .await
    }

    pub async fn list_reassignments(
        &self,
        partitions: Option<Vec<TopicPartition>>,
    ) -> Result<Vec<Reassignment>, ControllerError> {
        self.ask(|reply| Command::ListReassignments { partitions, reply })
            .await
    }

    pub async fn elect_leaders(
        &self,
        unclean: bool,
        partitions: Option<Vec<TopicPartition>>,
    ) -> Result<Vec<(TopicPartition, PartitionResult)>, ControllerError> {
        self.ask(|reply| Command::ElectLeaders {
            unclean,
            partitions,
            reply,
        })
        .await
    }

    pub fn store(&self) -> &Arc<dyn MetadataStore> {
        &self.store
    }

    pub fn set_local_delivery(&self, local: LocalDelivery) {
        let _ = self.local.set(local);
    }
    /// The topic-level config a topic's logs use.
    pub fn log_config_for(&self, topic: &str) -> LogConfig {
        let overrides = self
            .cache
            .topic(topic)
            .map(|t| t.configs)
            .unwrap_or_default();
        self.config
            .topic_config(&overrides)
            .unwrap_or_else(|_| self.config.log.clone())
    }

    /// Clean shutdown: gives up controllership (so another broker takes over at once rather
    /// than after the session timeout).
    pub async fn resign(&self) {
        self.delete_controller_if_mine().await;
    }
}
