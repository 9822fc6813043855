//! A log directory failing on one broker of three: it goes offline alone. The broker answers
//! KAFKA_STORAGE_ERROR for its partitions, the controller (told through
//! `/log_dir_event_notification`) has other brokers lead them and drops the broker from their
//! ISR, and the broker keeps leading and following the partitions of its other directory.
//!
//! The failure is real: the active segment of a partition the broker leads is made immutable
//! (`chattr +i`), so its next write fails with an I/O error even for root. Skipped with a reason
//! where the file system or the tool does not allow that.

use crate::common::BoundedOutput;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::common::cluster::{
    Cluster, create_replicated_topic, metadata, produce_records, wait_until,
};

const TOPIC: &str = "dirfail";
const KAFKA_STORAGE_ERROR: i16 = 56;

/// Makes a file immutable for as long as it lives (`chattr +i`; `-i` when dropped).
struct Immutable(PathBuf);

impl Immutable {
    fn set(path: &Path) -> Option<Immutable> {
        std::process::Command::new("chattr")
            .arg("+i")
            .arg(path)
            .bounded_output()
            .is_ok_and(|o| o.status.success())
            .then(|| Immutable(path.to_path_buf()))
    }
}

impl Drop for Immutable {
    fn drop(&mut self) {
        let _ = std::process::Command::new("chattr")
            .arg("-i")
            .arg(&self.0)
            .status();
    }
}

/// partition -> (leader, isr) as broker `port` sees it.
async fn states(port: u16) -> BTreeMap<i32, (i32, Vec<i32>)> {
    let md = metadata(port, Some(&[TOPIC])).await;
    md.topics
        .iter()
        .flat_map(|t| t.partitions.iter())
        .map(|p| {
            let mut isr: Vec<i32> = p.isr_nodes.iter().map(|b| b.0).collect();
            isr.sort_unstable();
            (p.partition_index, (p.leader_id.0, isr))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_log_dir_goes_offline_alone_and_its_partitions_are_led_elsewhere() {
    let dirs_tmp = tempfile::tempdir().unwrap();
    let dirs: Vec<PathBuf> = (0..2)
        .map(|i| dirs_tmp.path().join(format!("b1-d{i}")))
        .collect();
    let log_dirs = crate::common::log_dirs(&dirs);
    let Some(cluster) = Cluster::start_each([(1, vec![&log_dirs]), (2, vec![]), (3, vec![])], &[])
    else {
        return;
    };
    cluster.wait_for_brokers(&[1, 2, 3]).await;
    create_replicated_topic(&cluster.bootstrap(1), TOPIC, 6, 3, &[]);
    cluster.wait_led(1, TOPIC, 6).await;
    let port = cluster.port(2);
    wait_until(
        Duration::from_secs(30),
        "every replica in sync",
        || async move {
            // Every partition known (an empty answer is no proof) and fully in sync.
            let s = states(port).await;
            s.len() == 6 && s.values().all(|(_, isr)| isr == &vec![1, 2, 3])
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
    let before = states(cluster.port(2)).await;
    // Which of broker 1's directories holds each partition.
    let dir_of = |p: i32| {
        dirs.iter()
            .position(|d| d.join(format!("{TOPIC}-{p}")).is_dir())
            .unwrap_or_else(|| panic!("{TOPIC}-{p} is in no directory of broker 1"))
    };
    // A partition broker 1 leads: its directory is the one to fail.
    let (&led, _) = before
        .iter()
        .find(|(_, (leader, _))| *leader == 1)
        .unwrap_or_else(|| panic!("broker 1 leads nothing: {before:?}"));
    for p in before.keys() {
        assert_eq!(
            produce_records(cluster.port(before[p].0), TOPIC, *p, 5).await,
            0
        );
    }
    let failing = dir_of(led);
    let in_failing: Vec<i32> = before
        .keys()
        .copied()
        .filter(|p| dir_of(*p) == failing)
        .collect();
    let in_other: Vec<i32> = before
        .keys()
        .copied()
        .filter(|p| dir_of(*p) != failing)
        .collect();
    assert!(
        !in_other.is_empty(),
        "Kafka's placement spreads six partitions over both dirs"
    );
    let segment = dirs[failing]
        .join(format!("{TOPIC}-{led}"))
        .join("00000000000000000000.log");
    let Some(_immutable) = Immutable::set(&segment) else {
        crate::common::missing_tool("chattr +i on the test's file system");
        return;
    };
    assert_eq!(
        produce_records(cluster.port(1), TOPIC, led, 5).await,
        KAFKA_STORAGE_ERROR,
        "{}",
        cluster.logs()
    );
    // The controller hears of it: the failed directory's partitions are led by others, with
    // broker 1 out of their ISR; the other directory's keep broker 1 as before.
    let port = cluster.port(2);
    let (fail_set, other_set) = (in_failing.clone(), in_other.clone());
    let before_c = before.clone();
    let waited = wait_until(
        Duration::from_secs(60),
        "the failed dir's partitions led elsewhere",
        || {
            let (fail_set, other_set, before) =
                (fail_set.clone(), other_set.clone(), before_c.clone());
            async move {
                let now = states(port).await;
                fail_set.iter().all(|p| {
                    now.get(p)
                        .is_some_and(|(l, isr)| *l >= 0 && *l != 1 && !isr.contains(&1))
                }) && other_set.iter().all(|p| {
                    now.get(p)
                        .is_some_and(|(l, isr)| isr.contains(&1) && (before[p].0 != 1 || *l == 1))
                })
            }
        },
    )
    .await;
    if let Err(e) = waited {
        panic!(
            "{e}: {:?}\n{}",
            states(cluster.port(2)).await,
            cluster.logs()
        );
    }
    let after = states(cluster.port(2)).await;
    // Writes go on everywhere: to the new leaders, and to broker 1 for what it still leads.
    for (p, (leader, _)) in &after {
        assert_eq!(
            produce_records(cluster.port(*leader), TOPIC, *p, 5).await,
            0,
            "{TOPIC}-{p} at {leader}:\n{}",
            cluster.logs()
        );
    }
    // Broker 1 answers KAFKA_STORAGE_ERROR for the failed directory's partitions.
    for p in &in_failing {
        assert_eq!(
            produce_records(cluster.port(1), TOPIC, *p, 5).await,
            KAFKA_STORAGE_ERROR
        );
    }
}
