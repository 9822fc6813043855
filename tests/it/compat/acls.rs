//! The Java AdminClient (kafka-clients 3.9) administers ACLs on a real odradek process with
//! Kafka's AclAuthorizer on, over SASL PLAIN as a super user: creates literal and prefixed
//! ACLs, describes them through ANY, MATCH, PREFIXED, principal and permission filters, deletes
//! some (a filter matching nothing deletes nothing), and gets Kafka's exceptions for a bad
//! cluster name, a principal without a type, and a user without Cluster DESCRIBE
//! (`compat-tests/java/AclAdmin.java`).

use std::process::Command;
use std::time::Duration;

use crate::common;
use crate::security::PLAIN_JAAS;
use common::broker_process::{BrokerProcess, free_port};

#[test]
fn java_admin_client_creates_describes_and_deletes_acls() {
    let tmp = tempfile::tempdir().unwrap();
    let classes = tmp.path().join("classes");
    let Some(cp) = common::compile_java("AclAdmin", &classes) else {
        common::missing_tool("kafka-clients jars (scripts/java-deps.sh) and javac");
        return;
    };
    let (plain, sasl) = (free_port(), free_port());
    let overrides = [
        format!("listeners=PLAINTEXT://127.0.0.1:{plain},SASL_PLAINTEXT://127.0.0.1:{sasl}"),
        "sasl.enabled.mechanisms=PLAIN".to_string(),
        format!("listener.name.sasl_plaintext.plain.sasl.jaas.config={PLAIN_JAAS}"),
        "authorizer.class.name=kafka.security.authorizer.AclAuthorizer".to_string(),
        "super.users=User:admin;User:ANONYMOUS".to_string(),
    ];
    let overrides: Vec<&str> = overrides.iter().map(String::as_str).collect();
    let broker = BrokerProcess::start_on_port(&tmp.path().join("broker"), plain, &overrides);
    let (ok, stdout, stderr) = super::security::run_bounded(
        Command::new("java")
            .args(["-cp", &cp, "AclAdmin"])
            .arg(format!("127.0.0.1:{sasl}")),
        tmp.path(),
        "acl-admin",
        Duration::from_secs(180),
    );
    assert!(ok, "{stdout}\n{stderr}\nbroker log:\n{}", broker.log_tail());
    let lines: Vec<&str> = stdout.lines().collect();
    let expected = [
        "created",
        "B all LITERAL GROUP * User:* * DESCRIBE ALLOW",
        "B all LITERAL TOPIC orders User:alice * READ ALLOW",
        "B all PREFIXED TOPIC ord User:bob 10.0.0.1 WRITE DENY",
        "B all PREFIXED TRANSACTIONAL_ID tx- User:bob * WRITE ALLOW",
        "B match LITERAL TOPIC orders User:alice * READ ALLOW",
        "B match PREFIXED TOPIC ord User:bob 10.0.0.1 WRITE DENY",
        "B prefixed PREFIXED TOPIC ord User:bob 10.0.0.1 WRITE DENY",
        "B prefixed PREFIXED TRANSACTIONAL_ID tx- User:bob * WRITE ALLOW",
        "B bob PREFIXED TOPIC ord User:bob 10.0.0.1 WRITE DENY",
        "B bob PREFIXED TRANSACTIONAL_ID tx- User:bob * WRITE ALLOW",
        "B deny PREFIXED TOPIC ord User:bob 10.0.0.1 WRITE DENY",
        "deleted nothing 0",
        "B deleted PREFIXED TOPIC ord User:bob 10.0.0.1 WRITE DENY",
        "B deleted PREFIXED TRANSACTIONAL_ID tx- User:bob * WRITE ALLOW",
        "B after LITERAL GROUP * User:* * DESCRIBE ALLOW",
        "B after LITERAL TOPIC orders User:alice * READ ALLOW",
        "error cluster-name InvalidRequestException",
        "error no-type UnknownServerException",
        "error alice ClusterAuthorizationException",
    ];
    assert_eq!(lines, expected, "{stderr}");
}
