//! Producer ids, taken in blocks from `/latest_producer_id_block` exactly as Kafka's brokers
//! take them (Kafka's `ZkProducerIdManager`): for idempotent producers directly, and for
//! transactional ones through the transaction coordinator.

use std::sync::Arc;

use tokio::sync::Mutex;

use crate::metadata::MetadataStore;
use crate::metadata::store::{CreateMode, StoreError, create_recursive};
use crate::metadata::znodes::{self, PRODUCER_ID_BLOCK, ProducerIdBlockZnode};

const BLOCK_SIZE: i64 = 1000;

pub struct ProducerIdManager {
    store: Arc<dyn MetadataStore>,
    broker_id: i32,
    /// Next id to hand out and the last id of the current block.
    block: Mutex<(i64, i64)>,
}

impl ProducerIdManager {
    pub fn new(store: Arc<dyn MetadataStore>, broker_id: i32) -> Self {
        ProducerIdManager {
            store,
            broker_id,
            block: Mutex::new((0, -1)),
        }
    }

    pub async fn next_id(&self) -> Result<i64, StoreError> {
        let mut block = self.block.lock().await;
        if block.0 > block.1 {
            *block = self.claim_block().await?;
        }
        let id = block.0;
        block.0 += 1;
        Ok(id)
    }

    /// Claims the block after the one recorded in the znode with a conditional write, retrying
    /// when another broker claimed one in between.
    async fn claim_block(&self) -> Result<(i64, i64), StoreError> {
        for _ in 0..100 {
            let current = self.store.get(PRODUCER_ID_BLOCK).await?;
            let (start, version) = match &current {
                Some((Some(data), stat)) if !data.is_empty() => {
                    let z: ProducerIdBlockZnode = znodes::decode(PRODUCER_ID_BLOCK, data)?;
                    let end: i64 = z.block_end.parse().map_err(|_| StoreError::BadData {
                        path: PRODUCER_ID_BLOCK.into(),
                        reason: format!("block_end {:?}", z.block_end),
                    })?;
                    (end + 1, Some(stat.version))
                }
                Some((_, stat)) => (0, Some(stat.version)),
                None => (0, None),
            };
            let end = start + BLOCK_SIZE - 1;
            let z = ProducerIdBlockZnode {
                version: 1,
                broker: self.broker_id,
                block_start: start.to_string(),
                block_end: end.to_string(),
            };
            let written = match version {
                Some(v) => self
                    .store
                    .set(PRODUCER_ID_BLOCK, Some(znodes::encode(&z)), Some(v))
                    .await
                    .map(|_| ()),
                None => create_recursive(
                    self.store.as_ref(),
                    PRODUCER_ID_BLOCK,
                    Some(znodes::encode(&z)),
                    CreateMode::Persistent,
                )
                .await
                .map(|_| ()),
            };
            match written {
                Ok(()) => {
                    tracing::info!(start, end, "claimed producer id block");
                    return Ok((start, end));
                }
                Err(StoreError::BadVersion(_)) | Err(StoreError::NodeExists(_)) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(StoreError::Unavailable(
            "could not claim a producer id block after 100 attempts".into(),
        ))
    }
}
