//! A small Kafka client over kafka-protocol, for the bundled tools: one connection per broker,
//! versions negotiated with ApiVersions, partition leaders from Metadata.

use std::collections::{BTreeMap, HashMap};

use std::time::Instant;

use bytes::{Bytes, BytesMut};
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
        negotiate(&self.addr, &self.versions, key)
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
        let correlation = self.write_request(key, version, request).await?;
        self.read_response(key, version, correlation).await
    }

    /// Writes a request without waiting for its response (acks=0 produce expects none); returns
    /// its correlation id.
    pub async fn write_request(
        &mut self,
        key: ApiKey,
        version: i16,
        request: RequestKind,
    ) -> Result<i32> {
        let correlation = self.next_correlation;
        self.next_correlation = self.next_correlation.wrapping_add(1);
        let frame = encode_request(&self.addr, key, version, correlation, &request)?;
        self.stream
            .write_all(&frame)
            .await
            .map_err(|source| ToolError::Io {
                addr: self.addr.clone(),
                source,
            })?;
        Ok(correlation)
    }

    async fn read_response(
        &mut self,
        key: ApiKey,
        version: i16,
        correlation: i32,
    ) -> Result<ResponseKind> {
        let frame = read_frame(&self.addr, &mut self.stream).await?;
        decode_response(&self.addr, key, version, correlation, frame)
    }

    /// Hands the connection to a writer and a background reader that passes each response
    /// frame, tagged with `tag` and stamped with its arrival, to `responses`: several requests
    /// can then be in flight at once (Kafka answers them in order), on several connections.
    pub fn into_pipeline(self, tag: usize, responses: &Responses) -> Pipeline {
        let (mut read, write) = self.stream.into_split();
        let tx = responses.tx.clone();
        let addr = self.addr.clone();
        tokio::spawn(async move {
            loop {
                let frame = read_frame(&addr, &mut read).await;
                let failed = frame.is_err();
                if tx.send((tag, frame.map(|f| (f, Instant::now())))).is_err() || failed {
                    return;
                }
            }
        });
        Pipeline {
            addr: self.addr,
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
    write: tokio::net::tcp::OwnedWriteHalf,
    next_correlation: i32,
    versions: HashMap<i16, (i16, i16)>,
}

impl Pipeline {
    pub fn version(&self, key: ApiKey) -> Result<i16> {
        negotiate(&self.addr, &self.versions, key)
    }

    pub async fn send(&mut self, key: ApiKey, version: i16, request: RequestKind) -> Result<i32> {
        let correlation = self.next_correlation;
        self.next_correlation = self.next_correlation.wrapping_add(1);
        let frame = encode_request(&self.addr, key, version, correlation, &request)?;
        self.write
            .write_all(&frame)
            .await
            .map_err(|source| ToolError::Io {
                addr: self.addr.clone(),
                source,
            })?;
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

fn negotiate(addr: &str, versions: &HashMap<i16, (i16, i16)>, key: ApiKey) -> Result<i16> {
    let ours = key.valid_versions();
    let (min, max) = versions
        .get(&(key as i16))
        .copied()
        .ok_or_else(|| ToolError::Protocol {
            addr: addr.to_string(),
            reason: format!("the broker does not support {key:?}"),
        })?;
    let v = max.min(ours.max);
    if v < min.max(ours.min) {
        return Err(ToolError::Protocol {
            addr: addr.to_string(),
            reason: format!("no common version of {key:?}"),
        });
    }
    Ok(v)
}

/// One request as it goes on the wire: size, header, body.
fn encode_request(
    addr: &str,
    key: ApiKey,
    version: i16,
    correlation: i32,
    request: &RequestKind,
) -> Result<BytesMut> {
    let protocol = |reason: String| ToolError::Protocol {
        addr: addr.to_string(),
        reason,
    };
    let mut header = RequestHeader::default();
    header.request_api_key = key as i16;
    header.request_api_version = version;
    header.correlation_id = correlation;
    header.client_id = Some(StrBytes::from_static_str("odradek-tools"));
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
    Ok(body)
}

/// Responses larger than this are a broken or hostile peer, not a Kafka broker.
const MAX_RESPONSE_BYTES: i32 = 1 << 30;

async fn read_frame(addr: &str, stream: &mut (impl AsyncReadExt + Unpin)) -> Result<Bytes> {
    let io = |source| ToolError::Io {
        addr: addr.to_string(),
        source,
    };
    let mut size = [0u8; 4];
    stream.read_exact(&mut size).await.map_err(io)?;
    let size = i32::from_be_bytes(size);
    if !(0..=MAX_RESPONSE_BYTES).contains(&size) {
        return Err(ToolError::Protocol {
            addr: addr.to_string(),
            reason: format!("response size {size}"),
        });
    }
    let mut buf = BytesMut::zeroed(size as usize);
    stream.read_exact(&mut buf).await.map_err(io)?;
    Ok(buf.freeze())
}

fn decode_response(
    addr: &str,
    key: ApiKey,
    version: i16,
    correlation: i32,
    mut frame: Bytes,
) -> Result<ResponseKind> {
    let protocol = |reason: String| ToolError::Protocol {
        addr: addr.to_string(),
        reason,
    };
    let rh = ResponseHeader::decode(&mut frame, key.response_header_version(version))
        .map_err(|e| protocol(e.to_string()))?;
    if rh.correlation_id != correlation {
        return Err(protocol(format!(
            "correlation id {} for request {correlation}",
            rh.correlation_id
        )));
    }
    ResponseKind::decode(key, &mut frame, version).map_err(|e| protocol(e.to_string()))
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

    /// The broker leading `topic`-`partition`, as of the last metadata.
    pub fn leader_id(&self, topic: &str, partition: i32) -> Result<i32> {
        self.leaders
            .get(&(topic.to_string(), partition))
            .copied()
            .filter(|&id| id >= 0)
            .ok_or_else(|| ToolError::Kafka(format!("no leader known for {topic}-{partition}")))
    }

    /// Every broker of the last metadata, by id.
    pub fn broker_ids(&self) -> Vec<i32> {
        let mut ids: Vec<i32> = self.brokers.keys().copied().collect();
        ids.sort_unstable();
        ids
    }

    pub fn broker_addr(&self, id: i32) -> Result<String> {
        self.brokers
            .get(&id)
            .cloned()
            .ok_or_else(|| ToolError::Kafka(format!("broker {id} is not in the metadata")))
    }

    /// The connection to broker `id`, opened on first use.
    pub async fn broker(&mut self, id: i32) -> Result<&mut Connection> {
        if !self.connections.contains_key(&id) {
            let c = Connection::open(&self.broker_addr(id)?).await?;
            self.connections.insert(id, c);
        }
        self.connections
            .get_mut(&id)
            .ok_or_else(|| ToolError::Kafka("connection vanished".into()))
    }

    /// The connection to the leader of `topic`-`partition`.
    pub async fn leader(&mut self, topic: &str, partition: i32) -> Result<&mut Connection> {
        let id = self.leader_id(topic, partition)?;
        self.broker(id).await
    }

    /// The broker coordinating `group` (FindCoordinator), remembered like any broker. The first
    /// request for a cluster creates `__consumer_offsets`, answered with COORDINATOR_NOT_AVAILABLE
    /// until it has leaders: that is retried for a bounded time.
    pub async fn coordinator(&mut self, group: &str) -> Result<i32> {
        let deadline = Instant::now() + COORDINATOR_WAIT;
        loop {
            let mut req = FindCoordinatorRequest::default();
            req.key = StrBytes::from_string(group.to_string());
            // v4 batches keys in another field; one key is all the tools ask for.
            let ResponseKind::FindCoordinator(r) = self
                .bootstrap
                .call_upto(
                    ApiKey::FindCoordinator,
                    3,
                    RequestKind::FindCoordinator(req),
                )
                .await?
            else {
                return Err(ToolError::Kafka(
                    "unexpected response to FindCoordinator".into(),
                ));
            };
            match r.error_code {
                0 => {
                    let id = r.node_id.0;
                    self.brokers.insert(id, format!("{}:{}", &*r.host, r.port));
                    return Ok(id);
                }
                // COORDINATOR_NOT_AVAILABLE, COORDINATOR_LOAD_IN_PROGRESS: the offsets topic is
                // being created or loaded.
                15 | 14 if Instant::now() < deadline => {
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
                code => {
                    return Err(ToolError::Kafka(format!(
                        "no coordinator for group {group}: {}",
                        error_name(code)
                    )));
                }
            }
        }
    }

    /// ListOffsets for `partitions` of `topic` at `timestamp` (-2 earliest, -1 latest, else the
    /// first offset whose timestamp is at least it, or -1 when there is none), asking each leader.
    pub async fn list_offsets(
        &mut self,
        topic: &str,
        partitions: &[i32],
        timestamp: i64,
    ) -> Result<BTreeMap<i32, i64>> {
        let mut by_leader: BTreeMap<i32, Vec<i32>> = BTreeMap::new();
        for &p in partitions {
            by_leader
                .entry(self.leader_id(topic, p)?)
                .or_default()
                .push(p);
        }
        let mut out = BTreeMap::new();
        for (leader, ps) in by_leader {
            let mut lt = list_offsets_request::ListOffsetsTopic::default();
            lt.name = TopicName(StrBytes::from_string(topic.to_string()));
            for p in ps {
                let mut lp = list_offsets_request::ListOffsetsPartition::default();
                lp.partition_index = p;
                lp.timestamp = timestamp;
                lp.current_leader_epoch = -1;
                lp.max_num_offsets = 1;
                lt.partitions.push(lp);
            }
            let mut req = ListOffsetsRequest::default();
            req.replica_id = BrokerId(-1);
            req.topics.push(lt);
            let conn = self.broker(leader).await?;
            let ResponseKind::ListOffsets(r) = conn
                .call(ApiKey::ListOffsets, RequestKind::ListOffsets(req))
                .await?
            else {
                return Err(ToolError::Kafka(
                    "unexpected response to ListOffsets".into(),
                ));
            };
            for p in r.topics.iter().flat_map(|t| &t.partitions) {
                if p.error_code != 0 {
                    return Err(ToolError::Kafka(format!(
                        "{topic}-{}: {}",
                        p.partition_index,
                        error_name(p.error_code)
                    )));
                }
                let offset = p.old_style_offsets.first().copied().unwrap_or(p.offset);
                out.insert(p.partition_index, offset);
            }
        }
        Ok(out)
    }
}

/// How long `coordinator` waits for the offsets topic to get leaders.
const COORDINATOR_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// The newest Fetch version that names topics (later ones use topic ids), all the tools need.
pub const FETCH_VERSION_CAP: i16 = 12;

/// A Fetch of `topic` from `positions` (partition, offset), waiting up to `max_wait_ms` for data.
pub fn fetch_request(
    topic: &str,
    positions: &[(i32, i64)],
    max_wait_ms: i32,
    partition_max_bytes: i32,
) -> FetchRequest {
    let mut ft = fetch_request::FetchTopic::default();
    ft.topic = TopicName(StrBytes::from_string(topic.to_string()));
    for &(partition, offset) in positions {
        let mut fp = fetch_request::FetchPartition::default();
        fp.partition = partition;
        fp.fetch_offset = offset;
        fp.partition_max_bytes = partition_max_bytes;
        fp.current_leader_epoch = -1;
        fp.last_fetched_epoch = -1;
        fp.log_start_offset = -1;
        ft.partitions.push(fp);
    }
    let mut req = FetchRequest::default();
    req.replica_id = BrokerId(-1);
    req.max_wait_ms = max_wait_ms;
    req.min_bytes = 1;
    req.max_bytes = 50 << 20;
    req.session_epoch = -1;
    req.topics.push(ft);
    req
}

/// Each partition's record bytes from a Fetch response, failing on a partition's error.
pub fn fetched_records(topic: &str, response: ResponseKind) -> Result<Vec<(i32, Bytes)>> {
    let ResponseKind::Fetch(r) = response else {
        return Err(ToolError::Kafka("unexpected response to Fetch".into()));
    };
    if r.error_code != 0 {
        return Err(ToolError::Kafka(format!(
            "fetch {topic}: {}",
            error_name(r.error_code)
        )));
    }
    let mut out = Vec::new();
    for p in r.responses.into_iter().flat_map(|t| t.partitions) {
        if p.error_code != 0 {
            return Err(ToolError::Kafka(format!(
                "{topic}-{}: {}",
                p.partition_index,
                error_name(p.error_code)
            )));
        }
        out.push((p.partition_index, p.records.unwrap_or_default()));
    }
    Ok(out)
}

/// The complete batches at the front of fetched `records` (a fetch may end in a partial one).
pub fn complete_batches(records: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut pos = 0usize;
    std::iter::from_fn(move || {
        let size = usize::try_from(crate::log::batch::entry_size(&records[pos..])?).ok()?;
        let end = pos.checked_add(size)?;
        if size == 0 || end > records.len() {
            return None;
        }
        let batch = &records[pos..end];
        pos = end;
        Some(batch)
    })
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
