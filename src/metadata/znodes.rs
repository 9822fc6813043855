//! Kafka's znode paths and JSON, as typed values. See `reference/zookeeper-layout.md`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::store::StoreError;

pub const CLUSTER_ID: &str = "/cluster/id";
pub const CONTROLLER: &str = "/controller";
pub const CONTROLLER_EPOCH: &str = "/controller_epoch";
pub const BROKER_IDS: &str = "/brokers/ids";
pub const TOPICS: &str = "/brokers/topics";
pub const TOPIC_CONFIGS: &str = "/config/topics";
pub const DELETE_TOPICS: &str = "/admin/delete_topics";
pub const PRODUCER_ID_BLOCK: &str = "/latest_producer_id_block";
pub const CONFIG_CHANGES: &str = "/config/changes";
/// Sequential children of [`CONFIG_CHANGES`] are named this plus ZooKeeper's 10-digit counter.
pub const CONFIG_CHANGE_PREFIX: &str = "config_change_";
/// The entity name of cluster-wide defaults: `/config/brokers/<default>`.
pub const DEFAULT_ENTITY: &str = "<default>";
/// Leaders that changed an ISR themselves tell the controller here (IBP < 2.7-IV2).
pub const ISR_CHANGE_NOTIFICATION: &str = "/isr_change_notification";
/// Sequential children of [`ISR_CHANGE_NOTIFICATION`]: this plus ZooKeeper's counter.
pub const ISR_CHANGE_PREFIX: &str = "isr_change_";
/// Brokers whose log directory failed tell the controller here (Kafka's
/// `LogDirEventNotificationZNode`).
pub const LOG_DIR_EVENT_NOTIFICATION: &str = "/log_dir_event_notification";
/// Sequential children of [`LOG_DIR_EVENT_NOTIFICATION`]: this plus ZooKeeper's counter.
pub const LOG_DIR_EVENT_PREFIX: &str = "log_dir_event_";
/// Legacy tools' requests to the controller.
pub const REASSIGN_PARTITIONS: &str = "/admin/reassign_partitions";
pub const PREFERRED_REPLICA_ELECTION: &str = "/admin/preferred_replica_election";

/// Paths a Kafka broker creates at start-up (`ZkData.PersistentZkPaths`).
pub const PERSISTENT_PATHS: &[&str] = &[
    "/consumers",
    BROKER_IDS,
    TOPICS,
    "/config/changes",
    DELETE_TOPICS,
    "/brokers/seqid",
    "/isr_change_notification",
    PRODUCER_ID_BLOCK,
    LOG_DIR_EVENT_NOTIFICATION,
    TOPIC_CONFIGS,
    "/config/clients",
    "/config/users",
    "/config/brokers",
    "/config/ips",
];

pub fn broker_path(id: i32) -> String {
    format!("{BROKER_IDS}/{id}")
}
pub fn topic_path(topic: &str) -> String {
    format!("{TOPICS}/{topic}")
}
pub fn partition_state_path(topic: &str, partition: i32) -> String {
    format!("{TOPICS}/{topic}/partitions/{partition}/state")
}
pub fn topic_config_path(topic: &str) -> String {
    format!("{TOPIC_CONFIGS}/{topic}")
}

/// `/config/<entityType>/<entityName>`, e.g. `/config/topics/orders`, `/config/brokers/<default>`.
pub fn entity_config_path(entity_type: &str, name: &str) -> String {
    format!("/config/{entity_type}/{name}")
}

pub fn decode<'a, T: Deserialize<'a>>(path: &str, data: &'a [u8]) -> Result<T, StoreError> {
    serde_json::from_slice(data).map_err(|e| StoreError::BadData {
        path: path.to_string(),
        reason: e.to_string(),
    })
}

pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // Serializing these plain structs cannot fail.
    serde_json::to_vec(value).unwrap_or_default()
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ClusterId {
    pub version: String,
    pub id: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ControllerZnode {
    pub version: i32,
    pub brokerid: i32,
    pub timestamp: String,
    #[serde(
        rename = "kraftControllerEpoch",
        default = "minus_one",
        skip_serializing_if = "Option::is_none"
    )]
    pub kraft_controller_epoch: Option<i32>,
}

