//! Several odradek brokers and one real ZooKeeper, with the wire helpers cluster tests share:
//! Metadata from one broker, leaders as it sees them, raw produce, the bundled tools.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use kafka_protocol::messages::*;
use odradek::metadata::MetadataStore;
use odradek::metadata::zk::ZkStore;

use super::broker_process::BrokerProcess;
use super::wire::{Conn, produce_request};
use super::zookeeper::ZooKeeperServer;

pub const SESSION_TIMEOUT_MS: u64 = 4000;
pub const LEADER_NOT_AVAILABLE: i16 = 5;
pub const NOT_LEADER_OR_FOLLOWER: i16 = 6;

pub struct Cluster {
    pub zk: ZooKeeperServer,
    pub connect: String,
    pub brokers: BTreeMap<i32, BrokerProcess>,
    /// Overrides every broker of this cluster starts with.
    pub extra: Vec<String>,
    /// Overrides one broker starts with, after `extra` (its `broker.rack`, say).
    pub per_broker: BTreeMap<i32, Vec<String>>,
    /// Brokers run as a real Apache Kafka from this `KAFKA_HOME` (`super::kafka`).
    pub kafka: BTreeMap<i32, std::path::PathBuf>,
    pub _tmp: tempfile::TempDir,
}

impl Cluster {
    pub fn start(ids: &[i32]) -> Option<Cluster> {
        Self::start_with(ids, &[])
    }

    /// Like `start`, every broker with the `extra` overrides too.
    pub fn start_with(ids: &[i32], extra: &[&str]) -> Option<Cluster> {
        Self::start_each(ids.iter().map(|&id| (id, [""; 0])), extra)
    }

