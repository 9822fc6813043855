//! The routing table: every API this broker answers, one line each, with the versions it
//! answers, the permission Kafka checks for it and its handler. ApiVersions advertises exactly
//! this table and dispatch routes by it, so an API cannot be advertised without a handler, nor
//! routed without stating its ACL: the table and the dispatch `match` are generated from the
//! same rows, and a row without either does not compile.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind, ResponseKind};

use super::refusal::Refuse;
use super::{
    Answer, Api, ClientInfo, NoResponse, acls, alter_configs, alter_partition, api_versions,
    client_quotas, cluster, configs, controller_ops, delegation_tokens, delete_records,
    describe_producers, fetch, groups, incremental_alter_configs, leader_and_isr, list_offsets,
    log_dirs, metadata, offsets, offsets_for_leader_epoch, produce, producer_ids, sasl,
    scram_credentials, stop_replica, topics, transactions, update_metadata,
};
use crate::security::acl::{CLUSTER_NAME, Operation, ResourceType};

/// One API this broker answers, and the permission Kafka's `KafkaApis` checks for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    pub key: ApiKey,
    pub min_version: i16,
    pub max_version: i16,
    pub acl: Acl,
}

/// What a request of an API must be allowed to do (security-and-quotas.md §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acl {
    /// No ACL is checked: ApiVersions and SASL, which a client sends before it has logged in,
    /// and APIs whose refusals are not ACL decisions (renewing or expiring a delegation token
    /// is for its owner and renewers).
    None,
    /// The whole request needs one of these operations on the cluster. `Api::route` checks it
    /// before the handler runs and answers a refusal with CLUSTER_AUTHORIZATION_FAILED in every
    /// error field (`refusal::Refuse`), as Kafka's `authorizeClusterOperation` does.
    Cluster(&'static [Operation]),
    /// The handler checks these per item of the request (each topic, group, transactional id
    /// it names), since the answer to a refusal is per item or hides the item. Listed here for
    /// documentation and for the tests that go through every route.
    Handler(&'static [(ResourceType, Operation)]),
}

impl Route {
    pub fn versions(&self) -> std::ops::RangeInclusive<i16> {
        self.min_version..=self.max_version
    }
}

/// The route of an API key, if this broker answers it.
pub fn route(key: ApiKey) -> Option<&'static Route> {
    ROUTES.iter().find(|r| r.key == key)
}

/// The versions of an API this broker answers.
pub fn supported_versions(key: ApiKey) -> Option<(i16, i16)> {
    route(key).map(|r| (r.min_version, r.max_version))
}

/// The `Acl` of a row: `none()`, `cluster(Op, ...)` or `handler((Type, Op), ...)`.
macro_rules! acl {
    (none ()) => {
        Acl::None
    };
    (cluster ($($op:ident),+)) => {
        Acl::Cluster(&[$(Operation::$op),+])
    };
    (handler ($(($resource:ident, $op:ident)),+)) => {
        Acl::Handler(&[$((ResourceType::$resource, Operation::$op)),+])
    };
}

/// For an `Acl::Cluster` row, returns the refusal from `Api::route` unless the client may do
/// one of the operations on the cluster (only a denial of the last is logged: the others are
/// alternatives, as Kafka's `logIfDenied = false` checks); other rows leave the checks to their
/// handler.
macro_rules! refuse_unless_allowed {
    (cluster ($($op:ident),+), $api:ident, $client:ident, $key:ident, $request:ident, $version:ident) => {
        let ops = [$(Operation::$op),+];
        let allowed = ops.iter().enumerate().any(|(i, op)| {
            if i + 1 < ops.len() {
                $api.authorized_quietly($client, *op, ResourceType::Cluster, CLUSTER_NAME)
            } else {
                $api.authorized_on_cluster($client, *op)
            }
        });
        if !allowed {
            return Ok(Ok(ResponseKind::$key(Refuse::refuse(
                $request,
                ResponseError::ClusterAuthorizationFailed.code(),
                $version,
            ))
            .into()));
        }
    };
    ($kind:ident $acl:tt, $api:ident, $client:ident, $key:ident, $request:ident, $version:ident) => {};
}

