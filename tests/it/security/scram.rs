//! SCRAM over SASL_SSL with credentials stored as Kafka's `kafka-configs.sh --zookeeper` stores
//! them: logins with both mechanisms, a deleted user refused, an open session ended when its
//! lifetime runs out.

use std::time::{Duration, Instant};

use kafka_protocol::messages::*;
use odradek::metadata::MetadataStore;
use odradek::metadata::store::{CreateMode, create_recursive};

use super::*;
use crate::common::wire::start_broker;

/// What `kafka-configs.sh --zookeeper --alter --add-config
/// 'SCRAM-SHA-256=[iterations=8192,password=alice-secret],SCRAM-SHA-512=[...]' --entity-type
/// users --entity-name alice` writes, with the salt `4qznm2ci1eqd5oxq6dsdt9a6l` (the test vector
/// of the reference: computed independently of this code).
pub(crate) const ALICE: &str = r#"{"version":1,"config":{"SCRAM-SHA-256":"salt=NHF6bm0yY2kxZXFkNW94cTZkc2R0OWE2bA==,stored_key=172uAMv3hznX4+Fc1BEC1fTu0o8ap6kxco18N5+RYtI=,server_key=XJznSYoHNEKozP/HIq8TCU+W1xJtlMx7FNIG9DUg2K4=,iterations=8192","SCRAM-SHA-512":"salt=NHF6bm0yY2kxZXFkNW94cTZkc2R0OWE2bA==,stored_key=NomqBqlBODulGIAbzEaLy5CUcFhY9TYORyp1y61OQESPAMJpn+YpWcK5jmtY1TegG8/xP2zUfnC6CB/KL8BU4A==,server_key=Z4X5h8I6Yp0hIEIkrwup9kFAlgNDPXyT9YTAGKL8+ODZp6M6DDPt5JKwqZ2wHAGWq/spfIYd3B4lEvbLUoVCKw==,iterations=8192"}}"#;

/// Writes (or with `None` deletes) a user's node and the change notification, as Kafka's tools
/// do.
async fn write_user(store: &dyn MetadataStore, user: &str, data: Option<&str>) {
    let path = format!("/config/users/{user}");
    match data {
        Some(d) => match store.get(&path).await.unwrap() {
            Some(_) => {
                store
                    .set(&path, Some(d.as_bytes().to_vec()), None)
                    .await
                    .unwrap();
            }
            None => {
                create_recursive(
                    store,
                    &path,
                    Some(d.as_bytes().to_vec()),
                    CreateMode::Persistent,
                )
                .await
                .unwrap();
            }
        },
        None => store.delete(&path, None).await.unwrap(),
    }
    create_recursive(
        store,
        "/config/changes/config_change_",
        Some(format!(r#"{{"version":2,"entity_path":"users/{user}"}}"#).into_bytes()),
        CreateMode::PersistentSequential,
    )
    .await
    .unwrap();
}

fn sasl_ssl(pki: &Pki) -> Vec<String> {
    let mut o = vec![
        "listeners=PLAINTEXT://127.0.0.1:0,SASL_SSL://127.0.0.1:0".to_string(),
        "advertised.listeners=PLAINTEXT://localhost:0,SASL_SSL://localhost:0".to_string(),
        "sasl.enabled.mechanisms=SCRAM-SHA-256,SCRAM-SHA-512".to_string(),
        format!("listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config={SCRAM_JAAS}"),
        format!("listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config={SCRAM_JAAS}"),
        // Sessions last 3 s unless the client logs in again.
        "connections.max.reauth.ms=3000".to_string(),
    ];
    o.extend(pki.broker_tls("sasl_ssl"));
    o
}

async fn alice(port: u16, pki: &Pki, mechanism: Mechanism) -> odradek::client::Result<Connection> {
    connect(
        port,
        Security {
            tls: Some(tls_client(pki, None)),
            sasl: login(mechanism, "alice", "alice-secret"),
        },
    )
    .await
}

async fn metadata(conn: &mut Connection) -> odradek::client::Result<ResponseKind> {
    conn.call(
        ApiKey::Metadata,
        RequestKind::Metadata(MetadataRequest::default()),
    )
    .await
}

#[tokio::test]
async fn scram_users_stored_as_kafka_stores_them_log_in_until_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path());
    let o = sasl_ssl(&pki);
    let o: Vec<&str> = o.iter().map(String::as_str).collect();
    let broker = start_broker(&dir.path().join("data"), &o).await;
    let port = broker.port_of("SASL_SSL").unwrap();
    let store = broker.api().configs.store().clone();

    write_user(store.as_ref(), "alice", Some(ALICE)).await;
    // The broker picks the change up from the notification, as every broker of a cluster does.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut conn = loop {
        match alice(port, &pki, Mechanism::ScramSha256).await {
            Ok(c) => break c,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("alice never logged in: {e}"),
        }
    };
    metadata(&mut conn).await.unwrap();
    let mut conn512 = alice(port, &pki, Mechanism::ScramSha512).await.unwrap();
    metadata(&mut conn512).await.unwrap();

    // A wrong password fails with Kafka's fixed message, which names no user.
    let err = connect(
        port,
        Security {
            tls: Some(tls_client(&pki, None)),
            sasl: login(Mechanism::ScramSha256, "alice", "guess"),
        },
    )
    .await
    .err()
    .expect("a wrong password is refused")
    .to_string();
    assert!(
        err.contains("Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-256"),
        "{err}"
    );

    // Deleted: the next login fails...
    write_user(store.as_ref(), "alice", None).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while alice(port, &pki, Mechanism::ScramSha256).await.is_ok() {
        assert!(
            Instant::now() < deadline,
            "alice still logs in after deletion"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // ...and an open session ends when its lifetime (connections.max.reauth.ms) runs out,
    // since a client cannot log in again as a user that no longer exists.
    let deadline = Instant::now() + Duration::from_secs(20);
    while metadata(&mut conn).await.is_ok() {
        assert!(
            Instant::now() < deadline,
            "the session outlived its lifetime"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
