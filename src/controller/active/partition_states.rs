//! The partition state znodes (`/brokers/topics/<t>/partitions/<p>/state`) as the controller
//! reads and writes them: reads pipelined into the context, writes conditional on the partition
//! epoch and fenced on the controller epoch, lost races re-read. Separate because it is the one
//! place the controller's decisions reach the store; deciding lives in the other files.

use std::collections::BTreeSet;
use std::sync::Arc;

use futures::stream::{self, StreamExt, TryStreamExt};

use super::{ActiveController, Decision, PartitionState, Stop, Tp};
use crate::metadata::MetadataStore;
use crate::metadata::store::{CreateMode, StoreError, StoreResult, create_recursive, ensure_path};
use crate::metadata::znodes::{self, PartitionStateZnode};

/// Store requests the controller keeps in flight at once when it reads or writes many partition
/// states: ZooKeeper answers pipelined requests on one connection in order, and the embedded
/// store commits whatever is queued with one fsync, so a decision about 10,000 partitions costs
/// a few round trips rather than 10,000. Below ZooKeeper's `globalOutstandingLimit` (1,000),
/// past which it stops reading the connection.
const IN_FLIGHT: usize = 768;
/// Partition state writes between two checks of the controller epoch (see `fence`).
const WRITES_PER_FENCE: usize = 1000;
/// Chunks of `WRITES_PER_FENCE` writes in flight at once (see `write_states`).
const CHUNKS_AT_ONCE: usize = 2;

impl ActiveController {
    /// Kafka fences every controller write with a check of `/controller_epoch`'s version in the
    /// same ZooKeeper multi. zookeeper-async has no multi, so the check comes just before the
    /// write: a newer controller is still noticed, with a window of one round trip.
    pub(super) async fn fence(&self) -> Result<(), Stop> {
        fence_on(self.store.clone(), self.epoch_zk_version).await
    }

    pub(super) async fn read_state(
        &self,
        topic: &str,
        p: i32,
    ) -> Result<Option<PartitionState>, Stop> {
        read_state(self.store.clone(), topic.to_string(), p).await
    }

    /// `read_state` for many partitions, the reads pipelined; in the order of `tps`.
    pub(super) async fn read_states(
        &self,
        tps: &[Tp],
    ) -> Result<Vec<Option<PartitionState>>, Stop> {
        read_states_through(&self.sessions(), tps).await
    }

    /// The controller's session, and during failover the extra ones it opened after it was
    /// elected (see `MetadataStore::more_sessions`) to spread many reads and writes over.
    fn sessions(&self) -> Vec<Arc<dyn MetadataStore>> {
        std::iter::once(self.store.clone())
            .chain(self.helpers.iter().cloned())
            .collect()
    }

    /// Re-reads partitions' states into the context.
    pub(super) async fn refresh_states(&mut self, tps: &[Tp]) -> Result<(), Stop> {
        let read = self.read_states(tps).await?;
        for (tp, fresh) in tps.iter().zip(read) {
            if let Some(fresh) = fresh {
                self.states.insert(tp.clone(), fresh);
            }
        }
        Ok(())
    }

    /// Re-reads a partition's state into the context; true when it had changed.
    pub(super) async fn refresh_state(&mut self, tp: &Tp) -> Result<bool, Stop> {
        let Some(fresh) = self.read_state(&tp.0, tp.1).await? else {
            return Ok(false);
        };
        let changed = self
            .states
            .get(tp)
            .is_none_or(|s| s.zk_version != fresh.zk_version);
        self.states.insert(tp.clone(), fresh);
        Ok(changed)
    }

    /// Writes a partition's new leader and ISR (see `write_states`). Returns false when the
    /// write lost a race.
    pub(super) async fn write_state(
        &mut self,
        tp: &Tp,
        leader: i32,
        leader_epoch: i32,
        isr: Vec<i32>,
    ) -> Result<bool, Stop> {
        let decision = Decision {
            tp: tp.clone(),
            leader,
            leader_epoch,
            isr,
        };
        let won = self.write_states(std::slice::from_ref(&decision)).await?;
        Ok(won.first().copied().unwrap_or(false))
    }

