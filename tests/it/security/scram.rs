//! SCRAM over SASL_SSL with credentials stored as Kafka's `kafka-configs.sh --zookeeper` stores
//! them: logins with both mechanisms, a deleted user refused, an open session ended when its
//! lifetime runs out.

use std::time::{Duration, Instant};

use kafka_protocol::messages::*;
use odradek::metadata::MetadataStore;

use super::*;
use crate::common::wire::{STORES, Store, start_broker, start_broker_on};

/// What `kafka-configs.sh --zookeeper --alter --add-config
/// 'SCRAM-SHA-256=[iterations=8192,password=alice-secret],SCRAM-SHA-512=[...]' --entity-type
/// users --entity-name alice` writes, with the salt `4qznm2ci1eqd5oxq6dsdt9a6l` (the test vector
/// of the reference: computed independently of this code).
pub(crate) const ALICE: &str = r#"{"version":1,"config":{"SCRAM-SHA-256":"salt=NHF6bm0yY2kxZXFkNW94cTZkc2R0OWE2bA==,stored_key=172uAMv3hznX4+Fc1BEC1fTu0o8ap6kxco18N5+RYtI=,server_key=XJznSYoHNEKozP/HIq8TCU+W1xJtlMx7FNIG9DUg2K4=,iterations=8192","SCRAM-SHA-512":"salt=NHF6bm0yY2kxZXFkNW94cTZkc2R0OWE2bA==,stored_key=NomqBqlBODulGIAbzEaLy5CUcFhY9TYORyp1y61OQESPAMJpn+YpWcK5jmtY1TegG8/xP2zUfnC6CB/KL8BU4A==,server_key=Z4X5h8I6Yp0hIEIkrwup9kFAlgNDPXyT9YTAGKL8+ODZp6M6DDPt5JKwqZ2wHAGWq/spfIYd3B4lEvbLUoVCKw==,iterations=8192"}}"#;

/// Writes (or with `None` deletes) a user's node and the change notification, as Kafka's tools
/// do.
pub(crate) async fn write_user(store: &dyn MetadataStore, user: &str, data: Option<&str>) {
    crate::common::write_entity_config(store, &format!("users/{user}"), data.map(str::as_bytes))
        .await;
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
    for store in STORES {
        scram_users_on(store).await;
    }
}

async fn scram_users_on(store: Store) {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path());
    let o = sasl_ssl(&pki);
    let o: Vec<&str> = o.iter().map(String::as_str).collect();
    let Some((broker, _zk)) = start_broker_on(store, &dir.path().join("data"), &o).await else {
        return;
    };
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

    // Sessions last 3 s: a client that logs in again on the open connection (KIP-368), as
    // odradek's own does, keeps it well past that.
    let until = Instant::now() + Duration::from_secs(5);
    while Instant::now() < until {
        metadata(&mut conn512)
            .await
            .expect("a re-authenticating client keeps its connection");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

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

/// Runs the bundled tool off the runtime's threads (the broker runs in this process).
async fn tool(args: Vec<String>, stdin: Option<String>) -> (bool, String, String) {
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        crate::common::odradek(&args, stdin.as_deref())
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bundled_tools_connect_with_a_kafka_client_properties_file() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path());
    let o = sasl_ssl(&pki);
    let o: Vec<&str> = o.iter().map(String::as_str).collect();
    let broker = start_broker(&dir.path().join("data"), &o).await;
    let bootstrap = format!("localhost:{}", broker.port_of("SASL_SSL").unwrap());
    write_user(broker.api().configs.store().as_ref(), "alice", Some(ALICE)).await;

    // The properties a Kafka tool would be given with --command-config.
    let config = dir.path().join("client.properties");
    let properties = |password: &str| {
        format!(
            "security.protocol=SASL_SSL\n\
             sasl.mechanism=SCRAM-SHA-512\n\
             sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username=\"alice\" password=\"{password}\";\n\
             ssl.truststore.type=PEM\n\
             ssl.truststore.location={}\n",
            pki.ca.cert_file.display()
        )
    };
    std::fs::write(&config, properties("alice-secret")).unwrap();
    let with_config = |args: &[&str]| {
        let mut v: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        v.extend([
            "--bootstrap-server".to_string(),
            bootstrap.clone(),
            "--command-config".to_string(),
            config.display().to_string(),
        ]);
        v
    };
    // The user's notification is applied asynchronously: retry the first call for a while.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (ok, out, err) = tool(
            with_config(&[
                "topics",
                "--create",
                "--topic",
                "secured",
                "--partitions",
                "2",
            ]),
            None,
        )
        .await;
        if ok {
            break;
        }
        assert!(Instant::now() < deadline, "topics --create: {out}\n{err}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (ok, out, err) = tool(
        with_config(&[
            "perf",
            "producer",
            "--topic",
            "secured",
            "--num-records",
            "2000",
            "--record-size",
            "100",
            "--throughput",
            "-1",
        ]),
        None,
    )
    .await;
    assert!(ok, "perf producer: {out}\n{err}");
    let (ok, out, err) = tool(
        with_config(&[
            "perf",
            "consumer",
            "--topic",
            "secured",
            "--messages",
            "2000",
        ]),
        None,
    )
    .await;
    assert!(ok && out.contains("2000"), "perf consumer: {out}\n{err}");

    // A wrong password in the file: the tool fails and says why.
    std::fs::write(&config, properties("guess")).unwrap();
    let (ok, out, err) = tool(with_config(&["topics", "--list"]), None).await;
    assert!(!ok, "a wrong password was accepted: {out}");
    assert!(err.contains("SaslAuthenticationFailed"), "{err}");
}
