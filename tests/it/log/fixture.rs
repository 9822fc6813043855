//! A data directory written by Apache Kafka 2.4.1 opens in odradek and reads back exactly as
//! Kafka's own consumer and `kafka-dump-log.sh` saw it (`expected.json`, `expected-dump-*.txt`).

use crate::common;
use crate::common::BoundedOutput;

use std::path::Path;
use std::process::Command;

use odradek::config::LogConfig;
use odradek::log::LogManager;
use odradek::log::batch::codec_name;
use odradek::log::manager::BrokerIdentity;
use odradek::log::records::decode_batch;
use serde_json::Value;

fn expected() -> Value {
    let text = std::fs::read_to_string(common::kafka_single().join("expected.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn open_fixture(tmp: &Path, keep_clean_marker: bool) -> LogManager {
    common::copy_tree(&common::kafka_single().join("logdir"), tmp);
    if !keep_clean_marker {
        std::fs::remove_file(tmp.join(".kafka_cleanshutdown")).unwrap();
    }
    let e = expected();
    let identity = BrokerIdentity {
        broker_id: e["broker_id"].as_i64().unwrap() as i32,
        cluster_id: e["cluster_id"].as_str().map(str::to_string),
    };
    let segment_bytes = |topic: &str| {
        let mut c = LogConfig::default();
        if topic == "multi-segment" {
            c.segment_bytes = 16384;
        }
        c
    };
    LogManager::open(
        &[tmp.to_path_buf()],
        &identity,
        LogConfig::default(),
        segment_bytes,
    )
    .unwrap()
}

fn str_or_null(b: &Option<bytes::Bytes>) -> Value {
    match b {
        Some(b) => Value::String(String::from_utf8(b.to_vec()).unwrap()),
        None => Value::Null,
    }
}

/// Every batch header and every record of every partition equals what Kafka recorded.
fn check_against_expected(manager: &LogManager) {
    let e = expected();
    let partitions = e["partitions"].as_object().unwrap();
    assert_eq!(
        manager.partitions().len(),
        110,
        "every partition directory opens"
    );
    for (name, want) in partitions {
        let (topic, partition) = name.rsplit_once('-').unwrap();
        let handle = manager.get(topic, partition.parse().unwrap()).unwrap();
        let log = handle.lock();
        assert_eq!(
            log.log_start_offset(),
            want["log_start_offset"].as_i64().unwrap(),
            "{name}"
        );
        assert_eq!(
            log.log_end_offset(),
            want["log_end_offset"].as_i64().unwrap(),
            "{name}"
        );
        let seg_bases: Vec<i64> = log.segments().map(|s| s.base_offset).collect();
        let want_bases: Vec<i64> = want["segments"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["base_offset"].as_i64().unwrap())
            .collect();
        assert_eq!(seg_bases, want_bases, "{name} segments");
        assert_eq!(log.leader_epochs(), &[(0, 0)], "{name} leader epochs");

        // Batch by batch, through the read path (one batch per read so positions are known).
        let batches = want["batches"].as_array().unwrap();
        let mut records_seen = Vec::new();
        let mut next = 0;
        for wb in batches {
            let r = log.read(next, 1, log.log_end_offset(), true).unwrap();
            let size = wb["size_bytes"].as_u64().unwrap() as usize;
            assert_eq!(
                r.records.len(),
                size,
                "{name} batch at {next}: one whole batch"
            );
            let (h, recs) = decode_batch(&r.records).unwrap();
            assert_eq!(h.base_offset, wb["base_offset"].as_i64().unwrap(), "{name}");
            assert_eq!(
                h.last_offset(),
                wb["last_offset"].as_i64().unwrap(),
                "{name}"
            );
            assert_eq!(
                h.records_count as i64,
                wb["count"].as_i64().unwrap(),
                "{name}"
            );
            assert_eq!(h.magic as i64, wb["magic"].as_i64().unwrap());
            assert_eq!(
                codec_name(h.compression()),
                wb["codec"].as_str().unwrap(),
                "{name}"
            );
            assert_eq!(h.producer_id, wb["producer_id"].as_i64().unwrap(), "{name}");
            assert_eq!(
                h.producer_epoch as i64,
                wb["producer_epoch"].as_i64().unwrap()
            );
            assert_eq!(
                h.base_sequence as i64,
                wb["base_sequence"].as_i64().unwrap(),
                "{name}"
            );
            assert_eq!(
                h.last_sequence() as i64,
                wb["last_sequence"].as_i64().unwrap(),
                "{name}"
            );
            assert_eq!(
                h.partition_leader_epoch as i64,
                wb["partition_leader_epoch"].as_i64().unwrap()
            );
            assert_eq!(
                h.is_transactional(),
                wb["is_transactional"].as_bool().unwrap()
            );
            assert_eq!(
                h.is_control(),
                wb["is_control"].as_bool().unwrap(),
                "{name}"
            );
            assert_eq!(h.max_timestamp, wb["max_timestamp"].as_i64().unwrap());
            assert_eq!(h.crc as i64, wb["crc"].as_i64().unwrap(), "{name}");
            if !h.is_control() {
                records_seen.extend(recs);
            }
            next = h.next_offset();
        }
        assert_eq!(next, log.log_end_offset(), "{name}: batches cover the log");
        assert_eq!(batches.len() as i64, want["batch_count"].as_i64().unwrap());
        assert_eq!(
            batches
                .iter()
                .filter(|b| b["is_control"].as_bool().unwrap())
                .count() as i64,
            want["control_batch_count"].as_i64().unwrap()
        );
        assert_eq!(
            records_seen.len() as i64,
            want["data_record_count"].as_i64().unwrap(),
            "{name}"
        );

        if let Some(want_records) = want.get("records").and_then(Value::as_array) {
            assert_eq!(records_seen.len(), want_records.len(), "{name}");
            for (got, wr) in records_seen.iter().zip(want_records) {
                assert_eq!(got.offset, wr["offset"].as_i64().unwrap(), "{name}");
                assert_eq!(
                    got.timestamp,
                    wr["timestamp"].as_i64().unwrap(),
                    "{name}@{}",
                    got.offset
                );
                assert_eq!(str_or_null(&got.key), wr["key"], "{name}@{}", got.offset);
                assert_eq!(
                    str_or_null(&got.value),
                    wr["value"],
                    "{name}@{}",
                    got.offset
                );
                let headers: Vec<Value> = got
                    .headers
                    .iter()
                    .map(|(k, v)| {
                        serde_json::json!([String::from_utf8(k.to_vec()).unwrap(), str_or_null(v)])
                    })
                    .collect();
                assert_eq!(
                    Value::Array(headers),
                    wr["headers"],
                    "{name}@{}",
                    got.offset
                );
            }
        }
    }
    // The partitions Kafka never wrote to are open and empty.
    let empty = manager.get("__consumer_offsets", 0).unwrap();
    assert_eq!(empty.lock().log_end_offset(), 0);
}

#[test]
fn kafka_241_data_dir_opens_and_reads_back_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let manager = open_fixture(tmp.path(), true);
    check_against_expected(&manager);
    // The aborted transaction Kafka indexed is there.
    let txn = manager.get("txn", 0).unwrap();
    let log = txn.lock();
    let aborted: Vec<_> = log
        .segments()
        .flat_map(|s| s.txn_index.entries().to_vec())
        .collect();
    assert_eq!(aborted.len(), 1);
    assert_eq!(
        (
            aborted[0].producer_id,
            aborted[0].first_offset,
            aborted[0].last_offset,
            aborted[0].last_stable_offset
        ),
        (1, 11, 21, 22)
    );
}

#[test]
fn kafka_241_data_dir_recovers_to_the_same_content_without_the_clean_marker() {
    let tmp = tempfile::tempdir().unwrap();
    let manager = open_fixture(tmp.path(), false);
    check_against_expected(&manager);
}

#[test]
fn reading_by_offset_and_timestamp_in_the_kafka_written_multi_segment_log() {
    let tmp = tempfile::tempdir().unwrap();
    let manager = open_fixture(tmp.path(), true);
    let handle = manager.get("multi-segment", 0).unwrap();
    let log = handle.lock();
    let e = expected();
    let recs = e["partitions"]["multi-segment-0"]["records"]
        .as_array()
        .unwrap();
    for wr in recs.iter().step_by(7) {
        let off = wr["offset"].as_i64().unwrap();
        let r = log.read(off, 1, log.log_end_offset(), true).unwrap();
        let (h, _) = decode_batch(&r.records).unwrap();
        assert!(
            h.base_offset <= off && off <= h.last_offset(),
            "offset {off} in batch {}..{}",
            h.base_offset,
            h.last_offset()
        );
        let ts = wr["timestamp"].as_i64().unwrap();
        let (found, found_ts) = log.offset_for_timestamp(ts).unwrap().unwrap();
        // Timestamps can repeat within a millisecond: the answer is the first record at or after.
        let first = recs
            .iter()
            .find(|r| r["timestamp"].as_i64().unwrap() >= ts)
            .unwrap();
        assert_eq!(found, first["offset"].as_i64().unwrap(), "timestamp {ts}");
        assert_eq!(found_ts, first["timestamp"].as_i64().unwrap());
    }
    let last_ts = recs.last().unwrap()["timestamp"].as_i64().unwrap();
    assert_eq!(log.offset_for_timestamp(last_ts + 1).unwrap(), None);
}

#[test]
fn opening_with_another_broker_id_or_cluster_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    common::copy_tree(&common::kafka_single().join("logdir"), tmp.path());
    for identity in [
        BrokerIdentity {
            broker_id: 2,
            cluster_id: None,
        },
        BrokerIdentity {
            broker_id: 1,
            cluster_id: Some("someone-else".into()),
        },
    ] {
        let err = LogManager::open(
            &[tmp.path().to_path_buf()],
            &identity,
            LogConfig::default(),
            |_| LogConfig::default(),
        )
        .err()
        .expect("must refuse");
        assert!(err.to_string().contains("meta.properties"), "{err}");
    }
}

