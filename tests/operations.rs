//! Operating a broker: structured logs, graceful and forced shutdown.

mod common;

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::broker_process::BrokerProcess;

fn tool(args: &[&str], stdin: &str) -> bool {
    common::odradek(args, Some(stdin)).0
}

#[test]
fn json_logs_have_one_line_per_event_and_none_per_record() {
    let tmp = tempfile::tempdir().unwrap();
    let mut broker = BrokerProcess::start_with_args(
        &tmp.path().join("b"),
        &["log.segment.bytes=2048"],
        &["--log-json"],
    );
    let bs = broker.bootstrap();
    assert!(tool(
        &[
            "topics",
            "--bootstrap-server",
            &bs,
            "--create",
            "--topic",
            "logged",
            "--partitions",
            "1"
        ],
        ""
    ));
    let lines: String = (0..2000).map(|i| format!("record number {i}\n")).collect();
    assert!(tool(
        &[
            "produce",
            "--bootstrap-server",
            &bs,
            "--topic",
            "logged",
            "--batch-lines",
            "100"
        ],
        &lines
    ));
    broker.stop(false);
    let log = std::fs::read_to_string(broker.log_path()).unwrap();
    let events: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let message = |v: &serde_json::Value| v["fields"]["message"].as_str().unwrap_or("").to_string();
    let count = |m: &str| events.iter().filter(|e| message(e) == m).count();
    assert_eq!(count("created topic"), 1);
    assert_eq!(count("became leader"), 1);
    assert!(
        count("rolled new log segment") >= 5,
        "segment rolls are logged"
    );
    assert_eq!(count("shut down completed"), 1);
    assert!(
        events.len() < 200,
        "{} lines for 2000 records: logging must not be per record",
        events.len()
    );
    assert!(
        events
            .iter()
            .all(|e| e["level"].is_string() && e["timestamp"].is_string())
    );
}

fn clean_marker(dir: &Path) -> bool {
    dir.join("logs/.kafka_cleanshutdown").exists()
}

#[test]
fn sigterm_answers_in_flight_requests_then_stops_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    let mut broker = BrokerProcess::start(&tmp.path().join("b"), &[]);
    let bs = broker.bootstrap();
    assert!(tool(
        &[
            "topics",
            "--bootstrap-server",
            &bs,
            "--create",
            "--topic",
            "quiet",
            "--partitions",
            "1"
        ],
        ""
    ));
    // A consumer long-polling an empty topic has a request in flight when the signal comes.
    let mut consumer = Command::new(env!("CARGO_BIN_EXE_odradek"))
        .args([
            "consume",
            "--bootstrap-server",
            &bs,
            "--topic",
            "quiet",
            "--timeout-ms",
            "60000",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let started = Instant::now();
    let status = broker.stop(false).unwrap();
    assert!(status.success(), "exit status {status}");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(
        clean_marker(&tmp.path().join("b")),
        "clean-shutdown marker written"
    );
    let mut err = String::new();
    let _ = consumer.wait();
    consumer
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(
        !err.contains("Connection reset"),
        "in-flight fetch was answered, not reset: {err}"
    );
}

/// A fetch waiting 30 s holds up a graceful stop (its answer is owed); a second signal does not
/// wait for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_signal_exits_at_once() {
    use kafka_protocol::messages::*;
    use kafka_protocol::protocol::StrBytes;
    let tmp = tempfile::tempdir().unwrap();
    let mut broker = BrokerProcess::start(&tmp.path().join("b"), &[]);
    let bs = broker.bootstrap();
    assert!(tool(
        &[
            "topics",
            "--bootstrap-server",
            &bs,
            "--create",
            "--topic",
            "waiting",
            "--partitions",
            "1"
        ],
        ""
    ));
    let port = broker.port;
    let _waiter = tokio::spawn(async move {
        let mut c = common::wire::Conn::connect(port).await;
        let mut p = fetch_request::FetchPartition::default();
        p.partition_max_bytes = 1 << 20;
        let mut t = fetch_request::FetchTopic::default();
        t.topic = TopicName(StrBytes::from_static_str("waiting"));
        t.partitions.push(p);
        let mut r = FetchRequest::default();
        r.replica_id = BrokerId(-1);
        r.max_wait_ms = 30_000;
        r.min_bytes = 1;
        r.max_bytes = 1 << 20;
        r.topics.push(t);
        // The answer never comes (the broker is made to exit); only the waiting matters.
        c.send_request(ApiKey::Fetch, 11, RequestKind::Fetch(r))
            .await;
        c.read_frame().await
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let pid = broker.pid().to_string();
    let started = Instant::now();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "no new connections once stopping"
    );
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    let status = tokio::task::spawn_blocking(move || broker.stop(false))
        .await
        .unwrap()
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(status.code(), Some(130), "the second signal exits at once");
}
