//! AlterPartition v0-3 (AlterIsr in Kafka 2.7-2.8): partition leaders at IBP 2.7-IV2 and later
//! send their ISR changes to the controller (`controller::active::alter_partition`). Any other
//! broker answers NOT_CONTROLLER, and the leader looks for the controller again.

use kafka_protocol::messages::alter_partition_response::{PartitionData, TopicData};
use kafka_protocol::messages::{
    AlterPartitionRequest, AlterPartitionResponse, BrokerId, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use super::Api;
use super::errors::{self, KafkaCode};
use crate::controller::active::alter_partition::{AlterPartition, IsrChange, TopicRef};

pub async fn handle(
    api: &Api,
    request: AlterPartitionRequest,
    version: i16,
) -> AlterPartitionResponse {
    let topics = request
        .topics
        .into_iter()
        .map(|t| {
            let topic = if version >= 2 {
                TopicRef::Id(t.topic_id)
            } else {
                TopicRef::Name(t.topic_name.0.to_string())
            };
            let changes = t
                .partitions
                .into_iter()
                .map(|p| IsrChange {
                    partition: p.partition_index,
                    leader_epoch: p.leader_epoch,
                    // v3 carries each member's broker epoch (KIP-903), which ZooKeeper mode
                    // does not check, as Kafka's ZooKeeper controller does not.
                    isr: if version >= 3 {
                        p.new_isr_with_epochs
                            .iter()
                            .map(|b| b.broker_id.0)
                            .collect()
                    } else {
                        p.new_isr.iter().map(|b| b.0).collect()
                    },
                    leader_recovery_state: p.leader_recovery_state,
                    partition_epoch: p.partition_epoch,
                })
                .collect();
            (topic, changes)
        })
        .collect();
    let ask = AlterPartition {
        broker: request.broker_id.0,
        broker_epoch: request.broker_epoch,
        topics,
    };
    let mut response = AlterPartitionResponse::default();
    match api.controller.alter_partition(ask).await {
        Err(e) => response.error_code = e.kafka_error_code(),
        Ok(topics) => {
            response.topics = topics
                .into_iter()
                .map(|(topic, partitions)| {
                    let mut t = TopicData::default();
                    match topic {
                        TopicRef::Id(id) => t.topic_id = id,
                        TopicRef::Name(name) => {
                            t.topic_name = TopicName(StrBytes::from_string(name))
                        }
                    }
                    t.partitions = partitions
                        .into_iter()
                        .map(|(index, result)| {
                            let mut p = PartitionData::default();
                            p.partition_index = index;
                            match result {
                                Ok(state) => {
                                    p.leader_id = BrokerId(state.leader);
                                    p.leader_epoch = state.leader_epoch;
                                    p.isr = state.isr.into_iter().map(BrokerId).collect();
                                    p.partition_epoch = state.partition_epoch;
                                }
                                Err(refusal) => {
                                    p.error_code = errors::isr_refusal_code(refusal, version)
                                }
                            }
                            p
                        })
                        .collect();
                    t
                })
                .collect();
        }
    }
    response
}