fn dump(args: &[&str], files: &[std::path::PathBuf]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_odradek"))
        .arg("dump-log")
        .args(args)
        .arg("--files")
        .args(files)
        .bounded_output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Our `dump-log` prints Kafka's own lines for Kafka's files (we add header values at the end
/// of a record line, which Kafka does not print).
#[test]
fn dump_log_matches_kafka_dump_log_output() {
    let fx = common::kafka_single();
    for (part, expected_file) in [
        ("plain-0", "expected-dump-plain-0.txt"),
        ("txn-0", "expected-dump-txn-0.txt"),
        (
            "__consumer_offsets-1",
            "expected-dump-consumer-offsets-1.txt",
        ),
    ] {
        let seg = fx
            .join("logdir")
            .join(part)
            .join("00000000000000000000.log");
        let ours = dump(&["--print-data-log"], &[seg]);
        let theirs = std::fs::read_to_string(fx.join(expected_file)).unwrap();
        let strip = |s: &str| -> Vec<String> {
            s.lines()
                .skip(1)
                .map(|l| match l.find(" headers: [") {
                    Some(i) => l[..i].to_string(),
                    None => l.to_string(),
                })
                .collect()
        };
        let ours = strip(&ours);
        let theirs = strip(&theirs);
        if part.starts_with("__") {
            // Kafka decoded these with --offsets-decoder; batch lines are still comparable.
            let batches = |v: &[String]| {
                v.iter()
                    .filter(|l| l.starts_with("baseOffset"))
                    .cloned()
                    .collect::<Vec<_>>()
            };
            assert_eq!(batches(&ours), batches(&theirs), "{part}");
        } else {
            assert_eq!(ours, theirs, "{part}");
        }
    }
    let ours = dump(
        &["--print-data-log"],
        &[fx.join("logdir/plain-0/00000000000000000000.log")],
    );
    assert!(
        ours.contains("| offset: 0 CreateTime: ")
            && ours.contains(" headers: [h-idx=0,h-src=fixture]"),
        "{ours}"
    );

    let f = |p: &str| fx.join("logdir").join(p);
    let ours = dump(
        &[],
        &[
            f("multi-segment-0/00000000000000000060.index"),
            f("multi-segment-0/00000000000000000060.timeindex"),
            f("plain-0/00000000000000000000.index"),
            f("plain-0/00000000000000000000.timeindex"),
            f("txn-0/00000000000000000000.txnindex"),
            f("idempotent-0/00000000000000000100.snapshot"),
            f("txn-0/00000000000000000033.snapshot"),
        ],
    );
    let theirs = std::fs::read_to_string(fx.join("expected-dump-indexes-snapshots.txt")).unwrap();
    let data = |s: &str| {
        s.lines()
            .filter(|l| {
                !l.starts_with("Dumping")
                    && !l.starts_with("The following")
                    && !l.starts_with("Indexed offset")
            })
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    assert_eq!(data(&ours), data(&theirs));
}

#[test]
fn dump_log_decodes_every_codec() {
    let fx = common::kafka_single();
    for codec in ["gzip", "snappy", "lz4", "zstd"] {
        let seg = fx.join(format!("logdir/codec-{codec}-0/00000000000000000000.log"));
        let out = dump(&["--print-data-log"], &[seg]);
        assert_eq!(
            out.matches(&format!("compresscodec: {}", codec.to_uppercase()))
                .count(),
            4,
            "{codec}"
        );
        assert!(
            out.contains(&format!(
                "key: {codec}-key-199 payload: {codec}-value-199 the quick brown fox"
            )),
            "{codec}"
        );
        assert_eq!(out.matches("| offset: ").count(), 200);
    }
}
