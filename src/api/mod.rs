//! Request handling: one module per API family, routed from one table that is also what
//! ApiVersions advertises, so nothing unimplemented can be advertised.

pub mod alter_configs;
pub mod api_versions;
pub mod cluster;
pub mod configs;
pub mod controller_ops;
pub mod delete_records;
pub mod fetch;
pub mod fetch_session;
pub mod groups;
pub mod incremental_alter_configs;
pub mod leader_and_isr;
pub mod list_offsets;
pub mod metadata;
pub mod offsets;
pub mod offsets_for_leader_epoch;
pub mod produce;
pub mod producer_ids;
pub mod stop_replica;
pub mod topics;
pub mod transactions;
pub mod update_metadata;

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind, ResponseKind};
use kafka_protocol::protocol::Encodable;

/// A request being handled: resolves to the encoded response, `None` when none is owed.
pub type PendingResponse =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<Option<BytesMut>, String>> + Send>>;

use crate::config::BrokerConfig;
use crate::controller::Controller;
use crate::group::GroupCoordinator;
use crate::metadata::MetadataCache;
use crate::network::frame::{self, FrameError};
use crate::replica::ReplicaManager;
use crate::replica::config_changes::ConfigManager;
use crate::txn::TransactionCoordinator;
use crate::txn::producer_ids::ProducerIdManager;

/// Every API this broker answers, with the versions it answers. ApiVersions lists exactly these.
///
/// Fetch starts at v4: older versions need magic 0/1 down-conversion, which Kafka 4.0 removed as
/// well (KIP-896). Produce v0-2 (legacy message sets) are converted to magic 2 on append.
pub const SUPPORTED_APIS: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, 0, 11),
    (ApiKey::Fetch, 4, 17),
    (ApiKey::ListOffsets, 0, 9),
    (ApiKey::OffsetForLeaderEpoch, 0, 4),
    (ApiKey::Metadata, 0, 12),
    (ApiKey::ApiVersions, 0, 4),
    (ApiKey::CreateTopics, 0, 7),
    (ApiKey::DeleteTopics, 0, 6),
    (ApiKey::InitProducerId, 0, 5),
    (ApiKey::CreatePartitions, 0, 3),
    (ApiKey::DeleteRecords, 0, 2),
    (ApiKey::DescribeConfigs, 0, 4),
    (ApiKey::AlterConfigs, 0, 2),
    (ApiKey::DescribeCluster, 0, 1),
    (ApiKey::FindCoordinator, 0, 4),
    (ApiKey::JoinGroup, 0, 9),
    (ApiKey::SyncGroup, 0, 5),
    (ApiKey::Heartbeat, 0, 4),
    (ApiKey::LeaveGroup, 0, 5),
    (ApiKey::OffsetCommit, 0, 9),
    (ApiKey::OffsetFetch, 0, 9),
    (ApiKey::ListGroups, 0, 5),
    (ApiKey::DescribeGroups, 0, 5),
    (ApiKey::DeleteGroups, 0, 2),
    (ApiKey::OffsetDelete, 0, 0),
    // From the controller (any broker may be it): the versions Kafka 3.9 brokers accept.
    (ApiKey::LeaderAndIsr, 0, 7),
    (ApiKey::StopReplica, 0, 4),
    (ApiKey::UpdateMetadata, 0, 8),
    (ApiKey::IncrementalAlterConfigs, 0, 1),
    // Answered by the active controller (NOT_CONTROLLER elsewhere).
    (ApiKey::ControlledShutdown, 0, 3),
    (ApiKey::ElectLeaders, 0, 2),
    (ApiKey::AlterPartitionReassignments, 0, 0),
    (ApiKey::ListPartitionReassignments, 0, 0),
    // Transactions. AddPartitionsToTxn v4+ is the batched form brokers use to verify a
    // transactional produce; v5 and EndTxn v5 need transaction.version 2 (KRaft only).
    (ApiKey::AddPartitionsToTxn, 0, 4),
    (ApiKey::AddOffsetsToTxn, 0, 4),
    (ApiKey::EndTxn, 0, 4),
    (ApiKey::WriteTxnMarkers, 0, 1),
    (ApiKey::TxnOffsetCommit, 0, 4),
    (ApiKey::DescribeTransactions, 0, 0),
    (ApiKey::ListTransactions, 0, 1),
];

pub fn supported_versions(key: ApiKey) -> Option<(i16, i16)> {
    SUPPORTED_APIS
        .iter()
        .find(|(k, _, _)| *k == key)
        .map(|(_, min, max)| (*min, *max))
}

