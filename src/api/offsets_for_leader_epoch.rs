//! OffsetsForLeaderEpoch: where a leader epoch ends in the leader's log. Followers of older
//! leaders use it to find where their log diverges; consumers (KIP-320) to detect that the log
//! they read was truncated after a leader change.

use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::{OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};

use super::errors::KafkaCode;
use super::{Api, ClientInfo, errors};
use crate::security::acl::{Operation, ResourceType};

pub async fn handle(
    api: &Api,
    client: &ClientInfo,
    request: OffsetForLeaderEpochRequest,
    version: i16,
) -> OffsetForLeaderEpochResponse {
    let mut response = OffsetForLeaderEpochResponse::default();
    // Brokers with CLUSTER_ACTION may ask about every topic; others need DESCRIBE on each.
    let cluster = api.authorized_on_cluster(client, Operation::ClusterAction);
    let describable = if cluster {
        Default::default()
    } else {
        api.authorized_names(
            client,
            Operation::Describe,
            ResourceType::Topic,
            request.topics.iter().map(|t| t.topic.0.as_str()),
        )
    };
    for topic in request.topics {
        let name = topic.topic.0.to_string();
        let mut t = OffsetForLeaderTopicResult::default();
        t.topic = topic.topic.clone();
        for p in topic.partitions {
            let mut r = EpochEndOffset::default();
            r.partition = p.partition;
            r.leader_epoch = -1;
            r.end_offset = -1;
            if !cluster && !describable.contains(&name) {
                r.error_code = kafka_protocol::ResponseError::TopicAuthorizationFailed.code();
                t.partitions.push(r);
                continue;
            }
            // Answered by the leader only, for followers and consumers alike (as Kafka does).
            match api.replicas.leader(&name, p.partition) {
                None => r.error_code = api.not_leader_error(&name, p.partition),
                Some(part) => {
                    let current = if version >= 2 {
                        p.current_leader_epoch
                    } else {
                        -1
                    };
                    if let Some(code) = errors::leader_epoch_check(current, part.leader_epoch()) {
                        r.error_code = code;
                    } else {
                        let requested = p.leader_epoch;
                        match api
                            .replicas
                            .with_log(&part, move |log| Ok(log.end_offset_for_epoch(requested)))
                            .await
                        {
                            Ok((epoch, end_offset)) => {
                                if version >= 1 {
                                    r.leader_epoch = epoch;
                                }
                                r.end_offset = end_offset;
                            }
                            Err(e) => r.error_code = e.kafka_error_code(),
                        }
                    }
                }
            }
            t.partitions.push(r);
        }
        response.topics.push(t);
    }
    response
}
