//! Transactions on three odradek brokers and a real ZooKeeper: the transaction coordinator (the
//! leader of the id's `__transaction_state` partition) writes its markers to partition leaders
//! on other brokers with WriteTxnMarkers over the wire, and the Java client's transactions and
//! exactly-once consume-transform-produce work as on one broker.

use crate::common;

/// How long the successor of a killed processor runs without input before it ends: its first
/// assignment waits for the killed member's session (6 s) to expire, so this must be longer.
const SUCCESSOR_IDLE_EXIT_MS: &str = "15000";

use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::cluster::{Cluster, create_topic, leaders};
use common::wire::Conn;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

/// The broker coordinating transactional id `id`, asked of the broker on `port` (which creates
/// `__transaction_state` on first use), once it has a leader.
async fn txn_coordinator(port: u16, id: &str) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut r = FindCoordinatorRequest::default();
        r.key = StrBytes::from_string(id.to_string());
        r.key_type = 1;
        let r = Conn::connect(port).await.send(2, r).await;
        if r.error_code == 0 {
            return r.node_id.0;
        }
        assert!(Instant::now() < deadline, "no coordinator for {id}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The brokers leading `topic`'s partitions as broker `id` knows them, once all are led.
async fn led_by(cluster: &Cluster, id: i32, topic: &str, partitions: usize) -> BTreeSet<i32> {
    cluster.wait_led(id, topic, partitions).await;
    leaders(cluster.port(id), topic)
        .await
        .values()
        .map(|(leader, _)| *leader)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_span_brokers_with_markers_over_the_wire() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(jars) = common::kafka_clients_classpath_for("3.9") else {
        common::missing_tool("kafka-clients 3.9 jars (scripts/java-deps.sh)");
        return;
    };
    let classes = tmp.path().join("classes");
    let (Some(cp), Some(_)) = (
        common::compile_java_against("TransactionalClient", &classes, &jars),
        common::compile_java_against("TransactionalProcessor", &classes, &jars),
    ) else {
        common::missing_tool("javac");
        return;
    };
    let Some(cluster) = Cluster::start(&[1, 2, 3]) else {
        return;
    };
    let bs = cluster.bootstrap(1);

    let run = |args: &[&str]| common::run_java(&cp, "TransactionalClient", args, || cluster.logs());

    // The producer's transactional id is "java-<topic>" (TransactionalClient).
    let out = run(&["commit-abort", &bs, "spread-txn"]);
    assert!(
        out.lines()
            .any(|l| l == "read_committed=30 committed-values-ok=true"),
        "{out}\n{}",
        cluster.logs()
    );
    assert!(out.lines().any(|l| l == "read_uncommitted=60"), "{out}");
    let coordinator = txn_coordinator(cluster.port(2), "java-spread-txn").await;
    let led = led_by(&cluster, 3, "spread-txn", 3).await;
    assert!(
        led.iter().any(|l| *l != coordinator),
        "some partition is led by a broker other than the coordinator {coordinator}: {led:?}"
    );

    // Consume-transform-produce across the brokers, the processor killed mid-way.
    let n = 200usize;
    for topic in ["ctp-in", "ctp-out"] {
        create_topic(&bs, topic, 3);
        cluster.wait_led(1, topic, 3).await;
    }
    let lines: String = (0..n).map(|i| format!("v-{i}\n")).collect();
    common::cluster::produce_lines(&bs, "ctp-in", &[], &lines);
    let processor = |idle_ms: &str| {
        Command::new("java")
            .args(["-cp", &cp, "TransactionalProcessor", &bs])
            .args(["ctp-in", "ctp-out", "ctp-group", "ctp-txn", idle_ms])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let mut first = processor("30000");
    // Kill it once some output is committed (read_committed readers see it).
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let seen = run(&["read", &bs, "ctp-out", "3"]).lines().count();
        if seen >= 40 || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let _ = Command::new("kill")
        .args(["-9", &first.id().to_string()])
        .status();
    let _ = first.wait();
    let mut second = processor(SUCCESSOR_IDLE_EXIT_MS);
    let status = common::wait_or_kill(&mut second, Duration::from_secs(120));
    assert!(
        status.is_some_and(|s| s.success()),
        "{status:?}\n{}",
        cluster.logs()
    );
    let out = run(&["read", &bs, "ctp-out", "3"]);
    let mut values: Vec<&str> = out.lines().collect();
    values.sort_unstable();
    let mut expected: Vec<String> = (0..n).map(|i| format!("out-v-{i}")).collect();
    expected.sort_unstable();
    assert_eq!(
        values,
        expected,
        "every input exactly once\n{}",
        cluster.logs()
    );
    drop(cluster);
}
