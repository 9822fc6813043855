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

mod metrics;
pub mod records;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{Notify, oneshot, watch};
use tokio::time::Instant;

use crate::config::BrokerConfig;
use crate::controller::Controller;
use crate::log::records::{BatchBuilder, NewRecord, decode_batch};
use crate::log::{LogError, batch};
use crate::metadata::MetadataCache;
use crate::replica::{Partition, ReplicaManager};
use records::{GroupValue, MemberValue, OffsetValue, RecordKey};

pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// The protocol type of Kafka consumers, whose JoinGroup metadata the coordinator reads.
const CONSUMER_PROTOCOL_TYPE: &str = "consumer";

/// Kafka error codes the coordinator answers with.
pub mod codes {
    pub const NONE: i16 = 0;
    pub const REQUEST_TIMED_OUT: i16 = 7;
    pub const OFFSET_METADATA_TOO_LARGE: i16 = 12;
    pub const COORDINATOR_NOT_AVAILABLE: i16 = 15;
    pub const NOT_COORDINATOR: i16 = 16;
    pub const ILLEGAL_GENERATION: i16 = 22;
    pub const INCONSISTENT_GROUP_PROTOCOL: i16 = 23;
    pub const INVALID_GROUP_ID: i16 = 24;
    pub const UNKNOWN_MEMBER_ID: i16 = 25;
    pub const INVALID_SESSION_TIMEOUT: i16 = 26;
    pub const REBALANCE_IN_PROGRESS: i16 = 27;
    pub const INVALID_COMMIT_OFFSET_SIZE: i16 = 28;
    pub const COORDINATOR_LOAD_IN_PROGRESS: i16 = 14;
    pub const GROUP_SUBSCRIBED_TO_TOPIC: i16 = 86;
    pub const GROUP_MAX_SIZE_REACHED: i16 = 81;
    pub const MEMBER_ID_REQUIRED: i16 = 79;
    pub const NON_EMPTY_GROUP: i16 = 68;
    pub const GROUP_ID_NOT_FOUND: i16 = 69;
    pub const FENCED_INSTANCE_ID: i16 = 82;
    pub const UNKNOWN_SERVER_ERROR: i16 = -1;
}

/// `offset.metadata.max.bytes` (Kafka's default; not configurable here yet).
const OFFSET_METADATA_MAX_BYTES: usize = 4096;
/// Extra time a parked JoinGroup/SyncGroup waits beyond the deadline the timer enforces, so the
/// wait is bounded even if the timer were late.
const WAIT_SLACK: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum GroupState {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
    Dead,
}

impl GroupState {
    /// The names DescribeGroups and ListGroups use.
    pub fn name(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
        }
    }
}

/// What a JoinGroup request gets back.
#[derive(Debug, Clone, Default)]
pub struct JoinResult {
    pub error: i16,
    pub generation: i32,
    pub protocol_type: Option<String>,
    pub protocol: Option<String>,
    pub leader: String,
    pub member_id: String,
    /// Only the leader gets the members, with their metadata for the chosen protocol.
    pub members: Vec<(String, Option<String>, Bytes)>,
}

impl JoinResult {
    fn error(error: i16, member_id: &str) -> Self {
        JoinResult {
            error,
            generation: -1,
            member_id: member_id.to_string(),
            ..Default::default()
        }
    }
}

/// What a SyncGroup request gets back.
#[derive(Debug, Clone, Default)]
pub struct SyncResult {
    pub error: i16,
    pub protocol_type: Option<String>,
    pub protocol: Option<String>,
    pub assignment: Bytes,
}

impl SyncResult {
    fn error(error: i16) -> Self {
        SyncResult {
            error,
            ..Default::default()
        }
    }
}

pub struct JoinRequest {
    pub group_id: String,
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    pub protocol_type: String,
    pub protocols: Vec<(String, Bytes)>,
    /// JoinGroup v4+ without a group instance id: a new member first gets MEMBER_ID_REQUIRED.
    pub require_known_member_id: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedOffset {
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: String,
    pub commit_timestamp: i64,
    /// Set when the commit named its own retention (OffsetCommit v2-v4): it expires then,
    /// whatever the group does.
    pub expire_timestamp: Option<i64>,
}

/// Committed offsets by topic: partition and offset (None when nothing was committed).
pub type FetchedOffsets = Vec<(String, Vec<(i32, Option<CommittedOffset>)>)>;

/// One offset to commit: topic, partition, offset, leader epoch, metadata.
pub type OffsetToCommit = (String, i32, i64, i32, Option<String>);

/// A topic partition named in a request.
pub type TopicPartition = (String, i32);

/// A record for `__consumer_offsets`: key and value (None: a tombstone).
type Record = (Vec<u8>, Option<Vec<u8>>);

pub struct MemberDescription {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub metadata: Bytes,
    pub assignment: Bytes,
}

pub struct GroupDescription {
    pub state: GroupState,
    pub protocol_type: String,
    pub protocol: String,
    pub members: Vec<MemberDescription>,
}

struct Member {
    member_id: String,
    group_instance_id: Option<String>,
    client_id: String,
    client_host: String,
    session_timeout_ms: i32,
    rebalance_timeout_ms: i32,
    protocols: Vec<(String, Bytes)>,
    assignment: Bytes,
    join_waiter: Option<oneshot::Sender<JoinResult>>,
    sync_waiter: Option<oneshot::Sender<SyncResult>>,
    session_deadline: Instant,
}

impl Member {
    fn metadata_for(&self, protocol: &str) -> Bytes {
        self.protocols
            .iter()
            .find(|(n, _)| n == protocol)
            .map(|(_, m)| m.clone())
            .unwrap_or_default()
    }
    fn refresh_session(&mut self, now: Instant) {
        self.session_deadline = now + ms(self.session_timeout_ms);
    }
}

struct Group {
    state: GroupState,
    generation: i32,
    protocol_type: Option<String>,
    protocol: Option<String>,
    leader: Option<String>,
    /// In join order: the first member is the leader unless the old leader rejoined.
    members: Vec<Member>,
    /// Member ids handed out with MEMBER_ID_REQUIRED, waiting for the member to rejoin.
    pending: HashMap<String, Instant>,
    rebalance_deadline: Option<Instant>,
    /// The rebalance began from Empty with `group.initial.rebalance.delay.ms`: it completes
    /// only at the deadline, which each new member pushes back (capped at `rebalance_cap`).
    initial_delay: bool,
    rebalance_cap: Option<Instant>,
    current_state_timestamp: i64,
    offsets: BTreeMap<(String, i32), CommittedOffset>,
    /// Offsets being appended by OffsetCommit: not expired meanwhile (the tombstone could land
    /// after the new commit and undo it), and they keep an Empty group alive.
    pending_commits: HashMap<(String, i32), u32>,
    /// The topics a "consumer" group's members subscribe to, as of the current generation
    /// (Kafka's `subscribedTopics`); None when unknown (not a consumer group, or metadata that
    /// does not parse), which OffsetDelete and expiry treat as "subscribed to everything".
    subscribed_topics: Option<BTreeSet<String>>,
    /// Offsets committed inside a transaction (TxnOffsetCommit), per producer id: they take
    /// effect when the transaction's COMMIT marker reaches `__consumer_offsets`.
    pending_txn_offsets: HashMap<i64, BTreeMap<(String, i32), CommittedOffset>>,
}

impl Group {
    fn new() -> Self {
        Group {
            state: GroupState::Empty,
            generation: 0,
            protocol_type: None,
            protocol: None,
            leader: None,
            members: Vec::new(),
            pending: HashMap::new(),
            rebalance_deadline: None,
            initial_delay: false,
            rebalance_cap: None,
            current_state_timestamp: now_ms(),
            offsets: BTreeMap::new(),
            pending_commits: HashMap::new(),
            subscribed_topics: None,
            pending_txn_offsets: HashMap::new(),
        }
    }

    fn has_offsets(&self) -> bool {
        !self.offsets.is_empty() || !self.pending_commits.is_empty()
    }

    /// Kafka's `computeSubscribedTopics`: the union of the members' subscriptions for the
    /// chosen protocol, read from the consumer protocol's JoinGroup metadata.
    fn compute_subscribed_topics(&self) -> Option<BTreeSet<String>> {
        if self.protocol_type.as_deref() != Some(CONSUMER_PROTOCOL_TYPE) {
            return None;
        }
        if self.members.is_empty() {
            return Some(BTreeSet::new());
        }
        let protocol = self.protocol.as_deref()?;
        let mut topics = BTreeSet::new();
        for m in &self.members {
            match records::subscribed_topics(&m.metadata_for(protocol)) {
                Ok(t) => topics.extend(t),
                Err(e) => {
                    tracing::debug!(member = m.member_id, error = %e, "subscription not readable");
                    return None;
                }
            }
        }
        Some(topics)
    }

    fn is_subscribed_to(&self, topic: &str) -> bool {
        self.subscribed_topics
            .as_ref()
            .is_none_or(|t| t.contains(topic))
    }

    /// Kafka's `acceptJoiningMember`: may `member_id` join under `group.max.size`? Members
    /// already waiting in a rebalance stay; counting only those lets the last members to
    /// rejoin a group over its size (the size was lowered) be the ones turned away.
    fn accepts_joining_member(&self, member_id: &str, max_size: usize) -> bool {
        let member = self.members.iter().find(|m| m.member_id == member_id);
        match self.state {
            GroupState::Empty | GroupState::Dead => true,
            GroupState::PreparingRebalance => {
                member.is_some_and(|m| m.join_waiter.is_some())
                    || self
                        .members
                        .iter()
                        .filter(|m| m.join_waiter.is_some())
                        .count()
                        < max_size
            }
            GroupState::CompletingRebalance | GroupState::Stable => {
                member.is_some() || self.members.len() < max_size
            }
        }
    }

