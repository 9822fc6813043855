//! Starting a broker: the order in which the modules come up (metadata store, identity, logs,
//! coordinators, controller, listeners) and what each needs from the ones before it. Separate
//! from shutdown, which undoes it in its own order.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::watch;

use crate::api::Api;
use crate::config::BrokerConfig;
use crate::config::dynamic::DynamicBrokerConfig;
use crate::controller::Controller;
use crate::group::GroupCoordinator;
use crate::log::LogManager;
use crate::log::manager::BrokerIdentity;
use crate::log::tasks::{TaskIntervals, run_periodic_tasks};
use crate::metadata::acls::AclManager;
use crate::metadata::delegation_tokens::TokenManager;
use crate::metadata::embedded::EmbeddedStore;
use crate::metadata::registration;
use crate::metadata::{MetadataCache, MetadataStore};
use crate::network::{self, Limits};
use crate::replica::ReplicaManager;
use crate::replica::config_changes::ConfigManager;
use crate::security::acl::Authorizer;
use crate::security::principal::PrincipalMapper;
use crate::security::sasl::ServerCredentials;
use crate::txn::TransactionCoordinator;
use crate::txn::producer_ids::ProducerIdManager;

use super::{Broker, StartError};

/// The TLS acceptor of each SSL and SASL_SSL listener, by listener name.
fn tls_contexts(
    config: &BrokerConfig,
) -> Result<std::collections::BTreeMap<String, network::Tls>, StartError> {
    let mut contexts = std::collections::BTreeMap::new();
    for (name, security) in &config.listener_security {
        let Some(settings) = &security.tls else {
            continue;
        };
        let bad = |e: String| StartError::Config(format!("listener {name}: {e}"));
        let server = settings.server_config().map_err(|e| bad(e.to_string()))?;
        let mapper = PrincipalMapper::parse(&settings.principal_mapping_rules)
            .map_err(|e| bad(format!("ssl.principal.mapping.rules: {e}")))?;
        contexts.insert(
            name.clone(),
            network::Tls {
                acceptor: tokio_rustls::TlsAcceptor::from(server),
                mapper,
            },
        );
    }
    // The broker's own client side, checked now rather than at its first connection.
    if let Some(settings) = &config.inter_broker_security.tls {
        settings
            .client_config()
            .map_err(|e| StartError::Config(format!("inter-broker TLS: {e}")))?;
    }
    Ok(contexts)
}

/// The address a listener binds: an empty host means every interface, as in Kafka.
fn bind_host(host: &str) -> &str {
    if host.is_empty() { "0.0.0.0" } else { host }
}

/// Binds (without listening) a listener's socket; returns it with the address it was asked for.
async fn bind(host: &str, port: u16) -> Result<(TcpSocket, String), StartError> {
    let host = bind_host(host);
    let addr = crate::client::address(host, port);
    let bind_error = |source| StartError::Bind {
        addr: addr.clone(),
        source,
    };
    let socket_addr = tokio::net::lookup_host(&addr)
        .await
        .map_err(bind_error)?
        .next()
        .ok_or_else(|| bind_error(std::io::Error::other("no address")))?;
    let socket = if socket_addr.is_ipv6() {
        TcpSocket::new_v6()
    } else {
        TcpSocket::new_v4()
    }
    .map_err(bind_error)?;
    socket.set_reuseaddr(true).map_err(bind_error)?;
    socket.bind(socket_addr).map_err(bind_error)?;
    Ok((socket, addr))
}

/// Raises the process's open-file limit to its hard limit and sizes the logs' descriptor budget
/// from it (see `log::descriptors`), saying how many partitions that allows. Called by the
/// broker binary before start-up; brokers started inside another program (tests) leave that
/// program's limit alone.
pub fn apply_open_file_limit() {
    match crate::log::descriptors::raise_open_file_limit() {
        Ok(limit) => {
            let budget = crate::log::descriptors::apply_open_file_limit(limit);
            tracing::info!(
                open_file_limit = limit,
                max_partitions = budget.max_logs,
                cold_segment_files = budget.cold_segments,
                reserved = budget.reserved,
                "open-file limit allows about {} partitions on this broker",
                budget.max_logs
            );
        }
        Err(e) => tracing::warn!(error = %e, "cannot read the open-file limit"),
    }
}

