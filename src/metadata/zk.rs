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

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::time::Instant;
use zookeeper_async::{
    Acl, CreateMode as ZkCreateMode, WatchedEvent, WatchedEventType, ZkError, ZkResult, ZkState,
    ZooKeeper,
};

use super::store::{
    CreateMode, MetadataStore, Stat, StoreError, StoreFuture, StoreResult, WatchEvent,
};

/// ZooKeeper closes the connection on a request larger than `jute.maxbuffer` (1 MiB less one byte
/// by default), which would look like a connection loss and be retried until the deadline. Data
/// is refused before that, leaving room for the path and the request header.
const MAX_DATA_BYTES: usize = 1024 * 1024 - 4096;

/// The client sleeps this long between failed TCP connects (with zero it spins on a refused port).
const RECONNECT_PAUSE: Duration = Duration::from_millis(100);

/// Pause between attempts of a call, so that a connection that fails at once is not hammered.
const RETRY_PAUSE: Duration = Duration::from_millis(20);

/// The client derives its read inactivity limit from the session timeout in whole seconds; below
/// 1.5 s that is zero and it reconnects in a loop. Kafka's own minimum is far above this.
const MIN_SESSION_TIMEOUT: Duration = Duration::from_secs(2);

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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum WatchKind {
    Node,
    Children,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct WatchKey {
    kind: WatchKind,
    /// As the caller gave it (below the chroot).
    path: String,
}

/// What a watch last saw of its node, to tell after a reconnect whether something changed while
/// no watch was armed on the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seen {
    Unknown,
    Absent,
    /// `mzxid` for a node watch, `pzxid` for a children watch.
    At(i64),
}

struct Armed {
    /// Set on the server for the current connection (ZooKeeper keeps one watch per path and
    /// kind per connection, however often it is set).
    armed: bool,
    seen: Seen,
}

enum Msg {
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

/// `zookeeper.connect` split into the host list and the chroot (`""` for none).
fn split_connect(connect: &str) -> StoreResult<(&str, String)> {
    let bad =
        |reason: &str| StoreError::Unavailable(format!("zookeeper.connect {connect:?}: {reason}"));
    let (hosts, chroot) = match connect.find('/') {
        Some(i) => (&connect[..i], &connect[i..]),
        None => (connect, ""),
    };
    if hosts.trim().is_empty() {
        return Err(bad("no host"));
    }
    let chroot = if chroot == "/" { "" } else { chroot };
    if !chroot.is_empty() {
        validate_path(chroot).map_err(|_| bad("the chroot is not a valid znode path"))?;
    }
    Ok((hosts, chroot.to_string()))
}

/// ZooKeeper's path rules (`PathUtils.validatePath`), checked here because the client checks
/// only a trailing slash and would send anything else to the server.
fn validate_path(path: &str) -> StoreResult<()> {
    let bad = |reason: &str| StoreError::BadData {
        path: path.to_string(),
        reason: format!("not a valid znode path: {reason}"),
    };
    if !path.starts_with('/') {
        return Err(bad("must start with /"));
    }
    if path == "/" {
        return Ok(());
    }
    if path.ends_with('/') {
        return Err(bad("must not end with /"));
    }
    for part in path[1..].split('/') {
        if part.is_empty() {
            return Err(bad("empty name"));
        }
        if part == "." || part == ".." {
            return Err(bad("relative names are not allowed"));
        }
        if part.chars().any(|c| {
            c == '\0'
                || ('\u{1}'..='\u{1f}').contains(&c)
                || ('\u{7f}'..='\u{9f}').contains(&c)
                || ('\u{e000}'..='\u{f8ff}').contains(&c)
                || ('\u{fff0}'..='\u{ffff}').contains(&c)
        }) {
            return Err(bad("invalid character"));
        }
    }
    Ok(())
}

fn parent_of(path: &str) -> &str {
    match path.rsplit_once('/') {
        Some(("", _)) | None => "/",
        Some((p, _)) => p,
    }
}

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
struct Outcome<T> {
    result: ZkResult<T>,
    /// An earlier attempt got no answer: a write may have been applied by it.
    ambiguous: bool,
}

impl Inner {
    fn full_path(&self, path: &str) -> String {
        if self.chroot.is_empty() {
            path.to_string()
        } else if path == "/" {
            self.chroot.clone()
        } else {
            format!("{}{path}", self.chroot)
        }
    }

    /// The caller's path for a server path, `None` if it lies outside the chroot.
    fn below_chroot(&self, full: &str) -> Option<String> {
        if self.chroot.is_empty() {
            return Some(full.to_string());
        }
        match full.strip_prefix(self.chroot.as_str())? {
            "" => Some("/".to_string()),
            rest if rest.starts_with('/') => Some(rest.to_string()),
            _ => None,
        }
    }

    fn unavailable(&self, what: &str) -> StoreError {
        if self.closed.load(Ordering::Relaxed) {
            return StoreError::Unavailable(format!("ZooKeeper {}: store closed", self.connect));
        }
        StoreError::Unavailable(format!(
            "ZooKeeper {}: {what} not answered within {} ms",
            self.connect,
            self.connection_timeout.as_millis()
        ))
    }

    fn other_error(&self, what: &str, e: ZkError) -> StoreError {
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
    async fn retrying<T, F, Fut>(&self, what: &str, mut op: F) -> StoreResult<Outcome<T>>
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

    async fn create(
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

    async fn get(&self, path: &str) -> StoreResult<Option<(Option<Vec<u8>>, Stat)>> {
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

    async fn set(
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

    async fn delete(&self, path: &str, expected_version: Option<i32>) -> StoreResult<()> {
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

    async fn children(&self, path: &str) -> StoreResult<Option<Vec<String>>> {
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

/// Owns the watch registry; the only place that arms watches, so arming, re-arming after an
/// event and re-arming after a reconnect never race each other.
struct Supervisor {
    inner: Arc<Inner>,
    watches: HashMap<WatchKey, Armed>,
    session_lost: bool,
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
    async fn run(mut self, mut from_client: mpsc::UnboundedReceiver<Msg>) {
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
    async fn request_watch(&self, kind: WatchKind, path: &str) -> StoreResult<()> {
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_strings_split_into_hosts_and_chroot() {
        assert_eq!(
            split_connect("h1:2181,h2:2181/kafka/a").unwrap(),
            ("h1:2181,h2:2181", "/kafka/a".to_string())
        );
        assert_eq!(
            split_connect("h1:2181").unwrap(),
            ("h1:2181", String::new())
        );
        assert_eq!(
            split_connect("h1:2181/").unwrap(),
            ("h1:2181", String::new())
        );
        for bad in ["h1:2181/kafka/", "/kafka", "h1:2181/a//b", ""] {
            assert!(
                matches!(split_connect(bad), Err(StoreError::Unavailable(m)) if m.contains(bad)),
                "{bad}"
            );
        }
    }

    #[test]
    fn znode_paths_follow_zookeeper_rules() {
        for good in [
            "/",
            "/a",
            "/brokers/ids/1",
            "/config/users/%2A",
            "/x/<default>",
        ] {
            assert!(validate_path(good).is_ok(), "{good}");
        }
        for bad in ["", "a", "/a/", "//a", "/a/./b", "/a/..", "/a\0b", "/a\u{1}"] {
            assert!(
                matches!(validate_path(bad), Err(StoreError::BadData { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn parents() {
        assert_eq!(parent_of("/a"), "/");
        assert_eq!(parent_of("/a/b/c"), "/a/b");
    }
}
