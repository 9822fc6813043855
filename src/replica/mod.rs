//! The partitions this broker hosts, their role, and appends and reads with the waiting that
//! acks and long polls need. The log layer below knows nothing of requests; this layer knows
//! nothing of the wire format.

mod acks_stall;
pub mod alter_partition;
mod append;
pub mod config_changes;
pub mod election_tasks;
mod error;
pub mod fetcher;
mod isr;
mod isr_shrink;
mod log_dir_failure;
mod metrics;
mod read;
mod roles;
pub mod selector;

pub use error::{AcksError, ReplicaError};

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use tokio::sync::{Notify, watch};

use self::append::AppendQueue;
use crate::config::{ConfigError, LogConfig};
use crate::log::{FileRegion, LogError, LogHandle, LogManager, PartitionLog, TopicPartition};
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
    /// The acks=all stall last logged, so that one is logged once per partition state (see
    /// `acks_stall`).
    stall_reported: Mutex<Option<acks_stall::StallState>>,
    /// The ids of the followers this leader tracks, a copy of `replication`'s kept apart so
    /// that a follower's fetch checks it on a runtime thread without the replication state's
    /// mutex, which blocking-pool work holds while it waits for the log (held across writes).
    follower_ids: RwLock<Vec<i32>>,
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

impl HwView {
    /// This view once `next` is published. While this broker stays the leader (the same
    /// leadership term) its high watermark and epoch never move back, so a publish computed
    /// earlier that arrives later (a new leader's own, after a follower's fetch moved the high
    /// watermark) keeps the newer values; else acks=all produces waiting for the newer high
    /// watermark would wait until the next advance, which, while producers only retry what the
    /// log already holds, never comes. A view from an older term changes nothing; leaving the
    /// leadership is taken as it comes.
    fn then(self, next: HwView) -> HwView {
        if next.leader_terms < self.leader_terms {
            return self;
        }
        if next.leader_terms == self.leader_terms && next.leading && self.leading {
            return HwView {
                high_watermark: next.high_watermark.max(self.high_watermark),
                leader_epoch: next.leader_epoch.max(self.leader_epoch),
                ..next
            };
        }
        next
    }
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

/// One follower fetch, as the leader records it.
#[derive(Debug, Clone, Copy)]
struct FollowerFetch {
    replica_id: i32,
    replica_live: bool,
    fetch_offset: i64,
    /// The follower's log start offset, as its fetch said (v5+; -1 when not given).
    log_start_offset: i64,
    /// The leader's log end offset when the fetch was planned.
    leader_leo: i64,
    diverging: bool,
    now: i64,
    lag_max_ms: i64,
}

/// What recording a follower fetch left: the offsets to answer with, an ISR change to write
/// and a high watermark to publish.
struct FollowerRecorded {
    high_watermark: i64,
    log_start_offset: i64,
    isr_proposal: Option<IsrProposal>,
    moved_hw: Option<i64>,
}

fn now_ms() -> i64 {
    crate::log::segment::now_ms()
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

    /// A future that completes at the next append or high watermark advance; create it before
    /// checking for data so that a change in between is not missed.
    pub fn appended(&self) -> tokio::sync::futures::Notified<'_> {
        self.appended.notified()
    }

    fn replication(&self) -> std::sync::MutexGuard<'_, Replication> {
        self.replication.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The replication state if nobody holds it right now (a transaction marker's append holds
    /// it across the log write).
    fn try_replication(&self) -> Option<std::sync::MutexGuard<'_, Replication>> {
        match self.replication.try_lock() {
            Ok(g) => Some(g),
            Err(std::sync::TryLockError::Poisoned(p)) => Some(p.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) => None,
        }
    }

    /// Records what a follower's fetch tells the leader (Kafka's `updateFollowerFetchState`
    /// and `maybeExpandIsr`): its position, whether it caught up, and an ISR expansion or high
    /// watermark advance that follows. A diverging fetch records nothing.
    fn record_follower_fetch(
        &self,
        r: &mut Replication,
        log: &mut PartitionLog,
        fetch: &FollowerFetch,
    ) -> FollowerRecorded {
        let mut isr_proposal = None;
        let mut moved_hw = None;
        if !fetch.diverging
            && let Some(f) = r.followers.get_mut(&fetch.replica_id)
        {
            let caught_up_at = if fetch.fetch_offset >= fetch.leader_leo {
                Some(fetch.now)
            } else if fetch.fetch_offset >= f.last_fetch_leader_leo {
                Some(f.last_fetch_ms)
            } else {
                None
            };
            if let Some(t) = caught_up_at {
                f.last_caught_up_ms = f.last_caught_up_ms.max(t);
            }
            let advanced = f.log_end_offset != fetch.fetch_offset;
            f.log_end_offset = fetch.fetch_offset;
            f.log_start_offset = fetch.log_start_offset;
            f.last_fetch_leader_leo = f.last_fetch_leader_leo.max(fetch.leader_leo);
            f.last_fetch_ms = fetch.now;
            // Kafka's maybeExpandIsr: caught up with the HW and with this epoch's data.
            if self.is_leader()
                && fetch.replica_live
                && r.pending_isr.is_none()
                && !r.stale
                && !r.isr.contains(&fetch.replica_id)
                && fetch.fetch_offset >= log.high_watermark()
                && fetch.fetch_offset >= r.epoch_start_offset
            {
                let mut isr = r.isr.clone();
                isr.push(fetch.replica_id);
                isr_proposal = Some(r.propose(isr.clone(), isr, self.leader_epoch()));
            }
            if advanced || isr_proposal.is_some() {
                moved_hw = self.maybe_increment_hw(r, log, fetch.now, fetch.lag_max_ms);
            }
        }
        FollowerRecorded {
            high_watermark: log.high_watermark(),
            log_start_offset: log.log_start_offset(),
            isr_proposal,
            moved_hw,
        }
    }

