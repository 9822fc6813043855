//! LeaderAndIsr and StopReplica for one partition (Kafka's `ReplicaManager.makeLeaders`,
//! `makeFollowers`, `stopReplicas`): its log opened or created, the role, epoch and ISR taken,
//! fetching from the leader started or stopped.

use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::{Notify, watch};

use super::{HwView, LeaderAndIsrState, Partition, ReplicaManager, Replication, Role, blocking};
use crate::config::LogConfig;
use crate::log::LogError;

impl ReplicaManager {
    /// LeaderAndIsr: opens or creates the partition's log, takes the role, epoch and ISR, and
    /// starts or stops fetching from the leader.
    pub async fn apply_role(
        &self,
        topic: &str,
        partition: i32,
        state: &LeaderAndIsrState,
        config: LogConfig,
    ) -> Result<Arc<Partition>, LogError> {
        self.refuse_offline(&(topic.to_string(), partition))?;
        let p = match self.get(topic, partition) {
            Some(p) => {
                p.log.lock().set_config(config);
                p
            }
            None => self.open_partition(topic, partition, config).await?,
        };
        let was = (p.leader(), p.leader_epoch());
        // A fetcher must not append while the partition changes hands; removing it waits out
        // a response being applied.
        if state.role == Role::Leader {
            self.fetchers
                .remove(&[(topic.to_string(), partition)])
                .await;
        }
        let part = p.clone();
        let st = state.clone();
        let lag = self.lag_max_ms();
        blocking(move || part.take_state(&st, lag)).await?;
        if let Role::Follower { leader } = state.role {
            let shutting_down = self.shutting_down.load(Ordering::Acquire);
            match &state.leader_address {
                Some(addr) if leader >= 0 && !shutting_down => {
                    self.fetchers
                        .follow(p.clone(), leader, addr.clone(), state.topic_id)
                        .await
                }
                _ => {
                    self.fetchers
                        .remove(&[(topic.to_string(), partition)])
                        .await;
                    if shutting_down {
                        tracing::info!(topic, partition, leader, "shutting down: not fetching");
                    } else {
                        tracing::warn!(
                            topic,
                            partition,
                            leader,
                            "no address for the leader; not fetching until the next LeaderAndIsr"
                        );
                    }
                }
            }
        }
        if was != (p.leader(), p.leader_epoch()) {
            log_role(topic, partition, state.role, state.leader_epoch);
        }
        Ok(p)
    }

    async fn open_partition(
        &self,
        topic: &str,
        partition: i32,
        config: LogConfig,
    ) -> Result<Arc<Partition>, LogError> {
        let logs = self.logs.clone();
        let t = topic.to_string();
        let topic_config = config.clone();
        let log = blocking(move || logs.get_or_create(&t, partition, config)).await?;
        let hw = {
            let mut l = log.lock();
            // Logs found at start-up were opened with the broker defaults; the topic's own
            // settings are known only now.
            l.set_config(topic_config);
            l.high_watermark()
        };
        let (hw_tx, _) = watch::channel(HwView {
            high_watermark: hw,
            leader_epoch: -1,
            leading: false,
            leader_terms: 0,
        });
        let p = Arc::new(Partition {
            topic: topic.to_string(),
            partition,
            log,
            leader_epoch: AtomicI32::new(-1),
            leader_terms: AtomicU64::new(0),
            leader: AtomicI32::new(-1),
            local_broker: self.broker_id,
            appended: Notify::new(),
            replication: Mutex::new(Replication::default()),
            hw: hw_tx,
            appends: Mutex::new(super::AppendQueue::default()),
            stall_reported: Mutex::new(None),
            follower_ids: std::sync::RwLock::new(Vec::new()),
        });
        let mut parts = self.partitions.write().unwrap_or_else(|p| p.into_inner());
        Ok(parts
            .entry((topic.to_string(), partition))
            .or_insert(p)
            .clone())
    }

    /// StopReplica: the partition is no longer served here; with `delete` its log goes too.
    pub async fn stop_replica(
        &self,
        topic: &str,
        partition: i32,
        delete: bool,
    ) -> Result<(), LogError> {
        self.fetchers
            .remove(&[(topic.to_string(), partition)])
            .await;
        let removed = {
            let mut parts = self.partitions.write().unwrap_or_else(|p| p.into_inner());
            parts.remove(&(topic.to_string(), partition))
        };
        if let Some(p) = removed {
            p.leader.store(-1, Ordering::Release);
            let hw = p.log.lock().high_watermark();
            p.publish_hw(hw);
            drop(p);
            tracing::info!(topic, partition, delete, "stopped replica");
        }
        if !delete {
            return Ok(());
        }
        let logs = self.logs.clone();
        let t = topic.to_string();
        blocking(move || logs.delete(&t, partition)).await
    }
}

fn log_role(topic: &str, partition: i32, role: Role, leader_epoch: i32) {
    match role {
        Role::Leader => tracing::info!(topic, partition, leader_epoch, "became leader"),
        Role::Follower { leader } => {
            tracing::info!(topic, partition, leader_epoch, leader, "became follower")
        }
    }
}
