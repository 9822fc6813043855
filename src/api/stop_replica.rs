//! StopReplica: the controller takes a partition away from this broker, deleting its log when
//! the topic is deleted or the replica moved.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::stop_replica_response::StopReplicaPartitionError;
use kafka_protocol::messages::{ApiKey, StopReplicaRequest, StopReplicaResponse, TopicName};

use super::errors::KafkaCode;
use super::{Api, errors};
use crate::group::OFFSETS_TOPIC;

/// Leader epoch -2 marks a topic deletion, always applied; -1 means "no epoch check".
const EPOCH_DURING_DELETE: i32 = -2;

pub async fn handle(api: &Api, request: StopReplicaRequest, version: i16) -> StopReplicaResponse {
    let mut response = StopReplicaResponse::default();
    // The controller epoch is checked under the lock too: a request that waited for it may
    // have been overtaken by a newer controller's.
    let _state_change = api.replicas.lock_state_changes().await;
    if let Some(code) = api.refuse_stale_controller(
        ApiKey::StopReplica,
        request.controller_id.0,
        request.controller_epoch,
        request.broker_epoch,
    ) {
        response.error_code = code;
        return response;
    }
    // (topic, partition, leader epoch, delete) in every version's shape.
    let mut wanted: Vec<(TopicName, i32, i32, bool)> = Vec::new();
    if version >= 3 {
        for t in request.topic_states {
            for p in t.partition_states {
                wanted.push((
                    t.topic_name.clone(),
                    p.partition_index,
                    p.leader_epoch,
                    p.delete_partition,
                ));
            }
        }
    } else {
        for p in request.ungrouped_partitions {
            wanted.push((
                p.topic_name,
                p.partition_index,
                -1,
                request.delete_partitions,
            ));
        }
        for t in request.topics {
            for p in t.partition_indexes {
                wanted.push((t.name.clone(), p, -1, request.delete_partitions));
            }
        }
    }
    for (topic, partition, epoch, delete) in wanted {
        let name = topic.0.as_str();
        let mut code = errors::NONE;
        if let Some(p) = api.replicas.get(name, partition)
            && epoch >= 0
            && epoch < p.leader_epoch()
        {
            code = ResponseError::FencedLeaderEpoch.code();
        } else {
            if name == OFFSETS_TOPIC {
                api.groups.resigned(partition);
            }
            if name == crate::txn::TRANSACTION_STATE_TOPIC {
                api.txn.resigned(partition);
            }
            if let Err(e) = api.replicas.stop_replica(name, partition, delete).await {
                tracing::error!(topic = name, partition, error = %e, "cannot stop replica");
                code = e.kafka_error_code();
            }
        }
        if epoch == EPOCH_DURING_DELETE && code == errors::NONE {
            tracing::debug!(topic = name, partition, "replica deleted with its topic");
        }
        let mut e = StopReplicaPartitionError::default();
        e.topic_name = topic;
        e.partition_index = partition;
        e.error_code = code;
        response.partition_errors.push(e);
    }
    response
}
