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

use super::{Api, throttle};

pub async fn create(api: &Api, request: CreateTopicsRequest, version: i16) -> CreateTopicsResponse {
    let mut response = CreateTopicsResponse::default();
    let mut seen = std::collections::HashSet::new();
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
        if !topic.assignments.is_empty() {
            // Manual replica assignment arrives with the multi-broker controller.
            r.error_code = ResponseError::InvalidRequest.code();
            set_message(
                &mut r.error_message,
                version,
                1,
                "manual replica assignment is not supported yet".into(),
            );
            response.topics.push(r);
            continue;
        }
        let partitions = if topic.num_partitions == -1 {
            api.config.num_partitions
        } else {
            topic.num_partitions
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
                configs,
                request.validate_only,
                std::time::Duration::from_millis(request.timeout_ms.max(0) as u64),
            )
            .await
        {
            Ok(()) if version >= 5 => {
                let info = api.cache.topic(&name);
                r.num_partitions = info.as_ref().map_or(
                    if topic.num_partitions == -1 {
                        api.config.num_partitions
                    } else {
                        topic.num_partitions
                    },
                    |i| i.partitions.len() as i32,
                );
                r.replication_factor = info
                    .as_ref()
                    .and_then(|i| {
                        i.partitions
                            .values()
                            .next()
                            .map(|p| p.replicas.len() as i16)
                    })
                    .unwrap_or(if topic.replication_factor == -1 {
                        api.config.default_replication_factor
                    } else {
                        topic.replication_factor
                    });
                if let (Some(i), true) = (info, version >= 7) {
                    r.topic_id = i.id;
                }
                r.configs = Some(Vec::new());
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

pub async fn delete(api: &Api, request: DeleteTopicsRequest, version: i16) -> DeleteTopicsResponse {
    let mut response = DeleteTopicsResponse::default();
    let names: Vec<String> = request
        .topic_names
        .iter()
        .map(|n| n.0.to_string())
        .chain(request.topics.iter().filter_map(|t| match &t.name {
            Some(n) => Some(n.0.to_string()),
            None => api.cache.topic_name_by_id(t.topic_id),
        }))
        .collect();
    for name in names {
        let mut r = DeletableTopicResult::default();
        r.name = Some(kafka_protocol::messages::TopicName(StrBytes::from_string(
            name.clone(),
        )));
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
    request: CreatePartitionsRequest,
    version: i16,
) -> CreatePartitionsResponse {
    let mut response = CreatePartitionsResponse::default();
    for topic in request.topics {
        let mut r = CreatePartitionsTopicResult::default();
        r.name = topic.name.clone();
        let added = api
            .cache
            .topic(&topic.name)
            .map_or(0, |t| i64::from(topic.count) - t.partitions.len() as i64);
        if topic.assignments.as_ref().is_some_and(|a| !a.is_empty()) {
            r.error_code = ResponseError::InvalidRequest.code();
            r.error_message = Some(StrBytes::from_static_str(
                "manual replica assignment is not supported yet",
            ));
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
