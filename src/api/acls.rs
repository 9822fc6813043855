//! DescribeAcls, CreateAcls and DeleteAcls (Kafka's `AclApis` over `AclAuthorizer`). Any broker
//! answers them: reads come from its ACL cache, writes go to the metadata store
//! (`metadata::acls`) and reach every broker through change notifications.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::create_acls_response::AclCreationResult;
use kafka_protocol::messages::delete_acls_response::{
    DeleteAclsFilterResult, DeleteAclsMatchingAcl,
};
use kafka_protocol::messages::describe_acls_response::{AclDescription, DescribeAclsResource};
use kafka_protocol::messages::{
    CreateAclsRequest, CreateAclsResponse, DeleteAclsRequest, DeleteAclsResponse,
    DescribeAclsRequest, DescribeAclsResponse, RequestKind,
};
use kafka_protocol::protocol::StrBytes;

use super::{Api, ClientInfo};
use crate::metadata::StoreError;
use crate::security::acl::{
    AccessControlEntry, AccessControlEntryFilter, AclBinding, AclBindingFilter, CLUSTER_NAME,
    Operation, PatternType, Permission, ResourcePattern, ResourcePatternFilter, ResourceType,
};

/// The longest resource name an ACL may have: DescribeAcls and DeleteAcls v0-1 carry names as
/// STRING with a 16-bit length, so a longer one could be created but never shown or deleted by
/// those clients. Kafka has no limit of its own; ZooKeeper's is the 1 MB packet.
pub const MAX_RESOURCE_NAME_BYTES: usize = i16::MAX as usize;

const NO_AUTHORIZER: &str = "No Authorizer is configured.";
/// Kafka's `ClusterAuthorizationException` message (`Request <request> is not authorized.`),
/// without the request's dump. Clients show it; librdkafka needs a message to report the error.
const NOT_AUTHORIZED: &str = "Request is not authorized.";

fn message(text: impl Into<String>) -> Option<StrBytes> {
    Some(StrBytes::from_string(text.into()))
}

/// Kafka's request parsing of the three (`normalizeAndValidate`): a v0 request may only name
/// literal patterns, and no request may carry an UNKNOWN (or undefined) type, pattern type,
/// operation or permission. Kafka fails to parse such a request and closes the connection;
/// so does the caller of this (dispatch) on `Err`. v0 filters asking for ANY pattern type
/// become LITERAL here, as in Kafka.
pub fn normalize(request: &mut RequestKind, version: i16) -> Result<(), String> {
    let unknown = |resource: i8, pattern: i8, operation: i8, permission: i8| {
        ResourceType::from_code(resource) == ResourceType::Unknown
            || PatternType::from_code(pattern) == PatternType::Unknown
            || Operation::from_code(operation) == Operation::Unknown
            || Permission::from_code(permission) == Permission::Unknown
    };
    let v0_filter = |pattern: &mut i8| -> Result<(), String> {
        if version == 0 {
            match PatternType::from_code(*pattern) {
                PatternType::Any => *pattern = PatternType::Literal.code(),
                PatternType::Literal => {}
                other => return Err(format!("version 0 does not support pattern type {other:?}")),
            }
        }
        Ok(())
    };
    match request {
        RequestKind::DescribeAcls(r) => {
            v0_filter(&mut r.pattern_type_filter)?;
            if unknown(
                r.resource_type_filter,
                r.pattern_type_filter,
                r.operation,
                r.permission_type,
            ) {
                return Err("DescribeAcls filter contains UNKNOWN elements".into());
            }
        }
        RequestKind::CreateAcls(r) => {
            for c in &r.creations {
                if version == 0 && c.resource_pattern_type != PatternType::Literal.code() {
                    return Err("CreateAcls v0 only supports literal resource pattern types".into());
                }
                if unknown(
                    c.resource_type,
                    c.resource_pattern_type,
                    c.operation,
                    c.permission_type,
                ) {
                    return Err("CreateAcls creation contains UNKNOWN elements".into());
                }
            }
        }
        RequestKind::DeleteAcls(r) => {
            for f in &mut r.filters {
                v0_filter(&mut f.pattern_type_filter)?;
                if unknown(
                    f.resource_type_filter,
                    f.pattern_type_filter,
                    f.operation,
                    f.permission_type,
                ) {
                    return Err("DeleteAcls filter contains UNKNOWN elements".into());
                }
            }
        }
        _ => {}
    }
    Ok(())
}

