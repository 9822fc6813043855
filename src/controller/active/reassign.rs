//! Partition reassignment, as Kafka's `KafkaController.onPartitionReassignment`: the topic
//! znode records the full replica set (origin and target) with `adding_replicas` and
//! `removing_replicas`; new replicas are started as followers; once every target replica is in
//! the ISR, leadership moves into the target set if needed, the removed replicas are stopped and
//! deleted, and the assignment becomes the target. Requests come from the
//! AlterPartitionReassignments API or the legacy `/admin/reassign_partitions` znode.

use std::collections::{BTreeMap, BTreeSet};

use super::{ActiveController, Stop, Tp};
use crate::controller::{PartitionRefusal, PartitionResult, Reassignment};
use crate::metadata::store::StoreError;
use crate::metadata::znodes::{self, ReassignPartitionsZnode, TopicZnode};

/// Kafka's `ReplicaAssignment`: the full replica set and the replicas a reassignment adds and
/// removes.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FullAssignment {
    replicas: Vec<i32>,
    adding: Vec<i32>,
    removing: Vec<i32>,
}

impl FullAssignment {
    fn origin(&self) -> Vec<i32> {
        without(&self.replicas, &self.adding)
    }
    fn target(&self) -> Vec<i32> {
        without(&self.replicas, &self.removing)
    }
    fn is_reassigning(&self) -> bool {
        !self.adding.is_empty() || !self.removing.is_empty()
    }
    /// Target replicas first, in the order asked for, then the origin replicas not in it.
    fn reassign_to(&self, target: &[i32]) -> FullAssignment {
        let origin = self.origin();
        let mut replicas: Vec<i32> = Vec::new();
        for r in target.iter().chain(origin.iter()) {
            if !replicas.contains(r) {
                replicas.push(*r);
            }
        }
        FullAssignment {
            adding: without(&replicas, &origin),
            removing: without(&replicas, target),
            replicas,
        }
    }
}

fn without(from: &[i32], remove: &[i32]) -> Vec<i32> {
    from.iter()
        .copied()
        .filter(|r| !remove.contains(r))
        .collect()
}

impl ActiveController {
    pub(super) fn reassigning(&self) -> Vec<Tp> {
        self.topics
            .iter()
            .flat_map(|(t, s)| {
                s.adding
                    .keys()
                    .chain(s.removing.keys())
                    .map(move |p| (t.clone(), *p))
            })
            .collect::<BTreeSet<Tp>>()
            .into_iter()
            .collect()
    }

    fn full_assignment(&self, tp: &Tp) -> Option<FullAssignment> {
        let t = self.topics.get(&tp.0)?;
        Some(FullAssignment {
            replicas: t.assignment.get(&tp.1)?.clone(),
            adding: t.adding.get(&tp.1).cloned().unwrap_or_default(),
            removing: t.removing.get(&tp.1).cloned().unwrap_or_default(),
        })
    }

    /// AlterPartitionReassignments: a target per partition, or `None` to cancel (the origin
    /// replicas become the target again).
    pub(super) async fn alter_reassignments(
        &mut self,
        partitions: Vec<(Tp, Option<Vec<i32>>)>,
    ) -> Result<Vec<(Tp, PartitionResult)>, Stop> {
        let mut results = Vec::new();
        let mut accepted = Vec::new();
        for (tp, target) in partitions {
            let current = match self.full_assignment(&tp) {
                Some(c) if !self.deleting.contains(&tp.0) => c,
                _ => {
                    results.push((
                        tp,
                        PartitionResult::error(
                            PartitionRefusal::UnknownTopicOrPartition,
                            "The partition does not exist.",
                        ),
                    ));
                    continue;
                }
            };
            let full = match target {
                Some(target) => match self.validate_replicas(&current, &target) {
                    Err(message) => {
                        results.push((
                            tp,
                            PartitionResult::error(
                                PartitionRefusal::InvalidReplicaAssignment,
                                message,
                            ),
                        ));
                        continue;
                    }
                    Ok(()) => current.reassign_to(&target),
                },
                None if current.is_reassigning() => current.reassign_to(&current.origin()),
                None => {
                    results.push((
                        tp,
                        PartitionResult::error(
                            PartitionRefusal::NoReassignmentInProgress,
                            "No reassignment is in progress for this partition.",
                        ),
                    ));
                    continue;
                }
            };
            accepted.push((tp, full));
        }
        // The latest request wins over one made through ZooKeeper.
        let ids: BTreeSet<Tp> = accepted.iter().map(|(tp, _)| tp.clone()).collect();
        self.remove_from_zk_reassignment(|tp| ids.contains(tp))
            .await?;
        for (tp, full) in accepted {
            self.on_partition_reassignment(&tp, full).await?;
            results.push((tp, PartitionResult::ok()));
        }
        Ok(results)
    }

