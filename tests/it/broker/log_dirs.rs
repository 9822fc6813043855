//! JBOD on one broker: several `log.dirs`, new partitions placed by Kafka's rule (fewest logs
//! first), each directory's `meta.properties`, DescribeLogDirs, and AlterReplicaLogDirs moving
//! a replica to another directory while a producer writes to it, losing nothing.

use crate::common::BoundedOutput;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

use crate::common::client_batch;
use crate::common::wire::{
    Conn, STORES, create_topic, fetch, produce_with_acks, start_broker_on, topic_name,
};

const LOG_DIR_NOT_FOUND: i16 = 57;
const REPLICA_NOT_AVAILABLE: i16 = 9;

fn partition_dirs(dir: &Path, topic: &str) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.starts_with(&format!("{topic}-")))
        .collect()
}

async fn describe(c: &mut Conn, version: i16) -> DescribeLogDirsResponse {
    c.send(version, DescribeLogDirsRequest::default().with_topics(None))
        .await
}

/// (dir, partition, is_future, offset_lag) of every log of `topic` DescribeLogDirs reports.
async fn described(c: &mut Conn, topic: &str) -> Vec<(String, i32, bool, i64)> {
    let r = describe(c, 4).await;
    assert_eq!(r.error_code, 0);
    let mut out = Vec::new();
    for d in r.results {
        assert_eq!(d.error_code, 0);
        for t in d.topics.iter().filter(|t| t.name.0.as_str() == topic) {
            for p in &t.partitions {
                out.push((
                    d.log_dir.to_string(),
                    p.partition_index,
                    p.is_future_key,
                    p.offset_lag,
                ));
            }
        }
    }
    out.sort();
    out
}

async fn alter(c: &mut Conn, dir: &Path, topic: &str, partition: i32) -> i16 {
    let t = alter_replica_log_dirs_request::AlterReplicaLogDirTopic::default()
        .with_name(topic_name(topic))
        .with_partitions(vec![partition]);
    let d = alter_replica_log_dirs_request::AlterReplicaLogDir::default()
        .with_path(StrBytes::from_string(dir.display().to_string()))
        .with_topics(vec![t]);
    let r = c
        .send(2, AlterReplicaLogDirsRequest::default().with_dirs(vec![d]))
        .await;
    r.results[0].partitions[0].error_code
}

