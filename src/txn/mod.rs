//! The transaction coordinator (Kafka's `TransactionCoordinator` and `TransactionStateManager`):
//! each transactional id's producer id and epoch, state and partitions, persisted as Kafka-format
//! records in `__transaction_state` and served by the leader of the partition the id hashes to.
//!
//! A transition is decided under the lock (the id is marked pending, so concurrent requests get
//! CONCURRENT_TRANSACTIONS), written to the log without the lock, then applied. Ending a
//! transaction writes PrepareCommit/PrepareAbort, answers the client, sends the COMMIT/ABORT
//! markers to every partition's leader (WriteTxnMarkers, over the wire unless the leader is this
//! broker) and finally writes CompleteCommit/CompleteAbort. A coordinator that takes over a
//! partition finishes the prepared transactions it finds there; ongoing ones are aborted when
//! their timeout passes.
//!
//! Differences from Kafka, for now: appends to `__transaction_state` do not wait for the
//! followers (the replica layer's acks=all path decides that for every internal topic alike);
//! partition leaders on other brokers do not verify a transactional produce with the
//! coordinator (AddPartitionsToTxn v4, KIP-890): only a coordinator on the same broker checks
//! that the partition was added; producer state in partitions does not expire
//! (`producer.id.expiration.ms`).

pub mod producer_ids;
pub mod records;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::write_txn_markers_request::{
    WritableTxnMarker, WritableTxnMarkerTopic,
};
use kafka_protocol::messages::{
    ApiKey, ProducerId, RequestKind, ResponseKind, TopicName, WriteTxnMarkersRequest,
    WriteTxnMarkersResponse,
};
use kafka_protocol::protocol::StrBytes;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::config::BrokerConfig;
use crate::controller::Controller;
use crate::controller::channel::LocalDelivery;
use crate::log::records::{BatchBuilder, NewRecord, decode_batch};
use crate::log::{LogError, batch};
use crate::metadata::MetadataCache;
use crate::replica::ReplicaManager;
use crate::tools::client::Connection;
use producer_ids::ProducerIdManager;
use records::{TxnState, TxnValue};

pub const TRANSACTION_STATE_TOPIC: &str = "__transaction_state";

/// Kafka error codes the coordinator answers with.
pub mod codes {
    pub const NONE: i16 = 0;
    pub const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
    pub const COORDINATOR_LOAD_IN_PROGRESS: i16 = 14;
    pub const COORDINATOR_NOT_AVAILABLE: i16 = 15;
    pub const NOT_COORDINATOR: i16 = 16;
    pub const INVALID_REQUEST: i16 = 42;
    pub const INVALID_PRODUCER_EPOCH: i16 = 47;
    pub const INVALID_TXN_STATE: i16 = 48;
    pub const INVALID_PRODUCER_ID_MAPPING: i16 = 49;
    pub const INVALID_TRANSACTION_TIMEOUT: i16 = 50;
    pub const CONCURRENT_TRANSACTIONS: i16 = 51;
    pub const OPERATION_NOT_ATTEMPTED: i16 = 55;
    pub const PRODUCER_FENCED: i16 = 90;
    pub const TRANSACTIONAL_ID_NOT_FOUND: i16 = 105;
    pub const UNKNOWN_SERVER_ERROR: i16 = -1;
}

/// How long one WriteTxnMarkers exchange with another broker may take.
const MARKER_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a partition of a transaction must be missing from the metadata before the
/// coordinator takes it for deleted and writes no marker there.
const UNKNOWN_PARTITION_GRACE: Duration = Duration::from_secs(30);
/// `transaction.state.log.load.buffer.size`.
const LOAD_BUFFER: usize = 5 * 1024 * 1024;

fn now_ms() -> i64 {
    crate::log::segment::now_ms()
}

/// Kafka's `TransactionMetadata.isEpochExhausted`: the last epoch is kept for fencing.
fn epoch_exhausted(epoch: i16) -> bool {
    epoch >= i16::MAX - 1
}

struct TxnMetadata {
    value: TxnValue,
    /// The `__transaction_state` partition the id lives in.
    partition: i32,
    last_producer_id: i64,
    last_producer_epoch: i16,
    /// A transition being written: requests meanwhile get CONCURRENT_TRANSACTIONS.
    pending: Option<TxnState>,
}

/// What DescribeTransactions and ListTransactions show of one transactional id.
#[derive(Debug, Clone)]
pub struct TxnDescription {
    pub transactional_id: String,
    pub value: TxnValue,
}

