//! Segments written by odradek are read by Kafka's own code: the Java client's record classes
//! (always, from the PyPI jars) and `kafka-dump-log.sh` (when a runnable Kafka 2.4.1 is present).

use crate::common;
use crate::common::BoundedOutput;

use std::path::PathBuf;
use std::process::Command;

use bytes::Bytes;
use common::{client_batch, open_log};
use odradek::config::LogConfig;

/// Writes a log with every codec, a LogAppendTime topic's stamping, a legacy up-conversion and
/// several segments; returns the segment files and the records expected in them.
fn write_segments(root: &std::path::Path) -> (Vec<PathBuf>, Vec<(i64, String)>) {
    let dir = root.join("ours-0");
    let mut log = open_log(
        &dir,
        LogConfig {
            segment_bytes: 2048,
            ..LogConfig::default()
        },
        false,
    );
    let mut expected = Vec::new();
    for i in 0..40usize {
        let codec = (i % 5) as i16;
        let b = client_batch(i * 10, 10, 30 + i, 1_700_000_000_000 + i as i64, codec);
        let info = log.append_as_leader(&b, 3).unwrap();
        for k in 0..10 {
            let n = i * 10 + k;
            expected.push((
                info.base_offset + k as i64,
                format!("key=key-{n} value={n:0w$} headers=[idx={n}]", w = 30 + i),
            ));
        }
    }
    let mut set = bytes::BytesMut::new();
    let legacy: Vec<kafka_protocol::records::Record> = (0..3)
        .map(|i| kafka_protocol::records::Record {
            transactional: false,
            control: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: kafka_protocol::records::TimestampType::Creation,
            offset: i,
            sequence: -1,
            timestamp: 5,
            key: None,
            value: Some(Bytes::from(format!("legacy-{i}"))),
            headers: Default::default(),
        })
        .collect();
    kafka_protocol::records::RecordBatchEncoder::encode(
        &mut set,
        legacy.iter(),
        &kafka_protocol::records::RecordEncodeOptions {
            version: 1,
            compression: kafka_protocol::records::Compression::Gzip,
        },
    )
    .unwrap();
    let info = log.append_as_leader(&set.freeze(), 3).unwrap();
    for k in 0..3 {
        expected.push((
            info.base_offset + k,
            format!("key=null value=legacy-{k} headers=[]"),
        ));
    }
    assert!(log.segment_count() > 3);
    let files: Vec<PathBuf> = log.segments().map(|s| s.log_path().to_path_buf()).collect();
    log.close().unwrap();
    (files, expected)
}

#[test]
fn kafkas_java_record_classes_validate_and_read_our_segments() {
    let tmp = tempfile::tempdir().unwrap();
    let (files, expected) = write_segments(tmp.path());
    let Some(stdout) = common::kafka_segment_check(tmp.path(), &[], &files) else {
        return;
    };
    let batches: Vec<&str> = stdout.lines().filter(|l| l.starts_with("batch ")).collect();
    assert_eq!(batches.len(), 41);
    assert!(
        batches
            .iter()
            .all(|b| b.ends_with("valid=true") && b.contains("magic=2"))
    );
    for codec in ["none", "gzip", "snappy", "lz4", "zstd"] {
        assert!(
            batches
                .iter()
                .any(|b| b.contains(&format!("codec={codec} "))),
            "{codec}"
        );
    }
    let records: Vec<String> = stdout
        .lines()
        .filter(|l| l.starts_with("record "))
        .map(str::to_string)
        .collect();
    assert_eq!(records.len(), expected.len());
    for (line, (offset, rest)) in records.iter().zip(&expected) {
        assert!(
            line.starts_with(&format!("record offset={offset} ")),
            "{line}"
        );
        assert!(line.ends_with(rest.as_str()), "{line} vs {rest}");
    }
}

#[test]
fn kafka_dump_log_reports_our_batches_valid() {
    let Some(home) = common::kafka_home_or_skip() else {
        return;
    };
    if !home.join("libs/kafka_2.13-2.4.1.jar").is_file() {
        eprintln!(
            "SKIPPED: {} lacks kafka_2.13-2.4.1.jar, which kafka-dump-log.sh needs",
            home.display()
        );
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (files, expected) = write_segments(tmp.path());
    let out = Command::new(home.join("bin/kafka-dump-log.sh"))
        .arg("--deep-iteration")
        .arg("--files")
        .arg(
            files
                .iter()
                .map(|f| f.display().to_string())
                .collect::<Vec<_>>()
                .join(","),
        )
        .bounded_output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    let batch_lines: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("baseOffset:"))
        .collect();
    assert_eq!(batch_lines.len(), 41);
    assert!(batch_lines.iter().all(|l| l.ends_with("isvalid: true")));
    assert_eq!(
        stdout
            .lines()
            .filter(|l| l.starts_with("| offset:"))
            .count(),
        expected.len()
    );
}
