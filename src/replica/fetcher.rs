//! Follower fetchers (Kafka's `ReplicaFetcherThread`): one fetch loop per leader broker, each
//! request carrying every partition this broker follows from that leader. A fetch names the
//! follower (`replica_id`), its log end offset and the epoch of its last batch; the leader
//! answers with data, its high watermark, or where the follower's log diverges from its own,
//! which the follower then truncates before fetching again. The Fetch and OffsetsForLeaderEpoch
//! versions are those `inter.broker.protocol.version` picks (`client::Ibp`), lowered to what
//! the leader answers: below Fetch v12 the log is first truncated by OffsetsForLeaderEpoch.
//!
//! Like Kafka's `FetchSessionHandler`, each loop keeps a KIP-227 fetch session with its leader:
//! after one full fetch, requests name only partitions whose fetch state changed (and those
//! to forget), and answers hold only partitions with something new, so thousands of idle
//! partitions cost the leader and the wire nothing per fetch.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::fetch_request::{
    FetchPartition, FetchTopic, ForgottenTopic, ReplicaState,
};
use kafka_protocol::messages::fetch_response::PartitionData;
use kafka_protocol::messages::{
    ApiKey, BrokerId, FetchRequest, RequestKind, ResponseKind, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::{Partition, TopicPartition, blocking};
use crate::client::{ClientId, Connection, Ibp};
use crate::log::LogError;
use crate::protocol::fetch_metadata::{NO_SESSION, next_epoch};

/// The last Fetch version that names topics rather than topic ids: a follower that lacks the id
/// of a topic it fetches (a topic created below IBP 2.8) fetches with it at most, as Kafka's
/// does (`canUseTopicIds`).
const FOLLOWER_FETCH_VERSION_BY_NAME: i16 = 12;
/// The first Fetch version with `last_fetched_epoch` and `diverging_epoch` (KIP-595's
/// truncation without OffsetsForLeaderEpoch).
const FETCH_WITH_DIVERGING_EPOCH: i16 = 12;
/// How long a connection attempt or a request (beyond the fetch's own wait) may take; Kafka's
/// `replica.socket.timeout.ms` default.
const SOCKET_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone)]
pub struct FetcherConfig {
    pub max_wait_ms: i32,
    pub min_bytes: i32,
    pub max_bytes: i32,
    pub partition_max_bytes: i32,
    pub backoff: Duration,
    /// How to reach leaders: the inter-broker listener's TLS and SASL.
    pub security: crate::config::security::InterBrokerSecurity,
    /// `inter.broker.protocol.version`: the Fetch and OffsetsForLeaderEpoch versions, and
    /// whether the log is truncated by OffsetsForLeaderEpoch before fetching.
    pub ibp: Ibp,
}

impl Default for FetcherConfig {
    fn default() -> Self {
        FetcherConfig::from_broker(&crate::config::BrokerConfig::default())
    }
}

impl FetcherConfig {
    pub fn from_broker(c: &crate::config::BrokerConfig) -> Self {
        FetcherConfig {
            max_wait_ms: i32::try_from(c.replica_fetch_wait_max_ms).unwrap_or(i32::MAX),
            min_bytes: c.replica_fetch_min_bytes,
            max_bytes: c.replica_fetch_response_max_bytes,
            partition_max_bytes: c.replica_fetch_max_bytes,
            backoff: Duration::from_millis(c.replica_fetch_backoff_ms),
            security: c.inter_broker_security.clone(),
            ibp: c.inter_broker_protocol_version,
        }
    }
}

struct Target {
    partition: Arc<Partition>,
    /// The leader epoch this broker follows in; the leader fences fetches of other epochs.
    leader_epoch: i32,
    /// The topic's id from LeaderAndIsr; nil when the controller gave none.
    topic_id: uuid::Uuid,
    /// After an error, the partition waits until then.
    retry_at: Option<Instant>,
    /// With a leader that predates `last_fetched_epoch` (Fetch < v12), the log is first
    /// truncated by OffsetsForLeaderEpoch; this says that was done.
    epochs_checked: bool,
}

impl Target {
    /// Whether this is still the state a request was made for: `follow` may replace a
    /// partition's target (a new leader epoch) while its answer is on the way, and the answer
    /// must not be taken for the new one.
    fn is(&self, partition: &Arc<Partition>, leader_epoch: i32) -> bool {
        Arc::ptr_eq(&self.partition, partition) && self.leader_epoch == leader_epoch
    }
}

struct Shared {
    partitions: Mutex<HashMap<TopicPartition, Target>>,
    changed: Notify,
    /// Held while a response is applied to the logs: removing a partition takes it, so that
    /// once removed no fetched data reaches the log (the broker may be its leader next).
    applying: tokio::sync::Mutex<()>,
}

