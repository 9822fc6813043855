//! `LogManager`: every partition log in every `log.dirs` entry, the per-directory files
//! (`meta.properties`, checkpoints, the clean-shutdown marker, `.lock`) and the periodic work
//! (flush, retention, checkpoints, and the log cleaner's threads).

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use super::checkpoint::{
    self, CLEAN_SHUTDOWN_FILE, CLEANER_OFFSET_FILE, LOG_START_OFFSET_FILE, META_PROPERTIES_FILE,
    RECOVERY_POINT_FILE, REPLICATION_OFFSET_FILE,
};
use super::cleaner::LogCleaner;
use super::descriptors;
use super::error::{IoContext, LogError, Result};
use super::handle::LogHandle;
use super::log_dirs::{Jbod, complete_interrupted_moves};
use super::partition::{LoadParams, PartitionLog, parse_partition_dir};
use super::segment::now_ms;
use crate::config::{CleanerConfig, LogConfig};

/// A partition by topic name and index: the one key every layer uses for a partition.
pub type TopicPartition = (String, i32);

/// Every hosted log with the index (into `log.dirs`) of the directory holding it; shared with
/// the log cleaner's threads.
pub(crate) type LogMap = Arc<RwLock<HashMap<TopicPartition, (usize, Arc<LogHandle>)>>>;

pub(super) struct LogDir {
    pub(super) path: PathBuf,
    /// Holds the directory's `.lock` (an OS file lock) for as long as the broker runs.
    _lock: File,
}

pub struct LogManager {
    pub(super) dirs: Vec<LogDir>,
    default_config: LogConfig,
    pub(super) logs: LogMap,
    cleaner: Mutex<Option<Arc<LogCleaner>>>,
    /// Placement preferences and logs being moved between directories.
    pub(super) jbod: Jbod,
}

/// Identity written to each log dir's `meta.properties` (ZooKeeper mode, version 0).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerIdentity {
    pub broker_id: i32,
    pub cluster_id: Option<String>,
}

impl LogManager {
    /// Locks and loads every directory, one log at a time: [`LogManager::open_with_threads`]
    /// with one thread per directory, Kafka's default `num.recovery.threads.per.data.dir`.
    pub fn open(
        dirs: &[PathBuf],
        identity: &BrokerIdentity,
        default_config: LogConfig,
        topic_config: impl Fn(&str) -> LogConfig + Sync,
    ) -> Result<LogManager> {
        Self::open_with_threads(dirs, identity, default_config, topic_config, 1)
    }

