//! Log compaction at the log level: a compacted log read after cleaning holds exactly the
//! latest record of each key at the offset it was written at; tombstones go once
//! `delete.retention.ms` has passed; transactions stay correct; cleaning does not hold up
//! appends; and a crash at any step of the swap loses nothing.

use crate::common;

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::open_manager;
use odradek::api::errors::KafkaCode;
use odradek::config::{CleanerConfig, LogConfig};
use odradek::log::records::{BatchBuilder, NewRecord, Record};
use odradek::log::segment::now_ms;
use odradek::log::{LogHandle, LogManager};

const KEYS: usize = 1000;
const ROUNDS: usize = 100;
const PER_BATCH: usize = 50;
const RETENTION_MS: i64 = 60_000;
const TOPIC: &str = "compacted";

fn compacted() -> LogConfig {
    LogConfig {
        segment_bytes: 16 * 1024,
        index_interval_bytes: 1024,
        cleanup_compact: true,
        cleanup_delete: false,
        delete_retention_ms: RETENTION_MS,
        ..LogConfig::default()
    }
}

/// A cleaner without threads: the tests drive it pass by pass, with the clock they choose.
fn manual() -> CleanerConfig {
    CleanerConfig {
        enable: false,
        ..CleanerConfig::default()
    }
}

fn key(k: usize) -> Vec<u8> {
    format!("key-{k:04}").into_bytes()
}

fn is_deleted(k: usize) -> bool {
    k.is_multiple_of(10)
}

/// Every data record from the log start, through `read` as a consumer fetches. Compaction leaves
/// gaps in the offsets, also before the log end (as in Kafka, where a consumer of a compacted
/// topic may stay behind the high watermark): an empty read means nothing more is there.
fn read_all(log: &odradek::log::PartitionLog) -> Vec<Record> {
    let mut out = Vec::new();
    let mut next = log.log_start_offset();
    for _ in 0..1_000_000 {
        if next >= log.log_end_offset() {
            return out;
        }
        let r = log
            .read(next, 64 * 1024, log.log_end_offset(), true)
            .unwrap();
        if r.records.is_empty() {
            return out;
        }
        let mut pos = 0;
        while pos < r.records.len() {
            let size = odradek::log::batch::entry_size(&r.records[pos..]).unwrap() as usize;
            let (h, recs) =
                odradek::log::records::decode_batch(&r.records[pos..pos + size]).unwrap();
            out.extend(
                recs.into_iter()
                    .filter(|rec| rec.offset >= next && !h.is_control()),
            );
            next = next.max(h.next_offset());
            pos += size;
        }
    }
    panic!("read loop does not advance");
}

/// Everything written, by offset, and each key's last record.
#[derive(Default)]
struct Written {
    at: HashMap<i64, (Vec<u8>, Option<Vec<u8>>)>,
    latest: BTreeMap<Vec<u8>, (i64, Option<Vec<u8>>)>,
}

impl Written {
    fn append(&mut self, h: &LogHandle, records: Vec<(Vec<u8>, Option<Vec<u8>>)>) {
        let batch = BatchBuilder {
            records: records
                .iter()
                .map(|(k, v)| NewRecord {
                    timestamp: now_ms(),
                    key: Some(k.clone()),
                    value: v.clone(),
                    headers: vec![(b"h".to_vec(), Some(b"x".to_vec()))],
                })
                .collect(),
            ..BatchBuilder::default()
        };
        let info = h
            .append_as_leader(&Bytes::from(batch.build().unwrap()), 0)
            .unwrap();
        for (i, (k, v)) in records.into_iter().enumerate() {
            let offset = info.base_offset + i as i64;
            self.at.insert(offset, (k.clone(), v.clone()));
            self.latest.insert(k, (offset, v));
        }
    }
}

/// 100,000 records over 1,000 keys, then tombstones for 100 keys, then a roll so that all of
/// it lies in closed (cleanable) segments.
fn write_workload(h: &LogHandle) -> Written {
    let mut w = Written::default();
    for round in 0..ROUNDS {
        for first in (0..KEYS).step_by(PER_BATCH) {
            let records = (first..first + PER_BATCH)
                .map(|k| (key(k), Some(format!("value-{k}-{round}").into_bytes())))
                .collect();
            w.append(h, records);
        }
    }
    let tombstones: Vec<_> = (0..KEYS)
        .filter(|&k| is_deleted(k))
        .map(|k| (key(k), None))
        .collect();
    for chunk in tombstones.chunks(10) {
        w.append(h, chunk.to_vec());
    }
    let mut log = h.lock();
    log.roll(None).unwrap();
    let leo = log.log_end_offset();
    log.set_high_watermark(leo);
    assert!(
        log.segment_count() > 100,
        "{} segments",
        log.segment_count()
    );
    w
}

