//! Down-conversion of stored record batches (magic 2) to the legacy message sets that Fetch v0-3
//! answers with: magic 0 for v0-1, magic 1 for v2-3 (Kafka's `RecordsUtil.downConvert`, sent
//! through `LazyDownConversionRecords`).
//!
//! As Kafka does: control batches are dropped (old formats have no markers); aborted
//! transactional records are not (old consumers read uncommitted); a compressed batch becomes
//! one wrapper message compressed with the same codec, an uncompressed one a message per record,
//! records below the fetch offset left out; headers, producer ids and sequences are lost; zstd
//! cannot be converted. Kafka's lazy send commits to a size before converting, so the converted
//! bytes are cut or padded (with an "overflow" entry a consumer ignores) to that size; this
//! module produces the same bytes, eagerly.

use bytes::Bytes;

use super::batch::{self, LOG_OVERHEAD, MAGIC_OFFSET};
use super::compression;
use super::error::{LogError, Result};
use super::records::{Record, decode_batch};

/// Kafka's `LazyDownConversionRecordsSend.MAX_READ_SIZE`: the largest overflow entry it writes.
const MAX_OVERFLOW_CHUNK: usize = 128 * 1024;
/// The smallest a magic-2 batch can be: an overflow entry claims at least this length.
const RECORD_BATCH_OVERHEAD: i32 = batch::BATCH_HEADER_LEN as i32;
/// Legacy message attribute: the timestamp is the broker's (magic 1 only).
const LEGACY_LOG_APPEND_TIME: u8 = 0x08;

/// The message format a Fetch version can carry: `None` when it reads batches as stored.
pub fn magic_for_fetch_version(version: i16) -> Option<i8> {
    match version {
        ..=1 => Some(0),
        2..=3 => Some(1),
        _ => None,
    }
}

/// What a down-conversion produced.
#[derive(Debug)]
pub struct Converted {
    pub records: Bytes,
    /// Records rewritten in the old format (Kafka's `FetchMessageConversionsPerSec` counts them).
    pub converted: u64,
}

/// Converts `stored` (whole entries as read from a log, starting at the entry holding
/// `fetch_offset`) to `to_magic`. Fails with `UnsupportedCompression` when the first batch that
/// would be converted is zstd-compressed (Kafka answers UNSUPPORTED_COMPRESSION_TYPE); a later
/// zstd batch ends the converted records there, so the consumer reaches it on its next fetch
/// and gets that error then.
pub fn down_convert(stored: &[u8], to_magic: i8, fetch_offset: i64) -> Result<Converted> {
    let mut out = Vec::with_capacity(stored.len());
    let mut converted = 0u64;
    let mut had_entries = false;
    // Kafka answers at least the size it read, and at least the first converted batch whole.
    let mut first_converted_len = None;
    let mut pos = 0usize;
    while let Some(size) = batch::entry_size(&stored[pos..]) {
        let end = pos as i64 + size;
        if size < LOG_OVERHEAD as i64 + 5 || end > stored.len() as i64 {
            break;
        }
        let entry = &stored[pos..end as usize];
        pos = end as usize;
        had_entries = true;
        let magic = entry[MAGIC_OFFSET] as i8;
        if magic <= to_magic {
            out.extend_from_slice(entry);
            first_converted_len.get_or_insert(out.len());
            continue;
        }
        if magic != 2 {
            // A magic-1 entry asked for as magic 0: odradek's logs hold magic 2 only.
            return Err(LogError::CorruptMessage(format!(
                "cannot down-convert a magic {magic} entry to magic {to_magic}"
            )));
        }
        let header = batch::BatchHeader::parse(entry)?;
        if header.is_control() {
            continue;
        }
        let codec = header.compression();
        if codec == compression::ZSTD {
            if first_converted_len.is_none() {
                return Err(LogError::UnsupportedCompression(codec));
            }
            break;
        }
        let (_, records) = decode_batch(entry)?;
        let kept: Vec<&Record> = records
            .iter()
            .filter(|r| codec != compression::NONE || r.offset >= fetch_offset)
            .collect();
        if kept.is_empty() {
            continue;
        }
        let log_append_time = header.is_log_append_time().then_some(header.max_timestamp);
        write_converted(&mut out, to_magic, codec, log_append_time, &kept)?;
        converted += kept.len() as u64;
        first_converted_len.get_or_insert(out.len());
    }
    let size = match first_converted_len {
        Some(first) => stored.len().max(first),
        // Entries that all converted to nothing: an overflow entry, so that a consumer whose
        // fetch size is too small for the next batch finds out (Kafka's MIN_OVERFLOW_MESSAGE_LENGTH).
        None if had_entries => LOG_OVERHEAD,
        None => 0,
    };
    out.truncate(size);
    while out.len() < size {
        let remaining = size - out.len();
        let chunk = LOG_OVERHEAD.max((remaining + 1).min(MAX_OVERFLOW_CHUNK));
        let mut overflow = vec![0u8; chunk];
        overflow[..8].copy_from_slice(&(-1i64).to_be_bytes());
        let claimed = (remaining as i64 + 1).clamp(RECORD_BATCH_OVERHEAD as i64, i32::MAX as i64);
        overflow[8..12].copy_from_slice(&(claimed as i32).to_be_bytes());
        overflow.truncate(remaining);
        out.extend_from_slice(&overflow);
    }
    Ok(Converted {
        records: Bytes::from(out),
        converted,
    })
}

