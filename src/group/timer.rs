//! The deadline task, Kafka's heartbeat and rebalance `DelayedOperation`s and the offsets
//! retention check: one task sleeps until the earliest member session, pending member id or
//! rebalance deadline, expires what ran out, and runs the periodic offset expiry.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use super::state::GroupState;
use super::{GroupCoordinator, PendingGroupRecord};

impl GroupCoordinator {
    /// Expires members whose session ran out, pending member ids never claimed, and
    /// rebalances past their timeout. Returns the earliest deadline still ahead.
    fn expire(&self, now: Instant) -> (Option<Instant>, Vec<PendingGroupRecord>) {
        let mut groups = self.lock();
        let mut next: Option<Instant> = None;
        let mut pending_records = Vec::new();
        let mut earliest = |d: Instant| {
            if d > now {
                next = Some(next.map_or(d, |n| n.min(d)));
            }
        };
        for (id, group) in groups.iter_mut() {
            group.pending.retain(|_, d| *d > now);
            let before = group.members.len();
            // Members parked in JoinGroup or SyncGroup are alive: their request is the sign.
            group.members.retain(|m| {
                let alive =
                    m.join_waiter.is_some() || m.sync_waiter.is_some() || m.session_deadline > now;
                if !alive {
                    tracing::info!(group = id, member = m.member_id, "member session expired");
                }
                alive
            });
            let record = if group.members.len() != before {
                self.members_changed(id, group, now)
            } else {
                self.try_complete_join(id, group, now)
            };
            pending_records.extend(record);
            for d in group.pending.values() {
                earliest(*d);
            }
            for m in &group.members {
                if m.join_waiter.is_none() && m.sync_waiter.is_none() {
                    earliest(m.session_deadline);
                } else {
                    // A parked member's session restarts when its answer goes out, and nothing
                    // wakes this timer then: look again shortly rather than sleep past it.
                    earliest(now + Duration::from_millis(500));
                }
            }
            if group.state == GroupState::PreparingRebalance
                && let Some(d) = group.rebalance_deadline
            {
                earliest(d);
            }
        }
        (next, pending_records)
    }

    /// The timer task: sleeps until the earliest deadline (or a change), then expires what is
    /// due; every `offsets.retention.check.interval.ms` (first at start, as in Kafka) it also
    /// expires committed offsets.
    pub async fn run_timer(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let check_interval = Duration::from_millis(self.config.offsets_retention_check_interval_ms);
        let mut next_offsets_check = Instant::now();
        loop {
            let (next, pending) = self.expire(Instant::now());
            self.persist_groups(pending).await;
            if Instant::now() >= next_offsets_check {
                self.expire_offsets().await;
                // An interval too long for a deadline means never again.
                next_offsets_check = Instant::now()
                    .checked_add(check_interval)
                    .unwrap_or_else(|| Instant::now() + Duration::from_secs(86_400 * 365));
            }
            let sleep_to = next
                .unwrap_or_else(|| Instant::now() + Duration::from_secs(60))
                .min(next_offsets_check);
            tokio::select! {
                _ = tokio::time::sleep_until(sleep_to) => {}
                _ = self.timer.notified() => {}
                _ = shutdown.changed() => {}
            }
            if *shutdown.borrow() {
                self.release_parked();
                return;
            }
        }
    }

    /// Shutdown: parked JoinGroup/SyncGroup requests are answered NOT_COORDINATOR (clients
    /// look the coordinator up again and rejoin), as they would otherwise hold the connection
    /// drain for up to a rebalance timeout.
    fn release_parked(&self) {
        let mut groups = self.lock();
        for group in groups.values_mut() {
            group.answer_all_not_coordinator();
        }
    }
}
