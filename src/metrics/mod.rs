//! Prometheus metrics under the names Prometheus' JMX exporter gives Apache Kafka's MBeans
//! (`kafka_server_brokertopicmetrics_messagesin_total`, ...), so dashboards built for Kafka
//! work unchanged, and the `/metrics` endpoint on `metrics.port`.

pub mod http;

use std::sync::{Arc, LazyLock, RwLock, Weak};
use std::time::Duration;

use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry};

use crate::api::fetch_session::FetchSessionCache;
use crate::group::{GroupCoordinator, GroupState};
use crate::replica::ReplicaManager;

/// The process's metrics. Kafka's are process-wide too (one Yammer registry per JVM); a global
/// spares every layer from carrying a handle just to count.
pub fn global() -> &'static Metrics {
    static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);
    &METRICS
}

pub struct Metrics {
    pub registry: Registry,
    messages_in: IntCounterVec,
    bytes_in: IntCounterVec,
    bytes_out: IntCounterVec,
    produce_requests: IntCounterVec,
    failed_produce_requests: IntCounterVec,
    fetch_requests: IntCounterVec,
    failed_fetch_requests: IntCounterVec,
    requests: IntCounterVec,
    request_time: HistogramVec,
    pub connections: IntGauge,
    partitions: Arc<RwLock<Vec<Weak<ReplicaManager>>>>,
    groups: Arc<RwLock<Vec<Weak<GroupCoordinator>>>>,
    fetch_sessions: Arc<RwLock<Vec<Weak<FetchSessionCache>>>>,
}

fn counter(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels)
        .unwrap_or_else(|e| panic!("metric {name}: {e}"));
    registry
        .register(Box::new(c.clone()))
        .unwrap_or_else(|e| panic!("metric {name}: {e}"));
    c
}

