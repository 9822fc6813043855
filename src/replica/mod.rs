//! The partitions this broker hosts, their role, and appends and reads with the waiting that
//! acks and long polls need. The log layer below knows nothing of requests; this layer knows
//! nothing of the wire format.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, RwLock};

use bytes::Bytes;
use tokio::sync::Notify;

use crate::config::{ConfigError, LogConfig};
use crate::log::txn_index::AbortedTxn;
use crate::log::{AppendInfo, LogError, LogHandle, LogManager, ReadResult};

pub type TopicPartition = (String, i32);

/// One hosted partition.
pub struct Partition {
    pub topic: String,
    pub partition: i32,
    pub log: Arc<LogHandle>,
    leader_epoch: AtomicI32,
    /// The leader the controller last named: this broker's id when it leads, -1 when unknown.
    leader: AtomicI32,
    /// This broker's id, to tell leading from following.
    local_broker: i32,
    /// Woken on every append, so that waiting fetches re-check without polling.
    appended: Notify,
}

impl Partition {
    pub fn leader_epoch(&self) -> i32 {
        self.leader_epoch.load(Ordering::Acquire)
    }

    pub fn leader(&self) -> i32 {
        self.leader.load(Ordering::Acquire)
    }

    pub fn is_leader(&self) -> bool {
        self.leader() == self.local_broker
    }

    /// A future that completes at the next append; create it before checking for data so that
    /// an append in between is not missed.
    pub fn appended(&self) -> tokio::sync::futures::Notified<'_> {
        self.appended.notified()
    }
}

pub struct ReplicaManager {
    logs: Arc<LogManager>,
    broker_id: i32,
    partitions: RwLock<HashMap<TopicPartition, Arc<Partition>>>,
    /// The topic defaults as the broker's static and dynamic configs give them now; a topic's
    /// logs use its overrides on top of these.
    log_defaults: RwLock<LogConfig>,
}

/// What LeaderAndIsr asks of this broker for one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Leader,
    Follower { leader: i32 },
}

impl ReplicaManager {
    pub fn new(logs: Arc<LogManager>, broker_id: i32) -> Self {
        let log_defaults = RwLock::new(logs.default_config().clone());
        ReplicaManager {
            logs,
            broker_id,
            partitions: RwLock::new(HashMap::new()),
            log_defaults,
        }
    }

    pub fn broker_id(&self) -> i32 {
        self.broker_id
    }

    /// The config for a topic's logs: its overrides on the current topic defaults.
    pub fn log_config(
        &self,
        overrides: &BTreeMap<String, String>,
    ) -> Result<LogConfig, ConfigError> {
        self.log_defaults
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .with_overrides(overrides)
    }

    /// New topic defaults (a dynamic broker config changed); the caller re-applies each topic's
    /// config with [`ReplicaManager::set_topic_config`].
    pub fn set_log_defaults(&self, defaults: LogConfig) {
        *self.log_defaults.write().unwrap_or_else(|p| p.into_inner()) = defaults;
    }

    /// Gives every hosted partition of `topic` this config, effective from its next append,
    /// roll, flush check or retention pass.
    pub async fn set_topic_config(&self, topic: &str, config: LogConfig) -> Result<(), LogError> {
        let partitions: Vec<Arc<Partition>> = self
            .hosted()
            .into_iter()
            .filter(|p| p.topic == topic)
            .collect();
        if partitions.is_empty() {
            return Ok(());
        }
        blocking(move || {
            for p in partitions {
                let mut log = p.log.lock();
                if *log.config() != config {
                    tracing::info!(topic = %p.topic, partition = p.partition, "applying new topic config");
                    log.set_config(config.clone());
                }
            }
            Ok(())
        })
        .await
    }

    /// The topics with a partition hosted here.
    pub fn hosted_topics(&self) -> Vec<String> {
        let mut topics: Vec<String> = self.hosted().into_iter().map(|p| p.topic.clone()).collect();
        topics.sort_unstable();
        topics.dedup();
        topics
    }

    pub fn logs(&self) -> &Arc<LogManager> {
        &self.logs
    }

