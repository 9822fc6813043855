//! Writing a prepared transaction's COMMIT/ABORT markers to every partition's leader (Kafka's
//! `TransactionMarkerChannelManager`): WriteTxnMarkers through this broker's own handler or over
//! one kept connection per other broker, retried until every partition has its marker, then
//! the CompleteCommit/CompleteAbort state.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::write_txn_markers_request::{
    WritableTxnMarker, WritableTxnMarkerTopic,
};
use kafka_protocol::messages::{
    ApiKey, ProducerId, RequestKind, ResponseKind, TopicName, WriteTxnMarkersRequest,
    WriteTxnMarkersResponse,
};
use kafka_protocol::protocol::StrBytes;
use tokio::time::Instant;

use super::records::TxnState;
use super::state_manager::Transit;
use super::{TransactionCoordinator, now_ms};
use crate::client::ClientId;
use crate::protocol::errors;

/// How long one WriteTxnMarkers exchange with another broker may take.
const MARKER_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a partition of a transaction must be missing from the metadata before the
/// coordinator takes it for deleted and writes no marker there.
const UNKNOWN_PARTITION_GRACE: Duration = Duration::from_secs(30);

impl TransactionCoordinator {
    /// Writes the markers of a prepared transaction to every partition in it, then its
    /// CompleteCommit/CompleteAbort state. Gives up only when this broker stops coordinating
    /// the id (the next coordinator finishes the job from the log).
    pub(super) async fn complete_transaction(
        self: Arc<Self>,
        transactional_id: String,
        prepared: Transit,
    ) {
        let value = &prepared.target;
        let commit = value.state == TxnState::PrepareCommit;
        let mut remaining: BTreeSet<(String, i32)> = value.partitions.clone();
        let mut backoff = Duration::from_millis(20);
        // Since when each partition has been missing from the metadata this broker knows.
        let mut unknown_since: HashMap<(String, i32), Instant> = HashMap::new();
        while !remaining.is_empty() {
            if !self.still_coordinator(prepared.partition, prepared.coordinator_epoch) {
                tracing::info!(
                    transactional_id,
                    "no longer coordinator; leaving the markers to the next one"
                );
                return;
            }
            let mut by_broker: BTreeMap<i32, Vec<(String, i32)>> = BTreeMap::new();
            let mut deleted = Vec::new();
            for (topic, p) in &remaining {
                let key = (topic.clone(), *p);
                match self.cache.partition(topic, *p) {
                    Some(info) if info.leader >= 0 => {
                        unknown_since.remove(&key);
                        by_broker.entry(info.leader).or_default().push(key);
                    }
                    Some(_) => {
                        unknown_since.remove(&key);
                    }
                    None => {
                        // A deleted partition needs no marker (Kafka drops it too). Right after
                        // a start or a coordinator move the metadata may simply not list it
                        // yet, so it counts as deleted only once it stayed unknown a while.
                        let since = *unknown_since
                            .entry(key.clone())
                            .or_insert_with(Instant::now);
                        if since.elapsed() >= UNKNOWN_PARTITION_GRACE {
                            tracing::info!(
                                transactional_id,
                                topic,
                                partition = p,
                                "no marker for a partition that no longer exists"
                            );
                            deleted.push(key);
                        }
                    }
                }
            }
            for key in deleted {
                remaining.remove(&key);
            }
            for (broker, partitions) in by_broker {
                if broker < 0 {
                    continue;
                }
                let request = marker_request(
                    value.producer_id,
                    value.producer_epoch,
                    commit,
                    prepared.coordinator_epoch,
                    &partitions,
                );
                match self.send_markers(broker, request).await {
                    Ok(response) => {
                        for m in response.markers {
                            for t in m.topics {
                                for p in t.partitions {
                                    let key = (t.name.0.to_string(), p.partition_index);
                                    match p.error_code {
                                        errors::NONE => {
                                            remaining.remove(&key);
                                        }
                                        code => tracing::debug!(
                                            transactional_id,
                                            topic = key.0,
                                            partition = key.1,
                                            error = code,
                                            "marker not written; retrying"
                                        ),
                                    }
                                }
                            }
                        }
                    }
                    Err(e) => {
                        tracing::debug!(transactional_id, broker, error = %e, "cannot send markers; retrying")
                    }
                }
            }
            if !remaining.is_empty() {
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
            }
        }
        // Every marker is written: the transaction is complete.
        for attempt in 0..50 {
            if !self.still_coordinator(prepared.partition, prepared.coordinator_epoch) {
                return;
            }
            let transit = {
                let mut txns = self.lock();
                let Some(m) = txns.get_mut(&transactional_id) else {
                    return;
                };
                if m.value.producer_id != value.producer_id
                    || m.value.producer_epoch != value.producer_epoch
                    || m.value.state != value.state
                {
                    return;
                }
                if m.pending.is_some() {
                    None
                } else {
                    let mut target = m.value.clone();
                    target.state = if commit {
                        TxnState::CompleteCommit
                    } else {
                        TxnState::CompleteAbort
                    };
                    target.partitions.clear();
                    target.last_update_timestamp = now_ms();
                    m.pending = Some(target.state);
                    Some(Transit {
                        partition: prepared.partition,
                        coordinator_epoch: prepared.coordinator_epoch,
                        target,
                    })
                }
            };
            if let Some(transit) = transit {
                match self.write_and_apply(&transactional_id, &transit).await {
                    Ok(()) => {
                        tracing::debug!(transactional_id, commit, "transaction complete");
                        return;
                    }
                    Err(code) => {
                        tracing::warn!(
                            transactional_id,
                            error = %code,
                            attempt,
                            "cannot write the completed transaction; retrying"
                        )
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Sends WriteTxnMarkers to a broker: this one through its own handler, others over the
    /// wire on one kept connection each.
    async fn send_markers(
        &self,
        broker: i32,
        request: WriteTxnMarkersRequest,
    ) -> Result<WriteTxnMarkersResponse, String> {
        if broker == self.config.broker_id {
            let local = self.local.get().ok_or("no local delivery")?;
            return match local(RequestKind::WriteTxnMarkers(request), 1).await {
                Some(ResponseKind::WriteTxnMarkers(r)) => Ok(r),
                _ => Err("no WriteTxnMarkers response".into()),
            };
        }
        let addr = self
            .cache
            .broker_address(broker, &self.config.inter_broker_listener)
            .ok_or_else(|| format!("broker {broker} is not known"))?;
        let slot = {
            let mut conns = self.connections.lock().await;
            conns.entry(broker).or_default().clone()
        };
        let mut conn = slot.lock().await;
        if conn.is_none() {
            let client = ClientId::txn_marker_sender(self.config.broker_id);
            let c = tokio::time::timeout(
                MARKER_REQUEST_TIMEOUT,
                self.config.inter_broker_security.connect(&addr, &client),
            )
            .await
            .map_err(|_| format!("connecting to {addr} timed out"))?
            .map_err(|e| {
                // The caller retries quietly; wrong credentials are said at ERROR.
                if e.is_authentication() {
                    tracing::error!(
                        broker,
                        addr,
                        error = %e,
                        "connection to broker failed authentication; transaction markers wait"
                    );
                }
                e.to_string()
            })?;
            *conn = Some(c);
        }
        let Some(c) = conn.as_mut() else {
            return Err("no connection".into());
        };
        let result = tokio::time::timeout(
            MARKER_REQUEST_TIMEOUT,
            c.call_upto(
                ApiKey::WriteTxnMarkers,
                self.config
                    .inter_broker_protocol_version
                    .write_txn_markers(),
                RequestKind::WriteTxnMarkers(request),
            ),
        )
        .await;
        match result {
            Ok(Ok(ResponseKind::WriteTxnMarkers(r))) => Ok(r),
            Ok(Ok(_)) => {
                *conn = None;
                Err("unexpected response".into())
            }
            Ok(Err(e)) => {
                *conn = None;
                Err(e.to_string())
            }
            Err(_) => {
                *conn = None;
                Err(format!("WriteTxnMarkers to {addr} timed out"))
            }
        }
    }
}

fn marker_request(
    producer_id: i64,
    producer_epoch: i16,
    commit: bool,
    coordinator_epoch: i32,
    partitions: &[(String, i32)],
) -> WriteTxnMarkersRequest {
    let mut marker = WritableTxnMarker::default();
    marker.producer_id = ProducerId(producer_id);
    marker.producer_epoch = producer_epoch;
    marker.transaction_result = commit;
    marker.coordinator_epoch = coordinator_epoch;
    for (topic, p) in partitions {
        match marker.topics.last_mut() {
            Some(t) if t.name.0.as_str() == topic => t.partition_indexes.push(*p),
            _ => {
                let mut t = WritableTxnMarkerTopic::default();
                t.name = TopicName(StrBytes::from_string(topic.clone()));
                t.partition_indexes.push(*p);
                marker.topics.push(t);
            }
        }
    }
    let mut request = WriteTxnMarkersRequest::default();
    request.markers.push(marker);
    request
}
