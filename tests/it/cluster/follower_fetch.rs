//! Fetching from the closest replica (KIP-392) on three brokers in racks a, b and c with
//! Kafka's `RackAwareReplicaSelector`: the leader sends a consumer in a follower's rack to that
//! follower (`preferred_read_replica`, no records); the follower serves it up to its high
//! watermark; older Fetch versions and ListOffsets still need the leader. Then confluent-kafka
//! and the Java consumer with `client.rack` read every record, the follower's bytes-out
//! metric showing it served them.

use crate::common;
use crate::common::BoundedOutput;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::broker_process::free_port;
use common::cluster::{Cluster, leaders, wait_until};
use common::wire::{Conn, create_assigned, fetch_request};
use kafka_protocol::ResponseError;
use kafka_protocol::messages::*;
use odradek::log::records::decode_batch;

const SELECTOR: &str =
    "replica.selector.class=org.apache.kafka.common.replica.RackAwareReplicaSelector";

async fn consumer_fetch(
    port: u16,
    version: i16,
    topic: &str,
    rack: &str,
    leader_epoch: i32,
) -> fetch_response::PartitionData {
    let mut r = fetch_request(topic, 0, 0, 0);
    r.rack_id = kafka_protocol::protocol::StrBytes::from_string(rack.to_string());
    r.topics[0].partitions[0].current_leader_epoch = leader_epoch;
    let mut c = Conn::connect(port).await;
    c.send(version, r)
        .await
        .responses
        .remove(0)
        .partitions
        .remove(0)
}

/// The records' values in a fetched blob.
fn values(records: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    let mut pos = 0;
    while let Some(size) = odradek::log::batch::entry_size(&records[pos..]) {
        let end = pos + size as usize;
        if end > records.len() {
            break;
        }
        let (_, recs) = decode_batch(&records[pos..end]).unwrap();
        out.extend(
            recs.iter()
                .map(|r| String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into()),
        );
        pos = end;
    }
    out
}

