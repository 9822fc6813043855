//! Delegation tokens (KIP-48), the part every broker computes alike: a token's information,
//! its password (the HMAC of its id under `delegation.token.secret.key`) and the broker's cache
//! of live tokens with the SCRAM credentials they log in with (Kafka's `DelegationTokenCache`).
//!
//! A token logs in over SCRAM with the `tokenauth=true` extension: the user name is the token
//! id, the password the Base64 of its HMAC. The SCRAM credentials are never stored: every broker
//! derives them from the HMAC, which it computes from the shared secret key, when the token
//! enters its cache, as Kafka's `DelegationTokenManager.updateCache` does.

use std::collections::HashMap;
use std::fmt;
use std::sync::{PoisonError, RwLock};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha512;

use super::KafkaPrincipal;
use super::sasl::Mechanism;
use super::scram::{MIN_ITERATIONS, ScramCredential};

/// What a token is (Kafka's `TokenInformation`). Timestamps are milliseconds since the epoch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInformation {
    pub token_id: String,
    /// Whom the token authenticates as.
    pub owner: KafkaPrincipal,
    /// Who asked for it (the owner unless a user with CREATE_TOKENS on the owner did).
    pub requester: KafkaPrincipal,
    /// Who besides the owner may renew or expire it.
    pub renewers: Vec<KafkaPrincipal>,
    pub issue_timestamp: i64,
    /// No renewal takes the token past this.
    pub max_timestamp: i64,
    /// The token stops working at this time unless renewed.
    pub expiry_timestamp: i64,
}

impl TokenInformation {
    /// Kafka's `ownerOrRenewer`: the owner, the requester or a renewer. These may describe the
    /// token without any ACL; only the owner and renewers may renew or expire it
    /// ([`may_renew`](Self::may_renew)).
    pub fn owner_or_renewer(&self, principal: &KafkaPrincipal) -> bool {
        self.owner == *principal || self.requester == *principal || self.may_renew(principal)
    }

    /// Kafka's `allowedToRenew`: the owner or a renewer.
    pub fn may_renew(&self, principal: &KafkaPrincipal) -> bool {
        self.owner == *principal || self.renewers.contains(principal)
    }

    /// Past its expiry or its maximum lifetime at `now_ms`.
    pub fn expired(&self, now_ms: i64) -> bool {
        self.max_timestamp < now_ms || self.expiry_timestamp < now_ms
    }
}

