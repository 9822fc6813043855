//! ISR changes through the controller (AlterPartition, Kafka's path from IBP 2.7-IV2): a paused
//! follower leaves the ISR and rejoins it, the controller's request counter shows AlterPartition
//! carried both changes at IBP 3.9 and none at IBP 2.4 (where the leader writes the state znode
//! itself); and the controller's answers to stale, fenced and unknown partitions, as Kafka 3.9's
//! `KafkaController.processAlterPartition` gives them.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::broker_process::free_port;
use common::cluster::{Cluster, create_replicated_topic, leaders, metadata, name, wait_until};
use common::wire::{Conn, create_assigned, produce_request};
use kafka_protocol::messages::alter_partition_request::{BrokerState, PartitionData, TopicData};
use kafka_protocol::messages::{AlterPartitionRequest, AlterPartitionResponse, BrokerId};
use odradek::metadata::MetadataStore;
use odradek::metadata::znodes::{self, PartitionStateZnode};

use super::mixed_ibp::{grown, versions};

async fn state(store: &dyn MetadataStore, topic: &str) -> Option<(PartitionStateZnode, i32)> {
    let path = znodes::partition_state_path(topic, 0);
    let (data, stat) = store.get(&path).await.ok()??;
    Some((serde_json::from_slice(&data?).ok()?, stat.version))
}

