//! Issue 21's migration, as the README describes it, with odradek brokers at IBP 2.4 that
//! advertise no more than Kafka 2.4 (`odradek.test.advertise.ibp.versions`) standing in for the
//! Kafka brokers: three old brokers; three new ones join with the cluster's IBP; every
//! partition (the data and `__consumer_offsets`) is reassigned onto the new ones through
//! `/admin/reassign_partitions` (what `kafka-reassign-partitions.sh` writes) under a producer's
//! and a consumer group's load; the old three stop; the IBP is raised by a rolling restart. No
//! acknowledged record is lost and neither client is restarted. Where `KAFKA_HOME` holds a
//! runnable Kafka (`common::kafka`), the old three are that Kafka instead.

use crate::common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::cluster::{Cluster, create_replicated_topic, wait_until};
use kafka_protocol::messages::*;
use odradek::client::{ClientId, Connection};
use odradek::metadata::MetadataStore;
use odradek::metadata::store::CreateMode;
use odradek::metadata::znodes::{self, PartitionStateZnode, TopicZnode};

const TOPIC: &str = "migrating";
const PARTITIONS: i32 = 3;
const OFFSETS_PARTITIONS: i32 = 3;
const OLD: [i32; 3] = [1, 2, 3];
const NEW: [i32; 3] = [4, 5, 6];

/// broker id -> port, and the leader of `partition`, from the first broker that answers.
async fn leader_port(ports: &[u16], partition: i32) -> Option<u16> {
    for port in ports {
        let Ok(Ok(mut c)) = tokio::time::timeout(
            Duration::from_secs(2),
            Connection::open(&format!("127.0.0.1:{port}"), &ClientId::tools()),
        )
        .await
        else {
            continue;
        };
        let req = common::wire::metadata_request(Some(&[TOPIC]), true);
        let Ok(Ok(ResponseKind::Metadata(md))) = tokio::time::timeout(
            Duration::from_secs(5),
            c.call_upto(ApiKey::Metadata, 12, RequestKind::Metadata(req)),
        )
        .await
        else {
            continue;
        };
        let leader = md
            .topics
            .iter()
            .flat_map(|t| &t.partitions)
            .find(|p| p.partition_index == partition)
            .map(|p| p.leader_id.0)?;
        return md
            .brokers
            .iter()
            .find(|b| b.node_id.0 == leader)
            .map(|b| b.port as u16);
    }
    None
}

/// A producer that keeps going through every change: batches of ten numbered records
/// (acks=all) to each partition in turn, retrying nothing it is unsure of; the numbers
/// acknowledged go to `acked`.
async fn produce_until(ports: Vec<u16>, stop: Arc<AtomicBool>, acked: Arc<Mutex<Vec<usize>>>) {
    let mut next = 0usize;
    let mut partition = 0;
    while !stop.load(Ordering::SeqCst) {
        if let Some(port) = leader_port(&ports, partition).await
            && let Ok(Ok(mut c)) = tokio::time::timeout(
                Duration::from_secs(2),
                Connection::open(&format!("127.0.0.1:{port}"), &ClientId::tools()),
            )
            .await
        {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64);
            let batch = common::client_batch(next, 10, 10, now, 0);
            let req = common::wire::produce_request(TOPIC, partition, batch, -1);
            let answer = tokio::time::timeout(
                Duration::from_secs(30),
                c.call_upto(ApiKey::Produce, 9, RequestKind::Produce(req)),
            )
            .await;
            if let Ok(Ok(ResponseKind::Produce(r))) = answer
                && r.responses[0].partition_responses[0].error_code == 0
            {
                acked.lock().unwrap().extend(next..next + 10);
            }
            next += 10;
            partition = (partition + 1) % PARTITIONS;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn topic_znode(store: &dyn MetadataStore, topic: &str) -> Option<TopicZnode> {
    let (data, _) = store.get(&znodes::topic_path(topic)).await.ok()??;
    serde_json::from_slice(&data?).ok()
}

async fn state(store: &dyn MetadataStore, topic: &str, p: i32) -> Option<PartitionStateZnode> {
    let (data, _) = store
        .get(&znodes::partition_state_path(topic, p))
        .await
        .ok()??;
    serde_json::from_slice(&data?).ok()
}

/// Whether every partition of both topics is assigned to, led by and fully in sync on `on`.
async fn all_on(store: &dyn MetadataStore, on: &[i32]) -> bool {
    let on: BTreeSet<i32> = on.iter().copied().collect();
    for (topic, partitions) in [
        (TOPIC, PARTITIONS),
        ("__consumer_offsets", OFFSETS_PARTITIONS),
    ] {
        let Some(t) = topic_znode(store, topic).await else {
            return false;
        };
        if !t.adding_replicas.is_empty() || !t.removing_replicas.is_empty() {
            return false;
        }
        for p in 0..partitions {
            let assigned: BTreeSet<i32> = t
                .partitions
                .get(&p.to_string())
                .into_iter()
                .flatten()
                .copied()
                .collect();
            let Some(s) = state(store, topic, p).await else {
                return false;
            };
            let isr: BTreeSet<i32> = s.isr.iter().copied().collect();
            if assigned != on || isr != on || !on.contains(&s.leader) {
                return false;
            }
        }
    }
    true
}

/// A consumer group member that prints every record's value, one a line, and each
/// assignment it receives (a rebalance) on stderr as `#assigned`.
const CONSUMER: &str = r##"
import sys
from confluent_kafka import Consumer
bootstrap, topic, group = sys.argv[1:4]
c = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
              "auto.offset.reset": "earliest", "enable.auto.commit": True,
              "auto.commit.interval.ms": 1000, "session.timeout.ms": 30000})
