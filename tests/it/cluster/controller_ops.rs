//! The controller's work beyond topic creation and failover, on three brokers and a real
//! ZooKeeper: ISR changes reported by leaders reach every broker's metadata, a topic's own
//! `unclean.leader.election.enable`, controlled shutdown on SIGTERM, preferred leader election,
//! and partition reassignment through the API and through `/admin/reassign_partitions`.
//!
//! Topics here are written to ZooKeeper directly, as `kafka-topics.sh --zookeeper` does, so
//! that each test knows its replica assignment. Where a test needs an ISR to change, it writes
//! the partition state and the `/isr_change_notification` entry exactly as a leader does
//! (Kafka's `ZkAlterPartitionManager`): that is the controller's input, and what a leader does
//! to produce it is the replication data path's concern, tested with it.

use crate::common;
use crate::common::BoundedOutput;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::cluster::*;
use common::wire::Conn;
use kafka_protocol::messages::*;
use odradek::metadata::MetadataStore;
use odradek::metadata::store::{CreateMode, StoreError};
use odradek::metadata::zk::ZkStore;
use odradek::metadata::znodes::{
    ConfigZnode, PartitionListZnode, PartitionStateZnode, TopicPartitionJson, TopicZnode,
};

const NOT_CONTROLLER: i16 = 41;

/// Writes a topic as `kafka-topics.sh --zookeeper --create` does: its config, then its
/// assignment (version 1, no topic id: the controller gives it one).
async fn create_topic_in_zk(store: &ZkStore, topic: &str, assignment: &[(i32, &[i32])]) {
    let config = ConfigZnode {
        version: 1,
        config: BTreeMap::new(),
    };
    store
        .create(
            &format!("/config/topics/{topic}"),
            Some(serde_json::to_vec(&config).unwrap()),
            CreateMode::Persistent,
        )
        .await
        .unwrap();
    let z = TopicZnode {
        version: 1,
        partitions: assignment
            .iter()
            .map(|(p, r)| (p.to_string(), r.to_vec()))
            .collect(),
        adding_replicas: BTreeMap::new(),
        removing_replicas: BTreeMap::new(),
        topic_id: None,
    };
    store
        .create(
            &format!("/brokers/topics/{topic}"),
            Some(serde_json::to_vec(&z).unwrap()),
            CreateMode::Persistent,
        )
        .await
        .unwrap();
}

async fn state(store: &ZkStore, topic: &str, p: i32) -> Option<(PartitionStateZnode, i32)> {
    let path = format!("/brokers/topics/{topic}/partitions/{p}/state");
    let (data, stat) = store.get(&path).await.unwrap()?;
    Some((serde_json::from_slice(&data?).ok()?, stat.version))
}

async fn topic_znode(store: &ZkStore, topic: &str) -> TopicZnode {
    let (data, _) = store
        .get(&format!("/brokers/topics/{topic}"))
        .await
        .unwrap()
        .unwrap();
    serde_json::from_slice(&data.unwrap()).unwrap()
}

/// What a leader does when it changes a partition's ISR (IBP < 2.7-IV2): a conditional write
/// of the state with the new ISR, same leader and epoch, then a notification for the controller.
async fn leader_writes_isr(store: &ZkStore, topic: &str, p: i32, isr: &[i32]) {
    let path = format!("/brokers/topics/{topic}/partitions/{p}/state");
    for _ in 0..20 {
        let (mut s, version) = state(store, topic, p).await.unwrap();
        s.isr = isr.to_vec();
        match store
            .set(&path, Some(serde_json::to_vec(&s).unwrap()), Some(version))
            .await
        {
            Ok(_) => {
                let note = PartitionListZnode {
                    version: 1,
                    partitions: vec![TopicPartitionJson {
                        topic: topic.to_string(),
                        partition: p,
                    }],
                };
                store
                    .create(
                        "/isr_change_notification/isr_change_",
                        Some(serde_json::to_vec(&note).unwrap()),
                        CreateMode::PersistentSequential,
                    )
                    .await
                    .unwrap();
                return;
            }
            // The controller wrote meanwhile; a leader re-reads on its next LeaderAndIsr.
            Err(StoreError::BadVersion(_)) => tokio::time::sleep(Duration::from_millis(50)).await,
            Err(e) => panic!("{e}"),
        }
    }
    panic!("could not write the ISR of {topic}-{p}");
}

/// (leader, isr, replicas, error) of one partition in broker `port`'s Metadata.
async fn partition_md(port: u16, topic: &str, p: i32) -> Option<(i32, Vec<i32>, Vec<i32>, i16)> {
    let md = metadata(port, Some(&[topic])).await;
    let part = md
        .topics
        .iter()
        .flat_map(|t| t.partitions.iter())
        .find(|x| x.partition_index == p)?;
    Some((
        part.leader_id.0,
        part.isr_nodes.iter().map(|b| b.0).collect(),
        part.replica_nodes.iter().map(|b| b.0).collect(),
        part.error_code,
    ))
}

