//! ACLs across three brokers on one real ZooKeeper: ACL znodes and change notifications
//! written straight into ZooKeeper, byte for byte as Kafka 2.4.1's `kafka-acls.sh
//! --authorizer-properties zookeeper.connect=...` writes them, take effect on every broker
//! within 5 s, and so does their removal; what CreateAcls writes is Kafka's format; a malformed
//! ACL znode denies its resource to everyone (logged) until it is fixed, while the brokers keep
//! serving.
//!
//! Effects are observed as a user sees them: `alice` (SASL PLAIN) may call DescribeAcls only
//! with Cluster DESCRIBE, and what DescribeAcls lists.

use crate::common;
use crate::security::PLAIN_JAAS;
use crate::security::acls::{ANY_FILTER, F, create, creation, describe, user};

use std::time::Duration;

use common::broker_process::free_port;
use common::cluster::{Cluster, wait_until};
use odradek::metadata::{CreateMode, MetadataStore};

const CLUSTER_AUTHORIZATION_FAILED: i16 = 31;
const LIMIT: Duration = Duration::from_secs(5);

struct Acls {
    cluster: Cluster,
    sasl_ports: Vec<u16>,
}

impl Acls {
    fn start() -> Option<Acls> {
        let ids = [1, 2, 3];
        let ports: Vec<(u16, u16)> = ids.iter().map(|_| (free_port(), free_port())).collect();
        let per_broker: Vec<(i32, Vec<String>)> = ids
            .iter()
            .zip(&ports)
            .map(|(id, (plain, sasl))| {
                (
                    *id,
                    vec![format!(
                        "listeners=PLAINTEXT://127.0.0.1:{plain},SASL_PLAINTEXT://127.0.0.1:{sasl}"
                    )],
                )
            })
            .collect();
        let jaas = format!("listener.name.sasl_plaintext.plain.sasl.jaas.config={PLAIN_JAAS}");
        let common = [
            "sasl.enabled.mechanisms=PLAIN",
            jaas.as_str(),
            "authorizer.class.name=kafka.security.authorizer.AclAuthorizer",
            // The brokers reach each other on PLAINTEXT, as the anonymous principal.
            "super.users=User:admin;User:ANONYMOUS",
        ];
        let cluster = Cluster::start_each(per_broker, &common)?;
        Some(Acls {
            cluster,
            sasl_ports: ports.iter().map(|(_, s)| *s).collect(),
        })
    }

    /// Until alice's DescribeAcls on every broker is allowed (`true`) or refused.
    async fn alice_may_describe_everywhere(&self, allowed: bool, what: &str) {
        for &port in &self.sasl_ports {
            wait_until(LIMIT, &format!("{what} on port {port}"), || async move {
                let mut alice = user(port, "alice", "alice-secret").await;
                let r = describe(&mut alice, ANY_FILTER).await;
                if allowed {
                    r.is_ok()
                } else {
                    r == Err(CLUSTER_AUTHORIZATION_FAILED)
                }
            })
            .await
            .unwrap_or_else(|e| panic!("{e}\n{}", self.cluster.logs()));
        }
    }

    /// Until every broker's DescribeAcls (as admin) with `filter` lists exactly `want`.
    async fn everyone_lists(&self, filter: F<'_>, want: &[&str]) {
        for &port in &self.sasl_ports {
            wait_until(
                LIMIT,
                &format!("port {port} lists {want:?}"),
                || async move {
                    let mut admin = user(port, "admin", "admin-secret").await;
                    describe(&mut admin, filter).await.ok().as_deref()
                        == Some(&want.iter().map(|s| s.to_string()).collect::<Vec<_>>()[..])
                },
            )
            .await
            .unwrap_or_else(|e| panic!("{e}\n{}", self.cluster.logs()));
        }
    }
}

