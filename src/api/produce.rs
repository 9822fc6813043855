//! Produce: each partition's batch goes to its log as sent; only the header is re-stamped.

use futures::future::join_all;
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};

use super::{Api, errors};
use crate::log::batch::{ATTR_COMPRESSION_MASK, MAGIC_OFFSET};

pub async fn handle(api: &Api, request: ProduceRequest, version: i16) -> Option<ProduceResponse> {
    let acks = request.acks;
    let timeout = std::time::Duration::from_millis(request.timeout_ms.max(0) as u64);
    let transactional = request_is_transactional(&request.transactional_id);
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
                    r.error_code = errors::INVALID_REQUIRED_ACKS;
                    return r;
                }
                if transactional {
                    r.error_code = errors::TRANSACTIONAL_ID_AUTHORIZATION_FAILED;
                    return r;
                }
                let Some(records) = pd.records else {
                    r.error_code = errors::CORRUPT_MESSAGE;
                    return r;
                };
                // zstd needs Produce v7+ (KIP-110), so older clients cannot have asked for it.
                if version < 7 && records.get(MAGIC_OFFSET) == Some(&2) && records.len() > 22 && (i16::from_be_bytes([records[21], records[22]]) & ATTR_COMPRESSION_MASK) == 4 {
                    r.error_code = errors::UNSUPPORTED_COMPRESSION_TYPE;
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

fn request_is_transactional(id: &Option<kafka_protocol::messages::TransactionalId>) -> bool {
    id.as_ref().is_some_and(|t| !t.0.is_empty())
}
