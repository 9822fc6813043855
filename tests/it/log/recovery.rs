//! Damage and crashes: whatever happens to the files, the log reopens with every batch before
//! the damage readable, the damaged tail gone, indexes rebuilt, and appends continuing.

use crate::common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{client_batch, open_log, read_all};
use odradek::config::LogConfig;
use odradek::log::manager::BrokerIdentity;
use odradek::log::{LogManager, PartitionLog};

fn small_segments() -> LogConfig {
    LogConfig {
        segment_bytes: 4096,
        index_interval_bytes: 512,
        ..LogConfig::default()
    }
}

/// 60 batches of 5 records over several segments; returns the log's directory.
fn write_log(root: &Path) -> PathBuf {
    let dir = root.join("damage-0");
    let mut log = open_log(&dir, small_segments(), false);
    for i in 0..60 {
        log.append_as_leader(&client_batch(i * 5, 5, 40, 1000 + i as i64, 0), 0)
            .unwrap();
    }
    assert!(log.segment_count() >= 4);
    log.close().unwrap();
    dir
}

fn last_segment(dir: &Path) -> PathBuf {
    let mut logs: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    logs.sort();
    logs.pop().unwrap()
}

fn assert_prefix_intact(log: &PartitionLog, expected_records: usize) {
    let recs = read_all(log);
    assert_eq!(recs.len(), expected_records);
    for (i, r) in recs.iter().enumerate() {
        assert_eq!(r.offset, i as i64);
        assert_eq!(r.key.as_deref(), Some(format!("key-{i}").as_bytes()));
    }
}

fn assert_appends_continue(log: &mut PartitionLog) {
    let leo = log.log_end_offset();
    let info = log
        .append_as_leader(&client_batch(leo as usize, 5, 40, 5000, 0), 0)
        .unwrap();
    assert_eq!(info.base_offset, leo);
    assert_prefix_intact(log, leo as usize + 5);
}

#[test]
fn a_segment_cut_mid_batch_loses_only_the_torn_batch() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = write_log(tmp.path());
    let seg = last_segment(&dir);
    let len = std::fs::metadata(&seg).unwrap().len();
    let f = std::fs::OpenOptions::new().write(true).open(&seg).unwrap();
    f.set_len(len - 30).unwrap();
    drop(f);
    let mut log = open_log(&dir, small_segments(), false);
    assert_eq!(
        log.log_end_offset(),
        295,
        "the last batch (295..299) was torn"
    );
    assert_prefix_intact(&log, 295);
    assert_appends_continue(&mut log);
}

#[test]
fn a_flipped_byte_in_the_last_batch_drops_that_batch() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = write_log(tmp.path());
    let seg = last_segment(&dir);
    let mut data = std::fs::read(&seg).unwrap();
    let n = data.len();
    data[n - 10] ^= 0x5a;
    std::fs::write(&seg, &data).unwrap();
    let mut log = open_log(&dir, small_segments(), false);
    assert_eq!(log.log_end_offset(), 295);
    assert_prefix_intact(&log, 295);
    assert_appends_continue(&mut log);
}

#[test]
fn damage_in_an_older_segment_truncates_there_and_drops_later_segments() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = write_log(tmp.path());
    let mut segs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    segs.sort();
    let second = &segs[1];
    let base: i64 = second
        .file_stem()
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let mut data = std::fs::read(second).unwrap();
    data[70] ^= 0xff; // inside the first batch's records
    std::fs::write(second, &data).unwrap();
    let mut log = open_log(&dir, small_segments(), false);
    assert_eq!(log.log_end_offset(), base);
    assert_eq!(
        log.segment_count(),
        2,
        "later segments are deleted, as Kafka does"
    );
    assert_prefix_intact(&log, base as usize);
    assert_appends_continue(&mut log);
}

