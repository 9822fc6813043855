//! OffsetCommit, OffsetFetch and OffsetDelete: committed offsets, kept by the group
//! coordinator in `__consumer_offsets`.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

use super::errors::KafkaCode;
use super::{Api, ClientInfo, errors};
use crate::group::{AppendError, CommittedOffset, FetchedOffsets, OffsetToCommit};
use crate::security::acl::{Operation, ResourceType};

/// A partition of an OffsetCommit or TxnOffsetCommit request: two generated types with the
/// same fields.
pub(super) trait PartitionToCommit {
    fn partition_index(&self) -> i32;
    /// What to commit to this partition of `topic`; versions without a leader epoch commit -1.
    fn into_offset(self, topic: &str, has_leader_epoch: bool) -> OffsetToCommit;
}

macro_rules! impl_partition_to_commit {
    ($($partition:ty),*) => {$(
        impl PartitionToCommit for $partition {
            fn partition_index(&self) -> i32 {
                self.partition_index
            }

            fn into_offset(self, topic: &str, has_leader_epoch: bool) -> OffsetToCommit {
                (
                    topic.to_string(),
                    self.partition_index,
                    self.committed_offset,
                    if has_leader_epoch { self.committed_leader_epoch } else { -1 },
                    self.committed_metadata.map(|m| m.to_string()),
                )
            }
        }
    )*};
}

impl_partition_to_commit!(
    offset_commit_request::OffsetCommitRequestPartition,
    txn_offset_commit_request::TxnOffsetCommitRequestPartition
);

/// The offsets an OffsetCommit or TxnOffsetCommit carries, flattened for the group
/// coordinator, and the request's shape (each topic's partitions in order) to answer in.
pub(super) fn offsets_to_commit<P: PartitionToCommit>(
    topics: impl IntoIterator<Item = (TopicName, Vec<P>)>,
    has_leader_epoch: bool,
) -> (Vec<(TopicName, Vec<i32>)>, Vec<OffsetToCommit>) {
    let mut shape = Vec::new();
    let mut offsets = Vec::new();
    for (topic, partitions) in topics {
        let indexes = partitions.iter().map(|p| p.partition_index()).collect();
        offsets.extend(
            partitions
                .into_iter()
                .map(|p| p.into_offset(&topic.0, has_leader_epoch)),
        );
        shape.push((topic, indexes));
    }
    (shape, offsets)
}

/// The error of every partition of a commit, in the request's shape: the partition's refusal
/// when it has one (see `refuse_commit`), else the coordinator's answer for the others, which
/// are all it was asked about, in order.
pub(super) fn commit_codes(
    shape: Vec<(TopicName, Vec<i32>)>,
    refusals: Vec<Option<i16>>,
    outcomes: Vec<Result<(), AppendError>>,
) -> Vec<(TopicName, Vec<(i32, i16)>)> {
    let mut refusals = refusals.into_iter();
    let mut codes = outcomes.into_iter().map(|outcome| match outcome {
        Ok(()) => errors::NONE,
        Err(e) => errors::offset_commit_code(&e),
    });
    shape
        .into_iter()
        .map(|(name, partitions)| {
            let partitions = partitions
                .into_iter()
                .map(|p| {
                    let code = refusals.next().flatten().unwrap_or_else(|| {
                        codes
                            .next()
                            .unwrap_or(ResponseError::UnknownServerError.code())
                    });
                    (p, code)
                })
                .collect();
            (name, partitions)
        })
        .collect()
}