/// A transition decided under the lock, to be written and then applied.
struct Transit {
    partition: i32,
    coordinator_epoch: i32,
    target: TxnValue,
}

pub struct TransactionCoordinator {
    config: Arc<BrokerConfig>,
    cache: Arc<MetadataCache>,
    replicas: Arc<ReplicaManager>,
    controller: Arc<Controller>,
    txns: Mutex<HashMap<String, TxnMetadata>>,
    /// `__transaction_state` partitions this broker coordinates, with the coordinator epoch
    /// (the partition's leader epoch when it was loaded), which markers carry.
    loaded: Mutex<HashMap<i32, i32>>,
    loading: Mutex<HashSet<i32>>,
    topic_creation: tokio::sync::Mutex<()>,
    /// WriteTxnMarkers to this broker skip the network.
    local: OnceLock<LocalDelivery>,
    /// One connection per other broker for WriteTxnMarkers.
    connections: tokio::sync::Mutex<HashMap<i32, Arc<tokio::sync::Mutex<Option<Connection>>>>>,
    stopping: AtomicBool,
}

impl TransactionCoordinator {
    pub fn new(
        config: Arc<BrokerConfig>,
        cache: Arc<MetadataCache>,
        replicas: Arc<ReplicaManager>,
        controller: Arc<Controller>,
    ) -> Self {
        TransactionCoordinator {
            config,
            cache,
            replicas,
            controller,
            txns: Mutex::new(HashMap::new()),
            loaded: Mutex::new(HashMap::new()),
            loading: Mutex::new(HashSet::new()),
            topic_creation: tokio::sync::Mutex::new(()),
            local: OnceLock::new(),
            connections: tokio::sync::Mutex::new(HashMap::new()),
            stopping: AtomicBool::new(false),
        }
    }

    pub fn set_local_delivery(&self, local: LocalDelivery) {
        let _ = self.local.set(local);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, TxnMetadata>> {
        self.txns.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn state_partitions(&self) -> i32 {
        self.cache
            .topic(TRANSACTION_STATE_TOPIC)
            .map(|t| t.partitions.len() as i32)
            .filter(|&n| n > 0)
            .unwrap_or(self.config.transaction_state_log_num_partitions)
    }

    /// The `__transaction_state` partition of a transactional id (the group formula).
    pub fn partition_for(&self, transactional_id: &str) -> i32 {
        crate::group::records::partition_for(transactional_id, self.state_partitions())
    }

    /// Creates `__transaction_state` on first use, with Kafka's enforced configs.
    async fn ensure_topic(&self) -> Result<(), i16> {
        self.controller
            .ensure_internal_topic(
                &self.topic_creation,
                TRANSACTION_STATE_TOPIC,
                self.config.transaction_state_log_num_partitions,
                self.config.transaction_state_log_replication_factor,
                || {
                    BTreeMap::from([
                        ("cleanup.policy".to_string(), "compact".to_string()),
                        ("compression.type".to_string(), "uncompressed".to_string()),
                        ("unclean.leader.election.enable".to_string(), "false".into()),
                        (
                            "min.insync.replicas".to_string(),
                            self.config.transaction_state_log_min_isr.to_string(),
                        ),
                        (
                            "segment.bytes".to_string(),
                            self.config.transaction_state_log_segment_bytes.to_string(),
                        ),
                    ])
                },
            )
            .await
            .map_err(|e| {
                tracing::warn!(error = %e, "cannot create {TRANSACTION_STATE_TOPIC}");
                codes::COORDINATOR_NOT_AVAILABLE
            })
    }

    /// FindCoordinator for a transactional id: the leader of its partition.
    pub async fn coordinator_broker(&self, transactional_id: &str) -> Result<i32, i16> {
        self.ensure_topic().await?;
        match self.cache.partition(
            TRANSACTION_STATE_TOPIC,
            self.partition_for(transactional_id),
        ) {
            Some(p) if p.leader >= 0 => Ok(p.leader),
            _ => Err(codes::COORDINATOR_NOT_AVAILABLE),
        }
    }

    /// This broker's coordinator epoch for the id's partition, or why it cannot answer.
    fn coordinator_epoch(&self, partition: i32) -> Result<i32, i16> {
        if self
            .loading
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&partition)
        {
            return Err(codes::COORDINATOR_LOAD_IN_PROGRESS);
        }
        self.loaded
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&partition)
            .copied()
            .ok_or(codes::NOT_COORDINATOR)
    }

