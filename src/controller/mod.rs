//! The controller: elected through `/controller`, it owns topic creation and deletion and
//! partition leadership, writes Kafka's znodes, and tells brokers what to lead.
//!
//! With the embedded store this broker is always the controller. Kafka's controller reaches
//! every broker (itself included) with LeaderAndIsr / UpdateMetadata requests; until the
//! multi-broker issue brings that channel, decisions are applied to this broker's
//! `ReplicaManager` and `MetadataCache` directly, through `apply_leadership`.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::config::{BrokerConfig, ConfigError, LogConfig};
use crate::metadata::cache::{BrokerInfo, PartitionInfo, TopicInfo};
use crate::metadata::store::{
    CreateMode, StoreError, create_recursive, delete_recursive, ensure_path,
};
use crate::metadata::znodes::{self, ConfigZnode, PartitionStateZnode, TopicZnode};
use crate::metadata::{MetadataCache, MetadataStore};
use crate::replica::ReplicaManager;

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
    #[error(transparent)]
    InvalidConfig(#[from] ConfigError),
    #[error("topic deletion is disabled (delete.topic.enable=false)")]
    DeletionDisabled,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Log(#[from] crate::log::LogError),
}

impl ControllerError {
    pub fn kafka_error_code(&self) -> i16 {
        match self {
            ControllerError::TopicExists(_) => 36,
            ControllerError::UnknownTopic(_) => 3,
            ControllerError::InvalidTopic(_) => 17,
            ControllerError::InvalidPartitions(_) => 37,
            ControllerError::InvalidReplicationFactor(_) => 38,
            ControllerError::InvalidConfig(_) => 40,
            ControllerError::DeletionDisabled => 73,
            ControllerError::Store(_) => 41, // NOT_CONTROLLER: retriable for the client
            ControllerError::Log(e) => e.kafka_error_code(),
        }
    }
}

/// Kafka's topic name rule: 1..249 characters of `[a-zA-Z0-9._-]`, not `.` or `..`.
pub fn validate_topic_name(name: &str) -> Result<(), ControllerError> {
    let bad = |why: &str| {
        Err(ControllerError::InvalidTopic(format!(
            "topic name {name:?} is illegal: {why}"
        )))
    };
    if name.is_empty() {
        return bad("empty");
    }
    if name == "." || name == ".." {
        return bad("'.' and '..' are not allowed");
    }
    if name.len() > 249 {
        return bad("longer than 249 characters");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
    {
        return bad("only ASCII alphanumerics, '.', '_' and '-' are allowed");
    }
    Ok(())
}

/// Every topic-level config Kafka 3.9 knows; others are refused as INVALID_CONFIG.
pub fn is_topic_config(key: &str) -> bool {
    crate::config::defs::is_topic_config(key)
}

pub struct Controller {
    store: Arc<dyn MetadataStore>,
    config: Arc<BrokerConfig>,
    cache: Arc<MetadataCache>,
    replicas: Arc<ReplicaManager>,
    epoch: tokio::sync::Mutex<i32>,
}

fn now_string() -> String {
    crate::log::segment::now_ms().to_string()
}

impl Controller {
    pub fn new(
        store: Arc<dyn MetadataStore>,
        config: Arc<BrokerConfig>,
        cache: Arc<MetadataCache>,
        replicas: Arc<ReplicaManager>,
    ) -> Self {
        Controller {
            store,
            config,
            cache,
            replicas,
            epoch: tokio::sync::Mutex::new(0),
        }
    }

    /// Start-up: the paths Kafka pre-creates, the cluster id, this broker's registration, the
    /// controller election, then leadership of every existing partition.
    pub async fn start(&self) -> Result<(), ControllerError> {
        let store = self.store.as_ref();
        for p in znodes::PERSISTENT_PATHS {
            ensure_path(store, p).await?;
        }
        let cluster_id = match store.get(znodes::CLUSTER_ID).await? {
            Some((Some(data), _)) => {
                znodes::decode::<znodes::ClusterId>(znodes::CLUSTER_ID, &data)?.id
            }
            _ => {
                let (_, id) = znodes::random_uuid_base64();
                let z = znodes::ClusterId {
                    version: "1".into(),
                    id: id.clone(),
                };
                create_recursive(
                    store,
                    znodes::CLUSTER_ID,
                    Some(znodes::encode(&z)),
                    CreateMode::Persistent,
                )
                .await?;
                id
            }
        };
        self.cache.set_cluster_id(cluster_id);
        self.register_broker().await?;
        self.elect().await?;
        self.load_topics().await
    }

    async fn register_broker(&self) -> Result<(), ControllerError> {
        let c = &self.config;
        let endpoints: Vec<String> = c
            .advertised_listeners
            .iter()
            .map(|l| format!("{}://{}:{}", l.name, l.host, l.port))
            .collect();
        let first = c.advertised_listeners.first();
        let z = znodes::BrokerZnode {
            version: 4,
            host: first.map(|l| l.host.clone()),
            port: first.map_or(-1, |l| l.port as i32),
            jmx_port: -1,
            timestamp: now_string(),
            endpoints,
            rack: None,
            listener_security_protocol_map: c
                .advertised_listeners
                .iter()
                .map(|l| (l.name.clone(), "PLAINTEXT".to_string()))
                .collect(),
            features: None,
        };
        let path = znodes::broker_path(c.broker_id);
        match self
            .store
            .create(&path, Some(znodes::encode(&z)), CreateMode::Ephemeral)
            .await
        {
            Ok(_) => {}
            Err(StoreError::NodeExists(_)) => {
                return Err(ControllerError::Store(StoreError::NodeExists(format!(
                    "{path}: another broker is registered with broker.id={}",
                    c.broker_id
                ))));
            }
            Err(e) => return Err(e.into()),
        }
        self.cache.set_brokers(
            c.advertised_listeners
                .first()
                .map(|l| BrokerInfo {
                    id: c.broker_id,
                    host: l.host.clone(),
                    port: l.port,
                    rack: None,
                })
                .into_iter()
                .collect(),
        );
        Ok(())
    }

    async fn elect(&self) -> Result<(), ControllerError> {
        let store = self.store.as_ref();
        let current = match store.get(znodes::CONTROLLER_EPOCH).await? {
            Some((Some(d), stat)) => (
                String::from_utf8_lossy(&d)
                    .trim()
                    .parse::<i32>()
                    .unwrap_or(0),
                Some(stat.version),
            ),
            _ => (0, None),
        };
        let z = znodes::ControllerZnode {
            version: 2,
            brokerid: self.config.broker_id,
            timestamp: now_string(),
            kraft_controller_epoch: Some(-1),
        };
        store
            .create(
                znodes::CONTROLLER,
                Some(znodes::encode(&z)),
                CreateMode::Ephemeral,
            )
            .await?;
        let next = current.0 + 1;
        match current.1 {
            Some(v) => {
                store
                    .set(
                        znodes::CONTROLLER_EPOCH,
                        Some(next.to_string().into_bytes()),
                        Some(v),
                    )
                    .await?;
            }
            None => {
                store
                    .create(
                        znodes::CONTROLLER_EPOCH,
                        Some(next.to_string().into_bytes()),
                        CreateMode::Persistent,
                    )
                    .await?;
            }
        }
        *self.epoch.lock().await = next;
        self.cache.set_controller_id(self.config.broker_id);
        tracing::info!(
            broker_id = self.config.broker_id,
            controller_epoch = next,
            "became controller"
        );
        Ok(())
    }

    async fn topic_overrides(
        &self,
        topic: &str,
    ) -> Result<BTreeMap<String, String>, ControllerError> {
        let path = znodes::topic_config_path(topic);
        Ok(match self.store.get(&path).await? {
            Some((Some(d), _)) => znodes::decode::<ConfigZnode>(&path, &d)?.config,
            _ => BTreeMap::new(),
        })
    }

    /// Reads every topic from the store and takes leadership of the partitions assigned here.
    async fn load_topics(&self) -> Result<(), ControllerError> {
        let topics = self
            .store
            .children(znodes::TOPICS)
            .await?
            .unwrap_or_default();
        let pending_deletes = self
            .store
            .children(znodes::DELETE_TOPICS)
            .await?
            .unwrap_or_default();
        for topic in topics {
            if pending_deletes.contains(&topic) {
                self.delete_topic_now(&topic).await?;
                continue;
            }
            let path = znodes::topic_path(&topic);
            let Some((Some(data), _)) = self.store.get(&path).await? else {
                continue;
            };
            let z: TopicZnode = match znodes::decode(&path, &data) {
                Ok(z) => z,
                Err(e) => {
                    tracing::error!(topic, error = %e, "skipping topic with unreadable assignment");
                    continue;
                }
            };
            self.bring_online(&topic, &z).await?;
        }
        Ok(())
    }

    /// Elects a leader for every partition of `topic` (this broker, when it is a replica) and
    /// applies the decision.
    async fn bring_online(&self, topic: &str, z: &TopicZnode) -> Result<(), ControllerError> {
        let id = match z.topic_id.as_deref().and_then(znodes::parse_uuid_base64) {
            Some(id) => id,
            None => {
                // Topics made by Kafka before 2.8 have no id; the controller gives them one and
                // records it, as Kafka's does, so the id stays the same across restarts.
                let (id, text) = znodes::random_uuid_base64();
                let path = znodes::topic_path(topic);
                let mut with_id = z.clone();
                with_id.version = 3;
                with_id.topic_id = Some(text);
                self.store
                    .set(&path, Some(znodes::encode(&with_id)), None)
                    .await?;
                id
            }
        };
        let overrides = self.topic_overrides(topic).await?;
        let log_config = self.replicas.log_config(&overrides)?;
        let me = self.config.broker_id;
        let epoch = *self.epoch.lock().await;
        let mut partitions = BTreeMap::new();
        for (p, replicas) in z.assignment() {
            let state_path = znodes::partition_state_path(topic, p);
            let previous = match self.store.get(&state_path).await? {
                Some((Some(d), stat)) => Some((
                    znodes::decode::<PartitionStateZnode>(&state_path, &d)?,
                    stat.version,
                )),
                _ => None,
            };
            let leader = if replicas.contains(&me) { me } else { -1 };
            let leader_epoch = previous.as_ref().map_or(0, |(s, _)| {
                if s.leader == leader {
                    s.leader_epoch
                } else {
                    s.leader_epoch + 1
                }
            });
            let isr = if leader >= 0 { vec![leader] } else { vec![] };
            let state = PartitionStateZnode {
                controller_epoch: epoch,
                leader,
                version: 1,
                leader_epoch,
                isr: isr.clone(),
                leader_recovery_state: None,
            };
            match previous {
                Some((old, _)) if old == state => {}
                Some((_, version)) => {
                    self.store
                        .set(&state_path, Some(znodes::encode(&state)), Some(version))
                        .await?;
                }
                None => {
                    create_recursive(
                        self.store.as_ref(),
                        &state_path,
                        Some(znodes::encode(&state)),
                        CreateMode::Persistent,
                    )
                    .await?;
                }
            }
            if leader == me {
                self.replicas
                    .become_leader(topic, p, leader_epoch, log_config.clone())
                    .await?;
            }
            partitions.insert(
                p,
                PartitionInfo {
                    leader,
                    leader_epoch,
                    replicas,
                    isr,
                },
            );
        }
        self.cache.put_topic(
            topic.to_string(),
            TopicInfo {
                id,
                partitions,
                configs: overrides,
            },
        );
        Ok(())
    }

    /// CreateTopics (and auto-creation): validates, writes the config and assignment znodes as
    /// Kafka's AdminZkClient does, then brings the partitions online. `validate_only` stops
    /// after validation.
    pub async fn create_topic(
        &self,
        name: &str,
        partitions: i32,
        replication_factor: i16,
        configs: BTreeMap<String, String>,
        validate_only: bool,
    ) -> Result<(), ControllerError> {
        validate_topic_name(name)?;
        let partitions = if partitions == -1 {
            self.config.num_partitions
        } else {
            partitions
        };
        let rf = if replication_factor == -1 {
            self.config.default_replication_factor
        } else {
            replication_factor
        };
        if partitions < 1 {
            return Err(ControllerError::InvalidPartitions(format!(
                "number of partitions must be at least 1, got {partitions}"
            )));
        }
        let brokers: Vec<i32> = self.cache.brokers().iter().map(|b| b.id).collect();
        if rf < 1 || rf as usize > brokers.len() {
            return Err(ControllerError::InvalidReplicationFactor(format!(
                "replication factor {rf} is invalid: {} broker(s) available",
                brokers.len()
            )));
        }
        self.config.topic_config(&configs)?;
        if let Some(unknown) = configs.keys().find(|k| !is_topic_config(k)) {
            return Err(ControllerError::InvalidConfig(ConfigError {
                key: unknown.clone(),
                value: configs[unknown].clone(),
                reason: "unknown topic config".into(),
            }));
        }
        if self.store.get(&znodes::topic_path(name)).await?.is_some()
            || self.cache.topic(name).is_some()
        {
            return Err(ControllerError::TopicExists(name.to_string()));
        }
        // Kafka refuses names that collide once '.' and '_' are treated alike (metric names).
        let normalized = name.replace('.', "_");
        if let Some(other) = self
            .cache
            .topic_names()
            .into_iter()
            .find(|t| t.replace('.', "_") == normalized)
        {
            return Err(ControllerError::InvalidTopic(format!(
                "topic {name:?} collides with existing topic {other:?}"
            )));
        }
        if validate_only {
            return Ok(());
        }
        let (_, topic_id) = znodes::random_uuid_base64();
        let assignment: BTreeMap<String, Vec<i32>> = (0..partitions)
            .map(|p| {
                let replicas = (0..rf as usize)
                    .map(|r| brokers[(p as usize + r) % brokers.len()])
                    .collect();
                (p.to_string(), replicas)
            })
            .collect();
        let topic = TopicZnode {
            version: 3,
            partitions: assignment,
            adding_replicas: BTreeMap::new(),
            removing_replicas: BTreeMap::new(),
            topic_id: Some(topic_id),
        };
        let cfg = ConfigZnode {
            version: 1,
            config: configs,
        };
        let store = self.store.as_ref();
        match store.get(&znodes::topic_config_path(name)).await? {
            Some((_, stat)) => {
                store
                    .set(
                        &znodes::topic_config_path(name),
                        Some(znodes::encode(&cfg)),
                        Some(stat.version),
                    )
                    .await?;
            }
            None => {
                create_recursive(
                    store,
                    &znodes::topic_config_path(name),
                    Some(znodes::encode(&cfg)),
                    CreateMode::Persistent,
                )
                .await?;
            }
        }
        match store
            .create(
                &znodes::topic_path(name),
                Some(znodes::encode(&topic)),
                CreateMode::Persistent,
            )
            .await
        {
            Err(StoreError::NodeExists(_)) => {
                return Err(ControllerError::TopicExists(name.to_string()));
            }
            other => {
                other?;
            }
        }
        tracing::info!(
            topic = name,
            partitions,
            replication_factor = rf,
            "created topic"
        );
        self.bring_online(name, &topic).await
    }

    /// CreatePartitions: grows a topic to `count` partitions (never shrinks), assigning the new
    /// ones round-robin over live brokers and bringing them online.
    pub async fn create_partitions(
        &self,
        name: &str,
        count: i32,
        validate_only: bool,
    ) -> Result<(), ControllerError> {
        let path = znodes::topic_path(name);
        let Some((Some(data), stat)) = self.store.get(&path).await? else {
            return Err(ControllerError::UnknownTopic(name.to_string()));
        };
        let mut topic: TopicZnode = znodes::decode(&path, &data)?;
        let current = topic.partitions.len() as i32;
        if count <= current {
            return Err(ControllerError::InvalidPartitions(format!(
                "topic {name} has {current} partitions; the new count {count} must be larger"
            )));
        }
        let brokers: Vec<i32> = self.cache.brokers().iter().map(|b| b.id).collect();
        let rf = topic
            .partitions
            .values()
            .next()
            .map_or(1, |r| r.len())
            .min(brokers.len().max(1));
        if validate_only {
            return Ok(());
        }
        for p in current..count {
            let replicas = (0..rf)
                .map(|r| brokers[(p as usize + r) % brokers.len()])
                .collect();
            topic.partitions.insert(p.to_string(), replicas);
        }
        self.store
            .set(&path, Some(znodes::encode(&topic)), Some(stat.version))
            .await?;
        tracing::info!(topic = name, from = current, to = count, "added partitions");
        self.bring_online(name, &topic).await
    }

    /// DeleteTopics: marks the topic in `/admin/delete_topics` (as Kafka's tools do), then the
    /// controller removes replicas and znodes.
    pub async fn delete_topic(&self, name: &str) -> Result<(), ControllerError> {
        if !self.config.delete_topic_enable {
            return Err(ControllerError::DeletionDisabled);
        }
        if self.store.get(&znodes::topic_path(name)).await?.is_none() {
            return Err(ControllerError::UnknownTopic(name.to_string()));
        }
        match self
            .store
            .create(
                &format!("{}/{name}", znodes::DELETE_TOPICS),
                None,
                CreateMode::Persistent,
            )
            .await
        {
            Ok(_) | Err(StoreError::NodeExists(_)) => {}
            Err(e) => return Err(e.into()),
        }
        self.delete_topic_now(name).await
    }

    async fn delete_topic_now(&self, name: &str) -> Result<(), ControllerError> {
        let partitions: Vec<i32> = self
            .cache
            .topic(name)
            .map(|t| t.partitions.keys().copied().collect())
            .unwrap_or_default();
        self.cache.remove_topic(name);
        for p in partitions {
            self.replicas.delete_partition(name, p).await?;
        }
        // Logs of partitions never brought online (e.g. a half-created topic) go as well.
        for (t, p) in self.replicas.logs().partitions() {
            if t == name {
                self.replicas.delete_partition(name, p).await?;
            }
        }
        let store = self.store.as_ref();
        delete_recursive(store, &znodes::topic_path(name)).await?;
        delete_recursive(store, &znodes::topic_config_path(name)).await?;
        delete_recursive(store, &format!("{}/{name}", znodes::DELETE_TOPICS)).await?;
        tracing::info!(topic = name, "deleted topic");
        Ok(())
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

    /// Removes this broker's ephemeral registration and controllership (clean shutdown).
    pub async fn resign(&self) {
        for path in [
            znodes::CONTROLLER.to_string(),
            znodes::broker_path(self.config.broker_id),
        ] {
            if let Err(e) = self.store.delete(&path, None).await
                && !matches!(e, StoreError::NoNode(_))
            {
                tracing::warn!(path, error = %e, "could not remove znode at shutdown");
            }
        }
    }
}
