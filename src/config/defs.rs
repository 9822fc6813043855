//! Kafka's config definitions (`ConfigDef`): each topic-level and broker-level key with its type,
//! default, validator, the broker keys a topic key defaults from, and whether a broker key may be
//! changed at runtime. DescribeConfigs, AlterConfigs and the topic and broker configs all read
//! these tables, so a key has one definition.
//!
//! Values are checked and printed the way `ConfigDef.parseType` and `ConfigDef.convertToString`
//! do: trimmed, numbers in range of their Java type, booleans in either case, lists split at
//! commas, doubles printed as Java prints them.

/// `ConfigDef.Type`, with the ids DescribeConfigs v3+ reports (`DescribeConfigsResponse.ConfigType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigType {
    Boolean,
    String,
    Int,
    Short,
    Long,
    Double,
    List,
    Class,
    Password,
}

impl ConfigType {
    pub fn describe_id(self) -> i8 {
        match self {
            ConfigType::Boolean => 1,
            ConfigType::String => 2,
            ConfigType::Int => 3,
            ConfigType::Short => 4,
            ConfigType::Long => 5,
            ConfigType::Double => 6,
            ConfigType::List => 7,
            ConfigType::Class => 8,
            ConfigType::Password => 9,
        }
    }
}

/// The validators Kafka attaches to these keys.
#[derive(Debug, Clone, Copy)]
pub enum Validator {
    None,
    AtLeast(i64),
    Between(i64, i64),
    DoubleBetween(f64, f64),
    /// One of these strings, exactly (Kafka's `ValidString.in` is case-sensitive).
    OneOf(&'static [&'static str]),
    /// Every element one of these (`ValidList.in`); the empty list is valid.
    ListOf(&'static [&'static str]),
    /// `compression.gzip.level`: -1 (zlib's default) or 1 to 9.
    GzipLevel,
    /// `*.replication.throttled.replicas`: empty, `*`, or `partition:broker` pairs.
    ThrottledReplicas,
    /// A Kafka release such as `2.4` or `3.0-IV1` (`MetadataVersionValidator`).
    MetadataVersion,
}

/// One key: name, type, default (`None` is Java's null) and validator.
#[derive(Debug, Clone, Copy)]
pub struct ConfigDef {
    pub name: &'static str,
    pub kind: ConfigType,
    pub default: Option<&'static str>,
    pub validator: Validator,
}

/// A broker key a topic key takes its default from; `unit_ms` converts hours or minutes.
#[derive(Debug, Clone, Copy)]
pub struct Synonym {
    pub name: &'static str,
    pub unit_ms: i64,
}

/// A topic-level key and its broker synonyms, highest precedence first
/// (`ServerTopicConfigSynonyms.ALL_TOPIC_CONFIG_SYNONYMS`). Empty for keys no broker key sets.
#[derive(Debug, Clone, Copy)]
pub struct TopicConfigDef {
    pub def: ConfigDef,
    pub synonyms: &'static [Synonym],
}

impl TopicConfigDef {
    /// The broker key that defaults this topic key, if any (`TOPIC_CONFIG_SYNONYMS`).
    pub fn broker_key(&self) -> Option<&'static str> {
        self.synonyms.first().map(|s| s.name)
    }
}

/// Whether a broker key may be changed while the broker runs, and at which level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DynamicMode {
    /// Only from `server.properties`.
    ReadOnly,
    /// Under `/config/brokers/<default>` or `/config/brokers/<id>`.
    ClusterWide,
}

#[derive(Debug, Clone, Copy)]
pub struct BrokerConfigDef {
    pub def: ConfigDef,
    pub mode: DynamicMode,
}

const fn syn(name: &'static str) -> Synonym {
    Synonym { name, unit_ms: 1 }
}
const HOURS: i64 = 3_600_000;
const MINUTES: i64 = 60_000;
const LONG_MAX: &str = "9223372036854775807";

const fn def(
    name: &'static str,
    kind: ConfigType,
    default: Option<&'static str>,
    validator: Validator,
) -> ConfigDef {
    ConfigDef {
        name,
        kind,
        default,
        validator,
    }
}

const fn topic(
    name: &'static str,
    kind: ConfigType,
    default: Option<&'static str>,
    validator: Validator,
    synonyms: &'static [Synonym],
) -> TopicConfigDef {
    TopicConfigDef {
        def: def(name, kind, default, validator),
        synonyms,
    }
}

use ConfigType::{Boolean, Double, Int, List, Long, Password, Short, String as Str};
use Validator::{AtLeast, Between, DoubleBetween, OneOf};

pub const CLEANUP_POLICIES: &[&str] = &["compact", "delete"];
pub const TIMESTAMP_TYPES: &[&str] = &["CreateTime", "LogAppendTime"];
/// `BrokerCompressionType` names: `producer` keeps the producer's codec.
pub const COMPRESSION_TYPES: &[&str] =
    &["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"];

