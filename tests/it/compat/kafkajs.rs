//! KafkaJS (admin and idempotent producer) against a real odradek process. KafkaJS consumes only
//! through a consumer group, so its consume test comes with the consumer-groups issue; here the
//! records it wrote are read back from the log files.

use crate::common;
use crate::common::BoundedOutput;

use std::path::Path;
use std::process::Command;

use common::broker_process::BrokerProcess;
use odradek::config::LogConfig;
use odradek::log::{LoadParams, PartitionLog};

#[test]
fn kafkajs_creates_topics_and_produces_every_codec_it_supports() {
    let node_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("compat-tests/node");
    if !node_dir.join("node_modules/kafkajs").is_dir() {
        common::missing_tool("KafkaJS (scripts/node-deps.sh)");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let mut broker = BrokerProcess::start(&tmp.path().join("broker"), &[]);
    let out = Command::new("node")
        .arg(node_dir.join("produce.js"))
        .args([&broker.bootstrap(), "kafkajs", "10000"])
        .bounded_output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}\n{}\nbroker:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        broker.log_tail()
    );
    // KafkaJS consumes only through a group: read one topic back that way.
    let out = Command::new("node")
        .arg(node_dir.join("consume.js"))
        .args([&broker.bootstrap(), "kafkajs-gzip", "10000"])
        .bounded_output()
        .unwrap();
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("consumed 10000"),
        "{}\n{}\nbroker:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        broker.log_tail()
    );
    broker.stop(false);
    for codec in ["none", "gzip", "snappy"] {
        let mut seen = 0;
        for p in 0..3 {
            let dir = tmp.path().join(format!("broker/logs/kafkajs-{codec}-{p}"));
            let log = PartitionLog::open(
                &dir,
                LogConfig::default(),
                LoadParams {
                    clean_shutdown: true,
                    ..LoadParams::default()
                },
            )
            .unwrap();
            let first = log.read(0, 1, log.log_end_offset(), true).unwrap().records;
            let want_codec = match codec {
                "none" => 0,
                "gzip" => 1,
                _ => 2,
            };
            assert_eq!(
                odradek::log::batch::BatchHeader::parse(&first)
                    .unwrap()
                    .compression(),
                want_codec,
                "{codec}: stored as sent"
            );
            let recs = common::read_all(&log);
            let mut last = -1i64;
            for r in &recs {
                let key = String::from_utf8(r.key.clone().unwrap().to_vec()).unwrap();
                let i: i64 = key.trim_start_matches("k-").parse().unwrap();
                assert!(
                    i > last,
                    "{codec}-{p}: {i} after {last}: per-partition order"
                );
                last = i;
                assert_eq!(r.value.as_deref(), Some(format!("v-{i}").as_bytes()));
                assert_eq!(r.headers.len(), 1);
                assert_eq!(r.headers[0].1.as_deref(), Some(i.to_string().as_bytes()));
            }
            seen += recs.len();
        }
        assert_eq!(seen, 10_000, "{codec}");
    }
}
