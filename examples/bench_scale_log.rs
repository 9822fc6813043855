//! Many partitions in one log directory, for `scripts/bench-scale-log.sh`: open files per
//! partition at rest, the time a clean restart takes to load them and serve a read from each,
//! and the time a restart after a crash (no clean-shutdown marker, as after kill -9) takes.
//! Usage: bench_scale_log <dir> <partitions> <segments per partition> <recovery threads>

use std::time::Instant;

use bytes::Bytes;
use odradek::config::LogConfig;
use odradek::log::LogManager;
use odradek::log::manager::BrokerIdentity;
use odradek::log::records::{BatchBuilder, NewRecord};

fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

fn open_files() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

fn tp(i: usize) -> (String, i32) {
    (format!("topic-{}", i / 100), (i % 100) as i32)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, dir, partitions, segments, threads] = &args[..] else {
        eprintln!("usage: bench_scale_log <dir> <partitions> <segments> <recovery threads>");
        std::process::exit(2);
    };
    let dir = std::path::PathBuf::from(dir);
    let partitions: usize = partitions.parse().expect("partitions");
    let segments: usize = segments.parse().expect("segments");
    let threads: usize = threads.parse().expect("threads");
    let batch = Bytes::from(
        BatchBuilder {
            records: vec![NewRecord {
                timestamp: odradek::log::segment::now_ms(),
                key: None,
                value: Some(vec![b'x'; 512]),
                headers: vec![],
            }],
            ..BatchBuilder::default()
        }
        .build()
        .expect("a batch"),
    );
    // Every append after the first of a segment rolls: `segments` appends give that many.
    let config = LogConfig {
        segment_bytes: batch.len() as u64,
        ..LogConfig::default()
    };
    let identity = BrokerIdentity {
        broker_id: 0,
        cluster_id: None,
    };
    let baseline = open_files();
    let started = Instant::now();
    let logs = LogManager::open(
        std::slice::from_ref(&dir),
        &identity,
        config.clone(),
        |_| config.clone(),
    )
    .expect("open");
    for i in 0..partitions {
        let (topic, p) = tp(i);
        let h = logs.get_or_create(&topic, p, config.clone()).expect("log");
        for _ in 0..segments {
            h.append_as_leader(&batch, 0).expect("append");
        }
        // As a broker's partition leader does on taking over: its epoch starts at the log end.
        h.lock().assign_leader_epoch_start(1).expect("leader epoch");
    }
    let created = started.elapsed();
    let fds = open_files() - baseline;
    println!(
        "create: {partitions} partitions x {segments} segments in {:.1} s",
        created.as_secs_f64()
    );
    println!(
        "open files after creation: {fds} ({:.2} per partition), RSS {} MiB",
        fds as f64 / partitions as f64,
        status_kib("VmRSS:") / 1024
    );
    logs.shutdown().expect("clean shutdown");

    let started = Instant::now();
    let logs = LogManager::open_with_threads(
        std::slice::from_ref(&dir),
        &identity,
        config.clone(),
        |_| config.clone(),
        threads,
    )
    .expect("reopen");
    let loaded = started.elapsed();
    let fds = open_files() - baseline;
    println!(
        "restart: {partitions} partitions loaded in {:.2} s with {threads} thread(s); open files {fds} ({:.2} per partition)",
        loaded.as_secs_f64(),
        fds as f64 / partitions as f64
    );
    for i in 0..partitions {
        let (topic, p) = tp(i);
        let h = logs.get(&topic, p).expect("loaded");
        // The first segment: a cold one when there are several.
        let r = h.read(0, 1 << 20, i64::MAX, true).expect("read");
        assert!(!r.records.is_empty(), "{topic}-{p} reads its first record");
    }
    let fds = open_files() - baseline;
    println!(
        "read from every partition's first segment: {:.2} s after the restart began; open files {fds} ({:.2} per partition), RSS {} MiB",
        started.elapsed().as_secs_f64(),
        fds as f64 / partitions as f64,
        status_kib("VmRSS:") / 1024
    );
    logs.shutdown().expect("clean shutdown");

    // As after kill -9 once the checkpoints were written: every log is recovered from its
    // recovery point, which for these logs is their end.
    let marker = dir.join(odradek::log::checkpoint::CLEAN_SHUTDOWN_FILE);
    std::fs::remove_file(&marker).expect("remove the clean-shutdown marker");
    let started = Instant::now();
    let logs = LogManager::open_with_threads(
        std::slice::from_ref(&dir),
        &identity,
        config.clone(),
        |_| config.clone(),
        threads,
    )
    .expect("reopen after a crash");
    println!(
        "restart after a crash: {partitions} partitions recovered in {:.2} s with {threads} thread(s)",
        started.elapsed().as_secs_f64()
    );
    logs.shutdown().expect("clean shutdown");
}
