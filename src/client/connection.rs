//! One connection to a broker: versions negotiated once with ApiVersions, then requests one at a
//! time (`call`) or, handed to a [`Pipeline`], several in flight at once.

use std::collections::HashMap;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, RequestKind, ResponseKind};
use kafka_protocol::protocol::StrBytes;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use super::security::{SaslCredentials, Security, login};
use super::{ClientError, ClientId, Result};
use crate::protocol::frame::{self, FrameError};

/// The halves of a connection's stream, plain TCP or TLS alike.
type Reader = Box<dyn AsyncRead + Send + Unpin>;
type Writer = Box<dyn AsyncWrite + Send + Unpin>;

/// Responses larger than this are a broken or hostile peer, not a Kafka broker.
const MAX_RESPONSE_BYTES: usize = 1 << 30;

/// One broker connection.
pub struct Connection {
    addr: String,
    client: ClientId,
    reader: Reader,
    writer: Writer,
    next_correlation: i32,
    versions: HashMap<i16, (i16, i16)>,
    /// The SASL login, and when to log in again: the broker ends a session when its lifetime
    /// (`session_lifetime_ms`, KIP-368) runs out.
    sasl: Option<SaslCredentials>,
    reauthenticate_at: Option<Instant>,
}

impl Connection {
    /// Connects to `addr` (see [`super::address`]) as `client` over plaintext and learns the
    /// broker's versions.
    pub async fn open(addr: &str, client: &ClientId) -> Result<Connection> {
        Self::open_secured(addr, client, &Security::default()).await
    }

    /// Connects as [`open`](Connection::open) does, over TLS and logging in with SASL where
    /// `security` says so (a broker reaching another on the inter-broker listener).
    pub async fn open_secured(
        addr: &str,
        client: &ClientId,
        security: &Security,
    ) -> Result<Connection> {
        let stream = TcpStream::connect(addr)
            .await
            .map_err(|source| ClientError::Connect {
                addr: addr.to_string(),
                source,
            })?;
        let _ = stream.set_nodelay(true);
        let (reader, writer): (Reader, Writer) = match &security.tls {
            None => {
                // A plain TCP stream splits without a lock between its halves.
                let (r, w) = stream.into_split();
                (Box::new(r), Box::new(w))
            }
            Some(tls) => {
                let stream = super::security::tls_connect(addr, tls, stream).await?;
                let (r, w) = tokio::io::split(stream);
                (Box::new(r), Box::new(w))
            }
        };
        let mut c = Connection {
            addr: addr.to_string(),
            client: client.clone(),
            reader,
            writer,
            next_correlation: 1,
            versions: HashMap::new(),
            sasl: security.sasl.clone(),
            reauthenticate_at: None,
        };
        let mut req = ApiVersionsRequest::default();
        req.client_software_name = StrBytes::from_static_str(client.software_name);
        req.client_software_version = StrBytes::from_static_str(env!("CARGO_PKG_VERSION"));
        if let ResponseKind::ApiVersions(r) = c
            .send(ApiKey::ApiVersions, 3, RequestKind::ApiVersions(req))
            .await?
        {
            c.versions = r
                .api_keys
                .iter()
                .map(|k| (k.api_key, (k.min_version, k.max_version)))
                .collect();
        }
        c.login().await?;
        Ok(c)
    }

    pub(super) fn addr(&self) -> &str {
        &self.addr
    }

    /// The highest version both sides speak.
    pub fn version(&self, key: ApiKey) -> Result<i16> {
        negotiate(&self.addr, &self.versions, key)
    }

    /// Logs in (again) with SASL, if the connection uses it, and notes when to renew: like
    /// Kafka's client, at 85-95% of the session's lifetime, chosen at random so that many
    /// connections opened together do not renew together.
    async fn login(&mut self) -> Result<()> {
        let Some(sasl) = self.sasl.clone() else {
            return Ok(());
        };
        let lifetime_ms = login(self, &sasl).await?;
        self.reauthenticate_at = (lifetime_ms > 0).then(|| {
            let mut byte = [0u8; 1];
            let share = match getrandom::fill(&mut byte) {
                Ok(()) => 0.85 + 0.10 * f64::from(byte[0]) / 255.0,
                Err(_) => 0.85,
            };
            Instant::now() + std::time::Duration::from_millis((lifetime_ms as f64 * share) as u64)
        });
        Ok(())
    }

    /// Keeps the session as first logged in, never renewing it: a client from before KIP-368
    /// (or on SaslAuthenticate v0), whose connection the broker closes at its first request
    /// after the session's lifetime has run out.
    pub fn never_reauthenticate(&mut self) {
        self.reauthenticate_at = None;
    }

