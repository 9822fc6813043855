//! DescribeConfigs, AlterConfigs and IncrementalAlterConfigs over the wire against a broker in
//! this process: what is listed, what is refused with which error, and that a change reaches
//! the open logs, the metadata store and the next start.

use crate::common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::client_batch;
use common::wire::{
    Conn, create_topic, create_topic_with, fetch, produce, produce_with_acks, s, start_broker,
};
use kafka_protocol::messages::describe_configs_response::DescribeConfigsResourceResult;
use kafka_protocol::messages::*;
use odradek::log::segment::now_ms;
use odradek::server::Broker;

const TOPIC: i8 = 2;
const BROKER: i8 = 4;
const SET: i8 = 0;
const DELETE: i8 = 1;
const APPEND: i8 = 2;
const SUBTRACT: i8 = 3;

const DYNAMIC_TOPIC: i8 = 1;
const DYNAMIC_BROKER: i8 = 2;
const DYNAMIC_DEFAULT_BROKER: i8 = 3;
const STATIC_BROKER: i8 = 4;
const DEFAULT: i8 = 5;

const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const MESSAGE_TOO_LARGE: i16 = 10;
const INVALID_TIMESTAMP: i16 = 32;
const INVALID_CONFIG: i16 = 40;
const INVALID_REQUEST: i16 = 42;

async fn describe_version(
    c: &mut Conn,
    resource_type: i8,
    name: &str,
    version: i16,
) -> describe_configs_response::DescribeConfigsResult {
    let mut res = describe_configs_request::DescribeConfigsResource::default();
    res.resource_type = resource_type;
    res.resource_name = s(name);
    res.configuration_keys = None;
    let mut req = DescribeConfigsRequest::default();
    req.resources.push(res);
    req.include_synonyms = version >= 1;
    c.send(version, req).await.results.remove(0)
}

async fn describe(
    c: &mut Conn,
    resource_type: i8,
    name: &str,
) -> Vec<DescribeConfigsResourceResult> {
    let r = describe_version(c, resource_type, name, 4).await;
    assert_eq!(r.error_code, 0, "{:?}", r.error_message);
    r.configs
}

fn find<'a>(
    configs: &'a [DescribeConfigsResourceResult],
    name: &str,
) -> &'a DescribeConfigsResourceResult {
    configs
        .iter()
        .find(|e| &*e.name == name)
        .unwrap_or_else(|| panic!("{name} is not listed"))
}

/// (value, source) of one config.
fn value_source(configs: &[DescribeConfigsResourceResult], name: &str) -> (Option<String>, i8) {
    let e = find(configs, name);
    (e.value.as_ref().map(|v| v.to_string()), e.config_source)
}

fn synonyms(
    configs: &[DescribeConfigsResourceResult],
    name: &str,
) -> Vec<(String, Option<String>, i8)> {
    find(configs, name)
        .synonyms
        .iter()
        .map(|s| {
            (
                s.name.to_string(),
                s.value.as_ref().map(|v| v.to_string()),
                s.source,
            )
        })
        .collect()
}

/// AlterConfigs v2 of one resource; returns its error code.
async fn alter(
    c: &mut Conn,
    resource_type: i8,
    name: &str,
    configs: &[(&str, &str)],
    validate_only: bool,
) -> i16 {
    let mut res = alter_configs_request::AlterConfigsResource::default();
    res.resource_type = resource_type;
    res.resource_name = s(name);
    for (k, v) in configs {
        let mut e = alter_configs_request::AlterableConfig::default();
        e.name = s(k);
        e.value = Some(s(v));
        res.configs.push(e);
    }
    let mut req = AlterConfigsRequest::default();
    req.resources.push(res);
    req.validate_only = validate_only;
    let mut resp = c.send(2, req).await;
    let r = resp.responses.remove(0);
    assert_eq!((r.resource_type, &*r.resource_name), (resource_type, name));
    r.error_code
}

type Op<'a> = (&'a str, i8, Option<&'a str>);

fn incremental_resource(
    resource_type: i8,
    name: &str,
    ops: &[Op],
) -> incremental_alter_configs_request::AlterConfigsResource {
    let mut res = incremental_alter_configs_request::AlterConfigsResource::default();
    res.resource_type = resource_type;
    res.resource_name = s(name);
    for (k, op, v) in ops {
        let mut e = incremental_alter_configs_request::AlterableConfig::default();
        e.name = s(k);
        e.config_operation = *op;
        e.value = v.map(s);
        res.configs.push(e);
    }
    res
}

