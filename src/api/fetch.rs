//! Fetch: bytes as stored, starting at the batch holding the fetch offset. A fetch that finds
//! less than `min_bytes` waits until an append to one of its partitions or `max_wait_ms`.
//! Which partitions are read and answered is the fetch session's choice (`fetch_session`).

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::future::select_all;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::fetch_response::{
    AbortedTransaction, FetchableTopicResponse, PartitionData,
};
use kafka_protocol::messages::{BrokerId, FetchRequest, FetchResponse, ProducerId, TopicName};
use tokio::time::Instant;

use super::errors::KafkaCode;
use super::fetch_response::FetchAnswer;
use super::fetch_session::FetchContext;
use super::{Api, ClientInfo, errors};
use crate::config::ReplicaSelector;
use crate::config::TopicCompression;
use crate::log::{FileRegion, LogError, compression, down_convert};
use crate::protocol::fetch_metadata::NO_SESSION;
use crate::replica::Partition;
use crate::replica::selector::{self, ReplicaView};
use crate::security::acl::{Operation, ResourceType};

struct Wanted {
    topic_index: usize,
    partition: i32,
    offset: i64,
    max_bytes: usize,
    current_leader_epoch: i32,
    /// The epoch of the follower's last batch (v12+), -1 when not given.
    last_fetched_epoch: i32,
    /// The follower's log start offset (v5+), -1 when not given.
    log_start_offset: i64,
    hosted: Option<Arc<Partition>>,
    /// Why the partition cannot be read at all (unknown topic id).
    error: Option<i16>,
    topic: Option<String>,
}

