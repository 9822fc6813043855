//! A small Kafka client over kafka-protocol, for the bundled tools: one connection per broker,
//! versions negotiated with ApiVersions, partition leaders from Metadata.

use std::collections::HashMap;

use bytes::BytesMut;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    #[error("cannot reach {addr}: {source}")]
    Connect {
        addr: String,
        source: std::io::Error,
    },
    #[error("connection to {addr} failed: {source}")]
    Io {
        addr: String,
        source: std::io::Error,
    },
    #[error("protocol error talking to {addr}: {reason}")]
    Protocol { addr: String, reason: String },
    #[error("{0}")]
    Kafka(String),
    #[error("{0}")]
    Usage(String),
}

pub type Result<T> = std::result::Result<T, ToolError>;

/// Kafka's message for an error code, enough for a person reading a tool's output.
pub fn error_name(code: i16) -> String {
    match kafka_protocol::ResponseError::try_from_code(code) {
        Some(e) => format!("{e:?} ({code})"),
        None => format!("error {code}"),
    }
}

/// One broker connection.
pub struct Connection {
    addr: String,
    stream: TcpStream,
    next_correlation: i32,
    versions: HashMap<i16, (i16, i16)>,
}

impl Connection {
    pub async fn open(addr: &str) -> Result<Connection> {
        let stream = TcpStream::connect(addr)
            .await
            .map_err(|source| ToolError::Connect {
                addr: addr.to_string(),
                source,
            })?;
        let _ = stream.set_nodelay(true);
        let mut c = Connection {
            addr: addr.to_string(),
            stream,
            next_correlation: 1,
            versions: HashMap::new(),
        };
        let mut req = ApiVersionsRequest::default();
        req.client_software_name = StrBytes::from_static_str("odradek-tools");
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
        Ok(c)
    }

    /// The highest version both sides speak.
    pub fn version(&self, key: ApiKey) -> Result<i16> {
        let ours = key.valid_versions();
        let (min, max) =
            self.versions
                .get(&(key as i16))
                .copied()
                .ok_or_else(|| ToolError::Protocol {
                    addr: self.addr.clone(),
                    reason: format!("the broker does not support {key:?}"),
                })?;
        let v = max.min(ours.max);
        if v < min.max(ours.min) {
            return Err(ToolError::Protocol {
                addr: self.addr.clone(),
                reason: format!("no common version of {key:?}"),
            });
        }
        Ok(v)
    }

    pub async fn call(&mut self, key: ApiKey, request: RequestKind) -> Result<ResponseKind> {
        let version = self.version(key)?;
        self.send(key, version, request).await
    }

    /// Like `call`, at most at version `cap` (for requests built in an older shape, such as a
    /// Fetch that names topics rather than topic ids).
    pub async fn call_upto(
        &mut self,
        key: ApiKey,
        cap: i16,
        request: RequestKind,
    ) -> Result<ResponseKind> {
        let version = self.version(key)?.min(cap);
        self.send(key, version, request).await
    }

    async fn send(
        &mut self,
        key: ApiKey,
        version: i16,
        request: RequestKind,
    ) -> Result<ResponseKind> {
        let protocol = |reason: String| ToolError::Protocol {
            addr: self.addr.clone(),
            reason,
        };
        let mut header = RequestHeader::default();
        header.request_api_key = key as i16;
        header.request_api_version = version;
        header.correlation_id = self.next_correlation;
        header.client_id = Some(StrBytes::from_static_str("odradek-tools"));
        self.next_correlation += 1;
        let mut body = BytesMut::with_capacity(256);
        body.extend_from_slice(&[0; 4]);
        header
            .encode(&mut body, key.request_header_version(version))
            .map_err(|e| protocol(e.to_string()))?;
        request
            .encode(&mut body, version)
            .map_err(|e| protocol(e.to_string()))?;
        let size = (body.len() - 4) as i32;
        body[..4].copy_from_slice(&size.to_be_bytes());
        let io = |source| ToolError::Io {
            addr: self.addr.clone(),
            source,
        };
        self.stream.write_all(&body).await.map_err(io)?;
        let mut size = [0u8; 4];
        self.stream.read_exact(&mut size).await.map_err(io)?;
        let size = i32::from_be_bytes(size);
        if size < 0 {
            return Err(protocol(format!("negative response size {size}")));
        }
        let mut buf = BytesMut::zeroed(size as usize);
        self.stream.read_exact(&mut buf).await.map_err(io)?;
        let mut buf = buf.freeze();
        let rh = ResponseHeader::decode(&mut buf, key.response_header_version(version))
            .map_err(|e| protocol(e.to_string()))?;
        if rh.correlation_id != header.correlation_id {
            return Err(protocol(format!(
                "correlation id {} for request {}",
                rh.correlation_id, header.correlation_id
            )));
        }
        ResponseKind::decode(key, &mut buf, version).map_err(|e| protocol(e.to_string()))
    }
}

