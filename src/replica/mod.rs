//! The partitions this broker hosts, their role, and appends and reads with the waiting that
//! acks and long polls need. The log layer below knows nothing of requests; this layer knows
//! nothing of the wire format.

pub mod alter_partition;
pub mod config_changes;
pub mod election_tasks;
pub mod fetcher;
mod isr;
mod log_dir_failure;
mod metrics;
pub mod selector;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use bytes::Bytes;
use kafka_protocol::ResponseError;
use tokio::sync::{Notify, watch};

use crate::config::{ConfigError, LogConfig};
use crate::log::txn_index::AbortedTxn;
use crate::log::{
    AppendInfo, FileRegion, LogError, LogHandle, LogManager, PartitionLog, ReadResult,
    TopicPartition,
};
use crate::metadata::MetadataStore;

/// One hosted partition.
pub struct Partition {
    pub topic: String,
    pub partition: i32,
    pub log: Arc<LogHandle>,
    leader_epoch: AtomicI32,
    /// How many times this broker has become the leader (from not leading): a waiting
    /// acks=all produce is answered NOT_LEADER_OR_FOLLOWER when this moved, even if it missed
    /// the moment this broker was not leading (its log may have been truncated then).
    leader_terms: AtomicU64,
    /// The leader the controller last named: this broker's id when it leads, -1 when unknown.
    leader: AtomicI32,
    /// This broker's id, to tell leading from following.
    local_broker: i32,
    /// Woken on every append and every high watermark advance, so that waiting fetches
    /// re-check without polling.
    appended: Notify,
    /// Assignment, ISR and what the leader knows of its followers. Lock order: this, then the
    /// log.
    replication: Mutex<Replication>,
    /// The high watermark as acks=all produces wait on it.
    hw: watch::Sender<HwView>,
    /// Producer batches waiting for this partition's writer (see
    /// [`ReplicaManager::append_as_producer`]).
    appends: Mutex<AppendQueue>,
}

/// Producer appends of one partition, in the order they were asked for, and whether a writer
/// on the blocking pool is draining them.
#[derive(Default)]
struct AppendQueue {
    jobs: std::collections::VecDeque<AppendJob>,
    writing: bool,
}

struct AppendJob {
    records: Bytes,
    acks_all: bool,
    done: tokio::sync::oneshot::Sender<Result<AppendInfo, LogError>>,
}

/// The writer of one partition's queued appends, running on the blocking pool. Should it never
/// run (the runtime shutting down) or stop in a panic, dropping it fails what is queued and
/// lets the next producer start a new writer, so no append waits forever.
struct QueueWriter {
    partition: Arc<Partition>,
    lag_max_ms: i64,
    finished: bool,
}

impl QueueWriter {
    /// Appends what is queued, batch after batch in queue order, until the queue is empty.
    fn run(mut self) {
        let p = self.partition.clone();
        loop {
            let jobs = {
                let mut q = p.appends.lock().unwrap_or_else(|e| e.into_inner());
                if q.jobs.is_empty() {
                    q.writing = false;
                    self.finished = true;
                    return;
                }
                std::mem::take(&mut q.jobs)
            };
            for job in jobs {
                let appended = p.append_now(&job.records, job.acks_all, self.lag_max_ms);
                // A producer that gave up waiting is no reason to stop the others.
                let _ = job.done.send(appended);
            }
        }
    }
}

impl Drop for QueueWriter {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        let mut q = self
            .partition
            .appends
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        q.writing = false;
        q.jobs.clear();
    }
}

/// What a produce waiting for acks=all needs to see change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HwView {
    pub high_watermark: i64,
    pub leader_epoch: i32,
    pub leading: bool,
    /// `Partition::leader_terms` when this was published.
    pub leader_terms: u64,
}

/// The leader's view of one follower, from its fetches (Kafka's `ReplicaState`).
#[derive(Debug, Clone, Copy)]
struct FollowerState {
    /// -1 until its first fetch in this leader epoch.
    log_end_offset: i64,
    /// As its last fetch said (v5+); -1 when unknown.
    log_start_offset: i64,
    last_fetch_leader_leo: i64,
    last_fetch_ms: i64,
    last_caught_up_ms: i64,
}

impl FollowerState {
    fn reset(in_sync: bool, now: i64) -> Self {
        FollowerState {
            log_end_offset: -1,
            log_start_offset: -1,
            last_fetch_leader_leo: -1,
            last_fetch_ms: 0,
            last_caught_up_ms: if in_sync { now } else { 0 },
        }
    }

    fn is_caught_up(&self, leader_leo: i64, now: i64, lag_max_ms: i64) -> bool {
        self.log_end_offset == leader_leo || now - self.last_caught_up_ms <= lag_max_ms
    }
}

#[derive(Debug, Default)]
struct Replication {
    replicas: Vec<i32>,
    isr: Vec<i32>,
    /// An ISR being written to the store: until it is, HW and acks count its members too
    /// (Kafka's "maximal ISR").
    pending_isr: Option<Vec<i32>>,
    /// The state znode's version as of the last LeaderAndIsr or our own write.
    partition_epoch: i32,
    /// The epoch of the controller that made the last leader decision, kept in ISR writes.
    controller_epoch: i32,
    /// A conditional ISR write found the znode changed: no ISR change until the controller
    /// tells us the new state.
    stale: bool,
    /// Bumped whenever the state is replaced from outside a proposal (a LeaderAndIsr, or a
    /// write that lands after one): an ISR write's outcome applies only to the state it was
    /// proposed against. A write the controller overtook (its Stale answer arriving after the
    /// new LeaderAndIsr) would otherwise block ISR changes until the next LeaderAndIsr.
    generation: u64,
    /// The log end offset when this broker became leader in the current epoch.
    epoch_start_offset: i64,
    followers: HashMap<i32, FollowerState>,
}

