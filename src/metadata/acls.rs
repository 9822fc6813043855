//! ACLs in the metadata store, as Kafka's `AclAuthorizer` keeps them in ZooKeeper: one znode per
//! resource pattern (`/kafka-acl/<Type>/<name>` literal, `/kafka-acl-extended/prefixed/<Type>/
//! <prefix>` prefixed) holding its entries as JSON, and a sequential change notification per
//! write (`/kafka-acl-changes`, `/kafka-acl-extended-changes`) that makes every broker re-read
//! the one pattern it names.
//!
//! [`AclManager`] keeps a broker's [`Authorizer`] cache current from that tree (the model is
//! `replica::config_changes`) and makes the writes of CreateAcls and DeleteAcls. A pattern whose
//! znode cannot be read or parsed is cached as unreadable, which denies everything to everyone
//! but super users until it reads cleanly: a damaged ACL must never open access.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::{Mutex, watch};

use super::notifications::{ChangeRoot, Follower, NOTIFICATION_EXPIRY, catch_up};
use super::store::{CreateMode, MetadataStore, StoreError, create_recursive, ensure_path};
use crate::security::acl::{
    AccessControlEntry, AclBinding, AclBindingFilter, AclEntries, Authorizer, Operation,
    PatternType, Permission, ResourcePattern, ResourceType,
};

/// Literal patterns, by type directory.
pub const LITERAL_ROOT: &str = "/kafka-acl";
/// Prefixed patterns, by type directory (`ExtendedAclStore` for PatternType PREFIXED).
pub const PREFIXED_ROOT: &str = "/kafka-acl-extended/prefixed";
/// Notifications of changed literal patterns: plain text `TOPIC:orders`.
pub const LITERAL_CHANGES: &str = "/kafka-acl-changes";
/// Notifications of changed prefixed patterns: JSON.
pub const PREFIXED_CHANGES: &str = "/kafka-acl-extended-changes";
/// Sequential children of both change roots are named this plus ZooKeeper's 10-digit counter.
pub const CHANGE_PREFIX: &str = "acl_changes_";

/// Conditional writes that lost a race are retried this many times (`maxUpdateRetries`).
const MAX_WRITE_RETRIES: usize = 10;

fn root(pattern_type: PatternType) -> Option<&'static str> {
    match pattern_type {
        PatternType::Literal => Some(LITERAL_ROOT),
        PatternType::Prefixed => Some(PREFIXED_ROOT),
        _ => None,
    }
}

/// The znode of a pattern's ACLs (the name raw, not sanitized, as in Kafka).
pub fn resource_path(pattern: &ResourcePattern) -> Option<String> {
    root(pattern.pattern_type)
        .map(|r| format!("{r}/{}/{}", pattern.resource_type.dir_name(), pattern.name))
}

#[derive(Serialize)]
struct AclsOut<'a> {
    version: i32,
    acls: Vec<EntryOut<'a>>,
}

// Field order as Kafka's writers put it (`Acl.toMap`): principal, permissionType, operation, host.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct EntryOut<'a> {
    principal: &'a str,
    permission_type: &'static str,
    operation: &'static str,
    host: &'a str,
}

