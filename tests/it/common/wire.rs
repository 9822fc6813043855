//! A minimal Kafka client over a raw socket, for tests that need to send exactly what they
//! mean (including garbage) and see exactly what comes back.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, Request, StrBytes};
use odradek::config::BrokerConfig;
use odradek::server::Broker;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub struct Conn {
    pub stream: TcpStream,
    next_id: i32,
    /// The client id every request carries (quotas are per client id).
    pub client_id: &'static str,
}

impl Conn {
    pub async fn connect(port: u16) -> Conn {
        let stream = TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("connect");
        Conn {
            stream,
            next_id: 1,
            client_id: "odradek-test",
        }
    }

    pub async fn send_raw(&mut self, bytes: &[u8]) {
        let _ = self.stream.write_all(bytes).await;
    }

    /// Sends a request and returns its decoded response.
    pub async fn call(&mut self, key: ApiKey, version: i16, request: RequestKind) -> ResponseKind {
        let mut response = self
            .exchange(key, version, |body| request.encode(body, version).unwrap())
            .await;
        ResponseKind::decode(key, &mut response, version).unwrap()
    }

    /// Sends a request and returns its typed response (the request type names the API).
    pub async fn send<R: Request>(&mut self, version: i16, request: R) -> R::Response {
        let key = ApiKey::try_from(R::KEY).expect("a known API key");
        let mut response = self
            .exchange(key, version, |body| request.encode(body, version).unwrap())
            .await;
        R::Response::decode(&mut response, version).unwrap()
    }

    /// Sends a request without waiting for its answer; returns its correlation id.
    pub async fn send_request(&mut self, key: ApiKey, version: i16, request: RequestKind) -> i32 {
        self.send_frame(key, version, |body| request.encode(body, version).unwrap())
            .await
    }

    /// Sends a request and returns its response body after the header.
    async fn exchange(
        &mut self,
        key: ApiKey,
        version: i16,
        encode: impl FnOnce(&mut BytesMut),
    ) -> Bytes {
        let id = self.send_frame(key, version, encode).await;
        self.read_body(key, version, id).await
    }

    /// Reads the response to request `id`: its body after the header.
    async fn read_body(&mut self, key: ApiKey, version: i16, id: i32) -> Bytes {
        let mut response = self.read_frame().await.expect("a response");
        let rh =
            ResponseHeader::decode(&mut response, key.response_header_version(version)).unwrap();
        assert_eq!(rh.correlation_id, id);
        response
    }

    /// Reads and decodes the response to request `id` sent with `send_request`.
    pub async fn read_response(&mut self, key: ApiKey, version: i16, id: i32) -> ResponseKind {
        let mut response = self.read_body(key, version, id).await;
        ResponseKind::decode(key, &mut response, version).unwrap()
    }

    /// Whether a response starts arriving within `limit` (nothing is consumed).
    pub async fn answers_within(&mut self, limit: Duration) -> bool {
        let mut first = [0u8; 1];
        matches!(
            tokio::time::timeout(limit, self.stream.peek(&mut first)).await,
            Ok(Ok(n)) if n > 0
        )
    }