impl Shared {
    fn parts(&self) -> std::sync::MutexGuard<'_, HashMap<TopicPartition, Target>> {
        self.partitions.lock().unwrap_or_else(|p| p.into_inner())
    }
}

struct LeaderFetcher {
    addr: String,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl LeaderFetcher {
    async fn stop(self) {
        let _applying = self.shared.applying.lock().await;
        self.task.abort();
    }
}

pub struct ReplicaFetchers {
    broker_id: i32,
    config: Mutex<FetcherConfig>,
    fetchers: tokio::sync::Mutex<HashMap<i32, LeaderFetcher>>,
}

impl ReplicaFetchers {
    pub fn new(broker_id: i32) -> Self {
        ReplicaFetchers {
            broker_id,
            config: Mutex::new(FetcherConfig::default()),
            fetchers: tokio::sync::Mutex::new(HashMap::new()),
        }
    }

    pub fn configure(&self, config: FetcherConfig) {
        *self.config.lock().unwrap_or_else(|p| p.into_inner()) = config;
    }

    /// Fetches `p` (of topic `topic_id`, nil if unknown) from broker `leader` at `addr` from now
    /// on (and from nobody else).
    pub async fn follow(&self, p: Arc<Partition>, leader: i32, addr: String, topic_id: uuid::Uuid) {
        let tp = (p.topic.clone(), p.partition);
        let mut fetchers = self.fetchers.lock().await;
        for (id, f) in fetchers.iter() {
            if *id != leader {
                remove_from(&f.shared, std::slice::from_ref(&tp)).await;
            }
        }
        if fetchers.get(&leader).is_some_and(|f| f.addr != addr)
            && let Some(old) = fetchers.remove(&leader)
        {
            old.stop().await;
        }
        let config = self
            .config
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let me = self.broker_id;
        let f = fetchers.entry(leader).or_insert_with(|| {
            let shared = Arc::new(Shared {
                partitions: Mutex::new(HashMap::new()),
                changed: Notify::new(),
                applying: tokio::sync::Mutex::new(()),
            });
            tracing::info!(leader, addr, "starting replica fetcher");
            let task = tokio::spawn(run(shared.clone(), me, leader, addr.clone(), config));
            LeaderFetcher { addr, shared, task }
        });
        let epoch = p.leader_epoch();
        f.shared.parts().insert(
            tp,
            Target {
                partition: p,
                leader_epoch: epoch,
                topic_id,
                retry_at: None,
                epochs_checked: false,
            },
        );
        f.shared.changed.notify_one();
        self.stop_idle(&mut fetchers).await;
    }

    /// Stops fetching these partitions; returns once no fetched data can reach their logs.
    pub async fn remove(&self, tps: &[TopicPartition]) {
        let mut fetchers = self.fetchers.lock().await;
        for f in fetchers.values() {
            remove_from(&f.shared, tps).await;
        }
        self.stop_idle(&mut fetchers).await;
    }

    async fn stop_idle(&self, fetchers: &mut HashMap<i32, LeaderFetcher>) {
        let idle: Vec<i32> = fetchers
            .iter()
            .filter(|(_, f)| f.shared.parts().is_empty())
            .map(|(id, _)| *id)
            .collect();
        for id in idle {
            if let Some(f) = fetchers.remove(&id) {
                tracing::info!(leader = id, "stopping idle replica fetcher");
                f.stop().await;
            }
        }
    }

    pub async fn shutdown(&self) {
        let mut fetchers = self.fetchers.lock().await;
        for (_, f) in fetchers.drain() {
            f.stop().await;
        }
    }
}

async fn remove_from(shared: &Shared, tps: &[TopicPartition]) {
    let present = {
        let parts = shared.parts();
        tps.iter().any(|tp| parts.contains_key(tp))
    };
    if !present {
        return;
    }
    let _applying = shared.applying.lock().await;
    let mut parts = shared.parts();
    for tp in tps {
        parts.remove(tp);
    }
}

/// Where a follower's log stands, for its next fetch.
struct Position {
    fetch_offset: i64,
    log_start_offset: i64,
    last_fetched_epoch: i32,
}

/// What the leader's fetch session holds for one partition: when any of it changes, the
/// partition is named again (Kafka's `FetchRequest.PartitionData` equality).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct SentState {
    fetch_offset: i64,
    log_start_offset: i64,
    last_fetched_epoch: i32,
    current_leader_epoch: i32,
    max_bytes: i32,
}

/// The follower's side of a fetch session with one leader (Kafka's `FetchSessionHandler`).
struct FetchSession {
    /// `NO_SESSION` until the leader creates one.
    id: i32,
    /// The epoch of the next request: 0 is a full fetch asking for a new session (and closing
    /// `id`, if any).
    epoch: i32,
    /// The partitions the leader's session holds, as last sent.
    sent: HashMap<TopicPartition, SentState>,
}

