//! Listeners and connections: one task per connection reads frames, hands each request to the
//! API layer, and writes responses in request order (clients pipeline requests and match
//! responses by order as well as by correlation id).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc, watch};
use tracing::Instrument;

use crate::api::Api;
use crate::protocol::frame::{self, FrameError};

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_request_bytes: usize,
    pub max_connections: usize,
    /// Requests a connection may have in flight before we stop reading from it (backpressure).
    pub max_in_flight: usize,
    pub idle_timeout: Duration,
}

/// Accepts connections until `shutdown` turns true, then waits for open connections to finish
/// their in-flight requests.
pub async fn serve(
    listener: TcpListener,
    api: Arc<Api>,
    limits: Limits,
    mut shutdown: watch::Receiver<bool>,
) {
    let connections = Arc::new(Semaphore::new(
        limits.max_connections.min(Semaphore::MAX_PERMITS),
    ));
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
        open.fetch_add(1, Ordering::Relaxed);
        let connections = &crate::metrics::global().connections;
        connections.inc();
        tasks.spawn(
            async move {
                if let Err(e) = handle_connection(stream, peer, api, limits, shutdown).await {
                    tracing::info!(error = %e, "connection closed");
                }
                open.fetch_sub(1, Ordering::Relaxed);
                crate::metrics::global().connections.dec();
                drop(permit);
            }
            .instrument(tracing::info_span!("conn", %peer)),
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

type Pending = crate::api::PendingResponse;

async fn handle_connection(
    stream: TcpStream,
    peer: std::net::SocketAddr,
    api: Arc<Api>,
    limits: Limits,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), FrameError> {
    let (mut reader, mut writer) = stream.into_split();
    // The bounded channel is the in-flight limit: when it is full we stop reading requests.
    let (tx, mut rx) = mpsc::channel::<Pending>(limits.max_in_flight.max(1));
    let writer_task = tokio::spawn(async move {
        while let Some(pending) = rx.recv().await {
            match pending.await {
                Ok(Some(bytes)) => writer.write_all(&bytes).await?,
                Ok(None) => {} // acks=0 produce: Kafka sends nothing
                Err(e) => {
                    tracing::error!(error = %e, "could not encode a response; closing connection");
                    return Err(std::io::Error::other(e));
                }
            }
        }
        writer.shutdown().await
    });
    let result = loop {
        let frame = tokio::select! {
            f = tokio::time::timeout(limits.idle_timeout, frame::read_frame(&mut reader, limits.max_request_bytes)) => match f {
                Ok(f) => f,
                Err(_) => break Ok(()), // connections.max.idle.ms
            },
            _ = shutdown.changed() => break Ok(()),
        };
        let frame = match frame {
            Ok(f) => f,
            Err(FrameError::Closed) => break Ok(()),
            Err(e) => break Err(e),
        };
        let client = crate::api::ClientInfo {
            address: Some(peer),
        };
        match api.clone().dispatch(frame, client) {
            Ok(pending) => {
                if tx.send(pending).await.is_err() {
                    break Ok(()); // the writer stopped: the peer is gone
                }
            }
            Err(e) => break Err(e),
        }
    };
    // Answer what was already accepted, then close.
    drop(tx);
    match writer_task.await {
        Ok(Err(e)) if result.is_ok() => return Err(e.into()),
        _ => {}
    }
    result
}
