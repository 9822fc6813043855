//! Stopping a broker gracefully: controlled shutdown (leaderships handed over through the
//! controller), then the listeners, tasks and fetchers, then the logs with their clean-shutdown
//! marker. Separate from start-up because its order and its timeouts are its own.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::Broker;
use crate::api::errors::KafkaCode;
use crate::metadata::registration;

impl Broker {
    /// Stop accepting, answer in-flight requests, flush, write checkpoints and the clean
    /// shutdown marker, and drop the broker's registration.
    pub async fn shutdown(self) -> Result<(), crate::log::LogError> {
        tracing::info!("shutting down");
        self.api.replicas.begin_shutdown();
        if let Some(remaining) = self.controlled_shutdown().await {
            self.wait_for_leadership_handover(&remaining).await;
        }
        let _ = self.shutdown.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
        self.api.replicas.stop_fetchers().await;
        // Both only hurry along what the end of the ZooKeeper session does anyway (the
        // ephemeral znodes go), so an unreachable ZooKeeper must not hold the exit for its
        // whole request timeout each.
        let leave = async {
            self.controller.resign().await;
            registration::deregister(self.store.as_ref(), self.broker_id).await;
        };
        if tokio::time::timeout(Duration::from_secs(3), leave)
            .await
            .is_err()
        {
            tracing::warn!("metadata store not answering; leaving the registration to expire");
        }
        drop(self.api);
        drop(self.controller);
        let logs = self.logs;
        tokio::task::spawn_blocking(move || match Arc::try_unwrap(logs) {
            Ok(m) => m.shutdown(),
            Err(shared) => {
                // Something still holds the manager (a request that outlived its connection):
                // flush and checkpoint without the clean-shutdown marker, so the next start
                // recovers rather than trusting a state we could not close.
                tracing::warn!(
                    "log manager still shared at shutdown; skipping the clean-shutdown marker"
                );
                shared.write_checkpoints()
            }
        })
        .await
        .unwrap_or_else(|e| {
            Err(crate::log::LogError::io(
                "<shutdown>",
                std::io::Error::other(e.to_string()),
            ))
        })?;
        tracing::info!("shut down completed");
        Ok(())
    }

    /// Kafka's `KafkaServer.controlledShutdown`: asks the controller to move this broker's
    /// leaderships elsewhere, so clients move on at once rather than after a session timeout.
    /// Retried (`controlled.shutdown.max.retries`, `controlled.shutdown.retry.backoff.ms`)
    /// while some partition could still move; a partition with no other in-sync replica cannot,
    /// so waiting for it would only delay the shutdown. Only with ZooKeeper and other brokers.
    /// Returns the partitions the controller left led here, or `None` when no controlled
    /// shutdown took place.
    async fn controlled_shutdown(&self) -> Option<Vec<(String, i32)>> {
        let config = &self.api.config;
        let cache = &self.api.cache;
        let me = self.broker_id;
        if config.zookeeper_connect.is_none()
            || !config.controlled_shutdown_enable
            || cache.brokers().iter().all(|b| b.id == me)
        {
            return None;
        }
        let backoff = Duration::from_millis(config.controlled_shutdown_retry_backoff_ms);
        let attempts = config.controlled_shutdown_max_retries;
        for attempt in 1..=attempts {
            match self.ask_controller_to_shut_down().await {
                Ok(remaining) if remaining.is_empty() => {
                    tracing::info!("controlled shutdown succeeded");
                    return Some(remaining);
                }
                Ok(remaining) => {
                    let movable = remaining.iter().any(|(t, p)| {
                        cache
                            .partition(t, *p)
                            .is_some_and(|info| info.isr.iter().any(|r| *r != me))
                    });
                    if !movable {
                        tracing::info!(
                            remaining = remaining.len(),
                            "controlled shutdown: the partitions still led here have no other in-sync replica"
                        );
                        return Some(remaining);
                    }
                    tracing::warn!(
                        attempt,
                        remaining = remaining.len(),
                        "controlled shutdown: partitions still to move"
                    );
                }
                Err(why) => tracing::warn!(attempt, why, "controlled shutdown attempt failed"),
            }
            if attempt < attempts {
                tokio::time::sleep(backoff).await;
            }
        }
        tracing::warn!("proceeding without a complete controlled shutdown");
        None
    }

    /// After a controlled shutdown, the controller's LeaderAndIsr taking the moved leaderships
    /// away must reach this broker before its in-flight requests are drained (and before the
    /// controller, if it runs here, stops): an acks=all produce parked on a moved partition
    /// then answers NOT_LEADER_OR_FOLLOWER at once, and its client retries on the new leader,
    /// instead of waiting out its request timeout. Bounded: a lost request must not hold the
    /// shutdown.
    async fn wait_for_leadership_handover(&self, remaining: &[(String, i32)]) {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let still_leading = self.api.replicas.hosted().into_iter().any(|p| {
                p.is_leader()
                    && !remaining
                        .iter()
                        .any(|(t, n)| *t == p.topic && *n == p.partition)
            });
            if !still_leading {
                return;
            }
            if Instant::now() >= deadline {
                tracing::warn!("leaderships moved by the controller were not handed over in time");
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// One ControlledShutdown to the controller (the controller in this process directly):
    /// the partitions this broker still leads afterwards.
    async fn ask_controller_to_shut_down(&self) -> Result<Vec<(String, i32)>, String> {
        use kafka_protocol::messages::{
            ApiKey, BrokerId, ControlledShutdownRequest, RequestKind, ResponseKind,
        };
        let cache = &self.api.cache;
        let me = self.broker_id;
        let epoch = cache.broker_epoch();
        let controller = cache.controller_id();
        if controller == me {
            return self
                .controller
                .controlled_shutdown(me, epoch)
                .await
                .map_err(|e| crate::client::error_name(e.kafka_error_code()));
        }
        let addr = cache
            .broker_address(controller, &self.api.config.inter_broker_listener)
            .ok_or_else(|| format!("controller {controller} is not known"))?;
        let timeout = Duration::from_millis(self.api.config.controller_socket_timeout_ms);
        let call = async {
            let mut conn = self
                .api
                .config
                .inter_broker_security
                .connect(&addr, &crate::client::ClientId::broker(me))
                .await
                .map_err(|e| {
                    if e.is_authentication() {
                        tracing::error!(
                            controller,
                            error = %e,
                            "controlled shutdown: the connection to the controller failed \
                             authentication"
                        );
                    }
                    e.to_string()
                })?;
            let mut req = ControlledShutdownRequest::default();
            req.broker_id = BrokerId(me);
            req.broker_epoch = epoch;
            conn.call_upto(
                ApiKey::ControlledShutdown,
                self.api
                    .config
                    .inter_broker_protocol_version
                    .controlled_shutdown(),
                RequestKind::ControlledShutdown(req),
            )
            .await
            .map_err(|e| e.to_string())
        };
        match tokio::time::timeout(timeout, call).await {
            Err(_) => Err(format!("controller {controller} did not answer in time")),
            Ok(Err(e)) => Err(e),
            Ok(Ok(ResponseKind::ControlledShutdown(r))) if r.error_code == 0 => Ok(r
                .remaining_partitions
                .into_iter()
                .map(|p| (p.topic_name.0.to_string(), p.partition_index))
                .collect()),
            Ok(Ok(ResponseKind::ControlledShutdown(r))) => {
                Err(crate::client::error_name(r.error_code))
            }
            Ok(Ok(_)) => Err("unexpected response".into()),
        }
    }
}
