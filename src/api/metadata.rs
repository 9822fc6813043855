//! Metadata: brokers, topics, partition leaders; creates unknown topics when allowed.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::errors::KafkaCode;
use super::{Api, ClientInfo, errors};
use crate::controller::ControllerError;
use crate::metadata::cache::{INTERNAL_TOPICS, TopicInfo};
use crate::security::acl::{CLUSTER_NAME, Operation, ResourceType};

/// How long a Metadata request that auto-creates a topic waits for its leaders. Kafka answers
/// LEADER_NOT_AVAILABLE at once and lets the client retry; a short wait saves that round trip
/// in the usual case where the controller is quick.
const AUTO_CREATE_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// A topic a Metadata request names: by name, or (v12+) by id, resolved if the id is known.
enum Wanted {
    Name(String),
    Id(uuid::Uuid, Option<String>),
}

pub async fn handle(
    api: &Api,
    client: &ClientInfo,
    request: MetadataRequest,
    version: i16,
) -> MetadataResponse {
    // v0 asks for all topics with an empty list; v1+ with null.
    let all_topics = match &request.topics {
        None => true,
        Some(t) => t.is_empty() && version == 0,
    };
    let mut wanted: Vec<Wanted> = Vec::new();
    if all_topics {
        wanted.extend(api.cache.topic_names().into_iter().map(Wanted::Name));
    } else {
        for t in request.topics.into_iter().flatten() {
            let w = match t.name {
                Some(n) => Wanted::Name(n.0.to_string()),
                None => Wanted::Id(t.topic_id, api.cache.topic_name_by_id(t.topic_id)),
            };
            // Kafka answers each topic once however often it is named.
            let duplicate = wanted.iter().any(|o| match (o, &w) {
                (Wanted::Name(a), Wanted::Name(b)) => a == b,
                (Wanted::Id(a, _), Wanted::Id(b, _)) => a == b,
                _ => false,
            });
            if !duplicate {
                wanted.push(w);
            }
        }
    }
    let allow_auto_create = (version < 4 || request.allow_auto_topic_creation)
        && api.config.auto_create_topics_enable
        && !all_topics;
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
    let live: Vec<i32> = brokers.iter().map(|b| b.id).collect();
    if version >= 2 {
        response.cluster_id = Some(StrBytes::from_string(api.cache.cluster_id()));
    }
    if version >= 1 {
        response.controller_id = BrokerId(api.cache.controller_id());
    }
    // DESCRIBE is checked before existence, so a topic the client may not see is refused
    // whether or not it exists (or left out of an all-topics answer).
    let named = wanted.iter().filter_map(|w| match w {
        Wanted::Name(n) | Wanted::Id(_, Some(n)) => Some(n.as_str()),
        Wanted::Id(_, None) => None,
    });
    let describable = if all_topics {
        api.visible_names(client, Operation::Describe, ResourceType::Topic, named)
    } else {
        api.authorized_names(client, Operation::Describe, ResourceType::Topic, named)
    };
    let include_topic_ops = version >= 8 && request.include_topic_authorized_operations;
    let mut may_create_all: Option<bool> = None;
    for w in wanted {
        let mut t = MetadataResponseTopic::default();
        t.topic_authorized_operations = i32::MIN;
        let name = match w {
            Wanted::Id(id, None) => {
                t.topic_id = id;
                t.error_code = ResponseError::UnknownTopicId.code();
                response.topics.push(t);
                continue;
            }
            Wanted::Id(id, Some(name)) if !describable.contains(&name) => {
                // Topic ids are not secret: the id is echoed, the name withheld.
                t.topic_id = id;
                t.error_code = ResponseError::TopicAuthorizationFailed.code();
                response.topics.push(t);
                continue;
            }
            Wanted::Name(name) if !describable.contains(&name) => {
                if !all_topics {
                    t.name = Some(TopicName(StrBytes::from_string(name)));
                    t.error_code = ResponseError::TopicAuthorizationFailed.code();
                    response.topics.push(t);
                }
                continue;
            }
            Wanted::Name(name) | Wanted::Id(_, Some(name)) => name,
        };
        t.name = Some(TopicName(StrBytes::from_string(name.clone())));
        t.is_internal = version >= 1 && INTERNAL_TOPICS.contains(&name.as_str());
        let info = match api.cache.topic(&name) {
            Some(info) => Some(info),
            None if allow_auto_create => {
                // Auto-creation needs CREATE on the cluster, or else on the topic.
                let may_create = *may_create_all
                    .get_or_insert_with(|| api.authorized_on_cluster(client, Operation::Create))
                    || api.authorized(client, Operation::Create, ResourceType::Topic, &name);
                if !may_create {
                    t.error_code = ResponseError::TopicAuthorizationFailed.code();
                    response.topics.push(t);
                    continue;
                }
                match api
                    .controller
                    .create_topic(
                        &name,
                        -1,
                        -1,
                        None,
                        Default::default(),
                        false,
                        AUTO_CREATE_WAIT,
                    )
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
            fill_topic(&mut t, &info, version, &live, &unreachable);
        } else if t.error_code == errors::NONE {
            t.error_code = ResponseError::LeaderNotAvailable.code();
        }
        if include_topic_ops {
            t.topic_authorized_operations =
                api.authorized_operations(client, ResourceType::Topic, &name);
        }
        response.topics.push(t);
    }
    response.cluster_authorized_operations = i32::MIN;
    // v8-10 (KIP-430): the cluster's operations, 0 to a client that may not describe it.
    if (8..=10).contains(&version) && request.include_cluster_authorized_operations {
        response.cluster_authorized_operations =
            if api.authorized_on_cluster(client, Operation::Describe) {
                api.authorized_operations(client, ResourceType::Cluster, CLUSTER_NAME)
            } else {
                0
            };
    }
    response
}

fn fill_topic(
    t: &mut MetadataResponseTopic,
    info: &TopicInfo,
    version: i16,
    live: &[i32],
    unreachable: &[i32],
) {
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
            } else if !live.contains(&pi.leader) {
                // A leader the controller no longer lists as live (Kafka's ZkMetadataCache):
                // it died, and no other replica has been elected yet.
                mp.leader_id = BrokerId(-1);
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
