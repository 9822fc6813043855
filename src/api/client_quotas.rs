//! DescribeClientQuotas and AlterClientQuotas (KIP-546) as a ZooKeeper-mode Kafka broker
//! answers them (`ZkAdminManager`): any broker reads and writes the quota znodes directly,
//! and every broker applies a change through its `/config/changes` notification.

use std::collections::BTreeMap;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::alter_client_quotas_response;
use kafka_protocol::messages::describe_client_quotas_response::{EntityData, EntryData, ValueData};
use kafka_protocol::messages::{
    AlterClientQuotasRequest, AlterClientQuotasResponse, DescribeClientQuotasRequest,
    DescribeClientQuotasResponse,
};
use kafka_protocol::protocol::StrBytes;

use super::{Api, ClientInfo};
use crate::metadata::store::StoreError;
use crate::quota::entity::{CLIENTS, DEFAULT, USERS};
use crate::quota::{Entity, QuotaType};
use crate::security::acl::Operation;
use crate::security::sanitize::{desanitize, sanitize};

/// The entity types of the protocol (`ClientQuotaEntity`).
const USER: &str = "user";
const CLIENT_ID: &str = "client-id";
const IP: &str = "ip";

/// Match types of a describe filter component.
const MATCH_EXACT: i8 = 0;
const MATCH_DEFAULT: i8 = 1;
const MATCH_SPECIFIED: i8 = 2;

/// Kafka's message for CLUSTER_AUTHORIZATION_FAILED (`Errors`).
const CLUSTER_AUTHORIZATION_FAILED: &str = "Cluster authorization failed.";

/// A request's failure: Kafka's code and message.
type Refusal = (i16, String);

fn invalid(message: impl Into<String>) -> Refusal {
    (ResponseError::InvalidRequest.code(), message.into())
}

fn store_failure(e: StoreError) -> Refusal {
    tracing::warn!(error = %e, "client quotas: metadata store failed");
    (ResponseError::UnknownServerError.code(), String::new())
}

/// One filter component: `None` matches any name of the type, `Some(None)` the default
/// entity, `Some(Some(n))` the entity named `n`.
type Match = Option<Option<String>>;

pub async fn describe(
    api: &Api,
    client: &ClientInfo,
    request: DescribeClientQuotasRequest,
) -> DescribeClientQuotasResponse {
    let mut response = DescribeClientQuotasResponse::default();
    if !api.authorized_on_cluster(client, Operation::DescribeConfigs) {
        response.error_code = ResponseError::ClusterAuthorizationFailed.code();
        response.error_message = Some(StrBytes::from_static_str(CLUSTER_AUTHORIZATION_FAILED));
        return response;
    }
    match describe_entries(api, &request).await {
        Ok(entries) => response.entries = Some(entries),
        Err((code, message)) => {
            response.error_code = code;
            response.error_message = (!message.is_empty()).then(|| StrBytes::from_string(message));
        }
    }
    response
}

