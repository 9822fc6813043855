//! Incremental fetch sessions (KIP-227), as Kafka's `FetchSession.scala` keeps them. A full
//! fetch with session epoch 0 creates a session holding its partitions; later fetches with the
//! next epoch name only the partitions that changed (and those to forget), and the answer holds
//! only partitions with something new: records, a moved high watermark or log start offset, an
//! error, or a diverging epoch. Epoch -1 asks for no session (and closes the one named).
//!
//! The cache is bounded by `max.incremental.fetch.session.cache.slots`; when full, a new session
//! may evict a stale one, or the least valuable one by Kafka's `EvictableKey` order (unprivileged
//! before followers' sessions, then fewer partitions). Kafka splits the cache into 8 shards to
//! spread lock contention and evicts within a shard; here one lock guards it all, held only for
//! the bookkeeping, never across a read.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::fetch_response::PartitionData;
use kafka_protocol::messages::{FetchRequest, TopicName};
use prometheus::proto::{MetricFamily, MetricType};
use uuid::Uuid;

use crate::metrics::{Family, Scraped};
use crate::protocol::fetch_metadata::{FINAL_EPOCH, INITIAL_EPOCH, NO_SESSION, next_epoch};

/// `KafkaServer.MIN_INCREMENTAL_FETCH_SESSION_EVICTION_MS`: a session unused this long may be
/// evicted by anyone, and a session younger than this only by a more valuable one.
const EVICTION_MS: i64 = 120_000;

/// One partition a fetch reads, with the parameters its request (or its session) gave.
#[derive(Debug, Clone)]
pub struct FetchTarget {
    /// The name the request used; empty when it named the topic by id (v13+).
    pub topic: TopicName,
    pub topic_id: Uuid,
    pub partition: i32,
    pub fetch_offset: i64,
    pub max_bytes: i32,
    pub current_leader_epoch: i32,
    pub last_fetched_epoch: i32,
    /// A follower's log start offset (v5+), -1 when not given.
    pub log_start_offset: i64,
}

impl FetchTarget {
    /// Kafka's `CachedPartition` equality: by topic id when there is one, else by name.
    fn key(&self) -> PartitionKey {
        if self.topic_id.is_nil() {
            PartitionKey::Name(self.topic.clone(), self.partition)
        } else {
            PartitionKey::Id(self.topic_id, self.partition)
        }
    }

    fn update_params(&mut self, from: &FetchTarget) {
        self.fetch_offset = from.fetch_offset;
        self.max_bytes = from.max_bytes;
        self.current_leader_epoch = from.current_leader_epoch;
        self.last_fetched_epoch = from.last_fetched_epoch;
        self.log_start_offset = from.log_start_offset;
    }
}

