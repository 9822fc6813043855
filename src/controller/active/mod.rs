//! The active controller: the one broker that won `/controller`. It keeps the cluster's state
//! (live brokers, assignments, partition leaders and ISR) in memory, reacts to changes in
//! ZooKeeper, writes partition states, and tells brokers what to do. Everything runs on one
//! task, one event at a time, as Kafka's controller event thread does, so no decision races
//! another: ZooKeeper watches, requests forwarded by this broker's API (controlled shutdown,
//! reassignments, elections) and the leader-imbalance timer all queue on it.
//!
//! This file holds the state, the event loop and partition state changes; the children add
//! to the same `ActiveController`: `brokers` (brokers joining and failing), `deletion` (topic
//! deletion), `requests` (what is sent to brokers), `election`, `isr_change`, `reassign` and
//! `shutdown` (controlled shutdown), `alter_partition` (leaders' ISR changes at IBP 2.7+).

pub mod alter_partition;
mod brokers;
mod deletion;
mod election;
mod isr_change;
mod log_dirs;
mod reassign;
mod requests;
mod shutdown;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use futures::stream::{self, StreamExt, TryStreamExt};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{broadcast, mpsc, watch};

use super::Command;
use super::channel::BrokerChannels;
use crate::config::BrokerConfig;
use crate::metadata::MetadataStore;
use crate::metadata::store::{
    CreateMode, StoreError, StoreResult, WatchEvent, create_recursive, ensure_path,
};
use crate::metadata::znodes::{self, PartitionStateZnode, TopicZnode};
use brokers::broker_address;

/// Leader and epoch that tell brokers a topic is being deleted.
const LEADER_DURING_DELETE: i32 = -2;
const EPOCH_DURING_DELETE: i32 = -2;
const NO_LEADER: i32 = -1;
/// Store requests the controller keeps in flight at once when it reads or writes many partition
/// states: ZooKeeper answers pipelined requests on one connection in order, and the embedded
/// store commits whatever is queued with one fsync, so a decision about 10,000 partitions costs
/// a few round trips rather than 10,000. Below ZooKeeper's `globalOutstandingLimit` (1,000),
/// past which it stops reading the connection.
const IN_FLIGHT: usize = 768;
/// Partition state writes between two checks of the controller epoch (see `fence`).
const WRITES_PER_FENCE: usize = 1000;

/// Why the controller stopped being active.
#[derive(Debug)]
pub enum Stop {
    /// Another broker is controller now, or this one's session or fencing was lost.
    Resigned(String),
    Shutdown,
}

