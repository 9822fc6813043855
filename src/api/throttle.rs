//! Client quotas on the request path, in one place (Kafka's `RequestHandlerHelper` and the
//! quota calls of `KafkaApis`): every client request's handling time is recorded against its
//! request quota, a Produce's size against its produce quota, a Fetch's answer against its fetch
//! quota; the largest throttle earned goes into the response's `throttle_time_ms` and is what
//! the connection then stays muted for (KIP-219).
//!
//! Handlers learn who they serve through a task-local set for the request (`scope`), so the
//! fetch handler can cap and throttle its answer without another argument in every route.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use kafka_protocol::messages::{ApiKey, RequestKind, ResponseKind};

use super::{Api, ClientInfo};
use crate::quota::{QuotaType, Who};

/// APIs brokers send each other (Kafka's `clusterAction` APIs): exempt from the request quota.
const CLUSTER_ACTIONS: &[ApiKey] = &[
    ApiKey::LeaderAndIsr,
    ApiKey::StopReplica,
    ApiKey::UpdateMetadata,
    ApiKey::ControlledShutdown,
    ApiKey::WriteTxnMarkers,
    ApiKey::AlterPartition,
];

/// The client a request is measured against.
pub(super) struct RequestQuota {
    user: String,
    client_id: String,
    /// Broker-to-broker traffic (cluster actions, follower fetches): recorded apart, never
    /// throttled.
    exempt: bool,
    /// The throttle the handler itself earned (fetch bytes, controller mutations), in ms.
    handler_ms: AtomicU64,
}

impl RequestQuota {
    /// None for requests from this broker itself, which no quota applies to.
    pub(super) fn of(
        client: &ClientInfo,
        client_id: Option<&str>,
        request: &RequestKind,
    ) -> Option<RequestQuota> {
        let principal = client.principal.as_ref()?;
        let key = request_key(request);
        let follower = matches!(request, RequestKind::Fetch(f) if f.replica_id.0 >= 0 || f.replica_state.replica_id.0 >= 0);
        Some(RequestQuota {
            user: principal.name.clone(),
            client_id: client_id.unwrap_or("").to_string(),
            exempt: follower || key.is_some_and(|k| CLUSTER_ACTIONS.contains(&k)),
            handler_ms: AtomicU64::new(0),
        })
    }

    fn who(&self) -> Who<'_> {
        Who {
            user: &self.user,
            client_id: &self.client_id,
        }
    }
}

fn request_key(request: &RequestKind) -> Option<ApiKey> {
    Some(match request {
        RequestKind::LeaderAndIsr(_) => ApiKey::LeaderAndIsr,
        RequestKind::StopReplica(_) => ApiKey::StopReplica,
        RequestKind::UpdateMetadata(_) => ApiKey::UpdateMetadata,
        RequestKind::ControlledShutdown(_) => ApiKey::ControlledShutdown,
        RequestKind::WriteTxnMarkers(_) => ApiKey::WriteTxnMarkers,
        RequestKind::AlterPartition(_) => ApiKey::AlterPartition,
        _ => return None,
    })
}

tokio::task_local! {
    static REQUEST: Arc<RequestQuota>;
}

/// A future's own time: the time spent in its `poll`s, which is the time a handler keeps a
/// thread busy (Kafka's request-handler thread time), not the time it waits (a parked fetch).
struct Timed<F> {
    inner: Pin<Box<F>>,
    busy: Duration,
}

impl<F: Future> Future for Timed<F> {
    type Output = (F::Output, Duration);

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let start = Instant::now();
        let polled = self.inner.as_mut().poll(cx);
        self.busy += start.elapsed();
        polled.map(|out| (out, self.busy))
    }
}

/// Kafka's `nanosToPercentage`: thread time as percent of one thread for one second.
fn percent(busy: Duration) -> f64 {
    busy.as_nanos() as f64 * 100.0 / 1e9
}

/// What a handled request earned.
pub(super) struct Outcome<T> {
    pub output: T,
    /// The throttle to put in the response and to mute the connection for, in ms.
    pub throttle_ms: u64,
}

/// Runs a request's handler as `quota`'s client and records what it used: its time against
/// the request quota and, for Produce (`frame_len`: the whole request, as Kafka counts it),
/// its size against the produce quota. `answered`: whether a response is owed (acks=0 produce
/// is exempt from the request quota, as in Kafka).
pub(super) async fn run<T>(
    api: &Api,
    quota: Option<RequestQuota>,
    key: ApiKey,
    frame_len: usize,
    handler: impl Future<Output = T>,
    answered: impl FnOnce(&T) -> bool,
) -> Outcome<T> {
    let timed = Timed {
        inner: Box::pin(handler),
        busy: Duration::ZERO,
    };
    let Some(quota) = quota.map(Arc::new) else {
        let (output, _) = timed.await;
        return Outcome {
            output,
            throttle_ms: 0,
        };
    };
    let (output, busy) = REQUEST.scope(quota.clone(), timed).await;
    let quotas = api.configs.quotas();
    let who = quota.who();
    if quota.exempt {
        quotas.record_exempt(percent(busy));
        return Outcome {
            output,
            throttle_ms: 0,
        };
    }
    let request_ms = if answered(&output) {
        quotas.record(QuotaType::Request, who, percent(busy))
    } else {
        0
    };
    let (bandwidth, bandwidth_ms) = match key {
        ApiKey::Produce => (
            QuotaType::Produce,
            quotas.record(QuotaType::Produce, who, frame_len as f64),
        ),
        ApiKey::Fetch => (QuotaType::Fetch, quota.handler_ms.load(Ordering::Relaxed)),
        ApiKey::CreateTopics | ApiKey::DeleteTopics | ApiKey::CreatePartitions => (
            QuotaType::ControllerMutation,
            quota.handler_ms.load(Ordering::Relaxed),
        ),
        _ => (QuotaType::Request, 0),
    };
    // The larger throttle is applied and shows in that quota's throttle-time metric.
    let throttle_ms = if bandwidth_ms > request_ms {
        quotas.throttled(bandwidth, who, bandwidth_ms);
        bandwidth_ms
    } else {
        quotas.throttled(QuotaType::Request, who, request_ms);
        request_ms
    };
    Outcome {
        output,
        throttle_ms,
    }
}

