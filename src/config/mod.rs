//! Configuration with Kafka's key names and defaults. Topic-level settings live in [`LogConfig`];
//! a broker's `log.*` keys give a topic's defaults, and a topic's own overrides win. The broker's
//! own settings come from a `server.properties` file and `--override key=value` arguments and
//! live in [`BrokerConfig`].

pub mod defs;
pub mod dynamic;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
#[error("invalid value {value:?} for configuration {key}: {reason}")]
pub struct ConfigError {
    pub key: String,
    pub value: String,
    pub reason: String,
}

/// How a topic compresses what it stores (`compression.type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopicCompression {
    /// Keep whatever codec the producer used (Kafka's default).
    Producer,
    /// Store with this codec (0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd), recompressing batches
    /// that arrive with another.
    Codec(i16),
}

/// The settings a partition log honours, under the topic-level names Kafka uses. Each field
/// is one key of [`defs::TOPIC_CONFIGS`]; keys that change nothing in a log (`preallocate`,
/// `message.downconversion.enable`, the tiered-storage ones) are validated there but not kept.
#[derive(Debug, Clone, PartialEq)]
pub struct LogConfig {
    pub segment_bytes: u64,
    pub segment_ms: i64,
    pub segment_index_bytes: usize,
    pub index_interval_bytes: usize,
    pub max_message_bytes: usize,
    pub retention_ms: i64,
    pub retention_bytes: i64,
    pub log_append_time: bool,
    /// `message.timestamp.difference.max.ms`, the pre-3.6 bound on both sides; see
    /// [`LogConfig::timestamp_before_max_ms`].
    pub timestamp_difference_max_ms: i64,
    pub timestamp_before_max_ms: i64,
    pub timestamp_after_max_ms: i64,
    pub flush_interval_messages: u64,
    pub flush_interval_ms: i64,
    pub file_delete_delay_ms: i64,
    pub cleanup_delete: bool,
    pub cleanup_compact: bool,
    /// `delete.retention.ms`: how long the cleaner keeps tombstones.
    pub delete_retention_ms: i64,
    pub min_compaction_lag_ms: i64,
    pub max_compaction_lag_ms: i64,
    pub min_cleanable_dirty_ratio: f64,
    pub compression: TopicCompression,
    /// `compression.gzip.level` (-1: zlib's default), `.lz4.level`, `.zstd.level`: used when the
    /// broker compresses (see `compression`).
    pub gzip_level: i32,
    pub lz4_level: i32,
    pub zstd_level: i32,
    pub min_insync_replicas: i32,
    pub unclean_leader_election_enable: bool,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            segment_bytes: 1 << 30,
            segment_ms: 7 * 24 * 3_600_000,
            segment_index_bytes: 10 * 1024 * 1024,
            index_interval_bytes: 4096,
            max_message_bytes: 1_048_588,
            retention_ms: 7 * 24 * 3_600_000,
            retention_bytes: -1,
            log_append_time: false,
            timestamp_difference_max_ms: i64::MAX,
            timestamp_before_max_ms: i64::MAX,
            timestamp_after_max_ms: i64::MAX,
            flush_interval_messages: i64::MAX as u64,
            flush_interval_ms: i64::MAX,
            file_delete_delay_ms: 60_000,
            cleanup_delete: true,
            cleanup_compact: false,
            delete_retention_ms: 86_400_000,
            min_compaction_lag_ms: 0,
            max_compaction_lag_ms: i64::MAX,
            min_cleanable_dirty_ratio: 0.5,
            compression: TopicCompression::Producer,
            gzip_level: -1,
            lz4_level: 9,
            zstd_level: 3,
            min_insync_replicas: 1,
            unclean_leader_election_enable: false,
        }
    }
}

fn parse<T>(key: &str, value: &str, min: Option<T>) -> Result<T, ConfigError>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display,
{
    let bad = |reason: String| ConfigError {
        key: key.to_string(),
        value: value.to_string(),
        reason,
    };
    let v: T = value
        .trim()
        .parse()
        .map_err(|_| bad("not a number in range".into()))?;
    if let Some(min) = min
        && v < min
    {
        return Err(bad(format!("must be at least {min}")));
    }
    Ok(v)
}

impl LogConfig {
    /// Applies topic-level overrides (`segment.bytes=16384`, ...) on top of `self`, then checks
    /// the rules that span keys.
    pub fn with_overrides(
        &self,
        overrides: &BTreeMap<String, String>,
    ) -> Result<LogConfig, ConfigError> {
        let mut c = self.clone();
        for (k, v) in overrides {
            c.set(k, v)?;
        }
        c.check()?;
        Ok(c)
    }

    /// Kafka's `LogConfig.validateValues`: the rules no single key can check.
    pub fn check(&self) -> Result<(), ConfigError> {
        if self.min_compaction_lag_ms > self.max_compaction_lag_ms {
            return Err(invalid(
                "min.compaction.lag.ms",
                &self.min_compaction_lag_ms.to_string(),
                format!(
                    "conflict topic config setting min.compaction.lag.ms ({}) > max.compaction.lag.ms ({})",
                    self.min_compaction_lag_ms, self.max_compaction_lag_ms
                ),
            ));
        }
        Ok(())
    }

    /// The oldest a CreateTime record may be, relative to the broker's clock: `.before.max.ms`
    /// unless left at its default, then `.difference.max.ms`, as Kafka 3.6+ resolves them.
    pub fn timestamp_before_max_ms(&self) -> i64 {
        if self.timestamp_before_max_ms != i64::MAX {
            self.timestamp_before_max_ms
        } else {
            self.timestamp_difference_max_ms
        }
    }

    /// How far ahead of the broker's clock a CreateTime record may be.
    pub fn timestamp_after_max_ms(&self) -> i64 {
        if self.timestamp_after_max_ms != i64::MAX {
            self.timestamp_after_max_ms
        } else {
            self.timestamp_difference_max_ms
        }
    }

