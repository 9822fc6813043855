//! The `MetadataStore` trait: the znode semantics odradek needs from ZooKeeper (versions for
//! conditional writes, ephemeral and sequential nodes, change notifications), implemented by the
//! embedded store and, with `zookeeper.connect`, by a real ensemble.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use tokio::sync::broadcast;

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum StoreError {
    #[error("znode {0} does not exist")]
    NoNode(String),
    #[error("znode {0} already exists")]
    NodeExists(String),
    #[error("znode {0} changed since it was read (version mismatch)")]
    BadVersion(String),
    #[error("znode {0} has children")]
    NotEmpty(String),
    #[error("metadata store unavailable: {0}")]
    Unavailable(String),
    #[error("malformed data in znode {path}: {reason}")]
    BadData { path: String, reason: String },
}

pub type StoreResult<T> = Result<T, StoreError>;
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = StoreResult<T>> + Send + 'a>>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateMode {
    Persistent,
    /// Dies with the session that created it (a broker's registration, the controller).
    Ephemeral,
    /// ZooKeeper appends a 10-digit counter to the name.
    PersistentSequential,
}

/// ZooKeeper's `Stat`, reduced to what Kafka uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stat {
    /// Data version, the basis of conditional updates (a partition state's "partition epoch").
    pub version: i32,
    /// Creation transaction id: for `/brokers/ids/<id>` this is the broker epoch.
    pub czxid: i64,
    /// Session that owns an ephemeral node, 0 for a persistent one: lets a broker tell its own
    /// registration (kept across a reconnect) from another broker's.
    pub ephemeral_owner: i64,
}

/// A change to the tree, for the watches of the controller and the brokers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchEvent {
    /// The node was created, changed or deleted.
    NodeChanged(String),
    /// A child of the node was created or deleted.
    ChildrenChanged(String),
    /// The session was lost and a new one made: ephemeral nodes of the old session are gone,
    /// events may have been missed, so everything must be re-read. Watches are re-armed by the
    /// store before this is sent.
    SessionExpired,
}

pub trait MetadataStore: Send + Sync {
    /// Creates `path` (its parent must exist); returns the created path (sequential suffix
    /// included).
    fn create<'a>(
        &'a self,
        path: &'a str,
        data: Option<Vec<u8>>,
        mode: CreateMode,
    ) -> StoreFuture<'a, String>;
    /// Data and stat, or `None` if there is no such node.
    fn get<'a>(&'a self, path: &'a str) -> StoreFuture<'a, Option<(Option<Vec<u8>>, Stat)>>;
    /// Replaces the data if the version matches (`None`: any version).
    fn set<'a>(
        &'a self,
        path: &'a str,
        data: Option<Vec<u8>>,
        expected_version: Option<i32>,
    ) -> StoreFuture<'a, Stat>;
    fn delete<'a>(&'a self, path: &'a str, expected_version: Option<i32>) -> StoreFuture<'a, ()>;
    /// Child names (not paths), or `None` if there is no such node.
    fn children<'a>(&'a self, path: &'a str) -> StoreFuture<'a, Option<Vec<String>>>;
    /// Events of every armed watch from now on. A store may report changes nobody asked for
    /// (the embedded store reports all), so subscribers filter by path.
    fn subscribe(&self) -> broadcast::Receiver<WatchEvent>;
    /// Arms a watch on `path` itself (creation, data change, deletion). It stays armed: the
    /// store re-arms it after every event and after a new session, unlike ZooKeeper's one-shot
    /// watches. Arming twice is harmless.
    fn watch_node<'a>(&'a self, path: &'a str) -> StoreFuture<'a, ()>;
    /// Arms a watch on the children of `path` (which may not exist yet), kept armed likewise.
    fn watch_children<'a>(&'a self, path: &'a str) -> StoreFuture<'a, ()>;
    /// The current session's id, as found in `Stat::ephemeral_owner` of nodes it created.
    fn session_id(&self) -> i64;
    /// Up to `n` more sessions on the same store, for reading or writing many nodes in
    /// parallel when one session's requests are answered one after another (ZooKeeper's server
    /// takes one request of a connection per turn). Each sees every write committed before it
    /// was opened; none holds watches. Dropping one closes it. None where the store has no use
    /// for them (the embedded one answers from memory) or when they cannot be opened.
    fn more_sessions(&self, _n: usize) -> StoreFuture<'_, Vec<Arc<dyn MetadataStore>>> {
        Box::pin(async { Ok(Vec::new()) })
    }
}

/// Helpers built on the trait, shared by every implementation.
pub async fn create_recursive(
    store: &dyn MetadataStore,
    path: &str,
    data: Option<Vec<u8>>,
    mode: CreateMode,
) -> StoreResult<String> {
    match store.create(path, data.clone(), mode).await {
        Err(StoreError::NoNode(_)) => {
            if let Some((parent, _)) = path.rsplit_once('/')
                && !parent.is_empty()
            {
                ensure_path(store, parent).await?;
            }
            store.create(path, data, mode).await
        }
        other => other,
    }
}

/// Creates `path` and its ancestors as empty persistent nodes if missing.
pub async fn ensure_path(store: &dyn MetadataStore, path: &str) -> StoreResult<()> {
    let mut at = String::new();
    for part in path.split('/').filter(|p| !p.is_empty()) {
        at.push('/');
        at.push_str(part);
        match store.create(&at, None, CreateMode::Persistent).await {
            Ok(_) | Err(StoreError::NodeExists(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Deletes `path` and everything under it.
pub async fn delete_recursive(store: &dyn MetadataStore, path: &str) -> StoreResult<()> {
    let mut stack = vec![path.to_string()];
    let mut order = Vec::new();
    while let Some(p) = stack.pop() {
        if let Some(children) = store.children(&p).await? {
            for c in children {
                stack.push(format!("{p}/{c}"));
            }
        }
        order.push(p);
    }
    for p in order.into_iter().rev() {
        match store.delete(&p, None).await {
            Ok(()) | Err(StoreError::NoNode(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
