//! ISR changes the leader makes itself (Kafka's `Partition.maybeShrinkIsr` on the
//! `isr-expiration` schedule, and expansions proposed by follower fetches): each proposal is
//! written to the state znode in the background and takes effect here once written.

use std::sync::Arc;

use super::{IsrProposal, Partition, ReplicaManager, blocking, now_ms};

impl ReplicaManager {
    /// Writes an ISR change to the partition's state znode (conditional on the partition
    /// epoch) in the background; on success the new ISR takes effect here.
    pub fn propose_isr(self: &Arc<Self>, p: &Arc<Partition>, proposal: IsrProposal) {
        let me = self.clone();
        let p = p.clone();
        tokio::spawn(async move {
            let written = me.isr.write(&p.topic, p.partition, &proposal).await;
            let lag = me.lag_max_ms();
            let part = p.clone();
            let moved = blocking(move || {
                let mut r = part.replication();
                r.settle(&proposal, written);
                let mut log = part.log.lock();
                Ok(part.maybe_increment_hw(&r, &mut log, now_ms(), lag))
            })
            .await;
            if let Ok(Some(hw)) = moved {
                p.publish_hw(hw);
            }
        });
    }

    /// Kafka's `maybeShrinkIsr`, every `replica.lag.time.max.ms / 2`: followers in the ISR that
    /// have not caught up with the leader's log end for that long are removed.
    pub(super) async fn run_isr_shrink(
        self: Arc<Self>,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) {
        loop {
            let period = std::time::Duration::from_millis((self.lag_max_ms() / 2).max(10) as u64);
            tokio::select! {
                _ = tokio::time::sleep(period) => {}
                _ = shutdown.changed() => return,
            }
            if *shutdown.borrow() {
                return;
            }
            let lag = self.lag_max_ms();
            for p in self.hosted().into_iter().filter(|p| p.is_leader()) {
                let part = p.clone();
                let proposal = blocking(move || {
                    let now = now_ms();
                    let mut r = part.replication();
                    if r.pending_isr.is_some() || r.stale {
                        return Ok(None);
                    }
                    let leo = part.log.lock().log_end_offset();
                    let me = part.local_broker;
                    let out: Vec<i32> = r
                        .isr
                        .iter()
                        .copied()
                        .filter(|id| *id != me)
                        .filter(|id| {
                            r.followers
                                .get(id)
                                .is_none_or(|f| !f.is_caught_up(leo, now, lag))
                        })
                        .collect();
                    if out.is_empty() {
                        return Ok(None);
                    }
                    let isr: Vec<i32> = r.isr.iter().copied().filter(|id| !out.contains(id)).collect();
                    tracing::info!(topic = %part.topic, partition = part.partition, ?out, ?isr, "shrinking ISR: followers lagging");
                    // The current (larger) ISR stays in force for HW and acks until written.
                    let in_force = r.isr.clone();
                    Ok(Some(r.propose(isr, in_force, part.leader_epoch())))
                })
                .await;
                if let Ok(Some(proposal)) = proposal {
                    self.propose_isr(&p, proposal);
                }
            }
        }
    }
}
