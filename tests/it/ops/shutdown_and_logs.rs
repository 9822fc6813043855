//! Operating a broker: structured logs, graceful and forced shutdown.

use crate::common;

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
    common::cluster::create_topic(&bs, "logged", 1);
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
    common::cluster::create_topic(&bs, "quiet", 1);
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
    // Nothing outside the broker shows a fetch held in its wait (requests are counted when
    // answered), hence a fixed wait for the consumer to get there.
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
    common::cluster::create_topic(&bs, "waiting", 1);
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
    // Nothing outside the broker shows the fetch held (requests are counted when answered).
    tokio::time::sleep(Duration::from_millis(500)).await;
    let pid = broker.pid().to_string();
    let started = Instant::now();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    // Stopping closes the listener at once, while the waiting fetch still holds the broker up.
    let refusing_by = Instant::now() + Duration::from_secs(3);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
        assert!(
            Instant::now() < refusing_by,
            "no new connections once stopping"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
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

/// SIGTERM while a producer sends acks=all batches as fast as they are acknowledged: the broker
/// exits 0 within seconds, the next start finds the clean-shutdown marker and skips recovery,
/// and every acknowledged record is there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_produce_load_keeps_every_acknowledged_record_and_skips_recovery() {
    use kafka_protocol::messages::*;
    use kafka_protocol::protocol::{Decodable, StrBytes};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("b");
    let mut broker = BrokerProcess::start(&dir, &[]);
    let bs = broker.bootstrap();
    common::cluster::create_topic(&bs, "busy", 3);
    let acked = Arc::new(AtomicU64::new(0));
    let port = broker.port;
    let counter = acked.clone();
    // Batches of 100 numbered records, round robin over the partitions; a batch counts once
    // its acks=all answer says so. The load ends when the broker stops answering.
    let producer = tokio::spawn(async move {
        let mut c = common::wire::Conn::connect(port).await;
        let mut next = 0u64;
        loop {
            let values = (next..next + 100).map(|i| format!("r{i}"));
            let now = odradek::log::segment::now_ms();
            let batch = common::values_batch(common::Producer::PLAIN, now, values);
            let mut pd = produce_request::PartitionProduceData::default();
            pd.index = ((next / 100) % 3) as i32;
            pd.records = Some(batch);
            let mut td = produce_request::TopicProduceData::default();
            td.name = TopicName(StrBytes::from_static_str("busy"));
            td.partition_data.push(pd);
            let mut req = ProduceRequest::default();
            req.acks = -1;
            req.timeout_ms = 10_000;
            req.topic_data.push(td);
            c.send_request(ApiKey::Produce, 9, RequestKind::Produce(req))
                .await;
            let Some(mut frame) = c.read_frame().await else {
                return next;
            };
            let _ = ResponseHeader::decode(&mut frame, 1);
            let Ok(r) = ProduceResponse::decode(&mut frame, 9) else {
                return next;
            };
            if r.responses[0].partition_responses[0].error_code != 0 {
                return next;
            }
            next += 100;
            counter.store(next, Ordering::SeqCst);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    while acked.load(Ordering::SeqCst) < 5_000 {
        assert!(Instant::now() < deadline, "the load did not get going");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let started = Instant::now();
    let (mut broker, status) = tokio::task::spawn_blocking(move || {
        let status = broker.stop(false);
        (broker, status)
    })
    .await
    .unwrap();
    let stopped_in = started.elapsed();
    assert!(status.unwrap().success(), "{}", broker.log_tail());
    assert!(
        stopped_in < Duration::from_secs(5),
        "stopping under load took {stopped_in:?}"
    );
    let acked = tokio::time::timeout(Duration::from_secs(30), producer)
        .await
        .expect("the producer notices the broker is gone")
        .unwrap();
    assert!(clean_marker(&dir), "clean-shutdown marker written");

    let log_path = broker.log_path().to_path_buf();
    let log = || std::fs::read_to_string(&log_path).unwrap();
    assert_eq!(log().matches("skipping recovery").count(), 0);
    assert!(log().contains("recovering logs: no clean-shutdown marker"));
    broker.restart(false);
    assert_eq!(
        log()
            .matches("skipping recovery: clean-shutdown marker found")
            .count(),
        1,
        "{}",
        broker.log_tail()
    );
    let (ok, out, err) = common::odradek(
        &[
            "consume",
            "--bootstrap-server",
            &broker.bootstrap(),
            "--topic",
            "busy",
            "--from-beginning",
            "--timeout-ms",
            "1500",
        ],
        None,
    );
    assert!(ok, "{err}");
    let stored: std::collections::HashSet<&str> = out.lines().collect();
    assert_eq!(stored.len(), out.lines().count(), "no record stored twice");
    let missing: Vec<u64> = (0..acked)
        .filter(|i| !stored.contains(format!("r{i}").as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {acked} acknowledged records missing, first {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
}
