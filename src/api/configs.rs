//! DescribeConfigs, as Kafka 3.9's `ConfigHelper` answers it: every topic config with its value,
//! source and synonyms (the topic's override, then the broker keys it defaults from, layer by
//! layer); every broker config of this broker, or the cluster-wide dynamic defaults. Also what
//! AlterConfigs and IncrementalAlterConfigs share: resource types and how they name brokers.

use std::collections::BTreeMap;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};
use kafka_protocol::protocol::StrBytes;

use super::{Api, ClientInfo};
use crate::config::defs::{self, DynamicMode};
use crate::config::dynamic::{BrokerLevel, ConfigSource, SynonymValue};
use crate::security::acl::{Operation, ResourceType};

/// Kafka's `ConfigResource.Type` ids.
pub const TOPIC: i8 = 2;
pub const BROKER: i8 = 4;
pub const BROKER_LOGGER: i8 = 8;
pub const CLIENT_METRICS: i8 = 16;

/// A request-level failure for one resource: Kafka's error code and message.
#[derive(Debug, Clone)]
pub struct ResourceError {
    pub code: i16,
    pub message: String,
}

impl ResourceError {
    pub fn new(code: i16, message: impl Into<String>) -> Self {
        ResourceError {
            code,
            message: message.into(),
        }
    }
}

/// Which dynamic broker layer a BROKER resource names: empty is the cluster-wide default,
/// otherwise it must be this broker's id (`ConfigAdminManager.validateResourceNameIsCurrentNodeId`).
pub fn broker_level(api: &Api, name: &str) -> Result<BrokerLevel, ResourceError> {
    if name.is_empty() {
        return Ok(BrokerLevel::ClusterDefault);
    }
    let id: i32 = name.parse().map_err(|_| {
        ResourceError::new(
            ResponseError::InvalidRequest.code(),
            format!("Node id must be an integer, but it is: {name}"),
        )
    })?;
    if id != api.config.broker_id {
        return Err(ResourceError::new(
            ResponseError::InvalidRequest.code(),
            format!(
                "Unexpected broker id, expected {}, but received {name}",
                api.config.broker_id
            ),
        ));
    }
    Ok(BrokerLevel::ThisBroker)
}

/// May the client do `operation` (DESCRIBE_CONFIGS or ALTER_CONFIGS) on a config resource: a
/// topic's configs are the topic's, the others (brokers, broker loggers, client metrics) the
/// cluster's. Refused with Kafka's default message for the code, as `ConfigHelper` answers.
pub fn authorize_resource(
    api: &Api,
    client: &ClientInfo,
    operation: Operation,
    resource_type: i8,
    name: &str,
) -> Result<(), ResourceError> {
    match resource_type {
        TOPIC if !api.authorized(client, operation, ResourceType::Topic, name) => {
            Err(ResourceError::new(
                ResponseError::TopicAuthorizationFailed.code(),
                "Topic authorization failed.",
            ))
        }
        BROKER | BROKER_LOGGER | CLIENT_METRICS
            if !api.authorized_on_cluster(client, operation) =>
        {
            Err(ResourceError::new(
                ResponseError::ClusterAuthorizationFailed.code(),
                "Cluster authorization failed.",
            ))
        }
        _ => Ok(()),
    }
}

/// "ConfigResource(type=TOPIC, name='t')", as Kafka names resources in messages.
pub fn resource_label(resource_type: i8, name: &str) -> String {
    let kind = match resource_type {
        TOPIC => "TOPIC",
        BROKER => "BROKER",
        BROKER_LOGGER => "BROKER_LOGGER",
        CLIENT_METRICS => "CLIENT_METRICS",
        _ => "UNKNOWN",
    };
    format!("ConfigResource(type={kind}, name='{name}')")
}

fn entry(
    name: &str,
    value: Option<String>,
    source: ConfigSource,
    read_only: bool,
    kind: Option<defs::ConfigType>,
    synonyms: Vec<SynonymValue>,
    (version, include_synonyms): (i16, bool),
) -> DescribeConfigsResourceResult {
    let mut e = DescribeConfigsResourceResult::default();
    e.name = StrBytes::from_string(name.to_string());
    // Secrets are named but never shown, here or in their synonyms (Kafka's null value).
    let sensitive = defs::is_sensitive(name);
    e.is_sensitive = sensitive;
    e.value = value.filter(|_| !sensitive).map(StrBytes::from_string);
    e.read_only = read_only;
    if version == 0 {
        e.is_default = source == ConfigSource::Default;
    } else {
        e.config_source = source as i8;
        if include_synonyms {
            e.synonyms = synonyms
                .into_iter()
                .map(|s| {
                    let mut d = DescribeConfigsSynonym::default();
                    d.value = s
                        .value
                        .filter(|_| !defs::is_sensitive(&s.name))
                        .map(StrBytes::from_string);
                    d.name = StrBytes::from_string(s.name);
                    d.source = s.source as i8;
                    d
                })
                .collect();
        }
    }
    if version >= 3 {
        e.config_type = kind.map_or(0, |k| k.describe_id());
        // Kafka sends documentation only on request; odradek has none to send.
        e.documentation = None;
    }
    e
}

