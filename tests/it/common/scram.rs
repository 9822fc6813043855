//! KIP-554 SCRAM credential requests and SCRAM logins over the wire, for the tests of
//! Describe/AlterUserScramCredentials on one broker (`broker::scram_credentials`) and on
//! several over a real ZooKeeper (`cluster::scram_credentials`).

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::messages::alter_user_scram_credentials_request::{
    ScramCredentialDeletion, ScramCredentialUpsertion,
};
use kafka_protocol::messages::describe_user_scram_credentials_request::UserName;
use kafka_protocol::messages::*;
use odradek::client::{ClientId, Connection, SaslCredentials, Security};
use odradek::metadata::MetadataStore;
use odradek::security::sasl::Mechanism;
use odradek::server::Broker;

use super::wire::{Conn, s};

pub const SHA256: i8 = 1;
pub const SHA512: i8 = 2;

pub const UNKNOWN_SERVER_ERROR: i16 = -1;
pub const UNSUPPORTED_SASL_MECHANISM: i16 = 33;
pub const RESOURCE_NOT_FOUND: i16 = 91;
pub const DUPLICATE_RESOURCE: i16 = 92;
pub const UNACCEPTABLE_CREDENTIAL: i16 = 93;
pub const NOT_CONTROLLER: i16 = 41;

/// The reference test vector (security-and-quotas.md §4.1), computed independently of odradek.
pub const ALICE_PASSWORD: &str = "alice-secret";
pub const ALICE_SALT: &[u8] = b"4qznm2ci1eqd5oxq6dsdt9a6l";
pub const ALICE_SHA256: &str = "salt=NHF6bm0yY2kxZXFkNW94cTZkc2R0OWE2bA==,stored_key=172uAMv3hznX4+Fc1BEC1fTu0o8ap6kxco18N5+RYtI=,server_key=XJznSYoHNEKozP/HIq8TCU+W1xJtlMx7FNIG9DUg2K4=,iterations=8192";
pub const ALICE_SHA512: &str = "salt=NHF6bm0yY2kxZXFkNW94cTZkc2R0OWE2bA==,stored_key=NomqBqlBODulGIAbzEaLy5CUcFhY9TYORyp1y61OQESPAMJpn+YpWcK5jmtY1TegG8/xP2zUfnC6CB/KL8BU4A==,server_key=Z4X5h8I6Yp0hIEIkrwup9kFAlgNDPXyT9YTAGKL8+ODZp6M6DDPt5JKwqZ2wHAGWq/spfIYd3B4lEvbLUoVCKw==,iterations=8192";

/// A second listener taking SCRAM logins, to prove a credential works once altered.
pub const SASL_LISTENER: &[&str] = &[
    "listeners=PLAINTEXT://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0",
    "sasl.enabled.mechanisms=SCRAM-SHA-256,SCRAM-SHA-512",
    "listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;",
    "listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;",
];

/// What a client computes for an upsertion: RFC 5802's Hi(), i.e. PBKDF2-HMAC-SHA-256/512.
pub fn salted_password(mechanism: i8, password: &str, salt: &[u8], iterations: u32) -> Vec<u8> {
    match mechanism {
        SHA512 => {
            pbkdf2::pbkdf2_hmac_array::<sha2::Sha512, 64>(password.as_bytes(), salt, iterations)
                .to_vec()
        }
        _ => pbkdf2::pbkdf2_hmac_array::<sha2::Sha256, 32>(password.as_bytes(), salt, iterations)
            .to_vec(),
    }
}

/// An upsertion of `user`'s credential for `password`, as the Java Admin client builds it.
pub fn upsertion(
    user: &str,
    mechanism: i8,
    password: &str,
    salt: &[u8],
    iterations: i32,
) -> ScramCredentialUpsertion {
    let mut u = ScramCredentialUpsertion::default();
    u.name = s(user);
    u.mechanism = mechanism;
    u.iterations = iterations;
    u.salt = bytes::Bytes::copy_from_slice(salt);
    // Out-of-bounds counts are refused before the salted password matters; keep PBKDF2 cheap.
    let hi_iterations = u32::try_from(iterations).unwrap_or(1).clamp(1, 16384);
    u.salted_password =
        bytes::Bytes::from(salted_password(mechanism, password, salt, hi_iterations));
    u
}

/// An upsertion with a password and salt of no interest to the test.
pub fn upsert(user: &str, mechanism: i8, iterations: i32) -> ScramCredentialUpsertion {
    upsertion(user, mechanism, "pw", b"salt", iterations)
}

