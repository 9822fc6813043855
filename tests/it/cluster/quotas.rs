//! Client quotas in a three-broker cluster on a real ZooKeeper: a quota written into ZooKeeper
//! exactly as `kafka-configs.sh --zookeeper --alter --add-config producer_byte_rate=...
//! --entity-type clients` writes it, or set through AlterClientQuotas on one broker, throttles
//! that client on every broker within 5 s; deleting it lifts the throttle everywhere.

use crate::common;

use std::time::Duration;

use bytes::Bytes;
use common::cluster::{Cluster, wait_until};
use common::wire::{Conn, produce_request};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use odradek::metadata::MetadataStore;

const IDS: [i32; 3] = [1, 2, 3];
const WITHIN: Duration = Duration::from_secs(5);

/// The throttle a 50 kB Produce from `client_id` earns on broker `port` (a fresh connection, so
/// an earlier mute does not delay it). The topic does not exist: Kafka counts the request's
/// bytes against the quota whatever its partitions' outcome.
async fn produce_throttle(port: u16, client_id: &'static str) -> i32 {
    let mut c = Conn::connect(port).await;
    c.client_id = client_id;
    let records = Bytes::from(vec![0u8; 50_000]);
    let r: ProduceResponse = c
        .send(8, produce_request("no-such-topic", 0, records, 1))
        .await;
    r.throttle_time_ms
}

async fn throttled_everywhere(cluster: &Cluster, client_id: &'static str, want: bool) {
    for id in IDS {
        let port = cluster.port(id);
        wait_until(
            WITHIN,
            &format!("broker {id} throttles {client_id}: {want}"),
            || async move { (produce_throttle(port, client_id).await > 0) == want },
        )
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quotas_written_to_zookeeper_or_by_one_broker_hold_on_every_broker() {
    let Some(cluster) = Cluster::start(&IDS) else {
        return;
    };
    cluster.wait_for_brokers(&IDS).await;
    let zk = cluster.store().await;
    for id in IDS {
        assert_eq!(produce_throttle(cluster.port(id), "app").await, 0);
    }

    // What kafka-configs.sh --zookeeper writes: the entity node, then the notification.
    let rate = br#"{"version":1,"config":{"producer_byte_rate":"1000"}}"#;
    common::write_entity_config(&zk, "clients/app", Some(rate)).await;
    throttled_everywhere(&cluster, "app", true).await;
    // Another client id is not held by it.
    assert_eq!(produce_throttle(cluster.port(2), "other").await, 0);

    // kafka-configs.sh --delete-config: the emptied node goes, the notification follows.
    common::write_entity_config(&zk, "clients/app", None).await;
    throttled_everywhere(&cluster, "app", false).await;

    // AlterClientQuotas on one broker reaches the others the same way.
    let alter = |value: Option<f64>| {
        let mut entity = alter_client_quotas_request::EntityData::default();
        entity.entity_type = StrBytes::from_static_str("client-id");
        entity.entity_name = Some(StrBytes::from_static_str("app2"));
        let mut op = alter_client_quotas_request::OpData::default();
        op.key = StrBytes::from_static_str("producer_byte_rate");
        op.value = value.unwrap_or(0.0);
        op.remove = value.is_none();
        let mut entry = alter_client_quotas_request::EntryData::default();
        entry.entity.push(entity);
        entry.ops.push(op);
        let mut r = AlterClientQuotasRequest::default();
        r.entries.push(entry);
        r
    };
    let mut admin = Conn::connect(cluster.port(1)).await;
    let r = admin.send(1, alter(Some(1000.0))).await;
    assert_eq!(r.entries[0].error_code, 0);
    let (data, _) = zk.get("/config/clients/app2").await.unwrap().unwrap();
    assert_eq!(
        data.unwrap(),
        br#"{"version":1,"config":{"producer_byte_rate":"1000"}}"#
    );
    throttled_everywhere(&cluster, "app2", true).await;
    let r = admin.send(1, alter(None)).await;
    assert_eq!(r.entries[0].error_code, 0);
    assert_eq!(zk.get("/config/clients/app2").await.unwrap(), None);
    throttled_everywhere(&cluster, "app2", false).await;
}

/// A tiny default fetch quota for every client id (what `kafka-configs.sh --entity-type
/// clients --entity-default` writes) holds consumers, never followers: acks=all produce into
/// three replicas still completes, which it could not if the followers' fetches were throttled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replication_is_never_held_by_client_quotas() {
    let Some(cluster) = Cluster::start(&IDS) else {
        return;
    };
    cluster.wait_for_brokers(&IDS).await;
    let zk = cluster.store().await;
    let rate = br#"{"version":1,"config":{"consumer_byte_rate":"1"}}"#;
    common::write_entity_config(&zk, "clients/<default>", Some(rate)).await;
    // Every broker has it: a consumer would be held to 1 B/s.
    common::cluster::create_replicated_topic(&cluster.bootstrap(1), "replicated", 3, 3, &[]);
    for id in IDS {
        cluster.wait_led(id, "replicated", 3).await;
    }
    let acked = common::cluster::produce_each_partition(&cluster, 1, "replicated").await;
    assert_eq!(acked, 30);
    // Again, now that the followers have fetched far more than a consumer could.
    let acked = common::cluster::produce_each_partition(&cluster, 2, "replicated").await;
    assert_eq!(acked, 30);
}
