//! Idempotent producers through a proxy that cuts their connections at random points: every
//! number lands in the log exactly once, in order (issue 4, acceptance 3).

use crate::common;
use crate::common::BoundedOutput;

use std::path::Path;
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use common::broker_process::BrokerProcess;
use common::cutting_proxy::CuttingProxy;
use odradek::config::LogConfig;
use odradek::log::records::decode_batch;
use odradek::log::{LoadParams, PartitionLog};

const COUNT: usize = 100_000;

/// Every value in the partition's log, read from the files after the broker stopped.
fn values_in_log(dir: &Path) -> Vec<String> {
    let log = PartitionLog::open(
        dir,
        LogConfig::default(),
        LoadParams {
            clean_shutdown: true,
            ..LoadParams::default()
        },
    )
    .unwrap();
    let mut out = Vec::new();
    let mut offset = 0;
    while offset < log.log_end_offset() {
        let r = log
            .read(offset, 1 << 20, log.log_end_offset(), true)
            .unwrap();
        let mut pos = 0;
        while pos < r.records.len() {
            let size = odradek::log::batch::entry_size(&r.records[pos..]).unwrap() as usize;
            let (h, recs) = decode_batch(&r.records[pos..pos + size]).unwrap();
            out.extend(
                recs.iter()
                    .map(|r| String::from_utf8(r.value.clone().unwrap().to_vec()).unwrap()),
            );
            offset = h.next_offset();
            pos += size;
        }
    }
    out
}

fn check_exactly_once(values: &[String], who: &str) {
    let expected: Vec<String> = (0..COUNT).map(|i| i.to_string()).collect();
    if values != expected {
        let dupes = values.len() as i64 - COUNT as i64;
        let first_diff = values.iter().zip(&expected).position(|(a, b)| a != b);
        panic!(
            "{who}: {} values in the log ({dupes:+} vs sent); first difference at index {first_diff:?}",
            values.len()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotent_producers_survive_cut_connections_without_duplicates() {
    let tmp = tempfile::tempdir().unwrap();
    let classes = tmp.path().join("classes");
    if common::compile_java("NumberedProducer", &classes).is_none() {
        common::missing_tool("kafka-clients jars (scripts/java-deps.sh) and javac");
        return;
    }
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    eprintln!("proxy seed {seed}");
    let proxy_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy_port = proxy_listener.local_addr().unwrap().port();
    // The broker advertises the proxy, so every request after bootstrap goes through it too.
    let advertised = format!("advertised.listeners=PLAINTEXT://127.0.0.1:{proxy_port}");
    let mut broker = BrokerProcess::start(
        &tmp.path().join("broker"),
        &[&advertised, "num.partitions=1"],
    );
    let proxy = CuttingProxy::start(proxy_listener, broker.port, seed, 20_000, 400_000);
    let bootstrap = format!("127.0.0.1:{proxy_port}");

    let mut clients: Vec<(String, Command)> = Vec::new();
    for version in ["3.9", "4.3"] {
        match common::kafka_clients_classpath_for(version) {
            Some(jars) => {
                let mut cmd = Command::new("java");
                cmd.args([
                    "-cp",
                    &format!("{}:{jars}", classes.display()),
                    "NumberedProducer",
                    &bootstrap,
                    &format!("numbers-java-{}", version.replace('.', "-")),
                    &COUNT.to_string(),
                ]);
                clients.push((format!("java {version}"), cmd));
            }
            None => common::missing_tool(&format!("kafka-clients {version} jars")),
        }
    }
    match common::python_venv() {
        Some(python) => {
            let mut cmd = Command::new(python);
            cmd.arg(
                Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("compat-tests/python/numbered_producer.py"),
            )
            .args([&bootstrap, "numbers-confluent", &COUNT.to_string()]);
            clients.push(("confluent-kafka".to_string(), cmd));
        }
        None => {
            common::missing_tool("the Python venv with confluent-kafka (scripts/python-deps.sh)")
        }
    }
    let mut topics = Vec::new();
    for (who, mut cmd) in clients {
        let out = tokio::task::spawn_blocking(move || cmd.bounded_output())
            .await
            .unwrap()
            .unwrap();
        assert!(
            out.status.success(),
            "{who}: {}\n{}\nbroker:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            broker.log_tail()
        );
        let topic = if who.starts_with("java") {
            format!(
                "numbers-java-{}",
                who.trim_start_matches("java ").replace('.', "-")
            )
        } else {
            "numbers-confluent".to_string()
        };
        topics.push((who, topic));
    }
    let cuts = proxy.cuts.load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        cuts >= 5,
        "the proxy cut only {cuts} connections; the test proves nothing"
    );
    eprintln!("{cuts} connections cut");
    broker.stop(false);
    for (who, topic) in topics {
        let values = values_in_log(&tmp.path().join("broker/logs").join(format!("{topic}-0")));
        check_exactly_once(&values, &who);
    }
}
