//! What a coordinator (groups, transactions) does when this broker gains or loses the leadership
//! of one of its state partitions (`__consumer_offsets`, `__transaction_state`), run in the
//! background, one change at a time in the order LeaderAndIsr and StopReplica made them: Kafka's
//! `GroupCoordinator.onElection`/`onResignation` hand the load to a one-thread scheduler for the
//! same reason, so that reading a large partition does not hold the state-change lock, and with
//! it every other partition's LeaderAndIsr, while a resignation cannot overtake the load it
//! follows.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex, OnceLock, Weak};

use tokio::sync::mpsc;

/// A change of this broker's leadership of a coordinator's state partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Election {
    /// Became leader: read the partition and serve what it holds.
    Elected(i32),
    /// No longer leader (or the replica stopped): forget what it held.
    Resigned(i32),
}

/// The coordinator's side: what each change does. `elected` may take long (it reads the
/// partition); meanwhile the coordinator answers the partition's requests with
/// COORDINATOR_LOAD_IN_PROGRESS.
pub trait ElectionHandler: Send + Sync + 'static {
    fn elected(self: Arc<Self>, partition: i32) -> impl Future<Output = ()> + Send;
    fn resigned(&self, partition: i32);
}

/// The queue of changes and the task that works through it, started on first use. The task
/// holds the coordinator weakly and ends with it (its queue's sender is the coordinator's).
#[derive(Default)]
pub struct ElectionTasks {
    queue: OnceLock<mpsc::UnboundedSender<Election>>,
}

impl ElectionTasks {
    /// Queues `change` for `owner`; returns at once.
    pub fn schedule<H: ElectionHandler>(&self, owner: &Arc<H>, change: Election) {
        let queue = self.queue.get_or_init(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            tokio::spawn(work(Arc::downgrade(owner), rx));
            tx
        });
        if queue.send(change).is_err() {
            // Only when the task is gone, i.e. the coordinator is being dropped.
            tracing::debug!(?change, "coordinator gone; leadership change dropped");
        }
    }
}

async fn work<H: ElectionHandler>(owner: Weak<H>, mut rx: mpsc::UnboundedReceiver<Election>) {
    while let Some(change) = rx.recv().await {
        let Some(owner) = owner.upgrade() else { return };
        match change {
            Election::Elected(partition) => owner.elected(partition).await,
            Election::Resigned(partition) => owner.resigned(partition),
        }
    }
}

/// The state partitions a coordinator has been elected for and not yet read, counted per
/// election: a partition elected again before its first load ran stays loading until the last
/// queued load is done.
#[derive(Default)]
pub struct Loading(Mutex<BTreeMap<i32, u32>>);

impl Loading {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<i32, u32>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn begin(&self, partition: i32) {
        *self.lock().entry(partition).or_default() += 1;
    }

    /// One load of `partition` is over (done, failed, or not to happen after all).
    pub fn end(&self, partition: i32) {
        let mut loading = self.lock();
        if let Some(n) = loading.get_mut(&partition) {
            *n -= 1;
            if *n == 0 {
                loading.remove(&partition);
            }
        }
    }

    pub fn contains(&self, partition: i32) -> bool {
        self.lock().contains_key(&partition)
    }

    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partition_elected_twice_loads_until_both_loads_end() {
        let loading = Loading::default();
        loading.begin(3);
        loading.begin(3);
        loading.end(3);
        assert!(loading.contains(3));
        loading.end(3);
        assert!(!loading.contains(3));
        assert!(loading.is_empty());
        // An end without a begin (a test loading by hand) is harmless.
        loading.end(3);
        assert!(loading.is_empty());
    }
}
