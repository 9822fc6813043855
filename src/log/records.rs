//! Decoding and building the records inside batches. The broker's hot paths never come here:
//! only tools, legacy up-conversion, and checks that Kafka requires decompression for.

use bytes::Bytes;

use super::batch::{
    self, ATTR_CONTROL, ATTR_DELETE_HORIZON, ATTR_LOG_APPEND_TIME, ATTR_TRANSACTIONAL,
    BATCH_HEADER_LEN, BatchHeader, LOG_OVERHEAD, put_varint, read_varint, read_varlong,
};
use super::compression;
use super::error::{LogError, Result};

/// Upper bound on what one batch may decompress to; Kafka has no such knob, but a broker must not
/// let a 1 KiB zstd bomb allocate gigabytes.
pub const MAX_DECOMPRESSED_BATCH: usize = 256 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub offset: i64,
    pub timestamp: i64,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    /// Kafka allows a header key to repeat, so this is a list, not a map.
    pub headers: Vec<(Bytes, Option<Bytes>)>,
}

/// Decodes every record of one stored magic-2 batch (CRC checked), decompressing if needed.
pub fn decode_batch(batch: &[u8]) -> Result<(BatchHeader, Vec<Record>)> {
    let header = batch::validate_stored(batch)?;
    let body = &batch[BATCH_HEADER_LEN..];
    let plain;
    let body = if header.compression() == compression::NONE {
        body
    } else {
        plain = compression::decompress(header.compression(), body, MAX_DECOMPRESSED_BATCH)?;
        &plain[..]
    };
    let records = decode_records(body, &header)?;
    Ok((header, records))
}

fn decode_records(body: &[u8], header: &BatchHeader) -> Result<Vec<Record>> {
    let bad = |what: &str| LogError::InvalidRecord(format!("record {what}"));
    let mut records = Vec::with_capacity(header.records_count.clamp(0, 100_000) as usize);
    let mut pos = 0usize;
    let body_bytes = Bytes::copy_from_slice(body);
    let take_bytes = |pos: &mut usize, len: i32| -> Result<Option<Bytes>> {
        if len < 0 {
            return Ok(None);
        }
        let end = *pos + len as usize;
        if end > body_bytes.len() {
            return Err(bad("field overruns the batch"));
        }
        let b = body_bytes.slice(*pos..end);
        *pos = end;
        Ok(Some(b))
    };
    for _ in 0..header.records_count {
        let (len, n) = read_varint(&body[pos.min(body.len())..]).ok_or_else(|| bad("length"))?;
        pos += n;
        let end = pos + len.max(0) as usize;
        if len < 1 || end > body.len() {
            return Err(bad("length overruns the batch"));
        }
        pos += 1; // attributes, unused
        let (ts_delta, n) = read_varlong(&body[pos..end]).ok_or_else(|| bad("timestamp"))?;
        pos += n;
        let (off_delta, n) = read_varint(&body[pos..end]).ok_or_else(|| bad("offset delta"))?;
        pos += n;
        let (klen, n) = read_varint(&body[pos..end]).ok_or_else(|| bad("key length"))?;
        pos += n;
        let key = take_bytes(&mut pos, klen)?;
        let (vlen, n) = read_varint(&body[pos.min(end)..end]).ok_or_else(|| bad("value length"))?;
        pos += n;
        let value = take_bytes(&mut pos, vlen)?;
        let (hcount, n) =
            read_varint(&body[pos.min(end)..end]).ok_or_else(|| bad("header count"))?;
        pos += n;
        if hcount < 0 {
            return Err(bad("negative header count"));
        }
        let mut headers = Vec::new();
        for _ in 0..hcount {
            let (hk, n) = read_varint(&body[pos.min(end)..end]).ok_or_else(|| bad("header key"))?;
            pos += n;
            let hkey = take_bytes(&mut pos, hk)?.ok_or_else(|| bad("null header key"))?;
            let (hv, n) =
                read_varint(&body[pos.min(end)..end]).ok_or_else(|| bad("header value"))?;
            pos += n;
            headers.push((hkey, take_bytes(&mut pos, hv)?));
        }
        if pos != end {
            return Err(bad("length does not match its fields"));
        }
        records.push(Record {
            offset: header.base_offset + off_delta as i64,
            timestamp: if header.is_log_append_time() {
                header.max_timestamp
            } else {
                header.base_timestamp.wrapping_add(ts_delta)
            },
            key,
            value,
            headers,
        });
    }
    if pos != body.len() {
        return Err(bad("bytes follow the last record"));
    }
    Ok(records)
}