    /// Kafka's `removeExpiredOffsets` (KIP-211): the offsets that have expired at `now`.
    fn expired_offsets(&self, now: i64, retention_ms: i64) -> Vec<(String, i32)> {
        let state_timestamp = Some(self.current_state_timestamp).filter(|&t| t >= 0);
        let (since_state_change, keep): (bool, Option<&BTreeSet<String>>) =
            match (&self.protocol_type, self.state) {
                // No consumers: everything goes `retention` after the group became Empty.
                (Some(_), GroupState::Empty) => (true, None),
                // Consumers: only offsets of topics none of them subscribes to any more.
                (Some(p), GroupState::Stable) if p == CONSUMER_PROTOCOL_TYPE => {
                    match &self.subscribed_topics {
                        Some(topics) => (false, Some(topics)),
                        None => return Vec::new(),
                    }
                }
                // Offsets stored without group management: each on its own commit time.
                (None, _) => (false, None),
                _ => return Vec::new(),
            };
        self.offsets
            .iter()
            .filter(|((topic, p), c)| {
                if keep.is_some_and(|k| k.contains(topic))
                    || self.pending_commits.contains_key(&(topic.clone(), *p))
                {
                    return false;
                }
                match c.expire_timestamp {
                    Some(at) => now >= at,
                    None => {
                        let base = if since_state_change {
                            state_timestamp.unwrap_or(c.commit_timestamp)
                        } else {
                            c.commit_timestamp
                        };
                        now.saturating_sub(base) >= retention_ms
                    }
                }
            })
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// Kafka's `cleanupGroupMetadata` for one group: drops `offsets`, and an Empty group left
    /// without any becomes Dead. Returns the tombstones to append: one per dropped offset, and
    /// the group's own when it died having had a generation (a group that only stored offsets
    /// never wrote a group record).
    fn remove_offsets(&mut self, id: &str, offsets: &[(String, i32)]) -> Vec<Record> {
        let mut tombstones: Vec<Record> = offsets
            .iter()
            .filter(|tp| self.offsets.remove(*tp).is_some())
            .map(|(topic, p)| (records::offset_key(id, topic, *p), None))
            .collect();
        if self.state == GroupState::Empty && !self.has_offsets() {
            self.set_state(GroupState::Dead);
        }
        if self.state == GroupState::Dead && self.generation > 0 {
            tombstones.push((records::group_key(id), None));
        }
        tombstones
    }

    fn member(&mut self, id: &str) -> Option<&mut Member> {
        self.members.iter_mut().find(|m| m.member_id == id)
    }

    fn static_member_index(&self, instance: &str) -> Option<usize> {
        self.members
            .iter()
            .position(|m| m.group_instance_id.as_deref() == Some(instance))
    }

    /// Kafka's `isStaticMemberFenced`: the instance id belongs to another member id.
    fn fenced(&self, member_id: &str, instance: Option<&str>) -> bool {
        instance
            .and_then(|i| self.static_member_index(i))
            .is_some_and(|idx| self.members[idx].member_id != member_id)
    }

    fn set_state(&mut self, state: GroupState) {
        self.state = state;
        self.current_state_timestamp = now_ms();
    }

    /// Protocols every member supports, in the first member's order of preference.
    fn candidate_protocols(&self) -> Vec<String> {
        let Some(first) = self.members.first() else {
            return Vec::new();
        };
        first
            .protocols
            .iter()
            .map(|(n, _)| n.clone())
            .filter(|n| {
                self.members
                    .iter()
                    .all(|m| m.protocols.iter().any(|(p, _)| p == n))
            })
            .collect()
    }

    /// Kafka's `selectProtocol`: each member votes for the first protocol it lists among the
    /// candidates; most votes win (ties go to the first member's preference).
    fn select_protocol(&self) -> Option<String> {
        let candidates = self.candidate_protocols();
        let mut votes: HashMap<&str, usize> = HashMap::new();
        for m in &self.members {
            if let Some((p, _)) = m.protocols.iter().find(|(p, _)| candidates.contains(p)) {
                *votes.entry(p.as_str()).or_default() += 1;
            }
        }
        let best = votes.values().copied().max()?;
        candidates
            .into_iter()
            .find(|c| votes.get(c.as_str()) == Some(&best))
    }

    fn all_members_joined(&self) -> bool {
        self.pending.is_empty() && self.members.iter().all(|m| m.join_waiter.is_some())
    }

    fn to_value(&self) -> GroupValue {
        GroupValue {
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            generation: self.generation,
            protocol: self.protocol.clone(),
            leader: self.leader.clone(),
            current_state_timestamp: self.current_state_timestamp,
            members: self
                .members
                .iter()
                .map(|m| MemberValue {
                    member_id: m.member_id.clone(),
                    group_instance_id: m.group_instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    rebalance_timeout_ms: m.rebalance_timeout_ms,
                    session_timeout_ms: m.session_timeout_ms,
                    subscription: self
                        .protocol
                        .as_deref()
                        .map(|p| m.metadata_for(p).to_vec())
                        .unwrap_or_default(),
                    assignment: m.assignment.to_vec(),
                })
                .collect(),
        }
    }
}

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
    loading: Mutex<BTreeSet<i32>>,
    /// Wakes the timer task when a deadline earlier than the one it sleeps to may exist.
    timer: Notify,
    /// Serializes creation of `__consumer_offsets` between concurrent first requests.
    topic_creation: tokio::sync::Mutex<()>,
}

impl Group {
    /// Parked JoinGroup/SyncGroup requests are answered NOT_COORDINATOR: their clients look
    /// the coordinator up again and rejoin.
    fn answer_all_not_coordinator(&mut self) {
        for m in &mut self.members {
            if let Some(w) = m.join_waiter.take() {
                let _ = w.send(JoinResult::error(codes::NOT_COORDINATOR, &m.member_id));
            }
            if let Some(w) = m.sync_waiter.take() {
                let _ = w.send(SyncResult::error(codes::NOT_COORDINATOR));
            }
        }
    }
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
            loading: Mutex::new(BTreeSet::new()),
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
    async fn ensure_offsets_topic(&self) -> Result<(), i16> {
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
                codes::COORDINATOR_NOT_AVAILABLE
            })
    }

    /// The broker coordinating `group`: the leader of its `__consumer_offsets` partition.
    pub async fn coordinator_broker(&self, group: &str) -> Result<i32, i16> {
        self.ensure_offsets_topic().await?;
        match self
            .cache
            .partition(OFFSETS_TOPIC, self.partition_for(group))
        {
            Some(p) if p.leader >= 0 => Ok(p.leader),
            _ => Err(codes::COORDINATOR_NOT_AVAILABLE),
        }
    }

    /// The partition holding `group`'s records, when this broker is its coordinator and has
    /// loaded it. Creates `__consumer_offsets` on first use.
    pub async fn coordinator_partition(&self, group: &str) -> Result<Arc<Partition>, i16> {
        self.ensure_offsets_topic().await?;
        let partition = self.partition_for(group);
        self.check_loaded(partition)?;
        match self.replicas.leader(OFFSETS_TOPIC, partition) {
            Some(p) => Ok(p),
            None if self.cache.partition(OFFSETS_TOPIC, partition).is_some() => {
                Err(codes::NOT_COORDINATOR)
            }
            None => Err(codes::COORDINATOR_NOT_AVAILABLE),
        }
    }

    /// Kafka's `validateGroupStatus` for requests that must not create `__consumer_offsets`:
    /// this broker coordinates `group` and has loaded it.
    fn validate(&self, group: &str) -> Result<(), i16> {
        let partition = self.partition_for(group);
        self.check_loaded(partition)?;
        match self.replicas.leader(OFFSETS_TOPIC, partition) {
            Some(_) => Ok(()),
            None => Err(codes::NOT_COORDINATOR),
        }
    }

    fn check_loaded(&self, partition: i32) -> Result<(), i16> {
        if self.loading_lock().contains(&partition) {
            Err(codes::COORDINATOR_LOAD_IN_PROGRESS)
        } else {
            Ok(())
        }
    }

    fn loading_lock(&self) -> std::sync::MutexGuard<'_, BTreeSet<i32>> {
        self.loading.lock().unwrap_or_else(|p| p.into_inner())
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
        let bytes = builder.build().map_err(AppendError::Log)?;
        // As Kafka (`offsets.commit.required.acks=-1`): acknowledged once the ISR has it, so
        // that a commit survives the coordinator's failure.
        self.replicas
            .append_acked(&partition, Bytes::from(bytes), OFFSETS_COMMIT_TIMEOUT)
            .await
            .map(|_| ())
            .map_err(AppendError::Replication)
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

    // ---------------------------------------------------------------------------------------
    // JoinGroup
    // ---------------------------------------------------------------------------------------

    pub async fn join(&self, req: JoinRequest) -> JoinResult {
        if req.group_id.is_empty() {
            return JoinResult::error(codes::INVALID_GROUP_ID, &req.member_id);
        }
        // A group lives on its coordinator only: a join that reached another broker (stale
        // coordinator lookup) must not create the group here.
        if let Err(code) = self.coordinator_partition(&req.group_id).await {
            return JoinResult::error(code, &req.member_id);
        }
        if req.session_timeout_ms < self.config.group_min_session_timeout_ms
            || req.session_timeout_ms > self.config.group_max_session_timeout_ms
        {
            return JoinResult::error(codes::INVALID_SESSION_TIMEOUT, &req.member_id);
        }
        let wait_bound = ms(req.rebalance_timeout_ms.max(req.session_timeout_ms))
            + ms(self
                .config
                .group_initial_rebalance_delay_ms
                .min(i32::MAX as u64) as i32)
            + WAIT_SLACK;
        let (rx, pending) = {
            let mut groups = self.lock();
            let now = Instant::now();
            if !groups.contains_key(&req.group_id) {
                if !req.member_id.is_empty() {
                    return JoinResult::error(codes::UNKNOWN_MEMBER_ID, &req.member_id);
                }
                groups.insert(req.group_id.clone(), Group::new());
            }
            let Some(group) = groups.get_mut(&req.group_id) else {
                return JoinResult::error(codes::UNKNOWN_SERVER_ERROR, &req.member_id);
            };
            let outcome = self.join_locked(group, &req, now);
            // A member turned away by `group.max.size` may have been the last one awaited.
            (outcome, self.try_complete_join(&req.group_id, group, now))
        };
        self.timer.notify_one();
        self.persist_groups(pending.into_iter().collect()).await;
        let rx = match rx {
            Ok(rx) => rx,
            Err(result) => return *result,
        };
        match tokio::time::timeout(wait_bound, rx).await {
            Ok(Ok(result)) => result,
            // The member was removed (left, replaced) while waiting.
            Ok(Err(_)) => JoinResult::error(codes::UNKNOWN_MEMBER_ID, &req.member_id),
            Err(_) => JoinResult::error(codes::REBALANCE_IN_PROGRESS, &req.member_id),
        }
    }

    /// Decides a JoinGroup under the lock: `Err` is an immediate answer, `Ok` a receiver that
    /// the rebalance's completion answers.
    fn join_locked(
        &self,
        group: &mut Group,
        req: &JoinRequest,
        now: Instant,
    ) -> Result<oneshot::Receiver<JoinResult>, Box<JoinResult>> {
        let max_size = usize::try_from(self.config.group_max_size).unwrap_or(usize::MAX);
        if !group.accepts_joining_member(&req.member_id, max_size) {
            // Kafka drops the member it turns away: one that had not rejoined this rebalance.
            // We also forget a pending member id (Kafka keeps it until it expires, which holds
            // the rebalance up to its timeout for a member that cannot get in).
            group.members.retain(|m| m.member_id != req.member_id);
            group.pending.remove(&req.member_id);
            tracing::info!(
                member = req.member_id,
                max = max_size,
                "group is full (group.max.size)"
            );
            return Err(Box::new(JoinResult::error(
                codes::GROUP_MAX_SIZE_REACHED,
                "",
            )));
        }
        if group.state == GroupState::Dead {
            return Err(Box::new(JoinResult::error(
                codes::COORDINATOR_NOT_AVAILABLE,
                &req.member_id,
            )));
        }
        // Kafka's protocol compatibility check (`GroupMetadata.supportsProtocols`).
        let consistent = if group.members.is_empty() {
            !req.protocol_type.is_empty() && !req.protocols.is_empty()
        } else {
            let candidates = group.candidate_protocols();
            group.protocol_type.as_deref() == Some(req.protocol_type.as_str())
                && req.protocols.iter().any(|(p, _)| candidates.contains(p))
        };
        if !consistent {
            return Err(Box::new(JoinResult::error(
                codes::INCONSISTENT_GROUP_PROTOCOL,
                &req.member_id,
            )));
        }
        let (tx, rx) = oneshot::channel();
        if req.member_id.is_empty() {
            let prefix = req.group_instance_id.as_deref().unwrap_or(&req.client_id);
            let member_id = format!("{prefix}-{}", uuid::Uuid::new_v4());
            if let Some(idx) = req
                .group_instance_id
                .as_deref()
                .and_then(|i| group.static_member_index(i))
            {
                self.replace_static_member(group, idx, req, member_id, tx, now);
                return Ok(rx);
            }
            if req.require_known_member_id {
                // KIP-394: the client rejoins with this id; until then it only holds a place.
                group
                    .pending
                    .insert(member_id.clone(), now + ms(req.session_timeout_ms));
                return Err(Box::new(JoinResult::error(
                    codes::MEMBER_ID_REQUIRED,
                    &member_id,
                )));
            }
            self.add_member(group, req, member_id, tx, now);
            return Ok(rx);
        }
        if group.fenced(&req.member_id, req.group_instance_id.as_deref()) {
            return Err(Box::new(JoinResult::error(
                codes::FENCED_INSTANCE_ID,
                &req.member_id,
            )));
        }
        if group.pending.remove(&req.member_id).is_some() {
            self.add_member(group, req, req.member_id.clone(), tx, now);
            return Ok(rx);
        }
        let state = group.state;
        let is_leader = group.leader.as_deref() == Some(req.member_id.as_str());
        let protocol = group.protocol.clone();
        let Some(member) = group.member(&req.member_id) else {
            return Err(Box::new(JoinResult::error(
                codes::UNKNOWN_MEMBER_ID,
                &req.member_id,
            )));
        };
        let unchanged = member.protocols == req.protocols;
        member.protocols = req.protocols.clone();
        member.session_timeout_ms = req.session_timeout_ms;
        member.rebalance_timeout_ms = req.rebalance_timeout_ms;
        member.refresh_session(now);
        match state {
            GroupState::PreparingRebalance => {
                member.join_waiter = Some(tx);
            }
            GroupState::CompletingRebalance | GroupState::Stable
                if unchanged && (state == GroupState::CompletingRebalance || !is_leader) =>
            {
                // Same metadata: the member gets the current generation again, no rebalance.
                let _ = tx.send(self.join_result_for(group, &req.member_id, protocol));
                return Ok(rx);
            }
            _ => {
                member.join_waiter = Some(tx);
                self.prepare_rebalance(group, now);
            }
        }
        Ok(rx)
    }

    /// A static member came back under a new member id: the old id is fenced, the member keeps
    /// its place (and assignment), and a Stable group with unchanged protocols does not
    /// rebalance.
    fn replace_static_member(
        &self,
        group: &mut Group,
        idx: usize,
        req: &JoinRequest,
        new_id: String,
        tx: oneshot::Sender<JoinResult>,
        now: Instant,
    ) {
        let state = group.state;
        let protocol = group.protocol.clone();
        let m = &mut group.members[idx];
        let old_id = std::mem::replace(&mut m.member_id, new_id.clone());
        if let Some(w) = m.join_waiter.take() {
            let _ = w.send(JoinResult::error(codes::FENCED_INSTANCE_ID, &old_id));
        }
        if let Some(w) = m.sync_waiter.take() {
            let _ = w.send(SyncResult::error(codes::FENCED_INSTANCE_ID));
        }
        let unchanged = m.protocols == req.protocols;
        m.protocols = req.protocols.clone();
        m.client_id = req.client_id.clone();
        m.client_host = req.client_host.clone();
        m.session_timeout_ms = req.session_timeout_ms;
        m.rebalance_timeout_ms = req.rebalance_timeout_ms;
        m.refresh_session(now);
        if group.leader.as_deref() == Some(old_id.as_str()) {
            group.leader = Some(new_id.clone());
        }
        tracing::info!(old = old_id, new = new_id, "static member replaced");
        match state {
            GroupState::Stable if unchanged => {
                let _ = tx.send(self.join_result_for(group, &new_id, protocol));
            }
            GroupState::PreparingRebalance => group.members[idx].join_waiter = Some(tx),
            _ => {
                group.members[idx].join_waiter = Some(tx);
                self.prepare_rebalance(group, now);
            }
        }
    }

    fn add_member(
        &self,
        group: &mut Group,
        req: &JoinRequest,
        member_id: String,
        tx: oneshot::Sender<JoinResult>,
        now: Instant,
    ) {
        if group.members.is_empty() {
            group.protocol_type = Some(req.protocol_type.clone());
        }
        group.members.push(Member {
            member_id,
            group_instance_id: req.group_instance_id.clone(),
            client_id: req.client_id.clone(),
            client_host: req.client_host.clone(),
            session_timeout_ms: req.session_timeout_ms,
            rebalance_timeout_ms: req.rebalance_timeout_ms,
            protocols: req.protocols.clone(),
            assignment: Bytes::new(),
            join_waiter: Some(tx),
            sync_waiter: None,
            session_deadline: now + ms(req.session_timeout_ms),
        });
        match group.state {
            GroupState::PreparingRebalance => {
                if group.initial_delay {
                    // InitialDelayedJoin: each new member buys the others more time.
                    let delay = Duration::from_millis(self.config.group_initial_rebalance_delay_ms);
                    let next = now + delay;
                    group.rebalance_deadline = Some(match group.rebalance_cap {
                        Some(cap) => next.min(cap),
                        None => next,
                    });
                }
            }
            _ => self.prepare_rebalance(group, now),
        }
    }

    fn join_result_for(
        &self,
        group: &Group,
        member_id: &str,
        protocol: Option<String>,
    ) -> JoinResult {
        let leader = group.leader.clone().unwrap_or_default();
        let members = if leader == member_id {
            let p = protocol.clone().unwrap_or_default();
            group
                .members
                .iter()
                .map(|m| {
                    (
                        m.member_id.clone(),
                        m.group_instance_id.clone(),
                        m.metadata_for(&p),
                    )
                })
                .collect()
        } else {
            Vec::new()
        };
        JoinResult {
            error: codes::NONE,
            generation: group.generation,
            protocol_type: group.protocol_type.clone(),
            protocol,
            leader,
            member_id: member_id.to_string(),
            members,
        }
    }

    /// Stable / CompletingRebalance / Empty → PreparingRebalance.
    fn prepare_rebalance(&self, group: &mut Group, now: Instant) {
        if group.state == GroupState::CompletingRebalance {
            // The assignment being synced is void: members parked in SyncGroup must rejoin.
            for m in &mut group.members {
                m.assignment = Bytes::new();
                if let Some(w) = m.sync_waiter.take() {
                    let _ = w.send(SyncResult::error(codes::REBALANCE_IN_PROGRESS));
                }
            }
        }
        let was_empty = group.state == GroupState::Empty;
        let max_rebalance = group
            .members
            .iter()
            .map(|m| ms(m.rebalance_timeout_ms))
            .max()
            .unwrap_or_default();
        let delay = Duration::from_millis(self.config.group_initial_rebalance_delay_ms);
        group.initial_delay = was_empty && !delay.is_zero();
        group.rebalance_cap = Some(now + max_rebalance);
        group.rebalance_deadline = Some(if group.initial_delay {
            now + delay.min(max_rebalance)
        } else {
            now + max_rebalance
        });
        group.set_state(GroupState::PreparingRebalance);
        self.timer.notify_one();
    }

    /// Completes the join phase when every known member has rejoined (outside an initial
    /// delay). Returns a group record to persist when the group ended up Empty.
    fn try_complete_join(
        &self,
        id: &str,
        group: &mut Group,
        now: Instant,
    ) -> Option<PendingGroupRecord> {
        if group.state != GroupState::PreparingRebalance {
            return None;
        }
        let deadline_passed = group.rebalance_deadline.is_some_and(|d| d <= now);
        if deadline_passed || (!group.initial_delay && group.all_members_joined()) {
            self.complete_join(id, group, now)
        } else {
            None
        }
    }

    /// PreparingRebalance → CompletingRebalance (or Empty): members that did not rejoin are
    /// dropped, the generation moves on, and every parked JoinGroup is answered.
    fn complete_join(
        &self,
        id: &str,
        group: &mut Group,
        now: Instant,
    ) -> Option<PendingGroupRecord> {
        group.members.retain(|m| m.join_waiter.is_some());
        group.rebalance_deadline = None;
        group.initial_delay = false;
        group.generation += 1;
        if group.members.is_empty() {
            group.protocol = None;
            group.leader = None;
            group.subscribed_topics = group.compute_subscribed_topics();
            group.set_state(GroupState::Empty);
            tracing::info!(group = id, generation = group.generation, "group is empty");
            return Some((id.to_string(), group.to_value()));
        }
        group.protocol = group.select_protocol();
        group.subscribed_topics = group.compute_subscribed_topics();
        let leader_stays = group
            .leader
            .as_ref()
            .is_some_and(|l| group.members.iter().any(|m| &m.member_id == l));
        if !leader_stays {
            group.leader = group.members.first().map(|m| m.member_id.clone());
        }
        group.set_state(GroupState::CompletingRebalance);
        tracing::info!(
            group = id,
            generation = group.generation,
            members = group.members.len(),
            protocol = ?group.protocol,
            "rebalance: join phase complete"
        );
        let protocol = group.protocol.clone();
        let results: Vec<(usize, JoinResult)> = group
            .members
            .iter()
            .enumerate()
            .map(|(i, m)| {
                (
                    i,
                    self.join_result_for(group, &m.member_id, protocol.clone()),
                )
            })
            .collect();
        for (i, result) in results {
            let m = &mut group.members[i];
            m.refresh_session(now);
            if let Some(w) = m.join_waiter.take() {
                let _ = w.send(result);
            }
        }
        None
    }

    // ---------------------------------------------------------------------------------------
    // SyncGroup, Heartbeat, LeaveGroup
    // ---------------------------------------------------------------------------------------

    pub async fn sync(
        &self,
        group_id: &str,
        generation: i32,
        member_id: &str,
        instance: Option<&str>,
        assignments: Vec<(String, Bytes)>,
    ) -> SyncResult {
        if let Err(code) = self.validate(group_id) {
            return SyncResult::error(code);
        }
        let (rx, to_persist, wait_bound) = {
            let mut groups = self.lock();
            let now = Instant::now();
            let Some(group) = groups.get_mut(group_id) else {
                return SyncResult::error(codes::UNKNOWN_MEMBER_ID);
            };
            if group.fenced(member_id, instance) {
                return SyncResult::error(codes::FENCED_INSTANCE_ID);
            }
            let is_leader = group.leader.as_deref() == Some(member_id);
            let protocol_type = group.protocol_type.clone();
            let protocol = group.protocol.clone();
            let state = group.state;
            let group_generation = group.generation;
            let Some(member) = group.member(member_id) else {
                return SyncResult::error(codes::UNKNOWN_MEMBER_ID);
            };
            if generation != group_generation {
                return SyncResult::error(codes::ILLEGAL_GENERATION);
            }
            member.refresh_session(now);
            let wait_bound = ms(member.rebalance_timeout_ms.max(member.session_timeout_ms));
            match state {
                GroupState::Empty | GroupState::Dead => {
                    return SyncResult::error(codes::UNKNOWN_MEMBER_ID);
                }
                GroupState::PreparingRebalance => {
                    return SyncResult::error(codes::REBALANCE_IN_PROGRESS);
                }
                GroupState::Stable => {
                    return SyncResult {
                        error: codes::NONE,
                        protocol_type,
                        protocol,
                        assignment: member.assignment.clone(),
                    };
                }
                GroupState::CompletingRebalance => {}
            }
            let (tx, rx) = oneshot::channel();
            member.sync_waiter = Some(tx);
            let to_persist = if is_leader {
                let by_member: HashMap<String, Bytes> = assignments.into_iter().collect();
                for m in &mut group.members {
                    // Members the leader left out get an empty assignment, as in Kafka.
                    m.assignment = by_member.get(&m.member_id).cloned().unwrap_or_default();
                }
                Some(group.to_value())
            } else {
                None
            };
            (rx, to_persist, wait_bound)
        };
        if let Some(value) = to_persist {
            let record = (
                records::group_key(group_id),
                Some(records::group_value(&value)),
            );
            let outcome = self.append(group_id, vec![record]).await;
            let mut groups = self.lock();
            if let Some(group) = groups.get_mut(group_id)
                && group.state == GroupState::CompletingRebalance
                && group.generation == generation
            {
                match outcome {
                    Ok(()) => {
                        group.set_state(GroupState::Stable);
                        tracing::info!(group = group_id, generation, "group is stable");
                        let protocol_type = group.protocol_type.clone();
                        let protocol = group.protocol.clone();
                        for m in &mut group.members {
                            if let Some(w) = m.sync_waiter.take() {
                                let _ = w.send(SyncResult {
                                    error: codes::NONE,
                                    protocol_type: protocol_type.clone(),
                                    protocol: protocol.clone(),
                                    assignment: m.assignment.clone(),
                                });
                            }
                        }
                    }
                    Err(e) => {
                        let code = e.group_metadata_code();
                        for m in &mut group.members {
                            if let Some(w) = m.sync_waiter.take() {
                                let _ = w.send(SyncResult::error(code));
                            }
                        }
                        self.prepare_rebalance(group, Instant::now());
                    }
                }
            }
        }
        match tokio::time::timeout(wait_bound + WAIT_SLACK, rx).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => SyncResult::error(codes::UNKNOWN_MEMBER_ID),
            Err(_) => SyncResult::error(codes::REBALANCE_IN_PROGRESS),
        }
    }

    pub fn heartbeat(
        &self,
        group_id: &str,
        generation: i32,
        member_id: &str,
        instance: Option<&str>,
    ) -> i16 {
        match self.validate(group_id) {
            Ok(()) => {}
            // Kafka answers blindly while the group loads: the member keeps its session.
            Err(codes::COORDINATOR_LOAD_IN_PROGRESS) => return codes::NONE,
            Err(code) => return code,
        }
        let mut groups = self.lock();
        let Some(group) = groups.get_mut(group_id) else {
            return codes::UNKNOWN_MEMBER_ID;
        };
        let state = group.state;
        let group_generation = group.generation;
        match state {
            GroupState::Dead => return codes::COORDINATOR_NOT_AVAILABLE,
            GroupState::Empty => return codes::UNKNOWN_MEMBER_ID,
            _ => {}
        }
        if group.fenced(member_id, instance) {
            return codes::FENCED_INSTANCE_ID;
        }
        let Some(member) = group.member(member_id) else {
            return codes::UNKNOWN_MEMBER_ID;
        };
        if generation != group_generation {
            return codes::ILLEGAL_GENERATION;
        }
        member.refresh_session(Instant::now());
        if state == GroupState::PreparingRebalance {
            codes::REBALANCE_IN_PROGRESS
        } else {
            codes::NONE
        }
    }

    /// Removes members; the top-level error is UNKNOWN_MEMBER_ID for an unknown group, and
    /// each member gets its own code.
    /// Members are named by member id, or (LeaveGroup v3+) by group instance id.
    pub async fn leave(
        &self,
        group_id: &str,
        member_ids: &[(String, Option<String>)],
    ) -> (i16, Vec<i16>) {
        if let Err(code) = self.validate(group_id) {
            return (code, Vec::new());
        }
        let (codes_out, pending) = {
            let mut groups = self.lock();
            let Some(group) = groups.get_mut(group_id) else {
                return (
                    codes::UNKNOWN_MEMBER_ID,
                    vec![codes::UNKNOWN_MEMBER_ID; member_ids.len()],
                );
            };
            let now = Instant::now();
            let mut out = Vec::with_capacity(member_ids.len());
            let mut removed_any = false;
            for (id, instance) in member_ids {
                if group.pending.remove(id).is_some() {
                    out.push(codes::NONE);
                    continue;
                }
                let found = match instance {
                    Some(instance) => match group.static_member_index(instance) {
                        Some(i) if !id.is_empty() && group.members[i].member_id != *id => {
                            out.push(codes::FENCED_INSTANCE_ID);
                            continue;
                        }
                        found => found,
                    },
                    None => group.members.iter().position(|m| &m.member_id == id),
                };
                match found {
                    Some(i) => {
                        let m = group.members.remove(i);
                        if let Some(w) = m.join_waiter {
                            let _ = w.send(JoinResult::error(codes::UNKNOWN_MEMBER_ID, id));
                        }
                        if let Some(w) = m.sync_waiter {
                            let _ = w.send(SyncResult::error(codes::UNKNOWN_MEMBER_ID));
                        }
                        tracing::info!(group = group_id, member = id, "member left");
                        removed_any = true;
                        out.push(codes::NONE);
                    }
                    None => out.push(codes::UNKNOWN_MEMBER_ID),
                }
            }
            let pending = if removed_any {
                self.members_changed(group_id, group, now)
            } else {
                self.try_complete_join(group_id, group, now)
            };
            (out, pending)
        };
        self.persist_groups(pending.into_iter().collect()).await;
        (codes::NONE, codes_out)
    }

    /// After members were removed: rebalance, or finish the one in progress.
    fn members_changed(
        &self,
        id: &str,
        group: &mut Group,
        now: Instant,
    ) -> Option<PendingGroupRecord> {
        if matches!(
            group.state,
            GroupState::Stable | GroupState::CompletingRebalance
        ) {
            self.prepare_rebalance(group, now);
        }
        self.try_complete_join(id, group, now)
    }

    // ---------------------------------------------------------------------------------------
    // Deadlines
    // ---------------------------------------------------------------------------------------

    /// Expires members whose session ran out, pending member ids never claimed, and
    /// rebalances past their timeout. Returns the earliest deadline still ahead.
    fn expire(&self, now: Instant) -> (Option<Instant>, Vec<PendingGroupRecord>) {
        let mut groups = self.lock();
        let mut next: Option<Instant> = None;
        let mut pending_records = Vec::new();
        let mut earliest = |d: Instant| {
            if d > now {
                next = Some(next.map_or(d, |n| n.min(d)));
            }
        };
        for (id, group) in groups.iter_mut() {
            group.pending.retain(|_, d| *d > now);
            let before = group.members.len();
            // Members parked in JoinGroup or SyncGroup are alive: their request is the sign.
            group.members.retain(|m| {
                let alive =
                    m.join_waiter.is_some() || m.sync_waiter.is_some() || m.session_deadline > now;
                if !alive {
                    tracing::info!(group = id, member = m.member_id, "member session expired");
                }
                alive
            });
            let record = if group.members.len() != before {
                self.members_changed(id, group, now)
            } else {
                self.try_complete_join(id, group, now)
            };
            pending_records.extend(record);
            for d in group.pending.values() {
                earliest(*d);
            }
            for m in &group.members {
                if m.join_waiter.is_none() && m.sync_waiter.is_none() {
                    earliest(m.session_deadline);
                } else {
                    // A parked member's session restarts when its answer goes out, and nothing
                    // wakes this timer then: look again shortly rather than sleep past it.
                    earliest(now + Duration::from_millis(500));
                }
            }
            if group.state == GroupState::PreparingRebalance
                && let Some(d) = group.rebalance_deadline
            {
                earliest(d);
            }
        }
        (next, pending_records)
    }

    /// The timer task: sleeps until the earliest deadline (or a change), then expires what is
    /// due; every `offsets.retention.check.interval.ms` (first at start, as in Kafka) it also
    /// expires committed offsets.
    pub async fn run_timer(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let check_interval = Duration::from_millis(self.config.offsets_retention_check_interval_ms);
        let mut next_offsets_check = Instant::now();
        loop {
            let (next, pending) = self.expire(Instant::now());
            self.persist_groups(pending).await;
            if Instant::now() >= next_offsets_check {
                self.expire_offsets().await;
                // An interval too long for a deadline means never again.
                next_offsets_check = Instant::now()
                    .checked_add(check_interval)
                    .unwrap_or_else(|| Instant::now() + Duration::from_secs(86_400 * 365));
            }
            let sleep_to = next
                .unwrap_or_else(|| Instant::now() + Duration::from_secs(60))
                .min(next_offsets_check);
            tokio::select! {
                _ = tokio::time::sleep_until(sleep_to) => {}
                _ = self.timer.notified() => {}
                _ = shutdown.changed() => {}
            }
            if *shutdown.borrow() {
                self.release_parked();
                return;
            }
        }
    }

    /// Shutdown: parked JoinGroup/SyncGroup requests are answered NOT_COORDINATOR (clients
    /// look the coordinator up again and rejoin), as they would otherwise hold the connection
    /// drain for up to a rebalance timeout.
    fn release_parked(&self) {
        let mut groups = self.lock();
        for group in groups.values_mut() {
            group.answer_all_not_coordinator();
        }
    }

    // ---------------------------------------------------------------------------------------
    // Offsets
    // ---------------------------------------------------------------------------------------

    /// OffsetCommit: one error code per offset, in order. `retention_ms` (OffsetCommit v2-v4;
    /// -1 for the broker's rule) gives the offsets a fixed expiry time.
    pub async fn commit(
        &self,
        group_id: &str,
        generation: i32,
        member_id: &str,
        instance: Option<&str>,
        offsets: Vec<OffsetToCommit>,
        retention_ms: i64,
    ) -> Vec<i16> {
        if group_id.is_empty() {
            return vec![codes::INVALID_GROUP_ID; offsets.len()];
        }
        // Before the group is looked at: a commit that reached another broker must not create
        // the group here.
        if let Err(code) = self.coordinator_partition(group_id).await {
            return vec![code; offsets.len()];
        }
        let allowed = {
            let mut groups = self.lock();
            match groups.get_mut(group_id) {
                None if generation < 0 => {
                    // A standalone commit creates the group with no protocol type.
                    groups.insert(group_id.to_string(), Group::new());
                    Ok(())
                }
                None => Err(codes::UNKNOWN_MEMBER_ID),
                Some(g) if generation < 0 && g.state == GroupState::Empty => Ok(()),
                Some(g) if g.state == GroupState::CompletingRebalance => {
                    Err(codes::REBALANCE_IN_PROGRESS)
                }
                Some(g) if g.state == GroupState::Dead => Err(codes::COORDINATOR_NOT_AVAILABLE),
                Some(g) if g.fenced(member_id, instance) => Err(codes::FENCED_INSTANCE_ID),
                Some(g) => {
                    let group_generation = g.generation;
                    match g.member(member_id) {
                        None => Err(codes::UNKNOWN_MEMBER_ID),
                        Some(_) if generation != group_generation => Err(codes::ILLEGAL_GENERATION),
                        Some(m) => {
                            m.refresh_session(Instant::now());
                            Ok(())
                        }
                    }
                }
            }
        };
        if let Err(code) = allowed {
            return vec![code; offsets.len()];
        }
        self.write_offsets(group_id, offsets, None, retention_ms)
            .await
    }

    /// TxnOffsetCommit: offsets committed inside the producer's transaction, one error code
    /// per offset. They are written now and take effect with the transaction's COMMIT marker
    /// (Kafka's `handleTxnCommitOffsets`).
    #[allow(clippy::too_many_arguments)]
    pub async fn commit_transactional(
        &self,
        group_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        generation: i32,
        member_id: &str,
        instance: Option<&str>,
        offsets: Vec<OffsetToCommit>,
    ) -> Vec<i16> {
        if group_id.is_empty() {
            return vec![codes::INVALID_GROUP_ID; offsets.len()];
        }
        let allowed = {
            let mut groups = self.lock();
            match groups.get_mut(group_id) {
                None => {
                    groups.insert(group_id.to_string(), Group::new());
                    Ok(())
                }
                Some(g) if g.state == GroupState::Dead => Err(codes::COORDINATOR_NOT_AVAILABLE),
                Some(g) if g.fenced(member_id, instance) => Err(codes::FENCED_INSTANCE_ID),
                Some(g)
                    if !member_id.is_empty()
                        && !g.members.iter().any(|m| m.member_id == member_id) =>
                {
                    Err(codes::UNKNOWN_MEMBER_ID)
                }
                Some(g) if generation >= 0 && generation != g.generation => {
                    Err(codes::ILLEGAL_GENERATION)
                }
                Some(_) => Ok(()),
            }
        };
        if let Err(code) = allowed {
            return vec![code; offsets.len()];
        }
        // TxnOffsetCommit has no retention of its own: the broker's rule applies.
        self.write_offsets(group_id, offsets, Some((producer_id, producer_epoch)), -1)
            .await
    }

    /// Writes committed offsets (inside `producer`'s transaction when given) and, once
    /// written, makes them the group's (or holds them pending the transaction's end).
    /// `retention_ms` >= 0 gives them a fixed expiry time.
    async fn write_offsets(
        &self,
        group_id: &str,
        offsets: Vec<OffsetToCommit>,
        producer: Option<(i64, i16)>,
        retention_ms: i64,
    ) -> Vec<i16> {
        let now = now_ms();
        let expire_timestamp = (retention_ms >= 0).then(|| now.saturating_add(retention_ms));
        let mut results = vec![codes::NONE; offsets.len()];
        let mut to_write = Vec::new();
        let mut values = Vec::new();
        for (i, (topic, partition, offset, leader_epoch, metadata)) in
            offsets.into_iter().enumerate()
        {
            let metadata = metadata.unwrap_or_default();
            if metadata.len() > OFFSET_METADATA_MAX_BYTES {
                results[i] = codes::OFFSET_METADATA_TOO_LARGE;
                continue;
            }
            let value = CommittedOffset {
                offset,
                leader_epoch,
                metadata,
                commit_timestamp: now,
                expire_timestamp,
            };
            to_write.push((
                records::offset_key(group_id, &topic, partition),
                Some(records::offset_value(&OffsetValue {
                    offset,
                    leader_epoch,
                    metadata: value.metadata.clone(),
                    commit_timestamp: now,
                    expire_timestamp,
                })),
            ));
            values.push((i, topic, partition, value));
        }
        if to_write.is_empty() {
            return results;
        }
        self.track_pending_commits(group_id, &values, true);
        let outcome = self.append_for(group_id, to_write, producer).await;
        self.track_pending_commits(group_id, &values, false);
        match outcome {
            Ok(()) => {
                let mut groups = self.lock();
                let group = groups
                    .entry(group_id.to_string())
                    .or_insert_with(Group::new);
                let target = match producer {
                    Some((pid, _)) => group.pending_txn_offsets.entry(pid).or_default(),
                    None => &mut group.offsets,
                };
                for (_, topic, partition, value) in values {
                    target.insert((topic, partition), value);
                }
            }
            Err(e) => {
                let code = e.offset_commit_code();
                for (i, ..) in values {
                    results[i] = code;
                }
            }
        }
        results
    }

    /// Marks offsets as being appended (`start`) or no longer.
    fn track_pending_commits(
        &self,
        group_id: &str,
        values: &[(usize, String, i32, CommittedOffset)],
        start: bool,
    ) {
        let mut groups = self.lock();
        let Some(group) = groups.get_mut(group_id) else {
            return;
        };
        for (_, topic, partition, _) in values {
            let key = (topic.clone(), *partition);
            if start {
                *group.pending_commits.entry(key).or_default() += 1;
            } else if let Some(n) = group.pending_commits.get_mut(&key) {
                *n -= 1;
                if *n == 0 {
                    group.pending_commits.remove(&key);
                }
            }
        }
    }

    /// OffsetFetch: `topics` None means every committed partition of the group. Each entry:
    /// topic, partition, committed offset (None when nothing was committed). Err: the group's
    /// error (not its coordinator, still loading).
    pub fn fetch(
        &self,
        group_id: &str,
        topics: Option<Vec<(String, Vec<i32>)>>,
    ) -> Result<FetchedOffsets, i16> {
        self.validate(group_id)?;
        let groups = self.lock();
        let offsets = groups.get(group_id).map(|g| &g.offsets);
        Ok(match topics {
            Some(topics) => topics
                .into_iter()
                .map(|(topic, partitions)| {
                    let found = partitions
                        .into_iter()
                        .map(|p| {
                            let c = offsets.and_then(|o| o.get(&(topic.clone(), p)).cloned());
                            (p, c)
                        })
                        .collect();
                    (topic, found)
                })
                .collect(),
            None => {
                let mut out: FetchedOffsets = Vec::new();
                for ((topic, p), c) in offsets.into_iter().flatten() {
                    match out.last_mut() {
                        Some((t, parts)) if t == topic => parts.push((*p, Some(c.clone()))),
                        _ => out.push((topic.clone(), vec![(*p, Some(c.clone()))])),
                    }
                }
                out
            }
        })
    }

    /// Whether an open transaction holds an uncommitted offset for this partition (OffsetFetch
    /// with `require_stable` answers UNSTABLE_OFFSET_COMMIT for it, KIP-447).
    pub fn has_pending_transactional_offset(
        &self,
        group_id: &str,
        topic: &str,
        partition: i32,
    ) -> bool {
        let groups = self.lock();
        groups.get(group_id).is_some_and(|g| {
            let key = (topic.to_string(), partition);
            g.pending_txn_offsets.values().any(|o| o.contains_key(&key))
        })
    }

    // ---------------------------------------------------------------------------------------
    // ListGroups, DescribeGroups
    // ---------------------------------------------------------------------------------------

    /// Every group this broker coordinates: id, protocol type, state; and the error to send
    /// with them (COORDINATOR_LOAD_IN_PROGRESS while some partition is loading, as in Kafka:
    /// the list may lack groups then).
    pub fn list(&self) -> (i16, Vec<(String, String, GroupState)>) {
        let error = if self.loading_lock().is_empty() {
            codes::NONE
        } else {
            codes::COORDINATOR_LOAD_IN_PROGRESS
        };
        let groups = self.lock();
        let mut out: Vec<_> = groups
            .iter()
            .filter(|(_, g)| g.state != GroupState::Dead)
            .map(|(id, g)| {
                (
                    id.clone(),
                    g.protocol_type.clone().unwrap_or_default(),
                    g.state,
                )
            })
            .collect();
        out.sort();
        (error, out)
    }

    /// Groups per state and committed offsets held, for the metrics (GroupMetadataManager's
    /// NumGroups* and NumOffsets gauges).
    pub fn census(&self) -> (BTreeMap<GroupState, usize>, usize) {
        let groups = self.lock();
        let mut states = BTreeMap::new();
        let mut offsets = 0;
        for g in groups.values() {
            *states.entry(g.state).or_insert(0) += 1;
            offsets += g.offsets.len();
        }
        (states, offsets)
    }

    /// DescribeGroups: Ok(None) for a group that does not exist.
    pub fn describe(&self, group_id: &str) -> Result<Option<GroupDescription>, i16> {
        self.validate(group_id)?;
        let groups = self.lock();
        let Some(g) = groups.get(group_id) else {
            return Ok(None);
        };
        let stable = g.state == GroupState::Stable;
        let protocol = g.protocol.clone().unwrap_or_default();
        Ok(Some(GroupDescription {
            state: g.state,
            protocol_type: g.protocol_type.clone().unwrap_or_default(),
            // Kafka shows the protocol (and member metadata/assignment) only when Stable.
            protocol: if stable {
                protocol.clone()
            } else {
                String::new()
            },
            members: g
                .members
                .iter()
                .map(|m| MemberDescription {
                    member_id: m.member_id.clone(),
                    group_instance_id: m.group_instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    metadata: if stable {
                        m.metadata_for(&protocol)
                    } else {
                        Bytes::new()
                    },
                    assignment: if stable {
                        m.assignment.clone()
                    } else {
                        Bytes::new()
                    },
                })
                .collect(),
        }))
    }

    /// DeleteGroups: only an Empty group goes; its offsets and metadata are tombstoned in
    /// `__consumer_offsets` (so they do not come back at the next start) before it is dropped.
    pub async fn delete(&self, group_id: &str) -> i16 {
        if group_id.is_empty() {
            return codes::INVALID_GROUP_ID;
        }
        if let Err(code) = self.validate(group_id) {
            return code;
        }
        let tombstones = {
            let mut groups = self.lock();
            let Some(group) = groups.get_mut(group_id) else {
                return codes::GROUP_ID_NOT_FOUND;
            };
            match group.state {
                GroupState::Empty => {}
                GroupState::Dead => return codes::GROUP_ID_NOT_FOUND,
                _ => return codes::NON_EMPTY_GROUP,
            }
            group.set_state(GroupState::Dead);
            let all: Vec<_> = group.offsets.keys().cloned().collect();
            let tombstones = group.remove_offsets(group_id, &all);
            // The group is gone whatever happens to the tombstones, as in Kafka: should they be
            // lost, the offsets come back at the next load and expire again.
            groups.remove(group_id);
            tombstones
        };
        self.append_tombstones(group_id, tombstones).await;
        tracing::info!(group = group_id, "group deleted");
        codes::NONE
    }

    /// OffsetDelete: removes the group's committed offsets for `partitions`, Kafka's way: any
    /// of an Empty group; of a consumer group with members only those of topics none of them
    /// subscribes to (GROUP_SUBSCRIBED_TO_TOPIC for the others); none of any other group with
    /// members (NON_EMPTY_GROUP). Err is the group-level error.
    pub async fn delete_offsets(
        &self,
        group_id: &str,
        partitions: Vec<TopicPartition>,
    ) -> Result<Vec<(TopicPartition, i16)>, i16> {
        if group_id.is_empty() {
            return Err(codes::INVALID_GROUP_ID);
        }
        self.validate(group_id)?;
        let (results, tombstones) = {
            let mut groups = self.lock();
            let group = match groups.get_mut(group_id) {
                Some(g) if g.state != GroupState::Dead => g,
                _ => return Err(codes::GROUP_ID_NOT_FOUND),
            };
            let (eligible, subscribed): (Vec<_>, Vec<_>) = match group.state {
                GroupState::Empty => (partitions, Vec::new()),
                _ if group.protocol_type.as_deref() == Some(CONSUMER_PROTOCOL_TYPE) => partitions
                    .into_iter()
                    .partition(|(topic, _)| !group.is_subscribed_to(topic)),
                _ => return Err(codes::NON_EMPTY_GROUP),
            };
            let tombstones = group.remove_offsets(group_id, &eligible);
            if group.state == GroupState::Dead {
                groups.remove(group_id);
            }
            let results: Vec<_> = eligible
                .into_iter()
                .map(|tp| (tp, codes::NONE))
                .chain(
                    subscribed
                        .into_iter()
                        .map(|tp| (tp, codes::GROUP_SUBSCRIBED_TO_TOPIC)),
                )
                .collect();
            (results, tombstones)
        };
        self.append_tombstones(group_id, tombstones).await;
        Ok(results)
    }

    /// Appends tombstones for offsets and groups removed from memory. Like Kafka, a failure is
    /// only logged: the records they delete are removed again when next loaded and expired.
    async fn append_tombstones(&self, group_id: &str, tombstones: Vec<Record>) {
        if tombstones.is_empty() {
            return;
        }
        if let Err(e) = self.append(group_id, tombstones).await {
            tracing::warn!(group = group_id, error = ?e, "could not write tombstones");
        }
    }

    // ---------------------------------------------------------------------------------------
    // Offset expiry
    // ---------------------------------------------------------------------------------------

    /// One pass of Kafka's `cleanupGroupMetadata`: expired offsets are removed and tombstoned,
    /// Empty groups left without offsets die. Returns how many offsets expired.
    async fn expire_offsets(&self) -> usize {
        let now = now_ms();
        let retention_ms = i64::from(self.config.offsets_retention_minutes) * 60_000;
        let mut work: Vec<(String, Vec<Record>)> = Vec::new();
        let mut expired = 0;
        {
            let mut groups = self.lock();
            let mut dead = Vec::new();
            for (id, group) in groups.iter_mut() {
                if group.state == GroupState::Dead {
                    continue;
                }
                let offsets = group.expired_offsets(now, retention_ms);
                expired += offsets.len();
                let tombstones = group.remove_offsets(id, &offsets);
                if group.state == GroupState::Dead {
                    tracing::info!(group = id, "group has no offsets left and is removed");
                    dead.push(id.clone());
                }
                if !tombstones.is_empty() {
                    work.push((id.clone(), tombstones));
                }
            }
            for id in dead {
                groups.remove(&id);
            }
        }
        for (id, tombstones) in work {
            self.append_tombstones(&id, tombstones).await;
        }
        if expired > 0 {
            tracing::info!(offsets = expired, "removed expired offsets");
        }
        expired
    }

    // ---------------------------------------------------------------------------------------
    // Loading
    // ---------------------------------------------------------------------------------------

    /// This broker is about to lead `__consumer_offsets` partition `index`: until
    /// [`Self::load_partition`] has read it, its groups answer COORDINATOR_LOAD_IN_PROGRESS
    /// (clients retry) instead of looking empty.
    pub fn begin_loading(&self, index: i32) {
        self.loading_lock().insert(index);
    }

    /// This broker became leader of `__consumer_offsets` partition `index`: replays it, so the
    /// groups it holds (committed offsets, members) are served from here. Runs inside the
    /// LeaderAndIsr that made it leader, before the controller announces the new leader.
    pub async fn load_partition(&self, index: i32) -> Result<(), LogError> {
        self.begin_loading(index);
        let outcome = self.read_partition(index).await;
        self.groups_loaded(index);
        self.loading_lock().remove(&index);
        outcome
    }

    /// Kafka's `onGroupLoaded`: a group with more members than `group.max.size` (lowered since
    /// it was stored) rebalances, so that members over the size are turned away as they rejoin.
    fn groups_loaded(&self, index: i32) {
        let max_size = usize::try_from(self.config.group_max_size).unwrap_or(usize::MAX);
        let mut groups = self.lock();
        let now = Instant::now();
        for (id, group) in groups.iter_mut() {
            if self.partition_for(id) == index && group.members.len() > max_size {
                tracing::info!(
                    group = id,
                    members = group.members.len(),
                    max = max_size,
                    "loaded group is over group.max.size; rebalancing"
                );
                self.prepare_rebalance(group, now);
            }
        }
    }

    /// Applies the records of `__consumer_offsets` partition `index`, from its start to its end.
    async fn read_partition(&self, index: i32) -> Result<(), LogError> {
        if let Some(partition) = self.replicas.leader(OFFSETS_TOPIC, index) {
            let mut offset = partition.log.lock().log_start_offset();
            loop {
                let read = self
                    .replicas
                    .read(&partition, offset, 5 * 1024 * 1024, true)
                    .await?;
                if read.records.is_empty() {
                    break;
                }
                let mut pos = 0;
                let buf = &read.records;
                let before = offset;
                while pos < buf.len() {
                    let Some(size) = batch::entry_size(&buf[pos..]).map(|s| s as usize) else {
                        break;
                    };
                    if size == 0 || pos + size > buf.len() {
                        break;
                    }
                    let (header, recs) = decode_batch(&buf[pos..pos + size])?;
                    pos += size;
                    offset = offset.max(header.next_offset());
                    let mut groups = self.lock();
                    if header.is_control() {
                        // A transaction's end: its offsets take effect or are dropped.
                        if let Some(commit) = recs
                            .first()
                            .and_then(|r| marker_is_commit(r.key.as_deref()))
                        {
                            complete_txn_offsets(&mut groups, |_| true, header.producer_id, commit);
                        }
                        continue;
                    }
                    let producer = header.is_transactional().then_some(header.producer_id);
                    for r in recs {
                        if let Some(key) = r.key {
                            apply_record(&mut groups, &key, r.value.as_deref(), producer);
                        }
                    }
                }
                if offset <= before {
                    break;
                }
            }
        }
        let groups = self.lock();
        let loaded = groups
            .iter()
            .filter(|(g, _)| self.partition_for(g) == index)
            .count();
        tracing::info!(
            partition = index,
            groups = loaded,
            "loaded groups from {OFFSETS_TOPIC}"
        );
        Ok(())
    }

    /// A transaction marker was written to `__consumer_offsets` partition `index`: the
    /// producer's pending offsets in that partition's groups take effect (COMMIT) or go.
    pub fn complete_transaction(&self, index: i32, producer_id: i64, commit: bool) {
        let mut groups = self.lock();
        complete_txn_offsets(
            &mut groups,
            |g| self.partition_for(g) == index,
            producer_id,
            commit,
        );
    }

    /// This broker no longer leads `__consumer_offsets` partition `index`: its groups are
    /// served elsewhere now. Parked joins and syncs are answered NOT_COORDINATOR so their
    /// clients look for the new coordinator.
    pub fn unload_partition(&self, index: i32) {
        self.loading_lock().remove(&index);
        let mut groups = self.lock();
        let leaving: Vec<String> = groups
            .keys()
            .filter(|g| self.partition_for(g) == index)
            .cloned()
            .collect();
        for g in leaving {
            if let Some(mut group) = groups.remove(&g) {
                group.answer_all_not_coordinator();
            }
        }
    }
}

