//! The one place that picks the request versions a broker uses toward other brokers.
//!
//! [`Ibp`] is `inter.broker.protocol.version` (Kafka's `MetadataVersion` as ZooKeeper mode uses
//! it): each inter-broker API's version is the one Kafka 3.9 picks for that IBP, so that a
//! broker at a cluster's old IBP speaks to the cluster's old brokers as one of them would, and
//! the IBP is raised by a rolling restart once every broker is new. The version actually sent is
//! the lower of that and the peer's ApiVersions maximum ([`Connection::call_upto`]), so a peer
//! older than the IBP claims is still spoken to rather than refused.
//!
//! [`fit`] reshapes a request built in the newest shape into the shape of an older version
//! (fields moved, fields the version lacks cleared), so callers build one shape only.
//!
//! [`Connection::call_upto`]: super::Connection::call_upto

use std::fmt;

use kafka_protocol::messages::alter_partition_request::BrokerState as AlterPartitionBrokerState;
use kafka_protocol::messages::stop_replica_request::{StopReplicaPartitionV0, StopReplicaTopicV1};
use kafka_protocol::messages::{ApiKey, RequestKind};

/// Kafka's IBP values in order (`MetadataVersion`'s constants up to `LATEST_PRODUCTION`,
/// 3.9-IV0). ZooKeeper mode ends with 3.9: 4.0's values are refused as Kafka 3.9 refuses
/// unreleased ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[allow(non_camel_case_types)]
pub enum Ibp {
    V0_8_0,
    V0_8_1,
    V0_8_2,
    V0_9_0,
    V0_10_0_IV0,
    V0_10_0_IV1,
    V0_10_1_IV0,
    V0_10_1_IV1,
    V0_10_1_IV2,
    V0_10_2_IV0,
    V0_11_0_IV0,
    V0_11_0_IV1,
    V0_11_0_IV2,
    V1_0_IV0,
    V1_1_IV0,
    V2_0_IV0,
    V2_0_IV1,
    V2_1_IV0,
    V2_1_IV1,
    V2_1_IV2,
    V2_2_IV0,
    V2_2_IV1,
    V2_3_IV0,
    V2_3_IV1,
    V2_4_IV0,
    V2_4_IV1,
    V2_5_IV0,
    V2_6_IV0,
    V2_7_IV0,
    V2_7_IV1,
    V2_7_IV2,
    V2_8_IV0,
    V2_8_IV1,
    V3_0_IV0,
    V3_0_IV1,
    V3_1_IV0,
    V3_2_IV0,
    V3_3_IV0,
    V3_3_IV1,
    V3_3_IV2,
    V3_3_IV3,
    V3_4_IV0,
    V3_5_IV0,
    V3_5_IV1,
    V3_5_IV2,
    V3_6_IV0,
    V3_6_IV1,
    V3_6_IV2,
    V3_7_IV0,
    V3_7_IV1,
    V3_7_IV2,
    V3_7_IV3,
    V3_7_IV4,
    V3_8_IV0,
    V3_9_IV0,
}

use Ibp::*;

