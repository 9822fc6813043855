//! Replication across three odradek brokers on a real ZooKeeper: followers copy their leader,
//! acks=all waits for the ISR, the ISR follows the followers, and after failures every replica
//! holds the same bytes, none keeping a record the leader does not have.

use crate::common;
use crate::common::BoundedOutput;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use std::collections::BTreeMap;

use common::broker_process::free_port;
use common::cluster::{
    Cluster, create_replicated_topic, leaders, metadata, name, produce_each_partition, wait_until,
};
use common::wire::Conn;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use odradek::config::LogConfig;
use odradek::log::batch::{BatchHeader, entry_size};
use odradek::log::{LoadParams, PartitionLog};
use odradek::metadata::MetadataStore;
use odradek::metadata::znodes::{self, PartitionStateZnode};

const NOT_ENOUGH_REPLICAS: i16 = 19;
const NOT_ENOUGH_REPLICAS_AFTER_APPEND: i16 = 20;
const REQUEST_TIMED_OUT: i16 = 7;

/// Produces one batch of `n` records numbered from `first` to partition 0 at broker `port`:
/// (error code, base offset).
async fn produce(port: u16, topic: &str, first: usize, n: usize, acks: i16) -> (i16, i64) {
    produce_with_timeout(port, topic, first, n, acks, 10_000).await
}

/// [`produce`] with the request's `timeout_ms` (how long acks=all may wait for the ISR).
async fn produce_with_timeout(
    port: u16,
    topic: &str,
    first: usize,
    n: usize,
    acks: i16,
    timeout_ms: i32,
) -> (i16, i64) {
    let mut c = Conn::connect(port).await;
    let mut pd = produce_request::PartitionProduceData::default();
    pd.index = 0;
    // The current time: with timestamp 0 a restarted broker's first retention check would
    // delete them (7-day retention).
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    pd.records = Some(common::client_batch(first, n, 10, now, 0));
    let mut td = produce_request::TopicProduceData::default();
    td.name = name(topic);
    td.partition_data.push(pd);
    let mut req = ProduceRequest::default();
    req.acks = acks;
    req.timeout_ms = timeout_ms;
    req.topic_data.push(td);
    match c.call(ApiKey::Produce, 9, RequestKind::Produce(req)).await {
        ResponseKind::Produce(r) => {
            let p = &r.responses[0].partition_responses[0];
            (p.error_code, p.base_offset)
        }
        other => panic!("{other:?}"),
    }
}

/// OffsetsForLeaderEpoch v3 (as a consumer) for partition 0: (error, epoch, end offset).
async fn epoch_end(port: u16, topic: &str, epoch: i32) -> (i16, i32, i64) {
    let mut c = Conn::connect(port).await;
    let mut p = offset_for_leader_epoch_request::OffsetForLeaderPartition::default();
    p.partition = 0;
    p.current_leader_epoch = -1;
    p.leader_epoch = epoch;
    let mut t = offset_for_leader_epoch_request::OffsetForLeaderTopic::default();
    t.topic = name(topic);
    t.partitions.push(p);
    let mut req = OffsetForLeaderEpochRequest::default();
    req.replica_id = BrokerId(-1);
    req.topics.push(t);
    match c
        .call(
            ApiKey::OffsetForLeaderEpoch,
            3,
            RequestKind::OffsetForLeaderEpoch(req),
        )
        .await
    {
        ResponseKind::OffsetForLeaderEpoch(r) => {
            let p = &r.topics[0].partitions[0];
            (p.error_code, p.leader_epoch, p.end_offset)
        }
        other => panic!("{other:?}"),
    }
}

