//! The checks handlers make before acting (Kafka's `AuthHelper`): may this request's principal
//! do this operation on this resource? Without an authorizer every request may.

use std::collections::HashSet;

use super::{Api, ClientInfo};
use crate::security::acl::{CLUSTER_NAME, Operation, ResourceType};

/// The operations an ACL can grant on a resource type (Kafka's `AclEntry.supportedOperations`):
/// what an authorized-operations bitfield reports on.
pub fn supported_operations(resource_type: ResourceType) -> &'static [Operation] {
    use Operation::*;
    match resource_type {
        ResourceType::Topic => &[
            Read,
            Write,
            Create,
            Describe,
            Delete,
            Alter,
            DescribeConfigs,
            AlterConfigs,
        ],
        ResourceType::Group => &[Read, Describe, Delete],
        ResourceType::Cluster => &[
            Create,
            ClusterAction,
            DescribeConfigs,
            AlterConfigs,
            IdempotentWrite,
            Alter,
            Describe,
        ],
        ResourceType::TransactionalId => &[Describe, Write],
        ResourceType::DelegationToken => &[Describe],
        ResourceType::User => &[CreateTokens, DescribeTokens],
        ResourceType::Unknown | ResourceType::Any => &[],
    }
}

/// The names for which `allowed` holds, each asked about once.
fn each_once<'a>(
    names: impl IntoIterator<Item = &'a str>,
    allowed: impl Fn(&str) -> bool,
) -> HashSet<String> {
    let mut seen = HashSet::new();
    names
        .into_iter()
        .filter(|n| seen.insert(*n) && allowed(n))
        .map(str::to_string)
        .collect()
}

/// The value of an authorized-operations field a request did not ask for (KIP-430).
pub const OPERATIONS_NOT_REQUESTED: i32 = i32::MIN;

impl Api {
    /// May the client do `operation` on the literal resource `resource_type:name`? Requests
    /// from inside this broker (no principal) always may.
    pub fn authorized(
        &self,
        client: &ClientInfo,
        operation: Operation,
        resource_type: ResourceType,
        name: &str,
    ) -> bool {
        self.check(client, operation, resource_type, name, true)
    }

    /// `authorized`, without logging a denial: for checks that leave what is denied out of an
    /// answer (all-topics Metadata, ListGroups, ListTransactions) or that compute authorized
    /// operations, as Kafka's `logIfDenied = false` checks.
    pub fn authorized_quietly(
        &self,
        client: &ClientInfo,
        operation: Operation,
        resource_type: ResourceType,
        name: &str,
    ) -> bool {
        self.check(client, operation, resource_type, name, false)
    }

    /// The one ACL check: allowed without an authorizer, and for requests from inside this
    /// broker (no principal).
    fn check(
        &self,
        client: &ClientInfo,
        operation: Operation,
        resource_type: ResourceType,
        name: &str,
        log_if_denied: bool,
    ) -> bool {
        let (Some(authorizer), Some(principal)) = (&self.authorizer, &client.principal) else {
            return true;
        };
        authorizer.authorize_logging(
            principal,
            &client.host_address(),
            operation,
            resource_type,
            name,
            log_if_denied,
        )
    }

    /// May the client do `operation` on the cluster?
    pub fn authorized_on_cluster(&self, client: &ClientInfo, operation: Operation) -> bool {
        self.authorized(client, operation, ResourceType::Cluster, CLUSTER_NAME)
    }

    /// The names among `names` the client may do `operation` on, each name authorized once
    /// however often the request repeats it (Kafka's `filterByAuthorized`).
    pub fn authorized_names<'a>(
        &self,
        client: &ClientInfo,
        operation: Operation,
        resource_type: ResourceType,
        names: impl IntoIterator<Item = &'a str>,
    ) -> HashSet<String> {
        each_once(names, |n| {
            self.authorized(client, operation, resource_type, n)
        })
    }

    /// `authorized_names` without logging denials: for names the answer leaves out when denied.
    pub fn visible_names<'a>(
        &self,
        client: &ClientInfo,
        operation: Operation,
        resource_type: ResourceType,
        names: impl IntoIterator<Item = &'a str>,
    ) -> HashSet<String> {
        each_once(names, |n| {
            self.authorized_quietly(client, operation, resource_type, n)
        })
    }

    /// May the client do `operation` on some resource of `resource_type` (Kafka's
    /// `authorizeByResourceType`: an idempotent producer with WRITE on any topic)?
    pub fn authorized_by_resource_type(
        &self,
        client: &ClientInfo,
        operation: Operation,
        resource_type: ResourceType,
    ) -> bool {
        let (Some(authorizer), Some(principal)) = (&self.authorizer, &client.principal) else {
            return true;
        };
        authorizer.authorize_by_resource_type(
            principal,
            &client.host_address(),
            operation,
            resource_type,
        )
    }

    /// KIP-430's bitfield of what the client may do to a resource: bit `1 << code` for each
    /// operation its type supports that is allowed. Without an authorizer, every supported
    /// operation, as Kafka's `AuthHelper.authorizedOperations` answers.
    pub fn authorized_operations(
        &self,
        client: &ClientInfo,
        resource_type: ResourceType,
        name: &str,
    ) -> i32 {
        supported_operations(resource_type)
            .iter()
            .filter(|op| self.authorized_quietly(client, **op, resource_type, name))
            .fold(0, |bits, op| bits | (1 << op.code()))
    }
}
