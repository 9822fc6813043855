//! The broker's own settings ([`BrokerConfig`]) and the log cleaner's ([`CleanerConfig`]),
//! built from the properties with Kafka's defaults and ranges.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::keys::is_known;
use super::listeners::Listener;
use super::properties::{Props, csv, invalid, parse};
use super::security::{self, DelegationTokenConfig, InterBrokerSecurity, ListenerSecurity};
use super::{ConfigError, LogConfig};
use crate::security::KafkaPrincipal;

const DEFAULT_LOG_DIR: &str = "/tmp/kafka-logs";

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
    /// `log.cleaner.*` at the defaults of the definition table.
    fn default() -> Self {
        match BrokerConfig::cleaner(&Props(&BTreeMap::new())) {
            Ok(config) => config,
            Err(e) => panic!("the broker definition table's defaults are invalid: {e}"),
        }
    }
}

/// The `authorizer.class.name` values that turn on ACL checks: Kafka's ZooKeeper-based
/// `AclAuthorizer` and its pre-2.4 name.
pub const ACL_AUTHORIZER_CLASSES: &[&str] = &[
    "kafka.security.authorizer.AclAuthorizer",
    "kafka.security.auth.SimpleAclAuthorizer",
];

/// `replica.selector.class` (KIP-392): which replica a consumer on Fetch v11+ is sent to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReplicaSelector {
    /// Unset: the leader answers, with no preferred read replica.
    #[default]
    None,
    /// `org.apache.kafka.common.replica.LeaderSelector`: always the leader.
    Leader,
    /// `org.apache.kafka.common.replica.RackAwareReplicaSelector`: a replica in the client's
    /// rack (`client.rack`) when there is one that can serve it.
    RackAware,
}

impl ReplicaSelector {
    /// The selector a class name stands for. Kafka loads the class by name; any other class
    /// would be code we cannot run, so start-up fails naming the key, as Kafka fails to load it.
    fn from_class(class: &str) -> Result<ReplicaSelector, ConfigError> {
        match class {
            "" => Ok(ReplicaSelector::None),
            "org.apache.kafka.common.replica.LeaderSelector" => Ok(ReplicaSelector::Leader),
            "org.apache.kafka.common.replica.RackAwareReplicaSelector" => {
                Ok(ReplicaSelector::RackAware)
            }
            other => Err(invalid(
                "replica.selector.class",
                other,
                "only org.apache.kafka.common.replica.LeaderSelector and \
                 org.apache.kafka.common.replica.RackAwareReplicaSelector are built in",
            )),
        }
    }
}

/// ACL checks as `AclAuthorizer` is configured.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AuthorizerConfig {
    /// `super.users`: `;`-separated principals that every check allows.
    pub super_users: Vec<KafkaPrincipal>,
    /// `allow.everyone.if.no.acl.found` (false): whether a resource without any ACL is open.
    pub allow_everyone_if_no_acl_found: bool,
}

