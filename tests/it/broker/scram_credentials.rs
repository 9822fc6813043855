//! DescribeUserScramCredentials and AlterUserScramCredentials (KIP-554) over the wire against a
//! broker in this process: what lands in `/config/users/<user>` (Kafka's exact format, checked
//! against an independently computed test vector), the notification other brokers follow, every
//! refusal with Kafka's code and text, and that a credential works for a SCRAM login the moment
//! the Alter returns.

use crate::common;

use std::collections::BTreeMap;

use common::scram::*;
use common::wire::{Conn, start_broker};
use odradek::metadata::CreateMode;
use odradek::security::sasl::Mechanism;
use odradek::security::scram::ScramCredential;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upserted_credentials_are_stored_as_kafka_stores_them_and_log_in_at_once() {
    let tmp = tempfile::tempdir().unwrap();
    let broker = start_broker(tmp.path(), SASL_LISTENER).await;
    let store = broker.api().configs.store().clone();
    let mut c = Conn::connect(broker.port).await;
    let port = sasl_port(&broker);
    assert!(
        login(port, Mechanism::ScramSha256, "alice", ALICE_PASSWORD)
            .await
            .is_err(),
        "alice has no credential yet"
    );

    alter_ok(
        &mut c,
        vec![
            upsertion("alice", SHA256, ALICE_PASSWORD, ALICE_SALT, 8192),
            upsertion("alice", SHA512, ALICE_PASSWORD, ALICE_SALT, 8192),
        ],
        vec![],
    )
    .await;

    // Byte for byte what kafka-configs.sh writes for the same salt and password.
    assert_eq!(
        znode(&store, "/config/users/alice").await.as_deref(),
        Some(
            format!(
                r#"{{"version":1,"config":{{"SCRAM-SHA-256":"{ALICE_SHA256}","SCRAM-SHA-512":"{ALICE_SHA512}"}}}}"#
            )
            .as_str()
        )
    );
    assert_eq!(notified(&store).await, vec!["users/alice".to_string()]);

    // In the credential cache as soon as the Alter has returned: logins work at once.
    assert_eq!(
        cached(&broker, "alice", Mechanism::ScramSha256).as_deref(),
        Some(ALICE_SHA256)
    );
    assert_eq!(
        cached(&broker, "alice", Mechanism::ScramSha512).as_deref(),
        Some(ALICE_SHA512)
    );
    for mechanism in [Mechanism::ScramSha256, Mechanism::ScramSha512] {
        login(port, mechanism, "alice", ALICE_PASSWORD)
            .await
            .unwrap_or_else(|e| panic!("{mechanism} login: {e}"));
        assert!(
            login(port, mechanism, "alice", "wrong").await.is_err(),
            "{mechanism} with a wrong password"
        );
    }

    assert_eq!(
        describe_users(&mut c, Some(&["alice"])).await,
        vec![(
            "alice".to_string(),
            Ok(vec![(SHA256, 8192), (SHA512, 8192)])
        )]
    );
    // Null and empty both mean every user.
    let every: Option<&[&str]> = None;
    for all in [every, Some(&[])] {
        assert_eq!(
            describe_users(&mut c, all).await,
            vec![(
                "alice".to_string(),
                Ok(vec![(SHA256, 8192), (SHA512, 8192)])
            )]
        );
    }

    // A new password replaces the old one, for the store, the cache and logins alike.
    alter_ok(
        &mut c,
        vec![upsertion("alice", SHA256, "new-secret", b"othersalt", 4096)],
        vec![],
    )
    .await;
    login(port, Mechanism::ScramSha256, "alice", "new-secret")
        .await
        .unwrap();
    assert!(
        login(port, Mechanism::ScramSha256, "alice", ALICE_PASSWORD)
            .await
            .is_err()
    );
    assert_eq!(
        describe_users(&mut c, Some(&["alice"])).await,
        vec![(
            "alice".to_string(),
            Ok(vec![(SHA256, 4096), (SHA512, 8192)])
        )]
    );
    drop(c);
    broker.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_names_are_sanitized_in_znode_names_and_described_by_their_real_name() {
    let tmp = tempfile::tempdir().unwrap();
    let broker = start_broker(tmp.path(), SASL_LISTENER).await;
    let store = broker.api().configs.store().clone();
    let mut c = Conn::connect(broker.port).await;
    let users = ["bob@example.com", "star*user", "with space", "émile"];
    alter_ok(
        &mut c,
        users.iter().map(|u| upsert(u, SHA256, 4096)).collect(),
        vec![],
    )
    .await;
    let mut znodes = store
        .children("/config/users")
        .await
        .unwrap()
        .unwrap_or_default();
    znodes.sort();
    assert_eq!(
        znodes,
        vec![
            "%C3%A9mile",
            "bob%40example.com",
            "star%2Auser",
            "with%20space"
        ]
    );
    let mut paths = notified(&store).await;
    paths.sort();
    assert_eq!(
        paths,
        vec![
            "users/%C3%A9mile",
            "users/bob%40example.com",
            "users/star%2Auser",
            "users/with%20space"
        ]
    );
    // Listed by real name, sorted.
    let all: Vec<String> = describe_users(&mut c, None)
        .await
        .into_iter()
        .map(|(u, d)| {
            assert_eq!(d, Ok(vec![(SHA256, 4096)]), "{u}");
            u
        })
        .collect();
    assert_eq!(
        all,
        vec!["bob@example.com", "star*user", "with space", "émile"]
    );
    assert_eq!(
        describe_users(&mut c, Some(&["star*user"])).await,
        vec![("star*user".to_string(), Ok(vec![(SHA256, 4096)]))]
    );
    // The cache and logins use the real name too.
    assert!(cached(&broker, "bob@example.com", Mechanism::ScramSha256).is_some());
    assert!(cached(&broker, "bob%40example.com", Mechanism::ScramSha256).is_none());
    login(
        sasl_port(&broker),
        Mechanism::ScramSha256,
        "bob@example.com",
        "pw",
    )
    .await
    .unwrap();
    drop(c);
    broker.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_refusal_has_kafkas_code_and_text_and_spares_the_other_users() {
    let tmp = tempfile::tempdir().unwrap();
    let broker = start_broker(tmp.path(), &[]).await;
    let store = broker.api().configs.store().clone();
    let mut c = Conn::connect(broker.port).await;
    alter_ok(&mut c, vec![upsert("has-256", SHA256, 4096)], vec![]).await;

    let results = alter(
        &mut c,
        vec![
            upsert("", SHA256, 4096),
            upsert("mechanism-0", 0, 4096),
            upsert("mechanism-3", 3, 4096),
            upsert("few", SHA256, 4095),
            upsert("negative", SHA512, -1),
            upsert("many", SHA512, 16385),
            upsert("twice", SHA256, 4096),
            upsert("twice", SHA256, 8192),
            upsert("set-and-delete", SHA512, 4096),
            // One bad alteration fails the user's good one too.
            upsert("half-bad", SHA256, 4096),
            upsert("half-bad", SHA512, 100),
            upsert("has-256", SHA256, 8192),
            upsert("bounds", SHA256, 4096),
            upsert("bounds", SHA512, 16384),
            upsert("ok", SHA256, 8192),
        ],
        vec![
            deletion("set-and-delete", SHA512),
            deletion("delete-twice", SHA256),
            deletion("delete-twice", SHA256),
            deletion("never-had-any", SHA256),
            // has-256 has no SCRAM-SHA-512: its upsertion of SCRAM-SHA-256 fails with it.
            deletion("has-256", SHA512),
            deletion("delete-mechanism-9", 9),
        ],
    )
    .await;
    let err = |code: i16, text: &str| (code, Some(text.to_string()));
    let expected: BTreeMap<String, (i16, Option<String>)> = [
        (
            "",
            err(UNACCEPTABLE_CREDENTIAL, "Username must not be empty"),
        ),
        (
            "mechanism-0",
            err(UNSUPPORTED_SASL_MECHANISM, "Unknown SCRAM mechanism"),
        ),
        (
            "mechanism-3",
            err(UNSUPPORTED_SASL_MECHANISM, "Unknown SCRAM mechanism"),
        ),
        ("few", err(UNACCEPTABLE_CREDENTIAL, "Too few iterations")),
        (
            "negative",
            err(UNACCEPTABLE_CREDENTIAL, "Too few iterations"),
        ),
        ("many", err(UNACCEPTABLE_CREDENTIAL, "Too many iterations")),
        (
            "twice",
            err(
                DUPLICATE_RESOURCE,
                "A user credential cannot be altered twice in the same request",
            ),
        ),
        (
            "set-and-delete",
            err(
                DUPLICATE_RESOURCE,
                "A user credential cannot be altered twice in the same request",
            ),
        ),
        (
            "delete-twice",
            err(
                DUPLICATE_RESOURCE,
                "A user credential cannot be altered twice in the same request",
            ),
        ),
        (
            "never-had-any",
            err(
                RESOURCE_NOT_FOUND,
                "Attempt to delete a user credential that does not exist",
            ),
        ),
        (
            "has-256",
            err(
                RESOURCE_NOT_FOUND,
                "Attempt to delete a user credential that does not exist",
            ),
        ),
        (
            "half-bad",
            err(UNACCEPTABLE_CREDENTIAL, "Too few iterations"),
        ),
        (
            "delete-mechanism-9",
            err(UNSUPPORTED_SASL_MECHANISM, "Unknown SCRAM mechanism"),
        ),
        ("bounds", (0, None)),
        ("ok", (0, None)),
    ]
    .into_iter()
    .map(|(u, r)| (u.to_string(), r))
    .collect();
    for (user, want) in &expected {
        assert_eq!(results.get(user), Some(want), "user {user:?}");
    }
    assert_eq!(results.len(), expected.len(), "{results:#?}");

    // Only the accepted users were written; a refused user's good alteration was not.
    let mut written = store
        .children("/config/users")
        .await
        .unwrap()
        .unwrap_or_default();
    written.sort();
    assert_eq!(written, vec!["bounds", "has-256", "ok"]);
    assert_eq!(
        describe_users(&mut c, None).await,
        vec![
            (
                "bounds".to_string(),
                Ok(vec![(SHA256, 4096), (SHA512, 16384)])
            ),
            ("has-256".to_string(), Ok(vec![(SHA256, 4096)])),
            ("ok".to_string(), Ok(vec![(SHA256, 8192)])),
        ]
    );
    assert!(
        broker
            .api()
            .configs
            .credentials()
            .get("half-bad", Mechanism::ScramSha256)
            .is_none()
    );

    // Where one user has two mistakes, the last upsertion's reason is given, as Kafka's map
    // keeps it.
    let results = alter(
        &mut c,
        vec![
            upsert("two-faults", 0, 4096),
            upsert("two-faults", SHA256, 1),
        ],
        vec![deletion("two-faults", 7)],
    )
    .await;
    assert_eq!(
        results.get("two-faults"),
        Some(&err(UNACCEPTABLE_CREDENTIAL, "Too few iterations"))
    );
    drop(c);
    broker.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_removes_one_key_and_the_last_one_the_node() {
    let tmp = tempfile::tempdir().unwrap();
    let broker = start_broker(tmp.path(), SASL_LISTENER).await;
    let store = broker.api().configs.store().clone();
    let mut c = Conn::connect(broker.port).await;
    let port = sasl_port(&broker);
    alter_ok(
        &mut c,
        vec![
            upsertion("dave", SHA256, "dave-pw", b"s1", 4096),
            upsertion("dave", SHA512, "dave-pw", b"s2", 4096),
        ],
        vec![],
    )
    .await;
    login(port, Mechanism::ScramSha256, "dave", "dave-pw")
        .await
        .unwrap();

    alter_ok(&mut c, vec![], vec![deletion("dave", SHA256)]).await;
    let node: serde_json::Value =
        serde_json::from_str(&znode(&store, "/config/users/dave").await.unwrap()).unwrap();
    let keys: Vec<&String> = node["config"].as_object().unwrap().keys().collect();
    assert_eq!(keys, vec!["SCRAM-SHA-512"]);
    assert!(cached(&broker, "dave", Mechanism::ScramSha256).is_none());
    assert!(cached(&broker, "dave", Mechanism::ScramSha512).is_some());
    assert!(
        login(port, Mechanism::ScramSha256, "dave", "dave-pw")
            .await
            .is_err()
    );
    login(port, Mechanism::ScramSha512, "dave", "dave-pw")
        .await
        .unwrap();
    assert_eq!(
        describe_users(&mut c, Some(&["dave"])).await,
        vec![("dave".to_string(), Ok(vec![(SHA512, 4096)]))]
    );

    // The last credential: Kafka 3.5+ (KAFKA-14285) deletes a user node left empty, and still
    // notifies the brokers, which then drop the user.
    alter_ok(&mut c, vec![], vec![deletion("dave", SHA512)]).await;
    assert_eq!(znode(&store, "/config/users/dave").await, None);
    assert_eq!(
        notified(&store).await,
        vec!["users/dave", "users/dave", "users/dave"]
    );
    assert!(cached(&broker, "dave", Mechanism::ScramSha512).is_none());
    assert!(
        login(port, Mechanism::ScramSha512, "dave", "dave-pw")
            .await
            .is_err()
    );
    assert_eq!(
        describe_users(&mut c, Some(&["dave"])).await,
        vec![(
            "dave".to_string(),
            Err((
                RESOURCE_NOT_FOUND,
                Some("Attempt to describe a user credential that does not exist: dave".into())
            ))
        )]
    );

    // A node that also holds quotas keeps them through upserts and deletes, and stays.
    let quota = br#"{"version":1,"config":{"producer_byte_rate":"1024"}}"#;
    store
        .create(
            "/config/users/erin",
            Some(quota.to_vec()),
            CreateMode::Persistent,
        )
        .await
        .unwrap();
    // Quotas alone are no credential.
    assert_eq!(describe_users(&mut c, None).await, vec![]);
    alter_ok(&mut c, vec![upsert("erin", SHA512, 4096)], vec![]).await;
    let node: serde_json::Value =
        serde_json::from_str(&znode(&store, "/config/users/erin").await.unwrap()).unwrap();
    assert_eq!(node["config"]["producer_byte_rate"], "1024");
    assert!(node["config"]["SCRAM-SHA-512"].is_string());
    alter_ok(&mut c, vec![], vec![deletion("erin", SHA512)]).await;
    assert_eq!(
        znode(&store, "/config/users/erin").await.as_deref(),
        Some(std::str::from_utf8(quota).unwrap())
    );
    drop(c);
    broker.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_reads_the_store_and_answers_each_name_once() {
    let tmp = tempfile::tempdir().unwrap();
    let broker = start_broker(tmp.path(), &[]).await;
    let store = broker.api().configs.store().clone();
    let mut c = Conn::connect(broker.port).await;
    alter_ok(&mut c, vec![upsert("zed", SHA512, 5000)], vec![]).await;

    // What kafka-configs.sh --zookeeper wrote, without a notification: Describe reads the node.
    store
        .create(
            "/config/users/frank",
            Some(
                format!(r#"{{"version":1,"config":{{"SCRAM-SHA-256":"{ALICE_SHA256}"}}}}"#)
                    .into_bytes(),
            ),
            CreateMode::Persistent,
        )
        .await
        .unwrap();
    // A user with quotas only is no SCRAM user.
    store
        .create(
            "/config/users/quota-only",
            Some(br#"{"version":1,"config":{"consumer_byte_rate":"10"}}"#.to_vec()),
            CreateMode::Persistent,
        )
        .await
        .unwrap();

    let results = describe_users(
        &mut c,
        Some(&[
            "zed",
            "",
            "frank",
            "nobody",
            "twice",
            "quota-only",
            "twice",
            "",
        ]),
    )
    .await;
    assert_eq!(
        results,
        vec![
            ("zed".to_string(), Ok(vec![(SHA512, 5000)])),
            (
                String::new(),
                Err((RESOURCE_NOT_FOUND, Some("Username must not be empty".into())))
            ),
            ("frank".to_string(), Ok(vec![(SHA256, 8192)])),
            (
                "nobody".to_string(),
                Err((
                    RESOURCE_NOT_FOUND,
                    Some(
                        "Attempt to describe a user credential that does not exist: nobody"
                            .into()
                    )
                ))
            ),
            (
                "twice".to_string(),
                Err((
                    DUPLICATE_RESOURCE,
                    Some(
                        "Cannot describe SCRAM credentials for the same user twice in a single request: twice"
                            .into()
                    )
                ))
            ),
            (
                "quota-only".to_string(),
                Err((
                    RESOURCE_NOT_FOUND,
                    Some(
                        "Attempt to describe a user credential that does not exist: quota-only"
                            .into()
                    )
                ))
            ),
        ]
    );
    assert_eq!(
        describe_users(&mut c, None).await,
        vec![
            ("frank".to_string(), Ok(vec![(SHA256, 8192)])),
            ("zed".to_string(), Ok(vec![(SHA512, 5000)])),
        ]
    );
    drop(c);
    broker.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_credentials_written_by_another_tool_are_reported_and_overwritten() {
    let tmp = tempfile::tempdir().unwrap();
    let broker = start_broker(tmp.path(), &[]).await;
    let store = broker.api().configs.store().clone();
    let mut c = Conn::connect(broker.port).await;
    alter_ok(&mut c, vec![upsert("fine", SHA256, 4096)], vec![]).await;
    store
        .create(
            "/config/users/garbled",
            Some(
                br#"{"version":1,"config":{"SCRAM-SHA-256":"salt=???,iterations=x","request_percentage":"50.0"}}"#
                    .to_vec(),
            ),
            CreateMode::Persistent,
        )
        .await
        .unwrap();
    store
        .create(
            "/config/users/not-json",
            Some(b"{not json".to_vec()),
            CreateMode::Persistent,
        )
        .await
        .unwrap();

    // As Kafka: the user with a credential that does not parse fails on its own with
    // UNKNOWN_SERVER_ERROR; a node that is not JSON holds nothing.
    let unexpected = Err((
        UNKNOWN_SERVER_ERROR,
        Some("The server experienced an unexpected error when processing the request.".into()),
    ));
    assert_eq!(
        describe_users(&mut c, None).await,
        vec![
            ("fine".to_string(), Ok(vec![(SHA256, 4096)])),
            ("garbled".to_string(), unexpected.clone()),
        ]
    );
    assert_eq!(
        describe_users(&mut c, Some(&["garbled", "not-json"])).await,
        vec![
            ("garbled".to_string(), unexpected),
            (
                "not-json".to_string(),
                Err((
                    RESOURCE_NOT_FOUND,
                    Some(
                        "Attempt to describe a user credential that does not exist: not-json"
                            .into()
                    )
                ))
            ),
        ]
    );

    // Alter replaces the bad credential and keeps the other keys; deleting a bad one works.
    alter_ok(
        &mut c,
        vec![
            upsert("garbled", SHA256, 4096),
            upsert("not-json", SHA512, 4096),
        ],
        vec![],
    )
    .await;
    let node: serde_json::Value =
        serde_json::from_str(&znode(&store, "/config/users/garbled").await.unwrap()).unwrap();
    assert_eq!(node["config"]["request_percentage"], "50.0");
    let credential = node["config"]["SCRAM-SHA-256"].as_str().unwrap();
    assert_eq!(ScramCredential::parse(credential).unwrap().iterations, 4096);
    assert_eq!(
        describe_users(&mut c, Some(&["garbled", "not-json"])).await,
        vec![
            ("garbled".to_string(), Ok(vec![(SHA256, 4096)])),
            ("not-json".to_string(), Ok(vec![(SHA512, 4096)])),
        ]
    );
    store
        .set(
            "/config/users/garbled",
            Some(br#"{"version":1,"config":{"SCRAM-SHA-512":"garbage"}}"#.to_vec()),
            None,
        )
        .await
        .unwrap();
    alter_ok(&mut c, vec![], vec![deletion("garbled", SHA512)]).await;
    assert_eq!(znode(&store, "/config/users/garbled").await, None);
    drop(c);
    broker.shutdown().await.unwrap();
}
