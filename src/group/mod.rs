//! The group coordinator: Kafka's classic rebalance protocol (JoinGroup / SyncGroup / Heartbeat /
//! LeaveGroup) and committed offsets, persisted as Kafka-format records in `__consumer_offsets`
//! and loaded back from there at start-up.
//!
//! All group state sits behind one mutex that is never held across an `.await`: a request
//! decides under the lock, releases it, then appends to the log or waits on a oneshot that a
//! later request (or the deadline timer) completes. One timer task owns every deadline (member
//! sessions, pending member ids, rebalance timeouts) and sleeps until the earliest one.
//!
//! Static members (`group.instance.id`, KIP-345) keep their place across restarts: rejoining
//! with an empty member id replaces the old id (which is then fenced) and, when the group is
//! Stable and the protocols are unchanged, costs no rebalance.
//!
//! Committed offsets expire as in Kafka 2.1+ (KIP-211): an Empty group's offsets all go
//! `offsets.retention.minutes` after it became Empty, a group that only stores offsets loses
//! each one that long after its commit, and a Stable consumer group those of topics it no longer
//! subscribes to. An Empty group left without offsets is removed (Dead), with tombstones.
//!
//! Differences from Kafka, on purpose for now: a static member's replacement is not written to `__consumer_offsets` until the next
//! rebalance.
//!
//! Offsets committed inside a transaction (TxnOffsetCommit) are written as transactional
//! batches and held per producer until the transaction's marker commits or aborts them.
//!
//! This file holds the `GroupCoordinator` itself (Kafka's `GroupCoordinator`, with the append
//! side of `GroupMetadataManager`): its constructor, the `__consumer_offsets` topic and
//! partition helpers, and the appends every other piece goes through. The rest is split as in
//! Kafka: `state` (`GroupMetadata`, `MemberMetadata`), `join` (JoinGroup, SyncGroup),
//! `membership` (Heartbeat, LeaveGroup), `timer` (the deadlines), `offsets` (commit, fetch,
//! delete, expiry), `describe` (ListGroups, DescribeGroups, DeleteGroups), `loader`
//! (loading and unloading a `__consumer_offsets` partition, in the background) and `error`
//! (`GroupError`, what a request is refused with).

mod describe;
mod error;
mod join;
mod loader;
mod membership;
mod metrics;
mod offsets;
pub mod records;
mod state;
mod timer;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::Notify;

use crate::config::BrokerConfig;
use crate::controller::Controller;
use crate::log::records::{BatchBuilder, NewRecord};
use crate::metadata::MetadataCache;
use crate::replica::election_tasks::{ElectionTasks, Loading};
use crate::replica::{Partition, ReplicaManager};
use records::GroupValue;

pub use describe::{GroupDescription, MemberDescription};
pub use join::{JoinRequest, JoinResult, SyncResult};
pub use offsets::{CommittedOffset, FetchedOffsets, OffsetToCommit};
use state::Group;
pub use state::GroupState;

pub use error::{AppendError, GroupError};

pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// The protocol type of Kafka consumers, whose JoinGroup metadata the coordinator reads.
const CONSUMER_PROTOCOL_TYPE: &str = "consumer";

/// A record for `__consumer_offsets`: key and value (None: a tombstone).
type Record = (Vec<u8>, Option<Vec<u8>>);

fn ms(v: i32) -> Duration {
    Duration::from_millis(v.max(0) as u64)
}

fn now_ms() -> i64 {
    crate::log::segment::now_ms()
}

/// A group metadata record to append once the lock is released.
type PendingGroupRecord = (String, GroupValue);

pub struct GroupCoordinator {
    config: Arc<BrokerConfig>,
    cache: Arc<MetadataCache>,
    replicas: Arc<ReplicaManager>,
    controller: Arc<Controller>,
    groups: Mutex<HashMap<String, Group>>,
    /// `__consumer_offsets` partitions this broker leads but has not finished reading: their
    /// groups answer COORDINATOR_LOAD_IN_PROGRESS rather than look empty.
    loading: Loading,
    /// Loads and unloads of `__consumer_offsets` partitions, in order, off LeaderAndIsr.
    elections: ElectionTasks,
    /// Wakes the timer task when a deadline earlier than the one it sleeps to may exist.
    timer: Notify,
    /// Serializes creation of `__consumer_offsets` between concurrent first requests.
    topic_creation: tokio::sync::Mutex<()>,
}

