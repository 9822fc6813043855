//! The rebalance itself, Kafka's `GroupCoordinator.handleJoinGroup` / `handleSyncGroup`:
//! JoinGroup (new, known and static members, PreparingRebalance, completing the join) and
//! SyncGroup (the leader's assignment, persisted before members get theirs).

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::state::{Group, GroupState, Member};
use super::{AppendError, GroupError};
use super::{GroupCoordinator, PendingGroupRecord, ms, records};

/// Extra time a parked JoinGroup/SyncGroup waits beyond the deadline the timer enforces, so the
/// wait is bounded even if the timer were late.
const WAIT_SLACK: Duration = Duration::from_secs(5);

/// What a JoinGroup request gets back.
#[derive(Debug, Clone, Default)]
pub struct JoinResult {
    pub error: Option<GroupError>,
    pub generation: i32,
    pub protocol_type: Option<String>,
    pub protocol: Option<String>,
    pub leader: String,
    pub member_id: String,
    /// Only the leader gets the members, with their metadata for the chosen protocol.
    pub members: Vec<(String, Option<String>, Bytes)>,
}

impl JoinResult {
    pub(super) fn error(error: GroupError, member_id: &str) -> Self {
        JoinResult {
            error: Some(error),
            generation: -1,
            member_id: member_id.to_string(),
            ..Default::default()
        }
    }
}

/// What a SyncGroup request gets back.
#[derive(Debug, Clone, Default)]
pub struct SyncResult {
    /// A refusal, or the failed write of the group's assignment.
    pub error: Option<AppendError>,
    pub protocol_type: Option<String>,
    pub protocol: Option<String>,
    pub assignment: Bytes,
}

impl SyncResult {
    pub(super) fn error(error: GroupError) -> Self {
        SyncResult {
            error: Some(error.into()),
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

impl GroupCoordinator {
    pub async fn join(&self, req: JoinRequest) -> JoinResult {
        if req.group_id.is_empty() {
            return JoinResult::error(GroupError::InvalidGroupId, &req.member_id);
        }
        // A group lives on its coordinator only: a join that reached another broker (stale
        // coordinator lookup) must not create the group here.
        if let Err(code) = self.coordinator_partition(&req.group_id).await {
            return JoinResult::error(code, &req.member_id);
        }
        if req.session_timeout_ms < self.config.group_min_session_timeout_ms
            || req.session_timeout_ms > self.config.group_max_session_timeout_ms
        {
            return JoinResult::error(GroupError::InvalidSessionTimeout, &req.member_id);
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
                    return JoinResult::error(GroupError::UnknownMemberId, &req.member_id);
                }
                groups.insert(req.group_id.clone(), Group::new());
            }
            let Some(group) = groups.get_mut(&req.group_id) else {
                return JoinResult::error(GroupError::UnknownServerError, &req.member_id);
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
            Ok(Err(_)) => JoinResult::error(GroupError::UnknownMemberId, &req.member_id),
            Err(_) => JoinResult::error(GroupError::RebalanceInProgress, &req.member_id),
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
                GroupError::GroupMaxSizeReached,
                "",
            )));
        }
        if group.state == GroupState::Dead {
            return Err(Box::new(JoinResult::error(
                GroupError::CoordinatorNotAvailable,
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
                GroupError::InconsistentGroupProtocol,
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
                    GroupError::MemberIdRequired,
                    &member_id,
                )));
            }
            self.add_member(group, req, member_id, tx, now);
            return Ok(rx);
        }
        if group.fenced(&req.member_id, req.group_instance_id.as_deref()) {
            return Err(Box::new(JoinResult::error(
                GroupError::FencedInstanceId,
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
                GroupError::UnknownMemberId,
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
            let _ = w.send(JoinResult::error(GroupError::FencedInstanceId, &old_id));
        }
        if let Some(w) = m.sync_waiter.take() {
            let _ = w.send(SyncResult::error(GroupError::FencedInstanceId));
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
            error: None,
            generation: group.generation,
            protocol_type: group.protocol_type.clone(),
            protocol,
            leader,
            member_id: member_id.to_string(),
            members,
        }
    }

    /// Stable / CompletingRebalance / Empty → PreparingRebalance.
    pub(super) fn prepare_rebalance(&self, group: &mut Group, now: Instant) {
        if group.state == GroupState::CompletingRebalance {
            // The assignment being synced is void: members parked in SyncGroup must rejoin.
            for m in &mut group.members {
                m.assignment = Bytes::new();
                if let Some(w) = m.sync_waiter.take() {
                    let _ = w.send(SyncResult::error(GroupError::RebalanceInProgress));
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
    pub(super) fn try_complete_join(
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
    // SyncGroup
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
                return SyncResult::error(GroupError::UnknownMemberId);
            };
            if group.fenced(member_id, instance) {
                return SyncResult::error(GroupError::FencedInstanceId);
            }
            let is_leader = group.leader.as_deref() == Some(member_id);
            let protocol_type = group.protocol_type.clone();
            let protocol = group.protocol.clone();
            let state = group.state;
            let group_generation = group.generation;
            let Some(member) = group.member(member_id) else {
                return SyncResult::error(GroupError::UnknownMemberId);
            };
            if generation != group_generation {
                return SyncResult::error(GroupError::IllegalGeneration);
            }
            member.refresh_session(now);
            let wait_bound = ms(member.rebalance_timeout_ms.max(member.session_timeout_ms));
            match state {
                GroupState::Empty | GroupState::Dead => {
                    return SyncResult::error(GroupError::UnknownMemberId);
                }
                GroupState::PreparingRebalance => {
                    return SyncResult::error(GroupError::RebalanceInProgress);
                }
                GroupState::Stable => {
                    return SyncResult {
                        error: None,
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
                                    error: None,
                                    protocol_type: protocol_type.clone(),
                                    protocol: protocol.clone(),
                                    assignment: m.assignment.clone(),
                                });
                            }
                        }
                    }
                    Err(e) => {
                        for m in &mut group.members {
                            if let Some(w) = m.sync_waiter.take() {
                                let _ = w.send(SyncResult {
                                    error: Some(e.clone()),
                                    ..Default::default()
                                });
                            }
                        }
                        self.prepare_rebalance(group, Instant::now());
                    }
                }
            }
        }
        match tokio::time::timeout(wait_bound + WAIT_SLACK, rx).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => SyncResult::error(GroupError::UnknownMemberId),
            Err(_) => SyncResult::error(GroupError::RebalanceInProgress),
        }
    }
}
