//! `server.properties` handling: the shipped file, Kafka's defaults and key precedence, the
//! `.properties` syntax, `--override`, and an error naming key and value for each bad value.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use odradek::config::{BrokerConfig, ConfigError, Listener, LogConfig};
use odradek::security::SecurityProtocol;

const HOUR_MS: i64 = 3_600_000;

fn props(entries: &[(&str, &str)]) -> BTreeMap<String, String> {
    entries
        .iter()
        .map(|&(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn from(entries: &[(&str, &str)]) -> Result<BrokerConfig, ConfigError> {
    BrokerConfig::from_properties(&props(entries))
}

fn listener(name: &str, host: &str, port: u16) -> Listener {
    Listener {
        name: name.into(),
        host: host.into(),
        port,
        protocol: SecurityProtocol::Plaintext,
    }
}

fn file_with(text: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().expect("temp file");
    f.write_all(text.as_bytes()).expect("write temp file");
    f
}

#[test]
fn shipped_server_properties_parses_without_unknown_keys() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/server.properties");
    let c = BrokerConfig::load(Some(&path), &[]).expect("config/server.properties is valid");
    assert!(c.unknown_keys.is_empty(), "unknown: {:?}", c.unknown_keys);
    assert_eq!(c.broker_id, 0);
    assert_eq!(c.listeners, vec![listener("PLAINTEXT", "127.0.0.1", 9092)]);
    assert_eq!(c.advertised_listeners, c.listeners);
    assert_eq!(c.log_dirs, vec![PathBuf::from("data/kafka-logs")]);
    assert_eq!(c.num_partitions, 1);
    assert_eq!(c.offsets_topic_replication_factor, 1);
    assert_eq!(c.zookeeper_connect, None);
    assert_eq!(c.zookeeper_connection_timeout_ms, Some(18_000));
    assert_eq!(c.metrics_port, 9404);
    assert_eq!(c.log.retention_ms, 168 * HOUR_MS);
    assert_eq!(c.log.segment_bytes, 1 << 30);
    assert_eq!(c.log_retention_check_interval_ms, 300_000);
}

/// Every key of Kafka's own config/server.properties (2.4 and 3.x, ZooKeeper mode), with the
/// commented-out ones enabled, is accepted without a warning.
#[test]
fn kafka_stock_server_properties_keys_are_all_known() {
    let kafka = "\
broker.id=0
listeners=PLAINTEXT://:9092
advertised.listeners=PLAINTEXT://your.host.name:9092
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL
num.network.threads=3
num.io.threads=8
socket.send.buffer.bytes=102400
socket.receive.buffer.bytes=102400
socket.request.max.bytes=104857600
log.dirs=/tmp/kafka-logs
num.partitions=1
num.recovery.threads.per.data.dir=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
log.flush.interval.messages=10000
log.flush.interval.ms=1000
log.retention.hours=168
log.retention.bytes=1073741824
log.segment.bytes=1073741824
log.retention.check.interval.ms=300000
zookeeper.connect=localhost:2181
zookeeper.connection.timeout.ms=6000
group.initial.rebalance.delay.ms=0
";
    let f = file_with(kafka);
    let c = BrokerConfig::load(Some(f.path()), &[]).expect("Kafka's sample is valid");
    assert!(c.unknown_keys.is_empty(), "unknown: {:?}", c.unknown_keys);
    // An empty host binds every interface, as in Kafka.
    assert_eq!(c.listeners, vec![listener("PLAINTEXT", "", 9092)]);
    assert_eq!(
        c.advertised_listeners,
        vec![listener("PLAINTEXT", "your.host.name", 9092)]
    );
    assert_eq!(c.zookeeper_connect.as_deref(), Some("localhost:2181"));
    assert_eq!(c.log.flush_interval_messages, 10_000);
    assert_eq!(c.log.flush_interval_ms, 1_000);
    assert_eq!(c.log.retention_bytes, 1 << 30);
}

#[test]
fn defaults_are_kafkas() {
    let c = from(&[]).expect("no properties at all is valid");
    assert_eq!(c, BrokerConfig::default());
    assert_eq!(c.broker_id, -1);
    // Kafka binds all interfaces by default; we bind loopback.
    assert_eq!(c.listeners, vec![listener("PLAINTEXT", "127.0.0.1", 9092)]);
    assert_eq!(c.advertised_listeners, c.listeners);
    assert_eq!(c.log_dirs, vec![PathBuf::from("/tmp/kafka-logs")]);
    assert_eq!(c.num_partitions, 1);
    assert_eq!(c.default_replication_factor, 1);
    assert!(c.auto_create_topics_enable);
    assert!(c.delete_topic_enable);
    assert_eq!(c.message_max_bytes, 1_048_588);
    assert_eq!(c.socket_request_max_bytes, 104_857_600);
    assert_eq!(c.max_connections, i32::MAX as usize);
    assert_eq!(c.connections_max_idle_ms, 600_000);
    assert_eq!(c.queued_max_requests, 500);
    assert_eq!(c.offsets_topic_num_partitions, 50);
    assert_eq!(c.offsets_topic_replication_factor, 3);
    assert_eq!(c.offsets_topic_segment_bytes, 104_857_600);
    assert_eq!(c.transaction_state_log_num_partitions, 50);
    assert_eq!(c.zookeeper_connect, None);
    assert_eq!(c.zookeeper_session_timeout_ms, 18_000);
    assert_eq!(c.zookeeper_connection_timeout_ms, None);
    assert_eq!(c.log_retention_check_interval_ms, 300_000);
    assert_eq!(c.log_flush_scheduler_interval_ms, i64::MAX as u64);
    assert_eq!(c.log_flush_offset_checkpoint_interval_ms, 60_000);
    assert_eq!(c.replica_high_watermark_checkpoint_interval_ms, 5_000);
    assert_eq!(c.metrics_port, 9404);
    assert_eq!(c.broker_rack, None);
    assert_eq!(c.log, LogConfig::default());
    assert_eq!(c.log.segment_ms, 168 * HOUR_MS);
    assert_eq!(c.log.retention_ms, 168 * HOUR_MS);
    assert!(c.unknown_keys.is_empty());
}

#[test]
fn broker_log_keys_become_topic_defaults_and_topic_overrides_win() {
    let c = from(&[
        ("log.segment.bytes", "16384"),
        ("log.roll.hours", "2"),
        ("log.retention.bytes", "1000000"),
        ("log.message.timestamp.type", "LogAppendTime"),
        ("log.cleanup.policy", "compact"),
        ("message.max.bytes", "2000000"),
        ("log.flush.scheduler.interval.ms", "2000"),
    ])
    .expect("valid");
    assert_eq!(c.log.segment_bytes, 16_384);
    assert_eq!(c.log.segment_ms, 2 * HOUR_MS);
    assert_eq!(c.log.retention_bytes, 1_000_000);
    assert!(c.log.log_append_time);
    assert!(c.log.cleanup_compact && !c.log.cleanup_delete);
    assert_eq!(c.message_max_bytes, 2_000_000);
    assert_eq!(c.log.max_message_bytes, 2_000_000);
    // Without log.flush.interval.ms, Kafka flushes on the scheduler's interval.
    assert_eq!(c.log.flush_interval_ms, 2_000);

    let topic = c
        .topic_config(&props(&[
            ("segment.bytes", "65536"),
            ("retention.ms", "5000"),
        ]))
        .expect("valid topic overrides");
    assert_eq!(topic.segment_bytes, 65_536);
    assert_eq!(topic.retention_ms, 5_000);
    assert_eq!(topic.segment_ms, 2 * HOUR_MS);
    let err = c
        .topic_config(&props(&[("segment.bytes", "tiny")]))
        .expect_err("bad topic override");
    assert_eq!(
        (err.key.as_str(), err.value.as_str()),
        ("segment.bytes", "tiny")
    );
}

#[test]
fn retention_ms_beats_minutes_beats_hours() {
    let ms = |entries: &[(&str, &str)]| from(entries).expect("valid").log.retention_ms;
    assert_eq!(
        ms(&[("log.retention.hours", "1"), ("log.retention.ms", "1234")]),
        1234
    );
    assert_eq!(
        ms(&[("log.retention.hours", "1"), ("log.retention.minutes", "2")]),
        120_000
    );
    assert_eq!(
        ms(&[
            ("log.retention.hours", "1"),
            ("log.retention.minutes", "2"),
            ("log.retention.ms", "7")
        ]),
        7
    );
    assert_eq!(ms(&[("log.retention.hours", "1")]), HOUR_MS);
    // Any negative value means unlimited, stored as -1.
    assert_eq!(ms(&[("log.retention.hours", "-5")]), -1);
    assert_eq!(
        from(&[("log.roll.hours", "1"), ("log.roll.ms", "500")])
            .expect("valid")
            .log
            .segment_ms,
        500
    );
}

#[test]
fn overrides_win_over_the_file() {
    let f = file_with("num.partitions=1\nlog.retention.hours=24\n");
    let overrides = [
        "num.partitions=3".to_string(),
        " log.dirs = /a , /b ".to_string(),
        "zookeeper.connect=zk1:2181,zk2:2181/kafka".to_string(),
    ];
    let c = BrokerConfig::load(Some(f.path()), &overrides).expect("valid");
    assert_eq!(c.num_partitions, 3);
    assert_eq!(c.log.retention_ms, 24 * HOUR_MS);
    assert_eq!(c.log_dirs, vec![PathBuf::from("/a"), PathBuf::from("/b")]);
    assert_eq!(
        c.zookeeper_connect.as_deref(),
        Some("zk1:2181,zk2:2181/kafka")
    );

    // No file at all: defaults plus overrides.
    let c = BrokerConfig::load(None, &["broker.id=7".to_string()]).expect("valid");
    assert_eq!(c.broker_id, 7);

    for bad in ["num.partitions", "=3", " = "] {
        let err = BrokerConfig::load(None, &[bad.to_string()]).expect_err(bad);
        assert_eq!(err.key, "--override");
        assert_eq!(err.value, bad);
    }
    // A well-formed override with a bad value names the key it sets.
    let err = BrokerConfig::load(Some(f.path()), &["num.partitions=none".to_string()])
        .expect_err("bad value");
    assert_eq!(
        (err.key.as_str(), err.value.as_str()),
        ("num.partitions", "none")
    );
}

#[test]
fn each_bad_value_is_an_error_naming_key_and_value() {
    let cases: &[(&str, &str)] = &[
        ("num.partitions", "abc"),
        ("num.partitions", "0"),
        ("num.partitions", ""),
        ("broker.id", "-5"),
        ("broker.id", "1001"),
        ("listeners", "garbage"),
        ("listeners", "PLAINTEXT://127.0.0.1"),
        ("listeners", "PLAINTEXT://127.0.0.1:65536"),
        ("listeners", "PLAINTEXT://127.0.0.1:-1"),
        ("listeners", "PLAINTEXT://127.0.0.1:port"),
        ("listeners", "PLAINTEXT://bad host:9092"),
        ("listeners", "://127.0.0.1:9092"),
        ("listeners", ""),
        ("listeners", "PLAINTEXT://:9092,PLAINTEXT://:9093"),
        ("listeners", "PLAINTEXT://:9092,OTHER://:9092"),
        ("log.dirs", ""),
        ("log.dirs", " , "),
        ("log.dirs", "/a,/a"),
        ("default.replication.factor", "0"),
        ("default.replication.factor", "40000"),
        ("auto.create.topics.enable", "yes"),
        ("delete.topic.enable", "1"),
        ("message.max.bytes", "-1"),
        ("message.max.bytes", "3000000000"),
        ("socket.request.max.bytes", "0"),
        ("max.connections", "-1"),
        ("queued.max.requests", "0"),
        ("offsets.topic.num.partitions", "0"),
        ("offsets.topic.replication.factor", "0"),
        ("transaction.state.log.num.partitions", "-3"),
        ("zookeeper.session.timeout.ms", "0"),
        ("zookeeper.connection.timeout.ms", "soon"),
        ("log.retention.check.interval.ms", "0"),
        ("log.flush.scheduler.interval.ms", "0"),
        ("log.flush.offset.checkpoint.interval.ms", "-1"),
        ("replica.high.watermark.checkpoint.interval.ms", "fast"),
        ("metrics.port", "65536"),
        ("log.retention.ms", "0"),
        ("log.retention.ms", "week"),
        ("log.retention.minutes", "1.5"),
        ("log.retention.hours", "x"),
        ("log.roll.ms", "0"),
        ("log.roll.hours", "0"),
        ("log.segment.bytes", "10"),
        ("log.index.size.max.bytes", "big"),
        ("log.retention.bytes", "lots"),
        ("log.message.timestamp.type", "Now"),
        ("log.cleanup.policy", "shred"),
        ("log.flush.interval.messages", "0"),
        ("log.segment.delete.delay.ms", "-1"),
        ("listener.security.protocol.map", "PLAINTEXT"),
        ("listener.security.protocol.map", "PLAINTEXT:TLS"),
        ("security.inter.broker.protocol", "TLS"),
        ("inter.broker.listener.name", "INTERNAL"),
        ("reserved.broker.max.id", "-1"),
        ("broker.id.generation.enable", "maybe"),
        ("port", "99999"),
    ];
    for &(key, value) in cases {
        let err = match from(&[(key, value)]) {
            Ok(c) => panic!("{key}={value:?} was accepted: {c:?}"),
            Err(e) => e,
        };
        assert_eq!(err.key, key, "{key}={value:?}: {err}");
        assert_eq!(err.value, value.trim(), "{key}={value:?}: {err}");
        let shown = err.to_string();
        assert!(
            shown.contains(key) && shown.contains(value.trim()),
            "{shown}"
        );
    }
}

#[test]
fn listeners_and_advertised_listeners() {
    let c = from(&[
        (
            "listeners",
            " internal://0.0.0.0:9093 , PLAINTEXT://[::1]:9092 ",
        ),
        (
            "listener.security.protocol.map",
            "INTERNAL:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        ),
        (
            "advertised.listeners",
            "INTERNAL://broker1:9093,PLAINTEXT://broker1.example.com:9092",
        ),
        ("inter.broker.listener.name", "INTERNAL"),
    ])
    .expect("valid");
    assert_eq!(
        c.listeners,
        vec![
            listener("INTERNAL", "0.0.0.0", 9093),
            listener("PLAINTEXT", "::1", 9092)
        ]
    );
    assert_eq!(c.listeners[1].to_string(), "PLAINTEXT://[::1]:9092");
    assert_eq!(
        c.advertised_listeners[0].to_string(),
        "INTERNAL://broker1:9093"
    );

    // Port 0 (any free port) may repeat.
    from(&[
        ("listeners", "PLAINTEXT://127.0.0.1:0,OTHER://127.0.0.1:0"),
        (
            "listener.security.protocol.map",
            "PLAINTEXT:PLAINTEXT,OTHER:PLAINTEXT",
        ),
    ])
    .expect("port 0 twice is fine");

    // advertised.listeners defaults to listeners, and Kafka refuses to advertise 0.0.0.0.
    let err = from(&[("listeners", "PLAINTEXT://0.0.0.0:9092")]).expect_err("0.0.0.0");
    assert_eq!(err.key, "advertised.listeners");
    assert!(err.value.contains("0.0.0.0"));
    let c = from(&[
        ("listeners", "PLAINTEXT://0.0.0.0:9092"),
        ("advertised.listeners", "PLAINTEXT://kafka.local:9092"),
    ])
    .expect("valid");
    assert_eq!(c.listeners[0].host, "0.0.0.0");

    // Advertised names must be listener names.
    let err = from(&[("advertised.listeners", "OTHER://h:1")]).expect_err("unknown name");
    assert_eq!(err.key, "advertised.listeners");

    // Kafka 2.4's deprecated host.name / port still describe the listener when listeners is unset.
    let c = from(&[("port", "9093"), ("advertised.host.name", "kafka.local")]).expect("valid");
    assert_eq!(c.listeners, vec![listener("PLAINTEXT", "127.0.0.1", 9093)]);
    assert_eq!(
        c.advertised_listeners,
        vec![listener("PLAINTEXT", "kafka.local", 9093)]
    );
}

#[test]
fn unknown_keys_are_reported_and_kafka_keys_are_not() {
    let c = from(&[
        ("num.partitionz", "3"),
        ("foo.bar", "x"),
        ("num.io.threads", "8"),
        ("ssl.keystore.location", "/etc/ks"),
        ("log.cleaner.threads", "2"),
        ("min.insync.replicas", "2"),
    ])
    .expect("unknown keys are not errors");
    assert_eq!(c.unknown_keys, vec!["foo.bar", "num.partitionz"]);
}

#[test]
fn broker_rack_is_read_as_written() {
    let c = from(&[("broker.rack", " eu-west-1a ")]).expect("any rack name is valid");
    assert_eq!(c.broker_rack.as_deref(), Some("eu-west-1a"));
    assert!(c.unknown_keys.is_empty());
}

#[test]
fn java_properties_syntax() {
    let text = "# a comment\r\n\
                ! another comment \\\r\n\
                broker.id = 3 \r\n\
                \r\n\
                \t  num.partitions:4\n\
                log.dirs /one,\\\n\
                \x20   /two\n\
                zookeeper.connect=zk\\\\host:2181\n\
                log.cleanup.policy   =   compact\n\
                weird\\=key\\ name=v\\u00e9\n";
    let f = file_with(text);
    let c = BrokerConfig::load(Some(f.path()), &[]).expect("valid");
    assert_eq!(c.broker_id, 3);
    assert_eq!(c.num_partitions, 4);
    assert_eq!(
        c.log_dirs,
        vec![PathBuf::from("/one"), PathBuf::from("/two")]
    );
    assert_eq!(c.zookeeper_connect.as_deref(), Some("zk\\host:2181"));
    assert!(c.log.cleanup_compact && !c.log.cleanup_delete);
    assert_eq!(c.unknown_keys, vec!["weird=key name"]);

    // A key alone on its line has an empty value, which is not a boolean.
    let f = file_with("delete.topic.enable\n");
    let err = BrokerConfig::load(Some(f.path()), &[]).expect_err("empty boolean");
    assert_eq!(
        (err.key.as_str(), err.value.as_str()),
        ("delete.topic.enable", "")
    );

    let f = file_with("broker.id=\\u12\n");
    let err = BrokerConfig::load(Some(f.path()), &[]).expect_err("malformed escape");
    assert_eq!(err.key, "config file");
    assert!(err.reason.contains("line 1"), "{err}");
}

#[test]
fn a_missing_file_is_an_error_naming_it() {
    let path = Path::new("/nonexistent/odradek/server.properties");
    let err = BrokerConfig::load(Some(path), &[]).expect_err("missing file");
    assert_eq!(err.key, "config file");
    assert_eq!(err.value, path.display().to_string());
}

#[test]
fn log_cleaner_keys_have_kafkas_defaults_and_ranges() {
    let c = from(&[]).unwrap();
    assert!(c.log_cleaner.enable);
    assert_eq!(c.log_cleaner.threads, 1);
    assert_eq!(c.log_cleaner.dedupe_buffer_size, 128 * 1024 * 1024);
    assert_eq!(c.log_cleaner.backoff_ms, 15_000);
    assert_eq!(c.log.min_cleanable_dirty_ratio, 0.5);
    assert_eq!(c.log.delete_retention_ms, 24 * HOUR_MS);
    assert_eq!(c.log.min_compaction_lag_ms, 0);
    assert_eq!(c.log.max_compaction_lag_ms, i64::MAX);

    let c = from(&[
        ("log.cleaner.enable", "false"),
        ("log.cleaner.threads", "3"),
        ("log.cleaner.io.max.bytes.per.second", "1048576"),
        ("log.cleaner.backoff.ms", "100"),
        ("log.cleaner.min.cleanable.ratio", "0.1"),
        ("log.cleaner.delete.retention.ms", "1000"),
        ("log.cleaner.min.compaction.lag.ms", "5"),
    ])
    .unwrap();
    assert!(c.unknown_keys.is_empty());
    assert!(!c.log_cleaner.enable);
    assert_eq!(c.log_cleaner.threads, 3);
    assert_eq!(c.log_cleaner.io_max_bytes_per_second, 1_048_576.0);
    assert_eq!(c.log_cleaner.backoff_ms, 100);
    // The log.cleaner.* topic defaults reach topics, whose own keys win.
    assert_eq!(c.log.min_cleanable_dirty_ratio, 0.1);
    assert_eq!(c.log.delete_retention_ms, 1000);
    let topic = c
        .topic_config(&props(&[
            ("delete.retention.ms", "7"),
            ("cleanup.policy", "compact"),
        ]))
        .unwrap();
    assert_eq!(
        (topic.delete_retention_ms, topic.min_compaction_lag_ms),
        (7, 5)
    );

    for (key, value) in [
        ("log.cleaner.min.cleanable.ratio", "1.5"),
        ("log.cleaner.threads", "-1"),
        ("log.cleaner.delete.retention.ms", "-1"),
        ("log.cleaner.max.compaction.lag.ms", "0"),
        ("log.cleaner.io.max.bytes.per.second", "0"),
    ] {
        let err = from(&[(key, value)]).unwrap_err();
        assert_eq!((err.key.as_str(), err.value.as_str()), (key, value));
    }
    let err = c
        .topic_config(&props(&[
            ("min.compaction.lag.ms", "10"),
            ("max.compaction.lag.ms", "5"),
        ]))
        .unwrap_err();
    assert_eq!(err.key, "min.compaction.lag.ms");
}

#[test]
fn replica_keys_have_kafkas_defaults_and_ranges() {
    let c = from(&[]).unwrap();
    assert_eq!(c.replica_lag_time_max_ms, 30_000);
    assert_eq!(c.replica_fetch_wait_max_ms, 500);
    assert_eq!(c.replica_fetch_min_bytes, 1);
    assert_eq!(c.replica_fetch_max_bytes, 1_048_576);
    assert_eq!(c.replica_fetch_response_max_bytes, 10_485_760);
    assert_eq!(c.replica_fetch_backoff_ms, 1_000);
    let c = from(&[
        ("replica.lag.time.max.ms", "2000"),
        ("replica.fetch.wait.max.ms", "100"),
    ])
    .unwrap();
    assert_eq!(
        (c.replica_lag_time_max_ms, c.replica_fetch_wait_max_ms),
        (2000, 100)
    );
    for bad in [
        &[("replica.lag.time.max.ms", "0")][..],
        &[("replica.fetch.min.bytes", "0")],
        &[("replica.fetch.max.bytes", "-1")],
        &[("replica.fetch.backoff.ms", "x")],
        // Kafka: a follower's fetch must not wait as long as the lag that evicts it.
        &[("replica.lag.time.max.ms", "500")],
    ] {
        assert!(from(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn quota_settings_are_read_with_kafkas_defaults_and_bounds() {
    let defaults = from(&[]).unwrap().quotas;
    assert_eq!(defaults, odradek::quota::QuotaSettings::default());
    assert_eq!(defaults.window.samples, 11);
    assert_eq!(defaults.window.size_ms, 1000);
    assert_eq!(defaults.producer_default, None);
    let set = from(&[
        ("quota.window.num", "5"),
        ("quota.window.size.seconds", "2"),
        ("quota.producer.default", "1048576"),
        // Long.MAX_VALUE is Kafka's "no static quota".
        ("quota.consumer.default", "9223372036854775807"),
    ])
    .unwrap()
    .quotas;
    assert_eq!((set.window.samples, set.window.size_ms), (5, 2000));
    assert_eq!(set.producer_default, Some(1048576.0));
    assert_eq!(set.consumer_default, None);
    assert!(from(&[("quota.window.num", "0")]).is_err());
    assert!(from(&[("quota.window.size.seconds", "0")]).is_err());
    assert!(from(&[("quota.producer.default", "fast")]).is_err());
}
