//! The bundled tools (`odradek topics|produce|consume`) against a real broker process.

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
