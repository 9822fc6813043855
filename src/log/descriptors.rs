//! File descriptors: the one resource a broker with many partitions runs out of first.
//!
//! At rest a partition holds one descriptor, its active segment's `.log`: index files are
//! memory-mapped and their descriptors closed (see `index`), and the `.log` of every other
//! segment is opened when a read, the cleaner or retention needs it and kept in a bounded,
//! least-recently-used set of open cold segments; the oldest is closed when the set is full.
//! Kafka holds one descriptor per segment instead; closing cold ones is what lets partitions
//! with many segments fit under the same limit.
//!
//! The budget: from the process's open-file limit (`RLIMIT_NOFILE`, raised to its hard limit
//! at start-up) some descriptors are kept for connections and the broker's own files, some for
//! the cold-segment set, and the rest bound how many partition logs this broker may host. A log
//! past that bound is refused with an error naming the limit, so a broker never holds more logs
//! than it can open again at its next start.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use super::error::{IoContext, LogError, Result};

/// Cold segments kept open when no limit was given (tests and tools that never call
/// [`apply_open_file_limit`]).
const DEFAULT_COLD_FILES: usize = 256;

static COLD_CAPACITY: AtomicUsize = AtomicUsize::new(DEFAULT_COLD_FILES);
static MAX_LOGS: AtomicUsize = AtomicUsize::new(usize::MAX);
static OPEN_FILE_LIMIT: AtomicU64 = AtomicU64::new(0);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// How the broker divides its open-file limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    pub open_file_limit: u64,
    /// Kept for connections, the metadata store, checkpoints being written, loading threads.
    pub reserved: usize,
    /// Cold segments kept open at once.
    pub cold_segments: usize,
    /// Partition logs this broker may host: one descriptor each.
    pub max_logs: usize,
}

impl Budget {
    pub fn for_limit(limit: u64) -> Budget {
        let limit_usize = usize::try_from(limit).unwrap_or(usize::MAX);
        let reserved = (limit_usize / 8).clamp(64, 4096);
        let cold_segments = (limit_usize / 16).clamp(16, 4096);
        Budget {
            open_file_limit: limit,
            reserved,
            cold_segments,
            max_logs: limit_usize.saturating_sub(reserved + cold_segments).max(1),
        }
    }
}

/// Sets the cold-segment set and the bound on hosted logs from the open-file limit.
pub fn apply_open_file_limit(limit: u64) -> Budget {
    let budget = Budget::for_limit(limit);
    OPEN_FILE_LIMIT.store(limit, Ordering::Relaxed);
    COLD_CAPACITY.store(budget.cold_segments, Ordering::Relaxed);
    MAX_LOGS.store(budget.max_logs, Ordering::Relaxed);
    evict_over_capacity();
    budget
}

/// How many partition logs the open-file limit allows (unbounded until a limit is applied).
pub fn max_logs() -> usize {
    MAX_LOGS.load(Ordering::Relaxed)
}

/// The open-file limit applied at start-up, or the current soft limit.
pub fn open_file_limit() -> u64 {
    match OPEN_FILE_LIMIT.load(Ordering::Relaxed) {
        0 => current_soft_limit().unwrap_or(0),
        n => n,
    }
}

fn current_soft_limit() -> Option<u64> {
    let mut rl = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct it is given.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) };
    (rc == 0).then_some(rl.rlim_cur)
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit (as Kafka's start scripts expect the
/// operator to) and returns the limit in force afterwards.
pub fn raise_open_file_limit() -> std::io::Result<u64> {
    let mut rl = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit read and write only the struct given.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    if rl.rlim_cur < rl.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: rl.rlim_max,
            rlim_max: rl.rlim_max,
        };
        // SAFETY: as above.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            rl.rlim_cur = rl.rlim_max;
        } else {
            tracing::warn!(error = %std::io::Error::last_os_error(), soft = rl.rlim_cur, hard = rl.rlim_max, "cannot raise the open-file limit to its hard limit");
        }
    }
    Ok(rl.rlim_cur)
}

/// Whether `e` says the process ran out of descriptors (EMFILE, or ENFILE for the system).
pub fn is_out_of_descriptors(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE) | Some(libc::ENFILE))
        || e.get_ref()
            .is_some_and(|inner| inner.is::<OutOfDescriptors>())
}

/// The explained form of EMFILE/ENFILE, still recognisable as one by `is_out_of_descriptors`.
#[derive(Debug)]
struct OutOfDescriptors(String);

impl std::fmt::Display for OutOfDescriptors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for OutOfDescriptors {}

/// `e` with the open-file limit named, for the operator who reads it in the broker's log.
pub fn explain_out_of_descriptors(e: std::io::Error) -> std::io::Error {
    if !is_out_of_descriptors(&e) {
        return e;
    }
    std::io::Error::new(
        e.kind(),
        OutOfDescriptors(format!(
            "{e}: the broker's open-file limit (RLIMIT_NOFILE) is {}; raise it (ulimit -n, \
             systemd LimitNOFILE) or host fewer partitions on this broker",
            open_file_limit()
        )),
    )
}

/// The `.log` file of a segment: always open while the segment is active (pinned), opened on
/// demand otherwise and closed again when it is the least recently used of the cold set.
/// Shared by the segment and the snapshots readers take of it, so a read started before a
/// rename (`.deleted`, a cleaner swap) reopens the file under its new name.
pub struct SegmentFile {
    path: Mutex<PathBuf>,
    file: Mutex<Option<Arc<File>>>,
    pinned: AtomicBool,
    /// This file's key in the cold set's order; 0 when it is not in the set.
    tick: AtomicU64,
}