/// Connections to a cluster: the bootstrap broker for metadata and admin, and each leader.
pub struct Cluster {
    bootstrap: Connection,
    brokers: HashMap<i32, String>,
    leaders: HashMap<(String, i32), i32>,
    connections: HashMap<i32, Connection>,
}

impl Cluster {
    pub async fn connect(bootstrap: &str) -> Result<Cluster> {
        Ok(Cluster {
            bootstrap: Connection::open(bootstrap).await?,
            brokers: HashMap::new(),
            leaders: HashMap::new(),
            connections: HashMap::new(),
        })
    }

    pub fn admin(&mut self) -> &mut Connection {
        &mut self.bootstrap
    }

    /// Metadata for `topics` (all when `None`), remembering brokers and leaders.
    pub async fn metadata(
        &mut self,
        topics: Option<&[String]>,
        auto_create: bool,
    ) -> Result<MetadataResponse> {
        let mut req = MetadataRequest::default();
        req.topics = topics.map(|ts| {
            ts.iter()
                .map(|t| {
                    let mut mt = metadata_request::MetadataRequestTopic::default();
                    mt.name = Some(TopicName(StrBytes::from_string(t.clone())));
                    mt
                })
                .collect()
        });
        req.allow_auto_topic_creation = auto_create;
        let ResponseKind::Metadata(r) = self
            .bootstrap
            .call(ApiKey::Metadata, RequestKind::Metadata(req))
            .await?
        else {
            return Err(ToolError::Kafka("unexpected response to Metadata".into()));
        };
        for b in &r.brokers {
            self.brokers
                .insert(b.node_id.0, format!("{}:{}", &*b.host, b.port));
        }
        for t in &r.topics {
            if let Some(name) = &t.name {
                for p in &t.partitions {
                    self.leaders
                        .insert((name.0.to_string(), p.partition_index), p.leader_id.0);
                }
            }
        }
        Ok(r)
    }

    /// Partition numbers of `topic`, failing with Kafka's error when it has none.
    pub async fn partitions(&mut self, topic: &str, auto_create: bool) -> Result<Vec<i32>> {
        let r = self
            .metadata(Some(&[topic.to_string()]), auto_create)
            .await?;
        let t = r
            .topics
            .first()
            .ok_or_else(|| ToolError::Kafka(format!("no metadata for {topic}")))?;
        if t.error_code != 0 {
            return Err(ToolError::Kafka(format!(
                "topic {topic}: {}",
                error_name(t.error_code)
            )));
        }
        let mut ps: Vec<i32> = t.partitions.iter().map(|p| p.partition_index).collect();
        ps.sort_unstable();
        Ok(ps)
    }

    /// The connection to the leader of `topic`-`partition`.
    pub async fn leader(&mut self, topic: &str, partition: i32) -> Result<&mut Connection> {
        let id = *self
            .leaders
            .get(&(topic.to_string(), partition))
            .ok_or_else(|| ToolError::Kafka(format!("no leader known for {topic}-{partition}")))?;
        if !self.connections.contains_key(&id) {
            let addr =
                self.brokers.get(&id).cloned().ok_or_else(|| {
                    ToolError::Kafka(format!("broker {id} is not in the metadata"))
                })?;
            let c = Connection::open(&addr).await?;
            self.connections.insert(id, c);
        }
        self.connections
            .get_mut(&id)
            .ok_or_else(|| ToolError::Kafka("connection vanished".into()))
    }
}

/// The Java client's partitioner for keyed records: murmur2 with Kafka's seed, made positive.
pub fn partition_for_key(key: &[u8], partitions: usize) -> usize {
    let hash = murmur2::murmur2(key, 0x9747_b28c) as i32;
    ((hash & 0x7fff_ffff) as usize) % partitions.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Vectors from Kafka's own `UtilsTest.testMurmur2`.
    #[test]
    fn murmur2_matches_kafkas_java_implementation() {
        for (key, want) in [
            ("21", -973932308i32),
            ("foobar", -790332482),
            ("a-little-bit-long-string", -985981536),
            ("a-little-bit-longer-string", -1486304829),
            (
                "lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                -58897971,
            ),
        ] {
            assert_eq!(
                murmur2::murmur2(key.as_bytes(), 0x9747_b28c) as i32,
                want,
                "{key}"
            );
        }
        assert_eq!(
            partition_for_key(b"21", 7),
            ((-973932308i32 & 0x7fff_ffff) as usize) % 7
        );
    }
}
