//! Listeners and connections: one task per connection reads frames, hands each request to the
//! API layer, and writes responses in request order (clients pipeline requests and match
//! responses by order as well as by correlation id).
//!
//! A listener has a name and a security protocol (`listener.security.protocol.map`): TLS is
//! set up before the first frame (`tls`), and SASL authenticates before any request but
//! ApiVersions and SaslHandshake reaches the API layer (`sasl`).

mod connection;
pub mod sasl;
mod send;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tracing::Instrument;

use crate::api::Api;
use crate::security::SecurityProtocol;

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_request_bytes: usize,
    pub max_connections: usize,
    /// Requests a connection may have in flight before we stop reading from it (backpressure).
    pub max_in_flight: usize,
    pub idle_timeout: Duration,
}

/// One listener of `listeners`: what its connections are told and how they authenticate.
pub struct ListenerContext {
    /// The listener name: requests on it are answered with the brokers' endpoints on it.
    pub name: Arc<str>,
    pub protocol: SecurityProtocol,
    /// SSL and SASL_SSL listeners.
    pub tls: Option<Tls>,
    /// SASL_PLAINTEXT and SASL_SSL listeners.
    pub sasl: Option<Arc<sasl::SaslListener>>,
}

/// A TLS listener's handshake settings and how a client certificate names its principal.
pub struct Tls {
    pub acceptor: tokio_rustls::TlsAcceptor,
    /// `ssl.principal.mapping.rules`.
    pub mapper: crate::security::principal::PrincipalMapper,
}

/// Accepts connections until `shutdown` turns true, then waits for open connections to finish
/// their in-flight requests.
pub async fn serve(
    listener: TcpListener,
    context: Arc<ListenerContext>,
    api: Arc<Api>,
    limits: Limits,
    connections: Arc<Semaphore>,
    mut shutdown: watch::Receiver<bool>,
) {
    let open = Arc::new(AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.changed() => break,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of file descriptors and the like: back off briefly instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = connections.clone().try_acquire_owned() else {
            tracing::warn!(%peer, max = limits.max_connections, "connection refused: max.connections reached");
            continue;
        };
        let _ = stream.set_nodelay(true);
        let api = api.clone();
        let open = open.clone();
        let shutdown = shutdown.clone();
        let context = context.clone();
        open.fetch_add(1, Ordering::Relaxed);
        let metric = crate::metrics::global()
            .connections
            .with_label_values(&[&*context.name]);
        metric.inc();
        let span = tracing::info_span!("conn", %peer, listener = %context.name);
        tasks.spawn(
            async move {
                if let Err(e) = connection::run(stream, peer, context, api, limits, shutdown).await
                {
                    tracing::info!(error = %e, "connection closed");
                }
                open.fetch_sub(1, Ordering::Relaxed);
                metric.dec();
                drop(permit);
            }
            .instrument(span),
        );
        // Reap finished connections so the set does not grow without bound.
        while tasks.try_join_next().is_some() {}
    }
    // Stop listening now: new clients should be refused (and go elsewhere) while the open
    // connections finish what they started.
    drop(listener);
    let deadline = tokio::time::sleep(Duration::from_secs(30));
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            next = tasks.join_next() => if next.is_none() { break },
            _ = &mut deadline => {
                tracing::warn!(open = open.load(Ordering::Relaxed), "connections still open at shutdown; closing them");
                tasks.abort_all();
                break;
            }
        }
    }
}

/// `max.connections` counts connections on all listeners together, as Kafka's does.
pub fn connection_limit(limits: &Limits) -> Arc<Semaphore> {
    Arc::new(Semaphore::new(
        limits.max_connections.min(Semaphore::MAX_PERMITS),
    ))
}
