//! The Kafka Java client (3.9 and 4.3, from the PyPI jars) against a real odradek process.

use crate::common;
use crate::common::BoundedOutput;

use std::process::Command;

use common::broker_process::BrokerProcess;
use common::cluster::create_topic;

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
        .bounded_output()
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
        .bounded_output()
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
    create_topic(&bs, "keyed-by-odradek", 7);
    let lines: String = (0..500).map(|i| format!("key-{i}\tv\n")).collect();
    common::cluster::produce_lines(&bs, "keyed-by-odradek", &["--key-separator", "\t"], &lines);
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

/// The Java admin client (3.9): DescribeConfigs lists every topic config with its source,
/// IncrementalAlterConfigs' four operations and its errors arrive as Kafka's exceptions,
/// DeleteRecords moves the start a consumer reading from the beginning sees.
#[test]
fn java_admin_configs_and_delete_records() {
    let Some(stdout) = run_against_a_broker("ConfigAdmin", "java-admin") else {
        return;
    };
    let has = |line: &str| assert_has_line(&stdout, line);
    let configs: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("config "))
        .collect();
    assert_eq!(configs.len(), 36, "every topic config: {configs:#?}");
    has("config retention.bytes=1000000 source=DYNAMIC_TOPIC_CONFIG synonyms=2 readOnly=false");
    has("config cleanup.policy=delete source=DEFAULT_CONFIG synonyms=1 readOnly=false");
    has("config segment.bytes=1073741824 source=STATIC_BROKER_CONFIG synonyms=2 readOnly=false");
    has("alter set ok");
    has("value retention.ms=90000 source=DYNAMIC_TOPIC_CONFIG");
    has("alter append ok");
    has("value cleanup.policy=delete,compact source=DYNAMIC_TOPIC_CONFIG");
    has("alter subtract ok");
    has("value cleanup.policy=compact source=DYNAMIC_TOPIC_CONFIG");
    has("alter delete ok");
    has("value retention.ms=604800000 source=DEFAULT_CONFIG");
    has("value cleanup.policy=delete source=DEFAULT_CONFIG");
    has("alter validate-only ok");
    has("alter append-to-a-number error InvalidConfigurationException");
    has("alter unknown-key error InvalidConfigurationException");
    has("alter bad-value error InvalidConfigurationException");
    has("alter missing-topic error UnknownTopicOrPartitionException");
    has("alter read-only-broker-key error InvalidRequestException");
    has("alter broker-default ok");
    has("value retention.ms=120000 source=DYNAMIC_DEFAULT_BROKER_CONFIG");
    has("value log.retention.ms=120000 source=DYNAMIC_DEFAULT_BROKER_CONFIG");
    has("alter broker-default-delete ok");
    has("deleted lowWatermark=20");
    has("earliest 20");
    has("first 20 count 30");
}

/// Compiles `compat-tests/java/<class>.java`, runs it against a broker process of its own
/// (arguments: the bootstrap address and `prefix` for the names it creates) and returns what
/// it printed, once it exited successfully. None, with the reason printed, when javac or the
/// kafka-clients jars are missing.
pub(super) fn run_against_a_broker(class: &str, prefix: &str) -> Option<String> {
    let tmp = tempfile::tempdir().unwrap();
    let classes = tmp.path().join("classes");
    let Some(cp) = common::compile_java(class, &classes) else {
        common::missing_tool("kafka-clients jars (scripts/java-deps.sh) and javac");
        return None;
    };
    let broker = BrokerProcess::start(&tmp.path().join("data"), &[]);
    let args = [broker.bootstrap(), prefix.to_string()];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Some(common::run_java(&cp, class, &args, || broker.log_tail()))
}

/// The program printed exactly `line` among its lines.
pub(super) fn assert_has_line(stdout: &str, line: &str) {
    assert!(
        stdout.lines().any(|l| l == line),
        "no line {line:?} in:\n{stdout}"
    );
}