/// Every topic-level config of Kafka 3.9 (`LogConfig.CONFIG`), in name order.
pub const TOPIC_CONFIGS: &[TopicConfigDef] = &[
    topic(
        "cleanup.policy",
        List,
        Some("delete"),
        Validator::ListOf(CLEANUP_POLICIES),
        &[syn("log.cleanup.policy")],
    ),
    topic(
        "compression.gzip.level",
        Int,
        Some("-1"),
        Validator::GzipLevel,
        &[syn("compression.gzip.level")],
    ),
    topic(
        "compression.lz4.level",
        Int,
        Some("9"),
        Between(1, 17),
        &[syn("compression.lz4.level")],
    ),
    topic(
        "compression.type",
        Str,
        Some("producer"),
        OneOf(COMPRESSION_TYPES),
        &[syn("compression.type")],
    ),
    topic(
        "compression.zstd.level",
        Int,
        Some("3"),
        Between(-131_072, 22),
        &[syn("compression.zstd.level")],
    ),
    topic(
        "delete.retention.ms",
        Long,
        Some("86400000"),
        AtLeast(0),
        &[syn("log.cleaner.delete.retention.ms")],
    ),
    topic(
        "file.delete.delay.ms",
        Long,
        Some("60000"),
        AtLeast(0),
        &[syn("log.segment.delete.delay.ms")],
    ),
    topic(
        "flush.messages",
        Long,
        Some(LONG_MAX),
        AtLeast(1),
        &[syn("log.flush.interval.messages")],
    ),
    topic(
        "flush.ms",
        Long,
        Some(LONG_MAX),
        AtLeast(0),
        &[
            syn("log.flush.interval.ms"),
            syn("log.flush.scheduler.interval.ms"),
        ],
    ),
    topic(
        "follower.replication.throttled.replicas",
        List,
        Some(""),
        Validator::ThrottledReplicas,
        &[],
    ),
    topic(
        "index.interval.bytes",
        Int,
        Some("4096"),
        AtLeast(0),
        &[syn("log.index.interval.bytes")],
    ),
    topic(
        "leader.replication.throttled.replicas",
        List,
        Some(""),
        Validator::ThrottledReplicas,
        &[],
    ),
    topic(
        "local.retention.bytes",
        Long,
        Some("-2"),
        AtLeast(-2),
        &[syn("log.local.retention.bytes")],
    ),
    topic(
        "local.retention.ms",
        Long,
        Some("-2"),
        AtLeast(-2),
        &[syn("log.local.retention.ms")],
    ),
    topic(
        "max.compaction.lag.ms",
        Long,
        Some(LONG_MAX),
        AtLeast(1),
        &[syn("log.cleaner.max.compaction.lag.ms")],
    ),
    topic(
        "max.message.bytes",
        Int,
        Some("1048588"),
        AtLeast(0),
        &[syn("message.max.bytes")],
    ),
    topic(
        "message.downconversion.enable",
        Boolean,
        Some("true"),
        Validator::None,
        &[syn("log.message.downconversion.enable")],
    ),
    topic(
        "message.format.version",
        Str,
        Some("3.0-IV1"),
        Validator::MetadataVersion,
        &[syn("log.message.format.version")],
    ),
    topic(
        "message.timestamp.after.max.ms",
        Long,
        Some(LONG_MAX),
        AtLeast(0),
        &[syn("log.message.timestamp.after.max.ms")],
    ),
    topic(
        "message.timestamp.before.max.ms",
        Long,
        Some(LONG_MAX),
        AtLeast(0),
        &[syn("log.message.timestamp.before.max.ms")],
    ),
    topic(
        "message.timestamp.difference.max.ms",
        Long,
        Some(LONG_MAX),
        AtLeast(0),
        &[syn("log.message.timestamp.difference.max.ms")],
    ),
    topic(
        "message.timestamp.type",
        Str,
        Some("CreateTime"),
        OneOf(TIMESTAMP_TYPES),
        &[syn("log.message.timestamp.type")],
    ),
    topic(
        "min.cleanable.dirty.ratio",
        Double,
        Some("0.5"),
        DoubleBetween(0.0, 1.0),
        &[syn("log.cleaner.min.cleanable.ratio")],
    ),
    topic(
        "min.compaction.lag.ms",
        Long,
        Some("0"),
        AtLeast(0),
        &[syn("log.cleaner.min.compaction.lag.ms")],
    ),
    topic(
        "min.insync.replicas",
        Int,
        Some("1"),
        AtLeast(1),
        &[syn("min.insync.replicas")],
    ),
    topic(
        "preallocate",
        Boolean,
        Some("false"),
        Validator::None,
        &[syn("log.preallocate")],
    ),
    topic(
        "remote.log.copy.disable",
        Boolean,
        Some("false"),
        Validator::None,
        &[],
    ),
    topic(
        "remote.log.delete.on.disable",
        Boolean,
        Some("false"),
        Validator::None,
        &[],
    ),
    topic(
        "remote.storage.enable",
        Boolean,
        Some("false"),
        Validator::None,
        &[],
    ),
    topic(
        "retention.bytes",
        Long,
        Some("-1"),
        Validator::None,
        &[syn("log.retention.bytes")],
    ),
    topic(
        "retention.ms",
        Long,
        Some("604800000"),
        AtLeast(-1),
        &[
            syn("log.retention.ms"),
            Synonym {
                name: "log.retention.minutes",
                unit_ms: MINUTES,
            },
            Synonym {
                name: "log.retention.hours",
                unit_ms: HOURS,
            },
        ],
    ),
    topic(
        "segment.bytes",
        Int,
        Some("1073741824"),
        // LegacyRecord.RECORD_OVERHEAD_V0: a segment must hold at least one message header.
        AtLeast(14),
        &[syn("log.segment.bytes")],
    ),
    topic(
        "segment.index.bytes",
        Int,
        Some("10485760"),
        AtLeast(4),
        &[syn("log.index.size.max.bytes")],
    ),
    topic(
        "segment.jitter.ms",
        Long,
        Some("0"),
        AtLeast(0),
        &[
            syn("log.roll.jitter.ms"),
            Synonym {
                name: "log.roll.jitter.hours",
                unit_ms: HOURS,
            },
        ],
    ),
    topic(
        "segment.ms",
        Long,
        Some("604800000"),
        AtLeast(1),
        &[
            syn("log.roll.ms"),
            Synonym {
                name: "log.roll.hours",
                unit_ms: HOURS,
            },
        ],
    ),
    topic(
        "unclean.leader.election.enable",
        Boolean,
        Some("false"),
        Validator::None,
        &[syn("unclean.leader.election.enable")],
    ),
];

