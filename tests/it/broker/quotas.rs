//! Client quotas against one broker over the wire, on both metadata stores:
//! AlterClientQuotas/DescribeClientQuotas (what lands in the znodes, byte for byte, and every
//! refusal), and produce, fetch and request quotas holding a client to its rate: the throttle in
//! `throttle_time_ms`, the connection muted for it, other clients untouched.

use crate::common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::scram::znode;
use common::wire::{
    Conn, STORES, create_topic, fetch_request, produce_request, s, start_broker_on,
};
use kafka_protocol::messages::*;
use odradek::metadata::MetadataStore;
use odradek::quota::{QuotaType, Who};

/// An entity as `(type, name)` pairs; a None name is the default entity.
type EntitySpec<'a> = &'a [(&'a str, Option<&'a str>)];

fn alter_entry(
    entity: EntitySpec<'_>,
    ops: &[(&str, Option<f64>)],
) -> alter_client_quotas_request::EntryData {
    let mut e = alter_client_quotas_request::EntryData::default();
    for (t, n) in entity {
        let mut d = alter_client_quotas_request::EntityData::default();
        d.entity_type = s(t);
        d.entity_name = n.map(s);
        e.entity.push(d);
    }
    for (key, value) in ops {
        let mut op = alter_client_quotas_request::OpData::default();
        op.key = s(key);
        op.value = value.unwrap_or(0.0);
        op.remove = value.is_none();
        e.ops.push(op);
    }
    e
}

/// Alters one entity; its error code and message.
async fn alter(
    c: &mut Conn,
    entity: EntitySpec<'_>,
    ops: &[(&str, Option<f64>)],
    validate_only: bool,
) -> (i16, Option<String>) {
    let mut r = AlterClientQuotasRequest::default();
    r.entries.push(alter_entry(entity, ops));
    r.validate_only = validate_only;
    let mut response = c.send(1, r).await;
    assert_eq!(response.entries.len(), 1);
    let e = response.entries.remove(0);
    (e.error_code, e.error_message.map(|m| m.to_string()))
}

async fn alter_ok(c: &mut Conn, entity: EntitySpec<'_>, ops: &[(&str, Option<f64>)]) {
    let (code, message) = alter(c, entity, ops, false).await;
    assert_eq!(code, 0, "{entity:?} {ops:?}: {message:?}");
}

/// A described entry: its entity as `(type, name)` and its values, sorted.
type Described = (Vec<(String, Option<String>)>, Vec<(String, f64)>);

async fn describe(
    c: &mut Conn,
    components: &[(&str, i8, Option<&str>)],
    strict: bool,
) -> Result<Vec<Described>, (i16, Option<String>)> {
    let mut r = DescribeClientQuotasRequest::default();
    for (t, match_type, m) in components {
        let mut d = describe_client_quotas_request::ComponentData::default();
        d.entity_type = s(t);
        d.match_type = *match_type;
        d._match = m.map(s);
        r.components.push(d);
    }
    r.strict = strict;
    let response = c.send(1, r).await;
    if response.error_code != 0 {
        return Err((
            response.error_code,
            response.error_message.map(|m| m.to_string()),
        ));
    }
    let mut out: Vec<Described> = response
        .entries
        .unwrap_or_default()
        .into_iter()
        .map(|e| {
            let mut entity: Vec<(String, Option<String>)> = e
                .entity
                .into_iter()
                .map(|d| {
                    (
                        d.entity_type.to_string(),
                        d.entity_name.map(|n| n.to_string()),
                    )
                })
                .collect();
            entity.sort();
            let mut values: Vec<(String, f64)> = e
                .values
                .into_iter()
                .map(|v| (v.key.to_string(), v.value))
                .collect();
            values.sort_by(|a, b| a.0.cmp(&b.0));
            (entity, values)
        })
        .collect();
    out.sort_by(|a, b| format!("{:?}", a.0).cmp(&format!("{:?}", b.0)));
    Ok(out)
}

async fn notifications(store: &Arc<dyn MetadataStore>) -> Vec<String> {
    let mut children = store
        .children("/config/changes")
        .await
        .unwrap()
        .unwrap_or_default();
    children.sort();
    let mut out = Vec::new();
    for child in children {
        out.push(
            znode(store, &format!("/config/changes/{child}"))
                .await
                .unwrap_or_default(),
        );
    }
    out
}