impl From<StoreError> for Stop {
    fn from(e: StoreError) -> Self {
        Stop::Resigned(format!("metadata store: {e}"))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct LiveBroker {
    /// The czxid of its registration: changes when the broker re-registers (a bounce).
    epoch: i64,
    rack: Option<String>,
    /// (listener name, host, port, security protocol name)
    endpoints: Vec<(String, String, u16, String)>,
}

#[derive(Debug, Clone)]
struct TopicState {
    id: uuid::Uuid,
    /// Each partition's full replica set (with a reassignment in progress: target and origin
    /// replicas together, as Kafka keeps it).
    assignment: BTreeMap<i32, Vec<i32>>,
    /// Replicas being added and removed by a reassignment in progress, by partition.
    adding: BTreeMap<i32, Vec<i32>>,
    removing: BTreeMap<i32, Vec<i32>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct PartitionState {
    leader: i32,
    leader_epoch: i32,
    isr: Vec<i32>,
    controller_epoch: i32,
    /// zkVersion of the state znode: Kafka's partition epoch.
    zk_version: i32,
}

type Tp = (String, i32);

/// A leader and ISR decided for a partition, to be written to its state znode.
struct Decision {
    tp: Tp,
    leader: i32,
    leader_epoch: i32,
    isr: Vec<i32>,
}

pub struct ActiveController {
    store: Arc<dyn MetadataStore>,
    config: Arc<BrokerConfig>,
    epoch: i32,
    epoch_zk_version: i32,
    channels: BrokerChannels,
    brokers: BTreeMap<i32, LiveBroker>,
    topics: BTreeMap<String, TopicState>,
    states: BTreeMap<Tp, PartitionState>,
    /// Topics marked for deletion whose replicas could not all be deleted yet.
    deleting: BTreeSet<String>,
    /// Brokers that asked for a controlled shutdown: still reachable, but no longer eligible as
    /// leaders or ISR members (Kafka's `shuttingDownBrokerIds`).
    shutting_down: BTreeSet<i32>,
    /// The creation id (czxid) of the `/admin/reassign_partitions` znode already acted on.
    zk_reassignment_seen: Option<i64>,
}

impl ActiveController {
    pub fn new(
        store: Arc<dyn MetadataStore>,
        config: Arc<BrokerConfig>,
        epoch: i32,
        epoch_zk_version: i32,
        channels: BrokerChannels,
    ) -> Self {
        ActiveController {
            store,
            config,
            epoch,
            epoch_zk_version,
            channels,
            brokers: BTreeMap::new(),
            topics: BTreeMap::new(),
            states: BTreeMap::new(),
            deleting: BTreeSet::new(),
            shutting_down: BTreeSet::new(),
            zk_reassignment_seen: None,
        }
    }

    /// Runs until this broker is no longer controller or shuts down.
    pub async fn run(
        mut self,
        mut events: broadcast::Receiver<WatchEvent>,
        mut commands: mpsc::UnboundedReceiver<Command>,
        mut shutdown: watch::Receiver<bool>,
    ) -> Stop {
        if let Err(stop) = self.failover().await {
            return stop;
        }
        // Kafka's auto leader rebalance task: first check one interval after failover.
        let period =
            Duration::from_secs(self.config.leader_imbalance_check_interval_seconds.max(1));
        let mut rebalance = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        rebalance.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let result = tokio::select! {
                e = events.recv() => match e {
                    Ok(event) => self.handle(event).await,
                    // Events were missed: re-read everything the controller watches.
                    Err(RecvError::Lagged(_)) => self.reconcile_all().await,
                    Err(RecvError::Closed) => Err(Stop::Resigned("metadata store closed".into())),
                },
                Some(command) = commands.recv() => self.command(command).await,
                _ = rebalance.tick(), if self.config.auto_leader_rebalance_enable => {
                    self.check_leader_imbalance().await
                }
                _ = shutdown.changed() => return Stop::Shutdown,
            };
            if let Err(stop) = result {
                return stop;
            }
        }
    }

    async fn handle(&mut self, event: WatchEvent) -> Result<(), Stop> {
        match event {
            WatchEvent::SessionExpired => Err(Stop::Resigned("session expired".into())),
            WatchEvent::NodeChanged(p) if p == znodes::CONTROLLER => {
                self.check_still_controller().await
            }
            WatchEvent::ChildrenChanged(p) if p == znodes::BROKER_IDS => {
                self.on_broker_change().await
            }
            WatchEvent::NodeChanged(p) if p.starts_with(&format!("{}/", znodes::BROKER_IDS)) => {
                self.on_broker_change().await
            }
            WatchEvent::ChildrenChanged(p) if p == znodes::TOPICS => self.on_topic_change().await,
            WatchEvent::NodeChanged(p) if p == znodes::REASSIGN_PARTITIONS => {
                self.on_zk_reassignment().await.map(|_| ())
            }
            WatchEvent::NodeChanged(p) if p == znodes::PREFERRED_REPLICA_ELECTION => {
                self.on_zk_preferred_election().await
            }
            WatchEvent::NodeChanged(p) => match p.strip_prefix(&format!("{}/", znodes::TOPICS)) {
                Some(topic) if !topic.contains('/') && self.topics.contains_key(topic) => {
                    let topic = topic.to_string();
                    self.on_assignment_change(&topic).await
                }
                // A partition state written by its leader (ISR change): a reassignment waiting
                // for its new replicas to join the ISR may complete.
                Some(rest) => match parse_state_path(rest) {
                    Some(tp) if self.is_reassigning(&tp) => {
                        self.maybe_complete_reassignment(&tp).await
                    }
                    _ => Ok(()),
                },
                None => Ok(()),
            },
            WatchEvent::ChildrenChanged(p) if p == znodes::DELETE_TOPICS => {
                self.on_delete_topics().await
            }
            WatchEvent::ChildrenChanged(p) if p == znodes::ISR_CHANGE_NOTIFICATION => {
                self.on_isr_change_notifications().await
            }
            WatchEvent::ChildrenChanged(p) if p == znodes::LOG_DIR_EVENT_NOTIFICATION => {
                self.on_log_dir_events().await
            }
            WatchEvent::ChildrenChanged(p) if p == znodes::CONFIG_CHANGES => {
                self.on_config_change().await
            }
            WatchEvent::ChildrenChanged(_) => Ok(()),
        }
    }

    async fn reconcile_all(&mut self) -> Result<(), Stop> {
        self.check_still_controller().await?;
        self.on_broker_change().await?;
        self.on_topic_change().await?;
        self.on_delete_topics().await?;
        self.on_isr_change_notifications().await?;
        self.on_log_dir_events().await?;
        self.on_zk_reassignment().await?;
        self.on_zk_preferred_election().await
    }

    /// A request forwarded by this broker's API to the active controller.
    async fn command(&mut self, command: Command) -> Result<(), Stop> {
        match command {
            Command::ControlledShutdown {
                broker,
                broker_epoch,
                reply,
            } => {
                let result = self.controlled_shutdown(broker, broker_epoch).await?;
                let _ = reply.send(result);
            }
            Command::AlterReassignments { partitions, reply } => {
                let result = self.alter_reassignments(partitions).await?;
                let _ = reply.send(result);
            }
            Command::ListReassignments { partitions, reply } => {
                let _ = reply.send(self.list_reassignments(partitions));
            }
            Command::AlterPartition { request, reply } => {
                self.alter_partition(request, reply).await?;
            }
            Command::ElectLeaders {
                unclean,
                partitions,
                reply,
            } => {
                let result = self.elect_leaders(unclean, partitions).await?;
                let _ = reply.send(result);
            }
        }
        Ok(())
    }

    /// Kafka's `onControllerFailover`: read everything, tell every broker the cluster state,
    /// then bring offline and new partitions online.
    async fn failover(&mut self) -> Result<(), Stop> {
        // Each phase's duration is logged: a failover's length is what operators measure.
        let started = std::time::Instant::now();
        let phase = |name: &str| {
            tracing::info!(
                phase = name,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "controller failover"
            )
        };
        let store = self.store.clone();
        store.watch_node(znodes::CONTROLLER).await?;
        store.watch_children(znodes::BROKER_IDS).await?;
        store.watch_children(znodes::TOPICS).await?;
        store.watch_children(znodes::DELETE_TOPICS).await?;
        store
            .watch_children(znodes::ISR_CHANGE_NOTIFICATION)
            .await?;
        store.watch_children(znodes::CONFIG_CHANGES).await?;
        store
            .watch_children(znodes::LOG_DIR_EVENT_NOTIFICATION)
            .await?;
        store.watch_node(znodes::REASSIGN_PARTITIONS).await?;
        store.watch_node(znodes::PREFERRED_REPLICA_ELECTION).await?;
        // Every partition state is read below: older ISR change notifications say nothing new.
        self.delete_isr_change_notifications(None).await?;
        self.brokers = self.read_brokers().await?;
        for (id, b) in &self.brokers {
            if let Some(addr) = broker_address(b, &self.config.inter_broker_listener) {
                self.channels.add(*id, addr);
            }
        }
        let topics = store.children(znodes::TOPICS).await?.unwrap_or_default();
        phase("watches set, brokers read");
        self.load_topics(&topics).await?;
        phase("topics and partition states read");
        // Kafka sends UpdateMetadata first; here LeaderAndIsr goes first, so that a broker
        // whose metadata names it leader has already taken the role (a starting broker opens
        // its listener once its metadata arrives).
        let live: Vec<i32> = self.brokers.keys().copied().collect();
        let hosted: Vec<Tp> = self.states.keys().cloned().collect();
        self.send_leader_and_isr(&hosted, None);
        self.send_update_metadata(None, &live);
        phase("LeaderAndIsr and UpdateMetadata queued");
        // Replicas on brokers that died while no controller was watching (this one's
        // predecessor, say) go offline now, as Kafka's replica state machine does at start-up.
        let dead: BTreeSet<i32> = self
            .states
            .values()
            .flat_map(|s| s.isr.iter().copied().chain(std::iter::once(s.leader)))
            .filter(|b| *b >= 0 && !self.brokers.contains_key(b))
            .collect();
        if !dead.is_empty() {
            let dead: Vec<i32> = dead.into_iter().collect();
            self.on_brokers_failed(&dead).await?;
            phase("dead brokers' replicas offline");
        }
        let all: Vec<Tp> = self.all_partitions();
        self.bring_online(all).await?;
        phase("partitions online");
        // Reassignments through `/admin/reassign_partitions` supplant those in progress; the
        // others resume where the previous controller left them.
        let resumed = self.on_zk_reassignment().await?;
        self.resume_reassignments(&resumed).await?;
        self.on_zk_preferred_election().await?;
        self.on_delete_topics().await?;
        self.on_log_dir_events().await?;
        tracing::info!(
            controller_epoch = self.epoch,
            brokers = ?live,
            topics = self.topics.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "controller failover done"
        );
        Ok(())
    }

    fn all_partitions(&self) -> Vec<Tp> {
        self.topics
            .iter()
            .flat_map(|(t, s)| s.assignment.keys().map(move |p| (t.clone(), *p)))
            .collect()
    }

    async fn check_still_controller(&mut self) -> Result<(), Stop> {
        let me = self.config.broker_id;
        match self.store.get(znodes::CONTROLLER).await? {
            Some((Some(d), _)) => {
                match znodes::decode::<znodes::ControllerZnode>(znodes::CONTROLLER, &d) {
                    Ok(c) if c.brokerid == me => Ok(()),
                    Ok(c) => Err(Stop::Resigned(format!(
                        "broker {} is controller now",
                        c.brokerid
                    ))),
                    Err(e) => Err(Stop::Resigned(e.to_string())),
                }
            }
            _ => Err(Stop::Resigned("/controller is gone".into())),
        }
    }

    /// Kafka fences every controller write with a check of `/controller_epoch`'s version in the
    /// same ZooKeeper multi. zookeeper-async has no multi, so the check comes just before the
    /// write: a newer controller is still noticed, with a window of one round trip.
    async fn fence(&self) -> Result<(), Stop> {
        match self.store.get(znodes::CONTROLLER_EPOCH).await? {
            Some((_, stat)) if stat.version == self.epoch_zk_version => Ok(()),
            _ => Err(Stop::Resigned("controller epoch moved on".into())),
        }
    }

    /// Reads a topic's assignment and partition states into the context, giving it a topic id
    /// if it has none (topics written by Kafka before 2.8 or by old tools).
    async fn load_topic(&mut self, topic: &str) -> Result<(), Stop> {
        self.load_topics(&[topic.to_string()]).await
    }

    /// `load_topic` for many topics, with the reads of all their znodes pipelined: a new
    /// controller reads every topic, and one round trip per topic (300 topics) cost seconds.
    async fn load_topics(&mut self, topics: &[String]) -> Result<(), Stop> {
        let reads: Vec<_> = topics
            .iter()
            .map(|topic| {
                let store = self.store.clone();
                let path = znodes::topic_path(topic);
                async move {
                    store.watch_node(&path).await?;
                    Ok::<_, Stop>(store.get(&path).await?)
                }
            })
            .collect();
        let started = std::time::Instant::now();
        let found: Vec<_> = pipelined(reads).try_collect().await?;
        if topics.len() > 1 {
            tracing::info!(
                topics = topics.len(),
                elapsed_ms = started.elapsed().as_millis() as u64,
                "topic znodes read and watched"
            );
        }
        let mut loaded = Vec::new();
        for (topic, found) in topics.iter().zip(found) {
            if let Some((Some(data), stat)) = found
                && let Some(state) = self.decode_topic(topic, &data, stat.version).await?
            {
                loaded.push((topic.clone(), state));
            }
        }
        let tps: Vec<Tp> = loaded
            .iter()
            .flat_map(|(t, s)| s.assignment.keys().map(move |p| (t.clone(), *p)))
            .collect();
        for (tp, s) in tps.iter().zip(self.read_states(&tps).await?) {
            if let Some(s) = s {
                self.states.insert(tp.clone(), s);
            }
        }
        for (topic, state) in loaded {
            for p in state.adding.keys().chain(state.removing.keys()) {
                // Kafka's PartitionReassignmentIsrChangeHandler: the leader's ISR writes tell
                // when the new replicas have caught up.
                self.store
                    .watch_node(&znodes::partition_state_path(&topic, *p))
                    .await?;
            }
            self.topics.insert(topic, state);
        }
        Ok(())
    }

    /// A topic znode as the controller's state, giving the topic an id if it has none; `None`
    /// for one that cannot be read or was rewritten meanwhile (its watch brings it back).
    async fn decode_topic(
        &mut self,
        topic: &str,
        data: &[u8],
        version: i32,
    ) -> Result<Option<TopicState>, Stop> {
        let path = znodes::topic_path(topic);
        let z: TopicZnode = match znodes::decode(&path, data) {
            Ok(z) => z,
            Err(e) => {
                tracing::error!(topic, error = %e, "skipping topic with unreadable assignment");
                return Ok(None);
            }
        };
        let id = match z.topic_id.as_deref().and_then(znodes::parse_uuid_base64) {
            Some(id) => id,
            // Below IBP 2.8 topics keep no id, as Kafka's controller leaves them.
            None if !self.config.inter_broker_protocol_version.topic_ids() => uuid::Uuid::nil(),
            None => {
                let (id, text) = znodes::random_uuid_base64();
                let mut with_id = z.clone();
                with_id.version = 3;
                with_id.topic_id = Some(text);
                self.fence().await?;
                match self
                    .store
                    .set(&path, Some(znodes::encode(&with_id)), Some(version))
                    .await
                {
                    Ok(_) => {}
                    // Someone rewrote the assignment meanwhile: its watch brings it back.
                    Err(StoreError::BadVersion(_)) => return Ok(None),
                    Err(e) => return Err(e.into()),
                }
                id
            }
        };
        let assignment = z.assignment();
        let by_partition = |m: &BTreeMap<String, Vec<i32>>| -> BTreeMap<i32, Vec<i32>> {
            m.iter()
                .filter(|(_, r)| !r.is_empty())
                .filter_map(|(k, v)| k.parse().ok().map(|p| (p, v.clone())))
                .collect()
        };
        Ok(Some(TopicState {
            id,
            assignment,
            adding: by_partition(&z.adding_replicas),
            removing: by_partition(&z.removing_replicas),
        }))
    }

    async fn read_state(&self, topic: &str, p: i32) -> Result<Option<PartitionState>, Stop> {
        read_state(self.store.clone(), topic.to_string(), p).await
    }

    /// `read_state` for many partitions, the reads pipelined; in the order of `tps`.
    async fn read_states(&self, tps: &[Tp]) -> Result<Vec<Option<PartitionState>>, Stop> {
        let reads: Vec<_> = tps
            .iter()
            .map(|tp| read_state(self.store.clone(), tp.0.clone(), tp.1))
            .collect();
        pipelined(reads).try_collect().await
    }

    /// Re-reads partitions' states into the context.
    async fn refresh_states(&mut self, tps: &[Tp]) -> Result<(), Stop> {
        for (tp, fresh) in tps.iter().zip(self.read_states(tps).await?) {
            if let Some(fresh) = fresh {
                self.states.insert(tp.clone(), fresh);
            }
        }
        Ok(())
    }

    /// Re-reads a partition's state into the context; true when it had changed.
    async fn refresh_state(&mut self, tp: &Tp) -> Result<bool, Stop> {
        let Some(fresh) = self.read_state(&tp.0, tp.1).await? else {
            return Ok(false);
        };
        let changed = self
            .states
            .get(tp)
            .is_none_or(|s| s.zk_version != fresh.zk_version);
        self.states.insert(tp.clone(), fresh);
        Ok(changed)
    }

    /// Writes a partition's new leader and ISR (see `write_states`). Returns false when the
    /// write lost a race.
    async fn write_state(
        &mut self,
        tp: &Tp,
        leader: i32,
        leader_epoch: i32,
        isr: Vec<i32>,
    ) -> Result<bool, Stop> {
        let decision = Decision {
            tp: tp.clone(),
            leader,
            leader_epoch,
            isr,
        };
        let won = self.write_states(std::slice::from_ref(&decision)).await?;
        Ok(won.first().copied().unwrap_or(false))
    }

    /// Writes partitions' new leaders and ISRs: created when new, else conditional on the
    /// partition epoch the controller knows. The writes are pipelined (Kafka's controller sends
    /// them as one batch of asynchronous requests too). For each decision, in order: false when
    /// its write lost a race (the state was re-read into the context, to be decided again).
    async fn write_states(&mut self, decisions: &[Decision]) -> Result<Vec<bool>, Stop> {
        let store = self.store.clone();
        // The parents of new state znodes (`.../partitions/<p>`) are made first, so that each
        // state is then one create rather than a walk down the tree.
        let new: Vec<&Tp> = decisions
            .iter()
            .map(|d| &d.tp)
            .filter(|tp| !self.states.contains_key(*tp))
            .collect();
        if !new.is_empty() {
            self.fence().await?;
            let topics: BTreeSet<&str> = new.iter().map(|tp| tp.0.as_str()).collect();
            let parents: Vec<_> = topics
                .into_iter()
                .map(|t| {
                    let path = format!("{}/partitions", znodes::topic_path(t));
                    let store = store.clone();
                    async move { ensure_path(store.as_ref(), &path).await }
                })
                .collect();
            pipelined(parents).try_collect::<Vec<()>>().await?;
            let parents: Vec<_> = new
                .into_iter()
                .map(|tp| {
                    let path = format!("{}/partitions/{}", znodes::topic_path(&tp.0), tp.1);
                    let store = store.clone();
                    async move {
                        match store.create(&path, None, CreateMode::Persistent).await {
                            Ok(_) | Err(StoreError::NodeExists(_)) => Ok(()),
                            Err(e) => Err(e),
                        }
                    }
                })
                .collect();
            pipelined(parents).try_collect::<Vec<()>>().await?;
        }
        let mut won = Vec::with_capacity(decisions.len());
        for chunk in decisions.chunks(WRITES_PER_FENCE) {
            // Kafka fences every write with a check of `/controller_epoch`'s version in the
            // same multi; without multi the check comes before each chunk of writes.
            self.fence().await?;
            let epoch = self.epoch;
            let writes: Vec<_> = chunk
                .iter()
                .map(|d| {
                    let known_version = self.states.get(&d.tp).map(|s| s.zk_version);
                    let z = PartitionStateZnode {
                        controller_epoch: epoch,
                        leader: d.leader,
                        version: 1,
                        leader_epoch: d.leader_epoch,
                        isr: d.isr.clone(),
                        leader_recovery_state: None,
                    };
                    let path = znodes::partition_state_path(&d.tp.0, d.tp.1);
                    let store = store.clone();
                    async move {
                        let data = Some(znodes::encode(&z));
                        match known_version {
                            Some(v) => store
                                .set(&path, data, Some(v))
                                .await
                                .map(|stat| stat.version),
                            None => create_recursive(
                                store.as_ref(),
                                &path,
                                data,
                                CreateMode::Persistent,
                            )
                            .await
                            .map(|_| 0),
                        }
                    }
                })
                .collect();
            let results: Vec<StoreResult<i32>> = pipelined(writes).collect().await;
            for (d, result) in chunk.iter().zip(results) {
                won.push(self.record_write(d, result).await?);
            }
        }
        Ok(won)
    }

    /// Takes a partition state write's outcome into the context.
    async fn record_write(&mut self, d: &Decision, result: StoreResult<i32>) -> Result<bool, Stop> {
        match result {
            Ok(zk_version) => {
                self.states.insert(
                    d.tp.clone(),
                    PartitionState {
                        leader: d.leader,
                        leader_epoch: d.leader_epoch,
                        isr: d.isr.clone(),
                        controller_epoch: self.epoch,
                        zk_version,
                    },
                );
                Ok(true)
            }
            Err(StoreError::BadVersion(_)) | Err(StoreError::NodeExists(_)) => {
                match self.read_state(&d.tp.0, d.tp.1).await? {
                    Some(s) if s.controller_epoch > self.epoch => Err(Stop::Resigned(
                        "a newer controller wrote a partition state".into(),
                    )),
                    Some(s) => {
                        self.states.insert(d.tp.clone(), s);
                        Ok(false)
                    }
                    None => Ok(false),
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Writes the leader and ISR `decide` picks from the partition's current state, with the
    /// leader epoch bumped; decided again on the fresh state when a leader's own ISR write got
    /// there first. False when `decide` finds nothing to do or the writes keep losing.
    async fn change_leadership(
        &mut self,
        tp: &Tp,
        decide: impl Fn(&Self, &PartitionState) -> Option<(i32, Vec<i32>)>,
    ) -> Result<bool, Stop> {
        let mut refreshed = false;
        for _attempt in 0..5 {
            let Some(s) = self.states.get(tp).cloned() else {
                return Ok(false);
            };
            let Some((leader, isr)) = decide(self, &s) else {
                // Only a write finds a stale cache out, so "nothing to do" is checked against
                // the znode once: a leader's own ISR expansion reaches the controller seconds
                // later (the notifications linger), and the broker it added may be the one
                // leaving now.
                if !refreshed && self.refresh_state(tp).await? {
                    refreshed = true;
                    continue;
                }
                return Ok(false);
            };
            if self
                .write_state(tp, leader, s.leader_epoch + 1, isr)
                .await?
            {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Kafka's partition state machine, to OnlinePartition: new partitions get the first live
    /// replica as leader and all live replicas as ISR; partitions whose leader is gone elect the
    /// first live replica of the assignment that is in the ISR (or, with
    /// `unclean.leader.election.enable`, any live replica). Then LeaderAndIsr to the replicas and
    /// UpdateMetadata to every broker.
    async fn bring_online(&mut self, partitions: Vec<Tp>) -> Result<(), Stop> {
        let mut changed = Vec::new();
        let mut pending = partitions;
        // A write that lost a race is decided again on the state it lost to.
        for _attempt in 0..3 {
            let mut decisions = Vec::new();
            for tp in std::mem::take(&mut pending) {
                let Some(replicas) = self.replicas(&tp) else {
                    continue;
                };
                let live: Vec<i32> = replicas
                    .iter()
                    .copied()
                    .filter(|r| self.is_live(*r))
                    .collect();
                let decided = match self.states.get(&tp).cloned() {
                    None => live.first().map(|&leader| (leader, 0, live.clone())),
                    Some(s) if s.leader >= 0 && self.brokers.contains_key(&s.leader) => None,
                    Some(s) => self
                        .elect(&tp, &replicas, &s, false)
                        .await?
                        .map(|(leader, isr)| (leader, s.leader_epoch + 1, isr)),
                };
                if let Some((leader, leader_epoch, isr)) = decided {
                    decisions.push(Decision {
                        tp,
                        leader,
                        leader_epoch,
                        isr,
                    });
                }
            }
            if decisions.is_empty() {
                break;
            }
            let won = self.write_states(&decisions).await?;
            for (d, won) in decisions.into_iter().zip(won) {
                if won {
                    tracing::info!(
                        topic = d.tp.0,
                        partition = d.tp.1,
                        leader = d.leader,
                        leader_epoch = d.leader_epoch,
                        "elected leader"
                    );
                    changed.push(d.tp);
                } else {
                    pending.push(d.tp);
                }
            }
        }
        self.announce(&changed);
        Ok(())
    }

    /// Offline election: first assigned replica that is live and in the ISR; failing that, with
    /// `unclean.leader.election.enable` (the topic's, else the broker's) or when an admin asked
    /// for it (`force_unclean`), the first live replica, alone in the ISR.
    async fn elect(
        &self,
        tp: &Tp,
        replicas: &[i32],
        s: &PartitionState,
        force_unclean: bool,
    ) -> Result<Option<(i32, Vec<i32>)>, Stop> {
        let live = |r: &i32| self.is_live(*r);
        if let Some(&leader) = replicas.iter().find(|r| live(r) && s.isr.contains(r)) {
            let isr: Vec<i32> = s.isr.iter().copied().filter(live).collect();
            return Ok(Some((leader, isr)));
        }
        let Some(&leader) = replicas.iter().find(|r| live(r)) else {
            return Ok(None);
        };
        if !force_unclean && !self.unclean_election_enabled(&tp.0).await? {
            return Ok(None);
        }
        tracing::warn!(
            topic = tp.0,
            partition = tp.1,
            leader,
            "unclean leader election: records may be lost"
        );
        Ok(Some((leader, vec![leader])))
    }

    /// `unclean.leader.election.enable` for a topic: its override in `/config/topics/<topic>`,
    /// else this broker's dynamic config (`/config/brokers/<id>`, then `<default>`), else the
    /// static one. Read when needed, as Kafka's controller does: a partition without a live
    /// in-sync replica is rare, and a stale copy would be wrong exactly then.
    async fn unclean_election_enabled(&self, topic: &str) -> Result<bool, Stop> {
        const KEY: &str = "unclean.leader.election.enable";
        let layers = [
            znodes::topic_config_path(topic),
            znodes::entity_config_path("brokers", &self.config.broker_id.to_string()),
            znodes::entity_config_path("brokers", znodes::DEFAULT_ENTITY),
        ];
        for path in layers {
            let Some((Some(d), _)) = self.store.get(&path).await? else {
                continue;
            };
            match znodes::decode::<znodes::ConfigZnode>(&path, &d) {
                Ok(c) => {
                    if let Some(v) = c.config.get(KEY) {
                        return Ok(v.trim().eq_ignore_ascii_case("true"));
                    }
                }
                Err(e) => {
                    tracing::error!(path, error = %e, "unreadable config; {KEY} not taken from it")
                }
            }
        }
        Ok(self.config.unclean_leader_election_enable)
    }

    /// Eligible as leader or ISR member: registered and not shutting down.
    fn is_live(&self, broker: i32) -> bool {
        self.brokers.contains_key(&broker) && !self.shutting_down.contains(&broker)
    }

    fn is_reassigning(&self, tp: &Tp) -> bool {
        self.topics
            .get(&tp.0)
            .is_some_and(|t| t.adding.contains_key(&tp.1) || t.removing.contains_key(&tp.1))
    }

    fn replicas(&self, tp: &Tp) -> Option<Vec<i32>> {
        self.topics.get(&tp.0)?.assignment.get(&tp.1).cloned()
    }

    /// LeaderAndIsr to the live replicas of `changed`, then UpdateMetadata to every broker.
    fn announce(&mut self, changed: &[Tp]) {
        if changed.is_empty() {
            return;
        }
        self.send_leader_and_isr(changed, None);
        let live: Vec<i32> = self.brokers.keys().copied().collect();
        self.send_update_metadata(Some(changed), &live);
    }

    async fn on_topic_change(&mut self) -> Result<(), Stop> {
        let now: BTreeSet<String> = self
            .store
            .children(znodes::TOPICS)
            .await?
            .unwrap_or_default()
            .into_iter()
            .collect();
        let added: Vec<String> = now
            .iter()
            .filter(|t| !self.topics.contains_key(*t))
            .cloned()
            .collect();
        let removed: Vec<String> = self
            .topics
            .keys()
            .filter(|t| !now.contains(*t))
            .cloned()
            .collect();
        for t in removed {
            self.forget_topic(&t);
        }
        for t in &added {
            self.load_topic(t).await?;
            tracing::info!(topic = t, "new topic");
        }
        let partitions: Vec<Tp> = self
            .all_partitions()
            .into_iter()
            .filter(|(t, _)| added.contains(t))
            .collect();
        // Partitions that already have a state (a topic adopted from another cluster) are
        // announced as they are; the others are elected.
        let existing: Vec<Tp> = partitions
            .iter()
            .filter(|tp| self.states.contains_key(*tp))
            .cloned()
            .collect();
        self.announce(&existing);
        self.bring_online(partitions).await
    }

    /// Partitions added to a topic (CreatePartitions, or a tool rewriting the assignment).
    async fn on_assignment_change(&mut self, topic: &str) -> Result<(), Stop> {
        let before: BTreeSet<i32> = self
            .topics
            .get(topic)
            .map(|t| t.assignment.keys().copied().collect())
            .unwrap_or_default();
        self.load_topic(topic).await?;
        let added: Vec<Tp> = self
            .topics
            .get(topic)
            .map(|t| {
                t.assignment
                    .keys()
                    .filter(|p| !before.contains(p))
                    .map(|p| (topic.to_string(), *p))
                    .collect()
            })
            .unwrap_or_default();
        if !added.is_empty() {
            tracing::info!(topic, partitions = added.len(), "partitions added");
        }
        self.bring_online(added).await
    }
}

/// Runs `calls` with up to `IN_FLIGHT` of them at once, answers in the order of `calls`. The
/// calls own what they use, so that the controller's task stays `Send`.
fn pipelined<F: std::future::Future>(calls: Vec<F>) -> impl futures::Stream<Item = F::Output> {
    stream::iter(calls).buffered(IN_FLIGHT)
}

async fn read_state(
    store: Arc<dyn MetadataStore>,
    topic: String,
    p: i32,
) -> Result<Option<PartitionState>, Stop> {
    let path = znodes::partition_state_path(&topic, p);
    Ok(match store.get(&path).await? {
        Some((Some(d), stat)) => match znodes::decode::<PartitionStateZnode>(&path, &d) {
            Ok(z) => Some(PartitionState {
                leader: z.leader,
                leader_epoch: z.leader_epoch,
                isr: z.isr,
                controller_epoch: z.controller_epoch,
                zk_version: stat.version,
            }),
            Err(e) => {
                tracing::error!(topic, partition = p, error = %e, "unreadable partition state");
                None
            }
        },
        _ => None,
    })
}

/// `<topic>/partitions/<p>/state` (below `/brokers/topics/`) as a topic partition.
fn parse_state_path(rest: &str) -> Option<Tp> {
    let (topic, tail) = rest.split_once("/partitions/")?;
    let partition = tail.strip_suffix("/state")?.parse().ok()?;
    Some((topic.to_string(), partition))
}