    /// Sets one topic-level key, checked as Kafka's `LogConfig` checks it. Keys that are not
    /// topic configs are ignored here; the caller decides whether they deserve an error.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), ConfigError> {
        let Some(t) = defs::topic_config(key) else {
            return Ok(());
        };
        let v = defs::canonical(&t.def, value).map_err(|reason| invalid(key, value, reason))?;
        // Canonical values parse: the checks above are stricter than these conversions.
        let num = || v.parse::<i64>().unwrap_or_default();
        let flag = || v == "true";
        match key {
            "segment.bytes" => self.segment_bytes = num() as u64,
            "segment.ms" => self.segment_ms = num(),
            "segment.index.bytes" => self.segment_index_bytes = num() as usize,
            "index.interval.bytes" => self.index_interval_bytes = num() as usize,
            "max.message.bytes" => self.max_message_bytes = num() as usize,
            "retention.ms" => self.retention_ms = num(),
            "retention.bytes" => self.retention_bytes = num(),
            "flush.messages" => self.flush_interval_messages = num() as u64,
            "flush.ms" => self.flush_interval_ms = num(),
            "file.delete.delay.ms" => self.file_delete_delay_ms = num(),
            "message.timestamp.type" => self.log_append_time = v == "LogAppendTime",
            "message.timestamp.difference.max.ms" => self.timestamp_difference_max_ms = num(),
            "message.timestamp.before.max.ms" => self.timestamp_before_max_ms = num(),
            "message.timestamp.after.max.ms" => self.timestamp_after_max_ms = num(),
            "cleanup.policy" => {
                self.cleanup_delete = v.split(',').any(|p| p == "delete");
                self.cleanup_compact = v.split(',').any(|p| p == "compact");
            }
            "delete.retention.ms" => self.delete_retention_ms = num(),
            "min.compaction.lag.ms" => self.min_compaction_lag_ms = num(),
            "max.compaction.lag.ms" => self.max_compaction_lag_ms = num(),
            "min.cleanable.dirty.ratio" => {
                self.min_cleanable_dirty_ratio = v.parse().unwrap_or(0.5);
            }
            "compression.type" => {
                self.compression = match v.as_str() {
                    "producer" => TopicCompression::Producer,
                    "uncompressed" => TopicCompression::Codec(0),
                    "gzip" => TopicCompression::Codec(1),
                    "snappy" => TopicCompression::Codec(2),
                    "lz4" => TopicCompression::Codec(3),
                    _ => TopicCompression::Codec(4),
                }
            }
            "compression.gzip.level" => self.gzip_level = num() as i32,
            "compression.lz4.level" => self.lz4_level = num() as i32,
            "compression.zstd.level" => self.zstd_level = num() as i32,
            "min.insync.replicas" => self.min_insync_replicas = num() as i32,
            "unclean.leader.election.enable" => self.unclean_leader_election_enable = flag(),
            // odradek has no tiered storage: Kafka refuses to enable it without a remote log
            // manager, and refuses these two flags in ZooKeeper mode.
            "remote.storage.enable" if flag() => {
                return Err(invalid(
                    key,
                    value,
                    "Tiered Storage functionality is disabled in the broker. Topic cannot be configured with remote log storage.",
                ));
            }
            "remote.log.copy.disable" | "remote.log.delete.on.disable" if flag() => {
                return Err(invalid(
                    key,
                    value,
                    "It is invalid to set `remote.log.delete.on.disable` or `remote.log.copy.disable` under Zookeeper's mode.",
                ));
            }
            _ => {}
        }
        Ok(())
    }

    /// The topic defaults a broker's properties give (its `log.*` keys and their synonyms),
    /// resolved as `KafkaConfig.extractLogConfigMap` does: `log.roll.ms` over `log.roll.hours`;
    /// `log.retention.ms` over `.minutes` over `.hours`; `log.flush.interval.ms` defaults to
    /// `log.flush.scheduler.interval.ms`. Used for `server.properties` and again whenever a
    /// dynamic broker config changes.
    pub fn from_broker_properties(
        props: &BTreeMap<String, String>,
    ) -> Result<LogConfig, ConfigError> {
        let get = |key: &str| props.get(key).map(|v| v.trim());
        let flush_scheduler_ms: i64 = match get("log.flush.scheduler.interval.ms") {
            Some(v) => parse("log.flush.scheduler.interval.ms", v, Some(1))?,
            None => i64::MAX,
        };
        let mut log = LogConfig {
            flush_interval_ms: flush_scheduler_ms,
            segment_ms: roll_ms(props)?,
            retention_ms: retention_ms(props)?,
            ..LogConfig::default()
        };
        for t in defs::TOPIC_CONFIGS {
            let Some(broker_key) = t.broker_key() else {
                continue;
            };
            // Resolved above together with their minutes/hours fallbacks.
            if matches!(broker_key, "log.roll.ms" | "log.retention.ms") {
                continue;
            }
            if let Some(v) = get(broker_key) {
                log.set(t.def.name, v).map_err(|e| ConfigError {
                    key: broker_key.to_string(),
                    ..e
                })?;
            }
        }
        log.check()?;
        Ok(log)
    }
}

/// The log cleaner's broker settings (`log.cleaner.*`, Kafka's `CleanerConfig`). The topic-level
/// cleaner settings (`min.cleanable.dirty.ratio`, ...) are in [`LogConfig`].
#[derive(Debug, Clone, PartialEq)]
pub struct CleanerConfig {
    /// `log.cleaner.enable` (true).
    pub enable: bool,
    /// `log.cleaner.threads` (1).
    pub threads: usize,
    /// `log.cleaner.dedupe.buffer.size` (128 MiB): memory for the key -> offset maps of all
    /// cleaner threads together.
    pub dedupe_buffer_size: u64,
    /// `log.cleaner.io.buffer.size` (512 KiB): read and write buffers of all threads together.
    pub io_buffer_size: usize,
    /// `log.cleaner.io.buffer.load.factor` (0.9): despite its name, how full the dedupe map
    /// may get.
    pub dedupe_buffer_load_factor: f64,
    /// `log.cleaner.io.max.bytes.per.second` (unlimited): reads plus writes of all threads.
    pub io_max_bytes_per_second: f64,
    /// `log.cleaner.backoff.ms` (15000): the pause when no log needs cleaning.
    pub backoff_ms: u64,
}

impl Default for CleanerConfig {
    fn default() -> Self {
        CleanerConfig {
            enable: true,
            threads: 1,
            dedupe_buffer_size: 128 * 1024 * 1024,
            io_buffer_size: 512 * 1024,
            dedupe_buffer_load_factor: 0.9,
            io_max_bytes_per_second: f64::MAX,
            backoff_ms: 15_000,
        }
    }
}

fn invalid(key: &str, value: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        key: key.to_string(),
        value: value.to_string(),
        reason: reason.into(),
    }
}

/// One entry of `listeners` or `advertised.listeners`, written `NAME://host:port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    /// The listener name, upper-cased as Kafka normalises it (`PLAINTEXT`, `INTERNAL`, ...).
    pub name: String,
    /// Host name or IP address (IPv6 without brackets). Empty means all interfaces when binding,
    /// and the machine's own host name when advertising, as in Kafka.
    pub host: String,
    /// Port 0 binds an ephemeral port, which Kafka also allows (tests use it).
    pub port: u16,
}

/// Prints the `NAME://host:port` form Kafka uses in its configs and in `/brokers/ids/<id>`.
impl fmt::Display for Listener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "{}://[{}]:{}", self.name, self.host, self.port)
        } else {
            write!(f, "{}://{}:{}", self.name, self.host, self.port)
        }
    }
}

/// Where the broker listens when neither `listeners` nor the old `host.name` is set. Kafka binds
/// every interface; we bind loopback so that a broker started without a config file is not
/// reachable from the network by surprise.
const DEFAULT_LISTENER_HOST: &str = "127.0.0.1";
const DEFAULT_PORT: u16 = 9092;
const DEFAULT_LOG_DIR: &str = "/tmp/kafka-logs";
/// Kafka's default `listener.security.protocol.map`: each security protocol is a listener name.
const DEFAULT_SECURITY_PROTOCOL_MAP: &str =
    "PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL";
const SECURITY_PROTOCOLS: &[&str] = &["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"];
const HOUR_MS: i64 = 3_600_000;
const WEEK_MS: i64 = 168 * HOUR_MS;

