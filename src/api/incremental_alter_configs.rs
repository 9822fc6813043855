//! IncrementalAlterConfigs (KIP-339): SET, DELETE, APPEND and SUBTRACT on single keys of a
//! topic's overrides or a dynamic broker layer, as Kafka's `ConfigAdminManager` applies them.

use std::collections::BTreeMap;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::incremental_alter_configs_request::AlterConfigsResource;
use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse};
use kafka_protocol::protocol::StrBytes;

use super::configs::{self, BROKER, ResourceError, TOPIC};
use super::{Api, ClientInfo};
use crate::config::defs::{self, ConfigDef, ConfigType};
use crate::replica::config_changes;
use crate::security::acl::Operation;

const SET: i8 = 0;
const DELETE: i8 = 1;
const APPEND: i8 = 2;
const SUBTRACT: i8 = 3;

pub async fn handle(
    api: &Api,
    client: &ClientInfo,
    request: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
    let early = configs::duplicates(request.resources.iter().map(|r| {
        (
            r.resource_type,
            &*r.resource_name,
            r.configs.iter().map(|c| &*c.name).collect(),
        )
    }));
    let mut response = IncrementalAlterConfigsResponse::default();
    for (resource, early) in request.resources.iter().zip(early) {
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
            (Ok(()), None) => alter(api, resource, &name, request.validate_only).await,
        };
        let mut r = AlterConfigsResourceResponse::default();
        r.resource_type = resource.resource_type;
        r.resource_name = resource.resource_name.clone();
        match result {
            Ok(()) => r.error_message = None,
            Err(e) => {
                tracing::info!(resource = %configs::resource_label(r.resource_type, &name), error = %e.message, "incremental alter configs refused");
                r.error_code = e.code;
                r.error_message = Some(StrBytes::from_string(e.message));
            }
        }
        response.responses.push(r);
    }
    response
}

async fn alter(
    api: &Api,
    resource: &AlterConfigsResource,
    name: &str,
    validate_only: bool,
) -> Result<(), ResourceError> {
    let nulls: Vec<&str> = resource
        .configs
        .iter()
        .filter(|c| c.config_operation != DELETE && c.value.is_none())
        .map(|c| &*c.name)
        .collect();
    if !nulls.is_empty() {
        return Err(ResourceError::new(
            ResponseError::InvalidRequest.code(),
            format!("Null value not supported for : {}", nulls.join(", ")),
        ));
    }
    if let Some(c) = resource
        .configs
        .iter()
        .find(|c| !(SET..=SUBTRACT).contains(&c.config_operation))
    {
        return Err(ResourceError::new(
            ResponseError::InvalidRequest.code(),
            format!("Unknown operations type {}", c.config_operation),
        ));
    }
    let read_error = |e: crate::metadata::StoreError| {
        ResourceError::new(
            ResponseError::UnknownServerError.code(),
            format!("could not read the current configs: {e}"),
        )
    };
    let current = match resource.resource_type {
        TOPIC if !name.is_empty() => api
            .configs
            .entity_config(config_changes::TOPICS, name)
            .await
            .map_err(read_error)?,
        BROKER => api
            .configs
            .broker()
            .dynamic(configs::broker_level(api, name)?),
        // Validated (and refused) by alter_resource.
        _ => BTreeMap::new(),
    };
    let definition = |key: &str| match resource.resource_type {
        TOPIC => defs::topic_config(key).map(|t| t.def),
        _ => defs::broker_config(key).map(|b| b.def),
    };
    let updated = apply_ops(current, resource, definition)?;
    configs::alter_resource(api, resource.resource_type, name, updated, validate_only).await
}

/// `ConfigAdminManager.prepareIncrementalConfigs`. APPEND and SUBTRACT work on list-typed keys
/// only and start from the key's default when it is not set.
fn apply_ops(
    mut props: BTreeMap<String, String>,
    resource: &AlterConfigsResource,
    definition: impl Fn(&str) -> Option<ConfigDef>,
) -> Result<BTreeMap<String, String>, ResourceError> {
    for op in &resource.configs {
        let key = op.name.to_string();
        let value = op.value.as_deref().unwrap_or_default();
        let list_default = |verb: &str| -> Result<String, ResourceError> {
            match definition(&key) {
                None => Err(ResourceError::new(
                    ResponseError::InvalidConfig.code(),
                    format!("Unknown config name: {key}"),
                )),
                Some(d) if d.kind != ConfigType::List => Err(ResourceError::new(
                    ResponseError::InvalidConfig.code(),
                    format!("Config value {verb} is not allowed for config key: {key}"),
                )),
                Some(d) => Ok(d.default.unwrap_or_default().to_string()),
            }
        };
        match op.config_operation {
            SET => {
                props.insert(key, value.to_string());
            }
            DELETE => {
                props.remove(&key);
            }
            APPEND => {
                let default = list_default("append")?;
                let old = props.get(&key).cloned().unwrap_or(default);
                let mut items: Vec<&str> = if old.is_empty() {
                    Vec::new()
                } else {
                    old.split(',').collect()
                };
                for v in value.split(',') {
                    if !items.contains(&v) {
                        items.push(v);
                    }
                }
                let joined = items.join(",");
                props.insert(key, joined);
            }
            _ => {
                let default = list_default("subtract")?;
                let old = props.get(&key).cloned().unwrap_or(default);
                let mut items: Vec<&str> = old.split(',').collect();
                // Scala's `diff`: each subtracted element removes one occurrence.
                for v in value.split(',') {
                    if let Some(i) = items.iter().position(|i| *i == v) {
                        items.remove(i);
                    }
                }
                let joined = items.join(",");
                props.insert(key, joined);
            }
        }
    }
    Ok(props)
}
