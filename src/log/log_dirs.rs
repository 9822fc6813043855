//! JBOD, the parts of Kafka's `LogManager` about several `log.dirs`: which directory a new log
//! goes to (`nextLogDirs`, `preferredLogDirs`), what DescribeLogDirs reports of each
//! directory, moving a log to another directory online (AlterReplicaLogDirs: a `-future` log
//! filled from the current one, as Kafka's `ReplicaAlterLogDirsThread` does, then swapped in
//! under the log's lock), and finishing at start-up what a crash left of a move.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use super::checkpoint;
use super::error::{IoContext, LogError, Result};
use super::handle::LogHandle;
use super::manager::{LogManager, TopicPartition};
use super::partition::{LoadParams, PartitionLog, parse_partition_dir};

/// Kafka's suffix of a log being filled in its new directory (`UnifiedLog.FutureDirSuffix`).
pub const FUTURE_SUFFIX: &str = "-future";
/// Kafka's suffix of a log directory waiting to be deleted (`UnifiedLog.DeleteDirSuffix`).
pub const DELETE_SUFFIX: &str = "-delete";

/// How much a move copies per step without holding the partition's log: also the most it
/// copies while holding it, at the end.
const COPY_CHUNK_BYTES: usize = 1 << 20;

/// The log manager's JBOD state.
#[derive(Default)]
pub(crate) struct Jbod {
    /// Logs being moved, by partition: the `-future` log in its new directory.
    futures: Mutex<HashMap<TopicPartition, FutureLog>>,
    /// Where a partition not hosted yet goes when it is created (Kafka's `preferredLogDirs`,
    /// set by an AlterReplicaLogDirs that came first).
    preferred: Mutex<HashMap<TopicPartition, usize>>,
    /// Directories taken offline after an I/O error (Kafka's offline log dirs).
    offline: Mutex<std::collections::BTreeSet<usize>>,
}

struct FutureLog {
    dir_index: usize,
    log: Arc<LogHandle>,
    cancelled: Arc<AtomicBool>,
}

/// One log directory as DescribeLogDirs reports it.
#[derive(Debug, Clone)]
pub struct DirDescription {
    /// Absolute, as Kafka reports it.
    pub path: PathBuf,
    pub logs: Vec<LogDescription>,
    /// The file system's total and usable bytes (`statvfs`); -1 when unknown.
    pub total_bytes: i64,
    pub usable_bytes: i64,
    /// Taken offline after an I/O error: DescribeLogDirs answers KAFKA_STORAGE_ERROR for it.
    pub offline: bool,
}

#[derive(Debug, Clone)]
pub struct LogDescription {
    pub topic_partition: TopicPartition,
    pub size_bytes: u64,
    /// Kafka's `getLogEndOffsetLag`: for a future log how far it is behind the current one;
    /// for the current log how far its end is below the high watermark (0 but on a follower
    /// that truncated).
    pub offset_lag: i64,
    pub is_future: bool,
}

/// Why a log cannot be moved.
#[derive(Debug)]
pub enum MoveError {
    /// No log of the partition here.
    NotHosted,
    Storage(LogError),
}

impl From<LogError> for MoveError {
    fn from(e: LogError) -> Self {
        MoveError::Storage(e)
    }
}

/// A move started by [`LogManager::move_log`]; the caller runs it on the async runtime.
pub struct MoveTask {
    manager: Arc<LogManager>,
    tp: TopicPartition,
    current: Arc<LogHandle>,
    future: Arc<LogHandle>,
    dir_index: usize,
    cancelled: Arc<AtomicBool>,
}

enum Step {
    /// Copied some; the end was not reached.
    Copied,
    /// The last unlocked read reached the current log's end: finish under the lock next.
    NearlyDone,
    Swapped,
}

/// The directory a path names, as Kafka compares them: absolute paths, spelled alike.
fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

fn unique_suffix() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// `<topic>-<partition>.<id><suffix>`: the topic and partition of a future or deleted log's
/// directory name.
fn parse_suffixed_dir(name: &str, suffix: &str) -> Option<TopicPartition> {
    let stem = name.strip_suffix(suffix)?;
    let (base, _id) = stem.rsplit_once('.')?;
    parse_partition_dir(base)
}

