//! ZooKeeper's one-shot, per-connection watches made lasting: the registry of every watch asked
//! for, and the supervisor task that alone arms them, re-arms them after each event and each
//! reconnect, and reports what changed while none was armed. Separate from the data calls
//! because it is a task with its own state, fed by the client's callbacks.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::sync::{mpsc, oneshot};
use zookeeper_async::{WatchedEventType, ZkError, ZkResult, ZkState};

use super::paths::validate_path;
use super::{Inner, ZkStore};
use crate::metadata::store::{StoreResult, WatchEvent};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum WatchKind {
    Node,
    Children,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct WatchKey {
    kind: WatchKind,
    /// As the caller gave it (below the chroot).
    path: String,
}

/// What a watch last saw of its node, to tell after a reconnect whether something changed while
/// no watch was armed on the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Seen {
    Unknown,
    Absent,
    /// `mzxid` for a node watch, `pzxid` for a children watch.
    At(i64),
}

pub(super) struct Armed {
    /// Set on the server for the current connection (ZooKeeper keeps one watch per path and
    /// kind per connection, however often it is set).
    armed: bool,
    seen: Seen,
}

pub(super) enum Msg {
    State(ZkState),
    /// A server notification, with the path as the server gave it (chroot included).
    Fired {
        path: String,
        event: WatchedEventType,
    },
    Arm {
        key: WatchKey,
        reply: oneshot::Sender<StoreResult<()>>,
    },
}

/// Owns the watch registry; the only place that arms watches, so arming, re-arming after an
/// event and re-arming after a reconnect never race each other.
pub(super) struct Supervisor {
    pub(super) inner: Arc<Inner>,
    pub(super) watches: HashMap<WatchKey, Armed>,
    pub(super) session_lost: bool,
}

/// How often a children watch may find its node appearing and vanishing again while it is
/// being armed before the arming gives up (to be retried at the next reconnect or request).
const ARM_ATTEMPTS: usize = 16;

/// Watch requests armed together at most: the requests queued when the supervisor gets to
/// them go out pipelined, so that a new controller watching hundreds of topics waits for one
/// round trip rather than hundreds (each far longer on a loaded machine).
const ARM_BATCH: usize = 1024;

type ArmReply = oneshot::Sender<StoreResult<()>>;

impl Supervisor {
    pub(super) async fn run(mut self, mut from_client: mpsc::UnboundedReceiver<Msg>) {
        // A message taken from the queue while gathering arms, handled next.
        let mut next: Option<Msg> = None;
        loop {
            let msg = match next.take() {
                Some(m) => m,
                None => match from_client.recv().await {
                    Some(m) => m,
                    None => return,
                },
            };
            match msg {
                Msg::State(state) => {
                    if !self.on_state(state).await {
                        return;
                    }
                }
                Msg::Fired { path, event } => self.on_fired(&path, event).await,
                Msg::Arm { key, reply } => {
                    let mut batch = vec![(key, reply)];
                    // Only arms queued right behind: anything else keeps its place in line.
                    while batch.len() < ARM_BATCH {
                        match from_client.try_recv() {
                            Ok(Msg::Arm { key, reply }) => batch.push((key, reply)),
                            Ok(other) => {
                                next = Some(other);
                                break;
                            }
                            Err(_) => break,
                        }
                    }
                    self.on_arms(batch).await;
                }
            }
        }
    }

    /// Returns false once the client is closed for good.
    async fn on_state(&mut self, state: ZkState) -> bool {
        #[allow(deprecated)]
        match state {
            ZkState::NotConnected => {
                tracing::warn!(connect = %self.inner.connect, "ZooKeeper session expired");
                self.session_lost = true;
                self.disarm_all();
            }
            ZkState::Connecting | ZkState::Associating => self.disarm_all(),
            ZkState::Connected | ZkState::ConnectedReadOnly => self.on_connected().await,
            ZkState::Closed => return false,
            ZkState::AuthFailed => {
                tracing::error!(connect = %self.inner.connect, "ZooKeeper authentication failed");
            }
        }
        true
    }

