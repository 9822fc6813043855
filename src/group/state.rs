//! Group state and members, Kafka's `GroupMetadata` and `MemberMetadata`: the group state
//! machine (Empty, PreparingRebalance, CompletingRebalance, Stable, Dead), protocol selection,
//! the group size limit, subscribed topics and which committed offsets have expired.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use bytes::Bytes;
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::records::{GroupValue, MemberValue};
use super::{
    CONSUMER_PROTOCOL_TYPE, CommittedOffset, GroupError, JoinResult, Record, SyncResult, ms,
    now_ms, records,
};

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

pub(super) struct Member {
    pub(super) member_id: String,
    pub(super) group_instance_id: Option<String>,
    pub(super) client_id: String,
    pub(super) client_host: String,
    pub(super) session_timeout_ms: i32,
    pub(super) rebalance_timeout_ms: i32,
    pub(super) protocols: Vec<(String, Bytes)>,
    pub(super) assignment: Bytes,
    pub(super) join_waiter: Option<oneshot::Sender<JoinResult>>,
    pub(super) sync_waiter: Option<oneshot::Sender<SyncResult>>,
    pub(super) session_deadline: Instant,
}

impl Member {
    pub(super) fn metadata_for(&self, protocol: &str) -> Bytes {
        self.protocols
            .iter()
            .find(|(n, _)| n == protocol)
            .map(|(_, m)| m.clone())
            .unwrap_or_default()
    }
    pub(super) fn refresh_session(&mut self, now: Instant) {
        self.session_deadline = now + ms(self.session_timeout_ms);
    }
}

pub(super) struct Group {
    pub(super) state: GroupState,
    pub(super) generation: i32,
    pub(super) protocol_type: Option<String>,
    pub(super) protocol: Option<String>,
    pub(super) leader: Option<String>,
    /// In join order: the first member is the leader unless the old leader rejoined.
    pub(super) members: Vec<Member>,
    /// Member ids handed out with MEMBER_ID_REQUIRED, waiting for the member to rejoin.
    pub(super) pending: HashMap<String, Instant>,
    pub(super) rebalance_deadline: Option<Instant>,
    /// The rebalance began from Empty with `group.initial.rebalance.delay.ms`: it completes
    /// only at the deadline, which each new member pushes back (capped at `rebalance_cap`).
    pub(super) initial_delay: bool,
    pub(super) rebalance_cap: Option<Instant>,
    pub(super) current_state_timestamp: i64,
    pub(super) offsets: BTreeMap<(String, i32), CommittedOffset>,
    /// Offsets being appended by OffsetCommit: not expired meanwhile (the tombstone could land
    /// after the new commit and undo it), and they keep an Empty group alive.
    pub(super) pending_commits: HashMap<(String, i32), u32>,
    /// The topics a "consumer" group's members subscribe to, as of the current generation
    /// (Kafka's `subscribedTopics`); None when unknown (not a consumer group, or metadata that
    /// does not parse), which OffsetDelete and expiry treat as "subscribed to everything".
    pub(super) subscribed_topics: Option<BTreeSet<String>>,
    /// Offsets committed inside a transaction (TxnOffsetCommit), per producer id: they take
    /// effect when the transaction's COMMIT marker reaches `__consumer_offsets`.
    pub(super) pending_txn_offsets: HashMap<i64, BTreeMap<(String, i32), CommittedOffset>>,
}

impl Group {
    pub(super) fn new() -> Self {
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
    pub(super) fn compute_subscribed_topics(&self) -> Option<BTreeSet<String>> {
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

    pub(super) fn is_subscribed_to(&self, topic: &str) -> bool {
        self.subscribed_topics
            .as_ref()
            .is_none_or(|t| t.contains(topic))
    }

    /// Kafka's `acceptJoiningMember`: may `member_id` join under `group.max.size`? Members
    /// already waiting in a rebalance stay; counting only those lets the last members to
    /// rejoin a group over its size (the size was lowered) be the ones turned away.
    pub(super) fn accepts_joining_member(&self, member_id: &str, max_size: usize) -> bool {
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
    pub(super) fn expired_offsets(&self, now: i64, retention_ms: i64) -> Vec<(String, i32)> {
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
    pub(super) fn remove_offsets(&mut self, id: &str, offsets: &[(String, i32)]) -> Vec<Record> {
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

    pub(super) fn member(&mut self, id: &str) -> Option<&mut Member> {
        self.members.iter_mut().find(|m| m.member_id == id)
    }

    pub(super) fn static_member_index(&self, instance: &str) -> Option<usize> {
        self.members
            .iter()
            .position(|m| m.group_instance_id.as_deref() == Some(instance))
    }

    /// Kafka's `isStaticMemberFenced`: the instance id belongs to another member id.
    pub(super) fn fenced(&self, member_id: &str, instance: Option<&str>) -> bool {
        instance
            .and_then(|i| self.static_member_index(i))
            .is_some_and(|idx| self.members[idx].member_id != member_id)
    }

    pub(super) fn set_state(&mut self, state: GroupState) {
        self.state = state;
        self.current_state_timestamp = now_ms();
    }

    /// Protocols every member supports, in the first member's order of preference.
    pub(super) fn candidate_protocols(&self) -> Vec<String> {
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
    pub(super) fn select_protocol(&self) -> Option<String> {
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

    pub(super) fn all_members_joined(&self) -> bool {
        self.pending.is_empty() && self.members.iter().all(|m| m.join_waiter.is_some())
    }

    pub(super) fn to_value(&self) -> GroupValue {
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

impl Group {
    /// Parked JoinGroup/SyncGroup requests are answered NOT_COORDINATOR: their clients look
    /// the coordinator up again and rejoin.
    pub(super) fn answer_all_not_coordinator(&mut self) {
        for m in &mut self.members {
            if let Some(w) = m.join_waiter.take() {
                let _ = w.send(JoinResult::error(GroupError::NotCoordinator, &m.member_id));
            }
            if let Some(w) = m.sync_waiter.take() {
                let _ = w.send(SyncResult::error(GroupError::NotCoordinator));
            }
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
