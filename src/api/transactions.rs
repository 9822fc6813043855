//! Transaction APIs: AddPartitionsToTxn, AddOffsetsToTxn, EndTxn, TxnOffsetCommit,
//! WriteTxnMarkers, DescribeTransactions, ListTransactions. The decisions are the transaction
//! coordinator's (`crate::txn`) and, for offsets, the group coordinator's; this module maps the
//! wire versions.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::describe_transactions_response::{TopicData, TransactionState};
use kafka_protocol::messages::list_transactions_response::TransactionState as ListedTransaction;
use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::write_txn_markers_response::{
    WritableTxnMarkerPartitionResult, WritableTxnMarkerResult, WritableTxnMarkerTopicResult,
};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

use super::errors::KafkaCode;
use super::{Api, ClientInfo, errors};
use crate::group::OFFSETS_TOPIC;
use crate::metadata::cache::INTERNAL_TOPICS;
use crate::security::acl::{Operation, ResourceType};
use crate::txn::records::TxnState as State;

/// One transaction's AddPartitionsToTxn: an error per partition. From a client (`client` is
/// given, v0-3), WRITE on the transactional id and on each topic (internal topics never);
/// partitions of topics it may not write get TOPIC_AUTHORIZATION_FAILED, of unknown topics
/// UNKNOWN_TOPIC_OR_PARTITION, and the others OPERATION_NOT_ATTEMPTED, as in Kafka.
#[allow(clippy::too_many_arguments)]
async fn add_partitions_one(
    api: &Api,
    client: Option<&ClientInfo>,
    transactional_id: &str,
    producer_id: i64,
    producer_epoch: i16,
    topics: &[add_partitions_to_txn_request::AddPartitionsToTxnTopic],
    verify_only: bool,
    version: i16,
) -> Vec<AddPartitionsToTxnTopicResult> {
    let wanted: Vec<(String, i32)> = topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| (t.name.0.to_string(), *p)))
        .collect();
    let writable = client.map(|client| {
        let id_allowed = api.authorized(
            client,
            Operation::Write,
            ResourceType::TransactionalId,
            transactional_id,
        );
        let topics = api.authorized_names(
            client,
            Operation::Write,
            ResourceType::Topic,
            wanted
                .iter()
                .map(|(t, _)| t.as_str())
                .filter(|t| !INTERNAL_TOPICS.contains(t)),
        );
        (id_allowed, topics)
    });
    let failed: Vec<Option<i16>> = wanted
        .iter()
        .map(|(t, p)| match &writable {
            Some((_, topics)) if !topics.contains(t) => {
                Some(ResponseError::TopicAuthorizationFailed.code())
            }
            _ if api.cache.partition(t, *p).is_none() => {
                Some(ResponseError::UnknownTopicOrPartition.code())
            }
            _ => None,
        })
        .collect();
    let codes_for: Vec<i16> = if writable.as_ref().is_some_and(|(id, _)| !id) {
        vec![ResponseError::TransactionalIdAuthorizationFailed.code(); wanted.len()]
    } else if failed.iter().any(Option::is_some) {
        failed
            .iter()
            .map(|f| f.unwrap_or(ResponseError::OperationNotAttempted.code()))
            .collect()
    } else if verify_only {
        match api
            .txn
            .verify_partitions(transactional_id, producer_id, producer_epoch, &wanted)
        {
            Ok(outcomes) => outcomes
                .iter()
                .map(|o| errors::code_or_none(o.as_ref().err()))
                .collect(),
            Err(e) => vec![e.kafka_error_code(); wanted.len()],
        }
    } else {
        let code = match api
            .txn
            .add_partitions(transactional_id, producer_id, producer_epoch, &wanted)
            .await
        {
            Ok(()) => errors::NONE,
            Err(e) => errors::txn_code(version, 2, e),
        };
        vec![code; wanted.len()]
    };
    let mut out: Vec<AddPartitionsToTxnTopicResult> = Vec::new();
    let mut codes_iter = codes_for.into_iter();
    for t in topics {
        let mut r = AddPartitionsToTxnTopicResult::default();
        r.name = t.name.clone();
        for p in &t.partitions {
            let mut pr = AddPartitionsToTxnPartitionResult::default();
            pr.partition_index = *p;
            pr.partition_error_code = codes_iter
                .next()
                .unwrap_or(ResponseError::UnknownServerError.code());
            r.results_by_partition.push(pr);
        }
        out.push(r);
    }
    out
}

