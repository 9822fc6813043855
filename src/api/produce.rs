//! Produce: each partition's batch goes to its log as sent; only the header is re-stamped.

use futures::future::join_all;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};

use super::Api;
use crate::log::batch::{ATTR_COMPRESSION_MASK, BatchHeader, MAGIC_OFFSET};

pub async fn handle(api: &Api, request: ProduceRequest, version: i16) -> Option<ProduceResponse> {
    let acks = request.acks;
    let timeout = std::time::Duration::from_millis(request.timeout_ms.max(0) as u64);
    let transactional_id = request
        .transactional_id
        .as_ref()
        .map(|t| t.0.to_string())
        .filter(|t| !t.is_empty());
    let transactional_id = transactional_id.as_deref();
    let mut response = ProduceResponse::default();
    for topic in request.topic_data {
        let name = topic.name.0.to_string();
        let results = join_all(topic.partition_data.into_iter().map(|pd| {
            let name = name.clone();
            async move {
                let mut r = PartitionProduceResponse::default();
                r.index = pd.index;
                r.base_offset = -1;
                r.log_append_time_ms = -1;
                r.log_start_offset = -1;
                if !matches!(acks, -1..=1) {
                    r.error_code = ResponseError::InvalidRequiredAcks.code();
                    return r;
                }
                let Some(records) = pd.records else {
                    r.error_code = ResponseError::CorruptMessage.code();
                    return r;
                };
                if let Some(code) = transaction_check(api, transactional_id, &records, &name, pd.index) {
                    r.error_code = code;
                    return r;
                }
                // zstd needs Produce v7+ (KIP-110), so older clients cannot have asked for it.
                if version < 7 && records.get(MAGIC_OFFSET) == Some(&2) && records.len() > 22 && (i16::from_be_bytes([records[21], records[22]]) & ATTR_COMPRESSION_MASK) == 4 {
                    r.error_code = ResponseError::UnsupportedCompressionType.code();
                    return r;
                }
                let Some(partition) = api.replicas.leader(&name, pd.index) else {
                    r.error_code = api.not_leader_error(&name, pd.index);
                    return r;
                };
                let bytes = records.len() as u64;
                let appended = api.replicas.append_as_producer(&partition, records, acks == -1).await;
                let records_in = appended.as_ref().map_or(0, |i| i.records.max(0) as u64);
                crate::metrics::global().produced(&name, records_in, bytes, appended.is_err());
                match appended {
                    Ok(info) => {
                        r.base_offset = info.base_offset;
                        if acks == -1
                            && let Err(e) = api.replicas.wait_for_acks(&partition, info.last_offset, timeout).await
                        {
                            r.error_code = e.kafka_error_code();
                            return r;
                        }
                        if version >= 2 {
                            r.log_append_time_ms = info.log_append_time;
                        }
                        if version >= 5 {
                            r.log_start_offset = info.log_start_offset;
                        }
                    }
                    Err(e) => {
                        tracing::debug!(topic = name, partition = pd.index, error = %e, "produce refused");
                        r.error_code = e.kafka_error_code();
                        if version >= 8 {
                            r.error_message = Some(e.to_string().into());
                        }
                    }
                }
                r
            }
        }))
        .await;
        let mut t = TopicProduceResponse::default();
        t.name = topic.name;
        t.partition_responses = results;
        response.responses.push(t);
    }
    // acks=0: the client expects no response at all.
    (acks != 0).then_some(response)
}

/// Kafka's checks of a transactional produce: transactional batches come with the producer's
/// transactional id, and (`transaction.partition.verification.enable`, KIP-890) only into a
/// partition added to the producer's open transaction. The coordinator is asked only when it
/// is this broker.
fn transaction_check(
    api: &Api,
    transactional_id: Option<&str>,
    records: &[u8],
    topic: &str,
    partition: i32,
) -> Option<i16> {
    if records.get(MAGIC_OFFSET) != Some(&2) {
        return None;
    }
    let header = BatchHeader::parse(records).ok()?;
    match (header.is_transactional(), transactional_id) {
        (false, _) => None,
        // Kafka's `ProduceRequest.validateRecords`.
        (true, None) => Some(ResponseError::InvalidRecord.code()),
        (true, Some(id)) => api.txn.check_produce(
            id,
            header.producer_id,
            header.producer_epoch,
            topic,
            partition,
        ),
    }
}
