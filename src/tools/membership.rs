//! Consumer groups from the tools' side: a member of the classic protocol (JoinGroup and SyncGroup
//! with the range assignor, heartbeats, offset commits, LeaveGroup), as a Java consumer subscribed
//! to one topic behaves, and the embedded `consumer` protocol's subscription and assignment.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

use super::client::{Cluster, Result, ToolError, error_name};

const SESSION_TIMEOUT_MS: i32 = 10_000;
const REBALANCE_TIMEOUT_MS: i32 = 30_000;
/// A third of the session timeout, as the Java consumer's defaults are.
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(3);
/// Rounds of JoinGroup/SyncGroup before giving up (each is bounded by the rebalance timeout).
const JOIN_ATTEMPTS: usize = 20;

const NOT_COORDINATOR: i16 = 16;
const COORDINATOR_NOT_AVAILABLE: i16 = 15;
const COORDINATOR_LOAD_IN_PROGRESS: i16 = 14;
const ILLEGAL_GENERATION: i16 = 22;
const UNKNOWN_MEMBER_ID: i16 = 25;
const REBALANCE_IN_PROGRESS: i16 = 27;
const MEMBER_ID_REQUIRED: i16 = 79;

/// The `consumer` protocol's subscription metadata: a version, then the message.
pub fn encode_subscription(topics: &[String]) -> Result<Bytes> {
    let mut s = ConsumerProtocolSubscription::default();
    s.topics = topics
        .iter()
        .map(|t| StrBytes::from_string(t.clone()))
        .collect();
    encode_versioned(&s, 0)
}

pub fn encode_assignment(partitions: &BTreeMap<String, Vec<i32>>) -> Result<Bytes> {
    let mut a = ConsumerProtocolAssignment::default();
    for (topic, ps) in partitions {
        let mut tp = consumer_protocol_assignment::TopicPartition::default();
        tp.topic = TopicName(StrBytes::from_string(topic.clone()));
        tp.partitions = ps.clone();
        a.assigned_partitions.push(tp);
    }
    encode_versioned(&a, 0)
}

fn encode_versioned(m: &impl Encodable, version: i16) -> Result<Bytes> {
    let mut buf = BytesMut::new();
    buf.put_i16(version);
    m.encode(&mut buf, version)
        .map_err(|e| ToolError::Kafka(format!("encoding group metadata: {e}")))?;
    Ok(buf.freeze())
}

/// Decodes a versioned `consumer` protocol message; a version newer than ours only appends
/// fields, so it is read as the newest we know.
fn decode_versioned<T: Decodable>(bytes: &Bytes, max: i16) -> Option<T> {
    let mut buf = bytes.clone();
    if buf.remaining() < 2 {
        return None;
    }
    let version = buf.get_i16();
    if version < 0 {
        return None;
    }
    T::decode(&mut buf, version.min(max)).ok()
}

pub fn decode_subscription(bytes: &Bytes) -> Option<Vec<String>> {
    let s: ConsumerProtocolSubscription = decode_versioned(bytes, 3)?;
    Some(s.topics.iter().map(|t| t.to_string()).collect())
}

/// An assignment's partitions per topic; an empty one (a member between rebalances) has none.
pub fn decode_assignment(bytes: &Bytes) -> Option<BTreeMap<String, Vec<i32>>> {
    if bytes.is_empty() {
        return Some(BTreeMap::new());
    }
    let a: ConsumerProtocolAssignment = decode_versioned(bytes, 3)?;
    let mut out: BTreeMap<String, Vec<i32>> = BTreeMap::new();
    for tp in a.assigned_partitions {
        out.entry(tp.topic.0.to_string())
            .or_default()
            .extend(tp.partitions);
    }
    for ps in out.values_mut() {
        ps.sort_unstable();
    }
    Some(out)
}

/// Kafka's RangeAssignor: per topic, members (by id) subscribed to it get consecutive ranges,
/// the first `partitions % members` one partition more.
pub fn range_assign(
    subscriptions: &BTreeMap<String, Vec<String>>,
    partition_counts: &BTreeMap<String, i32>,
) -> BTreeMap<String, BTreeMap<String, Vec<i32>>> {
    let mut out: BTreeMap<String, BTreeMap<String, Vec<i32>>> = subscriptions
        .keys()
        .map(|m| (m.clone(), BTreeMap::new()))
        .collect();
    for (topic, &count) in partition_counts {
        let members: Vec<&String> = subscriptions
            .iter()
            .filter(|(_, topics)| topics.contains(topic))
            .map(|(m, _)| m)
            .collect();
        if members.is_empty() || count <= 0 {
            continue;
        }
        let n = members.len() as i32;
        let (per, extra) = (count / n, count % n);
        for (i, m) in members.into_iter().enumerate() {
            let i = i as i32;
            let start = per * i + i.min(extra);
            let len = per + i32::from(i < extra);
            if len > 0 {
                out.entry(m.clone())
                    .or_default()
                    .insert(topic.clone(), (start..start + len).collect());
            }
        }
    }
    out
}

