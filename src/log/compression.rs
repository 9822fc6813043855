//! The four codecs Kafka clients use inside record batches, with the exact framings they expect.

use std::io::{Read, Write};

use super::error::{LogError, Result};

pub const NONE: i16 = 0;
pub const GZIP: i16 = 1;
pub const SNAPPY: i16 = 2;
pub const LZ4: i16 = 3;
pub const ZSTD: i16 = 4;

/// The Java client wraps snappy in xerial's stream framing; librdkafka reads and writes it too.
const XERIAL_MAGIC: [u8; 8] = [0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0];
const XERIAL_HEADER_LEN: usize = 16;
/// Block size xerial's `SnappyOutputStream` uses by default, which Kafka keeps.
const XERIAL_BLOCK: usize = 32 * 1024;

/// Decompresses `data`, refusing to produce more than `limit` bytes so that a small hostile batch
/// cannot make the broker allocate without bound.
pub fn decompress(codec: i16, data: &[u8], limit: usize) -> Result<Vec<u8>> {
    let corrupt = |what: &str, e: &dyn std::fmt::Display| {
        LogError::CorruptMessage(format!("{what} decompression failed: {e}"))
    };
    let mut out = Vec::new();
    let cap = limit as u64 + 1;
    match codec {
        NONE => out.extend_from_slice(data),
        GZIP => {
            flate2::read::GzDecoder::new(data)
                .take(cap)
                .read_to_end(&mut out)
                .map_err(|e| corrupt("gzip", &e))?;
        }
        SNAPPY => out = snappy_decompress(data, limit)?,
        LZ4 => {
            let decoder = lz4::Decoder::new(data).map_err(|e| corrupt("lz4", &e))?;
            decoder
                .take(cap)
                .read_to_end(&mut out)
                .map_err(|e| corrupt("lz4", &e))?;
        }
        ZSTD => {
            let decoder =
                zstd::stream::read::Decoder::new(data).map_err(|e| corrupt("zstd", &e))?;
            decoder
                .take(cap)
                .read_to_end(&mut out)
                .map_err(|e| corrupt("zstd", &e))?;
        }
        other => return Err(LogError::UnsupportedCompression(other)),
    }
    if out.len() > limit {
        return Err(LogError::CorruptMessage(format!(
            "decompressed records exceed {limit} bytes"
        )));
    }
    Ok(out)
}

fn snappy_decompress(data: &[u8], limit: usize) -> Result<Vec<u8>> {
    let raw = |block: &[u8]| -> Result<Vec<u8>> {
        let len = snap::raw::decompress_len(block)
            .map_err(|e| LogError::CorruptMessage(format!("snappy: {e}")))?;
        if len > limit {
            return Err(LogError::CorruptMessage(format!(
                "snappy block of {len} bytes exceeds {limit}"
            )));
        }
        snap::raw::Decoder::new()
            .decompress_vec(block)
            .map_err(|e| LogError::CorruptMessage(format!("snappy: {e}")))
    };
    if data.len() < XERIAL_HEADER_LEN || data[..8] != XERIAL_MAGIC {
        return raw(data);
    }
    let mut out = Vec::new();
    let mut pos = XERIAL_HEADER_LEN;
    while pos < data.len() {
        let len_bytes: [u8; 4] = data
            .get(pos..pos + 4)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| LogError::CorruptMessage("snappy: truncated block length".into()))?;
        let len = u32::from_be_bytes(len_bytes) as usize;
        pos += 4;
        let block = data
            .get(pos..pos + len)
            .ok_or_else(|| LogError::CorruptMessage("snappy: truncated block".into()))?;
        out.extend_from_slice(&raw(block)?);
        if out.len() > limit {
            return Err(LogError::CorruptMessage(format!(
                "decompressed records exceed {limit} bytes"
            )));
        }
        pos += len;
    }
    Ok(out)
}