impl LogManager {
    /// The index into `log.dirs` of the directory a client names (an absolute path).
    pub fn dir_index_of(&self, path: &str) -> Option<usize> {
        let wanted = Path::new(path);
        self.dirs.iter().position(|d| absolute(&d.path) == wanted)
    }

    /// Remembers where a partition not hosted yet is to be created.
    pub fn set_preferred_dir(&self, tp: TopicPartition, dir_index: usize) {
        if dir_index < self.dirs.len() {
            lock(&self.jbod.preferred).insert(tp, dir_index);
        }
    }

    /// Where a new log goes: the directory an AlterReplicaLogDirs asked for, else the one
    /// holding the fewest logs, current and future, the first of those on a tie (Kafka 3.9's
    /// `LogManager.nextLogDirs`), among the online ones; `None` when none is.
    pub(super) fn placement(
        &self,
        tp: &TopicPartition,
        logs: &HashMap<TopicPartition, (usize, Arc<LogHandle>)>,
    ) -> Option<usize> {
        let offline = lock(&self.jbod.offline).clone();
        if let Some(d) = lock(&self.jbod.preferred).remove(tp)
            && !offline.contains(&d)
        {
            return Some(d);
        }
        let mut counts = vec![0usize; self.dirs.len()];
        for (d, _) in logs.values() {
            if let Some(c) = counts.get_mut(*d) {
                *c += 1;
            }
        }
        for f in lock(&self.jbod.futures).values() {
            if let Some(c) = counts.get_mut(f.dir_index) {
                *c += 1;
            }
        }
        (0..self.dirs.len())
            .filter(|i| !offline.contains(i))
            .min_by_key(|&i| counts[i])
    }

    /// Every directory with its logs (current and future) and its file system's space.
    pub fn describe_dirs(&self) -> Vec<DirDescription> {
        let current: Vec<(TopicPartition, usize, Arc<LogHandle>)> = {
            let logs = self.logs.read().unwrap_or_else(|p| p.into_inner());
            logs.iter()
                .map(|(k, (d, l))| (k.clone(), *d, l.clone()))
                .collect()
        };
        let futures: Vec<(TopicPartition, usize, Arc<LogHandle>)> = lock(&self.jbod.futures)
            .iter()
            .map(|(k, f)| (k.clone(), f.dir_index, f.log.clone()))
            .collect();
        let mut ends = HashMap::new();
        let mut out: Vec<DirDescription> = self
            .dirs
            .iter()
            .map(|d| {
                let (total_bytes, usable_bytes) = disk_space(&d.path).unwrap_or((-1, -1));
                DirDescription {
                    offline: false,
                    path: absolute(&d.path),
                    logs: Vec::new(),
                    total_bytes,
                    usable_bytes,
                }
            })
            .collect();
        for (tp, d, handle) in current {
            let log = handle.lock();
            ends.insert(tp.clone(), log.log_end_offset());
            if let Some(dir) = out.get_mut(d) {
                dir.logs.push(LogDescription {
                    topic_partition: tp,
                    size_bytes: log.size_bytes(),
                    offset_lag: (log.high_watermark() - log.log_end_offset()).max(0),
                    is_future: false,
                });
            }
        }
        for (tp, d, handle) in futures {
            let log = handle.lock();
            let lag = ends
                .get(&tp)
                .map_or(-1, |end| (end - log.log_end_offset()).max(0));
            if let Some(dir) = out.get_mut(d) {
                dir.logs.push(LogDescription {
                    topic_partition: tp,
                    size_bytes: log.size_bytes(),
                    offset_lag: lag,
                    is_future: true,
                });
            }
        }
        for i in lock(&self.jbod.offline).iter() {
            if let Some(d) = out.get_mut(*i) {
                d.offline = true;
                d.logs.clear();
            }
        }
        out
    }

    /// The index into `log.dirs` of the directory holding a partition's (current) log.
    pub fn dir_index_of_log(&self, tp: &TopicPartition) -> Option<usize> {
        let logs = self.logs.read().unwrap_or_else(|p| p.into_inner());
        logs.get(tp).map(|(d, _)| *d)
    }