/// Committed offsets of `group` (all its partitions when `topics` is `None`), from its
/// coordinator; partitions without a committed offset are left out.
pub async fn committed_offsets(
    cluster: &mut Cluster,
    coordinator: i32,
    group: &str,
    topics: Option<&[(String, Vec<i32>)]>,
) -> Result<BTreeMap<(String, i32), i64>> {
    let topics = topics.map(|ts| {
        ts.iter()
            .map(|(t, ps)| {
                let mut rt = offset_fetch_request::OffsetFetchRequestTopic::default();
                rt.name = TopicName(StrBytes::from_string(t.clone()));
                rt.partition_indexes = ps.clone();
                rt
            })
            .collect()
    });
    let r = cluster.offset_fetch(coordinator, group, topics).await?;
    if r.error_code != 0 {
        return Err(ToolError::Kafka(format!(
            "offsets of group {group}: {}",
            error_name(r.error_code)
        )));
    }
    let mut out = BTreeMap::new();
    for t in &r.topics {
        for p in &t.partitions {
            if p.error_code != 0 {
                return Err(ToolError::Kafka(format!(
                    "offset of group {group} for {}-{}: {}",
                    &*t.name,
                    p.partition_index,
                    error_name(p.error_code)
                )));
            }
            if p.committed_offset >= 0 {
                out.insert(
                    (t.name.0.to_string(), p.partition_index),
                    p.committed_offset,
                );
            }
        }
    }
    Ok(out)
}

/// One member of a group, subscribed to one topic.
pub struct Member {
    group: String,
    topic: String,
    member_id: String,
    generation: i32,
    coordinator: i32,
    last_heartbeat: Instant,
}

/// What a heartbeat or commit learnt about the group.
#[derive(Debug, PartialEq, Eq)]
pub enum GroupStatus {
    Ok,
    /// The group is rebalancing or has moved on: join again.
    Rejoin,
}

impl Member {
    pub async fn new(cluster: &mut Cluster, group: &str, topic: &str) -> Result<Member> {
        Ok(Member {
            group: group.to_string(),
            topic: topic.to_string(),
            member_id: String::new(),
            generation: -1,
            coordinator: cluster.coordinator(group).await?,
            last_heartbeat: Instant::now(),
        })
    }

    pub fn coordinator(&self) -> i32 {
        self.coordinator
    }

    /// Joins (or rejoins) the group and returns this member's partitions of the topic.
    pub async fn join(&mut self, cluster: &mut Cluster) -> Result<Vec<i32>> {
        let metadata = encode_subscription(std::slice::from_ref(&self.topic))?;
        for _ in 0..JOIN_ATTEMPTS {
            let mut req = JoinGroupRequest::default();
            req.group_id = GroupId(StrBytes::from_string(self.group.clone()));
            req.session_timeout_ms = SESSION_TIMEOUT_MS;
            req.rebalance_timeout_ms = REBALANCE_TIMEOUT_MS;
            req.member_id = StrBytes::from_string(self.member_id.clone());
            req.protocol_type = StrBytes::from_static_str("consumer");
            let mut protocol = join_group_request::JoinGroupRequestProtocol::default();
            protocol.name = StrBytes::from_static_str("range");
            protocol.metadata = metadata.clone();
            req.protocols.push(protocol);
            let ResponseKind::JoinGroup(r) = cluster
                .broker(self.coordinator)
                .await?
                .call_upto(ApiKey::JoinGroup, 7, RequestKind::JoinGroup(req))
                .await?
            else {
                return Err(ToolError::Kafka("unexpected response to JoinGroup".into()));
            };
            match r.error_code {
                0 => {}
                MEMBER_ID_REQUIRED => {
                    self.member_id = r.member_id.to_string();
                    continue;
                }
                UNKNOWN_MEMBER_ID => {
                    self.member_id.clear();
                    continue;
                }
                REBALANCE_IN_PROGRESS => continue,
                NOT_COORDINATOR | COORDINATOR_NOT_AVAILABLE | COORDINATOR_LOAD_IN_PROGRESS => {
                    self.coordinator = cluster.coordinator(&self.group).await?;
                    continue;
                }
                code => {
                    return Err(ToolError::Kafka(format!(
                        "joining group {}: {}",
                        self.group,
                        error_name(code)
                    )));
                }
            }
            self.member_id = r.member_id.to_string();
            self.generation = r.generation_id;
            let assignments = if *r.leader == *r.member_id {
                self.assign(cluster, &r.members).await?
            } else {
                Vec::new()
            };
            let mut sync = SyncGroupRequest::default();
            sync.group_id = GroupId(StrBytes::from_string(self.group.clone()));
            sync.generation_id = self.generation;
            sync.member_id = r.member_id.clone();
            sync.protocol_type = r.protocol_type.clone();
            sync.protocol_name = r.protocol_name.clone();
            sync.assignments = assignments;
            let ResponseKind::SyncGroup(s) = cluster
                .broker(self.coordinator)
                .await?
                .call_upto(ApiKey::SyncGroup, 5, RequestKind::SyncGroup(sync))
                .await?
            else {
                return Err(ToolError::Kafka("unexpected response to SyncGroup".into()));
            };
            match s.error_code {
                0 => {}
                REBALANCE_IN_PROGRESS | ILLEGAL_GENERATION => continue,
                UNKNOWN_MEMBER_ID => {
                    self.member_id.clear();
                    continue;
                }
                NOT_COORDINATOR | COORDINATOR_NOT_AVAILABLE | COORDINATOR_LOAD_IN_PROGRESS => {
                    self.coordinator = cluster.coordinator(&self.group).await?;
                    continue;
                }
                code => {
                    return Err(ToolError::Kafka(format!(
                        "syncing group {}: {}",
                        self.group,
                        error_name(code)
                    )));
                }
            }
            self.last_heartbeat = Instant::now();
            let assigned = decode_assignment(&s.assignment).ok_or_else(|| {
                ToolError::Kafka(format!("group {}: undecodable assignment", self.group))
            })?;
            return Ok(assigned.get(&self.topic).cloned().unwrap_or_default());
        }
        Err(ToolError::Kafka(format!(
            "group {} did not settle after {JOIN_ATTEMPTS} join attempts",
            self.group
        )))
    }

