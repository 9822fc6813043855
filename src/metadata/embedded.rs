//! The embedded metadata store: Kafka's znode tree kept in memory and persisted in the data
//! directory, for a single broker without ZooKeeper. Ephemeral nodes live only as long as the
//! process, as they would with a ZooKeeper session.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, oneshot};

use super::store::{
    CreateMode, MetadataStore, Stat, StoreError, StoreFuture, StoreResult, WatchEvent,
};
use crate::log::checkpoint::write_atomically;

/// File name of the persisted tree inside the first log directory.
pub const TREE_FILE: &str = "odradek-metadata.json";

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Node {
    /// Kafka's znode data is always UTF-8 (JSON or decimal text), so a string keeps the file
    /// readable by people.
    data: Option<String>,
    version: i32,
    czxid: i64,
    #[serde(skip)]
    ephemeral: bool,
    #[serde(default)]
    sequence: u32,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Tree {
    zxid: i64,
    nodes: BTreeMap<String, Node>,
}

pub struct EmbeddedStore {
    tree: Mutex<Tree>,
    events: broadcast::Sender<WatchEvent>,
    writer: std::sync::mpsc::Sender<Snapshot>,
}

/// The persistent part of the tree as of one change, and who waits for it to be on disk.
struct Snapshot {
    bytes: Vec<u8>,
    written: oneshot::Sender<Result<(), String>>,
}

/// The thread that writes snapshots to `file`, in the order the changes were made. Writing
/// (temp file, fsync, rename) happens here rather than on the async runtime or under the
/// tree's lock; when changes come faster than the disk, only the newest waiting snapshot is
/// written, and it makes every older one durable too.
fn spawn_writer(file: PathBuf) -> std::io::Result<std::sync::mpsc::Sender<Snapshot>> {
    let (tx, rx) = std::sync::mpsc::channel::<Snapshot>();
    std::thread::Builder::new()
        .name("metadata-writer".into())
        .spawn(move || {
            while let Ok(first) = rx.recv() {
                let mut newest = first.bytes;
                let mut waiting = vec![first.written];
                while let Ok(next) = rx.try_recv() {
                    newest = next.bytes;
                    waiting.push(next.written);
                }
                let result = write_atomically(&file, &newest)
                    .map_err(|e| format!("{}: {e}", file.display()));
                for w in waiting {
                    // A waiter that gave up (its request was dropped) needs no answer.
                    let _ = w.send(result.clone());
                }
            }
        })?;
    Ok(tx)
}

fn to_string(path: &str, data: Option<Vec<u8>>) -> StoreResult<Option<String>> {
    data.map(|d| {
        String::from_utf8(d).map_err(|_| StoreError::BadData {
            path: path.to_string(),
            reason: "not UTF-8".into(),
        })
    })
    .transpose()
}

fn parent_of(path: &str) -> Option<&str> {
    match path.rsplit_once('/') {
        Some(("", _)) => Some("/"),
        Some((p, _)) => Some(p),
        None => None,
    }
}

impl EmbeddedStore {
    /// Loads the tree from `dir`, or starts an empty one. A damaged file stops start-up with a
    /// message rather than silently forgetting every topic.
    pub fn open(dir: &Path) -> StoreResult<EmbeddedStore> {
        let file = dir.join(TREE_FILE);
        let unavailable = |e: String| StoreError::Unavailable(format!("{}: {e}", file.display()));
        std::fs::create_dir_all(dir).map_err(|e| unavailable(e.to_string()))?;
        let mut tree = match std::fs::read(&file) {
            Ok(bytes) => serde_json::from_slice::<Tree>(&bytes)
                .map_err(|e| unavailable(format!("corrupt metadata file: {e}")))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Tree::default(),
            Err(e) => return Err(unavailable(e.to_string())),
        };
        tree.nodes.entry("/".to_string()).or_insert(Node {
            data: None,
            version: 0,
            czxid: 0,
            ephemeral: false,
            sequence: 0,
        });
        let (events, _) = broadcast::channel(1024);
        let writer = spawn_writer(file.clone()).map_err(|e| unavailable(e.to_string()))?;
        Ok(EmbeddedStore {
            tree: Mutex::new(tree),
            events,
            writer,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Tree> {
        self.tree.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Hands the persistent part of the tree to the writer thread. Called with the lock held, so
    /// snapshots reach the writer in the order the changes were made; the caller awaits
    /// `written` once it has let go of the lock, and answers only when the change is on disk.
    fn persist(&self, tree: &Tree) -> StoreResult<Written> {
        let persistent = Tree {
            zxid: tree.zxid,
            nodes: tree
                .nodes
                .iter()
                .filter(|(_, n)| !n.ephemeral)
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        };
        let bytes = serde_json::to_vec_pretty(&persistent)
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        let (written, done) = oneshot::channel();
        self.writer
            .send(Snapshot { bytes, written })
            .map_err(|_| StoreError::Unavailable("the metadata writer has stopped".into()))?;
        Ok(Written(Some(done)))
    }

    fn notify(&self, event: WatchEvent) {
        // No subscriber is fine: nobody is watching yet.
        let _ = self.events.send(event);
    }
}

/// A change's way to disk: None for a change with nothing to persist (ephemeral nodes).
struct Written(Option<oneshot::Receiver<Result<(), String>>>);

impl Written {
    async fn wait(self) -> StoreResult<()> {
        let Some(done) = self.0 else { return Ok(()) };
        match done.await {
            Ok(result) => result.map_err(StoreError::Unavailable),
            Err(_) => Err(StoreError::Unavailable(
                "the metadata writer has stopped".into(),
            )),
        }
    }
}

impl MetadataStore for EmbeddedStore {
    fn create<'a>(
        &'a self,
        path: &'a str,
        data: Option<Vec<u8>>,
        mode: CreateMode,
    ) -> StoreFuture<'a, String> {
        Box::pin(async move {
            let data = to_string(path, data)?;
            let parent = parent_of(path).ok_or_else(|| StoreError::NoNode(path.to_string()))?;
            let created = {
                let mut tree = self.lock();
                let seq = {
                    let p = tree
                        .nodes
                        .get_mut(parent)
                        .ok_or_else(|| StoreError::NoNode(parent.to_string()))?;
                    if p.ephemeral {
                        return Err(StoreError::NoNode(format!("{path} (ephemeral parent)")));
                    }
                    let s = p.sequence;
                    if mode == CreateMode::PersistentSequential {
                        p.sequence += 1;
                    }
                    s
                };
                let actual = if mode == CreateMode::PersistentSequential {
                    format!("{path}{seq:010}")
                } else {
                    path.to_string()
                };
                if tree.nodes.contains_key(&actual) {
                    return Err(StoreError::NodeExists(actual));
                }
                tree.zxid += 1;
                let czxid = tree.zxid;
                tree.nodes.insert(
                    actual.clone(),
                    Node {
                        data,
                        version: 0,
                        czxid,
                        ephemeral: mode == CreateMode::Ephemeral,
                        sequence: 0,
                    },
                );
                let written = if mode != CreateMode::Ephemeral {
                    self.persist(&tree)?
                } else {
                    Written(None)
                };
                (actual, written)
            };
            let (created, written) = created;
            written.wait().await?;
            self.notify(WatchEvent::NodeChanged(created.clone()));
            if let Some(parent) = parent_of(&created) {
                self.notify(WatchEvent::ChildrenChanged(parent.to_string()));
            }
            Ok(created)
        })
    }

    fn get<'a>(&'a self, path: &'a str) -> StoreFuture<'a, Option<(Option<Vec<u8>>, Stat)>> {
        Box::pin(async move {
            let tree = self.lock();
            Ok(tree.nodes.get(path).map(|n| {
                (
                    n.data.clone().map(String::into_bytes),
                    Stat {
                        version: n.version,
                        czxid: n.czxid,
                        ephemeral_owner: if n.ephemeral { EMBEDDED_SESSION } else { 0 },
                    },
                )
            }))
        })
    }

    fn set<'a>(
        &'a self,
        path: &'a str,
        data: Option<Vec<u8>>,
        expected_version: Option<i32>,
    ) -> StoreFuture<'a, Stat> {
        Box::pin(async move {
            let data = to_string(path, data)?;
            let stat = {
                let mut tree = self.lock();
                let node = tree
                    .nodes
                    .get_mut(path)
                    .ok_or_else(|| StoreError::NoNode(path.to_string()))?;
                if expected_version.is_some_and(|v| v != node.version) {
                    return Err(StoreError::BadVersion(path.to_string()));
                }
                node.data = data;
                node.version += 1;
                let stat = Stat {
                    version: node.version,
                    czxid: node.czxid,
                    ephemeral_owner: if node.ephemeral { EMBEDDED_SESSION } else { 0 },
                };
                let ephemeral = node.ephemeral;
                tree.zxid += 1;
                let written = if !ephemeral {
                    self.persist(&tree)?
                } else {
                    Written(None)
                };
                (stat, written)
            };
            let (stat, written) = stat;
            written.wait().await?;
            self.notify(WatchEvent::NodeChanged(path.to_string()));
            Ok(stat)
        })
    }

    fn delete<'a>(&'a self, path: &'a str, expected_version: Option<i32>) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            {
                let mut tree = self.lock();
                let node = tree
                    .nodes
                    .get(path)
                    .ok_or_else(|| StoreError::NoNode(path.to_string()))?;
                if expected_version.is_some_and(|v| v != node.version) {
                    return Err(StoreError::BadVersion(path.to_string()));
                }
                let prefix = format!("{path}/");
                if tree
                    .nodes
                    .range(prefix.clone()..)
                    .next()
                    .is_some_and(|(k, _)| k.starts_with(&prefix))
                {
                    return Err(StoreError::NotEmpty(path.to_string()));
                }
                let ephemeral = node.ephemeral;
                tree.nodes.remove(path);
                tree.zxid += 1;
                if !ephemeral {
                    self.persist(&tree)?
                } else {
                    Written(None)
                }
            }
            .wait()
            .await?;
            self.notify(WatchEvent::NodeChanged(path.to_string()));
            if let Some(parent) = parent_of(path) {
                self.notify(WatchEvent::ChildrenChanged(parent.to_string()));
            }
            Ok(())
        })
    }

    fn children<'a>(&'a self, path: &'a str) -> StoreFuture<'a, Option<Vec<String>>> {
        Box::pin(async move {
            let tree = self.lock();
            if !tree.nodes.contains_key(path) {
                return Ok(None);
            }
            let prefix = if path == "/" {
                "/".to_string()
            } else {
                format!("{path}/")
            };
            Ok(Some(
                tree.nodes
                    .range(prefix.clone()..)
                    .take_while(|(k, _)| k.starts_with(&prefix))
                    .filter_map(|(k, _)| {
                        let rest = &k[prefix.len()..];
                        (!rest.is_empty() && !rest.contains('/')).then(|| rest.to_string())
                    })
                    .collect(),
            ))
        })
    }

    fn subscribe(&self) -> broadcast::Receiver<WatchEvent> {
        self.events.subscribe()
    }

    // Every change is reported to every subscriber, so there is nothing to arm.
    fn watch_node<'a>(&'a self, _path: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(async { Ok(()) })
    }

    fn watch_children<'a>(&'a self, _path: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(async { Ok(()) })
    }

    /// One session for the life of the process: ephemeral nodes die with it.
    fn session_id(&self) -> i64 {
        EMBEDDED_SESSION
    }
}

