//! DescribeProducers (KIP-664) over the wire, on both metadata stores: a partition's
//! idempotent producers as its producer state has them, and Kafka's errors for partitions and
//! topics that do not exist.

use crate::common;

use bytes::Bytes;
use common::wire::{
    Conn, STORES, create_topic, init_idempotent_producer, produce_request, start_broker_on,
    topic_name,
};
use kafka_protocol::messages::*;

const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;

fn idempotent_batch(pid: i64, epoch: i16, seq: i32, n: usize, timestamp: i64) -> Bytes {
    let values = (0..n).map(|i| format!("v{i}"));
    common::values_batch(
        common::Producer::idempotent(pid, epoch, seq),
        timestamp,
        values,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_producers_lists_an_idempotent_producers_state() {
    for store in STORES {
        let tmp = tempfile::tempdir().unwrap();
        let Some((broker, _zk)) = start_broker_on(store, tmp.path(), &[]).await else {
            return;
        };
        let mut c = Conn::connect(broker.port).await;
        assert_eq!(create_topic(&mut c, "described", 1).await, 0);
        let (pid, epoch) = init_idempotent_producer(&mut c).await;
        let now = odradek::log::segment::now_ms();
        for (seq, n, ts) in [(0, 3, now - 1000), (3, 2, now)] {
            let r = produce_request("described", 0, idempotent_batch(pid, epoch, seq, n, ts), -1);
            let code = c.send(8, r).await.responses[0].partition_responses[0].error_code;
            assert_eq!(code, 0, "{store:?}: produce seq {seq}");
        }

        let mut request = DescribeProducersRequest::default();
        for (name, partitions) in [("described", vec![0, 7]), ("nowhere", vec![0])] {
            let mut t = describe_producers_request::TopicRequest::default();
            t.name = topic_name(name);
            t.partition_indexes = partitions;
            request.topics.push(t);
        }
        let response = c.send(0, request).await;
        let described = &response.topics[0].partitions[0];
        assert_eq!(described.error_code, 0, "{store:?}");
        let producers: Vec<(i64, i32, i32, i64, i32, i64)> = described
            .active_producers
            .iter()
            .map(|p| {
                (
                    p.producer_id.0,
                    p.producer_epoch,
                    p.last_sequence,
                    p.last_timestamp,
                    p.coordinator_epoch,
                    p.current_txn_start_offset,
                )
            })
            .collect();
        assert_eq!(
            producers,
            vec![(pid, i32::from(epoch), 4, now, -1, -1)],
            "{store:?}"
        );
        assert_eq!(
            response.topics[0].partitions[1].error_code, UNKNOWN_TOPIC_OR_PARTITION,
            "{store:?}: a partition the topic does not have"
        );
        assert_eq!(
            response.topics[1].partitions[0].error_code, UNKNOWN_TOPIC_OR_PARTITION,
            "{store:?}: a topic the cluster does not have"
        );
    }
}

/// An idempotent producer's requests pipelined on one connection (acks=1, some naming two
/// topics) reach the logs in the order they were sent: every batch is taken (an overtaken one
/// would be refused OUT_OF_ORDER_SEQUENCE) at the offset its place in the stream gives it, and
/// a ListOffsets sent between them sees exactly the batches sent before it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_produces_keep_their_order_around_other_requests() {
    const PER_BATCH: i64 = 3;
    for store in STORES {
        let tmp = tempfile::tempdir().unwrap();
        let Some((broker, _zk)) = start_broker_on(store, tmp.path(), &[]).await else {
            return;
        };
        let mut c = Conn::connect(broker.port).await;
        assert_eq!(create_topic(&mut c, "piped-a", 2).await, 0);
        assert_eq!(create_topic(&mut c, "piped-b", 1).await, 0);
        let (pid, epoch) = init_idempotent_producer(&mut c).await;
        let now = odradek::log::segment::now_ms();
        // Records sent so far to piped-a 0, piped-a 1 and piped-b 0.
        let mut sent = [0i64; 3];
        for window in 0..3 {
            // What each request of the window expects: produce base offsets, or a latest offset.
            let mut expected: Vec<(i32, ApiKey, i16, Vec<i64>)> = Vec::new();
            for k in 0..100 {
                if k % 25 == 24 {
                    let r = common::wire::list_offsets_request("piped-b", 0, -1);
                    let id = c
                        .send_request(ApiKey::ListOffsets, 5, RequestKind::ListOffsets(r))
                        .await;
                    expected.push((id, ApiKey::ListOffsets, 5, vec![sent[2]]));
                    continue;
                }
                let a = (window * 100 + k) % 2;
                let mut targets = vec![("piped-a", a as i32, a)];
                if k % 3 == 0 {
                    targets.push(("piped-b", 0, 2));
                }
                let mut r = ProduceRequest::default();
                r.acks = 1;
                r.timeout_ms = 5000;
                let mut bases = Vec::new();
                for (topic, partition, slot) in targets {
                    let seq = sent[slot] as i32;
                    let batch = idempotent_batch(pid, epoch, seq, PER_BATCH as usize, now);
                    let mut pd = produce_request::PartitionProduceData::default();
                    pd.index = partition;
                    pd.records = Some(batch);
                    let mut td = produce_request::TopicProduceData::default();
                    td.name = topic_name(topic);
                    td.partition_data.push(pd);
                    r.topic_data.push(td);
                    bases.push(sent[slot]);
                    sent[slot] += PER_BATCH;
                }
                let id = c
                    .send_request(ApiKey::Produce, 8, RequestKind::Produce(r))
                    .await;
                expected.push((id, ApiKey::Produce, 8, bases));
            }
            for (id, key, version, want) in expected {
                let got: Vec<(i16, i64)> = match c.read_response(key, version, id).await {
                    ResponseKind::Produce(p) => p
                        .responses
                        .iter()
                        .map(|t| &t.partition_responses[0])
                        .map(|p| (p.error_code, p.base_offset))
                        .collect(),
                    ResponseKind::ListOffsets(l) => {
                        let p = &l.topics[0].partitions[0];
                        vec![(p.error_code, p.offset)]
                    }
                    other => panic!("{other:?}"),
                };
                let want: Vec<(i16, i64)> = want.into_iter().map(|o| (0, o)).collect();
                assert_eq!(got, want, "{store:?}: request {id}");
            }
        }
    }
}
