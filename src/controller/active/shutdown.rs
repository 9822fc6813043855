//! Controlled shutdown (Kafka's `doControlledShutdown`) and the OfflineReplica transition it
//! shares with reassignment: a replica is stopped and taken out of the ISR by the controller.

use crate::controller::ControllerError;

use super::{ActiveController, NO_LEADER, Stop, Tp};

impl ActiveController {
    /// Broker `broker` is about to stop. Partitions with other replicas that it leads get a
    /// new leader (the first replica in assignment order that is live, in the ISR and not
    /// shutting down); partitions it follows lose it from their ISR. Answers the partitions it
    /// still leads: those nobody else could take (a single replica, or no other in-sync one).
    pub(super) async fn controlled_shutdown(
        &mut self,
        broker: i32,
        broker_epoch: i64,
    ) -> Result<Result<Vec<Tp>, ControllerError>, Stop> {
        let Some(known) = self.brokers.get(&broker) else {
            return Ok(Err(ControllerError::BrokerNotAvailable(broker)));
        };
        // -1: a request without an epoch (versions 0-1), accepted as Kafka does.
        if broker_epoch != -1 && broker_epoch < known.epoch {
            tracing::info!(
                broker,
                broker_epoch,
                current = known.epoch,
                "controlled shutdown from an old registration refused"
            );
            return Ok(Err(ControllerError::StaleBrokerEpoch {
                broker,
                request: broker_epoch,
                current: known.epoch,
            }));
        }
        self.shutting_down.insert(broker);
        let hosted: Vec<Tp> = self
            .states
            .keys()
            .filter(|tp| !self.deleting.contains(&tp.0))
            .filter(|tp| {
                self.replicas(tp)
                    .is_some_and(|r| r.len() > 1 && r.contains(&broker))
            })
            .cloned()
            .collect();
        let (led, followed): (Vec<Tp>, Vec<Tp>) = hosted
            .into_iter()
            .partition(|tp| self.states.get(tp).is_some_and(|s| s.leader == broker));
        let mut moved = Vec::new();
        for tp in led {
            let decided = self
                .change_leadership(&tp, |me, s| {
                    if s.leader != broker {
                        return None;
                    }
                    let isr: Vec<i32> = s
                        .isr
                        .iter()
                        .copied()
                        .filter(|r| !me.shutting_down.contains(r))
                        .collect();
                    let leader = *me
                        .replicas(&tp)?
                        .iter()
                        .find(|r| me.is_live(**r) && isr.contains(r))?;
                    Some((leader, isr))
                })
                .await?;
            if decided {
                moved.push(tp);
            }
        }
        // The new leaders, and the shutting-down broker (a follower now), hear it first.
        self.announce(&moved);
        self.take_replica_offline(broker, &followed).await?;
        let remaining: Vec<Tp> = self
            .states
            .iter()
            .filter(|(_, s)| s.leader == broker)
            .map(|(tp, _)| tp.clone())
            .collect();
        tracing::info!(
            broker,
            moved = moved.len(),
            left_isr = followed.len(),
            remaining = remaining.len(),
            "controlled shutdown"
        );
        Ok(Ok(remaining))
    }

    /// Kafka's OfflineReplica transition for `broker`'s replicas of `partitions`: StopReplica
    /// (keeping the log) to it, then out of the ISR (leader -1 if it led; the last ISR member
    /// stays) with the leader epoch bumped, LeaderAndIsr to the other replicas and
    /// UpdateMetadata to every broker.
    pub(super) async fn take_replica_offline(
        &mut self,
        broker: i32,
        partitions: &[Tp],
    ) -> Result<(), Stop> {
        if partitions.is_empty() {
            return Ok(());
        }
        let stops: Vec<(Tp, i32)> = partitions
            .iter()
            .filter_map(|tp| Some((tp.clone(), self.states.get(tp)?.leader_epoch)))
            .collect();
        if self.brokers.contains_key(&broker) {
            self.send_stop_replica(broker, &stops, false);
        }
        let mut changed = Vec::new();
        for tp in partitions {
            let decided = self
                .change_leadership(tp, |_, s| {
                    if !s.isr.contains(&broker) && s.leader != broker {
                        return None;
                    }
                    let leader = if s.leader == broker {
                        NO_LEADER
                    } else {
                        s.leader
                    };
                    let isr: Vec<i32> = if s.isr == [broker] {
                        s.isr.clone()
                    } else {
                        s.isr.iter().copied().filter(|r| *r != broker).collect()
                    };
                    Some((leader, isr))
                })
                .await?;
            if decided {
                changed.push(tp.clone());
            }
        }
        if !changed.is_empty() {
            self.send_leader_and_isr_to(&changed, |r| r != broker);
            let live: Vec<i32> = self.brokers.keys().copied().collect();
            self.send_update_metadata(Some(&changed), &live);
        }
        Ok(())
    }
}