    async fn send_frame(
        &mut self,
        key: ApiKey,
        version: i16,
        encode: impl FnOnce(&mut BytesMut),
    ) -> i32 {
        let id = self.next_id;
        self.next_id += 1;
        let mut header = RequestHeader::default();
        header.request_api_key = key as i16;
        header.request_api_version = version;
        header.correlation_id = id;
        header.client_id = Some(StrBytes::from_static_str(self.client_id));
        let mut body = BytesMut::new();
        header
            .encode(&mut body, key.request_header_version(version))
            .unwrap();
        encode(&mut body);
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

/// A broker in this process on an ephemeral loopback port, as broker 0 with its data in `dir`.
pub async fn start_broker(dir: &std::path::Path, extra: &[&str]) -> Broker {
    let mut overrides = vec![
        "listeners=PLAINTEXT://127.0.0.1:0".to_string(),
        format!("log.dirs={}", dir.display()),
        "broker.id=0".to_string(),
        "metrics.port=0".to_string(),
    ];
    overrides.extend(extra.iter().map(|s| s.to_string()));
    let config = BrokerConfig::load(None, &overrides).unwrap();
    Broker::start(config).await.unwrap()
}

/// Where a broker keeps its metadata: tests whose subject is not ZooKeeper run the same body on
/// both stores (`STORES`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Store {
    /// The znode tree in the data directory (no `zookeeper.connect`).
    Embedded,
    /// A real ZooKeeper server of the test's own.
    ZooKeeper,
}

pub const STORES: [Store; 2] = [Store::Embedded, Store::ZooKeeper];

/// A broker as `start_broker` starts it, on `store`. The ZooKeeper server, when there is one,
/// lives as long as the returned value; `None` when ZooKeeper cannot run here (reported).
pub async fn start_broker_on(
    store: Store,
    dir: &std::path::Path,
    extra: &[&str],
) -> Option<(Broker, Option<super::zookeeper::ZooKeeperServer>)> {
    let zk = match store {
        Store::Embedded => None,
        Store::ZooKeeper => Some(super::zookeeper::ZooKeeperServer::start()?),
    };
    let connect = zk
        .as_ref()
        .map(|zk| format!("zookeeper.connect={}/odradek", zk.connect_string()));
    let mut all: Vec<&str> = extra.to_vec();
    if let Some(c) = &connect {
        all.push(c);
    }
    let broker = start_broker(dir, &all).await;
    assert_eq!(
        broker.api().config.zookeeper_connect.is_some(),
        store == Store::ZooKeeper,
        "the broker runs on the store asked for"
    );
    Some((broker, zk))
}

/// A protocol string (names, keys, ids in requests) from `v`.
pub fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

pub fn topic_name(name: &str) -> TopicName {
    TopicName(s(name))
}

/// CreateTopics v5 of one topic, replication factor 1, with `configs` overrides.
/// A Metadata request for `topics` (`None`: every topic), creating missing ones only when
/// `allow_auto_create` (and the broker's `auto.create.topics.enable`) says so.
pub fn metadata_request(topics: Option<&[&str]>, allow_auto_create: bool) -> MetadataRequest {
    let mut r = MetadataRequest::default();
    r.topics = topics.map(|t| {
        t.iter()
            .map(|n| {
                let mut mt = metadata_request::MetadataRequestTopic::default();
                mt.name = Some(topic_name(n));
                mt
            })
            .collect()
    });
    r.allow_auto_topic_creation = allow_auto_create;
    r
}

pub async fn create_topic_result(
    c: &mut Conn,
    name: &str,
    partitions: i32,
    configs: &[(&str, &str)],
) -> create_topics_response::CreatableTopicResult {
    let mut t = create_topics_request::CreatableTopic::default();
    t.name = topic_name(name);
    t.num_partitions = partitions;
    t.replication_factor = 1;
    for (k, v) in configs {
        let mut cfg = create_topics_request::CreatableTopicConfig::default();
        cfg.name = StrBytes::from_string(k.to_string());
        cfg.value = Some(StrBytes::from_string(v.to_string()));
        t.configs.push(cfg);
    }
    let mut r = CreateTopicsRequest::default();
    r.topics.push(t);
    r.timeout_ms = 5000;
    c.send(5, r).await.topics.remove(0)
}

/// CreateTopics v5 of `name` with `assignments` as (partition, brokers).
pub async fn create_assigned(
    c: &mut Conn,
    name: &str,
    partitions: i32,
    replication_factor: i16,
    assignments: &[(i32, &[i32])],
    validate_only: bool,
) -> create_topics_response::CreatableTopicResult {
    let mut t = create_topics_request::CreatableTopic::default();
    t.name = topic_name(name);
    t.num_partitions = partitions;
    t.replication_factor = replication_factor;
    for (p, brokers) in assignments {
        let mut a = create_topics_request::CreatableReplicaAssignment::default();
        a.partition_index = *p;
        a.broker_ids = brokers.iter().map(|b| BrokerId(*b)).collect();
        t.assignments.push(a);
    }
    let mut r = CreateTopicsRequest::default();
    r.topics.push(t);
    r.timeout_ms = 5000;
    r.validate_only = validate_only;
    c.send(5, r).await.topics.remove(0)
}

/// CreateTopics of one topic without overrides: its error code.
/// The broker's Prometheus page at metrics port `port`, or None when it does not answer in
/// full within 10 s.
pub async fn metrics_page(port: u16) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.ok()?;
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .ok()?;
    let mut page = String::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_string(&mut page))
        .await
        .ok()?
        .ok()?;
    Some(page)
}

