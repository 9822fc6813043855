//! The Java admin client's calls of issue 19 against odradek: CreatePartitions with explicit
//! assignments (three brokers).

use crate::common;

use std::io::Read;

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
