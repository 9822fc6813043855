//! Delegation token requests and token logins over the wire, for the tests of KIP-48 on one
//! broker (`broker::delegation_tokens`) and on several over a real ZooKeeper
//! (`cluster::delegation_tokens`).

use std::time::Duration;

use bytes::Bytes;
use hmac::{Hmac, Mac};
use kafka_protocol::messages::create_delegation_token_request::CreatableRenewers;
use kafka_protocol::messages::describe_delegation_token_request::DescribeDelegationTokenOwner;
use kafka_protocol::messages::*;
use odradek::client::{ClientId, Connection, SaslCredentials, Security};
use odradek::security::sasl::Mechanism;

use super::scram::{SASL_LISTENER, SHA256, SHA512, alter_ok, upsertion};
use super::wire::Conn;
use super::wire::s;

pub const SECRET: &str = "the-cluster-secret";

/// A PLAINTEXT listener (for setting up users) and a SCRAM one, with `extra`.
pub fn broker_config(extra: &[&str]) -> Vec<String> {
    SASL_LISTENER
        .iter()
        .chain(extra)
        .map(|s| s.to_string())
        .collect()
}

pub fn refs(config: &[String]) -> Vec<&str> {
    config.iter().map(String::as_str).collect()
}

/// The token's password as Kafka computes it (HmacSHA512 of the id under the secret key),
/// computed here independently of odradek.
pub fn kafka_hmac(token_id: &str) -> Vec<u8> {
    let mut mac = Hmac::<sha2::Sha512>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(token_id.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

pub fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

pub async fn connect(
    port: u16,
    user: &str,
    password: &str,
    token: bool,
) -> Result<Connection, String> {
    let security = Security {
        tls: None,
        sasl: Some(SaslCredentials {
            mechanism: Mechanism::ScramSha512,
            username: user.to_string(),
            password: password.to_string(),
            token_auth: token,
        }),
    };
    tokio::time::timeout(
        Duration::from_secs(20),
        Connection::open_secured(&format!("127.0.0.1:{port}"), &ClientId::tools(), &security),
    )
    .await
    .expect("connecting took longer than 20 s")
    .map_err(|e| e.to_string())
}

pub async fn user(port: u16, name: &str) -> Connection {
    connect(port, name, &format!("{name}-secret"), false)
        .await
        .unwrap_or_else(|e| panic!("{name} login: {e}"))
}

pub async fn add_users(c: &mut Conn, names: &[&str]) {
    let mut upsertions = Vec::new();
    for name in names {
        let password = format!("{name}-secret");
        upsertions.push(upsertion(name, SHA256, &password, b"salt", 4096));
        upsertions.push(upsertion(name, SHA512, &password, b"salt", 4096));
    }
    alter_ok(c, upsertions, vec![]).await;
}

pub fn create_request(
    renewers: &[(&str, &str)],
    max_lifetime_ms: i64,
) -> CreateDelegationTokenRequest {
    let mut r = CreateDelegationTokenRequest::default();
    r.max_lifetime_ms = max_lifetime_ms;
    r.renewers = renewers
        .iter()
        .map(|(t, n)| {
            let mut renewer = CreatableRenewers::default();
            renewer.principal_type = s(t);
            renewer.principal_name = s(n);
            renewer
        })
        .collect();
    r
}

pub async fn create(
    c: &mut Connection,
    renewers: &[(&str, &str)],
    max_lifetime_ms: i64,
) -> CreateDelegationTokenResponse {
    send_create(c, create_request(renewers, max_lifetime_ms)).await
}

/// A token for another user (v3's owner fields), without renewers.
pub async fn create_owned_by(c: &mut Connection, owner: &str) -> CreateDelegationTokenResponse {
    let mut request = create_request(&[], -1);
    request.owner_principal_type = Some(s("User"));
    request.owner_principal_name = Some(s(owner));
    send_create(c, request).await
}

async fn send_create(
    c: &mut Connection,
    request: CreateDelegationTokenRequest,
) -> CreateDelegationTokenResponse {
    match c
        .call_upto(ApiKey::CreateDelegationToken, 3, request.into())
        .await
        .unwrap()
    {
        ResponseKind::CreateDelegationToken(r) => r,
        other => panic!("{other:?}"),
    }
}

pub async fn describe(
    c: &mut Connection,
    owners: Option<&[&str]>,
) -> DescribeDelegationTokenResponse {
    let mut r = DescribeDelegationTokenRequest::default();
    r.owners = owners.map(|o| {
        o.iter()
            .map(|name| {
                let mut owner = DescribeDelegationTokenOwner::default();
                owner.principal_type = s("User");
                owner.principal_name = s(name);
                owner
            })
            .collect()
    });
    match c
        .call_upto(ApiKey::DescribeDelegationToken, 3, r.into())
        .await
        .unwrap()
    {
        ResponseKind::DescribeDelegationToken(r) => r,
        other => panic!("{other:?}"),
    }
}

/// The ids of the tokens a Describe shows, sorted.
pub async fn described_ids(c: &mut Connection, owners: Option<&[&str]>) -> Vec<String> {
    let r = describe(c, owners).await;
    assert_eq!(r.error_code, 0);
    let mut ids: Vec<String> = r.tokens.iter().map(|t| t.token_id.to_string()).collect();
    ids.sort();
    ids
}

/// Renew: (error code, expiry timestamp).
pub async fn renew(c: &mut Connection, hmac: &[u8], period_ms: i64) -> (i16, i64) {
    let mut r = RenewDelegationTokenRequest::default();
    r.hmac = Bytes::copy_from_slice(hmac);
    r.renew_period_ms = period_ms;
    match c
        .call(ApiKey::RenewDelegationToken, r.into())
        .await
        .unwrap()
    {
        ResponseKind::RenewDelegationToken(r) => (r.error_code, r.expiry_timestamp_ms),
        other => panic!("{other:?}"),
    }
}

/// Expire: (error code, expiry timestamp).
pub async fn expire(c: &mut Connection, hmac: &[u8], period_ms: i64) -> (i16, i64) {
    let mut r = ExpireDelegationTokenRequest::default();
    r.hmac = Bytes::copy_from_slice(hmac);
    r.expiry_time_period_ms = period_ms;
    match c
        .call(ApiKey::ExpireDelegationToken, r.into())
        .await
        .unwrap()
    {
        ResponseKind::ExpireDelegationToken(r) => (r.error_code, r.expiry_timestamp_ms),
        other => panic!("{other:?}"),
    }
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}