impl GroupCoordinator {
    pub fn new(
        config: Arc<BrokerConfig>,
        cache: Arc<MetadataCache>,
        replicas: Arc<ReplicaManager>,
        controller: Arc<Controller>,
    ) -> Self {
        GroupCoordinator {
            config,
            cache,
            replicas,
            controller,
            groups: Mutex::new(HashMap::new()),
            loading: Loading::default(),
            elections: ElectionTasks::default(),
            timer: Notify::new(),
            topic_creation: tokio::sync::Mutex::new(()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Group>> {
        self.groups.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn offsets_partitions(&self) -> i32 {
        self.cache
            .topic(OFFSETS_TOPIC)
            .map(|t| t.partitions.len() as i32)
            .filter(|&n| n > 0)
            .unwrap_or(self.config.offsets_topic_num_partitions)
    }

    /// The `__consumer_offsets` partition that holds this group's records.
    pub fn partition_for(&self, group: &str) -> i32 {
        records::partition_for(group, self.offsets_partitions())
    }

    /// Creates `__consumer_offsets` on first use, as Kafka does.
    async fn ensure_offsets_topic(&self) -> Result<(), GroupError> {
        self.controller
            .ensure_internal_topic(
                &self.topic_creation,
                OFFSETS_TOPIC,
                self.config.offsets_topic_num_partitions,
                self.config.offsets_topic_replication_factor,
                || {
                    BTreeMap::from([
                        ("cleanup.policy".to_string(), "compact".to_string()),
                        ("compression.type".to_string(), "producer".to_string()),
                        (
                            "segment.bytes".to_string(),
                            self.config.offsets_topic_segment_bytes.to_string(),
                        ),
                    ])
                },
            )
            .await
            .map_err(|e| {
                // Kafka answers COORDINATOR_NOT_AVAILABLE (e.g. fewer brokers than
                // offsets.topic.replication.factor) and retries creation later.
                tracing::warn!(error = %e, "cannot create {OFFSETS_TOPIC}");
                GroupError::CoordinatorNotAvailable
            })
    }

    /// The broker coordinating `group`: the leader of its `__consumer_offsets` partition.
    pub async fn coordinator_broker(&self, group: &str) -> Result<i32, GroupError> {
        self.ensure_offsets_topic().await?;
        match self
            .cache
            .partition(OFFSETS_TOPIC, self.partition_for(group))
        {
            Some(p) if p.leader >= 0 => Ok(p.leader),
            _ => Err(GroupError::CoordinatorNotAvailable),
        }
    }

    /// The partition holding `group`'s records, when this broker is its coordinator and has
    /// loaded it. Creates `__consumer_offsets` on first use.
    pub async fn coordinator_partition(&self, group: &str) -> Result<Arc<Partition>, GroupError> {
        self.ensure_offsets_topic().await?;
        let partition = self.partition_for(group);
        self.check_loaded(partition)?;
        match self.replicas.leader(OFFSETS_TOPIC, partition) {
            Some(p) => Ok(p),
            None if self.cache.partition(OFFSETS_TOPIC, partition).is_some() => {
                Err(GroupError::NotCoordinator)
            }
            None => Err(GroupError::CoordinatorNotAvailable),
        }
    }

    /// Kafka's `validateGroupStatus` for requests that must not create `__consumer_offsets`:
    /// this broker coordinates `group` and has loaded it.
    fn validate(&self, group: &str) -> Result<(), GroupError> {
        let partition = self.partition_for(group);
        self.check_loaded(partition)?;
        match self.replicas.leader(OFFSETS_TOPIC, partition) {
            Some(_) => Ok(()),
            None => Err(GroupError::NotCoordinator),
        }
    }

    fn check_loaded(&self, partition: i32) -> Result<(), GroupError> {
        if self.loading.contains(partition) {
            Err(GroupError::CoordinatorLoadInProgress)
        } else {
            Ok(())
        }
    }

    /// Appends records for `group` to its partition.
    async fn append(
        &self,
        group: &str,
        records: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    ) -> Result<(), AppendError> {
        self.append_for(group, records, None).await
    }

    /// Appends records for `group`, inside the transaction of `producer` (id, epoch) when
    /// given: a transactional batch, as TxnOffsetCommit writes. Kafka gives these batches
    /// sequence 0 and skips sequence checks for coordinator appends; they are written without
    /// a sequence here, which the partition's producer state accepts as is.
    async fn append_for(
        &self,
        group: &str,
        records: Vec<(Vec<u8>, Option<Vec<u8>>)>,
        producer: Option<(i64, i16)>,
    ) -> Result<(), AppendError> {
        let partition = self
            .coordinator_partition(group)
            .await
            .map_err(AppendError::Coordinator)?;
        let now = now_ms();
        let builder = BatchBuilder {
            records: records
                .into_iter()
                .map(|(key, value)| NewRecord {
                    timestamp: now,
                    key: Some(key),
                    value,
                    headers: Vec::new(),
                })
                .collect(),
            producer_id: producer.map_or(-1, |p| p.0),
            producer_epoch: producer.map_or(-1, |p| p.1),
            transactional: producer.is_some(),
            ..BatchBuilder::default()
        };
        let bytes = builder.build()?;
        // As Kafka (`offsets.commit.required.acks=-1`): acknowledged once the ISR has it, so
        // that a commit survives the coordinator's failure.
        self.replicas
            .append_acked(&partition, Bytes::from(bytes), OFFSETS_COMMIT_TIMEOUT)
            .await
            .map(|_| ())
            .map_err(AppendError::from)
    }

    async fn persist_groups(&self, pending: Vec<PendingGroupRecord>) {
        for (group, value) in pending {
            let record = (
                records::group_key(&group),
                Some(records::group_value(&value)),
            );
            if let Err(e) = self.append(&group, vec![record]).await {
                tracing::warn!(group, error = ?e, "could not persist group metadata");
            }
        }
    }
}

/// Kafka's `offsets.commit.timeout.ms` default: how long a commit waits for the ISR.
const OFFSETS_COMMIT_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(5000);
