//! ApiVersions: the first request every modern client sends.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse};

use super::{Api, ROUTES};

fn table(api: Option<&Api>) -> Vec<ApiVersion> {
    ROUTES
        .iter()
        .map(|route| {
            let mut v = ApiVersion::default();
            v.api_key = route.key as i16;
            v.min_version = route.min_version;
            v.max_version = api.map_or(route.max_version, |api| {
                api.max_version(route.key, route.max_version)
            });
            v
        })
        // A broker standing in for an older Kafka leaves out the APIs that release lacked.
        .filter(|v| v.max_version >= v.min_version)
        .collect()
}

/// Kafka's rule for `client_software_name` / `_version` (v3+).
fn valid_software_field(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'-' || *c == b'.')
}

pub fn handle(api: &Api, request: &ApiVersionsRequest, version: i16) -> ApiVersionsResponse {
    let mut r = ApiVersionsResponse::default();
    r.api_keys = table(Some(api));
    if version >= 3
        && !(valid_software_field(&request.client_software_name)
            && valid_software_field(&request.client_software_version))
    {
        r.error_code = ResponseError::InvalidRequest.code();
    }
    r
}

/// The v0 answer to an ApiVersions version we do not know (KIP-511).
pub fn unsupported_version_response() -> ApiVersionsResponse {
    let mut r = ApiVersionsResponse::default();
    r.error_code = ResponseError::UnsupportedVersion.code();
    r.api_keys = table(None)
        .into_iter()
        .filter(|v| v.api_key == ApiKey::ApiVersions as i16)
        .collect();
    r
}
