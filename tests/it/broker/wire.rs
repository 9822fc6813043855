//! A broker started in-process, driven over the wire: the protocol paths and bad input.

use crate::common;
use crate::common::BoundedOutput;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::client_batch;
use common::wire::{
    Conn, create_topic, fetch, fetch_request, latest, produce, start_broker as start, topic_name,
};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

/// A size prefix and then `body`, as a well-framed (if otherwise bad) request.
fn framed(body: &[u8]) -> Vec<u8> {
    [&(body.len() as i32).to_be_bytes()[..], body].concat()
}

async fn still_serves(port: u16) {
    let mut c = Conn::connect(port).await;
    assert_eq!(
        c.send(
            3,
            ApiVersionsRequest::default()
                .with_client_software_name(StrBytes::from_static_str("t"))
                .with_client_software_version(StrBytes::from_static_str("1")),
        )
        .await
        .error_code,
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_input_closes_only_that_connection() {
    let tmp = tempfile::tempdir().unwrap();
    let broker = start(tmp.path(), &["socket.request.max.bytes=1048576"]).await;
    let port = broker.port;

    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("garbage bytes", b"\x00\x00\x00\x0bhello world".to_vec()),
        (
            "size over socket.request.max.bytes",
            2_000_000i32.to_be_bytes().to_vec(),
        ),
        ("negative size", (-5i32).to_be_bytes().to_vec()),
        (
            "unknown api key",
            framed(
                &[
                    &999i16.to_be_bytes()[..],
                    &0i16.to_be_bytes(),
                    &7i32.to_be_bytes(),
                    &[0xff, 0xff],
                ]
                .concat(),
            ),
        ),
        (
            "unsupported version of a known api",
            framed(
                &[
                    &3i16.to_be_bytes()[..],
                    &99i16.to_be_bytes(),
                    &7i32.to_be_bytes(),
                    &[0xff, 0xff],
                ]
                .concat(),
            ),
        ),
        ("a header cut short", framed(&[0, 3, 0])),
        (
            "a metadata body that is garbage",
            framed(
                &[
                    &3i16.to_be_bytes()[..],
                    &1i16.to_be_bytes(),
                    &7i32.to_be_bytes(),
                    &[0xff, 0xff],
                    &[0x7f, 0xff, 0xff, 0xff],
                ]
                .concat(),
            ),
        ),
    ];
    for (what, bytes) in cases {
        let mut c = Conn::connect(port).await;
        c.send_raw(&bytes).await;
        assert!(c.is_closed().await, "{what}: connection should be closed");
        still_serves(port).await;
    }
    // A truncated frame: the peer goes away mid-request.
    let mut c = Conn::connect(port).await;
    c.send_raw(&[0, 0, 0, 100, 0, 18, 0, 3]).await;
    c.stream.shutdown().await.ok();
    drop(c);
    still_serves(port).await;
    broker.shutdown().await.unwrap();
}

use tokio::io::AsyncWriteExt;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_versions_answers_unknown_versions_in_v0_as_kip_511_says() {
    let tmp = tempfile::tempdir().unwrap();
    let broker = start(tmp.path(), &[]).await;
    let mut c = Conn::connect(broker.port).await;
    // ApiVersions v9: header v2 (flexible) with an empty body.
    c.send_raw(&framed(
        &[
            &18i16.to_be_bytes()[..],
            &9i16.to_be_bytes(),
            &42i32.to_be_bytes(),
            &[0xff, 0xff, 0],
        ]
        .concat(),
    ))
    .await;
    let mut frame = c.read_frame().await.unwrap();
    let header = ResponseHeader::decode(&mut frame, 0).unwrap();
    assert_eq!(header.correlation_id, 42);
    let body = ApiVersionsResponse::decode(&mut frame, 0).unwrap();
    assert_eq!(body.error_code, 35);
    assert_eq!(body.api_keys.len(), 1);
    assert_eq!(
        (body.api_keys[0].api_key, body.api_keys[0].max_version),
        (
            18,
            odradek::api::supported_versions(ApiKey::ApiVersions)
                .unwrap()
                .1
        )
    );
    // And a supported version lists exactly the APIs we implement.
    {
        let r = c.send(0, ApiVersionsRequest::default()).await;
        let keys: Vec<i16> = r.api_keys.iter().map(|k| k.api_key).collect();
        let table: Vec<i16> = odradek::api::ROUTES.iter().map(|r| r.key as i16).collect();
        assert_eq!(keys, table, "exactly the APIs with handlers");
        // Produce, Fetch, the transaction APIs (AddPartitionsToTxn is 24) and the ACL APIs
        // (DescribeAcls is 29) among them.
        assert!(
            keys.contains(&0) && keys.contains(&1) && keys.contains(&24) && keys.contains(&29),
            "{keys:?}"
        );
    }
    broker.shutdown().await.unwrap();
}

use kafka_protocol::protocol::Decodable;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_batches_get_kafkas_errors_and_nothing_is_appended() {
    let tmp = tempfile::tempdir().unwrap();
    let broker = start(tmp.path(), &["message.max.bytes=2000"]).await;
    let mut c = Conn::connect(broker.port).await;
    assert_eq!(create_topic(&mut c, "checked", 1).await, 0);
    assert_eq!(
        produce(&mut c, "checked", 0, client_batch(0, 3, 10, 1, 0))
            .await
            .error_code,
        0
    );

    let mut bad_crc = client_batch(0, 3, 10, 1, 0).to_vec();
    let n = bad_crc.len();
    bad_crc[n - 1] ^= 1;
    assert_eq!(
        produce(&mut c, "checked", 0, Bytes::from(bad_crc))
            .await
            .error_code,
        2,
        "CORRUPT_MESSAGE"
    );
    assert_eq!(
        produce(&mut c, "checked", 0, client_batch(0, 50, 100, 1, 0))
            .await
            .error_code,
        10,
        "MESSAGE_TOO_LARGE"
    );
    assert_eq!(
        produce(&mut c, "no-such-topic", 0, client_batch(0, 1, 1, 1, 0))
            .await
            .error_code,
        3
    );
    assert_eq!(
        produce(&mut c, "checked", 7, client_batch(0, 1, 1, 1, 0))
            .await
            .error_code,
        3
    );
    assert_eq!(
        latest(&mut c, "checked", 0).await,
        3,
        "nothing of the bad requests was appended"
    );

    assert_eq!(
        create_topic(&mut c, "bad topic!", 1).await,
        17,
        "INVALID_TOPIC_EXCEPTION"
    );
    assert_eq!(
        create_topic(&mut c, "checked", 1).await,
        36,
        "TOPIC_ALREADY_EXISTS"
    );
    assert_eq!(
        create_topic(&mut c, "zero", 0).await,
        37,
        "INVALID_PARTITIONS"
    );
    let m = common::wire::metadata_request(Some(&["bad topic!"]), true);
    assert_eq!(c.send(9, m).await.topics[0].error_code, 17);
    broker.shutdown().await.unwrap();
}

async fn metadata_for(
    c: &mut Conn,
    topic: &str,
    allow: bool,
) -> metadata_response::MetadataResponseTopic {
    let m = common::wire::metadata_request(Some(&[topic]), allow);
    c.send(12, m).await.topics.remove(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_auto_creates_topics_only_when_allowed() {
    let tmp = tempfile::tempdir().unwrap();
    let broker = start(tmp.path(), &["num.partitions=3"]).await;
    let mut c = Conn::connect(broker.port).await;
    let t = metadata_for(&mut c, "auto-made", true).await;
    assert_eq!(t.error_code, 0);
    assert_eq!(t.partitions.len(), 3, "num.partitions");
    let t = metadata_for(&mut c, "not-made", false).await;
    assert_eq!(t.error_code, 3, "the client said no");
    broker.shutdown().await.unwrap();

    let tmp = tempfile::tempdir().unwrap();
    let broker = start(tmp.path(), &["auto.create.topics.enable=false"]).await;
    let mut c = Conn::connect(broker.port).await;
    assert_eq!(
        metadata_for(&mut c, "never", true).await.error_code,
        3,
        "the broker says no"
    );
    broker.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_poll_waits_for_max_wait_and_wakes_on_append() {
    let tmp = tempfile::tempdir().unwrap();
    let broker = start(tmp.path(), &[]).await;
    let mut c = Conn::connect(broker.port).await;
    assert_eq!(create_topic(&mut c, "poll", 1).await, 0);
    let started = Instant::now();
    let p = fetch(&mut c, "poll", 0, 0, 700).await;
    let waited = started.elapsed();
    assert_eq!(p.error_code, 0);
    assert!(p.records.as_ref().is_none_or(|r| r.is_empty()));
    assert!(
        waited >= Duration::from_millis(690),
        "returned after {waited:?}, before max_wait_ms"
    );
    assert!(
        waited < Duration::from_millis(3000),
        "returned after {waited:?}"
    );

    let port = broker.port;
    let waiter = tokio::spawn(async move {
        let mut c = Conn::connect(port).await;
        let p = fetch(&mut c, "poll", 0, 0, 10_000).await;
        (Instant::now(), p)
    });
    tokio::time::sleep(Duration::from_millis(300)).await; // let the fetch start waiting
    let produced_at = Instant::now();
    assert_eq!(
        produce(&mut c, "poll", 0, client_batch(0, 1, 5, 1, 0))
            .await
            .error_code,
        0
    );
    let (answered_at, p) = waiter.await.unwrap();
    assert!(!p.records.unwrap().is_empty());
    let delay = answered_at.saturating_duration_since(produced_at);
    assert!(
        delay < Duration::from_millis(200),
        "woken {delay:?} after the produce"
    );
    broker.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retried_idempotent_batches_are_not_duplicated_even_across_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let broker = start(tmp.path(), &[]).await;
    let mut c = Conn::connect(broker.port).await;
    assert_eq!(create_topic(&mut c, "idem", 1).await, 0);
    let pid = {
        let r = c
            .send(
                1,
                // A null transactional id: idempotence only (Kafka refuses an empty one).
                InitProducerIdRequest::default()
                    .with_transactional_id(None)
                    .with_transaction_timeout_ms(60000),
            )
            .await;
        assert_eq!(r.error_code, 0);
        r.producer_id.0
    };
    let batch = |seq: i32, n: usize| {
        let values = (0..n).map(|i| vec![i as u8]);
        common::values_batch(common::Producer::idempotent(pid, 0, seq), 1, values)
    };
    assert_eq!(produce(&mut c, "idem", 0, batch(0, 5)).await.base_offset, 0);
    assert_eq!(produce(&mut c, "idem", 0, batch(5, 5)).await.base_offset, 5);
    let retry = produce(&mut c, "idem", 0, batch(0, 5)).await;
    assert_eq!(
        (retry.error_code, retry.base_offset),
        (0, 0),
        "a retry is acknowledged with its original offset"
    );
    assert_eq!(
        produce(&mut c, "idem", 0, batch(20, 1)).await.error_code,
        45,
        "OUT_OF_ORDER_SEQUENCE_NUMBER"
    );
    assert_eq!(latest(&mut c, "idem", 0).await, 10);
    drop(c);
    broker.shutdown().await.unwrap();

    let broker = start(tmp.path(), &[]).await;
    let mut c = Conn::connect(broker.port).await;
    let retry = produce(&mut c, "idem", 0, batch(5, 5)).await;
    assert_eq!(
        (retry.error_code, retry.base_offset),
        (0, 5),
        "producer state survived the restart"
    );
    assert_eq!(latest(&mut c, "idem", 0).await, 10);
    assert_eq!(
        produce(&mut c, "idem", 0, batch(10, 1)).await.base_offset,
        10
    );
    // A second InitProducerId gets a fresh id from the same block.
    assert!(
        c.send(
            1,
            InitProducerIdRequest::default().with_transactional_id(None),
        )
        .await
        .producer_id
        .0 > pid
    );
    broker.shutdown().await.unwrap();
}

#[test]
fn a_bad_config_value_stops_start_up_with_a_message_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    let props = tmp.path().join("server.properties");
    std::fs::write(&props, "num.partitions=many\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_odradek"))
        .arg(&props)
        .bounded_output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("num.partitions") && err.contains("many"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_configs_create_partitions_and_describe_cluster() {
    let tmp = tempfile::tempdir().unwrap();
    let broker = start(tmp.path(), &["log.retention.hours=24"]).await;
    let mut c = Conn::connect(broker.port).await;
    let mut t = create_topics_request::CreatableTopic::default();
    t.name = topic_name("configured");
    t.num_partitions = 1;
    t.replication_factor = 1;
    let mut cfg = create_topics_request::CreatableTopicConfig::default();
    cfg.name = StrBytes::from_static_str("segment.bytes");
    cfg.value = Some(StrBytes::from_static_str("16384"));
    t.configs.push(cfg);
    let mut r = CreateTopicsRequest::default();
    r.topics.push(t);
    assert_eq!(c.send(5, r).await.topics[0].error_code, 0);
    let mut res = describe_configs_request::DescribeConfigsResource::default();
    res.resource_type = 2;
    res.resource_name = StrBytes::from_static_str("configured");
    let mut req = DescribeConfigsRequest::default();
    req.resources.push(res);
    req.include_synonyms = true;
    let configs = c.send(2, req).await.results.remove(0).configs;
    let get = |name: &str| {
        configs
            .iter()
            .find(|e| &*e.name == name)
            .unwrap_or_else(|| panic!("{name} missing"))
    };
    assert_eq!(
        (
            get("segment.bytes").value.as_deref(),
            get("segment.bytes").config_source
        ),
        (Some("16384"), 1),
        "topic override"
    );
    assert_eq!(
        (
            get("retention.ms").value.as_deref(),
            get("retention.ms").config_source
        ),
        (Some("86400000"), 5),
        "from server.properties' log.retention.hours; Kafka reports DEFAULT_CONFIG here because it \
         lists only synonyms from log.retention.ms on"
    );
    assert_eq!(
        (
            get("cleanup.policy").value.as_deref(),
            get("cleanup.policy").config_source
        ),
        (Some("delete"), 5),
        "Kafka's default"
    );
    assert!(configs.len() >= 20, "every topic config is listed");

    let mut cp = create_partitions_request::CreatePartitionsTopic::default();
    cp.name = topic_name("configured");
    cp.count = 3;
    // Null, as clients send it: Kafka places the new partitions.
    cp.assignments = None;
    let mut req = CreatePartitionsRequest::default();
    // As clients do: wait for the new partitions' leaders (0 answers before they exist).
    req.timeout_ms = 10_000;
    req.topics.push(cp.clone());
    assert_eq!(c.send(1, req).await.results[0].error_code, 0);
    assert_eq!(
        metadata_for(&mut c, "configured", false)
            .await
            .partitions
            .len(),
        3
    );
    cp.count = 2;
    let mut req = CreatePartitionsRequest::default();
    req.topics.push(cp);
    assert_eq!(
        c.send(1, req).await.results[0].error_code,
        37,
        "no shrinking"
    );
    assert_eq!(
        produce(&mut c, "configured", 2, client_batch(0, 1, 1, 1, 0))
            .await
            .error_code,
        0,
        "new partitions take writes"
    );

    {
        let resp = c.send(0, DescribeClusterRequest::default()).await;
        assert_eq!(resp.brokers.len(), 1);
        assert_eq!(resp.brokers[0].port, broker.port as i32);
        assert_eq!(resp.cluster_id.len(), 22);
    }
    drop(c);
    broker.shutdown().await.unwrap();

    // Topics, partitions and configs are kept across a restart.
    let broker = start(tmp.path(), &["log.retention.hours=24"]).await;
    let mut c = Conn::connect(broker.port).await;
    assert_eq!(
        metadata_for(&mut c, "configured", false)
            .await
            .partitions
            .len(),
        3
    );
    let mut res = describe_configs_request::DescribeConfigsResource::default();
    res.resource_type = 2;
    res.resource_name = StrBytes::from_static_str("configured");
    res.configuration_keys = Some(vec![StrBytes::from_static_str("segment.bytes")]);
    let mut req = DescribeConfigsRequest::default();
    req.resources.push(res);
    {
        let resp = c.send(1, req).await;
        let cfg = &resp.results[0].configs;
        assert_eq!(cfg.len(), 1, "only the key asked for");
        assert_eq!(
            (cfg[0].value.as_deref(), cfg[0].config_source),
            (Some("16384"), 1)
        );
    }
    assert_eq!(
        latest(&mut c, "configured", 2).await,
        1,
        "the record in the new partition is kept"
    );
    broker.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topic_configs_apply_to_logs_also_after_a_restart() {
    let tmp = tempfile::tempdir().unwrap();
    for round in 0..2 {
        let broker = start(tmp.path(), &[]).await;
        let mut c = Conn::connect(broker.port).await;
        if round == 0 {
            let mut t = create_topics_request::CreatableTopic::default();
            t.name = topic_name("small-segments");
            t.num_partitions = 1;
            t.replication_factor = 1;
            let mut cfg = create_topics_request::CreatableTopicConfig::default();
            cfg.name = StrBytes::from_static_str("segment.bytes");
            cfg.value = Some(StrBytes::from_static_str("1024"));
            t.configs.push(cfg);
            let mut r = CreateTopicsRequest::default();
            r.topics.push(t);
            c.call(ApiKey::CreateTopics, 5, RequestKind::CreateTopics(r))
                .await;
        }
        // Current timestamps: retention (7 days by default) must not take these segments.
        let now = odradek::log::segment::now_ms();
        for i in 0..10 {
            assert_eq!(
                produce(&mut c, "small-segments", 0, client_batch(i, 5, 40, now, 0))
                    .await
                    .error_code,
                0
            );
        }
        let segments = std::fs::read_dir(tmp.path().join("small-segments-0"))
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .path()
                    .extension()
                    .is_some_and(|x| x == "log")
            })
            .count();
        assert!(
            segments >= 5 * (round + 1),
            "round {round}: {segments} segments; segment.bytes=1024 must apply"
        );
        drop(c);
        broker.shutdown().await.unwrap();
    }
}

async fn list_offset(
    c: &mut Conn,
    version: i16,
    topic: &str,
    timestamp: i64,
    leader_epoch: i32,
) -> list_offsets_response::ListOffsetsPartitionResponse {
    let mut r = common::wire::list_offsets_request(topic, 0, timestamp);
    r.topics[0].partitions[0].current_leader_epoch = leader_epoch;
    c.send(version, r)
        .await
        .topics
        .remove(0)
        .partitions
        .remove(0)
}

/// What the newest versions a Kafka 3.9 client sends add: topic ids, leader-epoch fencing,
/// MAX_TIMESTAMP, DescribeCluster's endpoint type.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn newest_versions_topic_ids_epochs_and_max_timestamp() {
    let tmp = tempfile::tempdir().unwrap();
    let broker = start(tmp.path(), &[]).await;
    let mut c = Conn::connect(broker.port).await;
    assert_eq!(create_topic(&mut c, "ids", 1).await, 0);
    let now = odradek::log::segment::now_ms();
    for (i, ts) in [now - 5000, now, now - 9000].into_iter().enumerate() {
        assert_eq!(
            produce(&mut c, "ids", 0, client_batch(i * 2, 2, 5, ts, 0))
                .await
                .error_code,
            0
        );
    }
    let id = metadata_for(&mut c, "ids", false).await.topic_id;
    assert!(!id.is_nil(), "Metadata v10+ carries the topic id");

    // Fetch v13+ names the topic by id.
    let mut req = fetch_request("", 0, 0, 0);
    req.topics[0].topic = TopicName::default();
    req.topics[0].topic_id = id;
    {
        let resp = c.send(16, req.clone()).await;
        assert_eq!(resp.responses[0].topic_id, id);
        let p = &resp.responses[0].partitions[0];
        assert_eq!(p.error_code, 0);
        assert!(!p.records.as_ref().unwrap().is_empty());
    }
    req.topics[0].topic_id = uuid::Uuid::new_v4();
    assert_eq!(
        c.send(16, req.clone()).await.responses[0].partitions[0].error_code,
        100,
        "UNKNOWN_TOPIC_ID"
    );
    // Leader epoch fencing (KIP-320): our epoch is 0.
    req.topics[0].topic_id = id;
    req.topics[0].partitions[0].current_leader_epoch = 3;
    assert_eq!(
        c.send(16, req).await.responses[0].partitions[0].error_code,
        75,
        "UNKNOWN_LEADER_EPOCH"
    );
    // A broker that is not a replica of the partition cannot fetch as its follower (Kafka's
    // followerReplicaOrThrow): told to retry when it names an epoch, refused when it does not.
    for (epoch, version, code) in [(0, 16, 75), (-1, 8, 6)] {
        let mut req = fetch_request("ids", 0, 0, 0);
        if version >= 15 {
            req.replica_id = BrokerId(-1);
            req.replica_state.replica_id = BrokerId(7);
            req.topics[0].topic = TopicName::default();
            req.topics[0].topic_id = id;
        } else {
            req.replica_id = BrokerId(7);
        }
        req.topics[0].partitions[0].current_leader_epoch = epoch;
        let resp = c.send(version, req).await;
        let p = &resp.responses[0].partitions[0];
        assert_eq!(p.error_code, code, "Fetch v{version} as broker 7");
        assert!(p.records.as_ref().is_none_or(|r| r.is_empty()));
    }
    assert_eq!(list_offset(&mut c, 9, "ids", -1, 2).await.error_code, 75);
    assert_eq!(list_offset(&mut c, 9, "ids", -1, 0).await.offset, 6);
    let max = list_offset(&mut c, 9, "ids", -3, -1).await;
    assert_eq!(
        (max.offset, max.timestamp),
        (2, now),
        "MAX_TIMESTAMP: the record with the largest timestamp"
    );
    assert_eq!(list_offset(&mut c, 9, "ids", -4, -1).await.offset, 0);
    assert_eq!(
        list_offset(&mut c, 9, "ids", -5, -1).await.offset,
        -1,
        "nothing is in tiered storage"
    );

    let mut dc = DescribeClusterRequest::default();
    dc.endpoint_type = 2;
    assert_eq!(c.send(1, dc).await.error_code, 119);
    drop(c);
    broker.shutdown().await.unwrap();
    let broker = start(tmp.path(), &[]).await;
    let mut c = Conn::connect(broker.port).await;
    assert_eq!(
        metadata_for(&mut c, "ids", false).await.topic_id,
        id,
        "topic ids are stable across restarts"
    );
    broker.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_close_and_max_connections_is_enforced() {
    let tmp = tempfile::tempdir().unwrap();
    let broker = start(
        tmp.path(),
        &["connections.max.idle.ms=300", "max.connections=2"],
    )
    .await;
    let mut idle = Conn::connect(broker.port).await;
    let started = Instant::now();
    assert!(idle.is_closed().await, "an idle connection is closed");
    let after = started.elapsed();
    assert!(
        after >= Duration::from_millis(250) && after < Duration::from_secs(5),
        "closed after {after:?}"
    );

    let mut a = Conn::connect(broker.port).await;
    let mut b = Conn::connect(broker.port).await;
    still_serves_on(&mut a).await;
    still_serves_on(&mut b).await;
    let mut third = Conn::connect(broker.port).await;
    assert!(
        third.is_closed().await,
        "a third connection is refused at max.connections=2"
    );
    drop(a);
    // Once one goes, a new connection is served (poll: the close is noticed asynchronously).
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut c = Conn::connect(broker.port).await;
        c.send_raw(&framed(
            &[
                &18i16.to_be_bytes()[..],
                &0i16.to_be_bytes(),
                &1i32.to_be_bytes(),
                &[0xff, 0xff],
            ]
            .concat(),
        ))
        .await;
        if c.read_frame().await.is_some() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no connection accepted after one closed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(b);
    broker.shutdown().await.unwrap();
}

async fn still_serves_on(c: &mut Conn) {
    assert_eq!(c.send(0, ApiVersionsRequest::default()).await.error_code, 0);
}

async fn scrape(port: u16) -> String {
    common::wire::metrics_page(port)
        .await
        .expect("the metrics page")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_metrics_use_kafkas_names() {
    let tmp = tempfile::tempdir().unwrap();
    let broker = start(tmp.path(), &[]).await;
    let mut c = Conn::connect(broker.port).await;
    assert_eq!(create_topic(&mut c, "metered", 1).await, 0);
    let batch = client_batch(0, 3, 10, odradek::log::segment::now_ms(), 0);
    let size = batch.len();
    assert_eq!(produce(&mut c, "metered", 0, batch).await.error_code, 0);
    let fetched = fetch(&mut c, "metered", 0, 0, 0)
        .await
        .records
        .unwrap()
        .len();
    let text = scrape(broker.metrics_port).await;
    assert!(text.starts_with("HTTP/1.1 200 OK"), "{text}");
    for line in [
        "kafka_server_brokertopicmetrics_messagesin_total{topic=\"metered\"} 3".to_string(),
        format!("kafka_server_brokertopicmetrics_bytesin_total{{topic=\"metered\"}} {size}"),
        format!("kafka_server_brokertopicmetrics_bytesout_total{{topic=\"metered\"}} {fetched}"),
        "kafka_server_brokertopicmetrics_totalproducerequests_total{topic=\"metered\"} 1"
            .to_string(),
        format!("kafka_log_log_size{{topic=\"metered\",partition=\"0\"}} {size}"),
        "kafka_log_log_logendoffset{topic=\"metered\",partition=\"0\"} 3".to_string(),
        "kafka_controller_kafkacontroller_activecontrollercount 1".to_string(),
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in\n{text}"
        );
    }
    assert!(text.contains(
        "kafka_network_requestmetrics_requests_total{request=\"Produce\",version=\"8\"}"
    ));
    assert!(text.contains("kafka_network_requestmetrics_totaltimems_bucket{request=\"Fetch\""));
    assert!(text.contains("kafka_server_socketservermetrics_connection_count"));
    assert!(text.contains("process_resident_memory_bytes"));
    // Every family says what it is.
    for family in text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .map(|l| l.split(' ').next().unwrap().to_string())
    {
        assert!(
            text.contains(&format!("# HELP {family} ")),
            "{family} has no HELP"
        );
    }
    broker.shutdown().await.unwrap();
}

/// Control requests from a controller older than the one this broker follows are refused
/// with STALE_CONTROLLER_EPOCH, and change nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_from_a_stale_controller_are_refused() {
    const STALE_CONTROLLER_EPOCH: i16 = 11;
    let tmp = tempfile::tempdir().unwrap();
    let broker = start(tmp.path(), &[]).await;
    let mut c = Conn::connect(broker.port).await;
    create_topic(&mut c, "fenced", 1).await;
    // This broker's own controller was elected with epoch 1; a request from epoch 0 is stale.
    let mut ps = leader_and_isr_request::LeaderAndIsrPartitionState::default();
    ps.partition_index = 0;
    ps.leader = BrokerId(-1);
    ps.leader_epoch = 100;
    ps.replicas = vec![BrokerId(0)];
    let mut ts = leader_and_isr_request::LeaderAndIsrTopicState::default();
    ts.topic_name = topic_name("fenced");
    ts.partition_states.push(ps);
    let mut req = LeaderAndIsrRequest::default();
    req.controller_id = BrokerId(7);
    req.controller_epoch = 0;
    req.broker_epoch = -1;
    req.topic_states.push(ts);
    assert_eq!(c.send(4, req).await.error_code, STALE_CONTROLLER_EPOCH);
    let mut req = UpdateMetadataRequest::default();
    req.controller_id = BrokerId(7);
    req.controller_epoch = 0;
    req.broker_epoch = -1;
    assert_eq!(c.send(6, req).await.error_code, STALE_CONTROLLER_EPOCH);
    let mut sp = stop_replica_request::StopReplicaPartitionState::default();
    sp.partition_index = 0;
    sp.leader_epoch = -2;
    sp.delete_partition = true;
    let mut st = stop_replica_request::StopReplicaTopicState::default();
    st.topic_name = topic_name("fenced");
    st.partition_states.push(sp);
    let mut req = StopReplicaRequest::default();
    req.controller_id = BrokerId(7);
    req.controller_epoch = 0;
    req.broker_epoch = -1;
    req.topic_states.push(st);
    assert_eq!(c.send(3, req).await.error_code, STALE_CONTROLLER_EPOCH);
    // The partition is still led and served here.
    assert_eq!(latest(&mut c, "fenced", 0).await, 0);
    let mut all = MetadataRequest::default();
    all.topics = None;
    let md = c.send(12, all).await;
    let t = md
        .topics
        .iter()
        .find(|t| t.name.as_ref().is_some_and(|n| n.0.as_str() == "fenced"))
        .unwrap();
    assert_eq!(t.partitions[0].leader_id, BrokerId(0));
    assert_eq!(md.brokers.len(), 1);
}
