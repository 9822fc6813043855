//! Topics appearing and growing (Kafka's `TopicChange` and `PartitionModifications` events):
//! reading topic znodes into the context, giving topics without one an id, and bringing the new
//! partitions online. Separate because topic creation is its own event source, as brokers
//! (`brokers.rs`) and deletion (`deletion.rs`) are.

use std::collections::{BTreeMap, BTreeSet};

use futures::stream::TryStreamExt;

use super::partition_states::pipelined;
use super::{ActiveController, Stop, TopicState, Tp};
use crate::metadata::store::StoreError;
use crate::metadata::znodes::{self, TopicZnode};

impl ActiveController {
    /// Reads a topic's assignment and partition states into the context, giving it a topic id
    /// if it has none (topics written by Kafka before 2.8 or by old tools).
    pub(super) async fn load_topic(&mut self, topic: &str) -> Result<(), Stop> {
        self.load_topics(&[topic.to_string()]).await
    }

    /// `load_topic` for many topics, with the reads of all their znodes pipelined: a new
    /// controller reads every topic, and one round trip per topic (300 topics) cost seconds.
    pub(super) async fn load_topics(&mut self, topics: &[String]) -> Result<(), Stop> {
        let loaded = self.read_topics(topics).await?;
        let tps: Vec<Tp> = loaded
            .iter()
            .flat_map(|(t, s)| s.assignment.keys().map(move |p| (t.clone(), *p)))
            .collect();
        self.refresh_states(&tps).await?;
        self.add_topics(loaded).await
    }

    /// Reads and watches topic znodes (pipelined), without their partition states.
    pub(super) async fn read_topics(
        &mut self,
        topics: &[String],
    ) -> Result<Vec<(String, TopicState)>, Stop> {
        let reads: Vec<_> = topics
            .iter()
            .map(|topic| {
                let store = self.store.clone();
                let path = znodes::topic_path(topic);
                async move {
                    store.watch_node(&path).await?;
                    Ok::<_, Stop>(store.get(&path).await?)
                }
            })
            .collect();
        let started = std::time::Instant::now();
        let found: Vec<_> = pipelined(reads).try_collect().await?;
        if topics.len() > 1 {
            tracing::info!(
                topics = topics.len(),
                elapsed_ms = started.elapsed().as_millis() as u64,
                "topic znodes read and watched"
            );
        }
        let mut loaded = Vec::new();
        for (topic, found) in topics.iter().zip(found) {
            if let Some((Some(data), stat)) = found
                && let Some(state) = self.decode_topic(topic, &data, stat.version).await?
            {
                loaded.push((topic.clone(), state));
            }
        }
        Ok(loaded)
    }

    /// Takes topics read by `read_topics` into the context.
    pub(super) async fn add_topics(
        &mut self,
        loaded: Vec<(String, TopicState)>,
    ) -> Result<(), Stop> {
        for (topic, state) in loaded {
            for p in state.adding.keys().chain(state.removing.keys()) {
                // Kafka's PartitionReassignmentIsrChangeHandler: the leader's ISR writes tell
                // when the new replicas have caught up.
                self.store
                    .watch_node(&znodes::partition_state_path(&topic, *p))
                    .await?;
            }
            self.topics.insert(topic, state);
        }
        Ok(())
    }

    /// A topic znode as the controller's state, giving the topic an id if it has none; `None`
    /// for one that cannot be read or was rewritten meanwhile (its watch brings it back).
    pub(super) async fn decode_topic(
        &mut self,
        topic: &str,
        data: &[u8],
        version: i32,
    ) -> Result<Option<TopicState>, Stop> {
        let path = znodes::topic_path(topic);
        let z: TopicZnode = match znodes::decode(&path, data) {
            Ok(z) => z,
            Err(e) => {
                tracing::error!(topic, error = %e, "skipping topic with unreadable assignment");
                return Ok(None);
            }
        };
        let id = match z.topic_id.as_deref().and_then(znodes::parse_uuid_base64) {
            Some(id) => id,
            // Below IBP 2.8 topics keep no id, as Kafka's controller leaves them.
            None if !self.config.inter_broker_protocol_version.topic_ids() => uuid::Uuid::nil(),
            None => {
                let (id, text) = znodes::random_uuid_base64();
                let mut with_id = z.clone();
                with_id.version = 3;
                with_id.topic_id = Some(text);
                self.fence().await?;
                match self
                    .store
                    .set(&path, Some(znodes::encode(&with_id)), Some(version))
                    .await
                {
                    Ok(_) => {}
                    // Someone rewrote the assignment meanwhile: its watch brings it back.
                    Err(StoreError::BadVersion(_)) => return Ok(None),
                    Err(e) => return Err(e.into()),
                }
                id
            }
        };
        let assignment = z.assignment();
        let by_partition = |m: &BTreeMap<String, Vec<i32>>| -> BTreeMap<i32, Vec<i32>> {
            m.iter()
                .filter(|(_, r)| !r.is_empty())
                .filter_map(|(k, v)| k.parse().ok().map(|p| (p, v.clone())))
                .collect()
        };
        Ok(Some(TopicState {
            id,
            assignment,
            adding: by_partition(&z.adding_replicas),
            removing: by_partition(&z.removing_replicas),
        }))
    }

    pub(super) async fn on_topic_change(&mut self) -> Result<(), Stop> {
        let now: BTreeSet<String> = self
            .store
            .children(znodes::TOPICS)
            .await?
            .unwrap_or_default()
            .into_iter()
            .collect();
        let added: Vec<String> = now
            .iter()
            .filter(|t| !self.topics.contains_key(*t))
            .cloned()
            .collect();
        let removed: Vec<String> = self
            .topics
            .keys()
            .filter(|t| !now.contains(*t))
            .cloned()
            .collect();
        for t in removed {
            self.forget_topic(&t);
        }
        for t in &added {
            self.load_topic(t).await?;
            tracing::info!(topic = t, "new topic");
        }
        let partitions: Vec<Tp> = self
            .all_partitions()
            .into_iter()
            .filter(|(t, _)| added.contains(t))
            .collect();
        // Partitions that already have a state (a topic adopted from another cluster) are
        // announced as they are; the others are elected.
        let existing: Vec<Tp> = partitions
            .iter()
            .filter(|tp| self.states.contains_key(*tp))
            .cloned()
            .collect();
        self.announce(&existing);
        self.bring_online(partitions).await
    }

    /// Partitions added to a topic (CreatePartitions, or a tool rewriting the assignment).
    pub(super) async fn on_assignment_change(&mut self, topic: &str) -> Result<(), Stop> {
        let before: BTreeSet<i32> = self
            .topics
            .get(topic)
            .map(|t| t.assignment.keys().copied().collect())
            .unwrap_or_default();
        self.load_topic(topic).await?;
        let added: Vec<Tp> = self
            .topics
            .get(topic)
            .map(|t| {
                t.assignment
                    .keys()
                    .filter(|p| !before.contains(p))
                    .map(|p| (topic.to_string(), *p))
                    .collect()
            })
            .unwrap_or_default();
        if !added.is_empty() {
            tracing::info!(topic, partitions = added.len(), "partitions added");
        }
        self.bring_online(added).await
    }
}
