//! Authorization as Kafka's `AclAuthorizer` decides it: the ACL model (resource patterns,
//! access control entries, Kafka's enum codes and spellings) and the decision over the ACLs a
//! broker has cached.
//!
//! Nothing here reads the metadata store: `metadata` keeps the cache current from
//! `/kafka-acl*` and the API layer asks it questions, so the rules live in one place and both
//! ends (the broker's checks, the ACL admin APIs) use the same types.

use std::fmt;

use super::KafkaPrincipal;

mod authorizer;
mod filter;

pub use authorizer::{AclEntries, Authorizer};
pub use filter::{AccessControlEntryFilter, AclBindingFilter, ResourcePatternFilter};

/// The name of the one cluster resource (Kafka's `Resource.CLUSTER_NAME`).
pub const CLUSTER_NAME: &str = "kafka-cluster";

/// What an ACL is about (Kafka's `ResourceType`), with its wire code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ResourceType {
    Unknown,
    Any,
    Topic,
    Group,
    Cluster,
    TransactionalId,
    DelegationToken,
    User,
}

impl ResourceType {
    /// The types an ACL can name (not `Unknown`/`Any`, which only filters use).
    pub const CONCRETE: [ResourceType; 6] = [
        ResourceType::Topic,
        ResourceType::Group,
        ResourceType::Cluster,
        ResourceType::TransactionalId,
        ResourceType::DelegationToken,
        ResourceType::User,
    ];

    pub fn code(self) -> i8 {
        match self {
            ResourceType::Unknown => 0,
            ResourceType::Any => 1,
            ResourceType::Topic => 2,
            ResourceType::Group => 3,
            ResourceType::Cluster => 4,
            ResourceType::TransactionalId => 5,
            ResourceType::DelegationToken => 6,
            ResourceType::User => 7,
        }
    }

    pub fn from_code(code: i8) -> ResourceType {
        match code {
            1 => ResourceType::Any,
            2 => ResourceType::Topic,
            3 => ResourceType::Group,
            4 => ResourceType::Cluster,
            5 => ResourceType::TransactionalId,
            6 => ResourceType::DelegationToken,
            7 => ResourceType::User,
            _ => ResourceType::Unknown,
        }
    }

    /// The directory name under `/kafka-acl` (Kafka's Scala `ResourceType.name`: PascalCase).
    pub fn dir_name(self) -> &'static str {
        match self {
            ResourceType::Unknown => "Unknown",
            ResourceType::Any => "Any",
            ResourceType::Topic => "Topic",
            ResourceType::Group => "Group",
            ResourceType::Cluster => "Cluster",
            ResourceType::TransactionalId => "TransactionalId",
            ResourceType::DelegationToken => "DelegationToken",
            ResourceType::User => "User",
        }
    }

    /// The Java enum's name (`TRANSACTIONAL_ID`), which change notifications carry.
    pub fn enum_name(self) -> &'static str {
        match self {
            ResourceType::Unknown => "UNKNOWN",
            ResourceType::Any => "ANY",
            ResourceType::Topic => "TOPIC",
            ResourceType::Group => "GROUP",
            ResourceType::Cluster => "CLUSTER",
            ResourceType::TransactionalId => "TRANSACTIONAL_ID",
            ResourceType::DelegationToken => "DELEGATION_TOKEN",
            ResourceType::User => "USER",
        }
    }
}

/// What a principal does to a resource (Kafka's `AclOperation`), with its wire code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Operation {
    Unknown,
    Any,
    All,
    Read,
    Write,
    Create,
    Delete,
    Alter,
    Describe,
    ClusterAction,
    DescribeConfigs,
    AlterConfigs,
    IdempotentWrite,
    CreateTokens,
    DescribeTokens,
}

impl Operation {
    pub fn code(self) -> i8 {
        match self {
            Operation::Unknown => 0,
            Operation::Any => 1,
            Operation::All => 2,
            Operation::Read => 3,
            Operation::Write => 4,
            Operation::Create => 5,
            Operation::Delete => 6,
            Operation::Alter => 7,
            Operation::Describe => 8,
            Operation::ClusterAction => 9,
            Operation::DescribeConfigs => 10,
            Operation::AlterConfigs => 11,
            Operation::IdempotentWrite => 12,
            Operation::CreateTokens => 13,
            Operation::DescribeTokens => 14,
        }
    }