/// The broker's `server.properties`, under Kafka's key names and with Kafka's defaults (ZooKeeper
/// mode, 2.4 – 3.9). Where we differ from Kafka the field says so.
#[derive(Debug, Clone, PartialEq)]
pub struct BrokerConfig {
    /// `broker.id`. -1 (the default) asks for an id generated from ZooKeeper's `/brokers/seqid`
    /// above `reserved.broker.max.id`, as Kafka does.
    pub broker_id: i32,
    /// `listeners`. Default `PLAINTEXT://127.0.0.1:9092`: Kafka's is `PLAINTEXT://:9092` (all
    /// interfaces). Every listener must map to PLAINTEXT: we implement neither TLS nor SASL.
    pub listeners: Vec<Listener>,
    /// `advertised.listeners`, defaulting to `listeners`. An empty host stands for the
    /// machine's host name, which the caller fills in when it registers the broker.
    pub advertised_listeners: Vec<Listener>,
    /// `broker.rack` (unset): the rack (or zone) this broker runs in. Registered in
    /// `/brokers/ids/<id>`, shown to clients, and when every broker has one, new replicas are
    /// spread over racks.
    pub broker_rack: Option<String>,
    /// `log.dirs` (comma-separated), else `log.dir`; default `/tmp/kafka-logs`.
    pub log_dirs: Vec<PathBuf>,
    /// `num.partitions` (1): partitions of an auto-created topic.
    pub num_partitions: i32,
    /// `default.replication.factor` (1): replicas of an auto-created topic.
    pub default_replication_factor: i16,
    /// `auto.create.topics.enable` (true).
    pub auto_create_topics_enable: bool,
    /// `delete.topic.enable` (true).
    pub delete_topic_enable: bool,
    /// `message.max.bytes` (1048588): the largest record batch; also `log.max_message_bytes`.
    pub message_max_bytes: usize,
    /// `socket.request.max.bytes` (104857600): the largest request frame.
    pub socket_request_max_bytes: usize,
    /// `max.connections` (`i32::MAX`, i.e. no limit).
    pub max_connections: usize,
    /// `connections.max.idle.ms` (600000). Kafka never closes idle connections when the value
    /// is negative; that becomes `u64::MAX` here.
    pub connections_max_idle_ms: u64,
    /// `queued.max.requests` (500). Kafka bounds its shared request queue with it; we bound the
    /// requests in flight on one connection, which is where our requests queue.
    pub queued_max_requests: usize,
    /// `offsets.topic.num.partitions` (50).
    pub offsets_topic_num_partitions: i32,
    /// `offsets.topic.replication.factor` (3; the shipped `server.properties` sets 1).
    pub offsets_topic_replication_factor: i16,
    /// `offsets.topic.segment.bytes` (104857600).
    pub offsets_topic_segment_bytes: u64,
    /// `transaction.state.log.num.partitions` (50).
    pub transaction_state_log_num_partitions: i32,
    /// `transaction.state.log.replication.factor` (3; the shipped `server.properties` sets 1).
    pub transaction_state_log_replication_factor: i16,
    /// `transaction.state.log.min.isr` (2): `min.insync.replicas` of `__transaction_state`.
    pub transaction_state_log_min_isr: i32,
    /// `transaction.state.log.segment.bytes` (104857600).
    pub transaction_state_log_segment_bytes: u64,
    /// `transaction.max.timeout.ms` (900000): the longest `transaction.timeout.ms` a producer
    /// may ask for.
    pub transaction_max_timeout_ms: i32,
    /// `transaction.abort.timed.out.transaction.cleanup.interval.ms` (10000): how often the
    /// coordinator looks for transactions past their timeout (and aborts them).
    pub transaction_abort_timed_out_transaction_cleanup_interval_ms: u64,
    /// `transactional.id.expiration.ms` (604800000): a transactional id idle this long with no
    /// open transaction is forgotten (its record tombstoned).
    pub transactional_id_expiration_ms: u64,
    /// `transaction.remove.expired.transaction.cleanup.interval.ms` (3600000).
    pub transaction_remove_expired_transaction_cleanup_interval_ms: u64,
    /// `group.initial.rebalance.delay.ms` (3000): how long the first rebalance of an empty
    /// group waits for more members.
    pub group_initial_rebalance_delay_ms: u64,
    /// `group.min.session.timeout.ms` (6000).
    pub group_min_session_timeout_ms: i32,
    /// `group.max.session.timeout.ms` (1800000).
    pub group_max_session_timeout_ms: i32,
    /// `group.max.size` (`i32::MAX`): members a group may have.
    pub group_max_size: i32,
    /// `offsets.retention.minutes` (10080): how long committed offsets outlive their group's
    /// consumers (KIP-211), or their commit for groups that only store offsets.
    pub offsets_retention_minutes: i32,
    /// `offsets.retention.check.interval.ms` (600000): how often offsets are checked for expiry.
    pub offsets_retention_check_interval_ms: u64,
    /// `zookeeper.connect`. Kafka requires it; unset (or empty) here means the embedded metadata
    /// store, so that a single broker needs no ZooKeeper.
    pub zookeeper_connect: Option<String>,
    /// `zookeeper.session.timeout.ms` (18000, Kafka 2.5+; 2.4 had 6000).
    pub zookeeper_session_timeout_ms: u64,
    /// `zookeeper.connection.timeout.ms`; unset means the session timeout, as in Kafka.
    pub zookeeper_connection_timeout_ms: Option<u64>,
    /// `unclean.leader.election.enable` (false): may an out-of-sync replica become leader when
    /// no in-sync one is alive, losing what it lacks.
    pub unclean_leader_election_enable: bool,
    /// `controller.socket.timeout.ms` (30000): how long the controller waits for a broker.
    pub controller_socket_timeout_ms: u64,
    /// `request.timeout.ms` (30000): how long the transaction coordinator's log writes and
    /// WriteTxnMarkers wait for the ISR, as in Kafka.
    pub request_timeout_ms: u64,
    /// `auto.leader.rebalance.enable` (true): the controller moves leadership back to each
    /// partition's preferred (first) replica when a broker leads too few of its own.
    pub auto_leader_rebalance_enable: bool,
    /// `leader.imbalance.check.interval.seconds` (300).
    pub leader_imbalance_check_interval_seconds: u64,
    /// `leader.imbalance.per.broker.percentage` (10): the share of a broker's preferred
    /// partitions led elsewhere above which they are moved back.
    pub leader_imbalance_per_broker_percentage: u32,
    /// `controlled.shutdown.enable` (true): on SIGTERM, ask the controller to move this
    /// broker's leaderships away before stopping.
    pub controlled_shutdown_enable: bool,
    /// `controlled.shutdown.max.retries` (3).
    pub controlled_shutdown_max_retries: u32,
    /// `controlled.shutdown.retry.backoff.ms` (5000).
    pub controlled_shutdown_retry_backoff_ms: u64,
    /// `log.retention.check.interval.ms` (300000).
    pub log_retention_check_interval_ms: u64,
    /// `log.flush.scheduler.interval.ms`: how often logs are checked against `flush.ms`. Kafka's
    /// default is `Long.MAX_VALUE` (`i64::MAX` here), i.e. never: the OS writes pages back and
    /// replication gives durability. A caller that builds a timer from it must treat values too
    /// large for a deadline as "never" rather than add them to the current instant.
    pub log_flush_scheduler_interval_ms: u64,
    /// `log.flush.offset.checkpoint.interval.ms` (60000).
    pub log_flush_offset_checkpoint_interval_ms: u64,
    /// `replica.high.watermark.checkpoint.interval.ms` (5000).
    pub replica_high_watermark_checkpoint_interval_ms: u64,
    /// `replica.lag.time.max.ms` (30000): a follower that has not caught up with the leader's
    /// log end for this long leaves the ISR.
    pub replica_lag_time_max_ms: u64,
    /// `replica.fetch.wait.max.ms` (500): how long a follower's fetch waits at the leader.
    pub replica_fetch_wait_max_ms: u64,
    /// `replica.fetch.min.bytes` (1).
    pub replica_fetch_min_bytes: i32,
    /// `replica.fetch.max.bytes` (1048576): per partition in one follower fetch.
    pub replica_fetch_max_bytes: i32,
    /// `replica.fetch.response.max.bytes` (10485760): per follower fetch.
    pub replica_fetch_response_max_bytes: i32,
    /// `replica.fetch.backoff.ms` (1000): pause after a failed follower fetch.
    pub replica_fetch_backoff_ms: u64,
    /// `max.incremental.fetch.session.cache.slots` (1000): how many KIP-227 fetch sessions
    /// the broker keeps; 0 answers every fetch in full, without a session.
    pub max_incremental_fetch_session_cache_slots: usize,
    /// `metrics.port` (9404): our Prometheus `/metrics` endpoint; Kafka has no such key.
    pub metrics_port: u16,
    /// Topic defaults from the broker's `log.*` keys and the other broker synonyms of topic
    /// configs (see [`LogConfig::from_broker_properties`]).
    pub log: LogConfig,
    /// Every key and value given (file and overrides), as written: Kafka's "originals", which
    /// DescribeConfigs reports as STATIC_BROKER_CONFIG and dynamic configs are layered on.
    pub originals: BTreeMap<String, String>,
    /// `log.cleaner.*`: the threads that compact `cleanup.policy=compact` topics.
    pub log_cleaner: CleanerConfig,
    /// Keys that are neither ours nor Kafka's, in key order. Kafka warns about each ("supplied
    /// but isn't a known config") and carries on; so should the caller.
    pub unknown_keys: Vec<String>,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        let listeners = vec![Listener {
            name: "PLAINTEXT".into(),
            host: DEFAULT_LISTENER_HOST.into(),
            port: DEFAULT_PORT,
        }];
        BrokerConfig {
            broker_id: -1,
            advertised_listeners: listeners.clone(),
            broker_rack: None,
            listeners,
            log_dirs: vec![PathBuf::from(DEFAULT_LOG_DIR)],
            num_partitions: 1,
            default_replication_factor: 1,
            auto_create_topics_enable: true,
            delete_topic_enable: true,
            message_max_bytes: 1_048_588,
            socket_request_max_bytes: 104_857_600,
            max_connections: i32::MAX as usize,
            connections_max_idle_ms: 600_000,
            queued_max_requests: 500,
            offsets_topic_num_partitions: 50,
            offsets_topic_replication_factor: 3,
            offsets_topic_segment_bytes: 104_857_600,
            transaction_state_log_num_partitions: 50,
            transaction_state_log_replication_factor: 3,
            transaction_state_log_min_isr: 2,
            transaction_state_log_segment_bytes: 104_857_600,
            transaction_max_timeout_ms: 900_000,
            transaction_abort_timed_out_transaction_cleanup_interval_ms: 10_000,
            transactional_id_expiration_ms: 604_800_000,
            transaction_remove_expired_transaction_cleanup_interval_ms: 3_600_000,
            group_initial_rebalance_delay_ms: 3000,
            group_min_session_timeout_ms: 6000,
            group_max_session_timeout_ms: 1_800_000,
            group_max_size: i32::MAX,
            offsets_retention_minutes: 10_080,
            offsets_retention_check_interval_ms: 600_000,
            zookeeper_connect: None,
            zookeeper_session_timeout_ms: 18_000,
            zookeeper_connection_timeout_ms: None,
            unclean_leader_election_enable: false,
            controller_socket_timeout_ms: 30_000,
            request_timeout_ms: 30_000,
            auto_leader_rebalance_enable: true,
            leader_imbalance_check_interval_seconds: 300,
            leader_imbalance_per_broker_percentage: 10,
            controlled_shutdown_enable: true,
            controlled_shutdown_max_retries: 3,
            controlled_shutdown_retry_backoff_ms: 5000,
            log_retention_check_interval_ms: 300_000,
            log_flush_scheduler_interval_ms: i64::MAX as u64,
            log_flush_offset_checkpoint_interval_ms: 60_000,
            replica_high_watermark_checkpoint_interval_ms: 5_000,
            replica_lag_time_max_ms: 30_000,
            replica_fetch_wait_max_ms: 500,
            replica_fetch_min_bytes: 1,
            replica_fetch_max_bytes: 1_048_576,
            max_incremental_fetch_session_cache_slots: 1000,
            replica_fetch_response_max_bytes: 10_485_760,
            replica_fetch_backoff_ms: 1_000,
            metrics_port: 9404,
            log: LogConfig::default(),
            originals: BTreeMap::new(),
            log_cleaner: CleanerConfig::default(),
            unknown_keys: Vec::new(),
        }
    }
}