/// The partitions a request names, in request order, with what each version carries.
pub fn request_targets(request: &FetchRequest, version: i16) -> Vec<FetchTarget> {
    let mut out = Vec::new();
    for t in &request.topics {
        for p in &t.partitions {
            out.push(FetchTarget {
                topic: t.topic.clone(),
                topic_id: if version >= 13 {
                    t.topic_id
                } else {
                    Uuid::nil()
                },
                partition: p.partition,
                fetch_offset: p.fetch_offset,
                max_bytes: p.partition_max_bytes,
                current_leader_epoch: if version >= 9 {
                    p.current_leader_epoch
                } else {
                    -1
                },
                last_fetched_epoch: if version >= 12 {
                    p.last_fetched_epoch
                } else {
                    -1
                },
                log_start_offset: if version >= 5 { p.log_start_offset } else { -1 },
            });
        }
    }
    out
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum PartitionKey {
    Id(Uuid, i32),
    Name(TopicName, i32),
}

/// A partition in a session: what to read next and what the fetcher was last told.
#[derive(Debug)]
struct CachedPartition {
    target: FetchTarget,
    high_watermark: i64,
    log_start_offset: i64,
}

impl CachedPartition {
    /// Kafka's `maybeUpdateResponseData(respData, updateResponseData = true)`: whether the
    /// partition must be in the answer, remembering what the fetcher now knows.
    fn must_respond(&mut self, pd: &PartitionData, has_records: bool) -> bool {
        let mut respond = has_records;
        if self.high_watermark != pd.high_watermark {
            self.high_watermark = pd.high_watermark;
            respond = true;
        }
        if self.log_start_offset != pd.log_start_offset {
            self.log_start_offset = pd.log_start_offset;
            respond = true;
        }
        if pd.error_code != 0 {
            // Forget the high watermark, so the partition is sent again once the error clears.
            self.high_watermark = -1;
            respond = true;
        }
        // A consumer sent to another replica (KIP-392) must hear of it.
        respond || pd.diverging_epoch.epoch >= 0 || pd.preferred_read_replica.0 >= 0
    }
}

#[derive(Debug)]
struct Session {
    privileged: bool,
    uses_topic_ids: bool,
    creation_ms: i64,
    last_used_ms: i64,
    epoch: i32,
    /// The partition count when last touched: the size eviction compares.
    cached_size: usize,
    /// In the order fetches read them; partitions that returned records move to the back, so
    /// a response size limit does not always favour the same partitions.
    partitions: Vec<CachedPartition>,
    index: HashMap<PartitionKey, usize>,
}

impl Session {
    fn reindex(&mut self) {
        self.index = self
            .partitions
            .iter()
            .enumerate()
            .map(|(i, p)| (p.target.key(), i))
            .collect();
    }

    fn find(&mut self, key: &PartitionKey) -> Option<&mut CachedPartition> {
        let i = *self.index.get(key)?;
        self.partitions.get_mut(i)
    }

    /// Kafka's `EvictableKey` order: (privileged, size, id).
    fn evictable_key(&self, id: i32) -> (bool, usize, i32) {
        (self.privileged, self.cached_size, id)
    }
}

/// What a fetch does with sessions, decided before reading (Kafka's `FetchContext`s).
#[derive(Debug)]
pub enum FetchContext {
    /// Read the request's partitions; answer them all with session id 0.
    Sessionless(Vec<FetchTarget>),
    /// Read the request's partitions; answer them all and try to create a session for them.
    Full {
        targets: Vec<FetchTarget>,
        privileged: bool,
        uses_topic_ids: bool,
    },
    /// Read every partition of the session; answer only those with news.
    Incremental {
        session_id: i32,
        request_epoch: i32,
        targets: Vec<FetchTarget>,
    },
    /// Answer this top-level error, no partitions and session id 0.
    Error(i16),
}

impl FetchContext {
    pub fn targets(&self) -> &[FetchTarget] {
        match self {
            FetchContext::Sessionless(t)
            | FetchContext::Full { targets: t, .. }
            | FetchContext::Incremental { targets: t, .. } => t,
            FetchContext::Error(_) => &[],
        }
    }
}

pub struct FetchSessionCache {
    max_entries: usize,
    started: Instant,
    sessions: Mutex<HashMap<i32, Session>>,
    evictions: AtomicU64,
}

/// What Kafka's `FetchSessionCache` metrics report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FetchSessionStats {
    pub sessions: usize,
    /// Partitions over all sessions, as of each session's last use.
    pub partitions: usize,
    pub evictions: u64,
}

impl FetchSessionCache {
    pub fn new(max_entries: usize) -> FetchSessionCache {
        FetchSessionCache {
            max_entries,
            started: Instant::now(),
            sessions: Mutex::new(HashMap::new()),
            evictions: AtomicU64::new(0),
        }
    }

    pub fn stats(&self) -> FetchSessionStats {
        let sessions = self.lock();
        FetchSessionStats {
            sessions: sessions.len(),
            partitions: sessions.values().map(|s| s.cached_size).sum(),
            evictions: self.evictions.load(Ordering::Relaxed),
        }
    }

