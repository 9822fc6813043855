//! CreateTopics and DeleteTopics, through the controller.

use std::collections::BTreeMap;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse};
use kafka_protocol::messages::{
    CreateTopicsRequest, CreateTopicsResponse, DeleteTopicsRequest, DeleteTopicsResponse,
};
use kafka_protocol::protocol::StrBytes;

use super::errors::KafkaCode;
use super::{Api, ClientInfo, throttle};
use crate::security::acl::{Operation, ResourceType};

pub async fn create(
    api: &Api,
    client: &ClientInfo,
    request: CreateTopicsRequest,
    version: i16,
) -> CreateTopicsResponse {
    let mut response = CreateTopicsResponse::default();
    let mut seen = std::collections::HashSet::new();
    let names = || request.topics.iter().map(|t| t.name.0.as_str());
    // CREATE on the cluster, or else on each topic; DESCRIBE_CONFIGS to be shown its configs.
    let creatable = if api.authorized_quietly(
        client,
        Operation::Create,
        ResourceType::Cluster,
        crate::security::acl::CLUSTER_NAME,
    ) {
        names().map(str::to_string).collect()
    } else {
        api.authorized_names(client, Operation::Create, ResourceType::Topic, names())
    };
    let config_describable = api.authorized_names(
        client,
        Operation::DescribeConfigs,
        ResourceType::Topic,
        names(),
    );
    for topic in request.topics {
        let name = topic.name.0.to_string();
        let mut r = CreatableTopicResult::default();
        r.name = topic.name.clone();
        if !seen.insert(name.clone()) {
            r.error_code = ResponseError::InvalidRequest.code();
            set_message(
                &mut r.error_message,
                version,
                1,
                format!("topic {name} appears more than once in the request"),
            );
            response.topics.push(r);
            continue;
        }
        if version >= 5 && !config_describable.contains(&name) {
            r.topic_config_error_code = ResponseError::TopicAuthorizationFailed.code();
        }
        if !creatable.contains(&name) {
            r.error_code = ResponseError::TopicAuthorizationFailed.code();
            set_message(
                &mut r.error_message,
                version,
                1,
                "Authorization failed.".into(),
            );
            response.topics.push(r);
            continue;
        }
        let assigned: Option<Vec<(i32, Vec<i32>)>> = (!topic.assignments.is_empty()).then(|| {
            topic
                .assignments
                .iter()
                .map(|a| {
                    (
                        a.partition_index,
                        a.broker_ids.iter().map(|b| b.0).collect(),
                    )
                })
                .collect()
        });
        if assigned.is_some() && (topic.num_partitions != -1 || topic.replication_factor != -1) {
            r.error_code = ResponseError::InvalidRequest.code();
            set_message(
                &mut r.error_message,
                version,
                1,
                "Both numPartitions or replicationFactor and replicasAssignments were set. \
                 Both cannot be used at the same time."
                    .into(),
            );
            response.topics.push(r);
            continue;
        }
        let partitions = match &assigned {
            Some(a) => a.len() as i32,
            None if topic.num_partitions == -1 => api.config.num_partitions,
            None => topic.num_partitions,
        };
        if !request.validate_only
            && api.controller.is_active()
            && !throttle::record_mutations(api, partitions.into(), version >= 6)
        {
            r.error_code = ResponseError::ThrottlingQuotaExceeded.code();
            set_message(
                &mut r.error_message,
                version,
                1,
                throttle::THROTTLING_QUOTA_EXCEEDED.into(),
            );
            response.topics.push(r);
            continue;
        }
        let configs: BTreeMap<String, String> = topic
            .configs
            .iter()
            .filter_map(|c| {
                c.value
                    .as_ref()
                    .map(|v| (c.name.to_string(), v.to_string()))
            })
            .collect();
        match api
            .controller
            .create_topic(
                &name,
                topic.num_partitions,
                topic.replication_factor,
                assigned.clone(),
                configs,
                request.validate_only,
                std::time::Duration::from_millis(request.timeout_ms.max(0) as u64),
            )
            .await
        {
            Ok(()) if version >= 5 => {
                let info = api.cache.topic(&name);
                r.num_partitions = info
                    .as_ref()
                    .map_or(partitions, |i| i.partitions.len() as i32);
                let requested_rf = match &assigned {
                    Some(a) => a.first().map_or(0, |(_, r)| r.len() as i16),
                    None if topic.replication_factor == -1 => api.config.default_replication_factor,
                    None => topic.replication_factor,
                };
                r.replication_factor = info
                    .as_ref()
                    .and_then(|i| {
                        i.partitions
                            .values()
                            .next()
                            .map(|p| p.replicas.len() as i16)
                    })
                    .unwrap_or(requested_rf);
                if let (Some(i), true) = (info, version >= 7) {
                    r.topic_id = i.id;
                }
                // Without DESCRIBE_CONFIGS the configs stay null (topic_config_error_code says why).
                if config_describable.contains(&name) {
                    r.configs = Some(Vec::new());
                }
            }
            Ok(()) => {}
            Err(e) => {
                r.error_code = e.kafka_error_code();
                set_message(&mut r.error_message, version, 1, e.to_string());
            }
        }
        response.topics.push(r);
    }
    response
}

