//! The broker's in-memory copy of the SCRAM credentials stored in ZooKeeper.
//!
//! Kafka keeps each user's credentials in `/config/users/<sanitized user>`, next to the user's
//! quotas, as config keys named after the mechanism:
//!
//! ```text
//! {"version":1,"config":{"SCRAM-SHA-256":"salt=...,stored_key=...,server_key=...,iterations=8192"}}
//! ```
//!
//! Every broker loads all of them at startup and re-reads a user's node whenever a config-change
//! notification names it; [`CredentialCache::apply_user_config`] is that update. Connections
//! then look credentials up here on every SCRAM authentication, so the lock is held only for a
//! map lookup and a clone.

use std::collections::{BTreeMap, HashMap};
use std::sync::{PoisonError, RwLock};

use super::sasl::Mechanism;
use super::scram::ScramCredential;

/// One user's credentials, one slot per SCRAM mechanism.
#[derive(Debug, Clone, Default)]
struct UserCredentials {
    sha256: Option<ScramCredential>,
    sha512: Option<ScramCredential>,
}

impl UserCredentials {
    fn slot(&mut self, mechanism: Mechanism) -> Option<&mut Option<ScramCredential>> {
        match mechanism {
            Mechanism::ScramSha256 => Some(&mut self.sha256),
            Mechanism::ScramSha512 => Some(&mut self.sha512),
            Mechanism::Plain => None,
        }
    }

    fn get(&self, mechanism: Mechanism) -> Option<&ScramCredential> {
        match mechanism {
            Mechanism::ScramSha256 => self.sha256.as_ref(),
            Mechanism::ScramSha512 => self.sha512.as_ref(),
            Mechanism::Plain => None,
        }
    }

    fn is_empty(&self) -> bool {
        self.sha256.is_none() && self.sha512.is_none()
    }
}

/// SCRAM credentials by user and mechanism, shared by all connections. Users are keyed by
/// their principal name (`alice`, the desanitized znode name), not by `User:alice`.
#[derive(Debug, Default)]
pub struct CredentialCache {
    users: RwLock<HashMap<String, UserCredentials>>,
}

impl CredentialCache {
    pub fn new() -> CredentialCache {
        CredentialCache::default()
    }

    /// Sets (`Some`) or removes (`None`) one mechanism's credential for `user`. PLAIN has no
    /// stored credentials, so it is ignored.
    pub fn set(&self, user: &str, mechanism: Mechanism, credential: Option<ScramCredential>) {
        // A panic elsewhere while holding the lock cannot leave a map insert half done, so a
        // poisoned lock is still safe to use.
        if !mechanism.is_scram() {
            return;
        }
        let mut users = self.users.write().unwrap_or_else(PoisonError::into_inner);
        match credential {
            Some(credential) => {
                if let Some(slot) = users.entry(user.to_string()).or_default().slot(mechanism) {
                    *slot = Some(credential);
                }
            }
            None => {
                if let Some(entry) = users.get_mut(user) {
                    if let Some(slot) = entry.slot(mechanism) {
                        *slot = None;
                    }
                    if entry.is_empty() {
                        users.remove(user);
                    }
                }
            }
        }
    }

    pub fn get(&self, user: &str, mechanism: Mechanism) -> Option<ScramCredential> {
        let users = self.users.read().unwrap_or_else(PoisonError::into_inner);
        users.get(user)?.get(mechanism).cloned()
    }

    pub fn remove_user(&self, user: &str) {
        let mut users = self.users.write().unwrap_or_else(PoisonError::into_inner);
        users.remove(user);
    }

    /// The users with at least one credential, sorted (DescribeUserScramCredentials lists them
    /// so).
    pub fn users(&self) -> Vec<String> {
        let users = self.users.read().unwrap_or_else(PoisonError::into_inner);
        let mut names: Vec<String> = users.keys().cloned().collect();
        names.sort();
        names
    }

