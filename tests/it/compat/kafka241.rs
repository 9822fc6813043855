//! Kafka 2.4.1's own Java client and tools against odradek, when a Kafka 2.4.1 distribution is
//! in `KAFKA_HOME` or `~/.cache/odradek/kafka_2.13-2.4.1` (DEVELOPERS.md says how to get one).

use crate::common;
use crate::common::BoundedOutput;

use std::process::Command;

use common::broker_process::BrokerProcess;
use common::cluster::create_topic;

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
        .bounded_output()
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
    let Some(home) = common::kafka_home_or_skip() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(&tmp.path().join("broker"), &[]);
    let configs = |args: &[&str]| {
        common::run_command(
            Command::new(home.join("bin/kafka-configs.sh"))
                .args(["--bootstrap-server", &broker.bootstrap()])
                .args(args),
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

/// What one `kafka-verifiable-consumer.sh` process reported on stdout (JSON events).
#[derive(Default)]
struct ConsumerEvents {
    assignments: Vec<Vec<i32>>,
    revocations: usize,
    /// (partition, first offset, last offset) of each batch consumed.
    consumed: Vec<(i32, i64, i64)>,
    /// Highest committed offset per partition (successful commits only).
    committed: std::collections::BTreeMap<i32, i64>,
}

struct VerifiableConsumer {
    child: std::process::Child,
    events: std::sync::Arc<std::sync::Mutex<ConsumerEvents>>,
}

impl VerifiableConsumer {
    fn start(home: &std::path::Path, bootstrap: &str, topic: &str, instance: &str) -> Self {
        use std::io::BufRead;
        let mut child = Command::new(home.join("bin/kafka-verifiable-consumer.sh"))
            .args(["--broker-list", bootstrap, "--topic", topic])
            .args(["--group-id", "verifiable", "--group-instance-id", instance])
            .args(["--session-timeout", "10000"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let events = std::sync::Arc::new(std::sync::Mutex::new(ConsumerEvents::default()));
        let sink = events.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                let Ok(e) = serde_json::from_str::<serde_json::Value>(&line) else {
                    continue;
                };
                let mut ev = sink.lock().unwrap();
                let partitions = |key: &str| -> Vec<serde_json::Value> {
                    e[key].as_array().cloned().unwrap_or_default()
                };
                match e["name"].as_str() {
                    Some("partitions_assigned") => {
                        let mut ps: Vec<i32> = partitions("partitions")
                            .iter()
                            .filter_map(|p| p["partition"].as_i64().map(|p| p as i32))
                            .collect();
                        ps.sort();
                        ev.assignments.push(ps);
                    }
                    Some("partitions_revoked") => ev.revocations += 1,
                    Some("records_consumed") => {
                        for p in partitions("partitions") {
                            if let (Some(part), Some(min), Some(max)) = (
                                p["partition"].as_i64(),
                                p["minOffset"].as_i64(),
                                p["maxOffset"].as_i64(),
                            ) {
                                ev.consumed.push((part as i32, min, max));
                            }
                        }
                    }
                    Some("offsets_committed") if e["success"].as_bool() == Some(true) => {
                        for o in partitions("offsets") {
                            if let (Some(part), Some(off)) =
                                (o["partition"].as_i64(), o["offset"].as_i64())
                            {
                                let c = ev.committed.entry(part as i32).or_insert(0);
                                *c = (*c).max(off);
                            }
                        }
                    }
                    _ => {}
                }
            }
        });
        VerifiableConsumer { child, events }
    }

    fn assignment(&self) -> Option<Vec<i32>> {
        self.events.lock().unwrap().assignments.last().cloned()
    }
}

impl Drop for VerifiableConsumer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_for(what: &str, limit: std::time::Duration, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + limit;
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// Kafka 2.4.1's Java consumer in a group (`kafka-verifiable-consumer.sh`, static members as
/// that tool makes them): two members share a topic's partitions, consume every record and
/// commit it; one killed (kill -9) and restarted with the same `group.instance.id` within the
/// session timeout gets its partitions back while the other member goes on untouched.
#[test]
fn kafka_241_verifiable_consumers_share_a_group_and_a_static_member_returns() {
    let Some(home) = common::kafka_home_or_skip() else {
        return;
    };
    if !home.join("bin/kafka-verifiable-consumer.sh").exists() {
        eprintln!("SKIPPED: this Kafka 2.4.1 distribution has no kafka-verifiable-consumer.sh");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(&tmp.path().join("broker"), &[]);
    let bs = broker.bootstrap();
    create_topic(&bs, "shared", 4);
    let out = Command::new(home.join("bin/kafka-verifiable-producer.sh"))
        .args(["--broker-list", &bs, "--topic", "shared"])
        .args(["--max-messages", "4000", "--acks", "-1"])
        .bounded_output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("\"sent\":4000,\"acked\":4000"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let limit = std::time::Duration::from_secs(60);
    let a = VerifiableConsumer::start(&home, &bs, "shared", "a");
    wait_for("the first member has the partitions", limit, || {
        a.assignment().is_some_and(|p| !p.is_empty())
    });
    let mut b = VerifiableConsumer::start(&home, &bs, "shared", "b");
    let shared = || {
        let (Some(pa), Some(pb)) = (a.assignment(), b.assignment()) else {
            return false;
        };
        let mut all: Vec<i32> = pa.iter().chain(&pb).copied().collect();
        all.sort();
        !pa.is_empty() && !pb.is_empty() && all == vec![0, 1, 2, 3]
    };
    wait_for("the two members share the partitions", limit, shared);
    let all_committed = |a: &VerifiableConsumer, b: &VerifiableConsumer| {
        let mut committed = a.events.lock().unwrap().committed.clone();
        for (p, o) in &b.events.lock().unwrap().committed {
            let c = committed.entry(*p).or_insert(0);
            *c = (*c).max(*o);
        }
        // The producer's sticky partitioner may leave a partition empty: count the records.
        committed.values().sum::<i64>() == 4000
    };
    wait_for("every record is committed", limit, || all_committed(&a, &b));
    // Every record was consumed: per partition, the batches cover 0 up to the committed end.
    let mut ranges: Vec<(i32, i64, i64)> = a.events.lock().unwrap().consumed.clone();
    ranges.extend(b.events.lock().unwrap().consumed.iter().copied());
    ranges.sort();
    let mut covered = std::collections::BTreeMap::new();
    for (p, min, max) in ranges {
        let next = covered.entry(p).or_insert(0i64);
        assert!(
            min <= *next,
            "partition {p}: records {next}..{min} never consumed"
        );
        *next = (*next).max(max + 1);
    }
    assert_eq!(covered.values().sum::<i64>(), 4000);

    // kill -9 and back under the same instance id: its partitions, no rebalance for `a`.
    let b_partitions = b.assignment().unwrap();
    let a_revocations = a.events.lock().unwrap().revocations;
    // The second member's arrival was a rebalance, which the first saw as a revocation.
    assert!(a_revocations >= 1);
    drop(b);
    b = VerifiableConsumer::start(&home, &bs, "shared", "b");
    wait_for("the restarted member has its partitions", limit, || {
        b.assignment().is_some()
    });
    assert_eq!(b.assignment().unwrap(), b_partitions);
    assert_eq!(
        a.events.lock().unwrap().revocations,
        a_revocations,
        "the other member had to rebalance:\n{}",
        broker.log_tail()
    );
}

/// Rows of a `kafka-consumer-groups.sh --describe` (or `--reset-offsets`) table, by column name.
fn table_rows(out: &str) -> Vec<std::collections::BTreeMap<String, String>> {
    let mut header: Option<Vec<String>> = None;
    let mut rows = Vec::new();
    for line in out.lines() {
        let cells: Vec<String> = line.split_whitespace().map(str::to_string).collect();
        if cells.first().is_some_and(|c| c == "GROUP") {
            header = Some(cells);
        } else if let Some(h) = &header
            && cells.len() == h.len()
        {
            rows.push(h.iter().cloned().zip(cells).collect());
        }
    }
    rows
}

fn column_sum(rows: &[std::collections::BTreeMap<String, String>], column: &str) -> i64 {
    rows.iter()
        .map(|r| {
            r[column]
                .parse::<i64>()
                .unwrap_or_else(|_| panic!("{column}: {r:?}"))
        })
        .sum()
}

/// Kafka 2.4.1's `kafka-consumer-groups.sh --bootstrap-server`: lists the group, describes its
/// committed offsets, log end offsets and lag, resets them to the earliest, and deletes it.
#[test]
fn kafka_241_consumer_groups_command() {
    let Some(home) = common::kafka_home_or_skip() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(&tmp.path().join("broker"), &[]);
    let bs = broker.bootstrap();
    let groups = |args: &[&str]| {
        common::run_command(
            Command::new(home.join("bin/kafka-consumer-groups.sh"))
                .args(["--bootstrap-server", &bs])
                .args(args),
        )
    };
    let (_, _, stderr) = groups(&["--list"]);
    if stderr.contains("kafka.admin.ConsumerGroupCommand") && stderr.contains("ClassNotFound") {
        eprintln!(
            "SKIPPED: kafka-consumer-groups.sh cannot start here: this Kafka 2.4.1 distribution \
             lacks the broker jar (libs/kafka_2.13-2.4.1.jar) and the Scala library that hold \
             kafka.admin.ConsumerGroupCommand"
        );
        return;
    }
    create_topic(&bs, "cg", 2);
    let lines: String = (0..100).map(|i| format!("k{i}:v{i}\n")).collect();
    let (ok, _, err) = common::odradek(
        &[
            "produce",
            "--bootstrap-server",
            &bs,
            "--topic",
            "cg",
            "--key-separator",
            ":",
        ],
        Some(&lines),
    );
    assert!(ok, "{err}");
    // A member that consumed (and committed) everything, then left.
    let (ok, out, err) = common::odradek(
        &[
            "consume",
            "--bootstrap-server",
            &bs,
            "--topic",
            "cg",
            "--group",
            "cg-group",
            "--from-beginning",
            "--max-messages",
            "100",
            "--timeout-ms",
            "5000",
        ],
        None,
    );
    assert!(ok && out.lines().count() == 100, "{out}{err}");

    let (ok, out, err) = groups(&["--list"]);
    assert!(
        ok && out.lines().any(|l| l.trim() == "cg-group"),
        "{out}{err}"
    );
    let (ok, out, err) = groups(&["--describe", "--group", "cg-group"]);
    assert!(ok, "{out}{err}");
    let rows = table_rows(&out);
    assert_eq!(rows.len(), 2, "{out}");
    assert_eq!(column_sum(&rows, "CURRENT-OFFSET"), 100, "{out}");
    assert_eq!(column_sum(&rows, "LOG-END-OFFSET"), 100, "{out}");
    assert_eq!(column_sum(&rows, "LAG"), 0, "{out}");

    let (ok, out, err) = groups(&[
        "--reset-offsets",
        "--group",
        "cg-group",
        "--topic",
        "cg",
        "--to-earliest",
        "--execute",
    ]);
    assert!(ok, "{out}{err}");
    assert_eq!(column_sum(&table_rows(&out), "NEW-OFFSET"), 0, "{out}");
    let (ok, out, err) = groups(&["--describe", "--group", "cg-group"]);
    assert!(ok, "{out}{err}");
    let rows = table_rows(&out);
    assert_eq!(column_sum(&rows, "CURRENT-OFFSET"), 0, "{out}");
    assert_eq!(column_sum(&rows, "LAG"), 100, "{out}");

    let (ok, out, err) = groups(&["--delete", "--group", "cg-group"]);
    assert!(ok && out.contains("was successful"), "{out}{err}");
    let (ok, out, err) = groups(&["--list"]);
    assert!(
        ok && !out.lines().any(|l| l.trim() == "cg-group"),
        "{out}{err}"
    );
}

/// Kafka 2.4.1's `kafka-console-consumer.sh --group`: reads everything once, commits it, and a
/// second run of the same group starts where the first stopped.
#[test]
fn kafka_241_console_consumer_in_a_group() {
    let Some(home) = common::kafka_home_or_skip() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(&tmp.path().join("broker"), &[]);
    let bs = broker.bootstrap();
    let consume = |group: &str, max: &str, timeout_ms: &str| {
        let out = Command::new(home.join("bin/kafka-console-consumer.sh"))
            .args(["--bootstrap-server", &bs, "--topic", "console"])
            .args(["--group", group, "--from-beginning"])
            .args(["--max-messages", max, "--timeout-ms", timeout_ms])
            .bounded_output()
            .unwrap();
        (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    create_topic(&bs, "console", 3);
    let lines: String = (0..100).map(|i| format!("v{i}\n")).collect();
    common::cluster::produce_lines(&bs, "console", &[], &lines);
    // A group of its own, so that a tool that does start leaves the group under test alone.
    let (_, stderr) = consume("console-probe", "1", "1000");
    if stderr.contains("kafka.tools.ConsoleConsumer") && stderr.contains("ClassNotFound") {
        eprintln!(
            "SKIPPED: kafka-console-consumer.sh cannot start here: this Kafka 2.4.1 distribution \
             lacks the broker jar (libs/kafka_2.13-2.4.1.jar) and the Scala library that hold \
             kafka.tools.ConsoleConsumer"
        );
        return;
    }
    let (out, err) = consume("console-group", "100", "20000");
    let mut got: Vec<&str> = out.lines().collect();
    got.sort();
    let mut want: Vec<String> = (0..100).map(|i| format!("v{i}")).collect();
    want.sort();
    assert_eq!(got, want, "{err}");
    // The group committed on the way out: nothing is left for it.
    let (out, err) = consume("console-group", "1", "3000");
    assert_eq!(out.lines().count(), 0, "{out}{err}");
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
    let run =
        |args: &[&str]| common::run_java(&cp, "TransactionalClient", args, || broker.log_tail());
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
