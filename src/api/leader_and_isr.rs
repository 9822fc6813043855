//! LeaderAndIsr: the controller tells this broker which partitions it leads or follows.

use std::collections::HashMap;

use futures::{StreamExt, stream};

use kafka_protocol::ResponseError;
use kafka_protocol::messages::leader_and_isr_request::{
    LeaderAndIsrLiveLeader, LeaderAndIsrPartitionState, LeaderAndIsrTopicState,
};
use kafka_protocol::messages::leader_and_isr_response::{
    LeaderAndIsrPartitionError, LeaderAndIsrTopicError,
};
use kafka_protocol::messages::update_metadata_request::{
    UpdateMetadataPartitionState, UpdateMetadataTopicState,
};
use kafka_protocol::messages::{ApiKey, LeaderAndIsrRequest, LeaderAndIsrResponse, TopicName};

use super::errors::KafkaCode;
use super::{Api, errors};
use crate::client::address;
use crate::config::LogConfig;
use crate::group::OFFSETS_TOPIC;
use crate::replica::{LeaderAndIsrState, Role};
use crate::txn::TRANSACTION_STATE_TOPIC;

/// How many partitions of one LeaderAndIsr are applied at once.
const PARTITIONS_AT_ONCE: usize = 64;

pub async fn handle(api: &Api, request: LeaderAndIsrRequest, version: i16) -> LeaderAndIsrResponse {
    let mut response = LeaderAndIsrResponse::default();
    let started = std::time::Instant::now();
    // The controller epoch is checked under the lock too: a request that waited for it may
    // have been overtaken by a newer controller's.
    let _state_change = api.replicas.lock_state_changes().await;
    if let Some(code) = api.refuse_stale_controller(
        ApiKey::LeaderAndIsr,
        request.controller_id.0,
        request.controller_epoch,
        request.broker_epoch,
    ) {
        response.error_code = code;
        return response;
    }
    let states = flatten_partition_states(request.ungrouped_partition_states, request.topic_states);
    let leader_addresses = leader_addresses(&request.live_leaders);
    let mut by_topic: Vec<LeaderAndIsrTopicError> = Vec::new();
    // Each topic's config is read from the store once per request, not once per partition:
    // a request may carry thousands of partitions of a few topics.
    let mut configs: HashMap<String, LogConfig> = HashMap::new();
    // Only for partitions that will change: a new controller resends every partition's
    // current state, and reading the configs of hundreds of topics for nothing delayed its
    // failover by as many store round trips.
    for (_, state) in &states {
        let topic = state.topic_name.0.as_str();
        if is_stale(api, state) {
            continue;
        }
        if !configs.contains_key(topic) {
            let c = log_config(api, topic).await;
            configs.insert(topic.to_string(), c);
        }
    }
    // Partitions are independent of one another, and each may wait on disk (a new log's
    // directory, a new leader epoch's checkpoint, both fsynced): applied one at a time, a
    // request for 10,000 partitions costs 10,000 fsync round trips. A bounded number run at
    // once, so that the file system commits their syncs together; answers keep request order.
    let mut applies = Vec::with_capacity(states.len());
    for (topic_id, state) in &states {
        applies.push(apply(api, *topic_id, state, &leader_addresses, &configs));
    }
    let codes: Vec<i16> = stream::iter(applies)
        .buffered(PARTITIONS_AT_ONCE)
        .collect()
        .await;
    for ((topic_id, state), code) in states.into_iter().zip(codes) {
        let mut e = LeaderAndIsrPartitionError::default();
        e.partition_index = state.partition_index;
        e.error_code = code;
        if version >= 5 {
            match by_topic.iter_mut().find(|t| t.topic_id == topic_id) {
                Some(t) => t.partition_errors.push(e),
                None => {
                    let mut t = LeaderAndIsrTopicError::default();
                    t.topic_id = topic_id;
                    t.partition_errors.push(e);
                    by_topic.push(t);
                }
            }
        } else {
            e.topic_name = TopicName(state.topic_name.0.clone());
            response.partition_errors.push(e);
        }
    }
    response.topics = by_topic;
    // A controller failover or a broker's start sends thousands at once: how long they take to
    // apply is part of how long partitions are unavailable.
    if started.elapsed() >= std::time::Duration::from_millis(500) {
        tracing::info!(
            controller_epoch = request.controller_epoch,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "LeaderAndIsr applied"
        );
    }
    response
}

/// The per-topic partition states of LeaderAndIsr and UpdateMetadata: two generated types
/// with the same fields.
pub(super) trait TopicPartitionStates {
    type State;
    /// The topic id and the topic's partition states, each naming the topic (the grouped
    /// states leave the name to their topic).
    fn into_states(self) -> (uuid::Uuid, Vec<Self::State>);
}

macro_rules! impl_topic_partition_states {
    ($($topic:ty => $state:ty),*) => {$(
        impl TopicPartitionStates for $topic {
            type State = $state;

            fn into_states(self) -> (uuid::Uuid, Vec<$state>) {
                let states = self
                    .partition_states
                    .into_iter()
                    .map(|mut s| {
                        s.topic_name = self.topic_name.clone();
                        s
                    })
                    .collect();
                (self.topic_id, states)
            }
        }
    )*};
}

impl_topic_partition_states!(
    LeaderAndIsrTopicState => LeaderAndIsrPartitionState,
    UpdateMetadataTopicState => UpdateMetadataPartitionState
);

