//! The Java admin client's calls of issue 19 against odradek: CreatePartitions with explicit
//! assignments (three brokers), DescribeProducers.

use crate::common;

use std::io::Read;

use common::broker_process::BrokerProcess;
use common::cluster::Cluster;

/// Runs a compiled Java program with `args`, killed (by its PID) after two minutes: whether it
/// succeeded, its stdout and its stderr.
fn run_java(cp: &str, program: &str, args: &[&str]) -> (bool, String, String) {
    let mut child = std::process::Command::new("java")
        .args(["-cp", cp, program])
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let status = common::wait_or_kill(&mut child, std::time::Duration::from_secs(120));
    let mut stdout = String::new();
    let mut stderr = String::new();
    if let Some(mut o) = child.stdout.take() {
        let _ = o.read_to_string(&mut stdout);
    }
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut stderr);
    }
    (status.is_some_and(|s| s.success()), stdout, stderr)
}

/// createPartitions with explicit assignments: refused as Kafka refuses them
/// (InvalidReplicaAssignmentException for an unknown broker, a wrong count, a duplicate broker,
/// an inconsistent replication factor), validateOnly changes nothing, and a good one places
/// the new partitions on exactly the brokers asked for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn java_create_partitions_with_explicit_assignments() {
    let classes = tempfile::tempdir().unwrap();
    let Some(cp) = common::compile_java("PartitionAdmin", classes.path()) else {
        common::missing_tool("the kafka-clients 3.9 jars (scripts/java-deps.sh) and javac");
        return;
    };
    let Some(cluster) = Cluster::start(&[1, 2, 3]) else {
        return;
    };
    cluster.wait_for_brokers(&[1, 2, 3]).await;
    let (ok, stdout, stderr) = run_java(
        &cp,
        "PartitionAdmin",
        &[&cluster.bootstrap(1), "java-assigned"],
    );
    assert!(
        ok,
        "PartitionAdmin:\n{stdout}\n{stderr}\n{}",
        cluster.logs()
    );
    for line in ["partition 1 replicas=[2, 3]", "partition 2 replicas=[3, 1]"] {
        assert!(stdout.contains(line), "{line} in\n{stdout}");
    }
    assert!(
        stdout.contains("Unknown broker(s) in replica assignment: 9."),
        "{stdout}"
    );
}

/// describeProducers lists the idempotent producer that wrote ten records one at a time: its
/// id, epoch 0, last sequence 9, no transaction.
#[test]
fn java_describe_producers_lists_an_idempotent_producer() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(cp) = common::compile_java("ProducerAdmin", &tmp.path().join("classes")) else {
        common::missing_tool("the kafka-clients 3.9 jars (scripts/java-deps.sh) and javac");
        return;
    };
    let broker = BrokerProcess::start(&tmp.path().join("data"), &[]);
    let (ok, stdout, stderr) = run_java(&cp, "ProducerAdmin", &[&broker.bootstrap(), "described"]);
    assert!(
        ok,
        "ProducerAdmin:\n{stdout}\n{stderr}\n{}",
        broker.log_tail()
    );
    let lines: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("producer "))
        .collect();
    assert_eq!(lines.len(), 1, "{stdout}");
    let field = |name: &str| -> String {
        lines[0]
            .split(' ')
            .find_map(|f| f.strip_prefix(&format!("{name}=")))
            .unwrap_or_else(|| panic!("{name} in {}", lines[0]))
            .to_string()
    };
    assert!(field("id").parse::<i64>().unwrap() >= 0, "{stdout}");
    assert_eq!(field("epoch"), "0", "{stdout}");
    assert_eq!(field("lastSequence"), "9", "{stdout}");
    assert!(
        field("lastTimestamp").parse::<i64>().unwrap() > 0,
        "{stdout}"
    );
    assert_eq!(field("txnStart"), "none", "{stdout}");
}
