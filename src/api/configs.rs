//! DescribeConfigs: every topic config with its value and where the value comes from, and the
//! broker's own settings.

use std::collections::BTreeMap;

use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};
use kafka_protocol::protocol::StrBytes;

use super::{Api, errors};
use crate::config::{BrokerConfig, LogConfig};

const TOPIC: i8 = 2;
const BROKER: i8 = 4;

/// Kafka's `ConfigSource` values.
const DYNAMIC_TOPIC_CONFIG: i8 = 1;
const STATIC_BROKER_CONFIG: i8 = 4;
const DEFAULT_CONFIG: i8 = 5;

/// Topic config name, the broker key it defaults from, and its value under `log`; topic
/// settings we do not act on yet report Kafka's default.
fn topic_values(log: &LogConfig) -> Vec<(&'static str, Option<&'static str>, String)> {
    let policy = match (log.cleanup_delete, log.cleanup_compact) {
        (true, true) => "compact,delete",
        (false, true) => "compact",
        _ => "delete",
    };
    let max = i64::MAX.to_string();
    vec![
        (
            "cleanup.policy",
            Some("log.cleanup.policy"),
            policy.to_string(),
        ),
        (
            "compression.type",
            Some("compression.type"),
            "producer".into(),
        ),
        (
            "delete.retention.ms",
            Some("log.cleaner.delete.retention.ms"),
            "86400000".into(),
        ),
        (
            "file.delete.delay.ms",
            Some("log.segment.delete.delay.ms"),
            log.file_delete_delay_ms.to_string(),
        ),
        (
            "flush.messages",
            Some("log.flush.interval.messages"),
            log.flush_interval_messages.min(i64::MAX as u64).to_string(),
        ),
        (
            "flush.ms",
            Some("log.flush.interval.ms"),
            log.flush_interval_ms.to_string(),
        ),
        (
            "follower.replication.throttled.replicas",
            None,
            String::new(),
        ),
        (
            "index.interval.bytes",
            Some("log.index.interval.bytes"),
            log.index_interval_bytes.to_string(),
        ),
        ("leader.replication.throttled.replicas", None, String::new()),
        (
            "max.compaction.lag.ms",
            Some("log.cleaner.max.compaction.lag.ms"),
            max.clone(),
        ),
        (
            "max.message.bytes",
            Some("message.max.bytes"),
            log.max_message_bytes.to_string(),
        ),
        (
            "message.downconversion.enable",
            Some("log.message.downconversion.enable"),
            "true".into(),
        ),
        (
            "message.timestamp.difference.max.ms",
            Some("log.message.timestamp.difference.max.ms"),
            max.clone(),
        ),
        (
            "message.timestamp.type",
            Some("log.message.timestamp.type"),
            if log.log_append_time {
                "LogAppendTime"
            } else {
                "CreateTime"
            }
            .into(),
        ),
        (
            "min.cleanable.dirty.ratio",
            Some("log.cleaner.min.cleanable.ratio"),
            "0.5".into(),
        ),
        (
            "min.compaction.lag.ms",
            Some("log.cleaner.min.compaction.lag.ms"),
            "0".into(),
        ),
        (
            "min.insync.replicas",
            Some("min.insync.replicas"),
            "1".into(),
        ),
        ("preallocate", Some("log.preallocate"), "false".into()),
        (
            "retention.bytes",
            Some("log.retention.bytes"),
            log.retention_bytes.to_string(),
        ),
        (
            "retention.ms",
            Some("log.retention.ms"),
            log.retention_ms.to_string(),
        ),
        (
            "segment.bytes",
            Some("log.segment.bytes"),
            log.segment_bytes.to_string(),
        ),
        (
            "segment.index.bytes",
            Some("log.index.size.max.bytes"),
            log.segment_index_bytes.to_string(),
        ),
        ("segment.jitter.ms", Some("log.roll.jitter.ms"), "0".into()),
        (
            "segment.ms",
            Some("log.roll.ms"),
            log.segment_ms.to_string(),
        ),
        (
            "unclean.leader.election.enable",
            Some("unclean.leader.election.enable"),
            "false".into(),
        ),
    ]
}

fn broker_values(c: &BrokerConfig) -> Vec<(&'static str, String)> {
    let list = |ls: &[crate::config::Listener]| {
        ls.iter()
            .map(|l| l.to_string())
            .collect::<Vec<_>>()
            .join(",")
    };
    vec![
        ("advertised.listeners", list(&c.advertised_listeners)),
        (
            "auto.create.topics.enable",
            c.auto_create_topics_enable.to_string(),
        ),
        ("broker.id", c.broker_id.to_string()),
        (
            "default.replication.factor",
            c.default_replication_factor.to_string(),
        ),
        ("delete.topic.enable", c.delete_topic_enable.to_string()),
        ("listeners", list(&c.listeners)),
        (
            "log.dirs",
            c.log_dirs
                .iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(","),
        ),
        (
            "log.index.interval.bytes",
            c.log.index_interval_bytes.to_string(),
        ),
        ("log.retention.bytes", c.log.retention_bytes.to_string()),
        ("log.retention.ms", c.log.retention_ms.to_string()),
        ("log.segment.bytes", c.log.segment_bytes.to_string()),
        ("message.max.bytes", c.message_max_bytes.to_string()),
        ("num.partitions", c.num_partitions.to_string()),
        (
            "offsets.topic.num.partitions",
            c.offsets_topic_num_partitions.to_string(),
        ),
        (
            "offsets.topic.replication.factor",
            c.offsets_topic_replication_factor.to_string(),
        ),
        (
            "socket.request.max.bytes",
            c.socket_request_max_bytes.to_string(),
        ),
        (
            "zookeeper.connect",
            c.zookeeper_connect.clone().unwrap_or_default(),
        ),
    ]
}