def assigned(consumer, partitions):
    print("#assigned", [p.partition for p in partitions], file=sys.stderr, flush=True)
c.subscribe([topic], on_assign=assigned)
while True:
    m = c.poll(0.5)
    if m is None:
        continue
    if m.error():
        print("#error", m.error(), file=sys.stderr, flush=True)
        continue
    print(m.value().decode(), flush=True)
"##;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_brokers_are_replaced_under_load_and_the_ibp_raised() {
    let Some(python) = common::python_venv() else {
        common::missing_tool("the Python venv with confluent-kafka (scripts/python-deps.sh)");
        return;
    };
    let old: [&str; 2] = [
        "inter.broker.protocol.version=2.4",
        "odradek.test.advertise.ibp.versions=true",
    ];
    let new_at_old_ibp: [&str; 1] = ["inter.broker.protocol.version=2.4"];
    let each: Vec<(i32, &[&str])> = OLD
        .iter()
        .map(|id| (*id, &old[..]))
        .chain(NEW.iter().map(|id| (*id, &new_at_old_ibp[..])))
        .collect();
    let offsets_partitions = format!("offsets.topic.num.partitions={OFFSETS_PARTITIONS}");
    let Some(mut cluster) = Cluster::prepare(
        each,
        &[&offsets_partitions, "offsets.topic.replication.factor=3"],
    ) else {
        return;
    };
    // Real Kafka brokers are the old ones where one is installed.
    if let Some(home) = common::kafka::for_test("cluster::migration") {
        for id in OLD {
            cluster.kafka.insert(id, home.clone());
        }
    }
    for id in OLD {
        cluster.start_broker(id);
    }
    cluster.wait_for_brokers(&OLD).await;
    create_replicated_topic(
        &cluster.bootstrap(1),
        TOPIC,
        PARTITIONS,
        3,
        &["min.insync.replicas=2"],
    );
    cluster.wait_led(1, TOPIC, PARTITIONS as usize).await;
    // The new brokers join with the cluster's IBP.
    for id in NEW {
        cluster.start_broker(id);
    }
    cluster.wait_for_brokers(&[1, 2, 3, 4, 5, 6]).await;
    let ports: Vec<u16> = (1..=6).map(|id| cluster.port(id)).collect();
    let bootstrap = (1..=6)
        .map(|id| cluster.bootstrap(id))
        .collect::<Vec<_>>()
        .join(",");

    // The load: a producer, and a consumer group's member (confluent-kafka, committing
    // automatically) running from the start to the end.
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(Vec::new()));
    let producer = tokio::spawn(produce_until(ports.clone(), stop.clone(), acked.clone()));
    let consumer_out = cluster._tmp.path().join("consumer.out");
    let consumer_err = cluster._tmp.path().join("consumer.err");
    let mut consumer = std::process::Command::new(&python)
        .args(["-u", "-c", CONSUMER, &bootstrap, TOPIC, "migrating-group"])
        .stdout(std::fs::File::create(&consumer_out).unwrap())
        .stderr(std::fs::File::create(&consumer_err).unwrap())
        .spawn()
        .unwrap();
    let consumed = |path: &std::path::Path| -> BTreeSet<usize> {
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    };
    let logs = |cluster: &Cluster| {
        format!(
            "{}\n--- consumer\n{}",
            cluster.logs(),
            std::fs::read_to_string(&consumer_err).unwrap_or_default()
        )
    };
    wait_until(Duration::from_secs(60), "the consumer reads", || {
        let out = consumer_out.clone();
        async move { consumed(&out).len() >= 30 }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", logs(&cluster)));

    // Reassign everything onto the new brokers, as kafka-reassign-partitions.sh does.
    let store = cluster.store().await;
    let mut moves = Vec::new();
    for (topic, partitions) in [
        (TOPIC, PARTITIONS),
        ("__consumer_offsets", OFFSETS_PARTITIONS),
    ] {
        for p in 0..partitions {
            let r: Vec<i32> = (0..3).map(|i| NEW[(p as usize + i) % 3]).collect();
            moves.push(format!(
                r#"{{"topic":"{topic}","partition":{p},"replicas":[{},{},{}]}}"#,
                r[0], r[1], r[2]
            ));
        }
    }
    store
        .create(
            "/admin/reassign_partitions",
            Some(format!(r#"{{"version":1,"partitions":[{}]}}"#, moves.join(",")).into_bytes()),
            CreateMode::Persistent,
        )
        .await
        .unwrap();
    let store_ref = &store;
    wait_until(
        Duration::from_secs(120),
        "every partition is on the new brokers",
        || async move {
            store_ref
                .get("/admin/reassign_partitions")
                .await
                .is_ok_and(|z| z.is_none())
                && all_on(store_ref, &NEW).await
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", logs(&cluster)));

    // The old brokers retire, one at a time.
    for id in OLD {
        cluster.brokers.get_mut(&id).unwrap().stop(false);
    }
    cluster.wait_for_brokers(&NEW).await;
    let before_raise = acked.lock().unwrap().len();

    // The IBP is raised by a rolling restart of the new brokers.
    for id in NEW {
        cluster.restart_with(id, &["inter.broker.protocol.version=3.9"]);
        wait_until(
            Duration::from_secs(90),
            &format!("broker {id} is back in every ISR"),
            || async move { all_on(store_ref, &NEW).await },
        )
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", logs(&cluster)));
    }
    // The producer went on throughout.
    let acked_now = acked.lock().unwrap().len();
    wait_until(Duration::from_secs(30), "more records acknowledged", || {
        let acked = acked.clone();
        async move { acked.lock().unwrap().len() > acked_now }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", logs(&cluster)));
    assert!(
        acked_now > before_raise,
        "records were acknowledged during the rolling restart"
    );
    stop.store(true, Ordering::SeqCst);
    producer.await.unwrap();
    let acked: Vec<usize> = acked.lock().unwrap().clone();

    // The consumer, never restarted, reads every acknowledged record.
    let consumer_out_ref = &consumer_out;
    let acked_ref = &acked;
    let caught_up = wait_until(
        Duration::from_secs(60),
        "the consumer group reads every acknowledged record",
        || async move {
            let seen = consumed(consumer_out_ref);
            acked_ref.iter().all(|n| seen.contains(n))
        },
    )
    .await;
    let still_running = consumer.try_wait().unwrap().is_none();
    common::broker_process::signal(consumer.id(), "-TERM");
    let _ = consumer.wait();
    if let Err(e) = caught_up {
        let seen = consumed(&consumer_out);
        let missing: Vec<&usize> = acked.iter().filter(|n| !seen.contains(n)).collect();
        panic!(
            "{e}: {} of {} missing, first {:?}\n{}",
            missing.len(),
            acked.len(),
            &missing[..missing.len().min(10)],
            logs(&cluster)
        );
    }
    assert!(still_running, "the consumer exited:\n{}", logs(&cluster));
    // No rebalance storm: the member was assigned its partitions once, and at most once more
    // (librdkafka rejoins if a coordinator move outlasts its heartbeats).
    let assignments = std::fs::read_to_string(&consumer_err)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.starts_with("#assigned"))
        .count();
    eprintln!(
        "migration: {} records acknowledged ({before_raise} before the IBP was raised), \
         {assignments} assignment(s) of the consumer",
        acked.len()
    );
    assert!(
        (1..=2).contains(&assignments),
        "{assignments} assignments:\n{}",
        logs(&cluster)
    );

    // And the new brokers hold them all.
    let all: BTreeSet<usize> = common::cluster::consume_all(&cluster.bootstrap(4), TOPIC)
        .iter()
        .filter_map(|l| l.trim().parse().ok())
        .collect();
    let lost: Vec<&usize> = acked.iter().filter(|n| !all.contains(n)).collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged records lost\n{}",
        lost.len(),
        logs(&cluster)
    );
}
