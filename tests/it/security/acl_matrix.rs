//! The ACL matrix: for every API in the routing table, a principal granted exactly the ACLs
//! Kafka requires for it is served, and a principal without them gets Kafka's refusal (the
//! resource-specific error code, or the item left out of the answer where Kafka hides it).
//! The cases are checked against `odradek::api::ROUTES`: a route without a case fails, and so
//! does a case that needs an ACL its route's table entry does not state.
//!
//! One broker per metadata store, SASL PLAIN users: `admin` (super user) sets things up and
//! grants ACLs with CreateAcls, each case's allowed principal `User:caseN` gets only its case's
//! grants, and `User:nobody` gets none. Delegation tokens are enabled, so that their APIs answer.

use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::messages::*;
use odradek::api::{Acl, ROUTES};
use odradek::client::{Connection, Security};
use odradek::security::acl::{Operation, ResourceType};
use odradek::security::sasl::Mechanism;

use super::{connect, login};
use crate::common::client_batch;
use crate::common::wire::{STORES, Store, fetch_request, produce_request, s, start_broker_on};

const TOPIC: &str = "matrix";
const GROUP: &str = "matrix-group";
const TXN: &str = "matrix-txn";

const TOPIC_AUTHORIZATION_FAILED: i16 = 29;
const GROUP_AUTHORIZATION_FAILED: i16 = 30;
const CLUSTER_AUTHORIZATION_FAILED: i16 = 31;
const TRANSACTIONAL_ID_AUTHORIZATION_FAILED: i16 = 53;
const DELEGATION_TOKEN_AUTHORIZATION_FAILED: i16 = 65;
const AUTHORIZATION_ERRORS: [i16; 5] = [
    TOPIC_AUTHORIZATION_FAILED,
    GROUP_AUTHORIZATION_FAILED,
    CLUSTER_AUTHORIZATION_FAILED,
    TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
    DELEGATION_TOKEN_AUTHORIZATION_FAILED,
];
/// DELEGATION_TOKEN_NOT_FOUND: a made-up token's HMAC.
const TOKEN_NOT_FOUND: i16 = 62;

/// Errors an allowed principal may still meet in a case, for reasons that are not
/// authorization: the coordinators' internal topics still being created (15, 16, 14), a
/// request made up for the test that the handler refuses on its merits.
const COORDINATOR_STARTING: [i16; 3] = [14, 15, 16];