/// Every value with its release and internal version (`""` before 0.10.0, which had none).
const ALL: &[(Ibp, &str, &str)] = &[
    (V0_8_0, "0.8.0", ""),
    (V0_8_1, "0.8.1", ""),
    (V0_8_2, "0.8.2", ""),
    (V0_9_0, "0.9.0", ""),
    (V0_10_0_IV0, "0.10.0", "IV0"),
    (V0_10_0_IV1, "0.10.0", "IV1"),
    (V0_10_1_IV0, "0.10.1", "IV0"),
    (V0_10_1_IV1, "0.10.1", "IV1"),
    (V0_10_1_IV2, "0.10.1", "IV2"),
    (V0_10_2_IV0, "0.10.2", "IV0"),
    (V0_11_0_IV0, "0.11.0", "IV0"),
    (V0_11_0_IV1, "0.11.0", "IV1"),
    (V0_11_0_IV2, "0.11.0", "IV2"),
    (V1_0_IV0, "1.0", "IV0"),
    (V1_1_IV0, "1.1", "IV0"),
    (V2_0_IV0, "2.0", "IV0"),
    (V2_0_IV1, "2.0", "IV1"),
    (V2_1_IV0, "2.1", "IV0"),
    (V2_1_IV1, "2.1", "IV1"),
    (V2_1_IV2, "2.1", "IV2"),
    (V2_2_IV0, "2.2", "IV0"),
    (V2_2_IV1, "2.2", "IV1"),
    (V2_3_IV0, "2.3", "IV0"),
    (V2_3_IV1, "2.3", "IV1"),
    (V2_4_IV0, "2.4", "IV0"),
    (V2_4_IV1, "2.4", "IV1"),
    (V2_5_IV0, "2.5", "IV0"),
    (V2_6_IV0, "2.6", "IV0"),
    (V2_7_IV0, "2.7", "IV0"),
    (V2_7_IV1, "2.7", "IV1"),
    (V2_7_IV2, "2.7", "IV2"),
    (V2_8_IV0, "2.8", "IV0"),
    (V2_8_IV1, "2.8", "IV1"),
    (V3_0_IV0, "3.0", "IV0"),
    (V3_0_IV1, "3.0", "IV1"),
    (V3_1_IV0, "3.1", "IV0"),
    (V3_2_IV0, "3.2", "IV0"),
    (V3_3_IV0, "3.3", "IV0"),
    (V3_3_IV1, "3.3", "IV1"),
    (V3_3_IV2, "3.3", "IV2"),
    (V3_3_IV3, "3.3", "IV3"),
    (V3_4_IV0, "3.4", "IV0"),
    (V3_5_IV0, "3.5", "IV0"),
    (V3_5_IV1, "3.5", "IV1"),
    (V3_5_IV2, "3.5", "IV2"),
    (V3_6_IV0, "3.6", "IV0"),
    (V3_6_IV1, "3.6", "IV1"),
    (V3_6_IV2, "3.6", "IV2"),
    (V3_7_IV0, "3.7", "IV0"),
    (V3_7_IV1, "3.7", "IV1"),
    (V3_7_IV2, "3.7", "IV2"),
    (V3_7_IV3, "3.7", "IV3"),
    (V3_7_IV4, "3.7", "IV4"),
    (V3_8_IV0, "3.8", "IV0"),
    (V3_9_IV0, "3.9", "IV0"),
];

impl Default for Ibp {
    /// Kafka 3.9's default: the newest.
    fn default() -> Self {
        Ibp::LATEST
    }
}

impl fmt::Display for Ibp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (_, release, iv) = ALL[*self as usize];
        if iv.is_empty() {
            f.write_str(release)
        } else {
            write!(f, "{release}-{iv}")
        }
    }
}

impl std::str::FromStr for Ibp {
    type Err = String;

    /// Kafka's `MetadataVersion.fromVersionString`: `2.4` is the latest internal version of
    /// 2.4 (2.4-IV1), `2.4-IV0` that one exactly; segments after the release are ignored
    /// (`2.4.1` is 2.4, `0.10.2.1` is 0.10.2).
    fn from_str(s: &str) -> Result<Ibp, String> {
        let segments: Vec<&str> = s.split('.').collect();
        let keep = if s.starts_with("0.") { 3 } else { 2 };
        let key = if keep >= segments.len() {
            s.to_string()
        } else {
            segments[..keep].join(".")
        };
        let exact = ALL.iter().find(|(_, release, iv)| {
            if iv.is_empty() {
                key == *release
            } else {
                key.strip_prefix(release)
                    .and_then(|rest| rest.strip_prefix('-'))
                    == Some(iv)
            }
        });
        let latest_of_release = ALL.iter().rev().find(|(_, release, _)| key == *release);
        exact
            .or(latest_of_release)
            .map(|(v, _, _)| *v)
            .ok_or_else(|| format!("Version {s} is not a valid version"))
    }
}

impl Ibp {
    pub const LATEST: Ibp = V3_9_IV0;

    /// Every value, oldest first.
    pub fn all() -> impl Iterator<Item = Ibp> {
        ALL.iter().map(|(v, _, _)| *v)
    }