/// Applies one `__consumer_offsets` record to the in-memory groups, as Kafka's loader does:
/// offset records replace (tombstones remove) an offset; group records replace the group's
/// metadata (tombstones remove the group). Undecodable records are skipped with a warning.
/// `producer` is set for records inside a transaction: their offsets stay pending until the
/// transaction's marker.
fn apply_record(
    groups: &mut HashMap<String, Group>,
    key: &[u8],
    value: Option<&[u8]>,
    producer: Option<i64>,
) {
    let key = match records::decode_key(key) {
        Ok(k) => k,
        Err(e) => {
            tracing::warn!(error = %e, "skipping record");
            return;
        }
    };
    match key {
        RecordKey::Offset {
            group,
            topic,
            partition,
        } => match value.map(records::decode_offset_value) {
            None => {
                if let Some(g) = groups.get_mut(&group) {
                    g.offsets.remove(&(topic, partition));
                }
            }
            Some(Ok(v)) => {
                let g = groups.entry(group).or_insert_with(Group::new);
                let target = match producer {
                    Some(pid) => g.pending_txn_offsets.entry(pid).or_default(),
                    None => &mut g.offsets,
                };
                target.insert(
                    (topic, partition),
                    CommittedOffset {
                        offset: v.offset,
                        leader_epoch: v.leader_epoch,
                        metadata: v.metadata,
                        commit_timestamp: v.commit_timestamp,
                        expire_timestamp: v.expire_timestamp,
                    },
                );
            }
            Some(Err(e)) => tracing::warn!(error = %e, "skipping offset record"),
        },
        RecordKey::Group { group } => match value.map(records::decode_group_value) {
            None => {
                groups.remove(&group);
            }
            Some(Ok(v)) => {
                let g = groups.entry(group).or_insert_with(Group::new);
                let now = Instant::now();
                g.protocol_type = Some(v.protocol_type).filter(|p| !p.is_empty());
                g.generation = v.generation;
                g.protocol = v.protocol;
                g.leader = v.leader;
                g.current_state_timestamp = v.current_state_timestamp;
                // Loaded members are Stable with fresh sessions, as in Kafka: they expire
                // unless their consumers heartbeat again.
                g.members = v
                    .members
                    .into_iter()
                    .map(|m| {
                        let protocols = g
                            .protocol
                            .clone()
                            .map(|p| vec![(p, Bytes::from(m.subscription))])
                            .unwrap_or_default();
                        Member {
                            member_id: m.member_id,
                            group_instance_id: m.group_instance_id,
                            client_id: m.client_id,
                            client_host: m.client_host,
                            session_timeout_ms: m.session_timeout_ms,
                            rebalance_timeout_ms: m.rebalance_timeout_ms,
                            protocols,
                            assignment: Bytes::from(m.assignment),
                            join_waiter: None,
                            sync_waiter: None,
                            session_deadline: now + ms(m.session_timeout_ms),
                        }
                    })
                    .collect();
                g.state = if g.members.is_empty() {
                    GroupState::Empty
                } else {
                    GroupState::Stable
                };
                g.subscribed_topics = g.compute_subscribed_topics();
            }
            Some(Err(e)) => tracing::warn!(error = %e, "skipping group record"),
        },
        RecordKey::Unknown(v) => tracing::debug!(version = v, "skipping unknown record key"),
    }
}