/// Whether any record of a magic-2 batch has a null key: a compacted topic refuses such a batch
/// (Kafka's `LogValidator.validateKey`). Decompresses when it must; reads only the framing.
pub fn has_keyless_record(batch: &[u8], header: &BatchHeader) -> Result<bool> {
    let body = batch.get(BATCH_HEADER_LEN..).unwrap_or(&[]);
    let plain;
    let body = if header.compression() == compression::NONE {
        body
    } else {
        plain = compression::decompress(header.compression(), body, MAX_DECOMPRESSED_BATCH)?;
        &plain[..]
    };
    let bad = |what: &str| LogError::InvalidRecord(format!("record {what}"));
    let mut pos = 0usize;
    for _ in 0..header.records_count {
        let (len, n) = read_varint(&body[pos.min(body.len())..]).ok_or_else(|| bad("length"))?;
        pos += n;
        let end = pos + len.max(0) as usize;
        if len < 1 || end > body.len() {
            return Err(bad("length overruns the batch"));
        }
        let rec = &body[pos + 1..end];
        let (_, n1) = read_varlong(rec).ok_or_else(|| bad("timestamp"))?;
        let (_, n2) = read_varint(&rec[n1..]).ok_or_else(|| bad("offset delta"))?;
        let (klen, _) = read_varint(&rec[n1 + n2..]).ok_or_else(|| bad("key length"))?;
        if klen < 0 {
            return Ok(true);
        }
        pos = end;
    }
    Ok(false)
}

/// Writes the records a log cleaner keeps of `original` as a new batch the way Kafka's
/// `MemoryRecords.filterTo` does: same base offset and last offset delta (so the producer's last
/// sequence survives), each record at its own offset, same producer fields, codec, timestamp
/// type and leader epoch. With `delete_horizon` the batch carries the delete-horizon flag and
/// the horizon as its base timestamp.
pub fn build_cleaned_batch(
    original: &BatchHeader,
    records: &[Record],
    delete_horizon: Option<i64>,
) -> Result<Vec<u8>> {
    let base_ts = match (delete_horizon, records.first()) {
        (Some(h), _) => h,
        (None, Some(r)) => r.timestamp,
        (None, None) => -1,
    };
    let max_ts = if original.is_log_append_time() {
        original.max_timestamp
    } else {
        records.iter().map(|r| r.timestamp).max().unwrap_or(-1)
    };
    let mut body = Vec::new();
    for r in records {
        put_record(
            &mut body,
            r.timestamp - base_ts,
            r.offset - original.base_offset,
            r.key.as_deref(),
            r.value.as_deref(),
            r.headers.iter().map(|(k, v)| (&k[..], v.as_deref())),
        );
    }
    let body = compression::compress(original.compression(), &body)?;
    let mut attrs = original.attributes & !ATTR_DELETE_HORIZON;
    if delete_horizon.is_some() {
        attrs |= ATTR_DELETE_HORIZON;
    }
    Ok(write_batch(
        original,
        attrs,
        base_ts,
        max_ts,
        records.len() as i32,
        &body,
    ))
}

/// A batch without records that keeps `original`'s offsets and producer fields: what the cleaner
/// leaves when a producer's last batch lost all its records, so its sequence and epoch survive
/// (Kafka's `DefaultRecordBatch.writeEmptyHeader`).
pub fn empty_batch(original: &BatchHeader) -> Vec<u8> {
    let attrs = original.attributes & (ATTR_LOG_APPEND_TIME | ATTR_TRANSACTIONAL | ATTR_CONTROL);
    write_batch(original, attrs, -1, original.max_timestamp, 0, &[])
}

fn write_batch(
    original: &BatchHeader,
    attrs: i16,
    base_ts: i64,
    max_ts: i64,
    count: i32,
    body: &[u8],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(BATCH_HEADER_LEN + body.len());
    out.resize(BATCH_HEADER_LEN, 0);
    out.extend_from_slice(body);
    finish_batch(&mut out, original, attrs, base_ts, max_ts, count);
    out
}

