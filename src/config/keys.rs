//! Which broker keys are known: the ones defined in `defs` (which the broker reads), and
//! Kafka's that we accept without acting on them. Anything else is reported as unknown at
//! start-up, as Kafka warns about it.

use super::defs;

/// Kafka broker keys we accept without acting on them, so that a Kafka `server.properties`
/// works unchanged and without warnings. Some tune machinery we do not have (thread pools,
/// socket buffers, JMX); the rest belong to features not built yet, or built differently.
const KAFKA_KEYS_IGNORED: &[&str] = &[
    // Threads and buffers: the async runtime stands in for Kafka's pools; the OS sizes buffers.
    "num.network.threads",
    "num.io.threads",
    "background.threads",
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
    "principal.builder.class",
    "security.providers",
];

/// Whole families of Kafka keys for features we do not implement (TLS, SASL, per-listener
/// security settings, tiered storage). Listing every member would add nothing: none is read.
const KAFKA_PREFIXES_IGNORED: &[&str] = &[
    "ssl.",
    "sasl.",
    "listener.name.",
    "zookeeper.ssl.",
    "password.encoder.",
    "remote.log.",
];

/// Whether the broker has a definition of `key` (with its default) in `defs`: every key it
/// reads must (`Props::get` checks it in debug builds).
pub(super) fn is_read(key: &str) -> bool {
    defs::is_defined_broker_key(key)
        || defs::TOPIC_CONFIGS
            .iter()
            .any(|t| t.synonyms.iter().any(|s| s.name == key))
}

pub(super) fn is_known(key: &str) -> bool {
    is_read(key)
        || KAFKA_KEYS_IGNORED.contains(&key)
        || KAFKA_PREFIXES_IGNORED.iter().any(|p| key.starts_with(p))
}