/// What a handler knows of the connection a request came on, besides the request header.
#[derive(Debug, Clone, Copy, Default)]
pub struct ClientInfo {
    /// The peer's address; None for requests that did not come over the network (the
    /// controller in this broker talking to it).
    pub address: Option<std::net::SocketAddr>,
}

impl ClientInfo {
    /// The client's host as Kafka reports it (`InetAddress.toString` of an address it did not
    /// resolve: "/127.0.0.1"), e.g. in DescribeGroups and in `__consumer_offsets` members.
    pub fn host(&self) -> String {
        match self.address.map(|a| a.ip()) {
            None => String::new(),
            Some(std::net::IpAddr::V4(ip)) => format!("/{ip}"),
            // Java writes IPv6 addresses in full, without the "::" shorthand.
            Some(std::net::IpAddr::V6(ip)) => {
                let parts: Vec<String> = ip.segments().iter().map(|s| format!("{s:x}")).collect();
                format!("/{}", parts.join(":"))
            }
        }
    }
}

pub struct Api {
    pub config: Arc<BrokerConfig>,
    pub cache: Arc<MetadataCache>,
    pub replicas: Arc<ReplicaManager>,
    pub controller: Arc<Controller>,
    pub producer_ids: ProducerIdManager,
    pub groups: Arc<GroupCoordinator>,
    pub txn: Arc<TransactionCoordinator>,
    pub configs: Arc<ConfigManager>,
    pub fetch_sessions: Arc<fetch_session::FetchSessionCache>,
}

impl Api {
    /// Parses one frame and starts its handler. An error here closes the connection, which is
    /// what Kafka does for frames it cannot parse and for APIs or versions it does not enable.
    /// The returned future produces the encoded response (`None` for acks=0 produce). The
    /// connection runs these one at a time, in arrival order: like Kafka, a broker handles a
    /// connection's requests sequentially, which is what keeps one producer's pipelined batches
    /// in order.
    pub fn dispatch(
        self: Arc<Self>,
        mut frame: Bytes,
        client: ClientInfo,
    ) -> Result<PendingResponse, FrameError> {
        let (key, version) = frame::peek_api(&frame)?;
        let api_key = ApiKey::try_from(key).map_err(|_| FrameError::UnknownApi(key))?;
        let (min, max) = supported_versions(api_key).ok_or(FrameError::UnknownApi(key))?;
        if api_key == ApiKey::ApiVersions && version > max {
            // KIP-511: answer in v0 with UNSUPPORTED_VERSION so the client retries with our max.
            let correlation_id = frame::correlation_id(&frame);
            let body = api_versions::unsupported_version_response();
            let out = frame::encode_response(correlation_id, 0, |b| {
                body.encode(b, 0).map_err(|e| e.to_string())
            })
            .map_err(FrameError::Malformed)?;
            return Ok(Box::pin(async move { Ok(Some(out)) }));
        }
        if version < min || version > max {
            return Err(FrameError::Malformed(format!(
                "{api_key:?} v{version} is not supported (v{min}-v{max})"
            )));
        }
        let header = frame::decode_header(&mut frame, api_key, version)?;
        let request = RequestKind::decode(api_key, &mut frame, version)
            .map_err(|e| FrameError::Malformed(format!("{api_key:?} v{version} body: {e}")))?;
        let span = tracing::debug_span!("request", api = ?api_key, version, correlation_id = header.correlation_id);
        let arrived = std::time::Instant::now();
        Ok(Box::pin(tracing::Instrument::instrument(
            async move {
                let _timer = RequestTimer {
                    api: api_key,
                    version,
                    arrived,
                };
                let Some(response) = self.handle(&header, &client, request).await else {
                    return Ok(None);
                };
                let header_version = api_key.response_header_version(version);
                // A response we cannot encode is our bug; the connection is closed rather than
                // leaving the client waiting for an answer that never comes.
                frame::encode_response(header.correlation_id, header_version, |b| {
                    response.encode(b, version).map_err(|e| e.to_string())
                })
                .map(Some)
                .map_err(|e| format!("{api_key:?} v{version}: {e}"))
            },
            span,
        )))
    }

    /// The error for a partition this broker does not lead: NOT_LEADER_OR_FOLLOWER when the
    /// partition exists (the client's metadata is stale), else UNKNOWN_TOPIC_OR_PARTITION.
    pub fn not_leader_error(&self, topic: &str, partition: i32) -> i16 {
        if self.cache.partition(topic, partition).is_some() {
            errors::NOT_LEADER_OR_FOLLOWER
        } else {
            errors::UNKNOWN_TOPIC_OR_PARTITION
        }
    }