fn entry(
    name: &str,
    value: String,
    source: i8,
    read_only: bool,
    version: i16,
    synonyms: Vec<DescribeConfigsSynonym>,
) -> DescribeConfigsResourceResult {
    let mut e = DescribeConfigsResourceResult::default();
    e.name = StrBytes::from_string(name.to_string());
    e.value = Some(StrBytes::from_string(value));
    e.read_only = read_only;
    if version == 0 {
        e.is_default = source == DEFAULT_CONFIG;
    } else {
        e.config_source = source;
        e.synonyms = synonyms;
    }
    e
}

fn synonym(name: &str, value: &str, source: i8) -> DescribeConfigsSynonym {
    let mut s = DescribeConfigsSynonym::default();
    s.name = StrBytes::from_string(name.to_string());
    s.value = Some(StrBytes::from_string(value.to_string()));
    s.source = source;
    s
}

pub async fn describe(
    api: &Api,
    request: DescribeConfigsRequest,
    version: i16,
) -> DescribeConfigsResponse {
    let kafka_defaults = BrokerConfig::default();
    let mut response = DescribeConfigsResponse::default();
    for res in request.resources {
        let mut r = DescribeConfigsResult::default();
        r.resource_type = res.resource_type;
        r.resource_name = res.resource_name.clone();
        // A null or empty key list asks for every config, as Kafka's ConfigHelper reads it.
        let wanted = |name: &str| {
            res.configuration_keys
                .as_ref()
                .is_none_or(|keys| keys.is_empty() || keys.iter().any(|k| &**k == name))
        };
        let synonyms_wanted = version >= 1 && request.include_synonyms;
        match res.resource_type {
            // Read from the store, as Kafka's AdminZkClient does: every broker answers for
            // every topic, hosted here or not.
            TOPIC => match topic_overrides(api, &res.resource_name).await {
                None => {
                    r.error_code = errors::UNKNOWN_TOPIC_OR_PARTITION;
                    r.error_message = Some(StrBytes::from_string(format!(
                        "topic {} does not exist",
                        &*res.resource_name
                    )));
                }
                Some(overrides) => {
                    let overrides: &BTreeMap<String, String> = &overrides;
                    let broker_level = topic_values(&api.config.log);
                    let kafka_level = topic_values(&kafka_defaults.log);
                    for ((name, broker_key, broker_value), (_, _, default_value)) in
                        broker_level.into_iter().zip(kafka_level)
                    {
                        if !wanted(name) {
                            continue;
                        }
                        let from_broker = broker_value != default_value;
                        let mut synonyms = Vec::new();
                        if synonyms_wanted {
                            if let Some(v) = overrides.get(name) {
                                synonyms.push(synonym(name, v, DYNAMIC_TOPIC_CONFIG));
                            }
                            if let (Some(key), true) = (broker_key, from_broker) {
                                synonyms.push(synonym(key, &broker_value, STATIC_BROKER_CONFIG));
                            }
                            if let Some(key) = broker_key {
                                synonyms.push(synonym(key, &default_value, DEFAULT_CONFIG));
                            }
                        }
                        let (value, source) = match overrides.get(name) {
                            Some(v) => (v.clone(), DYNAMIC_TOPIC_CONFIG),
                            None if from_broker => (broker_value, STATIC_BROKER_CONFIG),
                            None => (default_value, DEFAULT_CONFIG),
                        };
                        r.configs
                            .push(entry(name, value, source, false, version, synonyms));
                    }
                }
            },
            BROKER => {
                let ours = res.resource_name.is_empty()
                    || res.resource_name.parse::<i32>().ok() == Some(api.config.broker_id);
                if !ours {
                    r.error_code = errors::INVALID_REQUEST;
                    r.error_message = Some(StrBytes::from_string(format!(
                        "broker {} is not this broker",
                        &*res.resource_name
                    )));
                } else {
                    let defaults: BTreeMap<_, _> =
                        broker_values(&kafka_defaults).into_iter().collect();
                    for (name, value) in broker_values(&api.config) {
                        if !wanted(name) {
                            continue;
                        }
                        let source = if defaults.get(name) == Some(&value) {
                            DEFAULT_CONFIG
                        } else {
                            STATIC_BROKER_CONFIG
                        };
                        let synonyms = if synonyms_wanted {
                            vec![synonym(name, &value, source)]
                        } else {
                            vec![]
                        };
                        r.configs
                            .push(entry(name, value, source, true, version, synonyms));
                    }
                }
            }
            other => {
                r.error_code = errors::INVALID_REQUEST;
                r.error_message = Some(StrBytes::from_string(format!(
                    "resource type {other} is not supported"
                )));
            }
        }
        response.results.push(r);
    }
    response
}

/// A topic's config overrides, or `None` when the topic does not exist.
async fn topic_overrides(api: &Api, topic: &str) -> Option<BTreeMap<String, String>> {
    api.cache.topic(topic)?;
    match api.controller.topic_overrides(topic).await {
        Ok(o) => Some(o),
        Err(e) => {
            tracing::warn!(topic, error = %e, "cannot read topic config; showing defaults");
            Some(BTreeMap::new())
        }
    }
}
