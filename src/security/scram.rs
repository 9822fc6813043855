//! SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802, RFC 7677), as Kafka implements them.
//!
//! SCRAM proves that both ends know a password without sending it. The server never stores the
//! password either, only what it needs to check a proof:
//!
//! ```text
//! SaltedPassword = PBKDF2-HMAC-H(password, salt, iterations)      (RFC 5802's Hi)
//! ClientKey      = HMAC(SaltedPassword, "Client Key")
//! StoredKey      = H(ClientKey)                                   stored
//! ServerKey      = HMAC(SaltedPassword, "Server Key")             stored
//! ```
//!
//! Four messages go back and forth:
//!
//! ```text
//! C: client-first   n,,n=<user>,r=<client nonce>
//! S: server-first   r=<client nonce><server nonce>,s=<base64 salt>,i=<iterations>
//! C: client-final   c=biws,r=<both nonces>,p=<base64 ClientProof>
//! S: server-final   v=<base64 ServerSignature>
//! ```
//!
//! Both sides sign the same AuthMessage (client-first without its `n,,` header, server-first and
//! client-final without the proof, joined by commas). The client sends
//! `ClientProof = ClientKey XOR HMAC(StoredKey, AuthMessage)`; the server recovers ClientKey by
//! XORing again and checks that its hash is StoredKey. It answers with
//! `HMAC(ServerKey, AuthMessage)`, which only a holder of the stored keys can compute, so the
//! client knows it talked to the real server. Only the client and credential generation pay for
//! PBKDF2; the server's check is three HMAC/hash operations, so a broker can authenticate
//! thousands of connections a second whatever the iteration count.
//!
//! Kafka departs from the RFC in small ways that clients rely on, and this module follows
//! Kafka: no SASLprep (passwords are their UTF-8 bytes), no channel binding (the `c=` value is
//! decoded but not checked), the final nonce only has to *end with* the server's nonce, the
//! reserved `m=` attribute is accepted and ignored, failures are never reported with `e=`, and the
//! only recognised extension is `tokenauth` (delegation tokens).
//!
//! Credentials live in ZooKeeper under `/config/users/<user>` as
//! `salt=<b64>,stored_key=<b64>,server_key=<b64>,iterations=<n>` ([`ScramCredential`]).

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use base64::Engine as _;
use base64::alphabet;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256, Sha512};
use subtle::ConstantTimeEq;

use super::credentials::CredentialCache;
use super::sasl::{AuthError, Mechanism, Step};

/// The fewest iterations Kafka accepts for either mechanism, when storing a credential and when
/// authenticating with one.
pub const MIN_ITERATIONS: u32 = 4096;

/// The most iterations Kafka accepts when credentials are written through
/// AlterUserScramCredentials. Credentials written to ZooKeeper directly are not bounded.
pub const MAX_ITERATIONS: u32 = 16384;

/// The most iterations our client agrees to compute. Kafka's client has no bound; we keep one
/// so that a hostile server cannot make a broker spin for minutes, set far above what anyone
/// configures (Kafka's own tools default to 4096 and its API caps at 16384).
pub const MAX_CLIENT_ITERATIONS: u32 = 1 << 20;

/// Java's `Base64.getDecoder()`, which Kafka uses for every Base64 it reads: the standard
/// alphabet, padding optional (but correct if present), unused trailing bits ignored.
const JAVA_BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

// ---------------------------------------------------------------------------------------------
// Hash functions

/// The hash behind a SCRAM mechanism.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hash {
    Sha256,
    Sha512,
}

impl Hash {
    fn of(mechanism: Mechanism) -> Option<Hash> {
        match mechanism {
            Mechanism::ScramSha256 => Some(Hash::Sha256),
            Mechanism::ScramSha512 => Some(Hash::Sha512),
            Mechanism::Plain => None,
        }
    }

    fn of_scram(mechanism: Mechanism) -> Result<Hash, String> {
        Hash::of(mechanism).ok_or_else(|| format!("{mechanism} is not a SCRAM mechanism"))
    }

    fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            Hash::Sha256 => Sha256::digest(data).to_vec(),
            Hash::Sha512 => Sha512::digest(data).to_vec(),
        }
    }

    fn hmac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        match self {
            Hash::Sha256 => hmac_with::<Hmac<Sha256>>(key, data),
            Hash::Sha512 => hmac_with::<Hmac<Sha512>>(key, data),
        }
    }

    /// RFC 5802's Hi(), which is PBKDF2 with HMAC-H and one hash-length block.
    fn salted_password(self, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
        match self {
            Hash::Sha256 => {
                pbkdf2::pbkdf2_hmac_array::<Sha256, 32>(password, salt, iterations).to_vec()
            }
            Hash::Sha512 => {
                pbkdf2::pbkdf2_hmac_array::<Sha512, 64>(password, salt, iterations).to_vec()
            }
        }
    }
}

fn hmac_with<M: Mac + hmac::digest::KeyInit>(key: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC hashes long keys and pads short ones: every key length is valid, so this never
    // takes the error branch.
    let Ok(mut mac) = <M as Mac>::new_from_slice(key) else {
        unreachable!("HMAC accepts keys of any length")
    };
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

fn xor(a: &[u8], b: &[u8]) -> Vec<u8> {
    a.iter().zip(b).map(|(x, y)| x ^ y).collect()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    bool::from(a.ct_eq(b))
}

// ---------------------------------------------------------------------------------------------
// Random strings

/// A 130-bit random number written in base 36, as Kafka's `ScramFormatter.secureRandomString`:
/// the server's nonce, the client's nonce, and (as UTF-8 bytes) the salt of new credentials.
fn secure_random_string() -> Result<String, String> {
    let mut bytes = [0u8; 17];
    getrandom::fill(&mut bytes).map_err(|e| format!("no randomness available: {e}"))?;
    // 17 bytes are 136 bits; dropping the top 6 leaves a uniform 130-bit number.
    bytes[0] &= 0x03;
    Ok(to_base36(&bytes))
}

/// A big-endian unsigned number in lower-case base 36, without leading zeros (Java's
/// `BigInteger.toString(36)`).
fn to_base36(big_endian: &[u8]) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut number = big_endian.to_vec();
    let mut digits = Vec::new();
    while number.iter().any(|&b| b != 0) {
        // Long division by 36, most significant byte first.
        let mut remainder = 0u32;
        for byte in number.iter_mut() {
            let value = (remainder << 8) | u32::from(*byte);
            *byte = (value / 36) as u8;
            remainder = value % 36;
        }
        digits.push(DIGITS[remainder as usize]);
    }
    if digits.is_empty() {
        digits.push(b'0');
    }
    digits.reverse();
    digits.into_iter().map(char::from).collect()
}