/// The most a fetch may return to the current client: its fetch quota's worth of one quota
/// window (`maxValueInQuotaWindow`), so a consumer is never handed more than it may take.
/// None: no fetch quota applies (or the fetch is a follower's).
pub fn fetch_cap(api: &Api) -> Option<usize> {
    REQUEST
        .try_with(|q| {
            if q.exempt {
                return None;
            }
            let max = api
                .configs
                .quotas()
                .max_value_in_window(QuotaType::Fetch, q.who())?;
            Some(max.clamp(0.0, i32::MAX as f64) as usize)
        })
        .ok()
        .flatten()
}

/// Records a fetch answer of `bytes` against the current client's fetch quota; the throttle
/// in ms when it is violated, in which case the bytes are taken back: the fetch must then be
/// answered empty, as Kafka answers it (a consumer that got its data anyway would never be
/// held to its quota).
/// `bytes` is computed only when quotas apply.
pub fn record_fetch(api: &Api, bytes: impl FnOnce() -> usize) -> u64 {
    REQUEST
        .try_with(|q| {
            if q.exempt || !api.configs.quotas().enabled(QuotaType::Fetch) {
                return 0;
            }
            let bytes = bytes();
            let quotas = api.configs.quotas();
            let ms = quotas.record(QuotaType::Fetch, q.who(), bytes as f64);
            if ms > 0 {
                quotas.unrecord(QuotaType::Fetch, q.who(), bytes as f64);
                q.handler_ms.store(ms, Ordering::Relaxed);
            }
            ms
        })
        .unwrap_or(0)
}

/// Records `partitions` about to be created or deleted by the current client against its
/// controller mutation quota (KIP-599); false when a strict request (CreateTopics v6+,
/// DeleteTopics v5+, CreatePartitions v3+) must refuse this topic with
/// THROTTLING_QUOTA_EXCEEDED because the client's bucket is empty. The throttle earned goes
/// into the response.
pub fn record_mutations(api: &Api, partitions: i64, strict: bool) -> bool {
    REQUEST
        .try_with(|q| {
            if q.exempt || partitions <= 0 {
                return true;
            }
            let (allowed, ms) =
                match api
                    .configs
                    .quotas()
                    .record_mutations(q.who(), partitions as f64, strict)
                {
                    Ok(ms) => (true, ms),
                    Err(ms) => (false, ms),
                };
            q.handler_ms.fetch_max(ms, Ordering::Relaxed);
            allowed
        })
        .unwrap_or(true)
}

/// Kafka's message for THROTTLING_QUOTA_EXCEEDED.
pub const THROTTLING_QUOTA_EXCEEDED: &str = "The throttling quota has been exceeded.";

/// Sets `throttle_time_ms` in a response whose version has the field (KIP-219 versions and
/// earlier ones alike: Kafka reports the throttle in every version that can carry it).
pub(super) fn set_throttle_time(response: &mut ResponseKind, version: i16, ms: u64) {
    let ms = ms.min(i32::MAX as u64) as i32;
    macro_rules! throttle_field {
        ($( $kind:ident from $min:literal ),* $(,)?) => {
            match response {
                $( ResponseKind::$kind(r) if version >= $min => r.throttle_time_ms = ms, )*
                _ => {}
            }
        };
    }
    throttle_field! {
        Produce from 1, Fetch from 1, ListOffsets from 2, Metadata from 3, OffsetCommit from 3,
        OffsetFetch from 3, FindCoordinator from 1, JoinGroup from 2, Heartbeat from 1,
        LeaveGroup from 1, SyncGroup from 1, DescribeGroups from 1, ListGroups from 1,
        ApiVersions from 1, CreateTopics from 2, DeleteTopics from 1, DeleteRecords from 0,
        InitProducerId from 0, OffsetForLeaderEpoch from 2, AddPartitionsToTxn from 0,
        AddOffsetsToTxn from 0, EndTxn from 0, TxnOffsetCommit from 0, DescribeAcls from 0,
        CreateAcls from 0, DeleteAcls from 0, DescribeConfigs from 0, AlterConfigs from 0,
        AlterReplicaLogDirs from 0, DescribeLogDirs from 0, CreatePartitions from 0,
        CreateDelegationToken from 0, RenewDelegationToken from 0, ExpireDelegationToken from 0,
        DescribeDelegationToken from 0, DeleteGroups from 0, ElectLeaders from 0,
        IncrementalAlterConfigs from 0, AlterPartitionReassignments from 0,
        ListPartitionReassignments from 0, OffsetDelete from 0, DescribeClientQuotas from 0,
        AlterClientQuotas from 0, DescribeUserScramCredentials from 0,
        AlterUserScramCredentials from 0, UpdateFeatures from 0, DescribeCluster from 0,
        DescribeProducers from 0, DescribeTransactions from 0, ListTransactions from 0,
    }
}