    pub fn is_dir_offline(&self, dir_index: usize) -> bool {
        lock(&self.jbod.offline).contains(&dir_index)
    }

    /// True when no directory is online any more (Kafka then halts the broker).
    pub fn all_dirs_offline(&self) -> bool {
        lock(&self.jbod.offline).len() >= self.dirs.len()
    }

    /// Kafka's `handleLogDirFailure` in the log manager: the directory is offline from now on,
    /// its logs are no longer hosted (nothing more is written to or read from them) and moves
    /// into or out of it are abandoned. Returns the partitions whose logs it held, or `None`
    /// when it was offline already.
    pub fn take_dir_offline(&self, dir_index: usize) -> Option<Vec<TopicPartition>> {
        if dir_index >= self.dirs.len() || !lock(&self.jbod.offline).insert(dir_index) {
            return None;
        }
        let gone: Vec<TopicPartition> = {
            let mut logs = self.logs.write().unwrap_or_else(|p| p.into_inner());
            let gone: Vec<TopicPartition> = logs
                .iter()
                .filter(|(_, (d, _))| *d == dir_index)
                .map(|(tp, _)| tp.clone())
                .collect();
            for tp in &gone {
                logs.remove(tp);
            }
            gone
        };
        let moving: Vec<TopicPartition> = lock(&self.jbod.futures)
            .iter()
            .filter(|(tp, f)| f.dir_index == dir_index || gone.contains(tp))
            .map(|(tp, _)| tp.clone())
            .collect();
        for tp in moving {
            let removed = lock(&self.jbod.futures).remove(&tp);
            if let Some(f) = removed {
                f.cancelled.store(true, Ordering::Release);
            }
        }
        lock(&self.jbod.preferred).retain(|_, d| *d != dir_index);
        Some(gone)
    }

    /// AlterReplicaLogDirs for a hosted log: starts moving it to directory `dir_index` (the
    /// returned task does the copying and the swap), or does nothing when it is there or on its
    /// way there already. A move to another directory under way is abandoned first, as Kafka
    /// does when the destination changes.
    pub fn move_log(
        self: &Arc<Self>,
        tp: &TopicPartition,
        dir_index: usize,
    ) -> std::result::Result<Option<MoveTask>, MoveError> {
        let Some(root) = self.dirs.get(dir_index).map(|d| d.path.clone()) else {
            return Err(MoveError::NotHosted);
        };
        let (current_dir, current) = {
            let logs = self.logs.read().unwrap_or_else(|p| p.into_inner());
            match logs.get(tp) {
                Some((d, l)) => (*d, l.clone()),
                None => return Err(MoveError::NotHosted),
            }
        };
        let mut futures = lock(&self.jbod.futures);
        if let Some(f) = futures.get(tp) {
            if f.dir_index == dir_index {
                return Ok(None);
            }
            if let Some(f) = futures.remove(tp) {
                abandon(tp, f);
            }
        }
        if current_dir == dir_index {
            return Ok(None);
        }
        if self.is_dir_offline(dir_index) {
            return Err(MoveError::Storage(LogError::BadLogDir {
                path: root,
                reason: "the log directory is offline".into(),
            }));
        }
        let (config, start) = {
            let log = current.lock();
            (log.config().clone(), log.log_start_offset())
        };
        let path = root.join(format!(
            "{}-{}.{}{FUTURE_SUFFIX}",
            tp.0,
            tp.1,
            unique_suffix()
        ));
        let mut log = PartitionLog::open_for(
            &path,
            tp.clone(),
            config,
            LoadParams {
                clean_shutdown: true,
                ..LoadParams::default()
            },
        )?;
        log.truncate_fully_and_start_at(start)?;
        checkpoint::sync_dir(&root)?;
        tracing::info!(topic = %tp.0, partition = tp.1, dir = %path.display(), "moving log: created future log");
        let future = Arc::new(LogHandle::new(log));
        let cancelled = Arc::new(AtomicBool::new(false));
        futures.insert(
            tp.clone(),
            FutureLog {
                dir_index,
                log: future.clone(),
                cancelled: cancelled.clone(),
            },
        );
        Ok(Some(MoveTask {
            manager: self.clone(),
            tp: tp.clone(),
            current,
            future,
            dir_index,
            cancelled,
        }))
    }