/// Which partitions of a commit are answered without the coordinator, in the order of
/// `offsets` (the request's, flattened), as Kafka's `handleOffsetCommitRequest` and
/// `handleTxnOffsetCommitRequest` decide: `refused` (the group's or transactional id's
/// refusal) for every one; else TOPIC_AUTHORIZATION_FAILED for topics the client may not
/// READ, then, only for readable topics so that existence is never revealed,
/// UNKNOWN_TOPIC_OR_PARTITION for topics or partitions the cluster does not have. Leaves in
/// `offsets` only those the coordinator is to commit.
pub(super) fn refuse_commit(
    api: &Api,
    client: &ClientInfo,
    group: &str,
    refused: Option<i16>,
    offsets: &mut Vec<OffsetToCommit>,
) -> Vec<Option<i16>> {
    let refused = refused.or_else(|| {
        (!api.authorized(client, Operation::Read, ResourceType::Group, group))
            .then_some(ResponseError::GroupAuthorizationFailed.code())
    });
    let refusals: Vec<Option<i16>> = match refused {
        Some(code) => vec![Some(code); offsets.len()],
        None => {
            let readable = api.authorized_names(
                client,
                Operation::Read,
                ResourceType::Topic,
                offsets.iter().map(|o| o.0.as_str()),
            );
            offsets
                .iter()
                .map(|(topic, partition, ..)| {
                    if !readable.contains(topic) {
                        Some(ResponseError::TopicAuthorizationFailed.code())
                    } else if api.cache.partition(topic, *partition).is_none() {
                        Some(ResponseError::UnknownTopicOrPartition.code())
                    } else {
                        None
                    }
                })
                .collect()
        }
    };
    let mut accepted = refusals.iter().map(Option::is_none);
    offsets.retain(|_| accepted.next().unwrap_or(false));
    refusals
}

pub async fn commit(
    api: &Api,
    client: &ClientInfo,
    request: OffsetCommitRequest,
    version: i16,
) -> OffsetCommitResponse {
    let (shape, mut offsets) = offsets_to_commit(
        request.topics.into_iter().map(|t| (t.name, t.partitions)),
        version >= 6,
    );
    let refusals = refuse_commit(api, client, &request.group_id.0, None, &mut offsets);
    // v0 has neither generation nor member id: a standalone commit.
    let (generation, member_id) = if version >= 1 {
        (
            request.generation_id_or_member_epoch,
            request.member_id.to_string(),
        )
    } else {
        (-1, String::new())
    };
    let codes = if offsets.is_empty() {
        Vec::new()
    } else {
        api.groups
            .commit(
                &request.group_id.0,
                generation,
                &member_id,
                request.group_instance_id.as_deref(),
                offsets,
                // Only v2-v4 carry a retention time; -1 leaves expiry to the broker's rule.
                if (2..=4).contains(&version) {
                    request.retention_time_ms
                } else {
                    -1
                },
            )
            .await
    };
    let mut response = OffsetCommitResponse::default();
    for (name, partitions) in commit_codes(shape, refusals, codes) {
        let mut t = OffsetCommitResponseTopic::default();
        t.name = name;
        for (p, code) in partitions {
            let mut r = OffsetCommitResponsePartition::default();
            r.partition_index = p;
            r.error_code = code;
            t.partitions.push(r);
        }
        response.topics.push(t);
    }
    response
}

/// Each topic's partitions with their committed offset, or the partition's error.
type Fetched = Vec<(String, Vec<(i32, Result<Option<CommittedOffset>, i16>)>)>;