/// Waits until the group coordinator answers from loaded partitions: `__consumer_offsets`
/// (created by the first FindCoordinator) loads in the background once led, as in Kafka, and
/// until every partition has, ListGroups answers COORDINATOR_LOAD_IN_PROGRESS.
pub async fn wait_for_group_coordinator(c: &mut Conn) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let mut r = FindCoordinatorRequest::default();
        r.key = StrBytes::from_static_str("any");
        let found = c.send(3, r).await.error_code;
        let listed = c.send(4, ListGroupsRequest::default()).await.error_code;
        if found == 0 && listed == 0 {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the group coordinator never loaded: FindCoordinator {found}, ListGroups {listed}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub async fn create_topic(c: &mut Conn, name: &str, partitions: i32) -> i16 {
    create_topic_result(c, name, partitions, &[])
        .await
        .error_code
}

/// Creates a one-partition topic with `configs` overrides; panics unless it is created.
pub async fn create_topic_with(c: &mut Conn, name: &str, configs: &[(&str, &str)]) {
    let r = create_topic_result(c, name, 1, configs).await;
    assert_eq!(r.error_code, 0, "creating {name}: {:?}", r.error_message);
}

pub async fn produce(
    c: &mut Conn,
    topic: &str,
    partition: i32,
    records: Bytes,
) -> produce_response::PartitionProduceResponse {
    produce_with_acks(c, topic, partition, records, -1).await
}

pub async fn produce_with_acks(
    c: &mut Conn,
    topic: &str,
    partition: i32,
    records: Bytes,
    acks: i16,
) -> produce_response::PartitionProduceResponse {
    let r = produce_request(topic, partition, records, acks);
    c.send(8, r)
        .await
        .responses
        .remove(0)
        .partition_responses
        .remove(0)
}

/// A Produce of `records` to one partition, timeout 5 s.
pub fn produce_request(topic: &str, partition: i32, records: Bytes, acks: i16) -> ProduceRequest {
    let mut pd = produce_request::PartitionProduceData::default();
    pd.index = partition;
    pd.records = Some(records);
    let mut td = produce_request::TopicProduceData::default();
    td.name = topic_name(topic);
    td.partition_data.push(pd);
    let mut r = ProduceRequest::default();
    r.acks = acks;
    r.timeout_ms = 5000;
    r.topic_data.push(td);
    r
}

/// An idempotent (not transactional) producer's id and epoch from InitProducerId v4, as a
/// Java producer with `enable.idempotence` asks for them.
pub async fn init_idempotent_producer(c: &mut Conn) -> (i64, i16) {
    let mut init = InitProducerIdRequest::default();
    init.transactional_id = None;
    init.transaction_timeout_ms = 60_000;
    init.producer_id = ProducerId(-1);
    init.producer_epoch = -1;
    let init = c.send(4, init).await;
    assert_eq!(init.error_code, 0, "InitProducerId");
    (init.producer_id.0, init.producer_epoch)
}

pub async fn latest(c: &mut Conn, topic: &str, partition: i32) -> i64 {
    list_offset(c, topic, partition, -1).await.offset
}

/// ListOffsets v5 for one partition: -1 latest, -2 earliest, or a timestamp.
pub async fn list_offset(
    c: &mut Conn,
    topic: &str,
    partition: i32,
    timestamp: i64,
) -> list_offsets_response::ListOffsetsPartitionResponse {
    let r = list_offsets_request(topic, partition, timestamp);
    c.send(5, r).await.topics.remove(0).partitions.remove(0)
}

/// A consumer's ListOffsets request for one partition at `timestamp` (-1 latest, -2 earliest,
/// -3 the largest timestamp, or a timestamp).
pub fn list_offsets_request(topic: &str, partition: i32, timestamp: i64) -> ListOffsetsRequest {
    let mut p = list_offsets_request::ListOffsetsPartition::default();
    p.partition_index = partition;
    p.timestamp = timestamp;
    let mut t = list_offsets_request::ListOffsetsTopic::default();
    t.name = topic_name(topic);
    t.partitions.push(p);
    let mut r = ListOffsetsRequest::default();
    r.replica_id = BrokerId(-1);
    r.topics.push(t);
    r
}

pub fn fetch_request(topic: &str, partition: i32, offset: i64, max_wait_ms: i32) -> FetchRequest {
    let mut p = fetch_request::FetchPartition::default();
    p.partition = partition;
    p.fetch_offset = offset;
    p.partition_max_bytes = 1 << 20;
    let mut t = fetch_request::FetchTopic::default();
    t.topic = topic_name(topic);
    t.partitions.push(p);
    let mut r = FetchRequest::default();
    r.replica_id = BrokerId(-1);
    r.max_wait_ms = max_wait_ms;
    r.min_bytes = 1;
    r.max_bytes = 50 << 20;
    r.topics.push(t);
    r
}

pub async fn fetch(
    c: &mut Conn,
    topic: &str,
    partition: i32,
    offset: i64,
    max_wait_ms: i32,
) -> fetch_response::PartitionData {
    c.send(11, fetch_request(topic, partition, offset, max_wait_ms))
        .await
        .responses
        .remove(0)
        .partitions
        .remove(0)
}
