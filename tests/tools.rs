//! The bundled tools: `odradek topics|produce|consume` against a real broker process, and
//! `odradek metadata-dump` on an embedded store and on a real ZooKeeper.

mod common;

use common::broker_process::BrokerProcess;

#[test]
fn topics_produce_and_consume_round_trip() {
    let tmp = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(&tmp.path().join("broker"), &[]);
    let bs = broker.bootstrap();
    let (ok, out, err) = common::odradek(
        &[
            "topics",
            "--bootstrap-server",
            &bs,
            "--create",
            "--topic",
            "tooled",
            "--partitions",
            "3",
            "--config",
            "retention.ms=3600000",
        ],
        None,
    );
    assert!(ok && out.contains("Created topic tooled."), "{out}{err}");
    let (ok, _, err) = common::odradek(
        &[
            "topics",
            "--bootstrap-server",
            &bs,
            "--create",
            "--topic",
            "tooled",
            "--partitions",
            "3",
        ],
        None,
    );
    assert!(!ok && err.contains("TopicAlreadyExists"), "{err}");
    let (_, out, _) = common::odradek(&["topics", "--bootstrap-server", &bs, "--list"], None);
    assert!(out.lines().any(|l| l == "tooled"), "{out}");
    let (_, out, _) = common::odradek(
        &[
            "topics",
            "--bootstrap-server",
            &bs,
            "--describe",
            "--topic",
            "tooled",
        ],
        None,
    );
    assert!(
        out.contains("PartitionCount: 3") && out.matches("Leader: 0").count() == 3,
        "{out}"
    );

    let lines: String = (0..300).map(|i| format!("k{i}:value {i}\n")).collect();
    let (ok, _, err) = common::odradek(
        &[
            "produce",
            "--bootstrap-server",
            &bs,
            "--topic",
            "tooled",
            "--key-separator",
            ":",
            "--compression-codec",
            "gzip",
            "--batch-lines",
            "50",
        ],
        Some(&lines),
    );
    assert!(ok && err.contains("300 records sent"), "{err}");
    let (ok, out, err) = common::odradek(
        &[
            "consume",
            "--bootstrap-server",
            &bs,
            "--topic",
            "tooled",
            "--from-beginning",
            "--print-key",
            "--key-separator",
            ":",
            "--timeout-ms",
            "1000",
        ],
        None,
    );
    assert!(
        ok && err.contains("Processed a total of 300 messages"),
        "{err}"
    );
    let mut got: Vec<&str> = out.lines().collect();
    got.sort();
    let mut want: Vec<String> = (0..300).map(|i| format!("k{i}:value {i}")).collect();
    want.sort();
    assert_eq!(got, want);
    // Keys are partitioned as the Java client partitions them.
    for p in 0..3 {
        let (_, out, _) = common::odradek(
            &[
                "consume",
                "--bootstrap-server",
                &bs,
                "--topic",
                "tooled",
                "--partition",
                &p.to_string(),
                "--from-beginning",
                "--print-key",
                "--key-separator",
                ":",
                "--timeout-ms",
                "500",
            ],
            None,
        );
        for line in out.lines() {
            let key = line.split(':').next().unwrap();
            assert_eq!(
                odradek::tools::client::partition_for_key(key.as_bytes(), 3),
                p as usize,
                "{key}"
            );
        }
    }
    let (ok, out, _) = common::odradek(
        &[
            "consume",
            "--bootstrap-server",
            &bs,
            "--topic",
            "tooled",
            "--from-beginning",
            "--max-messages",
            "7",
        ],
        None,
    );
    assert!(ok && out.lines().count() == 7, "{out}");

    let (ok, out, err) = common::odradek(
        &[
            "topics",
            "--bootstrap-server",
            &bs,
            "--delete",
            "--topic",
            "tooled",
        ],
        None,
    );
    assert!(ok && out.contains("Deleted topic tooled."), "{out}{err}");
    let (_, out, _) = common::odradek(&["topics", "--bootstrap-server", &bs, "--list"], None);
    assert!(!out.lines().any(|l| l == "tooled"), "{out}");
    let (ok, _, err) = common::odradek(
        &[
            "consume",
            "--bootstrap-server",
            &bs,
            "--topic",
            "tooled",
            "--timeout-ms",
            "100",
        ],
        None,
    );
    assert!(!ok && err.contains("UnknownTopicOrPartition"), "{err}");
}

