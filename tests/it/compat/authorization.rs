//! The Java client (kafka-clients 3.9, `compat-tests/java/Authorization.java`) against a broker
//! process with the ACL authorizer: consumer groups, transactional and idempotent producers,
//! each with the ACLs Kafka requires (they work) and without one of them (the client throws the
//! `AuthorizationException` subclass Kafka's error code maps to).

use std::time::Duration;

use crate::common;
use common::broker_process::{BrokerProcess, free_port};

const PASSWORD: &str = "authz-secret";

/// The PLAIN users of the SASL listener: one per case of the Java program.
const USERS: [&str; 9] = [
    "j_consumer",
    "j_no_group",
    "j_no_topic",
    "j_txn",
    "j_txn_no_id",
    "j_idempotent",
    "j_idempotent_topic",
    "j_idempotent_none",
    "j_no_topic_write",
];

/// What the program prints for each case when the client saw what Kafka's would.
const CASES: [&str; 9] = [
    "OK consumer",
    "OK consumer-no-group GroupAuthorizationException",
    "OK consumer-no-topic TopicAuthorizationException",
    "OK txn",
    "OK txn-no-id TransactionalIdAuthorizationException",
    "OK idempotent",
    "OK idempotent-topic",
    "OK idempotent-none ClusterAuthorizationException",
    "OK no-topic-write TopicAuthorizationException",
];

#[test]
fn java_clients_meet_kafkas_authorization_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let classes = tmp.path().join("classes");
    let Some(classpath) = common::compile_java("Authorization", &classes) else {
        common::missing_tool("kafka-clients jars (scripts/java-deps.sh) and javac");
        return;
    };
    let (plain, sasl) = (free_port(), free_port());
    let users: String = USERS
        .iter()
        .map(|u| format!(r#" user_{u}="{PASSWORD}""#))
        .collect();
    let overrides = [
        format!("listeners=PLAINTEXT://127.0.0.1:{plain},SASL_PLAINTEXT://127.0.0.1:{sasl}"),
        format!(
            "advertised.listeners=PLAINTEXT://127.0.0.1:{plain},SASL_PLAINTEXT://127.0.0.1:{sasl}"
        ),
        "listener.name.sasl_plaintext.sasl.enabled.mechanisms=PLAIN".to_string(),
        format!(
            r#"listener.name.sasl_plaintext.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required{users};"#
        ),
        "authorizer.class.name=kafka.security.authorizer.AclAuthorizer".to_string(),
        // The program's admin work goes over PLAINTEXT, as User:ANONYMOUS.
        "super.users=User:ANONYMOUS".to_string(),
    ];
    let overrides: Vec<&str> = overrides.iter().map(String::as_str).collect();
    let broker = BrokerProcess::start(&tmp.path().join("broker"), &overrides);
    let mut child = std::process::Command::new("java")
        .args(["-cp", &classpath, "Authorization"])
        .args([
            &format!("127.0.0.1:{plain}"),
            &format!("127.0.0.1:{sasl}"),
            PASSWORD,
        ])
        .stdout(std::fs::File::create(tmp.path().join("java.out")).unwrap())
        .stderr(std::fs::File::create(tmp.path().join("java.err")).unwrap())
        .stdin(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let status = common::wait_or_kill(&mut child, Duration::from_secs(300));
    let stdout = std::fs::read_to_string(tmp.path().join("java.out")).unwrap_or_default();
    let stderr = std::fs::read_to_string(tmp.path().join("java.err")).unwrap_or_default();
    let missing: Vec<&str> = CASES
        .iter()
        .copied()
        .filter(|c| !stdout.lines().any(|l| l == *c))
        .collect();
    assert!(
        status.is_some_and(|s| s.success()) && missing.is_empty(),
        "missing {missing:?}\nstdout:\n{stdout}\nstderr:\n{stderr}\nbroker log:\n{}",
        broker.log_tail()
    );
}
