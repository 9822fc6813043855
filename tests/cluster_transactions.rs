//! Transactions on three odradek brokers and a real ZooKeeper: the transaction coordinator (the
//! leader of the id's `__transaction_state` partition) writes its markers to partition leaders
//! on other brokers with WriteTxnMarkers over the wire, and the Java client's transactions and
//! exactly-once consume-transform-produce work as on one broker.

mod common;

/// How long the successor of a killed processor runs without input before it ends: its first
/// assignment waits for the killed member's session (6 s) to expire, so this must be longer.
const SUCCESSOR_IDLE_EXIT_MS: &str = "15000";

use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::broker_process::BrokerProcess;
use common::wire::Conn;
use common::zookeeper::ZooKeeperServer;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

/// The broker coordinating transactional id `id`, asked of the broker on `port` (which creates
/// `__transaction_state` on first use), once it has a leader.
async fn txn_coordinator(port: u16, id: &str) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut c = Conn::connect(port).await;
        let mut r = FindCoordinatorRequest::default();
        r.key = s(id);
        r.key_type = 1;
        if let ResponseKind::FindCoordinator(r) = c
            .call(ApiKey::FindCoordinator, 2, RequestKind::FindCoordinator(r))
            .await
            && r.error_code == 0
        {
            return r.node_id.0;
        }
        assert!(Instant::now() < deadline, "no coordinator for {id}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The leaders of `topic`'s partitions as the broker on `port` knows them, once all are led.
async fn leaders(port: u16, topic: &str, partitions: usize) -> BTreeSet<i32> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut c = Conn::connect(port).await;
        let mut t = metadata_request::MetadataRequestTopic::default();
        t.name = Some(TopicName(s(topic)));
        let mut r = MetadataRequest::default();
        r.topics = Some(vec![t]);
        if let ResponseKind::Metadata(md) =
            c.call(ApiKey::Metadata, 9, RequestKind::Metadata(r)).await
            && let Some(t) = md.topics.first()
            && t.partitions.len() == partitions
            && t.partitions.iter().all(|p| p.leader_id.0 >= 0)
        {
            return t.partitions.iter().map(|p| p.leader_id.0).collect();
        }
        assert!(Instant::now() < deadline, "{topic} never fully led");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_span_brokers_with_markers_over_the_wire() {
    let Some(zk) = ZooKeeperServer::start() else {
        return;
    };
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
    let connect = format!("{}/odradek-txn", zk.connect_string());
    let brokers: Vec<BrokerProcess> = [1, 2, 3]
        .into_iter()
        .map(|id| {
            BrokerProcess::start(
                &tmp.path().join(format!("broker-{id}")),
                &[
                    &format!("broker.id={id}"),
                    &format!("zookeeper.connect={connect}"),
                ],
            )
        })
        .collect();
    let logs = || {
        brokers
            .iter()
            .map(|b| b.log_tail())
            .collect::<Vec<_>>()
            .join("\n---\n")
    };
    let bs = brokers[0].bootstrap();

    let run = |args: &[&str]| {
        let out = Command::new("java")
            .args(["-cp", &cp, "TransactionalClient"])
            .args(args)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            out.status.success(),
            "{args:?}:\n{stdout}\n{}\n{}",
            String::from_utf8_lossy(&out.stderr),
            logs()
        );
        stdout
    };

    // The producer's transactional id is "java-<topic>" (TransactionalClient).
    let out = run(&["commit-abort", &bs, "spread-txn"]);
    assert!(
        out.lines()
            .any(|l| l == "read_committed=30 committed-values-ok=true"),
        "{out}\n{}",
        logs()
    );
    assert!(out.lines().any(|l| l == "read_uncommitted=60"), "{out}");
    let coordinator = txn_coordinator(brokers[1].port, "java-spread-txn").await;
    let led = leaders(brokers[2].port, "spread-txn", 3).await;
    assert!(
        led.iter().any(|l| *l != coordinator),
        "some partition is led by a broker other than the coordinator {coordinator}: {led:?}"
    );

    // Consume-transform-produce across the brokers, the processor killed mid-way.
    let n = 200usize;
    for topic in ["ctp-in", "ctp-out"] {
        let (ok, _, err) = common::odradek(
            &[
                "topics",
                "--bootstrap-server",
                &bs,
                "--create",
                "--topic",
                topic,
                "--partitions",
                "3",
            ],
            None,
        );
        assert!(ok, "{err}");
        leaders(brokers[0].port, topic, 3).await;
    }
    let lines: String = (0..n).map(|i| format!("v-{i}\n")).collect();
    let (ok, _, err) = common::odradek(
        &["produce", "--bootstrap-server", &bs, "--topic", "ctp-in"],
        Some(&lines),
    );
    assert!(ok, "{err}");
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
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = second.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = Command::new("kill")
                .args(["-9", &second.id().to_string()])
                .status();
            let _ = second.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        status.is_some_and(|s| s.success()),
        "{status:?}\n{}",
        logs()
    );
    let out = run(&["read", &bs, "ctp-out", "3"]);
    let mut values: Vec<&str> = out.lines().collect();
    values.sort_unstable();
    let mut expected: Vec<String> = (0..n).map(|i| format!("out-v-{i}")).collect();
    expected.sort_unstable();
    assert_eq!(values, expected, "every input exactly once\n{}", logs());
    drop(brokers);
    drop(zk);
}