fn fixture_tree() -> std::collections::BTreeMap<String, Option<String>> {
    let text = std::fs::read_to_string(common::kafka_single().join("zk-tree.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn parse_dump(out: &str) -> std::collections::BTreeMap<String, Option<String>> {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("not a tree dump ({e}):\n{out}"))
}

/// Kafka's ephemeral nodes, which `import-zk-tree` leaves out.
fn ephemeral(path: &str) -> bool {
    path == "/controller" || path.starts_with("/brokers/ids/")
}

#[test]
fn metadata_dump_prints_the_embedded_tree_of_a_data_dir() {
    let tmp = tempfile::tempdir().unwrap();
    let log_dir = tmp.path().join("logs");
    let tree_file = common::kafka_single().join("zk-tree.json");
    let (ok, _, err) = common::odradek(
        &[
            "import-zk-tree",
            tree_file.to_str().unwrap(),
            log_dir.to_str().unwrap(),
        ],
        None,
    );
    assert!(ok, "{err}");
    let (ok, out, err) = common::odradek(
        &["metadata-dump", "--data-dir", log_dir.to_str().unwrap()],
        None,
    );
    assert!(ok, "{err}");
    let dumped = parse_dump(&out);
    // What Kafka 2.4.1's ZooKeeper held, minus the session's nodes; the root's data is null in
    // odradek's tree (ZooKeeper's own root holds an empty array).
    let want: std::collections::BTreeMap<_, _> = fixture_tree()
        .into_iter()
        .filter(|(p, _)| !ephemeral(p) && p != "/")
        .collect();
    let got: std::collections::BTreeMap<_, _> =
        dumped.into_iter().filter(|(p, _)| p != "/").collect();
    assert_eq!(got, want);

    let (ok, _, err) = common::odradek(
        &["metadata-dump", "--data-dir", tmp.path().to_str().unwrap()],
        None,
    );
    assert!(
        !ok && err.contains("odradek-metadata.json not found"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_dump_prints_a_zookeeper_tree() {
    use odradek::metadata::store::{CreateMode, MetadataStore};
    let Some(server) = common::zookeeper::ZooKeeperServer::start() else {
        return;
    };
    let connect = format!("{}/kafka", server.connect_string());
    // The fixture's tree, written into ZooKeeper as Kafka wrote it (ephemeral nodes included,
    // held by this session while the dump runs).
    let writer = odradek::metadata::zk::ZkStore::connect(
        &connect,
        std::time::Duration::from_secs(10),
        std::time::Duration::from_secs(10),
    )
    .await
    .unwrap();
    let fixture = fixture_tree();
    let kafka_nodes: std::collections::BTreeMap<_, _> = fixture
        .iter()
        .filter(|(p, _)| *p != "/" && !p.starts_with("/zookeeper"))
        .collect();
    for (path, data) in &kafka_nodes {
        let mode = if ephemeral(path) {
            CreateMode::Ephemeral
        } else {
            CreateMode::Persistent
        };
        // Sorted paths: every parent comes before its children.
        let data = data.as_ref().map(|d| d.clone().into_bytes());
        writer
            .create(path, data, mode)
            .await
            .unwrap_or_else(|e| panic!("{path}: {e}"));
    }
    let (ok, out, err) = tokio::task::block_in_place(|| {
        common::odradek(&["metadata-dump", "--zookeeper", &connect], None)
    });
    assert!(ok, "{err}");
    let dumped = parse_dump(&out);
    let got: std::collections::BTreeMap<_, _> = dumped.iter().filter(|(p, _)| *p != "/").collect();
    assert_eq!(got, kafka_nodes);
    assert_eq!(dumped.get("/"), Some(&None));

    // Without the chroot: ZooKeeper's own nodes too, and Kafka's under /kafka.
    let (ok, out, err) = tokio::task::block_in_place(|| {
        common::odradek(
            &["metadata-dump", "--zookeeper", &server.connect_string()],
            None,
        )
    });
    assert!(ok, "{err}");
    let dumped = parse_dump(&out);
    assert!(dumped.contains_key("/zookeeper/quota"), "{out}");
    assert_eq!(
        dumped.get("/kafka/cluster/id"),
        Some(&fixture["/cluster/id"])
    );
    drop(writer);

    let dead = format!("127.0.0.1:{}", common::broker_process::free_port());
    let (ok, _, err) = tokio::task::block_in_place(|| {
        common::odradek(
            &[
                "metadata-dump",
                "--zookeeper",
                &dead,
                "--zookeeper-connection-timeout-ms",
                "500",
            ],
            None,
        )
    });
    assert!(!ok && err.contains(&dead), "{err}");
}