    fn now_ms(&self) -> i64 {
        i64::try_from(self.started.elapsed().as_millis()).unwrap_or(i64::MAX)
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<i32, Session>> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Kafka's `FetchManager.newContext`. Versions before 7 have no sessions.
    pub fn new_context(
        &self,
        request: &FetchRequest,
        version: i16,
        from_follower: bool,
    ) -> FetchContext {
        self.context_at(request, version, from_follower, self.now_ms())
    }

    fn context_at(
        &self,
        request: &FetchRequest,
        version: i16,
        from_follower: bool,
        now: i64,
    ) -> FetchContext {
        let targets = request_targets(request, version);
        let (session_id, epoch) = if version >= 7 {
            (request.session_id, request.session_epoch)
        } else {
            (NO_SESSION, FINAL_EPOCH)
        };
        let mut sessions = self.lock();
        if epoch == INITIAL_EPOCH || epoch == FINAL_EPOCH {
            // A full fetch closes the session it names.
            if session_id != NO_SESSION {
                sessions.remove(&session_id);
            }
            return if epoch == FINAL_EPOCH {
                FetchContext::Sessionless(targets)
            } else {
                FetchContext::Full {
                    targets,
                    privileged: from_follower,
                    uses_topic_ids: version >= 13,
                }
            };
        }
        let Some(session) = sessions.get_mut(&session_id) else {
            tracing::debug!(session_id, "fetch session not found");
            return FetchContext::Error(ResponseError::FetchSessionIdNotFound.code());
        };
        if session.epoch != epoch {
            tracing::debug!(
                session_id,
                expected = session.epoch,
                got = epoch,
                "fetch session epoch mismatch"
            );
            return FetchContext::Error(ResponseError::InvalidFetchSessionEpoch.code());
        }
        if session.uses_topic_ids != (version >= 13) {
            return FetchContext::Error(ResponseError::FetchSessionTopicIdError.code());
        }
        for t in &targets {
            let key = t.key();
            match session.find(&key) {
                Some(cached) => cached.target.update_params(t),
                None => {
                    session.index.insert(key, session.partitions.len());
                    session.partitions.push(CachedPartition {
                        target: t.clone(),
                        high_watermark: -1,
                        log_start_offset: -1,
                    });
                }
            }
        }
        let mut forgotten = false;
        for f in &request.forgotten_topics_data {
            for &p in &f.partitions {
                let key = if version >= 13 && !f.topic_id.is_nil() {
                    PartitionKey::Id(f.topic_id, p)
                } else {
                    PartitionKey::Name(f.topic.clone(), p)
                };
                forgotten |= session.index.remove(&key).is_some();
            }
        }
        if forgotten {
            let index = std::mem::take(&mut session.index);
            session
                .partitions
                .retain(|c| index.contains_key(&c.target.key()));
            session.reindex();
        }
        if session.partitions.is_empty() {
            sessions.remove(&session_id);
            return FetchContext::Sessionless(targets);
        }
        session.last_used_ms = now;
        session.cached_size = session.partitions.len();
        session.epoch = next_epoch(session.epoch);
        tracing::trace!(
            session_id,
            epoch,
            partitions = session.cached_size,
            "incremental fetch"
        );
        FetchContext::Incremental {
            session_id,
            request_epoch: epoch,
            targets: session
                .partitions
                .iter()
                .map(|c| c.target.clone())
                .collect(),
        }
    }

    /// Kafka's `FullFetchContext.updateAndGenerateResponseData`: the new session's id, or 0
    /// when the cache has no room for it. `read` holds the answers, aligned with `targets`.
    pub fn create_session<'a>(
        &self,
        targets: &[FetchTarget],
        read: impl IntoIterator<Item = &'a PartitionData>,
        privileged: bool,
        uses_topic_ids: bool,
    ) -> i32 {
        let now = self.now_ms();
        self.create_session_at(targets, read, privileged, uses_topic_ids, now)
    }

