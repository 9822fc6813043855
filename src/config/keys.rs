//! Which broker keys are known: the ones we read, and Kafka's that we accept without acting
//! on them. Anything else is reported as unknown at start-up, as Kafka warns about it.

use super::defs;

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
    "delegation.token.secret.key",
    "delegation.token.master.key",
    "delegation.token.max.lifetime.ms",
    "delegation.token.expiry.time.ms",
    "delegation.token.expiry.check.interval.ms",
    "broker.id.generation.enable",
    "quota.producer.default",
    "quota.consumer.default",
    "quota.window.num",
    "quota.window.size.seconds",
    "controller.quota.window.num",
    "controller.quota.window.size.seconds",
    "broker.rack",
    "replica.selector.class",
    "inter.broker.protocol.version",
    "odradek.test.advertise.ibp.versions",
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
    "num.recovery.threads.per.data.dir",
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
    "authorizer.class.name",
    "super.users",
    "allow.everyone.if.no.acl.found",
    "authorizer.zookeeper.url",
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

pub(super) fn is_read(key: &str) -> bool {
    BROKER_KEYS.contains(&key)
        || defs::TOPIC_CONFIGS
            .iter()
            .any(|t| t.synonyms.iter().any(|s| s.name == key))
}

pub(super) fn is_known(key: &str) -> bool {
    is_read(key)
        || KAFKA_KEYS_IGNORED.contains(&key)
        || KAFKA_PREFIXES_IGNORED.iter().any(|p| key.starts_with(p))
}