pub fn deletion(user: &str, mechanism: i8) -> ScramCredentialDeletion {
    let mut d = ScramCredentialDeletion::default();
    d.name = s(user);
    d.mechanism = mechanism;
    d
}

/// One Alter: user -> (error code, message), checking that no user is answered twice.
pub async fn alter(
    c: &mut Conn,
    upsertions: Vec<ScramCredentialUpsertion>,
    deletions: Vec<ScramCredentialDeletion>,
) -> BTreeMap<String, (i16, Option<String>)> {
    let mut r = AlterUserScramCredentialsRequest::default();
    r.upsertions = upsertions;
    r.deletions = deletions;
    let response = c.send(0, r).await;
    let mut by_user = BTreeMap::new();
    for result in response.results {
        let previous = by_user.insert(
            result.user.to_string(),
            (
                result.error_code,
                result.error_message.map(|m| m.to_string()),
            ),
        );
        assert!(previous.is_none(), "{} answered twice", result.user);
    }
    by_user
}

/// An Alter that must succeed for every user in it.
pub async fn alter_ok(
    c: &mut Conn,
    upsertions: Vec<ScramCredentialUpsertion>,
    deletions: Vec<ScramCredentialDeletion>,
) {
    let results = alter(c, upsertions, deletions).await;
    assert!(
        results.values().all(|(code, _)| *code == 0),
        "alter failed: {results:?}"
    );
}

pub async fn describe(
    c: &mut Conn,
    users: Option<&[&str]>,
) -> DescribeUserScramCredentialsResponse {
    let mut r = DescribeUserScramCredentialsRequest::default();
    r.users = users.map(|u| {
        u.iter()
            .map(|n| {
                let mut name = UserName::default();
                name.name = s(n);
                name
            })
            .collect()
    });
    c.send(0, r).await
}

/// One user's described credentials: (mechanism, iterations), or its error code and message.
pub type Described = Result<Vec<(i8, i32)>, (i16, Option<String>)>;

pub fn described(
    result: &describe_user_scram_credentials_response::DescribeUserScramCredentialsResult,
) -> Described {
    if result.error_code != 0 {
        return Err((
            result.error_code,
            result.error_message.as_ref().map(|m| m.to_string()),
        ));
    }
    Ok(result
        .credential_infos
        .iter()
        .map(|i| (i.mechanism, i.iterations))
        .collect())
}

/// Describe of the named users (or all): the users in answer order, with their results.
pub async fn describe_users(c: &mut Conn, users: Option<&[&str]>) -> Vec<(String, Described)> {
    let response = describe(c, users).await;
    assert_eq!(response.error_code, 0, "{:?}", response.error_message);
    response
        .results
        .iter()
        .map(|r| (r.user.to_string(), described(r)))
        .collect()
}

pub async fn znode(store: &Arc<dyn MetadataStore>, path: &str) -> Option<String> {
    let (data, _) = store.get(path).await.unwrap()?;
    Some(String::from_utf8(data.unwrap_or_default()).unwrap())
}

/// The entity paths of every config change notification, oldest first.
pub async fn notified(store: &Arc<dyn MetadataStore>) -> Vec<String> {
    let mut children = store
        .children("/config/changes")
        .await
        .unwrap()
        .unwrap_or_default();
    children.sort();
    let mut paths = Vec::new();
    for child in children {
        let data = znode(store, &format!("/config/changes/{child}")).await;
        let json: serde_json::Value = serde_json::from_str(&data.unwrap_or_default()).unwrap();
        assert_eq!(json["version"], 2, "{json}");
        paths.push(json["entity_path"].as_str().unwrap_or_default().to_string());
    }
    paths
}

/// A SCRAM login on the broker's SASL listener: Ok, or why it failed.
pub async fn login(
    port: u16,
    mechanism: Mechanism,
    user: &str,
    password: &str,
) -> Result<(), String> {
    let security = Security {
        tls: None,
        sasl: Some(SaslCredentials {
            mechanism,
            username: user.to_string(),
            password: password.to_string(),
            token_auth: false,
        }),
    };
    Connection::open_secured(&format!("127.0.0.1:{port}"), &ClientId::tools(), &security)
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

pub fn sasl_port(broker: &Broker) -> u16 {
    broker.port_of("SASL_PLAINTEXT").expect("a SASL listener")
}

pub fn cached(broker: &Broker, user: &str, mechanism: Mechanism) -> Option<String> {
    broker
        .api()
        .configs
        .credentials()
        .get(user, mechanism)
        .map(|c| c.to_string())
}
