//! What the bundled tools need beyond a connection (`crate::client`): a cluster's brokers and
//! partition leaders from Metadata, and the requests and answers the tools share.

use std::collections::{BTreeMap, HashMap};

use std::time::Instant;

use bytes::Bytes;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

// The tools name error codes the way every client of odradek does; re-exported so each tool
// takes what it needs from here.
pub use crate::client::error_name;
use crate::client::{ClientError, ClientId, Connection, Security, address};

#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("{0}")]
    Kafka(String),
    #[error("{0}")]
    Usage(String),
}

pub type Result<T> = std::result::Result<T, ToolError>;

/// Where a tool starts: `--bootstrap-server`, and how to connect (`--command-config`).
#[derive(Clone)]
pub struct Bootstrap {
    /// The brokers to start from, tried in this order until one answers.
    pub servers: Vec<String>,
    pub security: Security,
}

/// How long one bootstrap broker gets to accept the connection, answer ApiVersions and log in
/// before the next is tried (a host that drops SYNs would otherwise hold a tool for minutes).
const BOOTSTRAP_CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);

impl Bootstrap {
    /// A connection to the first bootstrap broker that answers, trying each once, in order, as
    /// Kafka's clients do with `bootstrap.servers`. A refused SASL login ends the search: every
    /// broker of a cluster shares the configuration that refused it.
    pub async fn connect(&self) -> Result<Connection> {
        let mut failures = Vec::new();
        for addr in &self.servers {
            let attempt =
                tokio::time::timeout(BOOTSTRAP_CONNECT_TIMEOUT, connect(addr, &self.security))
                    .await;
            match attempt {
                Ok(Ok(conn)) => return Ok(conn),
                Ok(Err(ToolError::Client(e))) if e.is_authentication() => {
                    return Err(ToolError::Client(e));
                }
                // With one server its own error is the clearest message.
                Ok(Err(e)) if self.servers.len() == 1 => return Err(e),
                Ok(Err(e)) => failures.push(e.to_string()),
                Err(_) => failures.push(format!(
                    "{addr}: no answer within {} s",
                    BOOTSTRAP_CONNECT_TIMEOUT.as_secs()
                )),
            }
        }
        Err(ToolError::Kafka(format!(
            "no bootstrap server answered: {}",
            failures.join("; ")
        )))
    }
}

/// The flags every tool that talks to brokers takes.
#[derive(clap::Args)]
pub struct ConnectArgs {
    /// Brokers to start from, host1:port1[,host2:port2...], tried in turn until one answers.
    #[arg(long, value_name = "HOST:PORT[,HOST:PORT...]")]
    bootstrap_server: String,
    /// A Kafka client properties file, as Kafka's tools take it: `security.protocol`, `ssl.*`,
    /// `sasl.mechanism` and `sasl.jaas.config`.
    #[arg(long, visible_aliases = ["producer.config", "consumer.config"])]
    command_config: Option<std::path::PathBuf>,
}

impl ConnectArgs {
    pub fn bootstrap(&self) -> Result<Bootstrap> {
        let security = match &self.command_config {
            None => Security::default(),
            Some(path) => {
                let props = crate::config::properties::read_file(path)
                    .map_err(|e| ToolError::Usage(e.to_string()))?;
                crate::config::security::client_security(&props)
                    .map_err(|e| ToolError::Usage(e.to_string()))?
            }
        };
        let servers = crate::client::parse_addresses(&self.bootstrap_server)
            .map_err(|e| ToolError::Usage(format!("--bootstrap-server: {e}")))?;
        Ok(Bootstrap { servers, security })
    }
}

/// A connection to the broker at `addr`, introduced as the tools.
pub async fn connect(addr: &str, security: &Security) -> Result<Connection> {
    Ok(Connection::open_secured(addr, &ClientId::tools(), security).await?)
}

/// Connections to a cluster: the bootstrap broker for metadata and admin, and each leader.
pub struct Cluster {
    security: Security,
    bootstrap: Connection,
    brokers: HashMap<i32, String>,
    leaders: HashMap<(String, i32), i32>,
    connections: HashMap<i32, Connection>,
}

impl Cluster {
    pub async fn connect(bootstrap: &Bootstrap) -> Result<Cluster> {
        Ok(Cluster {
            security: bootstrap.security.clone(),
            bootstrap: bootstrap.connect().await?,
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
            self.brokers.insert(b.node_id.0, address(&b.host, b.port));
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

    /// A new connection to broker `id` (the tool keeps it itself).
    pub async fn open(&self, id: i32) -> Result<Connection> {
        connect(&self.broker_addr(id)?, &self.security).await
    }

    /// The connection to broker `id`, opened on first use.
    pub async fn broker(&mut self, id: i32) -> Result<&mut Connection> {
        if !self.connections.contains_key(&id) {
            let c = self.open(id).await?;
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

    /// The broker coordinating `group` (FindCoordinator), remembered like any broker, once it
    /// has loaded the group. The first request for a cluster creates `__consumer_offsets`,
    /// answered with COORDINATOR_NOT_AVAILABLE until it has leaders, and a coordinator just
    /// elected loads its groups in the background, answering COORDINATOR_LOAD_IN_PROGRESS: both
    /// are waited out for a bounded time, as Kafka's clients retry them.
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
                    self.brokers.insert(id, address(&r.host, r.port));
                    if self.loaded(id, group).await? || Instant::now() >= deadline {
                        return Ok(id);
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
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

    /// Whether coordinator `id` has loaded `group`: an OffsetFetch of no partitions is
    /// answered COORDINATOR_LOAD_IN_PROGRESS until it has, and costs nothing else.
    async fn loaded(&mut self, id: i32, group: &str) -> Result<bool> {
        let r = self.offset_fetch(id, group, Some(Vec::new())).await?;
        // COORDINATOR_LOAD_IN_PROGRESS
        Ok(r.error_code != 14)
    }

    /// OffsetFetch of `group` at its coordinator `id`: `topics` None asks for every committed
    /// partition.
    pub async fn offset_fetch(
        &mut self,
        id: i32,
        group: &str,
        topics: Option<Vec<offset_fetch_request::OffsetFetchRequestTopic>>,
    ) -> Result<OffsetFetchResponse> {
        let mut req = OffsetFetchRequest::default();
        req.group_id = GroupId(StrBytes::from_string(group.to_string()));
        req.topics = topics;
        // v8 moves the group into a list; v7 is the newest with this shape.
        let ResponseKind::OffsetFetch(r) = self
            .broker(id)
            .await?
            .call_upto(ApiKey::OffsetFetch, 7, RequestKind::OffsetFetch(req))
            .await?
        else {
            return Err(ToolError::Kafka(
                "unexpected response to OffsetFetch".into(),
            ));
        };
        Ok(r)
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