/// Until every broker in `ids` reports `topic`-`p` as `check` wants.
async fn wait_metadata(
    cluster: &Cluster,
    ids: &[i32],
    topic: &str,
    p: i32,
    what: &str,
    check: impl Fn(&(i32, Vec<i32>, Vec<i32>, i16)) -> bool,
) {
    for id in ids {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let now = partition_md(cluster.port(*id), topic, p).await;
            if now.as_ref().is_some_and(&check) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "broker {id}: {topic}-{p} {what}: timed out, it says {now:?}\n{}",
                cluster.logs()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

async fn controller_id(cluster: &Cluster, via: i32) -> i32 {
    metadata(cluster.port(via), Some(&[])).await.controller_id.0
}

/// A leader's ISR change reaches every broker: the controller reads the notification, re-reads
/// the state, sends UpdateMetadata to all, and removes the notification.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn isr_change_notification_updates_every_brokers_metadata() {
    let Some(cluster) = Cluster::start(&[1, 2, 3]) else {
        return;
    };
    cluster.wait_for_brokers(&[1, 2, 3]).await;
    let store = cluster.store().await;
    create_topic_in_zk(&store, "isr-note", &[(0, &[1, 2, 3])]).await;
    wait_metadata(
        &cluster,
        &[1, 2, 3],
        "isr-note",
        0,
        "has ISR [1,2,3]",
        |m| m.0 == 1 && m.1 == [1, 2, 3],
    )
    .await;

    leader_writes_isr(&store, "isr-note", 0, &[1, 2]).await;
    wait_metadata(&cluster, &[1, 2, 3], "isr-note", 0, "has ISR [1,2]", |m| {
        m.0 == 1 && m.1 == [1, 2] && m.2 == [1, 2, 3]
    })
    .await;
    let store_ref = &store;
    wait_until(
        Duration::from_secs(10),
        "the notification is deleted",
        || async move {
            store_ref
                .children("/isr_change_notification")
                .await
                .unwrap()
                .unwrap_or_default()
                .is_empty()
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
    // The controller only relayed the change: leader epoch and ISR are the leader's.
    let (s, _) = state(&store, "isr-note", 0).await.unwrap();
    assert_eq!((s.leader, s.leader_epoch, s.isr), (1, 0, vec![1, 2]));

    // And back: the follower rejoins.
    leader_writes_isr(&store, "isr-note", 0, &[1, 2, 3]).await;
    wait_metadata(
        &cluster,
        &[1, 2, 3],
        "isr-note",
        0,
        "has ISR [1,2,3] again",
        |m| m.1 == [1, 2, 3],
    )
    .await;
}

/// Sets one config of an entity as `kafka-configs.sh --zookeeper --alter --add-config` does:
/// the entity's znode, then a change notification.
async fn set_config(store: &ZkStore, entity_type: &str, name: &str, key: &str, value: &str) {
    let path = format!("/config/{entity_type}/{name}");
    let mut config = match store.get(&path).await.unwrap() {
        Some((Some(d), _)) => serde_json::from_slice::<ConfigZnode>(&d).unwrap(),
        _ => ConfigZnode {
            version: 1,
            config: BTreeMap::new(),
        },
    };
    config.config.insert(key.to_string(), value.to_string());
    let data = serde_json::to_vec(&config).unwrap();
    common::write_entity_config(store, &format!("{entity_type}/{name}"), Some(&data)).await;
}

/// `unclean.leader.election.enable` (false by default) lets an out-of-sync replica lead once
/// the only in-sync one is gone, alone in the ISR: set on a topic, only that topic's partition
/// comes back; set as a cluster-wide broker default, every topic without its own setting does;
/// a topic that says false stays offline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topic_level_unclean_leader_election() {
    let Some(mut cluster) = Cluster::start(&[1, 2, 3]) else {
        return;
    };
    cluster.wait_for_brokers(&[1, 2, 3]).await;
    let store = cluster.store().await;
    let topics = ["unclean-on", "unclean-off", "unclean-pinned"];
    for topic in topics {
        create_topic_in_zk(&store, topic, &[(0, &[2, 3])]).await;
        wait_metadata(&cluster, &[1], topic, 0, "is led by 2", |m| m.0 == 2).await;
        // Replica 3 fell behind.
        leader_writes_isr(&store, topic, 0, &[2]).await;
        wait_metadata(&cluster, &[1], topic, 0, "has ISR [2]", |m| m.1 == [2]).await;
    }
    set_config(
        &store,
        "topics",
        "unclean-pinned",
        "unclean.leader.election.enable",
        "false",
    )
    .await;
    cluster.brokers.get_mut(&2).unwrap().stop(true);
    let mut before = BTreeMap::new();
    for topic in topics {
        wait_metadata(&cluster, &[1, 3], topic, 0, "is offline", |m| {
            m.0 == -1 && m.3 == LEADER_NOT_AVAILABLE
        })
        .await;
        let (s, _) = state(&store, topic, 0).await.unwrap();
        // The last in-sync replica stays in the ISR: it has the data a clean election needs.
        assert_eq!((s.leader, s.isr.clone()), (-1, vec![2]), "{topic}");
        before.insert(topic, s);
    }

    set_config(
        &store,
        "topics",
        "unclean-on",
        "unclean.leader.election.enable",
        "true",
    )
    .await;
    wait_metadata(&cluster, &[1, 3], "unclean-on", 0, "is led by 3", |m| {
        m.0 == 3 && m.1 == [3] && m.3 == 0
    })
    .await;
    let (s, _) = state(&store, "unclean-on", 0).await.unwrap();
    assert_eq!(
        (s.leader, s.isr, s.leader_epoch),
        (3, vec![3], before["unclean-on"].leader_epoch + 1)
    );
    for topic in ["unclean-off", "unclean-pinned"] {
        let (s, _) = state(&store, topic, 0).await.unwrap();
        assert_eq!(
            (s.leader, s.isr),
            (-1, vec![2]),
            "{topic} has no override and must stay offline\n{}",
            cluster.logs()
        );
    }

    set_config(
        &store,
        "brokers",
        "<default>",
        "unclean.leader.election.enable",
        "true",
    )
    .await;
    wait_metadata(&cluster, &[1, 3], "unclean-off", 0, "is led by 3", |m| {
        m.0 == 3 && m.1 == [3]
    })
    .await;
    let (s, _) = state(&store, "unclean-pinned", 0).await.unwrap();
    assert_eq!(
        (s.leader, s.isr),
        (-1, vec![2]),
        "the topic's own false wins over the broker default\n{}",
        cluster.logs()
    );

    // An admin's unclean election ignores the topic's setting, as Kafka's does; a preferred
    // election needs the preferred replica alive and in sync.
    let controller = controller_id(&cluster, 1).await;
    let other = [1, 3].into_iter().find(|b| *b != controller).unwrap();
    let r = elect_leaders(cluster.port(other), 1, "unclean-pinned", 0).await;
    assert_eq!(r, NOT_CONTROLLER);
    let r = elect_leaders(cluster.port(controller), 0, "unclean-pinned", 0).await;
    assert_eq!(r, 80, "PREFERRED_LEADER_NOT_AVAILABLE");
    let r = elect_leaders(cluster.port(controller), 1, "unclean-on", 0).await;
    assert_eq!(r, 84, "ELECTION_NOT_NEEDED");
    let r = elect_leaders(cluster.port(controller), 1, "unclean-pinned", 0).await;
    assert_eq!(r, 0);
    wait_metadata(&cluster, &[1, 3], "unclean-pinned", 0, "is led by 3", |m| {
        m.0 == 3 && m.1 == [3]
    })
    .await;
}

/// SIGTERM on a broker that leads replicated partitions: before it stops, the controller moves
/// each leadership to the next in-sync replica (leader epoch + 1) and takes it out of every
/// ISR; a partition with a single replica does not hold its shutdown up. When it returns and
/// is in sync again, the leader-imbalance check gives it back the partition it is preferred
/// leader of.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_moves_leadership_and_the_preferred_leader_returns() {
    let Some(mut cluster) =
        Cluster::start_with(&[1, 2, 3], &["leader.imbalance.check.interval.seconds=2"])
    else {
        return;
    };
    cluster.wait_for_brokers(&[1, 2, 3]).await;
    let store = cluster.store().await;
    create_topic_in_zk(
        &store,
        "moving",
        &[(0, &[1, 2, 3]), (1, &[2, 3, 1]), (2, &[3, 1, 2])],
    )
    .await;
    create_topic_in_zk(&store, "single", &[(0, &[1])]).await;
    for p in 0..3 {
        wait_metadata(&cluster, &[1, 2, 3], "moving", p, "is led", |m| {
            m.0 >= 0 && m.1.len() == 3
        })
        .await;
    }
    wait_metadata(&cluster, &[1, 2, 3], "single", 0, "is led by 1", |m| {
        m.0 == 1
    })
    .await;
    let mut before = BTreeMap::new();
    for p in 0..3 {
        before.insert(p, state(&store, "moving", p).await.unwrap().0);
    }

    // ControlledShutdown is the controller's, for the current registration of a live broker.
    let controller = controller_id(&cluster, 1).await;
    let other = [1, 2, 3].into_iter().find(|b| *b != controller).unwrap();
    let epoch = store.get("/brokers/ids/2").await.unwrap().unwrap().1.czxid;
    let refused = [
        (other, 2, epoch, NOT_CONTROLLER),
        (controller, 2, epoch - 1, 77), // STALE_BROKER_EPOCH
        (controller, 9, -1, 8),         // BROKER_NOT_AVAILABLE
    ];
    for (to, broker, broker_epoch, error) in refused {
        let r = controlled_shutdown(cluster.port(to), broker, broker_epoch).await;
        assert_eq!(
            r.error_code, error,
            "to {to} for {broker}@{broker_epoch}: {r:?}"
        );
    }
    // Nothing moved.
    for p in 0..3 {
        assert_eq!(state(&store, "moving", p).await.unwrap().0, before[&p]);
    }
    assert_eq!(before[&0].leader, 1);

    let stopping = Instant::now();
    let status = cluster.brokers.get_mut(&1).unwrap().stop(false);
    let took = stopping.elapsed();
    assert!(status.is_some_and(|s| s.success()), "{}", cluster.logs());
    let log1 = cluster.brokers[&1].log_text();
    // The broker was told it follows now while it still ran: the controller acted on its
    // ControlledShutdown, not on its disappearance.
    assert!(
        log1.lines().any(|l| l.contains("became follower")
            && l.contains("moving")
            && l.contains("partition=0")),
        "broker 1 never became a follower of moving-0:\n{log1}"
    );
    assert!(
        log1.contains("no other in-sync replica"),
        "the single-replica partition should end the retries at once:\n{log1}"
    );
    // Kafka's defaults (3 attempts, 5 s apart) would take 10 s for a partition that can't move.
    assert!(took < Duration::from_secs(8), "shutdown took {took:?}");

    let s0 = state(&store, "moving", 0).await.unwrap().0;
    assert_eq!(
        (s0.leader, s0.leader_epoch, s0.isr.clone()),
        (2, before[&0].leader_epoch + 1, vec![2, 3])
    );
    for p in [1, 2] {
        let s = state(&store, "moving", p).await.unwrap().0;
        assert_eq!(s.leader, before[&p].leader, "moving-{p} keeps its leader");
        assert_eq!(s.leader_epoch, before[&p].leader_epoch + 1, "moving-{p}");
        assert!(!s.isr.contains(&1), "moving-{p} ISR {:?}", s.isr);
    }
    wait_metadata(&cluster, &[2, 3], "moving", 0, "is led by 2", |m| m.0 == 2).await;

    // Broker 1 returns; its followers catch up and the leaders add it back to the ISR.
    cluster.brokers.get_mut(&1).unwrap().restart(false);
    cluster.wait_for_brokers(&[1, 2, 3]).await;
    let store_ref = &store;
    for p in 0..3 {
        wait_until(
            Duration::from_secs(30),
            "the leader adds broker 1 back to the ISR",
            || async move {
                state(store_ref, "moving", p)
                    .await
                    .is_some_and(|(s, _)| s.isr.contains(&1))
            },
        )
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
    }
    wait_metadata(
        &cluster,
        &[1, 2, 3],
        "moving",
        0,
        "is led by 1 again",
        |m| m.0 == 1,
    )
    .await;
    let s0 = state(&store, "moving", 0).await.unwrap().0;
    assert_eq!(s0.leader_epoch, before[&0].leader_epoch + 2);
    for p in [1, 2] {
        assert_eq!(
            state(&store, "moving", p).await.unwrap().0.leader,
            before[&p].leader,
            "moving-{p} was led by its preferred replica throughout"
        );
    }

    // A broker that is not the controller asks it over the network.
    let controller = controller_id(&cluster, 1).await;
    let b = if controller == 2 { 3 } else { 2 };
    let p = b - 1; // moving-1 is led by 2, moving-2 by 3
    wait_metadata(&cluster, &[1, 2, 3], "moving", p, "has a full ISR", |m| {
        m.0 == b && m.1.len() == 3
    })
    .await;
    let before = state(&store, "moving", p).await.unwrap().0;
    let status = cluster.brokers.get_mut(&b).unwrap().stop(false);
    assert!(status.is_some_and(|s| s.success()), "{}", cluster.logs());
    let log = cluster.brokers[&b].log_text();
    assert!(
        log.contains("controlled shutdown succeeded"),
        "broker {b} (controller {controller}):\n{log}"
    );
    let s = state(&store, "moving", p).await.unwrap().0;
    assert_ne!(s.leader, b);
    assert_eq!(s.leader_epoch, before.leader_epoch + 1);
    assert!(!s.isr.contains(&b), "{:?}", s.isr);
}

/// A leader writes an ISR expansion itself, and the controller hears of it only seconds later
/// (the change notifications linger 5 s). Right after a broker rejoined the ISRs, an election
/// of it as preferred leader must succeed, and when it shuts down it must be taken out of the
/// ISRs, or acks=all would wait for it until the leader's lag check
/// (`replica.lag.time.max.ms`, 30 s) drops it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_that_just_rejoined_the_isr_is_elected_and_shut_down_at_once() {
    let Some((mut cluster, store, controller, [stays, returns])) = cluster_and_controller().await
    else {
        return;
    };
    // Partition 1 prefers the broker that goes away and comes back.
    create_topic_in_zk(
        &store,
        "rejoined",
        &[(0, &[stays, returns]), (1, &[returns, stays])],
    )
    .await;
    for p in 0..2 {
        wait_metadata(&cluster, &[1, 2, 3], "rejoined", p, "is led", |m| {
            m.0 >= 0 && m.1.len() == 2
        })
        .await;
    }
    let status = cluster.brokers.get_mut(&returns).unwrap().stop(false);
    assert!(status.is_some_and(|s| s.success()), "{}", cluster.logs());
    for p in 0..2 {
        let s = state(&store, "rejoined", p).await.unwrap().0;
        assert_eq!((s.leader, s.isr), (stays, vec![stays]));
    }
    cluster.brokers.get_mut(&returns).unwrap().restart(false);
    let store_ref = &store;
    wait_until(
        Duration::from_secs(30),
        "the leader adds the returning broker back to both ISRs",
        || async move {
            let mut both = true;
            for p in 0..2 {
                both &= state(store_ref, "rejoined", p)
                    .await
                    .is_some_and(|(s, _)| s.isr.contains(&returns));
            }
            both
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
    assert_eq!(
        elect_leaders(cluster.port(controller), 0, "rejoined", 1).await,
        0,
        "{}",
        cluster.logs()
    );
    assert_eq!(
        state(&store, "rejoined", 1).await.unwrap().0.leader,
        returns
    );
    let status = cluster.brokers.get_mut(&returns).unwrap().stop(false);
    assert!(status.is_some_and(|s| s.success()), "{}", cluster.logs());
    for p in 0..2 {
        let s = state(&store, "rejoined", p).await.unwrap().0;
        assert_eq!(
            (s.leader, s.isr.clone()),
            (stays, vec![stays]),
            "rejoined-{p}\n{}",
            cluster.logs()
        );
    }
}

/// ElectLeaders v2 (0 preferred, 1 unclean) for one partition: its error code.
async fn elect_leaders(port: u16, election_type: i8, topic: &str, p: i32) -> i16 {
    let mut c = Conn::connect(port).await;
    let mut tp = elect_leaders_request::TopicPartitions::default();
    tp.topic = name(topic);
    tp.partitions = vec![p];
    let mut req = ElectLeadersRequest::default();
    req.election_type = election_type;
    req.topic_partitions = Some(vec![tp]);
    req.timeout_ms = 10_000;
    match c
        .call(ApiKey::ElectLeaders, 2, RequestKind::ElectLeaders(req))
        .await
    {
        ResponseKind::ElectLeaders(r) => {
            assert_eq!(r.error_code, 0, "{r:?}");
            r.replica_election_results[0].partition_result[0].error_code
        }
        other => panic!("{other:?}"),
    }
}

async fn controlled_shutdown(
    port: u16,
    broker: i32,
    broker_epoch: i64,
) -> ControlledShutdownResponse {
    let mut c = Conn::connect(port).await;
    let mut req = ControlledShutdownRequest::default();
    req.broker_id = BrokerId(broker);
    req.broker_epoch = broker_epoch;
    match c
        .call(
            ApiKey::ControlledShutdown,
            3,
            RequestKind::ControlledShutdown(req),
        )
        .await
    {
        ResponseKind::ControlledShutdown(r) => r,
        other => panic!("{other:?}"),
    }
}

async fn alter_reassignment(
    port: u16,
    topic: &str,
    p: i32,
    replicas: Option<&[i32]>,
) -> AlterPartitionReassignmentsResponse {
    let mut c = Conn::connect(port).await;
    let mut rp = alter_partition_reassignments_request::ReassignablePartition::default();
    rp.partition_index = p;
    rp.replicas = replicas.map(|r| r.iter().copied().map(BrokerId).collect());
    let mut rt = alter_partition_reassignments_request::ReassignableTopic::default();
    rt.name = name(topic);
    rt.partitions = vec![rp];
    let mut req = AlterPartitionReassignmentsRequest::default();
    req.timeout_ms = 30_000;
    req.topics = vec![rt];
    match c
        .call(
            ApiKey::AlterPartitionReassignments,
            0,
            RequestKind::AlterPartitionReassignments(req),
        )
        .await
    {
        ResponseKind::AlterPartitionReassignments(r) => r,
        other => panic!("{other:?}"),
    }
}

/// topic -> partition -> (replicas, adding, removing) from ListPartitionReassignments (all).
async fn list_reassignments(
    port: u16,
) -> (i16, BTreeMap<(String, i32), (Vec<i32>, Vec<i32>, Vec<i32>)>) {
    let mut c = Conn::connect(port).await;
    let req = ListPartitionReassignmentsRequest::default();
    let r = match c
        .call(
            ApiKey::ListPartitionReassignments,
            0,
            RequestKind::ListPartitionReassignments(req),
        )
        .await
    {
        ResponseKind::ListPartitionReassignments(r) => r,
        other => panic!("{other:?}"),
    };
    let ids = |v: &[BrokerId]| v.iter().map(|b| b.0).collect::<Vec<i32>>();
    let listed = r
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(move |p| {
                (
                    (t.name.0.to_string(), p.partition_index),
                    (
                        ids(&p.replicas),
                        ids(&p.adding_replicas),
                        ids(&p.removing_replicas),
                    ),
                )
            })
        })
        .collect();
    (r.error_code, listed)
}

