//! The Java admin client (kafka-clients 3.9, `compat-tests/java/QuotaAdmin.java`) sets and
//! describes client quotas (KIP-546) on a broker process, meets Kafka's refusals as Kafka's
//! exceptions, and a Java producer held to the quota it set reports the throttle.

use std::process::Command;

use crate::common;
use common::broker_process::BrokerProcess;

#[test]
fn java_admin_alters_and_describes_client_quotas_and_a_producer_is_throttled() {
    let tmp = tempfile::tempdir().unwrap();
    let classes = tmp.path().join("classes");
    let Some(cp) = common::compile_java("QuotaAdmin", &classes) else {
        common::missing_tool("kafka-clients jars (scripts/java-deps.sh) and javac");
        return;
    };
    let broker = BrokerProcess::start(&tmp.path().join("data"), &[]);
    let out = Command::new("java")
        .args(["-cp", &cp, "QuotaAdmin", &broker.bootstrap(), "java-quotas"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}\nbroker log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        broker.log_tail()
    );
    let has = |line: &str| {
        assert!(
            stdout.lines().any(|l| l == line),
            "no line {line:?} in:\n{stdout}"
        );
    };
    has("alter set ok");
    has("alter default-user ok");
    has("alter bad-key error InvalidRequestException");
    has("alter negative error InvalidRequestException");
    has("alter fraction error InvalidRequestException");
    has("describe exact client-id=java-app producer_byte_rate=1024000.0 request_percentage=150.0");
    has("describe exact count 1");
    has("describe default user=<default> consumer_byte_rate=2048.0");
    has("describe default count 1");
    has("describe all count 2");
    has("alter slow ok");
    has("throttled true");
    has("alter remove ok");
    has("describe after-remove count 0");
}