impl Metrics {
    /// All metric names and labels are fixed here, so a failure to build one is a bug in this
    /// function, found by the first test that starts a broker.
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let topic = &["topic"];
        let m = Metrics {
            messages_in: counter(
                &registry,
                "kafka_server_brokertopicmetrics_messagesin_total",
                "Records appended, per topic (BrokerTopicMetrics MessagesInPerSec).",
                topic,
            ),
            bytes_in: counter(
                &registry,
                "kafka_server_brokertopicmetrics_bytesin_total",
                "Bytes appended from producers, per topic (BytesInPerSec).",
                topic,
            ),
            bytes_out: counter(
                &registry,
                "kafka_server_brokertopicmetrics_bytesout_total",
                "Bytes sent to consumers, per topic (BytesOutPerSec).",
                topic,
            ),
            produce_requests: counter(
                &registry,
                "kafka_server_brokertopicmetrics_totalproducerequests_total",
                "Produce requests per topic (TotalProduceRequestsPerSec).",
                topic,
            ),
            failed_produce_requests: counter(
                &registry,
                "kafka_server_brokertopicmetrics_failedproducerequests_total",
                "Failed produce requests per topic (FailedProduceRequestsPerSec).",
                topic,
            ),
            fetch_requests: counter(
                &registry,
                "kafka_server_brokertopicmetrics_totalfetchrequests_total",
                "Fetch requests per topic (TotalFetchRequestsPerSec).",
                topic,
            ),
            failed_fetch_requests: counter(
                &registry,
                "kafka_server_brokertopicmetrics_failedfetchrequests_total",
                "Failed fetch requests per topic (FailedFetchRequestsPerSec).",
                topic,
            ),
            requests: counter(
                &registry,
                "kafka_network_requestmetrics_requests_total",
                "Requests handled, per API and version (RequestMetrics RequestsPerSec).",
                &["request", "version"],
            ),
            request_time: {
                let opts = HistogramOpts::new("kafka_network_requestmetrics_totaltimems", "Time from a request's arrival to its response, in ms, per API (RequestMetrics TotalTimeMs).")
                    .buckets(vec![0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0, 30000.0]);
                let h = HistogramVec::new(opts, &["request"])
                    .unwrap_or_else(|e| panic!("request time: {e}"));
                registry
                    .register(Box::new(h.clone()))
                    .unwrap_or_else(|e| panic!("request time: {e}"));
                h
            },
            connections: {
                let g = IntGauge::new(
                    "kafka_server_socketservermetrics_connection_count",
                    "Open client connections (socket-server-metrics connection-count).",
                )
                .unwrap_or_else(|e| panic!("connections: {e}"));
                registry
                    .register(Box::new(g.clone()))
                    .unwrap_or_else(|e| panic!("connections: {e}"));
                g
            },
            partitions: Arc::new(RwLock::new(Vec::new())),
            groups: Arc::new(RwLock::new(Vec::new())),
            fetch_sessions: Arc::new(RwLock::new(Vec::new())),
            registry,
        };
        let _ = m
            .registry
            .register(Box::new(GroupCollector::new(m.groups.clone())));
        let _ = m
            .registry
            .register(Box::new(PartitionCollector::new(m.partitions.clone())));
        let _ = m.registry.register(Box::new(FetchSessionCollector::new(
            m.fetch_sessions.clone(),
        )));
        // Process CPU, memory and file descriptors, as the JMX exporter's process_* metrics.
        let _ = m.registry.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ));
        m
    }

    /// Report the state of this broker's hosted partitions, computed at scrape time. Held
    /// weakly: a stopped broker's partitions drop out (tests run several brokers per process).
    pub fn watch_partitions(&self, replicas: &Arc<ReplicaManager>) {
        let mut all = self.partitions.write().unwrap_or_else(|p| p.into_inner());
        all.retain(|w| w.strong_count() > 0);
        all.push(Arc::downgrade(replicas));
    }

    /// Report the consumer groups this broker coordinates, counted at scrape time; held weakly
    /// like the partitions.
    pub fn watch_groups(&self, groups: &Arc<GroupCoordinator>) {
        let mut all = self.groups.write().unwrap_or_else(|p| p.into_inner());
        all.retain(|w| w.strong_count() > 0);
        all.push(Arc::downgrade(groups));
    }

    /// Report the incremental fetch sessions this broker keeps, counted at scrape time; held
    /// weakly like the partitions.
    pub fn watch_fetch_sessions(&self, cache: &Arc<FetchSessionCache>) {
        let mut all = self
            .fetch_sessions
            .write()
            .unwrap_or_else(|p| p.into_inner());
        all.retain(|w| w.strong_count() > 0);
        all.push(Arc::downgrade(cache));
    }

    pub fn produced(&self, topic: &str, records: u64, bytes: u64, failed: bool) {
        self.produce_requests.with_label_values(&[topic]).inc();
        if failed {
            self.failed_produce_requests
                .with_label_values(&[topic])
                .inc();
        } else {
            self.messages_in.with_label_values(&[topic]).inc_by(records);
            self.bytes_in.with_label_values(&[topic]).inc_by(bytes);
        }
    }

    pub fn fetched(&self, topic: &str, bytes: u64, failed: bool) {
        self.fetch_requests.with_label_values(&[topic]).inc();
        if failed {
            self.failed_fetch_requests.with_label_values(&[topic]).inc();
        } else {
            self.bytes_out.with_label_values(&[topic]).inc_by(bytes);
        }
    }

    pub fn request_done(&self, api: &str, version: i16, elapsed: Duration) {
        self.requests
            .with_label_values(&[api, &version.to_string()])
            .inc();
        self.request_time
            .with_label_values(&[api])
            .observe(elapsed.as_secs_f64() * 1000.0);
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        if let Err(e) =
            prometheus::TextEncoder::new().encode_utf8(&self.registry.gather(), &mut out)
        {
            tracing::warn!(error = %e, "could not render metrics");
        }
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

/// Gauges read from the replica manager at scrape time: partition, leader and replication
/// counts, and each log's size and end offset.
struct PartitionCollector {
    replicas: Arc<RwLock<Vec<Weak<ReplicaManager>>>>,
    descs: Vec<Desc>,
}

const GAUGES: &[(&str, &str)] = &[
    (
        "kafka_server_replicamanager_partitioncount",
        "Partitions hosted on this broker (ReplicaManager PartitionCount).",
    ),
    (
        "kafka_server_replicamanager_leadercount",
        "Partitions this broker leads (ReplicaManager LeaderCount).",
    ),
    (
        "kafka_server_replicamanager_underreplicatedpartitions",
        "Led partitions whose ISR is smaller than their replica set.",
    ),
    (
        "kafka_controller_kafkacontroller_offlinepartitionscount",
        "Partitions without a leader (KafkaController OfflinePartitionsCount).",
    ),
    (
        "kafka_controller_kafkacontroller_activecontrollercount",
        "1 on the active controller (KafkaController ActiveControllerCount).",
    ),
    (
        "kafka_server_replicamanager_isrshrinks_total",
        "ISR shrinks (ReplicaManager IsrShrinksPerSec).",
    ),
    (
        "kafka_server_replicamanager_isrexpands_total",
        "ISR expansions (ReplicaManager IsrExpandsPerSec).",
    ),
];

impl PartitionCollector {
    fn new(replicas: Arc<RwLock<Vec<Weak<ReplicaManager>>>>) -> Self {
        let mut descs: Vec<Desc> = GAUGES
            .iter()
            .filter_map(|(n, h)| {
                Desc::new(n.to_string(), h.to_string(), vec![], Default::default()).ok()
            })
            .collect();
        for (n, h) in [
            (
                "kafka_log_log_size",
                "Bytes in a partition's log (Log Size).",
            ),
            (
                "kafka_log_log_logendoffset",
                "A partition's log end offset (Log LogEndOffset).",
            ),
            (
                "kafka_log_log_logstartoffset",
                "A partition's log start offset (Log LogStartOffset).",
            ),
        ] {
            if let Ok(d) = Desc::new(
                n.to_string(),
                h.to_string(),
                vec!["topic".into(), "partition".into()],
                Default::default(),
            ) {
                descs.push(d);
            }
        }
        PartitionCollector { replicas, descs }
    }
}

fn gauge_family(name: &str, help: &str, points: Vec<(Vec<(&str, String)>, f64)>) -> MetricFamily {
    let mut family = MetricFamily::default();
    family.set_name(name.to_string());
    family.set_help(help.to_string());
    family.set_field_type(prometheus::proto::MetricType::GAUGE);
    for (labels, value) in points {
        let mut m = prometheus::proto::Metric::default();
        let mut g = prometheus::proto::Gauge::default();
        g.set_value(value);
        m.set_gauge(g);
        m.set_label(
            labels
                .into_iter()
                .map(|(k, v)| {
                    let mut l = prometheus::proto::LabelPair::default();
                    l.set_name(k.to_string());
                    l.set_value(v);
                    l
                })
                .collect(),
        );
        family.mut_metric().push(m);
    }
    family
}

impl Collector for PartitionCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let managers: Vec<Arc<ReplicaManager>> = self
            .replicas
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter_map(Weak::upgrade)
            .collect();
        let hosted: Vec<_> = managers.iter().flat_map(|r| r.hosted()).collect();
        let n = hosted.len() as f64;
        let values = [n, n, 0.0, 0.0, 1.0, 0.0, 0.0];
        let mut out: Vec<MetricFamily> = GAUGES
            .iter()
            .zip(values)
            .map(|((name, help), v)| gauge_family(name, help, vec![(vec![], v)]))
            .collect();
        let (mut size, mut end, mut start) = (Vec::new(), Vec::new(), Vec::new());
        for p in hosted {
            let labels = vec![
                ("topic", p.topic.clone()),
                ("partition", p.partition.to_string()),
            ];
            // A scrape must not wait behind a long append; a busy log is reported next time.
            if let Some(log) = p.log.try_lock() {
                size.push((labels.clone(), log.size_bytes() as f64));
                end.push((labels.clone(), log.log_end_offset() as f64));
                start.push((labels, log.log_start_offset() as f64));
            }
        }
        out.push(gauge_family(
            "kafka_log_log_size",
            "Bytes in a partition's log (Log Size).",
            size,
        ));
        out.push(gauge_family(
            "kafka_log_log_logendoffset",
            "A partition's log end offset (Log LogEndOffset).",
            end,
        ));
        out.push(gauge_family(
            "kafka_log_log_logstartoffset",
            "A partition's log start offset (Log LogStartOffset).",
            start,
        ));
        out
    }
}