fn hosts_log(cluster: &Cluster, id: i32, topic: &str, p: i32) -> bool {
    cluster.brokers[&id]
        .dir
        .join("logs")
        .join(format!("{topic}-{p}"))
        .is_dir()
}

/// A move of partition 0 from [a, b] to [b, c] (`from`, `to`), with `c` not the controller:
/// the tests pause `c` to hold the reassignment in progress, and a paused controller could
/// not decide anything.
fn move_plan(controller: i32) -> ([i32; 2], [i32; 2]) {
    let add = [1, 2, 3].into_iter().find(|b| *b != controller).unwrap();
    let rest: Vec<i32> = [1, 2, 3].into_iter().filter(|b| *b != add).collect();
    ([rest[0], rest[1]], [rest[1], add])
}

fn sorted(ids: &[i32]) -> Vec<i32> {
    let mut v = ids.to_vec();
    v.sort_unstable();
    v
}

/// The full replica set while moving from `from` to `to`, as Kafka records it: the target
/// first, then the origin replicas being removed.
fn in_flight(from: &[i32; 2], to: &[i32; 2]) -> Vec<i32> {
    let mut v = to.to_vec();
    v.extend(from.iter().filter(|r| !to.contains(r)));
    v
}

/// Three brokers, the one they elected controller and the other two.
async fn cluster_and_controller() -> Option<(Cluster, ZkStore, i32, [i32; 2])> {
    let cluster = Cluster::start(&[1, 2, 3])?;
    cluster.wait_for_brokers(&[1, 2, 3]).await;
    let store = cluster.store().await;
    let controller = controller_id(&cluster, 1).await;
    let others: Vec<i32> = [1, 2, 3].into_iter().filter(|b| *b != controller).collect();
    Some((cluster, store, controller, [others[0], others[1]]))
}