/// Error messages exist from some version on; before it the field must stay null.
fn set_message(field: &mut Option<StrBytes>, version: i16, since: i16, message: String) {
    if version >= since {
        *field = Some(StrBytes::from_string(message));
    }
}

pub async fn delete(
    api: &Api,
    client: &ClientInfo,
    request: DeleteTopicsRequest,
    version: i16,
) -> DeleteTopicsResponse {
    let mut response = DeleteTopicsResponse::default();
    // Each topic by name (or, v6+, by id: `(id, its name if known)`).
    let wanted: Vec<(Option<uuid::Uuid>, Option<String>)> = request
        .topic_names
        .iter()
        .map(|n| (None, Some(n.0.to_string())))
        .chain(request.topics.iter().map(|t| match &t.name {
            Some(n) => (None, Some(n.0.to_string())),
            None => (Some(t.topic_id), api.cache.topic_name_by_id(t.topic_id)),
        }))
        .collect();
    let named = || wanted.iter().filter_map(|(_, n)| n.as_deref());
    // With deletion disabled every topic is refused as such, before any ACL is looked at.
    let checked = api.config.delete_topic_enable;
    let deletable = api.authorized_names(client, Operation::Delete, ResourceType::Topic, named());
    let describable = api.authorized_names(
        client,
        Operation::Describe,
        ResourceType::Topic,
        wanted
            .iter()
            .filter(|(id, _)| id.is_some())
            .filter_map(|(_, n)| n.as_deref()),
    );
    for (id, name) in wanted {
        let mut r = DeletableTopicResult::default();
        if version >= 6 {
            r.topic_id = id.unwrap_or_default();
        }
        let Some(name) = name else {
            r.error_code = ResponseError::UnknownTopicId.code();
            response.responses.push(r);
            continue;
        };
        if checked && id.is_some() && !describable.contains(&name) {
            // Named by id and not describable: the name stays hidden.
            r.error_code = ResponseError::TopicAuthorizationFailed.code();
            response.responses.push(r);
            continue;
        }
        r.name = Some(kafka_protocol::messages::TopicName(StrBytes::from_string(
            name.clone(),
        )));
        if checked && !deletable.contains(&name) {
            r.error_code = ResponseError::TopicAuthorizationFailed.code();
            response.responses.push(r);
            continue;
        }
        let partitions = api
            .cache
            .topic(&name)
            .map_or(0, |t| t.partitions.len() as i64);
        if api.controller.is_active() && !throttle::record_mutations(api, partitions, version >= 5)
        {
            r.error_code = ResponseError::ThrottlingQuotaExceeded.code();
            set_message(
                &mut r.error_message,
                version,
                5,
                throttle::THROTTLING_QUOTA_EXCEEDED.into(),
            );
            response.responses.push(r);
            continue;
        }
        if let Err(e) = api
            .controller
            .delete_topic(
                &name,
                std::time::Duration::from_millis(request.timeout_ms.max(0) as u64),
            )
            .await
        {
            r.error_code = e.kafka_error_code();
            set_message(&mut r.error_message, version, 5, e.to_string());
        }
        response.responses.push(r);
    }
    response
}

pub async fn create_partitions(
    api: &Api,
    client: &ClientInfo,
    request: CreatePartitionsRequest,
    version: i16,
) -> CreatePartitionsResponse {
    let mut response = CreatePartitionsResponse::default();
    let alterable = api.authorized_names(
        client,
        Operation::Alter,
        ResourceType::Topic,
        request.topics.iter().map(|t| t.name.0.as_str()),
    );
    for topic in request.topics {
        let mut r = CreatePartitionsTopicResult::default();
        r.name = topic.name.clone();
        let added = api
            .cache
            .topic(&topic.name)
            .map_or(0, |t| i64::from(topic.count) - t.partitions.len() as i64);
        if !alterable.contains(topic.name.0.as_str()) {
            r.error_code = ResponseError::TopicAuthorizationFailed.code();
            r.error_message = Some(StrBytes::from_static_str("Authorization failed."));
        } else if !request.validate_only
            && api.controller.is_active()
            && !throttle::record_mutations(api, added, version >= 3)
        {
            r.error_code = ResponseError::ThrottlingQuotaExceeded.code();
            r.error_message = Some(StrBytes::from_static_str(
                throttle::THROTTLING_QUOTA_EXCEEDED,
            ));
        } else if let Err(e) = api
            .controller
            .create_partitions(
                &topic.name,
                topic.count,
                // Null: Kafka's round robin; a list (even empty) is checked against the count.
                topic.assignments.map(|a| {
                    a.into_iter()
                        .map(|p| p.broker_ids.into_iter().map(|b| b.0).collect())
                        .collect()
                }),
                request.validate_only,
                std::time::Duration::from_millis(request.timeout_ms.max(0) as u64),
            )
            .await
        {
            r.error_code = e.kafka_error_code();
            r.error_message = Some(StrBytes::from_string(e.to_string()));
        }
        response.results.push(r);
    }
    response
}
