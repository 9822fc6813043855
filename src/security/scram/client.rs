//! The client side of a SCRAM exchange (Kafka's `ScramSaslClient`), for the broker's own
//! connections to other brokers and for the tools.

use super::messages::*;
use super::*;

// ---------------------------------------------------------------------------------------------
// Client

pub(super) enum ClientState {
    ClientFirstSent,
    ClientFinalSent {
        salted_password: Vec<u8>,
        auth_message: Vec<u8>,
    },
    Complete,
    Failed,
}

/// Salted passwords this process has derived, by mechanism, password, salt and iterations.
pub(super) type SaltedCache = std::collections::HashMap<(Mechanism, String, Vec<u8>, u32), Vec<u8>>;

/// Entries kept before the cache starts over: a broker logs in as one user per listener, a
/// tool as one; the bound only stops an odd peer offering endless salts from growing it.
pub(super) const SALTED_CACHE_ENTRIES: usize = 64;

/// Hi(password, salt, i), from the cache when this process derived it before. RFC 5802 lets a
/// client keep it (§5.1): a broker reconnecting or re-authenticating to another, or a tool
/// opening many connections, would otherwise pay thousands of HMACs every time.
pub(super) fn cached_salted_password(
    mechanism: Mechanism,
    hash: Hash,
    password: &str,
    salt: &[u8],
    iterations: u32,
) -> Vec<u8> {
    static CACHE: std::sync::OnceLock<std::sync::Mutex<SaltedCache>> = std::sync::OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let key = (mechanism, password.to_string(), salt.to_vec(), iterations);
    if let Some(found) = cache.lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
        return found.clone();
    }
    // Derived outside the lock: it is the slow part.
    let salted = hash.salted_password(password.as_bytes(), salt, iterations);
    let mut entries = cache.lock().unwrap_or_else(|p| p.into_inner());
    if entries.len() >= SALTED_CACHE_ENTRIES {
        entries.clear();
    }
    entries.insert(key, salted.clone());
    salted
}

/// The client side of a SCRAM exchange, for the broker's own connections to other brokers:
/// send [`first_message`](ScramClient::first_message), answer the server's challenge with
/// [`final_message`](ScramClient::final_message), then check the server's last token with
/// [`verify_server_final`](ScramClient::verify_server_final).
pub struct ScramClient {
    pub(super) mechanism: Mechanism,
    pub(super) hash: Hash,
    pub(super) user: String,
    pub(super) password: String,
    pub(super) nonce: String,
    pub(super) state: ClientState,
    /// Sends the `tokenauth=true` extension: the user is a delegation token id.
    pub(super) token_auth: bool,
}

impl fmt::Debug for ScramClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScramClient")
            .field("mechanism", &self.mechanism)
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

impl ScramClient {
    /// Fails only for a non-SCRAM mechanism or when the system has no randomness for the nonce.
    pub fn new(mechanism: Mechanism, user: &str, password: &str) -> Result<ScramClient, AuthError> {
        let hash = Hash::of_scram(mechanism).map_err(AuthError::Invalid)?;
        Ok(ScramClient {
            mechanism,
            hash,
            user: user.to_string(),
            password: password.to_string(),
            nonce: secure_random_string().map_err(AuthError::Invalid)?,
            state: ClientState::ClientFirstSent,
            token_auth: false,
        })
    }

    /// Logs in with a delegation token (`token_auth`): the user is the token id and the
    /// password the Base64 of its HMAC; client-first carries `tokenauth=true`.
    pub fn with_token_auth(mut self, token_auth: bool) -> ScramClient {
        self.token_auth = token_auth;
        self
    }

    #[cfg(test)]
    pub(super) fn with_nonce(mut self, nonce: &str) -> ScramClient {
        self.nonce = nonce.to_string();
        self
    }

    pub fn mechanism(&self) -> Mechanism {
        self.mechanism
    }

    pub(super) fn client_first_bare(&self) -> String {
        // Extensions follow the nonce, as Kafka's client appends them.
        let extensions = if self.token_auth {
            ",tokenauth=true"
        } else {
            ""
        };
        format!("n={},r={}{extensions}", to_saslname(&self.user), self.nonce)
    }

    /// client-first: `n,,n=<user>,r=<nonce>[,tokenauth=true]`, no authorization id, as Kafka's
    /// client sends it.
    pub fn first_message(&self) -> Vec<u8> {
        format!("n,,{}", self.client_first_bare()).into_bytes()
    }