/// `n` records from `first` with acks=all, retried as a producer retries what was refused
/// before the append: UNKNOWN_TOPIC_OR_PARTITION and NOT_LEADER_OR_FOLLOWER (a new topic's
/// leader may be named in Metadata before it has created the partition and taken the role)
/// and NOT_ENOUGH_REPLICAS (on a loaded machine a follower can miss `replica.lag.time.max.ms`
/// and be out of the ISR until its next fetch).
async fn produce_acked(port: u16, topic: &str, first: usize, n: usize) -> (i16, i64) {
    const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
    const NOT_LEADER_OR_FOLLOWER: i16 = 6;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = produce(port, topic, first, n, -1).await;
        if ![
            UNKNOWN_TOPIC_OR_PARTITION,
            NOT_LEADER_OR_FOLLOWER,
            NOT_ENOUGH_REPLICAS,
        ]
        .contains(&r.0)
            || Instant::now() > deadline
        {
            return r;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The state znode of partition 0.
async fn state(store: &dyn MetadataStore, topic: &str) -> Option<PartitionStateZnode> {
    let path = znodes::partition_state_path(topic, 0);
    let (data, _) = store.get(&path).await.ok()??;
    serde_json::from_slice(&data?).ok()
}

/// The ISR of partition 0 in broker `port`'s Metadata, sorted.
async fn metadata_isr(port: u16, topic: &str) -> Vec<i32> {
    let md = metadata(port, Some(&[topic])).await;
    let mut isr: Vec<i32> = md
        .topics
        .iter()
        .flat_map(|t| t.partitions.iter())
        .filter(|p| p.partition_index == 0)
        .flat_map(|p| p.isr_nodes.iter().map(|b| b.0))
        .collect();
    isr.sort_unstable();
    isr
}

/// The leader of partition 0 as broker `via` sees it, once it has one.
async fn wait_leader(cluster: &Cluster, via: i32, topic: &str, not: Option<i32>) -> i32 {
    let port = cluster.port(via);
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        if let Some(&(leader, 0)) = leaders(port, topic).await.get(&0)
            && leader >= 0
            && Some(leader) != not
        {
            return leader;
        }
        assert!(
            Instant::now() < deadline,
            "no new leader for {topic}:\n{}",
            cluster.logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every batch of `<dir>/logs/<topic>-0` below `upto`, as stored (the broker must be stopped).
fn log_bytes(broker_dir: &Path, topic: &str, upto: i64) -> Vec<u8> {
    partition_bytes(broker_dir, topic, 0, upto)
}

/// Every batch of `<dir>/logs/<topic>-<partition>` below `upto`, as stored (the broker must be
/// stopped).
fn partition_bytes(broker_dir: &Path, topic: &str, partition: i32, upto: i64) -> Vec<u8> {
    let dir = broker_dir.join("logs").join(format!("{topic}-{partition}"));
    let log = PartitionLog::open(
        &dir,
        LogConfig::default(),
        LoadParams {
            clean_shutdown: true,
            ..LoadParams::default()
        },
    )
    .unwrap();
    let upto = upto.min(log.log_end_offset());
    let mut out = Vec::new();
    let mut next = log.log_start_offset();
    while next < upto {
        let r = log.read(next, 1 << 20, upto, true).unwrap();
        assert!(
            !r.records.is_empty(),
            "{}: nothing at {next}",
            dir.display()
        );
        let mut pos = 0;
        while pos < r.records.len() {
            let size = entry_size(&r.records[pos..]).unwrap() as usize;
            let h = BatchHeader::parse(&r.records[pos..pos + size]).unwrap();
            if h.base_offset >= upto {
                break;
            }
            out.extend_from_slice(&r.records[pos..pos + size]);
            next = h.next_offset();
            pos += size;
        }
    }
    out
}

/// The high watermark a stopped broker checkpointed for partition 0 of `topic`.
fn checkpointed_hw(broker_dir: &Path, topic: &str) -> i64 {
    let hws = odradek::log::checkpoint::read_offsets(
        &broker_dir
            .join("logs")
            .join(odradek::log::checkpoint::REPLICATION_OFFSET_FILE),
    )
    .unwrap();
    hws[&(topic.to_string(), 0)]
}

/// Acceptance 3: a follower paused longer than `replica.lag.time.max.ms` leaves the ISR, which
/// the leader changes (same leader epoch; at the default IBP through the controller's
/// AlterPartition) and Metadata then shows;
/// with two replicas and `min.insync.replicas=2` acks=all produce is refused with
/// NOT_ENOUGH_REPLICAS; resumed, the follower catches up and rejoins.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_follower_leaves_the_isr_and_rejoins() {
    let Some(cluster) = Cluster::start_with(
        &[1, 2, 3],
        &[
            "replica.lag.time.max.ms=2000",
            // Longer than the pause: the follower stays registered, so only the leader's lag
            // check can take it out of the ISR.
            "zookeeper.session.timeout.ms=30000",
        ],
    ) else {
        return;
    };
    cluster.wait_for_brokers(&[1, 2, 3]).await;
    // The follower must not be the controller: a paused controller could not pass the ISR
    // change on. Topics are placed from a random broker, so a few tries find such a topic.
    let controller = metadata(cluster.port(1), Some(&[])).await.controller_id.0;
    let store = cluster.store().await;
    let mut chosen = None;
    for attempt in 0..20 {
        let topic = format!("paused-{attempt}");
        create_replicated_topic(
            &cluster.bootstrap(1),
            &topic,
            1,
            2,
            &["min.insync.replicas=2"],
        );
        cluster.wait_led(1, &topic, 1).await;
        let leader = wait_leader(&cluster, 1, &topic, None).await;
        let before = state(&store, &topic).await.unwrap();
        assert_eq!(before.isr.len(), 2, "{before:?}");
        let follower = *before.isr.iter().find(|b| **b != leader).unwrap();
        if follower != controller {
            chosen = Some((topic, leader, follower, before));
            break;
        }
    }
    let (topic, leader, follower, before) =
        chosen.expect("a topic whose follower is not the controller");
    let topic = topic.as_str();
    let lp = cluster.port(leader);
    assert_eq!(
        produce_acked(lp, topic, 0, 10).await,
        (0, 0),
        "{}",
        cluster.logs()
    );

    let paused = cluster.brokers[&follower].pause();
    // A follower with everything the leader has is in sync however long it is silent (as in
    // Kafka): it falls behind only once the leader gets more. An acks=all produce waits for
    // it, and with a timeout far below replica.lag.time.max.ms it times out with the follower
    // still in the ISR; the leader says so at INFO, with where the follower stopped.
    let (code, _) = produce_with_timeout(lp, topic, 10, 5, -1, 300).await;
    let stall = match code {
        REQUEST_TIMED_OUT => "acks=all produce timed out",
        // Only if pausing took longer than replica.lag.time.max.ms: the leader's lag check
        // dropped the follower before the produce's timeout.
        NOT_ENOUGH_REPLICAS_AFTER_APPEND => "NOT_ENOUGH_REPLICAS_AFTER_APPEND",
        _ => panic!(
            "acks=all with the follower paused: {code}\n{}",
            cluster.logs()
        ),
    };
    let leader_log =
        || std::fs::read_to_string(cluster.brokers[&leader].log_path()).unwrap_or_default();
    let said = |what: &str| {
        leader_log().lines().any(|l| {
            l.contains(what) && l.contains(topic) && l.contains(&format!("{follower}: log end 10"))
        })
    };
    assert!(
        said(stall),
        "the leader logs the stalled produce with the follower's position\n{}",
        cluster.logs()
    );
    assert_eq!(produce(lp, topic, 15, 5, 1).await, (0, 15));
    let store_ref = &store;
    let shrunk = wait_until(
        Duration::from_secs(20),
        "the leader drops the paused follower from the ISR",
        || async move {
            state(store_ref, topic)
                .await
                .is_some_and(|s| s.isr == vec![leader])
        },
    )
    .await;
    shrunk.unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
    let after = state(&store, topic).await.unwrap();
    // The leader's change, not a controller decision: the leader epoch is unchanged.
    assert_eq!(after.leader, leader);
    assert_eq!(after.leader_epoch, before.leader_epoch);
    let (code, _) = produce(lp, topic, 20, 5, -1).await;
    assert_eq!(code, NOT_ENOUGH_REPLICAS, "{}", cluster.logs());
    assert!(
        leader_log()
            .lines()
            .any(|l| l.contains("produce refused (NOT_ENOUGH_REPLICAS)")
            && l.contains(topic)
            // The ISR field's value (field names are styled when the log is a terminal's).
            && l.contains(&format!("[{leader}]"))),
        "the leader logs the refusal with the ISR\n{}",
        cluster.logs()
    );
    // Transaction markers are written with acks=-1 too, so they are refused as well.
    assert_eq!(write_marker(lp, topic).await, NOT_ENOUGH_REPLICAS);
    // acks=1 is not subject to min.insync.replicas.
    assert_eq!(produce(lp, topic, 20, 5, 1).await, (0, 20));
    let shown = wait_until(
        Duration::from_secs(20),
        "Metadata shows the smaller ISR",
        || async move { metadata_isr(lp, topic).await == vec![leader] },
    )
    .await;
    paused.resume();
    shown.unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));

    let mut both = vec![leader, follower];
    both.sort_unstable();
    let both = &both;
    wait_until(
        Duration::from_secs(20),
        "the resumed follower rejoins the ISR",
        || async move {
            state(store_ref, topic).await.is_some_and(|s| {
                let mut isr = s.isr.clone();
                isr.sort_unstable();
                isr == *both
            })
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
    wait_until(
        Duration::from_secs(20),
        "Metadata shows the follower back in the ISR",
        || async move { metadata_isr(lp, topic).await == *both },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
    let (code, base) = produce_acked(lp, topic, 25, 5).await;
    assert_eq!((code, base), (0, 25), "{}", cluster.logs());
}

/// Acceptance 5: a leader holding records its followers never got (acks=1 while they were
/// paused) dies; a follower takes over and gets other records at those offsets; the old leader
/// returns as a follower, truncates what the new leader does not have, and ends up with the new
/// leader's log, byte for byte.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_returning_leader_truncates_records_the_new_leader_lacks() {
    let Some(mut cluster) = Cluster::start_with(&[1, 2, 3], &["zookeeper.session.timeout.ms=6000"])
    else {
        return;
    };
    cluster.wait_for_brokers(&[1, 2, 3]).await;
    create_replicated_topic(&cluster.bootstrap(1), "diverge", 1, 3, &[]);
    cluster.wait_led(1, "diverge", 1).await;
    let old = wait_leader(&cluster, 1, "diverge", None).await;
    let followers: Vec<i32> = [1, 2, 3].into_iter().filter(|b| *b != old).collect();
    let old_epoch = state(&cluster.store().await, "diverge")
        .await
        .unwrap()
        .leader_epoch;
    assert_eq!(
        produce_acked(cluster.port(old), "diverge", 0, 10).await,
        (0, 0),
        "{}",
        cluster.logs()
    );

    // The followers are paused (briefly: they stay registered and in the ISR) while the
    // leader takes five records with acks=1, then the leader dies.
    let paused: Vec<_> = followers
        .iter()
        .map(|f| cluster.brokers[f].pause())
        .collect();
    // A fetch they sent before pausing waits at the leader up to replica.fetch.wait.max.ms
    // (500 ms) and would carry the new records into their sockets; it must have been answered
    // (empty) first. Nothing outside the brokers shows that moment, hence a fixed wait.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let only_on_old = produce(cluster.port(old), "diverge", 1000, 5, 1).await;
    cluster.brokers.get_mut(&old).unwrap().stop(true);
    drop(paused);
    assert_eq!(only_on_old, (0, 10));

    let new = wait_leader(&cluster, followers[0], "diverge", Some(old)).await;
    assert!(followers.contains(&new));
    // Other records at offsets 10.. on the new leader (the ISR lost the old leader, so two
    // replicas acknowledge).
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match produce(cluster.port(new), "diverge", 2000, 3, -1).await {
            (0, base) => {
                assert_eq!(base, 10);
                break;
            }
            (code, _) => {
                assert!(
                    Instant::now() < deadline,
                    "produce to the new leader: {code}\n{}",
                    cluster.logs()
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }

    // Where the old leader's epoch ends on the new leader: the old leader's fetches learn the
    // same (diverging_epoch) and truncate there; OffsetsForLeaderEpoch says so too.
    assert_eq!(
        epoch_end(cluster.port(new), "diverge", old_epoch).await,
        (0, old_epoch, 10)
    );
    cluster.brokers.get_mut(&old).unwrap().restart(false);
    let store = cluster.store().await;
    let store_ref = &store;
    wait_until(
        Duration::from_secs(40),
        "the old leader is back in the ISR",
        || async move {
            state(store_ref, "diverge")
                .await
                .is_some_and(|s| s.isr.len() == 3)
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
    // One more acks=all batch: every ISR member has everything up to it.
    let (code, base) = produce(cluster.port(new), "diverge", 3000, 2, -1).await;
    assert_eq!((code, base), (0, 13), "{}", cluster.logs());
    let consumed = common::odradek(
        &[
            "consume",
            "--bootstrap-server",
            &cluster.bootstrap(new),
            "--topic",
            "diverge",
            "--from-beginning",
            "--timeout-ms",
            "2000",
        ],
        None,
    )
    .1;
    let values: Vec<usize> = consumed.lines().map(|l| l.parse().unwrap()).collect();
    let expected: Vec<usize> = (0..10).chain(2000..2003).chain(3000..3002).collect();
    assert_eq!(values, expected, "{}", cluster.logs());

    // Stopped cleanly, the three logs are the same bytes up to the high watermark, and none
    // has the old leader's five records.
    for b in cluster.brokers.values_mut() {
        b.stop(false);
    }
    let hw = checkpointed_hw(&cluster.brokers[&new].dir, "diverge");
    assert_eq!(hw, 15);
    let reference = log_bytes(&cluster.brokers[&new].dir, "diverge", hw);
    for id in [1, 2, 3] {
        let dir = &cluster.brokers[&id].dir;
        assert_eq!(
            log_bytes(dir, "diverge", i64::MAX),
            reference,
            "broker {id}'s log differs from the leader's"
        );
    }
}

/// The latest offset (the high watermark) of partition 0 at broker `port`, -1 if it cannot say.
async fn latest_offset(port: u16, topic: &str) -> i64 {
    let Ok(Ok(_)) = tokio::time::timeout(
        Duration::from_secs(2),
        tokio::net::TcpStream::connect(("127.0.0.1", port)),
    )
    .await
    else {
        return -1;
    };
    let mut c = Conn::connect(port).await;
    let mut p = list_offsets_request::ListOffsetsPartition::default();
    p.partition_index = 0;
    p.timestamp = -1;
    let mut t = list_offsets_request::ListOffsetsTopic::default();
    t.name = name(topic);
    t.partitions.push(p);
    let mut req = ListOffsetsRequest::default();
    req.replica_id = BrokerId(-1);
    req.topics.push(t);
    match c
        .call(ApiKey::ListOffsets, 1, RequestKind::ListOffsets(req))
        .await
    {
        ResponseKind::ListOffsets(r) => {
            let p = &r.topics[0].partitions[0];
            if p.error_code == 0 { p.offset } else { -1 }
        }
        _ => -1,
    }
}

/// Acceptances 1 and 2: three replicas, `min.insync.replicas=2`; the Java producer (acks=all,
/// idempotent) sends 100,000 numbered records and the leader is killed with SIGKILL part-way.
/// The producer carries on through the new leader and every record is acknowledged; a
/// consumer from the beginning reads every number once, in order. The old leader returns,
/// catches up, and the three logs are the same bytes up to the high watermark.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acks_all_survives_the_leader_killed_and_replicas_stay_identical() {
    numbered_records_survive_the_leader_stopping(true, 100_000).await;
}

/// Acceptance 4: SIGTERM on the leader while the Java producer (acks=all) sends numbered
/// records: the broker hands its leadership over (controlled shutdown) and exits; the producer
/// sees at most retriable errors (it retries them: none fails); every number is read back once,
/// in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acks_all_survives_the_leader_shut_down_cleanly() {
    numbered_records_survive_the_leader_stopping(false, 100_000).await;
}

/// The Java producer sends `count` numbered records (acks=all, idempotent) to a topic with
/// three replicas and `min.insync.replicas=2`; part-way its leader is stopped, with SIGKILL
/// (`kill`) or SIGTERM. Then every number must be read back, and the three logs must be the
/// same bytes up to the high watermark once the old leader has caught up.
async fn numbered_records_survive_the_leader_stopping(kill: bool, count: i64) {
    let classes = tempfile::tempdir().unwrap();
    let Some(cp) = common::compile_java("NumberedProducer", classes.path()) else {
        common::missing_tool("the Java client (scripts/java-deps.sh)");
        return;
    };
    let Some(mut cluster) = Cluster::start(&[1, 2, 3]) else {
        return;
    };
    cluster.wait_for_brokers(&[1, 2, 3]).await;
    create_replicated_topic(
        &cluster.bootstrap(1),
        "numbers",
        1,
        3,
        &["min.insync.replicas=2"],
    );
    for id in [1, 2, 3] {
        cluster.wait_led(id, "numbers", 1).await;
    }
    let old = wait_leader(&cluster, 1, "numbers", None).await;
    let bootstrap = [1, 2, 3]
        .iter()
        .map(|id| cluster.bootstrap(*id))
        .collect::<Vec<_>>()
        .join(",");
    let mut producer = Command::new("java")
        .args(["-cp", &cp, "NumberedProducer", &bootstrap, "numbers"])
        .arg(count.to_string())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Part-way: once a fifth of the records are committed.
    let port = cluster.port(old);
    let reached = wait_until(
        Duration::from_secs(120),
        "a fifth of the records are committed",
        || async move { latest_offset(port, "numbers").await >= count / 5 },
    )
    .await;
    if let Err(e) = reached {
        let _ = producer.kill();
        panic!("{e}\n{}", cluster.logs());
    }
    let killed_at = latest_offset(port, "numbers").await;
    let status = cluster.brokers.get_mut(&old).unwrap().stop(kill);
    assert!(
        killed_at < count,
        "the producer finished before the leader stopped"
    );
    if !kill {
        assert!(
            status.is_some_and(|s| s.success()),
            "SIGTERM: the broker exits cleanly: {status:?}\n{}",
            cluster.logs()
        );
        assert!(
            std::fs::read_to_string(cluster.brokers[&old].log_path())
                .unwrap_or_default()
                .contains("controlled shutdown"),
            "the leader asked the controller to move its leadership before exiting"
        );
    }

    let deadline = Instant::now() + Duration::from_secs(240);
    let status = loop {
        if let Some(s) = producer.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = producer.kill();
            panic!("the producer did not finish:\n{}", cluster.logs());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let out = producer.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        status.success() && stdout.contains("failed=0"),
        "producer: {stdout}\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        cluster.logs()
    );
    let new = wait_leader(&cluster, 1 + (old % 3), "numbers", Some(old)).await;
    let consumed = common::odradek(
        &[
            "consume",
            "--bootstrap-server",
            &cluster.bootstrap(new),
            "--topic",
            "numbers",
            "--from-beginning",
            "--timeout-ms",
            "3000",
        ],
        None,
    )
    .1;
    let numbers: Vec<i64> = consumed.lines().filter_map(|l| l.parse().ok()).collect();
    let expected: Vec<i64> = (0..count).collect();
    if numbers != expected {
        let seen: std::collections::HashSet<i64> = numbers.iter().copied().collect();
        let missing = expected.iter().filter(|n| !seen.contains(n)).count();
        panic!(
            "consumed {} numbers ({missing} missing), not 0..{count} in order; killed at {killed_at}\n{}",
            numbers.len(),
            cluster.logs()
        );
    }

    // The old leader returns as a follower and catches up.
    cluster.brokers.get_mut(&old).unwrap().restart(false);
    let store = cluster.store().await;
    let store_ref = &store;
    wait_until(
        Duration::from_secs(60),
        "the old leader rejoins the ISR",
        || async move {
            state(store_ref, "numbers")
                .await
                .is_some_and(|s| s.isr.len() == 3)
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
    let leader = state(&store, "numbers").await.unwrap().leader;
    for b in cluster.brokers.values_mut() {
        b.stop(false);
    }
    let hw = checkpointed_hw(&cluster.brokers[&leader].dir, "numbers");
    assert!(hw >= count, "leader {leader} checkpointed HW {hw}");
    let reference = log_bytes(&cluster.brokers[&leader].dir, "numbers", hw);
    for id in [1, 2, 3] {
        let theirs = log_bytes(&cluster.brokers[&id].dir, "numbers", hw);
        assert!(
            theirs == reference,
            "broker {id}'s log differs from leader {leader}'s below the high watermark {hw} ({} vs {} bytes)",
            theirs.len(),
            reference.len()
        );
    }
}

/// Acceptance 1 with Kafka 2.4.1's own verification tools, when a 2.4.1 distribution is
/// present: `kafka-verifiable-producer.sh` (acks=all, not idempotent) through a leader killed
/// part-way; `kafka-verifiable-consumer.sh` then finds, at the offset of every acknowledged
/// record, that record's value.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_241_verifiable_tools_lose_nothing_across_a_leader_kill() {
    const COUNT: i64 = 20_000;
    let Some(home) = common::kafka_home() else {
        eprintln!(
            "SKIPPED: no Kafka 2.4.1 distribution in KAFKA_HOME or ~/.cache/odradek/kafka_2.13-2.4.1"
        );
        return;
    };
    let Some(mut cluster) = Cluster::start(&[1, 2, 3]) else {
        return;
    };
    cluster.wait_for_brokers(&[1, 2, 3]).await;
    create_replicated_topic(
        &cluster.bootstrap(1),
        "verifiable",
        1,
        3,
        &["min.insync.replicas=2"],
    );
    for id in [1, 2, 3] {
        cluster.wait_led(id, "verifiable", 1).await;
    }
    let old = wait_leader(&cluster, 1, "verifiable", None).await;
    let brokers = [1, 2, 3]
        .iter()
        .map(|id| cluster.bootstrap(*id))
        .collect::<Vec<_>>()
        .join(",");
    let mut producer = Command::new(home.join("bin/kafka-verifiable-producer.sh"))
        .args([
            "--topic",
            "verifiable",
            "--broker-list",
            &brokers,
            "--acks",
            "-1",
        ])
        .args(["--max-messages", &COUNT.to_string(), "--throughput", "5000"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // A line per record: read as it comes, or the pipe fills and the producer stalls.
    let mut stdout = producer.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut text).map(|_| text)
    });
    let port = cluster.port(old);
    let reached = wait_until(
        Duration::from_secs(120),
        "a fifth of the records are committed",
        || async move { latest_offset(port, "verifiable").await >= COUNT / 5 },
    )
    .await;
    if let Err(e) = reached {
        let _ = producer.kill();
        panic!("{e}\n{}", cluster.logs());
    }
    cluster.brokers.get_mut(&old).unwrap().stop(true);
    let deadline = Instant::now() + Duration::from_secs(240);
    while producer.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = producer.kill();
            panic!(
                "the verifiable producer did not finish:\n{}",
                cluster.logs()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let stdout = reader.join().unwrap().unwrap();
    // (offset, value) of every acknowledged record.
    let acked: Vec<(i64, String)> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["name"] == "producer_send_success")
        .map(|v| {
            (
                v["offset"].as_i64().unwrap(),
                v["value"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(
        acked.len() as i64 >= COUNT * 9 / 10,
        "only {} acknowledged",
        acked.len()
    );

    let new = wait_leader(&cluster, 1 + (old % 3), "verifiable", Some(old)).await;
    let end = latest_offset(cluster.port(new), "verifiable").await;
    // The consumer's group coordinator may live on the killed broker (its offsets topic has
    // one replica in the shipped server.properties): it comes back first.
    cluster.brokers.get_mut(&old).unwrap().restart(false);
    cluster.wait_for_brokers(&[1, 2, 3]).await;
    let consumer = tokio::task::spawn_blocking({
        let home = home.clone();
        let bootstrap = cluster.bootstrap(new);
        move || {
            Command::new("timeout")
                .arg("120")
                .arg(home.join("bin/kafka-verifiable-consumer.sh"))
                .args(["--topic", "verifiable", "--broker-list", &bootstrap])
                // 2.4.1's tool insists on a static member id.
                .args([
                    "--group-id",
                    "verifier",
                    "--group-instance-id",
                    "verifier-1",
                ])
                .args(["--reset-policy", "earliest", "--verbose"])
                .args(["--max-messages", &end.to_string()])
                .bounded_output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    let consumed: std::collections::HashMap<i64, String> =
        String::from_utf8_lossy(&consumer.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v["name"] == "record_data")
            .map(|v| {
                (
                    v["offset"].as_i64().unwrap(),
                    v["value"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect();
    assert_eq!(
        consumed.len() as i64,
        end,
        "the consumer read every offset once"
    );
    let lost: Vec<&(i64, String)> = acked
        .iter()
        .filter(|(offset, value)| consumed.get(offset) != Some(value))
        .collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged records are not where the producer was told (first {:?})\n{}",
        lost.len(),
        lost.first(),
        cluster.logs()
    );
}

/// A COMMIT marker (WriteTxnMarkers v1, as a coordinator sends it) for partition 0: its error.
async fn write_marker(port: u16, topic: &str) -> i16 {
    let mut t = write_txn_markers_request::WritableTxnMarkerTopic::default();
    t.name = name(topic);
    t.partition_indexes = vec![0];
    let mut m = write_txn_markers_request::WritableTxnMarker::default();
    m.producer_id = ProducerId(4242);
    m.producer_epoch = 0;
    m.transaction_result = true;
    m.coordinator_epoch = 0;
    m.topics = vec![t];
    let mut req = WriteTxnMarkersRequest::default();
    req.markers = vec![m];
    let mut c = Conn::connect(port).await;
    c.send(1, req).await.markers[0].topics[0].partitions[0].error_code
}

/// InitProducerId for `transactional_id`, sent without waiting: its correlation id.
async fn send_init_producer_id(c: &mut Conn, transactional_id: &str) -> i32 {
    let mut req = InitProducerIdRequest::default();
    req.transactional_id = Some(TransactionalId(StrBytes::from_string(
        transactional_id.to_string(),
    )));
    req.transaction_timeout_ms = 60_000;
    req.producer_id = ProducerId(-1);
    req.producer_epoch = -1;
    c.send_request(ApiKey::InitProducerId, 4, RequestKind::InitProducerId(req))
        .await
}

async fn init_producer_id(c: &mut Conn, transactional_id: &str) -> i16 {
    let id = send_init_producer_id(c, transactional_id).await;
    match c.read_response(ApiKey::InitProducerId, 4, id).await {
        ResponseKind::InitProducerId(r) => r.error_code,
        other => panic!("{other:?}"),
    }
}

/// The transaction coordinator's writes to `__transaction_state` are acknowledged only once
/// its ISR has them, as Kafka writes its transaction log with acks=all: otherwise a
/// coordinator failover could lose a transaction state the client was already told of. With
/// the coordinator's follower paused, InitProducerId gets no answer; resumed, it completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transaction_state_is_acknowledged_once_replicated() {
    let Some(cluster) = Cluster::start_with(
        &[1, 2, 3],
        &[
            "transaction.state.log.num.partitions=1",
            "transaction.state.log.replication.factor=2",
            // The pause must not end the follower's session.
            "zookeeper.session.timeout.ms=30000",
        ],
    ) else {
        return;
    };
    cluster.wait_for_brokers(&[1, 2, 3]).await;
    // FindCoordinator creates the transaction log; until it is led, the coordinator is not
    // available.
    let mut leader = -1;
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let mut c = Conn::connect(cluster.port(1)).await;
        let mut req = FindCoordinatorRequest::default();
        req.key = StrBytes::from_static_str("first");
        req.key_type = 1;
        let node = match c
            .call(
                ApiKey::FindCoordinator,
                3,
                RequestKind::FindCoordinator(req),
            )
            .await
        {
            ResponseKind::FindCoordinator(r) if r.error_code == 0 => r.node_id.0,
            ResponseKind::FindCoordinator(_) => -1,
            other => panic!("{other:?}"),
        };
        if node >= 0 {
            let mut c = Conn::connect(cluster.port(node)).await;
            if init_producer_id(&mut c, "first").await == 0 {
                leader = node;
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(leader >= 0, "no coordinator:\n{}", cluster.logs());
    let store = cluster.store().await;
    let s = state(&store, "__transaction_state").await.unwrap();
    assert_eq!(s.leader, leader);
    let follower = *s
        .isr
        .iter()
        .find(|b| **b != leader)
        .unwrap_or_else(|| panic!("a follower in the ISR: {s:?}"));

    let paused = cluster.brokers[&follower].pause();
    let mut c = Conn::connect(cluster.port(leader)).await;
    let id = send_init_producer_id(&mut c, "second").await;
    if c.answers_within(Duration::from_millis(1500)).await {
        let r = c.read_response(ApiKey::InitProducerId, 4, id).await;
        panic!(
            "InitProducerId was answered while the only follower of the transaction log was \
             paused: {r:?}\n{}",
            cluster.logs()
        );
    }
    paused.resume();
    match c.read_response(ApiKey::InitProducerId, 4, id).await {
        ResponseKind::InitProducerId(r) => {
            assert_eq!(r.error_code, 0, "{}", cluster.logs());
            assert!(r.producer_id.0 >= 0);
        }
        other => panic!("{other:?}"),
    }
}

/// One gauge from broker metrics at `port` (Prometheus text), if exposed.
async fn gauge(port: u16, metric: &str) -> Option<f64> {
    let out = common::wire::metrics_page(port).await?;
    out.lines()
        .find_map(|l| l.strip_prefix(metric)?.strip_prefix(' ')?.parse().ok())
}

/// `topic` with `partitions` partitions on all three brokers; `rounds` times ten records with
/// acks=all to every partition.
async fn create_and_produce(cluster: &mut Cluster, topic: &str, partitions: i32, rounds: usize) {
    create_replicated_topic(&cluster.bootstrap(1), topic, partitions, 3, &[]);
    cluster.wait_led(1, topic, partitions as usize).await;
    for _ in 0..rounds {
        let acked = produce_each_partition(cluster, 1, topic).await;
        assert_eq!(acked, 10 * partitions as usize);
    }
}

/// Stops every broker; then each partition's log must be the same bytes on all three, holding
/// `records` records.
fn assert_replicas_identical(cluster: &mut Cluster, topic: &str, partitions: i32, records: i64) {
    for b in cluster.brokers.values_mut() {
        b.stop(false);
    }
    for p in 0..partitions {
        let logs: Vec<(i32, Vec<u8>)> = cluster
            .brokers
            .iter()
            .map(|(id, b)| (*id, partition_bytes(&b.dir, topic, p, i64::MAX)))
            .collect();
        let (first, reference) = &logs[0];
        let count: i64 = {
            let mut n = 0;
            let mut pos = 0;
            while pos < reference.len() {
                let size = entry_size(&reference[pos..]).unwrap() as usize;
                let h = BatchHeader::parse(&reference[pos..pos + size]).unwrap();
                n += i64::from(h.records_count);
                pos += size;
            }
            n
        };
        assert_eq!(count, records, "{topic}-{p} on broker {first}");
        for (id, bytes) in &logs[1..] {
            assert!(
                bytes == reference,
                "{topic}-{p}: broker {id} ({} bytes) differs from broker {first} ({} bytes)",
                bytes.len(),
                reference.len()
            );
        }
    }
}

/// KIP-227 on the follower side: each follower keeps one incremental fetch session with each
/// leader (as Kafka's `FetchSessionHandler`), so the leaders' FetchSessionCache gauges count
/// two sessions holding every partition they lead, and every record still reaches every
/// replica.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn followers_fetch_through_incremental_sessions() {
    let metrics: BTreeMap<i32, u16> = [1, 2, 3].into_iter().map(|id| (id, free_port())).collect();
    let overrides: Vec<(i32, [String; 1])> = metrics
        .iter()
        .map(|(id, port)| (*id, [format!("metrics.port={port}")]))
        .collect();
    let Some(mut cluster) = Cluster::start_each(overrides, &[]) else {
        return;
    };
    cluster.wait_for_brokers(&[1, 2, 3]).await;
    let partitions = 6;
    create_and_produce(&mut cluster, "sessions", partitions, 3).await;
    let mut led: BTreeMap<i32, usize> = BTreeMap::new();
    for (_, (leader, _)) in leaders(cluster.port(1), "sessions").await {
        *led.entry(leader).or_default() += 1;
    }
    for (&leader, &count) in &led {
        let port = metrics[&leader];
        let want = (2.0, 2.0 * count as f64);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let seen = (
                gauge(
                    port,
                    "kafka_server_fetchsessioncache_numincrementalfetchsessions",
                )
                .await,
                gauge(
                    port,
                    "kafka_server_fetchsessioncache_numincrementalfetchpartitionscached",
                )
                .await,
            );
            if seen == (Some(want.0), Some(want.1)) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "leader {leader} of {count} partitions: sessions and partitions cached {seen:?}, \
                 want {want:?}\n{}",
                cluster.logs()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    assert_replicas_identical(&mut cluster, "sessions", partitions, 30);
}

/// A leader keeping no fetch sessions (`max.incremental.fetch.session.cache.slots=0`, like a
/// leader before KIP-227) answers with session id 0; followers then fetch in full every time
/// and replication works as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn followers_fetch_in_full_from_leaders_without_sessions() {
    let Some(mut cluster) =
        Cluster::start_with(&[1, 2, 3], &["max.incremental.fetch.session.cache.slots=0"])
    else {
        return;
    };
    cluster.wait_for_brokers(&[1, 2, 3]).await;
    create_and_produce(&mut cluster, "sessionless", 4, 3).await;
    assert_replicas_identical(&mut cluster, "sessionless", 4, 30);
}