/// One group's committed offsets as the client may see them: DESCRIBE on the group, then on
/// each topic. Topics asked for by name that it may not describe are answered
/// TOPIC_AUTHORIZATION_FAILED; asked for all, they are left out.
fn fetch_one(
    api: &Api,
    client: &ClientInfo,
    group: &str,
    topics: Option<Vec<(String, Vec<i32>)>>,
) -> Result<Fetched, i16> {
    if !api.authorized(client, Operation::Describe, ResourceType::Group, group) {
        return Err(ResponseError::GroupAuthorizationFailed.code());
    }
    let ok = |f: FetchedOffsets| -> Fetched {
        f.into_iter()
            .map(|(t, ps)| (t, ps.into_iter().map(|(p, c)| (p, Ok(c))).collect()))
            .collect()
    };
    match topics {
        None => {
            let all = api
                .groups
                .fetch(group, None)
                .map_err(|e| e.kafka_error_code())?;
            let describable = api.visible_names(
                client,
                Operation::Describe,
                ResourceType::Topic,
                all.iter().map(|(t, _)| t.as_str()),
            );
            Ok(ok(all
                .into_iter()
                .filter(|(t, _)| describable.contains(t))
                .collect()))
        }
        Some(topics) => {
            let describable = api.authorized_names(
                client,
                Operation::Describe,
                ResourceType::Topic,
                topics.iter().map(|(t, _)| t.as_str()),
            );
            let (allowed, refused): (Vec<_>, Vec<_>) = topics
                .into_iter()
                .partition(|(t, _)| describable.contains(t));
            let mut fetched = ok(api
                .groups
                .fetch(group, Some(allowed))
                .map_err(|e| e.kafka_error_code())?);
            fetched.extend(refused.into_iter().map(|(t, ps)| {
                let code = ResponseError::TopicAuthorizationFailed.code();
                (t, ps.into_iter().map(|p| (p, Err(code))).collect())
            }));
            Ok(fetched)
        }
    }
}

/// One partition's OffsetFetch answer: error, offset, leader epoch, metadata. Offset -1 and
/// empty metadata for partitions without a commit (error NONE), as Kafka does, and for an
/// `unstable` one (UNSTABLE_OFFSET_COMMIT).
fn answer(
    c: &Result<Option<CommittedOffset>, i16>,
    unstable: bool,
    version: i16,
) -> (i16, i64, i32, StrBytes) {
    match c {
        Err(code) => (*code, -1, -1, StrBytes::default()),
        _ if unstable => (
            ResponseError::UnstableOffsetCommit.code(),
            -1,
            -1,
            StrBytes::default(),
        ),
        Ok(Some(c)) => (
            errors::NONE,
            c.offset,
            if version >= 5 { c.leader_epoch } else { -1 },
            StrBytes::from_string(c.metadata.clone()),
        ),
        Ok(None) => (errors::NONE, -1, -1, StrBytes::default()),
    }
}

/// v7+ `require_stable`: a partition whose offset an open transaction is changing answers
/// UNSTABLE_OFFSET_COMMIT (the client retries) rather than the offset about to be replaced.
fn unstable(api: &Api, require_stable: bool, group: &str, topic: &str, partition: i32) -> bool {
    require_stable
        && api
            .groups
            .has_pending_transactional_offset(group, topic, partition)
}