pub async fn add_partitions(
    api: &Api,
    client: &ClientInfo,
    request: AddPartitionsToTxnRequest,
    version: i16,
) -> AddPartitionsToTxnResponse {
    let mut response = AddPartitionsToTxnResponse::default();
    if version <= 3 {
        response.results_by_topic_v3_and_below = add_partitions_one(
            api,
            Some(client),
            &request.v3_and_below_transactional_id,
            request.v3_and_below_producer_id.0,
            request.v3_and_below_producer_epoch,
            &request.v3_and_below_topics,
            false,
            version,
        )
        .await;
        return response;
    }
    // v4+: the batched form brokers send to verify a produce (KIP-890), which only brokers
    // may (CLUSTER_ACTION); the transactions' ids and topics are then not checked.
    if !api.authorized_on_cluster(client, Operation::ClusterAction) {
        response.error_code = ResponseError::ClusterAuthorizationFailed.code();
        return response;
    }
    for t in &request.transactions {
        let mut r = AddPartitionsToTxnResult::default();
        r.transactional_id = t.transactional_id.clone();
        r.topic_results = add_partitions_one(
            api,
            None,
            &t.transactional_id,
            t.producer_id.0,
            t.producer_epoch,
            &t.topics,
            t.verify_only,
            version,
        )
        .await;
        response.results_by_transaction.push(r);
    }
    response
}

/// The transaction APIs from producers need WRITE on their transactional id.
fn may_write_transaction(api: &Api, client: &ClientInfo, id: &str) -> bool {
    api.authorized(client, Operation::Write, ResourceType::TransactionalId, id)
}

pub async fn add_offsets(
    api: &Api,
    client: &ClientInfo,
    request: AddOffsetsToTxnRequest,
    version: i16,
) -> AddOffsetsToTxnResponse {
    let mut response = AddOffsetsToTxnResponse::default();
    if !may_write_transaction(api, client, &request.transactional_id) {
        response.error_code = ResponseError::TransactionalIdAuthorizationFailed.code();
        return response;
    }
    if !api.authorized(
        client,
        Operation::Read,
        ResourceType::Group,
        &request.group_id,
    ) {
        response.error_code = ResponseError::GroupAuthorizationFailed.code();
        return response;
    }
    // The group's offsets partition joins the transaction, so the markers reach it.
    let partition = api.groups.partition_for(&request.group_id.0);
    let wanted = [(OFFSETS_TOPIC.to_string(), partition)];
    response.error_code = match api
        .txn
        .add_partitions(
            &request.transactional_id,
            request.producer_id.0,
            request.producer_epoch,
            &wanted,
        )
        .await
    {
        Ok(()) => errors::NONE,
        Err(e) => errors::txn_code(version, 2, e),
    };
    response
}

pub async fn end_txn(
    api: &Api,
    client: &ClientInfo,
    request: EndTxnRequest,
    version: i16,
) -> EndTxnResponse {
    let mut response = EndTxnResponse::default();
    if !may_write_transaction(api, client, &request.transactional_id) {
        response.error_code = ResponseError::TransactionalIdAuthorizationFailed.code();
        return response;
    }
    response.error_code = match api
        .txn
        .end_transaction(
            &request.transactional_id,
            request.producer_id.0,
            request.producer_epoch,
            request.committed,
            true,
        )
        .await
    {
        Ok(()) => errors::NONE,
        Err(e) => errors::txn_code(version, 2, e),
    };
    response
}

