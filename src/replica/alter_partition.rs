//! The leader's ISR changes at IBP 2.7-IV2 and later, as Kafka 3.9's `AlterPartitionManager`
//! sends them: queued per partition (a newer proposal replaces one not sent yet), sent to the
//! controller as one AlterPartition with at most one request in flight, so at most one change
//! per partition, retried on NOT_CONTROLLER, a stale broker epoch or a lost connection with a
//! backoff that doubles up to a bound. The controller writes the state znode and answers with
//! the state it holds, which the leader takes ([`super::isr::IsrWrite::Committed`]).
//!
//! Unlike Kafka, a change is given up after [`GIVE_UP_AFTER`] (the leader proposes again at its
//! next check), and a controller that does not know AlterPartition (a Kafka 2.4-2.6 broker
//! during a rolling upgrade) gets the change through ZooKeeper as below IBP 2.7, rather than
//! never: Kafka would wait for the controller to be upgraded, with the ISR frozen meanwhile.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kafka_protocol::ResponseError;
use kafka_protocol::messages::alter_partition_request::{PartitionData, TopicData};
use kafka_protocol::messages::{
    AlterPartitionRequest, ApiKey, BrokerId, RequestKind, ResponseKind, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use tokio::sync::{Notify, oneshot};

use super::isr::IsrWrite;
use super::{IsrProposal, TopicPartition};
use crate::client::{ClientId, Connection, Ibp};
use crate::config::security::InterBrokerSecurity;
use crate::metadata::MetadataCache;

/// The first retry's wait, doubled after each failed attempt up to `MAX_BACKOFF`.
const MIN_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// How long a change is retried before it is given up (answered `Failed`).
pub const GIVE_UP_AFTER: Duration = Duration::from_secs(30);

/// What the controller's answer means for one queued change.
#[derive(Debug)]
pub enum Sent {
    Done(IsrWrite),
    /// The controller does not answer AlterPartition: write the change to ZooKeeper instead.
    Unsupported,
}

/// How this broker reaches the controller.
pub struct ControllerLink {
    pub broker_id: i32,
    pub cache: Arc<MetadataCache>,
    pub listener: String,
    pub security: InterBrokerSecurity,
    pub ibp: Ibp,
    /// `controller.socket.timeout.ms`: for connecting and for each request.
    pub timeout: Duration,
}

struct Item {
    proposal: IsrProposal,
    deadline: Instant,
    reply: oneshot::Sender<Sent>,
}

/// Kafka's `AlterPartitionManager`.
pub struct AlterPartitionSender {
    link: ControllerLink,
    queue: Mutex<HashMap<TopicPartition, Item>>,
    wake: Notify,
}

/// One attempt's result for the batch sent.
enum Attempt {
    /// Each partition's answer; `None` for those to send again.
    Answered(Vec<Option<IsrWrite>>),
    Unsupported,
    /// Nothing was decided (no controller known, a lost connection, a top-level error).
    Retry(String),
}

impl AlterPartitionSender {
    pub fn new(link: ControllerLink) -> Self {
        AlterPartitionSender {
            link,
            queue: Mutex::new(HashMap::new()),
            wake: Notify::new(),
        }
    }

    fn queue(&self) -> std::sync::MutexGuard<'_, HashMap<TopicPartition, Item>> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues a change and waits for the controller's decision on it.
    pub async fn submit(&self, topic: &str, partition: i32, proposal: IsrProposal) -> Sent {
        let (reply, answer) = oneshot::channel();
        let item = Item {
            proposal,
            deadline: Instant::now() + GIVE_UP_AFTER,
            reply,
        };
        // A change not sent yet is replaced: the leader proposes again only after the earlier
        // one was settled or overtaken by a LeaderAndIsr.
        self.queue().insert((topic.to_string(), partition), item);
        self.wake.notify_one();
        // Dropped unanswered: replaced by a newer change, or the broker is stopping.
        answer.await.unwrap_or(Sent::Done(IsrWrite::Failed))
    }

    /// Sends queued changes until `shutdown`, one request at a time.
    pub async fn run(self: Arc<Self>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        let mut conn: Option<(String, Connection)> = None;
        let mut backoff = MIN_BACKOFF;
        loop {
            let batch: Vec<(TopicPartition, Item)> = {
                let wake = self.wake.notified();
                let batch: Vec<_> = self.queue().drain().collect();
                if batch.is_empty() {
                    tokio::select! {
                        _ = wake => continue,
                        _ = shutdown.changed() => return,
                    }
                }
                batch
            };
            if *shutdown.borrow() {
                return;
            }
            let now = Instant::now();
            let (batch, expired): (Vec<_>, Vec<_>) =
                batch.into_iter().partition(|(_, i)| i.deadline > now);
            for (tp, item) in expired {
                tracing::warn!(topic = tp.0, partition = tp.1, isr = ?item.proposal.isr, "ISR change not accepted by the controller in time; given up");
                let _ = item.reply.send(Sent::Done(IsrWrite::Failed));
            }
            if batch.is_empty() {
                continue;
            }
            let attempt = self.attempt(&mut conn, &batch).await;
            let mut again = Vec::new();
            match attempt {
                Attempt::Answered(answers) => {
                    backoff = MIN_BACKOFF;
                    for ((tp, item), answer) in batch.into_iter().zip(answers) {
                        match answer {
                            Some(w) => {
                                let _ = item.reply.send(Sent::Done(w));
                            }
                            None => again.push((tp, item)),
                        }
                    }
                }
                Attempt::Unsupported => {
                    for (_, item) in batch {
                        let _ = item.reply.send(Sent::Unsupported);
                    }
                }
                Attempt::Retry(why) => {
                    tracing::debug!(reason = why, "AlterPartition not answered; retrying");
                    conn = None;
                    again = batch;
                }
            }
            if again.is_empty() {
                continue;
            }
            {
                let mut q = self.queue();
                for (tp, item) in again {
                    // A newer change queued meanwhile supersedes this one.
                    q.entry(tp).or_insert(item);
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = shutdown.changed() => return,
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    /// One AlterPartition to the controller the metadata names now.
    async fn attempt(
        &self,
        conn: &mut Option<(String, Connection)>,
        batch: &[(TopicPartition, Item)],
    ) -> Attempt {
        let link = &self.link;
        let controller = link.cache.controller_id();
        let Some(addr) = (controller >= 0)
            .then(|| link.cache.broker_address(controller, &link.listener))
            .flatten()
        else {
            return Attempt::Retry(format!("controller {controller} not known"));
        };
        if conn.as_ref().is_none_or(|(a, _)| *a != addr) {
            let client = ClientId::broker(link.broker_id);
            match tokio::time::timeout(link.timeout, link.security.connect(&addr, &client)).await {
                Ok(Ok(c)) => *conn = Some((addr.clone(), c)),
                Ok(Err(e)) => {
                    if e.is_authentication() {
                        tracing::error!(controller, error = %e, "the connection to the controller failed authentication; ISR changes wait");
                    }
                    return Attempt::Retry(e.to_string());
                }
                Err(_) => return Attempt::Retry(format!("connecting to {addr} timed out")),
            }
        }
        let Some((_, c)) = conn.as_mut() else {
            return Attempt::Retry("no connection".into());
        };
        if c.version(ApiKey::AlterPartition).is_err() {
            return Attempt::Unsupported;
        }
        let (request, all_ids) = self.request(batch);
        // Kafka's builder: topics by id (v2+) only when every topic has one.
        let cap = link.ibp.alter_partition_version().unwrap_or(0);
        let cap = if all_ids { cap } else { cap.min(1) };
        let call = c.call_upto(
            ApiKey::AlterPartition,
            cap,
            RequestKind::AlterPartition(request),
        );
        let response = match tokio::time::timeout(link.timeout, call).await {
            Ok(Ok(ResponseKind::AlterPartition(r))) => r,
            Ok(Ok(_)) => return Attempt::Retry("unexpected response".into()),
            Ok(Err(e)) => return Attempt::Retry(e.to_string()),
            Err(_) => return Attempt::Retry("timed out".into()),
        };
        if response.error_code != 0 {
            if response.error_code == ResponseError::ClusterAuthorizationFailed.code() {
                tracing::error!(
                    "this broker may not send AlterPartition to the controller (CLUSTER_ACTION); ISR changes wait"
                );
            }
            return Attempt::Retry(crate::client::error_name(response.error_code));
        }
        // The answers by topic name: v2+ name topics by id, which the request's ids map back.
        let names: HashMap<uuid::Uuid, String> = batch
            .iter()
            .filter_map(|((t, _), _)| {
                let id = link.cache.topic(t)?.id;
                (!id.is_nil()).then(|| (id, t.clone()))
            })
            .collect();
        let mut answers: HashMap<TopicPartition, (i16, i32, Vec<i32>, i32)> = HashMap::new();
        for t in response.topics {
            let name = if t.topic_name.0.is_empty() {
                match names.get(&t.topic_id) {
                    Some(n) => n.clone(),
                    None => continue,
                }
            } else {
                t.topic_name.0.to_string()
            };
            for p in t.partitions {
                answers.insert(
                    (name.clone(), p.partition_index),
                    (
                        p.error_code,
                        p.leader_epoch,
                        p.isr.iter().map(|b| b.0).collect(),
                        p.partition_epoch,
                    ),
                );
            }
        }
        Attempt::Answered(
            batch
                .iter()
                .map(|(tp, item)| {
                    let (code, leader_epoch, isr, partition_epoch) = answers.remove(tp)?;
                    outcome(tp, &item.proposal, code, leader_epoch, isr, partition_epoch)
                })
                .collect(),
        )
    }

    /// The request in its newest shape (`client::fit` reshapes it for the version sent), and
    /// whether every topic in it has an id.
    fn request(&self, batch: &[(TopicPartition, Item)]) -> (AlterPartitionRequest, bool) {
        let mut by_topic: BTreeMap<&str, Vec<PartitionData>> = BTreeMap::new();
        for ((topic, partition), item) in batch {
            let mut p = PartitionData::default();
            p.partition_index = *partition;
            p.leader_epoch = item.proposal.leader_epoch;
            p.new_isr = item.proposal.isr.iter().copied().map(BrokerId).collect();
            p.partition_epoch = item.proposal.partition_epoch;
            by_topic.entry(topic).or_default().push(p);
        }
        let mut all_ids = true;
        let mut request = AlterPartitionRequest::default();
        request.broker_id = BrokerId(self.link.broker_id);
        request.broker_epoch = self.link.cache.broker_epoch();
        request.topics = by_topic
            .into_iter()
            .map(|(topic, partitions)| {
                let id = self
                    .link
                    .cache
                    .topic(topic)
                    .map(|t| t.id)
                    .unwrap_or_default();
                all_ids &= !id.is_nil();
                let mut t = TopicData::default();
                t.topic_name = TopicName(StrBytes::from_string(topic.to_string()));
                t.topic_id = id;
                t.partitions = partitions;
                t
            })
            .collect();
        (request, all_ids)
    }
}

/// A partition's answer as the leader takes it (Kafka's `Partition.handleAlterPartitionError`
/// and `handleAlterPartitionUpdate`); `None` to send it again.
fn outcome(
    tp: &TopicPartition,
    proposal: &IsrProposal,
    code: i16,
    leader_epoch: i32,
    isr: Vec<i32>,
    partition_epoch: i32,
) -> Option<IsrWrite> {
    let (topic, partition) = (tp.0.as_str(), tp.1);
    if code == 0 {
        if leader_epoch != proposal.leader_epoch {
            // Another leader epoch: a LeaderAndIsr brings the state that goes with it.
            return Some(IsrWrite::Stale);
        }
        tracing::info!(
            topic,
            partition,
            ?isr,
            partition_epoch,
            "ISR updated by the controller"
        );
        return Some(IsrWrite::Committed {
            isr,
            version: partition_epoch,
        });
    }
    let name = crate::client::error_name(code);
    match ResponseError::try_from_code(code) {
        // The change was not made and the state is as the leader knows it: it may propose again.
        Some(ResponseError::OperationNotAttempted) => Some(IsrWrite::Failed),
        _ if code == crate::protocol::errors::INELIGIBLE_REPLICA => Some(IsrWrite::Failed),
        // The leader's state is out of date: no change until the controller's LeaderAndIsr.
        Some(
            ResponseError::FencedLeaderEpoch
            | ResponseError::InvalidUpdateVersion
            | ResponseError::UnknownTopicOrPartition
            | ResponseError::UnknownTopicId
            | ResponseError::InvalidRequest,
        ) => {
            tracing::info!(
                topic,
                partition,
                error = name,
                "ISR change refused by the controller; waiting for its LeaderAndIsr"
            );
            Some(IsrWrite::Stale)
        }
        _ => {
            tracing::debug!(
                topic,
                partition,
                error = name,
                "ISR change to be sent again"
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proposal(leader_epoch: i32) -> IsrProposal {
        IsrProposal {
            isr: vec![1, 2],
            leader_epoch,
            controller_epoch: 1,
            partition_epoch: 3,
            generation: 0,
        }
    }

    #[test]
    fn answers_are_taken_as_kafkas_leader_takes_them() {
        let tp = ("t".to_string(), 0);
        let p = proposal(5);
        assert_eq!(
            outcome(&tp, &p, 0, 5, vec![1, 2, 3], 4),
            Some(IsrWrite::Committed {
                isr: vec![1, 2, 3],
                version: 4
            })
        );
        // An answer for another leader epoch is stale.
        assert_eq!(outcome(&tp, &p, 0, 6, vec![1], 4), Some(IsrWrite::Stale));
        let code = |e: ResponseError| e.code();
        for stale in [
            ResponseError::FencedLeaderEpoch,
            ResponseError::InvalidUpdateVersion,
            ResponseError::UnknownTopicOrPartition,
        ] {
            assert_eq!(
                outcome(&tp, &p, code(stale), 0, vec![], 0),
                Some(IsrWrite::Stale)
            );
        }
        assert_eq!(
            outcome(
                &tp,
                &p,
                code(ResponseError::OperationNotAttempted),
                0,
                vec![],
                0
            ),
            Some(IsrWrite::Failed)
        );
        assert_eq!(
            outcome(
                &tp,
                &p,
                crate::protocol::errors::INELIGIBLE_REPLICA,
                0,
                vec![],
                0
            ),
            Some(IsrWrite::Failed)
        );
        for retried in [
            ResponseError::NotController,
            ResponseError::UnknownServerError,
            ResponseError::RequestTimedOut,
        ] {
            assert_eq!(outcome(&tp, &p, code(retried), 0, vec![], 0), None);
        }
    }
}