    /// Server-side watches belong to the TCP connection and went with it.
    fn disarm_all(&mut self) {
        for armed in self.watches.values_mut() {
            armed.armed = false;
        }
    }

    async fn on_connected(&mut self) {
        let new_session = self.session_lost;
        // The first session is probed by `start_session` once it has created the chroot; a
        // probe from here could come first and find no chroot to create its node in.
        if new_session {
            let probed =
                tokio::time::timeout(self.inner.connection_timeout, self.inner.probe_session())
                    .await;
            if !matches!(probed, Ok(Ok(_))) {
                tracing::warn!(connect = %self.inner.connect, "could not learn the ZooKeeper session id");
            }
        }
        let keys: Vec<WatchKey> = self.watches.keys().cloned().collect();
        for key in keys {
            let before = self.watches.get(&key).map_or(Seen::Unknown, |a| a.seen);
            let after = self.arm(&key).await;
            // On a new session everything is re-read anyway (`SessionExpired` below); on the
            // same one, report what changed while no watch was armed.
            let changed = match after {
                Ok(after) => before == Seen::Unknown || before != after,
                Err(_) => true,
            };
            if changed && !new_session {
                self.inner.notify(event_for(&key));
            }
        }
        if new_session {
            self.session_lost = false;
            tracing::info!(
                connect = %self.inner.connect,
                session = self.inner.session.id.load(Ordering::SeqCst),
                "new ZooKeeper session, watches re-armed"
            );
            self.inner.notify(WatchEvent::SessionExpired);
        }
    }

    /// Arms the watches asked for that are not armed yet, all at once; answers each request.
    async fn on_arms(&mut self, batch: Vec<(WatchKey, ArmReply)>) {
        let mut todo: Vec<WatchKey> = Vec::new();
        let mut seen_keys = std::collections::HashSet::new();
        for (key, _) in &batch {
            let armed = self.watches.entry(key.clone()).or_insert(Armed {
                armed: false,
                seen: Seen::Unknown,
            });
            if !armed.armed && seen_keys.insert(key.clone()) {
                todo.push(key.clone());
            }
        }
        let results =
            futures::future::join_all(todo.iter().map(|key| self.set_on_server(key))).await;
        let mut outcomes: HashMap<WatchKey, StoreResult<()>> = HashMap::new();
        for (key, result) in todo.into_iter().zip(results) {
            let outcome = self.record(&key, result).map(|_| ());
            outcomes.insert(key, outcome);
        }
        for (key, reply) in batch {
            let _ = reply.send(outcomes.get(&key).cloned().unwrap_or(Ok(())));
        }
    }

    async fn on_fired(&mut self, full: &str, event: WatchedEventType) {
        let Some(path) = self.inner.below_chroot(full) else {
            return;
        };
        // One notification per path and connection: a deletion is reported once even when
        // both a node watch and a children watch are set on the path.
        let kinds: &[WatchKind] = match event {
            WatchedEventType::NodeCreated | WatchedEventType::NodeDeleted => {
                &[WatchKind::Node, WatchKind::Children]
            }
            WatchedEventType::NodeDataChanged => &[WatchKind::Node],
            WatchedEventType::NodeChildrenChanged => &[WatchKind::Children],
            _ => &[],
        };
        for &kind in kinds {
            let key = WatchKey {
                kind,
                path: path.clone(),
            };
            let Some(armed) = self.watches.get_mut(&key) else {
                continue;
            };
            armed.armed = false;
            // Re-armed before the event is sent, so that a subscriber's re-read cannot miss the
            // next change. Should re-arming fail, the next reconnect re-arms it and reports it.
            if self.arm(&key).await.is_err() {
                tracing::warn!(path = %key.path, "ZooKeeper watch not re-armed; retried on reconnect");
            }
            self.inner.notify(event_for(&key));
        }
    }