/// Broker keys this module reads, besides the broker synonyms of topic configs
/// ([`defs::TOPIC_CONFIGS`]).
const BROKER_KEYS: &[&str] = &[
    "unclean.leader.election.enable",
    "controller.socket.timeout.ms",
    "request.timeout.ms",
    "auto.leader.rebalance.enable",
    "leader.imbalance.per.broker.percentage",
    "leader.imbalance.check.interval.seconds",
    "controlled.shutdown.enable",
    "controlled.shutdown.max.retries",
    "controlled.shutdown.retry.backoff.ms",
    "broker.id",
    "broker.id.generation.enable",
    "broker.rack",
    "reserved.broker.max.id",
    "listeners",
    "advertised.listeners",
    "listener.security.protocol.map",
    "inter.broker.listener.name",
    "security.inter.broker.protocol",
    // Kafka 2.4's deprecated way to describe the single PLAINTEXT listener (removed in 3.0).
    "host.name",
    "port",
    "advertised.host.name",
    "advertised.port",
    "log.dirs",
    "log.dir",
    "num.partitions",
    "default.replication.factor",
    "auto.create.topics.enable",
    "delete.topic.enable",
    "message.max.bytes",
    "socket.request.max.bytes",
    "max.connections",
    "connections.max.idle.ms",
    "queued.max.requests",
    "offsets.topic.num.partitions",
    "offsets.topic.replication.factor",
    "offsets.topic.segment.bytes",
    "transaction.state.log.num.partitions",
    "transaction.state.log.replication.factor",
    "transaction.state.log.min.isr",
    "transaction.state.log.segment.bytes",
    "transaction.max.timeout.ms",
    "transaction.abort.timed.out.transaction.cleanup.interval.ms",
    "transactional.id.expiration.ms",
    "transaction.remove.expired.transaction.cleanup.interval.ms",
    "group.initial.rebalance.delay.ms",
    "group.min.session.timeout.ms",
    "group.max.session.timeout.ms",
    "group.max.size",
    "offsets.retention.minutes",
    "offsets.retention.check.interval.ms",
    "zookeeper.connect",
    "zookeeper.session.timeout.ms",
    "zookeeper.connection.timeout.ms",
    "log.retention.check.interval.ms",
    "log.flush.scheduler.interval.ms",
    "log.flush.offset.checkpoint.interval.ms",
    "replica.high.watermark.checkpoint.interval.ms",
    "replica.lag.time.max.ms",
    "replica.fetch.wait.max.ms",
    "replica.fetch.min.bytes",
    "replica.fetch.max.bytes",
    "replica.fetch.response.max.bytes",
    "replica.fetch.backoff.ms",
    "max.incremental.fetch.session.cache.slots",
    "metrics.port",
    "log.cleaner.enable",
    "log.cleaner.threads",
    "log.cleaner.dedupe.buffer.size",
    "log.cleaner.io.buffer.size",
    "log.cleaner.io.buffer.load.factor",
    "log.cleaner.io.max.bytes.per.second",
    "log.cleaner.backoff.ms",
];

/// Kafka broker keys we accept without acting on them, so that a Kafka `server.properties`
/// works unchanged and without warnings. Some tune machinery we do not have (thread pools,
/// socket buffers, JMX); the rest belong to features not built yet, or built differently.
const KAFKA_KEYS_IGNORED: &[&str] = &[
    // Threads and buffers: the async runtime stands in for Kafka's pools; the OS sizes buffers.
    "num.network.threads",
    "num.io.threads",
    "background.threads",
    "num.recovery.threads.per.data.dir",
    "num.replica.fetchers",
    "num.replica.alter.log.dirs.threads",
    "socket.send.buffer.bytes",
    "socket.receive.buffer.bytes",
    "socket.listen.backlog.size",
    "socket.connection.setup.timeout.ms",
    "socket.connection.setup.timeout.max.ms",
    "queued.max.request.bytes",
    // Connections and listeners.
    "max.connections.per.ip",
    "max.connections.per.ip.overrides",
    "max.connection.creation.rate",
    "connections.max.reauth.ms",
    "connection.failed.authentication.delay.ms",
    "control.plane.listener.name",
    // Broker identity and the ZooKeeper client.
    "zookeeper.set.acl",
    "zookeeper.max.in.flight.requests",
    "zookeeper.clientCnxnSocket",
    "zookeeper.metadata.migration.enable",
    // Logs.
    "log.flush.start.offset.checkpoint.interval.ms",
    "create.topic.policy.class.name",
    "alter.config.policy.class.name",
    // Replication and the controller.
    "replica.socket.timeout.ms",
    "replica.socket.receive.buffer.bytes",
    "replica.selector.class",
    "inter.broker.protocol.version",
    "fetch.purgatory.purge.interval.requests",
    "producer.purgatory.purge.interval.requests",
    "delete.records.purgatory.purge.interval.requests",
    "fetch.max.bytes",
    // Groups and committed offsets.
    "offset.metadata.max.bytes",
    "offsets.load.buffer.size",
    "offsets.topic.compression.codec",
    "offsets.commit.timeout.ms",
    "offsets.commit.required.acks",
    // Transactions and producer ids.
    "transaction.state.log.load.buffer.size",
    "transaction.partition.verification.enable",
    "producer.id.expiration.ms",
    "producer.id.expiration.check.interval.ms",
    // Quotas.
    "quota.producer.default",
    "quota.consumer.default",
    "quota.window.num",
    "quota.window.size.seconds",
    "replication.quota.window.num",
    "replication.quota.window.size.seconds",
    "alter.log.dirs.replication.quota.window.num",
    "alter.log.dirs.replication.quota.window.size.seconds",
    "client.quota.callback.class",
    // Kafka's own metrics; ours are Prometheus metrics on metrics.port.
    "metric.reporters",
    "metrics.num.samples",
    "metrics.sample.window.ms",
    "metrics.recording.level",
    "kafka.metrics.reporters",
    "kafka.metrics.polling.interval.secs",
    "auto.include.jmx.reporter",
    // Authorisation.
    "authorizer.class.name",
    "principal.builder.class",
    "security.providers",
    "allow.everyone.if.no.acl.found",
    "super.users",
];

