//! A cluster of odradek broker processes on one real ZooKeeper, and the Metadata calls tests
//! make against it.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use odradek::metadata::zk::ZkStore;

use super::broker_process::BrokerProcess;
use super::wire::Conn;
use super::zookeeper::ZooKeeperServer;

pub const SESSION_TIMEOUT_MS: u64 = 4000;

pub struct Cluster {
    pub zk: ZooKeeperServer,
    pub connect: String,
    pub brokers: BTreeMap<i32, BrokerProcess>,
    /// Broker overrides every broker of this cluster starts with.
    pub overrides: Vec<String>,
    pub _tmp: tempfile::TempDir,
}

impl Cluster {
    pub fn start(ids: &[i32]) -> Option<Cluster> {
        Self::start_with(ids, &[])
    }

    /// Like `start`, every broker with these overrides besides the cluster's own.
    pub fn start_with(ids: &[i32], overrides: &[&str]) -> Option<Cluster> {
        let zk = ZooKeeperServer::start()?;
        let connect = format!("{}/odradek", zk.connect_string());
        let tmp = tempfile::tempdir().unwrap();
        let mut c = Cluster {
            zk,
            connect,
            brokers: BTreeMap::new(),
            overrides: overrides.iter().map(|s| s.to_string()).collect(),
            _tmp: tmp,
        };
        for &id in ids {
            c.start_broker(id);
        }
        Some(c)
    }

    pub fn start_broker(&mut self, id: i32) {
        let dir = self._tmp.path().join(format!("broker-{id}"));
        let mut args = vec![
            format!("broker.id={id}"),
            format!("zookeeper.connect={}", self.connect),
            format!("zookeeper.session.timeout.ms={SESSION_TIMEOUT_MS}"),
        ];
        args.extend(self.overrides.iter().cloned());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let b = BrokerProcess::start(&dir, &args);
        self.brokers.insert(id, b);
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

pub fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

/// Metadata v12 from one broker; `None` asks for every topic. A broker that does not answer
/// (stopped) gives an empty response.
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
    let mut req = MetadataRequest::default();
    req.topics = topics.map(|t| {
        t.iter()
            .map(|n| {
                let mut mt = metadata_request::MetadataRequestTopic::default();
                mt.name = Some(name(n));
                mt
            })
            .collect()
    });
    req.allow_auto_topic_creation = false;
    match c
        .call(ApiKey::Metadata, 12, RequestKind::Metadata(req))
        .await
    {
        ResponseKind::Metadata(r) => r,
        other => panic!("{other:?}"),
    }
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