    /// Something of the log, from an async runtime thread: at once when the log's lock is free,
    /// else on the blocking pool, as an append holds the lock across its write.
    pub async fn inspect_log<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&PartitionLog) -> T + Send + 'static,
    ) -> Result<T, LogError> {
        if let Some(log) = self.log.try_lock() {
            return Ok(f(&log));
        }
        let part = self.clone();
        blocking(move || Ok(f(&part.log.lock()))).await
    }

    /// The ISR as this broker last learnt or wrote it.
    pub fn isr(&self) -> Vec<i32> {
        self.replication().isr.clone()
    }

    /// Whether `id` is one of the other replicas this leader tracks (Kafka's `getReplica`).
    pub fn has_follower(&self, id: i32) -> bool {
        self.follower_ids
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&id)
    }

    pub fn replicas(&self) -> Vec<i32> {
        self.replication().replicas.clone()
    }

    /// On the leader, the replicas a consumer fetching at `fetch_offset` could be sent to
    /// (Kafka's `findPreferredReadReplica`): (id, log end offset, ms since caught up) of the
    /// leader, first, then of each follower in the ISR whose log holds the offset. Followers
    /// not in the ISR may lag without bound, so a consumer sent there could fall behind.
    /// Empty when this broker does not lead.
    ///
    /// Called on a runtime thread, it does not wait for the log (an append holds it across its
    /// write): while the log is busy it offers nothing, and the consumer is served here this
    /// time, as it is when no other replica fits.
    pub fn read_replicas(&self, fetch_offset: i64) -> Vec<(i32, i64, i64)> {
        if !self.is_leader() {
            return Vec::new();
        }
        let now = now_ms();
        let r = self.replication();
        let Some(leader_leo) = self.log.try_lock().map(|log| log.log_end_offset()) else {
            return Vec::new();
        };
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

    /// Publishes the high watermark to the acks=all waiters. Callers compute it under the
    /// partition's locks but publish after releasing them, so two publishes may arrive in the
    /// other order: the view keeps the newer of the two (see [`HwView::then`]).
    fn publish_hw(&self, high_watermark: i64) {
        let view = HwView {
            high_watermark,
            leader_epoch: self.leader_epoch(),
            leading: self.is_leader(),
            leader_terms: self.leader_terms.load(Ordering::Acquire),
        };
        self.hw.send_if_modified(|v| {
            let next = v.then(view);
            let changed = *v != next;
            *v = next;
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
        *self.follower_ids.write().unwrap_or_else(|p| p.into_inner()) =
            r.followers.keys().copied().collect();
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
    use crate::log::LoadParams;
    use crate::log::records::{BatchBuilder, NewRecord};

    const LAG_MS: i64 = 30_000;

    /// Partition t-0 of broker `broker`, not yet given a role.
    fn partition(dir: &std::path::Path, broker: i32) -> Arc<Partition> {
        let log = PartitionLog::open(
            &dir.join("t-0"),
            LogConfig::default(),
            LoadParams::default(),
        )
        .unwrap();
        let (hw, _) = watch::channel(HwView {
            high_watermark: 0,
            leader_epoch: -1,
            leading: false,
            leader_terms: 0,
        });
        Arc::new(Partition {
            topic: "t".to_string(),
            partition: 0,
            log: Arc::new(LogHandle::new(log)),
            leader_epoch: AtomicI32::new(-1),
            leader_terms: AtomicU64::new(0),
            leader: AtomicI32::new(-1),
            local_broker: broker,
            appended: Notify::new(),
            replication: Mutex::new(Replication::default()),
            hw,
            appends: Mutex::new(AppendQueue::default()),
            stall_reported: Mutex::new(None),
            follower_ids: RwLock::new(Vec::new()),
        })
    }

    /// Broker 3 made leader of t-0 at epoch 1, broker 1 its one follower, both in the ISR.
    fn leading_with_follower_1() -> LeaderAndIsrState {
        LeaderAndIsrState {
            role: Role::Leader,
            leader_epoch: 1,
            partition_epoch: 1,
            controller_epoch: 2,
            replicas: vec![3, 1],
            isr: vec![3, 1],
            leader_address: None,
            topic_id: uuid::Uuid::nil(),
        }
    }

    fn records(n: usize) -> bytes::Bytes {
        let records = (0..n)
            .map(|i| NewRecord {
                timestamp: now_ms(),
                key: None,
                value: Some(format!("{i}").into_bytes()),
                headers: Vec::new(),
            })
            .collect();
        BatchBuilder {
            records,
            ..BatchBuilder::default()
        }
        .build()
        .unwrap()
        .into()
    }

    /// The failure behind a new leader that acknowledged nothing for 120 s: its follower's
    /// first fetch came in while it took the leadership, moved the high watermark and
    /// published it; the new leader's own publish of the high watermark it started from
    /// landed after that. Producers only retried batches the log already held, so nothing
    /// moved the high watermark again, and each acks=all retry timed out.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_late_publish_of_an_older_high_watermark_does_not_hide_an_advance() {
        let dir = tempfile::tempdir().unwrap();
        let identity = crate::log::manager::BrokerIdentity {
            broker_id: 3,
            cluster_id: None,
        };
        let logs = Arc::new(
            LogManager::open(
                &[dir.path().join("logs")],
                &identity,
                Default::default(),
                |_| Default::default(),
            )
            .unwrap(),
        );
        let rm = ReplicaManager::new(logs, 3);
        let p = partition(dir.path(), 3);
        let state = leading_with_follower_1();
        p.take_state(&state, LAG_MS).unwrap();
        let info = p.append_now(&records(10), true, LAG_MS).unwrap();
        assert_eq!(info.last_offset, 9);
        // The high watermark the new leader started from, as its own publish computed it.
        let started_from = p.log.lock().high_watermark();
        assert_eq!(started_from, 0, "follower 1 has not fetched yet");

        // Follower 1 fetches at the log end: the high watermark moves, and is published.
        let fetch = FollowerFetch {
            replica_id: 1,
            replica_live: true,
            fetch_offset: 10,
            log_start_offset: 0,
            leader_leo: 10,
            diverging: false,
            now: now_ms(),
            lag_max_ms: LAG_MS,
        };
        let recorded = {
            let mut r = p.replication();
            let mut log = p.log.lock();
            p.record_follower_fetch(&mut r, &mut log, &fetch)
        };
        assert_eq!(recorded.moved_hw, Some(10));
        p.publish_hw(10);
        // The new leader's publish, computed before the fetch, arrives after it.
        p.publish_hw(started_from);

        // The batch is acknowledged; its retry (a duplicate, nothing appended) is too.
        let acked = rm
            .wait_for_acks(&p, info.last_offset, std::time::Duration::from_secs(5))
            .await;
        assert_eq!(acked, Ok(()));
        // Fetches at the log end change nothing more.
        let again = {
            let mut r = p.replication();
            let mut log = p.log.lock();
            p.record_follower_fetch(&mut r, &mut log, &fetch)
        };
        assert_eq!(again.moved_hw, None);
        assert_eq!(
            rm.wait_for_acks(&p, info.last_offset, std::time::Duration::from_secs(5))
                .await,
            Ok(())
        );
    }

    /// A follower's fetch asks `has_follower` on a runtime thread; blocking-pool work holds
    /// the replication state while it waits for the log, which the partition's writer holds
    /// across its disk writes. The answer must not wait for that.
    #[test]
    fn whether_a_broker_is_a_follower_is_answered_while_the_replication_state_is_held() {
        let dir = tempfile::tempdir().unwrap();
        let p = partition(dir.path(), 3);
        let leading = leading_with_follower_1();
        p.take_state(&leading, LAG_MS).unwrap();
        let held = p.replication();
        let (tx, rx) = std::sync::mpsc::channel();
        let asker = p.clone();
        std::thread::spawn(move || {
            let _ = tx.send((
                asker.has_follower(1),
                asker.has_follower(2),
                asker.has_follower(3),
            ));
        });
        let answer = rx.recv_timeout(std::time::Duration::from_secs(5));
        drop(held);
        assert_eq!(answer, Ok((true, false, false)));
        // Following, it tracks no follower.
        let following = LeaderAndIsrState {
            role: Role::Follower { leader: 1 },
            leader_epoch: 2,
            ..leading
        };
        p.take_state(&following, LAG_MS).unwrap();
        assert!(!p.has_follower(1));
    }

    #[test]
    fn a_high_watermark_view_moves_back_only_when_the_leadership_changes() {
        let leading = |hw, epoch, terms| HwView {
            high_watermark: hw,
            leader_epoch: epoch,
            leading: true,
            leader_terms: terms,
        };
        // An older publish in the same term keeps the newer high watermark and epoch.
        assert_eq!(leading(10, 2, 1).then(leading(4, 1, 1)), leading(10, 2, 1));
        assert_eq!(leading(4, 1, 1).then(leading(10, 1, 1)), leading(10, 1, 1));
        // Stepping down is taken as it comes, with the follower's high watermark.
        let following = HwView {
            leading: false,
            ..leading(3, 2, 1)
        };
        assert_eq!(leading(10, 1, 1).then(following), following);
        // A new term starts afresh; a publish from an older one changes nothing.
        assert_eq!(following.then(leading(3, 3, 2)), leading(3, 3, 2));
        assert_eq!(leading(3, 3, 2).then(leading(10, 1, 1)), leading(3, 3, 2));
    }

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