/// The sample of `name` with label `topic` in a /metrics page (0 when absent).
async fn metric(port: u16, name: &str, topic: &str) -> u64 {
    let page = common::wire::metrics_page(port)
        .await
        .expect("the metrics page");
    let prefix = format!("{name}{{topic=\"{topic}\"}} ");
    page.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_is_sent_to_and_served_by_the_replica_in_its_rack() {
    let metrics: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let each: Vec<Vec<String>> = ["a", "b", "c"]
        .iter()
        .zip(&metrics)
        .map(|(rack, port)| {
            vec![
                format!("broker.rack={rack}"),
                format!("metrics.port={port}"),
            ]
        })
        .collect();
    let brokers = (1..).zip(each);
    let Some(cluster) = Cluster::start_each(brokers, &[SELECTOR]) else {
        return;
    };
    cluster.wait_for_brokers(&[1, 2, 3]).await;
    let topic = "near";
    // Replicas 1, 3, 2: broker 1 (rack a) leads, and the consumer is in rack c, where broker 3
    // follows.
    let mut admin = Conn::connect(cluster.port(1)).await;
    let created = create_assigned(&mut admin, topic, -1, -1, &[(0, &[1, 3, 2])], false).await;
    assert_eq!(created.error_code, 0, "{:?}", created.error_message);
    for id in [1, 2, 3] {
        cluster.wait_led(id, topic, 1).await;
    }
    let leader_id = leaders(cluster.port(1), topic).await[&0].0;
    assert_eq!(leader_id, 1, "the first replica leads");
    let follower_id = 3;
    let racks = ["", "a", "b", "c"];
    let (rack, leader_rack) = (racks[follower_id as usize], racks[leader_id as usize]);
    let produced = common::cluster::produce_records(cluster.port(leader_id), topic, 0, 10).await;
    assert_eq!(produced, 0, "{}", cluster.logs());

    // The leader sends the consumer to the follower in its rack once that follower (in the
    // ISR) has fetched in this leader epoch.
    let (leader, follower) = (cluster.port(leader_id), cluster.port(follower_id));
    let follower_metrics = metrics[follower_id as usize - 1];
    wait_until(
        Duration::from_secs(30),
        "the leader prefers the follower",
        || async {
            let pd = consumer_fetch(leader, 12, topic, rack, 0).await;
            pd.preferred_read_replica == BrokerId(follower_id)
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
    let sent = consumer_fetch(leader, 12, topic, rack, 0).await;
    assert_eq!(sent.error_code, 0);
    assert!(
        sent.records.as_ref().is_none_or(|r| r.is_empty()),
        "no records with a preferred replica"
    );
    assert_eq!(sent.high_watermark, 10);
    // A consumer in the leader's rack, or without a rack, or before v11, reads from the leader.
    for (version, rack) in [(12, leader_rack), (12, ""), (10, rack)] {
        let pd = consumer_fetch(leader, version, topic, rack, 0).await;
        assert_eq!(
            pd.preferred_read_replica,
            BrokerId(-1),
            "v{version} rack {rack:?}"
        );
        assert_eq!(values(pd.records.as_deref().unwrap()).len(), 10);
    }

    // The follower serves the consumer every record once its high watermark has them.
    let before = metric(
        follower_metrics,
        "kafka_server_brokertopicmetrics_totalfetchrequests_total",
        topic,
    )
    .await;
    wait_until(
        Duration::from_secs(30),
        "the follower serves all ten records",
        || async {
            let pd = consumer_fetch(follower, 12, topic, rack, 0).await;
            pd.error_code == 0 && values(pd.records.as_deref().unwrap_or_default()).len() == 10
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
    let pd = consumer_fetch(follower, 12, topic, rack, 0).await;
    let expected: Vec<String> = (0..10).map(|i| format!("{i:010}")).collect();
    assert_eq!(values(pd.records.as_deref().unwrap()), expected);
    assert_eq!(pd.high_watermark, 10);
    assert_eq!(
        pd.preferred_read_replica,
        BrokerId(-1),
        "a follower names no other replica"
    );
    let after = metric(
        follower_metrics,
        "kafka_server_brokertopicmetrics_totalfetchrequests_total",
        topic,
    )
    .await;
    assert!(
        after > before,
        "the follower counts the consumer fetches it served ({before} -> {after})"
    );

    // The follower checks the consumer's leader epoch as a leader would.
    let ahead = consumer_fetch(follower, 12, topic, rack, 1).await;
    assert_eq!(ahead.error_code, ResponseError::UnknownLeaderEpoch.code());
    // Before v11 a consumer must fetch from the leader, and ListOffsets stays on the leader.
    let old = consumer_fetch(follower, 10, topic, rack, 0).await;
    assert_eq!(old.error_code, ResponseError::NotLeaderOrFollower.code());
    let mut c = Conn::connect(follower).await;
    let lo = common::wire::list_offset(&mut c, topic, 0, -1).await;
    assert_eq!(lo.error_code, ResponseError::NotLeaderOrFollower.code());

    // Real clients with client.rack: 200 records, read from the follower. The follower's
    // bytes out grow by at least what is stored; the leader only redirects (no records).
    for _ in 0..19 {
        let code = common::cluster::produce_records(leader, topic, 0, 10).await;
        assert_eq!(code, 0, "{}", cluster.logs());
    }
    let count = 200;
    wait_until(
        Duration::from_secs(30),
        "the follower's high watermark reaches 200",
        || async {
            consumer_fetch(follower, 12, topic, rack, 0)
                .await
                .high_watermark
                == count
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
    let stored = consumer_fetch(leader, 12, topic, "", 0)
        .await
        .records
        .map_or(0, |r| r.len()) as u64;
    let bytes_out = "kafka_server_brokertopicmetrics_bytesout_total";
    let leader_metrics = metrics[leader_id as usize - 1];
    let count = count.to_string();
    let mut ran = Vec::new();
    if let Some(python) = common::python_venv() {
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("compat-tests/python/rack_consumer.py");
        let mut cmd = Command::new(python);
        cmd.arg(&script)
            .args([&cluster.bootstrap(leader_id), topic, rack, &count]);
        ran.push(("confluent-kafka", cmd));
    } else {
        common::missing_tool("the Python client venv (scripts/python-deps.sh)");
    }
    let classes = tempfile::tempdir().unwrap();
    if let Some(cp) = common::compile_java("RackConsumer", classes.path()) {
        let mut cmd = Command::new("java");
        cmd.args([
            "-cp",
            &cp,
            "RackConsumer",
            &cluster.bootstrap(leader_id),
            topic,
            rack,
            &count,
        ]);
        ran.push(("java", cmd));
    } else {
        common::missing_tool("the Java client (scripts/java-deps.sh)");
    }
    for (client, mut cmd) in ran {
        let follower_before = metric(follower_metrics, bytes_out, topic).await;
        let leader_before = metric(leader_metrics, bytes_out, topic).await;
        let out = cmd.bounded_output().unwrap();
        assert!(
            out.status.success(),
            "{client}: {}\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            cluster.logs()
        );
        let follower_sent = metric(follower_metrics, bytes_out, topic).await - follower_before;
        let leader_sent = metric(leader_metrics, bytes_out, topic).await - leader_before;
        eprintln!(
            "{client}: {follower_sent} bytes from the follower, {leader_sent} from the leader"
        );
        assert!(
            follower_sent >= stored && leader_sent < stored,
            "{client}: the follower sent {follower_sent} bytes, the leader {leader_sent}, of {stored} stored"
        );
    }
}
