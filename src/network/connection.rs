//! One connection: TLS first where the listener has it, then SASL where it has that, then
//! frames in, each handed to the API layer, responses out in request order.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use kafka_protocol::messages::ApiKey;
use tokio::io::{AsyncRead, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};

use super::sasl::{Authenticator, Session, Verdict};
use super::send::{Outbound, write_response};
use super::{Limits, ListenerContext};
use crate::api::{Api, ClientInfo, Reply};
use crate::protocol::frame::{self, FrameError};
use crate::security::{KafkaPrincipal, SecurityProtocol};

type Pending = crate::api::PendingResponse;

/// How long a client has to finish the TLS handshake, and then each step of SASL: a
/// connection that stalls before it is authenticated holds resources for nobody.
pub(super) const AUTHENTICATION_STEP_TIMEOUT: Duration = Duration::from_secs(10);

pub(super) async fn run(
    stream: TcpStream,
    peer: std::net::SocketAddr,
    context: Arc<ListenerContext>,
    api: Arc<Api>,
    limits: Limits,
    shutdown: watch::Receiver<bool>,
) -> Result<(), FrameError> {
    let mut client = ClientInfo {
        address: Some(peer),
        listener: Some(context.name.clone()),
        principal: Some(Arc::new(KafkaPrincipal::anonymous())),
        protocol: Some(context.protocol),
        token_authenticated: false,
    };
    let Some(tls) = &context.tls else {
        // A plain TCP stream splits into halves without a lock between them.
        let (reader, writer) = stream.into_split();
        return serve_requests(reader, writer, client, context, api, limits, shutdown).await;
    };
    let stream = match tokio::time::timeout(
        AUTHENTICATION_STEP_TIMEOUT.min(limits.idle_timeout),
        tls.acceptor.accept(stream),
    )
    .await
    {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => {
            crate::metrics::global().authentication(&context.name, false);
            tracing::info!(error = %e, "TLS handshake failed");
            return Ok(());
        }
        Err(_) => {
            crate::metrics::global().authentication(&context.name, false);
            tracing::info!("TLS handshake did not complete in time; closing");
            return Ok(());
        }
    };
    if context.protocol == SecurityProtocol::Ssl {
        // On SSL listeners the certificate is who the client is (Kafka's
        // DefaultKafkaPrincipalBuilder); on SASL_SSL, SASL decides.
        let certs = stream.get_ref().1.peer_certificates();
        match crate::security::principal::ssl_principal(certs, &tls.mapper) {
            Ok(principal) => {
                crate::metrics::global().authentication(&context.name, true);
                tracing::info!(%principal, "TLS client authenticated");
                client.principal = Some(Arc::new(principal));
            }
            Err(e) => {
                crate::metrics::global().authentication(&context.name, false);
                tracing::info!(error = %e, "no principal for the client certificate; closing");
                return Ok(());
            }
        }
    }
    let (reader, writer) = tokio::io::split(stream);
    serve_requests(reader, writer, client, context, api, limits, shutdown).await
}

/// Where a connection is: authenticating (SASL listeners, and again while re-authenticating),
/// or serving requests, with the SASL session if there is one.
enum Phase {
    Authenticating(Authenticator),
    Serving(Option<Session>),
}

fn ready(bytes: Option<BytesMut>) -> Pending {
    Box::pin(async move { Ok(Reply::now(bytes)) })
}

/// A response sent only after `delay`: failed authentications are answered late, so that a
/// client guessing passwords is slowed down.
fn delayed(bytes: Option<BytesMut>, delay: Duration) -> Pending {
    Box::pin(async move {
        tokio::time::sleep(delay).await;
        Ok(Reply::now(bytes))
    })
}

/// Reads requests until the peer closes, the connection idles out or the broker shuts down,
/// then answers what was already accepted and closes.
async fn serve_requests<R, W>(
    mut reader: R,
    mut writer: W,
    mut client: ClientInfo,
    context: Arc<ListenerContext>,
    api: Arc<Api>,
    limits: Limits,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), FrameError>