    pub fn from_code(code: i8) -> Operation {
        match code {
            1 => Operation::Any,
            2 => Operation::All,
            3 => Operation::Read,
            4 => Operation::Write,
            5 => Operation::Create,
            6 => Operation::Delete,
            7 => Operation::Alter,
            8 => Operation::Describe,
            9 => Operation::ClusterAction,
            10 => Operation::DescribeConfigs,
            11 => Operation::AlterConfigs,
            12 => Operation::IdempotentWrite,
            13 => Operation::CreateTokens,
            14 => Operation::DescribeTokens,
            _ => Operation::Unknown,
        }
    }
}

/// Allow or deny (Kafka's `AclPermissionType`), with its wire code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Permission {
    Unknown,
    Any,
    Deny,
    Allow,
}

impl Permission {
    pub fn code(self) -> i8 {
        match self {
            Permission::Unknown => 0,
            Permission::Any => 1,
            Permission::Deny => 2,
            Permission::Allow => 3,
        }
    }

    pub fn from_code(code: i8) -> Permission {
        match code {
            1 => Permission::Any,
            2 => Permission::Deny,
            3 => Permission::Allow,
            _ => Permission::Unknown,
        }
    }
}

/// How an ACL's resource name matches (Kafka's `PatternType`), with its wire code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PatternType {
    Unknown,
    Any,
    Match,
    Literal,
    Prefixed,
}

impl PatternType {
    pub fn code(self) -> i8 {
        match self {
            PatternType::Unknown => 0,
            PatternType::Any => 1,
            PatternType::Match => 2,
            PatternType::Literal => 3,
            PatternType::Prefixed => 4,
        }
    }

    pub fn from_code(code: i8) -> PatternType {
        match code {
            1 => PatternType::Any,
            2 => PatternType::Match,
            3 => PatternType::Literal,
            4 => PatternType::Prefixed,
            _ => PatternType::Unknown,
        }
    }
}

/// A resource as an ACL names it: `Topic:orders` literal, `Topic:orders-` prefixed, `Topic:*`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResourcePattern {
    pub resource_type: ResourceType,
    pub name: String,
    pub pattern_type: PatternType,
}

impl fmt::Display for ResourcePattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}",
            self.resource_type.dir_name(),
            self.pattern_type.code(),
            self.name
        )
    }
}

/// Who may or may not do what from where (Kafka's `AccessControlEntry`). The principal is kept
/// as its string (`User:alice`, `User:*`) since ACLs may name principal types no builder makes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccessControlEntry {
    pub principal: String,
    pub host: String,
    pub operation: Operation,
    pub permission: Permission,
}

/// The resource name that stands for every resource of a type in a literal ACL.
pub const WILDCARD_RESOURCE: &str = "*";
/// The principal that stands for every principal in an ACL (only this one: `Group:*` is not).
pub const WILDCARD_PRINCIPAL: &str = "User:*";
/// The host that stands for every host in an ACL.
pub const WILDCARD_HOST: &str = "*";

/// Whether `name` spells `pascal` (`TransactionalId`) in one of the two ways Kafka's
/// `SecurityUtils` reads: PascalCase, or any case without underscores (`TRANSACTIONALID`).
/// The enum spelling with underscores (`TRANSACTIONAL_ID`) is accepted too: Kafka writes it in
/// change notifications, and Kafka 2.4 wrote PascalCase there, so a reader of both needs both.
fn spells(name: &str, pascal: &str) -> bool {
    name == pascal || name.replace('_', "").eq_ignore_ascii_case(pascal)
}

impl ResourceType {
    /// Reads a type from a znode path or a change notification (`Topic`, `TOPIC`,
    /// `TRANSACTIONAL_ID`, `TransactionalId`); `None` for anything else, `Any` and `Unknown`
    /// included.
    pub fn from_name(name: &str) -> Option<ResourceType> {
        ResourceType::CONCRETE
            .into_iter()
            .find(|t| spells(name, t.dir_name()))
    }
}

impl Operation {
    /// The operations an ACL can name (not `Unknown`/`Any`, which only filters use).
    pub const CONCRETE: [Operation; 13] = [
        Operation::All,
        Operation::Read,
        Operation::Write,
        Operation::Create,
        Operation::Delete,
        Operation::Alter,
        Operation::Describe,
        Operation::ClusterAction,
        Operation::DescribeConfigs,
        Operation::AlterConfigs,
        Operation::IdempotentWrite,
        Operation::CreateTokens,
        Operation::DescribeTokens,
    ];

