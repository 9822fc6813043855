//! Every entry of the routing table answers: for each API the broker routes, at every version
//! it advertises, a minimal valid request gets a response with its correlation id (not a hang,
//! not a closed connection). The test reads the library's table, so a new entry is covered as
//! soon as it is added.

use crate::common;

use std::time::Duration;

use common::wire::{Conn, STORES, Store, start_broker, start_broker_on};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, StrBytes};
use odradek::api::{ROUTES, Route};

/// How long a handler may take on a minimal request. Generous for a loaded machine; a missing
/// answer fails after it rather than hanging the test.
const ANSWER_WITHIN: Duration = Duration::from_secs(10);

/// A broker id no broker has: ControlledShutdown for it changes nothing.
const NO_SUCH_BROKER: i32 = 1000;

/// An epoch older than any controller's: control requests carrying it are refused as stale, so
/// they change nothing in the broker the test goes on using.
const OLDER_THAN_ANY_CONTROLLER: i32 = -1;

/// The smallest valid request of an API: its defaults, plus what the defaults lack to be one
/// that is answered (acks=0 produce is not).
fn minimal_request(key: ApiKey) -> RequestKind {
    let name = || StrBytes::from_static_str("odradek-test");
    match key {
        ApiKey::Produce => ProduceRequest::default().with_acks(1).into(),
        ApiKey::Fetch => FetchRequest::default().into(),
        ApiKey::ListOffsets => ListOffsetsRequest::default().into(),
        ApiKey::OffsetForLeaderEpoch => OffsetForLeaderEpochRequest::default().into(),
        ApiKey::Metadata => MetadataRequest::default().into(),
        ApiKey::ApiVersions => ApiVersionsRequest::default()
            .with_client_software_name(name())
            .with_client_software_version(StrBytes::from_static_str("1.0"))
            .into(),
        ApiKey::SaslHandshake => SaslHandshakeRequest::default()
            .with_mechanism(StrBytes::from_static_str("PLAIN"))
            .into(),
        ApiKey::SaslAuthenticate => SaslAuthenticateRequest::default().into(),
        ApiKey::CreateTopics => CreateTopicsRequest::default().into(),
        ApiKey::DeleteTopics => DeleteTopicsRequest::default().into(),
        ApiKey::InitProducerId => InitProducerIdRequest::default().into(),
        ApiKey::CreatePartitions => CreatePartitionsRequest::default().into(),
        ApiKey::DeleteRecords => DeleteRecordsRequest::default().into(),
        ApiKey::DescribeConfigs => DescribeConfigsRequest::default().into(),
        ApiKey::AlterConfigs => AlterConfigsRequest::default().into(),
        ApiKey::DescribeCluster => DescribeClusterRequest::default().into(),
        ApiKey::FindCoordinator => FindCoordinatorRequest::default().into(),
        ApiKey::JoinGroup => JoinGroupRequest::default().into(),
        ApiKey::SyncGroup => SyncGroupRequest::default().into(),
        ApiKey::Heartbeat => HeartbeatRequest::default().into(),
        ApiKey::LeaveGroup => LeaveGroupRequest::default().into(),
        ApiKey::OffsetCommit => OffsetCommitRequest::default().into(),
        ApiKey::OffsetFetch => OffsetFetchRequest::default().into(),
        ApiKey::ListGroups => ListGroupsRequest::default().into(),
        ApiKey::DescribeGroups => DescribeGroupsRequest::default().into(),
        ApiKey::DeleteGroups => DeleteGroupsRequest::default().into(),
        ApiKey::OffsetDelete => OffsetDeleteRequest::default().into(),
        ApiKey::LeaderAndIsr => LeaderAndIsrRequest::default()
            .with_controller_epoch(OLDER_THAN_ANY_CONTROLLER)
            .into(),
        ApiKey::StopReplica => StopReplicaRequest::default()
            .with_controller_epoch(OLDER_THAN_ANY_CONTROLLER)
            .into(),
        ApiKey::UpdateMetadata => UpdateMetadataRequest::default()
            .with_controller_epoch(OLDER_THAN_ANY_CONTROLLER)
            .into(),
        ApiKey::IncrementalAlterConfigs => IncrementalAlterConfigsRequest::default().into(),
        ApiKey::ControlledShutdown => ControlledShutdownRequest::default()
            .with_broker_id(BrokerId(NO_SUCH_BROKER))
            .into(),
        ApiKey::AlterPartition => AlterPartitionRequest::default()
            .with_broker_id(BrokerId(NO_SUCH_BROKER))
            .into(),
        ApiKey::ElectLeaders => ElectLeadersRequest::default().into(),
        ApiKey::AlterPartitionReassignments => AlterPartitionReassignmentsRequest::default().into(),
        ApiKey::ListPartitionReassignments => ListPartitionReassignmentsRequest::default().into(),
        ApiKey::AddPartitionsToTxn => AddPartitionsToTxnRequest::default().into(),
        ApiKey::AddOffsetsToTxn => AddOffsetsToTxnRequest::default().into(),
        ApiKey::EndTxn => EndTxnRequest::default().into(),
        ApiKey::WriteTxnMarkers => WriteTxnMarkersRequest::default().into(),
        ApiKey::TxnOffsetCommit => TxnOffsetCommitRequest::default().into(),
        ApiKey::DescribeTransactions => DescribeTransactionsRequest::default().into(),
        ApiKey::DescribeProducers => DescribeProducersRequest::default().into(),
        ApiKey::ListTransactions => ListTransactionsRequest::default().into(),
        // ANY (LITERAL patterns, which v0 can say): UNKNOWN, the default 0, closes the
        // connection as in Kafka.
        ApiKey::DescribeAcls => DescribeAclsRequest::default()
            .with_resource_type_filter(1)
            .with_pattern_type_filter(3)
            .with_operation(1)
            .with_permission_type(1)
            .into(),
        ApiKey::CreateAcls => CreateAclsRequest::default().into(),
        ApiKey::DeleteAcls => DeleteAclsRequest::default().into(),
        ApiKey::DescribeUserScramCredentials => {
            DescribeUserScramCredentialsRequest::default().into()
        }
        ApiKey::AlterUserScramCredentials => AlterUserScramCredentialsRequest::default().into(),
        ApiKey::CreateDelegationToken => CreateDelegationTokenRequest::default().into(),
        ApiKey::RenewDelegationToken => RenewDelegationTokenRequest::default().into(),
        ApiKey::ExpireDelegationToken => ExpireDelegationTokenRequest::default().into(),
        ApiKey::DescribeDelegationToken => DescribeDelegationTokenRequest::default().into(),
        ApiKey::DescribeClientQuotas => DescribeClientQuotasRequest::default().into(),
        ApiKey::AlterClientQuotas => AlterClientQuotasRequest::default().into(),
        ApiKey::DescribeLogDirs => DescribeLogDirsRequest::default().into(),
        ApiKey::AlterReplicaLogDirs => AlterReplicaLogDirsRequest::default().into(),
        other => panic!("{other:?} is routed: add its minimal request to minimal_request"),
    }
}

