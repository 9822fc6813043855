//! Topic deletion (Kafka's `TopicDeletionManager`): topics queued under
//! `/admin/delete_topics` are deleted once every replica has stopped and removed its log, and
//! retried while a replica is offline. Separate because deletion is a protocol of its own
//! with its own retry state.

use std::collections::BTreeSet;
use std::time::Duration;

use kafka_protocol::messages::ResponseKind;

use super::{ActiveController, EPOCH_DURING_DELETE, Stop, Tp};
use crate::metadata::store::delete_recursive;
use crate::metadata::znodes;

impl ActiveController {
    pub(super) fn forget_topic(&mut self, topic: &str) {
        let tps: Vec<Tp> = self
            .states
            .keys()
            .filter(|(t, _)| t == topic)
            .cloned()
            .collect();
        let live: Vec<i32> = self.brokers.keys().copied().collect();
        self.send_deleted(topic, &tps, &live);
        for tp in tps {
            self.states.remove(&tp);
        }
        self.topics.remove(topic);
        self.deleting.remove(topic);
    }

    pub(super) async fn on_delete_topics(&mut self) -> Result<(), Stop> {
        let marked = self
            .store
            .children(znodes::DELETE_TOPICS)
            .await?
            .unwrap_or_default();
        for topic in marked {
            let marker = format!("{}/{topic}", znodes::DELETE_TOPICS);
            if !self.config.delete_topic_enable || !self.topics.contains_key(&topic) {
                // Nothing to delete (or deletion disabled): Kafka just removes the marker.
                self.fence().await?;
                delete_recursive(self.store.as_ref(), &marker).await?;
                continue;
            }
            self.deleting.insert(topic);
        }
        self.retry_deletions().await
    }

    /// Kafka's TopicDeletionManager: brokers are told the topic is going (leader -2), each
    /// replica is stopped and deleted; once every replica confirmed, the znodes go. Replicas on
    /// dead brokers make the deletion wait until they come back.
    pub(super) async fn retry_deletions(&mut self) -> Result<(), Stop> {
        let pending: Vec<String> = self.deleting.iter().cloned().collect();
        for topic in pending {
            let Some(state) = self.topics.get(&topic).cloned() else {
                self.deleting.remove(&topic);
                continue;
            };
            let tps: Vec<Tp> = state
                .assignment
                .keys()
                .map(|p| (topic.clone(), *p))
                .collect();
            let live: Vec<i32> = self.brokers.keys().copied().collect();
            self.send_deleted(&topic, &tps, &live);
            if tps.iter().any(|tp| self.is_reassigning(tp)) {
                tracing::info!(topic, "deletion waits for a reassignment in progress");
                continue;
            }
            let hosts: BTreeSet<i32> = state.assignment.values().flatten().copied().collect();
            if hosts.iter().any(|b| !self.brokers.contains_key(b)) {
                tracing::info!(topic, "deletion waits for replicas on offline brokers");
                continue;
            }
            let mut ok = true;
            for broker in hosts {
                let parts: Vec<i32> = state
                    .assignment
                    .iter()
                    .filter(|(_, r)| r.contains(&broker))
                    .map(|(p, _)| *p)
                    .collect();
                let parts: Vec<(Tp, i32)> = parts
                    .iter()
                    .map(|p| ((topic.clone(), *p), EPOCH_DURING_DELETE))
                    .collect();
                let reply = self.send_stop_replica(broker, &parts, true);
                let answered = match reply {
                    Some(rx) => {
                        tokio::time::timeout(
                            Duration::from_millis(self.config.controller_socket_timeout_ms),
                            rx,
                        )
                        .await
                    }
                    None => {
                        ok = false;
                        continue;
                    }
                };
                match answered {
                    Ok(Ok(ResponseKind::StopReplica(r)))
                        if r.error_code == 0
                            && r.partition_errors.iter().all(|e| e.error_code == 0) => {}
                    other => {
                        tracing::warn!(topic, broker, answer = ?other.map(|r| r.map(|_| ())), "replica deletion failed; will retry");
                        ok = false;
                    }
                }
            }
            if !ok {
                continue;
            }
            self.fence().await?;
            let store = self.store.as_ref();
            delete_recursive(store, &znodes::topic_path(&topic)).await?;
            delete_recursive(store, &znodes::topic_config_path(&topic)).await?;
            delete_recursive(store, &format!("{}/{topic}", znodes::DELETE_TOPICS)).await?;
            self.forget_topic(&topic);
            tracing::info!(topic, "deleted topic");
        }
        Ok(())
    }
}