impl Replication {
    fn in_maximal_isr(&self, id: i32) -> bool {
        self.isr.contains(&id) || self.pending_isr.as_ref().is_some_and(|p| p.contains(&id))
    }

    fn maximal_isr_len(&self) -> usize {
        match &self.pending_isr {
            Some(p) => self.isr.len() + p.iter().filter(|r| !self.isr.contains(r)).count(),
            None => self.isr.len(),
        }
    }

    /// min(min.insync.replicas, replication factor), as Kafka counts it.
    fn effective_min_isr(&self, min_insync: i32) -> usize {
        (min_insync.max(1) as usize).min(self.replicas.len().max(1))
    }

    /// An acks=all append (a producer's or a transaction marker) is refused before it is
    /// written while the ISR is smaller than `min.insync.replicas`.
    fn check_min_isr(&self, min_insync: i32) -> Result<(), LogError> {
        let in_sync = self.isr.len();
        if in_sync < self.effective_min_isr(min_insync) {
            return Err(LogError::NotEnoughReplicas {
                in_sync,
                min: min_insync,
            });
        }
        Ok(())
    }

    /// Starts an ISR change: `in_force` is what counts for HW and acks until it is written.
    fn propose(&mut self, isr: Vec<i32>, in_force: Vec<i32>, leader_epoch: i32) -> IsrProposal {
        self.pending_isr = Some(in_force);
        IsrProposal {
            isr,
            leader_epoch,
            controller_epoch: self.controller_epoch,
            partition_epoch: self.partition_epoch,
            generation: self.generation,
        }
    }

    /// Takes an ISR write's outcome. A LeaderAndIsr that arrived meanwhile replaced the state the
    /// write was proposed against: then only a successful write that is newer than that state
    /// (znode versions only grow) still counts, and any proposal made since, against the
    /// older version, is dropped with it.
    fn settle(&mut self, proposal: &IsrProposal, written: isr::IsrWrite) {
        let overtaken = proposal.generation != self.generation;
        let landed = match &written {
            isr::IsrWrite::Written(version) => Some((proposal.isr.clone(), *version)),
            isr::IsrWrite::Adopted { isr, version } | isr::IsrWrite::Committed { isr, version } => {
                Some((isr.clone(), *version))
            }
            isr::IsrWrite::Stale | isr::IsrWrite::Failed => None,
        };
        if let Some((isr, version)) = landed
            && version > self.partition_epoch
        {
            if overtaken {
                self.generation += 1;
            }
            self.isr = isr;
            self.partition_epoch = version;
            self.pending_isr = None;
        } else if !overtaken {
            self.pending_isr = None;
            self.stale = written == isr::IsrWrite::Stale;
        }
    }
}

/// An ISR change the leader must write to the store.
#[derive(Debug, Clone)]
pub struct IsrProposal {
    pub isr: Vec<i32>,
    pub leader_epoch: i32,
    pub controller_epoch: i32,
    pub partition_epoch: i32,
    generation: u64,
}

/// What a follower's fetch gets from the leader's log.
#[derive(Debug)]
pub struct FollowerRead {
    /// Where the records are in the segment file; `None` when there are none.
    pub records: Option<FileRegion>,
    pub high_watermark: i64,
    pub log_start_offset: i64,
    /// Where the follower's log diverges from ours: (epoch, end offset).
    pub diverging: Option<(i32, i64)>,
    pub isr_proposal: Option<IsrProposal>,
}

fn now_ms() -> i64 {
    crate::log::segment::now_ms()
}

impl Partition {
    /// One producer batch appended as leader, on the blocking pool: refused while the ISR is
    /// below `min.insync.replicas` for acks=all, then the high watermark moved (or fetches
    /// woken) at once, in append order.
    fn append_now(
        &self,
        records: &Bytes,
        acks_all: bool,
        lag_max_ms: i64,
    ) -> Result<AppendInfo, LogError> {
        if acks_all {
            let min = self.log.lock().config().min_insync_replicas;
            self.replication().check_min_isr(min)?;
        }
        let info = self.log.append_as_leader(records, self.leader_epoch())?;
        let hw = {
            let r = self.replication();
            let mut log = self.log.lock();
            self.maybe_increment_hw(&r, &mut log, now_ms(), lag_max_ms)
        };
        match hw {
            Some(hw) => self.publish_hw(hw),
            None => self.appended.notify_waiters(),
        }
        Ok(info)
    }

    pub fn leader_epoch(&self) -> i32 {
        self.leader_epoch.load(Ordering::Acquire)
    }

    pub fn leader(&self) -> i32 {
        self.leader.load(Ordering::Acquire)
    }

    pub fn is_leader(&self) -> bool {
        self.leader() == self.local_broker
    }

