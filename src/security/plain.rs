//! SASL/PLAIN (RFC 4616): the client sends its name and password in one token, in the clear.
//!
//! The token is `authzid NUL authcid NUL password`: the identity to act as (usually empty,
//! meaning "myself"), the user name and the password. One token, one answer: the exchange
//! either ends at once with an empty reply or fails. PLAIN is only as safe as the channel under
//! it, which is why it is normally used over TLS (SASL_SSL).
//!
//! The broker's users and passwords come from the `user_<name>="<password>"` options of the
//! listener's JAAS entry, as in Kafka's `PlainServerCallbackHandler`. Every failure is an
//! [`AuthError::Authentication`], whose message the client sees; Kafka words an unknown user and
//! a wrong password identically so the answer does not tell which users exist.

use std::collections::BTreeMap;
use std::sync::Arc;

use subtle::ConstantTimeEq;

use super::sasl::{AuthError, Step};

const INVALID_CREDENTIALS: &str = "Authentication failed: Invalid username or password";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Waiting,
    Complete,
    Failed,
}

/// The server side of one PLAIN exchange.
pub struct PlainServer {
    users: Arc<BTreeMap<String, String>>,
    state: State,
}

// Hand-written so that the password table never reaches a log.
impl std::fmt::Debug for PlainServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlainServer")
            .field("users", &self.users.len())
            .field("state", &self.state)
            .finish()
    }
}

impl PlainServer {
    pub fn new(users: Arc<BTreeMap<String, String>>) -> PlainServer {
        PlainServer {
            users,
            state: State::Waiting,
        }
    }

    /// Checks the client's one token. A second token, after success or failure, is an error.
    pub fn step(&mut self, token: &[u8]) -> Result<Step, AuthError> {
        if self.state != State::Waiting {
            return Err(AuthError::Invalid(format!(
                "Unexpected SASL/PLAIN token in state {:?}",
                self.state
            )));
        }
        let result = self.authenticate(token);
        self.state = if result.is_ok() {
            State::Complete
        } else {
            State::Failed
        };
        result
    }

    fn authenticate(&self, token: &[u8]) -> Result<Step, AuthError> {
        // Kafka decodes with Java's lenient UTF-8 decoder (bad bytes become U+FFFD) and so do
        // we: a malformed name or password then simply fails to match, with the same message.
        let text = String::from_utf8_lossy(token);
        let fields: Vec<&str> = text.split('\0').collect();
        let [authzid, username, password] = fields[..] else {
            // Kafka counts at most four fields ("got 4" for anything longer).
            return Err(AuthError::Authentication(format!(
                "Invalid SASL/PLAIN response: expected 3 tokens, got {}",
                fields.len().min(4)
            )));
        };
        if username.is_empty() {
            return Err(AuthError::Authentication(
                "Authentication failed: username not specified".into(),
            ));
        }
        if password.is_empty() {
            return Err(AuthError::Authentication(
                "Authentication failed: password not specified".into(),
            ));
        }
        let matches = self
            .users
            .get(username)
            .is_some_and(|expected| bool::from(expected.as_bytes().ct_eq(password.as_bytes())));
        if !matches {
            return Err(AuthError::Authentication(INVALID_CREDENTIALS.into()));
        }
        // Checked only after the password, as Kafka does, so that a stranger learns nothing
        // from it.
        if !authzid.is_empty() && authzid != username {
            return Err(AuthError::Authentication(
                "Authentication failed: Client requested an authorization id that is different from username"
                    .into(),
            ));
        }
        Ok(Step::Done {
            reply: Vec::new(),
            user: username.to_string(),
        })
    }
}