/// Generates `ROUTES` and `Api::route` from one list of rows
/// `Key(request) min..=max, acl => handler`, where the ACL is what Kafka checks for the API
/// (see `acl!`) and the handler is an expression of the request and of the names bound in the
/// first line (the API, the request header, the client and the request's version), evaluating
/// to the response body (`?` on `Err(NoResponse)`: none is owed). `Key` names the `ApiKey`, the
/// `RequestKind` and the `ResponseKind` variant alike.
macro_rules! routes {
    (
        ($api:ident, $header:ident, $client:ident, $version:ident);
        $( $key:ident($request:ident) $min:literal ..= $max:literal, $kind:ident $acl:tt => $handler:expr, )*
    ) => {
        /// Every API this broker answers, with the versions it answers and its ACL.
        pub const ROUTES: &[Route] = &[
            $( Route { key: ApiKey::$key, min_version: $min, max_version: $max, acl: acl!($kind $acl) }, )*
        ];

        impl Api {
            /// Runs the handler of the request's route: `Ok(Err)` when no response is owed
            /// (acks=0 produce), `Err` with the request when no route takes it.
            pub(super) async fn route(
                &self,
                header: &RequestHeader,
                client: &ClientInfo,
                request: RequestKind,
            ) -> Result<Result<Answer, NoResponse>, RequestKind> {
                let $api = self;
                let $header = header;
                let $client = client;
                let $version = header.request_api_version;
                match request {
                    $( RequestKind::$key($request) => {
                        refuse_unless_allowed!($kind $acl, $api, $client, $key, $request, $version);
                        Ok(async { Ok(Answer::of(ResponseKind::$key, $handler)) }.await)
                    } )*
                    other => Err(other),
                }
            }
        }
    };
}

