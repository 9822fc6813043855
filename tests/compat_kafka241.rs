//! Kafka 2.4.1's own Java client and tools against odradek, when a Kafka 2.4.1 distribution is
//! in `KAFKA_HOME` or `~/.cache/odradek/kafka_2.13-2.4.1` (DEVELOPERS.md says how to get one).

mod common;

use std::process::Command;

use common::broker_process::BrokerProcess;

fn kafka_241_clients() -> Option<(std::path::PathBuf, String)> {
    let home = common::kafka_home()?;
    let libs = home.join("libs");
    let jars: Vec<String> = std::fs::read_dir(&libs)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let n = p
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default();
            [
                "kafka-clients-",
                "lz4-java-",
                "snappy-java-",
                "zstd-jni-",
                "slf4j-api-",
            ]
            .iter()
            .any(|pre| n.starts_with(pre))
                && n.ends_with(".jar")
        })
        .map(|p| p.display().to_string())
        .collect();
    jars.iter()
        .any(|j| j.contains("kafka-clients-2.4.1"))
        .then(|| (home, jars.join(":")))
}

#[test]
fn kafka_241_java_client_and_verifiable_producer() {
    let Some((home, jars)) = kafka_241_clients() else {
        eprintln!(
            "SKIPPED: no Kafka 2.4.1 distribution with kafka-clients-2.4.1.jar in KAFKA_HOME or ~/.cache/odradek/kafka_2.13-2.4.1"
        );
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let classes = tmp.path().join("classes");
    let cp = common::compile_java_against("ClientRoundTrip", &classes, &jars).expect("javac runs");
    let broker = BrokerProcess::start(&tmp.path().join("broker"), &[]);
    common::java_round_trip_every_codec(
        &cp,
        &broker.bootstrap(),
        "k241",
        10_000,
        "Kafka 2.4.1 client",
        || broker.log_tail(),
    );
    let out = Command::new(home.join("bin/kafka-verifiable-producer.sh"))
        .args([
            "--broker-list",
            &broker.bootstrap(),
            "--topic",
            "verifiable",
            "--max-messages",
            "5000",
            "--acks",
            "-1",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("\"sent\":5000,\"acked\":5000"),
        "kafka-verifiable-producer.sh: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Kafka 2.4.1's `kafka-configs.sh --bootstrap-server`, which in 2.4 alters broker configs only
/// (topics need `--zookeeper` there): a cluster-wide dynamic default is stored and described, and
/// a key Kafka does not change at runtime is refused.
#[test]
fn kafka_241_kafka_configs_alters_dynamic_broker_configs() {
    let Some(home) = common::kafka_home() else {
        eprintln!(
            "SKIPPED: no Kafka 2.4.1 distribution in KAFKA_HOME or ~/.cache/odradek/kafka_2.13-2.4.1"
        );
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(&tmp.path().join("broker"), &[]);
    let configs = |args: &[&str]| {
        let out = Command::new(home.join("bin/kafka-configs.sh"))
            .args(["--bootstrap-server", &broker.bootstrap()])
            .args(args)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, stdout, stderr) =
        configs(&["--describe", "--entity-type", "brokers", "--entity-default"]);
    if stderr.contains("kafka.admin.ConfigCommand") && stderr.contains("ClassNotFoundException") {
        eprintln!(
            "SKIPPED: kafka-configs.sh cannot start here: this Kafka 2.4.1 distribution lacks the \
             broker jar (libs/kafka_2.13-2.4.1.jar) and the Scala library that hold \
             kafka.admin.ConfigCommand"
        );
        return;
    }
    assert!(ok, "{stdout}\n{stderr}");
    let (ok, stdout, stderr) = configs(&[
        "--alter",
        "--entity-type",
        "brokers",
        "--entity-default",
        "--add-config",
        "log.retention.ms=120000",
    ]);
    assert!(ok, "{stdout}\n{stderr}\n{}", broker.log_tail());
    let (ok, stdout, stderr) =
        configs(&["--describe", "--entity-type", "brokers", "--entity-default"]);
    assert!(
        ok && stdout.contains("log.retention.ms=120000"),
        "{stdout}\n{stderr}"
    );
    let (ok, stdout, stderr) = configs(&[
        "--alter",
        "--entity-type",
        "brokers",
        "--entity-name",
        "0",
        "--add-config",
        "log.retention.hours=1",
    ]);
    assert!(
        !ok && format!("{stdout}{stderr}").contains("Cannot update these configs dynamically"),
        "{stdout}\n{stderr}"
    );
}

/// Kafka 2.4.1's transactional producer: one committed and one aborted transaction over three
/// partitions read back as read_committed and read_uncommitted consumers should see them, and a
/// second producer with the same transactional.id fences the first.
#[test]
fn kafka_241_java_transactional_producer() {
    let Some((_, jars)) = kafka_241_clients() else {
        eprintln!(
            "SKIPPED: no Kafka 2.4.1 distribution in KAFKA_HOME or ~/.cache/odradek/kafka_2.13-2.4.1"
        );
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let Some(cp) =
        common::compile_java_against("TransactionalClient", &tmp.path().join("classes"), &jars)
    else {
        common::missing_tool("javac");
        return;
    };
    let broker = BrokerProcess::start(&tmp.path().join("broker"), &[]);
    let run = |args: &[&str]| {
        let out = Command::new("java")
            .args(["-cp", &cp, "TransactionalClient"])
            .args(args)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            out.status.success(),
            "{args:?}:\n{stdout}\n{}\n{}",
            String::from_utf8_lossy(&out.stderr),
            broker.log_tail()
        );
        stdout
    };
    let out = run(&["commit-abort", &broker.bootstrap(), "txn-241"]);
    assert!(
        out.lines()
            .any(|l| l == "read_committed=30 committed-values-ok=true"),
        "{out}"
    );
    assert!(out.lines().any(|l| l == "read_uncommitted=60"), "{out}");
    let out = run(&["fence", &broker.bootstrap(), "fence-241"]);
    let fenced = out
        .lines()
        .find_map(|l| l.strip_prefix("fenced="))
        .unwrap_or("");
    assert!(fenced.contains("ProducerFencedException"), "{out}");
    assert!(
        out.lines().any(|l| l == "read_committed=successor"),
        "{out}"
    );
}
