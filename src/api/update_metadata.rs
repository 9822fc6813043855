//! UpdateMetadata: the controller's view of brokers and partition leaders, which is all this
//! broker's Metadata responses are built from.

use kafka_protocol::messages::{ApiKey, UpdateMetadataRequest, UpdateMetadataResponse};

use super::Api;
use super::leader_and_isr::flatten_partition_states;
use crate::metadata::cache::{BrokerEndpoint, BrokerInfo, PartitionInfo};
use crate::security::SecurityProtocol;

/// Leader -2: the topic is being deleted (Kafka's `LeaderDuringDelete`).
pub const LEADER_DURING_DELETE: i32 = -2;

pub fn handle(api: &Api, request: UpdateMetadataRequest, _version: i16) -> UpdateMetadataResponse {
    let mut response = UpdateMetadataResponse::default();
    if let Some(code) = api.refuse_stale_controller(
        ApiKey::UpdateMetadata,
        request.controller_id.0,
        request.controller_epoch,
        request.broker_epoch,
    ) {
        response.error_code = code;
        return response;
    }
    let brokers = request
        .live_brokers
        .into_iter()
        .map(|b| {
            // v0 has one host and port, PLAINTEXT implied; later versions list an endpoint per
            // listener, and each client is given the one of the listener it came in on.
            let endpoints = if b.endpoints.is_empty() {
                u16::try_from(b.v0_port)
                    .ok()
                    .map(|port| BrokerEndpoint {
                        listener: SecurityProtocol::Plaintext.name().to_string(),
                        host: b.v0_host.to_string(),
                        port,
                    })
                    .into_iter()
                    .collect()
            } else {
                b.endpoints
                    .iter()
                    .filter_map(|e| {
                        Some(BrokerEndpoint {
                            // Before v3 endpoints had no name: the protocol named the listener.
                            listener: if e.listener.is_empty() {
                                SecurityProtocol::from_id(e.security_protocol)?
                                    .name()
                                    .to_string()
                            } else {
                                e.listener.to_string()
                            },
                            host: e.host.to_string(),
                            port: u16::try_from(e.port).ok()?,
                        })
                    })
                    .collect()
            };
            BrokerInfo {
                id: b.id.0,
                endpoints,
                rack: b.rack.map(|r| r.to_string()),
            }
        })
        .collect();
    api.cache.set_brokers(brokers);
    let states = flatten_partition_states(request.ungrouped_partition_states, request.topic_states);
    let mut deleted = Vec::new();
    let mut updates: std::collections::BTreeMap<String, (uuid::Uuid, Vec<(i32, PartitionInfo)>)> =
        Default::default();
    for (id, s) in states {
        let topic = s.topic_name.0.to_string();
        if s.leader.0 == LEADER_DURING_DELETE {
            deleted.push(topic);
            continue;
        }
        updates.entry(topic).or_insert((id, Vec::new())).1.push((
            s.partition_index,
            PartitionInfo {
                leader: s.leader.0,
                leader_epoch: s.leader_epoch,
                replicas: s.replicas.iter().map(|b| b.0).collect(),
                isr: s.isr.iter().map(|b| b.0).collect(),
            },
        ));
    }
    for (topic, (id, partitions)) in updates {
        api.cache.update_partitions(&topic, id, partitions);
    }
    for topic in deleted {
        api.cache.remove_topic(&topic);
    }
    response
}