const fn broker(
    name: &'static str,
    kind: ConfigType,
    default: Option<&'static str>,
    validator: Validator,
    mode: DynamicMode,
) -> BrokerConfigDef {
    BrokerConfigDef {
        def: def(name, kind, default, validator),
        mode,
    }
}

use DynamicMode::{ClusterWide as Dyn, ReadOnly as Ro};

/// The broker keys DescribeConfigs lists: those odradek reads, every broker synonym of a topic
/// key, and the log cleaner's. `ClusterWide` marks what Kafka's `DynamicBrokerConfig` lets
/// AlterConfigs change and odradek applies at runtime: the topic defaults
/// (`DynamicLogConfig.ReconfigurableConfigs`) and the cleaner's settings. Kafka also changes
/// thread pools, listeners, TLS and connection limits at runtime; odradek refuses those
/// (read-only) because it cannot apply them without a restart.
pub const BROKER_CONFIGS: &[BrokerConfigDef] = &[
    broker("advertised.listeners", Str, None, Validator::None, Ro),
    broker("authorizer.class.name", Str, Some(""), Validator::None, Ro),
    broker(
        "auto.create.topics.enable",
        Boolean,
        Some("true"),
        Validator::None,
        Ro,
    ),
    broker(
        "auto.leader.rebalance.enable",
        Boolean,
        Some("true"),
        Validator::None,
        Ro,
    ),
    broker("broker.id", Int, Some("-1"), Validator::None, Ro),
    broker(
        "broker.id.generation.enable",
        Boolean,
        Some("true"),
        Validator::None,
        Ro,
    ),
    broker("broker.rack", Str, None, Validator::None, Ro),
    broker(
        "inter.broker.protocol.version",
        Str,
        Some("3.9-IV0"),
        Validator::MetadataVersion,
        Ro,
    ),
    broker(
        "compression.gzip.level",
        Int,
        Some("-1"),
        Validator::GzipLevel,
        Dyn,
    ),
    broker("compression.lz4.level", Int, Some("9"), Between(1, 17), Dyn),
    broker(
        "compression.type",
        Str,
        Some("producer"),
        OneOf(COMPRESSION_TYPES),
        Dyn,
    ),
    broker(
        "compression.zstd.level",
        Int,
        Some("3"),
        Between(-131_072, 22),
        Dyn,
    ),
    broker(
        "connections.max.idle.ms",
        Long,
        Some("600000"),
        Validator::None,
        Ro,
    ),
    broker(
        "controlled.shutdown.enable",
        Boolean,
        Some("true"),
        Validator::None,
        Ro,
    ),
    broker(
        "controlled.shutdown.max.retries",
        Int,
        Some("3"),
        Validator::None,
        Ro,
    ),
    broker(
        "controlled.shutdown.retry.backoff.ms",
        Long,
        Some("5000"),
        Validator::None,
        Ro,
    ),
    broker(
        "controller.quota.window.num",
        Int,
        Some("11"),
        AtLeast(1),
        Ro,
    ),
    broker(
        "controller.quota.window.size.seconds",
        Int,
        Some("1"),
        AtLeast(1),
        Ro,
    ),
    broker(
        "controller.socket.timeout.ms",
        Int,
        Some("30000"),
        Validator::None,
        Ro,
    ),
    broker(
        "default.replication.factor",
        Int,
        Some("1"),
        Validator::None,
        Ro,
    ),
    broker(
        "delegation.token.expiry.check.interval.ms",
        Long,
        Some("3600000"),
        AtLeast(1),
        Ro,
    ),
    broker(
        "delegation.token.expiry.time.ms",
        Long,
        Some("86400000"),
        AtLeast(1),
        Ro,
    ),
    broker(
        "delegation.token.master.key",
        Password,
        None,
        Validator::None,
        Ro,
    ),
    broker(
        "delegation.token.max.lifetime.ms",
        Long,
        Some("604800000"),
        AtLeast(1),
        Ro,
    ),
    broker(
        "delegation.token.secret.key",
        Password,
        None,
        Validator::None,
        Ro,
    ),
    broker(
        "delete.topic.enable",
        Boolean,
        Some("true"),
        Validator::None,
        Ro,
    ),
    broker(
        "group.initial.rebalance.delay.ms",
        Int,
        Some("3000"),
        Validator::None,
        Ro,
    ),
    broker(
        "group.max.session.timeout.ms",
        Int,
        Some("1800000"),
        Validator::None,
        Ro,
    ),
    broker("group.max.size", Int, Some("2147483647"), AtLeast(1), Ro),
    broker(
        "group.min.session.timeout.ms",
        Int,
        Some("6000"),
        Validator::None,
        Ro,
    ),
    broker("inter.broker.listener.name", Str, None, Validator::None, Ro),
    broker(
        "leader.imbalance.check.interval.seconds",
        Long,
        Some("300"),
        AtLeast(1),
        Ro,
    ),
    broker(
        "leader.imbalance.per.broker.percentage",
        Int,
        Some("10"),
        Validator::None,
        Ro,
    ),
    broker(
        "listener.security.protocol.map",
        Str,
        Some("PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL"),
        Validator::None,
        Ro,
    ),
    broker(
        "listeners",
        Str,
        Some("PLAINTEXT://127.0.0.1:9092"),
        Validator::None,
        Ro,
    ),
    broker(
        "log.cleaner.backoff.ms",
        Long,
        Some("15000"),
        AtLeast(0),
        Dyn,
    ),
    broker(
        "log.cleaner.dedupe.buffer.size",
        Long,
        Some("134217728"),
        Validator::None,
        Dyn,
    ),
    broker(
        "log.cleaner.delete.retention.ms",
        Long,
        Some("86400000"),
        AtLeast(0),
        Dyn,
    ),
    broker(
        "log.cleaner.enable",
        Boolean,
        Some("true"),
        Validator::None,
        Ro,
    ),
    broker(
        "log.cleaner.io.buffer.load.factor",
        Double,
        Some("0.9"),
        Validator::None,
        Dyn,
    ),
    broker(
        "log.cleaner.io.buffer.size",
        Int,
        Some("524288"),
        AtLeast(0),
        Dyn,
    ),
    broker(
        "log.cleaner.io.max.bytes.per.second",
        Double,
        Some("1.7976931348623157E308"),
        Validator::None,
        Dyn,
    ),
    broker(
        "log.cleaner.max.compaction.lag.ms",
        Long,
        Some(LONG_MAX),
        AtLeast(1),
        Dyn,
    ),
    broker(
        "log.cleaner.min.cleanable.ratio",
        Double,
        Some("0.5"),
        DoubleBetween(0.0, 1.0),
        Dyn,
    ),
    broker(
        "log.cleaner.min.compaction.lag.ms",
        Long,
        Some("0"),
        AtLeast(0),
        Dyn,
    ),
    broker("log.cleaner.threads", Int, Some("1"), AtLeast(0), Dyn),
    broker(
        "log.cleanup.policy",
        List,
        Some("delete"),
        Validator::ListOf(CLEANUP_POLICIES),
        Dyn,
    ),
    broker("log.dir", Str, Some("/tmp/kafka-logs"), Validator::None, Ro),
    broker("log.dirs", Str, None, Validator::None, Ro),
    broker(
        "log.flush.interval.messages",
        Long,
        Some(LONG_MAX),
        AtLeast(1),
        Dyn,
    ),
    broker("log.flush.interval.ms", Long, None, Validator::None, Dyn),
    broker(
        "log.flush.offset.checkpoint.interval.ms",
        Int,
        Some("60000"),
        AtLeast(0),
        Ro,
    ),
    broker(
        "log.flush.scheduler.interval.ms",
        Long,
        Some(LONG_MAX),
        Validator::None,
        Ro,
    ),
    broker(
        "log.index.interval.bytes",
        Int,
        Some("4096"),
        AtLeast(0),
        Dyn,
    ),
    broker(
        "log.index.size.max.bytes",
        Int,
        Some("10485760"),
        AtLeast(4),
        Dyn,
    ),
    broker(
        "log.local.retention.bytes",
        Long,
        Some("-2"),
        AtLeast(-2),
        Dyn,
    ),
    broker("log.local.retention.ms", Long, Some("-2"), AtLeast(-2), Dyn),
    broker(
        "log.message.downconversion.enable",
        Boolean,
        Some("true"),
        Validator::None,
        Dyn,
    ),
    broker(
        "log.message.format.version",
        Str,
        Some("3.0-IV1"),
        Validator::MetadataVersion,
        Ro,
    ),
    broker(
        "log.message.timestamp.after.max.ms",
        Long,
        Some(LONG_MAX),
        AtLeast(0),
        Dyn,
    ),
    broker(
        "log.message.timestamp.before.max.ms",
        Long,
        Some(LONG_MAX),
        AtLeast(0),
        Dyn,
    ),
    broker(
        "log.message.timestamp.difference.max.ms",
        Long,
        Some(LONG_MAX),
        AtLeast(0),
        Dyn,
    ),
    broker(
        "log.message.timestamp.type",
        Str,
        Some("CreateTime"),
        OneOf(TIMESTAMP_TYPES),
        Dyn,
    ),
    broker(
        "log.preallocate",
        Boolean,
        Some("false"),
        Validator::None,
        Dyn,
    ),
    broker(
        "log.retention.bytes",
        Long,
        Some("-1"),
        Validator::None,
        Dyn,
    ),
    broker(
        "log.retention.check.interval.ms",
        Long,
        Some("300000"),
        AtLeast(1),
        Ro,
    ),
    broker("log.retention.hours", Int, Some("168"), Validator::None, Ro),
    broker("log.retention.minutes", Int, None, Validator::None, Ro),
    broker("log.retention.ms", Long, None, Validator::None, Dyn),
    broker("log.roll.hours", Int, Some("168"), AtLeast(1), Ro),
    broker("log.roll.jitter.hours", Int, Some("0"), AtLeast(0), Ro),
    broker("log.roll.jitter.ms", Long, None, Validator::None, Dyn),
    broker("log.roll.ms", Long, None, Validator::None, Dyn),
    broker(
        "log.segment.bytes",
        Int,
        Some("1073741824"),
        AtLeast(14),
        Dyn,
    ),
    broker(
        "log.segment.delete.delay.ms",
        Long,
        Some("60000"),
        AtLeast(0),
        Dyn,
    ),
    broker("max.connections", Int, Some("2147483647"), AtLeast(0), Ro),
    broker(
        "max.incremental.fetch.session.cache.slots",
        Int,
        Some("1000"),
        AtLeast(0),
        Ro,
    ),
    broker("message.max.bytes", Int, Some("1048588"), AtLeast(0), Dyn),
    broker("metrics.port", Int, Some("9404"), Validator::None, Ro),
    broker("min.insync.replicas", Int, Some("1"), AtLeast(1), Dyn),
    broker("num.partitions", Int, Some("1"), AtLeast(1), Ro),
    broker(
        "num.recovery.threads.per.data.dir",
        Int,
        Some("1"),
        AtLeast(1),
        Ro,
    ),
    broker(
        "offsets.retention.check.interval.ms",
        Long,
        Some("600000"),
        AtLeast(1),
        Ro,
    ),
    broker(
        "offsets.retention.minutes",
        Int,
        Some("10080"),
        AtLeast(1),
        Ro,
    ),
    broker(
        "offsets.topic.num.partitions",
        Int,
        Some("50"),
        AtLeast(1),
        Ro,
    ),
    broker(
        "offsets.topic.replication.factor",
        Short,
        Some("3"),
        AtLeast(1),
        Ro,
    ),
    broker(
        "offsets.topic.segment.bytes",
        Int,
        Some("104857600"),
        AtLeast(1),
        Ro,
    ),
    broker("queued.max.requests", Int, Some("500"), AtLeast(1), Ro),
    broker("quota.window.num", Int, Some("11"), AtLeast(1), Ro),
    broker("quota.window.size.seconds", Int, Some("1"), AtLeast(1), Ro),
    broker(
        "replica.fetch.backoff.ms",
        Int,
        Some("1000"),
        AtLeast(0),
        Ro,
    ),
    broker(
        "replica.fetch.max.bytes",
        Int,
        Some("1048576"),
        AtLeast(0),
        Ro,
    ),
    broker(
        "replica.fetch.min.bytes",
        Int,
        Some("1"),
        Validator::None,
        Ro,
    ),
    broker(
        "replica.fetch.response.max.bytes",
        Int,
        Some("10485760"),
        AtLeast(0),
        Ro,
    ),
    broker(
        "replica.fetch.wait.max.ms",
        Int,
        Some("500"),
        Validator::None,
        Ro,
    ),
    broker(
        "replica.high.watermark.checkpoint.interval.ms",
        Long,
        Some("5000"),
        AtLeast(1),
        Ro,
    ),
    broker(
        "replica.lag.time.max.ms",
        Long,
        Some("30000"),
        Validator::None,
        Ro,
    ),
    broker(
        "replica.selector.class",
        ConfigType::Class,
        None,
        Validator::None,
        Ro,
    ),
    broker(
        "request.timeout.ms",
        Int,
        Some("30000"),
        Validator::None,
        Ro,
    ),
    broker("reserved.broker.max.id", Int, Some("1000"), AtLeast(0), Ro),
    broker(
        "security.inter.broker.protocol",
        Str,
        Some("PLAINTEXT"),
        Validator::None,
        Ro,
    ),
    broker(
        "socket.request.max.bytes",
        Int,
        Some("104857600"),
        AtLeast(1),
        Ro,
    ),
    broker(
        "transaction.abort.timed.out.transaction.cleanup.interval.ms",
        Int,
        Some("10000"),
        AtLeast(1),
        Ro,
    ),
    broker(
        "transaction.max.timeout.ms",
        Int,
        Some("900000"),
        AtLeast(1),
        Ro,
    ),
    broker(
        "transaction.remove.expired.transaction.cleanup.interval.ms",
        Int,
        Some("3600000"),
        AtLeast(1),
        Ro,
    ),
    broker(
        "transaction.state.log.min.isr",
        Int,
        Some("2"),
        AtLeast(1),
        Ro,
    ),
    broker(
        "transaction.state.log.num.partitions",
        Int,
        Some("50"),
        AtLeast(1),
        Ro,
    ),
    broker(
        "transaction.state.log.replication.factor",
        Short,
        Some("3"),
        AtLeast(1),
        Ro,
    ),
    broker(
        "transaction.state.log.segment.bytes",
        Int,
        Some("104857600"),
        AtLeast(1),
        Ro,
    ),
    broker(
        "transactional.id.expiration.ms",
        Int,
        Some("604800000"),
        AtLeast(1),
        Ro,
    ),
    broker(
        "unclean.leader.election.enable",
        Boolean,
        Some("false"),
        Validator::None,
        Dyn,
    ),
    broker("zookeeper.connect", Str, None, Validator::None, Ro),
    broker(
        "zookeeper.connection.timeout.ms",
        Int,
        None,
        Validator::None,
        Ro,
    ),
    broker(
        "zookeeper.session.timeout.ms",
        Int,
        Some("18000"),
        Validator::None,
        Ro,
    ),
];

