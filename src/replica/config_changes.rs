//! Dynamic configs in the metadata store: `/config/topics/<t>` and `/config/brokers/<id>` or
//! `<default>`, written as Kafka's `AdminZkClient.changeEntityConfig` writes them (the config
//! node, then a `/config/changes/config_change_<seq>` notification), and applied by every
//! broker as Kafka's `ZkConfigManager` does: it watches the notifications, re-reads the entity
//! each new one names, and gives the new config to the open logs (topics) or to the topic
//! defaults (brokers). A change made through this broker is applied at once as well, so that a
//! DescribeConfigs right after an AlterConfigs sees it.
//!
//! It lives with the replica manager because applying a change means reconfiguring the logs
//! this broker hosts; the store's paths and JSON stay in `metadata::znodes`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{Mutex, watch};

use super::ReplicaManager;
use crate::config::dynamic::{BrokerLevel, DynamicBrokerConfig};
use crate::metadata::notifications::{ChangeRoot, Follower};
use crate::metadata::store::{CreateMode, StoreError, create_recursive, delete_recursive};
use crate::metadata::znodes::{self, ConfigChangeZnode, ConfigZnode};
use crate::metadata::{MetadataCache, MetadataStore};
use crate::quota::{self, Entity, Quotas};
use crate::security::credentials::CredentialCache;
use crate::security::sanitize::{desanitize, sanitize};

pub const TOPICS: &str = "topics";
pub const BROKERS: &str = "brokers";
/// `/config/users/<sanitized user>`: SCRAM credentials and user quotas; its
/// `clients/<client-id>` children hold user/client-id quotas.
pub const USERS: &str = quota::entity::USERS;
/// `/config/clients/<sanitized client-id>`: client-id quotas.
pub const CLIENTS: &str = quota::entity::CLIENTS;

pub use crate::metadata::notifications::NOTIFICATION_EXPIRY;

pub struct ConfigManager {
    store: Arc<dyn MetadataStore>,
    broker: Arc<DynamicBrokerConfig>,
    cache: Arc<MetadataCache>,
    replicas: Arc<ReplicaManager>,
    /// Held while a change is applied: each application reads its znode under it, so the last
    /// one applied always read the newest content, whichever of the API and the listener ran it.
    progress: Mutex<ChangeRoot>,
    /// SCRAM credentials from `/config/users`, which SASL listeners check logins against.
    credentials: Arc<CredentialCache>,
    /// Client quotas from `/config/users` and `/config/clients`.
    quotas: Arc<Quotas>,
}

impl ConfigManager {
    pub fn new(
        store: Arc<dyn MetadataStore>,
        broker: Arc<DynamicBrokerConfig>,
        cache: Arc<MetadataCache>,
        replicas: Arc<ReplicaManager>,
    ) -> Self {
        Self::with_expiry(store, broker, cache, replicas, NOTIFICATION_EXPIRY)
    }

    /// Like `new`, with notifications expiring after `expiry` (tests).
    pub fn with_expiry(
        store: Arc<dyn MetadataStore>,
        broker: Arc<DynamicBrokerConfig>,
        cache: Arc<MetadataCache>,
        replicas: Arc<ReplicaManager>,
        expiry: Duration,
    ) -> Self {
        ConfigManager {
            store,
            broker,
            cache,
            replicas,
            progress: Mutex::new(ChangeRoot::new(
                znodes::CONFIG_CHANGES,
                znodes::CONFIG_CHANGE_PREFIX,
                expiry,
            )),
            credentials: Arc::new(CredentialCache::new()),
            quotas: Arc::new(Quotas::default()),
        }
    }

    /// This manager feeding `quotas` (built from the broker's quota settings) instead of a
    /// default set.
    pub fn with_quotas(mut self, quotas: Arc<Quotas>) -> Self {
        self.quotas = quotas;
        self
    }

    /// The client quotas, kept current from `/config/users` and `/config/clients`.
    pub fn quotas(&self) -> &Arc<Quotas> {
        &self.quotas
    }

