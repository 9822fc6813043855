//! Metadata: brokers, topics, partition leaders; creates unknown topics when allowed.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::{Api, ClientInfo, errors};
use crate::controller::ControllerError;
use crate::metadata::cache::{INTERNAL_TOPICS, TopicInfo};

/// How long a Metadata request that auto-creates a topic waits for its leaders. Kafka answers
/// LEADER_NOT_AVAILABLE at once and lets the client retry; a short wait saves that round trip
/// in the usual case where the controller is quick.
const AUTO_CREATE_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

pub async fn handle(
    api: &Api,
    client: &ClientInfo,
    request: MetadataRequest,
    version: i16,
) -> MetadataResponse {
    // v0 asks for all topics with an empty list; v1+ with null.
    let requested: Option<Vec<String>> = match request.topics {
        None => None,
        Some(t) if t.is_empty() && version == 0 => None,
        // v10+ may name a topic by id instead; an unknown id is answered by id below.
        Some(t) => Some(
            t.into_iter()
                .filter_map(|t| match t.name {
                    Some(n) => Some(n.0.to_string()),
                    None => api.cache.topic_name_by_id(t.topic_id),
                })
                .collect(),
        ),
    };
    let allow_auto_create = version < 4 || request.allow_auto_topic_creation;
    let mut response = MetadataResponse::default();
    let listener = client.listener(&api.config);
    // Only the brokers with an endpoint on the client's listener: another listener's host and
    // port may be unreachable from where the client is.
    let brokers = api.cache.brokers();
    response.brokers = brokers
        .iter()
        .filter_map(|b| {
            let e = b.endpoint(listener)?;
            let mut mb = MetadataResponseBroker::default();
            mb.node_id = BrokerId(b.id);
            mb.host = StrBytes::from_string(e.host.clone());
            mb.port = i32::from(e.port);
            if version >= 1 {
                mb.rack = b.rack.clone().map(StrBytes::from_string);
            }
            Some(mb)
        })
        .collect();
    // Leaders that are live brokers without this listener.
    let unreachable: Vec<i32> = brokers
        .iter()
        .filter(|b| b.endpoint(listener).is_none())
        .map(|b| b.id)
        .collect();
    if version >= 2 {
        response.cluster_id = Some(StrBytes::from_string(api.cache.cluster_id()));
    }
    if version >= 1 {
        response.controller_id = BrokerId(api.cache.controller_id());
    }
    let names = match requested {
        None => api.cache.topic_names(),
        Some(names) => names,
    };
    for name in names {
        let mut t = MetadataResponseTopic::default();
        t.name = Some(TopicName(StrBytes::from_string(name.clone())));
        t.is_internal = version >= 1 && INTERNAL_TOPICS.contains(&name.as_str());
        t.topic_authorized_operations = i32::MIN;
        let info = match api.cache.topic(&name) {
            Some(info) => Some(info),
            None if allow_auto_create && api.config.auto_create_topics_enable => {
                match api
                    .controller
                    .create_topic(&name, -1, -1, Default::default(), false, AUTO_CREATE_WAIT)
                    .await
                {
                    Ok(()) | Err(ControllerError::TopicExists(_)) => api.cache.topic(&name),
                    Err(e) => {
                        tracing::info!(topic = name, error = %e, "auto-creation refused");
                        t.error_code = match e {
                            ControllerError::InvalidTopic(_) => {
                                ResponseError::InvalidTopicException.code()
                            }
                            other => other.kafka_error_code(),
                        };
                        None
                    }
                }
            }
            None => {
                t.error_code = if crate::controller::validate_topic_name(&name).is_err() {
                    ResponseError::InvalidTopicException.code()
                } else {
                    ResponseError::UnknownTopicOrPartition.code()
                };
                None
            }
        };
        if let Some(info) = info {
            fill_topic(&mut t, &info, version, &unreachable);
        } else if t.error_code == errors::NONE {
            t.error_code = ResponseError::LeaderNotAvailable.code();
        }
        response.topics.push(t);
    }
    response.cluster_authorized_operations = i32::MIN;
    response
}

fn fill_topic(t: &mut MetadataResponseTopic, info: &TopicInfo, version: i16, unreachable: &[i32]) {
    if version >= 10 {
        t.topic_id = info.id;
    }
    t.partitions = info
        .partitions
        .iter()
        .map(|(p, pi)| {
            let mut mp = MetadataResponsePartition::default();
            mp.partition_index = *p;
            mp.leader_id = BrokerId(pi.leader);
            if version >= 7 {
                mp.leader_epoch = pi.leader_epoch;
            }
            mp.replica_nodes = pi.replicas.iter().copied().map(BrokerId).collect();
            mp.isr_nodes = pi.isr.iter().copied().map(BrokerId).collect();
            mp.error_code = if pi.leader < 0 {
                ResponseError::LeaderNotAvailable.code()
            } else if unreachable.contains(&pi.leader) {
                // The leader has no endpoint on the client's listener (Kafka's
                // ZkMetadataCache): the client cannot reach it, so it gets no leader.
                mp.leader_id = BrokerId(-1);
                if version >= 6 {
                    ResponseError::ListenerNotFound.code()
                } else {
                    ResponseError::LeaderNotAvailable.code()
                }
            } else {
                errors::NONE
            };
            mp
        })
        .collect();
}
