//! The ACL admin APIs on one broker with `AclAuthorizer` on, over the wire, on both metadata
//! stores: who may call them, what they create, what describe filters select, what delete
//! removes, and what Kafka refuses. Clients log in with SASL PLAIN as `admin` (a super user)
//! or `alice` (no ACLs of her own at first).

use crate::common;
use crate::security::{PLAIN_JAAS, connect, login};

use std::time::Duration;

use common::wire::{Conn, STORES, Store, s, start_broker_on};
use kafka_protocol::ResponseError;
use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
use kafka_protocol::messages::*;
use odradek::client::{Connection, Security};
use odradek::security::sasl::Mechanism;

// Codes of the ACL enums (Kafka's wire codes).
pub const ANY: i8 = 1;
const MATCH: i8 = 2;
const LITERAL: i8 = 3;
const PREFIXED: i8 = 4;
const TOPIC: i8 = 2;
const GROUP: i8 = 3;
const CLUSTER: i8 = 4;
const TRANSACTIONAL_ID: i8 = 5;
const READ: i8 = 3;
const WRITE: i8 = 4;
const ALTER: i8 = 7;
const DESCRIBE: i8 = 8;
const DENY: i8 = 2;
const ALLOW: i8 = 3;

/// A broker with the authorizer on: `admin` is a super user, as is the anonymous principal of
/// the plaintext listener the broker itself uses.
fn secured() -> Vec<String> {
    vec![
        "listeners=PLAINTEXT://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0".into(),
        "advertised.listeners=PLAINTEXT://localhost:0,SASL_PLAINTEXT://localhost:0".into(),
        "sasl.enabled.mechanisms=PLAIN".into(),
        format!("listener.name.sasl_plaintext.plain.sasl.jaas.config={PLAIN_JAAS}"),
        "authorizer.class.name=kafka.security.authorizer.AclAuthorizer".into(),
        "super.users=User:admin;User:ANONYMOUS".into(),
    ]
}

fn refs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

pub async fn user(port: u16, name: &str, password: &str) -> Connection {
    connect(
        port,
        Security {
            tls: None,
            sasl: login(Mechanism::Plain, name, password),
        },
    )
    .await
    .unwrap()
}

#[allow(clippy::too_many_arguments)]
pub fn creation(
    resource_type: i8,
    name: &str,
    pattern: i8,
    principal: &str,
    host: &str,
    operation: i8,
    permission: i8,
) -> AclCreation {
    AclCreation::default()
        .with_resource_type(resource_type)
        .with_resource_name(s(name))
        .with_resource_pattern_type(pattern)
        .with_principal(s(principal))
        .with_host(s(host))
        .with_operation(operation)
        .with_permission_type(permission)
}

pub async fn create(c: &mut Connection, creations: Vec<AclCreation>) -> Vec<(i16, Option<String>)> {
    let request = CreateAclsRequest::default().with_creations(creations);
    match c.call(ApiKey::CreateAcls, request.into()).await.unwrap() {
        ResponseKind::CreateAcls(r) => r
            .results
            .into_iter()
            .map(|r| (r.error_code, r.error_message.map(|m| m.to_string())))
            .collect(),
        other => panic!("{other:?}"),
    }
}

/// A filter: everything `None`/ANY except what is given.
#[derive(Clone, Copy)]
pub struct F<'a> {
    pub resource_type: i8,
    pub name: Option<&'a str>,
    pub pattern: i8,
    pub principal: Option<&'a str>,
    pub host: Option<&'a str>,
    pub operation: i8,
    pub permission: i8,
}

pub const ANY_FILTER: F<'static> = F {
    resource_type: ANY,
    name: None,
    pattern: ANY,
    principal: None,
    host: None,
    operation: ANY,
    permission: ANY,
};

/// Each ACL a DescribeAcls returns, as `PATTERN_CODE/type/name principal host op perm`, sorted.
pub async fn describe(c: &mut Connection, f: F<'_>) -> Result<Vec<String>, i16> {
    let request = DescribeAclsRequest::default()
        .with_resource_type_filter(f.resource_type)
        .with_resource_name_filter(f.name.map(s))
        .with_pattern_type_filter(f.pattern)
        .with_principal_filter(f.principal.map(s))
        .with_host_filter(f.host.map(s))
        .with_operation(f.operation)
        .with_permission_type(f.permission);
    match c.call(ApiKey::DescribeAcls, request.into()).await.unwrap() {
        ResponseKind::DescribeAcls(r) if r.error_code != 0 => Err(r.error_code),
        ResponseKind::DescribeAcls(r) => {
            let mut out = Vec::new();
            for res in r.resources {
                for a in res.acls {
                    out.push(format!(
                        "{}/{}/{} {} {} {} {}",
                        res.pattern_type,
                        res.resource_type,
                        res.resource_name,
                        a.principal,
                        a.host,
                        a.operation,
                        a.permission_type
                    ));
                }
            }
            out.sort();
            Ok(out)
        }
        other => panic!("{other:?}"),
    }
}