/// Every record read is exactly what was written at its offset, offsets strictly increase.
fn assert_nothing_corrupted(records: &[Record], w: &Written) {
    let mut last = -1;
    for r in records {
        assert!(r.offset > last, "offset {} after {last}", r.offset);
        last = r.offset;
        let (k, v) =
            w.at.get(&r.offset)
                .expect("a record at an offset never written");
        assert_eq!(r.key.as_deref(), Some(&k[..]), "key at {}", r.offset);
        assert_eq!(r.value.as_deref(), v.as_deref(), "value at {}", r.offset);
    }
}

/// Nothing lost: every key's newest record read is the last one written for it.
fn assert_latest_of_every_key_present(records: &[Record], w: &Written) {
    assert_nothing_corrupted(records, w);
    let mut newest: HashMap<&[u8], &Record> = HashMap::new();
    for r in records {
        newest.insert(r.key.as_deref().unwrap(), r);
    }
    for (k, (offset, value)) in &w.latest {
        match newest.get(&k[..]) {
            Some(r) => {
                assert_eq!(r.offset, *offset, "{}", String::from_utf8_lossy(k));
                assert_eq!(r.value.as_deref(), value.as_deref());
            }
            // A deleted key whose tombstone went is fine.
            None => assert!(value.is_none(), "{} lost", String::from_utf8_lossy(k)),
        }
    }
}

/// Exactly one record per key, the last written, at its offset; tombstones only if expected.
fn assert_compacted(records: &[Record], w: &Written, tombstones_left: bool) {
    assert_nothing_corrupted(records, w);
    let mut seen: BTreeMap<Vec<u8>, (i64, Option<Vec<u8>>)> = BTreeMap::new();
    for r in records {
        let k = r.key.as_ref().unwrap().to_vec();
        let prev = seen.insert(k.clone(), (r.offset, r.value.as_ref().map(|v| v.to_vec())));
        assert!(prev.is_none(), "{} read twice", String::from_utf8_lossy(&k));
    }
    let expected: BTreeMap<_, _> = w
        .latest
        .iter()
        .filter(|(_, (_, v))| tombstones_left || v.is_some())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    assert_eq!(seen.len(), expected.len());
    assert!(
        seen == expected,
        "compacted log differs from the expected one"
    );
}

fn handle(m: &LogManager) -> Arc<LogHandle> {
    m.get_or_create(TOPIC, 0, compacted()).unwrap()
}

fn cleaner_checkpoint(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("cleaner-offset-checkpoint")).unwrap()
}

