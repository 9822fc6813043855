//! SASL, the part every mechanism shares.
//!
//! A SASL exchange is a conversation of opaque tokens: the client sends one, the server answers
//! with a challenge, and so on until the server either accepts (naming the user it
//! authenticated) or fails. Kafka carries the tokens in SaslAuthenticate requests (or, for old
//! clients, in raw length-prefixed frames); that framing lives in the network layer. This module
//! is the server's side of the conversation, with no I/O: [`SaslServer::step`] takes one client
//! token and says what to send back.
//!
//! Two kinds of failure exist because Kafka treats them differently (see [`AuthError`]): some
//! messages are safe to show the client, others might reveal whether a user exists and are only
//! logged, the client getting a fixed sentence instead.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use super::credentials::CredentialCache;
use super::delegation_token::DelegationTokenCache;
use super::plain::PlainServer;
use super::scram::ScramServer;

/// A SASL mechanism the broker implements, spelled as in `sasl.enabled.mechanisms` and
/// SaslHandshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Mechanism {
    Plain,
    ScramSha256,
    ScramSha512,
}

impl Mechanism {
    pub const ALL: [Mechanism; 3] = [
        Mechanism::Plain,
        Mechanism::ScramSha256,
        Mechanism::ScramSha512,
    ];

    /// The SCRAM mechanisms, in the order of their KIP-554 ids.
    pub const SCRAM: [Mechanism; 2] = [Mechanism::ScramSha256, Mechanism::ScramSha512];

    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::ScramSha256 => "SCRAM-SHA-256",
            Mechanism::ScramSha512 => "SCRAM-SHA-512",
        }
    }

    /// The mechanism a handshake names. Case-sensitive, as Kafka looks names up in a map:
    /// `plain` is not `PLAIN`.
    pub fn from_name(name: &str) -> Option<Mechanism> {
        Self::ALL.into_iter().find(|m| m.name() == name)
    }

    pub fn is_scram(self) -> bool {
        matches!(self, Mechanism::ScramSha256 | Mechanism::ScramSha512)
    }

    /// The id Alter/DescribeUserScramCredentials carry (KIP-554); `None` for PLAIN, which has no
    /// stored credentials.
    pub fn scram_id(self) -> Option<i8> {
        match self {
            Mechanism::Plain => None,
            Mechanism::ScramSha256 => Some(1),
            Mechanism::ScramSha512 => Some(2),
        }
    }

    /// The SCRAM mechanism with a KIP-554 id; 0 (UNKNOWN) and anything else is `None`.
    pub fn scram_from_id(id: i8) -> Option<Mechanism> {
        Self::SCRAM.into_iter().find(|m| m.scram_id() == Some(id))
    }
}

impl fmt::Display for Mechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why an authentication failed. The variant decides what the client is told.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// Kafka's `SaslAuthenticationException`: the message is written for the client and sent
    /// as the SaslAuthenticate error message (PLAIN's `Authentication failed: Invalid username
    /// or password`).
    #[error("{0}")]
    Authentication(String),
    /// A plain `SaslException`: malformed tokens, unknown SCRAM users, wrong proofs, tokens in
    /// the wrong state. The detail is for the broker's log only; it could tell an attacker
    /// which users exist, so the client gets a fixed sentence (see
    /// [`client_message`](AuthError::client_message)).
    #[error("{0}")]
    Invalid(String),
}

impl AuthError {
    /// The text the SaslAuthenticate response carries for this failure.
    pub fn client_message(&self, mechanism: Mechanism, reauth: bool) -> String {
        match self {
            AuthError::Authentication(message) => message.clone(),
            AuthError::Invalid(_) => format!(
                "Authentication failed during {} due to invalid credentials with SASL mechanism {}",
                if reauth {
                    "re-authentication"
                } else {
                    "authentication"
                },
                mechanism.name()
            ),
        }
    }

    /// The detail, for the log.
    pub fn detail(&self) -> &str {
        match self {
            AuthError::Authentication(message) | AuthError::Invalid(message) => message,
        }
    }
}

/// What the server does after one client token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Send these bytes to the client and wait for its next token.
    Challenge(Vec<u8>),
    /// Authenticated as `user` (the principal is `User:<user>`). `reply` is the last server
    /// token: empty for PLAIN, `v=<signature>` for SCRAM. It is still sent, so the client can
    /// check the server too.
    Done { reply: Vec<u8>, user: String },
}

/// What the server checks passwords against, shared by every connection of a listener.
#[derive(Clone, Default)]
pub struct ServerCredentials {
    /// PLAIN users and passwords: the `user_<name>="<password>"` options of the listener's
    /// `PlainLoginModule` JAAS entry.
    pub plain_users: Arc<BTreeMap<String, String>>,
    /// SCRAM credentials, fed from `/config/users` in ZooKeeper.
    pub scram: Arc<CredentialCache>,
    /// Delegation tokens, which log in over SCRAM with `tokenauth=true`.
    pub tokens: Arc<DelegationTokenCache>,
}

// Hand-written: the derived form would print the PLAIN passwords.
impl fmt::Debug for ServerCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerCredentials")
            .field("plain_users", &self.plain_users.keys().collect::<Vec<_>>())
            .field("scram_users", &self.scram.users())
            .finish()
    }
}

/// The server side of one authentication exchange on one connection.
#[derive(Debug)]
pub enum SaslServer {
    Plain(PlainServer),
    Scram(ScramServer),
}

