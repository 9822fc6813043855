//! What this broker believes about the cluster: brokers, topics, leaders and ISR. Written from
//! the controller's decisions (UpdateMetadata in Kafka), read by every request handler.

use std::collections::BTreeMap;
use std::sync::RwLock;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerInfo {
    pub id: i32,
    /// One per advertised listener. Clients are answered with the endpoint of the listener
    /// their request came in on; brokers reach each other on the inter-broker listener's.
    pub endpoints: Vec<BrokerEndpoint>,
    pub rack: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerEndpoint {
    /// The listener name (`PLAINTEXT`, `INTERNAL`, ...), as in `advertised.listeners`.
    pub listener: String,
    pub host: String,
    pub port: u16,
}

impl BrokerInfo {
    /// The broker's endpoint on `listener`; None when it has no such listener, which Kafka
    /// reports as the broker being unreachable for that client (LISTENER_NOT_FOUND).
    pub fn endpoint(&self, listener: &str) -> Option<&BrokerEndpoint> {
        self.endpoints.iter().find(|e| e.listener == listener)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionInfo {
    pub leader: i32,
    pub leader_epoch: i32,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicInfo {
    pub id: uuid::Uuid,
    pub partitions: BTreeMap<i32, PartitionInfo>,
    pub configs: BTreeMap<String, String>,
}

#[derive(Debug, Default)]
struct State {
    cluster_id: String,
    controller_id: i32,
    /// The highest controller epoch seen in a control request: older ones are refused.
    controller_epoch: i32,
    /// This broker's epoch (the czxid of its registration znode), -1 before registration.
    broker_epoch: i64,
    brokers: BTreeMap<i32, BrokerInfo>,
    topics: BTreeMap<String, TopicInfo>,
}

/// Why a control request (LeaderAndIsr, UpdateMetadata, StopReplica) was refused as stale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum StaleRequest {
    #[error("controller epoch {request} is older than the current {current}")]
    ControllerEpoch { request: i32, current: i32 },
    #[error("broker epoch {request} is older than this broker's registration ({current})")]
    BrokerEpoch { request: i64, current: i64 },
}

#[derive(Debug)]
pub struct MetadataCache {
    state: RwLock<State>,
}

impl Default for MetadataCache {
    fn default() -> Self {
        MetadataCache {
            state: RwLock::new(State {
                controller_id: -1,
                broker_epoch: -1,
                ..State::default()
            }),
        }
    }
}

pub const INTERNAL_TOPICS: &[&str] = &["__consumer_offsets", "__transaction_state"];

impl MetadataCache {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }
    fn write(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|p| p.into_inner())
    }

    pub fn cluster_id(&self) -> String {
        self.read().cluster_id.clone()
    }
    pub fn set_cluster_id(&self, id: String) {
        self.write().cluster_id = id;
    }
    pub fn controller_id(&self) -> i32 {
        self.read().controller_id
    }
    pub fn set_controller_id(&self, id: i32) {
        self.write().controller_id = id;
    }
    pub fn controller_epoch(&self) -> i32 {
        self.read().controller_epoch
    }
    pub fn broker_epoch(&self) -> i64 {
        self.read().broker_epoch
    }
    pub fn set_broker_epoch(&self, epoch: i64) {
        self.write().broker_epoch = epoch;
    }

    /// Fencing of control requests (LeaderAndIsr, UpdateMetadata, StopReplica): a request from
    /// an older controller than one already heard from is refused, and so is one addressed to
    /// an earlier registration of this broker. Returns which, or records the controller as
    /// current.
    pub fn accept_controller(
        &self,
        controller_id: i32,
        controller_epoch: i32,
        broker_epoch: i64,
    ) -> Result<(), StaleRequest> {
        let mut s = self.write();
        if controller_epoch < s.controller_epoch {
            return Err(StaleRequest::ControllerEpoch {
                request: controller_epoch,
                current: s.controller_epoch,
            });
        }
        if broker_epoch >= 0 && s.broker_epoch >= 0 && broker_epoch < s.broker_epoch {
            return Err(StaleRequest::BrokerEpoch {
                request: broker_epoch,
                current: s.broker_epoch,
            });
        }
        s.controller_epoch = controller_epoch;
        s.controller_id = controller_id;
        Ok(())
    }

    pub fn broker(&self, id: i32) -> Option<BrokerInfo> {
        self.read().brokers.get(&id).cloned()
    }
    /// Whether the controller last named `id` among the live brokers.
    pub fn is_live(&self, id: i32) -> bool {
        self.read().brokers.contains_key(&id)
    }
    /// Where broker `id` is reached on `listener` (brokers use the inter-broker listener), in
    /// the form `client::Connection` dials.
    pub fn broker_address(&self, id: i32, listener: &str) -> Option<String> {
        let state = self.read();
        let e = state.brokers.get(&id)?.endpoint(listener)?;
        Some(crate::client::address(&e.host, e.port))
    }
    pub fn brokers(&self) -> Vec<BrokerInfo> {
        self.read().brokers.values().cloned().collect()
    }
    pub fn set_brokers(&self, brokers: Vec<BrokerInfo>) {
        self.write().brokers = brokers.into_iter().map(|b| (b.id, b)).collect();
    }
    pub fn topic(&self, name: &str) -> Option<TopicInfo> {
        self.read().topics.get(name).cloned()
    }
    /// The name of the topic with this id (Fetch v13+, Metadata v10+, DeleteTopics v6).
    pub fn topic_name_by_id(&self, id: uuid::Uuid) -> Option<String> {
        self.read()
            .topics
            .iter()
            .find(|(_, t)| t.id == id)
            .map(|(n, _)| n.clone())
    }

    pub fn topic_names(&self) -> Vec<String> {
        self.read().topics.keys().cloned().collect()
    }
    pub fn topics(&self) -> Vec<(String, TopicInfo)> {
        self.read()
            .topics
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
    pub fn partition(&self, topic: &str, partition: i32) -> Option<PartitionInfo> {
        self.read()
            .topics
            .get(topic)
            .and_then(|t| t.partitions.get(&partition).cloned())
    }
    /// How many replicas of a partition are in sync, without copying its state.
    pub fn isr_len(&self, topic: &str, partition: i32) -> Option<usize> {
        self.read()
            .topics
            .get(topic)
            .and_then(|t| t.partitions.get(&partition).map(|p| p.isr.len()))
    }
    pub fn put_topic(&self, name: String, info: TopicInfo) {
        self.write().topics.insert(name, info);
    }
    /// UpdateMetadata for some partitions of a topic: other partitions and the topic's
    /// configs stay as they were.
    pub fn update_partitions(
        &self,
        name: &str,
        id: uuid::Uuid,
        partitions: impl IntoIterator<Item = (i32, PartitionInfo)>,
    ) {
        let mut s = self.write();
        let topic = s
            .topics
            .entry(name.to_string())
            .or_insert_with(|| TopicInfo {
                id,
                partitions: BTreeMap::new(),
                configs: BTreeMap::new(),
            });
        if !id.is_nil() {
            topic.id = id;
        }
        topic.partitions.extend(partitions);
    }
    /// A topic's config overrides changed (`/config/topics/<t>`). Returns false when the
    /// topic is not known here.
    pub fn set_topic_configs(&self, name: &str, configs: BTreeMap<String, String>) -> bool {
        match self.write().topics.get_mut(name) {
            Some(t) => {
                t.configs = configs;
                true
            }
            None => false,
        }
    }
    pub fn remove_topic(&self, name: &str) {
        self.write().topics.remove(name);
    }
}
