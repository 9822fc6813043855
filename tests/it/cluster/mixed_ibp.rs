//! Issue 21's mixed clusters: brokers at different `inter.broker.protocol.version`s replicate
//! and fail over together, each speaking to the others in the versions Kafka's IBP picks, read
//! back from the receiving brokers' per-API-version request counters
//! (`kafka_network_requestmetrics_requests_total{request,version}`). Broker 1 runs at IBP 2.4
//! and advertises no more than Kafka 2.4 did (`odradek.test.advertise.ibp.versions`), standing
//! in for a Kafka 2.4.1 broker: Fetch up to v11, so its followers truncate with
//! OffsetsForLeaderEpoch. Where `KAFKA_HOME` holds a runnable Kafka (`common::kafka`), broker 1
//! is that Kafka instead.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use common::broker_process::free_port;
use common::cluster::{Cluster, create_replicated_topic, leaders, metadata, wait_until};
use common::wire::{Conn, produce_request};
use odradek::metadata::MetadataStore;
use odradek::metadata::znodes::{self, PartitionStateZnode};

const TOPIC: &str = "mixed";
const PARTITIONS: i32 = 3;

/// Each broker's IBP and the versions its controller sends (LeaderAndIsr, UpdateMetadata)
/// and its follower fetches with (Fetch) by Kafka 3.9's tables.
const IBPS: [(i32, &str); 3] = [(1, "2.4"), (2, "2.8"), (3, "3.9")];

fn lai_version(controller: i32) -> i16 {
    match controller {
        1 => 4,
        2 => 5,
        _ => 7,
    }
}

fn um_version(controller: i32) -> i16 {
    match controller {
        1 => 6,
        2 => 7,
        _ => 8,
    }
}

/// What `receiver` is sent when its peer would send `version`: broker 1 answers no more than
/// Kafka 2.4 (LeaderAndIsr v4, UpdateMetadata v6, Fetch v11, OffsetsForLeaderEpoch v3).
fn capped(receiver: i32, api: &str, version: i16) -> i16 {
    if receiver != 1 {
        return version;
    }
    let cap = match api {
        "StopReplica" => 2,
        "LeaderAndIsr" => 4,
        "UpdateMetadata" => 6,
        "Fetch" => 11,
        "OffsetForLeaderEpoch" => 3,
        _ => i16::MAX,
    };
    version.min(cap)
}

/// `version -> count` of requests of `api` broker metrics at `port` counted.
pub(super) async fn versions(port: u16, api: &str) -> BTreeMap<i16, u64> {
    let mut out = BTreeMap::new();
    let Some(text) = common::wire::metrics_page(port).await else {
        return out;
    };
    let prefix =
        format!("kafka_network_requestmetrics_requests_total{{request=\"{api}\",version=\"");
    for line in text.lines() {
        let Some(rest) = line.strip_prefix(&prefix) else {
            continue;
        };
        let Some((version, count)) = rest.split_once("\"} ") else {
            continue;
        };
        if let (Ok(v), Ok(c)) = (version.parse::<i16>(), count.trim().parse::<f64>()) {
            out.insert(v, c as u64);
        }
    }
    out
}

/// The versions whose count grew from `before` to `after`.
pub(super) fn grown(before: &BTreeMap<i16, u64>, after: &BTreeMap<i16, u64>) -> BTreeSet<i16> {
    after
        .iter()
        .filter(|(v, c)| before.get(v).copied().unwrap_or(0) < **c)
        .map(|(v, _)| *v)
        .collect()
}

async fn controller(cluster: &Cluster, via: i32) -> i32 {
    metadata(cluster.port(via), Some(&[])).await.controller_id.0
}