    pub fn get(&self, topic: &str, partition: i32) -> Option<Arc<Partition>> {
        let parts = self.partitions.read().unwrap_or_else(|p| p.into_inner());
        parts.get(&(topic.to_string(), partition)).cloned()
    }

    pub fn hosted(&self) -> Vec<Arc<Partition>> {
        let parts = self.partitions.read().unwrap_or_else(|p| p.into_inner());
        parts.values().cloned().collect()
    }

    /// The partition if this broker leads it: produce, consumer fetches and ListOffsets are
    /// served by the leader only.
    pub fn leader(&self, topic: &str, partition: i32) -> Option<Arc<Partition>> {
        self.get(topic, partition).filter(|p| p.is_leader())
    }

    /// LeaderAndIsr for a partition led here: open or create its log and take the epoch.
    pub async fn become_leader(
        &self,
        topic: &str,
        partition: i32,
        leader_epoch: i32,
        config: LogConfig,
    ) -> Result<Arc<Partition>, LogError> {
        self.apply_role(topic, partition, Role::Leader, leader_epoch, config)
            .await
    }

    /// LeaderAndIsr: opens or creates the partition's log and takes the role and epoch. A
    /// follower keeps its log as it is; fetching from the leader is the replica fetcher's job.
    pub async fn apply_role(
        &self,
        topic: &str,
        partition: i32,
        role: Role,
        leader_epoch: i32,
        config: LogConfig,
    ) -> Result<Arc<Partition>, LogError> {
        let leader = match role {
            Role::Leader => self.broker_id,
            Role::Follower { leader } => leader,
        };
        if let Some(p) = self.get(topic, partition) {
            let was = p.leader.swap(leader, Ordering::AcqRel);
            p.leader_epoch.fetch_max(leader_epoch, Ordering::AcqRel);
            {
                let mut log = p.log.lock();
                log.set_config(config);
                if role == Role::Leader {
                    let leo = log.log_end_offset();
                    log.set_high_watermark(leo);
                }
            }
            if was != leader {
                // Fetches parked on this partition must see that it changed hands.
                p.appended.notify_waiters();
                log_role(topic, partition, role, leader_epoch);
            }
            return Ok(p);
        }
        let logs = self.logs.clone();
        let t = topic.to_string();
        let topic_config = config.clone();
        let log = blocking(move || logs.get_or_create(&t, partition, config)).await?;
        {
            let mut l = log.lock();
            // Logs found at start-up were opened with the broker defaults; the topic's own
            // settings are known only now.
            l.set_config(topic_config);
            // Until followers replicate, a leader is its own ISR: everything in the log is
            // committed.
            if role == Role::Leader {
                let leo = l.log_end_offset();
                l.set_high_watermark(leo);
            }
        }
        let p = Arc::new(Partition {
            topic: topic.to_string(),
            partition,
            log,
            leader_epoch: AtomicI32::new(leader_epoch),
            leader: AtomicI32::new(leader),
            local_broker: self.broker_id,
            appended: Notify::new(),
        });
        log_role(topic, partition, role, leader_epoch);
        let mut parts = self.partitions.write().unwrap_or_else(|p| p.into_inner());
        Ok(parts
            .entry((topic.to_string(), partition))
            .or_insert(p)
            .clone())
    }

    /// StopReplica: the partition is no longer served here; with `delete` its log goes too.
    pub async fn stop_replica(
        &self,
        topic: &str,
        partition: i32,
        delete: bool,
    ) -> Result<(), LogError> {
        let removed = {
            let mut parts = self.partitions.write().unwrap_or_else(|p| p.into_inner());
            parts.remove(&(topic.to_string(), partition))
        };
        if let Some(p) = removed {
            p.leader.store(-1, Ordering::Release);
            p.appended.notify_waiters();
            drop(p);
            tracing::info!(topic, partition, delete, "stopped replica");
        }
        if !delete {
            return Ok(());
        }
        let logs = self.logs.clone();
        let t = topic.to_string();
        blocking(move || logs.delete(&t, partition)).await
    }

    /// Appends a producer's batch as leader; with one replica the high watermark follows.
    pub async fn append(&self, p: &Arc<Partition>, records: Bytes) -> Result<AppendInfo, LogError> {
        self.append_as_producer(p, records, None).await
    }

