//! Consumer groups over the wire against an in-process broker: the classic rebalance protocol,
//! static membership, committed offsets (and their survival across a restart), DeleteGroups,
//! and every advertised version of the group APIs.

use crate::common;

use std::time::Duration;

use bytes::Bytes;
use common::wire::{Conn, s};
use kafka_protocol::messages::*;
use odradek::config::BrokerConfig;
use odradek::server::Broker;

const NONE: i16 = 0;
const COORDINATOR_NOT_AVAILABLE: i16 = 15;
const ILLEGAL_GENERATION: i16 = 22;
const UNKNOWN_MEMBER_ID: i16 = 25;
const REBALANCE_IN_PROGRESS: i16 = 27;
const MEMBER_ID_REQUIRED: i16 = 79;
const TOPIC_ALREADY_EXISTS: i16 = 36;
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;

async fn start(dir: &std::path::Path, extra: &[&str]) -> Broker {
    let mut overrides = vec![
        "listeners=PLAINTEXT://127.0.0.1:0".to_string(),
        format!("log.dirs={}", dir.display()),
        "broker.id=0".to_string(),
        "offsets.topic.replication.factor=1".to_string(),
        "offsets.topic.num.partitions=5".to_string(),
        "group.initial.rebalance.delay.ms=0".to_string(),
        // Several brokers run at once in this test binary: each takes a free metrics port.
        "metrics.port=0".to_string(),
    ];
    overrides.extend(extra.iter().map(|s| s.to_string()));
    let config = BrokerConfig::load(None, &overrides).unwrap();
    let broker = Broker::start(config).await.unwrap();
    // The topics the tests commit offsets to: Kafka answers a commit to a topic it does not
    // have with UNKNOWN_TOPIC_OR_PARTITION. Already there after a restart.
    let mut c = Conn::connect(broker.port).await;
    for (topic, partitions) in [("t", 3), ("x", 1), ("y", 1)] {
        let code = common::wire::create_topic(&mut c, topic, partitions).await;
        assert!(
            code == NONE || code == TOPIC_ALREADY_EXISTS,
            "{topic}: {code}"
        );
    }
    // The tests start from loaded coordinators.
    common::wire::wait_for_group_coordinator(&mut c).await;
    broker
}

fn gid(v: &str) -> GroupId {
    GroupId(s(v))
}

struct Joined {
    error: i16,
    generation: i32,
    member_id: String,
    leader: String,
    members: usize,
    protocol: Option<String>,
}

async fn join(c: &mut Conn, version: i16, group: &str, member_id: &str) -> Joined {
    let mut r = JoinGroupRequest::default();
    r.group_id = gid(group);
    r.session_timeout_ms = 10_000;
    if version >= 1 {
        r.rebalance_timeout_ms = 5_000;
    }
    r.member_id = s(member_id);
    r.protocol_type = s("consumer");
    let mut p = join_group_request::JoinGroupRequestProtocol::default();
    p.name = s("range");
    p.metadata = Bytes::from_static(b"sub");
    r.protocols.push(p);
    let resp = c.send(version, r).await;
    Joined {
        error: resp.error_code,
        generation: resp.generation_id,
        member_id: resp.member_id.to_string(),
        leader: resp.leader.to_string(),
        members: resp.members.len(),
        protocol: resp.protocol_name.map(|p| p.to_string()),
    }
}

/// JoinGroup v4+ as a real client does it: empty id, MEMBER_ID_REQUIRED, rejoin with the id.
async fn join_new(c: &mut Conn, version: i16, group: &str) -> Joined {
    let first = join(c, version, group, "").await;
    assert_eq!(first.error, MEMBER_ID_REQUIRED);
    assert!(first.member_id.starts_with("odradek-test-"));
    join(c, version, group, &first.member_id).await
}