/// Kafka's `convertRecordBatch`: uncompressed records one message each at their own offsets; a
/// compressed batch one wrapper at the last record's offset, holding the records with offsets
/// relative to the first (magic 1) or absolute (magic 0), compressed with the batch's codec.
fn write_converted(
    out: &mut Vec<u8>,
    magic: i8,
    codec: i16,
    log_append_time: Option<i64>,
    records: &[&Record],
) -> Result<()> {
    let ts_attr = if magic > 0 && log_append_time.is_some() {
        LEGACY_LOG_APPEND_TIME
    } else {
        0
    };
    let timestamp = |r: &Record| log_append_time.unwrap_or(r.timestamp);
    if codec == compression::NONE {
        for r in records {
            put_message(
                out,
                r.offset,
                magic,
                ts_attr,
                timestamp(r),
                r.key.as_deref(),
                r.value.as_deref(),
            );
        }
        return Ok(());
    }
    let (Some(first), Some(last)) = (records.first(), records.last()) else {
        return Ok(());
    };
    let mut inner = Vec::new();
    for r in records {
        let offset = if magic > 0 {
            r.offset - first.offset
        } else {
            r.offset
        };
        put_message(
            &mut inner,
            offset,
            magic,
            ts_attr,
            timestamp(r),
            r.key.as_deref(),
            r.value.as_deref(),
        );
    }
    let compressed = compression::compress(codec, &inner)?;
    let max_timestamp =
        log_append_time.unwrap_or_else(|| records.iter().map(|r| r.timestamp).max().unwrap_or(-1));
    put_message(
        out,
        last.offset,
        magic,
        ts_attr | codec as u8,
        max_timestamp,
        None,
        Some(&compressed),
    );
    Ok(())
}

