//! The bundled tools (`odradek topics|produce|consume`) against a real broker process.

use crate::common;

use common::broker_process::BrokerProcess;
use common::cluster::{create_topic, produce_lines};

#[test]
fn topics_produce_and_consume_round_trip() {
    let tmp = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(&tmp.path().join("broker"), &[]);
    let bs = broker.bootstrap();
    let (ok, out, err) = common::odradek(
        &[
            "topics",
            "--bootstrap-server",
            &bs,
            "--create",
            "--topic",
            "tooled",
            "--partitions",
            "3",
            "--config",
            "retention.ms=3600000",
        ],
        None,
    );
    assert!(ok && out.contains("Created topic tooled."), "{out}{err}");
    let (ok, _, err) = common::odradek(
        &[
            "topics",
            "--bootstrap-server",
            &bs,
            "--create",
            "--topic",
            "tooled",
            "--partitions",
            "3",
        ],
        None,
    );
    assert!(!ok && err.contains("TopicAlreadyExists"), "{err}");
    let (_, out, _) = common::odradek(&["topics", "--bootstrap-server", &bs, "--list"], None);
    assert!(out.lines().any(|l| l == "tooled"), "{out}");
    let (_, out, _) = common::odradek(
        &[
            "topics",
            "--bootstrap-server",
            &bs,
            "--describe",
            "--topic",
            "tooled",
        ],
        None,
    );
    assert!(
        out.contains("PartitionCount: 3") && out.matches("Leader: 0").count() == 3,
        "{out}"
    );

    let lines: String = (0..300).map(|i| format!("k{i}:value {i}\n")).collect();
    let (ok, _, err) = common::odradek(
        &[
            "produce",
            "--bootstrap-server",
            &bs,
            "--topic",
            "tooled",
            "--key-separator",
            ":",
            "--compression-codec",
            "gzip",
            "--batch-lines",
            "50",
        ],
        Some(&lines),
    );
    assert!(ok && err.contains("300 records sent"), "{err}");
    let (ok, out, err) = common::odradek(
        &[
            "consume",
            "--bootstrap-server",
            &bs,
            "--topic",
            "tooled",
            "--from-beginning",
            "--print-key",
            "--key-separator",
            ":",
            "--timeout-ms",
            "1000",
        ],
        None,
    );
    assert!(
        ok && err.contains("Processed a total of 300 messages"),
        "{err}"
    );
    let mut got: Vec<&str> = out.lines().collect();
    got.sort();
    let mut want: Vec<String> = (0..300).map(|i| format!("k{i}:value {i}")).collect();
    want.sort();
    assert_eq!(got, want);
    // Keys are partitioned as the Java client partitions them.
    for p in 0..3 {
        let (_, out, _) = common::odradek(
            &[
                "consume",
                "--bootstrap-server",
                &bs,
                "--topic",
                "tooled",
                "--partition",
                &p.to_string(),
                "--from-beginning",
                "--print-key",
                "--key-separator",
                ":",
                "--timeout-ms",
                "500",
            ],
            None,
        );
        for line in out.lines() {
            let key = line.split(':').next().unwrap();
            assert_eq!(
                odradek::tools::client::partition_for_key(key.as_bytes(), 3),
                p as usize,
                "{key}"
            );
        }
    }
    let (ok, out, _) = common::odradek(
        &[
            "consume",
            "--bootstrap-server",
            &bs,
            "--topic",
            "tooled",
            "--from-beginning",
            "--max-messages",
            "7",
        ],
        None,
    );
    assert!(ok && out.lines().count() == 7, "{out}");

    let (ok, out, err) = common::odradek(
        &[
            "topics",
            "--bootstrap-server",
            &bs,
            "--delete",
            "--topic",
            "tooled",
        ],
        None,
    );
    assert!(ok && out.contains("Deleted topic tooled."), "{out}{err}");
    let (_, out, _) = common::odradek(&["topics", "--bootstrap-server", &bs, "--list"], None);
    assert!(!out.lines().any(|l| l == "tooled"), "{out}");
    let (ok, _, err) = common::odradek(
        &[
            "consume",
            "--bootstrap-server",
            &bs,
            "--topic",
            "tooled",
            "--timeout-ms",
            "100",
        ],
        None,
    );
    assert!(!ok && err.contains("UnknownTopicOrPartition"), "{err}");
}