fn filter(
    resource_type: i8,
    name: Option<&StrBytes>,
    pattern_type: i8,
    principal: Option<&StrBytes>,
    host: Option<&StrBytes>,
    operation: i8,
    permission: i8,
) -> AclBindingFilter {
    AclBindingFilter {
        pattern: ResourcePatternFilter {
            resource_type: ResourceType::from_code(resource_type),
            name: name.map(|n| n.to_string()),
            pattern_type: PatternType::from_code(pattern_type),
        },
        entry: AccessControlEntryFilter {
            principal: principal.map(|p| p.to_string()),
            host: host.map(|h| h.to_string()),
            operation: Operation::from_code(operation),
            permission: Permission::from_code(permission),
        },
    }
}

fn store_error(e: &StoreError) -> (i16, Option<StrBytes>) {
    (
        ResponseError::UnknownServerError.code(),
        message(e.to_string()),
    )
}

pub async fn describe(
    api: &Api,
    client: &ClientInfo,
    request: DescribeAclsRequest,
) -> DescribeAclsResponse {
    // kafka-protocol's defaults make nullable strings empty; Kafka sends null on success.
    let mut response = DescribeAclsResponse::default().with_error_message(None);
    if !api.authorized_on_cluster(client, Operation::Describe) {
        response.error_code = ResponseError::ClusterAuthorizationFailed.code();
        response.error_message = message(NOT_AUTHORIZED);
        return response;
    }
    let Some(authorizer) = &api.authorizer else {
        response.error_code = ResponseError::SecurityDisabled.code();
        response.error_message = message("No Authorizer is configured on the broker");
        return response;
    };
    let f = filter(
        request.resource_type_filter,
        request.resource_name_filter.as_ref(),
        request.pattern_type_filter,
        request.principal_filter.as_ref(),
        request.host_filter.as_ref(),
        request.operation,
        request.permission_type,
    );
    // `acls` is sorted by pattern, so each pattern's entries are adjacent.
    for binding in authorizer.acls(&f) {
        let same = response
            .resources
            .last()
            .is_some_and(|r: &DescribeAclsResource| {
                r.resource_type == binding.pattern.resource_type.code()
                    && r.pattern_type == binding.pattern.pattern_type.code()
                    && r.resource_name.as_str() == binding.pattern.name
            });
        if !same {
            let mut resource = DescribeAclsResource::default();
            resource.resource_type = binding.pattern.resource_type.code();
            resource.resource_name = StrBytes::from_string(binding.pattern.name.clone());
            resource.pattern_type = binding.pattern.pattern_type.code();
            response.resources.push(resource);
        }
        let mut acl = AclDescription::default();
        acl.principal = StrBytes::from_string(binding.entry.principal);
        acl.host = StrBytes::from_string(binding.entry.host);
        acl.operation = binding.entry.operation.code();
        acl.permission_type = binding.entry.permission.code();
        if let Some(resource) = response.resources.last_mut() {
            resource.acls.push(acl);
        }
    }
    response
}

/// Why Kafka refuses to create this ACL, as (error code, message); None when it may be created.
fn refuse_creation(binding: &AclBinding) -> Option<(i16, String)> {
    let pattern = &binding.pattern;
    let invalid = |m: &str| Some((ResponseError::InvalidRequest.code(), m.to_string()));
    if pattern.resource_type == ResourceType::Cluster && pattern.name != CLUSTER_NAME {
        return invalid(&format!(
            "The only valid name for the CLUSTER resource is {CLUSTER_NAME}"
        ));
    }
    if pattern.name.is_empty() {
        return invalid("Invalid empty resource name");
    }
    if matches!(
        pattern.resource_type,
        ResourceType::Any | ResourceType::Unknown
    ) || !matches!(
        pattern.pattern_type,
        PatternType::Literal | PatternType::Prefixed
    ) || matches!(binding.entry.operation, Operation::Any | Operation::Unknown)
        || matches!(
            binding.entry.permission,
            Permission::Any | Permission::Unknown
        )
        || pattern.name.contains('/')
    {
        return invalid("Failed to create ACL");
    }
    if pattern.name.len() > MAX_RESOURCE_NAME_BYTES {
        return invalid(&format!(
            "Failed to create ACL: resource names are limited to {MAX_RESOURCE_NAME_BYTES} bytes"
        ));
    }
    // `SecurityUtils.parseKafkaPrincipal` throws IllegalArgumentException, which Kafka answers
    // as UNKNOWN_SERVER_ERROR.
    if !binding.entry.principal.contains(':') {
        return Some((
            ResponseError::UnknownServerError.code(),
            format!(
                "expected a string in format principalType:principalName but got {}",
                binding.entry.principal
            ),
        ));
    }
    None
}

