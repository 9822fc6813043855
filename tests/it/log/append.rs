//! Appends as a leader and as a follower: validation, offsets, indexes, rolls, reads.

use crate::common;

use bytes::Bytes;
use common::{client_batch, open_log, read_all};
use odradek::api::errors::KafkaCode;
use odradek::config::LogConfig;
use odradek::log::batch::{self, BatchHeader};
use odradek::log::records::decode_batch;
use odradek::log::{LogError, PartitionLog};

fn tmp_log(config: LogConfig) -> (tempfile::TempDir, PartitionLog) {
    let tmp = tempfile::tempdir().unwrap();
    let log = open_log(&tmp.path().join("t-0"), config, false);
    (tmp, log)
}

#[test]
fn appended_batches_are_stored_as_sent_with_offset_and_epoch_stamped() {
    let (_tmp, mut log) = tmp_log(LogConfig::default());
    let mut sent = Vec::new();
    for codec in 0..=4i16 {
        let b = client_batch(
            codec as usize * 10,
            10,
            50,
            1_700_000_000_000 + codec as i64,
            codec,
        );
        let info = log.append_as_leader(&b, 7).unwrap();
        assert_eq!(info.base_offset, codec as i64 * 10);
        assert_eq!(info.last_offset, codec as i64 * 10 + 9);
        assert_eq!(info.log_append_time, -1);
        sent.push((info.base_offset, b));
    }
    assert_eq!(log.log_end_offset(), 50);
    for (base, b) in &sent {
        let r = log.read(*base, 1, log.log_end_offset(), true).unwrap();
        assert_eq!(r.records.len(), b.len());
        assert_eq!(&r.records[0..8], &base.to_be_bytes(), "base offset stamped");
        assert_eq!(&r.records[8..12], &b[8..12]);
        assert_eq!(
            &r.records[12..16],
            &7i32.to_be_bytes(),
            "leader epoch stamped"
        );
        assert_eq!(&r.records[16..], &b[16..], "everything else byte-identical");
        decode_batch(&r.records).expect("stored batch is valid");
    }
    assert_eq!(log.leader_epochs(), &[(7, 0)]);
    let recs = read_all(&log);
    assert_eq!(recs.len(), 50);
    assert!(
        recs.iter().enumerate().all(|(i, r)| r.offset == i as i64
            && r.key.as_deref() == Some(format!("key-{i}").as_bytes()))
    );
}

#[test]
fn log_append_time_topics_get_the_broker_time_and_a_valid_crc() {
    let config = LogConfig {
        log_append_time: true,
        ..LogConfig::default()
    };
    let (_tmp, mut log) = tmp_log(config);
    let before = odradek::log::segment::now_ms();
    let info = log
        .append_as_leader(&client_batch(0, 5, 10, 1000, 0), 0)
        .unwrap();
    assert!(info.log_append_time >= before);
    let r = log.read(0, 1 << 20, log.log_end_offset(), true).unwrap();
    let (h, recs) = decode_batch(&r.records).expect("CRC recomputed");
    assert!(h.is_log_append_time());
    assert_eq!(h.max_timestamp, info.log_append_time);
    assert!(recs.iter().all(|r| r.timestamp == info.log_append_time));
}