async fn describe_entries(
    api: &Api,
    request: &DescribeClientQuotasRequest,
) -> Result<Vec<EntryData>, Refusal> {
    let mut user: Option<Match> = None;
    let mut client_id: Option<Match> = None;
    let mut ip: Option<Match> = None;
    for c in &request.components {
        let m: Match = match c.match_type {
            MATCH_EXACT => Some(c._match.as_ref().map(|s| s.to_string())),
            MATCH_DEFAULT => Some(None),
            MATCH_SPECIFIED => None,
            other => return Err(invalid(format!("Unexpected match type: {other}"))),
        };
        let slot = match c.entity_type.as_str() {
            USER => &mut user,
            CLIENT_ID => &mut client_id,
            IP => &mut ip,
            "" => return Err(invalid("Unexpected empty filter component entity type")),
            other => {
                return Err((
                    ResponseError::UnsupportedVersion.code(),
                    format!("Custom entity type '{other}' not supported"),
                ));
            }
        };
        if slot.is_some() {
            return Err(invalid(format!(
                "Duplicate {} filter component entity type",
                c.entity_type.as_str()
            )));
        }
        *slot = Some(m);
    }
    if ip.is_some() && (user.is_some() || client_id.is_some()) {
        return Err(invalid(
            "Invalid entity filter component combination, IP filter component should not be used with user or clientId filter component.",
        ));
    }
    if ip.is_some() {
        // odradek keeps no IP quotas (`connection_creation_rate`): none to describe.
        return Ok(Vec::new());
    }
    let strict = request.strict;
    let exact = |c: &Option<Match>| matches!(c, Some(Some(_)));
    let excluded = |c: &Option<Match>| strict && c.is_none();
    let (exact_user, exact_client) = (exact(&user), exact(&client_id));
    let (exclude_user, exclude_client) = (excluded(&user), excluded(&client_id));
    let name_of = |m: &Option<Match>| -> String {
        match m {
            Some(Some(Some(n))) => sanitize(n),
            _ => DEFAULT.to_string(),
        }
    };
    let wanted = |m: &Option<Match>| -> Option<String> {
        match m {
            Some(Some(n)) => n.clone(),
            _ => None,
        }
    };

    // (user, client id) -> stored config; Some(None) = the default entity.
    let mut found: Vec<(Match, Match, BTreeMap<String, String>)> = Vec::new();
    let configs = &api.configs;
    if exact_user && exclude_client {
        let c = configs
            .entity_config(USERS, &name_of(&user))
            .await
            .map_err(store_failure)?;
        found.push((Some(wanted(&user)), None, c));
    } else if !exclude_user && !exact_client {
        for u in children(api, &format!("/config/{USERS}")).await? {
            let c = configs
                .entity_config(USERS, &u)
                .await
                .map_err(store_failure)?;
            found.push((Some(desanitized(&u)), None, c));
        }
    }
    if exclude_user && exact_client {
        let c = configs
            .entity_config(CLIENTS, &name_of(&client_id))
            .await
            .map_err(store_failure)?;
        found.push((None, Some(wanted(&client_id)), c));
    } else if !exact_user && !exclude_client {
        for n in children(api, &format!("/config/{CLIENTS}")).await? {
            let c = configs
                .entity_config(CLIENTS, &n)
                .await
                .map_err(store_failure)?;
            found.push((None, Some(desanitized(&n)), c));
        }
    }
    if exact_user && exact_client {
        let path = format!("{}/{CLIENTS}/{}", name_of(&user), name_of(&client_id));
        let c = configs
            .entity_config(USERS, &path)
            .await
            .map_err(store_failure)?;
        found.push((Some(wanted(&user)), Some(wanted(&client_id)), c));
    } else if !exclude_user && !exclude_client {
        for u in children(api, &format!("/config/{USERS}")).await? {
            for n in children(api, &format!("/config/{USERS}/{u}/{CLIENTS}")).await? {
                let c = configs
                    .entity_config(USERS, &format!("{u}/{CLIENTS}/{n}"))
                    .await
                    .map_err(store_failure)?;
                found.push((Some(desanitized(&u)), Some(desanitized(&n)), c));
            }
        }
    }

    let matches = |component: &Option<Match>, name: &Match| match component {
        Some(Some(n)) => name.as_ref() == Some(n),
        Some(None) => name.is_some(),
        None => name.is_none() || !strict,
    };
    let mut entries = Vec::new();
    for (u, c, config) in found {
        let mut values = Vec::new();
        for (key, text) in &config {
            if QuotaType::from_key(key).is_none() {
                continue;
            }
            // Kafka reads every stored quota as a double; one that is not fails the request.
            let value = text.trim().parse::<f64>().map_err(|_| {
                tracing::warn!(key, value = %text, "stored client quota is not a number");
                (ResponseError::UnknownServerError.code(), String::new())
            })?;
            let mut v = ValueData::default();
            v.key = StrBytes::from_string(key.clone());
            v.value = value;
            values.push(v);
        }
        if values.is_empty() || !matches(&user, &u) || !matches(&client_id, &c) {
            continue;
        }
        let mut entry = EntryData::default();
        for (entity_type, name) in [(USER, u), (CLIENT_ID, c)] {
            if let Some(name) = name {
                let mut e = EntityData::default();
                e.entity_type = StrBytes::from_static_str(entity_type);
                e.entity_name = name.map(StrBytes::from_string);
                entry.entity.push(e);
            }
        }
        entry.values = values;
        entries.push(entry);
    }
    Ok(entries)
}

/// A znode name as the protocol names it: the default entity as None.
fn desanitized(name: &str) -> Option<String> {
    (name != DEFAULT).then(|| desanitize(name))
}

async fn children(api: &Api, path: &str) -> Result<Vec<String>, Refusal> {
    api.configs
        .store()
        .children(path)
        .await
        .map(Option::unwrap_or_default)
        .map_err(store_failure)
}

pub async fn alter(
    api: &Api,
    client: &ClientInfo,
    request: AlterClientQuotasRequest,
) -> AlterClientQuotasResponse {
    let allowed = api.authorized_on_cluster(client, Operation::AlterConfigs);
    let mut response = AlterClientQuotasResponse::default();
    for entry in request.entries {
        let result = if allowed {
            alter_entity(api, &entry, request.validate_only).await
        } else {
            Err((
                ResponseError::ClusterAuthorizationFailed.code(),
                CLUSTER_AUTHORIZATION_FAILED.to_string(),
            ))
        };
        let mut out = alter_client_quotas_response::EntryData::default();
        if let Err((code, message)) = result {
            out.error_code = code;
            out.error_message = Some(StrBytes::from_string(message));
        }
        out.entity = entry
            .entity
            .iter()
            .map(|e| {
                let mut d = alter_client_quotas_response::EntityData::default();
                d.entity_type = e.entity_type.clone();
                d.entity_name = e.entity_name.clone();
                d
            })
            .collect();
        response.entries.push(out);
    }
    response
}