/// One ACL the allowed principal of a case is granted: literal resource, any host.
type Grant = (ResourceType, &'static str, Operation);

/// What the principal without ACLs gets.
enum Denied {
    /// This error code, somewhere in the response.
    Error(i16),
    /// An answer without this name in it (Kafka hides what the client may not see), which the
    /// allowed principal's answer has.
    Hidden(&'static str),
    /// The authorized operations the response reports: none for the principal without ACLs,
    /// some for the allowed one (KIP-430).
    NoOperations,
    /// Nothing is checked for this API: both get an answer without authorization errors.
    Open,
}

struct Case {
    key: ApiKey,
    /// The highest version to send at (the broker's own if lower).
    version: i16,
    grants: &'static [Grant],
    request: fn() -> RequestKind,
    denied: Denied,
    /// Error codes the allowed principal may get besides NONE.
    allowed_errors: &'static [i16],
}

fn topic(name: &str) -> TopicName {
    TopicName(s(name))
}

fn one_topic_metadata(name: &str) -> RequestKind {
    crate::common::wire::metadata_request(Some(&[name]), true).into()
}

fn offsets_commit() -> RequestKind {
    let p = offset_commit_request::OffsetCommitRequestPartition::default()
        .with_partition_index(0)
        .with_committed_offset(0);
    let t = offset_commit_request::OffsetCommitRequestTopic::default()
        .with_name(topic(TOPIC))
        .with_partitions(vec![p]);
    OffsetCommitRequest::default()
        .with_group_id(GroupId(s(GROUP)))
        .with_generation_id_or_member_epoch(-1)
        .with_topics(vec![t])
        .into()
}

fn init_producer_id(transactional_id: Option<&str>) -> RequestKind {
    InitProducerIdRequest::default()
        .with_transactional_id(transactional_id.map(|t| TransactionalId(s(t))))
        .with_transaction_timeout_ms(60_000)
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1)
        .into()
}

fn add_partitions_v3() -> RequestKind {
    let t = add_partitions_to_txn_request::AddPartitionsToTxnTopic::default()
        .with_name(topic(TOPIC))
        .with_partitions(vec![0]);
    AddPartitionsToTxnRequest::default()
        .with_v3_and_below_transactional_id(TransactionalId(s(TXN)))
        .with_v3_and_below_producer_id(ProducerId(1000))
        .with_v3_and_below_producer_epoch(0)
        .with_v3_and_below_topics(vec![t])
        .into()
}

fn config_resource(resource_type: i8, name: &str) -> RequestKind {
    let r = describe_configs_request::DescribeConfigsResource::default()
        .with_resource_type(resource_type)
        .with_resource_name(s(name));
    DescribeConfigsRequest::default()
        .with_resources(vec![r])
        .into()
}

fn create_token(owner: Option<&str>) -> RequestKind {
    CreateDelegationTokenRequest::default()
        .with_owner_principal_type(owner.map(|_| s("User")))
        .with_owner_principal_name(owner.map(s))
        .with_max_lifetime_ms(-1)
        .into()
}

/// Every case, at least one per route. Routes of other API families add theirs here.
fn cases() -> Vec<Case> {
    use Operation::*;
    use ResourceType::{Cluster, Group, Topic, TransactionalId as Txn, User};
    const C: &str = odradek::security::acl::CLUSTER_NAME;
    vec![
        Case {
            key: ApiKey::Produce,
            version: 9,
            grants: &[(Topic, TOPIC, Write)],
            request: || produce_request(TOPIC, 0, client_batch(0, 1, 8, 0, 0), 1).into(),
            denied: Denied::Error(TOPIC_AUTHORIZATION_FAILED),
            allowed_errors: &[],
        },
        Case {
            key: ApiKey::Fetch,
            version: 12,
            grants: &[(Topic, TOPIC, Read)],
            request: || fetch_request(TOPIC, 0, 0, 0).into(),
            denied: Denied::Error(TOPIC_AUTHORIZATION_FAILED),
            allowed_errors: &[],
        },
        // A follower's fetch: CLUSTER_ACTION, refused per partition as a topic error. The
        // broker asking is no replica, which the allowed one is told.
        Case {
            key: ApiKey::Fetch,
            version: 12,
            grants: &[(Cluster, C, ClusterAction)],
            request: || {
                let mut r = fetch_request(TOPIC, 0, 0, 0);
                r.replica_id = BrokerId(7);
                r.into()
            },
            denied: Denied::Error(TOPIC_AUTHORIZATION_FAILED),
            allowed_errors: &[6, 74],
        },
        Case {
            key: ApiKey::ListOffsets,
            version: 7,
            grants: &[(Topic, TOPIC, Describe)],
            request: || {
                let p = list_offsets_request::ListOffsetsPartition::default()
                    .with_partition_index(0)
                    .with_timestamp(-1)
                    .with_current_leader_epoch(-1);
                let t = list_offsets_request::ListOffsetsTopic::default()
                    .with_name(topic(TOPIC))
                    .with_partitions(vec![p]);
                ListOffsetsRequest::default()
                    .with_replica_id(BrokerId(-1))
                    .with_topics(vec![t])
                    .into()
            },
            denied: Denied::Error(TOPIC_AUTHORIZATION_FAILED),
            allowed_errors: &[],
        },
        Case {
            key: ApiKey::OffsetForLeaderEpoch,
            version: 4,
            grants: &[(Topic, TOPIC, Describe)],
            request: || {
                let p = offset_for_leader_epoch_request::OffsetForLeaderPartition::default()
                    .with_partition(0)
                    .with_current_leader_epoch(-1)
                    .with_leader_epoch(0);
                let t = offset_for_leader_epoch_request::OffsetForLeaderTopic::default()
                    .with_topic(topic(TOPIC))
                    .with_partitions(vec![p]);
                OffsetForLeaderEpochRequest::default()
                    .with_replica_id(BrokerId(-1))
                    .with_topics(vec![t])
                    .into()
            },
            denied: Denied::Error(TOPIC_AUTHORIZATION_FAILED),
            allowed_errors: &[],
        },
        Case {
            key: ApiKey::Metadata,
            version: 12,
            grants: &[(Topic, TOPIC, Describe)],
            request: || one_topic_metadata(TOPIC),
            denied: Denied::Error(TOPIC_AUTHORIZATION_FAILED),
            allowed_errors: &[],
        },
        // All topics: those the client may not describe are left out.
        Case {
            key: ApiKey::Metadata,
            version: 12,
            grants: &[(Topic, TOPIC, Describe)],
            request: || MetadataRequest::default().with_topics(None).into(),
            denied: Denied::Hidden(TOPIC),
            allowed_errors: &[],
        },
        // Auto-creation needs CREATE besides DESCRIBE (here on the topic).
        Case {
            key: ApiKey::Metadata,
            version: 12,
            grants: &[
                (Topic, "matrix-auto", Describe),
                (Topic, "matrix-auto", Create),
            ],
            request: || one_topic_metadata("matrix-auto"),
            denied: Denied::Error(TOPIC_AUTHORIZATION_FAILED),
            allowed_errors: &[5],
        },
        Case {
            key: ApiKey::Metadata,
            version: 10,
            grants: &[(Cluster, C, Describe)],
            request: || {
                MetadataRequest::default()
                    .with_topics(Some(vec![]))
                    .with_include_cluster_authorized_operations(true)
                    .into()
            },
            denied: Denied::NoOperations,
            allowed_errors: &[],
        },
        Case {
            key: ApiKey::ApiVersions,
            version: 3,
            grants: &[],
            request: || {
                ApiVersionsRequest::default()
                    .with_client_software_name(s("matrix"))
                    .with_client_software_version(s("1"))
                    .into()
            },
            denied: Denied::Open,
            allowed_errors: &[],
        },
        // On a connection already logged in both are refused alike, as not in a SASL state.
        Case {
            key: ApiKey::SaslHandshake,
            version: 1,
            grants: &[],
            request: || {
                SaslHandshakeRequest::default()
                    .with_mechanism(s("PLAIN"))
                    .into()
            },
            denied: Denied::Open,
            allowed_errors: &[34],
        },
        Case {
            key: ApiKey::SaslAuthenticate,
            version: 2,
            grants: &[],
            request: || SaslAuthenticateRequest::default().into(),
            denied: Denied::Open,
            allowed_errors: &[34],
        },
        Case {
            key: ApiKey::CreateTopics,
            version: 7,
            grants: &[
                (Topic, "matrix-created", Create),
                (Topic, "matrix-created", DescribeConfigs),
            ],
            request: || {
                let t = create_topics_request::CreatableTopic::default()
                    .with_name(topic("matrix-created"))
                    .with_num_partitions(1)
                    .with_replication_factor(1);
                CreateTopicsRequest::default()
                    .with_topics(vec![t])
                    .with_timeout_ms(10_000)
                    .into()
            },
            denied: Denied::Error(TOPIC_AUTHORIZATION_FAILED),
            allowed_errors: &[],
        },
        Case {
            key: ApiKey::DeleteTopics,
            version: 5,
            grants: &[(Topic, "matrix-deleted", Delete)],
            request: || {
                DeleteTopicsRequest::default()
                    .with_topic_names(vec![topic("matrix-deleted")])
                    .with_timeout_ms(10_000)
                    .into()
            },
            denied: Denied::Error(TOPIC_AUTHORIZATION_FAILED),
            allowed_errors: &[],
        },
        Case {
            key: ApiKey::InitProducerId,
            version: 4,
            grants: &[(Cluster, C, IdempotentWrite)],
            request: || init_producer_id(None),
            denied: Denied::Error(CLUSTER_AUTHORIZATION_FAILED),
            allowed_errors: &[],
        },
        // An idempotent producer may also do with WRITE on some topic.
        Case {
            key: ApiKey::InitProducerId,
            version: 4,
            grants: &[(Topic, TOPIC, Write)],
            request: || init_producer_id(None),
            denied: Denied::Error(CLUSTER_AUTHORIZATION_FAILED),
            allowed_errors: &[],
        },
        Case {
            key: ApiKey::InitProducerId,
            version: 4,
            grants: &[(Txn, "matrix-txn-init", Write)],
            request: || init_producer_id(Some("matrix-txn-init")),
            denied: Denied::Error(TRANSACTIONAL_ID_AUTHORIZATION_FAILED),
            allowed_errors: &COORDINATOR_STARTING,
        },
        Case {
            key: ApiKey::CreatePartitions,
            version: 3,
            grants: &[(Topic, "matrix-grown", Alter)],
            request: || {
                let t = create_partitions_request::CreatePartitionsTopic::default()
                    .with_name(topic("matrix-grown"))
                    .with_count(2)
                    // Null: Kafka's placement (an empty list is one assignment short).
                    .with_assignments(None);
                CreatePartitionsRequest::default()
                    .with_topics(vec![t])
                    .with_timeout_ms(10_000)
                    .into()
            },
            denied: Denied::Error(TOPIC_AUTHORIZATION_FAILED),
            allowed_errors: &[],
        },
        Case {
            key: ApiKey::DescribeProducers,
            version: 0,
            grants: &[(Topic, TOPIC, Read)],
            request: || {
                let t = describe_producers_request::TopicRequest::default()
                    .with_name(topic(TOPIC))
                    .with_partition_indexes(vec![0]);
                DescribeProducersRequest::default()
                    .with_topics(vec![t])
                    .into()
            },
            denied: Denied::Error(TOPIC_AUTHORIZATION_FAILED),
            allowed_errors: &[],
        },
        Case {
            key: ApiKey::DeleteRecords,
            version: 2,
            grants: &[(Topic, TOPIC, Delete)],
            request: || {
                let p = delete_records_request::DeleteRecordsPartition::default()
                    .with_partition_index(0)
                    .with_offset(0);
                let t = delete_records_request::DeleteRecordsTopic::default()
                    .with_name(topic(TOPIC))
                    .with_partitions(vec![p]);
                DeleteRecordsRequest::default()
                    .with_topics(vec![t])
                    .with_timeout_ms(10_000)
                    .into()
            },
            denied: Denied::Error(TOPIC_AUTHORIZATION_FAILED),
            allowed_errors: &[],
        },
        Case {
            key: ApiKey::DescribeConfigs,
            version: 4,
            grants: &[(Topic, TOPIC, DescribeConfigs)],
            request: || config_resource(2, TOPIC),
            denied: Denied::Error(TOPIC_AUTHORIZATION_FAILED),
            allowed_errors: &[],
        },
        Case {
            key: ApiKey::DescribeConfigs,
            version: 4,
            grants: &[(Cluster, C, DescribeConfigs)],
            request: || config_resource(4, "0"),
            denied: Denied::Error(CLUSTER_AUTHORIZATION_FAILED),
            allowed_errors: &[],
        },
        Case {
            key: ApiKey::AlterConfigs,
            version: 2,
            grants: &[(Topic, TOPIC, AlterConfigs)],
            request: || {
                let c = alter_configs_request::AlterableConfig::default()
                    .with_name(s("retention.ms"))
                    .with_value(Some(s("100000")));
                let r = alter_configs_request::AlterConfigsResource::default()
                    .with_resource_type(2)
                    .with_resource_name(s(TOPIC))
                    .with_configs(vec![c]);
                AlterConfigsRequest::default()
                    .with_resources(vec![r])
                    .with_validate_only(true)
                    .into()
            },
            denied: Denied::Error(TOPIC_AUTHORIZATION_FAILED),
            allowed_errors: &[],
        },
        Case {
            key: ApiKey::IncrementalAlterConfigs,
            version: 1,
            grants: &[(Cluster, C, AlterConfigs)],
            request: || {
                let c = incremental_alter_configs_request::AlterableConfig::default()
                    .with_name(s("log.cleaner.threads"))
                    .with_config_operation(0)
                    .with_value(Some(s("1")));
                let r = incremental_alter_configs_request::AlterConfigsResource::default()
                    .with_resource_type(4)
                    .with_resource_name(s("0"))
                    .with_configs(vec![c]);
                IncrementalAlterConfigsRequest::default()
                    .with_resources(vec![r])
                    .with_validate_only(true)
                    .into()
            },
            denied: Denied::Error(CLUSTER_AUTHORIZATION_FAILED),
            allowed_errors: &[],
        },
        Case {
            key: ApiKey::DescribeCluster,
            version: 1,
            grants: &[(Cluster, C, Describe)],
            request: || {
                DescribeClusterRequest::default()
                    .with_include_cluster_authorized_operations(true)
                    .with_endpoint_type(1)
                    .into()
            },
            denied: Denied::NoOperations,
            allowed_errors: &[],
        },
        Case {
            key: ApiKey::FindCoordinator,
            version: 4,
            grants: &[(Group, GROUP, Describe)],
            request: || {
                FindCoordinatorRequest::default()
                    .with_key_type(0)
                    .with_coordinator_keys(vec![s(GROUP)])
                    .into()
            },
            denied: Denied::Error(GROUP_AUTHORIZATION_FAILED),
            allowed_errors: &COORDINATOR_STARTING,
        },
        Case {
            key: ApiKey::FindCoordinator,
            version: 4,
            grants: &[(Txn, TXN, Describe)],
            request: || {
                FindCoordinatorRequest::default()
                    .with_key_type(1)
                    .with_coordinator_keys(vec![s(TXN)])
                    .into()
            },
            denied: Denied::Error(TRANSACTIONAL_ID_AUTHORIZATION_FAILED),
            allowed_errors: &COORDINATOR_STARTING,
        },
        Case {
            key: ApiKey::JoinGroup,
            version: 9,
            grants: &[(Group, "matrix-join", Read)],
            request: || {
                let p = join_group_request::JoinGroupRequestProtocol::default()
                    .with_name(s("range"))
                    .with_metadata(Bytes::new());
                JoinGroupRequest::default()
                    .with_group_id(GroupId(s("matrix-join")))
                    .with_session_timeout_ms(10_000)
                    .with_rebalance_timeout_ms(10_000)
                    .with_protocol_type(s("consumer"))
                    .with_protocols(vec![p])
                    .into()
            },
            denied: Denied::Error(GROUP_AUTHORIZATION_FAILED),
            // MEMBER_ID_REQUIRED: the first step of a v4+ join.
            allowed_errors: &[79, 14, 15, 16],
        },
        Case {
            key: ApiKey::SyncGroup,
            version: 5,
            grants: &[(Group, GROUP, Read)],
            request: || {
                SyncGroupRequest::default()
                    .with_group_id(GroupId(s(GROUP)))
                    .with_generation_id(1)
                    .with_member_id(s("no-such-member"))
                    .into()
            },
            denied: Denied::Error(GROUP_AUTHORIZATION_FAILED),
            allowed_errors: &[25, 14, 15, 16],
        },
        Case {
            key: ApiKey::Heartbeat,
            version: 4,
            grants: &[(Group, GROUP, Read)],
            request: || {
                HeartbeatRequest::default()
                    .with_group_id(GroupId(s(GROUP)))
                    .with_generation_id(1)
                    .with_member_id(s("no-such-member"))
                    .into()
            },
            denied: Denied::Error(GROUP_AUTHORIZATION_FAILED),
            allowed_errors: &[25, 14, 15, 16],
        },
        Case {
            key: ApiKey::LeaveGroup,
            version: 5,
            grants: &[(Group, GROUP, Read)],
            request: || {
                let m = leave_group_request::MemberIdentity::default()
                    .with_member_id(s("no-such-member"));
                LeaveGroupRequest::default()
                    .with_group_id(GroupId(s(GROUP)))
                    .with_members(vec![m])
                    .into()
            },
            denied: Denied::Error(GROUP_AUTHORIZATION_FAILED),
            allowed_errors: &[25, 14, 15, 16],
        },
        Case {
            key: ApiKey::OffsetCommit,
            version: 8,
            grants: &[(Group, GROUP, Read), (Topic, TOPIC, Read)],
            request: offsets_commit,
            denied: Denied::Error(GROUP_AUTHORIZATION_FAILED),
            allowed_errors: &COORDINATOR_STARTING,
        },
        Case {
            key: ApiKey::OffsetFetch,
            version: 8,
            grants: &[(Group, GROUP, Describe), (Topic, TOPIC, Describe)],
            request: || {
                let t = offset_fetch_request::OffsetFetchRequestTopics::default()
                    .with_name(topic(TOPIC))
                    .with_partition_indexes(vec![0]);
                let g = offset_fetch_request::OffsetFetchRequestGroup::default()
                    .with_group_id(GroupId(s(GROUP)))
                    .with_topics(Some(vec![t]));
                OffsetFetchRequest::default().with_groups(vec![g]).into()
            },
            denied: Denied::Error(GROUP_AUTHORIZATION_FAILED),
            allowed_errors: &COORDINATOR_STARTING,
        },
        Case {
            key: ApiKey::ListGroups,
            version: 4,
            grants: &[(Group, GROUP, Describe)],
            request: || ListGroupsRequest::default().into(),
            denied: Denied::Hidden(GROUP),
            allowed_errors: &[],
        },
        Case {
            key: ApiKey::DescribeGroups,
            version: 5,
            grants: &[(Group, GROUP, Describe)],
            request: || {
                DescribeGroupsRequest::default()
                    .with_groups(vec![GroupId(s(GROUP))])
                    .with_include_authorized_operations(true)
                    .into()
            },
            denied: Denied::Error(GROUP_AUTHORIZATION_FAILED),
            allowed_errors: &COORDINATOR_STARTING,
        },
        Case {
            key: ApiKey::DeleteGroups,
            version: 2,
            grants: &[(Group, "matrix-no-group", Delete)],
            request: || {
                DeleteGroupsRequest::default()
                    .with_groups_names(vec![GroupId(s("matrix-no-group"))])
                    .into()
            },
            denied: Denied::Error(GROUP_AUTHORIZATION_FAILED),
            // GROUP_ID_NOT_FOUND: there is no such group to delete.
            allowed_errors: &[69, 14, 15, 16],
        },
        Case {
            key: ApiKey::OffsetDelete,
            version: 0,
            grants: &[(Group, GROUP, Delete), (Topic, TOPIC, Read)],
            request: || {
                let p = offset_delete_request::OffsetDeleteRequestPartition::default()
                    .with_partition_index(0);
                let t = offset_delete_request::OffsetDeleteRequestTopic::default()
                    .with_name(topic(TOPIC))
                    .with_partitions(vec![p]);
                OffsetDeleteRequest::default()
                    .with_group_id(GroupId(s(GROUP)))
                    .with_topics(vec![t])
                    .into()
            },
            denied: Denied::Error(GROUP_AUTHORIZATION_FAILED),
            allowed_errors: &COORDINATOR_STARTING,
        },
        // The controller's requests, made stale so that they change nothing.
        Case {
            key: ApiKey::LeaderAndIsr,
            version: 7,
            grants: &[(Cluster, C, ClusterAction)],
            request: || {
                LeaderAndIsrRequest::default()
                    .with_controller_epoch(-1)
                    .into()
            },
            denied: Denied::Error(CLUSTER_AUTHORIZATION_FAILED),
            allowed_errors: &[11],
        },
        Case {
            key: ApiKey::StopReplica,
            version: 4,
            grants: &[(Cluster, C, ClusterAction)],
            request: || {
                StopReplicaRequest::default()
                    .with_controller_epoch(-1)
                    .into()
            },
            denied: Denied::Error(CLUSTER_AUTHORIZATION_FAILED),
            allowed_errors: &[11],
        },
        Case {
            key: ApiKey::UpdateMetadata,
            version: 8,
            grants: &[(Cluster, C, ClusterAction)],
            request: || {
                UpdateMetadataRequest::default()
                    .with_controller_epoch(-1)
                    .into()
            },
            denied: Denied::Error(CLUSTER_AUTHORIZATION_FAILED),
            allowed_errors: &[11],
        },
        Case {
            key: ApiKey::ControlledShutdown,
            version: 3,
            grants: &[(Cluster, C, ClusterAction)],
            request: || {
                ControlledShutdownRequest::default()
                    .with_broker_id(BrokerId(1000))
                    .with_broker_epoch(-1)
                    .into()
            },
            denied: Denied::Error(CLUSTER_AUTHORIZATION_FAILED),
            // BROKER_NOT_AVAILABLE: no broker 1000 is registered.
            allowed_errors: &[8],
        },
        Case {
            key: ApiKey::AlterPartition,
            version: 3,
            grants: &[(Cluster, C, ClusterAction)],
            request: || {
                AlterPartitionRequest::default()
                    .with_broker_id(BrokerId(1000))
                    .with_broker_epoch(-1)
                    .into()
            },
            denied: Denied::Error(CLUSTER_AUTHORIZATION_FAILED),
            // STALE_BROKER_EPOCH: no broker 1000 is registered.
            allowed_errors: &[77],
        },
        Case {
            key: ApiKey::ElectLeaders,
            version: 2,
            grants: &[(Cluster, C, Alter)],
            request: || {
                let t = elect_leaders_request::TopicPartitions::default()
                    .with_topic(topic(TOPIC))
                    .with_partitions(vec![0]);
                ElectLeadersRequest::default()
                    .with_topic_partitions(Some(vec![t]))
                    .with_timeout_ms(10_000)
                    .into()
            },
            denied: Denied::Error(CLUSTER_AUTHORIZATION_FAILED),
            // ELECTION_NOT_NEEDED: the only replica leads already.
            allowed_errors: &[84],
        },
        Case {
            key: ApiKey::AlterPartitionReassignments,
            version: 0,
            grants: &[(Cluster, C, Alter)],
            request: || {
                AlterPartitionReassignmentsRequest::default()
                    .with_timeout_ms(10_000)
                    .into()
            },
            denied: Denied::Error(CLUSTER_AUTHORIZATION_FAILED),
            allowed_errors: &[],
        },
        Case {
            key: ApiKey::ListPartitionReassignments,
            version: 0,
            grants: &[(Cluster, C, Describe)],
            request: || {
                ListPartitionReassignmentsRequest::default()
                    .with_timeout_ms(10_000)
                    .into()
            },
            denied: Denied::Error(CLUSTER_AUTHORIZATION_FAILED),
            allowed_errors: &[],
        },
        Case {
            key: ApiKey::DescribeLogDirs,
            version: 4,
            grants: &[(Cluster, C, Describe)],
            request: || DescribeLogDirsRequest::default().with_topics(None).into(),
            denied: Denied::Error(CLUSTER_AUTHORIZATION_FAILED),
            allowed_errors: &[],
        },
        Case {
            key: ApiKey::AlterReplicaLogDirs,
            version: 2,
            grants: &[(Cluster, C, Alter)],
            request: || {
                let t = alter_replica_log_dirs_request::AlterReplicaLogDirTopic::default()
                    .with_name(topic(TOPIC))
                    .with_partitions(vec![0]);
                let d = alter_replica_log_dirs_request::AlterReplicaLogDir::default()
                    .with_path(s("/no/such/log/dir"))
                    .with_topics(vec![t]);
                AlterReplicaLogDirsRequest::default()
                    .with_dirs(vec![d])
                    .into()
            },
            denied: Denied::Error(CLUSTER_AUTHORIZATION_FAILED),
            // LOG_DIR_NOT_FOUND: the path is none of the broker's log.dirs.
            allowed_errors: &[57],
        },
        Case {
            key: ApiKey::DescribeUserScramCredentials,
            version: 0,
            grants: &[(Cluster, C, Describe)],
            request: || {
                let u = describe_user_scram_credentials_request::UserName::default()
                    .with_name(s("matrix-user"));
                DescribeUserScramCredentialsRequest::default()
                    .with_users(Some(vec![u]))
                    .into()
            },
            denied: Denied::Error(CLUSTER_AUTHORIZATION_FAILED),
            // RESOURCE_NOT_FOUND: the user has no credentials.
            allowed_errors: &[91],
        },
        Case {
            key: ApiKey::AlterUserScramCredentials,
            version: 0,
            grants: &[(Cluster, C, Alter)],
            request: || {
                let d = alter_user_scram_credentials_request::ScramCredentialDeletion::default()
                    .with_name(s("matrix-user"))
                    .with_mechanism(1);
                AlterUserScramCredentialsRequest::default()
                    .with_deletions(vec![d])
                    .into()
            },
            denied: Denied::Error(CLUSTER_AUTHORIZATION_FAILED),
            allowed_errors: &[91],
        },
        Case {
            key: ApiKey::AddPartitionsToTxn,
            version: 3,
            grants: &[(Txn, TXN, Write), (Topic, TOPIC, Write)],
            request: add_partitions_v3,
            denied: Denied::Error(TRANSACTIONAL_ID_AUTHORIZATION_FAILED),
            // The producer id is made up: INVALID_PRODUCER_ID_MAPPING or the epoch is wrong.
            allowed_errors: &[49, 47, 14, 15, 16],
        },
        // v4+ is the brokers' own form.
        Case {
            key: ApiKey::AddPartitionsToTxn,
            version: 4,
            grants: &[(Cluster, C, ClusterAction)],
            request: || AddPartitionsToTxnRequest::default().into(),
            denied: Denied::Error(CLUSTER_AUTHORIZATION_FAILED),
            allowed_errors: &[],
        },
        Case {
            key: ApiKey::AddOffsetsToTxn,
            version: 3,
            grants: &[(Txn, TXN, Write), (Group, GROUP, Read)],
            request: || {
                AddOffsetsToTxnRequest::default()
                    .with_transactional_id(TransactionalId(s(TXN)))
                    .with_producer_id(ProducerId(1000))
                    .with_group_id(GroupId(s(GROUP)))
                    .into()
            },
            denied: Denied::Error(TRANSACTIONAL_ID_AUTHORIZATION_FAILED),
            allowed_errors: &[49, 47, 14, 15, 16],
        },
        Case {
            key: ApiKey::EndTxn,
            version: 3,
            grants: &[(Txn, TXN, Write)],
            request: || {
                EndTxnRequest::default()
                    .with_transactional_id(TransactionalId(s(TXN)))
                    .with_producer_id(ProducerId(1000))
                    .into()
            },
            denied: Denied::Error(TRANSACTIONAL_ID_AUTHORIZATION_FAILED),
            allowed_errors: &[49, 47, 14, 15, 16],
        },
        Case {
            key: ApiKey::WriteTxnMarkers,
            version: 1,
            grants: &[(Cluster, C, ClusterAction)],
            request: || {
                let t = write_txn_markers_request::WritableTxnMarkerTopic::default()
                    .with_name(topic("matrix-no-topic"))
                    .with_partition_indexes(vec![0]);
                let m = write_txn_markers_request::WritableTxnMarker::default()
                    .with_producer_id(ProducerId(1000))
                    .with_topics(vec![t]);
                WriteTxnMarkersRequest::default()
                    .with_markers(vec![m])
                    .into()
            },
            denied: Denied::Error(CLUSTER_AUTHORIZATION_FAILED),
            allowed_errors: &[3],
        },
        Case {
            key: ApiKey::TxnOffsetCommit,
            version: 3,
            grants: &[
                (Txn, TXN, Write),
                (Group, GROUP, Read),
                (Topic, TOPIC, Read),
            ],
            request: || {
                let p = txn_offset_commit_request::TxnOffsetCommitRequestPartition::default()
                    .with_partition_index(0)
                    .with_committed_offset(0);
                let t = txn_offset_commit_request::TxnOffsetCommitRequestTopic::default()
                    .with_name(topic(TOPIC))
                    .with_partitions(vec![p]);
                TxnOffsetCommitRequest::default()
                    .with_transactional_id(TransactionalId(s(TXN)))
                    .with_group_id(GroupId(s(GROUP)))
                    .with_producer_id(ProducerId(1000))
                    .with_generation_id(-1)
                    .with_topics(vec![t])
                    .into()
            },
            denied: Denied::Error(TRANSACTIONAL_ID_AUTHORIZATION_FAILED),
            allowed_errors: &[49, 47, 14, 15, 16],
        },
        Case {
            key: ApiKey::DescribeTransactions,
            version: 0,
            grants: &[(Txn, TXN, Describe)],
            request: || {
                DescribeTransactionsRequest::default()
                    .with_transactional_ids(vec![TransactionalId(s(TXN))])
                    .into()
            },
            denied: Denied::Error(TRANSACTIONAL_ID_AUTHORIZATION_FAILED),
            allowed_errors: &COORDINATOR_STARTING,
        },
        Case {
            key: ApiKey::DescribeAcls,
            version: 3,
            grants: &[(Cluster, C, Describe)],
            request: || {
                DescribeAclsRequest::default()
                    .with_resource_type_filter(1)
                    .with_pattern_type_filter(1)
                    .with_operation(1)
                    .with_permission_type(1)
                    .into()
            },
            denied: Denied::Error(CLUSTER_AUTHORIZATION_FAILED),
            allowed_errors: &[],
        },
        Case {
            key: ApiKey::CreateAcls,
            version: 3,
            grants: &[(Cluster, C, Alter)],
            request: || {
                let c = create_acls_request::AclCreation::default()
                    .with_resource_type(2)
                    .with_resource_name(s("matrix-acl"))
                    .with_resource_pattern_type(3)
                    .with_principal(s("User:someone"))
                    .with_host(s("*"))
                    .with_operation(3)
                    .with_permission_type(3);
                CreateAclsRequest::default().with_creations(vec![c]).into()
            },
            denied: Denied::Error(CLUSTER_AUTHORIZATION_FAILED),
            allowed_errors: &[],
        },
        Case {
            key: ApiKey::DeleteAcls,
            version: 3,
            grants: &[(Cluster, C, Alter)],
            request: || {
                let f = delete_acls_request::DeleteAclsFilter::default()
                    .with_resource_type_filter(2)
                    .with_resource_name_filter(Some(s("matrix-acl")))
                    .with_pattern_type_filter(3)
                    .with_operation(1)
                    .with_permission_type(1);
                DeleteAclsRequest::default().with_filters(vec![f]).into()
            },
            denied: Denied::Error(CLUSTER_AUTHORIZATION_FAILED),
            allowed_errors: &[],
        },
        // A token for someone else needs CREATE_TOKENS on that user.
        Case {
            key: ApiKey::CreateDelegationToken,
            version: 3,
            grants: &[(User, "User:matrix-owner", CreateTokens)],
            request: || create_token(Some("matrix-owner")),
            denied: Denied::Error(DELEGATION_TOKEN_AUTHORIZATION_FAILED),
            allowed_errors: &[],
        },
        Case {
            key: ApiKey::RenewDelegationToken,
            version: 2,
            grants: &[],
            request: || {
                RenewDelegationTokenRequest::default()
                    .with_hmac(Bytes::from_static(b"no-such-token"))
                    .with_renew_period_ms(-1)
                    .into()
            },
            denied: Denied::Open,
            allowed_errors: &[TOKEN_NOT_FOUND],
        },
        Case {
            key: ApiKey::ExpireDelegationToken,
            version: 2,
            grants: &[],
            request: || {
                ExpireDelegationTokenRequest::default()
                    .with_hmac(Bytes::from_static(b"no-such-token"))
                    .with_expiry_time_period_ms(-1)
                    .into()
            },
            denied: Denied::Open,
            allowed_errors: &[TOKEN_NOT_FOUND],
        },
        // Another user's token (admin's, made at the start) is shown to those who may describe
        // that user's tokens.
        Case {
            key: ApiKey::DescribeDelegationToken,
            version: 3,
            grants: &[(User, "User:admin", DescribeTokens)],
            request: || {
                DescribeDelegationTokenRequest::default()
                    .with_owners(None)
                    .into()
            },
            denied: Denied::Hidden("admin"),
            allowed_errors: &[],
        },
        Case {
            key: ApiKey::ListTransactions,
            version: 1,
            grants: &[(Txn, TXN, Describe)],
            request: || {
                ListTransactionsRequest::default()
                    .with_duration_filter(-1)
                    .into()
            },
            denied: Denied::Hidden(TXN),
            allowed_errors: &[],
        },
        Case {
            key: ApiKey::DescribeClientQuotas,
            version: 1,
            grants: &[(Cluster, C, DescribeConfigs)],
            request: || DescribeClientQuotasRequest::default().into(),
            denied: Denied::Error(CLUSTER_AUTHORIZATION_FAILED),
            allowed_errors: &[],
        },
        Case {
            key: ApiKey::AlterClientQuotas,
            version: 1,
            grants: &[(Cluster, C, AlterConfigs)],
            request: || {
                let entity = alter_client_quotas_request::EntityData::default()
                    .with_entity_type(s("client-id"))
                    .with_entity_name(Some(s("matrix-client")));
                let op = alter_client_quotas_request::OpData::default()
                    .with_key(s("producer_byte_rate"))
                    .with_value(1_048_576.0);
                let entry = alter_client_quotas_request::EntryData::default()
                    .with_entity(vec![entity])
                    .with_ops(vec![op]);
                AlterClientQuotasRequest::default()
                    .with_entries(vec![entry])
                    .into()
            },
            denied: Denied::Error(CLUSTER_AUTHORIZATION_FAILED),
            allowed_errors: &[],
        },
    ]
}

/// Every error code in a response, wherever it sits (`error_code`, `partition_error_code`,
/// `topic_config_error_code`, ...): read from its `Debug` form, so no API needs its own
/// reader.
fn error_codes(response: &ResponseKind) -> Vec<i16> {
    let text = format!("{response:?}");
    let re = regex::Regex::new(r"error_code: (-?\d+)").unwrap();
    re.captures_iter(&text)
        .filter_map(|c| c[1].parse().ok())
        .collect()
}

/// The authorized-operations bitfields a response reports (Metadata, DescribeCluster).
fn cluster_operations(response: &ResponseKind) -> Option<i32> {
    match response {
        ResponseKind::Metadata(r) => Some(r.cluster_authorized_operations),
        ResponseKind::DescribeCluster(r) => Some(r.cluster_authorized_operations),
        _ => None,
    }
}

/// The checks of the matrix against the routing table: every route has a case; a route that
/// checks nothing has only open cases and the others none; every grant a case needs is one
/// its route's ACL names.
#[test]
fn every_route_has_a_matrix_case_that_its_acl_covers() {
    let cases = cases();
    let mut problems = Vec::new();
    for route in ROUTES {
        let mine: Vec<&Case> = cases.iter().filter(|c| c.key == route.key).collect();
        if mine.is_empty() {
            problems.push(format!("{:?} has no case in the ACL matrix", route.key));
        }
        for case in mine {
            let open = matches!(case.denied, Denied::Open);
            let covered = |(t, _, op): &Grant| match route.acl {
                Acl::None => false,
                Acl::Cluster(ops) => *t == ResourceType::Cluster && ops.contains(op),
                Acl::Handler(pairs) => pairs.contains(&(*t, *op)),
            };
            match route.acl {
                Acl::None if !open => problems.push(format!(
                    "{:?} checks nothing, but its case expects a refusal",
                    route.key
                )),
                Acl::Cluster(_) | Acl::Handler(_) if open || case.grants.is_empty() => problems
                    .push(format!(
                        "{:?} has an ACL, but its case grants nothing and expects no refusal",
                        route.key
                    )),
                _ => {}
            }
            for g in case.grants.iter().filter(|g| !covered(g)) {
                problems.push(format!(
                    "{:?}'s case needs {:?} {:?}, which its route's ACL ({:?}) does not state",
                    route.key, g.0, g.2, route.acl
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

const PASSWORD: &str = "matrix-secret";

/// The listener's PLAIN users: admin, nobody and one per case.
fn jaas(cases: usize) -> String {
    let mut users = format!(r#"user_admin="{PASSWORD}" user_nobody="{PASSWORD}""#);
    for i in 0..cases {
        users.push_str(&format!(r#" user_case{i}="{PASSWORD}""#));
    }
    format!(
        r#"org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="{PASSWORD}" {users};"#
    )
}

async fn login_as(port: u16, user: &str) -> Connection {
    connect(
        port,
        Security {
            tls: None,
            sasl: login(Mechanism::Plain, user, PASSWORD),
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{user} could not log in: {e}"))
}

/// Sends `request` until none of its error codes is one of `retry` (a coordinator or topic
/// still starting), within a deadline.
async fn until_settled(c: &mut Connection, key: ApiKey, request: fn() -> RequestKind) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let response = c.call(key, request()).await.unwrap();
        let codes = error_codes(&response);
        if codes.iter().all(|c| *c == 0) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{key:?} still failing after 30 s: {response:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn grant(admin: &mut Connection, principal: &str, grants: &[Grant]) {
    let creations = grants
        .iter()
        .map(|(t, name, op)| {
            create_acls_request::AclCreation::default()
                .with_resource_type(t.code())
                .with_resource_name(s(name))
                .with_resource_pattern_type(3)
                .with_principal(s(principal))
                .with_host(s("*"))
                .with_operation(op.code())
                .with_permission_type(3)
        })
        .collect();
    let response = admin
        .call(
            ApiKey::CreateAcls,
            CreateAclsRequest::default()
                .with_creations(creations)
                .into(),
        )
        .await
        .unwrap();
    assert!(
        error_codes(&response).iter().all(|c| *c == 0),
        "granting {grants:?} to {principal}: {response:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_api_serves_exactly_the_acls_kafka_requires() {
    for store in STORES {
        matrix_on(store).await;
    }
}

async fn matrix_on(store: Store) {
    let cases = cases();
    let dir = tempfile::tempdir().unwrap();
    let options = [
        "listeners=PLAINTEXT://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0".to_string(),
        "advertised.listeners=PLAINTEXT://localhost:0,SASL_PLAINTEXT://localhost:0".to_string(),
        "sasl.enabled.mechanisms=PLAIN".to_string(),
        format!(
            "listener.name.sasl_plaintext.plain.sasl.jaas.config={}",
            jaas(cases.len())
        ),
        "authorizer.class.name=kafka.security.authorizer.AclAuthorizer".to_string(),
        // The broker's own principal on its inter-broker listener (PLAINTEXT: ANONYMOUS) must
        // be a super user, as in Kafka.
        "super.users=User:admin;User:ANONYMOUS".to_string(),
        "offsets.topic.replication.factor=1".to_string(),
        "transaction.state.log.replication.factor=1".to_string(),
        "transaction.state.log.min.isr=1".to_string(),
        "transaction.state.log.num.partitions=4".to_string(),
        "delegation.token.secret.key=matrix-token-key".to_string(),
        "offsets.topic.num.partitions=4".to_string(),
    ];
    let options: Vec<&str> = options.iter().map(String::as_str).collect();
    let Some((broker, _zk)) = start_broker_on(store, dir.path(), &options).await else {
        return;
    };
    let port = broker.port_of("SASL_PLAINTEXT").unwrap();
    let mut admin = login_as(port, "admin").await;

    // What the cases find: topics, a group with a committed offset, a transactional id.
    for name in [TOPIC, "matrix-deleted", "matrix-grown"] {
        let t = create_topics_request::CreatableTopic::default()
            .with_name(topic(name))
            .with_num_partitions(1)
            .with_replication_factor(1);
        let response = admin
            .call(
                ApiKey::CreateTopics,
                CreateTopicsRequest::default()
                    .with_topics(vec![t])
                    .with_timeout_ms(10_000)
                    .into(),
            )
            .await
            .unwrap();
        assert!(
            error_codes(&response).iter().all(|c| *c == 0),
            "{response:?}"
        );
    }
    until_settled(&mut admin, ApiKey::OffsetCommit, offsets_commit).await;
    // The transaction coordinator's topic is made when a coordinator is first looked for.
    until_settled(&mut admin, ApiKey::FindCoordinator, || {
        FindCoordinatorRequest::default()
            .with_key_type(1)
            .with_coordinator_keys(vec![s(TXN)])
            .into()
    })
    .await;
    until_settled(&mut admin, ApiKey::InitProducerId, || {
        init_producer_id(Some(TXN))
    })
    .await;

    // A token of admin's, for describing.
    until_settled(&mut admin, ApiKey::CreateDelegationToken, || {
        create_token(None)
    })
    .await;

    let mut failures = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        let allowed = format!("case{i}");
        grant(&mut admin, &format!("User:{allowed}"), case.grants).await;
        let what = format!("{store:?} {:?} v{} case{i}", case.key, case.version);
        // The principal without ACLs first, so that it meets the state before the allowed
        // one's request changes it.
        let mut nobody = login_as(port, "nobody").await;
        let denied = nobody
            .call_upto(case.key, case.version, (case.request)())
            .await;
        let mut granted = login_as(port, &allowed).await;
        let served = granted
            .call_upto(case.key, case.version, (case.request)())
            .await;
        let (denied, served) = match (denied, served) {
            (Ok(d), Ok(s)) => (d, s),
            (d, s) => {
                failures.push(format!("{what}: no answer: {:?} / {:?}", d.err(), s.err()));
                continue;
            }
        };
        let served_codes = error_codes(&served);
        if let Some(c) = served_codes
            .iter()
            .find(|c| **c != 0 && !case.allowed_errors.contains(c))
        {
            failures.push(format!(
                "{what}: the allowed principal got error {c}: {served:?}"
            ));
        }
        let denied_codes = error_codes(&denied);
        match &case.denied {
            Denied::Error(code) if !denied_codes.contains(code) => failures.push(format!(
                "{what}: without ACLs, expected error {code}, got {denied:?}"
            )),
            Denied::Hidden(name) => {
                let quoted = format!("{name:?}");
                if format!("{denied:?}").contains(&quoted) {
                    failures.push(format!("{what}: {name} shown without ACLs: {denied:?}"));
                }
                if !format!("{served:?}").contains(&quoted) {
                    failures.push(format!("{what}: {name} not shown with ACLs: {served:?}"));
                }
            }
            Denied::NoOperations => {
                if cluster_operations(&denied) != Some(0) {
                    failures.push(format!("{what}: operations without ACLs: {denied:?}"));
                }
                if cluster_operations(&served).is_none_or(|ops| ops <= 0) {
                    failures.push(format!("{what}: no operations with ACLs: {served:?}"));
                }
            }
            Denied::Open => {
                if let Some(c) = denied_codes
                    .iter()
                    .find(|c| AUTHORIZATION_ERRORS.contains(c))
                {
                    failures.push(format!("{what}: refused ({c}) though nothing is checked"));
                }
            }
            Denied::Error(_) => {}
        }
    }
    broker.shutdown().await.unwrap();
    assert!(failures.is_empty(), "{failures:#?}");
}