pub async fn handle(
    api: &Api,
    client: &ClientInfo,
    request: FetchRequest,
    version: i16,
) -> FetchAnswer {
    let deadline = Instant::now() + Duration::from_millis(request.max_wait_ms.max(0) as u64);
    let min_bytes = request.min_bytes.max(0) as usize;
    let max_bytes = if version >= 3 {
        request.max_bytes.max(0) as usize
    } else {
        usize::MAX
    };
    // A fetch quota caps the answer at one quota window's worth, min_bytes with it (Kafka's
    // maxValueInQuotaWindow), so a consumer is never handed more than it may take.
    let (min_bytes, max_bytes) = match super::throttle::fetch_cap(api) {
        Some(cap) => (min_bytes.min(cap), max_bytes.min(cap)),
        None => (min_bytes, max_bytes),
    };
    let read_committed = request.isolation_level == 1;
    // A follower names itself: in the body up to v14, in the tagged replica_state from v15.
    let replica_id = if version >= 15 {
        request.replica_state.replica_id.0
    } else {
        request.replica_id.0
    };
    let follower = (replica_id >= 0).then(|| Follower {
        id: replica_id,
        live: api.cache.is_live(replica_id),
    });
    // The consumer's rack (`client.rack`, v11+), for the replica selector on a leader.
    let consumer_rack =
        (replica_id < 0 && version >= 11 && api.config.replica_selector != ReplicaSelector::None)
            .then(|| request.rack_id.to_string());
    let context = api
        .fetch_sessions
        .new_context(&request, version, replica_id >= 0);
    if let FetchContext::Error(code) = context {
        return session_error(code, NO_SESSION).into();
    }
    let targets = context.targets();
    // A follower needs CLUSTER_ACTION, else every partition is refused (as topics, not as the
    // cluster: Kafka's answer); a consumer needs READ on each topic. Checked before existence.
    let follower_allowed =
        replica_id < 0 || api.authorized_on_cluster(client, Operation::ClusterAction);
    let names: Vec<Option<String>> = targets
        .iter()
        .map(|t| {
            if version >= 13 {
                api.cache.topic_name_by_id(t.topic_id)
            } else {
                Some(t.topic.0.to_string())
            }
        })
        .collect();
    let readable = if replica_id < 0 {
        api.authorized_names(
            client,
            Operation::Read,
            ResourceType::Topic,
            names.iter().flatten().map(String::as_str),
        )
    } else {
        Default::default()
    };
    // The response groups consecutive partitions of a topic, echoing its name before v13 and
    // its id from v13, as the request (or the session) named it.
    let mut topic_keys: Vec<(TopicName, uuid::Uuid)> = Vec::new();
    let mut wanted = Vec::with_capacity(targets.len());
    for (t, name) in targets.iter().zip(names) {
        let same_topic = topic_keys
            .last()
            .is_some_and(|(n, id)| *n == t.topic && *id == t.topic_id);
        if !same_topic {
            topic_keys.push((t.topic.clone(), t.topic_id));
        }
        let refused = if !follower_allowed {
            Some(ResponseError::TopicAuthorizationFailed.code())
        } else if name.is_none() {
            Some(ResponseError::UnknownTopicId.code())
        } else if replica_id < 0 && !name.as_ref().is_some_and(|n| readable.contains(n)) {
            Some(ResponseError::TopicAuthorizationFailed.code())
        } else {
            None
        };
        wanted.push(Wanted {
            topic_index: topic_keys.len() - 1,
            partition: t.partition,
            offset: t.fetch_offset,
            max_bytes: t.max_bytes.max(0) as usize,
            current_leader_epoch: t.current_leader_epoch,
            last_fetched_epoch: t.last_fetched_epoch,
            log_start_offset: t.log_start_offset,
            // KIP-392: consumers from v11 may read from a follower too (Kafka's
            // fetchOnlyFromLeader is false for them); everyone else needs the leader.
            hosted: name.as_ref().filter(|_| refused.is_none()).and_then(|n| {
                if replica_id < 0 && version >= 11 {
                    api.replicas.get(n, t.partition)
                } else {
                    api.replicas.leader(n, t.partition)
                }
            }),
            error: refused,
            topic: name,
        });
    }
    loop {
        // Register for wake-ups before reading, so an append racing with the read is not lost.
        let mut waits: Vec<Pin<Box<tokio::sync::futures::Notified<'_>>>> = wanted
            .iter()
            .filter_map(|w| w.hosted.as_ref())
            .map(|p| {
                let mut n = Box::pin(p.appended());
                n.as_mut().enable();
                n
            })
            .collect();
        let (partitions, total, errored) = read_all(
            api,
            &wanted,
            max_bytes,
            version,
            read_committed,
            follower,
            consumer_rack.as_deref(),
            client.listener(&api.config),
        )
        .await;
        let now = Instant::now();
        if total >= min_bytes || errored || now >= deadline || waits.is_empty() {
            // Measured as the answer's size; over the fetch quota, the answer is Kafka's
            // throttled one: empty, keeping only an incremental session's id.
            let size = || {
                build_response(&topic_keys, partitions.clone(), version, NO_SESSION)
                    .size(version)
                    .unwrap_or(total)
            };
            if super::throttle::record_fetch(api, size) > 0 {
                let session_id = match &context {
                    FetchContext::Incremental { session_id, .. } => *session_id,
                    _ => NO_SESSION,
                };
                return build_response(&[], Vec::new(), version, session_id);
            }
            let mut partitions = partitions;
            if follower.is_none() {
                for (w, f) in wanted.iter().zip(partitions.iter_mut()) {
                    if let Some(p) = &w.hosted {
                        convert_for_old_consumer(p, f, version, w.offset).await;
                    }
                }
            }
            for (w, f) in wanted.iter().zip(&partitions) {
                crate::metrics::global().fetched(
                    w.topic.as_deref().unwrap_or(""),
                    f.records_len() as u64,
                    f.data.error_code != errors::NONE,
                );
            }
            let (session_id, keep) = match &context {
                FetchContext::Full {
                    targets,
                    privileged,
                    uses_topic_ids,
                } => {
                    let id = api.fetch_sessions.create_session(
                        targets,
                        partitions.iter().map(|f| &f.data),
                        *privileged,
                        *uses_topic_ids,
                    );
                    (id, None)
                }
                FetchContext::Incremental {
                    session_id,
                    request_epoch,
                    targets,
                } => match api.fetch_sessions.finish_incremental(
                    *session_id,
                    *request_epoch,
                    targets,
                    partitions.iter().map(|f| (&f.data, f.records_len() > 0)),
                ) {
                    Ok(keep) => (*session_id, Some(keep)),
                    Err(code) => return session_error(code, *session_id).into(),
                },
                FetchContext::Sessionless(_) | FetchContext::Error(_) => (NO_SESSION, None),
            };
            let partitions = match keep {
                Some(keep) => partitions
                    .into_iter()
                    .zip(keep)
                    .filter_map(|(p, k)| k.then_some(p))
                    .collect(),
                None => partitions,
            };
            return build_response(&topic_keys, partitions, version, session_id);
        }
        let _ = tokio::time::timeout_at(deadline, select_all(waits.iter_mut().map(|w| w.as_mut())))
            .await;
    }
}