#[test]
fn compaction_keeps_the_last_record_per_key_at_its_offset_and_tombstones_for_their_retention() {
    let tmp = tempfile::tempdir().unwrap();
    let m = open_manager(tmp.path(), compacted());
    let h = handle(&m);
    let w = write_workload(&h);
    let size_before = h.lock().size_bytes();
    let active_base = h.lock().segments().last().unwrap().base_offset;
    let cleaner = m.start_cleaner(manual()).unwrap();
    assert_eq!(
        cleaner_checkpoint(tmp.path()),
        "",
        "created empty, as Kafka does"
    );

    let now = now_ms();
    let stats = cleaner
        .clean_filthiest(now)
        .unwrap()
        .expect("the log is dirty");
    assert!(stats.swapped);
    assert_eq!((stats.first_dirty, stats.end_offset), (0, active_base));
    assert_compacted(&read_all(&h.lock()), &w, true);
    assert_eq!(
        cleaner_checkpoint(tmp.path()),
        format!("0\n1\n{TOPIC} 0 {active_base}\n")
    );
    let size_after = h.lock().size_bytes();
    assert!(
        size_after * 20 < size_before,
        "{size_before} bytes -> {size_after}"
    );

    // Nothing new is dirty and no tombstone is due yet: nothing to do.
    assert_eq!(cleaner.clean_filthiest(now + 1000).unwrap(), None);
    // Once delete.retention.ms has passed since the first clean, the tombstones go.
    let stats = cleaner
        .clean_filthiest(now + RETENTION_MS + 1)
        .unwrap()
        .expect("tombstones are due");
    assert!(stats.swapped);
    assert_compacted(&read_all(&h.lock()), &w, false);
    assert!(
        h.lock().segment_count() < 10,
        "small cleaned segments are merged by later passes: {}",
        h.lock().segment_count()
    );

    // Appends go on at the log end; the state survives a restart.
    let mut w = w;
    w.append(&h, vec![(key(1), Some(b"after".to_vec()))]);
    drop(h);
    drop(cleaner);
    m.shutdown().unwrap();
    let m = open_manager(tmp.path(), compacted());
    let h = handle(&m);
    assert_eq!(h.lock().cleaner_offset(), Some(active_base));
    let mut log = h.lock();
    let leo = log.log_end_offset();
    log.set_high_watermark(leo);
    log.roll(None).unwrap();
    drop(log);
    let cleaner = m.start_cleaner(manual()).unwrap();
    // One new record for key 1 is a tiny dirty section, far below the default ratio of 0.5.
    assert_eq!(
        cleaner.clean_filthiest(now + RETENTION_MS + 2).unwrap(),
        None
    );
    let mut c = compacted();
    c.min_cleanable_dirty_ratio = 0.0;
    h.lock().set_config(c);
    cleaner
        .clean_filthiest(now + RETENTION_MS + 2)
        .unwrap()
        .expect("new dirty data");
    assert_compacted(&read_all(&h.lock()), &w, false);
}

#[test]
fn min_cleanable_dirty_ratio_and_compaction_lags_decide_when_a_log_is_cleaned() {
    let tmp = tempfile::tempdir().unwrap();
    let m = open_manager(tmp.path(), compacted());
    let h = handle(&m);
    let w = write_workload(&h);
    let cleaner = m.start_cleaner(manual()).unwrap();
    let now = now_ms();

    // Everything is younger than min.compaction.lag.ms: nothing may be cleaned.
    let mut c = compacted();
    c.min_compaction_lag_ms = 3_600_000;
    h.lock().set_config(c.clone());
    assert_eq!(cleaner.clean_filthiest(now).unwrap(), None);
    c.min_compaction_lag_ms = 0;
    h.lock().set_config(c.clone());
    cleaner.clean_filthiest(now).unwrap().unwrap();

    // A little new dirty data is below the ratio...
    let mut w = w;
    for k in 0..200 {
        w.append(&h, vec![(key(k + 1), Some(b"again".to_vec()))]);
    }
    {
        let mut log = h.lock();
        log.roll(None).unwrap();
        let leo = log.log_end_offset();
        log.set_high_watermark(leo);
    }
    assert_eq!(cleaner.clean_filthiest(now).unwrap(), None);
    // ...until it is older than max.compaction.lag.ms.
    c.max_compaction_lag_ms = 1;
    h.lock().set_config(c);
    let stats = cleaner.clean_filthiest(now_ms() + 1000).unwrap().unwrap();
    assert!(stats.swapped);
    assert_compacted(&read_all(&h.lock()), &w, true);
}

#[test]
fn cleaning_stops_at_the_high_watermark() {
    let tmp = tempfile::tempdir().unwrap();
    let m = open_manager(tmp.path(), compacted());
    let h = handle(&m);
    let w = write_workload(&h);
    let hw = {
        let mut log = h.lock();
        let hw = log.segments().nth(40).unwrap().base_offset + 3;
        log.set_high_watermark(hw);
        hw
    };
    let cleaner = m.start_cleaner(manual()).unwrap();
    let stats = cleaner.clean_filthiest(now_ms()).unwrap().unwrap();
    assert!(stats.end_offset <= hw, "{} > {hw}", stats.end_offset);
    let recs = read_all(&h.lock());
    assert_latest_of_every_key_present(&recs, &w);
    assert!(
        recs.iter().filter(|r| r.offset >= hw).count() as i64 == h.lock().log_end_offset() - hw,
        "nothing past the high watermark was touched"
    );
}