    pub fn broker(&self) -> &Arc<DynamicBrokerConfig> {
        &self.broker
    }

    pub fn replicas(&self) -> &Arc<ReplicaManager> {
        &self.replicas
    }

    pub fn store(&self) -> &Arc<dyn MetadataStore> {
        &self.store
    }

    /// The SCRAM credentials of every user, kept current from `/config/users`.
    pub fn credentials(&self) -> &Arc<CredentialCache> {
        &self.credentials
    }

    /// Start-up, before the listeners open: every user's SCRAM credentials, so that the first
    /// client to log in finds them.
    pub async fn load_user_credentials(&self) -> Result<(), StoreError> {
        let _guard = self.progress.lock().await;
        self.apply_all_users().await
    }

    /// Start-up, before the listeners open: every client quota, so that no client gets a
    /// head start on its quota.
    pub async fn load_quotas(&self) -> Result<(), StoreError> {
        let _guard = self.progress.lock().await;
        self.apply_all_quota_entities().await
    }

    async fn apply_all_users(&self) -> Result<(), StoreError> {
        let users = self
            .store
            .children(&format!("/config/{USERS}"))
            .await?
            .unwrap_or_default();
        // Users whose node is gone lose their credentials.
        for known in self.credentials.users() {
            if !users.iter().any(|u| desanitize(u) == known) {
                self.credentials.remove_user(&known);
            }
        }
        for user in users {
            self.apply_user(&user).await?;
        }
        Ok(())
    }

    /// Re-reads `/config/users/<sanitized>` into the credential cache (Kafka's
    /// `UserConfigHandler`): a mechanism missing from the node loses its credential. A node
    /// that cannot be read leaves the user with none: a login must never succeed on
    /// credentials the store no longer vouches for.
    async fn apply_user(&self, sanitized: &str) -> Result<(), StoreError> {
        let user = desanitize(sanitized);
        let config = match self.entity_config(USERS, sanitized).await {
            Ok(c) => c,
            Err(e @ StoreError::BadData { .. }) => {
                tracing::warn!(user, error = %e, "unreadable user config; the user cannot log in with SCRAM until it is fixed");
                BTreeMap::new()
            }
            Err(e) => return Err(e),
        };
        self.credentials.apply_user_config(&user, &config);
        if let Some(entity) = Entity::from_change(USERS, sanitized) {
            self.quotas.apply_entity(&entity, &config);
        }
        Ok(())
    }

    /// Re-reads a quota entity's node (`QuotaConfigHandler`): its quotas replace the entity's
    /// old ones, a missing node removes them. An unreadable node is logged and leaves them.
    async fn apply_quota_entity(&self, entity_type: &str, name: &str) -> Result<(), StoreError> {
        let Some(entity) = Entity::from_change(entity_type, name) else {
            tracing::warn!(entity_type, name, "not a quota entity; ignored");
            return Ok(());
        };
        match self.entity_config(entity_type, name).await {
            Ok(config) => self.quotas.apply_entity(&entity, &config),
            Err(e @ StoreError::BadData { .. }) => {
                tracing::warn!(entity_type, name, error = %e, "unreadable quota config; not applied")
            }
            Err(e) => return Err(e),
        }
        Ok(())
    }