/// Every tool's `--help` names the options the issue asks of it.
#[test]
fn every_tool_lists_its_options_in_help() {
    let tools: &[(&[&str], &[&str])] = &[
        (
            &["topics"],
            &[
                "--bootstrap-server",
                "--create",
                "--list",
                "--describe",
                "--delete",
                "--alter",
                "--topic",
                "--partitions",
                "--replication-factor",
                "--config",
            ],
        ),
        (
            &["produce"],
            &[
                "--bootstrap-server",
                "--topic",
                "--key-separator",
                "--header",
                "--parse-headers",
                "--acks",
                "--compression-codec",
                "--batch-lines",
            ],
        ),
        (
            &["consume"],
            &[
                "--bootstrap-server",
                "--topic",
                "--partition",
                "--group",
                "--from-beginning",
                "--offset",
                "--timestamp",
                "--max-messages",
                "--timeout-ms",
                "--print-key",
                "--key-separator",
                "--format",
            ],
        ),
        (
            &["groups"],
            &[
                "--bootstrap-server",
                "--list",
                "--describe",
                "--group",
                "--all-groups",
                "--offsets",
                "--members",
                "--verbose",
                "--state",
            ],
        ),
        (
            &["perf", "producer"],
            &[
                "--bootstrap-server",
                "--topic",
                "--num-records",
                "--record-size",
                "--throughput",
                "--acks",
                "--compression",
                "--batch-size",
                "--linger-ms",
                "--max-in-flight",
                "--reporting-interval",
            ],
        ),
        (
            &["perf", "consumer"],
            &[
                "--bootstrap-server",
                "--topic",
                "--messages",
                "--timeout-ms",
                "--fetch-size",
                "--reporting-interval",
            ],
        ),
        (&["perf"], &["producer", "consumer"]),
        (
            &["dump-log"],
            &["--files", "--print-data-log", "--deep-iteration"],
        ),
        (&["broker"], &["--override", "--log-json"]),
        (&["import-zk-tree"], &["<TREE>", "<LOG_DIR>"]),
    ];
    for (cmd, options) in tools {
        let mut args = cmd.to_vec();
        args.push("--help");
        let (ok, out, err) = common::odradek(&args, None);
        assert!(ok, "odradek {}: {err}", args.join(" "));
        for option in *options {
            assert!(
                out.contains(option),
                "`odradek {}` does not list {option}:\n{out}",
                args.join(" ")
            );
        }
    }
    let (_, out, _) = common::odradek(&["--help"], None);
    for tool in ["topics", "produce", "consume", "groups", "perf", "dump-log"] {
        assert!(out.contains(tool), "odradek --help does not list {tool}");
    }
}

/// A summary or progress figure: the number before `unit` in `line`.
fn figure(line: &str, unit: &str) -> f64 {
    let at = line
        .find(unit)
        .unwrap_or_else(|| panic!("no {unit:?} in {line:?}"));
    let before = line[..at].trim_end();
    let start = before
        .rfind(|c: char| !(c.is_ascii_digit() || c == '.'))
        .map_or(0, |i| i + 1);
    before[start..]
        .parse()
        .unwrap_or_else(|e| panic!("{unit:?} in {line:?}: {e}"))
}

