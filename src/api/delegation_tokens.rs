//! Delegation tokens (KIP-48): CreateDelegationToken, RenewDelegationToken,
//! ExpireDelegationToken and DescribeDelegationToken, as Kafka's `KafkaApis` answers them in
//! ZooKeeper mode. Tokens live in the metadata store (`metadata::delegation_tokens`); here are
//! the rules about who may ask: never on PLAINTEXT, on SSL without a client certificate, or on a
//! connection that itself logged in with a token; another owner only with CREATE_TOKENS on it;
//! renewers are users.

use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::create_delegation_token_request::CreateDelegationTokenRequest;
use kafka_protocol::messages::create_delegation_token_response::CreateDelegationTokenResponse;
use kafka_protocol::messages::describe_delegation_token_request::DescribeDelegationTokenRequest;
use kafka_protocol::messages::describe_delegation_token_response::{
    DescribeDelegationTokenResponse, DescribedDelegationToken, DescribedDelegationTokenRenewer,
};
use kafka_protocol::messages::expire_delegation_token_request::ExpireDelegationTokenRequest;
use kafka_protocol::messages::expire_delegation_token_response::ExpireDelegationTokenResponse;
use kafka_protocol::messages::renew_delegation_token_request::RenewDelegationTokenRequest;
use kafka_protocol::messages::renew_delegation_token_response::RenewDelegationTokenResponse;
use kafka_protocol::protocol::StrBytes;

use super::errors::KafkaCode;
use super::{Api, ClientInfo};
use crate::security::acl::{Operation, ResourceType};
use crate::security::delegation_token::TokenInformation;
use crate::security::{KafkaPrincipal, SecurityProtocol};

/// The timestamp of a refused renewal or expiry (Kafka's `DelegationTokenManager.ErrorTimestamp`).
const ERROR_TIMESTAMP: i64 = -1;

fn s(text: &str) -> StrBytes {
    StrBytes::from_string(text.to_string())
}

/// Who is asking; requests from inside the broker (which never ask for tokens) count as
/// anonymous.
fn requester(client: &ClientInfo) -> KafkaPrincipal {
    client
        .principal
        .as_deref()
        .cloned()
        .unwrap_or_else(KafkaPrincipal::anonymous)
}

/// Kafka's `allowTokenRequests`: tokens are handed out only over authenticated connections,
/// and not to a connection that is itself a token (a token must not beget tokens).
fn token_requests_allowed(client: &ClientInfo) -> bool {
    let anonymous = client
        .principal
        .as_deref()
        .is_none_or(|p| *p == KafkaPrincipal::anonymous());
    !(client.token_authenticated
        || client.protocol == Some(SecurityProtocol::Plaintext)
        || (client.protocol == Some(SecurityProtocol::Ssl) && anonymous))
}

pub async fn create(
    api: &Api,
    client: &ClientInfo,
    request: CreateDelegationTokenRequest,
    version: i16,
) -> CreateDelegationTokenResponse {
    let requester = requester(client);
    // v3 may name another owner; without one (or with an empty name) the requester owns it.
    let owner = match request.owner_principal_name.as_deref() {
        None | Some("") => Some(requester.clone()),
        Some(name) => request
            .owner_principal_type
            .as_deref()
            .map(|t| KafkaPrincipal {
                principal_type: t.to_string(),
                name: name.to_string(),
            }),
    };
    let refuse = |error: ResponseError, owner: &KafkaPrincipal| {
        create_response(version, error.code(), owner, &requester, None)
    };
    if !token_requests_allowed(client) {
        let named = owner.as_ref().unwrap_or(&requester);
        return refuse(ResponseError::DelegationTokenRequestNotAllowed, named);
    }
    // An owner name without a type names no principal.
    let Some(owner) = owner else {
        return refuse(ResponseError::InvalidPrincipalType, &requester);
    };
    // Kafka names the User resource by the whole principal (`User:alice`).
    if owner != requester
        && !api.authorized(
            client,
            Operation::CreateTokens,
            ResourceType::User,
            &owner.to_string(),
        )
    {
        return refuse(ResponseError::DelegationTokenAuthorizationFailed, &owner);
    }
    let renewers: Vec<KafkaPrincipal> = request
        .renewers
        .iter()
        .map(|r| KafkaPrincipal {
            principal_type: r.principal_type.to_string(),
            name: r.principal_name.to_string(),
        })
        .collect();
    if renewers.iter().any(|r| r.principal_type != "User") {
        return refuse(ResponseError::InvalidPrincipalType, &owner);
    }
    match api
        .tokens
        .create(
            owner.clone(),
            requester.clone(),
            renewers,
            request.max_lifetime_ms,
        )
        .await
    {
        Ok((info, hmac)) => create_response(version, 0, &owner, &requester, Some((&info, hmac))),
        Err(e) => {
            tracing::warn!(error = %e, %owner, "delegation token not created");
            create_response(version, e.kafka_error_code(), &owner, &requester, None)
        }
    }
}

