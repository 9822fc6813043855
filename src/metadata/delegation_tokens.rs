//! Delegation tokens in the metadata store, as Kafka's `DelegationTokenManagerZk` keeps them:
//! each token in `/delegation_token/tokens/<tokenId>`, each change announced by a
//! `/delegation_token/token_changes/token_change_<seq>` node holding the token id. Every broker
//! loads all tokens at start-up, watches the notifications and re-reads each token named
//! (present: cached; gone: dropped), and removes tokens past their expiry every
//! `delegation.token.expiry.check.interval.ms`. A change made through this broker is applied to
//! its cache at once as well, so a login right after CreateDelegationToken works here.
//!
//! Which principal may do what is the API layer's business; here only the rules that depend on
//! the token itself (owner or renewer, expired, unknown), as Kafka's token manager has them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{Mutex, watch};

use super::MetadataStore;
use super::notifications::{ChangeRoot, Follower, NOTIFICATION_EXPIRY, catch_up};
use super::store::{CreateMode, StoreError, create_recursive, ensure_path};
use super::znodes::{
    self, DELEGATION_TOKEN_CHANGE_PREFIX, DELEGATION_TOKEN_CHANGES, DELEGATION_TOKENS,
    DelegationTokenZnode,
};
use crate::config::security::DelegationTokenConfig;
use crate::security::KafkaPrincipal;
use crate::security::delegation_token::{DelegationTokenCache, TokenInformation, now_ms};
use crate::security::sanitize::{desanitize, sanitize};

/// The version of the token znode Kafka 3.x writes.
const ZNODE_VERSION: i32 = 3;

/// Why a token operation was refused (each answers as its own Kafka error, `api::errors`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("delegation tokens are disabled (no delegation.token.secret.key)")]
    Disabled,
    #[error("no such delegation token")]
    NotFound,
    #[error("only the token's owner and renewers may renew or expire it")]
    OwnerMismatch,
    #[error("the delegation token has expired")]
    Expired,
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub struct TokenManager {
    store: Arc<dyn MetadataStore>,
    config: DelegationTokenConfig,
    cache: Arc<DelegationTokenCache>,
    /// Kafka's token manager lock: one change or notification pass at a time, so a renewal
    /// cannot interleave with another renewal or with the re-read of a notification.
    progress: Mutex<ChangeRoot>,
}

fn token_path(token_id: &str) -> String {
    format!("{DELEGATION_TOKENS}/{token_id}")
}

/// A token as its znode stores it.
pub fn to_znode(info: &TokenInformation) -> DelegationTokenZnode {
    DelegationTokenZnode {
        version: ZNODE_VERSION,
        owner: sanitize(&info.owner.to_string()),
        token_requester: Some(sanitize(&info.requester.to_string())),
        renewers: info
            .renewers
            .iter()
            .map(|r| sanitize(&r.to_string()))
            .collect(),
        issue_timestamp: info.issue_timestamp,
        max_timestamp: info.max_timestamp,
        expiry_timestamp: info.expiry_timestamp,
        token_id: info.token_id.clone(),
    }
}

/// A token from its znode (`DelegationTokenManagerZk.fromBytes`): versions 1 to 3, principals
/// that parse, or an error.
pub fn from_znode(path: &str, data: &[u8]) -> Result<TokenInformation, StoreError> {
    let z: DelegationTokenZnode = znodes::decode(path, data)?;
    let bad = |reason: String| StoreError::BadData {
        path: path.to_string(),
        reason,
    };
    if !(1..=ZNODE_VERSION).contains(&z.version) {
        return Err(bad(format!("unknown version {}", z.version)));
    }
    let principal = |s: &str| {
        KafkaPrincipal::parse(&desanitize(s)).ok_or_else(|| bad(format!("bad principal {s:?}")))
    };
    let owner = principal(&z.owner)?;
    let requester = match (&z.token_requester, z.version >= 3) {
        (Some(r), true) => principal(r)?,
        (None, true) => return Err(bad("no tokenRequester".into())),
        (_, false) => owner.clone(),
    };
    let renewers = z
        .renewers
        .iter()
        .map(|r| principal(r))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(TokenInformation {
        token_id: z.token_id,
        owner,
        requester,
        renewers,
        issue_timestamp: z.issue_timestamp,
        max_timestamp: z.max_timestamp,
        expiry_timestamp: z.expiry_timestamp,
    })
}