    /// Fencing of LeaderAndIsr, UpdateMetadata and StopReplica: the error code when the request
    /// comes from a controller older than one already followed, or is addressed to an earlier
    /// registration of this broker.
    pub fn refuse_stale_controller(
        &self,
        api: ApiKey,
        controller_id: i32,
        controller_epoch: i32,
        broker_epoch: i64,
    ) -> Option<i16> {
        let code = self
            .cache
            .accept_controller(controller_id, controller_epoch, broker_epoch)
            .err()?;
        tracing::warn!(
            ?api,
            controller = controller_id,
            controller_epoch,
            broker_epoch,
            error = code,
            "refused a request from a stale controller"
        );
        Some(code)
    }

    /// A request from the controller running in this broker, handled without the network.
    pub async fn handle_local(&self, request: RequestKind, version: i16) -> Option<ResponseKind> {
        let mut header = RequestHeader::default();
        header.request_api_version = version;
        self.handle(&header, &ClientInfo::default(), request).await
    }

    async fn handle(
        &self,
        header: &RequestHeader,
        client: &ClientInfo,
        request: RequestKind,
    ) -> Option<ResponseKind> {
        let version = header.request_api_version;
        Some(match request {
            RequestKind::ApiVersions(r) => {
                ResponseKind::ApiVersions(api_versions::handle(&r, version))
            }
            RequestKind::Metadata(r) => {
                ResponseKind::Metadata(metadata::handle(self, r, version).await)
            }
            RequestKind::Produce(r) => {
                ResponseKind::Produce(produce::handle(self, r, version).await?)
            }
            RequestKind::Fetch(r) => ResponseKind::Fetch(fetch::handle(self, r, version).await),
            RequestKind::ListOffsets(r) => {
                ResponseKind::ListOffsets(list_offsets::handle(self, r, version).await)
            }
            RequestKind::OffsetForLeaderEpoch(r) => ResponseKind::OffsetForLeaderEpoch(
                offsets_for_leader_epoch::handle(self, r, version).await,
            ),
            RequestKind::CreateTopics(r) => {
                ResponseKind::CreateTopics(topics::create(self, r, version).await)
            }
            RequestKind::DeleteTopics(r) => {
                ResponseKind::DeleteTopics(topics::delete(self, r, version).await)
            }
            RequestKind::DescribeConfigs(r) => {
                ResponseKind::DescribeConfigs(configs::describe(self, r, version).await)
            }
            RequestKind::AlterConfigs(r) => {
                ResponseKind::AlterConfigs(alter_configs::handle(self, r).await)
            }
            RequestKind::IncrementalAlterConfigs(r) => ResponseKind::IncrementalAlterConfigs(
                incremental_alter_configs::handle(self, r).await,
            ),
            RequestKind::DeleteRecords(r) => {
                ResponseKind::DeleteRecords(delete_records::handle(self, r).await)
            }
            RequestKind::DescribeCluster(r) => {
                ResponseKind::DescribeCluster(cluster::describe(self, r, version))
            }
            RequestKind::CreatePartitions(r) => {
                ResponseKind::CreatePartitions(topics::create_partitions(self, r, version).await)
            }
            RequestKind::InitProducerId(r) => {
                ResponseKind::InitProducerId(producer_ids::handle(self, r, version).await)
            }
            RequestKind::FindCoordinator(r) => {
                ResponseKind::FindCoordinator(groups::find_coordinator(self, r, version).await)
            }
            RequestKind::JoinGroup(r) => {
                ResponseKind::JoinGroup(groups::join(self, header, client, r, version).await)
            }
            RequestKind::SyncGroup(r) => {
                ResponseKind::SyncGroup(groups::sync(self, r, version).await)
            }
            RequestKind::Heartbeat(r) => ResponseKind::Heartbeat(groups::heartbeat(self, r)),
            RequestKind::LeaveGroup(r) => {
                ResponseKind::LeaveGroup(groups::leave(self, r, version).await)
            }
            RequestKind::ListGroups(r) => ResponseKind::ListGroups(groups::list(self, r, version)),
            RequestKind::DescribeGroups(r) => {
                ResponseKind::DescribeGroups(groups::describe(self, r, version))
            }
            RequestKind::DeleteGroups(r) => {
                ResponseKind::DeleteGroups(groups::delete(self, r).await)
            }
            RequestKind::OffsetCommit(r) => {
                ResponseKind::OffsetCommit(offsets::commit(self, r, version).await)
            }
            RequestKind::OffsetFetch(r) => {
                ResponseKind::OffsetFetch(offsets::fetch(self, r, version))
            }
            RequestKind::OffsetDelete(r) => {
                ResponseKind::OffsetDelete(offsets::delete(self, r).await)
            }
            RequestKind::AddPartitionsToTxn(r) => ResponseKind::AddPartitionsToTxn(
                transactions::add_partitions(self, r, version).await,
            ),
            RequestKind::AddOffsetsToTxn(r) => {
                ResponseKind::AddOffsetsToTxn(transactions::add_offsets(self, r, version).await)
            }
            RequestKind::EndTxn(r) => {
                ResponseKind::EndTxn(transactions::end_txn(self, r, version).await)
            }
            RequestKind::TxnOffsetCommit(r) => ResponseKind::TxnOffsetCommit(
                transactions::txn_offset_commit(self, r, version).await,
            ),
            RequestKind::WriteTxnMarkers(r) => {
                ResponseKind::WriteTxnMarkers(transactions::write_markers(self, r).await)
            }
            RequestKind::DescribeTransactions(r) => {
                ResponseKind::DescribeTransactions(transactions::describe(self, r))
            }
            RequestKind::ListTransactions(r) => {
                ResponseKind::ListTransactions(transactions::list(self, r, version))
            }
            RequestKind::LeaderAndIsr(r) => {
                ResponseKind::LeaderAndIsr(leader_and_isr::handle(self, r, version).await)
            }
            RequestKind::UpdateMetadata(r) => {
                ResponseKind::UpdateMetadata(update_metadata::handle(self, r, version))
            }
            RequestKind::StopReplica(r) => {
                ResponseKind::StopReplica(stop_replica::handle(self, r, version).await)
            }
            RequestKind::ControlledShutdown(r) => {
                ResponseKind::ControlledShutdown(controller_ops::controlled_shutdown(self, r).await)
            }
            RequestKind::ElectLeaders(r) => {
                ResponseKind::ElectLeaders(controller_ops::elect_leaders(self, r, version).await)
            }
            RequestKind::AlterPartitionReassignments(r) => {
                ResponseKind::AlterPartitionReassignments(
                    controller_ops::alter_reassignments(self, r).await,
                )
            }
            RequestKind::ListPartitionReassignments(r) => ResponseKind::ListPartitionReassignments(
                controller_ops::list_reassignments(self, r).await,
            ),
            other => {
                // Unreachable: dispatch only decodes APIs in SUPPORTED_APIS.
                tracing::error!(request = ?std::mem::discriminant(&other), "no handler");
                return None;
            }
        })
    }
}

