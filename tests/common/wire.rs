//! A minimal Kafka client over a raw socket, for tests that need to send exactly what they
//! mean (including garbage) and see exactly what comes back.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind, ResponseHeader, ResponseKind};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub struct Conn {
    pub stream: TcpStream,
    next_id: i32,
}

impl Conn {
    pub async fn connect(port: u16) -> Conn {
        let stream = TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("connect");
        Conn { stream, next_id: 1 }
    }

    pub async fn send_raw(&mut self, bytes: &[u8]) {
        let _ = self.stream.write_all(bytes).await;
    }

    /// Sends a request and returns its decoded response.
    pub async fn call(&mut self, key: ApiKey, version: i16, request: RequestKind) -> ResponseKind {
        let id = self.send_request(key, version, request).await;
        let mut response = self.read_frame().await.expect("a response");
        let rh =
            ResponseHeader::decode(&mut response, key.response_header_version(version)).unwrap();
        assert_eq!(rh.correlation_id, id);
        ResponseKind::decode(key, &mut response, version).unwrap()
    }

    /// Sends a request without waiting for its answer; returns its correlation id.
    pub async fn send_request(&mut self, key: ApiKey, version: i16, request: RequestKind) -> i32 {
        let id = self.next_id;
        self.next_id += 1;
        let mut header = RequestHeader::default();
        header.request_api_key = key as i16;
        header.request_api_version = version;
        header.correlation_id = id;
        header.client_id = Some(StrBytes::from_static_str("odradek-test"));
        let mut body = BytesMut::new();
        header
            .encode(&mut body, key.request_header_version(version))
            .unwrap();
        request.encode(&mut body, version).unwrap();
        let mut frame = BytesMut::new();
        frame.extend_from_slice(&(body.len() as i32).to_be_bytes());
        frame.extend_from_slice(&body);
        self.stream.write_all(&frame).await.unwrap();
        id
    }

    pub async fn read_frame(&mut self) -> Option<Bytes> {
        let mut size = [0u8; 4];
        tokio::time::timeout(Duration::from_secs(10), self.stream.read_exact(&mut size))
            .await
            .ok()?
            .ok()?;
        let mut buf = vec![0u8; i32::from_be_bytes(size) as usize];
        self.stream.read_exact(&mut buf).await.ok()?;
        Some(Bytes::from(buf))
    }

    /// True when the broker closed the connection (within a bounded wait).
    pub async fn is_closed(&mut self) -> bool {
        let mut buf = [0u8; 1];
        matches!(
            tokio::time::timeout(Duration::from_secs(10), self.stream.read(&mut buf)).await,
            Ok(Ok(0)) | Ok(Err(_))
        )
    }
}
