//! Prometheus metrics under the names Prometheus' JMX exporter gives Apache Kafka's MBeans
//! (`kafka_server_brokertopicmetrics_messagesin_total`, ...), so dashboards built for Kafka
//! work unchanged, and the `/metrics` endpoint on `metrics.port`.

pub mod http;

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, RwLock, Weak};
use std::time::Duration;

use prometheus::core::{Collector, Desc};
use prometheus::proto::{MetricFamily, MetricType};
use prometheus::{
    HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGaugeVec, Opts, Registry,
};

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
    fetch_message_conversions: IntCounterVec,
    requests: IntCounterVec,
    request_time: HistogramVec,
    /// Open connections per listener (socket-server-metrics connection-count).
    pub connections: IntGaugeVec,
    /// Authentications per listener and outcome (socket-server-metrics
    /// successful-authentication-total / failed-authentication-total).
    successful_authentications: IntCounterVec,
    failed_authentications: IntCounterVec,
    /// ACL decisions (KIP-801's authorizer-metrics authorization-allowed / -denied, as counts).
    authorizations_allowed: IntCounter,
    authorizations_denied: IntCounter,
    /// One collector per set of scraped families, keyed by the set's first family name.
    scraped: Mutex<HashMap<&'static str, Arc<ScrapedCollector>>>,
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
            fetch_message_conversions: counter(
                &registry,
                "kafka_server_brokertopicmetrics_fetchmessageconversions_total",
                "Records down-converted for consumers on Fetch v0-3, per topic (FetchMessageConversionsPerSec).",
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
                let g = IntGaugeVec::new(
                    Opts::new(
                        "kafka_server_socketservermetrics_connection_count",
                        "Open client connections per listener (socket-server-metrics connection-count).",
                    ),
                    &["listener"],
                )
                .unwrap_or_else(|e| panic!("connections: {e}"));
                registry
                    .register(Box::new(g.clone()))
                    .unwrap_or_else(|e| panic!("connections: {e}"));
                g
            },
            successful_authentications: counter(
                &registry,
                "kafka_server_socketservermetrics_successful_authentication_total",
                "Connections that authenticated (TLS or SASL), per listener.",
                &["listener"],
            ),
            failed_authentications: counter(
                &registry,
                "kafka_server_socketservermetrics_failed_authentication_total",
                "Connections that failed to authenticate (TLS or SASL), per listener.",
                &["listener"],
            ),
            // Unlabelled: counted on every checked request, so no label lookup per count.
            authorizations_allowed: counter(
                &registry,
                "kafka_server_authorizer_metrics_authorization_allowed_total",
                "Authorization checks that allowed the request.",
                &[],
            )
            .with_label_values(&[] as &[&str]),
            authorizations_denied: counter(
                &registry,
                "kafka_server_authorizer_metrics_authorization_denied_total",
                "Authorization checks that denied the request.",
                &[],
            )
            .with_label_values(&[] as &[&str]),
            scraped: Mutex::new(HashMap::new()),
            registry,
        };
        // Process CPU, memory and file descriptors, as the JMX exporter's process_* metrics.
        let _ = m.registry.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ));
        m
    }

    /// One authentication on `listener` ended, well or not.
    pub fn authentication(&self, listener: &str, succeeded: bool) {
        let family = if succeeded {
            &self.successful_authentications
        } else {
            &self.failed_authentications
        };
        family.with_label_values(&[listener]).inc();
    }

    /// One ACL check decided.
    pub fn authorization(&self, allowed: bool) {
        let family = if allowed {
            &self.authorizations_allowed
        } else {
            &self.authorizations_denied
        };
        family.inc();
    }

    /// Reports `families` from `source` at every scrape, for as long as the source lives: a
    /// stopped broker's state drops out by itself (tests run several brokers per process).
    /// Every source of the same families shares one collector, which adds up their samples.
    /// The owner of the state calls this (`ReplicaManager::register_metrics`, ...), so this
    /// module knows none of them.
    pub fn watch<S: Scraped + 'static>(&self, families: &'static [Family], source: &Arc<S>) {
        let Some(first) = families.first() else {
            return;
        };
        let source: Weak<dyn Scraped> = Arc::downgrade(source) as Weak<dyn Scraped>;
        let mut scraped = self.scraped.lock().unwrap_or_else(|p| p.into_inner());
        let collector = scraped.entry(first.name).or_insert_with(|| {
            let collector = Arc::new(ScrapedCollector::new(families));
            if let Err(e) = self
                .registry
                .register(Box::new(SharedCollector(collector.clone())))
            {
                tracing::error!(family = first.name, error = %e, "could not register metrics");
            }
            collector
        });
        let mut sources = collector.sources.write().unwrap_or_else(|p| p.into_inner());
        sources.retain(|w| w.strong_count() > 0);
        sources.push(source);
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

    /// Records rewritten in an older message format for a consumer's fetch.
    pub fn fetch_converted(&self, topic: &str, records: u64) {
        self.fetch_message_conversions
            .with_label_values(&[topic])
            .inc_by(records);
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

/// One metric family computed at scrape time from live state.
#[derive(Clone, Copy)]
pub struct Family {
    pub name: &'static str,
    pub help: &'static str,
    pub labels: &'static [&'static str],
    pub kind: MetricType,
    /// Whether the samples of several sources add up (counts, sizes); otherwise the largest is
    /// kept (a flag such as "is the active controller").
    pub additive: bool,
}

impl Family {
    /// A gauge with no labels.
    pub const fn gauge(name: &'static str, help: &'static str) -> Family {
        Family {
            name,
            help,
            labels: &[],
            kind: MetricType::GAUGE,
            additive: true,
        }
    }

    /// This family with one sample per label set; the labels are given in `labels` order.
    pub fn samples(&self, points: Vec<(Vec<String>, f64)>) -> MetricFamily {
        let mut family = MetricFamily::default();
        family.set_name(self.name.to_string());
        family.set_help(self.help.to_string());
        family.set_field_type(self.kind);
        for (values, value) in points {
            let mut m = prometheus::proto::Metric::default();
            if self.kind == MetricType::COUNTER {
                let mut c = prometheus::proto::Counter::default();
                c.set_value(value);
                m.set_counter(c);
            } else {
                let mut g = prometheus::proto::Gauge::default();
                g.set_value(value);
                m.set_gauge(g);
            }
            m.set_label(
                self.labels
                    .iter()
                    .zip(values)
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

    /// This family with a single unlabelled sample.
    pub fn value(&self, value: f64) -> MetricFamily {
        self.samples(vec![(vec![], value)])
    }
}

/// State whose metrics are read when Prometheus scrapes rather than counted as they happen
/// (partition counts, groups, fetch sessions), implemented by the state's owner.
pub trait Scraped: Send + Sync {
    /// This one instance's samples of the families it was watched with.
    fn scrape(&self) -> Vec<MetricFamily>;
}

/// Every live source of one set of families.
struct ScrapedCollector {
    families: &'static [Family],
    descs: Vec<Desc>,
    sources: RwLock<Vec<Weak<dyn Scraped>>>,
}

impl ScrapedCollector {
    fn new(families: &'static [Family]) -> ScrapedCollector {
        let descs = families
            .iter()
            .filter_map(|f| {
                let labels = f.labels.iter().map(|l| l.to_string()).collect();
                Desc::new(f.name.into(), f.help.into(), labels, HashMap::new()).ok()
            })
            .collect();
        ScrapedCollector {
            families,
            descs,
            sources: RwLock::new(Vec::new()),
        }
    }
}

/// The registry owns its collectors, while `Metrics::watch` keeps adding sources to them.
struct SharedCollector(Arc<ScrapedCollector>);

impl Collector for SharedCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.0.descs.iter().collect()
    }

    /// Families of several sources (one process's brokers) are merged sample by sample, as
    /// each family says.
    fn collect(&self) -> Vec<MetricFamily> {
        let sources: Vec<Arc<dyn Scraped>> = self
            .0
            .sources
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter_map(Weak::upgrade)
            .collect();
        let mut out: Vec<MetricFamily> = Vec::new();
        for family in sources.iter().flat_map(|s| s.scrape()) {
            match out.iter_mut().find(|f| f.name() == family.name()) {
                None => out.push(family),
                Some(merged) => {
                    let additive = self
                        .0
                        .families
                        .iter()
                        .any(|f| f.name == family.name() && f.additive);
                    for sample in family.get_metric() {
                        merge_sample(merged, sample, additive);
                    }
                }
            }
        }
        out
    }
}

/// Merges a sample into the one with the same labels in `family` (their sum, or the larger),
/// or appends it.
fn merge_sample(family: &mut MetricFamily, sample: &prometheus::proto::Metric, additive: bool) {
    let family_is_counter = family.get_field_type() == MetricType::COUNTER;
    let merge = |a: f64, b: f64| if additive { a + b } else { a.max(b) };
    let same = family
        .mut_metric()
        .iter_mut()
        .find(|m| m.get_label() == sample.get_label());
    match same {
        None => family.mut_metric().push(sample.clone()),
        Some(m) => {
            if family_is_counter {
                let mut c = prometheus::proto::Counter::default();
                c.set_value(merge(m.get_counter().value(), sample.get_counter().value()));
                m.set_counter(c);
            } else {
                let mut g = prometheus::proto::Gauge::default();
                g.set_value(merge(m.get_gauge().value(), sample.get_gauge().value()));
                m.set_gauge(g);
            }
        }
    }
}