    /// A future that completes at the next append or high watermark advance; create it before
    /// checking for data so that a change in between is not missed.
    pub fn appended(&self) -> tokio::sync::futures::Notified<'_> {
        self.appended.notified()
    }

    fn replication(&self) -> std::sync::MutexGuard<'_, Replication> {
        self.replication.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The ISR as this broker last learnt or wrote it.
    pub fn isr(&self) -> Vec<i32> {
        self.replication().isr.clone()
    }

    /// Whether `id` is one of the other replicas this leader tracks (Kafka's `getReplica`).
    pub fn has_follower(&self, id: i32) -> bool {
        self.replication().followers.contains_key(&id)
    }

    pub fn replicas(&self) -> Vec<i32> {
        self.replication().replicas.clone()
    }

    /// On the leader, the replicas a consumer fetching at `fetch_offset` could be sent to
    /// (Kafka's `findPreferredReadReplica`): (id, log end offset, ms since caught up) of the
    /// leader, first, then of each follower in the ISR whose log holds the offset. Followers
    /// not in the ISR may lag without bound, so a consumer sent there could fall behind.
    /// Empty when this broker does not lead.
    pub fn read_replicas(&self, fetch_offset: i64) -> Vec<(i32, i64, i64)> {
        if !self.is_leader() {
            return Vec::new();
        }
        let now = now_ms();
        let r = self.replication();
        let leader_leo = self.log.lock().log_end_offset();
        let mut out = vec![(self.local_broker, leader_leo, 0)];
        for (id, f) in &r.followers {
            if r.isr.contains(id)
                && f.log_end_offset >= fetch_offset
                && f.log_start_offset <= fetch_offset
            {
                out.push((*id, f.log_end_offset, (now - f.last_caught_up_ms).max(0)));
            }
        }
        out
    }

    fn publish_hw(&self, high_watermark: i64) {
        let view = HwView {
            high_watermark,
            leader_epoch: self.leader_epoch(),
            leading: self.is_leader(),
            leader_terms: self.leader_terms.load(Ordering::Acquire),
        };
        self.hw.send_if_modified(|v| {
            let changed = *v != view;
            *v = view;
            changed
        });
        self.appended.notify_waiters();
    }

    /// Kafka's `maybeIncrementLeaderHW`: the smallest log end offset among the leader, the
    /// (maximal) ISR and followers caught up enough to join it; never while the ISR is below
    /// the effective `min.insync.replicas`, never backwards. Returns the new HW if it moved.
    fn maybe_increment_hw(
        &self,
        r: &Replication,
        log: &mut PartitionLog,
        now: i64,
        lag_max_ms: i64,
    ) -> Option<i64> {
        if !self.is_leader() {
            return None;
        }
        if r.isr.len() < r.effective_min_isr(log.config().min_insync_replicas) {
            return None;
        }
        let leo = log.log_end_offset();
        let mut hw = leo;
        for (id, f) in &r.followers {
            if f.log_end_offset < hw
                && (r.in_maximal_isr(*id) || f.is_caught_up(leo, now, lag_max_ms))
            {
                hw = f.log_end_offset;
            }
        }
        if hw > log.high_watermark() {
            log.set_high_watermark(hw);
            Some(log.high_watermark())
        } else {
            None
        }
    }

    /// Applies the controller's decision for this partition (the log is open already).
    fn take_state(&self, state: &LeaderAndIsrState, lag_max_ms: i64) -> Result<(), LogError> {
        let leader = match state.role {
            Role::Leader => self.local_broker,
            Role::Follower { leader } => leader,
        };
        let now = now_ms();
        let mut r = self.replication();
        let new_epoch = state.leader_epoch > self.leader_epoch() || !self.is_leader();
        if state.role == Role::Leader && !self.is_leader() {
            self.leader_terms.fetch_add(1, Ordering::AcqRel);
        }
        self.leader.store(leader, Ordering::Release);
        self.leader_epoch
            .fetch_max(state.leader_epoch, Ordering::AcqRel);
        r.replicas = state.replicas.clone();
        r.isr = state.isr.clone();
        r.pending_isr = None;
        r.stale = false;
        r.generation += 1;
        r.partition_epoch = state.partition_epoch;
        r.controller_epoch = state.controller_epoch;
        let mut log = self.log.lock();
        let hw = if state.role == Role::Leader {
            if new_epoch {
                log.assign_leader_epoch_start(state.leader_epoch)?;
                r.epoch_start_offset = log.log_end_offset();
                let isr = r.isr.clone();
                r.followers = state
                    .replicas
                    .iter()
                    .filter(|&&id| id != self.local_broker)
                    .map(|&id| (id, FollowerState::reset(isr.contains(&id), now)))
                    .collect();
            } else {
                // Same epoch: the ISR or assignment changed; keep what fetches told us.
                let mut followers = std::mem::take(&mut r.followers);
                followers.retain(|id, _| state.replicas.contains(id));
                for &id in &state.replicas {
                    if id != self.local_broker {
                        followers
                            .entry(id)
                            .or_insert_with(|| FollowerState::reset(false, now));
                    }
                }
                r.followers = followers;
            }
            self.maybe_increment_hw(&r, &mut log, now, lag_max_ms);
            log.high_watermark()
        } else {
            r.followers.clear();
            log.high_watermark()
        };
        drop(log);
        drop(r);
        self.publish_hw(hw);
        Ok(())
    }
}