/// Whole families of Kafka keys for features we do not implement (TLS, SASL, per-listener
/// security settings, tiered storage). Listing every member would add nothing: none is read.
const KAFKA_PREFIXES_IGNORED: &[&str] = &[
    "ssl.",
    "sasl.",
    "listener.name.",
    "zookeeper.ssl.",
    "password.encoder.",
    "delegation.token.",
    "remote.log.",
];

fn is_read(key: &str) -> bool {
    BROKER_KEYS.contains(&key)
        || defs::TOPIC_CONFIGS
            .iter()
            .any(|t| t.synonyms.iter().any(|s| s.name == key))
}

fn is_known(key: &str) -> bool {
    is_read(key)
        || KAFKA_KEYS_IGNORED.contains(&key)
        || KAFKA_PREFIXES_IGNORED.iter().any(|p| key.starts_with(p))
}

/// Typed access to the properties; every value is trimmed first, as Kafka's `ConfigDef` does.
struct Props<'a>(&'a BTreeMap<String, String>);

impl<'a> Props<'a> {
    fn get(&self, key: &str) -> Option<&'a str> {
        // A key read here but missing from BROKER_KEYS would also be reported as unknown.
        debug_assert!(is_read(key), "{key} is read but not listed in BROKER_KEYS");
        self.0.get(key).map(|v| v.trim())
    }

    fn num<T>(&self, key: &str, min: Option<T>, default: T) -> Result<T, ConfigError>
    where
        T: std::str::FromStr + PartialOrd + fmt::Display,
    {
        self.get(key).map_or(Ok(default), |v| parse(key, v, min))
    }

    /// A Kafka int or long that we keep unsigned: `min` must be at least 0.
    fn unsigned<T, U>(&self, key: &str, min: T, default: T) -> Result<U, ConfigError>
    where
        T: std::str::FromStr + PartialOrd + fmt::Display + Copy,
        U: TryFrom<T>,
    {
        let v = self.num(key, Some(min), default)?;
        U::try_from(v).map_err(|_| invalid(key, &v.to_string(), "out of range"))
    }

    fn bool(&self, key: &str, default: bool) -> Result<bool, ConfigError> {
        match self.get(key) {
            None => Ok(default),
            // Kafka accepts either case.
            Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
            Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
            Some(v) => Err(invalid(key, v, "must be true or false")),
        }
    }
}

fn csv(value: &str) -> impl Iterator<Item = &str> {
    value.split(',').map(str::trim).filter(|s| !s.is_empty())
}

fn join_listeners(listeners: &[Listener]) -> String {
    listeners
        .iter()
        .map(Listener::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// The characters Kafka's listener pattern allows in a host (names, IPv4, IPv6 with zone).
fn check_host(host: &str) -> Result<(), String> {
    match host
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "-%._:".contains(*c)))
    {
        Some(c) => Err(format!("host {host:?} contains {c:?}")),
        None => Ok(()),
    }
}

fn parse_listener(entry: &str) -> Result<Listener, String> {
    const FORM: &str = "expected NAME://host:port, e.g. PLAINTEXT://127.0.0.1:9092";
    let (name, address) = entry.split_once("://").ok_or(FORM)?;
    let name = name.trim().to_ascii_uppercase();
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(format!("bad listener name in {entry:?}; {FORM}"));
    }
    let (host, port) = match address.strip_prefix('[') {
        Some(bracketed) => bracketed.split_once("]:"),
        // Without brackets an IPv6 host still works: the port follows the last colon.
        None => address.rsplit_once(':'),
    }
    .ok_or_else(|| format!("no port in {entry:?}; {FORM}"))?;
    check_host(host)?;
    let port = port
        .parse::<u16>()
        .map_err(|_| format!("port {port:?} is not a number from 0 to 65535"))?;
    Ok(Listener {
        name,
        host: host.to_string(),
        port,
    })
}

fn parse_listeners(
    key: &str,
    value: &str,
    distinct_ports: bool,
) -> Result<Vec<Listener>, ConfigError> {
    let mut listeners: Vec<Listener> = Vec::new();
    for entry in csv(value) {
        let l = parse_listener(entry).map_err(|reason| invalid(key, value, reason))?;
        if listeners.iter().any(|o| o.name == l.name) {
            return Err(invalid(
                key,
                value,
                format!("listener name {} appears twice", l.name),
            ));
        }
        // Port 0 means "any free port", so several listeners may ask for it; advertised ports
        // may repeat (different hosts behind NAT), as Kafka allows since 2.6.
        if distinct_ports && l.port != 0 && listeners.iter().any(|o| o.port == l.port) {
            return Err(invalid(
                key,
                value,
                format!("port {} is used by two listeners", l.port),
            ));
        }
        listeners.push(l);
    }
    if listeners.is_empty() {
        return Err(invalid(
            key,
            value,
            "at least one listener is required, e.g. PLAINTEXT://127.0.0.1:9092",
        ));
    }
    Ok(listeners)
}

/// `listener.security.protocol.map`: listener name to security protocol.
fn parse_protocol_map(value: &str) -> Result<BTreeMap<String, String>, ConfigError> {
    const KEY: &str = "listener.security.protocol.map";
    let mut map = BTreeMap::new();
    for entry in csv(value) {
        let (name, protocol) = entry
            .split_once(':')
            .ok_or_else(|| invalid(KEY, value, format!("{entry:?} is not NAME:PROTOCOL")))?;
        let protocol = protocol.trim().to_ascii_uppercase();
        if !SECURITY_PROTOCOLS.contains(&protocol.as_str()) {
            return Err(invalid(
                KEY,
                value,
                format!(
                    "unknown security protocol {protocol}; expected one of {SECURITY_PROTOCOLS:?}"
                ),
            ));
        }
        map.insert(name.trim().to_ascii_uppercase(), protocol);
    }
    Ok(map)
}

/// `log.retention.ms`, else `.minutes`, else `.hours`, as `KafkaConfig` resolves them.
fn retention_ms(props: &BTreeMap<String, String>) -> Result<i64, ConfigError> {
    let p = Props(props);
    let (key, value, ms) = if let Some(v) = p.get("log.retention.ms") {
        (
            "log.retention.ms",
            v,
            parse::<i64>("log.retention.ms", v, None)?,
        )
    } else if let Some(v) = p.get("log.retention.minutes") {
        let minutes = parse::<i32>("log.retention.minutes", v, None)?;
        ("log.retention.minutes", v, i64::from(minutes) * 60_000)
    } else if let Some(v) = p.get("log.retention.hours") {
        let hours = parse::<i32>("log.retention.hours", v, None)?;
        ("log.retention.hours", v, i64::from(hours) * HOUR_MS)
    } else {
        return Ok(WEEK_MS);
    };
    match ms {
        // Any negative value means "keep forever", which Kafka stores as -1.
        ..0 => Ok(-1),
        // Zero would delete every segment as soon as it rolled; Kafka refuses it.
        0 => Err(invalid(
            key,
            value,
            "must be -1 (unlimited) or at least 1 ms",
        )),
        _ => Ok(ms),
    }
}

/// `log.roll.ms`, else `log.roll.hours`.
fn roll_ms(props: &BTreeMap<String, String>) -> Result<i64, ConfigError> {
    let p = Props(props);
    if let Some(v) = p.get("log.roll.ms") {
        parse("log.roll.ms", v, Some(1i64))
    } else if let Some(v) = p.get("log.roll.hours") {
        Ok(i64::from(parse("log.roll.hours", v, Some(1i32))?) * HOUR_MS)
    } else {
        Ok(WEEK_MS)
    }
}

