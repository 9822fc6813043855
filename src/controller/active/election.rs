//! Elections asked for rather than forced by a failure: preferred leader election (the
//! leader-imbalance timer, `/admin/preferred_replica_election` from Kafka's tools, ElectLeaders)
//! and unclean election through ElectLeaders.

use std::collections::BTreeMap;

use super::{ActiveController, Stop, Tp};
use crate::controller::{PartitionRefusal, PartitionResult};
use crate::metadata::store::StoreError;
use crate::metadata::znodes::{self, PartitionListZnode};

impl ActiveController {
    /// ElectLeaders: each partition (all when `None`) gets its preferred replica as leader, or,
    /// with `unclean`, a leaderless partition gets any live replica.
    pub(super) async fn elect_leaders(
        &mut self,
        unclean: bool,
        partitions: Option<Vec<Tp>>,
    ) -> Result<Vec<(Tp, PartitionResult)>, Stop> {
        let wanted = partitions.unwrap_or_else(|| self.all_partitions());
        let mut results = Vec::new();
        let mut changed = Vec::new();
        for tp in wanted {
            let result = if !self.states.contains_key(&tp) || self.replicas(&tp).is_none() {
                PartitionResult::error(
                    PartitionRefusal::UnknownTopicOrPartition,
                    "The partition does not exist.",
                )
            } else if self.deleting.contains(&tp.0) {
                PartitionResult::error(
                    PartitionRefusal::TopicBeingDeleted,
                    "The topic is being deleted",
                )
            } else if unclean {
                self.elect_unclean(&tp, &mut changed).await?
            } else {
                self.elect_preferred(&tp, &mut changed).await?
            };
            results.push((tp, result));
        }
        self.announce(&changed);
        Ok(results)
    }

    /// Preferred election for one partition (Kafka's `PreferredReplicaPartitionLeaderElection`):
    /// the first assigned replica leads if it is live and in the ISR; the ISR stays.
    async fn elect_preferred(
        &mut self,
        tp: &Tp,
        changed: &mut Vec<Tp>,
    ) -> Result<PartitionResult, Stop> {
        let mut refreshed = false;
        for _attempt in 0..3 {
            let (Some(s), Some(replicas)) = (self.states.get(tp).cloned(), self.replicas(tp))
            else {
                break;
            };
            let Some(&preferred) = replicas.first() else {
                break;
            };
            // The leader adds a returning replica to the ISR itself, and the controller's
            // copy learns it seconds later: the znode decides, as Kafka reads it.
            if !s.isr.contains(&preferred) && !refreshed {
                refreshed = true;
                if self.refresh_state(tp).await? {
                    continue;
                }
            }
            if s.leader == preferred {
                return Ok(PartitionResult::error(
                    PartitionRefusal::ElectionNotNeeded,
                    "The preferred replica is already the leader.",
                ));
            }
            if !self.is_live(preferred) || !s.isr.contains(&preferred) {
                return Ok(PartitionResult::error(
                    PartitionRefusal::PreferredLeaderNotAvailable,
                    format!(
                        "Failed to elect leader for partition {}-{} under strategy \
                         PreferredReplicaPartitionLeaderElectionStrategy",
                        tp.0, tp.1
                    ),
                ));
            }
            if self
                .write_state(tp, preferred, s.leader_epoch + 1, s.isr.clone())
                .await?
            {
                tracing::info!(
                    topic = tp.0,
                    partition = tp.1,
                    leader = preferred,
                    "preferred replica elected"
                );
                changed.push(tp.clone());
                return Ok(PartitionResult::ok());
            }
        }
        Ok(PartitionResult::error(
            PartitionRefusal::PreferredLeaderNotAvailable,
            "the partition state kept changing",
        ))
    }

