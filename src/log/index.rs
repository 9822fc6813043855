//! Kafka's memory-mapped sparse indexes: `.index` (offset -> position) and `.timeindex`
//! (timestamp -> offset). Both store offsets relative to the segment's base offset.
//!
//! The file of an active segment is preallocated to `segment.index.bytes` and filled from the
//! front; a closed segment's file is trimmed to its entries, so `len / entry size` is its count.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use memmap2::MmapMut;

use super::error::{IoContext, LogError, Result};

pub const OFFSET_ENTRY: usize = 8;
pub const TIME_ENTRY: usize = 12;

/// One index file of fixed-size entries. `OffsetIndex` and `TimeIndex` give the entries meaning.
///
/// The file is memory-mapped and its descriptor closed at once, as Kafka does: a mapping stays
/// valid without it, so an index costs no descriptor. The indexes of segments loaded at
/// start-up that are not active are mapped only when first read (Kafka's `LazyIndex`), so a
/// start with many segments neither touches their pages nor spends mappings on them.
pub struct IndexFile {
    path: PathBuf,
    /// `None` inside: the file is empty (nothing to map) or could not be mapped, in which case
    /// the index reads as empty and lookups scan from the segment's start (slower, still right).
    mmap: OnceLock<Option<MmapMut>>,
    entry_size: usize,
    entries: usize,
    max_entries: usize,
    /// A length that is not a whole number of entries means a torn write: Kafka calls such an
    /// index corrupt, and so do we.
    torn: bool,
}

/// Maps the file at `path` (creating it when missing); `None` when it is empty.
fn map_file(path: &Path, set_len: Option<usize>) -> Result<Option<MmapMut>> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .at(path)?;
    let mut len = file.metadata().at(path)?.len();
    // A file that already has the length is left alone, as Kafka's `AbstractIndex.resize`
    // leaves it: truncating to the same length still rewrites the inode's times, and a start
    // with 10,000 logs did that to 20,000 index files.
    if let Some(bytes) = set_len.map(|b| b as u64)
        && bytes != len
    {
        file.set_len(bytes).at(path)?;
        len = bytes;
    }
    if len == 0 {
        return Ok(None);
    }
    // SAFETY: the file is owned by this broker's log directory, which is locked against other
    // brokers; nothing else truncates it while it is mapped. The descriptor closes when `file`
    // drops; the mapping stays valid.
    let mmap = unsafe { MmapMut::map_mut(&file) }.at(path)?;
    Ok(Some(mmap))
}

impl IndexFile {
    /// Opens or creates the file. An existing file's entries are all its whole entries; trailing
    /// zero entries left by preallocation are dropped by the caller's sanity check.
    fn open(path: &Path, entry_size: usize, max_bytes: usize, preallocate: bool) -> Result<Self> {
        let len = match std::fs::metadata(path) {
            Ok(m) => m.len() as usize,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(e) => return Err(LogError::io(path, e)),
        };
        let entries = len / entry_size;
        let mut idx = IndexFile {
            path: path.to_path_buf(),
            mmap: OnceLock::new(),
            entry_size,
            entries,
            max_entries: (max_bytes / entry_size).max(1),
            torn: !len.is_multiple_of(entry_size),
        };
        if preallocate {
            idx.resize_file(idx.max_entries.max(entries) * entry_size)?;
        } else {
            idx.map()?;
        }
        Ok(idx)
    }

    /// Like `open` for a segment that is not active, without mapping the file until it is
    /// first read. The file must be trimmed (as a segment that stopped being active leaves it):
    /// its length gives the entries.
    fn open_lazily(path: &Path, entry_size: usize, max_bytes: usize) -> Result<Self> {
        let len = match std::fs::metadata(path) {
            Ok(m) => m.len() as usize,
            // A missing index is created (empty) when first mapped.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(e) => return Err(LogError::io(path, e)),
        };
        Ok(IndexFile {
            path: path.to_path_buf(),
            mmap: OnceLock::new(),
            entry_size,
            entries: len / entry_size,
            max_entries: (max_bytes / entry_size).max(1),
            torn: !len.is_multiple_of(entry_size),
        })
    }

