//! The Java admin client (kafka-clients 3.9, `compat-tests/java/QuotaAdmin.java`) sets and
//! describes client quotas (KIP-546) on a broker process, meets Kafka's refusals as Kafka's
//! exceptions, and a Java producer held to the quota it set reports the throttle.

use super::java::{assert_has_line, run_against_a_broker};

#[test]
fn java_admin_alters_and_describes_client_quotas_and_a_producer_is_throttled() {
    let Some(stdout) = run_against_a_broker("QuotaAdmin", "java-quotas") else {
        return;
    };
    let has = |line: &str| assert_has_line(&stdout, line);
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
