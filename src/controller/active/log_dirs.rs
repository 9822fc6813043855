//! A broker's log directory failing (Kafka's `LogDirEventNotificationHandler`,
//! `processLogDirEventNotification` and `onBrokerLogDirFailure`): the broker leaves a
//! notification under `/log_dir_event_notification`; the controller sends it LeaderAndIsr for
//! every partition it hosts, learns from the answer's per-partition KAFKA_STORAGE_ERROR which of
//! its replicas are offline, and takes those replicas offline as a dead broker's are: out of the
//! ISR, and other leaders elected where they led.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::ResponseKind;

use super::{ActiveController, Stop, Tp};
use crate::metadata::store::StoreError;
use crate::metadata::znodes;

/// How long the controller waits for a broker's answer about its replicas.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

impl ActiveController {
    pub(super) async fn on_log_dir_events(&mut self) -> Result<(), Stop> {
        let mut names: Vec<String> = self
            .store
            .children(znodes::LOG_DIR_EVENT_NOTIFICATION)
            .await?
            .unwrap_or_default()
            .into_iter()
            .filter(|n| n.starts_with(znodes::LOG_DIR_EVENT_PREFIX))
            .collect();
        if names.is_empty() {
            return Ok(());
        }
        names.sort();
        let mut brokers = BTreeSet::new();
        for name in &names {
            let path = format!("{}/{name}", znodes::LOG_DIR_EVENT_NOTIFICATION);
            let Some((Some(data), _)) = self.store.get(&path).await? else {
                continue;
            };
            match serde_json::from_slice::<serde_json::Value>(&data)
                .ok()
                .and_then(|v| v.get("broker")?.as_i64())
                .and_then(|b| i32::try_from(b).ok())
            {
                Some(b) => {
                    brokers.insert(b);
                }
                None => {
                    tracing::warn!(znode = %path, "ignoring unreadable log dir event notification")
                }
            }
        }
        self.fence().await?;
        for name in &names {
            let path = format!("{}/{name}", znodes::LOG_DIR_EVENT_NOTIFICATION);
            match self.store.delete(&path, None).await {
                Ok(()) | Err(StoreError::NoNode(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        for broker in brokers {
            if !self.brokers.contains_key(&broker) {
                continue;
            }
            tracing::info!(
                broker,
                "a log directory failed on a broker: asking it which replicas are offline"
            );
            let offline = self.offline_replicas_of(broker).await;
            if offline.is_empty() {
                continue;
            }
            tracing::info!(broker, partitions = ?offline, "replicas offline after a log directory failure");
            let affected: Vec<Tp> = offline.iter().cloned().collect();
            self.take_replicas_offline(affected, |tp, b| b == broker && offline.contains(tp))
                .await?;
        }
        Ok(())
    }

    /// LeaderAndIsr for every partition `broker` hosts, to it alone: the partitions it answers
    /// KAFKA_STORAGE_ERROR for.
    async fn offline_replicas_of(&mut self, broker: i32) -> BTreeSet<Tp> {
        let hosted: Vec<Tp> = self
            .topics
            .iter()
            .flat_map(|(t, s)| {
                s.assignment
                    .iter()
                    .filter(|(_, replicas)| replicas.contains(&broker))
                    .map(move |(p, _)| (t.clone(), *p))
            })
            .collect();
        let names_by_id: BTreeMap<uuid::Uuid, String> = self
            .topics
            .iter()
            .map(|(name, s)| (s.id, name.clone()))
            .collect();
        let replies = self.send_leader_and_isr_to(&hosted, |r| r == broker);
        let storage_error = ResponseError::KafkaStorageError.code();
        let mut offline = BTreeSet::new();
        for (_, reply) in replies {
            let response = match tokio::time::timeout(ANSWER_TIMEOUT, reply).await {
                Ok(Ok(ResponseKind::LeaderAndIsr(r))) => r,
                _ => {
                    tracing::warn!(
                        broker,
                        "no answer about its replicas; its log directory failure is not acted on"
                    );
                    continue;
                }
            };
            for e in response
                .partition_errors
                .iter()
                .filter(|e| e.error_code == storage_error)
            {
                offline.insert((e.topic_name.0.to_string(), e.partition_index));
            }
            for t in &response.topics {
                let Some(name) = names_by_id.get(&t.topic_id) else {
                    continue;
                };
                for e in t
                    .partition_errors
                    .iter()
                    .filter(|e| e.error_code == storage_error)
                {
                    offline.insert((name.clone(), e.partition_index));
                }
            }
        }
        offline
    }
}
