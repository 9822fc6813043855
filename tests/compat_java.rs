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
        let prefix = format!("java-{}", version.replace('.', "-"));
        common::java_round_trip_every_codec(
            &cp,
            &broker.bootstrap(),
            &prefix,
            10_000,
            &format!("Java {version}"),
            || broker.log_tail(),
        );
    }
}

/// A keyed record sent by the Java client, by confluent-kafka with `murmur2_random` and by
/// `odradek produce` lands in the same partition.
#[test]
fn java_and_librdkafka_murmur2_agree_on_partitions() {
    let tmp = tempfile::tempdir().unwrap();
    let classes = tmp.path().join("classes");
    let Some(cp) = common::compile_java("KeyPartitions", &classes) else {
        common::missing_tool("kafka-clients jars (scripts/java-deps.sh) and javac");
        return;
    };
    let Some(python) = common::python_venv() else {
        common::missing_tool("the Python venv with confluent-kafka (scripts/python-deps.sh)");
        return;
    };
    let broker = BrokerProcess::start(&tmp.path().join("data"), &[]);
    let java = Command::new("java")
        .args([
            "-cp",
            &cp,
            "KeyPartitions",
            &broker.bootstrap(),
            "keyed",
            "7",
            "500",
        ])
        .output()
        .unwrap();
    assert!(
        java.status.success(),
        "{}",
        String::from_utf8_lossy(&java.stderr)
    );
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("compat-tests/python/key_partitions.py");
    let rdkafka = Command::new(python)
        .arg(script)
        .args([&broker.bootstrap(), "keyed", "500"])
        .output()
        .unwrap();
    assert!(
        rdkafka.status.success(),
        "{}",
        String::from_utf8_lossy(&rdkafka.stderr)
    );
    let java = String::from_utf8_lossy(&java.stdout)
        .lines()
        .filter(|l| l.starts_with("key-"))
        .map(str::to_string)
        .collect::<Vec<_>>();
    let rdkafka = String::from_utf8_lossy(&rdkafka.stdout)
        .lines()
        .map(str::to_string)
        .collect::<Vec<_>>();
    assert_eq!(java.len(), 500);
    assert_eq!(
        java, rdkafka,
        "both clients put each key in the same partition"
    );
    let used: std::collections::HashSet<&str> =
        java.iter().filter_map(|l| l.split(' ').nth(1)).collect();
    assert_eq!(used.len(), 7, "keys spread over every partition");

    // The bundled producer puts each key where the Java client does.
    let bs = broker.bootstrap();
    let (ok, _, err) = common::odradek(
        &[
            "topics",
            "--bootstrap-server",
            &bs,
            "--create",
            "--topic",
            "keyed-by-odradek",
            "--partitions",
            "7",
        ],
        None,
    );
    assert!(ok, "{err}");
    let lines: String = (0..500).map(|i| format!("key-{i}\tv\n")).collect();
    let (ok, _, err) = common::odradek(
        &[
            "produce",
            "--bootstrap-server",
            &bs,
            "--topic",
            "keyed-by-odradek",
            "--key-separator",
            "\t",
        ],
        Some(&lines),
    );
    assert!(ok, "{err}");
    let (ok, out, err) = common::odradek(
        &[
            "consume",
            "--bootstrap-server",
            &bs,
            "--topic",
            "keyed-by-odradek",
            "--from-beginning",
            "--timeout-ms",
            "1000",
            "--format",
            "%k %p",
        ],
        None,
    );
    assert!(ok, "{err}");
    let mut ours: Vec<String> = out.lines().map(str::to_string).collect();
    let mut java_sorted = java.clone();
    ours.sort();
    java_sorted.sort();
    assert_eq!(
        ours, java_sorted,
        "odradek produce and the Java client agree"
    );
}
