//! Kafka's framing: an int32 size, then a request header and body. Header parsing is here so
//! that malformed input is judged in one place.

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader};
use kafka_protocol::protocol::{Decodable, Encodable};
use tokio::io::{AsyncRead, AsyncReadExt};

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("connection closed")]
    Closed,
    #[error("request of {size} bytes exceeds socket.request.max.bytes ({max})")]
    TooLarge { size: i64, max: usize },
    #[error("malformed request: {0}")]
    Malformed(String),
    #[error("unknown api key {0}")]
    UnknownApi(i16),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Reads one size-prefixed frame. A clean end of stream before the size is `Closed`.
pub async fn read_frame<R: AsyncRead + Unpin>(
    reader: &mut R,
    max: usize,
) -> Result<Bytes, FrameError> {
    let mut size = [0u8; 4];
    match reader.read_exact(&mut size).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Err(FrameError::Closed),
        Err(e) => return Err(e.into()),
    }
    let size = i32::from_be_bytes(size) as i64;
    if size < 0 || size as usize > max {
        return Err(FrameError::TooLarge { size, max });
    }
    let mut buf = BytesMut::zeroed(size as usize);
    reader.read_exact(&mut buf).await?;
    Ok(buf.freeze())
}

/// The api key and version, read before anything else so that an unsupported version can be
/// answered (ApiVersions) or refused without decoding a body we do not understand.
pub fn peek_api(frame: &Bytes) -> Result<(i16, i16), FrameError> {
    if frame.len() < 8 {
        return Err(FrameError::Malformed(format!(
            "{} bytes is too short for a request header",
            frame.len()
        )));
    }
    Ok((
        i16::from_be_bytes([frame[0], frame[1]]),
        i16::from_be_bytes([frame[2], frame[3]]),
    ))
}

pub fn correlation_id(frame: &Bytes) -> i32 {
    frame
        .get(4..8)
        .map_or(0, |b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// Decodes the request header for `api_key`/`version`, leaving `frame` at the body.
pub fn decode_header(
    frame: &mut Bytes,
    api_key: ApiKey,
    version: i16,
) -> Result<RequestHeader, FrameError> {
    let header_version = api_key.request_header_version(version);
    RequestHeader::decode(frame, header_version)
        .map_err(|e| FrameError::Malformed(format!("request header: {e}")))
}

/// Encodes a response: size, header (correlation id, tagged fields when flexible), body.
pub fn encode_response(
    correlation_id: i32,
    header_version: i16,
    body: impl FnOnce(&mut BytesMut) -> Result<(), String>,
) -> Result<BytesMut, String> {
    let mut out = BytesMut::with_capacity(64);
    out.extend_from_slice(&[0; 4]);
    let mut header = kafka_protocol::messages::ResponseHeader::default();
    header.correlation_id = correlation_id;
    header
        .encode(&mut out, header_version)
        .map_err(|e| e.to_string())?;
    body(&mut out)?;
    let size = (out.len() - 4) as i32;
    out[..4].copy_from_slice(&size.to_be_bytes());
    Ok(out)
}