/// What each filter deleted, as in `describe`, with the filter's error code.
pub async fn delete(c: &mut Connection, filters: &[F<'_>]) -> Vec<(i16, Vec<String>)> {
    let request = DeleteAclsRequest::default().with_filters(
        filters
            .iter()
            .map(|f| {
                DeleteAclsFilter::default()
                    .with_resource_type_filter(f.resource_type)
                    .with_resource_name_filter(f.name.map(s))
                    .with_pattern_type_filter(f.pattern)
                    .with_principal_filter(f.principal.map(s))
                    .with_host_filter(f.host.map(s))
                    .with_operation(f.operation)
                    .with_permission_type(f.permission)
            })
            .collect(),
    );
    match c.call(ApiKey::DeleteAcls, request.into()).await.unwrap() {
        ResponseKind::DeleteAcls(r) => r
            .filter_results
            .into_iter()
            .map(|fr| {
                let mut acls: Vec<String> = fr
                    .matching_acls
                    .into_iter()
                    .map(|a| {
                        assert_eq!(a.error_code, 0, "{a:?}");
                        format!(
                            "{}/{}/{} {} {} {} {}",
                            a.pattern_type,
                            a.resource_type,
                            a.resource_name,
                            a.principal,
                            a.host,
                            a.operation,
                            a.permission_type
                        )
                    })
                    .collect();
                acls.sort();
                (fr.error_code, acls)
            })
            .collect(),
        other => panic!("{other:?}"),
    }
}

/// The broker's count of denied authorizations (shared by every broker in this process, so
/// it only ever grows).
fn denials() -> u64 {
    let text = odradek::metrics::global().render();
    text.lines()
        .find_map(|l| l.strip_prefix("kafka_server_authorizer_metrics_authorization_denied_total "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acls_are_created_described_and_deleted_by_whoever_may() {
    for store in STORES {
        acl_admin_on(store).await;
    }
}

async fn acl_admin_on(store: Store) {
    let dir = tempfile::tempdir().unwrap();
    let Some((broker, _zk)) = start_broker_on(store, dir.path(), &refs(&secured())).await else {
        return;
    };
    let port = broker.port_of("SASL_PLAINTEXT").unwrap();
    let mut admin = user(port, "admin", "admin-secret").await;
    let mut alice = user(port, "alice", "alice-secret").await;
    let failed = ResponseError::ClusterAuthorizationFailed.code();
    let refused = (failed, Some("Request is not authorized.".to_string()));

    // Without Cluster ALTER / DESCRIBE alice may neither create nor describe; each refusal
    // is counted.
    let grant = creation(TOPIC, "mine", LITERAL, "User:alice", "*", READ, ALLOW);
    let denied_before = denials();
    assert_eq!(
        create(&mut alice, vec![grant.clone()]).await,
        vec![refused.clone()]
    );
    assert!(denials() > denied_before, "the denial is counted");
    assert_eq!(describe(&mut alice, ANY_FILTER).await, Err(failed));
    assert_eq!(
        delete(&mut alice, &[ANY_FILTER]).await,
        vec![(failed, vec![])]
    );

    let results = create(
        &mut admin,
        vec![
            creation(
                CLUSTER,
                "kafka-cluster",
                LITERAL,
                "User:alice",
                "*",
                ALTER,
                ALLOW,
            ),
            creation(
                CLUSTER,
                "kafka-cluster",
                LITERAL,
                "User:alice",
                "*",
                DESCRIBE,
                ALLOW,
            ),
            creation(TOPIC, "orders", LITERAL, "User:bob", "*", READ, ALLOW),
            creation(TOPIC, "ord", PREFIXED, "User:*", "10.0.0.1", WRITE, ALLOW),
            creation(GROUP, "*", LITERAL, "User:bob", "*", READ, DENY),
            creation(
                TRANSACTIONAL_ID,
                "tx-",
                PREFIXED,
                "User:bob",
                "*",
                WRITE,
                ALLOW,
            ),
        ],
    )
    .await;
    assert_eq!(results, vec![(0, None); 6]);
    // Creating one again is a silent success.
    assert_eq!(
        create(
            &mut admin,
            vec![creation(
                TOPIC, "orders", LITERAL, "User:bob", "*", READ, ALLOW
            )]
        )
        .await,
        vec![(0, None)]
    );

    // Granted Cluster ALTER, alice now may.
    assert_eq!(create(&mut alice, vec![grant]).await, vec![(0, None)]);
    let all = describe(&mut alice, ANY_FILTER).await.unwrap();
    assert_eq!(
        all,
        vec![
            "3/2/mine User:alice * 3 3",
            "3/2/orders User:bob * 3 3",
            "3/3/* User:bob * 3 2",
            "3/4/kafka-cluster User:alice * 7 3",
            "3/4/kafka-cluster User:alice * 8 3",
            "4/2/ord User:* 10.0.0.1 4 3",
            "4/5/tx- User:bob * 4 3",
        ]
    );

    let topic = |name, pattern| F {
        resource_type: TOPIC,
        name,
        pattern,
        ..ANY_FILTER
    };
    assert_eq!(
        describe(&mut admin, topic(Some("orders"), MATCH))
            .await
            .unwrap(),
        vec!["3/2/orders User:bob * 3 3", "4/2/ord User:* 10.0.0.1 4 3"]
    );
    assert_eq!(
        describe(&mut admin, topic(Some("orders"), ANY))
            .await
            .unwrap(),
        vec!["3/2/orders User:bob * 3 3"]
    );
    assert_eq!(
        describe(&mut admin, topic(None, LITERAL)).await.unwrap(),
        vec!["3/2/mine User:alice * 3 3", "3/2/orders User:bob * 3 3"]
    );
    assert_eq!(
        describe(
            &mut admin,
            F {
                pattern: PREFIXED,
                ..ANY_FILTER
            }
        )
        .await
        .unwrap(),
        vec!["4/2/ord User:* 10.0.0.1 4 3", "4/5/tx- User:bob * 4 3"]
    );
    assert_eq!(
        describe(&mut admin, topic(Some("ord"), LITERAL))
            .await
            .unwrap(),
        Vec::<String>::new()
    );
    assert_eq!(
        describe(
            &mut admin,
            F {
                principal: Some("User:bob"),
                ..ANY_FILTER
            }
        )
        .await
        .unwrap(),
        vec![
            "3/2/orders User:bob * 3 3",
            "3/3/* User:bob * 3 2",
            "4/5/tx- User:bob * 4 3"
        ]
    );
    assert_eq!(
        describe(
            &mut admin,
            F {
                host: Some("10.0.0.1"),
                ..ANY_FILTER
            }
        )
        .await
        .unwrap(),
        vec!["4/2/ord User:* 10.0.0.1 4 3"]
    );
    assert_eq!(
        describe(
            &mut admin,
            F {
                operation: DESCRIBE,
                ..ANY_FILTER
            }
        )
        .await
        .unwrap(),
        vec!["3/4/kafka-cluster User:alice * 8 3"]
    );
    assert_eq!(
        describe(
            &mut admin,
            F {
                permission: DENY,
                ..ANY_FILTER
            }
        )
        .await
        .unwrap(),
        vec!["3/3/* User:bob * 3 2"]
    );

    // Delete: one filter matching nothing (no error, nothing deleted), one matching two.
    let results = delete(
        &mut admin,
        &[
            F {
                principal: Some("User:nobody"),
                ..ANY_FILTER
            },
            F {
                pattern: PREFIXED,
                ..ANY_FILTER
            },
        ],
    )
    .await;
    assert_eq!(
        results,
        vec![
            (0, vec![]),
            (
                0,
                vec![
                    "4/2/ord User:* 10.0.0.1 4 3".to_string(),
                    "4/5/tx- User:bob * 4 3".to_string()
                ]
            )
        ]
    );
    assert!(
        describe(
            &mut admin,
            F {
                pattern: PREFIXED,
                ..ANY_FILTER
            }
        )
        .await
        .unwrap()
        .is_empty()
    );
    // Taking away alice's Cluster ALTER takes away her right to change ACLs at once.
    delete(
        &mut admin,
        &[F {
            resource_type: CLUSTER,
            operation: ALTER,
            ..ANY_FILTER
        }],
    )
    .await;
    let again = creation(TOPIC, "x", LITERAL, "User:alice", "*", READ, ALLOW);
    assert_eq!(create(&mut alice, vec![again]).await, vec![refused.clone()]);
    assert_eq!(
        describe(&mut alice, ANY_FILTER).await.unwrap().len(),
        4,
        "DESCRIBE remains"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_acls_get_kafkas_errors_and_nothing_is_created() {
    for store in STORES {
        bad_acls_on(store).await;
    }
}

async fn bad_acls_on(store: Store) {
    let dir = tempfile::tempdir().unwrap();
    let Some((broker, _zk)) = start_broker_on(store, dir.path(), &refs(&secured())).await else {
        return;
    };
    let port = broker.port_of("SASL_PLAINTEXT").unwrap();
    let mut admin = user(port, "admin", "admin-secret").await;
    let invalid = ResponseError::InvalidRequest.code();
    let huge = "n".repeat(250 * 1024);
    let results = create(
        &mut admin,
        vec![
            creation(
                CLUSTER,
                "other-cluster",
                LITERAL,
                "User:a",
                "*",
                ALTER,
                ALLOW,
            ),
            creation(TOPIC, "", LITERAL, "User:a", "*", READ, ALLOW),
            creation(TOPIC, "a/b", LITERAL, "User:a", "*", READ, ALLOW),
            creation(ANY, "t", LITERAL, "User:a", "*", READ, ALLOW),
            creation(TOPIC, "t", MATCH, "User:a", "*", READ, ALLOW),
            creation(TOPIC, "t", LITERAL, "User:a", "*", ANY, ALLOW),
            creation(TOPIC, "t", LITERAL, "alice", "*", READ, ALLOW),
            creation(TOPIC, &huge, LITERAL, "User:a", "*", READ, ALLOW),
            creation(TOPIC, "fine", LITERAL, "User:a", "*", READ, ALLOW),
        ],
    )
    .await;
    let codes: Vec<i16> = results.iter().map(|(c, _)| *c).collect();
    assert_eq!(
        codes,
        vec![
            invalid,
            invalid,
            invalid,
            invalid,
            invalid,
            invalid,
            ResponseError::UnknownServerError.code(),
            invalid,
            0
        ],
        "{results:?}"
    );
    assert_eq!(
        results[0].1.as_deref(),
        Some("The only valid name for the CLUSTER resource is kafka-cluster")
    );
    assert_eq!(results[1].1.as_deref(), Some("Invalid empty resource name"));
    // Only the valid one exists; the broker keeps serving.
    assert_eq!(
        describe(&mut admin, ANY_FILTER).await.unwrap(),
        vec!["3/2/fine User:a * 3 3"]
    );

    // An UNKNOWN enum value fails to parse in Kafka: the connection is closed.
    let plain = broker.port_of("PLAINTEXT").unwrap();
    let mut raw = Conn::connect(plain).await;
    raw.send_request(
        ApiKey::DescribeAcls,
        3,
        DescribeAclsRequest::default()
            .with_resource_type_filter(0)
            .with_pattern_type_filter(ANY)
            .with_operation(ANY)
            .with_permission_type(ANY)
            .into(),
    )
    .await;
    assert!(
        raw.is_closed().await,
        "UNKNOWN resource type closes the connection"
    );
    let mut raw = Conn::connect(plain).await;
    raw.send_request(
        ApiKey::CreateAcls,
        0,
        CreateAclsRequest::default()
            .with_creations(vec![creation(TOPIC, "t", LITERAL, "User:a", "*", 0, ALLOW)])
            .into(),
    )
    .await;
    assert!(
        raw.is_closed().await,
        "UNKNOWN operation closes the connection"
    );
    // The broker is fine.
    assert_eq!(describe(&mut admin, ANY_FILTER).await.unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_authorizer_the_acl_apis_say_security_disabled() {
    for store in STORES {
        let dir = tempfile::tempdir().unwrap();
        let Some((broker, _zk)) = start_broker_on(store, dir.path(), &[]).await else {
            return;
        };
        let mut c = connect(broker.port, Security::default()).await.unwrap();
        let disabled = ResponseError::SecurityDisabled.code();
        assert_eq!(describe(&mut c, ANY_FILTER).await, Err(disabled));
        let results = create(
            &mut c,
            vec![creation(TOPIC, "t", LITERAL, "User:a", "*", READ, ALLOW)],
        )
        .await;
        assert_eq!(results[0].0, disabled);
        assert_eq!(
            delete(&mut c, &[ANY_FILTER]).await,
            vec![(disabled, vec![])]
        );
        // Nothing was written.
        assert!(
            broker.api().acls.is_none() && broker.api().authorizer.is_none(),
            "no authorizer configured"
        );
        tokio::time::timeout(Duration::from_secs(30), broker.shutdown())
            .await
            .ok();
    }
}
