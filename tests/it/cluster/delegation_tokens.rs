//! Delegation tokens on three brokers in this process sharing a real ZooKeeper: a token created
//! through one broker logs in on the others within seconds (they follow
//! `/delegation_token/token_changes`), a renewal through another is seen everywhere, and an
//! expiry through a third ends its logins on all of them.

use crate::common;

use std::time::Duration;

use common::cluster::{SESSION_TIMEOUT_MS, wait_until};
use common::delegation_tokens::*;
use common::scram::{SASL_LISTENER, sasl_port};
use common::wire::{Conn, start_broker};
use common::zookeeper::ZooKeeperServer;
use odradek::server::Broker;

/// How soon every broker must follow a change made through another.
const FOLLOW_WITHIN: Duration = Duration::from_secs(5);

async fn start(dir: &std::path::Path, id: i32, connect: &str) -> Broker {
    let mut overrides: Vec<String> = SASL_LISTENER.iter().map(|s| s.to_string()).collect();
    overrides.push(format!("broker.id={id}"));
    overrides.push(format!("zookeeper.connect={connect}"));
    overrides.push(format!("zookeeper.session.timeout.ms={SESSION_TIMEOUT_MS}"));
    overrides.push(format!("delegation.token.secret.key={SECRET}"));
    let overrides: Vec<&str> = overrides.iter().map(String::as_str).collect();
    start_broker(&dir.join(format!("broker-{id}")), &overrides).await
}

async fn token_logs_in(port: u16, id: &str, password: &str) -> bool {
    connect(port, id, password, true).await.is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_broker_follows_token_changes_made_through_another() {
    let Some(zk) = ZooKeeperServer::start() else {
        return;
    };
    let connect_string = format!("{}/tokens", zk.connect_string());
    let tmp = tempfile::tempdir().unwrap();
    let mut brokers = Vec::new();
    for id in 1..=3 {
        brokers.push(start(tmp.path(), id, &connect_string).await);
    }
    let brokers_ref = &brokers;
    wait_until(
        Duration::from_secs(30),
        "a controller is elected",
        || async move { brokers_ref.iter().any(|b| b.api().controller.is_active()) },
    )
    .await
    .unwrap();
    // alice's credentials go in through the controller; every broker learns them.
    let controller = brokers
        .iter()
        .find(|b| b.api().controller.is_active())
        .unwrap();
    let mut plain = Conn::connect(controller.port).await;
    add_users(&mut plain, &["alice"]).await;
    for b in &brokers {
        let port = sasl_port(b);
        wait_until(
            Duration::from_secs(10),
            "alice logs in on every broker",
            || async move { connect(port, "alice", "alice-secret", false).await.is_ok() },
        )
        .await
        .unwrap();
    }
    let ports: Vec<u16> = brokers.iter().map(sasl_port).collect();

    // Created through broker 1: the token logs in on 2 and 3 within seconds.
    let mut alice1 = user(ports[0], "alice").await;
    let created = create(&mut alice1, &[], -1).await;
    assert_eq!(created.error_code, 0);
    let id = created.token_id.to_string();
    let password = b64(&created.hmac);
    for &port in &ports[1..] {
        let (id, password) = (id.as_str(), password.as_str());
        wait_until(
            FOLLOW_WITHIN,
            "the token logs in on another broker",
            || async move { token_logs_in(port, id, password).await },
        )
        .await
        .unwrap();
    }

    // Renewed through broker 2: broker 3 describes the new expiry.
    let mut alice2 = user(ports[1], "alice").await;
    let (code, expiry) = renew(&mut alice2, &created.hmac, 60_000).await;
    assert_eq!(code, 0);
    assert_ne!(expiry, created.expiry_timestamp_ms);
    let port3 = ports[2];
    wait_until(FOLLOW_WITHIN, "broker 3 sees the renewal", || async move {
        let mut alice3 = user(port3, "alice").await;
        let described = describe(&mut alice3, None).await;
        described.tokens.len() == 1 && described.tokens[0].expiry_timestamp == expiry
    })
    .await
    .unwrap();

    // Expired through broker 3: no broker lets the token in any more.
    let mut alice3 = user(ports[2], "alice").await;
    assert_eq!(expire(&mut alice3, &created.hmac, -1).await.0, 0);
    for &port in &ports {
        let (id, password) = (id.as_str(), password.as_str());
        wait_until(
            FOLLOW_WITHIN,
            "the expired token is refused on every broker",
            || async move { !token_logs_in(port, id, password).await },
        )
        .await
        .unwrap();
    }
    drop((alice1, alice2, alice3, plain));
    for b in brokers {
        b.shutdown().await.unwrap();
    }
}
