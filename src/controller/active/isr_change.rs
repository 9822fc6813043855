//! ISR changes made by partition leaders (Kafka's IBP < 2.7-IV2 path): the leader writes the
//! partition state znode itself and leaves a notification under `/isr_change_notification`; the
//! controller re-reads the named states and tells every broker. Also the controller's reaction
//! to topic config changes that allow unclean elections.

use std::collections::BTreeSet;

use super::{ActiveController, Stop, Tp};
use crate::metadata::store::StoreError;
use crate::metadata::znodes::{self, PartitionListZnode};

impl ActiveController {
    /// Kafka's `processIsrChangeNotification`: every notification present is read, the states
    /// of the partitions they name are re-read into the context and sent to every broker in
    /// UpdateMetadata, and the notifications are deleted. Reassignments waiting for an ISR to
    /// grow are checked on the way.
    pub(super) async fn on_isr_change_notifications(&mut self) -> Result<(), Stop> {
        let mut names: Vec<String> = self
            .store
            .children(znodes::ISR_CHANGE_NOTIFICATION)
            .await?
            .unwrap_or_default()
            .into_iter()
            .filter(|n| n.starts_with(znodes::ISR_CHANGE_PREFIX))
            .collect();
        if names.is_empty() {
            return Ok(());
        }
        names.sort();
        let mut partitions: BTreeSet<Tp> = BTreeSet::new();
        for name in &names {
            let path = format!("{}/{name}", znodes::ISR_CHANGE_NOTIFICATION);
            let Some((Some(data), _)) = self.store.get(&path).await? else {
                continue;
            };
            match znodes::decode::<PartitionListZnode>(&path, &data) {
                Ok(z) => {
                    partitions.extend(z.partitions.into_iter().map(|p| (p.topic, p.partition)))
                }
                Err(e) => tracing::warn!(error = %e, "ignoring unreadable ISR change notification"),
            }
        }
        let known: Vec<Tp> = partitions
            .into_iter()
            .filter(|tp| self.topics.contains_key(&tp.0))
            .collect();
        let mut changed = Vec::new();
        let fresh = self.read_states(&known).await?;
        for (tp, s) in known.into_iter().zip(fresh) {
            if let Some(s) = s {
                self.states.insert(tp.clone(), s);
                changed.push(tp);
            }
        }
        if !changed.is_empty() {
            tracing::info!(partitions = ?changed, "ISR changes reported by leaders");
            let live: Vec<i32> = self.brokers.keys().copied().collect();
            self.send_update_metadata(Some(&changed), &live);
        }
        self.delete_isr_change_notifications(Some(&names)).await?;
        for tp in changed {
            if self.is_reassigning(&tp) {
                self.maybe_complete_reassignment(&tp).await?;
            }
        }
        Ok(())
    }

    /// Deletes the given notifications, or all of them (at failover, when they are stale).
    pub(super) async fn delete_isr_change_notifications(
        &self,
        names: Option<&[String]>,
    ) -> Result<(), Stop> {
        let names: Vec<String> = match names {
            Some(n) => n.to_vec(),
            None => self
                .store
                .children(znodes::ISR_CHANGE_NOTIFICATION)
                .await?
                .unwrap_or_default(),
        };
        if names.is_empty() {
            return Ok(());
        }
        self.fence().await?;
        for name in names {
            let path = format!("{}/{name}", znodes::ISR_CHANGE_NOTIFICATION);
            match self.store.delete(&path, None).await {
                Ok(()) | Err(StoreError::NoNode(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// A config changed (`/config/changes`). Kafka's controller hears of topics whose
    /// `unclean.leader.election.enable` became true and retries their offline partitions; here
    /// every leaderless partition is retried, each election reading its topic's config.
    pub(super) async fn on_config_change(&mut self) -> Result<(), Stop> {
        let offline: Vec<Tp> = self
            .states
            .iter()
            .filter(|(tp, s)| s.leader < 0 && !self.deleting.contains(&tp.0))
            .map(|(tp, _)| tp.clone())
            .collect();
        if offline.is_empty() {
            return Ok(());
        }
        self.bring_online(offline).await
    }
}