    fn create_session_at<'a>(
        &self,
        targets: &[FetchTarget],
        read: impl IntoIterator<Item = &'a PartitionData>,
        privileged: bool,
        uses_topic_ids: bool,
        now: i64,
    ) -> i32 {
        let mut sessions = self.lock();
        if sessions.len() >= self.max_entries {
            if !try_evict(&mut sessions, privileged, targets.len(), now) {
                tracing::debug!(privileged, size = targets.len(), "no fetch session created");
                return NO_SESSION;
            }
            self.evictions.fetch_add(1, Ordering::Relaxed);
        }
        let id = new_session_id(&sessions);
        let mut session = Session {
            privileged,
            uses_topic_ids,
            creation_ms: now,
            last_used_ms: now,
            epoch: next_epoch(INITIAL_EPOCH),
            cached_size: 0,
            partitions: targets
                .iter()
                .zip(read)
                .map(|(t, pd)| CachedPartition {
                    target: t.clone(),
                    high_watermark: pd.high_watermark,
                    log_start_offset: pd.log_start_offset,
                })
                .collect(),
            index: HashMap::new(),
        };
        // A request naming a partition twice keeps its last parameters, as Kafka's map does.
        session.reindex();
        if session.index.len() != session.partitions.len() {
            let index = std::mem::take(&mut session.index);
            let mut i = 0;
            session.partitions.retain(|c| {
                let keep = index.get(&c.target.key()) == Some(&i);
                i += 1;
                keep
            });
            session.reindex();
        }
        session.cached_size = session.partitions.len();
        tracing::debug!(
            session_id = id,
            privileged,
            partitions = session.cached_size,
            "created fetch session"
        );
        sessions.insert(id, session);
        id
    }

    /// Kafka's `IncrementalFetchContext.updateAndGenerateResponseData`: which of `read` (aligned
    /// with the context's targets) the answer holds, or the error when another request moved
    /// the session's epoch meanwhile. A session evicted meanwhile answers everything read.
    /// Each partition read comes with whether it returned records (which may be in a file).
    pub fn finish_incremental<'a>(
        &self,
        session_id: i32,
        request_epoch: i32,
        targets: &[FetchTarget],
        read: impl IntoIterator<Item = (&'a PartitionData, bool)>,
    ) -> Result<Vec<bool>, i16> {
        let mut sessions = self.lock();
        let Some(session) = sessions.get_mut(&session_id) else {
            return Ok(vec![true; targets.len()]);
        };
        if session.epoch != next_epoch(request_epoch) {
            tracing::info!(
                session_id,
                expected = next_epoch(request_epoch),
                got = session.epoch,
                "fetch session epoch moved: possible duplicate request"
            );
            return Err(ResponseError::InvalidFetchSessionEpoch.code());
        }
        let mut moved = vec![false; session.partitions.len()];
        let mut any_moved = false;
        let keep = targets
            .iter()
            .zip(read)
            .map(|(t, (pd, has_records))| {
                let key = t.key();
                let Some(&i) = session.index.get(&key) else {
                    return true;
                };
                let Some(cached) = session.partitions.get_mut(i) else {
                    return true;
                };
                let respond = cached.must_respond(pd, has_records);
                if respond && has_records {
                    moved[i] = true;
                    any_moved = true;
                }
                respond
            })
            .collect();
        if any_moved {
            let (front, back): (Vec<_>, Vec<_>) = std::mem::take(&mut session.partitions)
                .into_iter()
                .zip(moved)
                .partition(|(_, m)| !m);
            session.partitions = front.into_iter().chain(back).map(|(c, _)| c).collect();
            session.reindex();
        }
        Ok(keep)
    }
}

fn new_session_id(sessions: &HashMap<i32, Session>) -> i32 {
    loop {
        // uuid's v4 generator is the crate's source of randomness; 31 bits of it make the id.
        let id = (Uuid::new_v4().as_u128() & 0x7fff_ffff) as i32;
        if id != NO_SESSION && !sessions.contains_key(&id) {
            return id;
        }
    }
}

/// Kafka's `FetchSessionCacheShard.tryEvict`: a new session of `size` partitions may evict
/// (1) the least recently used session if unused for `EVICTION_MS`, else (2) the least valuable
/// evictable one if the new one is worth more. Followers' sessions younger than `EVICTION_MS`
/// are never evicted by consumers', and nothing younger is evicted by an unprivileged session.
fn try_evict(
    sessions: &mut HashMap<i32, Session>,
    privileged: bool,
    size: usize,
    now: i64,
) -> bool {
    let Some((&stale_id, stale)) = sessions.iter().min_by_key(|(id, s)| (s.last_used_ms, **id))
    else {
        return false;
    };
    if now - stale.last_used_ms > EVICTION_MS {
        tracing::trace!(session_id = stale_id, "evicting stale fetch session");
        sessions.remove(&stale_id);
        return true;
    }
    // Membership as Kafka's `touch` decides it, at the session's last use.
    let candidate = sessions
        .iter()
        .filter(|(_, s)| {
            let old = s.last_used_ms - s.creation_ms > EVICTION_MS;
            if privileged {
                !s.privileged || old
            } else {
                old
            }
        })
        .map(|(id, s)| s.evictable_key(*id))
        .min();
    match candidate {
        Some(key) if (privileged, size, 0) >= key => {
            tracing::trace!(session_id = key.2, "evicting fetch session");
            sessions.remove(&key.2);
            true
        }
        _ => false,
    }
}