impl BrokerConfig {
    /// Builds the configuration from `server.properties` entries (plus any overrides already
    /// merged in). Kafka's defaults fill the gaps; the first bad value stops with an error that
    /// names its key and value; keys nobody knows end up in `unknown_keys`.
    pub fn from_properties(props: &BTreeMap<String, String>) -> Result<BrokerConfig, ConfigError> {
        let p = Props(props);
        let defaults = BrokerConfig::default();

        let id_generation = p.bool("broker.id.generation.enable", true)?;
        let reserved_max_id = p.num("reserved.broker.max.id", Some(0i32), 1000)?;
        let broker_id = p.num("broker.id", None, defaults.broker_id)?;
        // Kafka's rule: generated ids start above reserved.broker.max.id, so configured ids must
        // stay at or below it; without generation there is nothing to stand for -1.
        if id_generation && !(-1..=reserved_max_id).contains(&broker_id) {
            return Err(invalid(
                "broker.id",
                &broker_id.to_string(),
                format!("must be from -1 to reserved.broker.max.id ({reserved_max_id})"),
            ));
        }
        if !id_generation && broker_id < 0 {
            return Err(invalid(
                "broker.id",
                &broker_id.to_string(),
                "must be at least 0 when broker.id.generation.enable is false",
            ));
        }

        let (listeners, advertised_listeners) = Self::listeners(&p)?;

        let (dirs_key, dirs_value) = match (p.get("log.dirs"), p.get("log.dir")) {
            (Some(v), _) => ("log.dirs", v),
            (None, Some(v)) => ("log.dir", v),
            (None, None) => ("log.dir", DEFAULT_LOG_DIR),
        };
        let mut log_dirs: Vec<PathBuf> = Vec::new();
        for dir in csv(dirs_value).map(PathBuf::from) {
            if log_dirs.contains(&dir) {
                return Err(invalid(
                    dirs_key,
                    dirs_value,
                    format!("{} is listed twice", dir.display()),
                ));
            }
            log_dirs.push(dir);
        }
        if log_dirs.is_empty() {
            return Err(invalid(
                dirs_key,
                dirs_value,
                "at least one log directory is required",
            ));
        }

        let zookeeper_connection_timeout_ms = match p.get("zookeeper.connection.timeout.ms") {
            Some(v) => Some(u64::from(parse(
                "zookeeper.connection.timeout.ms",
                v,
                Some(1u32),
            )?)),
            None => None,
        };

        // Scheduler periods must be positive: Kafka's scheduler rejects 0 at start-up, and a
        // zero-period timer is a busy loop (or a panic) here, so say so now.
        let flush_scheduler_ms: i64 =
            p.num("log.flush.scheduler.interval.ms", Some(1), i64::MAX)?;

        let log = LogConfig::from_broker_properties(props)?;

        // Kafka refuses a follower fetch wait at or above the lag limit: a follower parked that
        // long at an idle leader would be thrown out of the ISR.
        let replica_fetch_wait_max_ms: u64 = p.unsigned("replica.fetch.wait.max.ms", 0i32, 500)?;
        let lag: i64 = p.num("replica.lag.time.max.ms", Some(1), 30_000)?;
        if replica_fetch_wait_max_ms as i64 >= lag {
            return Err(invalid(
                "replica.fetch.wait.max.ms",
                &replica_fetch_wait_max_ms.to_string(),
                "must be less than replica.lag.time.max.ms",
            ));
        }

        Ok(BrokerConfig {
            broker_id,
            listeners,
            advertised_listeners,
            broker_rack: p.get("broker.rack").map(String::from),
            log_dirs,
            num_partitions: p.num("num.partitions", Some(1), defaults.num_partitions)?,
            default_replication_factor: p.num(
                "default.replication.factor",
                Some(1),
                defaults.default_replication_factor,
            )?,
            auto_create_topics_enable: p.bool("auto.create.topics.enable", true)?,
            delete_topic_enable: p.bool("delete.topic.enable", true)?,
            // Kafka types these as int: anything past i32::MAX is an error there, so here too.
            message_max_bytes: p.unsigned("message.max.bytes", 0i32, 1_048_588)?,
            socket_request_max_bytes: p.unsigned("socket.request.max.bytes", 1i32, 104_857_600)?,
            max_connections: p.unsigned("max.connections", 0i32, i32::MAX)?,
            // Negative means "never close idle connections" in Kafka.
            connections_max_idle_ms: u64::try_from(p.num(
                "connections.max.idle.ms",
                None,
                600_000i64,
            )?)
            .unwrap_or(u64::MAX),
            queued_max_requests: p.unsigned("queued.max.requests", 1i32, 500)?,
            offsets_topic_num_partitions: p.num(
                "offsets.topic.num.partitions",
                Some(1),
                defaults.offsets_topic_num_partitions,
            )?,
            offsets_topic_replication_factor: p.num(
                "offsets.topic.replication.factor",
                Some(1),
                defaults.offsets_topic_replication_factor,
            )?,
            offsets_topic_segment_bytes: p.unsigned(
                "offsets.topic.segment.bytes",
                1i32,
                104_857_600,
            )?,
            transaction_state_log_num_partitions: p.num(
                "transaction.state.log.num.partitions",
                Some(1),
                defaults.transaction_state_log_num_partitions,
            )?,
            transaction_state_log_replication_factor: p.num(
                "transaction.state.log.replication.factor",
                Some(1),
                defaults.transaction_state_log_replication_factor,
            )?,
            transaction_state_log_min_isr: p.num(
                "transaction.state.log.min.isr",
                Some(1),
                defaults.transaction_state_log_min_isr,
            )?,
            transaction_state_log_segment_bytes: p.unsigned(
                "transaction.state.log.segment.bytes",
                1i32,
                104_857_600,
            )?,
            transaction_max_timeout_ms: p.num(
                "transaction.max.timeout.ms",
                Some(1),
                defaults.transaction_max_timeout_ms,
            )?,
            transaction_abort_timed_out_transaction_cleanup_interval_ms: p.unsigned(
                "transaction.abort.timed.out.transaction.cleanup.interval.ms",
                1i32,
                10_000,
            )?,
            transactional_id_expiration_ms: p.unsigned(
                "transactional.id.expiration.ms",
                1i32,
                604_800_000,
            )?,
            transaction_remove_expired_transaction_cleanup_interval_ms: p.unsigned(
                "transaction.remove.expired.transaction.cleanup.interval.ms",
                1i32,
                3_600_000,
            )?,
            group_initial_rebalance_delay_ms: p.unsigned(
                "group.initial.rebalance.delay.ms",
                0i32,
                3000,
            )?,
            group_min_session_timeout_ms: p.num(
                "group.min.session.timeout.ms",
                Some(0),
                defaults.group_min_session_timeout_ms,
            )?,
            group_max_session_timeout_ms: p.num(
                "group.max.session.timeout.ms",
                Some(0),
                defaults.group_max_session_timeout_ms,
            )?,
            // Kafka's ranges: atLeast(1) for all three.
            group_max_size: p.num("group.max.size", Some(1), defaults.group_max_size)?,
            offsets_retention_minutes: p.num(
                "offsets.retention.minutes",
                Some(1),
                defaults.offsets_retention_minutes,
            )?,
            offsets_retention_check_interval_ms: p.unsigned(
                "offsets.retention.check.interval.ms",
                1i64,
                600_000,
            )?,
            zookeeper_connect: p
                .get("zookeeper.connect")
                .filter(|v| !v.is_empty())
                .map(str::to_string),
            zookeeper_session_timeout_ms: p.unsigned(
                "zookeeper.session.timeout.ms",
                1i32,
                18_000,
            )?,
            zookeeper_connection_timeout_ms,
            unclean_leader_election_enable: p.bool("unclean.leader.election.enable", false)?,
            controller_socket_timeout_ms: p.unsigned(
                "controller.socket.timeout.ms",
                1i32,
                30_000,
            )?,
            request_timeout_ms: p.unsigned("request.timeout.ms", 1i32, 30_000)?,
            auto_leader_rebalance_enable: p.bool("auto.leader.rebalance.enable", true)?,
            leader_imbalance_check_interval_seconds: p.unsigned(
                "leader.imbalance.check.interval.seconds",
                1i64,
                300,
            )?,
            leader_imbalance_per_broker_percentage: p.unsigned(
                "leader.imbalance.per.broker.percentage",
                0i32,
                10,
            )?,
            controlled_shutdown_enable: p.bool("controlled.shutdown.enable", true)?,
            controlled_shutdown_max_retries: p.unsigned(
                "controlled.shutdown.max.retries",
                0i32,
                3,
            )?,
            controlled_shutdown_retry_backoff_ms: p.unsigned(
                "controlled.shutdown.retry.backoff.ms",
                0i64,
                5000,
            )?,
            log_retention_check_interval_ms: p.unsigned(
                "log.retention.check.interval.ms",
                1i64,
                300_000,
            )?,
            // Positive, so the conversion cannot fail.
            log_flush_scheduler_interval_ms: u64::try_from(flush_scheduler_ms).unwrap_or(u64::MAX),
            log_flush_offset_checkpoint_interval_ms: p.unsigned(
                "log.flush.offset.checkpoint.interval.ms",
                1i32,
                60_000,
            )?,
            replica_high_watermark_checkpoint_interval_ms: p.unsigned(
                "replica.high.watermark.checkpoint.interval.ms",
                1i64,
                5_000,
            )?,
            replica_lag_time_max_ms: p.unsigned("replica.lag.time.max.ms", 1i64, 30_000)?,
            replica_fetch_wait_max_ms,
            replica_fetch_min_bytes: p.num("replica.fetch.min.bytes", Some(1), 1)?,
            replica_fetch_max_bytes: p.num("replica.fetch.max.bytes", Some(0), 1_048_576)?,
            replica_fetch_response_max_bytes: p.num(
                "replica.fetch.response.max.bytes",
                Some(0),
                10_485_760,
            )?,
            replica_fetch_backoff_ms: p.unsigned("replica.fetch.backoff.ms", 0i32, 1_000)?,
            max_incremental_fetch_session_cache_slots: p.unsigned(
                "max.incremental.fetch.session.cache.slots",
                0i32,
                1000,
            )?,
            metrics_port: p.num("metrics.port", None, defaults.metrics_port)?,
            log,
            originals: props.clone(),
            log_cleaner: Self::cleaner(&p)?,
            unknown_keys: props.keys().filter(|k| !is_known(k)).cloned().collect(),
        })
    }