/// The type of a transaction marker from its record key (version, type): `Some(true)` for
/// COMMIT, `Some(false)` for ABORT.
fn marker_is_commit(key: Option<&[u8]>) -> Option<bool> {
    match key? {
        [0, 0, 0, 1] => Some(true),
        [0, 0, 0, 0] => Some(false),
        _ => None,
    }
}

/// Moves (COMMIT) or drops (ABORT) a producer's pending transactional offsets in the groups
/// `in_partition` selects.
fn complete_txn_offsets(
    groups: &mut HashMap<String, Group>,
    in_partition: impl Fn(&str) -> bool,
    producer_id: i64,
    commit: bool,
) {
    for (id, g) in groups.iter_mut() {
        if !in_partition(id) {
            continue;
        }
        if let Some(pending) = g.pending_txn_offsets.remove(&producer_id)
            && commit
        {
            g.offsets.extend(pending);
        }
    }
}

/// Why an append to `__consumer_offsets` failed.
#[derive(Debug)]
enum AppendError {
    Coordinator(i16),
    Log(LogError),
    /// The leader refused the append, or its ISR did not take the records
    /// (NOT_LEADER_OR_FOLLOWER, REQUEST_TIMED_OUT, NOT_ENOUGH_REPLICAS_AFTER_APPEND, ...).
    Replication(i16),
}