/// Records a request's count and total time when its handling ends, however it ends.
struct RequestTimer {
    api: ApiKey,
    version: i16,
    arrived: std::time::Instant,
}

impl Drop for RequestTimer {
    fn drop(&mut self) {
        crate::metrics::global().request_done(
            &format!("{:?}", self.api),
            self.version,
            self.arrived.elapsed(),
        );
    }
}

/// Kafka protocol error codes used across handlers.
pub mod errors {
    pub const NONE: i16 = 0;
    pub const OFFSET_OUT_OF_RANGE: i16 = 1;
    pub const CORRUPT_MESSAGE: i16 = 2;
    pub const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
    pub const LEADER_NOT_AVAILABLE: i16 = 5;
    pub const NOT_LEADER_OR_FOLLOWER: i16 = 6;
    pub const INVALID_TOPIC_EXCEPTION: i16 = 17;
    pub const INVALID_REQUIRED_ACKS: i16 = 21;
    pub const UNSUPPORTED_VERSION: i16 = 35;
    pub const INVALID_TIMESTAMP: i16 = 32;
    pub const INVALID_CONFIG: i16 = 40;
    pub const INVALID_REQUEST: i16 = 42;
    pub const POLICY_VIOLATION: i16 = 44;
    pub const NOT_ENOUGH_REPLICAS: i16 = 19;
    pub const UNSUPPORTED_COMPRESSION_TYPE: i16 = 76;
    pub const UNKNOWN_SERVER_ERROR: i16 = -1;
    pub const INVALID_RECORD: i16 = 87;
    pub const FENCED_LEADER_EPOCH: i16 = 74;
    pub const UNKNOWN_LEADER_EPOCH: i16 = 75;
    pub const UNKNOWN_TOPIC_ID: i16 = 100;
    pub const UNSUPPORTED_ENDPOINT_TYPE: i16 = 119;

    /// KIP-320: a client that names the leader epoch it expects is told when it is behind
    /// (fenced) or ahead (unknown) of this leader. -1 means it did not say.
    pub fn leader_epoch_check(requested: i32, ours: i32) -> Option<i16> {
        match requested {
            r if r < 0 => None,
            r if r < ours => Some(FENCED_LEADER_EPOCH),
            r if r > ours => Some(UNKNOWN_LEADER_EPOCH),
            _ => None,
        }
    }
}