impl Broker {
    pub async fn start(config: BrokerConfig) -> Result<Broker, StartError> {
        let started = Instant::now();
        // Bind every listener now, so a taken port fails start-up before anything else happens
        // and port 0 is resolved for registration; listen only once the logs are loaded, so
        // that a client connecting early is refused rather than left waiting (as with Kafka).
        // Keystores and truststores are read first: one that cannot be used stops start-up
        // before anything is bound or written.
        let mut tls = tls_contexts(&config)?;
        let mut config = config;
        let mut sockets = Vec::with_capacity(config.listeners.len());
        for l in config.listeners.iter_mut() {
            let (socket, addr) = bind(&l.host, l.port).await?;
            let port = socket.local_addr().map(|a| a.port()).unwrap_or(l.port);
            // An advertised port of 0 (tests) means "whatever this listener was given".
            for a in config
                .advertised_listeners
                .iter_mut()
                .filter(|a| a.name == l.name && a.port == 0)
            {
                a.port = port;
            }
            l.port = port;
            sockets.push((l.clone(), socket, addr));
        }
        let config = Arc::new(config);
        let (first_listener, _, addr) = sockets
            .first()
            .ok_or_else(|| StartError::Config("listeners is empty".into()))?;
        let (host, port, addr) = (
            bind_host(&first_listener.host).to_string(),
            first_listener.port,
            addr.clone(),
        );

        let first_dir = config
            .log_dirs
            .first()
            .cloned()
            .ok_or_else(|| StartError::Config("log.dirs is empty".into()))?;
        let store = open_store(&config, &first_dir).await?;
        registration::create_top_level_paths(store.as_ref()).await?;
        let config = if config.broker_id < 0 {
            let mut c = (*config).clone();
            c.broker_id = generated_broker_id(store.as_ref(), &first_dir).await?;
            Arc::new(c)
        } else {
            config
        };
        // The cluster id comes first: data directories that belong to another cluster must
        // stop start-up before anything is written.
        let cluster_id = registration::cluster_id(store.as_ref()).await?;
        let identity = BrokerIdentity {
            broker_id: config.broker_id,
            cluster_id: Some(cluster_id.clone()),
        };
        let dirs = config.log_dirs.clone();
        let defaults = config.log.clone();
        let topic_defaults = defaults.clone();
        let cleaner_config = config.log_cleaner.clone();
        let recovery_threads = config.num_recovery_threads_per_data_dir;
        // Each log opens with its topic's stored config, as Kafka's LogManager does: until the
        // controller's LeaderAndIsr arrives, retention and compaction must already follow the
        // topic's own `cleanup.policy` and `retention.*`, not the broker defaults.
        let stored_configs = stored_topic_configs(store.as_ref(), &config.log).await;
        let logs = Arc::new(
            tokio::task::spawn_blocking(move || {
                let m = LogManager::open_with_threads(
                    &dirs,
                    &identity,
                    defaults,
                    move |topic| {
                        stored_configs
                            .get(topic)
                            .cloned()
                            .unwrap_or_else(|| topic_defaults.clone())
                    },
                    recovery_threads,
                )?;
                m.start_cleaner(cleaner_config)?;
                Ok::<_, crate::log::LogError>(m)
            })
            .await
            .map_err(|e| StartError::Config(e.to_string()))??,
        );
        let cache = Arc::new(MetadataCache::default());
        cache.set_cluster_id(cluster_id);
        let replicas = Arc::new(ReplicaManager::new(logs.clone(), config.broker_id));
        // Dynamic broker configs before any log comes online, so logs get the defaults they give.
        let quotas = Arc::new(crate::quota::Quotas::new(config.quotas));
        quotas.register_metrics();
        let configs = Arc::new(
            ConfigManager::new(
                store.clone(),
                Arc::new(DynamicBrokerConfig::new(&config)),
                cache.clone(),
                replicas.clone(),
            )
            .with_quotas(quotas),
        );
        configs.load_broker_configs().await?;
        configs.load_user_credentials().await?;
        // ACLs are in the cache before any listener opens: the first request is checked
        // against them, not against an empty cache.
        let acls = match &config.authorizer {
            None => None,
            Some(settings) => {
                let authorizer = Arc::new(Authorizer::new(
                    settings.super_users.clone(),
                    settings.allow_everyone_if_no_acl_found,
                ));
                let acls = Arc::new(AclManager::new(store.clone(), authorizer));
                acls.load().await?;
                Some(acls)
            }
        };
        let tokens = Arc::new(TokenManager::new(
            store.clone(),
            config.delegation_tokens.clone(),
        ));
        tokens.load().await?;
        configs.load_quotas().await?;
        let controller = Arc::new(Controller::new(
            store.clone(),
            config.clone(),
            cache.clone(),
        ));
        let groups = Arc::new(GroupCoordinator::new(
            config.clone(),
            cache.clone(),
            replicas.clone(),
            controller.clone(),
        ));
        let txn = Arc::new(TransactionCoordinator::new(
            config.clone(),
            cache.clone(),
            replicas.clone(),
            controller.clone(),
        ));
        let api = Arc::new(Api {
            config: config.clone(),
            cache: cache.clone(),
            replicas,
            controller: controller.clone(),
            producer_ids: ProducerIdManager::new(store.clone(), config.broker_id),
            groups: groups.clone(),
            txn: txn.clone(),
            configs: configs.clone(),
            fetch_sessions: Arc::new(crate::api::fetch_session::FetchSessionCache::new(
                config.max_incremental_fetch_session_cache_slots,
            )),
            authorizer: acls.as_ref().map(|a| a.authorizer().clone()),
            acls: acls.clone(),
            tokens: tokens.clone(),
        });
        let weak_api = Arc::downgrade(&api);
        let local: crate::controller::channel::LocalDelivery = Arc::new(move |request, version| {
            let api = weak_api.clone();
            Box::pin(async move {
                match api.upgrade() {
                    Some(api) => api.handle_local(request, version).await,
                    None => None,
                }
            })
        });
        controller.set_local_delivery(local.clone());
        txn.set_local_delivery(local);
        let (shutdown, shutdown_rx) = watch::channel(false);
        let session_wait = Duration::from_millis(config.zookeeper_session_timeout_ms);
        let broker_epoch = registration::register(store.as_ref(), &config, session_wait).await?;
        cache.set_broker_epoch(broker_epoch);
        let mut tasks = vec![
            tokio::spawn(registration::keep_registered(
                store.clone(),
                config.clone(),
                cache.clone(),
                shutdown_rx.clone(),
            )),
            tokio::spawn(controller.clone().run(shutdown_rx.clone())),
        ];
        // When this broker is controller it learns its own state without the network, so it
        // is ready before clients can connect; when another broker is, that one must reach us
        // first, so the listener opens without waiting.
        let me = config.broker_id;
        let ready_deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < ready_deadline
            && cache.broker(me).is_none()
            && (cache.controller_id() == -1 || cache.controller_id() == me)
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }

        let mut listening = Vec::with_capacity(sockets.len());
        for (l, socket, addr) in sockets {
            let listener = socket
                .listen(1024)
                .map_err(|source| StartError::Bind { addr, source })?;
            listening.push((l, listener));
        }
        let limits = Limits {
            max_request_bytes: config.socket_request_max_bytes,
            max_connections: config.max_connections,
            max_in_flight: config.queued_max_requests.max(1),
            idle_timeout: Duration::from_millis(config.connections_max_idle_ms),
        };
        let intervals = TaskIntervals {
            retention_check: Duration::from_millis(config.log_retention_check_interval_ms),
            flush_check: Duration::from_millis(
                config.log_flush_scheduler_interval_ms.clamp(10, 60_000),
            ),
            checkpoint: Duration::from_millis(
                config
                    .log_flush_offset_checkpoint_interval_ms
                    .min(config.replica_high_watermark_checkpoint_interval_ms)
                    .max(100),
            ),
        };
        // Prometheus scrapes on metrics.port, on the listener's host.
        let metrics_addr = crate::client::address(&host, config.metrics_port);
        let metrics_listener =
            TcpListener::bind(&metrics_addr)
                .await
                .map_err(|source| StartError::Bind {
                    addr: metrics_addr.clone(),
                    source,
                })?;
        let metrics_port = metrics_listener
            .local_addr()
            .map(|a| a.port())
            .unwrap_or(config.metrics_port);
        api.replicas.register_metrics();
        groups.register_metrics();
        api.fetch_sessions.register_metrics();
        tasks.extend(api.replicas.start_replication(
            &config,
            store.clone(),
            cache.clone(),
            shutdown_rx.clone(),
        ));
        let connections = network::connection_limit(&limits);
        let ports = listening
            .iter()
            .map(|(l, _)| (l.name.clone(), l.port))
            .collect();
        for (l, listener) in listening {
            let security = config.listener_security.get(&l.name);
            let sasl = security.and_then(|s| s.sasl.clone()).map(|settings| {
                let credentials = ServerCredentials {
                    plain_users: Arc::new(settings.plain_users()),
                    scram: configs.credentials().clone(),
                    tokens: tokens.cache().clone(),
                };
                Arc::new(network::sasl::SaslListener {
                    settings,
                    credentials,
                })
            });
            let context = Arc::new(network::ListenerContext {
                name: l.name.as_str().into(),
                protocol: l.protocol,
                tls: tls.remove(&l.name),
                sasl,
            });
            tasks.push(tokio::spawn(network::serve(
                listener,
                context,
                api.clone(),
                limits,
                connections.clone(),
                shutdown_rx.clone(),
            )));
        }
        tasks.extend([
            tokio::spawn(groups.run_timer(shutdown_rx.clone())),
            tokio::spawn(txn.run_timer(shutdown_rx.clone())),
            tokio::spawn(configs.run(shutdown_rx.clone())),
            tokio::spawn(tokens.clone().run(shutdown_rx.clone())),
            tokio::spawn(run_periodic_tasks(logs.clone(), intervals, shutdown_rx)),
        ]);
        if let Some(acls) = acls {
            tasks.push(tokio::spawn(acls.run(shutdown.subscribe())));
        }
        tasks.push(tokio::spawn(crate::metrics::http::serve(
            metrics_listener,
            shutdown.subscribe(),
        )));
        tracing::info!(broker_id = config.broker_id, %addr, port, startup_ms = started.elapsed().as_millis() as u64, "broker started");
        Ok(Broker {
            metrics_port,
            port,
            ports,
            shutdown,
            tasks,
            logs,
            controller,
            store,
            broker_id: config.broker_id,
            api,
        })
    }
}