    /// Like `start_with`, each broker also with its own overrides (kept for its restarts),
    /// started in the order given. The overrides may be owned strings or borrowed ones.
    pub fn start_each<O, S>(
        brokers: impl IntoIterator<Item = (i32, O)>,
        extra: &[&str],
    ) -> Option<Cluster>
    where
        O: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let brokers = owned(brokers);
        let ids: Vec<i32> = brokers.iter().map(|(id, _)| *id).collect();
        let mut c = Self::prepare(brokers, extra)?;
        for id in ids {
            c.start_broker(id);
        }
        Some(c)
    }

    /// ZooKeeper alone, its brokers (with their overrides) started later by `start_broker`: a
    /// test writes first what must be there before any broker starts (the inter-broker
    /// user's SCRAM credentials, say).
    pub fn prepare<O, S>(
        brokers: impl IntoIterator<Item = (i32, O)>,
        extra: &[&str],
    ) -> Option<Cluster>
    where
        O: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let zk = ZooKeeperServer::start()?;
        let connect = format!("{}/odradek", zk.connect_string());
        let tmp = tempfile::tempdir().unwrap();
        Some(Cluster {
            zk,
            connect,
            brokers: BTreeMap::new(),
            extra: extra.iter().map(|s| s.to_string()).collect(),
            per_broker: owned(brokers).into_iter().collect(),
            kafka: BTreeMap::new(),
            _tmp: tmp,
        })
    }

    pub fn start_broker(&mut self, id: i32) {
        let connect = self.connect.clone();
        self.start_broker_via(id, &connect);
    }

    /// A broker reaching ZooKeeper through `connect` (a relay that can be cut, say).
    pub fn start_broker_via(&mut self, id: i32, connect: &str) {
        let dir = self._tmp.path().join(format!("broker-{id}"));
        let overrides = self.overrides(id, connect);
        let overrides: Vec<&str> = overrides.iter().map(String::as_str).collect();
        let b = match self.kafka.get(&id) {
            Some(home) => BrokerProcess::start_kafka(home, &dir, &overrides),
            None => BrokerProcess::start(&dir, &overrides),
        };
        self.brokers.insert(id, b);
    }

    /// A rolling restart with a changed `server.properties`: broker `id` stops (SIGTERM, so
    /// with controlled shutdown), its own overrides become `overrides`, and it starts again on
    /// the same port and data directory.
    pub fn restart_with(&mut self, id: i32, overrides: &[&str]) {
        let port = self.port(id);
        if let Some(b) = self.brokers.get_mut(&id) {
            b.stop(false);
        }
        self.per_broker
            .insert(id, overrides.iter().map(|s| s.to_string()).collect());
        let dir = self._tmp.path().join(format!("broker-{id}"));
        let connect = self.connect.clone();
        let overrides = self.overrides(id, &connect);
        let overrides: Vec<&str> = overrides.iter().map(String::as_str).collect();
        let b = BrokerProcess::start_on_port(&dir, port, &overrides);
        self.brokers.insert(id, b);
    }

    fn overrides(&self, id: i32, connect: &str) -> Vec<String> {
        let mut overrides = vec![
            format!("broker.id={id}"),
            format!("zookeeper.connect={connect}"),
            format!("zookeeper.session.timeout.ms={SESSION_TIMEOUT_MS}"),
        ];
        overrides.extend(self.extra.iter().cloned());
        overrides.extend(self.per_broker.get(&id).into_iter().flatten().cloned());
        overrides
    }

    pub fn port(&self, id: i32) -> u16 {
        self.brokers[&id].port
    }

    pub fn bootstrap(&self, id: i32) -> String {
        self.brokers[&id].bootstrap()
    }

    pub fn logs(&self) -> String {
        let mut out = String::new();
        for (id, b) in &self.brokers {
            out.push_str(&format!("--- broker {id}\n{}\n", b.log_tail()));
        }
        out
    }

    pub async fn store(&self) -> ZkStore {
        ZkStore::connect(
            &self.connect,
            Duration::from_secs(10),
            Duration::from_secs(10),
        )
        .await
        .unwrap()
    }

    /// Until broker `id`'s metadata shows `partitions` partitions of `topic`, each with a leader.
    pub async fn wait_led(&self, id: i32, topic: &str, partitions: usize) {
        let port = self.port(id);
        wait_until(
            Duration::from_secs(30),
            &format!("broker {id} sees {topic} led"),
            || async move {
                let l = leaders(port, topic).await;
                l.len() == partitions && l.values().all(|(l, e)| *l >= 0 && *e == 0)
            },
        )
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", self.logs()));
    }

    /// Until every running broker's metadata lists exactly `ids` as live.
    pub async fn wait_for_brokers(&self, ids: &[i32]) {
        let want: BTreeSet<i32> = ids.iter().copied().collect();
        for id in ids {
            let port = self.port(*id);
            let want = &want;
            wait_until(
                Duration::from_secs(30),
                &format!("broker {id} sees {want:?}"),
                || async move {
                    let md = metadata(port, Some(&[])).await;
                    md.brokers
                        .iter()
                        .map(|b| b.node_id.0)
                        .collect::<BTreeSet<_>>()
                        == *want
                },
            )
            .await
            .unwrap_or_else(|e| panic!("{e}\n{}", self.logs()));
        }
    }
}