/// Fills the header of `out`, whose first `BATCH_HEADER_LEN` bytes were reserved for it and
/// whose records follow, then its CRC: the records are written once, in place.
fn finish_batch(
    out: &mut [u8],
    original: &BatchHeader,
    attrs: i16,
    base_ts: i64,
    max_ts: i64,
    count: i32,
) {
    let length = (out.len() - LOG_OVERHEAD) as i32;
    let mut at = 0;
    let mut put = |bytes: &[u8]| {
        out[at..at + bytes.len()].copy_from_slice(bytes);
        at += bytes.len();
    };
    put(&original.base_offset.to_be_bytes());
    put(&length.to_be_bytes());
    put(&original.partition_leader_epoch.to_be_bytes());
    put(&[2]);
    put(&[0; 4]);
    put(&attrs.to_be_bytes());
    put(&original.last_offset_delta.to_be_bytes());
    put(&base_ts.to_be_bytes());
    put(&max_ts.to_be_bytes());
    put(&original.producer_id.to_be_bytes());
    put(&original.producer_epoch.to_be_bytes());
    put(&original.base_sequence.to_be_bytes());
    put(&count.to_be_bytes());
    debug_assert_eq!(at, BATCH_HEADER_LEN);
    let crc = batch::compute_crc(out);
    out[17..21].copy_from_slice(&crc.to_be_bytes());
}

/// A record to be written by [`BatchBuilder`].
#[derive(Debug, Clone, Default)]
pub struct NewRecord {
    pub timestamp: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(Vec<u8>, Option<Vec<u8>>)>,
}

/// Builds a magic-2 batch the way a client does: used by the bundled tools, by legacy
/// up-conversion, and by tests that need batches a real client would send.
#[derive(Debug, Clone)]
pub struct BatchBuilder {
    pub base_offset: i64,
    pub partition_leader_epoch: i32,
    pub codec: i16,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub transactional: bool,
    pub control: bool,
    /// The codec's level (`compression.<codec>.level`); `None` is the library default.
    pub compression_level: Option<i32>,
    pub records: Vec<NewRecord>,
}

impl Default for BatchBuilder {
    fn default() -> Self {
        BatchBuilder {
            base_offset: 0,
            partition_leader_epoch: -1,
            codec: compression::NONE,
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
            transactional: false,
            control: false,
            compression_level: None,
            records: Vec::new(),
        }
    }
}

impl BatchBuilder {
    pub fn build(&self) -> Result<Vec<u8>> {
        let base_ts = self.records.first().map_or(-1, |r| r.timestamp);
        let max_ts = self.records.iter().map(|r| r.timestamp).max().unwrap_or(-1);
        let mut attrs = self.codec;
        if self.transactional {
            attrs |= ATTR_TRANSACTIONAL;
        }
        if self.control {
            attrs |= ATTR_CONTROL;
        }
        let header = BatchHeader {
            base_offset: self.base_offset,
            batch_length: 0,
            partition_leader_epoch: self.partition_leader_epoch,
            magic: 2,
            crc: 0,
            attributes: attrs,
            last_offset_delta: (self.records.len() as i32 - 1).max(0),
            base_timestamp: base_ts,
            max_timestamp: max_ts,
            producer_id: self.producer_id,
            producer_epoch: self.producer_epoch,
            base_sequence: self.base_sequence,
            records_count: self.records.len() as i32,
        };
        // Uncompressed records go straight after a reserved header, so each value is copied
        // once (the perf producer's cost per byte is mostly here).
        let plain = self.codec == compression::NONE;
        let reserved = if plain { BATCH_HEADER_LEN } else { 0 };
        let sizes = self.records.iter().map(|r| {
            r.key.as_ref().map_or(0, Vec::len) + r.value.as_ref().map_or(0, Vec::len) + 24
        });
        let mut out = Vec::with_capacity(reserved + sizes.sum::<usize>());
        out.resize(reserved, 0);
        for (i, r) in self.records.iter().enumerate() {
            put_record(
                &mut out,
                r.timestamp.wrapping_sub(base_ts),
                i as i64,
                r.key.as_deref(),
                r.value.as_deref(),
                r.headers.iter().map(|(k, v)| (&k[..], v.as_deref())),
            );
        }
        if plain {
            finish_batch(
                &mut out,
                &header,
                attrs,
                base_ts,
                max_ts,
                header.records_count,
            );
            return Ok(out);
        }
        let body = compression::compress_at_level(self.codec, &out, self.compression_level)?;
        Ok(write_batch(
            &header,
            attrs,
            base_ts,
            max_ts,
            header.records_count,
            &body,
        ))
    }
}