async fn sync(
    c: &mut Conn,
    version: i16,
    group: &str,
    generation: i32,
    member: &str,
    assignments: &[(&str, &'static [u8])],
) -> (i16, Bytes) {
    let mut r = SyncGroupRequest::default();
    r.group_id = gid(group);
    r.generation_id = generation;
    r.member_id = s(member);
    for (m, a) in assignments {
        let mut x = sync_group_request::SyncGroupRequestAssignment::default();
        x.member_id = s(m);
        x.assignment = Bytes::from_static(a);
        r.assignments.push(x);
    }
    if version >= 5 {
        r.protocol_type = Some(s("consumer"));
        r.protocol_name = Some(s("range"));
    }
    let resp = c.send(version, r).await;
    (resp.error_code, resp.assignment)
}

async fn heartbeat(c: &mut Conn, version: i16, group: &str, generation: i32, member: &str) -> i16 {
    let mut r = HeartbeatRequest::default();
    r.group_id = gid(group);
    r.generation_id = generation;
    r.member_id = s(member);
    c.send(version, r).await.error_code
}

async fn leave(c: &mut Conn, version: i16, group: &str, member: &str) -> (i16, Vec<i16>) {
    let mut r = LeaveGroupRequest::default();
    r.group_id = gid(group);
    if version < 3 {
        r.member_id = s(member);
    } else {
        let mut m = leave_group_request::MemberIdentity::default();
        m.member_id = s(member);
        r.members.push(m);
    }
    let resp = c.send(version, r).await;
    (
        resp.error_code,
        resp.members.iter().map(|m| m.error_code).collect(),
    )
}

async fn commit(
    c: &mut Conn,
    version: i16,
    group: &str,
    generation: i32,
    member: &str,
    topic: &str,
    offsets: &[(i32, i64, &str)],
) -> Vec<i16> {
    let mut r = OffsetCommitRequest::default();
    r.group_id = gid(group);
    if version >= 1 {
        r.generation_id_or_member_epoch = generation;
        r.member_id = s(member);
    }
    let mut t = offset_commit_request::OffsetCommitRequestTopic::default();
    t.name = TopicName(s(topic));
    for (p, o, m) in offsets {
        let mut x = offset_commit_request::OffsetCommitRequestPartition::default();
        x.partition_index = *p;
        x.committed_offset = *o;
        x.committed_metadata = Some(s(m));
        t.partitions.push(x);
    }
    r.topics.push(t);
    c.send(version, r).await.topics[0]
        .partitions
        .iter()
        .map(|p| p.error_code)
        .collect()
}

/// (topic, partition, offset, metadata) for the group; `partitions` None asks for all.
async fn fetch_offsets(
    c: &mut Conn,
    version: i16,
    group: &str,
    topic: &str,
    partitions: Option<&[i32]>,
) -> Vec<(String, i32, i64, String)> {
    let mut r = OffsetFetchRequest::default();
    let mut out = Vec::new();
    if version >= 8 {
        let mut g = offset_fetch_request::OffsetFetchRequestGroup::default();
        g.group_id = gid(group);
        g.topics = partitions.map(|ps| {
            let mut t = offset_fetch_request::OffsetFetchRequestTopics::default();
            t.name = TopicName(s(topic));
            t.partition_indexes = ps.to_vec();
            vec![t]
        });
        r.groups.push(g);
        for t in &c.send(version, r).await.groups[0].topics {
            for p in &t.partitions {
                out.push((
                    t.name.0.to_string(),
                    p.partition_index,
                    p.committed_offset,
                    p.metadata
                        .as_ref()
                        .map(|m| m.to_string())
                        .unwrap_or_default(),
                ));
            }
        }
        return out;
    }
    r.group_id = gid(group);
    r.topics = partitions.map(|ps| {
        let mut t = offset_fetch_request::OffsetFetchRequestTopic::default();
        t.name = TopicName(s(topic));
        t.partition_indexes = ps.to_vec();
        vec![t]
    });
    for t in &c.send(version, r).await.topics {
        for p in &t.partitions {
            out.push((
                t.name.0.to_string(),
                p.partition_index,
                p.committed_offset,
                p.metadata
                    .as_ref()
                    .map(|m| m.to_string())
                    .unwrap_or_default(),
            ));
        }
    }
    out
}

async fn describe(c: &mut Conn, version: i16, group: &str) -> (String, usize) {
    let mut r = DescribeGroupsRequest::default();
    r.groups.push(gid(group));
    let resp = c.send(version, r).await;
    (
        resp.groups[0].group_state.to_string(),
        resp.groups[0].members.len(),
    )
}

/// Waits (bounded) until DescribeGroups shows `group` with `members` members: how a test knows
/// that a JoinGroup sent on another connection has reached the coordinator and is held there.
async fn wait_for_members(port: u16, group: &str, members: usize) {
    let mut c = Conn::connect(port).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let seen = describe(&mut c, 5, group).await;
        if seen.1 == members {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{group} never had {members} members: {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn find_coordinator_every_version() {
    let tmp = tempfile::tempdir().unwrap();
    let broker = start(tmp.path(), &[]).await;
    let mut c = Conn::connect(broker.port).await;
    for version in 0..=3 {
        let mut r = FindCoordinatorRequest::default();
        r.key = s("g");
        let resp = c.send(version, r).await;
        assert_eq!(resp.error_code, NONE, "v{version}");
        assert_eq!(resp.node_id, BrokerId(0));
        assert_eq!(resp.port, broker.port as i32);
    }
    let mut r = FindCoordinatorRequest::default();
    r.key_type = 0;
    r.coordinator_keys = vec![s("a"), s("b")];
    {
        let resp = c.send(4, r).await;
        assert_eq!(resp.coordinators.len(), 2);
        for co in &resp.coordinators {
            assert_eq!(
                (co.error_code, co.node_id, co.port),
                (NONE, BrokerId(0), broker.port as i32)
            );
        }
    }
    let mut r = FindCoordinatorRequest::default();
    r.key_type = 1;
    r.coordinator_keys = vec![s("txn")];
    assert_eq!(
        c.send(4, r).await.coordinators[0].error_code,
        COORDINATOR_NOT_AVAILABLE
    );
    broker.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rebalance_sync_heartbeat_leave_commit_and_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let broker = start(tmp.path(), &[]).await;
    let port = broker.port;
    let g = "wire-group";
    let mut a = Conn::connect(port).await;

    // One member: generation 1, it leads, its own assignment comes back.
    let ja = join_new(&mut a, 9, g).await;
    assert_eq!((ja.error, ja.generation, ja.members), (NONE, 1, 1));
    assert_eq!(ja.leader, ja.member_id);
    assert_eq!(ja.protocol.as_deref(), Some("range"));
    let (e, asg) = sync(&mut a, 5, g, 1, &ja.member_id, &[(&ja.member_id, b"all")]).await;
    assert_eq!((e, &asg[..]), (NONE, &b"all"[..]));
    assert_eq!(heartbeat(&mut a, 4, g, 1, &ja.member_id).await, NONE);

    // A second member joins: its JoinGroup waits until the first rejoins.
    let b_join = tokio::spawn(async move {
        let mut b = Conn::connect(port).await;
        let jb = join_new(&mut b, 5, "wire-group").await;
        (b, jb)
    });
    let mut hb = NONE;
    for _ in 0..500 {
        hb = heartbeat(&mut a, 4, g, 1, &ja.member_id).await;
        if hb == REBALANCE_IN_PROGRESS {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(hb, REBALANCE_IN_PROGRESS);
    let ja2 = join(&mut a, 9, g, &ja.member_id).await;
    let (mut b, jb) = b_join.await.unwrap();
    assert_eq!((ja2.error, ja2.generation, ja2.members), (NONE, 2, 2));
    assert_eq!((jb.error, jb.generation, jb.members), (NONE, 2, 0));
    assert_eq!(jb.leader, ja.member_id, "the first member keeps leading");

    // The follower's SyncGroup waits for the leader's assignment.
    let b_id = jb.member_id.clone();
    let b_sync = tokio::spawn(async move {
        let r = sync(&mut b, 3, "wire-group", 2, &b_id, &[]).await;
        (b, r)
    });
    // A held SyncGroup changes nothing DescribeGroups shows (the group awaits the leader's
    // either way), so a fixed wait lets the follower's arrive first.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (e, asg) = sync(
        &mut a,
        5,
        g,
        2,
        &ja.member_id,
        &[(&ja.member_id, b"p0"), (&jb.member_id, b"p1")],
    )
    .await;
    assert_eq!((e, &asg[..]), (NONE, &b"p0"[..]));
    let (mut b, (e, asg)) = b_sync.await.unwrap();
    assert_eq!((e, &asg[..]), (NONE, &b"p1"[..]));
    assert_eq!(describe(&mut a, 5, g).await, ("Stable".to_string(), 2));

    assert_eq!(
        heartbeat(&mut a, 0, g, 1, &ja.member_id).await,
        ILLEGAL_GENERATION
    );
    assert_eq!(
        heartbeat(&mut a, 2, g, 2, "nobody").await,
        UNKNOWN_MEMBER_ID
    );
    assert_eq!(heartbeat(&mut b, 4, g, 2, &jb.member_id).await, NONE);

    // Commits: members of the current generation only.
    assert_eq!(
        commit(
            &mut a,
            8,
            g,
            2,
            &ja.member_id,
            "t",
            &[(0, 10, ""), (1, 20, "meta")]
        )
        .await,
        vec![NONE, NONE]
    );
    assert_eq!(
        commit(&mut b, 2, g, 1, &jb.member_id, "t", &[(0, 11, "")]).await,
        vec![ILLEGAL_GENERATION]
    );
    assert_eq!(
        commit(&mut b, 5, g, 2, "nobody", "t", &[(0, 11, "")]).await,
        vec![UNKNOWN_MEMBER_ID]
    );
    let want = vec![
        ("t".to_string(), 0, 10, String::new()),
        ("t".to_string(), 1, 20, "meta".to_string()),
    ];
    assert_eq!(fetch_offsets(&mut a, 8, g, "t", None).await, want);
    assert_eq!(fetch_offsets(&mut a, 6, g, "t", Some(&[0, 1])).await, want);
    assert_eq!(
        fetch_offsets(&mut a, 1, g, "t", Some(&[2])).await,
        vec![("t".to_string(), 2, -1, String::new())]
    );

    // B leaves (v3 batch): A is told to rejoin and then rules alone.
    assert_eq!(leave(&mut b, 3, g, &jb.member_id).await, (NONE, vec![NONE]));
    assert_eq!(
        heartbeat(&mut a, 4, g, 2, &ja.member_id).await,
        REBALANCE_IN_PROGRESS
    );
    let ja3 = join(&mut a, 9, g, &ja.member_id).await;
    assert_eq!((ja3.error, ja3.generation, ja3.members), (NONE, 3, 1));
    assert_eq!(
        leave(&mut a, 5, g, "nobody").await,
        (NONE, vec![UNKNOWN_MEMBER_ID])
    );
    assert_eq!(leave(&mut a, 0, g, &ja.member_id).await.0, NONE);
    assert_eq!(describe(&mut a, 0, g).await, ("Empty".to_string(), 0));
    // Empty: a standalone commit (generation -1) is allowed, as in Kafka.
    assert_eq!(
        commit(&mut a, 0, g, -1, "", "t", &[(2, 30, "simple")]).await,
        vec![NONE]
    );
    drop((a, b));
    broker.shutdown().await.unwrap();

    // Committed offsets come back from __consumer_offsets.
    let broker = start(tmp.path(), &[]).await;
    let mut c = Conn::connect(broker.port).await;
    let mut want = want;
    want.push(("t".to_string(), 2, 30, "simple".to_string()));
    assert_eq!(fetch_offsets(&mut c, 9, g, "t", None).await, want);
    assert_eq!(describe(&mut c, 3, g).await, ("Empty".to_string(), 0));
    broker.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn silent_member_expires_after_its_session() {
    let tmp = tempfile::tempdir().unwrap();
    let broker = start(tmp.path(), &["group.min.session.timeout.ms=100"]).await;
    let mut c = Conn::connect(broker.port).await;
    let g = "expiring";
    // A session long enough that a loaded test machine answers JoinGroup and SyncGroup in time.
    let j = join_with_timeouts(&mut c, g, "", 1_000, 1_000).await;
    assert_eq!(j.error, NONE);
    assert_eq!(
        sync(&mut c, 0, g, j.generation, &j.member_id, &[]).await.0,
        NONE
    );
    let last_seen = std::time::Instant::now();
    assert_eq!(describe(&mut c, 1, g).await, ("Stable".to_string(), 1));
    // No heartbeats: the timer task removes the member once its session has run out.
    let deadline = last_seen + Duration::from_secs(10);
    while describe(&mut c, 1, g).await.0 != "Empty" {
        assert!(std::time::Instant::now() < deadline, "member never expired");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(last_seen.elapsed() >= Duration::from_millis(900));
    assert_eq!(
        heartbeat(&mut c, 1, g, j.generation, &j.member_id).await,
        UNKNOWN_MEMBER_ID
    );
    broker.shutdown().await.unwrap();
}

/// Every advertised version of every group API encodes and decodes (fields a version lacks
/// must keep their defaults, or the broker could not encode its answer).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_version_answers() {
    let tmp = tempfile::tempdir().unwrap();
    let broker = start(tmp.path(), &[]).await;
    let mut c = Conn::connect(broker.port).await;
    for version in 0..=9 {
        let g = format!("v{version}");
        let j = if version >= 4 {
            join_new(&mut c, version, &g).await
        } else {
            join(&mut c, version, &g, "").await
        };
        assert_eq!((j.error, j.generation), (NONE, 1), "JoinGroup v{version}");
        let sv = version.min(5);
        assert_eq!(
            sync(&mut c, sv, &g, 1, &j.member_id, &[(&j.member_id, b"x")]).await,
            (NONE, Bytes::from_static(b"x")),
            "SyncGroup v{sv}"
        );
        let hv = version.min(4);
        assert_eq!(
            heartbeat(&mut c, hv, &g, 1, &j.member_id).await,
            NONE,
            "Heartbeat v{hv}"
        );
        let (cgen, cmember) = if version == 0 {
            (-1, "")
        } else {
            (1, j.member_id.as_str())
        };
        if version > 0 {
            assert_eq!(
                commit(&mut c, version, &g, cgen, cmember, "t", &[(0, 5, "m")]).await,
                vec![NONE],
                "OffsetCommit v{version}"
            );
            assert_eq!(
                fetch_offsets(&mut c, version, &g, "t", Some(&[0])).await,
                vec![("t".to_string(), 0, 5, "m".to_string())],
                "OffsetFetch v{version}"
            );
        }
        let dv = version.min(5);
        assert_eq!(
            describe(&mut c, dv, &g).await,
            ("Stable".to_string(), 1),
            "DescribeGroups v{dv}"
        );
        let lv = version.min(5);
        assert_eq!(
            leave(&mut c, lv, &g, &j.member_id).await.0,
            NONE,
            "LeaveGroup v{lv}"
        );
        if version == 0 {
            // Empty now, so a v0 (generation-less) commit is allowed.
            assert_eq!(
                commit(&mut c, 0, &g, -1, "", "t", &[(0, 5, "m")]).await,
                vec![NONE]
            );
            assert_eq!(
                fetch_offsets(&mut c, 0, &g, "t", Some(&[0])).await,
                vec![("t".to_string(), 0, 5, "m".to_string())]
            );
        }
    }
    for version in 0..=5 {
        let resp = c.send(version, ListGroupsRequest::default()).await;
        assert_eq!(resp.error_code, NONE);
        assert!(resp.groups.iter().any(|g| g.group_id.0.as_str() == "v3"));
    }
    assert_eq!(
        describe(&mut c, 5, "unknown").await,
        ("Dead".to_string(), 0)
    );
    broker.shutdown().await.unwrap();
}

async fn join_with_timeouts(
    c: &mut Conn,
    group: &str,
    member_id: &str,
    session_ms: i32,
    rebalance_ms: i32,
) -> Joined {
    let mut r = JoinGroupRequest::default();
    r.group_id = gid(group);
    r.session_timeout_ms = session_ms;
    r.rebalance_timeout_ms = rebalance_ms;
    r.member_id = s(member_id);
    r.protocol_type = s("consumer");
    let mut p = join_group_request::JoinGroupRequestProtocol::default();
    p.name = s("range");
    r.protocols.push(p);
    // v3: members are added at once (no MEMBER_ID_REQUIRED round).
    let resp = c.send(3, r).await;
    Joined {
        error: resp.error_code,
        generation: resp.generation_id,
        member_id: resp.member_id.to_string(),
        leader: resp.leader.to_string(),
        members: resp.members.len(),
        protocol: resp.protocol_name.map(|p| p.to_string()),
    }
}

/// `group.initial.rebalance.delay.ms`: members joining an empty group within the delay end up
/// in the same first generation.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn initial_rebalance_delay_gathers_members() {
    let tmp = tempfile::tempdir().unwrap();
    let broker = start(tmp.path(), &["group.initial.rebalance.delay.ms=1000"]).await;
    let port = broker.port;
    // As clients do, find the coordinator first: that creates `__consumer_offsets`, so both
    // joins below reach the group in the order they are sent.
    let mut r = FindCoordinatorRequest::default();
    r.key = s("delayed");
    let mut c = Conn::connect(port).await;
    assert_eq!(c.send(1, r).await.error_code, NONE);
    let first = tokio::spawn(async move {
        let mut a = Conn::connect(port).await;
        join_with_timeouts(&mut a, "delayed", "", 10_000, 5_000).await
    });
    wait_for_members(port, "delayed", 1).await;
    let mut b = Conn::connect(port).await;
    let jb = join_with_timeouts(&mut b, "delayed", "", 10_000, 5_000).await;
    let ja = first.await.unwrap();
    assert_eq!((ja.error, ja.generation, ja.members), (NONE, 1, 2));
    assert_eq!((jb.error, jb.generation, jb.members), (NONE, 1, 0));
    assert_eq!(jb.leader, ja.member_id);
    broker.shutdown().await.unwrap();
}

/// A member that does not rejoin within the rebalance timeout is dropped from the group and
/// the rebalance completes without it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rebalance_timeout_drops_members_that_do_not_rejoin() {
    let tmp = tempfile::tempdir().unwrap();
    let broker = start(tmp.path(), &[]).await;
    let mut a = Conn::connect(broker.port).await;
    let ja = join_with_timeouts(&mut a, "slow", "", 10_000, 400).await;
    assert_eq!((ja.error, ja.generation), (NONE, 1));
    assert_eq!(sync(&mut a, 0, "slow", 1, &ja.member_id, &[]).await.0, NONE);
    let mut b = Conn::connect(broker.port).await;
    let started = std::time::Instant::now();
    let jb = join_with_timeouts(&mut b, "slow", "", 10_000, 400).await;
    assert_eq!((jb.error, jb.generation, jb.members), (NONE, 2, 1));
    assert_eq!(jb.leader, jb.member_id, "the silent leader was dropped");
    assert!(started.elapsed() >= Duration::from_millis(350));
    assert_eq!(
        heartbeat(&mut a, 0, "slow", 1, &ja.member_id).await,
        UNKNOWN_MEMBER_ID
    );
    broker.shutdown().await.unwrap();
}

/// Static membership (KIP-345): a member that comes back with the same `group.instance.id`
/// takes its old place without a rebalance, and its old member id is fenced.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn static_member_rejoins_without_rebalance() {
    const FENCED_INSTANCE_ID: i16 = 82;
    let tmp = tempfile::tempdir().unwrap();
    let broker = start(tmp.path(), &[]).await;
    let mut c = Conn::connect(broker.port).await;
    let g = "static";
    let static_join = |member: &str| {
        let mut r = JoinGroupRequest::default();
        r.group_id = gid(g);
        r.session_timeout_ms = 10_000;
        r.rebalance_timeout_ms = 5_000;
        r.member_id = s(member);
        r.group_instance_id = Some(s("instance-a"));
        r.protocol_type = s("consumer");
        let mut p = join_group_request::JoinGroupRequestProtocol::default();
        p.name = s("range");
        r.protocols.push(p);
        RequestKind::JoinGroup(r)
    };
    let first = match c.call(ApiKey::JoinGroup, 7, static_join("")).await {
        ResponseKind::JoinGroup(r) => r,
        other => panic!("{other:?}"),
    };
    assert_eq!((first.error_code, first.generation_id), (NONE, 1));
    let old_id = first.member_id.to_string();
    assert!(old_id.starts_with("instance-a-"));
    assert_eq!(
        sync(&mut c, 3, g, 1, &old_id, &[(&old_id, b"mine")])
            .await
            .0,
        NONE
    );

    // The same instance restarts: a new member id, the same generation, the same assignment.
    let again = match c.call(ApiKey::JoinGroup, 7, static_join("")).await {
        ResponseKind::JoinGroup(r) => r,
        other => panic!("{other:?}"),
    };
    let new_id = again.member_id.to_string();
    assert_eq!((again.error_code, again.generation_id), (NONE, 1));
    assert_ne!(new_id, old_id);
    assert_eq!(again.leader.to_string(), new_id);
    let mut hb = HeartbeatRequest::default();
    hb.group_id = gid(g);
    hb.generation_id = 1;
    hb.member_id = s(&old_id);
    hb.group_instance_id = Some(s("instance-a"));
    assert_eq!(c.send(3, hb).await.error_code, FENCED_INSTANCE_ID);
    assert_eq!(
        sync(&mut c, 3, g, 1, &new_id, &[]).await,
        (NONE, Bytes::from_static(b"mine"))
    );
    assert_eq!(describe(&mut c, 4, g).await, ("Stable".to_string(), 1));

    // LeaveGroup v3+ may name the member by instance id alone.
    let mut r = LeaveGroupRequest::default();
    r.group_id = gid(g);
    let mut m = leave_group_request::MemberIdentity::default();
    m.group_instance_id = Some(s("instance-a"));
    r.members.push(m);
    {
        let r = c.send(4, r).await;
        assert_eq!((r.error_code, r.members[0].error_code), (NONE, NONE));
    }
    assert_eq!(describe(&mut c, 4, g).await, ("Empty".to_string(), 0));
    broker.shutdown().await.unwrap();
}

async fn delete_group(c: &mut Conn, version: i16, group: &str) -> i16 {
    let mut r = DeleteGroupsRequest::default();
    r.groups_names.push(gid(group));
    c.send(version, r).await.results[0].error_code
}

/// DeleteGroups: only Empty groups go, and their offsets stay gone after a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn delete_groups_tombstones_offsets() {
    const NON_EMPTY_GROUP: i16 = 68;
    const GROUP_ID_NOT_FOUND: i16 = 69;
    let tmp = tempfile::tempdir().unwrap();
    let broker = start(tmp.path(), &[]).await;
    let mut c = Conn::connect(broker.port).await;
    assert_eq!(
        commit(&mut c, 2, "doomed", -1, "", "t", &[(0, 7, "")]).await,
        vec![NONE]
    );
    assert_eq!(
        commit(&mut c, 2, "kept", -1, "", "t", &[(0, 8, "")]).await,
        vec![NONE]
    );
    let j = join(&mut c, 3, "busy", "").await;
    assert_eq!(j.error, NONE);
    assert_eq!(delete_group(&mut c, 2, "busy").await, NON_EMPTY_GROUP);
    assert_eq!(delete_group(&mut c, 0, "nope").await, GROUP_ID_NOT_FOUND);
    assert_eq!(delete_group(&mut c, 1, "doomed").await, NONE);
    assert_eq!(describe(&mut c, 5, "doomed").await, ("Dead".to_string(), 0));
    assert!(
        fetch_offsets(&mut c, 8, "doomed", "t", None)
            .await
            .is_empty()
    );
    broker.shutdown().await.unwrap();

    let broker = start(tmp.path(), &[]).await;
    let mut c = Conn::connect(broker.port).await;
    assert!(
        fetch_offsets(&mut c, 8, "doomed", "t", None)
            .await
            .is_empty()
    );
    assert_eq!(
        fetch_offsets(&mut c, 8, "kept", "t", None).await,
        vec![("t".to_string(), 0, 8, String::new())]
    );
    broker.shutdown().await.unwrap();
}

/// A JoinGroup parked at shutdown is answered (NOT_COORDINATOR) rather than holding the
/// connection drain until its rebalance timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn shutdown_answers_parked_joins() {
    const NOT_COORDINATOR: i16 = 16;
    let tmp = tempfile::tempdir().unwrap();
    let broker = start(tmp.path(), &[]).await;
    let port = broker.port;
    let mut a = Conn::connect(port).await;
    let ja = join_with_timeouts(&mut a, "parked", "", 10_000, 60_000).await;
    assert_eq!(
        sync(&mut a, 0, "parked", 1, &ja.member_id, &[]).await.0,
        NONE
    );
    // B's join waits for A, which never rejoins (rebalance timeout 60 s).
    let b = tokio::spawn(async move {
        let mut b = Conn::connect(port).await;
        join_with_timeouts(&mut b, "parked", "", 10_000, 60_000).await
    });
    wait_for_members(port, "parked", 2).await;
    let started = std::time::Instant::now();
    broker.shutdown().await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(b.await.unwrap().error, NOT_COORDINATOR);
}

const COORDINATOR_LOAD_IN_PROGRESS: i16 = 14;
const NOT_COORDINATOR: i16 = 16;
const GROUP_MAX_SIZE_REACHED: i16 = 81;

/// The consumer protocol's subscription (version 0) for `topics`, as JoinGroup metadata.
fn subscription(topics: &[&str]) -> Bytes {
    let mut b = vec![0u8, 0];
    b.extend_from_slice(&(topics.len() as i32).to_be_bytes());
    for t in topics {
        b.extend_from_slice(&(t.len() as i16).to_be_bytes());
        b.extend_from_slice(t.as_bytes());
    }
    b.extend_from_slice(&(-1i32).to_be_bytes());
    Bytes::from(b)
}

/// JoinGroup v3 (no MEMBER_ID_REQUIRED round) with the given protocol type and metadata.
async fn join_as(
    c: &mut Conn,
    group: &str,
    member_id: &str,
    protocol_type: &str,
    metadata: Bytes,
) -> Joined {
    let mut r = JoinGroupRequest::default();
    r.group_id = gid(group);
    r.session_timeout_ms = 10_000;
    r.rebalance_timeout_ms = 5_000;
    r.member_id = s(member_id);
    r.protocol_type = s(protocol_type);
    let mut p = join_group_request::JoinGroupRequestProtocol::default();
    p.name = s("range");
    p.metadata = metadata;
    r.protocols.push(p);
    let resp = c.send(3, r).await;
    Joined {
        error: resp.error_code,
        generation: resp.generation_id,
        member_id: resp.member_id.to_string(),
        leader: resp.leader.to_string(),
        members: resp.members.len(),
        protocol: resp.protocol_name.map(|p| p.to_string()),
    }
}

/// A Stable group with one consumer subscribed to `topics`: its member id and generation.
async fn stable_consumer(c: &mut Conn, group: &str, topics: &[&str]) -> (String, i32) {
    let j = join_as(c, group, "", "consumer", subscription(topics)).await;
    assert_eq!(j.error, NONE);
    let (e, _) = sync(c, 3, group, j.generation, &j.member_id, &[]).await;
    assert_eq!(e, NONE);
    (j.member_id, j.generation)
}

/// Members as DescribeGroups shows them: (member id, client id, client host).
async fn describe_members(c: &mut Conn, group: &str) -> (i16, Vec<(String, String, String)>) {
    let mut r = DescribeGroupsRequest::default();
    r.groups.push(gid(group));
    let resp = c.send(5, r).await;
    (
        resp.groups[0].error_code,
        resp.groups[0]
            .members
            .iter()
            .map(|m| {
                (
                    m.member_id.to_string(),
                    m.client_id.to_string(),
                    m.client_host.to_string(),
                )
            })
            .collect(),
    )
}

/// OffsetDelete: the group error and each partition's (topic, partition, error), sorted.
async fn offset_delete(
    c: &mut Conn,
    group: &str,
    partitions: &[(&str, i32)],
) -> (i16, Vec<(String, i32, i16)>) {
    let mut r = OffsetDeleteRequest::default();
    r.group_id = gid(group);
    for (topic, p) in partitions {
        let mut x = offset_delete_request::OffsetDeleteRequestPartition::default();
        x.partition_index = *p;
        match r.topics.iter_mut().find(|t| t.name.0.as_str() == *topic) {
            Some(t) => t.partitions.push(x),
            None => {
                let mut t = offset_delete_request::OffsetDeleteRequestTopic::default();
                t.name = TopicName(s(topic));
                t.partitions.push(x);
                r.topics.push(t);
            }
        }
    }
    let resp = c.send(0, r).await;
    let mut out: Vec<_> = resp
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(|p| (t.name.0.to_string(), p.partition_index, p.error_code))
        })
        .collect();
    out.sort();
    (resp.error_code, out)
}