/// The broker a follower's fetch comes from, and whether the controller counts it live
/// (looked up once per request, not per partition).
#[derive(Clone, Copy)]
struct Follower {
    id: i32,
    live: bool,
}

/// A partition's answer, with its records in `data` or, when they are to be sent from the
/// segment file, in `region` (and `data`'s records are empty).
#[derive(Clone)]
struct Fetched {
    topic_index: usize,
    data: PartitionData,
    region: Option<FileRegion>,
}

impl Fetched {
    fn records_len(&self) -> usize {
        self.region.as_ref().map_or_else(
            || self.data.records.as_ref().map_or(0, |r| r.len()),
            |r| r.len,
        )
    }
}

/// Reads (locates) every wanted partition. `consumer_rack` is set for a consumer whose fetch the replica
/// selector may send to another replica (on `listener`'s endpoints).
#[allow(clippy::too_many_arguments)]
async fn read_all(
    api: &Api,
    wanted: &[Wanted],
    max_bytes: usize,
    version: i16,
    read_committed: bool,
    follower: Option<Follower>,
    consumer_rack: Option<&str>,
    listener: &str,
) -> (Vec<Fetched>, usize, bool) {
    let mut out = Vec::with_capacity(wanted.len());
    let mut remaining = max_bytes;
    let mut total = 0usize;
    let mut errored = false;
    // v3+: the first batch found is returned whole even if over the limits, so consumers can
    // always make progress (KIP-74).
    let mut min_one = version >= 3;
    for w in wanted {
        let mut region = None;
        let mut pd = PartitionData::default();
        pd.partition_index = w.partition;
        pd.high_watermark = -1;
        if read_committed {
            pd.aborted_transactions = Some(Vec::new());
        }
        let fenced = w
            .hosted
            .as_ref()
            .and_then(|p| errors::leader_epoch_check(w.current_leader_epoch, p.leader_epoch()));
        match (&w.hosted, w.error.or(fenced), follower) {
            (_, Some(code), _) => {
                pd.error_code = code;
                errored = true;
            }
            (None, None, _) => {
                pd.error_code = api.not_leader_error(w.topic.as_deref().unwrap_or(""), w.partition);
                errored = true;
            }
            // Kafka's followerReplicaOrThrow: a broker that is not a replica gets no data and
            // does not count towards the high watermark. With a leader epoch in the request,
            // the leader may just not have learnt of a new replica yet, so the follower is
            // told to retry (UNKNOWN_LEADER_EPOCH).
            (Some(p), None, Some(follower)) if !p.has_follower(follower.id) => {
                tracing::debug!(
                    topic = p.topic,
                    partition = p.partition,
                    replica_id = follower.id,
                    "fetch from a broker that is not a replica"
                );
                pd.error_code = if w.current_leader_epoch >= 0 {
                    ResponseError::UnknownLeaderEpoch.code()
                } else {
                    ResponseError::NotLeaderOrFollower.code()
                };
                errored = true;
            }
            (Some(p), None, Some(follower)) => {
                let limit = w.max_bytes.min(remaining);
                match api
                    .replicas
                    .read_for_follower(
                        p,
                        follower.id,
                        follower.live,
                        w.offset,
                        w.last_fetched_epoch,
                        w.log_start_offset,
                        limit,
                        min_one,
                    )
                    .await
                {
                    Ok(r) => {
                        set_offsets(&mut pd, version, r.high_watermark, r.log_start_offset);
                        if let Some(proposal) = r.isr_proposal {
                            api.replicas.propose_isr(p, proposal);
                        }
                        if let Some((epoch, end_offset)) = r.diverging {
                            pd.diverging_epoch.epoch = epoch;
                            pd.diverging_epoch.end_offset = end_offset;
                            // The follower must truncate before anything else: answer now.
                            errored = true;
                        }
                        let n = r.records.as_ref().map_or(0, |r| r.len);
                        if n > 0 {
                            min_one = false;
                        }
                        total += n;
                        remaining = remaining.saturating_sub(n);
                        region = r.records;
                    }
                    Err(e) => {
                        let (hw, start) = p
                            .inspect_log(|log| (log.high_watermark(), log.log_start_offset()))
                            .await
                            .unwrap_or((-1, -1));
                        set_offsets(&mut pd, version, hw, start);
                        pd.error_code = e.kafka_error_code();
                        errored = true;
                    }
                }
            }
            // Kafka's readFromLocalLog: a consumer the selector sends elsewhere gets the
            // offsets and the replica, no records, and an answer now.
            (Some(p), None, None)
                if let Some(id) = consumer_rack
                    .and_then(|rack| preferred_read_replica(api, p, w.offset, rack, listener)) =>
            {
                let (hw, start, lso) = log_offsets(p).await;
                set_offsets(&mut pd, version, hw, start);
                pd.last_stable_offset = lso;
                pd.preferred_read_replica = BrokerId(id);
                errored = true;
            }
            (Some(p), None, None) => {
                let limit = w.max_bytes.min(remaining);
                let read = if read_committed {
                    api.replicas
                        .read_committed(p, w.offset, limit, min_one)
                        .await
                        .map(|(r, aborted)| (r, Some(aborted)))
                } else {
                    api.replicas
                        .locate(p, w.offset, limit, min_one)
                        .await
                        .map(|r| (r, None))
                };
                match read {
                    Ok((r, aborted)) => {
                        set_offsets(&mut pd, version, r.high_watermark, r.log_start_offset);
                        pd.last_stable_offset = r.last_stable_offset;
                        if let Some(aborted) = aborted {
                            pd.aborted_transactions = Some(
                                aborted
                                    .into_iter()
                                    .map(|t| {
                                        let mut a = AbortedTransaction::default();
                                        a.producer_id = ProducerId(t.producer_id);
                                        a.first_offset = t.first_offset;
                                        a
                                    })
                                    .collect(),
                            );
                        }
                        let n = r.records.as_ref().map_or(0, |r| r.len);
                        if n > 0 {
                            min_one = false;
                        }
                        total += n;
                        remaining = remaining.saturating_sub(n);
                        region = r.records;
                    }
                    Err(e) => {
                        let (hw, start, lso) = log_offsets(p).await;
                        set_offsets(&mut pd, version, hw, start);
                        pd.last_stable_offset = lso;
                        pd.error_code = if matches!(e, LogError::OffsetOutOfRange { .. }) {
                            ResponseError::OffsetOutOfRange.code()
                        } else {
                            e.kafka_error_code()
                        };
                        errored = true;
                    }
                }
            }
        }
        // Empty records, not null ones, when there are none (or they are in `region`).
        pd.records = Some(bytes::Bytes::new());
        out.push(Fetched {
            topic_index: w.topic_index,
            data: pd,
            region: region.filter(|r| r.len > 0),
        });
    }
    (out, total, errored)
}