#[test]
fn missing_or_garbled_indexes_are_rebuilt() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = write_log(tmp.path());
    let reference = {
        let log = open_log(&dir, small_segments(), true);
        log.segments()
            .map(|s| {
                (0..s.offset_index.file.len())
                    .map(|n| s.offset_index.entry(n))
                    .collect::<Vec<_>>()
            })
            .collect::<Vec<_>>()
    };
    let mut indexes: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.extension()
                .is_some_and(|e| e == "index" || e == "timeindex")
        })
        .collect();
    indexes.sort();
    std::fs::remove_file(&indexes[0]).unwrap(); // first .index
    std::fs::write(&indexes[2], vec![0x7f; 40]).unwrap(); // second .index: garbage
    std::fs::write(&indexes[3], vec![0x01, 0x02, 0x03]).unwrap(); // second .timeindex: torn
    // Even with the clean-shutdown marker (no full recovery), bad indexes are rebuilt.
    let mut log = open_log(&dir, small_segments(), true);
    let rebuilt: Vec<Vec<(i64, u32)>> = log
        .segments()
        .map(|s| {
            (0..s.offset_index.file.len())
                .map(|n| s.offset_index.entry(n))
                .collect()
        })
        .collect();
    assert_eq!(rebuilt, reference, "rebuilt indexes equal the originals");
    assert_prefix_intact(&log, 300);
    let second_base = log.segments().nth(1).unwrap().base_offset;
    assert!(
        !log.segments().nth(1).unwrap().time_index.file.is_empty(),
        "torn time index rebuilt"
    );
    let ts = 1000 + second_base / 5 + 1;
    assert_eq!(
        log.offset_for_timestamp(ts).unwrap(),
        Some((second_base + 5, ts))
    );
    assert_appends_continue(&mut log);
}

#[test]
fn a_damaged_checkpoint_or_stray_files_do_not_stop_the_log_dir() {
    let tmp = tempfile::tempdir().unwrap();
    write_log(tmp.path());
    let m = common::open_manager(tmp.path(), small_segments());
    m.shutdown().unwrap();
    std::fs::write(
        tmp.path().join("recovery-point-offset-checkpoint"),
        "0\n7\nnonsense\n",
    )
    .unwrap();
    std::fs::write(tmp.path().join("replication-offset-checkpoint"), "garbage").unwrap();
    std::fs::create_dir(tmp.path().join("not a partition")).unwrap();
    std::fs::write(
        tmp.path()
            .join("damage-0")
            .join("00000000000000099999.index"),
        b"orphan",
    )
    .unwrap();
    let m = common::open_manager(tmp.path(), small_segments());
    let h = m.get("damage", 0).unwrap();
    assert_prefix_intact(&h.lock(), 300);
    assert!(
        !tmp.path()
            .join("damage-0")
            .join("00000000000000099999.index")
            .exists(),
        "orphan index removed"
    );
}

#[test]
fn a_second_manager_cannot_open_a_locked_log_dir() {
    let tmp = tempfile::tempdir().unwrap();
    let _m = common::open_manager(tmp.path(), LogConfig::default());
    let identity = BrokerIdentity {
        broker_id: 0,
        cluster_id: None,
    };
    let err = LogManager::open(
        &[tmp.path().to_path_buf()],
        &identity,
        LogConfig::default(),
        |_| LogConfig::default(),
    )
    .err()
    .unwrap();
    assert!(err.to_string().contains("locked"), "{err}");
}

const CHILD_DIR: &str = "ODRADEK_TEST_APPENDER_DIR";