    /// Every quota entity in the store (`users/<u>/clients/<c>` and `clients/<c>`; users come
    /// with their credentials), and entities no longer stored lose their quotas.
    async fn apply_all_quota_entities(&self) -> Result<(), StoreError> {
        let mut stored: Vec<(String, String)> = Vec::new();
        let users = self
            .store
            .children(&format!("/config/{USERS}"))
            .await?
            .unwrap_or_default();
        for user in users {
            stored.push((USERS.to_string(), user.clone()));
            let clients = self
                .store
                .children(&format!("/config/{USERS}/{user}/{CLIENTS}"))
                .await?
                .unwrap_or_default();
            for client in clients {
                stored.push((USERS.to_string(), format!("{user}/{CLIENTS}/{client}")));
            }
        }
        for client in self
            .store
            .children(&format!("/config/{CLIENTS}"))
            .await?
            .unwrap_or_default()
        {
            stored.push((CLIENTS.to_string(), client));
        }
        let stored_entities: Vec<Entity> = stored
            .iter()
            .filter_map(|(t, n)| Entity::from_change(t, n))
            .collect();
        for gone in self.quotas.entities() {
            if !stored_entities.contains(&gone) {
                self.quotas.apply_entity(&gone, &BTreeMap::new());
            }
        }
        for (t, n) in stored {
            // Users were applied with their credentials.
            if t == USERS && !n.contains('/') {
                continue;
            }
            self.apply_quota_entity(&t, &n).await?;
        }
        Ok(())
    }

    /// An entity's stored config (`AdminZkClient.fetchEntityConfig`); empty when none is stored.
    pub async fn entity_config(
        &self,
        entity_type: &str,
        name: &str,
    ) -> Result<BTreeMap<String, String>, StoreError> {
        let path = znodes::entity_config_path(entity_type, name);
        Ok(match self.store.get(&path).await? {
            Some((Some(data), _)) => znodes::decode::<ConfigZnode>(&path, &data)?.config,
            _ => BTreeMap::new(),
        })
    }

    /// Stores a topic's whole set of overrides, tells every broker, and applies it here.
    pub async fn change_topic_config(
        &self,
        topic: &str,
        configs: BTreeMap<String, String>,
    ) -> Result<(), StoreError> {
        self.change_entity_config(TOPICS, topic, configs).await?;
        let _guard = self.progress.lock().await;
        self.apply_topic(topic).await
    }

    /// Stores one dynamic broker layer whole (`/config/brokers/<default>` or this broker's
    /// id), tells every broker, and applies it here.
    pub async fn change_broker_config(
        &self,
        level: BrokerLevel,
        configs: BTreeMap<String, String>,
    ) -> Result<(), StoreError> {
        let name = self.broker_entity(level);
        self.change_entity_config(BROKERS, &name, configs).await?;
        let _guard = self.progress.lock().await;
        self.apply_broker(level).await
    }

    /// Stores a user's whole config (`/config/users/<sanitized user>`: SCRAM credentials and
    /// quotas), tells every broker, and applies it here, so that a SASL login with a credential
    /// just written succeeds at once on this broker. `user` is the principal name (`alice`), not
    /// its znode name.
    pub async fn change_user_config(
        &self,
        user: &str,
        configs: BTreeMap<String, String>,
    ) -> Result<(), StoreError> {
        let sanitized = sanitize(user);
        self.change_entity_config(USERS, &sanitized, configs)
            .await?;
        let _guard = self.progress.lock().await;
        self.apply_user(&sanitized).await
    }

    fn broker_entity(&self, level: BrokerLevel) -> String {
        match level {
            BrokerLevel::ClusterDefault => znodes::DEFAULT_ENTITY.to_string(),
            BrokerLevel::ThisBroker => self.broker.broker_id().to_string(),
        }
    }

    /// Stores a quota entity's whole config (`users/<u>` keeps its SCRAM credentials only if
    /// they are in `configs`), tells every broker, and applies it here.
    pub async fn change_quota_config(
        &self,
        entity: &Entity,
        configs: BTreeMap<String, String>,
    ) -> Result<(), StoreError> {
        let Some((entity_type, name)) = entity.change_path() else {
            return Ok(());
        };
        self.change_entity_config(entity_type, &name, configs)
            .await?;
        let _guard = self.progress.lock().await;
        if entity_type == USERS && !name.contains('/') {
            self.apply_user(&name).await
        } else {
            self.apply_quota_entity(entity_type, &name).await
        }
    }

