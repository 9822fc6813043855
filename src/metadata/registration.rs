//! A broker's membership of the cluster: the cluster id, a generated broker id, and the
//! ephemeral `/brokers/ids/<id>` registration that makes it live for the controller, renewed
//! whenever the metadata session is replaced.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::broadcast::error::RecvError;
use tokio::sync::watch;

use super::store::{
    CreateMode, StoreError, StoreResult, WatchEvent, create_recursive, ensure_path,
};
use super::znodes::{self, BrokerZnode, ClusterId};
use super::{MetadataCache, MetadataStore};
use crate::config::BrokerConfig;
use crate::security::SecurityProtocol;

/// The paths every Kafka broker creates at start-up (`ZkData.PersistentZkPaths`), so that
/// watches and tools find them.
pub async fn create_top_level_paths(store: &dyn MetadataStore) -> StoreResult<()> {
    for p in znodes::PERSISTENT_PATHS {
        ensure_path(store, p).await?;
    }
    Ok(())
}

/// `/cluster/id`, created by the first broker of a cluster (Kafka's `createOrGetClusterId`).
pub async fn cluster_id(store: &dyn MetadataStore) -> StoreResult<String> {
    if let Some((Some(data), _)) = store.get(znodes::CLUSTER_ID).await? {
        return Ok(znodes::decode::<ClusterId>(znodes::CLUSTER_ID, &data)?.id);
    }
    let (_, id) = znodes::random_uuid_base64();
    let z = ClusterId {
        version: "1".into(),
        id: id.clone(),
    };
    match create_recursive(
        store,
        znodes::CLUSTER_ID,
        Some(znodes::encode(&z)),
        CreateMode::Persistent,
    )
    .await
    {
        Ok(_) => Ok(id),
        // Another broker made it first: its id wins.
        Err(StoreError::NodeExists(_)) => Box::pin(cluster_id(store)).await,
        Err(e) => Err(e),
    }
}

/// `broker.id=-1`: a new id from `/brokers/seqid`'s version above `reserved.broker.max.id`
/// (1000), as Kafka's `generateBrokerSequenceId` does.
pub async fn generate_broker_id(store: &dyn MetadataStore) -> StoreResult<i32> {
    ensure_path(store, "/brokers/seqid").await?;
    let stat = store.set("/brokers/seqid", None, None).await?;
    Ok(1000 + stat.version)
}

fn registration(config: &BrokerConfig) -> BrokerZnode {
    let endpoints: Vec<String> = config
        .advertised_listeners
        .iter()
        .map(|l| {
            let host = if l.host.contains(':') {
                format!("[{}]", l.host)
            } else {
                l.host.clone()
            };
            format!("{}://{host}:{}", l.name, l.port)
        })
        .collect();
    // The top-level host and port are for readers from before listeners: the first PLAINTEXT
    // endpoint, else none (Kafka's BrokerIdZNode).
    let first = config
        .advertised_listeners
        .iter()
        .find(|l| l.protocol == SecurityProtocol::Plaintext);
    // The version a Kafka broker at this IBP writes (Kafka's `BrokerIdZNode.encode`): the rack
    // from version 3, the listeners' security protocols from 4, the supported features from 5.
    let version = config
        .inter_broker_protocol_version
        .broker_registration_version();
    BrokerZnode {
        version,
        host: first.map(|l| l.host.clone()),
        port: first.map_or(-1, |l| l.port as i32),
        jmx_port: -1,
        timestamp: crate::log::segment::now_ms().to_string(),
        endpoints,
        rack: config.broker_rack.clone().filter(|_| version >= 3),
        listener_security_protocol_map: if version >= 4 {
            config
                .advertised_listeners
                .iter()
                .map(|l| (l.name.clone(), l.protocol.name().to_string()))
                .collect()
        } else {
            BTreeMap::new()
        },
        features: (version >= 5).then(supported_features),
    }
}

/// The features a Kafka 3.9 broker registers as supported (`BrokerFeatures.defaultSupportedFeatures`:
/// `metadata.version` from 3.0-IV1's level 1 to 3.9-IV0's 21, and `kraft.version` up to 1;
/// `transaction.version`'s production maximum is 0, so it is left out). A Kafka 3.x controller at
/// IBP 2.7+ finalizes its own supported features in `/feature` and ignores the registration of
/// a broker that does not support every finalized level.
fn supported_features() -> BTreeMap<String, serde_json::Value> {
    let range = |min: i16, max: i16| serde_json::json!({ "min_version": min, "max_version": max });
    BTreeMap::from([
        ("metadata.version".to_string(), range(1, 21)),
        ("kraft.version".to_string(), range(0, 1)),
    ])
}

