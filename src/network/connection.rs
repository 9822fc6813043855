//! One connection: frames in, each handed to the API layer, responses out in request order.

use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};

use super::{Limits, ListenerContext};
use crate::api::{Api, ClientInfo};
use crate::protocol::frame::{self, FrameError};

type Pending = crate::api::PendingResponse;

pub(super) async fn run(
    stream: TcpStream,
    peer: std::net::SocketAddr,
    context: Arc<ListenerContext>,
    api: Arc<Api>,
    limits: Limits,
    shutdown: watch::Receiver<bool>,
) -> Result<(), FrameError> {
    let client = ClientInfo {
        address: Some(peer),
        listener: Some(context.name.clone()),
        principal: None,
    };
    // A plain TCP stream splits into halves without a lock between them.
    let (reader, writer) = stream.into_split();
    serve_requests(reader, writer, client, api, limits, shutdown).await
}

/// Reads requests until the peer closes, the connection idles out or the broker shuts down,
/// then answers what was already accepted and closes.
async fn serve_requests<R, W>(
    mut reader: R,
    mut writer: W,
    client: ClientInfo,
    api: Arc<Api>,
    limits: Limits,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), FrameError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin + Send + 'static,
{
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
        match api.clone().dispatch(frame, client.clone()) {
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