/// The broker's `server.properties`, under Kafka's key names and with Kafka's defaults (ZooKeeper
/// mode, 2.4 – 3.9). Where we differ from Kafka the field says so.
#[derive(Debug, Clone, PartialEq)]
pub struct BrokerConfig {
    /// `broker.id`. -1 (the default) asks for an id generated from ZooKeeper's `/brokers/seqid`
    /// above `reserved.broker.max.id`, as Kafka does.
    pub broker_id: i32,
    /// `listeners`. Default `PLAINTEXT://127.0.0.1:9092`: Kafka's is `PLAINTEXT://:9092` (all
    /// interfaces).
    pub listeners: Vec<Listener>,
    /// `advertised.listeners`, defaulting to `listeners`. An empty host stands for the
    /// machine's host name, which the caller fills in when it registers the broker.
    pub advertised_listeners: Vec<Listener>,
    /// `inter.broker.listener.name`, else the listener named after
    /// `security.inter.broker.protocol` (default PLAINTEXT): where the controller, the replica
    /// fetchers and the transaction markers of other brokers reach this one.
    pub inter_broker_listener: String,
    /// Each listener's TLS and SASL settings, by listener name.
    pub listener_security: BTreeMap<String, ListenerSecurity>,
    /// How this broker connects to the others (the inter-broker listener's security).
    pub inter_broker_security: InterBrokerSecurity,
    /// `broker.rack` (unset): the rack (or zone) this broker runs in. Registered in
    /// `/brokers/ids/<id>`, shown to clients, and when every broker has one, new replicas are
    /// spread over racks.
    pub broker_rack: Option<String>,
    /// `replica.selector.class` (unset).
    pub replica_selector: ReplicaSelector,
    /// `inter.broker.protocol.version` (the newest, 3.9): the request versions this broker uses
    /// toward other brokers, and what its controller writes to ZooKeeper, as Kafka's IBP decides
    /// them; set to the oldest broker's release while a cluster is being upgraded.
    pub inter_broker_protocol_version: crate::client::Ibp,
    /// `odradek.test.advertise.ibp.versions` (false), for tests only and not a Kafka key: the
    /// broker advertises (and accepts) the inter-broker APIs only up to the versions its
    /// `inter.broker.protocol.version` sends, standing in for a Kafka broker of that release
    /// (a real Kafka 2.4 broker answers Fetch up to v11), which no Kafka IBP does by itself.
    pub advertise_ibp_versions: bool,
    /// `log.dirs` (comma-separated), else `log.dir`; default `/tmp/kafka-logs`.
    pub log_dirs: Vec<PathBuf>,
    /// `num.partitions` (1): partitions of an auto-created topic.
    pub num_partitions: i32,
    /// `num.recovery.threads.per.data.dir` (1): threads loading each log directory at start-up.
    pub num_recovery_threads_per_data_dir: usize,
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
    /// `authorizer.class.name` with `super.users` and `allow.everyone.if.no.acl.found`: None
    /// without an authorizer, when every request is allowed.
    pub authorizer: Option<AuthorizerConfig>,
    /// `metrics.port` (9404): our Prometheus `/metrics` endpoint; Kafka has no such key.
    pub metrics_port: u16,
    /// `quota.window.num`, `quota.window.size.seconds`, and Kafka 2.x's static
    /// `quota.producer.default` / `quota.consumer.default` (Long.MAX_VALUE: none).
    pub quotas: crate::quota::QuotaSettings,
    /// Topic defaults from the broker's `log.*` keys and the other broker synonyms of topic
    /// configs (see [`LogConfig::from_broker_properties`]).
    pub log: LogConfig,
    /// Every key and value given (file and overrides), as written: Kafka's "originals", which
    /// DescribeConfigs reports as STATIC_BROKER_CONFIG and dynamic configs are layered on.
    pub originals: BTreeMap<String, String>,
    /// `log.cleaner.*`: the threads that compact `cleanup.policy=compact` topics.
    pub log_cleaner: CleanerConfig,
    /// `delegation.token.*` (KIP-48).
    pub delegation_tokens: DelegationTokenConfig,
    /// Keys that are neither ours nor Kafka's, in key order. Kafka warns about each ("supplied
    /// but isn't a known config") and carries on; so should the caller.
    pub unknown_keys: Vec<String>,
}

impl Default for BrokerConfig {
    /// Every key at its default, as the definition table (`defs`) gives them.
    fn default() -> Self {
        match BrokerConfig::from_properties(&BTreeMap::new()) {
            Ok(config) => config,
            // Only a wrong row in the table gets here, which `defaults_come_from_the_table`
            // catches.
            Err(e) => panic!("the broker definition table's defaults are invalid: {e}"),
        }
    }
}

impl Default for crate::quota::QuotaSettings {
    /// The quota keys at their defaults, as the definition table (`defs`) gives them.
    fn default() -> Self {
        match BrokerConfig::quotas(&Props(&BTreeMap::new())) {
            Ok(settings) => settings,
            // Only a wrong row in the table gets here, which `quota_defaults_come_from_the_table`
            // catches.
            Err(e) => panic!("the quota keys' defaults in the definition table are invalid: {e}"),
        }
    }
}