/// Kafka's `offsets.commit.timeout.ms` default: how long a commit waits for the ISR.
const OFFSETS_COMMIT_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(5000);

impl AppendError {
    fn log_code(&self) -> i16 {
        match self {
            AppendError::Coordinator(c) | AppendError::Replication(c) => *c,
            AppendError::Log(e) => e.kafka_error_code(),
        }
    }

    /// Kafka's `maybeConvertOffsetCommitError`.
    fn offset_commit_code(&self) -> i16 {
        match self {
            AppendError::Coordinator(c) => *c,
            AppendError::Log(_) | AppendError::Replication(_) => match self.log_code() {
                3 | 19 | 20 | codes::REQUEST_TIMED_OUT => codes::COORDINATOR_NOT_AVAILABLE,
                6 | 56 => codes::NOT_COORDINATOR,
                10 | 18 | 4 => codes::INVALID_COMMIT_OFFSET_SIZE,
                other => other,
            },
        }
    }

    /// The group metadata append in SyncGroup maps differently (GroupCoordinator.doSyncGroup).
    fn group_metadata_code(&self) -> i16 {
        match self {
            AppendError::Coordinator(c) => *c,
            AppendError::Log(_) | AppendError::Replication(_) => match self.log_code() {
                3 | 19 | 20 => codes::COORDINATOR_NOT_AVAILABLE,
                6 | 56 => codes::NOT_COORDINATOR,
                codes::REQUEST_TIMED_OUT => codes::REBALANCE_IN_PROGRESS,
                _ => codes::UNKNOWN_SERVER_ERROR,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: &str, protocols: &[&str]) -> Member {
        Member {
            member_id: id.into(),
            group_instance_id: None,
            client_id: id.into(),
            client_host: String::new(),
            session_timeout_ms: 10_000,
            rebalance_timeout_ms: 10_000,
            protocols: protocols
                .iter()
                .map(|p| (p.to_string(), Bytes::new()))
                .collect(),
            assignment: Bytes::new(),
            join_waiter: None,
            sync_waiter: None,
            session_deadline: Instant::now(),
        }
    }

    #[test]
    fn protocol_selection_is_by_vote_among_common_protocols() {
        let mut g = Group::new();
        g.members
            .push(member("a", &["range", "roundrobin", "sticky"]));
        g.members.push(member("b", &["roundrobin", "range"]));
        g.members.push(member("c", &["roundrobin", "range"]));
        assert_eq!(g.candidate_protocols(), vec!["range", "roundrobin"]);
        assert_eq!(g.select_protocol().as_deref(), Some("roundrobin"));
        g.members.truncate(1);
        assert_eq!(g.select_protocol().as_deref(), Some("range"));
    }

    #[test]
    fn loader_applies_offsets_and_tombstones() {
        let mut groups = HashMap::new();
        let v = |o| {
            records::offset_value(&OffsetValue {
                offset: o,
                leader_epoch: -1,
                metadata: String::new(),
                commit_timestamp: 1,
                expire_timestamp: None,
            })
        };
        apply_record(
            &mut groups,
            &records::offset_key("g", "t", 0),
            Some(&v(5)),
            None,
        );
        apply_record(
            &mut groups,
            &records::offset_key("g", "t", 0),
            Some(&v(7)),
            None,
        );
        apply_record(
            &mut groups,
            &records::offset_key("g", "t", 1),
            Some(&v(9)),
            None,
        );
        apply_record(&mut groups, &records::offset_key("g", "t", 1), None, None);
        let g = &groups["g"];
        assert_eq!(g.offsets.len(), 1);
        assert_eq!(g.offsets[&("t".to_string(), 0)].offset, 7);
        assert_eq!(g.state, GroupState::Empty);
    }

    fn committed(at: i64, expire: Option<i64>) -> CommittedOffset {
        CommittedOffset {
            offset: 1,
            leader_epoch: -1,
            metadata: String::new(),
            commit_timestamp: at,
            expire_timestamp: expire,
        }
    }

    fn tp(topic: &str, p: i32) -> (String, i32) {
        (topic.to_string(), p)
    }

    /// KIP-211's rules, with the clock in the test's hands.
    #[test]
    fn offsets_expire_by_group_kind() {
        // Empty group that had consumers: every offset goes `retention` after it became Empty,
        // however recent the commit.
        let mut g = Group::new();
        g.protocol_type = Some("consumer".into());
        g.generation = 3;
        g.current_state_timestamp = 1_000;
        g.offsets.insert(tp("a", 0), committed(0, None));
        g.offsets.insert(tp("a", 1), committed(5_000, None));
        assert!(g.expired_offsets(1_099, 100).is_empty());
        assert_eq!(g.expired_offsets(1_100, 100), vec![tp("a", 0), tp("a", 1)]);
        // An offset still being appended is kept, and keeps the group alive.
        g.pending_commits.insert(tp("a", 1), 1);
        assert_eq!(g.expired_offsets(1_100, 100), vec![tp("a", 0)]);
        let tombstones = g.remove_offsets("g", &[tp("a", 0)]);
        assert_eq!(tombstones.len(), 1);
        assert_eq!(g.state, GroupState::Empty);
        g.pending_commits.clear();
        let tombstones = g.remove_offsets("g", &[tp("a", 1)]);
        assert_eq!(g.state, GroupState::Dead);
        assert_eq!(
            tombstones,
            vec![
                (records::offset_key("g", "a", 1), None),
                (records::group_key("g"), None)
            ]
        );

        // Offsets stored without group management: each on its own commit time, or at the
        // expiry time its commit asked for.
        let mut g = Group::new();
        g.offsets.insert(tp("a", 0), committed(0, None));
        g.offsets.insert(tp("a", 1), committed(500, None));
        g.offsets.insert(tp("a", 2), committed(500, Some(550)));
        assert_eq!(g.expired_offsets(549, 100), vec![tp("a", 0)]);
        assert_eq!(g.expired_offsets(550, 100), vec![tp("a", 0), tp("a", 2)]);
        let all: Vec<_> = g.offsets.keys().cloned().collect();
        let tombstones = g.remove_offsets("s", &all);
        // Dead, but no group record was ever written for it: no group tombstone either.
        assert_eq!(g.state, GroupState::Dead);
        assert_eq!(tombstones.len(), 3);

        // A Stable consumer group keeps what it subscribes to; unknown subscriptions keep all.
        let mut g = Group::new();
        g.protocol_type = Some("consumer".into());
        g.state = GroupState::Stable;
        g.offsets.insert(tp("sub", 0), committed(0, None));
        g.offsets.insert(tp("gone", 0), committed(0, None));
        assert!(g.expired_offsets(1_000, 100).is_empty());
        g.subscribed_topics = Some(BTreeSet::from(["sub".to_string()]));
        assert_eq!(g.expired_offsets(1_000, 100), vec![tp("gone", 0)]);
        // Rebalancing groups keep everything until they settle.
        g.state = GroupState::PreparingRebalance;
        assert!(g.expired_offsets(1_000, 100).is_empty());
    }

    #[test]
    fn max_size_counts_members_waiting_in_a_rebalance() {
        let mut g = Group::new();
        assert!(g.accepts_joining_member("", 1));
        g.members.push(member("a", &["range"]));
        g.members.push(member("b", &["range"]));
        g.state = GroupState::Stable;
        assert!(g.accepts_joining_member("a", 2));
        assert!(!g.accepts_joining_member("", 2));
        assert!(g.accepts_joining_member("", 3));
        // Rebalancing: the first to rejoin get in, up to the size.
        g.state = GroupState::PreparingRebalance;
        assert!(g.accepts_joining_member("b", 1));
        g.members[0].join_waiter = Some(oneshot::channel().0);
        assert!(g.accepts_joining_member("a", 1));
        assert!(!g.accepts_joining_member("b", 1));
    }
}
