//! Quota entities and where they are stored: `users/<u>`, `clients/<c>` and
//! `users/<u>/clients/<c>` under `/config`, each name possibly `<default>`.

use crate::security::sanitize::{desanitize, sanitize};

/// The literal name of a default entity in the store.
pub const DEFAULT: &str = "<default>";
pub const USERS: &str = "users";
pub const CLIENTS: &str = "clients";

/// One part of an entity: a named user or client id, or the default one.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Name {
    Default,
    Named(String),
}

impl Name {
    /// A znode name: `<default>`, or the name as stored (sanitized).
    fn from_znode(stored: &str, user: bool) -> Name {
        if stored == DEFAULT {
            Name::Default
        } else if user {
            // Users stay sanitized, as Kafka's `UserEntity` and its sensor tags keep them.
            Name::Named(stored.to_string())
        } else {
            Name::Named(desanitize(stored))
        }
    }

    fn to_znode(&self, user: bool) -> String {
        match self {
            Name::Default => DEFAULT.to_string(),
            Name::Named(n) if user => n.clone(),
            Name::Named(n) => sanitize(n),
        }
    }
}

/// A quota entity as Kafka's `KafkaQuotaEntity`: the user by its sanitized name, the client id
/// as the client sends it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Entity {
    pub user: Option<Name>,
    pub client: Option<Name>,
}

impl Entity {
    /// The entity of a `/config/changes` notification's type and name (`users`,
    /// `alice/clients/app`), or of a config node; None for anything else.
    pub fn from_change(entity_type: &str, name: &str) -> Option<Entity> {
        match entity_type {
            USERS => match name.split('/').collect::<Vec<_>>().as_slice() {
                [user] if !user.is_empty() => Some(Entity {
                    user: Some(Name::from_znode(user, true)),
                    client: None,
                }),
                [user, CLIENTS, client] if !user.is_empty() && !client.is_empty() => Some(Entity {
                    user: Some(Name::from_znode(user, true)),
                    client: Some(Name::from_znode(client, false)),
                }),
                _ => None,
            },
            CLIENTS if !name.is_empty() && !name.contains('/') => Some(Entity {
                user: None,
                client: Some(Name::from_znode(name, false)),
            }),
            _ => None,
        }
    }

    /// The entity for a user given by principal name and a client id, as an admin client names
    /// them (None: the default entity).
    pub fn from_names(user: Option<Option<&str>>, client: Option<Option<&str>>) -> Entity {
        let name = |n: Option<&str>, is_user: bool| match n {
            None => Name::Default,
            Some(n) if is_user => Name::Named(sanitize(n)),
            Some(n) => Name::Named(n.to_string()),
        };
        Entity {
            user: user.map(|u| name(u, true)),
            client: client.map(|c| name(c, false)),
        }
    }

    /// The `/config/changes` entity type and name of this entity (`users`, `alice/clients/app`).
    pub fn change_path(&self) -> Option<(&'static str, String)> {
        match (&self.user, &self.client) {
            (Some(u), None) => Some((USERS, u.to_znode(true))),
            (Some(u), Some(c)) => Some((
                USERS,
                format!("{}/{CLIENTS}/{}", u.to_znode(true), c.to_znode(false)),
            )),
            (None, Some(c)) => Some((CLIENTS, c.to_znode(false))),
            (None, None) => None,
        }
    }

    /// The user's principal name (desanitized), None for the default user.
    pub fn user_name(&self) -> Option<Option<String>> {
        self.user.as_ref().map(|u| match u {
            Name::Default => None,
            Name::Named(n) => Some(desanitize(n)),
        })
    }

    /// The client id, None for the default client id.
    pub fn client_name(&self) -> Option<Option<String>> {
        self.client.as_ref().map(|c| match c {
            Name::Default => None,
            Name::Named(n) => Some(n.clone()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn change_paths_round_trip_with_kafkas_sanitizing() {
        for (t, n) in [
            ("users", "a%40b"),
            ("users", "<default>"),
            ("users", "a%40b/clients/my%20app"),
            ("users", "<default>/clients/<default>"),
            ("clients", "my%20app"),
            ("clients", "<default>"),
        ] {
            let e = Entity::from_change(t, n).unwrap();
            assert_eq!(e.change_path(), Some((t, n.to_string())));
        }
        let e = Entity::from_change("clients", "my%20app").unwrap();
        assert_eq!(e.client_name(), Some(Some("my app".to_string())));
        assert_eq!(
            Entity::from_names(Some(Some("a@b")), Some(None)).change_path(),
            Some(("users", "a%40b/clients/<default>".to_string()))
        );
        assert_eq!(Entity::from_change("users", "a/b"), None);
        assert_eq!(Entity::from_change("topics", "t"), None);
        assert_eq!(Entity::from_change("clients", ""), None);
    }
}