/// What LeaderAndIsr says about one partition.
#[derive(Debug, Clone)]
pub struct LeaderAndIsrState {
    pub role: Role,
    pub leader_epoch: i32,
    pub partition_epoch: i32,
    pub controller_epoch: i32,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    /// `host:port` of the leader, for a follower.
    pub leader_address: Option<String>,
    /// The topic's id (LeaderAndIsr v5+), nil when the controller gave none: a follower
    /// fetches by topic id (Fetch v13+) only when it knows it.
    pub topic_id: uuid::Uuid,
}

impl LeaderAndIsrState {
    /// A partition this broker leads alone (tests, and logs served before any controller).
    pub fn sole_leader(broker_id: i32, leader_epoch: i32) -> Self {
        LeaderAndIsrState {
            role: Role::Leader,
            leader_epoch,
            partition_epoch: 0,
            controller_epoch: 0,
            replicas: vec![broker_id],
            isr: vec![broker_id],
            leader_address: None,
            topic_id: uuid::Uuid::nil(),
        }
    }
}

pub struct ReplicaManager {
    logs: Arc<LogManager>,
    broker_id: i32,
    partitions: RwLock<HashMap<TopicPartition, Arc<Partition>>>,
    /// The topic defaults as the broker's static and dynamic configs give them now; a topic's
    /// logs use its overrides on top of these.
    log_defaults: RwLock<LogConfig>,
    /// `replica.lag.time.max.ms`.
    lag_max_ms: AtomicI64,
    fetchers: fetcher::ReplicaFetchers,
    isr: isr::IsrWriter,
    /// Set when the broker starts shutting down. As in Kafka's ReplicaManager, partitions it
    /// becomes a follower of from then on get no fetcher: a broker on its way out that kept
    /// fetching would be added back to the ISR its controlled shutdown just took it out of.
    shutting_down: AtomicBool,
    /// Kafka's `replicaStateChangeLock`. A LeaderAndIsr awaits (the topic's config, opening
    /// the log, stopping a fetcher) between its epoch check and taking the role; without this,
    /// a request overtaken by a newer one on another connection (the controller's retry, or a
    /// new controller's) would be applied last and undo the newer decision.
    state_change: tokio::sync::Mutex<()>,
    /// Partitions whose log directory failed (Kafka's `HostedPartition.Offline`).
    offline: RwLock<HashSet<TopicPartition>>,
    /// Where a failed log directory is reported to the controller.
    store: OnceLock<Arc<dyn MetadataStore>>,
}

/// What LeaderAndIsr asks of this broker for one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Leader,
    Follower { leader: i32 },
}

/// Why a produce with acks=all did not complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AcksError {
    #[error("this broker stopped leading the partition before the ISR had the records")]
    NotLeader,
    #[error("the ISR did not have the records in time")]
    TimedOut,
    #[error("the ISR shrank below min.insync.replicas after the append")]
    NotEnoughReplicasAfterAppend,
}

impl AcksError {
    pub fn kafka_error_code(self) -> i16 {
        match self {
            AcksError::NotLeader => ResponseError::NotLeaderOrFollower.code(),
            AcksError::TimedOut => ResponseError::RequestTimedOut.code(),
            AcksError::NotEnoughReplicasAfterAppend => {
                ResponseError::NotEnoughReplicasAfterAppend.code()
            }
        }
    }
}