    /// Locks and loads every directory. Partition logs are recovered unless the directory holds
    /// Kafka's clean-shutdown marker, which is removed first so a crash from here on is noticed.
    /// `topic_config` gives each topic's config (its overrides over the defaults). Each
    /// directory's logs are loaded by `threads_per_dir` threads (Kafka's
    /// `num.recovery.threads.per.data.dir`), all directories at once.
    pub fn open_with_threads(
        dirs: &[PathBuf],
        identity: &BrokerIdentity,
        default_config: LogConfig,
        topic_config: impl Fn(&str) -> LogConfig + Sync,
        threads_per_dir: usize,
    ) -> Result<LogManager> {
        let started = std::time::Instant::now();
        let mut opened = Vec::new();
        let mut jobs = Vec::new();
        let mut clean_dirs = 0;
        complete_interrupted_moves(dirs)?;
        for (i, path) in dirs.iter().enumerate() {
            fs::create_dir_all(path).at(path)?;
            let lock_path = path.join(".lock");
            let lock = File::options()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&lock_path)
                .at(&lock_path)?;
            lock.try_lock().map_err(|_| LogError::BadLogDir {
                path: path.clone(),
                reason: "locked by another process (is another broker using it?)".into(),
            })?;
            check_meta_properties(path, identity)?;
            let marker = path.join(CLEAN_SHUTDOWN_FILE);
            let clean = marker.exists();
            if clean {
                clean_dirs += 1;
                tracing::info!(dir = %path.display(), "skipping recovery: clean-shutdown marker found");
            } else {
                tracing::info!(dir = %path.display(), "recovering logs: no clean-shutdown marker");
            }
            if clean {
                fs::remove_file(&marker).at(&marker)?;
                checkpoint::sync_dir(path)?;
            }
            let recovery = read_checkpoint_or_warn(&path.join(RECOVERY_POINT_FILE));
            let hws = read_checkpoint_or_warn(&path.join(REPLICATION_OFFSET_FILE));
            let starts = read_checkpoint_or_warn(&path.join(LOG_START_OFFSET_FILE));
            let cleaned = read_checkpoint_or_warn(&path.join(CLEANER_OFFSET_FILE));
            for entry in fs::read_dir(path).at(path)? {
                let entry = entry.at(path)?;
                if !entry.file_type().at(&entry.path())?.is_dir() {
                    continue;
                }
                let name = entry.file_name().to_string_lossy().to_string();
                let Some(tp) = parse_partition_dir(&name) else {
                    continue;
                };
                let params = LoadParams {
                    clean_shutdown: clean,
                    recovery_point: recovery.get(&tp).copied().unwrap_or(0),
                    log_start_offset: starts.get(&tp).copied().unwrap_or(0),
                    high_watermark: hws.get(&tp).copied().unwrap_or(0),
                    cleaner_offset: cleaned.get(&tp).copied(),
                };
                jobs.push(LoadJob {
                    dir_index: i,
                    path: entry.path(),
                    tp,
                    params,
                });
            }
            opened.push(LogDir {
                path: path.clone(),
                _lock: lock,
            });
        }
        if opened.is_empty() {
            return Err(LogError::BadLogDir {
                path: PathBuf::new(),
                reason: "log.dirs is empty".into(),
            });
        }
        let threads = (threads_per_dir.max(1) * opened.len())
            .min(jobs.len())
            .max(1);
        let loaded = load_logs(&jobs, threads, &topic_config)?;
        let mut logs = HashMap::with_capacity(loaded.len());
        for (job, log) in jobs.iter().zip(loaded) {
            if logs
                .insert(
                    job.tp.clone(),
                    (job.dir_index, Arc::new(LogHandle::new(log))),
                )
                .is_some()
            {
                return Err(LogError::BadLogDir {
                    path: job.path.clone(),
                    reason: format!(
                        "{}-{} is in more than one log directory",
                        job.tp.0, job.tp.1
                    ),
                });
            }
        }
        if logs.len() > descriptors::max_logs() {
            tracing::warn!(
                logs = logs.len(),
                allowed = descriptors::max_logs(),
                open_file_limit = descriptors::open_file_limit(),
                "more partition logs than the open-file limit allows; new partitions will be refused until the limit is raised"
            );
        }
        tracing::info!(
            logs = logs.len(),
            dirs = opened.len(),
            clean_dirs,
            threads,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "loaded logs"
        );
        Ok(LogManager {
            dirs: opened,
            default_config,
            logs: Arc::new(RwLock::new(logs)),
            cleaner: Mutex::new(None),
            jbod: Jbod::default(),
        })
    }

    /// Sets up the log cleaner and, when `log.cleaner.enable` is on and there are threads,
    /// starts its threads. Each directory gets its `cleaner-offset-checkpoint` (empty at first,
    /// as Kafka creates it). Returns the cleaner, which tests may also drive pass by pass.
    pub fn start_cleaner(&self, config: CleanerConfig) -> Result<Arc<LogCleaner>> {
        for dir in &self.dirs {
            let path = dir.path.join(CLEANER_OFFSET_FILE);
            if !path.exists() {
                checkpoint::write_atomically(&path, b"")?;
            }
        }
        let run_threads = config.enable && config.threads > 0;
        let cleaner = LogCleaner::new(config, self.logs.clone(), self.dirs());
        if run_threads {
            cleaner.start();
        }
        let previous = self
            .cleaner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .replace(cleaner.clone());
        if let Some(old) = previous {
            old.stop();
        }
        Ok(cleaner)
    }

    /// Stops the cleaner's threads (an interrupted clean leaves only `.cleaned` files, which the
    /// next start deletes).
    pub fn stop_cleaner(&self) {
        let cleaner = self
            .cleaner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(c) = cleaner {
            c.stop();
            if let Err(e) = c.write_checkpoints() {
                tracing::warn!(error = %e, "cannot write cleaner-offset-checkpoint");
            }
        }
    }

    pub fn default_config(&self) -> &LogConfig {
        &self.default_config
    }

    pub fn get(&self, topic: &str, partition: i32) -> Option<Arc<LogHandle>> {
        let logs = self.logs.read().unwrap_or_else(|p| p.into_inner());
        logs.get(&(topic.to_string(), partition))
            .map(|(_, l)| l.clone())
    }

    pub fn partitions(&self) -> Vec<TopicPartition> {
        let logs = self.logs.read().unwrap_or_else(|p| p.into_inner());
        logs.keys().cloned().collect()
    }

    /// Returns the log, creating it (in the directory holding the fewest partitions) if needed.
    pub fn get_or_create(
        &self,
        topic: &str,
        partition: i32,
        config: LogConfig,
    ) -> Result<Arc<LogHandle>> {
        let mut logs = self.logs.write().unwrap_or_else(|p| p.into_inner());
        let key = (topic.to_string(), partition);
        if let Some((_, l)) = logs.get(&key) {
            return Ok(l.clone());
        }
        if logs.len() >= descriptors::max_logs() {
            // Refused now, with the limit named, rather than hosting a log the broker could
            // not open again at its next start.
            return Err(descriptors::too_many_logs(&self.dirs[0].path, logs.len()));
        }
        let dir_index = self
            .placement(&key, &logs)
            .ok_or_else(|| LogError::BadLogDir {
                path: self.dirs[0].path.clone(),
                reason: "every log directory is offline".into(),
            })?;
        let dir = self.dirs[dir_index]
            .path
            .join(format!("{topic}-{partition}"));
        let log = PartitionLog::open(
            &dir,
            config,
            LoadParams {
                clean_shutdown: true,
                ..LoadParams::default()
            },
        )?;
        let handle = Arc::new(LogHandle::new(log));
        logs.insert(key, (dir_index, handle.clone()));
        drop(logs);
        // The log directory is not synced for the new entry, as Kafka's `createLogDirectory`
        // does not sync it: the next checkpoint write in that directory (the high watermarks,
        // every `replica.high.watermark.checkpoint.interval.ms`) syncs it. A sync per new log
        // was a third of the fsyncs of creating 10,000 partitions.
        tracing::info!(topic, partition, dir = %dir.display(), "created log");
        Ok(handle)
    }

    /// Removes a partition's log and its directory (topic deletion).
    pub fn delete(&self, topic: &str, partition: i32) -> Result<()> {
        self.cancel_move(&(topic.to_string(), partition));
        let removed = {
            let mut logs = self.logs.write().unwrap_or_else(|p| p.into_inner());
            logs.remove(&(topic.to_string(), partition))
        };
        if let Some((_, handle)) = removed {
            let cleaner = self
                .cleaner
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone();
            if let Some(c) = cleaner {
                // The cleaner must not be writing into the directory about to go.
                c.abort_and_wait(&(topic.to_string(), partition));
            }
            let dir = handle.lock().dir().to_path_buf();
            drop(handle);
            fs::remove_dir_all(&dir).at(&dir)?;
        }
        Ok(())
    }

    /// Writes the per-directory checkpoint files from the logs' current state (and, when the
    /// cleaner runs, `cleaner-offset-checkpoint`).
    pub fn write_checkpoints(&self) -> Result<()> {
        let logs: Vec<(TopicPartition, usize, Arc<LogHandle>)> = {
            let logs = self.logs.read().unwrap_or_else(|p| p.into_inner());
            logs.iter()
                .map(|(k, (d, l))| (k.clone(), *d, l.clone()))
                .collect()
        };
        for (i, dir) in self.dirs.iter().enumerate() {
            if self.is_dir_offline(i) {
                continue;
            }
            let mut recovery = BTreeMap::new();
            let mut hws = BTreeMap::new();
            let mut starts = BTreeMap::new();
            for (tp, _, handle) in logs.iter().filter(|(_, d, _)| *d == i) {
                let log = handle.lock();
                recovery.insert(tp.clone(), log.recovery_point());
                hws.insert(tp.clone(), log.high_watermark());
                let first_base = log.segments().next().map_or(0, |s| s.base_offset);
                if log.log_start_offset() > first_base {
                    starts.insert(tp.clone(), log.log_start_offset());
                }
            }
            checkpoint::write_offsets(&dir.path.join(RECOVERY_POINT_FILE), &recovery)?;
            checkpoint::write_offsets(&dir.path.join(REPLICATION_OFFSET_FILE), &hws)?;
            checkpoint::write_offsets(&dir.path.join(LOG_START_OFFSET_FILE), &starts)?;
        }
        let cleaner = self
            .cleaner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        match cleaner {
            Some(c) => c.write_checkpoints(),
            None => Ok(()),
        }
    }

    /// One pass of retention over every log; returns the segments deleted.
    pub fn apply_retention(&self) -> Result<usize> {
        let now = now_ms();
        let mut deleted = 0;
        for (topic, partition) in self.partitions() {
            if let Some(h) = self.get(&topic, partition) {
                deleted += h.lock().delete_old_segments(now)?;
            }
        }
        if deleted > 0 {
            self.write_checkpoints()?;
        }
        Ok(deleted)
    }

    /// Flushes logs whose `flush.ms` has passed (the time half of the flush policy).
    pub fn flush_due(&self) -> Result<()> {
        let now = now_ms();
        for (topic, partition) in self.partitions() {
            if let Some(h) = self.get(&topic, partition) {
                let due = {
                    let log = h.lock();
                    log.needs_flush(now).then(|| log.log_end_offset())
                };
                if let Some(end) = due {
                    h.flush_up_to(end)?;
                }
            }
        }
        Ok(())
    }

    /// Clean shutdown: flush and close every log, write checkpoints, then the marker that lets
    /// the next start skip recovery.
    pub fn shutdown(self) -> Result<()> {
        self.stop_cleaner();
        self.write_checkpoints_after_flush()?;
        let logs = std::mem::take(&mut *self.logs.write().unwrap_or_else(|p| p.into_inner()));
        let handles: Vec<Arc<LogHandle>> = logs.into_values().map(|(_, h)| h).collect();
        on_threads(handles, SHUTDOWN_THREADS, |handle| {
            match Arc::try_unwrap(handle) {
                Ok(h) => h.into_log().close(),
                Err(shared) => shared.lock().flush(),
            }
        })?;
        for (i, dir) in self.dirs.iter().enumerate() {
            // An offline directory is recovered at the next start.
            if !self.is_dir_offline(i) {
                checkpoint::write_atomically(&dir.path.join(CLEAN_SHUTDOWN_FILE), b"")?;
            }
        }
        Ok(())
    }

    fn write_checkpoints_after_flush(&self) -> Result<()> {
        let handles: Vec<Arc<LogHandle>> = {
            let logs = self.logs.read().unwrap_or_else(|p| p.into_inner());
            logs.values().map(|(_, h)| h.clone()).collect()
        };
        on_threads(handles, SHUTDOWN_THREADS, |h| h.lock().flush())?;
        self.write_checkpoints()
    }

    pub(super) fn cleaner_handle(&self) -> Option<Arc<LogCleaner>> {
        self.cleaner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn dirs(&self) -> Vec<PathBuf> {
        self.dirs.iter().map(|d| d.path.clone()).collect()
    }
}

