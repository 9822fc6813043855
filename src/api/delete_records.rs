//! DeleteRecords: moves a partition's log start offset forward (the "low watermark"), as
//! Kafka's `Partition.deleteRecordsOnLeader` does. Records below it are no longer readable:
//! fetches answer OFFSET_OUT_OF_RANGE and ListOffsets EARLIEST reports it. Segments entirely
//! below it are deleted, and the new start is checkpointed at once so it survives a crash.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};

use super::errors::KafkaCode;
use super::{Api, ClientInfo};
use crate::metadata::cache::INTERNAL_TOPICS;
use crate::replica::blocking;
use crate::security::acl::{Operation, ResourceType};

/// Offset -1 asks to delete everything below the high watermark.
const HIGH_WATERMARK: i64 = -1;

pub async fn handle(
    api: &Api,
    client: &ClientInfo,
    request: DeleteRecordsRequest,
) -> DeleteRecordsResponse {
    let mut response = DeleteRecordsResponse::default();
    let mut moved = false;
    let deletable = api.authorized_names(
        client,
        Operation::Delete,
        ResourceType::Topic,
        request.topics.iter().map(|t| t.name.0.as_str()),
    );
    for topic in request.topics {
        let name = topic.name.0.to_string();
        let mut t = DeleteRecordsTopicResult::default();
        t.name = topic.name.clone();
        for p in topic.partitions {
            let mut r = DeleteRecordsPartitionResult::default();
            r.partition_index = p.partition_index;
            r.low_watermark = -1;
            if !deletable.contains(&name) {
                r.error_code = ResponseError::TopicAuthorizationFailed.code();
                t.partitions.push(r);
                continue;
            }
            match delete(api, &name, p.partition_index, p.offset).await {
                Ok(low_watermark) => {
                    r.low_watermark = low_watermark;
                    moved = true;
                }
                Err(code) => r.error_code = code,
            }
            t.partitions.push(r);
        }
        response.topics.push(t);
    }
    if moved {
        let logs = api.replicas.logs().clone();
        if let Err(e) = blocking(move || logs.write_checkpoints()).await {
            // The segments are gone already; the periodic checkpoint retries.
            tracing::error!(error = %e, "could not checkpoint log start offsets after DeleteRecords");
        }
    }
    response
}

async fn delete(api: &Api, topic: &str, partition: i32, offset: i64) -> Result<i64, i16> {
    if api.cache.partition(topic, partition).is_none() {
        return Err(ResponseError::UnknownTopicOrPartition.code());
    }
    if INTERNAL_TOPICS.contains(&topic) {
        return Err(ResponseError::InvalidTopicException.code());
    }
    let Some(part) = api.replicas.get(topic, partition) else {
        return Err(ResponseError::NotLeaderOrFollower.code());
    };
    let outcome = api
        .replicas
        .with_log(&part, move |log| {
            // Kafka refuses to delete records of a topic whose policy does not delete.
            if !log.config().cleanup_delete {
                return Ok(Err(ResponseError::PolicyViolation.code()));
            }
            let target = if offset == HIGH_WATERMARK {
                log.high_watermark()
            } else {
                offset
            };
            log.delete_records(target).map(Ok)
        })
        .await;
    match outcome {
        Ok(Ok(low_watermark)) => {
            tracing::info!(topic, partition, low_watermark, "deleted records");
            Ok(low_watermark)
        }
        Ok(Err(code)) => Err(code),
        Err(e) => Err(e.kafka_error_code()),
    }
}
