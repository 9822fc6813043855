//! The controller's requests to brokers (LeaderAndIsr, UpdateMetadata, StopReplica): one
//! ordered queue per broker, so a broker sees the controller's decisions in the order they were
//! made, which is what lets it trust that UpdateMetadata follows the LeaderAndIsr it describes.
//! A request to a broker that cannot be reached is retried until the broker leaves the cluster.
//! Requests to this broker skip the network and go straight to its handlers.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::{ApiKey, RequestKind, ResponseKind};
use tokio::sync::{mpsc, oneshot};

use crate::client::{ClientId, Connection};
use crate::config::security::InterBrokerSecurity;

pub type Reply = oneshot::Receiver<ResponseKind>;
type LocalFuture = Pin<Box<dyn Future<Output = Option<ResponseKind>> + Send>>;
/// Hands a request to this broker's own handlers.
pub type LocalDelivery = Arc<dyn Fn(RequestKind, i16) -> LocalFuture + Send + Sync>;

struct Outgoing {
    key: ApiKey,
    max_version: i16,
    request: RequestKind,
    reply: oneshot::Sender<ResponseKind>,
}

struct BrokerQueue {
    addr: String,
    tx: mpsc::UnboundedSender<Outgoing>,
    task: tokio::task::JoinHandle<()>,
}

pub struct BrokerChannels {
    local_id: i32,
    local: LocalDelivery,
    timeout: Duration,
    /// How the controller reaches brokers: the inter-broker listener's TLS and SASL.
    security: Arc<InterBrokerSecurity>,
    queues: HashMap<i32, BrokerQueue>,
}

impl BrokerChannels {
    pub fn new(
        local_id: i32,
        local: LocalDelivery,
        timeout: Duration,
        security: InterBrokerSecurity,
    ) -> Self {
        BrokerChannels {
            local_id,
            local,
            timeout,
            security: Arc::new(security),
            queues: HashMap::new(),
        }
    }

    /// Starts (or, for a new address, restarts) the queue to broker `id`.
    pub fn add(&mut self, id: i32, addr: String) {
        if self.queues.get(&id).is_some_and(|q| q.addr == addr) {
            return;
        }
        self.remove(id);
        let (tx, rx) = mpsc::unbounded_channel();
        let task = if id == self.local_id {
            tokio::spawn(deliver_locally(self.local.clone(), rx))
        } else {
            let client = ClientId::broker(self.local_id);
            tokio::spawn(deliver_remotely(
                addr.clone(),
                client,
                rx,
                self.timeout,
                self.security.clone(),
            ))
        };
        self.queues.insert(id, BrokerQueue { addr, tx, task });
    }

    /// The broker left: whatever was queued for it is dropped (its replies never come).
    pub fn remove(&mut self, id: i32) {
        if let Some(q) = self.queues.remove(&id) {
            q.task.abort();
        }
    }

    /// Queues a request; the reply arrives when the broker has answered.
    pub fn send(
        &self,
        broker: i32,
        key: ApiKey,
        max_version: i16,
        request: RequestKind,
    ) -> Option<Reply> {
        let q = self.queues.get(&broker)?;
        let (reply, rx) = oneshot::channel();
        q.tx.send(Outgoing {
            key,
            max_version,
            request,
            reply,
        })
        .ok()?;
        Some(rx)
    }

    pub fn clear(&mut self) {
        let ids: Vec<i32> = self.queues.keys().copied().collect();
        for id in ids {
            self.remove(id);
        }
    }
}

impl Drop for BrokerChannels {
    fn drop(&mut self) {
        self.clear();
    }
}

async fn deliver_locally(local: LocalDelivery, mut rx: mpsc::UnboundedReceiver<Outgoing>) {
    while let Some(mut out) = rx.recv().await {
        // The handlers read the request in the shape of the version it comes in, as from the
        // network.
        crate::client::fit(out.key, out.max_version, &mut out.request);
        if let Some(response) = local(out.request, out.max_version).await {
            let _ = out.reply.send(response);
        }
    }
}

async fn deliver_remotely(
    addr: String,
    client: ClientId,
    mut rx: mpsc::UnboundedReceiver<Outgoing>,
    timeout: Duration,
    security: Arc<InterBrokerSecurity>,
) {
    let mut conn: Option<Connection> = None;
    let mut backoff = Duration::from_millis(50);
    while let Some(out) = rx.recv().await {
        // Retried until it is answered or the broker is removed (which aborts this task).
        loop {
            if conn.is_none() {
                match tokio::time::timeout(timeout, security.connect(&addr, &client)).await {
                    Ok(Ok(c)) => {
                        conn = Some(c);
                        backoff = Duration::from_millis(50);
                    }
                    // Wrong credentials do not fix themselves: said at ERROR on every
                    // attempt, as Kafka's network client does.
                    Ok(Err(e)) if e.is_authentication() => {
                        tracing::error!(
                            addr,
                            error = %e,
                            "controller connection to broker failed authentication"
                        );
                    }
                    Ok(Err(e)) => {
                        tracing::debug!(addr, error = %e, "controller cannot reach broker");
                    }
                    Err(_) => tracing::debug!(addr, "controller connection timed out"),
                }
            }
            if let Some(c) = conn.as_mut() {
                match tokio::time::timeout(
                    timeout,
                    c.call_upto(out.key, out.max_version, out.request.clone()),
                )
                .await
                {
                    Ok(Ok(response)) => {
                        let _ = out.reply.send(response);
                        break;
                    }
                    Ok(Err(e)) => {
                        tracing::warn!(addr, api = ?out.key, error = %e, "controller request failed; retrying")
                    }
                    Err(_) => {
                        tracing::warn!(addr, api = ?out.key, "controller request timed out; retrying")
                    }
                }
                conn = None;
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(1));
        }
    }
}