/// What one request asks: the partitions to name, and those the session should drop.
struct SessionRequest {
    send: Vec<usize>,
    forget: Vec<TopicPartition>,
}

impl FetchSession {
    fn new() -> Self {
        FetchSession {
            id: NO_SESSION,
            epoch: 0,
            sent: HashMap::new(),
        }
    }

    /// Kafka's `FetchSessionHandler.Builder.build`: a full fetch names every partition; an
    /// incremental one those added or changed since the last request, and forgets those no
    /// longer fetched (removed, or backing off after an error).
    fn build(&mut self, next: &[(TopicPartition, SentState)]) -> SessionRequest {
        if self.epoch == 0 {
            self.sent = next.iter().cloned().collect();
            return SessionRequest {
                send: (0..next.len()).collect(),
                forget: Vec::new(),
            };
        }
        let mut send = Vec::new();
        let mut wanted: HashSet<&TopicPartition> = HashSet::with_capacity(next.len());
        for (i, (tp, state)) in next.iter().enumerate() {
            wanted.insert(tp);
            if self.sent.get(tp) != Some(state) {
                self.sent.insert(tp.clone(), *state);
                send.push(i);
            }
        }
        let forget: Vec<TopicPartition> = self
            .sent
            .keys()
            .filter(|tp| !wanted.contains(tp))
            .cloned()
            .collect();
        for tp in &forget {
            self.sent.remove(tp);
        }
        SessionRequest { send, forget }
    }

    /// Kafka's `handleResponse` for an answer without a top-level error: a session id of 0
    /// means the leader keeps none (no free slot, or a leader without sessions), so the next
    /// request is full again.
    fn answered(&mut self, full: bool, session_id: i32) {
        if session_id == NO_SESSION {
            self.id = NO_SESSION;
            self.epoch = 0;
        } else if full {
            self.id = session_id;
            self.epoch = 1;
        } else {
            self.epoch = next_epoch(self.epoch);
        }
    }

    /// A refused fetch or a failed connection: the leader's session state is unknown, so the
    /// next request is full, closing the old session (unless the leader no longer knows it).
    fn reset(&mut self, error: i16) {
        if error == ResponseError::FetchSessionIdNotFound.code() {
            self.id = NO_SESSION;
        }
        self.epoch = 0;
    }
}

/// What applying one partition's response asks of the loop.
enum Applied {
    Done,
    /// A partition-level error: wait before fetching it again. The leader's error code, or
    /// None when our own log failed (logged where it did).
    Backoff(Option<i16>),
}