fn entity(pairs: &[(&str, Option<&str>)]) -> Vec<(String, Option<String>)> {
    let mut v: Vec<(String, Option<String>)> = pairs
        .iter()
        .map(|(t, n)| (t.to_string(), n.map(str::to_string)))
        .collect();
    v.sort();
    v
}

const INVALID_REQUEST: i16 = 42;
const UNSUPPORTED_VERSION: i16 = 35;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quotas_are_stored_described_and_refused_as_kafka_does() {
    for store_kind in STORES {
        let tmp = tempfile::tempdir().unwrap();
        let Some((broker, _zk)) = start_broker_on(store_kind, tmp.path(), &[]).await else {
            continue;
        };
        let store = broker.api().configs.store().clone();
        let mut c = Conn::connect(broker.port).await;

        alter_ok(
            &mut c,
            &[("client-id", Some("my app"))],
            &[
                ("producer_byte_rate", Some(1048576.0)),
                ("request_percentage", Some(200.0)),
            ],
        )
        .await;
        alter_ok(
            &mut c,
            &[("user", Some("alice@x")), ("client-id", None)],
            &[("consumer_byte_rate", Some(2048.0))],
        )
        .await;
        alter_ok(
            &mut c,
            &[("user", None)],
            &[("producer_byte_rate", Some(10.0))],
        )
        .await;
        // Byte for byte what kafka-configs.sh writes, and the notifications it writes.
        assert_eq!(
            znode(&store, "/config/clients/my%20app").await.as_deref(),
            Some(
                r#"{"version":1,"config":{"producer_byte_rate":"1048576","request_percentage":"200.0"}}"#
            ),
            "{store_kind:?}"
        );
        assert_eq!(
            znode(&store, "/config/users/alice%40x/clients/<default>")
                .await
                .as_deref(),
            Some(r#"{"version":1,"config":{"consumer_byte_rate":"2048"}}"#)
        );
        assert_eq!(
            znode(&store, "/config/users/<default>").await.as_deref(),
            Some(r#"{"version":1,"config":{"producer_byte_rate":"10"}}"#)
        );
        assert_eq!(
            notifications(&store).await,
            vec![
                r#"{"version":2,"entity_path":"clients/my%20app"}"#,
                r#"{"version":2,"entity_path":"users/alice%40x/clients/<default>"}"#,
                r#"{"version":2,"entity_path":"users/<default>"}"#,
            ]
        );
        // Applied on this broker at once.
        let quotas = broker.api().configs.quotas().clone();
        let who = Who {
            user: "bob",
            client_id: "my app",
        };
        assert_eq!(
            quotas.bound(QuotaType::Produce, who),
            Some(10.0),
            "users/<default> outranks clients/my app"
        );
        assert_eq!(quotas.bound(QuotaType::Request, who), Some(200.0));

        let app = || entity(&[("client-id", Some("my app"))]);
        let alice_default = || entity(&[("user", Some("alice@x")), ("client-id", None)]);
        let default_user = || entity(&[("user", None)]);
        // Every entity; names desanitized, defaults as null.
        assert_eq!(
            describe(&mut c, &[], false).await.unwrap(),
            vec![
                (alice_default(), vec![("consumer_byte_rate".into(), 2048.0)]),
                (
                    app(),
                    vec![
                        ("producer_byte_rate".into(), 1048576.0),
                        ("request_percentage".into(), 200.0)
                    ]
                ),
                (default_user(), vec![("producer_byte_rate".into(), 10.0)]),
            ]
        );
        // Exact name; default entity; strict leaves out entities with other types.
        assert_eq!(
            describe(&mut c, &[("client-id", 0, Some("my app"))], true)
                .await
                .unwrap(),
            vec![(
                app(),
                vec![
                    ("producer_byte_rate".into(), 1048576.0),
                    ("request_percentage".into(), 200.0)
                ]
            )]
        );
        assert_eq!(
            describe(&mut c, &[("user", 1, None)], true).await.unwrap(),
            vec![(default_user(), vec![("producer_byte_rate".into(), 10.0)])]
        );
        assert_eq!(
            describe(&mut c, &[("user", 2, None)], false).await.unwrap(),
            vec![
                (alice_default(), vec![("consumer_byte_rate".into(), 2048.0)]),
                (default_user(), vec![("producer_byte_rate".into(), 10.0)]),
            ]
        );
        assert_eq!(
            describe(
                &mut c,
                &[("user", 0, Some("alice@x")), ("client-id", 1, None)],
                true
            )
            .await
            .unwrap(),
            vec![(alice_default(), vec![("consumer_byte_rate".into(), 2048.0)])]
        );

        // Refusals: Kafka's code, and nothing written.
        let before = notifications(&store).await.len();
        for (entity, ops, why) in [
            (
                &[("client-id", Some("x"))][..],
                &[("producer_bytes_rate", Some(1.0))][..],
                "unknown key",
            ),
            (
                &[("client-id", Some("x"))][..],
                &[("producer_byte_rate", Some(-1.0))][..],
                "negative",
            ),
            (
                &[("client-id", Some("x"))][..],
                &[("consumer_byte_rate", Some(1.5))][..],
                "not a long",
            ),
            (
                &[("client-id", Some("x"))][..],
                &[
                    ("producer_byte_rate", Some(100.0)),
                    ("request_percentage", Some(-5.0)),
                ][..],
                "one bad op of several",
            ),
            (
                &[("client-id", Some(""))][..],
                &[("producer_byte_rate", Some(1.0))][..],
                "empty name",
            ),
            (
                &[("group", Some("g"))][..],
                &[("producer_byte_rate", Some(1.0))][..],
                "unknown type",
            ),
            (
                &[][..],
                &[("producer_byte_rate", Some(1.0))][..],
                "empty entity",
            ),
            (
                &[("ip", Some("127.0.0.1")), ("user", Some("u"))][..],
                &[("connection_creation_rate", Some(1.0))][..],
                "ip with user",
            ),
        ] {
            let (code, message) = alter(&mut c, entity, ops, false).await;
            assert_eq!(code, INVALID_REQUEST, "{why}: {message:?}");
        }
        assert_eq!(
            alter(
                &mut c,
                &[("client-id", Some("x"))],
                &[("producer_bytes_rate", Some(1.0))],
                false
            )
            .await
            .1
            .as_deref(),
            Some("Invalid configuration key producer_bytes_rate")
        );
        // validate_only checks and writes nothing.
        assert_eq!(
            alter(
                &mut c,
                &[("client-id", Some("v"))],
                &[("producer_byte_rate", Some(5.0))],
                true
            )
            .await
            .0,
            0
        );
        assert_eq!(notifications(&store).await.len(), before, "nothing written");
        assert_eq!(znode(&store, "/config/clients/x").await, None);
        assert_eq!(znode(&store, "/config/clients/v").await, None);
        for (components, code) in [
            (&[("user", 2, None), ("user", 1, None)][..], INVALID_REQUEST),
            (&[("ip", 2, None), ("user", 2, None)][..], INVALID_REQUEST),
            (&[("", 2, None)][..], INVALID_REQUEST),
            (&[("group", 2, None)][..], UNSUPPORTED_VERSION),
        ] {
            assert_eq!(
                describe(&mut c, components, false).await.unwrap_err().0,
                code,
                "{components:?}"
            );
        }

        // Removing the last key deletes the node (and the emptied parents of a user/client-id
        // entity), and lifts the quota.
        alter_ok(
            &mut c,
            &[("user", Some("alice@x")), ("client-id", None)],
            &[("consumer_byte_rate", None)],
        )
        .await;
        assert_eq!(store.get("/config/users/alice%40x").await.unwrap(), None);
        alter_ok(
            &mut c,
            &[("client-id", Some("my app"))],
            &[("producer_byte_rate", None), ("request_percentage", None)],
        )
        .await;
        assert_eq!(store.get("/config/clients/my%20app").await.unwrap(), None);
        assert_eq!(quotas.bound(QuotaType::Request, who), None);
        broker.shutdown().await.unwrap();
    }
}

/// `n` records of `size` bytes each in one batch.
fn batch(n: usize, size: usize) -> Bytes {
    common::values_batch(common::Producer::PLAIN, 1, (0..n).map(|_| vec![7u8; size]))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_producer_over_its_quota_is_throttled_and_muted_others_are_not() {
    for store_kind in STORES {
        let tmp = tempfile::tempdir().unwrap();
        let Some((broker, _zk)) = start_broker_on(store_kind, tmp.path(), &[]).await else {
            continue;
        };
        let mut admin = Conn::connect(broker.port).await;
        assert_eq!(create_topic(&mut admin, "q", 1).await, 0);
        // 20 kB/s for client "slow"; 11 one-second samples, so the first burst is measured
        // over 10 s: 300 kB earn (30 kB/s - 20 kB/s) / 20 kB/s * 10 s = 5 s of throttle.
        alter_ok(
            &mut admin,
            &[("client-id", Some("slow"))],
            &[("producer_byte_rate", Some(20_000.0))],
        )
        .await;

        let mut slow = Conn::connect(broker.port).await;
        slow.client_id = "slow";
        let records = batch(150, 2000);
        let first: ProduceResponse = slow
            .send(8, produce_request("q", 0, records.clone(), 1))
            .await;
        assert_eq!(
            first.responses[0].partition_responses[0].error_code, 0,
            "the data is appended anyway"
        );
        let throttle = first.throttle_time_ms;
        assert!(
            (4_500..=6_500).contains(&throttle),
            "{store_kind:?}: ~300 kB against 20 kB/s over a 10 s window: {throttle} ms"
        );
        // The connection is muted for the throttle: a request sent now is answered only after it.
        let sent = Instant::now();
        let mut r = MetadataRequest::default();
        r.topics = Some(vec![]);
        let _: MetadataResponse = slow.send(9, r).await;
        let waited = sent.elapsed();
        assert!(
            waited >= Duration::from_millis(throttle as u64 - 200),
            "answered after {waited:?}, throttle {throttle} ms"
        );

        // Another client id is not throttled.
        let mut fast = Conn::connect(broker.port).await;
        fast.client_id = "fast";
        for _ in 0..5 {
            let r: ProduceResponse = fast
                .send(8, produce_request("q", 0, records.clone(), 1))
                .await;
            assert_eq!(r.throttle_time_ms, 0);
        }
        // Produce v0 has no throttle field, but the connection is still muted.
        let mut old = Conn::connect(broker.port).await;
        old.client_id = "slow";
        let _: ProduceResponse = old
            .send(0, produce_request("q", 0, batch(10, 2000), 1))
            .await;
        let sent = Instant::now();
        let _: ProduceResponse = old.send(0, produce_request("q", 0, batch(1, 1), 1)).await;
        assert!(
            sent.elapsed() >= Duration::from_secs(3),
            "{:?}",
            sent.elapsed()
        );

        // The metrics name the sensor by client id.
        let metrics = odradek::metrics::global().render();
        assert!(
            metrics
                .lines()
                .any(|l| l
                    .starts_with("kafka_server_produce_byte_rate{user=\"\",client_id=\"slow\"}")),
            "{metrics}"
        );
        assert!(
            metrics.contains("kafka_server_produce_throttle_time{user=\"\",client_id=\"slow\"}")
        );

        // Deleting the quota lifts the throttle at once.
        alter_ok(
            &mut admin,
            &[("client-id", Some("slow"))],
            &[("producer_byte_rate", None)],
        )
        .await;
        let mut again = Conn::connect(broker.port).await;
        again.client_id = "slow";
        let r: ProduceResponse = again.send(8, produce_request("q", 0, records, 1)).await;
        assert_eq!(r.throttle_time_ms, 0);
        broker.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_over_its_quota_gets_capped_then_empty_fetches() {
    let tmp = tempfile::tempdir().unwrap();
    let Some((broker, _zk)) = start_broker_on(STORES[0], tmp.path(), &[]).await else {
        return;
    };
    let mut admin = Conn::connect(broker.port).await;
    assert_eq!(create_topic(&mut admin, "f", 1).await, 0);
    for _ in 0..20 {
        let r: ProduceResponse = admin
            .send(8, produce_request("f", 0, batch(10, 1000), 1))
            .await;
        assert_eq!(r.responses[0].partition_responses[0].error_code, 0);
    }
    // 2 kB/s: one fetch may take at most 2 kB * 10 windows = 20 kB.
    alter_ok(
        &mut admin,
        &[("client-id", Some("reader"))],
        &[("consumer_byte_rate", Some(2000.0))],
    )
    .await;
    let mut c = Conn::connect(broker.port).await;
    c.client_id = "reader";
    let first: FetchResponse = c.send(11, fetch_request("f", 0, 0, 100)).await;
    let got = first.responses[0].partitions[0]
        .records
        .as_ref()
        .map_or(0, |r| r.len());
    assert!(
        got > 0 && got <= 20_000,
        "capped to the quota window: {got} bytes"
    );
    // Keep fetching: soon over the quota, answered empty (no error) with the throttle.
    let mut offset = 0;
    let deadline = Instant::now() + Duration::from_secs(20);
    let throttled = loop {
        assert!(Instant::now() < deadline, "never throttled");
        let r: FetchResponse = c.send(11, fetch_request("f", 0, offset, 100)).await;
        if r.throttle_time_ms > 0 {
            break r;
        }
        let p = &r.responses[0].partitions[0];
        offset = p
            .high_watermark
            .min(offset + 1 + (p.records.as_ref().map_or(0, |r| r.len()) / 1100) as i64 * 10);
    };
    assert_eq!(throttled.error_code, 0);
    assert!(
        throttled.responses.is_empty(),
        "a throttled fetch is answered empty"
    );
    assert!(throttled.throttle_time_ms <= 11_000);
    broker.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_looping_on_metadata_is_held_to_its_request_percentage() {
    let tmp = tempfile::tempdir().unwrap();
    let Some((broker, _zk)) = start_broker_on(STORES[0], tmp.path(), &[]).await else {
        return;
    };
    let mut admin = Conn::connect(broker.port).await;
    // 0.01 % of a thread: 100 µs of handling per second.
    alter_ok(
        &mut admin,
        &[("user", None), ("client-id", Some("busy"))],
        &[("request_percentage", Some(0.01))],
    )
    .await;
    let mut c = Conn::connect(broker.port).await;
    c.client_id = "busy";
    let deadline = Instant::now() + Duration::from_secs(20);
    let throttle = loop {
        assert!(Instant::now() < deadline, "never throttled");
        let mut r = MetadataRequest::default();
        r.topics = None;
        let response: MetadataResponse = c.send(9, r).await;
        if response.throttle_time_ms > 0 {
            break response.throttle_time_ms;
        }
    };
    assert!(
        throttle <= 1000,
        "the request throttle is at most one window: {throttle}"
    );
    // Others are not throttled.
    let mut r = MetadataRequest::default();
    r.topics = None;
    let response: MetadataResponse = admin.send(9, r).await;
    assert_eq!(response.throttle_time_ms, 0);
    let metrics = odradek::metrics::global().render();
    assert!(
        metrics
            .contains("kafka_server_request_request_time{user=\"ANONYMOUS\",client_id=\"busy\"}"),
        "{metrics}"
    );
    broker.shutdown().await.unwrap();
}

/// CreateTopics v6 of one topic with `partitions` partitions: its error code, and the
/// response's throttle.
async fn create_with(c: &mut Conn, name: &str, partitions: i32) -> (i16, i32) {
    let mut t = create_topics_request::CreatableTopic::default();
    t.name = common::wire::topic_name(name);
    t.num_partitions = partitions;
    t.replication_factor = 1;
    let mut r = CreateTopicsRequest::default();
    r.topics.push(t);
    r.timeout_ms = 5000;
    let response: CreateTopicsResponse = c.send(6, r).await;
    (response.topics[0].error_code, response.throttle_time_ms)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controller_mutations_are_held_to_their_rate() {
    let tmp = tempfile::tempdir().unwrap();
    let Some((broker, _zk)) = start_broker_on(STORES[0], tmp.path(), &[]).await else {
        return;
    };
    let mut admin = Conn::connect(broker.port).await;
    // 1 partition a second: a bucket of 11.
    alter_ok(
        &mut admin,
        &[("client-id", Some("creator"))],
        &[("controller_mutation_rate", Some(1.0))],
    )
    .await;
    let mut c = Conn::connect(broker.port).await;
    c.client_id = "creator";
    assert_eq!(create_with(&mut c, "m1", 8).await, (0, 0));
    // Strict (v6+): the topic that empties the bucket is created, unthrottled ...
    assert_eq!(create_with(&mut c, "m2", 8).await, (0, 0));
    // ... the next is refused with THROTTLING_QUOTA_EXCEEDED and the time to wait (5 tokens
    // missing at 1/s).
    let (code, throttle) = create_with(&mut c, "m3", 1).await;
    assert_eq!(code, 89, "THROTTLING_QUOTA_EXCEEDED");
    assert!((4_000..=5_000).contains(&throttle), "{throttle}");
    // Other clients create freely.
    assert_eq!(create_with(&mut admin, "m4", 20).await, (0, 0));
    broker.shutdown().await.unwrap();
}