/// Keys the broker reads that Kafka 3.9's `KafkaConfig` does not define: the ACL authorizer's
/// own settings, Kafka 2.4's keys removed in 3.0 (the single listener's, the static quotas),
/// and odradek's own keys (the metrics port, a test-only switch).
/// Their defaults live here like every other's; DescribeConfigs lists them only when set, as
/// Kafka lists the originals it has no definition for.
pub const OTHER_BROKER_CONFIGS: &[BrokerConfigDef] = &[
    broker("advertised.host.name", Str, None, Validator::None, Ro),
    broker("advertised.port", Int, None, Validator::None, Ro),
    broker(
        "allow.everyone.if.no.acl.found",
        Boolean,
        Some("false"),
        Validator::None,
        Ro,
    ),
    broker("authorizer.zookeeper.url", Str, None, Validator::None, Ro),
    broker("host.name", Str, Some(""), Validator::None, Ro),
    broker("metrics.port", Int, Some("9404"), Validator::None, Ro),
    // For tests only: a broker that advertises no more than its IBP sends, standing in for an
    // older Kafka broker.
    broker(
        "odradek.test.advertise.ibp.versions",
        Boolean,
        Some("false"),
        Validator::None,
        Ro,
    ),
    broker("port", Int, Some("9092"), Validator::None, Ro),
    broker(
        "quota.consumer.default",
        Long,
        Some(LONG_MAX),
        Validator::None,
        Ro,
    ),
    broker(
        "quota.producer.default",
        Long,
        Some(LONG_MAX),
        Validator::None,
        Ro,
    ),
    broker("super.users", Str, None, Validator::None, Ro),
];