impl TokenManager {
    pub fn new(store: Arc<dyn MetadataStore>, config: DelegationTokenConfig) -> TokenManager {
        let cache = Arc::new(DelegationTokenCache::new(config.secret_key.clone()));
        TokenManager {
            store,
            config,
            cache,
            progress: Mutex::new(ChangeRoot::new(
                DELEGATION_TOKEN_CHANGES,
                DELEGATION_TOKEN_CHANGE_PREFIX,
                NOTIFICATION_EXPIRY,
            )),
        }
    }

    /// The live tokens, which SCRAM logins with `tokenauth=true` check.
    pub fn cache(&self) -> &Arc<DelegationTokenCache> {
        &self.cache
    }

    pub fn enabled(&self) -> bool {
        self.cache.enabled()
    }

    /// Start-up, before the listeners open: the token paths and every stored token, so the
    /// first token login finds its token. Nothing when tokens are disabled, as in Kafka.
    pub async fn load(&self) -> Result<(), StoreError> {
        if !self.enabled() {
            return Ok(());
        }
        ensure_path(self.store.as_ref(), DELEGATION_TOKEN_CHANGES).await?;
        ensure_path(self.store.as_ref(), DELEGATION_TOKENS).await?;
        let _guard = self.progress.lock().await;
        self.reload_all().await
    }

    /// Every stored token read again; cached tokens no longer stored are dropped.
    async fn reload_all(&self) -> Result<(), StoreError> {
        let ids = self
            .store
            .children(DELEGATION_TOKENS)
            .await?
            .unwrap_or_default();
        for (cached, _) in self.cache.tokens() {
            if !ids.contains(&cached.token_id) {
                self.cache.remove(&cached.token_id);
            }
        }
        for id in ids {
            self.reread(&id).await?;
        }
        Ok(())
    }

    /// Re-reads one token into the cache: stored, it is cached; gone, it is dropped; unreadable,
    /// it is dropped too, so no login rests on a node we misread.
    async fn reread(&self, token_id: &str) -> Result<(), StoreError> {
        let path = token_path(token_id);
        match self.store.get(&path).await? {
            Some((Some(data), _)) => match from_znode(&path, &data) {
                Ok(info) if info.token_id == token_id => self.cache_token(info.clone()).await,
                Ok(_) | Err(_) => {
                    tracing::warn!(path, "unreadable delegation token; ignored");
                    self.cache.remove(token_id);
                }
            },
            _ => self.cache.remove(token_id),
        }
        Ok(())
    }

    /// Stores a token (created or with a new expiry), caches it and tells every broker.
    async fn write(&self, info: &TokenInformation) -> Result<(), StoreError> {
        let path = token_path(&info.token_id);
        let data = znodes::encode(&to_znode(info));
        match self.store.set(&path, Some(data.clone()), None).await {
            Err(StoreError::NoNode(_)) => {
                create_recursive(
                    self.store.as_ref(),
                    &path,
                    Some(data),
                    CreateMode::Persistent,
                )
                .await?;
            }
            other => {
                other?;
            }
        }
        self.cache_token(info.clone()).await;
        self.notify(&info.token_id).await
    }

    /// Puts a token in the cache. Deriving its SCRAM credentials runs PBKDF2 for each
    /// mechanism, so it runs on the blocking pool rather than on a runtime worker.
    async fn cache_token(&self, info: TokenInformation) {
        let cache = self.cache.clone();
        if let Err(e) = tokio::task::spawn_blocking(move || cache.update(info)).await {
            tracing::error!(error = %e, "could not cache a delegation token");
        }
    }

    /// Drops a token here, deletes it and tells every broker. Dropped from the cache first:
    /// should the store fail, this broker still refuses the token.
    async fn remove(&self, token_id: &str) -> Result<(), StoreError> {
        self.cache.remove(token_id);
        match self.store.delete(&token_path(token_id), None).await {
            Ok(()) | Err(StoreError::NoNode(_)) => {}
            Err(e) => return Err(e),
        }
        self.notify(token_id).await
    }