// ---------------------------------------------------------------------------------------------
// Credentials

/// What the broker stores for one user and one SCRAM mechanism.
#[derive(Clone, PartialEq, Eq)]
pub struct ScramCredential {
    pub salt: Vec<u8>,
    pub stored_key: Vec<u8>,
    pub server_key: Vec<u8>,
    pub iterations: u32,
}

impl ScramCredential {
    /// A new credential with a fresh random salt, as `kafka-configs.sh --add-config
    /// 'SCRAM-SHA-256=[iterations=8192,password=...]'` makes. The salt is, like Kafka's, the
    /// UTF-8 text of a random 130-bit number in base 36. Callers enforce iteration bounds.
    pub fn generate(
        mechanism: Mechanism,
        password: &str,
        iterations: u32,
    ) -> Result<ScramCredential, String> {
        let salt = secure_random_string()?;
        Self::with_salt(mechanism, password, salt.as_bytes(), iterations)
    }

    /// The credential for a password and a given salt: deterministic.
    pub fn with_salt(
        mechanism: Mechanism,
        password: &str,
        salt: &[u8],
        iterations: u32,
    ) -> Result<ScramCredential, String> {
        let hash = Hash::of_scram(mechanism)?;
        // No SASLprep: Kafka hashes the password's UTF-8 bytes as they are.
        let salted = hash.salted_password(password.as_bytes(), salt, iterations);
        Self::from_salted_password(mechanism, salt, &salted, iterations)
    }

    /// The credential from an already salted password, which is what AlterUserScramCredentials
    /// carries (the client ran PBKDF2, so the password never reaches the broker).
    pub fn from_salted_password(
        mechanism: Mechanism,
        salt: &[u8],
        salted_password: &[u8],
        iterations: u32,
    ) -> Result<ScramCredential, String> {
        let hash = Hash::of_scram(mechanism)?;
        let client_key = hash.hmac(salted_password, b"Client Key");
        Ok(ScramCredential {
            salt: salt.to_vec(),
            stored_key: hash.digest(&client_key),
            server_key: hash.hmac(salted_password, b"Server Key"),
            iterations,
        })
    }

    /// Reads the ZooKeeper form `salt=<b64>,stored_key=<b64>,server_key=<b64>,iterations=<n>`.
    ///
    /// As Kafka's `ScramCredentialUtils`: comma-separated `key=value` pairs in any order (a
    /// repeated key keeps its last value), exactly these four keys, Base64 read as Java does.
    pub fn parse(text: &str) -> Result<ScramCredential, String> {
        let invalid = |why: &str| format!("invalid SCRAM credential ({why})");
        let mut pairs: Vec<&str> = text.split(',').collect();
        // Java's String.split drops trailing empty strings.
        while pairs.last() == Some(&"") {
            pairs.pop();
        }
        let mut props = BTreeMap::new();
        for pair in pairs {
            match pair.split_once('=') {
                Some((key, value)) if !key.is_empty() => {
                    props.insert(key, value);
                }
                _ => return Err(invalid("expected key=value pairs")),
            }
        }
        let keys: Vec<&str> = props.keys().copied().collect();
        if keys != ["iterations", "salt", "server_key", "stored_key"] {
            return Err(invalid(
                "expected exactly salt, stored_key, server_key and iterations",
            ));
        }
        let base64 = |key: &str| {
            let value = props.get(key).copied().unwrap_or_default();
            JAVA_BASE64
                .decode(value)
                .map_err(|e| invalid(&format!("{key} is not Base64: {e}")))
        };
        let iterations_text = props.get("iterations").copied().unwrap_or_default();
        // Kafka reads a Java int; a negative count could never authenticate, so it is refused
        // here rather than stored.
        let iterations = iterations_text
            .parse::<i32>()
            .ok()
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| invalid(&format!("iterations {iterations_text:?} is not a count")))?;
        Ok(ScramCredential {
            salt: base64("salt")?,
            stored_key: base64("stored_key")?,
            server_key: base64("server_key")?,
            iterations,
        })
    }
}

impl fmt::Display for ScramCredential {
    /// The ZooKeeper form, keys in Kafka's order.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "salt={},stored_key={},server_key={},iterations={}",
            STANDARD.encode(&self.salt),
            STANDARD.encode(&self.stored_key),
            STANDARD.encode(&self.server_key),
            self.iterations
        )
    }
}

impl FromStr for ScramCredential {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        ScramCredential::parse(text)
    }
}

// Keys are as good as passwords against this broker: keep them out of logs.
impl fmt::Debug for ScramCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScramCredential")
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

// ---------------------------------------------------------------------------------------------
// Message syntax
//
// Kafka matches each message against a regular expression over ASCII (ScramMessages); these
// helpers are that grammar, field by field. Every message is ASCII without NUL, and fields are
// separated by commas that no field may contain, so splitting on ',' is exact.

/// A SCRAM message as text: ASCII 0x01..=0x7F only, as Kafka's patterns require.
fn message_text(token: &[u8]) -> Option<&str> {
    if token.iter().all(|b| (0x01..=0x7f).contains(b)) {
        std::str::from_utf8(token).ok()
    } else {
        None
    }
}

/// A nonce: one or more printable characters (0x21..=0x7E) other than ','.
fn is_nonce(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| (0x21..=0x7e).contains(&b) && b != b',')
}

/// A user name as SCRAM writes it, `,` as `=2C` and `=` as `=3D`; any other `=` is invalid.
/// Returns the name unescaped.
fn parse_saslname(text: &str) -> Option<String> {
    if text.is_empty() {
        return None;
    }
    let mut name = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('=') {
        let (plain, escape) = rest.split_at(at);
        name.push_str(plain);
        rest = if let Some(after) = escape.strip_prefix("=2C") {
            name.push(',');
            after
        } else if let Some(after) = escape.strip_prefix("=3D") {
            name.push('=');
            after
        } else {
            return None;
        };
    }
    name.push_str(rest);
    Some(name)
}