pub fn topic_config(name: &str) -> Option<&'static TopicConfigDef> {
    TOPIC_CONFIGS.iter().find(|t| t.def.name == name)
}

pub fn is_topic_config(name: &str) -> bool {
    topic_config(name).is_some()
}

pub fn broker_config(name: &str) -> Option<&'static BrokerConfigDef> {
    BROKER_CONFIGS.iter().find(|b| b.def.name == name)
}

/// The default of a broker key the broker reads, from [`BROKER_CONFIGS`] or
/// [`OTHER_BROKER_CONFIGS`]: the one place broker defaults are written. `None` for a key
/// without a row or whose default is Java's null.
pub fn broker_default(name: &str) -> Option<&'static str> {
    BROKER_CONFIGS
        .iter()
        .chain(OTHER_BROKER_CONFIGS)
        .find(|b| b.def.name == name)
        .and_then(|b| b.def.default)
}

/// Whether the broker has a definition of `name` in either table.
pub fn is_defined_broker_key(name: &str) -> bool {
    BROKER_CONFIGS
        .iter()
        .chain(OTHER_BROKER_CONFIGS)
        .any(|b| b.def.name == name)
}

/// Kafka's broker keys of type PASSWORD, which DescribeConfigs reports as sensitive, without
/// their value (Kafka's `KafkaConfig.maybeSensitive`): the delegation token secret would let
/// anyone forge tokens, the others are passwords and private keys.
const PASSWORD_KEYS: &[&str] = &[
    "delegation.token.secret.key",
    "delegation.token.master.key",
    "password.encoder.secret",
    "password.encoder.old.secret",
    "sasl.jaas.config",
    "ssl.key.password",
    "ssl.keystore.password",
    "ssl.keystore.key",
    "ssl.keystore.certificate.chain",
    "ssl.truststore.password",
    "ssl.truststore.certificates",
    "zookeeper.ssl.keystore.password",
    "zookeeper.ssl.truststore.password",
];

