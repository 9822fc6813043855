//! Produce: each partition's batch goes to its log as sent; only the header is re-stamped.

use futures::future::join_all;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};

use super::errors::KafkaCode;
use super::{Api, ClientInfo, NoResponse, errors};
use crate::log::batch::{ATTR_COMPRESSION_MASK, BatchHeader, MAGIC_OFFSET};
use crate::security::acl::{Operation, ResourceType};

pub async fn handle(
    api: &Api,
    client: &ClientInfo,
    request: ProduceRequest,
    version: i16,
) -> Result<ProduceResponse, NoResponse> {
    let acks = request.acks;
    let timeout = std::time::Duration::from_millis(request.timeout_ms.max(0) as u64);
    let transactional_id = request
        .transactional_id
        .as_ref()
        .map(|t| t.0.to_string())
        .filter(|t| !t.is_empty());
    let transactional_id = transactional_id.as_deref();
    // Transactional batches need WRITE on the producer's transactional id, or the whole request
    // is refused (Kafka's `handleProduceRequest`).
    let transactional = request.topic_data.iter().any(|t| {
        t.partition_data
            .iter()
            .any(|p| p.records.as_deref().is_some_and(is_transactional))
    });
    if transactional
        && !transactional_id.is_some_and(|id| {
            api.authorized(client, Operation::Write, ResourceType::TransactionalId, id)
        })
    {
        return refuse_all(
            request,
            acks,
            ResponseError::TransactionalIdAuthorizationFailed.code(),
        );
    }
    let writable = api.authorized_names(
        client,
        Operation::Write,
        ResourceType::Topic,
        request.topic_data.iter().map(|t| t.name.0.as_str()),
    );
    // Every partition of every topic is started in the first poll, in request order: that is
    // when each batch joins its partition's append queue, which keeps pipelined requests'
    // batches in order (see `Api::dispatch`).
    let writable = &writable;
    let topics = join_all(request.topic_data.into_iter().map(|topic| async move {
        let name = topic.name.0.to_string();
        let authorized = writable.contains(&name);
        let results = join_all(topic.partition_data.into_iter().map(|pd| {
            let name = name.clone();
            async move {
                let mut r = PartitionProduceResponse::default();
                r.index = pd.index;
                r.base_offset = -1;
                r.log_append_time_ms = -1;
                r.log_start_offset = -1;
                if !authorized {
                    r.error_code = ResponseError::TopicAuthorizationFailed.code();
                    return r;
                }
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
        t
    }))
    .await;
    let mut response = ProduceResponse::default();
    response.responses = topics;
    owed(response, acks)
}

/// acks=0: the client expects no response at all, so a failure closes the connection, which
/// is the only way it learns of one (Kafka's `handleProduceRequest`).
fn owed(response: ProduceResponse, acks: i16) -> Result<ProduceResponse, NoResponse> {
    if acks != 0 {
        return Ok(response);
    }
    let failed = response.responses.iter().find_map(|t| {
        t.partition_responses
            .iter()
            .find(|p| p.error_code != errors::NONE)
            .map(|p| (t.name.0.to_string(), p.index, p.error_code))
    });
    match failed {
        None => Err(NoResponse::NotOwed),
        Some((topic, partition, code)) => Err(NoResponse::Close(format!(
            "acks=0 produce to {topic}-{partition} failed with error {code}; closing the connection"
        ))),
    }
}

/// The whole request refused with one error on every partition.
fn refuse_all(
    request: ProduceRequest,
    acks: i16,
    code: i16,
) -> Result<ProduceResponse, NoResponse> {
    let mut response = ProduceResponse::default();
    response.responses = request
        .topic_data
        .into_iter()
        .map(|topic| {
            let mut t = TopicProduceResponse::default();
            t.name = topic.name;
            t.partition_responses = topic
                .partition_data
                .into_iter()
                .map(|pd| {
                    let mut r = PartitionProduceResponse::default();
                    r.index = pd.index;
                    r.error_code = code;
                    r.base_offset = -1;
                    r.log_append_time_ms = -1;
                    r.log_start_offset = -1;
                    r
                })
                .collect();
            t
        })
        .collect();
    owed(response, acks)
}

/// Whether a partition's records are a transactional batch (Kafka's
/// `RequestUtils.hasTransactionalRecords` looks at the first batch).
fn is_transactional(records: &[u8]) -> bool {
    records.get(MAGIC_OFFSET) == Some(&2)
        && BatchHeader::parse(records).is_ok_and(|h| h.is_transactional())
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
        (true, Some(id)) => api
            .txn
            .check_produce(
                id,
                header.producer_id,
                header.producer_epoch,
                topic,
                partition,
            )
            .map(|e| e.kafka_error_code()),
    }
}