    fn still_coordinator(&self, partition: i32, epoch: i32) -> bool {
        !self.stopping.load(Ordering::Acquire)
            && self
                .loaded
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(&partition)
                == Some(&epoch)
    }

    /// Writes a transactional id's new state to its partition (Kafka's `appendTransactionToLog`,
    /// with its error mapping).
    async fn write(&self, transactional_id: &str, transit: &Transit) -> Result<(), i16> {
        self.write_record(
            transactional_id,
            transit.partition,
            transit.coordinator_epoch,
            Some(records::value(&transit.target)),
        )
        .await
    }

    /// Appends one record for the id, a tombstone when `value` is `None`.
    async fn write_record(
        &self,
        transactional_id: &str,
        state_partition: i32,
        coordinator_epoch: i32,
        value: Option<Vec<u8>>,
    ) -> Result<(), i16> {
        let Some(partition) = self
            .replicas
            .leader(TRANSACTION_STATE_TOPIC, state_partition)
        else {
            return Err(codes::NOT_COORDINATOR);
        };
        if partition.leader_epoch() != coordinator_epoch {
            return Err(codes::NOT_COORDINATOR);
        }
        let now = now_ms();
        let bytes = BatchBuilder {
            records: vec![NewRecord {
                timestamp: now,
                key: Some(records::key(transactional_id)),
                value,
                headers: Vec::new(),
            }],
            ..BatchBuilder::default()
        }
        .build()
        .map_err(|_| codes::UNKNOWN_SERVER_ERROR)?;
        // As Kafka (TransactionLog.EnforcedRequiredAcks): acknowledged once the ISR has it, so
        // that a new coordinator after a failover reads every state the clients were told of.
        let written = self
            .replicas
            .append_acked(
                &partition,
                Bytes::from(bytes),
                std::time::Duration::from_millis(self.config.request_timeout_ms),
            )
            .await
            .map(|_| ())
            .inspect_err(|code| {
                tracing::warn!(
                    transactional_id,
                    error = code,
                    "cannot write transaction state"
                );
            });
        // Kafka's appendTransactionToLog callback.
        written.map_err(|code| match code {
            3 | 19 | 20 | 7 => codes::COORDINATOR_NOT_AVAILABLE,
            6 | 56 => codes::NOT_COORDINATOR,
            _ => codes::UNKNOWN_SERVER_ERROR,
        })
    }

    /// Applies (or, on failure, forgets) a transition written with `write`.
    fn finish(&self, transactional_id: &str, transit: &Transit, ok: bool) {
        let mut txns = self.lock();
        if let Some(m) = txns.get_mut(transactional_id) {
            m.pending = None;
            if ok {
                m.value = transit.target.clone();
            }
        }
    }

    async fn write_and_apply(&self, transactional_id: &str, transit: &Transit) -> Result<(), i16> {
        let written = self.write(transactional_id, transit).await;
        // The coordinator may have moved while the append ran.
        let ok =
            written.is_ok() && self.still_coordinator(transit.partition, transit.coordinator_epoch);
        self.finish(transactional_id, transit, ok);
        match written {
            Ok(()) if !ok => Err(codes::NOT_COORDINATOR),
            other => other,
        }
    }

    // -------------------------------------------------------------------------------------
    // InitProducerId
    // -------------------------------------------------------------------------------------

