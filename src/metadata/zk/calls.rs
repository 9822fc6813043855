//! The store's data calls (create, get, set, delete, children) on the client, each retried
//! across connection losses until the connection timeout, and how a write whose answer was lost
//! is told apart from one that failed. Separate from the session (`mod.rs`) and the watches
//! (`watches.rs`): these are the requests, the others the state they run in.

use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::time::Instant;
use zookeeper_async::{Acl, CreateMode as ZkCreateMode, ZkError, ZkResult};

use super::paths::{parent_of, validate_path};
use super::{Inner, Link};
use crate::metadata::store::{CreateMode, Stat, StoreError, StoreResult};

/// ZooKeeper closes the connection on a request larger than `jute.maxbuffer` (1 MiB less one byte
/// by default), which would look like a connection loss and be retried until the deadline. Data
/// is refused before that, leaving room for the path and the request header.
const MAX_DATA_BYTES: usize = 1024 * 1024 - 4096;

/// Pause between attempts of a call, so that a connection that fails at once is not hammered.
const RETRY_PAUSE: Duration = Duration::from_millis(20);

fn retryable(e: ZkError) -> bool {
    matches!(
        e,
        ZkError::ConnectionLoss
            | ZkError::OperationTimeout
            | ZkError::SessionExpired
            | ZkError::SessionMoved
    )
}

fn to_stat(s: &zookeeper_async::Stat) -> Stat {
    Stat {
        version: s.version,
        czxid: s.czxid,
        ephemeral_owner: s.ephemeral_owner,
    }
}

/// ZooKeeper's data as the trait sees it: the client cannot tell null from empty.
fn from_zk_data(data: Vec<u8>) -> Option<Vec<u8>> {
    (!data.is_empty()).then_some(data)
}

/// The outcome of a call retried across connection losses.
pub(super) struct Outcome<T> {
    pub(super) result: ZkResult<T>,
    /// An earlier attempt got no answer: a write may have been applied by it.
    pub(super) ambiguous: bool,
}

impl Inner {
    pub(super) fn unavailable(&self, what: &str) -> StoreError {
        if self.closed.load(Ordering::Relaxed) {
            return StoreError::Unavailable(format!("ZooKeeper {}: store closed", self.connect));
        }
        StoreError::Unavailable(format!(
            "ZooKeeper {}: {what} not answered within {} ms",
            self.connect,
            self.connection_timeout.as_millis()
        ))
    }

    pub(super) fn other_error(&self, what: &str, e: ZkError) -> StoreError {
        StoreError::Unavailable(format!("ZooKeeper {}: {what}: {e:?}", self.connect))
    }

    /// Waits until the client has a session again, or the deadline.
    async fn wait_connected(&self, deadline: Instant) -> bool {
        let mut link = self.link.subscribe();
        let connected = tokio::time::timeout_at(
            deadline,
            link.wait_for(|l| matches!(l, Link::Connected | Link::Starting | Link::Closed)),
        )
        .await;
        matches!(connected, Ok(Ok(l)) if *l != Link::Closed)
    }

    /// Runs `op` until it gets an answer that is not a connection problem, or the connection
    /// timeout runs out (then `Unavailable`).
    pub(super) async fn retrying<T, F, Fut>(&self, what: &str, mut op: F) -> StoreResult<Outcome<T>>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = ZkResult<T>>,
    {
        let deadline = Instant::now() + self.connection_timeout;
        let mut ambiguous = false;
        loop {
            if self.closed.load(Ordering::Relaxed) {
                return Err(self.unavailable(what));
            }
            match tokio::time::timeout_at(deadline, op()).await {
                Ok(Err(e)) if retryable(e) => ambiguous = true,
                Ok(result) => return Ok(Outcome { result, ambiguous }),
                Err(_) => return Err(self.unavailable(what)),
            }
            tokio::time::sleep(RETRY_PAUSE).await;
            if !self.wait_connected(deadline).await {
                return Err(self.unavailable(what));
            }
        }
    }

