//! The answer to a request refused as a whole (Kafka's `AbstractRequest.getErrorResponse`):
//! the error in every error field the response has, top level and per item, so a client finds
//! it wherever it looks. Used by `Api::route` for routes whose ACL is on the cluster.

use kafka_protocol::messages::alter_partition_reassignments_response::{
    ReassignablePartitionResponse, ReassignableTopicResponse,
};
use kafka_protocol::messages::describe_user_scram_credentials_response::DescribeUserScramCredentialsResult;
use kafka_protocol::messages::elect_leaders_response::{PartitionResult, ReplicaElectionResult};
use kafka_protocol::messages::leader_and_isr_response::{
    LeaderAndIsrPartitionError, LeaderAndIsrTopicError,
};
use kafka_protocol::messages::stop_replica_response::StopReplicaPartitionError;
use kafka_protocol::messages::write_txn_markers_response::{
    WritableTxnMarkerPartitionResult, WritableTxnMarkerResult, WritableTxnMarkerTopicResult,
};
use kafka_protocol::messages::*;

/// A request that can be answered with one error everywhere.
pub trait Refuse {
    type Response;
    fn refuse(self, code: i16, version: i16) -> Self::Response;
}

impl Refuse for LeaderAndIsrRequest {
    type Response = LeaderAndIsrResponse;
    fn refuse(self, code: i16, version: i16) -> LeaderAndIsrResponse {
        let mut r = LeaderAndIsrResponse::default();
        r.error_code = code;
        let error = |topic: &TopicName, partition: i32| {
            let mut e = LeaderAndIsrPartitionError::default();
            e.partition_index = partition;
            e.error_code = code;
            // From v5 partitions are grouped under their topic's id instead of named.
            if version < 5 {
                e.topic_name = topic.clone();
            }
            e
        };
        if version >= 5 {
            r.topics = self
                .topic_states
                .iter()
                .map(|t| {
                    let mut te = LeaderAndIsrTopicError::default();
                    te.topic_id = t.topic_id;
                    te.partition_errors = t
                        .partition_states
                        .iter()
                        .map(|p| error(&t.topic_name, p.partition_index))
                        .collect();
                    te
                })
                .collect();
        } else {
            r.partition_errors = self
                .ungrouped_partition_states
                .iter()
                .map(|p| (&p.topic_name, p.partition_index))
                .chain(self.topic_states.iter().flat_map(|t| {
                    t.partition_states
                        .iter()
                        .map(move |p| (&t.topic_name, p.partition_index))
                }))
                .map(|(t, p)| error(t, p))
                .collect();
        }
        r
    }
}

impl Refuse for StopReplicaRequest {
    type Response = StopReplicaResponse;
    fn refuse(self, code: i16, _version: i16) -> StopReplicaResponse {
        let mut r = StopReplicaResponse::default();
        r.error_code = code;
        let v0 = self
            .ungrouped_partitions
            .into_iter()
            .map(|p| (p.topic_name, p.partition_index));
        let v1 = self.topics.into_iter().flat_map(|t| {
            let name = t.name;
            t.partition_indexes
                .into_iter()
                .map(move |p| (name.clone(), p))
        });
        let v3 = self.topic_states.into_iter().flat_map(|t| {
            let name = t.topic_name;
            t.partition_states
                .into_iter()
                .map(move |p| (name.clone(), p.partition_index))
        });
        r.partition_errors = v0
            .chain(v1)
            .chain(v3)
            .map(|(topic_name, partition_index)| {
                let mut e = StopReplicaPartitionError::default();
                e.topic_name = topic_name;
                e.partition_index = partition_index;
                e.error_code = code;
                e
            })
            .collect();
        r
    }
}

impl Refuse for UpdateMetadataRequest {
    type Response = UpdateMetadataResponse;
    fn refuse(self, code: i16, _version: i16) -> UpdateMetadataResponse {
        let mut r = UpdateMetadataResponse::default();
        r.error_code = code;
        r
    }
}

impl Refuse for AlterPartitionRequest {
    type Response = AlterPartitionResponse;
    fn refuse(self, code: i16, _version: i16) -> AlterPartitionResponse {
        let mut r = AlterPartitionResponse::default();
        r.error_code = code;
        r
    }
}

impl Refuse for ControlledShutdownRequest {
    type Response = ControlledShutdownResponse;
    fn refuse(self, code: i16, _version: i16) -> ControlledShutdownResponse {
        let mut r = ControlledShutdownResponse::default();
        r.error_code = code;
        r
    }
}

