//! DescribeProducers (KIP-664) over the wire, on both metadata stores: a partition's
//! idempotent producers as its producer state has them, and Kafka's errors for partitions and
//! topics that do not exist.

use crate::common;

use bytes::Bytes;
use common::wire::{Conn, STORES, create_topic, produce_request, start_broker_on, topic_name};
use kafka_protocol::messages::*;
use odradek::log::records::{BatchBuilder, NewRecord};

const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;

fn idempotent_batch(pid: i64, epoch: i16, seq: i32, n: usize, timestamp: i64) -> Bytes {
    let records = (0..n)
        .map(|i| NewRecord {
            timestamp,
            key: None,
            value: Some(format!("v{i}").into_bytes()),
            headers: Vec::new(),
        })
        .collect();
    Bytes::from(
        BatchBuilder {
            producer_id: pid,
            producer_epoch: epoch,
            base_sequence: seq,
            records,
            ..BatchBuilder::default()
        }
        .build()
        .unwrap(),
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
        let mut init = InitProducerIdRequest::default();
        init.transactional_id = None;
        init.transaction_timeout_ms = 60_000;
        init.producer_id = ProducerId(-1);
        init.producer_epoch = -1;
        let init = c.send(4, init).await;
        assert_eq!(init.error_code, 0, "{store:?}");
        let (pid, epoch) = (init.producer_id.0, init.producer_epoch);
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