/// Sends `route`'s minimal request at `version` on `c`; an error says what came back instead of
/// a response to it.
async fn answered(c: &mut Conn, route: &Route, version: i16) -> Result<(), String> {
    let id = c
        .send_request(route.key, version, minimal_request(route.key))
        .await;
    let Ok(frame) = tokio::time::timeout(ANSWER_WITHIN, c.read_frame()).await else {
        return Err(format!("no answer within {ANSWER_WITHIN:?}"));
    };
    let Some(mut frame) = frame else {
        return Err(if c.is_closed().await {
            "connection closed".to_string()
        } else {
            "no answer".to_string()
        });
    };
    let header = ResponseHeader::decode(&mut frame, route.key.response_header_version(version))
        .map_err(|e| format!("a response header that does not decode: {e}"))?;
    if header.correlation_id != id {
        return Err(format!(
            "answer to correlation id {} instead of {id}",
            header.correlation_id
        ));
    }
    ResponseKind::decode(route.key, &mut frame, version)
        .map(|_| ())
        .map_err(|e| format!("an answer that does not decode: {e}"))
}

/// On both metadata stores: several handlers (AlterUserScramCredentials, the controller's
/// requests, config changes) read and write the store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_answers_a_minimal_request_at_every_version() {
    for store in STORES {
        every_route_answers_on(store).await;
    }
}

async fn every_route_answers_on(store: Store) {
    let tmp = tempfile::tempdir().unwrap();
    let Some((broker, _zk)) = start_broker_on(store, tmp.path(), &[]).await else {
        return;
    };
    let mut failures = Vec::new();
    let mut c = Conn::connect(broker.port).await;
    for route in ROUTES {
        for version in route.versions() {
            if let Err(e) = answered(&mut c, route, version).await {
                failures.push(format!("{:?} v{version}: {e}", route.key));
                // What is left of this connection is not to be trusted for the next request.
                c = Conn::connect(broker.port).await;
            }
        }
    }
    broker.shutdown().await.unwrap();
    assert!(failures.is_empty(), "{store:?}: {failures:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_versions_advertises_exactly_the_routing_table() {
    let tmp = tempfile::tempdir().unwrap();
    let broker = start_broker(tmp.path(), &[]).await;
    let mut c = Conn::connect(broker.port).await;
    let advertised: Vec<(i16, i16, i16)> = c
        .send(
            3,
            ApiVersionsRequest::default()
                .with_client_software_name(StrBytes::from_static_str("odradek-test"))
                .with_client_software_version(StrBytes::from_static_str("1.0")),
        )
        .await
        .api_keys
        .iter()
        .map(|v| (v.api_key, v.min_version, v.max_version))
        .collect();
    let table: Vec<(i16, i16, i16)> = ROUTES
        .iter()
        .map(|r| (r.key as i16, r.min_version, r.max_version))
        .collect();
    broker.shutdown().await.unwrap();
    assert_eq!(advertised, table);
}