#[test]
fn bad_batches_are_refused_with_kafkas_error_and_nothing_is_written() {
    let config = LogConfig {
        max_message_bytes: 2000,
        ..LogConfig::default()
    };
    let (_tmp, mut log) = tmp_log(config);
    log.append_as_leader(&client_batch(0, 3, 10, 1, 0), 0)
        .unwrap();
    let size_before = log.size_bytes();

    let good = client_batch(0, 3, 10, 1, 0).to_vec();
    let mut bad_crc = good.clone();
    let last = bad_crc.len() - 1;
    bad_crc[last] ^= 0xff;
    let mut count_mismatch = good.clone();
    count_mismatch[57..61].copy_from_slice(&5i32.to_be_bytes());
    let crc = batch::compute_crc(&count_mismatch);
    count_mismatch[17..21].copy_from_slice(&crc.to_be_bytes());
    let two_batches = [good.clone(), good.clone()].concat();
    let mut control = odradek::log::records::BatchBuilder {
        control: true,
        transactional: true,
        producer_id: 1,
        producer_epoch: 0,
        ..Default::default()
    };
    control.records.push(odradek::log::records::NewRecord {
        timestamp: 1,
        key: Some(vec![0, 0, 0, 1]),
        value: Some(vec![0; 6]),
        headers: vec![],
    });
    let mut bad_magic = good.clone();
    bad_magic[16] = 9;

    let cases: Vec<(&str, Vec<u8>, i16)> = vec![
        ("bad crc", bad_crc, 2),
        ("truncated", good[..good.len() - 5].to_vec(), 2),
        ("garbage", vec![0xab; 7], 2),
        ("unknown magic", bad_magic, 2),
        ("count mismatch", count_mismatch, 87),
        ("two batches", two_batches, 87),
        ("control batch from a client", control.build().unwrap(), 87),
        ("too large", client_batch(0, 40, 100, 1, 0).to_vec(), 10),
    ];
    for (what, bytes, code) in cases {
        let err = log
            .append_as_leader(&Bytes::from(bytes), 0)
            .expect_err(what);
        assert_eq!(err.kafka_error_code(), code, "{what}: {err}");
        assert_eq!(log.log_end_offset(), 3, "{what}: nothing appended");
        assert_eq!(log.size_bytes(), size_before, "{what}: nothing written");
    }
    // The log still works.
    assert_eq!(
        log.append_as_leader(&client_batch(3, 2, 10, 1, 0), 0)
            .unwrap()
            .base_offset,
        3
    );
}

/// Kafka 2.4 with the default message format stores magic 2 whatever old clients send.
#[test]
fn legacy_message_sets_are_converted_to_magic_2() {
    use kafka_protocol::records::{
        Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    };
    let (_tmp, mut log) = tmp_log(LogConfig::default());
    let mk = |i: i64| Record {
        transactional: false,
        control: false,
        partition_leader_epoch: -1,
        producer_id: -1,
        producer_epoch: -1,
        timestamp_type: TimestampType::Creation,
        offset: i,
        sequence: -1,
        timestamp: 1_600_000_000_000 + i,
        key: Some(Bytes::from(format!("old-{i}"))),
        value: Some(Bytes::from(format!("legacy value {i}"))),
        headers: Default::default(),
    };
    let records: Vec<Record> = (0..4).map(mk).collect();
    let mut expected_offset = 0;
    for (version, compression) in [
        (0i8, Compression::None),
        (1, Compression::None),
        (1, Compression::Gzip),
        (0, Compression::Snappy),
    ] {
        let mut buf = bytes::BytesMut::new();
        RecordBatchEncoder::encode(
            &mut buf,
            records.iter(),
            &RecordEncodeOptions {
                version,
                compression,
            },
        )
        .unwrap();
        let info = log.append_as_leader(&buf.freeze(), 0).unwrap();
        assert_eq!(
            info.base_offset, expected_offset,
            "v{version} {compression:?}"
        );
        assert_eq!(info.records, 4);
        let r = log
            .read(info.base_offset, 1 << 20, log.log_end_offset(), true)
            .unwrap();
        let (h, recs) = decode_batch(&r.records).unwrap();
        assert_eq!(h.magic, 2);
        assert_eq!(h.compression(), compression as i16, "codec kept");
        for (i, rec) in recs.iter().enumerate() {
            assert_eq!(rec.offset, expected_offset + i as i64);
            assert_eq!(rec.key.as_deref(), Some(format!("old-{i}").as_bytes()));
            assert_eq!(
                rec.value.as_deref(),
                Some(format!("legacy value {i}").as_bytes())
            );
            let want_ts = if version == 0 {
                -1
            } else {
                1_600_000_000_000 + i as i64
            };
            assert_eq!(rec.timestamp, want_ts, "v{version}");
        }
        expected_offset += 4;
    }
    // A legacy message with a bad CRC is CORRUPT_MESSAGE.
    let mut buf = bytes::BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        records.iter(),
        &RecordEncodeOptions {
            version: 1,
            compression: Compression::None,
        },
    )
    .unwrap();
    let mut bad = buf.to_vec();
    let n = bad.len();
    bad[n - 1] ^= 1;
    assert_eq!(
        log.append_as_leader(&Bytes::from(bad), 0)
            .unwrap_err()
            .kafka_error_code(),
        2
    );
}

