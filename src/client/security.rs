//! The client side of a secured listener: TLS to the broker, then a SASL login (PLAIN or
//! SCRAM) in SaslHandshake v1 and SaslAuthenticate requests, as Kafka's
//! `SaslClientAuthenticator` does it for inter-broker connections.

use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::messages::{
    ApiKey, RequestKind, ResponseKind, SaslAuthenticateRequest, SaslHandshakeRequest,
};
use kafka_protocol::protocol::StrBytes;
use tokio::net::TcpStream;

use super::connection::Connection;
use super::{ClientError, Result, error_name};
use crate::security::plain;
use crate::security::sasl::Mechanism;
use crate::security::scram::ScramClient;

/// How to reach a listener: plaintext by default.
#[derive(Clone, Default)]
pub struct Security {
    pub tls: Option<Arc<rustls::ClientConfig>>,
    pub sasl: Option<SaslCredentials>,
}

/// A SASL login: the mechanism, and the user and password to log in with.
#[derive(Clone, PartialEq, Eq)]
pub struct SaslCredentials {
    pub mechanism: Mechanism,
    pub username: String,
    pub password: String,
    /// SCRAM with a delegation token (the `tokenauth=true` extension): the username is the
    /// token id, the password its HMAC in Base64.
    pub token_auth: bool,
}

/// The password stays out of logs and panics that print a config.
impl std::fmt::Debug for SaslCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SaslCredentials")
            .field("mechanism", &self.mechanism)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// The TLS handshake with the broker at `addr`, checking its certificate against the host.
pub(super) async fn tls_connect(
    addr: &str,
    config: &Arc<rustls::ClientConfig>,
    stream: TcpStream,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let protocol = |reason: String| ClientError::Protocol {
        addr: addr.to_string(),
        reason,
    };
    let host = match addr.rsplit_once(':') {
        Some((host, _)) => host.trim_start_matches('[').trim_end_matches(']'),
        None => addr,
    };
    let name = rustls::pki_types::ServerName::try_from(host.to_string())
        .map_err(|e| protocol(format!("{host} is not a TLS server name: {e}")))?;
    tokio_rustls::TlsConnector::from(config.clone())
        .connect(name, stream)
        .await
        .map_err(|source| ClientError::Io {
            addr: addr.to_string(),
            source,
        })
}

/// Logs in on a connection whose versions are known: SaslHandshake v1, then SaslAuthenticate
/// rounds until the mechanism is done. Returns the session's lifetime in ms (0: unlimited).
pub(super) async fn login(conn: &mut Connection, sasl: &SaslCredentials) -> Result<i64> {
    let addr = conn.addr().to_string();
    let failed = |reason: String| ClientError::Protocol {
        addr: addr.clone(),
        reason,
    };
    let refused = |reason: String| ClientError::Authentication {
        addr: addr.clone(),
        reason,
    };
    let mut handshake = SaslHandshakeRequest::default();
    handshake.mechanism = StrBytes::from_static_str(sasl.mechanism.name());
    match conn
        .send(
            ApiKey::SaslHandshake,
            1,
            RequestKind::SaslHandshake(handshake),
        )
        .await?
    {
        ResponseKind::SaslHandshake(r) if r.error_code == 0 => {}
        ResponseKind::SaslHandshake(r) => {
            return Err(refused(format!(
                "SASL mechanism {} refused ({}); the broker offers {:?}",
                sasl.mechanism,
                error_name(r.error_code),
                r.mechanisms
            )));
        }
        _ => return Err(failed("no SaslHandshake response".into())),
    }
    let version = conn.version(ApiKey::SaslAuthenticate)?.min(2);
    let mut lifetime_ms = 0;
    let mut round = async |token: Vec<u8>| -> Result<Vec<u8>> {
        let mut request = SaslAuthenticateRequest::default();
        request.auth_bytes = Bytes::from(token);
        match conn
            .send(
                ApiKey::SaslAuthenticate,
                version,
                RequestKind::SaslAuthenticate(request),
            )
            .await?
        {
            ResponseKind::SaslAuthenticate(r) if r.error_code == 0 => {
                lifetime_ms = r.session_lifetime_ms;
                Ok(r.auth_bytes.to_vec())
            }
            ResponseKind::SaslAuthenticate(r) => Err(refused(format!(
                "SASL login as {} with {} refused: {} {}",
                sasl.username,
                sasl.mechanism,
                error_name(r.error_code),
                r.error_message.as_deref().unwrap_or("")
            ))),
            _ => Err(failed("no SaslAuthenticate response".into())),
        }
    };
    match sasl.mechanism {
        Mechanism::Plain => {
            round(plain::client_token(&sasl.username, &sasl.password)).await?;
        }
        Mechanism::ScramSha256 | Mechanism::ScramSha512 => {
            let mut scram = ScramClient::new(sasl.mechanism, &sasl.username, &sasl.password)
                .map_err(|e| failed(e.to_string()))?
                .with_token_auth(sasl.token_auth);
            let server_first = round(scram.first_message()).await?;
            let client_final = scram
                .final_message(&server_first)
                .map_err(|e| failed(e.to_string()))?;
            let server_final = round(client_final).await?;
            scram
                .verify_server_final(&server_final)
                .map_err(|e| failed(format!("the broker's SCRAM signature: {e}")))?;
        }
    }
    Ok(lifetime_ms)
}
