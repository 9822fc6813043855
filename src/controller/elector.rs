//! The elector every broker runs, as Kafka's `KafkaController.elect`: it competes for the
//! ephemeral `/controller`, runs the active controller while it holds it, and competes again
//! after losing it.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{mpsc, watch};

use crate::metadata::store::{CreateMode, StoreError, WatchEvent};
use crate::metadata::znodes;

use super::Controller;
use super::active;
use super::channel::BrokerChannels;

fn now_string() -> String {
    crate::log::segment::now_ms().to_string()
}
impl Controller {
    /// The elector: competes for `/controller` whenever it is free, runs the active controller
    /// while this broker holds it, and competes again after losing it. Runs until shutdown.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let mut events = self.store.subscribe();
        let mut backoff = Duration::from_millis(100);
        loop {
            if *shutdown.borrow() {
                return;
            }
            if let Err(e) = self.store.watch_node(znodes::CONTROLLER).await {
                tracing::warn!(error = %e, "cannot watch /controller");
            }
            match self.try_elect().await {
                Ok(Some((epoch, epoch_zk_version))) => {
                    backoff = Duration::from_millis(100);
                    let Some(local) = self.local.get().cloned() else {
                        tracing::error!("controller elected before the broker's handlers exist");
                        return;
                    };
                    let channels = BrokerChannels::new(
                        self.config.broker_id,
                        local,
                        Duration::from_millis(self.config.controller_socket_timeout_ms),
                        self.config.inter_broker_security.clone(),
                    );
                    let controller = active::ActiveController::new(
                        self.store.clone(),
                        self.config.clone(),
                        epoch,
                        epoch_zk_version,
                        channels,
                    );
                    let (tx, rx) = mpsc::unbounded_channel();
                    self.set_commands(Some(tx));
                    let stopped = controller
                        .run(self.store.subscribe(), rx, shutdown.clone())
                        .await;
                    self.set_commands(None);
                    match stopped {
                        active::Stop::Shutdown => return,
                        active::Stop::Resigned(why) => {
                            tracing::warn!(reason = why, "resigned as controller");
                            self.delete_controller_if_mine().await;
                        }
                    }
                    // Start from a clean slate: whatever happened meanwhile is re-read.
                    events = self.store.subscribe();
                    continue;
                }
                Ok(None) => backoff = Duration::from_millis(100),
                Err(e) => {
                    tracing::warn!(error = %e, "controller election failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    continue;
                }
            }
            // Someone else is controller: wait until `/controller` changes. The periodic
            // re-check bounds the damage of a missed event.
            let deadline = tokio::time::sleep(Duration::from_secs(10));
            tokio::pin!(deadline);
            loop {
                tokio::select! {
                    _ = &mut deadline => break,
                    _ = shutdown.changed() => return,
                    e = events.recv() => match e {
                        Ok(WatchEvent::NodeChanged(p)) if p == znodes::CONTROLLER => break,
                        Ok(WatchEvent::SessionExpired) | Err(RecvError::Lagged(_)) => break,
                        Err(RecvError::Closed) => return,
                        Ok(_) => {}
                    },
                }
            }
        }
    }

    /// Kafka's election: `/controller` is created by exactly one broker, which then bumps
    /// `/controller_epoch`. Returns the new epoch and the epoch znode's version (what later
    /// writes are fenced on), or `None` when another broker is controller.
    async fn try_elect(&self) -> Result<Option<(i32, i32)>, StoreError> {
        let store = self.store.as_ref();
        let me = self.config.broker_id;
        if let Some((data, _)) = store.get(znodes::CONTROLLER).await? {
            let holder = data
                .and_then(|d| {
                    znodes::decode::<znodes::ControllerZnode>(znodes::CONTROLLER, &d).ok()
                })
                .map_or(-1, |c| c.brokerid);
            if holder != me {
                self.cache.set_controller_id(holder);
            }
            return Ok(None);
        }
        let (current, version) = match store.get(znodes::CONTROLLER_EPOCH).await? {
            Some((Some(d), stat)) => (
                String::from_utf8_lossy(&d)
                    .trim()
                    .parse::<i32>()
                    .unwrap_or(0),
                stat.version,
            ),
            Some((None, stat)) => (0, stat.version),
            None => {
                match store
                    .create(
                        znodes::CONTROLLER_EPOCH,
                        Some(b"0".to_vec()),
                        CreateMode::Persistent,
                    )
                    .await
                {
                    Ok(_) | Err(StoreError::NodeExists(_)) => {}
                    Err(e) => return Err(e),
                }
                return Box::pin(self.try_elect()).await;
            }
        };
        // Version 1, as Kafka 2.x writes it; Kafka 3.x writes 2 with kraftControllerEpoch -1 and
        // reads a version 1 node as exactly that.
        let z = znodes::ControllerZnode {
            version: 1,
            brokerid: me,
            timestamp: now_string(),
            kraft_controller_epoch: None,
        };
        match store
            .create(
                znodes::CONTROLLER,
                Some(znodes::encode(&z)),
                CreateMode::Ephemeral,
            )
            .await
        {
            Ok(_) => {}
            Err(StoreError::NodeExists(_)) => return Ok(None),
            Err(e) => return Err(e),
        }
        let next = current + 1;
        match store
            .set(
                znodes::CONTROLLER_EPOCH,
                Some(next.to_string().into_bytes()),
                Some(version),
            )
            .await
        {
            Ok(stat) => {
                self.cache.set_controller_id(me);
                tracing::info!(broker_id = me, controller_epoch = next, "became controller");
                Ok(Some((next, stat.version)))
            }
            Err(StoreError::BadVersion(_)) => {
                // Another broker won an election between our read and our write.
                self.delete_controller_if_mine().await;
                Ok(None)
            }
            Err(e) => {
                self.delete_controller_if_mine().await;
                Err(e)
            }
        }
    }

    pub(super) async fn delete_controller_if_mine(&self) {
        let mine = match self.store.get(znodes::CONTROLLER).await {
            Ok(Some((Some(d), stat))) => {
                stat.ephemeral_owner == self.store.session_id()
                    && znodes::decode::<znodes::ControllerZnode>(znodes::CONTROLLER, &d)
                        .is_ok_and(|c| c.brokerid == self.config.broker_id)
            }
            _ => false,
        };
        if mine && let Err(e) = self.store.delete(znodes::CONTROLLER, None).await {
            tracing::warn!(error = %e, "could not remove /controller");
        }
    }
}
