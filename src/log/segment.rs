//! One segment of a partition log: `<base>.log` plus its `.index`, `.timeindex` and `.txnindex`.

use std::fs::{self, File};
use std::io::{IoSlice, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::SystemTime;

use bytes::{Bytes, BytesMut};

use super::batch::{self, BATCH_HEADER_LEN, BatchHeader, LOG_OVERHEAD, MAGIC_OFFSET};
use super::descriptors::SegmentFile;
use super::error::{IoContext, LogError, Result};
use super::index::{OffsetIndex, TimeIndex, rename_index};
use super::txn_index::TxnIndex;

pub const LOG_SUFFIX: &str = "log";
pub const INDEX_SUFFIX: &str = "index";
pub const TIME_INDEX_SUFFIX: &str = "timeindex";
pub const TXN_INDEX_SUFFIX: &str = "txnindex";
pub const DELETED_SUFFIX: &str = "deleted";
/// A segment written by the log cleaner, not yet part of the log (Kafka's `.cleaned`).
pub const CLEANED_SUFFIX: &str = "cleaned";
/// A cleaned segment being swapped in; found at load, the swap is completed (Kafka's `.swap`).
pub const SWAP_SUFFIX: &str = "swap";

/// Source of [`LogSegment::id`].
static NEXT_SEGMENT_ID: AtomicU64 = AtomicU64::new(1);

/// The smallest legacy entry: offset, size, crc, magic, attributes, key and value lengths.
const MIN_LEGACY_ENTRY: u64 = LOG_OVERHEAD as u64 + 14;

/// `00000000000000368769`: Kafka's file name prefix for a base offset.
pub fn file_prefix(base_offset: i64) -> String {
    format!("{base_offset:020}")
}

pub fn segment_path(dir: &Path, base_offset: i64, suffix: &str) -> PathBuf {
    dir.join(format!("{}.{suffix}", file_prefix(base_offset)))
}

thread_local! {
    /// Set while this thread may not wait for the disk (see [`cached_only`]).
    static CACHED_ONLY: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f` with this thread's segment reads made of page-cache hits only: a read that would
/// wait for the disk, or a segment file that would have to be opened, fails with
/// `WouldBlock` instead. This lets an async runtime thread locate a fetch's bytes itself when
/// they are hot and hand the read to the blocking pool only when they are not. (A thread-local
/// rather than a parameter, so that the one read path serves both.)
pub fn cached_only<T>(f: impl FnOnce() -> T) -> T {
    struct Reset(bool);
    impl Drop for Reset {
        fn drop(&mut self) {
            CACHED_ONLY.with(|c| c.set(self.0));
        }
    }
    let _reset = Reset(CACHED_ONLY.with(|c| c.replace(true)));
    f()
}

fn is_cached_only() -> bool {
    CACHED_ONLY.with(|c| c.get())
}

/// Whether a failed read failed for [`cached_only`].
pub fn would_block(e: &LogError) -> bool {
    matches!(e, LogError::Io { source, .. } if source.kind() == std::io::ErrorKind::WouldBlock)
}

/// `read_exact_at`, or under [`cached_only`] `preadv2(RWF_NOWAIT)`, which fails with EAGAIN
/// rather than wait for the disk.
fn read_exact_at(file: &File, mut buf: &mut [u8], mut position: u64) -> std::io::Result<()> {
    if !is_cached_only() {
        return file.read_exact_at(buf, position);
    }
    use std::os::fd::AsRawFd;
    while !buf.is_empty() {
        let iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        let offset = i64::try_from(position).map_err(std::io::Error::other)?;
        // SAFETY: one iovec over a live, writable buffer; the descriptor is `file`'s.
        let n = unsafe { libc::preadv2(file.as_raw_fd(), &iov, 1, offset, libc::RWF_NOWAIT) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EINTR) => continue,
                // Kernels or file systems without RWF_NOWAIT: treat as "may block".
                Some(libc::EAGAIN) | Some(libc::EOPNOTSUPP) | Some(libc::EINVAL) => {
                    return Err(std::io::ErrorKind::WouldBlock.into());
                }
                _ => return Err(e),
            }
        }
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        let n = n as usize;
        buf = &mut buf[n..];
        position += n as u64;
    }
    Ok(())
}

/// What the log needs to know of one stored entry (a v2 batch or a legacy message) without
/// reading its records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryInfo {
    pub position: u64,
    pub size: u64,
    pub magic: i8,
    /// For legacy entries the first offset is unknown without decompressing; the last is used.
    pub base_offset: i64,
    pub last_offset: i64,
    pub max_timestamp: i64,
    pub partition_leader_epoch: i32,
    pub header: Option<BatchHeader>,
}

/// Reads the header of the entry at `position`, or `None` when the bytes there do not hold a
/// complete, plausible entry header (end of file, torn write, garbage).
pub fn read_entry_info(file: &File, position: u64, file_size: u64) -> Result<Option<EntryInfo>> {
    if position + LOG_OVERHEAD as u64 + 5 > file_size {
        return Ok(None);
    }
    let avail = (file_size - position).min(BATCH_HEADER_LEN as u64) as usize;
    let mut head = [0u8; BATCH_HEADER_LEN];
    read_exact_at(file, &mut head[..avail], position).map_err(|e| LogError::io("<segment>", e))?;
    let Some(size) = batch::entry_size(&head) else {
        return Ok(None);
    };
    if size < MIN_LEGACY_ENTRY as i64 || position + size as u64 > file_size {
        return Ok(None);
    }
    let size = size as u64;
    let offset = i64::from_be_bytes(head[0..8].try_into().unwrap_or([0; 8]));
    let magic = head[MAGIC_OFFSET] as i8;
    let info = match magic {
        2 => {
            if size < BATCH_HEADER_LEN as u64 {
                return Ok(None);
            }
            let h = BatchHeader::parse(&head)?;
            if h.last_offset_delta < 0 {
                return Ok(None);
            }
            EntryInfo {
                position,
                size,
                magic,
                base_offset: h.base_offset,
                last_offset: h.last_offset(),
                max_timestamp: h.max_timestamp,
                partition_leader_epoch: h.partition_leader_epoch,
                header: Some(h),
            }
        }
        0 | 1 => EntryInfo {
            position,
            size,
            magic,
            base_offset: offset,
            last_offset: offset,
            max_timestamp: if magic == 1 && avail >= 26 {
                i64::from_be_bytes(head[18..26].try_into().unwrap_or([0; 8]))
            } else {
                -1
            },
            partition_leader_epoch: -1,
            header: None,
        },
        _ => return Ok(None),
    };
    Ok(Some(info))
}

/// Checks a whole stored entry (CRC-32C for v2, CRC-32 for legacy messages).
fn validate_entry(bytes: &[u8], info: &EntryInfo) -> Result<()> {
    if info.magic == 2 {
        batch::validate_stored(bytes).map(|_| ())
    } else {
        let crc = u32::from_be_bytes(bytes[12..16].try_into().unwrap_or([0; 4]));
        let mut h = crc32fast::Hasher::new();
        h.update(&bytes[16..]);
        if h.finalize() == crc {
            Ok(())
        } else {
            Err(LogError::CorruptMessage(
                "legacy message CRC mismatch".into(),
            ))
        }
    }
}

pub struct LogSegment {
    pub base_offset: i64,
    /// Unique among the segments this process opened: lets the cleaner, which works without the
    /// log's lock, tell at swap time whether the segments it read are still the log's.
    id: u64,
    dir: PathBuf,
    log_path: PathBuf,
    /// Open while the segment is active, opened on demand otherwise (see `descriptors`);
    /// shared with readers and the log cleaner, which read without holding the log.
    log: Arc<SegmentFile>,
    size: u64,
    pub offset_index: OffsetIndex,
    pub time_index: TimeIndex,
    pub txn_index: TxnIndex,
    index_interval_bytes: usize,
    bytes_since_last_index_entry: usize,
    /// The largest timestamp and its offset; read from the time index when first needed, so
    /// that loading a segment that is not active leaves its index unmapped.
    max_timestamp: OnceLock<(i64, i64)>,
    /// Max timestamp of the first batch: what `segment.ms` is measured from.
    rolling_timestamp: Option<i64>,
    created: SystemTime,
}

/// Sizes and intervals a segment needs from its topic's config.
#[derive(Debug, Clone, Copy)]
pub struct SegmentSettings {
    pub index_interval_bytes: usize,
    pub max_index_bytes: usize,
}

/// How a segment is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    /// The log's last segment: its `.log` stays open, its indexes are preallocated.
    Active,
    /// A segment before the last: its `.log` is opened when first needed, indexes checked now.
    Closed,
    /// A closed segment the loader does not recover (below the recovery point after a clean
    /// shutdown): its indexes are also mapped only when first read, and only their last
    /// entries checked. `next_base` is the next segment's base offset.
    ClosedLazy { next_base: i64 },
}

impl LogSegment {
    /// Opens the segment at `base_offset`, creating missing files. `active` preallocates indexes.
    /// Returns the segment and whether its indexes need a rebuild.
    pub fn open(
        dir: &Path,
        base_offset: i64,
        settings: SegmentSettings,
        active: bool,
    ) -> Result<(LogSegment, bool)> {
        let mode = if active {
            OpenMode::Active
        } else {
            OpenMode::Closed
        };
        Self::open_with_suffix(dir, base_offset, settings, mode, None)
    }

    /// Like [`LogSegment::open`] with the mode given.
    pub fn open_as(
        dir: &Path,
        base_offset: i64,
        settings: SegmentSettings,
        mode: OpenMode,
    ) -> Result<(LogSegment, bool)> {
        Self::open_with_suffix(dir, base_offset, settings, mode, None)
    }

    /// Creates an empty segment whose files carry the `.cleaned` suffix, for the log cleaner to
    /// fill; leftovers of an earlier attempt are replaced.
    pub fn create_cleaned(
        dir: &Path,
        base_offset: i64,
        settings: SegmentSettings,
    ) -> Result<LogSegment> {
        for suffix in [
            LOG_SUFFIX,
            INDEX_SUFFIX,
            TIME_INDEX_SUFFIX,
            TXN_INDEX_SUFFIX,
        ] {
            let path = with_suffix(&segment_path(dir, base_offset, suffix), CLEANED_SUFFIX);
            match fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(LogError::io(&path, e));
                }
                _ => {}
            }
        }
        let (seg, _) = Self::open_with_suffix(
            dir,
            base_offset,
            settings,
            OpenMode::Active,
            Some(CLEANED_SUFFIX),
        )?;
        Ok(seg)
    }

    fn open_with_suffix(
        dir: &Path,
        base_offset: i64,
        settings: SegmentSettings,
        mode: OpenMode,
        extra: Option<&str>,
    ) -> Result<(LogSegment, bool)> {
        let path = |suffix: &str| {
            let p = segment_path(dir, base_offset, suffix);
            extra.map_or_else(|| p.clone(), |e| with_suffix(&p, e))
        };
        let log_path = path(LOG_SUFFIX);
        let index_path = path(INDEX_SUFFIX);
        let time_path = path(TIME_INDEX_SUFFIX);
        let indexes_existed = index_path.exists() && time_path.exists();
        let (log, meta) = match mode {
            OpenMode::Active => {
                let log = SegmentFile::open_active(&log_path)?;
                let meta = log.get()?.metadata().at(&log_path)?;
                (log, meta)
            }
            // A closed segment's file is opened when first read: loading costs no descriptor.
            OpenMode::Closed | OpenMode::ClosedLazy { .. } => (
                SegmentFile::cold(&log_path),
                fs::metadata(&log_path).at(&log_path)?,
            ),
        };
        let size = meta.len();
        let max_index_bytes = settings.max_index_bytes;
        let lazy_indexes = if let OpenMode::ClosedLazy { next_base } = mode
            && indexes_existed
        {
            let offsets = OffsetIndex::open_lazily(&index_path, base_offset, max_index_bytes)?;
            let times = TimeIndex::open_lazily(&time_path, base_offset, max_index_bytes)?;
            // Only the last entries are checked: a file failing that is opened as below,
            // checked whole and rebuilt.
            match offsets.check_last(size).and(times.check_last(next_base)) {
                Ok(()) => Some((offsets, times)),
                Err(reason) => {
                    tracing::warn!(segment = %log_path.display(), %reason, "corrupt index, rebuilding");
                    None
                }
            }
        } else {
            None
        };
        let lazy = lazy_indexes.is_some();
        let (offset_index, time_index) = if let Some(indexes) = lazy_indexes {
            indexes
        } else {
            let active = mode == OpenMode::Active;
            (
                OffsetIndex::open(&index_path, base_offset, max_index_bytes, active)?,
                TimeIndex::open(&time_path, base_offset, max_index_bytes, active)?,
            )
        };
        let (mut offset_index, mut time_index) = (offset_index, time_index);
        let txn_index = TxnIndex::open(&path(TXN_INDEX_SUFFIX))?;
        let mut needs_rebuild = !indexes_existed && size > 0;
        // Kafka skips these checks for segments it will not recover (KAFKA-7283): a lazily
        // loaded segment lies below the recovery point of a clean shutdown.
        if !lazy {
            if let Err(reason) = offset_index.check(size) {
                tracing::warn!(path = %index_path.display(), %reason, "corrupt offset index, rebuilding");
                needs_rebuild = true;
            }
            if let Err(reason) = time_index.check() {
                tracing::warn!(path = %time_path.display(), %reason, "corrupt time index, rebuilding");
                needs_rebuild = true;
            }
        }
        let segment = LogSegment {
            base_offset,
            id: NEXT_SEGMENT_ID.fetch_add(1, Ordering::Relaxed),
            dir: dir.to_path_buf(),
            log_path,
            log,
            size,
            offset_index,
            time_index,
            txn_index,
            index_interval_bytes: settings.index_interval_bytes,
            bytes_since_last_index_entry: 0,
            max_timestamp: OnceLock::new(),
            rolling_timestamp: None,
            created: meta
                .created()
                .or_else(|_| meta.modified())
                .unwrap_or_else(|_| SystemTime::now()),
        };
        Ok((segment, needs_rebuild))
    }

    pub fn size(&self) -> u64 {
        self.size
    }
    pub fn id(&self) -> u64 {
        self.id
    }
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }
    pub fn is_empty(&self) -> bool {
        self.size == 0
    }
    /// The segment's file, opened if it was closed; the caller keeps it only for the I/O at
    /// hand, also when reading it without holding the log.
    pub fn file(&self) -> Result<Arc<File>> {
        self.log.get()
    }

    /// Whether the `.log` file's descriptor is open now.
    pub fn is_file_open(&self) -> bool {
        self.log.is_open()
    }

    fn max_ts(&self) -> (i64, i64) {
        *self
            .max_timestamp
            .get_or_init(|| self.time_index.last().unwrap_or((-1, self.base_offset)))
    }

    fn set_max_ts(&mut self, timestamp: i64, offset: i64) {
        self.max_timestamp = OnceLock::from((timestamp, offset));
    }

    /// Appends already-validated entries whose offsets end at `last_offset`. `parts` are written
    /// with one vectored write so a stamped header and the client's bytes need no joining copy.
    pub fn append(
        &mut self,
        parts: &[&[u8]],
        last_offset: i64,
        max_timestamp: i64,
        offset_of_max_timestamp: i64,
    ) -> Result<()> {
        let position = self.size;
        let total: usize = parts.iter().map(|p| p.len()).sum();
        write_all_vectored(&*self.log.get()?, parts).at(&self.log_path)?;
        self.size += total as u64;
        if self.rolling_timestamp.is_none() && position == 0 {
            self.rolling_timestamp = Some(max_timestamp);
        }
        if max_timestamp > self.max_ts().0 {
            self.set_max_ts(max_timestamp, offset_of_max_timestamp);
        }
        if self.bytes_since_last_index_entry > self.index_interval_bytes {
            self.offset_index.append(last_offset, position as u32)?;
            let (ts, ts_offset) = self.max_ts();
            self.time_index.maybe_append(ts, ts_offset, false)?;
            self.bytes_since_last_index_entry = 0;
        }
        self.bytes_since_last_index_entry += total;
        Ok(())
    }

    /// Whether appending `incoming` bytes ending at `last_offset` must go into a new segment.
    pub fn is_full_for(&self, incoming: usize, last_offset: i64, segment_bytes: u64) -> bool {
        (self.size > 0 && self.size + incoming as u64 > segment_bytes)
            || self.offset_index.file.is_full()
            || self.time_index.file.is_full()
            || last_offset - self.base_offset > i32::MAX as i64
            || self.size + incoming as u64 > u32::MAX as u64
    }

    /// How long this segment has been filling, in the sense of `segment.ms`.
    pub fn time_waited_for_roll(&mut self, now_ms: i64, incoming_max_ts: i64) -> i64 {
        if self.rolling_timestamp.is_none() && self.size > 0 {
            self.rolling_timestamp = self
                .log
                .get()
                .ok()
                .and_then(|f| read_entry_info(&f, 0, self.size).ok().flatten())
                .map(|e| e.max_timestamp);
        }
        match self.rolling_timestamp {
            Some(ts) if ts >= 0 && incoming_max_ts >= 0 => incoming_max_ts - ts,
            _ => now_ms - system_time_ms(self.created),
        }
    }

    pub fn entry_at(&self, position: u64) -> Result<Option<EntryInfo>> {
        entry_at(&*self.log.get()?, &self.log_path, self.size, position)
    }

    /// The first entry whose last offset is >= `offset`, found through the offset index and a
    /// scan of at most `index.interval.bytes` plus one entry.
    pub fn find_entry(&self, offset: i64, from_position: u64) -> Result<Option<EntryInfo>> {
        let pos = (self.offset_index.lookup(offset) as u64).max(from_position);
        scan_for(&*self.log.get()?, &self.log_path, self.size, offset, pos)
    }

    /// Reads `len` bytes from `position` into one buffer.
    pub fn read_bytes(&self, position: u64, len: usize) -> Result<Bytes> {
        read_bytes(&*self.log.get()?, &self.log_path, self.size, position, len)
    }

    /// The segment's data as it stands now, readable without the log: see [`SegmentSnapshot`].
    pub fn snapshot(&self) -> SegmentSnapshot {
        SegmentSnapshot {
            base_offset: self.base_offset,
            file: self.log.clone(),
            path: self.log_path.clone(),
            size: self.size,
        }
    }

    /// Offset after the last entry, scanning from the last index entry.
    pub fn next_offset(&self) -> Result<i64> {
        let mut pos = self.offset_index.last().map_or(0, |(_, p)| p as u64);
        let mut next = self.base_offset;
        while let Some(e) = self.entry_at(pos)? {
            next = e.last_offset + 1;
            pos += e.size;
        }
        Ok(next)
    }

    /// Rebuilds the indexes from the data, validating every entry; the file is cut at the first
    /// invalid entry. Calls `on_entry` for each valid entry. Returns the bytes cut off.
    pub fn recover(&mut self, mut on_entry: impl FnMut(&EntryInfo)) -> Result<u64> {
        self.offset_index.file.truncate_entries(0);
        self.time_index.file.truncate_entries(0);
        self.bytes_since_last_index_entry = 0;
        self.set_max_ts(-1, self.base_offset);
        self.rolling_timestamp = None;
        let mut pos = 0u64;
        let mut buf = Vec::new();
        let log = self.log.get()?;
        while let Some(e) = self.entry_at(pos)? {
            buf.resize(e.size as usize, 0);
            log.read_exact_at(&mut buf, pos).at(&self.log_path)?;
            if let Err(err) = validate_entry(&buf, &e) {
                tracing::warn!(path = %self.log_path.display(), position = pos, error = %err, "invalid batch found during recovery");
                break;
            }
            if e.base_offset < self.base_offset
                || e.last_offset - self.base_offset > i32::MAX as i64
            {
                tracing::warn!(path = %self.log_path.display(), position = pos, offset = e.base_offset, "batch offset outside its segment during recovery");
                break;
            }
            if self.rolling_timestamp.is_none() {
                self.rolling_timestamp = Some(e.max_timestamp);
            }
            if e.max_timestamp > self.max_ts().0 {
                self.set_max_ts(e.max_timestamp, e.last_offset);
            }
            if self.bytes_since_last_index_entry > self.index_interval_bytes {
                self.offset_index.append(e.last_offset, pos as u32)?;
                let (ts, ts_offset) = self.max_ts();
                self.time_index.maybe_append(ts, ts_offset, false)?;
                self.bytes_since_last_index_entry = 0;
            }
            self.bytes_since_last_index_entry += e.size as usize;
            on_entry(&e);
            pos += e.size;
        }
        let dropped = self.size - pos;
        if dropped > 0 {
            log.set_len(pos).at(&self.log_path)?;
            self.size = pos;
        }
        self.txn_index.truncate_to(self.next_offset()?)?;
        Ok(dropped)
    }

    /// Removes every entry whose last offset is >= `offset`. Returns the bytes removed.
    pub fn truncate_to(&mut self, offset: i64) -> Result<u64> {
        let Some(entry) = self.find_entry(offset, 0)? else {
            return Ok(0);
        };
        let removed = self.size - entry.position;
        self.log.get()?.set_len(entry.position).at(&self.log_path)?;
        self.size = entry.position;
        self.offset_index.truncate_to(offset);
        self.time_index.truncate_to(offset);
        self.txn_index.truncate_to(offset)?;
        let (ts, off) = self.time_index.last().unwrap_or((-1, self.base_offset));
        self.set_max_ts(ts, off);
        self.bytes_since_last_index_entry = 0;
        if self.size == 0 {
            self.rolling_timestamp = None;
        }
        Ok(removed)
    }

    /// Largest timestamp in the segment, or its file's mtime when it has none, as Kafka's
    /// time-based retention uses.
    pub fn largest_timestamp(&self) -> i64 {
        let (max_ts, _) = self.max_ts();
        if max_ts >= 0 {
            return max_ts;
        }
        fs::metadata(&self.log_path)
            .and_then(|m| m.modified())
            .map_or(0, system_time_ms)
    }

    pub fn max_timestamp_so_far(&self) -> (i64, i64) {
        self.max_ts()
    }

    /// Called when a newer segment takes over: force the final time index entry and trim both
    /// indexes to their entries, as Kafka's `onBecomeInactiveSegment` does.
    pub fn close_active(&mut self) -> Result<()> {
        let (max_ts, max_ts_offset) = self.max_ts();
        if max_ts >= 0 {
            self.time_index.maybe_append(max_ts, max_ts_offset, true)?;
        }
        self.offset_index.file.trim()?;
        self.time_index.file.trim()?;
        // Its `.log` may now be closed when cold.
        self.log.unpin();
        Ok(())
    }

    /// Preallocates the indexes again when this segment becomes the active one after a load.
    pub fn reopen_active(&mut self) -> Result<()> {
        self.log.pin()?;
        self.offset_index.file.preallocate()?;
        self.time_index.file.preallocate()
    }

    pub fn flush(&self) -> Result<()> {
        self.log.get()?.sync_data().at(&self.log_path)?;
        self.offset_index.file.flush()?;
        self.time_index.file.flush()?;
        self.txn_index.flush()
    }

    /// First step of deletion: rename every file to `*.deleted`, so that a crash before the
    /// actual removal never leaves the segment looking live.
    pub fn mark_deleted(&mut self) -> Result<()> {
        self.rename_files(|p| Some(with_suffix(p, DELETED_SUFFIX)))
    }

    /// Renames every file from `*.<from>` to `*.<to>` (`None`: the plain segment name), the log
    /// first, as Kafka's `changeFileSuffixes` does; the swap of a cleaned segment is built on it.
    pub fn change_suffix(&mut self, from: Option<&str>, to: Option<&str>) -> Result<()> {
        self.rename_files(|p| {
            let plain = match from {
                Some(f) => PathBuf::from(p.to_str()?.strip_suffix(&format!(".{f}"))?),
                None => p.to_path_buf(),
            };
            Some(to.map_or_else(|| plain.clone(), |t| with_suffix(&plain, t)))
        })
    }

    fn rename_files(&mut self, new_path: impl Fn(&Path) -> Option<PathBuf>) -> Result<()> {
        let target = |p: &Path| {
            new_path(p).ok_or_else(|| LogError::BadLogDir {
                path: p.to_path_buf(),
                reason: "segment file does not carry the expected suffix".into(),
            })
        };
        let to = target(&self.log_path)?;
        fs::rename(&self.log_path, &to).at(&self.log_path)?;
        self.log.set_path(&to);
        self.log_path = to;
        let to = target(self.offset_index.file.path())?;
        rename_index(&mut self.offset_index.file, &to)?;
        let to = target(self.time_index.file.path())?;
        rename_index(&mut self.time_index.file, &to)?;
        let to = target(self.txn_index.path())?;
        self.txn_index.rename_to(&to)
    }

    /// When the segment's file was last written: Kafka's `lastModified`, kept across cleaning.
    pub fn last_modified(&self) -> SystemTime {
        fs::metadata(&self.log_path)
            .and_then(|m| m.modified())
            .unwrap_or(SystemTime::UNIX_EPOCH)
    }

    pub fn set_last_modified(&self, t: SystemTime) -> Result<()> {
        self.log.get()?.set_modified(t).at(&self.log_path)
    }

    /// Removes this segment's files (after `mark_deleted`, or directly).
    pub fn delete_files(self) -> Result<()> {
        let paths = [
            self.log_path.clone(),
            self.offset_index.file.path().to_path_buf(),
            self.time_index.file.path().to_path_buf(),
        ];
        let txn = self.txn_index.path().to_path_buf();
        drop(self);
        for p in paths.iter().chain(std::iter::once(&txn)) {
            match fs::remove_file(p) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(LogError::io(p, e)),
            }
        }
        Ok(())
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// A segment's data file as it stood at one moment, for reading it without holding the log
/// (Kafka's `LogSegment.read` bounded by `maxPosition`). It shares the segment's file, so it
/// costs no descriptor of its own and keeps reading the same data when the segment is renamed
/// (`.deleted`, a cleaner swap), or unlinked while the file is open; and it reads only below the
/// `size` taken then, so bytes appended since are never seen. What it cannot survive is the
/// file being cut and written again in place (a follower's truncation): the log's
/// `layout_epoch` tells a reader that this happened (see `LogHandle::read_with`); nor a cold
/// file closed and its segment deleted before the read, which fails the read and makes
/// `read_with` plan it again.
#[derive(Clone)]
pub struct SegmentSnapshot {
    pub base_offset: i64,
    file: Arc<SegmentFile>,
    path: PathBuf,
    size: u64,
}

impl SegmentSnapshot {
    /// The segment's size when the snapshot was taken: the end of what it reads.
    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn entry_at(&self, position: u64) -> Result<Option<EntryInfo>> {
        entry_at(&*self.open()?, &self.path, self.size, position)
    }

    /// The first entry whose last offset is >= `offset`, scanning from `position` (which the
    /// caller looked up in the offset index while it held the log).
    pub fn find_entry(&self, offset: i64, position: u64) -> Result<Option<EntryInfo>> {
        scan_for(&*self.open()?, &self.path, self.size, offset, position)
    }

    /// The segment's open file; under [`cached_only`] a closed one is not opened.
    fn open(&self) -> Result<Arc<File>> {
        if is_cached_only() {
            return self
                .file
                .get_if_open()
                .ok_or_else(|| LogError::io(&self.path, std::io::ErrorKind::WouldBlock.into()));
        }
        self.file.get()
    }

    /// Reads `len` bytes from `position`, never past the snapshot's size.
    pub fn read_bytes(&self, position: u64, len: usize) -> Result<Bytes> {
        read_bytes(&*self.file.get()?, &self.path, self.size, position, len)
    }

    /// The `len` bytes from `position` (never past the snapshot's size) as a region of the
    /// file, to be sent or read later; the region holds the file open.
    pub fn region(&self, position: u64, len: usize) -> Result<FileRegion> {
        let len = len.min(self.size.saturating_sub(position) as usize);
        Ok(FileRegion {
            file: self.open()?,
            position,
            len,
        })
    }
}

/// Bytes of a segment's data file, by reference: what a fetch sends to the socket from the file
/// (Kafka's `FileRecords` slice) instead of reading it into memory first. The file is held
/// open, so the bytes stay readable after a roll, retention or a cleaner swap renamed or
/// unlinked the file, as a snapshot's are.
#[derive(Clone, Debug)]
pub struct FileRegion {
    pub file: Arc<File>,
    pub position: u64,
    pub len: usize,
}

impl FileRegion {
    /// The region's bytes, read into memory (one copy): for TLS, down-conversion and tests.
    /// Fails if the file no longer holds them all (a follower's truncation since).
    pub fn read(&self) -> std::io::Result<Bytes> {
        let mut buf = BytesMut::zeroed(self.len);
        self.file.read_exact_at(&mut buf, self.position)?;
        Ok(buf.freeze())
    }
}

fn entry_at(file: &File, path: &Path, size: u64, position: u64) -> Result<Option<EntryInfo>> {
    read_entry_info(file, position, size).map_err(|e| match e {
        LogError::Io { source, .. } => LogError::io(path, source),
        other => other,
    })
}

/// The first entry at or after `position` (an entry boundary) whose last offset is >= `offset`.
fn scan_for(
    file: &File,
    path: &Path,
    size: u64,
    offset: i64,
    mut position: u64,
) -> Result<Option<EntryInfo>> {
    while let Some(e) = entry_at(file, path, size, position)? {
        if e.last_offset >= offset {
            return Ok(Some(e));
        }
        position += e.size;
    }
    Ok(None)
}

fn read_bytes(file: &File, path: &Path, size: u64, position: u64, len: usize) -> Result<Bytes> {
    let len = len.min(size.saturating_sub(position) as usize);
    let mut buf = BytesMut::zeroed(len);
    file.read_exact_at(&mut buf, position).at(path)?;
    Ok(buf.freeze())
}

/// `path` with `.<suffix>` appended: `00000000000000000000.log` -> `...log.cleaned`.
pub fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_os_string();
    s.push(".");
    s.push(suffix);
    PathBuf::from(s)
}

pub fn system_time_ms(t: SystemTime) -> i64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

pub fn now_ms() -> i64 {
    system_time_ms(SystemTime::now())
}

fn write_all_vectored(mut file: &File, parts: &[&[u8]]) -> std::io::Result<()> {
    let mut slices: Vec<IoSlice<'_>> = parts.iter().map(|p| IoSlice::new(p)).collect();
    let mut bufs = &mut slices[..];
    IoSlice::advance_slices(&mut bufs, 0);
    while !bufs.is_empty() {
        match file.write_vectored(bufs) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => IoSlice::advance_slices(&mut bufs, n),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
