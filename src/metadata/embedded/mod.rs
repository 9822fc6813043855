//! The embedded metadata store: Kafka's znode tree kept in memory and persisted in the data
//! directory, for a single broker without ZooKeeper. Ephemeral nodes live only as long as the
//! process, as they would with a ZooKeeper session.
//!
//! On disk: a snapshot of the tree (`odradek-metadata.json`, the format odradek has always
//! written) and a journal of the changes made since (`odradek-metadata.journal`). A change
//! appends one record to the journal, so its cost follows the change rather than the tree; the
//! journal is folded into a new snapshot once it outgrows the snapshot, and at every start.
//! Each record is `length (u32 BE) | CRC-32C of the payload (u32 BE) | payload (JSON)`, and
//! carries the zxid of its change: a torn or corrupt tail (a crash mid-append) ends the replay
//! there, and records already in the snapshot (a crash between writing a snapshot and emptying
//! the journal) are skipped.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::path::Path;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, oneshot};

use super::store::{
    CreateMode, MetadataStore, Stat, StoreError, StoreFuture, StoreResult, WatchEvent,
};
use crate::log::checkpoint::{sync_dir, write_atomically};

mod journal;

use journal::{Change, Journal, Pending, Written, load, spawn_writer};
pub use journal::{JOURNAL_FILE, TREE_FILE};

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

impl Node {
    fn empty(czxid: i64) -> Node {
        Node {
            data: None,
            version: 0,
            czxid,
            ephemeral: false,
            sequence: 0,
        }
    }
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
struct Tree {
    zxid: i64,
    nodes: BTreeMap<String, Node>,
}

impl Tree {
    /// Applies a journal record: nodes as they are after the change, nodes removed by it.
    fn apply(&mut self, change: &Change) {
        self.zxid = self.zxid.max(change.zxid);
        for (path, node) in &change.put {
            self.nodes.insert(path.clone(), node.clone());
        }
        for path in &change.del {
            self.nodes.remove(path);
        }
    }

    fn ensure_root(&mut self) {
        self.nodes
            .entry("/".to_string())
            .or_insert_with(|| Node::empty(0));
    }
}

pub struct EmbeddedStore {
    tree: Mutex<Tree>,
    events: broadcast::Sender<WatchEvent>,
    /// None for a store opened read-only (a tool looking at a broker's directory).
    writer: Option<std::sync::mpsc::Sender<Pending>>,
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
    /// Loads the tree from `dir` (snapshot and journal), or starts an empty one, and folds the
    /// journal into a fresh snapshot. A damaged snapshot stops start-up with a message rather
    /// than silently forgetting every topic; a torn journal tail is a change that was never
    /// acknowledged, and is dropped.
    pub fn open(dir: &Path) -> StoreResult<EmbeddedStore> {
        let unavailable = |e: String| StoreError::Unavailable(format!("{}: {e}", dir.display()));
        std::fs::create_dir_all(dir).map_err(|e| unavailable(e.to_string()))?;
        let loaded = load(dir).map_err(StoreError::Unavailable)?;
        if loaded.journal_valid < loaded.journal_len {
            tracing::warn!(
                file = %dir.join(JOURNAL_FILE).display(),
                dropped_bytes = loaded.journal_len - loaded.journal_valid,
                "metadata journal ends in a torn or corrupt record (a crash mid-write); \
                 dropping it"
            );
        }
        let journal_path = dir.join(JOURNAL_FILE);
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&journal_path)
            .map_err(|e| unavailable(format!("{}: {e}", journal_path.display())))?;
        let mut journal = Journal {
            dir: dir.to_path_buf(),
            file,
            len: loaded.journal_len,
            snapshot_len: 0,
            tree: loaded.tree.clone(),
            damaged: None,
        };
        // Start from a snapshot and an empty journal: replay stays short, a torn tail is gone
        // before anything is appended after it, and the snapshot file always exists (tools look
        // for it).
        if loaded.journal_len > 0 || !loaded.snapshot_exists {
            journal.compact().map_err(StoreError::Unavailable)?;
            sync_dir(dir).map_err(|e| unavailable(e.to_string()))?;
        } else {
            journal.snapshot_len = std::fs::metadata(dir.join(TREE_FILE))
                .map(|m| m.len())
                .unwrap_or(0);
        }
        if loaded.replayed > 0 {
            tracing::info!(
                changes = loaded.replayed,
                "metadata journal replayed into a new snapshot"
            );
        }
        let (events, _) = broadcast::channel(1024);
        let writer = spawn_writer(journal).map_err(|e| unavailable(e.to_string()))?;
        Ok(EmbeddedStore {
            tree: Mutex::new(loaded.tree),
            events,
            writer: Some(writer),
        })
    }