    /// The leader's job: range-assign every member's subscribed topics.
    async fn assign(
        &self,
        cluster: &mut Cluster,
        members: &[join_group_response::JoinGroupResponseMember],
    ) -> Result<Vec<sync_group_request::SyncGroupRequestAssignment>> {
        let mut subscriptions = BTreeMap::new();
        for m in members {
            let topics = decode_subscription(&m.metadata).ok_or_else(|| {
                ToolError::Kafka(format!(
                    "group {}: member {} sent an undecodable subscription",
                    self.group, &*m.member_id
                ))
            })?;
            subscriptions.insert(m.member_id.to_string(), topics);
        }
        let mut counts = BTreeMap::new();
        for topic in subscriptions.values().flatten() {
            if !counts.contains_key(topic) {
                let n = cluster
                    .partitions(topic, false)
                    .await
                    .map_or(0, |p| p.len());
                counts.insert(topic.clone(), n as i32);
            }
        }
        range_assign(&subscriptions, &counts)
            .into_iter()
            .map(|(member, partitions)| {
                let mut a = sync_group_request::SyncGroupRequestAssignment::default();
                a.member_id = StrBytes::from_string(member);
                a.assignment = encode_assignment(&partitions)?;
                Ok(a)
            })
            .collect()
    }

    pub fn heartbeat_due(&self) -> bool {
        self.last_heartbeat.elapsed() >= HEARTBEAT_INTERVAL
    }

    pub async fn heartbeat(&mut self, cluster: &mut Cluster) -> Result<GroupStatus> {
        let mut req = HeartbeatRequest::default();
        req.group_id = GroupId(StrBytes::from_string(self.group.clone()));
        req.generation_id = self.generation;
        req.member_id = StrBytes::from_string(self.member_id.clone());
        let ResponseKind::Heartbeat(r) = cluster
            .broker(self.coordinator)
            .await?
            .call(ApiKey::Heartbeat, RequestKind::Heartbeat(req))
            .await?
        else {
            return Err(ToolError::Kafka("unexpected response to Heartbeat".into()));
        };
        self.last_heartbeat = Instant::now();
        self.status(cluster, r.error_code, "heartbeat").await
    }

    async fn status(
        &mut self,
        cluster: &mut Cluster,
        code: i16,
        what: &str,
    ) -> Result<GroupStatus> {
        match code {
            0 => Ok(GroupStatus::Ok),
            REBALANCE_IN_PROGRESS | ILLEGAL_GENERATION => Ok(GroupStatus::Rejoin),
            UNKNOWN_MEMBER_ID => {
                self.member_id.clear();
                Ok(GroupStatus::Rejoin)
            }
            NOT_COORDINATOR | COORDINATOR_NOT_AVAILABLE | COORDINATOR_LOAD_IN_PROGRESS => {
                self.coordinator = cluster.coordinator(&self.group).await?;
                Ok(GroupStatus::Rejoin)
            }
            code => Err(ToolError::Kafka(format!(
                "{what} in group {}: {}",
                self.group,
                error_name(code)
            ))),
        }
    }