/// GroupMetadataManager's gauges: groups in all and per state, and committed offsets held.
struct GroupCollector {
    coordinators: Arc<RwLock<Vec<Weak<GroupCoordinator>>>>,
    descs: Vec<Desc>,
}

const GROUP_GAUGES: &[(&str, Option<GroupState>, &str)] = &[
    (
        "kafka_coordinator_group_groupmetadatamanager_numgroups",
        None,
        "Consumer groups this broker coordinates (GroupMetadataManager NumGroups).",
    ),
    (
        "kafka_coordinator_group_groupmetadatamanager_numgroupsstable",
        Some(GroupState::Stable),
        "Groups in state Stable (NumGroupsStable).",
    ),
    (
        "kafka_coordinator_group_groupmetadatamanager_numgroupspreparingrebalance",
        Some(GroupState::PreparingRebalance),
        "Groups in state PreparingRebalance (NumGroupsPreparingRebalance).",
    ),
    (
        "kafka_coordinator_group_groupmetadatamanager_numgroupscompletingrebalance",
        Some(GroupState::CompletingRebalance),
        "Groups in state CompletingRebalance (NumGroupsCompletingRebalance).",
    ),
    (
        "kafka_coordinator_group_groupmetadatamanager_numgroupsempty",
        Some(GroupState::Empty),
        "Groups in state Empty (NumGroupsEmpty).",
    ),
    (
        "kafka_coordinator_group_groupmetadatamanager_numgroupsdead",
        Some(GroupState::Dead),
        "Groups in state Dead (NumGroupsDead).",
    ),
];

