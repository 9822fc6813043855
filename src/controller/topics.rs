//! Topic administration on whichever broker a client asked (CreateTopics, CreatePartitions,
//! DeleteTopics, internal topics on first use): like Kafka's AdminZkClient it validates, writes
//! znodes, then waits for the active controller's decisions to reach this broker's cache.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use crate::config::ConfigError;
use crate::metadata::MetadataCache;
use crate::metadata::store::{CreateMode, StoreError, create_recursive};
use crate::metadata::znodes::{self, ConfigZnode, TopicZnode};

use super::{Controller, ControllerError, assignment};

/// Kafka's topic name rule: 1..249 characters of `[a-zA-Z0-9._-]`, not `.` or `..`.
pub fn validate_topic_name(name: &str) -> Result<(), ControllerError> {
    let bad = |why: &str| {
        Err(ControllerError::InvalidTopic(format!(
            "topic name {name:?} is illegal: {why}"
        )))
    };
    if name.is_empty() {
        return bad("empty");
    }
    if name == "." || name == ".." {
        return bad("'.' and '..' are not allowed");
    }
    if name.len() > 249 {
        return bad("longer than 249 characters");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
    {
        return bad("only ASCII alphanumerics, '.', '_' and '-' are allowed");
    }
    Ok(())
}

/// Every topic-level config Kafka 3.9 knows; others are refused as INVALID_CONFIG.
pub fn is_topic_config(key: &str) -> bool {
    crate::config::defs::is_topic_config(key)
}

/// How long a coordinator's first request waits for its internal topic to come online.
const INTERNAL_TOPIC_CREATION_WAIT: Duration = Duration::from_secs(5);
/// Live brokers as replica assignment takes them: id and `broker.rack`.
fn racks(brokers: &[crate::metadata::cache::BrokerInfo]) -> Vec<(i32, Option<&str>)> {
    brokers.iter().map(|b| (b.id, b.rack.as_deref())).collect()
}
impl Controller {
    /// A topic's config overrides as stored in `/config/topics/<topic>`.
    pub async fn topic_overrides(
        &self,
        topic: &str,
    ) -> Result<BTreeMap<String, String>, ControllerError> {
        let path = znodes::topic_config_path(topic);
        Ok(match self.store.get(&path).await? {
            Some((Some(d), _)) => znodes::decode::<ConfigZnode>(&path, &d)?.config,
            _ => BTreeMap::new(),
        })
    }

    /// Waits until the metadata cache satisfies `ready`, up to `timeout`.
    async fn wait_for_cache(
        &self,
        timeout: Duration,
        ready: impl Fn(&MetadataCache) -> bool,
    ) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if ready(&self.cache) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    fn all_led(cache: &MetadataCache, name: &str, partitions: i32) -> bool {
        cache.topic(name).is_some_and(|t| {
            t.partitions.len() as i32 >= partitions && t.partitions.values().all(|p| p.leader >= 0)
        })
    }

    /// Creates an internal topic (`__consumer_offsets`, `__transaction_state`) on its
    /// coordinator's first use, as Kafka does, and waits (bounded) until every partition is
    /// led. `creation` serializes the coordinator's concurrent first requests; `configs` is
    /// only built when the topic is missing. A topic created meanwhile (by another broker)
    /// counts as created.
    pub async fn ensure_internal_topic(
        &self,
        creation: &tokio::sync::Mutex<()>,
        name: &str,
        partitions: i32,
        replication_factor: i16,
        configs: impl FnOnce() -> BTreeMap<String, String>,
    ) -> Result<(), ControllerError> {
        if self.cache.topic(name).is_some() {
            return Ok(());
        }
        let _guard = creation.lock().await;
        if self.cache.topic(name).is_some() {
            return Ok(());
        }
        match self
            .create_topic(
                name,
                partitions,
                replication_factor,
                None,
                configs(),
                false,
                INTERNAL_TOPIC_CREATION_WAIT,
            )
            .await
        {
            Ok(()) | Err(ControllerError::TopicExists(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// CreateTopics (and auto-creation): validates, writes the config and assignment znodes as
    /// Kafka's AdminZkClient does, then waits up to `wait` for the controller to have brought
    /// every partition online. `validate_only` stops after validation. `assigned` is the
    /// client's explicit `(partition, replicas)` list; with it `partitions` and
    /// `replication_factor` are ignored (the caller has refused them unless both were -1).
    #[allow(clippy::too_many_arguments)]
    pub async fn create_topic(
        &self,
        name: &str,
        partitions: i32,
        replication_factor: i16,
        assigned: Option<Vec<(i32, Vec<i32>)>>,
        configs: BTreeMap<String, String>,
        validate_only: bool,
        wait: Duration,
    ) -> Result<(), ControllerError> {
        validate_topic_name(name)?;
        if let Some(assigned) = assigned.filter(|a| !a.is_empty()) {
            return self
                .create_assigned_topic(name, assigned, configs, validate_only, wait)
                .await;
        }
        let partitions = if partitions == -1 {
            self.config.num_partitions
        } else {
            partitions
        };
        let rf = if replication_factor == -1 {
            self.config.default_replication_factor
        } else {
            replication_factor
        };
        if partitions < 1 {
            return Err(ControllerError::InvalidPartitions(format!(
                "number of partitions must be at least 1, got {partitions}"
            )));
        }
        let brokers = self.cache.brokers();
        if rf < 1 || rf as usize > brokers.len() {
            return Err(ControllerError::InvalidReplicationFactor(format!(
                "replication factor {rf} is invalid: {} broker(s) available",
                brokers.len()
            )));
        }
        // Kafka assigns before it validates configs and names, so a rack problem shows first.
        let assignment =
            assignment::assign_replicas(&racks(&brokers), partitions, rf as usize, 0, None, None)?;
        self.write_new_topic(name, assignment, configs, validate_only, wait)
            .await
    }

    /// CreateTopics with explicit replica assignments, checked as Kafka's
    /// `AdminZkClient.validateTopicCreate` does (after the name and existence checks): the
    /// partition ids are exactly 0..n-1, then the replica lists pass the same checks as
    /// CreatePartitions' (known brokers, none empty or with duplicates, one replica count).
    async fn create_assigned_topic(
        &self,
        name: &str,
        mut assigned: Vec<(i32, Vec<i32>)>,
        configs: BTreeMap<String, String>,
        validate_only: bool,
        wait: Duration,
    ) -> Result<(), ControllerError> {
        // Kafka's createTopics refuses a topic its metadata cache knows before anything else.
        if self.cache.topic(name).is_some() {
            return Err(ControllerError::TopicExists(name.to_string()));
        }
        assigned.sort_by_key(|(p, _)| *p);
        // Also refuses a partition listed twice, which Kafka's map would silently collapse.
        if !assigned
            .iter()
            .map(|(p, _)| *p)
            .eq(0..assigned.len() as i32)
        {
            return Err(ControllerError::InvalidReplicaAssignment(
                "partitions should be a consecutive 0-based integer sequence".into(),
            ));
        }
        let replicas: Vec<Vec<i32>> = assigned.into_iter().map(|(_, r)| r).collect();
        let brokers: BTreeSet<i32> = self.cache.brokers().iter().map(|b| b.id).collect();
        let rf = replicas.first().map_or(0, Vec::len);
        validate_new_assignments(&replicas, 0, replicas.len() as i32, rf, &brokers)?;
        let assignment = (0..).zip(replicas).collect();
        self.write_new_topic(name, assignment, configs, validate_only, wait)
            .await
    }

    /// The part of topic creation shared by both ways of assigning: config, existence and
    /// collision checks, then the znodes, then the wait for leaders.
    async fn write_new_topic(
        &self,
        name: &str,
        assignment: BTreeMap<i32, Vec<i32>>,
        configs: BTreeMap<String, String>,
        validate_only: bool,
        wait: Duration,
    ) -> Result<(), ControllerError> {
        self.config.topic_config(&configs)?;
        if let Some(unknown) = configs.keys().find(|k| !is_topic_config(k)) {
            return Err(ControllerError::InvalidConfig(ConfigError {
                key: unknown.clone(),
                value: configs[unknown].clone(),
                reason: "unknown topic config".into(),
            }));
        }
        let marked_for_deletion = format!("{}/{name}", znodes::DELETE_TOPICS);
        let store = self.store.as_ref();
        let topic_path = znodes::topic_path(name);
        let config_path = znodes::topic_config_path(name);
        // The reads are independent: sent together, they cost one round trip to ZooKeeper
        // rather than four, for every topic created.
        let (topic_found, marked, existing, config_found) = futures::try_join!(
            store.get(&topic_path),
            store.get(&marked_for_deletion),
            store.children(znodes::TOPICS),
            store.get(&config_path),
        )?;
        if topic_found.is_some() || marked.is_some() || self.cache.topic(name).is_some() {
            return Err(ControllerError::TopicExists(name.to_string()));
        }
        // Kafka refuses names that collide once '.' and '_' are treated alike (metric names).
        let normalized = name.replace('.', "_");
        let existing = existing.unwrap_or_default();
        if let Some(other) = existing.iter().find(|t| t.replace('.', "_") == normalized) {
            return Err(ControllerError::InvalidTopic(format!(
                "topic {name:?} collides with existing topic {other:?}"
            )));
        }
        if validate_only {
            return Ok(());
        }
        // Kafka gives topics ids only from IBP 2.8 on (`usesTopicId`); older brokers in the
        // cluster know topics by name alone.
        let topic_id = self
            .config
            .inter_broker_protocol_version
            .topic_ids()
            .then(|| znodes::random_uuid_base64().1);
        let topic = TopicZnode {
            version: 3,
            partitions: assignment
                .into_iter()
                .map(|(p, r)| (p.to_string(), r))
                .collect(),
            adding_replicas: BTreeMap::new(),
            removing_replicas: BTreeMap::new(),
            topic_id,
        };
        let cfg = ConfigZnode {
            version: 1,
            config: configs,
        };
        match config_found {
            Some((_, stat)) => {
                store
                    .set(&config_path, Some(znodes::encode(&cfg)), Some(stat.version))
                    .await?;
            }
            None => {
                create_recursive(
                    store,
                    &config_path,
                    Some(znodes::encode(&cfg)),
                    CreateMode::Persistent,
                )
                .await?;
            }
        }
        match store
            .create(
                &topic_path,
                Some(znodes::encode(&topic)),
                CreateMode::Persistent,
            )
            .await
        {
            Err(StoreError::NodeExists(_)) => {
                return Err(ControllerError::TopicExists(name.to_string()));
            }
            other => {
                other?;
            }
        }
        let partitions = topic.partitions.len() as i32;
        let rf = topic.partitions.values().next().map_or(0, Vec::len);
        tracing::info!(
            topic = name,
            partitions,
            replication_factor = rf,
            "created topic"
        );
        if !self
            .wait_for_cache(wait, |c| Self::all_led(c, name, partitions))
            .await
        {
            tracing::info!(topic = name, "topic created; leaders not elected yet");
        }
        Ok(())
    }

    /// CreatePartitions: grows a topic to `count` partitions (never shrinks). The new
    /// partitions get `assignments` (one replica list per new partition, validated as Kafka's
    /// `ZkAdminManager.createPartitions` and `AdminZkClient.createNewPartitionsAssignment` do),
    /// or without them continue Kafka's round robin from where the existing ones left it.
    pub async fn create_partitions(
        &self,
        name: &str,
        count: i32,
        assignments: Option<Vec<Vec<i32>>>,
        validate_only: bool,
        wait: Duration,
    ) -> Result<(), ControllerError> {
        let path = znodes::topic_path(name);
        let Some((Some(data), stat)) = self.store.get(&path).await? else {
            return Err(ControllerError::UnknownTopic(name.to_string()));
        };
        if self
            .store
            .get(&format!("{}/{name}", znodes::DELETE_TOPICS))
            .await?
            .is_some()
        {
            return Err(ControllerError::UnknownTopic(name.to_string()));
        }
        let mut topic: TopicZnode = znodes::decode(&path, &data)?;
        let existing = topic.assignment();
        let current = existing.len() as i32;
        if count < current {
            return Err(ControllerError::InvalidPartitions(format!(
                "Topic currently has {current} partitions, which is higher than the requested {count}."
            )));
        }
        if count == current {
            return Err(ControllerError::InvalidPartitions(format!(
                "Topic already has {current} partitions."
            )));
        }
        let brokers = self.cache.brokers();
        let rf = existing.values().next().map_or(1, |r| r.len());
        let added = match assignments {
            Some(assignments) => {
                let ids: BTreeSet<i32> = brokers.iter().map(|b| b.id).collect();
                validate_new_assignments(&assignments, current, count - current, rf, &ids)?;
                (current..).zip(assignments).collect()
            }
            None => {
                if rf > brokers.len() {
                    return Err(ControllerError::InvalidReplicationFactor(format!(
                        "the topic's replication factor {rf} is larger than the {} available broker(s)",
                        brokers.len()
                    )));
                }
                // Kafka's `createNewPartitionsAssignment`: the turn starts at the first broker
                // (by id) not below partition 0's preferred leader, and that index is also the
                // shift.
                let start = existing.get(&0).and_then(|r| r.first()).map(|leader| {
                    let mut ids: Vec<i32> = brokers.iter().map(|b| b.id).collect();
                    ids.sort_unstable();
                    ids.iter().position(|b| b >= leader).unwrap_or(0)
                });
                assignment::assign_replicas(
                    &racks(&brokers),
                    count - current,
                    rf,
                    current,
                    start,
                    start,
                )?
            }
        };
        if validate_only {
            return Ok(());
        }
        for (p, replicas) in added {
            topic.partitions.insert(p.to_string(), replicas);
        }
        self.store
            .set(&path, Some(znodes::encode(&topic)), Some(stat.version))
            .await
            .map_err(|e| match e {
                StoreError::BadVersion(_) => ControllerError::InvalidPartitions(format!(
                    "topic {name} changed while partitions were being added; retry"
                )),
                other => other.into(),
            })?;
        tracing::info!(topic = name, from = current, to = count, "added partitions");
        self.wait_for_cache(wait, |c| Self::all_led(c, name, count))
            .await;
        Ok(())
    }

    /// DeleteTopics: marks the topic in `/admin/delete_topics` (as Kafka's tools do) and waits
    /// for the controller to have removed it from every broker.
    pub async fn delete_topic(&self, name: &str, wait: Duration) -> Result<(), ControllerError> {
        if !self.config.delete_topic_enable {
            return Err(ControllerError::DeletionDisabled);
        }
        if self.store.get(&znodes::topic_path(name)).await?.is_none() {
            return Err(ControllerError::UnknownTopic(name.to_string()));
        }
        match self
            .store
            .create(
                &format!("{}/{name}", znodes::DELETE_TOPICS),
                None,
                CreateMode::Persistent,
            )
            .await
        {
            Ok(_) | Err(StoreError::NodeExists(_)) => {}
            Err(e) => return Err(e.into()),
        }
        if self.wait_for_cache(wait, |c| c.topic(name).is_none()).await {
            Ok(())
        } else {
            Err(ControllerError::TimedOut(format!(
                "topic {name} is marked for deletion; deletion has not completed yet"
            )))
        }
    }
}

/// Kafka's checks of explicit assignments for the new partitions `first`, `first + 1`, ...,
/// in its order and with its messages: brokers that are not registered (which also covers
/// Kafka's later BROKER_NOT_AVAILABLE check, against the same list), then one assignment
/// per new partition, then per partition (in partition order) no empty or duplicated replica
/// list, then replication factors equal to partition 0's (`rf`).
fn validate_new_assignments(
    assignments: &[Vec<i32>],
    first: i32,
    increment: i32,
    rf: usize,
    brokers: &BTreeSet<i32>,
) -> Result<(), ControllerError> {
    fn join<T: std::fmt::Display>(items: impl IntoIterator<Item = T>) -> String {
        items
            .into_iter()
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }
    let unknown: BTreeSet<i32> = assignments
        .iter()
        .flatten()
        .filter(|b| !brokers.contains(b))
        .copied()
        .collect();
    if !unknown.is_empty() {
        return Err(ControllerError::InvalidReplicaAssignment(format!(
            "Unknown broker(s) in replica assignment: {}.",
            join(&unknown)
        )));
    }
    if assignments.len() as i64 != i64::from(increment) {
        return Err(ControllerError::InvalidReplicaAssignment(format!(
            "Increasing the number of partitions by {increment} but {} assignments provided.",
            assignments.len()
        )));
    }
    for (partition, replicas) in (first..).zip(assignments) {
        if replicas.is_empty() {
            return Err(ControllerError::InvalidReplicaAssignment(format!(
                "Cannot have replication factor of 0 for partition id {partition}."
            )));
        }
        if replicas.iter().collect::<BTreeSet<_>>().len() != replicas.len() {
            return Err(ControllerError::InvalidReplicaAssignment(format!(
                "Duplicate brokers not allowed in replica assignment: {} for partition id {partition}.",
                join(replicas)
            )));
        }
    }
    let bad: Vec<(i32, usize)> = (first..)
        .zip(assignments)
        .filter(|(_, r)| r.len() != rf)
        .map(|(p, r)| (p, r.len()))
        .collect();
    if !bad.is_empty() {
        return Err(ControllerError::InvalidReplicaAssignment(format!(
            "Inconsistent replication factor between partitions, partition 0 has {rf} while \
             partitions [{}] have replication factors [{}], respectively.",
            join(bad.iter().map(|(p, _)| p)),
            join(bad.iter().map(|(_, n)| n))
        )));
    }
    Ok(())
}

#[cfg(test)]
mod assignment_tests {
    use super::*;

    fn refusal(assignments: &[&[i32]], increment: i32) -> Option<String> {
        let brokers: BTreeSet<i32> = [1, 2, 3].into();
        let a: Vec<Vec<i32>> = assignments.iter().map(|r| r.to_vec()).collect();
        validate_new_assignments(&a, 2, increment, 2, &brokers)
            .err()
            .map(|e| {
                assert!(matches!(e, ControllerError::InvalidReplicaAssignment(_)));
                e.to_string()
            })
    }

    #[test]
    fn explicit_assignments_are_checked_as_kafka_checks_them() {
        assert_eq!(refusal(&[&[1, 2], &[3, 1]], 2), None);
        assert_eq!(
            refusal(&[&[1, 9], &[7, 1]], 3).as_deref(),
            Some("Unknown broker(s) in replica assignment: 7, 9."),
            "unknown brokers come before the count"
        );
        assert_eq!(
            refusal(&[&[1, 2]], 2).as_deref(),
            Some("Increasing the number of partitions by 2 but 1 assignments provided.")
        );
        assert_eq!(
            refusal(&[&[1, 2], &[]], 2).as_deref(),
            Some("Cannot have replication factor of 0 for partition id 3.")
        );
        assert_eq!(
            refusal(&[&[1, 2], &[3, 3]], 2).as_deref(),
            Some("Duplicate brokers not allowed in replica assignment: 3, 3 for partition id 3.")
        );
        assert_eq!(
            refusal(&[&[1], &[1, 2, 3]], 2).as_deref(),
            Some(
                "Inconsistent replication factor between partitions, partition 0 has 2 while \
                 partitions [2, 3] have replication factors [1, 3], respectively."
            )
        );
    }
}