    async fn notify(&self, token_id: &str) -> Result<(), StoreError> {
        create_recursive(
            self.store.as_ref(),
            &format!("{DELEGATION_TOKEN_CHANGES}/{DELEGATION_TOKEN_CHANGE_PREFIX}"),
            Some(token_id.as_bytes().to_vec()),
            CreateMode::PersistentSequential,
        )
        .await?;
        Ok(())
    }

    /// CreateDelegationToken once the API layer has allowed it: a new token for `owner`,
    /// living `delegation.token.expiry.time.ms` (at most its max lifetime: the request's if
    /// positive and shorter than `delegation.token.max.lifetime.ms`, else that). Returns the
    /// token and its HMAC.
    pub async fn create(
        &self,
        owner: KafkaPrincipal,
        requester: KafkaPrincipal,
        renewers: Vec<KafkaPrincipal>,
        max_lifetime_ms: i64,
    ) -> Result<(TokenInformation, Vec<u8>), TokenError> {
        let _guard = self.progress.lock().await;
        let (_, token_id) = znodes::random_uuid_base64();
        let hmac = self.cache.hmac(&token_id).ok_or(TokenError::Disabled)?;
        let issue = now_ms();
        let max_lifetime = if max_lifetime_ms <= 0 {
            self.config.max_lifetime_ms
        } else {
            max_lifetime_ms.min(self.config.max_lifetime_ms)
        };
        let max_timestamp = issue.saturating_add(max_lifetime);
        let info = TokenInformation {
            token_id,
            owner,
            requester,
            renewers,
            issue_timestamp: issue,
            max_timestamp,
            expiry_timestamp: max_timestamp.min(issue.saturating_add(self.config.expiry_time_ms)),
        };
        self.write(&info).await?;
        tracing::info!(token = info.token_id, owner = %info.owner, "created a delegation token");
        Ok((info, hmac))
    }

    /// RenewDelegationToken: the new expiry, `renew_period_ms` from now (negative: the default
    /// expiry time), never past the token's max lifetime.
    pub async fn renew(
        &self,
        principal: &KafkaPrincipal,
        hmac: &[u8],
        renew_period_ms: i64,
    ) -> Result<i64, TokenError> {
        if !self.enabled() {
            return Err(TokenError::Disabled);
        }
        let _guard = self.progress.lock().await;
        let mut info = self.cache.for_hmac(hmac).ok_or(TokenError::NotFound)?;
        let now = now_ms();
        if !info.may_renew(principal) {
            return Err(TokenError::OwnerMismatch);
        }
        if info.expired(now) {
            return Err(TokenError::Expired);
        }
        let period = if renew_period_ms < 0 {
            self.config.expiry_time_ms
        } else {
            renew_period_ms
        };
        info.expiry_timestamp = info.max_timestamp.min(now.saturating_add(period));
        self.write(&info).await?;
        tracing::info!(token = info.token_id, owner = %info.owner, "renewed a delegation token");
        Ok(info.expiry_timestamp)
    }

    /// ExpireDelegationToken: a negative period removes the token now (answering now);
    /// otherwise its expiry becomes `expiry_period_ms` from now, within its max lifetime.
    pub async fn expire(
        &self,
        principal: &KafkaPrincipal,
        hmac: &[u8],
        expiry_period_ms: i64,
    ) -> Result<i64, TokenError> {
        if !self.enabled() {
            return Err(TokenError::Disabled);
        }
        let _guard = self.progress.lock().await;
        let mut info = self.cache.for_hmac(hmac).ok_or(TokenError::NotFound)?;
        let now = now_ms();
        if !info.may_renew(principal) {
            return Err(TokenError::OwnerMismatch);
        }
        // Kafka checks "expire now" before "already expired": an expired token may always be
        // removed at once.
        if expiry_period_ms < 0 {
            self.remove(&info.token_id).await?;
            tracing::info!(token = info.token_id, owner = %info.owner, "expired a delegation token");
            return Ok(now);
        }
        if info.expired(now) {
            return Err(TokenError::Expired);
        }
        info.expiry_timestamp = info.max_timestamp.min(now.saturating_add(expiry_period_ms));
        self.write(&info).await?;
        tracing::info!(token = info.token_id, owner = %info.owner, "changed a delegation token's expiry");
        Ok(info.expiry_timestamp)
    }

