//! AlterConfigs (deprecated since Kafka 2.3, still what older tools send): replaces a topic's
//! overrides or a dynamic broker layer with exactly the configs given.

use std::collections::BTreeMap;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{AlterConfigsRequest, AlterConfigsResponse};
use kafka_protocol::protocol::StrBytes;

use super::configs::{self, ResourceError};
use super::{Api, ClientInfo};
use crate::security::acl::Operation;

pub async fn handle(
    api: &Api,
    client: &ClientInfo,
    request: AlterConfigsRequest,
) -> AlterConfigsResponse {
    // A key named twice takes its last value, as brokers before Kafka 3.2 did (3.2's
    // ConfigAdminManager refuses it): deliberately, because a common client pattern (read
    // every config back, append the one to change, send all) depends on it. The map below
    // keeps the last value. A resource named twice is still refused.
    let early = configs::duplicates(
        request
            .resources
            .iter()
            .map(|r| (r.resource_type, &*r.resource_name, Vec::new())),
    );
    let mut response = AlterConfigsResponse::default();
    for (resource, early) in request.resources.into_iter().zip(early) {
        let name = resource.resource_name.to_string();
        let authorized = configs::authorize_resource(
            api,
            client,
            Operation::AlterConfigs,
            resource.resource_type,
            &name,
        );
        let result = match (authorized, early) {
            (Err(e), _) | (_, Some(e)) => Err(e),
            (Ok(()), None) => {
                let nulls: Vec<&str> = resource
                    .configs
                    .iter()
                    .filter(|c| c.value.is_none())
                    .map(|c| &*c.name)
                    .collect();
                if nulls.is_empty() {
                    // Later entries overwrite earlier ones: the last value of a key wins.
                    let props: BTreeMap<String, String> = resource
                        .configs
                        .iter()
                        .filter_map(|c| Some((c.name.to_string(), c.value.as_ref()?.to_string())))
                        .collect();
                    configs::alter_resource(
                        api,
                        resource.resource_type,
                        &name,
                        props,
                        request.validate_only,
                    )
                    .await
                } else {
                    Err(ResourceError::new(
                        ResponseError::InvalidRequest.code(),
                        format!("Null value not supported for : {}", nulls.join(", ")),
                    ))
                }
            }
        };
        let mut r = AlterConfigsResourceResponse::default();
        r.resource_type = resource.resource_type;
        r.resource_name = resource.resource_name;
        if let Err(e) = result {
            tracing::info!(resource = %configs::resource_label(r.resource_type, &name), error = %e.message, "alter configs refused");
            r.error_code = e.code;
            r.error_message = Some(StrBytes::from_string(e.message));
        } else {
            r.error_message = None;
        }
        response.responses.push(r);
    }
    response
}
