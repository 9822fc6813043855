//! Staying in a group and leaving it, Kafka's `GroupCoordinator.handleHeartbeat` /
//! `handleLeaveGroup`: session refresh, static-member fencing, and what a membership change does
//! to a rebalance in progress.

use tokio::time::Instant;

use super::GroupError;
use super::state::{Group, GroupState};
use super::{GroupCoordinator, JoinResult, PendingGroupRecord, SyncResult};

impl GroupCoordinator {
    pub fn heartbeat(
        &self,
        group_id: &str,
        generation: i32,
        member_id: &str,
        instance: Option<&str>,
    ) -> Result<(), GroupError> {
        match self.validate(group_id) {
            Ok(()) => {}
            // Kafka answers blindly while the group loads: the member keeps its session.
            Err(GroupError::CoordinatorLoadInProgress) => {
                return Ok(());
            }
            Err(e) => return Err(e),
        }
        let mut groups = self.lock();
        let Some(group) = groups.get_mut(group_id) else {
            return Err(GroupError::UnknownMemberId);
        };
        let state = group.state;
        let group_generation = group.generation;
        match state {
            GroupState::Dead => return Err(GroupError::CoordinatorNotAvailable),
            GroupState::Empty => return Err(GroupError::UnknownMemberId),
            _ => {}
        }
        if group.fenced(member_id, instance) {
            return Err(GroupError::FencedInstanceId);
        }
        let Some(member) = group.member(member_id) else {
            return Err(GroupError::UnknownMemberId);
        };
        if generation != group_generation {
            return Err(GroupError::IllegalGeneration);
        }
        member.refresh_session(Instant::now());
        if state == GroupState::PreparingRebalance {
            Err(GroupError::RebalanceInProgress)
        } else {
            Ok(())
        }
    }

    /// Removes members; the top-level error is UNKNOWN_MEMBER_ID for an unknown group, and
    /// each member gets its own outcome.
    /// Members are named by member id, or (LeaveGroup v3+) by group instance id.
    pub async fn leave(
        &self,
        group_id: &str,
        member_ids: &[(String, Option<String>)],
    ) -> (Result<(), GroupError>, Vec<Result<(), GroupError>>) {
        if let Err(e) = self.validate(group_id) {
            return (Err(e), Vec::new());
        }
        let (outcomes, pending) = {
            let mut groups = self.lock();
            let Some(group) = groups.get_mut(group_id) else {
                return (
                    Err(GroupError::UnknownMemberId),
                    vec![Err(GroupError::UnknownMemberId); member_ids.len()],
                );
            };
            let now = Instant::now();
            let mut out = Vec::with_capacity(member_ids.len());
            let mut removed_any = false;
            for (id, instance) in member_ids {
                if group.pending.remove(id).is_some() {
                    out.push(Ok(()));
                    continue;
                }
                let found = match instance {
                    Some(instance) => match group.static_member_index(instance) {
                        Some(i) if !id.is_empty() && group.members[i].member_id != *id => {
                            out.push(Err(GroupError::FencedInstanceId));
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
                            let _ = w.send(JoinResult::error(GroupError::UnknownMemberId, id));
                        }
                        if let Some(w) = m.sync_waiter {
                            let _ = w.send(SyncResult::error(GroupError::UnknownMemberId));
                        }
                        tracing::info!(group = group_id, member = id, "member left");
                        removed_any = true;
                        out.push(Ok(()));
                    }
                    None => out.push(Err(GroupError::UnknownMemberId)),
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
        (Ok(()), outcomes)
    }

    /// After members were removed: rebalance, or finish the one in progress.
    pub(super) fn members_changed(
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
}