    /// The follower's Fetch (`MetadataVersion.fetchRequestVersion`).
    pub fn fetch(self) -> i16 {
        match self {
            v if v >= V3_9_IV0 => 17,
            v if v >= V3_7_IV4 => 16,
            v if v >= V3_5_IV1 => 15,
            v if v >= V3_5_IV0 => 14,
            v if v >= V3_1_IV0 => 13,
            v if v >= V2_7_IV1 => 12,
            v if v >= V2_3_IV1 => 11,
            v if v >= V2_1_IV2 => 10,
            v if v >= V2_0_IV1 => 8,
            v if v >= V1_1_IV0 => 7,
            v if v >= V0_11_0_IV1 => 5,
            v if v >= V0_11_0_IV0 => 4,
            v if v >= V0_10_1_IV1 => 3,
            v if v >= V0_10_0_IV0 => 2,
            v if v >= V0_9_0 => 1,
            _ => 0,
        }
    }

    /// Whether a follower truncates from the leader's `diverging_epoch` in Fetch (KIP-595,
    /// `isTruncationOnFetchSupported`) rather than with OffsetsForLeaderEpoch first.
    pub fn truncation_on_fetch(self) -> bool {
        self >= V2_7_IV1
    }

    /// The follower's OffsetsForLeaderEpoch, `None` where the IBP predates it (truncation to the
    /// high watermark then).
    pub fn offset_for_leader_epoch(self) -> Option<i16> {
        match self {
            v if v < V0_11_0_IV2 => None,
            v if v >= V2_8_IV0 => Some(4),
            v if v >= V2_3_IV1 => Some(3),
            v if v >= V2_1_IV1 => Some(2),
            v if v >= V2_0_IV0 => Some(1),
            _ => Some(0),
        }
    }

    /// A follower's ListOffsets to its leader (`listOffsetRequestVersion`).
    pub fn list_offsets(self) -> i16 {
        match self {
            v if v >= V3_9_IV0 => 9,
            v if v >= V3_5_IV0 => 8,
            v if v >= V3_0_IV1 => 7,
            v if v >= V2_8_IV0 => 6,
            v if v >= V2_2_IV1 => 5,
            v if v >= V2_1_IV1 => 4,
            v if v >= V2_0_IV1 => 3,
            v if v >= V0_11_0_IV0 => 2,
            v if v >= V0_10_1_IV2 => 1,
            _ => 0,
        }
    }

    /// The transaction coordinator's WriteTxnMarkers (`writeTxnMarkersRequestVersion`).
    pub fn write_txn_markers(self) -> i16 {
        if self >= V2_8_IV0 { 1 } else { 0 }
    }

    /// The controller's LeaderAndIsr (`ControllerChannelManager`: the controller's own IBP,
    /// whichever broker receives it).
    pub fn leader_and_isr(self) -> i16 {
        match self {
            v if v >= V3_4_IV0 => 7,
            v if v >= V3_2_IV0 => 6,
            v if v >= V2_8_IV1 => 5,
            v if v >= V2_4_IV1 => 4,
            v if v >= V2_4_IV0 => 3,
            v if v >= V2_2_IV0 => 2,
            v if v >= V1_0_IV0 => 1,
            _ => 0,
        }
    }

    /// The controller's UpdateMetadata.
    pub fn update_metadata(self) -> i16 {
        match self {
            v if v >= V3_4_IV0 => 8,
            v if v >= V2_8_IV1 => 7,
            v if v >= V2_4_IV1 => 6,
            v if v >= V2_2_IV0 => 5,
            v if v >= V1_0_IV0 => 4,
            v if v >= V0_10_2_IV0 => 3,
            v if v >= V0_10_0_IV1 => 2,
            v if v >= V0_9_0 => 1,
            _ => 0,
        }
    }

    /// The controller's StopReplica.
    pub fn stop_replica(self) -> i16 {
        match self {
            v if v >= V3_4_IV0 => 4,
            v if v >= V2_6_IV0 => 3,
            v if v >= V2_4_IV1 => 2,
            v if v >= V2_2_IV0 => 1,
            _ => 0,
        }
    }