/// Builds a batch with offsets already assigned, as a follower receives it.
fn replicated(
    base: i64,
    pid: i64,
    seq: i32,
    transactional: bool,
    control: bool,
    records: Vec<(Vec<u8>, Option<Vec<u8>>)>,
) -> Bytes {
    let b = BatchBuilder {
        base_offset: base,
        producer_id: pid,
        producer_epoch: 0,
        base_sequence: seq,
        transactional,
        control,
        records: records
            .into_iter()
            .map(|(k, v)| NewRecord {
                timestamp: now_ms(),
                key: Some(k),
                value: v,
                headers: Vec::new(),
            })
            .collect(),
        partition_leader_epoch: 0,
        ..BatchBuilder::default()
    };
    Bytes::from(b.build().unwrap())
}

fn marker(commit: bool) -> (Vec<u8>, Option<Vec<u8>>) {
    let key = vec![0, 0, 0, u8::from(commit)];
    (key, Some(vec![0, 0, 0, 0, 0, 0]))
}

#[test]
fn aborted_transactions_go_committed_stay_and_open_ones_stop_the_cleaner() {
    let tmp = tempfile::tempdir().unwrap();
    let m = open_manager(tmp.path(), compacted());
    let h = handle(&m);
    let append = |b: Bytes| {
        h.append_as_follower(&b).unwrap();
    };
    let leo = || h.lock().log_end_offset();
    // Producer 1 writes t1, t2 in a transaction it aborts; producer 2 writes t3 and commits.
    append(replicated(
        leo(),
        1,
        0,
        true,
        false,
        vec![
            (b"t1".to_vec(), Some(b"aborted".to_vec())),
            (b"t2".to_vec(), Some(b"aborted".to_vec())),
        ],
    ));
    append(replicated(
        leo(),
        2,
        0,
        true,
        false,
        vec![(b"t3".to_vec(), Some(b"committed".to_vec()))],
    ));
    append(replicated(leo(), 1, -1, true, true, vec![marker(false)]));
    append(replicated(leo(), 2, -1, true, true, vec![marker(true)]));
    // Producer 1 goes on without transactions, so its aborted batch is not its last.
    append(replicated(
        leo(),
        1,
        2,
        false,
        false,
        vec![(b"p1".to_vec(), Some(b"later".to_vec()))],
    ));
    let mut filler = 0;
    let mut fill = |n: usize| {
        for _ in 0..n {
            let recs = (0..20)
                .map(|i| {
                    (
                        format!("f{}", (filler * 20 + i) % 300).into_bytes(),
                        Some(vec![b'x'; 40]),
                    )
                })
                .collect();
            append(replicated(leo(), -1, -1, false, false, recs));
            filler += 1;
        }
    };
    fill(60);
    // Producer 3 opens a transaction and leaves it open: nothing from there on is stable.
    let open_at = leo();
    append(replicated(
        open_at,
        3,
        0,
        true,
        false,
        vec![(b"t4".to_vec(), Some(b"open".to_vec()))],
    ));
    fill(60);
    {
        let mut log = h.lock();
        log.roll(None).unwrap();
        let end = log.log_end_offset();
        log.set_high_watermark(end);
        assert_eq!(log.last_stable_offset(), open_at);
        assert_eq!(
            log.segments()
                .map(|s| s.txn_index.entries().len())
                .sum::<usize>(),
            1,
            "the abort is in the transaction index"
        );
    }
    let cleaner = m.start_cleaner(manual()).unwrap();
    let stats = cleaner.clean_filthiest(now_ms()).unwrap().unwrap();
    assert!(
        stats.end_offset <= open_at,
        "cleaning stops before the open transaction"
    );

    let recs = read_all(&h.lock());
    let value_of = |k: &[u8]| -> Vec<Option<Bytes>> {
        recs.iter()
            .filter(|r| r.key.as_deref() == Some(k))
            .map(|r| r.value.clone())
            .collect()
    };
    assert!(
        value_of(b"t1").is_empty() && value_of(b"t2").is_empty(),
        "aborted records removed"
    );
    assert_eq!(
        value_of(b"t3"),
        vec![Some(Bytes::from_static(b"committed"))]
    );
    assert_eq!(value_of(b"t4"), vec![Some(Bytes::from_static(b"open"))]);
    assert_eq!(value_of(b"p1").len(), 1);
    // Filler keys repeat every 300 records: below the cleaned end (the start of the segment
    // holding the open transaction's first offset) each is there once; after the open
    // transaction nothing was cleaned, so the duplicates remain.
    let before: Vec<&Record> = recs
        .iter()
        .filter(|r| r.offset < stats.end_offset && r.key.as_ref().unwrap().starts_with(b"f"))
        .collect();
    assert!(
        before.len() >= 250,
        "{} filler records cleaned",
        before.len()
    );
    let distinct: std::collections::HashSet<_> = before.iter().map(|r| r.key.clone()).collect();
    assert_eq!(before.len(), distinct.len(), "the stable part is compacted");
    let after = recs
        .iter()
        .filter(|r| r.offset > open_at && r.key.as_ref().unwrap().starts_with(b"f"))
        .count();
    assert_eq!(
        after,
        60 * 20,
        "nothing after the open transaction was cleaned"
    );

    // The COMMIT marker stays while its transaction's records do; the ABORT marker (whose
    // records are gone) gets a delete horizon and goes after it.
    let controls = |log: &odradek::log::PartitionLog| -> Vec<(i64, bool)> {
        let mut out = Vec::new();
        for s in log.segments() {
            let mut pos = 0;
            while let Some(e) = s.entry_at(pos).unwrap() {
                if let Some(h) = e.header.filter(|h| h.is_control() && h.records_count > 0) {
                    out.push((h.producer_id, h.attributes & 0x40 != 0));
                }
                pos += e.size;
            }
        }
        out
    };
    let after_first = controls(&h.lock());
    assert!(after_first.contains(&(2, false)), "{after_first:?}");
    assert!(
        after_first.contains(&(1, false)),
        "the abort marker stays while the pass that removes its records runs: {after_first:?}"
    );
    // Producer 3 commits: the rest of the log becomes stable and dirty, and is cleaned.
    append(replicated(leo(), 3, -1, true, true, vec![marker(true)]));
    {
        let mut log = h.lock();
        log.roll(None).unwrap();
        let end = log.log_end_offset();
        log.set_high_watermark(end);
        assert_eq!(log.last_stable_offset(), end);
    }
    cleaner.clean_filthiest(now_ms()).unwrap().unwrap();
    let stamped = controls(&h.lock());
    assert!(
        stamped.contains(&(1, true)),
        "abort marker stamped: {stamped:?}"
    );
    cleaner
        .clean_filthiest(now_ms() + RETENTION_MS + 1)
        .unwrap()
        .expect("the abort marker is due");
    let later = controls(&h.lock());
    assert!(
        !later.iter().any(|(pid, _)| *pid == 1),
        "abort marker removed: {later:?}"
    );
    assert!(
        later.contains(&(2, false)),
        "commit marker of a live transaction kept: {later:?}"
    );
}