async fn run(shared: Arc<Shared>, me: i32, leader: i32, addr: String, config: FetcherConfig) {
    // One fetcher per leader, as Kafka with num.replica.fetchers=1 (which odradek ignores): every
    // fetcher is number 0.
    let client = ClientId::replica_fetcher(me, 0);
    let mut conn: Option<Connection> = None;
    let mut session = FetchSession::new();
    let mut session_by_id = false;
    let mut ids: HashMap<String, uuid::Uuid> = HashMap::new();
    loop {
        let now = Instant::now();
        let ready: Vec<(TopicPartition, Arc<Partition>, i32)> = {
            let parts = shared.parts();
            parts
                .iter()
                .filter(|(_, t)| t.retry_at.is_none_or(|at| at <= now))
                .map(|(tp, t)| (tp.clone(), t.partition.clone(), t.leader_epoch))
                .collect()
        };
        if ready.is_empty() {
            let next = shared.parts().values().filter_map(|t| t.retry_at).min();
            let changed = shared.changed.notified();
            match next {
                Some(at) => {
                    tokio::select! {
                        _ = tokio::time::sleep_until(at) => {}
                        _ = changed => {}
                    }
                }
                None => changed.await,
            }
            continue;
        }
        if conn.is_none() {
            session.reset(0);
            match tokio::time::timeout(SOCKET_TIMEOUT, config.security.connect(&addr, &client))
                .await
            {
                Ok(Ok(c)) => conn = Some(c),
                // Wrong credentials do not fix themselves: said at ERROR on every attempt, as
                // Kafka's network client does, rather than left to debug logs.
                Ok(Err(e)) if e.is_authentication() => tracing::error!(
                    leader,
                    addr,
                    error = %e,
                    "connection to the leader failed authentication; this replica cannot fetch"
                ),
                Ok(Err(e)) => tracing::debug!(leader, addr, error = %e, "cannot reach leader"),
                Err(_) => tracing::debug!(leader, addr, "connecting to leader timed out"),
            }
        }
        let Some(c) = conn.as_mut() else {
            backoff(&shared, config.backoff).await;
            continue;
        };
        // Topic ids as LeaderAndIsr gave them, kept for partitions the session still has to
        // forget; by id only when every partition fetched now has its id.
        ids.extend(
            shared
                .parts()
                .iter()
                .map(|(tp, t)| (tp.0.clone(), t.topic_id)),
        );
        let by_id = config.ibp.fetch() > FOLLOWER_FETCH_VERSION_BY_NAME
            && ready
                .iter()
                .all(|(tp, _, _)| ids.get(&tp.0).is_some_and(|id| !id.is_nil()));
        if by_id != session_by_id {
            // A leader's session holds partitions by name or by id, not both: start anew.
            session.reset(0);
            session_by_id = by_id;
        }
        let fetch_version = if by_id {
            config.ibp.fetch()
        } else {
            config.ibp.fetch().min(FOLLOWER_FETCH_VERSION_BY_NAME)
        };
        // Kafka's `isTruncationOnFetchSupported`: below IBP 2.7 (or with a leader that cannot
        // answer v12) the log is first truncated where OffsetsForLeaderEpoch says the leader's
        // epochs end, as Kafka 2.4's followers do.
        if c.version(ApiKey::Fetch)
            .is_ok_and(|v| v.min(fetch_version) < FETCH_WITH_DIVERGING_EPOCH)
        {
            let unchecked: Vec<(TopicPartition, Arc<Partition>, i32)> = {
                let parts = shared.parts();
                ready
                    .iter()
                    .filter(|(tp, _, _)| parts.get(tp).is_some_and(|t| !t.epochs_checked))
                    .cloned()
                    .collect()
            };
            if !unchecked.is_empty() {
                if let Err(e) = truncate_by_epochs(c, me, &shared, &unchecked, &config).await {
                    tracing::info!(leader, addr, error = %e, "OffsetsForLeaderEpoch to the leader failed");
                    conn = None;
                    backoff(&shared, config.backoff).await;
                }
                continue;
            }
        }
        let parts: Vec<Arc<Partition>> = ready.iter().map(|(_, p, _)| p.clone()).collect();
        let positions = match blocking(move || {
            Ok(parts
                .iter()
                .map(|p| {
                    let log = p.log.lock();
                    Position {
                        fetch_offset: log.log_end_offset(),
                        log_start_offset: log.log_start_offset(),
                        last_fetched_epoch: log.latest_epoch().unwrap_or(-1),
                    }
                })
                .collect::<Vec<_>>())
        })
        .await
        {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(leader, error = %e, "cannot read follower positions");
                tokio::time::sleep(config.backoff).await;
                continue;
            }
        };
        let request = fetch_request(me, &config, &mut session, &ready, &positions, &ids);
        let full = session.epoch == 0;
        let wait = Duration::from_millis(config.max_wait_ms.max(0) as u64) + SOCKET_TIMEOUT;
        let response = match tokio::time::timeout(
            wait,
            c.call_upto(ApiKey::Fetch, fetch_version, RequestKind::Fetch(request)),
        )
        .await
        {
            Ok(Ok(ResponseKind::Fetch(r))) => r,
            Ok(Ok(_)) => {
                conn = None;
                continue;
            }
            Ok(Err(e)) => {
                tracing::info!(leader, addr, error = %e, "fetch from leader failed");
                conn = None;
                backoff(&shared, config.backoff).await;
                continue;
            }
            Err(_) => {
                tracing::info!(leader, addr, "fetch from leader timed out");
                conn = None;
                continue;
            }
        };
        if response.error_code != 0 {
            tracing::info!(
                leader,
                error = response.error_code,
                session_id = session.id,
                session_epoch = session.epoch,
                "leader refused the fetch"
            );
            session.reset(response.error_code);
            backoff(&shared, config.backoff).await;
            continue;
        }
        session.answered(full, response.session_id);
        // Responses are matched to what was asked by name and partition; a partition missing
        // from an incremental answer has nothing new.
        let mut answers: HashMap<TopicPartition, PartitionData> = HashMap::new();
        let names: HashMap<uuid::Uuid, &String> = ids.iter().map(|(n, id)| (*id, n)).collect();
        for t in response.responses {
            // From v13 on, answers name the topic by id only.
            let topic = match names.get(&t.topic_id) {
                Some(name) if t.topic.0.is_empty() => (*name).clone(),
                _ => t.topic.0.to_string(),
            };
            for pd in t.partitions {
                answers.insert((topic.clone(), pd.partition_index), pd);
            }
        }
        let applying = shared.applying.lock().await;
        let work: Vec<(TopicPartition, Arc<Partition>, i32, i64, PartitionData)> = {
            let parts = shared.parts();
            ready
                .iter()
                .zip(&positions)
                .filter_map(|((tp, p, epoch), pos)| {
                    // Removed or re-assigned meanwhile: the answer is for a state gone.
                    if !parts.get(tp)?.is(p, *epoch) {
                        return None;
                    }
                    let pd = answers.remove(tp)?;
                    Some((tp.clone(), p.clone(), *epoch, pos.fetch_offset, pd))
                })
                .collect()
        };
        let outcomes = blocking(move || {
            Ok(work
                .into_iter()
                .map(|(tp, p, epoch, offset, pd)| {
                    let outcome = apply(&p, offset, &pd).unwrap_or_else(|e| {
                        tracing::error!(topic = %tp.0, partition = tp.1, error = %e, "cannot apply replicated data");
                        Applied::Backoff(None)
                    });
                    (tp, p, epoch, outcome)
                })
                .collect::<Vec<_>>())
        })
        .await
        .unwrap_or_default();
        drop(applying);
        let retry_at = Instant::now() + config.backoff;
        let mut parts = shared.parts();
        for (tp, p, epoch, outcome) in outcomes {
            if let (Applied::Backoff(code), Some(t)) = (outcome, parts.get_mut(&tp))
                && t.is(&p, epoch)
            {
                tracing::debug!(topic = %tp.0, partition = tp.1, error = ?code, "follower fetch error; backing off");
                t.retry_at = Some(retry_at);
            }
        }
    }
}