fn source_of(synonyms: &[SynonymValue]) -> ConfigSource {
    synonyms.first().map_or(ConfigSource::Default, |s| s.source)
}

pub async fn describe(
    api: &Api,
    client: &ClientInfo,
    request: DescribeConfigsRequest,
    version: i16,
) -> DescribeConfigsResponse {
    let dynamic = api.configs.broker();
    let include_synonyms = version >= 1 && request.include_synonyms;
    let mut response = DescribeConfigsResponse::default();
    for res in request.resources {
        let mut r = DescribeConfigsResult::default();
        r.resource_type = res.resource_type;
        r.resource_name = res.resource_name.clone();
        // A null or empty key list asks for every config, as Kafka's ConfigHelper reads it.
        let wanted = |name: &str| {
            res.configuration_keys
                .as_ref()
                .is_none_or(|keys| keys.is_empty() || keys.iter().any(|k| &**k == name))
        };
        let name = res.resource_name.to_string();
        if let Err(e) = authorize_resource(
            api,
            client,
            Operation::DescribeConfigs,
            res.resource_type,
            &name,
        ) {
            r.error_code = e.code;
            r.error_message = Some(StrBytes::from_string(e.message));
            response.results.push(r);
            continue;
        }
        // Topic overrides come from the store, as Kafka's AdminZkClient reads them: every broker
        // answers for every topic, hosted here or not.
        let stored = if res.resource_type == TOPIC && api.cache.topic(&name).is_some() {
            api.controller.topic_overrides(&name).await.ok()
        } else {
            None
        };
        let result: Result<Vec<DescribeConfigsResourceResult>, ResourceError> =
            match res.resource_type {
                TOPIC => match api.cache.topic(&name) {
                    None if crate::controller::validate_topic_name(&name).is_err() => {
                        Err(ResourceError::new(
                            ResponseError::InvalidTopicException.code(),
                            format!("{name:?} is not a valid topic name"),
                        ))
                    }
                    None => Err(ResourceError::new(
                        ResponseError::UnknownTopicOrPartition.code(),
                        format!("The topic '{name}' does not exist."),
                    )),
                    Some(info) => {
                        let overrides: &BTreeMap<String, String> =
                            stored.as_ref().unwrap_or(&info.configs);
                        Ok(defs::TOPIC_CONFIGS
                            .iter()
                            .filter(|t| wanted(t.def.name))
                            .map(|t| {
                                let synonyms = dynamic.topic_synonyms(t, overrides);
                                entry(
                                    t.def.name,
                                    dynamic.topic_value(t, overrides),
                                    source_of(&synonyms),
                                    false,
                                    Some(t.def.kind),
                                    synonyms,
                                    (version, include_synonyms),
                                )
                            })
                            .collect())
                    }
                },
                BROKER => broker_level(api, &name).map(|level| match level {
                    // The cluster-wide defaults: only what is set there, with only those synonyms.
                    BrokerLevel::ClusterDefault => dynamic
                        .dynamic(BrokerLevel::ClusterDefault)
                        .into_iter()
                        .filter(|(k, _)| wanted(k))
                        .map(|(k, v)| {
                            let synonyms: Vec<SynonymValue> = dynamic
                                .synonyms(&k)
                                .into_iter()
                                .filter(|s| s.source == ConfigSource::DynamicDefaultBroker)
                                .collect();
                            let def = defs::broker_config(&k);
                            entry(
                                &k,
                                Some(v),
                                source_of(&synonyms),
                                def.is_none_or(|d| d.mode == DynamicMode::ReadOnly),
                                def.map(|d| d.def.kind),
                                synonyms,
                                (version, include_synonyms),
                            )
                        })
                        .collect(),
                    BrokerLevel::ThisBroker => {
                        let mut names: Vec<String> = defs::BROKER_CONFIGS
                            .iter()
                            .map(|b| b.def.name.to_string())
                            .collect();
                        names.extend(dynamic.merged().into_keys());
                        names.sort_unstable();
                        names.dedup();
                        names
                            .into_iter()
                            .filter(|k| wanted(k))
                            .map(|k| {
                                let synonyms = dynamic.synonyms(&k);
                                let def = defs::broker_config(&k);
                                entry(
                                    &k,
                                    dynamic.broker_value(&k),
                                    source_of(&synonyms),
                                    def.is_none_or(|d| d.mode == DynamicMode::ReadOnly),
                                    def.map(|d| d.def.kind),
                                    synonyms,
                                    (version, include_synonyms),
                                )
                            })
                            .collect()
                    }
                }),
                other => Err(ResourceError::new(
                    ResponseError::InvalidRequest.code(),
                    format!("Unsupported resource type: {other}"),
                )),
            };
        match result {
            Ok(configs) => r.configs = configs,
            Err(e) => {
                r.error_code = e.code;
                r.error_message = Some(StrBytes::from_string(e.message));
            }
        }
        response.results.push(r);
    }
    response
}

