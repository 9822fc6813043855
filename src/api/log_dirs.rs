//! DescribeLogDirs and AlterReplicaLogDirs (Kafka's `handleDescribeLogDirsRequest`,
//! `handleAlterReplicaLogDirsRequest`): the broker's `log.dirs` with the logs in each, and
//! moving a hosted replica's log to another of them. Both need a cluster permission, checked by
//! the routing table (DESCRIBE, ALTER).

use std::collections::{BTreeMap, HashSet};

use kafka_protocol::ResponseError;
use kafka_protocol::messages::alter_replica_log_dirs_response::{
    AlterReplicaLogDirPartitionResult, AlterReplicaLogDirTopicResult,
};
use kafka_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use kafka_protocol::messages::{
    AlterReplicaLogDirsRequest, AlterReplicaLogDirsResponse, DescribeLogDirsRequest,
    DescribeLogDirsResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use super::Api;
use super::errors::KafkaCode;
use crate::log::TopicPartition;
use crate::log::log_dirs::MoveError;
use crate::replica::blocking;

pub async fn describe(
    api: &Api,
    request: DescribeLogDirsRequest,
    version: i16,
) -> DescribeLogDirsResponse {
    // No topics: every partition (Kafka's `isAllTopicPartitions`).
    let wanted: Option<HashSet<TopicPartition>> = request.topics.map(|topics| {
        topics
            .into_iter()
            .flat_map(|t| {
                let name = t.topic.0.to_string();
                t.partitions.into_iter().map(move |p| (name.clone(), p))
            })
            .collect()
    });
    let logs = api.replicas.logs().clone();
    let mut response = DescribeLogDirsResponse::default();
    let dirs = match blocking(move || Ok(logs.describe_dirs())).await {
        Ok(d) => d,
        Err(e) => {
            tracing::error!(error = %e, "cannot describe log dirs");
            response.error_code = ResponseError::KafkaStorageError.code();
            return response;
        }
    };
    for dir in dirs {
        let mut result = DescribeLogDirsResult::default();
        result.log_dir = StrBytes::from_string(dir.path.to_string_lossy().into_owned());
        if dir.offline {
            result.error_code = ResponseError::KafkaStorageError.code();
            response.results.push(result);
            continue;
        }
        if version >= 4 {
            result.total_bytes = dir.total_bytes;
            result.usable_bytes = dir.usable_bytes;
        }
        let mut topics: BTreeMap<String, Vec<DescribeLogDirsPartition>> = BTreeMap::new();
        for log in dir.logs {
            if wanted
                .as_ref()
                .is_some_and(|w| !w.contains(&log.topic_partition))
            {
                continue;
            }
            let mut p = DescribeLogDirsPartition::default();
            p.partition_index = log.topic_partition.1;
            p.partition_size = i64::try_from(log.size_bytes).unwrap_or(i64::MAX);
            p.offset_lag = log.offset_lag;
            p.is_future_key = log.is_future;
            topics.entry(log.topic_partition.0).or_default().push(p);
        }
        for (name, mut partitions) in topics {
            partitions.sort_by_key(|p| (p.partition_index, p.is_future_key));
            let mut t = DescribeLogDirsTopic::default();
            t.name = TopicName(StrBytes::from_string(name));
            t.partitions = partitions;
            result.topics.push(t);
        }
        response.results.push(result);
    }
    response
}

pub async fn alter(api: &Api, request: AlterReplicaLogDirsRequest) -> AlterReplicaLogDirsResponse {
    let mut results: BTreeMap<String, Vec<AlterReplicaLogDirPartitionResult>> = BTreeMap::new();
    // One state change at a time, as Kafka runs this under `replicaStateChangeLock`: a
    // LeaderAndIsr creating the partition meanwhile would miss its preferred directory.
    let _changes = api.replicas.lock_state_changes().await;
    for dir in request.dirs {
        let path = dir.path.to_string();
        for topic in dir.topics {
            let name = topic.name.0.to_string();
            for partition in topic.partitions {
                let code = alter_one(api, &path, (name.clone(), partition)).await;
                let mut r = AlterReplicaLogDirPartitionResult::default();
                r.partition_index = partition;
                r.error_code = code;
                results.entry(name.clone()).or_default().push(r);
            }
        }
    }
    let mut response = AlterReplicaLogDirsResponse::default();
    for (name, partitions) in results {
        let mut t = AlterReplicaLogDirTopicResult::default();
        t.topic_name = TopicName(StrBytes::from_string(name));
        t.partitions = partitions;
        response.results.push(t);
    }
    response
}

/// Kafka's `ReplicaManager.alterReplicaLogDirs` for one partition: the error code.
async fn alter_one(api: &Api, path: &str, tp: TopicPartition) -> i16 {
    let logs = api.replicas.logs().clone();
    let Some(dir_index) = logs.dir_index_of(path) else {
        return ResponseError::LogDirNotFound.code();
    };
    if api.replicas.get(&tp.0, tp.1).is_none() {
        // Created there when this broker is told to host it; until then, as Kafka answers.
        logs.set_preferred_dir(tp, dir_index);
        return ResponseError::ReplicaNotAvailable.code();
    }
    let started = {
        let tp = tp.clone();
        blocking(move || Ok(logs.move_log(&tp, dir_index))).await
    };
    match started {
        Ok(Ok(Some(task))) => {
            tokio::spawn(task.run());
            0
        }
        Ok(Ok(None)) => 0,
        Ok(Err(MoveError::NotHosted)) => ResponseError::ReplicaNotAvailable.code(),
        Ok(Err(MoveError::Storage(e))) | Err(e) => {
            tracing::warn!(topic = %tp.0, partition = tp.1, error = %e, "cannot move log");
            e.kafka_error_code()
        }
    }
}
