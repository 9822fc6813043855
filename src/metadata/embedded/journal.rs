//! The embedded store on disk: the snapshot and the journal of changes made since (the format
//! is described in the parent module), read at start-up and written by one thread of its own.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use super::{Node, Tree};
use crate::log::checkpoint::write_atomically;
use crate::metadata::store::{StoreError, StoreResult};

/// File name of the persisted tree (the snapshot) inside the first log directory.
pub const TREE_FILE: &str = "odradek-metadata.json";
/// File name of the journal of changes made since the snapshot.
pub const JOURNAL_FILE: &str = "odradek-metadata.journal";

/// The journal is folded into a new snapshot once it is larger than the snapshot and than this:
/// rewriting the tree then costs no more than the appends that led to it.
pub(super) const MIN_COMPACTION_BYTES: u64 = 8 * 1024 * 1024;
/// Length and CRC before each record's payload.
pub(super) const RECORD_HEADER: usize = 8;
/// A length beyond this is a corrupt header, not a record (znode data is at most 1 MiB).
pub(super) const MAX_RECORD_BYTES: usize = 256 * 1024 * 1024;
/// One persistent change, as a journal record holds it: whole nodes rather than operations, so
/// that replaying a record twice (or over a snapshot that already holds it) changes nothing.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Change {
    pub(super) zxid: i64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(super) put: Vec<(String, Node)>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(super) del: Vec<String>,
}

pub(super) fn encode_record(change: &Change, out: &mut Vec<u8>) -> Result<(), String> {
    let payload = serde_json::to_vec(change).map_err(|e| e.to_string())?;
    let len = u32::try_from(payload.len()).map_err(|_| "record too large".to_string())?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&crc32c::crc32c(&payload).to_be_bytes());
    out.extend_from_slice(&payload);
    Ok(())
}

/// The whole records at the start of `bytes`, and how many bytes they take: reading stops at the
/// first record that is cut short or fails its CRC, as a crash mid-append leaves it.
pub(super) fn decode_records(bytes: &[u8]) -> (Vec<Change>, usize) {
    let mut changes = Vec::new();
    let mut pos = 0;
    while bytes.len() - pos >= RECORD_HEADER {
        let word = |at: usize| {
            u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
        };
        let len = word(pos) as usize;
        let crc = word(pos + 4);
        let start = pos + RECORD_HEADER;
        if len > MAX_RECORD_BYTES || bytes.len() - start < len {
            break;
        }
        let payload = &bytes[start..start + len];
        if crc32c::crc32c(payload) != crc {
            break;
        }
        let Ok(change) = serde_json::from_slice::<Change>(payload) else {
            break;
        };
        changes.push(change);
        pos = start + len;
    }
    (changes, pos)
}

/// What is on disk, read without changing anything: the snapshot with the journal replayed over
/// it, the journal's length up to its last whole record, and the snapshot's size.
pub(super) struct Loaded {
    pub(super) tree: Tree,
    pub(super) journal_valid: u64,
    pub(super) journal_len: u64,
    pub(super) replayed: usize,
    pub(super) snapshot_exists: bool,
}

pub(super) fn load(dir: &Path) -> Result<Loaded, String> {
    let file = dir.join(TREE_FILE);
    let (mut tree, snapshot_exists) = match std::fs::read(&file) {
        Ok(bytes) => (
            serde_json::from_slice::<Tree>(&bytes)
                .map_err(|e| format!("{}: corrupt metadata file: {e}", file.display()))?,
            true,
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => (Tree::default(), false),
        Err(e) => return Err(format!("{}: {e}", file.display())),
    };
    let journal = dir.join(JOURNAL_FILE);
    let bytes = match std::fs::read(&journal) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(format!("{}: {e}", journal.display())),
    };
    let (changes, valid) = decode_records(&bytes);
    let mut replayed = 0;
    let base = tree.zxid;
    for change in changes.iter().filter(|c| c.zxid > base) {
        tree.apply(change);
        replayed += 1;
    }
    tree.ensure_root();
    Ok(Loaded {
        tree,
        journal_valid: valid as u64,
        journal_len: bytes.len() as u64,
        replayed,
        snapshot_exists,
    })
}
/// A change on its way to the journal, and who waits for it to be on disk.
pub(super) struct Pending {
    pub(super) change: Change,
    pub(super) written: oneshot::Sender<Result<(), String>>,
}