    /// `AdminZkClient.changeEntityConfig`: the config node (created if missing), then the
    /// sequential notification naming it. A user or client left with no config at all loses
    /// its node instead, as in Kafka 3.5+ (KAFKA-14285), unless the node has children
    /// (`users/<u>/clients/<c>` quotas); the notification still tells brokers to re-read it.
    async fn change_entity_config(
        &self,
        entity_type: &str,
        name: &str,
        configs: BTreeMap<String, String>,
    ) -> Result<(), StoreError> {
        let path = znodes::entity_config_path(entity_type, name);
        if (entity_type == USERS || entity_type == CLIENTS)
            && configs.is_empty()
            && self.clean_quota_nodes(entity_type, name).await?
        {
            self.notify_change(entity_type, name).await?;
            return Ok(());
        }
        let data = znodes::encode(&ConfigZnode {
            version: 1,
            config: configs,
        });
        match self.store.set(&path, Some(data.clone()), None).await {
            Err(StoreError::NoNode(_)) => {
                match create_recursive(
                    self.store.as_ref(),
                    &path,
                    Some(data.clone()),
                    CreateMode::Persistent,
                )
                .await
                {
                    // Created by someone else in between: ours is the newer write.
                    Err(StoreError::NodeExists(_)) => {
                        self.store.set(&path, Some(data), None).await?;
                    }
                    other => {
                        other?;
                    }
                }
            }
            other => {
                other?;
            }
        }
        self.notify_change(entity_type, name).await
    }

    /// `AdminZkClient.tryCleanQuotaNodes`: deletes an emptied entity's node unless it has
    /// children (false then). For `users/<u>/clients/<c>` the `clients` node goes too when this
    /// was its only child, and the user's node when that held no config and nothing else.
    async fn clean_quota_nodes(&self, entity_type: &str, name: &str) -> Result<bool, StoreError> {
        let path = znodes::entity_config_path(entity_type, name);
        if !self
            .store
            .children(&path)
            .await?
            .unwrap_or_default()
            .is_empty()
        {
            return Ok(false);
        }
        let mut to_delete = path;
        if entity_type == USERS
            && let Some((user, client)) = name.split_once(&format!("/{CLIENTS}/"))
        {
            let clients_path = znodes::entity_config_path(USERS, &format!("{user}/{CLIENTS}"));
            let clients = self
                .store
                .children(&clients_path)
                .await?
                .unwrap_or_default();
            if clients == [client] {
                to_delete = clients_path;
                // A user node that cannot be read may hold credentials: it stays.
                let user_empty = match self.entity_config(USERS, user).await {
                    Ok(config) => config.is_empty(),
                    Err(StoreError::BadData { .. }) => false,
                    Err(e) => return Err(e),
                };
                let user_path = znodes::entity_config_path(USERS, user);
                let user_children = self.store.children(&user_path).await?.unwrap_or_default();
                if user_empty && user_children == [CLIENTS] {
                    to_delete = user_path;
                }
            }
        }
        match delete_recursive(self.store.as_ref(), &to_delete).await {
            Ok(()) | Err(StoreError::NoNode(_)) => {
                tracing::info!(path = to_delete, "deleted config node left empty");
                Ok(true)
            }
            Err(e) => Err(e),
        }
    }

    /// The `/config/changes/config_change_<seq>` notification naming a changed entity.
    async fn notify_change(&self, entity_type: &str, name: &str) -> Result<(), StoreError> {
        let notification = znodes::encode(&ConfigChangeZnode::for_entity(entity_type, name));
        create_recursive(
            self.store.as_ref(),
            &format!(
                "{}/{}",
                znodes::CONFIG_CHANGES,
                znodes::CONFIG_CHANGE_PREFIX
            ),
            Some(notification),
            CreateMode::PersistentSequential,
        )
        .await?;
        tracing::info!(entity_type, name, "stored config change");
        Ok(())
    }

