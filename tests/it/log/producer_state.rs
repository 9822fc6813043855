//! Idempotent producer state in the log: duplicates answered with their first offsets, Kafka's
//! `.snapshot` files written at roll and close, read back (also Kafka's own), and the state
//! rebuilt from the log when snapshots are missing.

use crate::common;
use crate::common::BoundedOutput;

use bytes::Bytes;
use common::open_log;
use odradek::config::LogConfig;
use odradek::log::producer_state::snapshot;

fn idempotent_batch(pid: i64, seq: i32, n: usize) -> Bytes {
    let values = (0..n).map(|i| vec![i as u8; 100]);
    common::values_batch(common::Producer::idempotent(pid, 0, seq), 5, values)
}

#[test]
fn kafkas_own_snapshot_is_read() {
    let fx = common::kafka_single().join("logdir/idempotent-0/00000000000000000100.snapshot");
    let state = snapshot::read(&fx).unwrap();
    let entry = state.get(0).expect("producer 0");
    assert_eq!(entry.epoch, 0);
    let last = entry.batches.back().unwrap();
    assert_eq!(
        (
            last.first_seq,
            last.last_seq,
            last.first_offset,
            last.last_offset
        ),
        (80, 99, 80, 99)
    );
    let txn =
        snapshot::read(&common::kafka_single().join("logdir/txn-0/00000000000000000033.snapshot"))
            .unwrap();
    let last = txn.get(1).unwrap().batches.back().copied().unwrap();
    assert_eq!(
        (last.first_seq, last.last_seq, last.last_offset),
        (20, 29, 31)
    );
}

#[test]
fn a_kafka_written_idempotent_log_answers_retries_from_its_snapshot() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("idempotent-0");
    common::copy_tree(&common::kafka_single().join("logdir/idempotent-0"), &dir);
    let mut log = open_log(&dir, LogConfig::default(), true);
    let retry = log
        .append_as_leader(&idempotent_batch(0, 80, 20), 0)
        .unwrap();
    assert_eq!(
        (retry.base_offset, retry.last_offset),
        (80, 99),
        "Kafka's last batch is known as a duplicate"
    );
    assert_eq!(log.log_end_offset(), 100);
    assert_eq!(
        log.append_as_leader(&idempotent_batch(0, 100, 5), 0)
            .unwrap()
            .base_offset,
        100
    );
    assert!(
        log.append_as_leader(&idempotent_batch(0, 200, 5), 0)
            .is_err(),
        "a gap is refused"
    );
}

#[test]
fn snapshots_are_written_at_roll_and_close_and_the_state_survives_without_them() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("p-0");
    let config = LogConfig {
        segment_bytes: 4096,
        ..LogConfig::default()
    };
    let mut log = open_log(&dir, config.clone(), false);
    let mut seq = 0;
    for _ in 0..30 {
        log.append_as_leader(&idempotent_batch(7, seq, 5), 0)
            .unwrap();
        seq += 5;
    }
    let segments: Vec<i64> = log.segments().map(|s| s.base_offset).collect();
    assert!(segments.len() > 3);
    let snaps: Vec<i64> = snapshot::list(&dir)
        .unwrap()
        .into_iter()
        .map(|(o, _)| o)
        .collect();
    assert_eq!(
        snaps,
        segments[1..].to_vec(),
        "one snapshot per roll, named after the new segment"
    );
    log.close().unwrap();
    assert!(
        snapshot::path(&dir, 150).exists(),
        "a clean close snapshots at the log end"
    );
    // Our snapshots print in Kafka's format.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_odradek"))
        .args(["dump-log", "--files"])
        .arg(snapshot::path(&dir, 150))
        .bounded_output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("producerId: 7 producerEpoch: 0 coordinatorEpoch: -1 currentTxnFirstOffset: None firstSequence: 145 lastSequence: 149 lastOffset: 149 offsetDelta: 4"), "{text}");

    let mut log = open_log(&dir, config.clone(), true);
    assert_eq!(
        log.append_as_leader(&idempotent_batch(7, 145, 5), 0)
            .unwrap()
            .base_offset,
        145,
        "retry after restart"
    );
    drop(log);
    // Without any snapshot the state is rebuilt from the batches themselves.
    for (_, p) in snapshot::list(&dir).unwrap() {
        std::fs::remove_file(p).unwrap();
    }
    let mut log = open_log(&dir, config.clone(), false);
    assert_eq!(
        log.append_as_leader(&idempotent_batch(7, 140, 5), 0)
            .unwrap()
            .base_offset,
        140
    );
    assert_eq!(log.log_end_offset(), 150);
    // Truncation drops snapshots past the new end.
    log.roll(None).unwrap();
    log.append_as_leader(&idempotent_batch(7, 150, 5), 0)
        .unwrap();
    log.roll(None).unwrap();
    assert!(snapshot::path(&dir, 155).exists());
    log.truncate_to(152).unwrap();
    assert!(!snapshot::path(&dir, 155).exists());
    assert_eq!(
        log.append_as_leader(&idempotent_batch(7, 150, 5), 0)
            .unwrap()
            .base_offset,
        150,
        "the truncated batch is not a duplicate any more"
    );
}
