//! Several odradek brokers and one real ZooKeeper (Debian's package): the cluster forms, topics
//! spread over the brokers, every client works through any bootstrap broker, the controller
//! fails over, brokers come and go, and a ZooKeeper outage longer than the session timeout is
//! survived.

use crate::common;
use crate::common::BoundedOutput;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::broker_process::BrokerProcess;
use common::cluster::*;
use common::wire::Conn;
use common::zookeeper::{NetworkPartition, ZooKeeperServer};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
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
    produce_lines(
        &cluster.bootstrap(1),
        "spread",
        &["--key-separator", "\t"],
        &lines,
    );
    let consumed = consume_all(&cluster.bootstrap(3), "spread");
    assert_eq!(
        consumed.iter().filter(|l| l.starts_with("tool-")).count(),
        120
    );

    // kcat (librdkafka) to every partition through broker 2.
    if Command::new("kcat").arg("-V").bounded_output().is_ok() {
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
                .bounded_output()
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
                .bounded_output()
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
            .bounded_output()
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
            .bounded_output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = Command::new("node")
            .arg(node_dir.join("consume.js"))
            .args([&cluster.bootstrap(2), "kafkajs-cluster-gzip", "600"])
            .bounded_output()
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

/// SIGTERM while ZooKeeper is down: the broker must still shut down cleanly (logs flushed, checkpoints and the clean-shutdown marker written)
/// rather than wait out ZooKeeper request timeouts until it is killed (`stop` sends SIGKILL
/// after 30 s, as an orchestrator's grace period would).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_stops_cleanly_while_zookeeper_is_down() {
    let Some(mut cluster) =
        Cluster::start_with(&[1, 2], &["controlled.shutdown.retry.backoff.ms=1000"])
    else {
        return;
    };
    cluster.wait_for_brokers(&[1, 2]).await;
    create_topic(&cluster.bootstrap(1), "stopping", 2);
    cluster.wait_led(2, "stopping", 2).await;
    produce_each_partition(&cluster, 2, "stopping").await;
    cluster.zk.stop();
    let started = Instant::now();
    let status = cluster.brokers.get_mut(&2).unwrap().stop(false);
    let took = started.elapsed();
    let log = cluster.brokers[&2].log_text();
    assert!(
        status.is_some_and(|s| s.success()) && log.contains("shut down completed"),
        "no clean exit after {took:?} ({status:?}):\n{log}"
    );
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

/// The shape of a JSON znode: its keys and its `version`.
fn shape(data: &Option<String>) -> Option<(BTreeSet<String>, Option<serde_json::Value>)> {
    let v: serde_json::Value = serde_json::from_str(data.as_deref()?).ok()?;
    let obj = v.as_object()?;
    Some((obj.keys().cloned().collect(), obj.get("version").cloned()))
}

/// A path with its names (topics, partitions, broker ids, sequence numbers) replaced by
/// placeholders, so that the same kinds of objects compare.
fn kind(path: &str, topics: &BTreeSet<String>) -> String {
    let mut parts: Vec<String> = Vec::new();
    for (i, part) in path.split('/').enumerate() {
        let prev = parts.last().map(String::as_str);
        let k = match (prev, part) {
            (Some("topics"), t) if topics.contains(t) => "<topic>".to_string(),
            (Some("partitions"), p) if p.parse::<i32>().is_ok() => "<partition>".to_string(),
            (Some("ids"), id) if id.parse::<i32>().is_ok() => "<broker>".to_string(),
            (_, s) if s.starts_with("config_change_") => "config_change_<seq>".to_string(),
            (_, s) if i > 0 && topics.contains(s) => "<topic>".to_string(),
            (_, s) => s.to_string(),
        };
        parts.push(k);
    }
    parts.join("/")
}

fn kinds(tree: &BTreeMap<String, Option<String>>) -> BTreeMap<String, Option<String>> {
    let topics: BTreeSet<String> = tree
        .keys()
        .filter_map(|p| p.strip_prefix("/brokers/topics/"))
        .filter(|t| !t.contains('/'))
        .map(str::to_string)
        .collect();
    tree.iter()
        .map(|(p, d)| (kind(p, &topics), d.clone()))
        .collect()
}

/// Acceptance 2: the tree odradek writes has the paths, JSON keys and `version` numbers of the
/// tree a real Kafka 2.4.1 broker wrote, object kind by object kind. Topic assignments are the
/// one deliberate difference: Kafka 2.8+'s version 3 with `topic_id` (2.4.1 wrote version 2),
/// which topic ids need and every Kafka since 2.0 reads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tree_has_kafkas_layout() {
    let Some(cluster) = Cluster::start(&[1]) else {
        return;
    };
    cluster.wait_for_brokers(&[1]).await;
    let bs = cluster.bootstrap(1);
    run_tool(&[
        "topics",
        "--bootstrap-server",
        &bs,
        "--create",
        "--topic",
        "shaped",
        "--partitions",
        "2",
        "--config",
        "segment.bytes=16384",
    ]);
    cluster.wait_led(1, "shaped", 2).await;
    // A group's commit brings __consumer_offsets; an idempotent producer id, the id block; a
    // config change, the change notification.
    let (ok, _, err) = common::odradek(
        &[
            "consume",
            "--bootstrap-server",
            &bs,
            "--topic",
            "shaped",
            "--group",
            "g",
            "--from-beginning",
            "--timeout-ms",
            "500",
        ],
        None,
    );
    assert!(ok, "{err}");
    let mut c = Conn::connect(cluster.port(1)).await;
    common::wire::init_idempotent_producer(&mut c).await;
    let mut res = incremental_alter_configs_request::AlterConfigsResource::default();
    res.resource_type = 2;
    res.resource_name = StrBytes::from_static_str("shaped");
    let mut cfg = incremental_alter_configs_request::AlterableConfig::default();
    cfg.name = StrBytes::from_static_str("retention.ms");
    cfg.value = Some(StrBytes::from_static_str("600000"));
    res.configs.push(cfg);
    let mut req = IncrementalAlterConfigsRequest::default();
    req.resources.push(res);
    assert_eq!(c.send(1, req).await.responses[0].error_code, 0);

    let out = run_tool(&["metadata-dump", "--zookeeper", &cluster.connect]);
    let ours: BTreeMap<String, Option<String>> = serde_json::from_str(&out).unwrap();
    let theirs: BTreeMap<String, Option<String>> = serde_json::from_str(
        &std::fs::read_to_string(common::kafka_single().join("zk-tree.json")).unwrap(),
    )
    .unwrap();
    let (ours, theirs) = (kinds(&ours), kinds(&theirs));
    let mut differences = Vec::new();
    for (k, data) in &theirs {
        // ZooKeeper's own nodes.
        if k.starts_with("/zookeeper") {
            continue;
        }
        let Some(our_data) = ours.get(k) else {
            differences.push(format!("{k}: missing"));
            continue;
        };
        let (want, got) = (shape(data), shape(our_data));
        // Kafka 2.4.1 wrote the fixture at its IBP; at the default IBP (3.9) a topic carries
        // its id (version 3, from 2.8) and a broker its supported features (version 5, from
        // 2.7), as Kafka 3.9 writes them.
        let newer = match k.as_str() {
            "/brokers/topics/<topic>" => Some(("topic_id", 3)),
            "/brokers/ids/<broker>" => Some(("features", 5)),
            _ => None,
        };
        if let Some((field, version)) = newer {
            let (mut keys, _) = want.clone().unwrap();
            keys.insert(field.into());
            let (got_keys, got_version) = got.clone().unwrap();
            if got_keys != keys || got_version != Some(serde_json::json!(version)) {
                differences.push(format!("{k}: {got:?}, want {keys:?} version {version}"));
            }
            continue;
        }
        if want != got {
            differences.push(format!("{k}: ours {got:?}, Kafka's {want:?}"));
        }
        // Plain-text nodes (`/controller_epoch`) stay plain integers.
        if want.is_none() && data.as_deref().is_some_and(|d| d.parse::<i64>().is_ok()) {
            assert!(
                our_data
                    .as_deref()
                    .is_some_and(|d| d.parse::<i64>().is_ok()),
                "{k}"
            );
        }
    }
    assert!(differences.is_empty(), "{differences:#?}");
    // Objects Kafka 2.4.1's tree had no instance of, checked against Kafka's format.
    let change = ours
        .get("/config/changes/config_change_<seq>")
        .expect("a config change notification");
    assert_eq!(
        shape(change),
        Some((
            ["entity_path", "version"]
                .iter()
                .map(|s| s.to_string())
                .collect(),
            Some(serde_json::json!(2))
        ))
    );
}

