//! The checks handlers make before acting (Kafka's `AuthHelper`): may this request's principal
//! do this operation on this resource? Without an authorizer every request may.

use super::{Api, ClientInfo};
use crate::security::acl::{CLUSTER_NAME, Operation, ResourceType};

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
        let (Some(authorizer), Some(principal)) = (&self.authorizer, &client.principal) else {
            return true;
        };
        authorizer.authorize(
            principal,
            &client.host_address(),
            operation,
            resource_type,
            name,
        )
    }

    /// May the client do `operation` on the cluster?
    pub fn authorized_on_cluster(&self, client: &ClientInfo, operation: Operation) -> bool {
        self.authorized(client, operation, ResourceType::Cluster, CLUSTER_NAME)
    }
}
