//! Delegation tokens (KIP-48) with a real client: the Java client, 3.9 and 4.3
//! (`compat-tests/java/DelegationTokens.java`) creates a token as alice, then producers and
//! consumers log in with it (SCRAM with `tokenauth="true"`) and act as alice, until the token is
//! expired early or runs out. Wire-level tests of the same rules are in
//! `broker::delegation_tokens`.

use std::process::Command;
use std::time::Duration;

use crate::common;
use crate::security::SCRAM_JAAS;
use crate::security::scram::ALICE;
use common::broker_process::{BrokerProcess, free_port};

use super::security::run_bounded;

#[test]
fn java_3_9_logs_in_with_a_token_until_it_expires() {
    java_logs_in_with_a_token_until_it_expires("3.9");
}

#[test]
fn java_4_3_logs_in_with_a_token_until_it_expires() {
    java_logs_in_with_a_token_until_it_expires("4.3");
}

fn java_logs_in_with_a_token_until_it_expires(version: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let classes = tmp.path().join("classes");
    if common::compile_java("DelegationTokens", &classes).is_none() {
        common::missing_tool("kafka-clients jars (scripts/java-deps.sh) and javac");
        return;
    }
    let Some(jars) = common::kafka_clients_classpath_for(version) else {
        common::missing_tool(&format!("kafka-clients {version} jars"));
        return;
    };
    // alice's SCRAM credentials, stored before start-up as `kafka-configs.sh --zookeeper` does.
    let data = tmp.path().join("broker");
    let alice = serde_json::json!({ "/config/users/alice": ALICE });
    common::import_znodes(&alice, &data.join("logs"));
    let (plain, sasl) = (free_port(), free_port());
    let overrides = [
        format!("listeners=PLAINTEXT://127.0.0.1:{plain},SASL_PLAINTEXT://127.0.0.1:{sasl}"),
        "sasl.enabled.mechanisms=SCRAM-SHA-256,SCRAM-SHA-512".into(),
        format!("listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config={SCRAM_JAAS}"),
        format!("listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config={SCRAM_JAAS}"),
        "delegation.token.secret.key=compat-secret".into(),
    ];
    let overrides: Vec<&str> = overrides.iter().map(String::as_str).collect();
    let broker = BrokerProcess::start_on_port(&data, plain, &overrides);

    let cp = format!("{}:{jars}", classes.display());
    for mechanism in ["SCRAM-SHA-512", "SCRAM-SHA-256"] {
        let topic = format!("by-token-{}", mechanism.to_ascii_lowercase());
        let (ok, stdout, stderr) = run_bounded(
            Command::new("java")
                .args(["-cp", &cp, "DelegationTokens"])
                .args([
                    &format!("127.0.0.1:{sasl}"),
                    "alice",
                    "alice-secret",
                    mechanism,
                    &topic,
                ]),
            tmp.path(),
            &topic,
            Duration::from_secs(240),
        );
        assert!(
            ok,
            "Java {version}, {mechanism}:\n{stdout}\n{stderr}\nbroker log:\n{}",
            broker.log_tail()
        );
        let lines: Vec<&str> = stdout.lines().collect();
        let id = lines
            .iter()
            .find_map(|l| l.strip_prefix("CREATED "))
            .and_then(|rest| rest.strip_suffix(" User:alice"))
            .unwrap_or_else(|| panic!("no token created for User:alice:\n{stdout}"));
        let described = format!("DESCRIBED {id} User:alice User:renewer");
        for expected in [
            described.as_str(),
            "OK round-trip 20",
            // Kafka's DELEGATION_TOKEN_REQUEST_NOT_ALLOWED, as the Java client names it.
            "REFUSED-AS-TOKEN UnsupportedByAuthenticationException",
            "REFUSED-AFTER-EXPIRE SaslAuthenticationException",
            "REFUSED-AFTER-LIFETIME SaslAuthenticationException",
        ] {
            assert!(lines.contains(&expected), "no {expected:?} in:\n{stdout}");
        }
    }
    // The token's connections were alice's, and known to be a token's.
    let log = broker.log_text();
    assert!(
        log.lines().any(|l| l.contains(
            "SASL client authenticated principal=User:alice mechanism=SCRAM-SHA-512 token=true"
        )),
        "no token login as alice in the broker log:\n{}",
        broker.log_tail()
    );
}