    /// The tree as a broker left it in `dir`, for reading while that broker may still run:
    /// nothing is written, and writes through this store fail.
    pub fn open_read_only(dir: &Path) -> StoreResult<EmbeddedStore> {
        let loaded = load(dir).map_err(StoreError::Unavailable)?;
        let (events, _) = broadcast::channel(16);
        Ok(EmbeddedStore {
            tree: Mutex::new(loaded.tree),
            events,
            writer: None,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Tree> {
        self.tree.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Hands a change to the journal writer. Called with the lock held, so changes reach the
    /// writer in the order they were made; the caller awaits `written` once it has let go of
    /// the lock, and answers only when the change is on disk.
    fn persist(&self, change: Change) -> StoreResult<Written> {
        let writer = self
            .writer
            .as_ref()
            .ok_or_else(|| StoreError::Unavailable("the metadata store is read-only".into()))?;
        let (written, done) = oneshot::channel();
        writer
            .send(Pending { change, written })
            .map_err(|_| StoreError::Unavailable("the metadata writer has stopped".into()))?;
        Ok(Written(Some(done)))
    }

    fn notify(&self, event: WatchEvent) {
        // No subscriber is fine: nobody is watching yet.
        let _ = self.events.send(event);
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
                let (seq, parent_node) = {
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
                    (s, p.clone())
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
                let node = Node {
                    data,
                    version: 0,
                    czxid,
                    ephemeral: mode == CreateMode::Ephemeral,
                    sequence: 0,
                };
                tree.nodes.insert(actual.clone(), node.clone());
                let written = if mode != CreateMode::Ephemeral {
                    let mut put = vec![(actual.clone(), node)];
                    // The parent's counter is part of the change.
                    if mode == CreateMode::PersistentSequential {
                        put.push((parent.to_string(), parent_node));
                    }
                    self.persist(Change {
                        zxid: czxid,
                        put,
                        del: Vec::new(),
                    })?
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
                let zxid = tree.zxid + 1;
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
                let node = node.clone();
                tree.zxid = zxid;
                let written = if !node.ephemeral {
                    self.persist(Change {
                        zxid,
                        put: vec![(path.to_string(), node)],
                        del: Vec::new(),
                    })?
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
                    self.persist(Change {
                        zxid: tree.zxid,
                        put: Vec::new(),
                        del: vec![path.to_string()],
                    })?
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
    if file.exists() || dir.join(JOURNAL_FILE).exists() {
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
    use super::journal::{MIN_COMPACTION_BYTES, decode_records};
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

    async fn data_of(store: &EmbeddedStore, path: &str) -> Option<String> {
        let (data, _) = store.get(path).await.unwrap()?;
        data.map(|d| String::from_utf8(d).unwrap())
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn changes_go_to_the_journal_and_a_torn_tail_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path()).unwrap();
        let snapshot_before = std::fs::read(dir.path().join(TREE_FILE)).unwrap();
        store
            .create("/a", Some(b"1".to_vec()), CreateMode::Persistent)
            .await
            .unwrap();
        store.set("/a", Some(b"2".to_vec()), Some(0)).await.unwrap();
        store
            .create("/b", None, CreateMode::Persistent)
            .await
            .unwrap();
        store.delete("/b", None).await.unwrap();
        assert_eq!(
            std::fs::read(dir.path().join(TREE_FILE)).unwrap(),
            snapshot_before,
            "a change does not rewrite the snapshot"
        );
        let journal = dir.path().join(JOURNAL_FILE);
        let whole = std::fs::read(&journal).unwrap();
        assert_eq!(decode_records(&whole).0.len(), 4);
        drop(store);
        // A crash mid-append: the last record cut short, then garbage after a whole one.
        // The torn delete of /b was never acknowledged: /b stays.
        for (tail, b_stays) in [
            (&whole[..whole.len() - 3], true),
            (
                &[whole.as_slice(), b"\x00\x00\x00\x09garbage!!"].concat()[..],
                false,
            ),
        ] {
            std::fs::write(&journal, tail).unwrap();
            std::fs::write(dir.path().join(TREE_FILE), &snapshot_before).unwrap();
            let store = EmbeddedStore::open(dir.path()).unwrap();
            assert_eq!(data_of(&store, "/a").await.as_deref(), Some("2"));
            assert_eq!(store.get("/b").await.unwrap().is_some(), b_stays);
            assert_eq!(
                std::fs::metadata(&journal).unwrap().len(),
                0,
                "folded into the snapshot at start"
            );
            // Appends after the dropped tail replay.
            store.set("/a", Some(b"3".to_vec()), None).await.unwrap();
            drop(store);
            let store = EmbeddedStore::open(dir.path()).unwrap();
            assert_eq!(data_of(&store, "/a").await.as_deref(), Some("3"));
            drop(store);
            std::fs::write(&journal, &whole).unwrap();
        }
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn records_already_in_the_snapshot_are_not_replayed() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path()).unwrap();
        store
            .create("/a", Some(b"old".to_vec()), CreateMode::Persistent)
            .await
            .unwrap();
        let journal = std::fs::read(dir.path().join(JOURNAL_FILE)).unwrap();
        store.set("/a", Some(b"new".to_vec()), None).await.unwrap();
        drop(store);
        // Reopening folds the journal into the snapshot; a crash before the journal was emptied
        // would leave the older record next to the newer snapshot.
        drop(EmbeddedStore::open(dir.path()).unwrap());
        std::fs::write(dir.path().join(JOURNAL_FILE), journal).unwrap();
        let store = EmbeddedStore::open(dir.path()).unwrap();
        assert_eq!(data_of(&store, "/a").await.as_deref(), Some("new"));
        assert_eq!(store.get("/a").await.unwrap().unwrap().1.version, 1);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_large_journal_is_compacted_while_running() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path()).unwrap();
        store
            .create("/big", None, CreateMode::Persistent)
            .await
            .unwrap();
        let value = "x".repeat(100_000);
        // Enough rewrites of one node for the journal to outgrow the threshold several times.
        let rounds = 3 * MIN_COMPACTION_BYTES as usize / value.len();
        for _ in 0..rounds {
            store
                .set("/big", Some(value.clone().into_bytes()), None)
                .await
                .unwrap();
        }
        let journal_len = std::fs::metadata(dir.path().join(JOURNAL_FILE))
            .unwrap()
            .len();
        assert!(
            journal_len <= MIN_COMPACTION_BYTES,
            "journal {journal_len} bytes"
        );
        drop(store);
        let (on_disk, _) = {
            let loaded = load(dir.path()).unwrap();
            (loaded.tree, ())
        };
        assert_eq!(on_disk.nodes["/big"].version, rounds as i32);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_read_only_store_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path()).unwrap();
        store
            .create("/a", Some(b"1".to_vec()), CreateMode::Persistent)
            .await
            .unwrap();
        let journal = std::fs::read(dir.path().join(JOURNAL_FILE)).unwrap();
        let reader = EmbeddedStore::open_read_only(dir.path()).unwrap();
        assert_eq!(data_of(&reader, "/a").await.as_deref(), Some("1"));
        assert!(matches!(
            reader.create("/b", None, CreateMode::Persistent).await,
            Err(StoreError::Unavailable(_))
        ));
        assert_eq!(
            std::fs::read(dir.path().join(JOURNAL_FILE)).unwrap(),
            journal
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
