//! The Java client's transactions (kafka-clients 3.9 and 4.3, from the PyPI jars) against a real
//! odradek process: commit and abort across partitions, fencing of a zombie producer, and
//! exactly-once consume-transform-produce across a processor killed with SIGKILL.

use crate::common;

/// How long the successor of a killed processor runs without input before it ends: its first
/// assignment waits for the killed member's session (6 s) to expire, so this must be longer.
const SUCCESSOR_IDLE_EXIT_MS: &str = "15000";

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::broker_process::BrokerProcess;

const VERSIONS: [&str; 2] = ["3.9", "4.3"];

/// Compiles `program` against one kafka-clients version; `None` (with the missing-tool
/// notice) when the jars or javac are not installed.
fn client_classpath(program: &str, version: &str, dir: &std::path::Path) -> Option<String> {
    let Some(jars) = common::kafka_clients_classpath_for(version) else {
        common::missing_tool(&format!(
            "kafka-clients {version} jars (scripts/java-deps.sh)"
        ));
        return None;
    };
    let classes = dir.join(format!("classes-{version}"));
    let cp = common::compile_java_against(program, &classes, &jars);
    if cp.is_none() {
        common::missing_tool("javac");
    }
    cp
}

fn run(cp: &str, args: &[&str], broker: &BrokerProcess) -> String {
    common::run_java(cp, "TransactionalClient", args, || broker.log_tail())
}

#[test]
fn java_transactions_commit_abort_and_fencing() {
    let tmp = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(&tmp.path().join("data"), &[]);
    let bs = broker.bootstrap();
    for version in VERSIONS {
        let Some(cp) = client_classpath("TransactionalClient", version, tmp.path()) else {
            continue;
        };
        let tag = version.replace('.', "-");
        let out = run(&cp, &["commit-abort", &bs, &format!("jtx-{tag}")], &broker);
        assert!(
            out.lines()
                .any(|l| l == "read_committed=30 committed-values-ok=true"),
            "Java {version}:\n{out}"
        );
        assert!(
            out.lines().any(|l| l == "read_uncommitted=60"),
            "Java {version}:\n{out}"
        );
        // The admin client describes and lists the producer's transaction (KIP-664).
        let Some(admin_cp) = client_classpath("TransactionAdmin", version, tmp.path()) else {
            continue;
        };
        let id = format!("java-jtx-{tag}");
        let admin = common::run_java(&admin_cp, "TransactionAdmin", &[&bs, &id], || {
            broker.log_tail()
        });
        let described = admin
            .lines()
            .find(|l| l.starts_with("describe "))
            .unwrap_or("");
        assert!(
            described.starts_with("describe state=CompleteAbort producerId=")
                && described.ends_with(" epoch=0 timeoutMs=20000 partitions=0"),
            "Java {version} admin:\n{admin}"
        );
        assert!(
            admin
                .lines()
                .any(|l| l == format!("listed {id} state=CompleteAbort")),
            "Java {version} admin:\n{admin}"
        );

        let out = run(&cp, &["fence", &bs, &format!("jfence-{tag}")], &broker);
        let fenced = out
            .lines()
            .find_map(|l| l.strip_prefix("fenced="))
            .unwrap_or("");
        assert!(
            fenced.contains("ProducerFencedException")
                || fenced.contains("InvalidProducerEpochException"),
            "Java {version}: the zombie was not fenced:\n{out}"
        );
        assert!(
            out.lines().any(|l| l == "read_committed=successor"),
            "Java {version}: only the successor's transaction is visible:\n{out}"
        );
    }
}

#[test]
fn java_consume_transform_produce_is_exactly_once_across_a_killed_processor() {
    let tmp = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(&tmp.path().join("data"), &[]);
    let bs = broker.bootstrap();
    for version in VERSIONS {
        let Some(cp) = client_classpath("TransactionalClient", version, tmp.path()) else {
            continue;
        };
        let Some(processor_cp) = client_classpath("TransactionalProcessor", version, tmp.path())
        else {
            continue;
        };
        let tag = version.replace('.', "-");
        let input = format!("jctp-in-{tag}");
        let output = format!("jctp-out-{tag}");
        let n = 300usize;
        for (topic, partitions) in [(&input, 3), (&output, 3)] {
            common::cluster::create_topic(&bs, topic, partitions);
        }
        let lines: String = (0..n).map(|i| format!("v-{i}\n")).collect();
        common::cluster::produce_lines(&bs, &input, &[], &lines);
        let group = format!("jctp-group-{tag}");
        let txn_id = format!("jctp-txn-{tag}");
        let processor = |idle_ms: &str| {
            Command::new("java")
                .args(["-cp", &processor_cp, "TransactionalProcessor", &bs])
                .args([&input, &output, &group, &txn_id, idle_ms])
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .unwrap()
        };

        // The first processor is killed (no abort, no close) once 60 records are committed,
        // most likely in the middle of its next transaction.
        let mut first = processor("30000");
        let stdout = first.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut reached = false;
        while let Ok(line) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            if let Some(n) = line.strip_prefix("committed ")
                && n.parse::<usize>().unwrap_or(0) >= 60
            {
                reached = true;
                break;
            }
        }
        let _ = Command::new("kill")
            .args(["-9", &first.id().to_string()])
            .status();
        let _ = first.wait();
        assert!(
            reached,
            "Java {version}: the first processor committed too little"
        );

        // Its successor fences it, aborts what it left open, and carries on from the offsets
        // committed with the last committed transaction.
        let mut second = processor(SUCCESSOR_IDLE_EXIT_MS);
        let status = common::wait_or_kill(&mut second, Duration::from_secs(120));
        assert!(
            status.is_some_and(|s| s.success()),
            "Java {version}: second processor {status:?}\n{}",
            broker.log_tail()
        );

        let out = run(&cp, &["read", &bs, &output, "3"], &broker);
        let mut values: Vec<&str> = out.lines().collect();
        values.sort_unstable();
        let mut expected: Vec<String> = (0..n).map(|i| format!("out-v-{i}")).collect();
        expected.sort_unstable();
        assert_eq!(
            values.len(),
            n,
            "Java {version}: every input exactly once in the output"
        );
        assert_eq!(values, expected, "Java {version}");
    }
}
