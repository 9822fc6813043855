//! acks=all produces waiting for replication when the controller bumps the partition's leader
//! epoch while the leader stays the leader (Kafka's DelayedProduce answers them only when
//! leadership moves): the record is acknowledged once, not failed and written again.

use crate::common;

use std::time::{Duration, Instant};

use common::cluster::{Cluster, create_replicated_topic, leaders, produce_records};
use common::wire::{Conn, produce_request};
use odradek::metadata::MetadataStore;

const TOPIC: &str = "bumped";

/// The records of partition 0 up to the leader's log end: their count.
async fn log_end(port: u16) -> i64 {
    let mut c = Conn::connect(port).await;
    common::wire::latest(&mut c, TOPIC, 0).await
}

/// Acceptance 6 of issue 19: a produce without idempotence (acks=all, retried as a client
/// retries a retriable error) waits while a follower is frozen; the frozen follower is the
/// controller when it is not the leader, and is killed with SIGKILL: the new controller takes it
/// out of the ISR with a new leader epoch, the leader stays. The produce is acknowledged and
/// the record is in the log once. (Before the fix the wait ended NOT_LEADER_OR_FOLLOWER at the
/// epoch bump, the retry appended the record again.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_produce_survives_an_epoch_bump_that_keeps_the_leader() {
    let Some(mut cluster) = Cluster::start_with(
        &[1, 2, 3],
        &[
            "zookeeper.session.timeout.ms=6000",
            // Only the controller changes the ISR here, not the leader's own lag check.
            "replica.lag.time.max.ms=120000",
            "auto.leader.rebalance.enable=false",
        ],
    ) else {
        return;
    };
    cluster.wait_for_brokers(&[1, 2, 3]).await;
    create_replicated_topic(&cluster.bootstrap(1), TOPIC, 1, 3, &[]);
    cluster.wait_led(1, TOPIC, 1).await;
    let leader = leaders(cluster.port(1), TOPIC).await[&0].0;
    // Every replica has fetched once an acks=all produce is acknowledged.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let code = produce_records(cluster.port(leader), TOPIC, 0, 1).await;
        if code == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "first produce: {code}\n{}",
            cluster.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let store = cluster.store().await;
    let (data, _) = store.get("/controller").await.unwrap().unwrap();
    let controller: serde_json::Value = serde_json::from_slice(&data.unwrap()).unwrap();
    let controller = controller["brokerid"].as_i64().unwrap() as i32;
    let victim = if controller != leader {
        controller
    } else {
        *[1, 2, 3].iter().find(|&&id| id != leader).unwrap()
    };
    let before = log_end(cluster.port(leader)).await;

    let paused = cluster.brokers[&victim].pause();
    let port = cluster.port(leader);
    let now = odradek::log::segment::now_ms();
    let send = || produce_request(TOPIC, 0, common::client_batch(0, 1, 10, now, 0), -1);
    let mut c = Conn::connect(port).await;
    let mut request = send();
    request.timeout_ms = 60_000;
    let first = c.send_request(
        kafka_protocol::messages::ApiKey::Produce,
        9,
        kafka_protocol::messages::RequestKind::Produce(request),
    );
    let id = first.await;
    assert!(
        !c.answers_within(Duration::from_millis(500)).await,
        "the produce waits for the frozen follower"
    );
    cluster.brokers.get_mut(&victim).unwrap().stop(true);
    drop(paused);
    let response = tokio::time::timeout(
        Duration::from_secs(60),
        c.read_response(kafka_protocol::messages::ApiKey::Produce, 9, id),
    )
    .await
    .expect("the produce is answered within its timeout");
    let kafka_protocol::messages::ResponseKind::Produce(response) = response else {
        panic!("{response:?}");
    };
    let mut code = response.responses[0].partition_responses[0].error_code;
    let mut attempts = 1;
    // A producer without idempotence retries a retriable error: the record again.
    while [6, 7].contains(&code) && attempts < 5 {
        let mut c = Conn::connect(port).await;
        let mut request = send();
        request.timeout_ms = 30_000;
        code = c.send(9, request).await.responses[0].partition_responses[0].error_code;
        attempts += 1;
    }
    assert_eq!(code, 0, "{}", cluster.logs());
    assert_eq!(
        leaders(cluster.port(leader), TOPIC).await[&0].0,
        leader,
        "the leader stayed"
    );
    assert_eq!(
        log_end(port).await - before,
        1,
        "the record is in the log once ({attempts} attempt(s))\n{}",
        cluster.logs()
    );
}
