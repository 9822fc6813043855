//! Describe/AlterUserScramCredentials on two brokers in this process sharing a real ZooKeeper:
//! only the active controller alters, the credential lands in ZooKeeper in Kafka's format, and
//! the other broker learns it from the `/config/changes` notification, so a SCRAM login works
//! there too without a restart.

use crate::common;

use std::time::Duration;

use common::cluster::{SESSION_TIMEOUT_MS, wait_until};
use common::scram::*;
use common::wire::{Conn, start_broker};
use common::zookeeper::ZooKeeperServer;
use kafka_protocol::messages::AlterUserScramCredentialsRequest;
use odradek::security::sasl::Mechanism;
use odradek::server::Broker;

async fn start(dir: &std::path::Path, id: i32, connect: &str) -> Broker {
    let mut overrides: Vec<String> = SASL_LISTENER.iter().map(|s| s.to_string()).collect();
    overrides.push(format!("broker.id={id}"));
    overrides.push(format!("zookeeper.connect={connect}"));
    overrides.push(format!("zookeeper.session.timeout.ms={SESSION_TIMEOUT_MS}"));
    let overrides: Vec<&str> = overrides.iter().map(String::as_str).collect();
    start_broker(&dir.join(format!("broker-{id}")), &overrides).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_controller_alters_and_every_broker_follows() {
    let Some(zk) = ZooKeeperServer::start() else {
        return;
    };
    let connect = format!("{}/scram", zk.connect_string());
    let tmp = tempfile::tempdir().unwrap();
    let first = start(tmp.path(), 1, &connect).await;
    let second = start(tmp.path(), 2, &connect).await;
    let (first_ref, second_ref) = (&first, &second);
    wait_until(
        Duration::from_secs(30),
        "a controller is elected",
        || async move {
            first_ref.api().controller.is_active() || second_ref.api().controller.is_active()
        },
    )
    .await
    .unwrap();
    let (controller, other) = if first.api().controller.is_active() {
        (&first, &second)
    } else {
        (&second, &first)
    };
    let store = other.api().configs.store().clone();

    // Elsewhere than on the controller: NOT_CONTROLLER for every user named, once each,
    // sorted, as Kafka's error response lists them; nothing is written.
    let mut c = Conn::connect(other.port).await;
    let mut request = AlterUserScramCredentialsRequest::default();
    request.upsertions = vec![
        upsert("zoe", SHA256, 4096),
        upsert("alice", SHA256, 4096),
        upsert("zoe", 0, 1),
    ];
    request.deletions = vec![deletion("bob", SHA512), deletion("alice", SHA512)];
    let refused: Vec<(String, i16, Option<String>)> = c
        .send(0, request)
        .await
        .results
        .into_iter()
        .map(|r| {
            (
                r.user.to_string(),
                r.error_code,
                r.error_message.map(|m| m.to_string()),
            )
        })
        .collect();
    assert_eq!(
        refused,
        vec![
            ("alice".to_string(), NOT_CONTROLLER, None),
            ("bob".to_string(), NOT_CONTROLLER, None),
            ("zoe".to_string(), NOT_CONTROLLER, None),
        ]
    );
    assert_eq!(
        store
            .children("/config/users")
            .await
            .unwrap()
            .unwrap_or_default(),
        Vec::<String>::new()
    );

    // On the controller: stored in ZooKeeper byte for byte as Kafka stores it.
    let mut cc = Conn::connect(controller.port).await;
    let results = alter(
        &mut cc,
        vec![
            upsertion("alice", SHA256, ALICE_PASSWORD, ALICE_SALT, 8192),
            upsertion("alice", SHA512, ALICE_PASSWORD, ALICE_SALT, 8192),
        ],
        vec![],
    )
    .await;
    assert_eq!(results.get("alice"), Some(&(0, None)));
    assert_eq!(
        znode(&store, "/config/users/alice").await.as_deref(),
        Some(
            format!(
                r#"{{"version":1,"config":{{"SCRAM-SHA-256":"{ALICE_SHA256}","SCRAM-SHA-512":"{ALICE_SHA512}"}}}}"#
            )
            .as_str()
        )
    );
    assert!(notified(&store).await.contains(&"users/alice".to_string()));

    // The other broker follows the notification: its cache, its logins, its Describe.
    wait_until(
        Duration::from_secs(15),
        "the other broker has alice's credentials",
        || async move {
            cached(other, "alice", Mechanism::ScramSha256).as_deref() == Some(ALICE_SHA256)
                && cached(other, "alice", Mechanism::ScramSha512).as_deref() == Some(ALICE_SHA512)
        },
    )
    .await
    .unwrap();
    for mechanism in [Mechanism::ScramSha256, Mechanism::ScramSha512] {
        login(sasl_port(other), mechanism, "alice", ALICE_PASSWORD)
            .await
            .unwrap_or_else(|e| panic!("{mechanism} login on the other broker: {e}"));
    }
    assert_eq!(
        describe_users(&mut c, None).await,
        vec![(
            "alice".to_string(),
            Ok(vec![(SHA256, 8192), (SHA512, 8192)])
        )]
    );

    // A deletion reaches it the same way.
    let results = alter(&mut cc, vec![], vec![deletion("alice", SHA256)]).await;
    assert_eq!(results.get("alice"), Some(&(0, None)));
    wait_until(
        Duration::from_secs(15),
        "the other broker drops alice's SCRAM-SHA-256",
        || async move { cached(other, "alice", Mechanism::ScramSha256).is_none() },
    )
    .await
    .unwrap();
    assert!(
        login(
            sasl_port(other),
            Mechanism::ScramSha256,
            "alice",
            ALICE_PASSWORD
        )
        .await
        .is_err()
    );
    assert_eq!(
        describe_users(&mut c, Some(&["alice"])).await,
        vec![("alice".to_string(), Ok(vec![(SHA512, 8192)]))]
    );

    drop((c, cc));
    second.shutdown().await.unwrap();
    first.shutdown().await.unwrap();
}