    /// Writes partitions' new leaders and ISRs: created when new, else conditional on the
    /// partition epoch the controller knows. The writes are pipelined (Kafka's controller sends
    /// them as one batch of asynchronous requests too). For each decision, in order: false when
    /// its write lost a race (the state was re-read into the context, to be decided again).
    pub(super) async fn write_states(&mut self, decisions: &[Decision]) -> Result<Vec<bool>, Stop> {
        let store = self.store.clone();
        // The parents of new state znodes (`.../partitions/<p>`) are made first, so that each
        // state is then one create rather than a walk down the tree.
        let new: Vec<&Tp> = decisions
            .iter()
            .map(|d| &d.tp)
            .filter(|tp| !self.states.contains_key(*tp))
            .collect();
        if !new.is_empty() {
            self.fence().await?;
            let topics: BTreeSet<&str> = new.iter().map(|tp| tp.0.as_str()).collect();
            let parents: Vec<_> = topics
                .into_iter()
                .map(|t| {
                    let path = format!("{}/partitions", znodes::topic_path(t));
                    let store = store.clone();
                    async move { ensure_path(store.as_ref(), &path).await }
                })
                .collect();
            pipelined(parents).try_collect::<Vec<()>>().await?;
            let parents: Vec<_> = new
                .into_iter()
                .map(|tp| {
                    let path = format!("{}/partitions/{}", znodes::topic_path(&tp.0), tp.1);
                    let store = store.clone();
                    async move {
                        match store.create(&path, None, CreateMode::Persistent).await {
                            Ok(_) | Err(StoreError::NodeExists(_)) => Ok(()),
                            Err(e) => Err(e),
                        }
                    }
                })
                .collect();
            pipelined(parents).try_collect::<Vec<()>>().await?;
        }
        // Conditional writes go through every session, round robin: the version check is the
        // server's, whichever session asks. Creations stay on the controller's own session,
        // after the parents it made.
        let sessions = self.sessions();
        // Two chunks at once, each fenced before its writes are sent: waiting for one chunk's
        // last answer before fencing the next left the server idle ten times per 10,000
        // writes, each for about one flush of its log.
        let epoch = self.epoch;
        let chunks: Vec<_> = decisions
            .chunks(WRITES_PER_FENCE)
            .map(|chunk| {
                let writes: Vec<_> = chunk
                    .iter()
                    .enumerate()
                    .map(|(i, d)| {
                        let known_version = self.states.get(&d.tp).map(|s| s.zk_version);
                        let z = PartitionStateZnode {
                            controller_epoch: epoch,
                            leader: d.leader,
                            version: 1,
                            leader_epoch: d.leader_epoch,
                            isr: d.isr.clone(),
                            leader_recovery_state: None,
                        };
                        let path = znodes::partition_state_path(&d.tp.0, d.tp.1);
                        let store = store.clone();
                        let session = sessions[i % sessions.len()].clone();
                        async move {
                            let data = Some(znodes::encode(&z));
                            match known_version {
                                Some(v) => session
                                    .set(&path, data, Some(v))
                                    .await
                                    .map(|stat| stat.version),
                                None => create_recursive(
                                    store.as_ref(),
                                    &path,
                                    data,
                                    CreateMode::Persistent,
                                )
                                .await
                                .map(|_| 0),
                            }
                        }
                    })
                    .collect();
                let fence = fence_on(store.clone(), self.epoch_zk_version);
                async move {
                    // Kafka fences every write with a check of `/controller_epoch`'s version in
                    // the same multi; without multi the check comes before each chunk of writes.
                    fence.await?;
                    Ok::<_, Stop>(
                        stream::iter(writes)
                            .buffered(IN_FLIGHT / CHUNKS_AT_ONCE)
                            .collect::<Vec<StoreResult<i32>>>()
                            .await,
                    )
                }
            })
            .collect();
        let results: Vec<Vec<StoreResult<i32>>> = stream::iter(chunks)
            .buffered(CHUNKS_AT_ONCE)
            .try_collect()
            .await?;
        let mut won = Vec::with_capacity(decisions.len());
        for (d, result) in decisions.iter().zip(results.into_iter().flatten()) {
            won.push(self.record_write(d, result).await?);
        }
        Ok(won)
    }