    /// The last entry read from the file without mapping it (the check of a lazy index).
    fn last_on_disk(&self) -> std::result::Result<Option<Vec<u8>>, String> {
        use std::os::unix::fs::FileExt;
        if self.torn {
            return Err("length is not a multiple of the entry size".into());
        }
        let Some(last) = self.entries.checked_sub(1) else {
            return Ok(None);
        };
        let mut buf = vec![0u8; self.entry_size];
        std::fs::File::open(&self.path)
            .and_then(|f| f.read_exact_at(&mut buf, (last * self.entry_size) as u64))
            .map_err(|e| format!("cannot read the last entry: {e}"))?;
        Ok(Some(buf))
    }

    fn map(&mut self) -> Result<()> {
        self.mmap = OnceLock::from(map_file(&self.path, None)?);
        Ok(())
    }

    /// The mapping, made now if the file was opened lazily.
    fn mapped(&self) -> Option<&MmapMut> {
        self.mmap
            .get_or_init(|| match map_file(&self.path, None) {
                Ok(m) => m,
                Err(e) => {
                    tracing::warn!(path = %self.path.display(), error = %e, "cannot map index; lookups scan the segment");
                    None
                }
            })
            .as_ref()
    }

    fn mapped_mut(&mut self) -> Option<&mut MmapMut> {
        self.mapped();
        self.mmap.get_mut().and_then(|m| m.as_mut())
    }

    fn resize_file(&mut self, bytes: usize) -> Result<()> {
        // Unmapped before the length changes: a mapping past the end of a file faults.
        self.mmap = OnceLock::new();
        self.mmap = OnceLock::from(map_file(&self.path, Some(bytes))?);
        self.torn = false;
        Ok(())
    }

    /// Entries readable now: all of them, unless the mapping is shorter (a lazy map failed).
    fn readable(&self) -> usize {
        self.mapped()
            .map_or(0, |m| (m.len() / self.entry_size).min(self.entries))
    }

    fn entry(&self, n: usize) -> &[u8] {
        static ZEROS: [u8; TIME_ENTRY] = [0; TIME_ENTRY];
        self.mapped()
            .and_then(|m| m.get(n * self.entry_size..(n + 1) * self.entry_size))
            .unwrap_or(&ZEROS[..self.entry_size.min(TIME_ENTRY)])
    }

    fn push(&mut self, bytes: &[u8]) -> Result<()> {
        if self.entries >= self.max_entries {
            return Err(LogError::io(
                &self.path,
                std::io::Error::other("index is full"),
            ));
        }
        let needed = (self.entries + 1) * self.entry_size;
        if self.mapped().is_none_or(|m| m.len() < needed) {
            self.resize_file(self.max_entries * self.entry_size)?;
        }
        let at = self.entries * self.entry_size;
        let size = self.entry_size;
        if let Some(m) = self.mapped_mut() {
            m[at..at + size].copy_from_slice(bytes);
        }
        self.entries += 1;
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.entries
    }
    pub fn is_empty(&self) -> bool {
        self.entries == 0
    }
    pub fn is_full(&self) -> bool {
        self.entries >= self.max_entries
    }
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Shrinks the file to exactly its entries, as Kafka does when a segment stops being active.
    pub fn trim(&mut self) -> Result<()> {
        self.flush()?;
        self.resize_file(self.entries * self.entry_size)
    }

    /// Grows the file back to the preallocated size when its segment becomes active again.
    pub fn preallocate(&mut self) -> Result<()> {
        let bytes = self.max_entries.max(self.entries) * self.entry_size;
        self.resize_file(bytes)
    }

    pub fn truncate_entries(&mut self, keep: usize) {
        let keep = keep.min(self.entries);
        let (from, to) = (keep * self.entry_size, self.entries * self.entry_size);
        if let Some(m) = self.mapped_mut()
            && let Some(gone) = m.get_mut(from..to)
        {
            gone.fill(0);
        }
        self.entries = keep;
    }

    pub fn flush(&self) -> Result<()> {
        // An index never mapped was never written.
        if let Some(Some(m)) = self.mmap.get() {
            m.flush().at(&self.path)?;
        }
        Ok(())
    }