    pub(super) async fn create(
        &self,
        path: &str,
        data: Option<Vec<u8>>,
        mode: CreateMode,
    ) -> StoreResult<String> {
        validate_path(path)?;
        let data = data.unwrap_or_default();
        check_size(path, &data)?;
        let full = self.full_path(path);
        let zk_mode = match mode {
            CreateMode::Persistent => ZkCreateMode::Persistent,
            CreateMode::Ephemeral => ZkCreateMode::Ephemeral,
            CreateMode::PersistentSequential => ZkCreateMode::PersistentSequential,
        };
        let generation = self.session.generation.load(Ordering::SeqCst);
        let outcome = self
            .retrying("create", || {
                self.zk
                    .create2(&full, data.clone(), Acl::open_unsafe().clone(), zk_mode)
            })
            .await?;
        match outcome.result {
            Ok((created, stat)) => {
                if mode == CreateMode::Ephemeral {
                    self.learn_session(generation, stat.ephemeral_owner);
                }
                Ok(self.below_chroot(&created).unwrap_or(created))
            }
            // A sequential create never meets an existing node; retried after a lost answer it
            // may leave a second node (harmless for Kafka's notification queues, whose readers
            // re-read the state the notification points to).
            Err(ZkError::NodeExists) if outcome.ambiguous => {
                // The lost attempt may have created it: ours if it is our ephemeral, or a
                // persistent node holding our data that nobody has changed since.
                let existing = self.get(path).await?;
                let ours = existing.is_some_and(|(d, stat)| {
                    let same_data = d.unwrap_or_default() == data;
                    match mode {
                        CreateMode::Ephemeral => {
                            stat.ephemeral_owner != 0
                                && stat.ephemeral_owner == self.session.id.load(Ordering::SeqCst)
                        }
                        _ => stat.ephemeral_owner == 0 && stat.version == 0 && same_data,
                    }
                });
                if ours {
                    Ok(path.to_string())
                } else {
                    Err(StoreError::NodeExists(path.to_string()))
                }
            }
            Err(ZkError::NodeExists) => Err(StoreError::NodeExists(path.to_string())),
            Err(ZkError::NoNode) => Err(StoreError::NoNode(parent_of(path).to_string())),
            Err(ZkError::NoChildrenForEphemerals) => {
                Err(StoreError::NoNode(format!("{path} (ephemeral parent)")))
            }
            Err(e) => Err(self.other_error(&format!("create {path}"), e)),
        }
    }

    pub(super) async fn get(&self, path: &str) -> StoreResult<Option<(Option<Vec<u8>>, Stat)>> {
        validate_path(path)?;
        let full = self.full_path(path);
        match self
            .retrying("get", || self.zk.get_data(&full, false))
            .await?
            .result
        {
            Ok((data, stat)) => Ok(Some((from_zk_data(data), to_stat(&stat)))),
            Err(ZkError::NoNode) => Ok(None),
            Err(e) => Err(self.other_error(&format!("get {path}"), e)),
        }
    }

    pub(super) async fn set(
        &self,
        path: &str,
        data: Option<Vec<u8>>,
        expected_version: Option<i32>,
    ) -> StoreResult<Stat> {
        validate_path(path)?;
        let data = data.unwrap_or_default();
        check_size(path, &data)?;
        let full = self.full_path(path);
        let outcome = self
            .retrying("set", || {
                self.zk.set_data(&full, data.clone(), expected_version)
            })
            .await?;
        match outcome.result {
            Ok(stat) => Ok(to_stat(&stat)),
            Err(ZkError::BadVersion) if outcome.ambiguous => {
                // The lost attempt may have applied this very write: then the node is one
                // version past the expected one and holds our data.
                match (self.get(path).await?, expected_version) {
                    (Some((d, stat)), Some(v))
                        if stat.version == v.wrapping_add(1)
                            && d.as_deref().unwrap_or_default() == data.as_slice() =>
                    {
                        Ok(stat)
                    }
                    _ => Err(StoreError::BadVersion(path.to_string())),
                }
            }
            Err(ZkError::BadVersion) => Err(StoreError::BadVersion(path.to_string())),
            Err(ZkError::NoNode) => Err(StoreError::NoNode(path.to_string())),
            Err(e) => Err(self.other_error(&format!("set {path}"), e)),
        }
    }

    pub(super) async fn delete(
        &self,
        path: &str,
        expected_version: Option<i32>,
    ) -> StoreResult<()> {
        validate_path(path)?;
        let full = self.full_path(path);
        let outcome = self
            .retrying("delete", || self.zk.delete(&full, expected_version))
            .await?;
        match outcome.result {
            Ok(()) => Ok(()),
            // The lost attempt may have deleted it; either way the node is gone, which is what
            // the caller asked for.
            Err(ZkError::NoNode) if outcome.ambiguous => Ok(()),
            Err(ZkError::NoNode) => Err(StoreError::NoNode(path.to_string())),
            Err(ZkError::BadVersion) => Err(StoreError::BadVersion(path.to_string())),
            Err(ZkError::NotEmpty) => Err(StoreError::NotEmpty(path.to_string())),
            Err(e) => Err(self.other_error(&format!("delete {path}"), e)),
        }
    }

    pub(super) async fn children(&self, path: &str) -> StoreResult<Option<Vec<String>>> {
        validate_path(path)?;
        let full = self.full_path(path);
        match self
            .retrying("children", || self.zk.get_children(&full, false))
            .await?
            .result
        {
            Ok(mut names) => {
                // ZooKeeper lists in no particular order; sorted, the listing is the same on
                // every call and on every store.
                names.sort_unstable();
                Ok(Some(names))
            }
            Err(ZkError::NoNode) => Ok(None),
            Err(e) => Err(self.other_error(&format!("children {path}"), e)),
        }
    }
}

fn check_size(path: &str, data: &[u8]) -> StoreResult<()> {
    if data.len() > MAX_DATA_BYTES {
        return Err(StoreError::BadData {
            path: path.to_string(),
            reason: format!(
                "{} bytes, more than ZooKeeper accepts ({MAX_DATA_BYTES})",
                data.len()
            ),
        });
    }
    Ok(())
}
