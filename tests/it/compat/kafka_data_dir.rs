//! A data directory written by Apache Kafka 2.4.1, with its ZooKeeper tree imported, is served by
//! an odradek broker: topics, records and the consumer group's committed offsets.

use crate::common;
use crate::common::BoundedOutput;

use std::process::Command;

use common::broker_process::BrokerProcess;
use common::wire::Conn;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kafka_241_data_dir_is_served_with_its_offsets() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("broker");
    common::kafka_single_broker_dir(&dir);
    // Kafka's broker was broker 1 with 50 offsets partitions; its meta.properties says so. Its
    // consumer committed on 2026-11-24 (MANIFEST.md): under the default retention of 7 days the
    // offsets expire as the group loads (as they would in Kafka), so they are kept for a century.
    let broker = BrokerProcess::start(
        &dir,
        &[
            "broker.id=1",
            "offsets.topic.num.partitions=50",
            "offsets.retention.minutes=52560000",
        ],
    );

    let bs = broker.bootstrap();
    let consumed = Command::new(env!("CARGO_BIN_EXE_odradek"))
        .args([
            "consume",
            "--bootstrap-server",
            &bs,
            "--topic",
            "plain",
            "--from-beginning",
            "--print-key",
            "--key-separator",
            "=",
            "--timeout-ms",
            "1000",
        ])
        .bounded_output()
        .unwrap();
    let text = String::from_utf8_lossy(&consumed.stdout);
    assert_eq!(
        text.lines().count(),
        303,
        "{}\n{}",
        String::from_utf8_lossy(&consumed.stderr),
        broker.log_tail()
    );
    assert!(text.lines().any(|l| l == "key-298=value-298-partition-1"));
    assert!(text.lines().any(|l| l == "null=null-key-value"));

    let mut c = Conn::connect(broker.port).await;
    let mut req = OffsetFetchRequest::default();
    req.group_id = GroupId(StrBytes::from_static_str("fixture-group"));
    req.topics = None;
    let offsets = match c
        .call(ApiKey::OffsetFetch, 7, RequestKind::OffsetFetch(req))
        .await
    {
        ResponseKind::OffsetFetch(r) => {
            assert_eq!(r.error_code, 0);
            let mut v: Vec<(String, i32, i64, String)> = r
                .topics
                .iter()
                .flat_map(|t| {
                    t.partitions.iter().map(move |p| {
                        (
                            t.name.0.to_string(),
                            p.partition_index,
                            p.committed_offset,
                            p.metadata.as_deref().unwrap_or("").to_string(),
                        )
                    })
                })
                .collect();
            v.sort();
            v
        }
        other => panic!("{other:?}"),
    };
    assert_eq!(
        offsets,
        vec![
            ("plain".to_string(), 0, 101, String::new()),
            ("plain".to_string(), 1, 60, "partial".to_string()),
            ("plain".to_string(), 2, 101, String::new()),
        ],
        "the offsets Kafka's consumer committed (MANIFEST.md)"
    );

    // `odradek groups` prints what Kafka's kafka-consumer-groups.sh printed for this group,
    // column for column (Kafka's row order follows a hash map, so rows are compared sorted).
    let described = Command::new(env!("CARGO_BIN_EXE_odradek"))
        .args([
            "groups",
            "--bootstrap-server",
            &bs,
            "--describe",
            "--group",
            "fixture-group",
        ])
        .bounded_output()
        .unwrap();
    assert!(described.status.success());
    assert!(
        String::from_utf8_lossy(&described.stderr)
            .contains("Consumer group 'fixture-group' has no active members.")
    );
    let expected = std::fs::read_to_string(
        common::kafka_single().join("expected-consumer-groups-describe.txt"),
    )
    .unwrap();
    let sorted = |text: &str| {
        let mut lines: Vec<String> = text.lines().map(|l| l.trim_end().to_string()).collect();
        lines[2..].sort();
        lines
    };
    assert_eq!(
        sorted(&String::from_utf8_lossy(&described.stdout)),
        sorted(&expected)
    );
}