/// Why an acknowledged append ([`ReplicaManager::append_acked`]) failed: the log refused the
/// records, or the ISR did not take them.
#[derive(Debug, thiserror::Error)]
pub enum ReplicaError {
    #[error(transparent)]
    Log(#[from] LogError),
    #[error(transparent)]
    Acks(#[from] AcksError),
}

impl ReplicaError {
    pub fn kafka_error_code(&self) -> i16 {
        match self {
            ReplicaError::Log(e) => e.kafka_error_code(),
            ReplicaError::Acks(e) => e.kafka_error_code(),
        }
    }
}

impl ReplicaManager {
    pub fn new(logs: Arc<LogManager>, broker_id: i32) -> Self {
        let log_defaults = RwLock::new(logs.default_config().clone());
        ReplicaManager {
            logs,
            broker_id,
            partitions: RwLock::new(HashMap::new()),
            log_defaults,
            lag_max_ms: AtomicI64::new(30_000),
            fetchers: fetcher::ReplicaFetchers::new(broker_id),
            isr: isr::IsrWriter::new(broker_id),
            shutting_down: AtomicBool::new(false),
            state_change: tokio::sync::Mutex::new(()),
            offline: RwLock::new(HashSet::new()),
            store: OnceLock::new(),
        }
    }

    /// Starts replication: follower fetchers with the broker's `replica.*` settings, the ISR
    /// shrink check, and ISR changes: to `store` below IBP 2.7-IV2, else to the controller that
    /// `cache` names. Runs until `shutdown`.
    pub fn start_replication(
        self: &Arc<Self>,
        config: &crate::config::BrokerConfig,
        store: Arc<dyn MetadataStore>,
        cache: Arc<crate::metadata::MetadataCache>,
        shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> Vec<tokio::task::JoinHandle<()>> {
        self.lag_max_ms
            .store(config.replica_lag_time_max_ms as i64, Ordering::Release);
        self.fetchers
            .configure(fetcher::FetcherConfig::from_broker(config));
        let _ = self.store.set(store.clone());
        self.isr.set_store(store);
        let mut tasks = vec![
            tokio::spawn(self.clone().run_isr_shrink(shutdown.clone())),
            tokio::spawn(self.isr.clone_handle().run_notifications(shutdown.clone())),
        ];
        if config.inter_broker_protocol_version.alter_partition() {
            let sender = self
                .isr
                .send_to_controller(alter_partition::ControllerLink {
                    broker_id: self.broker_id,
                    cache,
                    listener: config.inter_broker_listener.clone(),
                    security: config.inter_broker_security.clone(),
                    ibp: config.inter_broker_protocol_version,
                    timeout: std::time::Duration::from_millis(config.controller_socket_timeout_ms),
                });
            tasks.push(tokio::spawn(sender.run(shutdown)));
        }
        tasks
    }

    /// Held while a LeaderAndIsr or StopReplica is applied (see `state_change`).
    pub async fn lock_state_changes(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.state_change.lock().await
    }

    /// From now on, becoming a follower starts no fetcher (see `shutting_down`).
    pub fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::Release);
    }

    /// Stops every follower fetcher (shutdown).
    pub async fn stop_fetchers(&self) {
        self.fetchers.shutdown().await;
    }

    fn lag_max_ms(&self) -> i64 {
        self.lag_max_ms.load(Ordering::Acquire)
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

    /// The partition if this broker leads it: produce, fetches (consumers' and followers') and
    /// ListOffsets are served by the leader only.
    pub fn leader(&self, topic: &str, partition: i32) -> Option<Arc<Partition>> {
        self.get(topic, partition).filter(|p| p.is_leader())
    }

    /// LeaderAndIsr: opens or creates the partition's log, takes the role, epoch and ISR, and
    /// starts or stops fetching from the leader.
    pub async fn apply_role(
        &self,
        topic: &str,
        partition: i32,
        state: &LeaderAndIsrState,
        config: LogConfig,
    ) -> Result<Arc<Partition>, LogError> {
        self.refuse_offline(&(topic.to_string(), partition))?;
        let p = match self.get(topic, partition) {
            Some(p) => {
                p.log.lock().set_config(config);
                p
            }
            None => self.open_partition(topic, partition, config).await?,
        };
        let was = (p.leader(), p.leader_epoch());
        // A fetcher must not append while the partition changes hands; removing it waits out
        // a response being applied.
        if state.role == Role::Leader {
            self.fetchers
                .remove(&[(topic.to_string(), partition)])
                .await;
        }
        let part = p.clone();
        let st = state.clone();
        let lag = self.lag_max_ms();
        blocking(move || part.take_state(&st, lag)).await?;
        if let Role::Follower { leader } = state.role {
            let shutting_down = self.shutting_down.load(Ordering::Acquire);
            match &state.leader_address {
                Some(addr) if leader >= 0 && !shutting_down => {
                    self.fetchers
                        .follow(p.clone(), leader, addr.clone(), state.topic_id)
                        .await
                }
                _ => {
                    self.fetchers
                        .remove(&[(topic.to_string(), partition)])
                        .await;
                    if shutting_down {
                        tracing::info!(topic, partition, leader, "shutting down: not fetching");
                    } else {
                        tracing::warn!(
                            topic,
                            partition,
                            leader,
                            "no address for the leader; not fetching until the next LeaderAndIsr"
                        );
                    }
                }
            }
        }
        if was != (p.leader(), p.leader_epoch()) {
            log_role(topic, partition, state.role, state.leader_epoch);
        }
        Ok(p)
    }

    async fn open_partition(
        &self,
        topic: &str,
        partition: i32,
        config: LogConfig,
    ) -> Result<Arc<Partition>, LogError> {
        let logs = self.logs.clone();
        let t = topic.to_string();
        let topic_config = config.clone();
        let log = blocking(move || logs.get_or_create(&t, partition, config)).await?;
        let hw = {
            let mut l = log.lock();
            // Logs found at start-up were opened with the broker defaults; the topic's own
            // settings are known only now.
            l.set_config(topic_config);
            l.high_watermark()
        };
        let (hw_tx, _) = watch::channel(HwView {
            high_watermark: hw,
            leader_epoch: -1,
            leading: false,
            leader_terms: 0,
        });
        let p = Arc::new(Partition {
            topic: topic.to_string(),
            partition,
            log,
            leader_epoch: AtomicI32::new(-1),
            leader_terms: AtomicU64::new(0),
            leader: AtomicI32::new(-1),
            local_broker: self.broker_id,
            appended: Notify::new(),
            replication: Mutex::new(Replication::default()),
            hw: hw_tx,
            appends: Mutex::new(AppendQueue::default()),
        });
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
        self.fetchers
            .remove(&[(topic.to_string(), partition)])
            .await;
        let removed = {
            let mut parts = self.partitions.write().unwrap_or_else(|p| p.into_inner());
            parts.remove(&(topic.to_string(), partition))
        };
        if let Some(p) = removed {
            p.leader.store(-1, Ordering::Release);
            let hw = p.log.lock().high_watermark();
            p.publish_hw(hw);
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

    /// Appends a batch as leader without waiting for followers (acks=1, internal topics).
    pub async fn append(&self, p: &Arc<Partition>, records: Bytes) -> Result<AppendInfo, LogError> {
        self.append_as_producer(p, records, false).await
    }

    /// Appends a producer's batch as leader. With `acks_all`, as in Kafka, the append is
    /// refused while the ISR is smaller than the topic's `min.insync.replicas`; the caller then
    /// waits with [`ReplicaManager::wait_for_acks`].
    pub async fn append_as_producer(
        &self,
        p: &Arc<Partition>,
        records: Bytes,
        acks_all: bool,
    ) -> Result<AppendInfo, LogError> {
        // The write may wait for the disk, so it runs on the blocking pool; but one hop per
        // batch is most of the broker's cost at high rates (two thread wake-ups per produce
        // request). Batches are queued instead, and one writer drains the queue: requests
        // that arrive while it writes (pipelined on a connection, or from other producers)
        // ride along without a hop of their own. The queue keeps their order, which is the
        // order their first poll reached this point.
        let (done, appended) = tokio::sync::oneshot::channel();
        let start_writer = {
            let mut q = p.appends.lock().unwrap_or_else(|e| e.into_inner());
            q.jobs.push_back(AppendJob {
                records,
                acks_all,
                done,
            });
            !std::mem::replace(&mut q.writing, true)
        };
        if start_writer {
            let writer = QueueWriter {
                partition: p.clone(),
                lag_max_ms: self.lag_max_ms(),
                finished: false,
            };
            tokio::task::spawn_blocking(move || writer.run());
        }
        let appended = appended.await.unwrap_or_else(|_| {
            Err(LogError::io(
                "<append queue>",
                std::io::Error::other("the partition's writer stopped"),
            ))
        });
        self.check_storage(p, appended).await
    }

    /// The broker's own acks=all write (a coordinator's state): appended as
    /// [`ReplicaManager::append_as_producer`] does, then acknowledged once the ISR has it, or
    /// not within `timeout`. Fails with whichever step failed.
    pub async fn append_acked(
        &self,
        p: &Arc<Partition>,
        records: Bytes,
        timeout: std::time::Duration,
    ) -> Result<AppendInfo, ReplicaError> {
        let info = self.append_as_producer(p, records, true).await?;
        self.wait_for_acks(p, info.last_offset, timeout).await?;
        Ok(info)
    }

    /// acks=all: waits until the high watermark passes `last_offset` (woken by the follower
    /// fetches that move it, never by polling), or `timeout`.
    pub async fn wait_for_acks(
        &self,
        p: &Arc<Partition>,
        last_offset: i64,
        timeout: std::time::Duration,
    ) -> Result<(), AcksError> {
        let mut rx = p.hw.subscribe();
        // Kafka's DelayedProduce fails a waiting produce only when this broker no longer leads
        // (`Partition.checkEnoughReplicasReachOffset`): a leader epoch bump that keeps it the
        // leader (an ISR change, a new controller's LeaderAndIsr) leaves the record in the log
        // and the wait goes on. Failing it would make a producer without idempotence retry and
        // write the record twice.
        let terms = rx.borrow().leader_terms;
        let lost = |v: &HwView| !v.leading || v.leader_terms != terms;
        let waited = tokio::time::timeout(
            timeout,
            rx.wait_for(|v| v.high_watermark > last_offset || lost(v)),
        )
        .await;
        let view = match waited {
            Err(_) => return Err(AcksError::TimedOut),
            Ok(Err(_)) => return Err(AcksError::NotLeader),
            Ok(Ok(v)) => *v,
        };
        if lost(&view) {
            return Err(AcksError::NotLeader);
        }
        let min = p.log.lock().config().min_insync_replicas;
        let r = p.replication();
        if r.maximal_isr_len() < r.effective_min_isr(min) {
            return Err(AcksError::NotEnoughReplicasAfterAppend);
        }
        Ok(())
    }

    /// Writes a transaction marker as leader (WriteTxnMarkers), refused while the ISR is
    /// smaller than `min.insync.replicas`; the high watermark moves as for any other append,
    /// once the ISR has the marker.
    pub async fn append_marker(
        &self,
        p: &Arc<Partition>,
        producer_id: i64,
        producer_epoch: i16,
        commit: bool,
        coordinator_epoch: i32,
    ) -> Result<AppendInfo, LogError> {
        let part = p.clone();
        let lag = self.lag_max_ms();
        let appended = blocking(move || {
            // The replication state before the log, as every other path takes them.
            let r = part.replication();
            let mut log = part.log.lock();
            // Kafka appends markers with acks=-1, so min.insync.replicas applies; the
            // coordinator retries until the ISR is back.
            r.check_min_isr(log.config().min_insync_replicas)?;
            let info = log.append_marker_as_leader(
                producer_id,
                producer_epoch,
                commit,
                coordinator_epoch,
                part.leader_epoch(),
            )?;
            let hw = part.maybe_increment_hw(&r, &mut log, now_ms(), lag);
            Ok((info, hw))
        })
        .await;
        let (info, hw) = self.check_storage(p, appended).await?;
        match hw {
            Some(hw) => p.publish_hw(hw),
            None => p.appended.notify_waiters(),
        }
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
    ) -> Result<(ReadResult<Option<FileRegion>>, Vec<AbortedTxn>), LogError> {
        let plan = move |log: &PartitionLog| {
            let lso = log.last_stable_offset();
            let snapshot = log.read_snapshot(offset, max_bytes, lso, min_one)?;
            // The `.txnindex` entries are kept in memory: this is no file I/O.
            let aborted = if snapshot.reads_nothing() {
                Vec::new()
            } else {
                log.aborted_transactions(offset, lso)
            };
            Ok((snapshot, aborted))
        };
        let (read, aborted) = match p.log.try_locate_now(plan) {
            Some(located) => located?,
            None => {
                let part = p.clone();
                // The log is held only to plan the read; its file I/O runs without it.
                blocking(move || part.log.locate_with(plan)).await?
            }
        };
        let aborted = if read.records.is_none() {
            Vec::new()
        } else {
            aborted
        };
        Ok((read, aborted))
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
            // The log is held only to plan the read; its file I/O runs without it.
            part.log
                .read_with(|log| {
                    let hw = log.high_watermark();
                    Ok((log.read_snapshot(offset, max_bytes, hw, min_one)?, ()))
                })
                .map(|(read, ())| read)
        })
        .await
    }

    /// A consumer's read (up to the high watermark) that locates the records in the segment
    /// file for the fetch to send from there, instead of reading them.
    pub async fn locate(
        &self,
        p: &Arc<Partition>,
        offset: i64,
        max_bytes: usize,
        min_one: bool,
    ) -> Result<ReadResult<Option<FileRegion>>, LogError> {
        let plan = move |log: &PartitionLog| {
            let hw = log.high_watermark();
            Ok((log.read_snapshot(offset, max_bytes, hw, min_one)?, ()))
        };
        // Hot data is located here, on the runtime thread; only what may wait for the disk
        // or the log's lock pays the hop to the blocking pool.
        let (read, ()) = match p.log.try_locate_now(plan) {
            Some(located) => located?,
            None => {
                let part = p.clone();
                blocking(move || part.log.locate_with(plan)).await?
            }
        };
        Ok(read)
    }

    /// A follower's fetch at the leader: checks `last_fetched_epoch` against our epochs (a
    /// diverging follower gets where to truncate and no data), reads up to the log end, and
    /// records the follower's position, which may move the high watermark or let it rejoin
    /// the ISR (the proposal is written by [`ReplicaManager::propose_isr`]). As in Kafka's
    /// ZooKeeper mode, only a broker the controller counts as live may join the ISR: one whose
    /// session expired while it was paused must register again first.
    #[allow(clippy::too_many_arguments)]
    pub async fn read_for_follower(
        &self,
        p: &Arc<Partition>,
        replica_id: i32,
        replica_live: bool,
        fetch_offset: i64,
        last_fetched_epoch: i32,
        follower_log_start: i64,
        max_bytes: usize,
        min_one: bool,
    ) -> Result<FollowerRead, LogError> {
        let part = p.clone();
        let lag = self.lag_max_ms();
        let read = blocking(move || {
            // The log is held only to plan the read (and check the epoch); its file I/O runs
            // without it.
            let (read, (leader_leo, diverging)) = part.log.locate_with(|log| {
                let leo = log.log_end_offset();
                if last_fetched_epoch >= 0 {
                    let (epoch, end) = log.end_offset_for_epoch(last_fetched_epoch);
                    if end < fetch_offset || epoch < last_fetched_epoch {
                        return Ok((log.no_read(), (leo, Some((epoch, end)))));
                    }
                }
                let snapshot = log.read_snapshot(fetch_offset, max_bytes, leo, min_one)?;
                Ok((snapshot, (leo, None)))
            })?;
            let records = read.records;
            let now = now_ms();
            let mut r = part.replication();
            let mut proposal = None;
            let mut moved = None;
            if diverging.is_none()
                && let Some(f) = r.followers.get_mut(&replica_id)
            {
                let caught_up_at = if fetch_offset >= leader_leo {
                    Some(now)
                } else if fetch_offset >= f.last_fetch_leader_leo {
                    Some(f.last_fetch_ms)
                } else {
                    None
                };
                if let Some(t) = caught_up_at {
                    f.last_caught_up_ms = f.last_caught_up_ms.max(t);
                }
                let advanced = f.log_end_offset != fetch_offset;
                f.log_end_offset = fetch_offset;
                f.log_start_offset = follower_log_start;
                f.last_fetch_leader_leo = f.last_fetch_leader_leo.max(leader_leo);
                f.last_fetch_ms = now;
                let mut log = part.log.lock();
                // Kafka's maybeExpandIsr: caught up with the HW and with this epoch's data.
                if part.is_leader()
                    && replica_live
                    && r.pending_isr.is_none()
                    && !r.stale
                    && !r.isr.contains(&replica_id)
                    && fetch_offset >= log.high_watermark()
                    && fetch_offset >= r.epoch_start_offset
                {
                    let mut isr = r.isr.clone();
                    isr.push(replica_id);
                    proposal = Some(r.propose(isr.clone(), isr, part.leader_epoch()));
                }
                if advanced || proposal.is_some() {
                    moved = part.maybe_increment_hw(&r, &mut log, now, lag);
                }
            }
            drop(r);
            let log = part.log.lock();
            Ok((
                FollowerRead {
                    records,
                    high_watermark: log.high_watermark(),
                    log_start_offset: log.log_start_offset(),
                    diverging,
                    isr_proposal: proposal,
                },
                moved,
            ))
        })
        .await;
        let (read, moved) = read?;
        if let Some(hw) = moved {
            p.publish_hw(hw);
        }
        Ok(read)
    }

    /// Writes an ISR change to the partition's state znode (conditional on the partition
    /// epoch) in the background; on success the new ISR takes effect here.
    pub fn propose_isr(self: &Arc<Self>, p: &Arc<Partition>, proposal: IsrProposal) {
        let me = self.clone();
        let p = p.clone();
        tokio::spawn(async move {
            let written = me.isr.write(&p.topic, p.partition, &proposal).await;
            let lag = me.lag_max_ms();
            let part = p.clone();
            let moved = blocking(move || {
                let mut r = part.replication();
                r.settle(&proposal, written);
                let mut log = part.log.lock();
                Ok(part.maybe_increment_hw(&r, &mut log, now_ms(), lag))
            })
            .await;
            if let Ok(Some(hw)) = moved {
                p.publish_hw(hw);
            }
        });
    }

    /// Kafka's `maybeShrinkIsr`, every `replica.lag.time.max.ms / 2`: followers in the ISR that
    /// have not caught up with the leader's log end for that long are removed.
    async fn run_isr_shrink(self: Arc<Self>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        loop {
            let period = std::time::Duration::from_millis((self.lag_max_ms() / 2).max(10) as u64);
            tokio::select! {
                _ = tokio::time::sleep(period) => {}
                _ = shutdown.changed() => return,
            }
            if *shutdown.borrow() {
                return;
            }
            let lag = self.lag_max_ms();
            for p in self.hosted().into_iter().filter(|p| p.is_leader()) {
                let part = p.clone();
                let proposal = blocking(move || {
                    let now = now_ms();
                    let mut r = part.replication();
                    if r.pending_isr.is_some() || r.stale {
                        return Ok(None);
                    }
                    let leo = part.log.lock().log_end_offset();
                    let me = part.local_broker;
                    let out: Vec<i32> = r
                        .isr
                        .iter()
                        .copied()
                        .filter(|id| *id != me)
                        .filter(|id| {
                            r.followers
                                .get(id)
                                .is_none_or(|f| !f.is_caught_up(leo, now, lag))
                        })
                        .collect();
                    if out.is_empty() {
                        return Ok(None);
                    }
                    let isr: Vec<i32> = r.isr.iter().copied().filter(|id| !out.contains(id)).collect();
                    tracing::info!(topic = %part.topic, partition = part.partition, ?out, ?isr, "shrinking ISR: followers lagging");
                    // The current (larger) ISR stays in force for HW and acks until written.
                    let in_force = r.isr.clone();
                    Ok(Some(r.propose(isr, in_force, part.leader_epoch())))
                })
                .await;
                if let Ok(Some(proposal)) = proposal {
                    self.propose_isr(&p, proposal);
                }
            }
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn leader_state(isr: Vec<i32>, partition_epoch: i32) -> Replication {
        Replication {
            replicas: vec![1, 2, 3],
            isr,
            partition_epoch,
            ..Default::default()
        }
    }

    #[test]
    fn a_write_overtaken_by_leader_and_isr_changes_nothing() {
        let mut r = leader_state(vec![1], 3);
        let proposal = r.propose(vec![1, 3], vec![1, 3], 3);
        // The controller rewrote the state znode and its LeaderAndIsr arrived first.
        r.isr = vec![1];
        r.pending_isr = None;
        r.partition_epoch = 4;
        r.generation += 1;
        r.settle(&proposal, isr::IsrWrite::Stale);
        assert!(!r.stale, "the follower could never rejoin the ISR");
        assert_eq!(r.isr, vec![1]);
        // The next proposal is made against the new state, and its outcome counts.
        let next = r.propose(vec![1, 3], vec![1, 3], 4);
        assert_eq!(next.partition_epoch, 4);
        r.settle(&next, isr::IsrWrite::Written(5));
        assert_eq!((r.isr.clone(), r.partition_epoch), (vec![1, 3], 5));
        assert!(r.pending_isr.is_none());
    }

    #[test]
    fn a_write_newer_than_an_overtaking_leader_and_isr_still_counts() {
        let mut r = leader_state(vec![1], 3);
        let proposal = r.propose(vec![1, 3], vec![1, 3], 3);
        // A LeaderAndIsr read before the write landed (the same version) arrives first, and a
        // second proposal is made against it.
        r.pending_isr = None;
        r.generation += 1;
        let second = r.propose(vec![1, 2], vec![1, 2], 3);
        r.settle(&proposal, isr::IsrWrite::Written(4));
        assert_eq!((r.isr.clone(), r.partition_epoch), (vec![1, 3], 4));
        assert!(r.pending_isr.is_none());
        // The second write was conditional on version 3 and fails: that changes nothing.
        r.settle(&second, isr::IsrWrite::Stale);
        assert!(!r.stale);
        assert_eq!((r.isr.clone(), r.partition_epoch), (vec![1, 3], 4));
    }

    #[test]
    fn a_stale_write_waits_for_the_controller() {
        let mut r = leader_state(vec![1, 2], 7);
        let proposal = r.propose(vec![1], vec![1, 2], 2);
        r.settle(&proposal, isr::IsrWrite::Stale);
        assert!(r.stale);
        assert_eq!(r.isr, vec![1, 2]);
        assert!(r.pending_isr.is_none());
    }
}
