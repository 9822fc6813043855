//! ListOffsets: earliest (-2), latest (-1) and by timestamp.

use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};

use super::{Api, errors};

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;

pub async fn handle(api: &Api, request: ListOffsetsRequest, version: i16) -> ListOffsetsResponse {
    let mut response = ListOffsetsResponse::default();
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
            match api.replicas.get(&name, p.partition_index) {
                None => r.error_code = errors::UNKNOWN_TOPIC_OR_PARTITION,
                Some(part) => {
                    let ts = p.timestamp;
                    let epoch = part.leader_epoch();
                    let found = api
                        .replicas
                        .with_log(&part, move |log| {
                            Ok(match ts {
                                LATEST => Some((log.high_watermark(), -1)),
                                EARLIEST => Some((log.log_start_offset(), -1)),
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