/// Kafka's `CreateDelegationTokenResponse.prepareResponse`: the owner always, the requester
/// from v3, and -1 timestamps with an empty id and HMAC on errors.
fn create_response(
    version: i16,
    error_code: i16,
    owner: &KafkaPrincipal,
    requester: &KafkaPrincipal,
    token: Option<(&TokenInformation, Vec<u8>)>,
) -> CreateDelegationTokenResponse {
    let mut r = CreateDelegationTokenResponse::default();
    r.error_code = error_code;
    r.principal_type = s(&owner.principal_type);
    r.principal_name = s(&owner.name);
    if version > 2 {
        r.token_requester_principal_type = s(&requester.principal_type);
        r.token_requester_principal_name = s(&requester.name);
    }
    match token {
        Some((info, hmac)) => {
            r.issue_timestamp_ms = info.issue_timestamp;
            r.expiry_timestamp_ms = info.expiry_timestamp;
            r.max_timestamp_ms = info.max_timestamp;
            r.token_id = s(&info.token_id);
            r.hmac = Bytes::from(hmac);
        }
        None => {
            r.issue_timestamp_ms = ERROR_TIMESTAMP;
            r.expiry_timestamp_ms = ERROR_TIMESTAMP;
            r.max_timestamp_ms = ERROR_TIMESTAMP;
        }
    }
    r
}

pub async fn renew(
    api: &Api,
    client: &ClientInfo,
    request: RenewDelegationTokenRequest,
) -> RenewDelegationTokenResponse {
    let mut r = RenewDelegationTokenResponse::default();
    let outcome = if token_requests_allowed(client) {
        api.tokens
            .renew(&requester(client), &request.hmac, request.renew_period_ms)
            .await
            .map_err(|e| e.kafka_error_code())
    } else {
        Err(ResponseError::DelegationTokenRequestNotAllowed.code())
    };
    match outcome {
        Ok(expiry) => r.expiry_timestamp_ms = expiry,
        Err(code) => {
            r.error_code = code;
            r.expiry_timestamp_ms = ERROR_TIMESTAMP;
        }
    }
    r
}

pub async fn expire(
    api: &Api,
    client: &ClientInfo,
    request: ExpireDelegationTokenRequest,
) -> ExpireDelegationTokenResponse {
    let mut r = ExpireDelegationTokenResponse::default();
    let outcome = if token_requests_allowed(client) {
        api.tokens
            .expire(
                &requester(client),
                &request.hmac,
                request.expiry_time_period_ms,
            )
            .await
            .map_err(|e| e.kafka_error_code())
    } else {
        Err(ResponseError::DelegationTokenRequestNotAllowed.code())
    };
    match outcome {
        Ok(expiry) => r.expiry_timestamp_ms = expiry,
        Err(code) => {
            r.error_code = code;
            r.expiry_timestamp_ms = ERROR_TIMESTAMP;
        }
    }
    r
}

pub fn describe(
    api: &Api,
    client: &ClientInfo,
    request: DescribeDelegationTokenRequest,
    version: i16,
) -> DescribeDelegationTokenResponse {
    let mut r = DescribeDelegationTokenResponse::default();
    if !token_requests_allowed(client) {
        r.error_code = ResponseError::DelegationTokenRequestNotAllowed.code();
        return r;
    }
    if !api.tokens.enabled() {
        r.error_code = ResponseError::DelegationTokenAuthDisabled.code();
        return r;
    }
    // Null owners: every token; an empty list: none.
    let owners: Option<Vec<KafkaPrincipal>> = request.owners.map(|owners| {
        owners
            .iter()
            .map(|o| KafkaPrincipal {
                principal_type: o.principal_type.to_string(),
                name: o.principal_name.to_string(),
            })
            .collect()
    });
    if owners.as_ref().is_some_and(Vec::is_empty) {
        return r;
    }
    let requester = Arc::new(requester(client));
    r.tokens = api
        .tokens
        .tokens()
        .into_iter()
        .filter(|(info, _)| visible(api, client, &requester, owners.as_deref(), info))
        .map(|(info, hmac)| described(&info, hmac, version))
        .collect();
    r
}

/// Kafka's `DelegationTokenManager.filterToken`: among the owners asked about (matched as
/// owner, requester or renewer), the tokens the requester owns, asked for or renews, or may
/// see by ACL (DESCRIBE on the token, or DESCRIBE_TOKENS on its owner).
fn visible(
    api: &Api,
    client: &ClientInfo,
    requester: &KafkaPrincipal,
    owners: Option<&[KafkaPrincipal]>,
    info: &TokenInformation,
) -> bool {
    if owners.is_some_and(|owners| !owners.iter().any(|o| info.owner_or_renewer(o))) {
        return false;
    }
    info.owner_or_renewer(requester)
        || api.authorized(
            client,
            Operation::Describe,
            ResourceType::DelegationToken,
            &info.token_id,
        )
        || api.authorized(
            client,
            Operation::DescribeTokens,
            ResourceType::User,
            &info.owner.to_string(),
        )
}

fn described(info: &TokenInformation, hmac: Vec<u8>, version: i16) -> DescribedDelegationToken {
    let mut t = DescribedDelegationToken::default();
    t.principal_type = s(&info.owner.principal_type);
    t.principal_name = s(&info.owner.name);
    if version > 2 {
        t.token_requester_principal_type = s(&info.requester.principal_type);
        t.token_requester_principal_name = s(&info.requester.name);
    }
    t.issue_timestamp = info.issue_timestamp;
    t.expiry_timestamp = info.expiry_timestamp;
    t.max_timestamp = info.max_timestamp;
    t.token_id = s(&info.token_id);
    t.hmac = Bytes::from(hmac);
    t.renewers = info
        .renewers
        .iter()
        .map(|p| {
            let mut renewer = DescribedDelegationTokenRenewer::default();
            renewer.principal_type = s(&p.principal_type);
            renewer.principal_name = s(&p.name);
            renewer
        })
        .collect();
    t
}
