//! Configuration with Kafka's key names and defaults. Topic-level settings live in [`LogConfig`];
//! a broker's `log.*` keys give a topic's defaults, and a topic's own overrides win. The broker's
//! own settings come from a `server.properties` file and `--override key=value` arguments and
//! live in [`BrokerConfig`].

//!
//! The files follow Kafka's seams: `properties` reads `server.properties` and `--override`
//! into typed values, `broker` builds [`BrokerConfig`] from them (`keys` says which keys are
//! known), `listeners` holds the listener settings, `security` each listener's TLS and SASL settings, `topic` the topic-level [`LogConfig`];
//! `defs` is the definition table they all share and `dynamic` the configs changed at runtime.

mod broker;
pub mod defs;
pub mod dynamic;
mod keys;
mod listeners;
pub mod properties;
pub mod security;
mod topic;

pub use broker::{BrokerConfig, CleanerConfig, ReplicaSelector};
pub use listeners::Listener;
pub use topic::{LogConfig, TopicCompression};

#[derive(Debug, thiserror::Error)]
#[error("invalid value {value:?} for configuration {key}: {reason}")]
pub struct ConfigError {
    pub key: String,
    pub value: String,
    pub reason: String,
}
