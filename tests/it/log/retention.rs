//! Retention by time and size, and DeleteRecords: whole segments only, the log start offset
//! advances and survives restarts.

use crate::common;

use std::path::Path;

use common::{client_batch, read_all};
use odradek::config::LogConfig;
use odradek::log::segment::now_ms;
use odradek::log::{LogError, LogManager};

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 2048,
        file_delete_delay_ms: 0,
        ..LogConfig::default()
    }
}

fn manager(dir: &Path, c: LogConfig) -> LogManager {
    common::open_manager(dir, c)
}

fn segment_files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n.ends_with(".log"))
        .collect();
    v.sort();
    v
}

#[test]
fn time_retention_deletes_old_segments_whole_and_the_start_survives_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let c = LogConfig {
        retention_ms: 3_600_000,
        ..config()
    };
    let m = manager(tmp.path(), c.clone());
    let h = m.get_or_create("events", 0, c.clone()).unwrap();
    let old = now_ms() - 2 * 3_600_000;
    let fresh = now_ms();
    {
        let mut log = h.lock();
        for i in 0..30 {
            log.append_as_leader(&client_batch(i * 5, 5, 50, old + i as i64, 0), 0)
                .unwrap();
        }
        for i in 30..40 {
            log.append_as_leader(&client_batch(i * 5, 5, 50, fresh, 0), 0)
                .unwrap();
        }
        let leo = log.log_end_offset();
        log.set_high_watermark(leo);
    }
    let before = segment_files(&tmp.path().join("events-0"));
    let deleted = m.apply_retention().unwrap();
    assert!(deleted > 0);
    let log = h.lock();
    let start = log.log_start_offset();
    assert!(
        start > 0 && start <= 150,
        "start {start}: only old data goes"
    );
    assert_eq!(
        start,
        log.segments().next().unwrap().base_offset,
        "whole segments only"
    );
    let after = segment_files(&tmp.path().join("events-0"));
    assert_eq!(after.len(), before.len() - deleted);
    assert!(before.ends_with(&after), "the oldest segments went");
    let recs = read_all(&log);
    assert_eq!(recs.first().unwrap().offset, start);
    assert_eq!(recs.len() as i64, 200 - start);
    assert!(matches!(
        log.read(start - 1, 100, 200, true),
        Err(LogError::OffsetOutOfRange { .. })
    ));
    drop(log);
    drop(h);
    m.shutdown().unwrap();
    let m = manager(tmp.path(), c);
    let log = m.get("events", 0).unwrap();
    assert_eq!(
        log.lock().log_start_offset(),
        start,
        "log start offset kept across restart"
    );
}

#[test]
fn size_retention_keeps_at_most_retention_bytes_plus_a_segment() {
    let tmp = tempfile::tempdir().unwrap();
    let c = LogConfig {
        retention_bytes: 6000,
        ..config()
    };
    let m = manager(tmp.path(), c.clone());
    let h = m.get_or_create("sized", 0, c).unwrap();
    let mut log = h.lock();
    for i in 0..60 {
        log.append_as_leader(&client_batch(i * 5, 5, 50, now_ms(), 0), 0)
            .unwrap();
    }
    let leo = log.log_end_offset();
    log.set_high_watermark(leo);
    let total_before = log.size_bytes();
    let n = log.delete_old_segments(now_ms()).unwrap();
    assert!(n > 0);
    assert!(
        log.size_bytes() <= 6000 + 2048,
        "{} bytes left",
        log.size_bytes()
    );
    assert!(log.size_bytes() >= 6000 - 2048 || log.size_bytes() == total_before);
    assert_eq!(
        log.log_start_offset(),
        log.segments().next().unwrap().base_offset
    );
    assert_eq!(read_all(&log).len() as i64, leo - log.log_start_offset());
}

#[test]
fn retention_never_passes_the_high_watermark() {
    let tmp = tempfile::tempdir().unwrap();
    let c = LogConfig {
        retention_ms: 0,
        ..config()
    };
    let m = manager(tmp.path(), c.clone());
    let h = m.get_or_create("hw", 0, c).unwrap();
    let mut log = h.lock();
    for i in 0..30 {
        log.append_as_leader(&client_batch(i * 5, 5, 50, 1, 0), 0)
            .unwrap();
    }
    log.set_high_watermark(0);
    assert_eq!(log.delete_old_segments(now_ms()).unwrap(), 0);
    log.set_high_watermark(150);
    log.delete_old_segments(now_ms()).unwrap();
    // Everything may go, but a fresh active segment remains at the log end.
    assert_eq!(log.log_start_offset(), 150);
    assert_eq!(log.log_end_offset(), 150);
    assert_eq!(
        log.append_as_leader(&client_batch(0, 1, 5, 1, 0), 0)
            .unwrap()
            .base_offset,
        150
    );
}

#[test]
fn delete_records_moves_the_start_within_a_segment_and_survives_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let m = manager(tmp.path(), config());
    let h = m.get_or_create("dr", 0, config()).unwrap();
    {
        let mut log = h.lock();
        for i in 0..30 {
            log.append_as_leader(&client_batch(i * 5, 5, 50, 1, 0), 0)
                .unwrap();
        }
        log.set_high_watermark(100);
        assert!(
            matches!(
                log.delete_records(101),
                Err(LogError::OffsetOutOfRange { .. })
            ),
            "not past the high watermark"
        );
        assert_eq!(log.delete_records(42).unwrap(), 42);
        assert!(matches!(
            log.read(41, 100, 150, true),
            Err(LogError::OffsetOutOfRange { .. })
        ));
        let recs = read_all(&log);
        assert_eq!(recs.first().unwrap().offset, 42);
        assert!(
            log.segments().next().unwrap().base_offset <= 42,
            "segments below the start are gone, the one holding it stays"
        );
        assert!(log.segments().nth(1).unwrap().base_offset > 42);
        // Timestamp lookups never answer below the start.
        assert_eq!(
            log.offset_for_timestamp(0).unwrap().map(|(o, _)| o),
            Some(42)
        );
    }
    drop(h);
    m.shutdown().unwrap();
    let cp = std::fs::read_to_string(tmp.path().join("log-start-offset-checkpoint")).unwrap();
    assert_eq!(cp, "0\n1\ndr 0 42\n");
    let m = manager(tmp.path(), config());
    let h = m.get("dr", 0).unwrap();
    let log = h.lock();
    assert_eq!(log.log_start_offset(), 42);
    assert_eq!(log.high_watermark(), 100);
    assert_eq!(log.log_end_offset(), 150);
}