    /// Applies the config map of `/config/users/<sanitized user>` to `user`, the desanitized
    /// name. Each SCRAM mechanism whose key is present is set, each absent one removed, as
    /// Kafka's `CredentialProvider.updateCredentials`. A value that does not parse is logged and
    /// treated as absent: better no login than one with a credential we misread. Other keys
    /// (quotas) are not ours and are ignored.
    pub fn apply_user_config(&self, user: &str, config: &BTreeMap<String, String>) {
        for mechanism in Mechanism::SCRAM {
            let credential = config.get(mechanism.name()).and_then(|text| {
                ScramCredential::parse(text)
                    .inspect_err(|error| {
                        tracing::warn!(
                            user,
                            mechanism = mechanism.name(),
                            %error,
                            "ignoring unreadable SCRAM credential in ZooKeeper"
                        );
                    })
                    .ok()
            });
            self.set(user, mechanism, credential);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cred(password: &str, mechanism: Mechanism) -> ScramCredential {
        ScramCredential::with_salt(mechanism, password, b"salt", 4096).unwrap()
    }

    #[test]
    fn set_get_remove() {
        let cache = CredentialCache::new();
        assert_eq!(cache.get("alice", Mechanism::ScramSha256), None);
        let a256 = cred("a", Mechanism::ScramSha256);
        let a512 = cred("a", Mechanism::ScramSha512);
        cache.set("alice", Mechanism::ScramSha256, Some(a256.clone()));
        assert_eq!(
            cache.get("alice", Mechanism::ScramSha256),
            Some(a256.clone())
        );
        assert_eq!(cache.get("alice", Mechanism::ScramSha512), None);
        assert_eq!(cache.get("Alice", Mechanism::ScramSha256), None);
        cache.set("alice", Mechanism::ScramSha512, Some(a512.clone()));
        cache.set("bob", Mechanism::ScramSha512, Some(a512.clone()));
        assert_eq!(cache.users(), vec!["alice".to_string(), "bob".to_string()]);

        // PLAIN is not stored.
        cache.set("carol", Mechanism::Plain, Some(a256.clone()));
        assert_eq!(cache.get("carol", Mechanism::Plain), None);
        assert_eq!(cache.get("alice", Mechanism::Plain), None);
        assert_eq!(cache.users().len(), 2);

        cache.set("alice", Mechanism::ScramSha256, None);
        assert_eq!(cache.get("alice", Mechanism::ScramSha256), None);
        assert_eq!(cache.get("alice", Mechanism::ScramSha512), Some(a512));
        // Removing the last credential removes the user.
        cache.set("bob", Mechanism::ScramSha512, None);
        assert_eq!(cache.users(), vec!["alice".to_string()]);
        cache.remove_user("alice");
        assert!(cache.users().is_empty());
        cache.remove_user("nobody");
        cache.set("nobody", Mechanism::ScramSha256, None);
        assert!(cache.users().is_empty());
    }

    #[test]
    fn apply_user_config_sets_and_removes() {
        let cache = CredentialCache::new();
        let c256 = cred("x", Mechanism::ScramSha256);
        let c512 = cred("x", Mechanism::ScramSha512);
        let mut config = BTreeMap::new();
        config.insert("SCRAM-SHA-256".to_string(), c256.to_string());
        config.insert("SCRAM-SHA-512".to_string(), c512.to_string());
        config.insert("producer_byte_rate".to_string(), "1024".to_string());
        cache.apply_user_config("user@example.com", &config);
        assert_eq!(
            cache.get("user@example.com", Mechanism::ScramSha256),
            Some(c256.clone())
        );
        assert_eq!(
            cache.get("user@example.com", Mechanism::ScramSha512),
            Some(c512)
        );

        config.remove("SCRAM-SHA-512");
        cache.apply_user_config("user@example.com", &config);
        assert_eq!(
            cache.get("user@example.com", Mechanism::ScramSha256),
            Some(c256)
        );
        assert_eq!(cache.get("user@example.com", Mechanism::ScramSha512), None);

        cache.apply_user_config("user@example.com", &BTreeMap::new());
        assert!(cache.users().is_empty());
    }

    #[test]
    fn unreadable_credential_fails_closed() {
        let cache = CredentialCache::new();
        let good = cred("x", Mechanism::ScramSha256);
        cache.set("alice", Mechanism::ScramSha256, Some(good.clone()));
        let mut config = BTreeMap::new();
        config.insert("SCRAM-SHA-256".to_string(), "salt=garbage".to_string());
        cache.apply_user_config("alice", &config);
        // The old credential does not survive a bad update.
        assert_eq!(cache.get("alice", Mechanism::ScramSha256), None);
    }

    #[test]
    fn shared_between_threads() {
        let cache = std::sync::Arc::new(CredentialCache::new());
        let c = cred("x", Mechanism::ScramSha256);
        let writers: Vec<_> = (0..4)
            .map(|i| {
                let cache = cache.clone();
                let c = c.clone();
                std::thread::spawn(move || {
                    for j in 0..50 {
                        cache.set(
                            &format!("u{i}-{j}"),
                            Mechanism::ScramSha256,
                            Some(c.clone()),
                        );
                    }
                })
            })
            .collect();
        for writer in writers {
            writer.join().unwrap();
        }
        assert_eq!(cache.users().len(), 200);
        assert_eq!(cache.get("u3-49", Mechanism::ScramSha256), Some(c));
    }
}
