//! The requests the controller sends to brokers: LeaderAndIsr, UpdateMetadata and
//! StopReplica (Kafka's `ControllerChannelManager` batch), built from the controller's state.
//! Their versions are those of the controller's own inter-broker protocol version, as Kafka's
//! controller picks them (lowered to what the receiving broker speaks, `Connection::call_upto`).
//! Separate from the decisions that make them needed.

use std::collections::{BTreeMap, BTreeSet};

use kafka_protocol::messages::leader_and_isr_request::{
    LeaderAndIsrLiveLeader, LeaderAndIsrPartitionState, LeaderAndIsrTopicState,
};
use kafka_protocol::messages::stop_replica_request::{
    StopReplicaPartitionState, StopReplicaTopicState,
};
use kafka_protocol::messages::update_metadata_request::{
    UpdateMetadataBroker, UpdateMetadataEndpoint, UpdateMetadataPartitionState,
    UpdateMetadataTopicState,
};
use kafka_protocol::messages::{
    ApiKey, BrokerId, LeaderAndIsrRequest, RequestKind, StopReplicaRequest, TopicName,
    UpdateMetadataRequest,
};
use kafka_protocol::protocol::StrBytes;

use super::brokers::security_protocol_id;
use super::{ActiveController, EPOCH_DURING_DELETE, LEADER_DURING_DELETE, Tp};
use crate::controller::channel::Reply;

impl ActiveController {
    /// StopReplica to `broker` for `partitions` (each with the leader epoch it is sent with).
    pub(super) fn send_stop_replica(
        &self,
        broker: i32,
        partitions: &[(Tp, i32)],
        delete: bool,
    ) -> Option<Reply> {
        if partitions.is_empty() {
            return None;
        }
        let mut by_topic: BTreeMap<&str, StopReplicaTopicState> = BTreeMap::new();
        for ((topic, p), epoch) in partitions {
            let ts = by_topic.entry(topic.as_str()).or_insert_with(|| {
                let mut ts = StopReplicaTopicState::default();
                ts.topic_name = TopicName(StrBytes::from_string(topic.clone()));
                ts
            });
            let mut s = StopReplicaPartitionState::default();
            s.partition_index = *p;
            s.leader_epoch = *epoch;
            s.delete_partition = delete;
            ts.partition_states.push(s);
        }
        let mut req = StopReplicaRequest::default();
        req.controller_id = BrokerId(self.config.broker_id);
        req.controller_epoch = self.epoch;
        req.broker_epoch = self.brokers.get(&broker).map_or(-1, |b| b.epoch);
        req.topic_states = by_topic.into_values().collect();
        self.channels.send(
            broker,
            ApiKey::StopReplica,
            self.config.inter_broker_protocol_version.stop_replica(),
            RequestKind::StopReplica(req),
        )
    }

    pub(super) fn send_deleted(&mut self, topic: &str, tps: &[Tp], to: &[i32]) {
        if tps.is_empty() {
            return;
        }
        let id = self.topics.get(topic).map_or(uuid::Uuid::nil(), |t| t.id);
        let mut ts = UpdateMetadataTopicState::default();
        ts.topic_name = TopicName(StrBytes::from_string(topic.to_string()));
        ts.topic_id = id;
        ts.partition_states = tps
            .iter()
            .map(|(_, p)| {
                let mut s = UpdateMetadataPartitionState::default();
                s.partition_index = *p;
                s.controller_epoch = self.epoch;
                s.leader = BrokerId(LEADER_DURING_DELETE);
                s.leader_epoch = EPOCH_DURING_DELETE;
                s
            })
            .collect();
        for broker in to {
            let req = self.update_metadata_request(*broker, vec![ts.clone()]);
            self.channels.send(
                *broker,
                ApiKey::UpdateMetadata,
                self.config.inter_broker_protocol_version.update_metadata(),
                RequestKind::UpdateMetadata(req),
            );
        }
    }

    pub(super) fn update_metadata_request(
        &self,
        broker: i32,
        topic_states: Vec<UpdateMetadataTopicState>,
    ) -> UpdateMetadataRequest {
        let mut req = UpdateMetadataRequest::default();
        req.controller_id = BrokerId(self.config.broker_id);
        req.controller_epoch = self.epoch;
        req.broker_epoch = self.brokers.get(&broker).map_or(-1, |b| b.epoch);
        req.topic_states = topic_states;
        req.live_brokers = self
            .brokers
            .iter()
            .map(|(id, b)| {
                let mut ub = UpdateMetadataBroker::default();
                ub.id = BrokerId(*id);
                ub.rack = b.rack.clone().map(StrBytes::from_string);
                ub.endpoints = b
                    .endpoints
                    .iter()
                    .map(|(listener, host, port, protocol)| {
                        let mut e = UpdateMetadataEndpoint::default();
                        e.listener = StrBytes::from_string(listener.clone());
                        e.host = StrBytes::from_string(host.clone());
                        e.port = *port as i32;
                        e.security_protocol = security_protocol_id(protocol);
                        e
                    })
                    .collect();
                ub
            })
            .collect();
        req
    }

