//! The ACL cache and the decision over it (Kafka's `AclAuthorizer.authorize`).
//!
//! The cache is read on every request that is checked (each produce, each fetch), so a read is
//! one uncontended read lock and a few hash lookups, never a scan of all ACLs: literal patterns
//! are found by (type, name), prefixed ones by looking up each prefix of the requested name
//! (up to the longest prefix of that type that has ACLs). Writers (the ZooKeeper watcher, the
//! ACL APIs) replace one resource's entries at a time and never hold the lock across I/O.

use std::collections::HashMap;
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use super::{
    AccessControlEntry, AclBinding, AclBindingFilter, Operation, PatternType, Permission,
    ResourcePattern, ResourceType, WILDCARD_RESOURCE,
};
use crate::security::KafkaPrincipal;

/// What the cache holds for one resource pattern.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AclEntries {
    pub acls: Vec<AccessControlEntry>,
    /// The pattern's znode could not be read or parsed: until it can, the pattern denies
    /// everything to everyone (failing closed), and `acls` is empty.
    pub unreadable: bool,
}

impl AclEntries {
    pub fn readable(acls: Vec<AccessControlEntry>) -> Self {
        AclEntries {
            acls,
            unreadable: false,
        }
    }

    pub fn unreadable() -> Self {
        AclEntries {
            acls: Vec::new(),
            unreadable: true,
        }
    }

    fn is_empty(&self) -> bool {
        self.acls.is_empty() && !self.unreadable
    }

    /// Does some entry deny `operation` to this principal and host? An unreadable pattern does.
    fn denies(&self, principal: &KafkaPrincipal, host: &str, operation: Operation) -> bool {
        self.unreadable
            || self.acls.iter().any(|e| {
                e.permission == Permission::Deny
                    && (e.operation == operation || e.operation == Operation::All)
                    && e.names_principal(principal)
                    && e.names_host(host)
            })
    }

    /// Does some entry allow `operation` (or an operation implying it)?
    fn allows(&self, principal: &KafkaPrincipal, host: &str, operation: Operation) -> bool {
        !self.unreadable
            && self.acls.iter().any(|e| {
                e.permission == Permission::Allow
                    && e.operation.allows(operation)
                    && e.names_principal(principal)
                    && e.names_host(host)
            })
    }

    /// `authorizeByResourceType`'s match: the permission given, the operation itself or All
    /// (no implication), the principal or `User:*`, the host or `*`.
    fn has(
        &self,
        principal: &KafkaPrincipal,
        host: &str,
        operation: Operation,
        permission: Permission,
    ) -> bool {
        (self.unreadable && permission == Permission::Deny)
            || self.acls.iter().any(|e| {
                e.permission == permission
                    && (e.operation == operation || e.operation == Operation::All)
                    && e.names_principal(principal)
                    && e.names_host(host)
            })
    }
}

/// The patterns of one resource type with their entries.
#[derive(Debug, Default)]
struct TypeIndex {
    literal: HashMap<String, AclEntries>,
    prefixed: HashMap<String, AclEntries>,
    /// Length in bytes of the longest prefix in `prefixed`: prefixes of a name longer than
    /// this cannot have ACLs, so the lookup stops there.
    longest_prefix: usize,
}

impl TypeIndex {
    /// The prefixed patterns that are prefixes of `name`.
    fn prefixes_of<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a AclEntries> + 'a {
        let limit = if self.prefixed.is_empty() {
            0
        } else {
            self.longest_prefix.min(name.len())
        };
        name.char_indices()
            .map(|(i, c)| i + c.len_utf8())
            .take_while(move |end| *end <= limit)
            .filter_map(move |end| self.prefixed.get(&name[..end]))
    }
}

#[derive(Debug, Default)]
struct Index {
    by_type: HashMap<ResourceType, TypeIndex>,
}

/// Decides requests against the cached ACLs, as `AclAuthorizer.authorize` does. A broker
/// without `authorizer.class.name` has none, and every request is allowed.
#[derive(Debug, Default)]
pub struct Authorizer {
    super_users: Vec<KafkaPrincipal>,
    allow_everyone_if_no_acl_found: bool,
    index: RwLock<Index>,
}

impl Authorizer {
    pub fn new(super_users: Vec<KafkaPrincipal>, allow_everyone_if_no_acl_found: bool) -> Self {
        Authorizer {
            super_users,
            allow_everyone_if_no_acl_found,
            index: RwLock::new(Index::default()),
        }
    }