    /// InitProducerId with a transactional id: the producer id and its new epoch. `expected`
    /// is the id and epoch the producer had (v3+, KIP-360), when it says.
    pub async fn init_producer_id(
        self: &Arc<Self>,
        transactional_id: &str,
        timeout_ms: i32,
        expected: Option<(i64, i16)>,
        producer_ids: &ProducerIdManager,
    ) -> Result<(i64, i16), i16> {
        if transactional_id.is_empty() {
            return Err(codes::INVALID_REQUEST);
        }
        if timeout_ms <= 0 || timeout_ms > self.config.transaction_max_timeout_ms {
            return Err(codes::INVALID_TRANSACTION_TIMEOUT);
        }
        let partition = self.partition_for(transactional_id);
        let coordinator_epoch = self.coordinator_epoch(partition)?;
        let exists = self.lock().contains_key(transactional_id);
        if !exists {
            let id = producer_ids.next_id().await.map_err(|e| {
                tracing::warn!(error = %e, "could not allocate a producer id");
                codes::COORDINATOR_NOT_AVAILABLE
            })?;
            self.lock()
                .entry(transactional_id.to_string())
                .or_insert_with(|| TxnMetadata {
                    value: TxnValue {
                        producer_id: id,
                        producer_epoch: -1,
                        timeout_ms,
                        state: TxnState::Empty,
                        partitions: BTreeSet::new(),
                        last_update_timestamp: now_ms(),
                        start_timestamp: -1,
                    },
                    partition,
                    last_producer_id: -1,
                    last_producer_epoch: -1,
                    pending: None,
                });
        }
        // An exhausted epoch needs a new producer id, which is allocated without the lock.
        let rotate_to = {
            let txns = self.lock();
            match txns.get(transactional_id) {
                Some(m) if epoch_exhausted(m.value.producer_epoch) => Some(()),
                _ => None,
            }
        };
        let new_id = match rotate_to {
            Some(()) => Some(producer_ids.next_id().await.map_err(|e| {
                tracing::warn!(error = %e, "could not allocate a producer id");
                codes::COORDINATOR_NOT_AVAILABLE
            })?),
            None => None,
        };
        let now = now_ms();
        let transit = match self.init_transit(
            transactional_id,
            timeout_ms,
            expected,
            new_id,
            partition,
            coordinator_epoch,
            now,
        )? {
            Some(t) => t,
            None => {
                // Abort the open transaction under a bumped epoch (fencing its producer); the
                // client retries and gets a second bump once the abort completes.
                self.fence_and_abort(transactional_id).await?;
                return Err(codes::CONCURRENT_TRANSACTIONS);
            }
        };
        self.write_and_apply(transactional_id, &transit).await?;
        tracing::info!(
            transactional_id,
            producer_id = transit.target.producer_id,
            producer_epoch = transit.target.producer_epoch,
            "initialized transactional producer"
        );
        Ok((transit.target.producer_id, transit.target.producer_epoch))
    }

    /// Kafka's `prepareInitProducerIdTransit`: the Empty state with the bumped epoch (or a
    /// new producer id), or `None` when an ongoing transaction must be aborted first.
    #[allow(clippy::too_many_arguments)]
    fn init_transit(
        &self,
        transactional_id: &str,
        timeout_ms: i32,
        expected: Option<(i64, i16)>,
        new_id: Option<i64>,
        partition: i32,
        coordinator_epoch: i32,
        now: i64,
    ) -> Result<Option<Transit>, i16> {
        {
            let mut txns = self.lock();
            let m = txns
                .get_mut(transactional_id)
                .ok_or(codes::NOT_COORDINATOR)?;
            if m.pending.is_some() {
                return Err(codes::CONCURRENT_TRANSACTIONS);
            }
            if let Some((pid, epoch)) = expected {
                let valid = m.value.producer_epoch == -1
                    || pid == m.value.producer_id
                    || (pid == m.last_producer_id && epoch_exhausted(epoch));
                if !valid {
                    return Err(codes::PRODUCER_FENCED);
                }
            }
            match m.value.state {
                TxnState::PrepareAbort | TxnState::PrepareCommit => {
                    return Err(codes::CONCURRENT_TRANSACTIONS);
                }
                TxnState::Ongoing => return Ok(None),
                TxnState::Dead | TxnState::PrepareEpochFence => {
                    return Err(codes::CONCURRENT_TRANSACTIONS);
                }
                TxnState::Empty | TxnState::CompleteAbort | TxnState::CompleteCommit => {}
            }
            let mut target = m.value.clone();
            target.state = TxnState::Empty;
            target.partitions.clear();
            target.start_timestamp = -1;
            target.last_update_timestamp = now;
            target.timeout_ms = timeout_ms;
            let exhausted = epoch_exhausted(m.value.producer_epoch);
            match (exhausted, new_id) {
                (true, Some(id)) if expected.is_none_or(|(_, e)| e == m.value.producer_epoch) => {
                    m.last_producer_id = m.value.producer_id;
                    target.producer_id = id;
                    target.producer_epoch = 0;
                    m.last_producer_epoch = -1;
                }
                (true, _) => return Err(codes::CONCURRENT_TRANSACTIONS),
                (false, _) => {
                    let bumped = m.value.producer_epoch + 1;
                    match expected {
                        None => {
                            target.producer_epoch = bumped;
                            m.last_producer_epoch = -1;
                        }
                        Some((_, e))
                            if m.value.producer_epoch == -1 || e == m.value.producer_epoch =>
                        {
                            target.producer_epoch = bumped;
                            m.last_producer_epoch = m.value.producer_epoch;
                        }
                        // A retry after a bump whose answer was lost.
                        Some((_, e)) if e == m.last_producer_epoch => {}
                        Some(_) => return Err(codes::PRODUCER_FENCED),
                    }
                }
            }
            m.pending = Some(TxnState::Empty);
            Ok(Some(Transit {
                partition,
                coordinator_epoch,
                target,
            }))
        }
    }