    /// `log.cleaner.*` with the ranges Kafka's `CleanerConfig` allows.
    fn cleaner(p: &Props<'_>) -> Result<CleanerConfig, ConfigError> {
        let d = CleanerConfig::default();
        let load_factor: f64 = p.num(
            "log.cleaner.io.buffer.load.factor",
            None,
            d.dedupe_buffer_load_factor,
        )?;
        if !(load_factor > 0.0 && load_factor <= 1.0) {
            return Err(invalid(
                "log.cleaner.io.buffer.load.factor",
                &load_factor.to_string(),
                "must be greater than 0 and at most 1",
            ));
        }
        let rate: f64 = p.num(
            "log.cleaner.io.max.bytes.per.second",
            None,
            d.io_max_bytes_per_second,
        )?;
        if rate.is_nan() || rate <= 0.0 {
            return Err(invalid(
                "log.cleaner.io.max.bytes.per.second",
                &rate.to_string(),
                "must be positive",
            ));
        }
        Ok(CleanerConfig {
            enable: p.bool("log.cleaner.enable", d.enable)?,
            threads: p.unsigned("log.cleaner.threads", 0i32, 1)?,
            dedupe_buffer_size: p.unsigned(
                "log.cleaner.dedupe.buffer.size",
                0i64,
                d.dedupe_buffer_size as i64,
            )?,
            io_buffer_size: p.unsigned("log.cleaner.io.buffer.size", 0i32, 512 * 1024)?,
            dedupe_buffer_load_factor: load_factor,
            io_max_bytes_per_second: rate,
            backoff_ms: p.unsigned("log.cleaner.backoff.ms", 0i64, 15_000)?,
        })
    }

    /// `listeners` and `advertised.listeners`, with the checks Kafka makes on them.
    fn listeners(p: &Props<'_>) -> Result<(Vec<Listener>, Vec<Listener>), ConfigError> {
        let legacy_host = p.get("host.name");
        let legacy_port = p.num("port", None, DEFAULT_PORT)?;
        let plaintext = |key: &str, host: &str, port: u16| {
            check_host(host)
                .map(|()| Listener {
                    name: "PLAINTEXT".into(),
                    host: host.to_string(),
                    port,
                })
                .map_err(|reason| invalid(key, host, reason))
        };

        let listeners = match p.get("listeners") {
            Some(v) => parse_listeners("listeners", v, true)?,
            // Kafka 2.4 builds the one listener from the deprecated host.name and port.
            None => vec![plaintext(
                "host.name",
                legacy_host.unwrap_or(DEFAULT_LISTENER_HOST),
                legacy_port,
            )?],
        };
        let advertised_host = p.get("advertised.host.name");
        let advertised_port = p.get("advertised.port");
        let advertised = match p.get("advertised.listeners") {
            Some(v) => parse_listeners("advertised.listeners", v, false)?,
            // Kafka 2.4 again: each half of the deprecated pair defaults to host.name / port.
            None if advertised_host.is_some() || advertised_port.is_some() => {
                let port = p.num("advertised.port", None, legacy_port)?;
                let host = advertised_host
                    .or(legacy_host)
                    .unwrap_or(DEFAULT_LISTENER_HOST);
                vec![plaintext("advertised.host.name", host, port)?]
            }
            None => listeners.clone(),
        };

        let protocols = parse_protocol_map(
            p.get("listener.security.protocol.map")
                .unwrap_or(DEFAULT_SECURITY_PROTOCOL_MAP),
        )?;
        for (key, list) in [
            ("listeners", &listeners),
            ("advertised.listeners", &advertised),
        ] {
            for l in list.iter() {
                match protocols.get(&l.name).map(String::as_str) {
                    Some("PLAINTEXT") => {}
                    Some(other) => {
                        return Err(invalid(
                            key,
                            &join_listeners(list),
                            format!(
                                "listener {} uses {other}, but odradek serves PLAINTEXT only",
                                l.name
                            ),
                        ));
                    }
                    None => {
                        return Err(invalid(
                            key,
                            &join_listeners(list),
                            format!(
                                "listener.security.protocol.map has no security protocol for listener {}",
                                l.name
                            ),
                        ));
                    }
                }
            }
        }

        let shown = join_listeners(&advertised);
        for a in &advertised {
            if !listeners.iter().any(|l| l.name == a.name) {
                return Err(invalid(
                    "advertised.listeners",
                    &shown,
                    format!("listener {} is not among listeners", a.name),
                ));
            }
            // Kafka refuses this too: clients would be told to connect to "any address".
            if a.host == "0.0.0.0" {
                return Err(invalid(
                    "advertised.listeners",
                    &shown,
                    "0.0.0.0 is not an address clients can reach; advertised.listeners \
                     defaults to listeners, so set it to a routable host",
                ));
            }
        }

        // Other brokers (and the controller) reach this one through the inter-broker listener,
        // so it must be advertised. Kafka makes the same checks; we only validate it here.
        let (key, name) = match (
            p.get("inter.broker.listener.name"),
            p.get("security.inter.broker.protocol"),
        ) {
            (Some(name), Some(_)) => {
                return Err(invalid(
                    "inter.broker.listener.name",
                    name,
                    "set only one of inter.broker.listener.name and security.inter.broker.protocol",
                ));
            }
            (Some(name), None) => ("inter.broker.listener.name", name.to_ascii_uppercase()),
            (None, Some(protocol)) => {
                let upper = protocol.to_ascii_uppercase();
                if !SECURITY_PROTOCOLS.contains(&upper.as_str()) {
                    return Err(invalid(
                        "security.inter.broker.protocol",
                        protocol,
                        format!("expected one of {SECURITY_PROTOCOLS:?}"),
                    ));
                }
                ("security.inter.broker.protocol", upper)
            }
            (None, None) => ("inter.broker.listener.name", "PLAINTEXT".to_string()),
        };
        if !advertised.iter().any(|a| a.name == name) {
            return Err(invalid(
                key,
                &name,
                format!(
                    "brokers reach each other through this listener, so it must be one of advertised.listeners ({shown})"
                ),
            ));
        }
        Ok((listeners, advertised))
    }