/// Until the partition's state znode shows an ISR of `n` replicas.
async fn wait_for_isr_of(cluster: &Cluster, store: &dyn MetadataStore, topic: &str, n: usize) {
    wait_until(Duration::from_secs(30), "a full ISR", || async move {
        state(store, topic)
            .await
            .is_some_and(|(s, _)| s.isr.len() == n)
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
}

fn sorted(mut v: Vec<i32>) -> Vec<i32> {
    v.sort_unstable();
    v
}

/// Three brokers at the IBPs `ibps` (broker 1 first, so that it is the controller; with
/// `stand_in`, it advertises only what Kafka of its IBP's release did); a topic of one
/// partition on all three, led by broker 2. A follower that is not the controller is paused
/// (SIGSTOP, its session outlives the pause) while the leader gets more records: the leader
/// drops it from the ISR; resumed, it catches up and is added back. Returns the AlterPartition
/// versions the controller was sent meanwhile.
async fn shrink_and_expand(ibps: [&str; 3], stand_in: bool) -> Option<BTreeSet<i16>> {
    let metrics: BTreeMap<i32, u16> = [1, 2, 3].iter().map(|id| (*id, free_port())).collect();
    let own: Vec<(i32, Vec<String>)> = metrics
        .iter()
        .map(|(id, port)| {
            let mut o = vec![
                format!("metrics.port={port}"),
                format!("inter.broker.protocol.version={}", ibps[(*id - 1) as usize]),
            ];
            if stand_in && *id == 1 {
                o.push("odradek.test.advertise.ibp.versions=true".into());
            }
            (*id, o)
        })
        .collect();
    let mut cluster = Cluster::prepare(
        own,
        &[
            "replica.lag.time.max.ms=2000",
            // Longer than the pause: only the leader's lag check takes the follower out.
            "zookeeper.session.timeout.ms=30000",
        ],
    )?;
    cluster.start_broker(1);
    let p1 = cluster.port(1);
    wait_until(
        Duration::from_secs(30),
        "broker 1 is controller",
        || async move { metadata(p1, Some(&[])).await.controller_id.0 == 1 },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
    cluster.start_broker(2);
    cluster.start_broker(3);
    cluster.wait_for_brokers(&[1, 2, 3]).await;
    let topic = "alter-isr";
    let created = create_assigned(
        &mut Conn::connect(cluster.port(1)).await,
        topic,
        -1,
        -1,
        &[(0, &[2, 3, 1])],
        false,
    )
    .await;
    assert_eq!(created.error_code, 0, "{created:?}");
    cluster.wait_led(1, topic, 1).await;
    let store = cluster.store().await;
    let store = &store;
    wait_for_isr_of(&cluster, store, topic, 3).await;
    let controller = metadata(cluster.port(1), Some(&[])).await.controller_id.0;
    let (before, _) = state(store, topic).await.unwrap();
    let leader = before.leader;
    let follower = *before
        .isr
        .iter()
        .find(|b| **b != leader && **b != controller)
        .unwrap();
    let cport = metrics[&controller];
    let sent_before = versions(cport, "AlterPartition").await;

    let produce = |first: usize| {
        let port = cluster.port(leader);
        async move {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64);
            let batch = common::client_batch(first, 5, 10, now, 0);
            let mut c = Conn::connect(port).await;
            c.send(9, produce_request(topic, 0, batch, 1))
                .await
                .responses[0]
                .partition_responses[0]
                .error_code
        }
    };
    let paused = cluster.brokers[&follower].pause();
    assert_eq!(produce(0).await, 0);
    let without: Vec<i32> = sorted(
        before
            .isr
            .iter()
            .copied()
            .filter(|b| *b != follower)
            .collect(),
    );
    let without = &without;
    let shrunk = wait_until(
        Duration::from_secs(30),
        "the leader drops the paused follower from the ISR",
        || async move {
            state(store, topic)
                .await
                .is_some_and(|(s, _)| sorted(s.isr) == *without)
        },
    )
    .await;
    paused.resume();
    shrunk.unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
    let (after, _) = state(store, topic).await.unwrap();
    // No election: same leader and leader epoch.
    assert_eq!(
        (after.leader, after.leader_epoch),
        (leader, before.leader_epoch)
    );
    let shrink_sent = grown(&sent_before, &versions(cport, "AlterPartition").await);

    assert_eq!(produce(5).await, 0);
    let all = sorted(before.isr.clone());
    let all = &all;
    wait_until(
        Duration::from_secs(30),
        "the resumed follower rejoins the ISR",
        || async move {
            state(store, topic)
                .await
                .is_some_and(|(s, _)| sorted(s.isr) == *all)
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
    // Every broker hears of the ISR (UpdateMetadata), the leader included.
    let lport = cluster.port(leader);
    wait_until(
        Duration::from_secs(20),
        "Metadata shows the full ISR",
        || async move {
            let md = metadata(lport, Some(&[topic])).await;
            md.topics
                .first()
                .and_then(|t| t.partitions.first())
                .is_some_and(|p| sorted(p.isr_nodes.iter().map(|b| b.0).collect()) == *all)
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
    let sent = grown(&sent_before, &versions(cport, "AlterPartition").await);
    if ibps[1] == "3.9" && !stand_in {
        assert!(
            !shrink_sent.is_empty(),
            "the shrink went through AlterPartition\n{}",
            cluster.logs()
        );
    }
    Some(sent)
}

/// At IBP 3.9 the leader's ISR changes reach the controller as AlterPartition v3 (topics by
/// id), and the state znode shows them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_ibp_3_9_isr_changes_go_to_the_controller_as_alter_partition() {
    let Some(sent) = shrink_and_expand(["3.9"; 3], false).await else {
        return;
    };
    assert_eq!(sent, BTreeSet::from([3]));
}

/// At IBP 2.4 (Kafka 2.4's way) no AlterPartition is sent, and the ISR still changes: the
/// leader writes the state znode and an ISR change notification.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_ibp_2_4_isr_changes_are_written_by_the_leader() {
    let Some(sent) = shrink_and_expand(["2.4"; 3], false).await else {
        return;
    };
    assert_eq!(sent, BTreeSet::new());
}

/// A leader at IBP 3.9 under a controller that does not answer AlterPartition (standing in for
/// a Kafka 2.4 controller during a rolling upgrade) writes its ISR changes to the state znode,
/// as below IBP 2.7, rather than leaving the ISR frozen.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_a_controller_without_alter_partition_the_leader_writes_the_znode() {
    let Some(sent) = shrink_and_expand(["2.4", "3.9", "3.9"], true).await else {
        return;
    };
    assert_eq!(sent, BTreeSet::new());
}

fn partition(leader_epoch: i32, isr: &[i32], partition_epoch: i32) -> PartitionData {
    let mut p = PartitionData::default();
    p.leader_epoch = leader_epoch;
    p.new_isr = isr.iter().copied().map(BrokerId).collect();
    p.partition_epoch = partition_epoch;
    p
}

/// A request for partitions of one topic, in the shape of `version` (v0-1 by name, v2+ by id,
/// v3 with the ISR's broker epochs).
fn request(
    version: i16,
    broker: i32,
    broker_epoch: i64,
    topic: &str,
    topic_id: uuid::Uuid,
    partitions: Vec<(i32, PartitionData)>,
) -> AlterPartitionRequest {
    let mut t = TopicData::default();
    if version >= 2 {
        t.topic_id = topic_id;
    } else {
        t.topic_name = name(topic);
    }
    t.partitions = partitions
        .into_iter()
        .map(|(index, mut p)| {
            p.partition_index = index;
            if version >= 3 {
                p.new_isr_with_epochs = p
                    .new_isr
                    .drain(..)
                    .map(|id| {
                        let mut b = BrokerState::default();
                        b.broker_id = id;
                        b.broker_epoch = -1;
                        b
                    })
                    .collect();
            }
            p
        })
        .collect();
    let mut r = AlterPartitionRequest::default();
    r.broker_id = BrokerId(broker);
    r.broker_epoch = broker_epoch;
    r.topics.push(t);
    r
}

/// What a case is called, the version sent, the sender, its partitions and the error codes
/// expected by partition.
type Case<'a> = (
    &'a str,
    i16,
    i32,
    Vec<(i32, PartitionData)>,
    BTreeMap<i32, i16>,
);

async fn ask(c: &mut Conn, version: i16, r: AlterPartitionRequest) -> AlterPartitionResponse {
    c.send(version, r).await
}

/// Error code of each partition answered, by partition index.
fn codes(r: &AlterPartitionResponse) -> BTreeMap<i32, i16> {
    r.topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(|p| (p.partition_index, p.error_code))
        })
        .collect()
}