    /// Renews the SASL session if it is due, before a request that might otherwise find the
    /// connection closed.
    async fn renew_if_due(&mut self) -> Result<()> {
        if self
            .reauthenticate_at
            .is_some_and(|at| Instant::now() >= at)
        {
            self.login().await?;
        }
        Ok(())
    }

    pub async fn call(&mut self, key: ApiKey, request: RequestKind) -> Result<ResponseKind> {
        self.renew_if_due().await?;
        let version = self.version(key)?;
        self.send(key, version, request).await
    }

    /// Like `call`, at most at version `cap` (the version the inter-broker protocol picks, or a
    /// limit of the request's shape such as a Fetch that names topics rather than topic ids).
    /// A peer that speaks less gets its own maximum; the request, built in its newest shape, is
    /// reshaped for the version sent (`versions::fit`).
    pub async fn call_upto(
        &mut self,
        key: ApiKey,
        cap: i16,
        mut request: RequestKind,
    ) -> Result<ResponseKind> {
        self.renew_if_due().await?;
        let version = self.version(key)?.min(cap);
        super::versions::fit(key, version, &mut request);
        self.send(key, version, request).await
    }

    pub(super) async fn send(
        &mut self,
        key: ApiKey,
        version: i16,
        request: RequestKind,
    ) -> Result<ResponseKind> {
        let correlation = self.write_request(key, version, request).await?;
        let frame = read_response_frame(&self.addr, &mut self.reader).await?;
        decode_response(&self.addr, key, version, correlation, frame)
    }

    /// Writes a request without waiting for its response (acks=0 produce expects none); returns
    /// its correlation id.
    pub async fn write_request(
        &mut self,
        key: ApiKey,
        version: i16,
        request: RequestKind,
    ) -> Result<i32> {
        let correlation = next(&mut self.next_correlation);
        let frame = encode_request(
            &self.addr,
            &self.client,
            key,
            version,
            correlation,
            &request,
        )?;
        write(&self.addr, &mut self.writer, &frame).await?;
        Ok(correlation)
    }

    /// Hands the connection to a writer and a background reader that passes each response
    /// frame, tagged with `tag` and stamped with its arrival, to `responses`: several requests
    /// can then be in flight at once (Kafka answers them in order), on several connections.
    pub fn into_pipeline(self, tag: usize, responses: &Responses) -> Pipeline {
        let (mut read, write) = (self.reader, self.writer);
        let tx = responses.tx.clone();
        let addr = self.addr.clone();
        tokio::spawn(async move {
            loop {
                let frame = read_response_frame(&addr, &mut read).await;
                let failed = frame.is_err();
                if tx.send((tag, frame.map(|f| (f, Instant::now())))).is_err() || failed {
                    return;
                }
            }
        });
        Pipeline {
            addr: self.addr,
            client: self.client,
            write,
            next_correlation: self.next_correlation,
            versions: self.versions,
        }
    }
}

/// A response frame from a pipelined connection: its tag, and the frame with its arrival time.
pub type TaggedFrame = (usize, Result<(Bytes, Instant)>);

/// Where pipelined connections deliver their response frames.
pub struct Responses {
    tx: tokio::sync::mpsc::UnboundedSender<TaggedFrame>,
    rx: tokio::sync::mpsc::UnboundedReceiver<TaggedFrame>,
}

impl Default for Responses {
    fn default() -> Self {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        Responses { tx, rx }
    }
}

impl Responses {
    /// The next frame from any connection (never `None` while `self` holds a sender).
    pub async fn next(&mut self) -> Option<TaggedFrame> {
        self.rx.recv().await
    }
}

/// The writing side of a pipelined connection; its responses arrive at a [`Responses`].
pub struct Pipeline {
    addr: String,
    client: ClientId,
    write: Writer,
    next_correlation: i32,
    versions: HashMap<i16, (i16, i16)>,
}

impl Pipeline {
    pub fn version(&self, key: ApiKey) -> Result<i16> {
        negotiate(&self.addr, &self.versions, key)
    }

    pub async fn send(&mut self, key: ApiKey, version: i16, request: RequestKind) -> Result<i32> {
        let correlation = next(&mut self.next_correlation);
        let frame = encode_request(
            &self.addr,
            &self.client,
            key,
            version,
            correlation,
            &request,
        )?;
        write(&self.addr, &mut self.write, &frame).await?;
        Ok(correlation)
    }

    /// Decodes a frame of this connection, which must answer request `correlation`.
    pub fn decode(
        &self,
        key: ApiKey,
        version: i16,
        correlation: i32,
        frame: Bytes,
    ) -> Result<ResponseKind> {
        decode_response(&self.addr, key, version, correlation, frame)
    }
}

/// The next correlation id to use, advancing the counter.
fn next(counter: &mut i32) -> i32 {
    let id = *counter;
    *counter = counter.wrapping_add(1);
    id
}

