//! The Java admin client (kafka-clients 3.9, `compat-tests/java/LogDirsAdmin.java`) against a
//! broker process with three log dirs: describeLogDirs, describeReplicaLogDirs, and
//! alterReplicaLogDirs moving a replica while a Java producer (acks=all) writes to it.

use crate::common;
use common::broker_process::BrokerProcess;

#[test]
fn java_admin_describes_log_dirs_and_moves_a_replica_under_load() {
    let tmp = tempfile::tempdir().unwrap();
    let classes = tmp.path().join("classes");
    let Some(cp) = common::compile_java("LogDirsAdmin", &classes) else {
        common::missing_tool("kafka-clients jars (scripts/java-deps.sh) and javac");
        return;
    };
    let dirs: Vec<String> = (0..3)
        .map(|i| tmp.path().join(format!("d{i}")).display().to_string())
        .collect();
    let log_dirs = format!("log.dirs={}", dirs.join(","));
    let broker = BrokerProcess::start(&tmp.path().join("data"), &[&log_dirs, "broker.id=0"]);
    // The target: a directory that is not partition 0's (with one partition per directory,
    // partition 0 is in the first, by Kafka's placement).
    let target = &dirs[2];
    let bootstrap = broker.bootstrap();
    let args = [bootstrap.as_str(), "java-jbod", target];
    let stdout = common::run_java(&cp, "LogDirsAdmin", &args, || broker.log_tail());
    let has = |line: &str| {
        assert!(
            stdout.lines().any(|l| l == line),
            "no line {line:?} in:\n{stdout}"
        );
    };
    for d in &dirs {
        has(&format!("dir {d} partitions 1 space ok"));
    }
    has(&format!("current {}", dirs[0]));
    has(&format!("moved {target}"));
    let counts = stdout
        .lines()
        .find(|l| l.starts_with("acked "))
        .unwrap_or_else(|| panic!("no counts in:\n{stdout}"));
    let words: Vec<&str> = counts.split(' ').collect();
    let acked: usize = words[1].parse().unwrap();
    assert!(acked >= 2000, "{counts}");
    assert_eq!(
        &words[2..],
        ["lost", "0", "duplicates", "0", "failed", "0"],
        "{counts}"
    );
    has("unknown-dir error LogDirNotFoundException");
    // On disk: partition 0 in the target directory only, nothing left of the move.
    assert!(std::path::Path::new(target).join("java-jbod-0").is_dir());
    assert!(!std::path::Path::new(&dirs[0]).join("java-jbod-0").exists());
}