pub async fn txn_offset_commit(
    api: &Api,
    client: &ClientInfo,
    request: TxnOffsetCommitRequest,
    version: i16,
) -> TxnOffsetCommitResponse {
    let (shape, mut offsets) = super::offsets::offsets_to_commit(
        request.topics.into_iter().map(|t| (t.name, t.partitions)),
        version >= 2,
    );
    // WRITE on the transactional id, then READ on the group and on each topic, then existence.
    let refused = (!may_write_transaction(api, client, &request.transactional_id))
        .then_some(ResponseError::TransactionalIdAuthorizationFailed.code());
    let refusals =
        super::offsets::refuse_commit(api, client, &request.group_id.0, refused, &mut offsets);
    // v3+ (KIP-447) names the member; older clients commit as the whole group.
    let (generation, member_id, instance) = if version >= 3 {
        (
            request.generation_id,
            request.member_id.to_string(),
            request.group_instance_id.map(|i| i.to_string()),
        )
    } else {
        (-1, String::new(), None)
    };
    let results = if offsets.is_empty() {
        Vec::new()
    } else {
        api.groups
            .commit_transactional(
                &request.group_id.0,
                request.producer_id.0,
                request.producer_epoch,
                generation,
                &member_id,
                instance.as_deref(),
                offsets,
            )
            .await
    };
    let mut response = TxnOffsetCommitResponse::default();
    for (name, partitions) in super::offsets::commit_codes(shape, refusals, results) {
        let mut t = TxnOffsetCommitResponseTopic::default();
        t.name = name;
        for (p, code) in partitions {
            let mut r = TxnOffsetCommitResponsePartition::default();
            r.partition_index = p;
            r.error_code = code;
            t.partitions.push(r);
        }
        response.topics.push(t);
    }
    response
}

/// WriteTxnMarkers (from a transaction coordinator, possibly this broker's): the COMMIT or
/// ABORT marker on each partition led here.
pub async fn write_markers(api: &Api, request: WriteTxnMarkersRequest) -> WriteTxnMarkersResponse {
    let mut response = WriteTxnMarkersResponse::default();
    for marker in request.markers {
        let mut result = WritableTxnMarkerResult::default();
        result.producer_id = marker.producer_id;
        for t in marker.topics {
            let name = t.name.0.to_string();
            let mut tr = WritableTxnMarkerTopicResult::default();
            tr.name = t.name.clone();
            for p in t.partition_indexes {
                let mut pr = WritableTxnMarkerPartitionResult::default();
                pr.partition_index = p;
                pr.error_code = match api.replicas.leader(&name, p) {
                    None => api.not_leader_error(&name, p),
                    Some(part) => match api
                        .replicas
                        .append_marker(
                            &part,
                            marker.producer_id.0,
                            marker.producer_epoch,
                            marker.transaction_result,
                            marker.coordinator_epoch,
                        )
                        .await
                    {
                        // Kafka appends markers with acks=-1: the coordinator counts a
                        // transaction complete only once its markers are replicated.
                        Ok(info) => match api
                            .replicas
                            .wait_for_acks(
                                &part,
                                info.last_offset,
                                std::time::Duration::from_millis(api.config.request_timeout_ms),
                            )
                            .await
                        {
                            Err(e) => {
                                tracing::warn!(topic = name, partition = p, error = ?e, "transaction marker not replicated");
                                e.kafka_error_code()
                            }
                            Ok(()) => {
                                if name == OFFSETS_TOPIC {
                                    api.groups.complete_transaction(
                                        p,
                                        marker.producer_id.0,
                                        marker.transaction_result,
                                    );
                                }
                                errors::NONE
                            }
                        },
                        Err(e) => {
                            tracing::warn!(topic = name, partition = p, error = %e, "cannot write transaction marker");
                            e.kafka_error_code()
                        }
                    },
                };
                tr.partitions.push(pr);
            }
            result.topics.push(tr);
        }
        response.markers.push(result);
    }
    response
}