    /// Answers server-first with client-final. Runs PBKDF2, so it costs as many HMACs as the
    /// server asks iterations (bounded by [`MAX_CLIENT_ITERATIONS`]).
    pub fn final_message(&mut self, server_first: &[u8]) -> Result<Vec<u8>, AuthError> {
        if !matches!(self.state, ClientState::ClientFirstSent) {
            self.state = ClientState::Failed;
            return Err(AuthError::Invalid(
                "Unexpected SCRAM server-first message".into(),
            ));
        }
        self.state = ClientState::Failed;
        let (nonce, salt, iterations) = parse_server_first(server_first)?;
        if !nonce.starts_with(&self.nonce) {
            return Err(AuthError::Invalid(
                "Invalid server nonce: does not start with client nonce".into(),
            ));
        }
        if iterations < MIN_ITERATIONS {
            return Err(AuthError::Invalid(format!(
                "Requested iterations {iterations} is less than the minimum {MIN_ITERATIONS} for {}",
                self.mechanism
            )));
        }
        if iterations > MAX_CLIENT_ITERATIONS {
            return Err(AuthError::Invalid(format!(
                "Requested iterations {iterations} is more than the maximum {MAX_CLIENT_ITERATIONS} for {}",
                self.mechanism
            )));
        }
        let hash = self.hash;
        let salted_password =
            cached_salted_password(self.mechanism, hash, &self.password, &salt, iterations);
        // `biws` is Base64 of the gs2 header `n,,`: no channel binding.
        let without_proof = format!("c=biws,r={nonce}");
        let server_first_text = message_text(server_first).unwrap_or_default();
        let auth = auth_message(&self.client_first_bare(), server_first_text, &without_proof);
        let client_key = hash.hmac(&salted_password, b"Client Key");
        let client_signature = hash.hmac(&hash.digest(&client_key), &auth);
        let proof = xor(&client_key, &client_signature);
        self.state = ClientState::ClientFinalSent {
            salted_password,
            auth_message: auth,
        };
        Ok(format!("{without_proof},p={}", STANDARD.encode(proof)).into_bytes())
    }

    /// Checks server-final: `v=<signature>` proves the server holds our credential.
    pub fn verify_server_final(&mut self, server_final: &[u8]) -> Result<(), AuthError> {
        let state = std::mem::replace(&mut self.state, ClientState::Failed);
        let ClientState::ClientFinalSent {
            salted_password,
            auth_message,
        } = state
        else {
            return Err(AuthError::Invalid(
                "Unexpected SCRAM server-final message".into(),
            ));
        };
        let signature = parse_server_final(server_final, self.mechanism)?;
        let server_key = self.hash.hmac(&salted_password, b"Server Key");
        let expected = self.hash.hmac(&server_key, &auth_message);
        if !constant_time_eq(&signature, &expected) {
            return Err(AuthError::Invalid(
                "Invalid server signature in server final message".into(),
            ));
        }
        self.state = ClientState::Complete;
        Ok(())
    }

    /// Whether the server's final message has been verified.
    pub fn is_complete(&self) -> bool {
        matches!(self.state, ClientState::Complete)
    }
}

/// `[m=<reserved>,]r=<nonce>,s=<b64 salt>,i=<iterations>[,<ext>=<value>]...`
pub(super) fn parse_server_first(token: &[u8]) -> Result<(&str, Vec<u8>, u32), AuthError> {
    let bad = |why: &str| AuthError::Invalid(format!("Invalid SCRAM server first message: {why}"));
    let text = message_text(token).ok_or_else(|| bad("not ASCII"))?;
    let mut fields: Vec<&str> = text.split(',').collect();
    if fields
        .first()
        .and_then(|f| attribute(f, 'm'))
        .is_some_and(|m| !m.is_empty())
    {
        fields.remove(0);
    }
    let [nonce, salt, iterations, extensions @ ..] = fields.as_slice() else {
        return Err(bad("missing attributes"));
    };
    let nonce = attribute(nonce, 'r')
        .filter(|n| is_nonce(n))
        .ok_or_else(|| bad("bad nonce"))?;
    let salt = attribute(salt, 's')
        .and_then(parse_base64)
        .ok_or_else(|| bad("bad salt"))?;
    let iterations = attribute(iterations, 'i')
        .filter(|i| !i.is_empty() && i.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|i| i.parse::<u32>().ok())
        .ok_or_else(|| bad("bad iteration count"))?;
    parse_extensions(extensions).ok_or_else(|| bad("bad extensions"))?;
    Ok((nonce, salt, iterations))
}

/// `e=<error>` or `v=<b64 signature>[,<ext>=<value>]...`; returns the signature.
pub(super) fn parse_server_final(token: &[u8], mechanism: Mechanism) -> Result<Vec<u8>, AuthError> {
    let bad = |why: &str| AuthError::Invalid(format!("Invalid SCRAM server final message: {why}"));
    let text = message_text(token).ok_or_else(|| bad("not ASCII"))?;
    if let Some(error) = text.strip_prefix("e=") {
        return Err(AuthError::Invalid(format!(
            "Sasl authentication using {mechanism} failed with error: {error}"
        )));
    }
    let fields: Vec<&str> = text.split(',').collect();
    let [signature, extensions @ ..] = fields.as_slice() else {
        return Err(bad("empty"));
    };
    parse_extensions(extensions).ok_or_else(|| bad("bad extensions"))?;
    attribute(signature, 'v')
        .and_then(parse_base64)
        .ok_or_else(|| bad("bad signature"))
}