impl Drop for LogManager {
    fn drop(&mut self) {
        self.stop_cleaner();
    }
}

/// Threads that flush and close logs at shutdown. Kafka uses its recovery threads; this work
/// is waiting on fsyncs (a producer snapshot per log at least), not on a CPU, and syncs issued
/// together are committed together, so more threads than cores pay off.
const SHUTDOWN_THREADS: usize = 16;

/// Runs `f` on every item on up to `threads` threads, each taking the next item in turn. Every
/// item is tried; the first error is returned.
fn on_threads<T: Send>(
    items: Vec<T>,
    threads: usize,
    f: impl Fn(T) -> Result<()> + Sync,
) -> Result<()> {
    let queue = Mutex::new(items.into_iter());
    let first_error: Mutex<Option<LogError>> = Mutex::new(None);
    let worker = || {
        loop {
            let next = queue.lock().unwrap_or_else(|p| p.into_inner()).next();
            let Some(item) = next else { break };
            if let Err(e) = f(item) {
                first_error
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .get_or_insert(e);
            }
        }
    };
    std::thread::scope(|s| {
        let started = (1..threads.max(1))
            .filter(|n| {
                std::thread::Builder::new()
                    .name(format!("log-close-{n}"))
                    .spawn_scoped(s, worker)
                    .is_ok()
            })
            .count();
        tracing::debug!(threads = started + 1, "closing logs");
        // This thread works too, so that the items are done even if no thread could start.
        worker();
    });
    match first_error.into_inner().unwrap_or_else(|p| p.into_inner()) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// One partition directory to load at start-up.
struct LoadJob {
    dir_index: usize,
    path: PathBuf,
    tp: TopicPartition,
    params: LoadParams,
}

/// Opens the jobs' logs on `threads` threads, each taking the next job in turn; the logs come
/// back in the jobs' order. The first failure stops the others from starting more.
fn load_logs(
    jobs: &[LoadJob],
    threads: usize,
    topic_config: &(impl Fn(&str) -> LogConfig + Sync),
) -> Result<Vec<PartitionLog>> {
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let load = |job: &LoadJob| {
        let started = std::time::Instant::now();
        let log = PartitionLog::open(&job.path, topic_config(&job.tp.0), job.params)?;
        tracing::debug!(partition = %job.path.display(), clean = job.params.clean_shutdown, elapsed_ms = started.elapsed().as_millis() as u64, "loaded log");
        Ok(log)
    };
    let worker = || {
        let mut done = Vec::new();
        while !failed.load(Ordering::Relaxed) {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(job) = jobs.get(i) else {
                break;
            };
            let result = load(job);
            if result.is_err() {
                failed.store(true, Ordering::Relaxed);
            }
            done.push((i, result));
        }
        done
    };
    let mut results: Vec<(usize, Result<PartitionLog>)> = if threads <= 1 {
        worker()
    } else {
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads)
                .map(|n| {
                    std::thread::Builder::new()
                        .name(format!("log-recovery-{n}"))
                        .spawn_scoped(s, worker)
                })
                .collect();
            let mut all = Vec::with_capacity(jobs.len());
            for h in handles {
                match h {
                    Ok(h) => match h.join() {
                        Ok(done) => all.extend(done),
                        Err(panic) => std::panic::resume_unwind(panic),
                    },
                    // No thread to spare: the threads that did start take its share.
                    Err(e) => tracing::warn!(error = %e, "cannot start a log recovery thread"),
                }
            }
            all
        })
    };
    results.sort_by_key(|(i, _)| *i);
    let mut logs = Vec::with_capacity(jobs.len());
    for (_, r) in results {
        logs.push(r?);
    }
    if logs.len() != jobs.len() {
        return Err(LogError::BadLogDir {
            path: PathBuf::new(),
            reason: "no thread could be started to load the logs".into(),
        });
    }
    Ok(logs)
}

