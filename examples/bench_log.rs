//! Append and read throughput of one partition log, for `scripts/bench-log.sh`.
//! Usage: bench_log <dir> <total bytes> <batch bytes> <record bytes>

use std::time::Instant;

use bytes::Bytes;
use odradek::config::LogConfig;
use odradek::log::records::{BatchBuilder, NewRecord};
use odradek::log::{LoadParams, PartitionLog};

fn rss_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, dir, total, batch_bytes, record_bytes] = &args[..] else {
        eprintln!("usage: bench_log <dir> <total bytes> <batch bytes> <record bytes>");
        std::process::exit(2);
    };
    let total: u64 = total.parse().expect("total bytes");
    let batch_bytes: usize = batch_bytes.parse().expect("batch bytes");
    let record_bytes: usize = record_bytes.parse().expect("record bytes");
    let per_batch = (batch_bytes / (record_bytes + 20)).max(1);
    let batch = Bytes::from(
        BatchBuilder {
            records: (0..per_batch)
                .map(|i| NewRecord {
                    timestamp: 1_700_000_000_000,
                    key: None,
                    value: Some(vec![(i % 251) as u8; record_bytes]),
                    headers: vec![],
                })
                .collect(),
            ..BatchBuilder::default()
        }
        .build()
        .expect("batch"),
    );
    let path = std::path::Path::new(dir).join("bench-0");
    let mut log =
        PartitionLog::open(&path, LogConfig::default(), LoadParams::default()).expect("open");

    let batches = total / batch.len() as u64;
    let mut rss_at_quarter = 0;
    let start = Instant::now();
    for n in 0..batches {
        log.append_as_leader(&batch, 0).expect("append");
        if n == batches / 4 {
            rss_at_quarter = rss_kib("VmRSS:");
        }
    }
    log.flush().expect("flush");
    let append_secs = start.elapsed().as_secs_f64();
    let written = batches * batch.len() as u64;
    let rss_at_end = rss_kib("VmRSS:");
    let leo = log.log_end_offset();
    log.set_high_watermark(leo);

    let start = Instant::now();
    let mut offset = 0;
    let mut read = 0u64;
    while offset < leo {
        let r = log.read(offset, 1 << 20, leo, true).expect("read");
        let mut pos = 0;
        while let Some(size) = odradek::log::batch::entry_size(&r.records[pos..]) {
            let h = odradek::log::batch::BatchHeader::parse(&r.records[pos..]).expect("batch");
            offset = h.next_offset();
            pos += size as usize;
            if pos >= r.records.len() {
                break;
            }
        }
        read += r.records.len() as u64;
    }
    let read_secs = start.elapsed().as_secs_f64();
    println!(
        "batches appended: {batches} x {} bytes ({per_batch} records of {record_bytes} B)",
        batch.len()
    );
    println!(
        "append: {:.0} MB/s ({written} bytes in {append_secs:.2} s, one fsync at the end)",
        written as f64 / append_secs / 1e6
    );
    println!(
        "read:   {:.0} MB/s ({read} bytes in {read_secs:.2} s, page cache)",
        read as f64 / read_secs / 1e6
    );
    println!(
        "rss:    {} MiB after 1/4 of the appends, {} MiB at the end, peak {} MiB",
        rss_at_quarter / 1024,
        rss_at_end / 1024,
        rss_kib("VmHWM:") / 1024
    );
}