async fn backoff(shared: &Shared, pause: Duration) {
    tokio::select! {
        _ = tokio::time::sleep(pause) => {}
        _ = shared.changed.notified() => {}
    }
}

/// The follower's fetch in its newest shape (`client::fit` reshapes it for the version sent).
fn fetch_request<P>(
    me: i32,
    config: &FetcherConfig,
    session: &mut FetchSession,
    ready: &[(TopicPartition, P, i32)],
    positions: &[Position],
    ids: &HashMap<String, uuid::Uuid>,
) -> FetchRequest {
    let id_of = |topic: &str| ids.get(topic).copied().unwrap_or_else(uuid::Uuid::nil);
    let next: Vec<(TopicPartition, SentState)> = ready
        .iter()
        .zip(positions)
        .map(|((tp, _, epoch), pos)| {
            let state = SentState {
                fetch_offset: pos.fetch_offset,
                log_start_offset: pos.log_start_offset,
                last_fetched_epoch: pos.last_fetched_epoch,
                current_leader_epoch: *epoch,
                max_bytes: config.partition_max_bytes,
            };
            (tp.clone(), state)
        })
        .collect();
    let asked = session.build(&next);
    let mut topics: Vec<FetchTopic> = Vec::new();
    for (tp, state) in asked.send.iter().map(|&i| &next[i]) {
        let mut fp = FetchPartition::default();
        fp.partition = tp.1;
        fp.current_leader_epoch = state.current_leader_epoch;
        fp.fetch_offset = state.fetch_offset;
        fp.last_fetched_epoch = state.last_fetched_epoch;
        fp.log_start_offset = state.log_start_offset;
        fp.partition_max_bytes = state.max_bytes;
        match topics.iter_mut().find(|t| t.topic.0.as_str() == tp.0) {
            Some(t) => t.partitions.push(fp),
            None => {
                let mut t = FetchTopic::default();
                t.topic = TopicName(StrBytes::from_string(tp.0.clone()));
                t.topic_id = id_of(&tp.0);
                t.partitions.push(fp);
                topics.push(t);
            }
        }
    }
    let mut req = FetchRequest::default();
    req.replica_id = BrokerId(me);
    let mut state = ReplicaState::default();
    state.replica_id = BrokerId(me);
    state.replica_epoch = -1;
    req.replica_state = state;
    req.max_wait_ms = config.max_wait_ms;
    req.min_bytes = config.min_bytes;
    req.max_bytes = config.max_bytes;
    req.isolation_level = 0;
    req.session_id = session.id;
    req.session_epoch = session.epoch;
    req.topics = topics;
    for (topic, partition) in asked.forget {
        match req
            .forgotten_topics_data
            .iter_mut()
            .find(|t| t.topic.0.as_str() == topic)
        {
            Some(t) => t.partitions.push(partition),
            None => {
                let mut t = ForgottenTopic::default();
                t.topic_id = id_of(&topic);
                t.topic = TopicName(StrBytes::from_string(topic));
                t.partitions.push(partition);
                req.forgotten_topics_data.push(t);
            }
        }
    }
    req
}

