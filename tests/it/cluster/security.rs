//! A secured cluster on a real ZooKeeper: odradek processes whose only listeners are SASL_SSL,
//! reaching each other (controller channel, replica fetchers, controlled shutdown) through the
//! inter-broker listener with SCRAM-SHA-512 credentials that are in ZooKeeper before any broker
//! starts, written as Kafka's `kafka-configs.sh --zookeeper` writes them. Replication and the
//! failover of a leader and of the controller; no plaintext port anywhere; SCRAM users coming
//! and going through ZooKeeper; a broker with the wrong inter-broker password. The cluster that
//! replicates and fails over does so with the ACL authorizer on.
//!
//! Clients are odradek's own (`Connection::open_secured`), over TLS with SCRAM, on the
//! EXTERNAL listener; the brokers use INTERNAL among themselves.

use crate::common;
use crate::security::scram::{ALICE, write_user};
use crate::security::{Pki, SCRAM_JAAS, connect, login, tls_client};

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use common::broker_process::free_port;
use common::cluster::{Cluster, SESSION_TIMEOUT_MS, controller_epoch, name, wait_until};
use common::wire::{fetch_request, produce_request};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use odradek::client::{Connection, Security};
use odradek::log::batch::{BatchHeader, entry_size};
use odradek::metadata::MetadataStore;
use odradek::security::sasl::Mechanism;
use odradek::security::scram::ScramCredential;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The broker's own credentials on the inter-broker listener: `username`/`password` of the
/// inter-broker mechanism's JAAS entry, as in Kafka.
fn broker_jaas(password: &str) -> String {
    format!(
        r#"org.apache.kafka.common.security.scram.ScramLoginModule required username="broker" password="{password}";"#
    )
}

const BROKER_PASSWORD: &str = "broker-secret";
const CLIENT_PASSWORD: &str = "client-secret";

const NOT_LEADER_OR_FOLLOWER: i16 = 6;
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const REQUEST_TIMED_OUT: i16 = 7;
const NOT_ENOUGH_REPLICAS: i16 = 19;
const NOT_CONTROLLER: i16 = 41;

/// What every broker of a secured cluster is given (its `listeners` are its own).
fn secured(pki: &Pki) -> Vec<String> {
    let mut o = vec![
        "listener.security.protocol.map=INTERNAL:SASL_SSL,EXTERNAL:SASL_SSL".to_string(),
        "inter.broker.listener.name=INTERNAL".to_string(),
        "sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512".to_string(),
        "listener.name.internal.sasl.enabled.mechanisms=SCRAM-SHA-512".to_string(),
        format!(
            "listener.name.internal.scram-sha-512.sasl.jaas.config={}",
            broker_jaas(BROKER_PASSWORD)
        ),
        "listener.name.external.sasl.enabled.mechanisms=SCRAM-SHA-256,SCRAM-SHA-512".to_string(),
        format!("listener.name.external.scram-sha-256.sasl.jaas.config={SCRAM_JAAS}"),
        format!("listener.name.external.scram-sha-512.sasl.jaas.config={SCRAM_JAAS}"),
    ];
    o.extend(pki.broker_tls("internal"));
    o.extend(pki.broker_tls("external"));
    o
}