    /// Every live token with its HMAC, for DescribeDelegationToken.
    pub fn tokens(&self) -> Vec<(TokenInformation, Vec<u8>)> {
        self.cache.tokens()
    }

    /// Kafka's `expireTokens`: removes every token past its expiry or max lifetime.
    pub async fn remove_expired(&self) -> Result<(), StoreError> {
        let _guard = self.progress.lock().await;
        let now = now_ms();
        for (info, _) in self.cache.tokens() {
            if info.expired(now) {
                tracing::info!(token = info.token_id, owner = %info.owner, "delegation token expired");
                self.remove(&info.token_id).await?;
            }
        }
        Ok(())
    }

    /// Watches the token notifications and removes expired tokens until `shutdown`. Returns
    /// at once when tokens are disabled.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        if !self.enabled() {
            return;
        }
        const ROOTS: &[&str] = &[DELEGATION_TOKEN_CHANGES];
        let mut follower = Follower::new(self.store.as_ref(), ROOTS, "delegation token changes");
        let check_every = Duration::from_millis(self.config.expiry_check_interval_ms.max(1));
        let mut expiry_check =
            tokio::time::interval_at(tokio::time::Instant::now() + check_every, check_every);
        expiry_check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                due = follower.next(self.store.as_ref(), &mut shutdown) => {
                    let Some(full) = due else { return };
                    let outcome = catch_up(
                        full,
                        &self.progress,
                        || self.reload_all(),
                        || self.process_notifications(Instant::now()),
                    )
                    .await;
                    follower.done(outcome);
                }
                _ = expiry_check.tick() => {
                    if let Err(e) = self.remove_expired().await {
                        tracing::warn!(error = %e, "could not remove expired delegation tokens");
                    }
                }
            }
        }
    }

    /// One pass over the token notifications: re-reads the token each notification newer than
    /// the last applied names, then deletes expired notifications.
    async fn process_notifications(&self, now: Instant) -> Result<(), StoreError> {
        let mut progress = self.progress.lock().await;
        let notifications = progress.unapplied(self.store.as_ref(), now).await?;
        // Each token named is re-read once per pass, however many notifications name it: the
        // re-read gives its current state.
        let mut named: Vec<&str> = Vec::new();
        for notification in &notifications {
            let Some(data) = &notification.data else {
                continue;
            };
            match std::str::from_utf8(data) {
                // A token id is a path segment: anything with '/' names no token.
                Ok(id) if !id.is_empty() && !id.contains('/') => {
                    if !named.contains(&id) {
                        named.push(id);
                    }
                }
                _ => {
                    let path = &notification.path;
                    tracing::warn!(path, "ignoring unreadable token change notification");
                }
            }
        }
        for id in named {
            self.reread(id).await?;
        }
        // Marked only once every token named is re-read: a failure re-reads them all next time.
        if let Some(last) = notifications.last() {
            progress.applied(last);
        }
        progress.purge(self.store.as_ref(), now).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::embedded::EmbeddedStore;

    fn config() -> DelegationTokenConfig {
        DelegationTokenConfig {
            secret_key: Some("secret".into()),
            ..DelegationTokenConfig::default()
        }
    }

    #[test]
    fn znode_is_kafkas_json() {
        let info = TokenInformation {
            token_id: "tok".into(),
            owner: KafkaPrincipal::user("alice"),
            requester: KafkaPrincipal::user("admin"),
            renewers: vec![KafkaPrincipal::user("bob")],
            issue_timestamp: 1,
            max_timestamp: 3,
            expiry_timestamp: 2,
        };
        let json: serde_json::Value =
            serde_json::from_slice(&znodes::encode(&to_znode(&info))).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"version":3,"owner":"User%3Aalice","tokenRequester":"User%3Aadmin",
                "renewers":["User%3Abob"],"issueTimestamp":1,"maxTimestamp":3,"expiryTimestamp":2,
                "tokenId":"tok"})
        );
        assert_eq!(
            from_znode("/p", &znodes::encode(&to_znode(&info))),
            Ok(info)
        );
        // Kafka 2.x wrote version 1 without the requester: the owner asked.
        let v1 = br#"{"version":1,"owner":"User%3Aalice","renewers":[],"issueTimestamp":1,"maxTimestamp":3,"expiryTimestamp":2,"tokenId":"old"}"#;
        let old = from_znode("/p", v1).unwrap();
        assert_eq!(old.requester, KafkaPrincipal::user("alice"));
        for bad in [
            &br#"{"version":4,"owner":"User%3Aa","tokenRequester":"User%3Aa","renewers":[],"issueTimestamp":1,"maxTimestamp":3,"expiryTimestamp":2,"tokenId":"t"}"#[..],
            br#"{"version":3,"owner":"alice","tokenRequester":"User%3Aa","renewers":[],"issueTimestamp":1,"maxTimestamp":3,"expiryTimestamp":2,"tokenId":"t"}"#,
            br#"{"version":3,"owner":"User%3Aa","renewers":[],"issueTimestamp":1,"maxTimestamp":3,"expiryTimestamp":2,"tokenId":"t"}"#,
            b"not json",
        ] {
            assert!(from_znode("/p", bad).is_err());
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_second_manager_follows_the_first_through_notifications() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn MetadataStore> = Arc::new(EmbeddedStore::open(dir.path()).unwrap());
        let a = TokenManager::new(store.clone(), config());
        let b = TokenManager::new(store.clone(), config());
        a.load().await.unwrap();
        b.load().await.unwrap();
        let alice = KafkaPrincipal::user("alice");
        let (info, hmac) = a
            .create(alice.clone(), alice.clone(), vec![], 0)
            .await
            .unwrap();
        assert_eq!(
            info.max_timestamp - info.issue_timestamp,
            config().max_lifetime_ms
        );
        assert_eq!(
            info.expiry_timestamp - info.issue_timestamp,
            config().expiry_time_ms
        );
        assert!(b.cache().get(&info.token_id).is_none());
        b.process_notifications(Instant::now()).await.unwrap();
        assert_eq!(b.cache().get(&info.token_id), Some(info.clone()));
        // Renewal by someone else is refused; by the owner it moves the expiry.
        assert_eq!(
            b.renew(&KafkaPrincipal::user("bob"), &hmac, 1000).await,
            Err(TokenError::OwnerMismatch)
        );
        let expiry = b.renew(&alice, &hmac, 1000).await.unwrap();
        a.process_notifications(Instant::now()).await.unwrap();
        assert_eq!(
            a.cache().get(&info.token_id).unwrap().expiry_timestamp,
            expiry
        );
        // Expired at once on a; gone from b after the notification.
        a.expire(&alice, &hmac, -1).await.unwrap();
        b.process_notifications(Instant::now()).await.unwrap();
        assert!(b.cache().get(&info.token_id).is_none());
        assert_eq!(
            b.renew(&alice, &hmac, 1000).await,
            Err(TokenError::NotFound)
        );
        assert!(
            store
                .get(&token_path(&info.token_id))
                .await
                .unwrap()
                .is_none()
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn disabled_without_a_secret() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn MetadataStore> = Arc::new(EmbeddedStore::open(dir.path()).unwrap());
        let m = TokenManager::new(store.clone(), DelegationTokenConfig::default());
        m.load().await.unwrap();
        let alice = KafkaPrincipal::user("alice");
        assert_eq!(
            m.create(alice.clone(), alice.clone(), vec![], 0)
                .await
                .err(),
            Some(TokenError::Disabled)
        );
        assert_eq!(m.renew(&alice, b"x", 0).await, Err(TokenError::Disabled));
        // Kafka creates no token paths when tokens are off.
        assert!(store.get(DELEGATION_TOKENS).await.unwrap().is_none());
    }
}