impl SegmentFile {
    /// Opens (creating it if needed) the file of an active segment, which stays open.
    pub fn open_active(path: &Path) -> Result<Arc<SegmentFile>> {
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)
            .at(path)?;
        Ok(Arc::new(SegmentFile {
            path: Mutex::new(path.to_path_buf()),
            file: Mutex::new(Some(Arc::new(file))),
            pinned: AtomicBool::new(true),
            tick: AtomicU64::new(0),
        }))
    }

    /// The file of a segment that is not active, opened when first needed.
    pub fn cold(path: &Path) -> Arc<SegmentFile> {
        Arc::new(SegmentFile {
            path: Mutex::new(path.to_path_buf()),
            file: Mutex::new(None),
            pinned: AtomicBool::new(false),
            tick: AtomicU64::new(0),
        })
    }

    pub fn path(&self) -> PathBuf {
        lock(&self.path).clone()
    }

    pub fn set_path(&self, path: &Path) {
        *lock(&self.path) = path.to_path_buf();
    }

    /// Whether the descriptor is open now (for tests and metrics).
    pub fn is_open(&self) -> bool {
        lock(&self.file).is_some()
    }

    /// The open file, opening it if it was closed. The caller holds the returned `Arc` only
    /// for the I/O at hand: a closed cold file stays usable for the reads already under way.
    pub fn get(self: &Arc<Self>) -> Result<Arc<File>> {
        let open = lock(&self.file).clone();
        let file = match open {
            Some(f) => f,
            None => {
                let path = self.path();
                // Opened without holding the lock, so that a slow open never blocks the
                // segment's other users; two racing opens keep the first stored.
                let f = Arc::new(
                    OpenOptions::new()
                        .read(true)
                        .append(true)
                        .open(&path)
                        .at(&path)?,
                );
                let mut slot = lock(&self.file);
                slot.get_or_insert(f).clone()
            }
        };
        if !self.pinned.load(Ordering::Relaxed) {
            touch(self);
        }
        Ok(file)
    }

    /// The file if it is open now (counted as a use, as `get` counts it).
    pub fn get_if_open(self: &Arc<Self>) -> Option<Arc<File>> {
        let file = lock(&self.file).clone()?;
        if !self.pinned.load(Ordering::Relaxed) {
            touch(self);
        }
        Some(file)
    }

    /// The segment became active again (a truncation back into it): its file stays open.
    pub fn pin(self: &Arc<Self>) -> Result<()> {
        self.pinned.store(true, Ordering::Relaxed);
        forget(self);
        self.get().map(|_| ())
    }

    /// The segment stopped being active: its file joins the cold set and may be closed.
    pub fn unpin(self: &Arc<Self>) {
        if self.pinned.swap(false, Ordering::Relaxed) && self.is_open() {
            touch(self);
        }
    }
}

impl Drop for SegmentFile {
    fn drop(&mut self) {
        if *self.tick.get_mut() != 0 {
            let tick = *self.tick.get_mut();
            lock(&COLD).order.remove(&tick);
        }
    }
}

/// The open cold segment files, oldest use first.
struct ColdSet {
    order: BTreeMap<u64, Weak<SegmentFile>>,
    next_tick: u64,
}

static COLD: Mutex<ColdSet> = Mutex::new(ColdSet {
    order: BTreeMap::new(),
    next_tick: 1,
});

/// Marks `file` as just used, closing the least recently used cold files past the capacity.
fn touch(file: &Arc<SegmentFile>) {
    let victims = {
        let mut set = lock(&COLD);
        let old = file.tick.load(Ordering::Relaxed);
        if old != 0 {
            set.order.remove(&old);
        }
        let tick = set.next_tick;
        set.next_tick += 1;
        set.order.insert(tick, Arc::downgrade(file));
        file.tick.store(tick, Ordering::Relaxed);
        pop_over_capacity(&mut set)
    };
    close_all(victims);
}

fn forget(file: &Arc<SegmentFile>) {
    let tick = file.tick.swap(0, Ordering::Relaxed);
    if tick != 0 {
        lock(&COLD).order.remove(&tick);
    }
}

fn evict_over_capacity() {
    let victims = pop_over_capacity(&mut lock(&COLD));
    close_all(victims);
}

fn pop_over_capacity(set: &mut ColdSet) -> Vec<(u64, Weak<SegmentFile>)> {
    let capacity = COLD_CAPACITY.load(Ordering::Relaxed);
    let mut victims = Vec::new();
    while set.order.len() > capacity {
        match set.order.pop_first() {
            Some(v) => victims.push(v),
            None => break,
        }
    }
    victims
}

/// Closes the victims' descriptors. Runs without the set's lock: the last reference to a file
/// may drop here, and its `Drop` takes that lock.
fn close_all(victims: Vec<(u64, Weak<SegmentFile>)>) {
    for (tick, weak) in victims {
        let Some(file) = weak.upgrade() else {
            continue;
        };
        // Used again since it was chosen (it has a newer tick) or pinned: it stays open.
        if file.pinned.load(Ordering::Relaxed)
            || file
                .tick
                .compare_exchange(tick, 0, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            continue;
        }
        let closed = lock(&file.file).take();
        drop(closed);
    }
}

/// Cold segment files open right now (tests).
pub fn cold_files_open() -> usize {
    lock(&COLD).order.len()
}

/// A log past [`max_logs`]: the error the broker reports instead of running out of
/// descriptors and being unable to open its logs at the next start.
pub fn too_many_logs(dir: &Path, hosted: usize) -> LogError {
    LogError::BadLogDir {
        path: dir.to_path_buf(),
        reason: format!(
            "cannot host another partition log: this broker hosts {hosted}, as many as its \
             open-file limit (RLIMIT_NOFILE = {}) allows; raise the limit (ulimit -n, systemd \
             LimitNOFILE) or place partitions on other brokers",
            open_file_limit()
        ),
    }
}