    /// Index of the last entry whose key is <= `target`, keys read by `key`.
    fn floor<K: Ord>(&self, target: K, key: impl Fn(&[u8]) -> K) -> Option<usize> {
        let (mut lo, mut hi) = (0usize, self.readable());
        while lo < hi {
            let mid = (lo + hi) / 2;
            if key(self.entry(mid)) <= target {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo.checked_sub(1)
    }

    /// Drops the all-zero entries a preallocated file has after its last real entry. Real
    /// entries never are all zeros (an offset entry's position and a time entry's timestamp are
    /// positive), and they form a prefix, so a binary search finds the end without touching
    /// every page of a 10 MiB file.
    fn drop_zero_tail(&mut self) {
        // Without this each probe of the (sparse) preallocated tail faults in a readahead
        // window of zeroed pages: after a crash, every active segment's two 10 MiB indexes
        // made loading 10,000 logs take minutes of page-cache zeroing.
        let advised = self
            .mapped()
            .is_some_and(|m| m.advise(memmap2::Advice::Random).is_ok());
        let zero = |n: usize| self.entry(n).iter().all(|&b| b == 0);
        let (mut lo, mut hi) = (0usize, self.readable());
        while lo < hi {
            let mid = (lo + hi) / 2;
            if zero(mid) {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        self.entries = lo;
        if advised && let Some(m) = self.mapped() {
            // Back to the kernel's default for the reads and appends that follow.
            let _ = m.advise(memmap2::Advice::Normal);
        }
    }

    fn rename(&mut self, to: &Path) -> Result<()> {
        std::fs::rename(&self.path, to).at(&self.path)?;
        self.path = to.to_path_buf();
        Ok(())
    }
}

fn i32_at(b: &[u8], at: usize) -> i32 {
    i32::from_be_bytes(b[at..at + 4].try_into().unwrap_or([0; 4]))
}
fn i64_at(b: &[u8], at: usize) -> i64 {
    i64::from_be_bytes(b[at..at + 8].try_into().unwrap_or([0; 8]))
}

/// `.index`: relative offset -> byte position in the `.log`.
pub struct OffsetIndex {
    pub file: IndexFile,
    base_offset: i64,
}

impl OffsetIndex {
    pub fn open(path: &Path, base_offset: i64, max_bytes: usize, active: bool) -> Result<Self> {
        Ok(OffsetIndex {
            file: IndexFile::open(path, OFFSET_ENTRY, max_bytes, active)?,
            base_offset,
        })
    }

    /// Opens the trimmed index of a segment that is not active, mapping it when first read.
    pub fn open_lazily(path: &Path, base_offset: i64, max_bytes: usize) -> Result<Self> {
        Ok(OffsetIndex {
            file: IndexFile::open_lazily(path, OFFSET_ENTRY, max_bytes)?,
            base_offset,
        })
    }

    pub fn entry(&self, n: usize) -> (i64, u32) {
        let e = self.file.entry(n);
        (self.base_offset + i32_at(e, 0) as i64, i32_at(e, 4) as u32)
    }

    pub fn last(&self) -> Option<(i64, u32)> {
        self.file.readable().checked_sub(1).map(|n| self.entry(n))
    }

    /// The position to start scanning from for `offset`: the largest indexed offset <= `offset`.
    pub fn lookup(&self, offset: i64) -> u32 {
        let rel = offset - self.base_offset;
        self.file
            .floor(rel, |e| i32_at(e, 0) as i64)
            .map_or(0, |n| self.entry(n).1)
    }

    pub fn append(&mut self, offset: i64, position: u32) -> Result<()> {
        if let Some((last_off, last_pos)) = self.last()
            && (offset <= last_off || position <= last_pos)
        {
            return Ok(());
        }
        let mut e = [0u8; OFFSET_ENTRY];
        e[..4].copy_from_slice(&((offset - self.base_offset) as i32).to_be_bytes());
        e[4..].copy_from_slice(&(position as i32).to_be_bytes());
        self.file.push(&e)
    }

    /// Drops entries for offsets >= `offset`.
    pub fn truncate_to(&mut self, offset: i64) {
        let keep = self
            .file
            .floor(offset - self.base_offset - 1, |e| i32_at(e, 0) as i64)
            .map_or(0, |n| n + 1);
        self.file.truncate_entries(keep);
    }

    /// The check of a lazily opened index, reading only its last entry (Kafka's sanity check,
    /// with the position also inside the log): a garbled or torn file is caught at load
    /// without mapping every index.
    pub fn check_last(&self, log_size: u64) -> std::result::Result<(), String> {
        let Some(e) = self.file.last_on_disk()? else {
            return Ok(());
        };
        let (off, pos) = (
            self.base_offset + i32_at(&e, 0) as i64,
            i32_at(&e, 4) as u32,
        );
        if off < self.base_offset || pos as u64 >= log_size.max(1) {
            return Err(format!("last entry ({off}, {pos}) is outside the segment"));
        }
        Ok(())
    }

    /// Kafka's sanity check, made stricter: entries must increase and stay inside the log.
    /// Preallocated zero entries at the tail (an active segment after a crash) are dropped.
    pub fn check(&mut self, log_size: u64) -> std::result::Result<(), String> {
        if self.file.torn {
            return Err("length is not a multiple of the entry size".into());
        }
        self.file.drop_zero_tail();
        let mut prev: Option<(i64, u32)> = None;
        for n in 0..self.file.entries {
            let (off, pos) = self.entry(n);
            if off < self.base_offset || pos as u64 >= log_size.max(1) {
                return Err(format!("entry {n} ({off}, {pos}) is outside the segment"));
            }
            if let Some((po, pp)) = prev
                && (off <= po || pos <= pp)
            {
                return Err(format!("entry {n} ({off}, {pos}) does not increase"));
            }
            prev = Some((off, pos));
        }
        Ok(())
    }
}

/// `.timeindex`: timestamp -> relative offset, timestamps strictly increasing.
pub struct TimeIndex {
    pub file: IndexFile,
    base_offset: i64,
}

impl TimeIndex {
    pub fn open(path: &Path, base_offset: i64, max_bytes: usize, active: bool) -> Result<Self> {
        Ok(TimeIndex {
            file: IndexFile::open(path, TIME_ENTRY, max_bytes, active)?,
            base_offset,
        })
    }

    /// Opens the trimmed index of a segment that is not active, mapping it when first read.
    pub fn open_lazily(path: &Path, base_offset: i64, max_bytes: usize) -> Result<Self> {
        Ok(TimeIndex {
            file: IndexFile::open_lazily(path, TIME_ENTRY, max_bytes)?,
            base_offset,
        })
    }

    pub fn entry(&self, n: usize) -> (i64, i64) {
        let e = self.file.entry(n);
        (i64_at(e, 0), self.base_offset + i32_at(e, 8) as i64)
    }

    pub fn last(&self) -> Option<(i64, i64)> {
        self.file.readable().checked_sub(1).map(|n| self.entry(n))
    }

    /// The entry with the largest timestamp <= `timestamp`: (timestamp, offset).
    pub fn lookup(&self, timestamp: i64) -> Option<(i64, i64)> {
        self.file
            .floor(timestamp, |e| i64_at(e, 0))
            .map(|n| self.entry(n))
    }

    /// Appends unless the timestamp does not move forward. `force` writes even into the spare
    /// slot Kafka keeps for the final entry of a rolled segment.
    pub fn maybe_append(&mut self, timestamp: i64, offset: i64, force: bool) -> Result<()> {
        if let Some((last_ts, last_off)) = self.last()
            && (timestamp <= last_ts || offset < last_off)
        {
            return Ok(());
        }
        if self.file.is_full() && !force {
            return Ok(());
        }
        if self.file.is_full() {
            self.file.max_entries += 1;
        }
        let mut e = [0u8; TIME_ENTRY];
        e[..8].copy_from_slice(&timestamp.to_be_bytes());
        e[8..].copy_from_slice(&((offset - self.base_offset) as i32).to_be_bytes());
        self.file.push(&e)
    }

    pub fn truncate_to(&mut self, offset: i64) {
        let mut keep = self.file.entries;
        while keep > 0 && self.entry(keep - 1).1 >= offset {
            keep -= 1;
        }
        self.file.truncate_entries(keep);
    }

    /// [`OffsetIndex::check_last`] for the time index: the last entry's offset is in the
    /// segment and below `next_base` (the next segment's base offset).
    pub fn check_last(&self, next_base: i64) -> std::result::Result<(), String> {
        let Some(e) = self.file.last_on_disk()? else {
            return Ok(());
        };
        let off = self.base_offset + i32_at(&e, 8) as i64;
        if off < self.base_offset || off >= next_base {
            return Err(format!("last entry offset {off} is outside the segment"));
        }
        Ok(())
    }

    pub fn check(&mut self) -> std::result::Result<(), String> {
        if self.file.torn {
            return Err("length is not a multiple of the entry size".into());
        }
        self.file.drop_zero_tail();
        let mut prev: Option<(i64, i64)> = None;
        for n in 0..self.file.entries {
            let (ts, off) = self.entry(n);
            if off < self.base_offset {
                return Err(format!("entry {n} offset {off} is below the segment"));
            }
            if let Some((pt, po)) = prev
                && (ts <= pt || off < po)
            {
                return Err(format!("entry {n} ({ts}, {off}) does not increase"));
            }
            prev = Some((ts, off));
        }
        Ok(())
    }
}

/// Renames both index files along with their segment (`.deleted`, `.cleaned`, ...).
pub fn rename_index(file: &mut IndexFile, to: &Path) -> Result<()> {
    file.rename(to)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reopening_a_preallocated_index_leaves_the_file_untouched_and_a_short_one_is_grown() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("00000000000000000000.index");
        let mut idx = OffsetIndex::open(&path, 0, 1024, true).unwrap();
        idx.append(5, 100).unwrap();
        drop(idx);
        // An old modification time shows whether the reopen wrote the inode.
        let old = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000);
        let f = std::fs::File::options().write(true).open(&path).unwrap();
        f.set_modified(old).unwrap();
        drop(f);
        let mut idx = OffsetIndex::open(&path, 0, 1024, true).unwrap();
        assert!(idx.check(1000).is_ok());
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.len(), 1024);
        assert_eq!(
            meta.modified().unwrap(),
            old,
            "reopen rewrote the index file"
        );
        assert_eq!(idx.lookup(7), 100);
        drop(idx);
        // A trimmed file (a segment that was closed) becomes active again: grown as before.
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(16)
            .unwrap();
        let mut idx = OffsetIndex::open(&path, 0, 1024, true).unwrap();
        assert!(idx.check(1000).is_ok());
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 1024);
        assert_eq!(idx.lookup(7), 100);
    }