    /// The PascalCase name ACL znodes carry (`DescribeConfigs`).
    pub fn name(self) -> &'static str {
        match self {
            Operation::Unknown => "Unknown",
            Operation::Any => "Any",
            Operation::All => "All",
            Operation::Read => "Read",
            Operation::Write => "Write",
            Operation::Create => "Create",
            Operation::Delete => "Delete",
            Operation::Alter => "Alter",
            Operation::Describe => "Describe",
            Operation::ClusterAction => "ClusterAction",
            Operation::DescribeConfigs => "DescribeConfigs",
            Operation::AlterConfigs => "AlterConfigs",
            Operation::IdempotentWrite => "IdempotentWrite",
            Operation::CreateTokens => "CreateTokens",
            Operation::DescribeTokens => "DescribeTokens",
        }
    }

    /// Reads an operation as ACL znodes spell it; `None` for anything an ACL cannot name.
    pub fn from_name(name: &str) -> Option<Operation> {
        Operation::CONCRETE
            .into_iter()
            .find(|o| spells(name, o.name()))
    }

    /// Whether an ALLOW for `self` also allows `requested` (`AclEntry.supportedOperations`
    /// implication): All allows everything, Read/Write/Delete/Alter allow Describe,
    /// AlterConfigs allows DescribeConfigs. Deny entries never imply.
    pub fn allows(self, requested: Operation) -> bool {
        self == requested
            || self == Operation::All
            || (requested == Operation::Describe
                && matches!(
                    self,
                    Operation::Read | Operation::Write | Operation::Delete | Operation::Alter
                ))
            || (requested == Operation::DescribeConfigs && self == Operation::AlterConfigs)
    }
}

impl Permission {
    /// The name ACL znodes carry.
    pub fn name(self) -> &'static str {
        match self {
            Permission::Unknown => "Unknown",
            Permission::Any => "Any",
            Permission::Deny => "Deny",
            Permission::Allow => "Allow",
        }
    }

    /// Reads `Allow`/`Deny` (or `ALLOW`/`DENY`); `None` for anything else.
    pub fn from_name(name: &str) -> Option<Permission> {
        [Permission::Deny, Permission::Allow]
            .into_iter()
            .find(|p| spells(name, p.name()))
    }
}

impl PatternType {
    /// The Java enum's name (`PREFIXED`), which prefixed change notifications carry.
    pub fn enum_name(self) -> &'static str {
        match self {
            PatternType::Unknown => "UNKNOWN",
            PatternType::Any => "ANY",
            PatternType::Match => "MATCH",
            PatternType::Literal => "LITERAL",
            PatternType::Prefixed => "PREFIXED",
        }
    }

    /// Reads a pattern type's enum name, in any case.
    pub fn from_name(name: &str) -> Option<PatternType> {
        [PatternType::Literal, PatternType::Prefixed]
            .into_iter()
            .find(|p| name.eq_ignore_ascii_case(p.enum_name()))
    }
}

impl ResourcePattern {
    pub fn new(
        resource_type: ResourceType,
        name: impl Into<String>,
        pattern_type: PatternType,
    ) -> Self {
        ResourcePattern {
            resource_type,
            name: name.into(),
            pattern_type,
        }
    }
}

impl AccessControlEntry {
    /// Whether this entry names `principal` (exactly, or through `User:*`). Kafka parses the
    /// entry's principal at its first `:` and compares type and name.
    pub fn names_principal(&self, principal: &KafkaPrincipal) -> bool {
        self.principal == WILDCARD_PRINCIPAL
            || self
                .principal
                .split_once(':')
                .is_some_and(|(t, n)| t == principal.principal_type && n == principal.name)
    }

    /// Whether this entry covers a client connected from `host` (exact string or `*`).
    pub fn names_host(&self, host: &str) -> bool {
        self.host == WILDCARD_HOST || self.host == host
    }

    /// The entry a resource gets while its znode cannot be read: nobody may do anything.
    pub fn deny_everything() -> Self {
        AccessControlEntry {
            principal: WILDCARD_PRINCIPAL.to_string(),
            host: WILDCARD_HOST.to_string(),
            operation: Operation::All,
            permission: Permission::Deny,
        }
    }
}

/// One ACL: an entry on a resource pattern (Kafka's `AclBinding`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AclBinding {
    pub pattern: ResourcePattern,
    pub entry: AccessControlEntry,
}