/// Appends one v2 record (length-prefixed) to `body`, its length computed first so that the
/// record is written in place.
fn put_record<'a>(
    body: &mut Vec<u8>,
    timestamp_delta: i64,
    offset_delta: i64,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
    headers: impl ExactSizeIterator<Item = (&'a [u8], Option<&'a [u8]>)> + Clone,
) {
    let opt_len =
        |b: Option<&[u8]>| b.map_or(varint_len(-1), |b| varint_len(b.len() as i64) + b.len());
    let len = 1
        + varint_len(timestamp_delta)
        + varint_len(offset_delta)
        + opt_len(key)
        + opt_len(value)
        + varint_len(headers.len() as i64)
        + headers
            .clone()
            .map(|(k, v)| opt_len(Some(k)) + opt_len(v))
            .sum::<usize>();
    put_varint(body, len as i64);
    body.push(0);
    put_varint(body, timestamp_delta);
    put_varint(body, offset_delta);
    put_opt_bytes(body, key);
    put_opt_bytes(body, value);
    put_varint(body, headers.len() as i64);
    for (k, v) in headers {
        put_opt_bytes(body, Some(k));
        put_opt_bytes(body, v);
    }
}

/// The bytes [`put_varint`] writes for `v`.
fn varint_len(v: i64) -> usize {
    let raw = ((v << 1) ^ (v >> 63)) as u64;
    (64 - (raw | 1).leading_zeros() as usize).div_ceil(7)
}

fn put_opt_bytes(out: &mut Vec<u8>, b: Option<&[u8]>) {
    match b {
        None => put_varint(out, -1),
        Some(b) => {
            put_varint(out, b.len() as i64);
            out.extend_from_slice(b);
        }
    }
}

/// One message of a legacy (magic 0 or 1) message set, inner messages of compressed wrappers
/// already unpacked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacyMessage {
    pub magic: i8,
    pub codec: i16,
    pub timestamp: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
}

/// Parses a magic 0/1 message set, checking each message's CRC-32 (IEEE). Returns the messages
/// in order and the codec of the (first) compressed wrapper, if any.
pub fn decode_legacy(set: &[u8]) -> Result<(Vec<LegacyMessage>, i16)> {
    let mut out = Vec::new();
    let mut codec = compression::NONE;
    decode_legacy_into(set, &mut out, &mut codec, 0)?;
    Ok((out, codec))
}

fn decode_legacy_into(
    set: &[u8],
    out: &mut Vec<LegacyMessage>,
    codec_seen: &mut i16,
    depth: u8,
) -> Result<()> {
    let corrupt = |m: &str| LogError::CorruptMessage(format!("legacy message: {m}"));
    let mut pos = 0;
    while pos < set.len() {
        let size = batch::entry_size(&set[pos..]).ok_or_else(|| corrupt("truncated entry"))?;
        let end = pos as i64 + size;
        if size < (LOG_OVERHEAD + 14) as i64 || end > set.len() as i64 {
            return Err(corrupt("size out of range"));
        }
        let msg = &set[pos + LOG_OVERHEAD..end as usize];
        let crc = u32::from_be_bytes([msg[0], msg[1], msg[2], msg[3]]);
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(&msg[4..]);
        if hasher.finalize() != crc {
            return Err(LogError::CorruptMessage(
                "legacy message CRC mismatch".into(),
            ));
        }
        let magic = msg[4] as i8;
        let codec = (msg[5] & 0x07) as i16;
        let mut p = 6;
        let timestamp = match magic {
            0 => -1,
            1 => {
                let ts = msg
                    .get(p..p + 8)
                    .ok_or_else(|| corrupt("truncated timestamp"))?;
                p += 8;
                i64::from_be_bytes(ts.try_into().unwrap_or([0; 8]))
            }
            m => return Err(corrupt(&format!("magic {m}"))),
        };
        let field = |p: &mut usize| -> Result<Option<Vec<u8>>> {
            let len_b = msg
                .get(*p..*p + 4)
                .ok_or_else(|| corrupt("truncated length"))?;
            *p += 4;
            let len = i32::from_be_bytes(len_b.try_into().unwrap_or([0; 4]));
            if len < 0 {
                return Ok(None);
            }
            let v = msg
                .get(*p..*p + len as usize)
                .ok_or_else(|| corrupt("field overruns message"))?;
            *p += len as usize;
            Ok(Some(v.to_vec()))
        };
        let key = field(&mut p)?;
        let value = field(&mut p)?;
        if codec == compression::NONE {
            out.push(LegacyMessage {
                magic,
                codec,
                timestamp,
                key,
                value,
            });
        } else {
            if depth > 0 {
                return Err(corrupt("nested compressed wrapper"));
            }
            if codec == compression::ZSTD {
                return Err(LogError::UnsupportedCompression(codec));
            }
            *codec_seen = codec;
            let inner = value.ok_or_else(|| corrupt("compressed wrapper without a value"))?;
            let inner = compression::decompress(codec, &inner, MAX_DECOMPRESSED_BATCH)?;
            decode_legacy_into(&inner, out, codec_seen, depth + 1)?;
        }
        pos = end as usize;
    }
    Ok(())
}