/// Creates this broker's ephemeral registration and returns the broker epoch (its czxid).
///
/// A registration left by this broker's previous process lives until that session times out
/// (after a kill -9, say): like a restarted Kafka broker facing its own stale znode, we wait for
/// it to go, up to `wait`. A registration owned by a live broker with the same id is an error.
pub async fn register(
    store: &dyn MetadataStore,
    config: &BrokerConfig,
    wait: Duration,
) -> Result<i64, StoreError> {
    let path = znodes::broker_path(config.broker_id);
    let data = znodes::encode(&registration(config));
    let deadline = Instant::now() + wait;
    loop {
        match store
            .create(&path, Some(data.clone()), CreateMode::Ephemeral)
            .await
        {
            Ok(_) | Err(StoreError::NodeExists(_)) => {}
            Err(e) => return Err(e),
        }
        match store.get(&path).await? {
            Some((_, stat)) if stat.ephemeral_owner == store.session_id() => {
                tracing::info!(
                    broker_id = config.broker_id,
                    broker_epoch = stat.czxid,
                    "registered broker"
                );
                return Ok(stat.czxid);
            }
            Some(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Some(_) => {
                return Err(StoreError::NodeExists(format!(
                    "{path}: another broker is registered with broker.id={}",
                    config.broker_id
                )));
            }
            // Gone between create and get: its owner's session just ended; try again.
            None => {}
        }
    }
}

/// Re-registers the broker each time the metadata session is replaced (ephemeral nodes die
/// with the old session), so the controller sees it live again. Runs until shutdown.
pub async fn keep_registered(
    store: Arc<dyn MetadataStore>,
    config: Arc<BrokerConfig>,
    cache: Arc<MetadataCache>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut events = store.subscribe();
    loop {
        let expired = tokio::select! {
            _ = shutdown.changed() => return,
            e = events.recv() => matches!(e, Ok(WatchEvent::SessionExpired) | Err(RecvError::Lagged(_))),
        };
        if !expired {
            continue;
        }
        let mut backoff = Duration::from_millis(100);
        loop {
            if *shutdown.borrow() {
                return;
            }
            let wait = Duration::from_millis(config.zookeeper_session_timeout_ms);
            match register(store.as_ref(), &config, wait).await {
                Ok(epoch) => {
                    cache.set_broker_epoch(epoch);
                    break;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot re-register broker; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    }
}

/// Clean shutdown: the registration goes at once rather than when the session times out.
pub async fn deregister(store: &dyn MetadataStore, broker_id: i32) {
    let path = znodes::broker_path(broker_id);
    if let Ok(Some((_, stat))) = store.get(&path).await
        && stat.ephemeral_owner == store.session_id()
        && let Err(e) = store.delete(&path, None).await
    {
        tracing::warn!(path, error = %e, "could not remove broker registration");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registration_at(ibp: &str, rack: Option<&str>) -> serde_json::Value {
        let config = BrokerConfig {
            broker_id: 1,
            broker_rack: rack.map(String::from),
            inter_broker_protocol_version: ibp.parse().unwrap(),
            ..BrokerConfig::default()
        };
        serde_json::from_slice(&znodes::encode(&registration(&config))).unwrap()
    }

    /// Kafka's `BrokerIdZNode.encode`: `"rack"` only when `broker.rack` is set.
    #[test]
    fn rack_is_registered_only_when_configured() {
        assert_eq!(registration_at("3.9", Some("r1"))["rack"], "r1");
        let without = registration_at("3.9", None);
        assert!(without.get("rack").is_none(), "{without}");
    }

    /// Each IBP's registration has the version and fields a Kafka broker at that IBP writes.
    #[test]
    fn registration_version_follows_the_ibp() {
        let keys = |v: &serde_json::Value| -> Vec<String> {
            v.as_object().unwrap().keys().cloned().collect()
        };
        let common = [
            "endpoints",
            "host",
            "jmx_port",
            "port",
            "timestamp",
            "version",
        ];
        let with = |extra: &[&str]| {
            let mut k: Vec<String> = common.iter().chain(extra).map(|s| s.to_string()).collect();
            k.sort();
            k
        };
        // Below 0.10.0-IV1: version 2, no rack (KAFKA-3100) and no protocol map.
        let v2 = registration_at("0.10.0-IV0", Some("r1"));
        assert_eq!(v2["version"], 2);
        assert_eq!(keys(&v2), with(&[]));
        for ibp in ["0.10.0", "2.4", "2.6"] {
            let v4 = registration_at(ibp, Some("r1"));
            assert_eq!(v4["version"], 4, "{ibp}");
            assert_eq!(
                keys(&v4),
                with(&["listener_security_protocol_map", "rack"]),
                "{ibp}"
            );
            assert_eq!(
                v4["listener_security_protocol_map"]["PLAINTEXT"],
                "PLAINTEXT"
            );
        }
        for ibp in ["2.7-IV0", "2.8", "3.9"] {
            let v5 = registration_at(ibp, None);
            assert_eq!(v5["version"], 5, "{ibp}");
            assert_eq!(
                keys(&v5),
                with(&["features", "listener_security_protocol_map"]),
                "{ibp}"
            );
            // As Kafka 3.9's `SupportedVersionRange` renders them.
            assert_eq!(
                v5["features"],
                serde_json::json!({
                    "kraft.version": {"min_version": 0, "max_version": 1},
                    "metadata.version": {"min_version": 1, "max_version": 21},
                })
            );
        }
    }
}