    /// Sets `key`'s watch on the server and records what it saw.
    async fn arm(&mut self, key: &WatchKey) -> StoreResult<Seen> {
        let result = self.set_on_server(key).await;
        self.record(key, result)
    }

    async fn set_on_server(&self, key: &WatchKey) -> Result<Seen, ArmError> {
        match key.kind {
            WatchKind::Node => self.arm_node(key).await,
            WatchKind::Children => self.arm_children(key).await,
        }
    }

    /// Records what arming `key` found.
    fn record(&mut self, key: &WatchKey, result: Result<Seen, ArmError>) -> StoreResult<Seen> {
        let armed = self.watches.entry(key.clone()).or_insert(Armed {
            armed: false,
            seen: Seen::Unknown,
        });
        match result {
            Ok(seen) => {
                armed.armed = true;
                armed.seen = seen;
                Ok(seen)
            }
            Err(e) => {
                // A request that timed out is still queued in the client and sets the watch
                // when it goes out; one cut by a connection loss is re-armed on reconnect.
                armed.armed = matches!(e, ArmError::TimedOut);
                armed.seen = Seen::Unknown;
                Err(match e {
                    ArmError::TimedOut => self.inner.unavailable("watch"),
                    ArmError::Zk(e) => self.inner.other_error(&format!("watch {}", key.path), e),
                })
            }
        }
    }

    async fn bounded<T>(&self, call: impl Future<Output = ZkResult<T>>) -> Result<T, ArmError> {
        match tokio::time::timeout(self.inner.connection_timeout, call).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(ArmError::Zk(e)),
            Err(_) => Err(ArmError::TimedOut),
        }
    }

    async fn arm_node(&self, key: &WatchKey) -> Result<Seen, ArmError> {
        let full = self.inner.full_path(&key.path);
        // An existence watch fires on creation, data change and deletion alike.
        let stat = self.bounded(self.inner.zk.exists(&full, true)).await?;
        Ok(stat.map_or(Seen::Absent, |s| Seen::At(s.mzxid)))
    }

    async fn arm_children(&self, key: &WatchKey) -> Result<Seen, ArmError> {
        let full = self.inner.full_path(&key.path);
        for _ in 0..ARM_ATTEMPTS {
            match self.bounded(self.inner.zk.get_children(&full, true)).await {
                Ok(_) => {
                    // Read after arming: a change in between fires the watch, so nothing is lost.
                    let stat = self.bounded(self.inner.zk.exists(&full, false)).await?;
                    return Ok(stat.map_or(Seen::Absent, |s| Seen::At(s.pzxid)));
                }
                Err(ArmError::Zk(ZkError::NoNode)) => {
                    // No node, no children watch: watch for its creation instead.
                    match self.bounded(self.inner.zk.exists(&full, true)).await? {
                        None => return Ok(Seen::Absent),
                        Some(_) => continue,
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Err(ArmError::Zk(ZkError::NoNode))
    }
}

enum ArmError {
    TimedOut,
    Zk(ZkError),
}

fn event_for(key: &WatchKey) -> WatchEvent {
    match key.kind {
        WatchKind::Node => WatchEvent::NodeChanged(key.path.clone()),
        WatchKind::Children => WatchEvent::ChildrenChanged(key.path.clone()),
    }
}

impl ZkStore {
    pub(super) async fn request_watch(&self, kind: WatchKind, path: &str) -> StoreResult<()> {
        validate_path(path)?;
        let (reply, answer) = oneshot::channel();
        let key = WatchKey {
            kind,
            path: path.to_string(),
        };
        if self.inner.closed.load(Ordering::Relaxed)
            || self
                .inner
                .to_supervisor
                .send(Msg::Arm { key, reply })
                .is_err()
        {
            return Err(self.inner.unavailable("watch"));
        }
        // The supervisor may be busy re-arming every watch after a reconnect.
        match tokio::time::timeout(self.inner.connection_timeout * 2, answer).await {
            Ok(Ok(armed)) => armed,
            _ => Err(self.inner.unavailable("watch")),
        }
    }
}