where
    R: AsyncRead + Unpin,
    W: Outbound,
{
    // The bounded channel is the in-flight limit: when it is full we stop reading requests.
    // Each entry says whether dispatch started its handler already (see `Api::dispatch`).
    let (tx, mut rx) = mpsc::channel::<(Pending, bool)>(limits.max_in_flight.max(1));
    // Requests accepted and not yet answered whose handlers were not started at dispatch: a
    // request may be started early only when there are none, so that it never overtakes one.
    let unstarted = Arc::new(AtomicUsize::new(0));
    let answered = unstarted.clone();
    let mut writer_shutdown = shutdown.clone();
    let writer_task = tokio::spawn(async move {
        while let Some((pending, started)) = rx.recv().await {
            let outcome = pending.await;
            if !started {
                answered.fetch_sub(1, Ordering::AcqRel);
            }
            match outcome {
                Ok(reply) => {
                    // acks=0 produce: Kafka sends nothing.
                    if let Some(bytes) = reply.bytes {
                        write_response(&mut writer, &bytes, &reply.regions).await?;
                    }
                    // KIP-219: the answer goes out at once, then the connection is muted for
                    // the throttle: requests run one at a time in this task, so the next one
                    // waits here, and once the queue is full the reader stops reading. Not
                    // at shutdown, when what was accepted is answered without delay.
                    if !reply.mute.is_zero() && !*writer_shutdown.borrow() {
                        tokio::select! {
                            _ = tokio::time::sleep(reply.mute) => {}
                            _ = writer_shutdown.changed() => {}
                        }
                    }
                }
                Err(crate::api::Closing::Deliberate(why)) => {
                    tracing::info!(reason = %why, "closing connection");
                    return Err(std::io::Error::other(why));
                }
                Err(crate::api::Closing::Failed(e)) => {
                    tracing::error!(error = %e, "could not answer a request; closing connection");
                    return Err(std::io::Error::other(e));
                }
            }
        }
        writer.shutdown().await
    });
    let mut phase = match &context.sasl {
        Some(sasl) => Phase::Authenticating(Authenticator::new(sasl.clone())),
        None => Phase::Serving(None),
    };
    let result = loop {
        let (max_size, wait) = match &phase {
            Phase::Authenticating(auth) => (
                auth.max_receive_size(),
                AUTHENTICATION_STEP_TIMEOUT.min(limits.idle_timeout),
            ),
            Phase::Serving(_) => (limits.max_request_bytes, limits.idle_timeout),
        };
        let frame = tokio::select! {
            f = tokio::time::timeout(wait, frame::read_frame(&mut reader, max_size)) => match f {
                Ok(f) => f,
                Err(_) => break Ok(()), // connections.max.idle.ms, or a stalled authentication
            },
            _ = shutdown.changed() => break Ok(()),
        };
        let frame = match frame {
            Ok(f) => f,
            Err(FrameError::Closed) => break Ok(()),
            Err(e) => {
                if let Phase::Authenticating(auth) = &phase {
                    // Too large for sasl.server.max.receive.size: an authentication failure.
                    crate::metrics::global().authentication(&context.name, false);
                    let _ = tx.send((delayed(None, auth.failure_delay()), true)).await;
                }
                break Err(e);
            }
        };
        if let Phase::Serving(Some(session)) = &phase {
            let now = Instant::now();
            let is_handshake =
                frame::peek_api(&frame).is_ok_and(|(key, _)| key == ApiKey::SaslHandshake as i16);
            if is_handshake
                && session.reauthenticates(now)
                && let Some(sasl) = &context.sasl
            {
                phase = Phase::Authenticating(Authenticator::reauthenticate(
                    sasl.clone(),
                    session.clone(),
                ));
            } else if session.expired(now) {
                tracing::info!(principal = %session.principal, "SASL session expired without re-authentication; closing");
                break Ok(());
            }
        }
        let may_start = unstarted.load(Ordering::Acquire) == 0;
        let (pending, started) = match &mut phase {
            Phase::Serving(_) => match api.clone().dispatch(frame, client.clone(), may_start) {
                Ok(d) => (d.response, d.started),
                Err(e) => break Err(e),
            },
            Phase::Authenticating(auth) => match auth.on_frame(frame) {
                Verdict::Reply(bytes) => (ready(Some(bytes)), true),
                Verdict::Api(frame) => match api.clone().dispatch(frame, client.clone(), false) {
                    Ok(d) => (d.response, d.started),
                    Err(e) => break Err(e),
                },
                Verdict::Authenticated { reply, session } => {
                    crate::metrics::global().authentication(&context.name, true);
                    tracing::info!(principal = %session.principal, mechanism = %session.mechanism, token = session.token_authenticated, "SASL client authenticated");
                    client.principal = Some(session.principal.clone());
                    client.token_authenticated = session.token_authenticated;
                    phase = Phase::Serving(Some(session));
                    (ready(Some(reply)), true)
                }
                Verdict::Fail {
                    reply,
                    delayed: late,
                    reason,
                } => {
                    crate::metrics::global().authentication(&context.name, false);
                    tracing::info!(%reason, "SASL authentication failed; closing");
                    let delay = if late {
                        auth.failure_delay()
                    } else {
                        Duration::ZERO
                    };
                    let _ = tx.send((delayed(reply, delay), true)).await;
                    break Ok(());
                }
            },
        };
        if !started {
            unstarted.fetch_add(1, Ordering::AcqRel);
        }
        if tx.send((pending, started)).await.is_err() {
            break Ok(()); // the writer stopped: the peer is gone
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
