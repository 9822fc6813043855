//! Broker configuration in Kafka's layers (`DynamicBrokerConfig`), highest precedence first:
//! per-broker dynamic configs (`/config/brokers/<id>`), cluster-wide dynamic defaults
//! (`/config/brokers/<default>`), the static configuration (`server.properties` and overrides),
//! and Kafka's defaults. A topic's config is its own overrides on top of the topic defaults these
//! layers give. This module holds the layers and the rules for changing them; reading and
//! writing them in the metadata store is `replica::config_changes`.

use std::collections::BTreeMap;
use std::sync::RwLock;

use super::defs::{self, DynamicMode};
use super::{BrokerConfig, ConfigError, LogConfig};

/// Kafka's `ConfigSource` ids, as DescribeConfigs reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigSource {
    DynamicTopic = 1,
    DynamicBroker = 2,
    DynamicDefaultBroker = 3,
    StaticBroker = 4,
    Default = 5,
}

/// One entry of a DescribeConfigs synonym list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SynonymValue {
    pub name: String,
    pub value: Option<String>,
    pub source: ConfigSource,
}

/// Which dynamic layer a change is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BrokerLevel {
    /// `/config/brokers/<default>`: every broker of the cluster.
    ClusterDefault,
    /// `/config/brokers/<id>`: this broker only.
    ThisBroker,
}

#[derive(Debug)]
struct Layers {
    cluster_default: BTreeMap<String, String>,
    this_broker: BTreeMap<String, String>,
    log_defaults: LogConfig,
}

#[derive(Debug)]
pub struct DynamicBrokerConfig {
    broker_id: i32,
    originals: BTreeMap<String, String>,
    /// Kafka's defaults as strings; keys whose default is null are absent, as in Kafka's
    /// `staticDefaultConfigs`.
    kafka_defaults: BTreeMap<String, String>,
    layers: RwLock<Layers>,
}

fn error(key: &str, value: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        key: key.to_string(),
        value: value.to_string(),
        reason: reason.into(),
    }
}

