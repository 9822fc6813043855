//! Secured listeners over the wire: TLS (server and client certificates), SASL PLAIN and
//! SCRAM, and what a client that gets it wrong sees. Brokers run in this process; the clients
//! are odradek's own inter-broker client (the same code a broker uses to reach another) and raw
//! frames for the malformed cases. Real Kafka clients over the same listeners are in
//! `compat-tests` and `compat::`.

mod acl_matrix;
pub(crate) mod acls;
mod listeners;
pub(crate) mod pki;
pub(crate) mod scram;

use std::sync::Arc;
use std::time::Duration;

use odradek::client::{ClientId, Connection, SaslCredentials, Security};
use odradek::security::sasl::Mechanism;
use odradek::security::tls::{StoreType, TlsSettings};

pub use pki::Pki;

/// PLAIN users of the test listeners, as a Kafka `server.properties` declares them.
pub const PLAIN_JAAS: &str = r#"org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="admin-secret" user_admin="admin-secret" user_alice="alice-secret";"#;
pub const SCRAM_JAAS: &str = "org.apache.kafka.common.security.scram.ScramLoginModule required;";

/// A TLS client config trusting `pki`'s CA, with `cert` as the client certificate.
pub fn tls_client(pki: &Pki, cert: Option<&pki::Pem>) -> Arc<rustls::ClientConfig> {
    let settings = TlsSettings {
        truststore_type: StoreType::Pem,
        truststore_certificates: Some(pki.ca.cert.clone()),
        keystore_type: StoreType::Pem,
        keystore_certificate_chain: cert.map(|c| c.cert.clone()),
        keystore_key: cert.map(|c| c.key.clone()),
        ..TlsSettings::default()
    };
    settings.client_config().unwrap()
}

pub fn login(mechanism: Mechanism, user: &str, password: &str) -> Option<SaslCredentials> {
    Some(SaslCredentials {
        mechanism,
        username: user.into(),
        password: password.into(),
        token_auth: false,
    })
}

/// Our own client's connection, within a bound.
pub async fn connect(port: u16, security: Security) -> odradek::client::Result<Connection> {
    tokio::time::timeout(
        Duration::from_secs(20),
        Connection::open_secured(&format!("localhost:{port}"), &ClientId::tools(), &security),
    )
    .await
    .expect("connecting took longer than 20 s")
}
