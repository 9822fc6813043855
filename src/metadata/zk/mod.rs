//! The `MetadataStore` over a real ZooKeeper ensemble (`zookeeper.connect`), through the
//! `zookeeper-async` client.
//!
//! What the client does not do and this module does instead:
//! - chroot: handled here rather than by the client, whose chroot handling cannot watch the chroot
//!   itself and cannot create it. As in Kafka, a missing chroot is created at connect.
//! - Watches: ZooKeeper's are one-shot and bound to one TCP connection; the client neither re-arms
//!   them nor restores them after a reconnect (the Java client sends SetWatches). Every watch
//!   asked for is kept in a registry (one entry per path and kind, however often it is asked
//!   for); a supervisor task re-arms it after each event and after each reconnect, and compares
//!   the node's `mzxid` / `pzxid` from before and after a reconnect to report changes made while
//!   the connection was down.
//! - Session id: the client keeps it private. It is learnt from the `ephemeralOwner` of an
//!   ephemeral probe node created (and at once deleted) at the start of each session, and from
//!   every ephemeral node this store creates.
//! - Session expiry: the client silently opens a new session when the server says the old one
//!   expired (state `NotConnected`, then `Connected` again). The state listener sees that
//!   transition; the store forgets the old session id, re-arms every watch on the new session,
//!   and then sends `WatchEvent::SessionExpired`.
//! - Connection loss: each call is retried until `connection_timeout` runs out, then fails with
//!   `Unavailable`. A write retried after a connection loss may already have been applied by the
//!   attempt whose answer was lost; see `create`, `set` and `delete` for how that is told apart.
//!   A write that fails with `Unavailable` has an unknown outcome: the client keeps requests
//!   queued while it reconnects and sends them once connected, even after the caller gave up.
//!
//! What it cannot do: ZooKeeper's `multi` (the client has no such request, and its request type is
//! private), so writes cannot be fenced on `/controller_epoch`'s version as Kafka's controller
//! fences them; and null data (the client always sends a byte array, and reads a null one back as
//! empty), so `None` is stored as empty data and empty data reads back as `None`.
//!
//! This file holds the session (connect, the state listener, the session probe, close) and the
//! `MetadataStore` impl; `calls` the data calls and their retries, `watches` the watch registry
//! and its supervisor task, `paths` the chroot and ZooKeeper's path rules.

mod calls;
mod paths;
mod watches;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{broadcast, mpsc, watch};
use tokio::time::Instant;
use zookeeper_async::{
    Acl, CreateMode as ZkCreateMode, WatchedEvent, ZkError, ZkResult, ZkState, ZooKeeper,
};

use self::paths::split_connect;
use self::watches::{Msg, Supervisor, WatchKind};
use super::store::{
    CreateMode, MetadataStore, Stat, StoreError, StoreFuture, StoreResult, WatchEvent,
};

/// The client sleeps this long between failed TCP connects (with zero it spins on a refused port).
const RECONNECT_PAUSE: Duration = Duration::from_millis(100);

/// The client derives its read inactivity limit from the session timeout in whole seconds; below
/// 1.5 s that is zero and it reconnects in a loop. Kafka's own minimum is far above this.
const MIN_SESSION_TIMEOUT: Duration = Duration::from_secs(2);

/// How long opening an extra session may take (see `more_sessions`): they only speed bulk work
/// up, so a slow one is not waited for.
const EXTRA_CONNECT_LIMIT: Duration = Duration::from_secs(2);

/// Name prefix of the ephemeral node that reveals the session id.
const SESSION_PROBE: &str = "odradek-session-";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Link {
    /// Before the first session is confirmed.
    Starting,
    Connected,
    Connecting,
    Closed,
}

/// Session identity, shared with the client's state listener (which must not hold the store).
#[derive(Default)]
struct Session {
    id: AtomicI64,
    /// Bumped when the server declares the session expired: a session id learnt from an answer
    /// given before that must not be stored.
    generation: AtomicU64,
}