async fn incremental_many(
    c: &mut Conn,
    resources: Vec<incremental_alter_configs_request::AlterConfigsResource>,
    validate_only: bool,
) -> Vec<i16> {
    let mut req = IncrementalAlterConfigsRequest::default();
    req.resources = resources;
    req.validate_only = validate_only;
    let resp = c.send(1, req).await;
    resp.responses.iter().map(|r| r.error_code).collect()
}

async fn incremental(c: &mut Conn, resource_type: i8, name: &str, ops: &[Op<'_>]) -> i16 {
    incremental_many(
        c,
        vec![incremental_resource(resource_type, name, ops)],
        false,
    )
    .await[0]
}

async fn incremental_ok(c: &mut Conn, resource_type: i8, name: &str, ops: &[Op<'_>]) {
    assert_eq!(
        incremental(c, resource_type, name, ops).await,
        0,
        "{name}: {ops:?}"
    );
}

fn log_config(broker: &Broker, topic: &str) -> odradek::config::LogConfig {
    broker
        .api()
        .replicas
        .get(topic, 0)
        .expect("hosted")
        .log
        .lock()
        .config()
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_topic_and_broker_config_is_described_with_its_default_source_and_synonyms() {
    let tmp = tempfile::tempdir().unwrap();
    let broker = start_broker(
        tmp.path(),
        &["log.segment.bytes=50000", "log.retention.ms=7200000"],
    )
    .await;
    let mut c = Conn::connect(broker.port).await;
    create_topic_with(
        &mut c,
        "described",
        &[("retention.bytes", "1000"), ("compression.gzip.level", "5")],
    )
    .await;
    let configs = describe(&mut c, TOPIC, "described").await;
    let names: Vec<&str> = configs.iter().map(|e| &*e.name).collect();
    for expected in [
        "cleanup.policy",
        "compression.gzip.level",
        "compression.lz4.level",
        "compression.type",
        "compression.zstd.level",
        "delete.retention.ms",
        "file.delete.delay.ms",
        "flush.messages",
        "flush.ms",
        "follower.replication.throttled.replicas",
        "index.interval.bytes",
        "leader.replication.throttled.replicas",
        "local.retention.bytes",
        "local.retention.ms",
        "max.compaction.lag.ms",
        "max.message.bytes",
        "message.downconversion.enable",
        "message.format.version",
        "message.timestamp.after.max.ms",
        "message.timestamp.before.max.ms",
        "message.timestamp.difference.max.ms",
        "message.timestamp.type",
        "min.cleanable.dirty.ratio",
        "min.compaction.lag.ms",
        "min.insync.replicas",
        "preallocate",
        "remote.log.copy.disable",
        "remote.log.delete.on.disable",
        "remote.storage.enable",
        "retention.bytes",
        "retention.ms",
        "segment.bytes",
        "segment.index.bytes",
        "segment.jitter.ms",
        "segment.ms",
        "unclean.leader.election.enable",
    ] {
        assert!(
            names.contains(&expected),
            "{expected} missing from {names:?}"
        );
    }
    assert_eq!(names.len(), 36);

    let flush_messages_default = i64::MAX.to_string();
    for (name, value, source) in [
        ("retention.bytes", "1000", DYNAMIC_TOPIC),
        ("compression.gzip.level", "5", DYNAMIC_TOPIC),
        ("segment.bytes", "50000", STATIC_BROKER),
        ("retention.ms", "7200000", STATIC_BROKER),
        ("cleanup.policy", "delete", DEFAULT),
        ("min.cleanable.dirty.ratio", "0.5", DEFAULT),
        ("flush.messages", flush_messages_default.as_str(), DEFAULT),
        ("leader.replication.throttled.replicas", "", DEFAULT),
    ] {
        assert_eq!(
            value_source(&configs, name),
            (Some(value.to_string()), source),
            "{name}"
        );
    }
    assert_eq!(
        synonyms(&configs, "retention.bytes"),
        vec![
            ("retention.bytes".into(), Some("1000".into()), DYNAMIC_TOPIC),
            ("log.retention.bytes".into(), Some("-1".into()), DEFAULT),
        ]
    );
    assert_eq!(
        synonyms(&configs, "segment.bytes"),
        vec![
            (
                "log.segment.bytes".into(),
                Some("50000".into()),
                STATIC_BROKER
            ),
            (
                "log.segment.bytes".into(),
                Some("1073741824".into()),
                DEFAULT
            ),
        ]
    );
    assert!(synonyms(&configs, "leader.replication.throttled.replicas").is_empty());
    assert_eq!(find(&configs, "segment.bytes").config_type, 3, "INT");
    assert_eq!(find(&configs, "cleanup.policy").config_type, 7, "LIST");
    assert!(configs.iter().all(|e| !e.read_only && !e.is_sensitive));

    // Version 0 has is_default instead of a source; a key list narrows the answer.
    let v0 = describe_version(&mut c, TOPIC, "described", 0)
        .await
        .configs;
    assert!(find(&v0, "cleanup.policy").is_default && !find(&v0, "segment.bytes").is_default);
    let mut res = describe_configs_request::DescribeConfigsResource::default();
    res.resource_type = TOPIC;
    res.resource_name = s("described");
    res.configuration_keys = Some(vec![s("segment.ms")]);
    let mut req = DescribeConfigsRequest::default();
    req.resources.push(res);
    let narrowed = c.send(1, req).await;
    assert_eq!(
        narrowed.results[0]
            .configs
            .iter()
            .map(|e| &*e.name)
            .collect::<Vec<_>>(),
        vec!["segment.ms"]
    );
    assert_eq!(
        describe_version(&mut c, TOPIC, "missing", 4)
            .await
            .error_code,
        UNKNOWN_TOPIC_OR_PARTITION
    );

    let b = describe(&mut c, BROKER, "0").await;
    assert_eq!(
        value_source(&b, "log.retention.ms"),
        (Some("7200000".into()), STATIC_BROKER)
    );
    assert!(
        !find(&b, "log.retention.ms").read_only,
        "changeable at runtime"
    );
    assert_eq!(
        value_source(&b, "log.retention.hours"),
        (Some("168".into()), DEFAULT)
    );
    assert!(find(&b, "log.retention.hours").read_only);
    assert!(find(&b, "broker.id").read_only);
    // Every KafkaConfig key the broker reads is listed with its default, as Kafka 3.9 lists it.
    for (key, default) in [
        ("replica.lag.time.max.ms", "30000"),
        ("transaction.state.log.replication.factor", "3"),
        ("group.max.size", "2147483647"),
        ("controlled.shutdown.enable", "true"),
    ] {
        assert_eq!(
            value_source(&b, key),
            (Some(default.into()), DEFAULT),
            "{key}"
        );
        assert!(find(&b, key).read_only, "{key}");
    }
    // The authorizer's own keys are no KafkaConfig keys: listed only when set.
    assert!(
        b.iter()
            .all(|e| &*e.name != "super.users" && &*e.name != "allow.everyone.if.no.acl.found")
    );
    assert_eq!(
        value_source(&b, "log.roll.ms"),
        (None, DEFAULT),
        "null, as Kafka shows it"
    );
    assert!(
        describe(&mut c, BROKER, "").await.is_empty(),
        "no cluster-wide dynamic config yet"
    );
    assert_eq!(
        describe_version(&mut c, BROKER, "7", 4).await.error_code,
        INVALID_REQUEST
    );
    assert_eq!(
        describe_version(&mut c, BROKER, "zero", 4).await.error_code,
        INVALID_REQUEST
    );
    broker.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alter_configs_replaces_a_topics_overrides_and_refuses_bad_ones() {
    let tmp = tempfile::tempdir().unwrap();
    let broker = start_broker(tmp.path(), &[]).await;
    let mut c = Conn::connect(broker.port).await;
    create_topic_with(&mut c, "altered", &[("segment.ms", "3600000")]).await;

    assert_eq!(
        alter(
            &mut c,
            TOPIC,
            "altered",
            &[("retention.ms", "60000"), ("max.message.bytes", "2000")],
            false
        )
        .await,
        0
    );
    let configs = describe(&mut c, TOPIC, "altered").await;
    assert_eq!(
        value_source(&configs, "retention.ms"),
        (Some("60000".into()), DYNAMIC_TOPIC)
    );
    assert_eq!(
        value_source(&configs, "segment.ms"),
        (Some("604800000".into()), DEFAULT),
        "replaced, not merged"
    );
    let cfg = log_config(&broker, "altered");
    assert_eq!(
        (cfg.retention_ms, cfg.max_message_bytes, cfg.segment_ms),
        (60_000, 2000, 604_800_000)
    );

    // Stored as Kafka's AdminZkClient stores it, with a notification for the other brokers.
    let store = broker.api().configs.store().clone();
    let (data, _) = store.get("/config/topics/altered").await.unwrap().unwrap();
    let json: serde_json::Value = serde_json::from_slice(&data.unwrap()).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"version":1,"config":{"retention.ms":"60000","max.message.bytes":"2000"}})
    );
    let changes = store.children("/config/changes").await.unwrap().unwrap();
    let last = changes.iter().max().unwrap();
    let (data, _) = store
        .get(&format!("/config/changes/{last}"))
        .await
        .unwrap()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&data.unwrap()).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"version":2,"entity_path":"topics/altered"})
    );

    for (configs, code) in [
        (&[("retention.ms", "soon")][..], INVALID_CONFIG),
        (&[("retention.ms", "-2")][..], INVALID_CONFIG),
        (&[("no.such.config", "1")][..], INVALID_CONFIG),
        (&[("cleanup.policy", "compact,shred")][..], INVALID_CONFIG),
        (
            &[
                ("min.compaction.lag.ms", "10"),
                ("max.compaction.lag.ms", "5"),
            ][..],
            INVALID_CONFIG,
        ),
        (&[("remote.storage.enable", "true")][..], INVALID_CONFIG),
    ] {
        assert_eq!(
            alter(&mut c, TOPIC, "altered", configs, false).await,
            code,
            "{configs:?}"
        );
    }
    assert_eq!(
        alter(&mut c, TOPIC, "absent", &[("retention.ms", "1")], false).await,
        UNKNOWN_TOPIC_OR_PARTITION
    );
    assert_eq!(
        alter(&mut c, TOPIC, "", &[("retention.ms", "1")], false).await,
        INVALID_REQUEST
    );
    assert_eq!(
        alter(&mut c, 8, "0", &[("kafka", "DEBUG")], false).await,
        INVALID_REQUEST,
        "BROKER_LOGGER"
    );
    assert_eq!(
        alter(&mut c, TOPIC, "altered", &[("retention.ms", "5000")], true).await,
        0
    );
    assert_eq!(
        log_config(&broker, "altered").retention_ms,
        60_000,
        "validate_only changes nothing"
    );
    assert_eq!(
        value_source(&describe(&mut c, TOPIC, "altered").await, "retention.ms")
            .0
            .as_deref(),
        Some("60000")
    );

    // Broker resources: only keys Kafka changes at runtime, errors are INVALID_REQUEST.
    for (broker_name, configs) in [
        ("0", [("log.retention.hours", "1")]),
        ("0", [("broker.id", "4")]),
        ("0", [("log.retention.ms", "soon")]),
        ("3", [("log.retention.ms", "1000")]),
    ] {
        assert_eq!(
            alter(&mut c, BROKER, broker_name, &configs, false).await,
            INVALID_REQUEST,
            "broker {broker_name:?}: {configs:?}"
        );
    }
    assert_eq!(
        alter(&mut c, BROKER, "", &[("log.segment.bytes", "4096")], false).await,
        0
    );
    let b = describe(&mut c, BROKER, "").await;
    assert_eq!(b.len(), 1);
    assert_eq!(
        value_source(&b, "log.segment.bytes"),
        (Some("4096".into()), DYNAMIC_DEFAULT_BROKER)
    );
    broker.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incremental_alter_configs_set_delete_append_subtract_and_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let broker = start_broker(tmp.path(), &[]).await;
    let mut c = Conn::connect(broker.port).await;
    create_topic_with(&mut c, "inc", &[("retention.bytes", "100000")]).await;

    let policy =
        |configs: &[DescribeConfigsResourceResult]| value_source(configs, "cleanup.policy");
    incremental_ok(
        &mut c,
        TOPIC,
        "inc",
        &[("retention.ms", SET, Some("90000"))],
    )
    .await;
    // APPEND starts from the default list, delete.
    incremental_ok(
        &mut c,
        TOPIC,
        "inc",
        &[("cleanup.policy", APPEND, Some("compact"))],
    )
    .await;
    let configs = describe(&mut c, TOPIC, "inc").await;
    assert_eq!(
        policy(&configs),
        (Some("delete,compact".into()), DYNAMIC_TOPIC)
    );
    assert_eq!(
        value_source(&configs, "retention.ms"),
        (Some("90000".into()), DYNAMIC_TOPIC)
    );
    assert_eq!(
        value_source(&configs, "retention.bytes"),
        (Some("100000".into()), DYNAMIC_TOPIC),
        "kept"
    );
    let cfg = log_config(&broker, "inc");
    assert!(cfg.cleanup_compact && cfg.cleanup_delete);
    incremental_ok(
        &mut c,
        TOPIC,
        "inc",
        &[("cleanup.policy", APPEND, Some("compact"))],
    )
    .await;
    assert_eq!(
        policy(&describe(&mut c, TOPIC, "inc").await).0.as_deref(),
        Some("delete,compact"),
        "no duplicates"
    );
    incremental_ok(
        &mut c,
        TOPIC,
        "inc",
        &[("cleanup.policy", SUBTRACT, Some("delete"))],
    )
    .await;
    assert_eq!(
        policy(&describe(&mut c, TOPIC, "inc").await).0.as_deref(),
        Some("compact")
    );
    assert!(!log_config(&broker, "inc").cleanup_delete);
    incremental_ok(
        &mut c,
        TOPIC,
        "inc",
        &[(
            "leader.replication.throttled.replicas",
            APPEND,
            Some("0:1,1:0"),
        )],
    )
    .await;
    incremental_ok(
        &mut c,
        TOPIC,
        "inc",
        &[(
            "leader.replication.throttled.replicas",
            SUBTRACT,
            Some("0:1"),
        )],
    )
    .await;
    let configs = describe(&mut c, TOPIC, "inc").await;
    assert_eq!(
        value_source(&configs, "leader.replication.throttled.replicas")
            .0
            .as_deref(),
        Some("1:0")
    );
    incremental_ok(
        &mut c,
        TOPIC,
        "inc",
        &[
            ("retention.ms", DELETE, None),
            ("cleanup.policy", DELETE, None),
        ],
    )
    .await;
    let configs = describe(&mut c, TOPIC, "inc").await;
    assert_eq!(
        value_source(&configs, "retention.ms"),
        (Some("604800000".into()), DEFAULT)
    );
    assert_eq!(policy(&configs), (Some("delete".into()), DEFAULT));
    assert_eq!(log_config(&broker, "inc").retention_ms, 604_800_000);

    for (ops, code) in [
        (vec![("retention.ms", APPEND, Some("5"))], INVALID_CONFIG),
        (vec![("retention.ms", SUBTRACT, Some("5"))], INVALID_CONFIG),
        (vec![("no.such.config", SET, Some("5"))], INVALID_CONFIG),
        (vec![("no.such.config", APPEND, Some("5"))], INVALID_CONFIG),
        (vec![("segment.bytes", SET, Some("10"))], INVALID_CONFIG),
        (
            vec![("cleanup.policy", APPEND, Some("shred"))],
            INVALID_CONFIG,
        ),
        (vec![("retention.ms", SET, None)], INVALID_REQUEST),
        (vec![("retention.ms", 7, Some("5"))], INVALID_REQUEST),
        (
            vec![
                ("retention.ms", SET, Some("5")),
                ("retention.ms", DELETE, None),
            ],
            INVALID_REQUEST,
        ),
    ] {
        assert_eq!(
            incremental(&mut c, TOPIC, "inc", &ops).await,
            code,
            "{ops:?}"
        );
    }
    assert_eq!(
        incremental(&mut c, TOPIC, "nope", &[("retention.ms", SET, Some("5"))]).await,
        UNKNOWN_TOPIC_OR_PARTITION
    );
    assert_eq!(
        incremental(&mut c, TOPIC, "", &[("retention.ms", SET, Some("5"))]).await,
        INVALID_REQUEST
    );
    let both = incremental_many(
        &mut c,
        vec![
            incremental_resource(TOPIC, "inc", &[("retention.ms", SET, Some("5"))]),
            incremental_resource(TOPIC, "inc", &[("retention.bytes", SET, Some("5"))]),
        ],
        false,
    )
    .await;
    assert_eq!(
        both,
        vec![INVALID_REQUEST, INVALID_REQUEST],
        "a resource named twice fails both"
    );
    let validate_only = incremental_many(
        &mut c,
        vec![incremental_resource(
            TOPIC,
            "inc",
            &[("retention.ms", SET, Some("5"))],
        )],
        true,
    )
    .await;
    assert_eq!(validate_only, vec![0]);
    assert_eq!(
        log_config(&broker, "inc").retention_ms,
        604_800_000,
        "validate_only changes nothing"
    );

    // Dynamic broker configs: the cluster default, then this broker's own, each with its source.
    incremental_ok(
        &mut c,
        BROKER,
        "",
        &[("log.retention.ms", SET, Some("120000"))],
    )
    .await;
    assert_eq!(
        log_config(&broker, "inc").retention_ms,
        120_000,
        "a topic without an override follows"
    );
    let configs = describe(&mut c, TOPIC, "inc").await;
    assert_eq!(
        value_source(&configs, "retention.ms"),
        (Some("120000".into()), DYNAMIC_DEFAULT_BROKER)
    );
    incremental_ok(
        &mut c,
        BROKER,
        "0",
        &[("log.retention.ms", SET, Some("180000"))],
    )
    .await;
    let configs = describe(&mut c, TOPIC, "inc").await;
    assert_eq!(
        value_source(&configs, "retention.ms"),
        (Some("180000".into()), DYNAMIC_BROKER)
    );
    assert_eq!(
        synonyms(&configs, "retention.ms")
            .iter()
            .map(|s| s.2)
            .collect::<Vec<_>>(),
        vec![DYNAMIC_BROKER, DYNAMIC_DEFAULT_BROKER, DEFAULT]
    );
    assert_eq!(log_config(&broker, "inc").retention_ms, 180_000);
    incremental_ok(
        &mut c,
        BROKER,
        "0",
        &[("log.cleanup.policy", APPEND, Some("compact"))],
    )
    .await;
    assert!(log_config(&broker, "inc").cleanup_compact);
    let b = describe(&mut c, BROKER, "0").await;
    assert_eq!(
        value_source(&b, "log.cleanup.policy"),
        (Some("delete,compact".into()), DYNAMIC_BROKER)
    );
    incremental_ok(&mut c, BROKER, "0", &[("log.retention.ms", DELETE, None)]).await;
    assert_eq!(
        log_config(&broker, "inc").retention_ms,
        120_000,
        "back to the cluster default"
    );
    for (broker_name, ops, code) in [
        (
            "0",
            [("log.retention.hours", SET, Some("1"))],
            INVALID_REQUEST,
        ),
        (
            "0",
            [("listeners", SET, Some("PLAINTEXT://:1"))],
            INVALID_REQUEST,
        ),
        ("0", [("log.retention.ms", SET, Some("x"))], INVALID_REQUEST),
        (
            "0",
            [("log.retention.ms", APPEND, Some("1"))],
            INVALID_CONFIG,
        ),
        ("9", [("log.retention.ms", SET, Some("1"))], INVALID_REQUEST),
    ] {
        assert_eq!(
            incremental(&mut c, BROKER, broker_name, &ops).await,
            code,
            "broker {broker_name:?}: {ops:?}"
        );
    }
    broker.shutdown().await.unwrap();
}