    /// Bumps the epoch of an ongoing transaction (its producer is fenced from now on) and
    /// aborts it: a second producer with the same id, or the transaction's timeout.
    async fn fence_and_abort(self: &Arc<Self>, transactional_id: &str) -> Result<(), i16> {
        let (pid, epoch) = {
            let mut txns = self.lock();
            let m = txns
                .get_mut(transactional_id)
                .ok_or(codes::NOT_COORDINATOR)?;
            if m.pending.is_some() {
                return Err(codes::CONCURRENT_TRANSACTIONS);
            }
            if m.value.state != TxnState::Ongoing {
                return Err(codes::CONCURRENT_TRANSACTIONS);
            }
            // Kafka keeps the last epoch value for exactly this bump. As in Kafka, the bump
            // stays even if the abort cannot be written: the old producer is fenced either way.
            if m.value.producer_epoch < i16::MAX {
                m.value.producer_epoch += 1;
                m.last_producer_epoch = -1;
            }
            (m.value.producer_id, m.value.producer_epoch)
        };
        self.end_transaction(transactional_id, pid, epoch, false, false)
            .await
    }

    // -------------------------------------------------------------------------------------
    // AddPartitionsToTxn, AddOffsetsToTxn
    // -------------------------------------------------------------------------------------

    /// Adds partitions to the producer's transaction, starting it if none is open.
    pub async fn add_partitions(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        partitions: &[(String, i32)],
    ) -> Result<(), i16> {
        if transactional_id.is_empty() {
            return Err(codes::INVALID_REQUEST);
        }
        let partition = self.partition_for(transactional_id);
        let coordinator_epoch = self.coordinator_epoch(partition)?;
        let now = now_ms();
        let transit = {
            let mut txns = self.lock();
            let m = txns
                .get_mut(transactional_id)
                .ok_or(codes::INVALID_PRODUCER_ID_MAPPING)?;
            if m.value.producer_id != producer_id {
                return Err(codes::INVALID_PRODUCER_ID_MAPPING);
            }
            if m.value.producer_epoch != producer_epoch {
                return Err(codes::PRODUCER_FENCED);
            }
            if m.pending.is_some() {
                return Err(codes::CONCURRENT_TRANSACTIONS);
            }
            match m.value.state {
                TxnState::PrepareCommit | TxnState::PrepareAbort => {
                    return Err(codes::CONCURRENT_TRANSACTIONS);
                }
                TxnState::Dead | TxnState::PrepareEpochFence => {
                    return Err(codes::CONCURRENT_TRANSACTIONS);
                }
                TxnState::Ongoing if partitions.iter().all(|p| m.value.partitions.contains(p)) => {
                    return Ok(());
                }
                _ => {}
            }
            let mut target = m.value.clone();
            if target.state != TxnState::Ongoing {
                target.start_timestamp = now;
            }
            target.state = TxnState::Ongoing;
            target.partitions.extend(partitions.iter().cloned());
            target.last_update_timestamp = now;
            m.pending = Some(TxnState::Ongoing);
            Transit {
                partition,
                coordinator_epoch,
                target,
            }
        };
        self.write_and_apply(transactional_id, &transit).await
    }

    /// AddPartitionsToTxn v4+ `verify_only` (and the produce path's check): whether each
    /// partition is in the producer's open transaction.
    pub fn verify_partitions(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        partitions: &[(String, i32)],
    ) -> Result<Vec<i16>, i16> {
        let partition = self.partition_for(transactional_id);
        self.coordinator_epoch(partition)?;
        let txns = self.lock();
        let m = txns
            .get(transactional_id)
            .ok_or(codes::INVALID_PRODUCER_ID_MAPPING)?;
        if m.value.producer_id != producer_id {
            return Err(codes::INVALID_PRODUCER_ID_MAPPING);
        }
        if m.value.producer_epoch != producer_epoch {
            return Err(codes::PRODUCER_FENCED);
        }
        Ok(partitions
            .iter()
            .map(|p| {
                if m.value.state == TxnState::Ongoing && m.value.partitions.contains(p) {
                    codes::NONE
                } else {
                    codes::INVALID_TXN_STATE
                }
            })
            .collect())
    }