/// A user's node as `kafka-configs.sh --zookeeper --alter --add-config
/// 'SCRAM-SHA-512=[password=...]' --entity-type users` writes it: a fresh salt, 4096
/// iterations (the tool's default), the mechanisms in the order given.
fn user_node(password: &str, mechanisms: &[Mechanism]) -> String {
    let config: Vec<String> = mechanisms
        .iter()
        .map(|&m| {
            let credential = ScramCredential::generate(m, password, 4096).unwrap();
            format!(r#""{}":"{credential}""#, m.name())
        })
        .collect();
    format!(r#"{{"version":1,"config":{{{}}}}}"#, config.join(","))
}

/// A cluster of odradek processes on one ZooKeeper, each with an INTERNAL (inter-broker) and an
/// EXTERNAL listener, both SASL_SSL.
struct Secured {
    cluster: Cluster,
    pki: Pki,
    /// broker -> (INTERNAL port, EXTERNAL port)
    ports: BTreeMap<i32, (u16, u16)>,
    _dir: tempfile::TempDir,
}

impl Secured {
    /// ZooKeeper with the `broker` and `client` users, then the brokers of `start` (the others
    /// of `ids` are started later by the test). `each` adds overrides to one broker.
    async fn start(
        ids: &[i32],
        start: &[i32],
        extra: &[&str],
        each: &[(i32, &[&str])],
    ) -> Option<Secured> {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::new(dir.path());
        let mut taken = BTreeSet::new();
        let mut port = || loop {
            let p = free_port();
            if taken.insert(p) {
                return p;
            }
        };
        let ports: BTreeMap<i32, (u16, u16)> =
            ids.iter().map(|&id| (id, (port(), port()))).collect();
        let mut common = secured(&pki);
        common.extend(extra.iter().map(|s| s.to_string()));
        let per_broker: BTreeMap<i32, Vec<String>> = ids
            .iter()
            .map(|id| {
                let (internal, external) = ports[id];
                let mut o = vec![format!(
                    "listeners=INTERNAL://127.0.0.1:{internal},EXTERNAL://127.0.0.1:{external}"
                )];
                for (_, more) in each.iter().filter(|(b, _)| b == id) {
                    o.extend(more.iter().map(|s| s.to_string()));
                }
                (*id, o)
            })
            .collect();
        let common: Vec<&str> = common.iter().map(String::as_str).collect();
        let mut cluster = Cluster::prepare(per_broker, &common)?;
        // The users exist before any broker starts: a broker reads them at start-up.
        let store = cluster.store().await;
        write_user(
            &store,
            "broker",
            Some(&user_node(BROKER_PASSWORD, &[Mechanism::ScramSha512])),
        )
        .await;
        write_user(
            &store,
            "client",
            Some(&user_node(CLIENT_PASSWORD, &Mechanism::SCRAM)),
        )
        .await;
        drop(store);
        for &id in start {
            cluster.start_broker(id);
        }
        Some(Secured {
            cluster,
            pki,
            ports,
            _dir: dir,
        })
    }

    fn external(&self, id: i32) -> u16 {
        self.ports[&id].1
    }

    fn logs(&self) -> String {
        self.cluster.logs()
    }

    /// The `client` user's connection to broker `id`'s EXTERNAL listener, `None` if it cannot
    /// be had (the broker is down).
    async fn client(&self, id: i32) -> Option<Connection> {
        let security = Security {
            tls: Some(tls_client(&self.pki, None)),
            sasl: login(Mechanism::ScramSha512, "client", CLIENT_PASSWORD),
        };
        connect(self.external(id), security).await.ok()
    }

    /// Broker `id`'s Metadata (v12) for `topics` (all with `None`), `None` if it cannot be had.
    async fn metadata(&self, id: i32, topics: Option<&[&str]>) -> Option<MetadataResponse> {
        let mut conn = self.client(id).await?;
        let req = common::wire::metadata_request(topics, false);
        match conn
            .call_upto(ApiKey::Metadata, 12, RequestKind::Metadata(req))
            .await
        {
            Ok(ResponseKind::Metadata(r)) => Some(r),
            _ => None,
        }
    }

    /// The controller as broker `id` sees it (-1: none, or no answer).
    async fn controller(&self, id: i32) -> i32 {
        self.metadata(id, Some(&[]))
            .await
            .map_or(-1, |m| m.controller_id.0)
    }

    /// partition -> (leader, leader epoch, ISR) of `topic` as broker `id` sees it; partitions
    /// with an error have leader -1.
    async fn partitions(&self, id: i32, topic: &str) -> BTreeMap<i32, (i32, i32, BTreeSet<i32>)> {
        let Some(md) = self.metadata(id, Some(&[topic])).await else {
            return BTreeMap::new();
        };
        md.topics
            .iter()
            .flat_map(|t| t.partitions.iter())
            .map(|p| {
                let leader = if p.error_code == 0 { p.leader_id.0 } else { -1 };
                (
                    p.partition_index,
                    (
                        leader,
                        p.leader_epoch,
                        p.isr_nodes.iter().map(|b| b.0).collect(),
                    ),
                )
            })
            .collect()
    }

    /// Until every broker of `ids` lists exactly `ids` as live, each at its EXTERNAL port (a
    /// client on EXTERNAL is sent to EXTERNAL), and names a controller.
    async fn wait_for_brokers(&self, ids: &[i32]) {
        let want: BTreeMap<i32, i32> = ids
            .iter()
            .map(|&id| (id, i32::from(self.external(id))))
            .collect();
        for &id in ids {
            let want = &want;
            wait_until(
                Duration::from_secs(40),
                &format!("broker {id} sees {want:?} and a controller"),
                || async move {
                    self.metadata(id, Some(&[])).await.is_some_and(|md| {
                        md.controller_id.0 >= 0
                            && md
                                .brokers
                                .iter()
                                .map(|b| (b.node_id.0, b.port))
                                .collect::<BTreeMap<_, _>>()
                                == *want
                    })
                },
            )
            .await
            .unwrap_or_else(|e| panic!("{e}\n{}", self.logs()));
        }
    }

    /// Until `check` holds for `topic`'s partitions as broker `via` sees them.
    async fn wait_partitions<F>(&self, via: i32, topic: &str, what: &str, check: F)
    where
        F: Fn(&BTreeMap<i32, (i32, i32, BTreeSet<i32>)>) -> bool,
    {
        let (check, last) = (&check, &std::sync::Mutex::new(BTreeMap::new()));
        wait_until(Duration::from_secs(60), what, || async move {
            let now = self.partitions(via, topic).await;
            let ok = check(&now);
            *last.lock().unwrap() = now;
            ok
        })
        .await
        .unwrap_or_else(|e| {
            panic!(
                "{e}\nlast seen by broker {via}: {:?}\n{}",
                last.lock().unwrap(),
                self.logs()
            )
        });
    }

    /// CreateTopics at the controller, which broker `via` names.
    async fn create_topic(&self, via: i32, topic: &str, partitions: i32, configs: &[(&str, &str)]) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let controller = self.controller(via).await;
            let mut t = create_topics_request::CreatableTopic::default();
            t.name = name(topic);
            t.num_partitions = partitions;
            t.replication_factor = 3;
            for (k, v) in configs {
                let mut c = create_topics_request::CreatableTopicConfig::default();
                c.name = StrBytes::from_string(k.to_string());
                c.value = Some(StrBytes::from_string(v.to_string()));
                t.configs.push(c);
            }
            let mut req = CreateTopicsRequest::default();
            req.topics.push(t);
            req.timeout_ms = 10_000;
            let code = match self.client(controller.max(0)).await {
                Some(mut conn) => match conn
                    .call_upto(ApiKey::CreateTopics, 5, RequestKind::CreateTopics(req))
                    .await
                {
                    Ok(ResponseKind::CreateTopics(r)) => r.topics[0].error_code,
                    other => panic!("CreateTopics: {other:?}"),
                },
                None => NOT_CONTROLLER,
            };
            if code == 0 {
                return;
            }
            assert!(
                code == NOT_CONTROLLER && Instant::now() < deadline,
                "creating {topic}: error {code}\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `n` records numbered from `first` to `topic`-`partition` at broker `id`, acks=all: the
    /// error code, retried while it is one a producer retries (the leader not knowing yet it
    /// leads, the ISR not yet what acks=all can wait for).
    async fn produce(&self, id: i32, topic: &str, partition: i32, first: usize, n: usize) -> i16 {
        let deadline = Instant::now() + Duration::from_secs(40);
        loop {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64);
            let batch = common::client_batch(first, n, 10, now, 0);
            let req = produce_request(topic, partition, batch, -1);
            let code = match self.client(id).await {
                Some(mut conn) => match conn
                    .call_upto(ApiKey::Produce, 9, RequestKind::Produce(req))
                    .await
                {
                    Ok(ResponseKind::Produce(r)) => {
                        r.responses[0].partition_responses[0].error_code
                    }
                    other => panic!("Produce: {other:?}"),
                },
                None => panic!("broker {id} refused the client:\n{}", self.logs()),
            };
            let retriable = [
                UNKNOWN_TOPIC_OR_PARTITION,
                NOT_LEADER_OR_FOLLOWER,
                REQUEST_TIMED_OUT,
                NOT_ENOUGH_REPLICAS,
            ];
            if !retriable.contains(&code) || Instant::now() > deadline {
                return code;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Every record of `topic`-`partition` that broker `id` serves a consumer: (high
    /// watermark, base offset of each batch, records counted).
    async fn fetch_all(&self, id: i32, topic: &str, partition: i32) -> (i64, Vec<i64>, i64) {
        let mut conn = self
            .client(id)
            .await
            .unwrap_or_else(|| panic!("broker {id} refused the client:\n{}", self.logs()));
        let mut offset = 0;
        let mut bases = Vec::new();
        let mut count = 0;
        loop {
            let req = fetch_request(topic, partition, offset, 100);
            let p = match conn
                .call_upto(ApiKey::Fetch, 12, RequestKind::Fetch(req))
                .await
            {
                Ok(ResponseKind::Fetch(mut r)) => r.responses.remove(0).partitions.remove(0),
                other => panic!("Fetch: {other:?}"),
            };
            assert_eq!(p.error_code, 0, "fetching {topic}-{partition} at {id}");
            let records = p.records.unwrap_or_default();
            let mut pos = 0;
            while let Some(size) = entry_size(&records[pos..]) {
                let size = size as usize;
                if pos + size > records.len() {
                    break;
                }
                let h = BatchHeader::parse(&records[pos..pos + size]).unwrap();
                bases.push(h.base_offset);
                count += i64::from(h.records_count);
                offset = h.next_offset();
                pos += size;
            }
            if offset >= p.high_watermark || pos == 0 {
                return (p.high_watermark, bases, count);
            }
        }
    }
}

/// Every TCP port process `pid` listens on, with the address it is bound to (from the
/// process's socket inodes and the kernel's TCP tables).
fn listening(pid: u32) -> BTreeMap<u16, String> {
    let inodes: BTreeSet<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .filter_map(|t| {
            let t = t.to_str()?.strip_prefix("socket:[")?.strip_suffix(']')?;
            Some(t.to_string())
        })
        .collect();
    let mut out = BTreeMap::new();
    for table in ["tcp", "tcp6"] {
        let text = std::fs::read_to_string(format!("/proc/{pid}/net/{table}")).unwrap_or_default();
        for line in text.lines().skip(1) {
            // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode ...
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() > 9 && f[3] == "0A" && inodes.contains(f[9]) {
                let (addr, port) = f[1].rsplit_once(':').unwrap();
                out.insert(u16::from_str_radix(port, 16).unwrap(), addr.to_string());
            }
        }
    }
    out
}

/// Sends a plaintext ApiVersions v0 request to `port` and reads what comes back within 3 s:
/// whether it is a Kafka response to it (a frame with the request's correlation id), and the
/// bytes read.
async fn plaintext_kafka_answer(port: u16) -> (bool, Vec<u8>) {
    const CORRELATION: i32 = 0x0dec_0de5;
    let mut body = Vec::new();
    body.extend(18i16.to_be_bytes()); // ApiVersions
    body.extend(0i16.to_be_bytes());
    body.extend(CORRELATION.to_be_bytes());
    body.extend(5i16.to_be_bytes());
    body.extend(b"probe");
    let mut frame = (body.len() as i32).to_be_bytes().to_vec();
    frame.extend(body);
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let _ = stream.write_all(&frame).await;
    let mut got = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(3), async {
        let mut buf = [0u8; 4096];
        while got.len() < 8 {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    let kafka = got.len() >= 8 && got[4..8] == CORRELATION.to_be_bytes();
    (kafka, got)
}

/// Acceptance: three brokers whose only listeners are SASL_SSL, INTERNAL between brokers with
/// SCRAM-SHA-512 credentials from ZooKeeper, register as Kafka does, open no plaintext port,
/// replicate an RF 3 topic written with acks=all, survive a leader killed with SIGKILL (a new
/// leader from the ISR, produce and fetch going on) and then the controller killed (another
/// broker controls and moves its leaderships).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sasl_ssl_cluster_replicates_and_fails_over() {
    // With ACLs on: the brokers' own requests to each other (controller requests, follower
    // fetches, controlled shutdown) need CLUSTER_ACTION, which the brokers' principal has as a
    // super user, as Kafka's deployments give it.
    let acls = [
        "authorizer.class.name=kafka.security.authorizer.AclAuthorizer",
        "super.users=User:broker;User:client",
    ];
    let Some(mut s) = Secured::start(&[1, 2, 3], &[1, 2, 3], &acls, &[]).await else {
        return;
    };
    s.wait_for_brokers(&[1, 2, 3]).await;
    let store = s.cluster.store().await;

    // Registered as Kafka registers a broker without a PLAINTEXT listener.
    for id in [1, 2, 3] {
        let (data, _) = store
            .get(&format!("/brokers/ids/{id}"))
            .await
            .unwrap()
            .unwrap();
        let reg: serde_json::Value = serde_json::from_slice(&data.unwrap()).unwrap();
        let (internal, external) = s.ports[&id];
        assert_eq!(
            reg["endpoints"],
            serde_json::json!([
                format!("INTERNAL://127.0.0.1:{internal}"),
                format!("EXTERNAL://127.0.0.1:{external}")
            ]),
            "{reg}"
        );
        assert_eq!(
            reg["listener_security_protocol_map"],
            serde_json::json!({"INTERNAL": "SASL_SSL", "EXTERNAL": "SASL_SSL"}),
            "{reg}"
        );
        assert!(reg["host"].is_null(), "{reg}");
        assert_eq!(reg["port"], -1, "{reg}");
    }

    // No plaintext anywhere. The probe itself recognises a Kafka answer: a plaintext broker
    // gives one.
    let plain_dir = tempfile::tempdir().unwrap();
    let plain = common::wire::start_broker(plain_dir.path(), &[]).await;
    let (kafka, _) = plaintext_kafka_answer(plain.port_of("PLAINTEXT").unwrap()).await;
    assert!(kafka, "the probe recognises a plaintext Kafka listener");
    drop(plain);
    for id in [1, 2, 3] {
        let (internal, external) = s.ports[&id];
        let open = listening(s.cluster.brokers[&id].pid());
        assert!(
            open.values().all(|addr| addr == "0100007F"),
            "broker {id} binds 127.0.0.1 only: {open:?}"
        );
        let others: Vec<u16> = open
            .keys()
            .copied()
            .filter(|p| ![internal, external].contains(p))
            .collect();
        assert!(
            open.contains_key(&internal) && open.contains_key(&external),
            "broker {id} listens on {open:?}"
        );
        // Besides its two listeners, a broker listens only on metrics.port, where Prometheus
        // scrapes over HTTP.
        assert_eq!(others.len(), 1, "broker {id} listens on {open:?}");
        let page = common::wire::metrics_page(others[0])
            .await
            .unwrap_or_default();
        assert!(page.starts_with("HTTP/1."), "port {}: {page}", others[0]);
        for port in open.keys() {
            let (kafka, bytes) = plaintext_kafka_answer(*port).await;
            assert!(
                !kafka,
                "broker {id}'s port {port} answered plaintext ApiVersions: {bytes:?}"
            );
        }
    }

    // An RF 3 topic, written with acks=all through SASL_SSL; min.insync.replicas=2 makes every
    // acknowledged record be on a follower too.
    let topic = "secured";
    s.create_topic(1, topic, 3, &[("min.insync.replicas", "2")])
        .await;
    let all: BTreeSet<i32> = [1, 2, 3].into();
    for id in [1, 2, 3] {
        let all = &all;
        s.wait_partitions(id, topic, "every partition led, ISR full", |p| {
            p.len() == 3 && p.values().all(|(l, _, isr)| *l > 0 && isr == all)
        })
        .await;
    }
    let before = s.partitions(1, topic).await;
    let mut records: BTreeMap<i32, usize> = BTreeMap::new();
    for (&p, (leader, _, _)) in &before {
        assert_eq!(s.produce(*leader, topic, p, 0, 10).await, 0, "{}", s.logs());
        records.insert(p, 10);
    }
    // Followers fetched them over INTERNAL: the ISR stays full and the high watermark (what
    // every ISR member has) covers them.
    for (&p, (leader, _, _)) in &before {
        let (hw, _, count) = s.fetch_all(*leader, topic, p).await;
        assert_eq!((hw, count), (10, 10), "{topic}-{p}");
    }
    s.wait_partitions(1, topic, "ISR full after the writes", |p| {
        p.values().all(|(_, _, isr)| isr.len() == 3)
    })
    .await;
    // Every broker was reached by the others as User:broker on INTERNAL (the followers of what
    // it leads, the controller), and by nothing else there.
    for id in [1, 2, 3] {
        let log = s.cluster.brokers[&id].log_text();
        let internal: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("listener=INTERNAL") && l.contains("SASL client authenticated"))
            .collect();
        assert!(!internal.is_empty(), "broker {id}:\n{}", s.logs());
        assert!(
            internal
                .iter()
                .all(|l| l.contains("principal=User:broker mechanism=SCRAM-SHA-512")),
            "{internal:#?}"
        );
    }

    // SIGKILL the leader of a partition that the controller does not lead.
    let controller = s.controller(1).await;
    let (&victim_p, &(victim, victim_epoch, _)) = before
        .iter()
        .find(|(_, (l, _, _))| *l != controller)
        .expect("a partition led by a broker that is not the controller");
    s.cluster.brokers.get_mut(&victim).unwrap().stop(true);
    let survivor = [1, 2, 3]
        .into_iter()
        .find(|b| *b != victim && *b != controller)
        .unwrap();
    s.wait_partitions(
        survivor,
        topic,
        "a new leader from the ISR for the victim's partition",
        |p| {
            p.get(&victim_p).is_some_and(|(l, e, isr)| {
                *l > 0 && *l != victim && *e > victim_epoch && !isr.contains(&victim)
            })
        },
    )
    .await;
    let (new_leader, _, _) = s.partitions(survivor, topic).await[&victim_p].clone();
    assert!(before[&victim_p].2.contains(&new_leader));
    // Produce and fetch go on, acks=all with the two that are left.
    assert_eq!(
        s.produce(new_leader, topic, victim_p, 10, 10).await,
        0,
        "{}",
        s.logs()
    );
    let (hw, bases, count) = s.fetch_all(new_leader, topic, victim_p).await;
    assert_eq!((hw, count), (20, 20), "{bases:?}");
    assert_eq!(bases, vec![0, 10], "nothing lost, nothing doubled");

    // The victim returns: its fetchers catch up over INTERNAL and the ISR is full again.
    s.cluster.brokers.get_mut(&victim).unwrap().restart(true);
    for id in [1, 2, 3] {
        s.wait_partitions(id, topic, "ISR full again with the returned broker", |p| {
            p.len() == 3 && p.values().all(|(l, _, isr)| *l > 0 && isr.len() == 3)
        })
        .await;
    }

    // SIGKILL the controller: another broker takes over and moves its leaderships.
    let epoch = controller_epoch(&store).await;
    let controller = s.controller(survivor).await;
    let theirs = s.partitions(survivor, topic).await;
    let theirs: BTreeMap<i32, i32> = theirs
        .iter()
        .filter(|(_, (l, _, _))| *l == controller)
        .map(|(p, (_, e, _))| (*p, *e))
        .collect();
    assert!(
        !theirs.is_empty(),
        "the controller {controller} leads a partition"
    );
    s.cluster.brokers.get_mut(&controller).unwrap().stop(true);
    let killed = Instant::now();
    let left: Vec<i32> = [1, 2, 3].into_iter().filter(|b| *b != controller).collect();
    let (s_ref, left_ref) = (&s, &left);
    wait_until(
        Duration::from_millis(SESSION_TIMEOUT_MS + 20_000),
        "another broker is controller",
        || async move {
            let c = s_ref.controller(left_ref[0]).await;
            c >= 0 && c != controller
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", s.logs()));
    let new_controller = s.controller(left[0]).await;
    assert!(left.contains(&new_controller));
    assert_eq!(controller_epoch(&store).await, epoch + 1);
    let theirs = &theirs;
    for &id in &left {
        s.wait_partitions(id, topic, "the dead controller's partitions moved", |p| {
            theirs.iter().all(|(part, old_epoch)| {
                p.get(part).is_some_and(|(l, e, isr)| {
                    *l > 0 && *l != controller && e > old_epoch && !isr.contains(&controller)
                })
            })
        })
        .await;
    }
    eprintln!(
        "controller {controller} killed; {new_controller} moved its leaderships within {:?}",
        killed.elapsed()
    );
    // Every partition takes acks=all writes at its leader, and serves all it acknowledged.
    let now = s.partitions(left[0], topic).await;
    for (&p, (leader, _, _)) in &now {
        let first = records[&p] + if p == victim_p { 10 } else { 0 };
        assert_eq!(
            s.produce(*leader, topic, p, first, 10).await,
            0,
            "{topic}-{p}:\n{}",
            s.logs()
        );
        let (hw, bases, count) = s.fetch_all(*leader, topic, p).await;
        let want = first as i64 + 10;
        assert_eq!((hw, count), (want, want), "{topic}-{p}: {bases:?}");
    }
    drop(store);
}

/// Acceptance: SCRAM users in ZooKeeper, written as Kafka's tools write them (the reference's
/// test vector for alice), log in on every broker of a ZooKeeper-backed cluster; the user's
/// node deleted (with its change notification), the next login fails, and a session opened
/// before ends when its lifetime (`connections.max.reauth.ms`) runs out. Inter-broker
/// connections live under the same lifetime and re-authenticate: replication is unaffected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scram_users_in_zookeeper_log_in_until_deleted() {
    let Some(s) = Secured::start(
        &[1, 2, 3],
        &[1, 2, 3],
        // Clients' sessions last 5 s; the brokers' own, 12 s. A renewal comes at 85 to 95 % of
        // the lifetime, so a request sent just before it reaches the broker with 5 to 15 % of
        // the lifetime to spare: on a loaded machine 250 ms may not be enough, 600 ms is.
        &[
            "connections.max.reauth.ms=5000",
            "listener.name.internal.connections.max.reauth.ms=12000",
        ],
        &[],
    )
    .await
    else {
        return;
    };
    s.wait_for_brokers(&[1, 2, 3]).await;
    let store = s.cluster.store().await;

    // The test vector is what odradek's own generator makes from the same salt.
    let salt = b"4qznm2ci1eqd5oxq6dsdt9a6l";
    let vector: serde_json::Value = serde_json::from_str(ALICE).unwrap();
    for m in Mechanism::SCRAM {
        let ours = ScramCredential::with_salt(m, "alice-secret", salt, 8192).unwrap();
        assert_eq!(vector["config"][m.name()], ours.to_string());
    }
    write_user(&store, "alice", Some(ALICE)).await;
    let (data, _) = store.get("/config/users/alice").await.unwrap().unwrap();
    assert_eq!(data.unwrap(), ALICE.as_bytes());

    let alice = |m| Security {
        tls: Some(tls_client(&s.pki, None)),
        sasl: login(m, "alice", "alice-secret"),
    };
    // Every broker applies the change from its notification.
    for id in [1, 2, 3] {
        for m in Mechanism::SCRAM {
            let port = s.external(id);
            let alice = &alice;
            wait_until(
                Duration::from_secs(20),
                &format!("alice logs in with {m} at broker {id}"),
                || async move { connect(port, alice(m)).await.is_ok() },
            )
            .await
            .unwrap_or_else(|e| panic!("{e}\n{}", s.logs()));
        }
    }
    let mut session = connect(s.external(1), alice(Mechanism::ScramSha256))
        .await
        .unwrap();
    // A client that does not renew its login (KIP-368), so that the broker's limit shows.
    session.never_reauthenticate();
    let opened = Instant::now();
    // One that does, as Kafka's clients do.
    let mut renewing = s.client(2).await.unwrap();
    let md = session
        .call(
            ApiKey::Metadata,
            RequestKind::Metadata(MetadataRequest::default()),
        )
        .await;
    assert!(md.is_ok(), "{md:?}");

    // A replicated topic keeps its ISR and takes acks=all writes across many inter-broker
    // session lifetimes.
    s.create_topic(1, "through-reauth", 1, &[("min.insync.replicas", "3")])
        .await;
    s.wait_partitions(1, "through-reauth", "led, ISR full", |p| {
        p.len() == 1 && p.values().all(|(l, _, isr)| *l > 0 && isr.len() == 3)
    })
    .await;

    // Deleted, with the notification the tools write: the next login fails everywhere.
    write_user(&store, "alice", None).await;
    for id in [1, 2, 3] {
        for m in Mechanism::SCRAM {
            let port = s.external(id);
            let alice = &alice;
            wait_until(
                Duration::from_secs(20),
                &format!("alice is refused with {m} at broker {id}"),
                || async move { connect(port, alice(m)).await.is_err() },
            )
            .await
            .unwrap_or_else(|e| panic!("{e}\n{}", s.logs()));
        }
    }
    // The open session, which does not renew its login, ends once its 5 s lifetime runs out.
    let deadline = Instant::now() + Duration::from_secs(20);
    let ended = loop {
        let r = session
            .call(
                ApiKey::Metadata,
                RequestKind::Metadata(MetadataRequest::default()),
            )
            .await;
        if let Err(e) = r {
            break e;
        }
        assert!(
            Instant::now() < deadline,
            "alice's session outlived its lifetime\n{}",
            s.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        opened.elapsed() >= Duration::from_secs(5),
        "the session ended after {:?}, before its lifetime: {ended}",
        opened.elapsed()
    );
    assert!(
        s.cluster.brokers[&1].log_text().lines().any(|l| l
            .contains("SASL session expired without re-authentication")
            && l.contains("principal=User:alice")),
        "{}",
        s.logs()
    );

    // Replication goes on while the brokers renew their own sessions: at least 11 s more, and
    // until the leader has seen a follower's connection log in again.
    let started = Instant::now();
    let mut round = 0;
    loop {
        let (leader, _, isr) = s.partitions(1, "through-reauth").await[&0].clone();
        let renewed = renewed_connections(&s.cluster.brokers[&leader].log_text());
        if started.elapsed() >= Duration::from_secs(11) && !renewed.is_empty() {
            eprintln!("broker {leader}: inter-broker connections renewed: {renewed:?}");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(40),
            "no inter-broker connection to the leader renewed its login\n{}",
            s.logs()
        );
        assert_eq!(isr.len(), 3, "{}", s.logs());
        assert_eq!(
            s.produce(leader, "through-reauth", 0, round * 5, 5).await,
            0,
            "{}",
            s.logs()
        );
        round += 1;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // The renewing client's session outlived several of its lifetimes.
    assert!(opened.elapsed() > Duration::from_secs(15));
    let md = renewing
        .call(
            ApiKey::Metadata,
            RequestKind::Metadata(MetadataRequest::default()),
        )
        .await;
    assert!(md.is_ok(), "{md:?}");
    let (leader, _, _) = s.partitions(1, "through-reauth").await[&0].clone();
    let (hw, _, count) = s.fetch_all(leader, "through-reauth", 0).await;
    assert_eq!((hw, count), (round as i64 * 5, round as i64 * 5));
    // The brokers' own sessions were renewed, not cut: Kafka's clients re-authenticate
    // (KIP-368) before the lifetime the broker gave them runs out.
    for id in [1, 2, 3] {
        let log = s.cluster.brokers[&id].log_text();
        let cut: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("session expired") && l.contains("User:broker"))
            .collect();
        assert!(
            cut.is_empty(),
            "broker {id} cut inter-broker sessions: {cut:#?}"
        );
        assert!(
            !log.contains("controller request failed"),
            "broker {id}'s controller connections broke:\n{}",
            s.logs()
        );
    }
}

/// The INTERNAL connections (peer addresses) on which `log` shows User:broker authenticated
/// more than once: renewed logins (KIP-368).
fn renewed_connections(log: &str) -> Vec<String> {
    let mut logins: BTreeMap<String, usize> = BTreeMap::new();
    for l in log.lines().filter(|l| {
        l.contains("listener=INTERNAL")
            && l.contains("SASL client authenticated")
            && l.contains("principal=User:broker")
    }) {
        if let Some(peer) = l
            .split_once("peer=")
            .and_then(|(_, rest)| rest.split_whitespace().next())
        {
            *logins.entry(peer.to_string()).or_default() += 1;
        }
    }
    logins
        .into_iter()
        .filter(|(_, n)| *n > 1)
        .map(|(peer, _)| peer)
        .collect()
}

/// The ERROR lines of `log` that report the broker's SCRAM-SHA-512 login refused, from the part
/// of the broker that `what` names.
fn failed_logins(log: &str, what: &str) -> Vec<String> {
    log.lines()
        .filter(|l| {
            l.contains("ERROR")
                && l.contains(what)
                && l.contains("SASL login as broker with SCRAM-SHA-512 refused")
                && l.contains(
                    "Authentication failed during authentication due to invalid credentials \
                     with SASL mechanism SCRAM-SHA-512",
                )
        })
        .map(str::to_string)
        .collect()
}

/// Acceptance: a broker whose inter-broker password is wrong does not run silently. As the
/// controller, its connections to the other brokers log the refused login at ERROR; as a
/// follower, its fetchers do, and so does its controlled shutdown. The other brokers keep
/// serving, with the broker dropped from the ISRs of what they lead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_with_wrong_inter_broker_credentials_says_so_and_the_others_go_on() {
    let wrong = format!(
        "listener.name.internal.scram-sha-512.sasl.jaas.config={}",
        broker_jaas("not-the-secret")
    );
    // Broker 3 alone first: it becomes the controller.
    let Some(mut s) = Secured::start(
        &[1, 2, 3],
        &[3],
        &["replica.lag.time.max.ms=3000"],
        &[(
            3,
            &[wrong.as_str(), "controlled.shutdown.retry.backoff.ms=200"],
        )],
    )
    .await
    else {
        return;
    };
    let s_ref = &s;
    wait_until(
        Duration::from_secs(30),
        "broker 3 is controller",
        || async move { s_ref.controller(3).await == 3 },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", s.logs()));
    s.cluster.start_broker(1);
    s.cluster.start_broker(2);
    let (s_ref, b3) = (&s, &s.cluster.brokers[&3]);
    wait_until(
        Duration::from_secs(30),
        "controller 3 says it cannot log in to brokers 1 and 2",
        || async move {
            let lines = failed_logins(&b3.log_text(), "controller connection");
            [1, 2].iter().all(|id| {
                let (internal, _) = s_ref.ports[id];
                lines
                    .iter()
                    .any(|l| l.contains(&format!("127.0.0.1:{internal}")))
            })
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", s.logs()));

    // Stopped, it hands the controller over to a broker whose credentials work; back, it is
    // only a broker.
    s.cluster.brokers.get_mut(&3).unwrap().stop(false);
    s.wait_for_brokers(&[1, 2]).await;
    s.cluster.brokers.get_mut(&3).unwrap().restart(false);
    s.wait_for_brokers(&[1, 2, 3]).await;
    let controller = s.controller(1).await;
    assert!([1, 2].contains(&controller), "controller {controller}");

    let topic = "with-a-stranger";
    s.create_topic(1, topic, 3, &[]).await;
    s.wait_partitions(1, topic, "every partition led", |p| {
        p.len() == 3 && p.values().all(|(l, _, _)| *l > 0)
    })
    .await;
    // Broker 3 cannot fetch from 1 or 2: it leaves their partitions' ISRs...
    s.wait_partitions(
        1,
        topic,
        "broker 3 out of the ISR of what 1 and 2 lead",
        |p| {
            p.values()
                .all(|(l, _, isr)| *l == 3 || (!isr.contains(&3) && isr.len() == 2))
        },
    )
    .await;
    // ...and every partition takes acks=all writes and serves them (1 and 2 fetch from 3 with
    // their good credentials).
    let now = s.partitions(1, topic).await;
    for (&p, (leader, _, _)) in &now {
        assert_eq!(s.produce(*leader, topic, p, 0, 10).await, 0, "{}", s.logs());
        let (hw, _, count) = s.fetch_all(*leader, topic, p).await;
        assert_eq!((hw, count), (10, 10), "{topic}-{p}");
    }
    // Its fetchers say why, at ERROR, every time they try.
    let b3 = &s.cluster.brokers[&3];
    wait_until(
        Duration::from_secs(20),
        "broker 3's fetchers log their refused logins",
        || async move { failed_logins(&b3.log_text(), "cannot fetch").len() >= 2 },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", s.logs()));
    // The brokers it tries refuse it and say so too.
    assert!(
        s.cluster.brokers[&controller]
            .log_text()
            .contains("SASL authentication failed"),
        "{}",
        s.logs()
    );

    // Its controlled shutdown cannot log in to the controller either, and says so.
    let b3 = s.cluster.brokers.get_mut(&3).unwrap();
    b3.stop(false);
    let log = b3.log_text();
    assert!(
        !failed_logins(&log, "controlled shutdown").is_empty(),
        "{log}"
    );
    for line in failed_logins(&log, "") {
        eprintln!("{line}");
    }
}