    /// Start-up, before logs come online: the dynamic broker configs, so that every log is
    /// opened with the topic defaults they give (Kafka's `DynamicBrokerConfig.initialize`).
    pub async fn load_broker_configs(&self) -> Result<(), StoreError> {
        let _guard = self.progress.lock().await;
        self.apply_broker(BrokerLevel::ClusterDefault).await?;
        self.apply_broker(BrokerLevel::ThisBroker).await
    }

    /// Re-reads one dynamic broker layer and gives every hosted topic its config again.
    async fn apply_broker(&self, level: BrokerLevel) -> Result<(), StoreError> {
        let stored = self
            .entity_config(BROKERS, &self.broker_entity(level))
            .await?;
        let defaults = self.broker.set_dynamic(level, stored);
        self.replicas.set_log_defaults(defaults);
        for topic in self.replicas.hosted_topics() {
            self.apply_topic(&topic).await?;
        }
        Ok(())
    }

    /// Re-reads a topic's overrides and gives them to the cache and the topic's logs. An
    /// invalid stored config (written by another tool) is logged and leaves the logs as they are.
    async fn apply_topic(&self, topic: &str) -> Result<(), StoreError> {
        let overrides = self.entity_config(TOPICS, topic).await?;
        let config = match self.replicas.log_config(&overrides) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(topic, error = %e, "stored topic config is invalid; not applied");
                return Ok(());
            }
        };
        self.cache.set_topic_configs(topic, overrides);
        if let Err(e) = self.replicas.set_topic_config(topic, config).await {
            tracing::warn!(topic, error = %e, "could not apply topic config");
        }
        Ok(())
    }

    /// Watches `/config/changes` until `shutdown`, applying each new notification. At start
    /// every topic's stored config is read directly, then the notifications already there.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        const ROOTS: &[&str] = &[znodes::CONFIG_CHANGES];
        let mut follower = Follower::new(self.store.as_ref(), ROOTS, "config changes");
        while let Some(full) = follower.next(self.store.as_ref(), &mut shutdown).await {
            let outcome = if full {
                self.reload_all().await
            } else {
                self.process_notifications(Instant::now()).await
            };
            follower.done(outcome);
        }
    }

    /// Every stored config read directly, then the notifications.
    async fn reload_all(&self) -> Result<(), StoreError> {
        {
            let _guard = self.progress.lock().await;
            self.apply_broker(BrokerLevel::ClusterDefault).await?;
            self.apply_broker(BrokerLevel::ThisBroker).await?;
            let topics = self
                .store
                .children(znodes::TOPIC_CONFIGS)
                .await?
                .unwrap_or_default();
            for topic in topics {
                self.apply_topic(&topic).await?;
            }
            self.apply_all_users().await?;
            self.apply_all_quota_entities().await?;
        }
        self.process_notifications(Instant::now()).await
    }

    /// `ZkNodeChangeNotificationListener.processNotifications`: applies notifications newer
    /// than the last applied, in sequence order, then deletes expired ones.
    pub async fn process_notifications(&self, now: Instant) -> Result<(), StoreError> {
        let mut progress = self.progress.lock().await;
        for notification in progress.unapplied(self.store.as_ref(), now).await? {
            if let Some(data) = &notification.data {
                self.apply_notification(&notification.path, data).await?;
            }
            progress.applied(&notification);
        }
        progress.purge(self.store.as_ref(), now).await
    }

    async fn apply_notification(&self, path: &str, data: &[u8]) -> Result<(), StoreError> {
        let entity = match znodes::decode::<ConfigChangeZnode>(path, data) {
            Ok(n) => n.entity(),
            Err(e) => {
                tracing::warn!(error = %e, "ignoring unreadable config change notification");
                return Ok(());
            }
        };
        match entity.as_ref().map(|(t, n)| (t.as_str(), n.as_str())) {
            Some((TOPICS, topic)) => self.apply_topic(topic).await,
            Some((BROKERS, znodes::DEFAULT_ENTITY)) => {
                self.apply_broker(BrokerLevel::ClusterDefault).await
            }
            Some((BROKERS, id))
                if id.trim().parse::<i32>().ok() == Some(self.broker.broker_id()) =>
            {
                self.apply_broker(BrokerLevel::ThisBroker).await
            }
            // A user's credentials and quotas; `users/<u>/clients/<c>` and `<default>` hold
            // only quotas.
            Some((USERS, user)) if !user.contains('/') && user != znodes::DEFAULT_ENTITY => {
                self.apply_user(user).await
            }
            Some((entity_type @ (USERS | CLIENTS), name)) => {
                self.apply_quota_entity(entity_type, name).await
            }
            // Another broker's configs, or IP quotas, which odradek does not apply.
            Some((entity_type, name)) => {
                tracing::debug!(
                    entity_type,
                    name,
                    "config change not for this broker's logs"
                );
                Ok(())
            }
            None => {
                tracing::warn!(path, "config change notification names no entity");
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::BrokerConfig;
    use crate::metadata::embedded::EmbeddedStore;

    async fn manager(
        dir: &std::path::Path,
        expiry: Duration,
    ) -> (Arc<ConfigManager>, Arc<dyn MetadataStore>) {
        let store: Arc<dyn MetadataStore> = Arc::new(EmbeddedStore::open(dir).unwrap());
        crate::metadata::store::ensure_path(store.as_ref(), znodes::CONFIG_CHANGES)
            .await
            .unwrap();
        let identity = crate::log::manager::BrokerIdentity {
            broker_id: 0,
            cluster_id: None,
        };
        let logs = Arc::new(
            crate::log::LogManager::open(
                &[dir.join("logs")],
                &identity,
                Default::default(),
                |_| Default::default(),
            )
            .unwrap(),
        );
        let config = BrokerConfig {
            broker_id: 0,
            ..BrokerConfig::default()
        };
        let m = Arc::new(ConfigManager::with_expiry(
            store.clone(),
            Arc::new(DynamicBrokerConfig::new(&config)),
            Arc::new(MetadataCache::default()),
            Arc::new(ReplicaManager::new(logs, 0)),
            expiry,
        ));
        (m, store)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn changes_are_written_as_kafka_writes_them_and_expired_ones_purged() {
        let dir = tempfile::tempdir().unwrap();
        let (m, store) = manager(dir.path(), Duration::from_secs(900)).await;
        let mut c = BTreeMap::new();
        c.insert("retention.ms".to_string(), "60000".to_string());
        m.change_topic_config("orders", c).await.unwrap();
        let (data, _) = store.get("/config/topics/orders").await.unwrap().unwrap();
        let json: serde_json::Value = serde_json::from_slice(&data.unwrap()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"version":1,"config":{"retention.ms":"60000"}})
        );
        let (data, _) = store
            .get("/config/changes/config_change_0000000000")
            .await
            .unwrap()
            .unwrap();
        let json: serde_json::Value = serde_json::from_slice(&data.unwrap()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"version":2,"entity_path":"topics/orders"})
        );

        let start = Instant::now();
        m.process_notifications(start).await.unwrap();
        m.change_broker_config(BrokerLevel::ClusterDefault, BTreeMap::new())
            .await
            .unwrap();
        m.process_notifications(start + Duration::from_secs(600))
            .await
            .unwrap();
        assert_eq!(
            store
                .children(znodes::CONFIG_CHANGES)
                .await
                .unwrap()
                .unwrap()
                .len(),
            2
        );
        m.process_notifications(start + Duration::from_secs(901))
            .await
            .unwrap();
        assert_eq!(
            store
                .children(znodes::CONFIG_CHANGES)
                .await
                .unwrap()
                .unwrap(),
            vec!["config_change_0000000001".to_string()],
            "only the notification seen more than 15 minutes ago is gone"
        );
        m.process_notifications(start + Duration::from_secs(1502))
            .await
            .unwrap();
        assert!(
            store
                .children(znodes::CONFIG_CHANGES)
                .await
                .unwrap()
                .unwrap()
                .is_empty()
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_user_left_without_config_loses_its_node_unless_it_has_children() {
        let dir = tempfile::tempdir().unwrap();
        let (m, store) = manager(dir.path(), NOTIFICATION_EXPIRY).await;
        let credential = crate::security::scram::ScramCredential::with_salt(
            crate::security::sasl::Mechanism::ScramSha256,
            "pw",
            b"salt",
            4096,
        )
        .unwrap();
        let mut config = BTreeMap::new();
        config.insert("SCRAM-SHA-256".to_string(), credential.to_string());
        m.change_user_config("a b", config.clone()).await.unwrap();
        assert!(
            m.credentials()
                .get("a b", crate::security::sasl::Mechanism::ScramSha256)
                .is_some()
        );
        m.change_user_config("a b", BTreeMap::new()).await.unwrap();
        assert_eq!(store.get("/config/users/a%20b").await.unwrap(), None);
        assert!(m.credentials().users().is_empty());

        // Kafka keeps a node that user/client-id quotas hang under, with an empty config.
        m.change_user_config("carol", config).await.unwrap();
        create_recursive(
            store.as_ref(),
            "/config/users/carol/clients/app",
            Some(br#"{"version":1,"config":{"producer_byte_rate":"10"}}"#.to_vec()),
            CreateMode::Persistent,
        )
        .await
        .unwrap();
        m.change_user_config("carol", BTreeMap::new())
            .await
            .unwrap();
        let (data, _) = store.get("/config/users/carol").await.unwrap().unwrap();
        assert_eq!(data.unwrap(), br#"{"version":1,"config":{}}"#);
        assert!(m.credentials().users().is_empty());
        let mut changes = Vec::new();
        for child in store
            .children(znodes::CONFIG_CHANGES)
            .await
            .unwrap()
            .unwrap()
        {
            let (data, _) = store
                .get(&format!("{}/{child}", znodes::CONFIG_CHANGES))
                .await
                .unwrap()
                .unwrap();
            changes.push((child, String::from_utf8(data.unwrap()).unwrap()));
        }
        changes.sort();
        let paths: Vec<&str> = changes.iter().map(|(_, d)| d.as_str()).collect();
        assert_eq!(
            paths,
            vec![
                r#"{"version":2,"entity_path":"users/a%20b"}"#,
                r#"{"version":2,"entity_path":"users/a%20b"}"#,
                r#"{"version":2,"entity_path":"users/carol"}"#,
                r#"{"version":2,"entity_path":"users/carol"}"#,
            ]
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn broker_notifications_written_by_another_tool_are_applied() {
        let dir = tempfile::tempdir().unwrap();
        let (m, store) = manager(dir.path(), NOTIFICATION_EXPIRY).await;
        let (_tx, rx) = watch::channel(false);
        let task = tokio::spawn(m.clone().run(rx));
        create_recursive(
            store.as_ref(),
            "/config/brokers/<default>",
            Some(
                br#"{"version":1,"config":{"log.retention.ms":"1234","log.retention.hours":"1"}}"#
                    .to_vec(),
            ),
            CreateMode::Persistent,
        )
        .await
        .unwrap();
        store
            .create(
                "/config/changes/config_change_",
                Some(br#"{"version":2,"entity_path":"brokers/<default>"}"#.to_vec()),
                CreateMode::PersistentSequential,
            )
            .await
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while m
            .replicas()
            .log_config(&BTreeMap::new())
            .unwrap()
            .retention_ms
            != 1234
        {
            assert!(Instant::now() < deadline, "the change was not applied");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // A read-only key in the store is dropped, not applied.
        assert_eq!(
            m.broker()
                .dynamic(BrokerLevel::ClusterDefault)
                .keys()
                .collect::<Vec<_>>(),
            vec!["log.retention.ms"]
        );
        task.abort();
    }
}