    /// Whether a transactional produce to `topic`/`partition` may go ahead: `None` when it
    /// may, or when another broker coordinates the id (then the coordinator checked it when
    /// the partition was added), else the error Kafka's verification gives. On the produce
    /// path: one map lookup, no metadata copied.
    pub fn check_produce(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        topic: &str,
        partition: i32,
    ) -> Option<i16> {
        let txns = self.lock();
        let m = txns.get(transactional_id)?;
        if m.value.producer_id != producer_id {
            return Some(codes::INVALID_TXN_STATE);
        }
        if m.value.producer_epoch != producer_epoch {
            return Some(codes::INVALID_PRODUCER_EPOCH);
        }
        let added = m.value.state == TxnState::Ongoing
            && m.value
                .partitions
                .iter()
                .any(|(t, p)| t == topic && *p == partition);
        (!added).then_some(codes::INVALID_TXN_STATE)
    }

    // -------------------------------------------------------------------------------------
    // EndTxn
    // -------------------------------------------------------------------------------------

    /// EndTxn from a client (`from_client`), or the coordinator's own abort (fencing, timeout).
    pub async fn end_transaction(
        self: &Arc<Self>,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        commit: bool,
        from_client: bool,
    ) -> Result<(), i16> {
        if transactional_id.is_empty() {
            return Err(codes::INVALID_REQUEST);
        }
        let partition = self.partition_for(transactional_id);
        let coordinator_epoch = self.coordinator_epoch(partition)?;
        let now = now_ms();
        let transit = {
            let mut txns = self.lock();
            let m = txns
                .get_mut(transactional_id)
                .ok_or(codes::INVALID_PRODUCER_ID_MAPPING)?;
            if m.value.producer_id != producer_id {
                return Err(codes::INVALID_PRODUCER_ID_MAPPING);
            }
            if (from_client && producer_epoch != m.value.producer_epoch)
                || producer_epoch < m.value.producer_epoch
            {
                return Err(codes::PRODUCER_FENCED);
            }
            if m.pending.is_some() {
                return Err(codes::CONCURRENT_TRANSACTIONS);
            }
            let invalid = || {
                tracing::debug!(
                    transactional_id,
                    state = m.value.state.name(),
                    commit,
                    "EndTxn in a state that does not allow it"
                );
                codes::INVALID_TXN_STATE
            };
            match (m.value.state, commit) {
                (TxnState::Ongoing, _) => {}
                (TxnState::CompleteCommit, true) | (TxnState::CompleteAbort, false) => {
                    return Ok(());
                }
                (TxnState::PrepareCommit, true) | (TxnState::PrepareAbort, false) => {
                    return Err(codes::CONCURRENT_TRANSACTIONS);
                }
                _ => return Err(invalid()),
            }
            let mut target = m.value.clone();
            target.state = if commit {
                TxnState::PrepareCommit
            } else {
                TxnState::PrepareAbort
            };
            target.last_update_timestamp = now;
            m.pending = Some(target.state);
            Transit {
                partition,
                coordinator_epoch,
                target,
            }
        };
        self.write_and_apply(transactional_id, &transit).await?;
        tracing::debug!(
            transactional_id,
            commit,
            partitions = transit.target.partitions.len(),
            "transaction prepared; writing markers"
        );
        let me = self.clone();
        let id = transactional_id.to_string();
        tokio::spawn(async move { me.complete_transaction(id, transit).await });
        Ok(())
    }

