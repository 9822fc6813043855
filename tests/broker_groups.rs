//! Consumer groups over the wire against an in-process broker: the classic rebalance protocol,
//! static membership, committed offsets (and their survival across a restart), DeleteGroups,
//! and every advertised version of the group APIs.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::wire::Conn;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use odradek::config::BrokerConfig;
use odradek::server::Broker;

const NONE: i16 = 0;
const COORDINATOR_NOT_AVAILABLE: i16 = 15;
const ILLEGAL_GENERATION: i16 = 22;
const UNKNOWN_MEMBER_ID: i16 = 25;
const REBALANCE_IN_PROGRESS: i16 = 27;
const MEMBER_ID_REQUIRED: i16 = 79;

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
    Broker::start(config).await.unwrap()
}

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
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
    match c
        .call(ApiKey::JoinGroup, version, RequestKind::JoinGroup(r))
        .await
    {
        ResponseKind::JoinGroup(resp) => Joined {
            error: resp.error_code,
            generation: resp.generation_id,
            member_id: resp.member_id.to_string(),
            leader: resp.leader.to_string(),
            members: resp.members.len(),
            protocol: resp.protocol_name.map(|p| p.to_string()),
        },
        other => panic!("{other:?}"),
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
    match c
        .call(ApiKey::SyncGroup, version, RequestKind::SyncGroup(r))
        .await
    {
        ResponseKind::SyncGroup(resp) => (resp.error_code, resp.assignment),
        other => panic!("{other:?}"),
    }
}