/// `ZkAdminManager.alterClientQuotas` for one entity: every op is checked before anything is
/// written, so a refused entity changes nothing.
async fn alter_entity(
    api: &Api,
    entry: &kafka_protocol::messages::alter_client_quotas_request::EntryData,
    validate_only: bool,
) -> Result<(), Refusal> {
    if entry.entity.is_empty() {
        return Err(invalid("Invalid empty client quota entity"));
    }
    let mut user: Option<Option<&str>> = None;
    let mut client_id: Option<Option<&str>> = None;
    let mut has_ip = false;
    for e in &entry.entity {
        let name = e.entity_name.as_ref().map(|n| n.as_str());
        match e.entity_type.as_str() {
            USER => user = Some(name),
            CLIENT_ID => client_id = Some(name),
            IP => has_ip = true,
            other => {
                return Err(invalid(format!(
                    "Unhandled client quota entity type: {other}"
                )));
            }
        }
        if name == Some("") {
            return Err(invalid(format!(
                "Empty {} not supported",
                e.entity_type.as_str()
            )));
        }
    }
    if has_ip {
        if user.is_some() || client_id.is_some() {
            return Err(invalid(
                "Invalid quota entity combination, IP entity should not be used with user/client ID entity.",
            ));
        }
        // Deliberately unlike Kafka: odradek does not limit connection creation per IP, and
        // accepting a limit it would not enforce would mislead.
        return Err(invalid("IP quotas are not supported by this broker"));
    }
    let entity = Entity::from_names(user, client_id);
    let Some((entity_type, name)) = entity.change_path() else {
        return Err(invalid("Invalid client quota entity"));
    };
    let mut config = api
        .configs
        .entity_config(entity_type, &name)
        .await
        .map_err(store_failure)?;
    for op in &entry.ops {
        let key = op.key.as_str();
        if op.remove {
            config.remove(key);
            continue;
        }
        let Some(t) = QuotaType::from_key(key) else {
            return Err(invalid(format!("Invalid configuration key {key}")));
        };
        config.insert(key.to_string(), stored_value(t, op.value)?);
    }
    if validate_only {
        return Ok(());
    }
    api.configs
        .change_quota_config(&entity, config)
        .await
        .map_err(store_failure)
}

/// A quota value as Kafka stores it: byte rates as integer text (the value must be integral
/// within 1e-6), the others as Java writes a double. Negative and non-finite values are
/// refused, as Kafka's KRaft controller refuses them; ZooKeeper-mode Kafka would store them
/// and throttle every client of the entity without end.
fn stored_value(t: QuotaType, value: f64) -> Result<String, Refusal> {
    if !value.is_finite() || value < 0.0 {
        return Err(invalid(format!("Quota {} must not be negative", t.key())));
    }
    if t.is_integral() {
        const EPSILON: f64 = 1e-6;
        let integral = (value + EPSILON).trunc();
        if (integral - value).abs() > EPSILON || integral > i64::MAX as f64 {
            return Err(invalid(format!(
                "Configuration {} must be a LONG value",
                t.key()
            )));
        }
        Ok((integral as i64).to_string())
    } else {
        Ok(java_double(value))
    }
}

/// Java's `Double.toString` for the values a quota takes: `200.0`, `0.5`, `1.0E7`.
fn java_double(value: f64) -> String {
    let abs = value.abs();
    if abs == 0.0 || (1e-3..1e7).contains(&abs) {
        let s = format!("{value}");
        if s.contains('.') { s } else { format!("{s}.0") }
    } else {
        let s = format!("{value:e}");
        let (mantissa, exponent) = s.split_once('e').unwrap_or((&s, "0"));
        let mantissa = if mantissa.contains('.') {
            mantissa.to_string()
        } else {
            format!("{mantissa}.0")
        };
        format!("{mantissa}E{exponent}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_stored_as_kafka_writes_them() {
        assert_eq!(
            stored_value(QuotaType::Produce, 1048576.0).unwrap(),
            "1048576"
        );
        assert_eq!(
            stored_value(QuotaType::Produce, 1048576.0000001).unwrap(),
            "1048576"
        );
        assert!(stored_value(QuotaType::Produce, 1.5).is_err());
        assert!(stored_value(QuotaType::Fetch, -1.0).is_err());
        assert!(stored_value(QuotaType::Request, f64::NAN).is_err());
        assert_eq!(stored_value(QuotaType::Request, 200.0).unwrap(), "200.0");
        assert_eq!(stored_value(QuotaType::Request, 0.5).unwrap(), "0.5");
        assert_eq!(
            stored_value(QuotaType::ControllerMutation, 12345678.0).unwrap(),
            "1.2345678E7"
        );
        assert_eq!(java_double(1e7), "1.0E7");
    }
}
