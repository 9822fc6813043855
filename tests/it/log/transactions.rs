//! Transactions in one partition log: markers written as the leader, the last stable offset,
//! the aborted transactions a read_committed fetch is told of, and the `.txnindex` rebuilt by
//! recovery when a crash lost its entry.

use crate::common;

use bytes::Bytes;
use odradek::api::errors::KafkaCode;
use odradek::log::txn_index::AbortedTxn;

fn txn_batch(pid: i64, seq: i32, n: usize) -> Bytes {
    let values = (0..n).map(|i| format!("{pid}-{i}"));
    let now = odradek::log::segment::now_ms();
    common::values_batch(common::Producer::transactional(pid, 0, seq), now, values)
}

#[test]
fn markers_move_the_last_stable_offset_and_a_lost_txnindex_entry_is_rebuilt() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("orders-0");
    let mut log = common::open_log(&dir, Default::default(), false);
    // Producer 7 commits offsets 0-2 (marker 3); producer 8 opens at 4, producer 7 opens at 6.
    log.append_as_leader(&txn_batch(7, 0, 3), 0).unwrap();
    log.append_marker_as_leader(7, 0, true, 0, 0).unwrap();
    log.append_as_leader(&txn_batch(8, 0, 2), 0).unwrap();
    log.append_as_leader(&txn_batch(7, 3, 2), 0).unwrap();
    log.set_high_watermark(log.log_end_offset());
    assert_eq!(log.last_stable_offset(), 4, "producer 8's open transaction");
    // Producer 8 aborts: the LSO moves to producer 7's open transaction.
    log.append_marker_as_leader(8, 0, false, 0, 0).unwrap();
    log.set_high_watermark(log.log_end_offset());
    assert_eq!(log.last_stable_offset(), 6);
    let aborted = AbortedTxn {
        producer_id: 8,
        first_offset: 4,
        last_offset: 8,
        last_stable_offset: 6,
    };
    assert_eq!(log.aborted_transactions(0, 9), vec![aborted]);
    assert!(log.aborted_transactions(9, 20).is_empty());
    // A marker from an older producer epoch is refused.
    let now = odradek::log::segment::now_ms();
    let epoch_1 = common::values_batch(common::Producer::transactional(7, 1, 0), now, [b"e1"]);
    log.append_as_leader(&epoch_1, 0).unwrap();
    assert_eq!(
        log.append_marker_as_leader(7, 0, true, 0, 0)
            .unwrap_err()
            .kafka_error_code(),
        47
    );
    log.append_marker_as_leader(7, 1, true, 0, 0).unwrap();
    log.set_high_watermark(log.log_end_offset());
    assert_eq!(log.last_stable_offset(), log.log_end_offset());
    drop(log);

    // A crash lost the index entry (the marker itself is in the log): recovery lists it again.
    std::fs::remove_file(dir.join("00000000000000000000.txnindex")).unwrap();
    let log = common::open_log(&dir, Default::default(), false);
    assert_eq!(log.aborted_transactions(0, 20), vec![aborted]);
}

/// Every `__transaction_state` record Kafka 2.4.1 wrote decodes, and encodes back to exactly
/// Kafka's bytes: Kafka's loader and tools read what this broker writes.
#[test]
fn kafka_transaction_state_records_round_trip_byte_for_byte() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("__transaction_state-16");
    common::copy_tree(
        &common::kafka_single().join("logdir/__transaction_state-16"),
        &dir,
    );
    let log = common::open_log(&dir, Default::default(), true);
    let records = common::read_all(&log);
    assert_eq!(records.len(), 10, "MANIFEST.md: ten records");
    let mut states = Vec::new();
    for r in &records {
        let key = r.key.as_deref().unwrap();
        let value = r.value.as_deref().unwrap();
        assert_eq!(
            odradek::txn::records::decode_key(key).unwrap().as_deref(),
            Some("fixture-txn")
        );
        assert_eq!(odradek::txn::records::key("fixture-txn"), key);
        let v = odradek::txn::records::decode_value(value).unwrap();
        assert_eq!(
            (v.producer_id, v.producer_epoch, v.timeout_ms),
            (1, 0, 60000)
        );
        assert_eq!(odradek::txn::records::value(&v), value, "{v:?}");
        states.push(v.state.name());
    }
    assert_eq!(
        states,
        [
            "Empty",
            "Ongoing",
            "PrepareCommit",
            "CompleteCommit",
            "Ongoing",
            "PrepareAbort",
            "CompleteAbort",
            "Ongoing",
            "PrepareCommit",
            "CompleteCommit"
        ]
    );
}

#[test]
fn a_marker_from_an_older_coordinator_is_refused_also_after_a_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("fenced-0");
    let mut log = common::open_log(&dir, Default::default(), false);
    log.append_as_leader(&txn_batch(5, 0, 1), 0).unwrap();
    log.append_marker_as_leader(5, 0, true, 3, 0).unwrap();
    log.append_as_leader(&txn_batch(5, 1, 1), 0).unwrap();
    let code = |log: &mut odradek::log::PartitionLog| {
        log.append_marker_as_leader(5, 0, true, 2, 0)
            .unwrap_err()
            .kafka_error_code()
    };
    assert_eq!(code(&mut log), 52, "TRANSACTION_COORDINATOR_FENCED");
    // The coordinator epoch is in the producer snapshot a clean shutdown writes, and is
    // replayed from the marker without one.
    log.close().unwrap();
    let mut log = common::open_log(&dir, Default::default(), true);
    assert_eq!(code(&mut log), 52);
    drop(log);
    for (_, path) in odradek::log::producer_state::snapshot::list(&dir).unwrap() {
        std::fs::remove_file(path).unwrap();
    }
    let mut log = common::open_log(&dir, Default::default(), false);
    assert_eq!(code(&mut log), 52);
    log.append_marker_as_leader(5, 0, true, 3, 0).unwrap();
}