// Fetch v0-3 answers consumers in the magic 0/1 formats (log::down_convert), as Kafka 2.4-3.9 do
// (Kafka 4.0 removed them, KIP-896). Produce v0-2 (legacy message sets) are converted to magic 2
// on append.
routes! {
    (api, header, client, version);
    Produce(r) 0..=11, handler((TransactionalId, Write), (Topic, Write))
        => produce::handle(api, client, r, version).await?,
    // Followers need CLUSTER_ACTION, consumers READ on each topic.
    Fetch(r) 0..=17, handler((Cluster, ClusterAction), (Topic, Read))
        => fetch::handle(api, client, r, version).await,
    ListOffsets(r) 0..=9, handler((Topic, Describe))
        => list_offsets::handle(api, client, r, version).await,
    OffsetForLeaderEpoch(r) 0..=4, handler((Cluster, ClusterAction), (Topic, Describe))
        => offsets_for_leader_epoch::handle(api, client, r, version).await,
    // Auto-creation needs CREATE on the cluster or the topic; the cluster's authorized
    // operations (v8-10) DESCRIBE on it.
    Metadata(r) 0..=12, handler((Topic, Describe), (Cluster, Create), (Topic, Create), (Cluster, Describe))
        => metadata::handle(api, client, r, version).await,
    ApiVersions(r) 0..=4, none() => api_versions::handle(api, &r, version),
    // Authentication happens before requests reach the API layer (network::sasl); here only
    // the refusals for a connection that is already authenticated, or not on SASL.
    SaslHandshake(r) 0..=1, none() => sasl::handshake(r),
    SaslAuthenticate(r) 0..=2, none() => sasl::authenticate(r),
    CreateTopics(r) 0..=7, handler((Cluster, Create), (Topic, Create), (Topic, DescribeConfigs))
        => topics::create(api, client, r, version).await,
    DeleteTopics(r) 0..=6, handler((Topic, Delete), (Topic, Describe))
        => topics::delete(api, client, r, version).await,
    // Idempotent producers: IDEMPOTENT_WRITE on the cluster or WRITE on some topic.
    InitProducerId(r) 0..=5, handler((TransactionalId, Write), (Cluster, IdempotentWrite), (Topic, Write))
        => producer_ids::handle(api, client, r, version).await,
    CreatePartitions(r) 0..=3, handler((Topic, Alter))
        => topics::create_partitions(api, client, r, version).await,
    DeleteRecords(r) 0..=2, handler((Topic, Delete)) => delete_records::handle(api, client, r).await,
    DescribeConfigs(r) 0..=4, handler((Topic, DescribeConfigs), (Cluster, DescribeConfigs))
        => configs::describe(api, client, r, version).await,
    AlterConfigs(r) 0..=2, handler((Topic, AlterConfigs), (Cluster, AlterConfigs))
        => alter_configs::handle(api, client, r).await,
    // Nothing to describe the cluster; DESCRIBE for its authorized operations (KIP-430).
    DescribeCluster(r) 0..=1, handler((Cluster, Describe))
        => cluster::describe(api, client, r, version),
    FindCoordinator(r) 0..=4, handler((Group, Describe), (TransactionalId, Describe))
        => groups::find_coordinator(api, client, r, version).await,
    JoinGroup(r) 0..=9, handler((Group, Read)) => groups::join(api, header, client, r, version).await,
    SyncGroup(r) 0..=5, handler((Group, Read)) => groups::sync(api, client, r, version).await,
    Heartbeat(r) 0..=4, handler((Group, Read)) => groups::heartbeat(api, client, r),
    LeaveGroup(r) 0..=5, handler((Group, Read)) => groups::leave(api, client, r, version).await,
    OffsetCommit(r) 0..=9, handler((Group, Read), (Topic, Read))
        => offsets::commit(api, client, r, version).await,
    OffsetFetch(r) 0..=9, handler((Group, Describe), (Topic, Describe))
        => offsets::fetch(api, client, r, version),
    // DESCRIBE on the cluster lists every group, else those the client may describe.
    ListGroups(r) 0..=5, handler((Cluster, Describe), (Group, Describe))
        => groups::list(api, client, r, version),
    DescribeGroups(r) 0..=5, handler((Group, Describe)) => groups::describe(api, client, r, version),
    DeleteGroups(r) 0..=2, handler((Group, Delete)) => groups::delete(api, client, r).await,
    OffsetDelete(r) 0..=0, handler((Group, Delete), (Topic, Read))
        => offsets::delete(api, client, r).await,
    // From the controller (any broker may be it): the versions Kafka 3.9 brokers accept.
    LeaderAndIsr(r) 0..=7, cluster(ClusterAction) => leader_and_isr::handle(api, r, version).await,
    StopReplica(r) 0..=4, cluster(ClusterAction) => stop_replica::handle(api, r, version).await,
    UpdateMetadata(r) 0..=8, cluster(ClusterAction) => update_metadata::handle(api, r, version),
    IncrementalAlterConfigs(r) 0..=1, handler((Topic, AlterConfigs), (Cluster, AlterConfigs))
        => incremental_alter_configs::handle(api, client, r).await,
    // Answered by the active controller (NOT_CONTROLLER elsewhere).
    ControlledShutdown(r) 0..=3, cluster(ClusterAction)
        => controller_ops::controlled_shutdown(api, r).await,
    // From partition leaders at IBP 2.7-IV2 and later (AlterIsr in Kafka 2.7-2.8).
    AlterPartition(r) 0..=3, cluster(ClusterAction)
        => alter_partition::handle(api, r, version).await,
    ElectLeaders(r) 0..=2, cluster(Alter) => controller_ops::elect_leaders(api, r, version).await,
    AlterPartitionReassignments(r) 0..=0, cluster(Alter)
        => controller_ops::alter_reassignments(api, r).await,
    ListPartitionReassignments(r) 0..=0, cluster(Describe)
        => controller_ops::list_reassignments(api, r).await,
    // KIP-554 SCRAM credentials in `/config/users`: any broker describes, only the active
    // controller alters (NOT_CONTROLLER comes before the ALTER check, so the handler checks).
    DescribeUserScramCredentials(r) 0..=0, cluster(Describe)
        => scram_credentials::describe(api, r).await,
    AlterUserScramCredentials(r) 0..=0, handler((Cluster, Alter))
        => scram_credentials::alter(api, client, r).await,
    // Transactions. AddPartitionsToTxn v4+ is the batched form brokers use to verify a
    // transactional produce (CLUSTER_ACTION); v5 and EndTxn v5 need transaction.version 2
    // (KRaft only).
    AddPartitionsToTxn(r) 0..=4, handler((TransactionalId, Write), (Topic, Write), (Cluster, ClusterAction))
        => transactions::add_partitions(api, client, r, version).await,
    AddOffsetsToTxn(r) 0..=4, handler((TransactionalId, Write), (Group, Read))
        => transactions::add_offsets(api, client, r, version).await,
    EndTxn(r) 0..=4, handler((TransactionalId, Write)) => transactions::end_txn(api, client, r, version).await,
    // From transaction coordinators: ALTER on the cluster, or CLUSTER_ACTION.
    WriteTxnMarkers(r) 0..=1, cluster(Alter, ClusterAction) => transactions::write_markers(api, r).await,
    TxnOffsetCommit(r) 0..=4, handler((TransactionalId, Write), (Group, Read), (Topic, Read))
        => transactions::txn_offset_commit(api, client, r, version).await,
    // KIP-664: READ on each topic, checked before its existence.
    DescribeProducers(r) 0..=0, handler((Topic, Read))
        => describe_producers::handle(api, client, r).await,
    DescribeTransactions(r) 0..=0, handler((TransactionalId, Describe), (Topic, Describe))
        => transactions::describe(api, client, r),
    ListTransactions(r) 0..=1, handler((TransactionalId, Describe))
        => transactions::list(api, client, r, version),
    // ACLs: any broker answers (no controller routing in ZooKeeper mode); the handlers refuse
    // the whole request, in the shape of each response.
    DescribeAcls(r) 0..=3, handler((Cluster, Describe)) => acls::describe(api, client, r).await,
    CreateAcls(r) 0..=3, handler((Cluster, Alter)) => acls::create(api, client, r).await,
    DeleteAcls(r) 0..=3, handler((Cluster, Alter)) => acls::delete(api, client, r).await,
    // KIP-48 delegation tokens, handled by any broker (ZooKeeper mode). CREATE_TOKENS on the
    // owner to create a token for someone else; DESCRIBE on a token, or DESCRIBE_TOKENS on its
    // owner, to see one that is not the client's own. Renewing and expiring are the owner's and
    // renewers' by the token itself, not by ACL.
    CreateDelegationToken(r) 0..=3, handler((User, CreateTokens))
        => delegation_tokens::create(api, client, r, version).await,
    RenewDelegationToken(r) 0..=2, none() => delegation_tokens::renew(api, client, r).await,
    ExpireDelegationToken(r) 0..=2, none() => delegation_tokens::expire(api, client, r).await,
    DescribeDelegationToken(r) 0..=3, handler((DelegationToken, Describe), (User, DescribeTokens))
        => delegation_tokens::describe(api, client, r, version),
    // JBOD: any broker describes and moves its own replicas' logs. Refused DescribeLogDirs
    // gets CLUSTER_AUTHORIZATION_FAILED at the top (v3+) and no directories, as in Kafka 3.9.
    DescribeLogDirs(r) 0..=4, cluster(Describe) => log_dirs::describe(api, r, version).await,
    AlterReplicaLogDirs(r) 0..=2, cluster(Alter) => log_dirs::alter(api, r).await,
    // KIP-546 client quotas: any broker reads and writes the quota znodes.
    DescribeClientQuotas(r) 0..=1, handler((Cluster, DescribeConfigs))
        => client_quotas::describe(api, client, r).await,
    AlterClientQuotas(r) 0..=1, handler((Cluster, AlterConfigs))
        => client_quotas::alter(api, client, r).await,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_route_per_api_within_what_the_protocol_defines() {
        for (i, r) in ROUTES.iter().enumerate() {
            assert!(
                ROUTES[..i].iter().all(|o| o.key != r.key),
                "{:?} routed twice",
                r.key
            );
            let defined = r.key.valid_versions();
            assert!(
                r.min_version <= r.max_version
                    && r.min_version >= defined.min
                    && r.max_version <= defined.max,
                "{:?} v{}-v{} is outside v{}-v{}",
                r.key,
                r.min_version,
                r.max_version,
                defined.min,
                defined.max
            );
        }
    }
}