    /// A shutting-down broker's ControlledShutdown (`KafkaServer.controlledShutdown`).
    pub fn controlled_shutdown(self) -> i16 {
        match self {
            v if v < V0_9_0 => 0,
            v if v < V2_2_IV0 => 1,
            v if v < V2_4_IV1 => 2,
            _ => 3,
        }
    }

    /// Whether ISR changes go to the controller as AlterPartition (`isAlterPartitionSupported`);
    /// below, the leader writes the partition state znode and an `/isr_change_notification`.
    pub fn alter_partition(self) -> bool {
        self >= V2_7_IV2
    }

    /// The AlterPartition version a leader sends (Kafka 3.9's `AlterPartitionManager`): none
    /// below 2.7-IV2 (see `alter_partition`); from 2.8, when topics have ids, the newest (v3,
    /// topics by id and the ISR with broker epochs); at 2.7-IV2 v1, the newest that names topics.
    /// A request naming a topic without an id is held to v1 as Kafka's builder holds it, and the
    /// controller's ApiVersions lowers either (a Kafka 2.7-3.1 controller answers v0 only).
    pub fn alter_partition_version(self) -> Option<i16> {
        match self {
            v if !v.alter_partition() => None,
            v if v.topic_ids() => Some(3),
            _ => Some(1),
        }
    }

    /// The highest AlterPartition version a Kafka broker of this IBP's release answers (AlterIsr
    /// v0 came with 2.7, v1 with 3.2, v2 with 3.3, v3 with 3.5), for a broker standing in for
    /// one; -1 below 2.7, whose releases do not have the API.
    fn alter_partition_answered(self) -> i16 {
        match self {
            v if v < V2_7_IV0 => -1,
            v if v < V3_2_IV0 => 0,
            v if v < V3_3_IV0 => 1,
            v if v < V3_5_IV0 => 2,
            _ => 3,
        }
    }

    /// The highest version of inter-broker API `key` that this IBP sends, which is also the
    /// highest a Kafka broker of that release answers: a broker told to stand in for one
    /// (`odradek.test.advertise.ibp.versions`) advertises no more, and not at all an API below
    /// its lowest version (-1: the release lacks it). `None` for other APIs.
    pub fn inter_broker_max(self, key: ApiKey) -> Option<i16> {
        match key {
            ApiKey::Fetch => Some(self.fetch()),
            ApiKey::OffsetForLeaderEpoch => self.offset_for_leader_epoch(),
            ApiKey::ListOffsets => Some(self.list_offsets()),
            ApiKey::LeaderAndIsr => Some(self.leader_and_isr()),
            ApiKey::UpdateMetadata => Some(self.update_metadata()),
            ApiKey::StopReplica => Some(self.stop_replica()),
            ApiKey::ControlledShutdown => Some(self.controlled_shutdown()),
            ApiKey::WriteTxnMarkers => Some(self.write_txn_markers()),
            ApiKey::AlterPartition => Some(self.alter_partition_answered()),
            _ => None,
        }
    }

    /// The version of the broker's registration `/brokers/ids/<id>` (Kafka's `BrokerInfo.apply`):
    /// 5, with the broker's supported `features` (KIP-584), from 2.7-IV0; 4, with `rack` and the
    /// listeners' security protocols, from 0.10.0-IV1; else 2 (KAFKA-3100: 0.9.0.0 brokers and
    /// clients fail on anything newer).
    pub fn broker_registration_version(self) -> i32 {
        match self {
            v if v >= V2_7_IV0 => 5,
            v if v >= V0_10_0_IV1 => 4,
            _ => 2,
        }
    }

    /// Whether topics get ids (`isTopicIdsSupported`): the controller writes `topic_id` into
    /// new topic znodes only from 2.8 on.
    pub fn topic_ids(self) -> bool {
        self >= V2_8_IV0
    }
}