    /// Commits `positions` (the next offset to read, per partition of the topic).
    pub async fn commit(
        &mut self,
        cluster: &mut Cluster,
        positions: &BTreeMap<i32, i64>,
    ) -> Result<GroupStatus> {
        if positions.is_empty() {
            return Ok(GroupStatus::Ok);
        }
        let mut t = offset_commit_request::OffsetCommitRequestTopic::default();
        t.name = TopicName(StrBytes::from_string(self.topic.clone()));
        for (&partition, &offset) in positions {
            let mut p = offset_commit_request::OffsetCommitRequestPartition::default();
            p.partition_index = partition;
            p.committed_offset = offset;
            p.committed_leader_epoch = -1;
            p.commit_timestamp = -1;
            p.committed_metadata = Some(StrBytes::from_static_str(""));
            t.partitions.push(p);
        }
        let mut req = OffsetCommitRequest::default();
        req.group_id = GroupId(StrBytes::from_string(self.group.clone()));
        req.generation_id_or_member_epoch = self.generation;
        req.member_id = StrBytes::from_string(self.member_id.clone());
        req.retention_time_ms = -1;
        req.topics.push(t);
        // v9 is for the new consumer protocol's member epochs.
        let ResponseKind::OffsetCommit(r) = cluster
            .broker(self.coordinator)
            .await?
            .call_upto(ApiKey::OffsetCommit, 8, RequestKind::OffsetCommit(req))
            .await?
        else {
            return Err(ToolError::Kafka(
                "unexpected response to OffsetCommit".into(),
            ));
        };
        let code = r
            .topics
            .iter()
            .flat_map(|t| &t.partitions)
            .map(|p| p.error_code)
            .find(|&c| c != 0)
            .unwrap_or(0);
        self.status(cluster, code, "commit").await
    }

    /// Leaves the group so the others get its partitions at once, not after the session timeout.
    pub async fn leave(&mut self, cluster: &mut Cluster) -> Result<()> {
        if self.member_id.is_empty() {
            return Ok(());
        }
        let mut req = LeaveGroupRequest::default();
        req.group_id = GroupId(StrBytes::from_string(self.group.clone()));
        req.member_id = StrBytes::from_string(self.member_id.clone());
        let mut identity = leave_group_request::MemberIdentity::default();
        identity.member_id = StrBytes::from_string(self.member_id.clone());
        req.members.push(identity);
        let conn = cluster.broker(self.coordinator).await?;
        let version = conn.version(ApiKey::LeaveGroup)?;
        // v3 names members in a list, earlier versions in `member_id`.
        if version >= 3 {
            req.member_id = StrBytes::default();
        } else {
            req.members.clear();
        }
        let ResponseKind::LeaveGroup(r) = conn
            .call(ApiKey::LeaveGroup, RequestKind::LeaveGroup(req))
            .await?
        else {
            return Err(ToolError::Kafka("unexpected response to LeaveGroup".into()));
        };
        let code = if r.error_code != 0 {
            r.error_code
        } else {
            r.members.first().map_or(0, |m| m.error_code)
        };
        match code {
            0 | UNKNOWN_MEMBER_ID => Ok(()),
            code => Err(ToolError::Kafka(format!(
                "leaving group {}: {}",
                self.group,
                error_name(code)
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_assignment_gives_the_first_members_the_remainder() {
        let subs: BTreeMap<String, Vec<String>> = [
            ("b".to_string(), vec!["t".to_string()]),
            ("a".to_string(), vec!["t".to_string(), "u".to_string()]),
            ("c".to_string(), vec!["t".to_string()]),
        ]
        .into();
        let counts: BTreeMap<String, i32> = [("t".to_string(), 7), ("u".to_string(), 2)].into();
        let got = range_assign(&subs, &counts);
        assert_eq!(got["a"]["t"], vec![0, 1, 2]);
        assert_eq!(got["b"]["t"], vec![3, 4]);
        assert_eq!(got["c"]["t"], vec![5, 6]);
        assert_eq!(got["a"]["u"], vec![0, 1]);
        assert!(!got["b"].contains_key("u"));
    }

    #[test]
    fn subscription_and_assignment_round_trip() {
        let sub = encode_subscription(&["t".to_string()]).unwrap();
        assert_eq!(decode_subscription(&sub).unwrap(), vec!["t".to_string()]);
        let a: BTreeMap<String, Vec<i32>> = [("t".to_string(), vec![2, 0])].into();
        let bytes = encode_assignment(&a).unwrap();
        assert_eq!(decode_assignment(&bytes).unwrap()["t"], vec![0, 2]);
        assert_eq!(decode_assignment(&Bytes::new()).unwrap().len(), 0);
        assert!(decode_subscription(&Bytes::from_static(&[0])).is_none());
    }
}