/// Acceptance 3 of the storage issue: small segments, many of them, every index entry valid.
#[test]
fn five_megabytes_into_16k_segments_index_and_read_correctly() {
    let config = LogConfig {
        segment_bytes: 16 * 1024,
        ..LogConfig::default()
    };
    let (_tmp, mut log) = tmp_log(config);
    let mut total = 0usize;
    let mut batches = Vec::new(); // (base, last, timestamp)
    let mut i = 0usize;
    while total < 5_000_000 {
        let n = 1 + i % 7;
        let ts = 1_000_000 + i as i64 * 10;
        let b = client_batch(i, n, 400 + (i % 5) * 100, ts, 0);
        total += b.len();
        let info = log.append_as_leader(&b, 0).unwrap();
        batches.push((info.base_offset, info.last_offset, ts));
        i += 1;
    }
    assert!(
        log.segment_count() >= 300,
        "{} segments",
        log.segment_count()
    );
    // Every index entry points at the start of the batch it names.
    let mut entries = 0;
    for seg in log.segments() {
        assert!(seg.size() <= 16 * 1024 || seg.size() == 0);
        for n in 0..seg.offset_index.file.len() {
            let (off, pos) = seg.offset_index.entry(n);
            let e = seg
                .entry_at(pos as u64)
                .unwrap()
                .expect("index points at a batch");
            assert_eq!(e.last_offset, off, "index entry ({off}, {pos})");
            entries += 1;
        }
    }
    assert!(entries > 300, "{entries} index entries");
    // Reading any offset returns the batch containing it.
    let leo = log.log_end_offset();
    for off in (0..leo).step_by(97).chain([leo - 1]) {
        let r = log.read(off, 1, leo, true).unwrap();
        let h = BatchHeader::parse(&r.records).unwrap();
        assert!(
            h.base_offset <= off && off <= h.last_offset(),
            "offset {off}: got {}..{}",
            h.base_offset,
            h.last_offset()
        );
        let want = batches.iter().find(|b| b.0 <= off && off <= b.1).unwrap();
        assert_eq!((h.base_offset, h.last_offset()), (want.0, want.1));
    }
    // Reading by timestamp returns the first batch at or after it.
    for b in batches.iter().step_by(53) {
        // Batch timestamps are 10 ms apart, so 5 ms before one falls after the previous batch.
        let (found, ts) = log.offset_for_timestamp(b.2 - 5).unwrap().unwrap();
        assert_eq!((found, ts), (b.0, b.2), "timestamp {}", b.2 - 5);
        assert_eq!(log.offset_for_timestamp(b.2).unwrap().unwrap().0, b.0);
    }
    assert_eq!(
        log.offset_for_timestamp(batches.last().unwrap().2 + 1)
            .unwrap(),
        None
    );
    // And after a clean close and reopen, all of it still holds.
    let dir = log.dir().to_path_buf();
    let segments = log.segment_count();
    log.close().unwrap();
    let log = open_log(
        &dir,
        LogConfig {
            segment_bytes: 16 * 1024,
            ..LogConfig::default()
        },
        true,
    );
    assert_eq!(log.log_end_offset(), leo);
    assert_eq!(log.segment_count(), segments);
    for seg in log.segments().take(segments - 1) {
        let len = std::fs::metadata(seg.offset_index.file.path())
            .unwrap()
            .len();
        assert_eq!(
            len,
            seg.offset_index.file.len() as u64 * 8,
            "closed index trimmed"
        );
    }
    assert_eq!(
        read_all(&log).len(),
        batches
            .iter()
            .map(|b| (b.1 - b.0 + 1) as usize)
            .sum::<usize>()
    );
}