async fn write(store: &dyn MetadataStore, path: &str, data: &[u8]) {
    match store.get(path).await.unwrap() {
        Some(_) => {
            store.set(path, Some(data.to_vec()), None).await.unwrap();
        }
        None => {
            store
                .create(path, Some(data.to_vec()), CreateMode::Persistent)
                .await
                .unwrap();
        }
    }
}

async fn notify(store: &dyn MetadataStore, changes: &str, data: &[u8]) {
    store
        .create(
            &format!("{changes}/acl_changes_"),
            Some(data.to_vec()),
            CreateMode::PersistentSequential,
        )
        .await
        .unwrap();
}

async fn data_of(store: &dyn MetadataStore, path: &str) -> String {
    let (data, _) = store.get(path).await.unwrap().expect(path);
    String::from_utf8(data.unwrap_or_default()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acls_written_into_zookeeper_by_kafka_tools_reach_every_broker() {
    let Some(acls) = Acls::start() else {
        return;
    };
    let store = acls.cluster.store().await;
    let store: &dyn MetadataStore = &store;
    acls.alice_may_describe_everywhere(false, "alice refused before any ACL")
        .await;

    // `kafka-acls.sh --add --allow-principal User:alice --operation Describe --cluster` (2.4.1).
    write(
        store,
        "/kafka-acl/Cluster/kafka-cluster",
        br#"{"version":1,"acls":[{"principal":"User:alice","permissionType":"Allow","operation":"Describe","host":"*"}]}"#,
    )
    .await;
    notify(store, "/kafka-acl-changes", b"Cluster:kafka-cluster").await;
    acls.alice_may_describe_everywhere(true, "alice allowed by the tool's ACL")
        .await;

    // `--topic ord --resource-pattern-type prefixed --producer` and `--transactional-id tx-1`.
    write(
        store,
        "/kafka-acl-extended/prefixed/Topic/ord",
        br#"{"version":1,"acls":[{"principal":"User:bob","permissionType":"Allow","operation":"Write","host":"*"}]}"#,
    )
    .await;
    notify(
        store,
        "/kafka-acl-extended-changes",
        br#"{"version":1,"resourceType":"Topic","name":"ord","patternType":"PREFIXED"}"#,
    )
    .await;
    write(
        store,
        "/kafka-acl/TransactionalId/tx-1",
        br#"{"version":1,"acls":[{"principal":"User:bob","permissionType":"Allow","operation":"Write","host":"*"},{"principal":"User:bob","permissionType":"Allow","operation":"Describe","host":"*"}]}"#,
    )
    .await;
    notify(store, "/kafka-acl-changes", b"TransactionalId:tx-1").await;
    acls.everyone_lists(
        F {
            principal: Some("User:bob"),
            ..ANY_FILTER
        },
        &[
            "3/5/tx-1 User:bob * 4 3",
            "3/5/tx-1 User:bob * 8 3",
            "4/2/ord User:bob * 4 3",
        ],
    )
    .await;

    // A malformed node: its resource is denied to everyone, other resources are unaffected,
    // every broker keeps serving and says why; fixed, it works again.
    write(
        store,
        "/kafka-acl/Cluster/kafka-cluster",
        b"{\"version\":1,\"acls\":[{\"princ",
    )
    .await;
    notify(store, "/kafka-acl-changes", b"CLUSTER:kafka-cluster").await;
    acls.alice_may_describe_everywhere(false, "the malformed cluster ACL denies alice")
        .await;
    acls.everyone_lists(
        F {
            principal: Some("User:bob"),
            ..ANY_FILTER
        },
        &[
            "3/5/tx-1 User:bob * 4 3",
            "3/5/tx-1 User:bob * 8 3",
            "4/2/ord User:bob * 4 3",
        ],
    )
    .await;
    for b in acls.cluster.brokers.values() {
        assert!(
            b.log_tail().contains("unreadable ACL znode"),
            "{}",
            b.log_tail()
        );
    }
    write(
        store,
        "/kafka-acl/Cluster/kafka-cluster",
        br#"{"version":1,"acls":[{"principal":"User:alice","permissionType":"Allow","operation":"Describe","host":"*"}]}"#,
    )
    .await;
    notify(store, "/kafka-acl-changes", b"Cluster:kafka-cluster").await;
    acls.alice_may_describe_everywhere(true, "the fixed node allows alice again")
        .await;

    // `kafka-acls.sh --remove`: the node goes, a notification tells the brokers.
    store
        .delete("/kafka-acl/Cluster/kafka-cluster", None)
        .await
        .unwrap();
    notify(store, "/kafka-acl-changes", b"Cluster:kafka-cluster").await;
    acls.alice_may_describe_everywhere(false, "alice refused once the ACL is removed")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_acls_writes_kafkas_znodes_and_every_broker_follows() {
    let Some(acls) = Acls::start() else {
        return;
    };
    let store = acls.cluster.store().await;
    let store: &dyn MetadataStore = &store;
    // The authorizer's directories, as Kafka's creates them.
    for root in ["/kafka-acl", "/kafka-acl-extended/prefixed"] {
        let mut dirs = store.children(root).await.unwrap().unwrap();
        dirs.sort();
        assert_eq!(
            dirs,
            vec![
                "Cluster",
                "DelegationToken",
                "Group",
                "Topic",
                "TransactionalId",
                "User"
            ]
        );
    }
    let mut admin = user(acls.sasl_ports[0], "admin", "admin-secret").await;
    let before_literal = store.children("/kafka-acl-changes").await.unwrap().unwrap();
    let before_prefixed = store
        .children("/kafka-acl-extended-changes")
        .await
        .unwrap()
        .unwrap();
    let results = create(
        &mut admin,
        vec![
            creation(4, "kafka-cluster", 3, "User:alice", "*", 8, 3),
            creation(5, "tx-1", 3, "User:bob", "10.0.0.1", 4, 2),
            creation(2, "orders-", 4, "User:bob", "*", 3, 3),
        ],
    )
    .await;
    assert_eq!(results, vec![(0, None); 3]);
    assert_eq!(
        data_of(store, "/kafka-acl/Cluster/kafka-cluster").await,
        r#"{"version":1,"acls":[{"principal":"User:alice","permissionType":"Allow","operation":"Describe","host":"*"}]}"#
    );
    assert_eq!(
        data_of(store, "/kafka-acl/TransactionalId/tx-1").await,
        r#"{"version":1,"acls":[{"principal":"User:bob","permissionType":"Deny","operation":"Write","host":"10.0.0.1"}]}"#
    );
    assert_eq!(
        data_of(store, "/kafka-acl-extended/prefixed/Topic/orders-").await,
        r#"{"version":1,"acls":[{"principal":"User:bob","permissionType":"Allow","operation":"Read","host":"*"}]}"#
    );
    let mut literal = Vec::new();
    for c in store.children("/kafka-acl-changes").await.unwrap().unwrap() {
        if !before_literal.contains(&c) {
            assert!(
                c.starts_with("acl_changes_") && c.len() == "acl_changes_".len() + 10,
                "{c}"
            );
            literal.push(data_of(store, &format!("/kafka-acl-changes/{c}")).await);
        }
    }
    literal.sort();
    assert_eq!(
        literal,
        vec!["CLUSTER:kafka-cluster", "TRANSACTIONAL_ID:tx-1"]
    );
    let mut prefixed = Vec::new();
    for c in store
        .children("/kafka-acl-extended-changes")
        .await
        .unwrap()
        .unwrap()
    {
        if !before_prefixed.contains(&c) {
            prefixed.push(data_of(store, &format!("/kafka-acl-extended-changes/{c}")).await);
        }
    }
    assert_eq!(
        prefixed,
        vec![r#"{"version":1,"resourceType":"TOPIC","name":"orders-","patternType":"PREFIXED"}"#]
    );
    // The other brokers learn of them through the notifications.
    acls.alice_may_describe_everywhere(true, "alice allowed by CreateAcls on broker 1")
        .await;
}