    // A writer that panicked left at worst one resource half-replaced; every later write
    // replaces whole resources, so the map stays usable.
    fn read(&self) -> RwLockReadGuard<'_, Index> {
        self.index.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Index> {
        self.index.write().unwrap_or_else(|e| e.into_inner())
    }

    pub fn is_super_user(&self, principal: &KafkaPrincipal) -> bool {
        self.super_users.contains(principal)
    }

    /// May `principal`, connected from `host` (the IP as Java's `getHostAddress` writes it), do
    /// `operation` on the literal resource `resource_type:name`?
    pub fn authorize(
        &self,
        principal: &KafkaPrincipal,
        host: &str,
        operation: Operation,
        resource_type: ResourceType,
        name: &str,
    ) -> bool {
        self.authorize_logging(principal, host, operation, resource_type, name, true)
    }

    /// `authorize`, logging a denial only when `log_if_denied` (Kafka's flag of that name):
    /// checks whose denial only leaves an item out of an answer or computes authorized
    /// operations pass false.
    pub fn authorize_logging(
        &self,
        principal: &KafkaPrincipal,
        host: &str,
        operation: Operation,
        resource_type: ResourceType,
        name: &str,
        log_if_denied: bool,
    ) -> bool {
        let allowed = self.decide(principal, host, operation, resource_type, name);
        crate::metrics::global().authorization(allowed);
        if !allowed && log_if_denied {
            tracing::info!(
                target: "kafka.authorizer.logger",
                %principal,
                host,
                ?operation,
                resource = %format_args!("{}:{}", resource_type.dir_name(), name),
                "denied"
            );
        }
        allowed
    }

    fn decide(
        &self,
        principal: &KafkaPrincipal,
        host: &str,
        operation: Operation,
        resource_type: ResourceType,
        name: &str,
    ) -> bool {
        if self.is_super_user(principal) {
            return true;
        }
        let index = self.read();
        let Some(of_type) = index.by_type.get(&resource_type) else {
            return self.allow_everyone_if_no_acl_found;
        };
        let wildcard = if name == WILDCARD_RESOURCE {
            None
        } else {
            of_type.literal.get(WILDCARD_RESOURCE)
        };
        let candidates = || {
            of_type
                .literal
                .get(name)
                .into_iter()
                .chain(wildcard)
                .chain(of_type.prefixes_of(name))
        };
        if candidates().all(AclEntries::is_empty) {
            return self.allow_everyone_if_no_acl_found;
        }
        if candidates().any(|e| e.denies(principal, host, operation)) {
            return false;
        }
        candidates().any(|e| e.allows(principal, host, operation))
    }

    /// May `principal` do `operation` on some resource of `resource_type`
    /// (`authorizeByResourceType`: InitProducerId without a transactional id)? Allowed when
    /// some ALLOW (literal or prefixed) is not overridden by a DENY on the same name or on a
    /// prefix of it; a literal DENY on `*` denies outright. Not on the produce path, so it
    /// looks at every pattern of the type.
    pub fn authorize_by_resource_type(
        &self,
        principal: &KafkaPrincipal,
        host: &str,
        operation: Operation,
        resource_type: ResourceType,
    ) -> bool {
        if self.is_super_user(principal) {
            return true;
        }
        let index = self.read();
        let empty = TypeIndex::default();
        let of_type = index.by_type.get(&resource_type).unwrap_or(&empty);
        let names = |map: &HashMap<String, AclEntries>, permission: Permission| -> Vec<String> {
            map.iter()
                .filter(|(_, e)| e.has(principal, host, operation, permission))
                .map(|(n, _)| n.clone())
                .collect()
        };
        let deny_literals = names(&of_type.literal, Permission::Deny);
        if deny_literals.iter().any(|n| n == WILDCARD_RESOURCE) {
            return false;
        }
        if self.allow_everyone_if_no_acl_found {
            return true;
        }
        let deny_prefixes = names(&of_type.prefixed, Permission::Deny);
        let dominated = |name: &str| {
            name.char_indices()
                .map(|(i, c)| &name[..i + c.len_utf8()])
                .any(|p| deny_prefixes.iter().any(|d| d == p))
        };
        let allow_prefixes = names(&of_type.prefixed, Permission::Allow);
        let allow_literals = names(&of_type.literal, Permission::Allow);
        allow_prefixes.iter().any(|p| !dominated(p))
            || allow_literals
                .iter()
                .any(|l| l == WILDCARD_RESOURCE || (!deny_literals.contains(l) && !dominated(l)))
    }