struct Inner {
    zk: ZooKeeper,
    connect: String,
    /// The chroot without a trailing slash, empty for none.
    chroot: String,
    session_timeout: Duration,
    connection_timeout: Duration,
    events: broadcast::Sender<WatchEvent>,
    link: Arc<watch::Sender<Link>>,
    session: Arc<Session>,
    closed: AtomicBool,
    to_supervisor: mpsc::UnboundedSender<Msg>,
}

/// A `MetadataStore` on a ZooKeeper ensemble. Dropping it closes the session (ephemeral nodes
/// go at once, as with Kafka's `ZooKeeperClient.close`); `close` does the same and waits.
pub struct ZkStore {
    inner: Arc<Inner>,
    supervisor: tokio::task::JoinHandle<()>,
}

impl Inner {
    /// Creates and deletes an ephemeral node to learn the session id from its owner.
    async fn probe_session(&self) -> ZkResult<i64> {
        let generation = self.session.generation.load(Ordering::SeqCst);
        let probe = self.full_path(&format!(
            "/{SESSION_PROBE}{}",
            uuid::Uuid::new_v4().simple()
        ));
        let (_, stat) = self
            .zk
            .create2(
                &probe,
                Vec::new(),
                Acl::open_unsafe().clone(),
                ZkCreateMode::Ephemeral,
            )
            .await?;
        // Should the delete be lost, the node dies with the session anyway.
        let _ = self.zk.delete(&probe, None).await;
        self.learn_session(generation, stat.ephemeral_owner);
        Ok(stat.ephemeral_owner)
    }

    fn learn_session(&self, generation: u64, owner: i64) {
        if owner != 0 && self.session.generation.load(Ordering::SeqCst) == generation {
            self.session.id.store(owner, Ordering::SeqCst);
        }
    }

    fn notify(&self, event: WatchEvent) {
        // No subscriber is fine: nobody is watching yet.
        let _ = self.events.send(event);
    }
}