pub async fn wait_until<F, Fut>(limit: Duration, what: &str, mut check: F) -> Result<(), String>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    loop {
        if check().await {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("timed out after {limit:?} waiting until {what}"));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Cluster tests name topics with the wire helper's constructor.
pub use super::wire::topic_name as name;

/// Metadata from one broker, v12 or the broker's newest if older (a real Kafka 2.4 answers up
/// to v9); `None` asks for every topic. A broker that does not answer (stopped) gives an empty
/// response.
pub async fn metadata(port: u16, topics: Option<&[&str]>) -> MetadataResponse {
    let Ok(Ok(stream)) = tokio::time::timeout(
        Duration::from_secs(2),
        tokio::net::TcpStream::connect(("127.0.0.1", port)),
    )
    .await
    else {
        return MetadataResponse::default();
    };
    drop(stream);
    let mut c = Conn::connect(port).await;
    let versions: ApiVersionsResponse = c.send(3, ApiVersionsRequest::default()).await;
    let version = versions
        .api_keys
        .iter()
        .find(|k| k.api_key == ApiKey::Metadata as i16)
        .map_or(12, |k| k.max_version.min(12));
    c.send(version, super::wire::metadata_request(topics, false))
        .await
}

/// partition -> (leader, error) for `topic` as broker `port` sees it.
pub async fn leaders(port: u16, topic: &str) -> BTreeMap<i32, (i32, i16)> {
    let md = metadata(port, Some(&[topic])).await;
    md.topics
        .iter()
        .flat_map(|t| t.partitions.iter())
        .map(|p| (p.partition_index, (p.leader_id.0, p.error_code)))
        .collect()
}

pub fn run_tool(args: &[&str]) -> String {
    let (ok, out, err) = super::odradek(args, None);
    assert!(ok, "odradek {args:?} failed:\n{out}\n{err}");
    out
}

pub fn create_topic(bootstrap: &str, topic: &str, partitions: i32) {
    create_topic_by_tool(bootstrap, topic, partitions, None, &[]);
}

/// Creates `topic` with the bundled tool: `partitions` partitions of `rf` replicas, `configs`
/// as `key=value`.
pub fn create_replicated_topic(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    rf: i16,
    configs: &[&str],
) {
    create_topic_by_tool(bootstrap, topic, partitions, Some(rf), configs);
}

/// `odradek topics --create`; without `rf` the broker's `default.replication.factor` applies.
fn create_topic_by_tool(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    rf: Option<i16>,
    configs: &[&str],
) {
    let partitions = partitions.to_string();
    let rf = rf.map(|rf| rf.to_string());
    let mut args = vec![
        "topics",
        "--bootstrap-server",
        bootstrap,
        "--create",
        "--topic",
        topic,
        "--partitions",
        &partitions,
    ];
    if let Some(rf) = &rf {
        args.extend(["--replication-factor", rf]);
    }
    for c in configs {
        args.extend(["--config", c]);
    }
    run_tool(&args);
}

/// Sends ten records (acks=all) to every partition of `topic`, each to the leader broker `via`
/// names; the number acknowledged.
pub async fn produce_each_partition(cluster: &Cluster, via: i32, topic: &str) -> usize {
    let mut acked = 0;
    for (p, (leader, error)) in leaders(cluster.port(via), topic).await {
        assert_eq!(error, 0, "{topic}-{p} has no leader:\n{}", cluster.logs());
        // `via` may name a leader before the leader has heard it leads; a producer retries
        // what is refused before the append (UNKNOWN_TOPIC_OR_PARTITION,
        // NOT_LEADER_OR_FOLLOWER) until the leader knows.
        let deadline = Instant::now() + Duration::from_secs(20);
        let code = loop {
            let code = produce_records(cluster.port(leader), topic, p, 10).await;
            if ![3, 6].contains(&code) || Instant::now() > deadline {
                break code;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert_eq!(
            code,
            0,
            "{topic}-{p} at broker {leader}:\n{}",
            cluster.logs()
        );
        acked += 10;
    }
    acked
}

/// `odradek produce` of `lines` (one record a line) to `topic`, with `extra` options.
pub fn produce_lines(bootstrap: &str, topic: &str, extra: &[&str], lines: &str) {
    let mut args = vec!["produce", "--bootstrap-server", bootstrap, "--topic", topic];
    args.extend_from_slice(extra);
    let (ok, out, err) = super::odradek(&args, Some(lines));
    assert!(ok, "{out}{err}");
}

pub fn consume_all(bootstrap: &str, topic: &str) -> Vec<String> {
    let out = run_tool(&[
        "consume",
        "--bootstrap-server",
        bootstrap,
        "--topic",
        topic,
        "--from-beginning",
        "--timeout-ms",
        "2000",
    ]);
    out.lines().map(str::to_string).collect()
}

/// A raw produce of one batch of `n` records to `partition` at broker `port`, acks=all: its
/// error code. The records carry the current time: with timestamp 0 the 7-day time retention
/// would delete them at the first retention check.
pub async fn produce_records(port: u16, topic: &str, partition: i32, n: usize) -> i16 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let req = produce_request(topic, partition, super::client_batch(0, n, 10, now, 0), -1);
    let mut c = Conn::connect(port).await;
    c.send(9, req).await.responses[0].partition_responses[0].error_code
}

pub async fn controller_epoch(store: &ZkStore) -> i32 {
    let (data, _) = store.get("/controller_epoch").await.unwrap().unwrap();
    String::from_utf8(data.unwrap()).unwrap().parse().unwrap()
}

/// Each broker's overrides as the cluster keeps them.
fn owned<O, S>(brokers: impl IntoIterator<Item = (i32, O)>) -> Vec<(i32, Vec<String>)>
where
    O: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    brokers
        .into_iter()
        .map(|(id, o)| (id, o.into_iter().map(|s| s.as_ref().to_string()).collect()))
        .collect()
}