    /// Like `append`, for a producer asking for `acks=all` when `in_sync` (the ISR size) is
    /// given: as in Kafka, the append is refused while the ISR is smaller than the topic's
    /// `min.insync.replicas`.
    pub async fn append_as_producer(
        &self,
        p: &Arc<Partition>,
        records: Bytes,
        in_sync: Option<usize>,
    ) -> Result<AppendInfo, LogError> {
        let part = p.clone();
        let info = blocking(move || {
            if let Some(in_sync) = in_sync {
                let min = part.log.lock().config().min_insync_replicas;
                if (in_sync as i64) < i64::from(min) {
                    return Err(LogError::NotEnoughReplicas { in_sync, min });
                }
            }
            let info = part.log.append_as_leader(&records, part.leader_epoch())?;
            let mut log = part.log.lock();
            let leo = log.log_end_offset();
            log.set_high_watermark(leo);
            Ok(info)
        })
        .await?;
        p.appended.notify_waiters();
        Ok(info)
    }

    /// Writes a transaction marker as leader (WriteTxnMarkers); the high watermark follows as
    /// for any other append here.
    pub async fn append_marker(
        &self,
        p: &Arc<Partition>,
        producer_id: i64,
        producer_epoch: i16,
        commit: bool,
        coordinator_epoch: i32,
    ) -> Result<AppendInfo, LogError> {
        let part = p.clone();
        let info = blocking(move || {
            let mut log = part.log.lock();
            let info = log.append_marker_as_leader(
                producer_id,
                producer_epoch,
                commit,
                coordinator_epoch,
                part.leader_epoch(),
            )?;
            let leo = log.log_end_offset();
            log.set_high_watermark(leo);
            Ok(info)
        })
        .await?;
        p.appended.notify_waiters();
        Ok(info)
    }

    /// A read_committed read: up to the last stable offset, with the aborted transactions the
    /// consumer must skip.
    pub async fn read_committed(
        &self,
        p: &Arc<Partition>,
        offset: i64,
        max_bytes: usize,
        min_one: bool,
    ) -> Result<(ReadResult, Vec<AbortedTxn>), LogError> {
        let part = p.clone();
        blocking(move || {
            let log = part.log.lock();
            let lso = log.last_stable_offset();
            let read = log.read(offset, max_bytes, lso, min_one)?;
            let aborted = if read.records.is_empty() {
                Vec::new()
            } else {
                log.aborted_transactions(offset, lso)
            };
            Ok((read, aborted))
        })
        .await
    }

    pub async fn read(
        &self,
        p: &Arc<Partition>,
        offset: i64,
        max_bytes: usize,
        min_one: bool,
    ) -> Result<ReadResult, LogError> {
        let part = p.clone();
        blocking(move || {
            let log = part.log.lock();
            let hw = log.high_watermark();
            log.read(offset, max_bytes, hw, min_one)
        })
        .await
    }

    /// Runs a closure against the log on a blocking thread (ListOffsets, DeleteRecords, ...).
    pub async fn with_log<T: Send + 'static>(
        &self,
        p: &Arc<Partition>,
        f: impl FnOnce(&mut crate::log::PartitionLog) -> Result<T, LogError> + Send + 'static,
    ) -> Result<T, LogError> {
        let part = p.clone();
        blocking(move || f(&mut part.log.lock())).await
    }
}

fn log_role(topic: &str, partition: i32, role: Role, leader_epoch: i32) {
    match role {
        Role::Leader => tracing::info!(topic, partition, leader_epoch, "became leader"),
        Role::Follower { leader } => {
            tracing::info!(topic, partition, leader_epoch, leader, "became follower")
        }
    }
}

/// Runs file I/O on tokio's blocking pool so it never stalls the reactor's workers.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, LogError> + Send + 'static,
) -> Result<T, LogError> {
    tokio::task::spawn_blocking(f).await.unwrap_or_else(|e| {
        Err(LogError::io(
            "<blocking task>",
            std::io::Error::other(e.to_string()),
        ))
    })
}