/// The metadata store: ZooKeeper with `zookeeper.connect`, else the embedded store kept in the
/// first log directory.
async fn open_store(
    config: &BrokerConfig,
    first_dir: &std::path::Path,
) -> Result<Arc<dyn MetadataStore>, StartError> {
    match &config.zookeeper_connect {
        None => Ok(Arc::new(EmbeddedStore::open(first_dir)?)),
        Some(connect) => {
            let session = Duration::from_millis(config.zookeeper_session_timeout_ms);
            let connection = config
                .zookeeper_connection_timeout_ms
                .map_or(session, Duration::from_millis);
            Ok(Arc::new(
                crate::metadata::zk::ZkStore::connect(connect, session, connection).await?,
            ))
        }
    }
}

/// `broker.id=-1`: the id this data directory already has, else a generated one.
async fn generated_broker_id(
    store: &dyn MetadataStore,
    dir: &std::path::Path,
) -> Result<i32, StartError> {
    let props = crate::log::checkpoint::read_properties(
        &dir.join(crate::log::checkpoint::META_PROPERTIES_FILE),
    )?;
    if let Some(id) = props.and_then(|p| p.get("broker.id").and_then(|v| v.parse::<i32>().ok())) {
        return Ok(id);
    }
    Ok(registration::generate_broker_id(store).await?)
}

/// Every topic's log config from `/config/topics` (its overrides on the broker defaults); a
/// topic whose stored config is unreadable or invalid is left out, with a log line, and gets
/// the defaults until LeaderAndIsr brings its config again.
async fn stored_topic_configs(
    store: &dyn MetadataStore,
    defaults: &crate::config::LogConfig,
) -> std::collections::HashMap<String, crate::config::LogConfig> {
    use crate::metadata::znodes;
    let mut out = std::collections::HashMap::new();
    let topics = match store.children(znodes::TOPIC_CONFIGS).await {
        Ok(t) => t.unwrap_or_default(),
        Err(e) => {
            tracing::warn!(error = %e, "cannot list topic configs");
            return out;
        }
    };
    for topic in topics {
        let path = znodes::topic_config_path(&topic);
        let config = match store.get(&path).await {
            Ok(Some((Some(data), _))) => znodes::decode::<znodes::ConfigZnode>(&path, &data)
                .map_err(|e| e.to_string())
                .and_then(|z| {
                    defaults
                        .with_overrides(&z.config)
                        .map_err(|e| e.to_string())
                }),
            Ok(_) => continue,
            Err(e) => Err(e.to_string()),
        };
        match config {
            Ok(c) => {
                out.insert(topic, c);
            }
            Err(e) => tracing::warn!(topic, error = %e, "ignoring unreadable topic config"),
        }
    }
    out
}
