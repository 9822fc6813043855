//! A fetch of records that are no longer in the page cache (evicted with
//! `posix_fadvise(DONTNEED)` after an fsync) returns the same records as when they were hot:
//! a plaintext fetch of cold pages is read off the runtime threads instead of `sendfile`d from
//! them, and must still carry exactly the stored bytes.

use std::os::fd::AsRawFd;

use crate::common;

use bytes::Bytes;
use common::wire::{Conn, STORES, create_topic_with, fetch, produce, start_broker_on};
use odradek::log::FileRegion;
use odradek::log::batch::entry_size;
use odradek::log::records::decode_batch;

/// Batches of half a MiB, so that the kernel's readahead for the one batch header a fetch
/// reads to find its batches (128 KiB here) leaves most of each batch cold.
const BATCHES: usize = 16;
const RECORDS_PER_BATCH: usize = 8;
const VALUE_LEN: usize = 64 << 10;

/// Record `i`'s value: its index, repeated, so that a misplaced byte shows.
fn value(i: usize) -> Vec<u8> {
    (0..VALUE_LEN).map(|j| (i * 7 + j) as u8).collect()
}

fn batch(first: usize) -> Bytes {
    let values = (first..first + RECORDS_PER_BATCH).map(value);
    common::client_batch_of(first, values, 1_700_000_000_000 + first as i64, 0)
}

/// Every record from `offset` on in the answers, decoded: (offset, value).
async fn read_all(c: &mut Conn, topic: &str, end: i64) -> Vec<(i64, Vec<u8>)> {
    let mut out = Vec::new();
    let mut offset = 0;
    // Each fetch returns at least one batch; bounded by the number of batches.
    for _ in 0..=BATCHES {
        if offset >= end {
            break;
        }
        let pd = fetch(c, topic, 0, offset, 0).await;
        assert_eq!(pd.error_code, 0, "fetch at {offset}");
        let records = pd.records.unwrap_or_default();
        let mut pos = 0;
        while pos < records.len() {
            let size = entry_size(&records[pos..]).expect("an entry header") as usize;
            let (_, recs) = decode_batch(&records[pos..pos + size]).expect("a whole batch");
            for r in recs.into_iter().filter(|r| r.offset >= offset) {
                out.push((r.offset, r.value.unwrap_or_default().to_vec()));
            }
            pos += size;
        }
        offset = out.last().map_or(offset, |(o, _)| o + 1);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fetch_of_evicted_pages_returns_the_stored_records() {
    for store in STORES {
        let tmp = tempfile::tempdir().unwrap();
        let Some((broker, _zk)) = start_broker_on(store, tmp.path(), &[]).await else {
            return;
        };
        let topic = format!("cold-{store:?}");
        let mut c = Conn::connect(broker.port).await;
        create_topic_with(&mut c, &topic, &[]).await;
        for b in 0..BATCHES {
            let r = produce(&mut c, &topic, 0, batch(b * RECORDS_PER_BATCH)).await;
            assert_eq!(r.error_code, 0, "append {b}");
        }
        let end = (BATCHES * RECORDS_PER_BATCH) as i64;
        let expected: Vec<(i64, Vec<u8>)> = (0..end).map(|i| (i, value(i as usize))).collect();
        assert_eq!(read_all(&mut c, &topic, end).await, expected, "hot");

        // Written back first: DONTNEED drops only clean pages.
        let segment = std::fs::File::open(
            tmp.path()
                .join(format!("{topic}-0/00000000000000000000.log")),
        )
        .unwrap();
        segment.sync_all().unwrap();
        // SAFETY: an advisory call on an open descriptor.
        let rc =
            unsafe { libc::posix_fadvise(segment.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
        assert_eq!(rc, 0, "posix_fadvise");
        let len = segment.metadata().unwrap().len() as usize;
        let whole = FileRegion {
            file: std::sync::Arc::new(segment),
            position: 0,
            len,
        };
        let (resident, _) = whole.resident_pages().expect("mincore on the segment");
        if resident > 0 {
            eprintln!(
                "skipping the cold fetch on {store:?}: {resident} pages of the segment stayed in \
                 the page cache after POSIX_FADV_DONTNEED (a file system that ignores it)"
            );
            continue;
        }
        assert_eq!(read_all(&mut c, &topic, end).await, expected, "cold");
    }
}