/// The inverse of [`parse_saslname`].
fn to_saslname(user: &str) -> String {
    user.replace('=', "=3D").replace(',', "=2C")
}

/// Base64 in the canonical padded form Kafka's patterns accept (possibly empty), decoded.
fn parse_base64(text: &str) -> Option<Vec<u8>> {
    let canonical = text.len().is_multiple_of(4) && {
        let body = text.trim_end_matches('=');
        let padding = text.len() - body.len();
        padding <= 2
            && body
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
    };
    if canonical {
        JAVA_BASE64.decode(text).ok()
    } else {
        None
    }
}

/// Extensions after the fixed attributes: `key=value` with a key of letters and a non-empty
/// value. A repeated key keeps its last value, as in Kafka's map.
fn parse_extensions<'a>(fields: &[&'a str]) -> Option<BTreeMap<&'a str, &'a str>> {
    let mut extensions = BTreeMap::new();
    for field in fields {
        let (key, value) = field.split_once('=')?;
        if key.is_empty() || !key.bytes().all(|b| b.is_ascii_alphabetic()) || value.is_empty() {
            return None;
        }
        extensions.insert(key, value);
    }
    Some(extensions)
}

/// The value of attribute `name` in `field` (`r=abc` -> `abc` for `r`).
fn attribute(field: &str, name: char) -> Option<&str> {
    field.strip_prefix(name)?.strip_prefix('=')
}

/// A parsed client-first message.
struct ClientFirst<'a> {
    authzid: Option<String>,
    user: String,
    nonce: &'a str,
    /// Everything after the gs2 header: part of the AuthMessage, exactly as the client sent it.
    bare: &'a str,
    token_auth: bool,
}

impl<'a> ClientFirst<'a> {
    /// `n,[a=<authzid>],[m=<reserved>,]n=<saslname>,r=<nonce>[,<ext>=<value>]...`
    fn parse(token: &'a [u8]) -> Result<ClientFirst<'a>, AuthError> {
        let bad =
            |why: &str| AuthError::Invalid(format!("Invalid SCRAM client first message: {why}"));
        let text = message_text(token).ok_or_else(|| bad("not ASCII"))?;
        let fields: Vec<&str> = text.split(',').collect();
        let (gs2_flag, authzid_field) = match fields.as_slice() {
            [flag, authzid, ..] => (*flag, *authzid),
            _ => return Err(bad("no gs2 header")),
        };
        if gs2_flag != "n" {
            // `y` and `p=` ask about channel binding, which Kafka does not support.
            return Err(bad("only gs2 header 'n' (no channel binding) is supported"));
        }
        let authzid = if authzid_field.is_empty() {
            None
        } else {
            let value = attribute(authzid_field, 'a').ok_or_else(|| bad("bad authzid"))?;
            Some(parse_saslname(value).ok_or_else(|| bad("bad authzid"))?)
        };
        // Empty only when nothing follows the header, which fails below.
        let bare = text
            .get(gs2_flag.len() + 1 + authzid_field.len() + 1..)
            .unwrap_or_default();
        let mut rest = fields.get(2..).unwrap_or_default();
        // The reserved `m=` attribute: Kafka's pattern allows it and then ignores it.
        if let Some(reserved) = rest.first().and_then(|f| attribute(f, 'm')) {
            if reserved.is_empty() {
                return Err(bad("empty reserved attribute"));
            }
            rest = rest.get(1..).unwrap_or_default();
        }
        let (user, nonce, extensions) = match rest {
            [user, nonce, extensions @ ..] => (*user, *nonce, extensions),
            _ => return Err(bad("missing user name or nonce")),
        };
        let user = attribute(user, 'n')
            .and_then(parse_saslname)
            .ok_or_else(|| bad("bad user name"))?;
        let nonce = attribute(nonce, 'r')
            .filter(|n| is_nonce(n))
            .ok_or_else(|| bad("bad nonce"))?;
        let extensions = parse_extensions(extensions).ok_or_else(|| bad("bad extensions"))?;
        // Only `tokenauth` means anything (Java's Boolean.parseBoolean); others are ignored.
        let token_auth = extensions
            .get("tokenauth")
            .is_some_and(|v| v.eq_ignore_ascii_case("true"));
        Ok(ClientFirst {
            authzid,
            user,
            nonce,
            bare,
            token_auth,
        })
    }
}

/// A parsed client-final message.
struct ClientFinal<'a> {
    nonce: &'a str,
    proof: Vec<u8>,
    /// Everything before `,p=`: part of the AuthMessage.
    without_proof: &'a str,
}

impl<'a> ClientFinal<'a> {
    /// `c=<b64>,r=<nonce>[,<ext>=<value>]...,p=<b64>`
    fn parse(token: &'a [u8]) -> Result<ClientFinal<'a>, AuthError> {
        let bad =
            |why: &str| AuthError::Invalid(format!("Invalid SCRAM client final message: {why}"));
        let text = message_text(token).ok_or_else(|| bad("not ASCII"))?;
        let fields: Vec<&str> = text.split(',').collect();
        let [binding, nonce, extensions @ .., proof] = fields.as_slice() else {
            return Err(bad("missing attributes"));
        };
        // The channel binding must be Base64 but, as in Kafka, its value is not checked.
        attribute(binding, 'c')
            .and_then(parse_base64)
            .ok_or_else(|| bad("bad channel binding"))?;
        let nonce = attribute(nonce, 'r')
            .filter(|n| is_nonce(n))
            .ok_or_else(|| bad("bad nonce"))?;
        parse_extensions(extensions).ok_or_else(|| bad("bad extensions"))?;
        let proof = attribute(proof, 'p')
            .and_then(parse_base64)
            .ok_or_else(|| bad("bad proof"))?;
        // The proof is the last field, so the text before it ends at the last comma.
        let without_proof = text.rsplit_once(',').map_or(text, |(head, _)| head);
        Ok(ClientFinal {
            nonce,
            proof,
            without_proof,
        })
    }
}

fn auth_message(
    client_first_bare: &str,
    server_first: &str,
    client_final_without_proof: &str,
) -> Vec<u8> {
    [client_first_bare, server_first, client_final_without_proof]
        .join(",")
        .into_bytes()
}

// ---------------------------------------------------------------------------------------------
// Server

/// What the server remembers between server-first and client-final.
struct Exchange {
    user: String,
    credential: ScramCredential,
    client_first_bare: String,
    server_first: String,
    /// Client nonce followed by server nonce.
    nonce: String,
}

enum ServerState {
    ClientFirst,
    ClientFinal(Box<Exchange>),
    Complete,
    Failed,
}

impl ServerState {
    fn name(&self) -> &'static str {
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
    mechanism: Mechanism,
    credentials: Arc<CredentialCache>,
    state: ServerState,
    /// Tests fix the server nonce to replay RFC 7677's example.
    fixed_nonce: Option<String>,
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
            state: ServerState::ClientFirst,
            fixed_nonce: None,
        }
    }

    #[cfg(test)]
    fn with_server_nonce(mut self, nonce: &str) -> ScramServer {
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

    fn receive_client_first(&self, token: &[u8]) -> Result<Box<Exchange>, AuthError> {
        let message = ClientFirst::parse(token)?;
        if message.token_auth {
            // Delegation tokens are not implemented yet: Kafka answers the same way when the
            // token id is unknown.
            return Err(AuthError::Invalid(format!(
                "Token Authentication failed: Invalid tokenId : {}",
                message.user
            )));
        }
        // An unknown user fails here, at the first message, as in Kafka (no fake salt).
        let credential = self
            .credentials
            .get(&message.user, self.mechanism)
            .ok_or_else(|| {
                AuthError::Invalid("Authentication failed: Invalid user credentials".into())
            })?;
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
            user: message.user,
            credential,
            client_first_bare: message.bare.to_string(),
            server_first,
            nonce,
        }))
    }
}