impl SaslServer {
    pub fn new(mechanism: Mechanism, credentials: &ServerCredentials) -> SaslServer {
        match mechanism {
            Mechanism::Plain => {
                SaslServer::Plain(PlainServer::new(credentials.plain_users.clone()))
            }
            Mechanism::ScramSha256 | Mechanism::ScramSha512 => SaslServer::Scram(
                ScramServer::new(mechanism, credentials.scram.clone())
                    .with_tokens(credentials.tokens.clone()),
            ),
        }
    }

    /// Feeds one client token. After `Done` or after an error the exchange is over, and any
    /// further token is an error too (Kafka's illegal SASL state), reported as
    /// [`AuthError::Invalid`].
    pub fn step(&mut self, token: &[u8]) -> Result<Step, AuthError> {
        match self {
            SaslServer::Plain(server) => server.step(token),
            SaslServer::Scram(server) => server.step(token),
        }
    }

    /// After `Done`: when the delegation token the client logged in with expires (ms since
    /// the epoch); None when it logged in with its own credentials.
    pub fn token_expiry(&self) -> Option<i64> {
        match self {
            SaslServer::Plain(_) => None,
            SaslServer::Scram(server) => server.token_expiry(),
        }
    }

    pub fn mechanism(&self) -> Mechanism {
        match self {
            SaslServer::Plain(_) => Mechanism::Plain,
            SaslServer::Scram(server) => server.mechanism(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::security::plain::client_token;
    use crate::security::scram::{ScramClient, ScramCredential};

    #[test]
    fn mechanism_names_round_trip_and_are_case_sensitive() {
        for m in Mechanism::ALL {
            assert_eq!(Mechanism::from_name(m.name()), Some(m));
            assert_eq!(m.to_string(), m.name());
        }
        assert_eq!(Mechanism::from_name("plain"), None);
        assert_eq!(Mechanism::from_name("scram-sha-256"), None);
        assert_eq!(Mechanism::from_name("GSSAPI"), None);
        assert_eq!(Mechanism::from_name(""), None);
    }

    #[test]
    fn kip554_ids() {
        assert_eq!(Mechanism::scram_from_id(1), Some(Mechanism::ScramSha256));
        assert_eq!(Mechanism::scram_from_id(2), Some(Mechanism::ScramSha512));
        assert_eq!(Mechanism::scram_from_id(0), None);
        assert_eq!(Mechanism::scram_from_id(3), None);
        assert_eq!(Mechanism::scram_from_id(-1), None);
        assert_eq!(Mechanism::Plain.scram_id(), None);
        assert_eq!(Mechanism::ScramSha512.scram_id(), Some(2));
        assert!(!Mechanism::Plain.is_scram());
        assert!(Mechanism::ScramSha256.is_scram());
    }

    #[test]
    fn client_messages_are_kafkas() {
        let auth =
            AuthError::Authentication("Authentication failed: Invalid username or password".into());
        assert_eq!(
            auth.client_message(Mechanism::Plain, false),
            "Authentication failed: Invalid username or password"
        );
        let invalid = AuthError::Invalid("unknown user bob".into());
        assert_eq!(
            invalid.client_message(Mechanism::ScramSha256, false),
            "Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-256"
        );
        assert_eq!(
            invalid.client_message(Mechanism::ScramSha512, true),
            "Authentication failed during re-authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512"
        );
        // The detail stays on the broker.
        assert!(
            !invalid
                .client_message(Mechanism::ScramSha256, false)
                .contains("bob")
        );
        assert_eq!(invalid.detail(), "unknown user bob");
    }

    fn credentials() -> ServerCredentials {
        let mut users = BTreeMap::new();
        users.insert("alice".to_string(), "alice-secret".to_string());
        let cache = CredentialCache::default();
        for m in Mechanism::SCRAM {
            let cred = ScramCredential::with_salt(m, "bob-secret", b"somesalt", 4096).unwrap();
            cache.set("bob", m, Some(cred));
        }
        ServerCredentials {
            plain_users: Arc::new(users),
            scram: Arc::new(cache),
            tokens: Arc::default(),
        }
    }

    #[test]
    fn debug_hides_passwords() {
        let shown = format!("{:?}", credentials());
        assert!(shown.contains("alice") && shown.contains("bob"), "{shown}");
        assert!(!shown.contains("secret"), "{shown}");
    }

    #[test]
    fn dispatches_plain() {
        let creds = credentials();
        let mut server = SaslServer::new(Mechanism::Plain, &creds);
        assert_eq!(server.mechanism(), Mechanism::Plain);
        assert_eq!(
            server.step(&client_token("alice", "alice-secret")),
            Ok(Step::Done {
                reply: Vec::new(),
                user: "alice".into()
            })
        );
        assert!(matches!(
            server.step(b"\0alice\0alice-secret"),
            Err(AuthError::Invalid(_))
        ));
    }

    #[test]
    fn dispatches_scram() {
        let creds = credentials();
        for m in Mechanism::SCRAM {
            let mut server = SaslServer::new(m, &creds);
            assert_eq!(server.mechanism(), m);
            let mut client = ScramClient::new(m, "bob", "bob-secret").unwrap();
            let Ok(Step::Challenge(server_first)) = server.step(&client.first_message()) else {
                panic!("expected a challenge");
            };
            let client_final = client.final_message(&server_first).unwrap();
            let Ok(Step::Done { reply, user }) = server.step(&client_final) else {
                panic!("expected success");
            };
            assert_eq!(user, "bob");
            client.verify_server_final(&reply).unwrap();
            assert!(server.step(&client_final).is_err());
        }
    }
}
