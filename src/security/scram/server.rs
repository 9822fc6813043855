//! The server side of a SCRAM exchange (Kafka's `ScramSaslServer`).

use super::messages::*;
use super::*;

// ---------------------------------------------------------------------------------------------
// Server

/// What the server remembers between server-first and client-final.
pub(super) struct Exchange {
    pub(super) user: String,
    pub(super) credential: ScramCredential,
    pub(super) client_first_bare: String,
    pub(super) server_first: String,
    /// Client nonce followed by server nonce.
    pub(super) nonce: String,
    /// The expiry of the delegation token logging in, if it is one.
    pub(super) token_expiry: Option<i64>,
}

pub(super) enum ServerState {
    ClientFirst,
    ClientFinal(Box<Exchange>),
    Complete,
    Failed,
}

impl ServerState {
    pub(super) fn name(&self) -> &'static str {
        match self {
            ServerState::ClientFirst => "RECEIVE_CLIENT_FIRST_MESSAGE",
            ServerState::ClientFinal(_) => "RECEIVE_CLIENT_FINAL_MESSAGE",
            ServerState::Complete => "COMPLETE",
            ServerState::Failed => "FAILED",
        }
    }
}

/// The server side of one SCRAM exchange: client-first -> server-first -> client-final ->
/// server-final.
pub struct ScramServer {
    pub(super) mechanism: Mechanism,
    pub(super) credentials: Arc<CredentialCache>,
    /// Delegation tokens, for client-first messages with `tokenauth=true`; None: such logins
    /// fail as for an unknown token.
    pub(super) tokens: Option<Arc<DelegationTokenCache>>,
    /// When the token this exchange authenticated with expires (ms since the epoch); None for
    /// a user's own credential.
    pub(super) token_expiry: Option<i64>,
    pub(super) state: ServerState,
    /// Tests fix the server nonce to replay RFC 7677's example.
    pub(super) fixed_nonce: Option<String>,
}

impl fmt::Debug for ScramServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScramServer")
            .field("mechanism", &self.mechanism)
            .field("state", &self.state.name())
            .finish_non_exhaustive()
    }
}

impl ScramServer {
    /// A server for `mechanism`, which should be a SCRAM one: given PLAIN, every step fails.
    pub fn new(mechanism: Mechanism, credentials: Arc<CredentialCache>) -> ScramServer {
        ScramServer {
            mechanism,
            credentials,
            tokens: None,
            token_expiry: None,
            state: ServerState::ClientFirst,
            fixed_nonce: None,
        }
    }

    /// Lets clients log in with the delegation tokens of `tokens` (`tokenauth=true`).
    pub fn with_tokens(mut self, tokens: Arc<DelegationTokenCache>) -> ScramServer {
        self.tokens = Some(tokens);
        self
    }

    /// After a successful exchange with a delegation token: when the token expires (ms since
    /// the epoch), which ends the session (Kafka's `CREDENTIAL_LIFETIME_MS` negotiated
    /// property). None for a user's own credential.
    pub fn token_expiry(&self) -> Option<i64> {
        match self.state {
            ServerState::Complete => self.token_expiry,
            _ => None,
        }
    }

    #[cfg(test)]
    pub(super) fn with_server_nonce(mut self, nonce: &str) -> ScramServer {
        self.fixed_nonce = Some(nonce.to_string());
        self
    }

    pub fn mechanism(&self) -> Mechanism {
        self.mechanism
    }

    /// Feeds one client token: client-first gets a challenge (server-first), client-final gets
    /// `Done` with server-final. Any failure ends the exchange.
    pub fn step(&mut self, token: &[u8]) -> Result<Step, AuthError> {
        // Failed unless a branch below says otherwise: an error anywhere ends the exchange.
        let state = std::mem::replace(&mut self.state, ServerState::Failed);
        let hash = Hash::of_scram(self.mechanism).map_err(AuthError::Invalid)?;
        match state {
            ServerState::ClientFirst => {
                let exchange = self.receive_client_first(token)?;
                self.token_expiry = exchange.token_expiry;
                let challenge = exchange.server_first.clone().into_bytes();
                self.state = ServerState::ClientFinal(exchange);
                Ok(Step::Challenge(challenge))
            }
            ServerState::ClientFinal(exchange) => {
                let reply = receive_client_final(hash, &exchange, token)?;
                self.state = ServerState::Complete;
                Ok(Step::Done {
                    reply,
                    user: exchange.user,
                })
            }
            ServerState::Complete | ServerState::Failed => Err(AuthError::Invalid(format!(
                "Unexpected SCRAM token in state {}",
                state.name()
            ))),
        }
    }