/// `perf producer` reports progress while it runs (on standard error, one line per interval)
/// and ends with a summary on standard output; its throttle holds; `perf consumer` reads the
/// records back and summarises.
#[test]
fn perf_prints_progress_while_running_and_a_final_summary() {
    use std::io::{BufRead, BufReader, Read};
    let tmp = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(&tmp.path().join("broker"), &[]);
    let bs = broker.bootstrap();
    create_topic(&bs, "loaded", 3);
    let records = 6000;
    let rate = 3000.0;
    let mut perf = std::process::Command::new(env!("CARGO_BIN_EXE_odradek"))
        .args([
            "perf",
            "producer",
            "--bootstrap-server",
            &bs,
            "--topic",
            "loaded",
            "--num-records",
            &records.to_string(),
            "--record-size",
            "200",
            "--throughput",
            &rate.to_string(),
            "--acks",
            "all",
            "--compression",
            "lz4",
            "--reporting-interval",
            "400",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut progress = Vec::new();
    let mut running_at_first_progress = None;
    for line in BufReader::new(perf.stderr.take().unwrap()).lines() {
        let line = line.unwrap();
        if line.contains("records sent") {
            running_at_first_progress.get_or_insert_with(|| matches!(perf.try_wait(), Ok(None)));
            progress.push(line);
        }
    }
    let status = perf.wait().unwrap();
    let mut summary = String::new();
    perf.stdout
        .take()
        .unwrap()
        .read_to_string(&mut summary)
        .unwrap();
    assert!(status.success(), "{summary}\n{}", progress.join("\n"));
    // At 3000 records/s, 6000 records take two seconds: several 400 ms windows.
    assert!(progress.len() >= 3, "progress lines: {progress:?}");
    assert_eq!(
        running_at_first_progress,
        Some(true),
        "progress is printed while the load runs"
    );
    for line in &progress {
        assert!(
            line.contains("records/sec") && line.contains("ms max latency"),
            "{line}"
        );
    }
    let windows: f64 = progress.iter().map(|l| figure(l, "records sent")).sum();
    assert!(windows <= records as f64, "{progress:?}");
    let summary = summary.trim();
    assert_eq!(summary.lines().count(), 1, "{summary}");
    assert_eq!(figure(summary, "records sent"), records as f64, "{summary}");
    let rps = figure(summary, "records/sec");
    assert!(
        rps <= rate * 1.1 && rps > rate * 0.5,
        "throttled to {rate}/s: {summary}"
    );
    let mbs = figure(summary, "MB/sec)");
    assert!((mbs - rps * 200.0 / 1048576.0).abs() < 0.01, "{summary}");
    let (p50, p99, p999, max) = (
        figure(summary, "ms 50th"),
        figure(summary, "ms 99th"),
        figure(summary, "ms 99.9th"),
        figure(summary, "ms max latency"),
    );
    assert!(
        0.0 < p50 && p50 <= p99 && p99 <= p999 && p999 <= max,
        "{summary}"
    );

    let (ok, out, err) = common::odradek(
        &[
            "perf",
            "consumer",
            "--bootstrap-server",
            &bs,
            "--topic",
            "loaded",
            "--messages",
            &records.to_string(),
            "--timeout-ms",
            "5000",
        ],
        None,
    );
    assert!(ok, "{out}{err}");
    assert_eq!(figure(&out, "records consumed"), records as f64, "{out}");
    let mb = figure(&out, "MB in");
    assert!(
        (mb - records as f64 * 200.0 / 1048576.0).abs() < 0.01,
        "{out}"
    );
    // Asking for more than there is fails after the timeout rather than hanging.
    let (ok, _, err) = common::odradek(
        &[
            "perf",
            "consumer",
            "--bootstrap-server",
            &bs,
            "--topic",
            "loaded",
            "--messages",
            &(records + 1).to_string(),
            "--timeout-ms",
            "1000",
        ],
        None,
    );
    assert!(!ok && err.contains("only 6000 of 6001"), "{err}");
}

fn consume_lines(bs: &str, topic: &str, extra: &[&str]) -> Vec<String> {
    let mut args = vec![
        "consume",
        "--bootstrap-server",
        bs,
        "--topic",
        topic,
        "--timeout-ms",
        "700",
    ];
    args.extend_from_slice(extra);
    let (ok, out, err) = common::odradek(&args, None);
    assert!(ok, "{err}");
    out.lines().map(str::to_string).collect()
}

/// Headers (fixed and per line), acks, the print format, and starting at an offset or a time.
#[test]
fn produce_headers_and_consume_from_offset_and_timestamp_in_a_format() {
    let tmp = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(&tmp.path().join("broker"), &[]);
    let bs = broker.bootstrap();
    create_topic(&bs, "formatted", 1);
    produce_lines(
        &bs,
        "formatted",
        &[
            "--key-separator",
            "=",
            "--header",
            "src=tool",
            "--acks",
            "1",
        ],
        "a=1\nb=2\n",
    );
    produce_lines(
        &bs,
        "formatted",
        &["--key-separator", "=", "--parse-headers", "--acks", "0"],
        "h1:x,h2:y\tc=3\n\td=4\n",
    );
    let before_last = odradek::log::segment::now_ms();
    // The next records must carry a later millisecond than everything before.
    while odradek::log::segment::now_ms() <= before_last {
        std::hint::spin_loop();
    }
    let after = odradek::log::segment::now_ms();
    produce_lines(&bs, "formatted", &["--key-separator", "="], "e=5\nf=6\n");
    let all = consume_lines(
        &bs,
        "formatted",
        &["--from-beginning", "--format", "%t/%p@%o %k=%s [%h] %K/%S"],
    );
    assert_eq!(
        all,
        vec![
            "formatted/0@0 a=1 [src=tool] 1/1",
            "formatted/0@1 b=2 [src=tool] 1/1",
            "formatted/0@2 c=3 [h1=x,h2=y] 1/1",
            "formatted/0@3 d=4 [] 1/1",
            "formatted/0@4 e=5 [] 1/1",
            "formatted/0@5 f=6 [] 1/1",
        ]
    );
    let from_offset = consume_lines(
        &bs,
        "formatted",
        &["--partition", "0", "--offset", "3", "--format", "%o"],
    );
    assert_eq!(from_offset, vec!["3", "4", "5"]);
    let at_time = consume_lines(
        &bs,
        "formatted",
        &["--timestamp", &after.to_string(), "--format", "%k %T"],
    );
    assert_eq!(at_time.len(), 2, "{at_time:?}");
    for (line, key) in at_time.iter().zip(["e", "f"]) {
        let (k, ts) = line.split_once(' ').unwrap();
        assert_eq!(k, key);
        assert!(ts.parse::<i64>().unwrap() >= after, "{line}");
    }
    let future = consume_lines(
        &bs,
        "formatted",
        &["--timestamp", &(after + 3_600_000).to_string()],
    );
    assert!(future.is_empty(), "{future:?}");
    // Without --from-beginning a consumer starts at the end.
    assert!(consume_lines(&bs, "formatted", &[]).is_empty());
    let (ok, _, err) = common::odradek(
        &[
            "consume",
            "--bootstrap-server",
            &bs,
            "--topic",
            "formatted",
            "--format",
            "%q",
        ],
        None,
    );
    assert!(!ok && err.contains("%q"), "{err}");
}

/// The rows of a `groups --describe` table by column name. Columns are cut where the header
/// puts them (a name starts after two or more spaces), so an empty cell stays a cell.
fn describe_rows(out: &str) -> Vec<std::collections::BTreeMap<String, String>> {
    let mut lines = out.lines().filter(|l| !l.trim().is_empty());
    let Some(header) = lines.next() else {
        return Vec::new();
    };
    let mut starts = vec![0];
    let bytes = header.as_bytes();
    for i in 2..bytes.len() {
        if bytes[i] != b' ' && bytes[i - 1] == b' ' && bytes[i - 2] == b' ' {
            starts.push(i);
        }
    }
    let cell = |line: &str, i: usize| {
        let from = starts[i].min(line.len());
        let to = starts.get(i + 1).map_or(line.len(), |&e| e.min(line.len()));
        line[from..to].trim().to_string()
    };
    let names: Vec<String> = (0..starts.len()).map(|i| cell(header, i)).collect();
    lines
        .map(|l| {
            names
                .iter()
                .enumerate()
                .map(|(i, n)| (n.clone(), cell(l, i)))
                .collect()
        })
        .collect()
}

fn groups(bs: &str, args: &[&str]) -> (bool, String, String) {
    let mut all = vec!["groups", "--bootstrap-server", bs];
    all.extend_from_slice(args);
    common::odradek(&all, None)
}

/// `consume --group` starts at the group's committed offsets and commits what it printed;
/// two members share the partitions without printing a record twice; `groups` lists the
/// group and describes offsets, lag, members and state.
#[test]
fn consumer_groups_commit_share_and_are_described_with_lag() {
    let tmp = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(&tmp.path().join("broker"), &[]);
    let bs = broker.bootstrap();
    create_topic(&bs, "grouped", 4);
    let lines: String = (0..200).map(|i| format!("k{i}:v{i}\n")).collect();
    produce_lines(&bs, "grouped", &["--key-separator", ":"], &lines);

    let first = consume_lines(
        &bs,
        "grouped",
        &["--group", "g", "--from-beginning", "--max-messages", "50"],
    );
    assert_eq!(first.len(), 50);
    let (ok, out, err) = groups(&bs, &["--describe", "--group", "g"]);
    assert!(ok, "{err}");
    assert!(
        err.contains("Consumer group 'g' has no active members."),
        "{err}"
    );
    let rows = describe_rows(&out);
    assert_eq!(rows.len(), 4, "{out}");
    let lag: i64 = rows.iter().map(|r| r["LAG"].parse::<i64>().unwrap()).sum();
    assert_eq!(lag, 150, "{out}");
    for r in &rows {
        let (cur, end) = (
            r["CURRENT-OFFSET"].parse::<i64>().unwrap(),
            r["LOG-END-OFFSET"].parse::<i64>().unwrap(),
        );
        assert_eq!(end - cur, r["LAG"].parse::<i64>().unwrap(), "{out}");
        assert_eq!((r["GROUP"].as_str(), r["CONSUMER-ID"].as_str()), ("g", "-"));
    }

    // Two members at once: each gets two partitions, together they print the other 150.
    let spawn = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_odradek"))
            .args([
                "consume",
                "--bootstrap-server",
                &bs,
                "--topic",
                "grouped",
                "--group",
                "g",
                "--timeout-ms",
                "10000",
            ])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let a = spawn();
    let b = spawn();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let members = loop {
        let (_, out, _) = groups(
            &bs,
            &["--describe", "--group", "g", "--members", "--verbose"],
        );
        let rows = describe_rows(&out);
        if rows.len() == 2 && rows.iter().all(|r| r["#PARTITIONS"] == "2") {
            break out;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "two members with two partitions each: {out}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert!(
        members.contains("grouped(0,1)") && members.contains("grouped(2,3)"),
        "range assignment: {members}"
    );
    let (ok, state, _) = groups(&bs, &["--describe", "--group", "g", "--state"]);
    let state = describe_rows(&state);
    assert!(
        ok && state.len() == 1 && state[0]["STATE"] == "Stable" && state[0]["#MEMBERS"] == "2",
        "{state:?}"
    );
    let (ok, list, _) = groups(&bs, &["--list"]);
    assert!(ok && list.lines().any(|l| l == "g"), "{list}");
    let mut printed = Vec::new();
    for child in [a, b] {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        printed.extend(
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .map(str::to_string),
        );
    }
    printed.extend(first);
    printed.sort();
    let mut want: Vec<String> = (0..200).map(|i| format!("v{i}")).collect();
    want.sort();
    assert_eq!(
        printed, want,
        "every record printed exactly once by the group"
    );
    let (_, out, _) = groups(&bs, &["--describe", "--group", "g"]);
    assert!(
        describe_rows(&out).iter().all(|r| r["LAG"] == "0"),
        "everything committed: {out}"
    );
    let (ok, _, err) = groups(&bs, &["--describe", "--group", "nobody"]);
    assert!(
        !ok && err.contains("Consumer group 'nobody' does not exist."),
        "{err}"
    );
}

/// SIGTERM to a group member: it commits what it printed and leaves the group at once (no
/// waiting for the session timeout), and exits 0.
#[test]
fn a_signalled_group_member_commits_and_leaves() {
    use std::io::{BufRead, BufReader};
    let tmp = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(&tmp.path().join("broker"), &[]);
    let bs = broker.bootstrap();
    create_topic(&bs, "signalled", 2);
    let lines: String = (0..100).map(|i| format!("v{i}\n")).collect();
    produce_lines(&bs, "signalled", &[], &lines);
    let mut member = std::process::Command::new(env!("CARGO_BIN_EXE_odradek"))
        .args([
            "consume",
            "--bootstrap-server",
            &bs,
            "--topic",
            "signalled",
            "--group",
            "sig",
            "--from-beginning",
            "--timeout-ms",
            "60000",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let printed = BufReader::new(member.stdout.take().unwrap())
        .lines()
        .take(100)
        .count();
    assert_eq!(printed, 100);
    let signalled = std::time::Instant::now();
    std::process::Command::new("kill")
        .args(["-TERM", &member.id().to_string()])
        .status()
        .unwrap();
    let status = common::wait_or_kill(
        &mut member,
        std::time::Duration::from_secs(10).saturating_sub(signalled.elapsed()),
    )
    .expect("the member stops within 10 s of SIGTERM");
    assert!(status.success(), "{status}");
    let (ok, out, err) = groups(&bs, &["--describe", "--group", "sig"]);
    assert!(ok, "{err}");
    assert!(
        err.contains("has no active members"),
        "left the group: {err}"
    );
    let rows = describe_rows(&out);
    assert_eq!(rows.len(), 2, "{out}");
    assert!(rows.iter().all(|r| r["LAG"] == "0"), "committed all: {out}");
}

/// A committed offset past the log end (the log was truncated or retention passed it) makes the
/// member start again from the reset policy, as auto.offset.reset does, instead of failing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_committed_offset_out_of_range_is_reset() {
    use kafka_protocol::messages::*;
    use kafka_protocol::protocol::StrBytes;
    let tmp = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(&tmp.path().join("broker"), &[]);
    let bs = broker.bootstrap();
    let setup = bs.clone();
    tokio::task::spawn_blocking(move || {
        create_topic(&setup, "reset", 1);
        let lines: String = (0..10).map(|i| format!("v{i}\n")).collect();
        produce_lines(&setup, "reset", &[], &lines);
    })
    .await
    .unwrap();
    // Find the coordinator first: that creates __consumer_offsets.
    let (ok, _, err) = groups(&bs, &["--describe", "--group", "stale"]);
    assert!(!ok && err.contains("does not exist"), "{err}");
    let mut c = common::wire::Conn::connect(broker.port).await;
    let mut p = offset_commit_request::OffsetCommitRequestPartition::default();
    p.partition_index = 0;
    p.committed_offset = 1000;
    p.committed_leader_epoch = -1;
    let mut t = offset_commit_request::OffsetCommitRequestTopic::default();
    t.name = TopicName(StrBytes::from_static_str("reset"));
    t.partitions.push(p);
    let mut req = OffsetCommitRequest::default();
    req.group_id = GroupId(StrBytes::from_static_str("stale"));
    req.generation_id_or_member_epoch = -1;
    req.topics.push(t);
    match c
        .call(ApiKey::OffsetCommit, 8, RequestKind::OffsetCommit(req))
        .await
    {
        ResponseKind::OffsetCommit(r) => {
            assert_eq!(r.topics[0].partitions[0].error_code, 0)
        }
        other => panic!("{other:?}"),
    }
    let printed = tokio::task::spawn_blocking(move || {
        consume_lines(&bs, "reset", &["--group", "stale", "--from-beginning"])
    })
    .await
    .unwrap();
    let want: Vec<String> = (0..10).map(|i| format!("v{i}")).collect();
    assert_eq!(printed, want);
}

fn fixture_tree() -> std::collections::BTreeMap<String, Option<String>> {
    let text = std::fs::read_to_string(common::kafka_single().join("zk-tree.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn parse_dump(out: &str) -> std::collections::BTreeMap<String, Option<String>> {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("not a tree dump ({e}):\n{out}"))
}

/// Kafka's ephemeral nodes, which `import-zk-tree` leaves out.
fn ephemeral(path: &str) -> bool {
    path == "/controller" || path.starts_with("/brokers/ids/")
}

#[test]
fn metadata_dump_prints_the_embedded_tree_of_a_data_dir() {
    let tmp = tempfile::tempdir().unwrap();
    let log_dir = tmp.path().join("logs");
    let tree_file = common::kafka_single().join("zk-tree.json");
    common::import_zk_tree(&tree_file, &log_dir);
    let (ok, out, err) = common::odradek(
        &["metadata-dump", "--data-dir", log_dir.to_str().unwrap()],
        None,
    );
    assert!(ok, "{err}");
    let dumped = parse_dump(&out);
    // What Kafka 2.4.1's ZooKeeper held, minus the session's nodes; the root's data is null in
    // odradek's tree (ZooKeeper's own root holds an empty array).
    let want: std::collections::BTreeMap<_, _> = fixture_tree()
        .into_iter()
        .filter(|(p, _)| !ephemeral(p) && p != "/")
        .collect();
    let got: std::collections::BTreeMap<_, _> =
        dumped.into_iter().filter(|(p, _)| p != "/").collect();
    assert_eq!(got, want);

    let (ok, _, err) = common::odradek(
        &["metadata-dump", "--data-dir", tmp.path().to_str().unwrap()],
        None,
    );
    assert!(
        !ok && err.contains("odradek-metadata.json not found"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_dump_prints_a_zookeeper_tree() {
    use odradek::metadata::store::{CreateMode, MetadataStore};
    let Some(server) = common::zookeeper::ZooKeeperServer::start() else {
        return;
    };
    let connect = format!("{}/kafka", server.connect_string());
    // The fixture's tree, written into ZooKeeper as Kafka wrote it (ephemeral nodes included,
    // held by this session while the dump runs).
    let writer = odradek::metadata::zk::ZkStore::connect(
        &connect,
        std::time::Duration::from_secs(10),
        std::time::Duration::from_secs(10),
    )
    .await
    .unwrap();
    let fixture = fixture_tree();
    let kafka_nodes: std::collections::BTreeMap<_, _> = fixture
        .iter()
        .filter(|(p, _)| *p != "/" && !p.starts_with("/zookeeper"))
        .collect();
    for (path, data) in &kafka_nodes {
        let mode = if ephemeral(path) {
            CreateMode::Ephemeral
        } else {
            CreateMode::Persistent
        };
        // Sorted paths: every parent comes before its children.
        let data = data.as_ref().map(|d| d.clone().into_bytes());
        writer
            .create(path, data, mode)
            .await
            .unwrap_or_else(|e| panic!("{path}: {e}"));
    }
    let (ok, out, err) = tokio::task::block_in_place(|| {
        common::odradek(&["metadata-dump", "--zookeeper", &connect], None)
    });
    assert!(ok, "{err}");
    let dumped = parse_dump(&out);
    let got: std::collections::BTreeMap<_, _> = dumped.iter().filter(|(p, _)| *p != "/").collect();
    assert_eq!(got, kafka_nodes);
    assert_eq!(dumped.get("/"), Some(&None));

    // Without the chroot: ZooKeeper's own nodes too, and Kafka's under /kafka.
    let (ok, out, err) = tokio::task::block_in_place(|| {
        common::odradek(
            &["metadata-dump", "--zookeeper", &server.connect_string()],
            None,
        )
    });
    assert!(ok, "{err}");
    let dumped = parse_dump(&out);
    assert!(dumped.contains_key("/zookeeper/quota"), "{out}");
    assert_eq!(
        dumped.get("/kafka/cluster/id"),
        Some(&fixture["/cluster/id"])
    );
    drop(writer);

    let dead = format!("127.0.0.1:{}", common::broker_process::free_port());
    let (ok, _, err) = tokio::task::block_in_place(|| {
        common::odradek(
            &[
                "metadata-dump",
                "--zookeeper",
                &dead,
                "--zookeeper-connection-timeout-ms",
                "500",
            ],
            None,
        )
    });
    assert!(!ok && err.contains(&dead), "{err}");
}

/// `--bootstrap-server` takes a list, as Kafka's tools do: a closed port first does not stop
/// any tool, which goes on to the next entry; a list of closed ports fails promptly naming
/// each; a malformed list is a usage error.
#[test]
fn tools_try_each_bootstrap_server_in_turn() {
    use common::broker_process::free_port;
    let tmp = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(&tmp.path().join("broker"), &[]);
    // Bound and released at once: nothing listens there, so connecting is refused.
    let closed = format!("127.0.0.1:{}", free_port());
    let list = format!("{closed},{}", broker.bootstrap());

    let (ok, out, err) = common::odradek(
        &[
            "topics",
            "--bootstrap-server",
            &list,
            "--create",
            "--topic",
            "listed",
            "--partitions",
            "2",
        ],
        None,
    );
    assert!(ok && out.contains("Created topic listed."), "{out}{err}");
    let (ok, out, err) = common::odradek(
        &[
            "perf",
            "producer",
            "--bootstrap-server",
            &list,
            "--topic",
            "listed",
            "--num-records",
            "3000",
            "--record-size",
            "50",
            "--throughput",
            "-1",
        ],
        None,
    );
    assert!(ok, "{out}{err}");
    assert_eq!(figure(&out, "records sent"), 3000.0, "{out}");
    let (ok, out, err) = common::odradek(
        &[
            "perf",
            "consumer",
            "--bootstrap-server",
            &list,
            "--topic",
            "listed",
            "--messages",
            "3000",
            "--timeout-ms",
            "5000",
        ],
        None,
    );
    assert!(ok, "{out}{err}");
    assert_eq!(figure(&out, "records consumed"), 3000.0, "{out}");
    let printed = consume_lines(&list, "listed", &["--from-beginning"]);
    assert_eq!(printed.len(), 3000);
    let (ok, out, err) = groups(&list, &["--list"]);
    assert!(ok, "{out}{err}");

    let other_closed = format!("127.0.0.1:{}", free_port());
    let started = std::time::Instant::now();
    let (ok, _, err) = common::odradek(
        &[
            "topics",
            "--bootstrap-server",
            &format!("{closed},{other_closed}"),
            "--list",
        ],
        None,
    );
    assert!(
        !ok && err.contains(&closed) && err.contains(&other_closed),
        "{err}"
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "refused connections fail at once"
    );
    let (ok, _, err) = common::odradek(
        &["topics", "--bootstrap-server", "127.0.0.1", "--list"],
        None,
    );
    assert!(!ok && err.contains("not host:port"), "{err}");
}
