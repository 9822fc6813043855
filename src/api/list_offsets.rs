//! ListOffsets: earliest (-2), latest (-1) and by timestamp.

use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};

use super::errors::KafkaCode;
use super::{Api, ClientInfo, errors};
use crate::security::acl::{Operation, ResourceType};

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
/// v7+ (KIP-734): the record with the largest timestamp.
const MAX_TIMESTAMP: i64 = -3;
/// v8+ (KIP-405): the first offset kept locally, and the last offset in tiered storage.
const EARLIEST_LOCAL: i64 = -4;
const LATEST_TIERED: i64 = -5;

pub async fn handle(
    api: &Api,
    client: &ClientInfo,
    request: ListOffsetsRequest,
    version: i16,
) -> ListOffsetsResponse {
    let mut response = ListOffsetsResponse::default();
    let describable = api.authorized_names(
        client,
        Operation::Describe,
        ResourceType::Topic,
        request.topics.iter().map(|t| t.name.0.as_str()),
    );
    // v2+: a read_committed consumer's "latest" is the last stable offset.
    let read_committed = version >= 2 && request.isolation_level == 1;
    for topic in request.topics {
        let name = topic.name.0.to_string();
        let mut t = ListOffsetsTopicResponse::default();
        t.name = topic.name.clone();
        for p in topic.partitions {
            let mut r = ListOffsetsPartitionResponse::default();
            r.partition_index = p.partition_index;
            r.timestamp = -1;
            r.offset = -1;
            r.leader_epoch = -1;
            if !describable.contains(&name) {
                r.error_code = kafka_protocol::ResponseError::TopicAuthorizationFailed.code();
                t.partitions.push(r);
                continue;
            }
            match api.replicas.leader(&name, p.partition_index) {
                None => r.error_code = api.not_leader_error(&name, p.partition_index),
                Some(part) => {
                    let ts = p.timestamp;
                    let epoch = part.leader_epoch();
                    if let Some(code) = errors::leader_epoch_check(
                        if version >= 4 {
                            p.current_leader_epoch
                        } else {
                            -1
                        },
                        epoch,
                    ) {
                        r.error_code = code;
                        t.partitions.push(r);
                        continue;
                    }
                    let found = api
                        .replicas
                        .with_log(&part, move |log| {
                            Ok(match ts {
                                LATEST if read_committed => Some((log.last_stable_offset(), -1)),
                                LATEST => Some((log.high_watermark(), -1)),
                                EARLIEST | EARLIEST_LOCAL => Some((log.log_start_offset(), -1)),
                                // Without tiered storage nothing is tiered (Kafka answers -1).
                                LATEST_TIERED => Some((-1, -1)),
                                MAX_TIMESTAMP => log.offset_of_max_timestamp()?,
                                ts => log.offset_for_timestamp(ts)?,
                            })
                        })
                        .await;
                    match found {
                        // Fields a version lacks must keep their defaults, or encoding fails.
                        Ok(Some((offset, _))) if version == 0 => r.old_style_offsets = vec![offset],
                        Ok(Some((offset, timestamp))) => {
                            r.offset = offset;
                            r.timestamp = timestamp;
                            if version >= 4 {
                                r.leader_epoch = epoch;
                            }
                        }
                        Ok(None) => {}
                        Err(e) => r.error_code = e.kafka_error_code(),
                    }
                }
            }
            t.partitions.push(r);
        }
        response.topics.push(t);
    }
    response
}