/// OffsetCommit v2 with its own retention time (`retention_ms`, -1 for the broker's rule).
async fn commit_with_retention(
    c: &mut Conn,
    group: &str,
    topic: &str,
    partition: i32,
    offset: i64,
    retention_ms: i64,
) -> i16 {
    let mut r = OffsetCommitRequest::default();
    r.group_id = gid(group);
    r.generation_id_or_member_epoch = -1;
    r.retention_time_ms = retention_ms;
    let mut t = offset_commit_request::OffsetCommitRequestTopic::default();
    t.name = TopicName(s(topic));
    let mut x = offset_commit_request::OffsetCommitRequestPartition::default();
    x.partition_index = partition;
    x.committed_offset = offset;
    t.partitions.push(x);
    r.topics.push(t);
    c.send(2, r).await.topics[0].partitions[0].error_code
}

/// Committed offsets of `group` (all partitions): (topic, partition) -> offset.
async fn committed(c: &mut Conn, group: &str) -> Vec<(String, i32, i64)> {
    fetch_offsets(c, 8, group, "", None)
        .await
        .into_iter()
        .map(|(t, p, o, _)| (t, p, o))
        .collect()
}

/// Two members (v3 joins) in a Stable group: (connection, member id) each, and the generation.
async fn two_member_group(port: u16, g: &str) -> ((Conn, String), (Conn, String), i32) {
    let mut a = Conn::connect(port).await;
    let ja = join_with_timeouts(&mut a, g, "", 10_000, 5_000).await;
    assert_eq!(ja.error, NONE);
    assert_eq!(
        sync(&mut a, 3, g, ja.generation, &ja.member_id, &[])
            .await
            .0,
        NONE
    );
    let group = g.to_string();
    let b_join = tokio::spawn(async move {
        let mut b = Conn::connect(port).await;
        let jb = join_with_timeouts(&mut b, &group, "", 10_000, 5_000).await;
        (b, jb)
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while heartbeat(&mut a, 3, g, ja.generation, &ja.member_id).await != REBALANCE_IN_PROGRESS {
        assert!(std::time::Instant::now() < deadline, "no rebalance");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let ja2 = join_with_timeouts(&mut a, g, &ja.member_id, 10_000, 5_000).await;
    let (mut b, jb) = b_join.await.unwrap();
    assert_eq!((ja2.error, jb.error), (NONE, NONE));
    let generation = ja2.generation;
    let b_id = jb.member_id.clone();
    let group = g.to_string();
    let b_sync = tokio::spawn(async move {
        let r = sync(&mut b, 3, &group, generation, &b_id, &[]).await;
        (b, r)
    });
    assert_eq!(
        sync(&mut a, 3, g, generation, &ja.member_id, &[]).await.0,
        NONE
    );
    let (b, (e, _)) = b_sync.await.unwrap();
    assert_eq!(e, NONE);
    ((a, ja.member_id), (b, jb.member_id), generation)
}

/// `group.max.size`: a full group turns new members away (GROUP_MAX_SIZE_REACHED) while its
/// members keep their place; a group loaded over a lowered size rebalances down to it. Members
/// are described with the address they connected from, as Kafka shows it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn group_max_size_turns_new_members_away() {
    let tmp = tempfile::tempdir().unwrap();
    let broker = start(tmp.path(), &["group.max.size=2"]).await;
    let port = broker.port;
    let g = "full";
    let ((mut a, a_id), (_b, b_id), generation) = two_member_group(port, g).await;

    let mut c = Conn::connect(port).await;
    let jc = join_with_timeouts(&mut c, g, "", 10_000, 5_000).await;
    assert_eq!(
        (jc.error, jc.member_id.as_str()),
        (GROUP_MAX_SIZE_REACHED, "")
    );
    // Also before a v4+ client gets its member id.
    assert_eq!(join(&mut c, 9, g, "").await.error, GROUP_MAX_SIZE_REACHED);
    // The members were not disturbed: no rebalance.
    assert_eq!(heartbeat(&mut a, 3, g, generation, &a_id).await, NONE);
    let (e, members) = describe_members(&mut c, g).await;
    assert_eq!(e, NONE);
    let mut ids: Vec<_> = members.iter().map(|m| m.0.clone()).collect();
    ids.sort();
    let mut want = vec![a_id.clone(), b_id.clone()];
    want.sort();
    assert_eq!(ids, want);
    for (_, client_id, host) in &members {
        assert_eq!(
            (client_id.as_str(), host.as_str()),
            ("odradek-test", "/127.0.0.1")
        );
    }
    drop((a, c));
    broker.shutdown().await.unwrap();

    // Loaded with two members over a size of one: a rebalance keeps the first to rejoin.
    let broker = start(tmp.path(), &["group.max.size=1"]).await;
    let port = broker.port;
    let mut c = Conn::connect(port).await;
    assert_eq!(
        describe(&mut c, 5, g).await,
        ("PreparingRebalance".to_string(), 2)
    );
    let (_, members) = describe_members(&mut c, g).await;
    assert!(members.iter().all(|m| m.2 == "/127.0.0.1"), "{members:?}");
    let rejoin = |id: String| {
        tokio::spawn(async move {
            let mut conn = Conn::connect(port).await;
            join_with_timeouts(&mut conn, "full", &id, 10_000, 5_000).await
        })
    };
    let (ra, rb) = (rejoin(a_id.clone()), rejoin(b_id.clone()));
    let (ra, rb) = (ra.await.unwrap(), rb.await.unwrap());
    let (kept, turned_away) = if ra.error == NONE { (ra, rb) } else { (rb, ra) };
    assert_eq!(turned_away.error, GROUP_MAX_SIZE_REACHED);
    assert_eq!(kept.error, NONE);
    assert_eq!((kept.generation, kept.members), (generation + 1, 1));
    assert_eq!(kept.leader, kept.member_id);
    broker.shutdown().await.unwrap();
}

/// OffsetDelete: an Empty group's offsets go; a consumer group with members keeps those of
/// topics it subscribes to; other groups with members keep all; deletions survive a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn offset_delete_follows_the_subscription() {
    const NON_EMPTY_GROUP: i16 = 68;
    const GROUP_ID_NOT_FOUND: i16 = 69;
    const GROUP_SUBSCRIBED_TO_TOPIC: i16 = 86;
    let tmp = tempfile::tempdir().unwrap();
    let broker = start(tmp.path(), &[]).await;
    let mut c = Conn::connect(broker.port).await;
    assert_eq!(common::wire::create_topic(&mut c, "od-sub", 2).await, NONE);
    assert_eq!(
        common::wire::create_topic(&mut c, "od-other", 1).await,
        NONE
    );

    // Standalone offsets (an Empty group): any may go; unknown topics are said to be unknown.
    assert_eq!(
        commit(
            &mut c,
            2,
            "od-simple",
            -1,
            "",
            "od-sub",
            &[(0, 1, ""), (1, 2, "")]
        )
        .await,
        vec![NONE, NONE]
    );
    assert_eq!(
        commit(&mut c, 2, "od-simple", -1, "", "od-other", &[(0, 3, "")]).await,
        vec![NONE]
    );
    assert_eq!(
        offset_delete(
            &mut c,
            "od-simple",
            &[("od-sub", 0), ("od-other", 0), ("nope", 0)]
        )
        .await,
        (
            NONE,
            vec![
                ("nope".to_string(), 0, UNKNOWN_TOPIC_OR_PARTITION),
                ("od-other".to_string(), 0, NONE),
                ("od-sub".to_string(), 0, NONE),
            ]
        )
    );
    assert_eq!(
        committed(&mut c, "od-simple").await,
        vec![("od-sub".to_string(), 1, 2)]
    );

    // A consumer group subscribed to od-sub: only od-other's offset may go.
    let (member, generation) = stable_consumer(&mut c, "od-consumer", &["od-sub"]).await;
    for topic in ["od-sub", "od-other"] {
        assert_eq!(
            commit(
                &mut c,
                5,
                "od-consumer",
                generation,
                &member,
                topic,
                &[(0, 9, "")]
            )
            .await,
            vec![NONE]
        );
    }
    assert_eq!(
        offset_delete(&mut c, "od-consumer", &[("od-sub", 0), ("od-other", 0)]).await,
        (
            NONE,
            vec![
                ("od-other".to_string(), 0, NONE),
                ("od-sub".to_string(), 0, GROUP_SUBSCRIBED_TO_TOPIC),
            ]
        )
    );
    assert_eq!(
        committed(&mut c, "od-consumer").await,
        vec![("od-sub".to_string(), 0, 9)]
    );

    // A group with members that are not consumers: nothing may go.
    let j = join_as(
        &mut c,
        "od-connect",
        "",
        "connect",
        Bytes::from_static(b"x"),
    )
    .await;
    assert_eq!(j.error, NONE);
    assert_eq!(
        offset_delete(&mut c, "od-connect", &[("od-sub", 0)]).await,
        (NON_EMPTY_GROUP, vec![])
    );
    assert_eq!(
        offset_delete(&mut c, "od-nobody", &[("od-sub", 0)]).await,
        (GROUP_ID_NOT_FOUND, vec![])
    );

    // The last offset of an Empty group goes, and the group with it.
    assert_eq!(
        offset_delete(&mut c, "od-simple", &[("od-sub", 1)]).await,
        (NONE, vec![("od-sub".to_string(), 1, NONE)])
    );
    assert_eq!(
        describe(&mut c, 5, "od-simple").await,
        ("Dead".to_string(), 0)
    );
    drop(c);
    broker.shutdown().await.unwrap();

    let broker = start(tmp.path(), &[]).await;
    let mut c = Conn::connect(broker.port).await;
    assert!(committed(&mut c, "od-simple").await.is_empty());
    assert_eq!(
        committed(&mut c, "od-consumer").await,
        vec![("od-sub".to_string(), 0, 9)]
    );
    broker.shutdown().await.unwrap();
}

/// A commit that names its own retention (OffsetCommit v2-v4) expires then, is tombstoned
/// (it stays gone after a restart), and its group, left without offsets, is removed. Offsets
/// under the broker's retention stay.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn offsets_with_their_own_retention_expire() {
    let tmp = tempfile::tempdir().unwrap();
    let broker = start(tmp.path(), &["offsets.retention.check.interval.ms=100"]).await;
    let mut c = Conn::connect(broker.port).await;
    let before = std::time::Instant::now();
    assert_eq!(
        commit_with_retention(&mut c, "short", "t", 0, 5, 1_000).await,
        NONE
    );
    assert_eq!(
        commit_with_retention(&mut c, "long", "t", 0, 6, -1).await,
        NONE
    );
    assert_eq!(
        committed(&mut c, "short").await,
        vec![("t".to_string(), 0, 5)]
    );
    let deadline = before + Duration::from_secs(20);
    while !committed(&mut c, "short").await.is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the offset never expired"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        before.elapsed() >= Duration::from_millis(1_000),
        "{:?}",
        before.elapsed()
    );
    assert_eq!(describe(&mut c, 5, "short").await, ("Dead".to_string(), 0));
    assert_eq!(
        committed(&mut c, "long").await,
        vec![("t".to_string(), 0, 6)]
    );
    drop(c);
    broker.shutdown().await.unwrap();

    let broker = start(tmp.path(), &[]).await;
    let mut c = Conn::connect(broker.port).await;
    assert!(committed(&mut c, "short").await.is_empty());
    assert_eq!(
        committed(&mut c, "long").await,
        vec![("t".to_string(), 0, 6)]
    );
    broker.shutdown().await.unwrap();
}