    /// Writes the markers of a prepared transaction to every partition in it, then its
    /// CompleteCommit/CompleteAbort state. Gives up only when this broker stops coordinating
    /// the id (the next coordinator finishes the job from the log).
    async fn complete_transaction(self: Arc<Self>, transactional_id: String, prepared: Transit) {
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
                                        codes::NONE => {
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
                            error = code,
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
        let info = self
            .cache
            .broker(broker)
            .ok_or_else(|| format!("broker {broker} is not known"))?;
        let slot = {
            let mut conns = self.connections.lock().await;
            conns.entry(broker).or_default().clone()
        };
        let mut conn = slot.lock().await;
        let addr = format!("{}:{}", info.host, info.port);
        if conn.is_none() {
            let c = tokio::time::timeout(MARKER_REQUEST_TIMEOUT, Connection::open(&addr))
                .await
                .map_err(|_| format!("connecting to {addr} timed out"))?
                .map_err(|e| e.to_string())?;
            *conn = Some(c);
        }
        let Some(c) = conn.as_mut() else {
            return Err("no connection".into());
        };
        let result = tokio::time::timeout(
            MARKER_REQUEST_TIMEOUT,
            c.call_upto(
                ApiKey::WriteTxnMarkers,
                1,
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

    // -------------------------------------------------------------------------------------
    // Describe, List
    // -------------------------------------------------------------------------------------

    /// DescribeTransactions: the id's state, or the error for it.
    pub fn describe(&self, transactional_id: &str) -> Result<TxnDescription, i16> {
        let partition = self.partition_for(transactional_id);
        self.coordinator_epoch(partition)?;
        let txns = self.lock();
        let m = txns
            .get(transactional_id)
            .ok_or(codes::TRANSACTIONAL_ID_NOT_FOUND)?;
        Ok(TxnDescription {
            transactional_id: transactional_id.to_string(),
            value: m.value.clone(),
        })
    }

    /// ListTransactions: every id this broker coordinates.
    pub fn list(&self) -> Vec<TxnDescription> {
        let txns = self.lock();
        let mut out: Vec<TxnDescription> = txns
            .iter()
            .filter(|(_, m)| m.value.state != TxnState::Dead)
            .map(|(id, m)| TxnDescription {
                transactional_id: id.clone(),
                value: m.value.clone(),
            })
            .collect();
        out.sort_by(|a, b| a.transactional_id.cmp(&b.transactional_id));
        out
    }

    // -------------------------------------------------------------------------------------
    // Loading, timeouts
    // -------------------------------------------------------------------------------------

    /// This broker became leader of `__transaction_state` partition `index`: replays it and
    /// finishes the transactions it finds prepared. Ongoing ones are left to their timeout.
    pub async fn load_partition(self: &Arc<Self>, index: i32) -> Result<(), LogError> {
        let Some(partition) = self.replicas.leader(TRANSACTION_STATE_TOPIC, index) else {
            return Ok(());
        };
        let coordinator_epoch = partition.leader_epoch();
        if self
            .loaded
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&index)
            == Some(&coordinator_epoch)
        {
            return Ok(());
        }
        self.loading
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(index);
        let mut found: HashMap<String, Option<TxnValue>> = HashMap::new();
        let read = self.replay(&partition, &mut found).await;
        self.loading
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&index);
        read?;
        let mut prepared = Vec::new();
        {
            let mut txns = self.lock();
            txns.retain(|_, m| m.partition != index);
            for (id, value) in found {
                let Some(value) = value else { continue };
                if matches!(
                    value.state,
                    TxnState::PrepareCommit | TxnState::PrepareAbort
                ) {
                    prepared.push((id.clone(), value.clone()));
                }
                txns.insert(
                    id,
                    TxnMetadata {
                        value,
                        partition: index,
                        last_producer_id: -1,
                        last_producer_epoch: -1,
                        pending: None,
                    },
                );
            }
        }
        self.loaded
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(index, coordinator_epoch);
        tracing::info!(
            partition = index,
            coordinator_epoch,
            prepared = prepared.len(),
            "loaded transactions from {TRANSACTION_STATE_TOPIC}"
        );
        for (id, value) in prepared {
            let me = self.clone();
            let transit = Transit {
                partition: index,
                coordinator_epoch,
                target: value,
            };
            tokio::spawn(async move { me.complete_transaction(id, transit).await });
        }
        Ok(())
    }

    /// Reads a partition from its start to its end; the last record per id wins.
    async fn replay(
        &self,
        partition: &Arc<crate::replica::Partition>,
        found: &mut HashMap<String, Option<TxnValue>>,
    ) -> Result<(), LogError> {
        let mut offset = partition.log.lock().log_start_offset();
        loop {
            let read = self
                .replicas
                .read(partition, offset, LOAD_BUFFER, true)
                .await?;
            if read.records.is_empty() {
                return Ok(());
            }
            let before = offset;
            let buf = &read.records;
            let mut pos = 0;
            while pos < buf.len() {
                let Some(size) = batch::entry_size(&buf[pos..]).map(|s| s as usize) else {
                    break;
                };
                if size == 0 || pos + size > buf.len() {
                    break;
                }
                let (header, recs) = decode_batch(&buf[pos..pos + size])?;
                pos += size;
                offset = offset.max(header.next_offset());
                if header.is_control() {
                    continue;
                }
                for r in recs {
                    let Some(key) = r.key else { continue };
                    let id = match records::decode_key(&key) {
                        Ok(Some(id)) => id,
                        Ok(None) => continue,
                        Err(e) => {
                            tracing::warn!(error = %e, "skipping transaction state record");
                            continue;
                        }
                    };
                    match r.value.as_deref().map(records::decode_value) {
                        None => {
                            found.insert(id, None);
                        }
                        Some(Ok(v)) => {
                            found.insert(id, Some(v));
                        }
                        Some(Err(e)) => {
                            tracing::warn!(transactional_id = id, error = %e, "skipping transaction state record")
                        }
                    }
                }
            }
            if offset <= before {
                return Ok(());
            }
        }
    }

    /// This broker no longer leads `__transaction_state` partition `index`.
    pub fn unload_partition(&self, index: i32) {
        let was_loaded = self
            .loaded
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&index)
            .is_some();
        self.lock().retain(|_, m| m.partition != index);
        if was_loaded {
            tracing::info!(partition = index, "unloaded transactions");
        }
    }

    /// Forgets transactional ids idle longer than `transactional.id.expiration.ms` with no
    /// transaction open (Kafka's `removeExpiredTransactionalIds`): each gets a tombstone, so
    /// compaction drops its records and a reload does not bring it back.
    async fn expire_transactional_ids(&self) {
        let now = now_ms();
        let expiration =
            i64::try_from(self.config.transactional_id_expiration_ms).unwrap_or(i64::MAX);
        let expired: Vec<(String, i32, TxnValue)> = {
            let mut txns = self.lock();
            txns.iter_mut()
                .filter(|(_, m)| {
                    m.pending.is_none()
                        && matches!(
                            m.value.state,
                            TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort
                        )
                        && now.saturating_sub(m.value.last_update_timestamp) >= expiration
                })
                .map(|(id, m)| {
                    m.pending = Some(TxnState::Dead);
                    (id.clone(), m.partition, m.value.clone())
                })
                .collect()
        };
        for (id, partition, value) in expired {
            let written = match self.coordinator_epoch(partition) {
                Ok(epoch) => self.write_record(&id, partition, epoch, None).await,
                Err(code) => Err(code),
            };
            let mut txns = self.lock();
            match written {
                Ok(()) if txns.get(&id).is_some_and(|m| m.value == value) => {
                    txns.remove(&id);
                    tracing::info!(transactional_id = id, "expired transactional id");
                }
                _ => {
                    if let Some(m) = txns.get_mut(&id) {
                        m.pending = None;
                    }
                }
            }
        }
    }

    /// Aborts ongoing transactions past their timeout, every
    /// `transaction.abort.timed.out.transaction.cleanup.interval.ms`, and expires idle
    /// transactional ids every `transaction.remove.expired.transaction.cleanup.interval.ms`,
    /// until shutdown.
    pub async fn run_timer(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let interval = Duration::from_millis(
            self.config
                .transaction_abort_timed_out_transaction_cleanup_interval_ms,
        );
        let expire_every = Duration::from_millis(
            self.config
                .transaction_remove_expired_transaction_cleanup_interval_ms,
        );
        let mut next_expiry = tokio::time::Instant::now() + expire_every;
        loop {
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = shutdown.changed() => {
                    self.stopping.store(true, Ordering::Release);
                    return;
                }
            }
            if *shutdown.borrow() {
                self.stopping.store(true, Ordering::Release);
                return;
            }
            let now = now_ms();
            let expired: Vec<String> = self
                .lock()
                .iter()
                .filter(|(_, m)| {
                    m.pending.is_none()
                        && m.value.state == TxnState::Ongoing
                        && m.value.start_timestamp + i64::from(m.value.timeout_ms) < now
                })
                .map(|(id, _)| id.clone())
                .collect();
            for id in expired {
                tracing::info!(
                    transactional_id = id,
                    "aborting transaction past its timeout"
                );
                if let Err(code) = self.fence_and_abort(&id).await {
                    tracing::warn!(
                        transactional_id = id,
                        error = code,
                        "cannot abort timed-out transaction"
                    );
                }
            }
            if tokio::time::Instant::now() >= next_expiry {
                self.expire_transactional_ids().await;
                next_expiry = tokio::time::Instant::now() + expire_every;
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