/// Reshapes `request`, built in its newest shape, for `version`: Kafka's request builders do
/// the same when a controller or follower talks at an older version. Fields a version lacks are
/// cleared (kafka-protocol refuses to encode them set), and the requests whose layout changed
/// (StopReplica before v3, LeaderAndIsr before v2, UpdateMetadata before v5) are moved into the
/// older layout.
pub fn fit(key: ApiKey, version: i16, request: &mut RequestKind) {
    match (key, request) {
        (ApiKey::Fetch, RequestKind::Fetch(r)) => {
            if version < 12 {
                for t in &mut r.topics {
                    for p in &mut t.partitions {
                        p.last_fetched_epoch = -1;
                    }
                }
            }
            if version >= 15 {
                // The follower names itself in ReplicaState from v15 on (KIP-903).
                if r.replica_state.replica_id.0 < 0 {
                    r.replica_state.replica_id = r.replica_id;
                }
                r.replica_id = kafka_protocol::messages::BrokerId(-1);
            } else {
                if r.replica_id.0 < 0 {
                    r.replica_id = r.replica_state.replica_id;
                }
                r.replica_state = Default::default();
            }
            if version < 7 {
                r.forgotten_topics_data.clear();
            }
        }
        (ApiKey::LeaderAndIsr, RequestKind::LeaderAndIsr(r)) => {
            if version < 7 {
                r.is_k_raft_controller = false;
            }
            if version < 5 {
                r._type = 0;
            }
            for t in &mut r.topic_states {
                for p in &mut t.partition_states {
                    if version < 6 {
                        p.leader_recovery_state = 0;
                    }
                    if version < 3 {
                        p.adding_replicas.clear();
                        p.removing_replicas.clear();
                    }
                    if version < 1 {
                        p.is_new = false;
                    }
                    if version < 2 {
                        p.topic_name = t.topic_name.clone();
                    }
                }
            }
            if version < 2 {
                let topics = std::mem::take(&mut r.topic_states);
                r.ungrouped_partition_states
                    .extend(topics.into_iter().flat_map(|t| t.partition_states));
            }
        }
        (ApiKey::UpdateMetadata, RequestKind::UpdateMetadata(r)) => {
            if version < 8 {
                r.is_k_raft_controller = false;
                r._type = 0;
            }
            if version < 4 {
                for t in &mut r.topic_states {
                    for p in &mut t.partition_states {
                        p.offline_replicas.clear();
                    }
                }
            }
            if version < 5 {
                let topics = std::mem::take(&mut r.topic_states);
                r.ungrouped_partition_states
                    .extend(topics.into_iter().flat_map(|t| {
                        let name = t.topic_name;
                        t.partition_states.into_iter().map(move |mut p| {
                            p.topic_name = name.clone();
                            p
                        })
                    }));
            }
        }
        (ApiKey::AlterPartition, RequestKind::AlterPartition(r)) => {
            for t in &mut r.topics {
                // Topics by name up to v1, by id from v2.
                if version >= 2 {
                    t.topic_name = Default::default();
                } else {
                    t.topic_id = uuid::Uuid::nil();
                }
                for p in &mut t.partitions {
                    if version < 3 {
                        // The ISR without broker epochs before v3 (KIP-903).
                        p.new_isr
                            .extend(p.new_isr_with_epochs.drain(..).map(|b| b.broker_id));
                    } else {
                        let ids = std::mem::take(&mut p.new_isr);
                        if p.new_isr_with_epochs.is_empty() {
                            p.new_isr_with_epochs = ids
                                .into_iter()
                                .map(|id| {
                                    let mut b = AlterPartitionBrokerState::default();
                                    b.broker_id = id;
                                    // ZooKeeper mode knows no replica's broker epoch here.
                                    b.broker_epoch = -1;
                                    b
                                })
                                .collect();
                        }
                    }
                    if version < 1 {
                        p.leader_recovery_state = 0;
                    }
                }
            }
        }
        (ApiKey::StopReplica, RequestKind::StopReplica(r)) => {
            if version < 4 {
                r.is_k_raft_controller = false;
            }
            if version < 3 {
                // One delete flag for the whole request: the controller sends deletions and
                // plain stops as separate requests.
                let topics = std::mem::take(&mut r.topic_states);
                r.delete_partitions = topics
                    .iter()
                    .any(|t| t.partition_states.iter().any(|p| p.delete_partition));
                for t in topics {
                    let indexes: Vec<i32> = t
                        .partition_states
                        .iter()
                        .map(|p| p.partition_index)
                        .collect();
                    if version >= 1 {
                        let mut v1 = StopReplicaTopicV1::default();
                        v1.name = t.topic_name;
                        v1.partition_indexes = indexes;
                        r.topics.push(v1);
                    } else {
                        for i in indexes {
                            let mut v0 = StopReplicaPartitionV0::default();
                            v0.topic_name = t.topic_name.clone();
                            v0.partition_index = i;
                            r.ungrouped_partitions.push(v0);
                        }
                    }
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_parse_as_kafka_parses_them() {
        let parse = |s: &str| s.parse::<Ibp>().map(|v| v.to_string());
        assert_eq!(parse("2.4").as_deref(), Ok("2.4-IV1"));
        assert_eq!(parse("2.4-IV0").as_deref(), Ok("2.4-IV0"));
        assert_eq!(parse("2.4.1").as_deref(), Ok("2.4-IV1"));
        assert_eq!(parse("2.8").as_deref(), Ok("2.8-IV1"));
        assert_eq!(parse("3.9").as_deref(), Ok("3.9-IV0"));
        assert_eq!(parse("0.10.0").as_deref(), Ok("0.10.0-IV1"));
        assert_eq!(parse("0.10.2.1").as_deref(), Ok("0.10.2-IV0"));
        assert_eq!(parse("0.9.0").as_deref(), Ok("0.9.0"));
        assert_eq!(parse("1.0").as_deref(), Ok("1.0-IV0"));
        for bad in ["2.9", "4.0", "2.4-IV2", "x", "", "2", "2.4-iv1", "3.9-IV1"] {
            assert!(parse(bad).is_err(), "{bad} should be refused");
        }
        assert_eq!(Ibp::default(), Ibp::LATEST);
        // The table is in order, so comparisons are Kafka's `isAtLeast`.
        let all: Vec<Ibp> = Ibp::all().collect();
        assert!(all.windows(2).all(|w| w[0] < w[1]));
        for v in all {
            assert_eq!(v.to_string().parse::<Ibp>(), Ok(v));
        }
    }

    use kafka_protocol::messages::leader_and_isr_request::{
        LeaderAndIsrPartitionState, LeaderAndIsrTopicState,
    };
    use kafka_protocol::messages::stop_replica_request::{
        StopReplicaPartitionState, StopReplicaTopicState,
    };
    use kafka_protocol::messages::update_metadata_request::{
        UpdateMetadataPartitionState, UpdateMetadataTopicState,
    };
    use kafka_protocol::messages::{
        BrokerId, LeaderAndIsrRequest, RequestHeader, StopReplicaRequest, TopicName,
        UpdateMetadataRequest,
    };
    use kafka_protocol::protocol::{Decodable, StrBytes};

    fn name(s: &'static str) -> TopicName {
        TopicName(StrBytes::from_static_str(s))
    }

    /// Encodes `request` at `version` after `fit`, and decodes it as the receiving broker would.
    fn round_trip<T: Decodable>(key: ApiKey, version: i16, mut request: RequestKind) -> T {
        fit(key, version, &mut request);
        let mut frame = crate::protocol::frame::encode_request(key, version, 1, None, &request)
            .unwrap_or_else(|e| panic!("{key:?} v{version} does not encode: {e}"));
        let mut body = frame.split_off(4).freeze();
        RequestHeader::decode(&mut body, key.request_header_version(version)).expect("header");
        T::decode(&mut body, version).expect("body")
    }

    /// The controller builds its requests in the newest shape; every version a Kafka 2.4 to 3.9
    /// broker may be sent encodes and still names every partition.
    #[test]
    fn controller_requests_fit_every_version() {
        let mut lai = LeaderAndIsrRequest::default();
        lai.controller_id = BrokerId(1);
        lai.broker_epoch = 5;
        let mut ts = LeaderAndIsrTopicState::default();
        ts.topic_name = name("t");
        ts.topic_id = uuid::Uuid::from_u128(7);
        for p in 0..2 {
            let mut ps = LeaderAndIsrPartitionState::default();
            ps.topic_name = name("t");
            ps.partition_index = p;
            ps.leader = BrokerId(1);
            ps.leader_epoch = 4;
            ps.isr = vec![BrokerId(1), BrokerId(2)];
            ps.replicas = vec![BrokerId(1), BrokerId(2), BrokerId(3)];
            ps.adding_replicas = vec![BrokerId(3)];
            ps.is_new = true;
            ps.leader_recovery_state = 1;
            ts.partition_states.push(ps);
        }
        lai.topic_states.push(ts);
        for version in 0..=7 {
            let got: LeaderAndIsrRequest = round_trip(
                ApiKey::LeaderAndIsr,
                version,
                RequestKind::LeaderAndIsr(lai.clone()),
            );
            let states: Vec<&LeaderAndIsrPartitionState> = got
                .ungrouped_partition_states
                .iter()
                .chain(got.topic_states.iter().flat_map(|t| &t.partition_states))
                .collect();
            assert_eq!(states.len(), 2, "LeaderAndIsr v{version}");
            assert_eq!(states[1].leader_epoch, 4);
            if version < 2 {
                assert_eq!(states[0].topic_name, name("t"));
            } else {
                assert_eq!(got.topic_states[0].topic_name, name("t"));
            }
        }

        let mut um = UpdateMetadataRequest::default();
        um.controller_id = BrokerId(1);
        let mut ts = UpdateMetadataTopicState::default();
        ts.topic_name = name("t");
        ts.topic_id = uuid::Uuid::from_u128(7);
        let mut ps = UpdateMetadataPartitionState::default();
        ps.partition_index = 3;
        ps.leader = BrokerId(2);
        ps.offline_replicas = vec![BrokerId(3)];
        ts.partition_states.push(ps);
        um.topic_states.push(ts);
        // v0 and v1 describe brokers without listeners; Kafka 2.4's lowest IBP sends v2 up.
        for version in 2..=8 {
            let got: UpdateMetadataRequest = round_trip(
                ApiKey::UpdateMetadata,
                version,
                RequestKind::UpdateMetadata(um.clone()),
            );
            let (topic, p) = if version < 5 {
                let p = &got.ungrouped_partition_states[0];
                (p.topic_name.clone(), p)
            } else {
                let t = &got.topic_states[0];
                (t.topic_name.clone(), &t.partition_states[0])
            };
            assert_eq!((topic, p.partition_index), (name("t"), 3), "v{version}");
        }

        for delete in [false, true] {
            let mut sr = StopReplicaRequest::default();
            sr.controller_id = BrokerId(1);
            let mut ts = StopReplicaTopicState::default();
            ts.topic_name = name("t");
            for p in [0, 2] {
                let mut ps = StopReplicaPartitionState::default();
                ps.partition_index = p;
                ps.leader_epoch = 4;
                ps.delete_partition = delete;
                ts.partition_states.push(ps);
            }
            sr.topic_states.push(ts);
            for version in 0..=4 {
                let got: StopReplicaRequest = round_trip(
                    ApiKey::StopReplica,
                    version,
                    RequestKind::StopReplica(sr.clone()),
                );
                let (parts, deleted): (Vec<i32>, bool) = match version {
                    0 => (
                        got.ungrouped_partitions
                            .iter()
                            .map(|p| p.partition_index)
                            .collect(),
                        got.delete_partitions,
                    ),
                    1 | 2 => (
                        got.topics[0].partition_indexes.clone(),
                        got.delete_partitions,
                    ),
                    _ => (
                        got.topic_states[0]
                            .partition_states
                            .iter()
                            .map(|p| p.partition_index)
                            .collect(),
                        got.topic_states[0].partition_states[0].delete_partition,
                    ),
                };
                assert_eq!(
                    (parts, deleted),
                    (vec![0, 2], delete),
                    "StopReplica v{version}"
                );
            }
        }
    }

    /// A leader builds AlterPartition in its newest shape (topic name and id, the ISR with
    /// broker epochs); every version encodes and names the same partition and ISR.
    #[test]
    fn alter_partition_fits_every_version() {
        use kafka_protocol::messages::AlterPartitionRequest;
        use kafka_protocol::messages::alter_partition_request::{PartitionData, TopicData};
        let mut r = AlterPartitionRequest::default();
        r.broker_id = BrokerId(2);
        r.broker_epoch = 99;
        let mut t = TopicData::default();
        t.topic_name = name("t");
        t.topic_id = uuid::Uuid::from_u128(7);
        let mut p = PartitionData::default();
        p.partition_index = 1;
        p.leader_epoch = 4;
        p.partition_epoch = 6;
        p.new_isr = vec![BrokerId(2), BrokerId(3)];
        t.partitions.push(p);
        r.topics.push(t);
        for version in 0..=3 {
            let got: AlterPartitionRequest = round_trip(
                ApiKey::AlterPartition,
                version,
                RequestKind::AlterPartition(r.clone()),
            );
            let t = &got.topics[0];
            if version >= 2 {
                assert_eq!(t.topic_id, uuid::Uuid::from_u128(7), "v{version}");
            } else {
                assert_eq!(t.topic_name, name("t"), "v{version}");
            }
            let p = &t.partitions[0];
            let isr: Vec<i32> = if version >= 3 {
                p.new_isr_with_epochs
                    .iter()
                    .map(|b| b.broker_id.0)
                    .collect()
            } else {
                p.new_isr.iter().map(|b| b.0).collect()
            };
            assert_eq!(
                (p.partition_index, p.leader_epoch, p.partition_epoch, isr),
                (1, 4, 6, vec![2, 3]),
                "v{version}"
            );
        }
    }

    #[test]
    fn versions_per_ibp_are_kafkas() {
        let at = |s: &str| s.parse::<Ibp>().unwrap_or(Ibp::LATEST);
        // (IBP, Fetch, OffsetsForLeaderEpoch, LeaderAndIsr, UpdateMetadata, StopReplica,
        // WriteTxnMarkers, ListOffsets, ControlledShutdown)
        let rows = [
            ("2.4", 11, 3, 4, 6, 2, 0, 5, 3),
            ("2.7", 12, 3, 4, 6, 3, 0, 5, 3),
            ("2.8", 12, 4, 5, 7, 3, 1, 6, 3),
            ("3.0", 12, 4, 5, 7, 3, 1, 7, 3),
            ("3.9", 17, 4, 7, 8, 4, 1, 9, 3),
        ];
        for (ibp, fetch, ofle, lai, um, sr, wtm, lo, cs) in rows {
            let v = at(ibp);
            assert_eq!(v.fetch(), fetch, "{ibp} Fetch");
            assert_eq!(v.offset_for_leader_epoch(), Some(ofle), "{ibp}");
            assert_eq!(v.leader_and_isr(), lai, "{ibp} LeaderAndIsr");
            assert_eq!(v.update_metadata(), um, "{ibp} UpdateMetadata");
            assert_eq!(v.stop_replica(), sr, "{ibp} StopReplica");
            assert_eq!(v.write_txn_markers(), wtm, "{ibp}");
            assert_eq!(v.list_offsets(), lo, "{ibp}");
            assert_eq!(v.controlled_shutdown(), cs, "{ibp}");
        }
        assert!(!at("2.4").truncation_on_fetch() && at("2.7").truncation_on_fetch());
        assert!(!at("2.7-IV1").alter_partition() && at("2.7").alter_partition());
        assert_eq!(at("2.7-IV1").alter_partition_version(), None);
        assert_eq!(at("2.7").alter_partition_version(), Some(1));
        assert_eq!(at("2.8").alter_partition_version(), Some(3));
        // What a broker of each release answers (AlterIsr v0 in 2.7-3.1).
        let answered = |s: &str| at(s).inter_broker_max(ApiKey::AlterPartition);
        assert_eq!(
            ["2.4", "2.7-IV0", "2.8", "3.1", "3.2", "3.4", "3.9"].map(answered),
            [
                Some(-1),
                Some(0),
                Some(0),
                Some(0),
                Some(1),
                Some(2),
                Some(3)
            ]
        );
        assert!(!at("2.7").topic_ids() && at("2.8").topic_ids());
    }
}
