//! The Kafka Java client (3.9 and 4.3, from the PyPI jars) against a real odradek process.

mod common;

use std::process::Command;

use common::broker_process::BrokerProcess;

fn classpath(version: &str, classes: &std::path::Path) -> Option<String> {
    Some(format!(
        "{}:{}",
        classes.display(),
        common::kafka_clients_classpath_for(version)?
    ))
}

#[test]
fn java_clients_round_trip_every_codec() {
    let tmp = tempfile::tempdir().unwrap();
    let classes = tmp.path().join("classes");
    if common::compile_java("ClientRoundTrip", &classes).is_none() {
        common::missing_tool("kafka-clients jars (scripts/java-deps.sh) and javac");
        return;
    }
    let broker = BrokerProcess::start(&tmp.path().join("data"), &[]);
    for version in ["3.9", "4.3"] {
        let Some(cp) = classpath(version, &classes) else {
            common::missing_tool(&format!("kafka-clients {version} jars"));
            continue;
        };
        for codec in ["none", "gzip", "snappy", "lz4", "zstd"] {
            let topic = format!("java-{}-{codec}", version.replace('.', "-"));
            let out = Command::new("java")
                .args([
                    "-cp",
                    &cp,
                    "ClientRoundTrip",
                    &broker.bootstrap(),
                    &topic,
                    codec,
                    "10000",
                ])
                .output()
                .unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success() && stdout.contains("OK 10000"),
                "Java {version} {codec}: {stdout}\n{}\nbroker log:\n{}",
                String::from_utf8_lossy(&out.stderr)
                    .lines()
                    .filter(|l| !l.contains("SLF4J"))
                    .collect::<Vec<_>>()
                    .join("\n"),
                broker.log_tail()
            );
        }
    }
}
