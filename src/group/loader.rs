//! Loading and unloading a `__consumer_offsets` partition at leadership change, Kafka's
//! `GroupMetadataManager.loadGroupsAndOffsets` / `removeGroupsForPartition`: replaying its
//! records into groups and offsets, and completing transactional offsets at their markers.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use tokio::time::Instant;

use crate::log::records::decode_batch;
use crate::log::{LogError, batch};
use crate::replica::election_tasks::{Election, ElectionHandler};

use super::records::{self, RecordKey};
use super::state::{Group, GroupState, Member};
use super::{CommittedOffset, GroupCoordinator, OFFSETS_TOPIC, ms};

impl GroupCoordinator {
    /// This broker is about to lead `__consumer_offsets` partition `index`: until
    /// [`Self::load_partition`] has read it, its groups answer COORDINATOR_LOAD_IN_PROGRESS
    /// (clients retry) instead of looking empty. Each call is ended by one `load_partition`
    /// or `cancel_loading`.
    pub fn begin_loading(&self, index: i32) {
        self.loading.begin(index);
    }

    /// The leadership that `begin_loading` announced did not come about.
    pub fn cancel_loading(&self, index: i32) {
        self.loading.end(index);
    }

    /// Kafka's `onElection`: this broker now leads `__consumer_offsets` partition `index`
    /// (`begin_loading` was called before it did); the partition is read in the background.
    pub fn elected(self: &Arc<Self>, index: i32) {
        self.elections.schedule(self, Election::Elected(index));
    }

    /// Kafka's `onResignation`: this broker no longer leads partition `index`; its groups go
    /// once the loads queued before have run.
    pub fn resigned(self: &Arc<Self>, index: i32) {
        self.elections.schedule(self, Election::Resigned(index));
    }

    /// Replays `__consumer_offsets` partition `index`, so the groups it holds (committed
    /// offsets, members) are served from here, and ends the loading `begin_loading` started.
    pub async fn load_partition(&self, index: i32) -> Result<(), LogError> {
        let outcome = self.read_partition(index).await;
        self.groups_loaded(index);
        self.loading.end(index);
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

impl ElectionHandler for GroupCoordinator {
    async fn elected(self: Arc<Self>, index: i32) {
        if let Err(e) = self.load_partition(index).await {
            tracing::error!(partition = index, error = %e, "cannot load groups");
        }
    }

    fn resigned(&self, index: i32) {
        self.unload_partition(index);
    }
}

#[cfg(test)]
mod tests {
    use super::records::OffsetValue;
    use super::*;

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
}
