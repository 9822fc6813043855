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
//! partitions cost the leader and the wire nothing per fetch. That session, and the request
//! built from it, is in `session`.

mod session;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::fetch_response::PartitionData;
use kafka_protocol::messages::{ApiKey, BrokerId, RequestKind, ResponseKind, TopicName};
use kafka_protocol::protocol::StrBytes;
use tokio::sync::Notify;
use tokio::time::Instant;

use self::session::{FetchSession, Position, fetch_request};
use super::{Partition, TopicPartition, blocking};
use crate::client::{ClientId, Connection, Ibp};
use crate::log::LogError;

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
