//! The server side of SASL on a listener (Kafka's `SaslServerAuthenticator`): before a
//! connection is authenticated only ApiVersions (once, first) and SaslHandshake are answered;
//! after the handshake only SaslAuthenticate carries tokens, or, after a v0 handshake, raw
//! size-prefixed tokens without any Kafka header (the framing before KIP-152).
//!
//! Each frame read while authenticating is judged here and turned into a [`Verdict`] that
//! the connection carries out, so that responses still leave in request order through the
//! connection's one writer. Failures are answered only after
//! `connection.failed.authentication.delay.ms`, then the connection closes, as Kafka does: a
//! client guessing passwords gets one guess per delay per connection.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use kafka_protocol::ResponseError;
use kafka_protocol::messages::{
    ApiKey, SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest,
    SaslHandshakeResponse,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

use crate::api::supported_versions;
use crate::config::security::SaslSettings;
use crate::protocol::frame;
use crate::security::KafkaPrincipal;
use crate::security::sasl::{Mechanism, SaslServer, ServerCredentials, Step};

/// A SASL listener's mechanisms and where their credentials come from.
pub struct SaslListener {
    pub settings: SaslSettings,
    pub credentials: ServerCredentials,
}

/// What the connection does with one frame read while authenticating.
pub(super) enum Verdict {
    /// Send this response and read on.
    Reply(BytesMut),
    /// ApiVersions before the handshake: the API layer answers it.
    Api(Bytes),
    /// Authentication is complete: send the last response; requests now go to the API layer.
    Authenticated { reply: BytesMut, session: Session },
    /// After the failed-authentication delay (if `delayed`), send this response, if any, and
    /// close the connection.
    Fail {
        reply: Option<BytesMut>,
        delayed: bool,
        reason: String,
    },
}

/// An authenticated SASL session.
#[derive(Debug, Clone)]
pub(super) struct Session {
    pub principal: Arc<KafkaPrincipal>,
    pub mechanism: Mechanism,
    /// When the session ends unless the client re-authenticates (KIP-368); None when
    /// `connections.max.reauth.ms` is 0.
    pub expires: Option<Instant>,
    /// How long the session lasts from the end of its authentication, as the client is told
    /// (`session_lifetime_ms`).
    pub lifetime: Option<Duration>,
    /// When the last re-authentication began (None before the first): the next may start a
    /// second later.
    pub reauthenticated: Option<Instant>,
    /// Logged in with a delegation token (Kafka's `KafkaPrincipal.tokenAuthenticated`): such a
    /// connection may not create or manage tokens.
    pub token_authenticated: bool,
}

impl Session {
    /// Whether a SaslHandshake on this session starts a re-authentication rather than going
    /// to the API layer. Kafka's KafkaChannel: only a session that expires, the first
    /// re-authentication at any time and each later one at least a second after the one
    /// before it began.
    pub fn reauthenticates(&self, now: Instant) -> bool {
        self.expires.is_some()
            && self
                .reauthenticated
                .is_none_or(|at| now.duration_since(at) >= Duration::from_secs(1))
    }

    pub fn expired(&self, now: Instant) -> bool {
        self.expires.is_some_and(|at| now >= at)
    }
}

enum State {
    /// Nothing read yet: ApiVersions or SaslHandshake may come.
    HandshakeOrVersions,
    /// ApiVersions was answered: only SaslHandshake may come.
    Handshake,
    /// Tokens in SaslAuthenticate requests (handshake v1).
    Authenticate(SaslServer),
    /// Raw tokens (handshake v0).
    LegacyTokens(SaslServer),
    /// Finished or failed: nothing more is read.
    Done,
}

pub(super) struct Authenticator {
    listener: Arc<SaslListener>,
    state: State,
    /// The session being renewed, when this is a re-authentication.
    previous: Option<Session>,
    /// When this exchange began (a re-authentication: when its SaslHandshake was read).
    started: Instant,
}

impl Authenticator {
    pub fn new(listener: Arc<SaslListener>) -> Self {
        Authenticator {
            listener,
            state: State::HandshakeOrVersions,
            previous: None,
            started: Instant::now(),
        }
    }

    /// A re-authentication of `session`: it starts with the SaslHandshake just read.
    pub fn reauthenticate(listener: Arc<SaslListener>, session: Session) -> Self {
        Authenticator {
            listener,
            state: State::Handshake,
            previous: Some(session),
            started: Instant::now(),
        }
    }

    /// The largest frame read while authenticating (`sasl.server.max.receive.size`).
    pub fn max_receive_size(&self) -> usize {
        self.listener.settings.max_receive_size
    }

    pub fn failure_delay(&self) -> Duration {
        Duration::from_millis(self.listener.settings.failed_authentication_delay_ms)
    }

    fn fail(&mut self, reply: Option<BytesMut>, reason: impl Into<String>) -> Verdict {
        self.state = State::Done;
        Verdict::Fail {
            reply,
            delayed: true,
            reason: reason.into(),
        }
    }

    /// Judges one frame.
    pub fn on_frame(&mut self, frame: Bytes) -> Verdict {
        match std::mem::replace(&mut self.state, State::Done) {
            State::LegacyTokens(server) => self.legacy_token(server, &frame),
            State::Done => self.fail(None, "frame after the authentication ended"),
            state => self.request(state, frame),
        }
    }

    fn request(&mut self, state: State, mut frame: Bytes) -> Verdict {
        let Ok((key, version)) = frame::peek_api(&frame) else {
            return self.fail(None, "not a Kafka request before authentication");
        };
        let correlation_id = frame::correlation_id(&frame);
        let api_key = ApiKey::try_from(key).ok();
        match (state, api_key) {
            (State::HandshakeOrVersions, Some(ApiKey::ApiVersions)) => {
                self.state = State::Handshake;
                Verdict::Api(frame)
            }
            (State::Handshake, Some(ApiKey::ApiVersions)) => {
                // Kafka allows one ApiVersions, and closes at once on a second.
                Verdict::Fail {
                    reply: None,
                    delayed: false,
                    reason: "a second ApiVersions before authentication".into(),
                }
            }
            (State::HandshakeOrVersions | State::Handshake, Some(ApiKey::SaslHandshake)) => {
                let Some(request) =
                    decode::<SaslHandshakeRequest>(&mut frame, ApiKey::SaslHandshake, version)
                else {
                    return self.fail(None, "malformed SaslHandshake");
                };
                self.handshake(correlation_id, version, &request.mechanism)
            }
            (State::Authenticate(server), Some(ApiKey::SaslAuthenticate)) => {
                let Some(request) = decode::<SaslAuthenticateRequest>(
                    &mut frame,
                    ApiKey::SaslAuthenticate,
                    version,
                ) else {
                    // An unsupported version or a malformed body: closed at once, as Kafka does.
                    return Verdict::Fail {
                        reply: None,
                        delayed: false,
                        reason: format!("SaslAuthenticate v{version} not understood"),
                    };
                };
                self.authenticate(server, correlation_id, version, &request.auth_bytes)
            }
            (State::Authenticate(_), other) => self.fail(
                None,
                format!("{other:?} while SaslAuthenticate was expected"),
            ),
            (_, other) => self.fail(None, format!("{other:?} before authentication")),
        }
    }

    fn handshake(&mut self, correlation_id: i32, version: i16, mechanism: &str) -> Verdict {
        let settings = &self.listener.settings;
        let mut response = SaslHandshakeResponse::default();
        response.mechanisms = settings
            .mechanisms
            .iter()
            .map(|m| StrBytes::from_static_str(m.name()))
            .collect();
        let chosen = Mechanism::from_name(mechanism).filter(|m| settings.mechanisms.contains(m));
        // A re-authentication must keep the mechanism it began with.
        let chosen = chosen.filter(|m| self.previous.as_ref().is_none_or(|s| s.mechanism == *m));
        let Some(chosen) = chosen else {
            response.error_code = ResponseError::UnsupportedSaslMechanism.code();
            let reply = encode(correlation_id, ApiKey::SaslHandshake, version, &response);
            return self.fail(reply, format!("unsupported SASL mechanism {mechanism:?}"));
        };
        let Some(reply) = encode(correlation_id, ApiKey::SaslHandshake, version, &response) else {
            return self.fail(None, "could not encode SaslHandshake response");
        };
        let server = SaslServer::new(chosen, &self.listener.credentials);
        self.state = if version == 0 {
            State::LegacyTokens(server)
        } else {
            State::Authenticate(server)
        };
        Verdict::Reply(reply)
    }

    fn authenticate(
        &mut self,
        mut server: SaslServer,
        correlation_id: i32,
        version: i16,
        token: &[u8],
    ) -> Verdict {
        let mechanism = server.mechanism();
        let mut response = SaslAuthenticateResponse::default();
        match server.step(token) {
            Ok(Step::Challenge(bytes)) => {
                response.auth_bytes = Bytes::from(bytes);
                match encode(correlation_id, ApiKey::SaslAuthenticate, version, &response) {
                    Some(reply) => {
                        self.state = State::Authenticate(server);
                        Verdict::Reply(reply)
                    }
                    None => self.fail(None, "could not encode SaslAuthenticate response"),
                }
            }
            Ok(Step::Done { reply, user }) => {
                let session = match self.finish(mechanism, user, server.token_expiry()) {
                    Ok(s) => s,
                    Err(message) => {
                        response.error_code = ResponseError::SaslAuthenticationFailed.code();
                        response.error_message = Some(StrBytes::from_string(message.clone()));
                        let reply =
                            encode(correlation_id, ApiKey::SaslAuthenticate, version, &response);
                        return self.fail(reply, message);
                    }
                };
                response.auth_bytes = Bytes::from(reply);
                if version >= 1 {
                    response.session_lifetime_ms =
                        session.lifetime.map_or(0, |l| l.as_millis() as i64);
                }
                match encode(correlation_id, ApiKey::SaslAuthenticate, version, &response) {
                    Some(reply) => Verdict::Authenticated { reply, session },
                    None => self.fail(None, "could not encode SaslAuthenticate response"),
                }
            }
            Err(e) => {
                response.error_code = ResponseError::SaslAuthenticationFailed.code();
                let message = e.client_message(mechanism, self.previous.is_some());
                response.error_message = Some(StrBytes::from_string(message));
                let reply = encode(correlation_id, ApiKey::SaslAuthenticate, version, &response);
                self.fail(reply, e.detail().to_string())
            }
        }
    }

    /// A token in the v0 framing: no header, and no way to report an error but closing.
    fn legacy_token(&mut self, mut server: SaslServer, token: &[u8]) -> Verdict {
        let mechanism = server.mechanism();
        match server.step(token) {
            Ok(Step::Challenge(bytes)) => {
                self.state = State::LegacyTokens(server);
                Verdict::Reply(raw_frame(&bytes))
            }
            Ok(Step::Done { reply, user }) => {
                match self.finish(mechanism, user, server.token_expiry()) {
                    Ok(session) => Verdict::Authenticated {
                        reply: raw_frame(&reply),
                        session,
                    },
                    Err(message) => self.fail(None, message),
                }
            }
            Err(e) => self.fail(None, e.detail().to_string()),
        }
    }

    /// The session of a completed exchange; a re-authentication may not change who the
    /// connection is. `token_expiry`: the delegation token's expiry (ms since the epoch) when
    /// the client logged in with one.
    fn finish(
        &mut self,
        mechanism: Mechanism,
        user: String,
        token_expiry: Option<i64>,
    ) -> Result<Session, String> {
        let principal = KafkaPrincipal::user(user);
        if let Some(previous) = &self.previous
            && *previous.principal != principal
        {
            return Err(format!(
                "Cannot change principals during re-authentication from {}: {}",
                previous.principal, principal
            ));
        }
        let max = self
            .listener
            .settings
            .max_reauth_ms
            .get(&mechanism)
            .copied()
            .unwrap_or(0);
        // The lifetime runs from now, the end of the exchange, as Kafka's
        // SaslServerAuthenticator counts it and as the client does (from the final response):
        // counted from the start, a slow exchange would end the session before the client
        // thinks it is time to log in again.
        let reauth = (max > 0).then(|| Duration::from_millis(max));
        // A token's session ends when the token does, whatever connections.max.reauth.ms says
        // (Kafka's SaslServerAuthenticator with a credential expiry); the client is told, and
        // re-authenticates or is closed.
        let until_token_expiry = token_expiry.map(|at| {
            let left = at.saturating_sub(crate::security::delegation_token::now_ms());
            Duration::from_millis(u64::try_from(left).unwrap_or(0))
        });
        let lifetime = match (reauth, until_token_expiry) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        Ok(Session {
            principal: Arc::new(principal),
            mechanism,
            expires: lifetime.map(|l| Instant::now() + l),
            lifetime,
            reauthenticated: self.previous.is_some().then_some(self.started),
            token_authenticated: token_expiry.is_some(),
        })
    }
}

fn decode<T: Decodable>(frame: &mut Bytes, api_key: ApiKey, version: i16) -> Option<T> {
    let (min, max) = supported_versions(api_key)?;
    if version < min || version > max {
        return None;
    }
    frame::decode_header(frame, api_key, version).ok()?;
    T::decode(frame, version).ok()
}

fn encode<T: Encodable>(
    correlation_id: i32,
    api_key: ApiKey,
    version: i16,
    body: &T,
) -> Option<BytesMut> {
    frame::encode_response(
        correlation_id,
        api_key.response_header_version(version),
        |b| body.encode(b, version).map_err(|e| e.to_string()),
    )
    .map_err(|e| tracing::error!(error = %e, "could not encode a SASL response"))
    .ok()
}

/// A token framed as before KIP-152: its size, then its bytes.
fn raw_frame(token: &[u8]) -> BytesMut {
    let mut out = BytesMut::with_capacity(4 + token.len());
    out.extend_from_slice(&(token.len() as u32).to_be_bytes());
    out.extend_from_slice(token);
    out
}