/// One partition's answer, applied to the follower's log (on a blocking thread).
fn apply(p: &Partition, fetch_offset: i64, pd: &PartitionData) -> Result<Applied, LogError> {
    match ResponseError::try_from_code(pd.error_code) {
        None => {}
        Some(ResponseError::OffsetOutOfRange) => {
            let mut log = p.log.lock();
            if fetch_offset < pd.log_start_offset {
                // The leader deleted what we would fetch next (retention, DeleteRecords).
                tracing::info!(topic = %p.topic, partition = p.partition, leader_log_start = pd.log_start_offset, "follower behind the leader's log start; starting over there");
                log.truncate_fully_and_start_at(pd.log_start_offset)?;
            } else {
                // Ahead of the leader with no epoch to tell where we diverge: what the leader
                // has committed is all we may keep.
                let to = pd.high_watermark.max(log.log_start_offset());
                tracing::info!(topic = %p.topic, partition = p.partition, to, "follower ahead of the leader; truncating to its high watermark");
                log.truncate_to(to)?;
            }
            return Ok(Applied::Done);
        }
        Some(e) => return Ok(Applied::Backoff(Some(e.code()))),
    }
    if pd.diverging_epoch.end_offset >= 0 || pd.diverging_epoch.epoch >= 0 {
        // Not complete: the next fetch's last_fetched_epoch asks again.
        truncate_diverging(p, pd.diverging_epoch.epoch, pd.diverging_epoch.end_offset)?;
        return Ok(Applied::Done);
    }
    if p.log.lock().log_end_offset() != fetch_offset {
        // The log changed since the request was built (truncated); fetch again from its end.
        return Ok(Applied::Done);
    }
    if let Some(records) = pd.records.as_ref().filter(|r| !r.is_empty()) {
        p.log.append_as_follower(records)?;
    }
    let mut log = p.log.lock();
    // A follower's HW: what the leader has committed, as far as this log reaches.
    let hw = pd.high_watermark.min(log.log_end_offset());
    let moved = hw > log.high_watermark();
    log.set_high_watermark(hw);
    if moved {
        // Consumers reading from this follower (KIP-392) wait for its high watermark.
        p.appended.notify_waiters();
    }
    if pd.log_start_offset > log.log_start_offset() && pd.log_start_offset <= log.high_watermark() {
        log.delete_records(pd.log_start_offset)?;
    }
    Ok(Applied::Done)
}

/// Kafka's `getOffsetTruncationState`: the leader says its log matches ours only up to
/// `end_offset` of `epoch`; truncate to where both logs agree (repeated, if our epochs do not
/// know the leader's, until they do).
///
/// Returns false when our epochs do not know the leader's and the leader must be asked again.
fn truncate_diverging(p: &Partition, epoch: i32, end_offset: i64) -> Result<bool, LogError> {
    let mut log = p.log.lock();
    let leo = log.log_end_offset();
    let (to, complete) = if end_offset < 0 {
        (log.high_watermark(), true)
    } else {
        match log.end_offset_for_epoch(epoch) {
            (ours, our_end) if ours >= 0 && ours != epoch => (our_end.min(leo), false),
            (ours, our_end) if ours >= 0 => (our_end.min(end_offset).min(leo), true),
            _ => (end_offset.min(leo), true),
        }
    };
    tracing::info!(topic = %p.topic, partition = p.partition, leader_epoch = epoch, leader_end_offset = end_offset, truncate_to = to, log_end_offset = leo, "follower log diverges from the leader's; truncating");
    log.truncate_to(to)?;
    Ok(complete)
}

/// A partition to truncate by epochs: our latest epoch, and the leader's (error, epoch, end
/// offset) for it.
type EpochCheck = (
    TopicPartition,
    Arc<Partition>,
    i32,
    Option<i32>,
    Option<(i16, i32, i64)>,
);

