//! While ZooKeeper is down, a broker's repeating warnings are logged once, then summarised
//! (a count every few seconds), not once per retry.

use crate::common;

use std::time::Duration;

use common::cluster::Cluster;

/// The broker's WARN lines in its log text.
fn warn_lines(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| l.contains(" WARN "))
        .map(str::to_string)
        .collect()
}

/// ZooKeeper stopped under a broker for ten seconds (past its session timeout): a handful of
/// WARN lines, not one per 100 ms reconnect attempt, and the repeated warning summarised with
/// its count.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zookeeper_down_warnings_are_summarised() {
    const DOWN: Duration = Duration::from_secs(10);
    let Some(mut cluster) = Cluster::start_with(&[1], &["zookeeper.session.timeout.ms=6000"])
    else {
        return;
    };
    cluster.wait_for_brokers(&[1]).await;
    let before = warn_lines(&cluster.brokers[&1].log_text()).len();
    cluster.zk.stop();
    // A fixed observation window, not a wait for a condition: the warnings are counted over
    // it.
    tokio::time::sleep(DOWN).await;
    let text = cluster.brokers[&1].log_text();
    let warns = warn_lines(&text);
    let during = &warns[before.min(warns.len())..];
    println!(
        "{} WARN lines while ZooKeeper was down:\n{}",
        during.len(),
        during.join("\n")
    );
    // Before: one line per 100 ms reconnect attempt (37 in one run of this test).
    assert!(
        during.len() <= 12,
        "{} WARN lines in {DOWN:?}:\n{}",
        during.len(),
        during.join("\n")
    );
    assert!(
        during
            .iter()
            .any(|l| l.contains("repeated") && l.contains("more times")),
        "a repeated warning is summarised with its count:\n{}",
        during.join("\n")
    );
    cluster.zk.restart();
}
