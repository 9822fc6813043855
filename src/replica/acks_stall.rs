//! Why an acks=all produce was not acknowledged, said at INFO: refused for too small an ISR, or
//! not replicated in time. A produce that stalls is otherwise silent (the client just retries),
//! so this is what shows which side stopped: the leader's log end and high watermark against
//! each follower's position and how long ago it last fetched. Said once per partition state
//! (the stall, leader epoch, ISR and high watermark), not once per produce that meets it: a
//! stuck partition is retried by every producer many times a second.

use super::{Partition, Replication, now_ms};

/// What happened to an acks=all produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum AcksStall {
    /// Refused before the append: the ISR is below `min.insync.replicas` (NOT_ENOUGH_REPLICAS).
    Refused,
    /// Appended, but the ISR shrank below `min.insync.replicas` before it was acknowledged.
    ShrankAfterAppend,
    /// Appended, and the high watermark did not pass it within the request's timeout.
    TimedOut,
}

/// The partition state a stall was last reported in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct StallState {
    stall: AcksStall,
    leader_epoch: i32,
    isr: Vec<i32>,
    pending_isr: Option<Vec<i32>>,
    high_watermark: i64,
}

impl Partition {
    /// Logs `stall` at INFO unless it was already reported in this partition state. Called
    /// with the replication state held, as the check that found the stall has it; the log is
    /// only tried, so this never waits for an append.
    pub(super) fn report_acks_stall(
        &self,
        r: &Replication,
        stall: AcksStall,
        min_insync: Option<i32>,
    ) {
        let high_watermark = self.hw.borrow().high_watermark;
        let state = StallState {
            stall,
            leader_epoch: self.leader_epoch(),
            isr: r.isr.clone(),
            pending_isr: r.pending_isr.clone(),
            high_watermark,
        };
        {
            let mut last = self
                .stall_reported
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if last.as_ref() == Some(&state) {
                return;
            }
            *last = Some(state.clone());
        }
        // The log's own offsets, when free: a high watermark published behind the log's
        // shows the waiters were not told of an advance.
        let (log_end_offset, log_high_watermark) = self
            .log
            .try_lock()
            .map(|log| (log.log_end_offset(), log.high_watermark()))
            .unzip();
        let now = now_ms();
        let mut followers: Vec<String> = r
            .followers
            .iter()
            .map(|(id, f)| {
                let fetched = if f.last_fetch_ms > 0 {
                    format!("{} ms ago", now - f.last_fetch_ms)
                } else {
                    "not in this epoch".to_string()
                };
                format!("{id}: log end {}, last fetch {fetched}", f.log_end_offset)
            })
            .collect();
        followers.sort_unstable();
        let what = match stall {
            AcksStall::Refused => {
                "acks=all produce refused (NOT_ENOUGH_REPLICAS): the ISR is below min.insync.replicas"
            }
            AcksStall::ShrankAfterAppend => {
                "acks=all produce failed (NOT_ENOUGH_REPLICAS_AFTER_APPEND): the ISR shrank below min.insync.replicas"
            }
            AcksStall::TimedOut => {
                "acks=all produce timed out: the high watermark did not reach it"
            }
        };
        tracing::info!(
            topic = %self.topic,
            partition = self.partition,
            leader_epoch = state.leader_epoch,
            isr = ?state.isr,
            pending_isr = ?state.pending_isr,
            min_insync = ?min_insync,
            high_watermark,
            log_high_watermark = ?log_high_watermark,
            log_end_offset = ?log_end_offset,
            followers = ?followers,
            "{what}"
        );
    }
}