fn records_at(timestamp: i64, n: usize, value_len: usize) -> Bytes {
    client_batch(0, n, value_len, timestamp, 0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changed_topic_configs_reach_open_logs() {
    let tmp = tempfile::tempdir().unwrap();
    let broker = start_broker(tmp.path(), &[]).await;
    let mut c = Conn::connect(broker.port).await;
    assert_eq!(create_topic(&mut c, "live", 1).await, 0);
    let segments = |b: &Broker| {
        b.api()
            .replicas
            .get("live", 0)
            .unwrap()
            .log
            .lock()
            .segment_count()
    };

    // segment.bytes: the next appends roll at the new size.
    for _ in 0..3 {
        assert_eq!(
            produce(&mut c, "live", 0, records_at(now_ms(), 4, 100))
                .await
                .error_code,
            0
        );
    }
    assert_eq!(segments(&broker), 1);
    incremental_ok(
        &mut c,
        TOPIC,
        "live",
        &[("segment.bytes", SET, Some("1000"))],
    )
    .await;
    for _ in 0..4 {
        assert_eq!(
            produce(&mut c, "live", 0, records_at(now_ms(), 4, 100))
                .await
                .error_code,
            0
        );
    }
    assert!(
        segments(&broker) >= 3,
        "rolled at 1000 bytes: {} segments",
        segments(&broker)
    );

    // max.message.bytes.
    incremental_ok(
        &mut c,
        TOPIC,
        "live",
        &[("max.message.bytes", SET, Some("300"))],
    )
    .await;
    assert_eq!(
        produce(&mut c, "live", 0, records_at(now_ms(), 4, 100))
            .await
            .error_code,
        MESSAGE_TOO_LARGE
    );
    assert_eq!(
        produce(&mut c, "live", 0, records_at(now_ms(), 1, 10))
            .await
            .error_code,
        0
    );

    // message.timestamp.type=LogAppendTime: the broker stamps its own time.
    incremental_ok(
        &mut c,
        TOPIC,
        "live",
        &[
            ("max.message.bytes", DELETE, None),
            ("message.timestamp.type", SET, Some("LogAppendTime")),
        ],
    )
    .await;
    let before = now_ms();
    let r = produce(&mut c, "live", 0, records_at(1_000, 2, 10)).await;
    assert_eq!(r.error_code, 0);
    assert!(
        r.log_append_time_ms >= before,
        "LogAppendTime answered: {}",
        r.log_append_time_ms
    );
    let data = fetch(&mut c, "live", 0, r.base_offset, 0).await;
    let (h, recs) = odradek::log::records::decode_batch(data.records.as_ref().unwrap()).unwrap();
    assert!(h.is_log_append_time());
    assert!(
        recs.iter().all(|rec| rec.timestamp == r.log_append_time_ms),
        "every record reads the broker's time"
    );

    // compression.type: a batch sent uncompressed is stored gzip and reads back the same.
    incremental_ok(
        &mut c,
        TOPIC,
        "live",
        &[
            ("message.timestamp.type", DELETE, None),
            ("compression.type", SET, Some("gzip")),
        ],
    )
    .await;
    let sent = client_batch(500, 20, 300, now_ms(), 0);
    let r = produce(&mut c, "live", 0, sent.clone()).await;
    assert_eq!(r.error_code, 0);
    let data = fetch(&mut c, "live", 0, r.base_offset, 0).await;
    let stored = data.records.unwrap();
    let size = odradek::log::batch::entry_size(&stored).unwrap() as usize;
    let (h, recs) = odradek::log::records::decode_batch(&stored[..size]).unwrap();
    assert_eq!(h.compression(), 1, "gzip");
    assert!(
        size < sent.len() / 2,
        "compressed: {size} of {}",
        sent.len()
    );
    let (_, original) = odradek::log::records::decode_batch(&sent).unwrap();
    assert_eq!(
        recs.iter()
            .map(|r| (&r.key, &r.value, &r.headers, r.timestamp))
            .collect::<Vec<_>>(),
        original
            .iter()
            .map(|r| (&r.key, &r.value, &r.headers, r.timestamp))
            .collect::<Vec<_>>()
    );

    // message.timestamp.before.max.ms / after.max.ms.
    incremental_ok(
        &mut c,
        TOPIC,
        "live",
        &[
            ("compression.type", DELETE, None),
            ("message.timestamp.before.max.ms", SET, Some("3600000")),
            ("message.timestamp.after.max.ms", SET, Some("60000")),
        ],
    )
    .await;
    assert_eq!(
        produce(&mut c, "live", 0, records_at(now_ms() - 7_200_000, 1, 10))
            .await
            .error_code,
        INVALID_TIMESTAMP
    );
    assert_eq!(
        produce(&mut c, "live", 0, records_at(now_ms() + 600_000, 1, 10))
            .await
            .error_code,
        INVALID_TIMESTAMP
    );
    assert_eq!(
        produce(&mut c, "live", 0, records_at(now_ms() - 60_000, 1, 10))
            .await
            .error_code,
        0
    );

    // min.insync.replicas: Kafka 3.9 counts it as at most the replication factor
    // (`effectiveMinIsr`), so a single replica still takes acks=all (below that, see
    // tests/it/cluster/replication.rs); acks=1 is never subject to it.
    incremental_ok(
        &mut c,
        TOPIC,
        "live",
        &[("min.insync.replicas", SET, Some("2"))],
    )
    .await;
    assert_eq!(
        produce(&mut c, "live", 0, records_at(now_ms(), 1, 10))
            .await
            .error_code,
        0
    );
    assert_eq!(
        produce_with_acks(&mut c, "live", 0, records_at(now_ms(), 1, 10), 1)
            .await
            .error_code,
        0
    );
    broker.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_written_by_another_tool_is_applied_and_changes_survive_a_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let broker = start_broker(tmp.path(), &[]).await;
    let mut c = Conn::connect(broker.port).await;
    assert_eq!(create_topic(&mut c, "kept", 1).await, 0);
    assert_eq!(create_topic(&mut c, "external", 1).await, 0);
    incremental_ok(
        &mut c,
        TOPIC,
        "kept",
        &[("retention.ms", SET, Some("65000"))],
    )
    .await;
    incremental_ok(
        &mut c,
        BROKER,
        "",
        &[("log.segment.bytes", SET, Some("70000"))],
    )
    .await;

    // What kafka-configs.sh --zookeeper (Kafka 2.4) writes: the config, then a version 1 notification.
    let store = broker.api().configs.store().clone();
    store
        .set(
            "/config/topics/external",
            Some(br#"{"version":1,"config":{"retention.ms":"75000"}}"#.to_vec()),
            None,
        )
        .await
        .unwrap();
    store
        .create(
            "/config/changes/config_change_",
            Some(br#"{"version":1,"entity_type":"topics","entity_name":"external"}"#.to_vec()),
            odradek::metadata::CreateMode::PersistentSequential,
        )
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while log_config(&broker, "external").retention_ms != 75_000 {
        assert!(
            Instant::now() < deadline,
            "the notification was not applied"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        value_source(&describe(&mut c, TOPIC, "external").await, "retention.ms"),
        (Some("75000".into()), DYNAMIC_TOPIC)
    );
    drop(c);
    broker.shutdown().await.unwrap();

    let broker = start_broker(tmp.path(), &[]).await;
    let mut c = Conn::connect(broker.port).await;
    let configs = describe(&mut c, TOPIC, "kept").await;
    assert_eq!(
        value_source(&configs, "retention.ms"),
        (Some("65000".into()), DYNAMIC_TOPIC)
    );
    assert_eq!(
        value_source(&configs, "segment.bytes"),
        (Some("70000".into()), DYNAMIC_DEFAULT_BROKER)
    );
    let cfg = log_config(&broker, "kept");
    assert_eq!((cfg.retention_ms, cfg.segment_bytes), (65_000, 70_000));
    assert_eq!(log_config(&broker, "external").retention_ms, 75_000);
    // A topic created now gets the dynamic defaults too.
    assert_eq!(create_topic(&mut c, "later", 1).await, 0);
    assert_eq!(log_config(&broker, "later").segment_bytes, 70_000);
    broker.shutdown().await.unwrap();
}

/// Legacy AlterConfigs naming a key twice applies its last value (as brokers before Kafka 3.2
/// did, which "read all, append one, send all" clients rely on); IncrementalAlterConfigs still
/// refuses a key named twice with INVALID_REQUEST, as Kafka does. On both stores.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_alter_configs_duplicate_keys_take_the_last_value() {
    for store in common::wire::STORES {
        let tmp = tempfile::tempdir().unwrap();
        let Some((broker, _zk)) = common::wire::start_broker_on(store, tmp.path(), &[]).await
        else {
            return;
        };
        let mut c = Conn::connect(broker.port).await;
        create_topic_with(&mut c, "dups", &[]).await;
        let twice = [
            ("retention.ms", "1000"),
            ("cleanup.policy", "compact"),
            ("retention.ms", "2000"),
        ];
        assert_eq!(
            alter(&mut c, TOPIC, "dups", &twice, true).await,
            0,
            "{store:?}"
        );
        assert_eq!(
            alter(&mut c, TOPIC, "dups", &twice, false).await,
            0,
            "{store:?}"
        );
        let configs = describe(&mut c, TOPIC, "dups").await;
        assert_eq!(
            value_source(&configs, "retention.ms"),
            (Some("2000".into()), DYNAMIC_TOPIC),
            "{store:?}"
        );
        assert_eq!(
            value_source(&configs, "cleanup.policy"),
            (Some("compact".into()), DYNAMIC_TOPIC),
            "{store:?}"
        );
        assert_eq!(log_config(&broker, "dups").retention_ms, 2000, "{store:?}");
        // A broker resource too: the last value of the key is the one in force.
        assert_eq!(
            alter(
                &mut c,
                BROKER,
                "0",
                &[("log.cleaner.threads", "2"), ("log.cleaner.threads", "3")],
                false
            )
            .await,
            0,
            "{store:?}"
        );
        let configs = describe(&mut c, BROKER, "0").await;
        assert_eq!(
            value_source(&configs, "log.cleaner.threads"),
            (Some("3".into()), DYNAMIC_BROKER),
            "{store:?}"
        );
        assert_eq!(
            incremental(
                &mut c,
                TOPIC,
                "dups",
                &[
                    ("retention.ms", SET, Some("3000")),
                    ("retention.ms", SET, Some("4000"))
                ]
            )
            .await,
            INVALID_REQUEST,
            "{store:?}"
        );
        assert_eq!(
            value_source(&describe(&mut c, TOPIC, "dups").await, "retention.ms").0,
            Some("2000".into()),
            "{store:?}: the refused change left nothing behind"
        );
    }
}
