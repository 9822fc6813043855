//! The flush policy (group commit for `flush.messages`, `flush.ms`) and the periodic tasks.

use crate::common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::client_batch;
use odradek::config::LogConfig;
use odradek::log::LogManager;
use odradek::log::segment::now_ms;
use odradek::log::tasks::{TaskIntervals, run_periodic_tasks};

fn manager(dir: &std::path::Path, c: LogConfig) -> Arc<LogManager> {
    Arc::new(common::open_manager(dir, c))
}

#[test]
fn flush_per_message_shares_fsyncs_between_concurrent_appenders() {
    let tmp = tempfile::tempdir().unwrap();
    let c = LogConfig {
        flush_interval_messages: 1,
        ..LogConfig::default()
    };
    let m = manager(tmp.path(), c.clone());
    let h = m.get_or_create("durable", 0, c).unwrap();
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let h = h.clone();
            std::thread::spawn(move || {
                for i in 0..150 {
                    let info = h
                        .append_as_leader(&client_batch(t * 1000 + i, 1, 20, 1, 0), 0)
                        .unwrap();
                    // Acknowledged means durable under flush.messages=1.
                    assert!(h.durable_offset() > info.last_offset);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let leo = h.lock().log_end_offset();
    assert_eq!(leo, 600);
    assert_eq!(h.durable_offset(), 600);
    assert_eq!(h.lock().recovery_point(), 600);
    let fsyncs = h.flush_count();
    assert!(
        (1..600).contains(&fsyncs),
        "{fsyncs} fsyncs for 600 appends: group commit should share them"
    );
    eprintln!("600 appends from 4 threads took {fsyncs} fsyncs");
}

#[test]
fn without_a_flush_policy_appends_do_not_fsync() {
    let tmp = tempfile::tempdir().unwrap();
    let m = manager(tmp.path(), LogConfig::default());
    let h = m.get_or_create("cached", 0, LogConfig::default()).unwrap();
    for i in 0..50 {
        h.append_as_leader(&client_batch(i, 1, 20, 1, 0), 0)
            .unwrap();
    }
    assert_eq!(
        h.flush_count(),
        0,
        "the default leaves durability to the page cache and replication"
    );
    assert_eq!(h.lock().recovery_point(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn periodic_tasks_apply_retention_flush_ms_and_checkpoints() {
    let tmp = tempfile::tempdir().unwrap();
    let c = LogConfig {
        segment_bytes: 1024,
        retention_ms: 60_000,
        flush_interval_ms: 50,
        file_delete_delay_ms: 0,
        ..LogConfig::default()
    };
    let m = manager(tmp.path(), c.clone());
    let h = m.get_or_create("aging", 0, c).unwrap();
    {
        let mut log = h.lock();
        for i in 0..20 {
            log.append_as_leader(&client_batch(i * 3, 3, 30, now_ms() - 3_600_000, 0), 0)
                .unwrap();
        }
        log.append_as_leader(&client_batch(60, 3, 30, now_ms(), 0), 0)
            .unwrap();
        log.set_high_watermark(63);
    }
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let intervals = TaskIntervals {
        retention_check: Duration::from_millis(100),
        flush_check: Duration::from_millis(20),
        checkpoint: Duration::from_millis(100),
    };
    let task = tokio::spawn(run_periodic_tasks(m.clone(), intervals, stop_rx));
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (start, durable) = (h.lock().log_start_offset(), h.durable_offset());
        // The start equals the first segment's base, so only the recovery point file names it.
        let cp = std::fs::read_to_string(tmp.path().join("recovery-point-offset-checkpoint"))
            .unwrap_or_default();
        if start > 0 && durable == 63 && cp.contains("aging 0 63") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "retention/flush/checkpoint did not happen: start {start}, durable {durable}, checkpoint {cp:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(h.lock().log_start_offset() <= 60, "the fresh batch stays");
    stop_tx.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("tasks stop on shutdown")
        .unwrap();
}
