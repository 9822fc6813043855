//! The checks and conversions a leader applies to a producer's batch that need its records, not
//! just its header (Kafka's `LogValidator`): CreateTime timestamps within the topic's bounds,
//! and recompression when the topic's `compression.type` names a codec other than the
//! producer's. Neither applies with a topic's default settings, and then the records are not
//! decoded at all.

use super::batch::BatchHeader;
use super::compression;
use super::error::{LogError, Result};
use super::records::{self, BatchBuilder, NewRecord};
use crate::config::{LogConfig, TopicCompression};

/// Records carry no timestamp (`RecordBatch.NO_TIMESTAMP`).
const NO_TIMESTAMP: i64 = -1;

/// Returns the batch to store in place of `batch` when its records must be rewritten, `None`
/// when the producer's bytes are stored as they are. `header` is `batch`'s validated header.
pub fn validate_records(
    batch: &[u8],
    header: &BatchHeader,
    config: &LogConfig,
    now: i64,
) -> Result<Option<Vec<u8>>> {
    if header.is_log_append_time() && config.log_append_time {
        return Err(LogError::InvalidTimestamp(
            "Producer should not set timestamp type to LogAppendTime.".into(),
        ));
    }
    let target = match config.compression {
        TopicCompression::Producer => header.compression(),
        TopicCompression::Codec(codec) => codec,
    };
    let before = config.timestamp_before_max_ms();
    let after = config.timestamp_after_max_ms();
    let check_timestamps = !config.log_append_time && (before != i64::MAX || after != i64::MAX);
    if target == header.compression() && !check_timestamps {
        return Ok(None);
    }
    let (_, recs) = records::decode_batch(batch)?;
    if check_timestamps {
        for r in recs.iter().filter(|r| r.timestamp != NO_TIMESTAMP) {
            // i128: a hostile timestamp near i64::MIN must not overflow the difference.
            let age = now as i128 - r.timestamp as i128;
            if age > before as i128 || -age > after as i128 {
                return Err(LogError::InvalidTimestamp(format!(
                    "Timestamp {} of message with offset {} is out of range. The timestamp should be within [{}, {}]",
                    r.timestamp,
                    r.offset,
                    now.saturating_sub(before),
                    now.saturating_add(after)
                )));
            }
        }
    }
    if target == header.compression() {
        return Ok(None);
    }
    let level = match target {
        compression::GZIP => Some(config.gzip_level),
        compression::LZ4 => Some(config.lz4_level),
        compression::ZSTD => Some(config.zstd_level),
        _ => None,
    };
    // Kafka rebuilds the batch keeping the producer's identity, sequence and transactional
    // flag and every record's timestamp, key, value and headers; offsets are assigned on append.
    let rebuilt = BatchBuilder {
        codec: target,
        compression_level: level,
        producer_id: header.producer_id,
        producer_epoch: header.producer_epoch,
        base_sequence: header.base_sequence,
        transactional: header.is_transactional(),
        records: recs
            .into_iter()
            .map(|r| NewRecord {
                timestamp: r.timestamp,
                key: r.key.map(|b| b.to_vec()),
                value: r.value.map(|b| b.to_vec()),
                headers: r
                    .headers
                    .into_iter()
                    .map(|(k, v)| (k.to_vec(), v.map(|b| b.to_vec())))
                    .collect(),
            })
            .collect(),
        ..BatchBuilder::default()
    }
    .build()?;
    Ok(Some(rebuilt))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::batch;

    fn batch_of(codec: i16, timestamps: &[i64]) -> Vec<u8> {
        BatchBuilder {
            codec,
            producer_id: 7,
            producer_epoch: 1,
            base_sequence: 10,
            records: timestamps
                .iter()
                .enumerate()
                .map(|(i, &ts)| NewRecord {
                    timestamp: ts,
                    key: Some(format!("k{i}").into_bytes()),
                    value: Some(vec![b'x'; 200]),
                    headers: vec![(b"h".to_vec(), Some(b"v".to_vec()))],
                })
                .collect(),
            ..BatchBuilder::default()
        }
        .build()
        .unwrap()
    }

    #[test]
    fn defaults_leave_the_batch_alone() {
        let b = batch_of(compression::SNAPPY, &[1, 2]);
        let h = batch::validate_stored(&b).unwrap();
        assert_eq!(
            validate_records(&b, &h, &LogConfig::default(), 5).unwrap(),
            None
        );
    }

    #[test]
    fn a_topic_codec_recompresses_keeping_records_and_producer_identity() {
        let b = batch_of(compression::NONE, &[1000, 1001, 999]);
        let h = batch::validate_stored(&b).unwrap();
        for codec in [
            compression::GZIP,
            compression::SNAPPY,
            compression::LZ4,
            compression::ZSTD,
        ] {
            let config = LogConfig {
                compression: TopicCompression::Codec(codec),
                ..LogConfig::default()
            };
            let out = validate_records(&b, &h, &config, 0)
                .unwrap()
                .expect("rebuilt");
            let (nh, recs) = records::decode_batch(&out).unwrap();
            assert_eq!(nh.compression(), codec);
            assert!(out.len() < b.len(), "{codec} compresses");
            assert_eq!(
                (nh.producer_id, nh.producer_epoch, nh.base_sequence),
                (7, 1, 10)
            );
            assert_eq!(nh.max_timestamp, 1001);
            let (_, orig) = records::decode_batch(&b).unwrap();
            assert_eq!(recs, orig);
        }
        let gz = batch_of(compression::GZIP, &[5]);
        let gh = batch::validate_stored(&gz).unwrap();
        let plain = LogConfig {
            compression: TopicCompression::Codec(compression::NONE),
            ..LogConfig::default()
        };
        let out = validate_records(&gz, &gh, &plain, 0).unwrap().unwrap();
        assert_eq!(
            batch::validate_stored(&out).unwrap().compression(),
            compression::NONE
        );
    }

    #[test]
    fn create_time_bounds_refuse_records_too_old_or_too_new() {
        let now = 1_000_000;
        let config = LogConfig {
            timestamp_before_max_ms: 1000,
            timestamp_difference_max_ms: 500,
            ..LogConfig::default()
        };
        let ok = batch_of(compression::LZ4, &[now - 1000, now + 500, NO_TIMESTAMP]);
        let h = batch::validate_stored(&ok).unwrap();
        assert_eq!(validate_records(&ok, &h, &config, now).unwrap(), None);
        for ts in [now - 1001, now + 501, i64::MIN] {
            let bad = batch_of(compression::LZ4, &[now, ts]);
            let h = batch::validate_stored(&bad).unwrap();
            let err = validate_records(&bad, &h, &config, now).unwrap_err();
            assert!(matches!(err, LogError::InvalidTimestamp(_)), "{ts}: {err}");
        }
        let append_time = LogConfig {
            log_append_time: true,
            ..config
        };
        let old = batch_of(compression::NONE, &[0]);
        let h = batch::validate_stored(&old).unwrap();
        assert_eq!(
            validate_records(&old, &h, &append_time, now).unwrap(),
            None,
            "LogAppendTime ignores them"
        );
    }
}