fn negotiate(addr: &str, versions: &HashMap<i16, (i16, i16)>, key: ApiKey) -> Result<i16> {
    let ours = key.valid_versions();
    let (min, max) = versions
        .get(&(key as i16))
        .copied()
        .ok_or_else(|| ClientError::Protocol {
            addr: addr.to_string(),
            reason: format!("the broker does not support {key:?}"),
        })?;
    let v = max.min(ours.max);
    if v < min.max(ours.min) {
        return Err(ClientError::Protocol {
            addr: addr.to_string(),
            reason: format!("no common version of {key:?}"),
        });
    }
    Ok(v)
}

fn encode_request(
    addr: &str,
    client: &ClientId,
    key: ApiKey,
    version: i16,
    correlation: i32,
    request: &RequestKind,
) -> Result<BytesMut> {
    frame::encode_request(key, version, correlation, Some(client.id.clone()), request).map_err(
        |reason| ClientError::Protocol {
            addr: addr.to_string(),
            reason,
        },
    )
}

async fn write(addr: &str, stream: &mut (impl AsyncWriteExt + Unpin), frame: &[u8]) -> Result<()> {
    stream
        .write_all(frame)
        .await
        .map_err(|source| ClientError::Io {
            addr: addr.to_string(),
            source,
        })
}

/// One response frame.
async fn read_response_frame(addr: &str, stream: &mut (impl AsyncRead + Unpin)) -> Result<Bytes> {
    frame::read_frame(stream, MAX_RESPONSE_BYTES)
        .await
        .map_err(|e| frame_error(addr, e))
}

/// A framing error in what the broker at `addr` sent. The broker closing the connection is an
/// I/O error here: a client that waits for an answer has lost it.
fn frame_error(addr: &str, e: FrameError) -> ClientError {
    let addr = addr.to_string();
    match e {
        FrameError::Closed => ClientError::Io {
            addr,
            source: std::io::ErrorKind::UnexpectedEof.into(),
        },
        FrameError::Io(source) => ClientError::Io { addr, source },
        FrameError::TooLarge { size, .. } => ClientError::Protocol {
            addr,
            reason: format!("response size {size}"),
        },
        FrameError::Malformed(reason) => ClientError::Protocol { addr, reason },
        FrameError::UnknownApi(_) => ClientError::Protocol {
            addr,
            reason: e.to_string(),
        },
    }
}

fn decode_response(
    addr: &str,
    key: ApiKey,
    version: i16,
    correlation: i32,
    mut frame: Bytes,
) -> Result<ResponseKind> {
    let protocol = |reason: String| ClientError::Protocol {
        addr: addr.to_string(),
        reason,
    };
    let answers = frame::decode_response_header(&mut frame, key, version)
        .map_err(|e| frame_error(addr, e))?;
    if answers != correlation {
        return Err(protocol(format!(
            "correlation id {answers} for request {correlation}"
        )));
    }
    ResponseKind::decode(key, &mut frame, version).map_err(|e| protocol(e.to_string()))
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::ApiVersionsResponse;
    use kafka_protocol::messages::api_versions_response::ApiVersion;
    use kafka_protocol::protocol::Encodable;
    use tokio::net::TcpListener;

    use super::*;
    use crate::client::address;

    /// A broker on an IPv6 listener is reached at the address `address` formats, and hears
    /// the client id the caller chose.
    #[tokio::test]
    async fn connects_to_an_ipv6_listener_at_its_formatted_address() {
        let listener = match TcpListener::bind("[::1]:0").await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("no IPv6 loopback on this machine ({e}): nothing to connect to");
                return;
            }
        };
        let port = listener.local_addr().expect("bound").port();
        let broker = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.expect("a connection");
            let mut request = frame::read_frame(&mut stream, 1 << 20)
                .await
                .expect("a request");
            let (_, version) = frame::peek_api(&request).expect("a header");
            let header = frame::decode_header(&mut request, ApiKey::ApiVersions, version)
                .expect("a request header");
            let mut metadata = ApiVersion::default();
            metadata.api_key = ApiKey::Metadata as i16;
            metadata.max_version = 9;
            let mut response = ApiVersionsResponse::default();
            response.api_keys.push(metadata);
            let answer = frame::encode_response(
                header.correlation_id,
                ApiKey::ApiVersions.response_header_version(version),
                |b| response.encode(b, version).map_err(|e| e.to_string()),
            )
            .expect("encodes");
            stream.write_all(&answer).await.expect("answers");
            header.client_id.map(|id| id.to_string())
        });
        let addr = address("::1", port);
        let c = Connection::open(&addr, &ClientId::txn_marker_sender(7))
            .await
            .expect("connects");
        assert_eq!(c.version(ApiKey::Metadata).ok(), Some(9));
        assert_eq!(
            broker.await.expect("the broker task").as_deref(),
            Some("broker-7-txn-marker-sender")
        );
    }
}