/// The controller's answers, as Kafka 3.9's: a stale broker epoch is refused as a whole; an
/// older leader epoch is fenced, a newer one (this controller may be stale) gets NOT_CONTROLLER;
/// an older partition epoch INVALID_UPDATE_VERSION, unless the partition is already in the
/// proposed state (a retry); replicas that are not live are ineligible; unknown partitions and
/// topic ids are named so. An accepted change is written to the state znode and answered with
/// the new partition epoch; a broker that does not lead cannot change the ISR.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_controller_answers_alter_partition_as_kafka_does() {
    let Some(cluster) = Cluster::start(&[1, 2]) else {
        return;
    };
    cluster.wait_for_brokers(&[1, 2]).await;
    let topic = "alter-answers";
    create_replicated_topic(&cluster.bootstrap(1), topic, 1, 2, &[]);
    cluster.wait_led(1, topic, 1).await;
    let store = cluster.store().await;
    wait_for_isr_of(&cluster, &store, topic, 2).await;
    let controller = metadata(cluster.port(1), Some(&[])).await.controller_id.0;
    let leader = leaders(cluster.port(1), topic).await[&0].0;
    let follower = 3 - leader;
    let epoch_of = |id: i32| {
        let store = &store;
        async move {
            let (_, stat) = store.get(&znodes::broker_path(id)).await.unwrap().unwrap();
            stat.czxid
        }
    };
    let (leader_epoch_now, follower_epoch) = (epoch_of(leader).await, epoch_of(follower).await);
    let (data, _) = store
        .get(&znodes::topic_path(topic))
        .await
        .unwrap()
        .unwrap();
    let topic_znode: znodes::TopicZnode = serde_json::from_slice(&data.unwrap()).unwrap();
    let topic_id = topic_znode
        .topic_id
        .as_deref()
        .and_then(znodes::parse_uuid_base64)
        .expect("a topic id at IBP 3.9");
    let (s, version) = state(&store, topic).await.unwrap();
    let (le, isr) = (s.leader_epoch, s.isr.clone());

    let mut c = Conn::connect(cluster.port(controller)).await;

    // A registration that is not the broker's current one.
    let r = ask(
        &mut c,
        3,
        request(
            3,
            leader,
            leader_epoch_now - 1,
            topic,
            topic_id,
            vec![(0, partition(le, &isr, version))],
        ),
    )
    .await;
    assert_eq!(r.error_code, 77, "STALE_BROKER_EPOCH: {r:?}");
    assert!(r.topics.is_empty());

    let one = |p: PartitionData| vec![(0, p)];
    let cases: Vec<Case> = vec![
        (
            "older leader epoch",
            1,
            leader,
            one(partition(le - 1, &[leader], version)),
            [(0, 74)].into(),
        ),
        (
            "newer leader epoch",
            1,
            leader,
            one(partition(le + 1, &[leader], version)),
            [(0, 41)].into(),
        ),
        (
            "newer partition epoch",
            2,
            leader,
            one(partition(le, &[leader], version + 1)),
            [(0, 41)].into(),
        ),
        (
            "older partition epoch",
            3,
            leader,
            one(partition(le, &[leader], version - 1)),
            [(0, 95)].into(),
        ),
        (
            "not the leader",
            3,
            follower,
            one(partition(le, &[follower], version)),
            [(0, 74)].into(),
        ),
        (
            "no broker 7 (v1)",
            1,
            leader,
            one(partition(le, &[leader, 7], version)),
            [(0, 55)].into(),
        ),
        (
            "no broker 7 (v2)",
            2,
            leader,
            one(partition(le, &[leader, 7], version)),
            [(0, 107)].into(),
        ),
        (
            "unknown partition",
            0,
            leader,
            vec![(5, partition(0, &[leader], 0))],
            [(5, 3)].into(),
        ),
    ];
    for (what, v, broker, partitions, want) in cases {
        let epoch = if broker == leader {
            leader_epoch_now
        } else {
            follower_epoch
        };
        let r = ask(
            &mut c,
            v,
            request(v, broker, epoch, topic, topic_id, partitions),
        )
        .await;
        assert_eq!(r.error_code, 0, "{what}: {r:?}");
        assert_eq!(codes(&r), want, "{what}: {r:?}");
    }
    let r = ask(
        &mut c,
        2,
        request(
            2,
            leader,
            leader_epoch_now,
            topic,
            uuid::Uuid::from_u128(42),
            one(partition(le, &[leader], version)),
        ),
    )
    .await;
    assert_eq!(codes(&r), [(0, 100)].into(), "UNKNOWN_TOPIC_ID: {r:?}");
    // Nothing changed so far.
    assert_eq!(state(&store, topic).await.unwrap().1, version);

    // The leader shrinks the ISR to itself: written with the leader epoch unchanged, answered
    // with the new partition epoch.
    for v in [3, 0] {
        // The second time (v0, by name) is a retry of a change already made, against the old
        // partition epoch: answered with the state as it is.
        let r = ask(
            &mut c,
            v,
            request(
                v,
                leader,
                leader_epoch_now,
                topic,
                topic_id,
                one(partition(le, &[leader], version)),
            ),
        )
        .await;
        let p = &r.topics[0].partitions[0];
        assert_eq!(p.error_code, 0, "v{v}: {r:?}");
        assert_eq!(
            (
                p.leader_id.0,
                p.leader_epoch,
                p.isr.iter().map(|b| b.0).collect::<Vec<_>>(),
                p.partition_epoch
            ),
            (leader, le, vec![leader], version + 1),
            "v{v}: {r:?}"
        );
        if v >= 2 {
            assert_eq!(r.topics[0].topic_id, topic_id);
        } else {
            assert_eq!(r.topics[0].topic_name, name(topic));
        }
    }
    let (s, now) = state(&store, topic).await.unwrap();
    assert_eq!(
        (s.leader, s.leader_epoch, s.isr, now),
        (leader, le, vec![leader], version + 1)
    );
    // Every broker hears of it in UpdateMetadata.
    let fport = cluster.port(follower);
    wait_until(
        Duration::from_secs(20),
        "the follower's Metadata shows the ISR",
        || async move {
            let md = metadata(fport, Some(&[topic])).await;
            md.topics
                .first()
                .and_then(|t| t.partitions.first())
                .is_some_and(|p| {
                    p.isr_nodes.iter().map(|b| b.0).collect::<Vec<_>>() == vec![leader]
                })
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));

    // A broker that is not the controller answers NOT_CONTROLLER.
    let other = 3 - controller;
    let mut o = Conn::connect(cluster.port(other)).await;
    let r: AlterPartitionResponse = o
        .send(
            3,
            request(
                3,
                leader,
                leader_epoch_now,
                topic,
                topic_id,
                one(partition(le, &[leader], version + 1)),
            ),
        )
        .await;
    assert_eq!(r.error_code, 41, "{r:?}");
}