/// The follower a consumer in `rack` should read `p` from at `offset`, when this broker leads
/// it and the replica selector picks another replica (Kafka's `findPreferredReadReplica`). Only
/// replicas reachable on the client's listener are offered, as Kafka drops those without an
/// endpoint there.
fn preferred_read_replica(
    api: &Api,
    p: &Partition,
    offset: i64,
    rack: &str,
    listener: &str,
) -> Option<i32> {
    let mut views = p.read_replicas(offset).into_iter().filter_map(
        |(id, log_end_offset, since_caught_up_ms)| {
            let broker = api.cache.broker(id)?;
            broker.endpoint(listener)?;
            Some(ReplicaView {
                id,
                rack: broker.rack,
                log_end_offset,
                since_caught_up_ms,
            })
        },
    );
    let leader = views.next().filter(|l| l.id == api.config.broker_id)?;
    let followers: Vec<ReplicaView> = views.collect();
    selector::select(api.config.replica_selector, rack, &leader, &followers)
}

/// Kafka's `maybeConvertFetchedData`, for a consumer: a zstd topic is refused below v10 (which
/// introduced zstd), and v0-3 get the stored batches down-converted to the message format they
/// know, unless the topic disables it (`message.downconversion.enable`). Followers are never
/// converted. Quotas and `max_bytes` count the bytes as stored, as in Kafka.
async fn convert_for_old_consumer(
    p: &Arc<Partition>,
    fetched: &mut Fetched,
    version: i16,
    fetch_offset: i64,
) {
    if version >= 10 {
        return;
    }
    let pd = &mut fetched.data;
    pd.error_code = errors::storage_error_for_old_fetch(version, pd.error_code);
    let refuse = |pd: &mut PartitionData, code: i16| {
        *pd = PartitionData::default();
        pd.partition_index = p.partition;
        pd.high_watermark = -1;
        pd.error_code = code;
        pd.records = Some(bytes::Bytes::new());
    };
    let config = p
        .inspect_log(|log| {
            let c = log.config();
            (
                c.compression == TopicCompression::Codec(compression::ZSTD),
                c.message_downconversion_enable,
            )
        })
        .await;
    let (zstd_topic, enabled) = match config {
        Ok(c) => c,
        Err(e) => {
            fetched.region = None;
            return refuse(pd, e.kafka_error_code());
        }
    };
    if zstd_topic {
        fetched.region = None;
        return refuse(pd, ResponseError::UnsupportedCompressionType.code());
    }
    let Some(magic) = down_convert::magic_for_fetch_version(version) else {
        return;
    };
    if !enabled {
        fetched.region = None;
        return refuse(pd, ResponseError::UnsupportedVersion.code());
    }
    // Converted records are new bytes, in memory.
    let Some(region) = fetched.region.take() else {
        return;
    };
    let converted = crate::replica::blocking(move || {
        let stored = region.read().map_err(|e| LogError::io("<segment>", e))?;
        down_convert::down_convert(&stored, magic, fetch_offset)
    })
    .await;
    match converted {
        Ok(c) => {
            crate::metrics::global().fetch_converted(&p.topic, c.converted);
            pd.records = Some(c.records);
        }
        Err(e) => {
            tracing::debug!(topic = p.topic, partition = p.partition, error = %e, "down-conversion failed");
            refuse(pd, e.kafka_error_code());
        }
    }
}