    #[test]
    fn offset_index_lookup_trim_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("00000000000000000100.index");
        let mut idx = OffsetIndex::open(&path, 100, 1024, true).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 1024);
        idx.append(110, 4000).unwrap();
        idx.append(120, 8000).unwrap();
        idx.append(120, 9000).unwrap(); // not increasing: ignored
        assert_eq!(idx.lookup(105), 0);
        assert_eq!(idx.lookup(110), 4000);
        assert_eq!(idx.lookup(119), 4000);
        assert_eq!(idx.lookup(500), 8000);
        idx.file.trim().unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 16);
        drop(idx);
        let mut idx = OffsetIndex::open(&path, 100, 1024, false).unwrap();
        assert_eq!(idx.file.len(), 2);
        assert!(idx.check(10_000).is_ok());
        assert!(
            idx.check(5_000).is_err(),
            "entry past the log end is corrupt"
        );
        idx.truncate_to(120);
        assert_eq!(idx.last(), Some((110, 4000)));
    }

    #[test]
    fn time_index_is_monotonic_and_keeps_a_slot_for_the_final_entry() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("00000000000000000000.timeindex");
        let mut idx = TimeIndex::open(&path, 0, 24, true).unwrap();
        idx.maybe_append(1000, 5, false).unwrap();
        idx.maybe_append(900, 9, false).unwrap();
        idx.maybe_append(2000, 9, false).unwrap();
        assert_eq!(idx.file.len(), 2);
        assert!(idx.file.is_full());
        idx.maybe_append(3000, 12, false).unwrap();
        assert_eq!(idx.file.len(), 2);
        idx.maybe_append(3000, 12, true).unwrap();
        assert_eq!(idx.file.len(), 3);
        assert_eq!(idx.lookup(1500), Some((1000, 5)));
        assert_eq!(idx.lookup(10), None);
        idx.truncate_to(9);
        assert_eq!(idx.last(), Some((1000, 5)));
    }
}
