//! A broker under a low open-file limit (set for its process with `prlimit`): one descriptor per
//! partition at rest, so more partitions than half the limit are served and survive a restart;
//! past what the limit allows, partitions are refused with an error naming the limit, and the
//! broker still restarts and serves the others.

use crate::common;
use crate::common::BoundedOutput;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::broker_process::BrokerProcess;
use common::wire::{self, Conn};

const NOFILE: u64 = 512;
const TOPICS: usize = 3;
const PARTITIONS: i32 = 100;

fn prlimit_available() -> bool {
    std::process::Command::new("prlimit")
        .arg("--version")
        .bounded_output()
        .is_ok_and(|o| o.status.success())
}

fn one_record(value: &str) -> Bytes {
    let now = odradek::log::segment::now_ms();
    common::values_batch(common::Producer::PLAIN, now, [value])
}

fn open_files(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

fn topics() -> Vec<String> {
    (0..TOPICS).map(|t| format!("many-{t}")).collect()
}

/// Waits until every partition of `topics` answers ListOffsets with `end` as its latest offset.
async fn wait_all_served(c: &mut Conn, broker: &BrokerProcess, end: i64, limit: Duration) {
    let deadline = Instant::now() + limit;
    for topic in topics() {
        for p in 0..PARTITIONS {
            loop {
                let r = wire::list_offset(c, &topic, p, -1).await;
                if r.error_code == 0 && r.offset == end {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "{topic}-{p} not served with end offset {end} (error {}, offset {}):\n{}",
                    r.error_code,
                    r.offset,
                    broker.log_tail()
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Produces one record to every partition; each must land at `offset`.
async fn produce_everywhere(c: &mut Conn, offset: i64) {
    for topic in topics() {
        for p in 0..PARTITIONS {
            let r = wire::produce(c, &topic, p, one_record(&format!("{topic}-{p}"))).await;
            assert_eq!(
                (r.error_code, r.base_offset),
                (0, offset),
                "produce to {topic}-{p}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_partitions_than_half_the_open_file_limit_are_served_across_restarts() {
    if !prlimit_available() {
        println!("skipped: prlimit (util-linux) is not installed");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let mut broker = BrokerProcess::start_with_nofile(&tmp.path().join("b"), &[], NOFILE);
    let mut c = Conn::connect(broker.port).await;
    for topic in topics() {
        let code = wire::create_topic(&mut c, &topic, PARTITIONS).await;
        // REQUEST_TIMED_OUT: created, not yet all led within the request's timeout.
        assert!(code == 0 || code == 7, "creating {topic}: error {code}");
    }
    let total = TOPICS * PARTITIONS as usize;
    assert!(total as u64 > NOFILE / 2);
    wait_all_served(&mut c, &broker, 0, Duration::from_secs(120)).await;
    produce_everywhere(&mut c, 0).await;
    let at_rest = open_files(broker.pid());
    println!("{total} partitions, {at_rest} open files under a limit of {NOFILE}");
    assert!(
        at_rest <= total + 100,
        "{at_rest} open files for {total} partitions: more than one per partition"
    );
    assert!(
        broker.log_text().contains("open-file limit allows about"),
        "the broker logs its open-file limit:\n{}",
        broker.log_tail()
    );

    // A clean restart under the same limit: every partition is loaded and served again.
    drop(c);
    broker.restart(false);
    let mut c = Conn::connect(broker.port).await;
    wait_all_served(&mut c, &broker, 1, Duration::from_secs(120)).await;
    produce_everywhere(&mut c, 1).await;

    // Past what the limit allows: the partitions that do not fit are refused with the limit
    // named, the others keep working, and the broker still restarts.
    let code = wire::create_topic(&mut c, "too-many", 200).await;
    assert!(code == 0 || code == 7, "creating too-many: error {code}");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !broker
        .log_text()
        .contains(&format!("open-file limit (RLIMIT_NOFILE = {NOFILE})"))
    {
        assert!(
            Instant::now() < deadline,
            "no error naming the open-file limit:\n{}",
            broker.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(broker.is_running(), "the broker keeps running");
    drop(c);
    broker.restart(false);
    let mut c = Conn::connect(broker.port).await;
    wait_all_served(&mut c, &broker, 2, Duration::from_secs(120)).await;
    assert!(
        !broker.log_text().contains("Too many open files"),
        "no descriptor ran out:\n{}",
        broker.log_tail()
    );
}