const EMBEDDED_SESSION: i64 = 1;

/// Seeds an embedded store from a ZooKeeper tree dump (`{"<path>": <data or null>}`), so that a
/// data directory written by an Apache Kafka broker opens in odradek with the topics, configs and
/// cluster id its ZooKeeper held. Ephemeral znodes (broker registrations, the controller) are
/// skipped: they belong to the session that wrote them.
pub fn import_tree(dir: &Path, tree: &BTreeMap<String, Option<String>>) -> StoreResult<usize> {
    let file = dir.join(TREE_FILE);
    if file.exists() {
        return Err(StoreError::NodeExists(format!(
            "{} already holds a metadata tree",
            file.display()
        )));
    }
    let ephemeral = |p: &str| p == "/controller" || p.starts_with("/brokers/ids/");
    let mut out = Tree::default();
    out.nodes.insert(
        "/".to_string(),
        Node {
            data: None,
            version: 0,
            czxid: 0,
            ephemeral: false,
            sequence: 0,
        },
    );
    for (path, data) in tree
        .iter()
        .filter(|(p, _)| p.starts_with('/') && !ephemeral(p))
    {
        // Parents first: a dump lists every node, but a partial one should still load.
        let mut at = String::new();
        for part in path.split('/').filter(|s| !s.is_empty()) {
            at.push('/');
            at.push_str(part);
            out.zxid += 1;
            let zxid = out.zxid;
            out.nodes.entry(at.clone()).or_insert(Node {
                data: None,
                version: 0,
                czxid: zxid,
                ephemeral: false,
                sequence: 0,
            });
        }
        if let Some(node) = out.nodes.get_mut(path.as_str()) {
            node.data = data.clone();
        }
    }
    let bytes =
        serde_json::to_vec_pretty(&out).map_err(|e| StoreError::Unavailable(e.to_string()))?;
    std::fs::create_dir_all(dir).map_err(|e| StoreError::Unavailable(e.to_string()))?;
    write_atomically(&file, &bytes).map_err(|e| StoreError::Unavailable(e.to_string()))?;
    Ok(out.nodes.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::store::{create_recursive, delete_recursive};

    #[tokio::test(flavor = "multi_thread")]
    async fn znode_semantics_and_persistence() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path()).unwrap();
        let mut events = store.subscribe();
        create_recursive(
            &store,
            "/brokers/topics/t",
            Some(b"{}".to_vec()),
            CreateMode::Persistent,
        )
        .await
        .unwrap();
        assert_eq!(
            events.recv().await.unwrap(),
            WatchEvent::NodeChanged("/brokers".into())
        );
        assert_eq!(
            events.recv().await.unwrap(),
            WatchEvent::ChildrenChanged("/".into())
        );
        assert_eq!(
            store
                .create("/brokers/topics/t", None, CreateMode::Persistent)
                .await,
            Err(StoreError::NodeExists("/brokers/topics/t".into()))
        );
        assert_eq!(
            store.create("/x/y", None, CreateMode::Persistent).await,
            Err(StoreError::NoNode("/x".into()))
        );
        let stat = store
            .set("/brokers/topics/t", Some(b"{\"a\":1}".to_vec()), Some(0))
            .await
            .unwrap();
        assert_eq!(stat.version, 1);
        assert_eq!(
            store.set("/brokers/topics/t", None, Some(0)).await,
            Err(StoreError::BadVersion("/brokers/topics/t".into()))
        );
        store
            .create("/controller", Some(b"{}".to_vec()), CreateMode::Ephemeral)
            .await
            .unwrap();
        store
            .create("/isr", None, CreateMode::Persistent)
            .await
            .unwrap();
        assert_eq!(
            store
                .create("/isr/isr_change_", None, CreateMode::PersistentSequential)
                .await
                .unwrap(),
            "/isr/isr_change_0000000000"
        );
        assert_eq!(
            store
                .create("/isr/isr_change_", None, CreateMode::PersistentSequential)
                .await
                .unwrap(),
            "/isr/isr_change_0000000001"
        );
        assert_eq!(
            store.children("/brokers").await.unwrap(),
            Some(vec!["topics".to_string()])
        );
        assert_eq!(
            store.delete("/brokers", None).await,
            Err(StoreError::NotEmpty("/brokers".into()))
        );
        drop(store);
        let store = EmbeddedStore::open(dir.path()).unwrap();
        let (data, stat) = store.get("/brokers/topics/t").await.unwrap().unwrap();
        assert_eq!((data.unwrap(), stat.version), (b"{\"a\":1}".to_vec(), 1));
        assert_eq!(
            store.get("/controller").await.unwrap(),
            None,
            "ephemeral nodes die with the process"
        );
        assert_eq!(
            store
                .create("/isr/isr_change_", None, CreateMode::PersistentSequential)
                .await
                .unwrap(),
            "/isr/isr_change_0000000002"
        );
        delete_recursive(&store, "/brokers").await.unwrap();
        assert_eq!(
            store.children("/").await.unwrap(),
            Some(vec!["isr".to_string()])
        );
    }

    #[test]
    fn a_corrupt_tree_file_stops_start_up() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(TREE_FILE), b"{not json").unwrap();
        let err = EmbeddedStore::open(dir.path()).err().unwrap();
        assert!(err.to_string().contains("corrupt metadata file"), "{err}");
    }
}
