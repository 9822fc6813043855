//! Descriptors and loading: after a clean restart a log holds one open file whatever its
//! segments, older segments open when read, and logs loaded on several threads are complete.

use crate::common;

use common::{client_batch, read_all};
use odradek::config::LogConfig;
use odradek::log::LogManager;
use odradek::log::manager::BrokerIdentity;

fn small_segments() -> LogConfig {
    LogConfig {
        segment_bytes: 4096,
        index_interval_bytes: 512,
        ..LogConfig::default()
    }
}

fn reopen(dir: &std::path::Path, threads: usize) -> LogManager {
    let identity = BrokerIdentity {
        broker_id: 0,
        cluster_id: None,
    };
    let config = small_segments();
    LogManager::open_with_threads(
        &[dir.to_path_buf()],
        &identity,
        config.clone(),
        move |_| config.clone(),
        threads,
    )
    .unwrap()
}

#[test]
fn after_a_clean_restart_only_active_segments_hold_files_and_old_ones_open_when_read() {
    let tmp = tempfile::tempdir().unwrap();
    let m = common::open_manager(tmp.path(), small_segments());
    let mut expected = Vec::new();
    for p in 0..6 {
        let h = m.get_or_create("fd", p, small_segments()).unwrap();
        for i in 0..40 {
            h.append_as_leader(&client_batch(i * 5, 5, 40, 1000 + i as i64, 0), 0)
                .unwrap();
        }
        let log = h.lock();
        assert!(log.segment_count() >= 4, "the appends rolled segments");
        expected.push(read_all(&log));
    }
    m.shutdown().unwrap();

    let m = reopen(tmp.path(), 3);
    for p in 0..6 {
        let h = m.get("fd", p).expect("every log is loaded");
        let log = h.lock();
        let open: Vec<bool> = log.segments().map(|s| s.is_file_open()).collect();
        assert_eq!(
            open.iter().filter(|o| **o).count(),
            1,
            "fd-{p}: only the active segment's file is open after loading: {open:?}"
        );
        assert_eq!(open.last(), Some(&true), "the active one");
        // A lookup by time maps the old segments' time indexes on first use.
        assert_eq!(
            log.offset_for_timestamp(1003).unwrap(),
            Some((15, 1003)),
            "fd-{p}: time lookup in an old segment"
        );
        assert_eq!(read_all(&log), expected[p as usize], "fd-{p}: every record");
        assert!(
            log.segments().next().is_some_and(|s| s.is_file_open()),
            "the first segment was opened to be read"
        );
    }
    drop(m);
}