/// Not a test: the process `kill_9_during_appends_loses_no_acknowledged_batch` kills. It appends
/// until killed (bounded at two minutes) and prints each acknowledged last offset.
#[test]
#[ignore = "helper process for kill_9_during_appends_loses_no_acknowledged_batch"]
fn appender_child_process() {
    let Some(dir) = std::env::var_os(CHILD_DIR) else {
        return;
    };
    let m = common::open_manager(&PathBuf::from(dir), small_segments());
    let h = m.get_or_create("crash", 0, small_segments()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut next = h.lock().log_end_offset() as usize;
    while Instant::now() < deadline {
        let info = h
            .append_as_leader(&client_batch(next, 5, 40, 1000, 0), 0)
            .unwrap();
        next = info.last_offset as usize + 1;
        println!("acked {}", info.last_offset);
    }
}

#[test]
fn kill_9_during_appends_loses_no_acknowledged_batch() {
    let tmp = tempfile::tempdir().unwrap();
    let mut child = common::child_test(module_path!(), "appender_child_process")
        .env(CHILD_DIR, tmp.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut last_acked = -1i64;
    let deadline = Instant::now() + Duration::from_secs(60);
    for line in BufReader::new(stdout).lines() {
        let Ok(line) = line else { break };
        if let Some(off) = line.strip_prefix("acked ") {
            last_acked = off.trim().parse().unwrap();
        }
        if last_acked >= 20_000 || Instant::now() > deadline {
            break;
        }
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(
        last_acked >= 20_000,
        "child acknowledged only up to {last_acked}"
    );

    let m = common::open_manager(tmp.path(), small_segments());
    let h = m.get("crash", 0).unwrap();
    let mut log = h.lock();
    assert!(
        log.log_end_offset() > last_acked,
        "acknowledged offset {last_acked} survived (LEO {})",
        log.log_end_offset()
    );
    assert_prefix_intact(&log, log.log_end_offset() as usize);
    assert_appends_continue(&mut log);
}

/// After a crash, an idle leader's log (its epoch starting at the log end, no batch of it yet)
/// is recovered without rewriting its leader-epoch checkpoint: 10,000 such rewrites, each with
/// its fsyncs, made a broker killed with -9 take minutes to load. The entry past the end is
/// dropped in memory only, and the log serves and appends as before.
#[test]
fn a_crash_recovers_an_idle_leaders_log_without_rewriting_its_epochs() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("idle-0");
    let mut log = open_log(&dir, small_segments(), false);
    for i in 0..3 {
        log.append_as_leader(&client_batch(i * 5, 5, 40, 1000 + i as i64, 0), 0)
            .unwrap();
    }
    log.assign_leader_epoch_start(1).unwrap();
    let checkpoint = dir.join(odradek::log::checkpoint::LEADER_EPOCH_FILE);
    let before = std::fs::read(&checkpoint).unwrap();
    let modified = std::fs::metadata(&checkpoint).unwrap().modified().unwrap();
    // No close: the active segment keeps its preallocated indexes, as after kill -9.
    drop(log);

    let mut log = open_log(&dir, small_segments(), false);
    assert_eq!(std::fs::read(&checkpoint).unwrap(), before);
    assert_eq!(
        std::fs::metadata(&checkpoint).unwrap().modified().unwrap(),
        modified
    );
    assert_eq!(log.leader_epochs(), &[(0, 0)]);
    assert_eq!(log.log_end_offset(), 15);
    assert_prefix_intact(&log, 15);
    assert_appends_continue(&mut log);
}

/// After a clean restart, a leader taking an idle log's leadership again at the same epoch
/// leaves its leader-epoch checkpoint as it is (the load dropped the entry in memory only):
/// rewriting and fsyncing 10,000 identical files was most of a restart's LeaderAndIsr. A new
/// epoch is still written, and read back after the next restart.
#[test]
fn a_restarted_leader_rewrites_its_epoch_checkpoint_only_for_a_new_epoch() {
    use std::os::unix::fs::MetadataExt;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("idle-0");
    let checkpoint = dir.join(odradek::log::checkpoint::LEADER_EPOCH_FILE);
    // The file is replaced by a rename on every write: its inode tells whether it was written.
    let inode = || std::fs::metadata(&checkpoint).unwrap().ino();
    let mut log = open_log(&dir, small_segments(), true);
    log.assign_leader_epoch_start(0).unwrap();
    log.close().unwrap();
    let written = inode();

    let mut log = open_log(&dir, small_segments(), true);
    assert_eq!(
        log.leader_epochs(),
        &[],
        "an epoch starting at the end is dropped"
    );
    log.assign_leader_epoch_start(0).unwrap();
    assert_eq!(log.leader_epochs(), &[(0, 0)]);
    assert_eq!(inode(), written, "the same epoch again is not rewritten");
    log.assign_leader_epoch_start(1).unwrap();
    assert_ne!(inode(), written, "a new epoch is written");
    log.append_as_leader(&client_batch(0, 5, 40, 1000, 0), 1)
        .unwrap();
    log.close().unwrap();

    let log = open_log(&dir, small_segments(), true);
    assert_eq!(log.leader_epochs(), &[(1, 0)]);
}

/// A clean shutdown writes no producer snapshot for an empty log (Kafka's `takeSnapshot` only
/// writes past its last snapshot offset, which starts at the log start), and one at the log
/// end for a log with data, from which the next load restores its producers.
#[test]
fn a_clean_shutdown_snapshots_producers_only_for_a_log_with_data() {
    let tmp = tempfile::tempdir().unwrap();
    let snapshots = |dir: &Path| {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .filter(|n| n.ends_with(".snapshot"))
            .collect();
        names.sort();
        names
    };
    let empty = tmp.path().join("empty-0");
    let log = open_log(&empty, small_segments(), true);
    log.close().unwrap();
    assert_eq!(snapshots(&empty), Vec::<String>::new());
    let log = open_log(&empty, small_segments(), true);
    assert_eq!(log.log_end_offset(), 0);
    log.close().unwrap();

    let full = tmp.path().join("full-0");
    let mut log = open_log(&full, small_segments(), true);
    log.append_as_leader(&client_batch(0, 5, 40, 1000, 0), 0)
        .unwrap();
    log.close().unwrap();
    assert_eq!(snapshots(&full), vec!["00000000000000000005.snapshot"]);
}