#[derive(Deserialize)]
struct AclsIn {
    version: i32,
    acls: Vec<EntryIn>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EntryIn {
    principal: String,
    permission_type: String,
    operation: String,
    host: String,
}

/// A pattern's znode data: `{"version":1,"acls":[...]}`.
pub fn encode_acls(acls: &[AccessControlEntry]) -> Vec<u8> {
    super::znodes::encode(&AclsOut {
        version: 1,
        acls: acls
            .iter()
            .map(|e| EntryOut {
                principal: &e.principal,
                permission_type: e.permission.name(),
                operation: e.operation.name(),
                host: &e.host,
            })
            .collect(),
    })
}

/// Reads a pattern's znode data as `AclEntry.fromBytes` does; anything it would refuse (another
/// version, an unknown operation or permission, a principal without a type) is an error.
pub fn decode_acls(path: &str, data: &[u8]) -> Result<Vec<AccessControlEntry>, StoreError> {
    let bad = |reason: String| StoreError::BadData {
        path: path.to_string(),
        reason,
    };
    // Kafka treats an empty node as having no ACLs.
    if data.is_empty() {
        return Ok(Vec::new());
    }
    let parsed: AclsIn = super::znodes::decode(path, data)?;
    if parsed.version != 1 {
        return Err(bad(format!("unsupported ACL version {}", parsed.version)));
    }
    let mut out: Vec<AccessControlEntry> = Vec::with_capacity(parsed.acls.len());
    for e in parsed.acls {
        if !e.principal.contains(':') {
            return Err(bad(format!("principal {:?} has no type", e.principal)));
        }
        let operation = Operation::from_name(&e.operation)
            .ok_or_else(|| bad(format!("unknown operation {:?}", e.operation)))?;
        let permission = Permission::from_name(&e.permission_type)
            .ok_or_else(|| bad(format!("unknown permission type {:?}", e.permission_type)))?;
        let entry = AccessControlEntry {
            principal: e.principal,
            host: e.host,
            operation,
            permission,
        };
        // A set in Kafka: duplicates collapse.
        if !out.contains(&entry) {
            out.push(entry);
        }
    }
    Ok(out)
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PrefixedChange {
    version: i32,
    resource_type: String,
    name: String,
    pattern_type: String,
}

/// The change root and notification data for a changed pattern (Kafka 3.9's spelling: the
/// Java enum names).
pub fn encode_change(pattern: &ResourcePattern) -> Option<(&'static str, Vec<u8>)> {
    match pattern.pattern_type {
        PatternType::Literal => Some((
            LITERAL_CHANGES,
            format!("{}:{}", pattern.resource_type.enum_name(), pattern.name).into_bytes(),
        )),
        PatternType::Prefixed => Some((
            PREFIXED_CHANGES,
            super::znodes::encode(&PrefixedChange {
                version: 1,
                resource_type: pattern.resource_type.enum_name().to_string(),
                name: pattern.name.clone(),
                pattern_type: pattern.pattern_type.enum_name().to_string(),
            }),
        )),
        _ => None,
    }
}

/// The pattern a notification under `change_root` names. Both Kafka 3.9's spelling
/// (`TRANSACTIONAL_ID:tx`) and Kafka 2.x's (`TransactionalId:tx`) are read.
pub fn decode_change(change_root: &str, data: &[u8]) -> Result<ResourcePattern, String> {
    let text = std::str::from_utf8(data).map_err(|e| e.to_string())?;
    if change_root == LITERAL_CHANGES {
        let (t, name) = text
            .split_once(':')
            .ok_or_else(|| format!("expected ResourceType:name, got {text:?}"))?;
        let t = ResourceType::from_name(t).ok_or_else(|| format!("unknown resource type {t:?}"))?;
        return Ok(ResourcePattern::new(t, name, PatternType::Literal));
    }
    let change: PrefixedChange = serde_json::from_str(text).map_err(|e| e.to_string())?;
    if change.version > 1 {
        return Err(format!("unsupported change version {}", change.version));
    }
    let t = ResourceType::from_name(&change.resource_type)
        .ok_or_else(|| format!("unknown resource type {:?}", change.resource_type))?;
    let p = PatternType::from_name(&change.pattern_type)
        .ok_or_else(|| format!("unknown pattern type {:?}", change.pattern_type))?;
    Ok(ResourcePattern::new(t, change.name, p))
}

/// How far this broker has applied each change root.
fn change_roots(expiry: Duration) -> [ChangeRoot; 2] {
    [LITERAL_CHANGES, PREFIXED_CHANGES].map(|path| ChangeRoot::new(path, CHANGE_PREFIX, expiry))
}

/// The outcome of one DeleteAcls filter: each ACL it removed, with the error of its pattern's
/// write if that failed.
pub type Deleted = Vec<(AclBinding, Option<StoreError>)>;

pub struct AclManager {
    store: Arc<dyn MetadataStore>,
    authorizer: Arc<Authorizer>,
    /// Held across each read-and-cache of a pattern and each write: the cache then always
    /// ends with the newest content, whichever of the API and the listener wrote it last.
    progress: Mutex<[ChangeRoot; 2]>,
    expiry: Duration,
}

impl AclManager {
    pub fn new(store: Arc<dyn MetadataStore>, authorizer: Arc<Authorizer>) -> Self {
        Self::with_expiry(store, authorizer, NOTIFICATION_EXPIRY)
    }

    /// Like `new`, with notifications expiring after `expiry` (tests).
    pub fn with_expiry(
        store: Arc<dyn MetadataStore>,
        authorizer: Arc<Authorizer>,
        expiry: Duration,
    ) -> Self {
        AclManager {
            store,
            authorizer,
            progress: Mutex::new(change_roots(expiry)),
            expiry,
        }
    }

    pub fn authorizer(&self) -> &Arc<Authorizer> {
        &self.authorizer
    }

    /// Start-up, before the listeners open: the roots Kafka's authorizer creates, the watches
    /// on both change roots, then every pattern's ACLs.
    pub async fn load(&self) -> Result<(), StoreError> {
        for root in [LITERAL_ROOT, PREFIXED_ROOT] {
            for t in ResourceType::CONCRETE {
                ensure_path(self.store.as_ref(), &format!("{root}/{}", t.dir_name())).await?;
            }
        }
        for changes in [LITERAL_CHANGES, PREFIXED_CHANGES] {
            ensure_path(self.store.as_ref(), changes).await?;
            self.store.watch_children(changes).await?;
        }
        let mut progress = self.progress.lock().await;
        self.reload_all().await?;
        // Notifications already there are applied again by `run`: they may be newer than
        // what was just read.
        *progress = change_roots(self.expiry);
        Ok(())
    }

    /// Every pattern under both roots, read into a fresh cache. Unknown type directories are
    /// skipped with a warning, as Kafka does.
    async fn reload_all(&self) -> Result<(), StoreError> {
        let mut all = Vec::new();
        for (root, pattern_type) in [
            (LITERAL_ROOT, PatternType::Literal),
            (PREFIXED_ROOT, PatternType::Prefixed),
        ] {
            for dir in self.store.children(root).await?.unwrap_or_default() {
                let Some(t) = ResourceType::from_name(&dir) else {
                    // `/kafka-acl-extended/prefixed` is the only extended root; other pattern
                    // directories would not be under it.
                    tracing::warn!(root, dir, "ignoring ACLs of an unknown resource type");
                    continue;
                };
                let names = self
                    .store
                    .children(&format!("{root}/{dir}"))
                    .await?
                    .unwrap_or_default();
                for name in names {
                    let path = format!("{root}/{dir}/{name}");
                    let entries = self.read_entries(&path).await?;
                    all.push((ResourcePattern::new(t, name, pattern_type), entries));
                }
            }
        }
        tracing::info!(patterns = all.len(), "loaded ACLs");
        self.authorizer.replace_all(all);
        Ok(())
    }

    /// One pattern's entries from its znode path; a missing node has none, a malformed one is
    /// unreadable (logged). Only an unavailable store is an error.
    async fn read_entries(&self, path: &str) -> Result<AclEntries, StoreError> {
        match self.store.get(path).await? {
            None | Some((None, _)) => Ok(AclEntries::default()),
            Some((Some(data), _)) => match decode_acls(path, &data) {
                Ok(acls) => Ok(AclEntries::readable(acls)),
                Err(e) => {
                    tracing::error!(error = %e, "unreadable ACL znode: its resource is denied to everyone until it is fixed");
                    Ok(AclEntries::unreadable())
                }
            },
        }
    }

    /// Re-reads one pattern into the cache (a notification named it).
    async fn refresh(&self, pattern: &ResourcePattern) -> Result<(), StoreError> {
        let Some(path) = resource_path(pattern) else {
            return Ok(());
        };
        let entries = self.read_entries(&path).await?;
        self.authorizer.set_entries(pattern, entries);
        Ok(())
    }

    /// Watches both change roots until `shutdown`, re-reading each pattern a new notification
    /// names; after a lost session, everything is read again.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        const ROOTS: &[&str] = &[LITERAL_CHANGES, PREFIXED_CHANGES];
        let mut follower = Follower::new(self.store.as_ref(), ROOTS, "ACL changes");
        while let Some(full) = follower.next(self.store.as_ref(), &mut shutdown).await {
            let outcome = catch_up(
                full,
                &self.progress,
                || self.reload_all(),
                || self.process_notifications(Instant::now()),
            )
            .await;
            follower.done(outcome);
        }
    }

    /// One pass over both change roots: each notification newer than the last applied
    /// re-reads its pattern; expired ones are deleted.
    pub async fn process_notifications(&self, now: Instant) -> Result<(), StoreError> {
        let mut progress = self.progress.lock().await;
        for root in progress.iter_mut() {
            for notification in root.unapplied(self.store.as_ref(), now).await? {
                if let Some(data) = &notification.data {
                    match decode_change(root.path(), data) {
                        Ok(pattern) => self.refresh(&pattern).await?,
                        Err(e) => {
                            let path = &notification.path;
                            tracing::warn!(path, error = %e, "ignoring unreadable ACL change notification");
                        }
                    }
                }
                root.applied(&notification);
            }
            root.purge(self.store.as_ref(), now).await?;
        }
        Ok(())
    }

    /// Adds ACLs (CreateAcls): one write per pattern, whatever the number of its entries.
    /// Returns each binding's outcome, in order. An ACL that already exists is a success.
    pub async fn create(&self, bindings: &[AclBinding]) -> Vec<Result<(), StoreError>> {
        let mut by_pattern: Vec<(ResourcePattern, Vec<usize>)> = Vec::new();
        for (i, b) in bindings.iter().enumerate() {
            match by_pattern.iter_mut().find(|(p, _)| *p == b.pattern) {
                Some((_, members)) => members.push(i),
                None => by_pattern.push((b.pattern.clone(), vec![i])),
            }
        }
        let mut results: Vec<Result<(), StoreError>> = vec![Ok(()); bindings.len()];
        for (pattern, members) in by_pattern {
            let outcome = self
                .update(&pattern, |acls| {
                    for &i in &members {
                        if !acls.contains(&bindings[i].entry) {
                            acls.push(bindings[i].entry.clone());
                        }
                    }
                })
                .await;
            if let Err(e) = outcome {
                for &i in &members {
                    results[i] = Err(e.clone());
                }
            }
        }
        results
    }

    /// Removes the ACLs each filter matches (DeleteAcls), over every cached pattern plus the
    /// patterns fully specified filters name. Returns, per filter, the ACLs removed.
    pub async fn delete(&self, filters: &[AclBindingFilter]) -> Vec<Deleted> {
        let mut patterns: BTreeSet<ResourcePattern> = BTreeSet::new();
        for f in filters {
            patterns.extend(self.authorizer.patterns(f));
            patterns.extend(f.pattern.exact_patterns());
        }
        let mut results: Vec<Deleted> = vec![Vec::new(); filters.len()];
        for pattern in patterns {
            let applies: Vec<usize> = (0..filters.len())
                .filter(|&i| filters[i].pattern.matches(&pattern))
                .collect();
            let mut removed = Vec::new();
            let outcome = self
                .update(&pattern, |acls| {
                    removed.clear();
                    acls.retain(|e| {
                        let gone = applies.iter().any(|&i| filters[i].entry.matches(e));
                        if gone {
                            removed.push(e.clone());
                        }
                        !gone
                    });
                })
                .await;
            let error = outcome.err();
            if error.is_some() {
                // Nothing was removed; report what the cache says would have been.
                removed = self.authorizer.entries(&pattern).acls;
                removed.retain(|e| applies.iter().any(|&i| filters[i].entry.matches(e)));
            }
            for entry in removed {
                for &i in &applies {
                    if filters[i].entry.matches(&entry) {
                        results[i].push((
                            AclBinding {
                                pattern: pattern.clone(),
                                entry: entry.clone(),
                            },
                            error.clone(),
                        ));
                    }
                }
            }
        }
        results
    }

    /// `updateResourceAcls`: read the pattern's znode, change its entries, write them back
    /// conditionally on the version read (create, set, or delete when none are left), and on
    /// a lost race start over, up to [`MAX_WRITE_RETRIES`] times. A change that changed
    /// something updates this broker's cache at once and notifies every broker.
    async fn update(
        &self,
        pattern: &ResourcePattern,
        mut change: impl FnMut(&mut Vec<AccessControlEntry>),
    ) -> Result<(), StoreError> {
        let path = resource_path(pattern).ok_or_else(|| StoreError::BadData {
            path: pattern.to_string(),
            reason: "only literal and prefixed patterns are stored".into(),
        })?;
        let _guard = self.progress.lock().await;
        let mut attempt = 0;
        let acls = loop {
            let (current, version) = match self.store.get(&path).await? {
                None => (Vec::new(), None),
                Some((data, stat)) => (
                    decode_acls(&path, data.as_deref().unwrap_or_default())?,
                    Some(stat.version),
                ),
            };
            let mut acls = current.clone();
            change(&mut acls);
            if acls == current {
                return Ok(());
            }
            let written = match (acls.is_empty(), version) {
                (true, Some(v)) => self.store.delete(&path, Some(v)).await,
                (true, None) => Ok(()),
                (false, Some(v)) => self
                    .store
                    .set(&path, Some(encode_acls(&acls)), Some(v))
                    .await
                    .map(|_| ()),
                (false, None) => create_recursive(
                    self.store.as_ref(),
                    &path,
                    Some(encode_acls(&acls)),
                    CreateMode::Persistent,
                )
                .await
                .map(|_| ()),
            };
            match written {
                Ok(()) => break acls,
                Err(
                    StoreError::BadVersion(_) | StoreError::NoNode(_) | StoreError::NodeExists(_),
                ) if attempt < MAX_WRITE_RETRIES => {
                    attempt += 1;
                    // Kafka backs off 100-150 ms before reading again.
                    let jitter = getrandom::u32().unwrap_or(0) % 51;
                    tokio::time::sleep(Duration::from_millis(100 + u64::from(jitter))).await;
                }
                Err(e) => return Err(e),
            }
        };
        self.authorizer
            .set_entries(pattern, AclEntries::readable(acls));
        if let Some((changes, data)) = encode_change(pattern) {
            create_recursive(
                self.store.as_ref(),
                &format!("{changes}/{CHANGE_PREFIX}"),
                Some(data),
                CreateMode::PersistentSequential,
            )
            .await?;
        }
        tracing::info!(pattern = %pattern, "stored ACL change");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::embedded::EmbeddedStore;
    use crate::security::KafkaPrincipal;

    fn ace(principal: &str, operation: Operation) -> AccessControlEntry {
        AccessControlEntry {
            principal: principal.into(),
            host: "*".into(),
            operation,
            permission: Permission::Allow,
        }
    }

    #[test]
    fn znode_json_is_kafkas() {
        let data = encode_acls(&[ace("User:alice", Operation::Read)]);
        assert_eq!(
            std::str::from_utf8(&data).unwrap(),
            r#"{"version":1,"acls":[{"principal":"User:alice","permissionType":"Allow","operation":"Read","host":"*"}]}"#
        );
        let path = "/kafka-acl/Topic/t";
        assert_eq!(
            decode_acls(path, &data).unwrap(),
            vec![ace("User:alice", Operation::Read)]
        );
        // Key order does not matter, upper case without underscores is read too.
        let other = br#"{"acls":[{"host":"10.0.0.1","operation":"DESCRIBECONFIGS","principal":"User:bob","permissionType":"DENY"}],"version":1}"#;
        let read = decode_acls(path, other).unwrap();
        assert_eq!(read[0].operation, Operation::DescribeConfigs);
        assert_eq!(read[0].permission, Permission::Deny);
        assert_eq!(read[0].host, "10.0.0.1");
        for bad in [
            &br#"{"version":2,"acls":[]}"#[..],
            br#"{"version":1,"acls":[{"principal":"alice","permissionType":"Allow","operation":"Read","host":"*"}]}"#,
            br#"{"version":1,"acls":[{"principal":"User:a","permissionType":"Maybe","operation":"Read","host":"*"}]}"#,
            br#"{"version":1,"acls":[{"principal":"User:a","permissionType":"Allow","operation":"Any","host":"*"}]}"#,
            br#"{"version":1,"acls":[{"principal":"User:a"}]}"#,
            b"{not json",
        ] {
            assert!(decode_acls(path, bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn change_notifications_are_kafkas_and_both_spellings_are_read() {
        let tx = ResourcePattern::new(ResourceType::TransactionalId, "tx-1", PatternType::Literal);
        let (root, data) = encode_change(&tx).unwrap();
        assert_eq!(
            (root, data.as_slice()),
            (LITERAL_CHANGES, &b"TRANSACTIONAL_ID:tx-1"[..])
        );
        assert_eq!(decode_change(LITERAL_CHANGES, &data).unwrap(), tx);
        assert_eq!(
            decode_change(LITERAL_CHANGES, b"TransactionalId:tx-1").unwrap(),
            tx
        );
        let odd = ResourcePattern::new(ResourceType::Topic, "a:b", PatternType::Literal);
        assert_eq!(decode_change(LITERAL_CHANGES, b"Topic:a:b").unwrap(), odd);
        let pre = ResourcePattern::new(ResourceType::Topic, "orders-", PatternType::Prefixed);
        let (root, data) = encode_change(&pre).unwrap();
        assert_eq!(root, PREFIXED_CHANGES);
        assert_eq!(
            std::str::from_utf8(&data).unwrap(),
            r#"{"version":1,"resourceType":"TOPIC","name":"orders-","patternType":"PREFIXED"}"#
        );
        assert_eq!(decode_change(PREFIXED_CHANGES, &data).unwrap(), pre);
        assert_eq!(
            decode_change(
                PREFIXED_CHANGES,
                br#"{"version":1,"resourceType":"Topic","name":"orders-","patternType":"PREFIXED"}"#
            )
            .unwrap(),
            pre
        );
        assert!(
            decode_change(
                PREFIXED_CHANGES,
                br#"{"version":2,"resourceType":"TOPIC","name":"x","patternType":"PREFIXED"}"#
            )
            .is_err()
        );
        assert!(decode_change(LITERAL_CHANGES, b"Nothing:x").is_err());
        assert!(decode_change(LITERAL_CHANGES, b"no-separator").is_err());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn writes_update_cache_store_and_notify_and_expired_notifications_go() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn MetadataStore> = Arc::new(EmbeddedStore::open(dir.path()).unwrap());
        let authorizer = Arc::new(Authorizer::new(vec![], false));
        let m =
            AclManager::with_expiry(store.clone(), authorizer.clone(), Duration::from_secs(900));
        m.load().await.unwrap();
        assert_eq!(
            store.children(LITERAL_ROOT).await.unwrap().unwrap().len(),
            6,
            "the six type directories"
        );
        let pattern = ResourcePattern::new(ResourceType::Topic, "t", PatternType::Literal);
        let binding = AclBinding {
            pattern: pattern.clone(),
            entry: ace("User:alice", Operation::Read),
        };
        let results = m.create(&[binding.clone(), binding.clone()]).await;
        assert!(results.iter().all(Result::is_ok));
        let alice = KafkaPrincipal::user("alice");
        assert!(authorizer.authorize(&alice, "h", Operation::Read, ResourceType::Topic, "t"));
        let (data, _) = store.get("/kafka-acl/Topic/t").await.unwrap().unwrap();
        assert_eq!(decode_acls("p", &data.unwrap()).unwrap().len(), 1);
        let changes = store.children(LITERAL_CHANGES).await.unwrap().unwrap();
        assert_eq!(changes, vec!["acl_changes_0000000000".to_string()]);

        let deleted = m.delete(&[AclBindingFilter::any()]).await;
        assert_eq!(deleted[0].len(), 1);
        assert!(deleted[0][0].1.is_none());
        assert_eq!(store.get("/kafka-acl/Topic/t").await.unwrap(), None);
        assert!(!authorizer.authorize(&alice, "h", Operation::Read, ResourceType::Topic, "t"));
        assert_eq!(m.delete(&[AclBindingFilter::any()]).await, vec![Vec::new()]);

        let start = Instant::now();
        m.process_notifications(start).await.unwrap();
        m.process_notifications(start + Duration::from_secs(901))
            .await
            .unwrap();
        assert!(
            store
                .children(LITERAL_CHANGES)
                .await
                .unwrap()
                .unwrap()
                .is_empty()
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn acls_in_the_store_are_loaded_and_changes_by_others_followed() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn MetadataStore> = Arc::new(EmbeddedStore::open(dir.path()).unwrap());
        let write = |path: &'static str, data: &'static [u8]| {
            let store = store.clone();
            async move {
                if store.get(path).await.unwrap().is_some() {
                    store.set(path, Some(data.to_vec()), None).await.unwrap();
                } else {
                    create_recursive(
                        store.as_ref(),
                        path,
                        Some(data.to_vec()),
                        CreateMode::Persistent,
                    )
                    .await
                    .unwrap();
                }
            }
        };
        // Written before the broker starts, in Kafka 2.4's spelling: loaded at start-up.
        write(
            "/kafka-acl/TransactionalId/tx-1",
            br#"{"version":1,"acls":[{"principal":"User:alice","permissionType":"Allow","operation":"Write","host":"*"}]}"#,
        )
        .await;
        // An unknown type directory is skipped, not fatal.
        write("/kafka-acl/Nonsense/x", b"{}").await;
        let authorizer = Arc::new(Authorizer::new(vec![], false));
        let m = Arc::new(AclManager::new(store.clone(), authorizer.clone()));
        m.load().await.unwrap();
        let alice = KafkaPrincipal::user("alice");
        let may = |op, t, name: &str| authorizer.authorize(&alice, "127.0.0.1", op, t, name);
        assert!(may(Operation::Write, ResourceType::TransactionalId, "tx-1"));

        let (_tx, rx) = watch::channel(false);
        let task = tokio::spawn(m.clone().run(rx));
        let until = |what: &'static str, check: Box<dyn Fn() -> bool + Send>| async move {
            let deadline = Instant::now() + Duration::from_secs(10);
            while !check() {
                assert!(Instant::now() < deadline, "{what}");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        };
        write(
            "/kafka-acl-extended/prefixed/Topic/ord",
            br#"{"version":1,"acls":[{"principal":"User:*","permissionType":"Allow","operation":"Read","host":"*"}]}"#,
        )
        .await;
        store
            .create(
                "/kafka-acl-extended-changes/acl_changes_",
                Some(br#"{"version":1,"resourceType":"TOPIC","name":"ord","patternType":"PREFIXED"}"#.to_vec()),
                CreateMode::PersistentSequential,
            )
            .await
            .unwrap();
        let a = authorizer.clone();
        until(
            "the prefixed ACL is applied",
            Box::new(move || {
                a.authorize(
                    &KafkaPrincipal::user("alice"),
                    "h",
                    Operation::Read,
                    ResourceType::Topic,
                    "orders",
                )
            }),
        )
        .await;
        // A malformed node denies its resource to everyone; the others are unaffected.
        write(
            "/kafka-acl/TransactionalId/tx-1",
            b"{\"version\":1,\"acls\":[",
        )
        .await;
        store
            .create(
                "/kafka-acl-changes/acl_changes_",
                Some(b"TRANSACTIONAL_ID:tx-1".to_vec()),
                CreateMode::PersistentSequential,
            )
            .await
            .unwrap();
        let a = authorizer.clone();
        until(
            "the malformed node denies",
            Box::new(move || {
                !a.authorize(
                    &KafkaPrincipal::user("alice"),
                    "h",
                    Operation::Write,
                    ResourceType::TransactionalId,
                    "tx-1",
                )
            }),
        )
        .await;
        assert!(may(Operation::Read, ResourceType::Topic, "orders"));
        task.abort();
    }
}
