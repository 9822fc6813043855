//! Requests only the active controller answers (clients and brokers send them to the broker
//! Metadata names as controller): ControlledShutdown, ElectLeaders, AlterPartitionReassignments
//! and ListPartitionReassignments. Any other broker answers NOT_CONTROLLER.

use std::collections::BTreeMap;

use kafka_protocol::messages::alter_partition_reassignments_response::{
    ReassignablePartitionResponse, ReassignableTopicResponse,
};
use kafka_protocol::messages::controlled_shutdown_response::RemainingPartition;
use kafka_protocol::messages::elect_leaders_response::{
    PartitionResult as ElectionResult, ReplicaElectionResult,
};
use kafka_protocol::messages::list_partition_reassignments_response::{
    OngoingPartitionReassignment, OngoingTopicReassignment,
};
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse, BrokerId,
    ControlledShutdownRequest, ControlledShutdownResponse, ElectLeadersRequest,
    ElectLeadersResponse, ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse,
    TopicName,
};
use kafka_protocol::protocol::StrBytes;

use super::errors::KafkaCode;
use super::{Api, errors};
use crate::controller::PartitionRefusal;
use crate::log::TopicPartition;

fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_string()))
}

fn message(m: Option<String>) -> Option<StrBytes> {
    m.map(StrBytes::from_string)
}

pub async fn controlled_shutdown(
    api: &Api,
    request: ControlledShutdownRequest,
) -> ControlledShutdownResponse {
    let mut response = ControlledShutdownResponse::default();
    match api
        .controller
        .controlled_shutdown(request.broker_id.0, request.broker_epoch)
        .await
    {
        Ok(remaining) => {
            response.remaining_partitions = remaining
                .into_iter()
                .map(|(t, p)| {
                    let mut r = RemainingPartition::default();
                    r.topic_name = topic_name(&t);
                    r.partition_index = p;
                    r
                })
                .collect();
        }
        Err(e) => response.error_code = e.kafka_error_code(),
    }
    response
}

pub async fn elect_leaders(
    api: &Api,
    request: ElectLeadersRequest,
    version: i16,
) -> ElectLeadersResponse {
    // v0 knows only preferred elections; v1+ say which (0 preferred, 1 unclean).
    let unclean = version >= 1 && request.election_type == 1;
    let asked: Option<Vec<TopicPartition>> = request.topic_partitions.map(|topics| {
        topics
            .into_iter()
            .flat_map(|t| {
                let name = t.topic.0.to_string();
                t.partitions.into_iter().map(move |p| (name.clone(), p))
            })
            .collect()
    });
    let every_partition = asked.is_none();
    let results: Vec<(TopicPartition, i16, Option<String>)> =
        match api.controller.elect_leaders(unclean, asked.clone()).await {
            Ok(r) => r
                .into_iter()
                // Asked for every partition, a client hears only of elections held or failed.
                .filter(|(_, r)| {
                    !(every_partition && r.error == Some(PartitionRefusal::ElectionNotNeeded))
                })
                .map(|(tp, r)| (tp, errors::code_or_none(r.error.as_ref()), r.message))
                .collect(),
            Err(e) => asked
                .unwrap_or_default()
                .into_iter()
                .map(|tp| {
                    let message = "This is not the controller.".to_string();
                    (tp, e.kafka_error_code(), Some(message))
                })
                .collect(),
        };
    let mut by_topic: BTreeMap<String, Vec<ElectionResult>> = BTreeMap::new();
    for ((t, p), code, text) in results {
        let mut e = ElectionResult::default();
        e.partition_id = p;
        e.error_code = code;
        e.error_message = message(text);
        by_topic.entry(t).or_default().push(e);
    }
    let mut response = ElectLeadersResponse::default();
    response.replica_election_results = by_topic
        .into_iter()
        .map(|(t, partition_result)| {
            let mut r = ReplicaElectionResult::default();
            r.topic = topic_name(&t);
            r.partition_result = partition_result;
            r
        })
        .collect();
    response
}

pub async fn alter_reassignments(
    api: &Api,
    request: AlterPartitionReassignmentsRequest,
) -> AlterPartitionReassignmentsResponse {
    let mut response = AlterPartitionReassignmentsResponse::default();
    let asked: Vec<(TopicPartition, Option<Vec<i32>>)> = request
        .topics
        .into_iter()
        .flat_map(|t| {
            let name = t.name.0.to_string();
            t.partitions.into_iter().map(move |p| {
                (
                    (name.clone(), p.partition_index),
                    p.replicas.map(|r| r.into_iter().map(|b| b.0).collect()),
                )
            })
        })
        .collect();
    let results = match api.controller.alter_reassignments(asked).await {
        Ok(r) => r,
        Err(e) => {
            response.error_code = e.kafka_error_code();
            response.error_message = Some(StrBytes::from_static_str("This is not the controller."));
            return response;
        }
    };
    let mut by_topic: BTreeMap<String, Vec<ReassignablePartitionResponse>> = BTreeMap::new();
    for ((t, p), r) in results {
        let mut e = ReassignablePartitionResponse::default();
        e.partition_index = p;
        e.error_code = errors::code_or_none(r.error.as_ref());
        e.error_message = message(r.message);
        by_topic.entry(t).or_default().push(e);
    }
    response.responses = by_topic
        .into_iter()
        .map(|(t, partitions)| {
            let mut r = ReassignableTopicResponse::default();
            r.name = topic_name(&t);
            r.partitions = partitions;
            r
        })
        .collect();
    response
}

pub async fn list_reassignments(
    api: &Api,
    request: ListPartitionReassignmentsRequest,
) -> ListPartitionReassignmentsResponse {
    let mut response = ListPartitionReassignmentsResponse::default();
    let asked: Option<Vec<TopicPartition>> = request.topics.map(|topics| {
        topics
            .into_iter()
            .flat_map(|t| {
                let name = t.name.0.to_string();
                t.partition_indexes
                    .into_iter()
                    .map(move |p| (name.clone(), p))
            })
            .collect()
    });
    let listed = match api.controller.list_reassignments(asked).await {
        Ok(l) => l,
        Err(e) => {
            response.error_code = e.kafka_error_code();
            response.error_message = Some(StrBytes::from_static_str("This is not the controller."));
            return response;
        }
    };
    let ids = |v: Vec<i32>| -> Vec<BrokerId> { v.into_iter().map(BrokerId).collect() };
    let mut by_topic: BTreeMap<String, Vec<OngoingPartitionReassignment>> = BTreeMap::new();
    for r in listed {
        let mut o = OngoingPartitionReassignment::default();
        o.partition_index = r.partition.1;
        o.replicas = ids(r.replicas);
        o.adding_replicas = ids(r.adding);
        o.removing_replicas = ids(r.removing);
        by_topic.entry(r.partition.0).or_default().push(o);
    }
    response.topics = by_topic
        .into_iter()
        .map(|(t, partitions)| {
            let mut o = OngoingTopicReassignment::default();
            o.name = topic_name(&t);
            o.partitions = partitions;
            o
        })
        .collect();
    response
}