/// Whether a broker key holds a secret, also under a listener prefix
/// (`listener.name.<listener>.[<mechanism>.]sasl.jaas.config`).
pub fn is_sensitive(name: &str) -> bool {
    PASSWORD_KEYS.iter().any(|k| {
        name == *k
            || name
                .strip_suffix(k)
                .is_some_and(|p| p.starts_with("listener.name.") && p.ends_with('.'))
    })
}

/// The topic key a broker key is the first synonym of (`log.retention.ms` → `retention.ms`).
pub fn topic_config_for_broker_key(broker_key: &str) -> Option<&'static TopicConfigDef> {
    TOPIC_CONFIGS
        .iter()
        .find(|t| t.synonyms.iter().any(|s| s.name == broker_key))
}

/// The broker keys that stand for the same setting, highest precedence first
/// (`DynamicBrokerConfig.brokerConfigSynonyms`): `log.retention.ms` has `.minutes` and
/// `.hours`, `log.roll.ms` has `.hours`, `log.flush.interval.ms` falls back to the scheduler's
/// interval. Every other key is its own only synonym.
pub fn broker_synonyms(name: &str) -> Vec<&str> {
    match name {
        "log.roll.ms" | "log.roll.hours" => vec!["log.roll.ms", "log.roll.hours"],
        "log.roll.jitter.ms" | "log.roll.jitter.hours" => {
            vec!["log.roll.jitter.ms", "log.roll.jitter.hours"]
        }
        "log.flush.interval.ms" => vec!["log.flush.interval.ms", "log.flush.scheduler.interval.ms"],
        "log.retention.ms" | "log.retention.minutes" | "log.retention.hours" => vec![
            "log.retention.ms",
            "log.retention.minutes",
            "log.retention.hours",
        ],
        other => vec![other],
    }
}

