//! Several odradek brokers and one real ZooKeeper (Debian's package): the cluster forms, topics
//! spread over the brokers, every client works through any bootstrap broker, the controller
//! fails over, brokers come and go, and a ZooKeeper outage longer than the session timeout is
//! survived.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::broker_process::BrokerProcess;
use common::cluster::*;
use common::zookeeper::ZooKeeperServer;
use odradek::metadata::MetadataStore;
use odradek::metadata::store::CreateMode;
use odradek::metadata::zk::ZkStore;

/// Acceptance 1: a 6-partition topic spreads over three brokers; every client produces to and
/// consumes from every partition through any one bootstrap broker; a broker that does not
/// lead a partition says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_brokers_serve_every_client_through_any_broker() {
    let Some(cluster) = Cluster::start(&[1, 2, 3]) else {
        return;
    };
    cluster.wait_for_brokers(&[1, 2, 3]).await;

    create_topic(&cluster.bootstrap(2), "spread", 6);
    for id in [1, 2, 3] {
        cluster.wait_led(id, "spread", 6).await;
    }
    let spread = leaders(cluster.port(3), "spread").await;
    assert_eq!(spread.len(), 6, "{}", cluster.logs());
    let mut led: BTreeMap<i32, usize> = BTreeMap::new();
    for (leader, error) in spread.values() {
        assert_eq!(*error, 0);
        *led.entry(*leader).or_default() += 1;
    }
    assert_eq!(
        led,
        BTreeMap::from([(1, 2), (2, 2), (3, 2)]),
        "leaders spread evenly"
    );
    // Every broker agrees on the leaders, whichever it is asked.
    for id in [1, 2] {
        assert_eq!(leaders(cluster.port(id), "spread").await, spread);
    }
    // Produce to a partition on a broker that is not its leader.
    let (&p, &(leader, _)) = spread.iter().next().unwrap();
    let other = [1, 2, 3].into_iter().find(|b| *b != leader).unwrap();
    assert_eq!(
        produce_records(cluster.port(other), "spread", p, 1).await,
        NOT_LEADER_OR_FOLLOWER
    );

    // The bundled tools, through one broker: keyed lines reach every partition.
    let lines: String = (0..120).map(|i| format!("key-{i}\ttool-{i}\n")).collect();
    let (ok, _, err) = common::odradek(
        &[
            "produce",
            "--bootstrap-server",
            &cluster.bootstrap(1),
            "--topic",
            "spread",
            "--key-separator",
            "\t",
        ],
        Some(&lines),
    );
    assert!(ok, "{err}");
    let consumed = consume_all(&cluster.bootstrap(3), "spread");
    assert_eq!(
        consumed.iter().filter(|l| l.starts_with("tool-")).count(),
        120
    );

    // kcat (librdkafka) to every partition through broker 2.
    if Command::new("kcat").arg("-V").output().is_ok() {
        for p in 0..6 {
            let mut child = Command::new("kcat")
                .args([
                    "-b",
                    &cluster.bootstrap(2),
                    "-P",
                    "-t",
                    "spread",
                    "-p",
                    &p.to_string(),
                ])
                .stdin(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            use std::io::Write;
            child
                .stdin
                .take()
                .unwrap()
                .write_all(format!("kcat-{p}\n").as_bytes())
                .unwrap();
            assert!(child.wait().unwrap().success());
            let out = Command::new("kcat")
                .args(["-b", &cluster.bootstrap(2), "-C", "-t", "spread", "-p"])
                .arg(p.to_string())
                .args(["-o", "beginning", "-e", "-q"])
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(
                text.lines().any(|l| l == format!("kcat-{p}")),
                "kcat partition {p}: {text}"
            );
        }
    } else {
        common::missing_tool("kcat");
    }

    // The Python clients, each through a different broker.
    if let Some(python) = common::python_venv() {
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("compat-tests/python/cluster_roundtrip.py");
        for (client, via) in [("confluent", 1), ("kafka-python", 2), ("aiokafka", 3)] {
            let topic = format!("py-{client}");
            let out = Command::new(&python)
                .arg(&script)
                .args([client, &cluster.bootstrap(via), &topic, "6"])
                .current_dir(script.parent().unwrap())
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{client}: {}\n{}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
                cluster.logs()
            );
        }
    } else {
        common::missing_tool("the Python client venv (scripts/python-deps.sh)");
    }

    // The Java client (admin, idempotent producer, consumer) through broker 3.
    let classes = tempfile::tempdir().unwrap();
    if let Some(cp) = common::compile_java("ClientRoundTrip", classes.path()) {
        let out = Command::new("java")
            .args([
                "-cp",
                &cp,
                "ClientRoundTrip",
                &cluster.bootstrap(3),
                "java-cluster",
                "none",
                "600",
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "java: {}\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            cluster.logs()
        );
    }

    // KafkaJS, whose consumer joins a group: the coordinator may be any broker.
    let node_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("compat-tests/node");
    if node_dir.join("node_modules/kafkajs").is_dir() {
        let out = Command::new("node")
            .arg(node_dir.join("produce.js"))
            .args([&cluster.bootstrap(1), "kafkajs-cluster", "600"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = Command::new("node")
            .arg(node_dir.join("consume.js"))
            .args([&cluster.bootstrap(2), "kafkajs-cluster-gzip", "600"])
            .output()
            .unwrap();
        assert!(
            out.status.success() && String::from_utf8_lossy(&out.stdout).contains("consumed 600"),
            "{}\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            cluster.logs()
        );
    } else {
        common::missing_tool("KafkaJS (scripts/node-deps.sh)");
    }
}

/// Acceptance 5: kill -9 the controller: another broker takes over with the next controller
/// epoch within the session timeout and topics can still be created; the dead broker's
/// partitions (replication factor 1) go offline and come back, with their records, when it
/// restarts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controller_and_broker_failover() {
    let Some(mut cluster) = Cluster::start(&[1, 2, 3]) else {
        return;
    };
    cluster.wait_for_brokers(&[1, 2, 3]).await;
    let store = cluster.store().await;
    create_topic(&cluster.bootstrap(1), "durable", 6);
    cluster.wait_led(1, "durable", 6).await;
    let acked = produce_each_partition(&cluster, 1, "durable").await;

    let old = metadata(cluster.port(1), Some(&[])).await.controller_id.0;
    assert!(cluster.brokers.contains_key(&old), "controller {old}");
    let epoch = controller_epoch(&store).await;
    let before = leaders(cluster.port(1), "durable").await;
    let theirs: Vec<i32> = before
        .iter()
        .filter(|(_, (l, _))| *l == old)
        .map(|(p, _)| *p)
        .collect();
    assert_eq!(theirs.len(), 2);

    cluster.brokers.get_mut(&old).unwrap().stop(true);
    let killed = Instant::now();
    let survivor = [1, 2, 3].into_iter().find(|b| *b != old).unwrap();
    let port = cluster.port(survivor);
    wait_until(
        Duration::from_millis(SESSION_TIMEOUT_MS + 10_000),
        "another broker is controller",
        || async move {
            let c = metadata(port, Some(&[])).await.controller_id.0;
            c >= 0 && c != old
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
    assert_eq!(controller_epoch(&store).await, epoch + 1);
    assert!(killed.elapsed() < Duration::from_millis(SESSION_TIMEOUT_MS + 10_000));

    // Its partitions have no leader now, and clients are told so.
    let theirs = &theirs;
    wait_until(
        Duration::from_secs(10),
        "the dead broker's partitions are offline",
        || async move {
            let now = leaders(port, "durable").await;
            theirs
                .iter()
                .all(|p| now.get(p) == Some(&(-1, LEADER_NOT_AVAILABLE)))
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
    // The others still serve.
    for (p, (leader, _)) in &before {
        if *leader != old {
            assert_eq!(
                produce_records(cluster.port(*leader), "durable", *p, 1).await,
                0
            );
        }
    }
    // Topic creation goes through the new controller.
    create_topic(&cluster.bootstrap(survivor), "after-failover", 4);
    cluster.wait_led(survivor, "after-failover", 4).await;
    let after = leaders(port, "after-failover").await;
    assert_eq!(after.len(), 4);
    assert!(
        after.values().all(|(l, e)| *l != old && *l >= 0 && *e == 0),
        "{after:?}"
    );

    // The dead broker returns: its partitions come back online with their records.
    let b = cluster.brokers.get_mut(&old).unwrap();
    b.restart(true);
    for id in [1, 2, 3] {
        let port = cluster.port(id);
        wait_until(
            Duration::from_secs(30),
            "every partition has a leader again",
            || async move {
                let l = leaders(port, "durable").await;
                l.len() == 6 && l.values().all(|(l, e)| *l >= 0 && *e == 0)
            },
        )
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
    }
    let consumed = consume_all(&cluster.bootstrap(survivor), "durable");
    // Ten records per partition, plus one to each partition that stayed up.
    assert_eq!(consumed.len(), acked + 4, "{}", cluster.logs());
    drop(store);
    cluster.zk.stop();
}

/// Acceptance 6: ZooKeeper down for longer than the session timeout, then back: the brokers
/// keep running, re-register, elect a controller and serve again, and no acknowledged record
/// is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zookeeper_outage_longer_than_the_session() {
    let Some(mut cluster) = Cluster::start(&[1, 2, 3]) else {
        return;
    };
    cluster.wait_for_brokers(&[1, 2, 3]).await;
    create_topic(&cluster.bootstrap(1), "outage", 6);
    cluster.wait_led(2, "outage", 6).await;
    let mut acked = produce_each_partition(&cluster, 2, "outage").await;
    let epoch = controller_epoch(&cluster.store().await).await;

    cluster.zk.stop();
    // The outage must outlast the session; meanwhile the brokers must stay up.
    let outage = Instant::now();
    while outage.elapsed() < Duration::from_millis(SESSION_TIMEOUT_MS * 2) {
        for (id, b) in &mut cluster.brokers {
            assert!(
                b.is_running(),
                "broker {id} exited during the outage:\n{}",
                b.log_tail()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    cluster.zk.restart();

    let store = cluster.store().await;
    let store_ref = &store;
    wait_until(
        Duration::from_secs(30),
        "all brokers re-registered",
        || async move {
            store_ref
                .children("/brokers/ids")
                .await
                .ok()
                .flatten()
                .map(|c| c.len())
                == Some(3)
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
    // ZooKeeper keeps sessions across its own restart (each gets its full timeout again), so
    // the brokers may keep theirs; either way a controller must be there again.
    wait_until(Duration::from_secs(30), "a controller", || async move {
        store_ref.get("/controller").await.ok().flatten().is_some()
            && controller_epoch(store_ref).await >= epoch
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
    cluster.wait_for_brokers(&[1, 2, 3]).await;
    for id in [1, 2, 3] {
        let port = cluster.port(id);
        wait_until(
            Duration::from_secs(30),
            "every partition led",
            || async move {
                let l = leaders(port, "outage").await;
                l.len() == 6 && l.values().all(|(l, e)| *l >= 0 && *e == 0)
            },
        )
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
    }
    acked += produce_each_partition(&cluster, 3, "outage").await;
    let consumed = consume_all(&cluster.bootstrap(1), "outage");
    assert_eq!(consumed.len(), acked, "{}", cluster.logs());
    for (id, b) in &mut cluster.brokers {
        assert!(b.is_running(), "broker {id} exited:\n{}", b.log_tail());
    }
}

/// Acceptance 4: a Kafka 2.4.1 cluster's metadata adopted. Its ZooKeeper tree goes into a fresh
/// ZooKeeper, and one odradek broker with its broker id starts on a copy of its log dir: every
/// topic is served with its records.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adopts_a_kafka_clusters_zookeeper_tree_and_data() {
    let Some(zk) = ZooKeeperServer::start() else {
        return;
    };
    let connect = format!("{}/adopted", zk.connect_string());
    let store = ZkStore::connect(&connect, Duration::from_secs(10), Duration::from_secs(10))
        .await
        .unwrap();
    let tree: BTreeMap<String, Option<String>> = serde_json::from_str(
        &std::fs::read_to_string(common::kafka_single().join("zk-tree.json")).unwrap(),
    )
    .unwrap();
    for (path, data) in &tree {
        // ZooKeeper's own nodes, and the ephemeral ones of the broker that wrote the tree.
        if path == "/"
            || path.starts_with("/zookeeper")
            || path.starts_with("/brokers/ids/")
            || path == "/controller"
        {
            continue;
        }
        store
            .create(
                path,
                data.clone().map(String::into_bytes),
                CreateMode::Persistent,
            )
            .await
            .unwrap_or_else(|e| panic!("{path}: {e}"));
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("broker");
    common::copy_tree(&common::kafka_single().join("logdir"), &dir.join("logs"));
    let broker = BrokerProcess::start(
        &dir,
        &[
            "broker.id=1",
            "offsets.topic.num.partitions=50",
            &format!("zookeeper.connect={connect}"),
            &format!("zookeeper.session.timeout.ms={SESSION_TIMEOUT_MS}"),
        ],
    );
    let port = broker.port;
    wait_until(
        Duration::from_secs(30),
        "the fixture's topics are led",
        || async move {
            let l = leaders(port, "plain").await;
            l.len() == 3 && l.values().all(|(l, e)| *l == 1 && *e == 0)
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", broker.log_tail()));
    let out = run_tool(&[
        "consume",
        "--bootstrap-server",
        &broker.bootstrap(),
        "--topic",
        "plain",
        "--from-beginning",
        "--print-key",
        "--key-separator",
        "=",
        "--timeout-ms",
        "2000",
    ]);
    assert_eq!(out.lines().count(), 303, "{out}\n{}", broker.log_tail());
    assert!(out.lines().any(|l| l == "key-298=value-298-partition-1"));
    // The topic ids the controller gave the adopted topics were written back.
    let (data, _) = store.get("/brokers/topics/plain").await.unwrap().unwrap();
    let z: serde_json::Value = serde_json::from_slice(&data.unwrap()).unwrap();
    assert_eq!(z["topic_id"].as_str().map(str::len), Some(22), "{z}");
}
