//! The leader's ISR writes. Below IBP 2.7-IV2 as a Kafka broker makes them
//! (`ZkAlterPartitionManager`): a conditional update of the partition's state znode with the
//! new ISR and the same leader and leader epoch, then an `/isr_change_notification` entry, so
//! that the controller sends UpdateMetadata; notifications are batched as Kafka batches them.
//! From 2.7-IV2 on, AlterPartition to the controller instead (`super::alter_partition`).

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use super::alter_partition::{AlterPartitionSender, ControllerLink, Sent};
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IsrWrite {
    /// Written; the state znode's new version is the partition epoch from now on.
    Written(i32),
    /// The state znode changed since the last LeaderAndIsr: no ISR change until the
    /// controller's next one brings the current state.
    Stale,
    /// The znode changed, but still names this broker leader in the proposal's leader epoch, so
    /// no controller decision came in between: it was this leader's own earlier write, whose
    /// answer was lost (the client gave up, the write landed). Its ISR and version are taken
    /// as they are, as Kafka's leader does after checking the znode's data on BADVERSION.
    Adopted { isr: Vec<i32>, version: i32 },
    /// The controller accepted an AlterPartition and holds this ISR at this partition epoch.
    Committed { isr: Vec<i32>, version: i32 },
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
    /// Set at IBP 2.7-IV2 and later: changes go to the controller as AlterPartition.
    alter: OnceLock<Arc<AlterPartitionSender>>,
    pending: Mutex<Pending>,
}

pub struct IsrWriter(Arc<Inner>);

impl IsrWriter {
    pub fn new(broker_id: i32) -> Self {
        IsrWriter(Arc::new(Inner {
            broker_id,
            store: OnceLock::new(),
            alter: OnceLock::new(),
            pending: Mutex::new(Pending::default()),
        }))
    }

    pub fn clone_handle(&self) -> IsrWriter {
        IsrWriter(self.0.clone())
    }

    pub fn set_store(&self, store: Arc<dyn MetadataStore>) {
        let _ = self.0.store.set(store);
    }

    /// From now on, ISR changes go to the controller as AlterPartition; the returned sender
    /// is to be run ([`AlterPartitionSender::run`]).
    pub fn send_to_controller(&self, link: ControllerLink) -> Arc<AlterPartitionSender> {
        let sender = self
            .0
            .alter
            .get_or_init(|| Arc::new(AlterPartitionSender::new(link)));
        sender.clone()
    }

    /// Makes the proposed ISR change: through the controller at IBP 2.7-IV2 and later, else
    /// (or when the controller does not know AlterPartition) to the state znode.
    pub async fn write(&self, topic: &str, partition: i32, proposal: &IsrProposal) -> IsrWrite {
        if let Some(sender) = self.0.alter.get() {
            match sender.submit(topic, partition, proposal.clone()).await {
                Sent::Done(w) => return w,
                Sent::Unsupported => {
                    tracing::info!(
                        topic,
                        partition,
                        "the controller does not answer AlterPartition; ISR change written to ZooKeeper"
                    );
                }
            }
        }
        self.write_znode(topic, partition, proposal).await
    }

    /// Writes the proposal to the partition's state znode.
    async fn write_znode(&self, topic: &str, partition: i32, proposal: &IsrProposal) -> IsrWrite {
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
                self.changed(topic, partition);
                IsrWrite::Written(stat.version)
            }
            Err(StoreError::BadVersion(_)) => {
                let current = match store.get(&path).await {
                    Ok(Some((Some(data), stat))) => {
                        znodes::decode::<PartitionStateZnode>(&path, &data)
                            .ok()
                            .map(|s| (s, stat.version))
                    }
                    _ => None,
                };
                match current {
                    Some((s, version))
                        if s.leader == self.0.broker_id
                            && s.leader_epoch == proposal.leader_epoch =>
                    {
                        tracing::info!(topic, partition, isr = ?s.isr, partition_epoch = version, "ISR as this leader last wrote it, answer lost; taken as it is");
                        // The lost write's notification was never queued.
                        self.changed(topic, partition);
                        IsrWrite::Adopted {
                            isr: s.isr,
                            version,
                        }
                    }
                    _ => {
                        tracing::info!(
                            topic,
                            partition,
                            partition_epoch = proposal.partition_epoch,
                            "ISR not updated: the partition state changed; waiting for the controller"
                        );
                        IsrWrite::Stale
                    }
                }
            }
            Err(e) => {
                tracing::warn!(topic, partition, error = %e, "ISR not updated; will try again");
                IsrWrite::Failed
            }
        }
    }

    /// Queues an ISR change notification for the partition.
    fn changed(&self, topic: &str, partition: i32) {
        let mut p = self.0.pending.lock().unwrap_or_else(|p| p.into_inner());
        p.changed.insert((topic.to_string(), partition));
        p.last_change_ms = crate::log::segment::now_ms();
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::embedded::EmbeddedStore;
    use crate::metadata::store::create_recursive;

    fn state(leader: i32, leader_epoch: i32, isr: Vec<i32>) -> PartitionStateZnode {
        PartitionStateZnode {
            controller_epoch: 1,
            leader,
            version: 1,
            leader_epoch,
            isr,
            leader_recovery_state: None,
        }
    }

    fn proposal(isr: Vec<i32>, leader_epoch: i32, partition_epoch: i32) -> IsrProposal {
        IsrProposal {
            isr,
            leader_epoch,
            controller_epoch: 1,
            partition_epoch,
            generation: 0,
        }
    }

    /// Broker 1 leads t-0 at leader epoch 5; its state znode is at version 0.
    async fn writer_and_store() -> (IsrWriter, Arc<dyn MetadataStore>, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn MetadataStore> = Arc::new(EmbeddedStore::open(dir.path()).unwrap());
        create_recursive(
            store.as_ref(),
            &znodes::partition_state_path("t", 0),
            Some(znodes::encode(&state(1, 5, vec![1]))),
            CreateMode::Persistent,
        )
        .await
        .unwrap();
        let writer = IsrWriter::new(1);
        writer.set_store(store.clone());
        (writer, store, dir)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn a_lost_answer_to_this_leaders_own_write_is_adopted() {
        let (writer, _store, _dir) = writer_and_store().await;
        assert_eq!(
            writer.write("t", 0, &proposal(vec![1, 2], 5, 0)).await,
            IsrWrite::Written(1)
        );
        // The leader never heard of version 1 and proposes against version 0 again.
        assert_eq!(
            writer.write("t", 0, &proposal(vec![1, 2, 3], 5, 0)).await,
            IsrWrite::Adopted {
                isr: vec![1, 2],
                version: 1
            }
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn a_controller_decision_in_between_makes_the_write_stale() {
        let (writer, store, _dir) = writer_and_store().await;
        // The controller moved the leader epoch on (as every decision of its does).
        store
            .set(
                &znodes::partition_state_path("t", 0),
                Some(znodes::encode(&state(1, 6, vec![1]))),
                Some(0),
            )
            .await
            .unwrap();
        assert_eq!(
            writer.write("t", 0, &proposal(vec![1, 2], 5, 0)).await,
            IsrWrite::Stale
        );
    }
}