    /// Abandons a move of the partition's log, if one is under way (the log is deleted).
    pub(super) fn cancel_move(&self, tp: &TopicPartition) {
        let removed = lock(&self.jbod.futures).remove(tp);
        if let Some(f) = removed {
            abandon(tp, f);
        }
        lock(&self.jbod.preferred).remove(tp);
    }

    /// Replaces the current log's contents with the caught-up future log, under the current
    /// log's lock, so no append lands in between: the current directory is renamed `-delete`,
    /// the future one takes the partition's name in its directory and is opened there, and the
    /// partition's handle then holds it. Everyone holding the handle keeps working.
    fn finish_move(&self, task: &MoveTask) -> Result<bool> {
        let tp = &task.tp;
        let Some(root) = self.dirs.get(task.dir_index).map(|d| d.path.clone()) else {
            return Ok(false);
        };
        if let Some(cleaner) = self.cleaner_handle() {
            // The cleaner must not be rewriting the segments about to be renamed.
            cleaner.abort_and_wait(tp);
        }
        let mut cur = task.current.lock();
        if task.cancelled.load(Ordering::Acquire) {
            return Ok(false);
        }
        let mut fut = task.future.lock();
        // Nothing is appended to the current log from here until the swap: what is left to
        // copy is what came since the last unlocked step.
        while fut.log_end_offset() < cur.log_end_offset() {
            let read = cur.read(
                fut.log_end_offset(),
                COPY_CHUNK_BYTES,
                cur.log_end_offset(),
                true,
            )?;
            if read.records.is_empty() {
                break;
            }
            fut.append_as_follower(&read.records)?;
        }
        if fut.log_end_offset() != cur.log_end_offset() {
            return Err(LogError::BadLogDir {
                path: fut.dir().to_path_buf(),
                reason: format!(
                    "future log ends at {}, the current log at {}",
                    fut.log_end_offset(),
                    cur.log_end_offset()
                ),
            });
        }
        // The epochs the current log knows, including those of a leader that wrote nothing
        // yet, which no copied batch carries.
        fut.leader_epochs = cur.leader_epochs.clone();
        fut.write_epochs()?;
        fut.flush()?;
        fut.take_producer_snapshot()?;
        let end = cur.log_end_offset();
        let params = LoadParams {
            clean_shutdown: true,
            recovery_point: end,
            log_start_offset: cur.log_start_offset().max(fut.log_start_offset()),
            high_watermark: cur.high_watermark(),
            cleaner_offset: cur.cleaner_offset(),
        };
        let future_dir = fut.dir().to_path_buf();
        let old_dir = cur.dir().to_path_buf();
        let deleted_dir = old_dir.with_file_name(format!(
            "{}-{}.{}{DELETE_SUFFIX}",
            tp.0,
            tp.1,
            unique_suffix()
        ));
        let final_dir = root.join(format!("{}-{}", tp.0, tp.1));
        // Current first: a crash between the renames leaves a future log and no current one,
        // which the next start-up completes (`complete_interrupted_moves`).
        fs::rename(&old_dir, &deleted_dir).at(&old_dir)?;
        if let Some(parent) = old_dir.parent() {
            checkpoint::sync_dir(parent)?;
        }
        fs::rename(&future_dir, &final_dir).at(&future_dir)?;
        checkpoint::sync_dir(&root)?;
        let mut moved = PartitionLog::open(&final_dir, cur.config().clone(), params)?;
        // Reads planned against the old log's segments are planned again.
        moved.layout_epoch = cur.layout_epoch() + 1;
        let old = std::mem::replace(&mut *cur, moved);
        drop(cur);
        drop(old);
        // Held until here: abandoning the move (the partition deleted meanwhile) waits for it.
        drop(fut);
        lock(&self.jbod.futures).remove(tp);
        {
            let mut logs = self.logs.write().unwrap_or_else(|p| p.into_inner());
            if let Some(entry) = logs.get_mut(tp) {
                entry.0 = task.dir_index;
            }
        }
        tracing::info!(topic = %tp.0, partition = tp.1, dir = %final_dir.display(), log_end_offset = end, "moved log to another log directory");
        if let Err(e) = fs::remove_dir_all(&deleted_dir) {
            tracing::warn!(dir = %deleted_dir.display(), error = %e, "cannot delete the moved log's old directory");
        }
        Ok(true)
    }
}