/// Three brokers whose sessions outlast the pause of a replica (slow, not dead), `extra`
/// overrides on each, and a `move_plan` for the controller they elected.
async fn cluster_for_moves(extra: &[&str]) -> Option<(Cluster, ZkStore, [i32; 2], [i32; 2])> {
    let mut overrides = vec!["zookeeper.session.timeout.ms=30000"];
    overrides.extend_from_slice(extra);
    let cluster = Cluster::start_with(&[1, 2, 3], &overrides)?;
    cluster.wait_for_brokers(&[1, 2, 3]).await;
    let store = cluster.store().await;
    let (from, to) = move_plan(controller_id(&cluster, 1).await);
    Some((cluster, store, from, to))
}

/// Creates `topic` with partition 0 on `from`, and waits until every broker sees it led by
/// `from[0]` with both replicas in sync.
async fn create_on(cluster: &Cluster, store: &ZkStore, topic: &str, from: [i32; 2]) {
    create_topic_in_zk(store, topic, &[(0, &from)]).await;
    wait_metadata(cluster, &[1, 2, 3], topic, 0, "is led", |m| {
        m.0 == from[0] && sorted(&m.1) == sorted(&from)
    })
    .await;
}

/// Waits until the reassignment of `topic`-0 from `from` to `to` has completed: assignment,
/// leader and ISR in ZooKeeper and every broker's metadata, the removed replica's log deleted.
async fn wait_reassigned(
    cluster: &Cluster,
    store: &ZkStore,
    topic: &str,
    from: [i32; 2],
    to: [i32; 2],
) {
    wait_until(
        Duration::from_secs(30),
        &format!("{topic} is assigned to {to:?}"),
        || async move {
            let z = topic_znode(store, topic).await;
            z.partitions.get("0") == Some(&to.to_vec())
                && z.adding_replicas.is_empty()
                && z.removing_replicas.is_empty()
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
    let s = state(store, topic, 0).await.unwrap().0;
    assert_eq!(
        (s.leader, sorted(&s.isr)),
        (to[0], sorted(&to)),
        "{}",
        cluster.logs()
    );
    wait_metadata(
        cluster,
        &[1, 2, 3],
        topic,
        0,
        &format!("has replicas {to:?}"),
        |m| m.0 == to[0] && m.2 == to && sorted(&m.1) == sorted(&to),
    )
    .await;
    let removed = from[0];
    wait_until(
        Duration::from_secs(10),
        &format!("broker {removed} deleted its replica of {topic}-0"),
        || async move { !hosts_log(cluster, removed, topic, 0) },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
    assert!(hosts_log(cluster, to[1], topic, 0));
}

/// Acceptance 6 (controller side): a partition moves from [a, b] to [b, c] through
/// AlterPartitionReassignments, and again through `/admin/reassign_partitions` as Kafka's
/// `kafka-reassign-partitions.sh --zookeeper` writes it. While the new replica is paused the
/// reassignment stays in progress (recorded in the topic znode, listed, the old replica kept,
/// the partition writable); resumed, it catches up through replication and the old replica
/// is dropped. A reassignment cancelled while in progress removes the replica it added.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reassignment_through_the_api_and_zookeeper_waits_for_the_new_replica() {
    let Some((cluster, store, from, to)) = cluster_for_moves(&[]).await else {
        return;
    };
    let controller = controller_id(&cluster, 1).await;
    let add = to[1];
    create_on(&cluster, &store, "moved", from).await;
    let other = [1, 2, 3].into_iter().find(|b| *b != controller).unwrap();

    // Only the controller takes reassignments.
    let r = alter_reassignment(cluster.port(other), "moved", 0, Some(&to)).await;
    assert_eq!(r.error_code, NOT_CONTROLLER);
    assert_eq!(
        list_reassignments(cluster.port(other)).await.0,
        NOT_CONTROLLER
    );
    // Invalid targets are refused per partition.
    let r = alter_reassignment(cluster.port(controller), "moved", 0, Some(&[add, add])).await;
    assert_eq!(r.responses[0].partitions[0].error_code, 39, "{r:?}");
    let r = alter_reassignment(cluster.port(controller), "moved", 0, Some(&[add, 9])).await;
    assert_eq!(r.responses[0].partitions[0].error_code, 39, "{r:?}");
    let r = alter_reassignment(cluster.port(controller), "moved", 0, None).await;
    assert_eq!(r.responses[0].partitions[0].error_code, 85, "{r:?}");
    let r = alter_reassignment(cluster.port(controller), "nonexistent", 0, Some(&[1])).await;
    assert_eq!(r.responses[0].partitions[0].error_code, 3, "{r:?}");

    assert_eq!(
        produce_records(cluster.port(from[0]), "moved", 0, 10).await,
        0
    );
    let before = state(&store, "moved", 0).await.unwrap().0;
    let paused = cluster.brokers[&add].pause();
    let r = alter_reassignment(cluster.port(controller), "moved", 0, Some(&to)).await;
    assert_eq!(
        (r.error_code, r.responses[0].partitions[0].error_code),
        (0, 0),
        "{r:?}"
    );
    // In progress: the full replica set with what is added and removed, in the topic znode
    // and in ListPartitionReassignments; the leader took the new replica set (epoch + 1).
    let z = topic_znode(&store, "moved").await;
    assert_eq!(z.partitions["0"], in_flight(&from, &to));
    assert_eq!(z.adding_replicas["0"], vec![add]);
    assert_eq!(z.removing_replicas["0"], vec![from[0]]);
    let (code, listed) = list_reassignments(cluster.port(controller)).await;
    assert_eq!(code, 0);
    assert_eq!(
        listed.get(&("moved".to_string(), 0)),
        Some(&(in_flight(&from, &to), vec![add], vec![from[0]]))
    );
    let s = state(&store, "moved", 0).await.unwrap().0;
    assert_eq!(
        (s.leader, s.leader_epoch, sorted(&s.isr)),
        (from[0], before.leader_epoch + 1, sorted(&from))
    );
    // The partition stays writable with the old ISR, and nothing is dropped while the new
    // replica is out of sync.
    for _ in 0..4 {
        assert_eq!(
            produce_records(cluster.port(from[0]), "moved", 0, 10).await,
            0
        );
    }
    assert!(hosts_log(&cluster, from[0], "moved", 0));
    assert_eq!(
        topic_znode(&store, "moved").await.partitions["0"],
        in_flight(&from, &to)
    );

    // Resumed, the new replica catches up and joins the ISR: the move completes.
    paused.resume();
    wait_reassigned(&cluster, &store, "moved", from, to).await;
    assert!(
        list_reassignments(cluster.port(controller))
            .await
            .1
            .is_empty()
    );
    let consumed = consume_all(&cluster.bootstrap(to[1]), "moved");
    assert_eq!(consumed.len(), 50, "{}", cluster.logs());

    // The same through the legacy znode.
    create_on(&cluster, &store, "moved-zk", from).await;
    let paused = cluster.brokers[&add].pause();
    store
        .create(
            "/admin/reassign_partitions",
            Some(
                format!(
                    r#"{{"version":1,"partitions":[{{"topic":"moved-zk","partition":0,"replicas":[{},{}]}}]}}"#,
                    to[0], to[1]
                )
                .into_bytes(),
            ),
            CreateMode::Persistent,
        )
        .await
        .unwrap();
    let store_ref = &store;
    wait_until(
        Duration::from_secs(10),
        "the reassignment is recorded in the topic",
        || async move {
            topic_znode(store_ref, "moved-zk")
                .await
                .adding_replicas
                .get("0")
                == Some(&vec![add])
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
    // Kafka's tool reads this znode to tell that the move is still under way.
    assert!(
        store
            .get("/admin/reassign_partitions")
            .await
            .unwrap()
            .is_some()
    );
    paused.resume();
    wait_reassigned(&cluster, &store, "moved-zk", from, to).await;
    wait_until(
        Duration::from_secs(10),
        "/admin/reassign_partitions is removed",
        || async move {
            store_ref
                .get("/admin/reassign_partitions")
                .await
                .unwrap()
                .is_none()
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));

    // A reassignment cancelled before it completes: the added replica goes, the origin
    // replicas stay (in target-first order, as in Kafka).
    create_on(&cluster, &store, "cancelled", from).await;
    let paused = cluster.brokers[&add].pause();
    let r = alter_reassignment(cluster.port(controller), "cancelled", 0, Some(&to)).await;
    assert_eq!(r.responses[0].partitions[0].error_code, 0, "{r:?}");
    let r = alter_reassignment(cluster.port(controller), "cancelled", 0, None).await;
    assert_eq!(r.responses[0].partitions[0].error_code, 0, "{r:?}");
    let z = topic_znode(&store, "cancelled").await;
    assert_eq!(z.partitions["0"], vec![from[1], from[0]]);
    assert!(
        z.adding_replicas.is_empty() && z.removing_replicas.is_empty(),
        "{z:?}"
    );
    let s = state(&store, "cancelled", 0).await.unwrap().0;
    assert_eq!((s.leader, sorted(&s.isr)), (from[0], sorted(&from)));
    assert!(
        list_reassignments(cluster.port(controller))
            .await
            .1
            .is_empty()
    );
    // Resumed, the replica that was being added learns it was dropped: its metadata shows
    // the origin replicas, which the controller sends after the StopReplica that deletes it.
    paused.resume();
    wait_metadata(
        &cluster,
        &[add],
        "cancelled",
        0,
        "is back on its origin",
        |m| m.2 == [from[1], from[0]],
    )
    .await;
    let cluster_ref = &cluster;
    wait_until(
        Duration::from_secs(10),
        &format!("broker {add} has no replica of cancelled-0"),
        || async move { !hosts_log(cluster_ref, add, "cancelled", 0) },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
}

/// Runs `ReassignAdmin` (the Java admin client) with `args`; its output lines.
fn java_admin(cp: &str, bootstrap: &str, args: &[&str], cluster: &Cluster) -> String {
    let args: Vec<&str> = [bootstrap]
        .into_iter()
        .chain(args.iter().copied())
        .collect();
    common::run_java(cp, "ReassignAdmin", &args, || cluster.logs())
}

fn java_admin_classpath(classes: &std::path::Path) -> Option<String> {
    let cp = common::compile_java("ReassignAdmin", classes);
    if cp.is_none() {
        common::missing_tool("the kafka-clients 3.9 jars (scripts/java-deps.sh)");
    }
    cp
}

/// The Java admin client drives reassignment (alter, list, cancel) and preferred leader
/// election through whichever broker it bootstraps from; `/admin/preferred_replica_election`
/// (Kafka's older tool) does the same election.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn java_admin_client_reassigns_and_elects_preferred_leaders() {
    let classes = tempfile::tempdir().unwrap();
    let Some(cp) = java_admin_classpath(classes.path()) else {
        return;
    };
    // Elections here are the admin's: the imbalance check must not make them first.
    let Some((cluster, store, from, to)) =
        cluster_for_moves(&["auto.leader.rebalance.enable=false"]).await
    else {
        return;
    };
    // Not through the replica about to be paused, which would not answer.
    let bootstrap = cluster.bootstrap(from[1]);
    create_on(&cluster, &store, "java-moved", from).await;

    let paused = cluster.brokers[&to[1]].pause();
    let target = format!("{},{}", to[0], to[1]);
    let out = java_admin(
        &cp,
        &bootstrap,
        &["reassign", "java-moved", "0", &target],
        &cluster,
    );
    assert!(out.contains("reassigning"), "{out}");
    let out = java_admin(&cp, &bootstrap, &["list"], &cluster);
    let [a, b, c] = in_flight(&from, &to)[..] else {
        unreachable!()
    };
    assert!(
        out.contains(&format!(
            "reassignment java-moved-0 replicas=[{a}, {b}, {c}] adding=[{}] removing=[{}]",
            to[1], from[0]
        )),
        "{out}"
    );
    paused.resume();
    wait_reassigned(&cluster, &store, "java-moved", from, to).await;
    let out = java_admin(&cp, &bootstrap, &["list"], &cluster);
    assert!(out.contains("listed 0"), "{out}");
    let out = java_admin(&cp, &bootstrap, &["describe", "java-moved"], &cluster);
    assert!(
        out.contains(&format!(
            "partition 0 leader={} replicas=[{}, {}]",
            to[0], to[0], to[1]
        )),
        "{out}"
    );
    let out = java_admin(&cp, &bootstrap, &["cancel", "java-moved", "0"], &cluster);
    assert!(
        out.contains("error NoReassignmentInProgressException"),
        "{out}"
    );

    // Reordering the replicas makes 2 the preferred leader of partitions 1 leads.
    create_topic_in_zk(&store, "java-pref", &[(0, &[1, 2]), (1, &[1, 2])]).await;
    for p in 0..2 {
        wait_metadata(&cluster, &[1, 2, 3], "java-pref", p, "is led by 1", |m| {
            m.0 == 1 && m.1 == [1, 2]
        })
        .await;
        let out = java_admin(
            &cp,
            &bootstrap,
            &["reassign", "java-pref", &p.to_string(), "2,1"],
            &cluster,
        );
        assert!(out.contains("reassigning"), "{out}");
    }
    let store_ref = &store;
    wait_until(
        Duration::from_secs(10),
        "java-pref's preferred replica is 2",
        || async move {
            let z = topic_znode(store_ref, "java-pref").await;
            z.partitions.values().all(|r| r == &vec![2, 1]) && z.adding_replicas.is_empty()
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
    assert_eq!(state(&store, "java-pref", 0).await.unwrap().0.leader, 1);

    let out = java_admin(
        &cp,
        &bootstrap,
        &["elect-preferred", "java-pref", "0"],
        &cluster,
    );
    assert!(out.contains("elected"), "{out}");
    wait_metadata(&cluster, &[1, 2, 3], "java-pref", 0, "is led by 2", |m| {
        m.0 == 2
    })
    .await;
    let out = java_admin(
        &cp,
        &bootstrap,
        &["elect-preferred", "java-pref", "0"],
        &cluster,
    );
    assert!(out.contains("error ElectionNotNeededException"), "{out}");

    // Partition 1 through the znode Kafka's kafka-preferred-replica-election.sh writes.
    store
        .create(
            "/admin/preferred_replica_election",
            Some(br#"{"version":1,"partitions":[{"topic":"java-pref","partition":1}]}"#.to_vec()),
            CreateMode::Persistent,
        )
        .await
        .unwrap();
    wait_metadata(&cluster, &[1, 2, 3], "java-pref", 1, "is led by 2", |m| {
        m.0 == 2
    })
    .await;
    wait_until(
        Duration::from_secs(10),
        "/admin/preferred_replica_election is removed",
        || async move {
            store_ref
                .get("/admin/preferred_replica_election")
                .await
                .unwrap()
                .is_none()
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));

    // Every partition has its preferred leader now: an election over all partitions (no list)
    // reports nothing, as Kafka leaves out the ones that needed none.
    let mut c = Conn::connect(cluster.port(controller_id(&cluster, 1).await)).await;
    let mut req = ElectLeadersRequest::default();
    req.election_type = 0;
    req.topic_partitions = None;
    req.timeout_ms = 10_000;
    match c
        .call(ApiKey::ElectLeaders, 2, RequestKind::ElectLeaders(req))
        .await
    {
        ResponseKind::ElectLeaders(r) => {
            assert_eq!(r.error_code, 0);
            assert!(r.replica_election_results.is_empty(), "{r:?}");
        }
        other => panic!("{other:?}"),
    }
}

/// Acceptance 6 with its data: records written before a reassignment from [1,2] to [2,3] are
/// all there afterwards, read from the new leader: the new replica caught up through
/// replication before the old ones were dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reassignment_keeps_every_record() {
    let classes = tempfile::tempdir().unwrap();
    let Some(cp) = java_admin_classpath(classes.path()) else {
        return;
    };
    let Some(cluster) = Cluster::start(&[1, 2, 3]) else {
        return;
    };
    cluster.wait_for_brokers(&[1, 2, 3]).await;
    let store = cluster.store().await;
    create_topic_in_zk(&store, "kept", &[(0, &[1, 2])]).await;
    wait_metadata(&cluster, &[1, 2, 3], "kept", 0, "is led by 1", |m| m.0 == 1).await;
    for _ in 0..10 {
        assert_eq!(produce_records(cluster.port(1), "kept", 0, 10).await, 0);
    }
    let out = java_admin(
        &cp,
        &cluster.bootstrap(1),
        &["reassign", "kept", "0", "2,3"],
        &cluster,
    );
    assert!(out.contains("reassigning"), "{out}");
    wait_reassigned(&cluster, &store, "kept", [1, 2], [2, 3]).await;
    let consumed = consume_all(&cluster.bootstrap(3), "kept");
    assert_eq!(consumed.len(), 100, "{}", cluster.logs());
}

/// Runs a Kafka 2.4.1 tool from `home`; (success, stdout + stderr).
fn kafka_tool(home: &std::path::Path, tool: &str, args: &[&str]) -> (bool, String) {
    let out = std::process::Command::new(home.join("bin").join(tool))
        .args(args)
        .bounded_output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// Acceptance 6 through Kafka 2.4.1's own tools, which write ZooKeeper directly:
/// `kafka-reassign-partitions.sh --zookeeper` moves a partition from [1,2] to [2,3] and
/// `--verify` reports it complete; `kafka-preferred-replica-election.sh --zookeeper` gives the
/// partition back to its preferred replica.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_241_tools_reassign_and_elect_through_zookeeper() {
    let Some(home) = common::kafka_home() else {
        eprintln!(
            "SKIPPED: no Kafka 2.4.1 distribution in KAFKA_HOME or ~/.cache/odradek/kafka_2.13-2.4.1"
        );
        return;
    };
    if !home.join("libs/kafka_2.13-2.4.1.jar").exists() {
        eprintln!(
            "SKIPPED: this Kafka 2.4.1 distribution lacks the broker jar \
             (libs/kafka_2.13-2.4.1.jar) that holds kafka-reassign-partitions.sh's and \
             kafka-preferred-replica-election.sh's classes"
        );
        return;
    }
    let Some((cluster, store, from, to)) =
        cluster_for_moves(&["auto.leader.rebalance.enable=false"]).await
    else {
        return;
    };
    create_on(&cluster, &store, "tool-moved", from).await;
    let plan = cluster._tmp.path().join("plan.json");
    std::fs::write(
        &plan,
        format!(
            r#"{{"version":1,"partitions":[{{"topic":"tool-moved","partition":0,"replicas":[{},{}]}}]}}"#,
            to[0], to[1]
        ),
    )
    .unwrap();
    let plan = plan.display().to_string();
    let zk = cluster.connect.clone();
    let reassign = |action: &str| {
        kafka_tool(
            &home,
            "kafka-reassign-partitions.sh",
            &[
                "--zookeeper",
                &zk,
                "--reassignment-json-file",
                &plan,
                action,
            ],
        )
    };
    let paused = cluster.brokers[&to[1]].pause();
    let (ok, out) = reassign("--execute");
    assert!(
        ok && out.contains("Successfully started reassignment"),
        "{out}"
    );
    let store_ref = &store;
    wait_until(
        Duration::from_secs(10),
        "the reassignment is under way",
        || async move {
            topic_znode(store_ref, "tool-moved")
                .await
                .adding_replicas
                .get("0")
                == Some(&vec![to[1]])
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
    let (_, out) = reassign("--verify");
    assert!(out.contains("is still in progress"), "{out}");
    paused.resume();
    wait_reassigned(&cluster, &store, "tool-moved", from, to).await;
    let (_, out) = reassign("--verify");
    assert!(
        out.contains("Reassignment of partition tool-moved-0 completed successfully"),
        "{out}"
    );

    // The first target replica leads now; make the other one preferred, then give it the
    // leadership with the tool.
    let r = alter_reassignment(
        cluster.port(controller_id(&cluster, 1).await),
        "tool-moved",
        0,
        Some(&[to[1], to[0]]),
    )
    .await;
    assert_eq!(r.responses[0].partitions[0].error_code, 0, "{r:?}");
    wait_until(
        Duration::from_secs(10),
        "the order is swapped",
        || async move {
            topic_znode(store_ref, "tool-moved")
                .await
                .partitions
                .get("0")
                == Some(&vec![to[1], to[0]])
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
    assert_eq!(
        state(&store, "tool-moved", 0).await.unwrap().0.leader,
        to[0]
    );
    let (ok, out) = kafka_tool(
        &home,
        "kafka-preferred-replica-election.sh",
        &["--zookeeper", &zk],
    );
    assert!(ok, "{out}");
    wait_metadata(
        &cluster,
        &[1, 2, 3],
        "tool-moved",
        0,
        "is led by its preferred",
        |m| m.0 == to[1],
    )
    .await;
}

/// A reassignment is recorded in the topic znode before anything else, so a new controller
/// takes it over: with the new replica paused, the controller dies (kill -9) mid-way; its
/// successor lists the reassignment and finishes it once the resumed replica, which lost its
/// session meanwhile and registers again, has caught up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reassignment_survives_a_controller_failover() {
    let Some((mut cluster, store, controller, [keep, add])) = cluster_and_controller().await else {
        return;
    };
    // From [keep, controller] to [keep, add].
    create_topic_in_zk(&store, "handed-over", &[(0, &[keep, controller])]).await;
    wait_metadata(&cluster, &[1, 2, 3], "handed-over", 0, "is led", |m| {
        m.0 == keep && m.1.len() == 2
    })
    .await;
    for _ in 0..5 {
        assert_eq!(
            produce_records(cluster.port(keep), "handed-over", 0, 10).await,
            0
        );
    }
    let paused = cluster.brokers[&add].pause();
    let r = alter_reassignment(
        cluster.port(controller),
        "handed-over",
        0,
        Some(&[keep, add]),
    )
    .await;
    assert_eq!(r.responses[0].partitions[0].error_code, 0, "{r:?}");
    let z = topic_znode(&store, "handed-over").await;
    assert_eq!(z.adding_replicas["0"], vec![add]);
    assert_eq!(z.removing_replicas["0"], vec![controller]);

    cluster.brokers.get_mut(&controller).unwrap().stop(true);
    let port = cluster.port(keep);
    wait_until(
        Duration::from_millis(SESSION_TIMEOUT_MS + 10_000),
        "another broker is controller",
        || async move {
            let c = metadata(port, Some(&[])).await.controller_id.0;
            c >= 0 && c != controller
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
    let new_controller = controller_id(&cluster, keep).await;
    assert_eq!(new_controller, keep, "the paused broker cannot be elected");
    let (code, listed) = list_reassignments(cluster.port(new_controller)).await;
    assert_eq!(code, 0);
    assert_eq!(
        listed.get(&("handed-over".to_string(), 0)),
        Some(&(vec![keep, add, controller], vec![add], vec![controller])),
        "{}",
        cluster.logs()
    );
    // The dead broker left the ISR; the move waits for the paused replica.
    let store_ref = &store;
    wait_until(
        Duration::from_secs(10),
        "the dead replica left the ISR",
        || async move { state(store_ref, "handed-over", 0).await.unwrap().0.isr == vec![keep] },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
    assert!(
        topic_znode(&store, "handed-over")
            .await
            .adding_replicas
            .contains_key("0")
    );

    paused.resume();
    wait_until(
        Duration::from_secs(40),
        "the reassignment completes",
        || async move {
            let z = topic_znode(store_ref, "handed-over").await;
            z.partitions.get("0") == Some(&vec![keep, add]) && z.adding_replicas.is_empty()
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
    wait_metadata(
        &cluster,
        &[keep, add],
        "handed-over",
        0,
        "is on its new replicas",
        |m| m.0 == keep && m.2 == [keep, add] && sorted(&m.1) == sorted(&[keep, add]),
    )
    .await;
    // The new replica has every record: with the leader gone it leads, and serves them all.
    cluster.brokers.get_mut(&keep).unwrap().stop(true);
    wait_metadata(
        &cluster,
        &[add],
        "handed-over",
        0,
        "is led by the new replica",
        |m| m.0 == add,
    )
    .await;
    let consumed = consume_all(&cluster.bootstrap(add), "handed-over");
    assert_eq!(consumed.len(), 50, "{}", cluster.logs());
}

/// kill -9 of the controller: its successor takes each of the dead broker's replicas offline
/// exactly once (one leader epoch bump, written in the new controller epoch) and leaves every
/// other partition as it was; both survivors then report what ZooKeeper holds. The successor
/// decides the dead broker's partitions before reading the others' states, so this checks that
/// the two passes neither miss nor repeat a partition.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controller_failover_takes_the_dead_replicas_offline_once() {
    let Some((mut cluster, store, dead, [a, b])) = cluster_and_controller().await else {
        return;
    };
    create_topic_in_zk(
        &store,
        "solo",
        &[(0, &[dead]), (1, &[a]), (2, &[b]), (3, &[dead])],
    )
    .await;
    create_topic_in_zk(
        &store,
        "pair",
        &[
            (0, &[dead, a]),
            (1, &[a, dead]),
            (2, &[a, b]),
            (3, &[b, dead]),
        ],
    )
    .await;
    for topic in ["solo", "pair"] {
        for p in 0..4 {
            wait_metadata(&cluster, &[a, b], topic, p, "is led", |m| {
                m.0 >= 0 && m.1.len() == m.2.len()
            })
            .await;
        }
    }
    let mut before = BTreeMap::new();
    for topic in ["solo", "pair"] {
        for p in 0..4 {
            before.insert((topic, p), state(&store, topic, p).await.unwrap());
        }
    }
    let epoch = controller_epoch(&store).await;

    cluster.brokers.get_mut(&dead).unwrap().stop(true);
    let log = cluster.brokers[&a].log_path().to_path_buf();
    let log_b = cluster.brokers[&b].log_path().to_path_buf();
    wait_until(
        Duration::from_millis(SESSION_TIMEOUT_MS + 20_000),
        "a survivor finished its failover",
        || {
            let (log, log_b) = (log.clone(), log_b.clone());
            async move {
                [log, log_b].iter().any(|l| {
                    std::fs::read_to_string(l).is_ok_and(|s| s.contains("controller failover done"))
                })
            }
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
    assert_eq!(controller_epoch(&store).await, epoch + 1);

    // (leader, ISR) each partition should have now; None: untouched.
    let expected: BTreeMap<_, Option<(i32, Vec<i32>)>> = [
        (("solo", 0), Some((-1, vec![dead]))),
        (("solo", 1), None),
        (("solo", 2), None),
        (("solo", 3), Some((-1, vec![dead]))),
        (("pair", 0), Some((a, vec![a]))),
        (("pair", 1), Some((a, vec![a]))),
        (("pair", 2), None),
        (("pair", 3), Some((b, vec![b]))),
    ]
    .into_iter()
    .collect();
    for ((topic, p), want) in &expected {
        let (was, was_version) = &before[&(*topic, *p)];
        let (now, now_version) = state(&store, topic, *p).await.unwrap();
        match want {
            None => assert_eq!(
                (&now, now_version),
                (was, *was_version),
                "{topic}-{p} changed\n{}",
                cluster.logs()
            ),
            Some((leader, isr)) => {
                assert_eq!(
                    (now.leader, &now.isr),
                    (*leader, isr),
                    "{topic}-{p}\n{}",
                    cluster.logs()
                );
                assert_eq!(
                    now.leader_epoch,
                    was.leader_epoch + 1,
                    "{topic}-{p}: one leader epoch bump\n{}",
                    cluster.logs()
                );
                assert_eq!(now_version, was_version + 1, "{topic}-{p}: one write");
                assert_eq!(now.controller_epoch, epoch + 1, "{topic}-{p}");
            }
        }
    }
    // Both survivors tell clients what ZooKeeper holds.
    for id in [a, b] {
        for (topic, p) in expected.keys() {
            let (z, _) = state(&store, topic, *p).await.unwrap();
            let want_error = if z.leader < 0 {
                LEADER_NOT_AVAILABLE
            } else {
                0
            };
            wait_metadata(&cluster, &[id], topic, *p, "matches its state", |m| {
                m.0 == z.leader && m.1 == z.isr && m.3 == want_error
            })
            .await;
        }
    }
}