#[test]
fn a_keyless_record_is_refused_by_a_compacted_log() {
    let tmp = tempfile::tempdir().unwrap();
    let m = open_manager(tmp.path(), compacted());
    let h = handle(&m);
    for codec in [0, 1, 4] {
        let b = BatchBuilder {
            codec,
            records: vec![
                NewRecord {
                    timestamp: 1,
                    key: Some(b"k".to_vec()),
                    value: Some(b"v".to_vec()),
                    headers: Vec::new(),
                },
                NewRecord {
                    timestamp: 1,
                    key: None,
                    value: Some(b"v".to_vec()),
                    headers: Vec::new(),
                },
            ],
            ..BatchBuilder::default()
        };
        let err = h
            .append_as_leader(&Bytes::from(b.build().unwrap()), 0)
            .unwrap_err();
        assert_eq!(err.kafka_error_code(), 87, "INVALID_RECORD: {err}");
    }
    assert_eq!(h.lock().log_end_offset(), 0, "nothing appended");
}

#[test]
fn appends_and_reads_go_on_while_the_cleaner_thread_works() {
    let tmp = tempfile::tempdir().unwrap();
    let m = open_manager(tmp.path(), compacted());
    let h = handle(&m);
    let mut w = write_workload(&h);
    let active_base = h.lock().segments().last().unwrap().base_offset;
    // Throttled to about 2 MB/s, the ~5 MB pass takes a few seconds.
    let _cleaner = m
        .start_cleaner(CleanerConfig {
            io_max_bytes_per_second: 2_000_000.0,
            backoff_ms: 50,
            ..CleanerConfig::default()
        })
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut longest_wait = Duration::ZERO;
    let mut appended_during = 0;
    while h.lock().cleaner_offset().is_none_or(|c| c < active_base) {
        assert!(
            Instant::now() < deadline,
            "cleaning did not finish in 2 minutes"
        );
        // Only the cleaner thread contends for the log here: how long it made us wait.
        let asked = Instant::now();
        let log = h.lock();
        longest_wait = longest_wait.max(asked.elapsed());
        drop(log);
        w.append(
            &h,
            vec![(
                format!("new-{appended_during}").into_bytes(),
                Some(b"v".to_vec()),
            )],
        );
        {
            let mut log = h.lock();
            let leo = log.log_end_offset();
            log.set_high_watermark(leo);
            assert!(!log.read(0, 1024, leo, true).unwrap().records.is_empty());
        }
        appended_during += 1;
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(
        appended_during > 50,
        "only {appended_during} appends during cleaning"
    );
    // The throttled pass takes seconds; the cleaner holds the log only to look at it and to
    // swap a segment in (renames and a directory fsync).
    assert!(
        longest_wait < Duration::from_secs(1),
        "the log was held by the cleaner for {longest_wait:?}"
    );
    let recs = read_all(&h.lock());
    assert_latest_of_every_key_present(&recs, &w);
    let old: Vec<&Record> = recs.iter().filter(|r| r.offset < active_base).collect();
    assert_eq!(old.len(), KEYS, "the old part holds one record per key");
}

// ---- crashes during the swap -------------------------------------------------------------

const CHILD_DIR: &str = "ODRADEK_TEST_CLEANER_DIR";

/// Not a test: the process the crash tests kill. It cleans the log in `ODRADEK_TEST_CLEANER_DIR`
/// once; the failpoint in its environment ends it midway.
#[test]
#[ignore = "helper process for a_crash_at_any_step_of_the_swap_loses_nothing"]
fn cleaner_child_process() {
    let Some(dir) = std::env::var_os(CHILD_DIR) else {
        return;
    };
    let m = open_manager(&PathBuf::from(dir), compacted());
    let h = handle(&m);
    let mut log = h.lock();
    let leo = log.log_end_offset();
    log.set_high_watermark(leo);
    drop(log);
    let cleaner = m.start_cleaner(manual()).unwrap();
    cleaner.clean_filthiest(now_ms()).unwrap();
    println!("cleaned without reaching the failpoint");
}

/// Runs the child with the failpoint at `step` and waits (bounded) for it to die there.
fn crash_cleaner_at(dir: &Path, step: &str) {
    let mut child = common::child_test(module_path!(), "cleaner_child_process")
        .env(CHILD_DIR, dir)
        .env("ODRADEK_CLEANER_FAILPOINT", step)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("the cleaner child did not reach the {step} failpoint in 2 minutes");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(
        !status.success(),
        "child survived the {step} failpoint: {stderr}"
    );
    assert!(
        stderr.contains(&format!("failpoint {step} reached")),
        "{stderr}"
    );
}

fn files_with_suffix(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .collect();
    v.sort();
    v
}

/// Reopens after a crash: nothing lost, no leftovers; then cleaning completes exactly.
fn reopen_and_finish(root: &Path, w: &Written) {
    let m = open_manager(root, compacted());
    let part = root.join(format!("{TOPIC}-0"));
    for leftover in [".cleaned", ".swap", ".deleted"] {
        assert!(
            files_with_suffix(&part, leftover).is_empty(),
            "{leftover} left"
        );
    }
    let h = handle(&m);
    assert_latest_of_every_key_present(&read_all(&h.lock()), w);
    {
        let mut log = h.lock();
        let leo = log.log_end_offset();
        log.set_high_watermark(leo);
    }
    let cleaner = m.start_cleaner(manual()).unwrap();
    let now = now_ms();
    cleaner.clean_filthiest(now).unwrap().unwrap();
    cleaner
        .clean_filthiest(now + RETENTION_MS + 1)
        .unwrap()
        .unwrap();
    assert_compacted(&read_all(&h.lock()), w, false);
}

fn prepare(root: &Path) -> Written {
    let m = open_manager(root, compacted());
    let h = handle(&m);
    let w = write_workload(&h);
    drop(h);
    m.shutdown().unwrap();
    w
}

#[test]
fn a_crash_at_any_step_of_the_swap_loses_nothing() {
    for step in ["cleaned", "swap", "deleted"] {
        let tmp = tempfile::tempdir().unwrap();
        let w = prepare(tmp.path());
        crash_cleaner_at(tmp.path(), step);
        let part = tmp.path().join(format!("{TOPIC}-0"));
        let expected_suffix = if step == "cleaned" {
            ".cleaned"
        } else {
            ".swap"
        };
        assert!(
            !files_with_suffix(&part, &format!("log{expected_suffix}")).is_empty(),
            "the crash at {step} left a {expected_suffix} segment"
        );
        reopen_and_finish(tmp.path(), &w);
    }
}

#[test]
fn a_crash_in_the_middle_of_renaming_loses_nothing() {
    // Into .swap, but one index still .cleaned: the swap was not complete, so it is undone.
    let tmp = tempfile::tempdir().unwrap();
    let w = prepare(tmp.path());
    crash_cleaner_at(tmp.path(), "swap");
    let part = tmp.path().join(format!("{TOPIC}-0"));
    let index = files_with_suffix(&part, ".timeindex.swap").remove(0);
    let back = PathBuf::from(index.to_string_lossy().replace(".swap", ".cleaned"));
    std::fs::rename(&index, &back).unwrap();
    reopen_and_finish(tmp.path(), &w);

    // Out of .swap, log first: the log already renamed, its indexes still .swap.
    let tmp = tempfile::tempdir().unwrap();
    let w = prepare(tmp.path());
    crash_cleaner_at(tmp.path(), "deleted");
    let part = tmp.path().join(format!("{TOPIC}-0"));
    let log = files_with_suffix(&part, ".log.swap").remove(0);
    std::fs::rename(&log, log.to_string_lossy().trim_end_matches(".swap")).unwrap();
    reopen_and_finish(tmp.path(), &w);
}

// ---- Kafka's data and Kafka's reader --------------------------------------------------------

/// Kafka 2.4.1's `txn-0` (committed, aborted, committed transaction of 10 records each), rolled
/// and cleaned: the aborted records go, the committed stay, and the markers stay while their
/// transactions' records do, with the abort listed in the cleaned segment's `.txnindex`.
fn clean_kafka_txn_fixture(root: &Path) -> (LogManager, Arc<LogHandle>) {
    common::copy_tree(
        &common::kafka_single().join("logdir/txn-0"),
        &root.join("txn-0"),
    );
    let m = open_manager(root, compacted());
    let h = m.get("txn", 0).unwrap();
    h.lock().set_config(compacted());
    {
        let mut log = h.lock();
        assert_eq!(log.log_end_offset(), 33);
        log.roll(None).unwrap();
        log.set_high_watermark(33);
    }
    let cleaner = m.start_cleaner(manual()).unwrap();
    let stats = cleaner.clean_filthiest(now_ms()).unwrap().unwrap();
    assert_eq!((stats.end_offset, stats.records_written), (33, 23));
    (m, h)
}

#[test]
fn kafkas_transactional_log_is_cleaned_as_kafka_cleans_it() {
    let tmp = tempfile::tempdir().unwrap();
    let (_m, h) = clean_kafka_txn_fixture(tmp.path());
    let log = h.lock();
    let offsets: Vec<i64> = read_all(&log).iter().map(|r| r.offset).collect();
    let committed: Vec<i64> = (0..10).chain(22..32).collect();
    assert_eq!(
        offsets, committed,
        "the aborted transaction's records are gone"
    );
    let first = log.segments().next().unwrap();
    let mut markers = Vec::new();
    let mut pos = 0;
    while let Some(e) = first.entry_at(pos).unwrap() {
        if e.header.is_some_and(|h| h.is_control()) {
            markers.push(e.base_offset);
        }
        pos += e.size;
    }
    assert_eq!(markers, vec![10, 21, 32]);
    let aborted = first.txn_index.entries();
    assert_eq!(aborted.len(), 1);
    assert_eq!(
        (
            aborted[0].producer_id,
            aborted[0].first_offset,
            aborted[0].last_offset,
            aborted[0].last_stable_offset
        ),
        (1, 11, 21, 22)
    );
}

#[test]
fn kafkas_record_classes_read_cleaned_segments() {
    let tmp = tempfile::tempdir().unwrap();
    let (m, txn) = clean_kafka_txn_fixture(tmp.path());
    // A keyed log with tombstones (stamped with a delete horizon) and an idempotent producer
    // whose only batch loses its record (kept empty, for its sequence).
    let h = m.get_or_create("keyed", 0, compacted()).unwrap();
    let idempotent = BatchBuilder {
        producer_id: 5,
        producer_epoch: 0,
        base_sequence: 0,
        records: vec![NewRecord {
            timestamp: now_ms(),
            key: Some(b"a".to_vec()),
            value: Some(b"first".to_vec()),
            headers: Vec::new(),
        }],
        ..BatchBuilder::default()
    };
    h.append_as_leader(&Bytes::from(idempotent.build().unwrap()), 0)
        .unwrap();
    let mut w = Written::default();
    for round in 0..10 {
        w.append(
            &h,
            (0..100)
                .map(|k| (key(k), Some(format!("v{round}").into_bytes())))
                .collect(),
        );
    }
    w.append(&h, (0..100).step_by(10).map(|k| (key(k), None)).collect());
    w.append(&h, vec![(b"a".to_vec(), Some(b"second".to_vec()))]);
    {
        let mut log = h.lock();
        log.roll(None).unwrap();
        let leo = log.log_end_offset();
        log.set_high_watermark(leo);
    }
    let cleaner = m.start_cleaner(manual()).unwrap();
    cleaner.clean_filthiest(now_ms()).unwrap().unwrap();
    let ours: Vec<String> = read_all(&h.lock())
        .iter()
        .map(|r| format!("record offset={} ", r.offset))
        .collect();

    let files: Vec<PathBuf> = [&h, &txn]
        .iter()
        .flat_map(|h| {
            h.lock()
                .segments()
                .map(|s| s.log_path().to_path_buf())
                .collect::<Vec<_>>()
        })
        .collect();
    let Some(stdout) = common::kafka_segment_check(tmp.path(), &["--compacted"], &files) else {
        return;
    };
    let batches: Vec<&str> = stdout.lines().filter(|l| l.starts_with("batch ")).collect();
    assert!(batches.iter().all(|b| b.ends_with("valid=true")));
    assert!(
        batches
            .iter()
            .any(|b| b.contains("count=0") && b.contains("producerId=5")),
        "the idempotent producer's emptied batch: {batches:#?}"
    );
    assert!(
        batches.iter().any(|b| !b.contains("deleteHorizon=-1")),
        "tombstone batches carry a delete horizon: {batches:#?}"
    );
    let keyed_records: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("record ") && l.contains(" key=key-"))
        .collect();
    let ours_keyed: Vec<&String> = ours.iter().take(keyed_records.len()).collect();
    assert_eq!(keyed_records.len(), 100, "{stdout}");
    for (theirs, mine) in keyed_records.iter().zip(ours_keyed) {
        assert!(theirs.starts_with(mine.as_str()), "{theirs} vs {mine}");
    }
}

#[test]
fn a_truncation_below_the_cleaned_offset_lowers_the_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let m = open_manager(tmp.path(), compacted());
    let h = handle(&m);
    let mut w = Written::default();
    for round in 0..20 {
        w.append(
            &h,
            (0..100)
                .map(|k| (key(k), Some(format!("v{round}").into_bytes())))
                .collect(),
        );
    }
    {
        let mut log = h.lock();
        log.roll(None).unwrap();
        let leo = log.log_end_offset();
        log.set_high_watermark(leo);
    }
    let cleaner = m.start_cleaner(manual()).unwrap();
    let end = cleaner
        .clean_filthiest(now_ms())
        .unwrap()
        .unwrap()
        .end_offset;
    assert_eq!(end, 2000);
    // A follower truncating to an earlier leader's log end must not keep a cleaned offset past
    // it: the data that will fill the gap was never cleaned.
    h.lock().truncate_to(1500).unwrap();
    assert_eq!(h.lock().cleaner_offset(), Some(1500));
    m.write_checkpoints().unwrap();
    assert_eq!(
        cleaner_checkpoint(tmp.path()),
        format!("0\n1\n{TOPIC} 0 1500\n")
    );
}