/// Validates and (unless `validate_only`) stores one resource's complete new set of configs,
/// as Kafka's `ZkAdminManager.alterTopicConfigs` / `alterBrokerConfigs` do. Topic errors are
/// INVALID_CONFIG; broker errors are INVALID_REQUEST, as Kafka 3.9 reports them (KAFKA-13609).
pub async fn alter_resource(
    api: &Api,
    resource_type: i8,
    name: &str,
    configs: BTreeMap<String, String>,
    validate_only: bool,
) -> Result<(), ResourceError> {
    let stored = |e: crate::metadata::StoreError| {
        ResourceError::new(
            ResponseError::UnknownServerError.code(),
            format!("could not store the configs: {e}"),
        )
    };
    match resource_type {
        TOPIC => {
            if name.is_empty() {
                return Err(ResourceError::new(
                    ResponseError::InvalidRequest.code(),
                    "Default topic resources are not allowed.",
                ));
            }
            if api.cache.topic(name).is_none() {
                return Err(ResourceError::new(
                    ResponseError::UnknownTopicOrPartition.code(),
                    format!("The topic '{name}' does not exist."),
                ));
            }
            if let Some(unknown) = configs.keys().find(|k| !defs::is_topic_config(k)) {
                return Err(ResourceError::new(
                    ResponseError::InvalidConfig.code(),
                    format!("Unknown topic config name: {unknown}"),
                ));
            }
            api.replicas.log_config(&configs).map_err(|e| {
                ResourceError::new(
                    ResponseError::InvalidConfig.code(),
                    format!(
                        "Invalid config value for resource {}: {e}",
                        resource_label(TOPIC, name)
                    ),
                )
            })?;
            if !validate_only {
                tracing::info!(topic = name, ?configs, "updating topic configs");
                api.configs
                    .change_topic_config(name, configs)
                    .await
                    .map_err(stored)?;
            }
            Ok(())
        }
        BROKER => {
            let level = broker_level(api, name)?;
            api.configs
                .broker()
                .validate(level, &configs)
                .map_err(|e| {
                    ResourceError::new(ResponseError::InvalidRequest.code(), e.to_string())
                })?;
            if !validate_only {
                tracing::info!(broker = name, ?configs, "updating dynamic broker configs");
                api.configs
                    .change_broker_config(level, configs)
                    .await
                    .map_err(stored)?;
            }
            Ok(())
        }
        other => Err(ResourceError::new(
            ResponseError::InvalidRequest.code(),
            format!(
                "AlterConfigs is only supported for topics and brokers, but resource type is {other}"
            ),
        )),
    }
}

/// Kafka's preprocessing shared by both AlterConfigs APIs: each resource at most once
/// (otherwise every copy fails) and each of the keys given at most once within a resource
/// (legacy AlterConfigs, where the last value wins, gives none).
pub fn duplicates<'a>(
    resources: impl Iterator<Item = (i8, &'a str, Vec<&'a str>)>,
) -> Vec<Option<ResourceError>> {
    let resources: Vec<(i8, &str, Vec<&str>)> = resources.collect();
    resources
        .iter()
        .map(|(t, n, keys)| {
            if resources
                .iter()
                .filter(|(t2, n2, _)| t2 == t && n2 == n)
                .count()
                > 1
            {
                return Some(ResourceError::new(
                    ResponseError::InvalidRequest.code(),
                    "Each resource must appear at most once.",
                ));
            }
            let mut sorted = keys.clone();
            sorted.sort_unstable();
            let before = sorted.len();
            sorted.dedup();
            (sorted.len() != before).then(|| {
                ResourceError::new(
                    ResponseError::InvalidRequest.code(),
                    "Error due to duplicate config keys",
                )
            })
        })
        .collect()
}