    /// Unclean election asked for by an admin: only for a partition without a live leader.
    async fn elect_unclean(
        &mut self,
        tp: &Tp,
        changed: &mut Vec<Tp>,
    ) -> Result<PartitionResult, Stop> {
        for _attempt in 0..3 {
            let (Some(s), Some(replicas)) = (self.states.get(tp).cloned(), self.replicas(tp))
            else {
                break;
            };
            if s.leader >= 0 && self.is_live(s.leader) {
                return Ok(PartitionResult::error(
                    PartitionRefusal::ElectionNotNeeded,
                    "The partition has a live leader.",
                ));
            }
            let Some((leader, isr)) = self.elect(tp, &replicas, &s, true).await? else {
                return Ok(PartitionResult::error(
                    PartitionRefusal::EligibleLeadersNotAvailable,
                    "No live replica can become leader.",
                ));
            };
            if self
                .write_state(tp, leader, s.leader_epoch + 1, isr)
                .await?
            {
                changed.push(tp.clone());
                return Ok(PartitionResult::ok());
            }
        }
        Ok(PartitionResult::error(
            PartitionRefusal::EligibleLeadersNotAvailable,
            "the partition state kept changing",
        ))
    }

    /// `/admin/preferred_replica_election`, written by Kafka's (pre-2.4) tool: the partitions
    /// it names get their preferred leader, then the request is deleted.
    pub(super) async fn on_zk_preferred_election(&mut self) -> Result<(), Stop> {
        let path = znodes::PREFERRED_REPLICA_ELECTION;
        let Some((data, _)) = self.store.get(path).await? else {
            return Ok(());
        };
        let wanted: Vec<Tp> = match data
            .as_deref()
            .map(|d| znodes::decode::<PartitionListZnode>(path, d))
        {
            Some(Ok(z)) => z
                .partitions
                .into_iter()
                .map(|p| (p.topic, p.partition))
                .filter(|tp| self.states.contains_key(tp) && !self.deleting.contains(&tp.0))
                .collect(),
            Some(Err(e)) => {
                tracing::warn!(error = %e, "ignoring unreadable preferred replica election request");
                Vec::new()
            }
            None => Vec::new(),
        };
        let mut changed = Vec::new();
        for tp in &wanted {
            let result = self.elect_preferred(tp, &mut changed).await?;
            if let Some(error) = result
                .error
                .filter(|e| *e != PartitionRefusal::ElectionNotNeeded)
            {
                tracing::warn!(
                    topic = tp.0,
                    partition = tp.1,
                    error = ?error,
                    "preferred replica election failed"
                );
            }
        }
        self.announce(&changed);
        self.fence().await?;
        match self.store.delete(path, None).await {
            Ok(()) | Err(StoreError::NoNode(_)) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Kafka's `checkAndTriggerAutoLeaderRebalance`: for each broker, the share of the
    /// partitions it is preferred leader of that another broker leads; above
    /// `leader.imbalance.per.broker.percentage`, those whose preferred replica can lead move
    /// back to it.
    pub(super) async fn check_leader_imbalance(&mut self) -> Result<(), Stop> {
        let mut by_preferred: BTreeMap<i32, Vec<Tp>> = BTreeMap::new();
        for tp in self.all_partitions() {
            if self.deleting.contains(&tp.0) {
                continue;
            }
            if let Some(&preferred) = self.replicas(&tp).as_deref().and_then(|r| r.first()) {
                by_preferred.entry(preferred).or_default().push(tp);
            }
        }
        let threshold = f64::from(self.config.leader_imbalance_per_broker_percentage) / 100.0;
        let mut changed = Vec::new();
        for (broker, tps) in by_preferred {
            let elsewhere: Vec<Tp> = tps
                .iter()
                .filter(|tp| self.states.get(*tp).is_some_and(|s| s.leader != broker))
                .cloned()
                .collect();
            let ratio = elsewhere.len() as f64 / tps.len() as f64;
            if ratio <= threshold {
                continue;
            }
            tracing::info!(
                broker,
                ratio,
                "leader imbalance: moving leaders back to their preferred replica"
            );
            for tp in elsewhere {
                let can_lead = self
                    .states
                    .get(&tp)
                    .is_some_and(|s| self.is_live(broker) && s.isr.contains(&broker));
                if can_lead {
                    self.elect_preferred(&tp, &mut changed).await?;
                }
            }
        }
        self.announce(&changed);
        Ok(())
    }
}