/// Acceptance 3: what Kafka's ZooKeeper tools do, written straight to ZooKeeper as
/// `kafka-topics.sh --zookeeper --create` and `kafka-configs.sh --zookeeper --alter` write it:
/// the topic comes online on the odradek brokers and the leader applies the new config. With
/// Kafka 2.4.1's tools present and runnable, the same through the tools themselves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_and_configs_written_by_zookeeper_tools_are_applied() {
    let Some(cluster) = Cluster::start(&[1, 2, 3]) else {
        return;
    };
    cluster.wait_for_brokers(&[1, 2, 3]).await;
    let store = cluster.store().await;
    // AdminZkClient.createTopicWithAssignment (Kafka 2.4): the config, then the assignment.
    store
        .create(
            "/config/topics/external",
            Some(br#"{"version":1,"config":{}}"#.to_vec()),
            CreateMode::Persistent,
        )
        .await
        .unwrap();
    store
        .create(
            "/brokers/topics/external",
            Some(br#"{"version":2,"partitions":{"0":[1],"1":[2],"2":[3]},"adding_replicas":{},"removing_replicas":{}}"#.to_vec()),
            CreateMode::Persistent,
        )
        .await
        .unwrap();
    for id in [1, 2, 3] {
        cluster.wait_led(id, "external", 3).await;
    }
    assert_eq!(
        leaders(cluster.port(2), "external").await,
        BTreeMap::from([(0, (1, 0)), (1, (2, 0)), (2, (3, 0))])
    );
    let (data, _) = store
        .get("/brokers/topics/external")
        .await
        .unwrap()
        .unwrap();
    let z: serde_json::Value = serde_json::from_slice(&data.unwrap()).unwrap();
    assert_eq!(
        z["topic_id"].as_str().map(str::len),
        Some(22),
        "topic id backfilled: {z}"
    );
    // The state znodes `kafka-topics.sh --describe` reads: leader and ISR per partition.
    let (data, _) = store
        .get("/brokers/topics/external/partitions/1/state")
        .await
        .unwrap()
        .unwrap();
    let state: serde_json::Value = serde_json::from_slice(&data.unwrap()).unwrap();
    assert_eq!(
        (state["leader"].as_i64(), state["isr"].clone()),
        (Some(2), serde_json::json!([2]))
    );

    // ConfigCommand (--zookeeper): the new config, then a change notification.
    assert_eq!(produce_records(cluster.port(1), "external", 0, 20).await, 0);
    let configs = br#"{"version":1,"config":{"max.message.bytes":"200","retention.ms":"60000"}}"#;
    common::write_entity_config(&store, "topics/external", Some(configs)).await;
    let port = cluster.port(1);
    wait_until(
        Duration::from_secs(20),
        "the leader refuses batches over 200 bytes",
        || async move {
            produce_records(port, "external", 0, 20).await == 10 // MESSAGE_TOO_LARGE
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
    assert_eq!(
        produce_records(port, "external", 0, 1).await,
        0,
        "a small batch still fits"
    );

    // The tools themselves, when they can run here.
    let Some(home) = common::kafka_home_or_skip() else {
        return;
    };
    let zk = cluster.connect.clone();
    let topics = |args: &[&str]| {
        common::run_command(
            Command::new(home.join("bin/kafka-topics.sh"))
                .args(["--zookeeper", &zk])
                .args(args),
        )
    };
    let (ok, stdout, stderr) = topics(&["--list"]);
    if stderr.contains("ClassNotFoundException") || stderr.contains("NoClassDefFoundError") {
        eprintln!(
            "SKIPPED: kafka-topics.sh cannot start here: this Kafka 2.4.1 distribution lacks the \
             broker jar (libs/kafka_2.13-2.4.1.jar) and the Scala library that hold \
             kafka.admin.TopicCommand"
        );
        return;
    }
    assert!(
        ok && stdout.lines().any(|l| l == "external"),
        "{stdout}\n{stderr}"
    );
    let (ok, stdout, stderr) = topics(&["--describe", "--topic", "external"]);
    assert!(
        ok && stdout.contains("Leader: 2") && stdout.contains("Isr: 2"),
        "{stdout}\n{stderr}"
    );
    let (ok, _, stderr) = topics(&[
        "--create",
        "--topic",
        "by-tool",
        "--partitions",
        "3",
        "--replication-factor",
        "1",
    ]);
    assert!(ok, "{stderr}");
    for id in [1, 2, 3] {
        cluster.wait_led(id, "by-tool", 3).await;
    }
}

/// `/cluster/id` against `meta.properties`: a broker whose data belongs to another cluster
/// refuses to start and says why; `broker.id=-1` takes an id from `/brokers/seqid`.
#[test]
fn data_of_another_cluster_is_refused_and_ids_are_generated() {
    let Some(zk_a) = ZooKeeperServer::start() else {
        return;
    };
    let Some(zk_b) = ZooKeeperServer::start() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("broker");
    let mut b = BrokerProcess::start(
        &dir,
        &[
            "broker.id=-1",
            &format!("zookeeper.connect={}", zk_a.connect_string()),
        ],
    );
    b.stop(false);
    let props = std::fs::read_to_string(dir.join("logs/meta.properties")).unwrap();
    assert!(props.lines().any(|l| l == "broker.id=1001"), "{props}");
    // The same data directory pointed at another ZooKeeper: another cluster id.
    let out = Command::new(env!("CARGO_BIN_EXE_odradek"))
        .arg("broker")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("config/server.properties"))
        .args([
            "--override",
            "listeners=PLAINTEXT://127.0.0.1:0",
            "--override",
            "metrics.port=0",
        ])
        .args([
            "--override",
            &format!("log.dirs={}", dir.join("logs").display()),
        ])
        .args(["--override", "broker.id=-1"])
        .args([
            "--override",
            &format!("zookeeper.connect={}", zk_b.connect_string()),
        ])
        .bounded_output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("belongs to cluster"), "{text}");
}

/// Session expiry: the controller cut off from ZooKeeper for longer than its session loses it.
/// Another broker becomes controller with the next epoch and takes the cut-off broker's
/// partitions offline; when the network heals, that broker notices its lost session,
/// re-registers under a new one, stops acting as controller, and leads its partitions again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_controller_that_loses_its_session_steps_down_and_rejoins() {
    let Some(mut cluster) = Cluster::start(&[]) else {
        return;
    };
    let relay = NetworkPartition::start(cluster.zk.port).await;
    // The first broker up becomes controller: it reaches ZooKeeper through the relay.
    cluster.start_broker_via(3, &format!("{}/odradek", relay.address()));
    cluster.start_broker(1);
    cluster.start_broker(2);
    cluster.wait_for_brokers(&[1, 2, 3]).await;
    assert_eq!(
        metadata(cluster.port(1), Some(&[])).await.controller_id.0,
        3
    );
    let store = cluster.store().await;
    let epoch = controller_epoch(&store).await;
    let (_, before) = store.get("/brokers/ids/3").await.unwrap().unwrap();
    create_topic(&cluster.bootstrap(1), "cut", 6);
    cluster.wait_led(1, "cut", 6).await;
    let acked = produce_each_partition(&cluster, 1, "cut").await;

    relay.cut();
    let port = cluster.port(1);
    wait_until(
        Duration::from_millis(SESSION_TIMEOUT_MS + 15_000),
        "another broker is controller, broker 3's partitions offline",
        || async move {
            let md = metadata(port, Some(&["cut"])).await;
            let offline = md
                .topics
                .iter()
                .flat_map(|t| t.partitions.iter())
                .filter(|p| p.leader_id.0 == -1)
                .count();
            md.controller_id.0 != 3 && md.controller_id.0 >= 0 && offline == 2
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
    assert_eq!(controller_epoch(&store).await, epoch + 1);

    relay.heal();
    let store_ref = &store;
    wait_until(Duration::from_secs(30), "broker 3 registered with a new session", || async move {
        matches!(store_ref.get("/brokers/ids/3").await, Ok(Some((_, stat))) if stat.czxid != before.czxid)
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
    for id in [1, 2, 3] {
        cluster.wait_led(id, "cut", 6).await;
    }
    let c = metadata(cluster.port(3), Some(&[])).await.controller_id.0;
    assert!(c == 1 || c == 2, "controller {c}");
    let consumed = consume_all(&cluster.bootstrap(3), "cut");
    assert_eq!(consumed.len(), acked, "{}", cluster.logs());
    assert!(cluster.brokers.get_mut(&3).unwrap().is_running());
}

/// Topic deletion through `/admin/delete_topics`: every broker drops the topic's data and the
/// znodes go; with a replica's broker down, the deletion waits for it and completes when it
/// returns (Kafka's TopicDeletionManager).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_topic_removes_its_data_on_every_broker() {
    let Some(mut cluster) = Cluster::start(&[1, 2, 3]) else {
        return;
    };
    cluster.wait_for_brokers(&[1, 2, 3]).await;
    let store = cluster.store().await;
    let dirs = |cluster: &Cluster, topic: &str| -> usize {
        cluster
            .brokers
            .values()
            .flat_map(|b| std::fs::read_dir(b.dir.join("logs")).into_iter().flatten())
            .flatten()
            .filter(|e| {
                e.file_name()
                    .to_string_lossy()
                    .strip_prefix(&format!("{topic}-"))
                    .is_some_and(|p| p.parse::<i32>().is_ok())
            })
            .count()
    };
    for topic in ["doomed", "waits"] {
        create_topic(&cluster.bootstrap(1), topic, 6);
        cluster.wait_led(1, topic, 6).await;
        produce_each_partition(&cluster, 1, topic).await;
        assert_eq!(dirs(&cluster, topic), 6);
    }

    run_tool(&[
        "topics",
        "--bootstrap-server",
        &cluster.bootstrap(2),
        "--delete",
        "--topic",
        "doomed",
    ]);
    let store_ref = &store;
    wait_until(
        Duration::from_secs(20),
        "the topic's znodes are gone",
        || async move {
            store_ref
                .get("/brokers/topics/doomed")
                .await
                .unwrap()
                .is_none()
                && store_ref
                    .get("/config/topics/doomed")
                    .await
                    .unwrap()
                    .is_none()
                && store_ref
                    .get("/admin/delete_topics/doomed")
                    .await
                    .unwrap()
                    .is_none()
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
    for id in [1, 2, 3] {
        let port = cluster.port(id);
        wait_until(
            Duration::from_secs(10),
            "no broker lists the topic",
            || async move { leaders(port, "doomed").await.is_empty() },
        )
        .await
        .unwrap();
    }
    assert_eq!(dirs(&cluster, "doomed"), 0, "every replica's data is gone");

    // A replica's broker is down: the deletion waits for it.
    cluster.brokers.get_mut(&3).unwrap().stop(false);
    cluster.wait_for_brokers(&[1, 2]).await;
    let (ok, _, _) = common::odradek(
        &[
            "topics",
            "--bootstrap-server",
            &cluster.bootstrap(1),
            "--delete",
            "--topic",
            "waits",
        ],
        None,
    );
    // Kafka answers REQUEST_TIMED_OUT while the deletion cannot finish; either way it is queued.
    let _ = ok;
    wait_until(
        Duration::from_secs(10),
        "the deletion is queued",
        || async move {
            store_ref
                .get("/admin/delete_topics/waits")
                .await
                .unwrap()
                .is_some()
        },
    )
    .await
    .unwrap();
    assert!(
        store.get("/brokers/topics/waits").await.unwrap().is_some(),
        "not deleted while a replica is offline"
    );
    cluster.brokers.get_mut(&3).unwrap().restart(false);
    wait_until(
        Duration::from_secs(30),
        "the deletion completes once the broker is back",
        || async move {
            store_ref
                .get("/brokers/topics/waits")
                .await
                .unwrap()
                .is_none()
                && store_ref
                    .get("/admin/delete_topics/waits")
                    .await
                    .unwrap()
                    .is_none()
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
    let cluster_ref = &cluster;
    wait_until(
        Duration::from_secs(10),
        "the returning broker's replicas are gone too",
        || async move { dirs(cluster_ref, "waits") == 0 },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
}

/// DeleteRecords on a replicated topic: the leader's log start moves, and every follower's
/// follows it (their `log-start-offset-checkpoint` files say so); consumers start there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_records_moves_the_log_start_on_every_replica() {
    let Some(cluster) =
        Cluster::start_with(&[1, 2, 3], &["log.flush.offset.checkpoint.interval.ms=200"])
    else {
        return;
    };
    cluster.wait_for_brokers(&[1, 2, 3]).await;
    create_replicated_topic(&cluster.bootstrap(1), "trimmed", 1, 3, &[]);
    for id in [1, 2, 3] {
        cluster.wait_led(id, "trimmed", 1).await;
    }
    let leader = leaders(cluster.port(1), "trimmed").await[&0].0;
    for _ in 0..10 {
        assert_eq!(
            produce_records(cluster.port(leader), "trimmed", 0, 10).await,
            0
        );
    }
    let mut c = Conn::connect(cluster.port(leader)).await;
    let mut p = delete_records_request::DeleteRecordsPartition::default();
    p.partition_index = 0;
    p.offset = 40;
    let mut t = delete_records_request::DeleteRecordsTopic::default();
    t.name = name("trimmed");
    t.partitions.push(p);
    let mut req = DeleteRecordsRequest::default();
    req.timeout_ms = 10_000;
    req.topics.push(t);
    {
        let r = c.send(2, req).await;
        let p = &r.topics[0].partitions[0];
        assert_eq!((p.error_code, p.low_watermark), (0, 40), "{r:?}");
    }
    let cluster_ref = &cluster;
    wait_until(
        Duration::from_secs(20),
        "every replica's log starts at 40",
        || async move {
            cluster_ref.brokers.values().all(|b| {
                odradek::log::checkpoint::read_offsets(
                    &b.dir
                        .join("logs")
                        .join(odradek::log::checkpoint::LOG_START_OFFSET_FILE),
                )
                .ok()
                .and_then(|m| m.get(&("trimmed".to_string(), 0)).copied())
                    == Some(40)
            })
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
    // A consumer from the beginning starts at 40.
    let consumed = consume_all(&cluster.bootstrap(2), "trimmed");
    assert_eq!(consumed.len(), 60, "{}", cluster.logs());
}

/// `broker.rack`: two brokers in rack "a", one in "b". Each registration carries its rack,
/// every broker's Metadata and DescribeCluster name each broker's rack, and a topic created or
/// grown with two replicas has each partition in both racks and leaders spread evenly; once a
/// broker without a rack joins, creating a topic fails as in Kafka (UNKNOWN_SERVER_ERROR).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racks_are_registered_shown_and_spread_replicas() {
    let Some(mut cluster) = Cluster::start_each(
        [
            (1, ["broker.rack=a"]),
            (2, ["broker.rack=a"]),
            (3, ["broker.rack=b"]),
        ],
        &[],
    ) else {
        return;
    };
    cluster.wait_for_brokers(&[1, 2, 3]).await;
    let racks: BTreeMap<i32, String> = [(1, "a"), (2, "a"), (3, "b")]
        .into_iter()
        .map(|(id, r)| (id, r.to_string()))
        .collect();

    let store = cluster.store().await;
    for (id, rack) in &racks {
        let path = format!("/brokers/ids/{id}");
        let (data, _) = store.get(&path).await.unwrap().expect("registered");
        let json: serde_json::Value = serde_json::from_slice(&data.unwrap()).unwrap();
        assert_eq!(json["rack"], serde_json::json!(rack), "{path}: {json}");
    }

    for id in racks.keys() {
        let md = metadata(cluster.port(*id), Some(&[])).await;
        let seen: BTreeMap<i32, String> = md
            .brokers
            .iter()
            .map(|b| (b.node_id.0, b.rack.as_deref().unwrap_or("-").to_string()))
            .collect();
        assert_eq!(seen, racks, "Metadata from broker {id}");
        let mut c = Conn::connect(cluster.port(*id)).await;
        let described = match c
            .call(
                ApiKey::DescribeCluster,
                0,
                RequestKind::DescribeCluster(DescribeClusterRequest::default()),
            )
            .await
        {
            ResponseKind::DescribeCluster(r) => r,
            other => panic!("{other:?}"),
        };
        let seen: BTreeMap<i32, String> = described
            .brokers
            .iter()
            .map(|b| (b.broker_id.0, b.rack.as_deref().unwrap_or("-").to_string()))
            .collect();
        assert_eq!(seen, racks, "DescribeCluster from broker {id}");
    }

    let mut c = Conn::connect(cluster.port(2)).await;
    assert_eq!(create_replicated(&mut c, "racked", 6, 2).await, 0);
    for id in racks.keys() {
        cluster.wait_led(*id, "racked", 6).await;
    }
    let check_spread = |assignment: &BTreeMap<i32, Vec<i32>>, partitions: usize| {
        assert_eq!(assignment.len(), partitions, "{assignment:?}");
        let mut leaders: BTreeMap<i32, usize> = BTreeMap::new();
        for (p, replicas) in assignment {
            let in_racks: BTreeSet<&str> = replicas.iter().map(|b| racks[b].as_str()).collect();
            assert_eq!(replicas.len(), 2, "partition {p}: {replicas:?}");
            assert_eq!(in_racks.len(), 2, "partition {p}: {replicas:?}");
            *leaders.entry(replicas[0]).or_default() += 1;
        }
        assert_eq!(
            leaders.values().copied().collect::<Vec<_>>(),
            vec![partitions / 3; 3],
            "preferred leaders {leaders:?}"
        );
    };
    let assigned = topic_assignment(&store, "racked").await;
    check_spread(&assigned, 6);
    for id in racks.keys() {
        let md = metadata(cluster.port(*id), Some(&["racked"])).await;
        let seen: BTreeMap<i32, Vec<i32>> = md.topics[0]
            .partitions
            .iter()
            .map(|p| {
                let replicas = p.replica_nodes.iter().map(|b| b.0).collect();
                (p.partition_index, replicas)
            })
            .collect();
        assert_eq!(seen, assigned, "Metadata from broker {id}");
    }

    let mut topic = create_partitions_request::CreatePartitionsTopic::default();
    topic.name = name("racked");
    topic.count = 9;
    // Null, as clients send it: Kafka places the new partitions.
    topic.assignments = None;
    let mut req = CreatePartitionsRequest::default();
    req.topics.push(topic);
    req.timeout_ms = 10_000;
    match c
        .call(
            ApiKey::CreatePartitions,
            1,
            RequestKind::CreatePartitions(req),
        )
        .await
    {
        ResponseKind::CreatePartitions(r) => assert_eq!(r.results[0].error_code, 0, "{r:?}"),
        other => panic!("{other:?}"),
    }
    let grown = topic_assignment(&store, "racked").await;
    check_spread(&grown, 9);
    assert_eq!(
        grown
            .range(..6)
            .map(|(p, r)| (*p, r.clone()))
            .collect::<BTreeMap<_, _>>(),
        assigned,
        "existing partitions keep their replicas"
    );

    // A broker without a rack: Kafka's AdminUtils refuses to assign ("Not all brokers have
    // rack information"), an error that is no ApiException, so UNKNOWN_SERVER_ERROR.
    cluster.start_broker(4);
    cluster.wait_for_brokers(&[1, 2, 3, 4]).await;
    let mut c = Conn::connect(cluster.port(4)).await;
    assert_eq!(create_replicated(&mut c, "mixed", 3, 2).await, -1);
    assert!(
        store.get("/brokers/topics/mixed").await.unwrap().is_none(),
        "nothing is created"
    );
}

/// CreateTopics v5 for `partitions` partitions with `replication_factor` replicas each; the
/// topic's error code.
async fn create_replicated(
    c: &mut Conn,
    topic: &str,
    partitions: i32,
    replication_factor: i16,
) -> i16 {
    let mut t = create_topics_request::CreatableTopic::default();
    t.name = name(topic);
    t.num_partitions = partitions;
    t.replication_factor = replication_factor;
    let mut req = CreateTopicsRequest::default();
    req.topics.push(t);
    req.timeout_ms = 10_000;
    match c
        .call(ApiKey::CreateTopics, 5, RequestKind::CreateTopics(req))
        .await
    {
        ResponseKind::CreateTopics(r) => r.topics[0].error_code,
        other => panic!("{other:?}"),
    }
}

/// Partition -> replicas as `/brokers/topics/<topic>` holds them.
async fn topic_assignment(store: &ZkStore, topic: &str) -> BTreeMap<i32, Vec<i32>> {
    let path = format!("/brokers/topics/{topic}");
    let (data, _) = store.get(&path).await.unwrap().expect("topic znode");
    let json: serde_json::Value = serde_json::from_slice(&data.unwrap()).unwrap();
    json["partitions"]
        .as_object()
        .expect("partitions")
        .iter()
        .map(|(p, r)| {
            let replicas = r
                .as_array()
                .unwrap()
                .iter()
                .map(|b| b.as_i64().unwrap() as i32)
                .collect();
            (p.parse().unwrap(), replicas)
        })
        .collect()
}