/// A token's password: HmacSHA512 of the token id's UTF-8 bytes, keyed with the secret key's
/// UTF-8 bytes (Kafka's `DelegationTokenManager.createHmac`).
pub fn token_hmac(token_id: &str, secret_key: &str) -> Vec<u8> {
    // HMAC takes a key of any length, so this cannot fail.
    let mut mac = <Hmac<Sha512> as Mac>::new_from_slice(secret_key.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
    mac.update(token_id.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

/// A token's password as clients give it to SCRAM: the Base64 of its HMAC.
pub fn hmac_base64(hmac: &[u8]) -> String {
    STANDARD.encode(hmac)
}

/// A live token as the cache holds it.
#[derive(Clone)]
struct Cached {
    info: TokenInformation,
    hmac: Vec<u8>,
    /// One per SCRAM mechanism, derived from the HMAC with a fresh salt.
    credentials: Vec<(Mechanism, ScramCredential)>,
}

/// What a token login needs from the cache.
#[derive(Debug, Clone)]
pub struct TokenLogin {
    pub credential: ScramCredential,
    pub owner: KafkaPrincipal,
    pub expiry_timestamp: i64,
}

/// The live tokens of the cluster, by id, kept current from `/delegation_token` by the token
/// manager and read by every SCRAM login with `tokenauth=true`. Without a secret key it stays
/// empty and every token login fails.
#[derive(Default)]
pub struct DelegationTokenCache {
    secret_key: Option<String>,
    tokens: RwLock<HashMap<String, Cached>>,
}

// Hand-written: the secret key and the HMACs are passwords.
impl fmt::Debug for DelegationTokenCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DelegationTokenCache")
            .field("enabled", &self.enabled())
            .field("tokens", &self.tokens().len())
            .finish()
    }
}

impl DelegationTokenCache {
    /// A cache signing with `secret_key`; None or empty disables tokens.
    pub fn new(secret_key: Option<String>) -> DelegationTokenCache {
        DelegationTokenCache {
            secret_key: secret_key.filter(|k| !k.is_empty()),
            tokens: RwLock::default(),
        }
    }

    pub fn enabled(&self) -> bool {
        self.secret_key.is_some()
    }

    /// The HMAC of `token_id` under this broker's secret key; None when tokens are disabled.
    pub fn hmac(&self, token_id: &str) -> Option<Vec<u8>> {
        self.secret_key.as_ref().map(|k| token_hmac(token_id, k))
    }

    /// Adds or replaces a token. Derives its SCRAM credentials (PBKDF2 at Kafka's minimum
    /// iterations for each mechanism: a few milliseconds) before taking the lock.
    pub fn update(&self, info: TokenInformation) {
        let Some(hmac) = self.hmac(&info.token_id) else {
            return;
        };
        let password = hmac_base64(&hmac);
        let mut credentials = Vec::with_capacity(Mechanism::SCRAM.len());
        for mechanism in Mechanism::SCRAM {
            match ScramCredential::generate(mechanism, &password, MIN_ITERATIONS) {
                Ok(c) => credentials.push((mechanism, c)),
                // No randomness for a salt: this mechanism cannot log the token in.
                Err(e) => {
                    tracing::error!(error = %e, %mechanism, "no SCRAM credential for a delegation token")
                }
            }
        }
        let cached = Cached {
            info,
            hmac,
            credentials,
        };
        let mut tokens = self.tokens.write().unwrap_or_else(PoisonError::into_inner);
        tokens.insert(cached.info.token_id.clone(), cached);
    }

    pub fn remove(&self, token_id: &str) {
        let mut tokens = self.tokens.write().unwrap_or_else(PoisonError::into_inner);
        tokens.remove(token_id);
    }

    pub fn get(&self, token_id: &str) -> Option<TokenInformation> {
        let tokens = self.tokens.read().unwrap_or_else(PoisonError::into_inner);
        tokens.get(token_id).map(|c| c.info.clone())
    }

    /// The token whose HMAC this is (how Renew and Expire name a token), with its HMAC.
    pub fn for_hmac(&self, hmac: &[u8]) -> Option<TokenInformation> {
        let tokens = self.tokens.read().unwrap_or_else(PoisonError::into_inner);
        tokens
            .values()
            .find(|c| c.hmac == hmac)
            .map(|c| c.info.clone())
    }

    /// Every live token with its HMAC, sorted by id.
    pub fn tokens(&self) -> Vec<(TokenInformation, Vec<u8>)> {
        let tokens = self.tokens.read().unwrap_or_else(PoisonError::into_inner);
        let mut all: Vec<_> = tokens
            .values()
            .map(|c| (c.info.clone(), c.hmac.clone()))
            .collect();
        all.sort_by(|a, b| a.0.token_id.cmp(&b.0.token_id));
        all
    }

    /// What a SCRAM login with token id `token_id` checks its proof against.
    pub fn login(&self, token_id: &str, mechanism: Mechanism) -> Option<TokenLogin> {
        let tokens = self.tokens.read().unwrap_or_else(PoisonError::into_inner);
        let cached = tokens.get(token_id)?;
        let credential = cached
            .credentials
            .iter()
            .find(|(m, _)| *m == mechanism)
            .map(|(_, c)| c.clone())?;
        Some(TokenLogin {
            credential,
            owner: cached.info.owner.clone(),
            expiry_timestamp: cached.info.expiry_timestamp,
        })
    }
}

/// Milliseconds since the epoch, as token timestamps count.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(id: &str) -> TokenInformation {
        TokenInformation {
            token_id: id.into(),
            owner: KafkaPrincipal::user("alice"),
            requester: KafkaPrincipal::user("admin"),
            renewers: vec![KafkaPrincipal::user("bob")],
            issue_timestamp: 1000,
            max_timestamp: 5000,
            expiry_timestamp: 3000,
        }
    }

    #[test]
    fn hmac_is_kafkas_hmac_sha512() {
        // RFC 4231 test case 2 for HMAC-SHA-512: key "Jefe", data "what do ya want for
        // nothing?".
        let mac = token_hmac("what do ya want for nothing?", "Jefe");
        assert_eq!(
            mac,
            hex(
                "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea2505549758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737"
            )
        );
    }

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn who_may_describe_and_renew() {
        let t = info("t");
        assert!(t.owner_or_renewer(&KafkaPrincipal::user("alice")));
        assert!(t.owner_or_renewer(&KafkaPrincipal::user("admin")));
        assert!(t.owner_or_renewer(&KafkaPrincipal::user("bob")));
        assert!(!t.owner_or_renewer(&KafkaPrincipal::user("carol")));
        assert!(t.may_renew(&KafkaPrincipal::user("bob")));
        // The requester describes but does not renew.
        assert!(!t.may_renew(&KafkaPrincipal::user("admin")));
        assert!(!t.expired(3000));
        assert!(t.expired(3001));
    }

    #[test]
    fn cache_logs_tokens_in_with_their_hmac() {
        let cache = DelegationTokenCache::new(Some("secret".into()));
        cache.update(info("t1"));
        let hmac = token_hmac("t1", "secret");
        assert_eq!(cache.for_hmac(&hmac).map(|t| t.token_id), Some("t1".into()));
        assert_eq!(cache.for_hmac(b"other"), None);
        for m in Mechanism::SCRAM {
            let login = cache.login("t1", m).unwrap();
            assert_eq!(login.owner, KafkaPrincipal::user("alice"));
            assert_eq!(login.expiry_timestamp, 3000);
            // The credential is the token's HMAC, in Base64, as a SCRAM password.
            let again = ScramCredential::with_salt(
                m,
                &hmac_base64(&hmac),
                &login.credential.salt,
                MIN_ITERATIONS,
            )
            .unwrap();
            assert_eq!(again, login.credential);
        }
        assert!(cache.login("t1", Mechanism::Plain).is_none());
        cache.remove("t1");
        assert!(cache.login("t1", Mechanism::ScramSha256).is_none());
        assert!(cache.tokens().is_empty());
    }

    #[test]
    fn disabled_cache_holds_nothing() {
        let cache = DelegationTokenCache::new(Some(String::new()));
        assert!(!cache.enabled());
        cache.update(info("t1"));
        assert!(cache.get("t1").is_none());
        assert!(!format!("{cache:?}").contains("secret"));
    }
}
