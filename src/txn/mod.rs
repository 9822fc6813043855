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
//! State records are acknowledged once the ISR has them (`ReplicaManager::append_acked`), as
//! Kafka's are. Differences from Kafka, for now: partition leaders on other brokers do not verify a transactional produce with the
//! coordinator (AddPartitionsToTxn v4, KIP-890): only a coordinator on the same broker checks
//! that the partition was added; producer state in partitions does not expire
//! (`producer.id.expiration.ms`).
//!
//! The pieces, along Kafka's own seams: `init` (InitProducerId with a transactional id: epoch
//! bumps, fencing), `add` (AddPartitionsToTxn, AddOffsetsToTxn, the produce path's check),
//! `end` (EndTxn and its prepare), `markers` (writing the markers to partition leaders, Kafka's
//! `TransactionMarkerChannelManager`), `state_manager` (the in-memory metadata, loading and
//! writing `__transaction_state`, timeouts and expiry, Kafka's `TransactionStateManager`);
//! `records` holds the record format, `producer_ids` the producer id blocks and `error`
//! `TxnError`, what a request is refused with. This file keeps
//! the coordinator itself, FindCoordinator and DescribeTransactions/ListTransactions.

pub mod producer_ids;
pub mod records;

mod add;
mod end;
mod error;
mod init;
mod markers;
mod state_manager;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, OnceLock};

use crate::client::Connection;
use crate::config::BrokerConfig;
use crate::controller::Controller;
use crate::controller::channel::LocalDelivery;
use crate::metadata::MetadataCache;
use crate::replica::ReplicaManager;
use crate::replica::election_tasks::{ElectionTasks, Loading};
use records::{TxnState, TxnValue};
use state_manager::TxnMetadata;

pub use error::TxnError;

pub const TRANSACTION_STATE_TOPIC: &str = "__transaction_state";

fn now_ms() -> i64 {
    crate::log::segment::now_ms()
}

/// What DescribeTransactions and ListTransactions show of one transactional id.
#[derive(Debug, Clone)]
pub struct TxnDescription {
    pub transactional_id: String,
    pub value: TxnValue,
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
    loading: Loading,
    /// Loads and unloads of `__transaction_state` partitions, in order, off LeaderAndIsr.
    elections: ElectionTasks,
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
            loading: Loading::default(),
            elections: ElectionTasks::default(),
            topic_creation: tokio::sync::Mutex::new(()),
            local: OnceLock::new(),
            connections: tokio::sync::Mutex::new(HashMap::new()),
            stopping: AtomicBool::new(false),
        }
    }

    pub fn set_local_delivery(&self, local: LocalDelivery) {
        let _ = self.local.set(local);
    }

    /// Creates `__transaction_state` on first use, with Kafka's enforced configs.
    async fn ensure_topic(&self) -> Result<(), TxnError> {
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
                TxnError::CoordinatorNotAvailable
            })
    }

    /// FindCoordinator for a transactional id: the leader of its partition.
    pub async fn coordinator_broker(&self, transactional_id: &str) -> Result<i32, TxnError> {
        self.ensure_topic().await?;
        match self.cache.partition(
            TRANSACTION_STATE_TOPIC,
            self.partition_for(transactional_id),
        ) {
            Some(p) if p.leader >= 0 => Ok(p.leader),
            _ => Err(TxnError::CoordinatorNotAvailable),
        }
    }

    // -------------------------------------------------------------------------------------
    // Describe, List
    // -------------------------------------------------------------------------------------

    /// DescribeTransactions: the id's state, or the error for it.
    pub fn describe(&self, transactional_id: &str) -> Result<TxnDescription, TxnError> {
        let partition = self.partition_for(transactional_id);
        self.coordinator_epoch(partition)?;
        let txns = self.lock();
        let m = txns
            .get(transactional_id)
            .ok_or(TxnError::TransactionalIdNotFound)?;
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
}