impl ZkStore {
    /// Connects to `connect` (Kafka's `zookeeper.connect`: `host:port[,host:port...][/chroot]`),
    /// creates the chroot if missing (as Kafka does), learns the session id, and gives up with
    /// `Unavailable` naming `connect` if that takes longer than `connection_timeout`, which also
    /// bounds every later call (each is retried across connection losses until then).
    pub async fn connect(
        connect: &str,
        session_timeout: Duration,
        connection_timeout: Duration,
    ) -> StoreResult<ZkStore> {
        let (hosts, chroot) = split_connect(connect)?;
        if session_timeout < MIN_SESSION_TIMEOUT {
            return Err(StoreError::Unavailable(format!(
                "zookeeper.connect {connect:?}: session timeout {} ms is below {} ms",
                session_timeout.as_millis(),
                MIN_SESSION_TIMEOUT.as_millis()
            )));
        }
        let no_session = |why: String| {
            StoreError::Unavailable(format!(
                "no ZooKeeper session with {connect} within {} ms: {why}",
                connection_timeout.as_millis()
            ))
        };
        let deadline = Instant::now() + connection_timeout;
        let (to_supervisor, from_client) = mpsc::unbounded_channel();
        // Watches are set without a callback of their own (`exists(path, true)`), so that the
        // client keeps none per arming (it would keep them after a reconnect, when the server
        // has forgotten the watch); every notification comes here.
        let notifications = {
            let to_supervisor = to_supervisor.clone();
            move |event: WatchedEvent| {
                if let Some(path) = event.path {
                    let _ = to_supervisor.send(Msg::Fired {
                        path,
                        event: event.event_type,
                    });
                }
            }
        };
        // The client makes its first TCP connection before returning, retrying forever.
        let zk = match tokio::time::timeout_at(
            deadline,
            ZooKeeper::connect_with_retry_time(
                hosts,
                session_timeout,
                notifications,
                RECONNECT_PAUSE,
            ),
        )
        .await
        {
            Ok(Ok(zk)) => zk,
            Ok(Err(e)) => {
                return Err(StoreError::Unavailable(format!(
                    "zookeeper.connect {connect:?}: {e:?} (expected host:port[,host:port...][/chroot])"
                )));
            }
            Err(_) => return Err(no_session("no server accepted a connection".into())),
        };
        let link = Arc::new(watch::channel(Link::Starting).0);
        let session = Arc::new(Session::default());
        {
            let link = link.clone();
            let to_supervisor = to_supervisor.clone();
            let session = session.clone();
            zk.add_listener(move |state: ZkState| {
                // Runs on the client's I/O task: record and hand on, nothing more.
                #[allow(deprecated)]
                let now = match state {
                    ZkState::Connected | ZkState::ConnectedReadOnly => Link::Connected,
                    ZkState::Closed | ZkState::AuthFailed => Link::Closed,
                    ZkState::NotConnected => {
                        // The server said the session expired; the client opens a new one next.
                        session.generation.fetch_add(1, Ordering::SeqCst);
                        session.id.store(0, Ordering::SeqCst);
                        Link::Connecting
                    }
                    ZkState::Connecting | ZkState::Associating => Link::Connecting,
                };
                link.send_replace(now);
                let _ = to_supervisor.send(Msg::State(state));
            });
        }
        let (events, _) = broadcast::channel(1024);
        let inner = Arc::new(Inner {
            zk,
            connect: connect.to_string(),
            chroot,
            session_timeout,
            connection_timeout,
            events,
            link,
            session,
            closed: AtomicBool::new(false),
            to_supervisor,
        });
        let supervisor = tokio::spawn(
            Supervisor {
                inner: inner.clone(),
                watches: HashMap::new(),
                session_lost: false,
            }
            .run(from_client),
        );
        let store = ZkStore { inner, supervisor };
        match tokio::time::timeout_at(deadline, store.start_session()).await {
            Ok(Ok(())) => Ok(store),
            Ok(Err(StoreError::Unavailable(why))) => Err(no_session(why)),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(no_session("no session established".into())),
        }
    }

    /// Confirms the session with a first answer, creates the chroot, learns the session id.
    async fn start_session(&self) -> StoreResult<()> {
        let inner = &self.inner;
        // The client may have reported `Connected` before the listener existed.
        match inner
            .retrying("first request", || inner.zk.exists("/", false))
            .await?
            .result
        {
            Ok(_) => {}
            Err(e) => return Err(inner.other_error("first request", e)),
        }
        inner.link.send_if_modified(|l| {
            let starting = *l == Link::Starting;
            if starting {
                *l = Link::Connected;
            }
            starting
        });
        let mut at = String::new();
        for part in inner.chroot.split('/').filter(|p| !p.is_empty()) {
            at.push('/');
            at.push_str(part);
            let outcome = inner
                .retrying("create chroot", || {
                    inner.zk.create(
                        &at,
                        Vec::new(),
                        Acl::open_unsafe().clone(),
                        ZkCreateMode::Persistent,
                    )
                })
                .await?;
            match outcome.result {
                Ok(_) | Err(ZkError::NodeExists) => {}
                Err(e) => return Err(inner.other_error(&format!("create chroot {at}"), e)),
            }
        }
        match inner
            .retrying("session probe", || inner.probe_session())
            .await?
            .result
        {
            Ok(_) => Ok(()),
            Err(e) => Err(inner.other_error("session probe", e)),
        }
    }

    /// Closes the session: the server deletes this store's ephemeral nodes at once and fires
    /// the watches of other clients on them.
    pub async fn close(&self) -> StoreResult<()> {
        if self.inner.closed.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        self.supervisor.abort();
        let closing =
            tokio::time::timeout(self.inner.connection_timeout, self.inner.zk.close()).await;
        match closing {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(self.inner.other_error("close", e)),
            Err(_) => Err(StoreError::Unavailable(format!(
                "ZooKeeper {}: close not sent within {} ms; the session ends when it times out",
                self.inner.connect,
                self.inner.connection_timeout.as_millis()
            ))),
        }
    }
}