/// Stops a move and deletes its future log.
fn abandon(tp: &TopicPartition, f: FutureLog) {
    f.cancelled.store(true, Ordering::Release);
    let dir = f.log.lock().dir().to_path_buf();
    tracing::info!(topic = %tp.0, partition = tp.1, dir = %dir.display(), "abandoning log move");
    if let Err(e) = fs::remove_dir_all(&dir) {
        tracing::warn!(dir = %dir.display(), error = %e, "cannot delete an abandoned future log");
    }
}

impl MoveTask {
    /// Copies until the future log has caught up, then swaps it in. Each step runs on the
    /// blocking pool; a failed move is abandoned, its future log deleted, the current log
    /// untouched.
    pub async fn run(self) {
        let task = Arc::new(self);
        let mut nearly_done = false;
        loop {
            if task.cancelled.load(Ordering::Acquire) {
                return;
            }
            let t = task.clone();
            let step = tokio::task::spawn_blocking(move || t.step(nearly_done)).await;
            match step {
                Ok(Ok(Step::Copied)) => nearly_done = false,
                Ok(Ok(Step::NearlyDone)) => nearly_done = true,
                Ok(Ok(Step::Swapped)) => return,
                Ok(Err(e)) => {
                    tracing::error!(topic = %task.tp.0, partition = task.tp.1, error = %e, "log move failed");
                    let removed = lock(&task.manager.jbod.futures).remove(&task.tp);
                    if let Some(f) = removed {
                        abandon(&task.tp, f);
                    }
                    return;
                }
                Err(e) => {
                    tracing::error!(topic = %task.tp.0, partition = task.tp.1, error = %e, "log move panicked");
                    return;
                }
            }
        }
    }

    fn step(&self, finish: bool) -> Result<Step> {
        if finish {
            return Ok(if self.manager.finish_move(self)? {
                Step::Swapped
            } else {
                Step::Copied
            });
        }
        self.reconcile()?;
        let from = self.future.lock().log_end_offset();
        let read = match self.current.read(from, COPY_CHUNK_BYTES, i64::MAX, true) {
            Ok(r) => r,
            Err(LogError::OffsetOutOfRange { log_start, .. }) if from < log_start => {
                // Retention or DeleteRecords moved the current log's start past what was
                // copied: start again from there.
                self.future.lock().truncate_fully_and_start_at(log_start)?;
                return Ok(Step::Copied);
            }
            Err(e) => return Err(e),
        };
        if let Some(first) = read.first_offset
            && first < from
        {
            // The log start is inside a batch: the future log starts with the whole batch.
            let mut fut = self.future.lock();
            if fut.log_end_offset() == fut.log_start_offset() {
                fut.truncate_fully_and_start_at(first)?;
            }
        }
        if !read.records.is_empty()
            && let Some(info) = self.future.append_as_follower(&read.records)?
        {
            // Made durable now, so that the swap, under the partition's lock, fsyncs little.
            self.future.flush_up_to(info.last_offset + 1)?;
        }
        Ok(if read.records.len() < COPY_CHUNK_BYTES / 2 {
            Step::NearlyDone
        } else {
            Step::Copied
        })
    }

    /// A current log truncated since the last step (a follower meeting a new leader) is
    /// followed: the future log is cut where the two diverge, found by leader epoch as a
    /// follower finds it against its leader.
    fn reconcile(&self) -> Result<()> {
        let (future_end, last_epoch) = {
            let f = self.future.lock();
            (
                f.log_end_offset(),
                f.leader_epochs().last().map(|(e, _)| *e),
            )
        };
        let cut = {
            let cur = self.current.lock();
            let mut cut = cur.log_end_offset();
            if let Some(epoch) = last_epoch {
                let (found, end) = cur.end_offset_for_epoch(epoch);
                if found >= 0 {
                    cut = cut.min(end);
                }
            }
            cut
        };
        if cut < future_end {
            self.future.lock().truncate_to(cut)?;
        }
        Ok(())
    }
}