/// Kafka's `FetchSessionCache` metrics: sessions, partitions cached in them, evictions.
static METRICS: [Family; 3] = [
    Family::gauge(
        "kafka_server_fetchsessioncache_numincrementalfetchsessions",
        "Incremental fetch sessions kept (FetchSessionCache NumIncrementalFetchSessions).",
    ),
    Family::gauge(
        "kafka_server_fetchsessioncache_numincrementalfetchpartitionscached",
        "Partitions held by incremental fetch sessions (NumIncrementalFetchPartitionsCached).",
    ),
    Family {
        kind: MetricType::COUNTER,
        ..Family::gauge(
            "kafka_server_fetchsessioncache_incrementalfetchsessionevictions_total",
            "Fetch sessions evicted to make room for others (IncrementalFetchSessionEvictionsPerSec).",
        )
    },
];

impl FetchSessionCache {
    /// Reports this cache on `/metrics` for as long as the broker runs.
    pub fn register_metrics(self: &Arc<Self>) {
        crate::metrics::global().watch(&METRICS, self);
    }
}

impl Scraped for FetchSessionCache {
    fn scrape(&self) -> Vec<MetricFamily> {
        let stats = self.stats();
        let [sessions, partitions, evictions] = &METRICS;
        vec![
            sessions.value(stats.sessions as f64),
            partitions.value(stats.partitions as f64),
            evictions.value(stats.evictions as f64),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic, ForgottenTopic};
    use kafka_protocol::protocol::StrBytes;

    fn name(s: &str) -> TopicName {
        TopicName(StrBytes::from_string(s.to_string()))
    }

    fn request(session_id: i32, epoch: i32, parts: &[(&str, i32)]) -> FetchRequest {
        let mut r = FetchRequest::default();
        r.session_id = session_id;
        r.session_epoch = epoch;
        for (t, p) in parts {
            let mut fp = FetchPartition::default();
            fp.partition = *p;
            let mut ft = FetchTopic::default();
            ft.topic = name(t);
            ft.partitions.push(fp);
            r.topics.push(ft);
        }
        r
    }

    fn answers(n: usize) -> Vec<PartitionData> {
        (0..n)
            .map(|_| {
                let mut pd = PartitionData::default();
                pd.high_watermark = 5;
                pd.log_start_offset = 0;
                pd
            })
            .collect()
    }

    /// A session of `size` partitions created at `now`.
    fn session(cache: &FetchSessionCache, size: usize, privileged: bool, now: i64) -> i32 {
        let parts: Vec<(&str, i32)> = (0..size as i32).map(|p| ("t", p)).collect();
        let r = request(0, 0, &parts);
        let targets = request_targets(&r, 12);
        cache.create_session_at(&targets, &answers(size), privileged, false, now)
    }

    #[test]
    fn full_cache_evicts_by_kafka_preference() {
        let cache = FetchSessionCache::new(2);
        let small = session(&cache, 1, false, 0);
        let big = session(&cache, 5, false, 0);
        assert!(small > 0 && big > 0);
        // Both are young and neither stale: an unprivileged session cannot evict them...
        assert_eq!(session(&cache, 10, false, 1000), NO_SESSION);
        // ...but a follower's can evict the smaller consumer session.
        let follower = session(&cache, 2, true, 1000);
        assert!(follower > 0);
        assert!(!cache.lock().contains_key(&small));
        // A session unused for longer than the eviction time goes first, whatever its size.
        let later = 1000 + EVICTION_MS + 1;
        assert!(session(&cache, 1, false, later) > 0);
        assert!(cache.lock().contains_key(&follower));
        assert!(!cache.lock().contains_key(&big));
        let stats = cache.stats();
        assert_eq!(
            (stats.sessions, stats.partitions, stats.evictions),
            (2, 3, 2)
        );
    }

    #[test]
    fn no_slots_means_no_sessions() {
        let cache = FetchSessionCache::new(0);
        assert_eq!(session(&cache, 3, true, 0), NO_SESSION);
    }

    #[test]
    fn incremental_epochs_and_forgetting() {
        let cache = FetchSessionCache::new(10);
        let id = session(&cache, 2, false, 0);
        let ctx = cache.context_at(&request(id, 1, &[]), 12, false, 10);
        assert_eq!(ctx.targets().len(), 2);
        // The same epoch again is a duplicate.
        let again = cache.context_at(&request(id, 1, &[]), 12, false, 10);
        assert!(matches!(
            again,
            FetchContext::Error(c) if c == ResponseError::InvalidFetchSessionEpoch.code()
        ));
        // v13 on a session made by names is refused.
        let ids = cache.context_at(&request(id, 2, &[]), 13, false, 10);
        assert!(matches!(
            ids,
            FetchContext::Error(c) if c == ResponseError::FetchSessionTopicIdError.code()
        ));
        // A new partition joins at the back; a forgotten one leaves.
        let mut forget = request(id, 2, &[("u", 7)]);
        let mut f = ForgottenTopic::default();
        f.topic = name("t");
        f.partitions = vec![0];
        forget.forgotten_topics_data.push(f);
        let ctx = cache.context_at(&forget, 12, false, 10);
        let kept: Vec<_> = ctx
            .targets()
            .iter()
            .map(|t| (t.topic.0.to_string(), t.partition))
            .collect();
        assert_eq!(kept, [("t".to_string(), 1), ("u".to_string(), 7)]);
        // Forgetting the last partitions closes the session.
        let mut forget = request(id, 3, &[]);
        for (t, p) in [("t", 1), ("u", 7)] {
            let mut f = ForgottenTopic::default();
            f.topic = name(t);
            f.partitions = vec![p];
            forget.forgotten_topics_data.push(f);
        }
        let ctx = cache.context_at(&forget, 12, false, 10);
        assert!(matches!(ctx, FetchContext::Sessionless(_)));
        assert_eq!(cache.stats().sessions, 0);
    }

    #[test]
    fn incremental_answers_hold_only_news_and_rotate_partitions_with_records() {
        let cache = FetchSessionCache::new(10);
        let id = session(&cache, 4, false, 0);
        let ctx = cache.context_at(&request(id, 1, &[]), 12, false, 10);
        let FetchContext::Incremental { targets, .. } = &ctx else {
            panic!("{ctx:?}");
        };
        // As created: high watermark 5, log start 0, nothing new.
        let mut read = answers(4);
        read[2].high_watermark = 6;
        read[3].error_code = ResponseError::NotLeaderOrFollower.code();
        let with_records = read.iter().enumerate().map(|(i, pd)| (pd, i == 1));
        let keep = cache
            .finish_incremental(id, 1, targets, with_records)
            .unwrap();
        assert_eq!(keep, [false, true, true, true]);
        // The partition that returned records is read last next time; the errored one is
        // answered again once its error clears (its high watermark was forgotten).
        let ctx = cache.context_at(&request(id, 2, &[]), 12, false, 10);
        let order: Vec<i32> = ctx.targets().iter().map(|t| t.partition).collect();
        assert_eq!(order, [0, 2, 3, 1]);
        let mut read = answers(4);
        read[1].high_watermark = 6;
        let keep = cache
            .finish_incremental(id, 2, ctx.targets(), read.iter().map(|pd| (pd, false)))
            .unwrap();
        assert_eq!(keep, [false, false, true, false]);
        // A response for an epoch the session has moved past is refused.
        assert_eq!(
            cache.finish_incremental(id, 1, ctx.targets(), read.iter().map(|pd| (pd, false))),
            Err(ResponseError::InvalidFetchSessionEpoch.code())
        );
    }

    #[test]
    fn next_epoch_wraps_to_one() {
        assert_eq!(next_epoch(i32::MAX), 1);
        assert_eq!(next_epoch(-1), -1);
        assert_eq!(next_epoch(0), 1);
    }
}
