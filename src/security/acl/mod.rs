//! Authorization as Kafka's `AclAuthorizer` decides it: the ACL model (resource patterns,
//! access control entries, Kafka's enum codes and spellings) and the decision over the ACLs a
//! broker has cached.
//!
//! Nothing here reads the metadata store: `metadata` keeps the cache current from
//! `/kafka-acl*` and the API layer asks it questions, so the rules live in one place and both
//! ends (the broker's checks, the ACL admin APIs) use the same types.

use std::fmt;

use super::KafkaPrincipal;

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

/// Decides requests against the cached ACLs, as `AclAuthorizer.authorize` does. A broker
/// without `authorizer.class.name` has none, and every request is allowed.
#[derive(Debug, Default)]
pub struct Authorizer {
    super_users: Vec<KafkaPrincipal>,
    allow_everyone_if_no_acl_found: bool,
}

impl Authorizer {
    pub fn new(super_users: Vec<KafkaPrincipal>, allow_everyone_if_no_acl_found: bool) -> Self {
        Authorizer {
            super_users,
            allow_everyone_if_no_acl_found,
        }
    }

    /// May `principal`, connected from `host` (the IP as Java's `getHostAddress` writes it), do
    /// `operation` on the literal resource `resource_type:name`?
    pub fn authorize(
        &self,
        principal: &KafkaPrincipal,
        _host: &str,
        _operation: Operation,
        _resource_type: ResourceType,
        _name: &str,
    ) -> bool {
        // Placeholder until the ACL cache lands: only super users, or everyone when the
        // operator allows access to resources without ACLs (and there are none yet).
        self.super_users.contains(principal) || self.allow_everyone_if_no_acl_found
    }

    /// May `principal` do `operation` on some resource of `resource_type`
    /// (`authorizeByResourceType`: InitProducerId without a transactional id)?
    pub fn authorize_by_resource_type(
        &self,
        principal: &KafkaPrincipal,
        host: &str,
        operation: Operation,
        resource_type: ResourceType,
    ) -> bool {
        self.authorize(principal, host, operation, resource_type, "*")
    }
}