/// LeaderAndIsr and UpdateMetadata list partition states flat in v0-1 and by topic since v2
/// (with the topic id in later versions): both as one list of (topic id, state), the nil id
/// for flat ones.
pub(super) fn flatten_partition_states<T: TopicPartitionStates>(
    ungrouped: Vec<T::State>,
    topics: Vec<T>,
) -> Vec<(uuid::Uuid, T::State)> {
    let mut states: Vec<_> = ungrouped
        .into_iter()
        .map(|s| (uuid::Uuid::nil(), s))
        .collect();
    for t in topics {
        let (id, partitions) = t.into_states();
        states.extend(partitions.into_iter().map(|s| (id, s)));
    }
    states
}

/// Where followers fetch from: the leaders at the addresses the controller gives.
fn leader_addresses(live_leaders: &[LeaderAndIsrLiveLeader]) -> HashMap<i32, String> {
    live_leaders
        .iter()
        .map(|l| (l.broker_id.0, address(&l.host_name, l.port)))
        .collect()
}

/// Kafka applies a partition state only when it carries a newer leader epoch than the one in
/// force, so a late or repeated request cannot undo a newer decision.
fn is_stale(api: &Api, state: &LeaderAndIsrPartitionState) -> bool {
    api.replicas
        .get(state.topic_name.0.as_str(), state.partition_index)
        .is_some_and(|p| state.leader_epoch <= p.leader_epoch())
}

/// One partition's new state; the Kafka error code for it.
async fn apply(
    api: &Api,
    topic_id: uuid::Uuid,
    state: &LeaderAndIsrPartitionState,
    leader_addresses: &HashMap<i32, String>,
    configs: &HashMap<String, LogConfig>,
) -> i16 {
    let topic = state.topic_name.0.as_str();
    let partition = state.partition_index;
    let me = api.config.broker_id;
    if !state.replicas.iter().any(|r| r.0 == me) {
        return ResponseError::UnknownTopicOrPartition.code();
    }
    if is_stale(api, state) {
        return ResponseError::StaleControllerEpoch.code();
    }
    let role = if state.leader.0 == me {
        Role::Leader
    } else {
        Role::Follower {
            leader: state.leader.0,
        }
    };
    let leader_address = leader_addresses.get(&state.leader.0).cloned().or_else(|| {
        api.cache
            .broker_address(state.leader.0, &api.config.inter_broker_listener)
    });
    let wanted = LeaderAndIsrState {
        role,
        leader_epoch: state.leader_epoch,
        partition_epoch: state.partition_epoch,
        controller_epoch: state.controller_epoch,
        replicas: state.replicas.iter().map(|r| r.0).collect(),
        isr: state.isr.iter().map(|r| r.0).collect(),
        leader_address,
        topic_id,
    };
    let was_leader = api.replicas.leader(topic, partition).is_some();
    let config = match configs.get(topic) {
        Some(c) => c.clone(),
        None => log_config(api, topic).await,
    };
    // From the moment this broker leads the partition until its groups are read, their
    // requests must get COORDINATOR_LOAD_IN_PROGRESS, not an empty group.
    let loads_groups = topic == OFFSETS_TOPIC && !was_leader && role == Role::Leader;
    if loads_groups {
        api.groups.begin_loading(partition);
    }
    match api
        .replicas
        .apply_role(topic, partition, &wanted, config)
        .await
    {
        Ok(_) => {}
        Err(e) => {
            tracing::error!(topic, partition, error = %e, "cannot take partition role");
            if loads_groups {
                // Not the leader after all: nothing to load, nothing to wait for.
                api.groups.cancel_loading(partition);
            }
            return e.kafka_error_code();
        }
    }
    // Groups move with the leadership of their `__consumer_offsets` partition. The
    // coordinators read their partitions in the background, as Kafka's do, not under the
    // state-change lock this request holds.
    if topic == OFFSETS_TOPIC && was_leader != (role == Role::Leader) {
        match role {
            Role::Leader => api.groups.elected(partition),
            Role::Follower { .. } => api.groups.resigned(partition),
        }
    }
    // And transactional ids with that of their `__transaction_state` partition; a new leader
    // epoch is a new coordinator epoch, so a leader reloads even when it led before.
    if topic == TRANSACTION_STATE_TOPIC {
        match role {
            Role::Leader => api.txn.elected(partition),
            Role::Follower { .. } => api.txn.resigned(partition),
        }
    }
    errors::NONE
}

/// The log config of a topic this broker is about to host: its overrides, read from the store
/// (the metadata cache may not know the topic yet), on the current broker defaults. Falls back
/// to the defaults, with a log line, when the stored config cannot be read or is invalid.
async fn log_config(api: &Api, topic: &str) -> LogConfig {
    let overrides = match api.controller.topic_overrides(topic).await {
        Ok(o) => o,
        Err(e) => {
            tracing::error!(topic, error = %e, "cannot read topic config; using broker defaults");
            Default::default()
        }
    };
    match api.replicas.log_config(&overrides) {
        Ok(config) => {
            api.cache.set_topic_configs(topic, overrides);
            config
        }
        Err(e) => {
            tracing::error!(topic, error = %e, "invalid topic config; using broker defaults");
            api.replicas
                .log_config(&Default::default())
                .unwrap_or_default()
        }
    }
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::BrokerId;
    use kafka_protocol::protocol::StrBytes;

    use super::*;

    /// A follower of a leader on an IPv6 listener fetches from the bracketed address, the only
    /// form in which the port cannot be read as part of the host.
    #[test]
    fn followers_fetch_from_ipv6_leaders_at_a_bracketed_address() {
        let leader = |id: i32, host: &'static str| {
            let mut l = LeaderAndIsrLiveLeader::default();
            l.broker_id = BrokerId(id);
            l.host_name = StrBytes::from_static_str(host);
            l.port = 9092;
            l
        };
        let addresses = leader_addresses(&[leader(1, "::1"), leader(2, "10.0.0.2")]);
        assert_eq!(addresses[&1], "[::1]:9092");
        assert_eq!(addresses[&2], "10.0.0.2:9092");
    }
}