    /// UpdateMetadata for `partitions` (all when `None`) to each broker in `to`.
    pub(super) fn send_update_metadata(&mut self, partitions: Option<&[Tp]>, to: &[i32]) {
        let wanted: Vec<Tp> = match partitions {
            Some(p) => p.to_vec(),
            None => self.states.keys().cloned().collect(),
        };
        let mut by_topic: BTreeMap<String, UpdateMetadataTopicState> = BTreeMap::new();
        for tp in &wanted {
            let (Some(s), Some(topic)) = (self.states.get(tp), self.topics.get(&tp.0)) else {
                continue;
            };
            let replicas = topic.assignment.get(&tp.1).cloned().unwrap_or_default();
            let ts = by_topic.entry(tp.0.clone()).or_insert_with(|| {
                let mut ts = UpdateMetadataTopicState::default();
                ts.topic_name = TopicName(StrBytes::from_string(tp.0.clone()));
                ts.topic_id = topic.id;
                ts
            });
            let mut ps = UpdateMetadataPartitionState::default();
            ps.partition_index = tp.1;
            ps.controller_epoch = s.controller_epoch;
            ps.leader = BrokerId(s.leader);
            ps.leader_epoch = s.leader_epoch;
            ps.isr = s.isr.iter().copied().map(BrokerId).collect();
            ps.zk_version = s.zk_version;
            ps.offline_replicas = replicas
                .iter()
                .copied()
                .filter(|r| !self.brokers.contains_key(r))
                .map(BrokerId)
                .collect();
            ps.replicas = replicas.into_iter().map(BrokerId).collect();
            ts.partition_states.push(ps);
        }
        let topic_states: Vec<UpdateMetadataTopicState> = by_topic.into_values().collect();
        for broker in to {
            let req = self.update_metadata_request(*broker, topic_states.clone());
            self.channels.send(
                *broker,
                ApiKey::UpdateMetadata,
                self.config.inter_broker_protocol_version.update_metadata(),
                RequestKind::UpdateMetadata(req),
            );
        }
    }

    /// LeaderAndIsr for `partitions` to their live replicas (only to `only` when given).
    pub(super) fn send_leader_and_isr(&mut self, partitions: &[Tp], only: Option<i32>) {
        // Nobody waits for these replies.
        let _ = self.send_leader_and_isr_to(partitions, |r| only.is_none_or(|o| o == r));
    }

    /// LeaderAndIsr for `partitions` to those of their live replicas that `to` accepts; the
    /// replies, by broker, for the callers that read them.
    pub(super) fn send_leader_and_isr_to(
        &mut self,
        partitions: &[Tp],
        to: impl Fn(i32) -> bool,
    ) -> Vec<(i32, Reply)> {
        let mut per_broker: BTreeMap<i32, BTreeMap<String, LeaderAndIsrTopicState>> =
            BTreeMap::new();
        let mut leaders: BTreeMap<i32, BTreeSet<i32>> = BTreeMap::new();
        for tp in partitions {
            let (Some(s), Some(topic)) = (self.states.get(tp), self.topics.get(&tp.0)) else {
                continue;
            };
            let Some(replicas) = topic.assignment.get(&tp.1) else {
                continue;
            };
            let mut ps = LeaderAndIsrPartitionState::default();
            ps.topic_name = TopicName(StrBytes::from_string(tp.0.clone()));
            ps.partition_index = tp.1;
            ps.controller_epoch = s.controller_epoch;
            ps.leader = BrokerId(s.leader);
            ps.leader_epoch = s.leader_epoch;
            ps.isr = s.isr.iter().copied().map(BrokerId).collect();
            ps.partition_epoch = s.zk_version;
            ps.replicas = replicas.iter().copied().map(BrokerId).collect();
            let ids = |m: &BTreeMap<i32, Vec<i32>>| -> Vec<BrokerId> {
                m.get(&tp.1)
                    .into_iter()
                    .flatten()
                    .copied()
                    .map(BrokerId)
                    .collect()
            };
            ps.adding_replicas = ids(&topic.adding);
            ps.removing_replicas = ids(&topic.removing);
            for r in replicas {
                if !self.brokers.contains_key(r) || !to(*r) {
                    continue;
                }
                let ts = per_broker
                    .entry(*r)
                    .or_default()
                    .entry(tp.0.clone())
                    .or_insert_with(|| {
                        let mut ts = LeaderAndIsrTopicState::default();
                        ts.topic_name = TopicName(StrBytes::from_string(tp.0.clone()));
                        ts.topic_id = topic.id;
                        ts
                    });
                ts.partition_states.push(ps.clone());
                if s.leader >= 0 {
                    leaders.entry(*r).or_default().insert(s.leader);
                }
            }
        }
        let mut replies = Vec::new();
        for (broker, topics) in per_broker {
            let mut req = LeaderAndIsrRequest::default();
            req.controller_id = BrokerId(self.config.broker_id);
            req.controller_epoch = self.epoch;
            req.broker_epoch = self.brokers.get(&broker).map_or(-1, |b| b.epoch);
            req.topic_states = topics.into_values().collect();
            req.live_leaders = leaders
                .get(&broker)
                .into_iter()
                .flatten()
                .filter_map(|l| {
                    // Followers fetch from the leader on the inter-broker listener.
                    let b = self.brokers.get(l)?;
                    let listener = &self.config.inter_broker_listener;
                    let (_, host, port, _) = b.endpoints.iter().find(|e| &e.0 == listener)?;
                    let mut ll = LeaderAndIsrLiveLeader::default();
                    ll.broker_id = BrokerId(*l);
                    ll.host_name = StrBytes::from_string(host.clone());
                    ll.port = *port as i32;
                    Some(ll)
                })
                .collect();
            if let Some(reply) = self.channels.send(
                broker,
                ApiKey::LeaderAndIsr,
                self.config.inter_broker_protocol_version.leader_and_isr(),
                RequestKind::LeaderAndIsr(req),
            ) {
                replies.push((broker, reply));
            }
        }
        replies
    }
}
