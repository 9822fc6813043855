//! Kafka's framing: an int32 size, then a header and a body. Requests and responses are
//! framed, sized and their headers parsed here, for the broker's listeners and for its own
//! connections to brokers alike, so that malformed input is judged in one place.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
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
    // Read into spare capacity rather than a zeroed buffer: a produce request's records are
    // written once, by the socket read, and not cleared first.
    let size = size as usize;
    let mut buf = BytesMut::with_capacity(size);
    while buf.len() < size {
        let want = size - buf.len();
        if reader.read_buf(&mut (&mut buf).limit(want)).await? == 0 {
            return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof).into());
        }
    }
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
    let mut header = ResponseHeader::default();
    header.correlation_id = correlation_id;
    sized(64, |out| {
        header
            .encode(out, header_version)
            .map_err(|e| e.to_string())?;
        body(out)
    })
}

/// Adds to a frame's size prefix the bytes of `extra` parts sent inside it that are not in
/// `frame` (a Fetch response's records sent from files).
pub fn count_in_size(
    frame: &mut BytesMut,
    extra: impl IntoIterator<Item = usize>,
) -> Result<(), String> {
    let extra: usize = extra.into_iter().sum();
    if extra == 0 {
        return Ok(());
    }
    let size = frame
        .len()
        .checked_sub(4)
        .and_then(|n| n.checked_add(extra))
        .and_then(|n| i32::try_from(n).ok())
        .ok_or_else(|| format!("a frame of {} + {extra} bytes is too large", frame.len()))?;
    frame[..4].copy_from_slice(&size.to_be_bytes());
    Ok(())
}

/// Encodes request `correlation_id` from `client_id`: size, header, body.
pub fn encode_request(
    api_key: ApiKey,
    version: i16,
    correlation_id: i32,
    client_id: Option<StrBytes>,
    request: &RequestKind,
) -> Result<BytesMut, String> {
    let mut header = RequestHeader::default();
    header.request_api_key = api_key as i16;
    header.request_api_version = version;
    header.correlation_id = correlation_id;
    header.client_id = client_id;
    // A produce request is mostly its records: room for them up front spares the copies of
    // the buffer growing through them.
    let records = match request {
        RequestKind::Produce(r) => r
            .topic_data
            .iter()
            .flat_map(|t| &t.partition_data)
            .filter_map(|p| p.records.as_ref().map(Bytes::len))
            .sum(),
        _ => 0,
    };
    sized(256 + records, |out| {
        header
            .encode(out, api_key.request_header_version(version))
            .map_err(|e| e.to_string())?;
        request.encode(out, version).map_err(|e| e.to_string())
    })
}

/// Decodes the header of a response to `api_key`/`version`, leaving `frame` at the body;
/// returns the correlation id it answers.
pub fn decode_response_header(
    frame: &mut Bytes,
    api_key: ApiKey,
    version: i16,
) -> Result<i32, FrameError> {
    ResponseHeader::decode(frame, api_key.response_header_version(version))
        .map(|h| h.correlation_id)
        .map_err(|e| FrameError::Malformed(format!("response header: {e}")))
}

/// A frame written by `contents`, preceded by its size (known only once it is written).
fn sized(
    capacity: usize,
    contents: impl FnOnce(&mut BytesMut) -> Result<(), String>,
) -> Result<BytesMut, String> {
    let mut out = BytesMut::with_capacity(capacity);
    out.extend_from_slice(&[0; 4]);
    contents(&mut out)?;
    let size = i32::try_from(out.len() - 4)
        .map_err(|_| format!("a frame of {} bytes is too large", out.len() - 4))?;
    out[..4].copy_from_slice(&size.to_be_bytes());
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    /// A frame whose bytes arrive in small pieces is read whole, and the next one after it;
    /// a stream that ends inside a frame is an error, not a short frame.
    #[tokio::test]
    async fn frames_arriving_in_pieces_are_read_whole_and_a_cut_one_is_refused() {
        let body: Vec<u8> = (0..70_000u32).map(|i| (i % 251) as u8).collect();
        let (mut tx, mut rx) = tokio::io::duplex(1000);
        let mut wire = Vec::new();
        for b in [&body[..], b"next"] {
            wire.extend_from_slice(&(b.len() as i32).to_be_bytes());
            wire.extend_from_slice(b);
        }
        wire.extend_from_slice(&10i32.to_be_bytes());
        wire.extend_from_slice(b"cut");
        let writer = tokio::spawn(async move {
            for piece in wire.chunks(777) {
                tx.write_all(piece).await.unwrap();
            }
        });
        assert_eq!(read_frame(&mut rx, 1 << 20).await.unwrap(), body);
        assert_eq!(&read_frame(&mut rx, 1 << 20).await.unwrap()[..], b"next");
        writer.await.unwrap();
        assert!(matches!(
            read_frame(&mut rx, 1 << 20).await,
            Err(FrameError::Io(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof
        ));
        assert!(matches!(
            read_frame(&mut rx, 1 << 20).await,
            Err(FrameError::Closed)
        ));
    }

    /// The size announced is checked before anything is allocated for it.
    #[tokio::test]
    async fn an_oversized_frame_is_refused() {
        let (mut tx, mut rx) = tokio::io::duplex(64);
        tx.write_all(&(1i32 << 30).to_be_bytes()).await.unwrap();
        assert!(matches!(
            read_frame(&mut rx, 1 << 20).await,
            Err(FrameError::TooLarge { .. })
        ));
    }
}