impl BrokerConfig {
    /// Builds the configuration from `server.properties` entries (plus any overrides already
    /// merged in). Kafka's defaults fill the gaps; the first bad value stops with an error that
    /// names its key and value; keys nobody knows end up in `unknown_keys`.
    /// The client quota settings, with Kafka's bounds (`atLeast(1)` for the window settings;
    /// the static defaults are Java longs where Long.MAX_VALUE means none).
    fn quotas(p: &Props) -> Result<crate::quota::QuotaSettings, ConfigError> {
        let samples: i32 = p.num("quota.window.num", Some(1))?;
        let seconds: i32 = p.num("quota.window.size.seconds", Some(1))?;
        let static_default = |key: &str| -> Result<Option<f64>, ConfigError> {
            let v: i64 = p.num(key, None)?;
            Ok((v != i64::MAX).then_some(v as f64))
        };
        let controller_samples: i32 = p.num("controller.quota.window.num", Some(1))?;
        let controller_seconds: i32 = p.num("controller.quota.window.size.seconds", Some(1))?;
        Ok(crate::quota::QuotaSettings {
            window: crate::quota::rate::Window {
                samples: samples as usize,
                size_ms: seconds as u64 * 1000,
            },
            controller_window: crate::quota::rate::Window {
                samples: controller_samples as usize,
                size_ms: controller_seconds as u64 * 1000,
            },
            producer_default: static_default("quota.producer.default")?,
            consumer_default: static_default("quota.consumer.default")?,
        })
    }

