//! Committed offsets, Kafka's `GroupMetadataManager.storeOffsets` / `getOffsets` and
//! `cleanupGroupMetadata`: OffsetCommit (plain and transactional), OffsetFetch, OffsetDelete and
//! offset expiry (KIP-211).

use tokio::time::Instant;

use crate::log::TopicPartition;

use super::records::OffsetValue;
use super::state::{Group, GroupState};
use super::{
    AppendError, CONSUMER_PROTOCOL_TYPE, GroupCoordinator, GroupError, Record, now_ms, records,
};

/// `offset.metadata.max.bytes` (Kafka's default; not configurable here yet).
const OFFSET_METADATA_MAX_BYTES: usize = 4096;

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

impl GroupCoordinator {
    /// OffsetCommit: one outcome per offset, in order. `retention_ms` (OffsetCommit v2-v4;
    /// -1 for the broker's rule) gives the offsets a fixed expiry time.
    pub async fn commit(
        &self,
        group_id: &str,
        generation: i32,
        member_id: &str,
        instance: Option<&str>,
        offsets: Vec<OffsetToCommit>,
        retention_ms: i64,
    ) -> Vec<Result<(), AppendError>> {
        if group_id.is_empty() {
            return vec![Err(GroupError::InvalidGroupId.into()); offsets.len()];
        }
        // Before the group is looked at: a commit that reached another broker must not create
        // the group here.
        if let Err(e) = self.coordinator_partition(group_id).await {
            return vec![Err(e.into()); offsets.len()];
        }
        let allowed = {
            let mut groups = self.lock();
            match groups.get_mut(group_id) {
                None if generation < 0 => {
                    // A standalone commit creates the group with no protocol type.
                    groups.insert(group_id.to_string(), Group::new());
                    Ok(())
                }
                None => Err(GroupError::UnknownMemberId),
                Some(g) if generation < 0 && g.state == GroupState::Empty => Ok(()),
                Some(g) if g.state == GroupState::CompletingRebalance => {
                    Err(GroupError::RebalanceInProgress)
                }
                Some(g) if g.state == GroupState::Dead => Err(GroupError::CoordinatorNotAvailable),
                Some(g) if g.fenced(member_id, instance) => Err(GroupError::FencedInstanceId),
                Some(g) => {
                    let group_generation = g.generation;
                    match g.member(member_id) {
                        None => Err(GroupError::UnknownMemberId),
                        Some(_) if generation != group_generation => {
                            Err(GroupError::IllegalGeneration)
                        }
                        Some(m) => {
                            m.refresh_session(Instant::now());
                            Ok(())
                        }
                    }
                }
            }
        };
        if let Err(e) = allowed {
            return vec![Err(e.into()); offsets.len()];
        }
        self.write_offsets(group_id, offsets, None, retention_ms)
            .await
    }

    /// TxnOffsetCommit: offsets committed inside the producer's transaction, one outcome per
    /// offset. They are written now and take effect with the transaction's COMMIT marker
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
    ) -> Vec<Result<(), AppendError>> {
        if group_id.is_empty() {
            return vec![Err(GroupError::InvalidGroupId.into()); offsets.len()];
        }
        let allowed = {
            let mut groups = self.lock();
            match groups.get_mut(group_id) {
                None => {
                    groups.insert(group_id.to_string(), Group::new());
                    Ok(())
                }
                Some(g) if g.state == GroupState::Dead => Err(GroupError::CoordinatorNotAvailable),
                Some(g) if g.fenced(member_id, instance) => Err(GroupError::FencedInstanceId),
                Some(g)
                    if !member_id.is_empty()
                        && !g.members.iter().any(|m| m.member_id == member_id) =>
                {
                    Err(GroupError::UnknownMemberId)
                }
                Some(g) if generation >= 0 && generation != g.generation => {
                    Err(GroupError::IllegalGeneration)
                }
                Some(_) => Ok(()),
            }
        };
        if let Err(e) = allowed {
            return vec![Err(e.into()); offsets.len()];
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
    ) -> Vec<Result<(), AppendError>> {
        let now = now_ms();
        let expire_timestamp = (retention_ms >= 0).then(|| now.saturating_add(retention_ms));
        let mut results = vec![Ok(()); offsets.len()];
        let mut to_write = Vec::new();
        let mut values = Vec::new();
        for (i, (topic, partition, offset, leader_epoch, metadata)) in
            offsets.into_iter().enumerate()
        {
            let metadata = metadata.unwrap_or_default();
            if metadata.len() > OFFSET_METADATA_MAX_BYTES {
                results[i] = Err(GroupError::OffsetMetadataTooLarge.into());
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
                for (i, ..) in values {
                    results[i] = Err(e.clone());
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
    ) -> Result<FetchedOffsets, GroupError> {
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

    /// OffsetDelete: removes the group's committed offsets for `partitions`, Kafka's way: any
    /// of an Empty group; of a consumer group with members only those of topics none of them
    /// subscribes to (GROUP_SUBSCRIBED_TO_TOPIC for the others); none of any other group with
    /// members (NON_EMPTY_GROUP). Err is the group-level error.
    pub async fn delete_offsets(
        &self,
        group_id: &str,
        partitions: Vec<TopicPartition>,
    ) -> Result<Vec<(TopicPartition, Result<(), GroupError>)>, GroupError> {
        if group_id.is_empty() {
            return Err(GroupError::InvalidGroupId);
        }
        self.validate(group_id)?;
        let (results, tombstones) = {
            let mut groups = self.lock();
            let group = match groups.get_mut(group_id) {
                Some(g) if g.state != GroupState::Dead => g,
                _ => return Err(GroupError::GroupIdNotFound),
            };
            let (eligible, subscribed): (Vec<_>, Vec<_>) = match group.state {
                GroupState::Empty => (partitions, Vec::new()),
                _ if group.protocol_type.as_deref() == Some(CONSUMER_PROTOCOL_TYPE) => partitions
                    .into_iter()
                    .partition(|(topic, _)| !group.is_subscribed_to(topic)),
                _ => return Err(GroupError::NonEmptyGroup),
            };
            let tombstones = group.remove_offsets(group_id, &eligible);
            if group.state == GroupState::Dead {
                groups.remove(group_id);
            }
            let results: Vec<_> = eligible
                .into_iter()
                .map(|tp| (tp, Ok(())))
                .chain(
                    subscribed
                        .into_iter()
                        .map(|tp| (tp, Err(GroupError::GroupSubscribedToTopic))),
                )
                .collect();
            (results, tombstones)
        };
        self.append_tombstones(group_id, tombstones).await;
        Ok(results)
    }

    /// Appends tombstones for offsets and groups removed from memory. Like Kafka, a failure is
    /// only logged: the records they delete are removed again when next loaded and expired.
    pub(super) async fn append_tombstones(&self, group_id: &str, tombstones: Vec<Record>) {
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
    pub(super) async fn expire_offsets(&self) -> usize {
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
}