#[test]
fn reads_respect_max_bytes_upper_bound_and_log_range() {
    let (_tmp, mut log) = tmp_log(LogConfig::default());
    let sizes: Vec<usize> = (0..10)
        .map(|i| {
            let b = client_batch(i * 10, 10, 100, 5, 0);
            log.append_as_leader(&b, 0).unwrap();
            b.len()
        })
        .collect();
    // max_bytes smaller than one batch: the first batch whole (min_one), or nothing.
    assert_eq!(log.read(0, 10, 100, true).unwrap().records.len(), sizes[0]);
    assert!(log.read(0, 10, 100, false).unwrap().records.is_empty());
    // Only whole batches within max_bytes.
    let r = log.read(15, sizes[1] + sizes[2] + 3, 100, true).unwrap();
    assert_eq!(r.records.len(), sizes[1] + sizes[2]);
    assert_eq!(r.first_offset, Some(10));
    // Never past the upper bound (the high watermark for consumers).
    let r = log.read(0, 1 << 20, 30, true).unwrap();
    assert_eq!(r.records.len(), sizes[0] + sizes[1] + sizes[2]);
    assert!(log.read(30, 1 << 20, 30, true).unwrap().records.is_empty());
    assert!(
        log.read(100, 1 << 20, 100, true)
            .unwrap()
            .records
            .is_empty(),
        "at the log end: empty"
    );
    assert!(matches!(
        log.read(101, 100, 100, true),
        Err(LogError::OffsetOutOfRange { .. })
    ));
    assert!(matches!(
        log.read(-1, 100, 100, true),
        Err(LogError::OffsetOutOfRange { .. })
    ));
}

#[test]
fn follower_appends_keep_the_leaders_offsets() {
    let (_tmp, mut leader) = tmp_log(LogConfig::default());
    let tmp2 = tempfile::tempdir().unwrap();
    let mut follower = open_log(&tmp2.path().join("t-0"), LogConfig::default(), false);
    for i in 0..5 {
        leader
            .append_as_leader(&client_batch(i * 3, 3, 20, 9, 0), 2 + (i as i32 / 3))
            .unwrap();
    }
    let data = leader
        .read(0, 1 << 20, leader.log_end_offset(), true)
        .unwrap()
        .records;
    let info = follower.append_as_follower(&data).unwrap().unwrap();
    assert_eq!((info.base_offset, info.last_offset), (0, 14));
    let copy = follower.read(0, 1 << 20, 15, true).unwrap().records;
    assert_eq!(copy, data, "replica bytes identical");
    assert_eq!(follower.leader_epochs(), leader.leader_epochs());
    assert_eq!(follower.leader_epochs(), &[(2, 0), (3, 9)]);
    // Data the follower already has is refused.
    assert_eq!(
        follower
            .append_as_follower(&data)
            .unwrap_err()
            .kafka_error_code(),
        87
    );
}

