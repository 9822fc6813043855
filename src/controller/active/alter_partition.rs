//! AlterPartition (Kafka 2.7-2.8's AlterIsr), as Kafka 3.9's `KafkaController.processAlterPartition`
//! answers it in ZooKeeper mode: from IBP 2.7-IV2 a partition leader does not write its ISR
//! changes to the state znode itself but asks the controller, which checks the leader and
//! partition epochs against what it knows, writes the state znode, answers with the state it
//! wrote and tells every broker in UpdateMetadata. Answered at any IBP of this controller, as
//! Kafka's is: brokers at a newer IBP send it during a rolling upgrade.

use tokio::sync::oneshot;

use super::{ActiveController, Decision, PartitionState, Stop, Tp};
use crate::controller::{ControllerError, IsrRefusal};

/// A topic as AlterPartition names it: by name up to v1, by id from v2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TopicRef {
    Name(String),
    Id(uuid::Uuid),
}

/// One partition of an AlterPartition request: the ISR its leader proposes, against the leader
/// epoch and partition epoch (the state znode's version) it knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IsrChange {
    pub partition: i32,
    pub leader_epoch: i32,
    pub isr: Vec<i32>,
    /// 0 RECOVERED, 1 RECOVERING (KIP-704, v1+).
    pub leader_recovery_state: i8,
    pub partition_epoch: i32,
}

/// An AlterPartition request from broker `broker`, in the registration `broker_epoch`.
#[derive(Debug, Clone)]
pub struct AlterPartition {
    pub broker: i32,
    pub broker_epoch: i64,
    pub topics: Vec<(TopicRef, Vec<IsrChange>)>,
}

/// The partition state the controller holds after an accepted change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedIsr {
    pub leader: i32,
    pub leader_epoch: i32,
    pub isr: Vec<i32>,
    pub partition_epoch: i32,
}

/// A topic of the request with each partition's outcome.
pub type TopicAnswer = (TopicRef, Vec<(i32, Result<CommittedIsr, IsrRefusal>)>);

/// Each topic of the request with each partition's outcome, or the request's refusal.
pub type AlterPartitionAnswer = Result<Vec<TopicAnswer>, ControllerError>;

/// A partition's outcome before the state znodes are written.
enum Outcome {
    Done(Result<CommittedIsr, IsrRefusal>),
    /// The index of its decision among those to write.
    Write(usize),
}

impl ActiveController {
    /// Kafka's `processAlterPartition`: answers `reply`, then completes reassignments that the
    /// accepted ISR expansions allow.
    pub(super) async fn alter_partition(
        &mut self,
        request: AlterPartition,
        reply: oneshot::Sender<AlterPartitionAnswer>,
    ) -> Result<(), Stop> {
        // The sender's registration must be the current one: a leader from before a bounce
        // (a zombie) must not change the ISR.
        match self.brokers.get(&request.broker) {
            Some(b) if b.epoch == request.broker_epoch => {}
            known => {
                tracing::info!(
                    broker = request.broker,
                    broker_epoch = request.broker_epoch,
                    current = known.map(|b| b.epoch),
                    "AlterPartition from an unknown or old broker registration refused"
                );
                let _ = reply.send(Err(ControllerError::StaleBrokerEpoch {
                    broker: request.broker,
                    request: request.broker_epoch,
                    current: known.map_or(-1, |b| b.epoch),
                }));
                return Ok(());
            }
        }
        let mut decisions: Vec<Decision> = Vec::new();
        let mut asked: Vec<Tp> = Vec::new();
        let mut topics: Vec<(TopicRef, Vec<(i32, Outcome)>)> = Vec::new();
        for (topic, changes) in request.topics {
            let name = match &topic {
                TopicRef::Name(n) => Some(n.clone()),
                TopicRef::Id(id) => self
                    .topics
                    .iter()
                    .find(|(_, t)| !t.id.is_nil() && t.id == *id)
                    .map(|(n, _)| n.clone()),
            };
            let Some(name) = name else {
                let unknown = changes
                    .iter()
                    .map(|c| (c.partition, Outcome::Done(Err(IsrRefusal::UnknownTopicId))))
                    .collect();
                topics.push((topic, unknown));
                continue;
            };
            let mut outcomes = Vec::with_capacity(changes.len());
            for change in changes {
                let tp: Tp = (name.clone(), change.partition);
                let outcome = match self.check_isr_change(&tp, request.broker, &change).await? {
                    Ok(Some(current)) => Outcome::Done(Ok(current)),
                    Ok(None) => {
                        decisions.push(Decision {
                            tp: tp.clone(),
                            leader: request.broker,
                            leader_epoch: change.leader_epoch,
                            isr: change.isr,
                        });
                        Outcome::Write(decisions.len() - 1)
                    }
                    Err(code) => Outcome::Done(Err(code)),
                };
                if self.states.contains_key(&tp) {
                    asked.push(tp);
                }
                outcomes.push((change.partition, outcome));
            }
            topics.push((topic, outcomes));
        }
        // Each write is conditional on the partition epoch the leader proposed against, which
        // is the one the controller knows (checked above).
        let won = self.write_states(&decisions).await?;
        let mut accepted: Vec<Tp> = Vec::new();
        let answer: Vec<TopicAnswer> = topics
            .into_iter()
            .map(|(topic, outcomes)| {
                let outcomes = outcomes
                    .into_iter()
                    .map(|(p, o)| {
                        let result = match o {
                            Outcome::Done(r) => r,
                            Outcome::Write(i) if won.get(i).copied().unwrap_or(false) => {
                                let tp = &decisions[i].tp;
                                accepted.push(tp.clone());
                                self.states
                                    .get(tp)
                                    .map(committed)
                                    .ok_or(IsrRefusal::UnknownTopicOrPartition)
                            }
                            // A leader's or another controller decision got there first.
                            Outcome::Write(_) => Err(IsrRefusal::InvalidUpdateVersion),
                        };
                        (p, result)
                    })
                    .collect();
                (topic, outcomes)
            })
            .collect();
        if !accepted.is_empty() {
            tracing::info!(broker = request.broker, partitions = ?accepted, "ISR changes by AlterPartition");
        }
        if !asked.is_empty() {
            let live: Vec<i32> = self.brokers.keys().copied().collect();
            self.send_update_metadata(Some(&asked), &live);
        }
        let _ = reply.send(Ok(answer));
        for tp in accepted {
            if self.is_reassigning(&tp) {
                self.maybe_complete_reassignment(&tp).await?;
            }
        }
        Ok(())
    }