/// Converts a legacy message set to one magic-2 batch with the same codec, as Kafka 2.4 does on
/// append with the default `log.message.format.version`. Offsets are assigned later, on append.
pub fn upconvert_legacy(set: &[u8]) -> Result<Vec<u8>> {
    let (messages, codec) = decode_legacy(set)?;
    if messages.is_empty() {
        return Err(LogError::InvalidRecord("empty legacy message set".into()));
    }
    let builder = BatchBuilder {
        codec,
        records: messages
            .into_iter()
            .map(|m| NewRecord {
                timestamp: m.timestamp,
                key: m.key,
                value: m.value,
                headers: Vec::new(),
            })
            .collect(),
        ..BatchBuilder::default()
    };
    builder.build()
}

/// Writes a magic-2 batch record by record straight into one buffer, for producers that make
/// many records per batch (the perf tool): no record objects, the header and CRC written once
/// at the end. Its records carry no headers, as the perf tool's do; [`BatchBuilder`] covers
/// everything else.
#[derive(Debug)]
pub struct BatchWriter {
    buf: Vec<u8>,
    codec: i16,
    base_timestamp: i64,
    max_timestamp: i64,
    count: i32,
}

impl BatchWriter {
    /// An empty batch whose buffer is sized for `capacity` bytes of records.
    pub fn new(codec: i16, capacity: usize) -> BatchWriter {
        let mut buf = Vec::with_capacity(BATCH_HEADER_LEN + capacity + capacity / 8);
        // The header is filled in by `finish`, once the records are known.
        buf.resize(BATCH_HEADER_LEN, 0);
        BatchWriter {
            buf,
            codec,
            base_timestamp: -1,
            max_timestamp: -1,
            count: 0,
        }
    }

    pub fn records(&self) -> i32 {
        self.count
    }

    /// Appends a header-less record with the next offset delta.
    pub fn append(&mut self, timestamp: i64, key: Option<&[u8]>, value: Option<&[u8]>) {
        if self.count == 0 {
            self.base_timestamp = timestamp;
        }
        self.max_timestamp = self.max_timestamp.max(timestamp);
        let ts_delta = timestamp.wrapping_sub(self.base_timestamp);
        put_record(
            &mut self.buf,
            ts_delta,
            self.count as i64,
            key,
            value,
            std::iter::empty(),
        );
        self.count += 1;
    }