pub fn describe(
    api: &Api,
    client: &ClientInfo,
    request: DescribeTransactionsRequest,
) -> DescribeTransactionsResponse {
    let mut response = DescribeTransactionsResponse::default();
    for id in request.transactional_ids {
        let mut s = TransactionState::default();
        let described = if api.authorized(
            client,
            Operation::Describe,
            ResourceType::TransactionalId,
            &id,
        ) {
            api.txn.describe(&id).map_err(|e| e.kafka_error_code())
        } else {
            Err(ResponseError::TransactionalIdAuthorizationFailed.code())
        };
        match described {
            Ok(d) => {
                // Topics the client may not describe are left out of the transaction's.
                let describable = api.visible_names(
                    client,
                    Operation::Describe,
                    ResourceType::Topic,
                    d.value.partitions.iter().map(|(t, _)| t.as_str()),
                );
                s.transaction_state = StrBytes::from_static_str(d.value.state.name());
                s.transaction_timeout_ms = d.value.timeout_ms;
                s.transaction_start_time_ms = d.value.start_timestamp;
                s.producer_id = ProducerId(d.value.producer_id);
                s.producer_epoch = d.value.producer_epoch;
                let mut topics: Vec<TopicData> = Vec::new();
                for (topic, p) in d.value.partitions {
                    if !describable.contains(&topic) {
                        continue;
                    }
                    match topics.last_mut() {
                        Some(t) if t.topic.0.as_str() == topic => t.partitions.push(p),
                        _ => {
                            let mut t = TopicData::default();
                            t.topic = TopicName(StrBytes::from_string(topic));
                            t.partitions.push(p);
                            topics.push(t);
                        }
                    }
                }
                s.topics = topics;
            }
            Err(code) => {
                s.error_code = code;
                s.transaction_state = StrBytes::default();
                s.transaction_start_time_ms = -1;
                s.producer_id = ProducerId(-1);
                s.producer_epoch = -1;
            }
        }
        s.transactional_id = id;
        response.transaction_states.push(s);
    }
    response
}

pub fn list(
    api: &Api,
    client: &ClientInfo,
    request: ListTransactionsRequest,
    version: i16,
) -> ListTransactionsResponse {
    let mut response = ListTransactionsResponse::default();
    let known = [
        State::Empty,
        State::Ongoing,
        State::PrepareCommit,
        State::PrepareAbort,
        State::CompleteCommit,
        State::CompleteAbort,
        State::Dead,
        State::PrepareEpochFence,
    ];
    let mut states = Vec::new();
    for f in &request.state_filters {
        match known.iter().find(|s| s.name() == f.as_str()) {
            Some(s) => states.push(*s),
            None => response.unknown_state_filters.push(f.clone()),
        }
    }
    let now = crate::log::segment::now_ms();
    for d in api.txn.list() {
        if !request.state_filters.is_empty() && !states.contains(&d.value.state) {
            continue;
        }
        if !request.producer_id_filters.is_empty()
            && !request
                .producer_id_filters
                .iter()
                .any(|p| p.0 == d.value.producer_id)
        {
            continue;
        }
        // Transactions the client may not describe are left out.
        if !api.authorized_quietly(
            client,
            Operation::Describe,
            ResourceType::TransactionalId,
            &d.transactional_id,
        ) {
            continue;
        }
        // v1+ (KIP-994): only transactions running longer than the duration.
        if version >= 1
            && request.duration_filter >= 0
            && now - d.value.start_timestamp < request.duration_filter
        {
            continue;
        }
        let mut t = ListedTransaction::default();
        t.transactional_id = TransactionalId(StrBytes::from_string(d.transactional_id));
        t.producer_id = ProducerId(d.value.producer_id);
        t.transaction_state = StrBytes::from_static_str(d.value.state.name());
        response.transaction_states.push(t);
    }
    response
}