#[test]
fn truncation_removes_whole_batches_and_appends_continue() {
    let (_tmp, mut log) = tmp_log(LogConfig {
        segment_bytes: 1024,
        ..LogConfig::default()
    });
    for i in 0..20 {
        log.append_as_leader(&client_batch(i * 5, 5, 30, 9, 0), i as i32 / 5)
            .unwrap();
    }
    let segments = log.segment_count();
    assert!(segments > 3);
    log.set_high_watermark(100);
    log.truncate_to(52).unwrap();
    assert_eq!(log.log_end_offset(), 50, "the batch holding 52 goes whole");
    assert_eq!(log.high_watermark(), 50);
    assert!(log.segment_count() < segments);
    assert_eq!(
        log.leader_epochs(),
        &[(0, 0), (1, 25)],
        "epoch 2 began at 50, now the log end"
    );
    assert_eq!(
        log.append_as_leader(&client_batch(0, 2, 30, 9, 0), 5)
            .unwrap()
            .base_offset,
        50
    );
    assert_eq!(read_all(&log).len(), 52);
    // Truncating below the first segment empties the log and restarts it there.
    log.truncate_fully_and_start_at(200).unwrap();
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (200, 200));
    assert_eq!(
        log.append_as_leader(&client_batch(0, 1, 3, 9, 0), 6)
            .unwrap()
            .base_offset,
        200
    );
}

#[test]
fn segments_roll_on_segment_ms() {
    let config = LogConfig {
        segment_ms: 1000,
        ..LogConfig::default()
    };
    let (_tmp, mut log) = tmp_log(config);
    log.append_as_leader(&client_batch(0, 1, 3, 10_000, 0), 0)
        .unwrap();
    log.append_as_leader(&client_batch(1, 1, 3, 10_500, 0), 0)
        .unwrap();
    assert_eq!(log.segment_count(), 1);
    log.append_as_leader(&client_batch(2, 1, 3, 11_001, 0), 0)
        .unwrap();
    assert_eq!(
        log.segment_count(),
        2,
        "a batch more than segment.ms after the first rolls"
    );
    assert_eq!(log.segments().last().unwrap().base_offset, 2);
}

/// Kafka's `endOffsetFor`, which OffsetsForLeaderEpoch and the follower fetch's divergence
/// check answer with: the largest epoch at or below the one asked, and where the next starts.
#[test]
fn epoch_end_offsets_follow_the_leader_epoch_cache() {
    let (_tmp, mut log) = tmp_log(LogConfig::default());
    // Epoch 1: offsets 0..6, epoch 3: 6..9; epoch 5 begins (as a new leader) at 9 with no batch.
    for (first, epoch) in [(0, 1), (3, 1), (6, 3)] {
        log.append_as_leader(&client_batch(first, 3, 10, 9, 0), epoch)
            .unwrap();
    }
    log.assign_leader_epoch_start(5).unwrap();
    assert_eq!(log.leader_epochs(), &[(1, 0), (3, 6), (5, 9)]);
    assert_eq!(log.latest_epoch(), Some(5));
    assert_eq!(log.end_offset_for_epoch(1), (1, 6));
    assert_eq!(
        log.end_offset_for_epoch(2),
        (1, 6),
        "unknown epoch: the one below"
    );
    assert_eq!(log.end_offset_for_epoch(3), (3, 9));
    assert_eq!(log.end_offset_for_epoch(5), (5, 9), "latest: the log end");
    assert_eq!(log.end_offset_for_epoch(0), (0, 0), "before any epoch");
    assert_eq!(log.end_offset_for_epoch(6), (-1, -1), "later than any");
    assert_eq!(log.end_offset_for_epoch(-1), (-1, -1));
    // A new leader epoch that starts where an empty one started replaces it.
    log.assign_leader_epoch_start(7).unwrap();
    assert_eq!(log.leader_epochs(), &[(1, 0), (3, 6), (7, 9)]);
    // Reopened, the cache comes back from leader-epoch-checkpoint.
    let dir = log.dir().to_path_buf();
    drop(log);
    let log = open_log(&dir, LogConfig::default(), true);
    assert_eq!(
        log.leader_epochs(),
        &[(1, 0), (3, 6)],
        "an epoch starting at the log end is dropped on load, as Kafka does"
    );
}