/// Checks `raw` against `def` and returns it as Kafka prints the parsed value
/// (`ConfigDef.convertToString`). The error is the reason, for a `ConfigError`.
pub fn canonical(def: &ConfigDef, raw: &str) -> Result<String, String> {
    let v = raw.trim();
    let not = |what: &str| format!("Expected value to be {what}, but it was {v:?}");
    let value = match def.kind {
        ConfigType::Boolean => {
            if v.eq_ignore_ascii_case("true") {
                "true".to_string()
            } else if v.eq_ignore_ascii_case("false") {
                "false".to_string()
            } else {
                return Err(not("either true or false"));
            }
        }
        ConfigType::Int => {
            let n: i32 = v.parse().map_err(|_| not("a 32-bit integer"))?;
            check_number(def, n as i64)?;
            n.to_string()
        }
        ConfigType::Short => {
            let n: i16 = v.parse().map_err(|_| not("a 16-bit integer"))?;
            check_number(def, n as i64)?;
            n.to_string()
        }
        ConfigType::Long => {
            let n: i64 = v.parse().map_err(|_| not("a 64-bit integer"))?;
            check_number(def, n)?;
            n.to_string()
        }
        ConfigType::Double => {
            let d: f64 = v
                .parse()
                .ok()
                .filter(|d: &f64| !d.is_nan())
                .ok_or_else(|| not("a number"))?;
            if let Validator::DoubleBetween(lo, hi) = def.validator
                && !(lo..=hi).contains(&d)
            {
                return Err(format!(
                    "Value must be no less than {} and no more than {}",
                    java_double(lo),
                    java_double(hi)
                ));
            }
            java_double(d)
        }
        ConfigType::List => {
            let items: Vec<&str> = if v.is_empty() {
                Vec::new()
            } else {
                v.split(',').map(str::trim).collect()
            };
            match def.validator {
                Validator::ListOf(valid) => {
                    if let Some(bad) = items.iter().find(|i| !valid.contains(i)) {
                        return Err(format!(
                            "Invalid value {bad} for configuration {}: String must be one of: {}",
                            def.name,
                            valid.join(", ")
                        ));
                    }
                }
                Validator::ThrottledReplicas => check_throttled_replicas(&items)?,
                _ => {}
            }
            items.join(",")
        }
        ConfigType::String | ConfigType::Class | ConfigType::Password => {
            match def.validator {
                OneOf(valid) if !valid.contains(&v) => {
                    return Err(format!("String must be one of: {}", valid.join(", ")));
                }
                Validator::MetadataVersion if !is_metadata_version(v) => {
                    return Err(format!("{v} is not a valid version"));
                }
                _ => {}
            }
            v.to_string()
        }
    };
    Ok(value)
}

fn check_number(def: &ConfigDef, n: i64) -> Result<(), String> {
    match def.validator {
        AtLeast(min) if n < min => Err(format!("Value must be at least {min}")),
        Between(lo, hi) if !(lo..=hi).contains(&n) => Err(format!(
            "Value must be no less than {lo} and no more than {hi}"
        )),
        Validator::GzipLevel if n != -1 && !(1..=9).contains(&n) => {
            Err("Value must be -1 or between 1 and 9".into())
        }
        _ => Ok(()),
    }
}