pub async fn create(
    api: &Api,
    client: &ClientInfo,
    request: CreateAclsRequest,
) -> CreateAclsResponse {
    let mut response = CreateAclsResponse::default();
    let refuse_all = |code: i16, text: Option<&str>| {
        request
            .creations
            .iter()
            .map(|_| {
                let mut r = AclCreationResult::default();
                r.error_code = code;
                r.error_message = text.map(|t| StrBytes::from_string(t.to_string()));
                r
            })
            .collect()
    };
    if !api.authorized_on_cluster(client, Operation::Alter) {
        response.results = refuse_all(
            ResponseError::ClusterAuthorizationFailed.code(),
            Some(NOT_AUTHORIZED),
        );
        return response;
    }
    let Some(acls) = &api.acls else {
        response.results = refuse_all(ResponseError::SecurityDisabled.code(), Some(NO_AUTHORIZER));
        return response;
    };
    let mut results: Vec<AclCreationResult> = Vec::with_capacity(request.creations.len());
    let mut valid = Vec::new();
    let mut valid_at = Vec::new();
    for (i, c) in request.creations.iter().enumerate() {
        let binding = AclBinding {
            pattern: ResourcePattern::new(
                ResourceType::from_code(c.resource_type),
                c.resource_name.to_string(),
                PatternType::from_code(c.resource_pattern_type),
            ),
            entry: AccessControlEntry {
                principal: c.principal.to_string(),
                host: c.host.to_string(),
                operation: Operation::from_code(c.operation),
                permission: Permission::from_code(c.permission_type),
            },
        };
        let mut result = AclCreationResult::default().with_error_message(None);
        match refuse_creation(&binding) {
            Some((code, text)) => {
                tracing::debug!(pattern = %binding.pattern, error = code, text, "refused an ACL");
                result.error_code = code;
                result.error_message = message(text);
            }
            None => {
                valid.push(binding);
                valid_at.push(i);
            }
        }
        results.push(result);
    }
    for (outcome, i) in acls.create(&valid).await.into_iter().zip(valid_at) {
        if let Err(e) = outcome {
            tracing::warn!(error = %e, "could not store an ACL");
            let (code, text) = store_error(&e);
            results[i].error_code = code;
            results[i].error_message = text;
        }
    }
    response.results = results;
    response
}

pub async fn delete(
    api: &Api,
    client: &ClientInfo,
    request: DeleteAclsRequest,
) -> DeleteAclsResponse {
    let mut response = DeleteAclsResponse::default();
    let refuse_all = |code: i16, text: Option<&str>| {
        request
            .filters
            .iter()
            .map(|_| {
                let mut r = DeleteAclsFilterResult::default();
                r.error_code = code;
                r.error_message = text.map(|t| StrBytes::from_string(t.to_string()));
                r
            })
            .collect()
    };
    if !api.authorized_on_cluster(client, Operation::Alter) {
        response.filter_results = refuse_all(
            ResponseError::ClusterAuthorizationFailed.code(),
            Some(NOT_AUTHORIZED),
        );
        return response;
    }
    let Some(acls) = &api.acls else {
        response.filter_results =
            refuse_all(ResponseError::SecurityDisabled.code(), Some(NO_AUTHORIZER));
        return response;
    };
    let filters: Vec<AclBindingFilter> = request
        .filters
        .iter()
        .map(|f| {
            filter(
                f.resource_type_filter,
                f.resource_name_filter.as_ref(),
                f.pattern_type_filter,
                f.principal_filter.as_ref(),
                f.host_filter.as_ref(),
                f.operation,
                f.permission_type,
            )
        })
        .collect();
    for deleted in acls.delete(&filters).await {
        let mut result = DeleteAclsFilterResult::default().with_error_message(None);
        for (binding, error) in deleted {
            let mut m = DeleteAclsMatchingAcl::default().with_error_message(None);
            if let Some(e) = error {
                (m.error_code, m.error_message) = store_error(&e);
            }
            m.resource_type = binding.pattern.resource_type.code();
            m.resource_name = StrBytes::from_string(binding.pattern.name);
            m.pattern_type = binding.pattern.pattern_type.code();
            m.principal = StrBytes::from_string(binding.entry.principal);
            m.host = StrBytes::from_string(binding.entry.host);
            m.operation = binding.entry.operation.code();
            m.permission_type = binding.entry.permission.code();
            result.matching_acls.push(m);
        }
        response.filter_results.push(result);
    }
    response
}