    /// Kafka's checks of one proposed change, in its order: `Ok(None)` when it is to be written,
    /// `Ok(Some(current))` when the partition is in that state already (a retry whose answer was
    /// lost), else the refusal.
    async fn check_isr_change(
        &mut self,
        tp: &Tp,
        broker: i32,
        change: &IsrChange,
    ) -> Result<Result<Option<CommittedIsr>, IsrRefusal>, Stop> {
        let newer = |s: &PartitionState| {
            change.partition_epoch > s.zk_version || change.leader_epoch > s.leader_epoch
        };
        let Some(mut s) = self.states.get(tp).cloned() else {
            return Ok(Err(IsrRefusal::UnknownTopicOrPartition));
        };
        if newer(&s) {
            // A leader below IBP 2.7 may have written the state znode itself, and its
            // notification not have reached this controller yet: the znode tells.
            self.refresh_state(tp).await?;
            if let Some(fresh) = self.states.get(tp) {
                s = fresh.clone();
            }
            if newer(&s) {
                // Kafka's answer: this controller may have been replaced; the leader looks again.
                return Ok(Err(IsrRefusal::NotController));
            }
        }
        if change.leader_epoch < s.leader_epoch {
            return Ok(Err(IsrRefusal::FencedLeaderEpoch));
        }
        if s.leader != broker {
            // Kafka would write the sender in as leader; a broker that does not lead in this
            // epoch must not take leadership without an election.
            return Ok(Err(IsrRefusal::FencedLeaderEpoch));
        }
        if change.isr == s.isr && change.leader_recovery_state == 0 {
            return Ok(Ok(Some(committed(&s))));
        }
        if change.partition_epoch < s.zk_version {
            return Ok(Err(IsrRefusal::InvalidUpdateVersion));
        }
        // This controller never writes a RECOVERING state, so none can be proposed: a
        // recovering leader with more than itself in the ISR, or a recovered partition going
        // back to recovering, are both refused by Kafka.
        if change.leader_recovery_state != 0 {
            return Ok(Err(IsrRefusal::InvalidRequest));
        }
        // KIP-841: only live replicas that are not shutting down may join.
        let ineligible: Vec<i32> = change
            .isr
            .iter()
            .copied()
            .filter(|r| !self.is_live(*r))
            .collect();
        // An empty ISR is refused too (Kafka does not check): the partition could not be
        // written to or led again.
        if !ineligible.is_empty() || change.isr.is_empty() {
            tracing::info!(
                topic = tp.0,
                partition = tp.1,
                broker,
                ?ineligible,
                isr = ?change.isr,
                "AlterPartition refused: ineligible replicas in the ISR"
            );
            return Ok(Err(IsrRefusal::IneligibleReplica));
        }
        Ok(Ok(None))
    }
}

fn committed(s: &PartitionState) -> CommittedIsr {
    CommittedIsr {
        leader: s.leader,
        leader_epoch: s.leader_epoch,
        isr: s.isr.clone(),
        partition_epoch: s.zk_version,
    }
}
