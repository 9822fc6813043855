//! DeleteRecords over the wire: the low watermark moves, reads below it are out of range,
//! ListOffsets EARLIEST follows it, and it survives a restart and a kill.

use crate::common;

use common::broker_process::BrokerProcess;
use common::client_batch;
use common::wire::{Conn, create_topic, fetch, list_offset, produce, start_broker};
use kafka_protocol::messages::*;
use odradek::log::segment::now_ms;

const OFFSET_OUT_OF_RANGE: i16 = 1;
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const POLICY_VIOLATION: i16 = 44;
const EARLIEST: i64 = -2;

/// DeleteRecords of one partition up to `offset`: (error code, low watermark).
async fn delete_records(
    c: &mut Conn,
    version: i16,
    topic: &str,
    partition: i32,
    offset: i64,
) -> (i16, i64) {
    let mut p = delete_records_request::DeleteRecordsPartition::default();
    p.partition_index = partition;
    p.offset = offset;
    let mut t = delete_records_request::DeleteRecordsTopic::default();
    t.name = common::wire::topic_name(topic);
    t.partitions.push(p);
    let mut r = DeleteRecordsRequest::default();
    r.topics.push(t);
    r.timeout_ms = 5000;
    let mut resp = c.send(version, r).await;
    let mut t = resp.topics.remove(0);
    assert_eq!(&*t.name.0, topic);
    let p = t.partitions.remove(0);
    assert_eq!(p.partition_index, partition);
    (p.error_code, p.low_watermark)
}

async fn produce_n(c: &mut Conn, topic: &str, batches: usize) {
    for i in 0..batches {
        let r = produce(c, topic, 0, client_batch(i * 10, 10, 200, now_ms(), 0)).await;
        assert_eq!(r.error_code, 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_records_moves_the_low_watermark_and_reads_follow() {
    let tmp = tempfile::tempdir().unwrap();
    let broker = start_broker(tmp.path(), &["log.segment.bytes=3000"]).await;
    let mut c = Conn::connect(broker.port).await;
    assert_eq!(create_topic(&mut c, "trimmed", 1).await, 0);
    produce_n(&mut c, "trimmed", 10).await;
    let segments_before = broker
        .api()
        .replicas
        .get("trimmed", 0)
        .unwrap()
        .log
        .lock()
        .segment_count();

    assert_eq!(delete_records(&mut c, 2, "trimmed", 0, 45).await, (0, 45));
    assert_eq!(list_offset(&mut c, "trimmed", 0, EARLIEST).await.offset, 45);
    let below = fetch(&mut c, "trimmed", 0, 20, 0).await;
    assert_eq!(below.error_code, OFFSET_OUT_OF_RANGE);
    assert_eq!(below.log_start_offset, 45);
    let at = fetch(&mut c, "trimmed", 0, 45, 0).await;
    assert_eq!(at.error_code, 0);
    assert_eq!(at.log_start_offset, 45);
    let (h, recs) = odradek::log::records::decode_batch(
        &at.records.as_ref().unwrap()
            [..odradek::log::batch::entry_size(at.records.as_ref().unwrap()).unwrap() as usize],
    )
    .unwrap();
    assert!(h.base_offset <= 45 && recs.iter().any(|r| r.offset == 45));
    let segments_after = broker
        .api()
        .replicas
        .get("trimmed", 0)
        .unwrap()
        .log
        .lock()
        .segment_count();
    assert!(
        segments_after < segments_before,
        "segments wholly below 45 are deleted"
    );

    // An offset below the current start changes nothing; past the high watermark is refused.
    assert_eq!(delete_records(&mut c, 0, "trimmed", 0, 10).await, (0, 45));
    assert_eq!(
        delete_records(&mut c, 1, "trimmed", 0, 101).await.0,
        OFFSET_OUT_OF_RANGE
    );
    assert_eq!(
        delete_records(&mut c, 2, "trimmed", 0, -5).await.0,
        OFFSET_OUT_OF_RANGE
    );
    assert_eq!(list_offset(&mut c, "trimmed", 0, EARLIEST).await.offset, 45);
    // -1: everything below the high watermark.
    assert_eq!(delete_records(&mut c, 2, "trimmed", 0, -1).await, (0, 100));
    assert_eq!(
        list_offset(&mut c, "trimmed", 0, EARLIEST).await.offset,
        100
    );
    produce_n(&mut c, "trimmed", 1).await;
    assert_eq!(
        fetch(&mut c, "trimmed", 0, 100, 0).await.error_code,
        0,
        "the log goes on"
    );

    assert_eq!(
        delete_records(&mut c, 2, "absent", 0, 1).await,
        (UNKNOWN_TOPIC_OR_PARTITION, -1)
    );
    assert_eq!(
        delete_records(&mut c, 2, "trimmed", 3, 1).await,
        (UNKNOWN_TOPIC_OR_PARTITION, -1)
    );

    // A compacted topic keeps its records (Kafka: POLICY_VIOLATION).
    common::wire::create_topic_with(&mut c, "compacted", &[("cleanup.policy", "compact")]).await;
    produce_n(&mut c, "compacted", 1).await;
    assert_eq!(
        delete_records(&mut c, 2, "compacted", 0, 5).await,
        (POLICY_VIOLATION, -1)
    );

    drop(c);
    broker.shutdown().await.unwrap();
    let broker = start_broker(tmp.path(), &["log.segment.bytes=3000"]).await;
    let mut c = Conn::connect(broker.port).await;
    assert_eq!(
        list_offset(&mut c, "trimmed", 0, EARLIEST).await.offset,
        100,
        "kept across a restart"
    );
    broker.shutdown().await.unwrap();
}

/// The new start is checkpointed when DeleteRecords answers, so even a kill right after keeps it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_low_watermark_survives_a_kill() {
    let tmp = tempfile::tempdir().unwrap();
    let mut broker = BrokerProcess::start(tmp.path(), &[]);
    let mut c = Conn::connect(broker.port).await;
    assert_eq!(create_topic(&mut c, "killed", 1).await, 0);
    produce_n(&mut c, "killed", 5).await;
    assert_eq!(delete_records(&mut c, 2, "killed", 0, 33).await, (0, 33));
    drop(c);
    broker.restart(true);
    let mut c = Conn::connect(broker.port).await;
    assert_eq!(
        list_offset(&mut c, "killed", 0, EARLIEST).await.offset,
        33,
        "{}",
        broker.log_tail()
    );
    assert_eq!(
        fetch(&mut c, "killed", 0, 32, 0).await.error_code,
        OFFSET_OUT_OF_RANGE
    );
}