    /// The cached entries of one pattern (empty when it has none).
    pub fn entries(&self, pattern: &ResourcePattern) -> AclEntries {
        let index = self.read();
        index
            .by_type
            .get(&pattern.resource_type)
            .and_then(|t| match pattern.pattern_type {
                PatternType::Literal => t.literal.get(&pattern.name),
                PatternType::Prefixed => t.prefixed.get(&pattern.name),
                _ => None,
            })
            .cloned()
            .unwrap_or_default()
    }

    /// Replaces one pattern's entries (empty: the pattern has no ACLs any more).
    pub fn set_entries(&self, pattern: &ResourcePattern, entries: AclEntries) {
        let mut index = self.write();
        let of_type = index.by_type.entry(pattern.resource_type).or_default();
        let map = match pattern.pattern_type {
            PatternType::Literal => &mut of_type.literal,
            PatternType::Prefixed => &mut of_type.prefixed,
            // Only literal and prefixed patterns are stored; callers never pass others.
            _ => return,
        };
        if entries.is_empty() {
            map.remove(&pattern.name);
        } else {
            map.insert(pattern.name.clone(), entries);
        }
        of_type.longest_prefix = of_type.prefixed.keys().map(String::len).max().unwrap_or(0);
        if of_type.literal.is_empty() && of_type.prefixed.is_empty() {
            index.by_type.remove(&pattern.resource_type);
        }
    }

    /// Replaces the whole cache (a full reload from the store).
    pub fn replace_all(&self, patterns: Vec<(ResourcePattern, AclEntries)>) {
        let mut fresh = Index::default();
        for (pattern, entries) in patterns {
            if entries.is_empty() {
                continue;
            }
            let of_type = fresh.by_type.entry(pattern.resource_type).or_default();
            match pattern.pattern_type {
                PatternType::Literal => {
                    of_type.literal.insert(pattern.name, entries);
                }
                PatternType::Prefixed => {
                    of_type.longest_prefix = of_type.longest_prefix.max(pattern.name.len());
                    of_type.prefixed.insert(pattern.name, entries);
                }
                _ => {}
            }
        }
        *self.write() = fresh;
    }

    /// Every cached pattern the filter's pattern part matches.
    pub fn patterns(&self, filter: &AclBindingFilter) -> Vec<ResourcePattern> {
        let index = self.read();
        let mut out = Vec::new();
        for (resource_type, of_type) in &index.by_type {
            for (pattern_type, map) in [
                (PatternType::Literal, &of_type.literal),
                (PatternType::Prefixed, &of_type.prefixed),
            ] {
                for name in map.keys() {
                    let pattern = ResourcePattern::new(*resource_type, name.clone(), pattern_type);
                    if filter.pattern.matches(&pattern) {
                        out.push(pattern);
                    }
                }
            }
        }
        out
    }