impl Drop for ZkStore {
    fn drop(&mut self) {
        self.supervisor.abort();
        if self.inner.closed.swap(true, Ordering::SeqCst) {
            return;
        }
        // The client's I/O task outlives its handle and would keep the session alive (pinging)
        // for as long as the runtime runs: the session must be closed explicitly. Without a
        // runtime there is nothing left to keep it alive.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let inner = self.inner.clone();
            runtime.spawn(async move {
                let _ = tokio::time::timeout(inner.connection_timeout, inner.zk.close()).await;
            });
        }
    }
}

impl MetadataStore for ZkStore {
    fn create<'a>(
        &'a self,
        path: &'a str,
        data: Option<Vec<u8>>,
        mode: CreateMode,
    ) -> StoreFuture<'a, String> {
        Box::pin(self.inner.create(path, data, mode))
    }

    fn get<'a>(&'a self, path: &'a str) -> StoreFuture<'a, Option<(Option<Vec<u8>>, Stat)>> {
        Box::pin(self.inner.get(path))
    }

    fn set<'a>(
        &'a self,
        path: &'a str,
        data: Option<Vec<u8>>,
        expected_version: Option<i32>,
    ) -> StoreFuture<'a, Stat> {
        Box::pin(self.inner.set(path, data, expected_version))
    }

    fn delete<'a>(&'a self, path: &'a str, expected_version: Option<i32>) -> StoreFuture<'a, ()> {
        Box::pin(self.inner.delete(path, expected_version))
    }

    fn children<'a>(&'a self, path: &'a str) -> StoreFuture<'a, Option<Vec<String>>> {
        Box::pin(self.inner.children(path))
    }

    fn subscribe(&self) -> broadcast::Receiver<WatchEvent> {
        self.inner.events.subscribe()
    }

    fn watch_node<'a>(&'a self, path: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(self.request_watch(WatchKind::Node, path))
    }

    fn watch_children<'a>(&'a self, path: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(self.request_watch(WatchKind::Children, path))
    }

    /// Learnt at the start of each session (see the module comment); 0 between the expiry of
    /// a session and the first answer on the next.
    fn session_id(&self) -> i64 {
        self.inner.session.id.load(Ordering::SeqCst)
    }

    /// Each is a new `ZkStore` on the same `zookeeper.connect`. Its start-up writes (the session
    /// probe, created and deleted) go through the ensemble's leader, and the server it is
    /// connected to answers them only once it has applied every earlier write: what ZooKeeper's
    /// `sync` would give, which the client lacks. Those not open within `EXTRA_CONNECT_LIMIT`
    /// are given up (the caller works through fewer sessions).
    fn more_sessions(&self, n: usize) -> StoreFuture<'_, Vec<Arc<dyn MetadataStore>>> {
        Box::pin(async move {
            let inner = &self.inner;
            let opening = (0..n).map(|_| async {
                let opened = tokio::time::timeout(
                    EXTRA_CONNECT_LIMIT,
                    ZkStore::connect(
                        &inner.connect,
                        inner.session_timeout,
                        inner.connection_timeout,
                    ),
                )
                .await;
                match opened {
                    Ok(Ok(store)) => Some(Arc::new(store) as Arc<dyn MetadataStore>),
                    Ok(Err(e)) => {
                        tracing::warn!(error = %e, "no extra session");
                        None
                    }
                    Err(_) => {
                        tracing::warn!("no extra session: not open in time");
                        None
                    }
                }
            });
            Ok(futures::future::join_all(opening)
                .await
                .into_iter()
                .flatten()
                .collect())
        })
    }
}