    pub(super) fn receive_client_first(&self, token: &[u8]) -> Result<Box<Exchange>, AuthError> {
        let message = ClientFirst::parse(token)?;
        let (credential, user, token_expiry) = if message.token_auth {
            // The user name is the token id; the exchange authenticates the token's owner
            // (Kafka's ScramServerCallbackHandler with a DelegationTokenCredentialCallback).
            let invalid_token = || {
                AuthError::Invalid(format!(
                    "Token Authentication failed: Invalid tokenId : {}",
                    message.user
                ))
            };
            let login = self
                .tokens
                .as_ref()
                .and_then(|t| t.login(&message.user, self.mechanism))
                .ok_or_else(invalid_token)?;
            // Kafka relies on its expiry task to remove the token; refusing it here as well
            // leaves no window between its expiry and the next pass of that task.
            if login.expiry_timestamp < now_ms() {
                return Err(AuthError::Invalid(format!(
                    "Token Authentication failed: token {} has expired",
                    message.user
                )));
            }
            (
                login.credential,
                login.owner.name,
                Some(login.expiry_timestamp),
            )
        } else {
            // An unknown user fails here, at the first message, as in Kafka (no fake salt).
            let credential = self
                .credentials
                .get(&message.user, self.mechanism)
                .ok_or_else(|| {
                    AuthError::Invalid("Authentication failed: Invalid user credentials".into())
                })?;
            (credential, message.user.clone(), None)
        };
        // Compared unescaped, as RFC 5802 means it. Kafka compares the authzid still escaped,
        // which differs only for names containing ',' or '=' (Kafka then refuses any authzid).
        if message.authzid.as_ref().is_some_and(|a| *a != message.user) {
            return Err(AuthError::Authentication(
                "Authentication failed: Client requested an authorization id that is different from username"
                    .into(),
            ));
        }
        if credential.iterations < MIN_ITERATIONS {
            return Err(AuthError::Invalid(format!(
                "Iterations {} is less than the minimum {MIN_ITERATIONS} for {}",
                credential.iterations, self.mechanism
            )));
        }
        let server_nonce = match &self.fixed_nonce {
            Some(nonce) => nonce.clone(),
            None => secure_random_string().map_err(AuthError::Invalid)?,
        };
        let nonce = format!("{}{server_nonce}", message.nonce);
        let server_first = format!(
            "r={nonce},s={},i={}",
            STANDARD.encode(&credential.salt),
            credential.iterations
        );
        Ok(Box::new(Exchange {
            user,
            credential,
            token_expiry,
            client_first_bare: message.bare.to_string(),
            server_first,
            nonce,
        }))
    }
}

/// Checks the client's proof and returns server-final.
pub(super) fn receive_client_final(
    hash: Hash,
    exchange: &Exchange,
    token: &[u8],
) -> Result<Vec<u8>, AuthError> {
    let message = ClientFinal::parse(token)?;
    if !message.nonce.ends_with(&exchange.nonce) {
        return Err(AuthError::Invalid(
            "Invalid client nonce in the final client message.".into(),
        ));
    }
    let auth = auth_message(
        &exchange.client_first_bare,
        &exchange.server_first,
        message.without_proof,
    );
    let credential = &exchange.credential;
    let client_signature = hash.hmac(&credential.stored_key, &auth);
    let stored_key_matches = message.proof.len() == client_signature.len() && {
        let client_key = xor(&client_signature, &message.proof);
        constant_time_eq(&hash.digest(&client_key), &credential.stored_key)
    };
    if !stored_key_matches {
        return Err(AuthError::Invalid("Invalid client credentials".into()));
    }
    let server_signature = hash.hmac(&credential.server_key, &auth);
    Ok(format!("v={}", STANDARD.encode(server_signature)).into_bytes())
}
