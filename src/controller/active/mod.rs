//! The active controller: the one broker that won `/controller`. It keeps the cluster's state
//! (live brokers, assignments, partition leaders and ISR) in memory, reacts to changes in
//! ZooKeeper, writes partition states, and tells brokers what to do. Everything runs on one
//! task, one event at a time, as Kafka's controller event thread does, so no decision races
//! another: ZooKeeper watches, requests forwarded by this broker's API (controlled shutdown,
//! reassignments, elections) and the leader-imbalance timer all queue on it.
//!
//! This file holds the state, the event loop and partition state changes; the children add
//! to the same `ActiveController`: `topics` (topics created and growing), `brokers` (brokers
//! joining and failing), `deletion` (topic deletion), `partition_states` (the state znodes read
//! and written), `requests` (what is sent to brokers), `election`, `isr_change`, `reassign` and
//! `shutdown` (controlled shutdown), `alter_partition` (leaders' ISR changes at IBP 2.7+).

pub mod alter_partition;
mod brokers;
mod deletion;
mod election;
mod isr_change;
mod log_dirs;
mod partition_states;
mod reassign;
mod requests;
mod shutdown;
mod topics;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{broadcast, mpsc, watch};

use super::Command;
use super::channel::BrokerChannels;
use crate::config::BrokerConfig;
use crate::metadata::MetadataStore;
use crate::metadata::store::{StoreError, WatchEvent};
use crate::metadata::znodes;
use brokers::broker_address;

/// Leader and epoch that tell brokers a topic is being deleted.
const LEADER_DURING_DELETE: i32 = -2;
const EPOCH_DURING_DELETE: i32 = -2;
const NO_LEADER: i32 = -1;
/// Sessions besides its own a new controller reads and writes partition states through (see
/// `failover`).
const EXTRA_SESSIONS: usize = 3;
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
    /// Extra sessions on the store, open during failover only (see `failover`).
    helpers: Vec<Arc<dyn MetadataStore>>,
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
            helpers: Vec::new(),
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
        let loaded = self.read_topics(&topics).await?;
        self.add_topics(loaded).await?;
        phase("topics read");
        // Unlike Kafka, which reads every partition state before its first UpdateMetadata, the
        // partitions with a replica on a broker that is gone come first: their clients are the
        // ones waiting (the others' leaders still serve), and with 30,000 partitions reading
        // the rest took longer than deciding these. Each decision is still made on a state
        // read in this controller epoch, and written conditionally and fenced.
        let (on_dead, rest): (Vec<Tp>, Vec<Tp>) =
            self.all_partitions().into_iter().partition(|tp| {
                self.replicas(tp)
                    .is_some_and(|r| r.iter().any(|b| !self.brokers.contains_key(b)))
            });
        // One ZooKeeper session's requests are answered one after another; with 30,000
        // partitions that took seconds, so reads and conditional writes are spread over
        // sessions opened now, after the election: each sees every write made before it.
        self.helpers = store.more_sessions(EXTRA_SESSIONS).await?;
        phase("extra sessions opened");
        self.refresh_states(&on_dead).await?;
        phase("dead brokers' partition states read");
        // Replicas on brokers that died while no controller was watching (this one's
        // predecessor, say) go offline now, as Kafka's replica state machine does at start-up.
        self.take_unregistered_offline(on_dead).await?;
        phase("dead brokers' replicas offline");
        self.refresh_states(&rest).await?;
        phase("other partition states read");
        // Kafka sends UpdateMetadata first; here LeaderAndIsr goes first, so that a broker
        // whose metadata names it leader has already taken the role (a starting broker opens
        // its listener once its metadata arrives).
        let live: Vec<i32> = self.brokers.keys().copied().collect();
        let hosted: Vec<Tp> = self.states.keys().cloned().collect();
        self.send_leader_and_isr(&hosted, None);
        self.send_update_metadata(None, &live);
        phase("LeaderAndIsr and UpdateMetadata queued");
        // A leader or ISR member outside the assignment (written by hand, say) that is gone.
        self.take_unregistered_offline(rest).await?;
        let all: Vec<Tp> = self.all_partitions();
        self.bring_online(all).await?;
        // Closes the extra sessions: from here on, one session keeps the controller's reads
        // and writes in order.
        self.helpers.clear();
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

    /// The OfflineReplica transition, at failover, for the replicas of `partitions` (states
    /// just read) on brokers that are not registered; nothing is sent when none is.
    async fn take_unregistered_offline(&mut self, partitions: Vec<Tp>) -> Result<(), Stop> {
        let gone: BTreeSet<i32> = partitions
            .iter()
            .filter_map(|tp| self.states.get(tp))
            .flat_map(|s| s.isr.iter().copied().chain(std::iter::once(s.leader)))
            .filter(|b| *b >= 0 && !self.brokers.contains_key(b))
            .collect();
        if gone.is_empty() {
            return Ok(());
        }
        self.take_replicas_offline(partitions, move |_, b| gone.contains(&b))
            .await
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
}

/// `<topic>/partitions/<p>/state` (below `/brokers/topics/`) as a topic partition.
fn parse_state_path(rest: &str) -> Option<Tp> {
    let (topic, tail) = rest.split_once("/partitions/")?;
    let partition = tail.strip_suffix("/state")?.parse().ok()?;
    Some((topic.to_string(), partition))
}
