//! A view of a RecordBatch header (magic 2) over the bytes a client sent, without decoding records.
//!
//! The produce path never rebuilds a batch: it checks the header and CRC here, then writes a
//! re-stamped copy of the 61-byte header followed by the untouched rest of the client's bytes.

use super::error::{LogError, Result};

/// Offset and length prefix shared by every magic: `baseOffset int64 | batchLength int32`.
pub const LOG_OVERHEAD: usize = 12;
/// Size of a magic-2 batch header up to the first record.
pub const BATCH_HEADER_LEN: usize = 61;
pub const MAGIC_OFFSET: usize = 16;
const CRC_OFFSET: usize = 17;
/// The CRC covers everything from the attributes to the end of the batch.
const CRC_COVERED_FROM: usize = 21;
const ATTRIBUTES_OFFSET: usize = 21;
const MAX_TIMESTAMP_OFFSET: usize = 35;
const LEADER_EPOCH_OFFSET: usize = 12;

pub const ATTR_COMPRESSION_MASK: i16 = 0x07;
pub const ATTR_LOG_APPEND_TIME: i16 = 0x08;
pub const ATTR_TRANSACTIONAL: i16 = 0x10;
pub const ATTR_CONTROL: i16 = 0x20;
pub const ATTR_DELETE_HORIZON: i16 = 0x40;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: i64,
    pub batch_length: i32,
    pub partition_leader_epoch: i32,
    pub magic: i8,
    pub crc: u32,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub records_count: i32,
}

fn be_i64(b: &[u8], at: usize) -> i64 {
    i64::from_be_bytes(b[at..at + 8].try_into().unwrap_or([0; 8]))
}
fn be_i32(b: &[u8], at: usize) -> i32 {
    i32::from_be_bytes(b[at..at + 4].try_into().unwrap_or([0; 4]))
}
fn be_i16(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes(b[at..at + 2].try_into().unwrap_or([0; 2]))
}

impl BatchHeader {
    /// Parses a magic-2 header. `buf` must hold at least [`BATCH_HEADER_LEN`] bytes.
    pub fn parse(buf: &[u8]) -> Result<BatchHeader> {
        if buf.len() < BATCH_HEADER_LEN {
            return Err(LogError::CorruptMessage(format!(
                "batch header needs {BATCH_HEADER_LEN} bytes, got {}",
                buf.len()
            )));
        }
        let magic = buf[MAGIC_OFFSET] as i8;
        if magic != 2 {
            return Err(LogError::CorruptMessage(format!(
                "expected magic 2, found {magic}"
            )));
        }
        Ok(BatchHeader {
            base_offset: be_i64(buf, 0),
            batch_length: be_i32(buf, 8),
            partition_leader_epoch: be_i32(buf, LEADER_EPOCH_OFFSET),
            magic,
            crc: be_i32(buf, CRC_OFFSET) as u32,
            attributes: be_i16(buf, ATTRIBUTES_OFFSET),
            last_offset_delta: be_i32(buf, 23),
            base_timestamp: be_i64(buf, 27),
            max_timestamp: be_i64(buf, MAX_TIMESTAMP_OFFSET),
            producer_id: be_i64(buf, 43),
            producer_epoch: be_i16(buf, 51),
            base_sequence: be_i32(buf, 53),
            records_count: be_i32(buf, 57),
        })
    }

    /// Whole size of the batch on disk, offset and length prefix included.
    pub fn size(&self) -> usize {
        self.batch_length as usize + LOG_OVERHEAD
    }
    pub fn last_offset(&self) -> i64 {
        self.base_offset + self.last_offset_delta as i64
    }
    pub fn next_offset(&self) -> i64 {
        self.last_offset() + 1
    }
    pub fn compression(&self) -> i16 {
        self.attributes & ATTR_COMPRESSION_MASK
    }
    pub fn is_transactional(&self) -> bool {
        self.attributes & ATTR_TRANSACTIONAL != 0
    }
    pub fn is_control(&self) -> bool {
        self.attributes & ATTR_CONTROL != 0
    }
    pub fn is_log_append_time(&self) -> bool {
        self.attributes & ATTR_LOG_APPEND_TIME != 0
    }
    /// Sequence of the last record, wrapping at `i32::MAX` as Kafka's does.
    pub fn last_sequence(&self) -> i32 {
        if self.base_sequence < 0 {
            return -1;
        }
        let last = self.base_sequence as i64 + self.last_offset_delta as i64;
        if last > i32::MAX as i64 {
            (last - i32::MAX as i64 - 1) as i32
        } else {
            last as i32
        }
    }
}

/// The CRC-32C a batch's header should carry, over `batch` as a whole.
pub fn compute_crc(batch: &[u8]) -> u32 {
    crc32c::crc32c(&batch[CRC_COVERED_FROM.min(batch.len())..])
}

pub fn codec_name(codec: i16) -> &'static str {
    match codec {
        0 => "NONE",
        1 => "GZIP",
        2 => "SNAPPY",
        3 => "LZ4",
        4 => "ZSTD",
        _ => "UNKNOWN",
    }
}

/// Reads the length prefix of whatever entry (any magic) starts at `buf`, returning the entry's
/// full size, or `None` when fewer than [`LOG_OVERHEAD`] bytes are there.
pub fn entry_size(buf: &[u8]) -> Option<i64> {
    if buf.len() < LOG_OVERHEAD {
        return None;
    }
    Some(be_i32(buf, 8) as i64 + LOG_OVERHEAD as i64)
}