/// The token a client sends: no authorization id, then user and password.
pub fn client_token(user: &str, password: &str) -> Vec<u8> {
    let mut token = Vec::with_capacity(user.len() + password.len() + 2);
    token.push(0);
    token.extend_from_slice(user.as_bytes());
    token.push(0);
    token.extend_from_slice(password.as_bytes());
    token
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server() -> PlainServer {
        let mut users = BTreeMap::new();
        users.insert("admin".to_string(), "admin-secret".to_string());
        users.insert("alice".to_string(), "alice-secret".to_string());
        users.insert("émile".to_string(), "pässwörd".to_string());
        PlainServer::new(Arc::new(users))
    }

    fn auth_err(message: &str) -> Result<Step, AuthError> {
        Err(AuthError::Authentication(message.to_string()))
    }

    fn done(user: &str) -> Result<Step, AuthError> {
        Ok(Step::Done {
            reply: Vec::new(),
            user: user.to_string(),
        })
    }

    #[test]
    fn accepts_a_known_user() {
        assert_eq!(
            server().step(&client_token("alice", "alice-secret")),
            done("alice")
        );
        assert_eq!(
            server().step(&client_token("émile", "pässwörd")),
            done("émile")
        );
        assert_eq!(server().step(b"alice\0alice\0alice-secret"), done("alice"));
    }

    #[test]
    fn client_token_layout() {
        assert_eq!(client_token("u", "p"), b"\0u\0p".to_vec());
    }

    #[test]
    fn wrong_password_and_unknown_user_look_the_same() {
        let wrong = server().step(&client_token("alice", "nope"));
        let unknown = server().step(&client_token("mallory", "alice-secret"));
        assert_eq!(wrong, auth_err(INVALID_CREDENTIALS));
        assert_eq!(unknown, wrong);
        // A prefix of the right password is still wrong.
        assert_eq!(
            server().step(&client_token("alice", "alice-secre")),
            auth_err(INVALID_CREDENTIALS)
        );
        // Names are case-sensitive.
        assert_eq!(
            server().step(&client_token("Alice", "alice-secret")),
            auth_err(INVALID_CREDENTIALS)
        );
    }

    #[test]
    fn empty_fields() {
        assert_eq!(
            server().step(b"\0\0alice-secret"),
            auth_err("Authentication failed: username not specified")
        );
        assert_eq!(
            server().step(b"\0alice\0"),
            auth_err("Authentication failed: password not specified")
        );
        assert_eq!(
            server().step(b"\0\0"),
            auth_err("Authentication failed: username not specified")
        );
    }

    #[test]
    fn field_count() {
        assert_eq!(
            server().step(b""),
            auth_err("Invalid SASL/PLAIN response: expected 3 tokens, got 1")
        );
        assert_eq!(
            server().step(b"alice"),
            auth_err("Invalid SASL/PLAIN response: expected 3 tokens, got 1")
        );
        assert_eq!(
            server().step(b"\0alice"),
            auth_err("Invalid SASL/PLAIN response: expected 3 tokens, got 2")
        );
        assert_eq!(
            server().step(b"\0alice\0alice-secret\0"),
            auth_err("Invalid SASL/PLAIN response: expected 3 tokens, got 4")
        );
        assert_eq!(
            server().step(b"\0\0\0\0\0\0"),
            auth_err("Invalid SASL/PLAIN response: expected 3 tokens, got 4")
        );
    }

    #[test]
    fn authorization_id_must_be_the_user() {
        assert_eq!(
            server().step(b"admin\0alice\0alice-secret"),
            auth_err(
                "Authentication failed: Client requested an authorization id that is different from username"
            )
        );
        // With a wrong password the authzid is not even looked at.
        assert_eq!(
            server().step(b"admin\0alice\0wrong"),
            auth_err(INVALID_CREDENTIALS)
        );
    }

    #[test]
    fn non_utf8_and_huge_tokens_fail_cleanly() {
        assert_eq!(
            server().step(b"\0al\xffice\0alice-secret"),
            auth_err(INVALID_CREDENTIALS)
        );
        assert_eq!(
            server().step(b"\0alice\0alice-secret\xc3"),
            auth_err(INVALID_CREDENTIALS)
        );
        let mut huge = client_token("alice", "alice-secret");
        huge.extend(std::iter::repeat_n(b'x', 1 << 20));
        assert_eq!(server().step(&huge), auth_err(INVALID_CREDENTIALS));
    }

    #[test]
    fn one_token_only() {
        let mut s = server();
        assert_eq!(
            s.step(&client_token("alice", "alice-secret")),
            done("alice")
        );
        assert!(matches!(
            s.step(&client_token("alice", "alice-secret")),
            Err(AuthError::Invalid(_))
        ));

        let mut s = server();
        assert!(s.step(&client_token("alice", "bad")).is_err());
        assert!(matches!(
            s.step(&client_token("alice", "alice-secret")),
            Err(AuthError::Invalid(_))
        ));
    }

    #[test]
    fn debug_hides_passwords() {
        assert!(!format!("{:?}", server()).contains("secret"));
    }
}
