//! A stored SCRAM credential, as Kafka keeps it under `/config/users/<user>`
//! (`ScramCredentialUtils`): `salt=<b64>,stored_key=<b64>,server_key=<b64>,iterations=<n>`,
//! and how a new one is made from a password (`ScramFormatter.generateCredential`).

use super::*;

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