/// Truncation before fetching from a leader whose Fetch has no `last_fetched_epoch` (Kafka
/// before 2.7): OffsetsForLeaderEpoch with our latest epoch, truncating where the leader says
/// that epoch ends, and asking again until our epochs agree; without any epoch, or with a
/// leader that predates OffsetsForLeaderEpoch, only the high watermark is known to be safe.
async fn truncate_by_epochs(
    c: &mut Connection,
    me: i32,
    shared: &Shared,
    unchecked: &[(TopicPartition, Arc<Partition>, i32)],
    config: &FetcherConfig,
) -> crate::client::Result<()> {
    use kafka_protocol::messages::OffsetForLeaderEpochRequest;
    use kafka_protocol::messages::offset_for_leader_epoch_request::{
        OffsetForLeaderPartition, OffsetForLeaderTopic,
    };
    let parts: Vec<Arc<Partition>> = unchecked.iter().map(|(_, p, _)| p.clone()).collect();
    let latest: Vec<Option<i32>> =
        blocking(move || Ok(parts.iter().map(|p| p.log.lock().latest_epoch()).collect()))
            .await
            .unwrap_or_else(|_| vec![None; unchecked.len()]);
    let mut answers: HashMap<TopicPartition, (i16, i32, i64)> = HashMap::new();
    let ofle_version = config.ibp.offset_for_leader_epoch();
    if let (Some(ofle_version), Ok(_)) = (ofle_version, c.version(ApiKey::OffsetForLeaderEpoch)) {
        let mut req = OffsetForLeaderEpochRequest::default();
        req.replica_id = BrokerId(me);
        for ((tp, _, epoch), ours) in unchecked.iter().zip(&latest) {
            let Some(ours) = ours else { continue };
            let mut p = OffsetForLeaderPartition::default();
            p.partition = tp.1;
            p.current_leader_epoch = *epoch;
            p.leader_epoch = *ours;
            match req.topics.iter_mut().find(|t| t.topic.0.as_str() == tp.0) {
                Some(t) => t.partitions.push(p),
                None => {
                    let mut t = OffsetForLeaderTopic::default();
                    t.topic = TopicName(StrBytes::from_string(tp.0.clone()));
                    t.partitions.push(p);
                    req.topics.push(t);
                }
            }
        }
        if !req.topics.is_empty()
            && let ResponseKind::OffsetForLeaderEpoch(r) = c
                .call_upto(
                    ApiKey::OffsetForLeaderEpoch,
                    ofle_version,
                    RequestKind::OffsetForLeaderEpoch(req),
                )
                .await?
        {
            for t in r.topics {
                for p in t.partitions {
                    answers.insert(
                        (t.topic.0.to_string(), p.partition),
                        (p.error_code, p.leader_epoch, p.end_offset),
                    );
                }
            }
        }
    }
    let _applying = shared.applying.lock().await;
    let work: Vec<EpochCheck> = {
        let parts = shared.parts();
        unchecked
            .iter()
            .zip(latest)
            .filter(|((tp, p, epoch), _)| parts.get(tp).is_some_and(|t| t.is(p, *epoch)))
            .map(|((tp, p, epoch), ours)| {
                (
                    tp.clone(),
                    p.clone(),
                    *epoch,
                    ours,
                    answers.get(tp).copied(),
                )
            })
            .collect()
    };
    let outcomes = blocking(move || {
        Ok(work
            .into_iter()
            .map(|(tp, p, leader_epoch, ours, answer)| {
                let result = match (ours, answer) {
                    (Some(_), Some((0, epoch, end))) => truncate_diverging(&p, epoch, end),
                    (Some(_), Some((code, _, _))) => return (tp, p, leader_epoch, Err(Some(code))),
                    // No epochs here, or a leader that cannot say where they end.
                    _ => {
                        let mut log = p.log.lock();
                        let hw = log.high_watermark();
                        log.truncate_to(hw).map(|()| true)
                    }
                };
                let result = result.map_err(|e| {
                    tracing::error!(topic = %tp.0, partition = tp.1, error = %e, "cannot truncate the follower's log");
                    None
                });
                (tp, p, leader_epoch, result)
            })
            .collect::<Vec<_>>())
    })
    .await
    .unwrap_or_default();
    let retry_at = Instant::now() + config.backoff;
    let mut parts = shared.parts();
    for (tp, p, leader_epoch, outcome) in outcomes {
        if let Some(t) = parts.get_mut(&tp)
            && t.is(&p, leader_epoch)
        {
            match outcome {
                Ok(complete) => t.epochs_checked = complete,
                Err(_) => t.retry_at = Some(retry_at),
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(fetch_offset: i64) -> SentState {
        SentState {
            fetch_offset,
            log_start_offset: 0,
            last_fetched_epoch: 0,
            current_leader_epoch: 0,
            max_bytes: 1 << 20,
        }
    }

    fn tp(p: i32) -> TopicPartition {
        ("t".to_string(), p)
    }

    fn forgotten(r: &SessionRequest) -> Vec<i32> {
        let mut out: Vec<i32> = r.forget.iter().map(|tp| tp.1).collect();
        out.sort_unstable();
        out
    }

    #[test]
    fn after_a_full_fetch_only_changes_and_removals_are_sent() {
        let mut s = FetchSession::new();
        let all = [(tp(0), state(5)), (tp(1), state(7)), (tp(2), state(9))];
        assert_eq!(s.build(&all).send, vec![0, 1, 2]);
        s.answered(true, 42);
        assert_eq!((s.id, s.epoch), (42, 1));

        // Nothing changed: an empty incremental fetch.
        let r = s.build(&all);
        assert!(r.send.is_empty() && r.forget.is_empty());
        s.answered(false, 42);
        assert_eq!(s.epoch, 2);

        // Partition 1 advanced, partition 2 backs off (not fetched), partition 3 is new.
        let mut changed = state(8);
        changed.current_leader_epoch = 3;
        let next = [(tp(0), state(5)), (tp(1), changed), (tp(3), state(0))];
        let r = s.build(&next);
        assert_eq!(r.send, vec![1, 2]);
        assert_eq!(forgotten(&r), vec![2]);
        s.answered(false, 42);

        // Partition 2 back: named again, though its state is what was sent before.
        let next = [(tp(0), state(5)), (tp(1), changed), (tp(2), state(9))];
        let r = s.build(&next);
        assert_eq!(r.send, vec![2]);
        assert_eq!(forgotten(&r), vec![3]);
    }

    #[test]
    fn errors_and_sessionless_leaders_mean_full_fetches() {
        let mut s = FetchSession::new();
        let all = [(tp(0), state(5)), (tp(1), state(7))];
        s.build(&all);
        s.answered(true, 42);
        s.build(&all);
        s.answered(false, 42);
        // INVALID_FETCH_SESSION_EPOCH: close the session and ask for a new one.
        s.reset(ResponseError::InvalidFetchSessionEpoch.code());
        assert_eq!((s.id, s.epoch), (42, 0));
        assert_eq!(s.build(&all).send, vec![0, 1]);
        // FETCH_SESSION_ID_NOT_FOUND: the leader has no such session to close.
        s.reset(ResponseError::FetchSessionIdNotFound.code());
        assert_eq!((s.id, s.epoch), (0, 0));
        // A leader keeping no session: every fetch stays full.
        s.build(&all);
        s.answered(true, 0);
        assert_eq!((s.id, s.epoch), (0, 0));
        assert_eq!(s.build(&all).send, vec![0, 1]);
    }

    /// Every Fetch version a leader of Kafka 2.4 to 3.9 may answer at most (v4 is odradek's
    /// lowest) encodes the follower's request and carries what that version can: Kafka 2.4's
    /// leaders stop at v11, which has no `last_fetched_epoch`.
    #[test]
    fn the_followers_fetch_encodes_at_every_version() {
        use kafka_protocol::messages::{RequestHeader, RequestKind};
        use kafka_protocol::protocol::Decodable;

        let config = FetcherConfig::default();
        let id = uuid::Uuid::from_u128(0x1234);
        let ids = HashMap::from([("t".to_string(), id)]);
        let mut session = FetchSession::new();
        let mut first = FetchSession::new();
        let full = fetch_request(
            7,
            &config,
            &mut first,
            &[(tp(0), (), 3), (tp(1), (), 3)],
            &[
                Position {
                    fetch_offset: 42,
                    log_start_offset: 5,
                    last_fetched_epoch: 2,
                },
                Position {
                    fetch_offset: 9,
                    log_start_offset: 0,
                    last_fetched_epoch: 3,
                },
            ],
            &ids,
        );
        // An incremental one, forgetting partition 1.
        session.build(&[(tp(0), state(42)), (tp(1), state(9))]);
        session.answered(true, 11);
        let incremental = fetch_request(
            7,
            &config,
            &mut session,
            &[(tp(0), (), 3)],
            &[Position {
                fetch_offset: 43,
                log_start_offset: 5,
                last_fetched_epoch: 2,
            }],
            &ids,
        );
        assert_eq!(incremental.forgotten_topics_data.len(), 1);
        for version in 4..=17 {
            for built in [&full, &incremental] {
                let mut request = RequestKind::Fetch(built.clone());
                crate::client::fit(ApiKey::Fetch, version, &mut request);
                let mut frame = crate::protocol::frame::encode_request(
                    ApiKey::Fetch,
                    version,
                    1,
                    None,
                    &request,
                )
                .unwrap_or_else(|e| panic!("Fetch v{version} does not encode: {e}"));
                let mut body = frame.split_off(4).freeze();
                RequestHeader::decode(&mut body, ApiKey::Fetch.request_header_version(version))
                    .expect("header");
                let sent = FetchRequest::decode(&mut body, version).expect("body");
                let replica = if version >= 15 {
                    sent.replica_state.replica_id.0
                } else {
                    sent.replica_id.0
                };
                assert_eq!(replica, 7, "v{version} names the follower");
                if version >= 13 {
                    assert_eq!(sent.topics[0].topic_id, id, "v{version} names topics by id");
                } else {
                    assert_eq!(sent.topics[0].topic.0.as_str(), "t");
                }
                let p = &sent.topics[0].partitions[0];
                assert_eq!(p.fetch_offset, built.topics[0].partitions[0].fetch_offset);
                assert_eq!(p.log_start_offset, if version >= 5 { 5 } else { -1 });
                assert_eq!(p.current_leader_epoch, if version >= 9 { 3 } else { -1 });
                assert_eq!(p.last_fetched_epoch, if version >= 12 { 2 } else { -1 });
                if version >= 7 {
                    assert_eq!(sent.session_id, built.session_id);
                    assert_eq!(
                        sent.forgotten_topics_data.len(),
                        built.forgotten_topics_data.len()
                    );
                    if version >= 13 && !sent.forgotten_topics_data.is_empty() {
                        assert_eq!(sent.forgotten_topics_data[0].topic_id, id);
                    }
                }
            }
        }
    }

    #[test]
    fn session_epochs_wrap_to_one() {
        let mut s = FetchSession::new();
        s.build(&[(tp(0), state(0))]);
        s.answered(true, 7);
        s.epoch = i32::MAX;
        s.answered(false, 7);
        assert_eq!(s.epoch, 1);
    }
}
