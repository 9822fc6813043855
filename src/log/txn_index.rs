//! `.txnindex`: the aborted transactions whose ABORT marker lies in a segment, 34 bytes each.
//! The file exists only once something was recorded, as in Kafka.

use std::fs;
use std::path::{Path, PathBuf};

use super::error::{IoContext, LogError, Result};

pub const ENTRY_SIZE: usize = 34;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbortedTxn {
    pub producer_id: i64,
    pub first_offset: i64,
    pub last_offset: i64,
    pub last_stable_offset: i64,
}

impl AbortedTxn {
    fn encode(&self) -> [u8; ENTRY_SIZE] {
        let mut e = [0u8; ENTRY_SIZE];
        e[2..10].copy_from_slice(&self.producer_id.to_be_bytes());
        e[10..18].copy_from_slice(&self.first_offset.to_be_bytes());
        e[18..26].copy_from_slice(&self.last_offset.to_be_bytes());
        e[26..34].copy_from_slice(&self.last_stable_offset.to_be_bytes());
        e
    }

    fn decode(e: &[u8]) -> Option<Self> {
        let i64_at = |at: usize| {
            e.get(at..at + 8)
                .and_then(|b| b.try_into().ok())
                .map(i64::from_be_bytes)
        };
        if e.get(0..2) != Some(&[0, 0]) {
            return None;
        }
        Some(AbortedTxn {
            producer_id: i64_at(2)?,
            first_offset: i64_at(10)?,
            last_offset: i64_at(18)?,
            last_stable_offset: i64_at(26)?,
        })
    }
}

pub struct TxnIndex {
    path: PathBuf,
    entries: Vec<AbortedTxn>,
}

impl TxnIndex {
    /// Loads the file if present. A damaged tail (partial or unknown-version entry) is dropped
    /// with a warning rather than failing the whole log.
    pub fn open(path: &Path) -> Result<Self> {
        let data = match fs::read(path) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(LogError::io(path, e)),
        };
        let mut entries = Vec::new();
        for chunk in data.chunks(ENTRY_SIZE) {
            match (chunk.len() == ENTRY_SIZE)
                .then(|| AbortedTxn::decode(chunk))
                .flatten()
            {
                Some(e) => entries.push(e),
                None => {
                    tracing::warn!(path = %path.display(), "ignoring damaged transaction index tail");
                    break;
                }
            }
        }
        Ok(TxnIndex {
            path: path.to_path_buf(),
            entries,
        })
    }

    pub fn entries(&self) -> &[AbortedTxn] {
        &self.entries
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn append(&mut self, txn: AbortedTxn) -> Result<()> {
        self.entries.push(txn);
        self.write()
    }

    /// Drops transactions whose ABORT marker is at or after `offset`.
    pub fn truncate_to(&mut self, offset: i64) -> Result<()> {
        let before = self.entries.len();
        self.entries.retain(|e| e.last_offset < offset);
        if self.entries.len() != before {
            self.write()?;
        }
        Ok(())
    }

    fn write(&self) -> Result<()> {
        if self.entries.is_empty() {
            return match fs::remove_file(&self.path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    Err(LogError::io(&self.path, e))
                }
                _ => Ok(()),
            };
        }
        let bytes: Vec<u8> = self.entries.iter().flat_map(|e| e.encode()).collect();
        fs::write(&self.path, bytes).at(&self.path)
    }

    pub fn flush(&self) -> Result<()> {
        if self.path.exists() {
            fs::File::open(&self.path)
                .and_then(|f| f.sync_data())
                .at(&self.path)?;
        }
        Ok(())
    }

    /// Moves the file (if it exists: it only does once something was recorded) to `to`.
    pub fn rename_to(&mut self, to: &Path) -> Result<()> {
        if self.path.exists() {
            fs::rename(&self.path, to).at(&self.path)?;
        }
        self.path = to.to_path_buf();
        Ok(())
    }
}
