//! A partition fetched while a stream of appends runs and its segments roll every few batches:
//! every answer holds only complete batches with valid CRCs, their offsets run on from the
//! fetch offset without gap or overlap, and nothing at or past the high watermark is returned.
//! Fetches are cut by `max_bytes` at varied sizes and alternate non-flexible and flexible
//! versions, so the records are spliced into both encodings of the response.

use std::time::Duration;

use crate::common;

use bytes::Bytes;
use common::wire::{Conn, STORES, create_topic_with, fetch_request, produce, start_broker_on};
use kafka_protocol::messages::FetchRequest;
use odradek::log::batch::{entry_size, validate_stored};

/// Batches the producer appends: enough for dozens of rolls at `segment.bytes` below.
const BATCHES: usize = 400;
const SEGMENT_BYTES: &str = "8192";

/// A batch of `n` records of a few hundred bytes each, sizes varying with `seed`.
fn batch(seed: usize, n: usize) -> Bytes {
    let values = (0..n).map(|i| vec![(seed + i) as u8; 50 + (seed * 37 + i * 11) % 400]);
    common::client_batch_of(seed * 10, values, 1_700_000_000_000 + (seed * 10) as i64, 0)
}

/// Checks one fetch answer read from `offset`: complete batches only, each with a valid CRC,
/// the first holding `offset`, each following on from the one before, all below `hw`.
/// Returns the next offset to fetch.
fn check(records: &[u8], offset: i64, hw: i64) -> i64 {
    let mut next = offset;
    let mut pos = 0;
    while pos < records.len() {
        let size = entry_size(&records[pos..]).expect("a whole entry header") as usize;
        assert!(
            pos + size <= records.len(),
            "a partial batch at byte {pos} of {} (fetch at {offset})",
            records.len()
        );
        let header = validate_stored(&records[pos..pos + size])
            .unwrap_or_else(|e| panic!("a batch at byte {pos}, fetch at {offset}: {e}"));
        let last = header.base_offset + header.last_offset_delta as i64;
        if pos == 0 {
            assert!(
                header.base_offset <= offset && offset <= last,
                "the first batch {}..={last} holds the fetch offset {offset}",
                header.base_offset
            );
        } else {
            assert_eq!(header.base_offset, next, "batches follow on without gaps");
        }
        assert!(last < hw, "offset {last} returned at high watermark {hw}");
        next = last + 1;
        pos += size;
    }
    next
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetches_under_appends_and_rolls_return_whole_batches_below_the_high_watermark() {
    for store in STORES {
        let tmp = tempfile::tempdir().unwrap();
        let Some((broker, _zk)) = start_broker_on(store, tmp.path(), &[]).await else {
            return;
        };
        let topic = format!("under-appends-{store:?}");
        let mut admin = Conn::connect(broker.port).await;
        create_topic_with(&mut admin, &topic, &[("segment.bytes", SEGMENT_BYTES)]).await;

        let mut producer = Conn::connect(broker.port).await;
        let produced = {
            let topic = topic.clone();
            tokio::spawn(async move {
                let mut end = 0i64;
                for i in 0..BATCHES {
                    let n = 1 + i % 5;
                    let r = produce(&mut producer, &topic, 0, batch(i, n)).await;
                    assert_eq!(r.error_code, 0, "append {i}");
                    end = r.base_offset + n as i64;
                }
                end
            })
        };

        let mut consumer = Conn::connect(broker.port).await;
        let run = async {
            let mut next = 0i64;
            let mut fetches = 0usize;
            let mut end = None;
            // Bounded by the outer timeout; ends once the producer is done and all is read.
            loop {
                if end.is_none() && produced.is_finished() {
                    end = Some(None);
                }
                let version = [4i16, 11, 12][fetches % 3];
                let max_bytes = [300i32, 1_000, 4_000, 1 << 20][fetches % 4];
                let mut request: FetchRequest = fetch_request(&topic, 0, next, 50);
                request.topics[0].partitions[0].partition_max_bytes = max_bytes;
                let response = consumer.send(version, request).await;
                let pd = &response.responses[0].partitions[0];
                assert_eq!(pd.error_code, 0, "fetch at {next}");
                let records = pd.records.clone().unwrap_or_default();
                next = check(&records, next, pd.high_watermark);
                fetches += 1;
                if records.len() as i32 > max_bytes {
                    // Only a first batch larger than max_bytes is returned over it (KIP-74).
                    assert_eq!(
                        entry_size(&records).map(|s| s as usize),
                        Some(records.len()),
                        "over max_bytes only with a single batch"
                    );
                }
                if let Some(None) = end {
                    end = Some(Some(pd.high_watermark));
                }
                if let Some(Some(hw)) = end
                    && next >= hw
                {
                    return (next, fetches);
                }
            }
        };
        let (next, fetches) = tokio::time::timeout(Duration::from_secs(120), run)
            .await
            .expect("the fetches keep up with the appends within 2 minutes");
        let end = produced.await.unwrap();
        assert_eq!(
            next, end,
            "every produced offset fetched ({fetches} fetches)"
        );
        let segments = std::fs::read_dir(tmp.path().join(format!("{topic}-0")))
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "log"))
            })
            .count();
        assert!(
            segments > 10,
            "the log rolled many times: {segments} segments"
        );
        drop(broker);
    }
}