    /// Kafka's `validateReplicas`.
    fn validate_replicas(&self, current: &FullAssignment, target: &[i32]) -> Result<(), String> {
        let unique: BTreeSet<i32> = target.iter().copied().collect();
        if target.is_empty() {
            return Err("Empty replica list specified in partition reassignment.".into());
        }
        if unique.len() != target.len() {
            return Err(format!(
                "Duplicate replica ids in partition reassignment replica list: {target:?}"
            ));
        }
        if target.iter().any(|r| *r < 0) {
            return Err(format!("Invalid broker id in replica list: {target:?}"));
        }
        let adding = current.reassign_to(target).adding;
        if adding.iter().any(|r| !self.is_live(*r)) {
            let live: Vec<i32> = self
                .brokers
                .keys()
                .copied()
                .filter(|b| self.is_live(*b))
                .collect();
            return Err(format!(
                "Replica assignment has brokers that are not alive. Replica list: {adding:?}, \
                 live broker list: {live:?}"
            ));
        }
        Ok(())
    }

    /// ListPartitionReassignments: the given partitions that are being reassigned, or all.
    pub(super) fn list_reassignments(&self, partitions: Option<Vec<Tp>>) -> Vec<Reassignment> {
        partitions
            .unwrap_or_else(|| self.reassigning())
            .into_iter()
            .filter_map(|tp| {
                let full = self.full_assignment(&tp)?;
                full.is_reassigning().then_some(Reassignment {
                    partition: tp,
                    replicas: full.replicas,
                    adding: full.adding,
                    removing: full.removing,
                })
            })
            .collect()
    }

    /// `/admin/reassign_partitions` (Kafka's tools before 2.4, and `--zookeeper` after): starts
    /// the reassignments it lists when it is created. Returns the partitions started; those
    /// that cannot be are taken out of the znode.
    pub(super) async fn on_zk_reassignment(&mut self) -> Result<BTreeSet<Tp>, Stop> {
        let path = znodes::REASSIGN_PARTITIONS;
        let Some((data, stat)) = self.store.get(path).await? else {
            self.zk_reassignment_seen = None;
            return Ok(BTreeSet::new());
        };
        // Kafka watches this znode for creation only: its own rewrites (a partition done) and
        // the tool's must not restart what is in progress.
        if self.zk_reassignment_seen == Some(stat.czxid) {
            return Ok(BTreeSet::new());
        }
        self.zk_reassignment_seen = Some(stat.czxid);
        let wanted: Vec<(Tp, Vec<i32>)> = match data
            .as_deref()
            .map(|d| znodes::decode::<ReassignPartitionsZnode>(path, d))
        {
            Some(Ok(z)) => z
                .partitions
                .into_iter()
                .map(|p| ((p.topic, p.partition), p.replicas))
                .collect(),
            Some(Err(e)) => {
                tracing::warn!(error = %e, "ignoring unreadable {path}");
                Vec::new()
            }
            None => Vec::new(),
        };
        let mut started = BTreeSet::new();
        let mut failed = BTreeSet::new();
        for (tp, target) in wanted {
            let current = match self.full_assignment(&tp) {
                Some(c) if !self.deleting.contains(&tp.0) => c,
                _ => {
                    tracing::warn!(
                        topic = tp.0,
                        partition = tp.1,
                        "cannot reassign an unknown partition"
                    );
                    failed.insert(tp);
                    continue;
                }
            };
            if let Err(why) = self.validate_replicas(&current, &target) {
                tracing::warn!(topic = tp.0, partition = tp.1, why, "invalid reassignment");
                failed.insert(tp);
                continue;
            }
            self.on_partition_reassignment(&tp, current.reassign_to(&target))
                .await?;
            started.insert(tp);
        }
        if !failed.is_empty() || started.is_empty() {
            self.remove_from_zk_reassignment(|tp| failed.contains(tp) || !started.contains(tp))
                .await?;
        }
        Ok(started)
    }