    /// Every cached ACL the filter matches (DescribeAcls), in a stable order.
    pub fn acls(&self, filter: &AclBindingFilter) -> Vec<AclBinding> {
        let mut out = Vec::new();
        for pattern in self.patterns(filter) {
            for entry in self.entries(&pattern).acls {
                if filter.entry.matches(&entry) {
                    out.push(AclBinding {
                        pattern: pattern.clone(),
                        entry,
                    });
                }
            }
        }
        out.sort();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::security::acl::{AccessControlEntryFilter, ResourcePatternFilter};

    fn ace(
        principal: &str,
        host: &str,
        operation: Operation,
        permission: Permission,
    ) -> AccessControlEntry {
        AccessControlEntry {
            principal: principal.into(),
            host: host.into(),
            operation,
            permission,
        }
    }

    fn allow(principal: &str, operation: Operation) -> AccessControlEntry {
        ace(principal, "*", operation, Permission::Allow)
    }

    fn deny(principal: &str, operation: Operation) -> AccessControlEntry {
        ace(principal, "*", operation, Permission::Deny)
    }

    fn topic(name: &str) -> ResourcePattern {
        ResourcePattern::new(ResourceType::Topic, name, PatternType::Literal)
    }

    fn prefixed(name: &str) -> ResourcePattern {
        ResourcePattern::new(ResourceType::Topic, name, PatternType::Prefixed)
    }

    fn with(acls: &[(ResourcePattern, AccessControlEntry)]) -> Authorizer {
        let a = Authorizer::new(vec![KafkaPrincipal::user("admin")], false);
        for (p, e) in acls {
            let mut entries = a.entries(p);
            entries.acls.push(e.clone());
            a.set_entries(p, entries);
        }
        a
    }

    fn alice() -> KafkaPrincipal {
        KafkaPrincipal::user("alice")
    }

    fn may(a: &Authorizer, op: Operation, name: &str) -> bool {
        a.authorize(&alice(), "10.0.0.1", op, ResourceType::Topic, name)
    }

    #[test]
    fn super_users_match_exactly_and_bypass_denies() {
        let a = with(&[(topic("t"), deny("User:*", Operation::All))]);
        assert!(a.authorize(
            &KafkaPrincipal::user("admin"),
            "h",
            Operation::Write,
            ResourceType::Topic,
            "t"
        ));
        let other_type = KafkaPrincipal {
            principal_type: "Group".into(),
            name: "admin".into(),
        };
        assert!(!a.authorize(&other_type, "h", Operation::Write, ResourceType::Topic, "t"));
    }

    #[test]
    fn no_acls_at_all_follows_allow_everyone() {
        let a = Authorizer::new(vec![], false);
        assert!(!may(&a, Operation::Read, "t"));
        let open = Authorizer::new(vec![], true);
        assert!(may(&open, Operation::Read, "t"));
        // An ACL for someone else counts as "ACLs found": alice is then denied.
        open.set_entries(
            &topic("t"),
            AclEntries::readable(vec![allow("User:bob", Operation::Read)]),
        );
        assert!(!may(&open, Operation::Read, "t"));
        assert!(
            may(&open, Operation::Read, "u"),
            "other topics still have no ACLs"
        );
    }

    #[test]
    fn literal_wildcard_and_prefixed_patterns_are_candidates() {
        let a = with(&[(topic("*"), allow("User:alice", Operation::Read))]);
        assert!(may(&a, Operation::Read, "anything"));
        let a = with(&[(prefixed("ord"), allow("User:alice", Operation::Write))]);
        assert!(may(&a, Operation::Write, "orders"));
        assert!(may(&a, Operation::Write, "ord"));
        assert!(!may(&a, Operation::Write, "or"));
        assert!(!may(&a, Operation::Write, "xorders"));
        let a = with(&[(topic("orders"), allow("User:alice", Operation::Read))]);
        assert!(
            !may(&a, Operation::Read, "orders-2"),
            "a literal is no prefix"
        );
        // A topic literally named "*" is not a wildcard for prefixed lookups of its name.
        assert!(!may(&a, Operation::Read, "*"));
    }

    #[test]
    fn deny_wins_across_literal_wildcard_and_prefixed() {
        let a = with(&[
            (topic("orders"), allow("User:alice", Operation::Read)),
            (prefixed("or"), deny("User:alice", Operation::Read)),
        ]);
        assert!(!may(&a, Operation::Read, "orders"));
        let a = with(&[
            (prefixed("or"), allow("User:alice", Operation::All)),
            (topic("*"), deny("User:*", Operation::Write)),
        ]);
        assert!(
            !may(&a, Operation::Write, "orders"),
            "User:* deny on the wildcard"
        );
        assert!(may(&a, Operation::Read, "orders"));
    }

    #[test]
    fn deny_matches_principal_host_and_operation_exactly_or_by_wildcard() {
        let allowed = (topic("t"), allow("User:alice", Operation::All));
        for (denial, denied) in [
            (
                ace("User:alice", "10.0.0.1", Operation::Read, Permission::Deny),
                true,
            ),
            (ace("User:*", "*", Operation::Read, Permission::Deny), true),
            (
                ace("User:alice", "*", Operation::All, Permission::Deny),
                true,
            ),
            (
                ace("User:bob", "*", Operation::Read, Permission::Deny),
                false,
            ),
            (
                ace("User:alice", "10.0.0.2", Operation::Read, Permission::Deny),
                false,
            ),
            (
                ace("User:alice", "*", Operation::Write, Permission::Deny),
                false,
            ),
            // `Group:*` is no wildcard, and neither is a host pattern.
            (
                ace("Group:*", "*", Operation::Read, Permission::Deny),
                false,
            ),
            (
                ace("User:alice", "10.0.0.*", Operation::Read, Permission::Deny),
                false,
            ),
            // A Deny Read does not deny Describe: implication is for allows only.
        ] {
            let a = with(&[allowed.clone(), (topic("t"), denial.clone())]);
            assert_eq!(!may(&a, Operation::Read, "t"), denied, "{denial:?}");
        }
        let a = with(&[
            (topic("t"), allow("User:alice", Operation::Describe)),
            (topic("t"), deny("User:alice", Operation::Read)),
        ]);
        assert!(may(&a, Operation::Describe, "t"));
    }

    #[test]
    fn allows_imply_describe_and_describe_configs_only() {
        for op in [
            Operation::Read,
            Operation::Write,
            Operation::Delete,
            Operation::Alter,
        ] {
            let a = with(&[(topic("t"), allow("User:alice", op))]);
            assert!(may(&a, Operation::Describe, "t"), "{op:?} implies Describe");
            assert!(!may(&a, Operation::DescribeConfigs, "t"));
        }
        let a = with(&[(topic("t"), allow("User:alice", Operation::AlterConfigs))]);
        assert!(may(&a, Operation::DescribeConfigs, "t"));
        assert!(!may(&a, Operation::Describe, "t"));
        let a = with(&[(topic("t"), allow("User:alice", Operation::Describe))]);
        assert!(!may(&a, Operation::Read, "t"), "no implication downwards");
        let a = with(&[(topic("t"), allow("User:alice", Operation::Create))]);
        assert!(!may(&a, Operation::Describe, "t"));
    }

    #[test]
    fn host_and_principal_must_match_for_allows() {
        let a = with(&[(
            topic("t"),
            ace("User:alice", "10.0.0.2", Operation::Read, Permission::Allow),
        )]);
        assert!(!may(&a, Operation::Read, "t"));
        let a = with(&[(topic("t"), allow("User:*", Operation::Read))]);
        assert!(may(&a, Operation::Read, "t"));
        let a = with(&[(topic("t"), allow("User:alicia", Operation::Read))]);
        assert!(!may(&a, Operation::Read, "t"));
        assert!(
            !a.authorize(
                &alice(),
                "10.0.0.1",
                Operation::Read,
                ResourceType::Group,
                "t"
            ),
            "types are separate"
        );
    }

    #[test]
    fn an_unreadable_pattern_denies_everyone_but_super_users() {
        let a = with(&[(topic("t"), allow("User:alice", Operation::Read))]);
        a.set_entries(&prefixed("t"), AclEntries::unreadable());
        assert!(!may(&a, Operation::Read, "t"));
        assert!(a.authorize(
            &KafkaPrincipal::user("admin"),
            "h",
            Operation::Read,
            ResourceType::Topic,
            "t"
        ));
        let open = Authorizer::new(vec![], true);
        open.set_entries(&topic("t"), AclEntries::unreadable());
        assert!(!may(&open, Operation::Read, "t"), "not 'no ACLs found'");
        assert!(
            open.acls(&AclBindingFilter::any()).is_empty(),
            "nothing to describe"
        );
        open.set_entries(&topic("t"), AclEntries::default());
        assert!(may(&open, Operation::Read, "t"));
    }

    #[test]
    fn removing_the_longest_prefix_keeps_shorter_ones_found() {
        let a = with(&[
            (prefixed("a"), allow("User:alice", Operation::Read)),
            (prefixed("abcdef"), allow("User:alice", Operation::Write)),
        ]);
        a.set_entries(&prefixed("abcdef"), AclEntries::default());
        assert!(may(&a, Operation::Read, "abcdefgh"));
        assert!(!may(&a, Operation::Write, "abcdefgh"));
        // Multi-byte names are looked up on character boundaries.
        let a = with(&[(prefixed("é"), allow("User:alice", Operation::Read))]);
        assert!(may(&a, Operation::Read, "école"));
        assert!(!may(&a, Operation::Read, "e"));
    }

    #[test]
    fn by_resource_type_follows_kafka() {
        let p = alice();
        let by_type = |a: &Authorizer| {
            a.authorize_by_resource_type(&p, "10.0.0.1", Operation::Write, ResourceType::Topic)
        };
        assert!(!by_type(&with(&[])));
        assert!(by_type(&with(&[(
            topic("t"),
            allow("User:alice", Operation::Write)
        )])));
        assert!(by_type(&with(&[(
            prefixed("t"),
            allow("User:*", Operation::All)
        )])));
        // No implication: Describe is not Write, and Write is not implied by Read.
        assert!(!by_type(&with(&[(
            topic("t"),
            allow("User:alice", Operation::Read)
        )])));
        assert!(!by_type(&with(&[
            (topic("t"), allow("User:alice", Operation::Write)),
            (topic("t"), deny("User:alice", Operation::Write)),
        ])));
        assert!(!by_type(&with(&[
            (topic("tx"), allow("User:alice", Operation::Write)),
            (prefixed("t"), deny("User:alice", Operation::Write)),
        ])));
        assert!(by_type(&with(&[
            (topic("tx"), allow("User:alice", Operation::Write)),
            (prefixed("u"), deny("User:alice", Operation::Write)),
        ])));
        assert!(!by_type(&with(&[
            (prefixed("a"), allow("User:alice", Operation::Write)),
            (topic("*"), deny("User:*", Operation::All)),
        ])));
        let open = Authorizer::new(vec![], true);
        assert!(by_type(&open));
        // A literal allow on "*" is never dominated by a prefixed deny.
        assert!(by_type(&with(&[
            (topic("*"), allow("User:alice", Operation::Write)),
            (prefixed("*"), deny("User:alice", Operation::Write)),
        ])));
    }

    #[test]
    fn describe_filters() {
        let a = with(&[
            (topic("orders"), allow("User:alice", Operation::Read)),
            (topic("*"), deny("User:bob", Operation::Write)),
            (
                prefixed("ord"),
                ace(
                    "User:carol",
                    "10.0.0.9",
                    Operation::Write,
                    Permission::Allow,
                ),
            ),
            (prefixed("x"), allow("User:alice", Operation::Read)),
        ]);
        let names = |f: AclBindingFilter| -> Vec<String> {
            let mut names: Vec<String> = a
                .acls(&f)
                .into_iter()
                .map(|b| format!("{}:{}", b.pattern.pattern_type.enum_name(), b.pattern.name))
                .collect();
            names.sort();
            names
        };
        let by_pattern = |pattern_type, name: Option<&str>| AclBindingFilter {
            pattern: ResourcePatternFilter {
                resource_type: ResourceType::Topic,
                name: name.map(String::from),
                pattern_type,
            },
            entry: AccessControlEntryFilter::any(),
        };
        assert_eq!(names(AclBindingFilter::any()).len(), 4);
        assert_eq!(
            names(by_pattern(PatternType::Any, Some("orders"))),
            vec!["LITERAL:orders"]
        );
        assert_eq!(
            names(by_pattern(PatternType::Match, Some("orders"))),
            vec!["LITERAL:*", "LITERAL:orders", "PREFIXED:ord"]
        );
        assert_eq!(
            names(by_pattern(PatternType::Prefixed, None)),
            vec!["PREFIXED:ord", "PREFIXED:x"]
        );
        assert_eq!(
            names(by_pattern(PatternType::Literal, Some("ord"))),
            Vec::<String>::new()
        );
        let by_entry = |entry: AccessControlEntryFilter| AclBindingFilter {
            pattern: ResourcePatternFilter::any(),
            entry,
        };
        assert_eq!(
            names(by_entry(AccessControlEntryFilter {
                principal: Some("User:alice".into()),
                ..AccessControlEntryFilter::any()
            })),
            vec!["LITERAL:orders", "PREFIXED:x"]
        );
        assert_eq!(
            names(by_entry(AccessControlEntryFilter {
                host: Some("10.0.0.9".into()),
                ..AccessControlEntryFilter::any()
            })),
            vec!["PREFIXED:ord"]
        );
        assert_eq!(
            names(by_entry(AccessControlEntryFilter {
                operation: Operation::Write,
                permission: Permission::Deny,
                ..AccessControlEntryFilter::any()
            })),
            vec!["LITERAL:*"]
        );
    }

    #[test]
    fn ten_thousand_acls_do_not_slow_a_check() {
        let a = Authorizer::new(vec![], false);
        let mut all = Vec::new();
        for i in 0..5_000 {
            all.push((
                topic(&format!("topic-{i}")),
                AclEntries::readable(vec![allow("User:alice", Operation::Write)]),
            ));
            all.push((
                prefixed(&format!("p-{i}-")),
                AclEntries::readable(vec![allow("User:alice", Operation::Read)]),
            ));
        }
        a.replace_all(all);
        let start = std::time::Instant::now();
        for i in 0..10_000 {
            assert!(may(&a, Operation::Write, &format!("topic-{}", i % 5_000)));
        }
        // A scan of 10,000 ACLs per check would take seconds in a debug build.
        assert!(
            start.elapsed() < std::time::Duration::from_secs(2),
            "{:?}",
            start.elapsed()
        );
    }
}