    /// Reads a Java `.properties` file (if any), then applies `--override key=value` arguments,
    /// which win, and builds the configuration from the result.
    pub fn load(path: Option<&Path>, overrides: &[String]) -> Result<BrokerConfig, ConfigError> {
        let mut props = BTreeMap::new();
        if let Some(path) = path {
            let file_error =
                |reason: String| invalid("config file", &path.display().to_string(), reason);
            let bytes = std::fs::read(path).map_err(|e| file_error(format!("cannot read: {e}")))?;
            // Java reads .properties as ISO-8859-1; UTF-8 is what files are written in today, so
            // use it when the file is valid UTF-8 and fall back to Java's reading otherwise.
            let text = String::from_utf8(bytes)
                .unwrap_or_else(|e| e.into_bytes().iter().map(|&b| char::from(b)).collect());
            props.extend(parse_properties(&text).map_err(file_error)?);
        }
        for o in overrides {
            let (key, value) = o
                .split_once('=')
                .filter(|(key, _)| !key.trim().is_empty())
                .ok_or_else(|| invalid("--override", o, "expected key=value"))?;
            props.insert(key.trim().to_string(), value.trim().to_string());
        }
        Self::from_properties(&props)
    }

    /// The configuration of a topic with the given topic-level overrides (`retention.ms`, ...)
    /// on top of this broker's `log.*` defaults.
    pub fn topic_config(
        &self,
        overrides: &BTreeMap<String, String>,
    ) -> Result<LogConfig, ConfigError> {
        self.log.with_overrides(overrides)
    }
}

/// Whitespace as `java.util.Properties` counts it.
const PROPERTIES_WS: [char; 3] = [' ', '\t', '\x0c'];

/// Parses `.properties` text as `java.util.Properties.load` does: `#` and `!` comment lines,
/// `key=value`, `key:value` and `key value`, a backslash at the end of a line continues it, and
/// `\t \n \r \f \uXXXX` escapes (any other escaped character stands for itself). Later
/// duplicates win when collected into a map. Values are not trimmed here; readers trim them.
fn parse_properties(text: &str) -> Result<Vec<(String, String)>, String> {
    let text = text.replace("\r\n", "\n").replace('\r', "\n");
    let mut lines = text.split('\n').enumerate();
    let mut entries = Vec::new();
    while let Some((index, line)) = lines.next() {
        let line = line.trim_start_matches(PROPERTIES_WS);
        // A comment never continues onto the next line, even if it ends with a backslash.
        if line.is_empty() || line.starts_with(['#', '!']) {
            continue;
        }
        let mut logical = line.to_string();
        while ends_in_continuation(&logical) {
            logical.pop();
            match lines.next() {
                Some((_, next)) => logical.push_str(next.trim_start_matches(PROPERTIES_WS)),
                None => break,
            }
        }
        let (key, value) = split_key_value(&logical);
        let at_line = |e: String| format!("line {}: {e}", index + 1);
        entries.push((
            unescape(key).map_err(at_line)?,
            unescape(value).map_err(at_line)?,
        ));
    }
    Ok(entries)
}

/// An odd number of trailing backslashes: the last one is not itself escaped.
fn ends_in_continuation(line: &str) -> bool {
    line.bytes().rev().take_while(|&b| b == b'\\').count() % 2 == 1
}

/// The key ends at the first unescaped `=`, `:` or whitespace; the value starts after the
/// whitespace and at most one `=` or `:` that follow it.
fn split_key_value(line: &str) -> (&str, &str) {
    let mut escaped = false;
    let mut end = line.len();
    let mut has_separator = false;
    for (i, c) in line.char_indices() {
        if !escaped && (c == '=' || c == ':') {
            end = i;
            has_separator = true;
            break;
        }
        if !escaped && PROPERTIES_WS.contains(&c) {
            end = i;
            break;
        }
        escaped = c == '\\' && !escaped;
    }
    let key = &line[..end];
    let mut rest = line[end..].trim_start_matches(PROPERTIES_WS);
    if has_separator {
        rest = rest[1..].trim_start_matches(PROPERTIES_WS);
    } else if let Some(after) = rest.strip_prefix(['=', ':']) {
        rest = after.trim_start_matches(PROPERTIES_WS);
    }
    (key, rest)
}

fn unescape(s: &str) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('f') => out.push('\x0c'),
            Some('u') => {
                let unit = hex4(&mut chars)?;
                // Java strings are UTF-16: a character outside the BMP is two escapes.
                let code = if (0xD800..0xDC00).contains(&unit) {
                    let low = match (chars.next(), chars.next()) {
                        (Some('\\'), Some('u')) => hex4(&mut chars)?,
                        _ => return Err("unpaired \\u surrogate".into()),
                    };
                    if !(0xDC00..0xE000).contains(&low) {
                        return Err("unpaired \\u surrogate".into());
                    }
                    0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00)
                } else {
                    unit
                };
                out.push(char::from_u32(code).ok_or("unpaired \\u surrogate")?);
            }
            Some(other) => out.push(other),
            // A backslash ending the file continues nothing; Java drops it.
            None => {}
        }
    }
    Ok(out)
}

fn hex4(chars: &mut std::str::Chars<'_>) -> Result<u32, String> {
    let digits: String = chars.by_ref().take(4).collect();
    if digits.len() != 4 || !digits.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(format!("malformed \\u escape \\u{digits}"));
    }
    u32::from_str_radix(&digits, 16).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_apply_and_bad_values_name_the_key() {
        let mut o = BTreeMap::new();
        o.insert("segment.bytes".to_string(), "16384".to_string());
        o.insert("cleanup.policy".to_string(), "compact,delete".to_string());
        let c = LogConfig::default().with_overrides(&o).unwrap();
        assert_eq!(c.segment_bytes, 16384);
        assert!(c.cleanup_compact && c.cleanup_delete);
        o.insert("retention.ms".to_string(), "soon".to_string());
        let err = LogConfig::default().with_overrides(&o).unwrap_err();
        assert_eq!(err.key, "retention.ms");
        assert!(err.to_string().contains("soon"));
    }

    fn parsed(text: &str) -> Vec<(String, String)> {
        parse_properties(text).expect("valid properties")
    }

    fn pair(k: &str, v: &str) -> (String, String) {
        (k.to_string(), v.to_string())
    }

    #[test]
    fn properties_follow_java_rules() {
        assert_eq!(
            parsed("a=1\nb:2\nc 3\nd = = 4\ne\t:\t5 \nf\n"),
            vec![
                pair("a", "1"),
                pair("b", "2"),
                pair("c", "3"),
                pair("d", "= 4"),
                pair("e", "5 "),
                pair("f", "")
            ]
        );
        // Continuations drop the next line's leading blanks; an escaped backslash does not continue.
        assert_eq!(
            parsed("a=x\\\n   y\\\n\nb=c:\\\\\nd=e"),
            vec![pair("a", "xy"), pair("b", "c:\\"), pair("d", "e")]
        );
        // Comment lines (even ending in a backslash) and blank lines are skipped.
        assert_eq!(
            parsed("  # x\\\n! y\n\n\t\nk=v\r\nl=w\rm=z"),
            vec![pair("k", "v"), pair("l", "w"), pair("m", "z")]
        );
        assert_eq!(
            parsed("k\\:e\\ y=t\\tab\\u00e9\\ud83d\\ude00\\q"),
            vec![pair("k:e y", "t\tab\u{e9}\u{1f600}q")]
        );
        assert!(parse_properties("a=\\u00zz").is_err());
        assert!(parse_properties("a=\\ud83d").is_err());
        assert!(parse_properties("a=\\u12").is_err());
    }
}
