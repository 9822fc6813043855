//! A log directory failing (Kafka's `LogDirFailureChannel` and
//! `ReplicaManager.handleLogDirFailure`): the first I/O error from a log takes its whole
//! directory offline. Its partitions stop being served here (KAFKA_STORAGE_ERROR to clients,
//! and to the controller's LeaderAndIsr for them), the broker tells the controller through
//! `/log_dir_event_notification`, and keeps serving the partitions of its other directories.
//! When no directory is left, the broker halts, as Kafka does.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::log::{LogError, TopicPartition};
use crate::metadata::MetadataStore;
use crate::metadata::store::{CreateMode, create_recursive};
use crate::metadata::znodes;

use super::{Partition, ReplicaManager};

/// Kafka's `LogDirEventNotificationZNode` event for a failed directory.
const LOG_DIR_FAILURE_EVENT: i32 = 1;

impl ReplicaManager {
    /// True for a partition whose log was in a directory that failed.
    pub fn is_offline(&self, topic: &str, partition: i32) -> bool {
        self.offline
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&(topic.to_string(), partition))
    }

    /// Passes `result` on; an I/O error in it takes the partition's log directory offline first.
    pub(super) async fn check_storage<T>(
        &self,
        p: &Partition,
        result: Result<T, LogError>,
    ) -> Result<T, LogError> {
        // Running out of file descriptors is the broker's limit, not the disk's: unlike Kafka,
        // which takes the directory offline for any IOException, that error is only answered.
        if let Err(e @ LogError::Io { source, .. }) = &result
            && !crate::log::descriptors::is_out_of_descriptors(source)
        {
            tracing::error!(topic = %p.topic, partition = p.partition, error = %e, "I/O error in a partition log");
            self.fail_log_dir_of(&p.topic, p.partition).await;
        }
        result
    }

    /// Takes offline the directory holding the partition's log, with every partition in it.
    pub async fn fail_log_dir_of(&self, topic: &str, partition: i32) {
        let tp = (topic.to_string(), partition);
        let Some(dir) = self.logs.dir_index_of_log(&tp) else {
            return;
        };
        let Some(gone) = self.logs.take_dir_offline(dir) else {
            return;
        };
        let path = self.logs.dirs().get(dir).cloned().unwrap_or_default();
        tracing::error!(dir = %path.display(), partitions = gone.len(), "log directory taken offline after an I/O error; its partitions are no longer served here");
        self.offline
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .extend(gone.iter().cloned());
        self.fetchers.remove(&gone).await;
        let removed: Vec<Arc<Partition>> = {
            let mut parts = self.partitions.write().unwrap_or_else(|p| p.into_inner());
            gone.iter().filter_map(|tp| parts.remove(tp)).collect()
        };
        for p in removed {
            // Produces waiting for acks=all on it fail now.
            p.leader.store(-1, Ordering::Release);
            let hw = p.log.lock().high_watermark();
            p.publish_hw(hw);
        }
        if self.logs.all_dirs_offline() {
            // Kafka's LogDirFailureHandler halts the broker: nothing is left to serve.
            tracing::error!("every log directory has failed; halting the broker");
            std::process::exit(1);
        }
        match self.store.get() {
            Some(store) => notify_controller(store.as_ref(), self.broker_id).await,
            None => tracing::warn!(
                "no metadata store yet: the controller is not told of the failed log directory"
            ),
        }
    }

    /// LeaderAndIsr for a partition whose log directory failed: Kafka's KAFKA_STORAGE_ERROR.
    pub(super) fn refuse_offline(&self, tp: &TopicPartition) -> Result<(), LogError> {
        if self.is_offline(&tp.0, tp.1) {
            return Err(LogError::BadLogDir {
                path: Default::default(),
                reason: format!("{}-{} is in an offline log directory", tp.0, tp.1),
            });
        }
        Ok(())
    }
}

/// Writes `/log_dir_event_notification/log_dir_event_<seq>` as Kafka's
/// `KafkaZkClient.propagateLogDirEvent` does; retried a few times, since the controller learns
/// of the failure from nothing else.
async fn notify_controller(store: &dyn MetadataStore, broker_id: i32) {
    let data = serde_json::json!({
        "version": 1,
        "broker": broker_id,
        "event": LOG_DIR_FAILURE_EVENT,
    })
    .to_string()
    .into_bytes();
    let path = format!(
        "{}/{}",
        znodes::LOG_DIR_EVENT_NOTIFICATION,
        znodes::LOG_DIR_EVENT_PREFIX
    );
    for attempt in 1..=5u32 {
        match create_recursive(
            store,
            &path,
            Some(data.clone()),
            CreateMode::PersistentSequential,
        )
        .await
        {
            Ok(created) => {
                tracing::info!(znode = %created, "told the controller of the failed log directory");
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, attempt, "cannot write the log dir event notification");
                tokio::time::sleep(std::time::Duration::from_millis(200 * u64::from(attempt)))
                    .await;
            }
        }
    }
}
