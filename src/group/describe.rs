//! Looking at groups from outside, Kafka's `GroupCoordinator.handleListGroups` /
//! `handleDescribeGroup` / `handleDeleteGroups`: ListGroups, DescribeGroups, DeleteGroups and the
//! per-state census the metrics read.

use std::collections::BTreeMap;

use bytes::Bytes;

use super::state::GroupState;
use super::{GroupCoordinator, GroupError};

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

impl GroupCoordinator {
    /// Every group this broker coordinates: id, protocol type, state; and the error to send
    /// with them (COORDINATOR_LOAD_IN_PROGRESS while some partition is loading, as in Kafka:
    /// the list may lack groups then).
    pub fn list(&self) -> (Option<GroupError>, Vec<(String, String, GroupState)>) {
        let error = (!self.loading.is_empty()).then_some(GroupError::CoordinatorLoadInProgress);
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
    pub fn describe(&self, group_id: &str) -> Result<Option<GroupDescription>, GroupError> {
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
    pub async fn delete(&self, group_id: &str) -> Result<(), GroupError> {
        if group_id.is_empty() {
            return Err(GroupError::InvalidGroupId);
        }
        self.validate(group_id)?;
        let tombstones = {
            let mut groups = self.lock();
            let Some(group) = groups.get_mut(group_id) else {
                return Err(GroupError::GroupIdNotFound);
            };
            match group.state {
                GroupState::Empty => {}
                GroupState::Dead => return Err(GroupError::GroupIdNotFound),
                _ => return Err(GroupError::NonEmptyGroup),
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
        Ok(())
    }
}