pub fn compress(codec: i16, data: &[u8]) -> Result<Vec<u8>> {
    compress_at_level(codec, data, None)
}

/// Compresses at a `compression.<codec>.level` (Kafka 3.8+, KIP-390); `None` takes the codec
/// library's default, which is what clients use. gzip -1 is zlib's default level; snappy has no
/// levels.
pub fn compress_at_level(codec: i16, data: &[u8], level: Option<i32>) -> Result<Vec<u8>> {
    let failed = |e: std::io::Error| LogError::io("<compression buffer>", e);
    match codec {
        NONE => Ok(data.to_vec()),
        GZIP => {
            let level = match level {
                Some(l @ 1..=9) => flate2::Compression::new(l as u32),
                _ => flate2::Compression::default(),
            };
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), level);
            enc.write_all(data).map_err(failed)?;
            enc.finish().map_err(failed)
        }
        SNAPPY => {
            let mut out = Vec::with_capacity(data.len() / 2 + XERIAL_HEADER_LEN);
            out.extend_from_slice(&XERIAL_MAGIC);
            out.extend_from_slice(&1i32.to_be_bytes());
            out.extend_from_slice(&1i32.to_be_bytes());
            let mut encoder = snap::raw::Encoder::new();
            for chunk in data.chunks(XERIAL_BLOCK) {
                let block = encoder
                    .compress_vec(chunk)
                    .map_err(|e| LogError::CorruptMessage(format!("snappy: {e}")))?;
                out.extend_from_slice(&(block.len() as i32).to_be_bytes());
                out.extend_from_slice(&block);
            }
            Ok(out)
        }
        LZ4 => {
            // Kafka's KafkaLZ4BlockInputStream reads only independent blocks of at most 64 KiB.
            let mut enc = lz4::EncoderBuilder::new()
                .block_size(lz4::BlockSize::Max64KB)
                .block_mode(lz4::BlockMode::Independent)
                .checksum(lz4::ContentChecksum::NoChecksum)
                .level(level.map_or(0, |l| l.clamp(0, 16) as u32))
                .build(Vec::new())
                .map_err(failed)?;
            enc.write_all(data).map_err(failed)?;
            let (out, res) = enc.finish();
            res.map_err(failed)?;
            Ok(out)
        }
        ZSTD => zstd::stream::encode_all(data, level.unwrap_or(3)).map_err(failed),
        other => Err(LogError::UnsupportedCompression(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_codec_round_trips() {
        let data: Vec<u8> = (0..100_000u32)
            .flat_map(|i| (i % 251).to_be_bytes())
            .collect();
        for codec in [NONE, GZIP, SNAPPY, LZ4, ZSTD] {
            let packed = compress(codec, &data).unwrap();
            let levelled =
                compress_at_level(codec, &data, Some(if codec == ZSTD { 19 } else { 9 })).unwrap();
            assert_eq!(
                decompress(codec, &levelled, data.len()).unwrap(),
                data,
                "codec {codec} at a level"
            );
            assert_eq!(
                decompress(codec, &packed, data.len()).unwrap(),
                data,
                "codec {codec}"
            );
            assert!(
                decompress(codec, &packed, data.len() - 1).is_err(),
                "limit, codec {codec}"
            );
        }
    }

    #[test]
    fn raw_snappy_is_accepted() {
        let block = snap::raw::Encoder::new()
            .compress_vec(b"hello hello hello")
            .unwrap();
        assert_eq!(
            decompress(SNAPPY, &block, 100).unwrap(),
            b"hello hello hello"
        );
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for codec in [GZIP, SNAPPY, LZ4, ZSTD] {
            assert!(
                decompress(
                    codec,
                    b"\x82SNAPPY\0\0\0\0\x01\0\0\0\x01\xff\xff\xff\xff",
                    1000
                )
                .is_err()
            );
        }
        assert!(matches!(
            decompress(7, b"", 10),
            Err(LogError::UnsupportedCompression(7))
        ));
    }
}
