//! Configuration with Kafka's key names and defaults. Topic-level settings live in [`LogConfig`];
//! a broker's `log.*` keys give a topic's defaults, and a topic's own overrides win.

use std::collections::BTreeMap;

#[derive(Debug, thiserror::Error)]
#[error("invalid value {value:?} for configuration {key}: {reason}")]
pub struct ConfigError {
    pub key: String,
    pub value: String,
    pub reason: String,
}

/// The settings a partition log honours, under the topic-level names Kafka uses.
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
    pub flush_interval_messages: u64,
    pub flush_interval_ms: i64,
    pub file_delete_delay_ms: i64,
    pub cleanup_delete: bool,
    pub cleanup_compact: bool,
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
            flush_interval_messages: i64::MAX as u64,
            flush_interval_ms: i64::MAX,
            file_delete_delay_ms: 60_000,
            cleanup_delete: true,
            cleanup_compact: false,
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
    /// The names a topic-level key is known by: (topic key, broker key giving its default).
    pub const KEYS: &'static [(&'static str, &'static str)] = &[
        ("segment.bytes", "log.segment.bytes"),
        ("segment.ms", "log.roll.ms"),
        ("segment.index.bytes", "log.index.size.max.bytes"),
        ("index.interval.bytes", "log.index.interval.bytes"),
        ("max.message.bytes", "message.max.bytes"),
        ("retention.ms", "log.retention.ms"),
        ("retention.bytes", "log.retention.bytes"),
        ("message.timestamp.type", "log.message.timestamp.type"),
        ("flush.messages", "log.flush.interval.messages"),
        ("flush.ms", "log.flush.interval.ms"),
        ("file.delete.delay.ms", "log.segment.delete.delay.ms"),
        ("cleanup.policy", "log.cleanup.policy"),
    ];

    /// Applies topic-level overrides (`segment.bytes=16384`, ...) on top of `self`.
    pub fn with_overrides(
        &self,
        overrides: &BTreeMap<String, String>,
    ) -> Result<LogConfig, ConfigError> {
        let mut c = self.clone();
        for (k, v) in overrides {
            c.set(k, v)?;
        }
        Ok(c)
    }

    /// Sets one topic-level key. Unknown keys are ignored here; the caller decides whether they
    /// deserve a warning.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), ConfigError> {
        match key {
            "segment.bytes" => self.segment_bytes = parse(key, value, Some(14u64))?,
            "segment.ms" => self.segment_ms = parse(key, value, Some(1i64))?,
            "segment.index.bytes" => self.segment_index_bytes = parse(key, value, Some(8usize))?,
            "index.interval.bytes" => self.index_interval_bytes = parse(key, value, Some(0usize))?,
            "max.message.bytes" => self.max_message_bytes = parse(key, value, Some(0usize))?,
            "retention.ms" => self.retention_ms = parse(key, value, Some(-1i64))?,
            "retention.bytes" => self.retention_bytes = parse(key, value, None)?,
            "flush.messages" => self.flush_interval_messages = parse(key, value, Some(1u64))?,
            "flush.ms" => self.flush_interval_ms = parse(key, value, Some(0i64))?,
            "file.delete.delay.ms" => self.file_delete_delay_ms = parse(key, value, Some(0i64))?,
            "message.timestamp.type" => {
                self.log_append_time = match value.trim() {
                    "CreateTime" => false,
                    "LogAppendTime" => true,
                    _ => {
                        return Err(ConfigError {
                            key: key.into(),
                            value: value.into(),
                            reason: "must be CreateTime or LogAppendTime".into(),
                        });
                    }
                }
            }
            "cleanup.policy" => {
                let (mut delete, mut compact) = (false, false);
                for p in value.split(',').map(str::trim) {
                    match p {
                        "delete" => delete = true,
                        "compact" => compact = true,
                        _ => {
                            return Err(ConfigError {
                                key: key.into(),
                                value: value.into(),
                                reason: "must be a list of delete and compact".into(),
                            });
                        }
                    }
                }
                self.cleanup_delete = delete;
                self.cleanup_compact = compact;
            }
            _ => {}
        }
        Ok(())
    }
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
}