    pub fn from_properties(props: &BTreeMap<String, String>) -> Result<BrokerConfig, ConfigError> {
        let p = Props(props);

        let id_generation = p.bool("broker.id.generation.enable")?;
        let reserved_max_id = p.num("reserved.broker.max.id", Some(0i32))?;
        let broker_id = p.num("broker.id", None)?;
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

        let ibp = p.get_or_default("inter.broker.protocol.version")?;
        let inter_broker_protocol_version = ibp
            .trim()
            .parse()
            .map_err(|e: String| invalid("inter.broker.protocol.version", ibp, e))?;

        let (listeners, advertised_listeners, inter_broker_listener) = Self::listeners(&p)?;
        let mut listener_security = BTreeMap::new();
        for l in &listeners {
            listener_security.insert(l.name.clone(), security::listener_security(p.0, l)?);
        }
        let inter_broker_security = match (
            listeners.iter().find(|l| l.name == inter_broker_listener),
            listener_security.get(&inter_broker_listener),
        ) {
            (Some(l), Some(s)) => security::inter_broker_security(p.0, l, s)?,
            // Advertised but not among listeners was refused above.
            _ => InterBrokerSecurity::default(),
        };

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
        let flush_scheduler_ms: i64 = p.num("log.flush.scheduler.interval.ms", Some(1))?;

        let log = LogConfig::from_broker_properties(props)?;

        // Kafka refuses a follower fetch wait at or above the lag limit: a follower parked that
        // long at an idle leader would be thrown out of the ISR.
        let replica_fetch_wait_max_ms: u64 = p.unsigned("replica.fetch.wait.max.ms", 0i32)?;
        let replica_lag_time_max_ms: u64 = p.unsigned("replica.lag.time.max.ms", 1i64)?;
        if replica_fetch_wait_max_ms >= replica_lag_time_max_ms {
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
            inter_broker_listener,
            listener_security,
            inter_broker_security,
            broker_rack: p.get("broker.rack").map(String::from),
            replica_selector: ReplicaSelector::from_class(
                p.get("replica.selector.class").unwrap_or_default(),
            )?,
            inter_broker_protocol_version,
            advertise_ibp_versions: p.bool("odradek.test.advertise.ibp.versions")?,
            log_dirs,
            num_partitions: p.num("num.partitions", Some(1))?,
            num_recovery_threads_per_data_dir: p
                .unsigned("num.recovery.threads.per.data.dir", 1i32)?,
            default_replication_factor: p.num("default.replication.factor", Some(1))?,
            auto_create_topics_enable: p.bool("auto.create.topics.enable")?,
            delete_topic_enable: p.bool("delete.topic.enable")?,
            // Kafka types these as int: anything past i32::MAX is an error there, so here too.
            message_max_bytes: p.unsigned("message.max.bytes", 0i32)?,
            socket_request_max_bytes: p.unsigned("socket.request.max.bytes", 1i32)?,
            max_connections: p.unsigned("max.connections", 0i32)?,
            // Negative means "never close idle connections" in Kafka.
            connections_max_idle_ms: u64::try_from(p.num::<i64>("connections.max.idle.ms", None)?)
                .unwrap_or(u64::MAX),
            queued_max_requests: p.unsigned("queued.max.requests", 1i32)?,
            offsets_topic_num_partitions: p.num("offsets.topic.num.partitions", Some(1))?,
            offsets_topic_replication_factor: p.num("offsets.topic.replication.factor", Some(1))?,
            offsets_topic_segment_bytes: p.unsigned("offsets.topic.segment.bytes", 1i32)?,
            transaction_state_log_num_partitions: p
                .num("transaction.state.log.num.partitions", Some(1))?,
            transaction_state_log_replication_factor: p
                .num("transaction.state.log.replication.factor", Some(1))?,
            transaction_state_log_min_isr: p.num("transaction.state.log.min.isr", Some(1))?,
            transaction_state_log_segment_bytes: p
                .unsigned("transaction.state.log.segment.bytes", 1i32)?,
            transaction_max_timeout_ms: p.num("transaction.max.timeout.ms", Some(1))?,
            transaction_abort_timed_out_transaction_cleanup_interval_ms: p.unsigned(
                "transaction.abort.timed.out.transaction.cleanup.interval.ms",
                1i32,
            )?,
            transactional_id_expiration_ms: p.unsigned("transactional.id.expiration.ms", 1i32)?,
            transaction_remove_expired_transaction_cleanup_interval_ms: p.unsigned(
                "transaction.remove.expired.transaction.cleanup.interval.ms",
                1i32,
            )?,
            group_initial_rebalance_delay_ms: p
                .unsigned("group.initial.rebalance.delay.ms", 0i32)?,
            group_min_session_timeout_ms: p.num("group.min.session.timeout.ms", Some(0))?,
            group_max_session_timeout_ms: p.num("group.max.session.timeout.ms", Some(0))?,
            // Kafka's ranges: atLeast(1) for all three.
            group_max_size: p.num("group.max.size", Some(1))?,
            offsets_retention_minutes: p.num("offsets.retention.minutes", Some(1))?,
            offsets_retention_check_interval_ms: p
                .unsigned("offsets.retention.check.interval.ms", 1i64)?,
            zookeeper_connect: p
                .get("zookeeper.connect")
                .filter(|v| !v.is_empty())
                .map(str::to_string),
            zookeeper_session_timeout_ms: p.unsigned("zookeeper.session.timeout.ms", 1i32)?,
            zookeeper_connection_timeout_ms,
            unclean_leader_election_enable: p.bool("unclean.leader.election.enable")?,
            controller_socket_timeout_ms: p.unsigned("controller.socket.timeout.ms", 1i32)?,
            request_timeout_ms: p.unsigned("request.timeout.ms", 1i32)?,
            auto_leader_rebalance_enable: p.bool("auto.leader.rebalance.enable")?,
            leader_imbalance_check_interval_seconds: p
                .unsigned("leader.imbalance.check.interval.seconds", 1i64)?,
            leader_imbalance_per_broker_percentage: p
                .unsigned("leader.imbalance.per.broker.percentage", 0i32)?,
            controlled_shutdown_enable: p.bool("controlled.shutdown.enable")?,
            controlled_shutdown_max_retries: p.unsigned("controlled.shutdown.max.retries", 0i32)?,
            controlled_shutdown_retry_backoff_ms: p
                .unsigned("controlled.shutdown.retry.backoff.ms", 0i64)?,
            log_retention_check_interval_ms: p.unsigned("log.retention.check.interval.ms", 1i64)?,
            // Positive, so the conversion cannot fail.
            log_flush_scheduler_interval_ms: u64::try_from(flush_scheduler_ms).unwrap_or(u64::MAX),
            log_flush_offset_checkpoint_interval_ms: p
                .unsigned("log.flush.offset.checkpoint.interval.ms", 1i32)?,
            replica_high_watermark_checkpoint_interval_ms: p
                .unsigned("replica.high.watermark.checkpoint.interval.ms", 1i64)?,
            replica_lag_time_max_ms,
            replica_fetch_wait_max_ms,
            replica_fetch_min_bytes: p.num("replica.fetch.min.bytes", Some(1))?,
            replica_fetch_max_bytes: p.num("replica.fetch.max.bytes", Some(0))?,
            replica_fetch_response_max_bytes: p.num("replica.fetch.response.max.bytes", Some(0))?,
            replica_fetch_backoff_ms: p.unsigned("replica.fetch.backoff.ms", 0i32)?,
            max_incremental_fetch_session_cache_slots: p
                .unsigned("max.incremental.fetch.session.cache.slots", 0i32)?,
            authorizer: Self::authorizer(&p)?,
            metrics_port: p.num("metrics.port", None)?,
            quotas: Self::quotas(&p)?,
            log,
            originals: props.clone(),
            log_cleaner: Self::cleaner(&p)?,
            delegation_tokens: Self::delegation_tokens(&p)?,
            unknown_keys: props.keys().filter(|k| !is_known(k)).cloned().collect(),
        })
    }

    /// The ACL authorizer's settings. Only Kafka's ZooKeeper authorizer (under either of its
    /// names) is built in; any other class would be code we cannot run, and starting without
    /// the checks it was meant to make would open access, so it stops start-up.
    fn authorizer(p: &Props<'_>) -> Result<Option<AuthorizerConfig>, ConfigError> {
        let class = p.get("authorizer.class.name").unwrap_or_default();
        if class.is_empty() {
            return Ok(None);
        }
        if !ACL_AUTHORIZER_CLASSES.contains(&class) {
            return Err(invalid(
                "authorizer.class.name",
                class,
                format!("only {} is supported", ACL_AUTHORIZER_CLASSES.join(" or ")),
            ));
        }
        // Kafka's authorizer may keep ACLs in another ZooKeeper; ours reads them from the
        // metadata store only, and reading the wrong tree could open access.
        if let Some(url) = p.get("authorizer.zookeeper.url")
            && Some(url) != p.get("zookeeper.connect")
        {
            return Err(invalid(
                "authorizer.zookeeper.url",
                url,
                "ACLs are kept where zookeeper.connect points; another ZooKeeper is not supported",
            ));
        }
        let mut super_users = Vec::new();
        let list = p.get("super.users").unwrap_or_default();
        for entry in list.split(';').map(str::trim).filter(|s| !s.is_empty()) {
            // `SecurityUtils.parseKafkaPrincipal`: the type is up to the first ':'.
            let Some((principal_type, name)) = entry.split_once(':') else {
                return Err(invalid(
                    "super.users",
                    list,
                    format!("{entry} is not a principal of the form Type:name"),
                ));
            };
            super_users.push(KafkaPrincipal {
                principal_type: principal_type.to_string(),
                name: name.to_string(),
            });
        }
        Ok(Some(AuthorizerConfig {
            super_users,
            allow_everyone_if_no_acl_found: p.bool("allow.everyone.if.no.acl.found")?,
        }))
    }

    /// `delegation.token.*`, with the ranges Kafka allows (each at least 1).
    fn delegation_tokens(p: &Props<'_>) -> Result<DelegationTokenConfig, ConfigError> {
        let secret_key = p
            .get("delegation.token.secret.key")
            .or_else(|| p.get("delegation.token.master.key"))
            .map(String::from);
        Ok(DelegationTokenConfig {
            secret_key,
            max_lifetime_ms: p.num("delegation.token.max.lifetime.ms", Some(1))?,
            expiry_time_ms: p.num("delegation.token.expiry.time.ms", Some(1))?,
            expiry_check_interval_ms: p
                .unsigned("delegation.token.expiry.check.interval.ms", 1i64)?,
        })
    }

    /// `log.cleaner.*` with the ranges Kafka's `CleanerConfig` allows.
    fn cleaner(p: &Props<'_>) -> Result<CleanerConfig, ConfigError> {
        let load_factor: f64 = p.num("log.cleaner.io.buffer.load.factor", None)?;
        if !(load_factor > 0.0 && load_factor <= 1.0) {
            return Err(invalid(
                "log.cleaner.io.buffer.load.factor",
                &load_factor.to_string(),
                "must be greater than 0 and at most 1",
            ));
        }
        let rate: f64 = p.num("log.cleaner.io.max.bytes.per.second", None)?;
        if rate.is_nan() || rate <= 0.0 {
            return Err(invalid(
                "log.cleaner.io.max.bytes.per.second",
                &rate.to_string(),
                "must be positive",
            ));
        }
        Ok(CleanerConfig {
            enable: p.bool("log.cleaner.enable")?,
            threads: p.unsigned("log.cleaner.threads", 0i32)?,
            dedupe_buffer_size: p.unsigned("log.cleaner.dedupe.buffer.size", 0i64)?,
            io_buffer_size: p.unsigned("log.cleaner.io.buffer.size", 0i32)?,
            dedupe_buffer_load_factor: load_factor,
            io_max_bytes_per_second: rate,
            backoff_ms: p.unsigned("log.cleaner.backoff.ms", 0i64)?,
        })
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::defs;

    fn config(pairs: &[(&str, &str)]) -> Result<BrokerConfig, ConfigError> {
        let props: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        BrokerConfig::from_properties(&props)
    }

    #[test]
    fn replica_selector_class_names_kafkas_selectors_and_refuses_others() {
        assert_eq!(config(&[]).unwrap().replica_selector, ReplicaSelector::None);
        let rack = "org.apache.kafka.common.replica.RackAwareReplicaSelector";
        let selected = config(&[("replica.selector.class", rack)]).unwrap();
        assert_eq!(selected.replica_selector, ReplicaSelector::RackAware);
        let leader = "org.apache.kafka.common.replica.LeaderSelector";
        let selected = config(&[("replica.selector.class", leader)]).unwrap();
        assert_eq!(selected.replica_selector, ReplicaSelector::Leader);
        let err = config(&[("replica.selector.class", "com.example.Nearest")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("replica.selector.class"), "{err}");
    }

    #[test]
    fn the_inter_broker_protocol_version_takes_kafkas_values_or_fails_start_up() {
        use crate::client::Ibp;
        assert_eq!(
            config(&[]).unwrap().inter_broker_protocol_version,
            Ibp::LATEST
        );
        for (value, is) in [
            ("2.4", "2.4-IV1"),
            (" 2.8 ", "2.8-IV1"),
            ("3.0-IV0", "3.0-IV0"),
        ] {
            let c = config(&[("inter.broker.protocol.version", value)]).unwrap();
            assert_eq!(c.inter_broker_protocol_version.to_string(), is);
            assert!(c.unknown_keys.is_empty(), "{:?}", c.unknown_keys);
        }
        for bad in ["2.9", "4.0", "latest"] {
            let e = config(&[("inter.broker.protocol.version", bad)])
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("inter.broker.protocol.version") && e.contains(bad),
                "{e}"
            );
        }
    }

    #[test]
    fn defaults_come_from_the_table() {
        let c = config(&[]).unwrap();
        let default = |key| defs::broker_default(key).unwrap();
        assert_eq!(
            c.replica_lag_time_max_ms.to_string(),
            default("replica.lag.time.max.ms")
        );
        assert_eq!(c.group_max_size.to_string(), default("group.max.size"));
        assert_eq!(
            c.transaction_state_log_replication_factor.to_string(),
            default("transaction.state.log.replication.factor")
        );
        assert_eq!(c.metrics_port.to_string(), default("metrics.port"));
        assert_eq!(c.log_cleaner, CleanerConfig::default());
        assert_eq!(
            c.log_cleaner.threads.to_string(),
            default("log.cleaner.threads")
        );
    }

    #[test]
    fn quota_defaults_come_from_the_table() {
        let q = crate::quota::QuotaSettings::default();
        let default = |key| defs::broker_default(key).unwrap();
        assert_eq!(q.window.samples.to_string(), default("quota.window.num"));
        assert_eq!(
            (q.window.size_ms / 1000).to_string(),
            default("quota.window.size.seconds")
        );
        assert_eq!(
            q.controller_window.samples.to_string(),
            default("controller.quota.window.num")
        );
        assert_eq!(
            (q.controller_window.size_ms / 1000).to_string(),
            default("controller.quota.window.size.seconds")
        );
        // Long.MAX_VALUE, Kafka's "no static quota".
        assert_eq!(default("quota.producer.default"), i64::MAX.to_string());
        assert_eq!(q.producer_default, None);
        assert_eq!(default("quota.consumer.default"), i64::MAX.to_string());
        assert_eq!(q.consumer_default, None);
        assert_eq!(config(&[]).unwrap().quotas, q);
    }

    #[test]
    fn the_authorizer_is_kafkas_or_start_up_fails_closed() {
        assert_eq!(config(&[]).unwrap().authorizer, None);
        assert_eq!(
            config(&[("authorizer.class.name", "")]).unwrap().authorizer,
            None
        );
        for class in ACL_AUTHORIZER_CLASSES {
            let c = config(&[
                ("authorizer.class.name", class),
                ("super.users", " User:admin ; User:CN=broker,O=acme;"),
                ("allow.everyone.if.no.acl.found", "true"),
            ])
            .unwrap();
            assert_eq!(
                c.authorizer,
                Some(AuthorizerConfig {
                    super_users: vec![
                        KafkaPrincipal::user("admin"),
                        KafkaPrincipal::user("CN=broker,O=acme")
                    ],
                    allow_everyone_if_no_acl_found: true,
                })
            );
            assert!(c.unknown_keys.is_empty(), "{:?}", c.unknown_keys);
        }
        let other = config(&[("authorizer.class.name", "com.example.MyAuthorizer")])
            .unwrap_err()
            .to_string();
        assert!(other.contains("authorizer.class.name"), "{other}");
        let untyped = config(&[
            ("authorizer.class.name", ACL_AUTHORIZER_CLASSES[0]),
            ("super.users", "admin"),
        ])
        .unwrap_err()
        .to_string();
        assert!(untyped.contains("super.users"), "{untyped}");
        let elsewhere = config(&[
            ("authorizer.class.name", ACL_AUTHORIZER_CLASSES[0]),
            ("zookeeper.connect", "127.0.0.1:2181"),
            ("authorizer.zookeeper.url", "10.0.0.1:2181"),
        ])
        .unwrap_err()
        .to_string();
        assert!(
            elsewhere.contains("authorizer.zookeeper.url"),
            "{elsewhere}"
        );
        assert!(
            config(&[
                ("authorizer.class.name", ACL_AUTHORIZER_CLASSES[0]),
                ("zookeeper.connect", "127.0.0.1:2181"),
                ("authorizer.zookeeper.url", "127.0.0.1:2181"),
            ])
            .is_ok()
        );
    }
}