/// Writes one legacy message: `offset int64 | size int32 | crc uint32 | magic int8 |
/// attributes int8 | timestamp int64 (magic 1) | key bytes | value bytes`, the CRC-32 (IEEE)
/// covering everything after it.
fn put_message(
    out: &mut Vec<u8>,
    offset: i64,
    magic: i8,
    attributes: u8,
    timestamp: i64,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
) {
    let field_len = |f: Option<&[u8]>| 4 + f.map_or(0, <[u8]>::len);
    let size = 4 + 1 + 1 + if magic > 0 { 8 } else { 0 } + field_len(key) + field_len(value);
    out.extend_from_slice(&offset.to_be_bytes());
    out.extend_from_slice(&(size as i32).to_be_bytes());
    let crc_at = out.len();
    out.extend_from_slice(&[0; 4]);
    out.push(magic as u8);
    out.push(attributes);
    if magic > 0 {
        out.extend_from_slice(&timestamp.to_be_bytes());
    }
    for f in [key, value] {
        match f {
            Some(b) => {
                out.extend_from_slice(&(b.len() as i32).to_be_bytes());
                out.extend_from_slice(b);
            }
            None => out.extend_from_slice(&(-1i32).to_be_bytes()),
        }
    }
    let crc = crc32fast::hash(&out[crc_at + 4..]);
    out[crc_at..crc_at + 4].copy_from_slice(&crc.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::batch::ATTR_CONTROL;
    use crate::log::records::{BatchBuilder, NewRecord, decode_legacy};

    fn batch(codec: i16, base_offset: i64, n: i64) -> Vec<u8> {
        BatchBuilder {
            codec,
            base_offset,
            records: (0..n)
                .map(|i| NewRecord {
                    timestamp: 1_000 + i,
                    key: (i % 2 == 0).then(|| format!("k{i}").into_bytes()),
                    value: Some(format!("value-{}", base_offset + i).into_bytes()),
                    headers: vec![(b"h".to_vec(), Some(b"x".to_vec()))],
                })
                .collect(),
            ..BatchBuilder::default()
        }
        .build()
        .unwrap()
    }

    /// (offset, magic, attributes) of each top-level entry, and the overflow tail's length.
    fn outer(set: &[u8]) -> (Vec<(i64, i8, u8)>, usize) {
        let mut pos = 0;
        let mut v = Vec::new();
        while let Some(size) = batch::entry_size(&set[pos..]) {
            let end = pos + size as usize;
            if end > set.len() {
                break;
            }
            let off = i64::from_be_bytes(set[pos..pos + 8].try_into().unwrap());
            v.push((off, set[pos + 16] as i8, set[pos + 17]));
            pos = end;
        }
        (v, set.len() - pos)
    }

    #[test]
    fn uncompressed_batches_become_one_message_per_record_from_the_fetch_offset() {
        let mut stored = batch(0, 10, 4);
        stored.extend(batch(0, 14, 3));
        for magic in [0, 1] {
            let c = down_convert(&stored, magic, 12).unwrap();
            assert_eq!(
                c.converted, 5,
                "offsets 10 and 11 are below the fetch offset"
            );
            let (entries, _) = outer(&c.records);
            let offsets: Vec<i64> = entries.iter().map(|e| e.0).collect();
            assert_eq!(offsets, (12..17).collect::<Vec<_>>());
            assert!(entries.iter().all(|e| e.1 == magic && e.2 == 0));
            let converted_len: usize = c.records.len();
            let (msgs, codec) = decode_legacy(&c.records[..converted_len - outer(&c.records).1])
                .expect("CRCs check out");
            assert_eq!(codec, 0);
            assert_eq!(msgs[0].value.as_deref(), Some(&b"value-12"[..]));
            assert_eq!(msgs[0].key.as_deref(), Some(&b"k2"[..]));
            assert_eq!(msgs[1].key, None);
            let ts: Vec<i64> = msgs.iter().map(|m| m.timestamp).collect();
            if magic == 1 {
                assert_eq!(ts, vec![1002, 1003, 1000, 1001, 1002]);
            } else {
                assert!(ts.iter().all(|t| *t == -1), "magic 0 has no timestamps");
            }
        }
    }

    #[test]
    fn compressed_batches_become_one_wrapper_with_the_same_codec() {
        for codec in 1..=3 {
            let stored = batch(codec, 100, 5);
            let c = down_convert(&stored, 1, 102).unwrap();
            assert_eq!(c.converted, 5, "a wrapper keeps every record");
            let (entries, tail) = outer(&c.records);
            assert_eq!(entries.len(), 1);
            assert_eq!(entries[0].0, 104, "a wrapper sits at its last offset");
            assert_eq!(entries[0].2 & 0x07, codec as u8);
            let (msgs, got) = decode_legacy(&c.records[..c.records.len() - tail]).unwrap();
            assert_eq!(got, codec);
            assert_eq!(msgs.len(), 5);
            assert_eq!(msgs[4].value.as_deref(), Some(&b"value-104"[..]));
            assert_eq!(msgs[4].timestamp, 1004);
        }
    }

    #[test]
    fn control_batches_are_dropped_and_zstd_is_refused() {
        let mut control = batch(0, 5, 1);
        let attrs = i16::from_be_bytes([control[21], control[22]]) | ATTR_CONTROL;
        control[21..23].copy_from_slice(&attrs.to_be_bytes());
        let crc = batch::compute_crc(&control);
        control[17..21].copy_from_slice(&crc.to_be_bytes());
        let only_control = down_convert(&control, 1, 5).unwrap();
        assert_eq!(only_control.converted, 0);
        assert_eq!(
            only_control.records.len(),
            LOG_OVERHEAD,
            "nothing convertible: just an overflow entry"
        );
        assert_eq!(
            &only_control.records[..8],
            &(-1i64).to_be_bytes(),
            "the overflow entry has offset -1"
        );

        let mut stored = control.clone();
        stored.extend(batch(0, 6, 2));
        let c = down_convert(&stored, 1, 5).unwrap();
        let (entries, _) = outer(&c.records);
        assert_eq!(entries.iter().map(|e| e.0).collect::<Vec<_>>(), vec![6, 7]);

        assert!(matches!(
            down_convert(&batch(4, 0, 2), 1, 0),
            Err(LogError::UnsupportedCompression(4))
        ));
        let mut mixed = batch(0, 0, 2);
        mixed.extend(batch(4, 2, 2));
        let c = down_convert(&mixed, 1, 0).unwrap();
        assert_eq!(c.converted, 2, "records up to the zstd batch are served");
        assert!(down_convert(&[], 1, 0).unwrap().records.is_empty());
    }

    #[test]
    fn the_answer_is_at_least_the_stored_size_and_the_first_batch_whole() {
        // Small records grow in magic 1: the answer is cut at the stored size, but never
        // inside the first converted batch.
        let stored = batch(0, 0, 50);
        let c = down_convert(&stored, 1, 0).unwrap();
        let full = {
            let mut v = Vec::new();
            let (_, recs) = decode_batch(&stored).unwrap();
            write_converted(&mut v, 1, 0, None, &recs.iter().collect::<Vec<_>>()).unwrap();
            v.len()
        };
        assert!(full > stored.len());
        assert_eq!(c.records.len(), full, "the first batch whole");

        let mut two = batch(0, 0, 50);
        two.extend(batch(0, 50, 50));
        let c = down_convert(&two, 1, 0).unwrap();
        assert_eq!(c.records.len(), two.len().max(full));
        // Big records shrink: padded up to the stored size with an overflow entry.
        let big = BatchBuilder {
            codec: 0,
            records: vec![NewRecord {
                timestamp: 1,
                key: None,
                value: Some(vec![7; 1000]),
                headers: (0..20)
                    .map(|i| (vec![b'h'; 30], Some(vec![i; 30])))
                    .collect(),
            }],
            ..BatchBuilder::default()
        }
        .build()
        .unwrap();
        let c = down_convert(&big, 0, 0).unwrap();
        assert_eq!(c.records.len(), big.len());
        let (entries, tail) = outer(&c.records);
        assert_eq!(entries.len(), 1);
        assert!(tail > 0);
    }
}