    /// The finished batch: records compressed with the codec (if any), header and CRC written.
    pub fn finish(mut self) -> Result<Vec<u8>> {
        if self.codec != compression::NONE {
            let body = compression::compress(self.codec, &self.buf[BATCH_HEADER_LEN..])?;
            self.buf.truncate(BATCH_HEADER_LEN);
            self.buf.extend_from_slice(&body);
        }
        let header = BatchHeader {
            base_offset: 0,
            batch_length: 0,
            partition_leader_epoch: -1,
            magic: 2,
            crc: 0,
            attributes: self.codec,
            last_offset_delta: (self.count - 1).max(0),
            base_timestamp: self.base_timestamp,
            max_timestamp: self.max_timestamp,
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
            records_count: self.count,
        };
        finish_batch(
            &mut self.buf,
            &header,
            self.codec,
            self.base_timestamp,
            self.max_timestamp,
            self.count,
        );
        Ok(self.buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(codec: i16) -> BatchBuilder {
        BatchBuilder {
            codec,
            base_offset: 42,
            records: (0..5)
                .map(|i| NewRecord {
                    timestamp: 1000 + i,
                    key: if i == 2 {
                        None
                    } else {
                        Some(format!("k{i}").into_bytes())
                    },
                    value: if i == 3 {
                        None
                    } else {
                        Some(vec![b'v'; i as usize * 10])
                    },
                    headers: vec![(b"h".to_vec(), Some(b"1".to_vec())), (b"h".to_vec(), None)],
                })
                .collect(),
            ..BatchBuilder::default()
        }
    }

    #[test]
    fn varint_len_is_what_put_varint_writes() {
        for v in [
            0i64,
            1,
            -1,
            63,
            -64,
            64,
            -65,
            8191,
            8192,
            i32::MAX as i64,
            i64::MAX,
            i64::MIN,
        ] {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            assert_eq!(varint_len(v), out.len(), "value {v}");
        }
    }

    /// What the builder writes in place is a batch the broker's own checks accept: its CRC
    /// and every record's framing.
    #[test]
    fn uncompressed_built_batches_pass_the_leader_checks() {
        let mut b = sample(0);
        b.records[4].value = Some(vec![b'x'; 300]); // a two-byte length varint
        let bytes = b.build().unwrap();
        let h = batch::validate_stored(&bytes).unwrap();
        batch::validate_uncompressed_records(&bytes, &h).unwrap();
        assert_eq!(
            decode_batch(&bytes).unwrap().1[4].value.as_deref(),
            Some(&[b'x'; 300][..])
        );
    }

    #[test]
    fn built_batches_decode_back_for_every_codec() {
        for codec in 0..=4 {
            let b = sample(codec);
            let bytes = b.build().unwrap();
            let (h, recs) = decode_batch(&bytes).unwrap();
            assert_eq!(h.compression(), codec);
            assert_eq!(h.records_count, 5);
            assert_eq!(h.last_offset(), 46);
            assert_eq!(h.max_timestamp, 1004);
            for (i, r) in recs.iter().enumerate() {
                let want = &b.records[i];
                assert_eq!(r.offset, 42 + i as i64);
                assert_eq!(r.timestamp, want.timestamp);
                assert_eq!(r.key.as_deref(), want.key.as_deref());
                assert_eq!(r.value.as_deref(), want.value.as_deref());
                assert_eq!(r.headers.len(), 2, "repeated header keys are kept");
            }
        }
    }

    #[test]
    fn cleaned_batches_keep_offsets_producer_fields_and_carry_the_horizon() {
        for codec in 0..=4 {
            let mut b = sample(codec);
            b.producer_id = 7;
            b.producer_epoch = 3;
            b.base_sequence = 100;
            let bytes = b.build().unwrap();
            let (h, recs) = decode_batch(&bytes).unwrap();
            // Keep records 1 and 3 (offsets 43 and 45); the batch still ends at offset 46.
            let kept = vec![recs[1].clone(), recs[3].clone()];
            let out = build_cleaned_batch(&h, &kept, Some(9_999)).unwrap();
            let (h2, recs2) = decode_batch(&out).unwrap();
            assert_eq!(h2.base_offset, 42);
            assert_eq!(h2.last_offset(), 46, "last offset delta kept");
            assert_eq!(h2.records_count, 2);
            assert_eq!(h2.compression(), codec);
            assert_eq!(
                (h2.producer_id, h2.producer_epoch, h2.base_sequence),
                (7, 3, 100)
            );
            assert_ne!(h2.attributes & ATTR_DELETE_HORIZON, 0);
            assert_eq!(
                h2.base_timestamp, 9_999,
                "the horizon is the base timestamp"
            );
            assert_eq!(h2.max_timestamp, 1003);
            assert_eq!(
                recs2, kept,
                "offsets, timestamps, keys, values and headers intact"
            );

            let empty = empty_batch(&h);
            let (h3, recs3) = decode_batch(&empty).unwrap();
            assert!(recs3.is_empty());
            assert_eq!((h3.base_offset, h3.last_offset()), (42, 46));
            assert_eq!((h3.producer_id, h3.base_sequence), (7, 100));
            assert_eq!(h3.compression(), 0);
        }
    }

    #[test]
    fn keyless_records_are_found_in_any_codec() {
        for codec in 0..=4 {
            let b = sample(codec);
            let bytes = b.build().unwrap();
            let h = BatchHeader::parse(&bytes).unwrap();
            assert!(
                has_keyless_record(&bytes, &h).unwrap(),
                "record 2 has no key"
            );
            let mut keyed = sample(codec);
            keyed.records.remove(2);
            let bytes = keyed.build().unwrap();
            let h = BatchHeader::parse(&bytes).unwrap();
            assert!(!has_keyless_record(&bytes, &h).unwrap());
        }
    }

    #[test]
    fn corrupt_record_framing_is_an_error() {
        let mut bytes = sample(0).build().unwrap();
        bytes[BATCH_HEADER_LEN] = 0x7f; // first record claims a huge length
        let crc = batch::compute_crc(&bytes);
        bytes[17..21].copy_from_slice(&crc.to_be_bytes());
        assert!(decode_batch(&bytes).is_err());
    }
}