fn check_throttled_replicas(items: &[&str]) -> Result<(), String> {
    if items.len() == 1 && items[0] == "*" {
        return Ok(());
    }
    let pair = |s: &str| {
        s.split_once(':').is_some_and(|(p, b)| {
            p.trim().parse::<u32>().is_ok() && b.trim().parse::<u32>().is_ok()
        })
    };
    if items.iter().all(|i| pair(i)) {
        Ok(())
    } else {
        Err("Value must be a list of the form [PartitionId]:[BrokerId],[PartitionId]:[BrokerId],... or the wildcard '*'".into())
    }
}

/// `2.4`, `2.4.1`, `3.0-IV1`: what `MetadataVersion.fromVersionString` accepts, by shape.
fn is_metadata_version(v: &str) -> bool {
    let (release, iv) = match v.split_once("-IV") {
        Some((r, iv)) => (r, Some(iv)),
        None => (v, None),
    };
    let parts: Vec<&str> = release.split('.').collect();
    (2..=3).contains(&parts.len())
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        && iv.is_none_or(|iv| !iv.is_empty() && iv.bytes().all(|b| b.is_ascii_digit()))
}

/// A double as Java's `Double.toString` prints it: `0.5`, `1.0`, `1.0E-4`, `1.7976931348623157E308`.
pub fn java_double(d: f64) -> String {
    if d == 0.0 {
        return if d.is_sign_negative() { "-0.0" } else { "0.0" }.to_string();
    }
    if d.is_infinite() {
        return if d > 0.0 { "Infinity" } else { "-Infinity" }.to_string();
    }
    let magnitude = d.abs();
    if (1e-3..1e7).contains(&magnitude) {
        let s = format!("{d}");
        if s.contains('.') { s } else { format!("{s}.0") }
    } else {
        let s = format!("{d:e}");
        let (mantissa, exponent) = s.split_once('e').unwrap_or((&s, "0"));
        let mantissa = if mantissa.contains('.') {
            mantissa.to_string()
        } else {
            format!("{mantissa}.0")
        };
        format!("{mantissa}E{exponent}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_sensitive_also_under_listener_prefixes() {
        for key in [
            "delegation.token.secret.key",
            "delegation.token.master.key",
            "sasl.jaas.config",
            "listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config",
            "listener.name.ssl.ssl.keystore.password",
        ] {
            assert!(is_sensitive(key), "{key}");
        }
        for key in [
            "delegation.token.max.lifetime.ms",
            "ssl.keystore.location",
            "listeners",
            "xsasl.jaas.config",
            "listener.name.sasl.jaas.configx",
        ] {
            assert!(!is_sensitive(key), "{key}");
        }
    }

    #[test]
    fn values_print_as_kafka_prints_them() {
        let ratio = &topic_config("min.cleanable.dirty.ratio").unwrap().def;
        assert_eq!(canonical(ratio, " 0.5 ").unwrap(), "0.5");
        assert_eq!(canonical(ratio, "1").unwrap(), "1.0");
        assert_eq!(canonical(ratio, "0.0001").unwrap(), "1.0E-4");
        assert!(canonical(ratio, "1.5").is_err());
        assert!(canonical(ratio, "NaN").is_err());
        assert_eq!(java_double(f64::MAX), "1.7976931348623157E308");
        let policy = &topic_config("cleanup.policy").unwrap().def;
        assert_eq!(
            canonical(policy, "compact , delete").unwrap(),
            "compact,delete"
        );
        assert_eq!(canonical(policy, "").unwrap(), "");
        assert!(canonical(policy, "compact,shred").is_err());
        let flag = &topic_config("preallocate").unwrap().def;
        assert_eq!(canonical(flag, "TRUE").unwrap(), "true");
        assert!(canonical(flag, "yes").is_err());
        let segment = &topic_config("segment.bytes").unwrap().def;
        assert!(canonical(segment, "13").is_err());
        assert!(canonical(segment, "2147483648").is_err(), "an int");
        assert_eq!(canonical(segment, "+16384").unwrap(), "16384");
        let gzip = &topic_config("compression.gzip.level").unwrap().def;
        assert!(canonical(gzip, "-1").is_ok() && canonical(gzip, "9").is_ok());
        assert!(canonical(gzip, "0").is_err() && canonical(gzip, "10").is_err());
        let throttled = &topic_config("leader.replication.throttled.replicas")
            .unwrap()
            .def;
        assert_eq!(canonical(throttled, "0:1, 1:2").unwrap(), "0:1,1:2");
        assert_eq!(canonical(throttled, "*").unwrap(), "*");
        assert!(canonical(throttled, "0-1").is_err());
        let format = &topic_config("message.format.version").unwrap().def;
        assert!(canonical(format, "2.4").is_ok() && canonical(format, "3.0-IV1").is_ok());
        assert!(canonical(format, "latest").is_err());
    }

    #[test]
    fn every_topic_key_with_a_broker_synonym_is_a_broker_key() {
        for t in TOPIC_CONFIGS {
            for s in t.synonyms {
                assert!(
                    broker_config(s.name).is_some(),
                    "{} has no broker definition",
                    s.name
                );
            }
        }
        let mut names: Vec<&str> = TOPIC_CONFIGS.iter().map(|t| t.def.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), 36, "Kafka 3.9 has 36 topic configs");
    }
}