fn minus_one() -> Option<i32> {
    Some(-1)
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BrokerZnode {
    pub version: i32,
    pub host: Option<String>,
    pub port: i32,
    pub jmx_port: i32,
    pub timestamp: String,
    #[serde(default)]
    pub endpoints: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rack: Option<String>,
    /// Absent below version 4.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub listener_security_protocol_map: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub features: Option<BTreeMap<String, serde_json::Value>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TopicZnode {
    pub version: i32,
    pub partitions: BTreeMap<String, Vec<i32>>,
    #[serde(default)]
    pub adding_replicas: BTreeMap<String, Vec<i32>>,
    #[serde(default)]
    pub removing_replicas: BTreeMap<String, Vec<i32>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic_id: Option<String>,
}

impl TopicZnode {
    /// Replica lists by partition number, skipping keys that are not numbers.
    pub fn assignment(&self) -> BTreeMap<i32, Vec<i32>> {
        self.partitions
            .iter()
            .filter_map(|(k, v)| k.parse().ok().map(|p| (p, v.clone())))
            .collect()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PartitionStateZnode {
    pub controller_epoch: i32,
    pub leader: i32,
    pub version: i32,
    pub leader_epoch: i32,
    pub isr: Vec<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leader_recovery_state: Option<i32>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ConfigZnode {
    pub version: i32,
    pub config: BTreeMap<String, String>,
}

/// `/config/changes/config_change_<seq>`: version 2 names the changed entity by path
/// (`topics/orders`, `brokers/<default>`); version 1 (before Kafka 2.0, topics and clients only)
/// by type and name.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ConfigChangeZnode {
    pub version: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entity_path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entity_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entity_name: Option<String>,
}

impl ConfigChangeZnode {
    pub fn for_entity(entity_type: &str, name: &str) -> Self {
        ConfigChangeZnode {
            version: 2,
            entity_path: Some(format!("{entity_type}/{name}")),
            entity_type: None,
            entity_name: None,
        }
    }

    /// The changed entity's type and name, whichever version wrote it.
    pub fn entity(&self) -> Option<(String, String)> {
        match (
            self.version,
            &self.entity_path,
            &self.entity_type,
            &self.entity_name,
        ) {
            (2, Some(path), _, _) => path
                .split_once('/')
                .map(|(t, n)| (t.to_string(), n.to_string())),
            (1, _, Some(t), Some(n)) => Some((t.clone(), n.clone())),
            _ => None,
        }
    }
}

/// A partition named in `/isr_change_notification/*` and `/admin/preferred_replica_election`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TopicPartitionJson {
    pub topic: String,
    pub partition: i32,
}

/// `{"version":1,"partitions":[{"topic":..,"partition":..}]}`: an ISR change notification or
/// a preferred replica election request.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PartitionListZnode {
    pub version: i32,
    pub partitions: Vec<TopicPartitionJson>,
}

/// `/admin/reassign_partitions`: `{"version":1,"partitions":[{"topic":..,"partition":..,
/// "replicas":[..]}]}` (the tool may add `log_dirs`, which brokers here do not use).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ReassignPartitionsZnode {
    pub version: i32,
    pub partitions: Vec<PartitionReassignmentJson>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PartitionReassignmentJson {
    pub topic: String,
    pub partition: i32,
    pub replicas: Vec<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_dirs: Option<Vec<String>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ProducerIdBlockZnode {
    pub version: i32,
    pub broker: i32,
    pub block_start: String,
    pub block_end: String,
}

/// `/delegation_token/tokens/<tokenId>`: one delegation token, written by the broker that
/// created or renewed it (Kafka's `DelegationTokenInfoZNode`).
pub const DELEGATION_TOKENS: &str = "/delegation_token/tokens";
/// `/delegation_token/token_changes/token_change_<seq>`, holding a token id as plain text: every
/// broker re-reads that token into its cache.
pub const DELEGATION_TOKEN_CHANGES: &str = "/delegation_token/token_changes";
pub const DELEGATION_TOKEN_CHANGE_PREFIX: &str = "token_change_";

/// A token's znode (Kafka's `DelegationTokenManagerZk.toJsonCompatibleMap`, version 3): the
/// principals as `Type:name` sanitized (`User%3Aalice`), timestamps in ms. Version 1 and 2
/// nodes, written before KIP-373, have no `tokenRequester` (the owner asked).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct DelegationTokenZnode {
    pub version: i32,
    pub owner: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_requester: Option<String>,
    pub renewers: Vec<String>,
    pub issue_timestamp: i64,
    pub max_timestamp: i64,
    pub expiry_timestamp: i64,
    pub token_id: String,
}

/// A new topic or cluster id: a random UUID in Kafka's base64url form (22 characters).
pub fn random_uuid_base64() -> (uuid::Uuid, String) {
    let id = uuid::Uuid::new_v4();
    (id, uuid_base64(&id))
}

/// A topic or cluster id in Kafka's base64url form (22 characters).
pub fn uuid_base64(id: &uuid::Uuid) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(id.as_bytes())
}

pub fn parse_uuid_base64(s: &str) -> Option<uuid::Uuid> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .ok()?;
    uuid::Uuid::from_slice(&bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The JSON a real Kafka 2.4.1 wrote reads into these types.
    #[test]
    fn fixture_znodes_parse() {
        let tree: BTreeMap<String, Option<String>> = serde_json::from_str(
            &std::fs::read_to_string(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/fixtures/kafka-2.4.1-single/zk-tree.json"
            ))
            .unwrap(),
        )
        .unwrap();
        let get = |p: &str| tree[p].clone().unwrap();
        let t: TopicZnode = decode("t", get("/brokers/topics/plain").as_bytes()).unwrap();
        assert_eq!(t.assignment()[&2], vec![1]);
        let s: PartitionStateZnode = decode(
            "s",
            get("/brokers/topics/plain/partitions/0/state").as_bytes(),
        )
        .unwrap();
        assert_eq!((s.leader, s.isr.clone()), (1, vec![1]));
        let b: BrokerZnode = decode("b", get("/brokers/ids/1").as_bytes()).unwrap();
        assert_eq!(b.endpoints, vec!["PLAINTEXT://127.0.0.1:19092".to_string()]);
        let c: ConfigZnode = decode("c", get("/config/topics/multi-segment").as_bytes()).unwrap();
        assert_eq!(c.config["segment.bytes"], "16384");
        let id: ClusterId = decode("i", get("/cluster/id").as_bytes()).unwrap();
        assert_eq!(id.id.len(), 22);
        assert!(parse_uuid_base64(&id.id).is_some());
        let p: ProducerIdBlockZnode =
            decode("p", get("/latest_producer_id_block").as_bytes()).unwrap();
        assert_eq!(p.block_end, "999");
        let ctl: ControllerZnode = decode("c", get("/controller").as_bytes()).unwrap();
        assert_eq!(ctl.brokerid, 1);
    }
}