impl Refuse for ElectLeadersRequest {
    type Response = ElectLeadersResponse;
    fn refuse(self, code: i16, version: i16) -> ElectLeadersResponse {
        let mut r = ElectLeadersResponse::default();
        // v0 has no top-level error: the partitions carry it.
        if version >= 1 {
            r.error_code = code;
        }
        r.replica_election_results = self
            .topic_partitions
            .unwrap_or_default()
            .into_iter()
            .map(|t| {
                let mut e = ReplicaElectionResult::default();
                e.topic = t.topic;
                e.partition_result = t
                    .partitions
                    .into_iter()
                    .map(|p| {
                        let mut pr = PartitionResult::default();
                        pr.partition_id = p;
                        pr.error_code = code;
                        pr
                    })
                    .collect();
                e
            })
            .collect();
        r
    }
}

impl Refuse for AlterPartitionReassignmentsRequest {
    type Response = AlterPartitionReassignmentsResponse;
    fn refuse(self, code: i16, _version: i16) -> AlterPartitionReassignmentsResponse {
        let mut r = AlterPartitionReassignmentsResponse::default();
        r.error_code = code;
        r.responses = self
            .topics
            .into_iter()
            .map(|t| {
                let mut tr = ReassignableTopicResponse::default();
                tr.name = t.name;
                tr.partitions = t
                    .partitions
                    .into_iter()
                    .map(|p| {
                        let mut pr = ReassignablePartitionResponse::default();
                        pr.partition_index = p.partition_index;
                        pr.error_code = code;
                        pr
                    })
                    .collect();
                tr
            })
            .collect();
        r
    }
}

impl Refuse for ListPartitionReassignmentsRequest {
    type Response = ListPartitionReassignmentsResponse;
    fn refuse(self, code: i16, _version: i16) -> ListPartitionReassignmentsResponse {
        let mut r = ListPartitionReassignmentsResponse::default();
        r.error_code = code;
        r
    }
}

impl Refuse for DescribeUserScramCredentialsRequest {
    type Response = DescribeUserScramCredentialsResponse;
    fn refuse(self, code: i16, _version: i16) -> DescribeUserScramCredentialsResponse {
        let mut r = DescribeUserScramCredentialsResponse::default();
        r.error_code = code;
        r.results = self
            .users
            .unwrap_or_default()
            .into_iter()
            .map(|u| {
                let mut ur = DescribeUserScramCredentialsResult::default();
                ur.user = u.name;
                ur.error_code = code;
                ur
            })
            .collect();
        r
    }
}

impl Refuse for WriteTxnMarkersRequest {
    type Response = WriteTxnMarkersResponse;
    fn refuse(self, code: i16, _version: i16) -> WriteTxnMarkersResponse {
        let mut r = WriteTxnMarkersResponse::default();
        r.markers = self
            .markers
            .into_iter()
            .map(|m| {
                let mut mr = WritableTxnMarkerResult::default();
                mr.producer_id = m.producer_id;
                mr.topics = m
                    .topics
                    .into_iter()
                    .map(|t| {
                        let mut tr = WritableTxnMarkerTopicResult::default();
                        tr.name = t.name;
                        tr.partitions = t
                            .partition_indexes
                            .into_iter()
                            .map(|p| {
                                let mut pr = WritableTxnMarkerPartitionResult::default();
                                pr.partition_index = p;
                                pr.error_code = code;
                                pr
                            })
                            .collect();
                        tr
                    })
                    .collect();
                mr
            })
            .collect();
        r
    }
}

impl Refuse for DescribeLogDirsRequest {
    type Response = DescribeLogDirsResponse;
    fn refuse(self, code: i16, _version: i16) -> DescribeLogDirsResponse {
        // Kafka's answer: no directories, the error at the top (a field from v3 on).
        let mut r = DescribeLogDirsResponse::default();
        r.error_code = code;
        r
    }
}

impl Refuse for AlterReplicaLogDirsRequest {
    type Response = AlterReplicaLogDirsResponse;
    fn refuse(self, code: i16, _version: i16) -> AlterReplicaLogDirsResponse {
        use kafka_protocol::messages::alter_replica_log_dirs_response::{
            AlterReplicaLogDirPartitionResult, AlterReplicaLogDirTopicResult,
        };
        let mut r = AlterReplicaLogDirsResponse::default();
        for dir in self.dirs {
            for topic in dir.topics {
                let mut t = AlterReplicaLogDirTopicResult::default();
                t.topic_name = topic.name;
                t.partitions = topic
                    .partitions
                    .into_iter()
                    .map(|p| {
                        let mut e = AlterReplicaLogDirPartitionResult::default();
                        e.partition_index = p;
                        e.error_code = code;
                        e
                    })
                    .collect();
                r.results.push(t);
            }
        }
        r
    }
}