    /// Rewrites `/admin/reassign_partitions` without the partitions `drop` selects, deleting
    /// it when none is left.
    async fn remove_from_zk_reassignment(
        &mut self,
        drop: impl Fn(&Tp) -> bool,
    ) -> Result<(), Stop> {
        let path = znodes::REASSIGN_PARTITIONS;
        let Some((data, stat)) = self.store.get(path).await? else {
            return Ok(());
        };
        let mut z = data
            .as_deref()
            .and_then(|d| znodes::decode::<ReassignPartitionsZnode>(path, d).ok())
            .unwrap_or(ReassignPartitionsZnode {
                version: 1,
                partitions: Vec::new(),
            });
        let before = z.partitions.len();
        z.partitions
            .retain(|p| !drop(&(p.topic.clone(), p.partition)));
        if z.partitions.len() == before && before > 0 {
            return Ok(());
        }
        self.fence().await?;
        let result = if z.partitions.is_empty() {
            self.zk_reassignment_seen = None;
            self.store.delete(path, Some(stat.version)).await
        } else {
            self.store
                .set(path, Some(znodes::encode(&z)), Some(stat.version))
                .await
                .map(|_| ())
        };
        match result {
            // The tool rewrote it meanwhile: what it wrote is read on its event.
            Ok(()) | Err(StoreError::NoNode(_)) | Err(StoreError::BadVersion(_)) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Reassignments found in the topic znodes at failover carry on, except `skip` (already
    /// restarted from `/admin/reassign_partitions`).
    pub(super) async fn resume_reassignments(&mut self, skip: &BTreeSet<Tp>) -> Result<(), Stop> {
        for tp in self.reassigning() {
            if !skip.contains(&tp) {
                self.continue_reassignment(&tp).await?;
            }
        }
        Ok(())
    }

    pub(super) async fn continue_reassignment(&mut self, tp: &Tp) -> Result<(), Stop> {
        match self.full_assignment(tp) {
            Some(full) if full.is_reassigning() => self.on_partition_reassignment(tp, full).await,
            _ => Ok(()),
        }
    }

    /// An ISR changed: the reassignment completes once every target replica is in it.
    pub(super) async fn maybe_complete_reassignment(&mut self, tp: &Tp) -> Result<(), Stop> {
        let Some(full) = self.full_assignment(tp) else {
            return Ok(());
        };
        if full.is_reassigning() && self.reassignment_caught_up(tp, &full).await? {
            tracing::info!(topic = tp.0, partition = tp.1, target = ?full.target(), "new replicas caught up");
            self.on_partition_reassignment(tp, full).await?;
        }
        Ok(())
    }

    /// Whether every target replica is in the ISR, as the state znode says now.
    async fn reassignment_caught_up(
        &mut self,
        tp: &Tp,
        full: &FullAssignment,
    ) -> Result<bool, Stop> {
        if !full.is_reassigning() {
            return Ok(true);
        }
        let Some(s) = self.read_state(&tp.0, tp.1).await? else {
            return Ok(false);
        };
        let caught_up = full.target().iter().all(|r| s.isr.contains(r));
        self.states.insert(tp.clone(), s);
        Ok(caught_up)
    }

    /// Kafka's `onPartitionReassignment` (phases U, A and B of its comment).
    async fn on_partition_reassignment(
        &mut self,
        tp: &Tp,
        full: FullAssignment,
    ) -> Result<(), Stop> {
        // U: record the reassignment first, so that a new controller can resume it.
        let current = self.full_assignment(tp);
        if current.as_ref() != Some(&full) {
            self.write_assignment(tp, &full).await?;
            // A reassignment replaced or cancelled: replicas it was adding that the new one does
            // not want go now.
            if let Some(current) = current.filter(FullAssignment::is_reassigning) {
                for r in without(&current.replicas, &full.replicas) {
                    self.remove_replica(tp, r).await?;
                }
            }
            self.store
                .watch_node(&znodes::partition_state_path(&tp.0, tp.1))
                .await?;
        }
        if !self.reassignment_caught_up(tp, &full).await? {
            // A: the leader learns the new replica set (epoch bumped so it takes it), and the
            // new replicas start following.
            if self
                .change_leadership(tp, |_, s| Some((s.leader, s.isr.clone())))
                .await?
            {
                self.announce(std::slice::from_ref(tp));
            }
            tracing::info!(topic = tp.0, partition = tp.1, adding = ?full.adding, removing = ?full.removing, "reassignment waits for new replicas to join the ISR");
            return Ok(());
        }
        // B: the target is in sync.
        let target = full.target();
        let done = FullAssignment {
            replicas: target.clone(),
            adding: Vec::new(),
            removing: Vec::new(),
        };
        self.set_assignment_in_memory(tp, &done);
        // B3: a leader outside the target (or dead) gives way to the first live in-sync target
        // replica; otherwise the epoch moves so the leader takes the smaller replica set.
        let moved = self
            .change_leadership(tp, |me, s| {
                let leader = if target.contains(&s.leader) && me.is_live(s.leader) {
                    s.leader
                } else {
                    *target
                        .iter()
                        .find(|r| me.is_live(**r) && s.isr.contains(r))?
                };
                Some((leader, s.isr.clone()))
            })
            .await?;
        if moved {
            self.send_leader_and_isr(std::slice::from_ref(tp), None);
        } else {
            tracing::warn!(
                topic = tp.0,
                partition = tp.1,
                "no live in-sync target replica can lead"
            );
        }
        // B4, B5: the removed replicas leave the ISR and are deleted.
        for r in &full.removing {
            self.remove_replica(tp, *r).await?;
        }
        // B6, B7: the target is the assignment; the legacy request forgets the partition.
        self.write_assignment(tp, &done).await?;
        let tp_done = tp.clone();
        self.remove_from_zk_reassignment(|p| *p == tp_done).await?;
        // B8
        let live: Vec<i32> = self.brokers.keys().copied().collect();
        self.send_update_metadata(Some(std::slice::from_ref(tp)), &live);
        tracing::info!(topic = tp.0, partition = tp.1, replicas = ?target, "reassignment completed");
        self.retry_deletions().await
    }

    /// A replica leaves the partition: out of the ISR (OfflineReplica), then its log is deleted
    /// (StopReplica with delete).
    async fn remove_replica(&mut self, tp: &Tp, replica: i32) -> Result<(), Stop> {
        self.take_replica_offline(replica, std::slice::from_ref(tp))
            .await?;
        if self.brokers.contains_key(&replica) {
            let epoch = self.states.get(tp).map_or(-1, |s| s.leader_epoch);
            self.send_stop_replica(replica, &[(tp.clone(), epoch)], true);
        }
        Ok(())
    }

    fn set_assignment_in_memory(&mut self, tp: &Tp, full: &FullAssignment) {
        let Some(t) = self.topics.get_mut(&tp.0) else {
            return;
        };
        t.assignment.insert(tp.1, full.replicas.clone());
        for (map, list) in [
            (&mut t.adding, &full.adding),
            (&mut t.removing, &full.removing),
        ] {
            if list.is_empty() {
                map.remove(&tp.1);
            } else {
                map.insert(tp.1, list.clone());
            }
        }
    }

    /// Writes the topic znode with `tp`'s new full assignment (and the context with it).
    async fn write_assignment(&mut self, tp: &Tp, full: &FullAssignment) -> Result<(), Stop> {
        self.set_assignment_in_memory(tp, full);
        let Some(t) = self.topics.get(&tp.0) else {
            return Ok(());
        };
        let strings = |m: &BTreeMap<i32, Vec<i32>>| -> BTreeMap<String, Vec<i32>> {
            m.iter().map(|(p, r)| (p.to_string(), r.clone())).collect()
        };
        let z = TopicZnode {
            version: 3,
            partitions: strings(&t.assignment),
            adding_replicas: strings(&t.adding),
            removing_replicas: strings(&t.removing),
            topic_id: (!t.id.is_nil()).then(|| znodes::uuid_base64(&t.id)),
        };
        self.fence().await?;
        self.store
            .set(&znodes::topic_path(&tp.0), Some(znodes::encode(&z)), None)
            .await?;
        tracing::info!(topic = tp.0, partition = tp.1, replicas = ?full.replicas, adding = ?full.adding, removing = ?full.removing, "updated assignment");
        Ok(())
    }
}