pub fn fetch(
    api: &Api,
    client: &ClientInfo,
    request: OffsetFetchRequest,
    version: i16,
) -> OffsetFetchResponse {
    let mut response = OffsetFetchResponse::default();
    let require_stable = version >= 7 && request.require_stable;
    if version >= 8 {
        for g in request.groups {
            let topics = g.topics.map(|ts| {
                ts.into_iter()
                    .map(|t| (t.name.0.to_string(), t.partition_indexes))
                    .collect()
            });
            let mut out = OffsetFetchResponseGroup::default();
            let fetched = match fetch_one(api, client, &g.group_id.0, topics) {
                Ok(f) => f,
                Err(code) => {
                    out.error_code = code;
                    Vec::new()
                }
            };
            for (topic, partitions) in fetched {
                let mut t = OffsetFetchResponseTopics::default();
                for (p, c) in partitions {
                    let (error_code, offset, epoch, metadata) = answer(
                        &c,
                        unstable(api, require_stable, &g.group_id.0, &topic, p),
                        version,
                    );
                    let mut r = OffsetFetchResponsePartitions::default();
                    r.partition_index = p;
                    r.error_code = error_code;
                    r.committed_offset = offset;
                    r.committed_leader_epoch = epoch;
                    r.metadata = Some(metadata);
                    t.partitions.push(r);
                }
                t.name = TopicName(StrBytes::from_string(topic));
                out.topics.push(t);
            }
            out.group_id = g.group_id;
            response.groups.push(out);
        }
        return response;
    }
    // v0/v1 cannot ask for "all partitions" (null topics came with v2).
    let topics: Option<Vec<(String, Vec<i32>)>> = request.topics.map(|ts| {
        ts.into_iter()
            .map(|t| (t.name.0.to_string(), t.partition_indexes))
            .collect()
    });
    let fetched = match fetch_one(api, client, &request.group_id.0, topics.clone()) {
        Ok(f) => f,
        Err(code) if version >= 2 => {
            response.error_code = code;
            return response;
        }
        Err(code) => {
            // v0/v1 have no top-level error: Kafka puts it on every partition asked for.
            for (topic, partitions) in topics.unwrap_or_default() {
                let mut t = OffsetFetchResponseTopic::default();
                t.name = TopicName(StrBytes::from_string(topic));
                for p in partitions {
                    let mut r = OffsetFetchResponsePartition::default();
                    r.partition_index = p;
                    r.committed_offset = -1;
                    r.committed_leader_epoch = -1;
                    r.metadata = Some(StrBytes::default());
                    r.error_code = code;
                    t.partitions.push(r);
                }
                response.topics.push(t);
            }
            return response;
        }
    };
    for (topic, partitions) in fetched {
        let mut t = OffsetFetchResponseTopic::default();
        for (p, c) in partitions {
            let (error_code, offset, epoch, metadata) = answer(
                &c,
                unstable(api, require_stable, &request.group_id.0, &topic, p),
                version,
            );
            let mut r = OffsetFetchResponsePartition::default();
            r.partition_index = p;
            r.error_code = error_code;
            r.committed_offset = offset;
            r.committed_leader_epoch = epoch;
            r.metadata = Some(metadata);
            t.partitions.push(r);
        }
        t.name = TopicName(StrBytes::from_string(topic));
        response.topics.push(t);
    }
    response
}

/// OffsetDelete (KIP-496). Partitions of topics this cluster does not have are answered
/// UNKNOWN_TOPIC_OR_PARTITION without asking the coordinator, as in Kafka; a group-level error
/// replaces every partition's.
pub async fn delete(
    api: &Api,
    client: &ClientInfo,
    request: OffsetDeleteRequest,
) -> OffsetDeleteResponse {
    let mut response = OffsetDeleteResponse::default();
    // DELETE on the group, then READ on each topic (before its existence is looked at).
    if !api.authorized(
        client,
        Operation::Delete,
        ResourceType::Group,
        &request.group_id.0,
    ) {
        response.error_code = ResponseError::GroupAuthorizationFailed.code();
        return response;
    }
    let readable = api.authorized_names(
        client,
        Operation::Read,
        ResourceType::Topic,
        request.topics.iter().map(|t| t.name.0.as_str()),
    );
    let mut results: Vec<((String, i32), i16)> = Vec::new();
    let mut known = Vec::new();
    for t in request.topics {
        let topic = t.name.0.to_string();
        for p in t.partitions {
            let tp = (topic.clone(), p.partition_index);
            if !readable.contains(&topic) {
                results.push((tp, ResponseError::TopicAuthorizationFailed.code()));
            } else if api.cache.partition(&topic, p.partition_index).is_some() {
                known.push(tp);
            } else {
                results.push((tp, ResponseError::UnknownTopicOrPartition.code()));
            }
        }
    }
    match api.groups.delete_offsets(&request.group_id.0, known).await {
        Ok(r) => results.extend(
            r.into_iter()
                .map(|(tp, outcome)| (tp, errors::code_or_none(outcome.as_ref().err()))),
        ),
        Err(e) => {
            response.error_code = e.kafka_error_code();
            return response;
        }
    }
    for ((topic, partition), code) in results {
        let name = TopicName(StrBytes::from_string(topic));
        let mut r = OffsetDeleteResponsePartition::default();
        r.partition_index = partition;
        r.error_code = code;
        match response.topics.iter_mut().find(|t| t.name == name) {
            Some(t) => t.partitions.push(r),
            None => {
                let mut t = OffsetDeleteResponseTopic::default();
                t.name = name;
                t.partitions.push(r);
                response.topics.push(t);
            }
        }
    }
    response
}