fn read_checkpoint_or_warn(path: &Path) -> BTreeMap<TopicPartition, i64> {
    checkpoint::read_offsets(path).unwrap_or_else(|e| {
        // Kafka fails the directory here; a broker that recovers every log instead loses nothing.
        tracing::warn!(error = %e, "ignoring unreadable checkpoint; affected logs are fully recovered");
        BTreeMap::new()
    })
}

/// Creates `meta.properties` on first use; afterwards it must name this broker and cluster.
fn check_meta_properties(dir: &Path, identity: &BrokerIdentity) -> Result<()> {
    let path = dir.join(META_PROPERTIES_FILE);
    let bad = |reason: String| LogError::BadLogDir {
        path: dir.to_path_buf(),
        reason,
    };
    match checkpoint::read_properties(&path)? {
        Some(props) => {
            if let Some(id) = props.get("broker.id")
                && id.parse::<i32>().ok() != Some(identity.broker_id)
            {
                return Err(bad(format!(
                    "meta.properties has broker.id={id}, but this broker is {}",
                    identity.broker_id
                )));
            }
            if let (Some(theirs), Some(ours)) = (props.get("cluster.id"), &identity.cluster_id)
                && theirs != ours
            {
                return Err(bad(format!(
                    "meta.properties belongs to cluster {theirs}, this broker joins {ours}"
                )));
            }
            Ok(())
        }
        None => {
            let mut props = BTreeMap::new();
            props.insert("version".to_string(), "0".to_string());
            props.insert("broker.id".to_string(), identity.broker_id.to_string());
            if let Some(c) = &identity.cluster_id {
                props.insert("cluster.id".to_string(), c.clone());
            }
            checkpoint::write_properties(&path, &props)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// A failing log does not stop the others from being closed, and its error is reported.
    #[test]
    fn on_threads_does_every_item_and_returns_an_error() {
        let done = AtomicUsize::new(0);
        let result = on_threads((0..1000).collect(), 7, |i: usize| {
            done.fetch_add(1, Ordering::Relaxed);
            if i == 500 {
                return Err(LogError::io("<test>", std::io::Error::other("broken disk")));
            }
            Ok(())
        });
        assert_eq!(done.load(Ordering::Relaxed), 1000);
        assert!(result.is_err_and(|e| e.to_string().contains("broken disk")));
        assert!(on_threads(Vec::<usize>::new(), 0, |_| Ok(())).is_ok());
    }
}
