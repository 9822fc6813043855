//! DescribeProducers (KIP-664): the producers a partition's log knows of, from its producer
//! state, as Kafka's `KafkaApis.handleDescribeProducersRequest` answers.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::describe_producers_response::{
    PartitionResponse, ProducerState, TopicResponse,
};
use kafka_protocol::messages::{DescribeProducersRequest, DescribeProducersResponse, ProducerId};

use super::errors::KafkaCode;
use super::{Api, ClientInfo};
use crate::security::acl::{Operation, ResourceType};

pub async fn handle(
    api: &Api,
    client: &ClientInfo,
    request: DescribeProducersRequest,
) -> DescribeProducersResponse {
    let readable = api.authorized_names(
        client,
        Operation::Read,
        ResourceType::Topic,
        request.topics.iter().map(|t| t.name.0.as_str()),
    );
    let mut response = DescribeProducersResponse::default();
    for topic in request.topics {
        let name = topic.name.0.to_string();
        // READ on the topic before anything tells whether it exists.
        let topic_error = if !readable.contains(&name) {
            Some(ResponseError::TopicAuthorizationFailed.code())
        } else if api.cache.topic(&name).is_none() {
            Some(ResponseError::UnknownTopicOrPartition.code())
        } else {
            None
        };
        let mut t = TopicResponse::default();
        t.name = topic.name;
        for index in topic.partition_indexes {
            let mut r = PartitionResponse::default();
            r.partition_index = index;
            match topic_error {
                Some(code) => r.error_code = code,
                None => match producers(api, &name, index).await {
                    Ok(active) => r.active_producers = active,
                    Err(code) => r.error_code = code,
                },
            }
            t.partitions.push(r);
        }
        response.topics.push(t);
    }
    response
}

/// The producer state of a partition this broker hosts, leader or follower, as Kafka's
/// `ReplicaManager.activeProducerState` reads it: not hosted here, NOT_LEADER_OR_FOLLOWER when
/// the cluster has the partition, UNKNOWN_TOPIC_OR_PARTITION when it does not.
async fn producers(api: &Api, topic: &str, partition: i32) -> Result<Vec<ProducerState>, i16> {
    let Some(part) = api.replicas.get(topic, partition) else {
        return Err(if api.cache.partition(topic, partition).is_some() {
            ResponseError::NotLeaderOrFollower.code()
        } else {
            ResponseError::UnknownTopicOrPartition.code()
        });
    };
    api.replicas
        .with_log(&part, |log| {
            Ok(log
                .producer_state()
                .iter()
                .map(|(id, entry)| {
                    let last = entry.batches.back();
                    let mut s = ProducerState::default();
                    s.producer_id = ProducerId(id);
                    s.producer_epoch = i32::from(entry.epoch);
                    s.last_sequence = last.map_or(-1, |b| b.last_seq);
                    s.last_timestamp = last.map_or(-1, |b| b.timestamp);
                    s.coordinator_epoch = entry.coordinator_epoch.unwrap_or(-1);
                    s.current_txn_start_offset = entry.current_txn_first_offset.unwrap_or(-1);
                    s
                })
                .collect())
        })
        .await
        .map_err(|e| e.kafka_error_code())
}
