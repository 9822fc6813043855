//! The routing table: every API this broker answers, one line each, with the versions it
//! answers and its handler. ApiVersions advertises exactly this table and dispatch routes by
//! it, so an API cannot be advertised without a handler: the table and the dispatch `match` are
//! generated from the same rows, and a row without a handler does not compile.

use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind, ResponseKind};

use super::{
    Api, ClientInfo, acls, alter_configs, api_versions, client_quotas, cluster, configs,
    controller_ops, delegation_tokens, delete_records, fetch, groups, incremental_alter_configs,
    leader_and_isr, list_offsets, metadata, offsets, offsets_for_leader_epoch, produce,
    producer_ids, sasl, scram_credentials, stop_replica, topics, transactions, update_metadata,
};

/// One API this broker answers. The place for what else a request of this API needs before
/// its handler runs (e.g. the permission it requires).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    pub key: ApiKey,
    pub min_version: i16,
    pub max_version: i16,
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

/// Generates `ROUTES` and `Api::route` from one list of rows
/// `Key(request) min..=max => handler`, where the handler is an expression of the request and
/// of the names bound in the first line (the API, the request header, the client and the
/// request's version), evaluating to the response body (`?` on `None`: no response owed).
/// `Key` names the `ApiKey`, the `RequestKind` and the `ResponseKind` variant alike.
macro_rules! routes {
    (
        ($api:ident, $header:ident, $client:ident, $version:ident);
        $( $key:ident($request:ident) $min:literal ..= $max:literal => $handler:expr, )*
    ) => {
        /// Every API this broker answers, with the versions it answers.
        pub const ROUTES: &[Route] = &[
            $( Route { key: ApiKey::$key, min_version: $min, max_version: $max }, )*
        ];

        impl Api {
            /// Runs the handler of the request's route: `Ok(None)` when no response is owed
            /// (acks=0 produce), `Err` with the request when no route takes it.
            pub(super) async fn route(
                &self,
                header: &RequestHeader,
                client: &ClientInfo,
                request: RequestKind,
            ) -> Result<Option<ResponseKind>, RequestKind> {
                let $api = self;
                let $header = header;
                let $client = client;
                let $version = header.request_api_version;
                match request {
                    $( RequestKind::$key($request) => {
                        Ok(async { Some(ResponseKind::$key($handler)) }.await)
                    } )*
                    other => Err(other),
                }
            }
        }
    };
}