/// `offsets.retention.minutes` (KIP-211), at its smallest (one minute): an Empty consumer
/// group loses every offset one retention after it became Empty, offsets stored without a group
/// one retention after their commit, and a Stable consumer group only those of topics it does
/// not subscribe to. An Empty group without offsets is removed at the next check. Tombstones
/// keep all of it gone after a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn offsets_expire_after_the_retention() {
    const RETENTION: Duration = Duration::from_secs(60);
    let tmp = tempfile::tempdir().unwrap();
    let extra = [
        "offsets.retention.minutes=1",
        "offsets.retention.check.interval.ms=200",
    ];
    let broker = start(tmp.path(), &extra).await;
    let mut c = Conn::connect(broker.port).await;

    // Committed, then left: Empty from then on.
    let (member, generation) = stable_consumer(&mut c, "ret-empty", &["x"]).await;
    let empty_commit = std::time::Instant::now();
    assert_eq!(
        commit(
            &mut c,
            5,
            "ret-empty",
            generation,
            &member,
            "x",
            &[(0, 1, "")]
        )
        .await,
        vec![NONE]
    );
    // Ten seconds later the group empties: its offset goes one retention after that.
    // Meanwhile the other groups start.
    let simple_commit = std::time::Instant::now();
    assert_eq!(
        commit(&mut c, 2, "ret-simple", -1, "", "x", &[(0, 2, "")]).await,
        vec![NONE]
    );
    let (stable_member, stable_generation) = stable_consumer(&mut c, "ret-stable", &["x"]).await;
    let stable_commit = std::time::Instant::now();
    for topic in ["x", "y"] {
        assert_eq!(
            commit(
                &mut c,
                5,
                "ret-stable",
                stable_generation,
                &stable_member,
                topic,
                &[(0, 3, "")]
            )
            .await,
            vec![NONE]
        );
    }
    // A group that never committed is gone at the next check once Empty.
    let (bare, _) = stable_consumer(&mut c, "ret-bare", &["x"]).await;
    assert_eq!(leave(&mut c, 3, "ret-bare", &bare).await.0, NONE);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while describe(&mut c, 5, "ret-bare").await.0 != "Dead" {
        assert!(
            std::time::Instant::now() < deadline,
            "the bare group stayed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let leave_at = empty_commit + Duration::from_secs(10);
    while std::time::Instant::now() < leave_at {
        assert_eq!(
            heartbeat(&mut c, 3, "ret-stable", stable_generation, &stable_member).await,
            NONE
        );
        assert_eq!(
            heartbeat(&mut c, 3, "ret-empty", generation, &member).await,
            NONE
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let emptied = std::time::Instant::now();
    assert_eq!(leave(&mut c, 3, "ret-empty", &member).await.0, NONE);
    assert_eq!(describe(&mut c, 5, "ret-empty").await.0, "Empty");

    // Poll until everything due has expired, noting when each went.
    let mut gone: [Option<std::time::Instant>; 3] = [None; 3];
    let deadline = emptied + RETENTION + Duration::from_secs(30);
    while gone.iter().any(Option::is_none) {
        assert!(
            std::time::Instant::now() < deadline,
            "not expired in time: {gone:?}"
        );
        assert_eq!(
            heartbeat(&mut c, 3, "ret-stable", stable_generation, &stable_member).await,
            NONE
        );
        let now = std::time::Instant::now();
        if gone[0].is_none() && committed(&mut c, "ret-empty").await.is_empty() {
            gone[0] = Some(now);
        }
        if gone[1].is_none() && committed(&mut c, "ret-simple").await.is_empty() {
            gone[1] = Some(now);
        }
        if gone[2].is_none() && committed(&mut c, "ret-stable").await.len() == 1 {
            gone[2] = Some(now);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let [empty_gone, simple_gone, stable_gone] = gone.map(|g| g.unwrap());
    assert!(
        empty_gone >= emptied + RETENTION,
        "an Empty group's offsets count from Empty"
    );
    assert!(empty_gone >= empty_commit + RETENTION + Duration::from_secs(10));
    assert!(simple_gone >= simple_commit + RETENTION);
    assert!(stable_gone >= stable_commit + RETENTION);
    assert_eq!(describe(&mut c, 5, "ret-empty").await.0, "Dead");
    assert_eq!(describe(&mut c, 5, "ret-simple").await.0, "Dead");
    assert_eq!(
        committed(&mut c, "ret-stable").await,
        vec![("x".to_string(), 0, 3)]
    );
    assert_eq!(describe(&mut c, 5, "ret-stable").await.0, "Stable");
    drop(c);
    broker.shutdown().await.unwrap();

    let broker = start(tmp.path(), &[]).await;
    let mut c = Conn::connect(broker.port).await;
    assert!(committed(&mut c, "ret-empty").await.is_empty());
    assert!(committed(&mut c, "ret-simple").await.is_empty());
    assert_eq!(
        committed(&mut c, "ret-stable").await,
        vec![("x".to_string(), 0, 3)]
    );
    broker.shutdown().await.unwrap();
}

/// While this broker reads a `__consumer_offsets` partition it has just come to lead (what
/// LeaderAndIsr starts), requests for its groups get COORDINATOR_LOAD_IN_PROGRESS (heartbeats
/// are let through, as in Kafka) rather than an empty group; once read, the group is there.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn requests_wait_while_the_partition_loads() {
    let tmp = tempfile::tempdir().unwrap();
    let broker = start(tmp.path(), &[]).await;
    let mut c = Conn::connect(broker.port).await;
    let g = "loading";
    assert_eq!(
        commit(&mut c, 2, g, -1, "", "t", &[(0, 5, "")]).await,
        vec![NONE]
    );
    let groups = broker.api().groups.clone();
    let partition = groups.partition_for(g);
    groups.begin_loading(partition);

    assert_eq!(
        join(&mut c, 5, g, "").await.error,
        COORDINATOR_LOAD_IN_PROGRESS
    );
    assert_eq!(
        sync(&mut c, 3, g, 1, "m", &[]).await.0,
        COORDINATOR_LOAD_IN_PROGRESS
    );
    assert_eq!(heartbeat(&mut c, 3, g, 1, "m").await, NONE);
    assert_eq!(
        leave(&mut c, 3, g, "m").await.0,
        COORDINATOR_LOAD_IN_PROGRESS
    );
    assert_eq!(
        commit(&mut c, 2, g, -1, "", "t", &[(0, 6, "")]).await,
        vec![COORDINATOR_LOAD_IN_PROGRESS]
    );
    assert_eq!(
        describe_members(&mut c, g).await.0,
        COORDINATOR_LOAD_IN_PROGRESS
    );
    assert_eq!(
        delete_group(&mut c, 2, g).await,
        COORDINATOR_LOAD_IN_PROGRESS
    );
    assert_eq!(
        offset_delete(&mut c, g, &[]).await.0,
        COORDINATOR_LOAD_IN_PROGRESS
    );
    assert_offset_fetch_error(&mut c, g, COORDINATOR_LOAD_IN_PROGRESS).await;
    assert_eq!(
        c.send(4, ListGroupsRequest::default()).await.error_code,
        COORDINATOR_LOAD_IN_PROGRESS
    );

    groups.load_partition(partition).await.unwrap();
    assert_eq!(committed(&mut c, g).await, vec![("t".to_string(), 0, 5)]);
    assert_eq!(describe_members(&mut c, g).await.0, NONE);
    broker.shutdown().await.unwrap();
}

/// OffsetFetch's group error, in each shape: per group (v8+), top level (v2-v7), and on every
/// partition asked for (v0-v1, which have no top-level error).
async fn assert_offset_fetch_error(c: &mut Conn, group: &str, code: i16) {
    let mut r = OffsetFetchRequest::default();
    let mut x = offset_fetch_request::OffsetFetchRequestGroup::default();
    x.group_id = gid(group);
    r.groups.push(x);
    assert_eq!(c.send(8, r).await.groups[0].error_code, code);
    let mut r = OffsetFetchRequest::default();
    r.group_id = gid(group);
    assert_eq!(c.send(5, r).await.error_code, code);
    let mut r = OffsetFetchRequest::default();
    r.group_id = gid(group);
    let mut t = offset_fetch_request::OffsetFetchRequestTopic::default();
    t.name = TopicName(s("t"));
    t.partition_indexes = vec![0, 1];
    r.topics = Some(vec![t]);
    let r = c.send(1, r).await;
    let codes: Vec<_> = r.topics[0]
        .partitions
        .iter()
        .map(|p| p.error_code)
        .collect();
    assert_eq!(codes, vec![code, code]);
}

/// Two brokers and a real ZooKeeper: every group request for a group the other broker
/// coordinates is answered NOT_COORDINATOR, and creates nothing here.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn group_requests_to_another_broker_get_not_coordinator() {
    let Some(zk) = common::zookeeper::ZooKeeperServer::start() else {
        return;
    };
    let connect = format!("{}/groups", zk.connect_string());
    let tmp = tempfile::tempdir().unwrap();
    let mut brokers = Vec::new();
    for id in 0..2 {
        let dir = tmp.path().join(format!("broker-{id}"));
        let config = BrokerConfig::load(
            None,
            &[
                "listeners=PLAINTEXT://127.0.0.1:0".to_string(),
                format!("log.dirs={}", dir.display()),
                format!("broker.id={id}"),
                format!("zookeeper.connect={connect}"),
                "offsets.topic.replication.factor=1".to_string(),
                "offsets.topic.num.partitions=4".to_string(),
                "group.initial.rebalance.delay.ms=0".to_string(),
                "metrics.port=0".to_string(),
            ],
        )
        .unwrap();
        brokers.push(Broker::start(config).await.unwrap());
    }
    let ports: Vec<u16> = brokers.iter().map(|b| b.port).collect();
    let mut c0 = Conn::connect(ports[0]).await;
    // Both brokers must be known before `__consumer_offsets` is created, so that its
    // partitions are spread over them.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let known = c0.send(9, MetadataRequest::default()).await.brokers.len();
        if known == 2 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "brokers never met");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(common::wire::create_topic(&mut c0, "t", 1).await, NONE);
    // A group coordinated by broker 1 (groups land on partitions by hash; try names).
    let mut found = None;
    'search: while std::time::Instant::now() < deadline {
        for i in 0..20 {
            let g = format!("elsewhere-{i}");
            let mut r = FindCoordinatorRequest::default();
            r.key = s(&g);
            match c0
                .call(ApiKey::FindCoordinator, 2, RequestKind::FindCoordinator(r))
                .await
            {
                ResponseKind::FindCoordinator(resp) if resp.error_code == NONE => {
                    if resp.node_id == BrokerId(1) {
                        found = Some(g);
                        break 'search;
                    }
                }
                ResponseKind::FindCoordinator(_) => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue 'search;
                }
                other => panic!("{other:?}"),
            }
        }
        panic!("no group name of 20 is coordinated by broker 1");
    }
    let g = found.expect("the coordinators were never found");

    // Its coordinator serves it ...
    let mut c1 = Conn::connect(ports[1]).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while commit(&mut c1, 2, &g, -1, "", "t", &[(0, 4, "")]).await != vec![NONE] {
        assert!(
            std::time::Instant::now() < deadline,
            "the coordinator never took commits"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // ... the other broker does not.
    assert_eq!(join(&mut c0, 5, &g, "").await.error, NOT_COORDINATOR);
    assert_eq!(
        join_with_timeouts(&mut c0, &g, "", 10_000, 5_000)
            .await
            .error,
        NOT_COORDINATOR
    );
    assert_eq!(sync(&mut c0, 3, &g, 1, "m", &[]).await.0, NOT_COORDINATOR);
    assert_eq!(heartbeat(&mut c0, 3, &g, 1, "m").await, NOT_COORDINATOR);
    assert_eq!(leave(&mut c0, 3, &g, "m").await.0, NOT_COORDINATOR);
    assert_eq!(
        commit(&mut c0, 2, &g, -1, "", "t", &[(0, 6, "")]).await,
        vec![NOT_COORDINATOR]
    );
    assert_eq!(describe_members(&mut c0, &g).await.0, NOT_COORDINATOR);
    assert_eq!(delete_group(&mut c0, 2, &g).await, NOT_COORDINATOR);
    assert_eq!(offset_delete(&mut c0, &g, &[]).await.0, NOT_COORDINATOR);
    assert_offset_fetch_error(&mut c0, &g, NOT_COORDINATOR).await;
    {
        let r = c0.send(4, ListGroupsRequest::default()).await;
        assert_eq!(r.error_code, NONE);
        assert!(r.groups.iter().all(|x| x.group_id.0.as_str() != g));
    }
    // Nothing of that reached the group.
    assert_eq!(committed(&mut c1, &g).await, vec![("t".to_string(), 0, 4)]);
    assert_eq!(describe(&mut c1, 5, &g).await, ("Empty".to_string(), 0));
    drop((c0, c1));
    for b in brokers {
        b.shutdown().await.unwrap();
    }
    drop(zk);
}

/// OffsetCommit and TxnOffsetCommit answer UNKNOWN_TOPIC_OR_PARTITION, per partition, for
/// topics and partitions the cluster does not have, and commit the others (Kafka 2.4+).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commits_to_unknown_topics_and_partitions_are_refused() {
    for store in common::wire::STORES {
        let tmp = tempfile::tempdir().unwrap();
        let options = [
            "offsets.topic.replication.factor=1",
            "offsets.topic.num.partitions=1",
            "transaction.state.log.replication.factor=1",
            "transaction.state.log.num.partitions=1",
        ];
        let Some((broker, _zk)) = common::wire::start_broker_on(store, tmp.path(), &options).await
        else {
            return;
        };
        let mut c = Conn::connect(broker.port).await;
        assert_eq!(common::wire::create_topic(&mut c, "known", 2).await, NONE);
        let g = "unknown-commits";
        let mut r = OffsetCommitRequest::default();
        r.group_id = gid(g);
        r.generation_id_or_member_epoch = -1;
        for (topic, partitions) in [("known", vec![0, 1, 2]), ("missing", vec![0])] {
            let mut t = offset_commit_request::OffsetCommitRequestTopic::default();
            t.name = TopicName(s(topic));
            for p in partitions {
                let mut x = offset_commit_request::OffsetCommitRequestPartition::default();
                x.partition_index = p;
                x.committed_offset = 10 + p as i64;
                t.partitions.push(x);
            }
            r.topics.push(t);
        }
        // The coordinator's partition may still be loading right after start-up.
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let answered = loop {
            let response = c.send(8, r.clone()).await;
            let codes: Vec<(String, i32, i16)> = response
                .topics
                .iter()
                .flat_map(|t| {
                    t.partitions
                        .iter()
                        .map(|p| (t.name.0.to_string(), p.partition_index, p.error_code))
                })
                .collect();
            if codes
                .iter()
                .all(|(_, _, code)| *code != COORDINATOR_LOAD_IN_PROGRESS)
                || std::time::Instant::now() > deadline
            {
                break codes;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert_eq!(
            answered,
            vec![
                ("known".to_string(), 0, NONE),
                ("known".to_string(), 1, NONE),
                ("known".to_string(), 2, UNKNOWN_TOPIC_OR_PARTITION),
                ("missing".to_string(), 0, UNKNOWN_TOPIC_OR_PARTITION),
            ],
            "{store:?}"
        );
        let mut committed = fetch_offsets(&mut c, 8, g, "known", None).await;
        committed.sort();
        let offsets: Vec<(i32, i64)> = committed.iter().map(|o| (o.1, o.2)).collect();
        assert_eq!(offsets, vec![(0, 10), (1, 11)], "{store:?}");

        // TxnOffsetCommit: the same check, before the coordinators are asked anything.
        let mut r = TxnOffsetCommitRequest::default();
        r.transactional_id = TransactionalId(s("unknown-commits-txn"));
        r.group_id = gid(g);
        r.producer_id = ProducerId(4242);
        r.producer_epoch = 0;
        r.generation_id = -1;
        for (topic, partition) in [("known", 7), ("missing", 0)] {
            let mut p = txn_offset_commit_request::TxnOffsetCommitRequestPartition::default();
            p.partition_index = partition;
            p.committed_offset = 1;
            let mut t = txn_offset_commit_request::TxnOffsetCommitRequestTopic::default();
            t.name = TopicName(s(topic));
            t.partitions.push(p);
            r.topics.push(t);
        }
        let codes: Vec<i16> = c
            .send(3, r)
            .await
            .topics
            .iter()
            .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
            .collect();
        assert_eq!(
            codes,
            vec![UNKNOWN_TOPIC_OR_PARTITION, UNKNOWN_TOPIC_OR_PARTITION],
            "{store:?}"
        );
    }
}