async fn heartbeat(c: &mut Conn, version: i16, group: &str, generation: i32, member: &str) -> i16 {
    let mut r = HeartbeatRequest::default();
    r.group_id = gid(group);
    r.generation_id = generation;
    r.member_id = s(member);
    match c
        .call(ApiKey::Heartbeat, version, RequestKind::Heartbeat(r))
        .await
    {
        ResponseKind::Heartbeat(resp) => resp.error_code,
        other => panic!("{other:?}"),
    }
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
    match c
        .call(ApiKey::LeaveGroup, version, RequestKind::LeaveGroup(r))
        .await
    {
        ResponseKind::LeaveGroup(resp) => (
            resp.error_code,
            resp.members.iter().map(|m| m.error_code).collect(),
        ),
        other => panic!("{other:?}"),
    }
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
    match c
        .call(ApiKey::OffsetCommit, version, RequestKind::OffsetCommit(r))
        .await
    {
        ResponseKind::OffsetCommit(resp) => resp.topics[0]
            .partitions
            .iter()
            .map(|p| p.error_code)
            .collect(),
        other => panic!("{other:?}"),
    }
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
        match c
            .call(ApiKey::OffsetFetch, version, RequestKind::OffsetFetch(r))
            .await
        {
            ResponseKind::OffsetFetch(resp) => {
                for t in &resp.groups[0].topics {
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
            }
            other => panic!("{other:?}"),
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
    match c
        .call(ApiKey::OffsetFetch, version, RequestKind::OffsetFetch(r))
        .await
    {
        ResponseKind::OffsetFetch(resp) => {
            for t in &resp.topics {
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
        }
        other => panic!("{other:?}"),
    }
    out
}

async fn describe(c: &mut Conn, version: i16, group: &str) -> (String, usize) {
    let mut r = DescribeGroupsRequest::default();
    r.groups.push(gid(group));
    match c
        .call(
            ApiKey::DescribeGroups,
            version,
            RequestKind::DescribeGroups(r),
        )
        .await
    {
        ResponseKind::DescribeGroups(resp) => (
            resp.groups[0].group_state.to_string(),
            resp.groups[0].members.len(),
        ),
        other => panic!("{other:?}"),
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
        match c
            .call(
                ApiKey::FindCoordinator,
                version,
                RequestKind::FindCoordinator(r),
            )
            .await
        {
            ResponseKind::FindCoordinator(resp) => {
                assert_eq!(resp.error_code, NONE, "v{version}");
                assert_eq!(resp.node_id, BrokerId(0));
                assert_eq!(resp.port, broker.port as i32);
            }
            other => panic!("{other:?}"),
        }
    }
    let mut r = FindCoordinatorRequest::default();
    r.key_type = 0;
    r.coordinator_keys = vec![s("a"), s("b")];
    match c
        .call(ApiKey::FindCoordinator, 4, RequestKind::FindCoordinator(r))
        .await
    {
        ResponseKind::FindCoordinator(resp) => {
            assert_eq!(resp.coordinators.len(), 2);
            for co in &resp.coordinators {
                assert_eq!(
                    (co.error_code, co.node_id, co.port),
                    (NONE, BrokerId(0), broker.port as i32)
                );
            }
        }
        other => panic!("{other:?}"),
    }
    let mut r = FindCoordinatorRequest::default();
    r.key_type = 1;
    r.coordinator_keys = vec![s("txn")];
    match c
        .call(ApiKey::FindCoordinator, 4, RequestKind::FindCoordinator(r))
        .await
    {
        ResponseKind::FindCoordinator(resp) => {
            assert_eq!(resp.coordinators[0].error_code, COORDINATOR_NOT_AVAILABLE)
        }
        other => panic!("{other:?}"),
    }
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
        match c
            .call(
                ApiKey::ListGroups,
                version,
                RequestKind::ListGroups(ListGroupsRequest::default()),
            )
            .await
        {
            ResponseKind::ListGroups(resp) => {
                assert_eq!(resp.error_code, NONE);
                assert!(resp.groups.iter().any(|g| g.group_id.0.as_str() == "v3"));
            }
            other => panic!("{other:?}"),
        }
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
    match c
        .call(ApiKey::JoinGroup, 3, RequestKind::JoinGroup(r))
        .await
    {
        ResponseKind::JoinGroup(resp) => Joined {
            error: resp.error_code,
            generation: resp.generation_id,
            member_id: resp.member_id.to_string(),
            leader: resp.leader.to_string(),
            members: resp.members.len(),
            protocol: resp.protocol_name.map(|p| p.to_string()),
        },
        other => panic!("{other:?}"),
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
    match c
        .call(ApiKey::FindCoordinator, 1, RequestKind::FindCoordinator(r))
        .await
    {
        ResponseKind::FindCoordinator(resp) => assert_eq!(resp.error_code, NONE),
        other => panic!("{other:?}"),
    }
    let first = tokio::spawn(async move {
        let mut a = Conn::connect(port).await;
        join_with_timeouts(&mut a, "delayed", "", 10_000, 5_000).await
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
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
    match c
        .call(ApiKey::Heartbeat, 3, RequestKind::Heartbeat(hb))
        .await
    {
        ResponseKind::Heartbeat(r) => assert_eq!(r.error_code, FENCED_INSTANCE_ID),
        other => panic!("{other:?}"),
    }
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
    match c
        .call(ApiKey::LeaveGroup, 4, RequestKind::LeaveGroup(r))
        .await
    {
        ResponseKind::LeaveGroup(r) => {
            assert_eq!((r.error_code, r.members[0].error_code), (NONE, NONE))
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(describe(&mut c, 4, g).await, ("Empty".to_string(), 0));
    broker.shutdown().await.unwrap();
}

async fn delete_group(c: &mut Conn, version: i16, group: &str) -> i16 {
    let mut r = DeleteGroupsRequest::default();
    r.groups_names.push(gid(group));
    match c
        .call(ApiKey::DeleteGroups, version, RequestKind::DeleteGroups(r))
        .await
    {
        ResponseKind::DeleteGroups(resp) => resp.results[0].error_code,
        other => panic!("{other:?}"),
    }
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
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = std::time::Instant::now();
    broker.shutdown().await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(b.await.unwrap().error, NOT_COORDINATOR);
}