    /// Takes a partition state write's outcome into the context.
    pub(super) async fn record_write(
        &mut self,
        d: &Decision,
        result: StoreResult<i32>,
    ) -> Result<bool, Stop> {
        match result {
            Ok(zk_version) => {
                self.states.insert(
                    d.tp.clone(),
                    PartitionState {
                        leader: d.leader,
                        leader_epoch: d.leader_epoch,
                        isr: d.isr.clone(),
                        controller_epoch: self.epoch,
                        zk_version,
                    },
                );
                Ok(true)
            }
            Err(StoreError::BadVersion(_)) | Err(StoreError::NodeExists(_)) => {
                match self.read_state(&d.tp.0, d.tp.1).await? {
                    Some(s) if s.controller_epoch > self.epoch => Err(Stop::Resigned(
                        "a newer controller wrote a partition state".into(),
                    )),
                    Some(s) => {
                        self.states.insert(d.tp.clone(), s);
                        Ok(false)
                    }
                    None => Ok(false),
                }
            }
            Err(e) => Err(e.into()),
        }
    }
}

/// Runs `calls` with up to `IN_FLIGHT` of them at once, answers in the order of `calls`. The
/// calls own what they use, so that the controller's task stays `Send`.
pub(super) fn pipelined<F: std::future::Future>(
    calls: Vec<F>,
) -> impl futures::Stream<Item = F::Output> {
    stream::iter(calls).buffered(IN_FLIGHT)
}

/// Fails unless `/controller_epoch` is still at the version this controller wrote (see `fence`).
async fn fence_on(store: Arc<dyn MetadataStore>, epoch_zk_version: i32) -> Result<(), Stop> {
    match store.get(znodes::CONTROLLER_EPOCH).await? {
        Some((_, stat)) if stat.version == epoch_zk_version => Ok(()),
        _ => Err(Stop::Resigned("controller epoch moved on".into())),
    }
}

/// `read_state` for many partitions: contiguous shares of `tps` read through each of `stores`
/// (at least one) at once, each share pipelined; in the order of `tps`.
async fn read_states_through(
    stores: &[Arc<dyn MetadataStore>],
    tps: &[Tp],
) -> Result<Vec<Option<PartitionState>>, Stop> {
    let share = tps.len().div_ceil(stores.len().max(1)).max(1);
    let shares = tps.chunks(share).zip(stores).map(|(tps, store)| {
        let reads: Vec<_> = tps
            .iter()
            .map(|tp| read_state(store.clone(), tp.0.clone(), tp.1))
            .collect();
        pipelined(reads).try_collect::<Vec<_>>()
    });
    let read = futures::future::try_join_all(shares).await?;
    Ok(read.into_iter().flatten().collect())
}

async fn read_state(
    store: Arc<dyn MetadataStore>,
    topic: String,
    p: i32,
) -> Result<Option<PartitionState>, Stop> {
    let path = znodes::partition_state_path(&topic, p);
    Ok(match store.get(&path).await? {
        Some((Some(d), stat)) => match znodes::decode::<PartitionStateZnode>(&path, &d) {
            Ok(z) => Some(PartitionState {
                leader: z.leader,
                leader_epoch: z.leader_epoch,
                isr: z.isr,
                controller_epoch: z.controller_epoch,
                zk_version: stat.version,
            }),
            Err(e) => {
                tracing::error!(topic, partition = p, error = %e, "unreadable partition state");
                None
            }
        },
        _ => None,
    })
}