/// Checks the client's proof and returns server-final.
fn receive_client_final(
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

// ---------------------------------------------------------------------------------------------
// Client

enum ClientState {
    ClientFirstSent,
    ClientFinalSent {
        salted_password: Vec<u8>,
        auth_message: Vec<u8>,
    },
    Complete,
    Failed,
}

/// Salted passwords this process has derived, by mechanism, password, salt and iterations.
type SaltedCache = std::collections::HashMap<(Mechanism, String, Vec<u8>, u32), Vec<u8>>;

/// Entries kept before the cache starts over: a broker logs in as one user per listener, a
/// tool as one; the bound only stops an odd peer offering endless salts from growing it.
const SALTED_CACHE_ENTRIES: usize = 64;

/// Hi(password, salt, i), from the cache when this process derived it before. RFC 5802 lets a
/// client keep it (§5.1): a broker reconnecting or re-authenticating to another, or a tool
/// opening many connections, would otherwise pay thousands of HMACs every time.
fn cached_salted_password(
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
    mechanism: Mechanism,
    hash: Hash,
    user: String,
    password: String,
    nonce: String,
    state: ClientState,
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
        })
    }

    #[cfg(test)]
    fn with_nonce(mut self, nonce: &str) -> ScramClient {
        self.nonce = nonce.to_string();
        self
    }

    pub fn mechanism(&self) -> Mechanism {
        self.mechanism
    }

    fn client_first_bare(&self) -> String {
        format!("n={},r={}", to_saslname(&self.user), self.nonce)
    }

    /// client-first: `n,,n=<user>,r=<nonce>`, no authorization id and no extensions, as
    /// Kafka's client sends it.
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
fn parse_server_first(token: &[u8]) -> Result<(&str, Vec<u8>, u32), AuthError> {
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
fn parse_server_final(token: &[u8], mechanism: Mechanism) -> Result<Vec<u8>, AuthError> {
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

#[cfg(test)]
mod tests {
    use super::*;

    const ALICE_256: &str = "salt=NHF6bm0yY2kxZXFkNW94cTZkc2R0OWE2bA==,stored_key=172uAMv3hznX4+Fc1BEC1fTu0o8ap6kxco18N5+RYtI=,server_key=XJznSYoHNEKozP/HIq8TCU+W1xJtlMx7FNIG9DUg2K4=,iterations=8192";
    const ALICE_512: &str = "salt=NHF6bm0yY2kxZXFkNW94cTZkc2R0OWE2bA==,stored_key=NomqBqlBODulGIAbzEaLy5CUcFhY9TYORyp1y61OQESPAMJpn+YpWcK5jmtY1TegG8/xP2zUfnC6CB/KL8BU4A==,server_key=Z4X5h8I6Yp0hIEIkrwup9kFAlgNDPXyT9YTAGKL8+ODZp6M6DDPt5JKwqZ2wHAGWq/spfIYd3B4lEvbLUoVCKw==,iterations=8192";

    fn cache_with(user: &str, password: &str, iterations: u32) -> Arc<CredentialCache> {
        let cache = CredentialCache::default();
        for m in Mechanism::SCRAM {
            let cred =
                ScramCredential::with_salt(m, password, b"a-salt-for-tests", iterations).unwrap();
            cache.set(user, m, Some(cred));
        }
        Arc::new(cache)
    }

    fn challenge(step: Result<Step, AuthError>) -> Vec<u8> {
        match step {
            Ok(Step::Challenge(bytes)) => bytes,
            other => panic!("expected a challenge, got {other:?}"),
        }
    }

    /// Runs client-first through the server and returns (server, client, server-first).
    fn start(
        mechanism: Mechanism,
        cache: &Arc<CredentialCache>,
        user: &str,
        password: &str,
    ) -> (ScramServer, ScramClient, Vec<u8>) {
        let mut server = ScramServer::new(mechanism, cache.clone());
        let client = ScramClient::new(mechanism, user, password).unwrap();
        let server_first = challenge(server.step(&client.first_message()));
        (server, client, server_first)
    }

    fn assert_invalid<T: fmt::Debug>(result: Result<T, AuthError>) {
        assert!(
            matches!(result, Err(AuthError::Invalid(_))),
            "expected Invalid, got {result:?}"
        );
    }

    #[test]
    fn reference_test_vectors() {
        let salt = b"4qznm2ci1eqd5oxq6dsdt9a6l";
        let sha256 =
            ScramCredential::with_salt(Mechanism::ScramSha256, "alice-secret", salt, 8192).unwrap();
        assert_eq!(sha256.to_string(), ALICE_256);
        let sha512 =
            ScramCredential::with_salt(Mechanism::ScramSha512, "alice-secret", salt, 8192).unwrap();
        assert_eq!(sha512.to_string(), ALICE_512);
        // And the byte values behind the text.
        assert_eq!(sha256.salt, salt.to_vec());
        assert_eq!(sha256.stored_key.len(), 32);
        assert_eq!(sha512.server_key.len(), 64);
        assert_eq!(ScramCredential::parse(ALICE_256), Ok(sha256));
        assert_eq!(ALICE_512.parse::<ScramCredential>(), Ok(sha512));
    }

    #[test]
    fn from_salted_password_matches_with_salt() {
        let salt = b"4qznm2ci1eqd5oxq6dsdt9a6l";
        let salted = Hash::Sha256.salted_password(b"alice-secret", salt, 8192);
        let cred =
            ScramCredential::from_salted_password(Mechanism::ScramSha256, salt, &salted, 8192)
                .unwrap();
        assert_eq!(cred.to_string(), ALICE_256);
    }

    #[test]
    fn plain_is_not_a_scram_mechanism() {
        assert!(ScramCredential::with_salt(Mechanism::Plain, "p", b"s", 4096).is_err());
        assert!(ScramCredential::generate(Mechanism::Plain, "p", 4096).is_err());
        assert!(ScramClient::new(Mechanism::Plain, "u", "p").is_err());
        let mut server = ScramServer::new(Mechanism::Plain, cache_with("u", "p", 4096));
        assert_invalid(server.step(b"n,,n=u,r=abc"));
    }

    #[test]
    fn generated_credentials_have_kafka_style_salts() {
        let a = ScramCredential::generate(Mechanism::ScramSha256, "pw", 4096).unwrap();
        let b = ScramCredential::generate(Mechanism::ScramSha256, "pw", 4096).unwrap();
        assert_ne!(a.salt, b.salt);
        for cred in [&a, &b] {
            assert!((20..=26).contains(&cred.salt.len()), "{:?}", cred.salt);
            assert!(
                cred.salt
                    .iter()
                    .all(|c| c.is_ascii_digit() || c.is_ascii_lowercase())
            );
            assert_eq!(cred.iterations, 4096);
            // The same password and salt give the same keys.
            let again =
                ScramCredential::with_salt(Mechanism::ScramSha256, "pw", &cred.salt, 4096).unwrap();
            assert_eq!(&again, cred);
        }
    }

    #[test]
    fn base36() {
        assert_eq!(to_base36(&[0, 0]), "0");
        assert_eq!(to_base36(&[35]), "z");
        assert_eq!(to_base36(&[36]), "10");
        assert_eq!(to_base36(&[0x01, 0x00]), "74");
        // 2^130 - 1, the largest nonce.
        let mut max = [0xffu8; 17];
        max[0] = 0x03;
        assert_eq!(to_base36(&max), "1omfro7zwmumr3umxudzyj6scf");
        let nonce = secure_random_string().unwrap();
        assert!(nonce.len() <= 26 && !nonce.is_empty());
        assert!(is_nonce(&nonce));
    }

    #[test]
    fn credential_parsing_is_kafkas() {
        // Any key order, trailing commas dropped, last duplicate wins.
        let reordered = "iterations=8192,server_key=XJznSYoHNEKozP/HIq8TCU+W1xJtlMx7FNIG9DUg2K4=,stored_key=172uAMv3hznX4+Fc1BEC1fTu0o8ap6kxco18N5+RYtI=,salt=NHF6bm0yY2kxZXFkNW94cTZkc2R0OWE2bA==,,";
        assert_eq!(
            ScramCredential::parse(reordered).unwrap().to_string(),
            ALICE_256
        );
        let twice = format!("iterations=1,{ALICE_256}");
        assert_eq!(ScramCredential::parse(&twice).unwrap().iterations, 8192);
        // Java's decoder does not insist on padding.
        let unpadded = ALICE_256.replace("bA==", "bA").replace("tI=", "tI");
        assert_eq!(
            ScramCredential::parse(&unpadded).unwrap().to_string(),
            ALICE_256
        );

        let bad = [
            "",
            ",",
            "salt=AA==",
            &format!("{ALICE_256},extra=1"),
            &ALICE_256.replace("iterations=8192", "iterations=-1"),
            &ALICE_256.replace("iterations=8192", "iterations=4096x"),
            &ALICE_256.replace("iterations=8192", "iterations="),
            &ALICE_256.replace("iterations=8192", "iterations=99999999999"),
            &ALICE_256.replace("salt=", "salt=!"),
            &ALICE_256.replace("salt=NHF6", "salt=NHF"),
            &ALICE_256.replace("stored_key=", "stored_key=A=B"),
            &ALICE_256.replace(",stored_key", ",,stored_key"),
            &ALICE_256.replace("server_key=", "=server_key="),
            &ALICE_256.replace("server_key", "Server_key"),
            &ALICE_256.replace(',', ";"),
        ];
        for text in bad {
            assert!(ScramCredential::parse(text).is_err(), "{text:?} parsed");
        }
    }

    #[test]
    fn debug_hides_keys() {
        let cred = ScramCredential::parse(ALICE_256).unwrap();
        let shown = format!("{cred:?}");
        assert!(shown.contains("8192"));
        assert!(!shown.contains("172uAMv3"));
        assert!(!shown.contains("stored_key"));
    }

    #[test]
    fn client_and_server_agree() {
        let cache = cache_with("alice", "alice-secret", 4096);
        for m in Mechanism::SCRAM {
            let (mut server, mut client, server_first) = start(m, &cache, "alice", "alice-secret");
            let text = String::from_utf8(server_first.clone()).unwrap();
            let first = String::from_utf8(client.first_message()).unwrap();
            let client_nonce = first.strip_prefix("n,,n=alice,r=").unwrap();
            assert!(text.starts_with(&format!("r={client_nonce}")));
            assert!(text.ends_with(",s=YS1zYWx0LWZvci10ZXN0cw==,i=4096"));

            let client_final = client.final_message(&server_first).unwrap();
            assert!(client_final.starts_with(b"c=biws,r="));
            let Ok(Step::Done { reply, user }) = server.step(&client_final) else {
                panic!("authentication failed");
            };
            assert_eq!(user, "alice");
            assert!(reply.starts_with(b"v="));
            assert!(!client.is_complete());
            client.verify_server_final(&reply).unwrap();
            assert!(client.is_complete());
            // Over is over, on both sides.
            assert_invalid(server.step(&client_final));
            assert_invalid(server.step(&client.first_message()));
            assert_invalid(client.verify_server_final(&reply));
            assert_invalid(client.final_message(&server_first));
        }
    }

    #[test]
    fn user_names_with_commas_and_equals_are_escaped() {
        let cache = cache_with("a,b=c", "pw", 4096);
        let (mut server, mut client, server_first) =
            start(Mechanism::ScramSha256, &cache, "a,b=c", "pw");
        assert_eq!(
            String::from_utf8(client.first_message()).unwrap().get(..16),
            Some("n,,n=a=2Cb=3Dc,r")
        );
        let client_final = client.final_message(&server_first).unwrap();
        let Ok(Step::Done { user, .. }) = server.step(&client_final) else {
            panic!("authentication failed");
        };
        assert_eq!(user, "a,b=c");
    }

    #[test]
    fn wrong_password_fails_at_client_final() {
        let cache = cache_with("alice", "alice-secret", 4096);
        for m in Mechanism::SCRAM {
            let (mut server, mut client, server_first) = start(m, &cache, "alice", "wrong");
            let client_final = client.final_message(&server_first).unwrap();
            let result = server.step(&client_final);
            assert_eq!(
                result,
                Err(AuthError::Invalid("Invalid client credentials".into()))
            );
            assert_invalid(server.step(&client_final));
        }
    }

    #[test]
    fn unknown_user_fails_at_client_first() {
        let cache = cache_with("alice", "alice-secret", 4096);
        let mut server = ScramServer::new(Mechanism::ScramSha256, cache.clone());
        let client = ScramClient::new(Mechanism::ScramSha256, "bob", "alice-secret").unwrap();
        assert_eq!(
            server.step(&client.first_message()),
            Err(AuthError::Invalid(
                "Authentication failed: Invalid user credentials".into()
            ))
        );
        assert_invalid(server.step(&client.first_message()));

        // A user with only the other mechanism's credential is unknown for this one.
        let only_512 = CredentialCache::default();
        only_512.set(
            "carol",
            Mechanism::ScramSha512,
            cache.get("alice", Mechanism::ScramSha512),
        );
        let mut server = ScramServer::new(Mechanism::ScramSha256, Arc::new(only_512));
        assert_invalid(server.step(b"n,,n=carol,r=abc"));
    }

    #[test]
    fn too_few_stored_iterations_fail() {
        let cache = cache_with("alice", "alice-secret", 4095);
        let mut server = ScramServer::new(Mechanism::ScramSha512, cache);
        assert_eq!(
            server.step(b"n,,n=alice,r=abc"),
            Err(AuthError::Invalid(
                "Iterations 4095 is less than the minimum 4096 for SCRAM-SHA-512".into()
            ))
        );
    }

    #[test]
    fn authorization_id() {
        let cache = cache_with("alice", "alice-secret", 4096);
        let mut server = ScramServer::new(Mechanism::ScramSha256, cache.clone());
        assert!(matches!(
            server.step(b"n,a=alice,n=alice,r=abc"),
            Ok(Step::Challenge(_))
        ));
        let mut server = ScramServer::new(Mechanism::ScramSha256, cache.clone());
        assert_eq!(
            server.step(b"n,a=admin,n=alice,r=abc"),
            Err(AuthError::Authentication(
                "Authentication failed: Client requested an authorization id that is different from username"
                    .into()
            ))
        );
        // For an unknown user the authzid is not looked at: the failure stays generic.
        let mut server = ScramServer::new(Mechanism::ScramSha256, cache);
        assert_invalid(server.step(b"n,a=admin,n=mallory,r=abc"));
    }

    #[test]
    fn client_first_syntax() {
        let cache = cache_with("alice", "alice-secret", 4096);
        let accepted: &[&[u8]] = &[
            b"n,,n=alice,r=abc",
            b"n,,m=anything=goes,n=alice,r=abc",
            b"n,,n=alice,r=abc,ext=1,other=x=y",
            b"n,,n=alice,r=abc,tokenauth=false",
            b"n,,n=alice,r=!\"#$%&'()*+-./:;<=>?@[\\]^_`{|}~",
        ];
        for token in accepted {
            let mut server = ScramServer::new(Mechanism::ScramSha256, cache.clone());
            assert!(
                matches!(server.step(token), Ok(Step::Challenge(_))),
                "{:?} refused",
                String::from_utf8_lossy(token)
            );
        }
        let refused: &[&[u8]] = &[
            b"",
            b"n",
            b"n,",
            b"n,,",
            b"y,,n=alice,r=abc",
            b"p=tls-unique,,n=alice,r=abc",
            b"n,a=,n=alice,r=abc",
            b"n,x=alice,n=alice,r=abc",
            b"n,,m=,n=alice,r=abc",
            b"n,,n=alice",
            b"n,,n=alice,r=",
            b"n,,n=,r=abc",
            b"n,,r=abc,n=alice",
            b"n,,n=alice,r=a b",
            b"n,,n=alice,r=abc,",
            b"n,,n=alice,r=abc,1x=y",
            b"n,,n=alice,r=abc,x=",
            b"n,,n=alice,r=abc,x",
            b"n,,n=al=ice,r=abc",
            b"n,,n=al=2,r=abc",
            b"n,,n=al=3d,r=abc",
            b"n,,n=alice=,r=abc",
            b"n,,n=al\xc3\xafce,r=abc",
            b"n,,n=alice,r=ab\xff",
            b"n,,n=alice,r=ab\0c",
            b"\xff\xfe\xfd",
        ];
        for token in refused {
            let mut server = ScramServer::new(Mechanism::ScramSha256, cache.clone());
            assert_invalid(server.step(token));
        }
    }

    #[test]
    fn token_authentication_is_refused_for_now() {
        let cache = cache_with("alice", "alice-secret", 4096);
        for value in ["true", "TRUE", "True"] {
            let mut server = ScramServer::new(Mechanism::ScramSha256, cache.clone());
            let token = format!("n,,n=alice,r=abc,tokenauth={value}");
            assert_invalid(server.step(token.as_bytes()));
        }
    }

    #[test]
    fn tampered_nonce_fails() {
        let cache = cache_with("alice", "alice-secret", 4096);
        let (mut server, mut client, server_first) =
            start(Mechanism::ScramSha256, &cache, "alice", "alice-secret");
        let good = String::from_utf8(client.final_message(&server_first).unwrap()).unwrap();
        let (head, tail) = good.split_once(",p=").unwrap();
        // Drop the nonce's last character.
        let tampered = format!("{},p={tail}", &head[..head.len() - 1]);
        assert_eq!(
            server.step(tampered.as_bytes()),
            Err(AuthError::Invalid(
                "Invalid client nonce in the final client message.".into()
            ))
        );

        // A client nonce echoed without the server's part is refused too.
        let (mut server, _, _) = start(Mechanism::ScramSha256, &cache, "alice", "alice-secret");
        let first = String::from_utf8(client.first_message()).unwrap();
        let client_nonce = first.rsplit_once("r=").unwrap().1;
        let forged = format!("c=biws,r={client_nonce},p={tail}");
        assert_invalid(server.step(forged.as_bytes()));
    }

    #[test]
    fn kafka_accepts_a_final_nonce_that_only_ends_with_the_servers() {
        // Kafka checks `endsWith`, not equality. The proof covers the nonce as sent, so a
        // client has to sign what it sends; this documents that we are as lax as Kafka.
        let cache = cache_with("alice", "alice-secret", 4096);
        let mut server =
            ScramServer::new(Mechanism::ScramSha256, cache).with_server_nonce("SERVER");
        let client = ScramClient::new(Mechanism::ScramSha256, "alice", "alice-secret")
            .unwrap()
            .with_nonce("CLIENT");
        let server_first = challenge(server.step(&client.first_message()));
        let without_proof = "c=biws,r=xxCLIENTSERVER";
        let salted = Hash::Sha256.salted_password(b"alice-secret", b"a-salt-for-tests", 4096);
        let proof = test_proof(
            Hash::Sha256,
            &salted,
            "n=alice,r=CLIENT",
            &server_first,
            without_proof,
        );
        let token = format!("{without_proof},p={}", STANDARD.encode(proof));
        assert!(matches!(
            server.step(token.as_bytes()),
            Ok(Step::Done { .. })
        ));
    }

    /// The proof a client with `salted` would send.
    fn test_proof(
        hash: Hash,
        salted: &[u8],
        bare: &str,
        server_first: &[u8],
        without_proof: &str,
    ) -> Vec<u8> {
        let auth = auth_message(
            bare,
            std::str::from_utf8(server_first).unwrap(),
            without_proof,
        );
        let client_key = hash.hmac(salted, b"Client Key");
        xor(&client_key, &hash.hmac(&hash.digest(&client_key), &auth))
    }

    #[test]
    fn client_final_syntax() {
        let cache = cache_with("alice", "alice-secret", 4096);
        let salted = Hash::Sha256.salted_password(b"alice-secret", b"a-salt-for-tests", 4096);
        let fresh = || {
            let mut server =
                ScramServer::new(Mechanism::ScramSha256, cache.clone()).with_server_nonce("S");
            let first = challenge(server.step(b"n,,n=alice,r=C"));
            (server, first)
        };
        // Extensions before the proof and any channel-binding value are fine, as in Kafka.
        for without_proof in ["c=biws,r=CS,ext=1", "c=,r=CS", "c=eXk=,r=CS"] {
            let (mut server, first) = fresh();
            let proof = test_proof(Hash::Sha256, &salted, "n=alice,r=C", &first, without_proof);
            let token = format!("{without_proof},p={}", STANDARD.encode(proof));
            assert!(
                matches!(server.step(token.as_bytes()), Ok(Step::Done { .. })),
                "{token} refused"
            );
        }
        let (_, first) = fresh();
        let proof = STANDARD.encode(test_proof(
            Hash::Sha256,
            &salted,
            "n=alice,r=C",
            &first,
            "c=biws,r=CS",
        ));
        let refused = [
            String::new(),
            "c=biws".into(),
            "c=biws,r=CS".into(),
            format!("r=CS,c=biws,p={proof}"),
            format!("c=biw,r=CS,p={proof}"),
            format!("c=bi*s,r=CS,p={proof}"),
            format!("c=biws,r=,p={proof}"),
            format!("c=biws,r=CS,p={}", &proof[1..]),
            format!("c=biws,r=CS,p={proof},"),
            format!("c=biws,r=CS,1=2,p={proof}"),
            format!("c=biws,r=CS,p={proof}x"),
            "c=biws,r=CS,p=".into(),
            "c=biws,r=CS,p=AAAA".into(),
            format!("c=biws,r=CS,p={}", STANDARD.encode([0u8; 64])),
            format!("c=biws,r=CS\u{e9},p={proof}"),
        ];
        for token in refused {
            let (mut server, _) = fresh();
            assert_invalid(server.step(token.as_bytes()));
        }
        // A proof for one AuthMessage does not pass for another (extension added afterwards).
        let (mut server, _) = fresh();
        assert_invalid(server.step(format!("c=biws,r=CS,x=y,p={proof}").as_bytes()));
        // And the right one does.
        let (mut server, _) = fresh();
        assert!(matches!(
            server.step(format!("c=biws,r=CS,p={proof}").as_bytes()),
            Ok(Step::Done { .. })
        ));
    }

    #[test]
    fn garbage_never_panics() {
        let cache = cache_with("alice", "alice-secret", 4096);
        let mut huge = b"n,,n=alice,r=".to_vec();
        huge.extend(std::iter::repeat_n(b'x', 1 << 20));
        let mut huge_commas = b"n,,n=alice,r=abc".to_vec();
        huge_commas.extend(std::iter::repeat_n(b',', 1 << 20));
        let garbage: Vec<Vec<u8>> = vec![
            Vec::new(),
            vec![0],
            vec![0xff; 100],
            b",,,,,,,,".to_vec(),
            b"=,=,=,=".to_vec(),
            b"n,,n==,r=,".to_vec(),
            b"c=biws,r=x,p=AAAA".to_vec(),
            vec![b'='; 4096],
            (0u8..=255).collect(),
            huge_commas,
        ];
        for m in Mechanism::SCRAM {
            // At client-first.
            for token in garbage.iter().chain([&huge]) {
                let mut server = ScramServer::new(m, cache.clone());
                let result = server.step(token);
                if token == &huge {
                    // A long nonce is legal; the exchange goes on.
                    assert!(result.is_ok());
                } else {
                    assert_invalid(result);
                }
            }
            // At client-final.
            for token in garbage.iter().chain([&huge]) {
                let (mut server, _, _) = start(m, &cache, "alice", "alice-secret");
                assert_invalid(server.step(token));
            }
        }
        // And the client against a garbage server.
        for token in &garbage {
            let mut client = ScramClient::new(Mechanism::ScramSha256, "alice", "pw").unwrap();
            assert_invalid(client.final_message(token));
            assert_invalid(client.verify_server_final(token));
        }
    }

    #[test]
    fn client_checks_the_server() {
        let client = || {
            ScramClient::new(Mechanism::ScramSha256, "alice", "pw")
                .unwrap()
                .with_nonce("C")
        };
        let ok = client().final_message(b"r=CS,s=c2FsdA==,i=4096");
        assert!(ok.is_ok());
        let accepted: &[&[u8]] = &[
            b"m=x,r=CS,s=c2FsdA==,i=4096",
            b"r=CS,s=c2FsdA==,i=4096,ext=1",
        ];
        for token in accepted {
            assert!(client().final_message(token).is_ok());
        }
        let refused: &[&[u8]] = &[
            b"r=XS,s=c2FsdA==,i=4096",           // nonce not ours
            b"r=CS,s=c2FsdA==,i=4095",           // too few iterations
            b"r=CS,s=c2FsdA==,i=0",              // none at all
            b"r=CS,s=c2FsdA==,i=1048577",        // too many
            b"r=CS,s=c2FsdA==,i=99999999999999", // overflow
            b"r=CS,s=c2FsdA==,i=+4096",          // not digits
            b"r=CS,s=c2FsdA=,i=4096",            // bad Base64
            b"r=CS,i=4096,s=c2FsdA==",           // order
            b"e=other-error",
        ];
        for token in refused {
            assert_invalid(client().final_message(token));
        }

        // A server that does not know the password cannot forge server-final.
        let cache = cache_with("alice", "other", 4096);
        let (mut server, mut client, server_first) =
            start(Mechanism::ScramSha256, &cache, "alice", "pw");
        let client_final = client.final_message(&server_first).unwrap();
        assert!(server.step(&client_final).is_err());
        let forged = format!("v={}", STANDARD.encode([7u8; 32]));
        assert_invalid(client.verify_server_final(forged.as_bytes()));

        // Server-final errors are reported, not panicked on.
        let cache = cache_with("alice", "pw", 4096);
        let (_, mut client, server_first) = start(Mechanism::ScramSha256, &cache, "alice", "pw");
        client.final_message(&server_first).unwrap();
        assert_eq!(
            client.verify_server_final(b"e=invalid-proof"),
            Err(AuthError::Invalid(
                "Sasl authentication using SCRAM-SHA-256 failed with error: invalid-proof".into()
            ))
        );
    }

    #[test]
    fn server_final_from_the_real_server_with_extensions_is_accepted() {
        let cache = cache_with("alice", "pw", 4096);
        let (mut server, mut client, server_first) =
            start(Mechanism::ScramSha512, &cache, "alice", "pw");
        let client_final = client.final_message(&server_first).unwrap();
        let Ok(Step::Done { mut reply, .. }) = server.step(&client_final) else {
            panic!("authentication failed");
        };
        reply.extend_from_slice(b",ext=1");
        client.verify_server_final(&reply).unwrap();
    }

    /// RFC 7677 section 3: user `user`, password `pencil`.
    #[test]
    fn rfc7677_example() {
        let client_first = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
        let server_first = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
        let client_final = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
        let server_final = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

        let salt = STANDARD.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let cred =
            ScramCredential::with_salt(Mechanism::ScramSha256, "pencil", &salt, 4096).unwrap();
        let cache = CredentialCache::default();
        cache.set("user", Mechanism::ScramSha256, Some(cred));
        let mut server = ScramServer::new(Mechanism::ScramSha256, Arc::new(cache))
            .with_server_nonce("%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0");
        let mut client = ScramClient::new(Mechanism::ScramSha256, "user", "pencil")
            .unwrap()
            .with_nonce("rOprNGfwEbeRWgbNEkqO");

        assert_eq!(client.first_message(), client_first.as_bytes());
        assert_eq!(
            server.step(client_first.as_bytes()),
            Ok(Step::Challenge(server_first.as_bytes().to_vec()))
        );
        assert_eq!(
            client.final_message(server_first.as_bytes()).unwrap(),
            client_final.as_bytes()
        );
        assert_eq!(
            server.step(client_final.as_bytes()),
            Ok(Step::Done {
                reply: server_final.as_bytes().to_vec(),
                user: "user".into()
            })
        );
        client.verify_server_final(server_final.as_bytes()).unwrap();
    }

    /// A broker must manage >= 500 SCRAM-SHA-256 authentications a second at 4096 iterations.
    /// The server side does no PBKDF2, so even an unoptimised build clears this by far; the
    /// client's PBKDF2 is done once, outside the timed part. The best of a few batches is
    /// taken so that a busy machine does not fail the test.
    #[test]
    fn server_side_is_cheap() {
        let cache = cache_with("alice", "alice-secret", 4096);
        let salted = Hash::Sha256.salted_password(b"alice-secret", b"a-salt-for-tests", 4096);
        let batch = 100;
        let best = (0..5)
            .map(|round| {
                let started = std::time::Instant::now();
                for i in 0..batch {
                    let mut server = ScramServer::new(Mechanism::ScramSha256, cache.clone());
                    let bare = format!("n=alice,r=client{round}x{i}");
                    let server_first = challenge(server.step(format!("n,,{bare}").as_bytes()));
                    let nonce = std::str::from_utf8(&server_first)
                        .unwrap()
                        .split(',')
                        .next()
                        .unwrap();
                    let without_proof = format!("c=biws,{nonce}");
                    let proof =
                        test_proof(Hash::Sha256, &salted, &bare, &server_first, &without_proof);
                    let token = format!("{without_proof},p={}", STANDARD.encode(proof));
                    assert!(matches!(
                        server.step(token.as_bytes()),
                        Ok(Step::Done { .. })
                    ));
                }
                started.elapsed()
            })
            .min()
            .unwrap();
        // 100 exchanges (plus the test's own client-side HMACs) within 1/5 s: 500 a second.
        assert!(
            best.as_secs_f64() < 0.2,
            "{batch} authentications took {best:?}"
        );
    }
}