async fn wait_controller(cluster: &Cluster, via: i32, not: Option<i32>) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let c = controller(cluster, via).await;
        if c >= 0 && Some(c) != not {
            return c;
        }
        assert!(
            Instant::now() < deadline,
            "no controller other than {not:?}\n{}",
            cluster.logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn states(store: &dyn MetadataStore) -> Vec<Option<PartitionStateZnode>> {
    let mut out = Vec::new();
    for p in 0..PARTITIONS {
        let path = znodes::partition_state_path(TOPIC, p);
        let state = match store.get(&path).await {
            Ok(Some((Some(data), _))) => serde_json::from_slice(&data).ok(),
            _ => None,
        };
        out.push(state);
    }
    out
}

/// Until every partition's ISR holds all three brokers.
async fn wait_full_isr(cluster: &Cluster, store: &dyn MetadataStore, what: &str) {
    wait_until(Duration::from_secs(90), what, || async move {
        states(store)
            .await
            .iter()
            .all(|s| s.as_ref().is_some_and(|s| s.isr.len() == 3))
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
}

/// Ten numbered records (acks=all) to every partition, through whichever broker leads it as
/// `via` sees it; the numbers acknowledged are added to `acked`. A produce refused before the
/// append (no leader yet, NOT_ENOUGH_REPLICAS while a follower rejoins) is retried.
async fn produce_round(cluster: &Cluster, via: i32, next: &mut usize, acked: &mut Vec<usize>) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    for p in 0..PARTITIONS {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let leader = leaders(cluster.port(via), TOPIC)
                .await
                .get(&p)
                .map_or(-1, |(l, _)| *l);
            let code = match cluster.brokers.get(&leader) {
                Some(b) if leader >= 0 => {
                    let batch = common::client_batch(*next, 10, 10, now, 0);
                    let mut c = Conn::connect(b.port).await;
                    c.send(9, produce_request(TOPIC, p, batch, -1))
                        .await
                        .responses[0]
                        .partition_responses[0]
                        .error_code
                }
                _ => -1,
            };
            if code == 0 {
                acked.extend(*next..*next + 10);
                *next += 10;
                break;
            }
            // Unknown leader (-1), UNKNOWN_TOPIC_OR_PARTITION, NOT_LEADER_OR_FOLLOWER,
            // NOT_ENOUGH_REPLICAS: nothing was appended.
            assert!(
                [-1, 3, 6, 19].contains(&code) && Instant::now() < deadline,
                "{TOPIC}-{p} at broker {leader}: error {code}\n{}",
                cluster.logs()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Acceptance 1 and 2 of issue 21: IBP 2.4 (as Kafka 2.4), 2.8 and 3.9 in one cluster. The
/// controller at 2.4 sends LeaderAndIsr v4 and UpdateMetadata v6; the follower at 2.4 fetches
/// with v11, and the others fetch from it with v11 too (its maximum) while using v12 between
/// themselves. Killing the controller (also a leader) hands control to a newer broker whose
/// versions follow its own IBP; the 2.4 broker rejoins through OffsetsForLeaderEpoch v3.
/// Killing that controller too loses no acknowledged record. The leaders at 2.8 and 3.9 take
/// the 2.4 broker back into their ISRs through AlterPartition; deleting a topic sends StopReplica
/// in the last controller's version, and a clean stop ControlledShutdown v3.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn brokers_at_ibp_2_4_2_8_3_9_use_kafkas_versions_and_lose_nothing() {
    let metrics: BTreeMap<i32, u16> = IBPS.iter().map(|(id, _)| (*id, free_port())).collect();
    let overrides: Vec<(i32, Vec<String>)> = IBPS
        .iter()
        .map(|(id, ibp)| {
            let mut o = vec![
                format!("metrics.port={}", metrics[id]),
                format!("inter.broker.protocol.version={ibp}"),
            ];
            if *id == 1 {
                o.push("odradek.test.advertise.ibp.versions=true".to_string());
            }
            (*id, o)
        })
        .collect();
    let Some(mut cluster) = Cluster::prepare(overrides, &[]) else {
        return;
    };
    // A real Kafka, where one is installed, is broker 1; its own versions are then not read
    // from metrics (it has no such page), only what it sends the others.
    let kafka = common::kafka::for_test("cluster::mixed_ibp");
    if let Some(home) = &kafka {
        cluster.kafka.insert(1, home.clone());
    }
    let odradek_1 = kafka.is_none();
    // Broker 1 first, so that the IBP 2.4 broker is the first controller.
    cluster.start_broker(1);
    assert_eq!(wait_controller(&cluster, 1, None).await, 1);
    cluster.start_broker(2);
    cluster.start_broker(3);
    cluster.wait_for_brokers(&[1, 2, 3]).await;
    let store = cluster.store().await;

    // Broker 1 advertises what Kafka 2.4.1 did for the inter-broker APIs.
    let advertised = {
        let mut c = Conn::connect(cluster.port(1)).await;
        let r: kafka_protocol::messages::ApiVersionsResponse = c
            .send(3, kafka_protocol::messages::ApiVersionsRequest::default())
            .await;
        r.api_keys
            .iter()
            .map(|k| (k.api_key, k.max_version))
            .collect::<BTreeMap<i16, i16>>()
    };
    use kafka_protocol::messages::ApiKey;
    for (key, max) in [
        (ApiKey::Fetch, 11),
        (ApiKey::OffsetForLeaderEpoch, 3),
        (ApiKey::LeaderAndIsr, 4),
        (ApiKey::UpdateMetadata, 6),
        (ApiKey::StopReplica, 2),
        (ApiKey::ListOffsets, 5),
    ] {
        if odradek_1 {
            assert_eq!(advertised.get(&(key as i16)), Some(&max), "{key:?}");
        }
    }
    // Kafka 2.4 had no AlterPartition (AlterIsr came with 2.7).
    assert!(!advertised.contains_key(&(ApiKey::AlterPartition as i16)) || !odradek_1);

    create_replicated_topic(
        &cluster.bootstrap(1),
        TOPIC,
        PARTITIONS,
        3,
        &["min.insync.replicas=2"],
    );
    for id in [1, 2, 3] {
        cluster.wait_led(id, TOPIC, PARTITIONS as usize).await;
    }
    // Below IBP 2.8 the controller writes topics without ids, as Kafka's does.
    let (data, _) = store
        .get(&znodes::topic_path(TOPIC))
        .await
        .unwrap()
        .unwrap();
    let topic: znodes::TopicZnode = serde_json::from_slice(&data.unwrap()).unwrap();
    assert_eq!(topic.topic_id, None);

    let mut next = 0;
    let mut acked = Vec::new();
    for _ in 0..3 {
        produce_round(&cluster, 2, &mut next, &mut acked).await;
    }
    wait_full_isr(&cluster, &store, "every replica in the ISR").await;

    // What each broker was sent by controller 1 and by its followers.
    let empty = BTreeMap::new();
    let mut before: BTreeMap<(i32, &str), BTreeMap<i16, u64>> = BTreeMap::new();
    for id in [1, 2, 3] {
        for api in [
            "LeaderAndIsr",
            "UpdateMetadata",
            "Fetch",
            "OffsetForLeaderEpoch",
        ] {
            before.insert((id, api), versions(metrics[&id], api).await);
        }
    }
    for id in [2, 3] {
        assert_eq!(
            grown(&empty, &before[&(id, "LeaderAndIsr")]),
            BTreeSet::from([lai_version(1)]),
            "LeaderAndIsr from the IBP 2.4 controller to broker {id}"
        );
        assert_eq!(
            grown(&empty, &before[&(id, "UpdateMetadata")]),
            BTreeSet::from([um_version(1)]),
            "UpdateMetadata from the IBP 2.4 controller to broker {id}"
        );
    }
    let led: BTreeSet<i32> = leaders(cluster.port(1), TOPIC)
        .await
        .values()
        .map(|(l, _)| *l)
        .collect();
    for id in led.into_iter().filter(|id| *id != 1 || odradek_1) {
        // Broker 1 fetches with v11 (IBP 2.4); brokers 2 and 3 with v12 (topic names), but
        // only v11 from broker 1, which answers no more.
        let want: BTreeSet<i16> = [(1, 11), (2, 12), (3, 12)]
            .into_iter()
            .filter(|(follower, _)| *follower != id)
            .map(|(_, v)| capped(id, "Fetch", v))
            .collect();
        assert_eq!(
            grown(&empty, &before[&(id, "Fetch")]),
            want,
            "Fetch versions leader {id} was sent"
        );
    }

    // Kill -9 the controller, which also leads a partition.
    assert!(
        leaders(cluster.port(2), TOPIC)
            .await
            .values()
            .any(|(l, _)| *l == 1)
    );
    cluster.brokers.get_mut(&1).unwrap().stop(true);
    let second = wait_controller(&cluster, 2, Some(1)).await;
    let survivor = if second == 2 { 3 } else { 2 };
    wait_until(Duration::from_secs(40), "new leaders", || {
        let port = cluster.port(survivor);
        async move {
            let l = leaders(port, TOPIC).await;
            l.len() == PARTITIONS as usize && l.values().all(|(l, _)| *l == 2 || *l == 3)
        }
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
    produce_round(&cluster, survivor, &mut next, &mut acked).await;
    // Broker 1 (IBP 2.4) returns with epochs in its logs: it truncates by
    // OffsetsForLeaderEpoch before fetching, as Kafka 2.4's followers do.
    let alter_before = versions(metrics[&second], "AlterPartition").await;
    cluster.brokers.get_mut(&1).unwrap().restart(false);
    wait_full_isr(&cluster, &store, "broker 1 rejoins every ISR").await;
    // Its leaders at IBP 2.8 and 3.9 took broker 1 back into their ISRs through the
    // controller (AlterPartition), not by writing the state znode themselves.
    assert!(
        !grown(
            &alter_before,
            &versions(metrics[&second], "AlterPartition").await
        )
        .is_empty(),
        "AlterPartition to controller {second}\n{}",
        cluster.logs()
    );
    produce_round(&cluster, survivor, &mut next, &mut acked).await;
    let lai = grown(
        &before[&(survivor, "LeaderAndIsr")],
        &versions(metrics[&survivor], "LeaderAndIsr").await,
    );
    assert_eq!(
        lai,
        BTreeSet::from([lai_version(second)]),
        "LeaderAndIsr from controller {second} to broker {survivor}"
    );
    if odradek_1 {
        assert_eq!(
            grown(&empty, &versions(metrics[&1], "LeaderAndIsr").await),
            BTreeSet::from([capped(1, "LeaderAndIsr", lai_version(second))]),
            "LeaderAndIsr from controller {second} to broker 1 (Kafka 2.4's at most)"
        );
    }
    let mut ofle = BTreeSet::new();
    for id in [2, 3] {
        ofle.extend(grown(
            &before[&(id, "OffsetForLeaderEpoch")],
            &versions(metrics[&id], "OffsetForLeaderEpoch").await,
        ));
    }
    assert_eq!(
        ofle,
        BTreeSet::from([3]),
        "OffsetsForLeaderEpoch versions the IBP 2.4 follower sent"
    );

    // A controller at IBP 2.8 or later gave the topic an id, which LeaderAndIsr v5+ carries:
    // now the follower at 3.9 fetches by topic id (v17), the one at 2.8 still with v12, the
    // one at 2.4 with v11 (Kafka's `fetchRequestVersion`).
    let (data, _) = store
        .get(&znodes::topic_path(TOPIC))
        .await
        .unwrap()
        .unwrap();
    let topic: znodes::TopicZnode = serde_json::from_slice(&data.unwrap()).unwrap();
    assert!(
        topic.topic_id.is_some(),
        "controller {second} gives topics ids"
    );
    let mut settled = BTreeMap::new();
    for id in [2, 3] {
        settled.insert(id, versions(metrics[&id], "Fetch").await);
    }
    let fetch_version = |follower: i32| match follower {
        1 => 11,
        2 => 12,
        _ => 17,
    };
    let led: BTreeSet<i32> = leaders(cluster.port(survivor), TOPIC)
        .await
        .values()
        .map(|(l, _)| *l)
        .collect();
    for id in led.into_iter().filter(|id| *id != 1 || odradek_1) {
        let want: BTreeSet<i16> = [1, 2, 3]
            .into_iter()
            .filter(|f| *f != id)
            .map(fetch_version)
            .collect();
        let (port, settled) = (metrics[&id], &settled[&id]);
        let want_ref = &want;
        let seen = wait_until(
            Duration::from_secs(20),
            &format!("leader {id} is sent Fetch {want:?}"),
            || async move { grown(settled, &versions(port, "Fetch").await) == *want_ref },
        )
        .await;
        if let Err(e) = seen {
            panic!(
                "{e}: grown {:?}\n{}",
                grown(settled, &versions(port, "Fetch").await),
                cluster.logs()
            );
        }
    }

    // Kill -9 the second controller too; broker 1 or the survivor takes over.
    cluster.brokers.get_mut(&second).unwrap().stop(true);
    let third = wait_controller(&cluster, survivor, Some(second)).await;
    wait_until(
        Duration::from_secs(40),
        "leaders without the second controller",
        || {
            let port = cluster.port(survivor);
            async move {
                let l = leaders(port, TOPIC).await;
                l.len() == PARTITIONS as usize && l.values().all(|(l, _)| *l >= 0 && *l != second)
            }
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
    produce_round(&cluster, survivor, &mut next, &mut acked).await;
    cluster.brokers.get_mut(&second).unwrap().restart(false);
    wait_full_isr(&cluster, &store, "the second controller rejoins every ISR").await;
    assert_eq!(
        grown(&empty, &versions(metrics[&second], "LeaderAndIsr").await),
        BTreeSet::from([capped(second, "LeaderAndIsr", lai_version(third))]),
        "LeaderAndIsr from controller {third} to restarted broker {second}"
    );

    // Every acknowledged record is there, once.
    let consumed = common::cluster::consume_all(&cluster.bootstrap(survivor), TOPIC);
    let seen: BTreeSet<usize> = consumed.iter().filter_map(|l| l.parse().ok()).collect();
    let missing: Vec<usize> = acked
        .iter()
        .copied()
        .filter(|n| !seen.contains(n))
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged records missing: {:?}\n{}",
        missing.len(),
        acked.len(),
        &missing[..missing.len().min(20)],
        cluster.logs()
    );

    // Deleting a topic: controller `third` sends the other replicas StopReplica in its IBP's version
    // (v2 at 2.4, v3 at 2.8, v4 at 3.9), no more than broker 1 answers.
    let sr_version = |controller: i32| match controller {
        1 => 2,
        2 => 3,
        _ => 4,
    };
    let mut sr_before = BTreeMap::new();
    for id in [1, 2, 3] {
        sr_before.insert(id, versions(metrics[&id], "StopReplica").await);
    }
    create_replicated_topic(&cluster.bootstrap(survivor), "mixed-deleted", 1, 3, &[]);
    cluster.wait_led(survivor, "mixed-deleted", 1).await;
    common::cluster::run_tool(&[
        "topics",
        "--bootstrap-server",
        &cluster.bootstrap(survivor),
        "--delete",
        "--topic",
        "mixed-deleted",
    ]);
    // The controller's requests to itself do not go over the network, so are not counted.
    let others = [1, 2, 3].into_iter().filter(|id| *id != third);
    for id in others.filter(|id| *id != 1 || odradek_1) {
        let want = BTreeSet::from([capped(id, "StopReplica", sr_version(third))]);
        let (port, before, want_ref) = (metrics[&id], &sr_before[&id], &want);
        let seen = wait_until(
            Duration::from_secs(30),
            &format!("broker {id} is sent StopReplica {want:?}"),
            || async move { grown(before, &versions(port, "StopReplica").await) == *want_ref },
        )
        .await;
        if let Err(e) = seen {
            panic!(
                "{e}: grown {:?}\n{}",
                grown(before, &versions(port, "StopReplica").await),
                cluster.logs()
            );
        }
    }

    // A clean stop: the broker asks controller `third` with ControlledShutdown v3, which
    // Kafka 2.4 to 3.9 all send (IBP 2.4-IV1 and later).
    if third != 1 || odradek_1 {
        let leaving = [1, 2, 3].into_iter().find(|id| *id != third).unwrap_or(1);
        let cs_before = versions(metrics[&third], "ControlledShutdown").await;
        cluster.brokers.get_mut(&leaving).unwrap().stop(false);
        assert_eq!(
            grown(
                &cs_before,
                &versions(metrics[&third], "ControlledShutdown").await
            ),
            BTreeSet::from([3]),
            "ControlledShutdown from broker {leaving} to controller {third}\n{}",
            cluster.logs()
        );
    }
}