/// At start-up, before the logs load: deletes the directories of moved logs (`-delete`), and
/// of each `-future` log either completes the move (a crash came between its two renames, so
/// the partition has no current log anywhere) or abandons it. Kafka resumes an unfinished
/// move; here its copy starts again only if asked again.
pub(super) fn complete_interrupted_moves(dirs: &[PathBuf]) -> Result<()> {
    let mut current = std::collections::HashSet::new();
    let mut futures = Vec::new();
    for dir in dirs.iter().filter(|d| d.is_dir()) {
        for entry in fs::read_dir(dir).at(dir)? {
            let entry = entry.at(dir)?;
            let name = entry.file_name().to_string_lossy().to_string();
            let path = entry.path();
            if !path.is_dir() {
                continue;
            }
            if let Some(tp) = parse_partition_dir(&name) {
                current.insert(tp);
            } else if parse_suffixed_dir(&name, DELETE_SUFFIX).is_some() {
                tracing::info!(dir = %path.display(), "deleting the old directory of a moved log");
                fs::remove_dir_all(&path).at(&path)?;
            } else if let Some(tp) = parse_suffixed_dir(&name, FUTURE_SUFFIX) {
                futures.push((tp, dir.clone(), path));
            }
        }
    }
    for (tp, dir, path) in futures {
        if current.insert(tp.clone()) {
            let to = dir.join(format!("{}-{}", tp.0, tp.1));
            tracing::info!(from = %path.display(), to = %to.display(), "completing a log move a crash interrupted");
            fs::rename(&path, &to).at(&path)?;
            checkpoint::sync_dir(&dir)?;
        } else {
            tracing::info!(dir = %path.display(), "deleting the future log of an unfinished move");
            fs::remove_dir_all(&path).at(&path)?;
        }
    }
    Ok(())
}

/// The file system's total and usable (available to non-root) bytes, as Java's `FileStore`
/// reports them.
fn disk_space(path: &Path) -> Option<(i64, i64)> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a NUL-terminated path and `st` a writable statvfs for the call to fill.
    let rc = unsafe { libc::statvfs(c.as_ptr(), &mut st) };
    if rc != 0 {
        return None;
    }
    let unit = st.f_frsize as u64;
    let clamp = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    Some((
        clamp((st.f_blocks as u64).saturating_mul(unit)),
        clamp((st.f_bavail as u64).saturating_mul(unit)),
    ))
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn future_and_deleted_directory_names() {
        assert_eq!(
            parse_suffixed_dir("my-topic-3.0123abcd-future", FUTURE_SUFFIX),
            Some(("my-topic".to_string(), 3))
        );
        assert_eq!(
            parse_suffixed_dir("t-0.ff-delete", DELETE_SUFFIX),
            Some(("t".to_string(), 0))
        );
        assert_eq!(parse_suffixed_dir("t-0", FUTURE_SUFFIX), None);
        assert_eq!(parse_suffixed_dir("t-x.ff-future", FUTURE_SUFFIX), None);
    }

    #[test]
    fn a_move_a_crash_interrupted_is_completed_or_dropped() {
        let tmp = tempfile::tempdir().unwrap();
        let d0 = tmp.path().join("d0");
        let d1 = tmp.path().join("d1");
        let mk = |p: PathBuf| {
            fs::create_dir_all(&p).unwrap();
            fs::write(p.join("00000000000000000000.log"), b"").unwrap();
        };
        // Crash between the swap's renames: the current log is `-delete`, the future one not
        // renamed yet. It becomes the partition's log.
        mk(d0.join("t-0.aa-delete"));
        mk(d1.join("t-0.bb-future"));
        // Crash while copying: the current log is there, the future one is dropped.
        mk(d0.join("t-1"));
        mk(d1.join("t-1.cc-future"));
        complete_interrupted_moves(&[d0.clone(), d1.clone(), tmp.path().join("absent")]).unwrap();
        let names = |d: &Path| {
            let mut n: Vec<String> = fs::read_dir(d)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
                .collect();
            n.sort();
            n
        };
        assert_eq!(names(&d0), vec!["t-1"]);
        assert_eq!(names(&d1), vec!["t-0"]);
        assert!(d1.join("t-0/00000000000000000000.log").exists());
    }
}
