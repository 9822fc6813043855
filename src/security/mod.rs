//! Authentication: TLS (rustls) and SASL (PLAIN, SCRAM-SHA-256/512), the principals they yield,
//! and SCRAM credentials in Kafka's ZooKeeper format.
//!
//! Below `client` and above the leaves: the broker's listeners (`network`) use the server side,
//! its own connections to other brokers (`client`) the client side, and `config` reads its
//! settings into the types defined here. Nothing here knows Kafka requests or znodes: the
//! callers frame tokens into SaslHandshake/SaslAuthenticate and read `/config/users`.

pub mod acl;
pub mod credentials;
pub mod delegation_token;
pub mod jaas;
pub mod plain;
pub mod principal;
pub mod sanitize;
pub mod sasl;
pub mod scram;
pub mod tls;

use std::fmt;

/// Who a connection is, as Kafka's `KafkaPrincipal` (`User:alice`). ACLs and quotas key on it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KafkaPrincipal {
    /// `User` for every principal the default builder makes.
    pub principal_type: String,
    pub name: String,
}

impl KafkaPrincipal {
    pub fn user(name: impl Into<String>) -> Self {
        KafkaPrincipal {
            principal_type: "User".into(),
            name: name.into(),
        }
    }

    /// `User:ANONYMOUS`: PLAINTEXT connections and TLS ones without a client certificate.
    pub fn anonymous() -> Self {
        Self::user("ANONYMOUS")
    }

    /// `Type:name` as Kafka's `SecurityUtils.parseKafkaPrincipal` reads it: split at the first
    /// ':', neither part empty.
    pub fn parse(text: &str) -> Option<Self> {
        let (principal_type, name) = text.split_once(':')?;
        (!principal_type.is_empty() && !name.is_empty()).then(|| KafkaPrincipal {
            principal_type: principal_type.to_string(),
            name: name.to_string(),
        })
    }
}

impl fmt::Display for KafkaPrincipal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.principal_type, self.name)
    }
}

/// A listener's security protocol (`listener.security.protocol.map`), with Kafka's wire ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SecurityProtocol {
    Plaintext,
    Ssl,
    SaslPlaintext,
    SaslSsl,
}

impl SecurityProtocol {
    pub const ALL: [SecurityProtocol; 4] = [
        SecurityProtocol::Plaintext,
        SecurityProtocol::Ssl,
        SecurityProtocol::SaslPlaintext,
        SecurityProtocol::SaslSsl,
    ];

    pub fn name(self) -> &'static str {
        match self {
            SecurityProtocol::Plaintext => "PLAINTEXT",
            SecurityProtocol::Ssl => "SSL",
            SecurityProtocol::SaslPlaintext => "SASL_PLAINTEXT",
            SecurityProtocol::SaslSsl => "SASL_SSL",
        }
    }

    /// The id UpdateMetadata carries for an endpoint (Kafka's `SecurityProtocol.id`).
    pub fn id(self) -> i16 {
        match self {
            SecurityProtocol::Plaintext => 0,
            SecurityProtocol::Ssl => 1,
            SecurityProtocol::SaslPlaintext => 2,
            SecurityProtocol::SaslSsl => 3,
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(name))
    }

    pub fn from_id(id: i16) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.id() == id)
    }

    pub fn uses_tls(self) -> bool {
        matches!(self, SecurityProtocol::Ssl | SecurityProtocol::SaslSsl)
    }

    pub fn uses_sasl(self) -> bool {
        matches!(
            self,
            SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl
        )
    }
}

impl fmt::Display for SecurityProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