/// The journal writer's side: the file, and its own copy of the persistent tree to write
/// snapshots from without taking the store's lock.
pub(super) struct Journal {
    pub(super) dir: PathBuf,
    pub(super) file: File,
    pub(super) len: u64,
    pub(super) snapshot_len: u64,
    pub(super) tree: Tree,
    /// Set when a failed append could not be cut back: nothing after it would replay.
    pub(super) damaged: Option<String>,
}

impl Journal {
    /// Appends `bytes` and makes them durable. On failure the journal is cut back to what it
    /// held, so that a later record does not follow a partial one (which would hide it from the
    /// replay); when even that fails, the journal cannot be trusted and refuses every write.
    pub(super) fn append(&mut self, bytes: &[u8]) -> Result<(), String> {
        if let Some(why) = &self.damaged {
            return Err(why.clone());
        }
        let path = self.dir.join(JOURNAL_FILE);
        let result = self
            .file
            .write_all(bytes)
            .and_then(|()| self.file.sync_data());
        match result {
            Ok(()) => {
                self.len += bytes.len() as u64;
                Ok(())
            }
            Err(e) => {
                let why = format!("{}: {e}", path.display());
                if let Err(cut) = self.file.set_len(self.len) {
                    let why = format!(
                        "the metadata journal is damaged ({why}; cannot cut back the partial \
                         write: {cut}): restart the broker"
                    );
                    self.damaged = Some(why.clone());
                    return Err(why);
                }
                Err(why)
            }
        }
    }

    /// Writes the tree as a new snapshot, then empties the journal. A crash between the two
    /// leaves records the snapshot already holds: their zxids tell the replay to skip them.
    pub(super) fn compact(&mut self) -> Result<(), String> {
        let bytes =
            serde_json::to_vec_pretty(&self.tree).map_err(|e| format!("cannot encode: {e}"))?;
        let snapshot = self.dir.join(TREE_FILE);
        write_atomically(&snapshot, &bytes).map_err(|e| format!("{}: {e}", snapshot.display()))?;
        self.snapshot_len = bytes.len() as u64;
        let journal = self.dir.join(JOURNAL_FILE);
        self.file
            .set_len(0)
            .and_then(|()| self.file.sync_all())
            .map_err(|e| format!("{}: {e}", journal.display()))?;
        self.len = 0;
        Ok(())
    }

    pub(super) fn wants_compaction(&self) -> bool {
        self.len > MIN_COMPACTION_BYTES.max(self.snapshot_len)
    }
}

/// The thread that appends changes to the journal, in the order they were made. Writing happens
/// here rather than on the async runtime or under the tree's lock. Group commit: every change
/// queued while the previous fsync ran goes out in one write and one fsync.
pub(super) fn spawn_writer(
    mut journal: Journal,
) -> std::io::Result<std::sync::mpsc::Sender<Pending>> {
    let (tx, rx) = std::sync::mpsc::channel::<Pending>();
    std::thread::Builder::new()
        .name("metadata-writer".into())
        .spawn(move || {
            while let Ok(first) = rx.recv() {
                let mut batch = vec![first];
                while let Ok(next) = rx.try_recv() {
                    batch.push(next);
                }
                let mut bytes = Vec::new();
                let result = batch
                    .iter()
                    .try_for_each(|p| encode_record(&p.change, &mut bytes))
                    .and_then(|()| journal.append(&bytes));
                if result.is_ok() {
                    for p in &batch {
                        journal.tree.apply(&p.change);
                    }
                }
                for p in batch {
                    // A waiter that gave up (its request was dropped) needs no answer.
                    let _ = p.written.send(result.clone());
                }
                if result.is_ok()
                    && journal.wants_compaction()
                    && let Err(e) = journal.compact()
                {
                    // The journal still holds every change: only its growth is not bounded.
                    tracing::error!(error = %e, "cannot compact the metadata journal");
                }
            }
        })?;
    Ok(tx)
}
/// A change's way to disk: None for a change with nothing to persist (ephemeral nodes).
pub(super) struct Written(pub(super) Option<oneshot::Receiver<Result<(), String>>>);

impl Written {
    pub(super) async fn wait(self) -> StoreResult<()> {
        let Some(done) = self.0 else { return Ok(()) };
        match done.await {
            Ok(result) => result.map_err(StoreError::Unavailable),
            Err(_) => Err(StoreError::Unavailable(
                "the metadata writer has stopped".into(),
            )),
        }
    }
}
