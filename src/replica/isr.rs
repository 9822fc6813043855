//! The leader's ISR writes, as a Kafka broker below IBP 2.7-IV2 makes them
//! (`ZkAlterPartitionManager`): a conditional update of the partition's state znode with the
//! new ISR and the same leader and leader epoch, then an `/isr_change_notification` entry, so
//! that the controller sends UpdateMetadata. Notifications are batched as Kafka batches them.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use super::{IsrProposal, TopicPartition};
use crate::metadata::MetadataStore;
use crate::metadata::store::{CreateMode, StoreError};
use crate::metadata::znodes::{self, PartitionStateZnode};

/// Kafka's `IsrChangePropagationConfig` for ZooKeeper: checked every 2.5 s, sent once no change
/// came for 5 s, or at the latest 60 s after the previous notification.
const CHECK_INTERVAL: Duration = Duration::from_millis(2500);
const LINGER_MS: i64 = 5000;
const MAX_DELAY_MS: i64 = 60_000;

/// The outcome of an ISR write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IsrWrite {
    /// Written; the state znode's new version is the partition epoch from now on.
    Written(i32),
    /// The state znode changed since the last LeaderAndIsr: no ISR change until the
    /// controller's next one brings the current state.
    Stale,
    /// The store could not be reached; the next check may try again.
    Failed,
}

#[derive(Default)]
struct Pending {
    changed: BTreeSet<TopicPartition>,
    last_change_ms: i64,
    last_propagation_ms: i64,
}

struct Inner {
    broker_id: i32,
    store: OnceLock<Arc<dyn MetadataStore>>,
    pending: Mutex<Pending>,
}

pub struct IsrWriter(Arc<Inner>);

impl IsrWriter {
    pub fn new(broker_id: i32) -> Self {
        IsrWriter(Arc::new(Inner {
            broker_id,
            store: OnceLock::new(),
            pending: Mutex::new(Pending::default()),
        }))
    }

    pub fn clone_handle(&self) -> IsrWriter {
        IsrWriter(self.0.clone())
    }

    pub fn set_store(&self, store: Arc<dyn MetadataStore>) {
        let _ = self.0.store.set(store);
    }

    /// Writes the proposal to the partition's state znode.
    pub async fn write(&self, topic: &str, partition: i32, proposal: &IsrProposal) -> IsrWrite {
        let Some(store) = self.0.store.get() else {
            tracing::warn!(
                topic,
                partition,
                "no metadata store yet; ISR change not written"
            );
            return IsrWrite::Failed;
        };
        let state = PartitionStateZnode {
            controller_epoch: proposal.controller_epoch,
            leader: self.0.broker_id,
            version: 1,
            leader_epoch: proposal.leader_epoch,
            isr: proposal.isr.clone(),
            leader_recovery_state: None,
        };
        let path = znodes::partition_state_path(topic, partition);
        match store
            .set(
                &path,
                Some(znodes::encode(&state)),
                Some(proposal.partition_epoch),
            )
            .await
        {
            Ok(stat) => {
                tracing::info!(topic, partition, isr = ?proposal.isr, partition_epoch = stat.version, "ISR updated");
                let mut p = self.0.pending.lock().unwrap_or_else(|p| p.into_inner());
                p.changed.insert((topic.to_string(), partition));
                p.last_change_ms = crate::log::segment::now_ms();
                IsrWrite::Written(stat.version)
            }
            Err(StoreError::BadVersion(_)) => {
                tracing::info!(
                    topic,
                    partition,
                    partition_epoch = proposal.partition_epoch,
                    "ISR not updated: the partition state changed; waiting for the controller"
                );
                IsrWrite::Stale
            }
            Err(e) => {
                tracing::warn!(topic, partition, error = %e, "ISR not updated; will try again");
                IsrWrite::Failed
            }
        }
    }

    /// Sends the batched ISR change notifications until `shutdown`.
    pub async fn run_notifications(self, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(CHECK_INTERVAL) => {}
                _ = shutdown.changed() => return,
            }
            if *shutdown.borrow() {
                return;
            }
            let now = crate::log::segment::now_ms();
            let due: Vec<TopicPartition> = {
                let mut p = self.0.pending.lock().unwrap_or_else(|p| p.into_inner());
                if p.changed.is_empty()
                    || (p.last_change_ms + LINGER_MS >= now
                        && p.last_propagation_ms + MAX_DELAY_MS >= now)
                {
                    continue;
                }
                p.last_propagation_ms = now;
                std::mem::take(&mut p.changed).into_iter().collect()
            };
            let Some(store) = self.0.store.get() else {
                continue;
            };
            let body = znodes::PartitionListZnode {
                version: 1,
                partitions: due
                    .iter()
                    .map(|(topic, partition)| znodes::TopicPartitionJson {
                        topic: topic.clone(),
                        partition: *partition,
                    })
                    .collect(),
            };
            let path = format!(
                "{}/{}",
                znodes::ISR_CHANGE_NOTIFICATION,
                znodes::ISR_CHANGE_PREFIX
            );
            if let Err(e) = store
                .create(
                    &path,
                    Some(znodes::encode(&body)),
                    CreateMode::PersistentSequential,
                )
                .await
            {
                tracing::warn!(error = %e, "cannot write an ISR change notification; retrying");
                let mut p = self.0.pending.lock().unwrap_or_else(|p| p.into_inner());
                p.changed.extend(due);
            }
        }
    }
}