// Fetch starts at v4: older versions need magic 0/1 down-conversion, which Kafka 4.0 removed as
// well (KIP-896). Produce v0-2 (legacy message sets) are converted to magic 2 on append.
routes! {
    (api, header, client, version);
    Produce(r) 0..=11 => produce::handle(api, r, version).await?,
    Fetch(r) 4..=17 => fetch::handle(api, r, version).await,
    ListOffsets(r) 0..=9 => list_offsets::handle(api, r, version).await,
    OffsetForLeaderEpoch(r) 0..=4 => offsets_for_leader_epoch::handle(api, r, version).await,
    Metadata(r) 0..=12 => metadata::handle(api, client, r, version).await,
    ApiVersions(r) 0..=4 => api_versions::handle(&r, version),
    // Authentication happens before requests reach the API layer (network::sasl); here only
    // the refusals for a connection that is already authenticated, or not on SASL.
    SaslHandshake(r) 0..=1 => sasl::handshake(r),
    SaslAuthenticate(r) 0..=2 => sasl::authenticate(r),
    CreateTopics(r) 0..=7 => topics::create(api, r, version).await,
    DeleteTopics(r) 0..=6 => topics::delete(api, r, version).await,
    InitProducerId(r) 0..=5 => producer_ids::handle(api, r, version).await,
    CreatePartitions(r) 0..=3 => topics::create_partitions(api, r, version).await,
    DeleteRecords(r) 0..=2 => delete_records::handle(api, r).await,
    DescribeConfigs(r) 0..=4 => configs::describe(api, r, version).await,
    AlterConfigs(r) 0..=2 => alter_configs::handle(api, r).await,
    DescribeCluster(r) 0..=1 => cluster::describe(api, client, r, version),
    FindCoordinator(r) 0..=4 => groups::find_coordinator(api, client, r, version).await,
    JoinGroup(r) 0..=9 => groups::join(api, header, client, r, version).await,
    SyncGroup(r) 0..=5 => groups::sync(api, r, version).await,
    Heartbeat(r) 0..=4 => groups::heartbeat(api, r),
    LeaveGroup(r) 0..=5 => groups::leave(api, r, version).await,
    OffsetCommit(r) 0..=9 => offsets::commit(api, r, version).await,
    OffsetFetch(r) 0..=9 => offsets::fetch(api, r, version),
    ListGroups(r) 0..=5 => groups::list(api, r, version),
    DescribeGroups(r) 0..=5 => groups::describe(api, r, version),
    DeleteGroups(r) 0..=2 => groups::delete(api, r).await,
    OffsetDelete(r) 0..=0 => offsets::delete(api, r).await,
    // From the controller (any broker may be it): the versions Kafka 3.9 brokers accept.
    LeaderAndIsr(r) 0..=7 => leader_and_isr::handle(api, r, version).await,
    StopReplica(r) 0..=4 => stop_replica::handle(api, r, version).await,
    UpdateMetadata(r) 0..=8 => update_metadata::handle(api, r, version),
    IncrementalAlterConfigs(r) 0..=1 => incremental_alter_configs::handle(api, r).await,
    // Answered by the active controller (NOT_CONTROLLER elsewhere).
    ControlledShutdown(r) 0..=3 => controller_ops::controlled_shutdown(api, r).await,
    ElectLeaders(r) 0..=2 => controller_ops::elect_leaders(api, r, version).await,
    AlterPartitionReassignments(r) 0..=0 => controller_ops::alter_reassignments(api, r).await,
    ListPartitionReassignments(r) 0..=0 => controller_ops::list_reassignments(api, r).await,
    // KIP-554 SCRAM credentials in `/config/users`: any broker describes, only the active
    // controller alters.
    DescribeUserScramCredentials(r) 0..=0 => scram_credentials::describe(api, r).await,
    AlterUserScramCredentials(r) 0..=0 => scram_credentials::alter(api, r).await,
    // Transactions. AddPartitionsToTxn v4+ is the batched form brokers use to verify a
    // transactional produce; v5 and EndTxn v5 need transaction.version 2 (KRaft only).
    AddPartitionsToTxn(r) 0..=4 => transactions::add_partitions(api, r, version).await,
    AddOffsetsToTxn(r) 0..=4 => transactions::add_offsets(api, r, version).await,
    EndTxn(r) 0..=4 => transactions::end_txn(api, r, version).await,
    WriteTxnMarkers(r) 0..=1 => transactions::write_markers(api, r).await,
    TxnOffsetCommit(r) 0..=4 => transactions::txn_offset_commit(api, r, version).await,
    DescribeTransactions(r) 0..=0 => transactions::describe(api, r),
    ListTransactions(r) 0..=1 => transactions::list(api, r, version),
    // ACLs: any broker answers (no controller routing in ZooKeeper mode).
    DescribeAcls(r) 0..=3 => acls::describe(api, client, r).await,
    CreateAcls(r) 0..=3 => acls::create(api, client, r).await,
    DeleteAcls(r) 0..=3 => acls::delete(api, client, r).await,
    // KIP-48 delegation tokens, handled by any broker (ZooKeeper mode).
    CreateDelegationToken(r) 0..=3 => delegation_tokens::create(api, client, r, version).await,
    RenewDelegationToken(r) 0..=2 => delegation_tokens::renew(api, client, r).await,
    ExpireDelegationToken(r) 0..=2 => delegation_tokens::expire(api, client, r).await,
    DescribeDelegationToken(r) 0..=3 => delegation_tokens::describe(api, client, r, version),
    // KIP-546 client quotas: any broker reads and writes the quota znodes.
    DescribeClientQuotas(r) 0..=1 => client_quotas::describe(api, client, r).await,
    AlterClientQuotas(r) 0..=1 => client_quotas::alter(api, client, r).await,
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