/// The high watermark, log start offset and last stable offset that an answer without records
/// carries, taken without waiting behind an append; -1 each (Kafka's unknown offset) should
/// the blocking pool fail.
async fn log_offsets(p: &Arc<Partition>) -> (i64, i64, i64) {
    p.inspect_log(|log| {
        (
            log.high_watermark(),
            log.log_start_offset(),
            log.last_stable_offset(),
        )
    })
    .await
    .unwrap_or((-1, -1, -1))
}

/// Sets what the version has: the log start offset from v5 (the last stable offset, from v4,
/// is set by the caller).
fn set_offsets(pd: &mut PartitionData, version: i16, high_watermark: i64, log_start_offset: i64) {
    pd.high_watermark = high_watermark;
    if version >= 5 {
        pd.log_start_offset = log_start_offset;
    }
}

/// A fetch that failed as a whole (a session error): the top-level code, no partitions.
fn session_error(code: i16, session_id: i32) -> FetchResponse {
    let mut response = FetchResponse::default();
    response.error_code = code;
    response.session_id = session_id;
    response
}

/// The answer, partitions grouped by topic in request order; records to be sent from files
/// stay in their regions, aligned with the partitions as they are encoded.
fn build_response(
    keys: &[(TopicName, uuid::Uuid)],
    partitions: Vec<Fetched>,
    version: i16,
    session_id: i32,
) -> FetchAnswer {
    let mut topics: Vec<FetchableTopicResponse> = keys
        .iter()
        .map(|(name, id)| {
            let mut t = FetchableTopicResponse::default();
            if version >= 13 {
                t.topic_id = *id;
            } else {
                t.topic = name.clone();
            }
            t
        })
        .collect();
    let mut regions: Vec<Vec<Option<FileRegion>>> = vec![Vec::new(); topics.len()];
    for f in partitions {
        if let (Some(t), Some(r)) = (
            topics.get_mut(f.topic_index),
            regions.get_mut(f.topic_index),
        ) {
            t.partitions.push(f.data);
            r.push(f.region);
        }
    }
    // An incremental answer leaves out topics none of whose partitions changed.
    topics.retain(|t| !t.partitions.is_empty());
    let mut response = FetchResponse::default();
    response.session_id = session_id;
    response.responses = topics;
    FetchAnswer {
        response,
        regions: regions.into_iter().flatten().collect(),
    }
}