/// Every record value of the partition, read from offset 0 to the log end.
async fn read_values(c: &mut Conn, topic: &str, partition: i32) -> Vec<String> {
    let mut values = Vec::new();
    let mut offset = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(
            Instant::now() < deadline,
            "reading the partition back took too long"
        );
        let p = fetch(c, topic, partition, offset, 0).await;
        assert_eq!(p.error_code, 0);
        let bytes = p.records.unwrap_or_default();
        if bytes.is_empty() {
            assert!(
                offset >= p.high_watermark,
                "no records below the high watermark"
            );
            return values;
        }
        let mut pos = 0;
        while pos < bytes.len() {
            let Some(size) = odradek::log::batch::entry_size(&bytes[pos..]) else {
                break;
            };
            let size = size as usize;
            if pos + size > bytes.len() {
                break;
            }
            let (h, records) =
                odradek::log::records::decode_batch(&bytes[pos..pos + size]).unwrap();
            for r in records {
                values.push(String::from_utf8_lossy(&r.value.unwrap_or_default()).to_string());
            }
            offset = h.last_offset() + 1;
            pos += size;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_log_dirs_place_describe_and_move_a_replica_under_load() {
    for store in STORES {
        let tmp = tempfile::tempdir().unwrap();
        let dirs: Vec<PathBuf> = (0..3).map(|i| tmp.path().join(format!("d{i}"))).collect();
        let log_dirs = crate::common::log_dirs(&dirs);
        let Some((broker, _zk)) =
            start_broker_on(store, &tmp.path().join("unused"), &[&log_dirs]).await
        else {
            return;
        };
        let mut c = Conn::connect(broker.port).await;

        // Six partitions over three empty directories: two each.
        assert_eq!(create_topic(&mut c, "jbod", 6).await, 0);
        for d in &dirs {
            assert_eq!(
                partition_dirs(d, "jbod").len(),
                2,
                "{store:?}: {}",
                d.display()
            );
        }
        // Every directory has meta.properties naming this broker and the same cluster.
        let cluster_ids: BTreeSet<String> = dirs
            .iter()
            .map(|d| {
                let text = std::fs::read_to_string(d.join("meta.properties")).unwrap();
                assert!(text.contains("broker.id=0"), "{text}");
                text.lines()
                    .find_map(|l| l.strip_prefix("cluster.id="))
                    .unwrap()
                    .to_string()
            })
            .collect();
        assert_eq!(cluster_ids.len(), 1);

        // DescribeLogDirs: each directory by its absolute path, with its file system's space.
        let r = describe(&mut c, 4).await;
        assert_eq!(r.results.len(), 3);
        for d in &r.results {
            assert_eq!(d.error_code, 0);
            assert!(
                dirs.iter()
                    .any(|x| x.display().to_string() == d.log_dir.as_str())
            );
            assert!(d.total_bytes > 0 && d.usable_bytes > 0 && d.usable_bytes <= d.total_bytes);
            let n: usize = d.topics.iter().map(|t| t.partitions.len()).sum();
            assert_eq!(n, 2, "{store:?}: {}", d.log_dir.as_str());
        }
        // v0 answers too, without the space fields.
        assert_eq!(describe(&mut c, 0).await.results.len(), 3);
        // Only the partitions asked for.
        let t = describe_log_dirs_request::DescribableLogDirTopic::default()
            .with_topic(topic_name("jbod"))
            .with_partitions(vec![3]);
        let r = c
            .send(
                1,
                DescribeLogDirsRequest::default().with_topics(Some(vec![t])),
            )
            .await;
        let listed: Vec<i32> = r
            .results
            .iter()
            .flat_map(|d| d.topics.iter().flat_map(|t| t.partitions.iter()))
            .map(|p| p.partition_index)
            .collect();
        assert_eq!(listed, vec![3]);

        // Errors as Kafka's: a path that is not one of log.dirs, a replica not hosted here.
        assert_eq!(
            alter(&mut c, &tmp.path().join("elsewhere"), "jbod", 0).await,
            LOG_DIR_NOT_FOUND
        );
        assert_eq!(
            alter(&mut c, &dirs[2], "later", 0).await,
            REPLICA_NOT_AVAILABLE
        );
        // ... whose directory is remembered for when it is created.
        assert_eq!(create_topic(&mut c, "later", 1).await, 0);
        assert_eq!(
            partition_dirs(&dirs[2], "later"),
            BTreeSet::from(["later-0".to_string()]),
            "{store:?}: created in the directory asked for"
        );

        // Move partition 0 to a directory that does not hold it, while a producer writes.
        let before = described(&mut c, "jbod").await;
        let (from, _, _, _) = before.iter().find(|(_, p, _, _)| *p == 0).unwrap().clone();
        let target = dirs
            .iter()
            .find(|d| d.display().to_string() != from)
            .unwrap()
            .clone();
        let port = broker.port;
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let producer = tokio::spawn(async move {
            let mut p = Conn::connect(port).await;
            let mut acked = Vec::new();
            let mut i = 0usize;
            while !*stop_rx.borrow() || acked.len() < 200 {
                let r =
                    produce_with_acks(&mut p, "jbod", 0, client_batch(i, 10, 200, 0, 0), -1).await;
                if r.error_code == 0 {
                    acked.extend((i..i + 10).map(|n| format!("{n:0200}")));
                }
                i += 10;
            }
            acked
        });
        // Some data before the move starts, so there is something to copy.
        let deadline = Instant::now() + Duration::from_secs(30);
        while crate::common::wire::latest(&mut c, "jbod", 0).await < 100 {
            assert!(Instant::now() < deadline, "the producer writes nothing");
            tokio::task::yield_now().await;
        }
        assert_eq!(alter(&mut c, &target, "jbod", 0).await, 0);
        // Asking again for the same directory changes nothing.
        assert_eq!(alter(&mut c, &target, "jbod", 0).await, 0);
        let target_name = target.display().to_string();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let now = described(&mut c, "jbod").await;
            let p0: Vec<_> = now.iter().filter(|(_, p, _, _)| *p == 0).collect();
            if p0.len() == 1 && p0[0].0 == target_name && !p0[0].2 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{store:?}: the move did not finish: {p0:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        stop_tx.send(true).unwrap();
        let acked = producer.await.unwrap();

        // On disk: the partition is in the new directory, nothing left of the move.
        assert!(target.join("jbod-0").is_dir());
        assert!(!Path::new(&from).join("jbod-0").exists());
        let deadline = Instant::now() + Duration::from_secs(30);
        while dirs.iter().any(|d| {
            partition_dirs(d, "jbod")
                .iter()
                .any(|n| n.ends_with("-future") || n.ends_with("-delete"))
        }) {
            assert!(
                Instant::now() < deadline,
                "future or deleted logs left behind"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // Every acknowledged record is there, once, in order.
        let values = read_values(&mut c, "jbod", 0).await;
        let acked_set: BTreeSet<&String> = acked.iter().collect();
        let read: Vec<&String> = values.iter().filter(|v| acked_set.contains(v)).collect();
        assert_eq!(
            read.len(),
            acked.len(),
            "{store:?}: acknowledged records lost or doubled"
        );
        assert_eq!(read, acked.iter().collect::<Vec<_>>());

        // The log goes on in its new directory, and is found there after a restart.
        let r = produce_with_acks(&mut c, "jbod", 0, client_batch(0, 1, 10, 0, 0), -1).await;
        assert_eq!(r.error_code, 0);
        let end = crate::common::wire::latest(&mut c, "jbod", 0).await;
        drop(c);
        broker.shutdown().await.unwrap();
        if store == crate::common::wire::Store::ZooKeeper {
            // A restart needs the same ZooKeeper tree (its cluster id is in meta.properties):
            // the embedded store's run covers it.
            continue;
        }
        let Some((broker, _)) =
            start_broker_on(store, &tmp.path().join("unused"), &[&log_dirs]).await
        else {
            return;
        };
        let mut c = Conn::connect(broker.port).await;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let p0: Vec<_> = described(&mut c, "jbod")
                .await
                .into_iter()
                .filter(|(_, p, _, _)| *p == 0)
                .collect();
            if p0.len() == 1 {
                assert_eq!(p0[0].0, target_name);
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the moved log is not found after a restart"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while crate::common::wire::latest(&mut c, "jbod", 0).await != end {
            assert!(
                Instant::now() < deadline,
                "the moved log lost records at restart"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        drop(c);
        broker.shutdown().await.unwrap();
    }
}

/// Makes a file immutable (`chattr +i`) for as long as it lives: writes to it fail even for
/// root, through descriptors opened before. `None` when the file system or the tool does not
/// allow it.
struct Immutable(PathBuf);

impl Immutable {
    fn set(path: &Path) -> Option<Immutable> {
        let ok = std::process::Command::new("chattr")
            .arg("+i")
            .arg(path)
            .bounded_output()
            .is_ok_and(|o| o.status.success());
        ok.then(|| Immutable(path.to_path_buf()))
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

const KAFKA_STORAGE_ERROR: i16 = 56;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_log_dir_goes_offline_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let dirs: Vec<PathBuf> = (0..2).map(|i| tmp.path().join(format!("d{i}"))).collect();
    let log_dirs = crate::common::log_dirs(&dirs);
    // The embedded store lives in the first directory: the second one fails.
    let Some((broker, _zk)) = start_broker_on(
        crate::common::wire::Store::Embedded,
        &tmp.path().join("unused"),
        &[&log_dirs],
    )
    .await
    else {
        return;
    };
    let mut c = Conn::connect(broker.port).await;
    assert_eq!(create_topic(&mut c, "fail", 2).await, 0);
    let failing = dirs[1].join("fail-1");
    assert!(
        failing.is_dir(),
        "partition 1 is placed in the second directory"
    );
    for p in 0..2 {
        let r = produce_with_acks(&mut c, "fail", p, client_batch(0, 5, 10, 0, 0), -1).await;
        assert_eq!(r.error_code, 0);
    }
    let Some(_immutable) = Immutable::set(&failing.join("00000000000000000000.log")) else {
        crate::common::missing_tool("chattr +i on the test's file system");
        broker.shutdown().await.unwrap();
        return;
    };
    // The write fails with an I/O error: the directory goes offline with its partitions.
    let r = produce_with_acks(&mut c, "fail", 1, client_batch(5, 5, 10, 0, 0), -1).await;
    assert_eq!(r.error_code, KAFKA_STORAGE_ERROR);
    let r = produce_with_acks(&mut c, "fail", 1, client_batch(5, 5, 10, 0, 0), -1).await;
    assert_eq!(
        r.error_code, KAFKA_STORAGE_ERROR,
        "the partition stays offline"
    );
    assert_eq!(
        fetch(&mut c, "fail", 1, 0, 0).await.error_code,
        KAFKA_STORAGE_ERROR
    );
    // The other directory's partition is served as before.
    let r = produce_with_acks(&mut c, "fail", 0, client_batch(5, 5, 10, 0, 0), -1).await;
    assert_eq!(r.error_code, 0);
    assert_eq!(read_values(&mut c, "fail", 0).await.len(), 10);
    // DescribeLogDirs: the failed directory answers KAFKA_STORAGE_ERROR, the other as before.
    let r = describe(&mut c, 4).await;
    let by_dir: Vec<(String, i16, usize)> = r
        .results
        .iter()
        .map(|d| {
            (
                d.log_dir.to_string(),
                d.error_code,
                d.topics.iter().map(|t| t.partitions.len()).sum(),
            )
        })
        .collect();
    assert_eq!(
        by_dir,
        vec![
            (dirs[0].display().to_string(), 0, 1),
            (dirs[1].display().to_string(), KAFKA_STORAGE_ERROR, 0),
        ]
    );
    // A new partition goes to the directory still online.
    assert_eq!(create_topic(&mut c, "after", 1).await, 0);
    assert!(dirs[0].join("after-0").is_dir());
    drop(c);
    broker.shutdown().await.unwrap();
}