impl DynamicBrokerConfig {
    pub fn new(config: &BrokerConfig) -> Self {
        DynamicBrokerConfig {
            broker_id: config.broker_id,
            originals: config.originals.clone(),
            kafka_defaults: defs::BROKER_CONFIGS
                .iter()
                .filter_map(|b| {
                    b.def
                        .default
                        .map(|d| (b.def.name.to_string(), d.to_string()))
                })
                .collect(),
            layers: RwLock::new(Layers {
                cluster_default: BTreeMap::new(),
                this_broker: BTreeMap::new(),
                log_defaults: config.log.clone(),
            }),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Layers> {
        self.layers.read().unwrap_or_else(|p| p.into_inner())
    }

    pub fn broker_id(&self) -> i32 {
        self.broker_id
    }

    /// The topic defaults with every layer applied: what a topic without overrides uses.
    pub fn log_defaults(&self) -> LogConfig {
        self.read().log_defaults.clone()
    }

    pub fn dynamic(&self, level: BrokerLevel) -> BTreeMap<String, String> {
        let l = self.read();
        match level {
            BrokerLevel::ClusterDefault => l.cluster_default.clone(),
            BrokerLevel::ThisBroker => l.this_broker.clone(),
        }
    }

    /// Kafka's `DynamicBrokerConfig.validate`: every key must be one the broker changes at
    /// runtime and its value must be valid, and the whole configuration with the change applied
    /// must still be valid. Keys Kafka does not know are custom configs and pass, as in Kafka.
    pub fn validate(
        &self,
        level: BrokerLevel,
        props: &BTreeMap<String, String>,
    ) -> Result<(), ConfigError> {
        let read_only: Vec<&str> = props
            .keys()
            .filter(|k| defs::broker_config(k).is_some_and(|b| b.mode == DynamicMode::ReadOnly))
            .map(String::as_str)
            .collect();
        if !read_only.is_empty() {
            return Err(error(
                read_only[0],
                &props[read_only[0]],
                format!(
                    "Cannot update these configs dynamically: Set({})",
                    read_only.join(", ")
                ),
            ));
        }
        for (k, v) in props {
            if let Some(b) = defs::broker_config(k) {
                defs::canonical(&b.def, v).map_err(|reason| error(k, v, reason))?;
            }
        }
        let l = self.read();
        let (default, broker) = match level {
            BrokerLevel::ClusterDefault => (props, &l.this_broker),
            BrokerLevel::ThisBroker => (&l.cluster_default, props),
        };
        LogConfig::from_broker_properties(&self.merged_with(default, broker))?;
        Ok(())
    }

    /// Replaces one dynamic layer with what the store holds (Kafka's `fromPersistentProps`):
    /// keys that may not be set dynamically or hold bad values are dropped with a warning, since
    /// a store written by another tool must not stop the broker. Returns the new topic defaults.
    pub fn set_dynamic(&self, level: BrokerLevel, props: BTreeMap<String, String>) -> LogConfig {
        let mut kept = BTreeMap::new();
        for (k, v) in props {
            match defs::broker_config(&k) {
                Some(b) if b.mode == DynamicMode::ReadOnly => {
                    tracing::warn!(key = %k, "a dynamic broker config sets a key that can only be set in server.properties; ignored");
                }
                Some(b) if defs::canonical(&b.def, &v).is_err() => {
                    tracing::warn!(key = %k, value = %v, "a dynamic broker config holds an invalid value; ignored");
                }
                _ => {
                    kept.insert(k, v);
                }
            }
        }
        let mut l = self.layers.write().unwrap_or_else(|p| p.into_inner());
        let previous = match level {
            BrokerLevel::ClusterDefault => std::mem::replace(&mut l.cluster_default, kept),
            BrokerLevel::ThisBroker => std::mem::replace(&mut l.this_broker, kept),
        };
        match LogConfig::from_broker_properties(
            &self.merged_with(&l.cluster_default, &l.this_broker),
        ) {
            Ok(log) => l.log_defaults = log,
            Err(e) => {
                tracing::warn!(error = %e, "dynamic broker configs give an invalid configuration; keeping the previous one");
                match level {
                    BrokerLevel::ClusterDefault => l.cluster_default = previous,
                    BrokerLevel::ThisBroker => l.this_broker = previous,
                }
            }
        }
        l.log_defaults.clone()
    }

    /// The static configuration with the dynamic layers on top, as Kafka's `overrideProps`
    /// merges them: a key set at a higher level removes its synonyms from below, so that
    /// a dynamic `log.retention.ms` beats a static `log.retention.hours`.
    fn merged_with(
        &self,
        cluster_default: &BTreeMap<String, String>,
        this_broker: &BTreeMap<String, String>,
    ) -> BTreeMap<String, String> {
        let mut merged = self.originals.clone();
        for layer in [cluster_default, this_broker] {
            for (k, v) in layer {
                for s in defs::broker_synonyms(k) {
                    merged.remove(s);
                }
                merged.insert(k.clone(), v.clone());
            }
        }
        merged
    }

    /// Every broker key's current value as the broker uses it.
    pub fn merged(&self) -> BTreeMap<String, String> {
        let l = self.read();
        self.merged_with(&l.cluster_default, &l.this_broker)
    }

    /// The value a broker key has now, as DescribeConfigs shows it: the merged value checked
    /// and printed in Kafka's form, else Kafka's default (`None` is Java's null).
    pub fn broker_value(&self, name: &str) -> Option<String> {
        match (self.merged().get(name), defs::broker_config(name)) {
            (Some(v), Some(b)) => {
                Some(defs::canonical(&b.def, v).unwrap_or_else(|_| v.trim().to_string()))
            }
            (Some(v), None) => Some(v.clone()),
            (None, b) => b.and_then(|b| b.def.default).map(str::to_string),
        }
    }

    /// The names a broker config is known by in each layer, highest precedence first
    /// (`ConfigHelper.configSynonyms`): dynamic per-broker, dynamic default, static, default,
    /// each in `broker_synonyms` order; entries before the first one named `name` itself are
    /// dropped, as Kafka drops them (so a static `log.retention.hours` is not listed under
    /// `log.retention.ms`).
    pub fn synonyms(&self, name: &str) -> Vec<SynonymValue> {
        let l = self.read();
        let names = defs::broker_synonyms(name);
        let mut out = Vec::new();
        for (map, source) in [
            (&l.this_broker, ConfigSource::DynamicBroker),
            (&l.cluster_default, ConfigSource::DynamicDefaultBroker),
            (&self.originals, ConfigSource::StaticBroker),
            (&self.kafka_defaults, ConfigSource::Default),
        ] {
            for n in &names {
                if let Some(v) = map.get(*n) {
                    out.push(SynonymValue {
                        name: n.to_string(),
                        value: Some(v.clone()),
                        source,
                    });
                }
            }
        }
        let first = out.iter().position(|s| s.name == name).unwrap_or(out.len());
        out.split_off(first)
    }

    /// What a topic key is worth for a topic with `overrides`, printed as Kafka prints it.
    pub fn topic_value(
        &self,
        t: &defs::TopicConfigDef,
        overrides: &BTreeMap<String, String>,
    ) -> Option<String> {
        if let Some(v) = overrides.get(t.def.name) {
            return Some(defs::canonical(&t.def, v).unwrap_or_else(|_| v.trim().to_string()));
        }
        let merged = self.merged();
        for s in t.synonyms {
            let Some(raw) = merged.get(s.name) else {
                continue;
            };
            if s.unit_ms == 1 {
                return Some(
                    defs::canonical(&t.def, raw).unwrap_or_else(|_| raw.trim().to_string()),
                );
            }
            let ms = raw.trim().parse::<i64>().ok()?.saturating_mul(s.unit_ms);
            // KafkaConfig turns any negative retention into -1 (keep forever).
            return Some(
                if t.def.name == "retention.ms" && ms < 0 {
                    -1
                } else {
                    ms
                }
                .to_string(),
            );
        }
        t.def.default.map(str::to_string)
    }

    /// The synonyms DescribeConfigs lists for a topic key: the topic's own override, then the
    /// broker synonyms of its broker key.
    pub fn topic_synonyms(
        &self,
        t: &defs::TopicConfigDef,
        overrides: &BTreeMap<String, String>,
    ) -> Vec<SynonymValue> {
        let mut out = Vec::new();
        if let Some(v) = overrides.get(t.def.name) {
            out.push(SynonymValue {
                name: t.def.name.to_string(),
                value: Some(defs::canonical(&t.def, v).unwrap_or_else(|_| v.trim().to_string())),
                source: ConfigSource::DynamicTopic,
            });
        }
        if let Some(key) = t.broker_key() {
            out.extend(self.synonyms(key));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(props: &[(&str, &str)]) -> DynamicBrokerConfig {
        let props: BTreeMap<String, String> = props
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        DynamicBrokerConfig::new(&BrokerConfig::from_properties(&props).unwrap())
    }

    fn map(entries: &[(&str, &str)]) -> BTreeMap<String, String> {
        entries
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn dynamic_layers_win_over_static_and_per_broker_over_default() {
        let c = config(&[("log.retention.hours", "1"), ("log.segment.bytes", "20000")]);
        assert_eq!(c.log_defaults().retention_ms, 3_600_000);
        let d = c.set_dynamic(
            BrokerLevel::ClusterDefault,
            map(&[("log.retention.ms", "5000")]),
        );
        assert_eq!(d.retention_ms, 5000, "a dynamic .ms beats a static .hours");
        assert_eq!(d.segment_bytes, 20000);
        let d = c.set_dynamic(
            BrokerLevel::ThisBroker,
            map(&[("log.retention.ms", "7000")]),
        );
        assert_eq!(d.retention_ms, 7000);
        let d = c.set_dynamic(BrokerLevel::ThisBroker, BTreeMap::new());
        assert_eq!(
            d.retention_ms, 5000,
            "removing the per-broker value uncovers the default"
        );
        let d = c.set_dynamic(BrokerLevel::ClusterDefault, BTreeMap::new());
        assert_eq!(d.retention_ms, 3_600_000);
    }

    #[test]
    fn read_only_and_bad_values_are_refused_and_dropped_from_the_store() {
        let c = config(&[]);
        let err = c
            .validate(
                BrokerLevel::ThisBroker,
                &map(&[("log.retention.hours", "1")]),
            )
            .unwrap_err();
        assert!(
            err.reason
                .contains("Cannot update these configs dynamically"),
            "{err}"
        );
        assert!(
            c.validate(BrokerLevel::ThisBroker, &map(&[("broker.id", "3")]))
                .is_err()
        );
        assert!(
            c.validate(
                BrokerLevel::ThisBroker,
                &map(&[("log.retention.ms", "soon")])
            )
            .is_err()
        );
        assert!(
            c.validate(
                BrokerLevel::ClusterDefault,
                &map(&[("log.retention.ms", "0")])
            )
            .is_err()
        );
        assert!(
            c.validate(BrokerLevel::ClusterDefault, &map(&[("my.plugin.key", "x")]))
                .is_ok()
        );
        let d = c.set_dynamic(
            BrokerLevel::ClusterDefault,
            map(&[
                ("log.retention.hours", "1"),
                ("log.segment.bytes", "x"),
                ("log.retention.bytes", "99"),
            ]),
        );
        assert_eq!(d.retention_ms, 7 * 24 * 3_600_000);
        assert_eq!(d.retention_bytes, 99);
        assert_eq!(
            c.dynamic(BrokerLevel::ClusterDefault),
            map(&[("log.retention.bytes", "99")])
        );
    }

    #[test]
    fn synonyms_follow_kafkas_order_and_drop_what_precedes_the_name() {
        let c = config(&[("log.retention.hours", "1")]);
        assert!(
            c.synonyms("log.retention.ms").is_empty(),
            "as Kafka: only .hours is set"
        );
        let retention = defs::topic_config("retention.ms").unwrap();
        assert_eq!(
            c.topic_value(retention, &BTreeMap::new()).as_deref(),
            Some("3600000")
        );
        c.set_dynamic(
            BrokerLevel::ClusterDefault,
            map(&[("log.retention.ms", "60000")]),
        );
        let s = c.synonyms("log.retention.ms");
        assert_eq!(s[0].source, ConfigSource::DynamicDefaultBroker);
        assert_eq!(s[0].value.as_deref(), Some("60000"));
        assert_eq!(s.last().unwrap().name, "log.retention.hours");
        assert_eq!(s.last().unwrap().source, ConfigSource::Default);
        let t = c.topic_synonyms(retention, &map(&[("retention.ms", "1000")]));
        assert_eq!(t[0].source, ConfigSource::DynamicTopic);
        assert_eq!(t[1].source, ConfigSource::DynamicDefaultBroker);
        let segment = defs::topic_config("segment.bytes").unwrap();
        let s = c.topic_synonyms(segment, &BTreeMap::new());
        assert_eq!(s.len(), 1);
        assert_eq!(
            (s[0].name.as_str(), s[0].source),
            ("log.segment.bytes", ConfigSource::Default)
        );
    }
}