/// Checks one complete magic-2 batch as stored in a log: header, size and CRC. Used by recovery
/// and by follower appends, where offsets are already assigned.
pub fn validate_stored(batch: &[u8]) -> Result<BatchHeader> {
    let header = BatchHeader::parse(batch)?;
    if header.batch_length < (BATCH_HEADER_LEN - LOG_OVERHEAD) as i32 {
        return Err(LogError::CorruptMessage(format!(
            "batch length {} is smaller than the header",
            header.batch_length
        )));
    }
    if header.size() != batch.len() {
        return Err(LogError::CorruptMessage(format!(
            "batch length says {} bytes, {} present",
            header.size(),
            batch.len()
        )));
    }
    let crc = compute_crc(batch);
    if crc != header.crc {
        return Err(LogError::CorruptMessage(format!(
            "CRC mismatch: header says {}, computed {crc}",
            header.crc
        )));
    }
    if header.last_offset_delta < 0 || header.records_count < 0 {
        return Err(LogError::CorruptMessage(format!(
            "negative lastOffsetDelta {} or record count {}",
            header.last_offset_delta, header.records_count
        )));
    }
    Ok(header)
}

/// What a leader does to a client's batch before writing it: the header with its base offset,
/// leader epoch and (for LogAppendTime topics) timestamp and CRC re-stamped. The records after
/// the header are written from the client's buffer unchanged.
pub fn stamp_header(
    batch: &[u8],
    base_offset: i64,
    leader_epoch: i32,
    log_append_time: Option<i64>,
) -> [u8; BATCH_HEADER_LEN] {
    let mut header = [0u8; BATCH_HEADER_LEN];
    header.copy_from_slice(&batch[..BATCH_HEADER_LEN]);
    header[0..8].copy_from_slice(&base_offset.to_be_bytes());
    header[LEADER_EPOCH_OFFSET..LEADER_EPOCH_OFFSET + 4]
        .copy_from_slice(&leader_epoch.to_be_bytes());
    if let Some(now) = log_append_time {
        let attrs = be_i16(&header, ATTRIBUTES_OFFSET) | ATTR_LOG_APPEND_TIME;
        header[ATTRIBUTES_OFFSET..ATTRIBUTES_OFFSET + 2].copy_from_slice(&attrs.to_be_bytes());
        header[MAX_TIMESTAMP_OFFSET..MAX_TIMESTAMP_OFFSET + 8].copy_from_slice(&now.to_be_bytes());
        let crc = crc32c::crc32c_append(
            crc32c::crc32c(&header[CRC_COVERED_FROM..]),
            &batch[BATCH_HEADER_LEN..],
        );
        header[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
    }
    header
}

/// Walks the records of an uncompressed batch checking that each record's framing fits and its
/// offset delta is the next one, as Kafka's `LogValidator` does before assigning offsets.
pub fn validate_uncompressed_records(batch: &[u8], header: &BatchHeader) -> Result<()> {
    let mut pos = BATCH_HEADER_LEN;
    for expected_delta in 0..header.records_count {
        let (len, n) = read_varint(&batch[pos.min(batch.len())..])
            .ok_or_else(|| LogError::InvalidRecord("truncated record length".into()))?;
        pos += n;
        if len < 0 || pos + len as usize > batch.len() {
            return Err(LogError::InvalidRecord(format!(
                "record {expected_delta} of length {len} overruns the batch"
            )));
        }
        let body = &batch[pos..pos + len as usize];
        // attributes (1 byte), timestampDelta (varlong), offsetDelta (varint)
        let delta = body
            .get(1..)
            .and_then(read_varlong)
            .and_then(|(_, n)| read_varint(&body[1 + n..]))
            .map(|(d, _)| d)
            .ok_or_else(|| LogError::InvalidRecord("truncated record header".into()))?;
        if delta as i64 != expected_delta as i64 {
            return Err(LogError::InvalidRecord(format!(
                "record offset delta {delta}, expected {expected_delta}"
            )));
        }
        pos += len as usize;
    }
    if pos != batch.len() {
        return Err(LogError::InvalidRecord(format!(
            "{} bytes after the last record",
            batch.len() - pos
        )));
    }
    Ok(())
}

/// Zigzag varint as used inside v2 records; returns the value and the bytes it took.
pub fn read_varint(buf: &[u8]) -> Option<(i32, usize)> {
    let (v, n) = read_varlong(buf)?;
    if n > 5 {
        return None;
    }
    i32::try_from(v).ok().map(|v| (v, n))
}

pub fn read_varlong(buf: &[u8]) -> Option<(i64, usize)> {
    let mut raw: u64 = 0;
    for (i, &b) in buf.iter().enumerate().take(10) {
        raw |= ((b & 0x7f) as u64) << (7 * i);
        if b & 0x80 == 0 {
            let v = ((raw >> 1) as i64) ^ -((raw & 1) as i64);
            return Some((v, i + 1));
        }
    }
    None
}

pub fn put_varint(out: &mut Vec<u8>, v: i64) {
    let mut raw = ((v << 1) ^ (v >> 63)) as u64;
    while raw >= 0x80 {
        out.push((raw as u8) | 0x80);
        raw >>= 7;
    }
    out.push(raw as u8);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_round_trip() {
        for v in [
            0i64,
            1,
            -1,
            63,
            -64,
            64,
            300,
            i32::MAX as i64,
            i32::MIN as i64,
            i64::MAX,
            i64::MIN,
        ] {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            assert_eq!(read_varlong(&out), Some((v, out.len())), "value {v}");
        }
        assert_eq!(read_varint(&[0x80, 0x80]), None);
    }

    #[test]
    fn last_sequence_wraps() {
        let mut h = BatchHeader::parse(&{
            let mut b = [0u8; BATCH_HEADER_LEN];
            b[MAGIC_OFFSET] = 2;
            b
        })
        .unwrap();
        h.base_sequence = i32::MAX - 1;
        h.last_offset_delta = 3;
        assert_eq!(h.last_sequence(), 1);
    }
}
