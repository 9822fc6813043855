//! Topic-level configuration: what a partition log honours ([`LogConfig`]), its defaults from
//! the broker's `log.*` keys, and a topic's own overrides on top. Separate from the broker's
//! settings because a topic's config changes at runtime and is applied per log.

use std::collections::BTreeMap;

use super::ConfigError;
use super::defs;
use super::properties::{Props, invalid, parse};

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
/// the tiered-storage ones) are validated there but not kept.
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
    /// `message.downconversion.enable`: whether consumers on Fetch v0-3 are served (the fetch
    /// path reads it; the log itself does not).
    pub message_downconversion_enable: bool,
}

impl Default for LogConfig {
    /// Every topic config at the default the definition table (`defs::TOPIC_CONFIGS`) gives it.
    fn default() -> Self {
        LogConfig::placeholder().with_table_defaults()
    }
}

impl LogConfig {
    /// A value for each field before the table's defaults are applied: none of these survive
    /// (`every_field_takes_its_default_from_the_table` checks it).
    fn placeholder() -> LogConfig {
        LogConfig {
            segment_bytes: 0,
            segment_ms: 0,
            segment_index_bytes: 0,
            index_interval_bytes: 0,
            max_message_bytes: 0,
            retention_ms: 0,
            retention_bytes: 0,
            log_append_time: false,
            timestamp_difference_max_ms: 0,
            timestamp_before_max_ms: 0,
            timestamp_after_max_ms: 0,
            flush_interval_messages: 0,
            flush_interval_ms: 0,
            file_delete_delay_ms: 0,
            cleanup_delete: false,
            cleanup_compact: false,
            delete_retention_ms: 0,
            min_compaction_lag_ms: 0,
            max_compaction_lag_ms: 0,
            min_cleanable_dirty_ratio: 0.0,
            compression: TopicCompression::Codec(0),
            gzip_level: 0,
            lz4_level: 0,
            zstd_level: 0,
            min_insync_replicas: 0,
            unclean_leader_election_enable: false,
            message_downconversion_enable: false,
        }
    }

    fn with_table_defaults(mut self) -> LogConfig {
        for t in defs::TOPIC_CONFIGS {
            if let Some(default) = t.def.default
                && let Err(e) = self.set(t.def.name, default)
            {
                // Only a wrong row in the table gets here, which the unit tests catch.
                panic!("the topic definition table's defaults are invalid: {e}");
            }
        }
        self
    }
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
            "message.downconversion.enable" => self.message_downconversion_enable = flag(),
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

const HOUR_MS: i64 = 3_600_000;
const WEEK_MS: i64 = 168 * HOUR_MS;

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

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

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

    #[test]
    fn every_field_takes_its_default_from_the_table() {
        // Started from opposite placeholders, the table's defaults must leave no trace of
        // either: every field is some row's default.
        let other = LogConfig {
            segment_bytes: u64::MAX,
            segment_ms: -7,
            segment_index_bytes: usize::MAX,
            index_interval_bytes: usize::MAX,
            max_message_bytes: usize::MAX,
            retention_ms: -7,
            retention_bytes: -7,
            log_append_time: true,
            timestamp_difference_max_ms: -7,
            timestamp_before_max_ms: -7,
            timestamp_after_max_ms: -7,
            flush_interval_messages: u64::MAX - 7,
            flush_interval_ms: -7,
            file_delete_delay_ms: -7,
            cleanup_delete: true,
            cleanup_compact: true,
            delete_retention_ms: -7,
            min_compaction_lag_ms: -7,
            max_compaction_lag_ms: -7,
            min_cleanable_dirty_ratio: 7.0,
            compression: TopicCompression::Codec(7),
            gzip_level: 7,
            lz4_level: 7,
            zstd_level: 7,
            min_insync_replicas: 7,
            unclean_leader_election_enable: true,
            message_downconversion_enable: true,
        };
        assert_eq!(other.with_table_defaults(), LogConfig::default());
        // And each row's default is what the built config holds: setting it again changes
        // nothing.
        for t in defs::TOPIC_CONFIGS {
            let Some(default) = t.def.default else {
                continue;
            };
            let mut c = LogConfig::default();
            c.set(t.def.name, default).unwrap();
            assert_eq!(c, LogConfig::default(), "{}", t.def.name);
        }
    }
}