const NUM_OFFSETS: (&str, &str) = (
    "kafka_coordinator_group_groupmetadatamanager_numoffsets",
    "Committed offsets held for all groups (GroupMetadataManager NumOffsets).",
);

impl GroupCollector {
    fn new(coordinators: Arc<RwLock<Vec<Weak<GroupCoordinator>>>>) -> Self {
        let descs = GROUP_GAUGES
            .iter()
            .map(|(n, _, h)| (*n, *h))
            .chain([NUM_OFFSETS])
            .filter_map(|(n, h)| {
                Desc::new(n.to_string(), h.to_string(), vec![], Default::default()).ok()
            })
            .collect();
        GroupCollector {
            coordinators,
            descs,
        }
    }
}

impl Collector for GroupCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let mut states: std::collections::BTreeMap<GroupState, usize> = Default::default();
        let mut offsets = 0;
        for c in self
            .coordinators
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter_map(Weak::upgrade)
        {
            let (s, o) = c.census();
            for (state, n) in s {
                *states.entry(state).or_insert(0) += n;
            }
            offsets += o;
        }
        let mut out: Vec<MetricFamily> = GROUP_GAUGES
            .iter()
            .map(|(name, state, help)| {
                let n = match state {
                    None => states.values().sum(),
                    Some(s) => states.get(s).copied().unwrap_or(0),
                };
                gauge_family(name, help, vec![(vec![], n as f64)])
            })
            .collect();
        out.push(gauge_family(
            NUM_OFFSETS.0,
            NUM_OFFSETS.1,
            vec![(vec![], offsets as f64)],
        ));
        out
    }
}

/// Kafka's `FetchSessionCache` metrics: sessions, partitions cached in them, evictions.
struct FetchSessionCollector {
    caches: Arc<RwLock<Vec<Weak<FetchSessionCache>>>>,
    descs: Vec<Desc>,
}

const FETCH_SESSION_METRICS: [(&str, &str); 3] = [
    (
        "kafka_server_fetchsessioncache_numincrementalfetchsessions",
        "Incremental fetch sessions kept (FetchSessionCache NumIncrementalFetchSessions).",
    ),
    (
        "kafka_server_fetchsessioncache_numincrementalfetchpartitionscached",
        "Partitions held by incremental fetch sessions (NumIncrementalFetchPartitionsCached).",
    ),
    (
        "kafka_server_fetchsessioncache_incrementalfetchsessionevictions_total",
        "Fetch sessions evicted to make room for others (IncrementalFetchSessionEvictionsPerSec).",
    ),
];

impl FetchSessionCollector {
    fn new(caches: Arc<RwLock<Vec<Weak<FetchSessionCache>>>>) -> Self {
        let descs = FETCH_SESSION_METRICS
            .iter()
            .filter_map(|(n, h)| {
                Desc::new(n.to_string(), h.to_string(), vec![], Default::default()).ok()
            })
            .collect();
        FetchSessionCollector { caches, descs }
    }
}

impl Collector for FetchSessionCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let mut totals = [0u64; 3];
        for c in self
            .caches
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter_map(Weak::upgrade)
        {
            let stats = c.stats();
            totals[0] += stats.sessions as u64;
            totals[1] += stats.partitions as u64;
            totals[2] += stats.evictions;
        }
        let [
            (sessions, sessions_help),
            (partitions, partitions_help),
            (evictions, evictions_help),
        ] = FETCH_SESSION_METRICS;
        let mut counter = MetricFamily::default();
        counter.set_name(evictions.to_string());
        counter.set_help(evictions_help.to_string());
        counter.set_field_type(prometheus::proto::MetricType::COUNTER);
        let mut m = prometheus::proto::Metric::default();
        let mut c = prometheus::proto::Counter::default();
        c.set_value(totals[2] as f64);
        m.set_counter(c);
        counter.mut_metric().push(m);
        vec![
            gauge_family(sessions, sessions_help, vec![(vec![], totals[0] as f64)]),
            gauge_family(
                partitions,
                partitions_help,
                vec![(vec![], totals[1] as f64)],
            ),
            counter,
        ]
    }
}
